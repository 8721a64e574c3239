/* SPDX-License-Identifier: MIT
 *
 * Shape inference for the instructions that call computations: map,
 * scatter, reduce, reduce-window, select-and-scatter, sort, while, call,
 * fusion, conditional and the collectives. Besides the result shape, each
 * rule checks the called computation's signature against XLA's: a reducer
 * takes 2N scalars and returns N, a comparator returns pred[], a loop body
 * returns its parameter's shape, a fused computation's parameters are the
 * fusion's operands.
 */
#include <string.h>

#include "fb-shape-infer-private.h"

/* A reducer parameter or result: a scalar, or an array when allowed. */
#define REDUCER_VALUE(c, s) (is_scalar (s) || ((c)->array_reducer && is_array (s)))

/* ------------------------------------------------------------ helpers */

static FbComputation *
need_comp (FbInferCtx *c, FbAttrKey key)
{
  FbComputation *comp = fb_instr_comp (c->instr, key);
  if (comp == NULL)
    _fb_infer_fail (c, "%s needs a %s computation", opname (c), fb_attr_key_name (key));
  else if (comp->root == NULL)
    {
      _fb_infer_fail (c, "computation %s has no root", comp->name);
      return NULL;
    }
  return comp;
}

static const FbShape *
param_shape (const FbComputation *comp, int i)
{
  if (i < 0 || i >= comp->n_params || comp->params == NULL || comp->params[i] == NULL)
    return NULL;
  return comp->params[i]->shape;
}

static gboolean
check_param_count (FbInferCtx *c, const FbComputation *comp, int n, const char *role)
{
  if (comp->n_params != n)
    return _fb_infer_fail (c, "%s computation %s takes %d parameter%s but %s needs %d", role, comp->name,
                           comp->n_params, comp->n_params == 1 ? "" : "s", opname (c), n);
  for (int i = 0; i < n; i++)
    if (param_shape (comp, i) == NULL)
      return _fb_infer_fail (c, "%s computation %s has no parameter %d", role, comp->name, i);
  return TRUE;
}

/* What a called computation returns; a tuple of one element counts as the
 * element, as XLA's importers flatten it. */
static const FbShape *
result_of (const FbComputation *comp)
{
  const FbShape *r = comp->root->shape;
  return r->type == FB_TUPLE && r->n_elems == 1 ? r->elems[0] : r;
}

/* A reducer-like computation: 2N scalar parameters, the first N of
 * @acc_types and the last N compatible with @in_types (ignoring
 * floating-point precision), returning N scalars of @acc_types. */
static gboolean
check_reducer (FbInferCtx *c, const FbComputation *comp, int n, const FbElemType *acc_types,
               const FbElemType *in_types, const char *role)
{
  if (!check_param_count (c, comp, 2 * n, role))
    return FALSE;
  for (int i = 0; i < 2 * n; i++)
    {
      const FbShape *p = param_shape (comp, i);
      FbElemType want = i < n ? acc_types[i] : in_types[i - n];
      if (!REDUCER_VALUE (c, p) || !same_type_ignoring_fp (p->type, want))
        return _fb_infer_fail (c, "%s computation %s: parameter %d has shape %s but should be %s[]", role, comp->name,
                               i, _fb_infer_str (c, p), fb_elem_type_name (want));
    }
  const FbShape *r = n == 1 ? result_of (comp) : comp->root->shape;
  gboolean ok;
  if (n == 1)
    ok = REDUCER_VALUE (c, r) && same_type_ignoring_fp (r->type, acc_types[0]);
  else
    {
      ok = r->type == FB_TUPLE && r->n_elems == n;
      for (int i = 0; ok && i < n; i++)
        ok = REDUCER_VALUE (c, r->elems[i]) && same_type_ignoring_fp (r->elems[i]->type, acc_types[i]);
    }
  if (!ok)
    {
      g_autoptr (GString) want = g_string_new (n == 1 ? "" : "(");
      for (int i = 0; i < n; i++)
        g_string_append_printf (want, "%s%s[]", i ? ", " : "", fb_elem_type_name (acc_types[i]));
      if (n > 1)
        g_string_append_c (want, ')');
      return _fb_infer_fail (c, "%s computation %s returns %s but should return %s", role, comp->name,
                             _fb_infer_str (c, r), want->str);
    }
  return TRUE;
}

