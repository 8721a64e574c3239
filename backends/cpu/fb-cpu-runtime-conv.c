/* SPDX-License-Identifier: MIT
 *
 * Convolution on the CPU backend, with XLA's semantics: any dim_labels,
 * strides, padding, lhs and rhs dilation, window reversal, feature groups
 * and batch groups. Up to three methods compute it, and the fastest for a
 * shape is chosen by timing each, the best of three runs. The choice is
 * kept per shape in the process and in the kernel cache on disk (keyed by
 * the shape, the CPU and the libraries), so that a step compiled again runs
 * the same methods, gives the same bits and is not timed again;
 * FUSEBOX_CONV=direct|im2col|onednn picks one instead:
 *
 *   - im2col + GEMM: the input is unfolded into a matrix whose rows are
 *     (input feature, kernel row, kernel column) and whose columns are
 *     (output row, output column), and the kernel, as an [output features,
 *     rows] matrix, multiplies it. Each (group, batch element, block of
 *     rows) is a task of the thread pool that unfolds its block into a
 *     buffer small enough to stay in cache and multiplies it with a
 *     single-threaded GEMM. Whether an input row falls in the padding is
 *     decided once per row of the matrix, and with stride 1 the valid part
 *     of an output row is one contiguous copy. When the window is wider than
 *     the output (a filter gradient, whose "window" is the whole output
 *     gradient and whose sum runs over batch x spatial) the block is
 *     unfolded transposed, so that the contiguous copies run along the
 *     window's rows, which are the long ones.
 *   - direct loops: for every (batch, output feature, output row), the
 *     kernel taps are accumulated into the row one input row at a time;
 *     best for grouped (depthwise) convolutions, where each group's GEMM
 *     would be a sliver.
 *   - oneDNN's forward convolution (fb-cpu-onednn.c), where the build has
 *     oneDNN, the window has no input dilation and oneDNN has a fast kernel
 *     for the shape. On the zoo CNN it wins for every convolution but the
 *     first layer's filter gradient.
 *
 * All three work on packed f32 copies in the canonical order (batch, feature,
 * rows, columns) and write back through the output's strides, so the other
 * layouts need no code of their own. Up to two spatial dimensions take these
 * paths (one or none as a degenerate 2-D case); more, batch groups and
 * integer types take a general loop over every output element.
 *
 * Work is split by the shape alone, never by the number of threads, and a
 * sum split into blocks is added up in block order, so the result does not
 * depend on the number of threads.
 */
#include "fb-cpu-private.h"
#include "fb-cpu-codegen.h"

#include <cblas.h>
#include <string.h>

#define MAX_RANK 16

/* Elements of the unfolded matrix per GEMM, at most: a block that stays in
 * the core's cache between being filled and being multiplied. */
#define COL_BUDGET (64 << 10)

/* Convolution geometry, from dim_labels, the window and the group counts. */
typedef struct {
  int      ns;                                  /* spatial dimensions */
  int64_t  N, C, O, G, BG;                      /* batch, input features, output features, groups */
  int64_t  ON;                                  /* output batch */
  int64_t  in_sz[MAX_RANK], k_sz[MAX_RANK], out_sz[MAX_RANK];
  int64_t  ist[MAX_RANK], kst[MAX_RANK], ost[MAX_RANK];
  int64_t  i_b, i_f, i_s[MAX_RANK], k_i, k_o, k_s[MAX_RANK], o_b, o_f, o_s[MAX_RANK];   /* strides */
  FbWindowDim w[MAX_RANK];
  int64_t  out_points;                          /* product of out_sz */
  int64_t  k_points;                            /* product of k_sz */
} Conv;

static gboolean
conv_init (Conv *c, const FbInstr *instr, const FbShape *in, const FbShape *k, const FbShape *out, GError **error)
{
  const FbAttr *dl = fb_instr_get_attr (instr, FB_A_DIM_LABELS);
  if (dl == NULL || dl->kind != FB_AV_DIM_LABELS || in->rank > MAX_RANK || dl->v.conv.n_spatial != in->rank - 2
      || k->rank != in->rank || out->rank != in->rank)
    {
      _fb_cpu_error (error, instr, "convolution needs dim_labels that fit its operands");
      return FALSE;
    }
  const FbConvDims *d = &dl->v.conv;
  memset (c, 0, sizeof *c);
  c->ns = d->n_spatial;
  FbWindowDim w[MAX_RANK];
  const FbAttr *wa = fb_instr_get_attr (instr, FB_A_WINDOW);
  for (int s = 0; s < c->ns; s++)
    w[s] = (FbWindowDim) { k->dims[d->k_spatial[s]], 1, 0, 0, 1, 1, FALSE };
  if (wa && wa->kind == FB_AV_WINDOW)
    {
      if (wa->v.window.n != c->ns)
        {
          _fb_cpu_error (error, instr, "the window has %d dimensions, the convolution %d spatial ones",
                         wa->v.window.n, c->ns);
          return FALSE;
        }
      for (int s = 0; s < c->ns; s++)
        w[s] = wa->v.window.d[s];
    }
  _fb_cpu_strides (in, c->ist);
  _fb_cpu_strides (k, c->kst);
  _fb_cpu_strides (out, c->ost);
  c->N = in->dims[d->in_batch];
  c->C = in->dims[d->in_feature];
  c->O = k->dims[d->k_out];
  c->ON = out->dims[d->out_batch];
  c->G = fb_instr_int (instr, FB_A_FEATURE_GROUP_COUNT, 1);
  c->BG = fb_instr_int (instr, FB_A_BATCH_GROUP_COUNT, 1);
  c->i_b = c->ist[d->in_batch];
  c->i_f = c->ist[d->in_feature];
  c->k_i = c->kst[d->k_in];
  c->k_o = c->kst[d->k_out];
  c->o_b = c->ost[d->out_batch];
  c->o_f = c->ost[d->out_feature];
  c->out_points = c->k_points = 1;
  for (int s = 0; s < c->ns; s++)
    {
      c->w[s] = w[s];
      c->in_sz[s] = in->dims[d->in_spatial[s]];
      c->k_sz[s] = k->dims[d->k_spatial[s]];
      c->out_sz[s] = out->dims[d->out_spatial[s]];
      c->i_s[s] = c->ist[d->in_spatial[s]];
      c->k_s[s] = c->kst[d->k_spatial[s]];
      c->o_s[s] = c->ost[d->out_spatial[s]];
      c->out_points *= c->out_sz[s];
      c->k_points *= c->k_sz[s];
      if (w[s].stride < 1 || w[s].lhs_dilate < 1 || w[s].rhs_dilate < 1)
        {
          _fb_cpu_error (error, instr, "window dimension %d has a stride or dilation below 1", s);
          return FALSE;
        }
    }
  if (c->G < 1 || c->BG < 1 || c->C % c->G != 0 || c->O % c->G != 0 || c->O % c->BG != 0
      || c->N % c->BG != 0 || k->dims[d->k_in] * c->G != c->C)
    {
      _fb_cpu_error (error, instr, "feature_group_count or batch_group_count does not divide the features");
      return FALSE;
    }
  return TRUE;
}

