/* SPDX-License-Identifier: MIT
 *
 * The CUPTI record decoder. Records arrive in buffer order, which is not
 * time order and not even causal order across kinds: an external
 * correlation record may come after the kernel it names, in another buffer.
 * So the decoder keeps spans pending until fb_cupti_decoder_finish, which
 * resolves correlation ids (to our kernel ids and steps, and to flows from
 * a driver call to the work it launched) and then appends everything.
 *
 * The record layouts are CUDA 13's (CUpti_ActivityKernel10, Memcpy6,
 * Memset4, Memory4 for MEMORY2, API, Overhead3, ExternalCorrelation).
 * Times are taken as they are: the live session makes CUPTI stamp records
 * with our CLOCK_MONOTONIC nanoseconds.
 */
#include "fb-cupti.h"

#include <cupti_activity.h>
#include <string.h>

typedef enum {
  LANE_STREAM,
  LANE_API,
  LANE_OVERHEAD,
} Lane;

typedef struct {
  FbSpan   span;
  Lane     lane;
  guint32  device;
  guint32  stream;     /* or thread id for API spans */
} Pending;

typedef struct {
  char   *name;
  guint   n_instr;
  gint64 *instr_ids;
} KernelInfo;

struct _FbCuptiDecoder {
  FbTrace          *trace;
  FbMemoryTimeline *memory;
  GMutex            lock;
  GArray           *pending;      /* Pending */
  GHashTable       *external;     /* correlation id -> external id (guint64 *) */
  GHashTable       *kernels;      /* kernel id -> KernelInfo */
  GStringChunk     *strings;
  guint64           dropped;
  guint             n_records;
  guint             n_skipped;
  FbCuptiApiNameFn  api_name;
  gpointer          api_data;
  gboolean          finished;
};

static void
kernel_info_free (KernelInfo *ki)
{
  g_free (ki->name);
  g_free (ki->instr_ids);
  g_free (ki);
}

FbCuptiDecoder *
fb_cupti_decoder_new (FbTrace *trace, FbMemoryTimeline *memory)
{
  FbCuptiDecoder *dec;

  g_return_val_if_fail (trace != NULL, NULL);
  dec = g_new0 (FbCuptiDecoder, 1);
  dec->trace = fb_trace_ref (trace);
  dec->memory = memory;
  g_mutex_init (&dec->lock);
  dec->pending = g_array_new (FALSE, FALSE, sizeof (Pending));
  dec->external = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  dec->kernels = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                        (GDestroyNotify) kernel_info_free);
  dec->strings = g_string_chunk_new (4096);
  return dec;
}

void
fb_cupti_decoder_free (FbCuptiDecoder *dec)
{
  if (!dec)
    return;
  g_array_free (dec->pending, TRUE);
  g_hash_table_unref (dec->external);
  g_hash_table_unref (dec->kernels);
  g_string_chunk_free (dec->strings);
  g_mutex_clear (&dec->lock);
  fb_trace_unref (dec->trace);
  g_free (dec);
}

void
fb_cupti_decoder_set_api_names (FbCuptiDecoder *dec, FbCuptiApiNameFn fn, gpointer user_data)
{
  g_return_if_fail (dec != NULL);
  dec->api_name = fn;
  dec->api_data = user_data;
}

void
fb_cupti_decoder_set_kernel (FbCuptiDecoder *dec, int kernel_id, const char *name, guint n_instr,
                             const gint64 *instr_ids)
{
  KernelInfo *ki;

  g_return_if_fail (dec != NULL && kernel_id >= 0);
  ki = g_new0 (KernelInfo, 1);
  ki->name = g_strdup (name);
  ki->n_instr = instr_ids ? n_instr : 0;
  ki->instr_ids = ki->n_instr ? g_memdup2 (instr_ids, sizeof (gint64) * n_instr) : NULL;
  g_mutex_lock (&dec->lock);
  g_hash_table_replace (dec->kernels, GINT_TO_POINTER (kernel_id), ki);
  g_mutex_unlock (&dec->lock);
}

