/* SPDX-License-Identifier: MIT
 *
 * Order inside a computation for the fusion machinery: reachability between
 * instructions, the dependence labels and certificates (hubs) fuse-siblings
 * uses, and positions --
 * the instructions numbered in order with gaps, so that the few
 * instructions a build inserts get positions of their own without
 * renumbering everything -- with the local re-sorts that keep them
 * topological after a build.
 */
#include <string.h>

#include "fb-fusion.h"
#include "fb-fusion-private.h"


/* _fb_fusion_reaches in an order with operands first: a walk forward from
 * @from and one backward from @to, taking turns, within the stretch
 * between them; there is a way exactly when they meet, and whichever has
 * less to see settles a "no" alone. */
static gboolean
reaches_between (FbInstr *from, FbInstr *to)
{
  FbComputation *comp = to->parent;
  gintptr lo = _fb_fusion_position (from), hi = _fb_fusion_position (to);
  guint64 fw = fb_instr_walk_begin (2), bw = fw + 1;
  g_autoptr (GPtrArray) fs = g_ptr_array_new ();
  g_autoptr (GPtrArray) bs = g_ptr_array_new ();
  from->walk = fw;
  to->walk = bw;
  g_ptr_array_add (fs, from);
  g_ptr_array_add (bs, to);
  while (fs->len > 0 && bs->len > 0)
    {
      FbInstr *x = g_ptr_array_steal_index_fast (fs, fs->len - 1);
      for (int u = 0; u < x->n_users; u++)
        {
          FbInstr *y = x->users[u];
          if (y->walk == bw)
            return TRUE;
          if (y->walk == fw || y->parent != comp || _fb_fusion_position (y) > hi)
            continue;
          y->walk = fw;
          g_ptr_array_add (fs, y);
        }
      FbInstr *z = g_ptr_array_steal_index_fast (bs, bs->len - 1);
      for (int i = 0; i < z->n_operands; i++)
        {
          FbInstr *o = z->operands[i];
          if (o == NULL)
            continue;
          if (o->walk == fw)
            return TRUE;
          if (o->walk == bw || o->parent != comp || _fb_fusion_position (o) < lo)
            continue;
          o->walk = bw;
          g_ptr_array_add (bs, o);
        }
    }
  return FALSE;
}

gboolean
_fb_fusion_reaches (FbInstr *from, FbInstr *to)
{
  if (from == to)
    return TRUE;
  /* In an order with operands first, nothing after @to leads to it. */
  gboolean bounded = FALSE;
  if (from->parent != NULL && from->parent == to->parent && _fb_fusion_pass_state () != NULL)
    {
      _fb_fusion_ensure_numbered (from->parent);
      bounded = _fb_fusion_positions_topological (from->parent);
    }
  gintptr limit = bounded ? _fb_fusion_position (to) : 0;
  if (bounded && _fb_fusion_position (from) > limit)
    return FALSE;
  if (bounded)
    return reaches_between (from, to);
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_ptr_array_add (stack, from);
  while (stack->len > 0)
    {
      FbInstr *x = g_ptr_array_steal_index_fast (stack, stack->len - 1);
      for (int u = 0; u < x->n_users; u++)
        {
          FbInstr *y = x->users[u];
          if (y == to)
            return TRUE;
          if (bounded && (y->parent != to->parent || _fb_fusion_position (y) > limit))
            continue;
          if (!g_hash_table_contains (seen, y))
            {
              g_hash_table_add (seen, y);
              g_ptr_array_add (stack, y);
            }
        }
    }
  return FALSE;
}

/* Hubs: up to 64 instructions spread along a longest path through a
 * computation, and for every instruction the hubs it leads to and those
 * that lead to it, as bit masks, made in one sweep each way. When
 * @a leads to a hub and the hub to @b, @a leads to @b: a certificate of a
 * dependence found without a walk. In a training step the longest path
 * runs from the forward pass through the loss to the backward pass, so
 * hubs on it join a kernel of the forward pass to the kernels of the
 * backward pass that read the same tensor, which a walk reaches only
 * through most of the graph. Merging kernels keeps every dependence there
 * was, so the certificates stay true while a pass fuses; instructions
 * made after the hubs have none (a certificate is never needed, only a
 * shortcut). Built when questions have been costly enough to pay for it. */
