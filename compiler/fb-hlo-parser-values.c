/* SPDX-License-Identifier: MIT
 *
 * Values in HLO text: shapes with dynamic dimensions and layouts, constant
 * literals of every element type, and instruction attributes. Attributes in
 * fb-attrs.def are decoded into typed values; any other attribute keeps its
 * exact text so that printing it back loses nothing.
 */
#include "fb-hlo-parser-private.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* ----------------------------------------------------------- utilities */

static gboolean
describe_here (FbHloParser *P, char *out, gsize size)
{
  const char *p = P->lx.p;
  if (p >= P->lx.end)
    g_strlcpy (out, "end of input", size);
  else if (*p >= ' ' && *p < 0x7f)
    g_snprintf (out, size, "'%c'", *p);
  else if (*p == '\n')
    g_strlcpy (out, "end of line", size);
  else
    g_snprintf (out, size, "byte 0x%02x", (guchar) *p);
  return TRUE;
}

gboolean
_fb_hlo_expect (FbHloParser *P, char c, const char *context)
{
  if (P->err)
    return FALSE;
  if (_fb_hlo_accept (P, c))
    return TRUE;
  if (P->err)
    return FALSE;
  char here[32];
  describe_here (P, here, sizeof here);
  return _fb_hlo_fail (P, P->lx.p, "expected '%c' %s, found %s", c, context, here);
}

gboolean
_fb_hlo_int (FbHloParser *P, const FbToken *tok, int64_t *out)
{
  char buf[64];
  if (tok->kind != FB_TOK_INT)
    return _fb_hlo_fail (P, tok->start, "expected an integer, found %s",
                         fb_hlo_token_kind_name (tok->kind));
  if (tok->len >= sizeof buf)
    return _fb_hlo_fail (P, tok->start, "integer is out of range");
  if (tok->len <= 18)
    {
      /* Up to 18 digits cannot overflow: the common case, without strtoll. */
      const char *s = tok->start, *e = s + tok->len;
      gboolean neg = *s == '-';
      int64_t v = 0;
      for (s += neg; s < e; s++)
        v = v * 10 + (*s - '0');
      *out = neg ? -v : v;
      return TRUE;
    }
  memcpy (buf, tok->start, tok->len);
  buf[tok->len] = '\0';
  errno = 0;
  gint64 v = g_ascii_strtoll (buf, NULL, 10);
  if (errno == ERANGE)
    return _fb_hlo_fail (P, tok->start, "integer %s is out of range", buf);
  *out = v;
  return TRUE;
}

gboolean
_fb_hlo_read_int (FbHloParser *P, int64_t *out, const char *what)
{
  FbToken tok;
  if (!_fb_hlo_next (P, &tok))
    return FALSE;
  if (tok.kind != FB_TOK_INT)
    return _fb_hlo_fail (P, tok.start, "expected an integer %s, found %s", what,
                         fb_hlo_token_kind_name (tok.kind));
  return _fb_hlo_int (P, &tok, out);
}

char *
_fb_hlo_unescape (FbHloParser *P, const FbToken *tok)
{
  const char *s = tok->start + 1, *e = tok->start + tok->len - 1;
  char *out = fb_arena_alloc (P->arena, e - s + 1), *o = out;
  while (s < e)
    {
      if (*s != '\\' || s + 1 >= e)
        {
          *o++ = *s++;
          continue;
        }
      s++;
      switch (*s)
        {
        case 'n': *o++ = '\n'; s++; break;
        case 't': *o++ = '\t'; s++; break;
        case 'r': *o++ = '\r'; s++; break;
        case 'x':
          {
            int v = 0, n = 0;
            s++;
            while (n < 2 && s < e && g_ascii_isxdigit (*s))
              v = v * 16 + g_ascii_xdigit_value (*s++), n++;
            *o++ = n ? (char) v : 'x';
            break;
          }
        default:
          if (*s >= '0' && *s <= '7')
            {
              int v = 0, n = 0;
              while (n < 3 && s < e && *s >= '0' && *s <= '7')
                v = v * 8 + (*s++ - '0'), n++;
              *o++ = (char) v;
            }
          else
            *o++ = *s++;
        }
    }
  *o = '\0';
  return out;
}

static const char *
shape_text (FbHloParser *P, const FbShape *shape)
{
  g_string_truncate (P->buf, 0);
  fb_shape_print (P->buf, shape, FALSE);
  return P->buf->str;
}

/* -------------------------------------------------------------- shapes */