static FbShape *
maybe_tuple (FbInferCtx *c, int n, FbShape **elems)
{
  return n == 1 ? elems[0] : fb_shape_new_tuple (c->arena, n, elems);
}

/* ----------------------------------------------------------- elementwise */

FbShape *
_fb_infer_map (FbInferCtx *c)
{
  int n = c->instr->n_operands;
  if (n < 1)
    return _fb_infer_error (c, "map needs at least one operand");
  for (int i = 0; i < n; i++)
    {
      if (!_fb_infer_need_array (c, i))
        return NULL;
      if (!same_dims (op (c, 0), op (c, i)))
        return _fb_infer_error (c, "operand %d has shape %s but map needs the dimensions of operand 0 %s", i,
                                _fb_infer_str (c, op (c, i)), _fb_infer_str (c, op (c, 0)));
    }
  FbComputation *f = need_comp (c, FB_A_TO_APPLY);
  if (f == NULL || !check_param_count (c, f, n, "to_apply"))
    return NULL;
  for (int i = 0; i < n; i++)
    if (!is_scalar (param_shape (f, i)) || param_shape (f, i)->type != op (c, i)->type)
      return _fb_infer_error (c, "to_apply computation %s: parameter %d has shape %s but should be %s[]", f->name, i,
                              _fb_infer_str (c, param_shape (f, i)), fb_elem_type_name (op (c, i)->type));
  if (!is_scalar (result_of (f)))
    return _fb_infer_error (c, "to_apply computation %s must return a scalar, not %s", f->name,
                            _fb_infer_str (c, f->root->shape));
  return _fb_infer_with_type (c, op (c, 0), result_of (f)->type);
}

/* --------------------------------------------------------------- scatter */

