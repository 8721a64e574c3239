/* SPDX-License-Identifier: MIT
 *
 * The training runner: compiles a module with a backend once, then executes
 * N training steps, feeding each step's outputs back into the parameters of
 * the next one, recording the loss and measuring steps per second.
 *
 * Parameters come in two sorts:
 *
 *  - State (weights, optimiser moments, step counters): a parameter that
 *    some output feeds, through the module's input_output_alias or, when
 *    FbRunOptions.feed is set, through that mapping instead. It is
 *    initialised once and then takes the value of its output after every step.
 *  - Data (batches, labels, and anything else not fed): refreshed before
 *    every step.
 *
 * The runner tells them apart by feeding alone, never by name: XLA dumps name
 * parameters `Arg_0.1` or `p0`, so names carry no reliable meaning. A
 * generator that wants its parameters recognisable (the zoo names them
 * `data.x`, `label.y`, `w.dense1`, ...) is free to, but only feeding decides.
 *
 * Where values come from, in order of precedence:
 *  1. the inputs directory: `param.N.npy` (N the parameter number) or
 *     `NAME.npy` (the parameter instruction's name); a data parameter given
 *     this way gets the same array every step. The type and dimensions must
 *     match the parameter exactly. A .npy file in the directory that matches
 *     no parameter is an error, so a misspelt name does not go unnoticed;
 *  2. the callbacks of the options (init for state at the start, data for
 *     data before every step), when set and they return TRUE;
 *  3. seeded synthetic values: floating-point and complex elements are normal
 *     with standard deviation 0.05; integers are uniform in [0, 4); pred is a
 *     fair coin. The values depend only on the seed, the parameter number and
 *     the step, so two runs with the same seed see the same numbers.
 *
 * The loss is a scalar floating-point output: with loss_output < 0, output 0
 * when the root is a tuple whose element 0 is one (or the root itself when it
 * is a scalar float), else there is no loss and the losses are NaN.
 * "Output N" is element N of a tuple root, or the root itself for N = 0 when
 * the root is not a tuple.
 *
 * Steps per second is measured over the step loop on the monotonic clock:
 * executing and feeding back, without compiling and without making the
 * synthetic data of data parameters.
 */
#pragma once

#include "fb-ir.h"
#include "fb-backend.h"
#include "fb-memory.h"
#include "fb-recorder.h"
#include <gio/gio.h>

G_BEGIN_DECLS

/* Called once per step after it ran; @step counts from 1. @loss is NaN when
 * the module has no loss. */
typedef void     (*FbStepFn) (int step, double loss, gpointer user_data);
/* Fills @dest (already shaped like parameter @param and zeroed) with the
 * initial value of a state parameter. Returns FALSE to leave it to the
 * runner's synthetic values. */
typedef gboolean (*FbInitFn) (FbModule *module, int param, FbLiteral *dest, gpointer user_data);
/* Fills @dest with the batch of data parameter @param for step @step (from
 * 1). Returns FALSE to leave it to the runner's synthetic values. */
typedef gboolean (*FbDataFn) (FbModule *module, int param, int step, FbLiteral *dest,
                              gpointer user_data);

typedef struct {
  const char      *backend;        /* NULL: "interp" */
  int              steps;          /* >= 1 */
  guint64          seed;
  const char      *inputs_dir;     /* NULL: no .npy inputs */
  const char      *save_outputs_dir; /* NULL: nothing saved; else out.N.npy of the last step */
  FbCustomCallMap *custom_calls;   /* NULL: the built-in map */
  const char      *feed;           /* `OUT=PARAM,...`; NULL: input_output_alias; "" or "none": no feeding */
  int              loss_output;    /* < 0: automatic (see above) */
  int              threads;        /* worker threads of a compiled backend; 0: one per core */
  FbInitFn         init;           /* optional, e.g. from the zoo */
  FbDataFn         data;           /* optional, e.g. from the zoo */
  gpointer         source_data;    /* user data of init and data */
  FbRecorder      *recorder;       /* optional: a step span per step, and the backend's
                                    * kernel spans inside it */
  FbMemoryTimeline *memory;        /* optional: alloc/free events of the values the
                                    * runner holds (arguments, results, state) */
  FbStepFn         on_step;        /* optional */
  gpointer         on_step_data;
  GCancellable    *cancellable;    /* optional: checked before every step; once it is
                                    * cancelled the run stops with G_IO_ERROR_CANCELLED */
} FbRunOptions;

/* Fills in the defaults: interp, 10 steps, seed 0, automatic loss. */
void     fb_run_options_init (FbRunOptions *options);

typedef struct {
  char    *backend;        /* name of the backend that ran */
  int      steps;          /* steps executed */
  int      loss_output;    /* output the loss came from; -1: none */
  double  *losses;         /* one per step; NaN when there is no loss */
  double  *step_s;         /* seconds per step (execute and feed) */
  double   compile_s;
  double   run_s;          /* sum of step_s */
  double   steps_per_s;
  int      n_state;        /* fed parameters */
  int      n_data;         /* every other parameter */
} FbRunResult;

/* Runs @options->steps training steps of @module's entry computation. On
 * failure returns FALSE; @out is then left cleared. Errors: FB_ERROR_USAGE
 * for bad option values (a malformed feed spec, steps < 1), FB_ERROR_VERIFY
 * when the module, aliases, feed or loss do not fit together, FB_ERROR_IO and
 * FB_ERROR_PARSE for inputs, and whatever the backend reports. A cancelled
 * run is the one exception to a cleared @out: it returns FALSE with
 * G_IO_ERROR_CANCELLED and @out holds the steps that ran before (possibly
 * none); the caller clears it. */
gboolean fb_runner_run     (FbModule *module, const FbRunOptions *options, FbRunResult *out,
                            GError **error);
void     fb_run_result_clear (FbRunResult *result);

/* The output fb_runner_run takes the loss from, given the requested one (< 0:
 * automatic); -1 in *@loss_output when there is none. FALSE with an
 * FB_ERROR_VERIFY error when @requested is not a floating-point scalar. */
gboolean fb_runner_find_loss (FbModule *module, int requested, int *loss_output, GError **error);

G_END_DECLS
