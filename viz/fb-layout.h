/* SPDX-License-Identifier: MIT
 *
 * Layered layout of one computation, drawn top to bottom: parameters on the
 * first rank, the root on the last, every operand edge pointing downwards.
 * A fusion (or call) is a cluster: collapsed it is one node, expanded it is
 * replaced in place by the instructions of the computation it calls, framed
 * by a box. Long edges run through dummy nodes so that they can be routed
 * around other nodes as polylines.
 *
 * The steps are the classic ones: ranking by longest path from the
 * parameters, dummy nodes, crossing reduction by median/barycenter sweeps
 * and adjacent transpositions, coordinate assignment that keeps long edges
 * straight and nodes balanced over their neighbours, then edge routing.
 *
 * A layout can be seeded from the layout of an earlier snapshot of the
 * same program: nodes whose provenance ids existed before keep their order
 * and stay near their old x, so that stepping through passes only moves
 * what a pass changed. Expanding or collapsing a cluster reuses the current
 * layout the same way.
 *
 * Coordinates are in layout units (1 unit = 1 device pixel at zoom 1); the
 * origin is the top-left corner of the bounding box. A layout borrows the
 * computation: it must not outlive the module.
 */
#pragma once

#include <pango/pango.h>

#include "fb-ir.h"

G_BEGIN_DECLS

typedef struct _FbGraphLayout FbGraphLayout;

typedef enum {
  FB_GNODE_INSTR,      /* an instruction (a collapsed fusion or call is one node too) */
  FB_GNODE_DUMMY       /* a bend point of a long edge; never drawn as a box */
} FbGraphNodeKind;

typedef struct {
  FbGraphNodeKind kind;
  FbInstr  *instr;       /* NULL for dummies */
  int64_t   key;         /* stable identity: the smallest provenance id (dummies: -1) */
  int       cluster;     /* index of the innermost expanded cluster holding it, -1 for none */
  gboolean  collapsed;   /* a fusion or call shown as one node (it can be expanded) */
  int       rank;        /* 0 = top */
  int       order;       /* position within the rank, left to right */
  double    x, y;        /* centre */
  double    w, h;        /* box size (0 for dummies) */
  char     *title;       /* first label line: opcode (or fusion kind) */
  char     *subtitle;    /* second line: shape */
  char     *name;        /* third line: instruction name */
} FbGraphNode;

typedef struct { double x, y; } FbPoint;

typedef struct {
  int      from, to;     /* indices of real (non-dummy) nodes: from is the operand, to the user */
  int      operand;      /* operand number at the user */
  int      n_points;
  FbPoint *points;       /* polyline: bottom of `from`, bends (dummy nodes), top of `to` */
  gboolean cut;          /* a very long edge drawn as two stubs: points[0..1] leave `from`,
                          * points[2..3] enter `to` (n_points is 4) */
} FbGraphEdge;

typedef struct {
  FbInstr       *instr;  /* the fusion or call instruction */
  FbComputation *comp;   /* the computation it calls */
  int64_t        key;    /* the instruction's stable identity */
  gboolean       expanded;
  int            parent; /* enclosing expanded cluster, or -1 */
  double         x0, y0, x1, y1;   /* frame when expanded (else the node box) */
  char          *label;  /* "fusion.3 (kLoop)" */
} FbGraphCluster;

typedef enum {
  FB_EXPAND_AUTO,   /* expand every cluster unless the result exceeds collapse_threshold nodes */
  FB_EXPAND_ALL,
  FB_EXPAND_NONE
} FbExpandPolicy;

typedef struct {
  PangoContext  *pango;           /* measures labels; NULL: estimate from character counts */
  FbExpandPolicy expand;          /* default AUTO */
  int            collapse_threshold;  /* default 2000 nodes */
  double         node_sep;        /* horizontal gap between boxes, default 24 */
  double         rank_sep;        /* vertical gap between ranks, default 40 */
  int            sweeps;          /* crossing-reduction sweeps, default 8 (fewer above 5k nodes) */
} FbGraphLayoutOptions;

/* Fills @options with the defaults. */
void           fb_graph_layout_options_init (FbGraphLayoutOptions *options);

/* Lays out @comp. @previous (may be NULL) is the layout of an earlier
 * snapshot: nodes sharing provenance ids with it keep their places and its
 * expanded/collapsed state carries over. @options may be NULL (defaults).
 * Never fails on a verified module; returns NULL only for a NULL @comp. */
FbGraphLayout *fb_graph_layout_new (FbComputation *comp, const FbGraphLayout *previous,
                                    const FbGraphLayoutOptions *options);
void           fb_graph_layout_free (FbGraphLayout *layout);

FbComputation *fb_graph_layout_get_computation (const FbGraphLayout *layout);
int            fb_graph_layout_get_n_nodes    (const FbGraphLayout *layout);    /* dummies included */
const FbGraphNode *fb_graph_layout_get_node   (const FbGraphLayout *layout, int i);
int            fb_graph_layout_get_n_edges    (const FbGraphLayout *layout);
const FbGraphEdge *fb_graph_layout_get_edge   (const FbGraphLayout *layout, int i);
int            fb_graph_layout_get_n_clusters (const FbGraphLayout *layout);
const FbGraphCluster *fb_graph_layout_get_cluster (const FbGraphLayout *layout, int i);
int            fb_graph_layout_get_n_ranks    (const FbGraphLayout *layout);
/* Real (non-dummy) nodes. */
int            fb_graph_layout_get_n_boxes    (const FbGraphLayout *layout);
void           fb_graph_layout_get_size       (const FbGraphLayout *layout, double *width, double *height);
/* Edge crossings between adjacent ranks (through dummies), after layout. */
gint64         fb_graph_layout_get_crossings  (const FbGraphLayout *layout);

/* Node index for an instruction id or any provenance id it stands for; -1 when not shown. */
int            fb_graph_layout_find_node      (const FbGraphLayout *layout, int64_t id);
/* Cluster index of a fusion/call instruction by its stable key; -1 when none. */
int            fb_graph_layout_find_cluster   (const FbGraphLayout *layout, int64_t key);
/* The box (not dummy) at layout point (@x, @y), or -1. */
int            fb_graph_layout_hit            (const FbGraphLayout *layout, double x, double y);
/* Appends to @out (GArray of int) the indices of the nodes whose box meets the
 * rectangle; uses a grid index, so the cost follows what is visible. */
void           fb_graph_layout_query          (const FbGraphLayout *layout, double x0, double y0,
                                               double x1, double y1, GArray *out);
/* Same for edges whose bounding box meets the rectangle. */
void           fb_graph_layout_query_edges    (const FbGraphLayout *layout, double x0, double y0,
                                               double x1, double y1, GArray *out);

/* Expands or collapses the cluster @key (see FbGraphCluster.key). Returns
 * a new layout seeded from @layout, so only the changed region moves; NULL
 * when @key is not a cluster of @layout. */
FbGraphLayout *fb_graph_layout_set_expanded   (const FbGraphLayout *layout, int64_t key, gboolean expanded);

/* The computation as a Graphviz digraph (fusions as subgraph clusters when
 * @expand_fusions). Newly allocated. */
char          *fb_graph_to_dot (FbComputation *comp, gboolean expand_fusions);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbGraphLayout, fb_graph_layout_free)

G_END_DECLS
