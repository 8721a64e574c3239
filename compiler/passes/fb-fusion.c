/* SPDX-License-Identifier: MIT
 *
 * Fusion plans: measuring, checking and building a fusion from a set of
 * instructions of one computation. Every fusion pass describes what it wants
 * as a plan and lets this file do the rewiring, so that all of them produce
 * the same shape of HLO: a `fused_computation.N` whose parameters are the
 * distinct outside operands, clones of the members that keep their names,
 * ids and provenance, and a `fusion` instruction whose provenance is the
 * union of its members'. Members with users outside become outputs; with
 * more than one the root is a tuple and the users go through
 * get-tuple-element. The state a pass keeps on the side, the names in use
 * and the provenance lists of growing fusions are in fb-fusion-state.c.
 */
#include <string.h>

#include "fb-fusion.h"
#include "fb-fusion-private.h"

/* ----------------------------------------------------------- utilities */

const char *
_fb_fusion_kind_name (FbFusionKind kind)
{
  switch (kind)
    {
    case FB_FUSION_LOOP: return "kLoop";
    case FB_FUSION_INPUT: return "kInput";
    case FB_FUSION_OUTPUT: return "kOutput";
    case FB_FUSION_CUSTOM: return "kCustom";
    }
  return "kLoop";
}

FbFusionKind
_fb_fusion_kind_of (const FbInstr *instr)
{
  const char *k = fb_instr_str (instr, FB_A_KIND);
  if (k == NULL)
    return FB_FUSION_LOOP;
  if (strcmp (k, "kInput") == 0)
    return FB_FUSION_INPUT;
  if (strcmp (k, "kOutput") == 0)
    return FB_FUSION_OUTPUT;
  if (strcmp (k, "kCustom") == 0)
    return FB_FUSION_CUSTOM;
  return FB_FUSION_LOOP;
}

typedef struct {
  int      n_instrs;           /* of the computation when found */
  FbInstr *first;
  FbInstr *reduce;             /* its first reduce, or NULL */
} ReduceOf;

gboolean
_fb_fusion_is_multi_output (const FbInstr *instr)
{
  if (instr->opcode != FB_OP_FUSION)
    return FALSE;
  FbComputation *f = fb_instr_comp (instr, FB_A_CALLS);
  return f && f->root && f->root->opcode == FB_OP_TUPLE;
}

char *
_fb_fusion_format_bytes (double bytes)
{
  const double k = 1024.0, m = k * k, g = m * k;
  if (bytes < k)
    return g_strdup_printf ("%.0f B", bytes);
  if (bytes < m)
    return g_strdup_printf ("%.1f KiB", bytes / k);
  if (bytes < g)
    {
      double v = bytes / m;
      return v == (double) (int64_t) v ? g_strdup_printf ("%.0f MiB", v) : g_strdup_printf ("%.1f MiB", v);
    }
  return g_strdup_printf ("%.1f GiB", bytes / g);
}

char *
_fb_fusion_names (FbInstr *const *instrs, int n)
{
  GString *s = g_string_new (NULL);
  for (int i = 0; i < n; i++)
    {
      if (i > 0)
        g_string_append (s, i == n - 1 ? " and " : ", ");
      g_string_append_printf (s, "%%%s", instrs[i]->name);
    }
  return g_string_free (s, FALSE);
}

gboolean
_fb_fusion_is_loop_op (const FbInstr *instr)
{
  switch (instr->opcode)
    {
    case FB_OP_BROADCAST:
    case FB_OP_IOTA:
    case FB_OP_RESHAPE:
    case FB_OP_BITCAST:
    case FB_OP_TRANSPOSE:
    case FB_OP_SLICE:
    case FB_OP_PAD:
    case FB_OP_CONCATENATE:
    case FB_OP_CONVERT:
    case FB_OP_REVERSE:
      return fb_shape_is_array (instr->shape);
    case FB_OP_CONSTANT:
      /* Constants are fused as scalars; large ones stay buffers. */
      return fb_shape_is_array (instr->shape) && fb_shape_elements (instr->shape) == 1;
    case FB_OP_MAP:
    case FB_OP_STOCHASTIC_CONVERT:
      return FALSE;
    default:
      return fb_opcode_is_elementwise (instr->opcode) && fb_shape_is_array (instr->shape);
    }
}

int
_fb_fusion_recompute_weight (const FbInstr *instr)
{
  if (!_fb_fusion_is_loop_op (instr))
    return 0;
  switch (instr->opcode)
    {
    /* Transcendental functions and divisions cost many cycles per element. */
    case FB_OP_EXP: case FB_OP_EXPM1: case FB_OP_LOG: case FB_OP_LOG1P:
    case FB_OP_TANH: case FB_OP_LOGISTIC: case FB_OP_POWER: case FB_OP_SQRT:
    case FB_OP_RSQRT: case FB_OP_CBRT: case FB_OP_ERF: case FB_OP_SIN:
    case FB_OP_COS: case FB_OP_TAN: case FB_OP_ATAN2: case FB_OP_REMAINDER:
    case FB_OP_DIVIDE: case FB_OP_SINH: case FB_OP_COSH:
      return FB_FUSION_COSTLY_WEIGHT;
    default:
      return 1;
    }
}

static void
collect_control (FbComputation *comp, GHashTable *seen, GPtrArray *out)
{
  if (comp == NULL || g_hash_table_contains (seen, comp))
    return;
  g_hash_table_add (seen, comp);
  g_ptr_array_add (out, comp);
  for (FbInstr *i = comp->first; i; i = i->next)
    if (i->opcode == FB_OP_WHILE || i->opcode == FB_OP_CONDITIONAL || i->opcode == FB_OP_CALL)
      {
        FbComputation *called[64];
        int n = fb_instr_called (i, called, G_N_ELEMENTS (called));
        for (int k = 0; k < MIN (n, (int) G_N_ELEMENTS (called)); k++)
          collect_control (called[k], seen, out);
      }
}

GPtrArray *
_fb_fusion_control_computations (FbModule *module)
{
  GPtrArray *out = g_ptr_array_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  collect_control (module->entry, seen, out);
  return out;
}

/* ------------------------------------------------------------- users */

/* Is @o so small, or computed from so little, that a kernel reads it for
 * free? */
static gboolean
free_to_read (const FbInstr *o)
{
  if (!fb_shape_is_array (o->shape) || fb_shape_elements (o->shape) <= 1 || o->opcode == FB_OP_IOTA)
    return TRUE;
  return o->opcode == FB_OP_BROADCAST && o->n_operands == 1 && fb_shape_is_array (o->operands[0]->shape)
         && fb_shape_elements (o->operands[0]->shape) <= 1;
}

/* Bytes of the operands of @producer that @consumer does not read yet. */
static double
new_operand_bytes (const FbInstr *producer, const FbInstr *consumer)
{
  double bytes = 0;
  for (int i = 0; i < producer->n_operands; i++)
    {
      const FbInstr *o = producer->operands[i];
      if (o == NULL || o == consumer || free_to_read (o))
        continue;
      gboolean seen = FALSE;
      for (int k = 0; k < i && !seen; k++)
        seen = producer->operands[k] == o;
      for (int k = 0; k < consumer->n_operands && !seen; k++)
        seen = consumer->operands[k] == o;
      if (!seen)
        bytes += (double) fb_shape_bytes (o->shape);
    }
  return bytes;
}

gboolean
_fb_fusion_check_users (FbInstr *producer, FbInstr *consumer, FbPassContext *ctx,
                        gboolean *duplicate, char **why)
{
  *duplicate = FALSE;
  int k = producer->n_users;
  if (k <= 1)
    return TRUE;
  int weight = _fb_fusion_recompute_weight (producer);
  double each = (double) fb_shape_bytes (producer->shape);
  double extra = each * (k - 1) * weight;
  double limit = ctx ? ctx->max_recompute_bytes : 0;
  if (weight != 0 && extra <= limit)
    {
      /* The copy reads the producer's operands instead of the producer:
       * it must not read more than it saves, or chains of copies grow
       * through a whole graph, each kernel reading ever more tensors. */
      double reads = new_operand_bytes (producer, consumer);
      if (reads > each)
        {
          g_autofree char *each_s = _fb_fusion_format_bytes (each);
          g_autofree char *reads_s = _fb_fusion_format_bytes (reads);
          *why = g_strdup_printf ("the producer has %d users; a copy in %%%s would read %s of operands "
                                  "it does not read yet, to save reading %s",
                                  k, consumer->name, reads_s, each_s);
          return FALSE;
        }
      *duplicate = TRUE;
      return TRUE;
    }
  g_autofree char *each_s = _fb_fusion_format_bytes (each);
  if (weight == 0)
    {
      *why = g_strdup_printf ("the producer has %d users and would be computed %d times, %s each "
                              "(%s is never computed twice)", k, k, each_s, fb_opcode_name (producer->opcode));
      return FALSE;
    }
  g_autofree char *extra_s = _fb_fusion_format_bytes (extra);
  g_autofree char *limit_s = _fb_fusion_format_bytes (limit);
  if (weight > 1)
    *why = g_strdup_printf ("the producer has %d users and would be computed %d times, %s each "
                            "(%s counts %d times: %s of extra work, over the %s limit)",
                            k, k, each_s, fb_opcode_name (producer->opcode), weight, extra_s, limit_s);
  else
    *why = g_strdup_printf ("the producer has %d users and would be computed %d times, %s each "
                            "(%s of extra work, over the %s limit)", k, k, each_s, extra_s, limit_s);
  return FALSE;
}

