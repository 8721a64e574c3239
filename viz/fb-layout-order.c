/* SPDX-License-Identifier: MIT
 *
 * Crossing reduction for the layered layout: a depth-first first order,
 * then alternate downward and upward sweeps that sort each rank by the
 * median position of its neighbours on the rank before, each followed by
 * adjacent transpositions that remove crossings, keeping the best order
 * seen. Clusters stay contiguous in every rank and keep one left-to-right
 * order across ranks. When a previous layout is given, the order comes
 * from the old x of each node instead, so that nothing moves needlessly.
 */
#include <math.h>
#include <string.h>

#include "fb-layout-private.h"

/* ---------------------------------------------------------- ordering */

typedef struct { int v; double key; int group; double val; int pos; } SortItem;

static int
cmp_item (gconstpointer pa, gconstpointer pb, gpointer data)
{
  const SortItem *a = pa, *b = pb;
  if (a->key != b->key)
    return a->key < b->key ? -1 : 1;
  if (a->group != b->group)
    return a->group < b->group ? -1 : 1;
  if (a->val != b->val)
    return a->val < b->val ? -1 : 1;
  return a->pos - b->pos;
}

static int
cmp_double (gconstpointer pa, gconstpointer pb)
{
  double a = *(const double *) pa, b = *(const double *) pb;
  return a < b ? -1 : a > b;
}

static void
set_positions (FbLayoutBuild *b, int r)
{
  for (int i = 0; i < b->rank_len[r]; i++)
    b->pos[b->rank_nodes[r][i]] = i;
}

/* Sorts rank @r by @vals (one per slot), keeping every cluster contiguous:
 * a cluster's members sort by @gkey (one per cluster, the same on every
 * rank so that clusters keep their left-to-right order) or, when @gkey is
 * NULL, by their mean value on this rank. */
static void
sort_rank (FbLayoutBuild *b, int r, const double *vals, const double *gkey, double *gsum, int *gcnt)
{
  int len = b->rank_len[r];
  g_autofree SortItem *it = g_new (SortItem, len);
  for (int i = 0; i < len && !gkey; i++)
    {
      int g = b->group[b->rank_nodes[r][i]];
      if (g >= 0)
        {
          gsum[g] = 0;
          gcnt[g] = 0;
        }
    }
  for (int i = 0; i < len && !gkey; i++)
    {
      int g = b->group[b->rank_nodes[r][i]];
      if (g >= 0)
        {
          gsum[g] += vals[i];
          gcnt[g]++;
        }
    }
  for (int i = 0; i < len; i++)
    {
      int v = b->rank_nodes[r][i];
      int g = b->group[v];
      double key = g < 0 ? vals[i] : gkey ? gkey[g] : gsum[g] / gcnt[g];
      it[i] = (SortItem) { v, key, g, vals[i], i };
    }
  g_qsort_with_data (it, len, sizeof (SortItem), cmp_item, NULL);
  for (int i = 0; i < len; i++)
    b->rank_nodes[r][i] = it[i].v;
  set_positions (b, r);
}

/* Mean relative position (0..1 within its rank) of every cluster's members. */
static void
group_keys (FbLayoutBuild *b, double *gkey, int *gcnt)
{
  int nc = b->l->clusters->len;
  for (int c = 0; c < nc; c++)
    gkey[c] = 0, gcnt[c] = 0;
  for (int v = 0; v < b->n; v++)
    {
      int g = b->group[v];
      if (g >= 0)
        {
          gkey[g] += (b->pos[v] + 0.5) / b->rank_len[node_at (b->l, v)->rank];
          gcnt[g]++;
        }
    }
  for (int c = 0; c < nc; c++)
    if (gcnt[c])
      gkey[c] /= gcnt[c];
}

static void
median_sweep (FbLayoutBuild *b, gboolean down, double *gsum, int *gcnt, double *tmp, double *vals)
{
  int R = b->l->n_ranks;
  g_autofree double *gkey = g_new0 (double, MAX (1, b->l->clusters->len));
  group_keys (b, gkey, gcnt);
  for (int step = 1; step < R; step++)
    {
      int r = down ? step : R - 1 - step;
      int adj = down ? r - 1 : r + 1;
      for (int i = 0; i < b->rank_len[r]; i++)
        {
          int v = b->rank_nodes[r][i];
          int s = down ? b->up_start[v] : b->dn_start[v];
          int e = down ? b->up_start[v + 1] : b->dn_start[v + 1];
          int k = 0;
          for (int j = s; j < e; j++)
            {
              LEdge *le = &g_array_index (b->ledges, LEdge, down ? b->up[j] : b->dn[j]);
              tmp[k++] = b->pos[down ? le->a : le->b];
            }
          /* positions relative to the rank's width, so that ranks compare */
          if (k == 0)
            vals[i] = (i + 0.5) / b->rank_len[r];
          else
            {
              qsort (tmp, k, sizeof (double), cmp_double);
              vals[i] = (k % 2 ? tmp[k / 2] : (tmp[k / 2 - 1] + tmp[k / 2]) / 2) + 0.5;
              vals[i] /= b->rank_len[adj];
            }
        }
      sort_rank (b, r, vals, gkey, gsum, gcnt);
    }
}

