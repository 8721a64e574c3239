/* SPDX-License-Identifier: MIT
 *
 * fuse-reductions: input fusion (kInput). Every reduce takes in the
 * elementwise producers of its input, so that the tensor it reduces is
 * computed while it is read and never stored: the softmax row (max, then
 * the sum of exp (x - max)) and the layer-norm statistics (mean, then the
 * variance of x - mean) each become one kernel per reduction. A producer
 * that other kernels also read is cloned when cheap, or else written as an
 * extra output of the reduction kernel when it loops over the same indices.
 * The elementwise consumers of the row statistics are left to fuse-loops,
 * which afterwards also takes these kernels into their consumers.
 */
#include "fb-fusion.h"
#include "fb-passes-private.h"

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
        if (i->opcode == FB_OP_REDUCE)
          g_ptr_array_add (order, i);
      for (guint k = 0; k < order->len; k++)
        {
          FbInstr *r = g_ptr_array_index (order, k);
          if (r->parent != comp)
            continue;
          FbInstr *f = _fb_fusion_grow (ctx, r, FB_FUSION_INPUT, TRUE, changed);
          if (f == r)
            fb_pass_decide (ctx, FB_DECISION_NOTE, "nothing-to-fuse", 1, &r,
                            "%%%s reads its input straight from memory: no producer could be fused into it",
                            r->name);
        }
    }
  _fb_fusion_pass_end ();
  return TRUE;
}

const FbPass fb_pass_fuse_reductions = {
  .name = "fuse-reductions",
  .summary = "Fuse reductions with the elementwise producers of their input (kInput)",
  .explain =
    "A reduction such as a row sum reads a whole tensor to produce a small one. If that tensor "
    "is itself computed elementwise (x - max, then exp, as in softmax; or (x - mean)^2 in layer "
    "normalisation), the reduction kernel can compute it on the fly while reading x, so the "
    "large intermediate is never written to memory. Softmax then takes one kernel for the row "
    "maximum, one for the row sum and one for the final division, instead of one per operation; "
    "fuse-loops later merges the three when the division reads the statistics along its rows.",
  .run = run,
};
