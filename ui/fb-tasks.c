/* SPDX-License-Identifier: MIT
 *
 * Tasks run in a GTask thread. The thread owns clones of the modules and a
 * trace it writes alone; the main thread only reads an atomic step counter
 * (polled for the progress bar) and, at the end, the result. Cancelling
 * reaches the runner through its cancellable, which stops before the next
 * step, so the task ends after the step in progress and the count of steps
 * it did stays readable.
 *
 * Diffs for the graph view run in a GTask of their own, next to any task:
 * the worker holds a reference on the snapshots it reads, so the document
 * may replace them meanwhile, and measures labels with a Pango context of
 * its own, which travels with the result. Only the newest request lands.
 */
#include "fb-tasks.h"

#include <glib/gi18n.h>
#include <math.h>
#include <pango/pangocairo.h>

#include "fb-backend.h"
#include "fb-runner.h"

struct _FbTasks
{
  GObject       parent_instance;

  GCancellable *cancellable;   /* of the running task, NULL when idle */
  guint         poll_id;
  gint         *steps_done;    /* shared with the worker, atomic */
  int           steps_total;
  int           last_done;     /* steps the last finished task ran */
  double        fraction;
  FbTaskResult *result;
  GError       *error;
  GCancellable *diff_cancellable;  /* of the diff in flight, NULL when none */
};

G_DEFINE_FINAL_TYPE (FbTasks, fb_tasks, G_TYPE_OBJECT)

enum { PROP_0, PROP_BUSY, PROP_FRACTION, N_PROPS };
static GParamSpec *properties[N_PROPS];

enum { FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

typedef struct {
  FbTaskKind  kind;
  FbModule   *a, *b;
  char       *backend;
  int         steps;
  gint       *steps_done;      /* shared, owned by the FbTasks and this data (refcounted below) */
  /* worker only */
  FbTrace    *trace;
  gboolean    recording;       /* a recorder writes the step spans */
  guint       track, loss_track;
  gint64      last_ns;
} TaskData;

static void
result_free (FbTaskResult *r)
{
  if (r == NULL)
    return;
  g_free (r->backend);
  g_clear_pointer (&r->trace, fb_trace_unref);
  g_free (r);
}

static void
task_data_free (TaskData *d)
{
  fb_module_free (d->a);
  fb_module_free (d->b);
  g_free (d->backend);
  g_clear_pointer (&d->trace, fb_trace_unref);
  g_atomic_rc_box_release (d->steps_done);
  g_free (d);
}

const char *
fb_task_kind_label (FbTaskKind kind)
{
  switch (kind)
    {
    case FB_TASK_RUN: return _("Run");
    case FB_TASK_BENCH: return _("Bench");
    case FB_TASK_PROFILE: return _("Profile");
    }
  return "";
}

const char *
fb_tasks_resolve_backend (const char *wanted, char **note)
{
  g_autoptr (GError) error = NULL;
  const FbBackend *backend = fb_backend_lookup (wanted ? wanted : "interp", &error);

  if (note)
    *note = NULL;
  if (backend && (backend->available == NULL || backend->available (&error)))
    return backend->name;
  if (note)
    *note = g_strdup_printf (_("The %s backend cannot run here (%s); using the interpreter."),
                             wanted, error ? error->message : "?");
  return "interp";
}

static void
on_step (int step, double loss, gpointer user_data)
{
  TaskData *d = user_data;
  gint64 now = fb_trace_now_ns ();
  FbSpan span;

  if (d->recording)
    {
      if (!isnan (loss))
        fb_trace_add_sample (d->trace, d->loss_track, now, loss);
      g_atomic_int_inc (d->steps_done);
      return;
    }

  fb_span_init (&span);
  span.start_ns = d->last_ns;
  span.end_ns = now;
  span.kind = FB_SPAN_STEP;
  span.step = step;
  g_autofree char *name = g_strdup_printf ("step %d", step);
  span.name = name;
  fb_trace_add_span (d->trace, d->track, &span);
  if (!isnan (loss))
    fb_trace_add_sample (d->trace, d->loss_track, now, loss);
  d->last_ns = now;
  g_atomic_int_inc (d->steps_done);
}

static gboolean
run_one (TaskData *d, FbModule *module, const char *label, double *steps_per_s, double *last_loss,
         GCancellable *cancellable, GError **error)
{
  FbRunOptions options;
  FbRunResult result = { 0 };
  g_autoptr (FbRecorder) recorder = NULL;

  fb_run_options_init (&options);
  options.backend = d->backend;
  options.steps = d->steps;
  options.on_step = on_step;
  options.on_step_data = d;
  options.cancellable = cancellable;
  /* A profile records through the recorder: step spans, and inside them
   * the kernel spans of backends that record them. */
  d->recording = d->kind == FB_TASK_PROFILE;
  if (d->recording)
    {
      recorder = fb_recorder_new (d->trace, FB_RECORDER_NONE);
      fb_recorder_name_thread (recorder, label);
      options.recorder = recorder;
    }
  else
    d->track = fb_trace_add_track (d->trace, FB_TRACK_HOST_THREAD, label, 0, -1, 0, NULL);
  g_autofree char *loss_name = g_strdup_printf ("loss (%s)", label);
  d->loss_track = fb_trace_add_track (d->trace, FB_TRACK_COUNTER, loss_name, 10, -1, 0, NULL);
  d->last_ns = fb_trace_now_ns ();
  if (!fb_runner_run (module, &options, &result, error))
    {
      fb_run_result_clear (&result);
      return FALSE;
    }
  *steps_per_s = result.steps_per_s;
  if (last_loss && result.steps > 0)
    *last_loss = result.losses[result.steps - 1];
  fb_run_result_clear (&result);
  return TRUE;
}

static void
worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  TaskData *d = task_data;
  g_autoptr (GError) error = NULL;
  FbTaskResult *r = g_new0 (FbTaskResult, 1);

