/* SPDX-License-Identifier: MIT
 *
 * The passes keep meaning: every zoo model (at small sizes) and every
 * corpus module the interpreter can run (FUSEBOX_CORPUS) is executed by the
 * reference interpreter on seeded random inputs before any pass, after each
 * pass run alone, and after the whole pipeline, and the outputs must agree:
 * exactly for integers and predicates, within a tolerance that follows the
 * element type for floats. The verifier runs after every pass. Corpus
 * modules too large to interpret quickly, or that the interpreter refuses,
 * are skipped and named in the test log.
 */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "fb-cost.h"
#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-pass.h"
#include "fb-verify.h"
#include "fb-zoo.h"

/* Estimated work above which a corpus module is not interpreted (it runs
 * once per pass, plus twice). */
#define MAX_BYTES 5.0e7
#define MAX_FLOPS 6.0e7

static FbLiteral *
interp_evaluator (FbModule *module, FbArena *arena, gpointer user_data, GError **error)
{
  return fb_interp_run (module, module->entry, arena, 0, NULL, NULL, error);
}

static void
fill_random (FbLiteral *lit, GRand *rand)
{
  for (int k = 0; k < lit->n_elems; k++)
    fill_random (lit->elems[k], rand);
  if (lit->data == NULL || !fb_elem_type_is_array (lit->shape->type))
    return;
  FbElemKind kind = fb_elem_type_kind (lit->shape->type);
  int64_t n = fb_shape_elements (lit->shape);
  for (int64_t i = 0; i < n; i++)
    switch (kind)
      {
      case FB_KIND_PRED:
        fb_literal_set_s64 (lit, i, g_rand_int_range (rand, 0, 2));
        break;
      case FB_KIND_SINT:
      case FB_KIND_UINT:
        /* Small: indices and sizes stay in range for gathers and slices. */
        fb_literal_set_s64 (lit, i, g_rand_int_range (rand, 0, 4));
        break;
      default:
        fb_literal_set_f64 (lit, i, g_rand_double_range (rand, -1, 1));
        break;
      }
}

static FbLiteral **
make_inputs (FbModule *m, FbArena *arena)
{
  GRand *rand = g_rand_new_with_seed (1234);
  FbComputation *e = m->entry;
  FbLiteral **args = fb_arena_new0 (arena, FbLiteral *, MAX (e->n_params, 1));
  gboolean zoo = fb_zoo_is_zoo_module (m);
  for (int p = 0; p < e->n_params; p++)
    {
      args[p] = fb_literal_new (arena, e->params[p]->shape);
      if (!zoo || !fb_zoo_fill_parameter (m, p, 0, args[p], NULL))
        fill_random (args[p], rand);
    }
  g_rand_free (rand);
  return args;
}

static double
tolerance (FbElemType t)
{
  switch (t)
    {
    case FB_F64: return 1e-9;
    case FB_F32: return 1e-5;
    case FB_F16:
    case FB_BF16: return 1e-2;
    default: return 1e-1;   /* 8-bit and smaller floats */
    }
}

