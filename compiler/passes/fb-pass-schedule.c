/* SPDX-License-Identifier: MIT
 *
 * schedule: memory-aware list scheduling. Every computation that is not a
 * fused computation gets a new instruction order: among the instructions
 * whose operands are all computed, take the one that frees the most bytes
 * (operands it is the last reader of) minus the bytes it allocates, and
 * break ties by the original order so the result is stable. This is the
 * greedy rule of XLA's list scheduler. A priority queue with lazy updates
 * keeps it at O(E log E): a ready instruction's priority only changes when
 * one of its operands drops to a single remaining reader.
 *
 * The new order is kept only when its estimated peak is lower than the
 * original's; either way the module is marked scheduled, so the printer
 * writes `is_scheduled=true` and buffer assignment reads the order as the
 * schedule.
 */
#include <string.h>

#include "fb-buffers-private.h"
#include "fb-passes-private.h"

/* ------------------------------------------------------ priority queue */

typedef struct {
  int64_t prio;      /* larger first */
  int     pos;       /* then smaller original position */
  int     version;
} Entry;

typedef struct {
  Entry *e;
  int    n, cap;
} Heap;

static gboolean
before (const Entry *a, const Entry *b)
{
  return a->prio != b->prio ? a->prio > b->prio : a->pos < b->pos;
}

static void
heap_push (Heap *h, Entry x)
{
  if (h->n == h->cap)
    {
      h->cap = MAX (64, h->cap * 2);
      h->e = g_renew (Entry, h->e, h->cap);
    }
  int i = h->n++;
  while (i > 0)
    {
      int p = (i - 1) / 2;
      if (!before (&x, &h->e[p]))
        break;
      h->e[i] = h->e[p];
      i = p;
    }
  h->e[i] = x;
}

static Entry
heap_pop (Heap *h)
{
  Entry top = h->e[0];
  Entry x = h->e[--h->n];
  int i = 0;
  for (;;)
    {
      int c = 2 * i + 1;
      if (c >= h->n)
        break;
      if (c + 1 < h->n && before (&h->e[c + 1], &h->e[c]))
        c++;
      if (!before (&h->e[c], &x))
        break;
      h->e[i] = h->e[c];
      i = c;
    }
  if (h->n > 0)
    h->e[i] = x;
  return top;
}

/* ------------------------------------------------------------ schedule */

typedef struct {
  FbValues v;
  int     *read_start, *reads;     /* distinct buffers each position reads */
  int     *reader_start, *readers; /* positions reading each buffer */
  int     *remaining;              /* unscheduled readers per buffer (+1 for outputs) */
  int     *deps;                   /* unscheduled distinct operands (and control predecessors) */
  int     *succ_start, *succs;     /* control successors */
  int     *version;
  gboolean *done;
} Sched;

static gboolean
freeable (const Sched *s, int b)
{
  return s->v.kind[b] == FB_VALUE_TEMP;
}

static int64_t
priority (const Sched *s, int i)
{
  int64_t p = 0;
  for (int k = s->read_start[i]; k < s->read_start[i + 1]; k++)
    {
      int b = s->reads[k];
      if (freeable (s, b) && s->remaining[b] == 1)
        p += s->v.size[b];
    }
  if (s->v.kind[i] == FB_VALUE_TEMP)
    p -= s->v.size[i];
  return p;
}

/* Names listed in a raw `control-predecessors={%a, %b}` attribute. */
static void
add_control_edges (FbComputation *comp, Sched *s, GArray *edges)
{
  g_autoptr (GHashTable) by_name = NULL;
  for (int i = 0; i < s->v.n; i++)
    {
      const FbAttr *a = fb_instr_get_raw_attr (s->v.instrs[i], "control-predecessors");
      if (a == NULL || a->kind != FB_AV_RAW || a->v.s == NULL)
        continue;
      if (by_name == NULL)
        {
          by_name = g_hash_table_new (g_str_hash, g_str_equal);
          for (int k = 0; k < s->v.n; k++)
            g_hash_table_insert (by_name, s->v.instrs[k]->name, GINT_TO_POINTER (k + 1));
        }
      g_auto (GStrv) parts = g_strsplit_set (a->v.s, "{}, \t\n", -1);
      for (int k = 0; parts[k]; k++)
        {
          const char *nm = parts[k][0] == '%' ? parts[k] + 1 : parts[k];
          int p = GPOINTER_TO_INT (g_hash_table_lookup (by_name, nm)) - 1;
          if (p >= 0 && p != i)
            {
              int e[2] = { p, i };
              g_array_append_vals (edges, e, 2);
            }
        }
    }
}

