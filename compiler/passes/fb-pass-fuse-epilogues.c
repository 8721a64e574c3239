/* SPDX-License-Identifier: MIT
 *
 * fuse-epilogues: output fusion (kOutput). A dot or convolution is followed
 * by elementwise work on its result: the bias add (a broadcast add), an
 * activation (relu as maximum with 0, the gelu chain, logistic, tanh), a
 * scale. Doing that work while the product is still in registers saves
 * writing and reading the whole output again. This pass grows, from each
 * dot or convolution, the set of elementwise instructions over the same
 * index space whose other operands do not depend on the product, and makes
 * them one kOutput fusion whose root is the last of them; values also used
 * outside (a pre-activation the backward pass needs) become extra outputs.
 */
#include <stdlib.h>

#include "fb-fusion.h"
#include "fb-passes-private.h"

#define MAX_EPILOGUE 24

static gboolean
same_dims (const FbShape *a, const FbShape *b)
{
  if (!fb_shape_is_array (a) || !fb_shape_is_array (b) || a->rank != b->rank)
    return FALSE;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i])
      return FALSE;
  return TRUE;
}

/* Why @u cannot join the epilogue of @plan, or NULL when it can. */
static char *
why_not (FbFusionPlan *plan, FbInstr *dot, FbInstr *u)
{
  if (u->opcode == FB_OP_TUPLE || u->opcode == FB_OP_GET_TUPLE_ELEMENT)
    return g_strdup ("");   /* plain reads, nothing to say */
  if (!fb_opcode_is_elementwise (u->opcode) || u->opcode == FB_OP_MAP)
    return g_strdup_printf ("%s is not elementwise", fb_opcode_name (u->opcode));
  if (!same_dims (u->shape, dot->shape))
    {
      g_autofree char *a = fb_shape_to_string (u->shape);
      g_autofree char *b = fb_shape_to_string (dot->shape);
      return g_strdup_printf ("its shape %s is not the product's %s", a, b);
    }
  if (_fb_fusion_plan_size (plan) >= MAX_EPILOGUE)
    return g_strdup_printf ("the epilogue already holds %d instructions", MAX_EPILOGUE);
  for (int i = 0; i < u->n_operands; i++)
    {
      FbInstr *o = u->operands[i];
      if (_fb_fusion_plan_has (plan, o))
        continue;
      if (_fb_fusion_reaches (dot, o))
        return g_strdup_printf ("its operand %%%s depends on %%%s through instructions outside the epilogue",
                                o->name, dot->name);
    }
  return NULL;
}

static int
by_id (const void *a, const void *b)
{
  const FbInstr *x = *(FbInstr *const *) a, *y = *(FbInstr *const *) b;
  if (x->id != y->id)
    return x->id < y->id ? -1 : 1;
  return g_strcmp0 (x->name, y->name);
}

