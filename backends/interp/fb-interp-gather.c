/* SPDX-License-Identifier: MIT
 *
 * The interpreter's gather and scatter, in XLA's general form: offset /
 * update window dims, collapsed / inserted dims, the index vector dimension
 * (also implicit, past the last one), start index maps and operand batching
 * dims.
 *
 * Gather clamps every start index so that the whole slice stays inside the
 * operand, as XLA does. Scatter skips an update window entirely when any part
 * of it would fall outside the operand (as XLA's reference evaluator does),
 * and combines in-bounds elements with to_apply (variadic: N operands, N
 * updates), visiting updates in row-major order.
 */
#include "fb-interp-private.h"

#include <math.h>
#include <string.h>


static const FbDims empty_dims = { 0, NULL };

static const FbDims *
dims_attr (const FbInstr *instr, FbAttrKey key)
{
  const FbDims *d = fb_instr_dims (instr, key);
  return d ? d : &empty_dims;
}

/* Each entry in [0, rank) and not yet in @used; marks them. */
static gboolean
mark_dims (const FbInstr *instr, const FbDims *d, int rank, gboolean *used, const char *what,
           GError **error)
{
  for (int i = 0; i < d->n; i++)
    {
      if (d->v[i] < 0 || d->v[i] >= rank || (used && used[d->v[i]]))
        {
          _fb_interp_error (error, instr, "%s names dimension %" G_GINT64_FORMAT
                            ", which is out of range or used twice", what, d->v[i]);
          return FALSE;
        }
      if (used)
        used[d->v[i]] = TRUE;
    }
  return TRUE;
}

/* The shared index arithmetic of gather and scatter. "Result" is gather's
 * output or scatter's updates; its dims are either window (offset) dims or
 * batch (scatter) dims, and the batch dims walk the indices array minus the
 * index vector dimension. */
typedef struct {
  int      op_rank, idx_rank, res_rank;
  int64_t  ivd;                        /* == idx_rank: implicit trailing 1 */
  const FbDims *start_map;             /* start_index_map / scatter_dims_to_operand_dims */
  const FbDims *op_batch, *idx_batch;  /* operand / indices batching dims */
  gboolean res_is_window[FB_INTERP_MAX_RANK];
  int64_t  res_to_idx[FB_INTERP_MAX_RANK];       /* batch dim of the result -> indices dim */
  int64_t  window_to_op[FB_INTERP_MAX_RANK];     /* i-th window dim of the result -> operand dim */
  int      n_window;
  int64_t  idx_strides[FB_INTERP_MAX_RANK];
} IndexMap;

static gboolean
index_map_init (IndexMap *m, const FbInstr *instr, const FbShape *op, const FbShape *idx,
                const FbShape *res, const FbDims *window_dims, const FbDims *elided,
                const FbDims *start_map, const FbDims *op_batch, const FbDims *idx_batch,
                const char *window_name, const char *elided_name, GError **error)
{
  memset (m, 0, sizeof *m);
  m->op_rank = op->rank;
  m->idx_rank = idx->rank;
  m->res_rank = res->rank;
  m->ivd = fb_instr_int (instr, FB_A_INDEX_VECTOR_DIM, idx->rank);
  m->start_map = start_map;
  m->op_batch = op_batch;
  m->idx_batch = idx_batch;
  if (m->ivd < 0 || m->ivd > idx->rank)
    {
      _fb_interp_error (error, instr, "index_vector_dim %" G_GINT64_FORMAT " is out of range for "
                        "rank-%d indices", m->ivd, idx->rank);
      return FALSE;
    }
  int64_t vec_len = m->ivd == idx->rank ? 1 : idx->dims[m->ivd];
  if (vec_len != start_map->n)
    {
      _fb_interp_error (error, instr, "index vectors have %" G_GINT64_FORMAT " entries but the "
                        "start index map has %d", vec_len, start_map->n);
      return FALSE;
    }
  gboolean op_used[FB_INTERP_MAX_RANK] = { 0 }, res_used[FB_INTERP_MAX_RANK] = { 0 }, dummy[FB_INTERP_MAX_RANK] = { 0 };
  if (!mark_dims (instr, window_dims, res->rank, res_used, window_name, error)
      || !mark_dims (instr, elided, op->rank, op_used, elided_name, error)
      || !mark_dims (instr, op_batch, op->rank, op_used, "operand batching dims", error)
      || !mark_dims (instr, start_map, op->rank, dummy, "start index map", error)
      || !mark_dims (instr, idx_batch, idx->rank, NULL, "indices batching dims", error))
    return FALSE;
  if (op_batch->n != idx_batch->n)
    {
      _fb_interp_error (error, instr, "operand and indices must have as many batching dims");
      return FALSE;
    }
  for (int i = 0; i < idx_batch->n; i++)
    if (idx_batch->v[i] == m->ivd)
      {
        _fb_interp_error (error, instr, "the index vector dimension cannot be a batching dim");
        return FALSE;
      }
  for (int d = 0; d < op->rank; d++)
    if (!op_used[d])
      m->window_to_op[m->n_window++] = d;
  if (m->n_window != window_dims->n)
    {
      _fb_interp_error (error, instr, "%s has %d entries; the operand leaves %d window dimensions",
                        window_name, window_dims->n, m->n_window);
      return FALSE;
    }
  int n_batch = res->rank - window_dims->n;
  int idx_batch_dims = idx->rank - (m->ivd < idx->rank ? 1 : 0);
  if (n_batch != idx_batch_dims)
    {
      _fb_interp_error (error, instr, "the result has %d batch dimensions but the indices have %d",
                        n_batch, idx_batch_dims);
      return FALSE;
    }
  for (int d = 0, j = 0, k = 0; d < res->rank; d++)
    {
      m->res_is_window[d] = res_used[d];
      if (res_used[d])
        continue;
      if (j == m->ivd)
        j++;
      m->res_to_idx[k++] = j;
      if (res->dims[d] != idx->dims[j])
        {
          _fb_interp_error (error, instr, "result dimension %d has size %" G_GINT64_FORMAT
                            " but indices dimension %d has %" G_GINT64_FORMAT, d, res->dims[d], j,
                            idx->dims[j]);
          return FALSE;
        }
      j++;
    }
  _fb_interp_strides (idx, m->idx_strides);
  return TRUE;
}

