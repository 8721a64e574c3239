/* SPDX-License-Identifier: MIT
 *
 * Machinery the fusion passes share. A fusion is planned as a set of
 * instructions of one computation (a "plan"): the members, some of them
 * marked as duplicated (cloned into the fusion while the original stays for
 * its other users). A plan can be measured (operands, instructions), checked
 * for cycles, and built: building creates the fused computation
 * (`fused_computation.N`, one parameter per distinct outside operand, clones
 * of the members keeping names and provenance) and the fusion instruction
 * that calls it. Members with users outside the plan become outputs; several
 * outputs give a tuple root, and their users read them through
 * get-tuple-element. Members that are fusions themselves are inlined.
 *
 * The checks return FALSE with the reason in words and numbers, ready to
 * become a REFUSED decision.
 */
#pragma once

#include "fb-pass.h"

G_BEGIN_DECLS

typedef enum {
  FB_FUSION_LOOP,       /* kLoop: elementwise and data movement */
  FB_FUSION_INPUT,      /* kInput: a reduction with its producers */
  FB_FUSION_OUTPUT,     /* kOutput: a dot or convolution with its epilogue */
  FB_FUSION_CUSTOM      /* kCustom */
} FbFusionKind;

const char  *_fb_fusion_kind_name (FbFusionKind kind);   /* "kLoop" */
/* The kind of fusion instruction @instr (kLoop when the attribute is missing). */
FbFusionKind _fb_fusion_kind_of  (const FbInstr *instr);
gboolean     _fb_fusion_is_multi_output (const FbInstr *instr);
/* FALSE when another instruction calls the same fused computation (it may
 * then not be changed in place or inlined). Between _fb_fusion_pass_begin
 * and _fb_fusion_pass_end (around a pass's run) the answer is cached. */
void         _fb_fusion_pass_begin (FbModule *module);
void         _fb_fusion_pass_end   (void);
gboolean     _fb_fusion_owns_computation (const FbInstr *fusion);

/* "512 B", "3.0 KiB", "12 MiB". */
char        *_fb_fusion_format_bytes (double bytes);

/* Operations a kLoop kernel can compute at any output index. */
gboolean     _fb_fusion_is_loop_op (const FbInstr *instr);
/* How costly computing @instr again in another kernel is, per byte of its
 * result: 0 never (not a loop operation), 1 for cheap operations,
 * FB_FUSION_COSTLY_WEIGHT for transcendental functions and divisions. */
#define FB_FUSION_COSTLY_WEIGHT 8
int          _fb_fusion_recompute_weight (const FbInstr *instr);
/* Computations the passes rewrite: the entry and what it calls through
 * while, conditional and call (never fused or reducer computations). */
GPtrArray   *_fb_fusion_control_computations (FbModule *module);

typedef struct _FbFusionPlan FbFusionPlan;

FbFusionPlan *_fb_fusion_plan_new   (FbComputation *comp);
/* A plan that keeps its operand and instruction counts as members join,
 * for _fb_fusion_plan_within_limits_with. */
FbFusionPlan *_fb_fusion_plan_new_counted (FbComputation *comp);
void          _fb_fusion_plan_free  (FbFusionPlan *plan);
/* Adds @instr (and, when it is a multi-output fusion, its get-tuple-element
 * users). @duplicate: the original stays outside for its other users. */
void          _fb_fusion_plan_add   (FbFusionPlan *plan, FbInstr *instr, gboolean duplicate);
gboolean      _fb_fusion_plan_has   (FbFusionPlan *plan, const FbInstr *instr);
int           _fb_fusion_plan_size  (FbFusionPlan *plan);
/* Distinct instructions outside the plan that it reads. */
int           _fb_fusion_plan_n_operands (FbFusionPlan *plan);
/* Instructions the fused computation will hold (fusions count their bodies). */
int           _fb_fusion_plan_n_instrs   (FbFusionPlan *plan);
/* Bytes of the distinct outside operands. */
double        _fb_fusion_plan_operand_bytes (FbFusionPlan *plan);
/* TRUE when building would not create a cycle; otherwise @via is set to an
 * outside instruction on a path from the plan back into it. */
