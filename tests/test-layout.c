/* SPDX-License-Identifier: MIT
 *
 * Tests of the layered graph layout: edges point down, parameters on top
 * and the root at the bottom, boxes never overlap, a planar graph is drawn
 * without crossings, a pass that removes one node leaves the others where
 * they were, fusion clusters collapse and expand, and a real module of a
 * few thousand instructions lays out cleanly.
 */
#include <math.h>
#include <string.h>

#include "fb-hlo.h"
#include "fb-layout.h"
#include "fb-pass.h"

static FbModule *
load_data (const char *name)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", "viz", name, NULL);
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse_file (path, 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  return m;
}

/* Every operand edge goes from a higher box to a lower one, and its
 * polyline never climbs. */
static void
assert_layered (const FbGraphLayout *l)
{
  for (int e = 0; e < fb_graph_layout_get_n_edges (l); e++)
    {
      const FbGraphEdge *edge = fb_graph_layout_get_edge (l, e);
      const FbGraphNode *a = fb_graph_layout_get_node (l, edge->from);
      const FbGraphNode *b = fb_graph_layout_get_node (l, edge->to);
      g_assert_cmpint (a->kind, ==, FB_GNODE_INSTR);
      g_assert_cmpint (b->kind, ==, FB_GNODE_INSTR);
      g_assert_cmpint (a->rank, <, b->rank);
      g_assert_cmpfloat (a->y, <, b->y);
      for (int k = 1; k < edge->n_points; k++)
        g_assert_cmpfloat (edge->points[k - 1].y, <=, edge->points[k].y + 1e-9);
    }
}

static int
cmp_by_x (gconstpointer a, gconstpointer b, gpointer data)
{
  const FbGraphLayout *l = data;
  double xa = fb_graph_layout_get_node (l, *(const int *) a)->x;
  double xb = fb_graph_layout_get_node (l, *(const int *) b)->x;
  return xa < xb ? -1 : xa > xb;
}

/* No two boxes overlap: within a rank they are separated in x, and ranks
 * are separated in y. */
static void
assert_no_overlap (const FbGraphLayout *l)
{
  int nr = fb_graph_layout_get_n_ranks (l);
  g_autofree double *top = g_new (double, nr), *bottom = g_new (double, nr);
  g_autoptr (GPtrArray) ranks = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  for (int r = 0; r < nr; r++)
    {
      top[r] = G_MAXDOUBLE;
      bottom[r] = -G_MAXDOUBLE;
      g_ptr_array_add (ranks, g_array_new (FALSE, FALSE, sizeof (int)));
    }
  for (int i = 0; i < fb_graph_layout_get_n_boxes (l); i++)
    {
      const FbGraphNode *n = fb_graph_layout_get_node (l, i);
      g_assert_cmpint (n->kind, ==, FB_GNODE_INSTR);
      g_assert_cmpfloat (n->w, >, 0);
      g_assert_cmpfloat (n->h, >, 0);
      g_assert_true (isfinite (n->x) && isfinite (n->y));
      top[n->rank] = MIN (top[n->rank], n->y - n->h / 2);
      bottom[n->rank] = MAX (bottom[n->rank], n->y + n->h / 2);
      g_array_append_val (g_ptr_array_index (ranks, n->rank), i);
    }
  double last_bottom = -G_MAXDOUBLE;
  for (int r = 0; r < nr; r++)
    {
      GArray *row = g_ptr_array_index (ranks, r);
      if (row->len == 0)
        continue;
      g_assert_cmpfloat (top[r], >, last_bottom);
      last_bottom = bottom[r];
      g_array_sort_with_data (row, cmp_by_x, (gpointer) l);
      for (guint k = 1; k < row->len; k++)
        {
          const FbGraphNode *a = fb_graph_layout_get_node (l, g_array_index (row, int, k - 1));
          const FbGraphNode *b = fb_graph_layout_get_node (l, g_array_index (row, int, k));
          g_assert_cmpfloat (a->x + a->w / 2, <=, b->x - b->w / 2 + 1e-6);
        }
    }
  double w, h;
  fb_graph_layout_get_size (l, &w, &h);
  for (int i = 0; i < fb_graph_layout_get_n_boxes (l); i++)
    {
      const FbGraphNode *n = fb_graph_layout_get_node (l, i);
      g_assert_cmpfloat (n->x - n->w / 2, >=, 0);
      g_assert_cmpfloat (n->x + n->w / 2, <=, w);
      g_assert_cmpfloat (n->y + n->h / 2, <=, h);
    }
}

