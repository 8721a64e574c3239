/* SPDX-License-Identifier: MIT
 *
 * The interpreter's contractions and linear algebra: dot with general
 * dimension numbers, convolution (any dim_labels, strides, padding, both
 * dilations, window reversal, feature and batch groups), the three batch
 * norms, cholesky, triangular-solve and fft.
 *
 * Dot packs both operands into [batch][rows][contracted] and
 * [batch][contracted][cols] buffers and multiplies them with an i,k,j loop
 * over contiguous rows, blocked so that a tile of the right operand stays in
 * cache. Accumulation: f32 and narrower floats in f32, f64 in f64, integers
 * in 64 bits and wrapped to the output type (the same result as wrapping at
 * every step), complex in double precision. Convolution accumulates the same
 * way. Everything else computes in double precision.
 */
#include "fb-interp-private.h"

#include <math.h>
#include <string.h>


/* ------------------------------------------------------------ helpers */

static gboolean
check_out_array (const FbInstr *instr, GError **error)
{
  if (instr->shape == NULL || !fb_shape_is_array (instr->shape) || instr->shape->rank > FB_INTERP_MAX_RANK)
    {
      _fb_interp_error (error, instr, "result shape must be an array of rank at most %d", FB_INTERP_MAX_RANK);
      return FALSE;
    }
  return TRUE;
}

/* Complex element @i as (re, im); real types give im = 0. */
static void
get_complex (const FbLiteral *lit, int64_t i, double *re, double *im)
{
  if (lit->shape->type == FB_C64)
    {
      float v[2];
      memcpy (v, lit->data + i * 8, 8);
      *re = v[0];
      *im = v[1];
    }
  else if (lit->shape->type == FB_C128)
    {
      double v[2];
      memcpy (v, lit->data + i * 16, 16);
      *re = v[0];
      *im = v[1];
    }
  else
    {
      *re = fb_literal_get_f64 (lit, i);
      *im = 0;
    }
}

static void
set_complex (FbLiteral *lit, int64_t i, double re, double im)
{
  if (lit->shape->type == FB_C64)
    {
      float v[2] = { (float) re, (float) im };
      memcpy (lit->data + i * 8, v, 8);
    }
  else if (lit->shape->type == FB_C128)
    {
      double v[2] = { re, im };
      memcpy (lit->data + i * 16, v, 16);
    }
  else
    fb_literal_set_f64 (lit, i, re);
}

/* A boolean attribute that the IR keeps verbatim (`lower=true`). */
static gboolean
raw_bool (const FbInstr *instr, const char *name, gboolean fallback)
{
  const FbAttr *a = fb_instr_get_raw_attr (instr, name);
  if (a == NULL)
    return fallback;
  if (a->kind == FB_AV_BOOL || a->kind == FB_AV_INT)
    return a->v.i != 0;
  if ((a->kind == FB_AV_RAW || a->kind == FB_AV_IDENT || a->kind == FB_AV_STRING) && a->v.s)
    return g_ascii_strcasecmp (a->v.s, "true") == 0 || strcmp (a->v.s, "1") == 0;
  return fallback;
}

static const char *
raw_text (const FbInstr *instr, const char *name)
{
  const FbAttr *a = fb_instr_get_raw_attr (instr, name);
  if (a && (a->kind == FB_AV_RAW || a->kind == FB_AV_IDENT || a->kind == FB_AV_STRING))
    return a->v.s;
  return NULL;
}

/* How a contraction accumulates, chosen from the result type. */
typedef enum { ACC_F32, ACC_F64, ACC_INT, ACC_COMPLEX } AccKind;

static gboolean
acc_kind_for (const FbInstr *instr, const FbLiteral *a, const FbLiteral *b, AccKind *kind,
              GError **error)
{
  FbElemType t = instr->shape->type;
  switch (fb_elem_type_kind (t))
    {
    case FB_KIND_FLOAT:
      *kind = (t == FB_F64 || a->shape->type == FB_F64 || b->shape->type == FB_F64) ? ACC_F64 : ACC_F32;
      return TRUE;
    case FB_KIND_SINT:
    case FB_KIND_UINT:
    case FB_KIND_PRED:
      *kind = ACC_INT;
      return TRUE;
    case FB_KIND_COMPLEX:
      *kind = ACC_COMPLEX;
      return TRUE;
    default:
      _fb_interp_error (error, instr, "cannot compute a %s result", fb_elem_type_name (t));
      return FALSE;
    }
}

/* --------------------------------------------------------------- dot */

/* table[j] = offset of the j-th combination (row-major) of dims @sel of @shape. */
static int64_t *
offset_table (const FbShape *shape, const int64_t *strides, int n_sel, const int64_t *sel,
              int64_t *count)
{
  int64_t n = 1;
  for (int i = 0; i < n_sel; i++)
    n *= shape->dims[sel[i]];
  int64_t *table = g_new (int64_t, MAX (n, 1));
  int64_t idx[FB_INTERP_MAX_RANK] = { 0 };
  for (int64_t j = 0; j < n; j++)
    {
      int64_t off = 0;
      for (int i = 0; i < n_sel; i++)
        off += idx[i] * strides[sel[i]];
      table[j] = off;
      for (int i = n_sel - 1; i >= 0; i--)
        {
          if (++idx[i] < shape->dims[sel[i]])
            break;
          idx[i] = 0;
        }
    }
  *count = n;
  return table;
}

typedef struct {
  int64_t B, M, K, N;
  int64_t *lb, *lm, *lk;     /* offset tables into lhs: batch, rows, contracted */
  int64_t *rb, *rk, *rn;     /* into rhs: batch, contracted, cols */
} DotPlan;

static void
dot_plan_clear (DotPlan *p)
{
  g_free (p->lb); g_free (p->lm); g_free (p->lk);
  g_free (p->rb); g_free (p->rk); g_free (p->rn);
}

static gboolean
valid_dim_list (const FbInstr *instr, const FbDims *d, int rank, const char *what, gboolean *used,
                GError **error)
{
  for (int i = 0; d && i < d->n; i++)
    {
      if (d->v[i] < 0 || d->v[i] >= rank || used[d->v[i]])
        {
          _fb_interp_error (error, instr, "%s names dimension %" G_GINT64_FORMAT
                            " which is out of range or repeated", what, d->v[i]);
          return FALSE;
        }
      used[d->v[i]] = TRUE;
    }
  return TRUE;
}

