/* SPDX-License-Identifier: MIT
 *
 * Layered (Sugiyama-style) layout of a computation; see fb-layout.h. The
 * build runs in one pass over a scratch structure: nodes and operand links
 * from the computation (expanding clusters in place), ranks by longest path,
 * dummy nodes for long edges, an order per rank (median sweeps plus adjacent
 * transpositions, or the order of a previous layout), x by weighted
 * isotonic regression per rank (long edges straight, nodes balanced over
 * their neighbours), y by rank, then polylines and a grid index for
 * clipping and hit tests.
 */
#include <math.h>
#include <string.h>

#include "fb-layout-private.h"

/* ----------------------------------------------------------- labels */

static int64_t
instr_key (const FbInstr *instr)
{
  int64_t k = instr->id;
  for (int i = 0; i < instr->n_prov; i++)
    if (i == 0 || instr->prov[i] < k)
      k = instr->prov[i];
  return k;
}

static FbComputation *
cluster_callee (const FbInstr *instr)
{
  if (instr->opcode == FB_OP_FUSION)
    return fb_instr_comp (instr, FB_A_CALLS);
  if (instr->opcode == FB_OP_CALL)
    return fb_instr_comp (instr, FB_A_TO_APPLY);
  return NULL;
}

static char *
dup_title (const FbInstr *instr)
{
  const char *kind = instr->opcode == FB_OP_FUSION ? fb_instr_str (instr, FB_A_KIND) : NULL;
  const char *target = instr->opcode == FB_OP_CUSTOM_CALL ? fb_instr_str (instr, FB_A_CUSTOM_CALL_TARGET) : NULL;
  if (kind)
    return g_strdup_printf ("fusion (%s)", kind);
  if (target)
    return g_strdup_printf ("custom-call %s", target);
  if (instr->opcode == FB_OP_PARAMETER)
    return g_strdup_printf ("parameter %" G_GINT64_FORMAT, instr->parameter_number);
  return g_strdup (fb_opcode_name (instr->opcode));
}

static char *
dup_subtitle (const FbInstr *instr)
{
  g_autofree char *s = fb_shape_to_string (instr->shape);
  if (strlen (s) > 48)
    return g_strdup_printf ("%.45s...", s);
  return g_steal_pointer (&s);
}

static void
measure_node (FbGraphNode *n, PangoLayout *pl)
{
  const char *lines[3] = { n->title, n->subtitle, n->name };
  double w = 0;
  for (int i = 0; i < 3; i++)
    {
      double lw;
      if (pl)
        {
          int pw, ph;
          pango_layout_set_text (pl, lines[i], -1);
          pango_layout_get_pixel_size (pl, &pw, &ph);
          lw = pw;
        }
      else
        lw = g_utf8_strlen (lines[i], -1) * 6.2;
      w = MAX (w, lw);
    }
  n->w = ceil (w + 2 * PAD_X);
  n->h = 3 * LINE_H + 2 * PAD_Y;
}

/* ------------------------------------------------------ graph build */

static int
count_shown (FbComputation *comp, GHashTable *seen, int limit)
{
  int n = 0;
  for (FbInstr *i = comp->first; i && n <= limit; i = i->next)
    {
      FbComputation *callee = cluster_callee (i);
      if (callee && callee != comp && !g_hash_table_contains (seen, callee))
        {
          g_hash_table_add (seen, callee);
          n += count_shown (callee, seen, limit - n);
        }
      else
        n++;
    }
  return n;
}

static gboolean
should_expand (FbLayoutBuild *b, const FbInstr *instr, int64_t key)
{
  gpointer st = g_hash_table_lookup (b->l->states, &key);
  if (st)
    return GPOINTER_TO_INT (st) == 1;
  switch (b->l->opts.expand)
    {
    case FB_EXPAND_ALL: return TRUE;
    case FB_EXPAND_NONE: return FALSE;
    case FB_EXPAND_AUTO: default: return b->auto_expand;
    }
}

static int
add_node (FbLayoutBuild *b, FbInstr *instr, int cluster, gboolean collapsed)
{
  FbGraphNode n = { 0 };
  n.kind = FB_GNODE_INSTR;
  n.instr = instr;
  n.key = instr_key (instr);
  n.cluster = cluster;
  n.collapsed = collapsed;
  n.title = dup_title (instr);
  n.subtitle = dup_subtitle (instr);
  n.name = g_strdup (instr->name);
  g_array_append_val (b->l->nodes, n);
  int idx = b->l->nodes->len - 1;
  g_hash_table_insert (b->node_of, instr, GINT_TO_POINTER (idx + 1));
  return idx;
}

static int
add_cluster (FbLayoutBuild *b, FbInstr *instr, FbComputation *callee, int parent, gboolean expanded)
{
  FbGraphCluster c = { 0 };
  c.instr = instr;
  c.comp = callee;
  c.key = instr_key (instr);
  c.expanded = expanded;
  c.parent = parent;
  const char *kind = fb_instr_str (instr, FB_A_KIND);
  c.label = kind ? g_strdup_printf ("%s (%s)", instr->name, kind) : g_strdup (instr->name);
  g_array_append_val (b->l->clusters, c);
  int idx = b->l->clusters->len - 1;
  int64_t *k = g_new (int64_t, 1);
  *k = c.key;
  g_hash_table_insert (b->l->cluster_by_key, k, GINT_TO_POINTER (idx + 1));
  return idx;
}

