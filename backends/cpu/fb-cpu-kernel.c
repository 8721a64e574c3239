/* SPDX-License-Identifier: MIT
 *
 * The CPU loop driver: wraps the elemental emitter in a function per kernel
 * with a loop nest over the output, so that a caller can split the outer
 * range across threads. Three shapes of loop nest:
 *
 *   linear  elementwise kernels whose values all have the output's element
 *           count: one loop over the flattened range, every buffer indexed
 *           by the same offset; the loop vectoriser handles it directly.
 *   nest    everything else: the outer loop runs over [begin, end) of
 *           output dimension 0, inner loops over the other dimensions with
 *           the last one innermost and contiguous. Reductions whose result
 *           is indexed by the enclosing loops (a softmax's row maximum) are
 *           computed once per row, before the inner loops, and reused.
 *           Outputs of lower rank (multi-output fusions) are stored at the
 *           loop level of their rank.
 *   column  reductions over the leading dimensions: the output row is
 *           initialised, then each reduced row is folded into it, with the
 *           output dimension innermost so that the fold vectorises.
 *   split   multi-output fusions whose outputs have unrelated shapes (from
 *           horizontal fusion): the outer range runs over the rows of every
 *           output in turn (long rows in chunks), each row an inner loop.
 *
 * In a nest whose rows are reduced and then used elementwise (layer norm,
 * softmax), the innermost loop runs in strips that first prefetch the same
 * strip of the next row, so that memory keeps streaming while a row is
 * computed from the cache.
 *
 * Kernels are `void f (void *const *buffers, int64_t begin, int64_t end)`;
 * the body is a separate internal function with noalias buffer arguments
 * that the optimiser inlines. A nest with outputs too large for the caches
 * gets a second body for 64-byte aligned output buffers, whose vector
 * stores are made non-temporal after optimisation (no read of each line
 * before it is written); the wrapper checks the alignment at run time and
 * ends the streaming body with a store fence.
 */
#include "fb-cpu-codegen-private.h"

#include <llvm-c/Target.h>
#include <string.h>

typedef enum { MODE_LINEAR, MODE_NEST, MODE_COLUMN, MODE_SPLIT } Mode;

typedef struct {
  const FbInstr *instr;   /* the instruction whose value is stored */
  int            k;       /* value index when instr is a tuple-shaped reduce; -1 otherwise */
  const FbShape *shape;   /* the stored array shape */
} Item;

typedef struct {
  const FbInstr  *kernel;
  FbComputation  *comp;       /* fused computation, NULL for a single instruction */
  int             n_items;
  Item            items[64];
  Mode            mode;
  const FbShape  *out;        /* the largest output shape (nest), the output shape (column/linear) */
  gboolean        stream;     /* the body for output buffers known to be 64-byte aligned */
} Plan;

/* Outputs at least this large bypass the caches: a consumer would not find
 * them there anyway, and streaming stores skip reading each line before
 * writing it, a third of the memory traffic of a read-once kernel. */
#define STREAM_MIN_BYTES (16 << 20)
#define STREAM_SUFFIX "_stream"
/* Elements of a row between prefetches of the next row (see emit_nest). */
#define PREFETCH_STRIP 64

/* ----------------------------------------------------------- analysis */

static gboolean
add_reduce_items (Plan *p, const FbInstr *r, GString *why)
{
  int n = r->n_operands / 2;
  for (int k = 0; k < n; k++)
    {
      if (p->n_items >= (int) G_N_ELEMENTS (p->items) || r->shape->n_elems != n)
        return FALSE;
      p->items[p->n_items++] = (Item) { r, k, r->shape->elems[k] };
    }
  return TRUE;
}

static gboolean
collect_items (Plan *p, GString *why)
{
  const FbInstr *root = p->comp != NULL ? p->comp->root : p->kernel;
  p->n_items = 0;
  if (root == NULL)
    return FALSE;
  if (root->opcode == FB_OP_REDUCE && fb_shape_is_tuple (root->shape))
    return add_reduce_items (p, root, why);
  if (p->comp != NULL && root->opcode == FB_OP_TUPLE)
    {
      if (root->n_operands > (int) G_N_ELEMENTS (p->items) || root->n_operands == 0)
        {
          if (why)
            g_string_append_printf (why, "%%%s has %d outputs", p->kernel->name, root->n_operands);
          return FALSE;
        }
      for (int i = 0; i < root->n_operands; i++)
        {
          const FbInstr *o = root->operands[i];
          if (!fb_shape_is_array (o->shape))
            {
              if (why)
                g_string_append_printf (why, "%%%s: output %d is not an array", p->kernel->name, i);
              return FALSE;
            }
          p->items[p->n_items++] = (Item) { o, -1, o->shape };
        }
      return TRUE;
    }
  if (!fb_shape_is_array (root->shape))
    {
      if (why)
        g_string_append_printf (why, "%%%s: the output is not an array", p->kernel->name);
      return FALSE;
    }
  p->items[p->n_items++] = (Item) { root, -1, root->shape };
  return TRUE;
}

static gboolean
dims_prefix (const FbShape *a, const FbShape *b)
{
  if (a->rank > b->rank)
    return FALSE;
  for (int d = 0; d < a->rank; d++)
    if (a->dims[d] != b->dims[d])
      return FALSE;
  return TRUE;
}

