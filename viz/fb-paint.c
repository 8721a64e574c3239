/* SPDX-License-Identifier: MIT
 *
 * The graph painter and the small shared pieces of every painter (viewport
 * arithmetic, colours, text). The graph is drawn in layout coordinates
 * under the viewport's transform; only the nodes and edges the grid index
 * reports as visible are touched, and below a legible zoom the labels,
 * borders and arrow heads are skipped so that a zoomed-out graph of ten
 * thousand nodes is a few thousand filled rectangles and one stroked path.
 */
#include <math.h>
#include <string.h>

#include <pango/pangocairo.h>

#include "fb-cost.h"
#include "fb-paint.h"

/* ------------------------------------------------------------ viewport */

void
fb_viewport_fit (FbViewport *vp, double content_w, double content_h,
                 double width, double height, double margin, double max_zoom)
{
  g_return_if_fail (vp != NULL);
  double aw = MAX (1.0, width - 2 * margin), ah = MAX (1.0, height - 2 * margin);
  double z = MIN (aw / MAX (1.0, content_w), ah / MAX (1.0, content_h));
  if (max_zoom > 0)
    z = MIN (z, max_zoom);
  vp->zoom = z;
  vp->width = width;
  vp->height = height;
  vp->x = content_w / 2 - width / (2 * z);
  vp->y = content_h / 2 - height / (2 * z);
}

void
fb_viewport_zoom_at (FbViewport *vp, double factor, double dx, double dy)
{
  g_return_if_fail (vp != NULL && factor > 0);
  double cx, cy;
  fb_viewport_to_content (vp, dx, dy, &cx, &cy);
  vp->zoom = CLAMP (vp->zoom * factor, 1e-4, 64.0);
  vp->x = cx - dx / vp->zoom;
  vp->y = cy - dy / vp->zoom;
}

void
fb_viewport_to_content (const FbViewport *vp, double dx, double dy, double *cx, double *cy)
{
  g_return_if_fail (vp != NULL);
  if (cx) *cx = vp->x + dx / vp->zoom;
  if (cy) *cy = vp->y + dy / vp->zoom;
}

/* -------------------------------------------------------- node values */

struct _FbNodeValues {
  FbOverlayKind kind;
  GHashTable   *values;   /* int64 id -> double */
};

FbNodeValues *
fb_node_values_new (FbOverlayKind kind)
{
  FbNodeValues *v = g_new0 (FbNodeValues, 1);
  v->kind = kind;
  v->values = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  return v;
}

void
fb_node_values_free (FbNodeValues *values)
{
  if (values == NULL)
    return;
  g_hash_table_unref (values->values);
  g_free (values);
}

void
fb_node_values_set (FbNodeValues *values, int64_t id, double value)
{
  g_return_if_fail (values != NULL);
  g_hash_table_insert (values->values, g_memdup2 (&id, sizeof id), g_memdup2 (&value, sizeof value));
}

FbOverlayKind
fb_node_values_get_kind (const FbNodeValues *values)
{
  g_return_val_if_fail (values != NULL, FB_OVERLAY_NONE);
  return values->kind;
}

gboolean
fb_node_values_lookup (const FbNodeValues *values, const FbInstr *instr, double *out)
{
  g_return_val_if_fail (values != NULL && instr != NULL, FALSE);
  double sum = 0;
  gboolean any = FALSE;
  const double *p = g_hash_table_lookup (values->values, &instr->id);
  if (p)
    {
      sum += *p;
      any = TRUE;
    }
  for (int i = 0; i < instr->n_prov; i++)
    {
      if (instr->prov[i] == instr->id)
        continue;
      p = g_hash_table_lookup (values->values, &instr->prov[i]);
      if (p)
        {
          sum += *p;
          any = TRUE;
        }
    }
  if (out)
    *out = sum;
  return any;
}

FbNodeValues *
fb_node_values_new_from_cost (FbModule *module, FbOverlayKind kind)
{
  g_return_val_if_fail (module != NULL, NULL);
  FbNodeValues *v = fb_node_values_new (kind);
  for (int c = 0; c < module->n_comps; c++)
    {
      FbComputation *comp = module->comps[c];
      if (comp->is_fusion)
        continue;
      for (FbInstr *i = comp->first; i; i = i->next)
        {
          FbCost cost = fb_cost_instr (i);
          fb_node_values_set (v, i->id, kind == FB_OVERLAY_FLOPS ? cost.flops : cost.bytes);
        }
    }
  return v;
}

/* --------------------------------------------------------------- colours */

void
fb_paint_category_color (FbOpCategory cat, double rgb[3])
{
  static const double table[FB_N_CATEGORIES][3] = {
    [FB_CAT_UNARY]       = { 0.80, 0.90, 0.98 },
    [FB_CAT_BINARY]      = { 0.70, 0.84, 0.96 },
    [FB_CAT_ELEMENTWISE] = { 0.76, 0.88, 0.92 },
    [FB_CAT_MOVEMENT]    = { 0.88, 0.88, 0.88 },
    [FB_CAT_REDUCTION]   = { 0.99, 0.82, 0.62 },
    [FB_CAT_CONTRACTION] = { 0.98, 0.66, 0.60 },
    [FB_CAT_NORM]        = { 0.92, 0.78, 0.94 },
    [FB_CAT_LINALG]      = { 0.95, 0.70, 0.82 },
    [FB_CAT_CONTROL]     = { 0.80, 0.76, 0.96 },
    [FB_CAT_COLLECTIVE]  = { 0.74, 0.92, 0.74 },
    [FB_CAT_LEAF]        = { 0.96, 0.96, 0.84 },
    [FB_CAT_TUPLE]       = { 0.93, 0.93, 0.93 },
    [FB_CAT_RNG]         = { 0.86, 0.96, 0.80 },
    [FB_CAT_OTHER]       = { 0.90, 0.90, 0.90 },
  };
  int c = (int) cat >= 0 && cat < FB_N_CATEGORIES ? (int) cat : FB_CAT_OTHER;
  memcpy (rgb, table[c], sizeof (double) * 3);
}

void
fb_paint_heat_color (double t, double rgb[3])
{
  static const double stops[4][3] = {
    { 0.20, 0.30, 0.70 }, { 0.30, 0.70, 0.75 }, { 1.00, 0.85, 0.25 }, { 0.85, 0.12, 0.10 },
  };
  t = CLAMP (isnan (t) ? 0 : t, 0.0, 1.0) * 3;
  int i = MIN (2, (int) t);
  double f = t - i;
  for (int k = 0; k < 3; k++)
    rgb[k] = stops[i][k] + (stops[i + 1][k] - stops[i][k]) * f;
}

/* ----------------------------------------------------------------- text */

static PangoLayout *
make_text (cairo_t *cr, const char *font)
{
  PangoLayout *pl = pango_cairo_create_layout (cr);
  PangoFontDescription *fd = pango_font_description_from_string (font);
  pango_layout_set_font_description (pl, fd);
  pango_font_description_free (fd);
  return pl;
}

