/* SPDX-License-Identifier: MIT
 *
 * Recorder overhead benchmark: what recording a kernel span costs, alone
 * and as a share of a training step. It times begin/end pairs on one
 * thread and on several at once (each thread has its own buffer, so the
 * cost per pair should not grow with threads), with and without hardware
 * counters, then runs a synthetic step (--kernels kernels of about --work
 * microseconds of arithmetic each) with and without recording and prints
 * the difference.
 *
 * Goal: recording costs at most 2 % of a step.
 */
#include <stdio.h>

#include "fb-recorder.h"

#define GOAL_PERCENT 2.0

static int n_kernels = 200;
static double work_us = 20.0;
static int reps = 20;
static int n_threads = 4;

static GOptionEntry entries[] = {
  { "kernels", 'k', 0, G_OPTION_ARG_INT, &n_kernels, "Kernels per synthetic step (default 200)", "N" },
  { "work", 'w', 0, G_OPTION_ARG_DOUBLE, &work_us, "Work per kernel in microseconds (default 20)", "US" },
  { "reps", 'r', 0, G_OPTION_ARG_INT, &reps, "Steps of each sort; the best is kept (default 20)", "N" },
  { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads recording at once (default 4)", "N" },
  { NULL }
};

static volatile double sink;

/* Arithmetic that takes about @iters × 1 ns. */
static void
busy (long iters)
{
  double x = 1.0;

  for (long i = 0; i < iters; i++)
    x = x * 1.0000001 + 1e-9;
  sink = x;
}

static long
calibrate (double us)
{
  long iters = 100000;
  gint64 t0 = fb_trace_now_ns ();

  busy (iters);
  return (long) (iters * (us * 1000.0) / MAX (fb_trace_now_ns () - t0, 1));
}

/* Time of one step of @n_kernels kernels, recorded or not. */
static gint64
time_step (FbRecorder *rec, int step_no, long iters)
{
  static const gint64 ids[] = { 1, 2, 3, 4 };
  FbRecorderScope step;
  gint64 t0 = fb_trace_now_ns ();

  if (rec)
    fb_recorder_begin_step (rec, &step, step_no);
  for (int k = 0; k < n_kernels; k++)
    {
      FbRecorderScope scope;
      if (rec)
        fb_recorder_begin_kernel (rec, &scope, k, "kernel", G_N_ELEMENTS (ids), ids);
      busy (iters);
      if (rec)
        fb_recorder_end (rec, &scope);
    }
  if (rec)
    fb_recorder_end (rec, &step);
  return fb_trace_now_ns () - t0;
}

typedef struct {
  FbRecorder *rec;
  guint       pairs;
  gint64      ns;
} ThreadArg;

static gpointer
record_pairs (gpointer data)
{
  ThreadArg *arg = data;
  gint64 t0 = fb_trace_now_ns ();

  for (guint i = 0; i < arg->pairs; i++)
    {
      FbRecorderScope scope;
      fb_recorder_begin_kernel (arg->rec, &scope, (int) (i & 7), "chunk", 0, NULL);
      fb_recorder_end (arg->rec, &scope);
    }
  arg->ns = fb_trace_now_ns () - t0;
  return NULL;
}

static double
threaded_pair_ns (int threads, guint pairs)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbRecorder) rec = fb_recorder_new (trace, FB_RECORDER_NONE);
  g_autofree GThread **th = g_new (GThread *, threads);
  g_autofree ThreadArg *args = g_new0 (ThreadArg, threads);
  double worst = 0;

  for (int i = 0; i < threads; i++)
    {
      args[i] = (ThreadArg) { rec, pairs, 0 };
      th[i] = g_thread_new ("recorder", record_pairs, &args[i]);
    }
  for (int i = 0; i < threads; i++)
    {
      g_thread_join (th[i]);
      worst = MAX (worst, (double) args[i].ns / pairs);
    }
  return worst;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- recorder overhead benchmark");
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) counters = NULL;
  gint64 plain, recorded;
  double percent;
  long iters;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("bench-recorder: %s\n", error->message);
      return 2;
    }
  if (n_kernels < 1 || reps < 1 || n_threads < 1 || work_us <= 0)
    {
      g_printerr ("bench-recorder: --kernels, --reps, --threads and --work must be positive\n");
      return 2;
    }

  /* Warm up, then measure steady-state pairs. */
  fb_recorder_measure_overhead_ns (FB_RECORDER_NONE, 20000);
  printf ("begin/end pair, 1 thread:          %7.1f ns\n",
          fb_recorder_measure_overhead_ns (FB_RECORDER_NONE, 20000));
  if (fb_recorder_probe_counters (&counters))
    printf ("begin/end pair with counters:      %7.1f ns\n",
            fb_recorder_measure_overhead_ns (FB_RECORDER_HW_COUNTERS, 20000));
  else
    printf ("begin/end pair with counters:      (%s)\n", counters->message);
  printf ("begin/end pair, %d threads at once: %7.1f ns (slowest thread)\n", n_threads,
          threaded_pair_ns (n_threads, 20000));

  /* Plain and recorded steps alternate, so that a busy machine slows both
   * alike; the best of each is kept. */
  busy (calibrate (work_us) * 100);
  iters = calibrate (work_us);
  plain = recorded = G_MAXINT64;
  {
    g_autoptr (FbTrace) trace = fb_trace_new ();
    g_autoptr (FbRecorder) rec = fb_recorder_new (trace, FB_RECORDER_NONE);

    for (int r = 0; r < reps; r++)
      {
        plain = MIN (plain, time_step (NULL, r + 1, iters));
        recorded = MIN (recorded, time_step (rec, r + 1, iters));
      }
  }
  percent = 100.0 * (double) (recorded - plain) / (double) plain;
  printf ("step of %d kernels × %.0f µs: %.3f ms plain, %.3f ms recorded: %+.2f %% (goal ≤ %.0f %%): %s\n",
          n_kernels, work_us, plain * 1e-6, recorded * 1e-6, percent, GOAL_PERCENT,
          percent <= GOAL_PERCENT ? "met" : "MISSED");
  return 0;
}
