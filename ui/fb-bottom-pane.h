/* SPDX-License-Identifier: MIT
 *
 * FbBottomPane: the tabs under the graph. Timeline (the last run's trace),
 * memory (the buffer plan of the current snapshot and its peak), throughput
 * (steps per second of pass set A against pass set B, with the ratio),
 * the decision log of every pass (filterable), and messages (errors and
 * warnings from loading, passes and runs).
 */
#pragma once

#include <gtk/gtk.h>

#include "fb-document.h"
#include "fb-timeline-view.h"
#include "fb-trace.h"

G_BEGIN_DECLS

typedef enum {
  FB_MESSAGE_INFO,
  FB_MESSAGE_WARNING,
  FB_MESSAGE_ERROR
} FbMessageKind;

#define FB_TYPE_BOTTOM_PANE (fb_bottom_pane_get_type ())
G_DECLARE_FINAL_TYPE (FbBottomPane, fb_bottom_pane, FB, BOTTOM_PANE, GtkWidget)

GtkWidget  *fb_bottom_pane_new            (void);
void        fb_bottom_pane_set_document   (FbBottomPane *self, FbDocument *doc);
void        fb_bottom_pane_set_trace      (FbBottomPane *self, FbTrace *trace);
/* Steps per second of pass set A and B (<= 0: not measured). */
void        fb_bottom_pane_set_throughput (FbBottomPane *self, const char *backend, double a, double b);
/* The throughput tab's summary line ("" before a bench). */
const char *fb_bottom_pane_get_throughput_text (FbBottomPane *self);
void        fb_bottom_pane_add_message    (FbBottomPane *self, FbMessageKind kind, const char *text);
int         fb_bottom_pane_get_n_messages (FbBottomPane *self);
const char *fb_bottom_pane_get_message    (FbBottomPane *self, int index);
/* Decision rows that pass the filter. */
int         fb_bottom_pane_get_n_decisions (FbBottomPane *self);
void        fb_bottom_pane_set_decision_filter (FbBottomPane *self, const char *text);
/* "timeline", "memory", "throughput", "decisions", "messages"; FALSE for others. */
gboolean    fb_bottom_pane_show           (FbBottomPane *self, const char *tab);
const char *fb_bottom_pane_get_visible_tab (FbBottomPane *self);
/* The timeline tab (zoom, pan, span selection). */
FbTimelineView *fb_bottom_pane_get_timeline (FbBottomPane *self);

G_END_DECLS
