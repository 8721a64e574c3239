/* SPDX-License-Identifier: MIT
 *
 * Tests of the reference interpreter on small HLO snippets whose results
 * were worked out by hand: integer and float edge cases of elementwise ops,
 * data movement, control flow, the custom-call map, the backend registry,
 * and rng-bit-generator, which is checked against a second, independent
 * implementation of Threefry-2x32-20 and Philox-4x32-10 written here from
 * the published algorithms and verified on the Random123 known answers.
 */
#include <math.h>
#include <string.h>

#include "fb-hlo.h"
#include "fb-interp.h"

/* ------------------------------------------------------------ helpers */

typedef struct {
  FbModule *module;
  FbArena  *arena;
  GError   *error;
} Run;

static void
run_clear (Run *run)
{
  if (run->module != NULL)
    fb_module_free (run->module);
  if (run->arena != NULL)
    fb_arena_free (run->arena);
  g_clear_error (&run->error);
  memset (run, 0, sizeof *run);
}

/* Parses @text and runs its entry; NULL with run->error on failure. */
static FbLiteral *
run_hlo (Run *run, const char *text, int n_args, FbLiteral *const *args, const FbCustomCallMap *map)
{
  GError *error = NULL;
  run->module = fb_hlo_parse (text, strlen (text), "test.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (run->module);
  if (run->arena == NULL)
    run->arena = fb_arena_new ();
  return fb_interp_run (run->module, run->module->entry, run->arena, n_args, args, map, &run->error);
}

static FbLiteral *
run_ok (Run *run, const char *text, int n_args, FbLiteral *const *args)
{
  FbLiteral *r = run_hlo (run, text, n_args, args, NULL);
  g_assert_no_error (run->error);
  g_assert_nonnull (r);
  return r;
}

static FbLiteral *
vec_f32 (Run *run, int n, const float *v)
{
  if (run->arena == NULL)
    run->arena = fb_arena_new ();
  int64_t dims[1] = { n };
  FbLiteral *lit = fb_literal_new (run->arena, fb_shape_new_array (run->arena, FB_F32, 1, dims));
  memcpy (lit->data, v, sizeof (float) * n);
  return lit;
}

static void
assert_s64s (const FbLiteral *lit, int n, const int64_t *want)
{
  g_assert_cmpint (fb_shape_elements (lit->shape), ==, n);
  for (int i = 0; i < n; i++)
    {
      if (fb_literal_get_s64 (lit, i) != want[i])
        g_error ("element %d: got %" G_GINT64_FORMAT ", want %" G_GINT64_FORMAT, i,
                 fb_literal_get_s64 (lit, i), want[i]);
    }
}

static void
assert_f64s (const FbLiteral *lit, int n, const double *want)
{
  g_assert_cmpint (fb_shape_elements (lit->shape), ==, n);
  for (int i = 0; i < n; i++)
    {
      double got = fb_literal_get_f64 (lit, i);
      gboolean same = (isnan (got) && isnan (want[i]))
                      || (got == want[i] && signbit (got) == signbit (want[i]));
      if (!same)
        g_error ("element %d: got %.17g, want %.17g", i, got, want[i]);
    }
}

#define S64S(lit, ...) do { const int64_t w_[] = { __VA_ARGS__ }; assert_s64s ((lit), G_N_ELEMENTS (w_), w_); } while (0)
#define F64S(lit, ...) do { const double w_[] = { __VA_ARGS__ }; assert_f64s ((lit), G_N_ELEMENTS (w_), w_); } while (0)

/* -------------------------------------------------------- elementwise */

static void
test_int_divide (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  a = s32[5] constant({7, -7, 5, -2147483648, -2147483648})\n"
    "  b = s32[5] constant({2, 2, 0, -1, 0})\n"
    "  d = s32[5] divide(a, b)\n"
    "  r = s32[5] remainder(a, b)\n"
    "  ua = u32[3] constant({5, 4294967295, 9})\n"
    "  ub = u32[3] constant({0, 2, 4})\n"
    "  ud = u32[3] divide(ua, ub)\n"
    "  ur = u32[3] remainder(ua, ub)\n"
    "  c = s8[3] constant({-128, 127, 100})\n"
    "  m1 = s8[3] constant({-1, 1, 2})\n"
    "  cm = s8[3] multiply(c, m1)\n"
    "  cd = s8[3] divide(c, m1)\n"
    "  ROOT t = (s32[5], s32[5], u32[3], u32[3], s8[3], s8[3]) tuple(d, r, ud, ur, cm, cd)\n"
    "}\n", 0, NULL);
  S64S (r->elems[0], 3, -3, -1, G_MININT32, -1);
  S64S (r->elems[1], 1, -1, 5, 0, G_MININT32);
  S64S (r->elems[2], 4294967295, 2147483647, 2);
  S64S (r->elems[3], 5, 1, 1);
  S64S (r->elems[4], -128, 127, -56);     /* wraps: -(-128) = -128, 200 = -56 */
  S64S (r->elems[5], -128, 127, 50);      /* INT8_MIN / -1 = INT8_MIN */
  run_clear (&run);
}

static void
test_shifts (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  x = s32[4] constant({1, 1, 1, 3})\n"
    "  n = s32[4] constant({3, 31, 32, -1})\n"
    "  shl = s32[4] shift-left(x, n)\n"
    "  y = s32[4] constant({-8, -8, 8, -8})\n"
    "  m = s32[4] constant({1, 40, 40, -2})\n"
    "  sra = s32[4] shift-right-arithmetic(y, m)\n"
    "  k = s32[4] constant({28, 32, 1, 0})\n"
    "  srl = s32[4] shift-right-logical(y, k)\n"
    "  b = u8[2] constant({255, 128})\n"
    "  bk = u8[2] constant({4, 8})\n"
    "  bsrl = u8[2] shift-right-logical(b, bk)\n"
    "  ROOT t = (s32[4], s32[4], s32[4], u8[2]) tuple(shl, sra, srl, bsrl)\n"
    "}\n", 0, NULL);
  S64S (r->elems[0], 8, G_MININT32, 0, 0);
  S64S (r->elems[1], -4, -1, 0, -1);
  S64S (r->elems[2], 15, 0, 4, -8);
  S64S (r->elems[3], 15, 0);
  run_clear (&run);
}

