/* SPDX-License-Identifier: MIT
 *
 * Vector-Jacobian product rules, one per differentiable opcode. A rule gets
 * an instruction y = op(x...) of the copied forward pass and the cotangent g
 * of y, and adds g * dy/dx to every active operand x, emitting the backward
 * instructions with the builder. Window and contraction rules use only
 * forward-style ops: the transpose of a strided, padded, dilated window is a
 * pad (interior padding for the stride) followed by the same kind of window
 * op with the roles of stride and dilation exchanged.
 */
#include <math.h>
#include <string.h>

#include "fb-autodiff-private.h"

#define B (ctx->b)

static FbInstr *
full_like (FbAdCtx *ctx, FbInstr *like, double v)
{
  return fb_b_full (B, like->shape, v);
}

static FbInstr *
zero_scalar (FbAdCtx *ctx, FbInstr *like)
{
  return fb_b_const (B, like->shape->type, 0);
}

/* g summed down to @x's shape when x is a scalar operand of an op on arrays
 * (clamp and select accept scalars). */
static void
accum_maybe_scalar (FbAdCtx *ctx, FbInstr *x, FbInstr *g)
{
  if (!_fb_ad_is_active (ctx, x))
    return;
  if (x->shape->rank == 0 && g->shape->rank > 0)
    g = fb_b_sum_all (B, g);
  _fb_ad_accum (ctx, x, g);
}

static FbInstr *
mask_where (FbAdCtx *ctx, FbInstr *pred, FbInstr *g)
{
  return fb_b_select (B, pred, g, full_like (ctx, g, 0));
}

static FbInstr *
as_shape_of (FbAdCtx *ctx, FbInstr *s, FbInstr *like)
{
  if (s->shape->rank == like->shape->rank)
    return s;
  return fb_b_broadcast (B, s, like->shape->rank, like->shape->dims, NULL);
}

/* ---------------------------------------------------------- elementwise */

static void
rule_unary (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  FbInstr *x = y->operands[0];
  FbInstr *d = NULL;   /* dy/dx, or the cotangent itself when set below */
  FbInstr *gx = NULL;
  switch (y->opcode)
    {
    case FB_OP_NEGATE: gx = fb_b_neg (B, g); break;
    case FB_OP_COPY: case FB_OP_REDUCE_PRECISION: gx = g; break;
    case FB_OP_EXP: d = y; break;
    case FB_OP_LOG: gx = fb_b_div (B, g, x); break;
    case FB_OP_LOG1P: gx = fb_b_div (B, g, fb_b_add (B, x, full_like (ctx, x, 1))); break;
    case FB_OP_EXPM1: d = fb_b_add (B, y, full_like (ctx, y, 1)); break;
    case FB_OP_TANH: d = fb_b_sub (B, full_like (ctx, y, 1), fb_b_mul (B, y, y)); break;
    case FB_OP_LOGISTIC: d = fb_b_mul (B, y, fb_b_sub (B, full_like (ctx, y, 1), y)); break;
    case FB_OP_SQRT: gx = fb_b_div (B, g, fb_b_mul (B, full_like (ctx, y, 2), y)); break;
    case FB_OP_RSQRT: d = fb_b_div (B, fb_b_mul (B, full_like (ctx, y, -0.5), y), x); break;
    case FB_OP_CBRT: gx = fb_b_div (B, fb_b_mul (B, g, y), fb_b_mul (B, full_like (ctx, x, 3), x)); break;
    case FB_OP_ABS: d = fb_b_unary (B, FB_OP_SIGN, x); break;
    case FB_OP_ERF:
      d = fb_b_mul (B, full_like (ctx, x, 2.0 / sqrt (G_PI)),
                    fb_b_exp (B, fb_b_neg (B, fb_b_mul (B, x, x))));
      break;
    case FB_OP_SIN: d = fb_b_unary (B, FB_OP_COS, x); break;
    case FB_OP_COS: d = fb_b_neg (B, fb_b_unary (B, FB_OP_SIN, x)); break;
    case FB_OP_TAN: d = fb_b_add (B, full_like (ctx, y, 1), fb_b_mul (B, y, y)); break;
    case FB_OP_SINH: d = fb_b_unary (B, FB_OP_COSH, x); break;
    case FB_OP_COSH: d = fb_b_unary (B, FB_OP_SINH, x); break;
    case FB_OP_CONVERT: gx = fb_b_convert (B, g, x->shape->type); break;
    default: g_assert_not_reached ();
    }
  if (gx == NULL)
    gx = fb_b_mul (B, g, d);
  _fb_ad_accum (ctx, x, gx);
}