static int
node_of (const FbGraphLayout *l, FbInstr *instr)
{
  int i = fb_graph_layout_find_node (l, instr->id);
  g_assert_cmpint (i, >=, 0);
  g_assert_true (fb_graph_layout_get_node (l, i)->instr == instr);
  return i;
}

static void
test_layered (void)
{
  FbModule *m = load_data ("dead.hlo");
  g_autoptr (FbGraphLayout) l = fb_graph_layout_new (m->entry, NULL, NULL);
  g_assert_cmpint (fb_graph_layout_get_n_boxes (l), ==, m->entry->n_instrs);
  g_assert_cmpint (fb_graph_layout_get_n_edges (l), ==, 15);
  assert_layered (l);
  assert_no_overlap (l);

  /* parameters on the first rank, the root alone at the bottom */
  for (int p = 0; p < m->entry->n_params; p++)
    g_assert_cmpint (fb_graph_layout_get_node (l, node_of (l, m->entry->params[p]))->rank, ==, 0);
  int root = node_of (l, m->entry->root);
  g_assert_cmpint (fb_graph_layout_get_node (l, root)->rank, ==, fb_graph_layout_get_n_ranks (l) - 1);
  for (int i = 0; i < fb_graph_layout_get_n_boxes (l); i++)
    if (i != root)
      g_assert_cmpint (fb_graph_layout_get_node (l, i)->rank, <, fb_graph_layout_get_n_ranks (l) - 1);

  /* long edges run straight down between their first and last bend */
  int long_edges = 0;
  for (int e = 0; e < fb_graph_layout_get_n_edges (l); e++)
    {
      const FbGraphEdge *edge = fb_graph_layout_get_edge (l, e);
      if (edge->cut || edge->n_points < 4)
        continue;
      long_edges++;
      for (int k = 2; k < edge->n_points - 1; k++)
        g_assert_cmpfloat (fabs (edge->points[k].x - edge->points[1].x), <, 2.0);
    }
  g_assert_cmpint (long_edges, >, 0);

  /* what the user clicks is what is there */
  const FbGraphNode *n = fb_graph_layout_get_node (l, root);
  g_assert_cmpint (fb_graph_layout_hit (l, n->x, n->y), ==, root);
  g_assert_cmpint (fb_graph_layout_hit (l, -100, -100), ==, -1);
  g_assert_cmpstr (n->name, ==, "r");
  g_assert_cmpstr (n->title, ==, "add");
  g_assert_cmpstr (n->subtitle, ==, "f32[16]");
  fb_module_free (m);
}

static void
test_ladder_crossings (void)
{
  FbModule *m = load_data ("ladder.hlo");
  g_autoptr (FbGraphLayout) l = fb_graph_layout_new (m->entry, NULL, NULL);
  assert_layered (l);
  assert_no_overlap (l);
  g_assert_cmpint (fb_graph_layout_get_crossings (l), ==, 0);
  fb_module_free (m);
}

static void
test_stable_after_pass (void)
{
  FbModule *m = load_data ("dead.hlo");
  g_autoptr (FbGraphLayout) before = fb_graph_layout_new (m->entry, NULL, NULL);

  FbPipeline *p = fb_pipeline_new_default ();
  g_autoptr (GError) error = NULL;
  g_assert_true (fb_pipeline_set_spec (p, "dce", &error));
  FbPipelineOptions opts = { .verify_each = TRUE, .keep_snapshots = TRUE };
  GPtrArray *snaps = fb_pipeline_run (p, m, &opts, &error);
  g_assert_no_error (error);
  FbSnapshot *s0 = g_ptr_array_index (snaps, 0);
  FbModule *after_module = NULL;
  for (guint i = 1; i < snaps->len; i++)
    {
      FbSnapshot *s = g_ptr_array_index (snaps, i);
      if (s->pass && strcmp (s->pass->name, "dce") == 0)
        after_module = s->module;
    }
  g_assert_nonnull (after_module);
  g_assert_cmpint (after_module->entry->n_instrs, ==, s0->module->entry->n_instrs - 1);

  g_autoptr (FbGraphLayout) after = fb_graph_layout_new (after_module->entry, before, NULL);
  assert_layered (after);
  assert_no_overlap (after);
  g_assert_cmpint (fb_graph_layout_get_n_boxes (after), ==, fb_graph_layout_get_n_boxes (before) - 1);
  int64_t unused_id = -1;
  for (FbInstr *i = s0->module->entry->first; i; i = i->next)
    if (strcmp (i->name, "unused") == 0)
      unused_id = i->id;
  g_assert_cmpint (fb_graph_layout_find_node (before, unused_id), >=, 0);
  g_assert_cmpint (fb_graph_layout_find_node (after, unused_id), ==, -1);
  int moved_far = 0;
  for (int i = 0; i < fb_graph_layout_get_n_boxes (after); i++)
    {
      const FbGraphNode *n = fb_graph_layout_get_node (after, i);
      int j = fb_graph_layout_find_node (before, n->instr->id);
      g_assert_cmpint (j, >=, 0);
      double dx = fabs (n->x - fb_graph_layout_get_node (before, j)->x);
      if (dx > 30)
        {
          g_test_message ("%s moved by %.1f", n->name, dx);
          moved_far++;
        }
    }
  g_assert_cmpint (moved_far, ==, 0);

  /* without the previous layout there is no such promise, but it still works */
  g_autoptr (FbGraphLayout) fresh = fb_graph_layout_new (after_module->entry, NULL, NULL);
  assert_no_overlap (fresh);
  g_ptr_array_unref (snaps);
  fb_pipeline_free (p);
  fb_module_free (m);
}

