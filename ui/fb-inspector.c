/* SPDX-License-Identifier: MIT
 *
 * The inspector pane: a grid of facts about one instruction, its HLO text
 * and the decisions that named it. Everything is recomputed from the
 * document when the selection or the snapshot changes; nothing here is
 * expensive enough to cache for one instruction.
 */
#include "fb-inspector.h"

#include <glib/gi18n.h>

#include "fb-cost.h"
#include "fb-hlo.h"

struct _FbInspector
{
  GtkWidget   parent_instance;

  /* children */
  GtkWidget  *scroller;
  GtkWidget  *title;
  GtkWidget  *grid;
  GtkWidget  *hlo;          /* GtkTextView */
  GtkWidget  *code;
  GtkWidget  *code_expander;
  FbCodeView *code_view;
  GtkWidget  *decisions;

  /* borrowed */
  FbDocument *doc;
  gulong      changed_id, current_id, selected_id;

  /* owned */
  FbTrace    *trace;
  char       *shape_text;
  GPtrArray  *values;       /* value labels of the grid, in row order */
};

G_DEFINE_FINAL_TYPE (FbInspector, fb_inspector, GTK_TYPE_WIDGET)

enum { ROW_OPCODE, ROW_SHAPE, ROW_LAYOUT, ROW_OPERANDS, ROW_USERS, ROW_SOURCE, ROW_FLOPS, ROW_BYTES,
       ROW_MEASURED, N_ROWS };

static void
set_row (FbInspector *self, int row, const char *text)
{
  gtk_label_set_text (GTK_LABEL (g_ptr_array_index (self->values, row)), text ? text : "—");
}

static char *
format_count (double v)
{
  if (v >= 1e12) return g_strdup_printf ("%.2f T", v / 1e12);
  if (v >= 1e9) return g_strdup_printf ("%.2f G", v / 1e9);
  if (v >= 1e6) return g_strdup_printf ("%.2f M", v / 1e6);
  if (v >= 1e3) return g_strdup_printf ("%.2f k", v / 1e3);
  return g_strdup_printf ("%.0f", v);
}

