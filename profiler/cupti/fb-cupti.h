/* SPDX-License-Identifier: MIT
 *
 * The CUPTI recorder: GPU activity (kernels, copies, sets, allocations,
 * driver calls, CUPTI's own overhead) turned into trace spans and memory
 * events, on the same CLOCK_MONOTONIC clock as the CPU recorder.
 *
 * It has two halves:
 *
 *  - the decoder, which takes activity records one at a time (pointers to
 *    CUpti_Activity records as CUPTI hands them out) and needs no driver, so
 *    tests can feed it records they build themselves;
 *  - the live session, which opens libcupti with dlopen (libcupti.so.13,
 *    then libcupti.so), sets CUPTI's timestamp callback to our clock,
 *    enables the activity kinds we decode, and passes every completed buffer
 *    to a decoder. Without a driver it says why CUPTI is off.
 *
 * Kernels are tied back to Fusebox kernels through CUPTI's external
 * correlation: around each launch the caller pushes an external id made by
 * fb_cupti_external_id (the kernel id, with the step in the upper half).
 * The decoder then gives the kernel span its kernel id, step, name and
 * instruction ids (from fb_cupti_decoder_set_kernel), and links the driver
 * call that launched it with a flow.
 *
 * This header does not include the CUDA headers; records are passed as
 * untyped pointers.
 */
#pragma once

#include "fb-memory.h"
#include "fb-trace.h"

G_BEGIN_DECLS

/* External correlation id for a launch of @kernel_id in @step (-1: none). */
static inline guint64
fb_cupti_external_id (int kernel_id, int step)
{
  return ((guint64) (guint32) (step < 0 ? 0 : step) << 32) | (guint32) kernel_id;
}

/* ---------------------------------------------------------------- decoder */

typedef struct _FbCuptiDecoder FbCuptiDecoder;

/* Names a driver API call from its callback id (cuptiGetCallbackName in the
 * live session); NULL: "driver call CBID". */
typedef const char *(*FbCuptiApiNameFn) (guint32 cbid, gpointer user_data);

/* Spans go to @trace when the decoder finishes; allocations and frees go to
 * @memory (may be NULL) as they are decoded. */
FbCuptiDecoder *fb_cupti_decoder_new  (FbTrace *trace, FbMemoryTimeline *memory);
void            fb_cupti_decoder_free (FbCuptiDecoder *decoder);

void     fb_cupti_decoder_set_api_names (FbCuptiDecoder *decoder, FbCuptiApiNameFn fn, gpointer user_data);
/* What the decoder puts on the spans of @kernel_id; the arrays are copied. */
void     fb_cupti_decoder_set_kernel (FbCuptiDecoder *decoder, int kernel_id, const char *name,
                                      guint n_instr, const gint64 *instr_ids);

/* Decodes one record (a CUpti_Activity *). Kinds the decoder does not know
 * are counted and skipped. Thread-safe. */
void     fb_cupti_decoder_add_record  (FbCuptiDecoder *decoder, gconstpointer record);
/* Records CUPTI reported as dropped (cuptiActivityGetNumDroppedRecords). */
void     fb_cupti_decoder_add_dropped (FbCuptiDecoder *decoder, guint64 n);

guint64  fb_cupti_decoder_get_dropped     (FbCuptiDecoder *decoder);
guint    fb_cupti_decoder_get_n_records   (FbCuptiDecoder *decoder);
guint    fb_cupti_decoder_get_n_skipped   (FbCuptiDecoder *decoder);
/* "CUPTI dropped N activity records ..." when records were dropped, else
 * NULL. Free with g_free. */
char    *fb_cupti_decoder_describe_dropped (FbCuptiDecoder *decoder);

/* Resolves correlations (kernel ids, steps, flows from driver calls to the
 * work they launched) and appends every span to the trace, on one track per
 * GPU stream ("stream N" on its device), one per API thread and one for
 * CUPTI overhead. Records the dropped count in the trace metadata
 * ("cupti.dropped_records") when there are any. Call once. */
void     fb_cupti_decoder_finish (FbCuptiDecoder *decoder);

/* ----------------------------------------------------------- live session */

typedef struct _FbCupti FbCupti;

/* TRUE when a live session could start here; otherwise FALSE with an
 * FB_PROFILER_ERROR_UNAVAILABLE error "CUPTI off: REASON" (the dlopen error,
 * or cuInit's failure). */
gboolean fb_cupti_probe (GError **error);

/* Starts recording GPU activity into @trace and @memory (may be NULL). Only
 * one session may run at a time in a process (CUPTI's callbacks are global). */
FbCupti *fb_cupti_start (FbTrace *trace, FbMemoryTimeline *memory, GError **error);
FbCuptiDecoder *fb_cupti_get_decoder (FbCupti *cupti);
/* Around a launch on the calling thread. */
void     fb_cupti_push_kernel (FbCupti *cupti, int kernel_id, int step);
void     fb_cupti_pop_kernel  (FbCupti *cupti);
/* Flushes, disables the activity kinds and finishes the decoder. */
gboolean fb_cupti_stop (FbCupti *cupti, GError **error);
void     fb_cupti_free (FbCupti *cupti);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbCuptiDecoder, fb_cupti_decoder_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbCupti, fb_cupti_free)

G_END_DECLS
