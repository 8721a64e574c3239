/* SPDX-License-Identifier: MIT
 *
 * Runtime functions of the CPU backend: the operations that are not
 * generated as loop kernels and are not a plain GEMM, written in C with
 * XLA's semantics: reduce and reduce-window with any reducer,
 * select-and-scatter, batch normalisation, gather, scatter, sort, top-k,
 * map and the custom calls the custom-call map resolves. rng-bit-generator
 * (fb-cpu-runtime-rng.c) and cholesky, triangular-solve and fft
 * (fb-cpu-runtime-linalg.c) have files of their own.
 *
 * Elements are read and written as doubles, which holds every value of the
 * types these functions see in practice (floats up to f64, integers up to
 * 2^53); after every combination a float result is rounded to its element
 * type, so an f32 reduction rounds like one computed in f32. A reducer or
 * comparator that is one binary op or compare of its parameters is applied
 * inline; any other is a compiled sub-program called once per element.
 */
#include "fb-cpu-private.h"
#include "fb-window.h"

#include <math.h>
#include <string.h>

#define MAX_RANK 16
#define MAX_VARIADIC 8

static inline double
get (const FbLiteral *lit, int64_t i)
{
  switch (lit->shape->type)
    {
    case FB_F32: return ((const float *) lit->data)[i];
    case FB_F64: return ((const double *) lit->data)[i];
    case FB_S32: return ((const int32_t *) lit->data)[i];
    case FB_PRED: return lit->data[i] != 0;
    default:
      return fb_elem_type_is_float (lit->shape->type) ? fb_literal_get_f64 (lit, i)
                                                     : (double) fb_literal_get_s64 (lit, i);
    }
}

static inline void
set (FbLiteral *lit, int64_t i, double v)
{
  switch (lit->shape->type)
    {
    case FB_F32: ((float *) lit->data)[i] = (float) v; return;
    case FB_F64: ((double *) lit->data)[i] = v; return;
    case FB_S32: ((int32_t *) lit->data)[i] = (int32_t) (int64_t) v; return;
    case FB_PRED: lit->data[i] = v != 0; return;
    default:
      if (fb_elem_type_is_float (lit->shape->type))
        fb_literal_set_f64 (lit, i, v);
      else
        fb_literal_set_s64 (lit, i, (int64_t) v);
    }
}

/* Rounds @v to what an element of @t can hold. */
static inline double
round_to (FbElemType t, double v)
{
  switch (t)
    {
    case FB_F32: return (float) v;
    case FB_F64: return v;
    case FB_BF16: return fb_bf16_to_f32 (fb_f32_to_bf16 ((float) v));
    case FB_F16: return fb_f16_to_f32 (fb_f32_to_f16 ((float) v));
    case FB_PRED: return v != 0;
    default:
      if (fb_elem_type_is_float (t))
        {
          guint8 b[8];
          fb_float_encode (t, b, v);
          return fb_float_decode (t, b);
        }
      return v;
    }
}

static gboolean
next_index (int64_t *idx, const FbShape *shape)
{
  for (int d = shape->rank - 1; d >= 0; d--)
    {
      if (++idx[d] < shape->dims[d])
        return TRUE;
      idx[d] = 0;
    }
  return FALSE;
}

static FbLiteral *
leaf (FbLiteral *out, int i)
{
  return out->elems ? out->elems[i] : out;
}

/* ------------------------------------------------------------ applier */

/* Applies a scalar computation (reducer, scatter combiner, comparator). */
typedef struct {
  FbCpuRt       *rt;
  gpointer       program;
  FbComputation *comp;
  int            n_params;
  FbElemType     types[2 * MAX_VARIADIC];
  FbLiteral     *args[2 * MAX_VARIADIC];
  FbOpcode       fast;        /* FB_N_OPCODES: call the program */
  gboolean       swapped;     /* the fast op reads parameter 1 first */
  const char    *direction;   /* fast compare */
} Applier;

static gboolean
param_pair (const FbInstr *root, int *a, int *b)
{
  if (root->n_operands != 2 || root->operands[0]->opcode != FB_OP_PARAMETER
      || root->operands[1]->opcode != FB_OP_PARAMETER)
    return FALSE;
  *a = (int) root->operands[0]->parameter_number;
  *b = (int) root->operands[1]->parameter_number;
  return TRUE;
}

/* The computation of attribute @key (to_apply, select, scatter) and its program. */
static gboolean
applier_init (Applier *ap, FbCpuRt *rt, const FbInstr *instr, FbAttrKey key, int n_params,
              const FbElemType *types, GError **error)
{
  memset (ap, 0, sizeof *ap);
  ap->rt = rt;
  ap->fast = FB_N_OPCODES;
  FbComputation *called[8];
  int n = fb_instr_called (instr, called, 8);
  FbComputation *want = fb_instr_comp (instr, key);
  int program_index = 0;
  while (program_index < n && called[program_index] != want)
    program_index++;
  if (want == NULL || program_index >= n || program_index >= rt->n_programs || n_params > 2 * MAX_VARIADIC)
    {
      _fb_cpu_error (error, instr, "the instruction calls no computation to apply");
      return FALSE;
    }
  ap->comp = called[program_index];
  ap->program = rt->programs[program_index];
  ap->n_params = n_params;
  if (ap->comp->n_params != n_params)
    {
      _fb_cpu_error (error, instr, "%s must take %d scalar parameters, it takes %d", ap->comp->name,
                     n_params, ap->comp->n_params);
      return FALSE;
    }
  for (int i = 0; i < n_params; i++)
    {
      ap->types[i] = types[i];
      ap->args[i] = fb_literal_new (rt->arena, fb_shape_new_scalar (rt->arena, types[i]));
    }
  const FbInstr *root = ap->comp->root;
  int a, b;
  if (n_params == 2 && root && param_pair (root, &a, &b) && a != b
      && fb_shape_is_array (root->shape) && root->shape->rank == 0)
    {
      switch (root->opcode)
        {
        case FB_OP_ADD: case FB_OP_MULTIPLY: case FB_OP_MAXIMUM: case FB_OP_MINIMUM:
        case FB_OP_AND: case FB_OP_OR:
          if (fb_elem_type_is_float (types[0]) || root->opcode == FB_OP_ADD || root->opcode == FB_OP_MAXIMUM
              || root->opcode == FB_OP_MINIMUM || types[0] == FB_PRED)
            ap->fast = root->opcode;
          break;
        case FB_OP_COMPARE:
          {
            const char *dir = fb_instr_str (root, FB_A_DIRECTION);
            const char *type = fb_instr_str (root, FB_A_COMPARE_TYPE);
            if (dir && (type == NULL || strcmp (type, "TOTALORDER") != 0 || !fb_elem_type_is_float (types[0])))
              {
                ap->fast = FB_OP_COMPARE;
                ap->direction = dir;
              }
            break;
          }
        default:
          break;
        }
      ap->swapped = a == 1;
    }
  return TRUE;
}

static inline double
fast_apply (FbOpcode op, const char *dir, double x, double y)
{
  switch (op)
    {
    case FB_OP_ADD: return x + y;
    case FB_OP_MULTIPLY: return x * y;
    case FB_OP_MAXIMUM: return isnan (y) ? y : (x >= y || isnan (x)) ? x : y;
    case FB_OP_MINIMUM: return isnan (y) ? y : (x <= y || isnan (x)) ? x : y;
    case FB_OP_AND: return (x != 0) && (y != 0);
    case FB_OP_OR: return (x != 0) || (y != 0);
    case FB_OP_COMPARE:
      if (dir[0] == 'L')
        return dir[1] == 'T' ? x < y : x <= y;
      if (dir[0] == 'G')
        return dir[1] == 'T' ? x > y : x >= y;
      if (dir[0] == 'E')
        return x == y;
      return x != y;
    default:
      return 0;
    }
}

