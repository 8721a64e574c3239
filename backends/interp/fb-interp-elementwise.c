/* SPDX-License-Identifier: MIT
 *
 * Elementwise evaluators of the reference interpreter: every unary and
 * binary opcode, compare, select, clamp, convert, bitcast-convert and
 * reduce-precision, with XLA's semantics for each element type. Integer
 * edge cases follow XLA's code generators (x / 0 is all ones, INT_MIN / -1
 * is INT_MIN, x % 0 is x, out-of-range shift amounts saturate). Floats are
 * computed in double and rounded to the result type on store; f16 and bf16
 * go through f32 first, so they behave as if computed in f32 and rounded
 * after every operation. f32 and f64 arrays take typed fast paths.
 */
#include "fb-interp-private.h"

#include <complex.h>
#include <math.h>
#include <string.h>


/* ------------------------------------------------------------ helpers */

static inline int
bits_of (FbElemType t)
{
  return fb_elem_type_bits (t);
}

static inline uint64_t
mask_of (int bits)
{
  return bits >= 64 ? ~0ull : (1ull << bits) - 1;
}

static inline int64_t
sext (uint64_t u, int bits)
{
  if (bits >= 64)
    return (int64_t) u;
  uint64_t m = 1ull << (bits - 1);
  u &= (1ull << bits) - 1;
  return (int64_t) ((u ^ m) - m);
}

/* Complex elements as double complex. */
static inline double complex
get_c (const FbLiteral *lit, int64_t i)
{
  FbElemType t = lit->shape->type;
  if (t == FB_C64)
    {
      float v[2];
      memcpy (v, lit->data + i * 8, 8);
      return CMPLX (v[0], v[1]);
    }
  if (t == FB_C128)
    {
      double v[2];
      memcpy (v, lit->data + i * 16, 16);
      return CMPLX (v[0], v[1]);
    }
  return CMPLX (fb_literal_get_f64 (lit, i), 0.0);
}

static inline void
set_c (FbLiteral *lit, int64_t i, double complex z)
{
  FbElemType t = lit->shape->type;
  if (t == FB_C64)
    {
      float v[2] = { (float) creal (z), (float) cimag (z) };
      memcpy (lit->data + i * 8, v, 8);
    }
  else if (t == FB_C128)
    {
      double v[2] = { creal (z), cimag (z) };
      memcpy (lit->data + i * 16, v, 16);
    }
  else
    fb_literal_set_f64 (lit, i, creal (z));
}

/* Raw bits of a float element, and its exponent/mantissa widths. */
static gboolean
float_format (FbElemType t, int *ebits, int *mbits)
{
  switch (t)
    {
    case FB_F16: *ebits = 5; *mbits = 10; return TRUE;
    case FB_BF16: *ebits = 8; *mbits = 7; return TRUE;
    case FB_F32: *ebits = 8; *mbits = 23; return TRUE;
    case FB_F64: *ebits = 11; *mbits = 52; return TRUE;
    default: return FALSE;
    }
}

