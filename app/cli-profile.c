/* SPDX-License-Identifier: MIT
 *
 * `fusebox-cli profile`: runs training steps with the profiler recording,
 * then reports where the time went. Every step is a step span, every kernel
 * the backend runs a kernel span carrying the instruction ids it stands for;
 * the loss becomes a counter, the values the runner holds a measured memory
 * track, and the static buffer plan a second memory track drawn over the
 * first step. --trace writes all of it as Chrome trace JSON (Perfetto opens
 * it), --csv one row per kernel, and the top kernels by total time are
 * printed with their FLOP/s, bytes/s and share of the machine's roofline.
 *
 * Ctrl-C stops the run after the step in progress; the steps that finished
 * are still written and reported, and the exit status is 130.
 *
 * Also the helpers `bench` shares: the batch size of a module and byte counts
 * in words.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "fb-backend.h"
#include "fb-buffers.h"
#include "fb-chrome-trace.h"
#include "fb-cli.h"
#include "fb-cost.h"
#include "fb-memory.h"
#include "fb-peak.h"
#include "fb-recorder.h"
#include "fb-runner.h"
#include "fb-throughput.h"
#include "fb-zoo.h"

#define EXIT_INTERRUPTED 130

/* ------------------------------------------------------ shared helpers */

int
fb_cli_batch_size (FbModule *module)
{
  FbComputation *entry = module->entry;
  if (entry == NULL)
    return 1;
  for (int p = 0; p < entry->n_params; p++)
    {
      gboolean fed = FALSE;
      for (int a = 0; a < module->n_aliases; a++)
        fed |= module->aliases[a].param_number == p;
      FbInstr *param = entry->params[p];
      if (fed || param == NULL)
        continue;
      const FbShape *s = param->shape;
      if (s->type != FB_TUPLE && s->rank >= 1 && s->dims[0] >= 1)
        return (int) MIN (s->dims[0], G_MAXINT);
      return 1;
    }
  return 1;
}

char *
fb_cli_bytes_text (double bytes)
{
  static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  int u = 0;
  while (bytes >= 1024 && u < (int) G_N_ELEMENTS (units) - 1)
    {
      bytes /= 1024;
      u++;
    }
  return u == 0 ? g_strdup_printf ("%.0f B", bytes) : g_strdup_printf ("%.1f %s", bytes, units[u]);
}

gboolean
fb_cli_check_writable (const char *path, GError **error)
{
  gboolean existed = g_file_test (path, G_FILE_TEST_EXISTS);
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot write: it is a directory", path);
      return FALSE;
    }
  FILE *f = g_fopen (path, "a");
  if (f == NULL)
    {
      int e = errno;
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot write: %s", path, g_strerror (e));
      return FALSE;
    }
  fclose (f);
  if (!existed)
    g_unlink (path);
  return TRUE;
}

/* --------------------------------------------------------- interrupting */

static volatile sig_atomic_t interrupted;

static void
on_sigint (int signum)
{
  interrupted = 1;
}

typedef struct {
  gboolean      has_loss;
  FbTrace      *trace;
  guint         loss_track;
  GCancellable *cancellable;
  gint64        step1_end_ns;
} Progress;

static void
on_step (int step, double loss, gpointer user_data)
{
  Progress *pr = user_data;
  gint64 now = fb_trace_now_ns ();
  if (step == 1)
    pr->step1_end_ns = now;
  if (pr->has_loss)
    {
      if (isfinite (loss))
        fb_trace_add_sample (pr->trace, pr->loss_track, now, loss);
      printf ("step %d loss %.6g\n", step, loss);
    }
  else
    printf ("step %d\n", step);
  fflush (stdout);
  /* Stop before the next step; the runner checks between steps. */
  if (interrupted)
    g_cancellable_cancel (pr->cancellable);
}

/* ------------------------------------------------------------- report */

/* FLOPs and bytes of every instruction of the entry, by instruction id (the
 * kernel id the backends give their spans). */
