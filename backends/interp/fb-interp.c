/* SPDX-License-Identifier: MIT
 *
 * The reference interpreter's core: runs a computation instruction by
 * instruction on literals and dispatches each opcode to its evaluator.
 * This file also holds the data-movement ops (broadcast, reshape,
 * transpose, slice, pad, concatenate, ...), control flow (call, while,
 * conditional, fusion, map, async), custom calls through the explicit
 * custom-call map, and collectives as XLA runs them on a single replica.
 *
 * Values are immutable once computed, so a value may be shared (a tuple
 * holds its operands, get-tuple-element returns the element). Intermediate
 * values of a nested computation live in a scratch arena that is dropped as
 * soon as its result has been copied out, so a long while loop runs in
 * bounded memory. Only instructions the root depends on are evaluated.
 *
 * Compiled with a recorder (FbBackendOptions.recorder), the backend runs each
 * instruction of the entry computation inside a kernel span; without one,
 * nothing is recorded and nothing is paid.
 */
#include "fb-interp-private.h"

#include <string.h>

#include "fb-recorder.h"

/* Nested computation calls deeper than this are refused. */
#define MAX_DEPTH 64
/* A while loop that runs longer than this is taken as a runaway. */
#define MAX_WHILE_ITERATIONS 1000000

/* --------------------------------------------------------- run state */

/* The instructions of a computation that its root needs, in an order where
 * operands come first, with each operand given as a slot number. */
typedef struct {
  int       n;
  FbInstr **instrs;
  int      *first_op;    /* n + 1 entries into op_slots */
  int      *op_slots;
  int       max_ops;
} Plan;

typedef struct {
  GHashTable      *plans;         /* FbComputation * -> Plan * */
  FbCustomCallMap *builtin_map;   /* when the caller gave none */
  uint64_t         rng_runs;
  FbRecorder      *recorder;      /* NULL: no spans */
} Run;

/* Every FbInterp the evaluators see is the first member of one of these. */
typedef struct {
  FbInterp base;
  Run     *run;
} Ctx;

static void
plan_free (gpointer p)
{
  Plan *plan = p;
  g_free (plan->instrs);
  g_free (plan->first_op);
  g_free (plan->op_slots);
  g_free (plan);
}

static const char *
instr_name (const FbInstr *instr)
{
  return instr->name != NULL ? instr->name : fb_opcode_name (instr->opcode);
}

static void
instr_error_valist (GError **error, int code, const FbInstr *instr, const char *fmt, va_list ap)
{
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  const char *name = instr_name (instr);
  g_set_error (error, FB_ERROR, code, "%s%s: %s", name[0] == '%' ? "" : "%", name, msg);
}

void
_fb_interp_error (GError **error, const FbInstr *instr, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  instr_error_valist (error, FB_ERROR_RUNTIME, instr, fmt, ap);
  va_end (ap);
}

static void G_GNUC_PRINTF (3, 4)
unsupported (GError **error, const FbInstr *instr, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  instr_error_valist (error, FB_ERROR_UNSUPPORTED, instr, fmt, ap);
  va_end (ap);
}

void
_fb_interp_strides (const FbShape *shape, int64_t *strides)
{
  int64_t s = 1;
  for (int i = shape->rank - 1; i >= 0; i--)
    {
      strides[i] = s;
      s *= shape->dims[i];
    }
}

FbLiteral *
_fb_interp_scalar (FbInterp *ctx, FbElemType type, double v)
{
  FbLiteral *lit = fb_literal_new (ctx->arena, fb_shape_new_scalar (ctx->arena, type));
  fb_literal_set_f64 (lit, 0, v);
  return lit;
}

gboolean
_fb_interp_next_index (int64_t *idx, const FbShape *shape)
{
  for (int d = shape->rank - 1; d >= 0; d--)
    {
      if (++idx[d] < shape->dims[d])
        return TRUE;
      idx[d] = 0;
    }
  return FALSE;
}

gboolean
_fb_interp_check_array (const FbInstr *instr, const FbLiteral *lit, const char *what, GError **error)
{
  if (lit == NULL || lit->shape == NULL || !fb_shape_is_array (lit->shape) || lit->data == NULL)
    {
      _fb_interp_error (error, instr, "%s is not an array value", what);
      return FALSE;
    }
  if (lit->shape->rank > FB_INTERP_MAX_RANK)
    {
      _fb_interp_error (error, instr, "%s has rank %d; at most %d is supported", what,
                        lit->shape->rank, FB_INTERP_MAX_RANK);
      return FALSE;
    }
  return TRUE;
}

gboolean
_fb_interp_same_dims (const FbShape *a, const FbShape *b)
{
  if (a->rank != b->rank)
    return FALSE;
  for (int d = 0; d < a->rank; d++)
    if (a->dims[d] != b->dims[d])
      return FALSE;
  return TRUE;
}

/* Orders the instructions @comp's root depends on, operands first. */
static Plan *
build_plan (FbComputation *comp, GError **error)
{
  if (comp->root == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME, "computation %s has no root", comp->name);
      return NULL;
    }
  g_autoptr (GHashTable) slot = g_hash_table_new (NULL, NULL);   /* instr -> slot + 1, or -1 while open */
  g_autoptr (GPtrArray) order = g_ptr_array_new ();
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_autoptr (GArray) next = g_array_new (FALSE, FALSE, sizeof (int));
  int n_op_slots = 0;

  g_ptr_array_add (stack, comp->root);
  g_array_append_val (next, (int) { 0 });
  g_hash_table_insert (slot, comp->root, GINT_TO_POINTER (-1));
  while (stack->len > 0)
    {
      FbInstr *instr = stack->pdata[stack->len - 1];
      int *k = &g_array_index (next, int, next->len - 1);
      if (*k < instr->n_operands)
        {
          FbInstr *op = instr->operands[(*k)++];
          if (op == NULL || op->parent != comp)
            {
              g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME,
                           "%%%s: operand %d is not an instruction of computation %s",
                           instr_name (instr), *k - 1, comp->name);
              return NULL;
            }
          int s = GPOINTER_TO_INT (g_hash_table_lookup (slot, op));
          if (s == -1)
            {
              g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME,
                           "%%%s: computation %s has a cycle through this instruction",
                           instr_name (op), comp->name);
              return NULL;
            }
          if (s == 0)
            {
              g_hash_table_insert (slot, op, GINT_TO_POINTER (-1));
              g_ptr_array_add (stack, op);
              g_array_append_val (next, (int) { 0 });
            }
          continue;
        }
      g_hash_table_insert (slot, instr, GINT_TO_POINTER ((int) order->len + 1));
      g_ptr_array_add (order, instr);
      n_op_slots += instr->n_operands;
      g_ptr_array_set_size (stack, stack->len - 1);
      g_array_set_size (next, next->len - 1);
    }

  Plan *plan = g_new0 (Plan, 1);
  plan->n = order->len;
  plan->instrs = g_new (FbInstr *, plan->n);
  plan->first_op = g_new (int, plan->n + 1);
  plan->op_slots = g_new (int, MAX (1, n_op_slots));
  int k = 0;
  for (int i = 0; i < plan->n; i++)
    {
      FbInstr *instr = order->pdata[i];
      plan->instrs[i] = instr;
      plan->first_op[i] = k;
      for (int j = 0; j < instr->n_operands; j++)
        plan->op_slots[k++] = GPOINTER_TO_INT (g_hash_table_lookup (slot, instr->operands[j])) - 1;
      plan->max_ops = MAX (plan->max_ops, instr->n_operands);
    }
  plan->first_op[plan->n] = k;
  return plan;
}

static gboolean eval_instr (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, int n_args,
                            FbLiteral *const *args, FbLiteral **out, GError **error);

/* eval_instr inside a kernel span: used for the instructions of the entry
 * computation (depth 0) when a recorder is set. The span's kernel id is the
 * instruction's id and it carries the instruction's provenance. */
