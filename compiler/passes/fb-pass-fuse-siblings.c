/* SPDX-License-Identifier: MIT
 *
 * fuse-siblings: multi-output sibling fusion. When several kernels read the
 * same large tensor (two reductions of one activation, a reduction and an
 * elementwise op of it), each of them reads it from memory. Merged into one
 * multi-output fusion (a tuple root, users through get-tuple-element), the
 * tensor is read once. Kernels merge only when neither depends on the
 * other, when they loop over the same index space, and within the limits
 * on operands and instructions.
 */
#include "fb-fusion.h"
#include "fb-fusion-private.h"
#include "fb-passes-private.h"

/* Below this, reading an operand twice costs less than a launch is worth. */
#define MIN_SHARED_BYTES 1024

static gboolean
is_sibling_kernel (const FbInstr *i)
{
  if (i->opcode == FB_OP_FUSION)
    {
      FbFusionKind k = _fb_fusion_kind_of (i);
      return (k == FB_FUSION_LOOP || k == FB_FUSION_INPUT) && _fb_fusion_owns_computation (i);
    }
  if (i->opcode == FB_OP_REDUCE)
    return TRUE;
  return _fb_fusion_is_loop_op (i) && i->n_operands > 0 && i->opcode != FB_OP_BITCAST
         && i->opcode != FB_OP_RESHAPE;
}

static gboolean
same_dims (const FbShape *a, const FbShape *b)
{
  if (a == NULL || b == NULL || a->rank != b->rank)
    return FALSE;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i])
      return FALSE;
  return TRUE;
}

static gboolean
is_input_kind (const FbInstr *i)
{
  return i->opcode == FB_OP_REDUCE || (i->opcode == FB_OP_FUSION && _fb_fusion_kind_of (i) == FB_FUSION_INPUT);
}

