/* SPDX-License-Identifier: MIT
 *
 * GUI tests of the workbench, run under Xvfb: open the window on the
 * sample, toggle a pass, step through every snapshot in every graph mode,
 * select a node and read the inspector, bench five interpreter steps and
 * read the throughput tab, open a malformed file and see the error while
 * the model stays loaded, read a fusion's generated LLVM IR, select a node
 * by clicking its span in the timeline, cancel a long run, pan over
 * tiles painted ahead, build the diff modes' diff off the main thread, and
 * render a screenshot with the real binary.
 * Every widget test ends with g_assert_finalize_object, so a leaked
 * reference (a signal handler, a task) fails the test.
 */
#include <gtk/gtk.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fb-cpu-codegen.h"
#include "fb-paint.h"
#include "fb-recorder.h"
#include "fb-window.h"

static char *
sample_path (void)
{
  return g_build_filename (FB_SOURCE_ROOT, "data", "models", "mlp.hlo", NULL);
}

static void
iterate_pending (void)
{
  while (g_main_context_pending (NULL))
    g_main_context_iteration (NULL, FALSE);
}

/* A window on the sample, shown and drawn once. The caller owns one reference. */
static FbWindow *
open_sample_window (void)
{
  g_autofree char *path = sample_path ();
  g_autoptr (GError) error = NULL;
  FbWindow *window = g_object_ref (fb_window_new (NULL));

  g_assert_true (fb_window_open_file (window, path, &error));
  g_assert_no_error (error);
  gtk_window_present (GTK_WINDOW (window));
  while (!gtk_widget_get_mapped (GTK_WIDGET (window)))
    g_main_context_iteration (NULL, TRUE);
  iterate_pending ();
  return window;
}

static void
close_window (FbWindow *window)
{
  FbDocument *doc = fb_window_get_document (window);
  if (doc)
    g_object_ref (doc);
  gtk_window_destroy (GTK_WINDOW (window));
  iterate_pending ();
  g_assert_finalize_object (window);
  if (doc)
    g_assert_finalize_object (doc);
}

static void
test_open_sample (void)
{
  FbWindow *window = open_sample_window ();
  FbDocument *doc = fb_window_get_document (window);
  int n_passes;

  fb_passes_all (&n_passes);
  g_assert_nonnull (doc);
  g_assert_cmpint (fb_document_get_n_snapshots (doc), ==, n_passes + 1);
  g_assert_nonnull (strstr (gtk_window_get_title (GTK_WINDOW (window)), "mlp.hlo"));

  const FbGraphLayout *layout = fb_graph_view_get_layout (fb_window_get_graph_view (window));
  g_assert_nonnull (layout);
  g_assert_cmpint (fb_graph_layout_get_n_boxes (layout), >, 10);
  /* The graph is fitted into the view. */
  g_assert_cmpfloat (fb_graph_view_get_zoom (fb_window_get_graph_view (window)), >, 0);
  /* The first row shows the input's counts. */
  g_assert_nonnull (strstr (fb_pass_list_get_counts (fb_window_get_pass_list (window), 0), "132"));
  close_window (window);
}

static void
on_rerun_done (FbDocument *doc, const char *message, int *done)
{
  g_assert_null (message);
  (*done)++;
}

/* Iterates the main context until the document's background rerun lands. */
static void
wait_for_rerun (FbDocument *doc)
{
  int done = 0;
  gulong id = g_signal_connect (doc, "rerun-done", G_CALLBACK (on_rerun_done), &done);
  while (done == 0)
    g_main_context_iteration (NULL, TRUE);
  g_signal_handler_disconnect (doc, id);
}

static void
test_toggle_pass (void)
{
  FbWindow *window = open_sample_window ();
  FbDocument *doc = fb_window_get_document (window);
  FbPassList *list = fb_window_get_pass_list (window);
  int index = fb_document_find_pass (doc, "cse");
  g_assert_cmpint (index, >, 0);

  FbSnapshot *s = fb_document_get_snapshot (doc, index);
  g_assert_true (s->changed);
  int with_cse = s->stats.instructions;

  GtkCheckButton *check = fb_pass_list_get_check (list, index - 1);
  g_assert_true (gtk_check_button_get_active (check));
  gtk_check_button_set_active (check, FALSE);
  wait_for_rerun (doc);
  iterate_pending ();

  s = fb_document_get_snapshot (doc, index);
  g_assert_false (s->enabled);
  g_assert_false (s->changed);
  g_assert_cmpint (s->stats.instructions, >, with_cse);
  g_assert_cmpstr (fb_pass_list_get_counts (list, index), ==, fb_pass_list_get_counts (list, index - 1));
  g_autofree char *spec = fb_document_dup_spec (doc);
  g_assert_nonnull (strstr (spec, "-cse"));

  /* The choice is remembered for the next model. */
  g_autoptr (GSettings) settings = g_settings_new (FB_APP_ID);
  g_auto (GStrv) off = g_settings_get_strv (settings, "disabled-passes");
  g_assert_true (g_strv_contains ((const char *const *) off, "cse"));

  gtk_check_button_set_active (check, TRUE);
  wait_for_rerun (doc);
  iterate_pending ();
  g_assert_cmpint (fb_document_get_snapshot (doc, index)->stats.instructions, ==, with_cse);
  g_settings_reset (settings, "disabled-passes");
  close_window (window);
}

/* A large module: MobileNet V2 from the corpus when FUSEBOX_CORPUS is set,
 * else the sample. The caller owns one reference to the window. */
static FbWindow *
open_large_window (void)
{
  const char *corpus = g_getenv ("FUSEBOX_CORPUS");
  g_autofree char *path = corpus ? g_build_filename (corpus, "hlo", "mobilenet_v2.hlo", NULL) : sample_path ();
  if (corpus && !g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_free (path);
      path = g_build_filename (corpus, "mobilenet_v2.hlo", NULL);
    }
  if (corpus == NULL || !g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_test_message ("FUSEBOX_CORPUS is not set (or has no mobilenet_v2.hlo): using the sample");
      g_free (path);
      path = sample_path ();
    }
  g_autoptr (GError) error = NULL;
  FbWindow *window = g_object_ref (fb_window_new (NULL));
  g_assert_true (fb_window_open_file (window, path, &error));
  g_assert_no_error (error);
  gtk_window_present (GTK_WINDOW (window));
  while (!gtk_widget_get_mapped (GTK_WIDGET (window)))
    g_main_context_iteration (NULL, TRUE);
  iterate_pending ();
  return window;
}

static void
count_changed (FbDocument *doc, int *n)
{
  (*n)++;
}