static void
test_cluster_collapse_expand (void)
{
  FbModule *m = load_data ("fusion.hlo");
  FbInstr *fusion = NULL;
  for (FbInstr *i = m->entry->first; i; i = i->next)
    if (i->opcode == FB_OP_FUSION)
      fusion = i;
  g_assert_nonnull (fusion);
  FbComputation *fused = fb_instr_comp (fusion, FB_A_CALLS);

  /* small graphs start expanded: the fused instructions are shown in a frame */
  g_autoptr (FbGraphLayout) open = fb_graph_layout_new (m->entry, NULL, NULL);
  assert_layered (open);
  assert_no_overlap (open);
  g_assert_cmpint (fb_graph_layout_get_n_clusters (open), ==, 1);
  const FbGraphCluster *c = fb_graph_layout_get_cluster (open, 0);
  g_assert_true (c->expanded);
  g_assert_true (c->instr == fusion);
  g_assert_cmpint (fb_graph_layout_get_n_boxes (open), ==, m->entry->n_instrs - 1 + fused->n_instrs);
  for (FbInstr *i = fused->first; i; i = i->next)
    {
      const FbGraphNode *n = fb_graph_layout_get_node (open, node_of (open, i));
      g_assert_cmpint (n->cluster, ==, 0);
      g_assert_cmpfloat (n->x - n->w / 2, >=, c->x0);
      g_assert_cmpfloat (n->x + n->w / 2, <=, c->x1);
      g_assert_cmpfloat (n->y - n->h / 2, >=, c->y0);
      g_assert_cmpfloat (n->y + n->h / 2, <=, c->y1);
    }
  /* the fusion's operands feed its parameters; its root feeds its users */
  FbInstr *negate = fusion->operands[0];
  int from = node_of (open, negate), to = node_of (open, fused->params[0]);
  gboolean found = FALSE;
  for (int e = 0; e < fb_graph_layout_get_n_edges (open); e++)
    {
      const FbGraphEdge *edge = fb_graph_layout_get_edge (open, e);
      found |= edge->from == from && edge->to == to;
    }
  g_assert_true (found);
  /* a box outside the frame stays outside */
  const FbGraphNode *a = fb_graph_layout_get_node (open, node_of (open, m->entry->params[0]));
  g_assert_true (a->y + a->h / 2 < c->y0 || a->x + a->w / 2 < c->x0 || a->x - a->w / 2 > c->x1);

  /* collapsed: one box for the fusion, everything else where it was */
  g_autoptr (FbGraphLayout) shut = fb_graph_layout_set_expanded (open, c->key, FALSE);
  g_assert_nonnull (shut);
  assert_layered (shut);
  assert_no_overlap (shut);
  g_assert_cmpint (fb_graph_layout_get_n_boxes (shut), ==, m->entry->n_instrs);
  int fi = node_of (shut, fusion);
  g_assert_true (fb_graph_layout_get_node (shut, fi)->collapsed);
  g_assert_false (fb_graph_layout_get_cluster (shut, 0)->expanded);
  /* a fused instruction is found in the collapsed node that stands for it */
  g_assert_cmpint (fb_graph_layout_find_node (shut, fused->root->id), ==, fi);
  double dx = fabs (fb_graph_layout_get_node (shut, node_of (shut, m->entry->params[1]))->x
                    - fb_graph_layout_get_node (open, node_of (open, m->entry->params[1]))->x);
  g_assert_cmpfloat (dx, <, 60);

  /* and open again */
  g_autoptr (FbGraphLayout) again = fb_graph_layout_set_expanded (shut, c->key, TRUE);
  g_assert_cmpint (fb_graph_layout_get_n_boxes (again), ==, fb_graph_layout_get_n_boxes (open));
  assert_no_overlap (again);
  g_assert_null (fb_graph_layout_set_expanded (again, -42, TRUE));

  /* a policy of no expansion starts collapsed */
  FbGraphLayoutOptions o;
  fb_graph_layout_options_init (&o);
  o.expand = FB_EXPAND_NONE;
  g_autoptr (FbGraphLayout) none = fb_graph_layout_new (m->entry, NULL, &o);
  g_assert_cmpint (fb_graph_layout_get_n_boxes (none), ==, m->entry->n_instrs);
  /* as does a graph over the threshold */
  fb_graph_layout_options_init (&o);
  o.collapse_threshold = 5;
  g_autoptr (FbGraphLayout) big = fb_graph_layout_new (m->entry, NULL, &o);
  g_assert_cmpint (fb_graph_layout_get_n_boxes (big), ==, m->entry->n_instrs);
  fb_module_free (m);
}