#define HUBS_MAX 64
typedef guint64 HubMask;
#define HUBS_DENSE_MAX ((int64_t) 1 << 24)
/* The walks of costly questions, in multiples of the computation's size,
 * that pay for building the hubs. */
#define HUBS_WORTH 2

struct _FbFusionHubs {
  FbComputation  *comp;
  gboolean        built;
  guint64         spent;     /* steps of costly questions so far */
  int64_t         n;
  const FbInstr **who;       /* per id: the instruction with masks */
  HubMask        *to;        /* per id: the hubs it leads to (a hub leads to itself) */
  HubMask        *from;      /* per id: the hubs that lead to it */
};

FbFusionHubs *
_fb_fusion_hubs_new (FbComputation *comp)
{
  FbFusionHubs *h = g_new0 (FbFusionHubs, 1);
  h->comp = comp;
  return h;
}

void
_fb_fusion_hubs_free (FbFusionHubs *h)
{
  if (h == NULL)
    return;
  g_free (h->who);
  g_free (h->to);
  g_free (h->from);
  g_free (h);
}

static gboolean
hubs_has (const FbFusionHubs *h, const FbInstr *i)
{
  return i->id >= 0 && i->id < h->n && h->who[i->id] == i && i->parent == h->comp;
}

/* Picks the hubs, spread along a longest path, and gives every
 * instruction its masks, once. The computation is in an order with
 * operands first; ids out of range leave it without hubs. */
void
_fb_fusion_hubs_build (FbFusionHubs *h)
{
  if (h->built)
    return;
  FbComputation *comp = h->comp;
  h->built = TRUE;
  /* The length of the longest path ending at each instruction, in @to. */
  FbInstr *deepest = NULL;
  HubMask depth = 0;
  int64_t max_id = 0;
  for (FbInstr *i = comp->first; i; i = i->next)
    {
      if (i->id < 0 || i->id >= HUBS_DENSE_MAX)
        return;
      max_id = MAX (max_id, i->id);
    }
  h->n = max_id + 1;
  h->who = g_new0 (const FbInstr *, h->n);
  h->to = g_new (HubMask, h->n);
  h->from = g_new (HubMask, h->n);
  for (FbInstr *i = comp->first; i; i = i->next)
    {
      h->who[i->id] = i;
      HubMask d = 1;
      for (int k = 0; k < i->n_operands; k++)
        {
          FbInstr *o = i->operands[k];
          if (o != NULL && o->parent == comp && hubs_has (h, o))
            d = MAX (d, h->to[o->id] + 1);
        }
      h->to[i->id] = d;
      if (d > depth)
        {
          depth = d;
          deepest = i;
        }
    }
  if (deepest == NULL)
    return;
  /* Back along the path, taking a hub at evenly spaced depths. */
  FbInstr *hubs[HUBS_MAX];
  int n_hubs = 0;
  HubMask n_want = MIN (HUBS_MAX, depth);
  for (FbInstr *x = deepest; x != NULL && n_hubs < HUBS_MAX;)
    {
      HubMask d = h->to[x->id];
      /* hub j (counted from the deepest) sits at depth about depth * (n_want - j) / (n_want + 1) */
      HubMask want = depth * (n_want - n_hubs) / (n_want + 1);
      if (d <= MAX (want, 1))
        hubs[n_hubs++] = x;
      FbInstr *next = NULL;
      for (int k = 0; k < x->n_operands && next == NULL; k++)
        {
          FbInstr *o = x->operands[k];
          if (o != NULL && o->parent == comp && hubs_has (h, o) && h->to[o->id] + 1 == d)
            next = o;
        }
      x = next;
    }
  /* What leads to a hub, and what a hub leads to, in one sweep each way:
   * in an order with operands first, an instruction's users come after
   * it and its operands before. (In another order a mask would only miss
   * hubs, which costs certificates, never a wrong one.) */
  for (FbInstr *i = comp->first; i; i = i->next)
    h->to[i->id] = h->from[i->id] = 0;
  for (int j = 0; j < n_hubs; j++)
    {
      h->to[hubs[j]->id] |= (HubMask) 1 << j;
      h->from[hubs[j]->id] |= (HubMask) 1 << j;
    }
  for (FbInstr *i = comp->first; i; i = i->next)
    for (int k = 0; k < i->n_operands; k++)
      {
        FbInstr *o = i->operands[k];
        if (o != NULL && o->parent == comp && hubs_has (h, o))
          h->from[i->id] |= h->from[o->id];
      }
  for (FbInstr *i = comp->last; i; i = i->prev)
    for (int u = 0; u < i->n_users; u++)
      {
        FbInstr *y = i->users[u];
        if (y->parent == comp && hubs_has (h, y))
          h->to[i->id] |= h->to[y->id];
      }
}

