/* SPDX-License-Identifier: MIT
 *
 * Chrome trace JSON writer and reader.
 *
 * The writer prints the JSON itself rather than building a json-c tree, so
 * that times come out as exact decimal microseconds and a large trace does
 * not need a second copy in memory. The reader uses json-c; since json-c
 * keeps no positions, an event that is well-formed JSON but not a valid
 * event is located afterwards by scanning the text for the N-th element of
 * the traceEvents array, so that the message still carries line and column.
 *
 * Process ids: 1 is the host, 100 + N is GPU N. Thread ids are the track
 * ids plus one; the operating system's thread id goes in the args.
 */
#include "fb-chrome-trace.h"

#include <errno.h>
#include <json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HOST_PID 1
#define GPU_PID0 100
#define FORMAT_VERSION 1

/* ----------------------------------------------------------------- writer */

static void
append_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++)
    {
      switch (*p)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default:
          if (*p < 0x20)
            g_string_append_printf (out, "\\u%04x", *p);
          else
            g_string_append_c (out, (char) *p);
        }
    }
  g_string_append_c (out, '"');
}

/* Nanoseconds as microseconds with exactly three decimals. */
static void
append_us (GString *out, gint64 ns)
{
  guint64 a;

  if (ns < 0)
    {
      g_string_append_c (out, '-');
      a = (guint64) (-(ns + 1)) + 1;
    }
  else
    a = (guint64) ns;
  g_string_append_printf (out, "%" G_GUINT64_FORMAT ".%03u", a / 1000, (guint) (a % 1000));
}

static int
track_pid (const FbTrack *t)
{
  if (t->kind == FB_TRACK_GPU_STREAM || t->device >= 0)
    return GPU_PID0 + MAX (t->device, 0);
  return HOST_PID;
}

static void
begin_event (GString *out, gboolean *first, const char *ph, const char *name, int pid, guint tid)
{
  g_string_append (out, *first ? "\n  {" : ",\n  {");
  *first = FALSE;
  g_string_append_printf (out, "\"ph\":\"%s\",\"name\":", ph);
  append_string (out, name);
  g_string_append_printf (out, ",\"pid\":%d,\"tid\":%u", pid, tid);
}

static void
write_span (GString *out, gboolean *first, const FbTrack *t, const FbSpan *s, gint64 origin)
{
  int pid = track_pid (t);
  guint tid = t->id + 1;

  begin_event (out, first, "X", s->name, pid, tid);
  g_string_append (out, ",\"cat\":");
  append_string (out, fb_span_kind_to_string (s->kind));
  g_string_append (out, ",\"ts\":");
  append_us (out, s->start_ns - origin);
  g_string_append (out, ",\"dur\":");
  append_us (out, fb_span_duration_ns (s));
  g_string_append (out, ",\"args\":{");
  g_string_append_printf (out, "\"kernel_id\":%d,\"step\":%d", s->kernel_id, s->step);
  if (s->n_instr > 0)
    {
      g_string_append (out, ",\"instr_ids\":[");
      for (guint i = 0; i < s->n_instr; i++)
        g_string_append_printf (out, "%s%" G_GINT64_FORMAT, i ? "," : "", s->instr_ids[i]);
      g_string_append_c (out, ']');
    }
  if (s->flow_in)
    g_string_append_printf (out, ",\"flow_in\":%" G_GUINT64_FORMAT, s->flow_in);
  if (s->flow_out)
    g_string_append_printf (out, ",\"flow_out\":%" G_GUINT64_FORMAT, s->flow_out);
  if (s->bytes)
    g_string_append_printf (out, ",\"bytes\":%" G_GUINT64_FORMAT, s->bytes);
  if (s->correlation)
    g_string_append_printf (out, ",\"correlation\":%" G_GUINT64_FORMAT, s->correlation);
  if (s->has_hw)
    for (int i = 0; i < FB_N_HW_COUNTERS; i++)
      g_string_append_printf (out, ",\"%s\":%" G_GUINT64_FORMAT, fb_hw_counter_to_string (i), s->hw[i]);
  g_string_append (out, "}}");

  /* Flow arrows for the viewers; the reader takes flows from the args. */
  if (s->flow_out)
    {
      begin_event (out, first, "s", "flow", pid, tid);
      g_string_append_printf (out, ",\"cat\":\"flow\",\"id\":%" G_GUINT64_FORMAT ",\"ts\":", s->flow_out);
      append_us (out, s->start_ns - origin);
      g_string_append_c (out, '}');
    }
  if (s->flow_in)
    {
      begin_event (out, first, "f", "flow", pid, tid);
      g_string_append_printf (out, ",\"cat\":\"flow\",\"bp\":\"e\",\"id\":%" G_GUINT64_FORMAT ",\"ts\":", s->flow_in);
      append_us (out, s->start_ns - origin);
      g_string_append_c (out, '}');
    }
}