static inline uint64_t
load_raw (const FbLiteral *lit, int64_t i)
{
  int bytes = fb_elem_type_bytes (lit->shape->type);
  const guint8 *p = lit->data + i * bytes;
  switch (bytes)
    {
    case 1: return p[0];
    case 2: { uint16_t v; memcpy (&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy (&v, p, 4); return v; }
    default: { uint64_t v; memcpy (&v, p, 8); return v; }
    }
}

static inline void
store_raw (FbLiteral *lit, int64_t i, uint64_t v)
{
  int bytes = fb_elem_type_bytes (lit->shape->type);
  guint8 *p = lit->data + i * bytes;
  switch (bytes)
    {
    case 1: p[0] = (guint8) v; break;
    case 2: { uint16_t x = (uint16_t) v; memcpy (p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t) v; memcpy (p, &x, 4); break; }
    default: memcpy (p, &v, 8); break;
    }
}

/* Stores a double into a float element "as computed in f32" for the
 * half-width types (fb_float_encode rounds through f32 for them). */
static inline void
set_float (FbLiteral *lit, int64_t i, double v)
{
  fb_literal_set_f64 (lit, i, v);
}

/* ---------------------------------------------------- float functions */

typedef double (*F1) (double);
typedef double (*F2) (double, double);

static double f_neg (double x) { return -x; }
static double f_abs (double x) { return fabs (x); }
static double f_sign (double x) { return isnan (x) ? x : x == 0 ? x : copysign (1.0, x); }
static double f_rsqrt (double x) { return 1.0 / sqrt (x); }
static double f_logistic (double x) { return 1.0 / (1.0 + exp (-x)); }
static double f_round_afz (double x) { return round (x); }
static double f_round_even (double x) { return nearbyint (x); }

static double f_add (double a, double b) { return a + b; }
static double f_sub (double a, double b) { return a - b; }
static double f_mul (double a, double b) { return a * b; }
static double f_div (double a, double b) { return a / b; }
static double f_max (double a, double b) { return (a >= b || isnan (a)) ? a : b; }
static double f_min (double a, double b) { return (a <= b || isnan (a)) ? a : b; }

static F1
float_unary_fn (FbOpcode op)
{
  switch (op)
    {
    case FB_OP_ABS: return f_abs;
    case FB_OP_NEGATE: return f_neg;
    case FB_OP_SIGN: return f_sign;
    case FB_OP_EXP: return exp;
    case FB_OP_EXPM1: return expm1;
    case FB_OP_LOG: return log;
    case FB_OP_LOG1P: return log1p;
    case FB_OP_SQRT: return sqrt;
    case FB_OP_RSQRT: return f_rsqrt;
    case FB_OP_CBRT: return cbrt;
    case FB_OP_TANH: return tanh;
    case FB_OP_SINH: return sinh;
    case FB_OP_COSH: return cosh;
    case FB_OP_SIN: return sin;
    case FB_OP_COS: return cos;
    case FB_OP_TAN: return tan;
    case FB_OP_ASIN: return asin;
    case FB_OP_ACOS: return acos;
    case FB_OP_ATAN: return atan;
    case FB_OP_ASINH: return asinh;
    case FB_OP_ACOSH: return acosh;
    case FB_OP_ATANH: return atanh;
    case FB_OP_ERF: return erf;
    case FB_OP_LOGISTIC: return f_logistic;
    case FB_OP_FLOOR: return floor;
    case FB_OP_CEIL: return ceil;
    case FB_OP_ROUND_NEAREST_AFZ: return f_round_afz;
    case FB_OP_ROUND_NEAREST_EVEN: return f_round_even;
    default: return NULL;
    }
}

static F2
float_binary_fn (FbOpcode op)
{
  switch (op)
    {
    case FB_OP_ADD: return f_add;
    case FB_OP_SUBTRACT: return f_sub;
    case FB_OP_MULTIPLY: return f_mul;
    case FB_OP_DIVIDE: return f_div;
    case FB_OP_MAXIMUM: return f_max;
    case FB_OP_MINIMUM: return f_min;
    case FB_OP_POWER: return pow;
    case FB_OP_REMAINDER: return fmod;
    case FB_OP_ATAN2: return atan2;
    default: return NULL;
    }
}

/* -------------------------------------------------- integer functions */

/* XLA's integer power: square-and-multiply over the low six exponent bits;
 * a negative exponent gives 1 for base 1 and 0 otherwise. */
static uint64_t
int_pow (uint64_t base, uint64_t exponent, int bits)
{
  uint64_t acc = 1, b = base, e = exponent;
  for (int i = 0; i < 6; i++)
    {
      if (e & 1)
        acc *= b;
      b *= b;
      e >>= 1;
    }
  if (sext (exponent, bits) < 0)
    return (base & mask_of (bits)) == 1 ? 1 : 0;
  return acc;
}

static inline int64_t
mulhi_signed (int64_t a, int64_t b, int bits)
{
  if (bits == 64)
    return (int64_t) (((__int128) a * (__int128) b) >> 64);
  return (a * b) >> bits;
}

static inline uint64_t
mulhi_unsigned (uint64_t a, uint64_t b, int bits)
{
  if (bits == 64)
    return (uint64_t) (((unsigned __int128) a * (unsigned __int128) b) >> 64);
  return (a * b) >> bits;
}

/* One integer binary operation. @a and @b are sign-extended (signed types)
 * or zero-extended (unsigned, pred) values of width @bits. Returns the
 * result bits (masked by the store). */
static gboolean
int_binary (FbOpcode op, gboolean is_signed, int bits, int64_t a, int64_t b, uint64_t *r)
{
  uint64_t ua = (uint64_t) a & mask_of (bits), ub = (uint64_t) b & mask_of (bits);
  int64_t smin = bits >= 64 ? G_MININT64 : -(1ll << (bits - 1));
  switch (op)
    {
    case FB_OP_ADD: *r = ua + ub; return TRUE;
    case FB_OP_SUBTRACT: *r = ua - ub; return TRUE;
    case FB_OP_MULTIPLY: *r = ua * ub; return TRUE;
    case FB_OP_DIVIDE:
      if (ub == 0)
        *r = ~0ull;
      else if (is_signed)
        *r = (a == smin && b == -1) ? (uint64_t) smin : (uint64_t) (a / b);
      else
        *r = ua / ub;
      return TRUE;
    case FB_OP_REMAINDER:
      if (ub == 0)
        *r = ua;
      else if (is_signed)
        *r = (a == smin && b == -1) ? 0 : (uint64_t) (a % b);
      else
        *r = ua % ub;
      return TRUE;
    case FB_OP_MAXIMUM:
      *r = is_signed ? (uint64_t) (a >= b ? a : b) : (ua >= ub ? ua : ub);
      return TRUE;
    case FB_OP_MINIMUM:
      *r = is_signed ? (uint64_t) (a <= b ? a : b) : (ua <= ub ? ua : ub);
      return TRUE;
    case FB_OP_AND: *r = ua & ub; return TRUE;
    case FB_OP_OR: *r = ua | ub; return TRUE;
    case FB_OP_XOR: *r = ua ^ ub; return TRUE;
    case FB_OP_POWER: *r = int_pow (ua, ub, bits); return TRUE;
    case FB_OP_SHIFT_LEFT:
      *r = ub >= (uint64_t) bits ? 0 : ua << ub;
      return TRUE;
    case FB_OP_SHIFT_RIGHT_LOGICAL:
      *r = ub >= (uint64_t) bits ? 0 : ua >> ub;
      return TRUE;
    case FB_OP_SHIFT_RIGHT_ARITHMETIC:
      {
        int64_t sa = sext (ua, bits);
        *r = (uint64_t) (ub >= (uint64_t) bits ? (sa < 0 ? -1 : 0) : sa >> ub);
        return TRUE;
      }
    case FB_OP_MULHI:
      *r = is_signed ? (uint64_t) mulhi_signed (a, b, bits) : mulhi_unsigned (ua, ub, bits);
      return TRUE;
    default:
      return FALSE;
    }
}

static gboolean
int_unary (FbOpcode op, gboolean is_signed, int bits, int64_t a, uint64_t *r)
{
  uint64_t ua = (uint64_t) a & mask_of (bits);
  switch (op)
    {
    case FB_OP_NEGATE: *r = 0 - ua; return TRUE;
    case FB_OP_ABS: *r = is_signed && a < 0 ? 0 - ua : ua; return TRUE;
    case FB_OP_SIGN:
      *r = is_signed ? (uint64_t) (a < 0 ? -1 : a > 0 ? 1 : 0) : (ua != 0);
      return TRUE;
    case FB_OP_NOT: *r = ~ua; return TRUE;
    case FB_OP_POPCNT: *r = (uint64_t) __builtin_popcountll (ua); return TRUE;
    case FB_OP_CLZ:
      *r = ua == 0 ? (uint64_t) bits : (uint64_t) (__builtin_clzll (ua) - (64 - bits));
      return TRUE;
    default:
      return FALSE;
    }
}

/* ------------------------------------------------------------ compare */

typedef enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE } CmpDir;