FbShape *
_fb_infer_scatter (FbInferCtx *c)
{
  int n_ops = c->instr->n_operands;
  if (n_ops < 3 || n_ops % 2 == 0)
    return _fb_infer_error (
        c, "scatter needs N operands, the indices and N updates (an odd count of 3 or more), not %d", n_ops);
  int n = (n_ops - 1) / 2;
  FbElemType types[FB_INFER_MAX_RANK];
  FbShape *outs[FB_INFER_MAX_RANK];
  if (n > FB_INFER_MAX_RANK)
    return _fb_infer_error (c, "scatter has too many operands");
  for (int i = 0; i < n_ops; i++)
    if (i != n && !_fb_infer_need_array (c, i))
      return NULL;
  const FbShape *a = op (c, 0), *u0 = op (c, n + 1);
  for (int i = 0; i < n; i++)
    {
      const FbShape *ai = op (c, i), *ui = op (c, n + 1 + i);
      if (!same_dims (ai, a))
        return _fb_infer_error (c, "operand %d has shape %s but scatter needs the dimensions of operand 0 %s", i,
                                _fb_infer_str (c, ai), _fb_infer_str (c, a));
      if (!same_dims (ui, u0) || ui->type != ai->type)
        return _fb_infer_error (c, "update %d has shape %s but must have type %s and the dimensions of update 0 %s",
                                i, _fb_infer_str (c, ui), fb_elem_type_name (ai->type), _fb_infer_str (c, u0));
      types[i] = ai->type;
      outs[i] = _fb_infer_copy (c, ai);
    }
  int64_t ivd = fb_instr_int (c->instr, FB_A_INDEX_VECTOR_DIM, op (c, n)->rank);
  int64_t idims[FB_INFER_MAX_RANK];
  int irank;
  if (!_fb_infer_expand_indices (c, op (c, n), ivd, idims, &irank))
    return NULL;
  const FbDims *uwd = _fb_infer_opt_dims (c, FB_A_UPDATE_WINDOW_DIMS),
               *iwd = _fb_infer_opt_dims (c, FB_A_INSERTED_WINDOW_DIMS);
  const FbDims *map = _fb_infer_opt_dims (c, FB_A_SCATTER_DIMS_TO_OPERAND_DIMS),
               *ob = _fb_infer_opt_dims (c, FB_A_INPUT_BATCHING_DIMS);
  const FbDims *ib = _fb_infer_opt_dims (c, FB_A_SCATTER_INDICES_BATCHING_DIMS);
  if (!_fb_infer_check_dims (c, uwd, u0->rank, "update_window_dims entry")
      || !_fb_infer_check_sorted (c, uwd, "update_window_dims")
      || !_fb_infer_check_dims (c, iwd, a->rank, "inserted_window_dims entry")
      || !_fb_infer_check_sorted (c, iwd, "inserted_window_dims")
      || !_fb_infer_check_dims (c, ob, a->rank, "input_batching_dims entry")
      || !_fb_infer_check_sorted (c, ob, "input_batching_dims")
      || !_fb_infer_check_dims (c, map, a->rank, "scatter_dims_to_operand_dims entry"))
    return NULL;
  if (uwd->n + iwd->n + ob->n != a->rank)
    return _fb_infer_error (c,
                            "update_window_dims (%d) + inserted_window_dims (%d) + input_batching_dims (%d) must "
                            "equal the operand rank %d",
                            uwd->n, iwd->n, ob->n, a->rank);
  if (!dim_eq (idims[ivd], map->n))
    return _fb_infer_error (c,
                            "scatter_dims_to_operand_dims has %d entries but the index vector has %" G_GINT64_FORMAT,
                            map->n, idims[ivd]);
  for (int i = 0; i < iwd->n; i++)
    if (dims_contain (ob, iwd->v[i]))
      return _fb_infer_error (c, "inserted window dimension %" G_GINT64_FORMAT " is also a batching dimension",
                              iwd->v[i]);
  if (!_fb_infer_check_batching (c, a, ob, ib, idims, irank, ivd, "input_batching_dims",
                                 "scatter_indices_batching_dims"))
    return NULL;
  if (u0->rank != uwd->n + irank - 1)
    return _fb_infer_error (
        c, "updates %s should have rank %d (update_window_dims plus the scatter dimensions of the indices)",
        _fb_infer_str (c, u0), uwd->n + irank - 1);
  int next_win = 0, next_idx = 0;
  for (int i = 0; i < u0->rank; i++)
    {
      if (dims_contain (uwd, i))
        {
          while (dims_contain (iwd, next_win) || dims_contain (ob, next_win))
            next_win++;
          if (next_win >= a->rank || (u0->dims[i] >= 0 && a->dims[next_win] >= 0 && u0->dims[i] > a->dims[next_win]))
            return _fb_infer_error (
                c, "update window dimension %d (size %" G_GINT64_FORMAT ") does not fit operand dimension %d", i,
                u0->dims[i], next_win);
          next_win++;
        }
      else
        {
          if (next_idx == ivd)
            next_idx++;
          if (!dim_eq (u0->dims[i], idims[next_idx]))
            return _fb_infer_error (
                c, "update scatter dimension %d has size %" G_GINT64_FORMAT " but the indices have %" G_GINT64_FORMAT,
                i, u0->dims[i], idims[next_idx]);
          next_idx++;
        }
    }
  FbComputation *f = need_comp (c, FB_A_TO_APPLY);
  if (f == NULL || !check_reducer (c, f, n, types, types, "to_apply"))
    return NULL;
  return maybe_tuple (c, n, outs);
}

/* ------------------------------------------------------------ reductions */

