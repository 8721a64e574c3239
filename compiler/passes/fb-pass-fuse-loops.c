/* SPDX-License-Identifier: MIT
 *
 * fuse-loops: loop fusion (kLoop). Walking from the outputs of each
 * computation back to its inputs, every elementwise or data-movement
 * instruction takes in the producers it can compute on the fly at any
 * output index: elementwise operations, broadcasts, iota, scalar constants,
 * reshapes, bitcasts, transposes, slices, pads, concatenates and converts.
 * A producer with other users is cloned into the kernel when that is cheap
 * and the clone reads no more than it saves (fb-fusion.c has the rule);
 * reductions, dots and other heavy operations stay kernels of their own.
 *
 * Then each loop kernel takes in the row reductions it reads (the mean and
 * variance of a layer norm, the maximum and sum of a softmax) when it loops
 * over the same rows and reads each statistic through a broadcast along
 * its rows: the result is one kInput kernel that computes a row's
 * statistics while the row is in cache and then the row's outputs, so the
 * input is read from memory once instead of once per statistic.
 */
#include "fb-fusion.h"
#include "fb-passes-private.h"

#include <string.h>

static gboolean
is_loop_consumer (const FbInstr *i)
{
  if (i->opcode == FB_OP_FUSION)
    return _fb_fusion_kind_of (i) == FB_FUSION_LOOP && !_fb_fusion_is_multi_output (i)
           && _fb_fusion_owns_computation (i);
  return i->n_operands > 0 && _fb_fusion_is_loop_op (i);
}

static gboolean
dims_prefix (const FbShape *a, const FbShape *b)
{
  if (a == NULL || b == NULL || !fb_shape_is_array (a) || !fb_shape_is_array (b) || a->rank > b->rank)
    return FALSE;
  for (int d = 0; d < a->rank; d++)
    if (a->dims[d] != b->dims[d])
      return FALSE;
  return TRUE;
}

/* Is every reduce of @f a reduction of an array shaped like @rows over its
 * trailing dimensions, with one result? */
static gboolean
row_reductions_only (FbComputation *f, const FbShape *rows, const char **why)
{
  gboolean any = FALSE;
  for (FbInstr *x = f->first; x; x = x->next)
    {
      if (x->opcode != FB_OP_REDUCE)
        continue;
      any = TRUE;
      const FbDims *dims = fb_instr_dims (x, FB_A_DIMENSIONS);
      if (x->n_operands != 2 || !fb_shape_is_array (x->shape) || dims == NULL
          || !dims_prefix (x->operands[0]->shape, rows) || x->operands[0]->shape->rank != rows->rank
          || !dims_prefix (x->shape, rows) || x->shape->rank + dims->n != rows->rank)
        {
          *why = "it reduces other than along the rows the kernel loops over";
          return FALSE;
        }
      for (int k = 0; k < dims->n; k++)
        if (dims->v[k] != x->shape->rank + k)
          {
            *why = "it reduces other than along the rows the kernel loops over";
            return FALSE;
          }
    }
  if (!any)
    *why = "it holds no reduction";
  return any;
}

/* Does every use of @v inside its computation (which loops over @rows)
 * index it by the row it is in: elementwise operations on values of its
 * own shape, and broadcasts along the rows, up to values shaped like the
 * rows themselves? Then the consumer computes each statistic once per row. */
static gboolean
read_along_rows (const FbInstr *v, const FbShape *rows)
{
  if (!dims_prefix (v->shape, rows))
    return FALSE;
  for (int u = 0; u < v->n_users; u++)
    {
      const FbInstr *y = v->users[u];
      if (y->opcode == FB_OP_BROADCAST)
        {
          const FbDims *d = fb_instr_dims (y, FB_A_DIMENSIONS);
          if (d == NULL || d->n != v->shape->rank)
            return FALSE;
          for (int k = 0; k < d->n; k++)
            if (d->v[k] != k)
              return FALSE;
        }
      else if (y->opcode == FB_OP_REDUCE)
        {
          /* A row reduction of the consumer (checked by the caller) of a
           * whole row: computed once per row too. */
          if (y->n_operands != 2 || y->operands[0] != v || v->shape->rank != rows->rank)
            return FALSE;
        }
      else if (!fb_opcode_is_elementwise (y->opcode) || y->shape->rank != v->shape->rank)
        return FALSE;
      if (!read_along_rows (y, rows))
        return FALSE;
    }
  return TRUE;
}