static void
rule_binary (FbAdCtx *ctx, FbInstr *z, FbInstr *g)
{
  FbInstr *x = z->operands[0], *y = z->operands[1];
  gboolean ax = _fb_ad_is_active (ctx, x), ay = _fb_ad_is_active (ctx, y);
  switch (z->opcode)
    {
    case FB_OP_ADD:
      _fb_ad_accum (ctx, x, g);
      _fb_ad_accum (ctx, y, g);
      break;
    case FB_OP_SUBTRACT:
      _fb_ad_accum (ctx, x, g);
      if (ay)
        _fb_ad_accum (ctx, y, fb_b_neg (B, g));
      break;
    case FB_OP_MULTIPLY:
      if (ax)
        _fb_ad_accum (ctx, x, fb_b_mul (B, g, y));
      if (ay)
        _fb_ad_accum (ctx, y, fb_b_mul (B, g, x));
      break;
    case FB_OP_DIVIDE:
      if (ax)
        _fb_ad_accum (ctx, x, fb_b_div (B, g, y));
      if (ay)
        _fb_ad_accum (ctx, y, fb_b_neg (B, fb_b_div (B, fb_b_mul (B, g, z), y)));
      break;
    case FB_OP_MAXIMUM:
    case FB_OP_MINIMUM:
      {
        /* Ties split the cotangent in halves, as JAX does. */
        FbCompareDir wins = z->opcode == FB_OP_MAXIMUM ? FB_CMP_GT : FB_CMP_LT;
        FbInstr *half = fb_b_select (B, fb_b_compare (B, FB_CMP_EQ, x, y),
                                     full_like (ctx, g, 0.5), full_like (ctx, g, 0));
        FbInstr *share = fb_b_select (B, fb_b_compare (B, wins, x, y), full_like (ctx, g, 1), half);
        FbInstr *gx = fb_b_mul (B, g, share);
        _fb_ad_accum (ctx, x, gx);
        if (ay)
          _fb_ad_accum (ctx, y, fb_b_sub (B, g, gx));
        break;
      }
    case FB_OP_POWER:
      {
        /* d/dx = y x^(y-1) (0 where y == 0); d/dy = x^y log x (0 where x == 0). */
        FbInstr *zero = full_like (ctx, x, 0);
        if (ax)
          {
            FbInstr *d = fb_b_mul (B, y, fb_b_pow (B, x, fb_b_sub (B, y, full_like (ctx, y, 1))));
            d = fb_b_select (B, fb_b_compare (B, FB_CMP_EQ, y, zero), zero, d);
            _fb_ad_accum (ctx, x, fb_b_mul (B, g, d));
          }
        if (ay)
          {
            FbInstr *x0 = fb_b_compare (B, FB_CMP_EQ, x, zero);
            FbInstr *safe = fb_b_select (B, x0, full_like (ctx, x, 1), x);
            FbInstr *d = fb_b_mul (B, z, fb_b_log (B, safe));
            _fb_ad_accum (ctx, y, fb_b_mul (B, g, d));
          }
        break;
      }
    case FB_OP_ATAN2:
      {
        /* z = atan2(x, y): dz/dx = y / (x^2 + y^2), dz/dy = -x / (x^2 + y^2). */
        FbInstr *den = fb_b_add (B, fb_b_mul (B, x, x), fb_b_mul (B, y, y));
        FbInstr *gd = fb_b_div (B, g, den);
        if (ax)
          _fb_ad_accum (ctx, x, fb_b_mul (B, gd, y));
        if (ay)
          _fb_ad_accum (ctx, y, fb_b_neg (B, fb_b_mul (B, gd, x)));
        break;
      }
    default:
      g_assert_not_reached ();
    }
}

static void
rule_select (FbAdCtx *ctx, FbInstr *s, FbInstr *g)
{
  FbInstr *p = s->operands[0];
  FbInstr *zero = full_like (ctx, g, 0);
  if (_fb_ad_is_active (ctx, s->operands[1]))
    _fb_ad_accum (ctx, s->operands[1], fb_b_select (B, p, g, zero));
  if (_fb_ad_is_active (ctx, s->operands[2]))
    _fb_ad_accum (ctx, s->operands[2], fb_b_select (B, p, zero, g));
}

static void
rule_clamp (FbAdCtx *ctx, FbInstr *c, FbInstr *g)
{
  FbInstr *lo = c->operands[0], *x = c->operands[1], *hi = c->operands[2];
  FbInstr *lob = as_shape_of (ctx, lo, x), *hib = as_shape_of (ctx, hi, x);
  FbInstr *below = fb_b_compare (B, FB_CMP_LT, x, lob);
  FbInstr *above = fb_b_compare (B, FB_CMP_GT, x, hib);
  if (_fb_ad_is_active (ctx, x))
    _fb_ad_accum (ctx, x, fb_b_select (B, below, full_like (ctx, g, 0),
                                       fb_b_select (B, above, full_like (ctx, g, 0), g)));
  if (_fb_ad_is_active (ctx, lo))
    accum_maybe_scalar (ctx, lo, mask_where (ctx, below, g));
  if (_fb_ad_is_active (ctx, hi))
    accum_maybe_scalar (ctx, hi, mask_where (ctx, above, g));
}

/* ------------------------------------------------------------- movement */

static void
rule_broadcast (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  FbInstr *x = y->operands[0];
  const FbDims *map = fb_instr_dims (y, FB_A_DIMENSIONS);
  int r = y->shape->rank, xr = x->shape->rank;
  int64_t sum_dims[FB_BUILDER_MAX_RANK * 2];
  int n_sum = 0;
  gboolean kept[64] = { FALSE };
  if (r > 64 || (map ? map->n : 0) != xr)
    {
      fb_builder_set_error (B, "autodiff: broadcast %s has a bad dimension map", y->name);
      return;
    }
  for (int i = 0; i < xr; i++)
    {
      if (map->v[i] < 0 || map->v[i] >= r)
        {
          fb_builder_set_error (B, "autodiff: broadcast %s maps outside its result", y->name);
          return;
        }
      kept[map->v[i]] = TRUE;
    }
  for (int d = 0; d < r; d++)
    if (!kept[d])
      sum_dims[n_sum++] = d;
  FbInstr *s = n_sum > 0 ? fb_b_reduce_sum (B, g, n_sum, sum_dims) : g;
  /* The kept dimensions come out in increasing order; put them in x's. */
  int64_t perm[FB_BUILDER_MAX_RANK];
  gboolean identity = TRUE;
  for (int i = 0; i < xr && i < FB_BUILDER_MAX_RANK; i++)
    {
      int pos = 0;
      for (int j = 0; j < xr; j++)
        if (map->v[j] < map->v[i])
          pos++;
      perm[i] = pos;
      identity &= pos == i;
    }
  if (!identity)
    s = fb_b_transpose (B, s, perm);
  if (s && !fb_shape_compatible (s->shape, x->shape))
    s = fb_b_reshape (B, s, x->shape->rank, x->shape->dims);
  _fb_ad_accum (ctx, x, s);
}

static void
rule_reshape (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  FbInstr *x = y->operands[0];
  _fb_ad_accum (ctx, x, fb_b_reshape (B, g, x->shape->rank, x->shape->dims));
}

static void
rule_transpose (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  const FbDims *perm = fb_instr_dims (y, FB_A_DIMENSIONS);
  int64_t inv[64];
  if (perm == NULL || perm->n > 64)
    {
      fb_builder_set_error (B, "autodiff: transpose %s has no permutation", y->name);
      return;
    }
  for (int i = 0; i < perm->n; i++)
    {
      if (perm->v[i] < 0 || perm->v[i] >= perm->n)
        {
          fb_builder_set_error (B, "autodiff: transpose %s has a bad permutation", y->name);
          return;
        }
      inv[perm->v[i]] = i;
    }
  _fb_ad_accum (ctx, y->operands[0], fb_b_transpose (B, g, inv));
}

