/* SPDX-License-Identifier: MIT
 *
 * FbTimelineView: the timeline tab. It draws the last run's trace with the
 * viz timeline painter and lets the user explore it: Ctrl + scroll zooms
 * around the pointer, dragging pans (sideways in time, up and down through
 * the tracks), a click selects a span. The selection is the document's: a
 * span that ran instructions selects the matching node of the current
 * snapshot, and the spans of the selected node are outlined.
 */
#pragma once

#include <gtk/gtk.h>

#include "fb-document.h"
#include "fb-trace.h"

G_BEGIN_DECLS

#define FB_TYPE_TIMELINE_VIEW (fb_timeline_view_get_type ())
G_DECLARE_FINAL_TYPE (FbTimelineView, fb_timeline_view, FB, TIMELINE_VIEW, GtkWidget)

GtkWidget    *fb_timeline_view_new          (void);
void          fb_timeline_view_set_document (FbTimelineView *self, FbDocument *doc);
/* Shows @trace (may be NULL) in full; the span selection is cleared. */
void          fb_timeline_view_set_trace    (FbTimelineView *self, FbTrace *trace);
FbTrace      *fb_timeline_view_get_trace    (FbTimelineView *self);

/* Zooms by @factor (> 1 zooms in) keeping the time under device x in place. */
void          fb_timeline_view_zoom_at      (FbTimelineView *self, double factor, double x);
/* Moves the view by a drag of (@dx, @dy) device units. */
void          fb_timeline_view_pan          (FbTimelineView *self, double dx, double dy);
/* Shows the whole trace again. */
void          fb_timeline_view_reset        (FbTimelineView *self);
/* The visible time range (CLOCK_MONOTONIC ns). FALSE without a trace. */
gboolean      fb_timeline_view_get_range    (FbTimelineView *self, gint64 *t0, gint64 *t1);

/* What a click at widget point (@x, @y) does: selects the span there, and
 * through its instructions the node. TRUE when a span was hit; a click on
 * empty space clears the span selection. */
gboolean      fb_timeline_view_click        (FbTimelineView *self, double x, double y);
/* The selected span, or NULL. */
const FbSpan *fb_timeline_view_get_selected_span (FbTimelineView *self);
/* The centre of span @span of track @track as drawn now; FALSE when it is
 * not visible. */
gboolean      fb_timeline_view_get_span_center (FbTimelineView *self, guint track, guint span,
                                                double *x, double *y);
/* Spans outlined because they ran the selected node. */
guint         fb_timeline_view_get_n_highlighted (FbTimelineView *self);

G_END_DECLS
