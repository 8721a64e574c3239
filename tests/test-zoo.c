/* SPDX-License-Identifier: MIT
 *
 * Tests of the model zoo: every model generates a module that verifies and
 * survives a print/parse round trip, trains on the reference interpreter
 * (the loss falls), aliases every updated parameter, carries optimizer state
 * of the right shapes, and computes the gradients that finite differences
 * of the loss give. The shipped sample models must be exactly what
 * `fusebox-cli gen` writes today.
 */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-npy.h"
#include "fb-verify.h"
#include "fb-zoo.h"

/* Small, fast configurations of every model, as option key/value pairs. */
typedef struct {
  const char *model;
  const char *const *options;   /* NULL-terminated key, value, key, value... */
  int         steps;
} Config;

static const char *const mlp_small[] = { "layers", "12,16,4", "batch", "16", "lr", "0.1", NULL };
static const char *const cnn_small[] = { "image", "12", "channels", "2,4", "hidden", "16", "classes", "4",
                                         "batch", "8", "lr", "0.05", NULL };
static const char *const tr_small[] = { "layers", "1", "heads", "2", "dmodel", "16", "seq", "6", "vocab", "12",
                                        "batch", "4", "optimizer", "adam", "lr", "0.02", NULL };
static const char *const res_small[] = { "image", "4", "channels", "3", "classes", "3", "batch", "8",
                                         "optimizer", "momentum", "lr", "0.05", NULL };

static const Config configs[] = {
  { "mlp", mlp_small, 50 },
  { "cnn", cnn_small, 50 },
  { "transformer", tr_small, 50 },
  { "resnet-block", res_small, 50 },
};