static void
store (FbLiteral *lit, int64_t i, double v)
{
  if (lit->shape->type == FB_F32)
    ((float *) lit->data)[i] = (float) v;
  else if (lit->shape->type == FB_BF16)
    ((uint16_t *) lit->data)[i] = fb_f32_to_bf16 ((float) v);
  else if (lit->shape->type == FB_F16)
    ((uint16_t *) lit->data)[i] = fb_f32_to_f16 ((float) v);
  else if (fb_elem_type_is_float (lit->shape->type))
    fb_literal_set_f64 (lit, i, v);
  else
    fb_literal_set_s64 (lit, i, (int64_t) v);
}

/* The elements of @lit as f32: its own data when it is f32, else a copy
 * that *@owned keeps. */
static const float *
f32_data (const FbLiteral *lit, float **owned)
{
  *owned = NULL;
  if (lit->shape->type == FB_F32)
    return (const float *) lit->data;
  int64_t n = fb_shape_elements (lit->shape);
  float *f = g_new (float, MAX (n, 1));
  const uint16_t *h = (const uint16_t *) lit->data;
  if (lit->shape->type == FB_BF16)
    for (int64_t i = 0; i < n; i++)
      f[i] = fb_bf16_to_f32 (h[i]);
  else if (lit->shape->type == FB_F16)
    for (int64_t i = 0; i < n; i++)
      f[i] = fb_f16_to_f32 (h[i]);
  else if (fb_elem_type_is_float (lit->shape->type))
    for (int64_t i = 0; i < n; i++)
      f[i] = (float) fb_literal_get_f64 (lit, i);
  else
    for (int64_t i = 0; i < n; i++)
      f[i] = (float) fb_literal_get_s64 (lit, i);
  return *owned = f;
}

/* ------------------------------------------------------ general loops */

/* Input position of output point @op (spatial, unravelled in @oi) and kernel
 * point @ki, or -1 when it falls in padding or between dilated elements. */
static inline int64_t
conv_input (const Conv *c, const int64_t *oi, const int64_t *ki)
{
  int64_t off = 0;
  for (int s = 0; s < c->ns; s++)
    {
      const FbWindowDim *w = &c->w[s];
      int64_t kk = w->reversal ? c->k_sz[s] - 1 - ki[s] : ki[s];
      int64_t p = oi[s] * w->stride + kk * w->rhs_dilate - w->pad_lo;
      if (p < 0 || p % w->lhs_dilate != 0)
        return -1;
      p /= w->lhs_dilate;
      if (p >= c->in_sz[s])
        return -1;
      off += p * c->i_s[s];
    }
  return off;
}

static void
unravel (int64_t p, const int64_t *sz, int n, int64_t *idx)
{
  for (int s = n - 1; s >= 0; s--)
    {
      idx[s] = sz[s] ? p % sz[s] : 0;
      p = sz[s] ? p / sz[s] : 0;
    }
}

typedef struct {
  const Conv  *c;
  FbLiteral   *out;
  const float *inf, *kf;
} ConvJob;

/* One output element per iteration, over (batch, feature) rows; any rank,
 * any groups, sums in double. */
static void
general_range (gpointer data, int64_t begin, int64_t end)
{
  ConvJob *j = data;
  const Conv *c = j->c;
  int64_t Og = c->O / c->G, Ob = c->O / c->BG, Cg = c->C / c->G;
  for (int64_t r = begin; r < end; r++)
    {
      int64_t b = r / c->O, o = r % c->O;
      int64_t g = o / Og, bg = o / Ob;
      int64_t in_b = bg * c->ON + b;
      for (int64_t p = 0; p < c->out_points; p++)
        {
          int64_t oi[MAX_RANK], ki[MAX_RANK], opos = b * c->o_b + o * c->o_f;
          unravel (p, c->out_sz, c->ns, oi);
          for (int s = 0; s < c->ns; s++)
            opos += oi[s] * c->o_s[s];
          double acc = 0;
          for (int64_t kp = 0; kp < c->k_points; kp++)
            {
              unravel (kp, c->k_sz, c->ns, ki);
              int64_t ipos = conv_input (c, oi, ki);
              if (ipos < 0)
                continue;
              int64_t kpos = o * c->k_o;
              for (int s = 0; s < c->ns; s++)
                kpos += ki[s] * c->k_s[s];
              ipos += in_b * c->i_b;
              for (int64_t ci = 0; ci < Cg; ci++)
                acc += (double) j->inf[ipos + (g * Cg + ci) * c->i_f] * j->kf[kpos + ci * c->k_i];
            }
          store (j->out, opos, acc);
        }
    }
}

static void
conv_general (FbCpuPool *pool, const Conv *c, const float *inf, const float *kf, FbLiteral *out)
{
  ConvJob j = { c, out, inf, kf };
  _fb_cpu_pool_parallel_for (pool, c->ON * c->O, 1, general_range, &j);
}

/* ----------------------------------------------------- the 2-D paths */

/* One spatial dimension of the canonical form. */
typedef struct {
  int64_t in, k, out;            /* sizes */
  int64_t stride, pad, dil, ldil;
  gboolean rev;
} Axis;

/* The convolution in canonical order: input [N][C][H][W], kernel
 * [O][C/G][KH][KW] (reversal already applied), output [N][O][OH][OW]. */
typedef struct {
  const Conv *c;
  int64_t     N, C, O, G, Cg, Og, KC;     /* KC: one group's rows, Cg * KH * KW */
  Axis        h, w;
  int64_t     P;                          /* OH * OW */
} Conv2;