static gboolean
dot_plan_init (DotPlan *p, const FbInstr *instr, const FbShape *ls, const FbShape *rs, GError **error)
{
  const FbDims *lb = fb_instr_dims (instr, FB_A_LHS_BATCH_DIMS);
  const FbDims *rb = fb_instr_dims (instr, FB_A_RHS_BATCH_DIMS);
  const FbDims *lc = fb_instr_dims (instr, FB_A_LHS_CONTRACTING_DIMS);
  const FbDims *rc = fb_instr_dims (instr, FB_A_RHS_CONTRACTING_DIMS);
  int nlb = lb ? lb->n : 0, nrb = rb ? rb->n : 0, nlc = lc ? lc->n : 0, nrc = rc ? rc->n : 0;
  gboolean lused[FB_INTERP_MAX_RANK] = { 0 }, rused[FB_INTERP_MAX_RANK] = { 0 };

  if (nlb != nrb || nlc != nrc)
    {
      _fb_interp_error (error, instr, "lhs and rhs must have as many batch (%d vs %d) and "
                        "contracting (%d vs %d) dimensions", nlb, nrb, nlc, nrc);
      return FALSE;
    }
  if (!valid_dim_list (instr, lb, ls->rank, "lhs_batch_dims", lused, error)
      || !valid_dim_list (instr, lc, ls->rank, "lhs_contracting_dims", lused, error)
      || !valid_dim_list (instr, rb, rs->rank, "rhs_batch_dims", rused, error)
      || !valid_dim_list (instr, rc, rs->rank, "rhs_contracting_dims", rused, error))
    return FALSE;
  for (int i = 0; i < nlb; i++)
    if (ls->dims[lb->v[i]] != rs->dims[rb->v[i]])
      {
        _fb_interp_error (error, instr, "batch dimension %d has size %" G_GINT64_FORMAT
                          " in lhs but %" G_GINT64_FORMAT " in rhs", i, ls->dims[lb->v[i]],
                          rs->dims[rb->v[i]]);
        return FALSE;
      }
  for (int i = 0; i < nlc; i++)
    if (ls->dims[lc->v[i]] != rs->dims[rc->v[i]])
      {
        _fb_interp_error (error, instr, "contracting dimension %d has size %" G_GINT64_FORMAT
                          " in lhs but %" G_GINT64_FORMAT " in rhs", i, ls->dims[lc->v[i]],
                          rs->dims[rc->v[i]]);
        return FALSE;
      }

  int64_t lfree[FB_INTERP_MAX_RANK], rfree[FB_INTERP_MAX_RANK];
  int nlf = 0, nrf = 0;
  for (int d = 0; d < ls->rank; d++)
    if (!lused[d])
      lfree[nlf++] = d;
  for (int d = 0; d < rs->rank; d++)
    if (!rused[d])
      rfree[nrf++] = d;

  int64_t lst[FB_INTERP_MAX_RANK], rst[FB_INTERP_MAX_RANK], n;
  _fb_interp_strides (ls, lst);
  _fb_interp_strides (rs, rst);
  p->lb = offset_table (ls, lst, nlb, lb ? lb->v : NULL, &p->B);
  p->lm = offset_table (ls, lst, nlf, lfree, &p->M);
  p->lk = offset_table (ls, lst, nlc, lc ? lc->v : NULL, &p->K);
  p->rb = offset_table (rs, rst, nrb, rb ? rb->v : NULL, &n);
  p->rk = offset_table (rs, rst, nrc, rc ? rc->v : NULL, &n);
  p->rn = offset_table (rs, rst, nrf, rfree, &p->N);

  /* The result is batch dims, lhs free dims, rhs free dims. */
  const FbShape *os = instr->shape;
  gboolean ok = os->rank == nlb + nlf + nrf;
  for (int i = 0; ok && i < nlb; i++)
    ok = os->dims[i] == ls->dims[lb->v[i]];
  for (int i = 0; ok && i < nlf; i++)
    ok = os->dims[nlb + i] == ls->dims[lfree[i]];
  for (int i = 0; ok && i < nrf; i++)
    ok = os->dims[nlb + nlf + i] == rs->dims[rfree[i]];
  if (!ok)
    {
      g_autofree char *want = fb_shape_to_string (os);
      _fb_interp_error (error, instr, "result shape %s does not match the operands' batch and "
                        "free dimensions", want);
      return FALSE;
    }
  return TRUE;
}

/* Packs lhs as [B][M][K] or rhs as [B][K][N] (@rows/@cols are the tables). */
#define DEFINE_PACK(name, T, NATIVE)                                                     \
  static T *                                                                             \
  name (const FbLiteral *lit, const int64_t *bt, int64_t B, const int64_t *rt, int64_t R, \
        const int64_t *ct, int64_t C)                                                    \
  {                                                                                      \
    T *out = g_new (T, MAX (B * R * C, 1));                                              \
    T *o = out;                                                                          \
    if (lit->shape->type == NATIVE)                                                      \
      {                                                                                  \
        const T *src = (const T *) lit->data;                                            \
        for (int64_t b = 0; b < B; b++)                                                  \
          for (int64_t r = 0; r < R; r++)                                                \
            {                                                                            \
              const T *s = src + bt[b] + rt[r];                                          \
              for (int64_t c = 0; c < C; c++)                                            \
                *o++ = s[ct[c]];                                                         \
            }                                                                            \
      }                                                                                  \
    else                                                                                 \
      for (int64_t b = 0; b < B; b++)                                                    \
        for (int64_t r = 0; r < R; r++)                                                  \
          for (int64_t c = 0; c < C; c++)                                                \
            *o++ = (T) fb_literal_get_f64 (lit, bt[b] + rt[r] + ct[c]);                  \
    return out;                                                                          \
  }

DEFINE_PACK (pack_f32, float, FB_F32)
DEFINE_PACK (pack_f64, double, FB_F64)

static int64_t *
pack_int (const FbLiteral *lit, const int64_t *bt, int64_t B, const int64_t *rt, int64_t R,
          const int64_t *ct, int64_t C)
{
  int64_t *out = g_new (int64_t, MAX (B * R * C, 1));
  int64_t *o = out;
  for (int64_t b = 0; b < B; b++)
    for (int64_t r = 0; r < R; r++)
      for (int64_t c = 0; c < C; c++)
        *o++ = fb_literal_get_s64 (lit, bt[b] + rt[r] + ct[c]);
  return out;
}

/* C[M][N] = A[M][K] * B[K][N]. Each C element sums over k in increasing
 * order; the blocking only decides what stays in cache. */
typedef float v4f __attribute__ ((vector_size (16)));

static void
gemm_f32 (int64_t M, int64_t N, int64_t K, const float *restrict A, const float *restrict Bm,
          float *restrict C)
{
  const int64_t NB = 512, KB = 128;
  memset (C, 0, sizeof (float) * M * N);
  for (int64_t jb = 0; jb < N; jb += NB)
    {
      int64_t jw = MIN (NB, N - jb);
      for (int64_t kb = 0; kb < K; kb += KB)
        {
          int64_t ke = MIN (K, kb + KB);
          for (int64_t i = 0; i < M; i++)
            {
              float *restrict c = C + i * N + jb;
              for (int64_t k = kb; k < ke; k++)
                {
                  float a = A[i * K + k];
                  const float *restrict b = Bm + k * N + jb;
                  v4f av = { a, a, a, a };
                  int64_t j = 0;
                  for (; j + 8 <= jw; j += 8)
                    {
                      v4f c0, c1, b0, b1;
                      memcpy (&c0, c + j, 16);
                      memcpy (&c1, c + j + 4, 16);
                      memcpy (&b0, b + j, 16);
                      memcpy (&b1, b + j + 4, 16);
                      c0 += av * b0;
                      c1 += av * b1;
                      memcpy (c + j, &c0, 16);
                      memcpy (c + j + 4, &c1, 16);
                    }
                  for (; j < jw; j++)
                    c[j] += a * b[j];
                }
            }
        }
    }
}

