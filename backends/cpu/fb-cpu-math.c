/* SPDX-License-Identifier: MIT
 *
 * Math functions for f32 kernels, written out in LLVM IR so that the loop
 * vectoriser can vectorise them (a call into the C library would stop it).
 * Each is a range reduction plus a polynomial or rational approximation;
 * the maximum errors below are measured against the C library over the
 * whole finite f32 range in the tests:
 *
 *   exp       relative error below 2 ulp; results under 2^-126 lose
 *             precision gradually, under 2^-149 are 0; above 88.72 are inf.
 *   log       relative error below 2 ulp for normal and subnormal inputs;
 *             log(0) = -inf, log(x < 0) = NaN, log(inf) = inf.
 *   tanh      absolute error below 3.5e-7 (a rational fit evaluated in f32).
 *   erf       absolute error below 1e-6; |x| >= 4 gives +-1.
 *   logistic  1 / (1 + exp (-x)), absolute error below 2e-7.
 *
 * NaN inputs give NaN. Other functions (sin, pow, ...) call the C library;
 * their addresses are listed here so that the JIT can resolve them.
 */
#include "fb-cpu-codegen-private.h"

#include <math.h>
#include <string.h>

static LLVMValueRef
cf (FbEmitter *e, double v)
{
  return LLVMConstReal (e->t_f32, v);
}

static LLVMValueRef
ci (FbEmitter *e, long long v)
{
  return LLVMConstInt (e->t_i32, (unsigned long long) v, TRUE);
}

static LLVMValueRef
f_mul (FbEmitter *e, LLVMValueRef a, LLVMValueRef b)
{
  LLVMValueRef v = LLVMBuildFMul (e->b, a, b, "");
  LLVMSetFastMathFlags (v, LLVMFastMathAllowContract);
  return v;
}

static LLVMValueRef
f_add (FbEmitter *e, LLVMValueRef a, LLVMValueRef b)
{
  LLVMValueRef v = LLVMBuildFAdd (e->b, a, b, "");
  LLVMSetFastMathFlags (v, LLVMFastMathAllowContract);
  return v;
}

static LLVMValueRef
fma3 (FbEmitter *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
  LLVMValueRef args[3] = { a, b, c };
  return _fb_emit_intrinsic (e, "llvm.fma", e->t_f32, 3, args);
}

/* c[0] + x * (c[1] + x * (... c[n-1])) by Horner with fused multiply-adds. */
static LLVMValueRef
horner (FbEmitter *e, LLVMValueRef x, const double *c, int n)
{
  LLVMValueRef acc = cf (e, c[n - 1]);
  for (int i = n - 2; i >= 0; i--)
    acc = fma3 (e, acc, x, cf (e, c[i]));
  return acc;
}

static LLVMValueRef
fsel (FbEmitter *e, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b, LLVMValueRef t, LLVMValueRef f)
{
  return LLVMBuildSelect (e->b, LLVMBuildFCmp (e->b, p, a, b, ""), t, f, "");
}

/* 2^n for an i32 n in [-126, 127], as an f32. */
static LLVMValueRef
pow2i (FbEmitter *e, LLVMValueRef n)
{
  LLVMValueRef bits = LLVMBuildShl (e->b, LLVMBuildAdd (e->b, n, ci (e, 127), ""), ci (e, 23), "");
  return LLVMBuildBitCast (e->b, bits, e->t_f32, "");
}

/* exp(r) on |r| <= ln 2 / 2, relative error below 1 ulp. */
static const double exp_poly[] = {
  1.0, 1.0, 5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3,
  1.3981999507e-3, 1.9875691500e-4,
};

/* exp(x) = 2^n * exp(r) for x already within [-104, 89]: n = round(x / ln 2)
 * in [-150, 128], the reduced argument and its polynomial. */
static LLVMValueRef
exp_reduce (FbEmitter *e, LLVMValueRef xc, LLVMValueRef *n)
{
  LLVMValueRef t = f_mul (e, xc, cf (e, 1.44269504088896341));
  *n = _fb_emit_intrinsic (e, "llvm.roundeven", e->t_f32, 1, &t);
  LLVMValueRef r = fma3 (e, *n, cf (e, -0.693359375), xc);
  r = fma3 (e, *n, cf (e, 2.12194440e-4), r);
  return horner (e, r, exp_poly, G_N_ELEMENTS (exp_poly));
}