/* From a result index: the start in the operand (unclamped) and the window
 * offsets (0 in elided and batching dims). */
static void
index_map_apply (const IndexMap *m, const FbLiteral *indices, const int64_t *ridx, int64_t *start,
                 int64_t *offset)
{
  int64_t g[FB_INTERP_MAX_RANK + 1] = { 0 };   /* index into the indices array */
  for (int d = 0, k = 0, w = 0; d < m->res_rank; d++)
    {
      if (m->res_is_window[d])
        {
          offset[m->window_to_op[w++]] = ridx[d];
          continue;
        }
      g[m->res_to_idx[k++]] = ridx[d];
    }
  for (int d = 0; d < m->op_rank; d++)
    start[d] = 0;
  for (int k = 0; k < m->start_map->n; k++)
    {
      if (m->ivd < m->idx_rank)
        g[m->ivd] = k;
      int64_t off = 0;
      for (int d = 0; d < m->idx_rank; d++)
        off += g[d] * m->idx_strides[d];
      start[m->start_map->v[k]] = fb_literal_get_s64 (indices, off);
    }
  for (int i = 0; i < m->op_batch->n; i++)
    start[m->op_batch->v[i]] = g[m->idx_batch->v[i]];
}

/* ------------------------------------------------------------ gather */

gboolean
_fb_interp_gather (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                   GError **error)
{
  const FbLiteral *op = ops[0], *indices = ops[1];
  if (!_fb_interp_check_array (instr, op, "operand", error) || !_fb_interp_check_array (instr, indices, "start indices", error))
    return FALSE;
  if (!fb_elem_type_is_int (indices->shape->type))
    {
      _fb_interp_error (error, instr, "start indices must be integers, not %s",
                        fb_elem_type_name (indices->shape->type));
      return FALSE;
    }
  const FbShape *os = instr->shape;
  if (os == NULL || !fb_shape_is_array (os) || os->rank > FB_INTERP_MAX_RANK || os->type != op->shape->type)
    {
      _fb_interp_error (error, instr, "result must be an array of the operand's type");
      return FALSE;
    }
  const FbDims *ss = fb_instr_dims (instr, FB_A_SLICE_SIZES);
  if (ss == NULL || ss->n != op->shape->rank)
    {
      _fb_interp_error (error, instr, "slice_sizes must have one entry per operand dimension (%d)",
                        op->shape->rank);
      return FALSE;
    }
  for (int d = 0; d < ss->n; d++)
    if (ss->v[d] < 0 || ss->v[d] > op->shape->dims[d])
      {
        _fb_interp_error (error, instr, "slice size %" G_GINT64_FORMAT " of dimension %d does not fit "
                          "the operand's %" G_GINT64_FORMAT, ss->v[d], d, op->shape->dims[d]);
        return FALSE;
      }
  const FbDims *collapsed = dims_attr (instr, FB_A_COLLAPSED_SLICE_DIMS);
  const FbDims *obatch = dims_attr (instr, FB_A_OPERAND_BATCHING_DIMS);
  for (int i = 0; i < collapsed->n + obatch->n; i++)
    {
      int64_t d = i < collapsed->n ? collapsed->v[i] : obatch->v[i - collapsed->n];
      if (d >= 0 && d < ss->n && ss->v[d] != 1)
        {
          _fb_interp_error (error, instr, "collapsed and batching dims must have slice size 1, "
                            "dimension %" G_GINT64_FORMAT " has %" G_GINT64_FORMAT, d, ss->v[d]);
          return FALSE;
        }
    }
  IndexMap m;
  if (!index_map_init (&m, instr, op->shape, indices->shape, os, dims_attr (instr, FB_A_OFFSET_DIMS),
                       collapsed, dims_attr (instr, FB_A_START_INDEX_MAP), obatch,
                       dims_attr (instr, FB_A_START_INDICES_BATCHING_DIMS), "offset_dims",
                       "collapsed_slice_dims", error))
    return FALSE;
  const FbDims *od = dims_attr (instr, FB_A_OFFSET_DIMS);
  for (int i = 0; i < od->n; i++)
    if (os->dims[od->v[i]] != ss->v[m.window_to_op[i]])
      {
        _fb_interp_error (error, instr, "offset dimension %" G_GINT64_FORMAT " has size %" G_GINT64_FORMAT
                          " but its slice size is %" G_GINT64_FORMAT, od->v[i], os->dims[od->v[i]],
                          ss->v[m.window_to_op[i]]);
        return FALSE;
      }

  FbLiteral *res = fb_literal_new (ctx->arena, instr->shape);
  int64_t ost[FB_INTERP_MAX_RANK], opst[FB_INTERP_MAX_RANK];
  _fb_interp_strides (op->shape, opst);
  _fb_interp_strides (os, ost);
  int esz = fb_elem_type_bytes (os->type);
  int64_t n_out = fb_shape_elements (os), ridx[FB_INTERP_MAX_RANK] = { 0 };
  for (int64_t e = 0; e < n_out; e++)
    {
      int64_t start[FB_INTERP_MAX_RANK], offset[FB_INTERP_MAX_RANK] = { 0 }, src = 0;
      index_map_apply (&m, indices, ridx, start, offset);
      for (int d = 0; d < op->shape->rank; d++)
        {
          int64_t s = CLAMP (start[d], 0, op->shape->dims[d] - ss->v[d]);
          src += (s + offset[d]) * opst[d];
        }
      memcpy (res->data + e * esz, op->data + src * esz, esz);
      _fb_interp_next_index (ridx, os);
    }
  *out = res;
  return TRUE;
}

