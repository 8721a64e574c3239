/* SPDX-License-Identifier: MIT
 *
 * FbPassList: the pipeline on the left. One row per snapshot (the input,
 * then every pass) with a check box that switches the pass on or off, a mark
 * when the pass changed the graph, and the instruction and kernel counts
 * after it; the pass summary is the tooltip. Selecting a row shows that
 * snapshot; Up and Down (or the arrow buttons) step through them.
 */
#pragma once

#include <gtk/gtk.h>

#include "fb-document.h"

G_BEGIN_DECLS

#define FB_TYPE_PASS_LIST (fb_pass_list_get_type ())
G_DECLARE_FINAL_TYPE (FbPassList, fb_pass_list, FB, PASS_LIST, GtkWidget)

GtkWidget *fb_pass_list_new          (void);
void       fb_pass_list_set_document (FbPassList *self, FbDocument *doc);
/* Shows the busy spinner while the window loads a model (it also turns
 * while the document reruns its pipeline in the background). */
void       fb_pass_list_set_loading  (FbPassList *self, gboolean loading);
/* Whether the busy spinner is showing. */
gboolean   fb_pass_list_is_busy      (FbPassList *self);
/* Steps to the previous (-1) or next (+1) snapshot. */
void       fb_pass_list_step         (FbPassList *self, int delta);
/* The check box of pipeline entry @entry (for tests and accessibility). */
GtkCheckButton *fb_pass_list_get_check (FbPassList *self, int entry);
/* Text of the counts label of snapshot @index ("12 instructions · 3 kernels"). */
const char *fb_pass_list_get_counts   (FbPassList *self, int index);

G_END_DECLS