static void
fuse_users_of (FbPassContext *ctx, FbInstr *x, FbFusionHubs **hubs, gboolean *changed)
{
  FbComputation *comp = x->parent;
  g_autoptr (GPtrArray) kernels = g_ptr_array_new ();
  for (int u = 0; u < x->n_users; u++)
    if (x->users[u]->parent == comp && is_sibling_kernel (x->users[u]))
      g_ptr_array_add (kernels, x->users[u]);
  if (kernels->len < 2)
    return;

  g_autoptr (GPtrArray) group = g_ptr_array_new ();
  g_autoptr (FbFusionPlan) plan = _fb_fusion_plan_new (comp);
  g_autofree char *size = NULL;   /* of @x, for messages: made when first needed */
  FbInstr *first = g_ptr_array_index (kernels, 0);
  const FbShape *space = _fb_fusion_iteration_shape (first);
  g_ptr_array_add (group, first);
  _fb_fusion_plan_add (plan, first, FALSE);
  /* Only kernels over the same index space as the first may join: the
   * dependences that matter are among them, and the walks that find them
   * stay between the first and the last of them. */
  g_autoptr (GPtrArray) alike = g_ptr_array_new ();
  for (guint k = 0; k < kernels->len; k++)
    if (k == 0 || same_dims (space, _fb_fusion_iteration_shape (g_ptr_array_index (kernels, k))))
      g_ptr_array_add (alike, g_ptr_array_index (kernels, k));
  g_autoptr (FbFusionRelated) rel = _fb_fusion_related_new (comp, (FbInstr *const *) alike->pdata, alike->len);
  /* Certificates of dependence, shared by the groups of the computation. */
  if (*hubs == NULL)
    *hubs = _fb_fusion_hubs_new (comp);
  _fb_fusion_related_use_hubs (rel, *hubs);
  _fb_fusion_related_add (rel, first);

  for (guint k = 1; k < kernels->len; k++)
    {
      FbInstr *s = g_ptr_array_index (kernels, k);
      g_autofree char *why = NULL;
      const char *rule = "siblings-dependent";
      const FbShape *sp = _fb_fusion_iteration_shape (s);
      if (!same_dims (space, sp))
        {
          g_autofree char *a = space ? fb_shape_to_string (space) : g_strdup ("?");
          g_autofree char *b = sp ? fb_shape_to_string (sp) : g_strdup ("?");
          rule = "different-index-space";
          why = g_strdup_printf ("they loop over different index spaces, %s and %s", a, b);
        }
      gboolean s_depends = FALSE;
      int related = why ? -1 : _fb_fusion_related_first (rel, s, &s_depends);
      if (related >= 0)
        {
          FbInstr *o = g_ptr_array_index (group, related);
          if (s_depends)
            why = g_strdup_printf ("%%%s depends on %%%s", s->name, o->name);
          else
            why = g_strdup_printf ("%%%s depends on %%%s", o->name, s->name);
        }
      if (why == NULL)
        {
          g_autoptr (FbFusionPlan) bigger = _fb_fusion_plan_new (comp);
          for (guint g = 0; g < group->len; g++)
            _fb_fusion_plan_add (bigger, g_ptr_array_index (group, g), FALSE);
          _fb_fusion_plan_add (bigger, s, FALSE);
          if (!_fb_fusion_plan_within_limits (bigger, ctx, &why))
            rule = "kernel-too-large";
          else if (!_fb_fusion_plan_is_convex (bigger, NULL))
            {
              rule = "would-create-cycle";
              why = g_strdup ("merging them would create a cycle through another kernel");
            }
          else
            {
              _fb_fusion_plan_free (plan);
              plan = g_steal_pointer (&bigger);
              g_ptr_array_add (group, s);
              _fb_fusion_related_add (rel, s);
              continue;
            }
        }
      FbInstr *pair[2] = { first, s };
      if (size == NULL)
        size = _fb_fusion_format_bytes ((double) fb_shape_bytes (x->shape));
      fb_pass_decide (ctx, FB_DECISION_REFUSED, rule, 2, pair,
                      "did not fuse siblings %%%s and %%%s, which both read %%%s (%s): %s",
                      first->name, s->name, x->name, size, why);
    }
  if (group->len < 2)
    return;

  FbFusionKind kind = FB_FUSION_LOOP;
  for (guint g = 0; g < group->len; g++)
    if (is_input_kind (g_ptr_array_index (group, g)))
      kind = FB_FUSION_INPUT;
  g_autofree char *names = _fb_fusion_names ((FbInstr *const *) group->pdata, group->len);
  if (size == NULL)
    size = _fb_fusion_format_bytes ((double) fb_shape_bytes (x->shape));
  g_autofree char *xname = g_strdup (x->name);
  int n = group->len;
  FbInstr *fusion = _fb_fusion_plan_build (plan, kind);
  *changed = TRUE;
  fb_pass_decide (ctx, FB_DECISION_FUSED, "siblings", 1, &fusion,
                  "fused siblings %s, which all read %%%s (%s), into the multi-output %%%s (%s): "
                  "%%%s is read once instead of %d times",
                  names, xname, size, fusion->name, _fb_fusion_kind_name (kind), xname, n);
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
      g_autoptr (FbFusionHubs) hubs = NULL;   /* made by the first group */
      for (FbInstr *i = comp->first; i; i = i->next)
        if (fb_shape_is_array (i->shape) && fb_shape_bytes (i->shape) >= MIN_SHARED_BYTES && i->n_users >= 2)
          g_ptr_array_add (order, i);
      for (guint k = 0; k < order->len; k++)
        {
          FbInstr *x = g_ptr_array_index (order, k);
          if (x->parent == comp)
            fuse_users_of (ctx, x, &hubs, changed);
        }
    }
  _fb_fusion_pass_end ();
  return TRUE;
}

const FbPass fb_pass_fuse_siblings = {
  .name = "fuse-siblings",
  .summary = "Merge kernels that read the same large tensor into one multi-output kernel",
  .explain =
    "Two kernels that read the same tensor, for example the mean and the variance of one "
    "activation, or a reduction and an elementwise op of the same input, each pull that tensor "
    "from memory. If neither needs the other's result and both walk over the same indices, they "
    "can run as one kernel with two outputs that reads the tensor once. This pass finds such "
    "siblings and merges them, within the limits on a kernel's operands and size.",
  .run = run,
};