static void
test_convert (void)
{
  Run run = { 0 };
  const float v[] = { 300.5f, -5.7f, NAN, INFINITY, -INFINITY, 3e9f, 2.9f };
  FbLiteral *arg = vec_f32 (&run, 7, v);
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  p = f32[7] parameter(0)\n"
    "  u = u8[7] convert(p)\n"
    "  s = s8[7] convert(p)\n"
    "  i = s32[7] convert(p)\n"
    "  q = pred[7] convert(p)\n"
    "  big = u64[2] constant({18446744073709551615, 5})\n"
    "  bf = f64[2] convert(big)\n"
    "  neg = s32[2] constant({-1, 70000})\n"
    "  nu = u16[2] convert(neg)\n"
    "  ROOT t = (u8[7], s8[7], s32[7], pred[7], f64[2], u16[2]) tuple(u, s, i, q, bf, nu)\n"
    "}\n", 1, &arg);
  S64S (r->elems[0], 255, 0, 0, 255, 0, 255, 2);
  S64S (r->elems[1], 127, -5, 0, 127, -128, 127, 2);
  S64S (r->elems[2], 300, -5, 0, G_MAXINT32, G_MININT32, G_MAXINT32, 2);
  S64S (r->elems[3], 1, 1, 1, 1, 1, 1, 1);
  F64S (r->elems[4], 18446744073709551616.0, 5.0);
  S64S (r->elems[5], 65535, 4464);
  run_clear (&run);
}

static void
test_half_rounding (void)
{
  Run run = { 0 };
  /* bf16 keeps 7 mantissa bits: 1 + 2^-8 is a tie and rounds to even (1),
   * (1 + 2^-7) + 2^-8 is a tie and rounds up to 1 + 2^-6. f16 at 2048 has
   * a spacing of 2: 2048 + 1 rounds to 2048, 2050 + 1 to 2052. */
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  a = bf16[2] constant({1, 1.0078125})\n"
    "  b = bf16[2] constant({0.00390625, 0.00390625})\n"
    "  s = bf16[2] add(a, b)\n"
    "  h = f16[2] constant({2048, 2050})\n"
    "  one = f16[2] constant({1, 1})\n"
    "  hs = f16[2] add(h, one)\n"
    "  f = f32[2] constant({1.00390625, 65520})\n"
    "  fb = bf16[2] convert(f)\n"
    "  fh = f16[2] convert(f)\n"
    "  ROOT t = (bf16[2], f16[2], bf16[2], f16[2]) tuple(s, hs, fb, fh)\n"
    "}\n", 0, NULL);
  F64S (r->elems[0], 1.0, 1.015625);
  F64S (r->elems[1], 2048.0, 2052.0);
  F64S (r->elems[2], 1.0, 65536.0);
  F64S (r->elems[3], 1.00390625, INFINITY);   /* 65520 is past f16's largest finite value */
  run_clear (&run);
}

static void
test_compare_totalorder (void)
{
  Run run = { 0 };
  float v[8] = { -NAN, -INFINITY, -1.0f, -0.0f, 0.0f, 1.0f, INFINITY, NAN };
  /* make the first one a NaN with the sign bit set, the last one without */
  uint32_t neg_nan = 0xffc00000u, pos_nan = 0x7fc00000u;
  memcpy (&v[0], &neg_nan, 4);
  memcpy (&v[7], &pos_nan, 4);
  FbLiteral *arg = vec_f32 (&run, 8, v);
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  p = f32[8] parameter(0)\n"
    "  lo = f32[7] slice(p), slice={[0:7]}\n"
    "  hi = f32[7] slice(p), slice={[1:8]}\n"
    "  tlt = pred[7] compare(lo, hi), direction=LT, type=TOTALORDER\n"
    "  flt = pred[7] compare(lo, hi), direction=LT\n"
    "  teq = pred[8] compare(p, p), direction=EQ, type=TOTALORDER\n"
    "  fne = pred[8] compare(p, p), direction=NE\n"
    "  u = u32[2] constant({1, 4294967295})\n"
    "  ult = pred[2] compare(u, u), direction=LT\n"
    "  s = s32[2] constant({-1, 1})\n"
    "  rs = s32[2] reverse(s), dimensions={0}\n"
    "  slt = pred[2] compare(s, rs), direction=LT, type=SIGNED\n"
    "  sltu = pred[2] compare(s, rs), direction=LT, type=UNSIGNED\n"
    "  ROOT t = (pred[7], pred[7], pred[8], pred[8], pred[2], pred[2], pred[2]) tuple(tlt, flt, teq, fne, ult, slt, sltu)\n"
    "}\n", 1, &arg);
  S64S (r->elems[0], 1, 1, 1, 1, 1, 1, 1);
  S64S (r->elems[1], 0, 1, 1, 0, 1, 1, 0);   /* NaN is unordered, -0 == +0 */
  S64S (r->elems[2], 1, 1, 1, 1, 1, 1, 1, 1);
  S64S (r->elems[3], 1, 0, 0, 0, 0, 0, 0, 1);
  S64S (r->elems[4], 0, 0);
  S64S (r->elems[5], 1, 0);
  S64S (r->elems[6], 0, 1);
  run_clear (&run);
}

static void
test_float_unary (void)
{
  Run run = { 0 };
  const float v[] = { 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, -0.0f };
  FbLiteral *arg = vec_f32 (&run, 6, v);
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  p = f32[6] parameter(0)\n"
    "  even = f32[6] round-nearest-even(p)\n"
    "  afz = f32[6] round-nearest-afz(p)\n"
    "  sg = f32[6] sign(p)\n"
    "  rp = f32[6] reduce-precision(p), exponent_bits=2, mantissa_bits=1\n"
    "  x = f32[3] constant({1.00390625, 1e30, 1.5})\n"
    "  bfp = f32[3] reduce-precision(x), exponent_bits=8, mantissa_bits=7\n"
    "  hfp = f32[3] reduce-precision(x), exponent_bits=5, mantissa_bits=10\n"
    "  n = f32[3] constant({nan, 1, -inf})\n"
    "  m = f32[3] constant({1, nan, 0})\n"
    "  mx = f32[3] maximum(n, m)\n"
    "  fin = pred[3] is-finite(n)\n"
    "  ROOT t = (f32[6], f32[6], f32[6], f32[6], f32[3], f32[3], f32[3], pred[3]) tuple(even, afz, sg, rp, bfp, hfp, mx, fin)\n"
    "}\n", 1, &arg);
  F64S (r->elems[0], 0.0, 2.0, 2.0, -0.0, -2.0, -0.0);
  F64S (r->elems[1], 1.0, 2.0, 3.0, -1.0, -3.0, -0.0);
  F64S (r->elems[2], 1.0, 1.0, 1.0, -1.0, -1.0, -0.0);
  /* 2 exponent bits, 1 mantissa bit: normal values are 1, 1.5, 2, 3 (and
   * negatives); 0.5 underflows to 0, 2.5 ties to even 2, 1.5 stays. */
  F64S (r->elems[3], 0.0, 1.5, 2.0, -0.0, -2.0, -0.0);
  F64S (r->elems[4], 1.0, 1.0002555517425873e30, 1.5);   /* 0x7149f2ca rounds to 0x714a0000 */
  F64S (r->elems[5], 1.00390625, INFINITY, 1.5);
  F64S (r->elems[6], NAN, NAN, 0.0);
  S64S (r->elems[7], 0, 1, 0);
  run_clear (&run);
}

