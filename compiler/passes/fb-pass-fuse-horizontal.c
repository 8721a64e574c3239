/* SPDX-License-Identifier: MIT
 *
 * fuse-horizontal: horizontal fusion. A training step ends with many small
 * kernels that do not depend on each other: one optimizer update per
 * weight. Each costs a launch, which for small tensors is more than the
 * work. This pass groups independent small loop kernels into one
 * multi-output kLoop fusion (a tuple root; no concatenation is needed), so
 * they run as one launch. Kernels whose results only leave the computation
 * (the new weights of a step) are grouped among themselves first, then the
 * other small kernels; a group is limited by its operands, instructions
 * and bytes.
 */
#include <string.h>

#include "fb-fusion.h"
#include "fb-passes-private.h"

#define MAX_KERNEL_BYTES (16.0 * 1024 * 1024)   /* "small": at most this much output */
#define MAX_GROUP_BYTES (64.0 * 1024 * 1024)    /* operands and outputs of one group */
#define MAX_GROUP_MEMBERS 64

typedef struct {
  GPtrArray    *members;
  FbFusionPlan *plan;      /* of the members, counting operands and instructions */
  GHashTable   *reach;     /* without an order: every instruction that depends on a member or a member depends on */
  double        bytes;
} Group;

static void
group_free (Group *g)
{
  g_ptr_array_unref (g->members);
  _fb_fusion_plan_free (g->plan);
  if (g->reach)
    g_hash_table_unref (g->reach);
  g_free (g);
}

static gboolean
is_small_kernel (const FbInstr *i)
{
  if (i->opcode == FB_OP_FUSION)
    {
      if (_fb_fusion_kind_of (i) != FB_FUSION_LOOP || !_fb_fusion_owns_computation (i))
        return FALSE;
    }
  else if (!_fb_fusion_is_loop_op (i) || i->n_operands == 0 || i->opcode == FB_OP_BITCAST
           || i->opcode == FB_OP_RESHAPE)
    return FALSE;
  return (double) fb_shape_bytes (i->shape) <= MAX_KERNEL_BYTES;
}

/* Does the result only leave the computation (through the root tuple)? */
static gboolean
feeds_only_root (const FbInstr *i)
{
  FbComputation *comp = i->parent;
  if (i->n_users == 0)
    return comp->root == i;
  for (int u = 0; u < i->n_users; u++)
    {
      const FbInstr *y = i->users[u];
      if (y->opcode == FB_OP_GET_TUPLE_ELEMENT)
        {
          if (!feeds_only_root (y))
            return FALSE;
        }
      else if (y != comp->root)
        return FALSE;
    }
  return TRUE;
}

/* Adds to @set everything reachable from @start along users (down) or operands (up). */
static void
mark (GHashTable *set, FbInstr *start, gboolean down)
{
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_ptr_array_add (stack, start);
  while (stack->len > 0)
    {
      FbInstr *x = g_ptr_array_steal_index_fast (stack, stack->len - 1);
      int n = down ? x->n_users : x->n_operands;
      for (int k = 0; k < n; k++)
        {
          FbInstr *y = down ? x->users[k] : x->operands[k];
          if (y && !g_hash_table_contains (set, y))
            {
              g_hash_table_add (set, y);
              g_ptr_array_add (stack, y);
            }
        }
    }
}

static double
kernel_bytes (FbInstr *k)
{
  double b = (double) fb_shape_bytes (k->shape);
  for (int i = 0; i < k->n_operands; i++)
    b += (double) fb_shape_bytes (k->operands[i]->shape);
  return b;
}

/* The answer of why_not_join when the reason is not wanted: a refusal,
 * without the cost of spelling it out (most kernels ask many groups). */
static char refused_silently[] = "";

/* Why @k may not join @g (@dependent: one depends on the other), or NULL
 * when it may. With @want_why FALSE only the fact of a refusal matters:
 * the answer is refused_silently, not an allocated reason. */
