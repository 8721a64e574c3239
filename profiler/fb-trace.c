/* SPDX-License-Identifier: MIT
 *
 * The trace model. Writers append to a buffer owned by their thread, found
 * through a small thread-local cache keyed by the trace's serial number, so
 * an append is an array push with no lock. fb_trace_finish moves every
 * buffer's records into their tracks, sorts them by time (stably, so events
 * at the same nanosecond keep the order they were recorded in), computes the
 * nesting depth of spans and resolves flows.
 */
#include "fb-trace.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

G_DEFINE_QUARK (fb-profiler-error-quark, fb_profiler_error)

gint64
fb_trace_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

/* --------------------------------------------------------------- names */

static const char *const track_kind_names[FB_N_TRACK_KINDS] = {
  "host-thread", "cpu-worker", "gpu-stream", "memory", "counter",
};
static const char *const span_kind_names[FB_N_SPAN_KINDS] = {
  "kernel", "step", "memcpy", "memset", "api", "overhead", "other",
};
static const char *const hw_names[FB_N_HW_COUNTERS] = {
  "cycles", "instructions", "cache-misses",
};

const char *
fb_track_kind_to_string (FbTrackKind kind)
{
  g_return_val_if_fail (kind < FB_N_TRACK_KINDS, "?");
  return track_kind_names[kind];
}

gboolean
fb_track_kind_from_string (const char *s, FbTrackKind *kind)
{
  for (int i = 0; i < FB_N_TRACK_KINDS; i++)
    if (s && strcmp (s, track_kind_names[i]) == 0)
      {
        *kind = i;
        return TRUE;
      }
  return FALSE;
}

const char *
fb_span_kind_to_string (FbSpanKind kind)
{
  g_return_val_if_fail (kind < FB_N_SPAN_KINDS, "?");
  return span_kind_names[kind];
}

gboolean
fb_span_kind_from_string (const char *s, FbSpanKind *kind)
{
  for (int i = 0; i < FB_N_SPAN_KINDS; i++)
    if (s && strcmp (s, span_kind_names[i]) == 0)
      {
        *kind = i;
        return TRUE;
      }
  return FALSE;
}

const char *
fb_hw_counter_to_string (FbHwCounter counter)
{
  g_return_val_if_fail (counter < FB_N_HW_COUNTERS, "?");
  return hw_names[counter];
}

void
fb_span_init (FbSpan *span)
{
  memset (span, 0, sizeof *span);
  span->kind = FB_SPAN_OTHER;
  span->kernel_id = -1;
  span->step = -1;
}

/* ------------------------------------------------------------ structures */

typedef struct {
  guint   track;
  gsize   ids_offset;    /* into ThreadBuf.ids */
  FbSpan  span;          /* name points into ThreadBuf.strings; instr_ids unset */
} SpanRec;

typedef struct {
  guint           track;
  FbCounterSample sample;
} SampleRec;

typedef struct {
  guint     track;
  FbInstant instant;
} InstantRec;

/* A track with what only the merge needs; the public part comes first. */
typedef struct {
  FbTrack pub;
  gint64  max_duration;   /* longest span, for range lookups */
} TrackPriv;

typedef struct {
  gint64        owner;         /* kernel thread id */
  int           thread_track;  /* -1 until fb_trace_thread_track */
  GArray       *spans;         /* SpanRec */
  GArray       *samples;       /* SampleRec */
  GArray       *instants;      /* InstantRec */
  GArray       *ids;           /* gint64 */
  GStringChunk *strings;
} ThreadBuf;

struct _FbTrace {
  gatomicrefcount  ref;
  guint64          serial;
  guint64          next_flow;     /* atomic */
  GMutex           lock;
  GPtrArray       *buffers;       /* ThreadBuf*, until finished */
  GPtrArray       *tracks;        /* FbTrack* */
  GPtrArray       *chunks;        /* GStringChunk* kept for span names */
  GStringChunk    *strings;       /* track names and units, under lock */
  gboolean         finished;
  char            *title;
  GHashTable      *metadata;
  gint64          *ids;           /* every span's instruction ids, after finish */
  FbFlow          *flows;
  guint            n_flows;
  guint            n_spans;
  gint64           t0, t1;
  gboolean         has_range;
};