/* --------------------------------------------------------------- plans */

enum { MEMBER = 1, DUPLICATE = 2 };

struct _FbFusionPlan {
  FbComputation *comp;
  GPtrArray     *members;
  GHashTable    *set;       /* instr -> MEMBER or DUPLICATE */
  /* Kept as members join, in counted plans only (NULL otherwise): how
   * many of the members measured read each instruction, the outside
   * operands among them and the instructions the members bring. */
  GHashTable    *readers;   /* instr -> count */
  int            n_ops;
  int            n_instrs;
  gboolean       uncounted; /* a member joined that the counts cannot follow */
};

FbFusionPlan *
_fb_fusion_plan_new (FbComputation *comp)
{
  FbFusionPlan *plan = g_new0 (FbFusionPlan, 1);
  plan->comp = comp;
  plan->members = g_ptr_array_new ();
  plan->set = g_hash_table_new (NULL, NULL);
  return plan;
}

FbFusionPlan *
_fb_fusion_plan_new_counted (FbComputation *comp)
{
  FbFusionPlan *plan = _fb_fusion_plan_new (comp);
  plan->readers = g_hash_table_new (NULL, NULL);
  return plan;
}

void
_fb_fusion_plan_free (FbFusionPlan *plan)
{
  if (plan == NULL)
    return;
  g_ptr_array_unref (plan->members);
  g_hash_table_unref (plan->set);
  if (plan->readers)
    g_hash_table_unref (plan->readers);
  g_free (plan);
}

static int member_n_instrs (const FbInstr *m);
static gboolean is_inner_gte (FbFusionPlan *plan, const FbInstr *m);

/* Brings the counts of a counted plan up to date with @instr, which has
 * just joined it. */
static void
count_member (FbFusionPlan *plan, FbInstr *instr)
{
  if (GPOINTER_TO_INT (g_hash_table_lookup (plan->readers, instr)) > 0)
    plan->n_ops--;
  /* A get-tuple-element that joins before its multi-output fusion would
   * stop being measured when the fusion joins: leave counting then. */
  if (instr->opcode == FB_OP_GET_TUPLE_ELEMENT && !is_inner_gte (plan, instr))
    plan->uncounted = TRUE;
  if (is_inner_gte (plan, instr))
    return;
  plan->n_instrs += member_n_instrs (instr);
  for (int i = 0; i < instr->n_operands; i++)
    {
      FbInstr *o = instr->operands[i];
      if (o == NULL || _fb_fusion_plan_has (plan, o))
        continue;
      gboolean again = FALSE;
      for (int k = 0; k < i && !again; k++)
        again = instr->operands[k] == o;
      if (again)
        continue;
      int n = GPOINTER_TO_INT (g_hash_table_lookup (plan->readers, o));
      if (n == 0)
        plan->n_ops++;
      g_hash_table_insert (plan->readers, o, GINT_TO_POINTER (n + 1));
    }
}

static int
member_kind (FbFusionPlan *plan, const FbInstr *i)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (plan->set, i));
}

gboolean
_fb_fusion_plan_has (FbFusionPlan *plan, const FbInstr *instr)
{
  return member_kind (plan, instr) != 0;
}

int
_fb_fusion_plan_size (FbFusionPlan *plan)
{
  return plan->members->len;
}

void
_fb_fusion_plan_add (FbFusionPlan *plan, FbInstr *instr, gboolean duplicate)
{
  if (g_hash_table_contains (plan->set, instr))
    return;
  g_hash_table_insert (plan->set, instr, GINT_TO_POINTER (duplicate ? DUPLICATE : MEMBER));
  g_ptr_array_add (plan->members, instr);
  if (plan->readers)
    count_member (plan, instr);
  if (_fb_fusion_is_multi_output (instr))
    for (int u = 0; u < instr->n_users; u++)
      _fb_fusion_plan_add (plan, instr->users[u], FALSE);
}

/* Is @m a get-tuple-element of a multi-output fusion in the plan? */
static gboolean
is_inner_gte (FbFusionPlan *plan, const FbInstr *m)
{
  return m->opcode == FB_OP_GET_TUPLE_ELEMENT && m->n_operands == 1
         && _fb_fusion_plan_has (plan, m->operands[0]) && _fb_fusion_is_multi_output (m->operands[0]);
}

gboolean
_fb_fusion_plan_is_inner_gte (FbFusionPlan *plan, const FbInstr *m)
{
  return is_inner_gte (plan, m);
}

static GHashTable *
outside_operands (FbFusionPlan *plan, GPtrArray *ordered)
{
  GHashTable *ops = g_hash_table_new (NULL, NULL);
  for (guint k = 0; k < plan->members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (plan->members, k);
      if (is_inner_gte (plan, m))
        continue;
      for (int i = 0; i < m->n_operands; i++)
        {
          FbInstr *o = m->operands[i];
          if (o && !_fb_fusion_plan_has (plan, o) && !g_hash_table_contains (ops, o))
            {
              g_hash_table_add (ops, o);
              if (ordered)
                g_ptr_array_add (ordered, o);
            }
        }
    }
  return ops;
}

int
_fb_fusion_plan_n_operands (FbFusionPlan *plan)
{
  g_autoptr (GHashTable) ops = outside_operands (plan, NULL);
  return g_hash_table_size (ops);
}

double
_fb_fusion_plan_operand_bytes (FbFusionPlan *plan)
{
  g_autoptr (GHashTable) ops = outside_operands (plan, NULL);
  GHashTableIter it;
  gpointer key;
  double bytes = 0;
  g_hash_table_iter_init (&it, ops);
  while (g_hash_table_iter_next (&it, &key, NULL))
    bytes += (double) fb_shape_bytes (((FbInstr *) key)->shape);
  return bytes;
}

int
_fb_fusion_plan_n_instrs (FbFusionPlan *plan)
{
  if (plan->readers && !plan->uncounted)
    return plan->n_instrs;
  int n = 0;
  for (guint k = 0; k < plan->members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (plan->members, k);
      if (is_inner_gte (plan, m))
        continue;
      if (m->opcode == FB_OP_FUSION)
        {
          FbComputation *f = fb_instr_comp (m, FB_A_CALLS);
          n += f ? f->n_instrs - f->n_params : 1;
        }
      else
        n++;
    }
  return n;
}

static gboolean
limits_check (FbPassContext *ctx, int ops, int n, char **why)
{
  if (ops > ctx->max_fusion_operands)
    {
      *why = g_strdup_printf ("the kernel would read %d operands, over the limit of %d", ops, ctx->max_fusion_operands);
      return FALSE;
    }
  if (n > ctx->max_fusion_instructions)
    {
      *why = g_strdup_printf ("the kernel would hold %d instructions, over the limit of %d", n,
                              ctx->max_fusion_instructions);
      return FALSE;
    }
  return TRUE;
}

gboolean
_fb_fusion_plan_within_limits (FbFusionPlan *plan, FbPassContext *ctx, char **why)
{
  int ops = _fb_fusion_plan_n_operands (plan);
  if (ops > ctx->max_fusion_operands)
    return limits_check (ctx, ops, 0, why);
  return limits_check (ctx, ops, _fb_fusion_plan_n_instrs (plan), why);
}

/* The instructions @instr would bring into @plan, itself and, for a
 * multi-output fusion, its users, as _fb_fusion_plan_add adds them. */
static void
joining (FbFusionPlan *plan, FbInstr *instr, GPtrArray *out)
{
  if (_fb_fusion_plan_has (plan, instr))
    return;
  for (guint k = 0; k < out->len; k++)
    if (g_ptr_array_index (out, k) == instr)
      return;
  g_ptr_array_add (out, instr);
  if (_fb_fusion_is_multi_output (instr))
    for (int u = 0; u < instr->n_users; u++)
      joining (plan, instr->users[u], out);
}

/* The common case of _fb_fusion_plan_within_limits_with: a counted plan
 * and an @instr outside it that brings no other instruction. */
static gboolean
within_limits_with_one (FbFusionPlan *plan, FbInstr *instr, FbPassContext *ctx, char **why)
{
  int n = plan->n_instrs + member_n_instrs (instr);
  if (why == NULL && n > ctx->max_fusion_instructions)
    return FALSE;
  int ops = plan->n_ops - (GPOINTER_TO_INT (g_hash_table_lookup (plan->readers, instr)) > 0 ? 1 : 0);
  for (int i = 0; i < instr->n_operands; i++)
    {
      FbInstr *o = instr->operands[i];
      if (o == NULL || o == instr || _fb_fusion_plan_has (plan, o)
          || GPOINTER_TO_INT (g_hash_table_lookup (plan->readers, o)) > 0)
        continue;
      gboolean again = FALSE;
      for (int k = 0; k < i && !again; k++)
        again = instr->operands[k] == o;
      if (!again)
        ops++;
    }
  if (why == NULL)
    return ops <= ctx->max_fusion_operands && n <= ctx->max_fusion_instructions;
  if (ops > ctx->max_fusion_operands)
    return limits_check (ctx, ops, 0, why);
  return limits_check (ctx, ops, n, why);
}