static char *
why_not_join (FbPassContext *ctx, Group *g, FbInstr *k, double k_bytes, gboolean dependent, gboolean want_why)
{
  if (dependent)
    return want_why ? g_strdup_printf ("it depends on the group or the group depends on it") : refused_silently;
  if (g->members->len >= MAX_GROUP_MEMBERS)
    return want_why ? g_strdup_printf ("the group already holds %d kernels", MAX_GROUP_MEMBERS) : refused_silently;
  double bytes = g->bytes + k_bytes;
  if (bytes > MAX_GROUP_BYTES)
    {
      if (!want_why)
        return refused_silently;
      g_autofree char *a = _fb_fusion_format_bytes (bytes);
      g_autofree char *b = _fb_fusion_format_bytes (MAX_GROUP_BYTES);
      return g_strdup_printf ("the group would move %s, over the %s limit", a, b);
    }
  char *why = NULL;
  if (!_fb_fusion_plan_within_limits_with (g->plan, k, ctx, want_why ? &why : NULL))
    return want_why ? why : refused_silently;
  return NULL;
}

static void
group_add (Group *g, FbInstr *k)
{
  g_ptr_array_add (g->members, k);
  _fb_fusion_plan_add (g->plan, k, FALSE);
  if (g->reach)
    {
      g_hash_table_add (g->reach, k);
      mark (g->reach, k, TRUE);
      mark (g->reach, k, FALSE);
    }
  g->bytes += kernel_bytes (k);
}

/* Which groups have a member upstream of each instruction, computed in
 * the order of the computation when that order has operands first and the
 * kernels come in it. Every member then stands before the kernel asking,
 * so the kernel cannot feed it: it depends on a group exactly when the
 * group's bit is set in its own set, the union over its operands of their
 * sets and the groups the operands belong to. */
typedef struct {
  GHashTable *index;     /* instruction -> its index + 1 */
  GPtrArray  *sets;      /* per index: guint64 words, or NULL when empty */
  GArray     *n_words;   /* per index */
  GArray     *group_of;  /* per index: group index, or -1 */
  FbInstr   **order;
  int         n;
  int         next;      /* the next instruction whose set is due */
} Upstream;

static void
upstream_clear (Upstream *up)
{
  g_clear_pointer (&up->index, g_hash_table_unref);
  g_clear_pointer (&up->sets, g_ptr_array_unref);
  g_clear_pointer (&up->n_words, g_array_unref);
  g_clear_pointer (&up->group_of, g_array_unref);
  g_clear_pointer (&up->order, g_free);
}

/* FALSE (and nothing kept) when @comp or @kernels are not in such an order. */
static gboolean
upstream_init (Upstream *up, FbComputation *comp, GPtrArray *kernels)
{
  memset (up, 0, sizeof *up);
  up->index = g_hash_table_new (NULL, NULL);
  up->n = 0;
  for (FbInstr *i = comp->first; i; i = i->next)
    up->n++;
  up->order = g_new0 (FbInstr *, MAX (up->n, 1));
  int n = 0;
  for (FbInstr *i = comp->first; i; i = i->next)
    {
      for (int k = 0; k < i->n_operands; k++)
        if (i->operands[k] && i->operands[k]->parent == comp && !g_hash_table_contains (up->index, i->operands[k]))
          {
            upstream_clear (up);
            return FALSE;
          }
      up->order[n] = i;
      g_hash_table_insert (up->index, i, GINT_TO_POINTER (++n));
    }
  int last = 0;
  for (guint k = 0; k < kernels->len; k++)
    {
      int at = GPOINTER_TO_INT (g_hash_table_lookup (up->index, g_ptr_array_index (kernels, k)));
      if (at <= last)
        {
          upstream_clear (up);
          return FALSE;
        }
      last = at;
    }
  up->sets = g_ptr_array_new_full (up->n, g_free);
  g_ptr_array_set_size (up->sets, up->n);
  up->n_words = g_array_new (FALSE, TRUE, sizeof (int));
  g_array_set_size (up->n_words, up->n);
  up->group_of = g_array_new (FALSE, FALSE, sizeof (int));
  for (int k = 0; k < up->n; k++)
    {
      int none = -1;
      g_array_append_val (up->group_of, none);
    }
  return TRUE;
}

