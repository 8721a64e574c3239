/* SPDX-License-Identifier: MIT
 *
 * The live CUPTI session. libcupti and libcuda are opened with dlopen, so a
 * build made with the CUDA headers still runs on a machine without the
 * toolkit's libraries or an NVIDIA driver, and then says why GPU activity
 * is not recorded.
 *
 * CUPTI's buffer callbacks carry no user data, so the running session is
 * kept in one process-wide pointer; starting a second session while one
 * runs is refused.
 */
#include "fb-cupti.h"

#include <cupti.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#ifndef FB_CUDA_ROOT
#define FB_CUDA_ROOT "/usr/local/cuda"
#endif

#define BUFFER_SIZE (8u << 20)
#define BUFFER_ALIGN 8

typedef CUptiResult (*RegisterCallbacksFn) (CUpti_BuffersCallbackRequestFunc, CUpti_BuffersCallbackCompleteFunc);
typedef CUptiResult (*RegisterTimestampFn) (CUpti_TimestampCallbackFunc);
typedef CUptiResult (*KindFn) (CUpti_ActivityKind);
typedef CUptiResult (*FlushAllFn) (uint32_t);
typedef CUptiResult (*GetNextRecordFn) (uint8_t *, size_t, CUpti_Activity **);
typedef CUptiResult (*GetDroppedFn) (CUcontext, uint32_t, size_t *);
typedef CUptiResult (*PushExternalFn) (CUpti_ExternalCorrelationKind, uint64_t);
typedef CUptiResult (*PopExternalFn) (CUpti_ExternalCorrelationKind, uint64_t *);
typedef CUptiResult (*ResultStringFn) (CUptiResult, const char **);
typedef CUptiResult (*CallbackNameFn) (CUpti_CallbackDomain, uint32_t, const char **);
typedef CUptiResult (*SetThreadIdTypeFn) (CUpti_ActivityThreadIdType);
typedef CUresult (*CuInitFn) (unsigned int);
typedef CUresult (*CuErrorStringFn) (CUresult, const char **);

typedef struct {
  void                *handle;
  RegisterCallbacksFn  register_callbacks;
  RegisterTimestampFn  register_timestamp;
  KindFn               enable;
  KindFn               disable;
  FlushAllFn           flush_all;
  GetNextRecordFn      get_next_record;
  GetDroppedFn         get_dropped;
  PushExternalFn       push_external;
  PopExternalFn        pop_external;
  ResultStringFn       result_string;
  CallbackNameFn       callback_name;      /* optional */
  SetThreadIdTypeFn    set_thread_id_type; /* optional */
} CuptiApi;

struct _FbCupti {
  CuptiApi         api;
  FbCuptiDecoder  *decoder;
  gboolean         stopped;
};

static const CUpti_ActivityKind enabled_kinds[] = {
  CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
  CUPTI_ACTIVITY_KIND_MEMCPY,
  CUPTI_ACTIVITY_KIND_MEMSET,
  CUPTI_ACTIVITY_KIND_MEMORY2,
  CUPTI_ACTIVITY_KIND_DRIVER,
  CUPTI_ACTIVITY_KIND_OVERHEAD,
  CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
};

static GMutex session_lock;
static FbCupti *session;

/* ------------------------------------------------------------- loading */

static gboolean
open_cupti (CuptiApi *api, GError **error)
{
  static const char *const candidates[] = {
    "libcupti.so.13",
    "libcupti.so",
    FB_CUDA_ROOT "/lib64/libcupti.so.13",
    FB_CUDA_ROOT "/lib/libcupti.so.13",
    FB_CUDA_ROOT "/extras/CUPTI/lib64/libcupti.so.13",
  };
  g_autofree char *first_error = NULL;

  memset (api, 0, sizeof *api);
  for (guint i = 0; i < G_N_ELEMENTS (candidates) && !api->handle; i++)
    {
      api->handle = dlopen (candidates[i], RTLD_NOW | RTLD_LOCAL);
      if (!api->handle && !first_error)
        first_error = g_strdup (dlerror ());
    }
  if (!api->handle)
    {
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_UNAVAILABLE, "CUPTI off: %s", first_error);
      return FALSE;
    }

