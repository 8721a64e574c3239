/* SPDX-License-Identifier: MIT
 *
 * Tests of the profiler: the trace model (spans from many threads merge in
 * time order, nesting, counters, flows), the Chrome trace writer and reader
 * (valid JSON with the right phases and fields, exact round trips, clear
 * errors on malformed files, foreign traces), the CPU recorder and its
 * hardware counters, memory timelines and throughput statistics.
 */
#include <glib/gstdio.h>
#include <json.h>
#include <math.h>
#include <string.h>

#include "fb-chrome-trace.h"
#include "fb-memory.h"
#include "fb-recorder.h"
#include "fb-throughput.h"
#include "fb-trace.h"

static FbSpan
make_span (const char *name, FbSpanKind kind, gint64 start, gint64 end, int kernel, int step)
{
  FbSpan s;

  fb_span_init (&s);
  s.name = name;
  s.kind = kind;
  s.start_ns = start;
  s.end_ns = end;
  s.kernel_id = kernel;
  s.step = step;
  return s;
}

/* ------------------------------------------------------------ trace model */

typedef struct {
  FbTrace *trace;
  guint    shared;
  int      index;
} WriterData;

#define N_WRITERS 4
#define SPANS_PER_WRITER 2000

static gpointer
writer_thread (gpointer data)
{
  WriterData *wd = data;
  g_autofree char *name = g_strdup_printf ("worker %d", wd->index);
  guint own = fb_trace_thread_track (wd->trace, FB_TRACK_CPU_WORKER, name);
  gint64 ids[2] = { wd->index, 100 + wd->index };

  for (int i = 0; i < SPANS_PER_WRITER; i++)
    {
      /* Interleaved in time across threads, written in reverse on odd ones. */
      int k = wd->index % 2 ? SPANS_PER_WRITER - 1 - i : i;
      gint64 t = 1000 + (gint64) k * 40 + wd->index * 10;
      FbSpan s = make_span ("chunk", FB_SPAN_KERNEL, t, t + 5, k % 7, 1);

      s.n_instr = 2;
      s.instr_ids = ids;
      fb_trace_add_span (wd->trace, own, &s);
      fb_trace_add_span (wd->trace, wd->shared, &s);
      fb_trace_add_sample (wd->trace, wd->shared, t, k);
    }
  return NULL;
}

static void
test_merge_threads (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  guint shared = fb_trace_add_track (trace, FB_TRACK_COUNTER, "all", 0, -1, 0, NULL);
  WriterData wd[N_WRITERS];
  GThread *threads[N_WRITERS];
  const FbTrack *t;

  for (int i = 0; i < N_WRITERS; i++)
    {
      wd[i] = (WriterData) { trace, shared, i };
      threads[i] = g_thread_new ("writer", writer_thread, &wd[i]);
    }
  for (int i = 0; i < N_WRITERS; i++)
    g_thread_join (threads[i]);
  fb_trace_finish (trace);

  g_assert_cmpuint (fb_trace_get_n_tracks (trace), ==, 1 + N_WRITERS);
  g_assert_cmpuint (fb_trace_get_n_spans (trace), ==, 2 * N_WRITERS * SPANS_PER_WRITER);
  t = fb_trace_get_track (trace, shared);
  g_assert_cmpuint (t->n_spans, ==, N_WRITERS * SPANS_PER_WRITER);
  g_assert_cmpuint (t->n_samples, ==, N_WRITERS * SPANS_PER_WRITER);
  for (guint i = 1; i < t->n_spans; i++)
    g_assert_cmpint (t->spans[i - 1].start_ns, <, t->spans[i].start_ns);
  for (guint i = 1; i < t->n_samples; i++)
    g_assert_cmpint (t->samples[i - 1].time_ns, <=, t->samples[i].time_ns);
  /* The first span overall is worker 0's, the next one worker 1's. */
  g_assert_cmpint (t->spans[0].instr_ids[0], ==, 0);
  g_assert_cmpint (t->spans[1].instr_ids[0], ==, 1);
  g_assert_cmpint (t->spans[1].instr_ids[1], ==, 101);
  for (int i = 0; i < N_WRITERS; i++)
    {
      g_autofree char *name = g_strdup_printf ("worker %d", i);
      const FbTrack *own = fb_trace_find_track (trace, FB_TRACK_CPU_WORKER, name);
      g_assert_nonnull (own);
      g_assert_cmpuint (own->n_spans, ==, SPANS_PER_WRITER);
      g_assert_cmpint (own->tid, !=, 0);
    }
}

