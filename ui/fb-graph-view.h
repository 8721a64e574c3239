/* SPDX-License-Identifier: MIT
 *
 * FbGraphView: the graph of the current snapshot, drawn by the viz painters.
 * Drag to pan, scroll or pinch to zoom (or +, -, 0 to fit), click to select,
 * double-click a fusion to expand or collapse it. Three modes: the graph
 * after the pass, before and after side by side, or the diff. The diff of
 * the last two modes is built on a worker thread; until it lands the view
 * shows the graph after the pass.
 */
#pragma once

#include <gtk/gtk.h>

#include "fb-document.h"
#include "fb-layout.h"
#include "fb-tasks.h"

G_BEGIN_DECLS

typedef enum {
  FB_GRAPH_MODE_AFTER,
  FB_GRAPH_MODE_SIDE_BY_SIDE,
  FB_GRAPH_MODE_DIFF
} FbGraphMode;

#define FB_TYPE_GRAPH_VIEW (fb_graph_view_get_type ())
G_DECLARE_FINAL_TYPE (FbGraphView, fb_graph_view, FB, GRAPH_VIEW, GtkWidget)

GtkWidget   *fb_graph_view_new          (void);
void         fb_graph_view_set_document (FbGraphView *self, FbDocument *doc);
void         fb_graph_view_set_mode     (FbGraphView *self, FbGraphMode mode);
FbGraphMode  fb_graph_view_get_mode     (FbGraphView *self);
/* "after", "side-by-side", "diff"; FALSE for anything else. */
gboolean     fb_graph_mode_from_string  (const char *s, FbGraphMode *out);
const char  *fb_graph_mode_to_string    (FbGraphMode mode);
void         fb_graph_view_zoom_fit     (FbGraphView *self);
void         fb_graph_view_zoom_by      (FbGraphView *self, double factor);
double       fb_graph_view_get_zoom     (FbGraphView *self);
/* Moves the view by (@dx, @dy) device pixels (the arrow keys do too). */
void         fb_graph_view_pan_by       (FbGraphView *self, double dx, double dy);
/* Selects the next node (after the selection) whose name contains @text or
 * whose opcode is @text, and centres it. FALSE when nothing matches. */
gboolean     fb_graph_view_search       (FbGraphView *self, const char *text);
/* Toggles the cluster of the fusion or call with stable key @key. */
gboolean     fb_graph_view_toggle_cluster (FbGraphView *self, int64_t key);
/* Background work (the diffs) goes through @tasks; until one is set the
 * view makes its own. */
void         fb_graph_view_set_tasks    (FbGraphView *self, FbTasks *tasks);
/* TRUE while the diff that the mode shows is being built. */
gboolean     fb_graph_view_is_diff_pending (FbGraphView *self);
/* The diff shown by the side-by-side and diff modes; NULL in the after
 * mode, on the first snapshot, and while it is being built. */
const FbDiffView *fb_graph_view_get_diff (FbGraphView *self);
/* Tiles of the graph painted so far. A pan that only moves tiles already
 * painted (the ring around the view is painted when idle) leaves it as it
 * is; for benchmarks and tests. */
guint        fb_graph_view_get_n_tiles_painted (FbGraphView *self);
/* The layout shown (after side); NULL before a document is set. */
const FbGraphLayout *fb_graph_view_get_layout (FbGraphView *self);

G_END_DECLS