/* Is there a certificate that @a leads to @b? */
gboolean
_fb_fusion_hubs_lead (const FbFusionHubs *h, const FbInstr *a, const FbInstr *b)
{
  return hubs_has (h, a) && hubs_has (h, b) && (h->to[a->id] & h->from[b->id]) != 0;
}

/* Labels by instruction id for FbFusionRelated, kept per thread so that a
 * group asked about many times does not pay for a set per group: ids are
 * small positive numbers, a label is valid in the round that set it, and a
 * new group starts a new round. One group at a time uses them; another
 * alive meanwhile, and ids out of range, use hash tables. */
#define LABELS_DENSE_MAX ((int64_t) 1 << 24)

typedef struct {
  guint32         *round;      /* per id */
  const FbInstr  **who;        /* per id: the instruction labelled (ids may repeat across computations) */
  gint32          *below;      /* per id: 1 + the first member it depends on */
  gint32          *above;      /* per id: 1 + the first member that depends on it */
  int64_t          n;
  guint32          current;
  FbFusionRelated *user;       /* the group using them, or NULL */
} Labels;

static void
labels_free (Labels *l)
{
  g_free (l->round);
  g_free (l->who);
  g_free (l->below);
  g_free (l->above);
  g_free (l);
}

static GPrivate labels_private = G_PRIVATE_INIT ((GDestroyNotify) labels_free);

struct _FbFusionRelated {
  FbComputation *comp;
  gboolean       bounded;   /* positions in an order with operands first */
  gintptr        lo, hi;    /* of the candidates */
  GPtrArray     *group;
  GHashTable    *index;     /* member -> its first index + 1 */
  Labels        *labels;    /* the dense labels, when this group has them */
  GHashTable    *below;     /* instr -> 1 + the first member it depends on */
  GHashTable    *above;     /* instr -> 1 + the first member that depends on it */
  /* The walks run when a question needs them, member after member, down
   * ([1]) and up ([0]): the members whose walk is over, and the stack of
   * the walk under way (of member @done), which a question may leave
   * half done once it has its answer. */
  guint          done[2];
  GPtrArray     *stack[2];
  gboolean       running[2];
  GPtrArray     *qstack[2];  /* the walks from the instruction asked about, up [0] and down [1] */
  FbFusionHubs  *hubs;       /* or NULL */
};

void
_fb_fusion_related_use_hubs (FbFusionRelated *rel, FbFusionHubs *hubs)
{
  if (hubs != NULL && hubs->comp == rel->comp && rel->bounded)
    rel->hubs = hubs;
}

/* The label of @y below (@down) or above, 0 when none. */
static int
label_get (FbFusionRelated *rel, const FbInstr *y, gboolean down)
{
  Labels *l = rel->labels;
  if (l != NULL && y->id >= 0 && y->id < LABELS_DENSE_MAX)
    {
      if (y->id >= l->n || l->round[y->id] != l->current)
        return 0;
      if (l->who[y->id] == y)
        return down ? l->below[y->id] : l->above[y->id];
    }
  return GPOINTER_TO_INT (g_hash_table_lookup (down ? rel->below : rel->above, y));
}