static gboolean
conv2_applies (const Conv *c, FbElemType t)
{
  return c->ns <= 2 && c->BG == 1 && (t == FB_F32 || t == FB_F16 || t == FB_BF16);
}

static void
conv2_init (Conv2 *v, const Conv *c)
{
  memset (v, 0, sizeof *v);
  v->c = c;
  v->N = c->N;
  v->C = c->C;
  v->O = c->O;
  v->G = c->G;
  v->Cg = c->C / c->G;
  v->Og = c->O / c->G;
  Axis *ax[2] = { &v->h, &v->w };
  int first = 2 - c->ns;        /* missing dimensions are the leading ones */
  for (int a = 0; a < 2; a++)
    {
      Axis *x = ax[a];
      if (a < first)
        {
          *x = (Axis) { 1, 1, 1, 1, 0, 1, 1, FALSE };
          continue;
        }
      int s = a - first;
      const FbWindowDim *w = &c->w[s];
      *x = (Axis) { c->in_sz[s], c->k_sz[s], c->out_sz[s], w->stride, w->pad_lo, w->rhs_dilate,
                    w->lhs_dilate, w->reversal };
    }
  v->KC = v->Cg * v->h.k * v->w.k;
  v->P = v->h.out * v->w.out;
}

/* The strides of the canonical axes in the original layout: batch, feature,
 * row, column (a missing dimension has stride 0). */
static void
canon_strides (const Conv *c, int64_t b, int64_t f, const int64_t *sp, int64_t *st)
{
  st[0] = b;
  st[1] = f;
  st[2] = c->ns == 2 ? sp[0] : 0;
  st[3] = c->ns >= 1 ? sp[c->ns - 1] : 0;
}

/* Copies @src, laid out by @st, into packed [d0][d1][d2][d3], reversing
 * axes 2 and 3 when asked; NULL when @src is already that. */
static float *
pack4 (const float *src, const int64_t *st, const int64_t *d, gboolean rev2, gboolean rev3)
{
  if (!rev2 && !rev3 && (d[3] == 1 || st[3] == 1) && (d[2] == 1 || st[2] == d[3])
      && (d[1] == 1 || st[1] == d[2] * d[3]) && (d[0] == 1 || st[0] == d[1] * d[2] * d[3]))
    return NULL;
  float *dst = g_new (float, MAX (d[0] * d[1] * d[2] * d[3], 1));
  float *p = dst;
  for (int64_t i0 = 0; i0 < d[0]; i0++)
    for (int64_t i1 = 0; i1 < d[1]; i1++)
      for (int64_t i2 = 0; i2 < d[2]; i2++)
        {
          const float *row = src + i0 * st[0] + i1 * st[1] + (rev2 ? d[2] - 1 - i2 : i2) * st[2];
          if (!rev3 && st[3] == 1)
            memcpy (p, row, d[3] * sizeof (float));
          else
            for (int64_t i3 = 0; i3 < d[3]; i3++)
              p[i3] = row[(rev3 ? d[3] - 1 - i3 : i3) * st[3]];
          p += d[3];
        }
  return dst;
}

/* The operands in canonical order; *@x and *@k borrow or point into @owned. */
typedef struct {
  float       *owned[4];
  const float *x, *k;
} Canon;

static void
canon_clear (Canon *cn)
{
  for (int i = 0; i < 4; i++)
    g_free (cn->owned[i]);
}

static void
canon_init (Canon *cn, const Conv2 *v, const FbLiteral *in, const FbLiteral *k)
{
  const Conv *c = v->c;
  memset (cn, 0, sizeof *cn);
  const float *xf = f32_data (in, &cn->owned[0]);
  const float *kf = f32_data (k, &cn->owned[1]);
  int64_t st[4], d[4];
  canon_strides (c, c->i_b, c->i_f, c->i_s, st);
  d[0] = v->N, d[1] = v->C, d[2] = v->h.in, d[3] = v->w.in;
  cn->owned[2] = pack4 (xf, st, d, FALSE, FALSE);
  cn->x = cn->owned[2] ? cn->owned[2] : xf;
  canon_strides (c, c->k_o, c->k_i, c->k_s, st);
  d[0] = v->O, d[1] = v->Cg, d[2] = v->h.k, d[3] = v->w.k;
  cn->owned[3] = pack4 (kf, st, d, v->h.rev, v->w.rev);
  cn->k = cn->owned[3] ? cn->owned[3] : kf;
}

/* The output as canonical f32 [N][O][OH][OW]: its own data when it is laid
 * out so, else a buffer that conv2_finish scatters. */
static float *
conv2_out (const Conv2 *v, FbLiteral *out, gboolean *direct)
{
  const Conv *c = v->c;
  int64_t st[4];
  canon_strides (c, c->o_b, c->o_f, c->o_s, st);
  *direct = out->shape->type == FB_F32 && (v->w.out == 1 || st[3] == 1) && (v->h.out == 1 || st[2] == v->w.out)
            && (v->O == 1 || st[1] == v->P) && (v->N == 1 || st[0] == v->O * v->P);
  return *direct ? (float *) out->data : g_new (float, MAX (v->N * v->O * v->P, 1));
}

static void
conv2_finish (const Conv2 *v, float *y, gboolean direct, FbLiteral *out)
{
  if (direct)
    return;
  const Conv *c = v->c;
  int64_t st[4];
  canon_strides (c, c->o_b, c->o_f, c->o_s, st);
  const float *p = y;
  for (int64_t n = 0; n < v->N; n++)
    for (int64_t o = 0; o < v->O; o++)
      for (int64_t oh = 0; oh < v->h.out; oh++)
        for (int64_t ow = 0; ow < v->w.out; ow++)
          store (out, n * st[0] + o * st[1] + oh * st[2] + ow * st[3], *p++);
  g_free (y);
}

/* The input row that output row @o and kernel tap @k read, or -1 in the
 * padding or between dilated elements. */
static inline int64_t
axis_src (const Axis *a, int64_t o, int64_t k)
{
  int64_t p = o * a->stride + k * a->dil - a->pad;
  if (p < 0 || p % a->ldil != 0 || p / a->ldil >= a->in)
    return -1;
  return p / a->ldil;
}

