/* SPDX-License-Identifier: MIT
 *
 * The workbench document: a module, its pipeline and its snapshots, plus the
 * current snapshot and the selected instruction that every panel follows.
 * Changing the pipeline reruns it on a fresh clone of the input, so the
 * input itself is never rewritten. The _async variants rerun it in a GTask
 * thread, together with the layout of the snapshot that will be shown:
 * the old snapshots stay in place until the new ones land, and a result
 * that a later change made stale (older generation) is dropped.
 */
#include "fb-document.h"

#include <gio/gio.h>
#include <pango/pangocairo.h>

#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-json.h"

struct _FbDocument
{
  GObject     parent_instance;

  char       *path;
  FbModule   *input;
  FbPipeline *pipeline;
  GPtrArray  *snapshots;     /* of FbSnapshot* */
  int         current;
  int64_t     selected;
  double      resolution;

  /* background reruns */
  guint          generation;     /* bumped by every change of the pipeline */
  guint          n_running;      /* reruns in flight, stale ones included */
  GCancellable  *cancellable;    /* of the newest rerun */
  FbGraphLayout *prepared;       /* layout of the snapshot shown when a rerun landed */
  PangoContext  *prepared_pango; /* the context @prepared measured with */
};

G_DEFINE_FINAL_TYPE (FbDocument, fb_document, G_TYPE_OBJECT)

enum { PROP_0, PROP_CURRENT, PROP_SELECTED, PROP_BUSY, N_PROPS };
static GParamSpec *properties[N_PROPS];

enum { CHANGED, RERUN_DONE, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
fb_document_finalize (GObject *object)
{
  FbDocument *self = FB_DOCUMENT (object);

  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->prepared, fb_graph_layout_free);
  g_clear_object (&self->prepared_pango);
  g_clear_pointer (&self->snapshots, g_ptr_array_unref);
  g_clear_pointer (&self->pipeline, fb_pipeline_free);
  g_clear_pointer (&self->input, fb_module_free);
  g_clear_pointer (&self->path, g_free);
  G_OBJECT_CLASS (fb_document_parent_class)->finalize (object);
}

static void
fb_document_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  FbDocument *self = FB_DOCUMENT (object);

  switch (prop_id)
    {
    case PROP_CURRENT:
      g_value_set_int (value, self->current);
      break;
    case PROP_SELECTED:
      g_value_set_int64 (value, self->selected);
      break;
    case PROP_BUSY:
      g_value_set_boolean (value, fb_document_is_busy (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fb_document_class_init (FbDocumentClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = fb_document_finalize;
  object_class->get_property = fb_document_get_property;

  properties[PROP_CURRENT] = g_param_spec_int ("current", NULL, NULL, 0, G_MAXINT, 0,
                                               G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_SELECTED] = g_param_spec_int64 ("selected", NULL, NULL, -1, G_MAXINT64, -1,
                                                  G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /* A background rerun is in flight. */
  properties[PROP_BUSY] = g_param_spec_boolean ("busy", NULL, NULL, FALSE,
                                                G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* The snapshots were replaced (the pipeline ran again). */
  signals[CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                   0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /* The newest background rerun landed (after "changed") or failed; the
   * argument is the error message, NULL on success. Stale reruns are
   * dropped silently. */
  signals[RERUN_DONE] = g_signal_new ("rerun-done", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                      0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
fb_document_init (FbDocument *self)
{
  self->selected = -1;
}

/* Constant folding evaluates with the reference interpreter; the compiler
 * library does not link the backends, so the program registers it. */
static FbLiteral *
interp_evaluator (FbModule *module, FbArena *arena, gpointer user_data, GError **error)
{
  return fb_interp_run (module, module->entry, arena, 0, NULL, NULL, error);
}

/* Documents are also made on worker threads (loading): register once. */
static void
ensure_evaluator (void)
{
  static gsize once = 0;
  if (g_once_init_enter (&once))
    {
      if (fb_pass_get_constant_evaluator (NULL) == NULL)
        fb_pass_set_constant_evaluator (interp_evaluator, NULL);
      g_once_init_leave (&once, 1);
    }
}

static gboolean
rerun (FbDocument *self, GError **error)
{
  ensure_evaluator ();

  FbModule *work = fb_module_clone (self->input);
  FbPipelineOptions options = { .verify_each = FALSE, .keep_snapshots = TRUE };
  GPtrArray *snaps = fb_pipeline_run (self->pipeline, work, &options, error);

  fb_module_free (work);
  if (snaps == NULL)
    return FALSE;
  g_clear_pointer (&self->snapshots, g_ptr_array_unref);
  self->snapshots = snaps;
  if (self->current >= (int) snaps->len)
    self->current = snaps->len - 1;
  return TRUE;
}

static gboolean
has_suffix_ci (const char *path, const char *suffix)
{
  g_autofree char *lower = g_ascii_strdown (path, -1);
  return g_str_has_suffix (lower, suffix);
}

FbDocument *
fb_document_new_from_file (const char *path, const char *spec, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  FbModule *module = has_suffix_ci (path, ".json") ? fb_json_load_file (path, error)
                                                   : fb_hlo_parse_file (path, 0, error);
  if (module == NULL)
    return NULL;

  g_autoptr (FbDocument) self = g_object_new (FB_TYPE_DOCUMENT, NULL);
  self->path = g_strdup (path);
  self->input = module;
  self->pipeline = fb_pipeline_new_default ();
  if (spec && *spec && !fb_pipeline_set_spec (self->pipeline, spec, error))
    return NULL;
  if (!rerun (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

const char *
fb_document_get_path (FbDocument *doc)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), NULL);
  return doc->path;
}

char *
fb_document_dup_basename (FbDocument *doc)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), NULL);
  return g_path_get_basename (doc->path);
}

FbModule *
fb_document_get_input (FbDocument *doc)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), NULL);
  return doc->input;
}

FbPipeline *
fb_document_get_pipeline (FbDocument *doc)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), NULL);
  return doc->pipeline;
}