FbShape *
_fb_infer_reduce (FbInferCtx *c)
{
  int n_ops = c->instr->n_operands;
  if (n_ops < 2 || n_ops % 2 != 0)
    return _fb_infer_error (c, "reduce needs N inputs and N init values (an even count), not %d operands", n_ops);
  int n = n_ops / 2;
  if (n > FB_INFER_MAX_RANK)
    return _fb_infer_error (c, "reduce has too many operands");
  FbElemType acc[FB_INFER_MAX_RANK], in[FB_INFER_MAX_RANK];
  FbShape *outs[FB_INFER_MAX_RANK];
  const FbDims *d = _fb_infer_need_dims (c, FB_A_DIMENSIONS);
  if (d == NULL)
    return NULL;
  for (int i = 0; i < n_ops; i++)
    if (!_fb_infer_need_array (c, i))
      return NULL;
  const FbShape *a = op (c, 0);
  if (!_fb_infer_check_dims (c, d, a->rank, "reduce dimension"))
    return NULL;
  int64_t dims[FB_INFER_MAX_RANK];
  int rank = 0;
  for (int k = 0; k < a->rank && k < FB_INFER_MAX_RANK; k++)
    if (!dims_contain (d, k))
      dims[rank++] = a->dims[k];
  for (int i = 0; i < n; i++)
    {
      const FbShape *x = op (c, i), *init = op (c, n + i);
      if (!same_dims (x, a))
        return _fb_infer_error (c, "input %d has shape %s but reduce needs the dimensions of input 0 %s", i,
                                _fb_infer_str (c, x), _fb_infer_str (c, a));
      acc[i] = init->type;
      in[i] = x->type;
      outs[i] = _fb_infer_array (c, init->type, rank, dims);
      /* XLA wants scalar init values; imported modules sometimes carry an
       * init with the result's shape and a reducer over such arrays. */
      if (!is_scalar (init) && !same_dims (init, outs[i]))
        return _fb_infer_error (c, "init value %d (operand %d) has shape %s but must be a scalar", i, n + i,
                                _fb_infer_str (c, init));
      c->array_reducer |= !is_scalar (init);
    }
  FbComputation *f = need_comp (c, FB_A_TO_APPLY);
  if (f == NULL || !check_reducer (c, f, n, acc, in, "to_apply"))
    return NULL;
  return maybe_tuple (c, n, outs);
}

FbShape *
_fb_infer_reduce_window (FbInferCtx *c)
{
  int n_ops = c->instr->n_operands;
  if (n_ops < 2 || n_ops % 2 != 0)
    return _fb_infer_error (c, "reduce-window needs N inputs and N init values, not %d operands", n_ops);
  int n = n_ops / 2;
  if (n > FB_INFER_MAX_RANK)
    return _fb_infer_error (c, "reduce-window has too many operands");
  FbElemType acc[FB_INFER_MAX_RANK], in[FB_INFER_MAX_RANK];
  FbShape *outs[FB_INFER_MAX_RANK];
  for (int i = 0; i < n_ops; i++)
    if (!_fb_infer_need_array (c, i))
      return NULL;
  const FbShape *a = op (c, 0);
  const FbAttr *w;
  if (!_fb_infer_get_window (c, a->rank, TRUE, &w))
    return NULL;
  int64_t dims[FB_INFER_MAX_RANK];
  for (int k = 0; k < a->rank && k < FB_INFER_MAX_RANK; k++)
    if (!_fb_infer_window_out (c, a->dims[k], &w->v.window.d[k], k, &dims[k]))
      return NULL;
  for (int i = 0; i < n; i++)
    {
      const FbShape *x = op (c, i), *init = op (c, n + i);
      if (!same_dims (x, a))
        return _fb_infer_error (c, "input %d has shape %s but needs the dimensions of input 0 %s", i,
                                _fb_infer_str (c, x), _fb_infer_str (c, a));
      if (!is_scalar (init))
        return _fb_infer_error (c, "init value %d has shape %s but must be a scalar", i, _fb_infer_str (c, init));
      acc[i] = init->type;
      in[i] = x->type;
      outs[i] = _fb_infer_array (c, init->type, a->rank, dims);
    }
  FbComputation *f = need_comp (c, FB_A_TO_APPLY);
  if (f == NULL || !check_reducer (c, f, n, acc, in, "to_apply"))
    return NULL;
  return maybe_tuple (c, n, outs);
}

