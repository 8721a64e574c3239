/* SPDX-License-Identifier: MIT
 *
 * Tests of the interpreter's heavy evaluators: dot, convolution, reduce,
 * reduce-window, select-and-scatter, gather, scatter, sort, topk, batch
 * norm, cholesky, triangular-solve and fft. Each builds a small module from
 * HLO text, runs it, and checks the result against arithmetic done here, by
 * hand or by a deliberately naive formula (for convolution: pad and dilate
 * the input explicitly, then slide the dilated kernel over it).
 */
#include <math.h>
#include <string.h>

#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-interp-private.h"

typedef struct {
  FbArena   *arena;
  GPtrArray *modules;
} Fixture;

static void
fixture_init (Fixture *f)
{
  f->arena = fb_arena_new ();
  f->modules = g_ptr_array_new_with_free_func ((GDestroyNotify) fb_module_free);
}

static void
fixture_clear (Fixture *f)
{
  g_ptr_array_unref (f->modules);
  fb_arena_free (f->arena);
}

static FbLiteral *
run_args (Fixture *f, const char *hlo, int n_args, FbLiteral *const *args)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (hlo, strlen (hlo), "test.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  g_ptr_array_add (f->modules, m);
  FbLiteral *r = fb_interp_run (m, m->entry, f->arena, n_args, args, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (r);
  return r;
}

static FbLiteral *
run (Fixture *f, const char *hlo)
{
  return run_args (f, hlo, 0, NULL);
}

static FbLiteral *
make (Fixture *f, FbElemType type, int rank, const int64_t *dims, const double *values)
{
  FbShape *s = fb_shape_new_array (f->arena, type, rank, dims);
  FbLiteral *lit = fb_literal_new (f->arena, s);
  int64_t n = fb_shape_elements (s);
  for (int64_t i = 0; i < n; i++)
    fb_literal_set_f64 (lit, i, values[i]);
  return lit;
}

/* Deterministic small values with a fractional part. */
static double *
pattern (int64_t n, int seed)
{
  double *v = g_new (double, n);
  for (int64_t i = 0; i < n; i++)
    v[i] = (double) (((i * 7 + seed * 13) % 11) - 5) / 4.0;
  return v;
}

static void
assert_values (const FbLiteral *lit, const double *want, int64_t n, double tol)
{
  g_assert_cmpint (fb_shape_elements (lit->shape), ==, n);
  for (int64_t i = 0; i < n; i++)
    {
      double got = fb_literal_get_f64 (lit, i);
      if (!(fabs (got - want[i]) <= tol))
        g_error ("element %" G_GINT64_FORMAT ": got %.9g, want %.9g", i, got, want[i]);
    }
}

/* ---------------------------------------------------------------- dot */

static void
test_dot_batch_dims (void)
{
  Fixture f;
  fixture_init (&f);
  /* lhs [b=2, k=3, m=4], rhs [k=3, n=5, b=2]: out [b, m, n]. */
  const char *hlo =
    "HloModule dot\n"
    "ENTRY main {\n"
    "  a = f32[2,3,4] parameter(0)\n"
    "  b = f32[3,5,2] parameter(1)\n"
    "  ROOT d = f32[2,4,5] dot(a, b), lhs_batch_dims={0}, lhs_contracting_dims={1}, "
    "rhs_batch_dims={2}, rhs_contracting_dims={0}\n"
    "}\n";
  g_autofree double *av = pattern (24, 1);
  g_autofree double *bv = pattern (30, 2);
  FbLiteral *args[2] = { make (&f, FB_F32, 3, (int64_t[]) { 2, 3, 4 }, av),
                         make (&f, FB_F32, 3, (int64_t[]) { 3, 5, 2 }, bv) };
  FbLiteral *r = run_args (&f, hlo, 2, args);
  double want[40];
  for (int b = 0; b < 2; b++)
    for (int m = 0; m < 4; m++)
      for (int n = 0; n < 5; n++)
        {
          double s = 0;
          for (int k = 0; k < 3; k++)
            s += av[b * 12 + k * 4 + m] * bv[k * 10 + n * 2 + b];
          want[b * 20 + m * 5 + n] = s;
        }
  assert_values (r, want, 40, 1e-5);
  fixture_clear (&f);
}

static void
test_dot_transposed_gradient (void)
{
  Fixture f;
  fixture_init (&f);
  /* dW = x^T dy: both operands contract their first dimension. */
  const char *hlo =
    "HloModule dw\n"
    "ENTRY main {\n"
    "  x = f32[6,4] parameter(0)\n"
    "  dy = f32[6,9] parameter(1)\n"
    "  ROOT dw = f32[4,9] dot(x, dy), lhs_contracting_dims={0}, rhs_contracting_dims={0}\n"
    "}\n";
  g_autofree double *xv = pattern (24, 3);
  g_autofree double *dv = pattern (54, 4);
  FbLiteral *args[2] = { make (&f, FB_F32, 2, (int64_t[]) { 6, 4 }, xv),
                         make (&f, FB_F32, 2, (int64_t[]) { 6, 9 }, dv) };
  FbLiteral *r = run_args (&f, hlo, 2, args);
  double want[36];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 9; j++)
      {
        double s = 0;
        for (int k = 0; k < 6; k++)
          s += xv[k * 4 + i] * dv[k * 9 + j];
        want[i * 9 + j] = s;
      }
  assert_values (r, want, 36, 1e-5);
  fixture_clear (&f);
}

static void
test_dot_mixed_int (void)
{
  Fixture f;
  fixture_init (&f);
  /* s8 x s8 -> s32 must not wrap at 8 bits; f16 x f16 -> f32. */
  FbLiteral *r = run (&f,
    "HloModule mixed\n"
    "ENTRY main {\n"
    "  a = s8[2,2] constant({ {100, 100}, {-100, 3} })\n"
    "  b = s8[2] constant({100, 2})\n"
    "  ROOT d = s32[2] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
    "}\n");
  assert_values (r, (double[]) { 10200, -9994 }, 2, 0);
  r = run (&f,
    "HloModule half\n"
    "ENTRY main {\n"
    "  a = f16[1,3] constant({ {0.5, 1.5, 2} })\n"
    "  b = f16[3,1] constant({ {4}, {2}, {0.25} })\n"
    "  ROOT d = f32[1,1] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
    "}\n");
  assert_values (r, (double[]) { 5.5 }, 1, 0);
  fixture_clear (&f);
}