char *
fb_chrome_trace_to_string (FbTrace *trace)
{
  GString *out = g_string_new (NULL);
  gboolean first = TRUE;
  gint64 origin = 0;
  guint n_tracks;
  g_autoptr (GHashTable) pids = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_autofree const char **keys = NULL;

  g_return_val_if_fail (trace != NULL, NULL);
  fb_trace_finish (trace);
  fb_trace_get_time_range (trace, &origin, NULL);
  n_tracks = fb_trace_get_n_tracks (trace);

  g_string_append (out, "{\"displayTimeUnit\":\"ns\",\"otherData\":{");
  g_string_append_printf (out, "\"fusebox_version\":%d,\"fusebox_origin_ns\":\"%" G_GINT64_FORMAT "\"",
                          FORMAT_VERSION, origin);
  if (fb_trace_get_title (trace))
    {
      g_string_append (out, ",\"title\":");
      append_string (out, fb_trace_get_title (trace));
    }
  keys = fb_trace_list_metadata (trace);
  g_string_append (out, ",\"metadata\":{");
  for (guint i = 0; keys[i]; i++)
    {
      if (i)
        g_string_append_c (out, ',');
      append_string (out, keys[i]);
      g_string_append_c (out, ':');
      append_string (out, fb_trace_get_metadata (trace, keys[i]));
    }
  g_string_append (out, "}},\"traceEvents\":[");

  for (guint i = 0; i < n_tracks; i++)
    {
      const FbTrack *t = fb_trace_get_track (trace, i);
      int pid = track_pid (t);

      if (!g_hash_table_contains (pids, GINT_TO_POINTER (pid)))
        {
          g_autofree char *pname = pid == HOST_PID ? g_strdup ("Host")
                                                   : g_strdup_printf ("GPU %d", pid - GPU_PID0);
          g_hash_table_add (pids, GINT_TO_POINTER (pid));
          begin_event (out, &first, "M", "process_name", pid, 0);
          g_string_append (out, ",\"args\":{\"name\":");
          append_string (out, pname);
          g_string_append (out, "}}");
          begin_event (out, &first, "M", "process_sort_index", pid, 0);
          g_string_append_printf (out, ",\"args\":{\"sort_index\":%d}}", pid);
        }
      begin_event (out, &first, "M", "thread_name", pid, t->id + 1);
      g_string_append (out, ",\"args\":{\"name\":");
      append_string (out, t->name);
      g_string_append_printf (out, ",\"fusebox_track\":%u,\"kind\":\"%s\",\"device\":%d,\"os_tid\":%" G_GINT64_FORMAT,
                              t->id, fb_track_kind_to_string (t->kind), t->device, t->tid);
      if (t->unit)
        {
          g_string_append (out, ",\"unit\":");
          append_string (out, t->unit);
        }
      g_string_append (out, "}}");
      begin_event (out, &first, "M", "thread_sort_index", pid, t->id + 1);
      g_string_append_printf (out, ",\"args\":{\"sort_index\":%d}}", t->sort_index);
    }

  for (guint i = 0; i < n_tracks; i++)
    {
      const FbTrack *t = fb_trace_get_track (trace, i);
      int pid = track_pid (t);

      for (guint j = 0; j < t->n_spans; j++)
        write_span (out, &first, t, &t->spans[j], origin);
      for (guint j = 0; j < t->n_samples; j++)
        {
          double v = t->samples[j].value;

          if (!isfinite (v))
            continue;
          begin_event (out, &first, "C", t->name, pid, t->id + 1);
          g_string_append (out, ",\"ts\":");
          append_us (out, t->samples[j].time_ns - origin);
          g_string_append_printf (out, ",\"args\":{\"value\":%.17g}}", v);
        }
      for (guint j = 0; j < t->n_instants; j++)
        {
          begin_event (out, &first, "i", t->instants[j].name, pid, t->id + 1);
          g_string_append (out, ",\"s\":\"t\",\"ts\":");
          append_us (out, t->instants[j].time_ns - origin);
          g_string_append_printf (out, ",\"args\":{\"step\":%d}}", t->instants[j].step);
        }
    }
  g_string_append (out, "\n]}\n");
  return g_string_free (out, FALSE);
}

gboolean
fb_chrome_trace_write (FbTrace *trace, const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;

  g_return_val_if_fail (trace != NULL && path != NULL, FALSE);
  text = fb_chrome_trace_to_string (trace);
  if (!g_file_set_contents (path, text, -1, &local))
    {
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_IO, "%s", local->message);
      return FALSE;
    }
  return TRUE;
}