LLVMValueRef
_fb_math_exp_f32 (FbEmitter *e, LLVMValueRef x)
{
  LLVMValueRef xc = fsel (e, LLVMRealOGT, x, cf (e, 89.0), cf (e, 89.0), x);
  xc = fsel (e, LLVMRealOLT, xc, cf (e, -104.0), cf (e, -104.0), xc);
  LLVMValueRef n;
  LLVMValueRef y = exp_reduce (e, xc, &n);
  /* scale in two halves so that n in [-150, 128] stays representable */
  LLVMValueRef ni = LLVMBuildFPToSI (e->b, n, e->t_i32, "");
  LLVMValueRef n1 = LLVMBuildAShr (e->b, ni, ci (e, 1), "");
  LLVMValueRef n2 = LLVMBuildSub (e->b, ni, n1, "");
  y = f_mul (e, f_mul (e, y, pow2i (e, n1)), pow2i (e, n2));
  y = fsel (e, LLVMRealOGT, x, cf (e, 88.72283935546875), cf (e, INFINITY), y);
  y = fsel (e, LLVMRealOLT, x, cf (e, -103.972076416015625), cf (e, 0.0), y);
  return fsel (e, LLVMRealUNO, x, x, x, y);
}

LLVMValueRef
_fb_math_log_f32 (FbEmitter *e, LLVMValueRef x)
{
  /* log(x) = k ln 2 + log(m), m in [sqrt(1/2), sqrt(2)); log(1+f) = f - f^2/2 + f^3 P(f). */
  static const double p[] = {
    3.3333331174e-1, -2.4999993993e-1, 2.0000714765e-1, -1.6668057665e-1, 1.4249322787e-1,
    -1.2420140846e-1, 1.1676998740e-1, -1.1514610310e-1, 7.0376836292e-2,
  };
  LLVMBuilderRef b = e->b;
  /* subnormals: scale up by 2^23 first */
  LLVMValueRef sub = LLVMBuildFCmp (b, LLVMRealOLT, x, cf (e, 1.17549435e-38), "");
  LLVMValueRef xs = LLVMBuildSelect (b, sub, f_mul (e, x, cf (e, 8388608.0)), x, "");
  LLVMValueRef bits = LLVMBuildBitCast (b, xs, e->t_i32, "");
  LLVMValueRef k = LLVMBuildSub (b, LLVMBuildAnd (b, LLVMBuildLShr (b, bits, ci (e, 23), ""), ci (e, 0xff), ""),
                                 ci (e, 126), "");
  k = LLVMBuildSub (b, k, LLVMBuildSelect (b, sub, ci (e, 23), ci (e, 0), ""), "");
  LLVMValueRef m = LLVMBuildBitCast (b, LLVMBuildOr (b, LLVMBuildAnd (b, bits, ci (e, 0x007fffff), ""),
                                                     ci (e, 0x3f000000), ""), e->t_f32, "");
  /* m in [0.5, 1): move to [sqrt(1/2), sqrt(2)) */
  LLVMValueRef small = LLVMBuildFCmp (b, LLVMRealOLT, m, cf (e, 0.707106781186547524), "");
  k = LLVMBuildSub (b, k, LLVMBuildZExt (b, small, e->t_i32, ""), "");
  LLVMValueRef f = LLVMBuildSelect (b, small, f_add (e, m, m), m, "");
  f = f_add (e, f, cf (e, -1.0));
  LLVMValueRef kf = LLVMBuildSIToFP (b, k, e->t_f32, "");
  LLVMValueRef z = f_mul (e, f, f);
  LLVMValueRef y = f_mul (e, f_mul (e, f, z), horner (e, f, p, G_N_ELEMENTS (p)));
  y = fma3 (e, kf, cf (e, -2.12194440e-4), y);
  y = fma3 (e, z, cf (e, -0.5), y);
  LLVMValueRef r = f_add (e, f, y);
  r = fma3 (e, kf, cf (e, 0.693359375), r);
  /* specials */
  r = fsel (e, LLVMRealOEQ, x, cf (e, INFINITY), cf (e, INFINITY), r);
  r = fsel (e, LLVMRealOEQ, x, cf (e, 0.0), cf (e, -INFINITY), r);
  r = fsel (e, LLVMRealOLT, x, cf (e, 0.0), cf (e, NAN), r);
  return fsel (e, LLVMRealUNO, x, x, x, r);
}