gboolean
_fb_fusion_plan_within_limits_with (FbFusionPlan *plan, FbInstr *instr, FbPassContext *ctx, char **why)
{
  if (plan->readers && !plan->uncounted && !_fb_fusion_is_multi_output (instr)
      && instr->opcode != FB_OP_GET_TUPLE_ELEMENT && !_fb_fusion_plan_has (plan, instr))
    return within_limits_with_one (plan, instr, ctx, why);
  g_autofree char *discard = NULL;
  if (why == NULL)
    why = &discard;
  g_autoptr (GPtrArray) join = g_ptr_array_new ();
  joining (plan, instr, join);
  gboolean counted = plan->readers && !plan->uncounted;
  for (guint k = 0; k < join->len && counted; k++)
    {
      FbInstr *j = g_ptr_array_index (join, k);
      counted = j->opcode != FB_OP_GET_TUPLE_ELEMENT || j->n_operands != 1
                || (g_ptr_array_find (join, j->operands[0], NULL) && _fb_fusion_is_multi_output (j->operands[0]));
    }
  if (!counted)
    {
      /* Measure a copy with @instr in it. */
      g_autoptr (FbFusionPlan) copy = _fb_fusion_plan_new (plan->comp);
      for (guint k = 0; k < plan->members->len; k++)
        {
          FbInstr *m = g_ptr_array_index (plan->members, k);
          g_hash_table_insert (copy->set, m, g_hash_table_lookup (plan->set, m));
          g_ptr_array_add (copy->members, m);
        }
      _fb_fusion_plan_add (copy, instr, FALSE);
      return _fb_fusion_plan_within_limits (copy, ctx, why);
    }
  /* Every joining get-tuple-element reads a joining multi-output fusion,
   * so it brings nothing and reads nothing from outside. */
  int ops = plan->n_ops, n = plan->n_instrs;
  g_autoptr (GHashTable) fresh = g_hash_table_new (NULL, NULL);
  for (guint k = 0; k < join->len; k++)
    {
      FbInstr *j = g_ptr_array_index (join, k);
      if (GPOINTER_TO_INT (g_hash_table_lookup (plan->readers, j)) > 0)
        ops--;
      if (j->opcode == FB_OP_GET_TUPLE_ELEMENT)
        continue;
      n += member_n_instrs (j);
      for (int i = 0; i < j->n_operands; i++)
        {
          FbInstr *o = j->operands[i];
          if (o == NULL || _fb_fusion_plan_has (plan, o) || g_ptr_array_find (join, o, NULL)
              || GPOINTER_TO_INT (g_hash_table_lookup (plan->readers, o)) > 0 || g_hash_table_contains (fresh, o))
            continue;
          g_hash_table_add (fresh, o);
          ops++;
        }
    }
  if (ops > ctx->max_fusion_operands)
    return limits_check (ctx, ops, 0, why);
  return limits_check (ctx, ops, n, why);
}

/* Instructions @m brings into a fused computation. */
static int
member_n_instrs (const FbInstr *m)
{
  if (m->opcode == FB_OP_FUSION)
    {
      FbComputation *f = fb_instr_comp (m, FB_A_CALLS);
      return f ? f->n_instrs - f->n_params : 1;
    }
  return 1;
}

/* _fb_fusion_plan_n_operands of the plan {@p, @consumer}, where @p is an
 * operand of @consumer, neither is a multi-output fusion, and
 * @consumer_ops holds the operands of @consumer. */
static int
pair_n_operands (FbInstr *consumer, FbInstr *p, GHashTable *consumer_ops)
{
  int n = (int) g_hash_table_size (consumer_ops) - (g_hash_table_contains (consumer_ops, p) ? 1 : 0);
  if (g_hash_table_contains (consumer_ops, consumer))
    n--;
  for (int i = 0; i < p->n_operands; i++)
    {
      FbInstr *o = p->operands[i];
      if (o == NULL || o == p || o == consumer || g_hash_table_contains (consumer_ops, o))
        continue;
      gboolean again = FALSE;
      for (int k = 0; k < i && !again; k++)
        again = p->operands[k] == o;
      if (!again)
        n++;
    }
  return n;
}

static gintptr
plan_last (FbFusionPlan *plan)
{
  gintptr last = 0;
  for (guint k = 0; k < plan->members->len; k++)
    last = MAX (last, _fb_fusion_position (g_ptr_array_index (plan->members, k)));
  return last;
}

/* Does @path, the outside instructions of a way found before from a member
 * of @plan back to one, still lead that way, within the span of the plan? */
static gboolean
path_still_closes (FbFusionPlan *plan, GPtrArray *path)
{
  _fb_fusion_ensure_numbered (plan->comp);
  gintptr last = plan_last (plan);
  /* Members (not duplicates) carry walk number @member. */
  guint64 member = fb_instr_walk_begin (1);
  for (guint k = 0; k < plan->members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (plan->members, k);
      if (member_kind (plan, m) == MEMBER)
        m->walk = member;
    }
  for (guint k = 0; k < path->len; k++)
    {
      FbInstr *x = g_ptr_array_index (path, k);
      if (x->parent != plan->comp || _fb_fusion_position (x) > last || x->walk == member)
        return FALSE;
    }
  /* Each step of the way is an operand edge: from a member, along the
   * path, back into a member. */
  FbInstr *head = g_ptr_array_index (path, 0);
  gboolean from_member = FALSE;
  for (int i = 0; i < head->n_operands && !from_member; i++)
    from_member = head->operands[i] != NULL && head->operands[i]->walk == member;
  if (!from_member)
    return FALSE;
  for (guint k = 0; k + 1 < path->len; k++)
    {
      FbInstr *x = g_ptr_array_index (path, k), *next = g_ptr_array_index (path, k + 1);
      gboolean linked = FALSE;
      for (int i = 0; i < next->n_operands && !linked; i++)
        linked = next->operands[i] == x;
      if (!linked)
        return FALSE;
    }
  FbInstr *tail = g_ptr_array_index (path, path->len - 1);
  for (int u = 0; u < tail->n_users; u++)
    if (tail->users[u]->walk == member)
      return TRUE;
  return FALSE;
}

/* The way a two-ended walk found: from the user of a member along the
 * forward marks to @f (NULL for none), then from @b (NULL for none) along
 * the backward marks to the operand of a member, which it returns. Each
 * walk's start points at itself. */
static FbInstr *
way_found (FbInstr *f, FbInstr *b, GPtrArray *path)
{
  if (path != NULL)
    {
      g_ptr_array_set_size (path, 0);
      for (FbInstr *w = f; w != NULL; w = w->walk_from == w ? NULL : w->walk_from)
        g_ptr_array_add (path, w);
      for (guint a = 0, z = path->len ? path->len - 1 : 0; a < z; a++, z--)
        {
          gpointer t = path->pdata[a];
          path->pdata[a] = path->pdata[z];
          path->pdata[z] = t;
        }
    }
  FbInstr *tail = f;
  for (FbInstr *w = b; w != NULL; w = w->walk_from == w ? NULL : w->walk_from)
    {
      if (path != NULL)
        g_ptr_array_add (path, w);
      tail = w;
    }
  return tail;
}

/* plan_is_convex in an order with operands first: a walk forward from the
 * outside users of members, up to @bound, and one backward from the
 * outside operands of members at or after @first_user, taking turns; the
 * plan closes a cycle exactly when they meet, and whichever has less to
 * see settles a "no" alone. Instructions the walks reach carry @fw or
 * @bw, the members @member. */
