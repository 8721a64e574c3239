/* SPDX-License-Identifier: MIT
 *
 * assign-buffers: runs buffer assignment (fb-buffers.h) over the entry
 * computation in its current order and reports what it found: the peak and
 * where it happens, how much of the temporaries' memory is shared, and which
 * outputs are written in place. The plan itself is rebuilt by whoever needs
 * it (statistics, backends, the memory view), so the module is left as it is.
 */
#include "fb-buffers-private.h"
#include "fb-passes-private.h"

#define MAX_IN_PLACE_NOTES 50

static double
mib (int64_t bytes)
{
  return bytes / 1048576.0;
}

static gboolean
run (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error)
{
  *changed = FALSE;
  if (module->entry == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "the module has no entry computation");
      return FALSE;
    }
  FbBufferPlanInfo info;
  FbBufferPlan *plan = _fb_buffer_plan_new_full (module, &info, error);
  if (plan == NULL)
    return FALSE;

  FbInstr *at = NULL;
  for (int k = 0; k < plan->n_allocs && at == NULL; k++)
    if (plan->allocs[k].start == plan->peak_position && !plan->allocs[k].is_parameter
        && !plan->allocs[k].is_constant)
      at = plan->allocs[k].instr;
  fb_pass_decide (ctx, FB_DECISION_NOTE, "peak", at ? 1 : 0, &at,
                  "peak memory %.2f MiB at position %d of %d%s%s%s: parameters %.2f MiB, constants %.2f MiB, "
                  "temporaries %.2f MiB",
                  mib (plan->peak_bytes), plan->peak_position, plan->n_positions,
                  at ? " (%" : "", at ? at->name : "", at ? ")" : "",
                  mib (info.param_bytes), mib (info.const_bytes),
                  mib (plan->peak_bytes - info.param_bytes - info.const_bytes));
  fb_pass_decide (ctx, FB_DECISION_NOTE, "reuse", 0, NULL,
                  "%.2f MiB of temporaries fit in an arena of %.2f MiB: %d buffers reuse memory freed "
                  "earlier, %d outputs overwrite an operand that dies at them, %d outputs are written "
                  "into their parameter (input_output_alias)",
                  mib (info.temp_bytes), mib (plan->arena_bytes), info.n_reused, info.n_in_place,
                  info.n_param_aliased);

  /* Name the in-place updates, operand and result. */
  int listed = 0;
  for (int k = 0; k < plan->n_allocs; k++)
    {
      FbBufferAlloc *a = &plan->allocs[k];
      if (!a->in_place || a->is_parameter)
        continue;
      if (listed++ >= MAX_IN_PLACE_NOTES)
        continue;
      if (a->is_output && a->offset < 0)
        fb_pass_decide (ctx, FB_DECISION_NOTE, "output-into-parameter", 1, &a->instr,
                        "%%%s (%.2f MiB) is written into the parameter it replaces in the next step",
                        a->instr->name, mib (a->size));
      else
        fb_pass_decide (ctx, FB_DECISION_NOTE, "in-place", 1, &a->instr,
                        "%%%s (%.2f MiB) overwrites an operand that is not read after it",
                        a->instr->name, mib (a->size));
    }
  if (listed > MAX_IN_PLACE_NOTES)
    fb_pass_decide (ctx, FB_DECISION_NOTE, "in-place", 0, NULL, "%d more in-place updates (not listed)",
                    listed - MAX_IN_PLACE_NOTES);
  fb_buffer_plan_free (plan);
  return TRUE;
}

const FbPass fb_pass_assign_buffers = {
  "assign-buffers",
  "place every temporary in one arena, reusing memory",
  "Every value a step computes needs memory from the instruction that "
  "makes it to the last one that reads it. Buffer assignment walks the "
  "schedule, frees a buffer after its last reader and gives the next "
  "value the smallest freed block it fits in, so the temporaries share "
  "one arena much smaller than their sum. An elementwise result can even "
  "overwrite its operand when that operand is not needed afterwards, and "
  "a new weight is written straight into the old weight's memory when the "
  "module says the output replaces that parameter. The peak of live "
  "memory is what decides whether a model fits on a device.",
  run,
};