/* Can @i be indexed by the flat offset of an @n-element output? */
static gboolean
linear_ok (const FbInstr *i, int64_t n, gboolean top)
{
  int64_t m = fb_shape_elements (i->shape);
  if (i->opcode == FB_OP_PARAMETER)
    return TRUE;
  if (i->opcode == FB_OP_CONSTANT)
    return m == 1 || m == n;
  if (m == 1 && i->shape->rank == 0 && i->opcode != FB_OP_REDUCE)
    goto operands;
  if (m != n)
    return FALSE;
  switch (i->opcode)
    {
    case FB_OP_COPY: case FB_OP_RESHAPE: case FB_OP_BITCAST:
      break;
    case FB_OP_BROADCAST:
      if (i->operands[0]->shape->rank != 0 && fb_shape_elements (i->operands[0]->shape) != n)
        return FALSE;
      break;
    default:
      if (!fb_opcode_is_elementwise (i->opcode) && fb_opcode_category (i->opcode) != FB_CAT_UNARY
          && fb_opcode_category (i->opcode) != FB_CAT_BINARY)
        return FALSE;
      break;
    }
operands:
  if (top)
    return TRUE;
  for (int k = 0; k < i->n_operands; k++)
    if (!linear_ok (i->operands[k], n, FALSE))
      return FALSE;
  return TRUE;
}

static gboolean
column_ok (const Plan *p)
{
  const FbInstr *first = NULL;
  for (int i = 0; i < p->n_items; i++)
    {
      const FbInstr *r = p->items[i].instr;
      if (r->opcode != FB_OP_REDUCE || r->n_operands != 2 || p->items[i].k >= 0)
        return FALSE;
      FbElemType t = r->shape->type;
      if (t == FB_PRED || t == FB_F16 || t == FB_BF16)
        return FALSE;
      const FbDims *d = fb_instr_dims (r, FB_A_DIMENSIONS);
      const FbShape *in = r->operands[0]->shape;
      if (d == NULL || d->n == 0 || d->n >= in->rank)
        return FALSE;
      for (int k = 0; k < d->n; k++)
        if (d->v[k] != k)
          return FALSE;
      if (first != NULL)
        {
          const FbDims *d0 = fb_instr_dims (first, FB_A_DIMENSIONS);
          if (d0->n != d->n || !fb_shape_compatible (first->shape, r->shape)
              || !dims_prefix (first->operands[0]->shape, in) || first->operands[0]->shape->rank != in->rank)
            return FALSE;
        }
      first = r;
    }
  return first != NULL;
}

static gboolean
make_plan (Plan *p, const FbInstr *instr, GString *why)
{
  memset (p, 0, sizeof *p);
  p->kernel = instr;
  if (instr->opcode == FB_OP_FUSION)
    {
      const char *kind = fb_instr_str (instr, FB_A_KIND);
      p->comp = fb_instr_comp (instr, FB_A_CALLS);
      if (p->comp == NULL)
        {
          if (why)
            g_string_append_printf (why, "%%%s calls no computation", instr->name);
          return FALSE;
        }
      if (kind != NULL && strcmp (kind, "kLoop") != 0 && strcmp (kind, "kInput") != 0)
        {
          if (why)
            g_string_append_printf (why, "%%%s is a %s fusion; loop kernels are kLoop and kInput", instr->name, kind);
          return FALSE;
        }
      if (p->comp->n_params != instr->n_operands)
        {
          if (why)
            g_string_append_printf (why, "%%%s passes %d operands to %d parameters", instr->name,
                                    instr->n_operands, p->comp->n_params);
          return FALSE;
        }
      for (FbInstr *i = p->comp->first; i != NULL; i = i->next)
        {
          if (i == p->comp->root && i->opcode == FB_OP_TUPLE)
            continue;
          if (!_fb_emit_supports (i, TRUE, why))
            {
              if (why && why->len == 0)
                g_string_append_printf (why, "%%%s: %s cannot be generated", i->name, fb_opcode_name (i->opcode));
              return FALSE;
            }
        }
    }
  else
    {
      switch (instr->opcode)
        {
        case FB_OP_PARAMETER: case FB_OP_CONSTANT: case FB_OP_TUPLE: case FB_OP_GET_TUPLE_ELEMENT:
          if (why)
            g_string_append_printf (why, "%%%s: %s needs no kernel", instr->name, fb_opcode_name (instr->opcode));
          return FALSE;
        default:
          break;
        }
      if (!_fb_emit_supports (instr, FALSE, why))
        {
          if (why && why->len == 0)
            g_string_append_printf (why, "%%%s: %s cannot be generated", instr->name, fb_opcode_name (instr->opcode));
          return FALSE;
        }
    }
  if (!collect_items (p, why))
    return FALSE;

  /* the largest output; the others must be its prefixes */
  p->out = p->items[0].shape;
  for (int i = 1; i < p->n_items; i++)
    if (p->items[i].shape->rank > p->out->rank)
      p->out = p->items[i].shape;
  for (int i = 0; i < p->n_items; i++)
    {
      const FbShape *s = p->items[i].shape;
      if (!dims_prefix (s, p->out) || (s->rank == 0 && p->out->rank > 0))
        {
          /* outputs of unrelated shapes: one flat range over all of them */
          p->mode = MODE_SPLIT;
          return TRUE;
        }
    }

  if (column_ok (p))
    {
      p->mode = MODE_COLUMN;
      return TRUE;
    }
  p->mode = MODE_NEST;
  if (p->out->rank >= 1)
    {
      int64_t n = fb_shape_elements (p->out);
      gboolean lin = TRUE;
      for (int i = 0; lin && i < p->n_items; i++)
        lin = p->items[i].k < 0 && fb_shape_elements (p->items[i].shape) == n
              && linear_ok (p->items[i].instr, n, p->comp == NULL);
      if (lin)
        p->mode = MODE_LINEAR;
    }
  return TRUE;
}