/* -------------------------------------------------------- convolution */

/* Naive 2D convolution on NCHW input and OIHW kernel: build the padded,
 * lhs-dilated input explicitly, then slide the rhs-dilated kernel. */
typedef struct {
  int N, C, H, W, O, KH, KW;
  int sh, sw, plh, phh, plw, phw, ldh, ldw, rdh, rdw, G, BG;
} ConvCase;

static double *
conv_reference (const ConvCase *c, const double *x, const double *k, int *OH, int *OW)
{
  int DH = (c->H - 1) * c->ldh + 1, DW = (c->W - 1) * c->ldw + 1;
  int PH = DH + c->plh + c->phh, PW = DW + c->plw + c->phw;
  int EKH = (c->KH - 1) * c->rdh + 1, EKW = (c->KW - 1) * c->rdw + 1;
  *OH = (PH - EKH) / c->sh + 1;
  *OW = (PW - EKW) / c->sw + 1;
  int NO = c->N / c->BG, CI = c->C / c->G;
  double *padded = g_new0 (double, (gsize) c->N * c->C * PH * PW);
  for (int n = 0; n < c->N; n++)
    for (int ch = 0; ch < c->C; ch++)
      for (int h = 0; h < c->H; h++)
        for (int w = 0; w < c->W; w++)
          {
            int ph = h * c->ldh + c->plh, pw = w * c->ldw + c->plw;
            if (ph >= 0 && ph < PH && pw >= 0 && pw < PW)
              padded[((n * c->C + ch) * PH + ph) * PW + pw] = x[((n * c->C + ch) * c->H + h) * c->W + w];
          }
  double *out = g_new0 (double, (gsize) NO * c->O * *OH * *OW);
  for (int n = 0; n < NO; n++)
    for (int o = 0; o < c->O; o++)
      {
        int g = o / (c->O / c->G), bg = o / (c->O / c->BG);
        for (int oh = 0; oh < *OH; oh++)
          for (int ow = 0; ow < *OW; ow++)
            {
              double s = 0;
              for (int i = 0; i < CI; i++)
                for (int kh = 0; kh < c->KH; kh++)
                  for (int kw = 0; kw < c->KW; kw++)
                    {
                      int ph = oh * c->sh + kh * c->rdh, pw = ow * c->sw + kw * c->rdw;
                      s += padded[(((bg * NO + n) * c->C + g * CI + i) * PH + ph) * PW + pw]
                           * k[((o * CI + i) * c->KH + kh) * c->KW + kw];
                    }
              out[((n * c->O + o) * *OH + oh) * *OW + ow] = s;
            }
      }
  g_free (padded);
  return out;
}

/* Runs the case through HLO, once with NCHW/OIHW labels and once with
 * NHWC/HWIO labels on transposed data. */
static void
check_conv_case (const ConvCase *c)
{
  Fixture f;
  fixture_init (&f);
  int CI = c->C / c->G;
  int64_t nx = (int64_t) c->N * c->C * c->H * c->W, nk = (int64_t) c->O * CI * c->KH * c->KW;
  g_autofree double *x = pattern (nx, 5);
  g_autofree double *k = pattern (nk, 6);
  int OH, OW;
  g_autofree double *want = conv_reference (c, x, k, &OH, &OW);
  int NO = c->N / c->BG;
  g_autofree char *window = g_strdup_printf (
    "window={size=%dx%d stride=%dx%d pad=%d_%dx%d_%d lhs_dilate=%dx%d rhs_dilate=%dx%d}",
    c->KH, c->KW, c->sh, c->sw, c->plh, c->phh, c->plw, c->phw, c->ldh, c->ldw, c->rdh, c->rdw);
  g_autofree char *hlo = g_strdup_printf (
    "HloModule conv\n"
    "ENTRY main {\n"
    "  x = f32[%d,%d,%d,%d] parameter(0)\n"
    "  k = f32[%d,%d,%d,%d] parameter(1)\n"
    "  ROOT c = f32[%d,%d,%d,%d] convolution(x, k), %s, dim_labels=bf01_oi01->bf01, "
    "feature_group_count=%d, batch_group_count=%d\n"
    "}\n", c->N, c->C, c->H, c->W, c->O, CI, c->KH, c->KW, NO, c->O, OH, OW, window, c->G, c->BG);
  FbLiteral *args[2] = { make (&f, FB_F32, 4, (int64_t[]) { c->N, c->C, c->H, c->W }, x),
                         make (&f, FB_F32, 4, (int64_t[]) { c->O, CI, c->KH, c->KW }, k) };
  FbLiteral *r = run_args (&f, hlo, 2, args);
  assert_values (r, want, (int64_t) NO * c->O * OH * OW, 1e-4);

  /* Same numbers in NHWC / HWIO / NHWC. */
  g_autofree double *xt = g_new (double, nx);
  g_autofree double *kt = g_new (double, nk);
  g_autofree double *wt = g_new (double, (gsize) NO * c->O * OH * OW);
  for (int n = 0; n < c->N; n++)
    for (int ch = 0; ch < c->C; ch++)
      for (int h = 0; h < c->H; h++)
        for (int w = 0; w < c->W; w++)
          xt[((n * c->H + h) * c->W + w) * c->C + ch] = x[((n * c->C + ch) * c->H + h) * c->W + w];
  for (int o = 0; o < c->O; o++)
    for (int i = 0; i < CI; i++)
      for (int h = 0; h < c->KH; h++)
        for (int w = 0; w < c->KW; w++)
          kt[((h * c->KW + w) * CI + i) * c->O + o] = k[((o * CI + i) * c->KH + h) * c->KW + w];
  for (int n = 0; n < NO; n++)
    for (int o = 0; o < c->O; o++)
      for (int h = 0; h < OH; h++)
        for (int w = 0; w < OW; w++)
          wt[((n * OH + h) * OW + w) * c->O + o] = want[((n * c->O + o) * OH + h) * OW + w];
  g_autofree char *hlo2 = g_strdup_printf (
    "HloModule conv_nhwc\n"
    "ENTRY main {\n"
    "  x = f32[%d,%d,%d,%d] parameter(0)\n"
    "  k = f32[%d,%d,%d,%d] parameter(1)\n"
    "  ROOT c = f32[%d,%d,%d,%d] convolution(x, k), %s, dim_labels=b01f_01io->b01f, "
    "feature_group_count=%d, batch_group_count=%d\n"
    "}\n", c->N, c->H, c->W, c->C, c->KH, c->KW, CI, c->O, NO, OH, OW, c->O, window, c->G, c->BG);
  FbLiteral *args2[2] = { make (&f, FB_F32, 4, (int64_t[]) { c->N, c->H, c->W, c->C }, xt),
                          make (&f, FB_F32, 4, (int64_t[]) { c->KH, c->KW, CI, c->O }, kt) };
  r = run_args (&f, hlo2, 2, args2);
  assert_values (r, wt, (int64_t) NO * c->O * OH * OW, 1e-4);
  fixture_clear (&f);
}