static void
add_comp (FbLayoutBuild *b, FbComputation *comp, int cluster)
{
  for (FbInstr *i = comp->first; i; i = i->next)
    {
      FbComputation *callee = cluster_callee (i);
      gboolean can = callee && callee != comp && callee != b->l->comp
                     && !g_hash_table_contains (b->expanded_comps, callee) && callee->root != NULL;
      if (can && should_expand (b, i, instr_key (i)))
        {
          int ci = add_cluster (b, i, callee, cluster, TRUE);
          g_hash_table_add (b->expanded_comps, callee);
          g_hash_table_insert (b->cluster_of, i, GINT_TO_POINTER (ci + 1));
          add_comp (b, callee, ci);
        }
      else
        {
          add_node (b, i, cluster, can);
          if (can)
            add_cluster (b, i, callee, cluster, FALSE);
        }
    }
}

/* The node that carries the value of @instr: its own, or its callee's root. */
static int
out_node (FbLayoutBuild *b, FbInstr *instr)
{
  for (int depth = 0; depth < 64; depth++)
    {
      gpointer p = g_hash_table_lookup (b->node_of, instr);
      if (p)
        return GPOINTER_TO_INT (p) - 1;
      gpointer c = g_hash_table_lookup (b->cluster_of, instr);
      if (!c)
        return -1;
      instr = g_array_index (b->l->clusters, FbGraphCluster, GPOINTER_TO_INT (c) - 1).comp->root;
    }
  return -1;
}

static void
add_link (FbLayoutBuild *b, int from, int to, int operand)
{
  if (from < 0 || to < 0 || from == to)
    return;
  Link k = { from, to, operand, -1, 0, FALSE };
  g_array_append_val (b->links, k);
}

static void
build_links (FbLayoutBuild *b)
{
  int n = b->l->nodes->len;
  for (int v = 0; v < n; v++)
    {
      FbGraphNode *node = node_at (b->l, v);
      FbInstr *instr = node->instr;
      if (instr->opcode == FB_OP_PARAMETER && node->cluster >= 0)
        {
          FbGraphCluster *c = &g_array_index (b->l->clusters, FbGraphCluster, node->cluster);
          if (instr->parent == c->comp)
            {
              int64_t p = instr->parameter_number;
              if (p >= 0 && p < c->instr->n_operands)
                add_link (b, out_node (b, c->instr->operands[p]), v, (int) p);
              continue;
            }
        }
      for (int j = 0; j < instr->n_operands; j++)
        add_link (b, out_node (b, instr->operands[j]), v, j);
    }
}

/* ------------------------------------------------------------ ranks */

static void
assign_ranks (FbLayoutBuild *b)
{
  int n = b->l->nodes->len;
  g_autofree int *indeg = g_new0 (int, n);
  g_autofree int *out_start = g_new0 (int, n + 1);
  g_autofree int *out = g_new (int, MAX (1, b->links->len));
  g_autofree int *topo = g_new (int, n);
  for (guint e = 0; e < b->links->len; e++)
    {
      Link *k = &g_array_index (b->links, Link, e);
      indeg[k->to]++;
      out_start[k->from + 1]++;
    }
  for (int v = 0; v < n; v++)
    out_start[v + 1] += out_start[v];
  g_autofree int *fill = g_memdup2 (out_start, sizeof (int) * n);
  for (guint e = 0; e < b->links->len; e++)
    {
      Link *k = &g_array_index (b->links, Link, e);
      out[fill[k->from]++] = k->to;
    }
  int head = 0, tail = 0;
  for (int v = 0; v < n; v++)
    if (indeg[v] == 0)
      topo[tail++] = v;
  while (head < tail)
    {
      int v = topo[head++];
      for (int j = out_start[v]; j < out_start[v + 1]; j++)
        if (--indeg[out[j]] == 0)
          topo[tail++] = out[j];
    }
  /* A cycle cannot come from a verified module; rank what is left after the rest. */
  for (int v = 0; v < n && tail < n; v++)
    if (indeg[v] > 0)
      {
        indeg[v] = 0;
        topo[tail++] = v;
      }

  for (int v = 0; v < n; v++)
    node_at (b->l, v)->rank = 0;
  for (int t = 0; t < n; t++)
    {
      int v = topo[t];
      int r = node_at (b->l, v)->rank;
      for (int j = out_start[v]; j < out_start[v + 1]; j++)
        {
          FbGraphNode *w = node_at (b->l, out[j]);
          if (w->rank < r + 1)
            w->rank = r + 1;
        }
    }
  /* A node with no more inputs than outputs (constants, broadcasts of
   * them, ...) moves down to just above its first user: every edge it has
   * gets no longer in total. The parameters of the computation stay on top. */
  g_autofree int *in_links = g_new0 (int, n);
  for (guint e = 0; e < b->links->len; e++)
    in_links[g_array_index (b->links, Link, e).to]++;
  for (int t = n - 1; t >= 0; t--)
    {
      int v = topo[t];
      FbGraphNode *node = node_at (b->l, v);
      int n_out = out_start[v + 1] - out_start[v];
      if (n_out == 0 || in_links[v] > n_out)
        continue;
      if (node->instr->opcode == FB_OP_PARAMETER && node->instr->parent == b->l->comp)
        continue;
      int min_user = G_MAXINT;
      for (int j = out_start[v]; j < out_start[v + 1]; j++)
        min_user = MIN (min_user, node_at (b->l, out[j])->rank);
      if (node->rank < min_user - 1)
        node->rank = min_user - 1;
    }
  int max_rank = 0;
  for (int v = 0; v < n; v++)
    max_rank = MAX (max_rank, node_at (b->l, v)->rank);
  int root = b->l->comp->root ? out_node (b, b->l->comp->root) : -1;
  if (root >= 0)
    node_at (b->l, root)->rank = max_rank;
  b->l->n_ranks = n > 0 ? max_rank + 1 : 0;
}

/* ---------------------------------------------------------- dummies */