static void
rule_slice (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  FbInstr *x = y->operands[0];
  const FbAttr *a = fb_instr_get_attr (y, FB_A_SLICE);
  int r = x->shape->rank;
  if (a == NULL || a->v.slice.n != r)
    {
      fb_builder_set_error (B, "autodiff: slice %s has no slice attribute", y->name);
      return;
    }
  g_autofree FbPadDim *pads = g_new0 (FbPadDim, MAX (r, 1));
  for (int d = 0; d < r; d++)
    {
      const FbSliceDim *s = &a->v.slice.d[d];
      int64_t n = y->shape->dims[d];
      pads[d].lo = s->start;
      pads[d].interior = n > 0 ? s->stride - 1 : 0;
      pads[d].hi = x->shape->dims[d] - s->start - (n > 0 ? (n - 1) * s->stride + 1 : 0);
    }
  _fb_ad_accum (ctx, x, fb_b_pad (B, g, zero_scalar (ctx, g), pads));
}

static void
rule_pad (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  FbInstr *x = y->operands[0], *v = y->operands[1];
  const FbAttr *a = fb_instr_get_attr (y, FB_A_PADDING);
  int r = x->shape->rank;
  if (a == NULL || a->v.pad.n != r)
    {
      fb_builder_set_error (B, "autodiff: pad %s has no padding attribute", y->name);
      return;
    }
  /* Undo the edges with the opposite padding, then step over the interior. */
  g_autofree FbPadDim *unpad = g_new0 (FbPadDim, MAX (r, 1));
  int64_t start[64] = { 0 }, limit[64], stride[64];
  for (int d = 0; d < r && d < 64; d++)
    {
      unpad[d].lo = -a->v.pad.d[d].lo;
      unpad[d].hi = -a->v.pad.d[d].hi;
      stride[d] = a->v.pad.d[d].interior + 1;
    }
  FbInstr *u = fb_b_pad (B, g, zero_scalar (ctx, g), unpad);
  if (u == NULL)
    return;
  for (int d = 0; d < r && d < 64; d++)
    limit[d] = u->shape->dims[d];
  FbInstr *gx = fb_b_slice (B, u, start, limit, stride);
  _fb_ad_accum (ctx, x, gx);
  if (_fb_ad_is_active (ctx, v))
    _fb_ad_accum (ctx, v, fb_b_sub (B, fb_b_sum_all (B, g), fb_b_sum_all (B, gx)));
}

static void
rule_concatenate (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  const FbDims *dim = fb_instr_dims (y, FB_A_DIMENSIONS);
  int r = y->shape->rank;
  if (dim == NULL || dim->n != 1 || r > 64)
    {
      fb_builder_set_error (B, "autodiff: concatenate %s has no dimension", y->name);
      return;
    }
  int64_t start[64] = { 0 }, limit[64];
  for (int d = 0; d < r; d++)
    limit[d] = y->shape->dims[d];
  int64_t at = 0, k = dim->v[0];
  for (int i = 0; i < y->n_operands; i++)
    {
      FbInstr *x = y->operands[i];
      int64_t n = x->shape->dims[k];
      if (_fb_ad_is_active (ctx, x))
        {
          start[k] = at;
          limit[k] = at + n;
          _fb_ad_accum (ctx, x, fb_b_slice (B, g, start, limit, NULL));
        }
      at += n;
    }
}

static void
rule_reverse (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  const FbDims *dims = fb_instr_dims (y, FB_A_DIMENSIONS);
  _fb_ad_accum (ctx, y->operands[0], fb_b_reverse (B, g, dims ? dims->n : 0, dims ? dims->v : NULL));
}

static void
rule_dynamic_slice (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  FbInstr *x = y->operands[0];
  FbInstr *zeros = full_like (ctx, x, 0);
  _fb_ad_accum (ctx, x, fb_b_dynamic_update_slice (B, zeros, g, y->operands + 1));
}

static void
rule_dynamic_update_slice (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  FbInstr *x = y->operands[0], *u = y->operands[1];
  if (_fb_ad_is_active (ctx, x))
    _fb_ad_accum (ctx, x, fb_b_dynamic_update_slice (B, g, full_like (ctx, u, 0), y->operands + 2));
  if (_fb_ad_is_active (ctx, u))
    _fb_ad_accum (ctx, u, fb_b_dynamic_slice (B, g, y->operands + 2, u->shape->dims));
}

/* ----------------------------------------------------- gather, scatter */

static void
copy_dims (const FbInstr *i, FbAttrKey key, int *n, int64_t *out)
{
  const FbDims *d = fb_instr_dims (i, key);
  *n = d ? MIN (d->n, FB_BUILDER_MAX_RANK) : 0;
  for (int k = 0; k < *n; k++)
    out[k] = d->v[k];
}

/* The gradient of a gather is a scatter-add of the cotangent onto zeros.
 * Start indices are clamped by gather but skipped when out of bounds by
 * scatter, so the two agree only for in-bounds indices, as in JAX. */
static void
rule_gather (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  FbInstr *x = y->operands[0], *idx = y->operands[1];
  FbScatterDims d = { 0 };
  copy_dims (y, FB_A_OFFSET_DIMS, &d.n_update_window_dims, d.update_window_dims);
  copy_dims (y, FB_A_COLLAPSED_SLICE_DIMS, &d.n_inserted_window_dims, d.inserted_window_dims);
  copy_dims (y, FB_A_START_INDEX_MAP, &d.n_scatter_dims_to_operand_dims, d.scatter_dims_to_operand_dims);
  copy_dims (y, FB_A_OPERAND_BATCHING_DIMS, &d.n_input_batching_dims, d.input_batching_dims);
  copy_dims (y, FB_A_START_INDICES_BATCHING_DIMS, &d.n_scatter_indices_batching_dims,
             d.scatter_indices_batching_dims);
  d.index_vector_dim = fb_instr_int (y, FB_A_INDEX_VECTOR_DIM, idx->shape->rank);
  d.indices_are_sorted = fb_instr_int (y, FB_A_INDICES_ARE_SORTED, 0) != 0;
  _fb_ad_accum (ctx, x, fb_b_scatter (B, full_like (ctx, x, 0), idx, g, FB_OP_ADD, &d));
}