  r->kind = d->kind;
  r->backend = g_strdup (d->backend);
  r->steps = d->steps;
  r->last_loss = NAN;
  d->trace = fb_trace_new ();
  fb_trace_set_title (d->trace, fb_task_kind_label (d->kind));
  fb_trace_set_metadata (d->trace, "backend", d->backend);

  gboolean ok = TRUE;
  if (d->kind == FB_TASK_BENCH)
    ok = run_one (d, d->a, "A", &r->a_steps_per_s, NULL, cancellable, &error);
  if (ok && !g_cancellable_is_cancelled (cancellable))
    ok = run_one (d, d->b, d->kind == FB_TASK_BENCH ? "B" : "steps", &r->b_steps_per_s, &r->last_loss,
                  cancellable, &error);
  fb_trace_finish (d->trace);
  r->trace = g_steal_pointer (&d->trace);
  if (!ok)
    {
      result_free (r);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    {
      result_free (r);
      return;
    }
  g_task_return_pointer (task, r, (GDestroyNotify) result_free);
}

static void
stop_polling (FbTasks *self)
{
  g_clear_handle_id (&self->poll_id, g_source_remove);
  g_clear_pointer (&self->steps_done, g_atomic_rc_box_release);
}

static void
on_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  FbTasks *self = FB_TASKS (source);
  g_autoptr (GError) error = NULL;
  FbTaskResult *r = g_task_propagate_pointer (G_TASK (res), &error);

  self->last_done = self->steps_done ? g_atomic_int_get (self->steps_done) : 0;
  stop_polling (self);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->result, result_free);
  g_clear_error (&self->error);
  self->result = r;
  self->error = g_steal_pointer (&error);
  self->fraction = r ? 1.0 : 0.0;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FRACTION]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BUSY]);
  g_signal_emit (self, signals[FINISHED], 0);
}

static gboolean
poll_progress (gpointer user_data)
{
  FbTasks *self = user_data;
  double f = self->steps_total > 0 ? (double) g_atomic_int_get (self->steps_done) / self->steps_total : 0;
  if (f != self->fraction)
    {
      self->fraction = MIN (f, 1.0);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FRACTION]);
    }
  return G_SOURCE_CONTINUE;
}