/* NULL when equal, else a description of the first difference. */
static char *
compare (const FbLiteral *want, const FbLiteral *got, const char *where)
{
  if (!fb_shape_compatible (want->shape, got->shape))
    {
      g_autofree char *a = fb_shape_to_string (want->shape);
      g_autofree char *b = fb_shape_to_string (got->shape);
      return g_strdup_printf ("%s: shape %s became %s", where, a, b);
    }
  for (int k = 0; k < want->n_elems; k++)
    {
      g_autofree char *sub = g_strdup_printf ("%s{%d}", where, k);
      char *why = compare (want->elems[k], got->elems[k], sub);
      if (why)
        return why;
    }
  if (want->data == NULL || !fb_elem_type_is_array (want->shape->type))
    return NULL;
  FbElemType t = want->shape->type;
  int64_t n = fb_shape_elements (want->shape);
  gboolean is_float = fb_elem_type_is_float (t) || fb_elem_type_kind (t) == FB_KIND_COMPLEX;
  double tol = fb_elem_type_kind (t) == FB_KIND_COMPLEX ? 1e-5 : tolerance (t);
  for (int64_t i = 0; i < n; i++)
    {
      if (!is_float)
        {
          if (fb_literal_get_s64 (want, i) != fb_literal_get_s64 (got, i))
            return g_strdup_printf ("%s[%" G_GINT64_FORMAT "]: %" G_GINT64_FORMAT " became %" G_GINT64_FORMAT, where,
                                    i, fb_literal_get_s64 (want, i), fb_literal_get_s64 (got, i));
          continue;
        }
      double a = fb_literal_get_f64 (want, i), b = fb_literal_get_f64 (got, i);
      if (isnan (a) && isnan (b))
        continue;
      if (a == b)
        continue;
      if (!(fabs (a - b) <= tol * MAX (1.0, MAX (fabs (a), fabs (b)))))
        return g_strdup_printf ("%s[%" G_GINT64_FORMAT "]: %.9g became %.9g", where, i, a, b);
    }
  return NULL;
}

/* Runs the passes of @spec over a clone of @orig and compares its outputs
 * on @args with @want. */
static void
check_spec (FbModule *orig, const char *what, const char *spec, FbLiteral *const *args, const FbLiteral *want)
{
  FbModule *m = fb_module_clone (orig);
  FbPipeline *p = fb_pipeline_new_default ();
  g_autoptr (GError) error = NULL;
  g_assert_true (fb_pipeline_set_spec (p, spec, &error));
  FbPipelineOptions options = { .verify_each = TRUE, .keep_snapshots = FALSE };
  GPtrArray *snaps = fb_pipeline_run (p, m, &options, &error);
  if (snaps == NULL)
    g_error ("%s, passes %s: %s", what, spec, error->message);
  g_ptr_array_unref (snaps);
  fb_pipeline_free (p);

  FbArena *arena = fb_arena_new ();
  FbLiteral *got = fb_interp_run (m, m->entry, arena, m->entry->n_params, args, NULL, &error);
  if (got == NULL)
    g_error ("%s runs before the passes but not after %s: %s", what, spec, error->message);
  g_autofree char *where = g_strdup_printf ("%s after %s: output", what, spec);
  g_autofree char *why = compare (want, got, where);
  if (why)
    g_error ("%s", why);
  fb_arena_free (arena);
  fb_module_free (m);
}

/* TRUE when @m was checked, FALSE (with a message) when it was skipped. */
static gboolean
check_module (FbModule *m, const char *what)
{
  g_autoptr (GError) error = NULL;
  if (m->entry == NULL)
    {
      g_test_message ("skipped %s: no entry computation", what);
      return FALSE;
    }
  if (!fb_verify (m, &error))
    {
      g_test_message ("skipped %s: does not verify: %s", what, error->message);
      return FALSE;
    }
  FbCost cost = fb_cost_computation (m->entry);
  if (cost.bytes > MAX_BYTES || cost.flops > MAX_FLOPS)
    {
      g_test_message ("skipped %s: too large to interpret quickly (%.3g bytes, %.3g flops)", what, cost.bytes,
                      cost.flops);
      return FALSE;
    }
  FbArena *arena = fb_arena_new ();
  FbLiteral **args = make_inputs (m, arena);
  FbModule *ref = fb_module_clone (m);
  FbLiteral *want = fb_interp_run (ref, ref->entry, arena, m->entry->n_params, args, NULL, &error);
  fb_module_free (ref);
  if (want == NULL)
    {
      g_test_message ("skipped %s: the interpreter refuses it: %s", what, error->message);
      fb_arena_free (arena);
      return FALSE;
    }
  int n;
  const FbPass *const *all = fb_passes_all (&n);
  for (int i = 0; i < n; i++)
    check_spec (m, what, all[i]->name, args, want);
  check_spec (m, what, "all", args, want);
  fb_arena_free (arena);
  return TRUE;
}

