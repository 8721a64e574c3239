/* SPDX-License-Identifier: MIT
 *
 * The interactive timeline. The view is a time range and a vertical
 * scroll handed to the painter; hit tests go through the painter's own
 * geometry (fb_timeline_hit_test), so what is clicked is what is drawn.
 * One drag gesture does both panning and clicking: a press released
 * within a few pixels of where it started is a click.
 */
#include "fb-timeline-view.h"

#include <glib/gi18n.h>
#include <math.h>

#include "fb-paint.h"

#define CLICK_SLOP 4.0
#define MIN_RANGE_NS 100

struct _FbTimelineView
{
  GtkWidget   parent_instance;

  /* borrowed */
  FbDocument *doc;
  gulong      selected_id, current_id, changed_id;

  /* owned */
  FbTrace    *trace;
  gint64      t0, t1;          /* visible range; t1 <= t0: the whole trace */
  double      scroll_y;
  gint64      selected_span;   /* painter numbering; -1: none */
  guint       sel_track, sel_index;
  GArray     *highlight;       /* gint64 instruction ids of the selected node */
  guint       n_highlighted;
  double      pointer_x;
  double      drag_x, drag_y;  /* offset already applied during a drag */
  gboolean    selecting;       /* we are the ones changing the document's selection */
};

G_DEFINE_FINAL_TYPE (FbTimelineView, fb_timeline_view, GTK_TYPE_WIDGET)

static void
options_for (FbTimelineView *self, FbTimelineOptions *o)
{
  fb_timeline_options_init (o);
  o->t0_ns = self->t0;
  o->t1_ns = self->t1;
  o->scroll_y = self->scroll_y;
  o->selected_span = self->selected_span;
  o->highlight_ids = (const gint64 *) self->highlight->data;
  o->n_highlight_ids = self->highlight->len;
}

static void
fb_timeline_view_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  FbTimelineView *self = FB_TIMELINE_VIEW (widget);
  int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  if (w <= 0 || h <= 0)
    return;
  cairo_t *cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, w, h));
  if (self->trace == NULL || fb_trace_get_n_spans (self->trace) == 0)
    {
      const char *text = _("Run or profile the model to see its timeline.");
      cairo_set_source_rgb (cr, 0.5, 0.5, 0.5);
      cairo_select_font_face (cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
      cairo_set_font_size (cr, 13);
      cairo_text_extents_t ext;
      cairo_text_extents (cr, text, &ext);
      cairo_move_to (cr, (w - ext.width) / 2, h / 2.0);
      cairo_show_text (cr, text);
    }
  else
    {
      FbTimelineOptions o;
      options_for (self, &o);
      fb_paint_timeline (cr, self->trace, w, h, &o);
    }
  cairo_destroy (cr);
}

/* ----------------------------------------------------------- selection */

static gboolean
span_matches (const FbSpan *sp, GArray *ids)
{
  for (guint i = 0; i < sp->n_instr; i++)
    for (guint k = 0; k < ids->len; k++)
      if (sp->instr_ids[i] == g_array_index (ids, gint64, k))
        return TRUE;
  return FALSE;
}