static char *
instr_list (FbInstr **instrs, int n)
{
  if (n == 0)
    return NULL;
  g_autoptr (GString) s = g_string_new (NULL);
  for (int i = 0; i < n && i < 12; i++)
    g_string_append_printf (s, "%s%%%s", i ? ", " : "", instrs[i]->name);
  if (n > 12)
    g_string_append_printf (s, _(" and %d more"), n - 12);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static gboolean
involves (const FbDecision *d, const FbInstr *instr)
{
  for (int i = 0; i < d->n_ids; i++)
    {
      if (d->ids[i] == instr->id)
        return TRUE;
      for (int k = 0; k < instr->n_prov; k++)
        if (d->ids[i] == instr->prov[k])
          return TRUE;
    }
  return FALSE;
}

static double
measured_ns (FbInspector *self, const FbInstr *instr, int *count)
{
  double total = 0;
  *count = 0;
  if (self->trace == NULL)
    return 0;
  for (guint t = 0; t < fb_trace_get_n_tracks (self->trace); t++)
    {
      const FbTrack *track = fb_trace_get_track (self->trace, t);
      for (guint s = 0; s < track->n_spans; s++)
        {
          const FbSpan *span = &track->spans[s];
          if (span->kind != FB_SPAN_KERNEL)
            continue;
          gboolean hit = FALSE;
          for (guint i = 0; i < span->n_instr && !hit; i++)
            for (int k = 0; k < instr->n_prov && !hit; k++)
              hit = span->instr_ids[i] == instr->prov[k] || span->instr_ids[i] == instr->id;
          if (hit)
            {
              total += fb_span_duration_ns (span);
              (*count)++;
            }
        }
    }
  return total;
}

static void
update (FbInspector *self)
{
  FbSnapshot *snap = self->doc ? fb_document_get_current_snapshot (self->doc) : NULL;
  FbInstr *instr = snap ? fb_document_find_instr (snap->module, fb_document_get_selected (self->doc)) : NULL;
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->hlo));

  g_clear_pointer (&self->shape_text, g_free);
  if (instr == NULL)
    {
      gtk_label_set_text (GTK_LABEL (self->title), "");
      gtk_widget_set_visible (self->grid, FALSE);
      gtk_text_buffer_set_text (buffer, "", -1);
      gtk_label_set_text (GTK_LABEL (self->code),
                          self->doc ? _("Select a node in the graph to inspect it.") : "");
      gtk_label_set_text (GTK_LABEL (self->decisions), "");
      return;
    }

  gtk_widget_set_visible (self->grid, TRUE);
  gtk_label_set_text (GTK_LABEL (self->title), instr->name);
  set_row (self, ROW_OPCODE, fb_opcode_name (instr->opcode));
  self->shape_text = fb_shape_to_string (instr->shape);
  {
    g_autoptr (GString) dims = g_string_new (NULL);
    fb_shape_print (dims, instr->shape, FALSE);
    set_row (self, ROW_SHAPE, dims->str);
  }
  {
    g_autoptr (GString) lay = g_string_new (NULL);
    if (instr->shape->layout)
      {
        g_string_append_c (lay, '{');
        for (int i = 0; i < instr->shape->layout->n; i++)
          g_string_append_printf (lay, "%s%" G_GINT64_FORMAT, i ? "," : "", instr->shape->layout->minor_to_major[i]);
        g_string_append_c (lay, '}');
      }
    set_row (self, ROW_LAYOUT, lay->len ? lay->str : NULL);
  }
  g_autofree char *ops = instr_list (instr->operands, instr->n_operands);
  g_autofree char *users = instr_list (instr->users, instr->n_users);
  set_row (self, ROW_OPERANDS, ops);
  set_row (self, ROW_USERS, users);

  g_autofree char *file = fb_instr_dup_metadata (instr, "source_file");
  g_autofree char *line = fb_instr_dup_metadata (instr, "source_line");
  g_autofree char *op_name = fb_instr_dup_metadata (instr, "op_name");
  g_autofree char *source = NULL;
  if (file)
    source = g_strdup_printf ("%s:%s%s%s", file, line ? line : "?", op_name ? "\n" : "", op_name ? op_name : "");
  else if (op_name)
    source = g_strdup (op_name);
  set_row (self, ROW_SOURCE, source);

  FbCost cost = fb_cost_instr (instr);
  g_autofree char *flops = format_count (cost.flops);
  g_autofree char *bytes = format_count (cost.bytes);
  set_row (self, ROW_FLOPS, flops);
  set_row (self, ROW_BYTES, bytes);

  int count;
  double ns = measured_ns (self, instr, &count);
  g_autofree char *measured = count ? g_strdup_printf (_("%.3f ms in %d spans"), ns / 1e6, count) : NULL;
  set_row (self, ROW_MEASURED, measured ? measured : _("not profiled"));

  g_autoptr (GString) hlo = g_string_new (NULL);
  fb_hlo_print_instr (hlo, instr, FB_PRINT_LONG);
  FbComputation *called[8];
  int n_called = fb_instr_called (instr, called, G_N_ELEMENTS (called));
  for (int c = 0; c < n_called && c < (int) G_N_ELEMENTS (called); c++)
    {
      g_string_append_printf (hlo, "\n\n%s {\n", called[c]->name);
      for (FbInstr *in = called[c]->first; in; in = in->next)
        {
          g_string_append (hlo, in == called[c]->root ? "  ROOT " : "  ");
          fb_hlo_print_instr (hlo, in, FB_PRINT_SHORT);
          g_string_append_c (hlo, '\n');
        }
      g_string_append (hlo, "}");
    }
  gtk_text_buffer_set_text (buffer, hlo->str, -1);

  gtk_label_set_text (GTK_LABEL (self->code), "");

  g_autoptr (GString) why = g_string_new (NULL);
  int n_snap = fb_document_get_n_snapshots (self->doc);
  for (int i = 1; i < n_snap; i++)
    {
      FbSnapshot *s = fb_document_get_snapshot (self->doc, i);
      for (guint k = 0; s->decisions && k < s->decisions->len; k++)
        {
          const FbDecision *d = g_ptr_array_index (s->decisions, k);
          if (involves (d, instr))
            g_string_append_printf (why, "%s%s [%s]: %s", why->len ? "\n" : "", d->pass,
                                    fb_decision_kind_name (d->kind), d->message);
        }
    }
  gtk_label_set_text (GTK_LABEL (self->decisions), why->len ? why->str : _("No pass made a decision about it."));
}

