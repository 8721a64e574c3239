/* SPDX-License-Identifier: MIT
 *
 * Tests of the training runner on a hand-written linear regression step
 * (tests/data/run/linreg.hlo: y = w x + b fitted to 3 x + 0.5 by SGD, with
 * w and b fed back through input_output_alias): the loss falls, .npy inputs
 * and callbacks are used, the feed mapping replaces the aliases, outputs are
 * saved, and every mismatch between module, options and inputs is an error.
 */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "fb-hlo.h"
#include "fb-npy.h"
#include "fb-runner.h"

typedef struct {
  char     *dir;        /* scratch directory */
  FbModule *module;     /* linreg.hlo */
  FbArena  *arena;
} Fixture;

static FbModule *
load_data_module (const char *file)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", "run", file, NULL);
  FbModule *m = fb_hlo_parse_file (path, 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  return m;
}

static void
remove_tree (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        remove_tree (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  fx->dir = g_dir_make_tmp ("fb-runner-XXXXXX", &error);
  g_assert_no_error (error);
  fx->module = load_data_module ("linreg.hlo");
  fx->arena = fb_arena_new ();
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  remove_tree (fx->dir);
  g_free (fx->dir);
  fb_module_free (fx->module);
  fb_arena_free (fx->arena);
}

/* Writes a 1-d (n > 0) or scalar (n == 0) f32 array to DIR/FILE. */
static void
write_f32 (Fixture *fx, const char *dir, const char *file, int n, const float *v)
{
  g_autoptr (GError) error = NULL;
  int64_t dims[1] = { n };
  FbShape *shape = fb_shape_new_array (fx->arena, FB_F32, n > 0 ? 1 : 0, dims);
  FbLiteral *lit = fb_literal_new (fx->arena, shape);
  memcpy (lit->data, v, sizeof (float) * MAX (n, 1));
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_assert_true (fb_npy_save (path, lit, &error));
  g_assert_no_error (error);
}

static char *
inputs_dir (Fixture *fx, const char *name)
{
  char *dir = g_build_filename (fx->dir, name, NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  return dir;
}

static const float xs[8] = { -1.f, -0.75f, -0.5f, -0.25f, 0.25f, 0.5f, 0.75f, 1.f };

/* ---------------------------------------------------------------- runs */

typedef struct {
  int    calls;
  int    last_step;
  double losses[64];
} StepLog;

static void
log_step (int step, double loss, gpointer user_data)
{
  StepLog *log = user_data;
  g_assert_cmpint (step, ==, log->last_step + 1);
  log->last_step = step;
  log->losses[log->calls++] = loss;
}

static void
test_loss_decreases (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  StepLog log = { 0 };
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 20;
  opts.seed = 1;
  opts.on_step = log_step;
  opts.on_step_data = &log;

  FbRunResult res;
  g_assert_true (fb_runner_run (fx->module, &opts, &res, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (res.backend, ==, "interp");
  g_assert_cmpint (res.steps, ==, 20);
  g_assert_cmpint (res.loss_output, ==, 0);
  g_assert_cmpint (res.n_state, ==, 2);     /* w and b */
  g_assert_cmpint (res.n_data, ==, 1);      /* x */
  g_assert_cmpint (log.calls, ==, 20);
  for (int i = 0; i < 20; i++)
    {
      g_assert_true (isfinite (res.losses[i]));
      g_assert_cmpfloat (res.losses[i], ==, log.losses[i]);
    }
  /* b starts near 0 and the target's intercept is 0.5: the loss starts near
   * 0.25 and SGD removes most of it in 20 steps. */
  g_assert_cmpfloat (res.losses[0], >, 0.1);
  g_assert_cmpfloat (res.losses[19], <, res.losses[0] * 0.3);
  g_assert_cmpfloat (res.steps_per_s, >, 0);
  g_assert_cmpfloat (res.compile_s, >=, 0);
  fb_run_result_clear (&res);
}

static void
test_deterministic (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 5;
  opts.seed = 42;

  FbRunResult a, b, c;
  g_assert_true (fb_runner_run (fx->module, &opts, &a, &error));
  g_assert_true (fb_runner_run (fx->module, &opts, &b, &error));
  opts.seed = 43;
  g_assert_true (fb_runner_run (fx->module, &opts, &c, &error));
  g_assert_no_error (error);
  gboolean all_same = TRUE;
  for (int i = 0; i < 5; i++)
    {
      g_assert_cmpfloat (a.losses[i], ==, b.losses[i]);
      all_same = all_same && a.losses[i] == c.losses[i];
    }
  g_assert_false (all_same);
  fb_run_result_clear (&a);
  fb_run_result_clear (&b);
  fb_run_result_clear (&c);
}

static void
test_npy_inputs (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = inputs_dir (fx, "in");
  const float zero = 0;
  write_f32 (fx, dir, "param.0.npy", 0, &zero);  /* w by number */
  write_f32 (fx, dir, "b.npy", 0, &zero);        /* b by name */
  write_f32 (fx, dir, "x.npy", 8, xs);           /* the same batch every step */
  g_autofree char *readme = g_build_filename (dir, "README", NULL);
  g_assert_true (g_file_set_contents (readme, "not an input", -1, NULL));

  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 20;
  opts.inputs_dir = dir;
  FbRunResult res;
  g_assert_true (fb_runner_run (fx->module, &opts, &res, &error));
  g_assert_no_error (error);

  /* With w = b = 0 the first loss is mean ((3 x + 0.5)^2). */
  double expect = 0;
  for (int i = 0; i < 8; i++)
    expect += (3 * xs[i] + 0.5) * (3 * xs[i] + 0.5) / 8;
  g_assert_cmpfloat_with_epsilon (res.losses[0], expect, 1e-5);
  /* Full-batch gradient descent on a convex quadratic: strictly falling. */
  for (int i = 1; i < 20; i++)
    g_assert_cmpfloat (res.losses[i], <, res.losses[i - 1]);
  g_assert_cmpfloat (res.losses[19], <, res.losses[0] * 0.2);
  fb_run_result_clear (&res);
}

static gboolean
init_exact (FbModule *module, int param, FbLiteral *dest, gpointer user_data)
{
  int *calls = user_data;
  calls[0]++;
  fb_literal_set_f64 (dest, 0, param == 0 ? 3.0 : 0.5);   /* the true w and b */
  return TRUE;
}

static gboolean
data_batch (FbModule *module, int param, int step, FbLiteral *dest, gpointer user_data)
{
  int *calls = user_data;
  g_assert_cmpint (param, ==, 2);
  calls[1]++;
  for (int i = 0; i < 8; i++)
    fb_literal_set_f64 (dest, i, xs[i] * step);
  return TRUE;
}

static void
test_callbacks (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  int calls[2] = { 0, 0 };
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 3;
  opts.init = init_exact;
  opts.data = data_batch;
  opts.source_data = calls;
  FbRunResult res;
  g_assert_true (fb_runner_run (fx->module, &opts, &res, &error));
  g_assert_no_error (error);
  g_assert_cmpint (calls[0], ==, 2);   /* w and b, once */
  g_assert_cmpint (calls[1], ==, 3);   /* x, every step */
  /* Started at the solution: nothing to learn, whatever the batch. */
  for (int i = 0; i < 3; i++)
    g_assert_cmpfloat_with_epsilon (res.losses[i], 0.0, 1e-10);
  fb_run_result_clear (&res);
}

static void
test_feed (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  FbModule *noalias = load_data_module ("linreg-noalias.hlo");
  g_autofree char *dir = inputs_dir (fx, "feed-in");
  write_f32 (fx, dir, "x.npy", 8, xs);

  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 10;
  opts.inputs_dir = dir;
  FbRunResult res;

  /* Without aliases and without a feed, w and b are data: nothing learns. */
  g_assert_true (fb_runner_run (noalias, &opts, &res, &error));
  g_assert_no_error (error);
  g_assert_cmpint (res.n_state, ==, 0);
  g_assert_cmpint (res.n_data, ==, 3);
  g_assert_cmpfloat (res.losses[9], >, res.losses[0] * 0.5);
  fb_run_result_clear (&res);

  /* Output 1 feeds w, output 2 feeds b. */
  opts.feed = "1=0, 2=1";
  g_assert_true (fb_runner_run (noalias, &opts, &res, &error));
  g_assert_no_error (error);
  g_assert_cmpint (res.n_state, ==, 2);
  for (int i = 1; i < 10; i++)
    g_assert_cmpfloat (res.losses[i], <, res.losses[i - 1]);
  fb_run_result_clear (&res);

  /* A feed replaces the module's aliases: "none" turns feeding off. */
  opts.feed = "none";
  g_assert_true (fb_runner_run (fx->module, &opts, &res, &error));
  g_assert_no_error (error);
  g_assert_cmpint (res.n_state, ==, 0);
  fb_run_result_clear (&res);
  fb_module_free (noalias);
}

static void
test_save_outputs (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = g_build_filename (fx->dir, "out", "nested", NULL);
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 4;
  opts.save_outputs_dir = out;
  FbRunResult res;
  g_assert_true (fb_runner_run (fx->module, &opts, &res, &error));
  g_assert_no_error (error);

  for (int i = 0; i < 3; i++)
    {
      g_autofree char *file = g_strdup_printf ("out.%d.npy", i);
      g_autofree char *path = g_build_filename (out, file, NULL);
      FbLiteral *lit = fb_npy_load (fx->arena, path, &error);
      g_assert_no_error (error);
      g_assert_cmpint (lit->shape->type, ==, FB_F32);
      g_assert_cmpint (lit->shape->rank, ==, 0);
      if (i == 0)   /* the loss of the last step */
        g_assert_cmpfloat (fb_literal_get_f64 (lit, 0), ==, res.losses[3]);
    }
  fb_run_result_clear (&res);
}

static void
test_no_loss (Fixture *fx, gconstpointer data)
{
  static const char text[] =
    "HloModule double\n\n"
    "ENTRY %e (p: f32[4]) -> f32[4] {\n"
    "  %p = f32[4]{0} parameter(0)\n"
    "  ROOT %d = f32[4]{0} add(f32[4]{0} %p, f32[4]{0} %p)\n"
    "}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, sizeof text - 1, "double.hlo", 0, &error);
  g_assert_no_error (error);
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 2;
  FbRunResult res;
  g_assert_true (fb_runner_run (m, &opts, &res, &error));
  g_assert_no_error (error);
  g_assert_cmpint (res.loss_output, ==, -1);
  g_assert_true (isnan (res.losses[0]) && isnan (res.losses[1]));

  /* Asking for a loss that is not a scalar is an error. */
  opts.loss_output = 0;
  g_assert_false (fb_runner_run (m, &opts, &res, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_VERIFY);
  g_assert_nonnull (strstr (error->message, "loss output 0 is f32[4], not a floating-point scalar"));
  fb_module_free (m);
}

/* -------------------------------------------------------------- errors */

static void
expect_failure (FbModule *m, const FbRunOptions *opts, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  FbRunResult res;
  g_assert_false (fb_runner_run (m, opts, &res, &error));
  g_assert_error (error, FB_ERROR, code);
  if (strstr (error->message, fragment) == NULL)
    g_error ("expected '%s' in: %s", fragment, error->message);
  g_assert_null (res.losses);
}

static void
set_alias (FbModule *m, int64_t output, int64_t param)
{
  FbAlias *a = fb_arena_new0 (m->arena, FbAlias, 1);
  a->output_index.n = 1;
  a->output_index.v = fb_arena_new0 (m->arena, int64_t, 1);
  a->output_index.v[0] = output;
  a->param_number = param;
  m->aliases = a;
  m->n_aliases = 1;
}

static void
test_bad_alias (Fixture *fx, gconstpointer data)
{
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 1;

  set_alias (fx->module, 1, 5);
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY,
                  "input_output_alias: output {1} feeds parameter 5, but the entry computation has 3 parameters");
  set_alias (fx->module, 7, 0);
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY,
                  "input_output_alias: output {7} does not exist; the root is (f32[], f32[], f32[])");
  set_alias (fx->module, 0, 2);
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY,
                  "input_output_alias: output {0} is f32[] but parameter 2 (%x) is f32[8]");
}

static void
test_bad_feed (Fixture *fx, gconstpointer data)
{
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 1;

  opts.feed = "1-0";
  expect_failure (fx->module, &opts, FB_ERROR_USAGE, "feed mapping '1-0': expected OUT=PARAM");
  opts.feed = "1=a";
  expect_failure (fx->module, &opts, FB_ERROR_USAGE, "expected OUT=PARAM");
  opts.feed = "9=0";
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY, "output 9 does not exist (the module has 3 outputs");
  opts.feed = "1=9";
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY, "feeds parameter 9");
  opts.feed = "1=2";
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY, "is f32[] but parameter 2 (%x)");
  opts.feed = "1=0,2=0";
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY, "parameter 0 (%w) is fed twice");
}