/* Toggling a pass returns to the main loop at once: the snapshots shown
 * stay until the rerun, done on a worker thread, lands; then the pass
 * list, the graph and the document agree on the new ones. */
static void
test_toggle_in_background (void)
{
  FbWindow *window = open_large_window ();
  FbDocument *doc = fb_window_get_document (window);
  FbPassList *list = fb_window_get_pass_list (window);
  FbGraphView *view = fb_window_get_graph_view (window);
  int index = fb_document_find_pass (doc, "cse");
  g_assert_cmpint (index, >, 0);
  fb_document_set_current (doc, index);
  iterate_pending ();

  FbSnapshot *old = fb_document_get_snapshot (doc, index);
  g_autofree char *old_counts = g_strdup (fb_pass_list_get_counts (list, index));
  int changed = 0;
  gulong id = g_signal_connect (doc, "changed", G_CALLBACK (count_changed), &changed);

  gtk_check_button_set_active (fb_pass_list_get_check (list, index - 1), FALSE);
  /* The handler has returned; nothing has been replaced yet. */
  g_assert_true (fb_document_is_busy (doc));
  g_assert_true (fb_document_get_snapshot (doc, index) == old);
  g_assert_true (old->enabled);
  g_assert_cmpstr (fb_pass_list_get_counts (list, index), ==, old_counts);
  g_assert_cmpint (changed, ==, 0);
  g_autofree char *spec = fb_document_dup_spec (doc);
  g_assert_nonnull (strstr (spec, "-cse"));

  wait_for_rerun (doc);
  g_assert_false (fb_document_is_busy (doc));
  g_assert_cmpint (changed, ==, 1);
  FbSnapshot *now = fb_document_get_snapshot (doc, index);
  g_assert_true (now != old);
  g_assert_false (now->enabled);
  g_assert_false (now->changed);
  g_assert_cmpint (fb_document_get_current (doc), ==, index);
  /* The graph shows the new snapshot, laid out off the main thread. */
  g_assert_true (fb_graph_layout_get_computation (fb_graph_view_get_layout (view)) == now->module->entry);
  g_assert_cmpint (fb_graph_layout_get_n_boxes (fb_graph_view_get_layout (view)), >, 10);
  g_assert_cmpstr (fb_pass_list_get_counts (list, index), ==, fb_pass_list_get_counts (list, index - 1));

  g_signal_handler_disconnect (doc, id);
  g_autoptr (GSettings) settings = g_settings_new (FB_APP_ID);
  g_settings_reset (settings, "disabled-passes");
  iterate_pending ();
  close_window (window);
}

/* Two quick toggles: the result of the first is stale when it lands and is
 * dropped; only the second one reaches the panels. */
static void
test_toggle_twice_drops_stale (void)
{
  FbWindow *window = open_large_window ();
  FbDocument *doc = fb_window_get_document (window);
  FbPassList *list = fb_window_get_pass_list (window);
  int index = fb_document_find_pass (doc, "cse");
  g_assert_cmpint (index, >, 0);
  int with_cse = fb_document_get_snapshot (doc, index)->stats.instructions;
  int changed = 0;
  gulong id = g_signal_connect (doc, "changed", G_CALLBACK (count_changed), &changed);

  GtkCheckButton *check = fb_pass_list_get_check (list, index - 1);
  gtk_check_button_set_active (check, FALSE);
  gtk_check_button_set_active (check, TRUE);
  g_assert_true (gtk_check_button_get_active (check));
  wait_for_rerun (doc);
  /* Let the first, stale rerun come back too. */
  while (fb_document_is_busy (doc))
    g_main_context_iteration (NULL, TRUE);
  iterate_pending ();
  g_assert_cmpint (changed, ==, 1);
  FbSnapshot *s = fb_document_get_snapshot (doc, index);
  g_assert_true (s->enabled);
  g_assert_cmpint (s->stats.instructions, ==, with_cse);
  g_assert_true (gtk_check_button_get_active (check));

  /* Run to here lands in the background too, and shows that snapshot. */
  fb_document_run_to_async (doc, 0);
  g_assert_cmpint (fb_document_get_current (doc), !=, 1);
  wait_for_rerun (doc);
  g_assert_cmpint (fb_document_get_current (doc), ==, 1);
  g_assert_cmpint (changed, ==, 2);
  g_assert_false (fb_document_get_snapshot (doc, 2)->enabled);

  g_signal_handler_disconnect (doc, id);
  g_autoptr (GSettings) settings = g_settings_new (FB_APP_ID);
  g_settings_reset (settings, "disabled-passes");
  iterate_pending ();
  close_window (window);
}

static void
test_step_snapshots (void)
{
  FbWindow *window = open_sample_window ();
  FbDocument *doc = fb_window_get_document (window);
  FbPassList *list = fb_window_get_pass_list (window);
  FbGraphView *view = fb_window_get_graph_view (window);
  int n = fb_document_get_n_snapshots (doc);

  for (FbGraphMode mode = FB_GRAPH_MODE_AFTER; mode <= FB_GRAPH_MODE_DIFF; mode++)
    {
      fb_graph_view_set_mode (view, mode);
      fb_document_set_current (doc, 0);
      for (int i = 0; i < n; i++)
        {
          if (i > 0)
            fb_pass_list_step (list, +1);
          iterate_pending ();
          g_assert_cmpint (fb_document_get_current (doc), ==, i);
          const FbGraphLayout *layout = fb_graph_view_get_layout (view);
          g_assert_nonnull (layout);
          g_assert_true (fb_graph_layout_get_computation (layout) ==
                         fb_document_get_snapshot (doc, i)->module->entry);
          gtk_widget_queue_draw (GTK_WIDGET (view));
        }
      /* Past the end it stays on the last snapshot. */
      fb_pass_list_step (list, +1);
      g_assert_cmpint (fb_document_get_current (doc), ==, n - 1);
    }
  /* Collapse and expand a fusion after the fusion passes. */
  fb_graph_view_set_mode (view, FB_GRAPH_MODE_AFTER);
  const FbGraphLayout *layout = fb_graph_view_get_layout (view);
  if (fb_graph_layout_get_n_clusters (layout) > 0)
    {
      const FbGraphCluster *c = fb_graph_layout_get_cluster (layout, 0);
      gboolean was = c->expanded;
      int64_t key = c->key;
      g_assert_true (fb_graph_view_toggle_cluster (view, key));
      layout = fb_graph_view_get_layout (view);
      g_assert_cmpint (fb_graph_layout_get_cluster (layout, fb_graph_layout_find_cluster (layout, key))->expanded,
                       ==, !was);
    }
  iterate_pending ();
  close_window (window);
}

