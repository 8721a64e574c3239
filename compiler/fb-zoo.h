/* SPDX-License-Identifier: MIT
 *
 * The model zoo: generates complete training steps (forward pass, loss,
 * gradients by reverse-mode autodiff, optimizer update) as one HLO entry
 * computation, plus the initial weights and synthetic, learnable data to
 * train them on.
 *
 * Layout of a generated training step
 * -----------------------------------
 * ENTRY parameters, in this order:
 *   1. the learnable weights, named `w.LAYER.KIND` (`w.dense0.kernel`);
 *   2. the optimizer state (fb-optim.h): nothing for sgd, `momentum.NAME` per
 *      weight for momentum, `adam_m.NAME` per weight then `adam_v.NAME` per
 *      weight then the f32[] step `adam.step` for adam;
 *   3. the data batch `data.x` and the labels `label.y`.
 * The root is the tuple (loss, new weights..., new optimizer state...), and
 * input_output_alias maps output {1 + i} to parameter i for every weight and
 * state array, so running the step repeatedly, feeding outputs back through
 * the aliasing, trains the model. Output 0 is the f32[] mean loss.
 *
 * Reproducing the values from the module alone
 * --------------------------------------------
 * The module header carries frontend_attributes with `zoo_model`, `zoo_seed`
 * and `zoo_data` (how the data is made), and for the reader `zoo_batch`,
 * `zoo_optimizer` and `zoo_lr`. Every ENTRY parameter carries
 * frontend_attributes with its `role` (weight, state, data, labels) and its
 * `init`:
 *   zeros, ones                 constant
 *   he_uniform                  U(-a, a), a = sqrt (6 / fan_in)
 *   glorot_uniform              U(-a, a), a = sqrt (6 / (fan_in + fan_out))
 *   normal                      N(0, stddev^2)
 *   data                        N(0, 1) inputs (float data) or tokens (s32)
 *   teacher                     labels the fixed teacher gives to data.x
 * with `fan_in`, `fan_out` and `stddev` where they apply. Random values come
 * from a SplitMix64 stream keyed by the seed, the parameter number and (for
 * data) the step, so fb_zoo_fill_parameter reproduces them for any zoo
 * module, also one read back from text.
 *
 * Synthetic data (`zoo_data`)
 * ---------------------------
 *   linear_teacher       (mlp, cnn, resnet-block) x ~ N(0, 1); the label is
 *                        the one-hot argmax of x (flattened) times a fixed
 *                        random matrix drawn from the seed, so the classes
 *                        are learnable and the loss really falls.
 *   permutation_teacher  (transformer) tokens follow t[i+1] = pi (t[i]) for
 *                        a fixed random permutation pi of the vocabulary;
 *                        the labels are the next tokens, pi (tokens).
 */
#pragma once

#include "fb-ir.h"
#include "fb-optim.h"

G_BEGIN_DECLS

typedef struct {
  const char *name;            /* "layers" (the CLI's --layers) */
  const char *default_value;   /* "784,1024,1024,10" */
  const char *help;
} FbZooOptionInfo;

typedef struct {
  const char            *name;          /* "mlp" */
  const char            *summary;
  int64_t                default_batch;
  int                    n_options;
  const FbZooOptionInfo *options;
} FbZooModelInfo;

/* The models, in the order `gen --list` shows them. */
const FbZooModelInfo *fb_zoo_models (int *n_models);
/* NULL when @name is not a model. */
const FbZooModelInfo *fb_zoo_lookup (const char *name);

/* What to generate: everything has a default, set only what differs. */
typedef struct _FbZooOptions FbZooOptions;

FbZooOptions *fb_zoo_options_new  (void);
void          fb_zoo_options_free (FbZooOptions *options);
/* Sets one option from text, as the CLI gives it: `batch`, `seed`,
 * `optimizer` (sgd, momentum, adam), `lr`, `momentum`, `beta1`, `beta2`,
 * `eps`, or a model option (`layers`, `heads`, ...; checked against the
 * model when generating). FB_ERROR_USAGE for a malformed number. */
gboolean      fb_zoo_options_set  (FbZooOptions *options, const char *key, const char *value,
                                   GError **error);

/* Generates the training step of @model. The module passes fb_verify. Errors:
 * FB_ERROR_USAGE for an unknown model or an option the model does not have
 * or cannot use (a bad size); otherwise what the builder or autodiff report. */
FbModule     *fb_zoo_generate     (const char *model, const FbZooOptions *options, GError **error);

typedef enum {
  FB_ZOO_ROLE_NONE,       /* not a zoo parameter */
  FB_ZOO_ROLE_WEIGHT,
  FB_ZOO_ROLE_STATE,
  FB_ZOO_ROLE_DATA,
  FB_ZOO_ROLE_LABELS
} FbZooRole;

/* TRUE when @module's header names a zoo model and seed. */
gboolean      fb_zoo_is_zoo_module (FbModule *module);
FbZooRole     fb_zoo_parameter_role (FbModule *module, int param);

/* Fills @dest, shaped like ENTRY parameter @param, with the zoo's value: the
 * initial weights or state, or for data and labels the batch of @step (any
 * integer; the same step gives the same batch). FB_ERROR_UNSUPPORTED when
 * the module or parameter carries no zoo init spec; FB_ERROR_VERIFY when
 * @dest's shape does not match. */
gboolean      fb_zoo_fill_parameter (FbModule *module, int param, int64_t step, FbLiteral *dest,
                                     GError **error);

/* Callbacks with the signatures of the training runner's FbInitFn and
 * FbDataFn (fb-runner.h): the initial state, and the batch of each step.
 * They return FALSE (leaving the runner's own values) for parameters that
 * are not the zoo's. */
gboolean      fb_zoo_init_fn (FbModule *module, int param, FbLiteral *dest, gpointer user_data);
gboolean      fb_zoo_data_fn (FbModule *module, int param, int step, FbLiteral *dest,
                              gpointer user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbZooOptions, fb_zoo_options_free)

G_END_DECLS