/* ----------------------------------------------------------------- reader */

typedef struct {
  const char  *text;
  gsize        len;
  const char  *filename;
  gboolean     root_array;
} Ctx;

static void
line_col (const Ctx *ctx, gsize offset, int *line, int *col)
{
  *line = 1;
  *col = 1;
  for (gsize i = 0; i < offset && i < ctx->len; i++)
    {
      if (ctx->text[i] == '\n')
        {
          (*line)++;
          *col = 1;
        }
      else
        (*col)++;
    }
}

static gboolean
fail_at (const Ctx *ctx, GError **error, gsize offset, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static gboolean
fail_at (const Ctx *ctx, GError **error, gsize offset, const char *fmt, ...)
{
  g_autofree char *msg = NULL;
  va_list ap;
  int line, col;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  line_col (ctx, offset, &line, &col);
  g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_PARSE, "%s:%d:%d: %s",
               ctx->filename, line, col, msg);
  return FALSE;
}

/* Offset of element @index of the event array (the root array, or the
 * value of the root object's "traceEvents"); the text is known to be valid
 * JSON here. Returns 0 when not found. */
static gsize
locate_event (const Ctx *ctx, guint index)
{
  int depth = 0, events_depth = ctx->root_array ? 1 : -1;
  gboolean in_str = FALSE, esc = FALSE, key_is_events = FALSE, expecting = FALSE;
  gsize str_start = 0;
  guint count = 0;

  for (gsize i = 0; i < ctx->len; i++)
    {
      char c = ctx->text[i];

      if (in_str)
        {
          if (esc)
            esc = FALSE;
          else if (c == '\\')
            esc = TRUE;
          else if (c == '"')
            {
              in_str = FALSE;
              if (depth == 1 && !ctx->root_array)
                key_is_events = i - str_start == strlen ("traceEvents")
                                && memcmp (ctx->text + str_start, "traceEvents", i - str_start) == 0;
            }
          continue;
        }
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
        continue;
      if (expecting && depth == events_depth && c != ']')
        {
          if (count == index)
            return i;
          count++;
          expecting = FALSE;
        }
      switch (c)
        {
        case '"':
          in_str = TRUE;
          str_start = i + 1;
          break;
        case '{':
          depth++;
          break;
        case '[':
          depth++;
          if (depth == events_depth || (depth == 2 && key_is_events && events_depth < 0))
            {
              events_depth = depth;
              expecting = TRUE;
            }
          break;
        case '}':
        case ']':
          if (depth == events_depth && c == ']')
            return 0;
          depth--;
          break;
        case ',':
          if (depth == events_depth)
            expecting = TRUE;
          break;
        case ':':
          break;
        default:
          if (depth == 1)
            key_is_events = FALSE;
        }
    }
  return 0;
}

typedef struct {
  int         pid;
  gint64      tid;
  char       *name;
  FbTrackKind kind;
  int         sort_index;
  gboolean    has_sort;
  int         device;
  gint64      os_tid;
  char       *unit;
  gint64      order;        /* fusebox_track, or G_MAXINT32 + appearance */
  gboolean    counter;      /* a counter track found by name, not declared */
  guint       id;           /* in the new trace */
  GArray     *spans;        /* FbSpan, names borrowed from the JSON */
  GArray     *open;         /* FbSpan, B events waiting for their E */
} TrackInfo;

static void
track_info_free (TrackInfo *ti)
{
  g_free (ti->name);
  g_free (ti->unit);
  if (ti->spans)
    g_array_free (ti->spans, TRUE);
  if (ti->open)
    g_array_free (ti->open, TRUE);
  g_free (ti);
}

typedef struct {
  Ctx          ctx;
  gint64       origin;
  gboolean     own_format;
  GPtrArray   *tracks;          /* TrackInfo* */
  GHashTable  *by_thread;       /* "pid:tid" -> TrackInfo* */
  GHashTable  *by_counter;      /* "pid:name" -> TrackInfo* */
  GHashTable  *process_names;   /* pid -> char* */
  GPtrArray   *id_arrays;       /* gint64* kept until spans are added */
  FbTrace     *live;            /* set once declared tracks exist: new ones get a track at once */
} Reader;

static void create_track (Reader *r, TrackInfo *ti, guint position);

