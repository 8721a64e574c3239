/* SPDX-License-Identifier: MIT
 *
 * The pass pipeline pane. Rows are built once per document and updated in
 * place when the pipeline reruns, so toggling a pass keeps the focus and the
 * scroll position where they were. Toggling a pass reruns the pipeline in
 * the background: a spinner turns in the header meanwhile and the rows
 * keep the old counts until the new snapshots land. Errors from a rerun
 * (a pass that fails on this module) are reported through the "error"
 * signal.
 */
#include "fb-pass-list.h"

#include <glib/gi18n.h>

struct _FbPassList
{
  GtkWidget   parent_instance;

  /* children */
  GtkWidget  *box;
  GtkWidget  *list;
  GtkWidget  *spinner;

  /* borrowed */
  FbDocument *doc;
  gulong      changed_id, current_id, busy_id, done_id;

  /* owned */
  GPtrArray  *rows;       /* of Row* */
  gboolean    updating;
  gboolean    loading;    /* the window is loading a model */
};

typedef struct {
  GtkWidget *row;
  GtkWidget *check;      /* NULL for the input row */
  GtkWidget *mark;
  GtkWidget *counts;
  int        index;
} Row;

enum { ERROR, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (FbPassList, fb_pass_list, GTK_TYPE_WIDGET)

static void
update_rows (FbPassList *self)
{
  self->updating = TRUE;
  for (guint i = 0; i < self->rows->len; i++)
    {
      Row *r = g_ptr_array_index (self->rows, i);
      FbSnapshot *s = fb_document_get_snapshot (self->doc, r->index);
      if (s == NULL)
        continue;
      g_autofree char *counts = g_strdup_printf (_("%d instructions · %d kernels"),
                                                 s->stats.instructions, s->stats.kernels);
      gtk_label_set_text (GTK_LABEL (r->counts), counts);
      gtk_widget_set_visible (r->mark, s->changed && s->enabled);
      /* The boxes follow the pipeline, which a rerun still in flight has
       * already changed; the counts follow the snapshots shown. */
      FbPipeline *p = fb_document_get_pipeline (self->doc);
      gboolean on = r->index > 0 && r->index <= p->n ? p->entries[r->index - 1].enabled : s->enabled;
      if (r->check)
        gtk_check_button_set_active (GTK_CHECK_BUTTON (r->check), on);
      gtk_widget_set_opacity (r->row, r->check && !on ? 0.55 : 1.0);
    }
  GtkListBoxRow *row = gtk_list_box_get_row_at_index (GTK_LIST_BOX (self->list),
                                                      fb_document_get_current (self->doc));
  if (row && gtk_list_box_get_selected_row (GTK_LIST_BOX (self->list)) != row)
    gtk_list_box_select_row (GTK_LIST_BOX (self->list), row);
  self->updating = FALSE;
}

static void
on_toggled (GtkCheckButton *check, FbPassList *self)
{
  if (self->updating || self->doc == NULL)
    return;
  int entry = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (check), "entry"));
  fb_document_set_pass_enabled_async (self->doc, entry, gtk_check_button_get_active (check));
}

static void
on_run_to (GtkButton *button, FbPassList *self)
{
  int entry = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (button), "entry"));
  if (self->doc)
    fb_document_run_to_async (self->doc, entry);
}

static void
update_spinner (FbPassList *self)
{
  if (self->spinner == NULL)
    return;
  gboolean busy = self->loading || (self->doc && fb_document_is_busy (self->doc));
  gtk_widget_set_visible (self->spinner, busy);
  gtk_spinner_set_spinning (GTK_SPINNER (self->spinner), busy);
  gtk_widget_set_tooltip_text (self->spinner, self->loading ? _("Loading the model…") : _("Running the passes…"));
}

static void
on_busy (FbDocument *doc, GParamSpec *pspec, FbPassList *self)
{
  update_spinner (self);
}

static void
on_rerun_done (FbDocument *doc, const char *message, FbPassList *self)
{
  if (message == NULL)
    return;
  g_signal_emit (self, signals[ERROR], 0, message);
  /* The document put the old flags back: show them. */
  update_rows (self);
}