static void
test_inspector_selection (void)
{
  FbWindow *window = open_sample_window ();
  FbDocument *doc = fb_window_get_document (window);
  FbInspector *inspector = fb_window_get_inspector (window);
  FbModule *input = fb_document_get_snapshot (doc, 0)->module;

  g_assert_cmpstr (fb_inspector_get_name (inspector), ==, "");
  FbInstr *param = input->entry->params[0];
  fb_document_set_selected (doc, param->id);
  g_assert_cmpstr (fb_inspector_get_name (inspector), ==, "w.dense0.kernel");
  g_assert_cmpstr (fb_inspector_get_shape (inspector), ==, "f32[784,1024]{1,0}");

  /* Search selects by opcode, and the inspector follows. */
  g_assert_true (fb_graph_view_search (fb_window_get_graph_view (window), "dot"));
  FbInstr *dot = fb_document_find_instr (input, fb_document_get_selected (doc));
  g_assert_nonnull (dot);
  g_assert_cmpint (dot->opcode, ==, FB_OP_DOT);
  g_assert_cmpstr (fb_inspector_get_name (inspector), ==, dot->name);
  g_assert_false (fb_graph_view_search (fb_window_get_graph_view (window), "no-such-node-anywhere"));

  /* The selection survives a step to the next pass. */
  fb_pass_list_step (fb_window_get_pass_list (window), +1);
  g_assert_cmpstr (fb_inspector_get_name (inspector), !=, "");
  close_window (window);
}

static void
on_finished (FbTasks *tasks, gboolean *done)
{
  *done = TRUE;
}

