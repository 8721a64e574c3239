/* SPDX-License-Identifier: MIT
 *
 * Literals (dense arrays in logical row-major order, or tuples of them) and
 * the scalar conversions every layer shares: f16, bf16 and the small float
 * formats (f8 family, f4e2m1fn, f8e8m0fnu) to and from double, rounding to
 * nearest even as XLA and ml_dtypes do.
 */
#include <math.h>
#include <string.h>

#include "fb-ir.h"

/* ------------------------------------------------------------- f16, bf16 */

static inline uint32_t f32_bits (float f) { uint32_t u; memcpy (&u, &f, 4); return u; }
static inline float bits_f32 (uint32_t u) { float f; memcpy (&f, &u, 4); return f; }

float
fb_bf16_to_f32 (uint16_t h)
{
  return bits_f32 ((uint32_t) h << 16);
}

uint16_t
fb_f32_to_bf16 (float f)
{
  uint32_t u = f32_bits (f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t) ((u >> 16) | 0x40);          /* quiet NaN, sign kept */
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t) ((u + rounding) >> 16);
}

float
fb_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f)
    return bits_f32 (sign | 0x7f800000u | (man << 13));
  if (exp == 0)
    {
      float v = ldexpf ((float) man, -24);
      return sign ? -v : v;
    }
  return bits_f32 (sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t
fb_f32_to_f16 (float f)
{
  uint32_t u = f32_bits (f);
  uint16_t sign = (uint16_t) ((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u)
    return sign | 0x7e00u;
  if (a >= 0x47800000u)            /* 65536 and above: inf */
    return sign | 0x7c00u;
  if (a >= 0x38800000u)            /* normal f16 */
    {
      uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
      r -= 0x38000000u;
      if (r >= 0x0f800000u)
        return sign | 0x7c00u;
      return sign | (uint16_t) (r >> 13);
    }
  /* subnormal or zero: value / 2^-24, rounded to even */
  float v = bits_f32 (a);
  float q = v * 16777216.0f;       /* exact: scaling by a power of two */
  float r = nearbyintf (q);        /* default rounding mode is to nearest even */
  return sign | (uint16_t) r;
}

/* ------------------------------------------------- small float formats */

typedef struct {
  int ebits, mbits, bias;
  gboolean ieee;      /* all-ones exponent holds inf and NaN */
  gboolean fn;        /* no inf; all-ones exponent and mantissa is NaN */
  gboolean fnuz;      /* no inf, no -0; 0x80 is NaN */
  gboolean nonan;     /* no NaN at all (f4e2m1fn) */
  gboolean unsign;    /* no sign bit, exponent only (f8e8m0fnu) */
} SmallFormat;

static gboolean
small_format (FbElemType t, SmallFormat *f)
{
  memset (f, 0, sizeof *f);
  switch (t)
    {
    case FB_F4E2M1FN: *f = (SmallFormat) { 2, 1, 1, FALSE, FALSE, FALSE, TRUE, FALSE }; return TRUE;
    case FB_F8E3M4: *f = (SmallFormat) { 3, 4, 3, TRUE }; return TRUE;
    case FB_F8E4M3: *f = (SmallFormat) { 4, 3, 7, TRUE }; return TRUE;
    case FB_F8E4M3FN: *f = (SmallFormat) { 4, 3, 7, FALSE, TRUE }; return TRUE;
    case FB_F8E4M3FNUZ: *f = (SmallFormat) { 4, 3, 8, FALSE, FALSE, TRUE }; return TRUE;
    case FB_F8E4M3B11FNUZ: *f = (SmallFormat) { 4, 3, 11, FALSE, FALSE, TRUE }; return TRUE;
    case FB_F8E5M2: *f = (SmallFormat) { 5, 2, 15, TRUE }; return TRUE;
    case FB_F8E5M2FNUZ: *f = (SmallFormat) { 5, 2, 16, FALSE, FALSE, TRUE }; return TRUE;
    case FB_F8E8M0FNU: *f = (SmallFormat) { 8, 0, 127, FALSE, FALSE, FALSE, FALSE, TRUE }; return TRUE;
    default: return FALSE;
    }
}

static double
small_decode (const SmallFormat *f, unsigned code)
{
  if (f->unsign)
    return code == 0xff ? NAN : ldexp (1.0, (int) code - f->bias);
  int total = 1 + f->ebits + f->mbits;
  unsigned sign = (code >> (total - 1)) & 1u;
  unsigned exp = (code >> f->mbits) & ((1u << f->ebits) - 1);
  unsigned man = code & ((1u << f->mbits) - 1);
  unsigned emax = (1u << f->ebits) - 1;
  if (f->fnuz && code == (1u << (total - 1)))
    return NAN;
  if (f->ieee && exp == emax)
    return man ? NAN : (sign ? -INFINITY : INFINITY);
  if (f->fn && exp == emax && man == (1u << f->mbits) - 1)
    return NAN;
  double v = exp == 0 ? ldexp ((double) man, 1 - f->bias - f->mbits)
                      : ldexp ((double) ((1u << f->mbits) | man), (int) exp - f->bias - f->mbits);
  return sign ? -v : v;
}

static unsigned
small_encode (const SmallFormat *f, double v)
{
  int total = f->unsign ? 8 : 1 + f->ebits + f->mbits;
  unsigned ncodes = 1u << total;
  unsigned sign_bit = f->unsign ? 0 : 1u << (total - 1);
  unsigned inf_code = ((1u << f->ebits) - 1) << f->mbits;
  unsigned nan_code;
  if (f->unsign)
    nan_code = 0xff;
  else if (f->fnuz)
    nan_code = sign_bit;
  else if (f->ieee)
    nan_code = inf_code | 1u << (f->mbits - 1);
  else
    nan_code = ncodes - 1 - sign_bit;            /* fn: all ones but the sign */
  if (isnan (v))
    return f->nonan ? 0 : nan_code;
  /* Nearest representable finite value, ties to the even code; also the
   * two largest finite values, to find where overflow starts. */
  unsigned best = 0;
  double best_err = INFINITY, max_finite = 0, below_max = 0;
  for (unsigned c = 0; c < ncodes; c++)
    {
      double d = small_decode (f, c);
      if (!isfinite (d))
        continue;
      if (d > max_finite)
        {
          below_max = max_finite;
          max_finite = d;
        }
      else if (d > below_max && d < max_finite)
        below_max = d;
      double err = fabs (d - v);
      if (err < best_err || (err == best_err && (c & 1u) == 0 && (best & 1u) == 1))
        {
          best = c;
          best_err = err;
        }
    }
  double step = max_finite - below_max;
  if (isinf (v) || fabs (v) >= max_finite + step / 2)
    {
      if (f->ieee)
        return (v < 0 ? sign_bit : 0) | inf_code;
      if (f->nonan)
        return best;   /* f4e2m1fn has neither inf nor NaN: it saturates */
      return nan_code;
    }
  if (v == 0 && signbit (v) && !f->fnuz && !f->unsign)
    return sign_bit;
  return best;
}

double
fb_float_decode (FbElemType t, const guint8 *p)
{
  SmallFormat f;
  switch (t)
    {
    case FB_F16: { uint16_t h; memcpy (&h, p, 2); return fb_f16_to_f32 (h); }
    case FB_BF16: { uint16_t h; memcpy (&h, p, 2); return fb_bf16_to_f32 (h); }
    case FB_F32: { float x; memcpy (&x, p, 4); return x; }
    case FB_F64: { double x; memcpy (&x, p, 8); return x; }
    default:
      if (small_format (t, &f))
        return small_decode (&f, p[0]);
      return 0;
    }
}

void
fb_float_encode (FbElemType t, guint8 *p, double v)
{
  SmallFormat f;
  switch (t)
    {
    case FB_F16: { uint16_t h = fb_f32_to_f16 ((float) v); memcpy (p, &h, 2); return; }
    case FB_BF16: { uint16_t h = fb_f32_to_bf16 ((float) v); memcpy (p, &h, 2); return; }
    case FB_F32: { float x = (float) v; memcpy (p, &x, 4); return; }
    case FB_F64: memcpy (p, &v, 8); return;
    default:
      if (small_format (t, &f))
        p[0] = (guint8) small_encode (&f, v);
      return;
    }
}

/* ------------------------------------------------------------- literals */

FbLiteral *
fb_literal_new (FbArena *arena, FbShape *shape)
{
  FbLiteral *lit = fb_arena_new0 (arena, FbLiteral, 1);
  lit->shape = shape;
  if (shape->type == FB_TUPLE)
    {
      lit->n_elems = shape->n_elems;
      lit->elems = fb_arena_new0 (arena, FbLiteral *, MAX (1, shape->n_elems));
      for (int i = 0; i < shape->n_elems; i++)
        lit->elems[i] = fb_literal_new (arena, shape->elems[i]);
      return lit;
    }
  gsize bytes = (gsize) fb_shape_elements (shape) * fb_elem_type_bytes (shape->type);
  lit->data = fb_arena_alloc (arena, MAX (bytes, 1));
  return lit;
}

FbLiteral *
fb_literal_copy (FbArena *arena, const FbLiteral *lit)
{
  if (lit == NULL)
    return NULL;
  FbLiteral *c = fb_arena_new0 (arena, FbLiteral, 1);
  c->shape = fb_shape_copy (arena, lit->shape);
  if (lit->shape->type == FB_TUPLE)
    {
      c->n_elems = lit->n_elems;
      c->elems = fb_arena_new0 (arena, FbLiteral *, MAX (1, lit->n_elems));
      for (int i = 0; i < lit->n_elems; i++)
        c->elems[i] = fb_literal_copy (arena, lit->elems[i]);
      return c;
    }
  gsize bytes = (gsize) fb_shape_elements (lit->shape) * fb_elem_type_bytes (lit->shape->type);
  c->data = fb_arena_alloc (arena, MAX (bytes, 1));
  if (bytes)
    memcpy (c->data, lit->data, bytes);
  return c;
}

gboolean
fb_literal_equal (const FbLiteral *a, const FbLiteral *b)
{
  if (a == b)
    return TRUE;
  if (a == NULL || b == NULL || !fb_shape_compatible (a->shape, b->shape))
    return FALSE;
  if (a->shape->type == FB_TUPLE)
    {
      for (int i = 0; i < a->n_elems; i++)
        if (!fb_literal_equal (a->elems[i], b->elems[i]))
          return FALSE;
      return TRUE;
    }
  gsize bytes = (gsize) fb_shape_elements (a->shape) * fb_elem_type_bytes (a->shape->type);
  return bytes == 0 || memcmp (a->data, b->data, bytes) == 0;
}

/* Sign-extends the low @bits of @u. */
static inline int64_t
sext (uint64_t u, int bits)
{
  if (bits >= 64)
    return (int64_t) u;
  uint64_t m = 1ull << (bits - 1);
  u &= (1ull << bits) - 1;
  return (int64_t) ((u ^ m) - m);
}

static uint64_t
load_uint (const guint8 *p, int bytes)
{
  switch (bytes)
    {
    case 1: return p[0];
    case 2: { uint16_t v; memcpy (&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy (&v, p, 4); return v; }
    default: { uint64_t v; memcpy (&v, p, 8); return v; }
    }
}

static void
store_uint (guint8 *p, int bytes, uint64_t v)
{
  switch (bytes)
    {
    case 1: p[0] = (guint8) v; break;
    case 2: { uint16_t x = (uint16_t) v; memcpy (p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t) v; memcpy (p, &x, 4); break; }
    default: memcpy (p, &v, 8); break;
    }
}

double
fb_literal_get_f64 (const FbLiteral *lit, int64_t i)
{
  FbElemType t = lit->shape->type;
  int bytes = fb_elem_type_bytes (t);
  const guint8 *p = lit->data + (gsize) i * bytes;
  switch (fb_elem_type_kind (t))
    {
    case FB_KIND_PRED: return p[0] ? 1.0 : 0.0;
    case FB_KIND_SINT: return (double) sext (load_uint (p, bytes), fb_elem_type_bits (t));
    case FB_KIND_UINT: return (double) load_uint (p, bytes);
    case FB_KIND_FLOAT: return fb_float_decode (t, p);
    case FB_KIND_COMPLEX:
      if (t == FB_C64) { float x; memcpy (&x, p, 4); return x; }
      else { double x; memcpy (&x, p, 8); return x; }
    default: return 0;
    }
}

int64_t
fb_literal_get_s64 (const FbLiteral *lit, int64_t i)
{
  FbElemType t = lit->shape->type;
  int bytes = fb_elem_type_bytes (t);
  const guint8 *p = lit->data + (gsize) i * bytes;
  switch (fb_elem_type_kind (t))
    {
    case FB_KIND_PRED: return p[0] ? 1 : 0;
    case FB_KIND_SINT: return sext (load_uint (p, bytes), fb_elem_type_bits (t));
    case FB_KIND_UINT: return (int64_t) load_uint (p, bytes);
    case FB_KIND_FLOAT:
    case FB_KIND_COMPLEX:
      {
        double d = fb_literal_get_f64 (lit, i);
        if (isnan (d))
          return 0;
        if (d >= 9.2233720368547758e18)
          return G_MAXINT64;
        if (d <= -9.2233720368547758e18)
          return G_MININT64;
        return (int64_t) d;
      }
    default: return 0;
    }
}

void
fb_literal_set_f64 (FbLiteral *lit, int64_t i, double v)
{
  FbElemType t = lit->shape->type;
  int bytes = fb_elem_type_bytes (t);
  guint8 *p = lit->data + (gsize) i * bytes;
  switch (fb_elem_type_kind (t))
    {
    case FB_KIND_PRED: p[0] = v != 0; break;
    case FB_KIND_SINT:
    case FB_KIND_UINT:
      fb_literal_set_s64 (lit, i, isnan (v) ? 0 : v >= 9.2233720368547758e18 ? G_MAXINT64
                                  : v <= -9.2233720368547758e18 ? G_MININT64 : (int64_t) v);
      break;
    case FB_KIND_FLOAT: fb_float_encode (t, p, v); break;
    case FB_KIND_COMPLEX:
      if (t == FB_C64) { float x[2] = { (float) v, 0 }; memcpy (p, x, 8); }
      else { double x[2] = { v, 0 }; memcpy (p, x, 16); }
      break;
    default: break;
    }
}

void
fb_literal_set_s64 (FbLiteral *lit, int64_t i, int64_t v)
{
  FbElemType t = lit->shape->type;
  int bytes = fb_elem_type_bytes (t);
  guint8 *p = lit->data + (gsize) i * bytes;
  switch (fb_elem_type_kind (t))
    {
    case FB_KIND_PRED: p[0] = v != 0; break;
    case FB_KIND_SINT:
    case FB_KIND_UINT:
      {
        int bits = fb_elem_type_bits (t);
        uint64_t u = (uint64_t) v;
        if (bits < 64)
          u &= (1ull << bits) - 1;
        if (fb_elem_type_kind (t) == FB_KIND_SINT && bits < 8)
          u = (uint64_t) sext (u, bits);   /* sub-byte signed values stored sign-extended */
        store_uint (p, bytes, u);
        break;
      }
    default: fb_literal_set_f64 (lit, i, (double) v); break;
    }
}
