/* SPDX-License-Identifier: MIT
 *
 * The graph widget. It keeps a layout of the current snapshot's entry
 * computation (seeded from the previous one, so stepping through passes only
 * moves what changed), a viewport, and for the side-by-side and diff modes a
 * diff view of the previous and current snapshots. Drawing is entirely the
 * viz painters', into render nodes that are kept: tiles of the graph
 * (FbTileCache), which a pan only moves while the tiles around the view are
 * painted between frames, and the legend. This
 * file only turns input events into viewport changes and selections. After
 * a background rerun it takes the layout the worker made for it; the diff
 * of the side-by-side and diff modes is built by FbTasks on a worker thread
 * and lands later, the newest request only.
 */
#include "fb-graph-view.h"

#include <glib/gi18n.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <string.h>

#include "fb-paint.h"
#include "fb-tile-cache.h"

struct _FbGraphView
{
  GtkWidget      parent_instance;

  /* borrowed */
  FbDocument    *doc;
  gulong         changed_id, current_id, selected_id;

  /* owned */
  FbGraphLayout *layout;       /* after side of the current snapshot */
  PangoContext  *layout_pango; /* what @layout measures with when it was made off
                                * the main thread; NULL: the widget's */
  FbTasks       *tasks;        /* builds the diffs */
  FbTaskDiff    *diff;         /* modes other than AFTER, when there is a previous snapshot */
  gboolean       diff_pending; /* a diff for the current snapshot and mode is being built */
  gboolean       diff_fit;     /* fit the view again when it lands */
  FbViewport     vp;
  FbGraphMode    mode;
  gboolean       need_fit;
  double         drag_x, drag_y;
  double         pointer_x, pointer_y;
  double         last_scale;

  /* Tiles of the graph at the current zoom, so that a pan only moves
   * pictures; painted again when the zoom, the layout, the mode or the
   * selection changes. The ring around the view is painted when idle. */
  FbTileCache   *tiles;
  FbTileCache   *before_tiles;          /* the left half of side by side */
  int64_t        tiles_selected;
  guint          prefetch_id;
  /* The legend in the corner (and the diff's banner along the top),
   * drawn once per layout and size. */
  GskRenderNode *legend_node;
  const FbGraphLayout *legend_layout;
  int            legend_width, legend_height;
  /* The selection resolved in the current snapshot (a search per frame
   * would cost a walk over the module). */
  int64_t        sel_doc, sel_shown;
  FbModule      *sel_module;
};

G_DEFINE_FINAL_TYPE (FbGraphView, fb_graph_view, GTK_TYPE_WIDGET)

/* Room for the category legend (one row per category) in the bottom-left corner. */
#define LEGEND_WIDTH  200
#define LEGEND_HEIGHT (FB_N_CATEGORIES * 13 + 24)

static void
drop_cache (FbGraphView *self)
{
  g_clear_handle_id (&self->prefetch_id, g_source_remove);
  if (self->tiles)
    fb_tile_cache_clear (self->tiles);
  if (self->before_tiles)
    fb_tile_cache_clear (self->before_tiles);
  g_clear_pointer (&self->legend_node, gsk_render_node_unref);
  self->legend_layout = NULL;
  self->sel_module = NULL;
}

static const char *const mode_names[] = { "after", "side-by-side", "diff" };

gboolean
fb_graph_mode_from_string (const char *s, FbGraphMode *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (mode_names); i++)
    if (g_strcmp0 (s, mode_names[i]) == 0)
      {
        *out = i;
        return TRUE;
      }
  return FALSE;
}

const char *
fb_graph_mode_to_string (FbGraphMode mode)
{
  return mode < G_N_ELEMENTS (mode_names) ? mode_names[mode] : "after";
}

static FbSnapshot *
current_snapshot (FbGraphView *self)
{
  return self->doc ? fb_document_get_current_snapshot (self->doc) : NULL;
}

static FbDiffView *
diff_view (FbGraphView *self)
{
  return self->diff ? self->diff->view : NULL;
}

static gboolean
split (FbGraphView *self)
{
  return self->mode == FB_GRAPH_MODE_SIDE_BY_SIDE && diff_view (self) != NULL;
}

static const FbGraphLayout *
shown_layout (FbGraphView *self)
{
  if (self->mode != FB_GRAPH_MODE_AFTER && diff_view (self))
    return fb_diff_view_get_layout (diff_view (self));
  return self->layout;
}