static gboolean
eval_recorded (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, int n_args, FbLiteral *const *args,
               FbLiteral **out, GError **error)
{
  if (instr->opcode == FB_OP_PARAMETER)
    return eval_instr (ctx, instr, ops, n_args, args, out, error);
  FbRecorderScope scope;
  fb_recorder_begin_kernel (ctx->run->recorder, &scope, (int) CLAMP (instr->id, 0, G_MAXINT),
                            instr_name (instr), (guint) MAX (instr->n_prov, 0),
                            (const gint64 *) instr->prov);
  gboolean ok = eval_instr (ctx, instr, ops, n_args, args, out, error);
  fb_recorder_end (ctx->run->recorder, &scope);
  return ok;
}

#define EVAL_TOP(ctx, instr, ops, n_args, args, out, error)                          \
  ((ctx)->run->recorder != NULL && (ctx)->base.depth == 0                           \
     ? eval_recorded (ctx, instr, ops, n_args, args, out, error)                    \
     : eval_instr (ctx, instr, ops, n_args, args, out, error))

/* Computations of at least this many instructions keep each value in an arena
 * of its own and free it after its last use, so that a whole training step
 * never holds every intermediate at once. */
#define LARGE_COMPUTATION 32

/* TRUE when a leaf of @lit shares its data with a leaf of @other. */
static gboolean
shares_data (const FbLiteral *lit, const FbLiteral *other)
{
  if (lit == NULL || other == NULL)
    return FALSE;
  if (lit->shape->type == FB_TUPLE)
    {
      for (int i = 0; i < lit->n_elems; i++)
        if (shares_data (lit->elems[i], other))
          return TRUE;
      return FALSE;
    }
  if (other->shape->type == FB_TUPLE)
    {
      for (int i = 0; i < other->n_elems; i++)
        if (shares_data (lit, other->elems[i]))
          return TRUE;
      return FALSE;
    }
  return lit == other || (lit->data != NULL && lit->data == other->data);
}

static FbLiteral *
eval_comp_freeing (Ctx *ctx, Plan *plan, FbLiteral **vals, FbLiteral **ops, int n_args,
                   FbLiteral *const *args, GError **error)
{
  FbArena *target = ctx->base.arena;
  g_autofree FbArena **owned = g_new0 (FbArena *, plan->n);
  g_autofree int *last_use = g_new (int, plan->n);
  FbLiteral *result = NULL;

  for (int i = 0; i < plan->n; i++)
    last_use[i] = i;
  for (int i = 0; i < plan->n; i++)
    for (int k = plan->first_op[i]; k < plan->first_op[i + 1]; k++)
      last_use[plan->op_slots[k]] = i;
  last_use[plan->n - 1] = plan->n;   /* the root lives on */

  for (int i = 0; i < plan->n; i++)
    {
      FbInstr *instr = plan->instrs[i];
      FbArena *arena = fb_arena_new ();
      FbLiteral *value = NULL;
      for (int j = 0; j < instr->n_operands; j++)
        ops[j] = vals[plan->op_slots[plan->first_op[i] + j]];
      ctx->base.arena = arena;
      gboolean ok = EVAL_TOP (ctx, instr, ops, n_args, args, &value, error);
      ctx->base.arena = target;
      if (!ok)
        {
          fb_arena_free (arena);
          goto out;
        }
      /* A value that points into an operand's memory (a get-tuple-element, a
       * tuple, a no-copy reshape) gets its own copy, so that operands can be
       * freed independently. Arguments belong to the caller and stay. */
      for (int j = 0; j < instr->n_operands; j++)
        if (shares_data (value, ops[j]))
          {
            value = fb_literal_copy (arena, value);
            break;
          }
      vals[i] = value;
      owned[i] = arena;
      for (int k = plan->first_op[i]; k < plan->first_op[i + 1]; k++)
        {
          int slot = plan->op_slots[k];
          if (last_use[slot] == i && owned[slot] != NULL)
            {
              fb_arena_free (owned[slot]);
              owned[slot] = NULL;
              vals[slot] = NULL;
            }
        }
    }
  result = fb_literal_copy (target, vals[plan->n - 1]);
out:
  for (int i = 0; i < plan->n; i++)
    if (owned[i])
      fb_arena_free (owned[i]);
  return result;
}

/* Evaluates @comp with results in ctx's arena. */
static FbLiteral *
eval_comp (Ctx *ctx, FbComputation *comp, int n_args, FbLiteral *const *args, GError **error)
{
  if (comp == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME, "missing computation");
      return NULL;
    }
  if (ctx->base.depth > MAX_DEPTH)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME,
                   "computation %s: calls nest deeper than %d levels", comp->name, MAX_DEPTH);
      return NULL;
    }
  if (n_args != comp->n_params)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME,
                   "computation %s takes %d arguments, not %d", comp->name, comp->n_params, n_args);
      return NULL;
    }
  for (int i = 0; i < n_args; i++)
    {
      FbInstr *p = comp->params[i];
      if (p == NULL || args[i] == NULL)
        {
          g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME,
                       "computation %s: parameter %d is missing", comp->name, i);
          return NULL;
        }
      if (!fb_shape_compatible (p->shape, args[i]->shape))
        {
          g_autofree char *want = fb_shape_to_string (p->shape);
          g_autofree char *got = fb_shape_to_string (args[i]->shape);
          g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME,
                       "computation %s: argument %d is %s but parameter %%%s is %s",
                       comp->name, i, got, instr_name (p), want);
          return NULL;
        }
    }

  Plan *plan = g_hash_table_lookup (ctx->run->plans, comp);
  if (plan == NULL)
    {
      plan = build_plan (comp, error);
      if (plan == NULL)
        return NULL;
      g_hash_table_insert (ctx->run->plans, comp, plan);
    }

  FbLiteral *small_vals[32], *small_ops[8];
  g_autofree FbLiteral **big_vals = plan->n > 32 ? g_new0 (FbLiteral *, plan->n) : NULL;
  g_autofree FbLiteral **big_ops = plan->max_ops > 8 ? g_new (FbLiteral *, plan->max_ops) : NULL;
  FbLiteral **vals = big_vals != NULL ? big_vals : small_vals;
  FbLiteral **ops = big_ops != NULL ? big_ops : small_ops;

  if (plan->n >= LARGE_COMPUTATION)
    return eval_comp_freeing (ctx, plan, vals, ops, n_args, args, error);
  for (int i = 0; i < plan->n; i++)
    {
      FbInstr *instr = plan->instrs[i];
      for (int j = 0; j < instr->n_operands; j++)
        ops[j] = vals[plan->op_slots[plan->first_op[i] + j]];
      if (!EVAL_TOP (ctx, instr, ops, n_args, args, &vals[i], error))
        return NULL;
    }
  return vals[plan->n - 1];
}

static Ctx
sub_ctx (Ctx *ctx, FbArena *arena)
{
  Ctx sub = *ctx;
  sub.base.arena = arena;
  sub.base.depth++;
  return sub;
}

FbLiteral *
_fb_interp_call (FbInterp *base, FbComputation *comp, int n_args, FbLiteral *const *args, GError **error)
{
  Ctx sub = sub_ctx ((Ctx *) base, base->arena);
  return eval_comp (&sub, comp, n_args, args, error);
}

/* Calls @comp with its intermediates in a scratch arena; the result is
 * copied into @target. */
static FbLiteral *
call_scoped (Ctx *ctx, FbComputation *comp, int n_args, FbLiteral *const *args, FbArena *target,
             GError **error)
{
  FbArena *scratch = fb_arena_new ();
  Ctx sub = sub_ctx (ctx, scratch);
  FbLiteral *r = eval_comp (&sub, comp, n_args, args, error);
  FbLiteral *copy = r != NULL ? fb_literal_copy (target, r) : NULL;
  fb_arena_free (scratch);
  return copy;
}

/* ------------------------------------------------------- shape checks */

static gboolean
need_operands (FbInstr *instr, int n, GError **error)
{
  if (instr->n_operands != n)
    {
      _fb_interp_error (error, instr, "%s takes %d operand%s, not %d", fb_opcode_name (instr->opcode),
                        n, n == 1 ? "" : "s", instr->n_operands);
      return FALSE;
    }
  return TRUE;
}

static gboolean
need_array (FbInstr *instr, const FbLiteral *lit, const char *what, GError **error)
{
  if (lit == NULL || lit->data == NULL || !fb_elem_type_is_array (lit->shape->type))
    {
      _fb_interp_error (error, instr, "%s must be an array", what);
      return FALSE;
    }
  return TRUE;
}

