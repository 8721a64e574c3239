/* SPDX-License-Identifier: MIT
 *
 * The bottom pane. The timeline is an FbTimelineView; memory and
 * throughput are drawing areas that call the viz painters with the data
 * the pane holds;
 * the decision log and the messages are list boxes. The buffer plan of the
 * memory tab is computed when the tab is drawn and kept for the snapshot it
 * belongs to.
 */
#include "fb-bottom-pane.h"

#include <glib/gi18n.h>
#include <string.h>

#include "fb-buffers.h"
#include "fb-paint.h"

struct _FbBottomPane
{
  GtkWidget     parent_instance;

  /* children */
  GtkWidget    *box;
  GtkWidget    *stack;
  GtkWidget    *timeline;
  GtkWidget    *memory;
  GtkWidget    *memory_label;
  GtkWidget    *throughput;
  GtkWidget    *throughput_label;
  GtkWidget    *decision_entry;
  GtkWidget    *decision_list;
  GtkWidget    *message_list;

  /* borrowed */
  FbDocument   *doc;
  gulong        changed_id, current_id;

  /* owned */
  FbTrace      *trace;
  FbBufferPlan *plan;
  int           plan_index;     /* snapshot of @plan; -1: none */
  char         *plan_error;
  char         *backend;
  double        a, b;
  char         *filter;
  GPtrArray    *messages;       /* of char* */
};

G_DEFINE_FINAL_TYPE (FbBottomPane, fb_bottom_pane, GTK_TYPE_WIDGET)

static void
draw_empty_message (cairo_t *cr, int width, int height, const char *text)
{
  cairo_set_source_rgba (cr, 0.5, 0.5, 0.5, 1);
  cairo_select_font_face (cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size (cr, 13);
  cairo_text_extents_t ext;
  cairo_text_extents (cr, text, &ext);
  cairo_move_to (cr, (width - ext.width) / 2, height / 2.0);
  cairo_show_text (cr, text);
}

static void
ensure_plan (FbBottomPane *self)
{
  int index = self->doc ? fb_document_get_current (self->doc) : -1;
  if (index == self->plan_index)
    return;
  g_clear_pointer (&self->plan, fb_buffer_plan_free);
  g_clear_pointer (&self->plan_error, g_free);
  self->plan_index = index;
  FbSnapshot *snap = self->doc ? fb_document_get_current_snapshot (self->doc) : NULL;
  if (snap == NULL || snap->module == NULL)
    return;
  g_autoptr (GError) error = NULL;
  self->plan = fb_buffer_plan_new (snap->module, &error);
  if (self->plan == NULL)
    self->plan_error = g_strdup (error ? error->message : "?");
}

static void
update_memory_label (FbBottomPane *self)
{
  ensure_plan (self);
  if (self->plan)
    {
      g_autofree char *peak = g_format_size_full (self->plan->peak_bytes, G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *arena = g_format_size_full (self->plan->arena_bytes, G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *text = g_strdup_printf (_("Peak %s at position %d of %d; temporaries arena %s"), peak,
                                               self->plan->peak_position, self->plan->n_positions, arena);
      gtk_label_set_text (GTK_LABEL (self->memory_label), text);
    }
  else
    gtk_label_set_text (GTK_LABEL (self->memory_label), self->plan_error ? self->plan_error : "");
}

static void
draw_memory (GtkDrawingArea *area, cairo_t *cr, int width, int height, gpointer user_data)
{
  FbBottomPane *self = user_data;
  ensure_plan (self);
  if (self->plan == NULL)
    {
      draw_empty_message (cr, width, height, _("No buffer plan for this snapshot."));
      return;
    }
  fb_paint_memory (cr, self->plan, NULL, width, height);
}

static void
draw_throughput (GtkDrawingArea *area, cairo_t *cr, int width, int height, gpointer user_data)
{
  FbBottomPane *self = user_data;
  if (self->a <= 0 && self->b <= 0)
    {
      draw_empty_message (cr, width, height, _("Bench the model to compare pass sets A and B."));
      return;
    }
  g_autofree char *label = self->doc ? fb_document_dup_basename (self->doc) : g_strdup ("");
  FbThroughputItem item = { label, self->a, self->b };
  fb_paint_throughput (cr, &item, 1, _("A: no passes"), _("B: pipeline"), _("steps/s"), width, height);
}

static GtkWidget *
picture_page (GtkDrawingAreaDrawFunc draw, FbBottomPane *self, GtkWidget **area, GtkWidget **label)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  *area = gtk_drawing_area_new ();
  gtk_widget_set_vexpand (*area, TRUE);
  gtk_widget_set_hexpand (*area, TRUE);
  gtk_drawing_area_set_draw_func (GTK_DRAWING_AREA (*area), draw, self, NULL);
  if (label)
    {
      *label = gtk_label_new (NULL);
      gtk_label_set_xalign (GTK_LABEL (*label), 0);
      gtk_label_set_selectable (GTK_LABEL (*label), TRUE);
      gtk_widget_set_margin_start (*label, 8);
      gtk_box_append (GTK_BOX (box), *label);
    }
  gtk_box_append (GTK_BOX (box), *area);
  return box;
}

/* ------------------------------------------------------------ decisions */

static gboolean
decision_visible (GtkListBoxRow *row, gpointer user_data)
{
  FbBottomPane *self = user_data;
  if (self->filter == NULL || *self->filter == '\0')
    return TRUE;
  const char *text = g_object_get_data (G_OBJECT (row), "text");
  return text && strstr (text, self->filter) != NULL;
}

static void
fill_decisions (FbBottomPane *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (self->decision_list)))
    gtk_list_box_remove (GTK_LIST_BOX (self->decision_list), child);
  if (self->doc == NULL)
    return;
  int n = fb_document_get_n_snapshots (self->doc);
  for (int i = 1; i < n; i++)
    {
      FbSnapshot *s = fb_document_get_snapshot (self->doc, i);
      for (guint k = 0; s->decisions && k < s->decisions->len; k++)
        {
          const FbDecision *d = g_ptr_array_index (s->decisions, k);
          g_autofree char *line = g_strdup_printf ("%s · %s · %s: %s", d->pass, fb_decision_kind_name (d->kind),
                                                   d->rule ? d->rule : "", d->message);
          GtkWidget *label = gtk_label_new (line);
          gtk_label_set_xalign (GTK_LABEL (label), 0);
          gtk_label_set_wrap (GTK_LABEL (label), TRUE);
          gtk_label_set_selectable (GTK_LABEL (label), TRUE);
          GtkWidget *row = gtk_list_box_row_new ();
          gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), label);
          g_object_set_data_full (G_OBJECT (row), "text", g_utf8_casefold (line, -1), g_free);
          gtk_list_box_append (GTK_LIST_BOX (self->decision_list), row);
        }
    }
}