static void
label_set (FbFusionRelated *rel, const FbInstr *y, gboolean down, int label)
{
  Labels *l = rel->labels;
  if (l != NULL && y->id >= 0 && y->id < LABELS_DENSE_MAX)
    {
      if (y->id >= l->n)
        {
          int64_t n = MIN (MAX (MAX (l->n * 2, y->id + 1), 4096), LABELS_DENSE_MAX);
          l->round = g_renew (guint32, l->round, n);
          l->who = g_renew (const FbInstr *, l->who, n);
          l->below = g_renew (gint32, l->below, n);
          l->above = g_renew (gint32, l->above, n);
          memset (l->round + l->n, 0, sizeof (guint32) * (n - l->n));
          l->n = n;
        }
      if (l->round[y->id] != l->current)
        {
          l->round[y->id] = l->current;
          l->who[y->id] = y;
          l->below[y->id] = 0;
          l->above[y->id] = 0;
        }
      if (l->who[y->id] == y)
        {
          if (down)
            l->below[y->id] = label;
          else
            l->above[y->id] = label;
          return;
        }
    }
  g_hash_table_insert (down ? rel->below : rel->above, (gpointer) y, GINT_TO_POINTER (label));
}

FbFusionRelated *
_fb_fusion_related_new (FbComputation *comp, FbInstr *const *candidates, int n)
{
  FbFusionRelated *rel = g_new0 (FbFusionRelated, 1);
  rel->comp = comp;
  rel->group = g_ptr_array_new ();
  rel->index = g_hash_table_new (NULL, NULL);
  rel->below = g_hash_table_new (NULL, NULL);
  rel->above = g_hash_table_new (NULL, NULL);
  rel->stack[0] = g_ptr_array_new ();
  rel->stack[1] = g_ptr_array_new ();
  rel->bounded = _fb_fusion_pass_state () != NULL;
  for (int k = 0; k < n && rel->bounded; k++)
    rel->bounded = candidates[k]->parent == comp;
  if (rel->bounded)
    {
      _fb_fusion_ensure_numbered (comp);
      rel->bounded = _fb_fusion_positions_topological (comp);
    }
  rel->lo = G_MAXSSIZE;
  rel->hi = G_MINSSIZE;
  for (int k = 0; k < n && rel->bounded; k++)
    {
      rel->lo = MIN (rel->lo, _fb_fusion_position (candidates[k]));
      rel->hi = MAX (rel->hi, _fb_fusion_position (candidates[k]));
    }
  Labels *l = g_private_get (&labels_private);
  if (l == NULL)
    {
      l = g_new0 (Labels, 1);
      g_private_set (&labels_private, l);
    }
  if (rel->bounded && l->user == NULL)
    {
      if (++l->current == 0)
        {
          memset (l->round, 0, sizeof (guint32) * l->n);
          l->current = 1;
        }
      l->user = rel;
      rel->labels = l;
    }
  return rel;
}

void
_fb_fusion_related_free (FbFusionRelated *rel)
{
  if (rel == NULL)
    return;
  if (rel->labels != NULL)
    rel->labels->user = NULL;
  g_ptr_array_unref (rel->group);
  g_hash_table_unref (rel->index);
  g_hash_table_unref (rel->below);
  g_hash_table_unref (rel->above);
  g_ptr_array_unref (rel->stack[0]);
  g_ptr_array_unref (rel->stack[1]);
  if (rel->qstack[0] != NULL)
    {
      g_ptr_array_unref (rel->qstack[0]);
      g_ptr_array_unref (rel->qstack[1]);
    }
  g_free (rel);
}

/* Labels with 1 + its index everything reachable from a member along
 * users (@down) or operands within the bounds that has no label yet, one
 * member after the other. What a labelled instruction reaches is labelled
 * already, with the same or an earlier member, so a walk stops there.
 * Runs the walks up to that of member @g, and stops early once @s has a
 * label (it cannot change any more). Each instruction taken off the stack
 * costs one of *@budget; FALSE when that ran out first (the walk under way
 * stays half done, to go on with later). */