static gboolean
convex_two_ended (FbFusionPlan *plan, guint64 member, guint64 fw, GPtrArray *fs, gintptr first_user,
                  gintptr bound, FbInstr **via, GPtrArray *path)
{
  guint64 bw = fw + 1;
  g_autoptr (GPtrArray) bs = g_ptr_array_new ();
  FbInstr *f = NULL, *b = NULL;
  for (guint k = 0; k < plan->members->len && f == NULL && b == NULL; k++)
    {
      FbInstr *m = g_ptr_array_index (plan->members, k);
      if (m->walk != member)
        continue;
      for (int i = 0; i < m->n_operands; i++)
        {
          FbInstr *o = m->operands[i];
          if (o == NULL || o->walk == member || o->walk == bw || o->parent != plan->comp
              || _fb_fusion_position (o) < first_user || _fb_fusion_position (o) > bound)
            continue;
          if (o->walk == fw)
            {
              f = o;   /* a user of a member and an operand of one */
              break;
            }
          o->walk = bw;
          o->walk_from = o;
          g_ptr_array_add (bs, o);
        }
    }
  while (f == NULL && b == NULL && fs->len > 0 && bs->len > 0)
    {
      FbInstr *x = g_ptr_array_steal_index_fast (fs, fs->len - 1);
      if (x->parent == plan->comp && _fb_fusion_position (x) <= bound)
        for (int u = 0; u < x->n_users; u++)
          {
            FbInstr *y = x->users[u];
            if (y->walk == member)
              {
                f = x;
                break;
              }
            if (y->walk == bw)
              {
                f = x;
                b = y;
                break;
              }
            if (y->walk != fw)
              {
                y->walk = fw;
                y->walk_from = x;
                g_ptr_array_add (fs, y);
              }
          }
      if (f != NULL)
        break;
      FbInstr *z = g_ptr_array_steal_index_fast (bs, bs->len - 1);
      for (int i = 0; i < z->n_operands; i++)
        {
          FbInstr *o = z->operands[i];
          if (o == NULL || o->walk == bw || o->parent != plan->comp || _fb_fusion_position (o) < first_user)
            continue;
          if (o->walk == member)
            {
              b = z;   /* z reads a member: a user of one, on its way back */
              break;
            }
          if (o->walk == fw)
            {
              f = o;
              b = z;
              break;
            }
          o->walk = bw;
          o->walk_from = z;
          g_ptr_array_add (bs, o);
        }
    }
  if (f == NULL && b == NULL)
    return TRUE;
  FbInstr *last = way_found (f, b, path);
  if (via)
    *via = last;
  return FALSE;
}

/* _fb_fusion_plan_is_convex; when the plan is not convex and @path is not
 * NULL, fills it with the outside instructions of the way found, from the
 * user of a member to @via. */
static gboolean
plan_is_convex (FbFusionPlan *plan, FbInstr **via, GPtrArray *path)
{
  _fb_fusion_ensure_numbered (plan->comp);
  /* Members (not duplicates) carry walk number @member, the instructions
   * reached @seen, with the one each was reached from (itself for the
   * users of members). */
  guint64 member = fb_instr_walk_begin (3), seen = member + 1;
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  gintptr last = plan_last (plan);
  for (guint k = 0; k < plan->members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (plan->members, k);
      if (member_kind (plan, m) == MEMBER)
        m->walk = member;
    }

  /* A way back from an outside user u of a member enters a member through
   * an outside operand o, and o stands at or after u. When every outside
   * operand stands before every outside user, there is none. */
  gintptr last_operand = G_MINSSIZE, first_user = G_MAXSSIZE;
  for (guint k = 0; k < plan->members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (plan->members, k);
      if (m->walk != member)
        continue;
      for (int i = 0; i < m->n_operands; i++)
        if (m->operands[i] && m->operands[i]->walk != member && m->operands[i]->parent == plan->comp)
          last_operand = MAX (last_operand, _fb_fusion_position (m->operands[i]));
      for (int u = 0; u < m->n_users; u++)
        if (m->users[u]->walk != member && m->users[u]->parent == plan->comp)
          first_user = MIN (first_user, _fb_fusion_position (m->users[u]));
    }
  if (last_operand < first_user)
    return TRUE;

  /* Walk forward from every outside user of a member that leaves the
   * fusion; reaching a member again means the fusion would feed itself. */
  for (guint k = 0; k < plan->members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (plan->members, k);
      if (m->walk != member)
        continue;
      for (int u = 0; u < m->n_users; u++)
        {
          FbInstr *y = m->users[u];
          if (y->walk != member && y->walk != seen)
            {
              y->walk = seen;
              y->walk_from = y;
              g_ptr_array_add (stack, y);
            }
        }
    }
  /* In an order with operands first, a way back ends at an outside operand
   * of a member that stands at or after the first outside user and can be
   * reached: itself such a user, or reading something at or after it.
   * Nothing after the last of those leads back, so the walk stops there;
   * what it skips could not have changed the way it finds. */
  gintptr bound = last;
  if (_fb_fusion_positions_topological (plan->comp))
    {
      bound = G_MINSSIZE;
      for (guint k = 0; k < plan->members->len; k++)
        {
          FbInstr *m = g_ptr_array_index (plan->members, k);
          if (m->walk != member)
            continue;
          for (int i = 0; i < m->n_operands; i++)
            {
              FbInstr *o = m->operands[i];
              if (o == NULL || o->walk == member || o->parent != plan->comp || _fb_fusion_position (o) < first_user
                  || _fb_fusion_position (o) <= bound)
                continue;
              gboolean reachable = o->walk == seen;
              for (int j = 0; j < o->n_operands && !reachable; j++)
                reachable = o->operands[j] && o->operands[j]->parent == plan->comp
                            && _fb_fusion_position (o->operands[j]) >= first_user;
              if (reachable)
                bound = _fb_fusion_position (o);
            }
        }
      if (bound == G_MINSSIZE)
        return TRUE;
      bound = MIN (bound, last);
      return convex_two_ended (plan, member, seen, stack, first_user, bound, via, path);
    }
  while (stack->len > 0)
    {
      FbInstr *x = g_ptr_array_steal_index_fast (stack, stack->len - 1);
      if (x->parent != plan->comp || _fb_fusion_position (x) > bound)
        continue;
      for (int u = 0; u < x->n_users; u++)
        {
          FbInstr *y = x->users[u];
          if (y->walk == member)
            {
              way_found (x, NULL, path);
              if (via)
                *via = x;
              return FALSE;
            }
          if (y->walk != seen)
            {
              y->walk = seen;
              y->walk_from = x;
              g_ptr_array_add (stack, y);
            }
        }
    }
  return TRUE;
}

gboolean
_fb_fusion_plan_is_convex (FbFusionPlan *plan, FbInstr **via)
{
  return plan_is_convex (plan, via, NULL);
}

/* ------------------------------------------------------------ building */

typedef struct {
  FbFusionPlan  *plan;
  FbComputation *fcomp;
  GHashTable    *map;        /* outer member -> inner clone */
  GHashTable    *params;     /* outer operand -> inner parameter */
  GHashTable    *names;      /* names used in the fused computation */
  GHashTable    *suffixes;   /* name -> the last N of NAME.N given out */
  GHashTable    *outs;       /* multi-output member fusion -> FbInstr** of inner outputs */
  GPtrArray     *outer_ops;  /* in parameter order */
  GPtrArray     *param_list;
  FbInstr       *body_first;
} Builder;

static const char *
unique_name (Builder *b, const char *name)
{
  FbArena *arena = b->fcomp->module->arena;
  if (!g_hash_table_contains (b->names, name))
    {
      char *s = fb_arena_strdup (arena, name);
      g_hash_table_add (b->names, s);
      return s;
    }
  /* The first free NAME.N: names are only ever added during a build, so
   * the numbers tried for @name before stay taken, and a build that merges
   * many kernels, each with its own "param_0", does not try them all again
   * for every one. */
  gpointer tried = g_hash_table_lookup (b->suffixes, name);
  for (int n = GPOINTER_TO_INT (tried) + 1;; n++)
    {
      g_autofree char *t = g_strdup_printf ("%s.%d", name, n);
      if (!g_hash_table_contains (b->names, t))
        {
          char *s = fb_arena_strdup (arena, t);
          g_hash_table_add (b->names, s);
          g_hash_table_insert (b->suffixes, tried != NULL ? (char *) name : fb_arena_strdup (arena, name),
                                GINT_TO_POINTER (n));
          return s;
        }
    }
}

static FbInstr *
value_of (Builder *b, FbInstr *outer)
{
  FbInstr *v = g_hash_table_lookup (b->map, outer);
  if (v)
    return v;
  v = g_hash_table_lookup (b->params, outer);
  if (v)
    return v;
  int k = b->param_list->len;
  g_autofree char *name = g_strdup_printf ("param_%d", k);
  FbInstr *p = fb_instr_new (b->fcomp, b->body_first, FB_OP_PARAMETER, outer->shape, 0, NULL,
                             unique_name (b, name));
  p->parameter_number = k;
  g_ptr_array_add (b->param_list, p);
  g_ptr_array_add (b->outer_ops, outer);
  g_hash_table_insert (b->params, outer, p);
  return p;
}

/* A copy of @src in @comp before @before, reading @ops. */
static FbInstr *
copy_instr (FbComputation *comp, FbInstr *before, FbInstr *src, FbInstr **ops, const char *name,
            gboolean keep_id)
{
  FbArena *arena = comp->module->arena;
  FbInstr *c = fb_instr_new (comp, before, src->opcode, src->shape, src->n_operands, ops, name);
  if (src->n_attrs > 0)
    {
      c->attrs = fb_arena_memdup (arena, src->attrs, sizeof (FbAttr) * src->n_attrs);
      c->n_attrs = c->attrs_cap = src->n_attrs;
    }
  c->parameter_number = src->parameter_number;
  c->literal = src->literal;
  c->literal_elided = src->literal_elided;
  c->opcode_suffix = src->opcode_suffix;
  c->loc = src->loc;
  if (src->n_prov > 0 && src->opcode == FB_OP_FUSION)
    {
      c->prov = fb_arena_memdup (arena, src->prov, sizeof (int64_t) * src->n_prov);
      c->n_prov = src->n_prov;
    }
  else if (src->n_prov > 0)
    {
      /* The provenance of a plain instruction is never written in place
       * (unions make new arrays), so the copy shares it: a producer cloned
       * into many kernels may stand for thousands of originals. */
      c->prov = src->prov;
      c->n_prov = src->n_prov;
    }
  if (keep_id)
    c->id = src->id;
  return c;
}

