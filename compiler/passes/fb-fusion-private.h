/* SPDX-License-Identifier: MIT
 *
 * Shared by fb-fusion.c and fb-fusion-order.c: the state a fusion pass
 * keeps while it runs, and positions of instructions.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

/* What a fusion pass keeps while it runs, per thread, between
 * _fb_fusion_pass_begin and _fb_fusion_pass_end:
 * - the fused computations called by more than one instruction (a pass
 *   never makes a new one);
 * - the names of the module's computations, with how many computations
 *   bear each, so that naming a new fused computation is not a search
 *   through all of them;
 * - which computation has current positions in the scratch fields of its
 *   instructions (see fb-fusion-order.c), so that every plan need not renumber it. */
typedef struct {
  GHashTable    *shared;
  GHashTable    *comp_names;   /* name (module string) -> count */
  FbComputation *numbered;
  gboolean       topological;  /* numbered's order puts operands first */
  GHashTable    *reduces;      /* fused computation -> ReduceOf */
  GHashTable    *names;        /* names in the fused computation @named -> count */
  FbComputation *named;
  int            named_count;  /* its instructions when @names was last right */
  GHashTable    *provs;        /* fusion -> ProvOf, for absorb_prov */
} PassState;

/* The running pass's state on this thread; NULL outside a pass. */
PassState *_fb_fusion_pass_state (void);

/* The position of @i in its computation (valid after _fb_fusion_ensure_numbered). */
gintptr  _fb_fusion_position (const FbInstr *i);
/* Numbers @comp when its positions are missing or stale. */
void     _fb_fusion_ensure_numbered (FbComputation *comp);
/* TRUE when every operand stands before its user, by position. */
gboolean _fb_fusion_positions_topological (FbComputation *comp);
/* Moves @instrs (in order) right after @after and gives them positions. */
void     _fb_fusion_place_after (FbComputation *comp, FbInstr *after, FbInstr *const *instrs, int n);
/* Re-sorts the stretch from @from to @to into operand-first order. */
void     _fb_fusion_toposort_span (FbComputation *comp, FbInstr *from, FbInstr *to);

G_END_DECLS
