/* SPDX-License-Identifier: MIT
 *
 * Tests of the CUPTI recorder. The decoder is fed activity records built
 * here, field by field, in CUDA 13's layouts: kernels, copies, sets,
 * allocations, driver calls, overhead and external correlations must come
 * out as spans and memory events with the right times and ids. The live
 * session needs an NVIDIA driver; without one it must say why CUPTI is off.
 */
#include <string.h>

#include "fb-chrome-trace.h"
#include "fb-trace.h"

#ifdef FB_HAVE_CUPTI

#include <cupti_activity.h>
#include "fb-cupti.h"

#define T0 G_GINT64_CONSTANT (5000000000)

static CUpti_ActivityKernel10
kernel_record (guint32 corr, guint32 stream, guint64 start, guint64 end, const char *name)
{
  CUpti_ActivityKernel10 k;

  memset (&k, 0, sizeof k);
  k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
  k.start = start;
  k.end = end;
  k.deviceId = 0;
  k.streamId = stream;
  k.correlationId = corr;
  k.gridX = 128;
  k.blockX = 256;
  k.name = name;
  return k;
}

static CUpti_ActivityAPI
api_record (guint32 corr, guint32 cbid, guint64 start, guint64 end)
{
  CUpti_ActivityAPI a;

  memset (&a, 0, sizeof a);
  a.kind = CUPTI_ACTIVITY_KIND_DRIVER;
  a.cbid = cbid;
  a.start = start;
  a.end = end;
  a.processId = 100;
  a.threadId = 4321;
  a.correlationId = corr;
  return a;
}

static CUpti_ActivityExternalCorrelation
external_record (guint32 corr, guint64 external)
{
  CUpti_ActivityExternalCorrelation e;

  memset (&e, 0, sizeof e);
  e.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
  e.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
  e.externalId = external;
  e.correlationId = corr;
  return e;
}

static const char *
fake_api_name (guint32 cbid, gpointer data)
{
  return cbid == 307 ? "cuLaunchKernel" : NULL;
}

static const FbSpan *
only_span (FbTrace *trace, FbTrackKind kind, const char *track_name)
{
  const FbTrack *t = fb_trace_find_track (trace, kind, track_name);

  g_assert_nonnull (t);
  g_assert_cmpuint (t->n_spans, ==, 1);
  return &t->spans[0];
}