static int
upstream_at (Upstream *up, FbInstr *i)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (up->index, i)) - 1;
}

/* Computes the sets of every instruction up to and including @k, with
 * @n_groups groups formed so far. */
static void
upstream_advance (Upstream *up, FbInstr *k, int n_groups)
{
  int end = upstream_at (up, k);
  int words = (n_groups + 63) / 64;
  for (; up->next <= end; up->next++)
    {
      FbInstr *x = up->order[up->next];
      guint64 *set = NULL;
      for (int o = 0; o < x->n_operands; o++)
        {
          int at = x->operands[o] ? upstream_at (up, x->operands[o]) : -1;
          if (at < 0)
            continue;
          guint64 *os = g_ptr_array_index (up->sets, at);
          int ow = g_array_index (up->n_words, int, at);
          int og = g_array_index (up->group_of, int, at);
          if (os == NULL && og < 0)
            continue;
          if (set == NULL)
            set = g_new0 (guint64, MAX (words, 1));
          for (int w = 0; w < ow; w++)
            set[w] |= os[w];
          if (og >= 0)
            set[og / 64] |= (guint64) 1 << (og % 64);
        }
      up->sets->pdata[up->next] = set;
      g_array_index (up->n_words, int, up->next) = set ? MAX (words, 1) : 0;
    }
}

/* Does the instruction at @at depend on @group? */
static gboolean
upstream_depends (Upstream *up, int at, int group)
{
  if (group / 64 >= g_array_index (up->n_words, int, at))
    return FALSE;
  guint64 *set = g_ptr_array_index (up->sets, at);
  return (set[group / 64] >> (group % 64)) & 1;
}

static void
fuse_class (FbPassContext *ctx, FbComputation *comp, GPtrArray *kernels, const char *what, gboolean *changed)
{
  g_autoptr (GPtrArray) groups = g_ptr_array_new_with_free_func ((GDestroyNotify) group_free);
  /* The groups that may still take a kernel, in order: a full group
   * refuses every kernel, and only the first refusal is spelled out. */
  g_autoptr (GArray) open = g_array_new (FALSE, FALSE, sizeof (guint));
  Upstream up;
  gboolean ordered = upstream_init (&up, comp, kernels);
  for (guint k = 0; k < kernels->len; k++)
    {
      FbInstr *kern = g_ptr_array_index (kernels, k);
      g_autofree char *first_why = NULL;
      FbInstr *first_head = NULL;
      gboolean joined = FALSE;
      double k_bytes = kernel_bytes (kern);
      int at = -1;
      if (ordered)
        {
          upstream_advance (&up, kern, groups->len);
          at = upstream_at (&up, kern);
        }
      for (guint oi = 0; oi <= open->len && !joined; oi++)
        {
          /* The first group is always asked, for the reason of a refusal. */
          guint gi = oi == 0 ? 0 : g_array_index (open, guint, oi - 1);
          if (gi >= groups->len || (oi > 0 && gi == 0))
            continue;
          Group *g = g_ptr_array_index (groups, gi);
          gboolean dependent = ordered ? upstream_depends (&up, at, gi) : g_hash_table_contains (g->reach, kern);
          char *why = why_not_join (ctx, g, kern, k_bytes, dependent, first_why == NULL);
          if (why == NULL)
            {
              group_add (g, kern);
              if (ordered)
                g_array_index (up.group_of, int, at) = gi;
              joined = TRUE;
              if (g->members->len >= MAX_GROUP_MEMBERS
                  || _fb_fusion_plan_n_instrs (g->plan) >= ctx->max_fusion_instructions)
                for (guint x = 0; x < open->len; x++)
                  if (g_array_index (open, guint, x) == gi)
                    {
                      g_array_remove_index (open, x);
                      break;
                    }
            }
          else if (first_why == NULL)
            {
              first_why = why;
              first_head = g_ptr_array_index (g->members, 0);
            }
          else if (why != refused_silently)
            g_free (why);
        }
      if (joined)
        continue;
      if (first_why)
        {
          FbInstr *pair[2] = { kern, first_head };
          fb_pass_decide (ctx, FB_DECISION_REFUSED, "not-independent-or-too-large", 2, pair,
                          "did not merge %%%s into the horizontal group of %%%s: %s",
                          kern->name, first_head->name, first_why);
        }
      Group *g = g_new0 (Group, 1);
      g->members = g_ptr_array_new ();
      g->plan = _fb_fusion_plan_new_counted (comp);
      if (!ordered)
        g->reach = g_hash_table_new (NULL, NULL);
      group_add (g, kern);
      if (ordered)
        g_array_index (up.group_of, int, at) = groups->len;
      guint gi = groups->len;
      g_array_append_val (open, gi);
      g_ptr_array_add (groups, g);
    }
  if (ordered)
    upstream_clear (&up);

  for (guint gi = 0; gi < groups->len; gi++)
    {
      Group *g = g_ptr_array_index (groups, gi);
      if (g->members->len < 2)
        continue;
      g_autoptr (FbFusionPlan) plan = _fb_fusion_plan_new (comp);
      for (guint i = 0; i < g->members->len; i++)
        _fb_fusion_plan_add (plan, g_ptr_array_index (g->members, i), FALSE);
      g_autofree char *names = _fb_fusion_names ((FbInstr *const *) g->members->pdata, g->members->len);
      int n = g->members->len;
      FbInstr *via = NULL;
      /* Groups built before this one may have tied it to itself. */
      if (!_fb_fusion_plan_is_convex (plan, &via))
        {
          FbInstr *head = g_ptr_array_index (g->members, 0);
          fb_pass_decide (ctx, FB_DECISION_REFUSED, "would-create-cycle", (int) g->members->len,
                          (FbInstr *const *) g->members->pdata,
                          "did not merge %s: after the groups merged before, %%%s would depend on %%%s and feed it",
                          names, via->name, head->name);
          continue;
        }
      FbInstr *fusion = _fb_fusion_plan_build (plan, FB_FUSION_LOOP);
      *changed = TRUE;
      fb_pass_decide (ctx, FB_DECISION_FUSED, "horizontal", 1, &fusion,
                      "merged %d independent %s %s into %%%s (kLoop, one launch instead of %d)",
                      n, what, names, fusion->name, n);
    }
}