static gboolean
need_array_result (FbInstr *instr, GError **error)
{
  if (!fb_shape_is_array (instr->shape))
    {
      _fb_interp_error (error, instr, "%s must produce an array", fb_opcode_name (instr->opcode));
      return FALSE;
    }
  return TRUE;
}

static gboolean
same_type (FbInstr *instr, const FbLiteral *lit, GError **error)
{
  if (lit->shape->type != instr->shape->type)
    {
      _fb_interp_error (error, instr, "operand is %s but the result is %s",
                        fb_elem_type_name (lit->shape->type), fb_elem_type_name (instr->shape->type));
      return FALSE;
    }
  return TRUE;
}

static const FbDims *
need_dims (FbInstr *instr, FbAttrKey key, int n, GError **error)
{
  const FbDims *d = fb_instr_dims (instr, key);
  if (d == NULL || (n >= 0 && d->n != n))
    {
      _fb_interp_error (error, instr, "%s needs %s={...} with %d entries", fb_opcode_name (instr->opcode),
                        fb_attr_key_name (key), n);
      return NULL;
    }
  return d;
}

/* ------------------------------------------------------ data movement */

/* dst[j] = src[base + sum idx[d] * sstr[d]] over the row-major indices of dims. */
static void
strided_copy (guint8 *dst, const guint8 *src, int rank, const int64_t *dims, const int64_t *sstr,
              int64_t base, int bytes)
{
  int64_t total = 1;
  for (int i = 0; i < rank; i++)
    total *= dims[i];
  if (total == 0)
    return;
  if (rank == 0)
    {
      memcpy (dst, src + base * bytes, bytes);
      return;
    }
  int64_t idx[64] = { 0 };
  int64_t inner = dims[rank - 1], istr = sstr[rank - 1];
  int64_t off = base;
  for (int64_t o = 0; o < total; o += inner)
    {
      guint8 *d = dst + o * bytes;
      const guint8 *s = src + off * bytes;
      if (istr == 1)
        memcpy (d, s, (gsize) (inner * bytes));
      else if (bytes == 4)
        for (int64_t k = 0; k < inner; k++)
          memcpy (d + k * 4, s + k * istr * 4, 4);
      else if (bytes == 8)
        for (int64_t k = 0; k < inner; k++)
          memcpy (d + k * 8, s + k * istr * 8, 8);
      else
        for (int64_t k = 0; k < inner; k++)
          memcpy (d + k * bytes, s + k * istr * bytes, bytes);
      for (int i = rank - 2; i >= 0; i--)
        {
          off += sstr[i];
          if (++idx[i] < dims[i])
            break;
          off -= sstr[i] * dims[i];
          idx[i] = 0;
        }
    }
}

/* One array operand of the result's element type, and an array result. */
static gboolean
need_one_array_operand (FbInstr *instr, FbLiteral *const *ops, GError **error)
{
  return need_operands (instr, 1, error) && need_array_result (instr, error)
         && need_array (instr, ops[0], "the operand", error) && same_type (instr, ops[0], error);
}

/* The result of a pure data movement: @src read with strides @sstr from
 * element @offset, in the result's row-major order. */
static FbLiteral *
strided_result (Ctx *ctx, FbInstr *instr, const FbLiteral *src, const int64_t *sstr, int64_t offset)
{
  const FbShape *os = instr->shape;
  FbLiteral *r = fb_literal_new (ctx->base.arena, instr->shape);
  strided_copy (r->data, src->data, os->rank, os->dims, sstr, offset, fb_elem_type_bytes (os->type));
  return r;
}

static gboolean
eval_reshape (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (!need_operands (instr, 1, error) || !need_array_result (instr, error)
      || !need_array (instr, ops[0], "the operand", error))
    return FALSE;
  int64_t n = fb_shape_elements (instr->shape);
  if (fb_shape_elements (ops[0]->shape) != n
      || fb_elem_type_bytes (ops[0]->shape->type) != fb_elem_type_bytes (instr->shape->type))
    {
      g_autofree char *a = fb_shape_to_string (ops[0]->shape);
      g_autofree char *b = fb_shape_to_string (instr->shape);
      _fb_interp_error (error, instr, "cannot %s %s into %s", fb_opcode_name (instr->opcode), a, b);
      return FALSE;
    }
  FbLiteral *r = fb_literal_new (ctx->base.arena, instr->shape);
  memcpy (r->data, ops[0]->data, (gsize) n * fb_elem_type_bytes (instr->shape->type));
  *out = r;
  return TRUE;
}

static gboolean
eval_broadcast (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (!need_one_array_operand (instr, ops, error))
    return FALSE;
  const FbShape *in = ops[0]->shape, *os = instr->shape;
  const FbDims *d = fb_instr_dims (instr, FB_A_DIMENSIONS);
  int n = d != NULL ? d->n : 0;
  if (n != in->rank)
    {
      _fb_interp_error (error, instr, "broadcast needs dimensions={...} with one entry per operand dimension");
      return FALSE;
    }
  int64_t istr[MAX (1, in->rank)], sstr[MAX (1, os->rank)];
  _fb_interp_strides (in, istr);
  for (int j = 0; j < os->rank; j++)
    sstr[j] = 0;
  for (int i = 0; i < n; i++)
    {
      int64_t j = d->v[i];
      if (j < 0 || j >= os->rank || os->dims[j] != in->dims[i])
        {
          _fb_interp_error (error, instr, "broadcast dimension %d does not match the result", i);
          return FALSE;
        }
      sstr[j] = istr[i];
    }
  *out = strided_result (ctx, instr, ops[0], sstr, 0);
  return TRUE;
}

static gboolean
eval_transpose (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (!need_one_array_operand (instr, ops, error))
    return FALSE;
  const FbShape *in = ops[0]->shape, *os = instr->shape;
  const FbDims *perm = need_dims (instr, FB_A_DIMENSIONS, in->rank, error);
  if (perm == NULL)
    return FALSE;
  if (os->rank != in->rank)
    {
      _fb_interp_error (error, instr, "transpose must keep the rank");
      return FALSE;
    }
  int64_t istr[MAX (1, in->rank)], sstr[MAX (1, in->rank)];
  guint64 seen = 0;
  _fb_interp_strides (in, istr);
  for (int j = 0; j < os->rank; j++)
    {
      int64_t p = perm->v[j];
      if (p < 0 || p >= in->rank || (seen & (1ull << p)) || in->dims[p] != os->dims[j])
        {
          _fb_interp_error (error, instr, "dimensions={...} is not a permutation matching the result");
          return FALSE;
        }
      seen |= 1ull << p;
      sstr[j] = istr[p];
    }
  *out = strided_result (ctx, instr, ops[0], sstr, 0);
  return TRUE;
}

static gboolean
eval_slice (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (!need_one_array_operand (instr, ops, error))
    return FALSE;
  const FbShape *in = ops[0]->shape, *os = instr->shape;
  const FbAttr *a = fb_instr_get_attr (instr, FB_A_SLICE);
  if (a == NULL || a->kind != FB_AV_SLICE || a->v.slice.n != in->rank || os->rank != in->rank)
    {
      _fb_interp_error (error, instr, "slice needs slice={[start:limit:stride], ...} for every dimension");
      return FALSE;
    }
  int64_t istr[MAX (1, in->rank)], sstr[MAX (1, in->rank)], base = 0;
  _fb_interp_strides (in, istr);
  for (int i = 0; i < in->rank; i++)
    {
      const FbSliceDim *s = &a->v.slice.d[i];
      int64_t stride = s->stride > 0 ? s->stride : 1;
      if (s->start < 0 || s->limit > in->dims[i] || s->start > s->limit || s->stride <= 0
          || (s->limit - s->start + stride - 1) / stride != os->dims[i])
        {
          _fb_interp_error (error, instr, "slice [%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT
                            "] of dimension %d does not fit the operand or the result",
                            s->start, s->limit, s->stride, i);
          return FALSE;
        }
      base += s->start * istr[i];
      sstr[i] = istr[i] * stride;
    }
  *out = strided_result (ctx, instr, ops[0], sstr, base);
  return TRUE;
}