static void
test_decode_kernel (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbCuptiDecoder) dec = fb_cupti_decoder_new (trace, NULL);
  static const gint64 ids[] = { 11, 12, 13 };
  CUpti_ActivityExternalCorrelation ext = external_record (9, fb_cupti_external_id (4, 3));
  CUpti_ActivityAPI launch = api_record (9, 307, T0 + 100, T0 + 900);
  CUpti_ActivityKernel10 k = kernel_record (9, 7, T0 + 1500, T0 + 51500, "fb_fusion_4");
  CUpti_ActivityKernel10 other = kernel_record (10, 7, T0 + 60000, T0 + 61000, "raw_kernel");
  const FbSpan *ks, *as;
  const FbTrack *stream;
  const FbFlow *flows;
  guint n_flows;

  fb_cupti_decoder_set_api_names (dec, fake_api_name, NULL);
  fb_cupti_decoder_set_kernel (dec, 4, "fusion.4", G_N_ELEMENTS (ids), ids);
  fb_cupti_decoder_add_record (dec, &ext);
  fb_cupti_decoder_add_record (dec, &launch);
  fb_cupti_decoder_add_record (dec, &k);
  fb_cupti_decoder_add_record (dec, &other);
  fb_cupti_decoder_finish (dec);
  g_assert_cmpuint (fb_cupti_decoder_get_n_records (dec), ==, 4);
  g_assert_cmpuint (fb_cupti_decoder_get_n_skipped (dec), ==, 0);

  stream = fb_trace_find_track (trace, FB_TRACK_GPU_STREAM, "stream 7");
  g_assert_nonnull (stream);
  g_assert_cmpint (stream->device, ==, 0);
  g_assert_cmpint (stream->tid, ==, 7);
  g_assert_cmpuint (stream->n_spans, ==, 2);
  ks = &stream->spans[0];
  g_assert_cmpstr (ks->name, ==, "fusion.4");
  g_assert_cmpint (ks->kind, ==, FB_SPAN_KERNEL);
  g_assert_cmpint (ks->start_ns, ==, T0 + 1500);
  g_assert_cmpint (ks->end_ns, ==, T0 + 51500);
  g_assert_cmpint (ks->kernel_id, ==, 4);
  g_assert_cmpint (ks->step, ==, 3);
  g_assert_cmpuint (ks->correlation, ==, 9);
  g_assert_cmpuint (ks->n_instr, ==, 3);
  g_assert_cmpint (ks->instr_ids[2], ==, 13);
  /* A kernel without an external id keeps CUPTI's name and no kernel id. */
  g_assert_cmpstr (stream->spans[1].name, ==, "raw_kernel");
  g_assert_cmpint (stream->spans[1].kernel_id, ==, -1);
  g_assert_cmpint (stream->spans[1].step, ==, -1);

  as = only_span (trace, FB_TRACK_HOST_THREAD, "CUDA API (thread 4321)");
  g_assert_cmpstr (as->name, ==, "cuLaunchKernel");
  g_assert_cmpint (as->kind, ==, FB_SPAN_API);
  g_assert_cmpint (as->start_ns, ==, T0 + 100);
  g_assert_cmpint (as->step, ==, 3);
  g_assert_cmpuint (as->flow_out, !=, 0);
  g_assert_cmpuint (as->flow_out, ==, ks->flow_in);

  flows = fb_trace_get_flows (trace, &n_flows);
  g_assert_cmpuint (n_flows, ==, 1);
  g_assert_cmpuint (flows[0].to_track, ==, stream->id);
  g_assert_cmpuint (flows[0].to_span, ==, 0);

  /* The GPU trace survives Chrome JSON. */
  {
    g_autofree char *text = fb_chrome_trace_to_string (trace);
    g_autoptr (GError) error = NULL;
    g_autoptr (FbTrace) back = fb_chrome_trace_parse (text, -1, "gpu.json", &error);
    g_autofree char *why = NULL;

    g_assert_no_error (error);
    if (!fb_trace_equal (trace, back, &why))
      g_error ("%s", why);
  }
}

static void
test_decode_external_late (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbCuptiDecoder) dec = fb_cupti_decoder_new (trace, NULL);
  CUpti_ActivityKernel10 k = kernel_record (21, 3, T0, T0 + 10, "k");
  CUpti_ActivityExternalCorrelation ext = external_record (21, fb_cupti_external_id (2, -1));
  CUpti_ActivityExternalCorrelation foreign = ext;
  const FbSpan *s;

  /* The correlation arrives after the kernel, as it may across buffers; a
   * correlation of another tool's kind is not ours. */
  foreign.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_OPENACC;
  foreign.externalId = 99;
  fb_cupti_decoder_add_record (dec, &k);
  fb_cupti_decoder_add_record (dec, &ext);
  fb_cupti_decoder_add_record (dec, &foreign);
  fb_cupti_decoder_finish (dec);
  s = only_span (trace, FB_TRACK_GPU_STREAM, "stream 3");
  g_assert_cmpint (s->kernel_id, ==, 2);
  g_assert_cmpint (s->step, ==, -1);
  g_assert_cmpstr (s->name, ==, "k");
  g_assert_cmpuint (fb_cupti_decoder_get_n_skipped (dec), ==, 1);
}