/* ----------------------------------------------------------- scatter */

typedef enum { COMB_CALL, COMB_REPLACE, COMB_ADD, COMB_MUL, COMB_MAX, COMB_MIN } Combine;

/* The update computations worth doing inline: the second parameter alone,
 * or add/multiply/maximum/minimum of both, on one f32 or f64 operand. */
static Combine
combine_of (const FbComputation *comp, FbElemType type)
{
  if (comp == NULL || comp->root == NULL || comp->n_params != 2 || comp->params == NULL)
    return COMB_CALL;
  for (int i = 0; i < 2; i++)
    if (comp->params[i]->shape->type != type || comp->params[i]->shape->rank != 0)
      return COMB_CALL;
  const FbInstr *r = comp->root;
  if (r == comp->params[1])
    return COMB_REPLACE;
  if ((type != FB_F32 && type != FB_F64) || r->n_operands != 2 || r->shape->type != type
      || r->shape->rank != 0)
    return COMB_CALL;
  gboolean both = (r->operands[0] == comp->params[0] && r->operands[1] == comp->params[1])
                  || (r->operands[0] == comp->params[1] && r->operands[1] == comp->params[0]);
  if (!both)
    return COMB_CALL;
  switch (r->opcode)
    {
    case FB_OP_ADD: return COMB_ADD;
    case FB_OP_MULTIPLY: return COMB_MUL;
    case FB_OP_MAXIMUM: return COMB_MAX;
    case FB_OP_MINIMUM: return COMB_MIN;
    default: return COMB_CALL;
    }
}

#define COMBINE(op, a, b)                                                                   \
  ((op) == COMB_ADD ? (a) + (b) : (op) == COMB_MUL ? (a) * (b)                              \
   : (op) == COMB_MAX ? (isnan (a) || (a) > (b) ? (a) : (b))                                \
   : (isnan (a) || (a) < (b) ? (a) : (b)))

