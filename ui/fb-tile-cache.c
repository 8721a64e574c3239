/* SPDX-License-Identifier: MIT
 *
 * Tiles are addressed by their column and row in device space at the
 * cache's zoom: tile (i, j) shows the device square from (i, j) * TILE, so
 * the grid stays put while the view pans. The view's origin is rounded to
 * whole device pixels, which keeps tiles on the pixel grid (no resampling,
 * no seams). With a scale of 1 a tile is a Cairo node that paints one image
 * surface, which a software renderer composites directly; on a scaled
 * display it is a texture with every device pixel.
 */
#include "fb-tile-cache.h"

#include <math.h>

/* Tiles kept painted around the view, in tiles, on every side. */
#define RING 2
/* Each tile is painted through a view this much larger on every side, so
 * that what the painter culls by its box (a stroke, an arrowhead) is not
 * cut off at a tile's edge. */
#define BLEED 16

struct _FbTileCache
{
  FbTilePaintFunc paint;
  gpointer        paint_data;
  GHashTable     *tiles;        /* gint64 key → GskRenderNode */
  double          zoom;
  int             scale;
  gboolean        shown;        /* a view was shown since the last clear */
  int             i0, j0, i1, j1; /* tiles the last view showed, inclusive */
  guint           n_painted;
};

/* Column and row packed into one 64-bit key. */
static gint64
tile_key (int i, int j)
{
  return (gint64) (((guint64) (guint32) i << 32) | (guint32) j);
}

static gint64 *
key_new (int i, int j)
{
  gint64 *key = g_new (gint64, 1);
  *key = tile_key (i, j);
  return key;
}

FbTileCache *
fb_tile_cache_new (FbTilePaintFunc paint, gpointer user_data)
{
  g_return_val_if_fail (paint != NULL, NULL);
  FbTileCache *cache = g_new0 (FbTileCache, 1);
  cache->paint = paint;
  cache->paint_data = user_data;
  cache->tiles = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, (GDestroyNotify) gsk_render_node_unref);
  cache->scale = 1;
  return cache;
}

void
fb_tile_cache_free (FbTileCache *cache)
{
  if (cache == NULL)
    return;
  g_hash_table_unref (cache->tiles);
  g_free (cache);
}

void
fb_tile_cache_clear (FbTileCache *cache)
{
  g_return_if_fail (cache != NULL);
  g_hash_table_remove_all (cache->tiles);
  cache->shown = FALSE;
}

static void
free_surface (gpointer data)
{
  cairo_surface_destroy (data);
}

/* Paints tile (@i, @j); NULL when Cairo could not make its surface. */
static GskRenderNode *
paint_tile (FbTileCache *cache, int i, int j)
{
  int px = FB_TILE_SIZE * cache->scale;
  FbViewport tvp = {
    .x = ((double) i * FB_TILE_SIZE - BLEED) / cache->zoom,
    .y = ((double) j * FB_TILE_SIZE - BLEED) / cache->zoom,
    .zoom = cache->zoom,
    .width = FB_TILE_SIZE + 2 * BLEED,
    .height = FB_TILE_SIZE + 2 * BLEED,
  };
  cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, px, px);
  cairo_t *cr = cairo_create (surface);
  cairo_scale (cr, cache->scale, cache->scale);
  cairo_translate (cr, -BLEED, -BLEED);
  cache->paint (cr, &tvp, cache->paint_data);
  cairo_destroy (cr);
  cairo_surface_flush (surface);
  cache->n_painted++;
  if (cairo_surface_status (surface) != CAIRO_STATUS_SUCCESS)
    {
      cairo_surface_destroy (surface);
      return NULL;
    }
  graphene_rect_t bounds = GRAPHENE_RECT_INIT (0, 0, FB_TILE_SIZE, FB_TILE_SIZE);
  if (cache->scale == 1)
    {
      GskRenderNode *node = gsk_cairo_node_new (&bounds);
      cairo_t *ncr = gsk_cairo_node_get_draw_context (node);
      cairo_set_source_surface (ncr, surface, 0, 0);
      cairo_paint (ncr);
      cairo_destroy (ncr);
      cairo_surface_destroy (surface);
      return node;
    }
  int stride = cairo_image_surface_get_stride (surface);
  g_autoptr (GBytes) bytes = g_bytes_new_with_free_func (cairo_image_surface_get_data (surface),
                                                         (gsize) stride * px, free_surface, surface);
  g_autoptr (GdkTexture) texture = gdk_memory_texture_new (px, px, GDK_MEMORY_DEFAULT, bytes, stride);
  return gsk_texture_node_new (texture, &bounds);
}