/* scatter with add: the operand's cotangent passes through, the updates'
 * is a gather of it. With replacement (to_apply returns its second
 * parameter), the operand loses the cotangent where updates landed; that
 * is exact for unique indices. */
static void
rule_scatter (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  if (y->n_operands != 3)
    {
      fb_builder_set_error (B, "autodiff: scatter %s with several operands is not supported", y->name);
      return;
    }
  FbInstr *x = y->operands[0], *idx = y->operands[1], *u = y->operands[2];
  FbComputation *c = fb_instr_comp (y, FB_A_TO_APPLY);
  gboolean add = c && c->root && c->root->opcode == FB_OP_ADD && c->n_params == 2;
  gboolean replace = c && c->n_params == 2 && c->root == c->params[1];
  if (!add && !replace)
    {
      fb_builder_set_error (B, "autodiff: scatter %s combines with %s; only add and replacement are differentiable",
                            y->name, c && c->root ? fb_opcode_name (c->root->opcode) : "?");
      return;
    }
  FbScatterDims sd = { 0 };
  copy_dims (y, FB_A_UPDATE_WINDOW_DIMS, &sd.n_update_window_dims, sd.update_window_dims);
  copy_dims (y, FB_A_INSERTED_WINDOW_DIMS, &sd.n_inserted_window_dims, sd.inserted_window_dims);
  copy_dims (y, FB_A_SCATTER_DIMS_TO_OPERAND_DIMS, &sd.n_scatter_dims_to_operand_dims,
             sd.scatter_dims_to_operand_dims);
  copy_dims (y, FB_A_INPUT_BATCHING_DIMS, &sd.n_input_batching_dims, sd.input_batching_dims);
  copy_dims (y, FB_A_SCATTER_INDICES_BATCHING_DIMS, &sd.n_scatter_indices_batching_dims,
             sd.scatter_indices_batching_dims);
  sd.index_vector_dim = fb_instr_int (y, FB_A_INDEX_VECTOR_DIM, idx->shape->rank);

  if (_fb_ad_is_active (ctx, x))
    {
      if (add)
        _fb_ad_accum (ctx, x, g);
      else
        _fb_ad_accum (ctx, x, fb_b_scatter (B, g, idx, full_like (ctx, u, 0), FB_COMBINE_REPLACE, &sd));
    }
  if (!_fb_ad_is_active (ctx, u))
    return;
  FbGatherDims gd = { 0 };
  gd.n_offset_dims = sd.n_update_window_dims;
  memcpy (gd.offset_dims, sd.update_window_dims, sizeof gd.offset_dims);
  gd.n_collapsed_slice_dims = sd.n_inserted_window_dims;
  memcpy (gd.collapsed_slice_dims, sd.inserted_window_dims, sizeof gd.collapsed_slice_dims);
  gd.n_start_index_map = sd.n_scatter_dims_to_operand_dims;
  memcpy (gd.start_index_map, sd.scatter_dims_to_operand_dims, sizeof gd.start_index_map);
  gd.n_operand_batching_dims = sd.n_input_batching_dims;
  memcpy (gd.operand_batching_dims, sd.input_batching_dims, sizeof gd.operand_batching_dims);
  gd.n_start_indices_batching_dims = sd.n_scatter_indices_batching_dims;
  memcpy (gd.start_indices_batching_dims, sd.scatter_indices_batching_dims, sizeof gd.start_indices_batching_dims);
  gd.index_vector_dim = sd.index_vector_dim;
  /* Slice sizes: 1 for inserted and batching dims, else the update window's
   * sizes in order. */
  int w = 0;
  for (int d = 0; d < x->shape->rank && d < FB_BUILDER_MAX_RANK; d++)
    {
      gboolean one = FALSE;
      for (int k = 0; k < sd.n_inserted_window_dims; k++)
        one |= sd.inserted_window_dims[k] == d;
      for (int k = 0; k < sd.n_input_batching_dims; k++)
        one |= sd.input_batching_dims[k] == d;
      if (one)
        gd.slice_sizes[d] = 1;
      else if (w < sd.n_update_window_dims)
        gd.slice_sizes[d] = u->shape->dims[sd.update_window_dims[w++]];
    }
  _fb_ad_accum (ctx, u, fb_b_gather (B, g, idx, &gd));
}

/* ------------------------------------------------------------ reductions */

static FbOpcode
combiner_of (FbInstr *y)
{
  FbComputation *c = fb_instr_comp (y, FB_A_TO_APPLY);
  if (c == NULL || c->root == NULL || c->n_params != 2 || c->root->n_operands != 2)
    return FB_N_OPCODES;
  FbInstr *r = c->root;
  gboolean plain = (r->operands[0] == c->params[0] && r->operands[1] == c->params[1])
                   || (r->operands[0] == c->params[1] && r->operands[1] == c->params[0]);
  return plain ? r->opcode : FB_N_OPCODES;
}

/* Broadcasts @s (x's shape without @dims) back to x's shape. */
static FbInstr *
unreduce (FbAdCtx *ctx, FbInstr *s, FbInstr *x, const FbDims *dims)
{
  int64_t map[64];
  int n = 0;
  for (int d = 0; d < x->shape->rank && d < 64; d++)
    {
      gboolean reduced = FALSE;
      for (int k = 0; k < dims->n; k++)
        reduced |= dims->v[k] == d;
      if (!reduced)
        map[n++] = d;
    }
  return fb_b_broadcast (B, s, x->shape->rank, x->shape->dims, map);
}