static void
on_doc_event (FbInspector *self)
{
  update (self);
}

void
fb_inspector_set_document (FbInspector *self, FbDocument *doc)
{
  g_return_if_fail (FB_IS_INSPECTOR (self));
  if (self->doc)
    {
      g_clear_signal_handler (&self->changed_id, self->doc);
      g_clear_signal_handler (&self->current_id, self->doc);
      g_clear_signal_handler (&self->selected_id, self->doc);
      g_clear_object (&self->doc);
    }
  if (doc)
    {
      self->doc = g_object_ref (doc);
      self->changed_id = g_signal_connect_swapped (doc, "changed", G_CALLBACK (on_doc_event), self);
      self->current_id = g_signal_connect_swapped (doc, "notify::current", G_CALLBACK (on_doc_event), self);
      self->selected_id = g_signal_connect_swapped (doc, "notify::selected", G_CALLBACK (on_doc_event), self);
    }
  if (self->scroller)   /* not yet disposed */
    fb_code_view_set_document (self->code_view, doc);
  update (self);
}

void
fb_inspector_set_trace (FbInspector *self, FbTrace *trace)
{
  g_return_if_fail (FB_IS_INSPECTOR (self));
  g_clear_pointer (&self->trace, fb_trace_unref);
  self->trace = trace ? fb_trace_ref (trace) : NULL;
  update (self);
}

FbCodeView *
fb_inspector_get_code_view (FbInspector *self)
{
  g_return_val_if_fail (FB_IS_INSPECTOR (self), NULL);
  return self->code_view;
}

void
fb_inspector_show_code (FbInspector *self, FbCodeKind kind)
{
  g_return_if_fail (FB_IS_INSPECTOR (self));
  fb_code_view_set_kind (self->code_view, kind);
  gtk_expander_set_expanded (GTK_EXPANDER (self->code_expander), TRUE);
}

static void
on_code_expanded (GtkExpander *expander, GParamSpec *pspec, FbInspector *self)
{
  fb_code_view_set_active (self->code_view, gtk_expander_get_expanded (expander));
}

const char *
fb_inspector_get_name (FbInspector *self)
{
  g_return_val_if_fail (FB_IS_INSPECTOR (self), NULL);
  return gtk_label_get_text (GTK_LABEL (self->title));
}

const char *
fb_inspector_get_shape (FbInspector *self)
{
  g_return_val_if_fail (FB_IS_INSPECTOR (self), NULL);
  return self->shape_text ? self->shape_text : "";
}

static void
fb_inspector_dispose (GObject *object)
{
  FbInspector *self = FB_INSPECTOR (object);

  fb_inspector_set_document (self, NULL);
  g_clear_pointer (&self->scroller, gtk_widget_unparent);
  G_OBJECT_CLASS (fb_inspector_parent_class)->dispose (object);
}

static void
fb_inspector_finalize (GObject *object)
{
  FbInspector *self = FB_INSPECTOR (object);

  g_clear_pointer (&self->trace, fb_trace_unref);
  g_clear_pointer (&self->shape_text, g_free);
  g_clear_pointer (&self->values, g_ptr_array_unref);
  G_OBJECT_CLASS (fb_inspector_parent_class)->finalize (object);
}

static void
fb_inspector_class_init (FbInspectorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = fb_inspector_dispose;
  object_class->finalize = fb_inspector_finalize;
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
}

