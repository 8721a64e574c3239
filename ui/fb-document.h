/* SPDX-License-Identifier: MIT
 *
 * FbDocument: the one GObject that wraps a loaded module for the workbench.
 * It owns the module as loaded, the pass pipeline (which passes are on) and
 * the snapshots the pipeline produced, and it holds the two pieces of state
 * every panel shares: the snapshot being looked at and the selected
 * instruction. Panels listen to "changed" (new snapshots) and to
 * notify::current and notify::selected. The _async changes rerun the
 * pipeline on a worker thread (notify::busy while one runs) and land with
 * "changed" then "rerun-done".
 */
#pragma once

#include <glib-object.h>

#include <pango/pango.h>

#include "fb-ir.h"
#include "fb-layout.h"
#include "fb-pass.h"

G_BEGIN_DECLS

#define FB_TYPE_DOCUMENT (fb_document_get_type ())
G_DECLARE_FINAL_TYPE (FbDocument, fb_document, FB, DOCUMENT, GObject)

/* Parses @path (HLO text or Fusebox JSON) and runs the pipeline given by
 * @spec (NULL: every pass). FB_ERROR_* with file:line:column on bad input. */
FbDocument    *fb_document_new_from_file (const char *path, const char *spec, GError **error);

const char    *fb_document_get_path     (FbDocument *doc);
char          *fb_document_dup_basename (FbDocument *doc);
FbModule      *fb_document_get_input    (FbDocument *doc);
FbPipeline    *fb_document_get_pipeline (FbDocument *doc);
char          *fb_document_dup_spec     (FbDocument *doc);

/* Snapshot 0 is the input; snapshot i + 1 is the module after pipeline entry i. */
int            fb_document_get_n_snapshots (FbDocument *doc);
FbSnapshot    *fb_document_get_snapshot    (FbDocument *doc, int index);
int            fb_document_get_current     (FbDocument *doc);
FbSnapshot    *fb_document_get_current_snapshot (FbDocument *doc);
void           fb_document_set_current     (FbDocument *doc, int index);
/* A reference on the current snapshots (g_ptr_array_unref), for a worker
 * that reads them while a rerun may replace them. */
GPtrArray     *fb_document_ref_snapshots   (FbDocument *doc);
/* Index of the snapshot after pass @name, or -1. */
int            fb_document_find_pass       (FbDocument *doc, const char *name);

/* Turns pipeline entry @entry on or off and reruns the pipeline. */
gboolean       fb_document_set_pass_enabled (FbDocument *doc, int entry, gboolean enabled, GError **error);
/* Enables entries 0..@entry, disables the rest, reruns, and shows @entry's snapshot. */
gboolean       fb_document_run_to           (FbDocument *doc, int entry, GError **error);

/* The same off the main thread: the pipeline flags change now, the
 * snapshots when the rerun lands ("changed", then "rerun-done" with NULL).
 * A newer change drops the result of an older one. On failure the flags
 * are put back and "rerun-done" carries the message. */
void           fb_document_set_pass_enabled_async (FbDocument *doc, int entry, gboolean enabled);
void           fb_document_run_to_async           (FbDocument *doc, int entry);
gboolean       fb_document_is_busy                (FbDocument *doc);
/* Screen resolution (dpi) used to measure labels of background layouts. */
void           fb_document_set_resolution         (FbDocument *doc, double dpi);
/* Lays out the current snapshot now, for the graph view to take when it
 * gets the document; for the thread that made @doc, before it is shared. */
void           fb_document_prepare_layout         (FbDocument *doc, double dpi);
/* During "changed" after a background rerun: the layout of @comp made on
 * the worker, with the context it measured with (*@pango, owned, must
 * outlive the layout); NULL when there is none for @comp. */
FbGraphLayout *fb_document_take_prepared_layout   (FbDocument *doc, FbComputation *comp, PangoContext **pango);

/* Instruction id of the selection (-1: none). */
int64_t        fb_document_get_selected (FbDocument *doc);
void           fb_document_set_selected (FbDocument *doc, int64_t id);
/* The instruction of @module that is @id or stands for it (provenance); NULL if none. */
FbInstr       *fb_document_find_instr   (FbModule *module, int64_t id);

G_END_DECLS