/* res[0..n_out) = comp (in[0..n_params)); all as doubles. */
static gboolean
applier_call (Applier *ap, const double *in, double *res, int n_out, GError **error)
{
  if (ap->fast != FB_N_OPCODES)
    {
      double x = ap->swapped ? in[1] : in[0], y = ap->swapped ? in[0] : in[1];
      double r = fast_apply (ap->fast, ap->direction, x, y);
      res[0] = ap->fast == FB_OP_COMPARE ? r : round_to (ap->types[0], r);
      return TRUE;
    }
  for (int i = 0; i < ap->n_params; i++)
    set (ap->args[i], 0, in[i]);
  FbLiteral *r = ap->rt->call (ap->program, ap->rt->arena, ap->n_params, ap->args, error);
  if (r == NULL)
    return FALSE;
  for (int i = 0; i < n_out; i++)
    {
      const FbLiteral *l = r->elems ? (i < r->n_elems ? r->elems[i] : NULL) : (i == 0 ? r : NULL);
      if (l == NULL || l->data == NULL)
        {
          g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME, "%s returned too few values", ap->comp->name);
          return FALSE;
        }
      res[i] = get (l, 0);
    }
  return TRUE;
}

/* ------------------------------------------------------------- reduce */

static gboolean
rt_reduce (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  int n = instr->n_operands / 2;
  if (n < 1 || n > MAX_VARIADIC)
    {
      _fb_cpu_error (error, instr, "reduce takes 1 to %d inputs and as many init values", MAX_VARIADIC);
      return FALSE;
    }
  const FbShape *is = ops[0]->shape;
  FbElemType types[2 * MAX_VARIADIC];
  for (int i = 0; i < n; i++)
    types[i] = types[n + i] = ops[i]->shape->type;
  Applier ap;
  if (!applier_init (&ap, rt, instr, FB_A_TO_APPLY, 2 * n, types, error))
    return FALSE;
  const FbDims *dims = fb_instr_dims (instr, FB_A_DIMENSIONS);
  gboolean reduced[MAX_RANK] = { 0 };
  for (int k = 0; dims && k < dims->n; k++)
    if (dims->v[k] >= 0 && dims->v[k] < is->rank)
      reduced[dims->v[k]] = TRUE;
  const FbShape *os = leaf (out, 0)->shape;
  int64_t n_out = fb_shape_elements (os);
  for (int64_t o = 0; o < n_out; o++)
    for (int i = 0; i < n; i++)
      set (leaf (out, i), o, get (ops[n + i], 0));
  int64_t ost[MAX_RANK];
  _fb_cpu_strides (os, ost);
  int64_t idx[MAX_RANK] = { 0 }, total = fb_shape_elements (is);
  double in[2 * MAX_VARIADIC], res[MAX_VARIADIC];
  for (int64_t e = 0; e < total; e++)
    {
      int64_t o = 0;
      for (int d = 0, od = 0; d < is->rank; d++)
        if (!reduced[d])
          o += idx[d] * ost[od++];
      for (int i = 0; i < n; i++)
        {
          in[i] = get (leaf (out, i), o);
          in[n + i] = get (ops[i], e);
        }
      if (!applier_call (&ap, in, res, n, error))
        return FALSE;
      for (int i = 0; i < n; i++)
        set (leaf (out, i), o, res[i]);
      next_index (idx, is);
    }
  return TRUE;
}

/* ------------------------------------------------------------- windows */

