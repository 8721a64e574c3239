/* SPDX-License-Identifier: MIT
 *
 * The trace model: what a training run looked like in time. A trace is a list
 * of tracks (a host thread, a CPU worker thread, a GPU stream, a memory
 * timeline, a counter); a track holds spans (an interval with a name, the
 * kernel it ran, the instructions that kernel stands for, the training step),
 * counter samples (time, value) and instant events. All times are
 * CLOCK_MONOTONIC nanoseconds, on the CPU and (through CUPTI's timestamp
 * callback) on the GPU alike, so tracks line up without conversion.
 *
 * Writing is cheap and thread-safe: each thread appends to a buffer of its
 * own, with no lock per span, and the buffers are merged into time order when
 * the trace is finished (fb_trace_finish, or implicitly by the first reader).
 * Reading is for one thread after writing is over: a finished trace is
 * immutable, and every pointer it returns (tracks, spans, strings, id arrays)
 * lives as long as the trace.
 *
 * Flows connect spans across tracks (a driver call to the GPU kernel it
 * launched, a host-side kernel to the worker chunks it dispatched): the
 * source span carries the id in flow_out, the destination span in flow_in.
 * Ids come from fb_trace_new_flow_id and are unique within a trace.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* One error domain for the profiler layer. */
#define FB_PROFILER_ERROR (fb_profiler_error_quark ())
GQuark fb_profiler_error_quark (void);
typedef enum {
  FB_PROFILER_ERROR_PARSE,       /* malformed trace file */
  FB_PROFILER_ERROR_IO,          /* files */
  FB_PROFILER_ERROR_UNAVAILABLE, /* counters, CUPTI or a device not usable here */
  FB_PROFILER_ERROR_USAGE,       /* bad arguments */
  FB_PROFILER_ERROR_FAILED       /* a system or driver call failed */
} FbProfilerError;

/* The clock of every trace: CLOCK_MONOTONIC in nanoseconds. */
gint64 fb_trace_now_ns (void);

/* ---------------------------------------------------------------- tracks */

typedef enum {
  FB_TRACK_HOST_THREAD,   /* the thread that drives the run (steps, launches) */
  FB_TRACK_CPU_WORKER,    /* a thread-pool worker running kernel chunks */
  FB_TRACK_GPU_STREAM,    /* a CUDA stream: kernels, copies, sets */
  FB_TRACK_MEMORY,        /* samples are live bytes */
  FB_TRACK_COUNTER,       /* samples are any value, in the track's unit */
  FB_N_TRACK_KINDS
} FbTrackKind;

/* "host-thread", "cpu-worker", "gpu-stream", "memory", "counter". */
const char *fb_track_kind_to_string   (FbTrackKind kind);
/* Returns FALSE for an unknown name. */
gboolean    fb_track_kind_from_string (const char *s, FbTrackKind *kind);

/* ----------------------------------------------------------------- spans */

typedef enum {
  FB_SPAN_KERNEL,      /* a compiled kernel (or one chunk of it on a worker) */
  FB_SPAN_STEP,        /* one training step */
  FB_SPAN_MEMCPY,      /* a copy; bytes is set */
  FB_SPAN_MEMSET,      /* a set; bytes is set */
  FB_SPAN_API,         /* a driver or runtime call */
  FB_SPAN_OVERHEAD,    /* time the profiler itself cost */
  FB_SPAN_OTHER,
  FB_N_SPAN_KINDS
} FbSpanKind;

/* "kernel", "step", "memcpy", "memset", "api", "overhead", "other". */
const char *fb_span_kind_to_string   (FbSpanKind kind);
gboolean    fb_span_kind_from_string (const char *s, FbSpanKind *kind);

/* Hardware counters a span may carry (CPU kernels, through perf events). */
typedef enum {
  FB_HW_CYCLES,
  FB_HW_INSTRUCTIONS,
  FB_HW_CACHE_MISSES,
  FB_N_HW_COUNTERS
} FbHwCounter;

/* "cycles", "instructions", "cache-misses". */
const char *fb_hw_counter_to_string (FbHwCounter counter);

typedef struct {
  gint64         start_ns;     /* CLOCK_MONOTONIC */
  gint64         end_ns;       /* >= start_ns */
  const char    *name;         /* kernel or step name, never NULL in a trace */
  FbSpanKind     kind;
  int            kernel_id;    /* index of the kernel in its executable; -1: none */
  int            step;         /* training step from 1; -1: none */
  guint          depth;        /* nesting on its track, 0 outermost; set by the merge */
  guint          n_instr;
  const gint64  *instr_ids;    /* provenance: ids of the source instructions it runs */
  guint64        flow_in;      /* flow this span ends; 0: none */
  guint64        flow_out;     /* flow this span starts; 0: none */
  guint64        bytes;        /* bytes moved (memcpy/memset); 0: unknown */
  guint64        correlation;  /* backend correlation id (CUPTI); 0: none */
  gboolean       has_hw;       /* hw[] is measured */
  guint64        hw[FB_N_HW_COUNTERS];
} FbSpan;

/* Fills @span with the neutral values (no kernel, no step, no flows). */
void fb_span_init (FbSpan *span);

static inline gint64
fb_span_duration_ns (const FbSpan *span)
{
  return span->end_ns - span->start_ns;
}