LLVMValueRef
_fb_math_tanh_f32 (FbEmitter *e, LLVMValueRef x)
{
  /* tanh(x) = x P(x^2) / Q(x^2) on [-9, 9], a rational fit to the absolute
   * error (below 2e-8 in exact arithmetic); beyond 9, tanh is 1 in f32, so
   * x is clamped there. One branch-free formula of 15 vector operations: no
   * exp, no select between a small and a large side. The clamps are selects
   * on ordered compares, so a NaN x passes through unchanged and comes out
   * NaN; +-0 stays +-0. */
  static const double p[] = {
    9.9999990707113307e-1, 1.3373179251851111e-1, 3.4865566965413233e-3, 2.0471307390270238e-5,
    1.3183333111766054e-8,
  };
  static const double q[] = {
    1.0, 4.6706476322125534e-1, 2.5841891547073659e-2, 3.2713392204200575e-4, 7.7023321660103579e-7,
  };
  LLVMValueRef xc = fsel (e, LLVMRealOGT, x, cf (e, 9.0), cf (e, 9.0), x);
  xc = fsel (e, LLVMRealOLT, xc, cf (e, -9.0), cf (e, -9.0), xc);
  LLVMValueRef z = f_mul (e, xc, xc);
  LLVMValueRef num = f_mul (e, xc, horner (e, z, p, G_N_ELEMENTS (p)));
  LLVMValueRef den = horner (e, z, q, G_N_ELEMENTS (q));
  /* The divisor lies in [1, 420] (finite, hence ninf): the kernel lets a
   * division marked arcp use the target's reciprocal estimate with a Newton
   * step, as accurate as the division for this absolute bound. */
  LLVMValueRef r = LLVMBuildFDiv (e->b, num, den, "");
  LLVMSetFastMathFlags (r, LLVMFastMathAllowReciprocal | LLVMFastMathNoInfs | LLVMFastMathAllowContract);
  return r;
}

LLVMValueRef
_fb_math_erf_f32 (FbEmitter *e, LLVMValueRef x)
{
  /* erf(x) = x P(x^2) / Q(x^2) on [-4, 4], a rational minimax fit. */
  static const double a[] = {
    -1.60960333262415e-02, -2.95459980854025e-03, -7.34990630326855e-04, -5.69250639462346e-05,
    -2.10102402082508e-06, 2.77068142495902e-08, -2.72614225801306e-10,
  };
  static const double q[] = {
    -1.42647390514189e-02, -7.37332916720468e-03, -1.68282697438203e-03, -2.13374055278905e-04,
    -1.45660718464996e-05,
  };
  LLVMValueRef xc = fsel (e, LLVMRealOGT, x, cf (e, 4.0), cf (e, 4.0), x);
  xc = fsel (e, LLVMRealOLT, xc, cf (e, -4.0), cf (e, -4.0), xc);
  LLVMValueRef z = f_mul (e, xc, xc);
  LLVMValueRef num = f_mul (e, xc, horner (e, z, a, G_N_ELEMENTS (a)));
  LLVMValueRef den = horner (e, z, q, G_N_ELEMENTS (q));
  LLVMValueRef r = LLVMBuildFDiv (e->b, num, den, "");
  /* the fit is accurate to 4; clamp tiny overshoots to [-1, 1] */
  r = fsel (e, LLVMRealOGT, r, cf (e, 1.0), cf (e, 1.0), r);
  r = fsel (e, LLVMRealOLT, r, cf (e, -1.0), cf (e, -1.0), r);
  return fsel (e, LLVMRealUNO, x, x, x, r);
}

LLVMValueRef
_fb_math_logistic_f32 (FbEmitter *e, LLVMValueRef x)
{
  LLVMValueRef ex = _fb_math_exp_f32 (e, LLVMBuildFNeg (e->b, x, ""));
  return LLVMBuildFDiv (e->b, cf (e, 1.0), f_add (e, cf (e, 1.0), ex), "");
}

/* ------------------------------------------------- C library symbols */

#define SYM(fn) { #fn, (void *) (fn) }
#define SYM2(fn) SYM (fn), { #fn "f", (void *) (fn##f) }

static void *fb_memcpy (void *d, const void *s, size_t n) { return memcpy (d, s, n); }
static void *fb_memmove (void *d, const void *s, size_t n) { return memmove (d, s, n); }
static void *fb_memset (void *d, int c, size_t n) { return memset (d, c, n); }

const FbMathSymbol *
_fb_math_symbols (int *n)
{
  static const FbMathSymbol syms[] = {
    SYM2 (exp), SYM2 (log), SYM2 (tanh), SYM2 (erf), SYM2 (expm1), SYM2 (log1p), SYM2 (cbrt),
    SYM2 (sin), SYM2 (cos), SYM2 (tan), SYM2 (asin), SYM2 (acos), SYM2 (atan), SYM2 (sinh),
    SYM2 (cosh), SYM2 (asinh), SYM2 (acosh), SYM2 (atanh), SYM2 (pow), SYM2 (atan2), SYM2 (fmod),
    SYM2 (sqrt), SYM2 (floor), SYM2 (ceil), SYM2 (round), SYM2 (exp2), SYM2 (log2),
    SYM2 (log10), SYM2 (fabs),
    { "memcpy", (void *) fb_memcpy }, { "memmove", (void *) fb_memmove }, { "memset", (void *) fb_memset },
  };
  *n = G_N_ELEMENTS (syms);
  return syms;
}