#define SYM(field, name) \
  (api->field = (__typeof__ (api->field)) dlsym (api->handle, name))
  if (!SYM (register_callbacks, "cuptiActivityRegisterCallbacks")
      || !SYM (register_timestamp, "cuptiActivityRegisterTimestampCallback")
      || !SYM (enable, "cuptiActivityEnable")
      || !SYM (disable, "cuptiActivityDisable")
      || !SYM (flush_all, "cuptiActivityFlushAll")
      || !SYM (get_next_record, "cuptiActivityGetNextRecord")
      || !SYM (get_dropped, "cuptiActivityGetNumDroppedRecords")
      || !SYM (push_external, "cuptiActivityPushExternalCorrelationId")
      || !SYM (pop_external, "cuptiActivityPopExternalCorrelationId")
      || !SYM (result_string, "cuptiGetResultString"))
    {
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_UNAVAILABLE,
                   "CUPTI off: the CUPTI library lacks %s (it is older than CUDA 13?)", dlerror ());
      dlclose (api->handle);
      api->handle = NULL;
      return FALSE;
    }
  SYM (callback_name, "cuptiGetCallbackName");
  SYM (set_thread_id_type, "cuptiSetThreadIdType");
#undef SYM
  return TRUE;
}

/* The driver stays loaded once opened: unloading libcuda is not safe. */
static gboolean
check_driver (GError **error)
{
  void *cuda = dlopen ("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  CuInitFn cu_init;
  CuErrorStringFn cu_error;
  CUresult r;

  if (!cuda)
    {
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_UNAVAILABLE,
                   "CUPTI off: no NVIDIA driver (%s)", dlerror ());
      return FALSE;
    }
  cu_init = (CuInitFn) dlsym (cuda, "cuInit");
  cu_error = (CuErrorStringFn) dlsym (cuda, "cuGetErrorString");
  if (!cu_init)
    {
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_UNAVAILABLE,
                   "CUPTI off: libcuda.so.1 has no cuInit");
      return FALSE;
    }
  r = cu_init (0);
  if (r != CUDA_SUCCESS)
    {
      const char *text = NULL;
      if (cu_error)
        cu_error (r, &text);
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_UNAVAILABLE,
                   "CUPTI off: cuInit failed: %s (CUresult %d)", text ? text : "unknown error", (int) r);
      return FALSE;
    }
  return TRUE;
}

gboolean
fb_cupti_probe (GError **error)
{
  CuptiApi api;

  if (!open_cupti (&api, error))
    return FALSE;
  dlclose (api.handle);
  return check_driver (error);
}

/* ----------------------------------------------------------- callbacks */

static uint64_t CUPTIAPI
timestamp_now (void)
{
  return (uint64_t) fb_trace_now_ns ();
}

static void CUPTIAPI
buffer_requested (uint8_t **buffer, size_t *size, size_t *max_records)
{
  void *p = NULL;

  if (posix_memalign (&p, BUFFER_ALIGN, BUFFER_SIZE) != 0)
    p = NULL;
  *buffer = p;
  *size = p ? BUFFER_SIZE : 0;
  *max_records = 0;
}

static void CUPTIAPI
buffer_completed (CUcontext context, uint32_t stream, uint8_t *buffer, size_t size, size_t valid)
{
  FbCupti *s;

  g_mutex_lock (&session_lock);
  s = session;
  if (s && valid > 0)
    {
      CUpti_Activity *record = NULL;
      size_t dropped = 0;

      while (s->api.get_next_record (buffer, valid, &record) == CUPTI_SUCCESS)
        fb_cupti_decoder_add_record (s->decoder, record);
      if (s->api.get_dropped (context, stream, &dropped) == CUPTI_SUCCESS && dropped > 0)
        fb_cupti_decoder_add_dropped (s->decoder, dropped);
    }
  g_mutex_unlock (&session_lock);
  free (buffer);
}

