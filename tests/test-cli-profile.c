/* SPDX-License-Identifier: MIT
 *
 * Tests of `fusebox-cli profile` and `fusebox-cli bench` as a user runs
 * them, on a small zoo MLP generated into a temporary directory: the Chrome
 * trace loads back with one step span per step and kernel spans that name
 * instructions of the module, the CSV and the top-kernels table, exit codes
 * (1 for an unwritable trace, 2 for an unknown backend name or pass), the
 * bench JSON (kernels per step fall when every pass runs), and Ctrl-C in the
 * middle of a long run still leaving a trace of the finished steps.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <json.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fb-chrome-trace.h"
#include "fb-hlo.h"
#include "fb-throughput.h"
#include "fb-trace.h"

typedef struct {
  int   status;
  char *out;
  char *err;
} Result;

static void
result_clear (Result *r)
{
  g_free (r->out);
  g_free (r->err);
}

typedef struct {
  char *dir;
  char *model;
} Fixture;

/* Runs `fusebox-cli ARGS...` (NULL-terminated). */
static Result
run_cli (const char *first, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  Result r = { 0 };
  va_list ap;

  g_ptr_array_add (argv, (char *) g_getenv ("FUSEBOX_CLI"));
  va_start (ap, first);
  for (const char *a = first; a; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  int wait = 0;
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &r.out, &r.err, &wait, &error));
  g_assert_no_error (error);
  if (g_spawn_check_wait_status (wait, &error))
    r.status = 0;
  else if (error->domain == G_SPAWN_EXIT_ERROR)
    r.status = error->code;
  else
    g_error ("fusebox-cli did not exit normally: %s", error->message);
  return r;
}

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  if (g_getenv ("FUSEBOX_CLI") == NULL)
    {
      g_test_skip ("FUSEBOX_CLI is not set: run through meson test");
      return;
    }
  g_autoptr (GError) error = NULL;
  fx->dir = g_dir_make_tmp ("fb-profile-XXXXXX", &error);
  g_assert_no_error (error);
  fx->model = g_build_filename (fx->dir, "mlp.hlo", NULL);
  Result r = run_cli ("gen", "mlp", "--layers", "16,8,4", "--batch", "4", "-o", fx->model, NULL);
  g_assert_cmpint (r.status, ==, 0);
  result_clear (&r);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  if (fx->dir)
    {
      g_autoptr (GDir) d = g_dir_open (fx->dir, 0, NULL);
      const char *name;
      while (d && (name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *path = g_build_filename (fx->dir, name, NULL);
          g_unlink (path);
        }
      g_rmdir (fx->dir);
    }
  g_free (fx->dir);
  g_free (fx->model);
}

static guint
count_lines_with_prefix (const char *text, const char *prefix)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint n = 0;
  for (int i = 0; lines[i]; i++)
    n += g_str_has_prefix (lines[i], prefix);
  return n;
}

/* Step spans in @trace, with each step number from 1 to their count once. */
static guint
count_steps (FbTrace *trace)
{
  guint n = 0;
  for (guint t = 0; t < fb_trace_get_n_tracks (trace); t++)
    {
      const FbTrack *track = fb_trace_get_track (trace, t);
      for (guint s = 0; s < track->n_spans; s++)
        if (track->spans[s].kind == FB_SPAN_STEP)
          {
            n++;
            g_assert_cmpint (track->spans[s].step, >=, 1);
          }
    }
  return n;
}

/* ------------------------------------------------------------- profile */

