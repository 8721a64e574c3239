/* SPDX-License-Identifier: MIT
 *
 * The diff view: what one pass did to the graph, in one picture. The after
 * graph is laid out from the before graph's positions (by provenance), so
 * whatever the pass did not touch stays where it was. Added nodes are
 * green, nodes whose attributes or operands changed are amber, removed
 * nodes are drawn in red as ghosts at their old places, and each new
 * fusion gets a frame around its members. A summary line gives the kernel
 * count and bytes moved before and after.
 */
#include <math.h>
#include <string.h>

#include <pango/pangocairo.h>

#include "fb-paint.h"

struct _FbDiffView {
  FbModule      *before, *after;
  FbGraphLayout *before_layout;
  gboolean       own_before_layout;
  FbGraphLayout *layout;
  GHashTable    *added, *removed, *changed, *fused;   /* sets of int64 ids */
  char          *summary;
};

static GHashTable *
id_set (const GArray *ids)
{
  GHashTable *set = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  for (guint i = 0; ids && i < ids->len; i++)
    {
      int64_t id = g_array_index (ids, int64_t, i);
      g_hash_table_add (set, g_memdup2 (&id, sizeof id));
    }
  return set;
}

static gboolean
any_id_in (GHashTable *set, const FbInstr *instr)
{
  if (g_hash_table_contains (set, &instr->id))
    return TRUE;
  for (int i = 0; i < instr->n_prov; i++)
    if (g_hash_table_contains (set, &instr->prov[i]))
      return TRUE;
  return FALSE;
}

static gboolean
all_ids_in (GHashTable *set, const FbInstr *instr)
{
  if (instr->n_prov == 0)
    return g_hash_table_contains (set, &instr->id);
  for (int i = 0; i < instr->n_prov; i++)
    if (!g_hash_table_contains (set, &instr->prov[i]))
      return FALSE;
  return TRUE;
}

static char *
make_summary (const char *pass_name, FbModule *before, FbModule *after)
{
  FbStats sb, sa;
  fb_stats_compute (before, &sb);
  fb_stats_compute (after, &sa);
  GString *s = g_string_new (pass_name ? pass_name : "diff");
  g_string_append_printf (s, ": %d → %d kernels", sb.kernels, sa.kernels);
  if (sb.bytes > 0)
    {
      double pct = (sa.bytes - sb.bytes) / sb.bytes * 100;
      if (fabs (pct) < 0.5)
        g_string_append (s, ", bytes moved unchanged");
      else
        g_string_append_printf (s, ", %s%.0f%% bytes moved", pct < 0 ? "−" : "+", fabs (pct));
    }
  if (sb.instructions != sa.instructions)
    g_string_append_printf (s, ", %d → %d instructions", sb.instructions, sa.instructions);
  return g_string_free (s, FALSE);
}

FbDiffView *
fb_diff_view_new (FbModule *before, FbModule *after, const FbDiff *diff,
                  const char *pass_name, const FbGraphLayout *before_layout,
                  const FbGraphLayoutOptions *options)
{
  g_return_val_if_fail (before != NULL && after != NULL, NULL);
  g_return_val_if_fail (before->entry != NULL && after->entry != NULL, NULL);

  FbDiffView *v = g_new0 (FbDiffView, 1);
  v->before = before;
  v->after = after;
  FbDiff *own_diff = NULL;
  if (diff == NULL)
    diff = own_diff = fb_diff_modules (before, after);
  v->added = id_set (diff->added);
  v->removed = id_set (diff->removed);
  v->changed = id_set (diff->changed);
  v->fused = id_set (diff->fused);
  if (own_diff)
    fb_diff_free (own_diff);

  if (before_layout && fb_graph_layout_get_computation (before_layout) == before->entry)
    v->before_layout = (FbGraphLayout *) before_layout;
  else
    {
      v->before_layout = fb_graph_layout_new (before->entry, NULL, options);
      v->own_before_layout = TRUE;
    }
  v->layout = fb_graph_layout_new (after->entry, v->before_layout, options);
  v->summary = make_summary (pass_name, before, after);
  return v;
}

FbDiffView *
fb_diff_view_new_from_snapshots (const FbSnapshot *before, const FbSnapshot *after,
                                 const FbGraphLayout *before_layout,
                                 const FbGraphLayoutOptions *options)
{
  g_return_val_if_fail (before != NULL && after != NULL, NULL);
  g_return_val_if_fail (before->module != NULL && after->module != NULL, NULL);
  return fb_diff_view_new (before->module, after->module, after->diff,
                           after->pass ? after->pass->name : "input", before_layout, options);
}

void
fb_diff_view_free (FbDiffView *v)
{
  if (v == NULL)
    return;
  if (v->own_before_layout)
    fb_graph_layout_free (v->before_layout);
  fb_graph_layout_free (v->layout);
  g_hash_table_unref (v->added);
  g_hash_table_unref (v->removed);
  g_hash_table_unref (v->changed);
  g_hash_table_unref (v->fused);
  g_free (v->summary);
  g_free (v);
}

