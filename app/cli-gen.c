/* SPDX-License-Identifier: MIT
 *
 * `fusebox-cli gen`: writes a zoo model's training step as HLO text (long
 * style), lists the models and their defaults, and with --dump-init writes
 * the initial parameters and synthetic batches as .npy files, so that the
 * same numbers can be fed to Fusebox (`run --inputs DIR`) and to PyTorch or
 * JAX for parity checks.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "fb-cli.h"
#include "fb-hlo.h"
#include "fb-npy.h"
#include "fb-zoo.h"

static const char *const role_names[] = { "none", "weight", "state", "data", "labels" };

static void
print_list (void)
{
  int n;
  const FbZooModelInfo *models = fb_zoo_models (&n);
  printf ("Models (common options: --batch B --optimizer sgd|momentum|adam --lr X --seed S):\n");
  for (int i = 0; i < n; i++)
    {
      printf ("\n  %-14s %s\n", models[i].name, models[i].summary);
      printf ("    --batch %-20" G_GINT64_FORMAT " batch size\n", models[i].default_batch);
      for (int j = 0; j < models[i].n_options; j++)
        {
          g_autofree char *opt = g_strdup_printf ("--%s %s", models[i].options[j].name,
                                                  models[i].options[j].default_value);
          printf ("    %-28s %s\n", opt, models[i].options[j].help);
        }
    }
  printf ("\nOptimizer defaults: sgd and momentum lr 0.01 (momentum 0.9); "
          "adam lr 0.001, beta1 0.9, beta2 0.999, eps 1e-8. Seed 1.\n");
}

static gboolean
save_param (FbModule *module, FbArena *arena, int p, int64_t step, const char *dir, GError **error)
{
  FbLiteral *lit = fb_literal_new (arena, fb_shape_copy (arena, module->entry->params[p]->shape));
  if (!fb_zoo_fill_parameter (module, p, step, lit, error))
    return FALSE;
  g_autofree char *base = g_strdup_printf ("param.%d.npy", p);
  g_autofree char *path = g_build_filename (dir, base, NULL);
  return fb_npy_save (path, lit, error);
}

static gboolean
make_dir (const char *dir, GError **error)
{
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int e = errno;
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: %s", dir, g_strerror (e));
      return FALSE;
    }
  return TRUE;
}

/* DIR/param.N.npy for every parameter (data and labels of step 1), so DIR
 * works as `run --inputs DIR`; DIR/step.S/param.N.npy with the data and
 * labels of steps 1..@batches; DIR/params.json describing them. */
static gboolean
dump_init (FbModule *module, const char *dir, int batches, GError **error)
{
  FbComputation *entry = module->entry;
  FbArena *arena = fb_arena_new ();
  gboolean ok = make_dir (dir, error);

  g_autoptr (GString) json = g_string_new ("{\n  \"module\": ");
  g_string_append_printf (json, "\"%s\",\n  \"batches\": %d,\n  \"params\": [\n", module->name, batches);
  for (int p = 0; ok && p < entry->n_params; p++)
    {
      FbZooRole role = fb_zoo_parameter_role (module, p);
      ok = save_param (module, arena, p, 1, dir, error);
      gboolean is_data = role == FB_ZOO_ROLE_DATA || role == FB_ZOO_ROLE_LABELS;
      for (int s = 2; ok && is_data && s <= batches; s++)
        {
          g_autofree char *sub = g_strdup_printf ("step.%d", s);
          g_autofree char *sdir = g_build_filename (dir, sub, NULL);
          ok = make_dir (sdir, error) && save_param (module, arena, p, s, sdir, error);
        }
      g_autofree char *shape = fb_shape_to_string (entry->params[p]->shape);
      g_string_append_printf (json, "    {\"number\": %d, \"name\": \"%s\", \"role\": \"%s\", \"shape\": \"%s\"}%s\n",
                              p, entry->params[p]->name, role_names[role], shape,
                              p + 1 < entry->n_params ? "," : "");
    }
  g_string_append (json, "  ]\n}\n");
  if (ok)
    {
      g_autofree char *path = g_build_filename (dir, "params.json", NULL);
      g_autoptr (GError) local = NULL;
      if (!g_file_set_contents (path, json->str, json->len, &local))
        {
          g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s", local->message);
          ok = FALSE;
        }
    }
  fb_arena_free (arena);
  return ok;
}

