/* SPDX-License-Identifier: MIT
 *
 * Workbench benchmarks (not tests; goals are printed, never asserted):
 *
 *  1. launch to first frame: from main () to the first painted frame of the
 *     window on the sample model (goal < 1 s; process start-up and dynamic
 *     linking come on top and are not measured here);
 *  2. frame time while panning a graph of 10,000 nodes: the graph view's
 *     snapshot plus rendering it with the window's renderer, at the fitted
 *     zoom (everything visible, labels dropped) and at zoom 1 (goal <= 16 ms);
 *  3. main-loop latency while a bench task runs: how late a 10 ms timer
 *     fires while the interpreter runs 20 steps of the sample twice on a
 *     worker thread (goal <= 50 ms);
 *  4. main-loop latency while a pass is toggled on the 10k-node graph: the
 *     pipeline and the layout of the new snapshot run on a worker thread,
 *     the main loop only takes the result (goal <= 50 ms);
 *  5. main-loop latency while the graph switches to the diff mode on the
 *     10k-node graph, until the first frame that shows the diff: the diff
 *     and its layouts are built on a worker thread (goal <= 50 ms).
 *
 * Panning also reports how many graph tiles the pan frames had to paint
 * themselves; the rest were painted between frames.
 *
 * Needs a display (run under xvfb-run on a headless machine); prints a
 * SKIP line and exits 0 without one.
 */
#include <gtk/gtk.h>
#include <glib/gstdio.h>
#include <stdio.h>

#include "fb-window.h"

typedef struct {
  gint64  t0;
  gint64  first_frame;
  GArray *lateness;     /* double ms */
  gint64  expected;
  gboolean done;
  guint    timer;        /* the 10 ms timer while latency is measured */
} Bench;

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static void
report (const char *what, GArray *ms, double goal)
{
  g_array_sort (ms, cmp_double);
  double sum = 0;
  for (guint i = 0; i < ms->len; i++)
    sum += g_array_index (ms, double, i);
  double mean = ms->len ? sum / ms->len : 0;
  double p95 = ms->len ? g_array_index (ms, double, MIN (ms->len - 1, (guint) (ms->len * 0.95))) : 0;
  double max = ms->len ? g_array_index (ms, double, ms->len - 1) : 0;
  printf ("%-44s n=%-4u mean %7.2f ms  p95 %7.2f ms  max %7.2f ms  goal %s %.0f ms: %s\n", what, ms->len, mean,
          p95, max, "<=", goal, p95 <= goal ? "met" : "MISSED");
}

static void
iterate (void)
{
  while (g_main_context_pending (NULL))
    g_main_context_iteration (NULL, FALSE);
}

static void
on_after_paint (GdkFrameClock *clock, Bench *b)
{
  if (b->first_frame == 0)
    b->first_frame = g_get_monotonic_time ();
}

static void
on_map (GtkWidget *widget, Bench *b)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (widget);
  g_signal_connect (clock, "after-paint", G_CALLBACK (on_after_paint), b);
}

/* ---------------------------------------------------------- big graph */

static char *
write_big_graph (int rows, int cols)
{
  g_autoptr (GString) s = g_string_new ("HloModule pan_bench\n\nENTRY %main (p0: f32[8], p1: f32[8]) -> f32[8] {\n");
  g_string_append (s, "  %p0 = f32[8]{0} parameter(0)\n  %p1 = f32[8]{0} parameter(1)\n");
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++)
      {
        if (r == 0)
          g_string_append_printf (s, "  %%n.0.%d = f32[8]{0} %s(f32[8]{0} %%p%d, f32[8]{0} %%p%d)\n", c,
                                  c % 2 ? "add" : "multiply", c % 2, (c + 1) % 2);
        else
          g_string_append_printf (s, "  %%n.%d.%d = f32[8]{0} %s(f32[8]{0} %%n.%d.%d, f32[8]{0} %%n.%d.%d)\n", r, c,
                                  (r + c) % 3 ? "add" : "maximum", r - 1, c, r - 1, (c + 1) % cols);
      }
  /* Sum the last row into one root. */
  g_string_append_printf (s, "  %%sum.0 = f32[8]{0} copy(f32[8]{0} %%n.%d.0)\n", rows - 1);
  for (int c = 1; c < cols; c++)
    g_string_append_printf (s, "  %s%%sum.%d = f32[8]{0} add(f32[8]{0} %%sum.%d, f32[8]{0} %%n.%d.%d)\n",
                            c == cols - 1 ? "ROOT " : "", c, c - 1, rows - 1, c);
  g_string_append (s, "}\n");

  g_autofree char *dir = g_dir_make_tmp ("fusebox-bench-XXXXXX", NULL);
  char *path = g_build_filename (dir, "big.hlo", NULL);
  g_file_set_contents (path, s->str, s->len, NULL);
  return path;
}

typedef struct {
  FbGraphView *view;
  GArray      *ms;
  gint64       before;
  int          left;
  guint        tiles_before;  /* tiles painted before this frame */
  guint        tiles_in_frames;
} Pan;