static gboolean
parse_direction (const char *s, CmpDir *d)
{
  static const char *const names[] = { "EQ", "NE", "LT", "LE", "GT", "GE" };
  for (int i = 0; s != NULL && i < 6; i++)
    if (g_ascii_strcasecmp (s, names[i]) == 0)
      {
        *d = (CmpDir) i;
        return TRUE;
      }
  return FALSE;
}

static inline gboolean
cmp_result (CmpDir d, int c)   /* c: -1, 0, 1 */
{
  switch (d)
    {
    case CMP_EQ: return c == 0;
    case CMP_NE: return c != 0;
    case CMP_LT: return c < 0;
    case CMP_LE: return c <= 0;
    case CMP_GT: return c > 0;
    default: return c >= 0;
    }
}

static inline gboolean
cmp_float (CmpDir d, double a, double b)
{
  switch (d)
    {
    case CMP_EQ: return a == b;
    case CMP_NE: return a != b;   /* unordered: true */
    case CMP_LT: return a < b;
    case CMP_LE: return a <= b;
    case CMP_GT: return a > b;
    default: return a >= b;
    }
}

/* Total-order key of a float's bits: -NaN < -inf < ... < -0 < +0 < ... < NaN. */
static inline int64_t
total_order_key (uint64_t raw, int bits)
{
  int64_t s = sext (raw, bits);
  if (s < 0)
    s ^= (int64_t) (mask_of (bits) >> 1);
  return s;
}