static gboolean
eval_reverse (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (!need_one_array_operand (instr, ops, error))
    return FALSE;
  const FbShape *in = ops[0]->shape;
  const FbDims *d = need_dims (instr, FB_A_DIMENSIONS, -1, error);
  if (d == NULL)
    return FALSE;
  if (!fb_shape_compatible (in, instr->shape))
    {
      _fb_interp_error (error, instr, "reverse must keep the shape");
      return FALSE;
    }
  int64_t sstr[MAX (1, in->rank)], base = 0;
  _fb_interp_strides (in, sstr);
  for (int i = 0; i < d->n; i++)
    {
      int64_t k = d->v[i];
      if (k < 0 || k >= in->rank)
        {
          _fb_interp_error (error, instr, "reverse dimension %" G_GINT64_FORMAT " is out of range", k);
          return FALSE;
        }
      if (sstr[k] > 0 && in->dims[k] > 0)
        {
          base += (in->dims[k] - 1) * sstr[k];
          sstr[k] = -sstr[k];
        }
    }
  FbLiteral *r = fb_literal_new (ctx->base.arena, instr->shape);
  strided_copy (r->data, ops[0]->data, in->rank, in->dims, sstr, base, fb_elem_type_bytes (in->type));
  *out = r;
  return TRUE;
}

static gboolean
eval_concatenate (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (instr->n_operands < 1 || !need_array_result (instr, error))
    return need_operands (instr, 1, error);
  const FbShape *os = instr->shape;
  const FbDims *dd = need_dims (instr, FB_A_DIMENSIONS, 1, error);
  if (dd == NULL)
    return FALSE;
  int64_t d = dd->v[0];
  if (d < 0 || d >= os->rank)
    {
      _fb_interp_error (error, instr, "concatenate dimension %" G_GINT64_FORMAT " is out of range", d);
      return FALSE;
    }
  int64_t sum = 0;
  for (int k = 0; k < instr->n_operands; k++)
    {
      const FbShape *s = ops[k]->shape;
      if (!need_array (instr, ops[k], "every operand", error) || !same_type (instr, ops[k], error))
        return FALSE;
      gboolean ok = s->rank == os->rank;
      for (int i = 0; ok && i < os->rank; i++)
        ok = i == d || s->dims[i] == os->dims[i];
      if (!ok)
        {
          _fb_interp_error (error, instr, "operand %d does not fit the result outside dimension %" G_GINT64_FORMAT,
                            k, d);
          return FALSE;
        }
      sum += s->dims[d];
    }
  if (sum != os->dims[d])
    {
      _fb_interp_error (error, instr, "operands add up to %" G_GINT64_FORMAT " along dimension %" G_GINT64_FORMAT
                        ", the result has %" G_GINT64_FORMAT, sum, d, os->dims[d]);
      return FALSE;
    }
  int bytes = fb_elem_type_bytes (os->type);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; i++)
    outer *= os->dims[i];
  for (int i = d + 1; i < os->rank; i++)
    inner *= os->dims[i];
  FbLiteral *r = fb_literal_new (ctx->base.arena, instr->shape);
  int64_t row = os->dims[d] * inner * bytes, at = 0;
  for (int k = 0; k < instr->n_operands; k++)
    {
      int64_t chunk = ops[k]->shape->dims[d] * inner * bytes;
      for (int64_t o = 0; o < outer; o++)
        memcpy (r->data + o * row + at, ops[k]->data + o * chunk, (gsize) chunk);
      at += chunk;
    }
  *out = r;
  return TRUE;
}

static gboolean
eval_pad (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (!need_operands (instr, 2, error) || !need_array_result (instr, error)
      || !need_array (instr, ops[0], "the operand", error) || !same_type (instr, ops[0], error)
      || !need_array (instr, ops[1], "the padding value", error) || !same_type (instr, ops[1], error))
    return FALSE;
  const FbShape *in = ops[0]->shape, *os = instr->shape;
  const FbAttr *a = fb_instr_get_attr (instr, FB_A_PADDING);
  if (a == NULL || a->kind != FB_AV_PADDING || a->v.pad.n != in->rank || os->rank != in->rank
      || fb_shape_elements (ops[1]->shape) != 1)
    {
      _fb_interp_error (error, instr, "pad needs a scalar padding value and padding=lo_hi_interior for every dimension");
      return FALSE;
    }
  for (int i = 0; i < in->rank; i++)
    {
      const FbPadDim *p = &a->v.pad.d[i];
      if (p->interior < 0)
        {
          _fb_interp_error (error, instr, "interior padding of dimension %d is negative", i);
          return FALSE;
        }
      int64_t expect = p->lo + p->hi + in->dims[i] + (in->dims[i] > 0 ? (in->dims[i] - 1) * p->interior : 0);
      if (expect != os->dims[i])
        {
          _fb_interp_error (error, instr, "padding of dimension %d gives %" G_GINT64_FORMAT
                            " elements, the result has %" G_GINT64_FORMAT, i, expect, os->dims[i]);
          return FALSE;
        }
    }
  int bytes = fb_elem_type_bytes (os->type);
  int64_t n = fb_shape_elements (os), m = fb_shape_elements (in);
  FbLiteral *r = fb_literal_new (ctx->base.arena, instr->shape);
  for (int64_t i = 0; i < n; i++)
    memcpy (r->data + i * bytes, ops[1]->data, bytes);
  int rank = in->rank;
  int64_t ostr[MAX (1, rank)], idx[MAX (1, rank)];
  _fb_interp_strides (os, ostr);
  memset (idx, 0, sizeof idx);
  for (int64_t e = 0; e < m; e++)
    {
      int64_t off = 0;
      gboolean inside = TRUE;
      for (int i = 0; i < rank; i++)
        {
          const FbPadDim *p = &a->v.pad.d[i];
          int64_t pos = p->lo + idx[i] * (p->interior + 1);
          if (pos < 0 || pos >= os->dims[i])
            {
              inside = FALSE;
              break;
            }
          off += pos * ostr[i];
        }
      if (inside)
        memcpy (r->data + off * bytes, ops[0]->data + e * bytes, bytes);
      for (int i = rank - 1; i >= 0; i--)
        {
          if (++idx[i] < in->dims[i])
            break;
          idx[i] = 0;
        }
    }
  *out = r;
  return TRUE;
}

/* Start indices of dynamic-(update-)slice: one scalar per dimension, or the
 * older single vector. Clamped so that a window of @sizes fits. */
static gboolean
dynamic_starts (FbInstr *instr, FbLiteral *const *ops, int first, const FbShape *in,
                const int64_t *sizes, int64_t *starts, GError **error)
{
  int rank = in->rank;
  int n_idx = instr->n_operands - first;
  gboolean vector = n_idx == 1 && rank != 1 && ops[first]->shape->rank == 1;
  if (!vector && n_idx != rank)
    {
      _fb_interp_error (error, instr, "needs %d start indices, not %d", rank, n_idx);
      return FALSE;
    }
  for (int i = 0; i < rank; i++)
    {
      const FbLiteral *s = ops[vector ? first : first + i];
      if (s->data == NULL || !fb_elem_type_is_int (s->shape->type)
          || fb_shape_elements (s->shape) != (vector ? rank : 1))
        {
          _fb_interp_error (error, instr, "start indices must be integer scalars");
          return FALSE;
        }
      int64_t v = fb_literal_get_s64 (s, vector ? i : 0);
      if (fb_elem_type_kind (s->shape->type) == FB_KIND_UINT && v < 0)
        v = G_MAXINT64;
      if (sizes[i] < 0 || sizes[i] > in->dims[i])
        {
          _fb_interp_error (error, instr, "a window of %" G_GINT64_FORMAT " does not fit dimension %d of size %"
                            G_GINT64_FORMAT, sizes[i], i, in->dims[i]);
          return FALSE;
        }
      starts[i] = CLAMP (v, 0, in->dims[i] - sizes[i]);
    }
  return TRUE;
}

