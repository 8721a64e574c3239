/* SPDX-License-Identifier: MIT
 *
 * The workbench window. The template (fb-window.ui) lays out the panels;
 * this file connects them to one FbDocument, turns the header bar and the
 * keyboard into actions, runs tasks through FbTasks and routes every error
 * to the messages tab, and keeps the user's layout and choices in GSettings.
 */
#include "fb-window.h"

#include <glib/gi18n.h>
#include <pango/pangocairo.h>

#include "fb-paint.h"

struct _FbWindow
{
  GtkApplicationWindow parent_instance;

  /* template widgets */
  GtkWidget    *recent_button;
  GtkWidget    *progress_box;
  GtkWidget    *progress_bar;
  GtkWidget    *export_button;
  GtkWidget    *search_button;
  GtkWidget    *mode_dropdown;
  GtkWidget    *search_bar;
  GtkWidget    *search_entry;
  GtkWidget    *bottom_paned;
  GtkWidget    *left_paned;
  GtkWidget    *right_paned;
  FbPassList   *pass_list;
  FbGraphView  *graph_view;
  FbInspector  *inspector;
  FbBottomPane *bottom_pane;

  /* owned */
  FbDocument   *doc;
  FbTasks      *tasks;
  GSettings    *settings;       /* NULL when the schema is not installed */
  GtkNativeDialog *chooser;
  gulong        doc_changed_id;
  GCancellable *load_cancellable; /* of the newest background load; NULL when none */
  guint         load_generation;
  gboolean      panes_restored[3];
  int           panes_set[3];   /* last position we set; the user moved the pane when it differs */
};

G_DEFINE_FINAL_TYPE (FbWindow, fb_window, GTK_TYPE_APPLICATION_WINDOW)

void fb_register_resource (void);

/* ------------------------------------------------------------ settings */

static GSettings *
settings_new (void)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr (GSettingsSchema) schema = source ? g_settings_schema_source_lookup (source, FB_APP_ID, TRUE) : NULL;

  if (schema == NULL)
    {
      g_warning ("The settings schema %s is not installed; using defaults and saving nothing. "
                 "Install it or set GSETTINGS_SCHEMA_DIR.", FB_APP_ID);
      return NULL;
    }
  return g_settings_new_full (schema, NULL, NULL);
}

static int
setting_int (FbWindow *self, const char *key, int fallback)
{
  return self->settings ? g_settings_get_int (self->settings, key) : fallback;
}

static char *
setting_string (FbWindow *self, const char *key, const char *fallback)
{
  return self->settings ? g_settings_get_string (self->settings, key) : g_strdup (fallback);
}

static char *
spec_from_settings (FbWindow *self)
{
  if (self->settings == NULL)
    return NULL;
  g_auto (GStrv) off = g_settings_get_strv (self->settings, "disabled-passes");
  if (off[0] == NULL)
    return NULL;
  g_autoptr (GString) spec = g_string_new ("all");
  for (int i = 0; off[i]; i++)
    if (fb_pass_lookup (off[i]))
      g_string_append_printf (spec, ",-%s", off[i]);
  return g_string_free (g_steal_pointer (&spec), FALSE);
}

static void
save_passes (FbWindow *self)
{
  if (self->settings == NULL || self->doc == NULL)
    return;
  FbPipeline *p = fb_document_get_pipeline (self->doc);
  g_autoptr (GStrvBuilder) off = g_strv_builder_new ();
  for (int i = 0; i < p->n; i++)
    if (!p->entries[i].enabled)
      g_strv_builder_add (off, p->entries[i].pass->name);
  g_auto (GStrv) names = g_strv_builder_end (off);
  g_settings_set_strv (self->settings, "disabled-passes", (const char *const *) names);
}

/* Pane sizes are stored as the size of the side panel, so that they mean
 * the same thing whatever the window size; they are applied once the paned
 * knows its extent. */