static gboolean
eval_compare (FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, int64_t n, GError **error)
{
  CmpDir d;
  if (!parse_direction (fb_instr_str (instr, FB_A_DIRECTION), &d))
    {
      _fb_interp_error (error, instr, "compare needs direction=EQ, NE, LT, LE, GT or GE");
      return FALSE;
    }
  FbElemType t = ops[0]->shape->type;
  if (ops[1]->shape->type != t)
    {
      _fb_interp_error (error, instr, "compare operands have different element types");
      return FALSE;
    }
  const char *type = fb_instr_str (instr, FB_A_COMPARE_TYPE);
  FbElemKind kind = fb_elem_type_kind (t);
  guint8 *o = out->data;

  if (kind == FB_KIND_COMPLEX)
    {
      if (d != CMP_EQ && d != CMP_NE)
        {
          _fb_interp_error (error, instr, "complex numbers compare only for EQ and NE");
          return FALSE;
        }
      for (int64_t i = 0; i < n; i++)
        o[i] = (get_c (ops[0], i) == get_c (ops[1], i)) == (d == CMP_EQ);
      return TRUE;
    }
  if (kind == FB_KIND_FLOAT)
    {
      if (type != NULL && g_ascii_strcasecmp (type, "TOTALORDER") == 0)
        {
          int bits = bits_of (t);
          for (int64_t i = 0; i < n; i++)
            {
              int64_t a = total_order_key (load_raw (ops[0], i), bits);
              int64_t b = total_order_key (load_raw (ops[1], i), bits);
              o[i] = cmp_result (d, (a > b) - (a < b));
            }
          return TRUE;
        }
      if (t == FB_F32)
        {
          const float *a = (const float *) ops[0]->data, *b = (const float *) ops[1]->data;
          for (int64_t i = 0; i < n; i++)
            o[i] = cmp_float (d, a[i], b[i]);
          return TRUE;
        }
      for (int64_t i = 0; i < n; i++)
        o[i] = cmp_float (d, fb_literal_get_f64 (ops[0], i), fb_literal_get_f64 (ops[1], i));
      return TRUE;
    }
  gboolean is_signed = kind == FB_KIND_SINT;
  if (type != NULL && g_ascii_strcasecmp (type, "UNSIGNED") == 0)
    is_signed = FALSE;
  else if (type != NULL && g_ascii_strcasecmp (type, "SIGNED") == 0)
    is_signed = TRUE;
  int bits = bits_of (t);
  for (int64_t i = 0; i < n; i++)
    {
      uint64_t ua = (uint64_t) fb_literal_get_s64 (ops[0], i) & mask_of (bits);
      uint64_t ub = (uint64_t) fb_literal_get_s64 (ops[1], i) & mask_of (bits);
      int c;
      if (is_signed)
        {
          int64_t a = sext (ua, bits), b = sext (ub, bits);
          c = (a > b) - (a < b);
        }
      else
        c = (ua > ub) - (ua < ub);
      o[i] = cmp_result (d, c);
    }
  return TRUE;
}

/* ------------------------------------------------------------ convert */

/* Float to integer as XLA converts: NaN is 0, out-of-range saturates. */
static uint64_t
float_to_int (double v, FbElemKind kind, int bits)
{
  if (kind == FB_KIND_PRED)
    return v != 0;   /* NaN is true */
  if (isnan (v))
    return 0;
  if (kind == FB_KIND_UINT)
    {
      double max = ldexp (1.0, bits);   /* exclusive */
      if (v <= 0)
        return 0;
      if (v >= max)
        return mask_of (bits);
      return (uint64_t) v;
    }
  double lim = ldexp (1.0, bits - 1);
  int64_t smax = (int64_t) (mask_of (bits) >> 1);
  if (v >= lim)
    return (uint64_t) smax;
  if (v <= -lim)
    return (uint64_t) (-smax - 1);
  return (uint64_t) (int64_t) v;
}

/* @v rounded to f32 toward zero, with the last bit set when inexact. Rounding
 * that to a type of 13 or fewer significant bits to nearest even gives the
 * same result as rounding @v directly. */
static double
round_to_odd_f32 (double v)
{
  float f = (float) v;
  if (isnan (v) || isinf (f) || (double) f == v)
    return f;
  if (fabs ((double) f) > fabs (v))
    f = nextafterf (f, 0.0f);
  uint32_t u;
  memcpy (&u, &f, 4);
  u |= 1;
  memcpy (&f, &u, 4);
  return f;
}

static gboolean
eval_convert (FbInstr *instr, const FbLiteral *in, FbLiteral *out, int64_t n, GError **error)
{
  FbElemType st = in->shape->type, dt = out->shape->type;
  FbElemKind sk = fb_elem_type_kind (st), dk = fb_elem_type_kind (dt);
  int dbits = bits_of (dt);

  if (st == dt)
    {
      memcpy (out->data, in->data, (gsize) n * fb_elem_type_bytes (st));
      return TRUE;
    }
  if (st == FB_F32 && dt == FB_F64)
    {
      const float *a = (const float *) in->data;
      double *o = (double *) out->data;
      for (int64_t i = 0; i < n; i++)
        o[i] = a[i];
      return TRUE;
    }
  if (st == FB_F64 && dt == FB_F32)
    {
      const double *a = (const double *) in->data;
      float *o = (float *) out->data;
      for (int64_t i = 0; i < n; i++)
        o[i] = (float) a[i];
      return TRUE;
    }
  for (int64_t i = 0; i < n; i++)
    {
      if (dk == FB_KIND_COMPLEX)
        {
          set_c (out, i, get_c (in, i));
          continue;
        }
      if (sk == FB_KIND_COMPLEX)
        {
          double re = creal (get_c (in, i));
          if (dk == FB_KIND_FLOAT)
            set_float (out, i, re);
          else
            fb_literal_set_s64 (out, i, (int64_t) float_to_int (re, dk, dbits));
          continue;
        }
      if (sk == FB_KIND_FLOAT)
        {
          double v = fb_literal_get_f64 (in, i);
          if (st == FB_F64 && (dt == FB_F16 || dt == FB_BF16))
            fb_literal_set_f64 (out, i, round_to_odd_f32 (v));   /* one rounding, not two */
          else if (dk == FB_KIND_FLOAT)
            set_float (out, i, v);
          else
            fb_literal_set_s64 (out, i, (int64_t) float_to_int (v, dk, dbits));
          continue;
        }
      /* pred or integer source */
      int64_t v = fb_literal_get_s64 (in, i);
      if (dk == FB_KIND_FLOAT)
        {
          double d = sk == FB_KIND_UINT ? (double) (uint64_t) v : (double) v;
          set_float (out, i, d);
        }
      else if (dk == FB_KIND_PRED)
        fb_literal_set_s64 (out, i, v != 0);
      else
        fb_literal_set_s64 (out, i, v);
    }
  (void) instr;
  (void) error;
  return TRUE;
}

