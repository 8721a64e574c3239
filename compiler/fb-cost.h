/* SPDX-License-Identifier: MIT
 *
 * Cost model: estimated floating-point operations and bytes moved by an
 * instruction, a computation, or a module's entry, in XLA's conventions
 * (a fused kernel reads its operands and writes its output once).
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

typedef struct {
  double flops;
  double bytes;        /* read + written */
  double transcendentals;
} FbCost;

FbCost fb_cost_instr       (const FbInstr *instr);
FbCost fb_cost_computation (FbComputation *comp);

G_END_DECLS
