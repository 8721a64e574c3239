/* SPDX-License-Identifier: MIT
 *
 * NumPy .npy reader and writer. A file is the magic `\x93NUMPY`, a version,
 * a little-endian header length, a Python dict literal giving descr,
 * fortran_order and shape, then the raw array data. The header parser below
 * reads exactly the subset of Python literals that NumPy writes (strings,
 * True/False, tuples of integers) and reports anything else as a parse error
 * with the byte offset in the header. See fb-npy.h for the dtype table and
 * the bf16 convention.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fb-npy.h"

#define NPY_MAGIC     "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_RANK  64

/* ------------------------------------------------------------ dtypes */

typedef struct {
  FbElemType type;
  char       kind;      /* numpy kind letter */
  int        size;      /* bytes per element */
} DtypeEntry;

static const DtypeEntry dtypes[] = {
  { FB_PRED, 'b', 1 },
  { FB_S8, 'i', 1 }, { FB_S16, 'i', 2 }, { FB_S32, 'i', 4 }, { FB_S64, 'i', 8 },
  { FB_U8, 'u', 1 }, { FB_U16, 'u', 2 }, { FB_U32, 'u', 4 }, { FB_U64, 'u', 8 },
  { FB_F16, 'f', 2 }, { FB_F32, 'f', 4 }, { FB_F64, 'f', 8 },
  { FB_C64, 'c', 8 }, { FB_C128, 'c', 16 },
  { FB_BF16, 'V', 2 },
};

const char *
fb_npy_descr (FbElemType type)
{
  switch (type)
    {
    case FB_PRED: return "|b1";
    case FB_S8: return "|i1";
    case FB_S16: return "<i2";
    case FB_S32: return "<i4";
    case FB_S64: return "<i8";
    case FB_U8: return "|u1";
    case FB_U16: return "<u2";
    case FB_U32: return "<u4";
    case FB_U64: return "<u8";
    case FB_F16: return "<f2";
    case FB_F32: return "<f4";
    case FB_F64: return "<f8";
    case FB_C64: return "<c8";
    case FB_C128: return "<c16";
    case FB_BF16: return "<V2";
    default: return NULL;
    }
}

/* Decodes a descr such as `<f4`, `>i8`, `|b1`, `<V2` or `bfloat16`.
 * *big_endian is set when the data must be byte-swapped on this host. */
static gboolean
descr_lookup (const char *descr, FbElemType *type, gboolean *swap)
{
  const char *p = descr;
  gboolean big = FALSE;

  *swap = FALSE;
  if (strcmp (descr, "bfloat16") == 0)
    {
      *type = FB_BF16;
      return TRUE;
    }
  if (*p == '<' || *p == '|' || *p == '=')
    p++;
  else if (*p == '>')
    big = TRUE, p++;
  if (*p == '\0' || !g_ascii_isdigit (p[1]))
    return FALSE;
  char kind = *p++;
  char *end = NULL;
  guint64 size = g_ascii_strtoull (p, &end, 10);
  if (end == p || *end != '\0')
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (dtypes); i++)
    if (dtypes[i].kind == kind && (guint64) dtypes[i].size == size)
      {
        *type = dtypes[i].type;
        *swap = big == (G_BYTE_ORDER == G_LITTLE_ENDIAN) && size > 1;
        return TRUE;
      }
  return FALSE;
}

/* Byte swap in place, in units of @unit bytes. */
static void
swap_units (guint8 *data, gsize n_bytes, int unit)
{
  for (gsize off = 0; off + unit <= n_bytes; off += unit)
    for (int a = 0, b = unit - 1; a < b; a++, b--)
      {
        guint8 t = data[off + a];
        data[off + a] = data[off + b];
        data[off + b] = t;
      }
}

static int
swap_unit (FbElemType type)
{
  int bytes = fb_elem_type_bytes (type);
  return fb_elem_type_kind (type) == FB_KIND_COMPLEX ? bytes / 2 : bytes;
}

/* Copies between row-major @rm and column-major @cm data of the same shape,
 * in the direction given by @to_fortran. */