static void
wait_for_task (FbWindow *window)
{
  gboolean done = FALSE;
  gulong id = g_signal_connect (fb_window_get_tasks (window), "finished", G_CALLBACK (on_finished), &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
  g_signal_handler_disconnect (fb_window_get_tasks (window), id);
}

static void
test_bench_throughput (void)
{
  FbWindow *window = open_sample_window ();
  FbBottomPane *pane = fb_window_get_bottom_pane (window);
  g_autoptr (GError) error = NULL;

  g_assert_cmpstr (fb_bottom_pane_get_throughput_text (pane), ==, "");
  g_assert_true (fb_window_start_task (window, FB_TASK_BENCH, "interp", 5, &error));
  g_assert_no_error (error);
  g_assert_true (fb_tasks_is_busy (fb_window_get_tasks (window)));
  /* A second task is refused while the first runs. */
  g_assert_false (fb_window_start_task (window, FB_TASK_RUN, "interp", 5, NULL));
  wait_for_task (window);

  g_assert_null (fb_tasks_get_error (fb_window_get_tasks (window)));
  const FbTaskResult *r = fb_tasks_get_result (fb_window_get_tasks (window));
  g_assert_nonnull (r);
  g_assert_cmpint (r->steps, ==, 5);
  g_assert_cmpfloat (r->a_steps_per_s, >, 0);
  g_assert_cmpfloat (r->b_steps_per_s, >, 0);
  const char *text = fb_bottom_pane_get_throughput_text (pane);
  g_assert_nonnull (strstr (text, "steps/s"));
  g_assert_nonnull (strpbrk (text, "123456789"));
  g_assert_cmpstr (fb_bottom_pane_get_visible_tab (pane), ==, "throughput");
  iterate_pending ();
  close_window (window);
}

static void
test_run_falls_back (void)
{
  FbWindow *window = open_sample_window ();
  FbBottomPane *pane = fb_window_get_bottom_pane (window);
  int before = fb_bottom_pane_get_n_messages (pane);

  /* No GPU here (or not built): the run goes to the interpreter and says so. */
  if (g_strcmp0 (fb_tasks_resolve_backend ("gpu", NULL), "gpu") == 0)
    {
      close_window (window);
      g_test_skip ("a GPU backend is available, nothing to fall back from");
      return;
    }
  g_assert_true (fb_window_start_task (window, FB_TASK_PROFILE, "gpu", 3, NULL));
  wait_for_task (window);
  const FbTaskResult *r = fb_tasks_get_result (fb_window_get_tasks (window));
  g_assert_nonnull (r);
  g_assert_cmpstr (r->backend, ==, "interp");
  guint steps = 0;
  for (guint t = 0; t < fb_trace_get_n_tracks (r->trace); t++)
    {
      const FbTrack *track = fb_trace_get_track (r->trace, t);
      for (guint s = 0; s < track->n_spans; s++)
        steps += track->spans[s].kind == FB_SPAN_STEP;
    }
  g_assert_cmpuint (steps, ==, 3);
  g_assert_cmpint (fb_bottom_pane_get_n_messages (pane), ==, before + 2);
  g_assert_nonnull (strstr (fb_bottom_pane_get_message (pane, before), "gpu"));
  g_assert_nonnull (strstr (fb_bottom_pane_get_message (pane, before + 1), "3 steps"));
  g_assert_cmpstr (fb_bottom_pane_get_visible_tab (pane), ==, "timeline");
  iterate_pending ();
  close_window (window);
}

static void
test_cancel (void)
{
  FbWindow *window = open_sample_window ();
  FbBottomPane *pane = fb_window_get_bottom_pane (window);
  FbTasks *tasks = fb_window_get_tasks (window);

  g_assert_true (fb_window_start_task (window, FB_TASK_RUN, "interp", 2, NULL));
  fb_tasks_cancel (tasks);
  wait_for_task (window);
  g_assert_false (fb_tasks_is_busy (tasks));
  g_assert_null (fb_tasks_get_result (tasks));
  g_assert_error ((GError *) fb_tasks_get_error (tasks), G_IO_ERROR, G_IO_ERROR_CANCELLED);
  const char *last = fb_bottom_pane_get_message (pane, fb_bottom_pane_get_n_messages (pane) - 1);
  g_assert_nonnull (strstr (last, "cancelled"));
  int total;
  g_assert_cmpint (fb_tasks_get_steps_done (tasks, &total), <=, 2);
  g_assert_cmpint (total, ==, 2);
  /* The window accepts a new task right away. */
  g_assert_true (fb_window_start_task (window, FB_TASK_RUN, "interp", 1, NULL));
  wait_for_task (window);
  g_assert_nonnull (fb_tasks_get_result (tasks));
  close_window (window);
}

static gboolean
cancel_when_started (gpointer user_data)
{
  FbTasks *tasks = user_data;
  if (fb_tasks_get_steps_done (tasks, NULL) < 1)
    return G_SOURCE_CONTINUE;
  fb_tasks_cancel (tasks);
  return G_SOURCE_REMOVE;
}

/* Cancel really stops the run: a run of many steps ends with far fewer done. */
static void
test_cancel_long_run (void)
{
  FbWindow *window = open_sample_window ();
  FbTasks *tasks = fb_window_get_tasks (window);
  FbBottomPane *pane = fb_window_get_bottom_pane (window);
  const int asked = 100000;

  g_assert_true (fb_window_start_task (window, FB_TASK_RUN, "interp", asked, NULL));
  guint id = g_idle_add (cancel_when_started, tasks);
  wait_for_task (window);
  if (g_main_context_find_source_by_id (NULL, id))
    g_source_remove (id);
  g_assert_error ((GError *) fb_tasks_get_error (tasks), G_IO_ERROR, G_IO_ERROR_CANCELLED);
  int total, done = fb_tasks_get_steps_done (tasks, &total);
  g_assert_cmpint (total, ==, asked);
  g_assert_cmpint (done, >=, 1);
  g_assert_cmpint (done, <, asked);
  g_autofree char *expect = g_strdup_printf ("after %d of %d steps", done, asked);
  const char *last = fb_bottom_pane_get_message (pane, fb_bottom_pane_get_n_messages (pane) - 1);
  g_assert_nonnull (strstr (last, expect));
  close_window (window);
}

static void
on_code_loaded (FbCodeView *view, gboolean *done)
{
  *done = TRUE;
}

/* After every pass, a loop fusion of the sample has LLVM IR with a
 * function definition; a dot says why it has none. */
static void
test_code_view (void)
{
  FbWindow *window = open_sample_window ();
  FbDocument *doc = fb_window_get_document (window);
  FbInspector *inspector = fb_window_get_inspector (window);
  FbCodeView *code = fb_inspector_get_code_view (inspector);
  int last = fb_document_get_n_snapshots (doc) - 1;

  fb_document_set_current (doc, last);
  FbModule *module = fb_document_get_snapshot (doc, last)->module;
  FbInstr *fusion = NULL, *dot = NULL;
  for (FbInstr *in = module->entry->first; in; in = in->next)
    {
      if (fusion == NULL && in->opcode == FB_OP_FUSION && fb_cpu_can_generate (in))
        fusion = in;
      if (dot == NULL && in->opcode == FB_OP_DOT)
        dot = in;
    }
  g_assert_nonnull (fusion);

  /* Closed, the view generates nothing. */
  fb_document_set_selected (doc, fusion->id);
  fb_code_view_set_kind (code, FB_CODE_LLVM);
  g_assert_false (fb_code_view_is_loading (code));

  gboolean done = FALSE;
  gulong id = g_signal_connect (code, "loaded", G_CALLBACK (on_code_loaded), &done);
  fb_inspector_show_code (inspector, FB_CODE_LLVM);
  g_assert_true (fb_code_view_is_loading (code));
  while (!done)
    g_main_context_iteration (NULL, TRUE);
  g_signal_handler_disconnect (code, id);
  g_autofree char *llvm = fb_code_view_dup_text (code);
  g_assert_nonnull (strstr (llvm, "define"));
  g_assert_nonnull (strstr (llvm, fusion->name));

  /* Assembly comes from the same generation, and back to LLVM IR is cached. */
  fb_code_view_set_kind (code, FB_CODE_ASM);
  g_assert_false (fb_code_view_is_loading (code));
  g_autofree char *asm_text = fb_code_view_dup_text (code);
  g_assert_cmpuint (strlen (asm_text), >, 0);
  g_assert_null (strstr (asm_text, "define"));
  fb_code_view_set_kind (code, FB_CODE_HLO);
  g_autofree char *hlo = fb_code_view_dup_text (code);
  g_assert_nonnull (strstr (hlo, "fusion("));

  if (dot)
    {
      fb_code_view_set_kind (code, FB_CODE_LLVM);
      fb_document_set_selected (doc, dot->id);
      g_assert_false (fb_code_view_is_loading (code));
      g_autofree char *none = fb_code_view_dup_text (code);
      g_assert_cmpstr (none, ==, "");
      g_assert_nonnull (strstr (fb_code_view_get_status (code), "BLAS"));
    }
  iterate_pending ();
  close_window (window);
}

/* Finds a span of @trace that runs an instruction; FALSE when none does. */
static gboolean
find_kernel_span (FbTrace *trace, guint *track, guint *span)
{
  for (guint t = 0; t < fb_trace_get_n_tracks (trace); t++)
    {
      const FbTrack *tr = fb_trace_get_track (trace, t);
      for (guint s = 0; s < tr->n_spans; s++)
        if (tr->spans[s].n_instr > 0)
          {
            *track = t;
            *span = s;
            return TRUE;
          }
    }
  return FALSE;
}

/* A trace as a recorder writes it for one step of @module: a step span and
 * one kernel span per entry instruction, carrying its instruction id. */
static FbTrace *
recorded_trace (FbModule *module)
{
  FbTrace *trace = fb_trace_new ();
  g_autoptr (FbRecorder) rec = fb_recorder_new (trace, FB_RECORDER_NONE);
  FbRecorderScope step, k;
  int n = 0;
  fb_recorder_begin_step (rec, &step, 1);
  for (FbInstr *in = module->entry->first; in; in = in->next, n++)
    {
      gint64 id = in->id;
      fb_recorder_begin_kernel (rec, &k, n, in->name, 1, &id);
      g_usleep (0);
      fb_recorder_end (rec, &k);
    }
  fb_recorder_end (rec, &step);
  fb_trace_finish (trace);
  return trace;
}

/* Clicking a span selects its node in the graph and the inspector;
 * selecting a node outlines its spans. */
static void
test_timeline_click (void)
{
  FbWindow *window = open_sample_window ();
  FbDocument *doc = fb_window_get_document (window);
  FbBottomPane *pane = fb_window_get_bottom_pane (window);
  FbTimelineView *timeline = fb_bottom_pane_get_timeline (pane);
  int last = fb_document_get_n_snapshots (doc) - 1;

  fb_document_set_current (doc, last);
  g_assert_true (fb_window_start_task (window, FB_TASK_PROFILE, "cpu", 2, NULL));
  wait_for_task (window);
  const FbTaskResult *r = fb_tasks_get_result (fb_window_get_tasks (window));
  g_assert_nonnull (r);
  g_assert_true (fb_timeline_view_get_trace (timeline) == r->trace);
  g_assert_cmpstr (fb_bottom_pane_get_visible_tab (pane), ==, "timeline");
  iterate_pending ();

  guint track, span;
  if (!find_kernel_span (r->trace, &track, &span))
    {
      /* The backend that ran records only steps: use a trace recorded the
       * way a kernel-recording backend writes it. */
      g_test_message ("the %s backend recorded no kernel spans; clicking a recorded trace instead", r->backend);
      g_autoptr (FbTrace) trace = recorded_trace (fb_document_get_current_snapshot (doc)->module);
      fb_bottom_pane_set_trace (pane, trace);
      g_assert_true (find_kernel_span (trace, &track, &span));
    }
  FbTrace *trace = fb_timeline_view_get_trace (timeline);
  const FbSpan *sp = &fb_trace_get_track (trace, track)->spans[span];
  gint64 a0, a1, b0, b1;
  g_assert_true (fb_timeline_view_get_range (timeline, &a0, &a1));
  /* Zoom in on the span until it is wide, then click its middle. */
  double x, y;
  for (int i = 0; i < 30; i++)
    {
      g_assert_true (fb_timeline_view_get_span_center (timeline, track, span, &x, &y));
      fb_timeline_view_zoom_at (timeline, 2, x);
    }
  g_assert_true (fb_timeline_view_get_span_center (timeline, track, span, &x, &y));
  fb_document_set_selected (doc, -1);
  g_assert_true (fb_timeline_view_click (timeline, x, y));
  g_assert_true (fb_timeline_view_get_selected_span (timeline) == sp);

  FbModule *module = fb_document_get_current_snapshot (doc)->module;
  FbInstr *selected = fb_document_find_instr (module, fb_document_get_selected (doc));
  g_assert_nonnull (selected);
  gboolean runs = FALSE;
  for (guint i = 0; i < sp->n_instr; i++)
    runs |= fb_document_find_instr (module, sp->instr_ids[i]) == selected;
  g_assert_true (runs);
  g_assert_cmpstr (fb_inspector_get_name (fb_window_get_inspector (window)), ==, selected->name);
  g_assert_cmpuint (fb_timeline_view_get_n_highlighted (timeline), >=, 1);

  /* Zoom and pan keep the range inside the trace. */
  fb_timeline_view_reset (timeline);
  fb_timeline_view_zoom_at (timeline, 4, x);
  g_assert_true (fb_timeline_view_get_range (timeline, &b0, &b1));
  g_assert_cmpint (b1 - b0, <, a1 - a0);
  g_assert_cmpint (b0, >=, a0);
  g_assert_cmpint (b1, <=, a1);
  fb_timeline_view_pan (timeline, 50, 0);
  gint64 c0, c1;
  g_assert_true (fb_timeline_view_get_range (timeline, &c0, &c1));
  g_assert_cmpint (c0, <=, b0);
  g_assert_cmpint (c0, >=, a0);
  fb_timeline_view_reset (timeline);
  g_assert_true (fb_timeline_view_get_range (timeline, &b0, &b1));
  g_assert_cmpint (b0, ==, a0);
  g_assert_cmpint (b1, ==, a1);

  /* A click on the track names selects no span. */
  g_assert_false (fb_timeline_view_click (timeline, 5, y));
  g_assert_null (fb_timeline_view_get_selected_span (timeline));
  iterate_pending ();
  close_window (window);
}

static void
collect_accelerators (GtkWidget *widget, gboolean *timeline_zoom, gboolean *timeline_reset, gboolean *graph_fit)
{
  if (GTK_IS_SHORTCUTS_SHORTCUT (widget))
    {
      g_autofree char *accel = NULL;
      g_object_get (widget, "accelerator", &accel, NULL);
      if (g_strcmp0 (accel, "<Control>plus <Control>minus") == 0)
        *timeline_zoom = TRUE;
      else if (g_strcmp0 (accel, "<Control>0") == 0)
        *timeline_reset = TRUE;
      else if (g_strcmp0 (accel, "0") == 0)
        *graph_fit = TRUE;
    }
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child; child = gtk_widget_get_next_sibling (child))
    collect_accelerators (child, timeline_zoom, timeline_reset, graph_fit);
}