/* Drops the diff shown and the one being built. */
static void
clear_diff (FbGraphView *self)
{
  if (self->diff_pending && self->tasks)
    fb_tasks_cancel_diff (self->tasks);
  self->diff_pending = FALSE;
  g_clear_pointer (&self->diff, fb_task_diff_free);
}

static void
on_diff_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FbTaskDiff) diff = fb_tasks_diff_finish (FB_TASKS (source), result, &error);

  /* Superseded, or the view is gone: @user_data must not be touched. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  FbGraphView *self = FB_GRAPH_VIEW (user_data);
  self->diff_pending = FALSE;
  if (diff == NULL)
    {
      g_debug ("no diff: %s", error->message);
      return;
    }
  self->diff = g_steal_pointer (&diff);
  drop_cache (self);
  if (self->diff_fit || self->need_fit)
    fb_graph_view_zoom_fit (self);
  self->diff_fit = FALSE;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* Asks for the diff of the current snapshot against the one before it,
 * when the mode shows one; the plain graph stays until it lands. */
static void
request_diff (FbGraphView *self, gboolean fit)
{
  clear_diff (self);
  if (self->mode == FB_GRAPH_MODE_AFTER || self->doc == NULL)
    return;
  int cur = fb_document_get_current (self->doc);
  FbSnapshot *before = cur > 0 ? fb_document_get_snapshot (self->doc, cur - 1) : NULL;
  FbSnapshot *after = current_snapshot (self);
  if (before == NULL || before->module == NULL || before->module->entry == NULL || after == NULL ||
      after->module == NULL || after->module->entry == NULL)
    return;
  if (self->tasks == NULL)
    self->tasks = fb_tasks_new ();
  g_autoptr (GPtrArray) snaps = fb_document_ref_snapshots (self->doc);
  double dpi = pango_cairo_context_get_resolution (gtk_widget_get_pango_context (GTK_WIDGET (self)));
  self->diff_pending = TRUE;
  self->diff_fit = fit;
  fb_tasks_diff_async (self->tasks, snaps, cur - 1, cur, dpi, on_diff_ready, self);
}

static void
layout_options (FbGraphView *self, FbGraphLayoutOptions *options)
{
  fb_graph_layout_options_init (options);
  options->pango = gtk_widget_get_pango_context (GTK_WIDGET (self));
}

