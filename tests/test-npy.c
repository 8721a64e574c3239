/* SPDX-License-Identifier: MIT
 *
 * Tests of the .npy reader and writer: round trips of every supported
 * element type in every variant the writer offers, files built byte by byte
 * the way NumPy writes them (Fortran order, big-endian, bf16 as `<V2`), and
 * clear errors for broken files.
 */
#include <glib/gstdio.h>
#include <string.h>

#include "fb-npy.h"

static const FbElemType all_types[] = {
  FB_PRED, FB_S8, FB_S16, FB_S32, FB_S64, FB_U8, FB_U16, FB_U32, FB_U64,
  FB_F16, FB_BF16, FB_F32, FB_F64, FB_C64, FB_C128,
};

typedef struct {
  char    *dir;
  FbArena *arena;
} Fixture;

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  fx->dir = g_dir_make_tmp ("fb-npy-XXXXXX", &error);
  g_assert_no_error (error);
  fx->arena = fb_arena_new ();
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  g_autoptr (GDir) d = g_dir_open (fx->dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (fx->dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (fx->dir);
  g_free (fx->dir);
  fb_arena_free (fx->arena);
}

/* A literal of @type and @dims whose elements all differ (pred alternates). */
static FbLiteral *
make_literal (FbArena *arena, FbElemType type, int rank, const int64_t *dims)
{
  FbShape *shape = fb_shape_new_array (arena, type, rank, dims);
  fb_shape_set_default_layout (arena, shape);
  FbLiteral *lit = fb_literal_new (arena, shape);
  int64_t n = fb_shape_elements (shape);
  for (int64_t i = 0; i < n; i++)
    {
      switch (fb_elem_type_kind (type))
        {
        case FB_KIND_PRED:
          fb_literal_set_s64 (lit, i, i % 2);
          break;
        case FB_KIND_SINT:
          fb_literal_set_s64 (lit, i, i * 7 - 20);
          break;
        case FB_KIND_UINT:
          fb_literal_set_s64 (lit, i, i * 7 + 3);
          break;
        case FB_KIND_FLOAT:
          fb_literal_set_f64 (lit, i, i * 0.5 - 1.25);
          break;
        case FB_KIND_COMPLEX:
          if (type == FB_C64)
            {
              float v[2] = { i * 0.5f, -1.0f - i };
              memcpy (lit->data + i * 8, v, 8);
            }
          else
            {
              double v[2] = { i * 0.25, 3.0 + i };
              memcpy (lit->data + i * 16, v, 16);
            }
          break;
        default:
          g_assert_not_reached ();
        }
    }
  return lit;
}

static void
round_trip_all (Fixture *fx, FbNpySaveFlags flags)
{
  static const int64_t dims[3] = { 2, 3, 4 };

  for (gsize t = 0; t < G_N_ELEMENTS (all_types); t++)
    for (int rank = 0; rank <= 3; rank++)
      {
        g_autoptr (GError) error = NULL;
        FbElemType type = all_types[t];
        FbLiteral *lit = make_literal (fx->arena, type, rank, dims);
        g_autofree char *file = g_strdup_printf ("%s-r%d.npy", fb_elem_type_name (type), rank);
        g_autofree char *path = g_build_filename (fx->dir, file, NULL);

        g_assert_true (fb_npy_save_full (path, lit, flags, &error));
        g_assert_no_error (error);
        FbLiteral *back = fb_npy_load (fx->arena, path, &error);
        g_assert_no_error (error);
        g_assert_nonnull (back);
        if (!fb_literal_equal (lit, back))
          g_error ("%s rank %d (flags %d) did not round-trip", fb_elem_type_name (type), rank, flags);
        g_assert_cmpint (back->shape->type, ==, type);
        g_assert_cmpint (back->shape->rank, ==, rank);
      }
}

static void
test_round_trip_c (Fixture *fx, gconstpointer data)
{
  round_trip_all (fx, FB_NPY_SAVE_DEFAULT);
}

static void
test_round_trip_fortran (Fixture *fx, gconstpointer data)
{
  round_trip_all (fx, FB_NPY_SAVE_FORTRAN);
}

static void
test_round_trip_big_endian (Fixture *fx, gconstpointer data)
{
  round_trip_all (fx, FB_NPY_SAVE_BIG_ENDIAN);
  round_trip_all (fx, FB_NPY_SAVE_BIG_ENDIAN | FB_NPY_SAVE_FORTRAN);
}

static void
test_round_trip_versions (Fixture *fx, gconstpointer data)
{
  round_trip_all (fx, FB_NPY_SAVE_VERSION_2);
  round_trip_all (fx, FB_NPY_SAVE_VERSION_3);
}

/* Builds a version 1.0 file the way NumPy does: header padded with spaces
 * and a newline to a multiple of 64 bytes, then @data. */
static GBytes *
npy_file (const char *dict, const void *data, gsize len)
{
  GByteArray *out = g_byte_array_new ();
  gsize hlen = strlen (dict);
  gsize total = (10 + hlen + 1 + 63) / 64 * 64;
  gsize padded = total - 10;
  guint8 pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, padded & 0xff, padded >> 8 };
  g_byte_array_append (out, pre, 10);
  g_byte_array_append (out, (const guint8 *) dict, hlen);
  for (gsize i = hlen; i + 1 < padded; i++)
    g_byte_array_append (out, (const guint8 *) " ", 1);
  g_byte_array_append (out, (const guint8 *) "\n", 1);
  if (len)
    g_byte_array_append (out, data, len);
  return g_byte_array_free_to_bytes (out);
}