static gboolean
related_walk (FbFusionRelated *rel, gboolean down, guint g, const FbInstr *s, int *budget)
{
  GPtrArray *stack = rel->stack[down];
  while (rel->done[down] <= g)
    {
      int label = rel->done[down] + 1;
      if (!rel->running[down])
        {
          g_ptr_array_add (stack, g_ptr_array_index (rel->group, rel->done[down]));
          rel->running[down] = TRUE;
        }
      while (stack->len > 0)
        {
          if (*budget <= 0)
            return FALSE;
          (*budget)--;
          FbInstr *x = g_ptr_array_steal_index_fast (stack, stack->len - 1);
          int n = down ? x->n_users : x->n_operands;
          for (int k = 0; k < n; k++)
            {
              FbInstr *y = down ? x->users[k] : x->operands[k];
              if (y == NULL || y->parent != rel->comp
                  || (down ? _fb_fusion_position (y) > rel->hi : _fb_fusion_position (y) < rel->lo)
                  || label_get (rel, y, down) != 0)
                continue;
              label_set (rel, y, down, label);
              g_ptr_array_add (stack, y);
            }
          if (label_get (rel, s, down) != 0)
            return TRUE;
        }
      rel->running[down] = FALSE;
      rel->done[down]++;
    }
  return TRUE;
}

void
_fb_fusion_related_add (FbFusionRelated *rel, FbInstr *member)
{
  int label = rel->group->len;
  g_ptr_array_add (rel->group, member);
  if (!g_hash_table_contains (rel->index, member))
    g_hash_table_insert (rel->index, member, GINT_TO_POINTER (label + 1));
}

/* One question of _fb_fusion_related_first under way. The answer is the
 * first member @s depends on (a member depends on itself) or that depends
 * on @s. The member walks have shown that none before @g is; @best is the
 * first member known to be related (@limit when none), in the direction
 * @best_depends: @s itself, one the hubs certify, or one the walks from @s
 * found. */
typedef struct {
  const FbInstr *s;
  int            self;        /* the index of @s as a member, or -1 */
  guint          limit;       /* the members asked about */
  guint          g;           /* next member the member walks look at */
  gboolean       g_up;        /* ... in its walk up (its down walk is over) */
  gboolean       started;     /* the walks from @s have begun */
  guint64        mark;        /* their walk marks: [mark] up, [mark + 1] down */
  int            best;
  gboolean       best_depends;
} Query;

#define QUERY_CHUNK     64
#define QUERY_CHUNK_MAX 4096
#define QUERY_S_SHARE   2   /* the walks from @s get 1 / QUERY_S_SHARE of the steps */

/* Goes on with the member walks, member by member as far as they must go,
 * for @budget steps; TRUE once they settled the answer. */
static gboolean
query_members (FbFusionRelated *rel, Query *q, int budget)
{
  for (; q->g < q->limit; q->g++, q->g_up = FALSE)
    {
      if (q->best <= (int) q->g)
        return TRUE;
      if (!q->g_up)
        {
          if (!related_walk (rel, TRUE, q->g, q->s, &budget))
            return FALSE;
          if ((int) q->g == q->self || label_get (rel, q->s, TRUE) == (int) q->g + 1)
            {
              q->best = q->g;
              q->best_depends = TRUE;
              return TRUE;
            }
          q->g_up = TRUE;
        }
      if (!related_walk (rel, FALSE, q->g, q->s, &budget))
        return FALSE;
      if (label_get (rel, q->s, FALSE) == (int) q->g + 1)
        {
          q->best = q->g;
          q->best_depends = FALSE;
          return TRUE;
        }
    }
  q->best = q->limit;
  return TRUE;
}

/* A member reached from @s (@up: along operands, so it reaches @s). */
static void
query_found (FbFusionRelated *rel, Query *q, const FbInstr *y, gboolean up)
{
  int m = GPOINTER_TO_INT (g_hash_table_lookup (rel->index, y)) - 1;
  if (m >= 0 && m < q->best)
    {
      q->best = m;
      q->best_depends = up;
    }
}

/* Goes on with the walks from @s, up along operands and down along users
 * within the bounds, in turns, for @budget steps; TRUE once they are over
 * (then @best is the answer) or have found the member the member walks
 * look at next. */