#define DEFINE_GEMM(name, T)                                                              \
  static void                                                                             \
  name (int64_t M, int64_t N, int64_t K, const T *restrict A, const T *restrict Bm,       \
        T *restrict C)                                                                    \
  {                                                                                       \
    const int64_t NB = 256, KB = 128;                                                     \
    memset (C, 0, sizeof (T) * M * N);                                                    \
    for (int64_t jb = 0; jb < N; jb += NB)                                                \
      {                                                                                   \
        int64_t je = MIN (N, jb + NB);                                                    \
        for (int64_t kb = 0; kb < K; kb += KB)                                            \
          {                                                                               \
            int64_t ke = MIN (K, kb + KB);                                                \
            for (int64_t i = 0; i < M; i++)                                               \
              for (int64_t k = kb; k < ke; k++)                                           \
                {                                                                         \
                  T a = A[i * K + k];                                                     \
                  const T *restrict b = Bm + k * N;                                       \
                  T *restrict c = C + i * N;                                              \
                  for (int64_t j = jb; j < je; j++)                                       \
                    c[j] += a * b[j];                                                     \
                }                                                                         \
          }                                                                               \
      }                                                                                   \
  }

DEFINE_GEMM (gemm_f64, double)

/* Integers wrap; do the arithmetic unsigned so overflow is defined. */
static void
gemm_int (int64_t M, int64_t N, int64_t K, const int64_t *A, const int64_t *Bm, int64_t *C)
{
  uint64_t *c = (uint64_t *) C;
  memset (C, 0, sizeof (int64_t) * M * N);
  for (int64_t i = 0; i < M; i++)
    for (int64_t k = 0; k < K; k++)
      {
        uint64_t a = (uint64_t) A[i * K + k];
        const int64_t *b = Bm + k * N;
        for (int64_t j = 0; j < N; j++)
          c[i * N + j] += a * (uint64_t) b[j];
      }
}

static void
dot_complex (const DotPlan *p, const FbLiteral *lhs, const FbLiteral *rhs, FbLiteral *out)
{
  int64_t o = 0;
  for (int64_t b = 0; b < p->B; b++)
    for (int64_t m = 0; m < p->M; m++)
      for (int64_t n = 0; n < p->N; n++, o++)
        {
          double sr = 0, si = 0;
          for (int64_t k = 0; k < p->K; k++)
            {
              double ar, ai, br, bi;
              get_complex (lhs, p->lb[b] + p->lm[m] + p->lk[k], &ar, &ai);
              get_complex (rhs, p->rb[b] + p->rk[k] + p->rn[n], &br, &bi);
              sr += ar * br - ai * bi;
              si += ar * bi + ai * br;
            }
          set_complex (out, o, sr, si);
        }
}

gboolean
_fb_interp_dot (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                GError **error)
{
  const FbLiteral *lhs = ops[0], *rhs = ops[1];
  if (!_fb_interp_check_array (instr, lhs, "lhs", error) || !_fb_interp_check_array (instr, rhs, "rhs", error)
      || !check_out_array (instr, error))
    return FALSE;

  AccKind kind;
  if (!acc_kind_for (instr, lhs, rhs, &kind, error))
    return FALSE;

  DotPlan p = { 0 };
  if (!dot_plan_init (&p, instr, lhs->shape, rhs->shape, error))
    {
      dot_plan_clear (&p);
      return FALSE;
    }

  FbLiteral *res = fb_literal_new (ctx->arena, instr->shape);
  int64_t MN = p.M * p.N;
  switch (kind)
    {
    case ACC_F32:
      {
        g_autofree float *A = pack_f32 (lhs, p.lb, p.B, p.lm, p.M, p.lk, p.K);
        g_autofree float *Bm = pack_f32 (rhs, p.rb, p.B, p.rk, p.K, p.rn, p.N);
        float *C = instr->shape->type == FB_F32 ? (float *) res->data : g_new (float, MAX (p.B * MN, 1));
        for (int64_t b = 0; b < p.B; b++)
          gemm_f32 (p.M, p.N, p.K, A + b * p.M * p.K, Bm + b * p.K * p.N, C + b * MN);
        if (instr->shape->type != FB_F32)
          {
            for (int64_t i = 0; i < p.B * MN; i++)
              fb_literal_set_f64 (res, i, C[i]);
            g_free (C);
          }
        break;
      }
    case ACC_F64:
      {
        g_autofree double *A = pack_f64 (lhs, p.lb, p.B, p.lm, p.M, p.lk, p.K);
        g_autofree double *Bm = pack_f64 (rhs, p.rb, p.B, p.rk, p.K, p.rn, p.N);
        double *C = instr->shape->type == FB_F64 ? (double *) res->data : g_new (double, MAX (p.B * MN, 1));
        for (int64_t b = 0; b < p.B; b++)
          gemm_f64 (p.M, p.N, p.K, A + b * p.M * p.K, Bm + b * p.K * p.N, C + b * MN);
        if (instr->shape->type != FB_F64)
          {
            for (int64_t i = 0; i < p.B * MN; i++)
              fb_literal_set_f64 (res, i, C[i]);
            g_free (C);
          }
        break;
      }
    case ACC_INT:
      {
        g_autofree int64_t *A = pack_int (lhs, p.lb, p.B, p.lm, p.M, p.lk, p.K);
        g_autofree int64_t *Bm = pack_int (rhs, p.rb, p.B, p.rk, p.K, p.rn, p.N);
        g_autofree int64_t *C = g_new (int64_t, MAX (p.B * MN, 1));
        for (int64_t b = 0; b < p.B; b++)
          gemm_int (p.M, p.N, p.K, A + b * p.M * p.K, Bm + b * p.K * p.N, C + b * MN);
        for (int64_t i = 0; i < p.B * MN; i++)
          fb_literal_set_s64 (res, i, C[i]);
        break;
      }
    case ACC_COMPLEX:
      dot_complex (&p, lhs, rhs, res);
      break;
    }
  dot_plan_clear (&p);
  *out = res;
  return TRUE;
}

/* ------------------------------------------------------- convolution */

typedef struct {
  FbConvDims cd;
  int64_t    in_spatial[FB_INTERP_MAX_RANK], k_spatial[FB_INTERP_MAX_RANK], out_spatial[FB_INTERP_MAX_RANK];
  int64_t    default_spatial[FB_INTERP_MAX_RANK];   /* dimension numbers when dim_labels is absent */
  FbWindowDim win[FB_INTERP_MAX_RANK];
  int64_t    G, BG;              /* feature and batch group counts */
  int64_t    N_out, kI, kO;
} ConvPlan;