int
_fb_cpu_output_count (const FbInstr *instr)
{
  if (fb_shape_is_tuple (instr->shape))
    return instr->shape->n_elems;
  return 1;
}

gboolean
fb_cpu_can_generate_why (const FbInstr *instr, GString *why)
{
  Plan p;
  g_return_val_if_fail (instr != NULL, FALSE);
  return make_plan (&p, instr, why);
}

gboolean
fb_cpu_can_generate (const FbInstr *instr)
{
  return fb_cpu_can_generate_why (instr, NULL);
}

/* ----------------------------------------------------------- emission */

/* Can the loop nest of @p stream its full-rank outputs? Each innermost row
 * of every such output must start 64 bytes after the previous one (so that
 * an aligned buffer gives aligned vector stores), and the outputs must be
 * too large to stay in the caches. */
static gboolean
stream_ok (const Plan *p)
{
  if (p->mode != MODE_NEST || p->out->rank < 1)
    return FALSE;
  int64_t bytes = 0;
  for (int i = 0; i < p->n_items; i++)
    {
      const FbShape *s = p->items[i].shape;
      if (s->rank != p->out->rank)
        continue;
      int64_t row = s->dims[s->rank - 1] * fb_elem_type_bytes (s->type);
      if (s->type == FB_PRED || row % 64 != 0)
        return FALSE;
      bytes += fb_shape_elements (s) * fb_elem_type_bytes (s->type);
    }
  return bytes >= STREAM_MIN_BYTES;
}

/* Stores every item of rank @rank at @idx (its first @rank dims). */
static void
store_items (FbEmitter *e, const Plan *p, LLVMValueRef *outs, FbIndex *idx, int rank)
{
  LLVMValueRef vals[FB_EMIT_MAX_RANK];
  const FbInstr *have = NULL;
  for (int i = 0; i < p->n_items; i++)
    {
      const Item *it = &p->items[i];
      if (it->shape->rank != rank)
        continue;
      FbIndex oi = *idx;
      oi.rank = rank;
      oi.dims = it->shape->dims;
      if (rank != idx->rank)
        oi.linear = NULL;
      LLVMValueRef v;
      if (it->k >= 0)
        {
          if (have != it->instr)
            _fb_emit_reduce (e, it->instr, &oi, vals);
          have = it->instr;
          v = vals[it->k];
        }
      else
        v = _fb_emit_value (e, it->instr, &oi);
      _fb_emit_store (e, it->shape->type, outs[i], _fb_index_linear (e, &oi), v);
    }
}

/* Reductions of the fused computation whose value at loop level @level is
 * indexed by the enclosing loop variables: emitted here once, reused by the
 * memo inside the inner loops. */
static void
hoist_reductions (FbEmitter *e, const Plan *p, FbIndex *idx, int level)
{
  if (p->comp == NULL)
    return;
  for (FbInstr *i = p->comp->first; i != NULL; i = i->next)
    {
      if (i->opcode != FB_OP_REDUCE || !fb_shape_is_array (i->shape) || i->shape->rank != level
          || !dims_prefix (i->shape, p->out) || i == p->comp->root)
        continue;
      FbIndex ri = *idx;
      ri.rank = level;
      ri.dims = i->shape->dims;
      ri.linear = NULL;
      _fb_emit_value (e, i, &ri);
    }
}

/* Does the fused computation reduce whole rows of the output's shape? */
static gboolean
row_reductions (const Plan *p)
{
  if (p->comp == NULL)
    return FALSE;
  for (FbInstr *i = p->comp->first; i != NULL; i = i->next)
    if (i->opcode == FB_OP_REDUCE && fb_shape_is_array (i->shape) && i->shape->rank == p->out->rank - 1
        && dims_prefix (i->shape, p->out) && i != p->comp->root)
      return TRUE;
  return FALSE;
}

/* Row reductions read each row first from memory and then from the cache:
 * while the elementwise part of a row is computed, the next row of every
 * input of the output's shape is fetched into the second-level cache, so
 * that the memory is busy all along. */
static void
prefetch_next_row (FbEmitter *e, const Plan *p, FbIndex *idx)
{
  const FbShape *os = p->out;
  LLVMValueRef at = LLVMBuildAdd (e->b, _fb_index_linear (e, idx), _fb_emit_i64 (e, os->dims[os->rank - 1]), "");
  LLVMTypeRef pt = e->t_ptr;
  unsigned id = LLVMLookupIntrinsicID ("llvm.prefetch", 13);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration (e->mod, id, &pt, 1);
  for (int k = 0; k < p->comp->n_params && k < e->n_params; k++)
    {
      const FbShape *s = p->comp->params[k]->shape;
      if (!fb_shape_is_array (s) || s->rank != os->rank || !dims_prefix (s, os) || s->type == FB_PRED)
        continue;
      /* one prefetch per 64-byte line of the strip (read, keep in L2) */
      int esize = fb_elem_type_bytes (s->type);
      for (int64_t off = 0; off < PREFETCH_STRIP * esize; off += 64)
        {
          LLVMValueRef elem = LLVMBuildAdd (e->b, at, _fb_emit_i64 (e, off / esize), "");
          LLVMValueRef ptr = LLVMBuildGEP2 (e->b, _fb_emit_store_type (e, s->type), e->params[k], &elem, 1, "");
          LLVMValueRef args[4] = { ptr, LLVMConstInt (e->t_i32, 0, FALSE), LLVMConstInt (e->t_i32, 2, FALSE),
                                   LLVMConstInt (e->t_i32, 1, FALSE) };
          LLVMBuildCall2 (e->b, LLVMIntrinsicGetType (e->ctx, id, &pt, 1), f, args, 4, "");
        }
    }
}