static void
sched_clear (Sched *s)
{
  g_free (s->read_start);
  g_free (s->reads);
  g_free (s->reader_start);
  g_free (s->readers);
  g_free (s->remaining);
  g_free (s->deps);
  g_free (s->succ_start);
  g_free (s->succs);
  g_free (s->version);
  g_free (s->done);
  _fb_values_clear (&s->v);
}

/* Peak live bytes of the temporaries when the positions run in @order
 * (parameters and constants are the same in every order and left out). */
static int64_t
order_peak (const Sched *s, const int *order)
{
  int n = s->v.n;
  g_autofree int *at = g_new (int, MAX (n, 1));
  g_autofree int *last = g_new (int, MAX (n, 1));
  g_autofree int64_t *delta = g_new0 (int64_t, n + 1);
  for (int k = 0; k < n; k++)
    at[order[k]] = k;
  for (int b = 0; b < n; b++)
    last[b] = at[b];
  for (int i = 0; i < n; i++)
    for (int k = s->read_start[i]; k < s->read_start[i + 1]; k++)
      last[s->reads[k]] = MAX (last[s->reads[k]], at[i]);
  for (int b = 0; b < n; b++)
    if (freeable (s, b))
      {
        int e = s->remaining[b] > 0 ? n - 1 : last[b];   /* outputs live to the end */
        delta[at[b]] += s->v.size[b];
        delta[e + 1] -= s->v.size[b];
      }
  int64_t live = 0, peak = 0;
  for (int k = 0; k < n; k++)
    {
      live += delta[k];
      peak = MAX (peak, live);
    }
  return peak;
}

/* The other classic order (XLA's DFS scheduler): a post-order walk from
 * the root that visits the operand with the largest subtree first, so the
 * big intermediate values of one branch are consumed before the next
 * branch starts. Instructions the root does not reach follow in their
 * original order. */