static gboolean
conv_plan_init (ConvPlan *p, const FbInstr *instr, const FbShape *in, const FbShape *k,
                GError **error)
{
  const FbAttr *labels = fb_instr_get_attr (instr, FB_A_DIM_LABELS);
  const FbShape *os = instr->shape;
  if (labels && labels->kind == FB_AV_DIM_LABELS)
    p->cd = labels->v.conv;
  else
    {
      /* XLA's default numbering: batch 0, feature 1, spatial 2.. (kernel: out 0, in 1). */
      p->cd.n_spatial = in->rank - 2;
      p->cd.in_batch = 0; p->cd.in_feature = 1;
      p->cd.k_out = 0; p->cd.k_in = 1;
      p->cd.out_batch = 0; p->cd.out_feature = 1;
      p->cd.in_spatial = p->cd.k_spatial = p->cd.out_spatial = p->default_spatial;
      for (int s = 0; s < MAX (p->cd.n_spatial, 0) && s < FB_INTERP_MAX_RANK; s++)
        p->default_spatial[s] = s + 2;
    }
  int S = p->cd.n_spatial;
  if (S < 0 || S + 2 > FB_INTERP_MAX_RANK || in->rank != S + 2 || k->rank != S + 2 || os->rank != S + 2)
    {
      _fb_interp_error (error, instr, "input, kernel and result must all have rank %d "
                        "(2 plus %d spatial dimensions)", S + 2, S);
      return FALSE;
    }
  int64_t all[3][FB_INTERP_MAX_RANK];
  for (int s = 0; s < S; s++)
    {
      all[0][s] = p->cd.in_spatial[s];
      all[1][s] = p->cd.k_spatial[s];
      all[2][s] = p->cd.out_spatial[s];
    }
  all[0][S] = p->cd.in_batch;   all[0][S + 1] = p->cd.in_feature;
  all[1][S] = p->cd.k_in;       all[1][S + 1] = p->cd.k_out;
  all[2][S] = p->cd.out_batch;  all[2][S + 1] = p->cd.out_feature;
  for (int w = 0; w < 3; w++)
    {
      gboolean used[FB_INTERP_MAX_RANK] = { 0 };
      for (int i = 0; i < S + 2; i++)
        {
          if (all[w][i] < 0 || all[w][i] >= S + 2 || used[all[w][i]])
            {
              _fb_interp_error (error, instr, "dim_labels do not name each dimension once");
              return FALSE;
            }
          used[all[w][i]] = TRUE;
        }
    }
  for (int s = 0; s < S; s++)
    {
      p->in_spatial[s] = in->dims[p->cd.in_spatial[s]];
      p->k_spatial[s] = k->dims[p->cd.k_spatial[s]];
      p->out_spatial[s] = os->dims[p->cd.out_spatial[s]];
    }

  const FbAttr *wa = fb_instr_get_attr (instr, FB_A_WINDOW);
  if (wa && wa->kind == FB_AV_WINDOW && wa->v.window.n != S)
    {
      _fb_interp_error (error, instr, "window has %d dimensions but the convolution has %d "
                        "spatial dimensions", wa->v.window.n, S);
      return FALSE;
    }
  for (int s = 0; s < S; s++)
    {
      FbWindowDim w = { .size = p->k_spatial[s], .stride = 1, .lhs_dilate = 1, .rhs_dilate = 1 };
      if (wa && wa->kind == FB_AV_WINDOW)
        w = wa->v.window.d[s];
      if (w.stride <= 0) w.stride = 1;
      if (w.lhs_dilate <= 0) w.lhs_dilate = 1;
      if (w.rhs_dilate <= 0) w.rhs_dilate = 1;
      if (w.size != p->k_spatial[s])
        {
          _fb_interp_error (error, instr, "window size %" G_GINT64_FORMAT " in spatial dimension %d "
                            "differs from the kernel's %" G_GINT64_FORMAT, w.size, s, p->k_spatial[s]);
          return FALSE;
        }
      p->win[s] = w;
    }

  p->G = fb_instr_int (instr, FB_A_FEATURE_GROUP_COUNT, 1);
  p->BG = fb_instr_int (instr, FB_A_BATCH_GROUP_COUNT, 1);
  int64_t C = in->dims[p->cd.in_feature], N_in = in->dims[p->cd.in_batch];
  p->kI = k->dims[p->cd.k_in];
  p->kO = k->dims[p->cd.k_out];
  p->N_out = os->dims[p->cd.out_batch];
  if (p->G < 1 || p->BG < 1 || C != p->kI * p->G || p->kO % p->G != 0 || p->kO % p->BG != 0
      || N_in != p->N_out * p->BG || os->dims[p->cd.out_feature] != p->kO)
    {
      _fb_interp_error (error, instr, "feature_group_count=%" G_GINT64_FORMAT " and batch_group_count=%"
                        G_GINT64_FORMAT " do not fit input features %" G_GINT64_FORMAT ", kernel "
                        "input features %" G_GINT64_FORMAT ", kernel output features %" G_GINT64_FORMAT
                        ", input batch %" G_GINT64_FORMAT " and result batch %" G_GINT64_FORMAT,
                        p->G, p->BG, C, p->kI, p->kO, N_in, p->N_out);
      return FALSE;
    }
  return TRUE;
}

/* For one output element: the (input spatial offset, kernel spatial offset)
 * pairs of every window position that lands on a real input element. */
static int64_t
window_taps (const ConvPlan *p, const int64_t *opos, const int64_t *ist, const int64_t *kst,
             int64_t *in_offs, int64_t *k_offs)
{
  int S = p->cd.n_spatial;
  int64_t n = 0, widx[FB_INTERP_MAX_RANK] = { 0 };
  for (;;)
    {
      gboolean ok = TRUE;
      int64_t io = 0, ko = 0;
      for (int s = 0; s < S && ok; s++)
        {
          const FbWindowDim *w = &p->win[s];
          int64_t pos = opos[s] * w->stride + widx[s] * w->rhs_dilate - w->pad_lo;
          if (pos < 0 || pos % w->lhs_dilate != 0)
            ok = FALSE;
          else
            {
              pos /= w->lhs_dilate;
              if (pos >= p->in_spatial[s])
                ok = FALSE;
              io += pos * ist[p->cd.in_spatial[s]];
              int64_t kpos = w->reversal ? w->size - 1 - widx[s] : widx[s];
              ko += kpos * kst[p->cd.k_spatial[s]];
            }
        }
      if (ok)
        {
          in_offs[n] = io;
          k_offs[n] = ko;
          n++;
        }
      int s = S - 1;
      for (; s >= 0; s--)
        {
          if (++widx[s] < p->k_spatial[s])
            break;
          widx[s] = 0;
        }
      if (s < 0)
        break;
    }
  return n;
}