static FbInstr *
clone_instr (Builder *b, FbInstr *src, FbInstr **ops, gboolean keep_id)
{
  FbInstr *c = copy_instr (b->fcomp, NULL, src, ops, unique_name (b, src->name), keep_id);
  if (b->body_first == NULL)
    b->body_first = c;
  return c;
}

static void
inline_fusion (Builder *b, FbInstr *m, gboolean keep_ids)
{
  FbComputation *sub = fb_instr_comp (m, FB_A_CALLS);
  g_autoptr (GHashTable) local = g_hash_table_new (NULL, NULL);
  gboolean multi = _fb_fusion_is_multi_output (m);
  for (int p = 0; p < sub->n_params; p++)
    if (sub->params[p] && p < m->n_operands)
      g_hash_table_insert (local, sub->params[p], value_of (b, m->operands[p]));
  for (FbInstr *x = sub->first; x; x = x->next)
    {
      if (x->opcode == FB_OP_PARAMETER || (multi && x == sub->root))
        continue;
      g_autofree FbInstr **ops = g_new0 (FbInstr *, MAX (x->n_operands, 1));
      for (int i = 0; i < x->n_operands; i++)
        ops[i] = g_hash_table_lookup (local, x->operands[i]);
      g_hash_table_insert (local, x, clone_instr (b, x, ops, keep_ids));
    }
  if (multi)
    {
      FbInstr **outs = fb_arena_new0 (b->fcomp->module->arena, FbInstr *, MAX (sub->root->n_operands, 1));
      for (int i = 0; i < sub->root->n_operands; i++)
        outs[i] = g_hash_table_lookup (local, sub->root->operands[i]);
      g_hash_table_insert (b->outs, m, outs);
    }
  else
    g_hash_table_insert (b->map, m, g_hash_table_lookup (local, sub->root));
}

static gint
by_position (gconstpointer a, gconstpointer b)
{
  gintptr x = _fb_fusion_position (*(FbInstr **) a), y = _fb_fusion_position (*(FbInstr **) b);
  return (x > y) - (x < y);
}

/* After a build in an order with operands first, the only instructions out
 * of order are the users of @placed (the fusion and its get-tuple-elements,
 * in order, standing together) that stand before them. Sorting the stretch
 * from the first of those users to the last of @placed depth-first over
 * operands, as _fb_fusion_toposort_span does, leaves every instruction where
 * it is except @placed and what they depend on within the stretch: the
 * walk from each such user, in order, emits the ones it still needs right
 * before it. This makes the same moves, walking only what moves. */
static void
pull_forward (FbComputation *comp, FbInstr *const *placed, int n_placed)
{
  gintptr start = _fb_fusion_position (placed[0]), end = _fb_fusion_position (placed[n_placed - 1]);
  guint64 late_mark = fb_instr_walk_begin (2), pulled = late_mark + 1;
  g_autoptr (GPtrArray) late = g_ptr_array_new ();
  for (int g = 0; g < n_placed; g++)
    for (int u = 0; u < placed[g]->n_users; u++)
      {
        FbInstr *y = placed[g]->users[u];
        if (y->parent == comp && _fb_fusion_position (y) < start && y->walk != late_mark)
          {
            y->walk = late_mark;
            g_ptr_array_add (late, y);
          }
      }
  g_ptr_array_sort (late, by_position);

  /* Every move, decided on the positions as they stand: per late user, the
   * instructions it pulls, then the user itself (marked late_mark). */
  g_autoptr (GPtrArray) moves = g_ptr_array_new ();
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_autoptr (GArray) next_op = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint l = 0; l < late->len; l++)
    {
      FbInstr *u = g_ptr_array_index (late, l);
      gintptr cur = _fb_fusion_position (u);
      int zero = 0;
      g_ptr_array_add (stack, u);
      g_array_append_val (next_op, zero);
      while (stack->len > 0)
        {
          FbInstr *x = g_ptr_array_index (stack, stack->len - 1);
          int *k = &g_array_index (next_op, int, next_op->len - 1);
          if (*k < x->n_operands)
            {
              FbInstr *o = x->operands[(*k)++];
              if (o != NULL && o->parent == comp && o->walk != pulled && _fb_fusion_position (o) > cur
                  && _fb_fusion_position (o) <= end)
                {
                  o->walk = pulled;
                  g_ptr_array_add (stack, o);
                  g_array_append_val (next_op, zero);
                }
              continue;
            }
          if (x != u)
            g_ptr_array_add (moves, x);
          g_ptr_array_set_size (stack, stack->len - 1);
          g_array_set_size (next_op, next_op->len - 1);
        }
      g_ptr_array_add (moves, u);
    }

  guint k = 0;
  while (k < moves->len)
    {
      guint first = k;
      while (k < moves->len && ((FbInstr *) g_ptr_array_index (moves, k))->walk != late_mark)
        k++;
      FbInstr *u = g_ptr_array_index (moves, k++);
      if (k - 1 == first)
        continue;
      for (guint m = first; m < k - 1; m++)
        fb_instr_move_before (g_ptr_array_index (moves, m), u);
      FbInstr *head = g_ptr_array_index (moves, first);
      _fb_fusion_place_after (comp, head->prev, (FbInstr *const *) moves->pdata + first, (int) (k - 1 - first));
    }
}