static GArray *
kernel_costs (FbModule *module)
{
  GArray *costs = g_array_new (FALSE, TRUE, sizeof (FbKernelCost));
  if (module->entry == NULL)
    return costs;
  for (FbInstr *i = module->entry->first; i; i = i->next)
    {
      FbCost c = fb_cost_instr (i);
      FbKernelCost k = { (int) CLAMP (i->id, 0, G_MAXINT), i->name, MAX (c.flops, 0), MAX (c.bytes, 0) };
      if (isfinite (k.flops) && isfinite (k.bytes))
        g_array_append_val (costs, k);
    }
  return costs;
}

/* The static plan as a memory track, its schedule positions spread evenly
 * over the first step (the plan has positions, not times). */
static void
add_plan_track (FbTrace *trace, FbModule *module, gint64 start_ns, gint64 end_ns, guint64 *peak)
{
  g_autoptr (GError) error = NULL;
  FbBufferPlan *plan = fb_buffer_plan_new (module, &error);
  *peak = 0;
  if (plan == NULL)
    return;
  *peak = (guint64) MAX (plan->peak_bytes, 0);
  if (plan->n_positions > 0 && end_ns > start_ns)
    {
      guint track = fb_trace_add_track (trace, FB_TRACK_MEMORY, "live bytes (plan)", 101, -1, 0, "bytes");
      for (int i = 0; i < plan->n_positions; i++)
        fb_trace_add_sample (trace, track, start_ns + (end_ns - start_ns) * i / plan->n_positions,
                             (double) plan->live_bytes[i]);
    }
  fb_buffer_plan_free (plan);
}