static void
test_int_unary_and_power (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  x = s32[4] constant({0, 1, -1, 255})\n"
    "  clz = s32[4] count-leading-zeros(x)\n"
    "  pc = s32[4] popcnt(x)\n"
    "  sg = s32[4] sign(x)\n"
    "  b = s32[5] constant({2, 3, 1, -1, 0})\n"
    "  e = s32[5] constant({10, 2, -5, -1, 0})\n"
    "  pw = s32[5] power(b, e)\n"
    "  a = s32[2] constant({-2147483648, -5})\n"
    "  ab = s32[2] abs(a)\n"
    "  h1 = u32[1] constant({4294967295})\n"
    "  mh = u32[1] mulhi(h1, h1)\n"
    "  ROOT t = (s32[4], s32[4], s32[4], s32[5], s32[2], u32[1]) tuple(clz, pc, sg, pw, ab, mh)\n"
    "}\n", 0, NULL);
  S64S (r->elems[0], 32, 31, 0, 24);
  S64S (r->elems[1], 0, 1, 32, 8);
  S64S (r->elems[2], 0, 1, -1, 1);
  S64S (r->elems[3], 1024, 9, 1, 0, 1);
  S64S (r->elems[4], G_MININT32, 5);
  S64S (r->elems[5], 4294967294);
  run_clear (&run);
}

static void
test_select_clamp_bitcast (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  c = pred[3] constant({true, false, true})\n"
    "  a = s32[3] constant({1, 2, 3})\n"
    "  b = s32[3] constant({10, 20, 30})\n"
    "  s = s32[3] select(c, a, b)\n"
    "  lo = s32[] constant(2)\n"
    "  hi = s32[] constant(25)\n"
    "  cl = s32[3] clamp(lo, b, hi)\n"
    "  f = f32[2] constant({1, -2})\n"
    "  bits = u32[2] bitcast-convert(f)\n"
    "  w = u8[2,4] bitcast-convert(f)\n"
    "  ROOT t = (s32[3], s32[3], u32[2], u8[2,4]) tuple(s, cl, bits, w)\n"
    "}\n", 0, NULL);
  S64S (r->elems[0], 1, 20, 3);
  S64S (r->elems[1], 10, 20, 25);
  S64S (r->elems[2], 0x3f800000, 0xc0000000);
  S64S (r->elems[3], 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0);
  run_clear (&run);
}

/* ----------------------------------------------------------- movement */

static void
test_slice_pad (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  x = s32[3] constant({1, 2, 3})\n"
    "  z = s32[] constant(0)\n"
    "  p = s32[6] pad(x, z), padding=-1_2_1\n"
    "  q = s32[2,3] constant({{1, 2, 3}, {4, 5, 6}})\n"
    "  nine = s32[] constant(9)\n"
    "  pq = s32[3,3] pad(q, nine), padding=0_1x1_-1\n"
    "  i = s32[10] iota(), iota_dimension=0\n"
    "  sl = s32[3] slice(i), slice={[1:8:3]}\n"
    "  s2 = s32[1,2] slice(q), slice={[1:2], [0:3:2]}\n"
    "  ROOT t = (s32[6], s32[3,3], s32[3], s32[1,2]) tuple(p, pq, sl, s2)\n"
    "}\n", 0, NULL);
  S64S (r->elems[0], 0, 2, 0, 3, 0, 0);
  S64S (r->elems[1], 9, 1, 2, 9, 4, 5, 9, 9, 9);
  S64S (r->elems[2], 1, 4, 7);
  S64S (r->elems[3], 4, 6);
  run_clear (&run);
}

static void
test_dynamic_slice (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  x = s32[5] iota(), iota_dimension=0\n"
    "  four = s32[] constant(4)\n"
    "  neg = s32[] constant(-3)\n"
    "  a = s32[2] dynamic-slice(x, four), dynamic_slice_sizes={2}\n"
    "  b = s32[2] dynamic-slice(x, neg), dynamic_slice_sizes={2}\n"
    "  u = s32[2] constant({70, 80})\n"
    "  c = s32[5] dynamic-update-slice(x, u, four)\n"
    "  m = s32[2,3] constant({{1, 2, 3}, {4, 5, 6}})\n"
    "  one = s32[] constant(1)\n"
    "  d = s32[1,2] dynamic-slice(m, one, one), dynamic_slice_sizes={1,2}\n"
    "  ROOT t = (s32[2], s32[2], s32[5], s32[1,2]) tuple(a, b, c, d)\n"
    "}\n", 0, NULL);
  S64S (r->elems[0], 3, 4);      /* start 4 clamped to 5 - 2 = 3 */
  S64S (r->elems[1], 0, 1);      /* start -3 clamped to 0 */
  S64S (r->elems[2], 0, 1, 2, 70, 80);
  S64S (r->elems[3], 5, 6);
  run_clear (&run);
}

