/* SPDX-License-Identifier: MIT
 *
 * The CPU recorder: what a backend and the runner call to put kernels and
 * training steps into a trace. A begin/end pair fills a span on the calling
 * thread's track (the thread that created the recorder gets a host-thread
 * track, every other thread a CPU-worker track); the scope lives on the
 * caller's stack, so recording takes no lock and no allocation after a
 * thread's first span.
 *
 * With FB_RECORDER_HW_COUNTERS, each kernel span also carries cycles,
 * instructions and cache misses of its thread, read through perf_event_open.
 * Where the system does not allow that (a container, perf_event_paranoid too
 * high, no PMU in a VM), spans carry no counters and
 * fb_recorder_get_counters_status says why: `counters unavailable: REASON`.
 *
 *   FbRecorderScope step, k;
 *   fb_recorder_begin_step (rec, &step, 3);
 *   fb_recorder_begin_kernel (rec, &k, 0, "fusion.2", n_ids, ids);
 *   ... run the kernel ...
 *   fb_recorder_end (rec, &k);
 *   fb_recorder_end (rec, &step);
 */
#pragma once

#include "fb-trace.h"

G_BEGIN_DECLS

typedef enum {
  FB_RECORDER_NONE        = 0,
  FB_RECORDER_HW_COUNTERS = 1 << 0,  /* try perf events for kernel spans */
} FbRecorderFlags;

typedef struct _FbRecorder FbRecorder;

/* An open span on the caller's stack. Between begin and end the caller may
 * set span.flow_in, span.flow_out, span.bytes or span.correlation. */
typedef struct {
  FbSpan   span;
  guint    track;
  gboolean hw_started;
  guint64  hw_start[FB_N_HW_COUNTERS];
} FbRecorderScope;

/* Records into @trace (a reference is taken). The calling thread becomes the
 * host thread. */
FbRecorder *fb_recorder_new  (FbTrace *trace, FbRecorderFlags flags);
void        fb_recorder_free (FbRecorder *recorder);
FbTrace    *fb_recorder_get_trace (FbRecorder *recorder);

/* Names the calling thread's track ("worker 2"); call before its first span. */
void        fb_recorder_name_thread (FbRecorder *recorder, const char *name);

/* A training step (from 1). Kernels begun on any thread while the step is
 * open carry its number. */
void        fb_recorder_begin_step   (FbRecorder *recorder, FbRecorderScope *scope, int step);
/* A kernel on the calling thread. @name and @instr_ids are copied at end. */
void        fb_recorder_begin_kernel (FbRecorder *recorder, FbRecorderScope *scope,
                                      int kernel_id, const char *name,
                                      guint n_instr, const gint64 *instr_ids);
/* Any other span (a copy, an allocation, a phase of the runner). */
void        fb_recorder_begin        (FbRecorder *recorder, FbRecorderScope *scope,
                                      FbSpanKind kind, const char *name);
void        fb_recorder_end          (FbRecorder *recorder, FbRecorderScope *scope);

/* The step open on the host thread; -1 when none. */
int         fb_recorder_get_step (FbRecorder *recorder);

/* TRUE when kernel spans carry hardware counters. When FALSE, @reason
 * (when not NULL) receives "counters unavailable: REASON", or "counters not
 * requested" when the flag was not given. */
gboolean    fb_recorder_has_counters (FbRecorder *recorder, char **reason);

/* Probes perf_event_open for the calling thread without a recorder. TRUE
 * when cycles, instructions and cache misses can all be counted; otherwise
 * FALSE with an FB_PROFILER_ERROR_UNAVAILABLE error whose message is
 * "counters unavailable: REASON" (the errno text and, on EACCES/EPERM, the
 * value of /proc/sys/kernel/perf_event_paranoid). */
gboolean    fb_recorder_probe_counters (GError **error);

/* Measures the cost of one begin/end kernel pair (with counters when
 * @flags asks for them) over @iterations pairs into a scratch trace;
 * returns nanoseconds per pair. For benchmarks and the CLI's report. */
double      fb_recorder_measure_overhead_ns (FbRecorderFlags flags, guint iterations);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbRecorder, fb_recorder_free)

G_END_DECLS