static TrackInfo *
thread_info (Reader *r, int pid, gint64 tid, gboolean create)
{
  g_autofree char *key = g_strdup_printf ("%d:%" G_GINT64_FORMAT, pid, tid);
  TrackInfo *ti = g_hash_table_lookup (r->by_thread, key);

  if (ti || !create)
    return ti;
  ti = g_new0 (TrackInfo, 1);
  ti->pid = pid;
  ti->tid = tid;
  ti->kind = FB_TRACK_HOST_THREAD;
  ti->device = -1;
  ti->os_tid = tid;
  ti->order = (gint64) G_MAXINT32 + r->tracks->len;
  ti->spans = g_array_new (FALSE, FALSE, sizeof (FbSpan));
  ti->open = g_array_new (FALSE, FALSE, sizeof (FbSpan));
  g_ptr_array_add (r->tracks, ti);
  g_hash_table_insert (r->by_thread, g_steal_pointer (&key), ti);
  if (r->live)
    create_track (r, ti, r->tracks->len - 1);
  return ti;
}

static gboolean
get_number (json_object *obj, const char *key, double *out)
{
  json_object *v;

  if (!json_object_object_get_ex (obj, key, &v))
    return FALSE;
  if (!json_object_is_type (v, json_type_int) && !json_object_is_type (v, json_type_double))
    return FALSE;
  *out = json_object_get_double (v);
  return isfinite (*out);
}

static gboolean
get_int64 (json_object *obj, const char *key, gint64 *out)
{
  json_object *v;

  if (!json_object_object_get_ex (obj, key, &v))
    return FALSE;
  if (json_object_is_type (v, json_type_int))
    {
      *out = json_object_get_int64 (v);
      return TRUE;
    }
  if (json_object_is_type (v, json_type_double) && isfinite (json_object_get_double (v)))
    {
      *out = (gint64) json_object_get_double (v);
      return TRUE;
    }
  return FALSE;
}

static const char *
get_string (json_object *obj, const char *key)
{
  json_object *v;

  if (!json_object_object_get_ex (obj, key, &v) || !json_object_is_type (v, json_type_string))
    return NULL;
  return json_object_get_string (v);
}

/* Event time in ns, from microseconds; exact for the writer's decimals. */
static gboolean
event_time (Reader *r, json_object *ev, const char *key, gint64 *ns)
{
  json_object *v;
  double us;

  if (!json_object_object_get_ex (ev, key, &v))
    return FALSE;
  if (json_object_is_type (v, json_type_int))
    {
      gint64 i = json_object_get_int64 (v);
      if (i > G_GINT64_CONSTANT (9000000000000) || i < -G_GINT64_CONSTANT (9000000000000))
        return FALSE;
      *ns = r->origin + i * 1000;
      return TRUE;
    }
  if (!json_object_is_type (v, json_type_double))
    return FALSE;
  us = json_object_get_double (v);
  if (!isfinite (us) || fabs (us) > 9e12)
    return FALSE;
  *ns = r->origin + (gint64) llround (us * 1000.0);
  return TRUE;
}

static guint64
flow_id (json_object *ev, gboolean *ok)
{
  json_object *v;

  *ok = FALSE;
  if (!json_object_object_get_ex (ev, "id", &v)
      && !json_object_object_get_ex (ev, "bind_id", &v))
    return 0;
  if (json_object_is_type (v, json_type_int))
    {
      *ok = TRUE;
      return (guint64) json_object_get_int64 (v);
    }
  if (json_object_is_type (v, json_type_string))
    {
      const char *s = json_object_get_string (v);
      char *end;
      guint64 id = g_ascii_strtoull (s, &end, 0);
      *ok = TRUE;
      return *end == '\0' && end != s ? id : g_str_hash (s);
    }
  return 0;
}

/* Pass 1: metadata events declare processes and tracks. */
static gboolean
read_metadata (Reader *r, json_object *ev, guint index, GError **error)
{
  const char *name = get_string (ev, "name");
  json_object *args = NULL;
  gint64 pid = 0, tid = 0;

  get_int64 (ev, "pid", &pid);
  get_int64 (ev, "tid", &tid);
  if (!json_object_object_get_ex (ev, "args", &args) || !json_object_is_type (args, json_type_object))
    return fail_at (&r->ctx, error, locate_event (&r->ctx, index),
                    "metadata event %u has no args object", index);
  if (g_strcmp0 (name, "process_name") == 0)
    {
      const char *pname = get_string (args, "name");
      if (pname)
        g_hash_table_replace (r->process_names, GINT_TO_POINTER ((int) pid), g_strdup (pname));
    }
  else if (g_strcmp0 (name, "thread_name") == 0)
    {
      TrackInfo *ti = thread_info (r, (int) pid, tid, TRUE);
      const char *tname = get_string (args, "name");
      const char *kind = get_string (args, "kind");
      const char *unit = get_string (args, "unit");
      gint64 v;

      g_free (ti->name);
      ti->name = g_strdup (tname ? tname : "");
      if (kind && !fb_track_kind_from_string (kind, &ti->kind))
        return fail_at (&r->ctx, error, locate_event (&r->ctx, index),
                        "unknown track kind \"%s\"", kind);
      if (get_int64 (args, "fusebox_track", &v))
        ti->order = v;
      if (get_int64 (args, "device", &v))
        ti->device = (int) v;
      if (get_int64 (args, "os_tid", &v))
        ti->os_tid = v;
      if (unit)
        {
          g_free (ti->unit);
          ti->unit = g_strdup (unit);
        }
    }
  else if (g_strcmp0 (name, "thread_sort_index") == 0)
    {
      TrackInfo *ti = thread_info (r, (int) pid, tid, TRUE);
      gint64 v;
      if (get_int64 (args, "sort_index", &v))
        {
          ti->sort_index = (int) v;
          ti->has_sort = TRUE;
        }
    }
  return TRUE;
}