static void
test_concat_transpose_reverse_broadcast (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  a = s32[2,2] constant({{1, 2}, {3, 4}})\n"
    "  b = s32[2,1] constant({{5}, {6}})\n"
    "  c = s32[2,3] concatenate(a, b), dimensions={1}\n"
    "  t = s32[3,2] transpose(c), dimensions={1,0}\n"
    "  r = s32[2,3] reverse(c), dimensions={0,1}\n"
    "  v = s32[2] constant({7, 8})\n"
    "  bc = s32[2,3] broadcast(v), dimensions={0}\n"
    "  br = s32[3,2] broadcast(v), dimensions={1}\n"
    "  rs = s32[3,2] reshape(c)\n"
    "  ROOT out = (s32[2,3], s32[3,2], s32[2,3], s32[2,3], s32[3,2], s32[3,2]) tuple(c, t, r, bc, br, rs)\n"
    "}\n", 0, NULL);
  S64S (r->elems[0], 1, 2, 5, 3, 4, 6);
  S64S (r->elems[1], 1, 3, 2, 4, 5, 6);
  S64S (r->elems[2], 6, 4, 3, 5, 2, 1);
  S64S (r->elems[3], 7, 7, 7, 8, 8, 8);
  S64S (r->elems[4], 7, 8, 7, 8, 7, 8);
  S64S (r->elems[5], 1, 2, 5, 3, 4, 6);
  run_clear (&run);
}

/* ------------------------------------------------------- control flow */

static void
test_while_counter (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "cond {\n"
    "  s = (s32[], f32[]) parameter(0)\n"
    "  i = s32[] get-tuple-element(s), index=0\n"
    "  n = s32[] constant(10)\n"
    "  ROOT lt = pred[] compare(i, n), direction=LT\n"
    "}\n"
    "body {\n"
    "  s = (s32[], f32[]) parameter(0)\n"
    "  i = s32[] get-tuple-element(s), index=0\n"
    "  x = f32[] get-tuple-element(s), index=1\n"
    "  one = s32[] constant(1)\n"
    "  i1 = s32[] add(i, one)\n"
    "  fi = f32[] convert(i1)\n"
    "  x1 = f32[] add(x, fi)\n"
    "  ROOT t = (s32[], f32[]) tuple(i1, x1)\n"
    "}\n"
    "ENTRY e {\n"
    "  z = s32[] constant(0)\n"
    "  f = f32[] constant(0.5)\n"
    "  init = (s32[], f32[]) tuple(z, f)\n"
    "  ROOT w = (s32[], f32[]) while(init), condition=cond, body=body\n"
    "}\n", 0, NULL);
  S64S (r->elems[0], 10);
  F64S (r->elems[1], 55.5);
  run_clear (&run);
}

static const char *conditional_text =
  "HloModule m\n"
  "double {\n"
  "  p = s32[] parameter(0)\n"
  "  ROOT d = s32[] add(p, p)\n"
  "}\n"
  "negate {\n"
  "  p = s32[] parameter(0)\n"
  "  ROOT n = s32[] negate(p)\n"
  "}\n"
  "square {\n"
  "  p = s32[] parameter(0)\n"
  "  ROOT s = s32[] multiply(p, p)\n"
  "}\n"
  "ENTRY e {\n"
  "  i = s32[] parameter(0)\n"
  "  x = s32[] constant(7)\n"
  "  ROOT c = s32[] conditional(i, x, x, x), branch_computations={double, negate, square}\n"
  "}\n";

static int64_t
run_branch (int32_t index)
{
  Run run = { 0 };
  run.arena = fb_arena_new ();
  FbLiteral *arg = fb_literal_new (run.arena, fb_shape_new_scalar (run.arena, FB_S32));
  fb_literal_set_s64 (arg, 0, index);
  FbLiteral *r = run_ok (&run, conditional_text, 1, &arg);
  int64_t v = fb_literal_get_s64 (r, 0);
  run_clear (&run);
  return v;
}

static void
test_conditional (void)
{
  g_assert_cmpint (run_branch (0), ==, 14);
  g_assert_cmpint (run_branch (1), ==, -7);
  g_assert_cmpint (run_branch (2), ==, 49);
  /* out of range, either way: the last branch */
  g_assert_cmpint (run_branch (3), ==, 49);
  g_assert_cmpint (run_branch (-1), ==, 49);

  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "yes {\n"
    "  p = f32[] parameter(0)\n"
    "  ROOT y = f32[] exponential(p)\n"
    "}\n"
    "no {\n"
    "  p = s32[] parameter(0)\n"
    "  ROOT n = f32[] convert(p)\n"
    "}\n"
    "ENTRY e {\n"
    "  t = pred[] constant(true)\n"
    "  f = pred[] constant(false)\n"
    "  z = f32[] constant(0)\n"
    "  k = s32[] constant(3)\n"
    "  a = f32[] conditional(t, z, k), true_computation=yes, false_computation=no\n"
    "  b = f32[] conditional(f, z, k), true_computation=yes, false_computation=no\n"
    "  ROOT r = (f32[], f32[]) tuple(a, b)\n"
    "}\n", 0, NULL);
  F64S (r->elems[0], 1.0);
  F64S (r->elems[1], 3.0);
  run_clear (&run);
}

static void
test_call_map_fusion (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "axpy {\n"
    "  a = f32[] parameter(0)\n"
    "  x = f32[3] parameter(1)\n"
    "  ab = f32[3] broadcast(a), dimensions={}\n"
    "  ROOT m = f32[3] multiply(ab, x)\n"
    "}\n"
    "sq {\n"
    "  x = f32[] parameter(0)\n"
    "  ROOT m = f32[] multiply(x, x)\n"
    "}\n"
    "fused {\n"
    "  x = f32[3] parameter(0)\n"
    "  ROOT n = f32[3] negate(x)\n"
    "}\n"
    "ENTRY e {\n"
    "  a = f32[] constant(2)\n"
    "  x = f32[3] constant({1, 2, 3})\n"
    "  c = f32[3] call(a, x), to_apply=axpy\n"
    "  s = f32[3] map(c), dimensions={0}, to_apply=sq\n"
    "  ROOT f = f32[3] fusion(s), kind=kLoop, calls=fused\n"
    "}\n", 0, NULL);
  F64S (r, -4.0, -16.0, -36.0);
  run_clear (&run);
}