static void
test_query (void)
{
  FbModule *m = load_data ("ladder.hlo");
  g_autoptr (FbGraphLayout) l = fb_graph_layout_new (m->entry, NULL, NULL);
  double w, h;
  fb_graph_layout_get_size (l, &w, &h);
  g_autoptr (GArray) all = g_array_new (FALSE, FALSE, sizeof (int));
  fb_graph_layout_query (l, 0, 0, w, h, all);
  g_assert_cmpuint (all->len, ==, fb_graph_layout_get_n_boxes (l));
  g_autoptr (GArray) top = g_array_new (FALSE, FALSE, sizeof (int));
  const FbGraphNode *p = fb_graph_layout_get_node (l, node_of (l, m->entry->params[0]));
  fb_graph_layout_query (l, 0, 0, w, p->y + p->h / 2, top);
  g_assert_cmpuint (top->len, ==, 2);   /* the two parameters */
  g_autoptr (GArray) edges = g_array_new (FALSE, FALSE, sizeof (int));
  fb_graph_layout_query_edges (l, 0, 0, w, h, edges);
  g_assert_cmpuint (edges->len, ==, fb_graph_layout_get_n_edges (l));

  g_autofree char *dot = fb_graph_to_dot (m->entry, TRUE);
  g_assert_true (g_str_has_prefix (dot, "digraph"));
  g_assert_nonnull (strstr (dot, "\"x0\" -> \"x1\""));
  g_assert_true (g_str_has_suffix (dot, "}\n"));
  fb_module_free (m);
}

static void
test_corpus_large (void)
{
  const char *dir = g_getenv ("FUSEBOX_CORPUS");
  if (dir == NULL)
    {
      g_test_skip ("FUSEBOX_CORPUS is not set: no real modules to lay out");
      return;
    }
  g_autofree char *path = g_build_filename (dir, "mobilenet_v2.hlo", NULL);
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse_file (path, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (m->entry->n_instrs, >, 1000);
  g_autoptr (FbGraphLayout) l = fb_graph_layout_new (m->entry, NULL, NULL);
  g_assert_cmpint (fb_graph_layout_get_n_boxes (l), ==, m->entry->n_instrs);
  assert_layered (l);
  assert_no_overlap (l);
  for (int p = 0; p < m->entry->n_params; p++)
    g_assert_cmpint (fb_graph_layout_get_node (l, node_of (l, m->entry->params[p]))->rank, ==, 0);
  g_test_message ("%d boxes, %d ranks, %" G_GINT64_FORMAT " crossings",
                  fb_graph_layout_get_n_boxes (l), fb_graph_layout_get_n_ranks (l),
                  fb_graph_layout_get_crossings (l));
  fb_module_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/viz/layout/layered", test_layered);
  g_test_add_func ("/viz/layout/ladder-no-crossings", test_ladder_crossings);
  g_test_add_func ("/viz/layout/stable-after-pass", test_stable_after_pass);
  g_test_add_func ("/viz/layout/cluster-collapse-expand", test_cluster_collapse_expand);
  g_test_add_func ("/viz/layout/query-and-dot", test_query);
  g_test_add_func ("/viz/layout/corpus-large", test_corpus_large);
  return g_test_run ();
}