static gboolean
read_span_args (Reader *r, json_object *args, FbSpan *s)
{
  json_object *ids;
  gint64 v;

  if (!args)
    return TRUE;
  if (!json_object_is_type (args, json_type_object))
    return FALSE;
  if (get_int64 (args, "kernel_id", &v))
    s->kernel_id = (int) v;
  if (get_int64 (args, "step", &v))
    s->step = (int) v;
  if (get_int64 (args, "flow_in", &v))
    s->flow_in = (guint64) v;
  if (get_int64 (args, "flow_out", &v))
    s->flow_out = (guint64) v;
  if (get_int64 (args, "bytes", &v))
    s->bytes = (guint64) v;
  if (get_int64 (args, "correlation", &v))
    s->correlation = (guint64) v;
  for (int i = 0; i < FB_N_HW_COUNTERS; i++)
    if (get_int64 (args, fb_hw_counter_to_string (i), &v))
      {
        s->hw[i] = (guint64) v;
        s->has_hw = TRUE;
      }
  if (json_object_object_get_ex (args, "instr_ids", &ids))
    {
      gint64 *arr;
      gsize n;

      if (!json_object_is_type (ids, json_type_array))
        return FALSE;
      n = json_object_array_length (ids);
      arr = g_new (gint64, MAX (n, 1));
      g_ptr_array_add (r->id_arrays, arr);
      for (gsize i = 0; i < n; i++)
        {
          json_object *e = json_object_array_get_idx (ids, i);
          if (!json_object_is_type (e, json_type_int))
            return FALSE;
          arr[i] = json_object_get_int64 (e);
        }
      s->n_instr = n;
      s->instr_ids = arr;
    }
  return TRUE;
}

/* The deepest span of @ti that contains @t; -1 when none. */
static int
enclosing_span (TrackInfo *ti, gint64 t)
{
  int best = -1;
  gint64 best_len = G_MAXINT64;

  for (guint i = 0; i < ti->spans->len; i++)
    {
      FbSpan *s = &g_array_index (ti->spans, FbSpan, i);
      if (s->start_ns <= t && t <= s->end_ns && fb_span_duration_ns (s) <= best_len)
        {
          best = i;
          best_len = fb_span_duration_ns (s);
        }
    }
  return best;
}