FbInstr *
_fb_fusion_plan_build (FbFusionPlan *plan, FbFusionKind kind)
{
  g_return_val_if_fail (plan->members->len > 0, NULL);
  FbComputation *comp = plan->comp;
  FbModule *module = comp->module;
  FbArena *arena = module->arena;
  _fb_fusion_ensure_numbered (comp);
  gboolean was_topological = _fb_fusion_positions_topological (comp);
  g_autoptr (GPtrArray) members = g_ptr_array_copy (plan->members, NULL, NULL);
  g_ptr_array_sort (members, by_position);

  Builder b = { 0 };
  b.plan = plan;
  b.fcomp = fb_module_add_computation (module, "fused_computation");
  {
    PassState *st = _fb_fusion_pass_state ();
    if (st != NULL)
      _fb_fusion_name_count (st->comp_names, b.fcomp->name, +1);
  }
  b.fcomp->is_fusion = TRUE;
  b.map = g_hash_table_new (NULL, NULL);
  b.params = g_hash_table_new (NULL, NULL);
  b.names = g_hash_table_new (g_str_hash, g_str_equal);
  b.suffixes = g_hash_table_new (g_str_hash, g_str_equal);
  b.outs = g_hash_table_new (NULL, NULL);
  b.outer_ops = g_ptr_array_new ();
  b.param_list = g_ptr_array_new ();

  for (guint k = 0; k < members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (members, k);
      gboolean keep_id = member_kind (plan, m) == MEMBER;
      if (is_inner_gte (plan, m))
        {
          FbInstr **outs = g_hash_table_lookup (b.outs, m->operands[0]);
          int64_t index = fb_instr_int (m, FB_A_INDEX, 0);
          if (outs)
            g_hash_table_insert (b.map, m, outs[index]);
          continue;
        }
      if (m->opcode == FB_OP_FUSION && fb_instr_comp (m, FB_A_CALLS) != NULL)
        {
          inline_fusion (&b, m, keep_id);
          continue;
        }
      g_autofree FbInstr **ops = g_new0 (FbInstr *, MAX (m->n_operands, 1));
      for (int i = 0; i < m->n_operands; i++)
        ops[i] = value_of (&b, m->operands[i]);
      g_hash_table_insert (b.map, m, clone_instr (&b, m, ops, keep_id));
    }

  /* Outputs: members read by something that stays outside. */
  g_autoptr (GPtrArray) outputs = g_ptr_array_new ();
  for (guint k = 0; k < members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (members, k);
      if (member_kind (plan, m) != MEMBER || _fb_fusion_is_multi_output (m))
        continue;
      gboolean out = comp->root == m;
      for (int u = 0; u < m->n_users && !out; u++)
        out = member_kind (plan, m->users[u]) != MEMBER;
      if (out)
        g_ptr_array_add (outputs, m);
    }
  if (outputs->len == 0)
    g_ptr_array_add (outputs, g_ptr_array_index (members, members->len - 1));

  FbShape *shape;
  if (outputs->len == 1)
    {
      b.fcomp->root = g_hash_table_lookup (b.map, g_ptr_array_index (outputs, 0));
      shape = b.fcomp->root->shape;
    }
  else
    {
      g_autofree FbInstr **ops = g_new0 (FbInstr *, outputs->len);
      g_autofree FbShape **shapes = g_new0 (FbShape *, outputs->len);
      for (guint k = 0; k < outputs->len; k++)
        {
          ops[k] = g_hash_table_lookup (b.map, g_ptr_array_index (outputs, k));
          shapes[k] = ops[k]->shape;
        }
      shape = fb_shape_new_tuple (arena, outputs->len, shapes);
      b.fcomp->root = fb_instr_new (b.fcomp, NULL, FB_OP_TUPLE, shape, outputs->len, ops, unique_name (&b, "tuple"));
    }
  b.fcomp->n_params = b.param_list->len;
  b.fcomp->params = fb_arena_new0 (arena, FbInstr *, MAX (b.fcomp->n_params, 1));
  for (guint k = 0; k < b.param_list->len; k++)
    b.fcomp->params[k] = g_ptr_array_index (b.param_list, k);

  /* The fusion instruction, where the last member stood. */
  FbInstr *last = g_ptr_array_index (members, members->len - 1);
  FbInstr *before = last->next;
  FbInstr *fusion = fb_instr_new (comp, before, FB_OP_FUSION, shape, b.outer_ops->len,
                                  (FbInstr *const *) b.outer_ops->pdata, NULL);
  fb_instr_set_ident (fusion, FB_A_KIND, _fb_fusion_kind_name (kind));
  fb_instr_set_comp (fusion, FB_A_CALLS, b.fcomp);
  g_autofree char *fname = _fb_fusion_fused_comp_name (module, fusion->name);
  _fb_fusion_comp_renamed (b.fcomp, fb_arena_strdup (arena, fname));
  /* Users outside now read the fusion (or one element of it). The fusion
   * stands where the last member stood: users before that need a reorder. */
  gintptr last_pos = _fb_fusion_position (last);
  gboolean reorder = FALSE;
  FbInstr *first_late = NULL;   /* the earliest user standing before the fusion */
  g_autofree FbInstr **placed = g_new0 (FbInstr *, outputs->len + 1);
  int n_placed = 0;
  placed[n_placed++] = fusion;
  for (guint k = 0; k < outputs->len; k++)
    {
      FbInstr *m = g_ptr_array_index (outputs, k);
      for (int u = 0; u < m->n_users; u++)
        if (member_kind (plan, m->users[u]) != MEMBER && _fb_fusion_position (m->users[u]) < last_pos)
          {
            reorder = TRUE;
            if (first_late == NULL || _fb_fusion_position (m->users[u]) < _fb_fusion_position (first_late))
              first_late = m->users[u];
          }
      FbInstr *target = fusion;
      if (outputs->len > 1)
        {
          target = fb_instr_new (comp, before, FB_OP_GET_TUPLE_ELEMENT, m->shape, 1, &fusion, NULL);
          fb_instr_set_int (target, FB_A_INDEX, k);
          placed[n_placed++] = target;
        }
      g_autofree FbInstr **users = g_memdup2 (m->users, sizeof (FbInstr *) * MAX (m->n_users, 1));
      int n_users = m->n_users;
      for (int u = 0; u < n_users; u++)
        {
          FbInstr *y = users[u];
          if (member_kind (plan, y) == MEMBER || _fb_fusion_replace_operand (y, m, target))
            continue;
          for (int i = 0; i < y->n_operands; i++)
            if (y->operands[i] == m)
              fb_instr_set_operand (y, i, target);
        }
      if (comp->root == m)
        comp->root = target;
    }
  _fb_fusion_place_after (comp, last, placed, n_placed);

  /* A consumer fusion that grew keeps its name and its computation's name. */
  const char *heir_name = NULL, *heir_comp = NULL;
  if (last->opcode == FB_OP_FUSION && member_kind (plan, last) == MEMBER && fb_instr_comp (last, FB_A_CALLS))
    {
      heir_name = last->name;
      heir_comp = fb_instr_comp (last, FB_A_CALLS)->name;
    }

  /* Remove the members, users first; duplicated ones only if now unused. */
  for (int pass = 0; pass < 2; pass++)
    for (int k = (int) members->len - 1; k >= 0; k--)
      {
        FbInstr *m = g_ptr_array_index (members, k);
        int kind_m = member_kind (plan, m);
        if (m->parent != comp || m->n_users > 0 || (pass == 0) != (kind_m == MEMBER))
          continue;
        FbComputation *sub = m->opcode == FB_OP_FUSION ? fb_instr_comp (m, FB_A_CALLS) : NULL;
        fb_instr_remove (m);
        m->parent = NULL;
        _fb_fusion_prov_forget (m);
        if (sub)
          {
            _fb_fusion_comp_renamed (sub, NULL);
            _fb_fusion_remove_computation (module, sub);
          }
      }

  /* The fusion's provenance: the union of what it took over, in member
   * order. A duplicated producer that lives on outside keeps its own
   * provenance (its copy inside carries it too); the fusion lists it only
   * once it took the producer's last use. A constant that cse merged from
   * thousands of copies is cloned into thousands of kernels: listing its
   * ids in each would make provenance grow with the square of the module. */
  g_autoptr (GPtrArray) taken = g_ptr_array_sized_new (members->len);
  for (guint k = 0; k < members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (members, k);
      if (m->parent == NULL || member_kind (plan, m) == MEMBER)
        g_ptr_array_add (taken, m);
    }
  fusion->n_prov = 0;
  _fb_fusion_prov_union (fusion, plan, taken);

  if (heir_name && last->parent == NULL)
    {
      fusion->name = (char *) heir_name;
      _fb_fusion_comp_renamed (b.fcomp, heir_comp);
    }

  g_hash_table_unref (b.map);
  g_hash_table_unref (b.params);
  g_hash_table_unref (b.names);
  g_hash_table_unref (b.suffixes);
  g_hash_table_unref (b.outs);
  g_ptr_array_unref (b.outer_ops);
  g_ptr_array_unref (b.param_list);

  /* In an order that had operands first, only the users that now stand
   * before the fusion are out of order: sort from the first of them to
   * the fusion's last get-tuple-element. */
  if (reorder && was_topological && _fb_fusion_positions_topological (comp) && first_late->parent == comp
      && first_late->prev != NULL)
    pull_forward (comp, placed, n_placed);
  else if (reorder && was_topological && _fb_fusion_positions_topological (comp) && first_late->parent == comp)
    _fb_fusion_toposort_span (comp, first_late, placed[n_placed - 1]);
  else if (reorder)
    _fb_fusion_toposort (comp);
  return fusion;
}

/* ------------------------------------------------ producer into consumer */

/* Instructions a consumer may take in at all: the rest (parameters,
 * get-tuple-element, large constants, tuples) are plain reads of memory. */
static gboolean
is_candidate (FbInstr *p, FbComputation *comp)
{
  if (p == NULL || p->parent != comp || !fb_shape_is_array (p->shape))
    return FALSE;
  switch (p->opcode)
    {
    case FB_OP_PARAMETER:
    case FB_OP_GET_TUPLE_ELEMENT:
    case FB_OP_TUPLE:
      return FALSE;
    case FB_OP_CONSTANT:
      return fb_shape_elements (p->shape) == 1;
    default:
      return TRUE;
    }
}

static gboolean
same_dims (const FbShape *a, const FbShape *b)
{
  if (a == NULL || b == NULL || !fb_shape_is_array (a) || !fb_shape_is_array (b) || a->rank != b->rank)
    return FALSE;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i])
      return FALSE;
  return TRUE;
}

/* The first reduce of @f, or NULL; remembered during a pass while @f keeps
 * its size (fused computations only grow by absorbing loop operations). */
static FbInstr *
first_reduce (FbComputation *f)
{
  PassState *st = _fb_fusion_pass_state ();
  ReduceOf *r = st ? g_hash_table_lookup (st->reduces, f) : NULL;
  if (r != NULL && r->n_instrs == f->n_instrs && r->first == f->first)
    return r->reduce;
  FbInstr *reduce = NULL;
  for (FbInstr *x = f->first; x && reduce == NULL; x = x->next)
    if (x->opcode == FB_OP_REDUCE)
      reduce = x;
  if (st != NULL)
    {
      if (r == NULL)
        {
          r = g_new0 (ReduceOf, 1);
          g_hash_table_insert (st->reduces, f, r);
        }
      r->n_instrs = f->n_instrs;
      r->first = f->first;
      r->reduce = reduce;
    }
  return reduce;
}

const FbShape *
_fb_fusion_iteration_shape (const FbInstr *kernel)
{
  const FbInstr *hero = kernel;
  if (kernel->opcode == FB_OP_FUSION)
    {
      FbComputation *f = fb_instr_comp (kernel, FB_A_CALLS);
      if (f == NULL || f->root == NULL)
        return NULL;
      hero = f->root;
      FbInstr *reduce = first_reduce (f);
      if (reduce)
        hero = reduce;
      if (hero->opcode == FB_OP_TUPLE)
        hero = hero->n_operands > 0 ? hero->operands[0] : NULL;
      if (hero == NULL)
        return NULL;
    }
  if (hero->opcode == FB_OP_REDUCE && hero->n_operands > 0)
    return hero->operands[0]->shape;
  return fb_shape_is_array (hero->shape) ? hero->shape : NULL;
}

