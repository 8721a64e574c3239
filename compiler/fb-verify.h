/* SPDX-License-Identifier: MIT
 *
 * Verifier and shape inference. fb_infer_shape computes the shape XLA's rules
 * give an instruction from its operands and attributes; the verifier checks
 * every instruction's operand count, element types and shape against it and
 * the module's structure (roots, parameters, called computations, aliasing).
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

/* The shape @instr must have, allocated in the module's arena; NULL with an
 * error naming the instruction and what was expected. Instructions whose shape
 * is not determined by their operands (parameter, constant, custom-call, ...)
 * return their own shape after checking what can be checked. */
FbShape  *fb_infer_shape (FbInstr *instr, GError **error);
/* The same, allocated in @arena (a scratch arena the caller frees). */
FbShape  *fb_infer_shape_in (FbInstr *instr, FbArena *arena, GError **error);
/* First violation as an error: `file:line:column: %name: message` when the
 * instruction came from text. */
gboolean  fb_verify      (FbModule *module, GError **error);

G_END_DECLS
