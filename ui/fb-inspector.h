/* SPDX-License-Identifier: MIT
 *
 * FbInspector: the right pane. For the selected instruction of the current
 * snapshot it shows its shape and layout, operands and users, where it came
 * from in the source program, the cost model's FLOPs and bytes, the time
 * measured for it in the last profile, its HLO (with the fused computation
 * for a kernel), the code the CPU backend generates for its kernel, and
 * the pass decisions that involved it.
 */
#pragma once

#include <gtk/gtk.h>

#include "fb-code-view.h"
#include "fb-document.h"
#include "fb-trace.h"

G_BEGIN_DECLS

#define FB_TYPE_INSPECTOR (fb_inspector_get_type ())
G_DECLARE_FINAL_TYPE (FbInspector, fb_inspector, FB, INSPECTOR, GtkWidget)

GtkWidget  *fb_inspector_new          (void);
void        fb_inspector_set_document (FbInspector *self, FbDocument *doc);
/* Spans of @trace (may be NULL) give the measured time. */
void        fb_inspector_set_trace    (FbInspector *self, FbTrace *trace);
/* What the inspector shows now: the instruction name ("" when nothing is
 * selected) and its shape text. */
const char *fb_inspector_get_name     (FbInspector *self);
const char *fb_inspector_get_shape    (FbInspector *self);
/* The "Generated code" section; showing it opens it on @kind. */
FbCodeView *fb_inspector_get_code_view (FbInspector *self);
void        fb_inspector_show_code    (FbInspector *self, FbCodeKind kind);

G_END_DECLS