char *
fb_document_dup_spec (FbDocument *doc)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), NULL);
  return fb_pipeline_dup_spec (doc->pipeline);
}

int
fb_document_get_n_snapshots (FbDocument *doc)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), 0);
  return doc->snapshots->len;
}

FbSnapshot *
fb_document_get_snapshot (FbDocument *doc, int index)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), NULL);
  if (index < 0 || index >= (int) doc->snapshots->len)
    return NULL;
  return g_ptr_array_index (doc->snapshots, index);
}

int
fb_document_get_current (FbDocument *doc)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), 0);
  return doc->current;
}

FbSnapshot *
fb_document_get_current_snapshot (FbDocument *doc)
{
  return fb_document_get_snapshot (doc, fb_document_get_current (doc));
}

void
fb_document_set_current (FbDocument *doc, int index)
{
  g_return_if_fail (FB_IS_DOCUMENT (doc));
  index = CLAMP (index, 0, (int) doc->snapshots->len - 1);
  if (index == doc->current)
    return;
  doc->current = index;
  g_object_notify_by_pspec (G_OBJECT (doc), properties[PROP_CURRENT]);
}

GPtrArray *
fb_document_ref_snapshots (FbDocument *doc)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), NULL);
  return g_ptr_array_ref (doc->snapshots);
}

int
fb_document_find_pass (FbDocument *doc, const char *name)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), -1);
  for (guint i = 1; i < doc->snapshots->len; i++)
    {
      FbSnapshot *s = g_ptr_array_index (doc->snapshots, i);
      if (s->pass && g_strcmp0 (s->pass->name, name) == 0)
        return i;
    }
  return -1;
}

static gboolean
apply (FbDocument *doc, gboolean *saved, GError **error)
{
  /* Whatever runs in the background now computes an outdated pipeline. */
  doc->generation++;
  if (!rerun (doc, error))
    {
      /* Put the previous configuration back so the panels stay consistent. */
      for (int i = 0; i < doc->pipeline->n; i++)
        doc->pipeline->entries[i].enabled = saved[i];
      return FALSE;
    }
  g_signal_emit (doc, signals[CHANGED], 0);
  g_object_notify_by_pspec (G_OBJECT (doc), properties[PROP_CURRENT]);
  return TRUE;
}

gboolean
fb_document_set_pass_enabled (FbDocument *doc, int entry, gboolean enabled, GError **error)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), FALSE);
  g_return_val_if_fail (entry >= 0 && entry < doc->pipeline->n, FALSE);

  if (doc->pipeline->entries[entry].enabled == enabled)
    return TRUE;
  g_autofree gboolean *saved = g_new (gboolean, doc->pipeline->n);
  for (int i = 0; i < doc->pipeline->n; i++)
    saved[i] = doc->pipeline->entries[i].enabled;
  doc->pipeline->entries[entry].enabled = enabled;
  return apply (doc, saved, error);
}

gboolean
fb_document_run_to (FbDocument *doc, int entry, GError **error)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), FALSE);
  g_return_val_if_fail (entry >= 0 && entry < doc->pipeline->n, FALSE);

  g_autofree gboolean *saved = g_new (gboolean, doc->pipeline->n);
  for (int i = 0; i < doc->pipeline->n; i++)
    {
      saved[i] = doc->pipeline->entries[i].enabled;
      doc->pipeline->entries[i].enabled = i <= entry;
    }
  doc->current = entry + 1;
  return apply (doc, saved, error);
}

/* ------------------------------------------------------ background reruns */