static FbLiteral *
load_bytes (Fixture *fx, GBytes *bytes, GError **error)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  return fb_npy_load_bytes (fx->arena, data, len, "sample.npy", error);
}

static void
test_fortran_bytes (Fixture *fx, gconstpointer data)
{
  /* a[i][j] = 10 i + j for a 2x3 array, stored column by column. */
  const gint32 column_major[6] = { 0, 10, 1, 11, 2, 12 };
  g_autoptr (GBytes) bytes = npy_file ("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }",
                                       column_major, sizeof column_major);
  g_autoptr (GError) error = NULL;
  FbLiteral *lit = load_bytes (fx, bytes, &error);

  g_assert_no_error (error);
  g_assert_cmpint (lit->shape->type, ==, FB_S32);
  g_assert_cmpint (lit->shape->rank, ==, 2);
  g_assert_cmpint (lit->shape->dims[0], ==, 2);
  g_assert_cmpint (lit->shape->dims[1], ==, 3);
  const gint64 row_major[6] = { 0, 1, 2, 10, 11, 12 };
  for (int i = 0; i < 6; i++)
    g_assert_cmpint (fb_literal_get_s64 (lit, i), ==, row_major[i]);

  /* 3-d: element (i, j, k) of a 2x2x3 array holds 100 i + 10 j + k. */
  gint16 f3[12];
  int n = 0;
  for (int k = 0; k < 3; k++)
    for (int j = 0; j < 2; j++)
      for (int i = 0; i < 2; i++)
        f3[n++] = 100 * i + 10 * j + k;
  g_autoptr (GBytes) bytes3 = npy_file ("{'descr': '<i2', 'fortran_order': True, 'shape': (2, 2, 3), }",
                                        f3, sizeof f3);
  lit = load_bytes (fx, bytes3, &error);
  g_assert_no_error (error);
  n = 0;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      for (int k = 0; k < 3; k++)
        g_assert_cmpint (fb_literal_get_s64 (lit, n++), ==, 100 * i + 10 * j + k);
}

static void
test_big_endian_bytes (Fixture *fx, gconstpointer data)
{
  const guint8 be[] = { 0x01, 0x02, 0xff, 0xfe };   /* >i2: 258, -2 */
  g_autoptr (GBytes) bytes = npy_file ("{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }",
                                       be, sizeof be);
  g_autoptr (GError) error = NULL;
  FbLiteral *lit = load_bytes (fx, bytes, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fb_literal_get_s64 (lit, 0), ==, 258);
  g_assert_cmpint (fb_literal_get_s64 (lit, 1), ==, -2);

  const guint8 bef[] = { 0x3f, 0xc0, 0x00, 0x00 };  /* >f4: 1.5 */
  g_autoptr (GBytes) bytes2 = npy_file ("{'descr': '>f4', 'fortran_order': False, 'shape': (), }",
                                        bef, sizeof bef);
  lit = load_bytes (fx, bytes2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lit->shape->rank, ==, 0);
  g_assert_cmpfloat (fb_literal_get_f64 (lit, 0), ==, 1.5);
}