static void
test_nesting (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  guint host = fb_trace_add_track (trace, FB_TRACK_HOST_THREAD, "main", 0, -1, 1, NULL);
  FbSpan step = make_span ("step", FB_SPAN_STEP, 100, 1000, -1, 1);
  FbSpan k1 = make_span ("fusion.1", FB_SPAN_KERNEL, 100, 400, 0, 1);
  FbSpan k2 = make_span ("dot.2", FB_SPAN_KERNEL, 500, 900, 1, 1);
  FbSpan inner = make_span ("pack", FB_SPAN_OTHER, 600, 700, -1, 1);
  FbSpan after = make_span ("step", FB_SPAN_STEP, 1000, 2000, -1, 2);
  const FbTrack *t;
  guint first, last;

  /* Added out of order on purpose. */
  fb_trace_add_span (trace, host, &k2);
  fb_trace_add_span (trace, host, &inner);
  fb_trace_add_span (trace, host, &after);
  fb_trace_add_span (trace, host, &k1);
  fb_trace_add_span (trace, host, &step);
  t = fb_trace_get_track (trace, host);
  g_assert_cmpuint (t->n_spans, ==, 5);
  g_assert_cmpstr (t->spans[0].name, ==, "step");     /* the enclosing one first */
  g_assert_cmpuint (t->spans[0].depth, ==, 0);
  g_assert_cmpstr (t->spans[1].name, ==, "fusion.1");
  g_assert_cmpuint (t->spans[1].depth, ==, 1);
  g_assert_cmpuint (t->spans[2].depth, ==, 1);
  g_assert_cmpstr (t->spans[3].name, ==, "pack");
  g_assert_cmpuint (t->spans[3].depth, ==, 2);
  g_assert_cmpuint (t->spans[4].depth, ==, 0);          /* touching, not nested */
  g_assert_cmpuint (t->max_depth, ==, 2);

  /* A window inside dot.2 finds it and the long step around it. */
  fb_track_find_spans (t, 650, 660, &first, &last);
  g_assert_cmpuint (first, ==, 0);
  g_assert_cmpuint (last, ==, 4);
  fb_track_find_spans (t, 1500, 1600, &first, &last);
  g_assert_cmpuint (last, ==, 5);
  g_assert_cmpint (t->spans[last - 1].step, ==, 2);
}

static void
test_counters (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  guint c = fb_trace_add_track (trace, FB_TRACK_COUNTER, "loss", 3, -1, 0, "nats");
  gint64 t0, t1;
  const FbTrack *t;

  fb_trace_add_sample (trace, c, 300, 1.5);
  fb_trace_add_sample (trace, c, 100, 2.5);
  fb_trace_add_sample (trace, c, 200, 2.0);
  fb_trace_add_instant (trace, c, 250, "checkpoint", 2);
  t = fb_trace_get_track (trace, c);
  g_assert_cmpuint (t->n_samples, ==, 3);
  g_assert_cmpint (t->samples[0].time_ns, ==, 100);
  g_assert_cmpfloat (t->samples[0].value, ==, 2.5);
  g_assert_cmpint (t->samples[2].time_ns, ==, 300);
  g_assert_cmpfloat (fb_track_get_max_sample (t), ==, 2.5);
  g_assert_cmpstr (t->unit, ==, "nats");
  g_assert_cmpuint (t->n_instants, ==, 1);
  g_assert_cmpstr (t->instants[0].name, ==, "checkpoint");
  g_assert_true (fb_trace_get_time_range (trace, &t0, &t1));
  g_assert_cmpint (t0, ==, 100);
  g_assert_cmpint (t1, ==, 300);
}

static gpointer
flow_thread (gpointer data)
{
  FbTrace *trace = data;
  guint64 *ids = g_new (guint64, 1000);

  for (int i = 0; i < 1000; i++)
    ids[i] = fb_trace_new_flow_id (trace);
  return ids;
}

static void
test_flow_ids_unique (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);
  GThread *threads[4];
  guint64 *ids[4];

  for (int i = 0; i < 4; i++)
    threads[i] = g_thread_new ("flows", flow_thread, trace);
  for (int i = 0; i < 4; i++)
    ids[i] = g_thread_join (threads[i]);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 1000; j++)
      {
        g_assert_cmpuint (ids[i][j], !=, 0);
        g_assert_false (g_hash_table_contains (seen, &ids[i][j]));
        g_hash_table_add (seen, &ids[i][j]);
      }
  for (int i = 0; i < 4; i++)
    g_free (ids[i]);
}

/* --------------------------------------------------------- Chrome traces */

/* A trace with every kind of track and every optional field in use. */
static FbTrace *
make_rich_trace (void)
{
  FbTrace *trace = fb_trace_new ();
  const gint64 base = G_GINT64_CONSTANT (123456789012345);   /* a realistic monotonic time */
  guint host = fb_trace_add_track (trace, FB_TRACK_HOST_THREAD, "main", 0, -1, 4242, NULL);
  guint worker = fb_trace_add_track (trace, FB_TRACK_CPU_WORKER, "worker \"1\"", 1, -1, 4243, NULL);
  guint stream = fb_trace_add_track (trace, FB_TRACK_GPU_STREAM, "stream 7", 2, 0, 7, NULL);
  guint mem = fb_trace_add_track (trace, FB_TRACK_MEMORY, "device memory", 3, 0, 0, "bytes");
  guint ctr = fb_trace_add_track (trace, FB_TRACK_COUNTER, "loss", 4, -1, 0, NULL);
  static const gint64 ids1[] = { 3, 7, 9000000000LL };
  static const gint64 ids2[] = { 12 };

  fb_trace_set_title (trace, "mlp.hlo on cpu");
  fb_trace_set_metadata (trace, "backend", "cpu");
  for (int step = 1; step <= 2; step++)
    {
      gint64 t = base + (step - 1) * 1000000;
      FbSpan s = make_span ("step", FB_SPAN_STEP, t, t + 900001, -1, step);
      FbSpan k = make_span ("fusion.3", FB_SPAN_KERNEL, t + 10, t + 400123, 0, step);
      FbSpan chunk = make_span ("fusion.3", FB_SPAN_KERNEL, t + 20, t + 300007, 0, step);
      FbSpan launch = make_span ("cuLaunchKernel", FB_SPAN_API, t + 400200, t + 401000, -1, step);
      FbSpan gk = make_span ("dot.4", FB_SPAN_KERNEL, t + 402000, t + 800999, 1, step);
      FbSpan copy = make_span ("memcpy HtoD", FB_SPAN_MEMCPY, t + 801000, t + 802000, -1, step);

      fb_trace_add_span (trace, host, &s);
      k.n_instr = G_N_ELEMENTS (ids1);
      k.instr_ids = ids1;
      k.flow_out = fb_trace_new_flow_id (trace);
      chunk.flow_in = k.flow_out;
      chunk.has_hw = TRUE;
      chunk.hw[FB_HW_CYCLES] = 123456789;
      chunk.hw[FB_HW_INSTRUCTIONS] = 987654321;
      chunk.hw[FB_HW_CACHE_MISSES] = 4242;
      fb_trace_add_span (trace, host, &k);
      fb_trace_add_span (trace, worker, &chunk);
      launch.flow_out = fb_trace_new_flow_id (trace);
      launch.correlation = 77 + step;
      gk.flow_in = launch.flow_out;
      gk.correlation = launch.correlation;
      gk.n_instr = 1;
      gk.instr_ids = ids2;
      fb_trace_add_span (trace, host, &launch);
      fb_trace_add_span (trace, stream, &gk);
      copy.bytes = G_GUINT64_CONSTANT (1) << 33;
      fb_trace_add_span (trace, stream, &copy);
      fb_trace_add_sample (trace, mem, t + 5, 1048576.0 * step);
      fb_trace_add_sample (trace, mem, t + 900000, 524288.0);
      fb_trace_add_sample (trace, ctr, t + 900001, 2.0 / (3.0 * step));
      fb_trace_add_instant (trace, host, t + 900001, "loss reported", step);
    }
  fb_trace_finish (trace);
  return trace;
}

