/* SPDX-License-Identifier: MIT
 *
 * What buffer assignment and the scheduler both need to know about the
 * values of one computation: which instructions define memory of their own,
 * and which buffers every instruction refers to. Tuples, get-tuple-element,
 * bitcasts and reshapes define nothing: they refer to their operands'
 * buffers, so a use of them keeps those buffers alive.
 */
#pragma once

#include "fb-buffers.h"

G_BEGIN_DECLS

typedef enum {
  FB_VALUE_NONE,      /* needs no memory (token, empty array) */
  FB_VALUE_TEMP,      /* a temporary the plan places in the arena */
  FB_VALUE_PARAM,     /* owned by the caller, live for the whole step */
  FB_VALUE_CONST,     /* read-only data, live for the whole step */
  FB_VALUE_ALIAS      /* refers to its operands' buffers */
} FbValueKind;

typedef struct {
  int       n;           /* instructions, in the order given */
  FbInstr **instrs;
  guint8   *kind;        /* FbValueKind per position */
  int64_t  *size;        /* bytes of the buffer the instruction defines; 0 for NONE and ALIAS */
  int      *src_start;   /* n + 1 entries: the buffers position i refers to are */
  int      *src;         /* src[src_start[i] .. src_start[i + 1]), as positions of their definers */
  gpointer *saved_scratch;
} FbValues;

/* Fills @v for @comp with positions in @order (n_instrs instructions), or
 * in the computation's list order when @order is NULL. Every operand must
 * come before its user; otherwise FB_ERROR_VERIFY naming the instruction.
 * While @v is alive, each instruction's scratch holds its position + 1. */
gboolean _fb_values_init  (FbValues *v, FbComputation *comp, FbInstr *const *order, GError **error);
void     _fb_values_clear (FbValues *v);

static inline int
_fb_values_pos (const FbInstr *instr)
{
  return GPOINTER_TO_INT (instr->scratch) - 1;
}

/* Extra numbers the buffer pass reports. */
typedef struct {
  int     n_reused;        /* temporaries placed in memory another one freed */
  int     n_in_place;      /* outputs written over an operand that died there */
  int     n_param_aliased; /* outputs written into a parameter (input_output_alias) */
  int64_t temp_bytes;      /* bytes of every temporary, before any sharing */
  int64_t param_bytes;
  int64_t const_bytes;
} FbBufferPlanInfo;

FbBufferPlan *_fb_buffer_plan_new_full (FbModule *module, FbBufferPlanInfo *info, GError **error);

G_END_DECLS