static void
test_decode_memcpy_memset (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbCuptiDecoder) dec = fb_cupti_decoder_new (trace, NULL);
  CUpti_ActivityMemcpy6 cp;
  CUpti_ActivityMemset4 set;
  CUpti_ActivityAPI call = api_record (31, 279, T0 - 50, T0 - 10);
  const FbTrack *t;

  memset (&cp, 0, sizeof cp);
  cp.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  cp.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_HTOD;
  cp.bytes = 1 << 20;
  cp.start = T0;
  cp.end = T0 + 4000;
  cp.deviceId = 1;
  cp.streamId = 13;
  cp.correlationId = 31;
  memset (&set, 0, sizeof set);
  set.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  set.value = 0;
  set.bytes = 4096;
  set.start = T0 + 5000;
  set.end = 0;                 /* an incomplete record: no end */
  set.deviceId = 1;
  set.streamId = 13;
  set.correlationId = 32;

  fb_cupti_decoder_add_record (dec, &set);
  fb_cupti_decoder_add_record (dec, &cp);
  fb_cupti_decoder_add_record (dec, &call);
  fb_cupti_decoder_finish (dec);

  t = fb_trace_find_track (trace, FB_TRACK_GPU_STREAM, "stream 13");
  g_assert_nonnull (t);
  g_assert_cmpint (t->device, ==, 1);
  g_assert_cmpuint (t->n_spans, ==, 2);
  g_assert_cmpstr (t->spans[0].name, ==, "memcpy HtoD");
  g_assert_cmpint (t->spans[0].kind, ==, FB_SPAN_MEMCPY);
  g_assert_cmpuint (t->spans[0].bytes, ==, 1 << 20);
  g_assert_cmpint (fb_span_duration_ns (&t->spans[0]), ==, 4000);
  g_assert_cmpuint (t->spans[0].flow_in, !=, 0);     /* from its driver call */
  g_assert_cmpstr (t->spans[1].name, ==, "memset");
  g_assert_cmpint (t->spans[1].kind, ==, FB_SPAN_MEMSET);
  g_assert_cmpuint (t->spans[1].bytes, ==, 4096);
  g_assert_cmpint (t->spans[1].start_ns, ==, T0 + 5000);
  g_assert_cmpint (t->spans[1].end_ns, ==, T0 + 5000);
  /* No name for this callback id: a readable fallback. */
  g_assert_cmpstr (only_span (trace, FB_TRACK_HOST_THREAD, "CUDA API (thread 4321)")->name, ==,
                   "driver call 279");
}

static void
test_decode_memory2 (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbMemoryTimeline) mem = fb_memory_timeline_new ();
  g_autoptr (FbCuptiDecoder) dec = fb_cupti_decoder_new (trace, mem);
  static const struct { int op; guint64 addr, bytes; gint64 t; } events[] = {
    { CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION, 0x7f0000000000, 256 << 20, 10 },
    { CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION, 0x7f0010000000, 64 << 20, 20 },
    { CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE, 0x7f0000000000, 256 << 20, 30 },
    { CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION, 0x7f0020000000, 8 << 20, 40 },
  };
  const FbMemoryEvent *ev;
  gint64 when;
  guint n;

  for (guint i = 0; i < G_N_ELEMENTS (events); i++)
    {
      CUpti_ActivityMemory4 m;

      memset (&m, 0, sizeof m);
      m.kind = CUPTI_ACTIVITY_KIND_MEMORY2;
      m.memoryOperationType = events[i].op;
      m.memoryKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
      m.address = events[i].addr;
      m.bytes = events[i].bytes;
      m.timestamp = T0 + events[i].t;
      m.deviceId = 0;
      fb_cupti_decoder_add_record (dec, &m);
    }
  fb_cupti_decoder_finish (dec);

  ev = fb_memory_timeline_get_events (mem, &n);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpint (ev[0].kind, ==, FB_MEMORY_ALLOC);
  g_assert_cmpint (ev[0].time_ns, ==, T0 + 10);
  g_assert_cmpint (ev[0].device, ==, 0);
  g_assert_cmpint (ev[2].kind, ==, FB_MEMORY_FREE);
  g_assert_cmpuint (ev[3].live_bytes, ==, (64 + 8) << 20);
  g_assert_cmpuint (fb_memory_timeline_get_peak (mem, &when), ==, (256 + 64) << 20);
  g_assert_cmpint (when, ==, T0 + 20);
  g_assert_cmpuint (fb_trace_get_n_spans (trace), ==, 0);
}