static void
on_max_position (GtkPaned *paned, GParamSpec *pspec, FbWindow *self)
{
  int which = paned == GTK_PANED (self->left_paned) ? 0 : paned == GTK_PANED (self->right_paned) ? 1 : 2;
  int max = 0;
  g_object_get (paned, "max-position", &max, NULL);
  /* Applied again while the window grows to its first size, until the user moves it. */
  if (max <= 0 || (self->panes_restored[which] && gtk_paned_get_position (paned) != self->panes_set[which]))
    return;
  self->panes_restored[which] = TRUE;
  int pos;
  if (which == 0)
    pos = MIN (setting_int (self, "left-pane-position", 260), max / 2);
  else if (which == 1)
    pos = MAX (max / 2, MIN (max, gtk_widget_get_width (self->right_paned) - setting_int (self, "right-pane-position", 320)));
  else
    pos = MAX (max / 2, MIN (max, gtk_widget_get_height (self->bottom_paned) - setting_int (self, "bottom-pane-position", 220)));
  self->panes_set[which] = pos;
  gtk_paned_set_position (paned, pos);
}

static void
save_layout (FbWindow *self)
{
  if (self->settings == NULL)
    return;
  int w, h;
  gtk_window_get_default_size (GTK_WINDOW (self), &w, &h);
  g_settings_delay (self->settings);
  if (!gtk_window_is_maximized (GTK_WINDOW (self)) && w > 0 && h > 0)
    {
      g_settings_set_int (self->settings, "window-width", w);
      g_settings_set_int (self->settings, "window-height", h);
    }
  g_settings_set_boolean (self->settings, "window-maximized", gtk_window_is_maximized (GTK_WINDOW (self)));
  if (self->panes_restored[0])
    g_settings_set_int (self->settings, "left-pane-position", gtk_paned_get_position (GTK_PANED (self->left_paned)));
  if (self->panes_restored[1])
    g_settings_set_int (self->settings, "right-pane-position",
                        gtk_widget_get_width (self->right_paned) - gtk_paned_get_position (GTK_PANED (self->right_paned)));
  if (self->panes_restored[2])
    g_settings_set_int (self->settings, "bottom-pane-position",
                        gtk_widget_get_height (self->bottom_paned) - gtk_paned_get_position (GTK_PANED (self->bottom_paned)));
  g_settings_apply (self->settings);
}

static gboolean
on_close_request (GtkWindow *window, gpointer user_data)
{
  FbWindow *self = FB_WINDOW (window);
  save_layout (self);
  fb_tasks_cancel (self->tasks);
  return FALSE;
}

/* ------------------------------------------------------------ messages */

static void
show_error (FbWindow *self, const char *text)
{
  fb_bottom_pane_add_message (self->bottom_pane, FB_MESSAGE_ERROR, text);
  fb_bottom_pane_show (self->bottom_pane, "messages");
}

static void
on_pass_error (FbPassList *list, const char *message, FbWindow *self)
{
  show_error (self, message);
}

/* --------------------------------------------------------------- files */

static void
rebuild_recent_menu (FbWindow *self)
{
  g_autoptr (GMenu) menu = g_menu_new ();
  GList *items = gtk_recent_manager_get_items (gtk_recent_manager_get_default ());
  int n = 0;

  for (GList *l = items; l && n < 10; l = l->next)
    {
      GtkRecentInfo *info = l->data;
      const char *uri = gtk_recent_info_get_uri (info);
      const char *app_name = g_get_application_name ();
      if (!(app_name && gtk_recent_info_has_application (info, app_name)) &&
          !g_str_has_suffix (uri, ".hlo") && !g_str_has_suffix (uri, ".json"))
        continue;
      if (!gtk_recent_info_exists (info))
        continue;
      g_autoptr (GMenuItem) item = g_menu_item_new (gtk_recent_info_get_display_name (info), NULL);
      g_menu_item_set_action_and_target_value (item, "win.open-recent", g_variant_new_string (uri));
      g_menu_append_item (menu, item);
      n++;
    }
  g_list_free_full (items, (GDestroyNotify) gtk_recent_info_unref);
  if (n == 0)
    {
      g_autoptr (GMenuItem) item = g_menu_item_new (_("No recent models"), "win.none");
      g_menu_append_item (menu, item);
    }
  gtk_menu_button_set_menu_model (GTK_MENU_BUTTON (self->recent_button), G_MENU_MODEL (menu));
}

static void
update_task_actions (FbWindow *self)
{
  gboolean busy = fb_tasks_is_busy (self->tasks);
  gboolean can = self->doc != NULL && !busy;
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.run", can);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.bench", can);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.profile", can);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.cancel", busy);
  gtk_widget_set_visible (self->progress_box, busy);
}