static void
combine_inline (Combine c, FbElemType type, guint8 *acc, const guint8 *x, int esz)
{
  if (c == COMB_REPLACE)
    memcpy (acc, x, esz);
  else if (type == FB_F32)
    {
      float a, b;
      memcpy (&a, acc, 4);
      memcpy (&b, x, 4);
      a = COMBINE (c, a, b);
      memcpy (acc, &a, 4);
    }
  else
    {
      double a, b;
      memcpy (&a, acc, 8);
      memcpy (&b, x, 8);
      a = COMBINE (c, a, b);
      memcpy (acc, &a, 8);
    }
}

/* Calls to_apply; temporaries go to a scratch arena recycled every few
 * thousand calls. */
typedef struct {
  FbInterp      *ctx;
  FbInstr       *instr;
  FbComputation *comp;
  int            n;
  FbLiteral     *args[16];
  FbElemType     types[8];
  FbArena       *scratch;
  int64_t        calls;
} Updater;

static gboolean
updater_call (Updater *u, guint8 *const *dst, GError **error)
{
  if (u->scratch == NULL || ++u->calls % 4096 == 0)
    {
      g_clear_pointer (&u->scratch, fb_arena_free);
      u->scratch = fb_arena_new ();
    }
  FbArena *saved = u->ctx->arena;
  u->ctx->arena = u->scratch;
  FbLiteral *r = _fb_interp_call (u->ctx, u->comp, 2 * u->n, u->args, error);
  u->ctx->arena = saved;
  if (r == NULL)
    return FALSE;
  if (u->n == 1 && r->shape && fb_shape_is_tuple (r->shape) && r->n_elems == 1)
    r = r->elems[0];
  for (int i = 0; i < u->n; i++)
    {
      const FbLiteral *ri = u->n == 1 ? r : (r->shape && fb_shape_is_tuple (r->shape)
                                             && r->n_elems == u->n ? r->elems[i] : NULL);
      if (ri == NULL || ri->shape == NULL || !fb_shape_is_array (ri->shape) || ri->data == NULL
          || ri->shape->type != u->types[i] || fb_shape_elements (ri->shape) != 1)
        {
          _fb_interp_error (error, u->instr, "to_apply computation %s must return %d %s scalar%s",
                            u->comp->name, u->n, fb_elem_type_name (u->types[i]), u->n > 1 ? "s" : "");
          return FALSE;
        }
      memcpy (dst[i], ri->data, fb_elem_type_bytes (u->types[i]));
    }
  return TRUE;
}