/* Pass 2: spans, counters, instants; flows of foreign traces come last. */
static gboolean
read_event (Reader *r, FbTrace *trace, json_object *ev, guint index, GArray *flow_events,
            GError **error)
{
  const char *ph = get_string (ev, "ph");
  const char *name = get_string (ev, "name");
  json_object *args = NULL;
  gint64 pid = 0, tid = 0, ts = 0;

#define BAD(...) fail_at (&r->ctx, error, locate_event (&r->ctx, index), __VA_ARGS__)
  get_int64 (ev, "pid", &pid);
  get_int64 (ev, "tid", &tid);
  json_object_object_get_ex (ev, "args", &args);

  if (strcmp (ph, "M") == 0)
    return TRUE;
  if (strcmp (ph, "X") == 0 || strcmp (ph, "B") == 0 || strcmp (ph, "E") == 0)
    {
      TrackInfo *ti = thread_info (r, (int) pid, tid, TRUE);
      FbSpan s;
      gint64 dur_ns;

      if (!event_time (r, ev, "ts", &ts))
        return BAD ("event %u (%s): missing or invalid \"ts\"", index, ph);
      if (ph[0] == 'E')
        {
          if (ti->open->len == 0)
            return TRUE;     /* an unmatched end: nothing to close */
          s = g_array_index (ti->open, FbSpan, ti->open->len - 1);
          g_array_set_size (ti->open, ti->open->len - 1);
          s.end_ns = MAX (ts, s.start_ns);
          g_array_append_val (ti->spans, s);
          return TRUE;
        }
      fb_span_init (&s);
      s.name = name ? name : "";
      s.start_ns = ts;
      {
        const char *cat = get_string (ev, "cat");
        FbSpanKind kind;
        if (cat && fb_span_kind_from_string (cat, &kind))
          s.kind = kind;
        else if (!r->own_format)
          s.kind = FB_SPAN_KERNEL;
      }
      if (!read_span_args (r, args, &s))
        return BAD ("event %u (%s \"%s\"): malformed args", index, ph, s.name);
      if (ph[0] == 'B')
        {
          s.end_ns = s.start_ns;
          g_array_append_val (ti->open, s);
          return TRUE;
        }
      {
        double dur;
        json_object *dv;
        if (!json_object_object_get_ex (ev, "dur", &dv) || !get_number (ev, "dur", &dur) || dur < 0 || dur > 9e12)
          return BAD ("event %u (X \"%s\"): missing or invalid \"dur\"", index, s.name);
        dur_ns = json_object_is_type (dv, json_type_int) ? json_object_get_int64 (dv) * 1000
                                                         : (gint64) llround (dur * 1000.0);
      }
      s.end_ns = s.start_ns + dur_ns;
      g_array_append_val (ti->spans, s);
      return TRUE;
    }
  if (strcmp (ph, "C") == 0)
    {
      json_object_iter it;
      TrackInfo *declared = r->own_format ? thread_info (r, (int) pid, tid, FALSE) : NULL;

      if (!event_time (r, ev, "ts", &ts))
        return BAD ("event %u (C): missing or invalid \"ts\"", index);
      if (!args || !json_object_is_type (args, json_type_object))
        return BAD ("event %u (C \"%s\"): counter without an args object", index, name ? name : "");
      json_object_object_foreachC (args, it)
        {
          TrackInfo *ti = declared;
          double v;

          if (json_object_is_type (it.val, json_type_null))
            continue;
          if (!json_object_is_type (it.val, json_type_int) && !json_object_is_type (it.val, json_type_double))
            return BAD ("event %u (C \"%s\"): value of \"%s\" is not a number", index,
                        name ? name : "", it.key);
          v = json_object_get_double (it.val);
          if (!ti)
            {
              g_autofree char *tname = strcmp (it.key, "value") == 0
                                         ? g_strdup (name ? name : "counter")
                                         : g_strdup_printf ("%s %s", name ? name : "counter", it.key);
              g_autofree char *key = g_strdup_printf ("%d:%s", (int) pid, tname);
              ti = g_hash_table_lookup (r->by_counter, key);
              if (!ti)
                {
                  ti = g_new0 (TrackInfo, 1);
                  ti->pid = (int) pid;
                  ti->tid = -1;
                  ti->name = g_steal_pointer (&tname);
                  ti->kind = FB_TRACK_COUNTER;
                  ti->device = -1;
                  ti->counter = TRUE;
                  ti->order = (gint64) G_MAXINT32 + r->tracks->len;
                  ti->spans = g_array_new (FALSE, FALSE, sizeof (FbSpan));
                  ti->open = g_array_new (FALSE, FALSE, sizeof (FbSpan));
                  g_ptr_array_add (r->tracks, ti);
                  g_hash_table_insert (r->by_counter, g_steal_pointer (&key), ti);
                  create_track (r, ti, r->tracks->len - 1);
                }
            }
          fb_trace_add_sample (trace, ti->id, ts, v);
        }
      return TRUE;
    }
  if (strcmp (ph, "i") == 0 || strcmp (ph, "I") == 0)
    {
      TrackInfo *ti = thread_info (r, (int) pid, tid, TRUE);
      gint64 step = -1;

      if (!event_time (r, ev, "ts", &ts))
        return BAD ("event %u (i): missing or invalid \"ts\"", index);
      if (args && json_object_is_type (args, json_type_object))
        get_int64 (args, "step", &step);
      fb_trace_add_instant (trace, ti->id, ts, name ? name : "", (int) step);
      return TRUE;
    }
  if (strcmp (ph, "s") == 0 || strcmp (ph, "f") == 0 || strcmp (ph, "t") == 0)
    {
      gboolean ok;
      flow_id (ev, &ok);
      if (!ok)
        return BAD ("event %u (%s): flow without an id", index, ph);
      if (!event_time (r, ev, "ts", &ts))
        return BAD ("event %u (%s): missing or invalid \"ts\"", index, ph);
      thread_info (r, (int) pid, tid, TRUE);
      if (!r->own_format)
        g_array_append_val (flow_events, index);
      return TRUE;
    }
  return TRUE;   /* other phases are not ours to keep */
#undef BAD
}