#define DEFINE_CONV(name, T, ACC, NATIVE)                                                      \
  static void                                                                                  \
  name (const ConvPlan *p, const FbLiteral *in, const FbLiteral *k, FbLiteral *res)            \
  {                                                                                            \
    const FbShape *os = res->shape;                                                            \
    int S = p->cd.n_spatial;                                                                   \
    int64_t n_in = fb_shape_elements (in->shape), n_k = fb_shape_elements (k->shape);          \
    int64_t n_out = fb_shape_elements (os);                                                    \
    int64_t ist[FB_INTERP_MAX_RANK], kst[FB_INTERP_MAX_RANK];                                                      \
    _fb_interp_strides (in->shape, ist);                                                        \
    _fb_interp_strides (k->shape, kst);                                                         \
    T *I, *K;                                                                                  \
    g_autofree T *Ibuf = NULL, *Kbuf = NULL;                                                   \
    if (in->shape->type == NATIVE)                                                             \
      I = (T *) in->data;                                                                      \
    else                                                                                       \
      {                                                                                        \
        I = Ibuf = g_new (T, MAX (n_in, 1));                                                   \
        for (int64_t i = 0; i < n_in; i++)                                                     \
          I[i] = (T) fb_literal_get_f64 (in, i);                                               \
      }                                                                                        \
    if (k->shape->type == NATIVE)                                                              \
      K = (T *) k->data;                                                                       \
    else                                                                                       \
      {                                                                                        \
        K = Kbuf = g_new (T, MAX (n_k, 1));                                                    \
        for (int64_t i = 0; i < n_k; i++)                                                      \
          K[i] = (T) fb_literal_get_f64 (k, i);                                                \
      }                                                                                        \
    int64_t W = 1;                                                                             \
    for (int s = 0; s < S; s++)                                                                \
      W *= p->k_spatial[s];                                                                    \
    g_autofree int64_t *in_offs = g_new (int64_t, MAX (W, 1));                                 \
    g_autofree int64_t *k_offs = g_new (int64_t, MAX (W, 1));                                  \
    int64_t o_per_g = p->kO / p->G, o_per_bg = p->kO / p->BG;                                  \
    int64_t istf = ist[p->cd.in_feature], kstf = kst[p->cd.k_in];                              \
    int64_t idx[FB_INTERP_MAX_RANK] = { 0 };                                                             \
    for (int64_t e = 0; e < n_out; e++)                                                        \
      {                                                                                        \
        int64_t b = idx[p->cd.out_batch], o = idx[p->cd.out_feature], opos[FB_INTERP_MAX_RANK];          \
        for (int s = 0; s < S; s++)                                                            \
          opos[s] = idx[p->cd.out_spatial[s]];                                                 \
        int64_t g = o / o_per_g, bg = o / o_per_bg;                                            \
        int64_t ibase = (bg * p->N_out + b) * ist[p->cd.in_batch] + g * p->kI * istf;          \
        int64_t kbase = o * kst[p->cd.k_out];                                                  \
        int64_t nt = window_taps (p, opos, ist, kst, in_offs, k_offs);                         \
        ACC acc = 0;                                                                           \
        for (int64_t t = 0; t < nt; t++)                                                       \
          {                                                                                    \
            const T *ip = I + ibase + in_offs[t];                                              \
            const T *kp = K + kbase + k_offs[t];                                               \
            for (int64_t c = 0; c < p->kI; c++)                                                \
              acc += (ACC) ip[c * istf] * (ACC) kp[c * kstf];                                  \
          }                                                                                    \
        if (os->type == NATIVE)                                                                \
          ((T *) res->data)[e] = (T) acc;                                                      \
        else                                                                                   \
          fb_literal_set_f64 (res, e, (double) acc);                                           \
        for (int d = os->rank - 1; d >= 0; d--)                                                \
          {                                                                                    \
            if (++idx[d] < os->dims[d])                                                        \
              break;                                                                           \
            idx[d] = 0;                                                                        \
          }                                                                                    \
      }                                                                                        \
  }

DEFINE_CONV (conv_f32, float, float, FB_F32)
DEFINE_CONV (conv_f64, double, double, FB_F64)

static void
conv_int (const ConvPlan *p, const FbLiteral *in, const FbLiteral *k, FbLiteral *res)
{
  const FbShape *os = res->shape;
  int S = p->cd.n_spatial;
  int64_t ist[FB_INTERP_MAX_RANK], kst[FB_INTERP_MAX_RANK];
  _fb_interp_strides (in->shape, ist);
  _fb_interp_strides (k->shape, kst);
  int64_t W = 1;
  for (int s = 0; s < S; s++)
    W *= p->k_spatial[s];
  g_autofree int64_t *in_offs = g_new (int64_t, MAX (W, 1));
  g_autofree int64_t *k_offs = g_new (int64_t, MAX (W, 1));
  int64_t o_per_g = p->kO / p->G, o_per_bg = p->kO / p->BG;
  int64_t idx[FB_INTERP_MAX_RANK] = { 0 }, n_out = fb_shape_elements (os);
  for (int64_t e = 0; e < n_out; e++)
    {
      int64_t b = idx[p->cd.out_batch], o = idx[p->cd.out_feature], opos[FB_INTERP_MAX_RANK];
      for (int s = 0; s < S; s++)
        opos[s] = idx[p->cd.out_spatial[s]];
      int64_t g = o / o_per_g, bg = o / o_per_bg;
      int64_t ibase = (bg * p->N_out + b) * ist[p->cd.in_batch] + g * p->kI * ist[p->cd.in_feature];
      int64_t kbase = o * kst[p->cd.k_out];
      int64_t nt = window_taps (p, opos, ist, kst, in_offs, k_offs);
      uint64_t acc = 0;
      for (int64_t t = 0; t < nt; t++)
        for (int64_t c = 0; c < p->kI; c++)
          acc += (uint64_t) fb_literal_get_s64 (in, ibase + in_offs[t] + c * ist[p->cd.in_feature])
                 * (uint64_t) fb_literal_get_s64 (k, kbase + k_offs[t] + c * kst[p->cd.k_in]);
      fb_literal_set_s64 (res, e, (int64_t) acc);
      for (int d = os->rank - 1; d >= 0; d--)
        {
          if (++idx[d] < os->dims[d])
            break;
          idx[d] = 0;
        }
    }
}

gboolean
_fb_interp_convolution (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                        GError **error)
{
  if (instr->n_operands != 2)
    {
      _fb_interp_error (error, instr, "convolution takes 2 operands, not %d", instr->n_operands);
      return FALSE;
    }
  const FbLiteral *in = ops[0], *k = ops[1];
  if (!_fb_interp_check_array (instr, in, "input", error) || !_fb_interp_check_array (instr, k, "kernel", error)
      || !check_out_array (instr, error))
    return FALSE;
  AccKind kind;
  if (!acc_kind_for (instr, in, k, &kind, error))
    return FALSE;
  ConvPlan p = { 0 };
  if (!conv_plan_init (&p, instr, in->shape, k->shape, error))
    return FALSE;

  FbLiteral *res = fb_literal_new (ctx->arena, instr->shape);
  switch (kind)
    {
    case ACC_F32: conv_f32 (&p, in, k, res); break;
    case ACC_F64: conv_f64 (&p, in, k, res); break;
    case ACC_INT: conv_int (&p, in, k, res); break;
    case ACC_COMPLEX:
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED,
                   "%s: complex convolution is not supported by the interpreter", instr->name);
      return FALSE;
    }
  *out = res;
  return TRUE;
}

/* -------------------------------------------------------- batch norm */

/* Elements per feature and the feature of element i: (i / inner) % C. */
typedef struct { int64_t C, inner, per_feature, n; } BnLayout;