static void
emit_nest (FbEmitter *e, const Plan *p, LLVMValueRef *outs, LLVMValueRef begin, LLVMValueRef end)
{
  const FbShape *os = p->out;
  FbIndex idx;
  _fb_index_init (&idx, os);
  FbLoop loops[FB_EMIT_MAX_RANK];

  hoist_reductions (e, p, &idx, 0);
  if (os->rank == 0)
    {
      /* one element: written by the part that holds index 0 */
      FbLoop once;
      _fb_emit_loop_begin (e, &once, "once", begin, end);
      store_items (e, p, outs, &idx, 0);
      _fb_emit_loop_end (e, &once);
      return;
    }
  /* rows that read their data twice: the innermost loop runs in strips of
   * PREFETCH_STRIP elements, each of which first prefetches the same strip
   * of the next row (a prefetch inside the loop would stop the vectoriser) */
  int last = os->rank - 1;
  gboolean strips = last > 0 && os->dims[last] > PREFETCH_STRIP && row_reductions (p);
  FbLoop strip;
  for (int d = 0; d < os->rank; d++)
    {
      LLVMValueRef lo = d == 0 ? begin : _fb_emit_i64 (e, 0);
      LLVMValueRef hi = d == 0 ? end : _fb_emit_i64 (e, os->dims[d]);
      if (d == last && strips)
        {
          int64_t n = (os->dims[d] + PREFETCH_STRIP - 1) / PREFETCH_STRIP;
          _fb_emit_loop_begin (e, &strip, "strip", _fb_emit_i64 (e, 0), _fb_emit_i64 (e, n));
          lo = LLVMBuildNSWMul (e->b, strip.iv, _fb_emit_i64 (e, PREFETCH_STRIP), "");
          LLVMValueRef top = LLVMBuildNSWAdd (e->b, lo, _fb_emit_i64 (e, PREFETCH_STRIP), "");
          hi = LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, LLVMIntSLT, top, hi, ""), top, hi, "");
          idx.v[d] = lo;
          idx.linear = NULL;
          prefetch_next_row (e, p, &idx);
        }
      _fb_emit_loop_begin (e, &loops[d], d == last ? "inner" : "outer", lo, hi);
      idx.v[d] = loops[d].iv;
      idx.linear = NULL;
      if (d + 1 < os->rank)
        hoist_reductions (e, p, &idx, d + 1);
      store_items (e, p, outs, &idx, d + 1);
    }
  for (int d = os->rank - 1; d >= 0; d--)
    {
      _fb_emit_loop_end (e, &loops[d]);
      if (d == last && strips)
        _fb_emit_loop_end (e, &strip);
    }
}

/* Outputs of unrelated shapes: the outer range is every output's units,
 * one output after the other. A unit is a row (the last dimension) of an
 * output, or SPLIT_CHUNK elements of a longer row: each unit finds its
 * other dimensions once and then runs an inner loop along the row, which
 * vectorises, instead of finding every dimension of every element. */
#define SPLIT_CHUNK 4096

typedef struct {
  int64_t width;    /* elements of a row (1 for a scalar) */
  int64_t chunks;   /* units per row */
  int64_t weight;   /* units per element of a reduction (1 otherwise) */
  int64_t units;
  gboolean per_element;  /* a reduction: each element on its own, no rows */
} SplitGeometry;

/* Reduced elements a unit of a reduction stands for: about a row's worth
 * of work, so that the threads' even shares of the units are even shares
 * of the work too. */
#define SPLIT_REDUCE_UNIT 32

static SplitGeometry
split_geometry (const Item *it)
{
  const FbShape *s = it->shape;
  SplitGeometry g = { 1, 1, 1, 0, FALSE };
  int64_t n = fb_shape_elements (s);
  /* A reduction's element is a whole loop of its own: it counts as many
   * units as its work, and the unit at its start computes it. */
  g.per_element = it->k >= 0 || it->instr->opcode == FB_OP_REDUCE;
  if (s->rank > 0 && !g.per_element)
    g.width = s->dims[s->rank - 1];
  if (n == 0 || g.width == 0)
    return g;
  if (g.per_element && it->instr->n_operands > 0)
    {
      int64_t in = fb_shape_elements (it->instr->operands[0]->shape);
      g.weight = MAX (1, in / n / SPLIT_REDUCE_UNIT);
    }
  g.chunks = (g.width + SPLIT_CHUNK - 1) / SPLIT_CHUNK;
  g.units = n / g.width * g.chunks * g.weight;
  return g;
}