static int
add_dummy (FbLayoutBuild *b, int rank, int cluster)
{
  FbGraphNode d = { 0 };
  d.kind = FB_GNODE_DUMMY;
  d.key = -1;
  d.cluster = cluster;
  d.rank = rank;
  d.title = g_strdup ("");
  d.subtitle = g_strdup ("");
  d.name = g_strdup ("");
  g_array_append_val (b->l->nodes, d);
  return b->l->nodes->len - 1;
}

static double
edge_weight (FbLayoutBuild *b, int a, int c)
{
  gboolean da = node_at (b->l, a)->kind == FB_GNODE_DUMMY;
  gboolean dc = node_at (b->l, c)->kind == FB_GNODE_DUMMY;
  return da && dc ? 8.0 : (da || dc ? 2.0 : 1.0);
}

static int
cmp_span_desc (gconstpointer pa, gconstpointer pb)
{
  const int *a = pa, *b = pb;   /* {span, link} */
  return b[0] - a[0];
}

/* Very long edges would need more dummy nodes than the graph has real ones:
 * the longest are cut into two stubs (drawn as connectors) until the dummies
 * fit in a budget proportional to the graph. */
static void
cut_long_edges (FbLayoutBuild *b)
{
  int nl = b->links->len;
  gint64 total = 0, budget = MAX (4000, 10 * (gint64) b->l->n_boxes);
  g_autofree int *spans = g_new (int, 2 * MAX (1, nl));
  for (int e = 0; e < nl; e++)
    {
      Link *k = &g_array_index (b->links, Link, e);
      spans[2 * e] = node_at (b->l, k->to)->rank - node_at (b->l, k->from)->rank;
      spans[2 * e + 1] = e;
      total += MAX (0, spans[2 * e] - 1);
    }
  if (total <= budget)
    return;
  qsort (spans, nl, 2 * sizeof (int), cmp_span_desc);
  for (int i = 0; i < nl && total > budget && spans[2 * i] > 6; i++)
    {
      g_array_index (b->links, Link, spans[2 * i + 1]).cut = TRUE;
      total -= spans[2 * i] - 1;
    }
}

static void
make_layered (FbLayoutBuild *b)
{
  cut_long_edges (b);
  for (guint e = 0; e < b->links->len; e++)
    {
      Link *k = &g_array_index (b->links, Link, e);
      if (k->cut)
        continue;
      int ra = node_at (b->l, k->from)->rank, rb = node_at (b->l, k->to)->rank;
      int ca = node_at (b->l, k->from)->cluster, cb = node_at (b->l, k->to)->cluster;
      int prev = k->from;
      k->first_dummy = b->l->nodes->len;
      k->n_dummies = MAX (0, rb - ra - 1);
      for (int r = ra + 1; r < rb; r++)
        {
          int d = add_dummy (b, r, ca == cb ? ca : -1);
          LEdge le = { prev, d, 0 };
          g_array_append_val (b->ledges, le);
          prev = d;
        }
      LEdge le = { prev, k->to, 0 };
      g_array_append_val (b->ledges, le);
    }
  b->n = b->l->nodes->len;
  int n = b->n;
  for (guint e = 0; e < b->ledges->len; e++)
    {
      LEdge *le = &g_array_index (b->ledges, LEdge, e);
      le->w = edge_weight (b, le->a, le->b);
    }
  b->up_start = g_new0 (int, n + 1);
  b->dn_start = g_new0 (int, n + 1);
  b->up = g_new (int, MAX (1, b->ledges->len));
  b->dn = g_new (int, MAX (1, b->ledges->len));
  for (guint e = 0; e < b->ledges->len; e++)
    {
      LEdge *le = &g_array_index (b->ledges, LEdge, e);
      b->dn_start[le->a + 1]++;
      b->up_start[le->b + 1]++;
    }
  for (int v = 0; v < n; v++)
    {
      b->dn_start[v + 1] += b->dn_start[v];
      b->up_start[v + 1] += b->up_start[v];
    }
  g_autofree int *fu = g_memdup2 (b->up_start, sizeof (int) * n);
  g_autofree int *fd = g_memdup2 (b->dn_start, sizeof (int) * n);
  for (guint e = 0; e < b->ledges->len; e++)
    {
      LEdge *le = &g_array_index (b->ledges, LEdge, e);
      b->dn[fd[le->a]++] = e;
      b->up[fu[le->b]++] = e;
    }
  /* Outermost cluster of every node keeps clusters contiguous in each rank. */
  b->group = g_new (int, MAX (1, n));
  for (int v = 0; v < n; v++)
    {
      int c = node_at (b->l, v)->cluster;
      while (c >= 0 && g_array_index (b->l->clusters, FbGraphCluster, c).parent >= 0)
        c = g_array_index (b->l->clusters, FbGraphCluster, c).parent;
      b->group[v] = c;
    }
}

/* ------------------------------------------------------- coordinates */

static double
gap_between (FbLayoutBuild *b, int u, int v)
{
  FbGraphNode *a = node_at (b->l, u), *c = node_at (b->l, v);
  gboolean da = a->kind == FB_GNODE_DUMMY, dc = c->kind == FB_GNODE_DUMMY;
  double sep = b->l->opts.node_sep;
  if (da && dc)
    sep /= 3;
  else if (da || dc)
    sep /= 2;
  if (b->group[u] != b->group[v])
    sep += 2 * FRAME_PAD + 4;
  return (a->w + c->w) / 2 + sep;
}

/* Least-squares placement of one rank: minimise sum w_i (x_i - d_i)^2 with
 * x_{i+1} - x_i >= gap_i, by pool-adjacent-violators on x_i - offset_i. */