static void
test_conv_padding_stride_dilation (void)
{
  ConvCase c = { .N = 2, .C = 3, .H = 7, .W = 6, .O = 4, .KH = 3, .KW = 2,
                 .sh = 2, .sw = 1, .plh = 1, .phh = 2, .plw = 0, .phw = 1,
                 .ldh = 1, .ldw = 1, .rdh = 2, .rdw = 1, .G = 1, .BG = 1 };
  check_conv_case (&c);
}

static void
test_conv_depthwise (void)
{
  /* feature_group_count = channels, two filters per channel. */
  ConvCase c = { .N = 1, .C = 3, .H = 5, .W = 5, .O = 6, .KH = 3, .KW = 3,
                 .sh = 1, .sw = 1, .plh = 1, .phh = 1, .plw = 1, .phw = 1,
                 .ldh = 1, .ldw = 1, .rdh = 1, .rdw = 1, .G = 3, .BG = 1 };
  check_conv_case (&c);
}

static void
test_conv_batch_groups (void)
{
  /* As in a depthwise weight gradient: input batch split into 4 groups. */
  ConvCase c = { .N = 4, .C = 2, .H = 4, .W = 4, .O = 4, .KH = 2, .KW = 2,
                 .sh = 1, .sw = 1, .plh = 0, .phh = 0, .plw = 0, .phw = 0,
                 .ldh = 1, .ldw = 1, .rdh = 1, .rdw = 1, .G = 1, .BG = 4 };
  check_conv_case (&c);
}

static void
test_conv_transposed (void)
{
  /* Transposed convolution: lhs_dilate with padding on both sides. */
  ConvCase c = { .N = 1, .C = 2, .H = 3, .W = 4, .O = 2, .KH = 3, .KW = 3,
                 .sh = 1, .sw = 1, .plh = 2, .phh = 2, .plw = 1, .phw = 2,
                 .ldh = 2, .ldw = 2, .rdh = 1, .rdw = 1, .G = 1, .BG = 1 };
  check_conv_case (&c);

  /* And a 1D case worked by hand: [1,2,3] dilated to [1,0,2,0,3], padded to
   * [0,1,0,2,0,3,0], summed over windows of 2. */
  Fixture f;
  fixture_init (&f);
  FbLiteral *r = run (&f,
    "HloModule tconv\n"
    "ENTRY main {\n"
    "  x = f32[1,3,1] constant({ { {1}, {2}, {3} } })\n"
    "  k = f32[2,1,1] constant({ { {1} }, { {1} } })\n"
    "  ROOT c = f32[1,6,1] convolution(x, k), window={size=2 pad=1_1 lhs_dilate=2}, dim_labels=b0f_0io->b0f\n"
    "}\n");
  assert_values (r, (double[]) { 1, 1, 2, 2, 3, 3 }, 6, 0);
  fixture_clear (&f);
}

static void
test_conv_1d_by_hand (void)
{
  Fixture f;
  fixture_init (&f);
  /* A central difference with zero padding. */
  FbLiteral *r = run (&f,
    "HloModule diff\n"
    "ENTRY main {\n"
    "  x = f32[1,5,1] constant({ { {1}, {2}, {3}, {4}, {5} } })\n"
    "  k = f32[3,1,1] constant({ { {1} }, { {0} }, { {-1} } })\n"
    "  ROOT c = f32[1,5,1] convolution(x, k), window={size=3 pad=1_1}, dim_labels=b0f_0io->b0f\n"
    "}\n");
  assert_values (r, (double[]) { -2, -2, -2, -2, 4 }, 5, 0);
  /* Negative padding drops the first element; window reversal flips the kernel. */
  r = run (&f,
    "HloModule neg\n"
    "ENTRY main {\n"
    "  x = f32[1,5,1] constant({ { {1}, {2}, {3}, {4}, {5} } })\n"
    "  k = f32[1,1,1] constant({ { {1} } })\n"
    "  ROOT c = f32[1,4,1] convolution(x, k), window={size=1 pad=-1_0}, dim_labels=b0f_0io->b0f\n"
    "}\n");
  assert_values (r, (double[]) { 2, 3, 4, 5 }, 4, 0);
  r = run (&f,
    "HloModule rev\n"
    "ENTRY main {\n"
    "  x = f32[1,3,1] constant({ { {1}, {2}, {3} } })\n"
    "  k = f32[2,1,1] constant({ { {1} }, { {2} } })\n"
    "  ROOT c = f32[1,2,1] convolution(x, k), window={size=2 rhs_reversal=1}, dim_labels=b0f_0io->b0f\n"
    "}\n");
  assert_values (r, (double[]) { 4, 7 }, 2, 0);
  fixture_clear (&f);
}

/* ----------------------------------------------------------- reduce */

