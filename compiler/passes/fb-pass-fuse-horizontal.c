/* SPDX-License-Identifier: MIT
 *
 * fuse-horizontal: horizontal fusion. A training step ends with many small
 * kernels that do not depend on each other: one optimizer update per
 * weight. Each costs a launch, which for small tensors is more than the
 * work. This pass groups independent small loop kernels into one
 * multi-output kLoop fusion (a tuple root; no concatenation is needed), so
 * they run as one launch. Kernels whose results only leave the computation
 * (the new weights of a step) are grouped among themselves first, then the
 * other small kernels; a group is limited by its operands, instructions
 * and bytes.
 */
#include "fb-fusion.h"
#include "fb-passes-private.h"

#define MAX_KERNEL_BYTES (16.0 * 1024 * 1024)   /* "small": at most this much output */
#define MAX_GROUP_BYTES (64.0 * 1024 * 1024)    /* operands and outputs of one group */
#define MAX_GROUP_MEMBERS 64

typedef struct {
  GPtrArray  *members;
  GHashTable *reach;     /* every instruction that depends on a member or a member depends on */
  double      bytes;
} Group;

static void
group_free (Group *g)
{
  g_ptr_array_unref (g->members);
  g_hash_table_unref (g->reach);
  g_free (g);
}

static gboolean
is_small_kernel (const FbInstr *i)
{
  if (i->opcode == FB_OP_FUSION)
    {
      if (_fb_fusion_kind_of (i) != FB_FUSION_LOOP || !_fb_fusion_owns_computation (i))
        return FALSE;
    }
  else if (!_fb_fusion_is_loop_op (i) || i->n_operands == 0 || i->opcode == FB_OP_BITCAST
           || i->opcode == FB_OP_RESHAPE)
    return FALSE;
  return (double) fb_shape_bytes (i->shape) <= MAX_KERNEL_BYTES;
}

/* Does the result only leave the computation (through the root tuple)? */
static gboolean
feeds_only_root (const FbInstr *i)
{
  FbComputation *comp = i->parent;
  if (i->n_users == 0)
    return comp->root == i;
  for (int u = 0; u < i->n_users; u++)
    {
      const FbInstr *y = i->users[u];
      if (y->opcode == FB_OP_GET_TUPLE_ELEMENT)
        {
          if (!feeds_only_root (y))
            return FALSE;
        }
      else if (y != comp->root)
        return FALSE;
    }
  return TRUE;
}

/* Adds to @set everything reachable from @start along users (down) or operands (up). */
static void
mark (GHashTable *set, FbInstr *start, gboolean down)
{
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_ptr_array_add (stack, start);
  while (stack->len > 0)
    {
      FbInstr *x = g_ptr_array_steal_index_fast (stack, stack->len - 1);
      int n = down ? x->n_users : x->n_operands;
      for (int k = 0; k < n; k++)
        {
          FbInstr *y = down ? x->users[k] : x->operands[k];
          if (y && !g_hash_table_contains (set, y))
            {
              g_hash_table_add (set, y);
              g_ptr_array_add (stack, y);
            }
        }
    }
}

static double
kernel_bytes (FbInstr *k)
{
  double b = (double) fb_shape_bytes (k->shape);
  for (int i = 0; i < k->n_operands; i++)
    b += (double) fb_shape_bytes (k->operands[i]->shape);
  return b;
}

static char *
why_not_join (FbPassContext *ctx, Group *g, FbInstr *k)
{
  if (g_hash_table_contains (g->reach, k))
    return g_strdup_printf ("it depends on the group or the group depends on it");
  if (g->members->len >= MAX_GROUP_MEMBERS)
    return g_strdup_printf ("the group already holds %d kernels", MAX_GROUP_MEMBERS);
  double bytes = g->bytes + kernel_bytes (k);
  if (bytes > MAX_GROUP_BYTES)
    {
      g_autofree char *a = _fb_fusion_format_bytes (bytes);
      g_autofree char *b = _fb_fusion_format_bytes (MAX_GROUP_BYTES);
      return g_strdup_printf ("the group would move %s, over the %s limit", a, b);
    }
  g_autoptr (FbFusionPlan) plan = _fb_fusion_plan_new (k->parent);
  for (guint i = 0; i < g->members->len; i++)
    _fb_fusion_plan_add (plan, g_ptr_array_index (g->members, i), FALSE);
  _fb_fusion_plan_add (plan, k, FALSE);
  char *why = NULL;
  if (!_fb_fusion_plan_within_limits (plan, ctx, &why))
    return why;
  return NULL;
}

