/* SPDX-License-Identifier: MIT
 *
 * Tests of the HLO printer: golden files in tests/data/roundtrip (an input
 * and its expected long and short printouts side by side), the canonical
 * form of typed attributes, literals of every element type (every f16, bf16
 * and f8 value reads back bit for bit), special floats, and the fixed point
 * print(parse(print(m))) == print(m).
 */
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "fb-hlo.h"

static const char *const golden_names[] = { "train_step", "attrs", "literals", "stack_tables" };

static FbModule *
parse_or_fail (const char *text, const char *what)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), what, 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  return m;
}

static char *
golden_path (const char *name, const char *suffix)
{
  g_autofree char *file = g_strconcat (name, suffix, NULL);
  return g_test_build_filename (G_TEST_DIST, "data", "roundtrip", file, NULL);
}

static char *
read_file (const char *path)
{
  g_autoptr (GError) error = NULL;
  char *text = NULL;
  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

static void
assert_module_equal (FbModule *a, FbModule *b)
{
  g_autoptr (GString) why = g_string_new (NULL);
  if (!fb_module_equal (a, b, why))
    g_error ("modules differ: %s", why->str);
}

/* The input prints as NAME.long.hlo and NAME.short.hlo; both parse back to
 * an equal module and print again unchanged. */
static void
test_golden (gconstpointer data)
{
  const char *name = data;
  g_autofree char *in_path = golden_path (name, ".hlo");
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse_file (in_path, 0, &error);
  g_assert_no_error (error);

  const FbPrintStyle styles[] = { FB_PRINT_LONG, FB_PRINT_SHORT };
  const char *const suffixes[] = { ".long.hlo", ".short.hlo" };
  for (int s = 0; s < 2; s++)
    {
      g_autofree char *want_path = golden_path (name, suffixes[s]);
      g_autofree char *got = fb_hlo_to_string (m, styles[s]);
      if (g_getenv ("FUSEBOX_UPDATE_GOLDEN"))
        g_file_set_contents (want_path, got, -1, NULL);
      g_autofree char *want = read_file (want_path);
      g_assert_cmpstr (got, ==, want);

      FbModule *again = parse_or_fail (got, want_path);
      assert_module_equal (m, again);
      g_autofree char *twice = fb_hlo_to_string (again, styles[s]);
      g_assert_cmpstr (twice, ==, got);
      fb_module_free (again);
    }
  fb_module_free (m);
}

/* ------------------------------------------------ instructions built by hand */

typedef struct {
  FbModule      *m;
  FbComputation *entry;
  FbInstr       *p0;
} Built;

static void
built_init (Built *b)
{
  b->m = fb_module_new ("built");
  b->entry = fb_module_add_computation (b->m, "main");
  b->entry->is_entry = TRUE;
  b->m->entry = b->entry;
  int64_t dims[] = { 2, 8 };
  FbShape *s = fb_shape_new_array (b->m->arena, FB_F32, 2, dims);
  fb_shape_set_default_layout (b->m->arena, s);
  b->p0 = fb_instr_new (b->entry, NULL, FB_OP_PARAMETER, s, 0, NULL, "p0");
  b->entry->n_params = 1;
  b->entry->params = fb_arena_new0 (b->m->arena, FbInstr *, 1);
  b->entry->params[0] = b->p0;
}

static char *
instr_text (const FbInstr *instr, FbPrintStyle style)
{
  GString *out = g_string_new (NULL);
  fb_hlo_print_instr (out, instr, style);
  return g_string_free (out, FALSE);
}

static void
test_attr_canonical (void)
{
  Built b;
  built_init (&b);
  FbArena *arena = b.m->arena;

  /* Slice: the stride is written only when it is not 1. */
  int64_t sd[] = { 2, 4 };
  FbInstr *sl = fb_instr_new (b.entry, NULL, FB_OP_SLICE, fb_shape_new_array (arena, FB_F32, 2, sd),
                              1, &b.p0, "sl");
  FbAttr *a = fb_instr_add_attr (sl, FB_A_SLICE, NULL);
  a->v.slice.n = 2;
  a->v.slice.d = fb_arena_new0 (arena, FbSliceDim, 2);
  a->v.slice.d[0] = (FbSliceDim) { 0, 2, 1 };
  a->v.slice.d[1] = (FbSliceDim) { 1, 8, 2 };
  g_autofree char *t1 = instr_text (sl, FB_PRINT_LONG);
  g_assert_cmpstr (t1, ==, "%sl = f32[2,4] slice(f32[2,8]{1,0} %p0), slice={[0:2], [1:8:2]}");
  g_autofree char *t1s = instr_text (sl, FB_PRINT_SHORT);
  g_assert_cmpstr (t1s, ==, "sl = f32[2,4] slice(p0), slice={[0:2], [1:8:2]}");

  /* Padding: the interior is written only when it is not 0. */
  FbInstr *zero = fb_instr_new (b.entry, NULL, FB_OP_CONSTANT, fb_shape_new_scalar (arena, FB_F32), 0, NULL, "z");
  zero->literal = fb_literal_new (arena, zero->shape);
  FbInstr *ops[] = { b.p0, zero };
  FbInstr *pad = fb_instr_new (b.entry, NULL, FB_OP_PAD, b.p0->shape, 2, ops, "pad");
  a = fb_instr_add_attr (pad, FB_A_PADDING, NULL);
  a->v.pad.n = 2;
  a->v.pad.d = fb_arena_new0 (arena, FbPadDim, 2);
  a->v.pad.d[0] = (FbPadDim) { 0, 0, 0 };
  a->v.pad.d[1] = (FbPadDim) { 1, 1, 2 };
  g_autofree char *t2 = instr_text (pad, FB_PRINT_SHORT);
  g_assert_cmpstr (t2, ==, "pad = f32[2,8]{1,0} pad(p0, z), padding=0_0x1_1_2");
  g_autofree char *t2z = instr_text (zero, FB_PRINT_SHORT);
  g_assert_cmpstr (t2z, ==, "z = f32[] constant(0)");

  /* Window: fields at their defaults are left out, as XLA does. */
  FbInstr *rw = fb_instr_new (b.entry, NULL, FB_OP_REDUCE_WINDOW, b.p0->shape, 2, ops, "rw");
  a = fb_instr_add_attr (rw, FB_A_WINDOW, NULL);
  a->v.window.n = 2;
  a->v.window.d = fb_arena_new0 (arena, FbWindowDim, 2);
  a->v.window.d[0] = (FbWindowDim) { 3, 2, 0, 1, 1, 1, FALSE };
  a->v.window.d[1] = (FbWindowDim) { 3, 2, 0, 1, 1, 1, FALSE };
  fb_instr_set_comp (rw, FB_A_TO_APPLY, b.entry);
  g_autofree char *t3 = instr_text (rw, FB_PRINT_LONG);
  g_assert_cmpstr (t3, ==, "%rw = f32[2,8]{1,0} reduce-window(f32[2,8]{1,0} %p0, f32[] %z), "
                           "window={size=3x3 stride=2x2 pad=0_1x0_1}, to_apply=%main");
  a->v.window.d[1] = (FbWindowDim) { 1, 1, 0, 0, 2, 1, TRUE };
  g_autofree char *t4 = instr_text (rw, FB_PRINT_SHORT);
  g_assert_cmpstr (t4, ==, "rw = f32[2,8]{1,0} reduce-window(p0, z), "
                           "window={size=3x1 stride=2x1 pad=0_1x0_0 lhs_dilate=1x2 rhs_reversal=0x1}, to_apply=main");

  /* Convolution labels, identifiers, integers, booleans, floats, strings. */
  FbInstr *cv = fb_instr_new (b.entry, NULL, FB_OP_CUSTOM_CALL, b.p0->shape, 1, &b.p0, "cc");
  a = fb_instr_add_attr (cv, FB_A_DIM_LABELS, NULL);
  static int64_t in_sp[] = { 1, 2 }, k_sp[] = { 0, 1 }, out_sp[] = { 1, 2 };
  a->v.conv = (FbConvDims) { 2, 0, 3, in_sp, 2, 3, k_sp, 0, 3, out_sp };
  fb_instr_set_ident (cv, FB_A_DIRECTION, "GE");
  fb_instr_set_int (cv, FB_A_FEATURE_GROUP_COUNT, -3);
  fb_instr_set_int (cv, FB_A_IS_STABLE, 1);
  fb_instr_add_attr (cv, FB_A_EPSILON, NULL)->v.f = 0.001;
  fb_instr_add_attr (cv, FB_A_CUSTOM_CALL_TARGET, NULL)->v.s = (char *) "a\"b\\c\nd\001";
  fb_instr_add_attr (cv, FB_A_RAW_KEY, "sharding")->v.s = (char *) "{devices=[2,1]0,1}";
  int64_t dims[] = { 1, 0 };
  fb_instr_set_dims (cv, FB_A_DIMENSIONS, 2, dims);
  FbAttr *br = fb_instr_add_attr (cv, FB_A_BRANCH_COMPUTATIONS, NULL);
  br->v.comps.n = 2;
  br->v.comps.c = fb_arena_new0 (arena, FbComputation *, 2);
  br->v.comps.c[0] = br->v.comps.c[1] = b.entry;
  br->v.comps.braced = TRUE;
  g_autofree char *t5 = instr_text (cv, FB_PRINT_LONG);
  g_assert_cmpstr (t5, ==, "%cc = f32[2,8]{1,0} custom-call(f32[2,8]{1,0} %p0), dim_labels=b01f_01io->b01f, "
                           "direction=GE, feature_group_count=-3, is_stable=true, epsilon=0.001, "
                           "custom_call_target=\"a\\\"b\\\\c\\nd\\001\", sharding={devices=[2,1]0,1}, "
                           "dimensions={1,0}, branch_computations={%main, %main}");

  /* The root is marked, parameters print their number. */
  b.entry->root = cv;
  g_autofree char *t6 = instr_text (cv, FB_PRINT_SHORT);
  g_assert_true (g_str_has_prefix (t6, "ROOT cc = "));
  g_autofree char *t7 = instr_text (b.p0, FB_PRINT_SHORT);
  g_assert_cmpstr (t7, ==, "p0 = f32[2,8]{1,0} parameter(0)");

  /* Every fifth operand carries an index comment, as XLA writes it. */
  FbInstr *many[7];
  for (int i = 0; i < 7; i++)
    many[i] = b.p0;
  FbInstr *tu = fb_instr_new (b.entry, NULL, FB_OP_TUPLE, fb_shape_new_tuple (arena, 0, NULL), 7, many, "tu");
  g_autofree char *t8 = instr_text (tu, FB_PRINT_SHORT);
  g_assert_cmpstr (t8, ==, "tu = () tuple(p0, p0, p0, p0, p0, /*index=5*/p0, p0)");

  /* A whole module: header, signatures, ENTRY. */
  b.m->is_scheduled = TRUE;
  g_autofree char *mod = fb_hlo_to_string (b.m, FB_PRINT_LONG);
  g_assert_true (g_str_has_prefix (mod, "HloModule built, is_scheduled=true\n\n"
                                        "ENTRY %main (p0: f32[2,8]) -> f32[2,8] {\n"
                                        "  %p0 = f32[2,8]{1,0} parameter(0)\n"));
  g_assert_true (g_str_has_suffix (mod, "\n}\n"));
  fb_module_free (b.m);
}

/* ------------------------------------------------------------- literals */

static char *
literal_text (FbLiteral *lit)
{
  GString *out = g_string_new (NULL);
  fb_hlo_print_literal (out, lit);
  return g_string_free (out, FALSE);
}

static FbLiteral *
make_literal (FbArena *arena, FbElemType t, int rank, const int64_t *dims)
{
  return fb_literal_new (arena, fb_shape_new_array (arena, t, rank, dims));
}

static void
test_literal_ints (void)
{
  FbArena *arena = fb_arena_new ();
  int64_t two = 2;

  FbLiteral *l = make_literal (arena, FB_S64, 1, &two);
  fb_literal_set_s64 (l, 0, G_MININT64);
  fb_literal_set_s64 (l, 1, G_MAXINT64);
  g_autofree char *a = literal_text (l);
  g_assert_cmpstr (a, ==, "{-9223372036854775808, 9223372036854775807}");

  l = make_literal (arena, FB_U64, 0, NULL);
  memset (l->data, 0xff, 8);
  g_autofree char *b = literal_text (l);
  g_assert_cmpstr (b, ==, "18446744073709551615");

  l = make_literal (arena, FB_S4, 1, &two);
  fb_literal_set_s64 (l, 0, -8);
  fb_literal_set_s64 (l, 1, 7);
  g_autofree char *c = literal_text (l);
  g_assert_cmpstr (c, ==, "{-8, 7}");

  l = make_literal (arena, FB_PRED, 1, &two);
  fb_literal_set_s64 (l, 1, 1);
  g_autofree char *d = literal_text (l);
  g_assert_cmpstr (d, ==, "{false, true}");

  int64_t d22[] = { 2, 2 };
  l = make_literal (arena, FB_S32, 2, d22);
  for (int i = 0; i < 4; i++)
    fb_literal_set_s64 (l, i, i + 1);
  g_autofree char *e = literal_text (l);
  g_assert_cmpstr (e, ==, "{ {1, 2}, {3, 4} }");

  int64_t d0[] = { 2, 0 };
  l = make_literal (arena, FB_S32, 2, d0);
  g_autofree char *f = literal_text (l);
  g_assert_cmpstr (f, ==, "{ {}, {} }");

  FbShape *ts[] = { fb_shape_new_scalar (arena, FB_S32), fb_shape_new_array (arena, FB_F32, 1, &two) };
  FbShape *tshape = fb_shape_new_tuple (arena, 2, ts);
  l = fb_literal_new (arena, tshape);
  fb_literal_set_s64 (l->elems[0], 0, 7);
  fb_literal_set_f64 (l->elems[1], 1, 0.5);
  g_autofree char *g = literal_text (l);
  g_assert_cmpstr (g, ==, "( 7, {0, 0.5} )");
  fb_arena_free (arena);
}

static void
test_literal_floats (void)
{
  FbArena *arena = fb_arena_new ();
  int64_t n = 6;

  /* Shortest text that reads back to the same value. */
  FbLiteral *l = make_literal (arena, FB_F32, 1, &n);
  const double f32v[] = { 0.1, 1e-05, -2.5, 3.4028234663852886e38, 1.401298464324817e-45, 100 };
  for (int i = 0; i < n; i++)
    fb_literal_set_f64 (l, i, f32v[i]);
  g_autofree char *a = literal_text (l);
  g_assert_cmpstr (a, ==, "{0.1, 1e-05, -2.5, 3.4028235e+38, 1e-45, 100}");

  l = make_literal (arena, FB_F64, 1, &n);
  const double f64v[] = { 0.1, 1.0 / 3, -0.0, 5e-324, 1e300, 2 };
  for (int i = 0; i < n; i++)
    fb_literal_set_f64 (l, i, f64v[i]);
  g_autofree char *b = literal_text (l);
  g_assert_cmpstr (b, ==, "{0.1, 0.3333333333333333, -0, 5e-324, 1e+300, 2}");

  int64_t three = 3;
  l = make_literal (arena, FB_BF16, 1, &three);
  fb_literal_set_f64 (l, 0, 0.01001);
  fb_literal_set_f64 (l, 1, 1.5);
  fb_literal_set_f64 (l, 2, 3.0e38);
  g_autofree char *c = literal_text (l);
  g_assert_cmpstr (c, ==, "{0.01, 1.5, 3e+38}");

  int64_t one = 1;
  l = make_literal (arena, FB_C64, 1, &one);
  float cv[2] = { 1.5f, -0.25f };
  memcpy (l->data, cv, sizeof cv);
  g_autofree char *d = literal_text (l);
  g_assert_cmpstr (d, ==, "{(1.5, -0.25)}");

  l = make_literal (arena, FB_C128, 0, NULL);
  double zv[2] = { 0.1, 2 };
  memcpy (l->data, zv, sizeof zv);
  g_autofree char *e = literal_text (l);
  g_assert_cmpstr (e, ==, "(0.1, 2)");
  fb_arena_free (arena);
}

static void
test_literal_special (void)
{
  FbArena *arena = fb_arena_new ();
  const FbElemType types[] = { FB_F16, FB_BF16, FB_F32, FB_F64 };
  int64_t four = 4;
  for (gsize t = 0; t < G_N_ELEMENTS (types); t++)
    {
      FbLiteral *l = make_literal (arena, types[t], 1, &four);
      fb_literal_set_f64 (l, 0, INFINITY);
      fb_literal_set_f64 (l, 1, -INFINITY);
      fb_literal_set_f64 (l, 2, NAN);
      fb_literal_set_f64 (l, 3, -0.0);
      g_autofree char *s = literal_text (l);
      g_assert_cmpstr (s, ==, "{inf, -inf, nan, -0}");
    }

  /* Through text and back: the bits survive. */
  const char *text =
    "HloModule m\n\nENTRY e {\n"
    "  ROOT c = f32[5] constant({inf, -inf, nan, -0, 1.17549435e-38})\n}\n";
  FbModule *m = parse_or_fail (text, "special");
  g_autofree char *printed = fb_hlo_to_string (m, FB_PRINT_SHORT);
  g_assert_nonnull (strstr (printed, "constant({inf, -inf, nan, -0, 1.1754944e-38})"));
  const float *v = (const float *) m->entry->root->literal->data;
  g_assert_true (isinf (v[0]) && v[0] > 0);
  g_assert_true (isinf (v[1]) && v[1] < 0);
  g_assert_true (isnan (v[2]));
  g_assert_true (v[3] == 0 && signbit (v[3]));
  g_assert_cmpfloat (v[4], ==, 1.17549435e-38f);
  fb_module_free (m);
  fb_arena_free (arena);
}

/* Every bit pattern of a 16- or 8-bit float type prints to text that reads
 * back to the same bits (NaNs stay NaNs of the same sign). */
static void
check_every_value (FbElemType t)
{
  int bytes = fb_elem_type_bytes (t);
  int64_t count = (int64_t) 1 << (8 * bytes);
  FbArena *arena = fb_arena_new ();
  FbLiteral *l = make_literal (arena, t, 1, &count);
  for (int64_t i = 0; i < count; i++)
    memcpy (l->data + i * bytes, &i, bytes);   /* little-endian low bytes */

  g_autoptr (GString) text = g_string_new ("HloModule every\n\nENTRY e {\n  ROOT c = ");
  fb_shape_print (text, l->shape, FALSE);
  g_string_append (text, " constant(");
  fb_hlo_print_literal (text, l);
  g_string_append (text, ")\n}\n");

  FbModule *m = parse_or_fail (text->str, fb_elem_type_name (t));
  const guint8 *got = m->entry->root->literal->data;
  for (int64_t i = 0; i < count; i++)
    {
      double want = fb_float_decode (t, l->data + i * bytes);
      double back = fb_float_decode (t, got + i * bytes);
      if (isnan (want))
        {
          g_assert_true (isnan (back));
          g_assert_cmpint (!!signbit (want), ==, !!signbit (back));
          continue;
        }
      if (memcmp (got + i * bytes, l->data + i * bytes, bytes) != 0)
        g_error ("%s: bits 0x%04x printed as %g read back differently", fb_elem_type_name (t), (unsigned) i, want);
    }
  fb_module_free (m);
  fb_arena_free (arena);
}

static void
test_literal_every_f16 (void)
{
  check_every_value (FB_F16);
}

static void
test_literal_every_bf16 (void)
{
  check_every_value (FB_BF16);
}

static void
test_literal_every_f8 (void)
{
  const FbElemType types[] = { FB_F8E3M4, FB_F8E4M3, FB_F8E4M3FN, FB_F8E4M3FNUZ, FB_F8E4M3B11FNUZ,
                               FB_F8E5M2, FB_F8E5M2FNUZ, FB_F8E8M0FNU };
  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    check_every_value (types[i]);

  /* f4e2m1fn: the 16 codes. */
  FbArena *arena = fb_arena_new ();
  int64_t n = 16;
  FbLiteral *l = make_literal (arena, FB_F4E2M1FN, 1, &n);
  for (int i = 0; i < 16; i++)
    l->data[i] = (guint8) i;
  g_autofree char *s = literal_text (l);
  g_assert_cmpstr (s, ==, "{0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6}");
  fb_arena_free (arena);
}

/* f32 values that need all 9 digits, denormals and extremes read back exactly. */
static void
test_literal_f32_exact (void)
{
  FbArena *arena = fb_arena_new ();
  int64_t n = 4096;
  FbLiteral *l = make_literal (arena, FB_F32, 1, &n);
  guint32 state = 12345;
  for (int64_t i = 0; i < n; i++)
    {
      state = state * 1664525u + 1013904223u;
      guint32 bits = state;
      if (i < 8)
        bits = (guint32[]) { 1, 0x7f7fffff, 0x00800000, 0x807fffff, 0x3f800001, 0x3dcccccd, 0x33d6bf95, 0x4b7fffff }[i];
      float f;
      memcpy (&f, &bits, 4);
      if (isnan (f))
        bits = 0x3f000000;
      memcpy (l->data + i * 4, &bits, 4);
    }
  g_autoptr (GString) text = g_string_new ("HloModule f32\n\nENTRY e {\n  ROOT c = f32[4096] constant(");
  fb_hlo_print_literal (text, l);
  g_string_append (text, ")\n}\n");
  FbModule *m = parse_or_fail (text->str, "f32");
  g_assert_cmpmem (m->entry->root->literal->data, n * 4, l->data, n * 4);
  fb_module_free (m);
  fb_arena_free (arena);
}

static void
test_fixed_point (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (golden_names); i++)
    {
      g_autofree char *path = golden_path (golden_names[i], ".hlo");
      g_autoptr (GError) error = NULL;
      FbModule *m = fb_hlo_parse_file (path, 0, &error);
      g_assert_no_error (error);
      for (int s = 0; s < 2; s++)
        {
          g_autofree char *once = fb_hlo_to_string (m, s);
          FbModule *m2 = parse_or_fail (once, path);
          assert_module_equal (m, m2);
          g_autofree char *twice = fb_hlo_to_string (m2, s);
          g_assert_cmpstr (once, ==, twice);
          /* The other style of the reparsed module matches too. */
          g_autofree char *other1 = fb_hlo_to_string (m, 1 - s);
          g_autofree char *other2 = fb_hlo_to_string (m2, 1 - s);
          g_assert_cmpstr (other1, ==, other2);
          fb_module_free (m2);
        }
      fb_module_free (m);
    }
}