static void
test_profile_trace (Fixture *fx, gconstpointer data)
{
  if (fx->dir == NULL)
    return;
  g_autofree char *trace_path = g_build_filename (fx->dir, "trace.json", NULL);
  g_autofree char *csv_path = g_build_filename (fx->dir, "kernels.csv", NULL);
  Result r = run_cli ("profile", fx->model, "--backend", "interp", "--steps", "3", "--trace", trace_path,
                      "--csv", csv_path, "--top", "4", NULL);
  g_assert_cmpint (r.status, ==, 0);
  /* Progress per step, then the top kernels with a header and four rows. */
  g_assert_cmpuint (count_lines_with_prefix (r.out, "step "), ==, 3);
  const char *top = strstr (r.out, "top 4 kernels by total time:\n");
  g_assert_nonnull (top);
  g_auto (GStrv) top_lines = g_strsplit (top, "\n", 7);
  g_assert_true (strstr (top_lines[1], "kernel") && strstr (top_lines[1], "GFLOP/s")
                 && strstr (top_lines[1], "roofline"));
  for (int i = 2; i < 6; i++)
    g_assert_true (g_str_has_prefix (top_lines[i], "  "));
  g_assert_nonnull (strstr (r.out, "steps/s"));

  /* The trace loads back: three step spans, and kernel spans that are
   * instructions of the module (kernel id = instruction id, provenance). */
  g_autoptr (GError) error = NULL;
  g_autoptr (FbTrace) trace = fb_chrome_trace_read (trace_path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (count_steps (trace), ==, 3);
  FbModule *m = fb_hlo_parse_file (fx->model, 0, &error);
  g_assert_no_error (error);
  g_autoptr (GHashTable) ids = g_hash_table_new (g_int64_hash, g_int64_equal);
  for (FbInstr *i = m->entry->first; i; i = i->next)
    g_hash_table_add (ids, &i->id);
  guint kernels = 0;
  for (guint t = 0; t < fb_trace_get_n_tracks (trace); t++)
    {
      const FbTrack *track = fb_trace_get_track (trace, t);
      for (guint s = 0; s < track->n_spans; s++)
        {
          const FbSpan *sp = &track->spans[s];
          if (sp->kind != FB_SPAN_KERNEL)
            continue;
          kernels++;
          gint64 id = sp->kernel_id;
          g_assert_true (g_hash_table_contains (ids, &id));
          g_assert_cmpuint (sp->n_instr, >=, 1);
          g_assert_cmpint (sp->instr_ids[0], ==, sp->kernel_id);
          g_assert_cmpint (sp->step, >=, 1);
          g_assert_cmpint (sp->step, <=, 3);
        }
    }
  g_assert_cmpuint (kernels, >, 3 * 10);
  /* The loss counter and the two memory views. */
  g_assert_nonnull (fb_trace_find_track (trace, FB_TRACK_COUNTER, "loss"));
  const FbTrack *measured = fb_trace_find_track (trace, FB_TRACK_MEMORY, "live bytes (measured)");
  const FbTrack *plan = fb_trace_find_track (trace, FB_TRACK_MEMORY, "live bytes (plan)");
  g_assert_nonnull (measured);
  g_assert_nonnull (plan);
  g_assert_cmpfloat (fb_track_get_max_sample (measured), >, 0);
  g_assert_cmpfloat (fb_track_get_max_sample (plan), >, 0);
  fb_module_free (m);

  /* CSV: the header, then one row of seven fields per kernel. */
  g_autofree char *csv = NULL;
  g_assert_true (g_file_get_contents (csv_path, &csv, NULL, &error));
  g_auto (GStrv) rows = g_strsplit (csv, "\n", -1);
  g_assert_cmpstr (rows[0], ==, "kernel,calls,total_ms,mean_us,gflops,gbps,roofline_pct");
  g_assert_nonnull (rows[1]);
  guint n_rows = 0;
  for (int i = 1; rows[i] && *rows[i]; i++, n_rows++)
    {
      g_auto (GStrv) fields = g_strsplit (rows[i], ",", -1);
      g_assert_cmpuint (g_strv_length (fields), ==, 7);
      g_assert_cmpstr (fields[1], ==, "3");   /* every instruction ran once per step */
    }
  g_assert_cmpuint (n_rows, >, 10);
  result_clear (&r);
}

static void
test_profile_errors (Fixture *fx, gconstpointer data)
{
  if (fx->dir == NULL)
    return;
  /* A trace that cannot be written is bad input, found before running. */
  g_autofree char *bad = g_build_filename (fx->dir, "no-such-dir", "trace.json", NULL);
  Result r = run_cli ("profile", fx->model, "--steps", "1", "--trace", bad, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "no-such-dir"));
  g_assert_null (strstr (r.out, "step 1"));
  result_clear (&r);

  /* An unknown backend name is bad usage. */
  r = run_cli ("profile", fx->model, "--backend", "tpu", "--steps", "1", NULL);
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "tpu"));
  result_clear (&r);

  /* So is an unknown pass. */
  r = run_cli ("profile", fx->model, "--passes", "all,-no-such-pass", "--steps", "1", NULL);
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "no-such-pass"));
  result_clear (&r);

  /* A file that is not there is bad input. */
  g_autofree char *missing = g_build_filename (fx->dir, "missing.hlo", NULL);
  r = run_cli ("profile", missing, NULL);
  g_assert_cmpint (r.status, ==, 1);
  result_clear (&r);
}