/* layout := '{' [int {',' int}] [':' extra] '}' */
static FbLayout *
parse_layout (FbHloParser *P, FbShape *shape)
{
  const char *open = P->lx.p;
  P->lx.p++;   /* '{' */
  int64_t m2m[FB_HLO_MAX_DEPTH];
  int n = 0;
  const char *extra = NULL;
  gsize extra_len = 0;
  /* Fast path for the usual `{2,1,0}`; anything else takes the loop below. */
  const char *fq = P->lx.p, *end = P->lx.end;
  gboolean fast = FALSE;
  while (fq < end && n < FB_HLO_MAX_DEPTH && g_ascii_isdigit (*fq)
         && (fq + 1 >= end || !g_ascii_isdigit (fq[1])))
    {
      m2m[n++] = *fq++ - '0';
      if (fq < end && *fq == '}')
        {
          fast = TRUE;
          P->lx.p = fq + 1;
          break;
        }
      if (fq >= end || *fq != ',')
        break;
      fq++;
    }
  if (!fast)
    n = 0;
  while (!fast)
    {
      if (_fb_hlo_accept (P, '}'))
        break;
      if (P->err)
        return NULL;
      if (_fb_hlo_accept (P, ':'))
        {
          /* Tiling, memory space, element size...: verbatim up to the closing brace. */
          const char *s = P->lx.p, *q = s;
          int depth = 0;
          while (q < P->lx.end && *q != '\n' && !(depth == 0 && *q == '}'))
            {
              if (*q == '(' || *q == '[')
                depth++;
              else if ((*q == ')' || *q == ']') && --depth < 0)
                return _fb_hlo_fail (P, q, "unbalanced '%c' in layout", *q), NULL;
              q++;
            }
          if (q >= P->lx.end || *q != '}')
            return _fb_hlo_fail (P, open, "unterminated layout"), NULL;
          extra = s;
          extra_len = q - s;
          while (extra_len > 0 && g_ascii_isspace (extra[extra_len - 1]))
            extra_len--;
          P->lx.p = q + 1;
          break;
        }
      if (P->err)
        return NULL;
      if (n > 0 && !_fb_hlo_expect (P, ',', "between layout dimensions"))
        return NULL;
      int64_t v;
      if (!_fb_hlo_read_int (P, &v, "in layout"))
        return NULL;
      if (n >= FB_HLO_MAX_DEPTH)
        return _fb_hlo_fail (P, open, "layout has too many dimensions"), NULL;
      m2m[n++] = v;
    }
  if (n > 0 && n != shape->rank)
    return _fb_hlo_fail (P, open, "layout has %d dimensions but the shape has rank %d",
                         n, shape->rank), NULL;
  guint64 seen = 0;
  for (int i = 0; i < n; i++)
    {
      if (m2m[i] < 0 || m2m[i] >= shape->rank || (seen & (G_GUINT64_CONSTANT (1) << m2m[i])))
        return _fb_hlo_fail (P, open, "layout is not a permutation of the shape's dimensions"), NULL;
      seen |= G_GUINT64_CONSTANT (1) << m2m[i];
    }
  FbLayout *l = fb_arena_alloc (P->arena, sizeof (FbLayout) + sizeof (int64_t) * n);
  l->n = n;
  if (n > 0)
    {
      l->minor_to_major = (int64_t *) (l + 1);
      memcpy (l->minor_to_major, m2m, sizeof (int64_t) * n);
    }
  if (extra)
    l->extra = fb_arena_strndup (P->arena, extra, extra_len);
  return l;
}

/* shape := '(' [shape {',' shape}] ')' | type '[' [dim {',' dim}] ']' [layout]
 * dim   := int | '<=' int | '?' */
FbShape *
_fb_hlo_parse_shape (FbHloParser *P, int depth)
{
  if (!_fb_hlo_skip (P))
    return NULL;
  const char *start = P->lx.p;
  if (depth >= FB_HLO_MAX_DEPTH)
    return _fb_hlo_fail (P, start, "shape is nested too deeply"), NULL;
  if (_fb_hlo_accept (P, '('))
    {
      GPtrArray *elems = g_ptr_array_new ();
      FbShape *result = NULL;
      if (!_fb_hlo_accept (P, ')'))
        {
          do
            {
              FbShape *e = _fb_hlo_parse_shape (P, depth + 1);
              if (e == NULL)
                goto out;
              g_ptr_array_add (elems, e);
            }
          while (_fb_hlo_accept (P, ','));
          if (!_fb_hlo_expect (P, ')', "to close the tuple shape"))
            goto out;
        }
      if (P->err)
        goto out;
      result = fb_shape_new_tuple (P->arena, elems->len, (FbShape *const *) elems->pdata);
    out:
      g_ptr_array_free (elems, TRUE);
      return result;
    }
  if (P->err)
    return NULL;

  /* The element type, read in place: a shape starts with a plain name. */
  const char *tstart = P->lx.p, *end = P->lx.end;
  if (tstart >= end || !fb_hlo_is_ident_start (*tstart))
    {
      FbToken tok;
      if (!_fb_hlo_next (P, &tok))
        return NULL;
      return _fb_hlo_fail (P, tok.start, "expected a shape, found %s",
                           fb_hlo_token_kind_name (tok.kind)), NULL;
    }
  const char *tend = fb_hlo_scan_ident (tstart, end);
  int tlen = (int) (tend - tstart);
  P->lx.p = tend;
  FbElemType type;
  /* Most shapes of a module share their element type: try the last one first. */
  const char *last = fb_elem_type_name (P->last_type);
  if (strncmp (last, tstart, tlen) == 0 && last[tlen] == '\0')
    type = P->last_type;
  else if (!fb_elem_type_lookup (tstart, tlen, &type) || type == FB_TUPLE)
    return _fb_hlo_fail (P, tstart, "unknown element type '%.*s'", tlen, tstart), NULL;
  if (P->lx.p >= P->lx.end || *P->lx.p != '[')
    {
      /* `token` and `opaque` may be written without brackets. */
      if (!fb_elem_type_is_array (type))
        return fb_shape_new_scalar (P->arena, type);
      return _fb_hlo_fail (P, P->lx.p, "expected '[' after element type '%.*s'", tlen, tstart), NULL;
    }
  P->lx.p++;

  int64_t dims[FB_HLO_MAX_DEPTH];
  uint8_t dyn[FB_HLO_MAX_DEPTH];
  gboolean any_dyn = FALSE;
  int rank = 0;
  int64_t elems = 1;
  /* Fast path for the usual `[4,256,1152]`: digits and commas only. Anything
   * else (spaces, `<=`, `?`, signs, huge sizes) goes to the general loop,
   * which also words the errors. */
  gboolean fast = TRUE;
  const char *q = P->lx.p;
  if (q < end && *q == ']')
    q++;
  else
    for (;;)
      {
        if (q >= end || !g_ascii_isdigit (*q) || rank >= FB_HLO_MAX_DEPTH)
          {
            fast = FALSE;
            break;
          }
        const char *ds = q;
        int64_t v = 0;
        while (q < end && g_ascii_isdigit (*q) && q - ds < 15)
          v = v * 10 + (*q++ - '0');
        if ((q < end && g_ascii_isdigit (*q)) || v > FB_HLO_MAX_ELEMENTS)
          {
            fast = FALSE;
            break;
          }
        dyn[rank] = FB_DIM_STATIC;
        dims[rank++] = v;
        if (v != 0 && elems > FB_HLO_MAX_ELEMENTS / v)
          elems = FB_HLO_MAX_ELEMENTS + 1;
        else
          elems *= v;
        if (q < end && *q == ',')
          q++;
        else if (q < end && *q == ']')
          {
            q++;
            break;
          }
        else
          {
            fast = FALSE;
            break;
          }
      }
  if (fast)
    P->lx.p = q;
  else
    {
      rank = 0;
      elems = 1;
    }
  if (!fast && !_fb_hlo_accept (P, ']'))
    {
      if (P->err)
        return NULL;
      do
        {
          if (rank >= FB_HLO_MAX_DEPTH)
            return _fb_hlo_fail (P, start, "shape has more than %d dimensions", FB_HLO_MAX_DEPTH), NULL;
          FbToken d;
          if (!_fb_hlo_next (P, &d))
            return NULL;
          dyn[rank] = FB_DIM_STATIC;
          if (d.kind == FB_TOK_QUESTION)
            {
              dyn[rank] = FB_DIM_UNBOUNDED;
              dims[rank++] = -1;
              any_dyn = TRUE;
              continue;
            }
          if (d.kind == FB_TOK_LEQ)
            {
              dyn[rank] = FB_DIM_BOUNDED;
              any_dyn = TRUE;
              if (!_fb_hlo_next (P, &d))
                return NULL;
            }
          if (d.kind != FB_TOK_INT)
            return _fb_hlo_fail (P, d.start, "expected a dimension size, found %s",
                                 fb_hlo_token_kind_name (d.kind)), NULL;
          if (*d.start == '-')
            return _fb_hlo_fail (P, d.start, "negative dimension size %.*s", (int) d.len, d.start), NULL;
          int64_t v;
          if (d.len > 15 || !_fb_hlo_int (P, &d, &v) || v > FB_HLO_MAX_ELEMENTS)
            {
              g_clear_error (&P->err);
              return _fb_hlo_fail (P, d.start, "dimension size %.*s is too large (the limit is 2^40)",
                                   (int) d.len, d.start), NULL;
            }
          dims[rank++] = v;
          if (v != 0 && elems > FB_HLO_MAX_ELEMENTS / v)
            elems = FB_HLO_MAX_ELEMENTS + 1;
          else
            elems *= v;
        }
      while (_fb_hlo_accept (P, ','));
      if (!_fb_hlo_expect (P, ']', "to close the dimensions"))
        return NULL;
    }
  if (elems > FB_HLO_MAX_ELEMENTS)
    return _fb_hlo_fail (P, start, "shape has more than 2^40 elements"), NULL;
  if (!fb_elem_type_is_array (type) && rank > 0)
    return _fb_hlo_fail (P, start, "%s shapes have no dimensions", fb_elem_type_name (type)), NULL;

  P->last_type = type;
  /* The shape and its dimensions in one block. */
  FbShape *shape = fb_arena_alloc (P->arena, sizeof (FbShape) + sizeof (int64_t) * rank);
  shape->type = type;
  shape->rank = rank;
  if (rank > 0)
    {
      shape->dims = (int64_t *) (shape + 1);
      memcpy (shape->dims, dims, sizeof (int64_t) * rank);
    }
  if (any_dyn)
    shape->dyn = fb_arena_memdup (P->arena, dyn, rank);
  /* A layout follows the ']' directly; `-> f32[] {` opens a computation. */
  if (P->lx.p < P->lx.end && *P->lx.p == '{')
    {
      shape->layout = parse_layout (P, shape);
      if (shape->layout == NULL)
        return NULL;
    }
  return shape;
}