static void
test_bf16 (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  int64_t dims[1] = { 3 };
  FbLiteral *lit = make_literal (fx->arena, FB_BF16, 1, dims);
  g_autoptr (GBytes) bytes = fb_npy_to_bytes (lit, FB_NPY_SAVE_DEFAULT, NULL, &error);
  g_assert_no_error (error);
  gsize len;
  const char *text = g_bytes_get_data (bytes, &len);
  /* What np.save writes for an ml_dtypes.bfloat16 array. */
  g_assert_nonnull (g_strstr_len (text + 10, 118, "'descr': '<V2'"));
  g_assert_cmpint (len % 2, ==, 0);

  /* Raw bits 0x3fc0 = 1.5 and 0xc000 = -2 under either spelling. */
  const guint16 bits[2] = { GUINT16_TO_LE (0x3fc0), GUINT16_TO_LE (0xc000) };
  const char *dicts[] = {
    "{'descr': '|V2', 'fortran_order': False, 'shape': (2,), }",
    "{'descr': 'bfloat16', 'fortran_order': False, 'shape': (2,), }",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (dicts); i++)
    {
      g_autoptr (GBytes) file = npy_file (dicts[i], bits, sizeof bits);
      FbLiteral *back = load_bytes (fx, file, &error);
      g_assert_no_error (error);
      g_assert_cmpint (back->shape->type, ==, FB_BF16);
      g_assert_cmpfloat (fb_literal_get_f64 (back, 0), ==, 1.5);
      g_assert_cmpfloat (fb_literal_get_f64 (back, 1), ==, -2.0);
    }
}

static void
test_header_variants (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const guint8 b[3] = { 0, 1, 7 };
  /* Keys in another order, double quotes, no trailing comma, Python 2 longs;
   * bool bytes other than 0 and 1 read as true. */
  g_autoptr (GBytes) bytes = npy_file ("{\"shape\": (3L,), \"fortran_order\": False, \"descr\": \"|b1\"}",
                                       b, sizeof b);
  FbLiteral *lit = load_bytes (fx, bytes, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lit->shape->type, ==, FB_PRED);
  g_assert_cmpint (lit->data[0], ==, 0);
  g_assert_cmpint (lit->data[1], ==, 1);
  g_assert_cmpint (lit->data[2], ==, 1);

  /* An empty array. */
  g_autoptr (GBytes) empty = npy_file ("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4), }", NULL, 0);
  lit = load_bytes (fx, empty, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fb_shape_elements (lit->shape), ==, 0);
}

static void
expect_error (Fixture *fx, GBytes *bytes, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  FbLiteral *lit = load_bytes (fx, bytes, &error);
  g_assert_null (lit);
  g_assert_error (error, FB_ERROR, code);
  g_assert_true (g_str_has_prefix (error->message, "sample.npy: "));
  if (strstr (error->message, fragment) == NULL)
    g_error ("expected '%s' in: %s", fragment, error->message);
}

static void
test_errors (Fixture *fx, gconstpointer data)
{
  const float two[2] = { 1, 2 };
  const char *ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";

  g_autoptr (GBytes) magic = g_bytes_new_static ("PK\x03\x04 this is a zip file", 24);
  expect_error (fx, magic, FB_ERROR_PARSE, "bad magic");

  g_autoptr (GBytes) full = npy_file (ok_dict, two, sizeof two);
  gsize len;
  const guint8 *d = g_bytes_get_data (full, &len);
  g_autoptr (GBytes) short_header = g_bytes_new (d, 30);
  expect_error (fx, short_header, FB_ERROR_PARSE, "header is cut short");
  g_autoptr (GBytes) short_data = g_bytes_new (d, len - 3);
  expect_error (fx, short_data, FB_ERROR_PARSE, "truncated data");

  const float three[3] = { 1, 2, 3 };
  g_autoptr (GBytes) extra = npy_file (ok_dict, three, sizeof three);
  expect_error (fx, extra, FB_ERROR_PARSE, "shape holds 2 elements");

  guint8 *v9 = g_memdup2 (d, len);
  v9[6] = 9;
  g_autoptr (GBytes) version = g_bytes_new_take (v9, len);
  expect_error (fx, version, FB_ERROR_PARSE, "version 9.0");

  g_autoptr (GBytes) no_shape = npy_file ("{'descr': '<f4', 'fortran_order': False, }", two, sizeof two);
  expect_error (fx, no_shape, FB_ERROR_PARSE, "lacks 'shape'");
  g_autoptr (GBytes) garbage = npy_file ("{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,), }",
                                         two, sizeof two);
  expect_error (fx, garbage, FB_ERROR_PARSE, "expected True or False");
  g_autoptr (GBytes) neg = npy_file ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
                                     two, sizeof two);
  expect_error (fx, neg, FB_ERROR_PARSE, "non-negative integer");
  g_autoptr (GBytes) unknown = npy_file ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                                         two, sizeof two);
  expect_error (fx, unknown, FB_ERROR_PARSE, "unexpected or repeated key 'x'");
  g_autoptr (GBytes) unclosed = npy_file ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,",
                                          two, sizeof two);
  expect_error (fx, unclosed, FB_ERROR_PARSE, "bad .npy header");

  g_autoptr (GBytes) unicode = npy_file ("{'descr': '<U2', 'fortran_order': False, 'shape': (1,), }",
                                         two, sizeof two);
  expect_error (fx, unicode, FB_ERROR_UNSUPPORTED, "unsupported dtype '<U2'");
  g_autoptr (GBytes) object = npy_file ("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                                        two, sizeof two);
  expect_error (fx, object, FB_ERROR_UNSUPPORTED, "unsupported dtype '|O'");
  g_autoptr (GBytes) record = npy_file ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                                        two, sizeof two);
  expect_error (fx, record, FB_ERROR_PARSE, "structured dtypes");
}