static gboolean
eval_bitcast_convert (FbInstr *instr, const FbLiteral *in, FbLiteral *out, GError **error)
{
  FbElemType st = in->shape->type, dt = out->shape->type;
  int sb = bits_of (st), db = bits_of (dt);
  if (sb < 8 || db < 8 || sb % 8 != 0 || db % 8 != 0)
    {
      _fb_interp_error (error, instr, "bitcast-convert between %s and %s is not supported",
                        fb_elem_type_name (st), fb_elem_type_name (dt));
      return FALSE;
    }
  int64_t in_bytes = fb_shape_elements (in->shape) * fb_elem_type_bytes (st);
  int64_t out_bytes = fb_shape_elements (out->shape) * fb_elem_type_bytes (dt);
  if (in_bytes != out_bytes)
    {
      _fb_interp_error (error, instr, "bitcast-convert from %" G_GINT64_FORMAT " bytes to %"
                        G_GINT64_FORMAT " bytes", in_bytes, out_bytes);
      return FALSE;
    }
  memcpy (out->data, in->data, (gsize) in_bytes);
  return TRUE;
}

/* ---------------------------------------------------- reduce-precision */

static uint64_t
reduce_precision_bits (uint64_t x, int src_e, int src_m, int dst_e, int dst_m)
{
  int total = 1 + src_e + src_m;
  gboolean is_nan;
  {
    uint64_t exp_mask = ((1ull << src_e) - 1) << src_m;
    uint64_t man_mask = (1ull << src_m) - 1;
    is_nan = (x & exp_mask) == exp_mask && (x & man_mask) != 0;
  }
  uint64_t orig = x;
  if (dst_m < src_m)
    {
      uint64_t last = 1ull << (src_m - dst_m);
      uint64_t base_bias = (last >> 1) - 1;
      uint64_t last_bit = (x & last) >> (src_m - dst_m);
      x = (x + last_bit + base_bias) & ~(last - 1);
      x &= mask_of (total);
    }
  if (dst_e < src_e)
    {
      uint64_t sign = 1ull << (total - 1);
      uint64_t exp_mask = ((1ull << src_e) - 1) << src_m;
      uint64_t bias = (1ull << (src_e - 1)) - 1;
      uint64_t rbias = (1ull << (dst_e - 1)) - 1;
      uint64_t max_e = bias + rbias, min_e = bias - rbias;
      uint64_t xe = x & exp_mask;
      uint64_t zero = x & sign, inf = zero | exp_mask;
      if (xe > (max_e << src_m))
        x = inf;
      if (xe <= (min_e << src_m))
        x = zero;
    }
  if (is_nan)   /* NaN stays NaN, or becomes +inf when no mantissa bit is left */
    return dst_m > 0 ? orig : ((1ull << src_e) - 1) << src_m;
  return x;
}

static gboolean
eval_reduce_precision (FbInstr *instr, const FbLiteral *in, FbLiteral *out, int64_t n, GError **error)
{
  int se, sm;
  FbElemType t = in->shape->type;
  int64_t de = fb_instr_int (instr, FB_A_EXPONENT_BITS, -1);
  int64_t dm = fb_instr_int (instr, FB_A_MANTISSA_BITS, -1);
  if (!float_format (t, &se, &sm) || out->shape->type != t)
    {
      _fb_interp_error (error, instr, "reduce-precision of %s is not supported", fb_elem_type_name (t));
      return FALSE;
    }
  if (de < 1 || dm < 0)
    {
      _fb_interp_error (error, instr, "reduce-precision needs exponent_bits >= 1 and mantissa_bits >= 0");
      return FALSE;
    }
  for (int64_t i = 0; i < n; i++)
    store_raw (out, i, reduce_precision_bits (load_raw (in, i), se, sm, (int) MIN (de, se), (int) MIN (dm, sm)));
  return TRUE;
}

/* ----------------------------------------------------- complex ops */