/* The ids a span of the selected node would carry: its own and those it stands for. */
static void
update_highlight (FbTimelineView *self)
{
  g_array_set_size (self->highlight, 0);
  self->n_highlighted = 0;
  FbSnapshot *snap = self->doc ? fb_document_get_current_snapshot (self->doc) : NULL;
  FbInstr *instr = snap ? fb_document_find_instr (snap->module, fb_document_get_selected (self->doc)) : NULL;
  if (instr != NULL)
    {
      gint64 id = instr->id;
      g_array_append_val (self->highlight, id);
      for (int k = 0; k < instr->n_prov; k++)
        {
          id = instr->prov[k];
          g_array_append_val (self->highlight, id);
        }
    }
  if (self->trace && self->highlight->len > 0)
    for (guint t = 0; t < fb_trace_get_n_tracks (self->trace); t++)
      {
        const FbTrack *tr = fb_trace_get_track (self->trace, t);
        for (guint s = 0; s < tr->n_spans; s++)
          if (span_matches (&tr->spans[s], self->highlight))
            self->n_highlighted++;
      }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_doc_selected (FbTimelineView *self)
{
  /* A selection made elsewhere drops a selected span that does not run it. */
  if (!self->selecting && self->selected_span >= 0)
    {
      const FbSpan *sp = fb_timeline_view_get_selected_span (self);
      update_highlight (self);
      if (sp == NULL || !span_matches (sp, self->highlight))
        self->selected_span = -1;
      return;
    }
  update_highlight (self);
}

void
fb_timeline_view_set_document (FbTimelineView *self, FbDocument *doc)
{
  g_return_if_fail (FB_IS_TIMELINE_VIEW (self));
  if (self->doc)
    {
      g_clear_signal_handler (&self->selected_id, self->doc);
      g_clear_signal_handler (&self->current_id, self->doc);
      g_clear_signal_handler (&self->changed_id, self->doc);
      g_clear_object (&self->doc);
    }
  if (doc)
    {
      self->doc = g_object_ref (doc);
      self->selected_id = g_signal_connect_swapped (doc, "notify::selected", G_CALLBACK (on_doc_selected), self);
      self->current_id = g_signal_connect_swapped (doc, "notify::current", G_CALLBACK (update_highlight), self);
      self->changed_id = g_signal_connect_swapped (doc, "changed", G_CALLBACK (update_highlight), self);
    }
  update_highlight (self);
}

void
fb_timeline_view_set_trace (FbTimelineView *self, FbTrace *trace)
{
  g_return_if_fail (FB_IS_TIMELINE_VIEW (self));
  if (trace)
    fb_trace_ref (trace);
  g_clear_pointer (&self->trace, fb_trace_unref);
  self->trace = trace;
  self->t0 = self->t1 = 0;
  self->scroll_y = 0;
  self->selected_span = -1;
  update_highlight (self);
}

FbTrace *
fb_timeline_view_get_trace (FbTimelineView *self)
{
  g_return_val_if_fail (FB_IS_TIMELINE_VIEW (self), NULL);
  return self->trace;
}

const FbSpan *
fb_timeline_view_get_selected_span (FbTimelineView *self)
{
  g_return_val_if_fail (FB_IS_TIMELINE_VIEW (self), NULL);
  if (self->trace == NULL || self->selected_span < 0)
    return NULL;
  const FbTrack *tr = fb_trace_get_track (self->trace, self->sel_track);
  return tr && self->sel_index < tr->n_spans ? &tr->spans[self->sel_index] : NULL;
}

guint
fb_timeline_view_get_n_highlighted (FbTimelineView *self)
{
  g_return_val_if_fail (FB_IS_TIMELINE_VIEW (self), 0);
  return self->n_highlighted;
}

gboolean
fb_timeline_view_click (FbTimelineView *self, double x, double y)
{
  g_return_val_if_fail (FB_IS_TIMELINE_VIEW (self), FALSE);
  if (self->trace == NULL)
    return FALSE;
  FbTimelineOptions o;
  options_for (self, &o);
  guint track, span;
  gint64 index;
  int w = gtk_widget_get_width (GTK_WIDGET (self)), h = gtk_widget_get_height (GTK_WIDGET (self));
  if (!fb_timeline_hit_test (self->trace, w, h, &o, x, y, &track, &span, &index))
    {
      self->selected_span = -1;
      gtk_widget_queue_draw (GTK_WIDGET (self));
      return FALSE;
    }
  self->selected_span = index;
  self->sel_track = track;
  self->sel_index = span;

  /* The first instruction of the span that the current snapshot has. */
  const FbSpan *sp = &fb_trace_get_track (self->trace, track)->spans[span];
  FbSnapshot *snap = self->doc ? fb_document_get_current_snapshot (self->doc) : NULL;
  for (guint i = 0; snap && i < sp->n_instr; i++)
    {
      FbInstr *instr = fb_document_find_instr (snap->module, sp->instr_ids[i]);
      if (instr)
        {
          self->selecting = TRUE;
          fb_document_set_selected (self->doc, instr->id);
          self->selecting = FALSE;
          break;
        }
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
  return TRUE;
}

gboolean
fb_timeline_view_get_span_center (FbTimelineView *self, guint track, guint span, double *x, double *y)
{
  g_return_val_if_fail (FB_IS_TIMELINE_VIEW (self), FALSE);
  if (self->trace == NULL)
    return FALSE;
  FbTimelineOptions o;
  options_for (self, &o);
  double r[4];
  if (!fb_timeline_span_rect (self->trace, gtk_widget_get_width (GTK_WIDGET (self)), &o, track, span, r))
    return FALSE;
  *x = r[0] + r[2] / 2;
  *y = r[1] + r[3] / 2;
  return *y >= 0 && *y < gtk_widget_get_height (GTK_WIDGET (self));
}

/* ------------------------------------------------------------ navigation */

gboolean
fb_timeline_view_get_range (FbTimelineView *self, gint64 *t0, gint64 *t1)
{
  g_return_val_if_fail (FB_IS_TIMELINE_VIEW (self), FALSE);
  if (self->trace == NULL)
    return FALSE;
  FbTimelineOptions o;
  FbTimelineGeometry g;
  options_for (self, &o);
  fb_timeline_get_geometry (self->trace, gtk_widget_get_width (GTK_WIDGET (self)), &o, &g);
  if (t0)
    *t0 = g.t0;
  if (t1)
    *t1 = g.t1;
  return TRUE;
}

/* Keeps [t0, t1) inside the trace; the whole trace when it covers it. */
static void
set_range (FbTimelineView *self, double t0, double t1)
{
  gint64 a, b;
  if (!fb_trace_get_time_range (self->trace, &a, &b) || b <= a)
    return;
  double len = MAX (t1 - t0, MIN_RANGE_NS);
  if (len >= (double) (b - a))
    {
      self->t0 = self->t1 = 0;
    }
  else
    {
      t0 = CLAMP (t0, (double) a, (double) b - len);
      self->t0 = (gint64) llround (t0);
      self->t1 = self->t0 + (gint64) llround (len);
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
fb_timeline_view_zoom_at (FbTimelineView *self, double factor, double x)
{
  g_return_if_fail (FB_IS_TIMELINE_VIEW (self));
  if (self->trace == NULL || factor <= 0)
    return;
  FbTimelineOptions o;
  FbTimelineGeometry g;
  options_for (self, &o);
  fb_timeline_get_geometry (self->trace, gtk_widget_get_width (GTK_WIDGET (self)), &o, &g);
  double f = CLAMP ((x - g.plot_x) / g.plot_w, 0, 1);
  double len = (double) (g.t1 - g.t0);
  double at = g.t0 + f * len;
  double new_len = len / factor;
  set_range (self, at - f * new_len, at - f * new_len + new_len);
}

/* Height of all rows, to bound the vertical scroll. */
static double
content_height (FbTimelineView *self)
{
  double y = 0;
  for (guint t = 0; t < fb_trace_get_n_tracks (self->trace); t++)
    {
      const FbTrack *tr = fb_trace_get_track (self->trace, t);
      gboolean counter = tr->kind == FB_TRACK_MEMORY || tr->kind == FB_TRACK_COUNTER;
      y += (counter ? 2 : tr->max_depth + 1) * 22.0 + 4;
    }
  return y;
}

void
fb_timeline_view_pan (FbTimelineView *self, double dx, double dy)
{
  g_return_if_fail (FB_IS_TIMELINE_VIEW (self));
  if (self->trace == NULL)
    return;
  FbTimelineOptions o;
  FbTimelineGeometry g;
  options_for (self, &o);
  fb_timeline_get_geometry (self->trace, gtk_widget_get_width (GTK_WIDGET (self)), &o, &g);
  double rows = MAX (0.0, content_height (self) - (gtk_widget_get_height (GTK_WIDGET (self)) - g.axis_h - 4));
  self->scroll_y = CLAMP (self->scroll_y - dy, 0, rows);
  if (self->t1 > self->t0 && dx != 0)
    {
      double shift = -dx / g.plot_w * (double) (g.t1 - g.t0);
      set_range (self, g.t0 + shift, g.t1 + shift);
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
fb_timeline_view_reset (FbTimelineView *self)
{
  g_return_if_fail (FB_IS_TIMELINE_VIEW (self));
  self->t0 = self->t1 = 0;
  self->scroll_y = 0;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static gboolean
on_scroll (GtkEventControllerScroll *controller, double dx, double dy, FbTimelineView *self)
{
  GdkModifierType state = gtk_event_controller_get_current_event_state (GTK_EVENT_CONTROLLER (controller));
  if (state & GDK_CONTROL_MASK)
    {
      fb_timeline_view_zoom_at (self, pow (1.2, -dy), self->pointer_x);
      return TRUE;
    }
  fb_timeline_view_pan (self, -dx * 40, -dy * 40);
  return TRUE;
}

static void
on_motion (GtkEventControllerMotion *controller, double x, double y, FbTimelineView *self)
{
  self->pointer_x = x;
}

static void
on_drag_begin (GtkGestureDrag *gesture, double x, double y, FbTimelineView *self)
{
  self->drag_x = self->drag_y = 0;
  gtk_widget_grab_focus (GTK_WIDGET (self));
}

static void
on_drag_update (GtkGestureDrag *gesture, double ox, double oy, FbTimelineView *self)
{
  if (fabs (ox) < CLICK_SLOP && fabs (oy) < CLICK_SLOP && self->drag_x == 0 && self->drag_y == 0)
    return;
  fb_timeline_view_pan (self, ox - self->drag_x, oy - self->drag_y);
  self->drag_x = ox;
  self->drag_y = oy;
}

static void
on_drag_end (GtkGestureDrag *gesture, double ox, double oy, FbTimelineView *self)
{
  double x, y;
  if (self->drag_x == 0 && self->drag_y == 0 && fabs (ox) < CLICK_SLOP && fabs (oy) < CLICK_SLOP
      && gtk_gesture_drag_get_start_point (gesture, &x, &y))
    fb_timeline_view_click (self, x, y);
}

static void
action_reset (GtkWidget *widget, const char *name, GVariant *param)
{
  fb_timeline_view_reset (FB_TIMELINE_VIEW (widget));
}

static void
action_zoom (GtkWidget *widget, const char *name, GVariant *param)
{
  FbTimelineView *self = FB_TIMELINE_VIEW (widget);
  double f = g_str_equal (name, "timeline.zoom-in") ? 1.5 : 1 / 1.5;
  fb_timeline_view_zoom_at (self, f, gtk_widget_get_width (widget) / 2.0);
}

/* ------------------------------------------------------------ life cycle */

static void
fb_timeline_view_dispose (GObject *object)
{
  fb_timeline_view_set_document (FB_TIMELINE_VIEW (object), NULL);
  G_OBJECT_CLASS (fb_timeline_view_parent_class)->dispose (object);
}

static void
fb_timeline_view_finalize (GObject *object)
{
  FbTimelineView *self = FB_TIMELINE_VIEW (object);

  g_clear_pointer (&self->trace, fb_trace_unref);
  g_clear_pointer (&self->highlight, g_array_unref);
  G_OBJECT_CLASS (fb_timeline_view_parent_class)->finalize (object);
}

static void
fb_timeline_view_class_init (FbTimelineViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = fb_timeline_view_dispose;
  object_class->finalize = fb_timeline_view_finalize;
  widget_class->snapshot = fb_timeline_view_snapshot;

  gtk_widget_class_install_action (widget_class, "timeline.reset", NULL, action_reset);
  gtk_widget_class_install_action (widget_class, "timeline.zoom-in", NULL, action_zoom);
  gtk_widget_class_install_action (widget_class, "timeline.zoom-out", NULL, action_zoom);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_0, GDK_CONTROL_MASK, "timeline.reset", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_plus, GDK_CONTROL_MASK, "timeline.zoom-in", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_minus, GDK_CONTROL_MASK, "timeline.zoom-out", NULL);
}

static void
fb_timeline_view_init (FbTimelineView *self)
{
  self->selected_span = -1;
  self->highlight = g_array_new (FALSE, FALSE, sizeof (gint64));
  gtk_widget_set_focusable (GTK_WIDGET (self), TRUE);
  gtk_widget_set_hexpand (GTK_WIDGET (self), TRUE);
  gtk_widget_set_vexpand (GTK_WIDGET (self), TRUE);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self),
                               _("Ctrl + scroll to zoom, drag to pan, click a span to select its node"));

  GtkEventController *scroll = gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_BOTH_AXES);
  g_signal_connect (scroll, "scroll", G_CALLBACK (on_scroll), self);
  gtk_widget_add_controller (GTK_WIDGET (self), scroll);

  GtkEventController *motion = gtk_event_controller_motion_new ();
  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  gtk_widget_add_controller (GTK_WIDGET (self), motion);

  GtkGesture *drag = gtk_gesture_drag_new ();
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (drag), GDK_BUTTON_PRIMARY);
  g_signal_connect (drag, "drag-begin", G_CALLBACK (on_drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (on_drag_update), self);
  g_signal_connect (drag, "drag-end", G_CALLBACK (on_drag_end), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drag));
}

GtkWidget *
fb_timeline_view_new (void)
{
  return g_object_new (FB_TYPE_TIMELINE_VIEW, NULL);
}