static void
test_file_errors (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *missing = g_build_filename (fx->dir, "missing.npy", NULL);
  g_assert_null (fb_npy_load (fx->arena, missing, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_IO);
  g_assert_true (g_str_has_prefix (error->message, missing));
  g_clear_error (&error);

  /* A directory where the file should be. */
  g_assert_null (fb_npy_load (fx->arena, fx->dir, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_IO);
  g_clear_error (&error);

  int64_t dims[1] = { 2 };
  FbLiteral *lit = make_literal (fx->arena, FB_F32, 1, dims);
  g_autofree char *bad = g_build_filename (fx->dir, "no-such-dir", "x.npy", NULL);
  g_assert_false (fb_npy_save (bad, lit, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_IO);
  g_assert_true (g_str_has_prefix (error->message, bad));
  g_clear_error (&error);

  /* Types without a NumPy dtype are refused, not written wrongly. */
  FbShape *s4 = fb_shape_new_array (fx->arena, FB_S4, 1, dims);
  g_autofree char *path = g_build_filename (fx->dir, "s4.npy", NULL);
  g_assert_false (fb_npy_save (path, fb_literal_new (fx->arena, s4), &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

static void
test_header_layout (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  int64_t dims[2] = { 2, 3 };
  FbLiteral *lit = make_literal (fx->arena, FB_F32, 2, dims);
  g_autoptr (GBytes) bytes = fb_npy_to_bytes (lit, FB_NPY_SAVE_DEFAULT, NULL, &error);
  g_assert_no_error (error);
  gsize len;
  const guint8 *d = g_bytes_get_data (bytes, &len);
  /* Version 1.0, data starting on a 64-byte boundary, header ending in a newline. */
  g_assert_cmpmem (d, 8, "\x93NUMPY\x01\x00", 8);
  gsize hlen = d[8] | d[9] << 8;
  g_assert_cmpint ((10 + hlen) % 64, ==, 0);
  g_assert_cmpint (d[10 + hlen - 1], ==, '\n');
  g_assert_cmpint (len, ==, 10 + hlen + 6 * 4);
  g_autofree char *header = g_strndup ((const char *) d + 10, hlen);
  g_assert_true (g_str_has_prefix (header, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));

  /* Fortran order, big-endian: the data goes column by column, bytes swapped. */
  int64_t d2[2] = { 2, 3 };
  FbLiteral *ints = make_literal (fx->arena, FB_S16, 2, d2);   /* -20, -13, -6, 1, 8, 15 */
  g_autoptr (GBytes) fb = fb_npy_to_bytes (ints, FB_NPY_SAVE_FORTRAN | FB_NPY_SAVE_BIG_ENDIAN, NULL, &error);
  g_assert_no_error (error);
  d = g_bytes_get_data (fb, &len);
  hlen = d[8] | d[9] << 8;
  g_autofree char *fheader = g_strndup ((const char *) d + 10, hlen);
  g_assert_true (g_str_has_prefix (fheader, "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }"));
  const gint16 column_major[6] = { -20, 1, -13, 8, -6, 15 };
  for (int i = 0; i < 6; i++)
    {
      const guint8 *p = d + 10 + hlen + 2 * i;
      g_assert_cmpint ((gint16) (p[0] << 8 | p[1]), ==, column_major[i]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/backends/npy/round-trip/c-order", test_round_trip_c);
  ADD ("/backends/npy/round-trip/fortran-order", test_round_trip_fortran);
  ADD ("/backends/npy/round-trip/big-endian", test_round_trip_big_endian);
  ADD ("/backends/npy/round-trip/versions", test_round_trip_versions);
  ADD ("/backends/npy/fortran-bytes", test_fortran_bytes);
  ADD ("/backends/npy/big-endian-bytes", test_big_endian_bytes);
  ADD ("/backends/npy/bf16", test_bf16);
  ADD ("/backends/npy/header-variants", test_header_variants);
  ADD ("/backends/npy/header-layout", test_header_layout);
  ADD ("/backends/npy/errors", test_errors);
  ADD ("/backends/npy/file-errors", test_file_errors);
#undef ADD
  return g_test_run ();
}