static gboolean
get_window (const FbInstr *instr, int rank, FbWindowDim *w, GError **error)
{
  const FbAttr *a = fb_instr_get_attr (instr, FB_A_WINDOW);
  for (int d = 0; d < rank; d++)
    w[d] = (FbWindowDim) { 1, 1, 0, 0, 1, 1, FALSE };
  if (a == NULL)
    return TRUE;
  if (a->kind != FB_AV_WINDOW || a->v.window.n != rank)
    {
      _fb_cpu_error (error, instr, "the window has %d dimensions, the operand %d",
                     a->kind == FB_AV_WINDOW ? a->v.window.n : -1, rank);
      return FALSE;
    }
  for (int d = 0; d < rank; d++)
    {
      w[d] = a->v.window.d[d];
      if (w[d].stride < 1 || w[d].size < 0 || w[d].lhs_dilate < 1 || w[d].rhs_dilate < 1)
        {
          _fb_cpu_error (error, instr, "window dimension %d has a stride, size or dilation out of range", d);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
undilated (const FbWindowDim *w, int rank)
{
  for (int d = 0; d < rank; d++)
    if (w[d].lhs_dilate != 1 || w[d].rhs_dilate != 1)
      return FALSE;
  return TRUE;
}

/* Pooling over the last two dimensions: a window of size 1 on every other
 * dimension, with stride 1 and no padding there. The leading dimensions
 * are then independent planes. */
static gboolean
is_pool_2d (const FbShape *is, const FbWindowDim *w)
{
  if (is->rank < 2 || !undilated (w, is->rank))
    return FALSE;
  for (int d = 0; d < is->rank - 2; d++)
    if (w[d].size != 1 || w[d].stride != 1 || w[d].pad_lo != 0 || w[d].pad_hi != 0)
      return FALSE;
  return TRUE;
}

typedef struct {
  const Applier   *ap;
  const FbWindowDim *wh, *ww;
  const float     *x;
  float           *y;
  float            init;
  int64_t          H, W, OH, OW;
} Pool2d;

/* Planes [begin, end), each output over its window clipped to the plane:
 * the same combinations in the same order as the general loop, in single
 * precision (exact: a sum of two floats rounded once to float is the same
 * whether or not it went through double first). One loop per reducer and
 * operand order, so that nothing is decided per element. */
/* maximum (x, y) as the interpreter computes it: a NaN y wins, else a NaN
 * x, else the larger, x on a tie. Written as two selects (the first is the
 * hardware max instruction's rule), so that no branch depends on data. */
static inline float
max_xla (float x, float y)
{
  float r = x < y ? y : x;
  return y != y ? y : r;
}

static inline float
min_xla (float x, float y)
{
  float r = y < x ? y : x;
  return y != y ? y : r;
}

#define POOL_PLANES(NAME, COMBINE)                                                  \
static void                                                                         \
NAME (gpointer data, int64_t begin, int64_t end)                                    \
{                                                                                   \
  const Pool2d *j = data;                                                           \
  const int64_t H = j->H, W = j->W, OH = j->OH, OW = j->OW;                         \
  const int64_t sh = j->wh->stride, kh = j->wh->size, ph = j->wh->pad_lo;          \
  const int64_t sw = j->ww->stride, kw = j->ww->size, pw = j->ww->pad_lo;          \
  const float init = j->init;   /* a local: the stores to y cannot change it */    \
  for (int64_t p = begin; p < end; p++)                                             \
    {                                                                               \
      const float *x = j->x + p * H * W;                                            \
      float *y = j->y + p * OH * OW;                                                \
      if (kh == 2 && kw == 2 && ph == 0 && pw == 0 && (OH - 1) * sh + 2 <= H       \
          && (OW - 1) * sw + 2 <= W)                                                \
        {                                                                           \
          /* 2x2 windows inside the plane: the same four steps, unrolled */        \
          for (int64_t oh = 0; oh < OH; oh++)                                       \
            {                                                                       \
              const float *x0 = x + oh * sh * W, *x1 = x0 + W;                      \
              for (int64_t ow = 0; ow < OW; ow++)                                   \
                {                                                                   \
                  float acc = init, v;                                              \
                  v = x0[ow * sw];                                                  \
                  acc = COMBINE;                                                    \
                  v = x0[ow * sw + 1];                                              \
                  acc = COMBINE;                                                    \
                  v = x1[ow * sw];                                                  \
                  acc = COMBINE;                                                    \
                  v = x1[ow * sw + 1];                                              \
                  acc = COMBINE;                                                    \
                  y[oh * OW + ow] = acc;                                            \
                }                                                                   \
            }                                                                       \
          continue;                                                                 \
        }                                                                           \
      for (int64_t oh = 0; oh < OH; oh++)                                           \
        {                                                                           \
          int64_t h0 = oh * sh - ph;                                                \
          int64_t ha = MAX (h0, 0), hb = MIN (h0 + kh, H);                          \
          for (int64_t ow = 0; ow < OW; ow++)                                       \
            {                                                                       \
              int64_t w0 = ow * sw - pw;                                            \
              int64_t wa = MAX (w0, 0), wb = MIN (w0 + kw, W);                      \
              float acc = init;                                                     \
              for (int64_t h = ha; h < hb; h++)                                     \
                for (int64_t w = wa; w < wb; w++)                                   \
                  {                                                                 \
                    float v = x[h * W + w];                                         \
                    acc = COMBINE;                                                  \
                  }                                                                 \
              y[oh * OW + ow] = acc;                                                \
            }                                                                       \
        }                                                                           \
    }                                                                               \
}

POOL_PLANES (pool_2d_max, max_xla (acc, v))
POOL_PLANES (pool_2d_max_swapped, max_xla (v, acc))
POOL_PLANES (pool_2d_min, min_xla (acc, v))
POOL_PLANES (pool_2d_min_swapped, min_xla (v, acc))
POOL_PLANES (pool_2d_sum, acc + v)
POOL_PLANES (pool_2d_sum_swapped, v + acc)

static FbCpuRangeFn
pool_2d_fn (const Applier *ap)
{
  switch (ap->fast)
    {
    case FB_OP_MAXIMUM: return ap->swapped ? pool_2d_max_swapped : pool_2d_max;
    case FB_OP_MINIMUM: return ap->swapped ? pool_2d_min_swapped : pool_2d_min;
    case FB_OP_ADD: return ap->swapped ? pool_2d_sum_swapped : pool_2d_sum;
    default: return NULL;
    }
}

typedef struct {
  const Applier     *sel;
  const FbWindowDim *wh, *ww;
  const float       *x, *src;
  float             *y;
  float              init;
  gboolean           sca_swapped;
  int64_t            H, W, SH, SW;
} Scatter2d;

/* One row of 2x2 stride-2 windows, four windows at a time in the vectors
 * every x86-64 has: the four taps of each window are gathered from the two
 * input rows, the select computation runs on whole vectors (VKEEP: the
 * lanes where the element selected so far stays), and each window's four
 * outputs are written at once. Returns how many windows it did. */
typedef float   ScatterV4f __attribute__ ((vector_size (16)));
typedef int32_t ScatterV4i __attribute__ ((vector_size (16)));

#define SCATTER_ROW_VEC(NAME, VKEEP)                                                \
static int64_t                                                                      \
NAME (const float *x0, const float *x1, const float *s, float *y0, float *y1,      \
      int64_t SW, float init, gboolean swapped)                                     \
{                                                                                   \
  const ScatterV4i even = { 0, 2, 4, 6 }, odd = { 1, 3, 5, 7 };                     \
  const ScatterV4i lo = { 0, 4, 1, 5 }, hi = { 2, 6, 3, 7 };                        \
  const ScatterV4f vinit = { init, init, init, init };                              \
  int64_t sw = 0;                                                                   \
  for (; sw + 4 <= SW; sw += 4)                                                     \
    {                                                                               \
      ScatterV4f a0, a1, b0, b1, sv;                                                \
      memcpy (&a0, x0 + 2 * sw, 16);                                                \
      memcpy (&a1, x0 + 2 * sw + 4, 16);                                            \
      memcpy (&b0, x1 + 2 * sw, 16);                                                \
      memcpy (&b1, x1 + 2 * sw + 4, 16);                                            \
      memcpy (&sv, s + sw, 16);                                                     \
      ScatterV4f taps[4] = { __builtin_shuffle (a0, a1, even), __builtin_shuffle (a0, a1, odd), \
                             __builtin_shuffle (b0, b1, even), __builtin_shuffle (b0, b1, odd) }; \
      ScatterV4f bv = taps[0];                                                      \
      ScatterV4i best = { 0, 0, 0, 0 };                                             \
      for (int t = 1; t < 4; t++)                                                   \
        {                                                                           \
          ScatterV4f v = taps[t];                                                   \
          ScatterV4i keep = (ScatterV4i) (VKEEP);                                   \
          best = (best & keep) | ((ScatterV4i) { t, t, t, t } & ~keep);             \
          bv = (ScatterV4f) (((ScatterV4i) bv & keep) | ((ScatterV4i) v & ~keep));  \
        }                                                                           \
      ScatterV4i sum = (ScatterV4i) (swapped ? sv + vinit : vinit + sv);            \
      ScatterV4i in = (ScatterV4i) vinit, o[4];                                     \
      for (int t = 0; t < 4; t++)                                                   \
        {                                                                           \
          ScatterV4i m = best == (ScatterV4i) { t, t, t, t };                       \
          o[t] = (sum & m) | (in & ~m);                                             \
        }                                                                           \
      ScatterV4i r0 = __builtin_shuffle (o[0], o[1], lo), r1 = __builtin_shuffle (o[0], o[1], hi); \
      ScatterV4i r2 = __builtin_shuffle (o[2], o[3], lo), r3 = __builtin_shuffle (o[2], o[3], hi); \
      memcpy (y0 + 2 * sw, &r0, 16);                                                \
      memcpy (y0 + 2 * sw + 4, &r1, 16);                                            \
      memcpy (y1 + 2 * sw, &r2, 16);                                                \
      memcpy (y1 + 2 * sw + 4, &r3, 16);                                            \
    }                                                                               \
  return sw;                                                                        \
}

SCATTER_ROW_VEC (scatter_row_ge, bv >= v)
SCATTER_ROW_VEC (scatter_row_gt, bv > v)
SCATTER_ROW_VEC (scatter_row_le, bv <= v)
SCATTER_ROW_VEC (scatter_row_lt, bv < v)

/* For a select computation that is not a plain comparison: no vectors. */
static int64_t
scatter_row_none (const float *x0, const float *x1, const float *s, float *y0, float *y1, int64_t SW, float init,
                  gboolean swapped)
{
  return 0;
}

/* select-and-scatter of planes [begin, end): each plane's sources only
 * reach that plane's outputs, so a plane is set to the initial value and
 * then scattered into by one thread. KEEP (best, v) is the select
 * computation: true keeps the element selected so far. */
#define SCATTER_PLANES(NAME, KEEP, ROW_VEC)                                         \
static void                                                                         \
NAME (gpointer data, int64_t begin, int64_t end)                                    \
{                                                                                   \
  const Scatter2d *j = data;                                                        \
  const Applier *sel = j->sel;                                                      \
  (void) sel;                                                                       \
  const int64_t H = j->H, W = j->W, SH = j->SH, SW = j->SW;                         \
  const float init = j->init;   /* a local: the stores to y cannot change it */    \
  for (int64_t p = begin; p < end; p++)                                             \
    {                                                                               \
      const float *x = j->x + p * H * W, *src = j->src + p * SH * SW;              \
      float *y = j->y + p * H * W;                                                  \
      /* 2x2 windows with stride 2 tile the plane: each output is written     \
       * once, by its window, and only what they leave uncovered is filled. */\
      gboolean tiles = j->wh->size == 2 && j->ww->size == 2 && j->wh->stride == 2  \
                       && j->ww->stride == 2 && j->wh->pad_lo == 0                  \
                       && j->ww->pad_lo == 0 && 2 * SH <= H && 2 * SW <= W;         \
      if (tiles && 2 * SH == H && 2 * SW == W)                                      \
        ;                                                                           \
      else if (init == 0.0f && !signbit (init))                                    \
        memset (y, 0, sizeof (float) * H * W);                                      \
      else                                                                          \
        for (int64_t i = 0; i < H * W; i++)                                         \
          y[i] = init;                                                              \
      if (tiles)                                                                    \
        {                                                                           \
          for (int64_t sh = 0; sh < SH; sh++)                                       \
            {                                                                       \
              const float *x0 = x + 2 * sh * W, *x1 = x0 + W, *s = src + sh * SW;   \
              float *y0 = y + 2 * sh * W, *y1 = y0 + W;                              \
              for (int64_t sw = ROW_VEC (x0, x1, s, y0, y1, SW, init, j->sca_swapped); sw < SW; sw++) \
                {                                                                   \
                  /* the windows the vectors left: the same steps one   \
                   * window at a time */                                        \
                  float bestv = x0[2 * sw], v;                                      \
                  int best = 0;                                                     \
                  gboolean keep;                                                    \
                  v = x0[2 * sw + 1];                                               \
                  keep = KEEP;                                                      \
                  best = keep ? best : 1;                                           \
                  bestv = keep ? bestv : v;                                         \
                  v = x1[2 * sw];                                                   \
                  keep = KEEP;                                                      \
                  best = keep ? best : 2;                                           \
                  bestv = keep ? bestv : v;                                         \
                  v = x1[2 * sw + 1];                                               \
                  keep = KEEP;                                                      \
                  best = keep ? best : 3;                                           \
                  float sum = j->sca_swapped ? s[sw] + init : init + s[sw];         \
                  y0[2 * sw] = best == 0 ? sum : init;                              \
                  y0[2 * sw + 1] = best == 1 ? sum : init;                          \
                  y1[2 * sw] = best == 2 ? sum : init;                              \
                  y1[2 * sw + 1] = best == 3 ? sum : init;                          \
                }                                                                   \
            }                                                                       \
          continue;                                                                 \
        }                                                                           \
      if (j->wh->size == 2 && j->ww->size == 2 && j->wh->pad_lo == 0              \
          && j->ww->pad_lo == 0 && (SH - 1) * j->wh->stride + 2 <= H                \
          && (SW - 1) * j->ww->stride + 2 <= W)                                     \
        {                                                                           \
          /* 2x2 windows inside the plane: the same four steps, unrolled */        \
          for (int64_t sh = 0; sh < SH; sh++)                                       \
            for (int64_t sw = 0; sw < SW; sw++)                                     \
              {                                                                     \
                int64_t o = sh * j->wh->stride * W + sw * j->ww->stride;            \
                int64_t best = o;                                                   \
                float bestv = x[o], v;                                              \
                gboolean keep;                                                      \
                v = x[o + 1];                                                       \
                keep = KEEP;                                                        \
                best = keep ? best : o + 1;                                         \
                bestv = keep ? bestv : v;                                           \
                v = x[o + W];                                                       \
                keep = KEEP;                                                        \
                best = keep ? best : o + W;                                         \
                bestv = keep ? bestv : v;                                           \
                v = x[o + W + 1];                                                   \
                keep = KEEP;                                                        \
                best = keep ? best : o + W + 1;                                     \
                float a = y[best], b = src[sh * SW + sw];                           \
                y[best] = j->sca_swapped ? b + a : a + b;                           \
              }                                                                     \
          continue;                                                                 \
        }                                                                           \
      for (int64_t sh = 0; sh < SH; sh++)                                           \
        {                                                                           \
          int64_t h0 = sh * j->wh->stride - j->wh->pad_lo;                          \
          int64_t ha = MAX (h0, 0), hb = MIN (h0 + j->wh->size, H);                 \
          for (int64_t sw = 0; sw < SW; sw++)                                       \
            {                                                                       \
              int64_t w0 = sw * j->ww->stride - j->ww->pad_lo;                      \
              int64_t wa = MAX (w0, 0), wb = MIN (w0 + j->ww->size, W);             \
              int64_t best = -1;                                                    \
              float bestv = 0;                                                      \
              for (int64_t h = ha; h < hb; h++)                                     \
                for (int64_t w = wa; w < wb; w++)                                   \
                  {                                                                 \
                    int64_t off = h * W + w;                                        \
                    float v = x[off];                                               \
                    if (best < 0 || !(KEEP))                                        \
                      {                                                             \
                        best = off;                                                 \
                        bestv = v;                                                  \
                      }                                                             \
                  }                                                                 \
              if (best >= 0)                                                        \
                {                                                                   \
                  float a = y[best], b = src[sh * SW + sw];                         \
                  y[best] = j->sca_swapped ? b + a : a + b;                         \
                }                                                                   \
            }                                                                       \
        }                                                                           \
    }                                                                               \
}

SCATTER_PLANES (scatter_2d_ge, bestv >= v, scatter_row_ge)
SCATTER_PLANES (scatter_2d_gt, bestv > v, scatter_row_gt)
SCATTER_PLANES (scatter_2d_le, bestv <= v, scatter_row_le)
SCATTER_PLANES (scatter_2d_lt, bestv < v, scatter_row_lt)
SCATTER_PLANES (scatter_2d_any,
                fast_apply (FB_OP_COMPARE, sel->direction, sel->swapped ? v : bestv, sel->swapped ? bestv : v) != 0,
                scatter_row_none)

static FbCpuRangeFn
scatter_2d_fn (const Applier *sel)
{
  if (sel->swapped)
    return scatter_2d_any;
  const char *d = sel->direction;
  if (strcmp (d, "GE") == 0)
    return scatter_2d_ge;
  if (strcmp (d, "GT") == 0)
    return scatter_2d_gt;
  if (strcmp (d, "LE") == 0)
    return scatter_2d_le;
  if (strcmp (d, "LT") == 0)
    return scatter_2d_lt;
  return scatter_2d_any;
}

static gboolean
rt_reduce_window (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  int n = instr->n_operands / 2;
  if (n < 1 || n > MAX_VARIADIC)
    {
      _fb_cpu_error (error, instr, "reduce-window takes 1 to %d inputs and as many init values", MAX_VARIADIC);
      return FALSE;
    }
  const FbShape *is = ops[0]->shape;
  FbWindowDim w[MAX_RANK];
  if (is->rank > MAX_RANK || !get_window (instr, is->rank, w, error))
    return FALSE;
  FbElemType types[2 * MAX_VARIADIC];
  for (int i = 0; i < n; i++)
    types[i] = types[n + i] = ops[i]->shape->type;
  Applier ap;
  if (!applier_init (&ap, rt, instr, FB_A_TO_APPLY, 2 * n, types, error))
    return FALSE;
  int r = is->rank;
  if (n == 1 && is->type == FB_F32 && out->elems == NULL && out->shape->type == FB_F32
      && ops[1]->shape->type == FB_F32 && is_pool_2d (is, w) && is->dims[r - 2] * is->dims[r - 1] > 0
      && (ap.fast == FB_OP_ADD || ap.fast == FB_OP_MAXIMUM || ap.fast == FB_OP_MINIMUM))
    {
      const FbShape *os = out->shape;
      Pool2d j = { &ap, &w[r - 2], &w[r - 1], (const float *) ops[0]->data, (float *) out->data,
                   ((const float *) ops[1]->data)[0], is->dims[r - 2], is->dims[r - 1], os->dims[r - 2],
                   os->dims[r - 1] };
      int64_t planes = fb_shape_elements (is) / (j.H * j.W);
      _fb_cpu_pool_parallel_for (rt->pool, planes, MAX (1, 16384 / MAX (j.OH * j.OW, 1)), pool_2d_fn (&ap), &j);
      return TRUE;
    }
  const FbShape *os = leaf (out, 0)->shape;
  int64_t ist[MAX_RANK], oidx[MAX_RANK] = { 0 }, n_out = fb_shape_elements (os);
  _fb_cpu_strides (is, ist);
  gboolean empty = FALSE;
  for (int d = 0; d < is->rank; d++)
    empty |= w[d].size == 0;
  double in[2 * MAX_VARIADIC], res[MAX_VARIADIC];
  for (int64_t o = 0; o < n_out; o++)
    {
      for (int i = 0; i < n; i++)
        in[i] = get (ops[n + i], 0);
      int64_t widx[MAX_RANK] = { 0 };
      if (!empty)
        do
          {
            int64_t src = fb_window_source (is, ist, w, oidx, widx);
            if (src < 0)
              continue;
            for (int i = 0; i < n; i++)
              in[n + i] = get (ops[i], src);
            if (!applier_call (&ap, in, res, n, error))
              return FALSE;
            memcpy (in, res, sizeof (double) * n);
          }
        while (fb_window_next (widx, w, is->rank));
      for (int i = 0; i < n; i++)
        set (leaf (out, i), o, in[i]);
      next_index (oidx, os);
    }
  return TRUE;
}

static gboolean
rt_select_and_scatter (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out,
                       GError **error)
{
  const FbLiteral *operand = ops[0], *source = ops[1], *init = ops[2];
  const FbShape *is = operand->shape;
  FbWindowDim w[MAX_RANK];
  if (is->rank > MAX_RANK || !get_window (instr, is->rank, w, error))
    return FALSE;
  FbElemType st[2] = { is->type, is->type }, ct[2] = { out->shape->type, source->shape->type };
  Applier sel, sca;
  if (!applier_init (&sel, rt, instr, FB_A_SELECT, 2, st, error) || !applier_init (&sca, rt, instr, FB_A_SCATTER, 2, ct, error))
    return FALSE;
  int64_t n_out = fb_shape_elements (out->shape);
  double iv = get (init, 0);
  int r = is->rank;
  if (is->type == FB_F32 && out->shape->type == FB_F32 && source->shape->type == FB_F32 && is_pool_2d (is, w)
      && is->dims[r - 2] * is->dims[r - 1] > 0 && sel.fast == FB_OP_COMPARE && sca.fast == FB_OP_ADD)
    {
      /* The max-pool gradient, plane by plane. */
      Scatter2d j = { &sel, &w[r - 2], &w[r - 1], (const float *) operand->data, (const float *) source->data,
                      (float *) out->data, (float) iv, sca.swapped, is->dims[r - 2], is->dims[r - 1],
                      source->shape->dims[r - 2], source->shape->dims[r - 1] };
      int64_t planes = fb_shape_elements (is) / (j.H * j.W);
      _fb_cpu_pool_parallel_for (rt->pool, planes, MAX (1, 16384 / MAX (j.H * j.W, 1)), scatter_2d_fn (&sel), &j);
      return TRUE;
    }
  for (int64_t o = 0; o < n_out; o++)
    set (out, o, iv);
  int64_t ist[MAX_RANK], sidx[MAX_RANK] = { 0 }, n_src = fb_shape_elements (source->shape);
  _fb_cpu_strides (is, ist);
  for (int64_t s = 0; s < n_src; s++)
    {
      int64_t widx[MAX_RANK] = { 0 }, best = -1;
      double bestv = 0;
      do
        {
          int64_t src = fb_window_source (is, ist, w, sidx, widx);
          if (src < 0)
            continue;
          double v = get (operand, src);
          if (best < 0)
            {
              best = src;
              bestv = v;
              continue;
            }
          double in[2] = { bestv, v }, keep;
          if (!applier_call (&sel, in, &keep, 1, error))
            return FALSE;
          if (keep == 0)
            {
              best = src;
              bestv = v;
            }
        }
      while (fb_window_next (widx, w, is->rank));
      if (best >= 0)
        {
          double in[2] = { get (out, best), get (source, s) }, r;
          if (!applier_call (&sca, in, &r, 1, error))
            return FALSE;
          set (out, best, r);
        }
      next_index (sidx, source->shape);
    }
  return TRUE;
}

/* ---------------------------------------------------------- batch norm */

/* Batch norm over f32, one channel per task, in double like the general
 * path; a channel's elements are runs of @inner contiguous floats, one run
 * per index of the dimensions before the feature. Sums go into four
 * partial sums (a single one waits on each add), and the division by the
 * standard deviation is a multiplication by its reciprocal: both change
 * the result by an ulp of double at most, far below what f32 holds. */
typedef struct {
  FbOpcode     op;
  int64_t      C, inner, outer, per;
  double       eps;
  const float *x, *scale, *offset, *dy, *mean_in, *var_in;
  float       *y, *out1, *out2;      /* y; training: mean, var; grad: d scale, d offset */
} BnJob;

/* OUT = the sum over channel CH of EXPR (x, dy), into four partial sums. */
#define BN_SUM(J, CH, EXPR, OUT)                                                     \
  do                                                                                \
    {                                                                               \
      double s_[4] = { 0, 0, 0, 0 };                                                \
      for (int64_t o = 0; o < (J)->outer; o++)                                      \
        {                                                                           \
          const float *r = (J)->x + (o * (J)->C + (CH)) * (J)->inner;                \
          const float *g = (J)->dy ? (J)->dy + (o * (J)->C + (CH)) * (J)->inner : r; \
          (void) g;     /* not every EXPR reads dy */                               \
          int64_t i = 0;                                                            \
          for (; i + 4 <= (J)->inner; i += 4)                                       \
            for (int l = 0; l < 4; l++)                                             \
              s_[l] += EXPR (r[i + l], g[i + l]);                                   \
          for (; i < (J)->inner; i++)                                               \
            s_[0] += EXPR (r[i], g[i]);                                             \
        }                                                                           \
      (OUT) = (s_[0] + s_[1]) + (s_[2] + s_[3]);                                    \
    }                                                                               \
  while (0)

static void
bn_channels (gpointer data, int64_t c0, int64_t c1)
{
  const BnJob *j = data;
  int64_t C = j->C, inner = j->inner;
  for (int64_t c = c0; c < c1; c++)
    {
      double mean, var;
      if (j->op == FB_OP_BATCH_NORM_TRAINING)
        {
          double s, v;
#define BN_X(x, g) ((double) (x))
          BN_SUM (j, c, BN_X, s);
          mean = (float) (s / MAX (j->per, 1));
#define BN_D2(x, g) (((double) (x) - mean) * ((double) (x) - mean))
          BN_SUM (j, c, BN_D2, v);
          var = (float) (v / MAX (j->per, 1));
          j->out1[c] = (float) mean;
          j->out2[c] = (float) var;
        }
      else
        {
          mean = j->mean_in[c];
          var = j->var_in[c];
        }
      double rs = 1.0 / sqrt (var + j->eps), scale = j->scale[c];
      if (j->op == FB_OP_BATCH_NORM_GRAD)
        {
          double sum_dy, sum_dyx;
#define BN_DY(x, g) ((double) (g))
#define BN_DYX(x, g) ((double) (g) * (((double) (x) - mean) * rs))
          BN_SUM (j, c, BN_DY, sum_dy);
          BN_SUM (j, c, BN_DYX, sum_dyx);
          double a = scale * rs, b = sum_dy / j->per, d = sum_dyx / j->per;
          for (int64_t o = 0; o < j->outer; o++)
            {
              const float *r = j->x + (o * C + c) * inner, *g = j->dy + (o * C + c) * inner;
              float *y = j->y + (o * C + c) * inner;
              for (int64_t i = 0; i < inner; i++)
                y[i] = (float) (a * (g[i] - b - (r[i] - mean) * rs * d));
            }
          j->out1[c] = (float) sum_dyx;
          j->out2[c] = (float) sum_dy;
          continue;
        }
      double a = rs * scale, offset = j->offset[c];
      for (int64_t o = 0; o < j->outer; o++)
        {
          const float *r = j->x + (o * C + c) * inner;
          float *y = j->y + (o * C + c) * inner;
          for (int64_t i = 0; i < inner; i++)
            y[i] = (float) ((r[i] - mean) * a + offset);
        }
#undef BN_X
#undef BN_D2
#undef BN_DY
#undef BN_DYX
    }
}

/* Runs the f32 batch norms through bn_channels; FALSE when some operand or
 * result is not f32. */
static gboolean
batch_norm_f32 (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, int64_t fi, double eps)
{
  for (int i = 0; i < instr->n_operands; i++)
    if (ops[i]->shape->type != FB_F32)
      return FALSE;
  int n_out = instr->opcode == FB_OP_BATCH_NORM_INFERENCE ? 1 : 3;
  for (int i = 0; i < n_out; i++)
    if (leaf (out, i)->shape->type != FB_F32)
      return FALSE;
  const FbShape *xs = ops[0]->shape;
  BnJob j = { instr->opcode, xs->dims[fi], 1, 1, 0, eps, (const float *) ops[0]->data,
              (const float *) ops[1]->data, NULL, NULL, NULL, NULL, (float *) leaf (out, 0)->data, NULL, NULL };
  for (int d = fi + 1; d < xs->rank; d++)
    j.inner *= xs->dims[d];
  for (int d = 0; d < fi; d++)
    j.outer *= xs->dims[d];
  j.per = j.outer * j.inner;
  if (j.C == 0 || j.per == 0)
    return FALSE;      /* the general path handles the empty shapes */
  switch (instr->opcode)
    {
    case FB_OP_BATCH_NORM_TRAINING:
      j.offset = (const float *) ops[2]->data;
      break;
    case FB_OP_BATCH_NORM_INFERENCE:
      j.offset = (const float *) ops[2]->data;
      j.mean_in = (const float *) ops[3]->data;
      j.var_in = (const float *) ops[4]->data;
      break;
    default:
      j.mean_in = (const float *) ops[2]->data;
      j.var_in = (const float *) ops[3]->data;
      j.dy = (const float *) ops[4]->data;
      break;
    }
  if (n_out == 3)
    {
      j.out1 = (float *) leaf (out, 1)->data;
      j.out2 = (float *) leaf (out, 2)->data;
    }
  _fb_cpu_pool_parallel_for (rt->pool, j.C, 1, bn_channels, &j);
  return TRUE;
}

static gboolean
rt_batch_norm (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  const FbLiteral *x = ops[0];
  const FbShape *xs = x->shape;
  int64_t fi = fb_instr_int (instr, FB_A_FEATURE_INDEX, -1);
  const FbAttr *ea = fb_instr_get_attr (instr, FB_A_EPSILON);
  double eps = ea ? (ea->kind == FB_AV_FLOAT ? ea->v.f : (double) ea->v.i) : 0.001;
  if (fi < 0 || fi >= xs->rank)
    {
      _fb_cpu_error (error, instr, "feature_index %" G_GINT64_FORMAT " is out of range", fi);
      return FALSE;
    }
  eps = (float) eps;
  if (batch_norm_f32 (rt, instr, ops, out, fi, eps))
    return TRUE;
  int64_t C = xs->dims[fi], total = fb_shape_elements (xs);
  int64_t inner = 1;
  for (int d = fi + 1; d < xs->rank; d++)
    inner *= xs->dims[d];
  int64_t per = C ? total / C : 0;
  g_autofree double *mean = g_new0 (double, MAX (C, 1));
  g_autofree double *var = g_new0 (double, MAX (C, 1));
#define FEAT(e) (((e) / inner) % C)

  if (instr->opcode == FB_OP_BATCH_NORM_TRAINING || instr->opcode == FB_OP_BATCH_NORM_GRAD)
    {
      if (instr->opcode == FB_OP_BATCH_NORM_TRAINING)
        {
          for (int64_t e = 0; e < total; e++)
            mean[FEAT (e)] += get (x, e);
          for (int64_t c = 0; c < C; c++)
            mean[c] = round_to (xs->type, mean[c] / MAX (per, 1));
          for (int64_t e = 0; e < total; e++)
            {
              double d = get (x, e) - mean[FEAT (e)];
              var[FEAT (e)] += d * d;
            }
          for (int64_t c = 0; c < C; c++)
            var[c] = round_to (xs->type, var[c] / MAX (per, 1));
        }
      else
        for (int64_t c = 0; c < C; c++)
          {
            mean[c] = get (ops[2], c);
            var[c] = get (ops[3], c);
          }
    }
  else
    for (int64_t c = 0; c < C; c++)
      {
        mean[c] = get (ops[3], c);
        var[c] = get (ops[4], c);
      }

  if (instr->opcode == FB_OP_BATCH_NORM_GRAD)
    {
      const FbLiteral *scale = ops[1], *dy = ops[4];
      g_autofree double *sum_dy = g_new0 (double, MAX (C, 1));
      g_autofree double *sum_dyx = g_new0 (double, MAX (C, 1));
      for (int64_t e = 0; e < total; e++)
        {
          int64_t c = FEAT (e);
          double xhat = (get (x, e) - mean[c]) / sqrt (var[c] + eps);
          sum_dy[c] += get (dy, e);
          sum_dyx[c] += get (dy, e) * xhat;
        }
      for (int64_t e = 0; e < total; e++)
        {
          int64_t c = FEAT (e);
          double rs = 1.0 / sqrt (var[c] + eps);
          double xhat = (get (x, e) - mean[c]) * rs;
          double g = get (scale, c) * rs * (get (dy, e) - sum_dy[c] / per - xhat * sum_dyx[c] / per);
          set (leaf (out, 0), e, g);
        }
      for (int64_t c = 0; c < C; c++)
        {
          set (leaf (out, 1), c, sum_dyx[c]);
          set (leaf (out, 2), c, sum_dy[c]);
        }
      return TRUE;
    }

  const FbLiteral *scale = ops[1], *offset = ops[2];
  for (int64_t e = 0; e < total; e++)
    {
      int64_t c = FEAT (e);
      double y = (get (x, e) - mean[c]) / sqrt (var[c] + eps) * get (scale, c) + get (offset, c);
      set (leaf (out, 0), e, y);
    }
  if (instr->opcode == FB_OP_BATCH_NORM_TRAINING)
    for (int64_t c = 0; c < C; c++)
      {
        set (leaf (out, 1), c, mean[c]);
        set (leaf (out, 2), c, var[c]);
      }
#undef FEAT
  return TRUE;
}

/* ---------------------------------------------------- gather / scatter */

static gboolean
in_dims (const FbDims *d, int64_t v)
{
  for (int i = 0; d && i < d->n; i++)
    if (d->v[i] == v)
      return TRUE;
  return FALSE;
}

static int64_t
dims_pos (const FbDims *d, int64_t v)
{
  for (int i = 0; d && i < d->n; i++)
    if (d->v[i] == v)
      return i;
  return -1;
}

/* Reads the index vector for batch position @bidx (indices dims without the
 * index vector dim, in order) into @start (operand dims, via @map) and fills
 * the batching dims. */
static void
read_start (const FbLiteral *indices, int64_t ivd, const int64_t *bidx, const FbDims *map,
            const FbDims *op_batching, const FbDims *idx_batching, int op_rank, int64_t *start)
{
  const FbShape *xs = indices->shape;
  int64_t xst[MAX_RANK + 1], full[MAX_RANK + 1];
  _fb_cpu_strides (xs, xst);
  for (int d = 0; d < op_rank; d++)
    start[d] = 0;
  for (int d = 0, b = 0; d < xs->rank; d++)
    full[d] = d == ivd ? 0 : bidx[b++];
  int n_vec = ivd < xs->rank ? (int) xs->dims[ivd] : 1;
  for (int k = 0; k < n_vec && map && k < map->n; k++)
    {
      int64_t off = 0;
      for (int d = 0; d < xs->rank; d++)
        off += (d == ivd ? k : full[d]) * xst[d];
      start[map->v[k]] = (int64_t) get (indices, off);
    }
  for (int i = 0; op_batching && idx_batching && i < op_batching->n && i < idx_batching->n; i++)
    {
      int64_t xd = idx_batching->v[i];
      start[op_batching->v[i]] = xd >= 0 && xd < xs->rank ? full[xd] : 0;
    }
}

static gboolean
rt_gather (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  const FbLiteral *operand = ops[0], *indices = ops[1];
  const FbShape *os = operand->shape, *rs = out->shape;
  const FbDims *offset_dims = fb_instr_dims (instr, FB_A_OFFSET_DIMS);
  const FbDims *collapsed = fb_instr_dims (instr, FB_A_COLLAPSED_SLICE_DIMS);
  const FbDims *map = fb_instr_dims (instr, FB_A_START_INDEX_MAP);
  const FbDims *sizes = fb_instr_dims (instr, FB_A_SLICE_SIZES);
  const FbDims *ob = fb_instr_dims (instr, FB_A_OPERAND_BATCHING_DIMS);
  const FbDims *ib = fb_instr_dims (instr, FB_A_START_INDICES_BATCHING_DIMS);
  int64_t ivd = fb_instr_int (instr, FB_A_INDEX_VECTOR_DIM, indices->shape->rank);
  if (os->rank > MAX_RANK || rs->rank > MAX_RANK || !sizes || sizes->n != os->rank)
    {
      _fb_cpu_error (error, instr, "gather needs slice_sizes for every operand dimension");
      return FALSE;
    }
  /* Output offset dim k reads operand dim window_dims[k]. */
  int window_dims[MAX_RANK], nw = 0;
  for (int d = 0; d < os->rank; d++)
    if (!in_dims (collapsed, d) && !in_dims (ob, d))
      window_dims[nw++] = d;
  int64_t ost[MAX_RANK], oidx[MAX_RANK] = { 0 }, n_out = fb_shape_elements (rs);
  _fb_cpu_strides (os, ost);
  int es = fb_elem_type_bytes (rs->type);
  for (int64_t e = 0; e < n_out; e++)
    {
      int64_t bidx[MAX_RANK + 1], nb = 0, start[MAX_RANK], off[MAX_RANK] = { 0 };
      for (int d = 0; d < rs->rank; d++)
        {
          int64_t k = dims_pos (offset_dims, d);
          if (k < 0)
            bidx[nb++] = oidx[d];
          else if (k < nw)
            off[window_dims[k]] = oidx[d];
        }
      read_start (indices, ivd, bidx, map, ob, ib, os->rank, start);
      int64_t src = 0;
      for (int d = 0; d < os->rank; d++)
        {
          int64_t s = start[d];
          if (!in_dims (ob, d))
            s = CLAMP (s, 0, os->dims[d] - sizes->v[d]);
          src += (s + off[d]) * ost[d];
        }
      memcpy (out->data + e * es, operand->data + src * es, es);
      next_index (oidx, rs);
    }
  return TRUE;
}

static gboolean
rt_scatter (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  int n = (instr->n_operands - 1) / 2;
  if (n < 1 || n > MAX_VARIADIC || instr->n_operands != 2 * n + 1)
    {
      _fb_cpu_error (error, instr, "scatter takes N operands, the indices and N updates (N from 1 to %d)", MAX_VARIADIC);
      return FALSE;
    }
  const FbLiteral *indices = ops[n];
  const FbShape *os = ops[0]->shape, *us = ops[n + 1]->shape;
  const FbDims *uwd = fb_instr_dims (instr, FB_A_UPDATE_WINDOW_DIMS);
  const FbDims *inserted = fb_instr_dims (instr, FB_A_INSERTED_WINDOW_DIMS);
  const FbDims *map = fb_instr_dims (instr, FB_A_SCATTER_DIMS_TO_OPERAND_DIMS);
  const FbDims *ob = fb_instr_dims (instr, FB_A_INPUT_BATCHING_DIMS);
  const FbDims *ib = fb_instr_dims (instr, FB_A_SCATTER_INDICES_BATCHING_DIMS);
  int64_t ivd = fb_instr_int (instr, FB_A_INDEX_VECTOR_DIM, indices->shape->rank);
  if (os->rank > MAX_RANK || us->rank > MAX_RANK)
    {
      _fb_cpu_error (error, instr, "scatter of rank above %d", MAX_RANK);
      return FALSE;
    }
  FbElemType types[2 * MAX_VARIADIC];
  for (int i = 0; i < n; i++)
    {
      types[i] = ops[i]->shape->type;
      types[n + i] = ops[n + 1 + i]->shape->type;
      FbLiteral *l = leaf (out, i);
      memcpy (l->data, ops[i]->data, _fb_cpu_storage_bytes (l->shape));
    }
  Applier ap;
  if (!applier_init (&ap, rt, instr, FB_A_TO_APPLY, 2 * n, types, error))
    return FALSE;
  int window_dims[MAX_RANK], nw = 0;
  for (int d = 0; d < os->rank; d++)
    if (!in_dims (inserted, d) && !in_dims (ob, d))
      window_dims[nw++] = d;
  int64_t extent[MAX_RANK];
  for (int d = 0; d < os->rank; d++)
    extent[d] = 1;
  for (int k = 0; uwd && k < uwd->n && k < nw; k++)
    extent[window_dims[k]] = us->dims[uwd->v[k]];
  int64_t ost[MAX_RANK], uidx[MAX_RANK] = { 0 }, n_upd = fb_shape_elements (us);
  _fb_cpu_strides (os, ost);
  double in[2 * MAX_VARIADIC], res[MAX_VARIADIC];
  for (int64_t e = 0; e < n_upd; e++)
    {
      int64_t bidx[MAX_RANK + 1], nb = 0, start[MAX_RANK], off[MAX_RANK] = { 0 };
      for (int d = 0; d < us->rank; d++)
        {
          int64_t k = dims_pos (uwd, d);
          if (k < 0)
            bidx[nb++] = uidx[d];
          else if (k < nw)
            off[window_dims[k]] = uidx[d];
        }
      read_start (indices, ivd, bidx, map, ob, ib, os->rank, start);
      gboolean inside = TRUE;
      int64_t dst = 0;
      for (int d = 0; d < os->rank && inside; d++)
        {
          inside = start[d] >= 0 && start[d] <= os->dims[d] - extent[d];
          dst += (start[d] + off[d]) * ost[d];
        }
      if (inside)
        {
          for (int i = 0; i < n; i++)
            {
              in[i] = get (leaf (out, i), dst);
              in[n + i] = get (ops[n + 1 + i], e);
            }
          if (!applier_call (&ap, in, res, n, error))
            return FALSE;
          for (int i = 0; i < n; i++)
            set (leaf (out, i), dst, res[i]);
        }
      next_index (uidx, us);
    }
  return TRUE;
}

/* ---------------------------------------------------------------- sort */

typedef struct {
  Applier      *ap;
  int           n;
  FbLiteral *const *ops;
  int64_t       base, stride;   /* element j of the row is at base + j * stride */
  GError      **error;
  gboolean      failed;
} SortCtx;

/* Is row element @a strictly before @b? */
static gboolean
sort_less (SortCtx *c, int64_t a, int64_t b)
{
  if (c->failed)
    return FALSE;
  double in[2 * MAX_VARIADIC], r;
  for (int i = 0; i < c->n; i++)
    {
      in[2 * i] = get (c->ops[i], c->base + a * c->stride);
      in[2 * i + 1] = get (c->ops[i], c->base + b * c->stride);
    }
  if (!applier_call (c->ap, in, &r, 1, c->error))
    {
      c->failed = TRUE;
      return FALSE;
    }
  return r != 0;
}

static void
merge_sort (SortCtx *c, int64_t *v, int64_t *tmp, int64_t n)
{
  if (n < 2)
    return;
  int64_t h = n / 2;
  merge_sort (c, v, tmp, h);
  merge_sort (c, v + h, tmp, n - h);
  int64_t i = 0, j = h, k = 0;
  while (i < h && j < n)
    tmp[k++] = sort_less (c, v[j], v[i]) ? v[j++] : v[i++];
  while (i < h)
    tmp[k++] = v[i++];
  while (j < n)
    tmp[k++] = v[j++];
  memcpy (v, tmp, sizeof (int64_t) * n);
}

static gboolean
rt_sort (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  int n = instr->n_operands;
  if (n < 1 || n > MAX_VARIADIC)
    {
      _fb_cpu_error (error, instr, "sort takes 1 to %d operands", MAX_VARIADIC);
      return FALSE;
    }
  const FbShape *s = ops[0]->shape;
  int64_t dim = fb_instr_int (instr, FB_A_DIMENSIONS, -1);
  const FbDims *dd = fb_instr_dims (instr, FB_A_DIMENSIONS);
  if (dd && dd->n == 1)
    dim = dd->v[0];
  if (dim < 0 || dim >= s->rank)
    {
      _fb_cpu_error (error, instr, "sort dimension %" G_GINT64_FORMAT " is out of range", dim);
      return FALSE;
    }
  FbElemType types[2 * MAX_VARIADIC];
  for (int i = 0; i < n; i++)
    types[2 * i] = types[2 * i + 1] = ops[i]->shape->type;
  Applier ap;
  if (!applier_init (&ap, rt, instr, FB_A_TO_APPLY, 2 * n, types, error))
    return FALSE;
  if (ap.fast == FB_OP_COMPARE && ap.swapped)
    ap.fast = FB_N_OPCODES;   /* compare (p1, p0): keep the general path simple */
  if (ap.fast != FB_OP_COMPARE)
    ap.fast = FB_N_OPCODES;
  int64_t st[MAX_RANK];
  _fb_cpu_strides (s, st);
  int64_t len = s->dims[dim], total = fb_shape_elements (s);
  int64_t rows = len ? total / len : 0;
  g_autofree int64_t *perm = g_new (int64_t, MAX (len, 1));
  g_autofree int64_t *tmp = g_new (int64_t, MAX (len, 1));
  SortCtx c = { &ap, n, ops, 0, st[dim], error, FALSE };
  int64_t inner = st[dim];
  for (int64_t r = 0; r < rows; r++)
    {
      c.base = (r / inner) * inner * len + r % inner;
      for (int64_t j = 0; j < len; j++)
        perm[j] = j;
      merge_sort (&c, perm, tmp, len);
      if (c.failed)
        return FALSE;
      for (int i = 0; i < n; i++)
        {
          FbLiteral *l = leaf (out, i);
          int es = fb_elem_type_bytes (l->shape->type);
          for (int64_t j = 0; j < len; j++)
            memcpy (l->data + (c.base + j * c.stride) * es, ops[i]->data + (c.base + perm[j] * c.stride) * es, es);
        }
    }
  return TRUE;
}

/* --------------------------------------------------------------- top-k */

static gboolean
topk (const FbInstr *instr, const FbLiteral *x, int64_t k, FbLiteral *out, GError **error)
{
  const FbShape *s = x->shape;
  if (s->rank < 1 || out->elems == NULL || out->n_elems != 2)
    {
      _fb_cpu_error (error, instr, "top-k needs an operand of rank 1 or more and gives (values, indices)");
      return FALSE;
    }
  int64_t len = s->dims[s->rank - 1], rows = len ? fb_shape_elements (s) / len : 0;
  k = MIN (k, len);
  g_autofree int64_t *idx = g_new (int64_t, MAX (len, 1));
  for (int64_t r = 0; r < rows; r++)
    {
      for (int64_t j = 0; j < len; j++)
        idx[j] = j;
      /* selection of the k largest; ties keep the lower index first */
      for (int64_t a = 0; a < k; a++)
        {
          int64_t best = a;
          for (int64_t b = a + 1; b < len; b++)
            {
              double vb = get (x, r * len + idx[b]), vbest = get (x, r * len + idx[best]);
              if (vb > vbest || (isnan (vb) && !isnan (vbest)) || (vb == vbest && idx[b] < idx[best]))
                best = b;
            }
          int64_t t = idx[a];
          idx[a] = idx[best];
          idx[best] = t;
          set (out->elems[0], r * k + a, get (x, r * len + idx[a]));
          set (out->elems[1], r * k + a, (double) idx[a]);
        }
    }
  return TRUE;
}

static gboolean
rt_topk (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  return topk (instr, ops[0], fb_instr_int (instr, FB_A_K, 1), out, error);
}

static void
copy_leaves (FbLiteral *dst, const FbLiteral *src)
{
  if (dst->elems)
    for (int i = 0; i < dst->n_elems && src->elems && i < src->n_elems; i++)
      copy_leaves (dst->elems[i], src->elems[i]);
  else if (src->data && dst->data)
    memcpy (dst->data, src->data, MIN (_fb_cpu_storage_bytes (dst->shape), _fb_cpu_storage_bytes (src->shape)));
}

static gboolean
rt_custom_call (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  const char *target = fb_instr_str (instr, FB_A_CUSTOM_CALL_TARGET);
  FbCustomCallImpl impl;
  if (!fb_custom_call_map_lookup (rt->custom_calls, target ? target : "", &impl, error))
    return FALSE;
  switch (impl)
    {
    case FB_CC_IDENTITY:
      if (instr->n_operands == 1)
        copy_leaves (out, ops[0]);
      else
        for (int i = 0; i < instr->n_operands && out->elems && i < out->n_elems; i++)
          copy_leaves (out->elems[i], ops[i]);
      return TRUE;
    case FB_CC_TOPK:
      {
        int64_t k = out->elems && out->n_elems == 2 && out->elems[0]->shape->rank > 0
                    ? out->elems[0]->shape->dims[out->elems[0]->shape->rank - 1] : 1;
        return topk (instr, ops[0], k, out, error);
      }
    default:
      break;
    }
  _fb_cpu_error (error, instr, "custom-call implementation %s is not available on CPU",
                 fb_custom_call_impl_name (impl));
  return FALSE;
}

/* ----------------------------------------------------------------- map */

/* The mapped computation, called once per element with one scalar of each
 * operand. Its program's buffers are shared by every call, so the elements
 * run one after another; the scratch of the calls is released every few
 * thousand elements so that a large map does not grow the arena. */
static gboolean
rt_map (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  FbComputation *called[8];
  int k = instr->n_operands;
  int n_called = fb_instr_called (instr, called, 8);
  FbComputation *f = fb_instr_comp (instr, FB_A_TO_APPLY);
  if (f == NULL || n_called < 1 || rt->n_programs < 1 || called[0] != f)
    {
      _fb_cpu_error (error, instr, "map needs a to_apply computation");
      return FALSE;
    }
  if (!fb_shape_is_array (out->shape) || f->n_params != k)
    {
      _fb_cpu_error (error, instr, "map must give an array and %s must take %d scalars", f->name, k);
      return FALSE;
    }
  int64_t n = fb_shape_elements (out->shape);
  for (int j = 0; j < k; j++)
    if (!fb_shape_is_array (ops[j]->shape) || fb_shape_elements (ops[j]->shape) != n)
      {
        _fb_cpu_error (error, instr, "operand %d has another number of elements than the result", j);
        return FALSE;
      }
  int out_bytes = fb_elem_type_bytes (out->shape->type);
  FbLiteral *args[MAX (k, 1)];
  int bytes[MAX (k, 1)];
  for (int j = 0; j < k; j++)
    {
      args[j] = fb_literal_new (rt->arena, fb_shape_new_scalar (rt->arena, ops[j]->shape->type));
      bytes[j] = fb_elem_type_bytes (ops[j]->shape->type);
    }
  FbArena *calls = fb_arena_new ();
  gboolean ok = TRUE;
  for (int64_t i = 0; i < n && ok; i++)
    {
      if (i > 0 && i % 4096 == 0)
        {
          fb_arena_free (calls);
          calls = fb_arena_new ();
        }
      for (int j = 0; j < k; j++)
        memcpy (args[j]->data, ops[j]->data + i * bytes[j], bytes[j]);
      FbLiteral *v = rt->call (rt->programs[0], calls, k, args, error);
      if (v == NULL)
        ok = FALSE;
      else if (v->data == NULL || v->shape->type != out->shape->type || fb_shape_elements (v->shape) != 1)
        {
          _fb_cpu_error (error, instr, "%s must return a %s scalar", f->name, fb_elem_type_name (out->shape->type));
          ok = FALSE;
        }
      else
        memcpy (out->data + i * out_bytes, v->data, out_bytes);
    }
  fb_arena_free (calls);
  return ok;
}

/* -------------------------------------------------------------- lookup */

FbCpuRuntimeFn
_fb_cpu_runtime_lookup (const FbInstr *instr, GError **error)
{
  switch (instr->opcode)
    {
    case FB_OP_REDUCE: return rt_reduce;
    case FB_OP_REDUCE_WINDOW: return rt_reduce_window;
    case FB_OP_SELECT_AND_SCATTER: return rt_select_and_scatter;
    case FB_OP_BATCH_NORM_TRAINING:
    case FB_OP_BATCH_NORM_INFERENCE:
    case FB_OP_BATCH_NORM_GRAD: return rt_batch_norm;
    case FB_OP_GATHER: return rt_gather;
    case FB_OP_SCATTER: return rt_scatter;
    case FB_OP_SORT: return rt_sort;
    case FB_OP_TOPK: return rt_topk;
    case FB_OP_CUSTOM_CALL: return rt_custom_call;
    case FB_OP_CONVOLUTION: return _fb_cpu_convolution;
    case FB_OP_MAP: return rt_map;
    case FB_OP_RNG_BIT_GENERATOR: return _fb_cpu_rng_bit_generator;
    case FB_OP_CHOLESKY: return _fb_cpu_cholesky;
    case FB_OP_TRIANGULAR_SOLVE: return _fb_cpu_triangular_solve;
    case FB_OP_FFT: return _fb_cpu_fft;
    default:
      break;
    }
  g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "no runtime function for %s",
               fb_opcode_name (instr->opcode));
  return NULL;
}