static void
solve_rank (FbLayoutBuild *b, int r, const double *d, const double *w, double *x,
            double *off, double *bw, double *bs, int *bn)
{
  int len = b->rank_len[r];
  const int *rn = b->rank_nodes[r];
  off[0] = 0;
  for (int i = 1; i < len; i++)
    off[i] = off[i - 1] + gap_between (b, rn[i - 1], rn[i]);
  int top = 0;
  for (int i = 0; i < len; i++)
    {
      bw[top] = w[i];
      bs[top] = w[i] * (d[i] - off[i]);
      bn[top] = 1;
      top++;
      while (top > 1 && bs[top - 2] / bw[top - 2] > bs[top - 1] / bw[top - 1])
        {
          bw[top - 2] += bw[top - 1];
          bs[top - 2] += bs[top - 1];
          bn[top - 2] += bn[top - 1];
          top--;
        }
    }
  int i = 0;
  for (int k = 0; k < top; k++)
    {
      double m = bs[k] / bw[k];
      for (int j = 0; j < bn[k]; j++, i++)
        x[rn[i]] = m + off[i];
    }
}

static void
desired (FbLayoutBuild *b, int v, gboolean use_up, gboolean use_dn, const double *x, double seed_w,
         const double *gx, const gboolean *fresh, double *d, double *w)
{
  double s = 0, ws = 0;
  int g = b->group[v];
  if (g >= 0)
    {
      /* members of a cluster hold together so that frames do not overlap;
       * a cluster the previous layout did not have gathers its members
       * rather than leaving them at their old places */
      double gw = fresh[g] && seed_w > 0 ? 8.0 : 1.5;
      s += gw * gx[g];
      ws += gw;
      if (fresh[g])
        seed_w = MIN (seed_w, 1.0);
    }
  if (use_up)
    for (int j = b->up_start[v]; j < b->up_start[v + 1]; j++)
      {
        LEdge *le = &g_array_index (b->ledges, LEdge, b->up[j]);
        s += le->w * x[le->a];
        ws += le->w;
      }
  if (use_dn)
    for (int j = b->dn_start[v]; j < b->dn_start[v + 1]; j++)
      {
        LEdge *le = &g_array_index (b->ledges, LEdge, b->dn[j]);
        s += le->w * x[le->b];
        ws += le->w;
      }
  if (seed_w > 0)
    {
      double sw = node_at (b->l, v)->kind == FB_GNODE_DUMMY ? seed_w / 8 : seed_w;
      s += sw * b->seed[v];
      ws += sw;
    }
  if (ws == 0)
    {
      /* nothing pulls it: stay, with a weak hold */
      ws = 0.05;
      s = x[v] * ws;
    }
  *d = s / ws;
  *w = ws;
}

static void
group_centres (FbLayoutBuild *b, const double *x, double *gx, int *gn)
{
  int nc = b->l->clusters->len;
  for (int c = 0; c < nc; c++)
    gx[c] = 0, gn[c] = 0;
  for (int v = 0; v < b->n; v++)
    if (b->group[v] >= 0)
      {
        gx[b->group[v]] += x[v];
        gn[b->group[v]]++;
      }
  for (int c = 0; c < nc; c++)
    if (gn[c])
      gx[c] /= gn[c];
}

/* Pulls the bends of every long edge onto one vertical line (their mean),
 * while real nodes hold their place. */
static void
straighten (FbLayoutBuild *b, double *x, double real_w, double *d, double *w, double *off, double *bw, double *bs, int *bn)
{
  g_autofree double *target = g_new (double, MAX (1, b->n));
  for (int v = 0; v < b->n; v++)
    target[v] = x[v];
  int rounds = b->n > 50000 ? 6 : 16;
  for (int round = 0; round < rounds; round++)
    {
      for (guint e = 0; e < b->links->len; e++)
        {
          Link *k = &g_array_index (b->links, Link, e);
          if (k->n_dummies < 2)
            continue;
          double mean = 0;
          for (int i = 0; i < k->n_dummies; i++)
            mean += x[k->first_dummy + i];
          mean /= k->n_dummies;
          for (int i = 0; i < k->n_dummies; i++)
            target[k->first_dummy + i] = mean;
        }
      for (int r = 0; r < b->l->n_ranks; r++)
        {
          for (int i = 0; i < b->rank_len[r]; i++)
            {
              int v = b->rank_nodes[r][i];
              gboolean dummy = node_at (b->l, v)->kind == FB_GNODE_DUMMY;
              d[i] = dummy ? target[v] : x[v];
              w[i] = dummy ? 20.0 : real_w;
            }
          solve_rank (b, r, d, w, x, off, bw, bs, bn);
        }
    }
}