typedef enum { TAKE_NO, TAKE_SIMPLE, TAKE_DUPLICATE, TAKE_OUTPUT } Take;

/* Can @consumer take in its operand @p? Fills the plan on success.
 * @paths, when not NULL, keeps for producers refused for a cycle the way
 * back found; when @may_defer and that way still closes, the refusal is
 * given without a reason (*why NULL), to be asked again later. @convex,
 * when not NULL, keeps the producers found to close no cycle (with their
 * user count then): taking producers in place does not change that, so
 * they are not walked again while the consumer grows in place. */
static Take
evaluate (FbPassContext *ctx, FbInstr *consumer, GHashTable *consumer_ops, FbInstr *p, gboolean allow_output,
          GHashTable *paths, GHashTable *convex, gboolean may_defer, FbFusionPlan **plan_out, const char **rule,
          char **why)
{
  FbComputation *comp = consumer->parent;
  if (p->opcode == FB_OP_FUSION)
    {
      FbFusionKind k = _fb_fusion_kind_of (p);
      if (!_fb_fusion_owns_computation (p))
        {
          *rule = "not-fusible";
          *why = g_strdup_printf ("%%%s shares its fused computation with another fusion", p->name);
          return TAKE_NO;
        }
      if (k != FB_FUSION_LOOP || _fb_fusion_is_multi_output (p))
        {
          *rule = "not-fusible";
          *why = g_strdup_printf ("%%%s is a %s fusion%s; its result is written to memory for its users",
                                  p->name, _fb_fusion_kind_name (k),
                                  _fb_fusion_is_multi_output (p) ? " with several outputs" : "");
          return TAKE_NO;
        }
      if (p->n_users > 1)
        {
          *rule = "producer-has-many-users";
          *why = g_strdup_printf ("the producer has %d users and is a whole kernel; it is not computed twice",
                                  p->n_users);
          return TAKE_NO;
        }
    }
  else if (!_fb_fusion_is_loop_op (p))
    {
      *rule = "not-fusible";
      *why = g_strdup_printf ("%s is not an elementwise or data-movement operation; it stays a kernel of its own",
                              fb_opcode_name (p->opcode));
      return TAKE_NO;
    }

  Take take = TAKE_SIMPLE;
  gboolean dup = FALSE;
  g_autofree char *users_why = NULL;
  if (p->opcode != FB_OP_FUSION && !_fb_fusion_check_users (p, consumer, ctx, &dup, &users_why))
    {
      const FbShape *space = _fb_fusion_iteration_shape (consumer);
      if (!allow_output || !same_dims (space, p->shape))
        {
          *rule = "producer-has-many-users";
          *why = g_steal_pointer (&users_why);
          return TAKE_NO;
        }
      take = TAKE_OUTPUT;
    }
  else if (dup)
    take = TAKE_DUPLICATE;

  char *limit_why = NULL;
  if (!_fb_fusion_is_multi_output (consumer))
    {
      /* The plan of the two, measured without building it. */
      if (!limits_check (ctx, pair_n_operands (consumer, p, consumer_ops),
                         member_n_instrs (consumer) + member_n_instrs (p), &limit_why))
        {
          *rule = "kernel-too-large";
          *why = limit_why;
          return TAKE_NO;
        }
    }
  g_autoptr (FbFusionPlan) plan = _fb_fusion_plan_new (comp);
  _fb_fusion_plan_add (plan, p, take == TAKE_DUPLICATE);
  _fb_fusion_plan_add (plan, consumer, FALSE);
  if (_fb_fusion_is_multi_output (consumer) && !_fb_fusion_plan_within_limits (plan, ctx, &limit_why))
    {
      *rule = "kernel-too-large";
      *why = limit_why;
      return TAKE_NO;
    }
  /* When only the consumer's result leaves the plan, nothing can come back. */
  gboolean only_consumer_leaves = (take == TAKE_DUPLICATE || p->n_users == 1)
                                  && !_fb_fusion_is_multi_output (consumer);
  FbInstr *via = NULL;
  gboolean cycle = FALSE;
  gpointer convex_users;
  if (!only_consumer_leaves && convex != NULL && g_hash_table_lookup_extended (convex, p, NULL, &convex_users)
      && GPOINTER_TO_INT (convex_users) == p->n_users)
    only_consumer_leaves = TRUE;   /* known to close no cycle */
  if (!only_consumer_leaves)
    {
      GPtrArray *known = paths ? g_hash_table_lookup (paths, p) : NULL;
      if (known != NULL && may_defer && path_still_closes (plan, known))
        cycle = TRUE;
      else
        {
          GPtrArray *found = g_ptr_array_new ();
          cycle = !plan_is_convex (plan, &via, found);
          if (paths != NULL && cycle)
            g_hash_table_insert (paths, p, g_steal_pointer (&found));
          else if (paths != NULL)
            g_hash_table_remove (paths, p);
          if (convex != NULL && !cycle)
            g_hash_table_insert (convex, p, GINT_TO_POINTER (p->n_users));
          if (found)
            g_ptr_array_unref (found);
        }
    }
  if (cycle)
    {
      *rule = "would-create-cycle";
      if (via == NULL)
        *why = NULL;
      else if (take == TAKE_OUTPUT)
        *why = g_strdup_printf ("%s; reading it from the fusion instead would create a cycle through %%%s",
                                users_why, via->name);
      else
        *why = g_strdup_printf ("%%%s also reaches %%%s through %%%s, outside the fusion, which would create a cycle",
                                p->name, consumer->name, via->name);
      return TAKE_NO;
    }
  *plan_out = g_steal_pointer (&plan);
  return take;
}

