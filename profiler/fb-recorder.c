/* SPDX-License-Identifier: MIT
 *
 * The CPU recorder. A scope records its start on the caller's stack and
 * appends one span to the trace at its end, so the cost per kernel is two
 * clock reads and an array push (plus two reads of a perf event group when
 * hardware counters are on).
 *
 * Hardware counters are counted per thread: each thread opens its own perf
 * event group (cycles leading, instructions and cache misses following, user
 * space only) on its first kernel, and a single read() of the leader returns
 * all three. The recorder keeps every descriptor it opened and closes them
 * when it is freed.
 */
#include "fb-recorder.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

struct _FbRecorder {
  FbTrace         *trace;
  FbRecorderFlags  flags;
  guint64          serial;
  gint64           host_tid;
  int              step;          /* atomic */
  gboolean         counters_ok;
  char            *counters_reason;
  GMutex           lock;
  GArray          *fds;           /* int, every perf descriptor opened */
};

/* Per-thread state, valid for the recorder with the same serial: the
 * thread's track and its perf group. */
typedef struct {
  guint64  serial;
  guint    track;
  gboolean counters_tried;
  int      leader;                 /* -1: none */
} ThreadState;

static __thread ThreadState tls_state;
static __thread gint64 tls_tid;
static guint64 next_recorder_serial = 1;

static gint64
current_tid (void)
{
  if (G_UNLIKELY (tls_tid == 0))
    tls_tid = (gint64) syscall (SYS_gettid);
  return tls_tid;
}

static const guint64 hw_configs[FB_N_HW_COUNTERS] = {
  PERF_COUNT_HW_CPU_CYCLES,
  PERF_COUNT_HW_INSTRUCTIONS,
  PERF_COUNT_HW_CACHE_MISSES,
};

/* ------------------------------------------------------------ perf events */

static int
perf_open (guint64 config, int group_fd)
{
  struct perf_event_attr attr;

  memset (&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_HARDWARE;
  attr.config = config;
  attr.disabled = group_fd < 0;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  attr.read_format = PERF_FORMAT_GROUP;
  return (int) syscall (SYS_perf_event_open, &attr, 0, -1, group_fd, PERF_FLAG_FD_CLOEXEC);
}

static char *
paranoid_level (void)
{
  g_autofree char *text = NULL;

  if (!g_file_get_contents ("/proc/sys/kernel/perf_event_paranoid", &text, NULL, NULL))
    return g_strdup ("unknown");
  return g_strstrip (g_steal_pointer (&text));
}

static char *
describe_errno (int err)
{
  switch (err)
    {
    case EACCES:
    case EPERM:
      {
        g_autofree char *level = paranoid_level ();
        return g_strdup_printf ("perf_event_open: %s (perf_event_paranoid is %s; "
                                "counting needs it at 2 or lower, or CAP_PERFMON)",
                                g_strerror (err), level);
      }
    case ENOENT:
    case EOPNOTSUPP:
    case ENODEV:
      return g_strdup_printf ("perf_event_open: %s (no hardware counters exposed on this "
                              "machine, as in most virtual machines)", g_strerror (err));
    case ENOSYS:
      return g_strdup_printf ("perf_event_open: %s (the kernel has no perf events)",
                              g_strerror (err));
    default:
      return g_strdup_printf ("perf_event_open: %s", g_strerror (err));
    }
}

/* Opens a group of the three counters for the calling thread and enables
 * it. Returns the leader, or -1 with *@fds_out untouched and *@reason set. */
static int
open_group (int fds_out[FB_N_HW_COUNTERS], char **reason)
{
  int fds[FB_N_HW_COUNTERS];

  for (int i = 0; i < FB_N_HW_COUNTERS; i++)
    {
      fds[i] = perf_open (hw_configs[i], i == 0 ? -1 : fds[0]);
      if (fds[i] < 0)
        {
          int err = errno;
          for (int j = 0; j < i; j++)
            close (fds[j]);
          if (reason)
            *reason = describe_errno (err);
          return -1;
        }
    }
  if (ioctl (fds[0], PERF_EVENT_IOC_RESET, PERF_IOC_FLAG_GROUP) < 0
      || ioctl (fds[0], PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP) < 0)
    {
      int err = errno;
      for (int j = 0; j < FB_N_HW_COUNTERS; j++)
        close (fds[j]);
      if (reason)
        *reason = g_strdup_printf ("enabling perf events: %s", g_strerror (err));
      return -1;
    }
  memcpy (fds_out, fds, sizeof fds);
  return fds[0];
}

static gboolean
read_group (int leader, guint64 values[FB_N_HW_COUNTERS])
{
  guint64 buf[1 + FB_N_HW_COUNTERS];

  if (read (leader, buf, sizeof buf) != (ssize_t) sizeof buf || buf[0] != FB_N_HW_COUNTERS)
    return FALSE;
  memcpy (values, buf + 1, sizeof (guint64) * FB_N_HW_COUNTERS);
  return TRUE;
}

gboolean
fb_recorder_probe_counters (GError **error)
{
  int fds[FB_N_HW_COUNTERS];
  g_autofree char *reason = NULL;
  guint64 values[FB_N_HW_COUNTERS];
  gboolean ok;

  if (open_group (fds, &reason) < 0)
    {
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_UNAVAILABLE,
                   "counters unavailable: %s", reason);
      return FALSE;
    }
  ok = read_group (fds[0], values);
  for (int i = 0; i < FB_N_HW_COUNTERS; i++)
    close (fds[i]);
  if (!ok)
    {
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_UNAVAILABLE,
                   "counters unavailable: reading the perf event group failed");
      return FALSE;
    }
  return TRUE;
}