static guint64 next_serial = 1;   /* atomic */

typedef struct {
  guint64    serial;
  ThreadBuf *buf;
} TlsEntry;

#define N_TLS 4
static __thread TlsEntry tls_cache[N_TLS];
static __thread guint    tls_next;

/* gettid is a real system call (slow under some hypervisors): cache it. */
static __thread gint64 tls_tid;

static gint64
current_tid (void)
{
  if (G_UNLIKELY (tls_tid == 0))
    tls_tid = (gint64) syscall (SYS_gettid);
  return tls_tid;
}

FbTrace *
fb_trace_new (void)
{
  FbTrace *trace = g_new0 (FbTrace, 1);

  g_atomic_ref_count_init (&trace->ref);
  trace->serial = __atomic_fetch_add (&next_serial, 1, __ATOMIC_RELAXED);
  g_mutex_init (&trace->lock);
  trace->buffers = g_ptr_array_new ();
  trace->tracks = g_ptr_array_new ();
  trace->chunks = g_ptr_array_new_with_free_func ((GDestroyNotify) g_string_chunk_free);
  trace->strings = g_string_chunk_new (1024);
  trace->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return trace;
}

FbTrace *
fb_trace_ref (FbTrace *trace)
{
  g_return_val_if_fail (trace != NULL, NULL);
  g_atomic_ref_count_inc (&trace->ref);
  return trace;
}

static void
thread_buf_free (ThreadBuf *buf)
{
  if (buf->spans)
    g_array_free (buf->spans, TRUE);
  if (buf->samples)
    g_array_free (buf->samples, TRUE);
  if (buf->instants)
    g_array_free (buf->instants, TRUE);
  if (buf->ids)
    g_array_free (buf->ids, TRUE);
  if (buf->strings)
    g_string_chunk_free (buf->strings);
  g_free (buf);
}

void
fb_trace_unref (FbTrace *trace)
{
  g_return_if_fail (trace != NULL);
  if (!g_atomic_ref_count_dec (&trace->ref))
    return;

  /* Forget this trace in the calling thread's cache; other threads' entries
   * are keyed by serial, which is never reused, so they can only miss. */
  for (int i = 0; i < N_TLS; i++)
    if (tls_cache[i].serial == trace->serial)
      tls_cache[i].serial = 0;

  for (guint i = 0; i < trace->buffers->len; i++)
    thread_buf_free (trace->buffers->pdata[i]);
  g_ptr_array_unref (trace->buffers);
  for (guint i = 0; i < trace->tracks->len; i++)
    {
      FbTrack *t = trace->tracks->pdata[i];
      g_free ((gpointer) t->spans);
      g_free ((gpointer) t->samples);
      g_free ((gpointer) t->instants);
      g_free (t);
    }
  g_ptr_array_unref (trace->tracks);
  g_ptr_array_unref (trace->chunks);
  g_string_chunk_free (trace->strings);
  g_hash_table_unref (trace->metadata);
  g_free (trace->title);
  g_free (trace->ids);
  g_free (trace->flows);
  g_mutex_clear (&trace->lock);
  g_free (trace);
}

void
fb_trace_set_title (FbTrace *trace, const char *title)
{
  g_return_if_fail (trace != NULL);
  g_free (trace->title);
  trace->title = g_strdup (title);
}

const char *
fb_trace_get_title (FbTrace *trace)
{
  g_return_val_if_fail (trace != NULL, NULL);
  return trace->title;
}

