/* SPDX-License-Identifier: MIT
 *
 * The interpreter's reductions and orderings: reduce (variadic),
 * reduce-window, select-and-scatter, sort and topk.
 *
 * The combining computations (to_apply, select, scatter, the sort
 * comparator) are called on scalar literals through _fb_interp_call. When a
 * computation is a single add, multiply, maximum or minimum of its two
 * parameters (or a single compare of them, for select and sort), the
 * combination is done inline on typed values instead; it gives the same
 * result, element by element, in the same order. Reductions visit the reduced
 * elements in row-major order; window positions that fall into padding or
 * between dilated base elements are skipped. Sort is a merge sort, so it is
 * stable and calls the comparator as (a, b) with a before b in the input.
 */
#include "fb-interp-private.h"
#include "fb-window.h"

#include <math.h>
#include <string.h>


/* ------------------------------------------------------------ helpers */

/* The result's array shapes: @n of them (a tuple when @n > 1, or always when
 * @force_tuple). Returns the literal and its leaves in @leaves. */
static FbLiteral *
new_result (FbInterp *ctx, FbInstr *instr, int n, gboolean force_tuple, FbLiteral **leaves,
            GError **error)
{
  FbShape *s = instr->shape;
  gboolean tuple = n > 1 || force_tuple;
  if (s == NULL || (tuple && (!fb_shape_is_tuple (s) || s->n_elems != n))
      || (!tuple && !fb_shape_is_array (s)))
    {
      if (tuple)
        _fb_interp_error (error, instr, "result must be a tuple of %d arrays", n);
      else
        _fb_interp_error (error, instr, "result must be an array");
      return NULL;
    }
  for (int i = 0; tuple && i < n; i++)
    if (!fb_shape_is_array (s->elems[i]) || s->elems[i]->rank > FB_INTERP_MAX_RANK)
      {
        _fb_interp_error (error, instr, "result element %d must be an array", i);
        return NULL;
      }
  if (!tuple && s->rank > FB_INTERP_MAX_RANK)
    {
      _fb_interp_error (error, instr, "result rank %d is above %d", s->rank, FB_INTERP_MAX_RANK);
      return NULL;
    }
  FbLiteral *res = fb_literal_new (ctx->arena, s);
  for (int i = 0; i < n; i++)
    leaves[i] = tuple ? res->elems[i] : res;
  return res;
}

static const FbWindowDim *
get_window (const FbInstr *instr, int rank, FbWindowDim *buf, GError **error)
{
  const FbAttr *wa = fb_instr_get_attr (instr, FB_A_WINDOW);
  if (wa == NULL || wa->kind != FB_AV_WINDOW || wa->v.window.n != rank)
    {
      _fb_interp_error (error, instr, "window must have one entry per operand dimension (%d)", rank);
      return NULL;
    }
  for (int d = 0; d < rank; d++)
    {
      buf[d] = wa->v.window.d[d];
      if (buf[d].stride <= 0) buf[d].stride = 1;
      if (buf[d].lhs_dilate <= 0) buf[d].lhs_dilate = 1;
      if (buf[d].rhs_dilate <= 0) buf[d].rhs_dilate = 1;
      if (buf[d].size < 0)
        {
          _fb_interp_error (error, instr, "window size %" G_GINT64_FORMAT " is negative", buf[d].size);
          return NULL;
        }
    }
  return buf;
}

/* ------------------------------------------- calling a computation */

/* Calls @comp on scalars whose bytes the caller writes into args[i]->data,
 * and copies the scalar results out. Temporary values of the calls live in
 * a scratch arena that is recycled, so millions of calls do not pile up. */
typedef struct {
  FbInterp      *ctx;
  FbInstr       *instr;
  FbComputation *comp;
  int            n_args, n_results;
  FbLiteral     *args[16];
  FbElemType     result_types[8];
  FbArena       *scratch;
  int64_t        calls;
} Applier;