static const char *
memcpy_name (guint8 kind)
{
  switch (kind)
    {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOA: return "memcpy HtoA";
    case CUPTI_ACTIVITY_MEMCPY_KIND_ATOH: return "memcpy AtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_ATOA: return "memcpy AtoA";
    case CUPTI_ACTIVITY_MEMCPY_KIND_ATOD: return "memcpy AtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOA: return "memcpy DtoA";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return "memcpy HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return "memcpy PtoP";
    default: return "memcpy";
    }
}

static const char *
overhead_name (CUpti_ActivityOverheadKind kind)
{
  switch ((int) kind)
    {
    case CUPTI_ACTIVITY_OVERHEAD_DRIVER_COMPILER: return "driver compiler";
    case CUPTI_ACTIVITY_OVERHEAD_CUPTI_BUFFER_FLUSH: return "CUPTI buffer flush";
    case CUPTI_ACTIVITY_OVERHEAD_CUPTI_INSTRUMENTATION: return "CUPTI instrumentation";
    case CUPTI_ACTIVITY_OVERHEAD_CUPTI_RESOURCE: return "CUPTI resource";
    case CUPTI_ACTIVITY_OVERHEAD_RUNTIME_TRIGGERED_MODULE_LOADING: return "module loading";
    case CUPTI_ACTIVITY_OVERHEAD_LAZY_FUNCTION_LOADING: return "lazy function loading";
    case CUPTI_ACTIVITY_OVERHEAD_COMMAND_BUFFER_FULL: return "command buffer full";
    case CUPTI_ACTIVITY_OVERHEAD_ACTIVITY_BUFFER_REQUEST: return "CUPTI buffer request";
    case CUPTI_ACTIVITY_OVERHEAD_UVM_ACTIVITY_INIT: return "UVM activity init";
    default: return "overhead";
    }
}

static void
push_span (FbCuptiDecoder *dec, FbSpanKind kind, const char *name, guint64 start, guint64 end,
           guint32 correlation, Lane lane, guint32 device, guint32 stream, guint64 bytes)
{
  Pending p;

  fb_span_init (&p.span);
  p.span.kind = kind;
  p.span.name = g_string_chunk_insert_const (dec->strings, name ? name : "");
  p.span.start_ns = (gint64) start;
  /* CUPTI leaves end at 0 for records it could not complete. */
  p.span.end_ns = end >= start ? (gint64) end : (gint64) start;
  p.span.correlation = correlation;
  p.span.bytes = bytes;
  p.lane = lane;
  p.device = device;
  p.stream = stream;
  g_array_append_val (dec->pending, p);
}