static void
set_document (FbWindow *self, FbDocument *doc)
{
  if (self->doc)
    g_clear_signal_handler (&self->doc_changed_id, self->doc);
  g_set_object (&self->doc, doc);
  if (doc)
    {
      self->doc_changed_id = g_signal_connect_swapped (doc, "changed", G_CALLBACK (save_passes), self);
      /* Background layouts measure labels as the graph view does. */
      PangoContext *pango = gtk_widget_get_pango_context (GTK_WIDGET (self->graph_view));
      fb_document_set_resolution (doc, pango_cairo_context_get_resolution (pango));
    }
  fb_pass_list_set_document (self->pass_list, doc);
  fb_graph_view_set_document (self->graph_view, doc);
  fb_inspector_set_document (self->inspector, doc);
  fb_bottom_pane_set_document (self->bottom_pane, doc);
  update_task_actions (self);
}

/* Parses @path and runs the saved pass configuration on it, or every pass
 * when that configuration does not suit the module. Any thread. */
static FbDocument *
load_document (const char *path, const char *spec, GError **error)
{
  g_autoptr (GError) local = NULL;
  FbDocument *doc = fb_document_new_from_file (path, spec, &local);
  /* The saved pass configuration may not suit this module: try them all. */
  if (doc == NULL && spec && local && local->code != FB_ERROR_PARSE && local->code != FB_ERROR_IO)
    {
      g_clear_error (&local);
      doc = fb_document_new_from_file (path, NULL, &local);
    }
  if (doc == NULL)
    g_propagate_error (error, g_steal_pointer (&local));
  return doc;
}

static void
adopt_document (FbWindow *self, FbDocument *doc, const char *path)
{
  set_document (self, doc);
  g_autofree char *base = fb_document_dup_basename (doc);
  g_autofree char *title = g_strdup_printf (_("%s — Fusebox"), base);
  gtk_window_set_title (GTK_WINDOW (self), title);
  FbSnapshot *first = fb_document_get_snapshot (doc, 0);
  g_autofree char *loaded = g_strdup_printf (_("Loaded %s: %d instructions, %d passes"), path,
                                             first->stats.instructions, fb_document_get_n_snapshots (doc) - 1);
  fb_bottom_pane_add_message (self->bottom_pane, FB_MESSAGE_INFO, loaded);

  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autofree char *uri = g_file_get_uri (file);
  if (g_get_application_name ())
    gtk_recent_manager_add_item (gtk_recent_manager_get_default (), uri);
  rebuild_recent_menu (self);
}