typedef struct {
  gint64  time_ns;
  double  value;
} FbCounterSample;

typedef struct {
  gint64      time_ns;
  const char *name;
  int         step;            /* -1: none */
} FbInstant;

typedef struct {
  guint                  id;          /* index in the trace, from 0 */
  FbTrackKind            kind;
  const char            *name;        /* "main", "worker 3", "stream 7", "live bytes" */
  int                    sort_index;  /* display order, smallest first */
  int                    device;      /* GPU ordinal; -1 for host tracks */
  gint64                 tid;         /* OS thread id or CUDA stream id; 0: none */
  const char            *unit;        /* counter and memory tracks ("bytes"); NULL: none */
  /* Valid once the trace is finished; each array sorted by time. Spans are
   * sorted by start, and by longer first when two start together. */
  const FbSpan          *spans;
  guint                  n_spans;
  const FbCounterSample *samples;
  guint                  n_samples;
  const FbInstant       *instants;
  guint                  n_instants;
  guint                  max_depth;   /* greatest span depth; 0 when flat or empty */
} FbTrack;

/* A resolved flow: two spans, given as track and span indices. */
typedef struct {
  guint64  id;
  guint    from_track;
  guint    from_span;
  guint    to_track;
  guint    to_span;
} FbFlow;

/* ----------------------------------------------------------------- trace */

typedef struct _FbTrace FbTrace;

FbTrace    *fb_trace_new   (void);
FbTrace    *fb_trace_ref   (FbTrace *trace);
void        fb_trace_unref (FbTrace *trace);

/* A title ("mlp.hlo on cpu") and free-form metadata (backend, host, ...);
 * not thread-safe against each other, set them from the driving thread. */
void        fb_trace_set_title    (FbTrace *trace, const char *title);
const char *fb_trace_get_title    (FbTrace *trace);
void        fb_trace_set_metadata (FbTrace *trace, const char *key, const char *value);
const char *fb_trace_get_metadata (FbTrace *trace, const char *key);
/* NULL-terminated, sorted keys; free with g_free (the strings are borrowed). */
const char **fb_trace_list_metadata (FbTrace *trace);

/* Adds a track and returns its id. Thread-safe (takes a lock; tracks are
 * few). @unit may be NULL. */
guint       fb_trace_add_track (FbTrace *trace, FbTrackKind kind, const char *name,
                                int sort_index, int device, gint64 tid, const char *unit);
/* The track of the calling thread in this trace, created on the first call
 * from this thread with @kind and @name ("thread TID" when NULL); later calls
 * return the same track whatever they pass. Thread-safe; after the first
 * call it costs a thread-local lookup. */
guint       fb_trace_thread_track (FbTrace *trace, FbTrackKind kind, const char *name);

/* A flow id unique in this trace (never 0). Thread-safe, lock-free. */
guint64     fb_trace_new_flow_id (FbTrace *trace);

/* Appends; thread-safe with no lock per call (a buffer per thread). The name
 * and instruction ids are copied; depth is ignored (the merge sets it).
 * Appending to a finished trace is a programming error. */
void        fb_trace_add_span    (FbTrace *trace, guint track, const FbSpan *span);
void        fb_trace_add_sample  (FbTrace *trace, guint track, gint64 time_ns, double value);
void        fb_trace_add_instant (FbTrace *trace, guint track, gint64 time_ns, const char *name,
                                  int step);

/* Merges the per-thread buffers into the tracks and sorts them. Call once
 * every writer is done; the readers below call it if it has not happened. */
void        fb_trace_finish      (FbTrace *trace);
gboolean    fb_trace_is_finished (FbTrace *trace);

/* ---------------------------------------------------------------- reading */

guint          fb_trace_get_n_tracks (FbTrace *trace);
const FbTrack *fb_trace_get_track    (FbTrace *trace, guint id);
/* The first track with this kind and name, or NULL. */
const FbTrack *fb_trace_find_track   (FbTrace *trace, FbTrackKind kind, const char *name);
guint          fb_trace_get_n_spans  (FbTrace *trace);
/* Earliest start and latest end over spans, samples and instants; FALSE
 * (and 0, 0) when the trace is empty. */
gboolean       fb_trace_get_time_range (FbTrace *trace, gint64 *start_ns, gint64 *end_ns);
/* Flows with both ends present, sorted by source time. */
const FbFlow  *fb_trace_get_flows    (FbTrace *trace, guint *n_flows);
/* Indices [*first, *last) of a run of spans of @track that holds every span
 * overlapping [t0, t1), found by binary search (spans longer than the window
 * included). The run may also hold a few spans that end before t0 when a
 * long span precedes them; a painter skips those with one comparison. */
void           fb_track_find_spans   (const FbTrack *track, gint64 t0, gint64 t1,
                                      guint *first, guint *last);
/* Largest sample value on the track; 0 when it has none. */
double         fb_track_get_max_sample (const FbTrack *track);

/* Same tracks (kind, name, order, device, unit), spans (every field), flows,
 * samples and instants; titles and metadata are not compared. For tests and
 * round trips. On a difference, @why (when not NULL) says where. */
gboolean       fb_trace_equal (FbTrace *a, FbTrace *b, char **why);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbTrace, fb_trace_unref)

G_END_DECLS
