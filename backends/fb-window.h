/* SPDX-License-Identifier: MIT
 *
 * Window geometry shared by the backends' reduce-window and
 * select-and-scatter: where a window position falls in the operand, and
 * the next position of a window in row-major order.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

/* Offset in the operand (shape @is, strides @ist) of window position @widx
 * of output index @oidx, or -1 when it falls into the padding or a hole of
 * the dilated base. */
static inline int64_t
fb_window_source (const FbShape *is, const int64_t *ist, const FbWindowDim *w, const int64_t *oidx,
                  const int64_t *widx)
{
  int64_t off = 0;
  for (int d = 0; d < is->rank; d++)
    {
      int64_t pos = oidx[d] * w[d].stride + widx[d] * w[d].rhs_dilate - w[d].pad_lo;
      if (pos < 0 || pos % w[d].lhs_dilate != 0)
        return -1;
      pos /= w[d].lhs_dilate;
      if (pos >= is->dims[d])
        return -1;
      off += pos * ist[d];
    }
  return off;
}

/* Steps @widx to the next window position; FALSE after the last. */
static inline gboolean
fb_window_next (int64_t *widx, const FbWindowDim *w, int rank)
{
  for (int d = rank - 1; d >= 0; d--)
    {
      if (++widx[d] < w[d].size)
        return TRUE;
      widx[d] = 0;
    }
  return FALSE;
}

G_END_DECLS