static gint64
count_pair (FbLayoutBuild *b, int r, int *seq, int *bit)
{
  int n2 = b->rank_len[r + 1];
  int m = 0;
  for (int i = 0; i < b->rank_len[r]; i++)
    {
      int v = b->rank_nodes[r][i];
      int first = m;
      for (int j = b->dn_start[v]; j < b->dn_start[v + 1]; j++)
        seq[m++] = b->pos[g_array_index (b->ledges, LEdge, b->dn[j]).b];
      /* targets of one source never cross each other: sort them */
      for (int x = first + 1; x < m; x++)
        for (int y = x; y > first && seq[y - 1] > seq[y]; y--)
          {
            int t = seq[y]; seq[y] = seq[y - 1]; seq[y - 1] = t;
          }
    }
  memset (bit, 0, sizeof (int) * (n2 + 1));
  gint64 c = 0;
  for (int i = 0; i < m; i++)
    {
      /* count earlier entries greater than seq[i] */
      int le = 0;
      for (int x = seq[i] + 1; x > 0; x -= x & -x)
        le += bit[x];
      c += i - le;
      for (int x = seq[i] + 1; x <= n2; x += x & -x)
        bit[x]++;
    }
  return c;
}

static gint64
count_crossings (FbLayoutBuild *b, int *seq, int *bit)
{
  gint64 c = 0;
  for (int r = 0; r + 1 < b->l->n_ranks; r++)
    c += count_pair (b, r, seq, bit);
  return c;
}

static void
side_cross (FbLayoutBuild *b, int u, int v, gboolean up, gint64 *c_uv, gint64 *c_vu)
{
  const int *st = up ? b->up_start : b->dn_start;
  const int *adj = up ? b->up : b->dn;
  if ((gint64) (st[u + 1] - st[u]) * (st[v + 1] - st[v]) > 4096)
    return;
  for (int i = st[u]; i < st[u + 1]; i++)
    {
      LEdge *ea = &g_array_index (b->ledges, LEdge, adj[i]);
      int pa = b->pos[up ? ea->a : ea->b];
      for (int j = st[v]; j < st[v + 1]; j++)
        {
          LEdge *eb = &g_array_index (b->ledges, LEdge, adj[j]);
          int pb = b->pos[up ? eb->a : eb->b];
          if (pa > pb)
            (*c_uv)++;
          else if (pa < pb)
            (*c_vu)++;
        }
    }
}

static gboolean
transpose (FbLayoutBuild *b, int max_rounds)
{
  gboolean any = FALSE;
  for (int round = 0; round < max_rounds; round++)
    {
      gboolean improved = FALSE;
      for (int r = 0; r < b->l->n_ranks; r++)
        for (int i = 0; i + 1 < b->rank_len[r]; i++)
          {
            int u = b->rank_nodes[r][i], v = b->rank_nodes[r][i + 1];
            if (b->group[u] != b->group[v] && (b->group[u] >= 0 || b->group[v] >= 0))
              continue;
            gint64 c_uv = 0, c_vu = 0;
            side_cross (b, u, v, TRUE, &c_uv, &c_vu);
            side_cross (b, u, v, FALSE, &c_uv, &c_vu);
            if (c_vu < c_uv)
              {
                b->rank_nodes[r][i] = v;
                b->rank_nodes[r][i + 1] = u;
                b->pos[v] = i;
                b->pos[u] = i + 1;
                improved = TRUE;
              }
          }
      any |= improved;
      if (!improved)
        break;
    }
  return any;
}

static void
alloc_ranks (FbLayoutBuild *b)
{
  int R = MAX (1, b->l->n_ranks);
  b->rank_len = g_new0 (int, R);
  b->rank_nodes = g_new0 (int *, R);
  b->pos = g_new0 (int, b->n);
  for (int v = 0; v < b->n; v++)
    b->rank_len[node_at (b->l, v)->rank]++;
  for (int r = 0; r < R; r++)
    {
      b->rank_nodes[r] = g_new (int, MAX (1, b->rank_len[r]));
      b->rank_len[r] = 0;
    }
}

static void
place_in_rank (FbLayoutBuild *b, int v)
{
  int r = node_at (b->l, v)->rank;
  b->pos[v] = b->rank_len[r];
  b->rank_nodes[r][b->rank_len[r]++] = v;
}