void
fb_trace_set_metadata (FbTrace *trace, const char *key, const char *value)
{
  g_return_if_fail (trace != NULL && key != NULL);
  if (value)
    g_hash_table_replace (trace->metadata, g_strdup (key), g_strdup (value));
  else
    g_hash_table_remove (trace->metadata, key);
}

const char *
fb_trace_get_metadata (FbTrace *trace, const char *key)
{
  g_return_val_if_fail (trace != NULL && key != NULL, NULL);
  return g_hash_table_lookup (trace->metadata, key);
}

const char **
fb_trace_list_metadata (FbTrace *trace)
{
  const char **keys;
  guint n;

  g_return_val_if_fail (trace != NULL, NULL);
  keys = (const char **) g_hash_table_get_keys_as_array (trace->metadata, &n);
  for (guint i = 1; i < n; i++)       /* insertion sort: a handful of keys */
    for (guint j = i; j > 0 && strcmp (keys[j - 1], keys[j]) > 0; j--)
      {
        const char *tmp = keys[j];
        keys[j] = keys[j - 1];
        keys[j - 1] = tmp;
      }
  return keys;
}

/* ---------------------------------------------------------------- writing */

static ThreadBuf *
get_buffer (FbTrace *trace)
{
  ThreadBuf *buf = NULL;
  gint64 tid;

  for (int i = 0; i < N_TLS; i++)
    if (tls_cache[i].serial == trace->serial)
      return tls_cache[i].buf;

  tid = current_tid ();
  g_mutex_lock (&trace->lock);
  g_assert (!trace->finished);
  for (guint i = 0; i < trace->buffers->len; i++)
    if (((ThreadBuf *) trace->buffers->pdata[i])->owner == tid)
      {
        buf = trace->buffers->pdata[i];
        break;
      }
  if (!buf)
    {
      buf = g_new0 (ThreadBuf, 1);
      buf->owner = tid;
      buf->thread_track = -1;
      buf->spans = g_array_sized_new (FALSE, FALSE, sizeof (SpanRec), 256);
      buf->samples = g_array_new (FALSE, FALSE, sizeof (SampleRec));
      buf->instants = g_array_new (FALSE, FALSE, sizeof (InstantRec));
      buf->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
      buf->strings = g_string_chunk_new (1024);
      g_ptr_array_add (trace->buffers, buf);
    }
  g_mutex_unlock (&trace->lock);

  tls_cache[tls_next].serial = trace->serial;
  tls_cache[tls_next].buf = buf;
  tls_next = (tls_next + 1) % N_TLS;
  return buf;
}

static guint
add_track_locked (FbTrace *trace, FbTrackKind kind, const char *name, int sort_index,
                  int device, gint64 tid, const char *unit)
{
  FbTrack *t = (FbTrack *) g_new0 (TrackPriv, 1);

  t->id = trace->tracks->len;
  t->kind = kind;
  t->name = g_string_chunk_insert_const (trace->strings, name ? name : "");
  t->sort_index = sort_index;
  t->device = device;
  t->tid = tid;
  t->unit = unit ? g_string_chunk_insert_const (trace->strings, unit) : NULL;
  g_ptr_array_add (trace->tracks, t);
  return t->id;
}

guint
fb_trace_add_track (FbTrace *trace, FbTrackKind kind, const char *name, int sort_index,
                    int device, gint64 tid, const char *unit)
{
  guint id;

  g_return_val_if_fail (trace != NULL, 0);
  g_return_val_if_fail (kind < FB_N_TRACK_KINDS, 0);
  g_mutex_lock (&trace->lock);
  id = add_track_locked (trace, kind, name, sort_index, device, tid, unit);
  g_mutex_unlock (&trace->lock);
  return id;
}