static void
place_x (FbLayoutBuild *b, gboolean seeded)
{
  int maxlen = 1;
  for (int r = 0; r < b->l->n_ranks; r++)
    maxlen = MAX (maxlen, b->rank_len[r]);
  g_autofree double *x = g_new0 (double, MAX (1, b->n));
  g_autofree double *d = g_new (double, maxlen);
  g_autofree double *w = g_new (double, maxlen);
  g_autofree double *off = g_new (double, maxlen);
  g_autofree double *bw = g_new (double, maxlen);
  g_autofree double *bs = g_new (double, maxlen);
  g_autofree int *bn = g_new (int, maxlen);
  double seed_w = seeded ? 50.0 : 0.0;
  int nc = MAX (1, b->l->clusters->len);
  g_autofree double *gx = g_new0 (double, nc);
  g_autofree int *gn = g_new0 (int, nc);
  g_autofree gboolean *fresh = g_new0 (gboolean, nc);
  for (guint c = 0; c < b->l->clusters->len; c++)
    fresh[c] = b->prev == NULL
               || fb_graph_layout_find_cluster (b->prev, g_array_index (b->l->clusters, FbGraphCluster, c).key) < 0;

  for (int r = 0; r < b->l->n_ranks; r++)
    {
      int len = b->rank_len[r];
      for (int i = 0; i < len; i++)
        {
          d[i] = seeded ? b->seed[b->rank_nodes[r][i]] : 0;
          w[i] = 1;
        }
      solve_rank (b, r, d, w, x, off, bw, bs, bn);
    }
  int rounds = b->n > 20000 ? 3 : 6;
  for (int it = 0; it < rounds; it++)
    {
      for (int step = 0; step < 2; step++)
        {
          gboolean down = step == 0;
          group_centres (b, x, gx, gn);
          for (int k = 0; k < b->l->n_ranks; k++)
            {
              int r = down ? k : b->l->n_ranks - 1 - k;
              for (int i = 0; i < b->rank_len[r]; i++)
                desired (b, b->rank_nodes[r][i], down, !down, x, seed_w, gx, fresh, &d[i], &w[i]);
              solve_rank (b, r, d, w, x, off, bw, bs, bn);
            }
        }
    }
  group_centres (b, x, gx, gn);
  for (int r = 0; r < b->l->n_ranks; r++)
    {
      for (int i = 0; i < b->rank_len[r]; i++)
        desired (b, b->rank_nodes[r][i], TRUE, TRUE, x, seed_w, gx, fresh, &d[i], &w[i]);
      solve_rank (b, r, d, w, x, off, bw, bs, bn);
    }
  straighten (b, x, seeded ? 20.0 : 0.2, d, w, off, bw, bs, bn);
  for (int v = 0; v < b->n; v++)
    {
      node_at (b->l, v)->x = x[v];
      node_at (b->l, v)->order = b->pos[v];
    }
}

static void
place_y (FbLayoutBuild *b, gboolean seeded)
{
  int R = b->l->n_ranks;
  g_autofree double *rh = g_new0 (double, MAX (1, R));
  double minx = G_MAXDOUBLE, maxx = -G_MAXDOUBLE;
  for (int v = 0; v < b->n; v++)
    {
      FbGraphNode *n = node_at (b->l, v);
      rh[n->rank] = MAX (rh[n->rank], n->h);
      minx = MIN (minx, n->x - n->w / 2);
    }
  /* A seeded layout keeps the previous origin so that x stays comparable. */
  double shift = seeded ? 0 : MARGIN - minx;
  if (seeded && minx < MARGIN)
    shift = MARGIN - minx;
  double top = MARGIN + FRAME_TOP, maxy = 0;
  for (int r = 0; r < R; r++)
    {
      double h = MAX (rh[r], LINE_H);
      for (int i = 0; i < b->rank_len[r]; i++)
        {
          FbGraphNode *n = node_at (b->l, b->rank_nodes[r][i]);
          n->y = top + h / 2;
          n->x += shift;
          maxx = MAX (maxx, n->x + n->w / 2);
        }
      top += h + b->l->opts.rank_sep;
      maxy = top;
    }
  b->l->width = (b->n ? maxx : 0) + MARGIN + FRAME_PAD;
  b->l->height = (R ? maxy - b->l->opts.rank_sep : 0) + MARGIN + FRAME_PAD;
}

static void
make_edges (FbLayoutBuild *b)
{
  for (guint e = 0; e < b->links->len; e++)
    {
      Link *k = &g_array_index (b->links, Link, e);
      FbGraphNode *a = node_at (b->l, k->from), *c = node_at (b->l, k->to);
      FbGraphEdge edge = { k->from, k->to, k->operand, k->n_dummies + 2, NULL, k->cut };
      if (k->cut)
        {
          /* two stubs: out of the operand, into the user */
          double stub = b->l->opts.rank_sep * 0.6;
          edge.n_points = 4;
          edge.points = g_new (FbPoint, 4);
          edge.points[0] = (FbPoint) { a->x, a->y + a->h / 2 };
          edge.points[1] = (FbPoint) { a->x, a->y + a->h / 2 + stub };
          edge.points[2] = (FbPoint) { c->x, c->y - c->h / 2 - stub };
          edge.points[3] = (FbPoint) { c->x, c->y - c->h / 2 };
          g_array_append_val (b->l->edges, edge);
          continue;
        }
      edge.points = g_new (FbPoint, edge.n_points);
      edge.points[0] = (FbPoint) { a->x, a->y + a->h / 2 };
      for (int i = 0; i < k->n_dummies; i++)
        {
          FbGraphNode *dn = node_at (b->l, k->first_dummy + i);
          edge.points[i + 1] = (FbPoint) { dn->x, dn->y };
        }
      edge.points[edge.n_points - 1] = (FbPoint) { c->x, c->y - c->h / 2 };
      g_array_append_val (b->l->edges, edge);
    }
}

static void
make_frames (FbGraphLayout *l)
{
  for (guint c = 0; c < l->clusters->len; c++)
    {
      FbGraphCluster *cl = &g_array_index (l->clusters, FbGraphCluster, c);
      cl->x0 = cl->y0 = G_MAXDOUBLE;
      cl->x1 = cl->y1 = -G_MAXDOUBLE;
    }
  for (int v = 0; v < l->n_boxes; v++)
    {
      FbGraphNode *n = node_at (l, v);
      if (n->collapsed)
        {
          int ci = fb_graph_layout_find_cluster (l, n->key);
          if (ci >= 0)
            {
              FbGraphCluster *cl = &g_array_index (l->clusters, FbGraphCluster, ci);
              cl->x0 = n->x - n->w / 2; cl->x1 = n->x + n->w / 2;
              cl->y0 = n->y - n->h / 2; cl->y1 = n->y + n->h / 2;
            }
        }
      int depth = 0;
      for (int c = n->cluster; c >= 0; c = g_array_index (l->clusters, FbGraphCluster, c).parent)
        depth++;
      int level = 0;
      for (int c = n->cluster; c >= 0; c = g_array_index (l->clusters, FbGraphCluster, c).parent, level++)
        {
          FbGraphCluster *cl = &g_array_index (l->clusters, FbGraphCluster, c);
          double pad = FRAME_PAD * (level + 1) / MAX (1, depth) ;
          cl->x0 = MIN (cl->x0, n->x - n->w / 2 - pad);
          cl->x1 = MAX (cl->x1, n->x + n->w / 2 + pad);
          cl->y0 = MIN (cl->y0, n->y - n->h / 2 - FRAME_TOP * (level + 1) / MAX (1, depth));
          cl->y1 = MAX (cl->y1, n->y + n->h / 2 + pad);
        }
    }
}

