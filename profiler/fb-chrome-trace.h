/* SPDX-License-Identifier: MIT
 *
 * Chrome trace JSON (the Trace Event Format), which Perfetto and
 * chrome://tracing open, written from an FbTrace and read back into one.
 *
 * What is written: M metadata events naming each process (the host, each
 * GPU) and each track (thread_name, thread_sort_index), X complete events
 * for spans with their kernel id, instruction ids, step and counters in
 * args, C counter events for memory and counter tracks, s/f flow events for
 * flows, and i instant events. Times are microseconds with three decimals
 * (exact nanoseconds), relative to the trace's first event; the absolute
 * origin is kept in otherData so that reading gives back the same
 * CLOCK_MONOTONIC times.
 *
 * The reader accepts what the writer produces, so Fusebox reopens its own
 * traces exactly (fb_trace_equal holds), and also plain Chrome traces from
 * other tools: the object form or a bare array, B/E pairs as well as X, and
 * s/f flows bound to the enclosing span. Events of other phases are skipped.
 * Malformed input gives an FB_PROFILER_ERROR_PARSE error that names the file
 * with line and column.
 */
#pragma once

#include "fb-trace.h"

G_BEGIN_DECLS

/* The whole trace as JSON text (finishing it if needed). */
char    *fb_chrome_trace_to_string (FbTrace *trace);
gboolean fb_chrome_trace_write     (FbTrace *trace, const char *path, GError **error);

/* @filename is only used in messages; NULL: "<trace>". @len < 0: NUL-terminated. */
FbTrace *fb_chrome_trace_parse     (const char *text, gssize len, const char *filename,
                                    GError **error);
FbTrace *fb_chrome_trace_read      (const char *path, GError **error);

G_END_DECLS