static gboolean
query_from_s (FbFusionRelated *rel, Query *q, int budget)
{
  GPtrArray **stack = rel->qstack;
  if (!q->started)
    {
      q->started = TRUE;
      if (stack[0] == NULL)
        {
          stack[0] = g_ptr_array_new ();
          stack[1] = g_ptr_array_new ();
        }
      q->mark = fb_instr_walk_begin (2);
      ((FbInstr *) q->s)->walk = q->mark + 1;
      g_ptr_array_add (stack[0], (gpointer) q->s);
      g_ptr_array_add (stack[1], (gpointer) q->s);
    }
  while (stack[0]->len > 0 || stack[1]->len > 0)
    {
      if (q->best <= (int) q->g)
        return TRUE;
      if (budget-- <= 0)
        return FALSE;
      for (int up = 1; up >= 0; up--)
        {
          GPtrArray *st = stack[!up];
          if (st->len == 0)
            continue;
          guint64 mark = q->mark + !up;
          FbInstr *x = g_ptr_array_steal_index_fast (st, st->len - 1);
          int n = up ? x->n_operands : x->n_users;
          for (int k = 0; k < n; k++)
            {
              FbInstr *y = up ? x->operands[k] : x->users[k];
              if (y == NULL || y->walk == mark || y->parent != rel->comp
                  || (up ? _fb_fusion_position (y) < rel->lo : _fb_fusion_position (y) > rel->hi))
                continue;
              y->walk = mark;
              query_found (rel, q, y, up);
              g_ptr_array_add (st, y);
            }
        }
    }
  return TRUE;
}

int
_fb_fusion_related_first (FbFusionRelated *rel, FbInstr *s, gboolean *s_depends)
{
  if (!rel->bounded)
    {
      for (guint g = 0; g < rel->group->len; g++)
        {
          FbInstr *o = g_ptr_array_index (rel->group, g);
          if (_fb_fusion_reaches (o, s))
            {
              *s_depends = TRUE;
              return g;
            }
          if (_fb_fusion_reaches (s, o))
            {
              *s_depends = FALSE;
              return g;
            }
        }
      return -1;
    }
  Query q = { .s = s, .self = GPOINTER_TO_INT (g_hash_table_lookup (rel->index, s)) - 1 };
  q.limit = rel->group->len;
  q.best = q.self >= 0 ? q.self : (int) q.limit;
  q.best_depends = TRUE;
  /* A certificate bounds the answer: only members before it are left to
   * rule out. */
  FbFusionHubs *hubs = rel->hubs;
  if (hubs != NULL && hubs->spent >= HUBS_WORTH * (guint64) MAX (rel->comp->n_instrs, 1))
    _fb_fusion_hubs_build (hubs);
  if (hubs != NULL && hubs->built && hubs_has (hubs, s))
    for (int g = 0; g < q.best; g++)
      {
        const FbInstr *m = g_ptr_array_index (rel->group, g);
        gboolean depends = _fb_fusion_hubs_lead (hubs, m, s);
        if (depends || _fb_fusion_hubs_lead (hubs, s, m))
          {
            q.best = g;
            q.best_depends = depends;
          }
      }
  /* The member walks serve every question about the group, the walks from
   * @s only this one, but they are often far shorter: a kernel at the end
   * of a step may read nothing made after the first member. Both go on in
   * turns, and whichever settles the answer first gives it. */
  guint64 steps = 0;
  for (int chunk = QUERY_CHUNK;; chunk = MIN (chunk * 2, QUERY_CHUNK_MAX))
    {
      steps += chunk;
      if (query_members (rel, &q, chunk))
        break;
      steps += chunk / QUERY_S_SHARE;
      if (query_from_s (rel, &q, chunk / QUERY_S_SHARE))
        break;
    }
  if (hubs != NULL && steps > QUERY_CHUNK)
    hubs->spent += steps;
  if (q.started)
    {
      g_ptr_array_set_size (rel->qstack[0], 0);
      g_ptr_array_set_size (rel->qstack[1], 0);
    }
  if (q.best >= (int) q.limit)
    return -1;
  *s_depends = q.best_depends;
  return q.best;
}