gboolean
fb_tasks_start (FbTasks *self, FbTaskKind kind, FbModule *a, FbModule *b, const char *backend, int steps,
                GError **error)
{
  g_return_val_if_fail (FB_IS_TASKS (self), FALSE);
  g_return_val_if_fail (b != NULL, FALSE);
  g_return_val_if_fail (kind != FB_TASK_BENCH || a != NULL, FALSE);

  if (self->cancellable)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, _("A task is already running; wait for it or cancel it."));
      return FALSE;
    }
  if (steps < 1)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, _("The step count must be at least 1 (it is %d)."), steps);
      return FALSE;
    }

  TaskData *d = g_new0 (TaskData, 1);
  d->kind = kind;
  d->a = kind == FB_TASK_BENCH ? fb_module_clone (a) : NULL;
  d->b = fb_module_clone (b);
  d->backend = g_strdup (backend ? backend : "interp");
  d->steps = steps;
  d->steps_done = g_atomic_rc_box_new0 (gint);

  self->steps_done = g_atomic_rc_box_acquire (d->steps_done);
  self->steps_total = kind == FB_TASK_BENCH ? 2 * steps : steps;
  self->last_done = 0;
  self->fraction = 0;
  self->cancellable = g_cancellable_new ();
  /* Four times a second: every update repaints the window, which is not
   * cheap with a software renderer. */
  self->poll_id = g_timeout_add (250, poll_progress, self);

  g_autoptr (GTask) task = g_task_new (self, self->cancellable, on_done, NULL);
  g_task_set_source_tag (task, fb_tasks_start);
  g_task_set_task_data (task, d, (GDestroyNotify) task_data_free);
  g_task_run_in_thread (task, worker);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BUSY]);
  return TRUE;
}

void
fb_tasks_cancel (FbTasks *self)
{
  g_return_if_fail (FB_IS_TASKS (self));
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
}

int
fb_tasks_get_steps_done (FbTasks *self, int *total)
{
  g_return_val_if_fail (FB_IS_TASKS (self), 0);
  if (total)
    *total = self->steps_total;
  return self->steps_done ? g_atomic_int_get (self->steps_done) : self->last_done;
}

gboolean
fb_tasks_is_busy (FbTasks *self)
{
  g_return_val_if_fail (FB_IS_TASKS (self), FALSE);
  return self->cancellable != NULL;
}

double
fb_tasks_get_fraction (FbTasks *self)
{
  g_return_val_if_fail (FB_IS_TASKS (self), 0);
  return self->fraction;
}

const FbTaskResult *
fb_tasks_get_result (FbTasks *self)
{
  g_return_val_if_fail (FB_IS_TASKS (self), NULL);
  return self->result;
}

const GError *
fb_tasks_get_error (FbTasks *self)
{
  g_return_val_if_fail (FB_IS_TASKS (self), NULL);
  return self->error;
}

/* ---------------------------------------------------------------- diffs */

typedef struct {
  GPtrArray *snapshots;
  int        before, after;
  double     dpi;
} DiffData;

static void
diff_data_free (DiffData *d)
{
  g_ptr_array_unref (d->snapshots);
  g_free (d);
}

void
fb_task_diff_free (FbTaskDiff *diff)
{
  if (diff == NULL)
    return;
  /* The view goes before what it points into. */
  g_clear_pointer (&diff->view, fb_diff_view_free);
  g_clear_object (&diff->pango);
  g_clear_pointer (&diff->snapshots, g_ptr_array_unref);
  g_free (diff);
}

static void
diff_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  DiffData *d = task_data;
  FbSnapshot *before = g_ptr_array_index (d->snapshots, d->before);
  FbSnapshot *after = g_ptr_array_index (d->snapshots, d->after);

  if (g_task_return_error_if_cancelled (task))
    return;
  g_autoptr (PangoFontMap) map = pango_cairo_font_map_new ();
  g_autoptr (FbTaskDiff) r = g_new0 (FbTaskDiff, 1);
  r->pango = pango_font_map_create_context (map);
  pango_cairo_context_set_resolution (r->pango, d->dpi > 0 ? d->dpi : 96);
  r->snapshots = g_ptr_array_ref (d->snapshots);
  r->before = d->before;
  r->after = d->after;

  FbGraphLayoutOptions options;
  fb_graph_layout_options_init (&options);
  options.pango = r->pango;
  r->view = fb_diff_view_new_from_snapshots (before, after, NULL, &options);
  if (r->view == NULL)
    {
      g_task_return_new_error (task, FB_ERROR, FB_ERROR_RUNTIME, _("These two snapshots cannot be compared."));
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;
  g_task_return_pointer (task, g_steal_pointer (&r), (GDestroyNotify) fb_task_diff_free);
}