static GskRenderNode *
ensure_tile (FbTileCache *cache, int i, int j)
{
  gint64 key = tile_key (i, j);
  GskRenderNode *node = g_hash_table_lookup (cache->tiles, &key);
  if (node == NULL)
    {
      /* A tile Cairo could not paint stays empty rather than being tried
       * again on every frame. */
      node = paint_tile (cache, i, j);
      if (node == NULL)
        node = gsk_container_node_new (NULL, 0);
      g_hash_table_insert (cache->tiles, key_new (i, j), node);
    }
  return node;
}

static gboolean
is_far (gpointer key, gpointer value, gpointer user_data)
{
  FbTileCache *cache = user_data;
  guint64 k = (guint64) *(gint64 *) key;
  int i = (gint32) (guint32) (k >> 32), j = (gint32) (guint32) k;
  return i < cache->i0 - RING - 1 || i > cache->i1 + RING + 1 || j < cache->j0 - RING - 1 || j > cache->j1 + RING + 1;
}

void
fb_tile_cache_snapshot (FbTileCache *cache, GtkSnapshot *snapshot, const FbViewport *vp, int scale)
{
  g_return_if_fail (cache != NULL && snapshot != NULL && vp != NULL && vp->zoom > 0);
  scale = MAX (scale, 1);
  if (vp->zoom != cache->zoom || scale != cache->scale)
    {
      fb_tile_cache_clear (cache);
      cache->zoom = vp->zoom;
      cache->scale = scale;
    }
  /* The view's origin in device space, on the device pixel grid. */
  double ox = round (vp->x * vp->zoom * scale) / scale;
  double oy = round (vp->y * vp->zoom * scale) / scale;
  /* Far outside any tile grid (or not a number): nothing to show. */
  if (!(fabs (ox) < 1e9 && fabs (oy) < 1e9 && vp->width < 1e5 && vp->height < 1e5))
    return;
  cache->i0 = (int) floor (ox / FB_TILE_SIZE);
  cache->j0 = (int) floor (oy / FB_TILE_SIZE);
  cache->i1 = (int) floor ((ox + MAX (vp->width, 1) - 1e-6) / FB_TILE_SIZE);
  cache->j1 = (int) floor ((oy + MAX (vp->height, 1) - 1e-6) / FB_TILE_SIZE);
  cache->shown = TRUE;
  /* A long pan outruns the prefetch, which drops far tiles when it is done. */
  guint ring = (guint) (cache->i1 - cache->i0 + 2 * RING + 3) * (guint) (cache->j1 - cache->j0 + 2 * RING + 3);
  if (g_hash_table_size (cache->tiles) > 2 * ring)
    g_hash_table_foreach_remove (cache->tiles, is_far, cache);

  gtk_snapshot_push_clip (snapshot, &GRAPHENE_RECT_INIT (0, 0, vp->width, vp->height));
  for (int j = cache->j0; j <= cache->j1; j++)
    for (int i = cache->i0; i <= cache->i1; i++)
      {
        GskRenderNode *node = ensure_tile (cache, i, j);
        gtk_snapshot_save (snapshot);
        gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT ((float) ((double) i * FB_TILE_SIZE - ox),
                                                                (float) ((double) j * FB_TILE_SIZE - oy)));
        gtk_snapshot_append_node (snapshot, node);
        gtk_snapshot_restore (snapshot);
      }
  gtk_snapshot_pop (snapshot);
}

gboolean
fb_tile_cache_prefetch (FbTileCache *cache)
{
  g_return_val_if_fail (cache != NULL, FALSE);
  if (!cache->shown)
    return FALSE;
  /* The missing tile of the ring nearest to the view's centre. */
  double ci = (cache->i0 + cache->i1) / 2.0, cj = (cache->j0 + cache->j1) / 2.0;
  int best_i = 0, best_j = 0;
  double best = G_MAXDOUBLE;
  for (int j = cache->j0 - RING; j <= cache->j1 + RING; j++)
    for (int i = cache->i0 - RING; i <= cache->i1 + RING; i++)
      {
        gint64 key = tile_key (i, j);
        double d = (i - ci) * (i - ci) + (j - cj) * (j - cj);
        if (d < best && !g_hash_table_contains (cache->tiles, &key))
          {
            best = d;
            best_i = i;
            best_j = j;
          }
      }
  if (best == G_MAXDOUBLE)
    {
      g_hash_table_foreach_remove (cache->tiles, is_far, cache);
      return FALSE;
    }
  ensure_tile (cache, best_i, best_j);
  return TRUE;
}

guint
fb_tile_cache_get_n_tiles (FbTileCache *cache)
{
  g_return_val_if_fail (cache != NULL, 0);
  return g_hash_table_size (cache->tiles);
}

guint
fb_tile_cache_get_n_painted (FbTileCache *cache)
{
  g_return_val_if_fail (cache != NULL, 0);
  return cache->n_painted;
}