/* Ctrl-C during a long run: the run stops after the step in progress and
 * the trace holds exactly the steps that were reported. */
static void
test_profile_interrupt (Fixture *fx, gconstpointer data)
{
  if (fx->dir == NULL)
    return;
  g_autofree char *trace_path = g_build_filename (fx->dir, "interrupted.json", NULL);
  const char *argv[] = { g_getenv ("FUSEBOX_CLI"), "profile", fx->model, "--steps", "100000000",
                         "--trace", trace_path, NULL };
  g_autoptr (GError) error = NULL;
  GPid pid;
  int out_fd;
  g_assert_true (g_spawn_async_with_pipes (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                                           NULL, &pid, NULL, &out_fd, NULL, &error));
  g_assert_no_error (error);
  FILE *out = fdopen (out_fd, "r");
  g_assert_nonnull (out);

  /* The first progress line means steps are running: interrupt now. */
  char line[256];
  g_assert_nonnull (fgets (line, sizeof line, out));
  g_assert_true (g_str_has_prefix (line, "step 1"));
  g_assert_cmpint (kill (pid, SIGINT), ==, 0);
  guint printed = 1;
  while (fgets (line, sizeof line, out) != NULL)
    printed += g_str_has_prefix (line, "step ");
  fclose (out);

  int status = 0;
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_spawn_close_pid (pid);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 130);

  g_autoptr (FbTrace) trace = fb_chrome_trace_read (trace_path, &error);
  g_assert_no_error (error);
  guint steps = count_steps (trace);
  g_assert_cmpuint (steps, >=, 1);
  g_assert_cmpuint (steps, ==, printed);
  g_assert_cmpuint (steps, <, 100000000);
}

/* The CPU backend records its kernels too, inside the steps; chunks that
 * ran on pool workers land on worker tracks of the same kernel. */