static Row *
make_row (FbPassList *self, int index, const FbPass *pass)
{
  Row *r = g_new0 (Row, 1);
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *texts = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  GtkWidget *name = gtk_label_new (pass ? pass->name : _("input"));

  r->index = index;
  gtk_widget_set_margin_start (box, 6);
  gtk_widget_set_margin_end (box, 6);
  gtk_widget_set_margin_top (box, 3);
  gtk_widget_set_margin_bottom (box, 3);
  if (pass)
    {
      r->check = gtk_check_button_new ();
      g_object_set_data (G_OBJECT (r->check), "entry", GINT_TO_POINTER (index - 1));
      gtk_widget_set_tooltip_text (r->check, _("Run this pass"));
      g_signal_connect (r->check, "toggled", G_CALLBACK (on_toggled), self);
      gtk_box_append (GTK_BOX (box), r->check);
    }
  else
    {
      GtkWidget *spacer = gtk_image_new_from_icon_name ("document-open-symbolic");
      gtk_box_append (GTK_BOX (box), spacer);
    }
  gtk_label_set_xalign (GTK_LABEL (name), 0);
  gtk_widget_add_css_class (name, "heading");
  r->counts = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (r->counts), 0);
  gtk_widget_add_css_class (r->counts, "dim-label");
  gtk_widget_add_css_class (r->counts, "caption");
  gtk_box_append (GTK_BOX (texts), name);
  gtk_box_append (GTK_BOX (texts), r->counts);
  gtk_widget_set_hexpand (texts, TRUE);
  gtk_box_append (GTK_BOX (box), texts);

  r->mark = gtk_label_new ("●");
  gtk_widget_add_css_class (r->mark, "accent");
  gtk_widget_set_tooltip_text (r->mark, _("This pass changed the graph"));
  gtk_box_append (GTK_BOX (box), r->mark);

  if (pass)
    {
      GtkWidget *run_to = gtk_button_new_from_icon_name ("media-skip-forward-symbolic");
      gtk_widget_add_css_class (run_to, "flat");
      gtk_widget_set_tooltip_text (run_to, _("Run to here: enable this pass and the ones before it, disable the rest"));
      g_object_set_data (G_OBJECT (run_to), "entry", GINT_TO_POINTER (index - 1));
      g_signal_connect (run_to, "clicked", G_CALLBACK (on_run_to), self);
      gtk_box_append (GTK_BOX (box), run_to);
    }

  r->row = gtk_list_box_row_new ();
  gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (r->row), box);
  if (pass)
    gtk_widget_set_tooltip_text (r->row, pass->summary);
  else
    gtk_widget_set_tooltip_text (r->row, _("The module as loaded"));
  return r;
}

static void
rebuild (FbPassList *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (self->list)))
    gtk_list_box_remove (GTK_LIST_BOX (self->list), child);
  g_ptr_array_set_size (self->rows, 0);
  if (self->doc == NULL)
    return;
  int n = fb_document_get_n_snapshots (self->doc);
  for (int i = 0; i < n; i++)
    {
      Row *r = make_row (self, i, fb_document_get_snapshot (self->doc, i)->pass);
      g_ptr_array_add (self->rows, r);
      gtk_list_box_append (GTK_LIST_BOX (self->list), r->row);
    }
  update_rows (self);
}

static void
on_changed (FbDocument *doc, FbPassList *self)
{
  update_rows (self);
}

static void
on_current (FbDocument *doc, GParamSpec *pspec, FbPassList *self)
{
  update_rows (self);
}

static void
on_row_selected (GtkListBox *list, GtkListBoxRow *row, FbPassList *self)
{
  if (self->updating || row == NULL || self->doc == NULL)
    return;
  fb_document_set_current (self->doc, gtk_list_box_row_get_index (row));
}

void
fb_pass_list_set_document (FbPassList *self, FbDocument *doc)
{
  g_return_if_fail (FB_IS_PASS_LIST (self));
  if (self->doc)
    {
      g_clear_signal_handler (&self->changed_id, self->doc);
      g_clear_signal_handler (&self->current_id, self->doc);
      g_clear_signal_handler (&self->busy_id, self->doc);
      g_clear_signal_handler (&self->done_id, self->doc);
      g_clear_object (&self->doc);
    }
  if (doc)
    {
      self->doc = g_object_ref (doc);
      self->changed_id = g_signal_connect (doc, "changed", G_CALLBACK (on_changed), self);
      self->current_id = g_signal_connect (doc, "notify::current", G_CALLBACK (on_current), self);
      self->busy_id = g_signal_connect (doc, "notify::busy", G_CALLBACK (on_busy), self);
      self->done_id = g_signal_connect (doc, "rerun-done", G_CALLBACK (on_rerun_done), self);
    }
  update_spinner (self);
  rebuild (self);
}

void
fb_pass_list_set_loading (FbPassList *self, gboolean loading)
{
  g_return_if_fail (FB_IS_PASS_LIST (self));
  self->loading = loading;
  update_spinner (self);
}

