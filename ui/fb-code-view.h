/* SPDX-License-Identifier: MIT
 *
 * FbCodeView: the generated code of the selected kernel, in the inspector.
 * A selector switches between the kernel's HLO, the optimised LLVM IR and
 * the host assembly the CPU backend makes of it. Code generation runs on a
 * worker thread when the view is active (its expander open) and the result
 * is kept per snapshot and kernel; when a kernel has no generated code (a
 * dot goes to BLAS, a parameter only names a buffer) the view says why.
 */
#pragma once

#include <gtk/gtk.h>

#include "fb-document.h"

G_BEGIN_DECLS

typedef enum {
  FB_CODE_HLO,
  FB_CODE_LLVM,
  FB_CODE_ASM
} FbCodeKind;

#define FB_TYPE_CODE_VIEW (fb_code_view_get_type ())
G_DECLARE_FINAL_TYPE (FbCodeView, fb_code_view, FB, CODE_VIEW, GtkWidget)

GtkWidget  *fb_code_view_new          (void);
void        fb_code_view_set_document (FbCodeView *self, FbDocument *doc);
/* Only an active view generates code; the inspector activates it when the
 * user opens it. */
void        fb_code_view_set_active   (FbCodeView *self, gboolean active);
void        fb_code_view_set_kind     (FbCodeView *self, FbCodeKind kind);
FbCodeKind  fb_code_view_get_kind     (FbCodeView *self);
/* TRUE while code for the shown kernel is being generated. The "loaded"
 * signal is emitted when it arrives (or fails). */
gboolean    fb_code_view_is_loading   (FbCodeView *self);
/* The text shown now (newly allocated) and the status line above it
 * (the kernel, or why there is no code; borrowed). */
char       *fb_code_view_dup_text     (FbCodeView *self);
const char *fb_code_view_get_status   (FbCodeView *self);

G_END_DECLS