gboolean
fb_window_open_file (FbWindow *self, const char *path, GError **error)
{
  g_return_val_if_fail (FB_IS_WINDOW (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  g_autoptr (GError) local = NULL;
  g_autofree char *spec = spec_from_settings (self);
  /* This file wins over one still loading in the background. */
  if (self->load_cancellable)
    {
      self->load_generation++;
      g_cancellable_cancel (self->load_cancellable);
      g_clear_object (&self->load_cancellable);
      fb_pass_list_set_loading (self->pass_list, FALSE);
    }
  g_autoptr (FbDocument) doc = load_document (path, spec, &local);
  if (doc == NULL)
    {
      show_error (self, local->message);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  adopt_document (self, doc, path);
  return TRUE;
}

typedef struct {
  char  *path;
  char  *spec;
  guint  generation;
  double resolution;     /* of the graph view, for the layout made with the model */
} LoadData;

static void
load_data_free (LoadData *d)
{
  g_free (d->path);
  g_free (d->spec);
  g_free (d);
}

static void
load_worker (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  LoadData *d = task_data;
  GError *error = NULL;
  FbDocument *doc = load_document (d->path, d->spec, &error);
  if (doc == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  fb_document_prepare_layout (doc, d->resolution);
  g_task_return_pointer (task, doc, g_object_unref);
}

static void
load_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  FbWindow *self = FB_WINDOW (source);
  LoadData *d = g_task_get_task_data (G_TASK (res));
  g_autoptr (GError) error = NULL;
  g_autoptr (FbDocument) doc = g_task_propagate_pointer (G_TASK (res), &error);

  /* Dropped: the window closed, or another file was opened after this one. */
  if (g_cancellable_is_cancelled (g_task_get_cancellable (G_TASK (res))) || d->generation != self->load_generation)
    return;
  g_clear_object (&self->load_cancellable);
  fb_pass_list_set_loading (self->pass_list, FALSE);
  if (doc == NULL)
    show_error (self, error->message);
  else
    adopt_document (self, doc, d->path);
}

void
fb_window_open_file_async (FbWindow *self, const char *path)
{
  g_return_if_fail (FB_IS_WINDOW (self));
  g_return_if_fail (path != NULL);

  LoadData *d = g_new0 (LoadData, 1);
  d->path = g_strdup (path);
  d->spec = spec_from_settings (self);
  d->generation = ++self->load_generation;
  d->resolution = pango_cairo_context_get_resolution (gtk_widget_get_pango_context (GTK_WIDGET (self->graph_view)));
  if (self->load_cancellable)
    g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  self->load_cancellable = g_cancellable_new ();
  fb_pass_list_set_loading (self->pass_list, TRUE);

  g_autoptr (GTask) task = g_task_new (self, self->load_cancellable, load_done, NULL);
  g_task_set_source_tag (task, fb_window_open_file_async);
  g_task_set_task_data (task, d, (GDestroyNotify) load_data_free);
  g_task_set_check_cancellable (task, FALSE);
  g_task_run_in_thread (task, load_worker);
}

gboolean
fb_window_is_loading (FbWindow *self)
{
  g_return_val_if_fail (FB_IS_WINDOW (self), FALSE);
  return self->load_cancellable != NULL;
}

static void
open_gfile (FbWindow *self, GFile *file)
{
  g_autofree char *path = g_file_get_path (file);
  if (path == NULL)
    {
      g_autofree char *uri = g_file_get_uri (file);
      g_autofree char *msg = g_strdup_printf (_("%s is not a local file."), uri);
      show_error (self, msg);
      return;
    }
  fb_window_open_file_async (self, path);
}

static void
on_chooser_response (GtkNativeDialog *dialog, int response, FbWindow *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      if (file)
        open_gfile (self, file);
    }
  g_clear_object (&self->chooser);
}

static void
action_open (GtkWidget *widget, const char *name, GVariant *param)
{
  FbWindow *self = FB_WINDOW (widget);
  if (self->chooser)
    return;
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new (_("Open a Model"), GTK_WINDOW (self),
                                                               GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
  GtkFileFilter *models = gtk_file_filter_new ();
  gtk_file_filter_set_name (models, _("Models (HLO text, Fusebox JSON)"));
  gtk_file_filter_add_suffix (models, "hlo");
  gtk_file_filter_add_suffix (models, "txt");
  gtk_file_filter_add_suffix (models, "json");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), models);
  GtkFileFilter *all = gtk_file_filter_new ();
  gtk_file_filter_set_name (all, _("All files"));
  gtk_file_filter_add_pattern (all, "*");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), all);
  g_object_unref (models);
  g_object_unref (all);
  self->chooser = GTK_NATIVE_DIALOG (chooser);
  g_signal_connect (chooser, "response", G_CALLBACK (on_chooser_response), self);
  gtk_native_dialog_show (self->chooser);
}

static void
action_open_recent (GtkWidget *widget, const char *name, GVariant *param)
{
  g_autoptr (GFile) file = g_file_new_for_uri (g_variant_get_string (param, NULL));
  open_gfile (FB_WINDOW (widget), file);
}

static gboolean
on_drop (GtkDropTarget *target, const GValue *value, double x, double y, FbWindow *self)
{
  if (!G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST))
    return FALSE;
  GSList *files = g_value_get_boxed (value);
  if (files == NULL)
    return FALSE;
  open_gfile (self, files->data);
  return TRUE;
}

static void
action_export (GtkWidget *widget, const char *name, GVariant *param)
{
  /* Disabled until export exists; the button's tooltip says so. */
}

static void
action_shortcuts (GtkWidget *widget, const char *name, GVariant *param)
{
  g_autoptr (GtkBuilder) builder = gtk_builder_new_from_resource ("/org/fusebox/Fusebox/ui/fb-shortcuts.ui");
  GtkWindow *win = GTK_WINDOW (gtk_builder_get_object (builder, "shortcuts"));
  gtk_window_set_transient_for (win, GTK_WINDOW (widget));
  gtk_window_present (win);
}