static void
emit_split (FbEmitter *e, const Plan *p, LLVMValueRef *outs, LLVMValueRef begin, LLVMValueRef end)
{
  int64_t at = 0;
  for (int i = 0; i < p->n_items; i++)
    {
      const Item *it = &p->items[i];
      const FbShape *s = it->shape;
      SplitGeometry g = split_geometry (it);
      if (g.units == 0)
        continue;
      LLVMValueRef off = _fb_emit_i64 (e, at);
      LLVMValueRef lo = LLVMBuildSub (e->b, begin, off, "");
      LLVMValueRef hi = LLVMBuildSub (e->b, end, off, "");
      LLVMValueRef zero = _fb_emit_i64 (e, 0), top = _fb_emit_i64 (e, g.units);
      lo = LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, LLVMIntSLT, lo, zero, ""), zero, lo, "");
      hi = LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, LLVMIntSGT, hi, top, ""), top, hi, "");
      if (g.weight > 1)
        {
          /* The elements whose first unit lies in [lo, hi): both in [0,
           * top] first, since a part that ends before this output's units
           * has a negative hi, and the division is unsigned. */
          lo = LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, LLVMIntSGT, lo, top, ""), top, lo, "");
          hi = LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, LLVMIntSLT, hi, lo, ""), lo, hi, "");
          LLVMValueRef w = _fb_emit_i64 (e, g.weight), w1 = _fb_emit_i64 (e, g.weight - 1);
          lo = LLVMBuildUDiv (e->b, LLVMBuildNUWAdd (e->b, lo, w1, ""), w, "");
          hi = LLVMBuildUDiv (e->b, LLVMBuildNUWAdd (e->b, hi, w1, ""), w, "");
        }
      FbLoop unit;
      _fb_emit_loop_begin (e, &unit, "unit", lo, hi);
      LLVMValueRef row = unit.iv, col_lo = zero, col_hi = _fb_emit_i64 (e, g.width);
      if (g.chunks > 1)
        {
          LLVMValueRef chunks = _fb_emit_i64 (e, g.chunks);
          row = LLVMBuildUDiv (e->b, unit.iv, chunks, "");
          col_lo = LLVMBuildNUWMul (e->b, LLVMBuildURem (e->b, unit.iv, chunks, ""), _fb_emit_i64 (e, SPLIT_CHUNK), "");
          LLVMValueRef end_col = LLVMBuildNUWAdd (e->b, col_lo, _fb_emit_i64 (e, SPLIT_CHUNK), "");
          col_hi = LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, LLVMIntSLT, end_col, col_hi, ""), end_col, col_hi, "");
        }
      FbIndex idx;
      _fb_index_init (&idx, s);
      /* the row's other dimensions, last first (every dimension when a
       * unit is one element) */
      int row_dims = g.per_element ? s->rank : s->rank - 1;
      LLVMValueRef r = row;
      for (int d = row_dims - 1; d >= 0; d--)
        {
          if (d == 0)
            idx.v[d] = r;
          else
            {
              LLVMValueRef n = _fb_emit_i64 (e, s->dims[d]);
              idx.v[d] = LLVMBuildURem (e->b, r, n, "");
              r = LLVMBuildUDiv (e->b, r, n, "");
            }
        }
      FbLoop inner;
      _fb_emit_loop_begin (e, &inner, "row", col_lo, col_hi);
      if (!g.per_element && s->rank > 0)
        idx.v[s->rank - 1] = inner.iv;
      idx.linear = NULL;
      LLVMValueRef linear = LLVMBuildNSWAdd (e->b, LLVMBuildNSWMul (e->b, row, _fb_emit_i64 (e, g.width), ""),
                                             inner.iv, "");
      LLVMValueRef v;
      if (it->k >= 0)
        {
          LLVMValueRef vals[FB_EMIT_MAX_RANK];
          _fb_emit_reduce (e, it->instr, &idx, vals);
          v = vals[it->k];
        }
      else
        v = _fb_emit_value (e, it->instr, &idx);
      _fb_emit_store (e, s->type, outs[i], linear, v);
      _fb_emit_loop_end (e, &inner);
      _fb_emit_loop_end (e, &unit);
      at += g.units;
    }
}

static void
emit_linear (FbEmitter *e, const Plan *p, LLVMValueRef *outs, LLVMValueRef begin, LLVMValueRef end)
{
  FbLoop loop;
  _fb_emit_loop_begin (e, &loop, "flat", begin, end);
  FbIndex idx;
  _fb_index_init (&idx, p->out);
  idx.linear = loop.iv;
  for (int i = 0; i < p->n_items; i++)
    {
      FbIndex oi = idx;
      oi.dims = p->items[i].shape->dims;
      oi.rank = p->items[i].shape->rank;
      LLVMValueRef v = _fb_emit_value (e, p->items[i].instr, &oi);
      _fb_emit_store (e, p->items[i].shape->type, outs[i], loop.iv, v);
    }
  _fb_emit_loop_end (e, &loop);
}

/* Loops over the output part [begin, end) x inner dims; @body is called with the index. */
typedef void (*ColumnBody) (FbEmitter *e, const Plan *p, LLVMValueRef *outs, FbIndex *in_idx, FbIndex *out_idx);

