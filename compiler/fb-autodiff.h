/* SPDX-License-Identifier: MIT
 *
 * Reverse-mode automatic differentiation over HLO. Given a computation
 * f(params...) whose root is a scalar loss (or a tuple holding the loss at
 * some index), it builds, in the same module, a computation that evaluates f
 * and then walks f's instructions backwards in topological order, giving
 * each one a cotangent (summed over its users) and applying the
 * vector-Jacobian product rule of its opcode to reach its operands.
 *
 * Conventions where the derivative is not unique, chosen as JAX does:
 *  - maximum/minimum: where x == y the cotangent is split in halves.
 *  - reduce with max/min and reduce-window max: every position equal to the
 *    maximum shares the cotangent equally (reduce); reduce-window routes it
 *    to the first maximum of each window (select-and-scatter with GE).
 *  - abs at 0, sign, round, floor, ceil: zero derivative at the kink;
 *    sqrt/log/rsqrt at 0 follow IEEE arithmetic (inf or nan).
 *  - clamp: the cotangent flows to x where lo <= x <= hi, to lo where
 *    x < lo, to hi where x > hi.
 *  - select, compare, iota, constant, rng, integer values: the predicate and
 *    index operands get no cotangent.
 *  - gather's cotangent is a scatter-add and scatter-add's a gather; gather
 *    clamps out-of-bounds start indices while scatter skips them, so the
 *    two agree for in-bounds indices (as in JAX). Scatter that replaces is
 *    exact for unique indices.
 *  - `call`s are inlined into the result; while, conditional, sort,
 *    custom-call and the like have no rule.
 *
 * An opcode without a rule on the path from a differentiated parameter to the
 * loss gives an FB_ERROR_UNSUPPORTED error naming the opcode and the
 * instruction.
 */
#pragma once

#include "fb-builder.h"

G_BEGIN_DECLS

/* Builds computation "<forward>.grad" in @module taking the same parameters
 * as @forward and returning tuple(loss, d loss / d param[wrt[0]], ...,
 * d loss / d param[wrt[n_wrt - 1]]), each gradient with its parameter's
 * shape. @loss_index is -1 when the root is the loss itself, else the index
 * of the loss in the root tuple. The loss must be a floating-point scalar;
 * the differentiated parameters floating-point arrays. */
FbComputation *fb_autodiff_grad (FbModule *module, FbComputation *forward, int loss_index,
                                 int n_wrt, const int *wrt_param_numbers, GError **error);

/* The same, emitted inline into @b's computation: @args are @forward's
 * arguments (instructions of @b's computation), the forward instructions are
 * copied after them, then the backward pass. On success *out_loss is the
 * loss and out_grads[i] the gradient for parameter wrt_param_numbers[i];
 * when @out_outputs is not NULL it receives the forward root's copy (the
 * whole tuple when the root is a tuple), so a training step can reuse other
 * outputs. Errors are recorded in @b (sticky) and also returned. */
gboolean       fb_autodiff_emit (FbBuilder *b, FbComputation *forward, FbInstr *const *args,
                                 int loss_index, int n_wrt, const int *wrt_param_numbers,
                                 FbInstr **out_loss, FbInstr **out_grads, FbInstr **out_outputs,
                                 GError **error);

/* TRUE when @op has a VJP rule (or is known to pass no cotangent). */
gboolean       fb_autodiff_has_rule (FbOpcode op);

G_END_DECLS