static void
rule_reduce (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  if (y->n_operands != 2)
    {
      fb_builder_set_error (B, "autodiff: reduce %s over several operands is not supported", y->name);
      return;
    }
  FbInstr *x = y->operands[0], *init = y->operands[1];
  const FbDims *dims = fb_instr_dims (y, FB_A_DIMENSIONS);
  FbOpcode op = combiner_of (y);
  if (dims == NULL)
    {
      fb_builder_set_error (B, "autodiff: reduce %s has no dimensions", y->name);
      return;
    }
  switch (op)
    {
    case FB_OP_ADD:
      if (_fb_ad_is_active (ctx, x))
        _fb_ad_accum (ctx, x, unreduce (ctx, g, x, dims));
      if (_fb_ad_is_active (ctx, init))
        _fb_ad_accum (ctx, init, fb_b_sum_all (B, g));
      break;
    case FB_OP_MAXIMUM:
    case FB_OP_MINIMUM:
      {
        /* Every position equal to the result shares the cotangent equally. */
        FbInstr *hit = fb_b_compare (B, FB_CMP_EQ, x, unreduce (ctx, y, x, dims));
        FbInstr *mask = fb_b_select (B, hit, full_like (ctx, x, 1), full_like (ctx, x, 0));
        FbInstr *count = fb_b_reduce_sum (B, mask, dims->n, dims->v);
        FbInstr *share = unreduce (ctx, fb_b_div (B, g, count), x, dims);
        _fb_ad_accum (ctx, x, fb_b_mul (B, mask, share));
        break;
      }
    default:
      fb_builder_set_error (B, "autodiff: reduce %s combines with %s; only add, maximum and minimum are differentiable",
                            y->name, op == FB_N_OPCODES ? "a computation" : fb_opcode_name (op));
    }
}

static gboolean
get_window (FbAdCtx *ctx, FbInstr *y, int rank, const FbWindowDim **w)
{
  const FbAttr *a = fb_instr_get_attr (y, FB_A_WINDOW);
  if (a == NULL || a->v.window.n != rank || rank > FB_BUILDER_MAX_RANK)
    {
      fb_builder_set_error (B, "autodiff: %s has no usable window", y->name);
      return FALSE;
    }
  for (int k = 0; k < rank; k++)
    if (a->v.window.d[k].reversal)
      {
        fb_builder_set_error (B, "autodiff: %s: reversed windows are not supported", y->name);
        return FALSE;
      }
  *w = a->v.window.d;
  return TRUE;
}

/* Padding that spreads a window cotangent of @out elements back over an
 * input of @in elements: interior stride-1, and edges so that a window of
 * @size (dilated by @wdil) stepping by @step lands on every input. */
static FbPadDim
transpose_pad (int64_t in, int64_t out, int64_t size, int64_t stride, int64_t pad_lo,
               int64_t step, int64_t wdil)
{
  FbPadDim p;
  p.lo = (size - 1) * wdil - pad_lo;
  p.interior = out > 0 ? stride - 1 : 0;
  int64_t spread = out > 0 ? (out - 1) * stride + 1 : 0;
  p.hi = (in - 1) * step + (size - 1) * wdil + 1 - p.lo - spread;
  return p;
}

static void
rule_reduce_window (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  if (y->n_operands != 2)
    {
      fb_builder_set_error (B, "autodiff: reduce-window %s over several operands is not supported", y->name);
      return;
    }
  FbInstr *x = y->operands[0];
  int r = x->shape->rank;
  const FbWindowDim *w;
  if (!get_window (ctx, y, r, &w))
    return;
  FbOpcode op = combiner_of (y);
  if (op == FB_OP_ADD)
    {
      /* Each input gets the sum of the cotangents of the windows it is in:
       * spread g out by the stride, then sum windows stepping by the base
       * dilation. */
      FbPadDim pads[FB_BUILDER_MAX_RANK];
      FbWindowDim tw[FB_BUILDER_MAX_RANK];
      memset (tw, 0, sizeof tw);
      for (int k = 0; k < r; k++)
        {
          pads[k] = transpose_pad (x->shape->dims[k], y->shape->dims[k], w[k].size, w[k].stride,
                                   w[k].pad_lo, w[k].lhs_dilate, w[k].rhs_dilate);
          tw[k].size = w[k].size;
          tw[k].stride = w[k].lhs_dilate;
          tw[k].rhs_dilate = w[k].rhs_dilate;
        }
      FbInstr *spread = fb_b_pad (B, g, zero_scalar (ctx, g), pads);
      _fb_ad_accum (ctx, x, fb_b_reduce_window (B, spread, zero_scalar (ctx, g), FB_OP_ADD, tw));
    }
  else if (op == FB_OP_MAXIMUM || op == FB_OP_MINIMUM)
    {
      /* The first extreme element of each window takes the cotangent. */
      FbWindowDim sw[FB_BUILDER_MAX_RANK];
      for (int k = 0; k < r; k++)
        {
          if (w[k].lhs_dilate != 1 || w[k].rhs_dilate != 1)
            {
              fb_builder_set_error (B, "autodiff: reduce-window %s: max/min windows with dilation are not supported",
                                    y->name);
              return;
            }
          sw[k] = w[k];
        }
      _fb_ad_accum (ctx, x, fb_b_select_and_scatter (B, x, g, zero_scalar (ctx, g),
                                                     op == FB_OP_MAXIMUM ? FB_CMP_GE : FB_CMP_LE,
                                                     FB_OP_ADD, sw));
    }
  else
    fb_builder_set_error (B, "autodiff: reduce-window %s combines with %s; only add, maximum and minimum are differentiable",
                          y->name, op == FB_N_OPCODES ? "a computation" : fb_opcode_name (op));
}

/* ---------------------------------------------------------------- dot */

static gboolean
in_dims (const FbDims *d, int64_t v, int *at)
{
  for (int k = 0; d && k < d->n; k++)
    if (d->v[k] == v)
      {
        if (at)
          *at = k;
        return TRUE;
      }
  return FALSE;
}

/* The cotangent of one dot operand ("mine") from g and the other operand.
 * g's dimensions are batch, lhs free, rhs free; @my_free_at and
 * @other_free_at say where mine and the other's free dimensions start. */