void
fb_cupti_decoder_add_record (FbCuptiDecoder *dec, gconstpointer record)
{
  const CUpti_Activity *rec = record;

  g_return_if_fail (dec != NULL && record != NULL);
  g_mutex_lock (&dec->lock);
  if (dec->finished)
    {
      g_mutex_unlock (&dec->lock);
      g_critical ("a CUPTI record arrived after the decoder finished; it is ignored");
      return;
    }
  dec->n_records++;
  switch (rec->kind)
    {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      {
        const CUpti_ActivityKernel10 *k = record;
        push_span (dec, FB_SPAN_KERNEL, k->name ? k->name : "kernel", k->start, k->end,
                   k->correlationId, LANE_STREAM, k->deviceId, k->streamId, 0);
        break;
      }
    case CUPTI_ACTIVITY_KIND_MEMCPY:
      {
        const CUpti_ActivityMemcpy6 *m = record;
        push_span (dec, FB_SPAN_MEMCPY, memcpy_name (m->copyKind), m->start, m->end,
                   m->correlationId, LANE_STREAM, m->deviceId, m->streamId, m->bytes);
        break;
      }
    case CUPTI_ACTIVITY_KIND_MEMSET:
      {
        const CUpti_ActivityMemset4 *m = record;
        push_span (dec, FB_SPAN_MEMSET, "memset", m->start, m->end, m->correlationId,
                   LANE_STREAM, m->deviceId, m->streamId, m->bytes);
        break;
      }
    case CUPTI_ACTIVITY_KIND_MEMORY2:
      {
        const CUpti_ActivityMemory4 *m = record;
        FbMemoryEventKind kind;

        if (m->memoryOperationType == CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION)
          kind = FB_MEMORY_ALLOC;
        else if (m->memoryOperationType == CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE)
          kind = FB_MEMORY_FREE;
        else
          {
            dec->n_skipped++;
            break;
          }
        if (dec->memory)
          fb_memory_timeline_add_event (dec->memory, kind, (gint64) m->timestamp, m->address,
                                        m->bytes, (int) m->deviceId);
        break;
      }
    case CUPTI_ACTIVITY_KIND_DRIVER:
    case CUPTI_ACTIVITY_KIND_RUNTIME:
      {
        const CUpti_ActivityAPI *a = record;
        const char *name = dec->api_name ? dec->api_name (a->cbid, dec->api_data) : NULL;
        g_autofree char *fallback = NULL;

        if (!name)
          name = fallback = g_strdup_printf ("%s call %u",
                                             rec->kind == CUPTI_ACTIVITY_KIND_DRIVER ? "driver" : "runtime",
                                             (guint) a->cbid);
        push_span (dec, FB_SPAN_API, name, a->start, a->end, a->correlationId, LANE_API, 0,
                   a->threadId, 0);
        break;
      }
    case CUPTI_ACTIVITY_KIND_OVERHEAD:
      {
        const CUpti_ActivityOverhead3 *o = record;
        push_span (dec, FB_SPAN_OVERHEAD, overhead_name (o->overheadKind), o->start, o->end,
                   o->correlationId, LANE_OVERHEAD, 0, 0, 0);
        break;
      }
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION:
      {
        const CUpti_ActivityExternalCorrelation *e = record;

        if (e->externalKind != CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0)
          {
            dec->n_skipped++;
            break;
          }
        g_hash_table_replace (dec->external, GUINT_TO_POINTER (e->correlationId),
                              g_memdup2 (&e->externalId, sizeof e->externalId));
        break;
      }
    default:
      dec->n_skipped++;
    }
  g_mutex_unlock (&dec->lock);
}

void
fb_cupti_decoder_add_dropped (FbCuptiDecoder *dec, guint64 n)
{
  g_return_if_fail (dec != NULL);
  g_mutex_lock (&dec->lock);
  dec->dropped += n;
  g_mutex_unlock (&dec->lock);
}

guint64
fb_cupti_decoder_get_dropped (FbCuptiDecoder *dec)
{
  g_return_val_if_fail (dec != NULL, 0);
  return dec->dropped;
}

guint
fb_cupti_decoder_get_n_records (FbCuptiDecoder *dec)
{
  g_return_val_if_fail (dec != NULL, 0);
  return dec->n_records;
}

guint
fb_cupti_decoder_get_n_skipped (FbCuptiDecoder *dec)
{
  g_return_val_if_fail (dec != NULL, 0);
  return dec->n_skipped;
}

char *
fb_cupti_decoder_describe_dropped (FbCuptiDecoder *dec)
{
  g_return_val_if_fail (dec != NULL, NULL);
  if (dec->dropped == 0)
    return NULL;
  return g_strdup_printf ("CUPTI dropped %" G_GUINT64_FORMAT " activity record%s: the trace is "
                          "missing GPU activity (buffers filled faster than they were handed back)",
                          dec->dropped, dec->dropped == 1 ? "" : "s");
}