/* Positions: the instructions of a computation numbered in order, in
 * their scratch fields, with gaps, so that the few instructions a build
 * inserts get positions of their own without renumbering everything.
 * Only order matters: a < b when a stands before b. */
gintptr
_fb_fusion_position (const FbInstr *i)
{
  return (gintptr) i->scratch;
}

static void
set_position (FbInstr *i, gintptr pos)
{
  i->scratch = (gpointer) pos;
}

#define POSITION_GAP ((gintptr) 1 << 16)

static gintptr
position_gap (const FbComputation *comp)
{
  return MAX (1, MIN (POSITION_GAP, (G_MAXSSIZE / 4) / ((gintptr) comp->n_instrs + 2)));
}

/* Numbers @comp afresh; TRUE when every operand stands before its user. */
static gboolean
number (FbComputation *comp)
{
  gintptr gap = position_gap (comp), n = 0;
  for (FbInstr *i = comp->first; i; i = i->next)
    set_position (i, n += gap);
  for (FbInstr *i = comp->first; i; i = i->next)
    for (int k = 0; k < i->n_operands; k++)
      if (i->operands[k] && i->operands[k]->parent == comp && _fb_fusion_position (i->operands[k]) >= _fb_fusion_position (i))
        return FALSE;
  return TRUE;
}

/* Makes the positions of @comp current: kept from an earlier call during a
 * pass, else numbered now. */
void
_fb_fusion_ensure_numbered (FbComputation *comp)
{
  PassState *st = _fb_fusion_pass_state ();
  if (st != NULL && st->numbered == comp)
    return;
  gboolean topo = number (comp);
  if (st != NULL)
    {
      st->numbered = comp;
      st->topological = topo;
    }
}

/* The positions of @comp are no longer current. */
static void
positions_stale (FbComputation *comp)
{
  PassState *st = _fb_fusion_pass_state ();
  if (st != NULL && st->numbered == comp)
    st->numbered = NULL;
}

/* Does @comp have current positions and an order with operands first? */
gboolean
_fb_fusion_positions_topological (FbComputation *comp)
{
  PassState *st = _fb_fusion_pass_state ();
  return st != NULL && st->numbered == comp && st->topological;
}

/* Gives the @n instructions just inserted after @after (in order) positions
 * between it and the instruction after them. */
void
_fb_fusion_place_after (FbComputation *comp, FbInstr *after, FbInstr *const *instrs, int n)
{
  PassState *st = _fb_fusion_pass_state ();
  if (st == NULL || st->numbered != comp || n == 0)
    return;
  FbInstr *next = instrs[n - 1]->next;
  gintptr lo = _fb_fusion_position (after);
  gintptr step = next ? (_fb_fusion_position (next) - lo) / (n + 1) : position_gap (comp);
  if (step < 1 || (next == NULL && lo > G_MAXSSIZE / 2))
    {
      st->numbered = NULL;
      return;
    }
  for (int k = 0; k < n; k++)
    set_position (instrs[k], lo + step * (k + 1));
}

void
_fb_fusion_toposort (FbComputation *comp)
{
  _fb_fusion_ensure_numbered (comp);
  gboolean in_order = TRUE;
  for (FbInstr *i = comp->first; i && in_order; i = i->next)
    for (int k = 0; k < i->n_operands; k++)
      if (i->operands[k] && i->operands[k]->parent == comp && _fb_fusion_position (i->operands[k]) >= _fb_fusion_position (i))
        in_order = FALSE;
  if (in_order)
    return;

  g_autoptr (GHashTable) done = g_hash_table_new (NULL, NULL);
  g_autoptr (GPtrArray) order = g_ptr_array_new ();
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_autoptr (GArray) next_op = g_array_new (FALSE, FALSE, sizeof (int));
  gboolean sorted = TRUE;

  for (FbInstr *i = comp->first; i; i = i->next)
    {
      if (g_hash_table_contains (done, i))
        continue;
      /* Iterative depth-first walk over operands: emit after all operands. */
      g_ptr_array_add (stack, i);
      int zero = 0;
      g_array_append_val (next_op, zero);
      g_hash_table_add (done, i);
      while (stack->len > 0)
        {
          FbInstr *x = g_ptr_array_index (stack, stack->len - 1);
          int *k = &g_array_index (next_op, int, next_op->len - 1);
          if (*k < x->n_operands)
            {
              FbInstr *o = x->operands[(*k)++];
              if (o && o->parent == comp && !g_hash_table_contains (done, o))
                {
                  g_hash_table_add (done, o);
                  g_ptr_array_add (stack, o);
                  g_array_append_val (next_op, zero);
                  sorted = FALSE;
                }
              continue;
            }
          g_ptr_array_add (order, x);
          g_ptr_array_set_size (stack, stack->len - 1);
          g_array_set_size (next_op, next_op->len - 1);
        }
    }
  if (sorted)
    return;
  for (guint k = 0; k < order->len; k++)
    fb_instr_move_before (g_ptr_array_index (order, k), NULL);
  positions_stale (comp);
}