static void
test_reduce_argmax (void)
{
  Fixture f;
  fixture_init (&f);
  /* Variadic reduce: (max value, lowest index of it) per row. */
  FbLiteral *r = run (&f,
    "HloModule argmax\n"
    "argmax {\n"
    "  av = f32[] parameter(0)\n"
    "  ai = s32[] parameter(1)\n"
    "  bv = f32[] parameter(2)\n"
    "  bi = s32[] parameter(3)\n"
    "  gt = pred[] compare(av, bv), direction=GT\n"
    "  eq = pred[] compare(av, bv), direction=EQ\n"
    "  lt = pred[] compare(ai, bi), direction=LT\n"
    "  tie = pred[] and(eq, lt)\n"
    "  keep = pred[] or(gt, tie)\n"
    "  v = f32[] select(keep, av, bv)\n"
    "  i = s32[] select(keep, ai, bi)\n"
    "  ROOT t = (f32[], s32[]) tuple(v, i)\n"
    "}\n"
    "ENTRY main {\n"
    "  x = f32[3,4] constant({ {1, 5, 5, 2}, {-1, -3, -0.5, -2}, {7, 0, 0, 7} })\n"
    "  idx = s32[3,4] iota(), iota_dimension=1\n"
    "  ninf = f32[] constant(-inf)\n"
    "  zero = s32[] constant(0)\n"
    "  ROOT r = (f32[3], s32[3]) reduce(x, idx, ninf, zero), dimensions={1}, to_apply=argmax\n"
    "}\n");
  g_assert_true (fb_shape_is_tuple (r->shape));
  assert_values (r->elems[0], (double[]) { 5, -0.5, 7 }, 3, 0);
  assert_values (r->elems[1], (double[]) { 1, 2, 0 }, 3, 0);
  fixture_clear (&f);
}

static void
test_reduce_sum_dims (void)
{
  Fixture f;
  fixture_init (&f);
  /* Sum over dims {0,2}; the second form needs the computation to be called. */
  const char *fmt =
    "HloModule sum\n"
    "add {\n"
    "  a = f32[] parameter(0)\n"
    "  b = f32[] parameter(1)\n"
    "  %s\n"
    "}\n"
    "ENTRY main {\n"
    "  x = f32[2,3,2] parameter(0)\n"
    "  z = f32[] constant(0.5)\n"
    "  ROOT r = f32[3] reduce(x, z), dimensions={0,2}, to_apply=add\n"
    "}\n";
  g_autofree double *xv = pattern (12, 7);
  FbLiteral *arg = make (&f, FB_F32, 3, (int64_t[]) { 2, 3, 2 }, xv);
  double want[3];
  for (int j = 0; j < 3; j++)
    want[j] = 0.5 + xv[0 * 6 + j * 2] + xv[0 * 6 + j * 2 + 1] + xv[6 + j * 2] + xv[6 + j * 2 + 1];
  g_autofree char *fast = g_strdup_printf (fmt, "ROOT s = f32[] add(b, a)");
  assert_values (run_args (&f, fast, 1, &arg), want, 3, 1e-6);
  g_autofree char *slow = g_strdup_printf (fmt, "s = f32[] add(a, b)\n  one = f32[] constant(1)\n"
                                                "  ROOT m = f32[] multiply(s, one)");
  assert_values (run_args (&f, slow, 1, &arg), want, 3, 1e-6);
  fixture_clear (&f);
}

/* ------------------------------------------------------ reduce-window */

static void
test_reduce_window_pools (void)
{
  Fixture f;
  fixture_init (&f);
  const char *fmt =
    "HloModule pool\n"
    "comb {\n"
    "  a = f32[] parameter(0)\n"
    "  b = f32[] parameter(1)\n"
    "  ROOT c = f32[] %s(a, b)\n"
    "}\n"
    "ENTRY main {\n"
    "  x = f32[4,4] constant({ {1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}, {13, 14, 15, 16} })\n"
    "  init = f32[] constant(%s)\n"
    "  ROOT r = f32[2,2] reduce-window(x, init), window={size=3x3 stride=2x2 pad=1_0x1_0}, to_apply=comb\n"
    "}\n";
  /* Windows start at -1 and 1 in each dim: rows {0,1} or {1,2,3}. */
  g_autofree char *maxp = g_strdup_printf (fmt, "maximum", "-inf");
  assert_values (run (&f, maxp), (double[]) { 6, 8, 14, 16 }, 4, 0);
  g_autofree char *sump = g_strdup_printf (fmt, "add", "0");
  FbLiteral *sums = run (&f, sump);
  assert_values (sums, (double[]) { 14, 30, 57, 99 }, 4, 0);
  /* Average pool = sum / count of real elements (4, 6, 6, 9). */
  double counts[4] = { 4, 6, 6, 9 }, avg[4] = { 3.5, 5, 9.5, 11 };
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat_with_epsilon (fb_literal_get_f64 (sums, i) / counts[i], avg[i], 1e-6);
  /* Base dilation: [1,2,3] dilated to [1,_,2,_,3], windows of 2. */
  FbLiteral *r = run (&f,
    "HloModule dil\n"
    "add {\n"
    "  a = f32[] parameter(0)\n"
    "  b = f32[] parameter(1)\n"
    "  ROOT c = f32[] add(a, b)\n"
    "}\n"
    "ENTRY main {\n"
    "  x = f32[3] constant({1, 2, 3})\n"
    "  z = f32[] constant(0)\n"
    "  ROOT r = f32[4] reduce-window(x, z), window={size=2 lhs_dilate=2}, to_apply=add\n"
    "}\n");
  assert_values (r, (double[]) { 1, 2, 2, 3 }, 4, 0);
  fixture_clear (&f);
}

