/* SPDX-License-Identifier: MIT
 *
 * Optimizers for generated training steps: given the weights, their
 * gradients and the optimizer state as instructions of a builder, they emit
 * the update and return the new weights and the new state. The formulas are
 * PyTorch's, so a step matches torch.optim on the same numbers:
 *
 *   sgd       w' = w - lr g
 *   momentum  v' = mu v + g;  w' = w - lr v'          (state: v per weight)
 *   adam      t' = t + 1;  m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g^2
 *             w' = w - lr / (1 - b1^t') m' / (sqrt (v') / sqrt (1 - b2^t') + eps)
 *             (state: m per weight, then v per weight, then the f32[] step t)
 *
 * Every state array starts at zero, the step counter included.
 */
#pragma once

#include "fb-builder.h"

G_BEGIN_DECLS

typedef enum {
  FB_OPTIM_SGD,
  FB_OPTIM_MOMENTUM,
  FB_OPTIM_ADAM,
  FB_N_OPTIM_KINDS
} FbOptimKind;

typedef struct {
  FbOptimKind kind;
  double      lr;         /* learning rate */
  double      momentum;   /* momentum: mu */
  double      beta1;      /* adam */
  double      beta2;      /* adam */
  double      eps;        /* adam */
} FbOptim;

/* lr 0.01, momentum 0.9, beta1 0.9, beta2 0.999, eps 1e-8. */
void        fb_optim_init_defaults (FbOptim *optim, FbOptimKind kind);
const char *fb_optim_kind_name  (FbOptimKind kind);   /* "sgd", "momentum", "adam" */
/* FB_ERROR_USAGE naming the known optimizers when @name is not one. */
gboolean    fb_optim_kind_parse (const char *name, FbOptimKind *out, GError **error);
/* FB_ERROR_USAGE when a hyperparameter is out of range (lr <= 0, beta outside [0, 1), ...). */
gboolean    fb_optim_check      (const FbOptim *optim, GError **error);

/* Number of state arrays for @n_weights weights: 0, n or 2n + 1. */
int         fb_optim_n_state    (const FbOptim *optim, int n_weights);
/* Shape and name of state array @i (of fb_optim_n_state) for @weights:
 * `momentum.NAME`, `adam_m.NAME`, `adam_v.NAME`, `adam_step`. The name is
 * newly allocated. */
FbShape    *fb_optim_state_shape (FbBuilder *b, const FbOptim *optim, int n_weights,
                                  FbInstr *const *weights, int i, char **name);

/* Emits the update. @state holds fb_optim_n_state instructions; fills
 * @new_weights (n) and @new_state (fb_optim_n_state). Errors are recorded in
 * @b; returns fb_builder_ok. */
gboolean    fb_optim_emit       (FbBuilder *b, const FbOptim *optim, int n_weights,
                                 FbInstr *const *weights, FbInstr *const *grads,
                                 FbInstr *const *state, FbInstr **new_weights,
                                 FbInstr **new_state);

G_END_DECLS