static gboolean
complex_unary (FbOpcode op, double complex z, double complex *r)
{
  switch (op)
    {
    case FB_OP_NEGATE: *r = -z; return TRUE;
    case FB_OP_EXP: *r = cexp (z); return TRUE;
    case FB_OP_EXPM1: *r = cexp (z) - 1.0; return TRUE;
    case FB_OP_LOG: *r = clog (z); return TRUE;
    case FB_OP_LOG1P: *r = clog (1.0 + z); return TRUE;
    case FB_OP_SQRT: *r = csqrt (z); return TRUE;
    case FB_OP_RSQRT: *r = 1.0 / csqrt (z); return TRUE;
    case FB_OP_TANH: *r = ctanh (z); return TRUE;
    case FB_OP_SIN: *r = csin (z); return TRUE;
    case FB_OP_COS: *r = ccos (z); return TRUE;
    case FB_OP_TAN: *r = ctan (z); return TRUE;
    case FB_OP_SIGN: *r = z == 0 ? 0 : z / cabs (z); return TRUE;
    default: return FALSE;
    }
}

static gboolean
complex_binary (FbOpcode op, double complex a, double complex b, double complex *r)
{
  switch (op)
    {
    case FB_OP_ADD: *r = a + b; return TRUE;
    case FB_OP_SUBTRACT: *r = a - b; return TRUE;
    case FB_OP_MULTIPLY: *r = a * b; return TRUE;
    case FB_OP_DIVIDE: *r = a / b; return TRUE;
    case FB_OP_POWER: *r = (a == 0 && b == 0) ? 1 : cpow (a, b); return TRUE;
    default: return FALSE;
    }
}

/* -------------------------------------------------------- dispatchers */

static gboolean
unsupported_for_type (FbInstr *instr, FbElemType t, GError **error)
{
  _fb_interp_error (error, instr, "%s is not defined for %s", fb_opcode_name (instr->opcode),
                    fb_elem_type_name (t));
  return FALSE;
}

static gboolean
eval_unary (FbInstr *instr, const FbLiteral *in, FbLiteral *out, int64_t n, GError **error)
{
  FbOpcode op = instr->opcode;
  FbElemType t = in->shape->type, ot = out->shape->type;
  FbElemKind k = fb_elem_type_kind (t);

  switch (op)
    {
    case FB_OP_IS_FINITE:
      if (k != FB_KIND_FLOAT)
        return unsupported_for_type (instr, t, error);
      for (int64_t i = 0; i < n; i++)
        out->data[i] = isfinite (fb_literal_get_f64 (in, i));
      return TRUE;
    case FB_OP_REAL:
    case FB_OP_IMAG:
      for (int64_t i = 0; i < n; i++)
        {
          double complex z = get_c (in, i);
          set_float (out, i, op == FB_OP_REAL ? creal (z) : cimag (z));
        }
      return TRUE;
    default:
      break;
    }

  if (k == FB_KIND_COMPLEX)
    {
      if (op == FB_OP_ABS)
        {
          for (int64_t i = 0; i < n; i++)
            set_float (out, i, cabs (get_c (in, i)));
          return TRUE;
        }
      for (int64_t i = 0; i < n; i++)
        {
          double complex r;
          if (!complex_unary (op, get_c (in, i), &r))
            return unsupported_for_type (instr, t, error);
          set_c (out, i, r);
        }
      return TRUE;
    }

  if (k == FB_KIND_FLOAT)
    {
      F1 f = float_unary_fn (op);
      if (f == NULL)
        return unsupported_for_type (instr, t, error);
      if (t == FB_F32 && ot == FB_F32)
        {
          const float *a = (const float *) in->data;
          float *o = (float *) out->data;
          for (int64_t i = 0; i < n; i++)
            o[i] = (float) f (a[i]);
          return TRUE;
        }
      if (t == FB_F64 && ot == FB_F64)
        {
          const double *a = (const double *) in->data;
          double *o = (double *) out->data;
          for (int64_t i = 0; i < n; i++)
            o[i] = f (a[i]);
          return TRUE;
        }
      for (int64_t i = 0; i < n; i++)
        set_float (out, i, f (fb_literal_get_f64 (in, i)));
      return TRUE;
    }

  if (k == FB_KIND_PRED)
    {
      if (op != FB_OP_NOT)
        return unsupported_for_type (instr, t, error);
      for (int64_t i = 0; i < n; i++)
        out->data[i] = !in->data[i];
      return TRUE;
    }

  if (k != FB_KIND_SINT && k != FB_KIND_UINT)
    return unsupported_for_type (instr, t, error);
  int bits = bits_of (t);
  gboolean is_signed = k == FB_KIND_SINT;
  for (int64_t i = 0; i < n; i++)
    {
      uint64_t r;
      if (!int_unary (op, is_signed, bits, fb_literal_get_s64 (in, i), &r))
        return unsupported_for_type (instr, t, error);
      fb_literal_set_s64 (out, i, (int64_t) r);
    }
  return TRUE;
}