/* The kInput fusion whose result @q is (itself, or an element of it). */
static FbInstr *
input_kernel_of (FbInstr *q)
{
  if (q->opcode == FB_OP_GET_TUPLE_ELEMENT && q->n_operands == 1)
    q = q->operands[0];
  if (q->opcode != FB_OP_FUSION || _fb_fusion_kind_of (q) != FB_FUSION_INPUT || !_fb_fusion_owns_computation (q))
    return NULL;
  return q;
}

/* Is @p a kernel of row reductions of arrays shaped like @rows? */
static gboolean
is_row_kernel (FbInstr *p, const FbShape *rows)
{
  const FbShape *space = _fb_fusion_iteration_shape (p);
  const char *what = NULL;
  return space != NULL && space->rank == rows->rank && dims_prefix (space, rows)
         && row_reductions_only (fb_instr_comp (p, FB_A_CALLS), rows, &what);
}

/* Why the row-reduction kernel @p, which @c reads, may not join @c (whose
 * rows are shaped like @rows), or NULL; fills *plan_out when it may. */
static char *
why_not_row_consumer (FbPassContext *ctx, FbInstr *c, const FbShape *rows, FbInstr *p, FbFusionPlan **plan_out)
{
  FbComputation *cf = fb_instr_comp (c, FB_A_CALLS);
  const char *what = NULL;
  if (!row_reductions_only (cf, rows, &what) && g_str_has_prefix (what, "it reduces"))
    return g_strdup_printf ("%%%s cannot compute rows one by one: %s", c->name, what);
  for (int i = 0; i < c->n_operands; i++)
    if (input_kernel_of (c->operands[i]) == p && !read_along_rows (cf->params[i], rows))
      return g_strdup_printf ("%%%s reads %%%s other than along its rows; the statistics would be "
                              "computed again for every element", c->name, c->operands[i]->name);
  g_autoptr (FbFusionPlan) plan = _fb_fusion_plan_new (c->parent);
  _fb_fusion_plan_add (plan, p, FALSE);
  _fb_fusion_plan_add (plan, c, FALSE);
  char *why = NULL;
  if (!_fb_fusion_plan_within_limits (plan, ctx, &why))
    return why;
  /* Results of @p that others read become outputs of the kernel, unless
   * one of those readers feeds @c. */
  FbInstr *via = NULL;
  if (!_fb_fusion_plan_is_convex (plan, &via))
    return g_strdup_printf ("%%%s also reaches %%%s through %%%s, outside the fusion, which would create a cycle",
                            p->name, c->name, via->name);
  *plan_out = g_steal_pointer (&plan);
  return NULL;
}

/* Takes into the loop kernel @c the row reductions it reads, one at a
 * time, for as long as there are some it may take; the refusals that
 * still stand at the end are recorded. */
