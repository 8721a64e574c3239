/* SPDX-License-Identifier: MIT
 *
 * The passes, one per file in compiler/passes/, and the functions they share
 * (implemented in fb-pass.c): replacing an instruction while keeping its
 * provenance, the side-effect rule every cleanup pass obeys, attribute
 * equality and small constant tests.
 */
#pragma once

#include "fb-pass.h"

G_BEGIN_DECLS

extern const FbPass fb_pass_simplify;
extern const FbPass fb_pass_fold_constants;
extern const FbPass fb_pass_cse;
extern const FbPass fb_pass_dce;
extern const FbPass fb_pass_canonicalize;
extern const FbPass fb_pass_fuse_epilogues;
extern const FbPass fb_pass_fuse_reductions;
extern const FbPass fb_pass_fuse_loops;
extern const FbPass fb_pass_fuse_siblings;
extern const FbPass fb_pass_fuse_horizontal;
extern const FbPass fb_pass_assign_layouts;
extern const FbPass fb_pass_schedule;
extern const FbPass fb_pass_assign_buffers;

/* Every use of @old becomes a use of @repl, which takes @old's provenance;
 * @old is removed when nothing uses it any more (and it has no side
 * effect). Records a REWRITTEN decision with @rule unless @rule is NULL. */
void     _fb_pass_replace (FbPassContext *ctx, FbInstr *old, FbInstr *repl, const char *rule);
/* Removes @instr if it has no users, is not a root, a parameter or
 * side-effecting; its provenance goes to @heir when not NULL. TRUE if removed. */
gboolean _fb_pass_remove_if_dead (FbInstr *instr, FbInstr *heir);
/* Instructions that must run even when nothing uses their value, and that
 * must never be merged with an identical one: rng, infeed/outfeed,
 * send/recv, collectives, custom-calls marked custom_call_has_side_effect. */
gboolean _fb_instr_has_side_effect (const FbInstr *instr);
/* The same, or a called computation (while body, call, ...) holds such an
 * instruction, at any depth. @memo (pointer keys) caches computations. */
gboolean _fb_instr_has_side_effect_deep (const FbInstr *instr, GHashTable *memo);
/* Same dimensions, element type and layout (a missing layout is row-major). */
gboolean _fb_shape_same (const FbShape *a, const FbShape *b);
/* A constant whose every element equals @v (not an elided one), or a
 * broadcast of one. */
gboolean _fb_instr_is_splat (const FbInstr *instr, double v);
/* A copy of @like with dimensions @dims (rank @rank) and element type @type;
 * default layout when @like had one. */
FbShape *_fb_shape_like (FbModule *m, const FbShape *like, FbElemType type, int rank, const int64_t *dims);

G_END_DECLS