static gboolean
applier_init (Applier *ap, FbInterp *ctx, FbInstr *instr, FbComputation *comp, int n_args,
              const FbElemType *arg_types, int n_results, const FbElemType *result_types,
              const char *what, GError **error)
{
  memset (ap, 0, sizeof *ap);
  if (comp == NULL)
    {
      _fb_interp_error (error, instr, "has no %s computation", what);
      return FALSE;
    }
  if (comp->n_params != n_args || n_args > 16 || n_results > 8)
    {
      _fb_interp_error (error, instr, "%s computation %s takes %d parameters; %d expected", what,
                        comp->name, comp->n_params, n_args);
      return FALSE;
    }
  ap->ctx = ctx;
  ap->instr = instr;
  ap->comp = comp;
  ap->n_args = n_args;
  ap->n_results = n_results;
  for (int i = 0; i < n_args; i++)
    ap->args[i] = fb_literal_new (ctx->arena, fb_shape_new_scalar (ctx->arena, arg_types[i]));
  for (int i = 0; i < n_results; i++)
    ap->result_types[i] = result_types[i];
  return TRUE;
}

static void
applier_clear (Applier *ap)
{
  g_clear_pointer (&ap->scratch, fb_arena_free);
}

static gboolean
scalar_of (const FbLiteral *lit, FbElemType type)
{
  return lit && lit->shape && fb_shape_is_array (lit->shape) && lit->shape->type == type
         && fb_shape_elements (lit->shape) == 1 && lit->data;
}

/* Runs the computation; result i's bytes go to out[i]. */
static gboolean
applier_call (Applier *ap, guint8 *const *out, GError **error)
{
  if (ap->scratch == NULL || ++ap->calls % 4096 == 0)
    {
      g_clear_pointer (&ap->scratch, fb_arena_free);
      ap->scratch = fb_arena_new ();
    }
  FbArena *saved = ap->ctx->arena;
  ap->ctx->arena = ap->scratch;
  FbLiteral *r = _fb_interp_call (ap->ctx, ap->comp, ap->n_args, ap->args, error);
  ap->ctx->arena = saved;
  if (r == NULL)
    return FALSE;
  /* A single result may come back bare or as a 1-tuple. */
  if (ap->n_results == 1 && r->shape && fb_shape_is_tuple (r->shape) && r->n_elems == 1)
    r = r->elems[0];
  for (int i = 0; i < ap->n_results; i++)
    {
      const FbLiteral *ri = ap->n_results == 1 ? r : (r->shape && fb_shape_is_tuple (r->shape)
                                                      && r->n_elems == ap->n_results ? r->elems[i] : NULL);
      if (!scalar_of (ri, ap->result_types[i]))
        {
          _fb_interp_error (error, ap->instr, "computation %s must return %d scalar%s of type %s",
                            ap->comp->name, ap->n_results, ap->n_results > 1 ? "s" : "",
                            fb_elem_type_name (ap->result_types[i]));
          return FALSE;
        }
      memcpy (out[i], ri->data, fb_elem_type_bytes (ap->result_types[i]));
    }
  return TRUE;
}

/* Calls a predicate computation (select, comparator). */
static gboolean
applier_pred (Applier *ap, gboolean *result, GError **error)
{
  guint8 b = 0;
  guint8 *out = &b;
  if (!applier_call (ap, &out, error))
    return FALSE;
  *result = b != 0;
  return TRUE;
}

/* ----------------------------------------------------- fast paths */

typedef enum { FAST_NONE, FAST_ADD, FAST_MUL, FAST_MAX, FAST_MIN } FastOp;

static gboolean
uses_both_params (const FbComputation *comp, const FbInstr *root, gboolean *swapped)
{
  if (comp->n_params < 2 || root->n_operands != 2 || comp->params == NULL)
    return FALSE;
  const FbInstr *a = root->operands[0], *b = root->operands[1];
  if (a == comp->params[0] && b == comp->params[1])
    *swapped = FALSE;
  else if (a == comp->params[1] && b == comp->params[0])
    *swapped = TRUE;
  else
    return FALSE;
  return TRUE;
}

/* add/multiply/maximum/minimum of the two parameters, on f32 or f64. */
static FastOp
fast_op_of (const FbComputation *comp, FbElemType type)
{
  gboolean swapped;
  if (comp == NULL || comp->root == NULL || (type != FB_F32 && type != FB_F64)
      || comp->n_params != 2 || !uses_both_params (comp, comp->root, &swapped)
      || comp->params[0]->shape->type != type || comp->params[1]->shape->type != type
      || comp->root->shape->type != type || comp->root->shape->rank != 0
      || comp->params[0]->shape->rank != 0 || comp->params[1]->shape->rank != 0)
    return FAST_NONE;
  switch (comp->root->opcode)
    {
    case FB_OP_ADD: return FAST_ADD;
    case FB_OP_MULTIPLY: return FAST_MUL;
    case FB_OP_MAXIMUM: return FAST_MAX;
    case FB_OP_MINIMUM: return FAST_MIN;
    default: return FAST_NONE;
    }
}