void
fb_bottom_pane_set_decision_filter (FbBottomPane *self, const char *text)
{
  g_return_if_fail (FB_IS_BOTTOM_PANE (self));
  g_free (self->filter);
  self->filter = text ? g_utf8_casefold (text, -1) : NULL;
  gtk_list_box_invalidate_filter (GTK_LIST_BOX (self->decision_list));
}

static void
on_filter_changed (GtkEditable *entry, FbBottomPane *self)
{
  fb_bottom_pane_set_decision_filter (self, gtk_editable_get_text (entry));
}

int
fb_bottom_pane_get_n_decisions (FbBottomPane *self)
{
  g_return_val_if_fail (FB_IS_BOTTOM_PANE (self), 0);
  int n = 0;
  for (GtkWidget *c = gtk_widget_get_first_child (self->decision_list); c; c = gtk_widget_get_next_sibling (c))
    if (GTK_IS_LIST_BOX_ROW (c) && decision_visible (GTK_LIST_BOX_ROW (c), self))
      n++;
  return n;
}

/* ------------------------------------------------------------- document */

static void
on_changed (FbDocument *doc, FbBottomPane *self)
{
  self->plan_index = -1;
  fill_decisions (self);
  update_memory_label (self);
  gtk_widget_queue_draw (self->memory);
}

static void
on_current (FbDocument *doc, GParamSpec *pspec, FbBottomPane *self)
{
  update_memory_label (self);
  gtk_widget_queue_draw (self->memory);
}