/* First order: depth-first from the sources, so that chains stay together. */
static void
initial_order (FbLayoutBuild *b)
{
  g_autofree gboolean *seen = g_new0 (gboolean, b->n);
  g_autofree int *stack = g_new (int, b->n + 1);
  for (int s = 0; s < b->n; s++)
    {
      if (seen[s] || b->up_start[s] != b->up_start[s + 1])
        continue;
      int top = 0;
      stack[top++] = s;
      seen[s] = TRUE;
      while (top > 0)
        {
          int v = stack[--top];
          place_in_rank (b, v);
          for (int j = b->dn_start[v + 1] - 1; j >= b->dn_start[v]; j--)
            {
              int w = g_array_index (b->ledges, LEdge, b->dn[j]).b;
              if (!seen[w])
                {
                  seen[w] = TRUE;
                  stack[top++] = w;
                }
            }
        }
    }
  for (int v = 0; v < b->n; v++)
    if (!seen[v])
      place_in_rank (b, v);
}

static double
prev_x_of_ids (const FbGraphLayout *prev, const FbInstr *instr, int *hits)
{
  double sum = 0;
  int n = 0, last = -1;
  int idx = fb_graph_layout_find_node (prev, instr->id);
  if (idx >= 0)
    {
      sum += g_array_index (prev->nodes, FbGraphNode, idx).x;
      n++;
      last = idx;
    }
  for (int i = 0; i < instr->n_prov; i++)
    {
      idx = fb_graph_layout_find_node (prev, instr->prov[i]);
      if (idx >= 0 && idx != last)
        {
          sum += g_array_index (prev->nodes, FbGraphNode, idx).x;
          n++;
          last = idx;
        }
    }
  *hits += n;
  return n ? sum / n : NAN;
}

static double
neighbour_seed (FbLayoutBuild *b, int v, gboolean up)
{
  const int *st = up ? b->up_start : b->dn_start;
  const int *adj = up ? b->up : b->dn;
  double s = 0;
  int k = 0;
  for (int j = st[v]; j < st[v + 1]; j++)
    {
      LEdge *le = &g_array_index (b->ledges, LEdge, adj[j]);
      int w = up ? le->a : le->b;
      if (!isnan (b->seed[w]))
        {
          s += b->seed[w];
          k++;
        }
    }
  return k ? s / k : NAN;
}

/* Seeds x from the previous layout; TRUE when most real nodes were known. */
static gboolean
seed_from_previous (FbLayoutBuild *b)
{
  b->seed = g_new (double, b->n);
  for (int v = 0; v < b->n; v++)
    b->seed[v] = NAN;
  if (b->prev == NULL)
    return FALSE;
  int known = 0;
  for (int v = 0; v < b->l->n_boxes; v++)
    {
      FbGraphNode *node = node_at (b->l, v);
      int hits = 0;
      b->seed[v] = prev_x_of_ids (b->prev, node->instr, &hits);
      if (hits)
        known++;
    }
  if (b->l->n_boxes == 0 || known * 2 < b->l->n_boxes)
    return FALSE;
  /* bends follow the same edge's old route where there was one */
  g_autoptr (GHashTable) old_edges = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  for (guint e = 0; e < b->prev->edges->len; e++)
    {
      const FbGraphEdge *pe = &g_array_index (b->prev->edges, FbGraphEdge, e);
      if (pe->cut)
        continue;
      char *key = g_strdup_printf ("%" G_GINT64_FORMAT ">%" G_GINT64_FORMAT,
                                   g_array_index (b->prev->nodes, FbGraphNode, pe->from).instr->id,
                                   g_array_index (b->prev->nodes, FbGraphNode, pe->to).instr->id);
      g_ptr_array_add (keys, key);
      g_hash_table_insert (old_edges, key, (gpointer) pe);
    }
  for (guint e = 0; e < b->links->len; e++)
    {
      Link *k = &g_array_index (b->links, Link, e);
      double sa = b->seed[k->from], sb = b->seed[k->to];
      g_autofree char *key = g_strdup_printf ("%" G_GINT64_FORMAT ">%" G_GINT64_FORMAT,
                                              node_at (b->l, k->from)->instr->id,
                                              node_at (b->l, k->to)->instr->id);
      const FbGraphEdge *pe = g_hash_table_lookup (old_edges, key);
      for (int i = 0; i < k->n_dummies; i++)
        {
          double t = (i + 1.0) / (k->n_dummies + 1.0);
          double v = isnan (sa) ? sb : isnan (sb) ? sa : sa + (sb - sa) * t;
          if (pe)
            {
              /* the point of the old polyline at the same fraction of its height */
              double y0 = pe->points[0].y, y1 = pe->points[pe->n_points - 1].y;
              double yt = y0 + (y1 - y0) * t;
              for (int q = 1; q < pe->n_points; q++)
                if (pe->points[q].y >= yt)
                  {
                    const FbPoint *p0 = &pe->points[q - 1], *p1 = &pe->points[q];
                    double f = p1->y > p0->y ? (yt - p0->y) / (p1->y - p0->y) : 0;
                    v = p0->x + (p1->x - p0->x) * f;
                    break;
                  }
            }
          b->seed[k->first_dummy + i] = v;
        }
    }
  for (int r = 0; r < b->l->n_ranks; r++)
    for (int i = 0; i < b->rank_len[r]; i++)
      {
        int v = b->rank_nodes[r][i];
        if (isnan (b->seed[v]))
          b->seed[v] = neighbour_seed (b, v, TRUE);
      }
  for (int r = b->l->n_ranks - 1; r >= 0; r--)
    for (int i = 0; i < b->rank_len[r]; i++)
      {
        int v = b->rank_nodes[r][i];
        if (isnan (b->seed[v]))
          b->seed[v] = neighbour_seed (b, v, FALSE);
      }
  double maxs = 0;
  for (int v = 0; v < b->n; v++)
    if (!isnan (b->seed[v]))
      maxs = MAX (maxs, b->seed[v]);
  for (int v = 0; v < b->n; v++)
    if (isnan (b->seed[v]))
      b->seed[v] = maxs + 100 + b->pos[v];
  return TRUE;
}