static void
rebuild (FbGraphView *self, gboolean seed)
{
  FbGraphLayoutOptions options;
  g_autoptr (FbGraphLayout) old = g_steal_pointer (&self->layout);
  GObject *old_pango = (GObject *) g_steal_pointer (&self->layout_pango);

  clear_diff (self);
  FbSnapshot *snap = current_snapshot (self);
  if (snap && snap->module && snap->module->entry)
    {
      layout_options (self, &options);
      /* After a background rerun the worker has laid it out already. */
      if (!seed)
        self->layout = fb_document_take_prepared_layout (self->doc, snap->module->entry, &self->layout_pango);
      if (self->layout == NULL)
        self->layout = fb_graph_layout_new (snap->module->entry, seed ? old : NULL, &options);
    }
  drop_cache (self);
  if (old == NULL || !seed)
    self->need_fit = TRUE;
  request_diff (self, self->need_fit);
  /* The old layout goes before the context it measured with. */
  g_clear_pointer (&old, fb_graph_layout_free);
  g_clear_object (&old_pango);
  if (self->need_fit && gtk_widget_get_width (GTK_WIDGET (self)) > 0)
    fb_graph_view_zoom_fit (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_changed (FbDocument *doc, FbGraphView *self)
{
  /* The old snapshots are gone: the old layout must not be used as a seed. */
  clear_diff (self);
  g_clear_pointer (&self->layout, fb_graph_layout_free);
  g_clear_object (&self->layout_pango);
  rebuild (self, FALSE);
}

static void
on_current (FbDocument *doc, GParamSpec *pspec, FbGraphView *self)
{
  FbSnapshot *snap = current_snapshot (self);
  /* Already shown (a rerun that kept the index lands with "changed" first). */
  if (self->layout && snap && snap->module && fb_graph_layout_get_computation (self->layout) == snap->module->entry)
    return;
  rebuild (self, TRUE);
}

static void
on_selected (FbDocument *doc, GParamSpec *pspec, FbGraphView *self)
{
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
fb_graph_view_set_document (FbGraphView *self, FbDocument *doc)
{
  g_return_if_fail (FB_IS_GRAPH_VIEW (self));

  if (self->doc)
    {
      g_clear_signal_handler (&self->changed_id, self->doc);
      g_clear_signal_handler (&self->current_id, self->doc);
      g_clear_signal_handler (&self->selected_id, self->doc);
      g_clear_object (&self->doc);
    }
  clear_diff (self);
  g_clear_pointer (&self->layout, fb_graph_layout_free);
  g_clear_object (&self->layout_pango);
  if (doc)
    {
      self->doc = g_object_ref (doc);
      self->changed_id = g_signal_connect (doc, "changed", G_CALLBACK (on_changed), self);
      self->current_id = g_signal_connect (doc, "notify::current", G_CALLBACK (on_current), self);
      self->selected_id = g_signal_connect (doc, "notify::selected", G_CALLBACK (on_selected), self);
    }
  rebuild (self, FALSE);
}

void
fb_graph_view_set_mode (FbGraphView *self, FbGraphMode mode)
{
  g_return_if_fail (FB_IS_GRAPH_VIEW (self));
  if (mode == self->mode)
    return;
  self->mode = mode;
  /* The graph after the pass stays laid out: only the diff is new. */
  drop_cache (self);
  self->need_fit = TRUE;
  request_diff (self, TRUE);
  if (gtk_widget_get_width (GTK_WIDGET (self)) > 0)
    fb_graph_view_zoom_fit (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
fb_graph_view_set_tasks (FbGraphView *self, FbTasks *tasks)
{
  g_return_if_fail (FB_IS_GRAPH_VIEW (self));
  g_return_if_fail (tasks == NULL || FB_IS_TASKS (tasks));
  if (tasks == self->tasks)
    return;
  gboolean wanted = self->diff_pending;
  clear_diff (self);
  g_set_object (&self->tasks, tasks);
  if (wanted)
    request_diff (self, self->diff_fit);
}

gboolean
fb_graph_view_is_diff_pending (FbGraphView *self)
{
  g_return_val_if_fail (FB_IS_GRAPH_VIEW (self), FALSE);
  return self->diff_pending;
}

guint
fb_graph_view_get_n_tiles_painted (FbGraphView *self)
{
  g_return_val_if_fail (FB_IS_GRAPH_VIEW (self), 0);
  return fb_tile_cache_get_n_painted (self->tiles) + fb_tile_cache_get_n_painted (self->before_tiles);
}

const FbDiffView *
fb_graph_view_get_diff (FbGraphView *self)
{
  g_return_val_if_fail (FB_IS_GRAPH_VIEW (self), NULL);
  return diff_view (self);
}

FbGraphMode
fb_graph_view_get_mode (FbGraphView *self)
{
  g_return_val_if_fail (FB_IS_GRAPH_VIEW (self), FB_GRAPH_MODE_AFTER);
  return self->mode;
}

const FbGraphLayout *
fb_graph_view_get_layout (FbGraphView *self)
{
  g_return_val_if_fail (FB_IS_GRAPH_VIEW (self), NULL);
  return shown_layout (self);
}

double
fb_graph_view_get_zoom (FbGraphView *self)
{
  g_return_val_if_fail (FB_IS_GRAPH_VIEW (self), 1.0);
  return self->vp.zoom;
}

void
fb_graph_view_zoom_fit (FbGraphView *self)
{
  g_return_if_fail (FB_IS_GRAPH_VIEW (self));
  const FbGraphLayout *layout = shown_layout (self);
  double w = gtk_widget_get_width (GTK_WIDGET (self));
  double h = gtk_widget_get_height (GTK_WIDGET (self));
  double cw = 1, ch = 1;

  if (split (self))
    w /= 2;
  if (layout)
    fb_graph_layout_get_size (layout, &cw, &ch);
  if (w <= 0 || h <= 0)
    {
      self->need_fit = TRUE;
      return;
    }
  fb_viewport_fit (&self->vp, MAX (cw, 1), MAX (ch, 1), w, h, 16, 1.5);
  self->need_fit = FALSE;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
fb_graph_view_zoom_by (FbGraphView *self, double factor)
{
  g_return_if_fail (FB_IS_GRAPH_VIEW (self));
  double w = self->vp.width, h = self->vp.height;
  fb_viewport_zoom_at (&self->vp, factor, w / 2, h / 2);
  self->vp.zoom = CLAMP (self->vp.zoom, 0.005, 20.0);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
fb_graph_view_pan_by (FbGraphView *self, double dx, double dy)
{
  g_return_if_fail (FB_IS_GRAPH_VIEW (self));
  self->vp.x += dx / self->vp.zoom;
  self->vp.y += dy / self->vp.zoom;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
center_on (FbGraphView *self, const FbGraphNode *node)
{
  self->vp.x = node->x - self->vp.width / (2 * self->vp.zoom);
  self->vp.y = node->y - self->vp.height / (2 * self->vp.zoom);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

gboolean
fb_graph_view_search (FbGraphView *self, const char *text)
{
  g_return_val_if_fail (FB_IS_GRAPH_VIEW (self), FALSE);
  const FbGraphLayout *layout = shown_layout (self);
  if (layout == NULL || text == NULL || *text == '\0')
    return FALSE;

  g_autofree char *needle = g_utf8_casefold (text, -1);
  int n = fb_graph_layout_get_n_nodes (layout);
  int start = 0;
  int64_t sel = fb_document_get_selected (self->doc);
  int at = sel >= 0 ? fb_graph_layout_find_node (layout, sel) : -1;
  if (at >= 0)
    start = at + 1;
  for (int k = 0; k < n; k++)
    {
      const FbGraphNode *node = fb_graph_layout_get_node (layout, (start + k) % n);
      if (node->kind != FB_GNODE_INSTR || node->instr == NULL)
        continue;
      g_autofree char *name = g_utf8_casefold (node->instr->name, -1);
      const char *op = fb_opcode_name (node->instr->opcode);
      if (strstr (name, needle) || g_ascii_strcasecmp (op, text) == 0)
        {
          fb_document_set_selected (self->doc, node->instr->id);
          center_on (self, node);
          return TRUE;
        }
    }
  return FALSE;
}

gboolean
fb_graph_view_toggle_cluster (FbGraphView *self, int64_t key)
{
  g_return_val_if_fail (FB_IS_GRAPH_VIEW (self), FALSE);
  if (self->layout == NULL)
    return FALSE;
  int c = fb_graph_layout_find_cluster (self->layout, key);
  if (c < 0)
    return FALSE;
  const FbGraphCluster *cluster = fb_graph_layout_get_cluster (self->layout, c);
  FbGraphLayout *next = fb_graph_layout_set_expanded (self->layout, key, !cluster->expanded);
  if (next == NULL)
    return FALSE;
  fb_graph_layout_free (self->layout);
  self->layout = next;
  drop_cache (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  return TRUE;
}

/* ------------------------------------------------------------ drawing */

static void
label (cairo_t *cr, double x, double y, const char *text)
{
  cairo_set_source_rgba (cr, 0.5, 0.5, 0.5, 0.9);
  cairo_select_font_face (cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_font_size (cr, 12);
  cairo_move_to (cr, x, y);
  cairo_show_text (cr, text);
}

static void
paint_content (FbGraphView *self, cairo_t *cr, const FbViewport *vp, const FbGraphPaintOptions *options)
{
  if (self->mode == FB_GRAPH_MODE_DIFF && diff_view (self))
    fb_paint_diff (cr, diff_view (self), vp, options);
  else
    fb_paint_graph (cr, shown_layout (self), vp, options);
}

/* What a tile shows: the graph (or the diff) without the legend and the
 * banner, which stay still over it. */
static void
paint_tile (cairo_t *cr, const FbViewport *vp, gpointer user_data)
{
  FbGraphView *self = user_data;
  FbGraphPaintOptions options;

  fb_graph_paint_options_init (&options);
  options.legend = FALSE;
  options.selected = self->tiles_selected;
  paint_content (self, cr, vp, &options);
}

static void
paint_before_tile (cairo_t *cr, const FbViewport *vp, gpointer user_data)
{
  FbGraphView *self = user_data;
  FbGraphPaintOptions options;

  if (!split (self))
    return;
  fb_graph_paint_options_init (&options);
  options.legend = FALSE;
  options.selected = self->tiles_selected;
  fb_paint_graph (cr, fb_diff_view_get_before_layout (diff_view (self)), vp, &options);
}

static gboolean
prefetch_tiles (gpointer user_data)
{
  FbGraphView *self = user_data;

  if (shown_layout (self) &&
      (fb_tile_cache_prefetch (self->tiles) || (split (self) && fb_tile_cache_prefetch (self->before_tiles))))
    return G_SOURCE_CONTINUE;
  self->prefetch_id = 0;
  return G_SOURCE_REMOVE;
}

static void
fb_graph_view_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  FbGraphView *self = FB_GRAPH_VIEW (widget);
  int width = gtk_widget_get_width (widget);
  int height = gtk_widget_get_height (widget);
  const FbGraphLayout *layout = shown_layout (self);

  if (layout == NULL || width <= 0 || height <= 0)
    return;

  FbGraphPaintOptions options;
  fb_graph_paint_options_init (&options);
  options.legend = TRUE;
  FbSnapshot *snap = current_snapshot (self);
  int64_t want = fb_document_get_selected (self->doc);
  if (self->sel_module == NULL || self->sel_module != (snap ? snap->module : NULL) || self->sel_doc != want)
    {
      FbInstr *sel = fb_document_find_instr (snap ? snap->module : NULL, want);
      self->sel_module = snap ? snap->module : NULL;
      self->sel_doc = want;
      self->sel_shown = sel ? sel->id : want;
    }
  options.selected = self->sel_shown;

  self->vp.height = height;
  gboolean two = split (self);
  double half = floor (width / 2.0);
  int pane_width = two ? (int) half : width;
  self->vp.width = two ? width / 2.0 : width;
  if (self->tiles_selected != options.selected)
    {
      fb_tile_cache_clear (self->tiles);
      fb_tile_cache_clear (self->before_tiles);
    }
  self->tiles_selected = options.selected;
  /* A pan only moves tiles; those it uncovers were mostly painted when idle. */
  int scale = gtk_widget_get_scale_factor (widget);
  if (two)
    {
      fb_tile_cache_snapshot (self->before_tiles, snapshot, &self->vp, scale);
      gtk_snapshot_save (snapshot);
      gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (half, 0));
    }
  fb_tile_cache_snapshot (self->tiles, snapshot, &self->vp, scale);
  if (two)
    gtk_snapshot_restore (snapshot);
  if (self->prefetch_id == 0)
    self->prefetch_id = g_idle_add (prefetch_tiles, self);

  /* The legend stays in the corner: it is painted alone, over the picture,
   * through a viewport that shows no node, into a node of its own size
   * that is kept until the layout or the size changes. */
  if (self->legend_node == NULL || self->legend_layout != layout || self->legend_width != width ||
      self->legend_height != height)
    {
      g_clear_pointer (&self->legend_node, gsk_render_node_unref);
      GtkSnapshot *sub = gtk_snapshot_new ();
      double lh = MIN (LEGEND_HEIGHT, height), lw = MIN (LEGEND_WIDTH, pane_width);
      cairo_t *cr = gtk_snapshot_append_cairo (sub, &GRAPHENE_RECT_INIT (0, height - lh, lw, lh));
      FbViewport nowhere = self->vp;
      nowhere.x = nowhere.y = -1e12;
      options.skip_background = TRUE;
      fb_paint_graph (cr, layout, &nowhere, &options);
      cairo_destroy (cr);
      if (self->mode == FB_GRAPH_MODE_DIFF && diff_view (self))
        {
          cr = gtk_snapshot_append_cairo (sub, &GRAPHENE_RECT_INIT (0, 0, width, MIN (40, height)));
          fb_paint_diff_banner (cr, diff_view (self), &self->vp);
          cairo_destroy (cr);
        }
      self->legend_node = gtk_snapshot_free_to_node (sub);
      self->legend_layout = layout;
      self->legend_width = width;
      self->legend_height = height;
    }
  if (self->legend_node)
    gtk_snapshot_append_node (snapshot, self->legend_node);
  if (!two)
    return;
  /* Side by side: each half has its legend and its name at the top. */
  if (self->legend_node)
    {
      gtk_snapshot_save (snapshot);
      gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (half, 0));
      gtk_snapshot_append_node (snapshot, self->legend_node);
      gtk_snapshot_restore (snapshot);
    }
  cairo_t *cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  label (cr, 8, 20, _("Before"));
  label (cr, half + 8, 20, _("After"));
  cairo_set_source_rgb (cr, 0.5, 0.5, 0.5);
  cairo_rectangle (cr, half - 1, 0, 1, height);
  cairo_fill (cr);
  cairo_destroy (cr);
}

static void
fb_graph_view_size_allocate (GtkWidget *widget, int width, int height, int baseline)
{
  FbGraphView *self = FB_GRAPH_VIEW (widget);

  self->vp.width = split (self) ? width / 2.0 : width;
  self->vp.height = height;
  if (self->need_fit)
    fb_graph_view_zoom_fit (self);
}

/* ------------------------------------------------------------- input */

/* The layout under device point (@x, @y) and the point in its coordinates. */
static const FbGraphLayout *
layout_at (FbGraphView *self, double x, double y, double *cx, double *cy)
{
  const FbGraphLayout *layout = shown_layout (self);
  if (split (self) && x < gtk_widget_get_width (GTK_WIDGET (self)) / 2.0)
    layout = fb_diff_view_get_before_layout (diff_view (self));
  else if (split (self))
    x -= gtk_widget_get_width (GTK_WIDGET (self)) / 2.0;
  fb_viewport_to_content (&self->vp, x, y, cx, cy);
  return layout;
}

static void
on_click (GtkGestureClick *gesture, int n_press, double x, double y, FbGraphView *self)
{
  double cx, cy;
  const FbGraphLayout *layout = layout_at (self, x, y, &cx, &cy);

  gtk_widget_grab_focus (GTK_WIDGET (self));
  if (layout == NULL || self->doc == NULL)
    return;
  int hit = fb_graph_layout_hit (layout, cx, cy);
  const FbGraphNode *node = hit >= 0 ? fb_graph_layout_get_node (layout, hit) : NULL;

  if (n_press == 1)
    {
      fb_document_set_selected (self->doc, node && node->instr ? node->instr->id : -1);
      return;
    }
  if (n_press != 2 || layout != self->layout)
    return;
  if (node && node->collapsed)
    {
      fb_graph_view_toggle_cluster (self, node->key);
      return;
    }
  /* Inside an expanded frame: collapse the innermost one. */
  int best = -1;
  double best_area = G_MAXDOUBLE;
  for (int c = 0; c < fb_graph_layout_get_n_clusters (layout); c++)
    {
      const FbGraphCluster *cl = fb_graph_layout_get_cluster (layout, c);
      double area = (cl->x1 - cl->x0) * (cl->y1 - cl->y0);
      if (cl->expanded && cx >= cl->x0 && cx <= cl->x1 && cy >= cl->y0 && cy <= cl->y1 && area < best_area)
        {
          best = c;
          best_area = area;
        }
    }
  if (best >= 0)
    fb_graph_view_toggle_cluster (self, fb_graph_layout_get_cluster (layout, best)->key);
}

static void
on_drag_begin (GtkGestureDrag *gesture, double x, double y, FbGraphView *self)
{
  self->drag_x = self->vp.x;
  self->drag_y = self->vp.y;
}

static void
on_drag_update (GtkGestureDrag *gesture, double dx, double dy, FbGraphView *self)
{
  self->vp.x = self->drag_x - dx / self->vp.zoom;
  self->vp.y = self->drag_y - dy / self->vp.zoom;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_motion (GtkEventControllerMotion *motion, double x, double y, FbGraphView *self)
{
  self->pointer_x = x;
  self->pointer_y = y;
}

static gboolean
on_scroll (GtkEventControllerScroll *scroll, double dx, double dy, FbGraphView *self)
{
  double x = self->pointer_x;
  if (split (self) && x > self->vp.width)
    x -= self->vp.width;
  fb_viewport_zoom_at (&self->vp, pow (1.15, -dy), x, self->pointer_y);
  self->vp.zoom = CLAMP (self->vp.zoom, 0.005, 20.0);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  return TRUE;
}

static void
on_zoom_begin (GtkGesture *gesture, GdkEventSequence *sequence, FbGraphView *self)
{
  self->last_scale = 1.0;
}

static void
on_zoom_scale (GtkGestureZoom *gesture, double scale, FbGraphView *self)
{
  double x, y;
  if (self->last_scale <= 0)
    self->last_scale = 1.0;
  if (!gtk_gesture_get_bounding_box_center (GTK_GESTURE (gesture), &x, &y))
    x = self->vp.width / 2, y = self->vp.height / 2;
  fb_viewport_zoom_at (&self->vp, scale / self->last_scale, x, y);
  self->last_scale = scale;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
action_view (GtkWidget *widget, const char *name, GVariant *param)
{
  FbGraphView *self = FB_GRAPH_VIEW (widget);
  if (g_str_equal (name, "graph.pan"))
    {
      double dx, dy;
      g_variant_get (param, "(dd)", &dx, &dy);
      fb_graph_view_pan_by (self, dx, dy);
    }
  else if (g_str_equal (name, "graph.zoom-in"))
    fb_graph_view_zoom_by (self, 1.25);
  else if (g_str_equal (name, "graph.zoom-out"))
    fb_graph_view_zoom_by (self, 0.8);
  else
    fb_graph_view_zoom_fit (self);
}

/* --------------------------------------------------------- life cycle */

static void
fb_graph_view_dispose (GObject *object)
{
  FbGraphView *self = FB_GRAPH_VIEW (object);

  fb_graph_view_set_document (self, NULL);
  clear_diff (self);
  g_clear_object (&self->tasks);
  drop_cache (self);
  g_clear_pointer (&self->tiles, fb_tile_cache_free);
  g_clear_pointer (&self->before_tiles, fb_tile_cache_free);
  G_OBJECT_CLASS (fb_graph_view_parent_class)->dispose (object);
}

static void
fb_graph_view_class_init (FbGraphViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = fb_graph_view_dispose;
  widget_class->snapshot = fb_graph_view_snapshot;
  widget_class->size_allocate = fb_graph_view_size_allocate;

  gtk_widget_class_install_action (widget_class, "graph.zoom-in", NULL, action_view);
  gtk_widget_class_install_action (widget_class, "graph.zoom-out", NULL, action_view);
  gtk_widget_class_install_action (widget_class, "graph.fit", NULL, action_view);
  gtk_widget_class_install_action (widget_class, "graph.pan", "(dd)", action_view);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Left, 0, "graph.pan", "(dd)", -60.0, 0.0);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Right, 0, "graph.pan", "(dd)", 60.0, 0.0);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Up, 0, "graph.pan", "(dd)", 0.0, -60.0);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Down, 0, "graph.pan", "(dd)", 0.0, 60.0);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_plus, 0, "graph.zoom-in", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_equal, 0, "graph.zoom-in", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_Add, 0, "graph.zoom-in", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_minus, 0, "graph.zoom-out", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_Subtract, 0, "graph.zoom-out", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_0, 0, "graph.fit", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_0, 0, "graph.fit", NULL);

  gtk_widget_class_set_css_name (widget_class, "graphview");
}

static void
fb_graph_view_init (FbGraphView *self)
{
  GtkWidget *widget = GTK_WIDGET (self);

  self->vp.zoom = 1.0;
  self->need_fit = TRUE;
  self->tiles = fb_tile_cache_new (paint_tile, self);
  self->before_tiles = fb_tile_cache_new (paint_before_tile, self);
  gtk_widget_set_focusable (widget, TRUE);
  gtk_widget_set_hexpand (widget, TRUE);
  gtk_widget_set_vexpand (widget, TRUE);
  gtk_widget_set_overflow (widget, GTK_OVERFLOW_HIDDEN);

  GtkGesture *click = gtk_gesture_click_new ();
  g_signal_connect (click, "pressed", G_CALLBACK (on_click), self);
  gtk_widget_add_controller (widget, GTK_EVENT_CONTROLLER (click));

  GtkGesture *drag = gtk_gesture_drag_new ();
  g_signal_connect (drag, "drag-begin", G_CALLBACK (on_drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (on_drag_update), self);
  gtk_widget_add_controller (widget, GTK_EVENT_CONTROLLER (drag));

  GtkEventController *motion = gtk_event_controller_motion_new ();
  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  gtk_widget_add_controller (widget, motion);

  GtkEventController *scroll = gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
  g_signal_connect (scroll, "scroll", G_CALLBACK (on_scroll), self);
  gtk_widget_add_controller (widget, scroll);

  GtkGesture *zoom = gtk_gesture_zoom_new ();
  g_signal_connect (zoom, "begin", G_CALLBACK (on_zoom_begin), self);
  g_signal_connect (zoom, "scale-changed", G_CALLBACK (on_zoom_scale), self);
  gtk_widget_add_controller (widget, GTK_EVENT_CONTROLLER (zoom));
}

GtkWidget *
fb_graph_view_new (void)
{
  return g_object_new (FB_TYPE_GRAPH_VIEW, NULL);
}
