/* SPDX-License-Identifier: MIT
 *
 * The workbench document: a module, its pipeline and its snapshots, plus the
 * current snapshot and the selected instruction that every panel follows.
 * Changing the pipeline reruns it on a fresh clone of the input, so the
 * input itself is never rewritten.
 */
#include "fb-document.h"

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
};

G_DEFINE_FINAL_TYPE (FbDocument, fb_document, G_TYPE_OBJECT)

enum { PROP_0, PROP_CURRENT, PROP_SELECTED, N_PROPS };
static GParamSpec *properties[N_PROPS];

enum { CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
fb_document_finalize (GObject *object)
{
  FbDocument *self = FB_DOCUMENT (object);

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
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* The snapshots were replaced (the pipeline ran again). */
  signals[CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                   0, NULL, NULL, NULL, G_TYPE_NONE, 0);
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

static gboolean
rerun (FbDocument *self, GError **error)
{
  if (fb_pass_get_constant_evaluator (NULL) == NULL)
    fb_pass_set_constant_evaluator (interp_evaluator, NULL);

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