static gboolean
bn_layout (const FbInstr *instr, const FbLiteral *x, int n_feature_ops, FbLiteral *const *fops,
           BnLayout *l, double *eps, GError **error)
{
  if (!_fb_interp_check_array (instr, x, "operand", error))
    return FALSE;
  int64_t fi = fb_instr_int (instr, FB_A_FEATURE_INDEX, -1);
  if (fi < 0 || fi >= x->shape->rank)
    {
      _fb_interp_error (error, instr, "feature_index %" G_GINT64_FORMAT " is not a dimension of "
                        "the rank-%d operand", fi, x->shape->rank);
      return FALSE;
    }
  l->C = x->shape->dims[fi];
  l->inner = 1;
  for (int d = fi + 1; d < x->shape->rank; d++)
    l->inner *= x->shape->dims[d];
  l->n = fb_shape_elements (x->shape);
  l->per_feature = l->C ? l->n / l->C : 0;
  for (int i = 0; i < n_feature_ops; i++)
    {
      if (!_fb_interp_check_array (instr, fops[i], "a per-feature operand", error))
        return FALSE;
      if (fops[i]->shape->rank != 1 || fops[i]->shape->dims[0] != l->C)
        {
          _fb_interp_error (error, instr, "operand %d must be a vector of the %" G_GINT64_FORMAT
                            " features", i + 1, l->C);
          return FALSE;
        }
    }
  const FbAttr *ea = fb_instr_get_attr (instr, FB_A_EPSILON);
  *eps = ea ? (ea->kind == FB_AV_FLOAT ? ea->v.f : (double) ea->v.i) : 0.001;
  return TRUE;
}

static FbLiteral *
tuple_result (FbInterp *ctx, FbInstr *instr, int n, GError **error)
{
  if (instr->shape == NULL || !fb_shape_is_tuple (instr->shape) || instr->shape->n_elems != n)
    {
      _fb_interp_error (error, instr, "result must be a tuple of %d arrays", n);
      return NULL;
    }
  for (int i = 0; i < n; i++)
    if (!fb_shape_is_array (instr->shape->elems[i]))
      {
        _fb_interp_error (error, instr, "result must be a tuple of %d arrays", n);
        return NULL;
      }
  return fb_literal_new (ctx->arena, instr->shape);
}

gboolean
_fb_interp_batch_norm (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                       GError **error)
{
  const FbLiteral *x = ops[0];
  BnLayout l;
  double eps;
  FbLiteral *res;

  switch (instr->opcode)
    {
    case FB_OP_BATCH_NORM_TRAINING:
      {
        /* operand, scale, offset -> (normalized, batch mean, batch variance) */
        if (!bn_layout (instr, x, 2, ops + 1, &l, &eps, error)
            || !(res = tuple_result (ctx, instr, 3, error)))
          return FALSE;
        if (!_fb_interp_same_dims (res->elems[0]->shape, x->shape) || fb_shape_elements (res->elems[1]->shape) != l.C
            || fb_shape_elements (res->elems[2]->shape) != l.C)
          {
            _fb_interp_error (error, instr, "result shapes do not match the operand");
            return FALSE;
          }
        g_autofree double *mean = g_new0 (double, MAX (l.C, 1));
        g_autofree double *var = g_new0 (double, MAX (l.C, 1));
        for (int64_t i = 0; i < l.n; i++)
          mean[(i / l.inner) % l.C] += fb_literal_get_f64 (x, i);
        for (int64_t c = 0; c < l.C; c++)
          mean[c] /= (double) MAX (l.per_feature, 1);
        for (int64_t i = 0; i < l.n; i++)
          {
            double d = fb_literal_get_f64 (x, i) - mean[(i / l.inner) % l.C];
            var[(i / l.inner) % l.C] += d * d;
          }
        for (int64_t c = 0; c < l.C; c++)
          {
            var[c] /= (double) MAX (l.per_feature, 1);
            fb_literal_set_f64 (res->elems[1], c, mean[c]);
            fb_literal_set_f64 (res->elems[2], c, var[c]);
          }
        for (int64_t i = 0; i < l.n; i++)
          {
            int64_t c = (i / l.inner) % l.C;
            double v = (fb_literal_get_f64 (x, i) - mean[c]) / sqrt (var[c] + eps)
                       * fb_literal_get_f64 (ops[1], c) + fb_literal_get_f64 (ops[2], c);
            fb_literal_set_f64 (res->elems[0], i, v);
          }
        break;
      }
    case FB_OP_BATCH_NORM_INFERENCE:
      {
        /* operand, scale, offset, mean, variance -> normalized */
        if (!bn_layout (instr, x, 4, ops + 1, &l, &eps, error) || !check_out_array (instr, error))
          return FALSE;
        if (!_fb_interp_same_dims (instr->shape, x->shape))
          {
            _fb_interp_error (error, instr, "result shape does not match the operand");
            return FALSE;
          }
        res = fb_literal_new (ctx->arena, instr->shape);
        for (int64_t i = 0; i < l.n; i++)
          {
            int64_t c = (i / l.inner) % l.C;
            double v = (fb_literal_get_f64 (x, i) - fb_literal_get_f64 (ops[3], c))
                       / sqrt (fb_literal_get_f64 (ops[4], c) + eps)
                       * fb_literal_get_f64 (ops[1], c) + fb_literal_get_f64 (ops[2], c);
            fb_literal_set_f64 (res, i, v);
          }
        break;
      }
    case FB_OP_BATCH_NORM_GRAD:
      {
        /* operand, scale, mean, variance, grad_output ->
         * (grad_operand, grad_scale, grad_offset) */
        if (!bn_layout (instr, x, 3, ops + 1, &l, &eps, error)
            || !_fb_interp_check_array (instr, ops[4], "grad_output", error)
            || !(res = tuple_result (ctx, instr, 3, error)))
          return FALSE;
        const FbLiteral *dy = ops[4];
        if (!_fb_interp_same_dims (dy->shape, x->shape) || !_fb_interp_same_dims (res->elems[0]->shape, x->shape)
            || fb_shape_elements (res->elems[1]->shape) != l.C
            || fb_shape_elements (res->elems[2]->shape) != l.C)
          {
            _fb_interp_error (error, instr, "grad_output and result shapes must match the operand");
            return FALSE;
          }
        g_autofree double *sum_dy = g_new0 (double, MAX (l.C, 1));
        g_autofree double *sum_dy_xc = g_new0 (double, MAX (l.C, 1));
        for (int64_t i = 0; i < l.n; i++)
          {
            int64_t c = (i / l.inner) % l.C;
            double g = fb_literal_get_f64 (dy, i);
            sum_dy[c] += g;
            sum_dy_xc[c] += g * (fb_literal_get_f64 (x, i) - fb_literal_get_f64 (ops[2], c));
          }
        double n = (double) MAX (l.per_feature, 1);
        for (int64_t c = 0; c < l.C; c++)
          {
            double rstd = 1.0 / sqrt (fb_literal_get_f64 (ops[3], c) + eps);
            fb_literal_set_f64 (res->elems[1], c, sum_dy_xc[c] * rstd);
            fb_literal_set_f64 (res->elems[2], c, sum_dy[c]);
          }
        for (int64_t i = 0; i < l.n; i++)
          {
            int64_t c = (i / l.inner) % l.C;
            double var_eps = fb_literal_get_f64 (ops[3], c) + eps;
            double xc = fb_literal_get_f64 (x, i) - fb_literal_get_f64 (ops[2], c);
            double v = fb_literal_get_f64 (ops[1], c) / sqrt (var_eps) / n
                       * (n * fb_literal_get_f64 (dy, i) - sum_dy[c] - xc * sum_dy_xc[c] / var_eps);
            fb_literal_set_f64 (res->elems[0], i, v);
          }
        break;
      }
    default:
      _fb_interp_error (error, instr, "%s is not a batch norm", fb_opcode_name (instr->opcode));
      return FALSE;
    }
  *out = res;
  return TRUE;
}