/* The calling thread's group leader for @rec, opened on first use; -1 when
 * counters are off or this thread could not open them. */
static int
thread_leader (FbRecorder *rec)
{
  int fds[FB_N_HW_COUNTERS];

  g_assert (tls_state.serial == rec->serial);   /* thread_track ran first */
  if (tls_state.counters_tried)
    return tls_state.leader;
  tls_state.counters_tried = TRUE;
  tls_state.leader = -1;
  if (!rec->counters_ok)
    return -1;
  if (open_group (fds, NULL) < 0)
    return -1;
  g_mutex_lock (&rec->lock);
  g_array_append_vals (rec->fds, fds, FB_N_HW_COUNTERS);
  g_mutex_unlock (&rec->lock);
  tls_state.leader = fds[0];
  return fds[0];
}

/* --------------------------------------------------------------- recorder */

FbRecorder *
fb_recorder_new (FbTrace *trace, FbRecorderFlags flags)
{
  FbRecorder *rec;

  g_return_val_if_fail (trace != NULL, NULL);
  rec = g_new0 (FbRecorder, 1);
  rec->trace = fb_trace_ref (trace);
  rec->flags = flags;
  rec->serial = __atomic_fetch_add (&next_recorder_serial, 1, __ATOMIC_RELAXED);
  rec->host_tid = current_tid ();
  rec->step = -1;
  g_mutex_init (&rec->lock);
  rec->fds = g_array_new (FALSE, FALSE, sizeof (int));

  if (flags & FB_RECORDER_HW_COUNTERS)
    {
      g_autoptr (GError) error = NULL;

      rec->counters_ok = fb_recorder_probe_counters (&error);
      if (!rec->counters_ok)
        rec->counters_reason = g_strdup (error->message);
    }
  else
    rec->counters_reason = g_strdup ("counters not requested");
  return rec;
}

void
fb_recorder_free (FbRecorder *rec)
{
  if (!rec)
    return;
  for (guint i = 0; i < rec->fds->len; i++)
    close (g_array_index (rec->fds, int, i));
  g_array_free (rec->fds, TRUE);
  if (tls_state.serial == rec->serial)
    tls_state.serial = 0;
  g_mutex_clear (&rec->lock);
  g_free (rec->counters_reason);
  fb_trace_unref (rec->trace);
  g_free (rec);
}

FbTrace *
fb_recorder_get_trace (FbRecorder *rec)
{
  g_return_val_if_fail (rec != NULL, NULL);
  return rec->trace;
}

gboolean
fb_recorder_has_counters (FbRecorder *rec, char **reason)
{
  g_return_val_if_fail (rec != NULL, FALSE);
  if (!rec->counters_ok && reason)
    *reason = g_strdup (rec->counters_reason);
  return rec->counters_ok;
}