static void
test_profile_cpu (Fixture *fx, gconstpointer data)
{
  if (fx->dir == NULL)
    return;
  g_autofree char *trace_path = g_build_filename (fx->dir, "cpu.json", NULL);
  Result r = run_cli ("profile", fx->model, "--backend", "cpu", "--steps", "2", "--trace", trace_path, NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_autoptr (GError) error = NULL;
  g_autoptr (FbTrace) trace = fb_chrome_trace_read (trace_path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (count_steps (trace), ==, 2);
  guint host_kernels = 0;
  for (guint t = 0; t < fb_trace_get_n_tracks (trace); t++)
    {
      const FbTrack *track = fb_trace_get_track (trace, t);
      for (guint s = 0; s < track->n_spans; s++)
        {
          const FbSpan *sp = &track->spans[s];
          if (sp->kind != FB_SPAN_KERNEL)
            continue;
          g_assert_cmpint (sp->kernel_id, >=, 0);
          g_assert_cmpuint (sp->n_instr, >=, 1);
          g_assert_cmpint (sp->step, >=, 1);
          host_kernels += track->kind == FB_TRACK_HOST_THREAD;
        }
    }
  g_assert_cmpuint (host_kernels, >=, 2);
  g_assert_nonnull (strstr (r.out, "top "));
  result_clear (&r);
}

static gboolean
tiny_sgemm (double *gflops, gpointer user_data, GError **error)
{
  *gflops = 0.01;
  return TRUE;
}

/* A roofline cached while the machine was busy (here: 0.01 GFLOP/s) is
 * measured again once a kernel runs faster than it: the report and the
 * cache then hold the new peak. */
static void
test_profile_stale_roofline (Fixture *fx, gconstpointer data)
{
  if (fx->dir == NULL)
    return;
  g_autofree char *cache_dir = g_build_filename (fx->dir, "cache", NULL);
  g_autofree char *cache = g_build_filename (cache_dir, "fusebox", "roofline.json", NULL);
  g_autoptr (GError) error = NULL;
  FbRoofline roof;
  g_assert_true (fb_roofline_get (&roof, cache, tiny_sgemm, NULL, TRUE, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (roof.peak_gflops, ==, 0.01);
  fb_roofline_clear (&roof);

  g_autofree char *model = g_build_filename (fx->dir, "wide.hlo", NULL);
  Result r = run_cli ("gen", "mlp", "--layers", "256,256,10", "--batch", "64", "-o", model, NULL);
  g_assert_cmpint (r.status, ==, 0);
  result_clear (&r);
  g_autofree char *old_cache = g_strdup (g_getenv ("XDG_CACHE_HOME"));
  g_setenv ("XDG_CACHE_HOME", cache_dir, TRUE);
  r = run_cli ("profile", model, "--backend", "cpu", "--steps", "2", "--top", "20", NULL);
  if (old_cache)
    g_setenv ("XDG_CACHE_HOME", old_cache, TRUE);
  else
    g_unsetenv ("XDG_CACHE_HOME");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "above the cached peak of 0.01: measuring the roofline again"));

  g_assert_true (fb_roofline_get (&roof, cache, NULL, NULL, FALSE, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (roof.peak_gflops, >, 0.5);
  g_assert_cmpstr (roof.flops_source, ==, "sgemm");
  fb_roofline_clear (&roof);

  /* The report's roof is the new one. */
  const char *line = g_strrstr (r.out, "\nroofline: ");
  g_assert_nonnull (line);
  g_assert_cmpfloat (g_ascii_strtod (line + strlen ("\nroofline: "), NULL), >, 0.5);
  result_clear (&r);
  g_unlink (cache);
  g_autofree char *fusebox_dir = g_path_get_dirname (cache);
  g_rmdir (fusebox_dir);
  g_rmdir (cache_dir);
}

/* Kernels split across the pool: each host kernel span that handed chunks
 * to a worker starts a flow that the first such chunk ends. */
static void
test_profile_cpu_flows (Fixture *fx, gconstpointer data)
{
  if (fx->dir == NULL)
    return;
  g_autofree char *model = g_build_filename (fx->dir, "wide.hlo", NULL);
  g_autofree char *trace_path = g_build_filename (fx->dir, "flows.json", NULL);
  Result r = run_cli ("gen", "mlp", "--layers", "64,2048,10", "--batch", "64", "-o", model, NULL);
  g_assert_cmpint (r.status, ==, 0);
  result_clear (&r);
  r = run_cli ("profile", model, "--backend", "cpu", "--steps", "2", "--trace", trace_path, NULL);
  g_assert_cmpint (r.status, ==, 0);
  result_clear (&r);
  g_autoptr (GError) error = NULL;
  g_autoptr (FbTrace) trace = fb_chrome_trace_read (trace_path, &error);
  g_assert_no_error (error);

  guint worker_kernels = 0;
  for (guint t = 0; t < fb_trace_get_n_tracks (trace); t++)
    {
      const FbTrack *track = fb_trace_get_track (trace, t);
      if (track->kind == FB_TRACK_CPU_WORKER)
        for (guint s = 0; s < track->n_spans; s++)
          worker_kernels += track->spans[s].kind == FB_SPAN_KERNEL;
    }
  guint n_flows = 0;
  const FbFlow *flows = fb_trace_get_flows (trace, &n_flows);
  if (worker_kernels == 0)
    {
      /* The caller ran every chunk itself: then no flow may dangle. */
      g_test_message ("no chunk ran on a worker thread; checking only that there are no flows");
      g_assert_cmpuint (n_flows, ==, 0);
      return;
    }
  g_assert_cmpuint (n_flows, >=, 1);
  for (guint f = 0; f < n_flows; f++)
    {
      const FbTrack *from = fb_trace_get_track (trace, flows[f].from_track);
      const FbTrack *to = fb_trace_get_track (trace, flows[f].to_track);
      g_assert_cmpint (from->kind, ==, FB_TRACK_HOST_THREAD);
      g_assert_cmpint (to->kind, ==, FB_TRACK_CPU_WORKER);
      const FbSpan *a = &from->spans[flows[f].from_span], *b = &to->spans[flows[f].to_span];
      /* The chunk ran while the host's kernel span was open (a kernel that
       * runs a sub-program hands out the chunks of the kernels inside it). */
      g_assert_cmpint (b->start_ns, >=, a->start_ns);
      g_assert_cmpint (b->end_ns, <=, a->end_ns);
      g_assert_cmpint (b->step, ==, a->step);
      for (guint g = 0; g < f; g++)
        g_assert_cmpuint (flows[g].id, !=, flows[f].id);
    }
}

/* --------------------------------------------------------------- bench */

static void
test_bench_json (Fixture *fx, gconstpointer data)
{
  if (fx->dir == NULL)
    return;
  Result r = run_cli ("bench", fx->model, "--a", "none", "--b", "all", "--backend", "interp", "--steps", "2",
                      "--repeat", "2", "--json", NULL);
  g_assert_cmpint (r.status, ==, 0);
  json_object *obj = json_tokener_parse (r.out);
  g_assert_nonnull (obj);
  json_object *ratio, *a, *b, *ka, *kb;
  g_assert_true (json_object_object_get_ex (obj, "ratio", &ratio));
  g_assert_true (json_object_is_type (ratio, json_type_double));
  g_assert_cmpfloat (json_object_get_double (ratio), >, 0);
  g_assert_true (json_object_object_get_ex (obj, "a", &a));
  g_assert_true (json_object_object_get_ex (obj, "b", &b));
  g_assert_true (json_object_object_get_ex (a, "kernels", &ka));
  g_assert_true (json_object_object_get_ex (b, "kernels", &kb));
  g_assert_cmpint (json_object_get_int (kb), >, 0);
  g_assert_cmpint (json_object_get_int (kb), <, json_object_get_int (ka));
  json_object *runs;
  g_assert_true (json_object_object_get_ex (a, "steps_per_s", &runs));
  g_assert_cmpuint (json_object_array_length (runs), ==, 2);
  json_object_put (obj);
  result_clear (&r);

  /* Text: the verdict in words. */
  r = run_cli ("bench", fx->model, "--a", "none", "--b", "all", "--steps", "2", "--repeat", "1", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (strstr (r.out, "B is ") != NULL);
  g_assert_nonnull (strstr (r.out, "kernels per step"));
  result_clear (&r);

  /* Missing --b is bad usage; an unknown pass too. */
  r = run_cli ("bench", fx->model, "--a", "none", NULL);
  g_assert_cmpint (r.status, ==, 2);
  result_clear (&r);
  r = run_cli ("bench", fx->model, "--a", "none", "--b", "fuse-everything", NULL);
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "fuse-everything"));
  result_clear (&r);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/cli/profile/trace", test_profile_trace);
  ADD ("/cli/profile/errors", test_profile_errors);
  ADD ("/cli/profile/interrupt", test_profile_interrupt);
  ADD ("/cli/profile/cpu", test_profile_cpu);
  ADD ("/cli/profile/cpu-flows", test_profile_cpu_flows);
  ADD ("/cli/profile/stale-roofline", test_profile_stale_roofline);
  ADD ("/cli/bench/json", test_bench_json);
  return g_test_run ();
}