/* ------------------------------------------------ cholesky, tri-solve */

static gboolean
square_batches (const FbInstr *instr, const FbLiteral *a, int64_t *n, int64_t *batches,
                GError **error)
{
  if (!_fb_interp_check_array (instr, a, "operand", error))
    return FALSE;
  int r = a->shape->rank;
  if (r < 2 || a->shape->dims[r - 1] != a->shape->dims[r - 2])
    {
      _fb_interp_error (error, instr, "operand must be a (batch of) square matrices");
      return FALSE;
    }
  if (fb_elem_type_kind (a->shape->type) != FB_KIND_FLOAT)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED,
                   "%s: only real floating-point matrices are supported, not %s", instr->name,
                   fb_elem_type_name (a->shape->type));
      return FALSE;
    }
  *n = a->shape->dims[r - 1];
  *batches = *n ? fb_shape_elements (a->shape) / (*n * *n) : 0;
  return TRUE;
}

gboolean
_fb_interp_cholesky (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                     GError **error)
{
  const FbLiteral *a = ops[0];
  int64_t n, batches;
  if (!square_batches (instr, a, &n, &batches, error) || !check_out_array (instr, error))
    return FALSE;
  if (!_fb_interp_same_dims (instr->shape, a->shape))
    {
      _fb_interp_error (error, instr, "result shape must match the operand");
      return FALSE;
    }
  gboolean lower = raw_bool (instr, "lower", FALSE);
  FbLiteral *res = fb_literal_new (ctx->arena, instr->shape);
  g_autofree double *L = g_new0 (double, MAX (n * n, 1));

  for (int64_t b = 0; b < batches; b++)
    {
      int64_t base = b * n * n;
      /* A(i,j) read from the triangle the attribute names. */
#define A_AT(i, j) fb_literal_get_f64 (a, base + (lower ? (i) * n + (j) : (j) * n + (i)))
      gboolean ok = TRUE;
      memset (L, 0, sizeof (double) * n * n);
      for (int64_t j = 0; j < n && ok; j++)
        {
          double d = A_AT (j, j);
          for (int64_t k = 0; k < j; k++)
            d -= L[j * n + k] * L[j * n + k];
          if (!(d > 0))
            {
              ok = FALSE;
              break;
            }
          L[j * n + j] = sqrt (d);
          for (int64_t i = j + 1; i < n; i++)
            {
              double s = A_AT (i, j);
              for (int64_t k = 0; k < j; k++)
                s -= L[i * n + k] * L[j * n + k];
              L[i * n + j] = s / L[j * n + j];
            }
        }
#undef A_AT
      /* Not positive definite: XLA fills the result with NaN. */
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
          {
            double v = !ok ? NAN : lower ? L[i * n + j] : L[j * n + i];
            fb_literal_set_f64 (res, base + i * n + j, v);
          }
    }
  *out = res;
  return TRUE;
}

gboolean
_fb_interp_triangular_solve (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops,
                             FbLiteral **out, GError **error)
{
  const FbLiteral *a = ops[0], *b = ops[1];
  int64_t m, batches;
  if (!square_batches (instr, a, &m, &batches, error) || !_fb_interp_check_array (instr, b, "b", error)
      || !check_out_array (instr, error))
    return FALSE;
  gboolean left = raw_bool (instr, "left_side", FALSE);
  gboolean lower = raw_bool (instr, "lower", FALSE);
  gboolean unit = raw_bool (instr, "unit_diagonal", FALSE);
  const char *ta = raw_text (instr, "transpose_a");
  gboolean trans = ta && (strcmp (ta, "TRANSPOSE") == 0 || strcmp (ta, "ADJOINT") == 0);
  if (ta && !trans && strcmp (ta, "NO_TRANSPOSE") != 0)
    {
      _fb_interp_error (error, instr, "transpose_a=%s is not NO_TRANSPOSE, TRANSPOSE or ADJOINT", ta);
      return FALSE;
    }
  int r = b->shape->rank;
  if (r != a->shape->rank || !_fb_interp_same_dims (instr->shape, b->shape))
    {
      _fb_interp_error (error, instr, "b and the result must have a's rank and the same shape");
      return FALSE;
    }
  for (int d = 0; d < r - 2; d++)
    if (a->shape->dims[d] != b->shape->dims[d])
      {
        _fb_interp_error (error, instr, "a and b have different batch dimensions");
        return FALSE;
      }
  int64_t rows = b->shape->dims[r - 2], cols = b->shape->dims[r - 1];
  if ((left ? rows : cols) != m)
    {
      _fb_interp_error (error, instr, "b's %s dimension must have size %" G_GINT64_FORMAT,
                        left ? "second-to-last" : "last", m);
      return FALSE;
    }

  /* Solve T X' = B' where T = op(a) restricted to its triangle; for the right
   * side, x op(a) = b  <=>  op(a)^T x^T = b^T. */
  gboolean t_lower = lower != trans;     /* triangle of op(a) */
  gboolean transpose_T = trans;          /* T(i,j) = a(j,i) */
  if (!left)
    {
      t_lower = !t_lower;
      transpose_T = !transpose_T;
    }
  int64_t nrhs = left ? cols : rows;
  FbLiteral *res = fb_literal_new (ctx->arena, instr->shape);
  g_autofree double *T = g_new0 (double, MAX (m * m, 1));
  g_autofree double *x = g_new0 (double, MAX (m, 1));

  for (int64_t bt = 0; bt < batches; bt++)
    {
      int64_t abase = bt * m * m, bbase = bt * rows * cols;
      for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++)
          {
            int64_t ai = transpose_T ? j : i, aj = transpose_T ? i : j;
            gboolean in_tri = lower ? aj <= ai : aj >= ai;
            double v = in_tri ? fb_literal_get_f64 (a, abase + ai * m + aj) : 0;
            if (i == j && unit)
              v = 1;
            T[i * m + j] = v;
          }
      for (int64_t c = 0; c < nrhs; c++)
        {
          /* column c of B' is column c of b (left) or row c of b (right). */
#define B_AT(i) (bbase + (left ? (i) * cols + c : c * cols + (i)))
          for (int64_t s = 0; s < m; s++)
            {
              int64_t i = t_lower ? s : m - 1 - s;
              double v = fb_literal_get_f64 (b, B_AT (i));
              if (t_lower)
                for (int64_t k = 0; k < i; k++)
                  v -= T[i * m + k] * x[k];
              else
                for (int64_t k = i + 1; k < m; k++)
                  v -= T[i * m + k] * x[k];
              x[i] = v / T[i * m + i];
            }
          for (int64_t i = 0; i < m; i++)
            fb_literal_set_f64 (res, B_AT (i), x[i]);
#undef B_AT
        }
    }
  *out = res;
  return TRUE;
}