guint
fb_trace_thread_track (FbTrace *trace, FbTrackKind kind, const char *name)
{
  ThreadBuf *buf;

  g_return_val_if_fail (trace != NULL, 0);
  buf = get_buffer (trace);
  if (buf->thread_track < 0)
    {
      g_autofree char *fallback = g_strdup_printf ("thread %" G_GINT64_FORMAT, buf->owner);

      g_mutex_lock (&trace->lock);
      buf->thread_track = add_track_locked (trace, kind, name ? name : fallback,
                                            (int) trace->tracks->len, -1, buf->owner, NULL);
      g_mutex_unlock (&trace->lock);
    }
  return buf->thread_track;
}

guint64
fb_trace_new_flow_id (FbTrace *trace)
{
  g_return_val_if_fail (trace != NULL, 0);
  return __atomic_add_fetch (&trace->next_flow, 1, __ATOMIC_RELAXED);
}

void
fb_trace_add_span (FbTrace *trace, guint track, const FbSpan *span)
{
  ThreadBuf *buf;
  SpanRec *rec;

  g_return_if_fail (trace != NULL && span != NULL);
  g_return_if_fail (!trace->finished);
  buf = get_buffer (trace);
  g_array_set_size (buf->spans, buf->spans->len + 1);
  rec = &g_array_index (buf->spans, SpanRec, buf->spans->len - 1);
  rec->track = track;
  rec->span = *span;
  rec->span.name = g_string_chunk_insert_const (buf->strings, span->name ? span->name : "");
  rec->span.end_ns = MAX (span->end_ns, span->start_ns);
  rec->span.depth = 0;
  rec->ids_offset = buf->ids->len;
  if (span->n_instr > 0 && span->instr_ids)
    g_array_append_vals (buf->ids, span->instr_ids, span->n_instr);
  else
    rec->span.n_instr = 0;
  rec->span.instr_ids = NULL;
}

void
fb_trace_add_sample (FbTrace *trace, guint track, gint64 time_ns, double value)
{
  ThreadBuf *buf;
  SampleRec rec = { track, { time_ns, value } };

  g_return_if_fail (trace != NULL);
  g_return_if_fail (!trace->finished);
  buf = get_buffer (trace);
  g_array_append_val (buf->samples, rec);
}

void
fb_trace_add_instant (FbTrace *trace, guint track, gint64 time_ns, const char *name, int step)
{
  ThreadBuf *buf;
  InstantRec rec;

  g_return_if_fail (trace != NULL);
  g_return_if_fail (!trace->finished);
  buf = get_buffer (trace);
  rec.track = track;
  rec.instant.time_ns = time_ns;
  rec.instant.name = g_string_chunk_insert_const (buf->strings, name ? name : "");
  rec.instant.step = step;
  g_array_append_val (buf->instants, rec);
}

/* ---------------------------------------------------------------- merging */

typedef struct {
  FbSpan  span;
  guint64 seq;
} SortSpan;

typedef struct {
  FbCounterSample sample;
  guint64         seq;
} SortSample;

typedef struct {
  FbInstant instant;
  guint64   seq;
} SortInstant;