static gboolean
eval_dynamic_slice (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (instr->n_operands < 1 || !need_array_result (instr, error)
      || !need_array (instr, ops[0], "the operand", error) || !same_type (instr, ops[0], error))
    return instr->n_operands < 1 ? need_operands (instr, 2, error) : FALSE;
  const FbShape *in = ops[0]->shape, *os = instr->shape;
  int rank = in->rank;
  if (os->rank != rank)
    {
      _fb_interp_error (error, instr, "dynamic-slice must keep the rank");
      return FALSE;
    }
  int64_t starts[MAX (1, rank)], istr[MAX (1, rank)], base = 0;
  if (!dynamic_starts (instr, ops, 1, in, os->dims, starts, error))
    return FALSE;
  _fb_interp_strides (in, istr);
  for (int i = 0; i < rank; i++)
    base += starts[i] * istr[i];
  FbLiteral *r = fb_literal_new (ctx->base.arena, instr->shape);
  strided_copy (r->data, ops[0]->data, rank, os->dims, istr, base, fb_elem_type_bytes (os->type));
  *out = r;
  return TRUE;
}

static gboolean
eval_dynamic_update_slice (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (instr->n_operands < 2)
    return need_operands (instr, 3, error);
  if (!need_array_result (instr, error) || !need_array (instr, ops[0], "the operand", error)
      || !need_array (instr, ops[1], "the update", error) || !same_type (instr, ops[0], error)
      || !same_type (instr, ops[1], error))
    return FALSE;
  const FbShape *in = ops[0]->shape, *up = ops[1]->shape;
  int rank = in->rank;
  if (!fb_shape_compatible (in, instr->shape) || up->rank != rank)
    {
      _fb_interp_error (error, instr, "the update must have the operand's rank and the result its shape");
      return FALSE;
    }
  int64_t starts[MAX (1, rank)], ostr[MAX (1, rank)], idx[MAX (1, rank)];
  if (!dynamic_starts (instr, ops, 2, in, up->dims, starts, error))
    return FALSE;
  int bytes = fb_elem_type_bytes (in->type);
  FbLiteral *r = fb_literal_copy (ctx->base.arena, ops[0]);
  r->shape = instr->shape;
  _fb_interp_strides (in, ostr);
  memset (idx, 0, sizeof idx);
  int64_t m = fb_shape_elements (up);
  for (int64_t e = 0; e < m; e++)
    {
      int64_t off = 0;
      for (int i = 0; i < rank; i++)
        off += (starts[i] + idx[i]) * ostr[i];
      memcpy (r->data + off * bytes, ops[1]->data + e * bytes, bytes);
      for (int i = rank - 1; i >= 0; i--)
        {
          if (++idx[i] < up->dims[i])
            break;
          idx[i] = 0;
        }
    }
  *out = r;
  return TRUE;
}

static gboolean
eval_iota (Ctx *ctx, FbInstr *instr, FbLiteral **out, GError **error)
{
  if (!need_operands (instr, 0, error) || !need_array_result (instr, error))
    return FALSE;
  const FbShape *os = instr->shape;
  int64_t d = fb_instr_int (instr, FB_A_IOTA_DIMENSION, os->rank == 1 ? 0 : -1);
  if (d < 0 || d >= os->rank)
    {
      _fb_interp_error (error, instr, "iota needs iota_dimension in [0, %d)", os->rank);
      return FALSE;
    }
  int64_t str[MAX (1, os->rank)];
  _fb_interp_strides (os, str);
  FbLiteral *r = fb_literal_new (ctx->base.arena, instr->shape);
  int64_t n = fb_shape_elements (os);
  gboolean is_float = fb_elem_type_kind (os->type) == FB_KIND_FLOAT
                      || fb_elem_type_kind (os->type) == FB_KIND_COMPLEX;
  for (int64_t i = 0; i < n; i++)
    {
      int64_t v = (i / str[d]) % os->dims[d];
      if (is_float)
        fb_literal_set_f64 (r, i, (double) v);
      else
        fb_literal_set_s64 (r, i, v);
    }
  *out = r;
  return TRUE;
}

/* --------------------------------------------- tuples, tokens, copies */

static FbLiteral *
make_tuple (FbArena *arena, FbShape *shape, int n, FbLiteral *const *elems)
{
  FbLiteral *t = fb_arena_new0 (arena, FbLiteral, 1);
  t->shape = shape;
  t->n_elems = n;
  t->elems = fb_arena_new0 (arena, FbLiteral *, MAX (1, n));
  if (elems != NULL)
    memcpy (t->elems, elems, sizeof (FbLiteral *) * n);
  return t;
}

/* The value a one-replica collective or async start returns in @shape: the
 * operand where it fits, zeros for context scalars. NULL when it cannot. */
static FbLiteral *
fill_like (FbArena *arena, FbShape *shape, FbLiteral *value)
{
  if (fb_shape_compatible (shape, value->shape))
    return value;
  if (fb_shape_is_tuple (shape))
    {
      FbLiteral *t = make_tuple (arena, shape, shape->n_elems, NULL);
      for (int i = 0; i < shape->n_elems; i++)
        {
          t->elems[i] = fill_like (arena, shape->elems[i], value);
          if (t->elems[i] == NULL)
            return NULL;
        }
      return t;
    }
  if (value->data != NULL && shape->type == value->shape->type
      && fb_shape_elements (shape) == fb_shape_elements (value->shape))
    {
      FbLiteral *r = fb_literal_copy (arena, value);
      r->shape = shape;
      return r;
    }
  if (shape->rank == 0 || shape->type == FB_TOKEN)
    return fb_literal_new (arena, shape);
  return NULL;
}

static FbLiteral *
operands_value (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops)
{
  if (instr->n_operands == 1)
    return ops[0];
  FbShape *shapes[MAX (1, instr->n_operands)];
  for (int i = 0; i < instr->n_operands; i++)
    shapes[i] = ops[i]->shape;
  return make_tuple (ctx->base.arena, fb_shape_new_tuple (ctx->base.arena, instr->n_operands, shapes),
                     instr->n_operands, ops);
}

static gboolean
eval_collective (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (instr->n_operands < 1)
    return need_operands (instr, 1, error);
  FbLiteral *value = operands_value (ctx, instr, ops);
  if (instr->opcode == FB_OP_COLLECTIVE_PERMUTE || instr->opcode == FB_OP_COLLECTIVE_PERMUTE_START)
    {
      /* With one replica a permute delivers only along a 0 -> 0 pair; a
       * replica that receives nothing gets zeros. */
      const FbAttr *a = fb_instr_get_raw_attr (instr, "source_target_pairs");
      gboolean self = a == NULL;
      if (a != NULL && a->kind == FB_AV_RAW && a->v.s != NULL)
        {
          g_autofree char *flat = g_strdelimit (g_strdup (a->v.s), "{} ", ' ');
          g_auto (GStrv) parts = g_strsplit_set (flat, " ", -1);
          GPtrArray *nums = g_ptr_array_new ();
          for (int i = 0; parts[i] != NULL; i++)
            for (char *s = parts[i], *e; *s != '\0'; s = e)
              {
                while (*s == ',')
                  s++;
                if (*s == '\0')
                  break;
                gint64 v = g_ascii_strtoll (s, &e, 10);
                if (e == s)
                  break;
                g_ptr_array_add (nums, GINT_TO_POINTER ((int) v));
              }
          for (guint i = 0; i + 1 < nums->len; i += 2)
            if (nums->pdata[i] == GINT_TO_POINTER (0) && nums->pdata[i + 1] == GINT_TO_POINTER (0))
              self = TRUE;
          g_ptr_array_unref (nums);
        }
      if (!self)
        {
          FbLiteral *zero = fb_literal_new (ctx->base.arena, value->shape);
          value = zero;
        }
    }
  FbLiteral *r = fill_like (ctx->base.arena, instr->shape, value);
  if (r == NULL)
    {
      _fb_interp_error (error, instr, "%s with this result shape needs more than one replica; "
                        "the interpreter runs one", fb_opcode_name (instr->opcode));
      return FALSE;
    }
  *out = r;
  return TRUE;
}

/* *-done: the operand itself, or the element of the start's tuple that has
 * the result's shape (element 1 first: the output of copy/async starts). */