static void
reorder (guint8 *rm, guint8 *cm, int rank, const int64_t *dims, int elem, gboolean to_fortran)
{
  int64_t idx[NPY_MAX_RANK] = { 0 };
  int64_t fstride[NPY_MAX_RANK];
  int64_t n = 1;

  for (int k = 0; k < rank; k++)
    {
      fstride[k] = n;
      n *= dims[k];
    }
  int64_t f = 0;
  for (int64_t i = 0; i < n; i++)
    {
      if (to_fortran)
        memcpy (cm + f * elem, rm + i * elem, elem);
      else
        memcpy (rm + i * elem, cm + f * elem, elem);
      /* Advance the row-major odometer, last dimension fastest. */
      for (int k = rank - 1; k >= 0; k--)
        {
          idx[k]++;
          f += fstride[k];
          if (idx[k] < dims[k])
            break;
          f -= fstride[k] * dims[k];
          idx[k] = 0;
        }
    }
}

/* ------------------------------------------------------- header parser */

typedef struct {
  const char *start, *p, *end;
  const char *name;
  GError    **error;
} HeaderParser;

static gboolean G_GNUC_PRINTF (2, 3)
header_fail (HeaderParser *hp, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (hp->error, FB_ERROR, FB_ERROR_PARSE, "%s: bad .npy header at byte %d: %s",
               hp->name, (int) (hp->p - hp->start), msg);
  return FALSE;
}

static void
skip_space (HeaderParser *hp)
{
  while (hp->p < hp->end && (*hp->p == ' ' || *hp->p == '\t' || *hp->p == '\n' || *hp->p == '\r'))
    hp->p++;
}

static gboolean
expect_char (HeaderParser *hp, char c)
{
  skip_space (hp);
  if (hp->p >= hp->end || *hp->p != c)
    return header_fail (hp, "expected '%c'", c);
  hp->p++;
  return TRUE;
}

static gboolean
peek_char (HeaderParser *hp, char c)
{
  skip_space (hp);
  return hp->p < hp->end && *hp->p == c;
}

static char *
parse_string (HeaderParser *hp)
{
  skip_space (hp);
  if (hp->p >= hp->end || (*hp->p != '\'' && *hp->p != '"'))
    {
      header_fail (hp, "expected a quoted string");
      return NULL;
    }
  char quote = *hp->p++;
  const char *s = hp->p;
  while (hp->p < hp->end && *hp->p != quote)
    {
      if (*hp->p == '\\')
        {
          header_fail (hp, "escapes in strings are not supported");
          return NULL;
        }
      hp->p++;
    }
  if (hp->p >= hp->end)
    {
      header_fail (hp, "unterminated string");
      return NULL;
    }
  char *out = g_strndup (s, hp->p - s);
  hp->p++;
  return out;
}

static gboolean
parse_int (HeaderParser *hp, int64_t *out)
{
  skip_space (hp);
  const char *s = hp->p;
  guint64 v = 0;
  while (hp->p < hp->end && g_ascii_isdigit (*hp->p))
    {
      if (v > (guint64) G_MAXINT64 / 10)
        return header_fail (hp, "dimension too large");
      v = v * 10 + (guint64) (*hp->p - '0');
      hp->p++;
    }
  if (hp->p == s)
    return header_fail (hp, "expected a non-negative integer");
  if (v > (guint64) G_MAXINT64)
    return header_fail (hp, "dimension too large");
  if (hp->p < hp->end && (*hp->p == 'L' || *hp->p == 'l'))   /* Python 2 longs */
    hp->p++;
  *out = (int64_t) v;
  return TRUE;
}

static gboolean
parse_shape (HeaderParser *hp, int *rank, int64_t *dims)
{
  if (!expect_char (hp, '('))
    return FALSE;
  *rank = 0;
  while (!peek_char (hp, ')'))
    {
      if (*rank == NPY_MAX_RANK)
        return header_fail (hp, "more than %d dimensions", NPY_MAX_RANK);
      if (!parse_int (hp, &dims[*rank]))
        return FALSE;
      (*rank)++;
      if (peek_char (hp, ','))
        hp->p++;
      else if (!peek_char (hp, ')'))
        return header_fail (hp, "expected ',' or ')' in shape");
    }
  hp->p++;
  return TRUE;
}