static void
column_loops (FbEmitter *e, const Plan *p, LLVMValueRef *outs, LLVMValueRef begin, LLVMValueRef end,
              FbIndex *in_idx, int first, ColumnBody body)
{
  const FbShape *os = p->out;
  FbLoop loops[FB_EMIT_MAX_RANK];
  FbIndex oi;
  _fb_index_init (&oi, os);
  for (int d = 0; d < os->rank; d++)
    {
      _fb_emit_loop_begin (e, &loops[d], "col", d == 0 ? begin : _fb_emit_i64 (e, 0),
                           d == 0 ? end : _fb_emit_i64 (e, os->dims[d]));
      oi.v[d] = loops[d].iv;
      if (in_idx != NULL)
        in_idx->v[first + d] = loops[d].iv;
    }
  if (in_idx != NULL)
    in_idx->linear = NULL;
  body (e, p, outs, in_idx, &oi);
  for (int d = os->rank - 1; d >= 0; d--)
    _fb_emit_loop_end (e, &loops[d]);
}

static void
column_init (FbEmitter *e, const Plan *p, LLVMValueRef *outs, FbIndex *in_idx, FbIndex *out_idx)
{
  for (int i = 0; i < p->n_items; i++)
    {
      const FbInstr *r = p->items[i].instr;
      FbIndex s;
      _fb_index_scalar (&s);
      LLVMValueRef init = _fb_emit_operand (e, r, 1, &s);
      _fb_emit_store (e, r->shape->type, outs[i], _fb_index_linear (e, out_idx), init);
    }
}

static void
column_fold (FbEmitter *e, const Plan *p, LLVMValueRef *outs, FbIndex *in_idx, FbIndex *out_idx)
{
  for (int i = 0; i < p->n_items; i++)
    {
      const FbInstr *r = p->items[i].instr;
      FbElemType t = r->shape->type;
      LLVMValueRef off = _fb_index_linear (e, out_idx);
      LLVMValueRef args[2];
      args[0] = _fb_emit_load (e, t, outs[i], off);
      FbIndex ii = *in_idx;
      args[1] = _fb_emit_operand (e, r, 0, &ii);
      LLVMValueRef res;
      gboolean saved = e->reassoc;
      e->reassoc = TRUE;
      int got = _fb_emit_call_scalar (e, fb_instr_comp (r, FB_A_TO_APPLY), 2, args, &res, 1);
      e->reassoc = saved;
      if (got == 1)
        _fb_emit_store (e, t, outs[i], off, res);
    }
}

static void
emit_column (FbEmitter *e, const Plan *p, LLVMValueRef *outs, LLVMValueRef begin, LLVMValueRef end)
{
  const FbInstr *r0 = p->items[0].instr;
  const FbShape *in = r0->operands[0]->shape;
  int k = fb_instr_dims (r0, FB_A_DIMENSIONS)->n;

  column_loops (e, p, outs, begin, end, NULL, 0, column_init);

  FbLoop red[FB_EMIT_MAX_RANK];
  FbIndex ii;
  _fb_index_init (&ii, in);
  for (int d = 0; d < k; d++)
    {
      _fb_emit_loop_begin (e, &red[d], "rows", _fb_emit_i64 (e, 0), _fb_emit_i64 (e, in->dims[d]));
      ii.v[d] = red[d].iv;
    }
  column_loops (e, p, outs, begin, end, &ii, k, column_fold);
  for (int d = k - 1; d >= 0; d--)
    _fb_emit_loop_end (e, &red[d]);
}

static void
describe (const Plan *plan, FbCpuKernel *info)
{
  info->instr = plan->kernel;
  info->n_outputs = plan->n_items;
  info->n_buffers = plan->n_items + plan->kernel->n_operands;
  if (plan->mode == MODE_LINEAR)
    {
      info->outer_extent = fb_shape_elements (plan->out);
      info->inner_elements = 1;
    }
  else if (plan->mode == MODE_SPLIT)
    {
      int64_t elements = 0;
      info->outer_extent = 0;
      for (int i = 0; i < plan->n_items; i++)
        {
          info->outer_extent += split_geometry (&plan->items[i]).units;
          elements += fb_shape_elements (plan->items[i].shape);
        }
      info->inner_elements = info->outer_extent > 0 ? MAX (1, elements / info->outer_extent) : 1;
    }
  else
    {
      const FbShape *os = plan->out;
      info->outer_extent = os->rank == 0 ? 1 : os->dims[0];
      info->inner_elements = os->rank == 0 ? 1 : os->dims[0] == 0 ? 0 : fb_shape_elements (os) / os->dims[0];
    }
}

gboolean
_fb_cpu_kernel_describe (const FbInstr *instr, FbCpuKernel *info, GError **error)
{
  Plan plan;
  g_autoptr (GString) why = g_string_new (NULL);
  if (!make_plan (&plan, instr, why))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "%%%s cannot be generated as a loop kernel: %s",
                   instr->name, why->len > 0 ? why->str : "unsupported");
      return FALSE;
    }
  describe (&plan, info);
  return TRUE;
}

/* Divisions the math functions mark as allowing a reciprocal (never the
 * program's own) may use the hardware estimate refined by Newton steps. */
static LLVMAttributeRef
reciprocal_attr (LLVMContextRef ctx)
{
  static const char key[] = "reciprocal-estimates", val[] = "divf,vec-divf";
  return LLVMCreateStringAttribute (ctx, key, sizeof key - 1, val, sizeof val - 1);
}

/* Emits the body `@name (noalias buffers..., begin, end)` of the kernel
 * for @plan into @mod; with @plan->stream its streamed outputs are taken
 * to be 64-byte aligned. Errors go to @error. */