static void
dfs_order (const Sched *s, FbComputation *comp, int *order)
{
  int n = s->v.n;
  g_autofree int64_t *total = g_new0 (int64_t, n);
  g_autofree int *pred_start = g_new0 (int, n + 1);
  GArray *preds = g_array_new (FALSE, FALSE, sizeof (int));
  g_autofree int *stamp = g_new (int, n);
  for (int i = 0; i < n; i++)
    stamp[i] = -1;
  for (int i = 0; i < n; i++)
    {
      FbInstr *in = s->v.instrs[i];
      pred_start[i] = preds->len;
      total[i] = s->v.kind[i] == FB_VALUE_TEMP ? s->v.size[i] : 0;
      for (int o = 0; o < in->n_operands; o++)
        {
          int p = _fb_values_pos (in->operands[o]);
          if (stamp[p] == i)
            continue;
          stamp[p] = i;
          g_array_append_val (preds, p);
          total[i] = MIN (total[i] + total[p], G_MAXINT64 / 4);
        }
    }
  pred_start[n] = preds->len;
  /* Control predecessors come first, so the walk honours them. */
  g_autofree int *all_start = g_new0 (int, n + 1);
  int n_succ = s->succ_start[n];
  g_autofree int *all = g_new (int, preds->len + n_succ + 1);
  {
    g_autofree int *n_ctl = g_new0 (int, n);
    for (int i = 0; i < n; i++)
      for (int k = s->succ_start[i]; k < s->succ_start[i + 1]; k++)
        n_ctl[s->succs[k]]++;
    for (int i = 0; i < n; i++)
      all_start[i + 1] = all_start[i] + n_ctl[i] + pred_start[i + 1] - pred_start[i];
    g_autofree int *fill = g_memdup2 (all_start, sizeof (int) * n);
    for (int i = 0; i < n; i++)
      for (int k = s->succ_start[i]; k < s->succ_start[i + 1]; k++)
        all[fill[s->succs[k]]++] = i;
    for (int i = 0; i < n; i++)
      {
        int *ops = &all[fill[i]];
        int m = pred_start[i + 1] - pred_start[i];
        if (m > 0)
          memcpy (ops, (int *) preds->data + pred_start[i], sizeof (int) * m);
        /* Largest subtree first; insertion sort keeps equal ones in order. */
        for (int a = 1; a < m; a++)
          {
            int x = ops[a], b = a - 1;
            while (b >= 0 && total[ops[b]] < total[x])
              {
                ops[b + 1] = ops[b];
                b--;
              }
            ops[b + 1] = x;
          }
      }
  }
  g_array_free (preds, TRUE);

  g_autofree guint8 *state = g_new0 (guint8, n);   /* 0 new, 1 on the stack, 2 placed */
  g_autofree int *stack = g_new (int, n + 1);
  g_autofree int *next = g_new0 (int, n);
  int n_out = 0;
  int root = comp->root ? _fb_values_pos (comp->root) : -1;
  for (int r = -1; r < n; r++)
    {
      int start = r < 0 ? root : r;
      if (start < 0 || state[start])
        continue;
      int sp = 0;
      stack[sp++] = start;
      state[start] = 1;
      next[start] = all_start[start];
      while (sp > 0)
        {
          int i = stack[sp - 1];
          if (next[i] < all_start[i + 1])
            {
              int p = all[next[i]++];
              if (state[p] == 0)
                {
                  state[p] = 1;
                  next[p] = all_start[p];
                  stack[sp++] = p;
                }
              continue;
            }
          state[i] = 2;
          order[n_out++] = i;
          sp--;
        }
    }
}