static char *
csv_field (const char *s)
{
  if (strpbrk (s, ",\"\n") == NULL)
    return g_strdup (s);
  GString *out = g_string_new ("\"");
  for (const char *p = s; *p; p++)
    {
      if (*p == '"')
        g_string_append_c (out, '"');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
  return g_string_free (out, FALSE);
}

static gboolean
write_csv (const char *path, const FbThroughput *tp, gboolean has_roof, GError **error)
{
  GString *s = g_string_new ("kernel,calls,total_ms,mean_us,gflops,gbps,roofline_pct\n");
  for (guint k = 0; k < tp->n_kernels; k++)
    {
      const FbKernelStats *ks = &tp->kernels[k];
      g_autofree char *name = csv_field (ks->name ? ks->name : "?");
      g_string_append_printf (s, "%s,%u,%.6f,%.3f,%.6g,%.6g,", name, ks->calls, ks->total_ns * 1e-6,
                              ks->mean_ns * 1e-3, ks->gflops, ks->gbps);
      if (has_roof && ks->roof_gflops > 0)
        g_string_append_printf (s, "%.3f", ks->roof_fraction * 100.0);
      g_string_append_c (s, '\n');
    }
  g_autoptr (GError) local = NULL;
  gboolean ok = g_file_set_contents (path, s->str, (gssize) s->len, &local);
  g_string_free (s, TRUE);
  if (!ok)
    g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot write the CSV: %s", path, local->message);
  return ok;
}

/* The first kernel whose GFLOP/s is more than 10% above @roof's compute
 * peak, or NULL. Only kernels with at least a million FLOPs in all count. */
static const FbKernelStats *
above_roof (const FbThroughput *tp, const FbRoofline *roof)
{
  for (guint k = 0; k < tp->n_kernels; k++)
    {
      const FbKernelStats *ks = &tp->kernels[k];
      if (ks->flops * ks->calls >= 1e6 && ks->gflops > 1.1 * roof->peak_gflops)
        return ks;
    }
  return NULL;
}

static void
print_top (const FbThroughput *tp, int top, gboolean has_roof)
{
  int n = MIN ((int) tp->n_kernels, top);
  int width = 6;
  for (int k = 0; k < n; k++)
    width = MAX (width, (int) strlen (tp->kernels[k].name ? tp->kernels[k].name : "?"));
  width = MIN (width, 40);
  printf ("top %d kernel%s by total time:\n", n, n == 1 ? "" : "s");
  printf ("  %-*s %7s %10s %10s %9s %9s %8s\n", width, "kernel", "calls", "total ms", "mean us",
          "GFLOP/s", "GB/s", "roofline");
  for (int k = 0; k < n; k++)
    {
      const FbKernelStats *ks = &tp->kernels[k];
      g_autofree char *roof = has_roof && ks->roof_gflops > 0
                                ? g_strdup_printf ("%.1f%%", ks->roof_fraction * 100.0)
                                : g_strdup ("-");
      printf ("  %-*.*s %7u %10.3f %10.2f %9.3g %9.3g %8s\n", width, width,
              ks->name ? ks->name : "?", ks->calls, ks->total_ns * 1e-6, ks->mean_ns * 1e-3,
              ks->gflops, ks->gbps, roof);
    }
}

/* ------------------------------------------------------------- command */

static int
usage_error (const char *message)
{
  fprintf (stderr, "fusebox-cli profile: %s\nRun `fusebox-cli profile --help` for the options.\n", message);
  return FB_EXIT_USAGE;
}

typedef struct {
  FbModule         *module;
  FbCustomCallMap  *map;
  FbTrace          *trace;
  FbRecorder       *recorder;
  FbMemoryTimeline *memory;
  GCancellable     *cancellable;
  FbRunResult       res;
  FbRoofline        roof;
} Profile;

static void
profile_clear (Profile *p)
{
  g_clear_pointer (&p->recorder, fb_recorder_free);
  g_clear_pointer (&p->trace, fb_trace_unref);
  g_clear_pointer (&p->memory, fb_memory_timeline_free);
  g_clear_pointer (&p->module, fb_module_free);
  g_clear_pointer (&p->map, fb_custom_call_map_free);
  g_clear_object (&p->cancellable);
  fb_run_result_clear (&p->res);
  fb_roofline_clear (&p->roof);
}

int
fb_cli_profile (int argc, char **argv)
{
  int module_index = 0, steps = 10, top = 10, threads = 0;
  gint64 seed = 0;
  g_autofree char *backend_name = NULL, *passes = NULL, *trace_path = NULL, *csv_path = NULL;
  g_auto (GStrv) custom = NULL;
  const GOptionEntry entries[] = {
    { "module", 0, 0, G_OPTION_ARG_INT, &module_index, "Module N of a multi-module file (from 0)", "N" },
    { "backend", 'b', 0, G_OPTION_ARG_STRING, &backend_name,
      "Backend to run on: interp or cpu (default interp); an unknown name exits 2", "NAME" },
    { "steps", 'n', 0, G_OPTION_ARG_INT, &steps, "Training steps to run (default 10)", "N" },
    { "passes", 0, 0, G_OPTION_ARG_STRING, &passes,
      "Passes to run first: all, none, a,b or all,-a (default: none on interp, all otherwise)", "P" },
    { "trace", 0, 0, G_OPTION_ARG_FILENAME, &trace_path, "Write the Chrome trace JSON to FILE", "FILE" },
    { "csv", 0, 0, G_OPTION_ARG_FILENAME, &csv_path, "Write one row per kernel to FILE", "FILE" },
    { "top", 0, 0, G_OPTION_ARG_INT, &top, "Print the K kernels with the most time (default 10)", "K" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the synthetic values (default 0)", "S" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Worker threads of a compiled backend (default 0: one per core)", "N" },
    { "custom-call", 0, 0, G_OPTION_ARG_STRING_ARRAY, &custom,
      "Implement custom-call TARGET with IMPL (repeatable)", "TARGET=IMPL" },
    { NULL }
  };
  g_autoptr (GError) error = NULL, roof_error = NULL;
  g_autofree char *base = NULL, *title = NULL, *measured = NULL, *planned = NULL;
  g_autoptr (GArray) costs = NULL;
  g_autoptr (FbThroughput) tp = NULL;

  int rc = fb_cli_parse_options (&argc, &argv, "FILE",
                                 "Run training steps with the profiler: a Chrome trace, per-kernel "
                                 "statistics and the kernels that take the most time.\n"
                                 "Ctrl-C stops after the current step and still writes what was "
                                 "recorded (exit status 130).", entries);
  if (rc != 0)
    return rc < 0 ? FB_EXIT_OK : rc;
  if (argc != 2)
    return usage_error (argc < 2 ? "expected a FILE" : "expected one FILE, got more");
  if (steps < 1)
    return usage_error ("--steps must be at least 1");
  if (module_index < 0)
    return usage_error ("--module must be 0 or more");
  if (top < 0)
    return usage_error ("--top must be 0 or more");
  if (threads < 0)
    return usage_error ("--threads must be 0 (one per core) or more");

  const char *backend = backend_name ? backend_name : "interp";
  /* An unknown backend name is bad usage (2); a backend this build lacks,
   * bad input (1). */
  if (fb_backend_lookup (backend, &error) == NULL)
    return fb_cli_fail (error);
  /* Find out now, not after a long run, that the outputs cannot be written. */
  if ((trace_path && !fb_cli_check_writable (trace_path, &error))
      || (csv_path && !fb_cli_check_writable (csv_path, &error)))
    return fb_cli_fail (error);

  Profile p = { 0 };
  p.map = fb_custom_call_map_new ();
  for (int i = 0; custom && custom[i]; i++)
    if (!fb_custom_call_map_add_spec (p.map, custom[i], &error))
      goto fail;
  p.module = fb_cli_load_module (argv[1], module_index, &error);
  if (p.module == NULL)
    goto fail;
  if (!fb_cli_apply_passes (p.module, passes ? passes : strcmp (backend, "interp") == 0 ? "none" : "all",
                            &error))
    goto fail;
  int loss_output = -1;
  if (!fb_runner_find_loss (p.module, -1, &loss_output, &error))
    goto fail;

  p.trace = fb_trace_new ();
  base = g_path_get_basename (argv[1]);
  title = g_strdup_printf ("%s on %s", base, backend);
  fb_trace_set_title (p.trace, title);
  fb_trace_set_metadata (p.trace, "backend", backend);
  fb_trace_set_metadata (p.trace, "passes", passes ? passes : strcmp (backend, "interp") == 0 ? "none" : "all");
  fb_trace_set_metadata (p.trace, "module", argv[1]);
  p.recorder = fb_recorder_new (p.trace, FB_RECORDER_NONE);
  p.memory = fb_memory_timeline_new ();
  p.cancellable = g_cancellable_new ();

  Progress progress = { .has_loss = loss_output >= 0, .trace = p.trace, .cancellable = p.cancellable };
  if (progress.has_loss)
    progress.loss_track = fb_trace_add_track (p.trace, FB_TRACK_COUNTER, "loss", 100, -1, 0, NULL);

  FbRunOptions options;
  fb_run_options_init (&options);
  options.backend = backend;
  options.steps = steps;
  options.threads = threads;
  options.seed = (guint64) seed;
  options.custom_calls = p.map;
  options.recorder = p.recorder;
  options.memory = p.memory;
  options.cancellable = p.cancellable;
  options.on_step = on_step;
  options.on_step_data = &progress;
  if (fb_zoo_is_zoo_module (p.module))
    {
      options.init = fb_zoo_init_fn;
      options.data = fb_zoo_data_fn;
    }

  struct sigaction sa = { 0 }, old_sa;
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESETHAND;   /* a second Ctrl-C ends the program at once */
  sigemptyset (&sa.sa_mask);
  interrupted = 0;
  sigaction (SIGINT, &sa, &old_sa);
  gboolean ok = fb_runner_run (p.module, &options, &p.res, &error);
  sigaction (SIGINT, &old_sa, NULL);

  gboolean cancelled = !ok && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  if (!ok && !cancelled)
    goto fail;
  if (cancelled)
    {
      fprintf (stderr, "fusebox-cli profile: interrupted after %d step%s; reporting those\n", p.res.steps,
               p.res.steps == 1 ? "" : "s");
      g_clear_error (&error);
    }

  /* Memory tracks, then the trace is complete. */
  fb_recorder_free (g_steal_pointer (&p.recorder));
  fb_memory_timeline_to_trace (p.memory, p.trace, "live bytes (measured)", 102);
  guint64 plan_peak = 0;
  if (p.res.steps >= 1 && progress.step1_end_ns > 0)
    add_plan_track (p.trace, p.module, progress.step1_end_ns - (gint64) (p.res.step_s[0] * 1e9),
                    progress.step1_end_ns, &plan_peak);
  else
    add_plan_track (p.trace, p.module, 0, 0, &plan_peak);
  fb_trace_finish (p.trace);

  if (trace_path && !fb_chrome_trace_write (p.trace, trace_path, &error))
    goto fail;

  /* The roofline is measured once per machine and cached; without it the
   * report simply has no roofline column. */
  FbRoofline *roof = &p.roof;
  gboolean has_roof = fb_roofline_get (roof, NULL, fb_backend_measure_sgemm, NULL, FALSE, &roof_error);
  if (!has_roof)
    fprintf (stderr, "fusebox-cli profile: no roofline: %s\n", roof_error->message);

  costs = kernel_costs (p.module);
  int batch = fb_cli_batch_size (p.module);
  tp = fb_throughput_compute (p.trace, (const FbKernelCost *) costs->data, costs->len, (guint) batch,
                              has_roof ? roof : NULL, &error);
  const FbKernelStats *over = tp && has_roof ? above_roof (tp, roof) : NULL;
  if (over != NULL)
    {
      /* A kernel went faster than the cached compute roof: the cache was
       * measured while the machine was busy. Measure it again. */
      printf ("roofline: %s reached %.4g GFLOP/s, above the cached peak of %.4g: measuring the roofline again\n",
              over->name, over->gflops, roof->peak_gflops);
      fb_roofline_clear (roof);
      g_clear_error (&roof_error);
      has_roof = fb_roofline_get (roof, NULL, fb_backend_measure_sgemm, NULL, TRUE, &roof_error);
      if (!has_roof)
        fprintf (stderr, "fusebox-cli profile: no roofline: %s\n", roof_error->message);
      g_clear_pointer (&tp, fb_throughput_free);
      tp = fb_throughput_compute (p.trace, (const FbKernelCost *) costs->data, costs->len, (guint) batch,
                                  has_roof ? roof : NULL, &error);
    }
  if (tp == NULL || (csv_path && !write_csv (csv_path, tp, has_roof, &error)))
    goto fail;

  if (top > 0)
    print_top (tp, top, has_roof);
  measured = fb_cli_bytes_text ((double) fb_memory_timeline_get_peak (p.memory, NULL));
  planned = fb_cli_bytes_text ((double) plan_peak);
  printf ("steps %d  steps/s %.4g  samples/s %.4g (batch %d)  GFLOP/s %.4g  GB/s %.4g\n",
          p.res.steps, tp->steps_per_s, tp->samples_per_s, batch, tp->gflops, tp->gbps);
  printf ("peak memory: measured %s, plan %s\n", measured, planned);
  if (has_roof)
    printf ("roofline: %.4g GFLOP/s (%s), %.4g GB/s\n", roof->peak_gflops,
            roof->flops_source ? roof->flops_source : "?", roof->peak_gbps);
  if (trace_path)
    printf ("trace: %s (%u spans)\n", trace_path, fb_trace_get_n_spans (p.trace));
  if (csv_path)
    printf ("csv: %s\n", csv_path);
  fflush (stdout);
  profile_clear (&p);
  return cancelled ? EXIT_INTERRUPTED : FB_EXIT_OK;

fail:
  profile_clear (&p);
  return fb_cli_fail (error);
}
