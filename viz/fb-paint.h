/* SPDX-License-Identifier: MIT
 *
 * Painters: every picture Fusebox shows is drawn here on a cairo_t, so the
 * workbench widgets and the CLI's PNG/SVG/PDF output are the same drawing.
 * A painter never keeps state between calls; what it needs is in its
 * arguments (a layout, a diff view, a trace, a buffer plan, numbers).
 *
 * The graph painter draws through a viewport (pan and zoom) and touches
 * only what is visible; below a legible size it drops labels, so a graph
 * of ten thousand nodes zoomed out still paints within a frame.
 */
#pragma once

#include <cairo.h>

#include "fb-layout.h"
#include "fb-pass.h"
#include "fb-buffers.h"
#include "fb-trace.h"

G_BEGIN_DECLS

/* ------------------------------------------------------------ viewport */

/* What part of the content is shown where. Content point (cx, cy) is drawn
 * at device point ((cx - x) * zoom, (cy - y) * zoom). */
typedef struct {
  double x, y;            /* content coordinates at the device's top-left corner */
  double zoom;            /* device units per content unit (> 0) */
  double width, height;   /* device size */
} FbViewport;

/* Zoom and centre so that a @content_w x @content_h picture fits a device of
 * @width x @height with @margin device units around it (zoom capped at @max_zoom,
 * <= 0 for no cap). */
void fb_viewport_fit       (FbViewport *vp, double content_w, double content_h,
                            double width, double height, double margin, double max_zoom);
/* Zooms by @factor keeping the content under device point (@dx, @dy) in place. */
void fb_viewport_zoom_at   (FbViewport *vp, double factor, double dx, double dy);
void fb_viewport_to_content (const FbViewport *vp, double dx, double dy, double *cx, double *cy);

/* ---------------------------------------------------------- graph view */

typedef enum {
  FB_OVERLAY_NONE,
  FB_OVERLAY_TIME,        /* ns */
  FB_OVERLAY_FLOPS,
  FB_OVERLAY_BYTES,
  FB_OVERLAY_ERROR        /* numeric error against the reference, relative */
} FbOverlayKind;

/* Per-instruction values for the heat overlay, keyed by instruction id or
 * provenance id (a node takes the sum over what it stands for). */
typedef struct _FbNodeValues FbNodeValues;
FbNodeValues *fb_node_values_new   (FbOverlayKind kind);
void          fb_node_values_free  (FbNodeValues *values);
void          fb_node_values_set   (FbNodeValues *values, int64_t id, double value);
FbOverlayKind fb_node_values_get_kind (const FbNodeValues *values);
/* Value for a node (sum over its instruction id and provenance ids); FALSE when none. */
gboolean      fb_node_values_lookup (const FbNodeValues *values, const FbInstr *instr, double *out);
/* Values for every instruction of @module from the cost model (FLOPS or BYTES). */
FbNodeValues *fb_node_values_new_from_cost (FbModule *module, FbOverlayKind kind);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbNodeValues, fb_node_values_free)

typedef struct {
  const FbNodeValues *overlay;   /* NULL: fill by opcode category */
  int64_t      selected;         /* instruction id drawn highlighted, -1 for none */
  gboolean     legend;           /* draw the category or heat legend in the corner */
  double       min_label_px;     /* labels skipped when a line would be smaller (default 5) */
  gboolean     skip_background;  /* do not clear the viewport first (to draw over something) */
} FbGraphPaintOptions;

void fb_graph_paint_options_init (FbGraphPaintOptions *options);

/* Fill colour of an opcode category (r, g, b in 0..1). */
void fb_paint_category_color (FbOpCategory cat, double rgb[3]);
/* Heat colour for t in 0..1 (dark blue → yellow → red). */
void fb_paint_heat_color     (double t, double rgb[3]);

/* Paints @layout through @vp (background included). @options may be NULL. */
void fb_paint_graph (cairo_t *cr, const FbGraphLayout *layout, const FbViewport *vp,
                     const FbGraphPaintOptions *options);

/* ----------------------------------------------------------- diff view */

/* Two snapshots side by side in one picture: the after graph laid out from
 * the before graph's positions; added nodes green, removed nodes red and
 * ghosted at their old places, nodes with changed attributes amber, and a
 * frame around each new fusion's members. */
typedef struct _FbDiffView FbDiffView;

typedef enum { FB_DIFF_SAME, FB_DIFF_ADDED, FB_DIFF_REMOVED, FB_DIFF_CHANGED, FB_DIFF_FUSED } FbDiffState;

/* @before_layout may be NULL (it is computed). @diff may be NULL (computed
 * with fb_diff_modules). @pass_name names the pass in the summary. Both
 * modules are borrowed and must outlive the view. */
FbDiffView *fb_diff_view_new (FbModule *before, FbModule *after, const FbDiff *diff,
                              const char *pass_name, const FbGraphLayout *before_layout,
                              const FbGraphLayoutOptions *options);
/* From two pipeline snapshots (after->diff is used when set). */
FbDiffView *fb_diff_view_new_from_snapshots (const FbSnapshot *before, const FbSnapshot *after,
                                             const FbGraphLayout *before_layout,
                                             const FbGraphLayoutOptions *options);