static void
test_collectives_one_replica (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "sum {\n"
    "  a = f32[] parameter(0)\n"
    "  b = f32[] parameter(1)\n"
    "  ROOT s = f32[] add(a, b)\n"
    "}\n"
    "ENTRY e {\n"
    "  x = f32[2] constant({1, 2})\n"
    "  ar = f32[2] all-reduce(x), replica_groups={}, to_apply=sum\n"
    "  ag = f32[2] all-gather(ar), dimensions={0}, replica_groups={}\n"
    "  cp = f32[2] collective-permute(ag), source_target_pairs={{0,1}}\n"
    "  id = u32[] replica-id()\n"
    "  ROOT t = (f32[2], f32[2], u32[]) tuple(ag, cp, id)\n"
    "}\n", 0, NULL);
  F64S (r->elems[0], 1.0, 2.0);
  F64S (r->elems[1], 0.0, 0.0);   /* nothing is sent to replica 0 */
  S64S (r->elems[2], 0);
  run_clear (&run);
}

static void
test_async_copy_misc (void)
{
  Run run = { 0 };
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "neg {\n"
    "  p = f32[2] parameter(0)\n"
    "  ROOT n = f32[2] negate(p)\n"
    "}\n"
    "ENTRY e {\n"
    "  x = f32[2] constant({1, -3})\n"
    "  as = ((f32[2]), f32[2], s32[]) async-start(x), calls=neg\n"
    "  au = ((f32[2]), f32[2], s32[]) async-update(as)\n"
    "  ad = f32[2] async-done(au)\n"
    "  cs = (f32[2], f32[2], u32[]) copy-start(ad)\n"
    "  cd = f32[2] copy-done(cs)\n"
    "  tok = token[] after-all()\n"
    "  dep = f32[2] add-dependency(cd, tok)\n"
    "  tu = (f32[2]) tuple(dep)\n"
    "  ob = (f32[2]) opt-barrier(tu)\n"
    "  g = f32[2] get-tuple-element(ob), index=0\n"
    "  z = f32[] constant(0)\n"
    "  m = f32[3,5] broadcast(z), dimensions={}\n"
    "  ds = s32[] get-dimension-size(m), dimensions={1}\n"
    "  d = f64[1] constant({1.00390625000090949470177292824})\n"
    "  b = bf16[1] convert(d)\n"
    "  ROOT t = (f32[2], s32[], bf16[1]) tuple(g, ds, b)\n"
    "}\n", 0, NULL);
  F64S (r->elems[0], -1.0, 3.0);
  S64S (r->elems[1], 5);
  /* just above the tie between 1 and 1 + 2^-7: one rounding goes up (two
   * roundings, through f32, would land on 1) */
  F64S (r->elems[2], 1.0078125);
  run_clear (&run);
}

/* ------------------------------------------------------- custom calls */

static const char *custom_call_text =
  "HloModule m\n"
  "ENTRY e {\n"
  "  x = f32[2] constant({1, 2})\n"
  "  s = f32[2] custom-call(x), custom_call_target=\"Sharding\", sharding={replicated}\n"
  "  ROOT cc.3 = f32[2] custom-call(s), custom_call_target=\"Foo\"\n"
  "}\n";

static void
test_custom_call_refused (void)
{
  Run run = { 0 };
  FbLiteral *r = run_hlo (&run, custom_call_text, 0, NULL, NULL);
  g_assert_null (r);
  g_assert_error (run.error, FB_ERROR, FB_ERROR_UNSUPPORTED);
  g_assert_cmpstr (run.error->message, ==,
                   "%cc.3: custom-call target \"Foo\" is not known; map it to a known implementation "
                   "with --custom-call Foo=identity (known: identity, topk)");
  run_clear (&run);
}

static void
test_custom_call_mapped (void)
{
  Run run = { 0 };
  GError *error = NULL;
  FbCustomCallMap *map = fb_custom_call_map_new ();
  g_assert_true (fb_custom_call_map_add_spec (map, "Foo=identity", &error));
  g_assert_no_error (error);
  FbLiteral *r = run_hlo (&run, custom_call_text, 0, NULL, map);
  g_assert_no_error (run.error);
  F64S (r, 1.0, 2.0);

  FbCustomCallImpl impl;
  g_assert_true (fb_custom_call_map_lookup (map, "TopK", &impl, NULL));
  g_assert_cmpint (impl, ==, FB_CC_TOPK);
  g_assert_true (fb_custom_call_map_lookup (map, "SPMDFullToShardShape", &impl, NULL));
  g_assert_cmpint (impl, ==, FB_CC_IDENTITY);
  g_assert_cmpstr (fb_custom_call_impl_name (FB_CC_TOPK), ==, "topk");

  const char *bad[] = { "Foo", "=identity", "Foo=fast" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_false (fb_custom_call_map_add_spec (map, bad[i], &error));
      g_assert_error (error, FB_ERROR, FB_ERROR_USAGE);
      g_assert_nonnull (strstr (error->message, bad[i]));
      g_clear_error (&error);
    }
  fb_custom_call_map_free (map);
  run_clear (&run);
}

/* ------------------------------------------------------------- errors */

static void
test_errors (void)
{
  Run run = { 0 };
  const char *text =
    "HloModule m\n"
    "ENTRY e {\n"
    "  p = f32[3] parameter(0)\n"
    "  ROOT n = f32[3] negate(p)\n"
    "}\n";
  FbLiteral *r = run_hlo (&run, text, 0, NULL, NULL);
  g_assert_null (r);
  g_assert_error (run.error, FB_ERROR, FB_ERROR_USAGE);
  g_assert_nonnull (strstr (run.error->message, "takes 1 argument"));
  g_clear_error (&run.error);

  const float v[2] = { 1, 2 };
  FbLiteral *arg = vec_f32 (&run, 2, v);
  r = fb_interp_run (run.module, run.module->entry, run.arena, 1, &arg, NULL, &run.error);
  g_assert_null (r);
  g_assert_error (run.error, FB_ERROR, FB_ERROR_USAGE);
  g_assert_nonnull (strstr (run.error->message, "f32[2]"));
  g_assert_nonnull (strstr (run.error->message, "f32[3]"));
  run_clear (&run);

  /* An opcode the interpreter does not run. */
  r = run_hlo (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  tok = token[] after-all()\n"
    "  ROOT in = ((f32[2]), token[]) infeed(tok)\n"
    "}\n", 0, NULL, NULL);
  g_assert_null (r);
  g_assert_error (run.error, FB_ERROR, FB_ERROR_UNSUPPORTED);
  g_assert_cmpstr (run.error->message, ==, "%in: the interpreter cannot execute infeed");
  run_clear (&run);

  /* Operands whose shapes disagree with the instruction: an error, not a crash. */
  r = run_hlo (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  a = f32[3] constant({1, 2, 3})\n"
    "  b = f32[2] constant({1, 2})\n"
    "  ROOT s = f32[3] add(a, b)\n"
    "}\n", 0, NULL, NULL);
  g_assert_null (r);
  g_assert_error (run.error, FB_ERROR, FB_ERROR_RUNTIME);
  g_assert_true (g_str_has_prefix (run.error->message, "%s: "));
  run_clear (&run);
}