/* --------------------------------------------------------- grid index */

static void
grid_range (const FbGraphLayout *l, double x0, double y0, double x1, double y1,
            int *cx0, int *cy0, int *cx1, int *cy1)
{
  *cx0 = CLAMP ((int) floor (x0 / CELL), 0, l->gw - 1);
  *cy0 = CLAMP ((int) floor (y0 / CELL), 0, l->gh - 1);
  *cx1 = CLAMP ((int) floor (x1 / CELL), 0, l->gw - 1);
  *cy1 = CLAMP ((int) floor (y1 / CELL), 0, l->gh - 1);
}

static int
node_bbox (const FbGraphLayout *l, int i, double bb[8])
{
  const FbGraphNode *n = &g_array_index (l->nodes, FbGraphNode, i);
  bb[0] = n->x - n->w / 2; bb[1] = n->y - n->h / 2;
  bb[2] = n->x + n->w / 2; bb[3] = n->y + n->h / 2;
  return 1;
}

typedef int (*BBoxFunc) (const FbGraphLayout *l, int i, double bb[8]);

static int
edge_bbox (const FbGraphLayout *l, int i, double bb[8])
{
  if (l->ebox)
    {
      memcpy (bb, l->ebox + 8 * i, sizeof (double) * 4 * l->n_ebox[i]);
      return l->n_ebox[i];
    }
  const FbGraphEdge *e = &g_array_index (l->edges, FbGraphEdge, i);
  int nbox = e->cut ? 2 : 1;
  for (int j = 0; j < nbox; j++)
    {
      double *q = bb + 4 * j;
      int k0 = e->cut ? 2 * j : 0, k1 = e->cut ? 2 * j + 2 : e->n_points;
      q[0] = q[1] = G_MAXDOUBLE;
      q[2] = q[3] = -G_MAXDOUBLE;
      for (int k = k0; k < k1; k++)
        {
          q[0] = MIN (q[0], e->points[k].x); q[2] = MAX (q[2], e->points[k].x);
          q[1] = MIN (q[1], e->points[k].y); q[3] = MAX (q[3], e->points[k].y);
        }
    }
  return nbox;
}

static void
build_grid_for (FbGraphLayout *l, int count, BBoxFunc bbox, int **start_out, int **items_out)
{
  int cells = l->gw * l->gh;
  int *start = g_new0 (int, cells + 1);
  double bb[8];
  int cx0, cy0, cx1, cy1;
  for (int pass = 0; pass < 2; pass++)
    {
      g_autofree int *fill = pass ? g_memdup2 (start, sizeof (int) * cells) : NULL;
      for (int i = 0; i < count; i++)
        {
          int nbox = bbox (l, i, bb);
          for (int j = 0; j < nbox; j++)
            {
              grid_range (l, bb[4 * j], bb[4 * j + 1], bb[4 * j + 2], bb[4 * j + 3], &cx0, &cy0, &cx1, &cy1);
              for (int cy = cy0; cy <= cy1; cy++)
                for (int cx = cx0; cx <= cx1; cx++)
                  {
                    if (pass == 0)
                      start[cy * l->gw + cx + 1]++;
                    else
                      (*items_out)[fill[cy * l->gw + cx]++] = i;
                  }
            }
        }
      if (pass == 0)
        {
          for (int c = 0; c < cells; c++)
            start[c + 1] += start[c];
          *items_out = g_new (int, MAX (1, start[cells]));
        }
    }
  *start_out = start;
}

static void
build_grid (FbGraphLayout *l)
{
  l->gw = MAX (1, (int) ceil (l->width / CELL));
  l->gh = MAX (1, (int) ceil (l->height / CELL));
  build_grid_for (l, l->n_boxes, node_bbox, &l->cell_start, &l->cell_items);
  int ne = l->edges->len;
  double *ebox = g_new (double, 8 * MAX (1, ne));
  guint8 *n_ebox = g_new (guint8, MAX (1, ne));
  for (int i = 0; i < ne; i++)
    n_ebox[i] = edge_bbox (l, i, ebox + 8 * i);
  l->ebox = ebox;
  l->n_ebox = n_ebox;
  build_grid_for (l, ne, edge_bbox, &l->ecell_start, &l->ecell_items);
}

static int
cmp_int (gconstpointer a, gconstpointer b)
{
  return *(const int *) a - *(const int *) b;
}

static void
query_grid (const FbGraphLayout *l, const int *start, const int *items, BBoxFunc bbox,
            double x0, double y0, double x1, double y1, GArray *out)
{
  int cx0, cy0, cx1, cy1;
  double bb[8];
  guint first = out->len;
  if (x0 <= 0 && y0 <= 0 && x1 >= l->width && y1 >= l->height)
    {
      /* everything is in view: no need to look through the cells */
      int count = start == l->cell_start ? l->n_boxes : (int) l->edges->len;
      for (int i = 0; i < count; i++)
        g_array_append_val (out, i);
      return;
    }
  grid_range (l, x0, y0, x1, y1, &cx0, &cy0, &cx1, &cy1);
  for (int cy = cy0; cy <= cy1; cy++)
    for (int cx = cx0; cx <= cx1; cx++)
      {
        int c = cy * l->gw + cx;
        for (int k = start[c]; k < start[c + 1]; k++)
          {
            int i = items[k];
            int nbox = bbox (l, i, bb);
            gboolean meets = FALSE;
            for (int j = 0; j < nbox && !meets; j++)
              meets = !(bb[4 * j + 2] < x0 || bb[4 * j] > x1 || bb[4 * j + 3] < y0 || bb[4 * j + 1] > y1);
            if (meets)
              g_array_append_val (out, i);
          }
      }
  /* an item spanning several cells was found in each: keep one */
  guint n = out->len - first;
  if (n > 1)
    {
      int *v = &g_array_index (out, int, first);
      qsort (v, n, sizeof (int), cmp_int);
      guint m = 1;
      for (guint k = 1; k < n; k++)
        if (v[k] != v[m - 1])
          v[m++] = v[k];
      g_array_set_size (out, first + m);
    }
}