static gboolean
write_text (FbModule *module, const char *output, GError **error)
{
  g_autofree char *text = fb_hlo_to_string (module, FB_PRINT_LONG);
  if (output == NULL || strcmp (output, "-") == 0)
    {
      fputs (text, stdout);
      return fflush (stdout) == 0;
    }
  g_autoptr (GError) local = NULL;
  if (!g_file_set_contents (output, text, -1, &local))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "fusebox-cli gen: cannot write %s: %s", output, local->message);
      return FALSE;
    }
  return TRUE;
}

int
fb_cli_gen (int argc, char **argv)
{
  gboolean list = FALSE;
  char *output = NULL, *dump = NULL;
  int batches = 1;
  /* Every value option is kept as text and handed to fb_zoo_options_set,
   * which checks it; model options are checked against the model. */
  static const char *const keys[] = {
    "batch", "optimizer", "lr", "momentum", "beta1", "beta2", "eps", "seed",
    "layers", "heads", "dmodel", "seq", "vocab", "tied", "image", "channels", "hidden", "classes",
  };
  static const char *const descr[] = {
    "Batch size (default: the model's)", "sgd, momentum or adam (default sgd)",
    "Learning rate", "Momentum factor (momentum)", "Adam beta1", "Adam beta2", "Adam epsilon",
    "Seed of the initial weights and the data (default 1)",
    "mlp: widths, e.g. 784,1024,10; transformer: number of blocks", "transformer: attention heads",
    "transformer: model width", "transformer: sequence length", "transformer: vocabulary size",
    "transformer: tie the output projection to the embedding (yes/no)",
    "cnn, resnet-block: image side", "cnn: channels of the two convolutions (6,16); resnet-block: channels",
    "cnn: hidden dense width", "cnn, resnet-block: number of classes",
  };
  char *values[G_N_ELEMENTS (keys)] = { 0 };
  GOptionEntry entries[G_N_ELEMENTS (keys) + 6];
  memset (entries, 0, sizeof entries);
  int ne = 0;
  entries[ne++] = (GOptionEntry) { "list", 0, 0, G_OPTION_ARG_NONE, &list, "List the models and their defaults", NULL };
  entries[ne++] = (GOptionEntry) { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Write the HLO text to FILE (default: standard output)", "FILE" };
  entries[ne++] = (GOptionEntry) { "dump-init", 0, 0, G_OPTION_ARG_FILENAME, &dump, "Write the initial parameters and batches as .npy files into DIR", "DIR" };
  entries[ne++] = (GOptionEntry) { "batches", 0, 0, G_OPTION_ARG_INT, &batches, "With --dump-init: number of batches to write (default 1)", "N" };
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    entries[ne++] = (GOptionEntry) { keys[i], 0, 0, G_OPTION_ARG_STRING, &values[i], descr[i], "VALUE" };

  int rc = fb_cli_parse_options (&argc, &argv, "MODEL - generate a zoo model's training step",
                                 "Writes the training step of MODEL (see --list) as HLO text:\n"
                                 "loss, gradients and the optimizer update in one entry computation.",
                                 entries);
  g_autoptr (FbZooOptions) zopts = fb_zoo_options_new ();
  FbModule *module = NULL;
  g_autoptr (GError) error = NULL;

  if (rc != 0)
    goto out;
  if (list)
    {
      print_list ();
      rc = FB_EXIT_OK;
      goto out;
    }
  if (argc != 2)
    {
      fprintf (stderr, "fusebox-cli gen: %s\nTry `fusebox-cli gen --list` or `fusebox-cli gen --help`.\n",
               argc < 2 ? "which model? give exactly one MODEL" : "give exactly one MODEL");
      rc = FB_EXIT_USAGE;
      goto out;
    }
  if (batches < 1 || batches > 100000)
    {
      fprintf (stderr, "fusebox-cli gen: --batches must be between 1 and 100000\n");
      rc = FB_EXIT_USAGE;
      goto out;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    if (values[i] && !fb_zoo_options_set (zopts, keys[i], values[i], &error))
      break;
  if (error == NULL)
    module = fb_zoo_generate (argv[1], zopts, &error);
  if (module == NULL)
    {
      g_prefix_error (&error, "fusebox-cli gen: ");
      rc = fb_cli_fail (error);
      goto out;
    }

  if (!write_text (module, output, &error))
    {
      rc = fb_cli_fail (error);
      goto out;
    }
  if (dump && !dump_init (module, dump, batches, &error))
    {
      g_prefix_error (&error, "fusebox-cli gen: ");
      rc = fb_cli_fail (error);
      goto out;
    }
  rc = FB_EXIT_OK;

out:
  if (module)
    fb_module_free (module);
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    g_free (values[i]);
  g_free (output);
  g_free (dump);
  return rc;
}
