/* SPDX-License-Identifier: MIT
 *
 * Statistics of a snapshot: instructions, kernels launched per step,
 * estimated FLOPs and bytes moved (cost model), and peak memory (buffer
 * plan). These are the numbers the pipeline table and the workbench show
 * for every pass.
 */
#include <string.h>

#include "fb-buffers.h"
#include "fb-cost.h"
#include "fb-pass.h"

static gboolean
launches_nothing (const FbInstr *i)
{
  switch (i->opcode)
    {
    case FB_OP_PARAMETER:
    case FB_OP_CONSTANT:
    case FB_OP_TUPLE:
    case FB_OP_GET_TUPLE_ELEMENT:
    case FB_OP_BITCAST:
    case FB_OP_AFTER_ALL:
    case FB_OP_ADD_DEPENDENCY:
    case FB_OP_OPTIMIZATION_BARRIER:
    case FB_OP_DOMAIN:
    case FB_OP_PARTITION_ID:
    case FB_OP_REPLICA_ID:
      return TRUE;
    case FB_OP_RESHAPE:
      /* A row-major reshape moves no data: it is a bitcast. */
      return TRUE;
    default:
      return FALSE;
    }
}

static int
count_kernels (FbComputation *comp, int depth)
{
  int n = 0;
  if (depth > 32)
    return 0;
  for (FbInstr *i = comp->first; i; i = i->next)
    {
      if (launches_nothing (i))
        continue;
      if (i->opcode == FB_OP_WHILE || i->opcode == FB_OP_CALL || i->opcode == FB_OP_CONDITIONAL)
        {
          FbComputation *called[16];
          int k = fb_instr_called (i, called, G_N_ELEMENTS (called));
          for (int c = 0; c < MIN (k, (int) G_N_ELEMENTS (called)); c++)
            if (called[c])
              n += count_kernels (called[c], depth + 1);
          continue;
        }
      n++;
    }
  return n;
}

int
fb_module_kernel_count (FbModule *module)
{
  return module->entry ? count_kernels (module->entry, 0) : 0;
}

void
fb_stats_compute (FbModule *module, FbStats *out)
{
  memset (out, 0, sizeof *out);
  for (int c = 0; c < module->n_comps; c++)
    if (!module->comps[c]->is_fusion)
      out->instructions += module->comps[c]->n_instrs;
  if (module->entry == NULL)
    return;
  out->kernels = fb_module_kernel_count (module);
  FbCost cost = fb_cost_computation (module->entry);
  out->flops = cost.flops;
  out->bytes = cost.bytes;
  FbBufferPlan *plan = fb_buffer_plan_new (module, NULL);
  if (plan)
    {
      out->peak_bytes = (double) plan->peak_bytes;
      fb_buffer_plan_free (plan);
    }
}