static void
test_chrome_round_trip (void)
{
  g_autoptr (FbTrace) trace = make_rich_trace ();
  g_autoptr (FbTrace) back = NULL;
  g_autoptr (FbTrace) again = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("fb-trace-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "trace.json", NULL);
  g_autofree char *why = NULL;
  guint n_flows;

  g_assert_true (fb_chrome_trace_write (trace, path, &error));
  g_assert_no_error (error);
  back = fb_chrome_trace_read (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (back);
  if (!fb_trace_equal (trace, back, &why))
    g_error ("round trip differs: %s", why);
  g_assert_cmpstr (fb_trace_get_title (back), ==, "mlp.hlo on cpu");
  g_assert_cmpstr (fb_trace_get_metadata (back, "backend"), ==, "cpu");
  fb_trace_get_flows (back, &n_flows);
  g_assert_cmpuint (n_flows, ==, 4);
  g_assert_cmpuint (fb_trace_get_track (back, 1)->spans[0].hw[FB_HW_INSTRUCTIONS], ==, 987654321);
  g_assert_cmpint (fb_trace_get_track (back, 0)->spans[1].instr_ids[2], ==, 9000000000LL);

  /* Written again, the text is the same. */
  {
    g_autofree char *a = fb_chrome_trace_to_string (trace);
    g_autofree char *b = fb_chrome_trace_to_string (back);
    again = fb_chrome_trace_parse (b, -1, "again.json", &error);
    g_assert_no_error (error);
    g_assert_cmpstr (a, ==, b);
    g_assert_true (fb_trace_equal (trace, again, NULL));
  }
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_chrome_empty (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autofree char *text = fb_chrome_trace_to_string (trace);
  g_autoptr (GError) error = NULL;
  g_autoptr (FbTrace) back = fb_chrome_trace_parse (text, -1, "empty.json", &error);

  g_assert_no_error (error);
  g_assert_cmpuint (fb_trace_get_n_tracks (back), ==, 0);
  g_assert_true (fb_trace_equal (trace, back, NULL));
}

static const char *
obj_str (json_object *o, const char *key)
{
  json_object *v;

  if (!json_object_object_get_ex (o, key, &v))
    return NULL;
  return json_object_get_string (v);
}

static void
test_chrome_json_valid (void)
{
  g_autoptr (FbTrace) trace = make_rich_trace ();
  g_autofree char *text = fb_chrome_trace_to_string (trace);
  json_object *root = json_tokener_parse (text), *events, *v;
  g_autoptr (GHashTable) phases = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) starts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) finishes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gboolean saw_process_name = FALSE, saw_thread_name = FALSE, saw_sort = FALSE;
  guint n_x = 0;

  g_assert_nonnull (root);
  g_assert_true (json_object_object_get_ex (root, "traceEvents", &events));
  g_assert_true (json_object_is_type (events, json_type_array));
  g_assert_cmpstr (obj_str (root, "displayTimeUnit"), ==, "ns");
  for (gsize i = 0; i < json_object_array_length (events); i++)
    {
      json_object *ev = json_object_array_get_idx (events, i), *args;
      const char *ph = obj_str (ev, "ph");

      g_assert_nonnull (ph);
      g_hash_table_add (phases, (gpointer) g_intern_string (ph));
      g_assert_true (json_object_object_get_ex (ev, "pid", &v) && json_object_is_type (v, json_type_int));
      g_assert_true (json_object_object_get_ex (ev, "tid", &v) && json_object_is_type (v, json_type_int));
      g_assert_nonnull (obj_str (ev, "name"));
      if (strcmp (ph, "M") == 0)
        {
          const char *name = obj_str (ev, "name");
          g_assert_true (json_object_object_get_ex (ev, "args", &args));
          saw_process_name |= strcmp (name, "process_name") == 0;
          saw_thread_name |= strcmp (name, "thread_name") == 0 && obj_str (args, "name") != NULL;
          saw_sort |= strcmp (name, "thread_sort_index") == 0
                      && json_object_object_get_ex (args, "sort_index", NULL);
          continue;
        }
      g_assert_true (json_object_object_get_ex (ev, "ts", &v));
      g_assert_true (json_object_is_type (v, json_type_double) || json_object_is_type (v, json_type_int));
      g_assert_cmpfloat (json_object_get_double (v), >=, 0);
      if (strcmp (ph, "X") == 0)
        {
          n_x++;
          g_assert_true (json_object_object_get_ex (ev, "dur", &v));
          g_assert_cmpfloat (json_object_get_double (v), >=, 0);
          g_assert_nonnull (obj_str (ev, "cat"));
          g_assert_true (json_object_object_get_ex (ev, "args", &args));
          g_assert_true (json_object_object_get_ex (args, "kernel_id", NULL));
          g_assert_true (json_object_object_get_ex (args, "step", NULL));
          if (strcmp (obj_str (ev, "name"), "fusion.3") == 0 && strcmp (obj_str (ev, "cat"), "kernel") == 0
              && json_object_object_get_ex (args, "instr_ids", &v))
            g_assert_cmpuint (json_object_array_length (v), ==, 3);
        }
      else if (strcmp (ph, "C") == 0)
        {
          g_assert_true (json_object_object_get_ex (ev, "args", &args));
          g_assert_true (json_object_object_get_ex (args, "value", &v));
        }
      else if (strcmp (ph, "s") == 0 || strcmp (ph, "f") == 0)
        {
          GHashTable *table = ph[0] == 's' ? starts : finishes;
          g_assert_true (json_object_object_get_ex (ev, "id", &v));
          /* Each flow id starts once and finishes once. */
          g_assert_false (g_hash_table_contains (table, json_object_get_string (v)));
          g_hash_table_add (table, g_strdup (json_object_get_string (v)));
          g_assert_cmpstr (obj_str (ev, "cat"), ==, "flow");
          if (ph[0] == 'f')
            g_assert_cmpstr (obj_str (ev, "bp"), ==, "e");
        }
      else if (strcmp (ph, "i") == 0)
        g_assert_cmpstr (obj_str (ev, "s"), ==, "t");
      else
        g_error ("unexpected phase %s", ph);
    }
  g_assert_cmpuint (n_x, ==, 12);
  g_assert_true (saw_process_name && saw_thread_name && saw_sort);
  for (const char *const *p = (const char *const[]) { "M", "X", "C", "s", "f", "i", NULL }; *p; p++)
    g_assert_true (g_hash_table_contains (phases, g_intern_string (*p)));
  g_assert_cmpuint (g_hash_table_size (starts), ==, 4);
  g_assert_cmpuint (g_hash_table_size (finishes), ==, 4);
  {
    GHashTableIter it;
    const char *id;
    g_hash_table_iter_init (&it, starts);
    while (g_hash_table_iter_next (&it, (gpointer *) &id, NULL))
      g_assert_true (g_hash_table_contains (finishes, id));
  }
  json_object_put (root);
}

typedef struct {
  const char *text;
  const char *message;   /* expected start of the error, after "bad.json:" */
} Malformed;

static void
test_chrome_malformed (void)
{
  static const Malformed cases[] = {
    { "", "1:1: invalid JSON: unexpected end of file" },
    { "{\"traceEvents\": [", "1:18: invalid JSON: unexpected end of file" },
    { "{\"traceEvents\": [}", "1:18: invalid JSON" },
    { "[] x", "1:4: invalid JSON: unexpected text" },
    { "42", "1:1: not a Chrome trace" },
    { "{\"events\": []}", "1:1: not a Chrome trace" },
    { "[\n 1\n]", "2:2: event 0 is not an object" },
    { "[{\"name\": \"a\"}]", "1:2: event 0 has no \"ph\" string" },
    { "[{\"ph\": \"X\", \"name\": \"a\", \"dur\": 1}]", "1:2: event 0 (X): missing or invalid \"ts\"" },
    { "[{\"ph\": \"X\", \"name\": \"a\", \"ts\": 1, \"dur\": -1}]", "1:2: event 0 (X \"a\"): missing or invalid \"dur\"" },
    { "[{\"ph\": \"X\", \"name\": \"a\", \"ts\": \"soon\", \"dur\": 1}]", "1:2: event 0 (X): missing or invalid \"ts\"" },
    { "[{\"ph\": \"X\", \"name\": \"a\", \"ts\": 1, \"dur\": 1, \"args\": {\"instr_ids\": \"3\"}}]",
      "1:2: event 0 (X \"a\"): malformed args" },
    { "[{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": 1, \"tid\": 1}]", "1:2: metadata event 0 has no args" },
    { "[{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": 1, \"tid\": 1, \"args\": {\"kind\": \"tape\"}}]",
      "1:2: unknown track kind \"tape\"" },
    { "[{\"ph\": \"s\", \"name\": \"f\", \"ts\": 1}]", "1:2: event 0 (s): flow without an id" },
    { "{\"otherData\": {\"fusebox_version\": 1, \"fusebox_origin_ns\": \"12x\"}, \"traceEvents\": []}",
      "1:1: otherData.fusebox_origin_ns is not a time in nanoseconds" },
    { "{\"traceEvents\": [\n  {\"ph\": \"i\", \"name\": \"a\", \"ts\": 1},\n  {\"ph\": \"C\", \"name\": \"c\", \"ts\": 1}]}",
      "3:3: event 1 (C \"c\"): counter without an args object" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (FbTrace) trace = fb_chrome_trace_parse (cases[i].text, -1, "bad.json", &error);
      g_autofree char *expected = g_strconcat ("bad.json:", cases[i].message, NULL);

      g_assert_null (trace);
      g_assert_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_PARSE);
      if (!g_str_has_prefix (error->message, expected))
        g_error ("case %u: got \"%s\", expected \"%s...\"", i, error->message, expected);
    }
}

static void
test_chrome_malformed_files (void)
{
  static const struct { const char *file; const char *where; } cases[] = {
    { "truncated.json", ":4:1: invalid JSON: unexpected end of file" },
    { "missing-dur.json", ":3:3: event 1 (X \"b\"): missing or invalid \"dur\"" },
    { "bad-counter.json", ":4:3: event 1 (C \"mem\"): value of \"value\" is not a number" },
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (FbTrace) missing = fb_chrome_trace_read ("/nonexistent/trace.json", &error);

  g_assert_null (missing);
  g_assert_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_IO);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) err = NULL;
      g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", "trace", cases[i].file, NULL);
      g_autoptr (FbTrace) trace = fb_chrome_trace_read (path, &err);
      g_autofree char *expected = g_strconcat (path, cases[i].where, NULL);

      g_assert_null (trace);
      g_assert_error (err, FB_PROFILER_ERROR, FB_PROFILER_ERROR_PARSE);
      if (!g_str_has_prefix (err->message, expected))
        g_error ("%s: got \"%s\", expected \"%s...\"", cases[i].file, err->message, expected);
    }
}