static gboolean
parse_bool (HeaderParser *hp, gboolean *out)
{
  skip_space (hp);
  gsize left = hp->end - hp->p;
  if (left >= 4 && strncmp (hp->p, "True", 4) == 0)
    {
      hp->p += 4;
      *out = TRUE;
      return TRUE;
    }
  if (left >= 5 && strncmp (hp->p, "False", 5) == 0)
    {
      hp->p += 5;
      *out = FALSE;
      return TRUE;
    }
  return header_fail (hp, "expected True or False");
}

typedef struct {
  char     *descr;
  gboolean  fortran;
  int       rank;
  int64_t   dims[NPY_MAX_RANK];
} Header;

static gboolean
parse_header (HeaderParser *hp, Header *h)
{
  gboolean have_fortran = FALSE, have_shape = FALSE;

  if (!expect_char (hp, '{'))
    return FALSE;
  while (!peek_char (hp, '}'))
    {
      const char *key_at = hp->p;
      g_autofree char *key = parse_string (hp);
      if (key == NULL || !expect_char (hp, ':'))
        return FALSE;
      if (strcmp (key, "descr") == 0 && h->descr == NULL)
        {
          if (peek_char (hp, '['))
            return header_fail (hp, "structured dtypes are not supported");
          if ((h->descr = parse_string (hp)) == NULL)
            return FALSE;
        }
      else if (strcmp (key, "fortran_order") == 0 && !have_fortran)
        {
          if (!parse_bool (hp, &h->fortran))
            return FALSE;
          have_fortran = TRUE;
        }
      else if (strcmp (key, "shape") == 0 && !have_shape)
        {
          if (!parse_shape (hp, &h->rank, h->dims))
            return FALSE;
          have_shape = TRUE;
        }
      else
        {
          hp->p = key_at;
          skip_space (hp);
          return header_fail (hp, "unexpected or repeated key '%s'", key);
        }
      if (peek_char (hp, ','))
        hp->p++;
      else if (!peek_char (hp, '}'))
        return header_fail (hp, "expected ',' or '}'");
    }
  hp->p++;
  skip_space (hp);
  if (hp->p != hp->end)
    return header_fail (hp, "unexpected text after the header dict");
  if (h->descr == NULL || !have_fortran || !have_shape)
    return header_fail (hp, "the header lacks '%s'",
                        h->descr == NULL ? "descr" : !have_fortran ? "fortran_order" : "shape");
  return TRUE;
}

/* ----------------------------------------------------------------- load */

static FbLiteral *
truncated_header (const char *name, GError **error)
{
  g_set_error (error, FB_ERROR, FB_ERROR_PARSE, "%s: truncated .npy file: the header is cut short", name);
  return NULL;
}

