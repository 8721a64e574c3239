/* SPDX-License-Identifier: MIT
 *
 * FbTileCache: a picture of a large canvas kept as square tiles at one zoom,
 * so that panning only moves tiles that are already painted. The view
 * paints the tiles it lacks when a frame needs them, and between frames it
 * paints the ring of tiles around the view one at a time (prefetch), so a
 * pan seldom has to paint during a frame. Tiles far from the view are
 * dropped. The caller says what to paint through a callback and drops
 * every tile when the picture changes (zoom, content, selection).
 */
#pragma once

#include <gtk/gtk.h>

#include "fb-paint.h"

G_BEGIN_DECLS

/* Edge of a tile in logical pixels. */
#define FB_TILE_SIZE 256

/* Paints the canvas through @vp (a TILE × TILE window onto it). */
typedef void (*FbTilePaintFunc) (cairo_t *cr, const FbViewport *vp, gpointer user_data);

typedef struct _FbTileCache FbTileCache;

FbTileCache *fb_tile_cache_new   (FbTilePaintFunc paint, gpointer user_data);
void         fb_tile_cache_free  (FbTileCache *cache);
/* Drops every tile (the picture changed). */
void         fb_tile_cache_clear (FbTileCache *cache);
/* Appends the view @vp (its width and height in logical pixels) to
 * @snapshot at (0, 0), clipped to it, painting missing tiles now. A change
 * of zoom or of @scale (device pixels per logical pixel) drops every tile. */
void         fb_tile_cache_snapshot (FbTileCache *cache, GtkSnapshot *snapshot, const FbViewport *vp, int scale);
/* Paints one missing tile of the ring around the last view shown, the
 * nearest first; FALSE (and far tiles dropped) when none is missing. */
gboolean     fb_tile_cache_prefetch (FbTileCache *cache);
/* Tiles held, and tiles painted since the cache was made (for tests and
 * benchmarks). */
guint        fb_tile_cache_get_n_tiles   (FbTileCache *cache);
guint        fb_tile_cache_get_n_painted (FbTileCache *cache);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbTileCache, fb_tile_cache_free)

G_END_DECLS