void
fb_bottom_pane_set_document (FbBottomPane *self, FbDocument *doc)
{
  g_return_if_fail (FB_IS_BOTTOM_PANE (self));
  if (self->doc)
    {
      g_clear_signal_handler (&self->changed_id, self->doc);
      g_clear_signal_handler (&self->current_id, self->doc);
      g_clear_object (&self->doc);
    }
  if (doc)
    {
      self->doc = g_object_ref (doc);
      self->changed_id = g_signal_connect (doc, "changed", G_CALLBACK (on_changed), self);
      self->current_id = g_signal_connect (doc, "notify::current", G_CALLBACK (on_current), self);
    }
  fb_timeline_view_set_document (FB_TIMELINE_VIEW (self->timeline), doc);
  on_changed (doc, self);
  gtk_widget_queue_draw (self->throughput);
}

FbTimelineView *
fb_bottom_pane_get_timeline (FbBottomPane *self)
{
  g_return_val_if_fail (FB_IS_BOTTOM_PANE (self), NULL);
  return FB_TIMELINE_VIEW (self->timeline);
}

void
fb_bottom_pane_set_trace (FbBottomPane *self, FbTrace *trace)
{
  g_return_if_fail (FB_IS_BOTTOM_PANE (self));
  g_clear_pointer (&self->trace, fb_trace_unref);
  self->trace = trace ? fb_trace_ref (trace) : NULL;
  fb_timeline_view_set_trace (FB_TIMELINE_VIEW (self->timeline), trace);
}

void
fb_bottom_pane_set_throughput (FbBottomPane *self, const char *backend, double a, double b)
{
  g_return_if_fail (FB_IS_BOTTOM_PANE (self));
  self->a = a;
  self->b = b;
  g_free (self->backend);
  self->backend = g_strdup (backend);
  g_autofree char *text = NULL;
  if (a > 0 && b > 0)
    text = g_strdup_printf (_("%s: A (no passes) %.2f steps/s, B (pipeline) %.2f steps/s, B/A = %.2f×"),
                            backend, a, b, b / a);
  else if (b > 0)
    text = g_strdup_printf (_("%s: %.2f steps/s"), backend, b);
  gtk_label_set_text (GTK_LABEL (self->throughput_label), text ? text : "");
  gtk_widget_queue_draw (self->throughput);
}

const char *
fb_bottom_pane_get_throughput_text (FbBottomPane *self)
{
  g_return_val_if_fail (FB_IS_BOTTOM_PANE (self), NULL);
  return gtk_label_get_text (GTK_LABEL (self->throughput_label));
}

/* ------------------------------------------------------------- messages */

void
fb_bottom_pane_add_message (FbBottomPane *self, FbMessageKind kind, const char *text)
{
  g_return_if_fail (FB_IS_BOTTOM_PANE (self));
  static const char *const icons[] = { "dialog-information-symbolic", "dialog-warning-symbolic",
                                       "dialog-error-symbolic" };
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *icon = gtk_image_new_from_icon_name (icons[kind]);
  gtk_widget_set_valign (icon, GTK_ALIGN_START);
  GtkWidget *label = gtk_label_new (text);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  if (strchr (text, '\n'))
    gtk_widget_add_css_class (label, "monospace");
  if (kind == FB_MESSAGE_ERROR)
    gtk_widget_add_css_class (label, "error");
  else if (kind == FB_MESSAGE_WARNING)
    gtk_widget_add_css_class (label, "warning");
  gtk_box_append (GTK_BOX (box), icon);
  gtk_box_append (GTK_BOX (box), label);
  gtk_list_box_append (GTK_LIST_BOX (self->message_list), box);
  g_ptr_array_add (self->messages, g_strdup (text));
}

int
fb_bottom_pane_get_n_messages (FbBottomPane *self)
{
  g_return_val_if_fail (FB_IS_BOTTOM_PANE (self), 0);
  return self->messages->len;
}

const char *
fb_bottom_pane_get_message (FbBottomPane *self, int index)
{
  g_return_val_if_fail (FB_IS_BOTTOM_PANE (self), NULL);
  if (index < 0 || index >= (int) self->messages->len)
    return NULL;
  return g_ptr_array_index (self->messages, index);
}

gboolean
fb_bottom_pane_show (FbBottomPane *self, const char *tab)
{
  g_return_val_if_fail (FB_IS_BOTTOM_PANE (self), FALSE);
  if (tab == NULL || gtk_stack_get_child_by_name (GTK_STACK (self->stack), tab) == NULL)
    return FALSE;
  gtk_stack_set_visible_child_name (GTK_STACK (self->stack), tab);
  return TRUE;
}