static void
test_bad_inputs (Fixture *fx, gconstpointer data)
{
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 1;
  const float four[4] = { 1, 2, 3, 4 };

  g_autofree char *shape_dir = inputs_dir (fx, "shape");
  write_f32 (fx, shape_dir, "x.npy", 4, four);
  opts.inputs_dir = shape_dir;
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY, "parameter 2 (%x) expects f32[8] but the file holds f32[4]");

  g_autofree char *type_dir = inputs_dir (fx, "type");
  {
    g_autoptr (GError) error = NULL;
    int64_t dims[1] = { 8 };
    FbLiteral *lit = fb_literal_new (fx->arena, fb_shape_new_array (fx->arena, FB_S32, 1, dims));
    g_autofree char *path = g_build_filename (type_dir, "param.2.npy", NULL);
    g_assert_true (fb_npy_save (path, lit, &error));
  }
  opts.inputs_dir = type_dir;
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY, "param.2.npy: parameter 2 (%x) expects f32[8] but the file holds s32[8]");

  g_autofree char *stray_dir = inputs_dir (fx, "stray");
  write_f32 (fx, stray_dir, "y.npy", 4, four);
  opts.inputs_dir = stray_dir;
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY, "y.npy: matches no parameter");

  g_autofree char *range_dir = inputs_dir (fx, "range");
  write_f32 (fx, range_dir, "param.7.npy", 4, four);
  opts.inputs_dir = range_dir;
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY, "there is no parameter 7; the entry computation has 3 parameters");

  g_autofree char *twice_dir = inputs_dir (fx, "twice");
  write_f32 (fx, twice_dir, "param.2.npy", 8, xs);
  write_f32 (fx, twice_dir, "x.npy", 8, xs);
  opts.inputs_dir = twice_dir;
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY, "is also given by");

  g_autofree char *broken_dir = inputs_dir (fx, "broken");
  g_autofree char *broken = g_build_filename (broken_dir, "x.npy", NULL);
  g_assert_true (g_file_set_contents (broken, "\x93NUMPY\x01", -1, NULL));
  opts.inputs_dir = broken_dir;
  expect_failure (fx->module, &opts, FB_ERROR_PARSE, "x.npy: truncated .npy file");

  g_autofree char *missing = g_build_filename (fx->dir, "missing", NULL);
  opts.inputs_dir = missing;
  expect_failure (fx->module, &opts, FB_ERROR_IO, "cannot open the inputs directory");
}