static void
fuse_epilogue (FbPassContext *ctx, FbInstr *dot, gboolean *changed)
{
  FbComputation *comp = dot->parent;
  g_autoptr (FbFusionPlan) plan = _fb_fusion_plan_new (comp);
  g_autoptr (GPtrArray) added = g_ptr_array_new ();
  g_autoptr (GHashTable) refused = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  _fb_fusion_plan_add (plan, dot, FALSE);

  /* Breadth first over users; a user joins once all its operands are in
   * the epilogue or independent of the product. */
  gboolean grew = TRUE;
  while (grew)
    {
      grew = FALSE;
      for (guint k = 0; k <= added->len && !grew; k++)
        {
          FbInstr *m = k == 0 ? dot : g_ptr_array_index (added, k - 1);
          for (int u = 0; u < m->n_users && !grew; u++)
            {
              FbInstr *y = m->users[u];
              if (_fb_fusion_plan_has (plan, y))
                continue;
              char *why = why_not (plan, dot, y);
              if (why)
                {
                  g_hash_table_insert (refused, y, why);
                  continue;
                }
              g_hash_table_remove (refused, y);
              _fb_fusion_plan_add (plan, y, FALSE);
              g_ptr_array_add (added, y);
              grew = TRUE;
            }
        }
    }

  /* Shrink from the end until the plan is legal. */
  char *limit_why = NULL;
  while (added->len > 0)
    {
      g_clear_pointer (&limit_why, g_free);
      if (_fb_fusion_plan_is_convex (plan, NULL) && _fb_fusion_plan_within_limits (plan, ctx, &limit_why))
        break;
      FbInstr *last = g_ptr_array_index (added, added->len - 1);
      g_hash_table_insert (refused, last,
                           limit_why ? g_steal_pointer (&limit_why)
                                     : g_strdup ("it would make the kernel feed itself through an outside instruction"));
      g_ptr_array_set_size (added, added->len - 1);
      g_autoptr (FbFusionPlan) smaller = _fb_fusion_plan_new (comp);
      _fb_fusion_plan_add (smaller, dot, FALSE);
      for (guint k = 0; k < added->len; k++)
        _fb_fusion_plan_add (smaller, g_ptr_array_index (added, k), FALSE);
      _fb_fusion_plan_free (plan);
      plan = g_steal_pointer (&smaller);
    }
  g_clear_pointer (&limit_why, g_free);

  /* Refusals in the order of the instructions, not of the table. */
  guint n_refused = 0;
  g_autofree gpointer *keys = g_hash_table_get_keys_as_array (refused, &n_refused);
  qsort (keys, n_refused, sizeof (gpointer), by_id);
  for (guint r = 0; r < n_refused; r++)
    {
      FbInstr *y = keys[r];
      const char *why = g_hash_table_lookup (refused, y);
      if (*why == '\0')
        continue;
      FbInstr *pair[2] = { y, dot };
      fb_pass_decide (ctx, FB_DECISION_REFUSED, "not-an-epilogue", 2, pair,
                      "did not fuse %%%s into the epilogue of %%%s: %s", y->name, dot->name, why);
    }
  if (added->len == 0)
    return;

  /* Bias and scale broadcasts go in too (cloned when shared). */
  for (guint k = 0; k < added->len; k++)
    {
      FbInstr *m = g_ptr_array_index (added, k);
      for (int i = 0; i < m->n_operands; i++)
        {
          FbInstr *o = m->operands[i];
          if (_fb_fusion_plan_has (plan, o) || o->parent != comp)
            continue;
          gboolean side = o->opcode == FB_OP_BROADCAST
                          || (o->opcode == FB_OP_CONSTANT && fb_shape_is_array (o->shape)
                              && fb_shape_elements (o->shape) == 1);
          gboolean dup = FALSE;
          g_autofree char *why = NULL;
          if (side && _fb_fusion_check_users (o, m, ctx, &dup, &why))
            _fb_fusion_plan_add (plan, o, dup);
        }
    }

  g_autofree char *names = _fb_fusion_names ((FbInstr *const *) added->pdata, added->len);
  g_autofree char *dot_name = g_strdup (dot->name);
  FbInstr *fusion = _fb_fusion_plan_build (plan, FB_FUSION_OUTPUT);
  *changed = TRUE;
  fb_pass_decide (ctx, FB_DECISION_FUSED, "epilogue", 1, &fusion,
                  "fused the epilogue %s of %%%s into %%%s (kOutput%s)", names, dot_name, fusion->name,
                  _fb_fusion_is_multi_output (fusion) ? ", several outputs" : "");
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
      g_autoptr (GPtrArray) dots = g_ptr_array_new ();
      for (FbInstr *i = comp->first; i; i = i->next)
        if ((i->opcode == FB_OP_DOT || i->opcode == FB_OP_CONVOLUTION) && fb_shape_is_array (i->shape))
          g_ptr_array_add (dots, i);
      for (guint k = 0; k < dots->len; k++)
        {
          FbInstr *d = g_ptr_array_index (dots, k);
          if (d->parent == comp)
            fuse_epilogue (ctx, d, changed);
        }
    }
  _fb_fusion_pass_end ();
  return TRUE;
}

const FbPass fb_pass_fuse_epilogues = {
  .name = "fuse-epilogues",
  .summary = "Fuse a dot or convolution with the bias add and activation after it (kOutput)",
  .explain =
    "A matrix product is usually followed by a bias add and an activation such as relu or gelu. "
    "Run separately, each of them reads and writes the whole output of the product again. Fused "
    "as an epilogue, they are applied to each tile of the product while it is still in "
    "registers, so the output is written once, already activated. Only elementwise work over the "
    "same indices can go in, and only when its other inputs (the bias) do not depend on the "
    "product.",
  .run = run,
};