const char *
fb_bottom_pane_get_visible_tab (FbBottomPane *self)
{
  g_return_val_if_fail (FB_IS_BOTTOM_PANE (self), NULL);
  return gtk_stack_get_visible_child_name (GTK_STACK (self->stack));
}

/* ----------------------------------------------------------- life cycle */

static void
fb_bottom_pane_dispose (GObject *object)
{
  FbBottomPane *self = FB_BOTTOM_PANE (object);

  if (self->doc)
    {
      g_clear_signal_handler (&self->changed_id, self->doc);
      g_clear_signal_handler (&self->current_id, self->doc);
      g_clear_object (&self->doc);
    }
  g_clear_pointer (&self->box, gtk_widget_unparent);
  G_OBJECT_CLASS (fb_bottom_pane_parent_class)->dispose (object);
}

static void
fb_bottom_pane_finalize (GObject *object)
{
  FbBottomPane *self = FB_BOTTOM_PANE (object);

  g_clear_pointer (&self->trace, fb_trace_unref);
  g_clear_pointer (&self->plan, fb_buffer_plan_free);
  g_clear_pointer (&self->plan_error, g_free);
  g_clear_pointer (&self->backend, g_free);
  g_clear_pointer (&self->filter, g_free);
  g_clear_pointer (&self->messages, g_ptr_array_unref);
  G_OBJECT_CLASS (fb_bottom_pane_parent_class)->finalize (object);
}

static void
fb_bottom_pane_class_init (FbBottomPaneClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = fb_bottom_pane_dispose;
  object_class->finalize = fb_bottom_pane_finalize;
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
}

static GtkWidget *
scrolled (GtkWidget *child)
{
  GtkWidget *scroller = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroller), child);
  gtk_widget_set_vexpand (scroller, TRUE);
  return scroller;
}

static void
fb_bottom_pane_init (FbBottomPane *self)
{
  self->plan_index = -1;
  self->messages = g_ptr_array_new_with_free_func (g_free);
  self->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_widget_set_parent (self->box, GTK_WIDGET (self));

  self->stack = gtk_stack_new ();
  GtkWidget *switcher = gtk_stack_switcher_new ();
  gtk_stack_switcher_set_stack (GTK_STACK_SWITCHER (switcher), GTK_STACK (self->stack));
  gtk_widget_set_halign (switcher, GTK_ALIGN_START);
  gtk_widget_set_margin_start (switcher, 6);
  gtk_widget_set_margin_top (switcher, 4);
  gtk_widget_set_margin_bottom (switcher, 4);
  gtk_box_append (GTK_BOX (self->box), switcher);
  gtk_widget_set_vexpand (self->stack, TRUE);
  gtk_box_append (GTK_BOX (self->box), self->stack);

  self->timeline = fb_timeline_view_new ();
  gtk_stack_add_titled (GTK_STACK (self->stack), self->timeline, "timeline", _("Timeline"));
  gtk_stack_add_titled (GTK_STACK (self->stack),
                        picture_page (draw_memory, self, &self->memory, &self->memory_label),
                        "memory", _("Memory"));
  gtk_stack_add_titled (GTK_STACK (self->stack),
                        picture_page (draw_throughput, self, &self->throughput, &self->throughput_label),
                        "throughput", _("Throughput"));

  GtkWidget *dbox = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  self->decision_entry = gtk_search_entry_new ();
  g_object_set (self->decision_entry, "placeholder-text", _("Filter decisions by pass, rule or text"), NULL);
  g_signal_connect (self->decision_entry, "search-changed", G_CALLBACK (on_filter_changed), self);
  self->decision_list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (self->decision_list), GTK_SELECTION_NONE);
  gtk_list_box_set_filter_func (GTK_LIST_BOX (self->decision_list), decision_visible, self, NULL);
  gtk_box_append (GTK_BOX (dbox), self->decision_entry);
  gtk_box_append (GTK_BOX (dbox), scrolled (self->decision_list));
  gtk_stack_add_titled (GTK_STACK (self->stack), dbox, "decisions", _("Decisions"));

  self->message_list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (self->message_list), GTK_SELECTION_NONE);
  gtk_stack_add_titled (GTK_STACK (self->stack), scrolled (self->message_list), "messages", _("Messages"));
}

GtkWidget *
fb_bottom_pane_new (void)
{
  return g_object_new (FB_TYPE_BOTTOM_PANE, NULL);
}