FbShape *
_fb_infer_select_and_scatter (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 3) || !_fb_infer_need_array (c, 0) || !_fb_infer_need_array (c, 1)
      || !_fb_infer_need_array (c, 2))
    return NULL;
  const FbShape *a = op (c, 0), *src = op (c, 1), *init = op (c, 2);
  if (!is_scalar (init) || init->type != a->type)
    return _fb_infer_error (c, "init value has shape %s but must be %s[]", _fb_infer_str (c, init),
                            fb_elem_type_name (a->type));
  const FbAttr *w;
  if (!_fb_infer_get_window (c, a->rank, TRUE, &w))
    return NULL;
  int64_t dims[FB_INFER_MAX_RANK];
  for (int k = 0; k < a->rank && k < FB_INFER_MAX_RANK; k++)
    if (!_fb_infer_window_out (c, a->dims[k], &w->v.window.d[k], k, &dims[k]))
      return NULL;
  FbShape *want = _fb_infer_array (c, src->type, a->rank, dims);
  if (src->type != a->type || !same_dims (src, want))
    return _fb_infer_error (c, "source has shape %s but the window over the operand gives %s", _fb_infer_str (c, src),
                            _fb_infer_str (c, _fb_infer_with_type (c, want, a->type)));
  FbComputation *sel = need_comp (c, FB_A_SELECT);
  if (sel == NULL || !check_param_count (c, sel, 2, "select"))
    return NULL;
  for (int i = 0; i < 2; i++)
    if (!is_scalar (param_shape (sel, i)) || param_shape (sel, i)->type != a->type)
      return _fb_infer_error (c, "select computation %s: parameter %d should be %s[]", sel->name, i,
                              fb_elem_type_name (a->type));
  if (!is_scalar (result_of (sel)) || result_of (sel)->type != FB_PRED)
    return _fb_infer_error (c, "select computation %s must return pred[], not %s", sel->name,
                            _fb_infer_str (c, sel->root->shape));
  FbComputation *sc = need_comp (c, FB_A_SCATTER);
  FbElemType t = a->type;
  if (sc == NULL || !check_reducer (c, sc, 1, &t, &t, "scatter"))
    return NULL;
  return _fb_infer_copy (c, a);
}

/* ---------------------------------------------------------------- control */

FbShape *
_fb_infer_sort (FbInferCtx *c)
{
  int n = c->instr->n_operands;
  if (n < 1 || n > FB_INFER_MAX_RANK)
    return _fb_infer_error (c, "sort needs at least one operand");
  FbShape *outs[FB_INFER_MAX_RANK];
  for (int i = 0; i < n; i++)
    {
      if (!_fb_infer_need_array (c, i))
        return NULL;
      if (!same_dims (op (c, i), op (c, 0)))
        return _fb_infer_error (c, "operand %d has shape %s but sort needs the dimensions of operand 0 %s", i,
                                _fb_infer_str (c, op (c, i)), _fb_infer_str (c, op (c, 0)));
      outs[i] = _fb_infer_copy (c, op (c, i));
    }
  const FbDims *d = _fb_infer_need_dims (c, FB_A_DIMENSIONS);
  if (d == NULL)
    return NULL;
  if (d->n != 1 || d->v[0] < 0 || d->v[0] >= MAX (op (c, 0)->rank, 1))
    return _fb_infer_error (c, "sort needs one dimension below the rank %d", op (c, 0)->rank);
  FbComputation *f = need_comp (c, FB_A_TO_APPLY);
  if (f == NULL || !check_param_count (c, f, 2 * n, "comparator"))
    return NULL;
  for (int i = 0; i < 2 * n; i++)
    if (!is_scalar (param_shape (f, i)) || param_shape (f, i)->type != op (c, i / 2)->type)
      return _fb_infer_error (c, "comparator %s: parameter %d has shape %s but should be %s[]", f->name, i,
                              _fb_infer_str (c, param_shape (f, i)), fb_elem_type_name (op (c, i / 2)->type));
  if (!is_scalar (result_of (f)) || result_of (f)->type != FB_PRED)
    return _fb_infer_error (c, "comparator %s must return pred[], not %s", f->name,
                            _fb_infer_str (c, f->root->shape));
  return maybe_tuple (c, n, outs);
}