static void
test_select_and_scatter (void)
{
  Fixture f;
  fixture_init (&f);
  /* Max-pool gradient: each source value goes to the first maximum of its window. */
  FbLiteral *r = run (&f,
    "HloModule sas\n"
    "ge {\n"
    "  a = f32[] parameter(0)\n"
    "  b = f32[] parameter(1)\n"
    "  ROOT c = pred[] compare(a, b), direction=GE\n"
    "}\n"
    "add {\n"
    "  a = f32[] parameter(0)\n"
    "  b = f32[] parameter(1)\n"
    "  ROOT c = f32[] add(a, b)\n"
    "}\n"
    "ENTRY main {\n"
    "  x = f32[4,4] constant({ {1, 9, 2, 2}, {3, 4, 2, 2}, {5, 6, 8, 0}, {7, 0, 1, 8} })\n"
    "  src = f32[2,2] constant({ {10, 20}, {30, 40} })\n"
    "  zero = f32[] constant(0)\n"
    "  ROOT r = f32[4,4] select-and-scatter(x, src, zero), window={size=2x2 stride=2x2}, select=ge, scatter=add\n"
    "}\n");
  assert_values (r, (double[]) { 0, 10, 20, 0,   0, 0, 0, 0,
                                 0, 0, 40, 0,   30, 0, 0, 0 }, 16, 0);
  /* Overlapping windows add into the same element; the called (non-inline)
   * select compares the negated values (-b >= -a), so it still keeps the
   * first of equal elements. */
  r = run (&f,
    "HloModule sas2\n"
    "sel {\n"
    "  a = f32[] parameter(0)\n"
    "  b = f32[] parameter(1)\n"
    "  na = f32[] negate(a)\n"
    "  nb = f32[] negate(b)\n"
    "  ROOT c = pred[] compare(nb, na), direction=GE\n"
    "}\n"
    "add {\n"
    "  a = f32[] parameter(0)\n"
    "  b = f32[] parameter(1)\n"
    "  ROOT c = f32[] add(a, b)\n"
    "}\n"
    "ENTRY main {\n"
    "  x = f32[4] constant({1, 5, 5, 2})\n"
    "  src = f32[3] constant({1, 2, 4})\n"
    "  zero = f32[] constant(0)\n"
    "  ROOT r = f32[4] select-and-scatter(x, src, zero), window={size=2 stride=1}, select=sel, scatter=add\n"
    "}\n");
  assert_values (r, (double[]) { 0, 3, 4, 0 }, 4, 0);
  fixture_clear (&f);
}

/* ------------------------------------------------------ gather/scatter */

static void
test_gather_embedding (void)
{
  Fixture f;
  fixture_init (&f);
  /* Rows of a table; id 7 is clamped to the last row, -2 to the first. */
  FbLiteral *r = run (&f,
    "HloModule emb\n"
    "ENTRY main {\n"
    "  t = f32[5,2] constant({ {0, 1}, {10, 11}, {20, 21}, {30, 31}, {40, 41} })\n"
    "  ids = s32[4] constant({3, 0, 7, -2})\n"
    "  ROOT g = f32[4,2] gather(t, ids), offset_dims={1}, collapsed_slice_dims={0}, "
    "start_index_map={0}, index_vector_dim=1, slice_sizes={1,2}\n"
    "}\n");
  assert_values (r, (double[]) { 30, 31, 0, 1, 40, 41, 0, 1 }, 8, 0);
  fixture_clear (&f);
}

static void
test_gather_general (void)
{
  Fixture f;
  fixture_init (&f);
  /* Two start indices per slice, index vector in dimension 0, a 2x2 window
   * of dims 1 and 2 of a [3,4,3] operand; the second start is clamped. */
  FbLiteral *r = run (&f,
    "HloModule g2\n"
    "ENTRY main {\n"
    "  x = s32[3,4,3] iota(), iota_dimension=0\n"
    "  y = s32[3,4,3] iota(), iota_dimension=1\n"
    "  z = s32[3,4,3] iota(), iota_dimension=2\n"
    "  h = s32[] constant(100)\n"
    "  t = s32[] constant(10)\n"
    "  hb = s32[3,4,3] broadcast(h), dimensions={}\n"
    "  tb = s32[3,4,3] broadcast(t), dimensions={}\n"
    "  xh = s32[3,4,3] multiply(x, hb)\n"
    "  yt = s32[3,4,3] multiply(y, tb)\n"
    "  s = s32[3,4,3] add(xh, yt)\n"
    "  op = s32[3,4,3] add(s, z)\n"
    "  idx = s32[2,2] constant({ {2, 0}, {1, 3} })\n"
    "  ROOT g = s32[2,2,2] gather(op, idx), offset_dims={1,2}, collapsed_slice_dims={0}, "
    "start_index_map={0,1}, index_vector_dim=0, slice_sizes={1,2,2}\n"
    "}\n");
  /* Slice 0 starts at (2,1) (from column 0 of idx), slice 1 at (0,3) -> clamped to (0,2). */
  assert_values (r, (double[]) { 210, 211, 220, 221,   20, 21, 30, 31 }, 8, 0);
  fixture_clear (&f);
}

static void
test_scatter_add (void)
{
  Fixture f;
  fixture_init (&f);
  const char *fmt =
    "HloModule sc\n"
    "comb {\n"
    "  a = %s[] parameter(0)\n"
    "  b = %s[] parameter(1)\n"
    "  ROOT c = %s[] %s(a, b)\n"
    "}\n"
    "ENTRY main {\n"
    "  x = %s[4,2] constant({ {1, 1}, {1, 1}, {1, 1}, {1, 1} })\n"
    "  i = s32[5,1] constant({ {2}, {0}, {4}, {2}, {-1} })\n"
    "  u = %s[5,2] constant({ {1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10} })\n"
    "  ROOT s = %s[4,2] scatter(x, i, u), update_window_dims={1}, inserted_window_dims={0}, "
    "scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=comb\n"
    "}\n";
  /* Rows 4 and -1 are out of bounds and skipped; row 2 gets two updates. */
  g_autofree char *add = g_strdup_printf (fmt, "f32", "f32", "f32", "add", "f32", "f32", "f32");
  assert_values (run (&f, add), (double[]) { 4, 5, 1, 1, 9, 11, 1, 1 }, 8, 0);
  g_autofree char *iadd = g_strdup_printf (fmt, "s32", "s32", "s32", "add", "s32", "s32", "s32");
  assert_values (run (&f, iadd), (double[]) { 4, 5, 1, 1, 9, 11, 1, 1 }, 8, 0);
  g_autofree char *imax = g_strdup_printf (fmt, "s32", "s32", "s32", "maximum", "s32", "s32", "s32");
  assert_values (run (&f, imax), (double[]) { 3, 4, 1, 1, 7, 8, 1, 1 }, 8, 0);
  /* A window that would stick out of the operand is skipped entirely. */
  FbLiteral *r = run (&f,
    "HloModule sc2\n"
    "add {\n"
    "  a = f32[] parameter(0)\n"
    "  b = f32[] parameter(1)\n"
    "  ROOT c = f32[] add(a, b)\n"
    "}\n"
    "ENTRY main {\n"
    "  x = f32[5] constant({0, 0, 0, 0, 0})\n"
    "  i = s32[2] constant({1, 4})\n"
    "  u = f32[2,2] constant({ {1, 2}, {3, 4} })\n"
    "  ROOT s = f32[5] scatter(x, i, u), update_window_dims={1}, inserted_window_dims={}, "
    "scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add\n"
    "}\n");
  assert_values (r, (double[]) { 0, 1, 2, 0, 0 }, 5, 0);
  fixture_clear (&f);
}

