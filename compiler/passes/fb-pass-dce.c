/* SPDX-License-Identifier: MIT
 *
 * dce: dead code elimination. An instruction whose value nobody uses and
 * that is not a root, a parameter or side-effecting (rng, infeed, outfeed,
 * send/recv, collectives, custom-calls marked with side effects, and
 * while/call/conditional whose called computations hold one) is removed;
 * walking each computation from its end removes whole dead chains in one
 * sweep. Then every computation the entry cannot reach through called
 * computations is removed, fused computations of removed fusions included.
 */
#include <string.h>

#include "fb-passes-private.h"

static int
remove_dead_instrs (FbPassContext *ctx, FbComputation *comp, GHashTable *memo)
{
  int removed = 0;
  FbInstr *prev;
  for (FbInstr *i = comp->last; i; i = prev)
    {
      prev = i->prev;
      if (i->n_users > 0 || i == comp->root || i->opcode == FB_OP_PARAMETER || _fb_instr_has_side_effect_deep (i, memo))
        continue;
      fb_pass_decide (ctx, FB_DECISION_REMOVED, "unused", 1, &i, "removed %%%s: nothing uses its value", i->name);
      fb_instr_remove (i);
      removed++;
    }
  return removed;
}

static void
mark_reachable (FbComputation *comp, GHashTable *seen, int depth)
{
  if (comp == NULL || depth > 256 || g_hash_table_contains (seen, comp))
    return;
  g_hash_table_add (seen, comp);
  for (FbInstr *i = comp->first; i; i = i->next)
    for (int a = 0; a < i->n_attrs; a++)
      if (i->attrs[a].kind == FB_AV_COMP || i->attrs[a].kind == FB_AV_COMPS)
        for (int k = 0; k < i->attrs[a].v.comps.n; k++)
          mark_reachable (i->attrs[a].v.comps.c[k], seen, depth + 1);
}

static gboolean
dce_run (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error)
{
  g_autoptr (GHashTable) memo = g_hash_table_new (NULL, NULL);
  *changed = FALSE;
  for (int c = 0; c < module->n_comps; c++)
    if (remove_dead_instrs (ctx, module->comps[c], memo) > 0)
      *changed = TRUE;

  if (module->entry == NULL)
    return TRUE;
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  mark_reachable (module->entry, seen, 0);
  for (int c = module->n_comps - 1; c >= 0; c--)
    {
      FbComputation *comp = module->comps[c];
      if (g_hash_table_contains (seen, comp))
        continue;
      fb_pass_decide (ctx, FB_DECISION_REMOVED, comp->is_fusion ? "unused-fused-computation" : "unreachable-computation",
                      0, NULL, "removed computation %s: nothing calls it", comp->name);
      fb_module_remove_computation (module, comp);
      *changed = TRUE;
    }
  return TRUE;
}

const FbPass fb_pass_dce = {
  "dce",
  "dead code elimination: drop unused instructions and computations nothing calls",
  "Removes every instruction whose value no one uses, unless it is the result of its computation, a "
  "parameter, or has an effect beyond its value: random numbers (removing one would shift the random "
  "stream), host transfers (infeed, outfeed, send, recv), collectives, and custom-calls marked as "
  "having side effects. Removing an instruction can make its operands unused too; walking each "
  "computation from the end removes such chains at once. Afterwards, computations that the entry "
  "computation no longer calls, directly or indirectly (for example the fused computation of a fusion "
  "that went away), are removed as well.",
  dce_run,
};