static LLVMValueRef
emit_body (LLVMContextRef ctx, LLVMModuleRef mod, const Plan *plan, const char *name, LLVMTypeRef *body_ty,
           GError **error)
{
  const FbInstr *instr = plan->kernel;
  LLVMBuilderRef b = LLVMCreateBuilderInContext (ctx);
  FbEmitter e;
  _fb_emit_init (&e, ctx, mod, b);
  int n_out = plan->n_items, n_in = instr->n_operands, n_buf = n_out + n_in;

  LLVMTypeRef *ptys = g_newa (LLVMTypeRef, n_buf + 2);
  for (int i = 0; i < n_buf; i++)
    ptys[i] = e.t_ptr;
  ptys[n_buf] = e.t_i64;
  ptys[n_buf + 1] = e.t_i64;
  *body_ty = LLVMFunctionType (e.t_void, ptys, (unsigned) n_buf + 2, FALSE);
  LLVMValueRef body = LLVMAddFunction (mod, name, *body_ty);
  LLVMSetLinkage (body, LLVMInternalLinkage);
  unsigned noalias = LLVMGetEnumAttributeKindForName ("noalias", 7);
  unsigned nocapture = LLVMGetEnumAttributeKindForName ("nocapture", 9);
  unsigned nounwind = LLVMGetEnumAttributeKindForName ("nounwind", 8);
  unsigned align = LLVMGetEnumAttributeKindForName ("align", 5);
  for (int i = 0; i < n_buf; i++)
    {
      LLVMAddAttributeAtIndex (body, (unsigned) i + 1, LLVMCreateEnumAttribute (ctx, noalias, 0));
      LLVMAddAttributeAtIndex (body, (unsigned) i + 1, LLVMCreateEnumAttribute (ctx, nocapture, 0));
      if (plan->stream && i < n_out)
        LLVMAddAttributeAtIndex (body, (unsigned) i + 1, LLVMCreateEnumAttribute (ctx, align, 64));
    }
  if (plan->stream)
    {
      /* kept apart, so that its arguments keep their alignment through the
       * optimiser and _fb_cpu_kernel_stream_stores finds it */
      unsigned noinline = LLVMGetEnumAttributeKindForName ("noinline", 8);
      LLVMAddAttributeAtIndex (body, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute (ctx, noinline, 0));
    }
  LLVMAddAttributeAtIndex (body, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute (ctx, nounwind, 0));
  LLVMAddAttributeAtIndex (body, LLVMAttributeFunctionIndex, reciprocal_attr (ctx));

  e.fn = body;
  e.entry = LLVMAppendBasicBlockInContext (ctx, body, "entry");
  LLVMPositionBuilderAtEnd (b, e.entry);
  LLVMValueRef *outs = g_newa (LLVMValueRef, MAX (n_out, 1));
  LLVMValueRef *params = g_newa (LLVMValueRef, MAX (n_in, 1));
  for (int i = 0; i < n_out; i++)
    outs[i] = LLVMGetParam (body, (unsigned) i);
  for (int i = 0; i < n_in; i++)
    params[i] = LLVMGetParam (body, (unsigned) (n_out + i));
  e.params = params;
  e.n_params = n_in;
  e.top = plan->comp == NULL ? instr : NULL;
  /* a separate block after the allocas keeps them in the entry block */
  LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext (ctx, body, "start");
  LLVMBuildBr (b, start);
  LLVMPositionBuilderAtEnd (b, start);

  LLVMValueRef begin = LLVMGetParam (body, (unsigned) n_buf);
  LLVMValueRef end = LLVMGetParam (body, (unsigned) n_buf + 1);
  switch (plan->mode)
    {
    case MODE_LINEAR: emit_linear (&e, plan, outs, begin, end); break;
    case MODE_NEST: emit_nest (&e, plan, outs, begin, end); break;
    case MODE_COLUMN: emit_column (&e, plan, outs, begin, end); break;
    case MODE_SPLIT: emit_split (&e, plan, outs, begin, end); break;
    }
  LLVMBuildRetVoid (b);
  LLVMDisposeBuilder (b);
  if (e.error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&e.error));
      body = NULL;
    }
  _fb_emit_clear (&e);
  return body;
}

