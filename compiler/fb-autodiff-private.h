/* SPDX-License-Identifier: MIT
 *
 * Internals shared by the autodiff driver (fb-autodiff.c) and its
 * vector-Jacobian product rules (fb-autodiff-rules.c). The driver copies the
 * forward computation, marks which values depend on a differentiated
 * parameter, and hands each such instruction with its cotangent to the rule
 * of its opcode; the rule adds cotangents to the operands.
 */
#pragma once

#include "fb-autodiff.h"

G_BEGIN_DECLS

typedef struct {
  FbBuilder  *b;
  GHashTable *active;      /* instructions that depend on a differentiated parameter */
  GHashTable *ct;          /* array instruction -> its cotangent so far */
  GHashTable *tuple_ct;    /* tuple-shaped instruction -> FbInstr *[n_elems] (NULL: zero) */
} FbAdCtx;

gboolean  _fb_ad_is_active  (FbAdCtx *ctx, FbInstr *instr);
/* Adds @ct to @fwd's cotangent; ignored when @fwd is not active. */
void      _fb_ad_accum      (FbAdCtx *ctx, FbInstr *fwd, FbInstr *ct);
/* The same for element @index of a tuple-shaped @fwd. */
void      _fb_ad_accum_elem (FbAdCtx *ctx, FbInstr *fwd, int64_t index, FbInstr *ct);
/* Element @index of a tuple-shaped instruction's cotangent; NULL when zero. */
FbInstr  *_fb_ad_elem_ct    (FbAdCtx *ctx, FbInstr *fwd, int64_t index);

/* Applies @instr's VJP rule. @g is the cotangent of an array-shaped
 * instruction (NULL for tuple-shaped ones, whose element cotangents come
 * from _fb_ad_elem_ct). Errors are recorded in ctx->b. */
gboolean  _fb_ad_apply_rule (FbAdCtx *ctx, FbInstr *instr, FbInstr *g);
/* Opcodes whose result never carries a derivative (compare, sign, iota, ...). */
gboolean  _fb_ad_blocks     (FbOpcode op);
gboolean  _fb_ad_rule_exists (FbOpcode op);

G_END_DECLS