static GtkWidget *
heading (const char *text)
{
  GtkWidget *label = gtk_label_new (text);
  gtk_widget_add_css_class (label, "heading");
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_widget_set_margin_top (label, 12);
  return label;
}

static GtkWidget *
wrapping_label (void)
{
  GtkWidget *label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  return label;
}

static void
fb_inspector_init (FbInspector *self)
{
  const char *keys[N_ROWS] = {
    N_("Opcode"), N_("Shape"), N_("Layout"), N_("Operands"), N_("Users"), N_("Source"),
    N_("Est. FLOPs"), N_("Est. bytes"), N_("Measured"),
  };
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);

  self->values = g_ptr_array_new ();
  gtk_widget_set_margin_start (box, 10);
  gtk_widget_set_margin_end (box, 10);
  gtk_widget_set_margin_top (box, 10);
  gtk_widget_set_margin_bottom (box, 10);

  self->title = gtk_label_new (NULL);
  gtk_widget_add_css_class (self->title, "title-3");
  gtk_label_set_xalign (GTK_LABEL (self->title), 0);
  gtk_label_set_selectable (GTK_LABEL (self->title), TRUE);
  gtk_label_set_ellipsize (GTK_LABEL (self->title), PANGO_ELLIPSIZE_MIDDLE);
  gtk_box_append (GTK_BOX (box), self->title);

  self->grid = gtk_grid_new ();
  gtk_grid_set_column_spacing (GTK_GRID (self->grid), 12);
  gtk_grid_set_row_spacing (GTK_GRID (self->grid), 4);
  for (int i = 0; i < N_ROWS; i++)
    {
      GtkWidget *key = gtk_label_new (_(keys[i]));
      gtk_widget_add_css_class (key, "dim-label");
      gtk_label_set_xalign (GTK_LABEL (key), 1);
      gtk_label_set_yalign (GTK_LABEL (key), 0);
      GtkWidget *value = wrapping_label ();
      gtk_widget_set_hexpand (value, TRUE);
      gtk_grid_attach (GTK_GRID (self->grid), key, 0, i, 1, 1);
      gtk_grid_attach (GTK_GRID (self->grid), value, 1, i, 1, 1);
      g_ptr_array_add (self->values, value);
    }
  gtk_box_append (GTK_BOX (box), self->grid);

  gtk_box_append (GTK_BOX (box), heading (_("HLO")));
  self->hlo = gtk_text_view_new ();
  gtk_text_view_set_editable (GTK_TEXT_VIEW (self->hlo), FALSE);
  gtk_text_view_set_monospace (GTK_TEXT_VIEW (self->hlo), TRUE);
  gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (self->hlo), GTK_WRAP_CHAR);
  gtk_box_append (GTK_BOX (box), self->hlo);

  self->code = wrapping_label ();
  gtk_widget_add_css_class (self->code, "dim-label");
  gtk_box_append (GTK_BOX (box), self->code);

  self->code_view = FB_CODE_VIEW (fb_code_view_new ());
  self->code_expander = gtk_expander_new (_("Generated code"));
  gtk_widget_add_css_class (gtk_expander_get_label_widget (GTK_EXPANDER (self->code_expander)), "heading");
  gtk_widget_set_margin_top (self->code_expander, 12);
  gtk_expander_set_child (GTK_EXPANDER (self->code_expander), GTK_WIDGET (self->code_view));
  g_signal_connect (self->code_expander, "notify::expanded", G_CALLBACK (on_code_expanded), self);
  gtk_box_append (GTK_BOX (box), self->code_expander);

  gtk_box_append (GTK_BOX (box), heading (_("Decisions")));
  self->decisions = wrapping_label ();
  gtk_box_append (GTK_BOX (box), self->decisions);

  self->scroller = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (self->scroller), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (self->scroller), box);
  gtk_widget_set_parent (self->scroller, GTK_WIDGET (self));
  update (self);
}

GtkWidget *
fb_inspector_new (void)
{
  return g_object_new (FB_TYPE_INSPECTOR, NULL);
}