/* Draws @text with its anchor at (@x, @y): @ax, @ay 0 = left/top, 0.5 = centre, 1 = right/bottom. */
static void
text_at (cairo_t *cr, PangoLayout *pl, double x, double y, double ax, double ay, const char *text)
{
  int w, h;
  pango_layout_set_text (pl, text, -1);
  pango_layout_get_pixel_size (pl, &w, &h);
  cairo_move_to (cr, x - ax * w, y - ay * h);
  pango_cairo_show_layout (cr, pl);
}

static void
rounded_rect (cairo_t *cr, double x, double y, double w, double h, double r)
{
  r = MIN (r, MIN (w, h) / 2);
  cairo_new_sub_path (cr);
  cairo_arc (cr, x + w - r, y + r, r, -G_PI / 2, 0);
  cairo_arc (cr, x + w - r, y + h - r, r, 0, G_PI / 2);
  cairo_arc (cr, x + r, y + h - r, r, G_PI / 2, G_PI);
  cairo_arc (cr, x + r, y + r, r, G_PI, 3 * G_PI / 2);
  cairo_close_path (cr);
}

static char *
format_value (FbOverlayKind kind, double v)
{
  switch (kind)
    {
    case FB_OVERLAY_TIME:
      if (v >= 1e9) return g_strdup_printf ("%.2f s", v / 1e9);
      if (v >= 1e6) return g_strdup_printf ("%.2f ms", v / 1e6);
      if (v >= 1e3) return g_strdup_printf ("%.1f µs", v / 1e3);
      return g_strdup_printf ("%.0f ns", v);
    case FB_OVERLAY_BYTES:
      return g_format_size_full ((guint64) MAX (0, v), G_FORMAT_SIZE_IEC_UNITS);
    case FB_OVERLAY_FLOPS:
      if (v >= 1e12) return g_strdup_printf ("%.2f TFLOP", v / 1e12);
      if (v >= 1e9) return g_strdup_printf ("%.2f GFLOP", v / 1e9);
      if (v >= 1e6) return g_strdup_printf ("%.2f MFLOP", v / 1e6);
      if (v >= 1e3) return g_strdup_printf ("%.1f kFLOP", v / 1e3);
      return g_strdup_printf ("%.0f FLOP", v);
    case FB_OVERLAY_ERROR:
      return g_strdup_printf ("%.2e", v);
    case FB_OVERLAY_NONE:
    default:
      return g_strdup_printf ("%g", v);
    }
}

static const char *
overlay_title (FbOverlayKind kind)
{
  switch (kind)
    {
    case FB_OVERLAY_TIME: return "time";
    case FB_OVERLAY_FLOPS: return "FLOPs";
    case FB_OVERLAY_BYTES: return "bytes moved";
    case FB_OVERLAY_ERROR: return "numeric error";
    case FB_OVERLAY_NONE: default: return "";
    }
}

/* --------------------------------------------------------------- graph */

void
fb_graph_paint_options_init (FbGraphPaintOptions *options)
{
  g_return_if_fail (options != NULL);
  memset (options, 0, sizeof *options);
  options->selected = -1;
  options->legend = TRUE;
  options->min_label_px = 5;
}

typedef struct {
  double vmax;
  gboolean log;
} HeatScale;

static double
heat_t (const HeatScale *hs, double v)
{
  if (hs->vmax <= 0)
    return 0;
  if (hs->log)
    return log1p (MAX (0, v)) / log1p (hs->vmax);
  return v / hs->vmax;
}

static void
edge_path (cairo_t *cr, const FbGraphEdge *e, gboolean smooth)
{
  cairo_move_to (cr, e->points[0].x, e->points[0].y);
  for (int k = 1; k < e->n_points; k++)
    {
      const FbPoint *a = &e->points[k - 1], *b = &e->points[k];
      if (e->cut && k == 2)
        {
          /* a cut edge is two stubs */
          cairo_move_to (cr, b->x, b->y);
          continue;
        }
      if (smooth)
        {
          double dy = (b->y - a->y) / 2;
          cairo_curve_to (cr, a->x, a->y + dy, b->x, b->y - dy, b->x, b->y);
        }
      else
        cairo_line_to (cr, b->x, b->y);
    }
}

static void
paint_legend (cairo_t *cr, const FbViewport *vp, const FbGraphLayout *layout,
              const FbNodeValues *overlay, const HeatScale *hs)
{
  g_autoptr (PangoLayout) pl = make_text (cr, "Sans 8");
  double x = 10, y = vp->height - 10;
  if (overlay)
    {
      double w = 160, h = 10;
      cairo_set_source_rgba (cr, 1, 1, 1, 0.85);
      cairo_rectangle (cr, x - 6, y - 50, w + 12, 48);
      cairo_fill (cr);
      for (int i = 0; i < (int) w; i++)
        {
          double rgb[3];
          fb_paint_heat_color (i / w, rgb);
          cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
          cairo_rectangle (cr, x + i, y - 22, 1.5, h);
          cairo_fill (cr);
        }
      cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
      text_at (cr, pl, x, y - 26, 0, 1, overlay_title (fb_node_values_get_kind (overlay)));
      g_autofree char *hi = format_value (fb_node_values_get_kind (overlay), hs->vmax);
      text_at (cr, pl, x, y - 10, 0, 0, "0");
      text_at (cr, pl, x + w, y - 10, 1, 0, hi);
      return;
    }
  gboolean present[FB_N_CATEGORIES] = { FALSE };
  int n = 0;
  for (int i = 0; i < fb_graph_layout_get_n_boxes (layout); i++)
    {
      FbOpCategory c = fb_opcode_category (fb_graph_layout_get_node (layout, i)->instr->opcode);
      if (!present[c])
        n++;
      present[c] = TRUE;
    }
  double row = 13;
  cairo_set_source_rgba (cr, 1, 1, 1, 0.85);
  cairo_rectangle (cr, x - 6, y - n * row - 6, 120, n * row + 8);
  cairo_fill (cr);
  double yy = y - n * row;
  for (int c = 0; c < FB_N_CATEGORIES; c++)
    {
      if (!present[c])
        continue;
      double rgb[3];
      fb_paint_category_color (c, rgb);
      cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
      cairo_rectangle (cr, x, yy + 2, 10, 9);
      cairo_fill_preserve (cr);
      cairo_set_source_rgb (cr, 0.4, 0.4, 0.4);
      cairo_set_line_width (cr, 0.5);
      cairo_stroke (cr);
      cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
      text_at (cr, pl, x + 16, yy, 0, 0, fb_category_name (c));
      yy += row;
    }
}

#define HEAT_LEVELS 32

/* Zoomed far out every box is a few pixels: draw in device space, bends
 * closer than a few pixels dropped, no antialiasing, and one fill per colour
 * instead of one per box. */
