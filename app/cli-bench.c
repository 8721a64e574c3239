/* SPDX-License-Identifier: MIT
 *
 * `fusebox-cli bench`: compares two pass sets, A and B, on the same module
 * (and on several backends when --backend is a comma list), side by side:
 * steps/s, samples/s, achieved GFLOP/s by the cost model, peak memory by
 * the static buffer plan and as measured, and kernels launched per step.
 *
 * The two sides are measured interleaved, A B A B ... after one warm-up run
 * of each, so that a machine that speeds up or slows down while the
 * benchmark runs (frequency scaling, a neighbour) moves both sides alike.
 * The warm-up runs also record the measured memory. The verdict compares
 * medians: "B is 1.8x faster than A". A backend that is not available here
 * (gpu on a machine without an NVIDIA driver) is skipped with the reason.
 */
#include <json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fb-backend.h"
#include "fb-buffers.h"
#include "fb-cli.h"
#include "fb-cost.h"
#include "fb-memory.h"
#include "fb-pass.h"
#include "fb-runner.h"
#include "fb-zoo.h"

typedef struct {
  const char *label;        /* "A" or "B" */
  const char *passes;
  int         threads;      /* worker threads of a compiled backend; 0: one per core */
  FbModule   *module;       /* after the passes */
  int         kernels;
  double      flops;        /* per step, cost model */
  guint64     plan_peak;
  guint64     measured_peak;
  GArray     *steps_per_s;  /* double, one per repetition */
  double      min, median, max;
} Side;

static void
side_clear (Side *s)
{
  g_clear_pointer (&s->module, fb_module_free);
  g_clear_pointer (&s->steps_per_s, g_array_unref);
}