static void
on_pan_before_paint (GdkFrameClock *clock, Pan *p)
{
  p->before = g_get_monotonic_time ();
  p->tiles_before = fb_graph_view_get_n_tiles_painted (p->view);
}

static void
on_pan_after_paint (GdkFrameClock *clock, Pan *p)
{
  if (p->before == 0 || p->left <= 0)
    return;
  double t = (g_get_monotonic_time () - p->before) / 1000.0;
  g_array_append_val (p->ms, t);
  /* The first frame after a zoom paints the view's tiles; count the pans only. */
  if (p->ms->len > 1)
    p->tiles_in_frames += fb_graph_view_get_n_tiles_painted (p->view) - p->tiles_before;
  p->before = 0;
  if (--p->left > 0)
    fb_graph_view_pan_by (p->view, p->left > 60 ? 25 : -25, p->left % 2 ? 7 : -7);
}

/* Real frames: each pan queues a redraw, and the frame clock's paint cycle
 * (layout, snapshot, render) is timed from before-paint to after-paint. */
static void
bench_pan (FbWindow *window, const char *what, gboolean fit)
{
  g_autoptr (GArray) ms = g_array_new (FALSE, FALSE, sizeof (double));
  Pan p = { fb_window_get_graph_view (window), ms, 0, 121, 0, 0 };
  guint tiles0 = fb_graph_view_get_n_tiles_painted (p.view);
  GdkFrameClock *clock = gtk_widget_get_frame_clock (GTK_WIDGET (window));
  gulong b = g_signal_connect (clock, "before-paint", G_CALLBACK (on_pan_before_paint), &p);
  gulong a = g_signal_connect (clock, "after-paint", G_CALLBACK (on_pan_after_paint), &p);

  fb_graph_view_zoom_fit (p.view);
  if (!fit)
    fb_graph_view_zoom_by (p.view, 1.0 / fb_graph_view_get_zoom (p.view));
  fb_graph_view_pan_by (p.view, 1, 1);
  while (p.left > 0)
    g_main_context_iteration (NULL, TRUE);
  /* The first frame after a zoom draws the cached picture; count the pans only. */
  g_array_remove_index (ms, 0);
  g_signal_handler_disconnect (clock, b);
  g_signal_handler_disconnect (clock, a);
  report (what, ms, 16);
  printf ("%-44s %u of %u\n", "  tiles painted by pan frames", p.tiles_in_frames,
          fb_graph_view_get_n_tiles_painted (p.view) - tiles0);
}

/* ------------------------------------------------------------ latency */

static gboolean
on_tick (gpointer data)
{
  Bench *b = data;
  gint64 now = g_get_monotonic_time ();
  double late = MAX (0, (now - b->expected) / 1000.0);
  g_array_append_val (b->lateness, late);
  b->expected = now + 10000;
  return G_SOURCE_CONTINUE;
}

static void
on_finished (FbTasks *tasks, Bench *b)
{
  b->done = TRUE;
}

static void
on_rerun_done (FbDocument *doc, const char *message, Bench *b)
{
  b->done = TRUE;
}

/* Toggles pass 0 of @doc and records the timer's lateness until it lands. */
static void
bench_toggle (FbDocument *doc, Bench *b, GArray *ms)
{
  b->lateness = ms;
  b->done = FALSE;
  gulong id = g_signal_connect (doc, "rerun-done", G_CALLBACK (on_rerun_done), b);
  b->expected = g_get_monotonic_time () + 10000;
  b->timer = g_timeout_add (10, on_tick, b);
  gint64 t = g_get_monotonic_time ();
  fb_document_set_pass_enabled_async (doc, 0, !fb_document_get_pipeline (doc)->entries[0].enabled);
  printf ("%-44s %.2f ms\n", "toggle handler returned after", (g_get_monotonic_time () - t) / 1000.0);
  while (!b->done)
    g_main_context_iteration (NULL, TRUE);
  printf ("%-44s %.0f ms\n", "rerun and layout landed after", (g_get_monotonic_time () - t) / 1000.0);
  g_clear_handle_id (&b->timer, g_source_remove);
  g_signal_handler_disconnect (doc, id);
}

static void
on_diff_frame (GdkFrameClock *clock, int *frames)
{
  (*frames)++;
}

/* Shows the last snapshot of @doc, then switches to the diff mode and
 * records the timer's lateness until a frame has shown the diff. */