static int
cmp_span (const void *pa, const void *pb)
{
  const SortSpan *a = pa, *b = pb;

  if (a->span.start_ns != b->span.start_ns)
    return a->span.start_ns < b->span.start_ns ? -1 : 1;
  if (a->span.end_ns != b->span.end_ns)
    return a->span.end_ns > b->span.end_ns ? -1 : 1;   /* enclosing first */
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int
cmp_sample (const void *pa, const void *pb)
{
  const SortSample *a = pa, *b = pb;

  if (a->sample.time_ns != b->sample.time_ns)
    return a->sample.time_ns < b->sample.time_ns ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int
cmp_instant (const void *pa, const void *pb)
{
  const SortInstant *a = pa, *b = pb;

  if (a->instant.time_ns != b->instant.time_ns)
    return a->instant.time_ns < b->instant.time_ns ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int
cmp_flow (const void *pa, const void *pb, gpointer data)
{
  FbTrace *trace = data;
  const FbFlow *a = pa, *b = pb;
  const FbTrack *ta = trace->tracks->pdata[a->from_track];
  const FbTrack *tb = trace->tracks->pdata[b->from_track];
  gint64 sa = ta->spans[a->from_span].start_ns, sb = tb->spans[b->from_span].start_ns;

  if (sa != sb)
    return sa < sb ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

static void
extend_range (FbTrace *trace, gint64 t0, gint64 t1)
{
  if (!trace->has_range)
    {
      trace->t0 = t0;
      trace->t1 = t1;
      trace->has_range = TRUE;
      return;
    }
  trace->t0 = MIN (trace->t0, t0);
  trace->t1 = MAX (trace->t1, t1);
}

static void
set_depths (FbTrack *t, FbSpan *spans)
{
  g_autofree gint64 *stack = g_new (gint64, t->n_spans + 1);
  guint top = 0;

  t->max_depth = 0;
  for (guint i = 0; i < t->n_spans; i++)
    {
      while (top > 0 && stack[top - 1] <= spans[i].start_ns)
        top--;
      spans[i].depth = top;
      t->max_depth = MAX (t->max_depth, top);
      stack[top++] = spans[i].end_ns;
    }
}

static void
resolve_flows (FbTrace *trace)
{
  g_autoptr (GHashTable) sources = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr (GArray) flows = g_array_new (FALSE, FALSE, sizeof (FbFlow));

  for (guint ti = 0; ti < trace->tracks->len; ti++)
    {
      const FbTrack *t = trace->tracks->pdata[ti];
      for (guint si = 0; si < t->n_spans; si++)
        if (t->spans[si].flow_out != 0)
          {
            FbFlow f = { t->spans[si].flow_out, ti, si, 0, 0 };
            if (!g_hash_table_contains (sources, &t->spans[si].flow_out))
              {
                g_array_append_val (flows, f);
                g_hash_table_insert (sources, (gpointer) &t->spans[si].flow_out,
                                     GUINT_TO_POINTER (flows->len));
              }
          }
    }
  g_autoptr (GArray) done = g_array_new (FALSE, FALSE, sizeof (FbFlow));
  for (guint ti = 0; ti < trace->tracks->len; ti++)
    {
      const FbTrack *t = trace->tracks->pdata[ti];
      for (guint si = 0; si < t->n_spans; si++)
        if (t->spans[si].flow_in != 0)
          {
            guint idx = GPOINTER_TO_UINT (g_hash_table_lookup (sources, &t->spans[si].flow_in));
            if (idx == 0)
              continue;
            FbFlow f = g_array_index (flows, FbFlow, idx - 1);
            f.to_track = ti;
            f.to_span = si;
            g_array_append_val (done, f);
          }
    }
  g_array_sort_with_data (done, cmp_flow, trace);
  trace->n_flows = done->len;
  trace->flows = (FbFlow *) g_array_free (g_steal_pointer (&done), FALSE);
}

void
fb_trace_finish (FbTrace *trace)
{
  guint n_tracks;
  gsize n_ids = 0, ids_used = 0;
  guint64 seq = 0;

  g_return_if_fail (trace != NULL);
  g_mutex_lock (&trace->lock);
  if (trace->finished)
    {
      g_mutex_unlock (&trace->lock);
      return;
    }

  n_tracks = trace->tracks->len;
  g_autofree GArray **spans = g_new0 (GArray *, n_tracks);
  g_autofree GArray **samples = g_new0 (GArray *, n_tracks);
  g_autofree GArray **instants = g_new0 (GArray *, n_tracks);
  for (guint i = 0; i < n_tracks; i++)
    {
      spans[i] = g_array_new (FALSE, FALSE, sizeof (SortSpan));
      samples[i] = g_array_new (FALSE, FALSE, sizeof (SortSample));
      instants[i] = g_array_new (FALSE, FALSE, sizeof (SortInstant));
    }

  for (guint b = 0; b < trace->buffers->len; b++)
    n_ids += ((ThreadBuf *) trace->buffers->pdata[b])->ids->len;
  trace->ids = n_ids ? g_new (gint64, n_ids) : NULL;

  for (guint b = 0; b < trace->buffers->len; b++)
    {
      ThreadBuf *buf = trace->buffers->pdata[b];

      for (guint i = 0; i < buf->spans->len; i++)
        {
          SpanRec *rec = &g_array_index (buf->spans, SpanRec, i);
          SortSpan s = { rec->span, seq++ };

          if (rec->track >= n_tracks)
            {
              g_warning ("span %s on unknown track %u dropped", rec->span.name, rec->track);
              continue;
            }
          if (s.span.n_instr > 0)
            {
              memcpy (trace->ids + ids_used, &g_array_index (buf->ids, gint64, rec->ids_offset),
                      s.span.n_instr * sizeof (gint64));
              s.span.instr_ids = trace->ids + ids_used;
              ids_used += s.span.n_instr;
            }
          g_array_append_val (spans[rec->track], s);
          extend_range (trace, s.span.start_ns, s.span.end_ns);
        }
      for (guint i = 0; i < buf->samples->len; i++)
        {
          SampleRec *rec = &g_array_index (buf->samples, SampleRec, i);
          SortSample s = { rec->sample, seq++ };

          if (rec->track >= n_tracks)
            continue;
          g_array_append_val (samples[rec->track], s);
          extend_range (trace, s.sample.time_ns, s.sample.time_ns);
        }
      for (guint i = 0; i < buf->instants->len; i++)
        {
          InstantRec *rec = &g_array_index (buf->instants, InstantRec, i);
          SortInstant s = { rec->instant, seq++ };

          if (rec->track >= n_tracks)
            continue;
          g_array_append_val (instants[rec->track], s);
          extend_range (trace, s.instant.time_ns, s.instant.time_ns);
        }
      /* The names live on in the chunk; everything else goes. */
      g_ptr_array_add (trace->chunks, g_steal_pointer (&buf->strings));
      thread_buf_free (buf);
    }
  g_ptr_array_set_size (trace->buffers, 0);

  trace->n_spans = 0;
  for (guint i = 0; i < n_tracks; i++)
    {
      FbTrack *t = trace->tracks->pdata[i];
      FbSpan *out_spans;
      FbCounterSample *out_samples;
      FbInstant *out_instants;

      if (spans[i]->len > 1)
        qsort (spans[i]->data, spans[i]->len, sizeof (SortSpan), cmp_span);
      if (samples[i]->len > 1)
        qsort (samples[i]->data, samples[i]->len, sizeof (SortSample), cmp_sample);
      if (instants[i]->len > 1)
        qsort (instants[i]->data, instants[i]->len, sizeof (SortInstant), cmp_instant);

      t->n_spans = spans[i]->len;
      out_spans = g_new (FbSpan, MAX (t->n_spans, 1));
      for (guint j = 0; j < t->n_spans; j++)
        out_spans[j] = g_array_index (spans[i], SortSpan, j).span;
      set_depths (t, out_spans);
      for (guint j = 0; j < t->n_spans; j++)
        ((TrackPriv *) t)->max_duration = MAX (((TrackPriv *) t)->max_duration,
                                                out_spans[j].end_ns - out_spans[j].start_ns);
      t->spans = out_spans;
      trace->n_spans += t->n_spans;

      t->n_samples = samples[i]->len;
      out_samples = g_new (FbCounterSample, MAX (t->n_samples, 1));
      for (guint j = 0; j < t->n_samples; j++)
        out_samples[j] = g_array_index (samples[i], SortSample, j).sample;
      t->samples = out_samples;

      t->n_instants = instants[i]->len;
      out_instants = g_new (FbInstant, MAX (t->n_instants, 1));
      for (guint j = 0; j < t->n_instants; j++)
        out_instants[j] = g_array_index (instants[i], SortInstant, j).instant;
      t->instants = out_instants;

      g_array_free (spans[i], TRUE);
      g_array_free (samples[i], TRUE);
      g_array_free (instants[i], TRUE);
    }

  resolve_flows (trace);
  __atomic_store_n (&trace->finished, TRUE, __ATOMIC_RELEASE);
  g_mutex_unlock (&trace->lock);
}

gboolean
fb_trace_is_finished (FbTrace *trace)
{
  g_return_val_if_fail (trace != NULL, FALSE);
  return __atomic_load_n (&trace->finished, __ATOMIC_ACQUIRE);
}

/* ---------------------------------------------------------------- reading */

/* Index of the first span starting at or after @t. */
static guint
lower_bound (const FbTrack *track, gint64 t)
{
  guint lo = 0, hi = track->n_spans;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      if (track->spans[mid].start_ns < t)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

static void
ensure_finished (FbTrace *trace)
{
  if (!fb_trace_is_finished (trace))
    fb_trace_finish (trace);
}

guint
fb_trace_get_n_tracks (FbTrace *trace)
{
  g_return_val_if_fail (trace != NULL, 0);
  ensure_finished (trace);
  return trace->tracks->len;
}

const FbTrack *
fb_trace_get_track (FbTrace *trace, guint id)
{
  g_return_val_if_fail (trace != NULL, NULL);
  ensure_finished (trace);
  g_return_val_if_fail (id < trace->tracks->len, NULL);
  return trace->tracks->pdata[id];
}

const FbTrack *
fb_trace_find_track (FbTrace *trace, FbTrackKind kind, const char *name)
{
  g_return_val_if_fail (trace != NULL && name != NULL, NULL);
  ensure_finished (trace);
  for (guint i = 0; i < trace->tracks->len; i++)
    {
      const FbTrack *t = trace->tracks->pdata[i];
      if (t->kind == kind && strcmp (t->name, name) == 0)
        return t;
    }
  return NULL;
}

guint
fb_trace_get_n_spans (FbTrace *trace)
{
  g_return_val_if_fail (trace != NULL, 0);
  ensure_finished (trace);
  return trace->n_spans;
}

gboolean
fb_trace_get_time_range (FbTrace *trace, gint64 *start_ns, gint64 *end_ns)
{
  g_return_val_if_fail (trace != NULL, FALSE);
  ensure_finished (trace);
  if (start_ns)
    *start_ns = trace->has_range ? trace->t0 : 0;
  if (end_ns)
    *end_ns = trace->has_range ? trace->t1 : 0;
  return trace->has_range;
}

const FbFlow *
fb_trace_get_flows (FbTrace *trace, guint *n_flows)
{
  g_return_val_if_fail (trace != NULL, NULL);
  ensure_finished (trace);
  if (n_flows)
    *n_flows = trace->n_flows;
  return trace->flows;
}

void
fb_track_find_spans (const FbTrack *track, gint64 t0, gint64 t1, guint *first, guint *last)
{
  const TrackPriv *priv = (const TrackPriv *) track;
  gint64 from = t0 - priv->max_duration;

  g_return_if_fail (track != NULL && first != NULL && last != NULL);
  *first = lower_bound (track, from);
  *last = lower_bound (track, t1);
  if (t1 <= t0)
    *last = *first;
}

double
fb_track_get_max_sample (const FbTrack *track)
{
  double m = 0;

  g_return_val_if_fail (track != NULL, 0);
  for (guint i = 0; i < track->n_samples; i++)
    m = i == 0 ? track->samples[i].value : MAX (m, track->samples[i].value);
  return m;
}

/* --------------------------------------------------------------- equality */

static gboolean
differ (char **why, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
differ (char **why, const char *fmt, ...)
{
  va_list ap;

  if (why)
    {
      va_start (ap, fmt);
      *why = g_strdup_vprintf (fmt, ap);
      va_end (ap);
    }
  return FALSE;
}

static gboolean
span_equal (const FbSpan *a, const FbSpan *b)
{
  if (a->start_ns != b->start_ns || a->end_ns != b->end_ns || strcmp (a->name, b->name) != 0
      || a->kind != b->kind || a->kernel_id != b->kernel_id || a->step != b->step
      || a->depth != b->depth || a->n_instr != b->n_instr || a->flow_in != b->flow_in
      || a->flow_out != b->flow_out || a->bytes != b->bytes || a->correlation != b->correlation
      || a->has_hw != b->has_hw)
    return FALSE;
  if (a->n_instr && memcmp (a->instr_ids, b->instr_ids, a->n_instr * sizeof (gint64)) != 0)
    return FALSE;
  if (a->has_hw && memcmp (a->hw, b->hw, sizeof a->hw) != 0)
    return FALSE;
  return TRUE;
}

gboolean
fb_trace_equal (FbTrace *a, FbTrace *b, char **why)
{
  guint na, nb;
  const FbFlow *fa, *fb;

  g_return_val_if_fail (a != NULL && b != NULL, FALSE);
  if (why)
    *why = NULL;
  if (fb_trace_get_n_tracks (a) != fb_trace_get_n_tracks (b))
    return differ (why, "%u tracks against %u", fb_trace_get_n_tracks (a), fb_trace_get_n_tracks (b));
  for (guint i = 0; i < a->tracks->len; i++)
    {
      const FbTrack *ta = a->tracks->pdata[i], *tb = b->tracks->pdata[i];

      if (ta->kind != tb->kind || strcmp (ta->name, tb->name) != 0 || ta->sort_index != tb->sort_index
          || ta->device != tb->device || ta->tid != tb->tid || g_strcmp0 (ta->unit, tb->unit) != 0)
        return differ (why, "track %u: %s \"%s\" against %s \"%s\"", i,
                       fb_track_kind_to_string (ta->kind), ta->name,
                       fb_track_kind_to_string (tb->kind), tb->name);
      if (ta->n_spans != tb->n_spans)
        return differ (why, "track %u \"%s\": %u spans against %u", i, ta->name, ta->n_spans, tb->n_spans);
      for (guint j = 0; j < ta->n_spans; j++)
        if (!span_equal (&ta->spans[j], &tb->spans[j]))
          return differ (why, "track %u \"%s\": span %u (%s) differs", i, ta->name, j, ta->spans[j].name);
      if (ta->n_samples != tb->n_samples)
        return differ (why, "track %u \"%s\": %u samples against %u", i, ta->name, ta->n_samples, tb->n_samples);
      for (guint j = 0; j < ta->n_samples; j++)
        if (ta->samples[j].time_ns != tb->samples[j].time_ns || ta->samples[j].value != tb->samples[j].value)
          return differ (why, "track %u \"%s\": sample %u differs", i, ta->name, j);
      if (ta->n_instants != tb->n_instants)
        return differ (why, "track %u \"%s\": %u instants against %u", i, ta->name, ta->n_instants, tb->n_instants);
      for (guint j = 0; j < ta->n_instants; j++)
        if (ta->instants[j].time_ns != tb->instants[j].time_ns || ta->instants[j].step != tb->instants[j].step
            || strcmp (ta->instants[j].name, tb->instants[j].name) != 0)
          return differ (why, "track %u \"%s\": instant %u differs", i, ta->name, j);
    }
  fa = fb_trace_get_flows (a, &na);
  fb = fb_trace_get_flows (b, &nb);
  if (na != nb)
    return differ (why, "%u flows against %u", na, nb);
  for (guint i = 0; i < na; i++)
    if (fa[i].id != fb[i].id || fa[i].from_track != fb[i].from_track || fa[i].from_span != fb[i].from_span
        || fa[i].to_track != fb[i].to_track || fa[i].to_span != fb[i].to_span)
      return differ (why, "flow %" G_GUINT64_FORMAT " differs", fa[i].id);
  return TRUE;
}