static const char *const mlp_small[] = { "layers", "6,8,3", "batch", "4", NULL };
static const char *const cnn_small[] = { "image", "12", "channels", "2,3", "hidden", "8", "classes", "3",
                                         "batch", "2", NULL };
static const char *const tr_small[] = { "layers", "1", "heads", "2", "dmodel", "8", "seq", "4", "vocab", "8",
                                        "batch", "2", "optimizer", "adam", NULL };
static const char *const res_small[] = { "image", "4", "channels", "2", "classes", "3", "batch", "2",
                                         "optimizer", "momentum", NULL };

static const char *const *
zoo_options (const char *model)
{
  if (strcmp (model, "mlp") == 0)
    return mlp_small;
  if (strcmp (model, "cnn") == 0)
    return cnn_small;
  if (strcmp (model, "transformer") == 0)
    return tr_small;
  if (strcmp (model, "resnet-block") == 0)
    return res_small;
  return NULL;
}

static void
test_zoo (gconstpointer data)
{
  const char *model = data;
  g_autoptr (FbZooOptions) o = fb_zoo_options_new ();
  g_autoptr (GError) error = NULL;
  const char *const *opts = zoo_options (model);
  for (int i = 0; opts && opts[i]; i += 2)
    g_assert_true (fb_zoo_options_set (o, opts[i], opts[i + 1], &error));
  FbModule *m = fb_zoo_generate (model, o, &error);
  g_assert_no_error (error);
  g_autofree char *what = g_strdup_printf ("zoo model %s", model);
  g_assert_true (check_module (m, what));
  fb_module_free (m);
}

static void
test_corpus (gconstpointer data)
{
  const char *path = data;
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &text, &len, &error));
  g_autofree char *base = g_path_get_basename (path);
  int n = fb_hlo_count_modules (text, len), checked = 0;
  for (int i = 0; i < n; i++)
    {
      g_autoptr (GError) local = NULL;
      FbModule *m = fb_hlo_parse (text, len, path, i, &local);
      g_autofree char *what = n > 1 ? g_strdup_printf ("%s module %d", base, i) : g_strdup (base);
      if (m == NULL)
        {
          g_test_message ("skipped %s: %s", what, local->message);
          continue;
        }
      checked += check_module (m, what);
      fb_module_free (m);
    }
  if (checked == 0)
    g_test_skip ("no module of this file can be interpreted quickly; see the log for why");
}

static void
test_corpus_unset (void)
{
  g_test_skip ("FUSEBOX_CORPUS is not set (point it at the directory of real .hlo modules)");
}

static int
cmp_paths (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  fb_pass_set_constant_evaluator (interp_evaluator, NULL);

  int n_models;
  const FbZooModelInfo *models = fb_zoo_models (&n_models);
  for (int i = 0; i < n_models; i++)
    {
      g_autofree char *path = g_strdup_printf ("/semantics/zoo/%s", models[i].name);
      g_test_add_data_func (path, models[i].name, test_zoo);
    }

  const char *dir = g_getenv ("FUSEBOX_CORPUS");
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  if (dir == NULL)
    g_test_add_func ("/semantics/corpus", test_corpus_unset);
  else
    {
      g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
      const char *name;
      while (d && (name = g_dir_read_name (d)))
        if (g_str_has_suffix (name, ".hlo"))
          g_ptr_array_add (files, g_build_filename (dir, name, NULL));
      g_ptr_array_sort (files, cmp_paths);
      for (guint i = 0; i < files->len; i++)
        {
          g_autofree char *base = g_path_get_basename (files->pdata[i]);
          g_autofree char *path = g_strdup_printf ("/semantics/corpus/%s", base);
          g_test_add_data_func (path, files->pdata[i], test_corpus);
        }
      if (files->len == 0)
        g_test_add_func ("/semantics/corpus", test_corpus_unset);
    }
  return g_test_run ();
}
