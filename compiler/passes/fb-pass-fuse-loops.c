/* SPDX-License-Identifier: MIT
 *
 * fuse-loops: loop fusion (kLoop). Walking from the outputs of each
 * computation back to its inputs, every elementwise or data-movement
 * instruction takes in the producers it can compute on the fly at any
 * output index: elementwise operations, broadcasts, iota, scalar constants,
 * reshapes, bitcasts, transposes, slices, pads, concatenates and converts.
 * A producer with other users is cloned into the kernel when that is cheap
 * (fb-fusion.c has the rule); reductions, dots and other heavy operations
 * stay kernels of their own.
 */
#include "fb-fusion.h"
#include "fb-passes-private.h"

static gboolean
is_loop_consumer (const FbInstr *i)
{
  if (i->opcode == FB_OP_FUSION)
    return _fb_fusion_kind_of (i) == FB_FUSION_LOOP && !_fb_fusion_is_multi_output (i)
           && _fb_fusion_owns_computation (i);
  return i->n_operands > 0 && _fb_fusion_is_loop_op (i);
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
    "them only when computing it again is cheaper than storing it; reductions and matrix "
    "products stay separate kernels.",
  .run = run,
};