static FbModule *
generate (const char *model, const char *const *opts, const char *extra_key, const char *extra_value)
{
  g_autoptr (FbZooOptions) o = fb_zoo_options_new ();
  g_autoptr (GError) error = NULL;
  for (int i = 0; opts && opts[i]; i += 2)
    {
      fb_zoo_options_set (o, opts[i], opts[i + 1], &error);
      g_assert_no_error (error);
    }
  if (extra_key)
    {
      fb_zoo_options_set (o, extra_key, extra_value, &error);
      g_assert_no_error (error);
    }
  FbModule *m = fb_zoo_generate (model, o, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  return m;
}

/* ------------------------------------------------------------ training */

typedef struct {
  FbModule   *module;
  int         n;
  FbLiteral **args;
  FbArena    *fixed;     /* initial values and data */
  FbArena    *last;      /* results of the latest step */
} Trainer;

static void
trainer_init (Trainer *t, FbModule *m)
{
  g_autoptr (GError) error = NULL;
  t->module = m;
  t->n = m->entry->n_params;
  t->args = g_new0 (FbLiteral *, t->n);
  t->fixed = fb_arena_new ();
  t->last = NULL;
  for (int p = 0; p < t->n; p++)
    {
      t->args[p] = fb_literal_new (t->fixed, m->entry->params[p]->shape);
      fb_zoo_fill_parameter (m, p, 1, t->args[p], &error);
      g_assert_no_error (error);
    }
}

static void
trainer_clear (Trainer *t)
{
  fb_arena_free (t->fixed);
  fb_arena_free (t->last);
  g_free (t->args);
}

/* One step: returns the loss and feeds the outputs back through the aliasing. */
static double
trainer_step (Trainer *t)
{
  g_autoptr (GError) error = NULL;
  FbArena *arena = fb_arena_new ();
  FbLiteral *out = fb_interp_run (t->module, t->module->entry, arena, t->n, t->args, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (out);
  g_assert_cmpint (out->n_elems, ==, 1 + t->module->n_aliases);
  for (int i = 0; i < t->module->n_aliases; i++)
    {
      const FbAlias *a = &t->module->aliases[i];
      t->args[a->param_number] = out->elems[a->output_index.v[0]];
    }
  double loss = fb_literal_get_f64 (out->elems[0], 0);
  fb_arena_free (t->last);
  t->last = arena;
  return loss;
}

static void
test_train (gconstpointer data)
{
  const Config *c = data;
  FbModule *m = generate (c->model, c->options, NULL, NULL);
  Trainer t;
  trainer_init (&t, m);
  double first = trainer_step (&t), loss = first;
  for (int s = 1; s < c->steps; s++)
    {
      loss = trainer_step (&t);
      g_assert_true (isfinite (loss));
    }
  g_test_message ("%s: loss %g -> %g after %d steps", c->model, first, loss, c->steps);
  g_assert_cmpfloat (first, >, 0.1);
  g_assert_cmpfloat (loss, <, 0.6 * first);
  trainer_clear (&t);
  fb_module_free (m);
}

/* The default mlp (784-1024-1024-10, batch 128) trains for a few steps. */
static void
test_train_default_mlp (void)
{
  FbModule *m = generate ("mlp", NULL, NULL, NULL);
  Trainer t;
  trainer_init (&t, m);
  double l0 = trainer_step (&t);
  double l1 = trainer_step (&t);
  double l2 = trainer_step (&t);
  g_test_message ("default mlp: %g %g %g", l0, l1, l2);
  g_assert_true (isfinite (l0) && isfinite (l2));
  g_assert_cmpfloat (l2, <, l0);
  trainer_clear (&t);
  fb_module_free (m);
}

/* --------------------------------------------------- structure checks */

static void
test_roundtrip (gconstpointer data)
{
  const Config *c = data;
  g_autoptr (GError) error = NULL;
  FbModule *m = generate (c->model, c->options, NULL, NULL);
  fb_verify (m, &error);
  g_assert_no_error (error);

  g_autofree char *text = fb_hlo_to_string (m, FB_PRINT_LONG);
  FbModule *back = fb_hlo_parse (text, strlen (text), "generated.hlo", 0, &error);
  g_assert_no_error (error);
  fb_verify (back, &error);
  g_assert_no_error (error);
  g_autoptr (GString) why = g_string_new (NULL);
  if (!fb_module_equal (m, back, why))
    g_error ("%s does not parse back equal: %s", c->model, why->str);
  g_autofree char *again = fb_hlo_to_string (back, FB_PRINT_LONG);
  g_assert_cmpstr (text, ==, again);

  /* The values are reproducible from the text alone. */
  FbArena *arena = fb_arena_new ();
  for (int p = 0; p < m->entry->n_params; p++)
    {
      FbLiteral *a = fb_literal_new (arena, m->entry->params[p]->shape);
      FbLiteral *b = fb_literal_new (arena, back->entry->params[p]->shape);
      fb_zoo_fill_parameter (m, p, 3, a, &error);
      g_assert_no_error (error);
      fb_zoo_fill_parameter (back, p, 3, b, &error);
      g_assert_no_error (error);
      g_assert_true (fb_literal_equal (a, b));
    }
  fb_arena_free (arena);
  fb_module_free (back);
  fb_module_free (m);
}

/* Every weight and state parameter is fed by an output of its shape; data
 * and labels are not. */
static void
test_aliasing (gconstpointer data)
{
  const Config *c = data;
  static const char *const optimizers[] = { "sgd", "momentum", "adam" };
  for (gsize k = 0; k < G_N_ELEMENTS (optimizers); k++)
    {
      FbModule *m = generate (c->model, c->options, "optimizer", optimizers[k]);
      FbComputation *e = m->entry;
      FbShape *root = e->root->shape;
      g_assert_true (fb_shape_is_tuple (root));
      g_assert_cmpint (root->n_elems, ==, 1 + m->n_aliases);
      g_assert_cmpint (root->elems[0]->rank, ==, 0);
      g_assert_cmpint (root->elems[0]->type, ==, FB_F32);
      g_assert_cmpint (m->n_aliases, ==, e->n_params - 2);
      gboolean *fed = g_new0 (gboolean, e->n_params);
      for (int i = 0; i < m->n_aliases; i++)
        {
          const FbAlias *a = &m->aliases[i];
          g_assert_cmpint (a->output_index.n, ==, 1);
          int64_t out = a->output_index.v[0];
          g_assert_cmpint (out, >=, 1);
          g_assert_true (fb_shape_compatible (root->elems[out], e->params[a->param_number]->shape));
          fed[a->param_number] = TRUE;
        }
      for (int p = 0; p < e->n_params; p++)
        {
          FbZooRole role = fb_zoo_parameter_role (m, p);
          gboolean learnable = role == FB_ZOO_ROLE_WEIGHT || role == FB_ZOO_ROLE_STATE;
          g_assert_true (role != FB_ZOO_ROLE_NONE);
          g_assert_cmpint (fed[p], ==, learnable);
        }
      g_assert_cmpint (fb_zoo_parameter_role (m, e->n_params - 2), ==, FB_ZOO_ROLE_DATA);
      g_assert_cmpint (fb_zoo_parameter_role (m, e->n_params - 1), ==, FB_ZOO_ROLE_LABELS);
      g_free (fed);
      fb_module_free (m);
    }
}

static int
count_role (FbModule *m, FbZooRole role)
{
  int n = 0;
  for (int p = 0; p < m->entry->n_params; p++)
    n += fb_zoo_parameter_role (m, p) == role;
  return n;
}

static void
test_optimizer_state (void)
{
  FbModule *sgd = generate ("mlp", mlp_small, "optimizer", "sgd");
  FbModule *mom = generate ("mlp", mlp_small, "optimizer", "momentum");
  FbModule *adam = generate ("mlp", mlp_small, "optimizer", "adam");
  int nw = count_role (sgd, FB_ZOO_ROLE_WEIGHT);
  g_assert_cmpint (nw, ==, 4);   /* two dense layers: kernel and bias each */
  g_assert_cmpint (count_role (sgd, FB_ZOO_ROLE_STATE), ==, 0);
  g_assert_cmpint (count_role (mom, FB_ZOO_ROLE_STATE), ==, nw);
  g_assert_cmpint (count_role (adam, FB_ZOO_ROLE_STATE), ==, 2 * nw + 1);
  for (int i = 0; i < nw; i++)
    {
      FbShape *w = sgd->entry->params[i]->shape;
      g_assert_true (fb_shape_compatible (mom->entry->params[nw + i]->shape, w));
      g_assert_true (fb_shape_compatible (adam->entry->params[nw + i]->shape, w));
      g_assert_true (fb_shape_compatible (adam->entry->params[2 * nw + i]->shape, w));
    }
  FbShape *step = adam->entry->params[3 * nw]->shape;
  g_assert_cmpint (step->rank, ==, 0);
  g_assert_cmpint (step->type, ==, FB_F32);

  /* After one adam step the step counter reads 1. */
  Trainer t;
  trainer_init (&t, adam);
  trainer_step (&t);
  g_assert_cmpfloat (fb_literal_get_f64 (t.args[3 * nw], 0), ==, 1.0);
  trainer_step (&t);
  g_assert_cmpfloat (fb_literal_get_f64 (t.args[3 * nw], 0), ==, 2.0);
  trainer_clear (&t);

  fb_module_free (sgd);
  fb_module_free (mom);
  fb_module_free (adam);
}

/* ---------------------------------------------------- finite differences */

/* The tiny mlp's loss in f64, straight from the definition. */
static double
mlp_loss_f64 (const int64_t *sizes, int n_sizes, int64_t batch, double *const *w, const double *x,
              const double *y)
{
  double total = 0;
  for (int64_t bi = 0; bi < batch; bi++)
    {
      double h[64], next[64];
      for (int64_t i = 0; i < sizes[0]; i++)
        h[i] = x[bi * sizes[0] + i];
      for (int l = 1; l < n_sizes; l++)
        {
          const double *k = w[2 * (l - 1)], *bias = w[2 * (l - 1) + 1];
          for (int64_t o = 0; o < sizes[l]; o++)
            {
              double s = bias[o];
              for (int64_t i = 0; i < sizes[l - 1]; i++)
                s += h[i] * k[i * sizes[l] + o];
              next[o] = l < n_sizes - 1 ? MAX (s, 0.0) : s;
            }
          memcpy (h, next, sizeof (double) * sizes[l]);
        }
      int64_t c = sizes[n_sizes - 1];
      double mx = h[0], sum = 0;
      for (int64_t o = 1; o < c; o++)
        mx = MAX (mx, h[o]);
      for (int64_t o = 0; o < c; o++)
        sum += exp (h[o] - mx);
      for (int64_t o = 0; o < c; o++)
        total -= y[bi * c + o] * (h[o] - mx - log (sum));
    }
  return total / (double) batch;
}

static void
test_gradients (void)
{
  static const char *const tiny[] = { "layers", "5,7,3", "batch", "4", "lr", "1", NULL };
  const int64_t sizes[] = { 5, 7, 3 };
  const int64_t batch = 4;
  FbModule *m = generate ("mlp", tiny, NULL, NULL);
  Trainer t;
  trainer_init (&t, m);

  int nw = 4;
  double *w[4];
  int64_t nel[4];
  for (int i = 0; i < nw; i++)
    {
      nel[i] = fb_shape_elements (t.args[i]->shape);
      w[i] = g_new (double, nel[i]);
      for (int64_t j = 0; j < nel[i]; j++)
        w[i][j] = fb_literal_get_f64 (t.args[i], j);
    }
  /* Biases start at zero; give them values so their gradients are generic. */
  for (int64_t j = 0; j < nel[1]; j++)
    fb_literal_set_f64 (t.args[1], j, w[1][j] = 0.1 * (double) (j % 3) - 0.05);
  double *x = g_new (double, batch * sizes[0]), *y = g_new (double, batch * sizes[2]);
  for (int64_t j = 0; j < batch * sizes[0]; j++)
    x[j] = fb_literal_get_f64 (t.args[nw], j);
  for (int64_t j = 0; j < batch * sizes[2]; j++)
    y[j] = fb_literal_get_f64 (t.args[nw + 1], j);

  FbLiteral *before[4];
  for (int i = 0; i < nw; i++)
    before[i] = t.args[i];
  double loss = trainer_step (&t);
  double ref = mlp_loss_f64 (sizes, 3, batch, w, x, y);
  g_assert_cmpfloat_with_epsilon (loss, ref, 1e-5 * MAX (1.0, fabs (ref)));

  /* sgd with lr 1: the gradient is w - w'. */
  int checked = 0;
  for (int i = 0; i < nw; i++)
    for (int64_t j = 0; j < nel[i]; j++)
      {
        double g = fb_literal_get_f64 (before[i], j) - fb_literal_get_f64 (t.args[i], j);
        double keep = w[i][j], h = 1e-6;
        w[i][j] = keep + h;
        double up = mlp_loss_f64 (sizes, 3, batch, w, x, y);
        w[i][j] = keep - h;
        double down = mlp_loss_f64 (sizes, 3, batch, w, x, y);
        w[i][j] = keep;
        double fd = (up - down) / (2 * h);
        if (fabs (fd - g) > 1e-4 + 1e-3 * fabs (fd))
          g_error ("weight %d[%" G_GINT64_FORMAT "]: autodiff %g, finite differences %g", i, j, g, fd);
        checked++;
      }
  g_assert_cmpint (checked, ==, 5 * 7 + 7 + 7 * 3 + 3);

  for (int i = 0; i < nw; i++)
    g_free (w[i]);
  g_free (x);
  g_free (y);
  trainer_clear (&t);
  fb_module_free (m);
}

/* ----------------------------------------------------------- init, data */

static void
test_init_values (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = generate ("mlp", mlp_small, "seed", "7");
  FbModule *m2 = generate ("mlp", mlp_small, "seed", "8");
  FbArena *arena = fb_arena_new ();
  FbComputation *e = m->entry;

  /* dense0.kernel is he_uniform with fan_in 12: |w| <= sqrt (6 / 12). */
  FbLiteral *k = fb_literal_new (arena, e->params[0]->shape);
  g_assert_true (fb_zoo_fill_parameter (m, 0, 0, k, &error));
  double bound = sqrt (6.0 / 12.0), mx = 0, sum = 0;
  for (int64_t i = 0; i < 12 * 16; i++)
    {
      double v = fb_literal_get_f64 (k, i);
      mx = MAX (mx, fabs (v));
      sum += v;
    }
  g_assert_cmpfloat (mx, <=, bound);
  g_assert_cmpfloat (mx, >, 0.8 * bound);
  g_assert_cmpfloat (fabs (sum / (12 * 16)), <, 0.1);

  /* Another seed gives other weights; the bias starts at zero. */
  FbLiteral *k2 = fb_literal_new (arena, e->params[0]->shape);
  g_assert_true (fb_zoo_fill_parameter (m2, 0, 0, k2, &error));
  g_assert_false (fb_literal_equal (k, k2));
  FbLiteral *bias = fb_literal_new (arena, e->params[1]->shape);
  g_assert_true (fb_zoo_fill_parameter (m, 1, 0, bias, &error));
  g_assert_cmpfloat (fb_literal_get_f64 (bias, 3), ==, 0.0);

  /* Batches differ from step to step; labels are one-hot. */
  int xp = e->n_params - 2, yp = e->n_params - 1;
  FbLiteral *x1 = fb_literal_new (arena, e->params[xp]->shape);
  FbLiteral *x2 = fb_literal_new (arena, e->params[xp]->shape);
  FbLiteral *y1 = fb_literal_new (arena, e->params[yp]->shape);
  g_assert_true (fb_zoo_fill_parameter (m, xp, 1, x1, &error));
  g_assert_true (fb_zoo_fill_parameter (m, xp, 2, x2, &error));
  g_assert_true (fb_zoo_fill_parameter (m, yp, 1, y1, &error));
  g_assert_false (fb_literal_equal (x1, x2));
  int classes_seen[4] = { 0 };
  for (int64_t bi = 0; bi < 16; bi++)
    {
      double row = 0;
      for (int c = 0; c < 4; c++)
        {
          double v = fb_literal_get_f64 (y1, bi * 4 + c);
          g_assert_true (v == 0.0 || v == 1.0);
          row += v;
          classes_seen[c] += v == 1.0;
        }
      g_assert_cmpfloat (row, ==, 1.0);
    }
  int distinct = 0;
  for (int c = 0; c < 4; c++)
    distinct += classes_seen[c] > 0;
  g_assert_cmpint (distinct, >=, 2);

  /* Wrong shapes and non-zoo modules are errors, not crashes. */
  g_assert_false (fb_zoo_fill_parameter (m, 0, 0, bias, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_VERIFY);
  g_clear_error (&error);
  g_assert_false (fb_zoo_fill_parameter (m, 99, 0, bias, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_USAGE);
  g_clear_error (&error);
  const char *plain = "HloModule p\n\nENTRY %e (a: f32[2]) -> f32[2] {\n"
                      "  ROOT %a = f32[2]{0} parameter(0)\n}\n";
  FbModule *pm = fb_hlo_parse (plain, strlen (plain), "plain.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_false (fb_zoo_is_zoo_module (pm));
  g_assert_true (fb_zoo_is_zoo_module (m));
  FbLiteral *two = fb_literal_new (arena, pm->entry->params[0]->shape);
  g_assert_false (fb_zoo_fill_parameter (pm, 0, 0, two, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_assert_false (fb_zoo_init_fn (pm, 0, two, NULL));

  fb_module_free (pm);
  fb_arena_free (arena);
  fb_module_free (m);
  fb_module_free (m2);
}

static void
test_bad_options (void)
{
  struct { const char *model, *key, *value; int code; } cases[] = {
    { "nosuch", NULL, NULL, FB_ERROR_USAGE },
    { "mlp", "heads", "4", FB_ERROR_USAGE },
    { "mlp", "layers", "784", FB_ERROR_USAGE },
    { "mlp", "layers", "784,x,10", FB_ERROR_USAGE },
    { "cnn", "image", "13", FB_ERROR_USAGE },
    { "transformer", "heads", "3", FB_ERROR_USAGE },
    { "transformer", "tied", "maybe", FB_ERROR_USAGE },
    { "mlp", "lr", "-1", FB_ERROR_USAGE },
    { "mlp", "optimizer", "rmsprop", FB_ERROR_USAGE },
    { "mlp", "batch", "0", FB_ERROR_USAGE },
    { "mlp", "lr", "fast", FB_ERROR_USAGE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (FbZooOptions) o = fb_zoo_options_new ();
      g_autoptr (GError) error = NULL;
      FbModule *m = NULL;
      if (cases[i].key == NULL || fb_zoo_options_set (o, cases[i].key, cases[i].value, &error))
        m = fb_zoo_generate (cases[i].model, o, &error);
      g_assert_null (m);
      g_assert_error (error, FB_ERROR, cases[i].code);
      g_test_message ("%s --%s %s: %s", cases[i].model, cases[i].key, cases[i].value, error->message);
    }
  int n;
  fb_zoo_models (&n);
  g_assert_cmpint (n, ==, 4);
  g_assert_nonnull (fb_zoo_lookup ("resnet-block"));
  g_assert_null (fb_zoo_lookup ("resnet"));
}

/* ------------------------------------------------------------------ CLI */

static const char *
cli_path (void)
{
  return g_getenv ("FUSEBOX_CLI");
}

static int
run_cli (const char *const *argv_tail, char **out, char **err)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) cli_path ());
  for (int i = 0; argv_tail[i]; i++)
    g_ptr_array_add (argv, (gpointer) argv_tail[i]);
  g_ptr_array_add (argv, NULL);
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status, &error);
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* data/models/MODEL.hlo is what `fusebox-cli gen MODEL` writes today. */
static void
test_shipped (gconstpointer data)
{
  const char *model = data;
  const char *root = g_getenv ("FUSEBOX_SOURCE_ROOT");
  if (cli_path () == NULL || root == NULL)
    {
      g_test_skip ("FUSEBOX_CLI or FUSEBOX_SOURCE_ROOT is not set");
      return;
    }
  g_autofree char *base = g_strdup_printf ("%s.hlo", model);
  g_autofree char *path = g_build_filename (root, "data", "models", base, NULL);
  g_autofree char *shipped = NULL;
  g_autoptr (GError) error = NULL;
  g_file_get_contents (path, &shipped, NULL, &error);
  g_assert_no_error (error);

  g_autofree char *out = NULL, *err = NULL;
  const char *args[] = { "gen", model, NULL };
  int rc = run_cli (args, &out, &err);
  g_assert_cmpint (rc, ==, 0);
  if (strcmp (out, shipped) != 0)
    g_test_fail_printf ("data/models/%s.hlo is out of date; regenerate it from the source root with "
                        "`fusebox-cli gen %s -o data/models/%s.hlo`", model, model, model);
}

static void
test_cli (void)
{
  if (cli_path () == NULL)
    {
      g_test_skip ("FUSEBOX_CLI is not set");
      return;
    }
  struct { const char *args[8]; int rc; const char *needle; } cases[] = {
    { { "gen", "--list", NULL }, 0, "resnet-block" },
    { { "gen", "--help", NULL }, 0, "--optimizer" },
    { { "gen", NULL }, 2, "model" },
    { { "gen", "nosuch", NULL }, 2, "unknown model 'nosuch'" },
    { { "gen", "mlp", "--heads", "2", NULL }, 2, "no option --heads" },
    { { "gen", "mlp", "--lr", "abc", NULL }, 2, "not a number" },
    { { "gen", "mlp", "--bogus", NULL }, 2, "bogus" },
    { { "gen", "mlp", "--layers", "4,3", "--batch", "2", NULL }, 0, "input_output_alias" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = NULL, *err = NULL;
      int rc = run_cli (cases[i].args, &out, &err);
      g_test_message ("gen %s: %d %s", cases[i].args[1] ? cases[i].args[1] : "", rc, err);
      g_assert_cmpint (rc, ==, cases[i].rc);
      g_assert_nonnull (strstr (rc == 0 ? out : err, cases[i].needle));
    }
}

/* --dump-init writes every parameter as .npy, equal to the zoo's values. */
static void
test_cli_dump_init (void)
{
  if (cli_path () == NULL)
    {
      g_test_skip ("FUSEBOX_CLI is not set");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("fb-zoo-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *hlo = g_build_filename (dir, "m.hlo", NULL);
  g_autofree char *npy = g_build_filename (dir, "init", NULL);
  g_autofree char *out = NULL, *err = NULL;
  const char *args[] = { "gen", "mlp", "--layers", "6,5,3", "--batch", "4", "--optimizer", "momentum",
                         "-o", hlo, "--dump-init", npy, "--batches", "3", NULL };
  g_assert_cmpint (run_cli (args, &out, &err), ==, 0);

  g_autofree char *text = NULL;
  g_file_get_contents (hlo, &text, NULL, &error);
  g_assert_no_error (error);
  FbModule *m = fb_hlo_parse (text, strlen (text), hlo, 0, &error);
  g_assert_no_error (error);
  FbArena *arena = fb_arena_new ();
  for (int p = 0; p < m->entry->n_params; p++)
    {
      g_autofree char *base = g_strdup_printf ("param.%d.npy", p);
      g_autofree char *path = g_build_filename (npy, base, NULL);
      FbLiteral *got = fb_npy_load (arena, path, &error);
      g_assert_no_error (error);
      FbLiteral *want = fb_literal_new (arena, m->entry->params[p]->shape);
      g_assert_true (fb_zoo_fill_parameter (m, p, 1, want, &error));
      g_assert_true (fb_literal_equal (got, want));
      g_remove (path);
    }
  /* Batches of later steps sit in step.S/. */
  int xp = m->entry->n_params - 2;
  for (int s = 2; s <= 3; s++)
    for (int p = xp; p < xp + 2; p++)
      {
        g_autofree char *sub = g_strdup_printf ("step.%d", s);
        g_autofree char *base = g_strdup_printf ("param.%d.npy", p);
        g_autofree char *path = g_build_filename (npy, sub, base, NULL);
        FbLiteral *got = fb_npy_load (arena, path, &error);
        g_assert_no_error (error);
        FbLiteral *want = fb_literal_new (arena, m->entry->params[p]->shape);
        g_assert_true (fb_zoo_fill_parameter (m, p, s, want, &error));
        g_assert_true (fb_literal_equal (got, want));
        g_remove (path);
        g_autofree char *sdir = g_build_filename (npy, sub, NULL);
        g_rmdir (sdir);
      }
  g_autofree char *json = g_build_filename (npy, "params.json", NULL);
  g_assert_true (g_file_test (json, G_FILE_TEST_EXISTS));
  g_remove (json);
  g_rmdir (npy);
  g_remove (hlo);
  g_rmdir (dir);
  fb_arena_free (arena);
  fb_module_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (configs); i++)
    {
      g_autofree char *rt = g_strdup_printf ("/compiler/zoo/roundtrip/%s", configs[i].model);
      g_autofree char *al = g_strdup_printf ("/compiler/zoo/aliasing/%s", configs[i].model);
      g_autofree char *tr = g_strdup_printf ("/compiler/zoo/train/%s", configs[i].model);
      g_autofree char *sh = g_strdup_printf ("/compiler/zoo/shipped/%s", configs[i].model);
      g_test_add_data_func (rt, &configs[i], test_roundtrip);
      g_test_add_data_func (al, &configs[i], test_aliasing);
      g_test_add_data_func (tr, &configs[i], test_train);
      g_test_add_data_func (sh, configs[i].model, test_shipped);
    }
  g_test_add_func ("/compiler/zoo/train/mlp-default", test_train_default_mlp);
  g_test_add_func ("/compiler/zoo/optimizer-state", test_optimizer_state);
  g_test_add_func ("/compiler/zoo/gradients/finite-differences", test_gradients);
  g_test_add_func ("/compiler/zoo/init-values", test_init_values);
  g_test_add_func ("/compiler/zoo/bad-options", test_bad_options);
  g_test_add_func ("/compiler/zoo/cli/errors", test_cli);
  g_test_add_func ("/compiler/zoo/cli/dump-init", test_cli_dump_init);
  return g_test_run ();
}