/* maximum/minimum propagate NaN, as XLA's do. */
#define COMBINE(op, a, b)                                                                   \
  ((op) == FAST_ADD ? (a) + (b) : (op) == FAST_MUL ? (a) * (b)                              \
   : (op) == FAST_MAX ? (isnan (a) || (a) > (b) ? (a) : (b))                                \
   : (isnan (a) || (a) < (b) ? (a) : (b)))

static inline void
combine_fast (FastOp op, FbElemType type, guint8 *acc, const guint8 *x)
{
  if (type == FB_F32)
    {
      float a, b;
      memcpy (&a, acc, 4);
      memcpy (&b, x, 4);
      a = COMBINE (op, a, b);
      memcpy (acc, &a, 4);
    }
  else
    {
      double a, b;
      memcpy (&a, acc, 8);
      memcpy (&b, x, 8);
      a = COMBINE (op, a, b);
      memcpy (acc, &a, 8);
    }
}

/* compare(p0, p1) with a plain direction: a predicate we can evaluate on
 * doubles (floats) or 64-bit integers. */
typedef enum { CMP_NONE, CMP_LT, CMP_LE, CMP_GT, CMP_GE } FastCmp;

static FastCmp
fast_cmp_of (const FbComputation *comp, FbElemType type, int n_params)
{
  gboolean swapped;
  FbElemKind kind = fb_elem_type_kind (type);
  if (comp == NULL || comp->root == NULL || comp->root->opcode != FB_OP_COMPARE
      || comp->n_params != n_params
      || !uses_both_params (comp, comp->root, &swapped)
      || (kind != FB_KIND_FLOAT && kind != FB_KIND_SINT && kind != FB_KIND_UINT)
      || (type == FB_U64)
      || comp->params[0]->shape->type != type || comp->params[1]->shape->type != type
      || comp->params[0]->shape->rank != 0 || comp->params[1]->shape->rank != 0)
    return CMP_NONE;
  const char *ct = fb_instr_str (comp->root, FB_A_COMPARE_TYPE);
  if (ct && strcmp (ct, "FLOAT") != 0 && strcmp (ct, "SIGNED") != 0 && strcmp (ct, "UNSIGNED") != 0)
    return CMP_NONE;
  const char *dir = fb_instr_str (comp->root, FB_A_DIRECTION);
  FastCmp c = dir == NULL ? CMP_NONE
              : strcmp (dir, "LT") == 0 ? CMP_LT : strcmp (dir, "LE") == 0 ? CMP_LE
              : strcmp (dir, "GT") == 0 ? CMP_GT : strcmp (dir, "GE") == 0 ? CMP_GE : CMP_NONE;
  if (swapped)
    c = c == CMP_LT ? CMP_GT : c == CMP_GT ? CMP_LT : c == CMP_LE ? CMP_GE : c == CMP_GE ? CMP_LE : c;
  return c;
}

static gboolean
eval_cmp (FastCmp c, const FbLiteral *lit, int64_t i, int64_t j)
{
  if (fb_elem_type_kind (lit->shape->type) == FB_KIND_FLOAT)
    {
      double a = fb_literal_get_f64 (lit, i), b = fb_literal_get_f64 (lit, j);
      switch (c)
        {
        case CMP_LT: return a < b;
        case CMP_LE: return a <= b;
        case CMP_GT: return a > b;
        case CMP_GE: return a >= b;
        default: return FALSE;
        }
    }
  int64_t a = fb_literal_get_s64 (lit, i), b = fb_literal_get_s64 (lit, j);
  switch (c)
    {
    case CMP_LT: return a < b;
    case CMP_LE: return a <= b;
    case CMP_GT: return a > b;
    case CMP_GE: return a >= b;
    default: return FALSE;
    }
}

/* ------------------------------------------------------------ reduce */

