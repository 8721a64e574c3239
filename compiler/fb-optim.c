/* SPDX-License-Identifier: MIT
 *
 * SGD, momentum and Adam as HLO: each update is a handful of elementwise
 * instructions per weight, emitted through the builder right after the
 * gradients, so the training step stays one computation that passes can
 * fuse. Hyperparameters become constants of the step.
 */
#include <math.h>
#include <string.h>

#include "fb-optim.h"

static const char *const kind_names[FB_N_OPTIM_KINDS] = { "sgd", "momentum", "adam" };

void
fb_optim_init_defaults (FbOptim *optim, FbOptimKind kind)
{
  g_return_if_fail (optim != NULL);
  optim->kind = kind;
  optim->lr = 0.01;
  optim->momentum = 0.9;
  optim->beta1 = 0.9;
  optim->beta2 = 0.999;
  optim->eps = 1e-8;
}

const char *
fb_optim_kind_name (FbOptimKind kind)
{
  g_return_val_if_fail (kind < FB_N_OPTIM_KINDS, "?");
  return kind_names[kind];
}

gboolean
fb_optim_kind_parse (const char *name, FbOptimKind *out, GError **error)
{
  g_return_val_if_fail (name != NULL && out != NULL, FALSE);
  for (int k = 0; k < FB_N_OPTIM_KINDS; k++)
    if (strcmp (name, kind_names[k]) == 0)
      {
        *out = k;
        return TRUE;
      }
  g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
               "unknown optimizer '%s' (known: sgd, momentum, adam)", name);
  return FALSE;
}

gboolean
fb_optim_check (const FbOptim *optim, GError **error)
{
  g_return_val_if_fail (optim != NULL, FALSE);
  if (optim->kind >= FB_N_OPTIM_KINDS)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "unknown optimizer kind %d", optim->kind);
      return FALSE;
    }
  if (!(optim->lr > 0 && isfinite (optim->lr)))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "learning rate must be a positive number, not %g",
                   optim->lr);
      return FALSE;
    }
  if (optim->kind == FB_OPTIM_MOMENTUM && !(optim->momentum >= 0 && optim->momentum < 1))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "momentum must be in [0, 1), not %g",
                   optim->momentum);
      return FALSE;
    }
  if (optim->kind == FB_OPTIM_ADAM)
    {
      if (!(optim->beta1 >= 0 && optim->beta1 < 1) || !(optim->beta2 >= 0 && optim->beta2 < 1))
        {
          g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "adam betas must be in [0, 1), not %g and %g",
                       optim->beta1, optim->beta2);
          return FALSE;
        }
      if (!(optim->eps > 0 && isfinite (optim->eps)))
        {
          g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "adam eps must be a positive number, not %g",
                       optim->eps);
          return FALSE;
        }
    }
  return TRUE;
}

int
fb_optim_n_state (const FbOptim *optim, int n_weights)
{
  g_return_val_if_fail (optim != NULL, 0);
  switch (optim->kind)
    {
    case FB_OPTIM_MOMENTUM:
      return n_weights;
    case FB_OPTIM_ADAM:
      return 2 * n_weights + 1;
    case FB_OPTIM_SGD:
    default:
      return 0;
    }
}

/* `w.dense0.kernel` -> `dense0.kernel`: state names repeat the weight's name
 * without its role prefix. */
static const char *
weight_stem (const FbInstr *w)
{
  return g_str_has_prefix (w->name, "w.") ? w->name + 2 : w->name;
}

FbShape *
fb_optim_state_shape (FbBuilder *b, const FbOptim *optim, int n_weights,
                      FbInstr *const *weights, int i, char **name)
{
  g_return_val_if_fail (b != NULL && optim != NULL, NULL);
  g_return_val_if_fail (i >= 0 && i < fb_optim_n_state (optim, n_weights), NULL);
  FbArena *arena = fb_builder_get_module (b)->arena;

  if (optim->kind == FB_OPTIM_ADAM && i == 2 * n_weights)
    {
      if (name)
        *name = g_strdup ("adam.step");
      return fb_b_scalar_shape (b, FB_F32);
    }
  const FbInstr *w = weights[i % n_weights];
  if (name)
    {
      const char *prefix = optim->kind == FB_OPTIM_MOMENTUM ? "momentum"
                           : i < n_weights ? "adam_m" : "adam_v";
      *name = g_strdup_printf ("%s.%s", prefix, weight_stem (w));
    }
  FbShape *s = fb_shape_copy (arena, w->shape);
  return s;
}