static void
test_decode_overhead (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbCuptiDecoder) dec = fb_cupti_decoder_new (trace, NULL);
  CUpti_ActivityOverhead3 o;
  CUpti_Activity unknown = { CUPTI_ACTIVITY_KIND_PCIE };
  const FbSpan *s;

  memset (&o, 0, sizeof o);
  o.kind = CUPTI_ACTIVITY_KIND_OVERHEAD;
  o.overheadKind = CUPTI_ACTIVITY_OVERHEAD_CUPTI_BUFFER_FLUSH;
  o.objectKind = CUPTI_ACTIVITY_OBJECT_THREAD;
  o.start = T0 + 7;
  o.end = T0 + 2007;
  fb_cupti_decoder_add_record (dec, &o);
  fb_cupti_decoder_add_record (dec, &unknown);
  fb_cupti_decoder_finish (dec);
  s = only_span (trace, FB_TRACK_HOST_THREAD, "CUPTI overhead");
  g_assert_cmpint (s->kind, ==, FB_SPAN_OVERHEAD);
  g_assert_cmpstr (s->name, ==, "CUPTI buffer flush");
  g_assert_cmpint (fb_span_duration_ns (s), ==, 2000);
  g_assert_cmpuint (fb_cupti_decoder_get_n_skipped (dec), ==, 1);
}

static void
test_dropped (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbCuptiDecoder) dec = fb_cupti_decoder_new (trace, NULL);
  g_autofree char *none = fb_cupti_decoder_describe_dropped (dec);
  g_autofree char *msg = NULL;

  g_assert_null (none);
  fb_cupti_decoder_add_dropped (dec, 5);
  fb_cupti_decoder_add_dropped (dec, 7);
  fb_cupti_decoder_finish (dec);
  g_assert_cmpuint (fb_cupti_decoder_get_dropped (dec), ==, 12);
  msg = fb_cupti_decoder_describe_dropped (dec);
  g_assert_true (g_str_has_prefix (msg, "CUPTI dropped 12 activity records"));
  g_assert_cmpstr (fb_trace_get_metadata (trace, "cupti.dropped_records"), ==, "12");
}

static void
test_live (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbCupti) cupti = NULL;

  if (!fb_cupti_probe (&error))
    {
      /* The no-driver path: a reason, never a crash. */
      g_assert_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_UNAVAILABLE);
      g_assert_true (g_str_has_prefix (error->message, "CUPTI off: "));
      g_assert_cmpuint (strlen (error->message), >, strlen ("CUPTI off: "));
      g_clear_error (&error);
      cupti = fb_cupti_start (trace, NULL, &error);
      g_assert_null (cupti);
      g_assert_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_UNAVAILABLE);
      g_test_skip (error->message);
      return;
    }
  cupti = fb_cupti_start (trace, NULL, &error);
  g_assert_no_error (error);
  fb_cupti_push_kernel (cupti, 0, 1);
  fb_cupti_pop_kernel (cupti);
  g_assert_true (fb_cupti_stop (cupti, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (fb_cupti_decoder_get_dropped (fb_cupti_get_decoder (cupti)), ==, 0);
}

#else

static void
test_no_headers (void)
{
  g_test_skip ("built without the CUDA headers (cupti.h not found; configure with -Dcuda-root=DIR)");
}

#endif

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#ifdef FB_HAVE_CUPTI
  g_test_add_func ("/profiler/cupti/decode-kernel", test_decode_kernel);
  g_test_add_func ("/profiler/cupti/decode-external-late", test_decode_external_late);
  g_test_add_func ("/profiler/cupti/decode-memcpy-memset", test_decode_memcpy_memset);
  g_test_add_func ("/profiler/cupti/decode-memory2", test_decode_memory2);
  g_test_add_func ("/profiler/cupti/decode-overhead", test_decode_overhead);
  g_test_add_func ("/profiler/cupti/dropped", test_dropped);
  g_test_add_func ("/profiler/cupti/live", test_live);
#else
  g_test_add_func ("/profiler/cupti/decoder", test_no_headers);
#endif
  return g_test_run ();
}