/* The same order _fb_fusion_toposort gives, computed only over the
 * instructions from @from to @to (in list order), when those are the only
 * ones out of order: every instruction before @from and after @to already
 * follows its operands, and none in between reads one after @to. The
 * depth-first walk then leaves everything outside the span where it is, so
 * only the span is sorted, and its instructions trade their positions. */
void
_fb_fusion_toposort_span (FbComputation *comp, FbInstr *from, FbInstr *to)
{
  g_autoptr (GPtrArray) span = g_ptr_array_new ();
  for (FbInstr *i = from; i; i = i->next)
    {
      g_ptr_array_add (span, i);
      if (i == to)
        break;
    }
  FbInstr *after = to->next;
  g_autoptr (GArray) slots = g_array_sized_new (FALSE, FALSE, sizeof (gintptr), span->len);
  /* A span instruction's scratch holds its index + 1 while it is pending,
   * 0 once emitted; its position is kept in @slots meanwhile. */
  for (guint k = 0; k < span->len; k++)
    {
      FbInstr *i = g_ptr_array_index (span, k);
      gintptr pos = _fb_fusion_position (i);
      g_array_append_val (slots, pos);
      set_position (i, (gintptr) k + 1);
    }
  g_autoptr (GPtrArray) order = g_ptr_array_sized_new (span->len);
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_autoptr (GArray) next_op = g_array_new (FALSE, FALSE, sizeof (int));
  g_autofree guint8 *pending = g_new (guint8, span->len);
  memset (pending, 1, span->len);
#define IN_SPAN(x) ((x) != NULL && (x)->parent == comp && _fb_fusion_position (x) >= 1 && _fb_fusion_position (x) <= (gintptr) span->len \
                    && g_ptr_array_index (span, _fb_fusion_position (x) - 1) == (x))
  for (guint s = 0; s < span->len; s++)
    {
      FbInstr *i = g_ptr_array_index (span, s);
      if (!pending[s])
        continue;
      pending[s] = 0;
      int zero = 0;
      g_ptr_array_add (stack, i);
      g_array_append_val (next_op, zero);
      while (stack->len > 0)
        {
          FbInstr *x = g_ptr_array_index (stack, stack->len - 1);
          int *k = &g_array_index (next_op, int, next_op->len - 1);
          if (*k < x->n_operands)
            {
              FbInstr *o = x->operands[(*k)++];
              if (IN_SPAN (o) && pending[_fb_fusion_position (o) - 1])
                {
                  pending[_fb_fusion_position (o) - 1] = 0;
                  g_ptr_array_add (stack, o);
                  g_array_append_val (next_op, zero);
                }
              continue;
            }
          g_ptr_array_add (order, x);
          g_ptr_array_set_size (stack, stack->len - 1);
          g_array_set_size (next_op, next_op->len - 1);
        }
    }
#undef IN_SPAN
  for (guint k = 0; k < order->len; k++)
    {
      FbInstr *x = g_ptr_array_index (order, k);
      fb_instr_move_before (x, after);
      set_position (x, g_array_index (slots, gintptr, k));
    }
}