gboolean
_fb_interp_scatter (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                    GError **error)
{
  if (instr->n_operands < 3 || instr->n_operands % 2 == 0 || instr->n_operands > 17)
    {
      _fb_interp_error (error, instr, "scatter takes N operands, the indices and N updates "
                        "(N up to 8), not %d operands", instr->n_operands);
      return FALSE;
    }
  int n = (instr->n_operands - 1) / 2;
  const FbLiteral *indices = ops[n];
  FbLiteral *const *updates = ops + n + 1;
  if (!_fb_interp_check_array (instr, indices, "scatter indices", error))
    return FALSE;
  if (!fb_elem_type_is_int (indices->shape->type))
    {
      _fb_interp_error (error, instr, "scatter indices must be integers, not %s",
                        fb_elem_type_name (indices->shape->type));
      return FALSE;
    }
  for (int i = 0; i < n; i++)
    {
      if (!_fb_interp_check_array (instr, ops[i], "operand", error) || !_fb_interp_check_array (instr, updates[i], "updates", error))
        return FALSE;
      if (!_fb_interp_same_dims (ops[i]->shape, ops[0]->shape) || !_fb_interp_same_dims (updates[i]->shape, updates[0]->shape)
          || updates[i]->shape->type != ops[i]->shape->type)
        {
          _fb_interp_error (error, instr, "operands must share dimensions, updates must share "
                            "dimensions, and each update must have its operand's type");
          return FALSE;
        }
    }
  const FbShape *os = ops[0]->shape, *us = updates[0]->shape;
  FbShape *rs = instr->shape;
  gboolean tuple = n > 1;
  if (rs == NULL || (tuple ? !fb_shape_is_tuple (rs) || rs->n_elems != n : !fb_shape_is_array (rs)))
    {
      _fb_interp_error (error, instr, "result must be %s", tuple ? "a tuple of the operands' shapes"
                                                                 : "an array of the operand's shape");
      return FALSE;
    }
  for (int i = 0; i < n; i++)
    {
      const FbShape *ri = tuple ? rs->elems[i] : rs;
      if (!fb_shape_is_array (ri) || !_fb_interp_same_dims (ri, os) || ri->type != ops[i]->shape->type)
        {
          _fb_interp_error (error, instr, "result %d must have the shape of operand %d", i, i);
          return FALSE;
        }
    }
  IndexMap m;
  if (!index_map_init (&m, instr, os, indices->shape, us, dims_attr (instr, FB_A_UPDATE_WINDOW_DIMS),
                       dims_attr (instr, FB_A_INSERTED_WINDOW_DIMS),
                       dims_attr (instr, FB_A_SCATTER_DIMS_TO_OPERAND_DIMS),
                       dims_attr (instr, FB_A_INPUT_BATCHING_DIMS),
                       dims_attr (instr, FB_A_SCATTER_INDICES_BATCHING_DIMS), "update_window_dims",
                       "inserted_window_dims", error))
    return FALSE;
  /* Window extent in each operand dim: the update's dim size, 1 elsewhere. */
  const FbDims *uwd = dims_attr (instr, FB_A_UPDATE_WINDOW_DIMS);
  int64_t extent[FB_INTERP_MAX_RANK];
  for (int d = 0; d < os->rank; d++)
    extent[d] = 1;
  for (int i = 0; i < uwd->n; i++)
    {
      extent[m.window_to_op[i]] = us->dims[uwd->v[i]];
      if (extent[m.window_to_op[i]] > os->dims[m.window_to_op[i]])
        {
          _fb_interp_error (error, instr, "update window dimension %" G_GINT64_FORMAT " is larger "
                            "than operand dimension %" G_GINT64_FORMAT, uwd->v[i], m.window_to_op[i]);
          return FALSE;
        }
    }

  FbLiteral *res = fb_literal_new (ctx->arena, rs);
  FbLiteral *leaves[8];
  int esz[8];
  for (int i = 0; i < n; i++)
    {
      leaves[i] = tuple ? res->elems[i] : res;
      esz[i] = fb_elem_type_bytes (ops[i]->shape->type);
      memcpy (leaves[i]->data, ops[i]->data, (gsize) fb_shape_elements (os) * esz[i]);
    }

  FbComputation *comp = fb_instr_comp (instr, FB_A_TO_APPLY);
  Combine c = n == 1 ? combine_of (comp, os->type) : COMB_CALL;
  Updater u = { .ctx = ctx, .instr = instr, .comp = comp, .n = n };
  if (c == COMB_CALL)
    {
      if (comp == NULL || comp->n_params != 2 * n)
        {
          _fb_interp_error (error, instr, "to_apply must take %d scalar parameters", 2 * n);
          return FALSE;
        }
      for (int i = 0; i < n; i++)
        {
          u.types[i] = ops[i]->shape->type;
          FbShape *sc = fb_shape_new_scalar (ctx->arena, u.types[i]);
          u.args[i] = fb_literal_new (ctx->arena, sc);
          u.args[n + i] = fb_literal_new (ctx->arena, sc);
        }
    }

  int64_t ost[FB_INTERP_MAX_RANK];
  _fb_interp_strides (os, ost);
  int64_t n_upd = fb_shape_elements (us), uidx[FB_INTERP_MAX_RANK] = { 0 };
  gboolean ok = TRUE;
  for (int64_t e = 0; e < n_upd && ok; e++)
    {
      int64_t start[FB_INTERP_MAX_RANK], offset[FB_INTERP_MAX_RANK] = { 0 }, dst = 0;
      gboolean inside = TRUE;
      index_map_apply (&m, indices, uidx, start, offset);
      for (int d = 0; d < os->rank && inside; d++)
        {
          inside = start[d] >= 0 && start[d] <= os->dims[d] - extent[d];
          dst += (start[d] + offset[d]) * ost[d];
        }
      if (inside)
        {
          if (c != COMB_CALL)
            combine_inline (c, os->type, leaves[0]->data + dst * esz[0], updates[0]->data + e * esz[0], esz[0]);
          else
            {
              guint8 *dptr[8];
              for (int i = 0; i < n; i++)
                {
                  dptr[i] = leaves[i]->data + dst * esz[i];
                  memcpy (u.args[i]->data, dptr[i], esz[i]);
                  memcpy (u.args[n + i]->data, updates[i]->data + e * esz[i], esz[i]);
                }
              ok = updater_call (&u, dptr, error);
            }
        }
      _fb_interp_next_index (uidx, us);
    }
  g_clear_pointer (&u.scratch, fb_arena_free);
  if (!ok)
    return FALSE;
  *out = res;
  return TRUE;
}
