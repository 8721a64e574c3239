/* SPDX-License-Identifier: MIT
 *
 * `fusebox-cli passes` and `fusebox-cli compile`. The first lists the
 * compiler passes in pipeline order with their one-line summaries, or
 * explains one of them. The second runs the pipeline over a module and
 * prints a table with one row per pass (plus the input): whether it ran,
 * whether it changed anything, and the statistics after it (instructions,
 * kernels, estimated bytes moved, peak memory, wall time). --explain lists
 * each pass's decisions under its row, --dump-after-each writes the module
 * after every pass that ran as NN.after_PASS.hlo, --json prints the same
 * facts as one JSON object.
 *
 * Constant folding evaluates with the reference interpreter, which is
 * registered here for the whole program (the compiler library does not
 * link the backends).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "fb-cli.h"
#include "fb-cpu-codegen.h"
#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-pass.h"
#include "fb-verify.h"

static FbLiteral *
interp_evaluator (FbModule *module, FbArena *arena, gpointer user_data, GError **error)
{
  return fb_interp_run (module, module->entry, arena, 0, NULL, NULL, error);
}

static void
use_interp_for_folding (void)
{
  if (fb_pass_get_constant_evaluator (NULL) == NULL)
    fb_pass_set_constant_evaluator (interp_evaluator, NULL);
}

gboolean
fb_cli_apply_passes (FbModule *module, const char *spec, GError **error)
{
  use_interp_for_folding ();
  FbPipeline *p = fb_pipeline_new_default ();
  if (!fb_pipeline_set_spec (p, spec, error))
    {
      g_prefix_error (error, "fusebox-cli: --passes: ");
      fb_pipeline_free (p);
      return FALSE;
    }
  int on = 0;
  for (int i = 0; i < p->n; i++)
    on += p->entries[i].enabled;
  /* With none, the module is left to the caller as it is. */
  if (on == 0)
    {
      fb_pipeline_free (p);
      return TRUE;
    }
  if (!fb_verify (module, error))
    {
      fb_pipeline_free (p);
      return FALSE;
    }
  FbPipelineOptions options = { .verify_each = FALSE, .keep_snapshots = FALSE };
  GPtrArray *snaps = fb_pipeline_run (p, module, &options, error);
  fb_pipeline_free (p);
  if (snaps == NULL)
    return FALSE;
  g_ptr_array_unref (snaps);
  return TRUE;
}

/* ----------------------------------------------------------- formatting */

/* Prints @text wrapped at @width columns, each line indented by @indent. */
static void
print_wrapped (const char *text, int indent, int width)
{
  g_auto (GStrv) words = g_strsplit (text, " ", -1);
  int col = 0;
  for (int i = 0; words[i]; i++)
    {
      int len = (int) strlen (words[i]);
      if (len == 0)
        continue;
      if (col > 0 && col + 1 + len > width)
        {
          printf ("\n");
          col = 0;
        }
      if (col == 0)
        col = printf ("%*s%s", indent, "", words[i]);
      else
        col += printf (" %s", words[i]);
    }
  if (col > 0)
    printf ("\n");
}

static char *
bytes_text (double b)
{
  static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  int u = 0;
  while (b >= 1024 && u < (int) G_N_ELEMENTS (units) - 1)
    {
      b /= 1024;
      u++;
    }
  return u == 0 ? g_strdup_printf ("%.0f B", b) : g_strdup_printf ("%.1f %s", b, units[u]);
}

static int
usage_error (const char *command, const char *message)
{
  fprintf (stderr, "fusebox-cli %s: %s\nRun `fusebox-cli %s --help` for the options.\n", command, message, command);
  return FB_EXIT_USAGE;
}

/* ------------------------------------------------------------- passes */

int
fb_cli_passes (int argc, char **argv)
{
  g_autofree char *explain = NULL;
  const GOptionEntry entries[] = {
    { "explain", 0, 0, G_OPTION_ARG_STRING, &explain, "Explain what PASS does, in a paragraph", "PASS" },
    { NULL }
  };
  int rc = fb_cli_parse_options (&argc, &argv, "", "List the compiler passes in pipeline order.", entries);
  if (rc != 0)
    return rc < 0 ? FB_EXIT_OK : rc;
  if (argc > 1)
    return usage_error ("passes", "takes no FILE; did you mean `fusebox-cli compile`?");

  int n;
  const FbPass *const *all = fb_passes_all (&n);
  if (explain)
    {
      const FbPass *pass = fb_pass_lookup (explain);
      if (pass == NULL)
        {
          g_autoptr (GString) known = g_string_new (NULL);
          for (int i = 0; i < n; i++)
            g_string_append_printf (known, "%s%s", i ? ", " : "", all[i]->name);
          fprintf (stderr, "fusebox-cli passes: unknown pass '%s' (known: %s)\n", explain, known->str);
          return FB_EXIT_USAGE;
        }
      printf ("%s: %s\n\n", pass->name, pass->summary);
      print_wrapped (pass->explain, 0, 78);
      return FB_EXIT_OK;
    }
  for (int i = 0; i < n; i++)
    printf ("%-18s %s\n", all[i]->name, all[i]->summary);
  return FB_EXIT_OK;
}