static gboolean
schedule_computation (FbComputation *comp, FbPassContext *ctx, gboolean *changed, GError **error)
{
  Sched s;
  memset (&s, 0, sizeof s);
  if (!_fb_values_init (&s.v, comp, NULL, error))
    return FALSE;
  int n = s.v.n;
  if (n < 2)
    {
      sched_clear (&s);
      return TRUE;
    }

  /* Distinct buffers each instruction reads, and the readers of each. */
  g_autofree int *stamp = g_new (int, n);
  for (int i = 0; i < n; i++)
    stamp[i] = -1;
  GArray *reads = g_array_new (FALSE, FALSE, sizeof (int));
  s.read_start = g_new0 (int, n + 1);
  s.deps = g_new0 (int, n);
  g_autofree int *dep_stamp = g_new (int, n);
  for (int i = 0; i < n; i++)
    dep_stamp[i] = -1;
  for (int i = 0; i < n; i++)
    {
      FbInstr *in = s.v.instrs[i];
      s.read_start[i] = reads->len;
      for (int o = 0; o < in->n_operands; o++)
        {
          int p = _fb_values_pos (in->operands[o]);
          if (dep_stamp[p] != i)
            {
              dep_stamp[p] = i;
              s.deps[i]++;
            }
          if (s.v.kind[i] == FB_VALUE_ALIAS)
            continue;
          for (int k = s.v.src_start[p]; k < s.v.src_start[p + 1]; k++)
            {
              int b = s.v.src[k];
              if (stamp[b] == i)
                continue;
              stamp[b] = i;
              g_array_append_val (reads, b);
            }
        }
      /* An alias reads only what it passes on (get-tuple-element: one element). */
      if (s.v.kind[i] == FB_VALUE_ALIAS)
        g_array_append_vals (reads, s.v.src + s.v.src_start[i], s.v.src_start[i + 1] - s.v.src_start[i]);
    }
  s.read_start[n] = reads->len;
  s.reads = (int *) g_array_free (reads, FALSE);

  s.reader_start = g_new0 (int, n + 1);
  s.remaining = g_new0 (int, n);
  for (int k = 0; k < s.read_start[n]; k++)
    s.reader_start[s.reads[k] + 1]++;
  for (int b = 0; b < n; b++)
    s.reader_start[b + 1] += s.reader_start[b];
  s.readers = g_new (int, MAX (s.read_start[n], 1));
  {
    g_autofree int *fill = g_memdup2 (s.reader_start, sizeof (int) * n);
    for (int i = 0; i < n; i++)
      for (int k = s.read_start[i]; k < s.read_start[i + 1]; k++)
        s.readers[fill[s.reads[k]]++] = i;
  }
  for (int b = 0; b < n; b++)
    s.remaining[b] = s.reader_start[b + 1] - s.reader_start[b];
  if (comp->root)
    {
      int r = _fb_values_pos (comp->root);
      for (int k = s.v.src_start[r]; k < s.v.src_start[r + 1]; k++)
        s.remaining[s.v.src[k]]++;
    }

  /* Control predecessors are extra edges. */
  GArray *edges = g_array_new (FALSE, FALSE, sizeof (int));
  add_control_edges (comp, &s, edges);
  int n_edges = edges->len / 2;
  int *ev = (int *) edges->data;
  s.succ_start = g_new0 (int, n + 1);
  s.succs = g_new (int, MAX (n_edges, 1));
  for (int e = 0; e < n_edges; e++)
    {
      s.succ_start[ev[2 * e] + 1]++;
      s.deps[ev[2 * e + 1]]++;
    }
  for (int i = 0; i < n; i++)
    s.succ_start[i + 1] += s.succ_start[i];
  {
    g_autofree int *fill = g_memdup2 (s.succ_start, sizeof (int) * n);
    for (int e = 0; e < n_edges; e++)
      s.succs[fill[ev[2 * e]]++] = ev[2 * e + 1];
  }
  g_array_free (edges, TRUE);

  /* The list scheduler. */
  s.version = g_new0 (int, n);
  s.done = g_new0 (gboolean, n);
  g_autofree int *order = g_new (int, n);
  int n_done = 0;
  Heap heap = { NULL, 0, 0 };
  for (int i = 0; i < n; i++)
    if (s.deps[i] == 0)
      heap_push (&heap, (Entry) { priority (&s, i), i, 0 });
  while (heap.n > 0)
    {
      Entry e = heap_pop (&heap);
      int i = e.pos;
      if (s.done[i] || e.version != s.version[i])
        continue;
      s.done[i] = TRUE;
      order[n_done++] = i;
      for (int k = s.read_start[i]; k < s.read_start[i + 1]; k++)
        {
          int b = s.reads[k];
          if (--s.remaining[b] != 1 || !freeable (&s, b))
            continue;
          /* One reader left: it would now free b, so it rises in the queue. */
          for (int r = s.reader_start[b]; r < s.reader_start[b + 1]; r++)
            {
              int u = s.readers[r];
              if (!s.done[u] && s.deps[u] == 0)
                heap_push (&heap, (Entry) { priority (&s, u), u, ++s.version[u] });
            }
        }
      FbInstr *in = s.v.instrs[i];
      for (int k = 0; k < in->n_users; k++)
        {
          int u = _fb_values_pos (in->users[k]);
          if (u < 0 || u >= n || s.v.instrs[u] != in->users[k])
            continue;
          if (--s.deps[u] == 0)
            heap_push (&heap, (Entry) { priority (&s, u), u, s.version[u] });
        }
      for (int k = s.succ_start[i]; k < s.succ_start[i + 1]; k++)
        if (--s.deps[s.succs[k]] == 0)
          heap_push (&heap, (Entry) { priority (&s, s.succs[k]), s.succs[k], s.version[s.succs[k]] });
    }
  g_free (heap.e);

  if (n_done != n)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                   "%s: the instructions have a cycle (through control-predecessors); %d of %d could be ordered",
                   comp->name, n_done, n);
      sched_clear (&s);
      return FALSE;
    }

  /* Keep whichever of the original, list and DFS orders peaks lowest;
   * the original wins ties, so scheduling twice changes nothing. */
  g_autofree int *identity = g_new (int, n);
  for (int i = 0; i < n; i++)
    identity[i] = i;
  g_autofree int *dfs = g_new (int, n);
  dfs_order (&s, comp, dfs);
  int64_t orig_peak = order_peak (&s, identity);
  int64_t list_peak = order_peak (&s, order);
  int64_t dfs_peak = order_peak (&s, dfs);
  const int *best = NULL;
  const char *which = NULL;
  if (list_peak < orig_peak && list_peak <= dfs_peak)
    best = order, which = "list";
  else if (dfs_peak < orig_peak)
    best = dfs, which = "depth-first";
  if (best)
    {
      gboolean same = TRUE;
      for (int k = 0; k < n; k++)
        same = same && best[k] == k;
      if (!same)
        {
          for (int k = 0; k < n; k++)
            fb_instr_move_before (s.v.instrs[best[k]], NULL);
          *changed = TRUE;
        }
      if (comp->is_entry)
        fb_pass_decide (ctx, FB_DECISION_NOTE, "order-chosen", 0, NULL,
                        "%s: took the %s order; peak of temporaries: original %" G_GINT64_FORMAT
                        ", list %" G_GINT64_FORMAT ", depth-first %" G_GINT64_FORMAT " bytes",
                        comp->name, which, orig_peak, list_peak, dfs_peak);
    }
  else if (comp->is_entry)
    fb_pass_decide (ctx, FB_DECISION_REFUSED, "no-better-order", 0, NULL,
                    "kept the original order of %s: it peaks at %" G_GINT64_FORMAT " bytes of temporaries; "
                    "the list order would peak at %" G_GINT64_FORMAT " and the depth-first order at %"
                    G_GINT64_FORMAT, comp->name, orig_peak, list_peak, dfs_peak);
  sched_clear (&s);
  return TRUE;
}