static void
paint_overview (cairo_t *cr, const FbGraphLayout *layout, const FbViewport *vp,
                const FbGraphPaintOptions *options, const HeatScale *hs, GArray *vis)
{
  double z = vp->zoom;
  double x0 = vp->x, y0 = vp->y, x1 = vp->x + vp->width / z, y1 = vp->y + vp->height / z;
  cairo_set_antialias (cr, CAIRO_ANTIALIAS_NONE);

  fb_graph_layout_query_edges (layout, x0, y0, x1, y1, vis);
  cairo_set_line_width (cr, 1);
  cairo_set_source_rgba (cr, 0.35, 0.38, 0.45, 0.45);
  for (guint k = 0; k < vis->len; k++)
    {
      const FbGraphEdge *e = fb_graph_layout_get_edge (layout, g_array_index (vis, int, k));
      double lx = (e->points[0].x - vp->x) * z, ly = (e->points[0].y - vp->y) * z;
      cairo_move_to (cr, lx, ly);
      for (int q = 1; q < e->n_points; q++)
        {
          double px = (e->points[q].x - vp->x) * z, py = (e->points[q].y - vp->y) * z;
          if (e->cut && q == 2)
            {
              cairo_move_to (cr, px, py);
              lx = px, ly = py;
              continue;
            }
          if (q < e->n_points - 1 && fabs (px - lx) + fabs (py - ly) < 3)
            continue;
          cairo_line_to (cr, px, py);
          lx = px, ly = py;
        }
      if (k % 1024 == 1023)
        cairo_stroke (cr);
    }
  cairo_stroke (cr);

  g_array_set_size (vis, 0);
  fb_graph_layout_query (layout, x0, y0, x1, y1, vis);
  int n_colours = options->overlay ? HEAT_LEVELS + 1 : FB_N_CATEGORIES;
  for (int c = 0; c < n_colours; c++)
    {
      gboolean any = FALSE;
      for (guint k = 0; k < vis->len; k++)
        {
          const FbGraphNode *n = fb_graph_layout_get_node (layout, g_array_index (vis, int, k));
          int colour;
          if (options->overlay)
            {
              double v;
              colour = fb_node_values_lookup (options->overlay, n->instr, &v)
                       ? (int) (heat_t (hs, v) * (HEAT_LEVELS - 1) + 0.5) : HEAT_LEVELS;
            }
          else
            colour = fb_opcode_category (n->instr->opcode);
          if (colour != c)
            continue;
          double bx = floor ((n->x - n->w / 2 - vp->x) * z), by = floor ((n->y - n->h / 2 - vp->y) * z);
          cairo_rectangle (cr, bx, by, MAX (1.0, ceil (n->w * z)), MAX (1.0, ceil (n->h * z)));
          any = TRUE;
        }
      if (!any)
        continue;
      double rgb[3];
      if (!options->overlay)
        fb_paint_category_color (c, rgb);
      else if (c == HEAT_LEVELS)
        rgb[0] = rgb[1] = rgb[2] = 0.85;
      else
        fb_paint_heat_color ((double) c / (HEAT_LEVELS - 1), rgb);
      /* pale pastels vanish at a pixel or two: darken them a little */
      cairo_set_source_rgb (cr, rgb[0] * 0.8, rgb[1] * 0.8, rgb[2] * 0.8);
      cairo_fill (cr);
    }
  cairo_set_antialias (cr, CAIRO_ANTIALIAS_DEFAULT);
}

void
fb_paint_graph (cairo_t *cr, const FbGraphLayout *layout, const FbViewport *vp,
                const FbGraphPaintOptions *options)
{
  g_return_if_fail (cr != NULL && layout != NULL && vp != NULL && vp->zoom > 0);
  FbGraphPaintOptions defaults;
  if (options == NULL)
    {
      fb_graph_paint_options_init (&defaults);
      options = &defaults;
    }
  double z = vp->zoom;
  double x0 = vp->x, y0 = vp->y, x1 = vp->x + vp->width / z, y1 = vp->y + vp->height / z;
  gboolean labels = 13.0 * z >= MAX (1.0, options->min_label_px);
  gboolean detail = z >= 0.25;

  cairo_save (cr);
  if (!options->skip_background)
    {
      cairo_set_source_rgb (cr, 0.98, 0.98, 0.97);
      cairo_rectangle (cr, 0, 0, vp->width, vp->height);
      cairo_fill (cr);
    }
  cairo_rectangle (cr, 0, 0, vp->width, vp->height);
  cairo_clip (cr);

  HeatScale hs = { 0, options->overlay && fb_node_values_get_kind (options->overlay) != FB_OVERLAY_ERROR };
  if (options->overlay)
    for (int i = 0; i < fb_graph_layout_get_n_boxes (layout); i++)
      {
        double v;
        if (fb_node_values_lookup (options->overlay, fb_graph_layout_get_node (layout, i)->instr, &v))
          hs.vmax = MAX (hs.vmax, v);
      }

  g_autoptr (GArray) vis = g_array_new (FALSE, FALSE, sizeof (int));
  if (z < 0.08)
    {
      paint_overview (cr, layout, vp, options, &hs, vis);
      cairo_restore (cr);
      if (options->legend)
        {
          cairo_save (cr);
          paint_legend (cr, vp, layout, options->overlay, &hs);
          cairo_restore (cr);
        }
      return;
    }
  cairo_scale (cr, z, z);
  cairo_translate (cr, -vp->x, -vp->y);
  g_autoptr (PangoLayout) pl_title = labels ? make_text (cr, "Sans Bold 8") : NULL;
  g_autoptr (PangoLayout) pl_text = labels ? make_text (cr, "Sans 8") : NULL;

  /* cluster frames */
  for (int c = 0; c < fb_graph_layout_get_n_clusters (layout); c++)
    {
      const FbGraphCluster *cl = fb_graph_layout_get_cluster (layout, c);
      if (!cl->expanded || cl->x1 < x0 || cl->x0 > x1 || cl->y1 < y0 || cl->y0 > y1)
        continue;
      rounded_rect (cr, cl->x0, cl->y0, cl->x1 - cl->x0, cl->y1 - cl->y0, 6);
      cairo_set_source_rgba (cr, 0.55, 0.45, 0.85, 0.08);
      cairo_fill_preserve (cr);
      cairo_set_source_rgba (cr, 0.45, 0.35, 0.75, 0.7);
      cairo_set_line_width (cr, MAX (1.0, 0.8 / z));
      cairo_stroke (cr);
      if (labels)
        {
          cairo_set_source_rgb (cr, 0.35, 0.25, 0.6);
          text_at (cr, pl_text, cl->x0 + 4, cl->y0 + 2, 0, 0, cl->label);
        }
    }

  /* edges: one path */
  fb_graph_layout_query_edges (layout, x0, y0, x1, y1, vis);
  cairo_set_line_width (cr, detail ? 1.2 : MAX (1.0, 0.7 / z));
  cairo_set_source_rgba (cr, 0.35, 0.38, 0.45, detail ? 0.9 : 0.5);
  for (guint k = 0; k < vis->len; k++)
    edge_path (cr, fb_graph_layout_get_edge (layout, g_array_index (vis, int, k)), detail);
  cairo_stroke (cr);
  if (detail)
    {
      for (guint k = 0; k < vis->len; k++)
        {
          const FbGraphEdge *e = fb_graph_layout_get_edge (layout, g_array_index (vis, int, k));
          const FbPoint *p = &e->points[e->n_points - 1];
          cairo_move_to (cr, p->x, p->y);
          cairo_line_to (cr, p->x - 3.5, p->y - 7);
          cairo_line_to (cr, p->x + 3.5, p->y - 7);
          cairo_close_path (cr);
        }
      cairo_fill (cr);
    }

  /* nodes */
  g_array_set_size (vis, 0);
  fb_graph_layout_query (layout, x0, y0, x1, y1, vis);
  for (guint k = 0; k < vis->len; k++)
    {
      const FbGraphNode *n = fb_graph_layout_get_node (layout, g_array_index (vis, int, k));
      double rgb[3], v;
      if (options->overlay)
        {
          if (fb_node_values_lookup (options->overlay, n->instr, &v))
            fb_paint_heat_color (heat_t (&hs, v), rgb);
          else
            rgb[0] = rgb[1] = rgb[2] = 0.92;
        }
      else
        fb_paint_category_color (fb_opcode_category (n->instr->opcode), rgb);
      double bx = n->x - n->w / 2, by = n->y - n->h / 2;
      if (detail)
        rounded_rect (cr, bx, by, n->w, n->h, 4);
      else
        cairo_rectangle (cr, bx, by, n->w, n->h);
      cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
      if (!detail)
        {
          cairo_fill (cr);
          continue;
        }
      cairo_fill_preserve (cr);
      gboolean selected = options->selected >= 0 && n->instr->id == options->selected;
      cairo_set_source_rgb (cr, selected ? 0.95 : 0.3, selected ? 0.45 : 0.3, selected ? 0.05 : 0.35);
      cairo_set_line_width (cr, selected ? 3 : (n->collapsed ? 2 : 1));
      cairo_stroke (cr);
      if (n->collapsed)
        {
          /* a second outline marks a cluster that can be expanded */
          rounded_rect (cr, bx + 3, by + 3, n->w - 6, n->h - 6, 3);
          cairo_set_line_width (cr, 0.6);
          cairo_stroke (cr);
        }
      if (labels)
        {
          gboolean dark = options->overlay && (rgb[0] + rgb[1] + rgb[2]) < 1.4;
          cairo_set_source_rgb (cr, dark ? 1 : 0.08, dark ? 1 : 0.08, dark ? 1 : 0.1);
          text_at (cr, pl_title, n->x, by + 4, 0.5, 0, n->title);
          text_at (cr, pl_text, n->x, by + 4 + 13, 0.5, 0, n->subtitle);
          text_at (cr, pl_text, n->x, by + 4 + 26, 0.5, 0, n->name);
        }
    }
  cairo_restore (cr);

  if (options->legend)
    {
      cairo_save (cr);
      paint_legend (cr, vp, layout, options->overlay, &hs);
      cairo_restore (cr);
    }
}