/* The i in [0, @count) with 0 <= @off + i * @step < @in, as the
 * range [*lo, *hi) (step >= 1). */
static inline void
span (int64_t in, int64_t step, int64_t off, int64_t count, int64_t *lo, int64_t *hi)
{
  int64_t l = off >= 0 ? 0 : (-off + step - 1) / step;
  int64_t h = in - 1 - off < 0 ? 0 : (in - 1 - off) / step + 1;
  *lo = MIN (l, count);
  *hi = CLAMP (h, *lo, count);
}

/* Without lhs dilation: the output columns [*lo, *hi) whose input column
 * o * stride + @off lies inside the input. */
static inline void
axis_span (const Axis *a, int64_t off, int64_t *lo, int64_t *hi)
{
  span (a->in, a->stride, off, a->out, lo, hi);
}

/* Output row @dst (w.out columns) of tap @kw from input row @src. */
static inline void
fill_row (const Axis *a, float *dst, const float *src, int64_t kw)
{
  int64_t off = kw * a->dil - a->pad;
  if (src == NULL)
    {
      memset (dst, 0, a->out * sizeof (float));
      return;
    }
  if (a->ldil != 1)
    {
      for (int64_t ow = 0; ow < a->out; ow++)
        {
          int64_t p = ow * a->stride + off;
          dst[ow] = p >= 0 && p % a->ldil == 0 && p / a->ldil < a->in ? src[p / a->ldil] : 0.0f;
        }
      return;
    }
  int64_t lo, hi;
  axis_span (a, off, &lo, &hi);
  if (lo > 0)
    memset (dst, 0, lo * sizeof (float));
  if (a->stride == 1)
    memcpy (dst + lo, src + lo + off, (hi - lo) * sizeof (float));
  else
    for (int64_t ow = lo; ow < hi; ow++)
      dst[ow] = src[ow * a->stride + off];
  if (hi < a->out)
    memset (dst + hi, 0, (a->out - hi) * sizeof (float));
}

static inline void
copy_run (float *restrict d, const float *restrict s, int64_t n, int64_t step)
{
  if (step == 1)
    memcpy (d, s, n * sizeof (float));
  else
    for (int64_t i = 0; i < n; i++)
      d[i] = s[i * step];
}

/* Fills rows [@r0, @r1) of the unfolded matrix of batch element @n and
 * group @g, for output rows [@oh0, @oh1), into @col as [r1 - r0][columns]:
 * runs of output columns. */
static void
im2col_rows (const Conv2 *v, const float *x, int64_t n, int64_t g, int64_t r0, int64_t r1, int64_t oh0,
             int64_t oh1, float *col)
{
  const Axis *ah = &v->h, *aw = &v->w;
  int64_t KHW = ah->k * aw->k, OW = aw->out, ld = (oh1 - oh0) * OW;
  int64_t ci = r0 / KHW, kh = r0 % KHW / aw->k, kw = r0 % aw->k;
  for (int64_t r = r0; r < r1; r++)
    {
      const float *plane = x + (n * v->C + g * v->Cg + ci) * ah->in * aw->in;
      float *dst = col + (r - r0) * ld - oh0 * OW;     /* indexed by oh * OW + ow */
      if (ah->ldil != 1 || aw->ldil != 1)
        for (int64_t oh = oh0; oh < oh1; oh++)
          {
            int64_t ih = axis_src (ah, oh, kh);
            fill_row (aw, dst + oh * OW, ih < 0 ? NULL : plane + ih * aw->in, kw);
          }
      else
        {
          /* The output rows and columns that read inside the input, decided
           * once for the whole row of the matrix. */
          int64_t hoff = kh * ah->dil - ah->pad, woff = kw * aw->dil - aw->pad;
          int64_t hlo, hhi, lo, hi;
          span (ah->in, ah->stride, hoff, ah->out, &hlo, &hhi);
          span (aw->in, aw->stride, woff, OW, &lo, &hi);
          hlo = CLAMP (hlo, oh0, oh1);
          hhi = CLAMP (hhi, hlo, oh1);
          memset (dst + oh0 * OW, 0, (hlo - oh0) * OW * sizeof (float));
          memset (dst + hhi * OW, 0, (oh1 - hhi) * OW * sizeof (float));
          if (lo == 0 && hi == OW && aw->stride == 1 && ah->stride == 1 && OW == aw->in)
            memcpy (dst + hlo * OW, plane + (hlo + hoff) * aw->in, (hhi - hlo) * OW * sizeof (float));
          else
            for (int64_t oh = hlo; oh < hhi; oh++)
              {
                float *d = dst + oh * OW;
                const float *src = plane + (oh * ah->stride + hoff) * aw->in + woff;
                for (int64_t ow = 0; ow < lo; ow++)
                  d[ow] = 0.0f;
                copy_run (d + lo, src + lo * aw->stride, hi - lo, aw->stride);
                for (int64_t ow = hi; ow < OW; ow++)
                  d[ow] = 0.0f;
              }
        }
      if (++kw == aw->k)
        {
          kw = 0;
          if (++kh == ah->k)
            kh = 0, ci++;
        }
    }
}

/* The same rows transposed, [P][r1 - r0], for a window wider than the
 * output (a filter gradient): runs of kernel columns, which are long.
 * @r0 and @r1 are multiples of KW; no lhs dilation. */
static void
im2col_rows_t (const Conv2 *v, const float *x, int64_t n, int64_t g, int64_t r0, int64_t r1, float *col)
{
  const Axis *ah = &v->h, *aw = &v->w;
  int64_t KHW = ah->k * aw->k, KW = aw->k, ld = r1 - r0;
  for (int64_t oh = 0; oh < ah->out; oh++)
    for (int64_t ow = 0; ow < aw->out; ow++)
      {
        float *dst = col + (oh * aw->out + ow) * ld;
        int64_t woff = ow * aw->stride - aw->pad, lo, hi;
        span (aw->in, aw->dil, woff, KW, &lo, &hi);
        for (int64_t r = r0; r < r1; r += KW, dst += KW)
          {
            int64_t ci = r / KHW, kh = r % KHW / KW;
            int64_t ih = oh * ah->stride + kh * ah->dil - ah->pad;
            if (ih < 0 || ih >= ah->in)
              {
                memset (dst, 0, KW * sizeof (float));
                continue;
              }
            const float *src = x + ((n * v->C + g * v->Cg + ci) * ah->in + ih) * aw->in + woff;
            for (int64_t i = 0; i < lo; i++)
              dst[i] = 0.0f;
            copy_run (dst + lo, src + lo * aw->dil, hi - lo, aw->dil);
            for (int64_t i = hi; i < KW; i++)
              dst[i] = 0.0f;
          }
      }
}