static gboolean
run (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error)
{
  *changed = FALSE;
  int64_t peak_before = -1, peak_after = -1;
  int pos_before = 0, pos_after = 0;
  if (module->entry)
    {
      FbBufferPlan *plan = fb_buffer_plan_new (module, NULL);
      if (plan)
        {
          peak_before = plan->peak_bytes;
          pos_before = plan->peak_position;
          fb_buffer_plan_free (plan);
        }
    }

  for (int c = 0; c < module->n_comps; c++)
    {
      FbComputation *comp = module->comps[c];
      if (comp->is_fusion)
        continue;
      if (!schedule_computation (comp, ctx, changed, error))
        return FALSE;
    }
  if (!module->is_scheduled)
    {
      module->is_scheduled = TRUE;
      *changed = TRUE;
    }

  if (module->entry)
    {
      FbBufferPlan *plan = fb_buffer_plan_new (module, NULL);
      if (plan)
        {
          peak_after = plan->peak_bytes;
          pos_after = plan->peak_position;
          fb_buffer_plan_free (plan);
        }
    }
  if (peak_before >= 0 && peak_after >= 0)
    {
      FbInstr *at = NULL;
      int k = 0;
      for (FbInstr *in = module->entry->first; in; in = in->next, k++)
        if (k == pos_after)
          at = in;
      fb_pass_decide (ctx, FB_DECISION_NOTE, "peak-memory", at ? 1 : 0, &at,
                      "peak memory of %s: %.2f MiB before scheduling (at position %d), %.2f MiB after "
                      "(at position %d%s%s)",
                      module->entry->name, peak_before / 1048576.0, pos_before, peak_after / 1048576.0,
                      pos_after, at ? ", %" : "", at ? at->name : "");
    }
  return TRUE;
}

const FbPass fb_pass_schedule = {
  "schedule",
  "order instructions to lower peak memory",
  "Within a computation many orders are valid: any order in which every "
  "instruction comes after its operands. They differ in how much memory is "
  "live at once. The scheduler builds the order one instruction at a time, "
  "always taking, among the instructions that are ready, the one that frees "
  "the most memory (an operand it is the last reader of) and allocates the "
  "least. Greedy, but it is what XLA's list scheduler does, and it keeps "
  "large temporaries short-lived. The new order is kept only when it lowers "
  "the peak.",
  run,
};