/* --------------------------------------------------------------- fft */

/* In-place DFT of every line along dimension @d of a [.., dims[d], ..]
 * complex array (interleaved re/im). Inverse divides by the length. */
static void
dft_along (double *z, int rank, const int64_t *dims, int d, gboolean inverse)
{
  int64_t n = dims[d], inner = 1, outer = 1;
  for (int i = d + 1; i < rank; i++)
    inner *= dims[i];
  for (int i = 0; i < d; i++)
    outer *= dims[i];
  if (n <= 1)
    return;
  g_autofree double *tw = g_new (double, 2 * n);
  g_autofree double *line = g_new (double, 2 * n);
  double sign = inverse ? 1.0 : -1.0;
  for (int64_t k = 0; k < n; k++)
    {
      tw[2 * k] = cos (2 * G_PI * k / n);
      tw[2 * k + 1] = sign * sin (2 * G_PI * k / n);
    }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++)
      {
        double *base = z + 2 * (o * n * inner + in);
        for (int64_t k = 0; k < n; k++)
          {
            double sr = 0, si = 0;
            for (int64_t t = 0; t < n; t++)
              {
                int64_t w = (k * t) % n;
                double xr = base[2 * t * inner], xi = base[2 * t * inner + 1];
                sr += xr * tw[2 * w] - xi * tw[2 * w + 1];
                si += xr * tw[2 * w + 1] + xi * tw[2 * w];
              }
            line[2 * k] = inverse ? sr / n : sr;
            line[2 * k + 1] = inverse ? si / n : si;
          }
        for (int64_t k = 0; k < n; k++)
          {
            base[2 * k * inner] = line[2 * k];
            base[2 * k * inner + 1] = line[2 * k + 1];
          }
      }
}

gboolean
_fb_interp_fft (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops, FbLiteral **out,
                GError **error)
{
  const FbLiteral *x = ops[0];
  if (!_fb_interp_check_array (instr, x, "operand", error) || !check_out_array (instr, error))
    return FALSE;
  const char *type = fb_instr_str (instr, FB_A_FFT_TYPE);
  const FbDims *len = fb_instr_dims (instr, FB_A_FFT_LENGTH);
  if (type == NULL || len == NULL || len->n < 1 || len->n > 3)
    {
      _fb_interp_error (error, instr, "fft needs fft_type and an fft_length of 1 to 3 dimensions");
      return FALSE;
    }
  gboolean rfft = strcmp (type, "RFFT") == 0, irfft = strcmp (type, "IRFFT") == 0;
  gboolean ifft = strcmp (type, "IFFT") == 0;
  if (!rfft && !irfft && !ifft && strcmp (type, "FFT") != 0)
    {
      _fb_interp_error (error, instr, "unknown fft_type %s", type);
      return FALSE;
    }
  const FbShape *is = x->shape, *os = instr->shape;
  int r = is->rank, nf = len->n;
  if (r < nf || os->rank != r)
    {
      _fb_interp_error (error, instr, "operand and result must have rank at least %d", nf);
      return FALSE;
    }
  /* Check the shapes: the transformed dims are fft_length, except the last
   * one of the complex side of RFFT/IRFFT which has fft_length/2+1. */
  gboolean in_complex = !rfft, out_complex = !irfft;
  if ((fb_elem_type_kind (is->type) == FB_KIND_COMPLEX) != in_complex
      || (fb_elem_type_kind (os->type) == FB_KIND_COMPLEX) != out_complex
      || (!in_complex && fb_elem_type_kind (is->type) != FB_KIND_FLOAT)
      || (!out_complex && fb_elem_type_kind (os->type) != FB_KIND_FLOAT))
    {
      _fb_interp_error (error, instr, "%s takes %s and gives %s values", type,
                        in_complex ? "complex" : "real", out_complex ? "complex" : "real");
      return FALSE;
    }
  int64_t full[FB_INTERP_MAX_RANK];
  for (int d = 0; d < r; d++)
    {
      full[d] = d >= r - nf ? len->v[d - (r - nf)] : is->dims[d];
      int64_t half = full[d] / 2 + 1;
      gboolean last = d == r - 1;
      int64_t want_in = last && irfft ? half : full[d];
      int64_t want_out = last && rfft ? half : full[d];
      if (is->dims[d] != want_in || os->dims[d] != want_out)
        {
          _fb_interp_error (error, instr, "dimension %d: operand has %" G_GINT64_FORMAT " and result %"
                            G_GINT64_FORMAT " elements, fft_length asks for %" G_GINT64_FORMAT
                            " and %" G_GINT64_FORMAT, d, is->dims[d], os->dims[d], want_in, want_out);
          return FALSE;
        }
    }

  int64_t nfull = 1;
  for (int d = 0; d < r; d++)
    nfull *= full[d];
  g_autofree double *z = g_new0 (double, 2 * MAX (nfull, 1));
  int64_t fst[FB_INTERP_MAX_RANK];
  {
    FbShape fs = { .type = FB_C128, .rank = r, .dims = full };
    _fb_interp_strides (&fs, fst);
  }

  /* Load the operand into the full-size complex buffer. */
  int64_t idx[FB_INTERP_MAX_RANK] = { 0 }, n_in = fb_shape_elements (is);
  for (int64_t e = 0; e < n_in; e++)
    {
      int64_t f = 0;
      for (int d = 0; d < r; d++)
        f += idx[d] * fst[d];
      get_complex (x, e, &z[2 * f], &z[2 * f + 1]);
      for (int d = r - 1; d >= 0; d--)
        {
          if (++idx[d] < is->dims[d])
            break;
          idx[d] = 0;
        }
    }

  if (irfft)
    {
      /* Inverse over the outer transformed dims, then complete the last dim
       * by Hermitian symmetry and invert it. */
      for (int d = r - nf; d < r - 1; d++)
        dft_along (z, r, full, d, TRUE);
      int64_t L = full[r - 1], lines = nfull / MAX (L, 1);
      for (int64_t li = 0; li < lines; li++)
        {
          double *line = z + 2 * li * L;
          for (int64_t k = L / 2 + 1; k < L; k++)
            {
              line[2 * k] = line[2 * (L - k)];
              line[2 * k + 1] = -line[2 * (L - k) + 1];
            }
        }
      dft_along (z, r, full, r - 1, TRUE);
    }
  else
    for (int d = r - nf; d < r; d++)
      dft_along (z, r, full, d, ifft);

  FbLiteral *res = fb_literal_new (ctx->arena, instr->shape);
  memset (idx, 0, sizeof idx);
  int64_t n_out = fb_shape_elements (os);
  for (int64_t e = 0; e < n_out; e++)
    {
      int64_t f = 0;
      for (int d = 0; d < r; d++)
        f += idx[d] * fst[d];
      set_complex (res, e, z[2 * f], z[2 * f + 1]);
      for (int d = r - 1; d >= 0; d--)
        {
          if (++idx[d] < os->dims[d])
            break;
          idx[d] = 0;
        }
    }
  *out = res;
  return TRUE;
}