/* dims := '{' [int {',' int}] '}' */
gboolean
_fb_hlo_parse_dims (FbHloParser *P, FbDims *out)
{
  if (!_fb_hlo_expect (P, '{', "to open a list of dimensions"))
    return FALSE;
  GArray *v = g_array_new (FALSE, FALSE, sizeof (int64_t));
  gboolean ok = FALSE;
  if (!_fb_hlo_accept (P, '}'))
    {
      if (P->err)
        goto out;
      do
        {
          int64_t x;
          if (!_fb_hlo_read_int (P, &x, "in the list"))
            goto out;
          g_array_append_val (v, x);
        }
      while (_fb_hlo_accept (P, ','));
      if (!_fb_hlo_expect (P, '}', "to close the list"))
        goto out;
    }
  out->n = v->len;
  out->v = v->len ? fb_arena_memdup (P->arena, v->data, sizeof (int64_t) * v->len) : NULL;
  ok = P->err == NULL;
out:
  g_array_free (v, TRUE);
  return ok;
}

/* ------------------------------------------------------------ literals */

static void
store_int (guint8 *dst, int bytes, int64_t v)
{
  switch (bytes)
    {
    case 1: { int8_t x = (int8_t) v; memcpy (dst, &x, 1); break; }
    case 2: { int16_t x = (int16_t) v; memcpy (dst, &x, 2); break; }
    case 4: { int32_t x = (int32_t) v; memcpy (dst, &x, 4); break; }
    default: memcpy (dst, &v, 8); break;
    }
}