static void
test_shortcuts_window (void)
{
  FbWindow *window = open_sample_window ();
  GtkWidget *shortcuts = NULL;

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.show-shortcuts", NULL));
  GListModel *toplevels = gtk_window_get_toplevels ();
  for (guint i = 0; i < g_list_model_get_n_items (toplevels); i++)
    {
      g_autoptr (GObject) item = g_list_model_get_item (toplevels, i);
      if (GTK_IS_SHORTCUTS_WINDOW (item))
        shortcuts = GTK_WIDGET (item);
    }
  g_assert_nonnull (shortcuts);
  g_assert_true (gtk_window_get_transient_for (GTK_WINDOW (shortcuts)) == GTK_WINDOW (window));
  /* It lists the timeline's keys as well as the graph's. */
  gboolean timeline_zoom = FALSE, timeline_reset = FALSE, graph_fit = FALSE;
  collect_accelerators (shortcuts, &timeline_zoom, &timeline_reset, &graph_fit);
  g_assert_true (timeline_zoom);
  g_assert_true (timeline_reset);
  g_assert_true (graph_fit);
  gtk_window_destroy (GTK_WINDOW (shortcuts));
  close_window (window);
}

/* Draws @widget as a frame would, renders that with its window's renderer
 * and returns the pixels. */
static GBytes *
render_widget (GtkWidget *widget, int *width, int *height, gsize *stride)
{
  *width = gtk_widget_get_width (widget);
  *height = gtk_widget_get_height (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  GTK_WIDGET_GET_CLASS (widget)->snapshot (widget, snapshot);
  g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
  g_assert_nonnull (node);
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  g_autoptr (GdkTexture) texture = gsk_renderer_render_texture (renderer, node,
                                                                &GRAPHENE_RECT_INIT (0, 0, *width, *height));
  *stride = (gsize) *width * 4;
  guchar *data = g_malloc ((gsize) *height * *stride);
  gdk_texture_download (texture, data, *stride);
  return g_bytes_new_take (data, (gsize) *height * *stride);
}

static void
count_frame (GdkFrameClock *clock, int *frames)
{
  (*frames)++;
}

/* Lets the window draw frames until @widget keeps its size over two of
 * them (the panes settle on their saved positions after the first ones). */
static void
wait_for_stable_size (GtkWidget *widget)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (widget);
  int frames = 0, stable = 0;
  gulong id = g_signal_connect (clock, "after-paint", G_CALLBACK (count_frame), &frames);
  int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  while (stable < 2)
    {
      int seen = frames;
      gtk_widget_queue_draw (widget);
      while (frames == seen)
        g_main_context_iteration (NULL, TRUE);
      if (gtk_widget_get_width (widget) == w && gtk_widget_get_height (widget) == h)
        stable++;
      else
        stable = 0;
      w = gtk_widget_get_width (widget);
      h = gtk_widget_get_height (widget);
    }
  g_signal_handler_disconnect (clock, id);
}