static FbInstr *
dot_operand_ct (FbAdCtx *ctx, FbInstr *g, FbInstr *mine, FbInstr *other,
                const FbDims *my_batch, const FbDims *other_batch,
                const FbDims *my_contract, const FbDims *other_contract,
                int my_free_at, int other_free_at)
{
  FbDotDims d = { 0 };
  int nb = my_batch ? my_batch->n : 0;
  d.n_batch = nb;
  for (int k = 0; k < nb; k++)
    {
      d.lhs_batch[k] = k;
      d.rhs_batch[k] = other_batch->v[k];
    }
  int n_other_free = 0;
  for (int od = 0; od < other->shape->rank; od++)
    if (!in_dims (other_batch, od, NULL) && !in_dims (other_contract, od, NULL))
      {
        d.lhs_contracting[n_other_free] = other_free_at + n_other_free;
        d.rhs_contracting[n_other_free] = od;
        n_other_free++;
      }
  d.n_contracting = n_other_free;
  FbInstr *r = fb_b_dot (B, g, other, &d);
  if (r == NULL)
    return NULL;
  /* r's dimensions: batch, my free dims, then the other's contracting
   * dims in increasing order, each standing for its partner of mine. */
  int rank = mine->shape->rank;
  int64_t m[64], perm[64];
  int p = 0;
  for (int k = 0; k < nb; k++)
    m[p++] = my_batch->v[k];
  for (int md = 0; md < rank; md++)
    if (!in_dims (my_batch, md, NULL) && !in_dims (my_contract, md, NULL))
      m[p++] = md;
  for (int od = 0; od < other->shape->rank; od++)
    {
      int c;
      if (in_dims (other_contract, od, &c))
        m[p++] = my_contract->v[c];
    }
  gboolean identity = TRUE;
  for (int q = 0; q < rank; q++)
    {
      perm[m[q]] = q;
      identity &= m[q] == q;
    }
  (void) my_free_at;
  return identity ? r : fb_b_transpose (B, r, perm);
}

static void
rule_dot (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  FbInstr *l = y->operands[0], *rr = y->operands[1];
  const FbDims *lb = fb_instr_dims (y, FB_A_LHS_BATCH_DIMS), *rb = fb_instr_dims (y, FB_A_RHS_BATCH_DIMS);
  const FbDims *lc = fb_instr_dims (y, FB_A_LHS_CONTRACTING_DIMS), *rc = fb_instr_dims (y, FB_A_RHS_CONTRACTING_DIMS);
  int nb = lb ? lb->n : 0;
  int n_lfree = l->shape->rank - nb - (lc ? lc->n : 0);
  if (l->shape->rank > 64 || rr->shape->rank > 64)
    return;
  if (_fb_ad_is_active (ctx, l))
    _fb_ad_accum (ctx, l, dot_operand_ct (ctx, g, l, rr, lb, rb, lc, rc, nb, nb + n_lfree));
  if (_fb_ad_is_active (ctx, rr))
    _fb_ad_accum (ctx, rr, dot_operand_ct (ctx, g, rr, l, rb, lb, rc, lc, nb + n_lfree, nb));
}

/* ---------------------------------------------------------- convolution */

/* dim_labels text for a rank n+2 operand: @a and @b at their positions,
 * spatial dimension k at sp[k]. */
static void
labels (char *out, int n, int64_t pa, char a, int64_t pb, char b, const int64_t *sp)
{
  out[pa] = a;
  out[pb] = b;
  for (int k = 0; k < n; k++)
    out[sp[k]] = (char) ('0' + k);
  out[n + 2] = '\0';
}

/* Input cotangent: a convolution of g, spread by the stride and padded, with
 * the kernel reversed in space and its feature roles exchanged (per group),
 * stepping by the input's dilation. */
static FbInstr *
conv_input_ct (FbAdCtx *ctx, FbInstr *y, FbInstr *g, const FbConvDims *cd, const FbWindowDim *w,
               int64_t groups)
{
  FbInstr *x = y->operands[0], *k = y->operands[1];
  int n = cd->n_spatial;
  int64_t perm[FB_BUILDER_MAX_RANK + 1], dims[FB_BUILDER_MAX_RANK + 1], sp[FB_BUILDER_MAX_RANK];
  for (int s = 0; s < n; s++)
    {
      perm[s] = cd->k_spatial[s];
      sp[s] = s;
    }
  perm[n] = cd->k_in;
  perm[n + 1] = cd->k_out;
  gboolean identity = TRUE;
  for (int d = 0; d < n + 2; d++)
    identity &= perm[d] == d;
  FbInstr *kt = identity ? k : fb_b_transpose (B, k, perm);   /* [s..., ci, of] */
  if (kt == NULL)
    return NULL;
  if (n > 0)
    kt = fb_b_reverse (B, kt, n, sp);
  int64_t ci = k->shape->dims[cd->k_in], of = k->shape->dims[cd->k_out];
  for (int s = 0; s < n; s++)
    dims[s] = kt->shape->dims[s];
  dims[n] = ci;
  dims[n + 1] = groups;
  dims[n + 2] = of / groups;
  kt = fb_b_reshape (B, kt, n + 3, dims);               /* [s..., ci, G, of/G] */
  for (int s = 0; s < n; s++)
    perm[s] = s;
  perm[n] = n + 2;
  perm[n + 1] = n + 1;
  perm[n + 2] = n;
  kt = fb_b_transpose (B, kt, perm);                   /* [s..., of/G, G, ci] */
  dims[n] = of / groups;
  dims[n + 1] = ci * groups;
  kt = fb_b_reshape (B, kt, n + 2, dims);               /* [s..., of/G, C] */

  FbPadDim pads[FB_BUILDER_MAX_RANK] = { { 0 } };
  FbConvWindow win;
  memset (&win, 0, sizeof win);
  for (int s = 0; s < n; s++)
    {
      pads[cd->out_spatial[s]] = transpose_pad (x->shape->dims[cd->in_spatial[s]], y->shape->dims[cd->out_spatial[s]],
                                                w[s].size, w[s].stride, w[s].pad_lo,
                                                w[s].lhs_dilate, w[s].rhs_dilate);
      win.stride[s] = w[s].lhs_dilate;
      win.rhs_dilate[s] = w[s].rhs_dilate;
    }
  FbInstr *gp = fb_b_pad (B, g, zero_scalar (ctx, g), pads);
  char l[16], r[16], o[16], text[64];
  labels (l, n, cd->out_batch, 'b', cd->out_feature, 'f', cd->out_spatial);
  labels (r, n, n, 'i', n + 1, 'o', sp);
  labels (o, n, cd->in_batch, 'b', cd->in_feature, 'f', cd->in_spatial);
  g_snprintf (text, sizeof text, "%s_%s->%s", l, r, o);
  return fb_b_conv (B, gp, kt, text, &win, groups, 1);
}

/* Kernel cotangent of one group: a convolution of the input (batch and
 * feature roles exchanged) with g as the kernel; the forward stride becomes
 * the kernel dilation and the forward kernel dilation the stride. */