/* ------------------------------------------------------------ public */

void
fb_graph_layout_options_init (FbGraphLayoutOptions *options)
{
  g_return_if_fail (options != NULL);
  memset (options, 0, sizeof *options);
  options->expand = FB_EXPAND_AUTO;
  options->collapse_threshold = 2000;
  options->node_sep = 24;
  options->rank_sep = 40;
  options->sweeps = 8;
}

static void
index_ids (FbGraphLayout *l, int v, FbInstr *instr)
{
  int64_t ids[1] = { instr->id };
  for (int k = -1; k < instr->n_prov; k++)
    {
      int64_t id = k < 0 ? ids[0] : instr->prov[k];
      if (!g_hash_table_contains (l->by_id, &id))
        g_hash_table_insert (l->by_id, g_memdup2 (&id, sizeof id), GINT_TO_POINTER (v + 1));
    }
}

static void
index_callee (FbGraphLayout *l, int v, FbComputation *comp, int depth)
{
  if (comp == NULL || depth > 8)
    return;
  for (FbInstr *i = comp->first; i; i = i->next)
    {
      if (i->opcode != FB_OP_PARAMETER)
        index_ids (l, v, i);
      index_callee (l, v, cluster_callee (i), depth + 1);
    }
}

FbGraphLayout *
fb_graph_layout_new (FbComputation *comp, const FbGraphLayout *previous,
                     const FbGraphLayoutOptions *options)
{
  g_return_val_if_fail (comp != NULL, NULL);

  FbGraphLayout *l = g_new0 (FbGraphLayout, 1);
  l->comp = comp;
  if (options)
    l->opts = *options;
  else
    fb_graph_layout_options_init (&l->opts);
  if (l->opts.node_sep <= 0) l->opts.node_sep = 24;
  if (l->opts.rank_sep <= 0) l->opts.rank_sep = 40;
  if (l->opts.collapse_threshold <= 0) l->opts.collapse_threshold = 2000;
  l->nodes = g_array_new (FALSE, TRUE, sizeof (FbGraphNode));
  l->edges = g_array_new (FALSE, TRUE, sizeof (FbGraphEdge));
  l->clusters = g_array_new (FALSE, TRUE, sizeof (FbGraphCluster));
  l->states = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  l->by_id = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  l->cluster_by_key = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  if (previous)
    {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, previous->states);
      while (g_hash_table_iter_next (&it, &k, &v))
        g_hash_table_insert (l->states, g_memdup2 (k, sizeof (int64_t)), v);
    }

  FbLayoutBuild b = { 0 };
  b.l = l;
  b.prev = previous;
  b.node_of = g_hash_table_new (g_direct_hash, g_direct_equal);
  b.cluster_of = g_hash_table_new (g_direct_hash, g_direct_equal);
  b.expanded_comps = g_hash_table_new (g_direct_hash, g_direct_equal);
  b.links = g_array_new (FALSE, FALSE, sizeof (Link));
  b.ledges = g_array_new (FALSE, FALSE, sizeof (LEdge));
  {
    g_autoptr (GHashTable) seen = g_hash_table_new (g_direct_hash, g_direct_equal);
    g_hash_table_add (seen, comp);
    b.auto_expand = count_shown (comp, seen, l->opts.collapse_threshold) <= l->opts.collapse_threshold;
  }

  add_comp (&b, comp, -1);
  l->n_boxes = l->nodes->len;
  PangoLayout *pl = NULL;
  if (l->opts.pango)
    {
      pl = pango_layout_new (l->opts.pango);
      PangoFontDescription *fd = pango_font_description_from_string ("Sans 8");
      pango_layout_set_font_description (pl, fd);
      pango_font_description_free (fd);
    }
  for (int v = 0; v < l->n_boxes; v++)
    measure_node (node_at (l, v), pl);
  g_clear_object (&pl);

  build_links (&b);
  assign_ranks (&b);
  make_layered (&b);
  _fb_layout_order_nodes (&b);
  place_x (&b, b.seeded);
  place_y (&b, b.seeded);
  make_edges (&b);
  make_frames (l);
  build_grid (l);
  for (int v = 0; v < l->n_boxes; v++)
    index_ids (l, v, node_at (l, v)->instr);
  for (int v = 0; v < l->n_boxes; v++)
    if (node_at (l, v)->collapsed)
      index_callee (l, v, cluster_callee (node_at (l, v)->instr), 0);

  g_hash_table_unref (b.node_of);
  g_hash_table_unref (b.cluster_of);
  g_hash_table_unref (b.expanded_comps);
  g_array_unref (b.links);
  g_array_unref (b.ledges);
  g_free (b.up_start); g_free (b.up); g_free (b.dn_start); g_free (b.dn);
  for (int r = 0; r < MAX (1, l->n_ranks) && b.rank_nodes; r++)
    g_free (b.rank_nodes[r]);
  g_free (b.rank_nodes);
  g_free (b.rank_len);
  g_free (b.pos);
  g_free (b.group);
  g_free (b.seed);
  return l;
}