static gboolean
eval_done (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (!need_operands (instr, 1, error))
    return FALSE;
  FbLiteral *v = ops[0];
  if (fb_shape_compatible (instr->shape, v->shape))
    {
      *out = v;
      return TRUE;
    }
  if (v->shape->type == FB_TUPLE)
    {
      if (v->n_elems > 1 && fb_shape_compatible (instr->shape, v->elems[1]->shape))
        {
          *out = v->elems[1];
          return TRUE;
        }
      for (int i = 0; i < v->n_elems; i++)
        if (fb_shape_compatible (instr->shape, v->elems[i]->shape))
          {
            *out = v->elems[i];
            return TRUE;
          }
    }
  _fb_interp_error (error, instr, "the operand holds no value of the result's shape");
  (void) ctx;
  return FALSE;
}

/* ------------------------------------------------------- control flow */

static FbComputation *
need_comp (FbInstr *instr, FbAttrKey key, GError **error)
{
  FbComputation *c = fb_instr_comp (instr, key);
  if (c == NULL)
    _fb_interp_error (error, instr, "%s needs %s=", fb_opcode_name (instr->opcode), fb_attr_key_name (key));
  return c;
}

static gboolean
check_result (FbInstr *instr, FbLiteral *r, GError **error)
{
  if (!fb_shape_compatible (instr->shape, r->shape))
    {
      g_autofree char *a = fb_shape_to_string (r->shape);
      g_autofree char *b = fb_shape_to_string (instr->shape);
      _fb_interp_error (error, instr, "the called computation returns %s, the instruction is %s", a, b);
      return FALSE;
    }
  return TRUE;
}

static gboolean
eval_call_like (Ctx *ctx, FbInstr *instr, FbComputation *comp, FbLiteral *const *ops, FbLiteral **out,
                GError **error)
{
  FbLiteral *r = call_scoped (ctx, comp, instr->n_operands, ops, ctx->base.arena, error);
  if (r == NULL)
    return FALSE;
  if (!check_result (instr, r, error))
    return FALSE;
  *out = r;
  return TRUE;
}

static gboolean
scalar_pred (FbInstr *instr, const FbLiteral *v, gboolean *out, GError **error)
{
  if (v->data == NULL || v->shape->type != FB_PRED || fb_shape_elements (v->shape) != 1)
    {
      _fb_interp_error (error, instr, "the condition must return a pred scalar");
      return FALSE;
    }
  *out = v->data[0] != 0;
  return TRUE;
}

static gboolean
eval_while (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (!need_operands (instr, 1, error))
    return FALSE;
  FbComputation *cond = need_comp (instr, FB_A_CONDITION, error);
  FbComputation *body = cond != NULL ? need_comp (instr, FB_A_BODY, error) : NULL;
  if (body == NULL)
    return FALSE;
  FbLiteral *state = ops[0];
  FbArena *held = NULL;   /* holds the current state after the first iteration */
  gboolean ok = FALSE;
  for (int64_t iter = 0;; iter++)
    {
      FbArena *scratch = fb_arena_new ();
      FbLiteral *c = call_scoped (ctx, cond, 1, &state, scratch, error);
      gboolean go = FALSE;
      gboolean fine = c != NULL && scalar_pred (instr, c, &go, error);
      fb_arena_free (scratch);
      if (!fine)
        break;
      if (!go)
        {
          ok = TRUE;
          break;
        }
      if (iter >= MAX_WHILE_ITERATIONS)
        {
          _fb_interp_error (error, instr, "the loop ran %d iterations without ending; giving up",
                            MAX_WHILE_ITERATIONS);
          break;
        }
      FbArena *next = fb_arena_new ();
      FbLiteral *s = call_scoped (ctx, body, 1, &state, next, error);
      if (s == NULL || !fb_shape_compatible (s->shape, ops[0]->shape))
        {
          if (s != NULL)
            _fb_interp_error (error, instr, "the body returns a value of another shape than the loop state");
          fb_arena_free (next);
          break;
        }
      fb_arena_free (held);
      held = next;
      state = s;
    }
  if (ok)
    {
      *out = held != NULL ? fb_literal_copy (ctx->base.arena, state) : state;
      ok = check_result (instr, *out, error);
    }
  fb_arena_free (held);
  return ok;
}

static gboolean
eval_conditional (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  if (instr->n_operands < 1)
    return need_operands (instr, 1, error);
  FbComputation *branches[2];
  FbComputation **list;
  int n;
  const FbAttr *bc = fb_instr_get_attr (instr, FB_A_BRANCH_COMPUTATIONS);
  if (bc != NULL && (bc->kind == FB_AV_COMPS || bc->kind == FB_AV_COMP))
    {
      list = bc->v.comps.c;
      n = bc->v.comps.n;
    }
  else
    {
      branches[0] = fb_instr_comp (instr, FB_A_TRUE_COMPUTATION);
      branches[1] = fb_instr_comp (instr, FB_A_FALSE_COMPUTATION);
      list = branches;
      n = branches[0] != NULL && branches[1] != NULL ? 2 : 0;
    }
  if (n == 0 || instr->n_operands != n + 1)
    {
      _fb_interp_error (error, instr, "conditional needs one operand per branch after the selector");
      return FALSE;
    }
  const FbLiteral *sel = ops[0];
  if (sel->data == NULL || fb_shape_elements (sel->shape) != 1)
    {
      _fb_interp_error (error, instr, "the branch selector must be a pred or s32 scalar");
      return FALSE;
    }
  int64_t b;
  if (sel->shape->type == FB_PRED)
    b = sel->data[0] ? 0 : 1;
  else if (fb_elem_type_is_int (sel->shape->type))
    {
      b = fb_literal_get_s64 (sel, 0);
      if (b < 0 || b >= n)
        b = n - 1;
    }
  else
    {
      _fb_interp_error (error, instr, "the branch selector must be a pred or s32 scalar");
      return FALSE;
    }
  if (list[b] == NULL)
    {
      _fb_interp_error (error, instr, "branch %" G_GINT64_FORMAT " has no computation", b);
      return FALSE;
    }
  FbLiteral *r = call_scoped (ctx, list[b], 1, &ops[b + 1], ctx->base.arena, error);
  if (r == NULL)
    return FALSE;
  if (!check_result (instr, r, error))
    return FALSE;
  *out = r;
  return TRUE;
}

static gboolean
eval_map (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  FbComputation *f = need_comp (instr, FB_A_TO_APPLY, error);
  if (f == NULL || !need_array_result (instr, error))
    return FALSE;
  int k = instr->n_operands;
  int64_t n = fb_shape_elements (instr->shape);
  for (int j = 0; j < k; j++)
    if (!need_array (instr, ops[j], "every operand", error))
      return FALSE;
    else if (fb_shape_elements (ops[j]->shape) != n)
      {
        _fb_interp_error (error, instr, "operand %d has another number of elements than the result", j);
        return FALSE;
      }
  FbLiteral *r = fb_literal_new (ctx->base.arena, instr->shape);
  int rbytes = fb_elem_type_bytes (instr->shape->type);
  FbArena *scratch = fb_arena_new ();
  FbLiteral *args[MAX (1, k)];
  for (int j = 0; j < k; j++)
    args[j] = fb_literal_new (scratch, fb_shape_new_scalar (scratch, ops[j]->shape->type));
  gboolean ok = TRUE;
  for (int64_t i = 0; i < n && ok; i++)
    {
      for (int j = 0; j < k; j++)
        {
          int b = fb_elem_type_bytes (ops[j]->shape->type);
          memcpy (args[j]->data, ops[j]->data + i * b, b);
        }
      FbArena *elem = fb_arena_new ();
      Ctx sub = sub_ctx (ctx, elem);
      FbLiteral *v = eval_comp (&sub, f, k, args, error);
      if (v == NULL)
        ok = FALSE;
      else if (v->data == NULL || v->shape->type != instr->shape->type || fb_shape_elements (v->shape) != 1)
        {
          _fb_interp_error (error, instr, "the mapped computation must return a %s scalar",
                            fb_elem_type_name (instr->shape->type));
          ok = FALSE;
        }
      else
        memcpy (r->data + i * rbytes, v->data, rbytes);
      fb_arena_free (elem);
    }
  fb_arena_free (scratch);
  if (ok)
    *out = r;
  return ok;
}