static gboolean
run (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error)
{
  g_autoptr (GPtrArray) comps = _fb_fusion_control_computations (module);
  *changed = FALSE;
  _fb_fusion_pass_begin (module);
  for (guint c = 0; c < comps->len; c++)
    {
      FbComputation *comp = g_ptr_array_index (comps, c);
      g_autoptr (GPtrArray) outputs = g_ptr_array_new ();
      g_autoptr (GPtrArray) others = g_ptr_array_new ();
      for (FbInstr *i = comp->first; i; i = i->next)
        if (is_small_kernel (i))
          g_ptr_array_add (feeds_only_root (i) ? outputs : others, i);
      fuse_class (ctx, comp, outputs, "kernels producing results", changed);
      /* Kernels merged above are gone; the rest keep their pointers. */
      g_autoptr (GPtrArray) alive = g_ptr_array_new ();
      for (guint k = 0; k < others->len; k++)
        if (((FbInstr *) g_ptr_array_index (others, k))->parent == comp)
          g_ptr_array_add (alive, g_ptr_array_index (others, k));
      fuse_class (ctx, comp, alive, "small kernels", changed);
    }
  _fb_fusion_pass_end ();
  return TRUE;
}

const FbPass fb_pass_fuse_horizontal = {
  .name = "fuse-horizontal",
  .summary = "Merge independent small kernels, such as per-weight optimizer updates, into one launch",
  .explain =
    "Launching a kernel has a fixed cost, and a training step ends with one small update kernel "
    "per weight tensor. None of them needs another's result, so they can run side by side as a "
    "single kernel with one output per update. This pass groups independent small loop kernels "
    "that way, keeping each group under the limits on operands, instructions and bytes moved.",
  .run = run,
};