gboolean
fb_pass_list_is_busy (FbPassList *self)
{
  g_return_val_if_fail (FB_IS_PASS_LIST (self), FALSE);
  return self->spinner != NULL && gtk_widget_get_visible (self->spinner);
}

void
fb_pass_list_step (FbPassList *self, int delta)
{
  g_return_if_fail (FB_IS_PASS_LIST (self));
  if (self->doc)
    fb_document_set_current (self->doc, fb_document_get_current (self->doc) + delta);
}

GtkCheckButton *
fb_pass_list_get_check (FbPassList *self, int entry)
{
  g_return_val_if_fail (FB_IS_PASS_LIST (self), NULL);
  if (entry < 0 || entry + 1 >= (int) self->rows->len)
    return NULL;
  Row *r = g_ptr_array_index (self->rows, entry + 1);
  return GTK_CHECK_BUTTON (r->check);
}

const char *
fb_pass_list_get_counts (FbPassList *self, int index)
{
  g_return_val_if_fail (FB_IS_PASS_LIST (self), NULL);
  if (index < 0 || index >= (int) self->rows->len)
    return NULL;
  return gtk_label_get_text (GTK_LABEL (((Row *) g_ptr_array_index (self->rows, index))->counts));
}

static void
action_step (GtkWidget *widget, const char *name, GVariant *param)
{
  fb_pass_list_step (FB_PASS_LIST (widget), g_str_equal (name, "passes.next") ? 1 : -1);
}

static void
fb_pass_list_dispose (GObject *object)
{
  FbPassList *self = FB_PASS_LIST (object);

  fb_pass_list_set_document (self, NULL);
  self->spinner = NULL;
  g_clear_pointer (&self->box, gtk_widget_unparent);
  G_OBJECT_CLASS (fb_pass_list_parent_class)->dispose (object);
}

static void
fb_pass_list_finalize (GObject *object)
{
  FbPassList *self = FB_PASS_LIST (object);

  g_clear_pointer (&self->rows, g_ptr_array_unref);
  G_OBJECT_CLASS (fb_pass_list_parent_class)->finalize (object);
}

static void
fb_pass_list_class_init (FbPassListClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = fb_pass_list_dispose;
  object_class->finalize = fb_pass_list_finalize;

  /* A pass failed when the pipeline ran again; the argument is the message. */
  signals[ERROR] = g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                 0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);

  gtk_widget_class_install_action (widget_class, "passes.previous", NULL, action_step);
  gtk_widget_class_install_action (widget_class, "passes.next", NULL, action_step);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Up, GDK_ALT_MASK, "passes.previous", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Down, GDK_ALT_MASK, "passes.next", NULL);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
fb_pass_list_init (FbPassList *self)
{
  self->rows = g_ptr_array_new_with_free_func (g_free);
  self->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_widget_set_parent (self->box, GTK_WIDGET (self));

  GtkWidget *bar = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_margin_start (bar, 6);
  gtk_widget_set_margin_end (bar, 6);
  gtk_widget_set_margin_top (bar, 6);
  gtk_widget_set_margin_bottom (bar, 6);
  GtkWidget *title = gtk_label_new (_("Passes"));
  gtk_widget_add_css_class (title, "heading");
  gtk_label_set_xalign (GTK_LABEL (title), 0);
  gtk_widget_set_hexpand (title, TRUE);
  gtk_box_append (GTK_BOX (bar), title);
  self->spinner = gtk_spinner_new ();
  gtk_widget_set_visible (self->spinner, FALSE);
  gtk_box_append (GTK_BOX (bar), self->spinner);
  GtkWidget *prev = gtk_button_new_from_icon_name ("go-up-symbolic");
  gtk_widget_set_tooltip_text (prev, _("Previous pass (Alt+Up)"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (prev), "passes.previous");
  GtkWidget *next = gtk_button_new_from_icon_name ("go-down-symbolic");
  gtk_widget_set_tooltip_text (next, _("Next pass (Alt+Down)"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (next), "passes.next");
  gtk_box_append (GTK_BOX (bar), prev);
  gtk_box_append (GTK_BOX (bar), next);
  gtk_box_append (GTK_BOX (self->box), bar);

  self->list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (self->list), GTK_SELECTION_BROWSE);
  gtk_widget_add_css_class (self->list, "navigation-sidebar");
  g_signal_connect (self->list, "row-selected", G_CALLBACK (on_row_selected), self);
  GtkWidget *scroller = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroller), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroller), self->list);
  gtk_widget_set_vexpand (scroller, TRUE);
  gtk_box_append (GTK_BOX (self->box), scroller);
}

GtkWidget *
fb_pass_list_new (void)
{
  return g_object_new (FB_TYPE_PASS_LIST, NULL);
}