static FbInstr *
scalar_like (FbBuilder *b, FbInstr *x, FbInstr *scalar)
{
  return fb_b_broadcast_like (b, scalar, x);
}

gboolean
fb_optim_emit (FbBuilder *b, const FbOptim *optim, int n_weights, FbInstr *const *weights,
               FbInstr *const *grads, FbInstr *const *state, FbInstr **new_weights,
               FbInstr **new_state)
{
  g_return_val_if_fail (b != NULL && optim != NULL, FALSE);
  if (!fb_builder_ok (b))
    return FALSE;

  fb_builder_push_scope (b, fb_optim_kind_name (optim->kind));
  switch (optim->kind)
    {
    case FB_OPTIM_SGD:
      for (int i = 0; i < n_weights; i++)
        {
          FbInstr *step = fb_b_binary_scalar (b, FB_OP_MULTIPLY, grads[i], optim->lr);
          new_weights[i] = fb_b_sub (b, weights[i], step);
        }
      break;

    case FB_OPTIM_MOMENTUM:
      for (int i = 0; i < n_weights; i++)
        {
          FbInstr *v = fb_b_binary_scalar (b, FB_OP_MULTIPLY, state[i], optim->momentum);
          v = fb_b_add (b, v, grads[i]);
          new_state[i] = v;
          new_weights[i] = fb_b_sub (b, weights[i], fb_b_binary_scalar (b, FB_OP_MULTIPLY, v, optim->lr));
        }
      break;

    case FB_OPTIM_ADAM:
      {
        /* Scalars shared by every weight: the new step and the two bias
         * corrections. */
        FbInstr *t = fb_b_add (b, state[2 * n_weights], fb_b_const_f32 (b, 1.0f));
        new_state[2 * n_weights] = t;
        FbInstr *c1 = fb_b_sub (b, fb_b_const_f32 (b, 1.0f),
                                fb_b_pow (b, fb_b_const_f32 (b, (float) optim->beta1), t));
        FbInstr *c2 = fb_b_sub (b, fb_b_const_f32 (b, 1.0f),
                                fb_b_pow (b, fb_b_const_f32 (b, (float) optim->beta2), t));
        FbInstr *step_size = fb_b_div (b, fb_b_const_f32 (b, (float) optim->lr), c1);
        FbInstr *sqrt_c2 = fb_b_sqrt (b, c2);

        for (int i = 0; i < n_weights && fb_builder_ok (b); i++)
          {
            FbInstr *g = grads[i];
            FbInstr *m = fb_b_add (b, fb_b_binary_scalar (b, FB_OP_MULTIPLY, state[i], optim->beta1),
                                   fb_b_binary_scalar (b, FB_OP_MULTIPLY, g, 1.0 - optim->beta1));
            FbInstr *g2 = fb_b_mul (b, g, g);
            FbInstr *v = fb_b_add (b, fb_b_binary_scalar (b, FB_OP_MULTIPLY, state[n_weights + i],
                                                          optim->beta2),
                                   fb_b_binary_scalar (b, FB_OP_MULTIPLY, g2, 1.0 - optim->beta2));
            FbInstr *denom = fb_b_div (b, fb_b_sqrt (b, v), scalar_like (b, v, sqrt_c2));
            denom = fb_b_binary_scalar (b, FB_OP_ADD, denom, optim->eps);
            FbInstr *upd = fb_b_mul (b, scalar_like (b, m, step_size), fb_b_div (b, m, denom));
            new_weights[i] = fb_b_sub (b, weights[i], upd);
            new_state[i] = m;
            new_state[n_weights + i] = v;
          }
      }
      break;

    default:
      fb_builder_set_error (b, "unknown optimizer kind %d", optim->kind);
      break;
    }
  fb_builder_pop_scope (b);
  return fb_builder_ok (b);
}