FbShape *
_fb_infer_while (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 1))
    return NULL;
  const FbShape *init = op (c, 0);
  FbComputation *cond = need_comp (c, FB_A_CONDITION);
  if (cond == NULL)
    return NULL;
  FbComputation *body = need_comp (c, FB_A_BODY);
  if (body == NULL)
    return NULL;
  if (!check_param_count (c, cond, 1, "condition") || !check_param_count (c, body, 1, "body"))
    return NULL;
  if (!_fb_infer_compatible (param_shape (cond, 0), init))
    return _fb_infer_error (c, "condition %s takes %s but the loop state is %s", cond->name,
                            _fb_infer_str (c, param_shape (cond, 0)), _fb_infer_str (c, init));
  if (!_fb_infer_compatible (param_shape (body, 0), init))
    return _fb_infer_error (c, "body %s takes %s but the loop state is %s", body->name,
                            _fb_infer_str (c, param_shape (body, 0)), _fb_infer_str (c, init));
  if (!_fb_infer_compatible (body->root->shape, init))
    return _fb_infer_error (c, "body %s returns %s but the loop state is %s", body->name,
                            _fb_infer_str (c, body->root->shape), _fb_infer_str (c, init));
  if (!is_scalar (result_of (cond)) || result_of (cond)->type != FB_PRED)
    return _fb_infer_error (c, "condition %s must return pred[], not %s", cond->name,
                            _fb_infer_str (c, cond->root->shape));
  return _fb_infer_copy (c, init);
}

/* Parameters of @comp match operands @first.. of the instruction. */
static gboolean
check_args (FbInferCtx *c, FbComputation *comp, int first, int n, const char *role)
{
  if (!check_param_count (c, comp, n, role))
    return FALSE;
  for (int i = 0; i < n; i++)
    if (!_fb_infer_compatible (param_shape (comp, i), op (c, first + i)))
      return _fb_infer_fail (c, "%s computation %s: parameter %d has shape %s but operand %d is %s", role, comp->name,
                             i, _fb_infer_str (c, param_shape (comp, i)), first + i,
                             _fb_infer_str (c, op (c, first + i)));
  return TRUE;
}

FbShape *
_fb_infer_call (FbInferCtx *c)
{
  FbComputation *f = need_comp (c, FB_A_TO_APPLY);
  if (f == NULL || !check_args (c, f, 0, c->instr->n_operands, "to_apply"))
    return NULL;
  return _fb_infer_copy (c, f->root->shape);
}

FbShape *
_fb_infer_fusion (FbInferCtx *c)
{
  FbComputation *f = need_comp (c, FB_A_CALLS);
  if (f == NULL || !check_args (c, f, 0, c->instr->n_operands, "fused"))
    return NULL;
  return _fb_infer_copy (c, f->root->shape);
}

FbShape *
_fb_infer_conditional (FbInferCtx *c)
{
  int n = c->instr->n_operands;
  if (n < 1)
    return _fb_infer_error (c, "conditional needs a predicate or branch index");
  const FbShape *p = op (c, 0);
  FbComputation *branches[2], **bs;
  int nb;
  if (is_scalar (p) && p->type == FB_PRED)
    {
      branches[0] = need_comp (c, FB_A_TRUE_COMPUTATION);
      if (branches[0] == NULL)
        return NULL;
      branches[1] = need_comp (c, FB_A_FALSE_COMPUTATION);
      if (branches[1] == NULL)
        return NULL;
      bs = branches;
      nb = 2;
    }
  else if (is_scalar (p) && p->type == FB_S32)
    {
      const FbAttr *a = fb_instr_get_attr (c->instr, FB_A_BRANCH_COMPUTATIONS);
      if (a == NULL || a->v.comps.n < 1)
        return _fb_infer_error (c, "conditional with an s32 index needs branch_computations");
      bs = a->v.comps.c;
      nb = a->v.comps.n;
      for (int i = 0; i < nb; i++)
        if (bs[i] == NULL || bs[i]->root == NULL)
          return _fb_infer_error (c, "branch %d has no computation or no root", i);
    }
  else
    return _fb_infer_error (c, "operand 0 has shape %s but conditional needs pred[] or s32[]", _fb_infer_str (c, p));
  if (n != nb + 1)
    return _fb_infer_error (c, "conditional with %d branches needs %d operands but has %d", nb, nb + 1, n);
  for (int i = 0; i < nb; i++)
    {
      if (!check_args (c, bs[i], i + 1, 1, "branch"))
        return NULL;
      if (!_fb_infer_compatible (bs[i]->root->shape, bs[0]->root->shape))
        return _fb_infer_error (c, "branch %s returns %s but branch %s returns %s", bs[i]->name,
                                _fb_infer_str (c, bs[i]->root->shape), bs[0]->name,
                                _fb_infer_str (c, bs[0]->root->shape));
    }
  return _fb_infer_copy (c, bs[0]->root->shape);
}