static void
test_recursion_limit (void)
{
  /* A computation that calls itself cannot come from XLA, but a broken
   * module must give an error rather than overflow the stack. */
  FbModule *m = fb_module_new ("m");
  FbComputation *c = fb_module_add_computation (m, "loop");
  FbShape *s = fb_shape_new_scalar (m->arena, FB_F32);
  FbInstr *k = fb_instr_new (c, NULL, FB_OP_CONSTANT, s, 0, NULL, "k");
  k->literal = fb_literal_new (m->arena, s);
  FbInstr *call = fb_instr_new (c, NULL, FB_OP_CALL, s, 0, NULL, "again");
  fb_instr_set_comp (call, FB_A_TO_APPLY, c);
  c->root = call;
  c->is_entry = TRUE;
  m->entry = c;

  FbArena *arena = fb_arena_new ();
  GError *error = NULL;
  FbLiteral *r = fb_interp_run (m, c, arena, 0, NULL, NULL, &error);
  g_assert_null (r);
  g_assert_error (error, FB_ERROR, FB_ERROR_RUNTIME);
  g_assert_nonnull (strstr (error->message, "nest deeper"));
  g_error_free (error);
  fb_arena_free (arena);
  fb_module_free (m);
}

/* ----------------------------------------------------------- registry */

static void
test_backend_registry (void)
{
  GError *error = NULL;
  const FbBackend *b = fb_backend_lookup ("interp", &error);
  g_assert_no_error (error);
  g_assert_true (b == &fb_interp_backend);
  g_assert_nonnull (strstr (fb_backend_names (), "interp"));
  g_assert_null (fb_backend_lookup ("tpu", &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_USAGE);
  g_assert_nonnull (strstr (error->message, "tpu"));
  g_clear_error (&error);

  const char *text =
    "HloModule m\n"
    "ENTRY e {\n"
    "  p = f32[2] parameter(0)\n"
    "  ROOT e = f32[2] add(p, p)\n"
    "}\n";
  FbModule *m = fb_hlo_parse (text, strlen (text), NULL, 0, &error);
  g_assert_no_error (error);
  g_assert_true (b->available (&error));
  FbBackendOptions opts = { 0 };
  FbExecutable *exe = b->compile (m, &opts, &error);
  g_assert_no_error (error);
  FbArena *arena = fb_arena_new ();
  int64_t dims[1] = { 2 };
  FbLiteral *arg = fb_literal_new (arena, fb_shape_new_array (arena, FB_F32, 1, dims));
  fb_literal_set_f64 (arg, 0, 1.5);
  fb_literal_set_f64 (arg, 1, -4);
  FbLiteral *r = b->execute (exe, arena, 1, &arg, &error);
  g_assert_no_error (error);
  F64S (r, 3.0, -8.0);
  b->free (exe);
  fb_arena_free (arena);
  fb_module_free (m);
}

/* ----------------------------------------------------------------- rng */

/* A second implementation of the two counter-based generators, written
 * from Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC11)
 * and checked below on the Random123 known-answer vectors. */
static uint32_t
ref_rotl (uint32_t x, unsigned n)
{
  return (x << n) | (x >> (32 - n));
}

static void
ref_threefry2x32_20 (const uint32_t key[2], const uint32_t ctr[2], uint32_t out[2])
{
  static const unsigned R[8] = { 13, 15, 26, 6, 17, 29, 16, 24 };
  uint32_t ks[3];
  ks[0] = key[0];
  ks[1] = key[1];
  ks[2] = 0x1BD11BDA ^ key[0] ^ key[1];
  uint32_t x[2] = { ctr[0] + ks[0], ctr[1] + ks[1] };
  for (unsigned round = 0; round < 20; round++)
    {
      x[0] += x[1];
      x[1] = ref_rotl (x[1], R[round % 8]);
      x[1] ^= x[0];
      if (round % 4 == 3)
        {
          unsigned inj = round / 4 + 1;
          x[0] += ks[inj % 3];
          x[1] += ks[(inj + 1) % 3] + inj;
        }
    }
  out[0] = x[0];
  out[1] = x[1];
}

static void
ref_philox4x32_10 (const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4])
{
  uint32_t k[2] = { key[0], key[1] };
  uint32_t c[4] = { ctr[0], ctr[1], ctr[2], ctr[3] };
  for (int round = 0; round < 10; round++)
    {
      if (round > 0)
        {
          k[0] += 0x9E3779B9;
          k[1] += 0xBB67AE85;
        }
      uint64_t p0 = (uint64_t) 0xD2511F53 * c[0];
      uint64_t p1 = (uint64_t) 0xCD9E8D57 * c[2];
      uint32_t n[4] = {
        (uint32_t) (p1 >> 32) ^ c[1] ^ k[0], (uint32_t) p1,
        (uint32_t) (p0 >> 32) ^ c[3] ^ k[1], (uint32_t) p0,
      };
      memcpy (c, n, sizeof c);
    }
  memcpy (out, c, sizeof c);
}