/* After a pan the view shows what painting the graph directly through the
 * panned viewport shows (no tile misplaced or torn at its edges), and the
 * frame only moved tiles that had been painted between frames. */
static void
test_pan_tiles (void)
{
  FbWindow *window = open_sample_window ();
  FbGraphView *view = fb_window_get_graph_view (window);
  GtkWidget *widget = GTK_WIDGET (view);
  const FbGraphLayout *layout = fb_graph_view_get_layout (view);
  wait_for_stable_size (widget);
  int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  g_assert_cmpint (w, >, 300);
  g_assert_cmpint (h, >, 300);
  g_assert_cmpint (fb_document_get_selected (fb_window_get_document (window)), <, 0);

  /* The viewport the view has: fitted, then zoomed in about its centre. */
  fb_graph_view_zoom_fit (view);
  FbViewport vp = { 0 };
  double cw, ch;
  fb_graph_layout_get_size (layout, &cw, &ch);
  fb_viewport_fit (&vp, MAX (cw, 1), MAX (ch, 1), w, h, 16, 1.5);
  g_assert_cmpfloat (fabs (fb_graph_view_get_zoom (view) - vp.zoom), <, 1e-9);
  fb_graph_view_zoom_by (view, 3.0);
  fb_viewport_zoom_at (&vp, 3.0, w / 2.0, h / 2.0);
  int rw, rh;
  gsize stride;
  g_autoptr (GBytes) first = render_widget (widget, &rw, &rh, &stride);
  g_assert_cmpint (rw, ==, w);
  /* The ring of tiles around the view is painted when idle. */
  iterate_pending ();
  guint painted = fb_graph_view_get_n_tiles_painted (view);
  g_assert_cmpuint (painted, >, 0);

  /* More than a tile to the right, so columns not shown before come in. */
  const int dx = 300, dy = 40;
  fb_graph_view_pan_by (view, dx, dy);
  g_autoptr (GBytes) after = render_widget (widget, &rw, &rh, &stride);
  g_assert_cmpuint (fb_graph_view_get_n_tiles_painted (view), ==, painted);
  g_assert_cmpint (rw, ==, w);
  g_assert_cmpint (rh, ==, h);

  /* The same viewport painted directly, on the device pixel grid. */
  vp.x = round ((vp.x + dx / vp.zoom) * vp.zoom) / vp.zoom;
  vp.y = round ((vp.y + dy / vp.zoom) * vp.zoom) / vp.zoom;
  cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, w, h);
  cairo_t *cr = cairo_create (surface);
  FbGraphPaintOptions options;
  fb_graph_paint_options_init (&options);
  options.legend = FALSE;
  fb_paint_graph (cr, layout, &vp, &options);
  cairo_destroy (cr);
  cairo_surface_flush (surface);

  /* Compared above the legend, which stays in the corner. */
  const guchar *got = g_bytes_get_data (after, NULL);
  const guchar *want = cairo_image_surface_get_data (surface);
  int want_stride = cairo_image_surface_get_stride (surface);
  int differ = 0, drawn = 0;
  for (int y = 0; y < h - 200; y++)
    for (int x = 0; x < w; x++)
      {
        const guchar *a = got + (gsize) y * stride + (gsize) x * 4;
        const guchar *b = want + (gsize) y * want_stride + (gsize) x * 4;
        for (int c = 0; c < 4; c++)
          if (abs (a[c] - b[c]) > 8)
            {
              differ++;
              break;
            }
        if (memcmp (b, want, 4) != 0)
          drawn++;
      }
  cairo_surface_destroy (surface);
  /* It is a picture of the graph, not an empty canvas, and the same one. */
  g_assert_cmpint (drawn, >, 1000);
  g_assert_cmpint (differ, <=, w * (h - 200) / 1000);
  iterate_pending ();
  close_window (window);
}

/* Iterates the main context until the graph view's diff has landed. */
static void
wait_for_diff (FbGraphView *view)
{
  while (fb_graph_view_is_diff_pending (view))
    g_main_context_iteration (NULL, TRUE);
}

/* Switching to the diff mode returns at once and shows the plain graph;
 * the diff, built on a worker thread, then replaces it and compares the
 * current snapshot with the one before. */
static void
test_diff_in_background (void)
{
  FbWindow *window = open_sample_window ();
  FbDocument *doc = fb_window_get_document (window);
  FbGraphView *view = fb_window_get_graph_view (window);
  int index = fb_document_find_pass (doc, "cse");
  g_assert_cmpint (index, >, 0);
  fb_graph_view_set_mode (view, FB_GRAPH_MODE_AFTER);
  fb_document_set_current (doc, index);
  iterate_pending ();
  FbSnapshot *now = fb_document_get_snapshot (doc, index);
  FbSnapshot *before = fb_document_get_snapshot (doc, index - 1);
  g_assert_true (now->changed);

  fb_graph_view_set_mode (view, FB_GRAPH_MODE_DIFF);
  /* The handler returned before the diff was built. */
  g_assert_true (fb_graph_view_is_diff_pending (view));
  g_assert_null (fb_graph_view_get_diff (view));
  g_assert_true (fb_graph_layout_get_computation (fb_graph_view_get_layout (view)) == now->module->entry);
  gtk_widget_queue_draw (GTK_WIDGET (view));
  wait_for_diff (view);

  const FbDiffView *diff = fb_graph_view_get_diff (view);
  g_assert_nonnull (diff);
  g_assert_true (fb_graph_view_get_layout (view) == fb_diff_view_get_layout (diff));
  g_assert_true (fb_graph_layout_get_computation (fb_diff_view_get_layout (diff)) == now->module->entry);
  g_assert_true (fb_graph_layout_get_computation (fb_diff_view_get_before_layout (diff)) == before->module->entry);
  int added, removed, changed, fused;
  fb_diff_view_get_counts (diff, &added, &removed, &changed, &fused);
  g_assert_cmpint (added + removed + changed + fused, >, 0);
  g_assert_nonnull (strstr (fb_diff_view_get_summary (diff), "cse"));

  /* Side by side compares the same two snapshots, the after graph on the right. */
  fb_graph_view_set_mode (view, FB_GRAPH_MODE_SIDE_BY_SIDE);
  g_assert_true (fb_graph_view_is_diff_pending (view));
  wait_for_diff (view);
  diff = fb_graph_view_get_diff (view);
  g_assert_nonnull (diff);
  g_assert_true (fb_graph_layout_get_computation (fb_diff_view_get_before_layout (diff)) == before->module->entry);
  /* Two pictures, each in its half, with a grey divider between them. */
  int w, h;
  gsize stride;
  g_autoptr (GBytes) pixels = render_widget (GTK_WIDGET (view), &w, &h, &stride);
  const guchar *px = g_bytes_get_data (pixels, NULL);
  int half = w / 2, grey = 0, differ = 0;
  for (int y = 0; y < h; y++)
    {
      const guchar *d = px + (gsize) y * stride + (gsize) (half - 1) * 4;
      if (abs (d[0] - 128) < 16 && abs (d[1] - 128) < 16 && abs (d[2] - 128) < 16)
        grey++;
      for (int x = 0; x < half - 1; x++)
        if (memcmp (px + (gsize) y * stride + (gsize) x * 4, px + (gsize) y * stride + (gsize) (x + half) * 4, 4))
          differ++;
    }
  g_assert_cmpint (grey, >, h * 3 / 4);
  g_assert_cmpint (differ, >, 1000);
  iterate_pending ();

  /* Back to the plain graph: no diff is kept or built. */
  fb_graph_view_set_mode (view, FB_GRAPH_MODE_AFTER);
  g_assert_false (fb_graph_view_is_diff_pending (view));
  g_assert_null (fb_graph_view_get_diff (view));
  g_assert_true (fb_graph_layout_get_computation (fb_graph_view_get_layout (view)) == now->module->entry);
  iterate_pending ();
  close_window (window);
}