typedef struct {
  guint           generation;
  FbModule       *input;      /* borrowed: the document outlives the task and never rewrites it */
  FbPipeline     *pipeline;   /* a copy of the flags at the time of the change */
  gboolean       *saved;      /* the flags before the change, put back on failure */
  int             show;       /* snapshot whose layout is prepared */
  gboolean        set_current;/* and it becomes the current one */
  double          resolution; /* of the widgets, for measuring labels */
} RerunData;

typedef struct {
  GPtrArray     *snapshots;
  FbGraphLayout *layout;
  PangoContext  *pango;
} RerunResult;

static void
rerun_data_free (RerunData *d)
{
  g_free (d->pipeline->entries);
  g_free (d->pipeline);
  g_free (d->saved);
  g_free (d);
}

static void
rerun_result_free (RerunResult *r)
{
  g_clear_pointer (&r->layout, fb_graph_layout_free);
  g_clear_object (&r->pango);
  g_clear_pointer (&r->snapshots, g_ptr_array_unref);
  g_free (r);
}

/* Lays out snapshot @show of @snaps as the graph view would. Pango objects
 * are not shared between threads: the layout measures with a font map of
 * its own, and the context travels with it (*@pango must outlive it). */
static void
prepare_layout (GPtrArray *snaps, int show, double resolution, FbGraphLayout **layout, PangoContext **pango)
{
  *layout = NULL;
  *pango = NULL;
  FbSnapshot *snap = g_ptr_array_index (snaps, CLAMP (show, 0, (int) snaps->len - 1));
  if (snap->module == NULL || snap->module->entry == NULL)
    return;
  g_autoptr (PangoFontMap) map = pango_cairo_font_map_new ();
  *pango = pango_font_map_create_context (map);
  pango_cairo_context_set_resolution (*pango, resolution > 0 ? resolution : 96);
  FbGraphLayoutOptions options;
  fb_graph_layout_options_init (&options);
  options.pango = *pango;
  *layout = fb_graph_layout_new (snap->module->entry, NULL, &options);
}

static void
rerun_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  RerunData *d = task_data;
  g_autoptr (GError) error = NULL;
  FbModule *work = fb_module_clone (d->input);
  FbPipelineOptions options = { .verify_each = FALSE, .keep_snapshots = TRUE };
  GPtrArray *snaps = fb_pipeline_run (d->pipeline, work, &options, &error);

  fb_module_free (work);
  if (snaps == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  RerunResult *r = g_new0 (RerunResult, 1);
  r->snapshots = snaps;
  if (g_cancellable_is_cancelled (cancellable))
    {
      /* Superseded: skip the layout, the result will be dropped. */
      g_task_return_pointer (task, r, (GDestroyNotify) rerun_result_free);
      return;
    }
  prepare_layout (snaps, d->show, d->resolution, &r->layout, &r->pango);
  g_task_return_pointer (task, r, (GDestroyNotify) rerun_result_free);
}

static void
rerun_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  FbDocument *self = FB_DOCUMENT (source);
  RerunData *d = g_task_get_task_data (G_TASK (res));
  g_autoptr (GError) error = NULL;
  RerunResult *r = g_task_propagate_pointer (G_TASK (res), &error);
  gboolean newest = d->generation == self->generation;

  self->n_running--;
  if (!newest)
    {
      /* A later change superseded this one: drop it. */
      g_clear_pointer (&r, rerun_result_free);
      if (self->n_running == 0)
        g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BUSY]);
      return;
    }
  g_clear_object (&self->cancellable);
  if (r == NULL)
    {
      /* Put the previous configuration back so the panels stay consistent. */
      for (int i = 0; i < self->pipeline->n; i++)
        self->pipeline->entries[i].enabled = d->saved[i];
      if (self->n_running == 0)
        g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BUSY]);
      g_signal_emit (self, signals[RERUN_DONE], 0, error->message);
      return;
    }
  g_clear_pointer (&self->snapshots, g_ptr_array_unref);
  self->snapshots = g_steal_pointer (&r->snapshots);
  if (d->set_current)
    self->current = d->show;
  self->current = CLAMP (self->current, 0, (int) self->snapshots->len - 1);
  g_clear_pointer (&self->prepared, fb_graph_layout_free);
  g_clear_object (&self->prepared_pango);
  self->prepared = g_steal_pointer (&r->layout);
  self->prepared_pango = g_steal_pointer (&r->pango);
  rerun_result_free (r);
  if (self->n_running == 0)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BUSY]);
  g_signal_emit (self, signals[CHANGED], 0);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CURRENT]);
  /* Nobody took the layout: it must not outlive the snapshots it points into. */
  g_clear_pointer (&self->prepared, fb_graph_layout_free);
  g_clear_object (&self->prepared_pango);
  g_signal_emit (self, signals[RERUN_DONE], 0, NULL);
}