FbLiteral *
fb_npy_load_bytes (FbArena *arena, const guint8 *data, gsize len, const char *name, GError **error)
{
  g_return_val_if_fail (arena != NULL, NULL);
  g_return_val_if_fail (data != NULL || len == 0, NULL);

  if (name == NULL)
    name = "<input>";
  if (len < NPY_MAGIC_LEN || memcmp (data, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_PARSE,
                   "%s: not a NumPy .npy file (bad magic; expected \\x93NUMPY)", name);
      return NULL;
    }
  if (len < NPY_MAGIC_LEN + 2)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_PARSE, "%s: truncated .npy file: no version", name);
      return NULL;
    }
  int major = data[6], minor = data[7];
  gsize pos = 8, hlen;
  if (major == 1)
    {
      if (len < pos + 2)
        return truncated_header (name, error);
      hlen = data[pos] | (gsize) data[pos + 1] << 8;
      pos += 2;
    }
  else if (major == 2 || major == 3)
    {
      if (len < pos + 4)
        return truncated_header (name, error);
      hlen = data[pos] | (gsize) data[pos + 1] << 8 | (gsize) data[pos + 2] << 16 | (gsize) data[pos + 3] << 24;
      pos += 4;
    }
  else
    {
      g_set_error (error, FB_ERROR, FB_ERROR_PARSE,
                   "%s: unsupported .npy format version %d.%d (1.0, 2.0 and 3.0 are supported)",
                   name, major, minor);
      return NULL;
    }
  if (len - pos < hlen)
    return truncated_header (name, error);

  Header h = { 0 };
  HeaderParser hp = { (const char *) data + pos, (const char *) data + pos,
                      (const char *) data + pos + hlen, name, error };
  g_autofree char *descr_owner = NULL;
  gboolean ok = parse_header (&hp, &h);
  descr_owner = h.descr;
  if (!ok)
    return NULL;
  pos += hlen;

  FbElemType type;
  gboolean swap;
  if (!descr_lookup (h.descr, &type, &swap))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED,
                   "%s: unsupported dtype '%s' (supported: b1, i1-i8, u1-u8, f2, f4, f8, c8, c16, "
                   "and V2 or bfloat16 for bf16)", name, h.descr);
      return NULL;
    }

  guint64 n = 1;
  for (int k = 0; k < h.rank; k++)
    if (!g_uint64_checked_mul (&n, n, (guint64) h.dims[k]))
      {
        g_set_error (error, FB_ERROR, FB_ERROR_PARSE, "%s: the shape in the header is too large", name);
        return NULL;
      }
  int elem = fb_elem_type_bytes (type);
  guint64 want;
  if (!g_uint64_checked_mul (&want, n, (guint64) elem) || want > G_MAXSIZE)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_PARSE, "%s: the shape in the header is too large", name);
      return NULL;
    }
  gsize have = len - pos;
  if (have < want)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_PARSE,
                   "%s: truncated data: the header says %" G_GUINT64_FORMAT " elements of %d bytes "
                   "(%" G_GUINT64_FORMAT " bytes) but the file has %" G_GSIZE_FORMAT " bytes of data",
                   name, n, elem, want, have);
      return NULL;
    }
  if (have > want)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_PARSE,
                   "%s: %" G_GSIZE_FORMAT " bytes of data but the header's shape holds %" G_GUINT64_FORMAT
                   " elements of %d bytes (%" G_GUINT64_FORMAT " bytes)", name, have, n, elem, want);
      return NULL;
    }

  FbShape *shape = fb_shape_new_array (arena, type, h.rank, h.dims);
  fb_shape_set_default_layout (arena, shape);
  FbLiteral *lit = fb_literal_new (arena, shape);
  if (want > 0)
    {
      if (h.fortran && h.rank > 1)
        reorder (lit->data, (guint8 *) data + pos, h.rank, h.dims, elem, FALSE);
      else
        memcpy (lit->data, data + pos, want);
    }
  if (swap)
    swap_units (lit->data, want, swap_unit (type));
  if (type == FB_PRED)
    for (guint64 i = 0; i < n; i++)
      lit->data[i] = lit->data[i] != 0;
  return lit;
}

static GBytes *
read_file (const char *path, GError **error)
{
  FILE *f = fopen (path, "rb");
  if (f == NULL)
    {
      int e = errno;
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: %s", path, g_strerror (e));
      return NULL;
    }
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  guint8 chunk[65536];
  gsize got;
  while ((got = fread (chunk, 1, sizeof chunk, f)) > 0)
    g_byte_array_append (buf, chunk, got);
  if (ferror (f))
    {
      int e = errno;
      fclose (f);
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot read: %s", path, g_strerror (e));
      return NULL;
    }
  fclose (f);
  return g_byte_array_free_to_bytes (g_steal_pointer (&buf));
}

FbLiteral *
fb_npy_load (FbArena *arena, const char *path, GError **error)
{
  g_return_val_if_fail (arena != NULL, NULL);
  g_return_val_if_fail (path != NULL, NULL);

  g_autoptr (GBytes) bytes = read_file (path, error);
  if (bytes == NULL)
    return NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  static const guint8 empty[1];
  return fb_npy_load_bytes (arena, data ? data : empty, len, path, error);
}

/* ----------------------------------------------------------------- save */