/* Stepping on while a diff is built drops that diff: only the diff of the
 * snapshot shown in the end lands, and the first snapshot has none. */
static void
test_diff_drops_stale (void)
{
  FbWindow *window = open_sample_window ();
  FbDocument *doc = fb_window_get_document (window);
  FbPassList *list = fb_window_get_pass_list (window);
  FbGraphView *view = fb_window_get_graph_view (window);
  int n = fb_document_get_n_snapshots (doc);
  g_assert_cmpint (n, >, 3);

  fb_graph_view_set_mode (view, FB_GRAPH_MODE_DIFF);
  fb_document_set_current (doc, 1);
  g_assert_true (fb_graph_view_is_diff_pending (view));
  for (int i = 2; i < n; i++)
    fb_pass_list_step (list, +1);
  g_assert_cmpint (fb_document_get_current (doc), ==, n - 1);
  wait_for_diff (view);
  /* Let any stale result arrive too: it must not replace the newest. */
  iterate_pending ();
  const FbDiffView *diff = fb_graph_view_get_diff (view);
  g_assert_nonnull (diff);
  g_assert_true (fb_graph_layout_get_computation (fb_diff_view_get_layout (diff)) ==
                 fb_document_get_snapshot (doc, n - 1)->module->entry);
  g_assert_true (fb_graph_layout_get_computation (fb_diff_view_get_before_layout (diff)) ==
                 fb_document_get_snapshot (doc, n - 2)->module->entry);

  fb_document_set_current (doc, 0);
  g_assert_false (fb_graph_view_is_diff_pending (view));
  g_assert_null (fb_graph_view_get_diff (view));
  g_assert_nonnull (fb_graph_view_get_layout (view));

  /* Closing the window while a diff is built leaks nothing. */
  fb_document_set_current (doc, n - 1);
  g_assert_true (fb_graph_view_is_diff_pending (view));
  fb_graph_view_set_mode (view, FB_GRAPH_MODE_AFTER);
  fb_graph_view_set_mode (view, FB_GRAPH_MODE_SIDE_BY_SIDE);
  close_window (window);
}