static void
action_find (GtkWidget *widget, const char *name, GVariant *param)
{
  FbWindow *self = FB_WINDOW (widget);
  gboolean on = !gtk_search_bar_get_search_mode (GTK_SEARCH_BAR (self->search_bar));
  gtk_search_bar_set_search_mode (GTK_SEARCH_BAR (self->search_bar), on);
  if (on)
    gtk_widget_grab_focus (self->search_entry);
}

static void run_search (FbWindow *self);

static void
on_search_changed (FbWindow *self)
{
  /* A new text searches from the first node; Enter and Ctrl+G go on to the next match. */
  if (self->doc)
    fb_document_set_selected (self->doc, -1);
  run_search (self);
}

static void
run_search (FbWindow *self)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->search_entry));
  gboolean found = *text == '\0' || fb_graph_view_search (self->graph_view, text);
  if (found)
    gtk_widget_remove_css_class (self->search_entry, "error");
  else
    gtk_widget_add_css_class (self->search_entry, "error");
}

/* ---------------------------------------------------------------- tasks */

gboolean
fb_window_start_task (FbWindow *self, FbTaskKind kind, const char *backend, int steps, GError **error)
{
  g_return_val_if_fail (FB_IS_WINDOW (self), FALSE);
  if (self->doc == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, _("Open a model first."));
      return FALSE;
    }
  g_autofree char *wanted = backend ? g_strdup (backend) : setting_string (self, "backend", "cpu");
  g_autofree char *note = NULL;
  const char *use = fb_tasks_resolve_backend (wanted, &note);
  if (note)
    fb_bottom_pane_add_message (self->bottom_pane, FB_MESSAGE_WARNING, note);
  if (steps <= 0)
    steps = setting_int (self, "steps", 20);

  FbModule *a = fb_document_get_snapshot (self->doc, 0)->module;
  int last = fb_document_get_n_snapshots (self->doc) - 1;
  FbModule *b = kind == FB_TASK_BENCH ? fb_document_get_snapshot (self->doc, last)->module
                                      : fb_document_get_current_snapshot (self->doc)->module;
  g_autoptr (GError) local = NULL;
  if (!fb_tasks_start (self->tasks, kind, a, b, use, steps, &local))
    {
      show_error (self, local->message);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  return TRUE;
}

static void
action_task (GtkWidget *widget, const char *name, GVariant *param)
{
  FbTaskKind kind = g_str_equal (name, "win.bench") ? FB_TASK_BENCH
                  : g_str_equal (name, "win.profile") ? FB_TASK_PROFILE : FB_TASK_RUN;
  fb_window_start_task (FB_WINDOW (widget), kind, NULL, 0, NULL);
}

static void
action_cancel (GtkWidget *widget, const char *name, GVariant *param)
{
  fb_tasks_cancel (FB_WINDOW (widget)->tasks);
}

static void
on_task_busy (FbTasks *tasks, GParamSpec *pspec, FbWindow *self)
{
  update_task_actions (self);
}

static void
on_task_fraction (FbTasks *tasks, GParamSpec *pspec, FbWindow *self)
{
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress_bar), fb_tasks_get_fraction (tasks));
}

static void
on_task_finished (FbTasks *tasks, FbWindow *self)
{
  const FbTaskResult *r = fb_tasks_get_result (tasks);
  const GError *error = fb_tasks_get_error (tasks);

  update_task_actions (self);
  if (r == NULL)
    {
      if (error && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          int total, done = fb_tasks_get_steps_done (tasks, &total);
          g_autofree char *msg = g_strdup_printf (_("The task was cancelled after %d of %d steps."), done, total);
          fb_bottom_pane_add_message (self->bottom_pane, FB_MESSAGE_INFO, msg);
        }
      else
        show_error (self, error ? error->message : _("The task failed."));
      return;
    }
  fb_bottom_pane_set_trace (self->bottom_pane, r->trace);
  fb_inspector_set_trace (self->inspector, r->trace);
  if (r->kind == FB_TASK_BENCH)
    {
      fb_bottom_pane_set_throughput (self->bottom_pane, r->backend, r->a_steps_per_s, r->b_steps_per_s);
      fb_bottom_pane_show (self->bottom_pane, "throughput");
      return;
    }
  g_autofree char *msg = g_strdup_printf (_("%s: %d steps on %s, %.2f steps/s, last loss %.5g"),
                                          fb_task_kind_label (r->kind), r->steps, r->backend,
                                          r->b_steps_per_s, r->last_loss);
  fb_bottom_pane_add_message (self->bottom_pane, FB_MESSAGE_INFO, msg);
  fb_bottom_pane_show (self->bottom_pane, "timeline");
}