const FbGraphLayout *
fb_diff_view_get_layout (const FbDiffView *v)
{
  g_return_val_if_fail (v != NULL, NULL);
  return v->layout;
}

const FbGraphLayout *
fb_diff_view_get_before_layout (const FbDiffView *v)
{
  g_return_val_if_fail (v != NULL, NULL);
  return v->before_layout;
}

const char *
fb_diff_view_get_summary (const FbDiffView *v)
{
  g_return_val_if_fail (v != NULL, NULL);
  return v->summary;
}

void
fb_diff_view_get_counts (const FbDiffView *v, int *added, int *removed, int *changed, int *fused)
{
  g_return_if_fail (v != NULL);
  if (added) *added = g_hash_table_size (v->added);
  if (removed) *removed = g_hash_table_size (v->removed);
  if (changed) *changed = g_hash_table_size (v->changed);
  if (fused) *fused = g_hash_table_size (v->fused);
}

FbDiffState
fb_diff_view_get_state (const FbDiffView *v, const FbInstr *instr)
{
  g_return_val_if_fail (v != NULL && instr != NULL, FB_DIFF_SAME);
  if (g_hash_table_contains (v->added, &instr->id) && all_ids_in (v->added, instr))
    return FB_DIFF_ADDED;
  if (any_id_in (v->fused, instr))
    return FB_DIFF_FUSED;
  if (any_id_in (v->changed, instr) || g_hash_table_contains (v->added, &instr->id))
    return FB_DIFF_CHANGED;
  return FB_DIFF_SAME;
}

static void
state_color (FbDiffState st, double rgb[3])
{
  static const double c[][3] = {
    [FB_DIFF_SAME] = { 0.5, 0.5, 0.5 },
    [FB_DIFF_ADDED] = { 0.15, 0.65, 0.25 },
    [FB_DIFF_REMOVED] = { 0.85, 0.15, 0.12 },
    [FB_DIFF_CHANGED] = { 0.95, 0.65, 0.05 },
    [FB_DIFF_FUSED] = { 0.25, 0.35, 0.85 },
  };
  memcpy (rgb, c[st], sizeof c[st]);
}

static void
paint_ghosts (cairo_t *cr, const FbDiffView *v, const FbViewport *vp)
{
  const FbGraphLayout *bl = v->before_layout;
  double x0 = vp->x, y0 = vp->y, x1 = vp->x + vp->width / vp->zoom, y1 = vp->y + vp->height / vp->zoom;
  g_autoptr (GArray) vis = g_array_new (FALSE, FALSE, sizeof (int));
  fb_graph_layout_query (bl, x0, y0, x1, y1, vis);
  gboolean labels = 13 * vp->zoom >= 5;
  PangoLayout *pl = NULL;
  cairo_save (cr);
  cairo_scale (cr, vp->zoom, vp->zoom);
  cairo_translate (cr, -vp->x, -vp->y);
  if (labels)
    {
      pl = pango_cairo_create_layout (cr);
      PangoFontDescription *fd = pango_font_description_from_string ("Sans 8");
      pango_layout_set_font_description (pl, fd);
      pango_font_description_free (fd);
    }
  double dash[] = { 4, 3 };
  for (guint k = 0; k < vis->len; k++)
    {
      const FbGraphNode *n = fb_graph_layout_get_node (bl, g_array_index (vis, int, k));
      if (!all_ids_in (v->removed, n->instr))
        continue;
      double bx = n->x - n->w / 2, by = n->y - n->h / 2;
      cairo_rectangle (cr, bx, by, n->w, n->h);
      cairo_set_source_rgba (cr, 0.95, 0.6, 0.6, 0.35);
      cairo_fill_preserve (cr);
      cairo_set_source_rgba (cr, 0.85, 0.15, 0.12, 0.8);
      cairo_set_line_width (cr, 1.5);
      cairo_set_dash (cr, dash, 2, 0);
      cairo_stroke (cr);
      cairo_set_dash (cr, NULL, 0, 0);
      if (pl)
        {
          int w, h;
          cairo_set_source_rgba (cr, 0.6, 0.1, 0.1, 0.8);
          pango_layout_set_text (pl, n->name, -1);
          pango_layout_get_pixel_size (pl, &w, &h);
          cairo_move_to (cr, n->x - w / 2.0, n->y - h / 2.0);
          pango_cairo_show_layout (cr, pl);
        }
    }
  g_clear_object (&pl);
  cairo_restore (cr);
}