static void
group_add (Group *g, FbInstr *k)
{
  g_ptr_array_add (g->members, k);
  g_hash_table_add (g->reach, k);
  mark (g->reach, k, TRUE);
  mark (g->reach, k, FALSE);
  g->bytes += kernel_bytes (k);
}

static void
fuse_class (FbPassContext *ctx, FbComputation *comp, GPtrArray *kernels, const char *what, gboolean *changed)
{
  g_autoptr (GPtrArray) groups = g_ptr_array_new_with_free_func ((GDestroyNotify) group_free);
  for (guint k = 0; k < kernels->len; k++)
    {
      FbInstr *kern = g_ptr_array_index (kernels, k);
      g_autofree char *first_why = NULL;
      FbInstr *first_head = NULL;
      gboolean joined = FALSE;
      for (guint gi = 0; gi < groups->len && !joined; gi++)
        {
          Group *g = g_ptr_array_index (groups, gi);
          char *why = why_not_join (ctx, g, kern);
          if (why == NULL)
            {
              group_add (g, kern);
              joined = TRUE;
            }
          else if (first_why == NULL)
            {
              first_why = why;
              first_head = g_ptr_array_index (g->members, 0);
            }
          else
            g_free (why);
        }
      if (joined)
        continue;
      if (first_why)
        {
          FbInstr *pair[2] = { kern, first_head };
          fb_pass_decide (ctx, FB_DECISION_REFUSED, "not-independent-or-too-large", 2, pair,
                          "did not merge %%%s into the horizontal group of %%%s: %s",
                          kern->name, first_head->name, first_why);
        }
      Group *g = g_new0 (Group, 1);
      g->members = g_ptr_array_new ();
      g->reach = g_hash_table_new (NULL, NULL);
      group_add (g, kern);
      g_ptr_array_add (groups, g);
    }

  for (guint gi = 0; gi < groups->len; gi++)
    {
      Group *g = g_ptr_array_index (groups, gi);
      if (g->members->len < 2)
        continue;
      g_autoptr (FbFusionPlan) plan = _fb_fusion_plan_new (comp);
      for (guint i = 0; i < g->members->len; i++)
        _fb_fusion_plan_add (plan, g_ptr_array_index (g->members, i), FALSE);
      g_autofree char *names = _fb_fusion_names ((FbInstr *const *) g->members->pdata, g->members->len);
      int n = g->members->len;
      FbInstr *via = NULL;
      /* Groups built before this one may have tied it to itself. */
      if (!_fb_fusion_plan_is_convex (plan, &via))
        {
          FbInstr *head = g_ptr_array_index (g->members, 0);
          fb_pass_decide (ctx, FB_DECISION_REFUSED, "would-create-cycle", (int) g->members->len,
                          (FbInstr *const *) g->members->pdata,
                          "did not merge %s: after the groups merged before, %%%s would depend on %%%s and feed it",
                          names, via->name, head->name);
          continue;
        }
      FbInstr *fusion = _fb_fusion_plan_build (plan, FB_FUSION_LOOP);
      *changed = TRUE;
      fb_pass_decide (ctx, FB_DECISION_FUSED, "horizontal", 1, &fusion,
                      "merged %d independent %s %s into %%%s (kLoop, one launch instead of %d)",
                      n, what, names, fusion->name, n);
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
      g_autoptr (GPtrArray) outputs = g_ptr_array_new ();
      g_autoptr (GPtrArray) others = g_ptr_array_new ();
      for (FbInstr *i = comp->first; i; i = i->next)
        if (is_small_kernel (i))
          g_ptr_array_add (feeds_only_root (i) ? outputs : others, i);
      fuse_class (ctx, comp, outputs, "kernels producing results", changed);
      /* Kernels merged above are gone; the rest keep their pointers. */
      g_autoptr (GPtrArray) alive = g_ptr_array_new ();
      for (guint k = 0; k < others->len; k++)
        if (((FbInstr *) g_ptr_array_index (others, k))->parent == comp)
          g_ptr_array_add (alive, g_ptr_array_index (others, k));
      fuse_class (ctx, comp, alive, "small kernels", changed);
    }
  _fb_fusion_pass_end ();
  return TRUE;
}

const FbPass fb_pass_fuse_horizontal = {
  .name = "fuse-horizontal",
  .summary = "Merge independent small kernels, such as per-weight optimizer updates, into one launch",
  .explain =
    "Launching a kernel has a fixed cost, and a training step ends with one small update kernel "
    "per weight tensor. None of them needs another's result, so they can run side by side as a "
    "single kernel with one output per update. This pass groups independent small loop kernels "
    "that way, keeping each group under the limits on operands, instructions and bytes moved.",
  .run = run,
};
