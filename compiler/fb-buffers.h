/* SPDX-License-Identifier: MIT
 *
 * Buffer assignment over a scheduled entry computation: every value that
 * needs memory gets a buffer with a live range [first position, last use]
 * in schedule order; buffers whose ranges do not overlap share memory;
 * an output aliased to a parameter by input_output_alias is updated in
 * place. The plan gives the peak live bytes and the live bytes at every
 * schedule position, which the memory view draws.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

typedef struct {
  FbInstr *instr;         /* the value (array leaf of a tuple is counted with its producer) */
  int64_t  size;          /* bytes */
  int64_t  offset;        /* in the arena of temporaries */
  int      start, end;    /* schedule positions: defined at start, last used at end */
  gboolean in_place;      /* shares its buffer with an operand or an aliased parameter */
  gboolean is_parameter, is_output, is_constant;
} FbBufferAlloc;

typedef struct {
  int            n_allocs;
  FbBufferAlloc *allocs;
  int            n_positions;   /* instructions of the entry in schedule order */
  int64_t       *live_bytes;    /* live bytes at each position */
  int64_t        peak_bytes;
  int            peak_position;
  int64_t        arena_bytes;   /* size of the temporaries arena after reuse */
} FbBufferPlan;

FbBufferPlan *fb_buffer_plan_new  (FbModule *module, GError **error);
void          fb_buffer_plan_free (FbBufferPlan *plan);

G_END_DECLS