static void
test_chrome_foreign (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", "trace", "foreign.json", NULL);
  g_autoptr (FbTrace) trace = fb_chrome_trace_read (path, &error);
  const FbTrack *main_thread, *other, *host_mem, *dev_mem;
  const FbFlow *flows;
  guint n_flows;

  g_assert_no_error (error);
  main_thread = fb_trace_find_track (trace, FB_TRACK_HOST_THREAD, "MainThread");
  g_assert_nonnull (main_thread);
  g_assert_cmpuint (main_thread->n_spans, ==, 2);
  g_assert_cmpstr (main_thread->spans[0].name, ==, "train_step");    /* from B/E */
  g_assert_cmpint (main_thread->spans[0].start_ns, ==, 100000);
  g_assert_cmpint (main_thread->spans[0].end_ns, ==, 200000);
  g_assert_cmpuint (main_thread->spans[1].depth, ==, 1);
  g_assert_cmpuint (main_thread->n_instants, ==, 1);
  other = fb_trace_find_track (trace, FB_TRACK_HOST_THREAD, "python thread 43");
  g_assert_nonnull (other);
  g_assert_cmpint (fb_span_duration_ns (&other->spans[0]), ==, 20500);
  host_mem = fb_trace_find_track (trace, FB_TRACK_COUNTER, "memory host");
  dev_mem = fb_trace_find_track (trace, FB_TRACK_COUNTER, "memory device");
  g_assert_nonnull (host_mem);
  g_assert_nonnull (dev_mem);
  g_assert_cmpfloat (dev_mem->samples[0].value, ==, 4096);
  /* The flow binds the enclosing matmul to the GPU-side kernel. */
  flows = fb_trace_get_flows (trace, &n_flows);
  g_assert_cmpuint (n_flows, ==, 1);
  g_assert_cmpuint (flows[0].id, ==, 16);
  g_assert_cmpstr (fb_trace_get_track (trace, flows[0].from_track)->spans[flows[0].from_span].name, ==, "matmul");
  g_assert_cmpstr (fb_trace_get_track (trace, flows[0].to_track)->spans[flows[0].to_span].name, ==, "gemm_kernel");
}

