/* SPDX-License-Identifier: MIT
 *
 * Internal to shape inference, which is split in two: fb-shape-infer.c has
 * the shared helpers, the rules of elementwise, data-movement, gather,
 * contraction and batch-norm instructions, and the dispatch;
 * fb-shape-infer-calls.c has the rules of the instructions that call
 * computations (map, scatter, reductions, sort, control flow, collectives).
 * Each rule checks its instruction and returns the inferred shape, or NULL
 * after setting an error through _fb_infer_fail.
 */
#pragma once

#include "fb-verify.h"

G_BEGIN_DECLS

/* Ranks above this are refused rather than handled with fixed arrays. */
#define FB_INFER_MAX_RANK 64

typedef struct {
  FbInstr *instr;
  FbArena *arena; /* where inferred shapes go */
  GError **error;
  GPtrArray *strings; /* texts of shapes quoted in a message */
  gboolean array_reducer; /* reduce with array init values (seen in imported modules) */
} FbInferCtx;

static inline const char *
opname (FbInferCtx *c)
{
  return fb_opcode_name (c->instr->opcode);
}

static inline const FbShape *
op (FbInferCtx *c, int i)
{
  return c->instr->operands[i]->shape;
}

static inline gboolean
dim_eq (int64_t a, int64_t b)
{
  return a == b || a < 0 || b < 0;
}

static inline gboolean
same_dims (const FbShape *a, const FbShape *b)
{
  if (a->rank != b->rank)
    return FALSE;
  for (int i = 0; i < a->rank; i++)
    if (!dim_eq (a->dims[i], b->dims[i]))
      return FALSE;
  return TRUE;
}

static inline gboolean
same_type_ignoring_fp (FbElemType a, FbElemType b)
{
  return a == b || (fb_elem_type_is_float (a) && fb_elem_type_is_float (b));
}

static inline gboolean
is_array (const FbShape *s)
{
  return s && s->type != FB_TUPLE && fb_elem_type_is_array (s->type);
}

static inline gboolean
is_scalar (const FbShape *s)
{
  return is_array (s) && s->rank == 0;
}

static inline gboolean
dims_contain (const FbDims *d, int64_t v)
{
  for (int i = 0; i < d->n; i++)
    if (d->v[i] == v)
      return TRUE;
  return FALSE;
}

/* Helpers (fb-shape-infer.c). _fb_infer_fail sets the error, located at
 * the instruction, and returns FALSE; _fb_infer_error does the same and
 * returns NULL. _fb_infer_str gives a shape's text that lives as long as
 * the context. */
gboolean _fb_infer_fail (FbInferCtx *c, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
FbShape *_fb_infer_error (FbInferCtx *c, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
const char *_fb_infer_str (FbInferCtx *c, const FbShape *s);
gboolean _fb_infer_compatible (const FbShape *a, const FbShape *b);
FbShape *_fb_infer_array (FbInferCtx *c, FbElemType t, int rank, const int64_t *dims);
FbShape *_fb_infer_with_type (FbInferCtx *c, const FbShape *s, FbElemType t);
FbShape *_fb_infer_copy (FbInferCtx *c, const FbShape *s);
gboolean _fb_infer_need_operands (FbInferCtx *c, int n);
gboolean _fb_infer_need_array (FbInferCtx *c, int i);
const FbDims *_fb_infer_need_dims (FbInferCtx *c, FbAttrKey key);
const FbDims *_fb_infer_opt_dims (FbInferCtx *c, FbAttrKey key);
gboolean _fb_infer_check_dims (FbInferCtx *c, const FbDims *d, int rank, const char *what);
gboolean _fb_infer_check_sorted (FbInferCtx *c, const FbDims *d, const char *what);
gboolean _fb_infer_window_out (FbInferCtx *c, int64_t in, const FbWindowDim *w, int i, int64_t *out);
gboolean _fb_infer_get_window (FbInferCtx *c, int rank, gboolean required, const FbAttr **out);
gboolean _fb_infer_expand_indices (FbInferCtx *c, const FbShape *idx, int64_t ivd, int64_t *dims, int *rank);
gboolean _fb_infer_check_batching (FbInferCtx *c, const FbShape *operand, const FbDims *ob, const FbDims *ib,
                                   const int64_t *idims, int irank, int64_t ivd, const char *on, const char *in);

/* Rules of instructions that call computations (fb-shape-infer-calls.c). */
FbShape *_fb_infer_map (FbInferCtx *c);
FbShape *_fb_infer_scatter (FbInferCtx *c);
FbShape *_fb_infer_reduce (FbInferCtx *c);
FbShape *_fb_infer_reduce_window (FbInferCtx *c);
FbShape *_fb_infer_select_and_scatter (FbInferCtx *c);
FbShape *_fb_infer_sort (FbInferCtx *c);
FbShape *_fb_infer_while (FbInferCtx *c);
FbShape *_fb_infer_call (FbInferCtx *c);
FbShape *_fb_infer_fusion (FbInferCtx *c);
FbShape *_fb_infer_conditional (FbInferCtx *c);
FbShape *_fb_infer_collective (FbInferCtx *c);

G_END_DECLS