static gboolean
eval_async_start (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  FbComputation *comp = need_comp (instr, FB_A_CALLS, error);
  if (comp == NULL)
    return FALSE;
  FbLiteral *r = call_scoped (ctx, comp, instr->n_operands, ops, ctx->base.arena, error);
  if (r == NULL)
    return FALSE;
  FbShape *s = instr->shape;
  if (!fb_shape_is_tuple (s) || s->n_elems < 2)
    {
      _fb_interp_error (error, instr, "async-start must return (operands, result, ...)");
      return FALSE;
    }
  FbLiteral *t = make_tuple (ctx->base.arena, s, s->n_elems, NULL);
  FbShape *arg_shapes[MAX (1, instr->n_operands)];
  for (int i = 0; i < instr->n_operands; i++)
    arg_shapes[i] = ops[i]->shape;
  FbLiteral *args = make_tuple (ctx->base.arena,
                                fb_shape_new_tuple (ctx->base.arena, instr->n_operands, arg_shapes),
                                instr->n_operands, ops);
  t->elems[0] = fill_like (ctx->base.arena, s->elems[0], args);
  t->elems[1] = fb_shape_compatible (s->elems[1], r->shape) ? r : NULL;
  for (int i = 2; i < s->n_elems; i++)
    t->elems[i] = fb_literal_new (ctx->base.arena, s->elems[i]);
  if (t->elems[0] == NULL || t->elems[1] == NULL)
    {
      _fb_interp_error (error, instr, "async-start's shape does not match its operands and computation");
      return FALSE;
    }
  *out = t;
  return TRUE;
}

static gboolean
eval_custom_call (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out, GError **error)
{
  const char *target = fb_instr_str (instr, FB_A_CUSTOM_CALL_TARGET);
  const FbCustomCallMap *map = ctx->base.custom_calls != NULL ? ctx->base.custom_calls : ctx->run->builtin_map;
  FbCustomCallImpl impl;
  GError *local = NULL;
  if (target == NULL)
    {
      unsupported (error, instr, "custom-call has no custom_call_target");
      return FALSE;
    }
  if (!fb_custom_call_map_lookup (map, target, &impl, &local))
    {
      unsupported (error, instr, "%s", local->message);
      g_error_free (local);
      return FALSE;
    }
  switch (impl)
    {
    case FB_CC_TOPK:
      return _fb_interp_topk (&ctx->base, instr, ops, out, error);
    case FB_CC_IDENTITY:
      {
        if (instr->n_operands < 1)
          return need_operands (instr, 1, error);
        FbLiteral *r = fill_like (ctx->base.arena, instr->shape, operands_value (ctx, instr, ops));
        if (r == NULL)
          {
            _fb_interp_error (error, instr, "custom-call \"%s\" maps to identity but its result shape "
                              "differs from its operands", target);
            return FALSE;
          }
        *out = r;
        return TRUE;
      }
    default:
      unsupported (error, instr, "custom-call \"%s\" maps to an implementation the interpreter lacks", target);
      return FALSE;
    }
}

/* ------------------------------------------------------------ dispatch */

static gboolean
eval_instr (Ctx *ctx, FbInstr *instr, FbLiteral *const *ops, int n_args, FbLiteral *const *args,
            FbLiteral **out, GError **error)
{
  FbInterp *base = &ctx->base;
  FbArena *arena = base->arena;
  FbOpcode op = instr->opcode;

  if (instr->shape == NULL || (instr->shape->type != FB_TUPLE && (instr->shape->rank < 0 || instr->shape->rank > 64)))
    {
      _fb_interp_error (error, instr, "has no shape or a rank above 64");
      return FALSE;
    }
  for (int j = 0; j < instr->n_operands; j++)
    if (ops[j] == NULL)
      {
        _fb_interp_error (error, instr, "operand %d has no value", j);
        return FALSE;
      }

  switch (op)
    {
    case FB_OP_PARAMETER:
      if (instr->parameter_number < 0 || instr->parameter_number >= n_args)
        {
          _fb_interp_error (error, instr, "parameter %" G_GINT64_FORMAT " has no argument",
                            instr->parameter_number);
          return FALSE;
        }
      *out = args[instr->parameter_number];
      return TRUE;
    case FB_OP_CONSTANT:
      if (instr->literal == NULL)
        {
          _fb_interp_error (error, instr, "constant has no value");
          return FALSE;
        }
      *out = instr->literal;
      return TRUE;

    case FB_OP_COMPARE:
    case FB_OP_SELECT:
    case FB_OP_CLAMP:
      return _fb_interp_elementwise (base, instr, ops, out, error);

    case FB_OP_RESHAPE:
    case FB_OP_BITCAST:
    case FB_OP_COPY:
      return eval_reshape (ctx, instr, ops, out, error);
    case FB_OP_BROADCAST:
      return eval_broadcast (ctx, instr, ops, out, error);
    case FB_OP_TRANSPOSE:
      return eval_transpose (ctx, instr, ops, out, error);
    case FB_OP_SLICE:
      return eval_slice (ctx, instr, ops, out, error);
    case FB_OP_REVERSE:
      return eval_reverse (ctx, instr, ops, out, error);
    case FB_OP_CONCATENATE:
      return eval_concatenate (ctx, instr, ops, out, error);
    case FB_OP_PAD:
      return eval_pad (ctx, instr, ops, out, error);
    case FB_OP_DYNAMIC_SLICE:
      return eval_dynamic_slice (ctx, instr, ops, out, error);
    case FB_OP_DYNAMIC_UPDATE_SLICE:
      return eval_dynamic_update_slice (ctx, instr, ops, out, error);
    case FB_OP_IOTA:
      return eval_iota (ctx, instr, out, error);

    case FB_OP_TUPLE:
      if (!fb_shape_is_tuple (instr->shape) || instr->shape->n_elems != instr->n_operands)
        {
          _fb_interp_error (error, instr, "tuple shape does not match its %d operands", instr->n_operands);
          return FALSE;
        }
      *out = make_tuple (arena, instr->shape, instr->n_operands, ops);
      return TRUE;
    case FB_OP_GET_TUPLE_ELEMENT:
      {
        if (!need_operands (instr, 1, error))
          return FALSE;
        int64_t i = fb_instr_int (instr, FB_A_INDEX, -1);
        if (ops[0]->shape->type != FB_TUPLE || i < 0 || i >= ops[0]->n_elems)
          {
            _fb_interp_error (error, instr, "index=%" G_GINT64_FORMAT " is not an element of the operand", i);
            return FALSE;
          }
        *out = ops[0]->elems[i];
        return TRUE;
      }

    case FB_OP_OPTIMIZATION_BARRIER:
    case FB_OP_DOMAIN:
    case FB_OP_ASYNC_UPDATE:
      if (!need_operands (instr, 1, error))
        return FALSE;
      *out = ops[0];
      return TRUE;
    case FB_OP_ADD_DEPENDENCY:
      if (!need_operands (instr, 2, error))
        return FALSE;
      *out = ops[0];
      return TRUE;
    case FB_OP_AFTER_ALL:
    case FB_OP_REPLICA_ID:
    case FB_OP_PARTITION_ID:
      *out = fb_literal_new (arena, instr->shape);
      return TRUE;
    case FB_OP_GET_DIMENSION_SIZE:
      {
        if (!need_operands (instr, 1, error) || !need_array_result (instr, error))
          return FALSE;
        const FbDims *d = need_dims (instr, FB_A_DIMENSIONS, 1, error);
        if (d == NULL)
          return FALSE;
        if (d->v[0] < 0 || d->v[0] >= ops[0]->shape->rank)
          {
            _fb_interp_error (error, instr, "dimension %" G_GINT64_FORMAT " is out of range", d->v[0]);
            return FALSE;
          }
        FbLiteral *r = fb_literal_new (arena, instr->shape);
        fb_literal_set_s64 (r, 0, ops[0]->shape->dims[d->v[0]]);
        *out = r;
        return TRUE;
      }

    case FB_OP_COPY_START:
      {
        if (!need_operands (instr, 1, error))
          return FALSE;
        FbLiteral *r = fill_like (arena, instr->shape, ops[0]);
        if (r == NULL)
          {
            _fb_interp_error (error, instr, "copy-start's shape does not hold its operand");
            return FALSE;
          }
        *out = r;
        return TRUE;
      }
    case FB_OP_COPY_DONE:
    case FB_OP_ASYNC_DONE:
    case FB_OP_ALL_REDUCE_DONE:
    case FB_OP_ALL_GATHER_DONE:
    case FB_OP_COLLECTIVE_PERMUTE_DONE:
      return eval_done (ctx, instr, ops, out, error);
    case FB_OP_ALL_REDUCE:
    case FB_OP_ALL_REDUCE_START:
    case FB_OP_ALL_GATHER:
    case FB_OP_ALL_GATHER_START:
    case FB_OP_REDUCE_SCATTER:
    case FB_OP_ALL_TO_ALL:
    case FB_OP_COLLECTIVE_PERMUTE:
    case FB_OP_COLLECTIVE_PERMUTE_START:
    case FB_OP_COLLECTIVE_BROADCAST:
      return eval_collective (ctx, instr, ops, out, error);

    case FB_OP_CALL:
      {
        FbComputation *c = need_comp (instr, FB_A_TO_APPLY, error);
        return c != NULL && eval_call_like (ctx, instr, c, ops, out, error);
      }
    case FB_OP_FUSION:
      {
        FbComputation *c = need_comp (instr, FB_A_CALLS, error);
        return c != NULL && eval_call_like (ctx, instr, c, ops, out, error);
      }
    case FB_OP_WHILE:
      return eval_while (ctx, instr, ops, out, error);
    case FB_OP_CONDITIONAL:
      return eval_conditional (ctx, instr, ops, out, error);
    case FB_OP_MAP:
      return eval_map (ctx, instr, ops, out, error);
    case FB_OP_ASYNC_START:
      return eval_async_start (ctx, instr, ops, out, error);
    case FB_OP_CUSTOM_CALL:
      return eval_custom_call (ctx, instr, ops, out, error);

    case FB_OP_RNG_BIT_GENERATOR:
      return _fb_interp_rng_bit_generator (base, instr, ops, out, error);
    case FB_OP_RNG:
      return _fb_interp_rng (base, instr, ops, ctx->run->rng_runs++, out, error);

    case FB_OP_DOT:
      return _fb_interp_dot (base, instr, ops, out, error);
    case FB_OP_CONVOLUTION:
      return _fb_interp_convolution (base, instr, ops, out, error);
    case FB_OP_REDUCE:
      return _fb_interp_reduce (base, instr, ops, out, error);
    case FB_OP_REDUCE_WINDOW:
      return _fb_interp_reduce_window (base, instr, ops, out, error);
    case FB_OP_SELECT_AND_SCATTER:
      return _fb_interp_select_and_scatter (base, instr, ops, out, error);
    case FB_OP_GATHER:
      return _fb_interp_gather (base, instr, ops, out, error);
    case FB_OP_SCATTER:
      return _fb_interp_scatter (base, instr, ops, out, error);
    case FB_OP_SORT:
      return _fb_interp_sort (base, instr, ops, out, error);
    case FB_OP_BATCH_NORM_TRAINING:
    case FB_OP_BATCH_NORM_INFERENCE:
    case FB_OP_BATCH_NORM_GRAD:
      return _fb_interp_batch_norm (base, instr, ops, out, error);
    case FB_OP_TOPK:
      return _fb_interp_topk (base, instr, ops, out, error);
    case FB_OP_CHOLESKY:
      return _fb_interp_cholesky (base, instr, ops, out, error);
    case FB_OP_TRIANGULAR_SOLVE:
      return _fb_interp_triangular_solve (base, instr, ops, out, error);
    case FB_OP_FFT:
      return _fb_interp_fft (base, instr, ops, out, error);

    case FB_OP_STOCHASTIC_CONVERT:
      break;
    default:
      {
        FbOpCategory cat = fb_opcode_category (op);
        if (cat == FB_CAT_UNARY || cat == FB_CAT_BINARY)
          return _fb_interp_elementwise (base, instr, ops, out, error);
      }
      break;
    }
  unsupported (error, instr, "the interpreter cannot execute %s", fb_opcode_name (op));
  return FALSE;
}