typedef struct {
  const Conv2 *v;
  const float *x, *k;
  float       *y;
  float       *part;     /* [G][N][blocks][Og][P] when blocks > 1 */
  int64_t      rows;     /* rows of the matrix per block */
  int64_t      blocks;   /* blocks per group's KC rows */
  int64_t      tile;     /* output rows per task */
  int64_t      tiles;
  gboolean     trans;    /* the matrix is unfolded transposed */
  FbCpuGemmLib lib;      /* for every task's product */
} ColJob;

/* Tasks are (group, batch element, block of rows, tile of output rows):
 * each unfolds its part into a buffer that stays in cache and multiplies it
 * on its own thread. */
static void
im2col_range (gpointer data, int64_t begin, int64_t end)
{
  ColJob *j = data;
  const Conv2 *v = j->v;
  int64_t OW = v->w.out;
  g_autofree float *col = g_new (float, MAX (j->rows * j->tile * OW, 1));
  for (int64_t t = begin; t < end; t++)
    {
      int64_t tl = t % j->tiles, gnb = t / j->tiles;
      int64_t blk = gnb % j->blocks, n = gnb / j->blocks % v->N, g = gnb / j->blocks / v->N;
      int64_t r0 = blk * j->rows, r1 = MIN (v->KC, r0 + j->rows);
      int64_t oh0 = tl * j->tile, oh1 = MIN (v->h.out, oh0 + j->tile), cols = (oh1 - oh0) * OW;
      if (j->trans)
        im2col_rows_t (v, j->x, n, g, r0, r1, col);
      else
        im2col_rows (v, j->x, n, g, r0, r1, oh0, oh1, col);
      float *c = j->blocks == 1 ? j->y + (n * v->O + g * v->Og) * v->P : j->part + gnb * v->Og * v->P;
      _fb_cpu_sgemm_here (j->lib, FALSE, j->trans, v->Og, cols, r1 - r0, j->k + g * v->Og * v->KC + r0, v->KC,
                          col, j->trans ? r1 - r0 : cols, 0.0f, c + oh0 * OW, v->P);
    }
}

/* Sums the blocks' partial products in block order. */
static void
sum_blocks_range (gpointer data, int64_t begin, int64_t end)
{
  ColJob *j = data;
  const Conv2 *v = j->v;
  int64_t sz = v->Og * v->P;
  for (int64_t t = begin; t < end; t++)
    {
      int64_t n = t % v->N, g = t / v->N;
      const float *p = j->part + t * j->blocks * sz;
      float *y = j->y + (n * v->O + g * v->Og) * v->P;
      memcpy (y, p, sz * sizeof (float));
      for (int64_t b = 1; b < j->blocks; b++)
        for (int64_t i = 0; i < sz; i++)
          y[i] += p[b * sz + i];
    }
}

/* im2col + GEMM. The matrix is split into blocks of rows and tiles of
 * columns by the shape alone, and the blocks summed in order, so that the
 * result does not depend on the number of threads. */
static void
conv2_im2col (FbCpuPool *pool, const Conv2 *v, const float *x, const float *k, float *y)
{
  if (v->KC == 0 || v->P == 0 || v->Og == 0)
    {
      memset (y, 0, v->N * v->O * v->P * sizeof (float));
      return;
    }
  ColJob j = { v, x, k, y, NULL, 0, 0, v->h.out, 1, FALSE, FB_CPU_GEMM_OPENBLAS };
  /* Transposed when a kernel row is longer than an output row (then the
   * output is small, and blocks of rows split the long sum); otherwise
   * tiles of output rows keep a task's part in cache, and blocks of rows
   * only when even one output row is too much. */
  j.trans = v->w.k > v->w.out && v->h.ldil == 1 && v->w.ldil == 1;
  int64_t unit = j.trans ? v->w.k : 1, OW = MAX (v->w.out, 1);
  if (!j.trans)
    {
      j.tile = CLAMP (COL_BUDGET / (v->KC * OW), 1, v->h.out);
      j.tiles = (v->h.out + j.tile - 1) / j.tile;
      j.tile = (v->h.out + j.tiles - 1) / j.tiles;        /* even tiles */
    }
  j.rows = CLAMP (COL_BUDGET / (j.tile * OW), 1, v->KC);
  j.blocks = (v->KC + j.rows - 1) / j.rows;
  j.rows = (v->KC + j.blocks - 1) / j.blocks;     /* even blocks */
  j.rows = (j.rows + unit - 1) / unit * unit;
  j.blocks = (v->KC + j.rows - 1) / j.rows;
  int64_t tasks = v->G * v->N * j.blocks * j.tiles;
  j.lib = _fb_cpu_sgemm_library (v->Og, j.tile * OW);
  if (j.blocks > 1)
    j.part = g_new (float, v->G * v->N * j.blocks * v->Og * v->P);
  /* Each task multiplies on its own thread, with BLAS kept to that one. */
  int blas_threads = openblas_get_num_threads ();
  openblas_set_num_threads (1);
  _fb_cpu_pool_parallel_for (pool, tasks, 1, im2col_range, &j);
  openblas_set_num_threads (blas_threads);
  if (j.blocks > 1)
    _fb_cpu_pool_parallel_for (pool, v->G * v->N, 1, sum_blocks_range, &j);
  g_free (j.part);
}

typedef struct {
  const Conv2 *v;
  const float *x, *k;
  float       *y;
} RowJob;

/* y[i] += a * x[i], four lanes at a time where the compiler has vectors;
 * each element sees the same operations either way. */
static inline void
axpy (float *restrict y, const float *restrict x, float a, int64_t n)
{
  int64_t i = 0;
#if defined(__GNUC__)
  typedef float V4 __attribute__ ((vector_size (16)));
  V4 av = { a, a, a, a };
  for (; i + 4 <= n; i += 4)
    {
      V4 xv, yv;
      memcpy (&xv, x + i, sizeof xv);
      memcpy (&yv, y + i, sizeof yv);
      yv += av * xv;
      memcpy (y + i, &yv, sizeof yv);
    }
#endif
  for (; i < n; i++)
    y[i] += a * x[i];
}