void
_fb_layout_order_nodes (FbLayoutBuild *b)
{
  int nc = MAX (1, b->l->clusters->len);
  g_autofree double *gsum = g_new0 (double, nc);
  g_autofree int *gcnt = g_new0 (int, nc);
  int maxlen = 1, maxdeg = 1;
  alloc_ranks (b);
  initial_order (b);
  for (int r = 0; r < b->l->n_ranks; r++)
    maxlen = MAX (maxlen, b->rank_len[r]);
  for (int v = 0; v < b->n; v++)
    maxdeg = MAX (maxdeg, MAX (b->up_start[v + 1] - b->up_start[v], b->dn_start[v + 1] - b->dn_start[v]));
  g_autofree double *tmp = g_new (double, maxdeg);
  g_autofree double *vals = g_new (double, maxlen);
  g_autofree int *seq = g_new (int, MAX (1, b->ledges->len));
  g_autofree int *bit = g_new (int, maxlen + 2);
  gboolean big = b->n > 20000;

  if (seed_from_previous (b))
    {
      b->seeded = TRUE;
      /* a cluster sorts by the mean old x of all its members, on every rank */
      g_autofree double *gkey = g_new0 (double, nc);
      memset (gcnt, 0, sizeof (int) * nc);
      for (int v = 0; v < b->n; v++)
        if (b->group[v] >= 0)
          {
            gkey[b->group[v]] += b->seed[v];
            gcnt[b->group[v]]++;
          }
      for (int c = 0; c < (int) b->l->clusters->len; c++)
        if (gcnt[c])
          gkey[c] /= gcnt[c];
      for (int r = 0; r < b->l->n_ranks; r++)
        {
          for (int i = 0; i < b->rank_len[r]; i++)
            vals[i] = b->seed[b->rank_nodes[r][i]];
          sort_rank (b, r, vals, gkey, gsum, gcnt);
        }
      transpose (b, big ? 1 : 4);
      b->l->crossings = count_crossings (b, seq, bit);
      return;
    }

  /* clusters contiguous from the start: the first order may stay the best */
  if (b->l->clusters->len > 0)
    for (int r = 0; r < b->l->n_ranks; r++)
      {
        for (int i = 0; i < b->rank_len[r]; i++)
          vals[i] = i;
        sort_rank (b, r, vals, NULL, gsum, gcnt);
      }
  g_autofree int *best = g_new (int, b->n);
  gint64 best_c = count_crossings (b, seq, bit);
  memcpy (best, b->pos, sizeof (int) * b->n);
  int sweeps = b->l->opts.sweeps;
  if (b->n > 5000)
    sweeps = MIN (sweeps, 4);
  for (int s = 0; s < sweeps && best_c > 0; s++)
    {
      median_sweep (b, s % 2 == 0, gsum, gcnt, tmp, vals);
      transpose (b, big ? 1 : 4);
      gint64 c = count_crossings (b, seq, bit);
      if (c < best_c)
        {
          best_c = c;
          memcpy (best, b->pos, sizeof (int) * b->n);
        }
    }
  memcpy (b->pos, best, sizeof (int) * b->n);
  for (int v = 0; v < b->n; v++)
    b->rank_nodes[node_at (b->l, v)->rank][b->pos[v]] = v;
  b->l->crossings = best_c;
}