gboolean      _fb_fusion_plan_is_convex (FbFusionPlan *plan, FbInstr **via);
/* Limits of @ctx; FALSE with *why (g_free) saying which, with the numbers. */
gboolean      _fb_fusion_plan_within_limits (FbFusionPlan *plan, FbPassContext *ctx, char **why);
/* _fb_fusion_plan_within_limits of @plan with @instr added, without adding
 * it: quick on counted plans. @why may be NULL when the reason is not wanted. */
gboolean      _fb_fusion_plan_within_limits_with (FbFusionPlan *plan, FbInstr *instr, FbPassContext *ctx,
                                                  char **why);
/* Creates the fusion and removes the members that are not duplicated.
 * Returns the fusion instruction. */
FbInstr      *_fb_fusion_plan_build (FbFusionPlan *plan, FbFusionKind kind);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbFusionPlan, _fb_fusion_plan_free)

/* Can @producer be computed again inside a kernel of @consumer, although it
 * has other users? TRUE when it has one user, or when it is a loop operation
 * and the extra bytes (weighted by _fb_fusion_recompute_weight) stay under
 * ctx->max_recompute_bytes; else FALSE with the
 * reason in *why. *duplicate tells whether it must be cloned. */
gboolean      _fb_fusion_check_users (FbInstr *producer, FbInstr *consumer, FbPassContext *ctx,
                                      gboolean *duplicate, char **why);

/* The index space a kernel loops over: a reduction's input, else the
 * (first) output. NULL when unknown. */
const FbShape *_fb_fusion_iteration_shape (const FbInstr *kernel);

/* Takes producers into @consumer (a plain instruction or a fusion) one at a
 * time, operands first to last, until none more can go in, and records a
 * decision for each producer considered: FUSED, or REFUSED with the rule
 * and the reason. Producers with other users are cloned when cheap enough
 * (_fb_fusion_check_users); when @allow_output, a producer that may not be
 * cloned and loops over the same index space becomes an extra output.
 * Returns the resulting fusion, or @consumer when nothing was taken. */
FbInstr      *_fb_fusion_grow (FbPassContext *ctx, FbInstr *consumer, FbFusionKind kind,
                               gboolean allow_output, gboolean *changed);

/* Moves (or with @duplicate copies) the plain instruction @p, an operand of
 * @fusion, into its fused computation in place. Returns @fusion. The caller
 * has checked the rules (a plan of the two would be legal). */
FbInstr      *_fb_fusion_absorb (FbInstr *fusion, FbInstr *p, gboolean duplicate);

/* Does @to depend on @from (a path of operand edges from @from to @to)? */
gboolean      _fb_fusion_reaches (FbInstr *from, FbInstr *to);

/* Dependences between a growing group of instructions of one computation
 * and candidates to join it, for a group that is checked many times
 * while the computation does not change. _fb_fusion_related_first gives
 * the index of the first member (in the order added) that @s depends on
 * (*s_depends TRUE) or that depends on @s (FALSE), or -1: the same answer
 * as asking _fb_fusion_reaches both ways for each member in turn. Every
 * @s asked about must be one of the @candidates given at creation. */
typedef struct _FbFusionRelated FbFusionRelated;

FbFusionRelated *_fb_fusion_related_new   (FbComputation *comp, FbInstr *const *candidates, int n);
void             _fb_fusion_related_free  (FbFusionRelated *rel);
void             _fb_fusion_related_add   (FbFusionRelated *rel, FbInstr *member);
int              _fb_fusion_related_first (FbFusionRelated *rel, FbInstr *s, gboolean *s_depends);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbFusionRelated, _fb_fusion_related_free)

/* Reorders @comp so that every instruction follows its operands, keeping
 * the existing order where it already does. */
void          _fb_fusion_toposort (FbComputation *comp);

/* `%a, %b and %c` for messages. */
char         *_fb_fusion_names (FbInstr *const *instrs, int n);

G_END_DECLS