/* Direct loops: tasks are (batch, output feature, output row); each sums its
 * taps into the row in a fixed order. */
static void
direct_range (gpointer data, int64_t begin, int64_t end)
{
  RowJob *j = data;
  const Conv2 *v = j->v;
  const Axis *aw = &v->w;
  int64_t OW = aw->out;
  g_autofree float *tmp = aw->ldil != 1 ? g_new (float, MAX (OW, 1)) : NULL;
  /* Per kernel column: the output columns that read inside the input. */
  g_autofree int64_t *span_w = g_new (int64_t, 2 * MAX (aw->k, 1));
  for (int64_t kw = 0; kw < aw->k; kw++)
    axis_span (aw, kw * aw->dil - aw->pad, &span_w[2 * kw], &span_w[2 * kw + 1]);
  for (int64_t t = begin; t < end; t++)
    {
      int64_t oh = t % v->h.out, no = t / v->h.out;
      int64_t n = no / v->O, o = no % v->O, g = o / v->Og;
      float *acc = j->y + no * v->P + oh * OW;
      memset (acc, 0, OW * sizeof (float));
      for (int64_t ci = 0; ci < v->Cg; ci++)
        {
          const float *plane = j->x + (n * v->C + g * v->Cg + ci) * v->h.in * aw->in;
          const float *kr = j->k + (o * v->Cg + ci) * v->h.k * aw->k;
          for (int64_t kh = 0; kh < v->h.k; kh++, kr += aw->k)
            {
              int64_t ih = axis_src (&v->h, oh, kh);
              if (ih < 0)
                continue;
              const float *src = plane + ih * aw->in;
              for (int64_t kw = 0; kw < aw->k; kw++)
                {
                  float kv = kr[kw];
                  if (tmp)
                    {
                      fill_row (aw, tmp, src, kw);
                      axpy (acc, tmp, kv, OW);
                      continue;
                    }
                  int64_t off = kw * aw->dil - aw->pad, lo = span_w[2 * kw], hi = span_w[2 * kw + 1];
                  if (aw->stride == 1)
                    axpy (acc + lo, src + off + lo, kv, hi - lo);
                  else
                    for (int64_t ow = lo; ow < hi; ow++)
                      acc[ow] += kv * src[ow * aw->stride + off];
                }
            }
        }
    }
}

static void
conv2_direct (FbCpuPool *pool, const Conv2 *v, const float *x, const float *k, float *y)
{
  RowJob j = { v, x, k, y };
  int64_t rows = v->N * v->O * v->h.out;
  /* Rows of a few hundred multiply-adds each are worth a task of their own
   * only in groups. */
  int64_t work = MAX (v->Cg * v->h.k * v->w.k * v->w.out, 1);
  _fb_cpu_pool_parallel_for (pool, rows, MAX (1, 4096 / work), direct_range, &j);
}

/* ---------------------------------------------------- general im2col */

typedef struct {
  const Conv  *c;
  const float *inf;
  float       *col;      /* [out_points][C * k_points] for one batch element */
  int64_t      b;
} GenColJob;

static void
general_im2col_range (gpointer data, int64_t begin, int64_t end)
{
  GenColJob *j = data;
  const Conv *c = j->c;
  int64_t KC = c->C * c->k_points;
  for (int64_t p = begin; p < end; p++)
    {
      int64_t oi[MAX_RANK], ki[MAX_RANK];
      unravel (p, c->out_sz, c->ns, oi);
      float *row = j->col + p * KC;
      for (int64_t kp = 0; kp < c->k_points; kp++)
        {
          unravel (kp, c->k_sz, c->ns, ki);
          int64_t ipos = conv_input (c, oi, ki);
          for (int64_t ci = 0; ci < c->C; ci++)
            row[kp * c->C + ci] = ipos < 0 ? 0.0f : j->inf[j->b * c->i_b + ipos + ci * c->i_f];
        }
    }
}

/* im2col + GEMM for three or more spatial dimensions: one feature group and
 * one batch group. */
static void
general_im2col (FbCpuPool *pool, const Conv *c, const float *inf, const float *kf, FbLiteral *out)
{
  int64_t KC = c->C * c->k_points, P = c->out_points;
  g_autofree float *w = g_new (float, MAX (KC * c->O, 1));      /* [KC][O] */
  for (int64_t kp = 0; kp < c->k_points; kp++)
    {
      int64_t ki[MAX_RANK], kpos = 0;
      unravel (kp, c->k_sz, c->ns, ki);
      for (int s = 0; s < c->ns; s++)
        kpos += ki[s] * c->k_s[s];
      for (int64_t ci = 0; ci < c->C; ci++)
        for (int64_t o = 0; o < c->O; o++)
          w[(kp * c->C + ci) * c->O + o] = kf[kpos + ci * c->k_i + o * c->k_o];
    }
  g_autofree float *col = g_new (float, MAX (P * KC, 1));
  g_autofree float *res = g_new (float, MAX (P * c->O, 1));
  for (int64_t b = 0; b < c->N; b++)
    {
      GenColJob j = { c, inf, col, b };
      _fb_cpu_pool_parallel_for (pool, P, 16, general_im2col_range, &j);
      _fb_cpu_sgemm (pool, FALSE, FALSE, P, c->O, KC, col, KC, w, c->O, 0.0f, res, c->O);
      for (int64_t p = 0; p < P; p++)
        {
          int64_t oi[MAX_RANK], opos = b * c->o_b;
          unravel (p, c->out_sz, c->ns, oi);
          for (int s = 0; s < c->ns; s++)
            opos += oi[s] * c->o_s[s];
          for (int64_t o = 0; o < c->O; o++)
            store (out, opos + o * c->o_f, res[p * c->O + o]);
        }
    }
}

static gboolean
general_im2col_applies (const Conv *c, FbElemType t)
{
  return c->G == 1 && c->BG == 1 && (t == FB_F32 || t == FB_F16 || t == FB_BF16);
}

/* --------------------------------------------------------- dispatch */

