/* SPDX-License-Identifier: MIT
 *
 * Memory timelines: a copy of the planned live bytes, and a list of
 * allocator events that is sorted and summed lazily, the first time it is
 * read after a change. Summing keeps a table of live blocks by address so
 * that frees without a size find it, and so that unmatched frees are
 * noticed instead of driving the total below zero.
 */
#include "fb-memory.h"

#include <stdlib.h>
#include <string.h>

struct _FbMemoryTimeline {
  GMutex    lock;
  guint64  *plan;
  guint     n_plan;
  GArray   *events;      /* FbMemoryEvent */
  gboolean  dirty;
  guint64   peak;
  gint64    peak_time;
  guint64   live;
  guint     n_unmatched;
};

FbMemoryTimeline *
fb_memory_timeline_new (void)
{
  FbMemoryTimeline *tl = g_new0 (FbMemoryTimeline, 1);

  g_mutex_init (&tl->lock);
  tl->events = g_array_new (FALSE, FALSE, sizeof (FbMemoryEvent));
  return tl;
}

void
fb_memory_timeline_free (FbMemoryTimeline *tl)
{
  if (!tl)
    return;
  g_free (tl->plan);
  g_array_free (tl->events, TRUE);
  g_mutex_clear (&tl->lock);
  g_free (tl);
}

void
fb_memory_timeline_set_plan (FbMemoryTimeline *tl, const guint64 *live_bytes, guint n)
{
  g_return_if_fail (tl != NULL);
  g_return_if_fail (n == 0 || live_bytes != NULL);
  g_free (tl->plan);
  tl->plan = n ? g_memdup2 (live_bytes, sizeof (guint64) * n) : NULL;
  tl->n_plan = n;
}

const guint64 *
fb_memory_timeline_get_plan (FbMemoryTimeline *tl, guint *n)
{
  g_return_val_if_fail (tl != NULL, NULL);
  if (n)
    *n = tl->n_plan;
  return tl->plan;
}

guint64
fb_memory_timeline_get_plan_peak (FbMemoryTimeline *tl, guint *position)
{
  guint64 peak = 0;
  guint at = 0;

  g_return_val_if_fail (tl != NULL, 0);
  for (guint i = 0; i < tl->n_plan; i++)
    if (tl->plan[i] > peak)
      {
        peak = tl->plan[i];
        at = i;
      }
  if (position)
    *position = at;
  return peak;
}

void
fb_memory_timeline_add_event (FbMemoryTimeline *tl, FbMemoryEventKind kind, gint64 time_ns,
                              guint64 address, guint64 size, int device)
{
  FbMemoryEvent ev = { time_ns, kind, address, size, 0, device };

  g_return_if_fail (tl != NULL);
  g_return_if_fail (kind == FB_MEMORY_ALLOC || kind == FB_MEMORY_FREE);
  g_mutex_lock (&tl->lock);
  g_array_append_val (tl->events, ev);
  tl->dirty = TRUE;
  g_mutex_unlock (&tl->lock);
}

typedef struct {
  FbMemoryEvent ev;
  guint         seq;
} SortEvent;

static int
cmp_event (const void *pa, const void *pb)
{
  const SortEvent *a = pa, *b = pb;

  if (a->ev.time_ns != b->ev.time_ns)
    return a->ev.time_ns < b->ev.time_ns ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Block key: device and address together. */
static guint64
block_key (const FbMemoryEvent *ev)
{
  return ev->address ^ ((guint64) (guint32) (ev->device + 1) << 56);
}

static void
update_locked (FbMemoryTimeline *tl)
{
  g_autoptr (GHashTable) live = NULL;
  g_autofree SortEvent *sorted = NULL;
  guint n = tl->events->len;

  if (!tl->dirty)
    return;
  sorted = g_new (SortEvent, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      sorted[i].ev = g_array_index (tl->events, FbMemoryEvent, i);
      sorted[i].seq = i;
    }
  qsort (sorted, n, sizeof *sorted, cmp_event);

  live = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  tl->live = tl->peak = 0;
  tl->peak_time = 0;
  tl->n_unmatched = 0;
  for (guint i = 0; i < n; i++)
    {
      FbMemoryEvent *ev = &sorted[i].ev;
      guint64 key = block_key (ev);

      if (ev->kind == FB_MEMORY_ALLOC)
        {
          guint64 *old = g_hash_table_lookup (live, &key);
          if (old)            /* a realloc at the same address: replace */
            tl->live -= *old;
          g_hash_table_insert (live, g_memdup2 (&key, sizeof key), g_memdup2 (&ev->size, sizeof ev->size));
          tl->live += ev->size;
        }
      else
        {
          guint64 *size = g_hash_table_lookup (live, &key);
          if (size)
            {
              if (ev->size == 0)
                ev->size = *size;
              tl->live -= *size;
              g_hash_table_remove (live, &key);
            }
          else
            tl->n_unmatched++;
        }
      ev->live_bytes = tl->live;
      if (tl->live > tl->peak)
        {
          tl->peak = tl->live;
          tl->peak_time = ev->time_ns;
        }
      g_array_index (tl->events, FbMemoryEvent, i) = *ev;
    }
  tl->dirty = FALSE;
}

const FbMemoryEvent *
fb_memory_timeline_get_events (FbMemoryTimeline *tl, guint *n)
{
  const FbMemoryEvent *events;

  g_return_val_if_fail (tl != NULL, NULL);
  g_mutex_lock (&tl->lock);
  update_locked (tl);
  events = (const FbMemoryEvent *) tl->events->data;
  if (n)
    *n = tl->events->len;
  g_mutex_unlock (&tl->lock);
  return events;
}

guint64
fb_memory_timeline_get_peak (FbMemoryTimeline *tl, gint64 *time_ns)
{
  guint64 peak;

  g_return_val_if_fail (tl != NULL, 0);
  g_mutex_lock (&tl->lock);
  update_locked (tl);
  peak = tl->peak;
  if (time_ns)
    *time_ns = tl->peak_time;
  g_mutex_unlock (&tl->lock);
  return peak;
}

guint64
fb_memory_timeline_get_live (FbMemoryTimeline *tl)
{
  guint64 live;

  g_return_val_if_fail (tl != NULL, 0);
  g_mutex_lock (&tl->lock);
  update_locked (tl);
  live = tl->live;
  g_mutex_unlock (&tl->lock);
  return live;
}

guint
fb_memory_timeline_get_n_unmatched (FbMemoryTimeline *tl)
{
  guint n;

  g_return_val_if_fail (tl != NULL, 0);
  g_mutex_lock (&tl->lock);
  update_locked (tl);
  n = tl->n_unmatched;
  g_mutex_unlock (&tl->lock);
  return n;
}

guint
fb_memory_timeline_to_trace (FbMemoryTimeline *tl, FbTrace *trace, const char *name, int sort_index)
{
  const FbMemoryEvent *events;
  guint n, track;

  g_return_val_if_fail (tl != NULL && trace != NULL, 0);
  events = fb_memory_timeline_get_events (tl, &n);
  track = fb_trace_add_track (trace, FB_TRACK_MEMORY, name ? name : "live bytes", sort_index,
                              n > 0 ? events[0].device : -1, 0, "bytes");
  for (guint i = 0; i < n; i++)
    fb_trace_add_sample (trace, track, events[i].time_ns, (double) events[i].live_bytes);
  return track;
}