static void
test_rng_reference_vectors (void)
{
  uint32_t o2[2], o4[4];
  const uint32_t z2[2] = { 0, 0 }, z4[4] = { 0, 0, 0, 0 };
  ref_threefry2x32_20 (z2, z2, o2);
  g_assert_cmphex (o2[0], ==, 0x6b200159);
  g_assert_cmphex (o2[1], ==, 0x99ba4efe);
  const uint32_t f2[2] = { 0xffffffff, 0xffffffff };
  ref_threefry2x32_20 (f2, f2, o2);
  g_assert_cmphex (o2[0], ==, 0x1cb996fc);
  g_assert_cmphex (o2[1], ==, 0xbb002be7);
  const uint32_t pk[2] = { 0x13198a2e, 0x03707344 }, pc[2] = { 0x243f6a88, 0x85a308d3 };
  ref_threefry2x32_20 (pk, pc, o2);
  g_assert_cmphex (o2[0], ==, 0xc4923a9c);
  g_assert_cmphex (o2[1], ==, 0x483df7a0);

  ref_philox4x32_10 (z2, z4, o4);
  g_assert_cmphex (o4[0], ==, 0x6627e8d5);
  g_assert_cmphex (o4[1], ==, 0xe169c58d);
  g_assert_cmphex (o4[2], ==, 0xbc57ac4c);
  g_assert_cmphex (o4[3], ==, 0x9b00dbd8);
  const uint32_t f4[4] = { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff };
  ref_philox4x32_10 (f2, f4, o4);
  g_assert_cmphex (o4[0], ==, 0x408f276d);
  g_assert_cmphex (o4[1], ==, 0x41c83b0e);
  g_assert_cmphex (o4[2], ==, 0xa20bc7c6);
  g_assert_cmphex (o4[3], ==, 0x6d5451fd);
}

static FbLiteral *
u64_state (Run *run, int n, const uint64_t *v)
{
  if (run->arena == NULL)
    run->arena = fb_arena_new ();
  int64_t dims[1] = { n };
  FbLiteral *lit = fb_literal_new (run->arena, fb_shape_new_array (run->arena, FB_U64, 1, dims));
  memcpy (lit->data, v, 8 * n);
  return lit;
}

static uint64_t
u64_at (const FbLiteral *lit, int i)
{
  return (uint64_t) fb_literal_get_s64 (lit, i);
}

static void
test_rng_three_fry (void)
{
  Run run = { 0 };
  const uint64_t key = 0x0123456789abcdefull, ctr = 0xfffffffffffffffeull;   /* the counter wraps */
  FbLiteral *state = u64_state (&run, 2, (uint64_t[]) { key, ctr });
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  s = u64[2] parameter(0)\n"
    "  a = (u64[2], u32[3,2]) rng-bit-generator(s), algorithm=rng_three_fry\n"
    "  as = u64[2] get-tuple-element(a), index=0\n"
    "  b = (u64[2], u64[3]) rng-bit-generator(as), algorithm=rng_three_fry\n"
    "  ab = u32[3,2] get-tuple-element(a), index=1\n"
    "  bb = u64[3] get-tuple-element(b), index=1\n"
    "  bs = u64[2] get-tuple-element(b), index=0\n"
    "  ROOT t = (u32[3,2], u64[3], u64[2]) tuple(ab, bb, bs)\n"
    "}\n", 1, &state);

  /* u32[3,2] splits along dimension 1 (the first even one): block i of the
   * half shape [3,1] gives row i, both columns. */
  const uint32_t k[2] = { (uint32_t) key, (uint32_t) (key >> 32) };
  for (int i = 0; i < 3; i++)
    {
      uint64_t c = ctr + i;
      uint32_t in[2] = { (uint32_t) c, (uint32_t) (c >> 32) }, o[2];
      ref_threefry2x32_20 (k, in, o);
      g_assert_cmphex (fb_literal_get_s64 (r->elems[0], 2 * i), ==, o[0]);
      g_assert_cmphex (fb_literal_get_s64 (r->elems[0], 2 * i + 1), ==, o[1]);
    }
  /* u64[3]: one block per element, low word first, after the 3 used above. */
  for (int i = 0; i < 3; i++)
    {
      uint64_t c = ctr + 3 + i;
      uint32_t in[2] = { (uint32_t) c, (uint32_t) (c >> 32) }, o[2];
      ref_threefry2x32_20 (k, in, o);
      g_assert_cmphex (u64_at (r->elems[1], i), ==, (uint64_t) o[0] | ((uint64_t) o[1] << 32));
    }
  g_assert_cmphex (u64_at (r->elems[2], 0), ==, key);
  g_assert_cmphex (u64_at (r->elems[2], 1), ==, ctr + 6);
  run_clear (&run);

  /* rng_three_fry from state {0, 0} as u32[3,2], as XLA's CPU backend
   * returns it (rounded to four digits): {{1.7973e9, 2.5791e9},
   * {1.3515e9, 3.2358e9}, {1.6886e9, 4.2293e9}}, new state {0, 3}. */
  state = u64_state (&run, 2, (uint64_t[]) { 0, 0 });
  r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  s = u64[2] parameter(0)\n"
    "  ROOT a = (u64[2], u32[3,2]) rng-bit-generator(s), algorithm=rng_three_fry\n"
    "}\n", 1, &state);
  const double approx[6] = { 1.7973e9, 2.5791e9, 1.3515e9, 3.2358e9, 1.6886e9, 4.2293e9 };
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat_with_epsilon ((double) fb_literal_get_s64 (r->elems[1], i), approx[i], 1e5);
  g_assert_cmpuint (u64_at (r->elems[0], 1), ==, 3);
  run_clear (&run);
}