typedef enum { METHOD_DIRECT = 1, METHOD_IM2COL = 2, METHOD_ONEDNN = 3 } Method;

/* @v as oneDNN's forward convolution sees it; FALSE when it has input
 * dilation, which oneDNN's forward convolution lacks. */
static gboolean
conv2_geom (const Conv2 *v, FbCpuConvGeom *g)
{
  const Axis *ax[2] = { &v->h, &v->w };
  *g = (FbCpuConvGeom) { v->N, v->C, v->O, v->G, v->h.in, v->w.in, v->h.k, v->w.k, v->h.out, v->w.out,
                         { 0 }, { 0 }, { 0 }, { 0 } };
  int first = 2 - v->c->ns;     /* missing dimensions are the leading ones */
  for (int a = 0; a < 2; a++)
    {
      const Axis *x = ax[a];
      if (x->ldil != 1)
        return FALSE;
      g->stride[a] = x->stride;
      g->dil[a] = x->dil;
      g->pad_l[a] = x->pad;
      g->pad_r[a] = a < first ? 0 : v->c->w[a - first].pad_hi;
    }
  return TRUE;
}

/* Whether oneDNN can run @c as a 2-D convolution with a fast kernel. */
static gboolean
onednn_applies (const Conv *c, FbElemType t)
{
  if (!conv2_applies (c, t))
    return FALSE;
  Conv2 v;
  conv2_init (&v, c);
  FbCpuConvGeom g;
  return conv2_geom (&v, &g) && _fb_cpu_onednn_conv_applies (&g);
}

/* Runs @c by @m (which must apply to it). */
static void
conv_run (FbCpuPool *pool, const Conv *c, Method m, const FbLiteral *in, const FbLiteral *k, FbLiteral *out)
{
  if (conv2_applies (c, out->shape->type))
    {
      Conv2 v;
      conv2_init (&v, c);
      Canon cn;
      canon_init (&cn, &v, in, k);
      gboolean direct;
      float *y = conv2_out (&v, out, &direct);
      FbCpuConvGeom g;
      if (m == METHOD_IM2COL)
        conv2_im2col (pool, &v, cn.x, cn.k, y);
      else if (m != METHOD_ONEDNN || !conv2_geom (&v, &g) || !_fb_cpu_onednn_conv (pool, &g, cn.x, cn.k, y))
        conv2_direct (pool, &v, cn.x, cn.k, y);    /* also where oneDNN cannot */
      conv2_finish (&v, y, direct, out);
      canon_clear (&cn);
      return;
    }
  g_autofree float *own_in = NULL, *own_k = NULL;
  const float *inf = f32_data (in, &own_in);
  const float *kf = f32_data (k, &own_k);
  if (m == METHOD_IM2COL)
    general_im2col (pool, c, inf, kf, out);
  else
    conv_general (pool, c, inf, kf, out);
}

/* Whether both methods exist for @c, so that there is a choice to make. */
static gboolean
has_choice (const Conv *c, FbElemType t)
{
  return conv2_applies (c, t) || general_im2col_applies (c, t);
}

/* Per shape: the method that measured faster. */
static GHashTable *conv_choice;
static GMutex conv_lock;
static int conv_forced;

void
_fb_cpu_conv_force (const char *how)
{
  int m = g_strcmp0 (how, "im2col") == 0   ? METHOD_IM2COL
          : g_strcmp0 (how, "direct") == 0 ? METHOD_DIRECT
          : g_strcmp0 (how, "onednn") == 0 ? METHOD_ONEDNN
                                           : 0;
  g_atomic_int_set (&conv_forced, m);
}

static char *
conv_key (const FbInstr *instr)
{
  GString *k = g_string_new (NULL);
  for (int i = 0; i < instr->n_operands; i++)
    fb_shape_print (k, instr->operands[i]->shape, FALSE);
  fb_shape_print (k, instr->shape, FALSE);
  const FbAttr *w = fb_instr_get_attr (instr, FB_A_WINDOW);
  for (int s = 0; w && w->kind == FB_AV_WINDOW && s < w->v.window.n; s++)
    {
      const FbWindowDim *d = &w->v.window.d[s];
      g_string_append_printf (k, "|%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
                              ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%d", d->size, d->stride, d->pad_lo, d->pad_hi,
                              d->lhs_dilate, d->rhs_dilate, d->reversal);
    }
  const FbAttr *dl = fb_instr_get_attr (instr, FB_A_DIM_LABELS);
  if (dl && dl->kind == FB_AV_DIM_LABELS)
    {
      const FbConvDims *d = &dl->v.conv;
      g_string_append_printf (k, "|%" G_GINT64_FORMAT "%" G_GINT64_FORMAT "%" G_GINT64_FORMAT "%" G_GINT64_FORMAT
                              "%" G_GINT64_FORMAT "%" G_GINT64_FORMAT, d->in_batch, d->in_feature, d->k_in, d->k_out,
                              d->out_batch, d->out_feature);
      for (int s = 0; s < d->n_spatial; s++)
        g_string_append_printf (k, ",%" G_GINT64_FORMAT "%" G_GINT64_FORMAT "%" G_GINT64_FORMAT,
                                d->in_spatial[s], d->k_spatial[s], d->out_spatial[s]);
    }
  g_string_append_printf (k, "|g%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT,
                          fb_instr_int (instr, FB_A_FEATURE_GROUP_COUNT, 1),
                          fb_instr_int (instr, FB_A_BATCH_GROUP_COUNT, 1));
  return g_string_free (k, FALSE);
}

/* The method for @instr: forced, measured, or direct when unmeasured. */
static Method
conv_method (const FbInstr *instr, const Conv *c, FbElemType t, gboolean *known)
{
  *known = TRUE;
  if (!has_choice (c, t))
    return METHOD_DIRECT;
  static gsize env_once;
  if (g_once_init_enter (&env_once))
    {
      /* FUSEBOX_CONV=direct|im2col|onednn: every convolution by that method
       * where it applies, for comparing them. */
      const char *env = g_getenv ("FUSEBOX_CONV");
      if (env != NULL && *env != '\0')
        {
          _fb_cpu_conv_force (env);
          if (g_atomic_int_get (&conv_forced) == 0)
            g_printerr ("fusebox: FUSEBOX_CONV=%s is not direct, im2col or onednn; measuring instead\n", env);
        }
      g_once_init_leave (&env_once, 1);
    }
  int forced = g_atomic_int_get (&conv_forced);
  if (forced)
    return forced;
  g_autofree char *key = conv_key (instr);
  g_mutex_lock (&conv_lock);
  gpointer v = conv_choice ? g_hash_table_lookup (conv_choice, key) : NULL;
  g_mutex_unlock (&conv_lock);
  *known = v != NULL;
  return v ? GPOINTER_TO_INT (v) : METHOD_DIRECT;
}