static const char *
api_name (guint32 cbid, gpointer data)
{
  FbCupti *s = data;
  const char *name = NULL;

  if (s->api.callback_name
      && s->api.callback_name (CUPTI_CB_DOMAIN_DRIVER_API, cbid, &name) == CUPTI_SUCCESS)
    return name;
  return NULL;
}

/* ------------------------------------------------------------- session */

static gboolean
check (FbCupti *s, CUptiResult r, const char *what, GError **error)
{
  const char *text = NULL;

  if (r == CUPTI_SUCCESS)
    return TRUE;
  s->api.result_string (r, &text);
  g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_FAILED, "%s: %s", what,
               text ? text : "unknown CUPTI error");
  return FALSE;
}

FbCupti *
fb_cupti_start (FbTrace *trace, FbMemoryTimeline *memory, GError **error)
{
  g_autoptr (FbCupti) s = g_new0 (FbCupti, 1);

  g_return_val_if_fail (trace != NULL, NULL);
  s->stopped = TRUE;
  if (!open_cupti (&s->api, error) || !check_driver (error))
    return NULL;

  g_mutex_lock (&session_lock);
  if (session)
    {
      g_mutex_unlock (&session_lock);
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_USAGE,
                   "a CUPTI session is already recording in this process");
      return NULL;
    }
  s->decoder = fb_cupti_decoder_new (trace, memory);
  fb_cupti_decoder_set_api_names (s->decoder, api_name, s);
  session = s;
  s->stopped = FALSE;
  g_mutex_unlock (&session_lock);

  if (s->api.set_thread_id_type)
    s->api.set_thread_id_type (CUPTI_ACTIVITY_THREAD_ID_TYPE_SYSTEM);
  if (!check (s, s->api.register_timestamp (timestamp_now), "cuptiActivityRegisterTimestampCallback", error)
      || !check (s, s->api.register_callbacks (buffer_requested, buffer_completed),
                 "cuptiActivityRegisterCallbacks", error))
    return NULL;     /* fb_cupti_free clears the session */
  for (guint i = 0; i < G_N_ELEMENTS (enabled_kinds); i++)
    {
      g_autofree char *what = g_strdup_printf ("cuptiActivityEnable (kind %d)", (int) enabled_kinds[i]);
      if (!check (s, s->api.enable (enabled_kinds[i]), what, error))
        return NULL;
    }
  return g_steal_pointer (&s);
}

FbCuptiDecoder *
fb_cupti_get_decoder (FbCupti *s)
{
  g_return_val_if_fail (s != NULL, NULL);
  return s->decoder;
}

void
fb_cupti_push_kernel (FbCupti *s, int kernel_id, int step)
{
  g_return_if_fail (s != NULL && kernel_id >= 0);
  s->api.push_external (CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, fb_cupti_external_id (kernel_id, step));
}

void
fb_cupti_pop_kernel (FbCupti *s)
{
  uint64_t last = 0;

  g_return_if_fail (s != NULL);
  s->api.pop_external (CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
}

gboolean
fb_cupti_stop (FbCupti *s, GError **error)
{
  gboolean ok;

  g_return_val_if_fail (s != NULL, FALSE);
  if (s->stopped)
    return TRUE;
  ok = check (s, s->api.flush_all (CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll", error);
  for (guint i = 0; i < G_N_ELEMENTS (enabled_kinds); i++)
    s->api.disable (enabled_kinds[i]);
  g_mutex_lock (&session_lock);
  if (session == s)
    session = NULL;
  s->stopped = TRUE;
  g_mutex_unlock (&session_lock);
  fb_cupti_decoder_finish (s->decoder);
  return ok;
}

void
fb_cupti_free (FbCupti *s)
{
  if (!s)
    return;
  if (!s->stopped)
    fb_cupti_stop (s, NULL);
  g_mutex_lock (&session_lock);
  if (session == s)
    session = NULL;
  g_mutex_unlock (&session_lock);
  fb_cupti_decoder_free (s->decoder);
  /* libcupti stays loaded: it may still hold our callbacks. */
  g_free (s);
}