static int
compare_doubles (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static void
side_summarise (Side *s)
{
  g_autoptr (GArray) sorted = g_array_copy (s->steps_per_s);
  g_array_sort (sorted, compare_doubles);
  guint n = sorted->len;
  s->min = g_array_index (sorted, double, 0);
  s->max = g_array_index (sorted, double, n - 1);
  s->median = n % 2 ? g_array_index (sorted, double, n / 2)
                    : 0.5 * (g_array_index (sorted, double, n / 2 - 1) + g_array_index (sorted, double, n / 2));
}

static gboolean
side_prepare (Side *s, const char *path, int module_index, GError **error)
{
  s->module = fb_cli_load_module (path, module_index, error);
  if (s->module == NULL || !fb_cli_apply_passes (s->module, s->passes, error))
    return FALSE;
  s->kernels = fb_module_kernel_count (s->module);
  s->flops = s->module->entry ? fb_cost_computation (s->module->entry).flops : 0;
  FbBufferPlan *plan = fb_buffer_plan_new (s->module, NULL);
  s->plan_peak = plan ? (guint64) MAX (plan->peak_bytes, 0) : 0;
  if (plan)
    fb_buffer_plan_free (plan);
  s->steps_per_s = g_array_new (FALSE, FALSE, sizeof (double));
  return TRUE;
}

/* One run of @steps steps; with @memory, records the measured memory. */
static gboolean
side_run (Side *s, const char *backend, int steps, FbMemoryTimeline *memory, double *steps_per_s,
          GError **error)
{
  FbRunOptions options;
  fb_run_options_init (&options);
  options.backend = backend;
  options.steps = steps;
  options.threads = s->threads;
  options.memory = memory;
  if (fb_zoo_is_zoo_module (s->module))
    {
      options.init = fb_zoo_init_fn;
      options.data = fb_zoo_data_fn;
    }
  FbRunResult res;
  if (!fb_runner_run (s->module, &options, &res, error))
    {
      g_prefix_error (error, "%s (%s on %s): ", s->label, s->passes, backend);
      return FALSE;
    }
  *steps_per_s = res.steps_per_s;
  fb_run_result_clear (&res);
  return TRUE;
}

/* Warm-up of each side (measuring memory), then A B A B ... @repeat times. */
static gboolean
measure (Side *a, Side *b, const char *backend, int steps, int repeat, GError **error)
{
  Side *sides[2] = { a, b };
  for (int k = 0; k < 2; k++)
    {
      g_autoptr (FbMemoryTimeline) memory = fb_memory_timeline_new ();
      double ignored;
      if (!side_run (sides[k], backend, steps, memory, &ignored, error))
        return FALSE;
      sides[k]->measured_peak = fb_memory_timeline_get_peak (memory, NULL);
    }
  for (int r = 0; r < repeat; r++)
    for (int k = 0; k < 2; k++)
      {
        double sps;
        if (!side_run (sides[k], backend, steps, NULL, &sps, error))
          return FALSE;
        g_array_append_val (sides[k]->steps_per_s, sps);
      }
  side_summarise (a);
  side_summarise (b);
  return TRUE;
}

static char *
verdict (double ratio)
{
  if (!(ratio > 0) || !isfinite (ratio))
    return g_strdup ("A and B cannot be compared (no time measured)");
  if (fabs (ratio - 1.0) < 0.02)
    return g_strdup_printf ("B is about as fast as A (%.2fx)", ratio);
  if (ratio > 1.0)
    return g_strdup_printf ("B is %.2fx faster than A", ratio);
  return g_strdup_printf ("B is %.2fx slower than A", 1.0 / ratio);
}

static void
print_text (const char *backend, const Side *a, const Side *b, int batch, int steps, int repeat)
{
  printf ("%s: %d steps per run, %d runs of each side, interleaved\n", backend, steps, repeat);
  printf ("  %-24s %16s %16s\n", "", "A", "B");
  printf ("  %-24s %16.16s %16.16s\n", "passes", a->passes, b->passes);
  printf ("  %-24s %16.4g %16.4g\n", "steps/s min", a->min, b->min);
  printf ("  %-24s %16.4g %16.4g\n", "steps/s median", a->median, b->median);
  printf ("  %-24s %16.4g %16.4g\n", "steps/s max", a->max, b->max);
  printf ("  %-24s %16.4g %16.4g\n", "samples/s (median)", a->median * batch, b->median * batch);
  printf ("  %-24s %16.4g %16.4g\n", "GFLOP/s (median)", a->median * a->flops * 1e-9,
          b->median * b->flops * 1e-9);
  g_autofree char *ap = fb_cli_bytes_text ((double) a->plan_peak);
  g_autofree char *bp = fb_cli_bytes_text ((double) b->plan_peak);
  g_autofree char *am = fb_cli_bytes_text ((double) a->measured_peak);
  g_autofree char *bm = fb_cli_bytes_text ((double) b->measured_peak);
  printf ("  %-24s %16s %16s\n", "peak memory (plan)", ap, bp);
  printf ("  %-24s %16s %16s\n", "peak memory (measured)", am, bm);
  printf ("  %-24s %16d %16d\n", "kernels per step", a->kernels, b->kernels);
  g_autofree char *v = verdict (b->median / a->median);
  printf ("  %s (median steps/s)\n", v);
}

static json_object *
side_json (const Side *s, int batch)
{
  json_object *o = json_object_new_object ();
  json_object *runs = json_object_new_array ();
  for (guint i = 0; i < s->steps_per_s->len; i++)
    json_object_array_add (runs, json_object_new_double (g_array_index (s->steps_per_s, double, i)));
  json_object_object_add (o, "passes", json_object_new_string (s->passes));
  json_object_object_add (o, "steps_per_s", runs);
  json_object_object_add (o, "steps_per_s_min", json_object_new_double (s->min));
  json_object_object_add (o, "steps_per_s_median", json_object_new_double (s->median));
  json_object_object_add (o, "steps_per_s_max", json_object_new_double (s->max));
  json_object_object_add (o, "samples_per_s", json_object_new_double (s->median * batch));
  json_object_object_add (o, "gflops", json_object_new_double (s->median * s->flops * 1e-9));
  json_object_object_add (o, "flops_per_step", json_object_new_double (s->flops));
  json_object_object_add (o, "peak_bytes_plan", json_object_new_int64 ((int64_t) s->plan_peak));
  json_object_object_add (o, "peak_bytes_measured", json_object_new_int64 ((int64_t) s->measured_peak));
  json_object_object_add (o, "kernels", json_object_new_int (s->kernels));
  return o;
}

static int
usage_error (const char *message)
{
  fprintf (stderr, "fusebox-cli bench: %s\nRun `fusebox-cli bench --help` for the options.\n", message);
  return FB_EXIT_USAGE;
}

/* Whether @name can run here; FALSE with the reason otherwise. Unknown
 * names other than gpu are errors the caller reports. */
static gboolean
backend_usable (const char *name, char **reason, GError **error)
{
  g_autoptr (GError) local = NULL;
  const FbBackend *b = fb_backend_lookup (name, &local);
  if (b == NULL)
    {
      if (strcmp (name, "gpu") == 0)
        {
          *reason = g_strdup (local->message);
          return FALSE;
        }
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (b->available && !b->available (&local))
    {
      *reason = g_strdup (local ? local->message : "not available");
      return FALSE;
    }
  return TRUE;
}

int
fb_cli_bench (int argc, char **argv)
{
  int module_index = 0, steps = 10, repeat = 5, threads = 0;
  gboolean json = FALSE;
  g_autofree char *pa = NULL, *pb = NULL, *backends = NULL;
  const GOptionEntry entries[] = {
    { "module", 0, 0, G_OPTION_ARG_INT, &module_index, "Module N of a multi-module file (from 0)", "N" },
    { "a", 0, 0, G_OPTION_ARG_STRING, &pa, "Pass set of side A: all, none, a,b or all,-a (required)", "PASSES" },
    { "b", 0, 0, G_OPTION_ARG_STRING, &pb, "Pass set of side B (required)", "PASSES" },
    { "backend", 0, 0, G_OPTION_ARG_STRING, &backends,
      "Backends, comma-separated: interp, cpu, gpu (default interp); gpu is skipped when unavailable", "LIST" },
    { "steps", 'n', 0, G_OPTION_ARG_INT, &steps, "Training steps per run (default 10)", "N" },
    { "repeat", 0, 0, G_OPTION_ARG_INT, &repeat, "Runs of each side, interleaved (default 5)", "R" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Worker threads of a compiled backend (default 0: one per core)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object instead of text", NULL },
    { NULL }
  };
  g_autoptr (GError) error = NULL;

  int rc = fb_cli_parse_options (&argc, &argv, "FILE",
                                 "Compare two pass sets (and backends) side by side: steps/s, "
                                 "samples/s, GFLOP/s, peak memory and kernels per step, measured "
                                 "interleaved so that drift cancels.", entries);
  if (rc != 0)
    return rc < 0 ? FB_EXIT_OK : rc;
  if (argc != 2)
    return usage_error (argc < 2 ? "expected a FILE" : "expected one FILE, got more");
  if (pa == NULL || pb == NULL)
    return usage_error ("both --a and --b are required, e.g. --a none --b all");
  if (steps < 1)
    return usage_error ("--steps must be at least 1");
  if (repeat < 1)
    return usage_error ("--repeat must be at least 1");
  if (threads < 0)
    return usage_error ("--threads must be 0 (one per core) or more");
  if (module_index < 0)
    return usage_error ("--module must be 0 or more");

  g_auto (GStrv) names = g_strsplit (backends ? backends : "interp", ",", -1);
  g_autoptr (GPtrArray) usable = g_ptr_array_new_with_free_func (g_free);
  json_object *skipped = json_object_new_array ();
  for (int i = 0; names[i]; i++)
    {
      g_autofree char *reason = NULL;
      char *name = g_strstrip (names[i]);
      if (*name == '\0')
        continue;
      if (backend_usable (name, &reason, &error))
        g_ptr_array_add (usable, g_strdup (name));
      else if (error != NULL)
        {
          json_object_put (skipped);
          return fb_cli_fail (error);   /* an unknown name: bad usage (2) */
        }
      else
        {
          fprintf (stderr, "fusebox-cli bench: skipping %s: %s\n", name, reason);
          json_object *o = json_object_new_object ();
          json_object_object_add (o, "backend", json_object_new_string (name));
          json_object_object_add (o, "reason", json_object_new_string (reason));
          json_object_array_add (skipped, o);
        }
    }
  if (usable->len == 0)
    {
      json_object_put (skipped);
      fprintf (stderr, "fusebox-cli bench: no backend to run on\n");
      return FB_EXIT_INPUT;
    }

  Side a = { .label = "A", .passes = pa, .threads = threads }, b = { .label = "B", .passes = pb, .threads = threads };
  if (!side_prepare (&a, argv[1], module_index, &error) || !side_prepare (&b, argv[1], module_index, &error))
    {
      side_clear (&a);
      side_clear (&b);
      json_object_put (skipped);
      return fb_cli_fail (error);
    }
  int batch = fb_cli_batch_size (a.module);

  json_object *root = json_object_new_object ();
  json_object *per_backend = json_object_new_array ();
  int status = FB_EXIT_OK;
  for (guint k = 0; k < usable->len; k++)
    {
      const char *backend = usable->pdata[k];
      g_array_set_size (a.steps_per_s, 0);
      g_array_set_size (b.steps_per_s, 0);
      if (!measure (&a, &b, backend, steps, repeat, &error))
        {
          status = fb_cli_fail (error);
          break;
        }
      double ratio = b.median / a.median;
      if (json)
        {
          json_object *o = json_object_new_object ();
          json_object_object_add (o, "backend", json_object_new_string (backend));
          json_object_object_add (o, "ratio", json_object_new_double (ratio));
          json_object_object_add (o, "a", side_json (&a, batch));
          json_object_object_add (o, "b", side_json (&b, batch));
          if (k == 0)
            {
              /* The first backend's comparison is also the top-level answer. */
              json_object_object_add (root, "backend", json_object_new_string (backend));
              json_object_object_add (root, "ratio", json_object_new_double (ratio));
              json_object_object_add (root, "a", json_object_get (json_object_object_get (o, "a")));
              json_object_object_add (root, "b", json_object_get (json_object_object_get (o, "b")));
            }
          json_object_array_add (per_backend, o);
        }
      else
        print_text (backend, &a, &b, batch, steps, repeat);
    }
  if (status == FB_EXIT_OK && json)
    {
      json_object_object_add (root, "batch", json_object_new_int (batch));
      json_object_object_add (root, "steps", json_object_new_int (steps));
      json_object_object_add (root, "repeat", json_object_new_int (repeat));
      json_object_object_add (root, "backends", json_object_get (per_backend));
      json_object_object_add (root, "skipped", json_object_get (skipped));
      printf ("%s\n", json_object_to_json_string_ext (root, JSON_C_TO_STRING_PLAIN));
    }
  json_object_put (per_backend);
  json_object_put (skipped);
  json_object_put (root);
  side_clear (&a);
  side_clear (&b);
  return status;
}