void
_fb_cpu_conv_forget (void)
{
  g_mutex_lock (&conv_lock);
  g_clear_pointer (&conv_choice, g_hash_table_unref);
  g_mutex_unlock (&conv_lock);
}

static const char *const method_names[] = { NULL, "direct", "im2col", "onednn" };

/* Bump when a method changes enough that the timings must be taken again. */
#define METHOD_CACHE_VERSION "fusebox-conv-method-2"

/* The file in @cache_dir that keeps the method for @conv on this machine,
 * or NULL without a disk cache. Not per thread count: the methods round
 * differently, and the result must not depend on --threads. */
static char *
disk_entry (const char *cache_dir, const FbInstr *conv)
{
  if (cache_dir == NULL)
    return NULL;
  g_autofree char *key = conv_key (conv);
  g_autofree char *full = g_strdup_printf ("%s|%s|%s|%s|%s|onednn %d", METHOD_CACHE_VERSION, key,
                                           fb_cpu_host_name (), fb_cpu_host_features (), _fb_cpu_gemm_library (),
                                           _fb_cpu_have_onednn ());
  g_autofree char *hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, full, -1);
  g_autofree char *name = g_strdup_printf ("conv-%s.method", hash);
  return g_build_filename (cache_dir, name, NULL);
}

/* The method an entry names, or 0 when it is missing, unreadable or names
 * none that applies (then it is measured again and rewritten). */
static Method
disk_read (const char *path, const Conv *c, FbElemType t)
{
  g_autofree char *text = NULL;
  if (path == NULL || !g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  g_strstrip (text);
  for (int m = METHOD_DIRECT; m <= METHOD_ONEDNN; m++)
    if (g_str_equal (text, method_names[m]))
      return m == METHOD_ONEDNN && !onednn_applies (c, t) ? 0 : m;
  return 0;
}

gboolean
_fb_cpu_conv_choose (FbCpuPool *pool, const char *cache_dir, const FbInstr *conv, const char **how,
                     GError **error)
{
  Conv c;
  if (conv->n_operands != 2 || !fb_shape_is_array (conv->shape)
      || !conv_init (&c, conv, conv->operands[0]->shape, conv->operands[1]->shape, conv->shape, error))
    {
      if (error && *error == NULL)
        _fb_cpu_error (error, conv, "convolution takes two array operands");
      return FALSE;
    }
  if (fb_elem_type_kind (conv->shape->type) != FB_KIND_FLOAT && fb_elem_type_kind (conv->shape->type) != FB_KIND_SINT)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "%%%s: convolution of %s is not supported by the CPU backend",
                   conv->name, fb_elem_type_name (conv->shape->type));
      return FALSE;
    }
  gboolean known;
  Method m = conv_method (conv, &c, conv->shape->type, &known);
  g_autofree char *entry = known ? NULL : disk_entry (cache_dir, conv);
  Method from_disk = known ? 0 : disk_read (entry, &c, conv->shape->type);
  if (from_disk)
    m = from_disk;
  if (!known && !from_disk)
    {
      /* Time each method on the real shapes, the fastest of three runs
       * after an untimed one, taking turns so that a slow moment of the
       * machine does not decide: direct, im2col, and oneDNN where it has a
       * fast kernel. */
      FbArena *arena = fb_arena_new ();
      FbLiteral *in = fb_literal_new (arena, conv->operands[0]->shape);
      FbLiteral *k = fb_literal_new (arena, conv->operands[1]->shape);
      FbLiteral *out = fb_literal_new (arena, conv->shape);
      const Method methods[] = { METHOD_DIRECT, METHOD_IM2COL, METHOD_ONEDNN };
      int n_methods = onednn_applies (&c, conv->shape->type) ? 3 : 2;
      double t[3] = { G_MAXDOUBLE, G_MAXDOUBLE, G_MAXDOUBLE };
      for (int rep = 0; rep < 4; rep++)
        for (int i = 0; i < n_methods; i++)
          {
            gint64 t0 = g_get_monotonic_time ();
            conv_run (pool, &c, methods[i], in, k, out);
            if (rep > 0)
              t[i] = MIN (t[i], (double) (g_get_monotonic_time () - t0));
          }
      fb_arena_free (arena);
      m = METHOD_DIRECT;
      for (int i = 1; i < n_methods; i++)
        if (t[i] < t[m - 1])
          m = methods[i];
      if (entry != NULL)
        {
          /* Another process may write the same entry: each write replaces
           * the file whole. */
          g_autofree char *text = g_strdup_printf ("%s\n", method_names[m]);
          if (!g_file_set_contents (entry, text, -1, NULL))
            g_debug ("could not keep the convolution method in %s", entry);
        }
    }
  if (!known)
    {
      g_autofree char *key = conv_key (conv);
      g_mutex_lock (&conv_lock);
      if (conv_choice == NULL)
        conv_choice = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_replace (conv_choice, g_steal_pointer (&key), GINT_TO_POINTER (m));
      g_mutex_unlock (&conv_lock);
    }
  *how = method_names[m];
  return TRUE;
}

gboolean
_fb_cpu_conv_onednn_applies (const FbInstr *conv)
{
  Conv c;
  return conv->n_operands == 2 && fb_shape_is_array (conv->shape)
         && conv_init (&c, conv, conv->operands[0]->shape, conv->operands[1]->shape, conv->shape, NULL)
         && onednn_applies (&c, conv->shape->type);
}

gboolean
_fb_cpu_convolution (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  Conv c;
  if (!conv_init (&c, instr, ops[0]->shape, ops[1]->shape, out->shape, error))
    return FALSE;
  gboolean known;
  Method m = conv_method (instr, &c, out->shape->type, &known);
  conv_run (rt->pool, &c, m, ops[0], ops[1], out);
  return TRUE;
}