/* ---------------------------------------------------------- screenshot */

gboolean
fb_window_save_screenshot (FbWindow *self, const char *path, GError **error)
{
  g_return_val_if_fail (FB_IS_WINDOW (self), FALSE);
  int w = gtk_widget_get_width (GTK_WIDGET (self));
  int h = gtk_widget_get_height (GTK_WIDGET (self));
  GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (self));
  if (w <= 0 || h <= 0 || renderer == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME, _("The window has not been drawn yet."));
      return FALSE;
    }
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (GTK_WIDGET (self));
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  gdk_paintable_snapshot (paintable, snapshot, w, h);
  g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
  if (node == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME, _("The window drew nothing."));
      return FALSE;
    }
  g_autoptr (GdkTexture) texture = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  if (!gdk_texture_save_to_png (texture, path))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_IO, _("Could not write %s."), path);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------ accessors */

FbDocument *
fb_window_get_document (FbWindow *self)
{
  g_return_val_if_fail (FB_IS_WINDOW (self), NULL);
  return self->doc;
}

FbTasks *
fb_window_get_tasks (FbWindow *self)
{
  g_return_val_if_fail (FB_IS_WINDOW (self), NULL);
  return self->tasks;
}

FbPassList *
fb_window_get_pass_list (FbWindow *self)
{
  g_return_val_if_fail (FB_IS_WINDOW (self), NULL);
  return self->pass_list;
}

FbGraphView *
fb_window_get_graph_view (FbWindow *self)
{
  g_return_val_if_fail (FB_IS_WINDOW (self), NULL);
  return self->graph_view;
}

FbInspector *
fb_window_get_inspector (FbWindow *self)
{
  g_return_val_if_fail (FB_IS_WINDOW (self), NULL);
  return self->inspector;
}

FbBottomPane *
fb_window_get_bottom_pane (FbWindow *self)
{
  g_return_val_if_fail (FB_IS_WINDOW (self), NULL);
  return self->bottom_pane;
}

char *
fb_window_dup_sample_path (void)
{
  const char *env = g_getenv ("FUSEBOX_SAMPLE");
  if (env && *env)
    return g_strdup (env);
  g_autofree char *installed = g_build_filename (FB_DATADIR, "models", "mlp.hlo", NULL);
  if (g_file_test (installed, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&installed);
  return g_build_filename (FB_SOURCE_ROOT, "data", "models", "mlp.hlo", NULL);
}

/* ----------------------------------------------------------- life cycle */

static void
on_mode_selected (GtkDropDown *dropdown, GParamSpec *pspec, FbWindow *self)
{
  FbGraphMode mode = gtk_drop_down_get_selected (dropdown);
  if (mode > FB_GRAPH_MODE_DIFF)
    return;
  fb_graph_view_set_mode (self->graph_view, mode);
  if (self->settings)
    g_settings_set_string (self->settings, "graph-mode", fb_graph_mode_to_string (mode));
}

static void
fb_window_dispose (GObject *object)
{
  FbWindow *self = FB_WINDOW (object);

  if (self->chooser)
    {
      gtk_native_dialog_destroy (self->chooser);
      g_clear_object (&self->chooser);
    }
  if (self->load_cancellable)
    {
      g_cancellable_cancel (self->load_cancellable);
      g_clear_object (&self->load_cancellable);
    }
  if (self->tasks)
    {
      fb_tasks_cancel (self->tasks);
      g_signal_handlers_disconnect_by_data (self->tasks, self);
      g_clear_object (&self->tasks);
    }
  if (self->doc)
    g_clear_signal_handler (&self->doc_changed_id, self->doc);
  g_clear_object (&self->doc);
  g_clear_object (&self->settings);
  gtk_widget_dispose_template (GTK_WIDGET (self), FB_TYPE_WINDOW);
  G_OBJECT_CLASS (fb_window_parent_class)->dispose (object);
}

static void
fb_window_class_init (FbWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = fb_window_dispose;

  fb_register_resource ();
  g_type_ensure (FB_TYPE_PASS_LIST);
  g_type_ensure (FB_TYPE_GRAPH_VIEW);
  g_type_ensure (FB_TYPE_INSPECTOR);
  g_type_ensure (FB_TYPE_BOTTOM_PANE);
  gtk_widget_class_set_template_from_resource (widget_class, "/org/fusebox/Fusebox/ui/fb-window.ui");
  gtk_widget_class_bind_template_child (widget_class, FbWindow, recent_button);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, progress_box);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, export_button);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, search_button);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, mode_dropdown);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, search_bar);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, search_entry);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, bottom_paned);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, left_paned);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, right_paned);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, pass_list);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, graph_view);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, inspector);
  gtk_widget_class_bind_template_child (widget_class, FbWindow, bottom_pane);

  gtk_widget_class_install_action (widget_class, "win.open", NULL, action_open);
  gtk_widget_class_install_action (widget_class, "win.open-recent", "s", action_open_recent);
  gtk_widget_class_install_action (widget_class, "win.export", NULL, action_export);
  gtk_widget_class_install_action (widget_class, "win.show-shortcuts", NULL, action_shortcuts);
  gtk_widget_class_install_action (widget_class, "win.find", NULL, action_find);
  gtk_widget_class_install_action (widget_class, "win.run", NULL, action_task);
  gtk_widget_class_install_action (widget_class, "win.bench", NULL, action_task);
  gtk_widget_class_install_action (widget_class, "win.profile", NULL, action_task);
  gtk_widget_class_install_action (widget_class, "win.cancel", NULL, action_cancel);

  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_o, GDK_CONTROL_MASK, "win.open", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_f, GDK_CONTROL_MASK, "win.find", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_question, GDK_CONTROL_MASK, "win.show-shortcuts", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_question, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
                                       "win.show-shortcuts", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_F5, 0, "win.run", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_F6, 0, "win.bench", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_F7, 0, "win.profile", NULL);
}

