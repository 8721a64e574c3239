/* SPDX-License-Identifier: MIT
 *
 * Checks every derivative rule against central finite differences. Each case
 * builds f(x...) = sum(op(x...) * r) in f64 with a fixed random r,
 * differentiates it, runs the gradient computation in the reference
 * interpreter on random inputs (seeded), and compares every gradient element
 * with (f(x + h e_i) - f(x - h e_i)) / 2h.
 */
#include <math.h>
#include <string.h>

#include "fb-autodiff.h"
#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-verify.h"

#define MAXP 4

typedef enum {
  IN_ANY,        /* uniform in [-1, 1] */
  IN_POS,        /* uniform in [0.5, 2] */
  IN_LO,         /* uniform in [-0.6, -0.4] */
  IN_HI,         /* uniform in [0.4, 0.6] */
  IN_FIXED       /* integer values from the case, not differentiated */
} InputKind;

typedef struct {
  FbElemType type;
  int        rank;
  int64_t    dims[6];
  InputKind  kind;
  const double *fixed;
} ParamSpec;

typedef FbInstr *(*BuildFn) (FbBuilder *b, FbInstr **p);

typedef struct {
  const char *path;
  int         n_params;
  ParamSpec   params[MAXP];
  BuildFn     build;
  double      h, tol;        /* 0: defaults */
} Case;

#define F64(...) { FB_F64, __VA_ARGS__ }

static FbInstr *b_sign (FbBuilder *b, FbInstr **p);

/* -------------------------------------------------------------- harness */

static double
rand_in (GRand *rand, InputKind kind)
{
  switch (kind)
    {
    case IN_POS: return g_rand_double_range (rand, 0.5, 2.0);
    case IN_LO: return g_rand_double_range (rand, -0.6, -0.4);
    case IN_HI: return g_rand_double_range (rand, 0.4, 0.6);
    default: return g_rand_double_range (rand, -1.0, 1.0);
    }
}

static double
eval_loss (FbModule *m, FbComputation *f, FbArena *arena, int n, FbLiteral **args)
{
  g_autoptr (GError) error = NULL;
  FbLiteral *out = fb_interp_run (m, f, arena, n, args, NULL, &error);
  g_assert_no_error (error);
  return fb_literal_get_f64 (out, 0);
}