void        fb_diff_view_free (FbDiffView *view);
/* Layouts of the after and before entry computations. */
const FbGraphLayout *fb_diff_view_get_layout        (const FbDiffView *view);
const FbGraphLayout *fb_diff_view_get_before_layout (const FbDiffView *view);
FbDiffState fb_diff_view_get_state   (const FbDiffView *view, const FbInstr *after_instr);
/* `fuse-loops: 412 → 97 kernels, −61% bytes moved` */
const char *fb_diff_view_get_summary (const FbDiffView *view);
/* Counts of added, removed, changed and fused ids. */
void        fb_diff_view_get_counts  (const FbDiffView *view, int *added, int *removed, int *changed, int *fused);
/* The after graph with the diff's marks, and with options->legend (the
 * default) the summary banner along the top of @vp too. */
void        fb_paint_diff (cairo_t *cr, const FbDiffView *view, const FbViewport *vp,
                           const FbGraphPaintOptions *options);
/* The summary banner alone, for a view that keeps it still over a picture
 * that pans. */
void        fb_paint_diff_banner (cairo_t *cr, const FbDiffView *view, const FbViewport *vp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbDiffView, fb_diff_view_free)

/* ------------------------------------------------------------- timeline */

typedef struct {
  int64_t  t0_ns, t1_ns;     /* visible time range; t1 <= t0: the whole trace */
  double   track_height;     /* default 22 */
  double   scroll_y;         /* vertical scroll in device units */
  int64_t  selected_span;    /* span index to highlight, -1 for none */
  const gint64 *highlight_ids;   /* spans running one of these instruction ids are outlined */
  guint    n_highlight_ids;
} FbTimelineOptions;

void fb_timeline_options_init (FbTimelineOptions *options);
/* Tracks as rows with their names on the left, spans as boxes, flows as
 * arrows, a time axis on top. @options may be NULL. */
void fb_paint_timeline (cairo_t *cr, FbTrace *trace, double width, double height,
                        const FbTimelineOptions *options);

/* Where fb_paint_timeline puts time: the plot spans device x from plot_x
 * to plot_x + plot_w and shows [t0, t1) (the options' range, or the whole
 * trace); rows start below a time axis axis_h high. */
typedef struct {
  double  plot_x, plot_w, axis_h;
  gint64  t0, t1;
} FbTimelineGeometry;

void     fb_timeline_get_geometry (FbTrace *trace, double width, const FbTimelineOptions *options,
                                   FbTimelineGeometry *out);
/* The span fb_paint_timeline draws at device point (@x, @y) with the same
 * trace, size and options. TRUE with its track id and its index on that
 * track (either may be NULL), and in @index (may be NULL) its number as
 * FbTimelineOptions.selected_span counts it. Where spans nest, the
 * innermost wins; a span drawn thinner than 3 units is hit within 1.5 units
 * of its middle. FALSE over the axis, the track names, or empty space. */
gboolean fb_timeline_hit_test (FbTrace *trace, double width, double height, const FbTimelineOptions *options,
                               double x, double y, guint *track, guint *span, gint64 *index);
/* The device rectangle fb_paint_timeline draws span @span of track @track
 * in (before clipping to the rows area); FALSE when it is outside the
 * visible time range or either index is out of range. */
gboolean fb_timeline_span_rect (FbTrace *trace, double width, const FbTimelineOptions *options,
                                guint track, guint span, double rect[4]);

/* --------------------------------------------------------------- memory */

/* Live bytes of the static plan at each schedule position (step line) and,
 * when @trace is not NULL, the measured memory counter over time scaled to
 * the same width; the peak is marked. Either may be NULL (not both). */
void fb_paint_memory (cairo_t *cr, const FbBufferPlan *plan, FbTrace *trace,
                      double width, double height);
/* Same from a bare array of live bytes (no plan object needed). */
void fb_paint_memory_curve (cairo_t *cr, const int64_t *live_bytes, int n, const char *title,
                            double width, double height);

/* ----------------------------------------------------------- throughput */

typedef struct {
  const char *label;        /* "mlp step", "transformer" */
  double      a, b;         /* e.g. steps/s with pass set A and B, or CPU and GPU; <= 0 = missing */
} FbThroughputItem;

/* Paired horizontal bars with the ratio b/a printed beside each pair. */
void fb_paint_throughput (cairo_t *cr, const FbThroughputItem *items, int n,
                          const char *a_name, const char *b_name, const char *unit,
                          double width, double height);

/* ------------------------------------------------------------- roofline */

typedef struct {
  const char *label;        /* kernel name */
  double      intensity;    /* FLOPs per byte */
  double      flops_per_s;  /* achieved */
} FbRooflinePoint;

/* Log-log roofline: the memory slope and the compute roof from the measured
 * peaks, one point per kernel. */
void fb_paint_roofline (cairo_t *cr, const FbRooflinePoint *points, int n,
                        double peak_flops_per_s, double peak_bytes_per_s,
                        double width, double height);

/* --------------------------------------------------------------- output */

typedef enum { FB_RENDER_PNG, FB_RENDER_SVG, FB_RENDER_PDF } FbRenderFormat;

/* Any painter, bound to its data, drawing a @width x @height picture. */
typedef void (*FbPaintFunc) (cairo_t *cr, double width, double height, gpointer user_data);

/* Format from the file name's extension (.png, .svg, .pdf, any case).
 * FB_ERROR_USAGE naming the extension when it is none of them. */
gboolean fb_render_format_from_path (const char *path, FbRenderFormat *out, GError **error);
/* Creates the surface, calls @paint, writes @path. FB_ERROR_IO when the
 * file cannot be written, FB_ERROR_USAGE for a bad extension or size. */
gboolean fb_render_to_file (const char *path, int width, int height,
                            FbPaintFunc paint, gpointer user_data, GError **error);

G_END_DECLS