static void
start_rerun (FbDocument *self, gboolean *saved, int show, gboolean set_current)
{
  ensure_evaluator ();

  RerunData *d = g_new0 (RerunData, 1);
  d->generation = ++self->generation;
  d->input = self->input;
  d->pipeline = g_new0 (FbPipeline, 1);
  d->pipeline->n = self->pipeline->n;
  d->pipeline->entries = g_memdup2 (self->pipeline->entries, sizeof (FbPipelineEntry) * self->pipeline->n);
  d->saved = saved;
  d->show = show;
  d->set_current = set_current;
  d->resolution = self->resolution;

  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_set_object (&self->cancellable, NULL);
  self->cancellable = g_cancellable_new ();
  g_autoptr (GTask) task = g_task_new (self, self->cancellable, rerun_done, NULL);
  g_task_set_source_tag (task, start_rerun);
  g_task_set_task_data (task, d, (GDestroyNotify) rerun_data_free);
  /* Results are matched by generation, not dropped by the cancellable. */
  g_task_set_check_cancellable (task, FALSE);
  g_task_run_in_thread (task, rerun_worker);
  if (self->n_running++ == 0)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BUSY]);
}

static gboolean *
save_flags (FbDocument *doc)
{
  gboolean *saved = g_new (gboolean, doc->pipeline->n);
  for (int i = 0; i < doc->pipeline->n; i++)
    saved[i] = doc->pipeline->entries[i].enabled;
  return saved;
}

void
fb_document_set_pass_enabled_async (FbDocument *doc, int entry, gboolean enabled)
{
  g_return_if_fail (FB_IS_DOCUMENT (doc));
  g_return_if_fail (entry >= 0 && entry < doc->pipeline->n);

  if (doc->pipeline->entries[entry].enabled == enabled)
    return;
  gboolean *saved = save_flags (doc);
  doc->pipeline->entries[entry].enabled = enabled;
  start_rerun (doc, saved, doc->current, FALSE);
}

void
fb_document_run_to_async (FbDocument *doc, int entry)
{
  g_return_if_fail (FB_IS_DOCUMENT (doc));
  g_return_if_fail (entry >= 0 && entry < doc->pipeline->n);

  gboolean *saved = save_flags (doc);
  for (int i = 0; i < doc->pipeline->n; i++)
    doc->pipeline->entries[i].enabled = i <= entry;
  start_rerun (doc, saved, entry + 1, TRUE);
}

gboolean
fb_document_is_busy (FbDocument *doc)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), FALSE);
  return doc->n_running > 0;
}

void
fb_document_set_resolution (FbDocument *doc, double dpi)
{
  g_return_if_fail (FB_IS_DOCUMENT (doc));
  doc->resolution = dpi;
}

void
fb_document_prepare_layout (FbDocument *doc, double dpi)
{
  g_return_if_fail (FB_IS_DOCUMENT (doc));
  g_clear_pointer (&doc->prepared, fb_graph_layout_free);
  g_clear_object (&doc->prepared_pango);
  doc->resolution = dpi;
  prepare_layout (doc->snapshots, doc->current, dpi, &doc->prepared, &doc->prepared_pango);
}

FbGraphLayout *
fb_document_take_prepared_layout (FbDocument *doc, FbComputation *comp, PangoContext **pango)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), NULL);
  g_return_val_if_fail (pango != NULL, NULL);
  *pango = NULL;
  if (doc->prepared == NULL || comp == NULL || fb_graph_layout_get_computation (doc->prepared) != comp)
    return NULL;
  *pango = g_steal_pointer (&doc->prepared_pango);
  return g_steal_pointer (&doc->prepared);
}

int64_t
fb_document_get_selected (FbDocument *doc)
{
  g_return_val_if_fail (FB_IS_DOCUMENT (doc), -1);
  return doc->selected;
}

void
fb_document_set_selected (FbDocument *doc, int64_t id)
{
  g_return_if_fail (FB_IS_DOCUMENT (doc));
  if (id == doc->selected)
    return;
  doc->selected = id;
  g_object_notify_by_pspec (G_OBJECT (doc), properties[PROP_SELECTED]);
}

FbInstr *
fb_document_find_instr (FbModule *module, int64_t id)
{
  if (module == NULL || id < 0)
    return NULL;
  FbInstr *by_prov = NULL;
  for (int c = 0; c < module->n_comps; c++)
    for (FbInstr *in = module->comps[c]->first; in; in = in->next)
      {
        if (in->id == id)
          return in;
        for (int k = 0; k < in->n_prov && by_prov == NULL; k++)
          if (in->prov[k] == id && !module->comps[c]->is_fusion)
            by_prov = in;
      }
  return by_prov;
}