static FbInstr *
conv_kernel_ct_group (FbAdCtx *ctx, FbInstr *y, FbInstr *x, FbInstr *g, const FbConvDims *cd,
                      const FbWindowDim *w)
{
  FbInstr *k = y->operands[1];
  int n = cd->n_spatial;
  FbConvWindow win;
  memset (&win, 0, sizeof win);
  for (int s = 0; s < n; s++)
    {
      int64_t in = x->shape->dims[cd->in_spatial[s]], out = g->shape->dims[cd->out_spatial[s]];
      int64_t padded = (in - 1) * w[s].lhs_dilate + 1 + w[s].pad_lo + w[s].pad_hi;
      int64_t slack = padded - ((out - 1) * w[s].stride + 1) - (w[s].size - 1) * w[s].rhs_dilate;
      win.stride[s] = w[s].rhs_dilate;
      win.pad_lo[s] = w[s].pad_lo;
      win.pad_hi[s] = w[s].pad_hi - MAX (slack, 0);
      win.lhs_dilate[s] = w[s].lhs_dilate;
      win.rhs_dilate[s] = w[s].stride;
    }
  (void) k;
  char l[16], r[16], o[16], text[64];
  labels (l, n, cd->in_feature, 'b', cd->in_batch, 'f', cd->in_spatial);
  labels (r, n, cd->out_batch, 'i', cd->out_feature, 'o', cd->out_spatial);
  labels (o, n, cd->k_in, 'b', cd->k_out, 'f', cd->k_spatial);
  g_snprintf (text, sizeof text, "%s_%s->%s", l, r, o);
  return fb_b_conv (B, x, g, text, &win, 1, 1);
}

static FbInstr *
slice_dim (FbAdCtx *ctx, FbInstr *x, int64_t dim, int64_t from, int64_t to)
{
  int64_t start[FB_BUILDER_MAX_RANK] = { 0 }, limit[FB_BUILDER_MAX_RANK];
  for (int d = 0; d < x->shape->rank; d++)
    limit[d] = x->shape->dims[d];
  start[dim] = from;
  limit[dim] = to;
  return fb_b_slice (B, x, start, limit, NULL);
}

static void
rule_convolution (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  FbInstr *x = y->operands[0], *k = y->operands[1];
  const FbAttr *la = fb_instr_get_attr (y, FB_A_DIM_LABELS);
  int64_t groups = fb_instr_int (y, FB_A_FEATURE_GROUP_COUNT, 1);
  if (y->n_operands != 2 || la == NULL || x->shape->rank > FB_BUILDER_MAX_RANK)
    {
      fb_builder_set_error (B, "autodiff: convolution %s is not a plain two-operand convolution", y->name);
      return;
    }
  if (fb_instr_int (y, FB_A_BATCH_GROUP_COUNT, 1) != 1)
    {
      fb_builder_set_error (B, "autodiff: convolution %s: batch_group_count is not supported", y->name);
      return;
    }
  const FbConvDims *cd = &la->v.conv;
  int n = cd->n_spatial;
  FbWindowDim one[FB_BUILDER_MAX_RANK];
  const FbWindowDim *w = one;
  if (n > 0)
    {
      if (!get_window (ctx, y, n, &w))
        return;
    }
  if (groups < 1 || k->shape->dims[cd->k_out] % groups != 0 || x->shape->dims[cd->in_feature] % groups != 0)
    {
      fb_builder_set_error (B, "autodiff: convolution %s has a bad feature_group_count", y->name);
      return;
    }
  if (_fb_ad_is_active (ctx, x))
    _fb_ad_accum (ctx, x, conv_input_ct (ctx, y, g, cd, w, groups));
  if (!_fb_ad_is_active (ctx, k))
    return;
  if (groups == 1)
    {
      _fb_ad_accum (ctx, k, conv_kernel_ct_group (ctx, y, x, g, cd, w));
      return;
    }
  int64_t ci = x->shape->dims[cd->in_feature] / groups, og = k->shape->dims[cd->k_out] / groups;
  g_autofree FbInstr **parts = g_new0 (FbInstr *, groups);
  for (int64_t i = 0; i < groups; i++)
    {
      FbInstr *xs = slice_dim (ctx, x, cd->in_feature, i * ci, (i + 1) * ci);
      FbInstr *gs = slice_dim (ctx, g, cd->out_feature, i * og, (i + 1) * og);
      parts[i] = conv_kernel_ct_group (ctx, y, xs, gs, cd, w);
    }
  _fb_ad_accum (ctx, k, fb_b_concatenate (B, groups, parts, cd->k_out));
}

/* ------------------------------------------------------- normalisation */

static void
rule_batch_norm_training (FbAdCtx *ctx, FbInstr *y, FbInstr *unused)
{
  FbInstr *x = y->operands[0], *scale = y->operands[1], *offset = y->operands[2];
  double eps = 0;
  const FbAttr *ea = fb_instr_get_attr (y, FB_A_EPSILON);
  if (ea)
    eps = ea->v.f;
  int64_t fi = fb_instr_int (y, FB_A_FEATURE_INDEX, 0);
  FbInstr *gy = _fb_ad_elem_ct (ctx, y, 0);
  FbInstr *gmean = _fb_ad_elem_ct (ctx, y, 1);
  FbInstr *gvar = _fb_ad_elem_ct (ctx, y, 2);
  FbInstr *mean = fb_b_gte (B, y, 1), *var = fb_b_gte (B, y, 2);
  if (gy == NULL)
    gy = full_like (ctx, x, 0);
  FbInstr *bg = fb_b_batch_norm_grad (B, x, scale, mean, var, gy, eps, fi);
  FbInstr *gx = fb_b_gte (B, bg, 0);
  if (gmean || gvar)
    {
      /* The batch statistics depend on x too: d mean = 1/N, d var = 2 (x - mean) / N. */
      double count = (double) fb_shape_elements (x->shape) / (double) x->shape->dims[fi];
      int64_t map[1] = { fi };
      if (gmean)
        gx = fb_b_add (B, gx, fb_b_binary_scalar (B, FB_OP_DIVIDE,
                                                  fb_b_broadcast (B, gmean, x->shape->rank, x->shape->dims, map), count));
      if (gvar)
        {
          FbInstr *centred = fb_b_sub (B, x, fb_b_broadcast (B, mean, x->shape->rank, x->shape->dims, map));
          FbInstr *t = fb_b_mul (B, fb_b_broadcast (B, gvar, x->shape->rank, x->shape->dims, map), centred);
          gx = fb_b_add (B, gx, fb_b_binary_scalar (B, FB_OP_MULTIPLY, t, 2.0 / count));
        }
    }
  _fb_ad_accum (ctx, x, gx);
  if (_fb_ad_is_active (ctx, scale))
    _fb_ad_accum (ctx, scale, fb_b_gte (B, bg, 1));
  if (_fb_ad_is_active (ctx, offset))
    _fb_ad_accum (ctx, offset, fb_b_gte (B, bg, 2));
  (void) unused;
}