void
fb_graph_layout_free (FbGraphLayout *l)
{
  if (l == NULL)
    return;
  for (guint i = 0; i < l->nodes->len; i++)
    {
      FbGraphNode *n = node_at (l, i);
      g_free (n->title); g_free (n->subtitle); g_free (n->name);
    }
  for (guint i = 0; i < l->edges->len; i++)
    g_free (g_array_index (l->edges, FbGraphEdge, i).points);
  for (guint i = 0; i < l->clusters->len; i++)
    g_free (g_array_index (l->clusters, FbGraphCluster, i).label);
  g_array_unref (l->nodes);
  g_array_unref (l->edges);
  g_array_unref (l->clusters);
  g_hash_table_unref (l->states);
  g_hash_table_unref (l->by_id);
  g_hash_table_unref (l->cluster_by_key);
  g_free (l->cell_start); g_free (l->cell_items);
  g_free (l->ecell_start); g_free (l->ecell_items);
  g_free (l->ebox); g_free (l->n_ebox);
  g_free (l);
}

FbComputation *fb_graph_layout_get_computation (const FbGraphLayout *l) { g_return_val_if_fail (l, NULL); return l->comp; }
int fb_graph_layout_get_n_nodes (const FbGraphLayout *l) { g_return_val_if_fail (l, 0); return l->nodes->len; }
int fb_graph_layout_get_n_edges (const FbGraphLayout *l) { g_return_val_if_fail (l, 0); return l->edges->len; }
int fb_graph_layout_get_n_clusters (const FbGraphLayout *l) { g_return_val_if_fail (l, 0); return l->clusters->len; }
int fb_graph_layout_get_n_ranks (const FbGraphLayout *l) { g_return_val_if_fail (l, 0); return l->n_ranks; }
int fb_graph_layout_get_n_boxes (const FbGraphLayout *l) { g_return_val_if_fail (l, 0); return l->n_boxes; }
gint64 fb_graph_layout_get_crossings (const FbGraphLayout *l) { g_return_val_if_fail (l, 0); return l->crossings; }

const FbGraphNode *
fb_graph_layout_get_node (const FbGraphLayout *l, int i)
{
  g_return_val_if_fail (l != NULL && i >= 0 && i < (int) l->nodes->len, NULL);
  return &g_array_index (l->nodes, FbGraphNode, i);
}

const FbGraphEdge *
fb_graph_layout_get_edge (const FbGraphLayout *l, int i)
{
  g_return_val_if_fail (l != NULL && i >= 0 && i < (int) l->edges->len, NULL);
  return &g_array_index (l->edges, FbGraphEdge, i);
}

const FbGraphCluster *
fb_graph_layout_get_cluster (const FbGraphLayout *l, int i)
{
  g_return_val_if_fail (l != NULL && i >= 0 && i < (int) l->clusters->len, NULL);
  return &g_array_index (l->clusters, FbGraphCluster, i);
}

void
fb_graph_layout_get_size (const FbGraphLayout *l, double *width, double *height)
{
  g_return_if_fail (l != NULL);
  if (width) *width = l->width;
  if (height) *height = l->height;
}

int
fb_graph_layout_find_node (const FbGraphLayout *l, int64_t id)
{
  g_return_val_if_fail (l != NULL, -1);
  return GPOINTER_TO_INT (g_hash_table_lookup (l->by_id, &id)) - 1;
}

int
fb_graph_layout_find_cluster (const FbGraphLayout *l, int64_t key)
{
  g_return_val_if_fail (l != NULL, -1);
  return GPOINTER_TO_INT (g_hash_table_lookup (l->cluster_by_key, &key)) - 1;
}

void
fb_graph_layout_query (const FbGraphLayout *l, double x0, double y0, double x1, double y1, GArray *out)
{
  g_return_if_fail (l != NULL && out != NULL);
  query_grid (l, l->cell_start, l->cell_items, node_bbox, x0, y0, x1, y1, out);
}

void
fb_graph_layout_query_edges (const FbGraphLayout *l, double x0, double y0, double x1, double y1, GArray *out)
{
  g_return_if_fail (l != NULL && out != NULL);
  query_grid (l, l->ecell_start, l->ecell_items, edge_bbox, x0, y0, x1, y1, out);
}

int
fb_graph_layout_hit (const FbGraphLayout *l, double x, double y)
{
  g_return_val_if_fail (l != NULL, -1);
  g_autoptr (GArray) hits = g_array_new (FALSE, FALSE, sizeof (int));
  fb_graph_layout_query (l, x, y, x, y, hits);
  return hits->len ? g_array_index (hits, int, 0) : -1;
}

FbGraphLayout *
fb_graph_layout_set_expanded (const FbGraphLayout *l, int64_t key, gboolean expanded)
{
  g_return_val_if_fail (l != NULL, NULL);
  if (fb_graph_layout_find_cluster (l, key) < 0)
    return NULL;
  /* The previous layout's choices carry over; record this one on a copy. */
  FbGraphLayout *tmp = (FbGraphLayout *) l;
  gpointer old_key = NULL, old_val = NULL;
  gboolean had = g_hash_table_lookup_extended (tmp->states, &key, &old_key, &old_val);
  int64_t saved = had ? GPOINTER_TO_INT (old_val) : 0;
  g_hash_table_insert (tmp->states, g_memdup2 (&key, sizeof key), GINT_TO_POINTER (expanded ? 1 : 2));
  FbGraphLayout *next = fb_graph_layout_new (l->comp, l, &l->opts);
  if (had)
    g_hash_table_insert (tmp->states, g_memdup2 (&key, sizeof key), GINT_TO_POINTER ((int) saved));
  else
    g_hash_table_remove (tmp->states, &key);
  return next;
}