/* --------------------------------------------------------- sort, topk */

static void
test_sort_stable (void)
{
  Fixture f;
  fixture_init (&f);
  /* Keys with ties, payload = original position: ties keep their order. */
  FbLiteral *r = run (&f,
    "HloModule sort\n"
    "lt {\n"
    "  a = f32[] parameter(0)\n"
    "  b = f32[] parameter(1)\n"
    "  c = s32[] parameter(2)\n"
    "  d = s32[] parameter(3)\n"
    "  ROOT r = pred[] compare(a, b), direction=LT\n"
    "}\n"
    "ENTRY main {\n"
    "  k = f32[8] constant({3, 1, 2, 1, 3, 2, 1, 0})\n"
    "  v = s32[8] iota(), iota_dimension=0\n"
    "  ROOT s = (f32[8], s32[8]) sort(k, v), dimensions={0}, is_stable=true, to_apply=lt\n"
    "}\n");
  assert_values (r->elems[0], (double[]) { 0, 1, 1, 1, 2, 2, 3, 3 }, 8, 0);
  assert_values (r->elems[1], (double[]) { 7, 1, 3, 6, 2, 5, 0, 4 }, 8, 0);
  fixture_clear (&f);
}

static void
test_sort_two_operands (void)
{
  Fixture f;
  fixture_init (&f);
  /* Descending along dimension 0 of a matrix, by key then by payload
   * (the comparator reads both operands, so it must be called). */
  FbLiteral *r = run (&f,
    "HloModule sort2\n"
    "cmp {\n"
    "  a = s32[] parameter(0)\n"
    "  b = s32[] parameter(1)\n"
    "  c = f32[] parameter(2)\n"
    "  d = f32[] parameter(3)\n"
    "  gt = pred[] compare(a, b), direction=GT\n"
    "  eq = pred[] compare(a, b), direction=EQ\n"
    "  lt2 = pred[] compare(c, d), direction=LT\n"
    "  tie = pred[] and(eq, lt2)\n"
    "  ROOT r = pred[] or(gt, tie)\n"
    "}\n"
    "ENTRY main {\n"
    "  k = s32[3,2] constant({ {1, 5}, {2, 5}, {2, 4} })\n"
    "  v = f32[3,2] constant({ {0.5, 3}, {9, 1}, {-1, 2} })\n"
    "  ROOT s = (s32[3,2], f32[3,2]) sort(k, v), dimensions={0}, to_apply=cmp\n"
    "}\n");
  assert_values (r->elems[0], (double[]) { 2, 5, 2, 5, 1, 4 }, 6, 0);
  assert_values (r->elems[1], (double[]) { -1, 1, 9, 3, 0.5, 2 }, 6, 0);
  fixture_clear (&f);
}

static void
test_topk_ties (void)
{
  Fixture f;
  fixture_init (&f);
  FbLiteral *r = run (&f,
    "HloModule topk\n"
    "ENTRY main {\n"
    "  x = f32[2,5] constant({ {1, 3, 3, 0, 3}, {-1, -2, 4, 4, -3} })\n"
    "  ROOT t = (f32[2,3], s32[2,3]) topk(x), k=3, largest=true\n"
    "}\n");
  assert_values (r->elems[0], (double[]) { 3, 3, 3, 4, 4, -1 }, 6, 0);
  assert_values (r->elems[1], (double[]) { 1, 2, 4, 2, 3, 0 }, 6, 0);
  fixture_clear (&f);
}

/* --------------------------------------------------------- batch norm */

/* y = (x - mean) / sqrt(var + eps) * scale + offset, with batch statistics,
 * for x of shape [N, C, S] (feature index 1). */
static void
bn_train_ref (const double *x, const double *scale, const double *offset, int N, int C, int S,
              double eps, double *y, double *mean, double *var)
{
  for (int c = 0; c < C; c++)
    {
      double s = 0, q = 0;
      for (int n = 0; n < N; n++)
        for (int i = 0; i < S; i++)
          s += x[(n * C + c) * S + i];
      double m = s / (N * S);
      for (int n = 0; n < N; n++)
        for (int i = 0; i < S; i++)
          q += (x[(n * C + c) * S + i] - m) * (x[(n * C + c) * S + i] - m);
      double v = q / (N * S);
      if (mean) mean[c] = m;
      if (var) var[c] = v;
      for (int n = 0; n < N; n++)
        for (int i = 0; i < S; i++)
          y[(n * C + c) * S + i] = (x[(n * C + c) * S + i] - m) / sqrt (v + eps) * scale[c] + offset[c];
    }
}

static void
test_batch_norm_training (void)
{
  Fixture f;
  fixture_init (&f);
  const char *hlo =
    "HloModule bn\n"
    "ENTRY main {\n"
    "  x = f32[2,3,4] parameter(0)\n"
    "  s = f32[3] parameter(1)\n"
    "  o = f32[3] parameter(2)\n"
    "  ROOT t = (f32[2,3,4], f32[3], f32[3]) batch-norm-training(x, s, o), epsilon=0.001, feature_index=1\n"
    "}\n";
  g_autofree double *x = pattern (24, 8);
  double scale[3] = { 1.5, -0.5, 2 }, offset[3] = { 0.25, 1, -1 };
  double y[24], mean[3], var[3];
  bn_train_ref (x, scale, offset, 2, 3, 4, 0.001, y, mean, var);
  FbLiteral *args[3] = { make (&f, FB_F32, 3, (int64_t[]) { 2, 3, 4 }, x),
                         make (&f, FB_F32, 1, (int64_t[]) { 3 }, scale),
                         make (&f, FB_F32, 1, (int64_t[]) { 3 }, offset) };
  FbLiteral *r = run_args (&f, hlo, 3, args);
  assert_values (r->elems[0], y, 24, 1e-5);
  assert_values (r->elems[1], mean, 3, 1e-6);
  assert_values (r->elems[2], var, 3, 1e-6);

  /* Inference with those statistics gives the same normalized values. */
  const char *inf =
    "HloModule bni\n"
    "ENTRY main {\n"
    "  x = f32[2,3,4] parameter(0)\n"
    "  s = f32[3] parameter(1)\n"
    "  o = f32[3] parameter(2)\n"
    "  m = f32[3] parameter(3)\n"
    "  v = f32[3] parameter(4)\n"
    "  ROOT y = f32[2,3,4] batch-norm-inference(x, s, o, m, v), epsilon=0.001, feature_index=1\n"
    "}\n";
  FbLiteral *args5[5] = { args[0], args[1], args[2], make (&f, FB_F32, 1, (int64_t[]) { 3 }, mean),
                          make (&f, FB_F32, 1, (int64_t[]) { 3 }, var) };
  assert_values (run_args (&f, inf, 5, args5), y, 24, 1e-5);
  fixture_clear (&f);
}