static void
test_rng_philox (void)
{
  Run run = { 0 };
  const uint64_t key = 0x9e3779b97f4a7c15ull, lo = 0xffffffffffffffffull, hi = 7;
  FbLiteral *state = u64_state (&run, 3, (uint64_t[]) { key, lo, hi });
  FbLiteral *r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  s = u64[3] parameter(0)\n"
    "  a = (u64[3], u32[2,3]) rng-bit-generator(s), algorithm=rng_philox\n"
    "  as = u64[3] get-tuple-element(a), index=0\n"
    "  b = (u64[3], u64[3]) rng-bit-generator(as), algorithm=rng_default\n"
    "  ab = u32[2,3] get-tuple-element(a), index=1\n"
    "  bb = u64[3] get-tuple-element(b), index=1\n"
    "  bs = u64[3] get-tuple-element(b), index=0\n"
    "  ROOT t = (u32[2,3], u64[3], u64[3], u64[3]) tuple(ab, bb, as, bs)\n"
    "}\n", 1, &state);

  /* 6 words take two blocks: counters (lo, hi) and (lo + 1, hi + 1) with
   * the carry; the words come out in order. */
  const uint32_t k[2] = { (uint32_t) key, (uint32_t) (key >> 32) };
  uint32_t words[8];
  for (int b = 0; b < 2; b++)
    {
      uint64_t l = lo + b, h = l < lo ? hi + 1 : hi;
      uint32_t in[4] = { (uint32_t) l, (uint32_t) (l >> 32), (uint32_t) h, (uint32_t) (h >> 32) };
      ref_philox4x32_10 (k, in, words + 4 * b);
    }
  for (int i = 0; i < 6; i++)
    g_assert_cmphex (fb_literal_get_s64 (r->elems[0], i), ==, words[i]);
  g_assert_cmphex (u64_at (r->elems[2], 0), ==, key);
  g_assert_cmphex (u64_at (r->elems[2], 1), ==, lo + 2);
  g_assert_cmphex (u64_at (r->elems[2], 2), ==, hi + 1);

  /* u64[3] takes two blocks of two 64-bit words each (low word first),
   * from the updated counter (1, 8). */
  uint64_t w64[4];
  for (int b = 0; b < 2; b++)
    {
      uint32_t in[4] = { (uint32_t) (1 + b), 0, (uint32_t) (hi + 1), 0 }, o[4];
      ref_philox4x32_10 (k, in, o);
      w64[2 * b] = (uint64_t) o[0] | ((uint64_t) o[1] << 32);
      w64[2 * b + 1] = (uint64_t) o[2] | ((uint64_t) o[3] << 32);
    }
  for (int i = 0; i < 3; i++)
    g_assert_cmphex (u64_at (r->elems[1], i), ==, w64[i]);
  g_assert_cmphex (u64_at (r->elems[3], 1), ==, 3);
  g_assert_cmphex (u64_at (r->elems[3], 2), ==, hi + 1);
  run_clear (&run);

  /* A two-element state: counter (state[1], state[0]); only its low word
   * is kept. */
  state = u64_state (&run, 2, (uint64_t[]) { 5, 9 });
  r = run_ok (&run,
    "HloModule m\n"
    "ENTRY e {\n"
    "  s = u64[2] parameter(0)\n"
    "  ROOT a = (u64[2], u32[5]) rng-bit-generator(s), algorithm=rng_philox\n"
    "}\n", 1, &state);
  const uint32_t k5[2] = { 5, 0 };
  for (int b = 0; b < 2; b++)
    {
      uint32_t in[4] = { (uint32_t) (9 + b), 0, 5, 0 };
      ref_philox4x32_10 (k5, in, words + 4 * b);
    }
  for (int i = 0; i < 5; i++)
    g_assert_cmphex (fb_literal_get_s64 (r->elems[1], i), ==, words[i]);
  g_assert_cmphex (u64_at (r->elems[0], 0), ==, 5);
  g_assert_cmphex (u64_at (r->elems[0], 1), ==, 11);
  run_clear (&run);
}

static void
test_rng_distributions (void)
{
  Run run = { 0 };
  const char *text =
    "HloModule m\n"
    "ENTRY e {\n"
    "  lo = f32[] constant(2)\n"
    "  hi = f32[] constant(3)\n"
    "  u = f32[1000] rng(lo, hi), distribution=rng_uniform\n"
    "  z = f32[] constant(0)\n"
    "  one = f32[] constant(1)\n"
    "  n = f32[1000] rng(z, one), distribution=rng_normal\n"
    "  ROOT t = (f32[1000], f32[1000]) tuple(u, n)\n"
    "}\n";
  FbLiteral *r = run_ok (&run, text, 0, NULL);
  double sum = 0, sq = 0;
  for (int i = 0; i < 1000; i++)
    {
      double u = fb_literal_get_f64 (r->elems[0], i), n = fb_literal_get_f64 (r->elems[1], i);
      g_assert_cmpfloat (u, >=, 2.0);
      g_assert_cmpfloat (u, <, 3.0);
      sum += n;
      sq += n * n;
    }
  g_assert_cmpfloat (fabs (sum / 1000), <, 0.2);
  g_assert_cmpfloat (fabs (sq / 1000 - 1.0), <, 0.2);
  /* deterministic: a second run gives the same numbers */
  FbArena *arena = fb_arena_new ();
  FbLiteral *again = fb_interp_run (run.module, run.module->entry, arena, 0, NULL, NULL, NULL);
  g_assert_true (fb_literal_equal (r, again));
  fb_arena_free (arena);
  run_clear (&run);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/interp/elementwise/int-divide", test_int_divide);
  g_test_add_func ("/interp/elementwise/shifts", test_shifts);
  g_test_add_func ("/interp/elementwise/convert", test_convert);
  g_test_add_func ("/interp/elementwise/half-rounding", test_half_rounding);
  g_test_add_func ("/interp/elementwise/compare-totalorder", test_compare_totalorder);
  g_test_add_func ("/interp/elementwise/float-unary", test_float_unary);
  g_test_add_func ("/interp/elementwise/int-unary-power", test_int_unary_and_power);
  g_test_add_func ("/interp/elementwise/select-clamp-bitcast", test_select_clamp_bitcast);
  g_test_add_func ("/interp/movement/slice-pad", test_slice_pad);
  g_test_add_func ("/interp/movement/dynamic-slice", test_dynamic_slice);
  g_test_add_func ("/interp/movement/concat-transpose-reverse-broadcast", test_concat_transpose_reverse_broadcast);
  g_test_add_func ("/interp/control/while-counter", test_while_counter);
  g_test_add_func ("/interp/control/conditional", test_conditional);
  g_test_add_func ("/interp/control/call-map-fusion", test_call_map_fusion);
  g_test_add_func ("/interp/control/collectives", test_collectives_one_replica);
  g_test_add_func ("/interp/control/async-copy-misc", test_async_copy_misc);
  g_test_add_func ("/interp/custom-call/refused", test_custom_call_refused);
  g_test_add_func ("/interp/custom-call/mapped", test_custom_call_mapped);
  g_test_add_func ("/interp/errors/bad-input", test_errors);
  g_test_add_func ("/interp/errors/recursion-limit", test_recursion_limit);
  g_test_add_func ("/interp/backend/registry", test_backend_registry);
  g_test_add_func ("/interp/rng/reference-vectors", test_rng_reference_vectors);
  g_test_add_func ("/interp/rng/three-fry", test_rng_three_fry);
  g_test_add_func ("/interp/rng/philox", test_rng_philox);
  g_test_add_func ("/interp/rng/distributions", test_rng_distributions);
  return g_test_run ();
}