/* --------------------------------------------------------------- recorder */

typedef struct {
  FbRecorder *rec;
  int         index;
} WorkerArg;

static gpointer
recorder_worker (gpointer data)
{
  WorkerArg *arg = data;
  FbRecorderScope k;
  gint64 ids[] = { 40 + arg->index };
  volatile double x = 0;

  fb_recorder_begin_kernel (arg->rec, &k, 5, "fusion.5", 1, ids);
  for (int i = 0; i < 10000; i++)
    x += i * 0.5;
  fb_recorder_end (arg->rec, &k);
  return NULL;
}

static void
test_recorder_spans (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbRecorder) rec = fb_recorder_new (trace, FB_RECORDER_NONE);
  g_autofree char *reason = NULL;
  const FbTrack *host, *t;
  guint n_workers = 0;

  g_assert_false (fb_recorder_has_counters (rec, &reason));
  g_assert_cmpstr (reason, ==, "counters not requested");
  for (int step = 1; step <= 3; step++)
    {
      FbRecorderScope s, k;
      WorkerArg args[2] = { { rec, 0 }, { rec, 1 } };
      GThread *threads[2];
      gint64 ids[] = { 1, 2 };

      fb_recorder_begin_step (rec, &s, step);
      g_assert_cmpint (fb_recorder_get_step (rec), ==, step);
      fb_recorder_begin_kernel (rec, &k, 0, "fusion.1", 2, ids);
      for (int i = 0; i < 2; i++)
        threads[i] = g_thread_new ("worker", recorder_worker, &args[i]);
      for (int i = 0; i < 2; i++)
        g_thread_join (threads[i]);
      fb_recorder_end (rec, &k);
      fb_recorder_end (rec, &s);
    }
  g_assert_cmpint (fb_recorder_get_step (rec), ==, -1);

  host = fb_trace_find_track (trace, FB_TRACK_HOST_THREAD, "main");
  g_assert_nonnull (host);
  g_assert_cmpuint (host->n_spans, ==, 6);
  for (guint i = 0; i < host->n_spans; i++)
    {
      const FbSpan *sp = &host->spans[i];
      g_assert_cmpint (sp->step, ==, (int) i / 2 + 1);
      g_assert_cmpint (sp->end_ns, >=, sp->start_ns);
      if (i % 2 == 0)
        g_assert_cmpint (sp->kind, ==, FB_SPAN_STEP);
      else
        {
          g_assert_cmpint (sp->kind, ==, FB_SPAN_KERNEL);
          g_assert_cmpuint (sp->depth, ==, 1);
          g_assert_cmpuint (sp->n_instr, ==, 2);
          g_assert_cmpint (sp->instr_ids[1], ==, 2);
        }
    }
  for (guint i = 0; i < fb_trace_get_n_tracks (trace); i++)
    {
      t = fb_trace_get_track (trace, i);
      if (t->kind != FB_TRACK_CPU_WORKER)
        continue;
      n_workers++;
      for (guint j = 0; j < t->n_spans; j++)
        {
          g_assert_cmpint (t->spans[j].kernel_id, ==, 5);
          g_assert_cmpint (t->spans[j].step, >=, 1);   /* workers see the host's step */
          g_assert_false (t->spans[j].has_hw);
        }
    }
  g_assert_cmpuint (n_workers, >=, 2);
}