gboolean
_fb_cpu_kernel_emit (LLVMContextRef ctx, LLVMModuleRef mod, const FbInstr *instr, const char *symbol,
                     FbCpuKernel *info, GError **error)
{
  Plan plan;
  g_autoptr (GString) why = g_string_new (NULL);
  if (!make_plan (&plan, instr, why))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "%%%s cannot be generated as a loop kernel: %s",
                   instr->name, why->len > 0 ? why->str : "unsupported");
      return FALSE;
    }
  describe (&plan, info);
  int n_out = plan.n_items, n_buf = n_out + instr->n_operands;

  /* The plain body, and for large outputs a streaming one that the
   * wrapper calls when the output buffers are aligned. */
  LLVMTypeRef body_ty, stream_ty = NULL;
  g_autofree char *body_name = g_strconcat (symbol, "_body", NULL);
  LLVMValueRef body = emit_body (ctx, mod, &plan, body_name, &body_ty, error);
  if (body == NULL)
    return FALSE;
  LLVMValueRef stream = NULL;
  if (stream_ok (&plan))
    {
      Plan sp = plan;
      sp.stream = TRUE;
      g_autofree char *stream_name = g_strconcat (symbol, STREAM_SUFFIX, NULL);
      stream = emit_body (ctx, mod, &sp, stream_name, &stream_ty, error);
      if (stream == NULL)
        return FALSE;
    }

  /* the exported wrapper */
  LLVMTypeRef t_void = LLVMVoidTypeInContext (ctx), t_ptr = LLVMPointerTypeInContext (ctx, 0);
  LLVMTypeRef t_i64 = LLVMInt64TypeInContext (ctx);
  LLVMTypeRef wtys[3] = { t_ptr, t_i64, t_i64 };
  LLVMValueRef fn = LLVMAddFunction (mod, symbol, LLVMFunctionType (t_void, wtys, 3, FALSE));
  unsigned nounwind = LLVMGetEnumAttributeKindForName ("nounwind", 8);
  LLVMAddAttributeAtIndex (fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute (ctx, nounwind, 0));
  LLVMAddAttributeAtIndex (fn, LLVMAttributeFunctionIndex, reciprocal_attr (ctx));   /* the bodies are inlined here */
  LLVMBuilderRef b = LLVMCreateBuilderInContext (ctx);
  LLVMPositionBuilderAtEnd (b, LLVMAppendBasicBlockInContext (ctx, fn, "entry"));
  LLVMValueRef *args = g_newa (LLVMValueRef, n_buf + 2);
  LLVMValueRef bufs = LLVMGetParam (fn, 0);
  for (int i = 0; i < n_buf; i++)
    {
      LLVMValueRef at = LLVMConstInt (t_i64, (unsigned long long) i, FALSE);
      LLVMValueRef slot = LLVMBuildInBoundsGEP2 (b, t_ptr, bufs, &at, 1, "");
      args[i] = LLVMBuildLoad2 (b, t_ptr, slot, "");
    }
  args[n_buf] = LLVMGetParam (fn, 1);
  args[n_buf + 1] = LLVMGetParam (fn, 2);
  if (stream != NULL)
    {
      /* every output 64-byte aligned: stream, then order the streaming
       * stores before whatever the caller does next */
      LLVMValueRef bits = LLVMConstInt (t_i64, 0, FALSE);
      for (int i = 0; i < n_out; i++)
        bits = LLVMBuildOr (b, bits, LLVMBuildPtrToInt (b, args[i], t_i64, ""), "");
      LLVMValueRef low = LLVMBuildAnd (b, bits, LLVMConstInt (t_i64, 63, FALSE), "");
      LLVMValueRef aligned = LLVMBuildICmp (b, LLVMIntEQ, low, LLVMConstInt (t_i64, 0, FALSE), "");
      LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext (ctx, fn, "stream");
      LLVMBasicBlockRef no = LLVMAppendBasicBlockInContext (ctx, fn, "plain");
      LLVMBuildCondBr (b, aligned, yes, no);
      LLVMPositionBuilderAtEnd (b, yes);
      LLVMBuildCall2 (b, stream_ty, stream, args, (unsigned) n_buf + 2, "");
      const char *sfence = "llvm.x86.sse.sfence";
      unsigned id = LLVMLookupIntrinsicID (sfence, strlen (sfence));
      if (id != 0)
        {
          LLVMValueRef f = LLVMGetIntrinsicDeclaration (mod, id, NULL, 0);
          LLVMBuildCall2 (b, LLVMIntrinsicGetType (ctx, id, NULL, 0), f, NULL, 0, "");
        }
      else
        LLVMBuildFence (b, LLVMAtomicOrderingSequentiallyConsistent, FALSE, "");
      LLVMBuildRetVoid (b);
      LLVMPositionBuilderAtEnd (b, no);
    }
  LLVMBuildCall2 (b, body_ty, body, args, (unsigned) n_buf + 2, "");
  LLVMBuildRetVoid (b);
  LLVMDisposeBuilder (b);
  return TRUE;
}

void
_fb_cpu_kernel_stream_stores (LLVMModuleRef mod)
{
  unsigned kind = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction (mod); f != NULL; f = LLVMGetNextFunction (f))
    {
      size_t len;
      const char *name = LLVMGetValueName2 (f, &len);
      if (len < strlen (STREAM_SUFFIX) || strcmp (name + len - strlen (STREAM_SUFFIX), STREAM_SUFFIX) != 0)
        continue;
      LLVMContextRef ctx = LLVMGetModuleContext (mod);
      if (kind == 0)
        kind = LLVMGetMDKindIDInContext (ctx, "nontemporal", 11);
      LLVMMetadataRef one = LLVMValueAsMetadata (LLVMConstInt (LLVMInt32TypeInContext (ctx), 1, FALSE));
      LLVMValueRef node = LLVMMetadataAsValue (ctx, LLVMMDNodeInContext2 (ctx, &one, 1));
      LLVMTargetDataRef td = LLVMGetModuleDataLayout (mod);
      for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock (f); bb != NULL; bb = LLVMGetNextBasicBlock (bb))
        for (LLVMValueRef i = LLVMGetFirstInstruction (bb); i != NULL; i = LLVMGetNextInstruction (i))
          {
            if (LLVMIsAStoreInst (i) == NULL)
              continue;
            LLVMTypeRef t = LLVMTypeOf (LLVMGetOperand (i, 0));
            if (LLVMGetTypeKind (t) != LLVMVectorTypeKind)
              continue;
            unsigned long long bytes = LLVMStoreSizeOfType (td, t);
            /* only what the optimiser proved aligned to the whole vector */
            if (bytes >= 16 && bytes <= 64 && LLVMGetAlignment (i) >= bytes)
              LLVMSetMetadata (i, kind, node);
          }
    }
}
