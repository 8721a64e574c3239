/* SPDX-License-Identifier: MIT
 *
 * What the layout steps share while a layout is built: the layout itself,
 * the operand links and the layered edges between adjacent ranks, and the
 * per-rank order. fb-layout.c builds the graph, ranks it and places it;
 * fb-layout-order.c orders each rank.
 */
#pragma once

#include "fb-layout.h"

G_BEGIN_DECLS

#define LINE_H     13.0
#define PAD_X      8.0
#define PAD_Y      5.0
#define MARGIN     20.0
#define CELL       256.0
#define FRAME_PAD  10.0
#define FRAME_TOP  16.0

struct _FbGraphLayout {
  FbComputation       *comp;
  FbGraphLayoutOptions opts;
  GArray     *nodes;      /* FbGraphNode */
  GArray     *edges;      /* FbGraphEdge */
  GArray     *clusters;   /* FbGraphCluster */
  GHashTable *states;     /* cluster key -> 1 expanded, 2 collapsed (explicit choices) */
  GHashTable *by_id;      /* instruction or provenance id -> node index + 1 */
  GHashTable *cluster_by_key;   /* key -> cluster index + 1 */
  int         n_ranks, n_boxes;
  double      width, height;
  gint64      crossings;
  int         gw, gh;
  int        *cell_start, *cell_items;     /* boxes per grid cell (CSR) */
  int        *ecell_start, *ecell_items;   /* edges per grid cell */
  double     *ebox;       /* per edge: up to two boxes (x0, y0, x1, y1) */
  guint8     *n_ebox;
};

/* An operand link between two real nodes, and the layered edges it becomes. */
typedef struct { int from, to, operand; int first_dummy, n_dummies; gboolean cut; } Link;
typedef struct { int a, b; double w; } LEdge;   /* a on rank r, b on rank r + 1 */

typedef struct {
  FbGraphLayout       *l;
  const FbGraphLayout *prev;
  GHashTable *node_of;        /* FbInstr* -> node index + 1 */
  GHashTable *cluster_of;     /* expanded FbInstr* -> cluster index + 1 */
  GHashTable *expanded_comps; /* computations already shown in place */
  gboolean    auto_expand;
  GArray     *links;          /* Link */
  GArray     *ledges;         /* LEdge */
  int         n;              /* nodes, dummies included */
  int        *up_start, *up, *dn_start, *dn;   /* CSR of layered neighbours (LEdge index) */
  int       **rank_nodes;
  int        *rank_len;
  int        *pos;
  int        *group;          /* outermost cluster of a node, -1 */
  double     *seed;           /* x from the previous layout, NAN when unknown */
  gboolean    seeded;         /* the order and x follow the previous layout */
} FbLayoutBuild;

static inline FbGraphNode *
node_at (FbGraphLayout *l, int i)
{
  return &g_array_index (l->nodes, FbGraphNode, i);
}

/* Orders every rank (median sweeps and transpositions, or the previous
 * layout's order) and sets b->pos, b->rank_nodes, b->seed, b->seeded and
 * the layout's crossing count. */
void _fb_layout_order_nodes (FbLayoutBuild *b);

G_END_DECLS