static gboolean
variadic_operands (FbInstr *instr, FbLiteral *const *ops, int *n, GError **error)
{
  if (instr->n_operands < 2 || instr->n_operands % 2 != 0 || instr->n_operands > 16)
    {
      _fb_interp_error (error, instr, "takes inputs and as many init values (an even count up to "
                        "16), not %d operands", instr->n_operands);
      return FALSE;
    }
  *n = instr->n_operands / 2;
  for (int i = 0; i < *n; i++)
    {
      if (!_fb_interp_check_array (instr, ops[i], "input", error) || !_fb_interp_check_array (instr, ops[*n + i], "init value", error))
        return FALSE;
      if (!_fb_interp_same_dims (ops[i]->shape, ops[0]->shape))
        {
          _fb_interp_error (error, instr, "inputs must all have the same dimensions");
          return FALSE;
        }
      if (fb_shape_elements (ops[*n + i]->shape) != 1 || ops[*n + i]->shape->type != ops[i]->shape->type)
        {
          _fb_interp_error (error, instr, "init value %d must be a %s scalar", i,
                            fb_elem_type_name (ops[i]->shape->type));
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
setup_combiner (Applier *ap, FbInterp *ctx, FbInstr *instr, FbComputation *comp, int n,
                FbLiteral *const *ops, GError **error)
{
  FbElemType types[16];
  for (int i = 0; i < n; i++)
    types[i] = types[n + i] = ops[i]->shape->type;
  return applier_init (ap, ctx, instr, comp, 2 * n, types, n, types, "to_apply", error);
}

gboolean
_fb_interp_reduce (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                   GError **error)
{
  int n;
  if (!variadic_operands (instr, ops, &n, error))
    return FALSE;
  const FbShape *is = ops[0]->shape;
  const FbDims *dims = fb_instr_dims (instr, FB_A_DIMENSIONS);
  gboolean reduced[FB_INTERP_MAX_RANK] = { 0 };
  for (int i = 0; dims && i < dims->n; i++)
    {
      if (dims->v[i] < 0 || dims->v[i] >= is->rank || reduced[dims->v[i]])
        {
          _fb_interp_error (error, instr, "dimensions names %" G_GINT64_FORMAT
                            ", which is out of range or repeated", dims->v[i]);
          return FALSE;
        }
      reduced[dims->v[i]] = TRUE;
    }
  FbLiteral *leaves[8];
  FbLiteral *res = new_result (ctx, instr, n, FALSE, leaves, error);
  if (res == NULL)
    return FALSE;
  /* Output strides of the kept dims (0 for reduced ones). */
  int64_t ostride[FB_INTERP_MAX_RANK], s = 1;
  int kept = 0;
  for (int d = is->rank - 1; d >= 0; d--)
    {
      ostride[d] = reduced[d] ? 0 : s;
      if (!reduced[d])
        {
          s *= is->dims[d];
          kept++;
        }
    }
  for (int i = 0; i < n; i++)
    {
      const FbShape *os = leaves[i]->shape;
      gboolean ok = os->rank == kept && os->type == ops[i]->shape->type;
      for (int d = 0, k = 0; ok && d < is->rank; d++)
        if (!reduced[d])
          ok = os->dims[k++] == is->dims[d];
      if (!ok)
        {
          _fb_interp_error (error, instr, "result %d should have the input's type and its kept dimensions", i);
          return FALSE;
        }
    }

  int64_t n_out = fb_shape_elements (leaves[0]->shape), n_in = fb_shape_elements (is);
  int esz[8];
  for (int i = 0; i < n; i++)
    {
      esz[i] = fb_elem_type_bytes (ops[i]->shape->type);
      for (int64_t o = 0; o < n_out; o++)
        memcpy (leaves[i]->data + o * esz[i], ops[n + i]->data, esz[i]);
    }

  FbComputation *comp = fb_instr_comp (instr, FB_A_TO_APPLY);
  FastOp fast = n == 1 ? fast_op_of (comp, is->type) : FAST_NONE;
  int64_t idx[FB_INTERP_MAX_RANK] = { 0 };
  if (fast != FAST_NONE && is->type == FB_F32)
    {
      const float *x = (const float *) ops[0]->data;
      float *acc = (float *) leaves[0]->data;
      for (int64_t e = 0; e < n_in; e++)
        {
          int64_t o = 0;
          for (int d = 0; d < is->rank; d++)
            o += idx[d] * ostride[d];
          acc[o] = COMBINE (fast, acc[o], x[e]);
          _fb_interp_next_index (idx, is);
        }
    }
  else if (fast != FAST_NONE)
    {
      const double *x = (const double *) ops[0]->data;
      double *acc = (double *) leaves[0]->data;
      for (int64_t e = 0; e < n_in; e++)
        {
          int64_t o = 0;
          for (int d = 0; d < is->rank; d++)
            o += idx[d] * ostride[d];
          acc[o] = COMBINE (fast, acc[o], x[e]);
          _fb_interp_next_index (idx, is);
        }
    }
  else
    {
      Applier ap;
      if (!setup_combiner (&ap, ctx, instr, comp, n, ops, error))
        return FALSE;
      gboolean ok = TRUE;
      for (int64_t e = 0; e < n_in && ok; e++)
        {
          int64_t o = 0;
          for (int d = 0; d < is->rank; d++)
            o += idx[d] * ostride[d];
          guint8 *dst[8];
          for (int i = 0; i < n; i++)
            {
              dst[i] = leaves[i]->data + o * esz[i];
              memcpy (ap.args[i]->data, dst[i], esz[i]);
              memcpy (ap.args[n + i]->data, ops[i]->data + e * esz[i], esz[i]);
            }
          ok = applier_call (&ap, dst, error);
          _fb_interp_next_index (idx, is);
        }
      applier_clear (&ap);
      if (!ok)
        return FALSE;
    }
  *out = res;
  return TRUE;
}

/* ----------------------------------------------------- reduce-window */

gboolean
_fb_interp_reduce_window (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                          GError **error)
{
  int n;
  if (!variadic_operands (instr, ops, &n, error))
    return FALSE;
  const FbShape *is = ops[0]->shape;
  FbWindowDim wbuf[FB_INTERP_MAX_RANK];
  const FbWindowDim *w = get_window (instr, is->rank, wbuf, error);
  if (w == NULL)
    return FALSE;
  FbLiteral *leaves[8];
  FbLiteral *res = new_result (ctx, instr, n, FALSE, leaves, error);
  if (res == NULL)
    return FALSE;
  for (int i = 0; i < n; i++)
    if (!_fb_interp_same_dims (leaves[i]->shape, leaves[0]->shape) || leaves[i]->shape->rank != is->rank
        || leaves[i]->shape->type != ops[i]->shape->type)
      {
        _fb_interp_error (error, instr, "result %d must have the input's rank and type", i);
        return FALSE;
      }
  const FbShape *os = leaves[0]->shape;
  int64_t ist[FB_INTERP_MAX_RANK], n_out = fb_shape_elements (os);
  _fb_interp_strides (is, ist);
  int esz[8];
  for (int i = 0; i < n; i++)
    {
      esz[i] = fb_elem_type_bytes (ops[i]->shape->type);
      for (int64_t o = 0; o < n_out; o++)
        memcpy (leaves[i]->data + o * esz[i], ops[n + i]->data, esz[i]);
    }

  FbComputation *comp = fb_instr_comp (instr, FB_A_TO_APPLY);
  FastOp fast = n == 1 ? fast_op_of (comp, is->type) : FAST_NONE;
  Applier ap = { 0 };
  if (fast == FAST_NONE && !setup_combiner (&ap, ctx, instr, comp, n, ops, error))
    return FALSE;
  gboolean ok = TRUE;
  int64_t oidx[FB_INTERP_MAX_RANK] = { 0 };
  gboolean empty_window = FALSE;
  for (int d = 0; d < is->rank; d++)
    empty_window |= w[d].size == 0;
  for (int64_t o = 0; o < n_out && ok && !empty_window; o++)
    {
      int64_t widx[FB_INTERP_MAX_RANK] = { 0 };
      do
        {
          int64_t src = fb_window_source (is, ist, w, oidx, widx);
          if (src < 0)
            continue;
          if (fast != FAST_NONE)
            {
              combine_fast (fast, is->type, leaves[0]->data + o * esz[0], ops[0]->data + src * esz[0]);
              continue;
            }
          guint8 *dst[8];
          for (int i = 0; i < n; i++)
            {
              dst[i] = leaves[i]->data + o * esz[i];
              memcpy (ap.args[i]->data, dst[i], esz[i]);
              memcpy (ap.args[n + i]->data, ops[i]->data + src * esz[i], esz[i]);
            }
          ok = applier_call (&ap, dst, error);
        }
      while (ok && fb_window_next (widx, w, is->rank));
      _fb_interp_next_index (oidx, os);
    }
  applier_clear (&ap);
  if (!ok)
    return FALSE;
  *out = res;
  return TRUE;
}

/* ------------------------------------------------ select-and-scatter */

gboolean
_fb_interp_select_and_scatter (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops,
                               FbLiteral **out, GError **error)
{
  const FbLiteral *operand = ops[0], *source = ops[1], *init = ops[2];
  if (instr->n_operands != 3 || !_fb_interp_check_array (instr, operand, "operand", error)
      || !_fb_interp_check_array (instr, source, "source", error) || !_fb_interp_check_array (instr, init, "init value", error))
    return FALSE;
  const FbShape *is = operand->shape, *ss = source->shape;
  FbElemType t = is->type, st = ss->type;
  if (ss->rank != is->rank || fb_shape_elements (init->shape) != 1 || init->shape->type != st)
    {
      _fb_interp_error (error, instr, "source must have the operand's rank and init must be a %s scalar",
                        fb_elem_type_name (st));
      return FALSE;
    }
  FbWindowDim wbuf[FB_INTERP_MAX_RANK];
  const FbWindowDim *w = get_window (instr, is->rank, wbuf, error);
  if (w == NULL)
    return FALSE;
  FbLiteral *leaf;
  FbLiteral *res = new_result (ctx, instr, 1, FALSE, &leaf, error);
  if (res == NULL)
    return FALSE;
  if (!_fb_interp_same_dims (leaf->shape, is) || leaf->shape->type != st)
    {
      _fb_interp_error (error, instr, "result must have the operand's dimensions and the source's type");
      return FALSE;
    }

  int64_t ist[FB_INTERP_MAX_RANK], n_out = fb_shape_elements (is), n_src = fb_shape_elements (ss);
  _fb_interp_strides (is, ist);
  int esz = fb_elem_type_bytes (t), ssz = fb_elem_type_bytes (st);
  for (int64_t o = 0; o < n_out; o++)
    memcpy (leaf->data + o * ssz, init->data, ssz);

  FbComputation *sel = fb_instr_comp (instr, FB_A_SELECT);
  FbComputation *sct = fb_instr_comp (instr, FB_A_SCATTER);
  FastCmp fsel = fast_cmp_of (sel, t, 2);
  FastOp fsct = fast_op_of (sct, st);
  Applier sel_ap = { 0 }, sct_ap = { 0 };
  FbElemType tt[2] = { t, t }, stt[2] = { st, st }, pred = FB_PRED;
  if (fsel == CMP_NONE && !applier_init (&sel_ap, ctx, instr, sel, 2, tt, 1, &pred, "select", error))
    return FALSE;
  if (fsct == FAST_NONE && !applier_init (&sct_ap, ctx, instr, sct, 2, stt, 1, stt, "scatter", error))
    {
      applier_clear (&sel_ap);
      return FALSE;
    }

  gboolean ok = TRUE;
  int64_t sidx[FB_INTERP_MAX_RANK] = { 0 };
  for (int64_t s = 0; s < n_src && ok; s++)
    {
      int64_t widx[FB_INTERP_MAX_RANK] = { 0 }, chosen = -1;
      gboolean any = TRUE;
      for (int d = 0; d < is->rank; d++)
        any &= w[d].size > 0;
      while (any)
        {
          int64_t src = fb_window_source (is, ist, w, sidx, widx);
          if (src >= 0)
            {
              if (chosen < 0)
                chosen = src;
              else
                {
                  gboolean keep;
                  if (fsel != CMP_NONE)
                    keep = eval_cmp (fsel, operand, chosen, src);
                  else
                    {
                      memcpy (sel_ap.args[0]->data, operand->data + chosen * esz, esz);
                      memcpy (sel_ap.args[1]->data, operand->data + src * esz, esz);
                      if (!(ok = applier_pred (&sel_ap, &keep, error)))
                        break;
                    }
                  if (!keep)
                    chosen = src;
                }
            }
          if (!fb_window_next (widx, w, is->rank))
            break;
        }
      if (ok && chosen >= 0)
        {
          guint8 *dst = leaf->data + chosen * ssz;
          const guint8 *val = source->data + s * ssz;
          if (fsct != FAST_NONE)
            combine_fast (fsct, st, dst, val);
          else
            {
              memcpy (sct_ap.args[0]->data, dst, ssz);
              memcpy (sct_ap.args[1]->data, val, ssz);
              ok = applier_call (&sct_ap, &dst, error);
            }
        }
      _fb_interp_next_index (sidx, ss);
    }
  applier_clear (&sel_ap);
  applier_clear (&sct_ap);
  if (!ok)
    return FALSE;
  *out = res;
  return TRUE;
}

/* -------------------------------------------------------------- sort */

/* "Is element a before element b" for the merge sort. */
typedef gboolean (*LessFn) (gpointer data, int64_t a, int64_t b, gboolean *less, GError **error);

static gboolean
merge_sort (int64_t *v, int64_t *tmp, int64_t n, LessFn less, gpointer data, GError **error)
{
  if (n < 2)
    return TRUE;
  int64_t h = n / 2;
  if (!merge_sort (v, tmp, h, less, data, error) || !merge_sort (v + h, tmp, n - h, less, data, error))
    return FALSE;
  int64_t i = 0, j = h, k = 0;
  while (i < h && j < n)
    {
      gboolean take_right;
      /* Right goes first only when strictly before left: equal keys keep their order. */
      if (!less (data, v[j], v[i], &take_right, error))
        return FALSE;
      tmp[k++] = take_right ? v[j++] : v[i++];
    }
  while (i < h)
    tmp[k++] = v[i++];
  while (j < n)
    tmp[k++] = v[j++];
  memcpy (v, tmp, sizeof (int64_t) * n);
  return TRUE;
}

typedef struct {
  int            n;
  FbLiteral *const *ops;
  int64_t        base, stride;    /* element k of the line is base + k * stride */
  FastCmp        fast;
  Applier       *ap;
  int            esz[16];
} SortLine;

static gboolean
sort_less (gpointer data, int64_t a, int64_t b, gboolean *less, GError **error)
{
  SortLine *l = data;
  int64_t ia = l->base + a * l->stride, ib = l->base + b * l->stride;
  if (l->fast != CMP_NONE)
    {
      *less = eval_cmp (l->fast, l->ops[0], ia, ib);
      return TRUE;
    }
  for (int i = 0; i < l->n; i++)
    {
      memcpy (l->ap->args[2 * i]->data, l->ops[i]->data + ia * l->esz[i], l->esz[i]);
      memcpy (l->ap->args[2 * i + 1]->data, l->ops[i]->data + ib * l->esz[i], l->esz[i]);
    }
  return applier_pred (l->ap, less, error);
}

gboolean
_fb_interp_sort (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                 GError **error)
{
  int n = instr->n_operands;
  if (n < 1 || n > 8)
    {
      _fb_interp_error (error, instr, "sort takes 1 to 8 operands, not %d", n);
      return FALSE;
    }
  for (int i = 0; i < n; i++)
    if (!_fb_interp_check_array (instr, ops[i], "operand", error))
      return FALSE;
    else if (!_fb_interp_same_dims (ops[i]->shape, ops[0]->shape))
      {
        _fb_interp_error (error, instr, "operands must all have the same dimensions");
        return FALSE;
      }
  const FbShape *s = ops[0]->shape;
  const FbDims *dims = fb_instr_dims (instr, FB_A_DIMENSIONS);
  int64_t dim = dims && dims->n == 1 ? dims->v[0] : -1;
  if (dim < 0 || dim >= s->rank)
    {
      _fb_interp_error (error, instr, "dimensions must name one dimension of the rank-%d operands", s->rank);
      return FALSE;
    }
  FbLiteral *leaves[8];
  FbLiteral *res = new_result (ctx, instr, n, FALSE, leaves, error);
  if (res == NULL)
    return FALSE;
  for (int i = 0; i < n; i++)
    if (!_fb_interp_same_dims (leaves[i]->shape, s) || leaves[i]->shape->type != ops[i]->shape->type)
      {
        _fb_interp_error (error, instr, "result %d must have the shape of operand %d", i, i);
        return FALSE;
      }

  FbComputation *comp = fb_instr_comp (instr, FB_A_TO_APPLY);
  SortLine line = { .n = n, .ops = ops, .fast = fast_cmp_of (comp, s->type, 2 * n) };
  Applier ap = { 0 };
  FbElemType types[16];
  FbElemType pred = FB_PRED;
  for (int i = 0; i < n; i++)
    {
      types[2 * i] = types[2 * i + 1] = ops[i]->shape->type;
      line.esz[i] = fb_elem_type_bytes (ops[i]->shape->type);
    }
  if (line.fast == CMP_NONE
      && !applier_init (&ap, ctx, instr, comp, 2 * n, types, 1, &pred, "comparator", error))
    return FALSE;
  line.ap = &ap;

  int64_t st[FB_INTERP_MAX_RANK];
  _fb_interp_strides (s, st);
  int64_t len = s->dims[dim], total = fb_shape_elements (s);
  int64_t lines = len ? total / len : 0;
  line.stride = st[dim];
  g_autofree int64_t *perm = g_new (int64_t, MAX (len, 1));
  g_autofree int64_t *tmp = g_new (int64_t, MAX (len, 1));
  gboolean ok = TRUE;
  for (int64_t l = 0; l < lines && ok; l++)
    {
      /* Line l: split l into (outer, inner) around the sorted dimension. */
      int64_t inner = l % st[dim], outer = l / st[dim];
      line.base = outer * len * st[dim] + inner;
      for (int64_t k = 0; k < len; k++)
        perm[k] = k;
      ok = merge_sort (perm, tmp, len, sort_less, &line, error);
      for (int64_t k = 0; k < len && ok; k++)
        for (int i = 0; i < n; i++)
          memcpy (leaves[i]->data + (line.base + k * line.stride) * line.esz[i],
                  ops[i]->data + (line.base + perm[k] * line.stride) * line.esz[i], line.esz[i]);
    }
  applier_clear (&ap);
  if (!ok)
    return FALSE;
  *out = res;
  return TRUE;
}

/* -------------------------------------------------------------- topk */

typedef struct {
  const FbLiteral *x;
  int64_t          base;
  gboolean         largest, is_float;
} TopkLine;

/* Orders NaN above every number, so it counts as largest. */
static gboolean
topk_before (gpointer data, int64_t a, int64_t b, gboolean *before, GError **error)
{
  TopkLine *t = data;
  if (t->is_float)
    {
      double va = fb_literal_get_f64 (t->x, t->base + a), vb = fb_literal_get_f64 (t->x, t->base + b);
      gboolean na = isnan (va), nb = isnan (vb);
      if (na || nb)
        *before = t->largest ? (na && !nb) : (!na && nb);
      else
        *before = t->largest ? va > vb : va < vb;
    }
  else
    {
      int64_t va = fb_literal_get_s64 (t->x, t->base + a), vb = fb_literal_get_s64 (t->x, t->base + b);
      *before = t->largest ? va > vb : va < vb;
    }
  return TRUE;
}

gboolean
_fb_interp_topk (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                 GError **error)
{
  const FbLiteral *x = ops[0];
  if (instr->n_operands < 1 || !_fb_interp_check_array (instr, x, "operand", error))
    return FALSE;
  const FbShape *s = x->shape;
  if (s->rank < 1)
    {
      _fb_interp_error (error, instr, "topk needs an operand of rank 1 or more");
      return FALSE;
    }
  FbLiteral *leaves[2];
  FbLiteral *res = new_result (ctx, instr, 2, TRUE, leaves, error);
  if (res == NULL)
    return FALSE;
  const FbShape *vs = leaves[0]->shape, *is = leaves[1]->shape;
  int r = s->rank;
  int64_t n = s->dims[r - 1];
  int64_t k = fb_instr_int (instr, FB_A_K, vs->rank == r ? vs->dims[r - 1] : -1);
  gboolean largest = fb_instr_int (instr, FB_A_LARGEST, 1) != 0;
  gboolean ok = k >= 0 && k <= n && vs->rank == r && is->rank == r && vs->dims[r - 1] == k
                && is->dims[r - 1] == k && vs->type == s->type && fb_elem_type_is_int (is->type);
  for (int d = 0; ok && d < r - 1; d++)
    ok = vs->dims[d] == s->dims[d] && is->dims[d] == s->dims[d];
  if (!ok)
    {
      _fb_interp_error (error, instr, "k=%" G_GINT64_FORMAT " must be at most %" G_GINT64_FORMAT
                        " and the results must be the operand's shape with k in the last "
                        "dimension (values, then integer indices)", k, n);
      return FALSE;
    }
  int esz = fb_elem_type_bytes (s->type);
  int64_t rows = n ? fb_shape_elements (s) / n : 0;
  g_autofree int64_t *perm = g_new (int64_t, MAX (n, 1));
  g_autofree int64_t *tmp = g_new (int64_t, MAX (n, 1));
  TopkLine line = { .x = x, .largest = largest, .is_float = fb_elem_type_is_float (s->type) };
  for (int64_t row = 0; row < rows; row++)
    {
      line.base = row * n;
      for (int64_t i = 0; i < n; i++)
        perm[i] = i;
      merge_sort (perm, tmp, n, topk_before, &line, NULL);
      for (int64_t i = 0; i < k; i++)
        {
          memcpy (leaves[0]->data + (row * k + i) * esz, x->data + (line.base + perm[i]) * esz, esz);
          fb_literal_set_s64 (leaves[1], row * k + i, perm[i]);
        }
    }
  *out = res;
  return TRUE;
}