void
fb_tasks_diff_async (FbTasks *self, GPtrArray *snapshots, int before, int after, double dpi,
                     GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (FB_IS_TASKS (self));
  g_return_if_fail (snapshots != NULL);

  fb_tasks_cancel_diff (self);
  self->diff_cancellable = g_cancellable_new ();
  g_autoptr (GTask) task = g_task_new (self, self->diff_cancellable, callback, user_data);
  g_task_set_source_tag (task, fb_tasks_diff_async);
  if (before < 0 || after < 0 || before >= (int) snapshots->len || after >= (int) snapshots->len ||
      ((FbSnapshot *) g_ptr_array_index (snapshots, before))->module == NULL ||
      ((FbSnapshot *) g_ptr_array_index (snapshots, after))->module == NULL ||
      ((FbSnapshot *) g_ptr_array_index (snapshots, before))->module->entry == NULL ||
      ((FbSnapshot *) g_ptr_array_index (snapshots, after))->module->entry == NULL)
    {
      g_task_return_new_error (task, FB_ERROR, FB_ERROR_USAGE, _("These two snapshots cannot be compared."));
      return;
    }
  DiffData *d = g_new0 (DiffData, 1);
  d->snapshots = g_ptr_array_ref (snapshots);
  d->before = before;
  d->after = after;
  d->dpi = dpi;
  g_task_set_task_data (task, d, (GDestroyNotify) diff_data_free);
  g_task_run_in_thread (task, diff_worker);
}

FbTaskDiff *
fb_tasks_diff_finish (FbTasks *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (FB_IS_TASKS (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  if (g_task_get_cancellable (G_TASK (result)) == self->diff_cancellable)
    g_clear_object (&self->diff_cancellable);
  /* A cancelled request reports G_IO_ERROR_CANCELLED even if its worker
   * finished: a newer one superseded it. */
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
fb_tasks_cancel_diff (FbTasks *self)
{
  g_return_if_fail (FB_IS_TASKS (self));
  if (self->diff_cancellable)
    g_cancellable_cancel (self->diff_cancellable);
  g_clear_object (&self->diff_cancellable);
}

gboolean
fb_tasks_is_diffing (FbTasks *self)
{
  g_return_val_if_fail (FB_IS_TASKS (self), FALSE);
  return self->diff_cancellable != NULL;
}

static void
fb_tasks_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  FbTasks *self = FB_TASKS (object);

  switch (prop_id)
    {
    case PROP_BUSY:
      g_value_set_boolean (value, fb_tasks_is_busy (self));
      break;
    case PROP_FRACTION:
      g_value_set_double (value, self->fraction);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fb_tasks_finalize (GObject *object)
{
  FbTasks *self = FB_TASKS (object);

  /* A running GTask holds a reference on us, so we only get here when idle. */
  stop_polling (self);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->diff_cancellable);
  g_clear_pointer (&self->result, result_free);
  g_clear_error (&self->error);
  G_OBJECT_CLASS (fb_tasks_parent_class)->finalize (object);
}

static void
fb_tasks_class_init (FbTasksClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = fb_tasks_finalize;
  object_class->get_property = fb_tasks_get_property;

  properties[PROP_BUSY] = g_param_spec_boolean ("busy", NULL, NULL, FALSE,
                                                G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_FRACTION] = g_param_spec_double ("fraction", NULL, NULL, 0, 1, 0,
                                                   G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* A task ended: successfully, with an error, or cancelled. */
  signals[FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
fb_tasks_init (FbTasks *self)
{
}

FbTasks *
fb_tasks_new (void)
{
  return g_object_new (FB_TYPE_TASKS, NULL);
}