static gboolean
parse_float (FbHloParser *P, double *out)
{
  FbToken tok;
  if (!_fb_hlo_next (P, &tok))
    return FALSE;
  if (tok.kind == FB_TOK_NAME && !tok.percent && tok.len == 3
      && (memcmp (tok.start, "inf", 3) == 0 || memcmp (tok.start, "nan", 3) == 0))
    *out = tok.start[0] == 'i' ? INFINITY : NAN;
  else if (tok.kind == FB_TOK_FLOAT && tok.len == 4 && tok.start[0] == '-'
           && (memcmp (tok.start + 1, "inf", 3) == 0 || memcmp (tok.start + 1, "nan", 3) == 0))
    *out = tok.start[1] == 'i' ? -INFINITY : -NAN;
  else if (tok.kind == FB_TOK_INT || tok.kind == FB_TOK_FLOAT)
    {
      char buf[128];
      if (tok.len >= sizeof buf)
        return _fb_hlo_fail (P, tok.start, "number is too long");
      memcpy (buf, tok.start, tok.len);
      buf[tok.len] = '\0';
      errno = 0;
      double v = g_ascii_strtod (buf, NULL);
      if (errno == ERANGE && isinf (v))
        return _fb_hlo_fail (P, tok.start, "number %s is out of range", buf);
      *out = v;
      return TRUE;
    }
  else
    return _fb_hlo_fail (P, tok.start, "expected a number, found %s",
                         fb_hlo_token_kind_name (tok.kind));
  /* nan may carry a payload: nan(0x7fc00001). */
  if (P->lx.p < P->lx.end && *P->lx.p == '(' && isnan (*out))
    {
      const char *q = P->lx.p + 1;
      while (q < P->lx.end && g_ascii_isalnum (*q))
        q++;
      if (q >= P->lx.end || *q != ')')
        return _fb_hlo_fail (P, P->lx.p, "malformed nan payload");
      P->lx.p = q + 1;
    }
  return TRUE;
}

/* One element of type @t into @dst (NULL: check only). */
static gboolean
parse_scalar (FbHloParser *P, FbElemType t, guint8 *dst)
{
  if (!_fb_hlo_skip (P))
    return FALSE;
  const char *at = P->lx.p;
  FbElemKind kind = fb_elem_type_kind (t);
  int bits = fb_elem_type_bits (t), bytes = fb_elem_type_bytes (t);
  switch (kind)
    {
    case FB_KIND_PRED:
      {
        FbToken tok;
        if (!_fb_hlo_next (P, &tok))
          return FALSE;
        int v;
        if (tok.kind == FB_TOK_NAME && tok.len == 4 && memcmp (tok.start, "true", 4) == 0)
          v = 1;
        else if (tok.kind == FB_TOK_NAME && tok.len == 5 && memcmp (tok.start, "false", 5) == 0)
          v = 0;
        else if (tok.kind == FB_TOK_INT && tok.len == 1 && (*tok.start == '0' || *tok.start == '1'))
          v = *tok.start - '0';
        else
          return _fb_hlo_fail (P, tok.start, "expected true or false");
        if (dst)
          *dst = (guint8) v;
        return TRUE;
      }
    case FB_KIND_SINT:
    case FB_KIND_UINT:
      {
        FbToken tok;
        if (!_fb_hlo_next (P, &tok))
          return FALSE;
        if (tok.kind != FB_TOK_INT)
          return _fb_hlo_fail (P, tok.start, "expected an integer for %s, found %s",
                               fb_elem_type_name (t), fb_hlo_token_kind_name (tok.kind));
        char buf[64];
        if (tok.len >= sizeof buf)
          return _fb_hlo_fail (P, tok.start, "integer is out of range for %s", fb_elem_type_name (t));
        memcpy (buf, tok.start, tok.len);
        buf[tok.len] = '\0';
        errno = 0;
        if (kind == FB_KIND_UINT)
          {
            guint64 v = buf[0] == '-' ? 0 : g_ascii_strtoull (buf, NULL, 10);
            guint64 max = bits >= 64 ? G_MAXUINT64 : (G_GUINT64_CONSTANT (1) << bits) - 1;
            if (errno == ERANGE || v > max || (buf[0] == '-' && strcmp (buf, "-0") != 0))
              return _fb_hlo_fail (P, tok.start, "%s is out of range for %s", buf, fb_elem_type_name (t));
            if (dst)
              store_int (dst, bytes, (int64_t) v);
          }
        else
          {
            gint64 v = g_ascii_strtoll (buf, NULL, 10);
            gint64 max = bits >= 64 ? G_MAXINT64 : (G_GINT64_CONSTANT (1) << (bits - 1)) - 1;
            gint64 min = bits >= 64 ? G_MININT64 : -(G_GINT64_CONSTANT (1) << (bits - 1));
            if (errno == ERANGE || v > max || v < min)
              return _fb_hlo_fail (P, tok.start, "%s is out of range for %s", buf, fb_elem_type_name (t));
            if (dst)
              store_int (dst, bytes, v);
          }
        return TRUE;
      }
    case FB_KIND_FLOAT:
      {
        double v;
        if (!parse_float (P, &v))
          return FALSE;
        if (dst)
          fb_float_encode (t, dst, v);
        return TRUE;
      }
    case FB_KIND_COMPLEX:
      {
        double re, im;
        if (!_fb_hlo_expect (P, '(', "to open a complex number")
            || !parse_float (P, &re)
            || !_fb_hlo_expect (P, ',', "between the real and imaginary parts")
            || !parse_float (P, &im)
            || !_fb_hlo_expect (P, ')', "to close a complex number"))
          return FALSE;
        if (dst)
          {
            FbElemType half = t == FB_C64 ? FB_F32 : FB_F64;
            fb_float_encode (half, dst, re);
            fb_float_encode (half, dst + bytes / 2, im);
          }
        return TRUE;
      }
    default:
      return _fb_hlo_fail (P, at, "%s constants are not supported", fb_elem_type_name (t));
    }
}

static gboolean
at_elided (FbHloParser *P)
{
  const char *p = P->lx.p, *end = P->lx.end;
  if (p >= end || *p != '{')
    return FALSE;
  p++;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  if (end - p < 3 || memcmp (p, "...", 3) != 0)
    return FALSE;
  p += 3;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  if (p >= end || *p != '}')
    return FALSE;
  P->lx.p = p + 1;
  return TRUE;
}