/* ------------------------------------------------------------ compile */

static json_object *
stats_json (json_object *o, const FbStats *s)
{
  json_object_object_add (o, "instructions", json_object_new_int (s->instructions));
  json_object_object_add (o, "kernels", json_object_new_int (s->kernels));
  json_object_object_add (o, "bytes", json_object_new_double (s->bytes));
  json_object_object_add (o, "peak_bytes", json_object_new_double (s->peak_bytes));
  json_object_object_add (o, "flops", json_object_new_double (s->flops));
  return o;
}

static json_object *
decisions_json (GPtrArray *decisions)
{
  json_object *arr = json_object_new_array ();
  for (guint i = 0; decisions && i < decisions->len; i++)
    {
      FbDecision *d = g_ptr_array_index (decisions, i);
      json_object *o = json_object_new_object ();
      json_object *ids = json_object_new_array ();
      for (int k = 0; k < d->n_ids; k++)
        json_object_array_add (ids, json_object_new_int64 (d->ids[k]));
      json_object_object_add (o, "kind", json_object_new_string (fb_decision_kind_name (d->kind)));
      json_object_object_add (o, "rule", json_object_new_string (d->rule ? d->rule : ""));
      json_object_object_add (o, "message", json_object_new_string (d->message ? d->message : ""));
      json_object_object_add (o, "ids", ids);
      json_object_array_add (arr, o);
    }
  return arr;
}