/* The calling thread's track, through a thread-local cache. */
static guint
thread_track (FbRecorder *rec, const char *name)
{
  gboolean host;

  if (G_LIKELY (tls_state.serial == rec->serial))
    return tls_state.track;
  host = current_tid () == rec->host_tid;
  tls_state.serial = rec->serial;
  tls_state.counters_tried = FALSE;
  tls_state.leader = -1;
  tls_state.track = fb_trace_thread_track (rec->trace, host ? FB_TRACK_HOST_THREAD : FB_TRACK_CPU_WORKER,
                                           name ? name : host ? "main" : NULL);
  return tls_state.track;
}

void
fb_recorder_name_thread (FbRecorder *rec, const char *name)
{
  g_return_if_fail (rec != NULL);
  thread_track (rec, name);
}

int
fb_recorder_get_step (FbRecorder *rec)
{
  g_return_val_if_fail (rec != NULL, -1);
  return __atomic_load_n (&rec->step, __ATOMIC_RELAXED);
}

static void
scope_start (FbRecorder *rec, FbRecorderScope *scope, FbSpanKind kind, const char *name)
{
  fb_span_init (&scope->span);
  scope->span.kind = kind;
  scope->span.name = name;
  scope->span.step = __atomic_load_n (&rec->step, __ATOMIC_RELAXED);
  scope->track = thread_track (rec, NULL);
  scope->hw_started = FALSE;
}

void
fb_recorder_begin_step (FbRecorder *rec, FbRecorderScope *scope, int step)
{
  g_return_if_fail (rec != NULL && scope != NULL);
  __atomic_store_n (&rec->step, step, __ATOMIC_RELAXED);
  scope_start (rec, scope, FB_SPAN_STEP, "step");
  scope->span.step = step;
  scope->span.start_ns = fb_trace_now_ns ();
}

void
fb_recorder_begin_kernel (FbRecorder *rec, FbRecorderScope *scope, int kernel_id,
                          const char *name, guint n_instr, const gint64 *instr_ids)
{
  int leader;

  g_return_if_fail (rec != NULL && scope != NULL);
  scope_start (rec, scope, FB_SPAN_KERNEL, name ? name : "kernel");
  scope->span.kernel_id = kernel_id;
  scope->span.n_instr = instr_ids ? n_instr : 0;
  scope->span.instr_ids = instr_ids;
  if (rec->counters_ok && (leader = thread_leader (rec)) >= 0)
    scope->hw_started = read_group (leader, scope->hw_start);
  scope->span.start_ns = fb_trace_now_ns ();
}

void
fb_recorder_begin (FbRecorder *rec, FbRecorderScope *scope, FbSpanKind kind, const char *name)
{
  g_return_if_fail (rec != NULL && scope != NULL);
  g_return_if_fail (kind < FB_N_SPAN_KINDS);
  scope_start (rec, scope, kind, name ? name : fb_span_kind_to_string (kind));
  scope->span.start_ns = fb_trace_now_ns ();
}

void
fb_recorder_end (FbRecorder *rec, FbRecorderScope *scope)
{
  g_return_if_fail (rec != NULL && scope != NULL);
  scope->span.end_ns = fb_trace_now_ns ();
  if (scope->hw_started)
    {
      guint64 now[FB_N_HW_COUNTERS];

      if (read_group (tls_state.leader, now))
        {
          for (int i = 0; i < FB_N_HW_COUNTERS; i++)
            scope->span.hw[i] = now[i] - scope->hw_start[i];
          scope->span.has_hw = TRUE;
        }
    }
  fb_trace_add_span (rec->trace, scope->track, &scope->span);
  if (scope->span.kind == FB_SPAN_STEP)
    __atomic_store_n (&rec->step, -1, __ATOMIC_RELAXED);
}

double
fb_recorder_measure_overhead_ns (FbRecorderFlags flags, guint iterations)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  g_autoptr (FbRecorder) rec = fb_recorder_new (trace, flags);
  static const gint64 ids[] = { 1, 2, 3 };
  gint64 t0, t1;

  iterations = MAX (iterations, 1);
  t0 = fb_trace_now_ns ();
  for (guint i = 0; i < iterations; i++)
    {
      FbRecorderScope scope;
      fb_recorder_begin_kernel (rec, &scope, (int) (i % 8), "kernel", G_N_ELEMENTS (ids), ids);
      fb_recorder_end (rec, &scope);
    }
  t1 = fb_trace_now_ns ();
  return (double) (t1 - t0) / iterations;
}