static double
bn_loss (const double *x, const double *scale, const double *offset, const double *dy, int N, int C,
         int S, double eps, double *y)
{
  double l = 0;
  bn_train_ref (x, scale, offset, N, C, S, eps, y, NULL, NULL);
  for (int i = 0; i < N * C * S; i++)
    l += dy[i] * y[i];
  return l;
}

static void
test_batch_norm_grad (void)
{
  Fixture f;
  fixture_init (&f);
  /* Gradients of L = sum (dy * bn_training (x, scale, offset)) against
   * central finite differences, in f64. */
  enum { N = 3, C = 2, S = 2, NX = N * C * S };
  const double eps = 0.01, h = 1e-5;
  g_autofree double *x = pattern (NX, 9);
  g_autofree double *dy = pattern (NX, 10);
  x[3] += 0.3;   /* break the pattern's symmetry a little */
  double scale[C] = { 0.7, -1.3 }, offset[C] = { 0.1, 0.2 };
  double y[NX], mean[C], var[C];
  bn_train_ref (x, scale, offset, N, C, S, eps, y, mean, var);

  const char *hlo =
    "HloModule bng\n"
    "ENTRY main {\n"
    "  x = f64[3,2,2] parameter(0)\n"
    "  s = f64[2] parameter(1)\n"
    "  m = f64[2] parameter(2)\n"
    "  v = f64[2] parameter(3)\n"
    "  dy = f64[3,2,2] parameter(4)\n"
    "  ROOT t = (f64[3,2,2], f64[2], f64[2]) batch-norm-grad(x, s, m, v, dy), epsilon=0.01, feature_index=1\n"
    "}\n";
  FbLiteral *args[5] = { make (&f, FB_F64, 3, (int64_t[]) { N, C, S }, x),
                         make (&f, FB_F64, 1, (int64_t[]) { C }, scale),
                         make (&f, FB_F64, 1, (int64_t[]) { C }, mean),
                         make (&f, FB_F64, 1, (int64_t[]) { C }, var),
                         make (&f, FB_F64, 3, (int64_t[]) { N, C, S }, dy) };
  FbLiteral *r = run_args (&f, hlo, 5, args);

#define LOSS(out) bn_loss (x, scale, offset, dy, N, C, S, eps, out)
  double tmp[NX];
  for (int i = 0; i < NX; i++)
    {
      double keep = x[i];
      x[i] = keep + h;
      double lp = LOSS (tmp);
      x[i] = keep - h;
      double lm = LOSS (tmp);
      x[i] = keep;
      g_assert_cmpfloat_with_epsilon (fb_literal_get_f64 (r->elems[0], i), (lp - lm) / (2 * h), 1e-6);
    }
  for (int c = 0; c < C; c++)
    {
      double keep = scale[c];
      scale[c] = keep + h;
      double lp = LOSS (tmp);
      scale[c] = keep - h;
      double lm = LOSS (tmp);
      scale[c] = keep;
      g_assert_cmpfloat_with_epsilon (fb_literal_get_f64 (r->elems[1], c), (lp - lm) / (2 * h), 1e-6);
      keep = offset[c];
      offset[c] = keep + h;
      lp = LOSS (tmp);
      offset[c] = keep - h;
      lm = LOSS (tmp);
      offset[c] = keep;
      g_assert_cmpfloat_with_epsilon (fb_literal_get_f64 (r->elems[2], c), (lp - lm) / (2 * h), 1e-6);
    }
#undef LOSS
  fixture_clear (&f);
}

/* ------------------------------------------------------ linear algebra */

static void
test_cholesky_and_solve (void)
{
  Fixture f;
  fixture_init (&f);
  FbLiteral *r = run (&f,
    "HloModule chol\n"
    "ENTRY main {\n"
    "  a = f32[2,2] constant({ {4, 2}, {2, 3} })\n"
    "  ROOT l = f32[2,2] cholesky(a), lower=true\n"
    "}\n");
  assert_values (r, (double[]) { 2, 0, 1, sqrt (2) }, 4, 1e-6);
  /* Solve L X = B with L lower triangular; the upper triangle is ignored. */
  r = run (&f,
    "HloModule tri\n"
    "ENTRY main {\n"
    "  a = f32[2,2] constant({ {2, 99}, {1, 4} })\n"
    "  b = f32[2,2] constant({ {2, 4}, {9, 2} })\n"
    "  ROOT x = f32[2,2] triangular-solve(a, b), left_side=true, lower=true, transpose_a=NO_TRANSPOSE\n"
    "}\n");
  assert_values (r, (double[]) { 1, 2, 2, 0 }, 4, 1e-6);
  /* X A^T = B on the right side, with a unit diagonal. */
  r = run (&f,
    "HloModule tri2\n"
    "ENTRY main {\n"
    "  a = f32[2,2] constant({ {7, 0}, {3, 7} })\n"
    "  b = f32[1,2] constant({ {5, 3} })\n"
    "  ROOT x = f32[1,2] triangular-solve(a, b), left_side=false, lower=true, unit_diagonal=true, transpose_a=TRANSPOSE\n"
    "}\n");
  /* A^T = [[1,3],[0,1]]: x0 = 5, 3 x0 + x1 = 3 -> x1 = -12. */
  assert_values (r, (double[]) { 5, -12 }, 2, 1e-6);
  fixture_clear (&f);
}