/* --------------------------------------------------------------- axes */

/* A round step (1, 2 or 5 times a power of ten) giving about @n ticks over @span. */
static double
nice_step (double span, int n)
{
  if (span <= 0)
    return 1;
  double raw = span / MAX (1, n);
  double p = pow (10, floor (log10 (raw)));
  double f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static char *
format_ns (double ns)
{
  double a = fabs (ns);
  if (a >= 1e9) return g_strdup_printf ("%.3g s", ns / 1e9);
  if (a >= 1e6) return g_strdup_printf ("%.3g ms", ns / 1e6);
  if (a >= 1e3) return g_strdup_printf ("%.3g µs", ns / 1e3);
  return g_strdup_printf ("%.0f ns", ns);
}

static char *
format_bytes (double b)
{
  return g_format_size_full ((guint64) MAX (0, b), G_FORMAT_SIZE_IEC_UNITS);
}

static void
clear (cairo_t *cr, double width, double height)
{
  cairo_set_source_rgb (cr, 1, 1, 1);
  cairo_rectangle (cr, 0, 0, width, height);
  cairo_fill (cr);
}

static void
name_color (const char *name, double rgb[3])
{
  guint h = g_str_hash (name ? name : "");
  double hue = (h % 360) / 360.0;
  /* hue to a soft rgb */
  for (int k = 0; k < 3; k++)
    {
      double t = fmod (hue + k / 3.0, 1.0);
      double v = t < 1.0 / 6 ? 6 * t : t < 0.5 ? 1 : t < 2.0 / 3 ? (2.0 / 3 - t) * 6 : 0;
      rgb[k] = 0.45 + 0.45 * v;
    }
}

/* -------------------------------------------------------------- timeline */

void
fb_timeline_options_init (FbTimelineOptions *options)
{
  g_return_if_fail (options != NULL);
  memset (options, 0, sizeof *options);
  options->track_height = 22;
  options->selected_span = -1;
}

static int
cmp_track (gconstpointer a, gconstpointer b)
{
  const FbTrack *ta = *(const FbTrack **) a, *tb = *(const FbTrack **) b;
  if (ta->sort_index != tb->sort_index)
    return ta->sort_index < tb->sort_index ? -1 : 1;
  return ta->id < tb->id ? -1 : ta->id > tb->id;
}

#define TIMELINE_GUTTER 130.0
#define TIMELINE_AXIS_H 26.0

/* The options with defaults filled in, and the geometry they give. */
static void
timeline_resolve (FbTrace *trace, double width, const FbTimelineOptions *options, FbTimelineOptions *o,
                  FbTimelineGeometry *g)
{
  if (options)
    *o = *options;
  else
    fb_timeline_options_init (o);
  if (o->track_height <= 0)
    o->track_height = 22;
  gint64 t0 = o->t0_ns, t1 = o->t1_ns;
  if (t1 <= t0 && !fb_trace_get_time_range (trace, &t0, &t1))
    t0 = 0, t1 = 1;
  if (t1 <= t0)
    t1 = t0 + 1;
  g->plot_x = TIMELINE_GUTTER;
  g->plot_w = MAX (10.0, width - TIMELINE_GUTTER - 10);
  g->axis_h = TIMELINE_AXIS_H;
  g->t0 = t0;
  g->t1 = t1;
}

void
fb_timeline_get_geometry (FbTrace *trace, double width, const FbTimelineOptions *options,
                          FbTimelineGeometry *out)
{
  g_return_if_fail (trace != NULL && out != NULL);
  FbTimelineOptions o;
  timeline_resolve (trace, width, options, &o, out);
}

/* Device x and width of a span, clipped to the plot; FALSE when it is
 * entirely outside the visible range. */
static gboolean
timeline_span_x (const FbTimelineGeometry *g, const FbSpan *sp, double *x, double *w)
{
  double scale = g->plot_w / (double) (g->t1 - g->t0);
  double x0 = g->plot_x + (sp->start_ns - g->t0) * scale;
  double x1 = g->plot_x + (sp->end_ns - g->t0) * scale;
  double right = g->plot_x + g->plot_w;
  if (x1 < g->plot_x || x0 > right)
    return FALSE;
  x0 = MAX (x0, g->plot_x);
  x1 = MIN (x1, right);
  *x = x0;
  *w = MAX (0.5, x1 - x0);
  return TRUE;
}

static double
timeline_row_height (const FbTrack *tr, double track_height)
{
  gboolean counter = tr->kind == FB_TRACK_MEMORY || tr->kind == FB_TRACK_COUNTER;
  return counter ? 2 * track_height : track_height * (tr->max_depth + 1);
}

static gboolean
span_runs_any (const FbSpan *sp, const gint64 *ids, guint n)
{
  for (guint i = 0; i < sp->n_instr; i++)
    for (guint k = 0; k < n; k++)
      if (sp->instr_ids[i] == ids[k])
        return TRUE;
  return FALSE;
}

void
fb_paint_timeline (cairo_t *cr, FbTrace *trace, double width, double height,
                   const FbTimelineOptions *options)
{
  g_return_if_fail (cr != NULL && trace != NULL);
  FbTimelineOptions o;
  FbTimelineGeometry geo;
  timeline_resolve (trace, width, options, &o, &geo);
  const double gutter = geo.plot_x, axis_h = geo.axis_h;
  gint64 t0 = geo.t0, t1 = geo.t1;
  double plot_w = geo.plot_w;
  double scale = plot_w / (double) (t1 - t0);

  cairo_save (cr);
  clear (cr, width, height);
  g_autoptr (PangoLayout) pl = make_text (cr, "Sans 8");

  /* axis */
  cairo_set_source_rgb (cr, 0.2, 0.2, 0.2);
  double step = nice_step ((double) (t1 - t0), (int) (plot_w / 90));
  cairo_set_line_width (cr, 1);
  for (double t = ceil (0 / step) * step; t <= (double) (t1 - t0); t += step)
    {
      double x = gutter + t * scale;
      cairo_set_source_rgb (cr, 0.85, 0.85, 0.85);
      cairo_move_to (cr, floor (x) + 0.5, axis_h);
      cairo_line_to (cr, floor (x) + 0.5, height);
      cairo_stroke (cr);
      g_autofree char *s = format_ns (t);
      cairo_set_source_rgb (cr, 0.2, 0.2, 0.2);
      text_at (cr, pl, x, axis_h - 4, 0.5, 1, s);
    }

  guint nt = fb_trace_get_n_tracks (trace);
  g_autofree const FbTrack **tracks = g_new (const FbTrack *, MAX (1, nt));
  for (guint i = 0; i < nt; i++)
    tracks[i] = fb_trace_get_track (trace, i);
  qsort (tracks, nt, sizeof (FbTrack *), cmp_track);
  g_autofree double *row_y = g_new0 (double, MAX (1, nt));

  cairo_rectangle (cr, 0, axis_h, width, height - axis_h);
  cairo_clip (cr);
  double y = axis_h + 4 - o.scroll_y;
  gint64 span_counter = 0;
  for (guint i = 0; i < nt; i++)
    {
      const FbTrack *tr = tracks[i];
      gboolean counter = tr->kind == FB_TRACK_MEMORY || tr->kind == FB_TRACK_COUNTER;
      double h = timeline_row_height (tr, o.track_height);
      row_y[tr->id] = y;
      if (i % 2 == 0)
        {
          cairo_set_source_rgb (cr, 0.965, 0.965, 0.975);
          cairo_rectangle (cr, 0, y, width, h + 4);
          cairo_fill (cr);
        }
      cairo_set_source_rgb (cr, 0.15, 0.15, 0.2);
      pango_layout_set_width (pl, (int) ((gutter - 8) * PANGO_SCALE));
      pango_layout_set_ellipsize (pl, PANGO_ELLIPSIZE_END);
      text_at (cr, pl, 4, y + 3, 0, 0, tr->name ? tr->name : "");
      pango_layout_set_width (pl, -1);
      if (counter && tr->n_samples > 0)
        {
          double vmax = MAX (1e-12, fb_track_get_max_sample (tr));
          cairo_set_source_rgba (cr, 0.2, 0.5, 0.8, 0.5);
          cairo_move_to (cr, gutter, y + h);
          double last = 0;
          for (guint s = 0; s < tr->n_samples; s++)
            {
              double x = gutter + (tr->samples[s].time_ns - t0) * scale;
              x = CLAMP (x, gutter, gutter + plot_w);
              cairo_line_to (cr, x, y + h - last / vmax * h);
              last = tr->samples[s].value;
              cairo_line_to (cr, x, y + h - last / vmax * h);
            }
          cairo_line_to (cr, gutter + plot_w, y + h - last / vmax * h);
          cairo_line_to (cr, gutter + plot_w, y + h);
          cairo_close_path (cr);
          cairo_fill (cr);
        }
      guint first = 0, last = 0;
      if (tr->n_spans > 0)
        fb_track_find_spans (tr, t0, t1, &first, &last);
      for (guint s = first; s < last; s++)
        {
          const FbSpan *sp = &tr->spans[s];
          double sx, sw;
          if (!timeline_span_x (&geo, sp, &sx, &sw))
            continue;
          double sy = y + sp->depth * o.track_height + 1;
          double rgb[3];
          if (sp->kind == FB_SPAN_STEP)
            rgb[0] = 0.75, rgb[1] = 0.78, rgb[2] = 0.82;
          else
            name_color (sp->name, rgb);
          cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
          cairo_rectangle (cr, sx, sy, sw, o.track_height - 2);
          cairo_fill (cr);
          if (o.n_highlight_ids > 0 && span_runs_any (sp, o.highlight_ids, o.n_highlight_ids))
            {
              cairo_set_source_rgb (cr, 0.1, 0.35, 0.85);
              cairo_set_line_width (cr, 2);
              cairo_rectangle (cr, sx, sy, sw, o.track_height - 2);
              cairo_stroke (cr);
            }
          if (span_counter + s == (guint64) o.selected_span)
            {
              cairo_set_source_rgb (cr, 0.95, 0.45, 0.05);
              cairo_set_line_width (cr, 2);
              cairo_rectangle (cr, sx, sy, sw, o.track_height - 2);
              cairo_stroke (cr);
            }
          if (sw > 40)
            {
              cairo_save (cr);
              cairo_rectangle (cr, sx, sy, sw, o.track_height - 2);
              cairo_clip (cr);
              cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
              text_at (cr, pl, sx + 3, sy + 3, 0, 0, sp->name);
              cairo_restore (cr);
            }
        }
      span_counter += tr->n_spans;
      y += h + 4;
    }

  /* flows */
  guint nf = 0;
  const FbFlow *flows = fb_trace_get_flows (trace, &nf);
  cairo_set_source_rgba (cr, 0.3, 0.3, 0.35, 0.6);
  cairo_set_line_width (cr, 1);
  for (guint f = 0; f < nf; f++)
    {
      const FbTrack *a = fb_trace_get_track (trace, flows[f].from_track);
      const FbTrack *b = fb_trace_get_track (trace, flows[f].to_track);
      if (!a || !b || flows[f].from_span >= a->n_spans || flows[f].to_span >= b->n_spans)
        continue;
      const FbSpan *sa = &a->spans[flows[f].from_span], *sb = &b->spans[flows[f].to_span];
      if (sb->start_ns < t0 && sa->end_ns < t0)
        continue;
      if (sa->start_ns > t1)
        continue;
      double ax = gutter + (sa->start_ns - t0) * scale;
      double ay = row_y[a->id] + sa->depth * o.track_height + o.track_height / 2;
      double bx = gutter + (sb->start_ns - t0) * scale;
      double by = row_y[b->id] + sb->depth * o.track_height + o.track_height / 2;
      cairo_move_to (cr, ax, ay);
      cairo_curve_to (cr, ax + 20, ay, bx - 20, by, bx, by);
      cairo_stroke (cr);
      cairo_arc (cr, bx, by, 2.5, 0, 2 * G_PI);
      cairo_fill (cr);
    }
  cairo_restore (cr);
}

/* Tracks in the painter's order, with the top of each row. */
static const FbTrack **
timeline_rows (FbTrace *trace, const FbTimelineOptions *o, const FbTimelineGeometry *g, double **row_top,
               guint *n)
{
  guint nt = fb_trace_get_n_tracks (trace);
  const FbTrack **tracks = g_new (const FbTrack *, MAX (1, nt));
  for (guint i = 0; i < nt; i++)
    tracks[i] = fb_trace_get_track (trace, i);
  qsort (tracks, nt, sizeof (FbTrack *), cmp_track);
  *row_top = g_new0 (double, MAX (1, nt));
  double y = g->axis_h + 4 - o->scroll_y;
  for (guint i = 0; i < nt; i++)
    {
      (*row_top)[i] = y;
      y += timeline_row_height (tracks[i], o->track_height) + 4;
    }
  *n = nt;
  return tracks;
}

gboolean
fb_timeline_hit_test (FbTrace *trace, double width, double height, const FbTimelineOptions *options,
                      double x, double y, guint *track, guint *span, gint64 *index)
{
  g_return_val_if_fail (trace != NULL, FALSE);
  FbTimelineOptions o;
  FbTimelineGeometry g;
  timeline_resolve (trace, width, options, &o, &g);
  if (y < g.axis_h || y >= height || x < g.plot_x || x > g.plot_x + g.plot_w)
    return FALSE;

  guint nt;
  g_autofree double *top = NULL;
  g_autofree const FbTrack **tracks = timeline_rows (trace, &o, &g, &top, &nt);
  gint64 counted = 0;
  for (guint i = 0; i < nt; i++)
    {
      const FbTrack *tr = tracks[i];
      double h = timeline_row_height (tr, o.track_height);
      if (y < top[i] || y >= top[i] + h || tr->n_spans == 0)
        {
          counted += tr->n_spans;
          continue;
        }
      guint depth = (guint) ((y - top[i]) / o.track_height);
      guint first, last;
      fb_track_find_spans (tr, g.t0, g.t1, &first, &last);
      gboolean found = FALSE;
      guint best = 0;
      for (guint s = first; s < last; s++)
        {
          const FbSpan *sp = &tr->spans[s];
          double sx, sw;
          if (sp->depth != depth || !timeline_span_x (&g, sp, &sx, &sw))
            continue;
          double sy = top[i] + sp->depth * o.track_height + 1;
          if (y < sy || y >= sy + o.track_height - 2)
            continue;
          gboolean inside = x >= sx && x <= sx + sw;
          if (!inside && sw < 3)
            inside = fabs (x - (sx + sw / 2)) <= 1.5;
          if (!inside)
            continue;
          found = TRUE;
          best = s;
        }
      if (!found)
        return FALSE;
      if (track)
        *track = tr->id;
      if (span)
        *span = best;
      if (index)
        *index = counted + best;
      return TRUE;
    }
  return FALSE;
}

gboolean
fb_timeline_span_rect (FbTrace *trace, double width, const FbTimelineOptions *options, guint track, guint span,
                       double rect[4])
{
  g_return_val_if_fail (trace != NULL && rect != NULL, FALSE);
  const FbTrack *want = fb_trace_get_track (trace, track);
  if (want == NULL || span >= want->n_spans)
    return FALSE;
  FbTimelineOptions o;
  FbTimelineGeometry g;
  timeline_resolve (trace, width, options, &o, &g);
  guint nt;
  g_autofree double *top = NULL;
  g_autofree const FbTrack **tracks = timeline_rows (trace, &o, &g, &top, &nt);
  for (guint i = 0; i < nt; i++)
    if (tracks[i] == want)
      {
        const FbSpan *sp = &want->spans[span];
        double sx, sw;
        if (!timeline_span_x (&g, sp, &sx, &sw))
          return FALSE;
        rect[0] = sx;
        rect[1] = top[i] + sp->depth * o.track_height + 1;
        rect[2] = sw;
        rect[3] = o.track_height - 2;
        return TRUE;
      }
  return FALSE;
}

/* ---------------------------------------------------------------- memory */

typedef struct { double x0, y0, x1, y1; } Plot;

static Plot
plot_frame (cairo_t *cr, PangoLayout *pl, double width, double height, const char *title,
            double ymax, const char *xlabel)
{
  Plot p = { 70, 34, width - 20, height - 36 };
  cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
  text_at (cr, pl, 10, 10, 0, 0, title);
  double step = nice_step (ymax, 5);
  cairo_set_line_width (cr, 1);
  for (double v = 0; v <= ymax * 1.0001 && ymax > 0; v += step)
    {
      double yy = p.y1 - v / ymax * (p.y1 - p.y0);
      cairo_set_source_rgb (cr, 0.88, 0.88, 0.88);
      cairo_move_to (cr, p.x0, floor (yy) + 0.5);
      cairo_line_to (cr, p.x1, floor (yy) + 0.5);
      cairo_stroke (cr);
      g_autofree char *s = format_bytes (v);
      cairo_set_source_rgb (cr, 0.3, 0.3, 0.3);
      text_at (cr, pl, p.x0 - 4, yy, 1, 0.5, s);
    }
  cairo_set_source_rgb (cr, 0.3, 0.3, 0.3);
  cairo_rectangle (cr, p.x0 + 0.5, p.y0 + 0.5, p.x1 - p.x0, p.y1 - p.y0);
  cairo_stroke (cr);
  text_at (cr, pl, (p.x0 + p.x1) / 2, p.y1 + 18, 0.5, 0, xlabel);
  return p;
}

static void
mark_peak (cairo_t *cr, PangoLayout *pl, double x, double y, const char *text, double r, double g, double b)
{
  cairo_set_source_rgb (cr, r, g, b);
  cairo_arc (cr, x, y, 4, 0, 2 * G_PI);
  cairo_fill (cr);
  text_at (cr, pl, x + 6, y - 2, 0, 1, text);
}

static void
memory_steps (cairo_t *cr, PangoLayout *pl, const Plot *p, const int64_t *live, int n,
              double ymax, const char *what)
{
  if (n <= 0)
    return;
  double dx = (p->x1 - p->x0) / n;
  int peak = 0;
  cairo_move_to (cr, p->x0, p->y1);
  for (int i = 0; i < n; i++)
    {
      double yy = p->y1 - live[i] / ymax * (p->y1 - p->y0);
      cairo_line_to (cr, p->x0 + i * dx, yy);
      cairo_line_to (cr, p->x0 + (i + 1) * dx, yy);
      if (live[i] > live[peak])
        peak = i;
    }
  cairo_line_to (cr, p->x1, p->y1);
  cairo_close_path (cr);
  cairo_set_source_rgba (cr, 0.25, 0.5, 0.85, 0.35);
  cairo_fill_preserve (cr);
  cairo_set_source_rgb (cr, 0.15, 0.35, 0.7);
  cairo_set_line_width (cr, 1.2);
  cairo_stroke (cr);
  g_autofree char *b = format_bytes (live[peak]);
  g_autofree char *s = g_strdup_printf ("%s peak %s at #%d", what, b, peak);
  mark_peak (cr, pl, p->x0 + (peak + 0.5) * dx, p->y1 - live[peak] / ymax * (p->y1 - p->y0), s, 0.75, 0.1, 0.1);
}

void
fb_paint_memory_curve (cairo_t *cr, const int64_t *live_bytes, int n, const char *title,
                       double width, double height)
{
  g_return_if_fail (cr != NULL && (live_bytes != NULL || n == 0));
  cairo_save (cr);
  clear (cr, width, height);
  g_autoptr (PangoLayout) pl = make_text (cr, "Sans 8");
  double ymax = 1;
  for (int i = 0; i < n; i++)
    ymax = MAX (ymax, (double) live_bytes[i]);
  ymax *= 1.1;
  Plot p = plot_frame (cr, pl, width, height, title ? title : "live bytes", ymax, "schedule position");
  memory_steps (cr, pl, &p, live_bytes, n, ymax, "plan");
  cairo_restore (cr);
}

void
fb_paint_memory (cairo_t *cr, const FbBufferPlan *plan, FbTrace *trace, double width, double height)
{
  g_return_if_fail (cr != NULL && (plan != NULL || trace != NULL));
  const FbTrack *mem = NULL;
  for (guint i = 0; trace && i < fb_trace_get_n_tracks (trace) && !mem; i++)
    {
      const FbTrack *t = fb_trace_get_track (trace, i);
      if (t->kind == FB_TRACK_MEMORY && t->n_samples > 0)
        mem = t;
    }
  cairo_save (cr);
  clear (cr, width, height);
  g_autoptr (PangoLayout) pl = make_text (cr, "Sans 8");
  double ymax = 1;
  if (plan)
    for (int i = 0; i < plan->n_positions; i++)
      ymax = MAX (ymax, (double) plan->live_bytes[i]);
  if (mem)
    ymax = MAX (ymax, fb_track_get_max_sample (mem));
  ymax *= 1.1;
  const char *title = plan && mem ? "live bytes: static plan (blue) and measured (green)"
                      : plan ? "live bytes of the static buffer plan" : "measured live bytes";
  Plot p = plot_frame (cr, pl, width, height, title, ymax,
                       plan ? "schedule position" : "time");
  if (plan)
    memory_steps (cr, pl, &p, plan->live_bytes, plan->n_positions, ymax, "plan");
  if (mem)
    {
      gint64 t0 = mem->samples[0].time_ns, t1 = mem->samples[mem->n_samples - 1].time_ns;
      double sc = (p.x1 - p.x0) / (double) MAX (1, t1 - t0);
      guint peak = 0;
      cairo_set_source_rgb (cr, 0.1, 0.6, 0.3);
      cairo_set_line_width (cr, 1.5);
      for (guint s = 0; s < mem->n_samples; s++)
        {
          double x = p.x0 + (mem->samples[s].time_ns - t0) * sc;
          double yy = p.y1 - mem->samples[s].value / ymax * (p.y1 - p.y0);
          if (s == 0)
            cairo_move_to (cr, x, yy);
          else
            cairo_line_to (cr, x, yy);
          if (mem->samples[s].value > mem->samples[peak].value)
            peak = s;
        }
      cairo_stroke (cr);
      g_autofree char *b = format_bytes (mem->samples[peak].value);
      g_autofree char *t = format_ns ((double) (mem->samples[peak].time_ns - t0));
      g_autofree char *s = g_strdup_printf ("measured peak %s at %s", b, t);
      mark_peak (cr, pl, p.x0 + (mem->samples[peak].time_ns - t0) * sc,
                 p.y1 - mem->samples[peak].value / ymax * (p.y1 - p.y0), s, 0.1, 0.5, 0.2);
    }
  cairo_restore (cr);
}

/* ------------------------------------------------------------ throughput */

void
fb_paint_throughput (cairo_t *cr, const FbThroughputItem *items, int n,
                     const char *a_name, const char *b_name, const char *unit,
                     double width, double height)
{
  g_return_if_fail (cr != NULL && (items != NULL || n == 0));
  cairo_save (cr);
  clear (cr, width, height);
  g_autoptr (PangoLayout) pl = make_text (cr, "Sans 9");
  a_name = a_name ? a_name : "A";
  b_name = b_name ? b_name : "B";
  unit = unit ? unit : "";
  double vmax = 0;
  for (int i = 0; i < n; i++)
    vmax = MAX (vmax, MAX (items[i].a, items[i].b));
  if (vmax <= 0)
    vmax = 1;
  double label_w = 140, ratio_w = 80, top = 40;
  double bar_x0 = label_w, bar_w = MAX (20.0, width - label_w - ratio_w - 20);
  double row = n > 0 ? MIN (60.0, (height - top - 10) / n) : 60;
  double bh = row * 0.32;

  cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
  g_autofree char *title = g_strdup_printf ("throughput (%s): %s vs %s", unit, a_name, b_name);
  text_at (cr, pl, 10, 10, 0, 0, title);
  cairo_set_source_rgb (cr, 0.35, 0.55, 0.85);
  cairo_rectangle (cr, width - 200, 12, 10, 10);
  cairo_fill (cr);
  cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
  text_at (cr, pl, width - 186, 10, 0, 0, a_name);
  cairo_set_source_rgb (cr, 0.95, 0.6, 0.2);
  cairo_rectangle (cr, width - 110, 12, 10, 10);
  cairo_fill (cr);
  cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
  text_at (cr, pl, width - 96, 10, 0, 0, b_name);

  for (int i = 0; i < n; i++)
    {
      double y = top + i * row;
      cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
      text_at (cr, pl, label_w - 8, y + row * 0.4, 1, 0.5, items[i].label ? items[i].label : "");
      const double vals[2] = { items[i].a, items[i].b };
      for (int k = 0; k < 2; k++)
        {
          double by = y + row * 0.08 + k * (bh + 2);
          if (vals[k] <= 0)
            {
              cairo_set_source_rgb (cr, 0.5, 0.5, 0.5);
              text_at (cr, pl, bar_x0 + 4, by + bh / 2, 0, 0.5, "n/a");
              continue;
            }
          double w = vals[k] / vmax * bar_w;
          if (k == 0)
            cairo_set_source_rgb (cr, 0.35, 0.55, 0.85);
          else
            cairo_set_source_rgb (cr, 0.95, 0.6, 0.2);
          cairo_rectangle (cr, bar_x0, by, w, bh);
          cairo_fill (cr);
          g_autofree char *s = g_strdup_printf ("%.3g", vals[k]);
          cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
          text_at (cr, pl, bar_x0 + w + 4, by + bh / 2, 0, 0.5, s);
        }
      if (items[i].a > 0 && items[i].b > 0)
        {
          g_autofree char *r = g_strdup_printf ("×%.2f", items[i].b / items[i].a);
          double ratio = items[i].b / items[i].a;
          cairo_set_source_rgb (cr, ratio >= 1 ? 0.1 : 0.7, ratio >= 1 ? 0.5 : 0.1, 0.1);
          text_at (cr, pl, width - 10, y + row * 0.4, 1, 0.5, r);
        }
    }
  cairo_restore (cr);
}

/* -------------------------------------------------------------- roofline */

void
fb_paint_roofline (cairo_t *cr, const FbRooflinePoint *points, int n,
                   double peak_flops_per_s, double peak_bytes_per_s,
                   double width, double height)
{
  g_return_if_fail (cr != NULL && (points != NULL || n == 0));
  cairo_save (cr);
  clear (cr, width, height);
  g_autoptr (PangoLayout) pl = make_text (cr, "Sans 8");
  double imin = 1e-2, imax = 1e3, fmin = 1e6, fmax = MAX (1e9, peak_flops_per_s * 2);
  for (int i = 0; i < n; i++)
    {
      if (points[i].intensity > 0)
        {
          imin = MIN (imin, points[i].intensity / 2);
          imax = MAX (imax, points[i].intensity * 2);
        }
      if (points[i].flops_per_s > 0)
        {
          fmin = MIN (fmin, points[i].flops_per_s / 2);
          fmax = MAX (fmax, points[i].flops_per_s * 2);
        }
    }
  Plot p = { 70, 34, width - 20, height - 36 };
  double lx0 = log10 (imin), lx1 = log10 (imax), ly0 = log10 (fmin), ly1 = log10 (fmax);
#define RX(v) (p.x0 + (log10 (v) - lx0) / (lx1 - lx0) * (p.x1 - p.x0))
#define RY(v) (p.y1 - (log10 (v) - ly0) / (ly1 - ly0) * (p.y1 - p.y0))
  cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
  text_at (cr, pl, 10, 10, 0, 0, "roofline: achieved FLOP/s against arithmetic intensity");
  cairo_set_line_width (cr, 1);
  for (double e = ceil (lx0); e <= lx1; e++)
    {
      double x = RX (pow (10, e));
      cairo_set_source_rgb (cr, 0.9, 0.9, 0.9);
      cairo_move_to (cr, x, p.y0); cairo_line_to (cr, x, p.y1); cairo_stroke (cr);
      g_autofree char *s = g_strdup_printf ("%g", pow (10, e));
      cairo_set_source_rgb (cr, 0.3, 0.3, 0.3);
      text_at (cr, pl, x, p.y1 + 4, 0.5, 0, s);
    }
  for (double e = ceil (ly0); e <= ly1; e++)
    {
      double y = RY (pow (10, e));
      cairo_set_source_rgb (cr, 0.9, 0.9, 0.9);
      cairo_move_to (cr, p.x0, y); cairo_line_to (cr, p.x1, y); cairo_stroke (cr);
      g_autofree char *s = g_strdup_printf ("1e%.0f", e);
      cairo_set_source_rgb (cr, 0.3, 0.3, 0.3);
      text_at (cr, pl, p.x0 - 4, y, 1, 0.5, s);
    }
  cairo_rectangle (cr, p.x0, p.y0, p.x1 - p.x0, p.y1 - p.y0);
  cairo_stroke (cr);
  text_at (cr, pl, (p.x0 + p.x1) / 2, p.y1 + 18, 0.5, 0, "FLOP per byte");
  if (peak_flops_per_s > 0 && peak_bytes_per_s > 0)
    {
      double ridge = peak_flops_per_s / peak_bytes_per_s;
      cairo_save (cr);
      cairo_rectangle (cr, p.x0, p.y0, p.x1 - p.x0, p.y1 - p.y0);
      cairo_clip (cr);
      cairo_set_source_rgb (cr, 0.75, 0.15, 0.1);
      cairo_set_line_width (cr, 2);
      cairo_move_to (cr, RX (imin), RY (MAX (fmin, imin * peak_bytes_per_s)));
      cairo_line_to (cr, RX (ridge), RY (peak_flops_per_s));
      cairo_line_to (cr, RX (imax), RY (peak_flops_per_s));
      cairo_stroke (cr);
      cairo_restore (cr);
      g_autofree char *s = g_strdup_printf ("peak %.3g FLOP/s, %.3g B/s", peak_flops_per_s, peak_bytes_per_s);
      cairo_set_source_rgb (cr, 0.75, 0.15, 0.1);
      text_at (cr, pl, p.x1 - 4, RY (peak_flops_per_s) - 2, 1, 1, s);
    }
  for (int i = 0; i < n; i++)
    {
      if (points[i].intensity <= 0 || points[i].flops_per_s <= 0)
        continue;
      double x = RX (points[i].intensity), y = RY (points[i].flops_per_s);
      cairo_set_source_rgb (cr, 0.15, 0.35, 0.75);
      cairo_arc (cr, x, y, 3.5, 0, 2 * G_PI);
      cairo_fill (cr);
      if (points[i].label && n <= 40)
        {
          cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
          text_at (cr, pl, x + 5, y, 0, 0.5, points[i].label);
        }
    }
#undef RX
#undef RY
  cairo_restore (cr);
}
