/* SPDX-License-Identifier: MIT
 *
 * Memory timelines, in the two views a run has:
 *
 *  - the static plan: live bytes at each position of the schedule, as buffer
 *    assignment computed them (the caller passes the array; the profiler does
 *    not depend on the compiler);
 *  - the measured one: allocator events (alloc and free, with time, address
 *    and size) from the runner's allocator or CUPTI's MEMORY2 records, with
 *    the running total of live bytes after each event and its peak.
 *
 * Events may be added in any order and from any thread; they are sorted by
 * time (stably) when read. A free names its block by address; its size may
 * be 0 when the allocator does not know it, and is then taken from the
 * matching alloc. A free that matches no live block changes nothing and is
 * counted as unmatched, so a trace that starts mid-run still gives a sane
 * curve.
 */
#pragma once

#include "fb-trace.h"

G_BEGIN_DECLS

typedef enum {
  FB_MEMORY_ALLOC,
  FB_MEMORY_FREE,
} FbMemoryEventKind;

typedef struct {
  gint64            time_ns;
  FbMemoryEventKind kind;
  guint64           address;
  guint64           size;        /* resolved for frees that gave 0 */
  guint64           live_bytes;  /* running total after this event */
  int               device;      /* -1: host */
} FbMemoryEvent;

typedef struct _FbMemoryTimeline FbMemoryTimeline;

FbMemoryTimeline *fb_memory_timeline_new  (void);
void              fb_memory_timeline_free (FbMemoryTimeline *timeline);

/* ---- static plan */

/* Copies @n live-byte values, one per schedule position. */
void           fb_memory_timeline_set_plan (FbMemoryTimeline *timeline, const guint64 *live_bytes,
                                            guint n);
const guint64 *fb_memory_timeline_get_plan (FbMemoryTimeline *timeline, guint *n);
/* Largest planned value and the first position holding it; 0 and 0 when
 * there is no plan. */
guint64        fb_memory_timeline_get_plan_peak (FbMemoryTimeline *timeline, guint *position);

/* ---- measured events (thread-safe) */

void     fb_memory_timeline_add_event (FbMemoryTimeline *timeline, FbMemoryEventKind kind,
                                       gint64 time_ns, guint64 address, guint64 size, int device);
/* Sorted by time with live_bytes filled in; valid until the next add. */
const FbMemoryEvent *fb_memory_timeline_get_events (FbMemoryTimeline *timeline, guint *n);
/* Peak of the running total and the time it was first reached; 0 and 0
 * without events. */
guint64  fb_memory_timeline_get_peak (FbMemoryTimeline *timeline, gint64 *time_ns);
/* Live bytes at the end of the events. */
guint64  fb_memory_timeline_get_live (FbMemoryTimeline *timeline);
/* Frees that matched no live block. */
guint    fb_memory_timeline_get_n_unmatched (FbMemoryTimeline *timeline);

/* Adds a memory track named @name (unit "bytes") to @trace with one sample
 * of live bytes per event, and returns its id. The trace must not be
 * finished. */
guint    fb_memory_timeline_to_trace (FbMemoryTimeline *timeline, FbTrace *trace, const char *name,
                                      int sort_index);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbMemoryTimeline, fb_memory_timeline_free)

G_END_DECLS