/* ----------------------------------------------------------- entry */

static FbLiteral *
interp_run (FbModule *module, FbComputation *comp, FbArena *arena, int n_args, FbLiteral *const *args,
            const FbCustomCallMap *custom_calls, FbRecorder *recorder, GError **error)
{
  if (n_args != comp->n_params)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "%s takes %d argument%s but %d %s given",
                   comp->name, comp->n_params, comp->n_params == 1 ? "" : "s", n_args,
                   n_args == 1 ? "was" : "were");
      return NULL;
    }
  for (int i = 0; i < n_args; i++)
    {
      FbInstr *p = comp->params[i];
      if (args[i] == NULL || p == NULL || !fb_shape_compatible (p->shape, args[i]->shape))
        {
          g_autofree char *want = p != NULL ? fb_shape_to_string (p->shape) : g_strdup ("?");
          g_autofree char *got = args[i] != NULL ? fb_shape_to_string (args[i]->shape) : g_strdup ("nothing");
          g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "argument %d is %s but parameter %d of %s is %s",
                       i, got, i, comp->name, want);
          return NULL;
        }
    }

  Run run = { 0 };
  run.recorder = recorder;
  run.plans = g_hash_table_new_full (NULL, NULL, NULL, plan_free);
  if (custom_calls == NULL)
    run.builtin_map = fb_custom_call_map_new ();
  FbArena *scratch = fb_arena_new ();
  Ctx ctx = { { module, scratch, custom_calls, 0 }, &run };

  FbLiteral *r = eval_comp (&ctx, comp, n_args, args, error);
  FbLiteral *result = r != NULL ? fb_literal_copy (arena, r) : NULL;

  fb_arena_free (scratch);
  g_hash_table_unref (run.plans);
  if (run.builtin_map != NULL)
    fb_custom_call_map_free (run.builtin_map);
  return result;
}

FbLiteral *
fb_interp_run (FbModule *module, FbComputation *comp, FbArena *arena,
               int n_args, FbLiteral *const *args,
               const FbCustomCallMap *custom_calls, GError **error)
{
  g_return_val_if_fail (module != NULL, NULL);
  g_return_val_if_fail (comp != NULL, NULL);
  g_return_val_if_fail (arena != NULL, NULL);
  g_return_val_if_fail (n_args == 0 || args != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return interp_run (module, comp, arena, n_args, args, custom_calls, NULL, error);
}

/* ------------------------------------------------------------ backend */

typedef struct {
  FbExecutable     base;
  FbCustomCallMap *custom_calls;   /* borrowed */
  FbRecorder      *recorder;       /* borrowed; NULL: no spans */
} InterpExecutable;

static gboolean
interp_available (GError **error)
{
  return TRUE;
}

static FbExecutable *
interp_compile (FbModule *module, const FbBackendOptions *options, GError **error)
{
  if (module == NULL || module->entry == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "the module has no entry computation");
      return NULL;
    }
  InterpExecutable *exe = g_new0 (InterpExecutable, 1);
  exe->base.backend = &fb_interp_backend;
  exe->base.module = module;
  exe->custom_calls = options != NULL ? options->custom_calls : NULL;
  exe->recorder = options != NULL ? options->recorder : NULL;
  return &exe->base;
}

static FbLiteral *
interp_execute (FbExecutable *exe, FbArena *arena, int n_args, FbLiteral *const *args, GError **error)
{
  InterpExecutable *ie = (InterpExecutable *) exe;
  g_return_val_if_fail (n_args == 0 || args != NULL, NULL);
  return interp_run (exe->module, exe->module->entry, arena, n_args, args, ie->custom_calls,
                     ie->recorder, error);
}

static void
interp_free (FbExecutable *exe)
{
  g_free (exe);
}

const FbBackend fb_interp_backend = {
  .name = "interp",
  .available = interp_available,
  .compile = interp_compile,
  .execute = interp_execute,
  .free = interp_free,
};