static void
paint_marks (cairo_t *cr, const FbDiffView *v, const FbViewport *vp)
{
  const FbGraphLayout *l = v->layout;
  double x0 = vp->x, y0 = vp->y, x1 = vp->x + vp->width / vp->zoom, y1 = vp->y + vp->height / vp->zoom;
  cairo_save (cr);
  cairo_scale (cr, vp->zoom, vp->zoom);
  cairo_translate (cr, -vp->x, -vp->y);
  /* frames around new fusions (expanded) or their collapsed node */
  double dash[] = { 6, 3 };
  for (int c = 0; c < fb_graph_layout_get_n_clusters (l); c++)
    {
      const FbGraphCluster *cl = fb_graph_layout_get_cluster (l, c);
      if (!any_id_in (v->fused, cl->instr) || cl->x1 < x0 || cl->x0 > x1 || cl->y1 < y0 || cl->y0 > y1)
        continue;
      cairo_rectangle (cr, cl->x0 - 4, cl->y0 - 4, cl->x1 - cl->x0 + 8, cl->y1 - cl->y0 + 8);
      cairo_set_source_rgba (cr, 0.25, 0.35, 0.85, 0.9);
      cairo_set_line_width (cr, MAX (2.0, 1.5 / vp->zoom));
      cairo_set_dash (cr, dash, 2, 0);
      cairo_stroke (cr);
      cairo_set_dash (cr, NULL, 0, 0);
    }
  g_autoptr (GArray) vis = g_array_new (FALSE, FALSE, sizeof (int));
  fb_graph_layout_query (l, x0, y0, x1, y1, vis);
  for (guint k = 0; k < vis->len; k++)
    {
      const FbGraphNode *n = fb_graph_layout_get_node (l, g_array_index (vis, int, k));
      FbDiffState st = fb_diff_view_get_state (v, n->instr);
      if (st == FB_DIFF_SAME || (st == FB_DIFF_FUSED && !n->collapsed && n->cluster >= 0))
        continue;
      double rgb[3];
      state_color (st, rgb);
      cairo_rectangle (cr, n->x - n->w / 2 - 2, n->y - n->h / 2 - 2, n->w + 4, n->h + 4);
      cairo_set_source_rgba (cr, rgb[0], rgb[1], rgb[2], 0.22);
      cairo_fill_preserve (cr);
      cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
      cairo_set_line_width (cr, MAX (2.5, 1.5 / vp->zoom));
      cairo_stroke (cr);
    }
  cairo_restore (cr);
}

void
fb_paint_diff_banner (cairo_t *cr, const FbDiffView *v, const FbViewport *vp)
{
  g_return_if_fail (cr != NULL && v != NULL && vp != NULL);
  g_autoptr (PangoLayout) pl = pango_cairo_create_layout (cr);
  PangoFontDescription *fd = pango_font_description_from_string ("Sans Bold 10");
  pango_layout_set_font_description (pl, fd);
  pango_font_description_free (fd);
  int added, removed, changed, fused;
  fb_diff_view_get_counts (v, &added, &removed, &changed, &fused);
  g_autofree char *text = g_strdup_printf ("%s   (+%d added, −%d removed, %d changed, %d fused)",
                                           v->summary, added, removed, changed, fused);
  pango_layout_set_text (pl, text, -1);
  int w, h;
  pango_layout_get_pixel_size (pl, &w, &h);
  cairo_set_source_rgba (cr, 1, 1, 1, 0.9);
  cairo_rectangle (cr, 0, 0, vp->width, h + 12);
  cairo_fill (cr);
  cairo_set_source_rgb (cr, 0.1, 0.1, 0.15);
  cairo_move_to (cr, 10, 6);
  pango_cairo_show_layout (cr, pl);
  /* key */
  static const char *names[] = { NULL, "added", "removed", "changed", "fused" };
  double x = MAX (10.0 + w + 20, vp->width - 330);
  fd = pango_font_description_from_string ("Sans 8");
  pango_layout_set_font_description (pl, fd);
  pango_font_description_free (fd);
  if (x + 320 > vp->width)
    return;
  for (int s = FB_DIFF_ADDED; s <= FB_DIFF_FUSED; s++)
    {
      double rgb[3];
      state_color (s, rgb);
      cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
      cairo_rectangle (cr, x, 9, 10, 10);
      cairo_fill (cr);
      cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
      pango_layout_set_text (pl, names[s], -1);
      cairo_move_to (cr, x + 14, 7);
      pango_cairo_show_layout (cr, pl);
      x += 78;
    }
}

void
fb_paint_diff (cairo_t *cr, const FbDiffView *v, const FbViewport *vp,
               const FbGraphPaintOptions *options)
{
  g_return_if_fail (cr != NULL && v != NULL && vp != NULL && vp->zoom > 0);
  FbGraphPaintOptions o;
  if (options)
    o = *options;
  else
    fb_graph_paint_options_init (&o);
  cairo_save (cr);
  if (!o.skip_background)
    {
      cairo_set_source_rgb (cr, 0.98, 0.98, 0.97);
      cairo_rectangle (cr, 0, 0, vp->width, vp->height);
      cairo_fill (cr);
    }
  cairo_rectangle (cr, 0, 0, vp->width, vp->height);
  cairo_clip (cr);
  paint_ghosts (cr, v, vp);
  o.skip_background = TRUE;
  fb_paint_graph (cr, v->layout, vp, &o);
  paint_marks (cr, v, vp);
  if (o.legend)
    fb_paint_diff_banner (cr, v, vp);
  cairo_restore (cr);
}