/* ------------------------------------------------------------ collectives */

FbShape *
_fb_infer_collective (FbInferCtx *c)
{
  FbOpcode o = c->instr->opcode;
  int n = c->instr->n_operands;
  const FbShape *out = c->instr->shape;
  FbShape *outs[FB_INFER_MAX_RANK];

  if (n < 1 || n > FB_INFER_MAX_RANK)
    return _fb_infer_error (c, "%s needs at least one operand", opname (c));
  switch (o)
    {
    case FB_OP_ALL_REDUCE:
      {
        FbElemType types[FB_INFER_MAX_RANK];
        for (int i = 0; i < n; i++)
          {
            if (!_fb_infer_need_array (c, i))
              return NULL;
            types[i] = op (c, i)->type;
            outs[i] = _fb_infer_copy (c, op (c, i));
          }
        FbComputation *f = need_comp (c, FB_A_TO_APPLY);
        if (f == NULL || !check_reducer (c, f, 1, types, types, "to_apply"))
          return NULL;
        return maybe_tuple (c, n, outs);
      }
    case FB_OP_ALL_GATHER: case FB_OP_REDUCE_SCATTER: case FB_OP_ALL_TO_ALL:
      {
        const FbDims *d = fb_instr_dims (c->instr, FB_A_DIMENSIONS);
        if (d == NULL) /* tuple all-to-all: shapes pass through */
          {
            for (int i = 0; i < n; i++)
              outs[i] = _fb_infer_copy (c, op (c, i));
            return maybe_tuple (c, n, outs);
          }
        if (d->n != 1)
          return _fb_infer_error (c, "%s needs one dimension", opname (c));
        for (int i = 0; i < n; i++)
          {
            if (!_fb_infer_need_array (c, i))
              return NULL;
            const FbShape *a = op (c, i);
            const FbShape *want = n == 1 ? out : (out->type == FB_TUPLE && i < out->n_elems ? out->elems[i] : NULL);
            int64_t cd = d->v[0];
            if (cd < 0 || cd >= a->rank)
              return _fb_infer_error (c, "dimension %" G_GINT64_FORMAT " is out of range for %s", cd,
                                      _fb_infer_str (c, a));
            if (want == NULL || !is_array (want) || want->rank != a->rank)
              return _fb_infer_error (c, "result %s does not fit operand %s", _fb_infer_str (c, want),
                                      _fb_infer_str (c, a));
            for (int k = 0; k < a->rank; k++)
              if (k != cd && !dim_eq (want->dims[k], a->dims[k]))
                return _fb_infer_error (c, "result %s must match the operand %s outside dimension %" G_GINT64_FORMAT,
                                        _fb_infer_str (c, want), _fb_infer_str (c, a), cd);
            int64_t big = o == FB_OP_ALL_GATHER ? want->dims[cd] : a->dims[cd];
            int64_t small = o == FB_OP_ALL_GATHER ? a->dims[cd] : want->dims[cd];
            if (o != FB_OP_ALL_TO_ALL && big >= 0 && small > 0 && big % small != 0)
              return _fb_infer_error (c,
                                      "%s size %" G_GINT64_FORMAT " along dimension %" G_GINT64_FORMAT
                                      " is not a multiple of %" G_GINT64_FORMAT,
                                      opname (c), big, cd, small);
            outs[i] = _fb_infer_with_type (c, want, a->type);
          }
        if (o == FB_OP_REDUCE_SCATTER)
          {
            FbElemType t = op (c, 0)->type;
            FbComputation *f = need_comp (c, FB_A_TO_APPLY);
            if (f == NULL || !check_reducer (c, f, 1, &t, &t, "to_apply"))
              return NULL;
          }
        return maybe_tuple (c, n, outs);
      }
    default: /* collective-permute, collective-broadcast: same shapes */
      for (int i = 0; i < n; i++)
        outs[i] = _fb_infer_copy (c, op (c, i));
      if (o == FB_OP_COLLECTIVE_PERMUTE && n > 1)
        return _fb_infer_copy (c, out); /* in-place form with buffers and offsets */
      return maybe_tuple (c, n, outs);
    }
}