static gboolean
eval_binary (FbInstr *instr, const FbLiteral *x, const FbLiteral *y, FbLiteral *out, int64_t n,
             GError **error)
{
  FbOpcode op = instr->opcode;
  FbElemType t = x->shape->type;
  FbElemKind k = fb_elem_type_kind (t);

  if (y->shape->type != t && op != FB_OP_COMPLEX)
    {
      _fb_interp_error (error, instr, "operands have different element types (%s and %s)",
                        fb_elem_type_name (t), fb_elem_type_name (y->shape->type));
      return FALSE;
    }
  if (op == FB_OP_COMPLEX)
    {
      for (int64_t i = 0; i < n; i++)
        set_c (out, i, CMPLX (fb_literal_get_f64 (x, i), fb_literal_get_f64 (y, i)));
      return TRUE;
    }

  if (k == FB_KIND_COMPLEX)
    {
      for (int64_t i = 0; i < n; i++)
        {
          double complex r;
          if (!complex_binary (op, get_c (x, i), get_c (y, i), &r))
            return unsupported_for_type (instr, t, error);
          set_c (out, i, r);
        }
      return TRUE;
    }

  if (k == FB_KIND_FLOAT)
    {
      F2 f = float_binary_fn (op);
      if (f == NULL)
        return unsupported_for_type (instr, t, error);
      if (t == FB_F32 && out->shape->type == FB_F32)
        {
          const float *a = (const float *) x->data, *b = (const float *) y->data;
          float *o = (float *) out->data;
          switch (op)
            {
            case FB_OP_ADD: for (int64_t i = 0; i < n; i++) o[i] = a[i] + b[i]; break;
            case FB_OP_SUBTRACT: for (int64_t i = 0; i < n; i++) o[i] = a[i] - b[i]; break;
            case FB_OP_MULTIPLY: for (int64_t i = 0; i < n; i++) o[i] = a[i] * b[i]; break;
            case FB_OP_DIVIDE: for (int64_t i = 0; i < n; i++) o[i] = a[i] / b[i]; break;
            default: for (int64_t i = 0; i < n; i++) o[i] = (float) f (a[i], b[i]); break;
            }
          return TRUE;
        }
      if (t == FB_F64 && out->shape->type == FB_F64)
        {
          const double *a = (const double *) x->data, *b = (const double *) y->data;
          double *o = (double *) out->data;
          for (int64_t i = 0; i < n; i++)
            o[i] = f (a[i], b[i]);
          return TRUE;
        }
      for (int64_t i = 0; i < n; i++)
        set_float (out, i, f (fb_literal_get_f64 (x, i), fb_literal_get_f64 (y, i)));
      return TRUE;
    }

  if (k == FB_KIND_PRED)
    {
      for (int64_t i = 0; i < n; i++)
        {
          guint8 a = x->data[i] != 0, b = y->data[i] != 0;
          switch (op)
            {
            case FB_OP_AND: case FB_OP_MULTIPLY: case FB_OP_MINIMUM: out->data[i] = a & b; break;
            case FB_OP_OR: case FB_OP_ADD: case FB_OP_MAXIMUM: out->data[i] = a | b; break;
            case FB_OP_XOR: out->data[i] = a ^ b; break;
            default: return unsupported_for_type (instr, t, error);
            }
        }
      return TRUE;
    }

  if (k != FB_KIND_SINT && k != FB_KIND_UINT)
    return unsupported_for_type (instr, t, error);
  int bits = bits_of (t);
  gboolean is_signed = k == FB_KIND_SINT;
  if (t == FB_S32 && (op == FB_OP_ADD || op == FB_OP_SUBTRACT || op == FB_OP_MULTIPLY))
    {
      const uint32_t *a = (const uint32_t *) x->data, *b = (const uint32_t *) y->data;
      uint32_t *o = (uint32_t *) out->data;
      for (int64_t i = 0; i < n; i++)
        o[i] = op == FB_OP_ADD ? a[i] + b[i] : op == FB_OP_SUBTRACT ? a[i] - b[i] : a[i] * b[i];
      return TRUE;
    }
  for (int64_t i = 0; i < n; i++)
    {
      uint64_t r;
      if (!int_binary (op, is_signed, bits, fb_literal_get_s64 (x, i), fb_literal_get_s64 (y, i), &r))
        return unsupported_for_type (instr, t, error);
      fb_literal_set_s64 (out, i, (int64_t) r);
    }
  return TRUE;
}

/* Element @i of @lit, or element 0 when it is a scalar broadcast. */
static inline int64_t
at (const FbLiteral *lit, int64_t i)
{
  return lit->shape->rank == 0 ? 0 : i;
}

static gboolean
eval_select (FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, int64_t n, GError **error)
{
  int bytes = fb_elem_type_bytes (out->shape->type);
  if (ops[1]->shape->type != out->shape->type || ops[2]->shape->type != out->shape->type)
    {
      _fb_interp_error (error, instr, "select branches must have the result's element type");
      return FALSE;
    }
  if (ops[0]->shape->type != FB_PRED)
    {
      _fb_interp_error (error, instr, "select needs a pred condition");
      return FALSE;
    }
  for (int64_t i = 0; i < n; i++)
    {
      const FbLiteral *src = ops[0]->data[at (ops[0], i)] ? ops[1] : ops[2];
      memcpy (out->data + i * bytes, src->data + at (src, i) * bytes, bytes);
    }
  return TRUE;
}