/* -------------------------------------------------------------- tuples */

static void
rule_tuple (FbAdCtx *ctx, FbInstr *t, FbInstr *unused)
{
  for (int i = 0; i < t->n_operands; i++)
    {
      FbInstr *e = _fb_ad_elem_ct (ctx, t, i);
      if (e == NULL || !_fb_ad_is_active (ctx, t->operands[i]))
        continue;
      if (fb_shape_is_tuple (t->operands[i]->shape))
        {
          fb_builder_set_error (B, "autodiff: nested tuples (%s) are not supported", t->name);
          return;
        }
      _fb_ad_accum (ctx, t->operands[i], e);
    }
  (void) unused;
}

static void
rule_gte (FbAdCtx *ctx, FbInstr *y, FbInstr *g)
{
  _fb_ad_accum_elem (ctx, y->operands[0], fb_instr_int (y, FB_A_INDEX, 0), g);
}

/* ------------------------------------------------------------ dispatch */

gboolean
_fb_ad_blocks (FbOpcode op)
{
  switch (op)
    {
    case FB_OP_COMPARE: case FB_OP_SIGN: case FB_OP_FLOOR: case FB_OP_CEIL:
    case FB_OP_ROUND_NEAREST_AFZ: case FB_OP_ROUND_NEAREST_EVEN: case FB_OP_IS_FINITE:
    case FB_OP_IOTA: case FB_OP_CONSTANT: case FB_OP_RNG: case FB_OP_RNG_BIT_GENERATOR:
    case FB_OP_RNG_GET_AND_UPDATE_STATE: case FB_OP_PARAMETER: case FB_OP_REPLICA_ID:
    case FB_OP_PARTITION_ID: case FB_OP_BITCAST_CONVERT: case FB_OP_STOCHASTIC_CONVERT:
    case FB_OP_GET_DIMENSION_SIZE: case FB_OP_AND: case FB_OP_OR: case FB_OP_XOR: case FB_OP_NOT:
    case FB_OP_SHIFT_LEFT: case FB_OP_SHIFT_RIGHT_ARITHMETIC: case FB_OP_SHIFT_RIGHT_LOGICAL:
    case FB_OP_POPCNT: case FB_OP_CLZ: case FB_OP_REMAINDER: case FB_OP_MULHI:
      return TRUE;
    default:
      return FALSE;
    }
}

typedef void (*Rule) (FbAdCtx *ctx, FbInstr *y, FbInstr *g);

static Rule
rule_for (FbOpcode op)
{
  switch (op)
    {
    case FB_OP_NEGATE: case FB_OP_COPY: case FB_OP_REDUCE_PRECISION: case FB_OP_EXP:
    case FB_OP_LOG: case FB_OP_LOG1P: case FB_OP_EXPM1: case FB_OP_TANH: case FB_OP_LOGISTIC:
    case FB_OP_SQRT: case FB_OP_RSQRT: case FB_OP_CBRT: case FB_OP_ABS: case FB_OP_ERF:
    case FB_OP_SIN: case FB_OP_COS: case FB_OP_TAN: case FB_OP_SINH: case FB_OP_COSH:
    case FB_OP_CONVERT:
      return rule_unary;
    case FB_OP_ADD: case FB_OP_SUBTRACT: case FB_OP_MULTIPLY: case FB_OP_DIVIDE:
    case FB_OP_MAXIMUM: case FB_OP_MINIMUM: case FB_OP_POWER: case FB_OP_ATAN2:
      return rule_binary;
    case FB_OP_SELECT: return rule_select;
    case FB_OP_CLAMP: return rule_clamp;
    case FB_OP_BROADCAST: return rule_broadcast;
    case FB_OP_RESHAPE: case FB_OP_BITCAST: return rule_reshape;
    case FB_OP_TRANSPOSE: return rule_transpose;
    case FB_OP_SLICE: return rule_slice;
    case FB_OP_PAD: return rule_pad;
    case FB_OP_CONCATENATE: return rule_concatenate;
    case FB_OP_REVERSE: return rule_reverse;
    case FB_OP_DYNAMIC_SLICE: return rule_dynamic_slice;
    case FB_OP_DYNAMIC_UPDATE_SLICE: return rule_dynamic_update_slice;
    case FB_OP_GATHER: return rule_gather;
    case FB_OP_SCATTER: return rule_scatter;
    case FB_OP_REDUCE: return rule_reduce;
    case FB_OP_REDUCE_WINDOW: return rule_reduce_window;
    case FB_OP_DOT: return rule_dot;
    case FB_OP_CONVOLUTION: return rule_convolution;
    case FB_OP_BATCH_NORM_TRAINING: return rule_batch_norm_training;
    case FB_OP_TUPLE: return rule_tuple;
    case FB_OP_GET_TUPLE_ELEMENT: return rule_gte;
    default: return NULL;
    }
}

gboolean
_fb_ad_rule_exists (FbOpcode op)
{
  return rule_for (op) != NULL;
}

gboolean
_fb_ad_apply_rule (FbAdCtx *ctx, FbInstr *instr, FbInstr *g)
{
  Rule r = rule_for (instr->opcode);
  g_assert (r != NULL);
  if (instr->opcode == FB_OP_CONVERT && !fb_elem_type_is_float (instr->operands[0]->shape->type))
    return TRUE;
  r (ctx, instr, g);
  return fb_builder_ok (B);
}