/* Level @level of a dense array literal: '{' items '}', dims[level] items. */
static gboolean
parse_array_level (FbHloParser *P, const FbShape *shape, int level, guint8 *data, int64_t *index)
{
  if (!_fb_hlo_skip (P))
    return FALSE;
  const char *open = P->lx.p;
  if (!_fb_hlo_expect (P, '{', "to open a literal dimension"))
    return FALSE;
  int64_t want = shape->dims[level], n = 0;
  int bytes = fb_elem_type_bytes (shape->type);
  if (!_fb_hlo_accept (P, '}'))
    {
      if (P->err)
        return FALSE;
      do
        {
          if (!_fb_hlo_skip (P))
            return FALSE;
          if (n >= want)
            return _fb_hlo_fail (P, P->lx.p, "literal has more than %" G_GINT64_FORMAT
                                 " elements in dimension %d of %s", want, level,
                                 shape_text (P, shape));
          if (level + 1 < shape->rank)
            {
              if (!parse_array_level (P, shape, level + 1, data, index))
                return FALSE;
            }
          else
            {
              if (!parse_scalar (P, shape->type, data ? data + *index * bytes : NULL))
                return FALSE;
              (*index)++;
            }
          n++;
        }
      while (_fb_hlo_accept (P, ','));
      if (!_fb_hlo_expect (P, '}', "to close a literal dimension"))
        return FALSE;
    }
  if (P->err)
    return FALSE;
  if (n != want)
    return _fb_hlo_fail (P, open, "literal has %" G_GINT64_FORMAT " elements in dimension %d"
                         " but %s needs %" G_GINT64_FORMAT, n, level, shape_text (P, shape), want);
  return TRUE;
}

static gboolean
parse_literal_value (FbHloParser *P, FbShape *shape, FbLiteral *lit, int depth, gboolean *elided)
{
  if (!_fb_hlo_skip (P))
    return FALSE;
  const char *at = P->lx.p;
  if (depth >= FB_HLO_MAX_DEPTH)
    return _fb_hlo_fail (P, at, "literal is nested too deeply");
  if (at_elided (P))
    {
      *elided = TRUE;
      return TRUE;
    }
  if (shape->type == FB_TUPLE)
    {
      if (!_fb_hlo_expect (P, '(', "to open a tuple literal"))
        return FALSE;
      for (int i = 0; i < shape->n_elems; i++)
        {
          if (i > 0 && !_fb_hlo_expect (P, ',', "between tuple literal elements"))
            return FALSE;
          if (!parse_literal_value (P, shape->elems[i], lit ? lit->elems[i] : NULL, depth + 1, elided))
            return FALSE;
        }
      return _fb_hlo_expect (P, ')', "to close the tuple literal");
    }
  if (!fb_elem_type_is_array (shape->type))
    return _fb_hlo_fail (P, at, "%s constants are not supported", fb_elem_type_name (shape->type));
  for (int i = 0; i < shape->rank; i++)
    if (shape->dyn && shape->dyn[i] == FB_DIM_UNBOUNDED)
      return _fb_hlo_fail (P, at, "a constant needs a static shape");
  if (shape->rank == 0)
    return parse_scalar (P, shape->type, lit ? lit->data : NULL);
  int64_t index = 0;
  return parse_array_level (P, shape, 0, lit ? lit->data : NULL, &index);
}

/* constant '(' literal ')': the '(' is already consumed. */
gboolean
_fb_hlo_parse_literal (FbHloParser *P, FbInstr *instr)
{
  FbShape *shape = instr->shape;
  if (!_fb_hlo_skip (P))
    return FALSE;
  const char *at = P->lx.p;
  gint64 bytes = fb_shape_bytes (shape);
  if (bytes > FB_HLO_MAX_LITERAL_BYTES || P->literal_bytes + bytes > 2 * FB_HLO_MAX_LITERAL_BYTES)
    return _fb_hlo_fail (P, at, "constant of %" G_GINT64_FORMAT " bytes is too large to load", bytes);
  P->literal_bytes += bytes;
  /* A literal needs at least one byte of text per element: when the text
   * left cannot hold it, check it without allocating the storage. */
  gboolean alloc = bytes <= P->lx.end - at || at_elided (P);
  P->lx.p = at;
  FbLiteral *lit = alloc ? fb_literal_new (P->arena, shape) : NULL;
  gboolean elided = FALSE;
  if (!parse_literal_value (P, shape, lit, 0, &elided))
    return FALSE;
  instr->literal = lit;
  if (elided)
    {
      instr->literal_elided = TRUE;
      P->m->n_elided++;
    }
  return TRUE;
}

/* ---------------------------------------------------------- attributes */

/* Bytes that end a run of plain value text, and of text inside a string. */
static const guint8 raw_stop[256] = {
  ['"'] = 1, ['{'] = 1, ['('] = 1, ['['] = 1, ['}'] = 1, [')'] = 1, [']'] = 1,
  [','] = 1, ['\n'] = 1, ['/'] = 1,
};
static const guint8 string_stop[256] = { ['"'] = 1, ['\n'] = 1, ['\\'] = 1 };

#define ONES G_GUINT64_CONSTANT (0x0101010101010101)
#define HAS_ZERO_BYTE(v) (((v) - ONES) & ~(v) & (ONES << 7))

/* First '"', '\\' or newline at or after @q inside a string: eight bytes at a
 * time, since strings (op_name, source_file) are most of a dump's text. */
static inline const char *
string_run_end (const char *q, const char *end)
{
  while (end - q >= 8)
    {
      guint64 w;
      memcpy (&w, q, 8);
      guint64 quote = w ^ (ONES * '"'), backslash = w ^ (ONES * '\\'), newline = w ^ (ONES * '\n');
      if (HAS_ZERO_BYTE (quote) | HAS_ZERO_BYTE (backslash) | HAS_ZERO_BYTE (newline))
        break;
      q += 8;
    }
  while (q < end && !string_stop[(guchar) *q])
    q++;
  return q;
}