static void
test_recorder_counters (void)
{
  g_autoptr (GError) error = NULL;
  gboolean available = fb_recorder_probe_counters (&error);
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbRecorder) rec = fb_recorder_new (trace, FB_RECORDER_HW_COUNTERS);
  g_autofree char *reason = NULL;
  FbRecorderScope k;
  volatile double x = 1;
  const FbSpan *span;

  fb_recorder_begin_kernel (rec, &k, 0, "busy", 0, NULL);
  for (int i = 0; i < 200000; i++)
    x = x * 1.0000001 + 1e-9;
  fb_recorder_end (rec, &k);
  span = &fb_trace_get_track (trace, 0)->spans[0];

  g_assert_cmpint (available, ==, fb_recorder_has_counters (rec, &reason));
  if (available)
    {
      g_assert_no_error (error);
      g_assert_true (span->has_hw);
      g_assert_cmpuint (span->hw[FB_HW_INSTRUCTIONS], >, 200000);
      g_assert_cmpuint (span->hw[FB_HW_CYCLES], >, 0);
      g_test_message ("counters: %" G_GUINT64_FORMAT " cycles, %" G_GUINT64_FORMAT " instructions",
                      span->hw[FB_HW_CYCLES], span->hw[FB_HW_INSTRUCTIONS]);
    }
  else
    {
      g_assert_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_UNAVAILABLE);
      g_assert_true (g_str_has_prefix (error->message, "counters unavailable: "));
      g_assert_cmpuint (strlen (error->message), >, strlen ("counters unavailable: "));
      g_assert_cmpstr (reason, ==, error->message);
      g_assert_false (span->has_hw);
      g_test_message ("%s", error->message);
    }
}

/* ----------------------------------------------------------------- memory */

static void
test_memory_timeline (void)
{
  g_autoptr (FbMemoryTimeline) tl = fb_memory_timeline_new ();
  g_autoptr (FbTrace) trace = fb_trace_new ();
  static const guint64 plan[] = { 100, 400, 900, 900, 300 };
  const FbMemoryEvent *ev;
  const FbTrack *track;
  guint n, pos;
  gint64 peak_time;

  fb_memory_timeline_set_plan (tl, plan, G_N_ELEMENTS (plan));
  g_assert_cmpuint (fb_memory_timeline_get_plan_peak (tl, &pos), ==, 900);
  g_assert_cmpuint (pos, ==, 2);

  /* Out of order, a free without a size, and one free of an unknown block. */
  fb_memory_timeline_add_event (tl, FB_MEMORY_FREE, 40, 0xA000, 0, 0);
  fb_memory_timeline_add_event (tl, FB_MEMORY_ALLOC, 10, 0xA000, 1000, 0);
  fb_memory_timeline_add_event (tl, FB_MEMORY_ALLOC, 20, 0xB000, 500, 0);
  fb_memory_timeline_add_event (tl, FB_MEMORY_FREE, 30, 0xB000, 500, 0);
  fb_memory_timeline_add_event (tl, FB_MEMORY_ALLOC, 50, 0xC000, 1200, 0);
  fb_memory_timeline_add_event (tl, FB_MEMORY_FREE, 60, 0xDEAD, 64, 0);
  ev = fb_memory_timeline_get_events (tl, &n);
  g_assert_cmpuint (n, ==, 6);
  g_assert_cmpuint (ev[0].live_bytes, ==, 1000);
  g_assert_cmpuint (ev[1].live_bytes, ==, 1500);
  g_assert_cmpuint (ev[2].live_bytes, ==, 1000);
  g_assert_cmpint (ev[3].time_ns, ==, 40);
  g_assert_cmpuint (ev[3].size, ==, 1000);      /* taken from its alloc */
  g_assert_cmpuint (ev[3].live_bytes, ==, 0);
  g_assert_cmpuint (ev[5].live_bytes, ==, 1200);
  g_assert_cmpuint (fb_memory_timeline_get_peak (tl, &peak_time), ==, 1500);
  g_assert_cmpint (peak_time, ==, 20);
  g_assert_cmpuint (fb_memory_timeline_get_live (tl), ==, 1200);
  g_assert_cmpuint (fb_memory_timeline_get_n_unmatched (tl), ==, 1);

  fb_memory_timeline_to_trace (tl, trace, "host memory", 5);
  track = fb_trace_find_track (trace, FB_TRACK_MEMORY, "host memory");
  g_assert_nonnull (track);
  g_assert_cmpuint (track->n_samples, ==, 6);
  g_assert_cmpfloat (fb_track_get_max_sample (track), ==, 1500);
  g_assert_cmpstr (track->unit, ==, "bytes");
}