static void
test_bad_options (Fixture *fx, gconstpointer data)
{
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 0;
  expect_failure (fx->module, &opts, FB_ERROR_USAGE, "at least 1");

  opts.steps = 1;
  opts.loss_output = 3;
  expect_failure (fx->module, &opts, FB_ERROR_VERIFY, "loss output 3 does not exist");

  g_autoptr (GError) error = NULL;
  FbRunResult res;
  opts.loss_output = -1;
  opts.backend = "no-such-backend";
  g_assert_false (fb_runner_run (fx->module, &opts, &res, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "no-such-backend"));
}

/* Cancelling from the step callback after step 2: the run stops before
 * step 3, says it was cancelled, and keeps the two steps it ran. */
typedef struct {
  GCancellable *cancellable;
  int           calls;
} CancelLog;

static void
cancel_after_two (int step, double loss, gpointer user_data)
{
  CancelLog *log = user_data;
  log->calls++;
  if (step == 2)
    g_cancellable_cancel (log->cancellable);
}

static void
test_cancel (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  CancelLog log = { cancellable, 0 };
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = 10;
  opts.seed = 1;
  opts.on_step = cancel_after_two;
  opts.on_step_data = &log;
  opts.cancellable = cancellable;

  FbRunResult res;
  g_assert_false (fb_runner_run (fx->module, &opts, &res, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (log.calls, ==, 2);
  g_assert_cmpint (res.steps, ==, 2);
  g_assert_cmpstr (res.backend, ==, "interp");
  g_assert_true (isfinite (res.losses[0]));
  g_assert_true (isfinite (res.losses[1]));
  g_assert_cmpfloat (res.steps_per_s, >, 0);
  fb_run_result_clear (&res);

  /* Cancelled before it starts: no step runs. */
  g_clear_error (&error);
  log.calls = 0;
  g_assert_false (fb_runner_run (fx->module, &opts, &res, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (log.calls, ==, 0);
  g_assert_cmpint (res.steps, ==, 0);
  fb_run_result_clear (&res);
}

/* Outputs take their parameters' places without a copy; one output is a
 * parameter returned as it came, which must still be valid in every later
 * step (its memory is the previous state's). The loss is sum (w) + sum (b)
 * with w += 1 every step and b passed through: it grows by exactly 4. */
static void
test_feed_passthrough (Fixture *fx, gconstpointer data)
{
  static const char text[] =
    "HloModule passthrough, input_output_alias={ {1}: (0, {}, may-alias), {2}: (1, {}, may-alias) }\n"
    "add {\n"
    "  x = f32[] parameter(0)\n"
    "  y = f32[] parameter(1)\n"
    "  ROOT s = f32[] add(x, y)\n"
    "}\n"
    "ENTRY e {\n"
    "  w = f32[64] parameter(0)\n"
    "  b = f32[64] parameter(1)\n"
    "  one = f32[] constant(1)\n"
    "  ob = f32[64] broadcast(one), dimensions={}\n"
    "  w2 = f32[64] add(w, ob)\n"
    "  z = f32[] constant(0)\n"
    "  wb = f32[64] add(w, b)\n"
    "  s = f32[] reduce(wb, z), dimensions={0}, to_apply=add\n"
    "  ROOT t = (f32[], f32[64], f32[64]) tuple(s, w2, b)\n"
    "}\n";
  const char *backends[] = { "interp", "cpu" };
  for (guint k = 0; k < G_N_ELEMENTS (backends); k++)
    {
      g_autoptr (GError) error = NULL;
      FbModule *m = fb_hlo_parse (text, strlen (text), "passthrough.hlo", 0, &error);
      g_assert_no_error (error);
      FbRunOptions opts;
      fb_run_options_init (&opts);
      opts.backend = backends[k];
      opts.steps = 6;
      opts.seed = 3;
      FbRunResult res;
      g_assert_true (fb_runner_run (m, &opts, &res, &error));
      g_assert_no_error (error);
      g_assert_cmpint (res.steps, ==, 6);
      for (int i = 1; i < 6; i++)
        g_assert_cmpfloat_with_epsilon (res.losses[i] - res.losses[0], 64.0 * i, 1e-3);
      fb_run_result_clear (&res);
      fb_module_free (m);
    }
}

/* The measured memory of a run holds what the runner keeps alive (the state,
 * this step's data and result, the previous step's result until the next
 * step has run), so its peak does not grow with the number of steps. */
static guint64
measured_peak (Fixture *fx, int steps)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FbMemoryTimeline) memory = fb_memory_timeline_new ();
  FbRunOptions opts;
  fb_run_options_init (&opts);
  opts.steps = steps;
  opts.memory = memory;
  FbRunResult res;
  g_assert_true (fb_runner_run (fx->module, &opts, &res, &error));
  g_assert_no_error (error);
  fb_run_result_clear (&res);
  guint n = 0;
  fb_memory_timeline_get_events (memory, &n);
  g_assert_cmpuint (n, >, 0);
  return fb_memory_timeline_get_peak (memory, NULL);
}

static void
test_memory_steady (Fixture *fx, gconstpointer data)
{
  guint64 short_run = measured_peak (fx, 3);
  guint64 long_run = measured_peak (fx, 12);
  g_assert_cmpuint (long_run, ==, short_run);
  /* w, b, x (8 floats) and the result (loss, w, b), for two steps at most. */
  g_assert_cmpuint (short_run, >=, 4 + 4 + 32 + 12);
  g_assert_cmpuint (short_run, <=, 2 * (4 + 4 + 32 + 12));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/backends/runner/linreg/loss-decreases", test_loss_decreases);
  ADD ("/backends/runner/linreg/deterministic", test_deterministic);
  ADD ("/backends/runner/linreg/npy-inputs", test_npy_inputs);
  ADD ("/backends/runner/linreg/callbacks", test_callbacks);
  ADD ("/backends/runner/feed", test_feed);
  ADD ("/backends/runner/feed-passthrough", test_feed_passthrough);
  ADD ("/backends/runner/save-outputs", test_save_outputs);
  ADD ("/backends/runner/no-loss", test_no_loss);
  ADD ("/backends/runner/errors/alias", test_bad_alias);
  ADD ("/backends/runner/errors/feed", test_bad_feed);
  ADD ("/backends/runner/errors/inputs", test_bad_inputs);
  ADD ("/backends/runner/errors/options", test_bad_options);
  ADD ("/backends/runner/cancel", test_cancel);
  ADD ("/backends/runner/memory-steady", test_memory_steady);
#undef ADD
  return g_test_run ();
}