static void
test_fft_roundtrip (void)
{
  Fixture f;
  fixture_init (&f);
  FbLiteral *r = run (&f,
    "HloModule rfft\n"
    "ENTRY main {\n"
    "  x = f32[4] constant({1, 2, 3, 4})\n"
    "  ROOT y = c64[3] fft(x), fft_type=RFFT, fft_length={4}\n"
    "}\n");
  float *z = (float *) r->data;
  double want[6] = { 10, 0, -2, 2, -2, 0 };
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat_with_epsilon (z[i], want[i], 1e-5);
  r = run (&f,
    "HloModule irfft\n"
    "ENTRY main {\n"
    "  x = f32[4] constant({1, 2, 3, 4})\n"
    "  y = c64[3] fft(x), fft_type=RFFT, fft_length={4}\n"
    "  ROOT z = f32[4] fft(y), fft_type=IRFFT, fft_length={4}\n"
    "}\n");
  assert_values (r, (double[]) { 1, 2, 3, 4 }, 4, 1e-5);
  fixture_clear (&f);
}

/* ------------------------------------------------------------- errors */

static void
test_bad_input_errors (void)
{
  /* Evaluators called directly on values that do not fit the instruction
   * report an error instead of reading out of bounds. */
  FbModule *m = fb_module_new ("bad");
  FbComputation *comp = fb_module_add_computation (m, "main");
  int64_t d23[2] = { 2, 3 }, d43[2] = { 4, 3 }, d22[2] = { 2, 2 };
  FbShape *s23 = fb_shape_new_array (m->arena, FB_F32, 2, d23);
  FbShape *s43 = fb_shape_new_array (m->arena, FB_F32, 2, d43);
  FbShape *s22 = fb_shape_new_array (m->arena, FB_F32, 2, d22);
  FbInstr *p0 = fb_instr_new (comp, NULL, FB_OP_PARAMETER, s23, 0, NULL, "p0");
  FbInstr *p1 = fb_instr_new (comp, NULL, FB_OP_PARAMETER, s43, 0, NULL, "p1");
  p1->parameter_number = 1;
  FbInstr *ops2[2] = { p0, p1 };
  FbInstr *dot = fb_instr_new (comp, NULL, FB_OP_DOT, s22, 2, ops2, "dot");
  fb_instr_set_dims (dot, FB_A_LHS_CONTRACTING_DIMS, 1, (int64_t[]) { 1 });
  fb_instr_set_dims (dot, FB_A_RHS_CONTRACTING_DIMS, 1, (int64_t[]) { 0 });

  FbArena *arena = fb_arena_new ();
  FbInterp ctx = { .module = m, .arena = arena };
  FbLiteral *vals[2] = { fb_literal_new (arena, s23), fb_literal_new (arena, s43) };
  FbLiteral *out = NULL;
  GError *error = NULL;
  g_assert_false (_fb_interp_dot (&ctx, dot, vals, &out, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_RUNTIME);
  g_assert_nonnull (strstr (error->message, "contracting"));
  g_clear_error (&error);

  /* A contracting dimension that does not exist. */
  fb_instr_set_dims (dot, FB_A_RHS_CONTRACTING_DIMS, 1, (int64_t[]) { 5 });
  g_assert_false (_fb_interp_dot (&ctx, dot, vals, &out, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_RUNTIME);
  g_clear_error (&error);

  /* Gather with float indices, then with a slice larger than the operand. */
  FbInstr *g = fb_instr_new (comp, NULL, FB_OP_GATHER, s22, 2, ops2, "gather");
  fb_instr_set_dims (g, FB_A_SLICE_SIZES, 2, (int64_t[]) { 9, 1 });
  g_assert_false (_fb_interp_gather (&ctx, g, vals, &out, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_RUNTIME);
  g_clear_error (&error);
  int64_t d2[1] = { 2 };
  FbLiteral *gvals[2] = { vals[0], fb_literal_new (arena, fb_shape_new_array (arena, FB_S32, 1, d2)) };
  g_assert_false (_fb_interp_gather (&ctx, g, gvals, &out, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_RUNTIME);
  g_assert_nonnull (strstr (error->message, "slice size"));
  g_clear_error (&error);

  fb_arena_free (arena);
  fb_module_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/interp/linalg/dot/batch-dims", test_dot_batch_dims);
  g_test_add_func ("/interp/linalg/dot/transposed-gradient", test_dot_transposed_gradient);
  g_test_add_func ("/interp/linalg/dot/mixed-types", test_dot_mixed_int);
  g_test_add_func ("/interp/linalg/conv/by-hand-1d", test_conv_1d_by_hand);
  g_test_add_func ("/interp/linalg/conv/padding-stride-dilation", test_conv_padding_stride_dilation);
  g_test_add_func ("/interp/linalg/conv/depthwise", test_conv_depthwise);
  g_test_add_func ("/interp/linalg/conv/batch-groups", test_conv_batch_groups);
  g_test_add_func ("/interp/linalg/conv/transposed", test_conv_transposed);
  g_test_add_func ("/interp/linalg/reduce/argmax", test_reduce_argmax);
  g_test_add_func ("/interp/linalg/reduce/sum-dims", test_reduce_sum_dims);
  g_test_add_func ("/interp/linalg/reduce-window/pools", test_reduce_window_pools);
  g_test_add_func ("/interp/linalg/select-and-scatter/max-pool-grad", test_select_and_scatter);
  g_test_add_func ("/interp/linalg/gather/embedding", test_gather_embedding);
  g_test_add_func ("/interp/linalg/gather/general", test_gather_general);
  g_test_add_func ("/interp/linalg/scatter/add-out-of-bounds", test_scatter_add);
  g_test_add_func ("/interp/linalg/sort/stable", test_sort_stable);
  g_test_add_func ("/interp/linalg/sort/two-operands", test_sort_two_operands);
  g_test_add_func ("/interp/linalg/topk/ties", test_topk_ties);
  g_test_add_func ("/interp/linalg/batch-norm/training", test_batch_norm_training);
  g_test_add_func ("/interp/linalg/batch-norm/grad", test_batch_norm_grad);
  g_test_add_func ("/interp/linalg/cholesky-and-solve", test_cholesky_and_solve);
  g_test_add_func ("/interp/linalg/fft/roundtrip", test_fft_roundtrip);
  g_test_add_func ("/interp/linalg/errors", test_bad_input_errors);
  return g_test_run ();
}