static void
bench_diff_mode (FbWindow *window, FbDocument *doc, Bench *b, GArray *ms)
{
  FbGraphView *view = fb_window_get_graph_view (window);
  GdkFrameClock *clock = gtk_widget_get_frame_clock (GTK_WIDGET (window));
  int frames = 0;

  fb_document_set_current (doc, fb_document_get_n_snapshots (doc) - 1);
  iterate ();
  b->lateness = ms;
  b->expected = g_get_monotonic_time () + 10000;
  b->timer = g_timeout_add (10, on_tick, b);
  gint64 t = g_get_monotonic_time ();
  fb_graph_view_set_mode (view, FB_GRAPH_MODE_DIFF);
  printf ("%-44s %.2f ms\n", "diff mode handler returned after", (g_get_monotonic_time () - t) / 1000.0);
  while (fb_graph_view_is_diff_pending (view))
    g_main_context_iteration (NULL, TRUE);
  gulong id = g_signal_connect (clock, "after-paint", G_CALLBACK (on_diff_frame), &frames);
  gtk_widget_queue_draw (GTK_WIDGET (view));
  while (frames == 0)
    g_main_context_iteration (NULL, TRUE);
  printf ("%-44s %.0f ms (%s)\n", "diff shown after", (g_get_monotonic_time () - t) / 1000.0,
          fb_graph_view_get_diff (view) ? "diff" : "no diff");
  g_signal_handler_disconnect (clock, id);
  g_clear_handle_id (&b->timer, g_source_remove);
  fb_graph_view_set_mode (view, FB_GRAPH_MODE_AFTER);
  iterate ();
}

int
main (int argc, char **argv)
{
  Bench b = { 0 };
  b.t0 = g_get_monotonic_time ();

  g_set_prgname ("bench-gui");
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  if (g_getenv ("GSETTINGS_SCHEMA_DIR") == NULL)
    g_setenv ("GSETTINGS_SCHEMA_DIR", FB_BUILD_ROOT "/data", TRUE);
  if (!gtk_init_check ())
    {
      printf ("SKIP: no display; run under xvfb-run\n");
      return 0;
    }

  /* 1. launch to first frame */
  FbWindow *window = fb_window_new (NULL);
  g_signal_connect (window, "map", G_CALLBACK (on_map), &b);
  g_autofree char *sample = fb_window_dup_sample_path ();
  if (!fb_window_open_file (window, sample, NULL))
    return 1;
  gtk_window_present (GTK_WINDOW (window));
  while (b.first_frame == 0)
    g_main_context_iteration (NULL, TRUE);
  g_autoptr (GArray) launch = g_array_new (FALSE, FALSE, sizeof (double));
  double launch_ms = (b.first_frame - b.t0) / 1000.0;
  g_array_append_val (launch, launch_ms);
  report ("launch to first frame (mlp.hlo)", launch, 1000);

  /* 3. main-loop latency while a bench task runs */
  b.lateness = g_array_new (FALSE, FALSE, sizeof (double));
  g_signal_connect (fb_window_get_tasks (window), "finished", G_CALLBACK (on_finished), &b);
  if (fb_window_start_task (window, FB_TASK_BENCH, "interp", 20, NULL))
    {
      b.expected = g_get_monotonic_time () + 10000;
      b.timer = g_timeout_add (10, on_tick, &b);
      while (!b.done)
        g_main_context_iteration (NULL, TRUE);
      g_clear_handle_id (&b.timer, g_source_remove);
      report ("main-loop latency during a bench", b.lateness, 50);
    }
  g_clear_pointer (&b.lateness, g_array_unref);
  iterate ();

  /* 2. panning: first the sample, as the baseline of a window repaint */
  bench_pan (window, "pan the sample graph (baseline)", TRUE);

  /* then a 10k-node graph */
  g_autofree char *big = write_big_graph (100, 100);
  gint64 t = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  g_autoptr (FbDocument) doc = fb_document_new_from_file (big, "none", &error);
  if (doc == NULL)
    {
      fprintf (stderr, "bench-gui: %s\n", error->message);
      return 1;
    }
  fb_graph_view_set_document (fb_window_get_graph_view (window), doc);
  iterate ();
  printf ("%-44s %.0f ms (load, pipeline of disabled passes, layout)\n", "10k-node graph ready",
          (g_get_monotonic_time () - t) / 1000.0);
  bench_pan (window, "pan 10k nodes, whole graph visible", TRUE);
  bench_pan (window, "pan 10k nodes, zoom 1", FALSE);

  /* 4. main-loop latency while a pass is toggled on the big graph */
  GArray *toggle_ms = g_array_new (FALSE, FALSE, sizeof (double));
  bench_toggle (doc, &b, toggle_ms);
  report ("main-loop latency, toggle on 10k nodes", toggle_ms, 50);
  g_array_unref (toggle_ms);
  b.lateness = NULL;

  /* 5. main-loop latency while the diff mode's diff is built */
  GArray *diff_ms = g_array_new (FALSE, FALSE, sizeof (double));
  bench_diff_mode (window, doc, &b, diff_ms);
  report ("main-loop latency, diff mode on 10k nodes", diff_ms, 50);
  g_array_unref (diff_ms);
  b.lateness = NULL;

  g_unlink (big);
  g_autofree char *dir = g_path_get_dirname (big);
  g_rmdir (dir);
  gtk_window_destroy (GTK_WINDOW (window));
  iterate ();
  return 0;
}