/* ------------------------------------------------------------- throughput */

static void
test_throughput (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (FbThroughput) tp = NULL;
  guint host = fb_trace_add_track (trace, FB_TRACK_HOST_THREAD, "main", 0, -1, 1, NULL);
  guint worker = fb_trace_add_track (trace, FB_TRACK_CPU_WORKER, "worker 1", 1, -1, 2, NULL);
  static const FbKernelCost costs[] = {
    { 0, "dot.1", 4e6, 1e6 },       /* 4 MFLOP, 1 MB per call */
    { 1, NULL, 0, 2e6 },            /* a copy-like kernel */
  };
  FbRoofline roof = { .peak_gflops = 100, .peak_gbps = 10 };   /* ridge at 10 FLOP/byte */

  for (int step = 1; step <= 4; step++)
    {
      gint64 t = step * G_GINT64_CONSTANT (10000000);          /* steps of 10 ms */
      FbSpan s = make_span ("step", FB_SPAN_STEP, t, t + 10000000, -1, step);
      FbSpan k0 = make_span ("dot.1", FB_SPAN_KERNEL, t, t + 2000000, 0, step);        /* 2 ms */
      FbSpan k1 = make_span ("copy.2", FB_SPAN_KERNEL, t + 2000000, t + 3000000, 1, step); /* 1 ms */
      FbSpan chunk = make_span ("dot.1", FB_SPAN_KERNEL, t, t + 1500000, 0, step);   /* not counted */

      fb_trace_add_span (trace, host, &s);
      fb_trace_add_span (trace, host, &k0);
      fb_trace_add_span (trace, host, &k1);
      fb_trace_add_span (trace, worker, &chunk);
    }
  tp = fb_throughput_compute (trace, costs, G_N_ELEMENTS (costs), 32, &roof, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (tp->n_steps, ==, 4);
  g_assert_cmpfloat_with_epsilon (tp->steps_per_s, 100.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (tp->samples_per_s, 3200.0, 1e-6);
  /* 4 MFLOP per 10 ms step = 0.4 GFLOP/s; 3 MB per step = 0.3 GB/s. */
  g_assert_cmpfloat_with_epsilon (tp->gflops, 0.4, 1e-12);
  g_assert_cmpfloat_with_epsilon (tp->gbps, 0.3, 1e-12);
  g_assert_cmpfloat_with_epsilon (tp->steps[2].gflops, 0.4, 1e-12);
  g_assert_cmpint (tp->steps[2].step, ==, 3);
  g_assert_cmpuint (tp->n_kernels, ==, 2);

  /* dot.1: 2 ms per call from the host track, not the worker's chunks. */
  g_assert_cmpstr (tp->kernels[0].name, ==, "dot.1");
  g_assert_cmpuint (tp->kernels[0].calls, ==, 4);
  g_assert_cmpint (tp->kernels[0].total_ns, ==, 8000000);
  g_assert_cmpfloat_with_epsilon (tp->kernels[0].gflops, 2.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (tp->kernels[0].gbps, 0.5, 1e-12);
  g_assert_cmpfloat_with_epsilon (tp->kernels[0].time_fraction, 2.0 / 3.0, 1e-12);
  /* Intensity 4 FLOP/byte: memory bound, roof 40 GFLOP/s, at 5 %. */
  g_assert_true (tp->kernels[0].memory_bound);
  g_assert_cmpfloat_with_epsilon (tp->kernels[0].roof_gflops, 40.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (tp->kernels[0].roof_fraction, 0.05, 1e-12);
  /* copy.2 moves 2 MB in 1 ms: 2 GB/s, a fifth of the bandwidth. */
  g_assert_cmpstr (tp->kernels[1].name, ==, "copy.2");
  g_assert_cmpfloat_with_epsilon (tp->kernels[1].gbps, 2.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (tp->kernels[1].roof_fraction, 0.2, 1e-12);

  {
    FbKernelCost bad = { 0, "x", -1, 0 };
    g_autoptr (GError) err = NULL;
    g_autoptr (FbThroughput) none = fb_throughput_compute (trace, &bad, 1, 1, NULL, &err);
    g_assert_null (none);
    g_assert_error (err, FB_PROFILER_ERROR, FB_PROFILER_ERROR_USAGE);
  }
}

/* A kernel the host runs in some steps and a worker runs alone in others
 * (the second GEMM of a pair run at once): every call counts, from the
 * host's span where there is one and from the worker's where not. */
static void
test_throughput_worker_alone (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (GError) error = NULL;
  guint host = fb_trace_add_track (trace, FB_TRACK_HOST_THREAD, "main", 0, -1, 1, NULL);
  guint worker = fb_trace_add_track (trace, FB_TRACK_CPU_WORKER, "worker 1", 1, -1, 2, NULL);
  static const FbKernelCost costs[] = { { 3, "dot.3", 1e6, 1e5 } };
  for (int step = 1; step <= 4; step++)
    {
      gint64 t = step * G_GINT64_CONSTANT (10000000);
      FbSpan s = make_span ("step", FB_SPAN_STEP, t, t + 10000000, -1, step);
      fb_trace_add_span (trace, host, &s);
      if (step <= 2)
        {
          FbSpan k = make_span ("dot.3", FB_SPAN_KERNEL, t, t + 2000000, 3, step);       /* 2 ms */
          FbSpan chunk = make_span ("dot.3", FB_SPAN_KERNEL, t, t + 1000000, 3, step);   /* a chunk */
          fb_trace_add_span (trace, host, &k);
          fb_trace_add_span (trace, worker, &chunk);
        }
      else
        {
          FbSpan k = make_span ("dot.3", FB_SPAN_KERNEL, t, t + 3000000, 3, step);       /* 3 ms */
          fb_trace_add_span (trace, worker, &k);
        }
    }
  g_autoptr (FbThroughput) tp = fb_throughput_compute (trace, costs, 1, 1, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (tp->n_kernels, ==, 1);
  g_assert_cmpuint (tp->kernels[0].calls, ==, 4);
  g_assert_cmpint (tp->kernels[0].total_ns, ==, 10000000);
  g_assert_cmpfloat_with_epsilon (tp->gflops, 4e6 / 40e6, 1e-12);
}

static gboolean
fake_sgemm (double *gflops, gpointer data, GError **error)
{
  int *calls = data;

  (*calls)++;
  *gflops = 1234.5;
  return TRUE;
}

static gboolean
failing_sgemm (double *gflops, gpointer data, GError **error)
{
  g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_FAILED, "no BLAS here");
  return FALSE;
}

static void
test_roofline_cache (void)
{
  g_autofree char *dir = g_dir_make_tmp ("fb-roof-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "fusebox", "roofline.json", NULL);
  g_autofree char *sub = g_path_get_dirname (path);
  g_autoptr (GError) error = NULL;
  FbRoofline r = { 0 };
  int calls = 0;

  g_assert_true (fb_roofline_get (&r, path, fake_sgemm, &calls, FALSE, &error));
  g_assert_no_error (error);
  g_assert_cmpint (calls, ==, 1);
  g_assert_cmpfloat (r.peak_gflops, ==, 1234.5);
  g_assert_cmpfloat (r.peak_gbps, >, 0);
  g_assert_cmpstr (r.flops_source, ==, "sgemm");
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  fb_roofline_clear (&r);

  /* Cached: the measurement is not run again. */
  g_assert_true (fb_roofline_get (&r, path, failing_sgemm, NULL, FALSE, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (r.peak_gflops, ==, 1234.5);
  g_assert_cmpfloat (fb_roofline_attainable (&r, 1e9), ==, 1234.5);
  fb_roofline_clear (&r);

  /* Forced, a failing measurement is reported. */
  g_assert_false (fb_roofline_get (&r, path, failing_sgemm, NULL, TRUE, &error));
  g_assert_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_FAILED);
  g_clear_error (&error);

  /* A cache from another machine, or a corrupt one, is measured again. */
  g_assert_true (g_file_set_contents (path, "{\"machine\": \"elsewhere\", \"flops_source\": \"sgemm\", "
                                      "\"peak_gflops\": 1, \"peak_gbps\": 1}", -1, NULL));
  calls = 0;
  g_assert_true (fb_roofline_get (&r, path, fake_sgemm, &calls, FALSE, &error));
  g_assert_cmpint (calls, ==, 1);
  fb_roofline_clear (&r);
  g_assert_true (g_file_set_contents (path, "{not json", -1, NULL));
  g_assert_true (fb_roofline_get (&r, path, NULL, NULL, FALSE, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (r.flops_source, ==, "fma-loop");
  g_assert_cmpfloat (r.peak_gflops, >, 0);
  fb_roofline_clear (&r);

  g_unlink (path);
  g_rmdir (sub);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/profiler/trace/merge-threads", test_merge_threads);
  g_test_add_func ("/profiler/trace/nesting", test_nesting);
  g_test_add_func ("/profiler/trace/counters", test_counters);
  g_test_add_func ("/profiler/trace/flow-ids-unique", test_flow_ids_unique);
  g_test_add_func ("/profiler/chrome/round-trip", test_chrome_round_trip);
  g_test_add_func ("/profiler/chrome/empty", test_chrome_empty);
  g_test_add_func ("/profiler/chrome/json-valid", test_chrome_json_valid);
  g_test_add_func ("/profiler/chrome/malformed", test_chrome_malformed);
  g_test_add_func ("/profiler/chrome/malformed-files", test_chrome_malformed_files);
  g_test_add_func ("/profiler/chrome/foreign", test_chrome_foreign);
  g_test_add_func ("/profiler/recorder/spans", test_recorder_spans);
  g_test_add_func ("/profiler/recorder/counters", test_recorder_counters);
  g_test_add_func ("/profiler/memory/timeline", test_memory_timeline);
  g_test_add_func ("/profiler/throughput/synthetic", test_throughput);
  g_test_add_func ("/profiler/throughput/worker-alone", test_throughput_worker_alone);
  g_test_add_func ("/profiler/throughput/roofline-cache", test_roofline_cache);
  return g_test_run ();
}
