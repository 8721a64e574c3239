/* SPDX-License-Identifier: MIT
 *
 * Shared by fb-fusion.c, fb-fusion-order.c and fb-fusion-state.c: the
 * state a fusion pass keeps while it runs, positions of instructions, and
 * the names and provenance a fusion gets as it is built and grown.
 */
#pragma once

#include "fb-ir.h"
#include "fb-fusion.h"

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

/* Names and provenance (fb-fusion-state.c); each works outside a pass
 * too, only more slowly. */
/* Counts @name (a string that outlives the table) in @names, by @delta. */
void     _fb_fusion_name_count (GHashTable *names, const char *name, int delta);
/* Renames @comp (or with @name NULL, forgets it, when it is removed). */
void     _fb_fusion_comp_renamed (FbComputation *comp, const char *name);
/* Points the one slot of @user that reads @from at @to, without a scan
 * of @user's operands; FALSE when it cannot, and the caller must. */
gboolean _fb_fusion_replace_operand (FbInstr *user, FbInstr *from, FbInstr *to);
/* Removes @comp from @module; during a pass, when the pass ends. */
void     _fb_fusion_remove_computation (FbModule *module, FbComputation *comp);
/* A free computation name for the fused computation of @fusion_name. */
char    *_fb_fusion_fused_comp_name (FbModule *module, const char *fusion_name);
/* @instr was just added to @comp (@delta +1) or is about to leave it (-1). */
void     _fb_fusion_fused_name_changed (FbComputation *comp, FbInstr *instr, int delta);
/* @name, or @name.N when an instruction of @comp has it already. */
char    *_fb_fusion_free_name (FbComputation *comp, const char *name);
/* Releases the provenance @fusion kept during the pass, once it left its computation. */
void     _fb_fusion_prov_forget (FbInstr *fusion);
/* Gives @fusion, whose provenance is empty, the union of @members' provenance. */
void     _fb_fusion_prov_union (FbInstr *fusion, FbFusionPlan *plan, GPtrArray *members);
/* Adds the ids of @p's provenance that @fusion lacks, in order. */
void     _fb_fusion_prov_absorb (FbInstr *fusion, const FbInstr *p);
/* Is @m a get-tuple-element of a multi-output fusion in @plan? (fb-fusion.c) */
gboolean _fb_fusion_plan_is_inner_gte (FbFusionPlan *plan, const FbInstr *m);

/* Certificates of dependence in @comp, kept over a fusion pass (see
 * fb-fusion-order.c); built when the questions of the groups that use
 * them have cost enough. */
typedef struct _FbFusionHubs FbFusionHubs;
FbFusionHubs *_fb_fusion_hubs_new  (FbComputation *comp);
void          _fb_fusion_hubs_free (FbFusionHubs *hubs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbFusionHubs, _fb_fusion_hubs_free)
/* Builds them now (the computation in an order with operands first). */
void          _fb_fusion_hubs_build (FbFusionHubs *hubs);
/* TRUE when they certify that @b depends on @a; FALSE tells nothing. */
gboolean      _fb_fusion_hubs_lead  (const FbFusionHubs *hubs, const FbInstr *a, const FbInstr *b);
/* Lets @rel answer with @hubs (of its computation) where they tell. */
void          _fb_fusion_related_use_hubs (FbFusionRelated *rel, FbFusionHubs *hubs);

G_END_DECLS
