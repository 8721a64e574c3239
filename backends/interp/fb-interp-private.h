/* SPDX-License-Identifier: MIT
 *
 * Internals of the reference interpreter, shared by its files. fb-interp.c
 * walks a computation in order and dispatches each instruction to an
 * evaluator; evaluators for elementwise, movement, control flow and rng live
 * in fb-interp.c / fb-interp-elementwise.c / fb-interp-rng.c, those for dot,
 * convolution, reductions, windows, gather/scatter, sort and batch norm in
 * fb-interp-linalg.c / fb-interp-reduce.c / fb-interp-gather.c.
 */
#pragma once

#include "fb-interp.h"

G_BEGIN_DECLS

typedef struct _FbInterp FbInterp;
struct _FbInterp {
  FbModule              *module;
  FbArena               *arena;          /* where results live */
  const FbCustomCallMap *custom_calls;
  int                    depth;          /* nested computation calls, bounded */
};

/* Evaluates one instruction given its operands' values; sets *out (in
 * ctx->arena). Errors name the instruction. */
typedef gboolean (*FbInterpEval) (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops,
                                  FbLiteral **out, GError **error);

/* Calls a computation (reduce's to_apply, sort's comparator, while body, ...). */
FbLiteral *_fb_interp_call (FbInterp *ctx, FbComputation *comp, int n_args,
                            FbLiteral *const *args, GError **error);
/* A scalar literal of @type holding @v (f64 converted to the element type). */
FbLiteral *_fb_interp_scalar (FbInterp *ctx, FbElemType type, double v);
/* Row-major strides of @shape's dimensions, in elements. */
void       _fb_interp_strides (const FbShape *shape, int64_t *strides);
/* Highest rank the index walkers handle. */
#define FB_INTERP_MAX_RANK 16
/* Advances a row-major multi-index over @shape; FALSE after the last one. */
gboolean   _fb_interp_next_index (int64_t *idx, const FbShape *shape);
/* TRUE when @lit is an array value of rank at most FB_INTERP_MAX_RANK;
 * otherwise an error naming @instr and @what. */
gboolean   _fb_interp_check_array (const FbInstr *instr, const FbLiteral *lit, const char *what,
                                   GError **error);
/* Same rank and dimensions. */
gboolean   _fb_interp_same_dims (const FbShape *a, const FbShape *b);
/* Sets an error `%name: message` in the FB_ERROR_RUNTIME code. */
void       _fb_interp_error (GError **error, const FbInstr *instr, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

/* Evaluators implemented outside fb-interp.c (fb-interp-linalg.c,
 * fb-interp-reduce.c, fb-interp-gather.c). */
gboolean _fb_interp_dot            (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_convolution    (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_reduce         (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_reduce_window  (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_select_and_scatter (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_gather         (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_scatter        (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_sort           (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_batch_norm     (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_topk           (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_cholesky       (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_triangular_solve (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_fft            (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);

/* In fb-interp-elementwise.c and fb-interp-rng.c. */
gboolean _fb_interp_elementwise    (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
gboolean _fb_interp_rng_bit_generator (FbInterp *, FbInstr *, FbLiteral *const *, FbLiteral **, GError **);
/* The older `rng` op: deterministic from @seed, not bit-exact with XLA. */
gboolean _fb_interp_rng            (FbInterp *, FbInstr *, FbLiteral *const *, uint64_t seed,
                                    FbLiteral **, GError **);

G_END_DECLS