static int
cmp_info (gconstpointer pa, gconstpointer pb)
{
  const TrackInfo *a = *(TrackInfo **) pa, *b = *(TrackInfo **) pb;

  return (a->order > b->order) - (a->order < b->order);
}

static void
create_track (Reader *r, TrackInfo *ti, guint position)
{
  g_autofree char *fallback = NULL;
  const char *name = ti->name;

  if (!name)
    {
      const char *pname = g_hash_table_lookup (r->process_names, GINT_TO_POINTER (ti->pid));
      name = fallback = g_strdup_printf ("%s thread %" G_GINT64_FORMAT, pname ? pname : "process", ti->tid);
    }
  ti->id = fb_trace_add_track (r->live, ti->kind, name, ti->has_sort ? ti->sort_index : (int) position,
                               ti->device, ti->counter ? 0 : ti->os_tid, ti->unit);
}

static gboolean
parse_events (Reader *r, FbTrace *trace, json_object *events, GError **error)
{
  gsize n = json_object_array_length (events);
  g_autoptr (GArray) flow_events = g_array_new (FALSE, FALSE, sizeof (guint));

  for (gsize i = 0; i < n; i++)
    {
      json_object *ev = json_object_array_get_idx (events, i);
      const char *ph;

      if (!ev || !json_object_is_type (ev, json_type_object))
        return fail_at (&r->ctx, error, locate_event (&r->ctx, i), "event %zu is not an object", i);
      ph = get_string (ev, "ph");
      if (!ph)
        return fail_at (&r->ctx, error, locate_event (&r->ctx, i), "event %zu has no \"ph\" string", i);
      if (strcmp (ph, "M") == 0 && !read_metadata (r, ev, i, error))
        return FALSE;
    }
  /* Declared tracks first, in their recorded order. */
  g_ptr_array_sort (r->tracks, cmp_info);
  r->live = trace;
  for (guint i = 0; i < r->tracks->len; i++)
    create_track (r, r->tracks->pdata[i], i);

  /* Undeclared threads and counters get their track when first seen. */
  for (gsize i = 0; i < n; i++)
    if (!read_event (r, trace, json_object_array_get_idx (events, i), i, flow_events, error))
      return FALSE;

  /* Foreign flows: bind s to the enclosing span, f to the enclosing one
   * (bp "e") or the next one to start. */
  for (guint k = 0; k < flow_events->len; k++)
    {
      guint i = g_array_index (flow_events, guint, k);
      json_object *ev = json_object_array_get_idx (events, i);
      const char *ph = get_string (ev, "ph");
      gint64 pid = 0, tid = 0, ts = 0;
      gboolean ok;
      guint64 id = flow_id (ev, &ok);
      TrackInfo *ti;
      int si;

      get_int64 (ev, "pid", &pid);
      get_int64 (ev, "tid", &tid);
      event_time (r, ev, "ts", &ts);
      ti = thread_info (r, (int) pid, tid, FALSE);
      if (!ti || id == 0)
        continue;
      si = enclosing_span (ti, ts);
      if (ph[0] == 'f' && g_strcmp0 (get_string (ev, "bp"), "e") != 0)
        {
          si = -1;
          for (guint j = 0; j < ti->spans->len; j++)
            if (g_array_index (ti->spans, FbSpan, j).start_ns >= ts
                && (si < 0 || g_array_index (ti->spans, FbSpan, j).start_ns
                                 < g_array_index (ti->spans, FbSpan, si).start_ns))
              si = j;
        }
      if (si < 0)
        continue;
      if (ph[0] == 's')
        g_array_index (ti->spans, FbSpan, si).flow_out = id;
      else if (ph[0] == 'f')
        g_array_index (ti->spans, FbSpan, si).flow_in = id;
    }

  for (guint i = 0; i < r->tracks->len; i++)
    {
      TrackInfo *ti = r->tracks->pdata[i];
      for (guint j = 0; j < ti->spans->len; j++)
        fb_trace_add_span (trace, ti->id, &g_array_index (ti->spans, FbSpan, j));
    }
  return TRUE;
}