GBytes *
fb_npy_to_bytes (const FbLiteral *lit, FbNpySaveFlags flags, const char *name, GError **error)
{
  g_return_val_if_fail (lit != NULL && lit->shape != NULL, NULL);

  if (name == NULL)
    name = "<output>";
  const FbShape *shape = lit->shape;
  const char *descr = fb_npy_descr (shape->type);
  if (!fb_shape_is_array (shape) || descr == NULL)
    {
      g_autofree char *s = fb_shape_to_string (shape);
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED,
                   "%s: cannot save %s as .npy: no NumPy dtype for this element type", name, s);
      return NULL;
    }
  if (shape->rank > NPY_MAX_RANK)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "%s: more than %d dimensions", name, NPY_MAX_RANK);
      return NULL;
    }
  gboolean big = (flags & FB_NPY_SAVE_BIG_ENDIAN) != 0;
  gboolean fortran = (flags & FB_NPY_SAVE_FORTRAN) != 0;

  g_autoptr (GString) dict = g_string_new ("{'descr': '");
  if (big && descr[0] == '<')
    {
      g_string_append_c (dict, '>');
      g_string_append (dict, descr + 1);
    }
  else
    g_string_append (dict, descr);
  g_string_append_printf (dict, "', 'fortran_order': %s, 'shape': (", fortran ? "True" : "False");
  for (int k = 0; k < shape->rank; k++)
    g_string_append_printf (dict, "%s%" G_GINT64_FORMAT, k ? ", " : "", shape->dims[k]);
  g_string_append (dict, shape->rank == 1 ? ",), }" : "), }");

  int major = flags & FB_NPY_SAVE_VERSION_3 ? 3 : flags & FB_NPY_SAVE_VERSION_2 ? 2 : 1;
  /* Header plus padding and newline end on a multiple of 64 bytes. */
  gsize prefix = NPY_MAGIC_LEN + 2 + (major == 1 ? 2 : 4);
  gsize total = (prefix + dict->len + 1 + 63) / 64 * 64;
  if (major == 1 && total - prefix > 65535)
    {
      major = 2;
      prefix += 2;
      total = (prefix + dict->len + 1 + 63) / 64 * 64;
    }
  while (prefix + dict->len + 1 < total)
    g_string_append_c (dict, ' ');
  g_string_append_c (dict, '\n');

  gsize hlen = dict->len;
  gsize data_bytes = (gsize) fb_shape_elements (shape) * fb_elem_type_bytes (shape->type);
  g_autoptr (GByteArray) out = g_byte_array_sized_new (total + data_bytes);
  guint8 pre[12];
  memcpy (pre, NPY_MAGIC, NPY_MAGIC_LEN);
  pre[6] = major;
  pre[7] = 0;
  for (gsize b = 0; b < prefix - 8; b++)
    pre[8 + b] = (hlen >> (8 * b)) & 0xff;
  g_byte_array_append (out, pre, prefix);
  g_byte_array_append (out, (const guint8 *) dict->str, dict->len);

  gsize off = out->len;
  g_byte_array_set_size (out, off + data_bytes);
  if (data_bytes > 0)
    {
      if (fortran && shape->rank > 1)
        reorder (lit->data, out->data + off, shape->rank, shape->dims,
                 fb_elem_type_bytes (shape->type), TRUE);
      else
        memcpy (out->data + off, lit->data, data_bytes);
    }
  if (big == (G_BYTE_ORDER == G_LITTLE_ENDIAN))
    swap_units (out->data + off, data_bytes, swap_unit (shape->type));
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

gboolean
fb_npy_save_full (const char *path, const FbLiteral *lit, FbNpySaveFlags flags, GError **error)
{
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (lit != NULL, FALSE);

  g_autoptr (GBytes) bytes = fb_npy_to_bytes (lit, flags, path, error);
  if (bytes == NULL)
    return FALSE;
  FILE *f = fopen (path, "wb");
  if (f == NULL)
    {
      int e = errno;
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot write: %s", path, g_strerror (e));
      return FALSE;
    }
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  gboolean ok = fwrite (data, 1, len, f) == len;
  int e = errno;
  if (fclose (f) != 0 && ok)
    {
      ok = FALSE;
      e = errno;
    }
  if (!ok)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot write: %s", path, g_strerror (e));
      return FALSE;
    }
  return TRUE;
}

gboolean
fb_npy_save (const char *path, const FbLiteral *lit, GError **error)
{
  return fb_npy_save_full (path, lit, FB_NPY_SAVE_DEFAULT, error);
}