gboolean
_fb_hlo_scan_raw (FbHloParser *P, const char **start, gsize *len, const char *key)
{
  const char *p = P->lx.p, *end = P->lx.end;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  const char *s = p;
  char stack[FB_HLO_MAX_DEPTH];
  const char *opened[FB_HLO_MAX_DEPTH];
  int depth = 0;
  while (p < end)
    {
      while (p < end && !raw_stop[(guchar) *p])
        p++;
      if (p >= end)
        break;
      char c = *p;
      if (c == '"')
        {
          const char *q = p + 1;
          for (;;)
            {
              q = string_run_end (q, end);
              if (q < end && *q == '\\')
                q += q + 1 < end ? 2 : 1;
              else
                break;
            }
          if (q >= end || *q != '"')
            return _fb_hlo_fail (P, p, "unterminated string");
          p = q + 1;
          continue;
        }
      if (c == '{' || c == '(' || c == '[')
        {
          if (depth >= FB_HLO_MAX_DEPTH)
            return _fb_hlo_fail (P, p, "value of '%s' is nested too deeply", key);
          opened[depth] = p;
          stack[depth++] = c == '{' ? '}' : c == '(' ? ')' : ']';
        }
      else if (c == '}' || c == ')' || c == ']')
        {
          if (depth == 0)
            break;
          if (stack[depth - 1] != c)
            return _fb_hlo_fail (P, p, "'%c' does not match '%c' in the value of '%s'",
                                 c, *opened[depth - 1], key);
          depth--;
        }
      else if (depth == 0 && (c == ',' || c == '\n' || (c == '/' && p + 1 < end && p[1] == '/')))
        break;
      p++;
    }
  if (depth > 0)
    return _fb_hlo_fail (P, opened[depth - 1], "unbalanced '%c' in the value of '%s'",
                         *opened[depth - 1], key);
  const char *e = p;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
    e--;
  if (e == s)
    return _fb_hlo_fail (P, s, "expected a value for '%s'", key);
  *start = s;
  *len = e - s;
  P->lx.p = p;
  return TRUE;
}

/* Integers separated by @sep ('x' or '_'), read at the cursor. */
static int
read_int_list (FbHloParser *P, char sep, int64_t *out, int max)
{
  int n = 0;
  do
    {
      if (n >= max)
        return _fb_hlo_fail (P, P->lx.p, "too many dimensions"), -1;
      if (!_fb_hlo_read_int (P, &out[n++], "in the list"))
        return -1;
    }
  while (P->lx.p < P->lx.end && *P->lx.p == sep && ++P->lx.p);
  return n;
}

/* padding := lo_hi[_interior] {'x' lo_hi[_interior]} */
static gboolean
parse_padding (FbHloParser *P, FbAttr *a)
{
  FbPadDim d[FB_HLO_MAX_DEPTH];
  int n = 0;
  const char *q = P->lx.p;
  while (q < P->lx.end && (*q == ' ' || *q == '\t'))
    q++;
  /* A scalar has an empty padding: `padding=,`. */
  if (q >= P->lx.end || *q == ',' || *q == '\n' || *q == '\r' || *q == '}')
    {
      a->v.pad.n = 0;
      a->v.pad.d = NULL;
      return TRUE;
    }
  do
    {
      int64_t v[3];
      const char *at = P->lx.p;
      if (n >= FB_HLO_MAX_DEPTH)
        return _fb_hlo_fail (P, at, "too many padding dimensions");
      int k = read_int_list (P, '_', v, 3);
      if (k < 0)
        return FALSE;
      if (k < 2)
        return _fb_hlo_fail (P, at, "padding needs low_high or low_high_interior");
      d[n++] = (FbPadDim) { v[0], v[1], k == 3 ? v[2] : 0 };
    }
  while (P->lx.p < P->lx.end && *P->lx.p == 'x' && ++P->lx.p);
  a->v.pad.n = n;
  a->v.pad.d = fb_arena_memdup (P->arena, d, sizeof (FbPadDim) * n);
  return TRUE;
}

/* window := '{' {field '=' list} '}' with fields size, stride, pad,
 * lhs_dilate, rhs_dilate, rhs_reversal. */
static gboolean
parse_window (FbHloParser *P, FbAttr *a)
{
  FbWindowDim d[FB_HLO_MAX_DEPTH];
  int n = -1;
  const char *open;
  if (!_fb_hlo_skip (P))
    return FALSE;
  open = P->lx.p;
  if (!_fb_hlo_expect (P, '{', "to open the window"))
    return FALSE;
  while (!_fb_hlo_accept (P, '}'))
    {
      if (P->err)
        return FALSE;
      FbToken key;
      if (!_fb_hlo_next (P, &key))
        return FALSE;
      if (key.kind != FB_TOK_NAME || key.percent)
        return _fb_hlo_fail (P, key.start, "expected a window field, found %s",
                             fb_hlo_token_kind_name (key.kind));
      if (!_fb_hlo_expect (P, '=', "after the window field"))
        return FALSE;
      if (!_fb_hlo_skip (P))
        return FALSE;
      const char *at = P->lx.p;
      int64_t v[FB_HLO_MAX_DEPTH][2];
      int k = 0;
      gboolean is_pad = key.len == 3 && memcmp (key.start, "pad", 3) == 0;
      do
        {
          if (k >= FB_HLO_MAX_DEPTH)
            return _fb_hlo_fail (P, at, "window has too many dimensions");
          int got = read_int_list (P, '_', v[k], 2);
          if (got < 0)
            return FALSE;
          if ((got == 2) != is_pad)
            return _fb_hlo_fail (P, at, is_pad ? "window padding needs low_high"
                                               : "malformed window field '%.*s'", (int) key.len, key.start);
          k++;
        }
      while (P->lx.p < P->lx.end && *P->lx.p == 'x' && ++P->lx.p);
      if (n < 0)
        {
          n = k;
          for (int i = 0; i < n; i++)
            d[i] = (FbWindowDim) { 1, 1, 0, 0, 1, 1, FALSE };
        }
      else if (k != n)
        return _fb_hlo_fail (P, at, "window field '%.*s' has %d dimensions, expected %d",
                             (int) key.len, key.start, k, n);
#define IS(s) (key.len == strlen (s) && memcmp (key.start, s, key.len) == 0)
      for (int i = 0; i < n; i++)
        {
          if (IS ("size"))
            d[i].size = v[i][0];
          else if (IS ("stride"))
            d[i].stride = v[i][0];
          else if (is_pad)
            d[i].pad_lo = v[i][0], d[i].pad_hi = v[i][1];
          else if (IS ("lhs_dilate"))
            d[i].lhs_dilate = v[i][0];
          else if (IS ("rhs_dilate"))
            d[i].rhs_dilate = v[i][0];
          else if (IS ("rhs_reversal"))
            d[i].reversal = v[i][0] != 0;
          else
            return _fb_hlo_fail (P, key.start, "unknown window field '%.*s'", (int) key.len, key.start);
        }
#undef IS
    }
  if (P->err)
    return FALSE;
  (void) open;
  a->v.window.n = MAX (n, 0);
  a->v.window.d = n > 0 ? fb_arena_memdup (P->arena, d, sizeof (FbWindowDim) * n) : NULL;
  return TRUE;
}