static guint
lane_track (FbCuptiDecoder *dec, GHashTable *tracks, const Pending *p)
{
  g_autofree char *key = g_strdup_printf ("%d:%u:%u", p->lane, p->device, p->stream);
  gpointer id;
  g_autofree char *name = NULL;
  guint track;

  if (g_hash_table_lookup_extended (tracks, key, NULL, &id))
    return GPOINTER_TO_UINT (id);
  switch (p->lane)
    {
    case LANE_STREAM:
      name = g_strdup_printf ("stream %u", p->stream);
      track = fb_trace_add_track (dec->trace, FB_TRACK_GPU_STREAM, name,
                                  1000 + (int) p->device * 1000 + (int) p->stream, (int) p->device,
                                  p->stream, NULL);
      break;
    case LANE_API:
      name = g_strdup_printf ("CUDA API (thread %u)", p->stream);
      track = fb_trace_add_track (dec->trace, FB_TRACK_HOST_THREAD, name, 900, -1, p->stream, NULL);
      break;
    default:
      track = fb_trace_add_track (dec->trace, FB_TRACK_HOST_THREAD, "CUPTI overhead", 999, -1, 0, NULL);
    }
  g_hash_table_insert (tracks, g_steal_pointer (&key), GUINT_TO_POINTER (track));
  return track;
}

void
fb_cupti_decoder_finish (FbCuptiDecoder *dec)
{
  g_autoptr (GHashTable) api_by_corr = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_autoptr (GHashTable) tracks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  g_return_if_fail (dec != NULL);
  g_mutex_lock (&dec->lock);
  if (dec->finished)
    {
      g_mutex_unlock (&dec->lock);
      return;
    }
  dec->finished = TRUE;

  for (guint i = 0; i < dec->pending->len; i++)
    {
      Pending *p = &g_array_index (dec->pending, Pending, i);
      if (p->lane == LANE_API && p->span.correlation)
        g_hash_table_insert (api_by_corr, GUINT_TO_POINTER ((guint32) p->span.correlation),
                             GUINT_TO_POINTER (i + 1));
    }

  for (guint i = 0; i < dec->pending->len; i++)
    {
      Pending *p = &g_array_index (dec->pending, Pending, i);
      guint32 corr = (guint32) p->span.correlation;
      const guint64 *ext;
      guint api;

      if (p->lane != LANE_STREAM || corr == 0)
        continue;
      ext = g_hash_table_lookup (dec->external, GUINT_TO_POINTER (corr));
      api = GPOINTER_TO_UINT (g_hash_table_lookup (api_by_corr, GUINT_TO_POINTER (corr)));
      if (ext)
        {
          int kernel_id = (int) (guint32) (*ext & 0xffffffffu);
          guint32 step = (guint32) (*ext >> 32);

          p->span.step = step ? (int) step : -1;
          if (p->span.kind == FB_SPAN_KERNEL)
            {
              KernelInfo *ki = g_hash_table_lookup (dec->kernels, GINT_TO_POINTER (kernel_id));

              p->span.kernel_id = kernel_id;
              if (ki)
                {
                  if (ki->name)
                    p->span.name = g_string_chunk_insert_const (dec->strings, ki->name);
                  p->span.n_instr = ki->n_instr;
                  p->span.instr_ids = ki->instr_ids;
                }
            }
        }
      if (api)
        {
          Pending *a = &g_array_index (dec->pending, Pending, api - 1);

          if (ext)
            a->span.step = p->span.step;
          if (a->span.flow_out == 0)
            {
              a->span.flow_out = fb_trace_new_flow_id (dec->trace);
              p->span.flow_in = a->span.flow_out;
            }
        }
    }

  for (guint i = 0; i < dec->pending->len; i++)
    {
      Pending *p = &g_array_index (dec->pending, Pending, i);
      fb_trace_add_span (dec->trace, lane_track (dec, tracks, p), &p->span);
    }
  if (dec->dropped > 0)
    {
      g_autofree char *n = g_strdup_printf ("%" G_GUINT64_FORMAT, dec->dropped);
      fb_trace_set_metadata (dec->trace, "cupti.dropped_records", n);
    }
  g_mutex_unlock (&dec->lock);
}