static void
test_elided_constant (void)
{
  const char *text = "HloModule m\n\nENTRY e {\n  ROOT c = f32[1000,1000]{1,0} constant({...})\n}\n";
  FbModule *m = parse_or_fail (text, "elided");
  g_autofree char *out = fb_hlo_to_string (m, FB_PRINT_SHORT);
  g_assert_cmpstr (out, ==, "HloModule m\n\nENTRY e {\n  ROOT c = f32[1000,1000]{1,0} constant({...})\n}\n");
  fb_module_free (m);
}

/* `fusebox-cli print` writes the same text, and maps bad input to exit 1
 * and bad usage to exit 2. */
static int
run_cli (const char *const *args, char **out, char **err)
{
  const char *cli = g_getenv ("FUSEBOX_CLI");
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) cli);
  g_ptr_array_add (argv, (gpointer) "print");
  for (int i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status, &error);
  g_assert_no_error (error);
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return -1;
}

static void
test_cli (void)
{
  const char *cli = g_getenv ("FUSEBOX_CLI");
  if (cli == NULL || !g_file_test (cli, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("FUSEBOX_CLI does not name the fusebox-cli program");
      return;
    }
  g_autofree char *in = golden_path ("attrs", ".hlo");
  g_autofree char *want_short_path = golden_path ("attrs", ".short.hlo");
  g_autofree char *want_short = read_file (want_short_path);
  g_autofree char *want_long_path = golden_path ("attrs", ".long.hlo");
  g_autofree char *want_long = read_file (want_long_path);

  g_autofree char *out1 = NULL, *err1 = NULL;
  g_assert_cmpint (run_cli ((const char *[]) { in, "--style", "short", NULL }, &out1, &err1), ==, 0);
  g_assert_cmpstr (out1, ==, want_short);
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (run_cli ((const char *[]) { in, NULL }, &out2, &err2), ==, 0);
  g_assert_cmpstr (out2, ==, want_long);

  /* JSON out, and that JSON in again: the same module. */
  g_autofree char *json = NULL, *err3 = NULL;
  g_assert_cmpint (run_cli ((const char *[]) { in, "--json", NULL }, &json, &err3), ==, 0);
  g_autofree char *tmp = NULL;
  int fd = g_file_open_tmp ("fusebox-print-XXXXXX.json", &tmp, NULL);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  g_assert_true (g_file_set_contents (tmp, json, -1, NULL));
  g_autofree char *out4 = NULL, *err4 = NULL;
  g_assert_cmpint (run_cli ((const char *[]) { tmp, "--style=long", NULL }, &out4, &err4), ==, 0);
  g_assert_cmpstr (out4, ==, want_long);
  g_unlink (tmp);

  /* Bad input: exit 1 with file:line:column. */
  g_autofree char *bad = g_build_filename (g_get_tmp_dir (), "fusebox-print-bad.hlo", NULL);
  g_assert_true (g_file_set_contents (bad, "HloModule m\n\nENTRY e {\n  ROOT x = f32[] frobnicate()\n}\n", -1, NULL));
  g_autofree char *out5 = NULL, *err5 = NULL;
  g_assert_cmpint (run_cli ((const char *[]) { bad, NULL }, &out5, &err5), ==, 1);
  g_autofree char *where = g_strdup_printf ("%s:4:", bad);
  g_assert_nonnull (strstr (err5, where));
  g_unlink (bad);

  /* Bad usage: exit 2. */
  g_autofree char *out6 = NULL, *err6 = NULL;
  g_assert_cmpint (run_cli ((const char *[]) { in, "--style", "medium", NULL }, &out6, &err6), ==, 2);
  g_assert_nonnull (strstr (err6, "medium"));
  g_autofree char *out7 = NULL, *err7 = NULL;
  g_assert_cmpint (run_cli ((const char *[]) { NULL }, &out7, &err7), ==, 2);
  g_autofree char *out8 = NULL, *err8 = NULL;
  g_assert_cmpint (run_cli ((const char *[]) { "--help", NULL }, &out8, &err8), ==, 0);
  g_assert_nonnull (strstr (out8, "--style"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (golden_names); i++)
    {
      g_autofree char *path = g_strdup_printf ("/compiler/printer/golden/%s", golden_names[i]);
      g_test_add_data_func (path, golden_names[i], test_golden);
    }
  g_test_add_func ("/compiler/printer/attributes/canonical", test_attr_canonical);
  g_test_add_func ("/compiler/printer/literal/integers", test_literal_ints);
  g_test_add_func ("/compiler/printer/literal/floats", test_literal_floats);
  g_test_add_func ("/compiler/printer/literal/special", test_literal_special);
  g_test_add_func ("/compiler/printer/literal/every-f16", test_literal_every_f16);
  g_test_add_func ("/compiler/printer/literal/every-bf16", test_literal_every_bf16);
  g_test_add_func ("/compiler/printer/literal/every-f8", test_literal_every_f8);
  g_test_add_func ("/compiler/printer/literal/f32-exact", test_literal_f32_exact);
  g_test_add_func ("/compiler/printer/literal/elided", test_elided_constant);
  g_test_add_func ("/compiler/printer/fixed-point", test_fixed_point);
  g_test_add_func ("/compiler/printer/cli", test_cli);
  return g_test_run ();
}