static void
print_json (GPtrArray *snaps, gboolean explain)
{
  json_object *root = json_object_new_object ();
  json_object *passes = json_object_new_array ();
  FbSnapshot *input = g_ptr_array_index (snaps, 0);
  json_object_object_add (root, "input", stats_json (json_object_new_object (), &input->stats));
  for (guint i = 1; i < snaps->len; i++)
    {
      FbSnapshot *s = g_ptr_array_index (snaps, i);
      json_object *o = json_object_new_object ();
      json_object_object_add (o, "name", json_object_new_string (s->pass->name));
      json_object_object_add (o, "enabled", json_object_new_boolean (s->enabled));
      json_object_object_add (o, "changed", json_object_new_boolean (s->changed));
      json_object_object_add (o, "ms", json_object_new_double (s->ms));
      stats_json (o, &s->stats);
      if (explain)
        json_object_object_add (o, "decisions", decisions_json (s->decisions));
      json_object_array_add (passes, o);
    }
  json_object_object_add (root, "passes", passes);
  printf ("%s\n", json_object_to_json_string_ext (root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
  json_object_put (root);
}

static void
print_row (const char *num, const char *name, const char *on, const char *changed, const FbStats *st, const char *ms)
{
  g_autofree char *bytes = bytes_text (st->bytes);
  g_autofree char *peak = bytes_text (st->peak_bytes);
  printf ("%-3s %-18s %-4s %-8s %7d %8d %12s %12s %9s\n", num, name, on, changed, st->instructions, st->kernels,
          bytes, peak, ms);
}

static void
print_table (GPtrArray *snaps, gboolean explain)
{
  printf ("%-3s %-18s %-4s %-8s %7s %8s %12s %12s %9s\n", "#", "pass", "on", "changed", "instrs", "kernels",
          "bytes", "peak", "ms");
  FbSnapshot *input = g_ptr_array_index (snaps, 0);
  print_row ("-", "input", "-", "-", &input->stats, "-");
  for (guint i = 1; i < snaps->len; i++)
    {
      FbSnapshot *s = g_ptr_array_index (snaps, i);
      g_autofree char *num = g_strdup_printf ("%u", i);
      g_autofree char *ms = g_strdup_printf ("%.2f", s->ms);
      print_row (num, s->pass->name, s->enabled ? "on" : "off", !s->enabled ? "-" : s->changed ? "yes" : "no",
                 &s->stats, s->enabled ? ms : "-");
      if (!explain || s->decisions == NULL)
        continue;
      for (guint k = 0; k < s->decisions->len; k++)
        {
          FbDecision *d = g_ptr_array_index (s->decisions, k);
          g_autofree char *line = g_strdup_printf ("%s [%s] %s", fb_decision_kind_name (d->kind), d->rule, d->message);
          print_wrapped (line, 8, 100);
        }
    }
}

static gboolean
dump_snapshots (GPtrArray *snaps, const char *dir, GError **error)
{
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int e = errno;
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot create the dump directory: %s", dir, g_strerror (e));
      return FALSE;
    }
  int nn = 0;
  for (guint i = 1; i < snaps->len; i++)
    {
      FbSnapshot *s = g_ptr_array_index (snaps, i);
      if (!s->enabled || s->module == NULL)
        continue;
      g_autofree char *name = g_strdup_printf ("%02d.after_%s.hlo", ++nn, s->pass->name);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *text = fb_hlo_to_string (s->module, FB_PRINT_LONG);
      g_autoptr (GError) local = NULL;
      if (!g_file_set_contents (path, text, -1, &local))
        {
          g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot write the dump: %s", path, local->message);
          return FALSE;
        }
    }
  return TRUE;
}

int
fb_cli_compile (int argc, char **argv)
{
  int module_index = 0;
  gboolean explain = FALSE, json = FALSE;
  g_autofree char *passes = NULL, *dump_dir = NULL, *backend = NULL, *emit = NULL, *kernel = NULL;
  const GOptionEntry entries[] = {
    { "module", 0, 0, G_OPTION_ARG_INT, &module_index, "Module N of a multi-module file (from 0)", "N" },
    { "passes", 0, 0, G_OPTION_ARG_STRING, &passes,
      "Passes to run: all (default), none, a,b,c or all,-a (see `fusebox-cli passes`)", "PASSES" },
    { "dump-after-each", 0, 0, G_OPTION_ARG_FILENAME, &dump_dir,
      "Write the module after every pass that ran to DIR/NN.after_PASS.hlo", "DIR" },
    { "explain", 0, 0, G_OPTION_ARG_NONE, &explain, "List each pass's decisions under its row", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object instead of the table", NULL },
    { "backend", 0, 0, G_OPTION_ARG_STRING, &backend, "With --emit: the backend whose code to print (cpu)", "NAME" },
    { "emit", 0, 0, G_OPTION_ARG_STRING, &emit, "Print the generated code of every kernel: llvm or asm", "WHAT" },
    { "kernel", 0, 0, G_OPTION_ARG_STRING, &kernel, "With --emit: only this kernel (instruction or symbol name)", "NAME" },
    { NULL }
  };
  int rc = fb_cli_parse_options (&argc, &argv, "FILE", "Run the compiler passes over a module, pass by pass.",
                                 entries);
  if (rc != 0)
    return rc < 0 ? FB_EXIT_OK : rc;
  if (argc < 2)
    return usage_error ("compile", "expected a FILE");
  if (argc > 2)
    return usage_error ("compile", "expected one FILE, got more");
  if (module_index < 0)
    return usage_error ("compile", "--module must be 0 or more");
  if (emit == NULL && (backend != NULL || kernel != NULL))
    return usage_error ("compile", "--backend and --kernel go with --emit");
  if (emit != NULL && g_strcmp0 (backend ? backend : "cpu", "cpu") != 0)
    return usage_error ("compile", "--emit prints the code of --backend cpu");

  g_autoptr (GError) error = NULL;
  FbPipeline *pipeline = fb_pipeline_new_default ();
  if (!fb_pipeline_set_spec (pipeline, passes ? passes : "all", &error))
    {
      fb_pipeline_free (pipeline);
      fprintf (stderr, "fusebox-cli compile: --passes: %s\n", error->message);
      return FB_EXIT_USAGE;
    }

  FbModule *module = fb_cli_load_module (argv[1], module_index, &error);
  if (module == NULL || !fb_verify (module, &error))
    {
      fb_module_free (module);
      fb_pipeline_free (pipeline);
      return fb_cli_fail (error);
    }

  use_interp_for_folding ();
  FbPipelineOptions options = { .verify_each = FALSE, .keep_snapshots = dump_dir != NULL };
  GPtrArray *snaps = fb_pipeline_run (pipeline, module, &options, &error);
  if (snaps != NULL && emit != NULL)
    {
      /* the generated code of the module after the passes, instead of the table */
      g_autoptr (GString) code = g_string_new (NULL);
      gboolean ok = fb_cpu_emit_report (module, emit, kernel, code, &error);
      g_ptr_array_unref (snaps);
      fb_pipeline_free (pipeline);
      fb_module_free (module);
      if (!ok)
        return fb_cli_fail (error);
      fputs (code->str, stdout);
      return FB_EXIT_OK;
    }
  fb_pipeline_free (pipeline);
  fb_module_free (module);
  if (snaps == NULL)
    {
      fprintf (stderr, "fusebox-cli compile: %s: %s\n", argv[1], error->message);
      return FB_EXIT_INPUT;
    }
  if (dump_dir && !dump_snapshots (snaps, dump_dir, &error))
    {
      g_ptr_array_unref (snaps);
      fprintf (stderr, "fusebox-cli compile: %s\n", error->message);
      return FB_EXIT_INPUT;
    }
  if (json)
    print_json (snaps, explain);
  else
    print_table (snaps, explain);
  g_ptr_array_unref (snaps);
  return FB_EXIT_OK;
}
