/* SPDX-License-Identifier: MIT
 *
 * The pass list, in default pipeline order. Cleanup first (so fusion sees a
 * simple graph), then fusion from the outputs of expensive ops inwards
 * (epilogues, reductions, loops), then the passes that merge kernels
 * (siblings, horizontal), then layouts, scheduling and buffers.
 */
#include <string.h>

#include "fb-pass.h"
#include "fb-passes-private.h"

static const FbPass *const all_passes[] = {
  &fb_pass_simplify,
  &fb_pass_fold_constants,
  &fb_pass_cse,
  &fb_pass_canonicalize,
  &fb_pass_dce,
  &fb_pass_fuse_epilogues,
  &fb_pass_fuse_reductions,
  &fb_pass_fuse_loops,
  &fb_pass_fuse_siblings,
  &fb_pass_fuse_horizontal,
  &fb_pass_assign_layouts,
  &fb_pass_schedule,
  &fb_pass_assign_buffers,
};

const FbPass *const *
fb_passes_all (int *n)
{
  *n = G_N_ELEMENTS (all_passes);
  return all_passes;
}

const FbPass *
fb_pass_lookup (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (all_passes); i++)
    if (strcmp (all_passes[i]->name, name) == 0)
      return all_passes[i];
  return NULL;
}
