/* SPDX-License-Identifier: MIT
 *
 * FbTasks: the long work of the workbench (Run, Bench, Profile) on a worker
 * thread. One task at a time; the window shows its progress and can cancel
 * it (the run stops after the step in progress), and when it finishes the
 * result lands in the panels. The modules are
 * cloned before the thread starts, so the user may keep stepping through
 * passes or toggling them meanwhile.
 *
 * Beside that one task, FbTasks builds the diff that the graph view's
 * side-by-side and diff modes show, also on a worker thread; a newer diff
 * request cancels the older one, whose result is dropped.
 */
#pragma once

#include <gio/gio.h>

#include <pango/pango.h>

#include "fb-ir.h"
#include "fb-paint.h"
#include "fb-trace.h"

G_BEGIN_DECLS

typedef enum {
  FB_TASK_RUN,       /* N steps of the current snapshot */
  FB_TASK_BENCH,     /* N steps of pass set A (input) and of pass set B (the pipeline's output) */
  FB_TASK_PROFILE    /* N steps of the current snapshot, recorded into a trace */
} FbTaskKind;

typedef struct {
  FbTaskKind kind;
  char      *backend;        /* the backend that ran */
  int        steps;
  double     a_steps_per_s;  /* BENCH: pass set A; else 0 */
  double     b_steps_per_s;  /* BENCH: pass set B; RUN and PROFILE: the run */
  double     last_loss;      /* NaN without a loss */
  FbTrace   *trace;          /* one span per step (and a loss counter); PROFILE
                              * also has the kernel spans the backend records */
} FbTaskResult;

#define FB_TYPE_TASKS (fb_tasks_get_type ())
G_DECLARE_FINAL_TYPE (FbTasks, fb_tasks, FB, TASKS, GObject)

FbTasks    *fb_tasks_new (void);
/* The backend to use for @wanted: @wanted itself when it is built and
 * available, else "interp" with *@note saying why (g_free). */
const char *fb_tasks_resolve_backend (const char *wanted, char **note);

/* Starts a task. @a is the module of pass set A (BENCH only, may be NULL
 * otherwise), @b the module to run; both are cloned. FALSE (FB_ERROR_USAGE)
 * when a task is already running or @steps < 1. */
gboolean    fb_tasks_start (FbTasks *self, FbTaskKind kind, FbModule *a, FbModule *b,
                            const char *backend, int steps, GError **error);
void        fb_tasks_cancel  (FbTasks *self);
gboolean    fb_tasks_is_busy (FbTasks *self);
/* Steps run so far by the running task, or by the last one once it ended
 * (also when it failed or was cancelled); *@total (may be NULL) gets the
 * steps it was asked for (twice the count for BENCH). */
int         fb_tasks_get_steps_done (FbTasks *self, int *total);
/* Fraction done (0..1) while busy. */
double      fb_tasks_get_fraction (FbTasks *self);
/* The last finished task: its result (NULL when it failed or was
 * cancelled) and its error (NULL when it succeeded). Borrowed. */
const FbTaskResult *fb_tasks_get_result (FbTasks *self);
const GError       *fb_tasks_get_error  (FbTasks *self);
const char *fb_task_kind_label (FbTaskKind kind);

/* A diff of two snapshots built off the main thread. The view's layouts
 * point into @snapshots and measured labels with @pango, so both are kept
 * as long as the view. */
typedef struct {
  FbDiffView   *view;
  PangoContext *pango;
  GPtrArray    *snapshots;
  int           before, after;  /* indices into @snapshots */
} FbTaskDiff;

void        fb_task_diff_free (FbTaskDiff *diff);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbTaskDiff, fb_task_diff_free)

/* Builds the diff view of snapshot @before to snapshot @after of
 * @snapshots (a reference is taken) on a worker thread, measuring labels
 * at @dpi. A request made while another is in flight cancels it: that
 * one's callback then gets G_IO_ERROR_CANCELLED from the _finish call and
 * must not touch what the cancelled request was for. */
void        fb_tasks_diff_async  (FbTasks *self, GPtrArray *snapshots, int before, int after, double dpi,
                                  GAsyncReadyCallback callback, gpointer user_data);
FbTaskDiff *fb_tasks_diff_finish (FbTasks *self, GAsyncResult *result, GError **error);
/* Cancels the diff in flight, if any (its result is dropped). */
void        fb_tasks_cancel_diff (FbTasks *self);
gboolean    fb_tasks_is_diffing  (FbTasks *self);

G_END_DECLS