static void
test_malformed_keeps_model (void)
{
  FbWindow *window = open_sample_window ();
  FbDocument *doc = fb_window_get_document (window);
  FbBottomPane *pane = fb_window_get_bottom_pane (window);
  g_autofree char *bad = g_test_build_filename (G_TEST_DIST, "data", "gui", "malformed.hlo", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_false (fb_window_open_file (window, bad, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_PARSE);
  g_assert_true (fb_window_get_document (window) == doc);
  g_assert_nonnull (strstr (gtk_window_get_title (GTK_WINDOW (window)), "mlp.hlo"));
  const char *last = fb_bottom_pane_get_message (pane, fb_bottom_pane_get_n_messages (pane) - 1);
  g_assert_nonnull (strstr (last, "malformed.hlo:5:"));
  g_assert_cmpstr (fb_bottom_pane_get_visible_tab (pane), ==, "messages");

  /* A file that does not exist is an error too, not a crash. */
  g_clear_error (&error);
  g_assert_false (fb_window_open_file (window, "/nonexistent/model.hlo", &error));
  g_assert_nonnull (error);
  g_assert_true (fb_window_get_document (window) == doc);
  close_window (window);
}

static void
wait_for_load (FbWindow *window)
{
  while (fb_window_is_loading (window))
    g_main_context_iteration (NULL, TRUE);
}

/* Opening a file from the dialog loads it on a worker thread: the model
 * shown stays, with a spinner, until the new one lands or fails. */
static void
test_open_in_background (void)
{
  FbWindow *window = open_sample_window ();
  FbDocument *doc = g_object_ref (fb_window_get_document (window));
  FbBottomPane *pane = fb_window_get_bottom_pane (window);
  FbPassList *list = fb_window_get_pass_list (window);
  g_autofree char *bad = g_test_build_filename (G_TEST_DIST, "data", "gui", "malformed.hlo", NULL);
  g_autofree char *sample = sample_path ();

  g_assert_false (fb_pass_list_is_busy (list));
  fb_window_open_file_async (window, bad);
  g_assert_true (fb_window_is_loading (window));
  g_assert_true (fb_pass_list_is_busy (list));
  g_assert_true (fb_window_get_document (window) == doc);
  wait_for_load (window);
  g_assert_false (fb_pass_list_is_busy (list));
  g_assert_true (fb_window_get_document (window) == doc);
  const char *last = fb_bottom_pane_get_message (pane, fb_bottom_pane_get_n_messages (pane) - 1);
  g_assert_nonnull (strstr (last, "malformed.hlo:5:"));

  /* Two opens in a row: the first is dropped, the second lands. */
  fb_window_open_file_async (window, bad);
  fb_window_open_file_async (window, sample);
  wait_for_load (window);
  FbDocument *next = fb_window_get_document (window);
  g_assert_true (next != doc);
  g_assert_cmpstr (fb_document_get_path (next), ==, sample);
  g_assert_true (fb_graph_layout_get_computation (fb_graph_view_get_layout (fb_window_get_graph_view (window))) ==
                 fb_document_get_current_snapshot (next)->module->entry);
  /* The old document is gone with its snapshots. */
  g_assert_finalize_object (doc);
  iterate_pending ();
  close_window (window);
}

static void
test_decision_filter (void)
{
  FbWindow *window = open_sample_window ();
  FbBottomPane *pane = fb_window_get_bottom_pane (window);
  int all = fb_bottom_pane_get_n_decisions (pane);

  g_assert_cmpint (all, >, 0);
  fb_bottom_pane_set_decision_filter (pane, "FUSE-LOOPS");
  int some = fb_bottom_pane_get_n_decisions (pane);
  g_assert_cmpint (some, >, 0);
  g_assert_cmpint (some, <, all);
  fb_bottom_pane_set_decision_filter (pane, "no decision says this");
  g_assert_cmpint (fb_bottom_pane_get_n_decisions (pane), ==, 0);
  fb_bottom_pane_set_decision_filter (pane, NULL);
  g_assert_cmpint (fb_bottom_pane_get_n_decisions (pane), ==, all);
  close_window (window);
}

/* ------------------------------------------------------------ screenshot */

static int
run_gui (const char *const *args, char **err)
{
  const char *exe = g_getenv ("FUSEBOX_GUI");
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  int status = -1;

  g_ptr_array_add (argv, (gpointer) exe);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, err,
                               &status, &error));
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
test_screenshot (void)
{
  if (g_getenv ("FUSEBOX_GUI") == NULL)
    {
      g_test_skip ("FUSEBOX_GUI (the fusebox binary) is not set");
      return;
    }
  g_autofree char *dir = g_dir_make_tmp ("fusebox-shot-XXXXXX", NULL);
  g_autofree char *png = g_build_filename (dir, "window.png", NULL);
  g_autofree char *sample = sample_path ();
  g_autofree char *err = NULL;

  const char *args[] = { "--screenshot", png, sample, "--pass", "fuse-loops", "--panel", "memory", NULL };
  int status = run_gui (args, &err);
  g_assert_cmpint (status, ==, 0);

  g_autoptr (GError) error = NULL;
  g_autoptr (GdkTexture) texture = gdk_texture_new_from_filename (png, &error);
  g_assert_no_error (error);
  int w = gdk_texture_get_width (texture), h = gdk_texture_get_height (texture);
  g_assert_cmpint (w, >=, 400);
  g_assert_cmpint (h, >=, 300);
  g_autofree guint32 *pixels = g_new (guint32, (gsize) w * h);
  gdk_texture_download (texture, (guchar *) pixels, (gsize) w * 4);

  /* Not blank: many colours, and most pixels are not the commonest one. */
  g_autoptr (GHashTable) counts = g_hash_table_new (NULL, NULL);
  guint best = 0;
  for (gsize i = 0; i < (gsize) w * h; i++)
    {
      gpointer key = GUINT_TO_POINTER (pixels[i]);
      guint c = GPOINTER_TO_UINT (g_hash_table_lookup (counts, key)) + 1;
      g_hash_table_insert (counts, key, GUINT_TO_POINTER (c));
      best = MAX (best, c);
    }
  g_assert_cmpuint (g_hash_table_size (counts), >=, 64);
  g_assert_cmpuint ((gsize) w * h - best, >, (gsize) w * h / 20);
  g_unlink (png);
  g_rmdir (dir);

  /* Bad usage is exit 2, a model that does not parse exit 1. */
  const char *bad_panel[] = { "--screenshot", png, "--panel", "nowhere", NULL };
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_gui (bad_panel, &err), ==, 2);
  g_assert_nonnull (strstr (err, "nowhere"));
  g_autofree char *malformed = g_test_build_filename (G_TEST_DIST, "data", "gui", "malformed.hlo", NULL);
  const char *bad_model[] = { "--screenshot", png, malformed, NULL };
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_gui (bad_model, &err), ==, 1);
  g_assert_nonnull (strstr (err, "malformed.hlo:5:"));
  g_assert_false (g_file_test (png, G_FILE_TEST_EXISTS));
}

int
main (int argc, char **argv)
{
  /* Generated kernels are cached in the build tree, not the user's cache. */
  if (g_getenv ("G_TEST_BUILDDIR"))
    {
      g_autofree char *cache = g_build_filename (g_getenv ("G_TEST_BUILDDIR"), "cache", NULL);
      g_setenv ("XDG_CACHE_HOME", cache, TRUE);
    }
  gtk_test_init (&argc, &argv, NULL);

  g_test_add_func ("/gui/window/open-sample", test_open_sample);
  g_test_add_func ("/gui/passes/toggle", test_toggle_pass);
  g_test_add_func ("/gui/passes/toggle-in-background", test_toggle_in_background);
  g_test_add_func ("/gui/passes/toggle-twice-drops-stale", test_toggle_twice_drops_stale);
  g_test_add_func ("/gui/passes/step-every-snapshot", test_step_snapshots);
  g_test_add_func ("/gui/inspector/selection", test_inspector_selection);
  g_test_add_func ("/gui/tasks/bench-throughput", test_bench_throughput);
  g_test_add_func ("/gui/tasks/backend-fallback", test_run_falls_back);
  g_test_add_func ("/gui/tasks/cancel", test_cancel);
  g_test_add_func ("/gui/tasks/cancel-long-run", test_cancel_long_run);
  g_test_add_func ("/gui/inspector/code-view", test_code_view);
  g_test_add_func ("/gui/bottom/timeline-click", test_timeline_click);
  g_test_add_func ("/gui/window/shortcuts", test_shortcuts_window);
  g_test_add_func ("/gui/graph/pan-tiles", test_pan_tiles);
  g_test_add_func ("/gui/graph/diff-in-background", test_diff_in_background);
  g_test_add_func ("/gui/graph/diff-drops-stale", test_diff_drops_stale);
  g_test_add_func ("/gui/window/malformed-keeps-model", test_malformed_keeps_model);
  g_test_add_func ("/gui/window/open-in-background", test_open_in_background);
  g_test_add_func ("/gui/bottom/decision-filter", test_decision_filter);
  g_test_add_func ("/gui/app/screenshot", test_screenshot);
  return g_test_run ();
}