/* slice := '{' ['[' start ':' limit [':' stride] ']' {',' ...}] '}' */
static gboolean
parse_slice (FbHloParser *P, FbAttr *a)
{
  FbSliceDim d[FB_HLO_MAX_DEPTH];
  int n = 0;
  if (!_fb_hlo_expect (P, '{', "to open the slice"))
    return FALSE;
  if (!_fb_hlo_accept (P, '}'))
    {
      if (P->err)
        return FALSE;
      do
        {
          if (!_fb_hlo_skip (P))
            return FALSE;
          if (n >= FB_HLO_MAX_DEPTH)
            return _fb_hlo_fail (P, P->lx.p, "slice has too many dimensions");
          int64_t s, l, st = 1;
          if (!_fb_hlo_expect (P, '[', "to open a slice dimension")
              || !_fb_hlo_read_int (P, &s, "for the slice start")
              || !_fb_hlo_expect (P, ':', "after the slice start")
              || !_fb_hlo_read_int (P, &l, "for the slice limit"))
            return FALSE;
          if (_fb_hlo_accept (P, ':') && !_fb_hlo_read_int (P, &st, "for the slice stride"))
            return FALSE;
          if (!_fb_hlo_expect (P, ']', "to close a slice dimension"))
            return FALSE;
          d[n++] = (FbSliceDim) { s, l, st };
        }
      while (_fb_hlo_accept (P, ','));
      if (!_fb_hlo_expect (P, '}', "to close the slice"))
        return FALSE;
    }
  if (P->err)
    return FALSE;
  a->v.slice.n = n;
  a->v.slice.d = n ? fb_arena_memdup (P->arena, d, sizeof (FbSliceDim) * n) : NULL;
  return TRUE;
}

/* One group of dim_labels (`b01f`): the roles of its letters and digits. */
static gboolean
parse_label_group (FbHloParser *P, const char *s, const char *e, const char *roles,
                   int64_t *first, int64_t *second, int64_t *spatial, int *n_spatial)
{
  int64_t pos_digit[10];
  int n_digits = 0;
  *first = *second = -1;
  for (int i = 0; i < 10; i++)
    pos_digit[i] = -1;
  for (const char *q = s; q < e; q++)
    {
      int64_t pos = q - s;
      if (*q == roles[0] && *first < 0)
        *first = pos;
      else if (*q == roles[1] && *second < 0)
        *second = pos;
      else if (*q >= '0' && *q <= '9' && pos_digit[*q - '0'] < 0)
        pos_digit[*q - '0'] = pos, n_digits++;
      else if (*q != '?')
        return _fb_hlo_fail (P, q, "unexpected '%c' in dim_labels", *q);
    }
  if (*first < 0 || *second < 0)
    return _fb_hlo_fail (P, s, "dim_labels group '%.*s' needs '%c' and '%c'",
                         (int) (e - s), s, roles[0], roles[1]);
  for (int i = 0; i < n_digits; i++)
    if (pos_digit[i] < 0)
      return _fb_hlo_fail (P, s, "dim_labels group '%.*s' lacks spatial dimension %d",
                           (int) (e - s), s, i);
  if (*n_spatial >= 0 && *n_spatial != n_digits)
    return _fb_hlo_fail (P, s, "dim_labels groups disagree on the number of spatial dimensions");
  *n_spatial = n_digits;
  memcpy (spatial, pos_digit, sizeof (int64_t) * n_digits);
  return TRUE;
}

/* dim_labels := input '_' kernel '->' output, e.g. b01f_01io->b01f */
static gboolean
parse_dim_labels (FbHloParser *P, FbAttr *a)
{
  if (!_fb_hlo_skip (P))
    return FALSE;
  const char *p = P->lx.p, *end = P->lx.end;
  const char *g[3][2];
  for (int i = 0; i < 3; i++)
    {
      g[i][0] = p;
      while (p < end && (g_ascii_isalnum (*p) || *p == '?'))
        p++;
      g[i][1] = p;
      if (g[i][1] == g[i][0])
        return _fb_hlo_fail (P, p, "malformed dim_labels: expected input_kernel->output");
      if (i == 0 && (p >= end || *p++ != '_'))
        return _fb_hlo_fail (P, p - 1, "malformed dim_labels: expected '_' after the input labels");
      if (i == 1 && (end - p < 2 || p[0] != '-' || p[1] != '>'))
        return _fb_hlo_fail (P, p, "malformed dim_labels: expected '->' after the kernel labels");
      if (i == 1)
        p += 2;
    }
  int64_t sp[3][10];
  int n = -1;
  FbConvDims *c = &a->v.conv;
  if (!parse_label_group (P, g[0][0], g[0][1], "bf", &c->in_batch, &c->in_feature, sp[0], &n)
      || !parse_label_group (P, g[1][0], g[1][1], "io", &c->k_in, &c->k_out, sp[1], &n)
      || !parse_label_group (P, g[2][0], g[2][1], "bf", &c->out_batch, &c->out_feature, sp[2], &n))
    return FALSE;
  c->n_spatial = n;
  c->in_spatial = fb_arena_memdup (P->arena, sp[0], sizeof (int64_t) * MAX (n, 1));
  c->k_spatial = fb_arena_memdup (P->arena, sp[1], sizeof (int64_t) * MAX (n, 1));
  c->out_spatial = fb_arena_memdup (P->arena, sp[2], sizeof (int64_t) * MAX (n, 1));
  P->lx.p = p;
  return TRUE;
}

