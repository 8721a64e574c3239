/* SPDX-License-Identifier: MIT
 *
 * FbWindow: the workbench window. It owns the document and the task
 * runner, wires the panels to them, keeps its size, pane sizes, pass
 * configuration, graph mode, backend and step count in GSettings (when the
 * schema is installed), and opens models from the Open dialog, drag and
 * drop and the recent files.
 */
#pragma once

#include <gtk/gtk.h>

#include "fb-bottom-pane.h"
#include "fb-document.h"
#include "fb-graph-view.h"
#include "fb-inspector.h"
#include "fb-pass-list.h"
#include "fb-tasks.h"

G_BEGIN_DECLS

#define FB_APP_ID "org.fusebox.Fusebox"

#define FB_TYPE_WINDOW (fb_window_get_type ())
G_DECLARE_FINAL_TYPE (FbWindow, fb_window, FB, WINDOW, GtkApplicationWindow)

/* @app may be NULL (tests). */
FbWindow     *fb_window_new (GtkApplication *app);

/* Loads @path. On failure the error goes to the messages tab (and @error),
 * and the model shown before stays loaded. */
gboolean      fb_window_open_file (FbWindow *self, const char *path, GError **error);

/* Loads @path on a worker thread (parse, passes); the model shown stays
 * until the new one lands, and the pass list shows a spinner meanwhile.
 * Errors go to the messages tab. Opening another file drops this one. */
void          fb_window_open_file_async (FbWindow *self, const char *path);
/* A background load is in flight. */
gboolean      fb_window_is_loading      (FbWindow *self);

/* Starts Run, Bench or Profile. @backend NULL and @steps 0 take the
 * settings; an unavailable backend falls back to the interpreter with a
 * warning in the messages tab. */
gboolean      fb_window_start_task (FbWindow *self, FbTaskKind kind, const char *backend, int steps,
                                    GError **error);

/* Renders the window as it is now into a PNG. The window must have been
 * shown and drawn once. */
gboolean      fb_window_save_screenshot (FbWindow *self, const char *path, GError **error);

FbDocument   *fb_window_get_document    (FbWindow *self);
FbTasks      *fb_window_get_tasks       (FbWindow *self);
FbPassList   *fb_window_get_pass_list   (FbWindow *self);
FbGraphView  *fb_window_get_graph_view  (FbWindow *self);
FbInspector  *fb_window_get_inspector   (FbWindow *self);
FbBottomPane *fb_window_get_bottom_pane (FbWindow *self);

/* The sample model: FUSEBOX_SAMPLE, else the installed data dir, else the
 * source tree. Newly allocated. */
char         *fb_window_dup_sample_path (void);

G_END_DECLS