FbInstr *
_fb_fusion_grow (FbPassContext *ctx, FbInstr *consumer, FbFusionKind kind, gboolean allow_output,
                 gboolean *changed)
{
  FbInstr *f = consumer;
  FbComputation *comp = consumer->parent;
  /* Decisions name the kernel after the consumer it grew from. */
  g_autofree char *hero = g_strdup (consumer->name);
  g_autoptr (GHashTable) reasons = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  g_autoptr (GHashTable) rules = g_hash_table_new (NULL, NULL);
  g_autoptr (GHashTable) settled = g_hash_table_new (NULL, NULL);
  g_autoptr (GHashTable) users_seen = g_hash_table_new (NULL, NULL);
  /* Cycle checks repeat for the same producer as the consumer grows; the
   * way back found last time is checked first. Refusals given that way
   * carry no reason yet; the ones still standing at the end were made
   * against the final kernel and are asked again then. */
  g_autoptr (GHashTable) paths = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_ptr_array_unref);
  g_autoptr (GHashTable) deferred = g_hash_table_new (NULL, NULL);
  g_autoptr (GHashTable) convex = g_hash_table_new (NULL, NULL);

  g_autoptr (GHashTable) f_ops = g_hash_table_new (NULL, NULL);
  for (;;)
    {
      g_hash_table_remove_all (f_ops);
      for (int i = 0; i < f->n_operands; i++)
        if (f->operands[i])
          g_hash_table_add (f_ops, f->operands[i]);
      /* Producers used only here go first: taking them may leave a shared
       * producer with no other user, so it need not be computed twice. */
      FbInstr *p = NULL;
      FbFusionPlan *plan = NULL;
      Take take = TAKE_NO;
      for (int i = 0; i < f->n_operands; i++)
        {
          FbInstr *q = f->operands[i];
          if (!is_candidate (q, comp) || g_hash_table_contains (settled, q))
            continue;
          /* Refused for its users before, and they have not changed. */
          gpointer seen_users;
          if (g_hash_table_lookup_extended (users_seen, q, NULL, &seen_users)
              && GPOINTER_TO_INT (seen_users) == q->n_users)
            continue;
          FbFusionPlan *q_plan = NULL;
          const char *rule = NULL;
          char *why = NULL;
          gboolean may_defer = !g_hash_table_contains (users_seen, q);
          Take q_take = evaluate (ctx, f, f_ops, q, allow_output, paths, convex, may_defer, &q_plan, &rule, &why);
          g_hash_table_remove (deferred, q);
          if (q_take == TAKE_NO)
            {
              if (why == NULL)
                {
                  g_hash_table_add (deferred, q);
                  why = g_strdup ("");
                }
              g_hash_table_insert (reasons, q, why);
              g_hash_table_insert (rules, q, (gpointer) rule);
              /* What a producer is does not change while the consumer grows. */
              if (g_str_equal (rule, "not-fusible")
                  || (g_str_equal (rule, "kernel-too-large") && g_str_has_prefix (why, "the kernel would hold")))
                g_hash_table_add (settled, q);   /* kernels only grow */
              else if (g_str_equal (rule, "producer-has-many-users"))
                g_hash_table_insert (users_seen, q, GINT_TO_POINTER (q->n_users));
              continue;
            }
          if (p == NULL || q_take == TAKE_SIMPLE)
            {
              _fb_fusion_plan_free (plan);
              p = q;
              plan = q_plan;
              take = q_take;
            }
          else
            _fb_fusion_plan_free (q_plan);
          if (take == TAKE_SIMPLE)
            break;
        }
      if (p == NULL)
        break;

      g_hash_table_remove (reasons, p);
      g_hash_table_remove (deferred, p);
      int n_users = p->n_users;
      g_autofree char *pname = g_strdup (p->name);
      const char *fname = hero;
      FbInstr *nf;
      if (f->opcode == FB_OP_FUSION && p->opcode != FB_OP_FUSION && take != TAKE_OUTPUT)
        nf = _fb_fusion_absorb (f, p, take == TAKE_DUPLICATE);
      else
        nf = _fb_fusion_plan_build (plan, kind);
      _fb_fusion_plan_free (plan);
      /* The fusion's provenance covers what it took over; a duplicated
       * producer that stays is named beside it. */
      FbInstr *involved[2] = { nf, p };
      if (take == TAKE_DUPLICATE)
        fb_pass_decide (ctx, FB_DECISION_FUSED, "duplicated-producer", 2, involved,
                        "fused %%%s into %%%s (%s %%%s); %%%s stays for its other users and is computed %d times",
                        pname, fname, _fb_fusion_kind_name (kind), nf->name, pname, n_users);
      else if (take == TAKE_OUTPUT)
        fb_pass_decide (ctx, FB_DECISION_FUSED, "extra-output", 1, involved,
                        "fused %%%s into %%%s as an extra output (%s %%%s): its %d other users read it "
                        "from the fusion instead of computing it again",
                        pname, fname, _fb_fusion_kind_name (kind), nf->name, n_users - 1);
      else
        fb_pass_decide (ctx, FB_DECISION_FUSED, "producer-consumer", 1, involved,
                        "fused %%%s into %%%s (%s %%%s)", pname, fname, _fb_fusion_kind_name (kind), nf->name);
      *changed = TRUE;
      /* Forget the ways back through instructions that may be gone. */
      if (nf != f)
        {
          /* A new kernel: its outputs may lead back where nothing did. */
          g_hash_table_remove_all (paths);
          g_hash_table_remove_all (convex);
        }
      else
        {
          g_hash_table_remove (paths, p);
          GHashTableIter it;
          gpointer path;
          g_hash_table_iter_init (&it, paths);
          while (g_hash_table_iter_next (&it, NULL, &path))
            for (guint k = 0; k < ((GPtrArray *) path)->len; k++)
              if (g_ptr_array_index ((GPtrArray *) path, k) == (gpointer) p)
                {
                  g_hash_table_iter_remove (&it);
                  break;
                }
        }
      f = nf;
    }

  /* What stayed outside, and why, as it stands at the end. */
  g_autoptr (GHashTable) told = g_hash_table_new (NULL, NULL);
  for (int i = 0; i < f->n_operands; i++)
    {
      FbInstr *p = f->operands[i];
      const char *why = g_hash_table_lookup (reasons, p);
      if (why == NULL || g_hash_table_contains (told, p))
        continue;
      if (g_hash_table_contains (deferred, p))
        {
          /* Nothing changed since the last round, which refused it. */
          FbFusionPlan *again = NULL;
          const char *rule = NULL;
          char *full = NULL;
          Take t = evaluate (ctx, f, f_ops, p, allow_output, NULL, NULL, FALSE, &again, &rule, &full);
          _fb_fusion_plan_free (again);
          g_hash_table_remove (deferred, p);
          if (t != TAKE_NO || full == NULL)
            {
              g_free (full);
              continue;
            }
          g_hash_table_insert (reasons, p, full);
          g_hash_table_insert (rules, p, (gpointer) rule);
          why = full;
        }
      g_hash_table_add (told, p);
      FbInstr *pair[2] = { p, f };
      fb_pass_decide (ctx, FB_DECISION_REFUSED, g_hash_table_lookup (rules, p), 2, pair,
                      "did not fuse %%%s into %%%s: %s", p->name, hero, why);
    }
  return f;
}

/* ------------------------------------------------ in-place absorption */

/* Is @x a copy of @p reading @ops? */
static gboolean
is_copy_of (const FbInstr *x, const FbInstr *p, FbInstr *const *ops)
{
  return x->opcode == p->opcode && x->n_prov == p->n_prov && x->n_operands == p->n_operands
         && memcmp (x->prov, p->prov, sizeof (int64_t) * p->n_prov) == 0
         && (p->n_operands == 0 || memcmp (x->operands, ops, sizeof (FbInstr *) * p->n_operands) == 0);
}

/* Moves (or, with @duplicate, copies) the plain instruction @p, an operand
 * of @fusion, into the fused computation, without rebuilding it: the
 * parameters that stood for @p now read the copy, and @p's own operands
 * become parameters where they were not already. */
FbInstr *
_fb_fusion_absorb (FbInstr *fusion, FbInstr *p, gboolean duplicate)
{
  FbComputation *fc = fb_instr_comp (fusion, FB_A_CALLS);
  FbArena *arena = fusion->parent->module->arena;
  g_return_val_if_fail (fc != NULL && p->opcode != FB_OP_FUSION, fusion);

  FbInstr *body_first = fc->first;
  while (body_first && body_first->opcode == FB_OP_PARAMETER)
    body_first = body_first->next;

  g_autofree FbInstr **ops = g_new0 (FbInstr *, MAX (p->n_operands, 1));
  for (int i = 0; i < p->n_operands; i++)
    {
      FbInstr *o = p->operands[i];
      int j;
      for (j = 0; j < fusion->n_operands; j++)
        if (fusion->operands[j] == o)
          break;
      if (j == fusion->n_operands)
        {
          /* A new parameter and a new operand slot. */
          g_autofree char *want = g_strdup_printf ("param_%d", fc->n_params);
          g_autofree char *name = _fb_fusion_free_name (fc, want);
          FbInstr *param = fb_instr_new (fc, body_first, FB_OP_PARAMETER, o->shape, 0, NULL, name);
          _fb_fusion_fused_name_changed (fc, param, +1);
          param->parameter_number = fc->n_params;
          FbInstr **np = fb_arena_new0 (arena, FbInstr *, fc->n_params + 1);
          memcpy (np, fc->params, sizeof (FbInstr *) * fc->n_params);
          np[fc->n_params++] = param;
          fc->params = np;
          FbInstr **no = fb_arena_new0 (arena, FbInstr *, fusion->n_operands + 1);
          memcpy (no, fusion->operands, sizeof (FbInstr *) * fusion->n_operands);
          fusion->operands = no;
          fusion->n_operands++;
          fb_instr_set_operand (fusion, j, o);
        }
      ops[i] = fc->params[j];
    }
  /* The same producer may already be inside, cloned for another user: the
   * first such in order. A copy reads the parameters @ops, so when @p has
   * operands it is a user of the first, and one found among those users is
   * the only one. */
  FbInstr *copy = NULL;
  int found = 0;
  if (p->n_operands > 0)
    for (int u = 0; u < ops[0]->n_users; u++)
      if (is_copy_of (ops[0]->users[u], p, ops))
        {
          copy = ops[0]->users[u];
          found++;
        }
  if (p->n_operands == 0 || found > 1)
    {
      copy = NULL;
      for (FbInstr *x = fc->first; x && copy == NULL; x = x->next)
        if (is_copy_of (x, p, ops))
          copy = x;
    }
  if (copy != NULL && copy != body_first)
    fb_instr_move_before (copy, body_first);   /* it reads only parameters */
  if (copy == NULL)
    {
      g_autofree char *name = _fb_fusion_free_name (fc, p->name);
      copy = copy_instr (fc, body_first, p, ops, name, !duplicate);
      _fb_fusion_fused_name_changed (fc, copy, +1);
    }

  /* The parameters that stood for @p read the copy; drop them and their slots. */
  int kept = 0;
  for (int j = 0; j < fusion->n_operands; j++)
    {
      FbInstr *param = fc->params[j];
      if (fusion->operands[j] == p)
        {
          fb_instr_replace_all_uses (param, copy);
          _fb_fusion_fused_name_changed (fc, param, -1);
          fb_instr_remove (param);
          continue;
        }
      fusion->operands[kept] = fusion->operands[j];
      fc->params[kept] = param;
      param->parameter_number = kept;
      kept++;
    }
  fusion->n_operands = kept;
  fc->n_params = kept;
  /* @p is no longer an operand: unlink @fusion from its users. */
  for (int u = 0; u < p->n_users; u++)
    if (p->users[u] == fusion)
      {
        p->users[u] = p->users[--p->n_users];
        break;
      }
  /* Like a build, the fusion lists @p's provenance only when it takes
   * @p's last use. */
  if (!duplicate && p->n_users == 0)
    {
      _fb_fusion_prov_absorb (fusion, p);
      fb_instr_remove (p);
      p->parent = NULL;
    }
  return fusion;
}