static gboolean
add_pending (FbHloParser *P, FbInstr *instr, int attr, int slot)
{
  FbToken tok;
  if (!_fb_hlo_next (P, &tok))
    return FALSE;
  if (tok.kind != FB_TOK_NAME)
    return _fb_hlo_fail (P, tok.start, "expected a computation name, found %s",
                         fb_hlo_token_kind_name (tok.kind));
  FbHloPendingComp pc = { instr, attr, slot, NULL, 0 };
  pc.name = fb_hlo_token_name (&tok, &pc.len);
  g_array_append_val (P->pending, pc);
  return TRUE;
}

static gboolean
parse_comps (FbHloParser *P, FbInstr *instr, int attr_index, gboolean list)
{
  int first = P->pending->len;
  gboolean braced = list && _fb_hlo_accept (P, '{');
  if (P->err)
    return FALSE;
  if (!braced)
    {
      if (!add_pending (P, instr, attr_index, 0))
        return FALSE;
    }
  else if (!_fb_hlo_accept (P, '}'))
    {
      if (P->err)
        return FALSE;
      int slot = 0;
      do
        if (!add_pending (P, instr, attr_index, slot++))
          return FALSE;
      while (_fb_hlo_accept (P, ','));
      if (!_fb_hlo_expect (P, '}', "to close the list of computations"))
        return FALSE;
    }
  if (P->err)
    return FALSE;
  int n = P->pending->len - first;
  FbAttr *a = &instr->attrs[attr_index];
  a->v.comps.n = n;
  a->v.comps.braced = braced;
  a->v.comps.c = fb_arena_new0 (P->arena, FbComputation *, MAX (n, 1));
  return TRUE;
}

/* attr := key '=' value */
gboolean
_fb_hlo_parse_attr (FbHloParser *P, FbInstr *instr)
{
  FbToken key;
  if (!_fb_hlo_next (P, &key))
    return FALSE;
  if (key.kind != FB_TOK_NAME || key.percent)
    return _fb_hlo_fail (P, key.start, "expected an attribute name, found %s",
                         fb_hlo_token_kind_name (key.kind));
  char name[128];
  if (key.len >= sizeof name)
    return _fb_hlo_fail (P, key.start, "attribute name is too long");
  memcpy (name, key.start, key.len);
  name[key.len] = '\0';
  for (int i = 0; i < instr->n_attrs; i++)
    if (instr->attrs[i].name[0] == name[0] && strcmp (instr->attrs[i].name, name) == 0)
      return _fb_hlo_fail (P, key.start, "attribute '%s' is given twice", name);
  if (!_fb_hlo_expect (P, '=', "after the attribute name"))
    return FALSE;

  FbAttrKey k = fb_attr_key_lookup (key.start, key.len);
  FbAttr *a = fb_instr_add_attr (instr, k, name);
  int index = instr->n_attrs - 1;
  FbToken tok;
  switch (fb_attr_key_kind (k))
    {
    case FB_AV_INT:
      return _fb_hlo_read_int (P, &a->v.i, "for the attribute");
    case FB_AV_BOOL:
      if (!_fb_hlo_next (P, &tok))
        return FALSE;
      if (tok.kind == FB_TOK_NAME && tok.len == 4 && memcmp (tok.start, "true", 4) == 0)
        a->v.i = 1;
      else if (tok.kind == FB_TOK_NAME && tok.len == 5 && memcmp (tok.start, "false", 5) == 0)
        a->v.i = 0;
      else
        return _fb_hlo_fail (P, tok.start, "expected true or false for '%s'", name);
      return TRUE;
    case FB_AV_FLOAT:
      return parse_float (P, &a->v.f);
    case FB_AV_STRING:
      if (!_fb_hlo_next (P, &tok))
        return FALSE;
      if (tok.kind != FB_TOK_STRING)
        return _fb_hlo_fail (P, tok.start, "expected a string for '%s'", name);
      a->v.s = _fb_hlo_unescape (P, &tok);
      return TRUE;
    case FB_AV_IDENT:
      if (!_fb_hlo_next (P, &tok))
        return FALSE;
      if (tok.kind != FB_TOK_NAME || tok.percent)
        return _fb_hlo_fail (P, tok.start, "expected a name for '%s'", name);
      a->v.s = fb_arena_strndup (P->arena, tok.start, tok.len);
      return TRUE;
    case FB_AV_DIMS:
      return _fb_hlo_parse_dims (P, &a->v.dims);
    case FB_AV_SLICE:
      return parse_slice (P, a);
    case FB_AV_PADDING:
      return parse_padding (P, a);
    case FB_AV_WINDOW:
      return parse_window (P, a);
    case FB_AV_DIM_LABELS:
      return parse_dim_labels (P, a);
    case FB_AV_COMP:
      return parse_comps (P, instr, index, FALSE);
    case FB_AV_COMPS:
      return parse_comps (P, instr, index, TRUE);
    case FB_AV_RAW:
    default:
      {
        const char *s;
        gsize len;
        if (!_fb_hlo_scan_raw (P, &s, &len, name))
          return FALSE;
        a = &instr->attrs[index];
        a->kind = FB_AV_RAW;
        a->v.s = fb_arena_strndup (P->arena, s, len);
        return TRUE;
      }
    }
}