static void
run_case (gconstpointer data)
{
  const Case *c = data;
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("autodiff_case");
  FbArena *arena = fb_arena_new ();
  GRand *rand = g_rand_new_with_seed (g_str_hash (c->path));

  /* f(x...) = sum(op(x...) * r) */
  FbBuilder *b = fb_builder_new (m, "f");
  FbInstr *p[MAXP];
  for (int i = 0; i < c->n_params; i++)
    p[i] = fb_b_param (b, fb_b_shape (b, c->params[i].type, c->params[i].rank, c->params[i].dims), NULL);
  FbInstr *y = c->build (b, p);
  g_assert_nonnull (y);
  int64_t n_out = fb_shape_elements (y->shape);
  g_autofree double *r = g_new (double, n_out);
  for (int64_t k = 0; k < n_out; k++)
    r[k] = g_rand_double_range (rand, -1.0, 1.0);
  FbInstr *rc = fb_b_const_array (b, y->shape->type, y->shape->rank, y->shape->dims, r);
  fb_builder_set_root (b, fb_b_sum_all (b, fb_b_mul (b, y, rc)));
  fb_builder_set_entry (b);
  FbComputation *f = fb_builder_finish (b, &error);
  g_assert_no_error (error);
  fb_builder_free (b);

  int wrt[MAXP], n_wrt = 0;
  for (int i = 0; i < c->n_params; i++)
    if (c->params[i].kind != IN_FIXED)
      wrt[n_wrt++] = i;
  FbComputation *grad = fb_autodiff_grad (m, f, -1, n_wrt, wrt, &error);
  g_assert_no_error (error);
  g_assert_nonnull (grad);
  fb_verify (m, &error);
  g_assert_no_error (error);

  FbLiteral *args[MAXP];
  for (int i = 0; i < c->n_params; i++)
    {
      const ParamSpec *ps = &c->params[i];
      FbShape *s = fb_shape_new_array (arena, ps->type, ps->rank, ps->dims);
      args[i] = fb_literal_new (arena, s);
      for (int64_t k = 0; k < fb_shape_elements (s); k++)
        {
          if (ps->kind == IN_FIXED)
            fb_literal_set_s64 (args[i], k, (int64_t) ps->fixed[k]);
          else
            fb_literal_set_f64 (args[i], k, rand_in (rand, ps->kind));
        }
    }

  FbLiteral *res = fb_interp_run (m, grad, arena, c->n_params, args, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (res->n_elems, ==, n_wrt + 1);
  double loss = eval_loss (m, f, arena, c->n_params, args);
  g_assert_cmpfloat_with_epsilon (fb_literal_get_f64 (res->elems[0], 0), loss, 1e-9 * MAX (1.0, fabs (loss)));

  double h = c->h > 0 ? c->h : 1e-6, tol = c->tol > 0 ? c->tol : 1e-5;
  double largest = 0;
  for (int w = 0; w < n_wrt; w++)
    {
      int i = wrt[w];
      FbLiteral *orig = args[i];
      FbLiteral *pert = fb_literal_copy (arena, orig);
      args[i] = pert;
      for (int64_t k = 0; k < fb_shape_elements (orig->shape); k++)
        {
          double x0 = fb_literal_get_f64 (orig, k);
          fb_literal_set_f64 (pert, k, x0 + h);
          double fp = eval_loss (m, f, arena, c->n_params, args);
          fb_literal_set_f64 (pert, k, x0 - h);
          double fm = eval_loss (m, f, arena, c->n_params, args);
          fb_literal_set_f64 (pert, k, x0);
          double fd = (fp - fm) / (2 * h);
          double ad = fb_literal_get_f64 (res->elems[w + 1], k);
          largest = MAX (largest, fabs (fd));
          if (fabs (ad - fd) > tol * MAX (1.0, fabs (fd)))
            g_error ("%s: d/d param %d [%" G_GINT64_FORMAT "]: autodiff %.10g, finite difference %.10g",
                     c->path, i, k, ad, fd);
        }
      args[i] = orig;
    }
  /* Only sign has a zero derivative everywhere; elsewhere the check must
   * have compared something. */
  if (c->build != b_sign)
    g_assert_cmpfloat (largest, >, 1e-3);

  g_rand_free (rand);
  fb_arena_free (arena);
  fb_module_free (m);
}

/* ---------------------------------------------------------------- cases */

#define UNARY_CASE(fn, opc)                                                  \
  static FbInstr *fn (FbBuilder *b, FbInstr **p) { return fb_b_unary (b, opc, p[0]); }
UNARY_CASE (b_neg, FB_OP_NEGATE)
UNARY_CASE (b_exp, FB_OP_EXP)
UNARY_CASE (b_log, FB_OP_LOG)
UNARY_CASE (b_log1p, FB_OP_LOG1P)
UNARY_CASE (b_expm1, FB_OP_EXPM1)
UNARY_CASE (b_tanh, FB_OP_TANH)
UNARY_CASE (b_logistic, FB_OP_LOGISTIC)
UNARY_CASE (b_sqrt, FB_OP_SQRT)
UNARY_CASE (b_rsqrt, FB_OP_RSQRT)
UNARY_CASE (b_cbrt, FB_OP_CBRT)
UNARY_CASE (b_abs, FB_OP_ABS)
UNARY_CASE (b_sign, FB_OP_SIGN)
UNARY_CASE (b_erf, FB_OP_ERF)
UNARY_CASE (b_sin, FB_OP_SIN)
UNARY_CASE (b_cos, FB_OP_COS)
UNARY_CASE (b_tan, FB_OP_TAN)
static FbInstr *b_copy (FbBuilder *b, FbInstr **p) { return fb_b_copy (b, p[0]); }

#define BINARY_CASE(fn, opc)                                                 \
  static FbInstr *fn (FbBuilder *b, FbInstr **p) { return fb_b_binary (b, opc, p[0], p[1]); }
BINARY_CASE (b_add, FB_OP_ADD)
BINARY_CASE (b_sub, FB_OP_SUBTRACT)
BINARY_CASE (b_mul, FB_OP_MULTIPLY)
BINARY_CASE (b_div, FB_OP_DIVIDE)
BINARY_CASE (b_max, FB_OP_MAXIMUM)
BINARY_CASE (b_min, FB_OP_MINIMUM)
BINARY_CASE (b_pow, FB_OP_POWER)
BINARY_CASE (b_atan2, FB_OP_ATAN2)

static FbInstr *
b_square_fanout (FbBuilder *b, FbInstr **p)
{
  /* x * x + exp(x): one value with several users. */
  return fb_b_add (b, fb_b_mul (b, p[0], p[0]), fb_b_exp (b, p[0]));
}

static FbInstr *
b_convert (FbBuilder *b, FbInstr **p)
{
  FbInstr *f = fb_b_convert (b, fb_b_mul (b, p[0], p[0]), FB_F32);
  return fb_b_convert (b, fb_b_tanh (b, f), FB_F64);
}

static FbInstr *
b_select (FbBuilder *b, FbInstr **p)
{
  FbInstr *pred = fb_b_compare (b, FB_CMP_GT, p[0], p[1]);
  return fb_b_select (b, pred, fb_b_exp (b, p[0]), fb_b_mul (b, p[1], p[1]));
}

static FbInstr *
b_clamp (FbBuilder *b, FbInstr **p)
{
  return fb_b_clamp (b, p[1], p[0], p[2]);
}

static FbInstr *
b_broadcast (FbBuilder *b, FbInstr **p)
{
  return fb_b_broadcast (b, p[0], 3, (int64_t[]) { 2, 3, 4 }, (int64_t[]) { 1 });
}

static FbInstr *
b_broadcast2 (FbBuilder *b, FbInstr **p)
{
  return fb_b_broadcast (b, p[0], 3, (int64_t[]) { 4, 2, 3 }, (int64_t[]) { 0, 2 });
}

static FbInstr *
b_reshape (FbBuilder *b, FbInstr **p)
{
  return fb_b_reshape (b, p[0], 3, (int64_t[]) { 3, 2, 4 });
}

static FbInstr *
b_transpose (FbBuilder *b, FbInstr **p)
{
  return fb_b_transpose (b, p[0], (int64_t[]) { 2, 0, 1 });
}

static FbInstr *
b_slice (FbBuilder *b, FbInstr **p)
{
  return fb_b_slice (b, p[0], (int64_t[]) { 1, 0 }, (int64_t[]) { 6, 5 }, (int64_t[]) { 2, 3 });
}

static FbInstr *
b_pad (FbBuilder *b, FbInstr **p)
{
  FbPadDim pads[2] = { { 1, -1, 1 }, { -1, 2, 2 } };
  return fb_b_pad (b, p[0], p[1], pads);
}

static FbInstr *
b_concat (FbBuilder *b, FbInstr **p)
{
  FbInstr *xs[3] = { p[0], p[1], p[0] };
  return fb_b_concatenate (b, 3, xs, 1);
}

static FbInstr *
b_reverse (FbBuilder *b, FbInstr **p)
{
  return fb_b_mul (b, fb_b_reverse (b, p[0], 1, (int64_t[]) { 1 }), p[0]);
}

static FbInstr *
b_dynamic_slice (FbBuilder *b, FbInstr **p)
{
  FbInstr *starts[2] = { fb_b_const_s32 (b, 1), fb_b_const_s32 (b, 2) };
  return fb_b_dynamic_slice (b, p[0], starts, (int64_t[]) { 2, 3 });
}

static FbInstr *
b_dynamic_update_slice (FbBuilder *b, FbInstr **p)
{
  FbInstr *starts[2] = { fb_b_const_s32 (b, 2), fb_b_const_s32 (b, 1) };
  return fb_b_dynamic_update_slice (b, p[0], fb_b_exp (b, p[1]), starts);
}

static const double gather_idx[] = { 0, 2, 4, 2 };

static FbInstr *
b_gather (FbBuilder *b, FbInstr **p)
{
  FbGatherDims d = {
    .n_offset_dims = 1, .offset_dims = { 1 },
    .n_collapsed_slice_dims = 1, .collapsed_slice_dims = { 0 },
    .n_start_index_map = 1, .start_index_map = { 0 },
    .index_vector_dim = 1, .slice_sizes = { 1, 3 },
  };
  return fb_b_gather (b, p[0], p[1], &d);
}

static FbInstr *
b_scatter (FbBuilder *b, FbInstr **p)
{
  FbScatterDims d = {
    .n_update_window_dims = 1, .update_window_dims = { 1 },
    .n_inserted_window_dims = 1, .inserted_window_dims = { 0 },
    .n_scatter_dims_to_operand_dims = 1, .scatter_dims_to_operand_dims = { 0 },
    .index_vector_dim = 1,
  };
  return fb_b_scatter (b, fb_b_mul (b, p[0], p[0]), p[1], p[2], FB_OP_ADD, &d);
}

static FbInstr *
b_reduce_add (FbBuilder *b, FbInstr **p)
{
  return fb_b_reduce_sum (b, fb_b_exp (b, p[0]), 2, (int64_t[]) { 0, 2 });
}

static FbInstr *
b_reduce_max (FbBuilder *b, FbInstr **p)
{
  return fb_b_reduce_max (b, p[0], 1, (int64_t[]) { 1 });
}

static FbInstr *
b_reduce_min (FbBuilder *b, FbInstr **p)
{
  return fb_b_reduce_min (b, p[0], 2, (int64_t[]) { 0, 2 });
}

static FbInstr *
b_reduce_window_add (FbBuilder *b, FbInstr **p)
{
  FbWindowDim w[2] = {
    { .size = 3, .stride = 2, .pad_lo = 1, .pad_hi = 2, .rhs_dilate = 1 },
    { .size = 2, .stride = 1, .pad_lo = 0, .pad_hi = 1, .lhs_dilate = 2, .rhs_dilate = 2 },
  };
  return fb_b_reduce_window (b, p[0], fb_b_const (b, FB_F64, 0), FB_OP_ADD, w);
}

static FbInstr *
b_reduce_window_max (FbBuilder *b, FbInstr **p)
{
  FbWindowDim w[2] = {
    { .size = 2, .stride = 2 },
    { .size = 3, .stride = 2, .pad_lo = 1, .pad_hi = 1 },
  };
  return fb_b_reduce_window (b, p[0], fb_b_const (b, FB_F64, -INFINITY), FB_OP_MAXIMUM, w);
}

static FbInstr *
b_matmul (FbBuilder *b, FbInstr **p)
{
  return fb_b_matmul (b, p[0], p[1]);
}

static FbInstr *
b_dot_batch (FbBuilder *b, FbInstr **p)
{
  /* lhs [4,2,3]: free 4, batch 2, contracting 3; rhs [3,5,2]: contracting,
   * free, batch. */
  FbDotDims d = {
    .n_batch = 1, .lhs_batch = { 1 }, .rhs_batch = { 2 },
    .n_contracting = 1, .lhs_contracting = { 2 }, .rhs_contracting = { 0 },
  };
  return fb_b_dot (b, p[0], p[1], &d);
}

static FbInstr *
b_conv_same (FbBuilder *b, FbInstr **p)
{
  FbConvWindow w = { .pad_lo = { 1, 1 }, .pad_hi = { 1, 1 } };
  return fb_b_conv (b, p[0], p[1], "b01f_01io->b01f", &w, 1, 1);
}

static FbInstr *
b_conv_strided (FbBuilder *b, FbInstr **p)
{
  FbConvWindow w = {
    .stride = { 2, 1 }, .pad_lo = { 1, 0 }, .pad_hi = { 0, 2 }, .rhs_dilate = { 1, 2 },
  };
  return fb_b_conv (b, p[0], p[1], "b01f_01io->b01f", &w, 1, 1);
}

static FbInstr *
b_conv_nchw_dilated (FbBuilder *b, FbInstr **p)
{
  FbConvWindow w = {
    .stride = { 2, 1 }, .pad_lo = { 0, 1 }, .pad_hi = { 1, 0 }, .lhs_dilate = { 2, 1 },
  };
  return fb_b_conv (b, p[0], p[1], "bf01_oi01->bf01", &w, 1, 1);
}

static FbInstr *
b_conv_groups (FbBuilder *b, FbInstr **p)
{
  FbConvWindow w = { .stride = { 1, 2 }, .pad_lo = { 1, 1 }, .pad_hi = { 1, 0 } };
  return fb_b_conv (b, p[0], p[1], "b01f_01io->b01f", &w, 2, 1);
}

static FbInstr *
b_conv_depthwise (FbBuilder *b, FbInstr **p)
{
  FbConvWindow w = { .pad_lo = { 1 }, .pad_hi = { 1 }, .rhs_dilate = { 2 } };
  return fb_b_conv (b, p[0], p[1], "bf0_oi0->bf0", &w, 3, 1);
}

static FbInstr *
b_batch_norm (FbBuilder *b, FbInstr **p)
{
  FbInstr *t = fb_b_batch_norm_training (b, p[0], p[1], p[2], 1e-3, 1);
  return fb_b_gte (b, t, 0);
}

static FbInstr *
b_batch_norm_stats (FbBuilder *b, FbInstr **p)
{
  FbInstr *t = fb_b_batch_norm_training (b, p[0], p[1], p[2], 1e-3, 2);
  FbInstr *parts[2] = { fb_b_gte (b, t, 1), fb_b_gte (b, t, 2) };
  FbInstr *y = fb_b_gte (b, t, 0);
  FbInstr *s = fb_b_reduce_sum (b, fb_b_mul (b, y, y), 2, (int64_t[]) { 0, 1 });
  return fb_b_add (b, fb_b_concatenate (b, 2, parts, 0), fb_b_concatenate (b, 2, (FbInstr *[]) { s, s }, 0));
}

static FbInstr *
b_tuple (FbBuilder *b, FbInstr **p)
{
  FbInstr *t = fb_b_tuple (b, 2, (FbInstr *[]) { fb_b_exp (b, p[0]), p[1] });
  return fb_b_mul (b, fb_b_gte (b, t, 0), fb_b_gte (b, t, 1));
}

static FbInstr *
b_call (FbBuilder *b, FbInstr **p)
{
  FbBuilder *sub = fb_builder_new_nested (b, "callee");
  FbInstr *a = fb_b_param (sub, p[0]->shape, "a");
  FbInstr *c = fb_b_param (sub, p[1]->shape, "c");
  fb_builder_set_root (sub, fb_b_mul (sub, fb_b_unary (sub, FB_OP_SIN, a), c));
  FbComputation *callee = fb_builder_finish (sub, NULL);
  fb_builder_free (sub);
  return fb_b_call (b, callee, 2, p);
}

static const Case cases[] = {
  { "/compiler/autodiff/vjp/negate", 1, { F64 (2, { 3, 4 }, IN_ANY) }, b_neg },
  { "/compiler/autodiff/vjp/exponential", 1, { F64 (2, { 3, 4 }, IN_ANY) }, b_exp },
  { "/compiler/autodiff/vjp/log", 1, { F64 (2, { 3, 4 }, IN_POS) }, b_log },
  { "/compiler/autodiff/vjp/log-plus-one", 1, { F64 (1, { 5 }, IN_POS) }, b_log1p },
  { "/compiler/autodiff/vjp/exponential-minus-one", 1, { F64 (1, { 5 }, IN_ANY) }, b_expm1 },
  { "/compiler/autodiff/vjp/tanh", 1, { F64 (2, { 3, 4 }, IN_ANY) }, b_tanh },
  { "/compiler/autodiff/vjp/logistic", 1, { F64 (2, { 3, 4 }, IN_ANY) }, b_logistic },
  { "/compiler/autodiff/vjp/sqrt", 1, { F64 (1, { 6 }, IN_POS) }, b_sqrt },
  { "/compiler/autodiff/vjp/rsqrt", 1, { F64 (1, { 6 }, IN_POS) }, b_rsqrt },
  { "/compiler/autodiff/vjp/cbrt", 1, { F64 (1, { 6 }, IN_POS) }, b_cbrt },
  { "/compiler/autodiff/vjp/abs", 1, { F64 (1, { 8 }, IN_ANY) }, b_abs },
  { "/compiler/autodiff/vjp/sign", 1, { F64 (1, { 8 }, IN_ANY) }, b_sign },
  { "/compiler/autodiff/vjp/erf", 1, { F64 (1, { 8 }, IN_ANY) }, b_erf },
  { "/compiler/autodiff/vjp/sine", 1, { F64 (1, { 8 }, IN_ANY) }, b_sin },
  { "/compiler/autodiff/vjp/cosine", 1, { F64 (1, { 8 }, IN_ANY) }, b_cos },
  { "/compiler/autodiff/vjp/tan", 1, { F64 (1, { 8 }, IN_ANY) }, b_tan },
  { "/compiler/autodiff/vjp/copy", 1, { F64 (1, { 4 }, IN_ANY) }, b_copy },
  { "/compiler/autodiff/vjp/convert", 1, { F64 (1, { 6 }, IN_ANY) }, b_convert, 1e-3, 1e-3 },
  { "/compiler/autodiff/vjp/add", 2, { F64 (2, { 2, 3 }, IN_ANY), F64 (2, { 2, 3 }, IN_ANY) }, b_add },
  { "/compiler/autodiff/vjp/subtract", 2, { F64 (2, { 2, 3 }, IN_ANY), F64 (2, { 2, 3 }, IN_ANY) }, b_sub },
  { "/compiler/autodiff/vjp/multiply", 2, { F64 (2, { 2, 3 }, IN_ANY), F64 (2, { 2, 3 }, IN_ANY) }, b_mul },
  { "/compiler/autodiff/vjp/divide", 2, { F64 (2, { 2, 3 }, IN_ANY), F64 (2, { 2, 3 }, IN_POS) }, b_div },
  { "/compiler/autodiff/vjp/maximum", 2, { F64 (1, { 8 }, IN_ANY), F64 (1, { 8 }, IN_ANY) }, b_max },
  { "/compiler/autodiff/vjp/minimum", 2, { F64 (1, { 8 }, IN_ANY), F64 (1, { 8 }, IN_ANY) }, b_min },
  { "/compiler/autodiff/vjp/power", 2, { F64 (1, { 6 }, IN_POS), F64 (1, { 6 }, IN_ANY) }, b_pow },
  { "/compiler/autodiff/vjp/atan2", 2, { F64 (1, { 6 }, IN_ANY), F64 (1, { 6 }, IN_ANY) }, b_atan2 },
  { "/compiler/autodiff/vjp/fan-out", 1, { F64 (1, { 5 }, IN_ANY) }, b_square_fanout },
  { "/compiler/autodiff/vjp/select", 2, { F64 (1, { 8 }, IN_ANY), F64 (1, { 8 }, IN_ANY) }, b_select },
  { "/compiler/autodiff/vjp/clamp", 3, { F64 (1, { 8 }, IN_ANY), F64 (0, { 0 }, IN_LO), F64 (1, { 8 }, IN_HI) }, b_clamp },
  { "/compiler/autodiff/vjp/broadcast", 1, { F64 (1, { 3 }, IN_ANY) }, b_broadcast },
  { "/compiler/autodiff/vjp/broadcast-two-dims", 1, { F64 (2, { 4, 3 }, IN_ANY) }, b_broadcast2 },
  { "/compiler/autodiff/vjp/reshape", 1, { F64 (2, { 4, 6 }, IN_ANY) }, b_reshape },
  { "/compiler/autodiff/vjp/transpose", 1, { F64 (3, { 2, 3, 4 }, IN_ANY) }, b_transpose },
  { "/compiler/autodiff/vjp/slice", 1, { F64 (2, { 7, 6 }, IN_ANY) }, b_slice },
  { "/compiler/autodiff/vjp/pad", 2, { F64 (2, { 3, 4 }, IN_ANY), F64 (0, { 0 }, IN_ANY) }, b_pad },
  { "/compiler/autodiff/vjp/concatenate", 2, { F64 (2, { 2, 3 }, IN_ANY), F64 (2, { 2, 2 }, IN_ANY) }, b_concat },
  { "/compiler/autodiff/vjp/reverse", 1, { F64 (2, { 2, 5 }, IN_ANY) }, b_reverse },
  { "/compiler/autodiff/vjp/dynamic-slice", 1, { F64 (2, { 4, 6 }, IN_ANY) }, b_dynamic_slice },
  { "/compiler/autodiff/vjp/dynamic-update-slice", 2, { F64 (2, { 5, 4 }, IN_ANY), F64 (2, { 2, 3 }, IN_ANY) },
    b_dynamic_update_slice },
  { "/compiler/autodiff/vjp/gather", 2, { F64 (2, { 5, 3 }, IN_ANY), { FB_S32, 2, { 4, 1 }, IN_FIXED, gather_idx } },
    b_gather },
  { "/compiler/autodiff/vjp/scatter-add", 3, { F64 (2, { 5, 3 }, IN_ANY), { FB_S32, 2, { 4, 1 }, IN_FIXED, gather_idx },
                                      F64 (2, { 4, 3 }, IN_ANY) }, b_scatter },
  { "/compiler/autodiff/vjp/reduce-add", 1, { F64 (3, { 2, 3, 4 }, IN_ANY) }, b_reduce_add },
  { "/compiler/autodiff/vjp/reduce-max", 1, { F64 (3, { 2, 5, 3 }, IN_ANY) }, b_reduce_max },
  { "/compiler/autodiff/vjp/reduce-min", 1, { F64 (3, { 2, 3, 2 }, IN_ANY) }, b_reduce_min },
  { "/compiler/autodiff/vjp/reduce-window-add", 1, { F64 (2, { 7, 4 }, IN_ANY) }, b_reduce_window_add },
  { "/compiler/autodiff/vjp/reduce-window-max", 1, { F64 (2, { 6, 7 }, IN_ANY) }, b_reduce_window_max },
  { "/compiler/autodiff/vjp/dot", 2, { F64 (2, { 3, 4 }, IN_ANY), F64 (2, { 4, 5 }, IN_ANY) }, b_matmul },
  { "/compiler/autodiff/vjp/dot-batch", 2, { F64 (3, { 4, 2, 3 }, IN_ANY), F64 (3, { 3, 5, 2 }, IN_ANY) }, b_dot_batch },
  { "/compiler/autodiff/vjp/convolution", 2, { F64 (4, { 2, 5, 5, 3 }, IN_ANY), F64 (4, { 3, 3, 3, 4 }, IN_ANY) },
    b_conv_same },
  { "/compiler/autodiff/vjp/convolution-strided-dilated", 2,
    { F64 (4, { 1, 7, 8, 2 }, IN_ANY), F64 (4, { 3, 2, 2, 3 }, IN_ANY) }, b_conv_strided },
  { "/compiler/autodiff/vjp/convolution-nchw-lhs-dilated", 2,
    { F64 (4, { 2, 2, 4, 5 }, IN_ANY), F64 (4, { 3, 2, 2, 3 }, IN_ANY) }, b_conv_nchw_dilated },
  { "/compiler/autodiff/vjp/convolution-groups", 2,
    { F64 (4, { 1, 5, 6, 4 }, IN_ANY), F64 (4, { 3, 3, 2, 6 }, IN_ANY) }, b_conv_groups },
  { "/compiler/autodiff/vjp/convolution-depthwise", 2,
    { F64 (3, { 2, 3, 7 }, IN_ANY), F64 (3, { 3, 1, 3 }, IN_ANY) }, b_conv_depthwise },
  { "/compiler/autodiff/vjp/batch-norm-training", 3,
    { F64 (3, { 4, 3, 2 }, IN_ANY), F64 (1, { 3 }, IN_POS), F64 (1, { 3 }, IN_ANY) }, b_batch_norm },
  { "/compiler/autodiff/vjp/batch-norm-statistics", 3,
    { F64 (3, { 3, 2, 2 }, IN_ANY), F64 (1, { 2 }, IN_POS), F64 (1, { 2 }, IN_ANY) }, b_batch_norm_stats },
  { "/compiler/autodiff/vjp/tuple", 2, { F64 (1, { 4 }, IN_ANY), F64 (1, { 4 }, IN_ANY) }, b_tuple },
  { "/compiler/autodiff/vjp/call", 2, { F64 (1, { 4 }, IN_ANY), F64 (1, { 4 }, IN_ANY) }, b_call },
};

/* --------------------------------------------------------------- errors */

static void
test_errors (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("e");
  FbBuilder *b = fb_builder_new (m, "f");
  FbInstr *x = fb_b_param (b, fb_b_shape (b, FB_F32, 2, (int64_t[]) { 2, 3 }), "x");
  FbInstr *idx = fb_b_param (b, fb_b_scalar_shape (b, FB_S32), "i");
  /* A custom call has no derivative rule. */
  FbInstr *cc = fb_b_custom_call (b, "MyOp", 1, &x, x->shape);
  fb_builder_set_root (b, fb_b_tuple (b, 3, (FbInstr *[]) { fb_b_sum_all (b, cc), x, idx }));
  FbComputation *f = fb_builder_finish (b, &error);
  g_assert_no_error (error);
  fb_builder_free (b);

  int wrt0 = 0, wrt1 = 1, wrt9 = 9;
  g_assert_null (fb_autodiff_grad (m, f, 0, 1, &wrt0, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "custom-call"));
  g_clear_error (&error);

  /* The loss must be a float scalar. */
  g_assert_null (fb_autodiff_grad (m, f, 1, 1, &wrt0, &error));
  g_assert_nonnull (strstr (error->message, "scalar"));
  g_clear_error (&error);
  g_assert_null (fb_autodiff_grad (m, f, -1, 1, &wrt0, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  /* Integer and missing parameters are refused. */
  g_assert_null (fb_autodiff_grad (m, f, 0, 1, &wrt1, &error));
  g_assert_nonnull (strstr (error->message, "floating-point"));
  g_clear_error (&error);
  g_assert_null (fb_autodiff_grad (m, f, 0, 1, &wrt9, &error));
  g_assert_nonnull (strstr (error->message, "no parameter 9"));
  g_clear_error (&error);
  /* A failed attempt leaves no half-built computation behind. */
  g_assert_null (fb_module_find_computation (m, "f.grad"));

  /* A hand-made instruction with a bad attribute is reported, not trusted. */
  b = fb_builder_new (m, "g");
  FbInstr *p = fb_b_param (b, fb_b_shape (b, FB_F32, 2, (int64_t[]) { 2, 2 }), "p");
  FbInstr *t = fb_instr_new (fb_builder_get_computation (b), NULL, FB_OP_TRANSPOSE, p->shape, 1, &p, NULL);
  fb_instr_set_dims (t, FB_A_DIMENSIONS, 2, (int64_t[]) { 0, 0 });
  fb_builder_set_root (b, fb_b_sum_all (b, t));
  FbComputation *g = fb_builder_finish (b, &error);
  g_assert_no_error (error);
  fb_builder_free (b);
  g_assert_null (fb_autodiff_grad (m, g, -1, 1, &wrt0, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "transpose"));
  fb_module_free (m);
}

/* A parameter the loss does not depend on gets zeros; one reaching it only
 * through a non-differentiable op (floor) too. */
static void
test_zero_gradients (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("z");
  FbBuilder *b = fb_builder_new (m, "f");
  FbInstr *x = fb_b_param (b, fb_b_shape (b, FB_F64, 1, (int64_t[]) { 3 }), "x");
  FbInstr *y = fb_b_param (b, fb_b_shape (b, FB_F64, 1, (int64_t[]) { 3 }), "y");
  FbInstr *z = fb_b_param (b, fb_b_shape (b, FB_F64, 1, (int64_t[]) { 3 }), "z");
  (void) z;
  FbInstr *loss = fb_b_sum_all (b, fb_b_add (b, fb_b_mul (b, x, x), fb_b_unary (b, FB_OP_FLOOR, y)));
  fb_builder_set_root (b, loss);
  fb_builder_set_entry (b);
  FbComputation *f = fb_builder_finish (b, &error);
  g_assert_no_error (error);
  fb_builder_free (b);
  int wrt[3] = { 0, 1, 2 };
  FbComputation *g = fb_autodiff_grad (m, f, -1, 3, wrt, &error);
  g_assert_no_error (error);
  g_assert_true (m->entry == f);
  FbArena *arena = fb_arena_new ();
  FbLiteral *args[3];
  for (int i = 0; i < 3; i++)
    {
      args[i] = fb_literal_new (arena, fb_shape_new_array (arena, FB_F64, 1, (int64_t[]) { 3 }));
      for (int k = 0; k < 3; k++)
        fb_literal_set_f64 (args[i], k, 1.5 + k);
    }
  FbLiteral *out = fb_interp_run (m, g, arena, 3, args, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (fb_literal_get_f64 (out->elems[0], 0), ==, 1.5 * 1.5 + 2.5 * 2.5 + 3.5 * 3.5 + 1 + 2 + 3);
  for (int k = 0; k < 3; k++)
    {
      g_assert_cmpfloat (fb_literal_get_f64 (out->elems[1], k), ==, 2 * (1.5 + k));
      g_assert_cmpfloat (fb_literal_get_f64 (out->elems[2], k), ==, 0);
      g_assert_cmpfloat (fb_literal_get_f64 (out->elems[3], k), ==, 0);
    }
  fb_arena_free (arena);
  fb_module_free (m);
}

/* fb_autodiff_emit inlines forward and backward into a training step. */
static void
test_emit_inline (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("step");
  FbBuilder *fb = fb_builder_new (m, "model");
  FbInstr *w = fb_b_param (fb, fb_b_shape (fb, FB_F32, 2, (int64_t[]) { 3, 2 }), "w");
  FbInstr *x = fb_b_param (fb, fb_b_shape (fb, FB_F32, 2, (int64_t[]) { 4, 3 }), "x");
  FbInstr *logits = fb_b_matmul (fb, x, w);
  FbInstr *loss = fb_b_sum_all (fb, fb_b_mul (fb, logits, logits));
  fb_builder_set_root (fb, fb_b_tuple (fb, 2, (FbInstr *[]) { logits, loss }));
  FbComputation *model = fb_builder_finish (fb, &error);
  g_assert_no_error (error);
  fb_builder_free (fb);

  FbBuilder *b = fb_builder_new (m, "train_step");
  FbInstr *args[2] = { fb_b_param (b, w->shape, "w"), fb_b_param (b, x->shape, "x") };
  FbInstr *l, *gw, *outs;
  int wrt = 0;
  g_assert_true (fb_autodiff_emit (b, model, args, 1, 1, &wrt, &l, &gw, &outs, &error));
  g_assert_no_error (error);
  FbInstr *nw = fb_b_sub (b, args[0], fb_b_binary_scalar (b, FB_OP_MULTIPLY, gw, 0.125));
  fb_builder_set_root (b, fb_b_tuple (b, 2, (FbInstr *[]) { l, nw }));
  fb_builder_set_entry (b);
  FbComputation *step = fb_builder_finish (b, &error);
  g_assert_no_error (error);
  fb_builder_free (b);
  fb_verify (m, &error);
  g_assert_no_error (error);
  g_assert_true (m->entry == step);
  g_assert_true (fb_shape_is_tuple (outs->shape));

  /* w = 1, x = 1: logits = 3 everywhere, loss = 8 * 9 = 72, dL/dw = sum 2 * logits * x = 24. */
  FbArena *arena = fb_arena_new ();
  FbLiteral *in[2] = { fb_literal_new (arena, w->shape), fb_literal_new (arena, x->shape) };
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < fb_shape_elements (in[i]->shape); k++)
      fb_literal_set_f64 (in[i], k, 1);
  FbLiteral *out = fb_interp_run (m, step, arena, 2, in, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (fb_literal_get_f64 (out->elems[0], 0), ==, 72);
  for (int k = 0; k < 6; k++)
    g_assert_cmpfloat (fb_literal_get_f64 (out->elems[1], k), ==, 1 - 24 * 0.125);
  fb_arena_free (arena);
  fb_module_free (m);
}


/* Real models: a loss wrapped around the module's entry (a `call`, inlined
 * by autodiff) differentiates with respect to every float parameter and the
 * result verifies; modules with opcodes that have no rule say which. */
static void
test_corpus (void)
{
  const char *dir = g_getenv ("FUSEBOX_CORPUS");
  if (dir == NULL)
    {
      g_test_skip ("FUSEBOX_CORPUS is not set");
      return;
    }
  static const struct { const char *file; const char *error; } models[] = {
    { "mobilenet_v2.hlo", NULL },
    { "mha_block_1x12x128x64_bf16.hlo", NULL },
    { "layer_norm_1x4096x768_bf16.hlo", NULL },
    { "depthwise_conv_3x3_1x256x56x56_bf16.hlo", NULL },
    { "gemma3_1b_flax_call.hlo", NULL },
    { "kernel_reuse.hlo", "custom-call" },
    { "multiple_gemm_fusions.hlo", "fusion" },
  };
  for (guint k = 0; k < G_N_ELEMENTS (models); k++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *path = g_build_filename (dir, models[k].file, NULL);
      FbModule *m = fb_hlo_parse_file (path, 0, &error);
      g_assert_no_error (error);
      FbComputation *f = m->entry;
      FbBuilder *b = fb_builder_new (m, "loss");
      g_autofree FbInstr **args = g_new0 (FbInstr *, f->n_params + 1);
      g_autofree int *wrt = g_new0 (int, f->n_params + 1);
      int n_wrt = 0;
      for (int i = 0; i < f->n_params; i++)
        {
          args[i] = fb_b_param (b, f->params[i]->shape, NULL);
          if (fb_shape_is_array (f->params[i]->shape) && fb_elem_type_is_float (f->params[i]->shape->type))
            wrt[n_wrt++] = i;
        }
      FbInstr *out = fb_b_call (b, f, f->n_params, args);
      if (out && fb_shape_is_tuple (out->shape))
        out = fb_b_gte (b, out, 0);
      fb_builder_set_root (b, fb_b_sum_all (b, fb_b_convert (b, out, FB_F32)));
      fb_builder_set_entry (b);
      FbComputation *loss = fb_builder_finish (b, &error);
      g_assert_no_error (error);
      fb_builder_free (b);
      g_assert_cmpint (n_wrt, >, 0);

      FbComputation *grad = fb_autodiff_grad (m, loss, -1, n_wrt, wrt, &error);
      if (models[k].error)
        {
          g_assert_null (grad);
          g_assert_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED);
          g_assert_nonnull (strstr (error->message, models[k].error));
        }
      else
        {
          g_assert_no_error (error);
          g_assert_cmpint (grad->root->shape->n_elems, ==, n_wrt + 1);
          for (int i = 0; i < n_wrt; i++)
            g_assert_true (fb_shape_compatible (grad->root->shape->elems[i + 1], f->params[wrt[i]]->shape));
          fb_verify (m, &error);
          g_assert_no_error (error);
        }
      fb_module_free (m);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    g_test_add_data_func (cases[i].path, &cases[i], run_case);
  g_test_add_func ("/compiler/autodiff/errors", test_errors);
  g_test_add_func ("/compiler/autodiff/zero-gradients", test_zero_gradients);
  g_test_add_func ("/compiler/autodiff/emit-inline", test_emit_inline);
  g_test_add_func ("/compiler/autodiff/corpus", test_corpus);
  return g_test_run ();
}