static gboolean
read_other_data (Reader *r, FbTrace *trace, json_object *root, GError **error)
{
  json_object *other, *meta;
  const char *origin, *title;

  if (!json_object_object_get_ex (root, "otherData", &other) || !json_object_is_type (other, json_type_object))
    return TRUE;
  if (!json_object_object_get_ex (other, "fusebox_version", NULL))
    return TRUE;
  r->own_format = TRUE;
  origin = get_string (other, "fusebox_origin_ns");
  if (origin)
    {
      char *end;
      errno = 0;
      r->origin = g_ascii_strtoll (origin, &end, 10);
      if (errno || *end || end == origin || r->origin < 0 || r->origin > (G_GINT64_CONSTANT (1) << 62))
        return fail_at (&r->ctx, error, 0, "otherData.fusebox_origin_ns is not a time in nanoseconds: \"%s\"", origin);
    }
  title = get_string (other, "title");
  if (title)
    fb_trace_set_title (trace, title);
  if (json_object_object_get_ex (other, "metadata", &meta) && json_object_is_type (meta, json_type_object))
    {
      json_object_iter it;
      json_object_object_foreachC (meta, it)
        if (json_object_is_type (it.val, json_type_string))
          fb_trace_set_metadata (trace, it.key, json_object_get_string (it.val));
    }
  return TRUE;
}

FbTrace *
fb_chrome_trace_parse (const char *text, gssize len, const char *filename, GError **error)
{
  Reader r = { 0 };
  json_tokener *tok;
  json_object *root, *events = NULL;
  enum json_tokener_error jerr;
  g_autoptr (FbTrace) trace = NULL;
  gboolean ok;
  gsize end;

  g_return_val_if_fail (text != NULL, NULL);
  r.ctx.text = text;
  r.ctx.len = len < 0 ? strlen (text) : (gsize) len;
  r.ctx.filename = filename ? filename : "<trace>";

  if (r.ctx.len > G_MAXINT)
    {
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_PARSE, "%s: trace too large", r.ctx.filename);
      return NULL;
    }
  tok = json_tokener_new_ex (JSON_TOKENER_DEFAULT_DEPTH);
  root = json_tokener_parse_ex (tok, text, (int) r.ctx.len);
  jerr = json_tokener_get_error (tok);
  end = json_tokener_get_parse_end (tok);
  if (!root && jerr == json_tokener_continue)
    {
      /* A top-level number may still be waiting for its end: a NUL ends
       * it. Anything else still open is a truncated file. */
      root = json_tokener_parse_ex (tok, "", 1);
      jerr = root ? json_tokener_success : json_tokener_continue;
      end = r.ctx.len;
    }
  json_tokener_free (tok);
  if (!root || jerr != json_tokener_success)
    {
      if (root)
        json_object_put (root);
      if (jerr == json_tokener_continue || jerr == json_tokener_success)
        fail_at (&r.ctx, error, r.ctx.len, "invalid JSON: unexpected end of file");
      else
        fail_at (&r.ctx, error, MIN (end, r.ctx.len), "invalid JSON: %s", json_tokener_error_desc (jerr));
      return NULL;
    }
  for (gsize i = end; i < r.ctx.len; i++)
    if (!g_ascii_isspace (text[i]))
      {
        json_object_put (root);
        fail_at (&r.ctx, error, i, "invalid JSON: unexpected text after the end of the trace");
        return NULL;
      }

  trace = fb_trace_new ();
  if (json_object_is_type (root, json_type_array))
    {
      r.ctx.root_array = TRUE;
      events = root;
    }
  else if (!json_object_is_type (root, json_type_object)
           || !json_object_object_get_ex (root, "traceEvents", &events)
           || !json_object_is_type (events, json_type_array))
    {
      json_object_put (root);
      fail_at (&r.ctx, error, 0, "not a Chrome trace: expected an array of events or an object "
                                 "with a \"traceEvents\" array");
      return NULL;
    }

  r.tracks = g_ptr_array_new_with_free_func ((GDestroyNotify) track_info_free);
  r.by_thread = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  r.by_counter = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  r.process_names = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  r.id_arrays = g_ptr_array_new_with_free_func (g_free);

  ok = (r.ctx.root_array || read_other_data (&r, trace, root, error))
       && parse_events (&r, trace, events, error);
  if (ok)
    fb_trace_finish (trace);

  g_ptr_array_unref (r.tracks);
  g_hash_table_unref (r.by_thread);
  g_hash_table_unref (r.by_counter);
  g_hash_table_unref (r.process_names);
  g_ptr_array_unref (r.id_arrays);
  json_object_put (root);
  return ok ? g_steal_pointer (&trace) : NULL;
}

FbTrace *
fb_chrome_trace_read (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;
  gsize len;

  g_return_val_if_fail (path != NULL, NULL);
  if (!g_file_get_contents (path, &text, &len, &local))
    {
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_IO, "%s", local->message);
      return NULL;
    }
  return fb_chrome_trace_parse (text, (gssize) len, path, error);
}