static void
fb_window_init (FbWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->tasks = fb_tasks_new ();
  g_signal_connect (self->tasks, "notify::busy", G_CALLBACK (on_task_busy), self);
  g_signal_connect (self->tasks, "notify::fraction", G_CALLBACK (on_task_fraction), self);
  g_signal_connect (self->tasks, "finished", G_CALLBACK (on_task_finished), self);
  fb_graph_view_set_tasks (self->graph_view, self->tasks);
  g_signal_connect (self->pass_list, "error", G_CALLBACK (on_pass_error), self);

  self->settings = settings_new ();
  gtk_window_set_default_size (GTK_WINDOW (self), setting_int (self, "window-width", 1280),
                               setting_int (self, "window-height", 800));
  if (self->settings && g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));
  g_autofree char *mode_name = setting_string (self, "graph-mode", "after");
  FbGraphMode mode = FB_GRAPH_MODE_AFTER;
  fb_graph_mode_from_string (mode_name, &mode);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (self->mode_dropdown), mode);
  fb_graph_view_set_mode (self->graph_view, mode);
  g_signal_connect (self->mode_dropdown, "notify::selected", G_CALLBACK (on_mode_selected), self);

  g_signal_connect (self->left_paned, "notify::max-position", G_CALLBACK (on_max_position), self);
  g_signal_connect (self->right_paned, "notify::max-position", G_CALLBACK (on_max_position), self);
  g_signal_connect (self->bottom_paned, "notify::max-position", G_CALLBACK (on_max_position), self);
  g_signal_connect (self, "close-request", G_CALLBACK (on_close_request), NULL);

  g_object_bind_property (self->search_button, "active", self->search_bar, "search-mode-enabled",
                          G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
  g_signal_connect_swapped (self->search_entry, "activate", G_CALLBACK (run_search), self);
  g_signal_connect_swapped (self->search_entry, "search-changed", G_CALLBACK (on_search_changed), self);
  g_signal_connect_swapped (self->search_entry, "next-match", G_CALLBACK (run_search), self);
  gtk_search_bar_connect_entry (GTK_SEARCH_BAR (self->search_bar), GTK_EDITABLE (self->search_entry));

  GtkDropTarget *drop = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect (drop, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop));

  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.export", FALSE);
  rebuild_recent_menu (self);
  update_task_actions (self);
}

FbWindow *
fb_window_new (GtkApplication *app)
{
  return g_object_new (FB_TYPE_WINDOW, "application", app, NULL);
}
