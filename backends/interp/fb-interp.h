/* SPDX-License-Identifier: MIT
 *
 * The reference interpreter: executes HLO one instruction at a time on
 * literals, with XLA's semantics. Clear over fast; the oracle of every test.
 */
#pragma once

#include "fb-ir.h"
#include "fb-backend.h"

G_BEGIN_DECLS

/* Evaluates @comp on @args; the result lives in @arena. */
FbLiteral *fb_interp_run (FbModule *module, FbComputation *comp, FbArena *arena,
                          int n_args, FbLiteral *const *args,
                          const FbCustomCallMap *custom_calls, GError **error);

extern const FbBackend fb_interp_backend;

G_END_DECLS