static void
take_row_reductions (FbPassContext *ctx, FbInstr *c, gboolean *changed)
{
  g_autofree char *hero = g_strdup (c->name);
  const FbShape *rows = fb_shape_copy (c->parent->module->arena, c->shape);
  g_autoptr (GPtrArray) refused = g_ptr_array_new ();
  g_autoptr (GPtrArray) reasons = g_ptr_array_new_with_free_func (g_free);
  for (;;)
    {
      FbInstr *p = NULL;
      FbFusionPlan *plan = NULL;
      g_ptr_array_set_size (refused, 0);
      g_ptr_array_set_size (reasons, 0);
      for (int i = 0; i < c->n_operands && p == NULL; i++)
        {
          FbInstr *q = input_kernel_of (c->operands[i]);
          if (q == NULL || q->parent != c->parent || g_ptr_array_find (refused, q, NULL) || !is_row_kernel (q, rows))
            continue;
          char *why = why_not_row_consumer (ctx, c, rows, q, &plan);
          if (why == NULL)
            p = q;
          else
            {
              g_ptr_array_add (refused, q);
              g_ptr_array_add (reasons, why);
            }
        }
      if (p == NULL)
        break;
      g_autofree char *pname = g_strdup (p->name);
      g_autofree char *space = fb_shape_to_string (rows);
      c = _fb_fusion_plan_build (plan, FB_FUSION_INPUT);
      _fb_fusion_plan_free (plan);
      *changed = TRUE;
      fb_pass_decide (ctx, FB_DECISION_FUSED, "row-consumer", 1, &c,
                      "fused the row reductions %%%s into their consumer %%%s (kInput %%%s): each row of "
                      "%s is reduced and then used while it is in cache, not read again from memory",
                      pname, hero, c->name, space);
    }
  for (guint k = 0; k < refused->len; k++)
    {
      FbInstr *pair[2] = { g_ptr_array_index (refused, k), c };
      fb_pass_decide (ctx, FB_DECISION_REFUSED, "row-consumer", 2, pair,
                      "did not fuse the row reductions %%%s into their consumer %%%s: %s",
                      pair[0]->name, hero, (const char *) g_ptr_array_index (reasons, k));
    }
}

static gboolean
run (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error)
{
  g_autoptr (GPtrArray) comps = _fb_fusion_control_computations (module);
  *changed = FALSE;
  _fb_fusion_pass_begin (module);
  for (guint c = 0; c < comps->len; c++)
    {
      FbComputation *comp = g_ptr_array_index (comps, c);
      g_autoptr (GPtrArray) order = g_ptr_array_new ();
      for (FbInstr *i = comp->first; i; i = i->next)
        g_ptr_array_add (order, i);
      /* Consumers before their producers: outputs first. */
      for (int k = (int) order->len - 1; k >= 0; k--)
        {
          FbInstr *i = g_ptr_array_index (order, k);
          if (i->parent != comp || !is_loop_consumer (i))
            continue;
          _fb_fusion_grow (ctx, i, FB_FUSION_LOOP, FALSE, changed);
        }
      g_ptr_array_set_size (order, 0);
      for (FbInstr *i = comp->first; i; i = i->next)
        if (i->opcode == FB_OP_FUSION && _fb_fusion_kind_of (i) == FB_FUSION_LOOP && !_fb_fusion_is_multi_output (i)
            && _fb_fusion_owns_computation (i))
          g_ptr_array_add (order, i);
      for (int k = (int) order->len - 1; k >= 0; k--)
        {
          FbInstr *i = g_ptr_array_index (order, k);
          if (i->parent == comp)
            take_row_reductions (ctx, i, changed);
        }
    }
  _fb_fusion_pass_end ();
  return TRUE;
}

const FbPass fb_pass_fuse_loops = {
  .name = "fuse-loops",
  .summary = "Fuse elementwise and data-movement chains into loop kernels (kLoop)",
  .explain =
    "Every instruction a kernel computes on its own writes its result to memory and the next "
    "kernel reads it back. When a consumer can compute its producer's value at any index on the "
    "fly (elementwise arithmetic, broadcasts, reshapes, transposes, slices, pads, concatenates, "
    "converts), the two become one loop over the output: the intermediate never touches memory "
    "and one launch disappears. A producer that several consumers use is copied into each of "
    "them only when computing it again is cheaper than storing it and the copy reads no more "
    "than it saves (x * 0.5 is copied, y + z is not: each copy would read two tensors to save "
    "one); reductions and matrix "
    "products stay separate kernels. Last, a loop kernel that reads row statistics (the mean "
    "and variance of a layer norm, the maximum and sum of a softmax) along the rows it loops "
    "over takes in the reduction kernels that compute them: each row is then reduced and used "
    "while it is still in cache, and the input is read from memory once instead of once per "
    "statistic.",
  .run = run,
};