static gboolean
eval_clamp (FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, int64_t n, GError **error)
{
  FbElemType t = out->shape->type;
  FbElemKind k = fb_elem_type_kind (t);
  for (int j = 0; j < 3; j++)
    if (ops[j]->shape->type != t)
      {
        _fb_interp_error (error, instr, "clamp operands must have the result's element type");
        return FALSE;
      }
  if (k == FB_KIND_FLOAT)
    {
      for (int64_t i = 0; i < n; i++)
        {
          double lo = fb_literal_get_f64 (ops[0], at (ops[0], i));
          double x = fb_literal_get_f64 (ops[1], at (ops[1], i));
          double hi = fb_literal_get_f64 (ops[2], at (ops[2], i));
          set_float (out, i, f_min (hi, f_max (lo, x)));
        }
      return TRUE;
    }
  if (k != FB_KIND_SINT && k != FB_KIND_UINT && k != FB_KIND_PRED)
    return unsupported_for_type (instr, t, error);
  gboolean is_signed = k == FB_KIND_SINT;
  int bits = bits_of (t);
  for (int64_t i = 0; i < n; i++)
    {
      uint64_t r;
      int64_t lo = fb_literal_get_s64 (ops[0], at (ops[0], i));
      int64_t x = fb_literal_get_s64 (ops[1], at (ops[1], i));
      int64_t hi = fb_literal_get_s64 (ops[2], at (ops[2], i));
      int_binary (FB_OP_MAXIMUM, is_signed, bits, lo, x, &r);
      int64_t m = is_signed ? sext (r, bits) : (int64_t) r;
      int_binary (FB_OP_MINIMUM, is_signed, bits, hi, m, &r);
      fb_literal_set_s64 (out, i, (int64_t) r);
    }
  return TRUE;
}

gboolean
_fb_interp_elementwise (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops,
                        FbLiteral **out, GError **error)
{
  FbOpcode op = instr->opcode;
  int arity = instr->n_operands;
  int need = op == FB_OP_SELECT || op == FB_OP_CLAMP ? 3 : fb_opcode_arity (op);

  if (!fb_shape_is_array (instr->shape))
    {
      _fb_interp_error (error, instr, "%s must produce an array", fb_opcode_name (op));
      return FALSE;
    }
  if (need < 0 || arity != need)
    {
      _fb_interp_error (error, instr, "%s takes %d operands, not %d", fb_opcode_name (op), need, arity);
      return FALSE;
    }
  int64_t n = fb_shape_elements (instr->shape);
  for (int j = 0; j < arity; j++)
    {
      if (ops[j]->data == NULL || !fb_elem_type_is_array (ops[j]->shape->type))
        {
          _fb_interp_error (error, instr, "operand %d is not an array", j);
          return FALSE;
        }
      gboolean scalar_ok = (op == FB_OP_CLAMP && j != 1) || (op == FB_OP_SELECT && j == 0);
      int64_t m = fb_shape_elements (ops[j]->shape);
      if (op == FB_OP_BITCAST_CONVERT)
        continue;
      if (m != n && !(scalar_ok && ops[j]->shape->rank == 0))
        {
          _fb_interp_error (error, instr, "operand %d has %" G_GINT64_FORMAT " elements but the result has %"
                            G_GINT64_FORMAT, j, m, n);
          return FALSE;
        }
    }

  FbLiteral *res = fb_literal_new (ctx->arena, instr->shape);
  gboolean ok;
  switch (op)
    {
    case FB_OP_COMPARE:
      ok = eval_compare (instr, ops, res, n, error);
      break;
    case FB_OP_SELECT:
      ok = eval_select (instr, ops, res, n, error);
      break;
    case FB_OP_CLAMP:
      ok = eval_clamp (instr, ops, res, n, error);
      break;
    case FB_OP_CONVERT:
      ok = eval_convert (instr, ops[0], res, n, error);
      break;
    case FB_OP_BITCAST_CONVERT:
      ok = eval_bitcast_convert (instr, ops[0], res, error);
      break;
    case FB_OP_REDUCE_PRECISION:
      ok = eval_reduce_precision (instr, ops[0], res, n, error);
      break;
    default:
      if (arity == 1)
        ok = eval_unary (instr, ops[0], res, n, error);
      else if (arity == 2)
        ok = eval_binary (instr, ops[0], ops[1], res, n, error);
      else
        {
          _fb_interp_error (error, instr, "the interpreter cannot execute %s", fb_opcode_name (op));
          ok = FALSE;
        }
      break;
    }
  if (!ok)
    return FALSE;
  *out = res;
  return TRUE;
}
