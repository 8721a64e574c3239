/* SPDX-License-Identifier: MIT
 *
 * Dot on the CPU through BLAS. XLA's dot has general dimension numbers:
 * batch dimensions, contracting dimensions and the free dimensions of each
 * side in operand order. Each side is brought to a [batch, rows, depth]
 * (or [batch, depth, cols]) matrix stack: in place with a transpose flag
 * when its dimensions already come in one of the two orders, by a packing
 * copy otherwise; then one GEMM per batch. f32 and f64 go to sgemm/dgemm;
 * f16 and bf16 are widened to f32 and rounded back, which is what XLA's CPU
 * backend does; integer dots use a plain loop.
 *
 * The library is chosen for each f32 GEMM by its shape, from measurements
 * of single-threaded sgemm on the shapes the zoo's steps run (bench-cpu
 * --only gemm repeats them and prints the choice beside the times). oneDNN
 * was 5-16% faster than OpenBLAS wherever both sides of C have at least 64
 * rows and columns: every MLP layer and weight gradient, the transformer's
 * projections. OpenBLAS was faster on everything thinner: the CNN's im2col
 * products (6 or 16 output channels; up to 2.7 times on the long filter-
 * gradient sums) and the attention heads' 32x32 products (up to 2.7 times).
 * BLIS, Debian's build of 0.9, was slower than both on the transposed
 * weight-gradient products (about 60 against 100 GFLOP/s), so it is not
 * used. f64 always goes to OpenBLAS: oneDNN has no dgemm.
 *
 * FUSEBOX_GEMM=openblas or =onednn sends every f32 GEMM to one library.
 */
#include "fb-cpu-private.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#ifdef FB_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

/* Rows and columns of C from which oneDNN multiplies faster. */
#define ONEDNN_MIN_SIDE 64

typedef enum { CHOOSE_BY_SHAPE, ALWAYS_OPENBLAS, ALWAYS_ONEDNN } GemmPolicy;

static GemmPolicy
gemm_policy (void)
{
  static gsize once;
  static GemmPolicy policy;
  if (g_once_init_enter (&once))
    {
      const char *want = g_getenv ("FUSEBOX_GEMM");
      GemmPolicy p = CHOOSE_BY_SHAPE;
      if (want == NULL || *want == '\0')
        ;
      else if (g_strcmp0 (want, "openblas") == 0)
        p = ALWAYS_OPENBLAS;
      else if (g_strcmp0 (want, "onednn") == 0)
        p = ALWAYS_ONEDNN;
      else
        g_printerr ("fusebox: FUSEBOX_GEMM=%s is neither openblas nor onednn; choosing by shape\n", want);
#ifndef FB_HAVE_ONEDNN
      if (p == ALWAYS_ONEDNN)
        g_printerr ("fusebox: FUSEBOX_GEMM=onednn, but this build has no oneDNN; using OpenBLAS\n");
      p = ALWAYS_OPENBLAS;
#endif
      policy = p;
      g_once_init_leave (&once, 1);
    }
  return policy;
}

const char *
_fb_cpu_gemm_library (void)
{
  static gsize once;
  static char *name;
  if (g_once_init_enter (&once))
    {
      g_autofree char *config = g_strstrip (g_strdup (openblas_get_config ()));
      g_autofree char *blas = g_strdup_printf ("%s (core %s)", config, openblas_get_corename ());
#ifdef FB_HAVE_ONEDNN
      const dnnl_version_t *v = dnnl_version ();
      g_autofree char *dnnl = g_strdup_printf ("oneDNN %d.%d.%d", v->major, v->minor, v->patch);
      switch (gemm_policy ())
        {
        case ALWAYS_OPENBLAS:
          name = g_strdup_printf ("%s (FUSEBOX_GEMM)", blas);
          break;
        case ALWAYS_ONEDNN:
          name = g_strdup_printf ("%s for f32 (FUSEBOX_GEMM), %s for f64", dnnl, blas);
          break;
        default:
          name = g_strdup_printf ("%s where C is at least %dx%d, %s otherwise", dnnl, ONEDNN_MIN_SIDE,
                                  ONEDNN_MIN_SIDE, blas);
        }
#else
      name = g_strdup_printf ("%s (built without oneDNN)", blas);
#endif
      g_once_init_leave (&once, 1);
    }
  return name;
}

FbCpuGemmLib
_fb_cpu_sgemm_library (int64_t m, int64_t n)
{
  switch (gemm_policy ())
    {
    case ALWAYS_OPENBLAS:
      return FB_CPU_GEMM_OPENBLAS;
    case ALWAYS_ONEDNN:
      return FB_CPU_GEMM_ONEDNN;
    default:
      return m >= ONEDNN_MIN_SIDE && n >= ONEDNN_MIN_SIDE ? FB_CPU_GEMM_ONEDNN : FB_CPU_GEMM_OPENBLAS;
    }
}

static FbCpuGemmObserver observer;
static gpointer          observer_data;

void
_fb_cpu_gemm_observe (FbCpuGemmObserver fn, gpointer data)
{
  observer_data = data;
  observer = fn;
}

void
_fb_cpu_sgemm_here (FbCpuGemmLib lib, gboolean ta, gboolean tb, int64_t m, int64_t n, int64_t k,
                    const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc)
{
  if (G_UNLIKELY (observer != NULL))
    observer (observer_data, lib, ta, tb, m, n, k, lda, ldb, ldc);
#ifdef FB_HAVE_ONEDNN
  if (lib == FB_CPU_GEMM_ONEDNN)
    {
      _fb_cpu_onednn_this_thread_only ();
      if (dnnl_sgemm (ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc)
          == dnnl_success)
        return;
      /* Arguments it refuses (none that a dot builds) go to OpenBLAS. */
    }
#else
  (void) lib;
#endif
  cblas_sgemm (CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint) m,
               (blasint) n, (blasint) k, 1.0f, a, (blasint) lda, b, (blasint) ldb, beta, c, (blasint) ldc);
}

/* Multiply-adds below which one thread does the whole GEMM. */
#define SMALL_GEMM (2.0 * 1024 * 1024)
/* Multiply-adds of a slab of a split GEMM, at least. */
#define MIN_SLAB (1024.0 * 1024)

/* A GEMM split over the pool: OpenBLAS runs single-threaded on each of the
 * pool's threads, a slab of C at a time. Letting OpenBLAS start threads of its
 * own costs more than it gains here: after every call its threads spin in
 * sched_yield for a long while, on the same cores that the pool's workers
 * then need for the next kernel. The slabs split C by rows unless it has
 * few rows (the layers of a batch, 128x1024x1024, split by columns); rows
 * measured faster for the weight gradients (784x1024x128) even where C is
 * wider than tall. */
typedef struct {
  gboolean     dbl;
  FbCpuGemmLib lib;        /* f32: chosen for the whole product, not per slab */
  gboolean     ta, tb, by_rows;
  int64_t      m, n, k, lda, ldb, ldc, step, n_slabs;
  const guint8 *a, *b;
  guint8      *c;
  double       beta;
} GemmJob;

static void
gemm_slab (gpointer data, int64_t begin, int64_t end)
{
  const GemmJob *j = data;
  int es = j->dbl ? 8 : 4;
  int64_t len = j->by_rows ? j->m : j->n;
  int64_t lo = begin * j->step;
  int64_t hi = end >= j->n_slabs ? len : MIN (end * j->step, len);   /* the last slab takes the rest */
  if (hi <= lo)
    return;
  int64_t m = j->m, n = j->n;
  const guint8 *a = j->a, *b = j->b;
  guint8 *c = j->c;
  if (j->by_rows)
    {
      /* Rows lo..hi of C: rows of A, or columns of A stored transposed. */
      m = hi - lo;
      a += (j->ta ? lo : lo * j->lda) * es;
      c += lo * j->ldc * es;
    }
  else
    {
      n = hi - lo;
      b += (j->tb ? lo * j->ldb : lo) * es;
      c += lo * es;
    }
  if (j->dbl)
    cblas_dgemm (CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                 (blasint) m, (blasint) n, (blasint) j->k, 1.0, (const double *) a, (blasint) j->lda,
                 (const double *) b, (blasint) j->ldb, j->beta, (double *) c, (blasint) j->ldc);
  else
    _fb_cpu_sgemm_here (j->lib, j->ta, j->tb, m, n, j->k, (const float *) a, j->lda, (const float *) b, j->ldb,
                        (float) j->beta, (float *) c, j->ldc);
}

static void
gemm_split (FbCpuPool *pool, GemmJob *j)
{
  int threads = _fb_cpu_pool_threads (pool);
  _fb_cpu_pool_blas_begin (pool);
  if (threads == 1 || (double) j->m * (double) j->n * (double) j->k < SMALL_GEMM)
    {
      /* A small GEMM (the logits layer of an MLP: 128x1024x10) costs less
       * than waking a second thread. */
      j->by_rows = TRUE;
      j->step = MAX (j->m, 1);
      j->n_slabs = 1;
      gemm_slab (j, 0, 1);
    }
  else
    {
      /* Two slabs per thread, each a multiple of 16 rows or columns (the
       * width of the microkernels): when another process takes a core for
       * a while, the other thread takes over the slab it left, at the cost
       * of packing the shared operand once more per slab. No slab is below
       * MIN_SLAB: OpenBLAS runs products of up to 100^3 multiply-adds
       * through other kernels that round differently, and the result must
       * not depend on the thread count. */
      j->by_rows = j->m >= j->n || j->m >= 512;
      int64_t len = j->by_rows ? j->m : j->n;
      double per_line = (double) j->k * (double) (j->by_rows ? j->n : j->m);
      int64_t parts = 2 * (int64_t) threads;
      j->step = MAX (16, ((len + parts - 1) / parts + 15) / 16 * 16);
      while (j->step < len && j->step * per_line < MIN_SLAB)
        j->step += 16;
      j->n_slabs = (len + j->step - 1) / j->step;
      if (j->n_slabs > 1 && (len - (j->n_slabs - 1) * j->step) * per_line < MIN_SLAB)
        j->n_slabs--;
      _fb_cpu_pool_parallel_for (pool, j->n_slabs, 1, gemm_slab, j);
    }
  _fb_cpu_pool_blas_end (pool);
}

void
_fb_cpu_sgemm (FbCpuPool *pool, gboolean ta, gboolean tb, int64_t m, int64_t n, int64_t k,
               const float *a, int64_t lda, const float *b, int64_t ldb,
               float beta, float *c, int64_t ldc)
{
  GemmJob j = { FALSE, _fb_cpu_sgemm_library (m, n), ta, tb, TRUE, m, n, k, lda, ldb, ldc, 0, 1,
                (const guint8 *) a, (const guint8 *) b, (guint8 *) c, beta };
  gemm_split (pool, &j);
}

static void
dgemm (FbCpuPool *pool, gboolean ta, gboolean tb, int64_t m, int64_t n, int64_t k,
       const double *a, int64_t lda, const double *b, int64_t ldb, double *c, int64_t ldc)
{
  GemmJob j = { TRUE, FB_CPU_GEMM_OPENBLAS, ta, tb, TRUE, m, n, k, lda, ldb, ldc, 0, 1,
                (const guint8 *) a, (const guint8 *) b, (guint8 *) c, 0.0 };
  gemm_split (pool, &j);
}

/* Which dimensions of one side play which role. */
typedef struct {
  int     rank;
  int64_t dims[16];
  int     n_batch, n_contract, n_free;
  int     batch[16], contract[16], free_[16];
  int64_t B, F, K;        /* products */
} Side;

static gboolean
side_init (Side *s, const FbShape *shape, const FbDims *batch, const FbDims *contract)
{
  if (shape->rank > 16)
    return FALSE;
  s->rank = shape->rank;
  memcpy (s->dims, shape->dims, sizeof (int64_t) * shape->rank);
  gboolean used[16] = { 0 };
  s->n_batch = batch ? batch->n : 0;
  s->n_contract = contract ? contract->n : 0;
  s->B = s->K = s->F = 1;
  for (int i = 0; i < s->n_batch; i++)
    {
      s->batch[i] = (int) batch->v[i];
      used[s->batch[i]] = TRUE;
      s->B *= s->dims[s->batch[i]];
    }
  for (int i = 0; i < s->n_contract; i++)
    {
      s->contract[i] = (int) contract->v[i];
      used[s->contract[i]] = TRUE;
      s->K *= s->dims[s->contract[i]];
    }
  s->n_free = 0;
  for (int d = 0; d < s->rank; d++)
    if (!used[d])
      {
        s->free_[s->n_free++] = d;
        s->F *= s->dims[d];
      }
  return TRUE;
}

FbCpuGemmLib
_fb_cpu_dot_library (const FbInstr *dot)
{
  FbElemType t = dot->shape->type;
  Side l, r;
  if ((t != FB_F32 && t != FB_BF16 && t != FB_F16) || dot->n_operands != 2
      || !side_init (&l, dot->operands[0]->shape, fb_instr_dims (dot, FB_A_LHS_BATCH_DIMS),
                     fb_instr_dims (dot, FB_A_LHS_CONTRACTING_DIMS))
      || !side_init (&r, dot->operands[1]->shape, fb_instr_dims (dot, FB_A_RHS_BATCH_DIMS),
                     fb_instr_dims (dot, FB_A_RHS_CONTRACTING_DIMS)))
    return FB_CPU_GEMM_OPENBLAS;
  return _fb_cpu_sgemm_library (l.F, r.F);
}

/* Is the order of dimensions batch..., first..., second... the identity? */
static gboolean
is_identity (const Side *s, const int *first, int n_first, const int *second, int n_second)
{
  int k = 0;
  for (int i = 0; i < s->n_batch; i++)
    if (s->batch[i] != k++)
      return FALSE;
  for (int i = 0; i < n_first; i++)
    if (first[i] != k++)
      return FALSE;
  for (int i = 0; i < n_second; i++)
    if (second[i] != k++)
      return FALSE;
  return TRUE;
}

/* Copies @src (row-major, element @es bytes) into the order batch, first, second. */
static void
pack (const Side *s, const int *first, int n_first, const int *second, int n_second,
      const guint8 *src, guint8 *dst, int es)
{
  int perm[16], n = 0;
  for (int i = 0; i < s->n_batch; i++)
    perm[n++] = s->batch[i];
  for (int i = 0; i < n_first; i++)
    perm[n++] = first[i];
  for (int i = 0; i < n_second; i++)
    perm[n++] = second[i];
  int64_t strides[16], acc = 1;
  for (int d = s->rank - 1; d >= 0; d--)
    {
      strides[d] = acc;
      acc *= s->dims[d];
    }
  int64_t idx[16] = { 0 };
  int64_t total = acc;
  int64_t off = 0;
  for (int64_t o = 0; o < total; o++)
    {
      memcpy (dst + o * es, src + off * es, es);
      for (int j = n - 1; j >= 0; j--)
        {
          int d = perm[j];
          idx[j]++;
          off += strides[d];
          if (idx[j] < s->dims[d])
            break;
          off -= strides[d] * s->dims[d];
          idx[j] = 0;
        }
    }
}

static float *
to_f32 (const FbLiteral *lit, int64_t n)
{
  float *f = g_new (float, n);
  FbElemType t = lit->shape->type;
  if (t == FB_F32)
    memcpy (f, lit->data, n * 4);
  else if (t == FB_BF16)
    for (int64_t i = 0; i < n; i++)
      f[i] = fb_bf16_to_f32 (((const uint16_t *) lit->data)[i]);
  else if (t == FB_F16)
    for (int64_t i = 0; i < n; i++)
      f[i] = fb_f16_to_f32 (((const uint16_t *) lit->data)[i]);
  else
    for (int64_t i = 0; i < n; i++)
      f[i] = (float) fb_literal_get_f64 (lit, i);
  return f;
}

/* Brings one side to [B][rows][cols] with rows = @first dims; returns the data
 * and whether it is stored transposed ([B][cols][rows]). */
static const guint8 *
arrange (const Side *s, const int *first, int n_first, const int *second, int n_second,
         const guint8 *data, int es, gboolean *trans, guint8 **owned)
{
  *owned = NULL;
  *trans = FALSE;
  if (is_identity (s, first, n_first, second, n_second))
    return data;
  if (is_identity (s, second, n_second, first, n_first))
    {
      *trans = TRUE;
      return data;
    }
  int64_t n = s->B * s->F * s->K;
  *owned = g_malloc (MAX (n, 1) * es);
  pack (s, first, n_first, second, n_second, data, *owned, es);
  return *owned;
}

gboolean
_fb_cpu_dot (FbCpuPool *pool, const FbInstr *dot, const FbLiteral *lhs, const FbLiteral *rhs,
             FbLiteral *out, GError **error)
{
  return _fb_cpu_dot_full (pool, dot, lhs, rhs, out, FALSE, error);
}

gboolean
_fb_cpu_dot_full (FbCpuPool *pool, const FbInstr *dot, const FbLiteral *lhs, const FbLiteral *rhs,
                  FbLiteral *out, gboolean transpose_out, GError **error)
{
  Side l, r;
  if (!side_init (&l, lhs->shape, fb_instr_dims (dot, FB_A_LHS_BATCH_DIMS), fb_instr_dims (dot, FB_A_LHS_CONTRACTING_DIMS))
      || !side_init (&r, rhs->shape, fb_instr_dims (dot, FB_A_RHS_BATCH_DIMS), fb_instr_dims (dot, FB_A_RHS_CONTRACTING_DIMS)))
    {
      _fb_cpu_error (error, dot, "dot of rank above 16 is not supported");
      return FALSE;
    }
  if (l.B != r.B || l.K != r.K)
    {
      _fb_cpu_error (error, dot, "dot operands disagree on batch or contracting sizes");
      return FALSE;
    }
  int64_t B = l.B, M = l.F, N = r.F, K = l.K;
  FbElemType ot = out->shape->type;
  FbElemKind kind = fb_elem_type_kind (ot);
  if (B * M * N == 0)
    return TRUE;
  if (transpose_out && (B != 1 || out->shape->type != FB_F32))
    {
      _fb_cpu_error (error, dot, "a transposed result is only written for an f32 dot without batch dimensions");
      return FALSE;
    }

  if (kind == FB_KIND_FLOAT && (ot == FB_F64))
    {
      gboolean ta, tb;
      guint8 *la = NULL, *rb = NULL;
      g_autofree double *lconv = NULL, *rconv = NULL;
      const guint8 *ld = lhs->data, *rd = rhs->data;
      if (lhs->shape->type != FB_F64)
        {
          lconv = g_new (double, MAX (1, l.B * l.F * l.K));
          for (int64_t i = 0; i < l.B * l.F * l.K; i++)
            lconv[i] = fb_literal_get_f64 (lhs, i);
          ld = (guint8 *) lconv;
        }
      if (rhs->shape->type != FB_F64)
        {
          rconv = g_new (double, MAX (1, r.B * r.F * r.K));
          for (int64_t i = 0; i < r.B * r.F * r.K; i++)
            rconv[i] = fb_literal_get_f64 (rhs, i);
          rd = (guint8 *) rconv;
        }
      const double *a = (const double *) arrange (&l, l.free_, l.n_free, l.contract, l.n_contract, ld, 8, &ta, &la);
      const double *b = (const double *) arrange (&r, r.contract, r.n_contract, r.free_, r.n_free, rd, 8, &tb, &rb);
      double *c = (double *) out->data;
      if (K == 0)
        memset (c, 0, sizeof (double) * B * M * N);
      else
        for (int64_t bi = 0; bi < B; bi++)
          dgemm (pool, ta, tb, M, N, K, a + bi * M * K, ta ? M : K, b + bi * K * N, tb ? K : N, c + bi * M * N, N);
      g_free (la);
      g_free (rb);
      return TRUE;
    }

  if (kind == FB_KIND_FLOAT && (ot == FB_F32 || ot == FB_F16 || ot == FB_BF16))
    {
      gboolean ta, tb;
      guint8 *la = NULL, *rb = NULL;
      g_autofree float *lconv = NULL, *rconv = NULL, *cconv = NULL;
      const guint8 *ld = lhs->data, *rd = rhs->data;
      if (lhs->shape->type != FB_F32)
        ld = (guint8 *) (lconv = to_f32 (lhs, l.B * l.F * l.K));
      if (rhs->shape->type != FB_F32)
        rd = (guint8 *) (rconv = to_f32 (rhs, r.B * r.F * r.K));
      const float *a = (const float *) arrange (&l, l.free_, l.n_free, l.contract, l.n_contract, ld, 4, &ta, &la);
      const float *b = (const float *) arrange (&r, r.contract, r.n_contract, r.free_, r.n_free, rd, 4, &tb, &rb);
      float *c = ot == FB_F32 ? (float *) out->data : (cconv = g_new (float, B * M * N));
      if (K == 0)
        memset (c, 0, sizeof (float) * B * M * N);
      else if (transpose_out)
        /* C^T = B^T A^T: the same GEMM with the sides swapped and the
         * transpose flags flipped, so C comes out as [N, M]. */
        _fb_cpu_sgemm (pool, !tb, !ta, N, M, K, b, tb ? K : N, a, ta ? M : K, 0.0f, c, M);
      else
        for (int64_t bi = 0; bi < B; bi++)
          _fb_cpu_sgemm (pool, ta, tb, M, N, K, a + bi * M * K, ta ? M : K, b + bi * K * N, tb ? K : N,
                         0.0f, c + bi * M * N, N);
      if (ot != FB_F32)
        for (int64_t i = 0; i < B * M * N; i++)
          ((uint16_t *) out->data)[i] = ot == FB_BF16 ? fb_f32_to_bf16 (c[i]) : fb_f32_to_f16 (c[i]);
      g_free (la);
      g_free (rb);
      return TRUE;
    }

  if (kind == FB_KIND_SINT || kind == FB_KIND_UINT || kind == FB_KIND_PRED)
    {
      /* Integer dot: pack both sides as int64 and accumulate with wrap-around. */
      int64_t nl = l.B * l.F * l.K, nr = r.B * r.F * r.K;
      g_autofree int64_t *li = g_new (int64_t, MAX (nl, 1));
      g_autofree int64_t *ri = g_new (int64_t, MAX (nr, 1));
      g_autofree int64_t *lp = g_new (int64_t, MAX (nl, 1));
      g_autofree int64_t *rp = g_new (int64_t, MAX (nr, 1));
      for (int64_t i = 0; i < nl; i++)
        li[i] = fb_literal_get_s64 (lhs, i);
      for (int64_t i = 0; i < nr; i++)
        ri[i] = fb_literal_get_s64 (rhs, i);
      pack (&l, l.free_, l.n_free, l.contract, l.n_contract, (guint8 *) li, (guint8 *) lp, 8);
      pack (&r, r.contract, r.n_contract, r.free_, r.n_free, (guint8 *) ri, (guint8 *) rp, 8);
      for (int64_t bi = 0; bi < B; bi++)
        for (int64_t m = 0; m < M; m++)
          for (int64_t n = 0; n < N; n++)
            {
              uint64_t acc = 0;
              for (int64_t k = 0; k < K; k++)
                acc += (uint64_t) lp[(bi * M + m) * K + k] * (uint64_t) rp[(bi * K + k) * N + n];
              fb_literal_set_s64 (out, (bi * M + m) * N + n, (int64_t) acc);
            }
      return TRUE;
    }

  _fb_cpu_error (error, dot, "dot of %s is not supported by the CPU backend", fb_elem_type_name (ot));
  return FALSE;
}

/* ----------------------------------------------------------- epilogues */

/* A kOutput fusion: one product (dot or convolution) whose result flows
 * through elementwise work of the same shape. The driver first tries a
 * generated kernel for the epilogue (fb-cpu-backend.c); when the generator
 * does not take it, the epilogue runs here in one pass over the product, a
 * block of elements at a time through every instruction, so the product is
 * read once and each output written once. Only f32 (and pred, as 0/1)
 * values without broadcasts qualify; anything else runs instruction by
 * instruction. */

#define EP_BLOCK 256

typedef struct {
  FbOpcode       op;
  FbElemType     type;
  int            a, b, c;        /* operand nodes, -1 when absent */
  int            input;          /* parameter number, -2 for the product, -1 otherwise */
  const FbLiteral *constant;
  char           cmp;            /* compare: 'l' LT, 'L' LE, 'g' GT, 'G' GE, 'e' EQ, 'n' NE */
} EpNode;

struct _FbCpuEpilogue {
  const FbInstr *product;
  int            n_nodes;
  EpNode        *nodes;
  int            n_roots;
  int           *roots;          /* node of each output leaf */
};

static gboolean
ep_op_ok (FbOpcode op)
{
  switch (op)
    {
    case FB_OP_ADD: case FB_OP_SUBTRACT: case FB_OP_MULTIPLY: case FB_OP_DIVIDE:
    case FB_OP_MAXIMUM: case FB_OP_MINIMUM: case FB_OP_NEGATE: case FB_OP_EXP: case FB_OP_LOG:
    case FB_OP_TANH: case FB_OP_LOGISTIC: case FB_OP_RSQRT: case FB_OP_SQRT: case FB_OP_ABS:
    case FB_OP_COMPARE: case FB_OP_SELECT: case FB_OP_CONVERT: case FB_OP_COPY:
      return TRUE;
    default:
      return FALSE;
    }
}

void
_fb_cpu_epilogue_free (FbCpuEpilogue *ep)
{
  if (ep == NULL)
    return;
  g_free (ep->nodes);
  g_free (ep->roots);
  g_free (ep);
}

const FbInstr *
_fb_cpu_epilogue_product (FbCpuEpilogue *ep)
{
  return ep->product;
}

FbCpuEpilogue *
_fb_cpu_epilogue_new (const FbInstr *fusion)
{
  FbComputation *comp = fb_instr_comp (fusion, FB_A_CALLS);
  if (comp == NULL || comp->root == NULL)
    return NULL;
  const FbInstr *product = NULL;
  for (FbInstr *i = comp->first; i; i = i->next)
    if (i->opcode == FB_OP_DOT || i->opcode == FB_OP_CONVOLUTION)
      {
        if (product != NULL)
          return NULL;
        product = i;
      }
  if (product == NULL || product->shape->type != FB_F32)
    return NULL;
  for (int k = 0; k < product->n_operands; k++)
    if (product->operands[k]->opcode != FB_OP_PARAMETER)
      return NULL;

  g_autoptr (FbCpuEpilogue) ep = g_new0 (FbCpuEpilogue, 1);
  ep->product = product;
  ep->nodes = g_new0 (EpNode, comp->n_instrs);
  GHashTable *index = g_hash_table_new (NULL, NULL);
  gboolean ok = TRUE;
  for (FbInstr *i = comp->first; i && ok; i = i->next)
    {
      if (i == comp->root && i->opcode == FB_OP_TUPLE)
        break;
      gboolean used_by_product = FALSE;
      for (int u = 0; u < i->n_users; u++)
        used_by_product |= i->users[u] == product;
      if (i->opcode == FB_OP_PARAMETER && used_by_product && i->n_users == 1)
        continue;   /* read by the GEMM only */
      if (!fb_shape_is_array (i->shape) || i->shape->rank != product->shape->rank
          || fb_shape_elements (i->shape) != fb_shape_elements (product->shape)
          || (i->shape->type != FB_F32 && i->shape->type != FB_PRED))
        {
          ok = FALSE;
          break;
        }
      EpNode *n = &ep->nodes[ep->n_nodes];
      *n = (EpNode) { i->opcode, i->shape->type, -1, -1, -1, -1, NULL, 0 };
      if (i == product)
        n->input = -2;
      else if (i->opcode == FB_OP_PARAMETER)
        n->input = (int) i->parameter_number;
      else if (i->opcode == FB_OP_CONSTANT && i->literal)
        n->constant = i->literal;
      else if (ep_op_ok (i->opcode))
        {
          int *slots[3] = { &n->a, &n->b, &n->c };
          for (int k = 0; k < i->n_operands && k < 3; k++)
            {
              gpointer v = g_hash_table_lookup (index, i->operands[k]);
              if (v == NULL)
                ok = FALSE;
              else
                *slots[k] = GPOINTER_TO_INT (v) - 1;
            }
          if (i->opcode == FB_OP_COMPARE)
            {
              const char *d = fb_instr_str (i, FB_A_DIRECTION);
              const char *t = fb_instr_str (i, FB_A_COMPARE_TYPE);
              if (d == NULL || (t && strcmp (t, "TOTALORDER") == 0))
                ok = FALSE;
              else
                n->cmp = strcmp (d, "LT") == 0 ? 'l' : strcmp (d, "LE") == 0 ? 'L' : strcmp (d, "GT") == 0 ? 'g'
                         : strcmp (d, "GE") == 0 ? 'G' : strcmp (d, "EQ") == 0 ? 'e' : 'n';
            }
        }
      else
        ok = FALSE;
      g_hash_table_insert (index, i, GINT_TO_POINTER (ep->n_nodes + 1));
      ep->n_nodes++;
    }
  if (ok)
    {
      const FbInstr *root = comp->root;
      int n_roots = root->opcode == FB_OP_TUPLE ? root->n_operands : 1;
      ep->n_roots = n_roots;
      ep->roots = g_new0 (int, MAX (n_roots, 1));
      for (int k = 0; k < n_roots && ok; k++)
        {
          const FbInstr *r = root->opcode == FB_OP_TUPLE ? root->operands[k] : root;
          gpointer v = g_hash_table_lookup (index, r);
          ok = v != NULL;
          ep->roots[k] = v ? GPOINTER_TO_INT (v) - 1 : 0;
        }
    }
  g_hash_table_unref (index);
  return ok ? g_steal_pointer (&ep) : NULL;
}

typedef struct {
  FbCpuEpilogue    *ep;
  FbLiteral *const *ops;
  const float      *product;
  FbLiteral        *out;
} EpJob;

static inline float
ep_round (FbElemType t, float v)
{
  return t == FB_PRED ? (v != 0) : v;
}

static void
ep_range (gpointer data, int64_t begin, int64_t end)
{
  EpJob *j = data;
  FbCpuEpilogue *ep = j->ep;
  float *vals = g_new (float, (gsize) ep->n_nodes * EP_BLOCK);
  for (int64_t b0 = begin * EP_BLOCK; b0 < end * EP_BLOCK; b0 += EP_BLOCK)
    {
      int64_t total = fb_shape_elements (ep->product->shape);
      int m = (int) MIN (EP_BLOCK, total - b0);
      if (m <= 0)
        break;
      for (int k = 0; k < ep->n_nodes; k++)
        {
          const EpNode *n = &ep->nodes[k];
          float *v = vals + (gsize) k * EP_BLOCK;
          const float *a = n->a >= 0 ? vals + (gsize) n->a * EP_BLOCK : NULL;
          const float *b = n->b >= 0 ? vals + (gsize) n->b * EP_BLOCK : NULL;
          const float *c = n->c >= 0 ? vals + (gsize) n->c * EP_BLOCK : NULL;
          const FbLiteral *src = n->input >= 0 ? j->ops[n->input] : n->constant;
          if (n->input == -2)
            memcpy (v, j->product + b0, sizeof (float) * m);
          else if (src != NULL)
            {
              if (src->shape->type == FB_F32)
                memcpy (v, (const float *) src->data + b0, sizeof (float) * m);
              else
                for (int e = 0; e < m; e++)
                  v[e] = (float) fb_literal_get_f64 (src, b0 + e);
            }
          else
            switch (n->op)
              {
              case FB_OP_ADD: for (int e = 0; e < m; e++) v[e] = a[e] + b[e]; break;
              case FB_OP_SUBTRACT: for (int e = 0; e < m; e++) v[e] = a[e] - b[e]; break;
              case FB_OP_MULTIPLY: for (int e = 0; e < m; e++) v[e] = a[e] * b[e]; break;
              case FB_OP_DIVIDE: for (int e = 0; e < m; e++) v[e] = a[e] / b[e]; break;
              case FB_OP_MAXIMUM:
                for (int e = 0; e < m; e++)
                  v[e] = isnan (b[e]) ? b[e] : (a[e] >= b[e] || isnan (a[e])) ? a[e] : b[e];
                break;
              case FB_OP_MINIMUM:
                for (int e = 0; e < m; e++)
                  v[e] = isnan (b[e]) ? b[e] : (a[e] <= b[e] || isnan (a[e])) ? a[e] : b[e];
                break;
              case FB_OP_NEGATE: for (int e = 0; e < m; e++) v[e] = -a[e]; break;
              case FB_OP_EXP: for (int e = 0; e < m; e++) v[e] = (float) exp (a[e]); break;
              case FB_OP_LOG: for (int e = 0; e < m; e++) v[e] = (float) log (a[e]); break;
              case FB_OP_TANH: for (int e = 0; e < m; e++) v[e] = (float) tanh (a[e]); break;
              case FB_OP_LOGISTIC: for (int e = 0; e < m; e++) v[e] = (float) (1.0 / (1.0 + exp (-(double) a[e]))); break;
              case FB_OP_RSQRT: for (int e = 0; e < m; e++) v[e] = (float) (1.0 / sqrt (a[e])); break;
              case FB_OP_SQRT: for (int e = 0; e < m; e++) v[e] = sqrtf (a[e]); break;
              case FB_OP_ABS: for (int e = 0; e < m; e++) v[e] = fabsf (a[e]); break;
              case FB_OP_SELECT: for (int e = 0; e < m; e++) v[e] = a[e] != 0 ? b[e] : c[e]; break;
              case FB_OP_CONVERT:
              case FB_OP_COPY: for (int e = 0; e < m; e++) v[e] = ep_round (n->type, a[e]); break;
              case FB_OP_COMPARE:
                for (int e = 0; e < m; e++)
                  switch (n->cmp)
                    {
                    case 'l': v[e] = a[e] < b[e]; break;
                    case 'L': v[e] = a[e] <= b[e]; break;
                    case 'g': v[e] = a[e] > b[e]; break;
                    case 'G': v[e] = a[e] >= b[e]; break;
                    case 'e': v[e] = a[e] == b[e]; break;
                    default: v[e] = a[e] != b[e]; break;
                    }
                break;
              default:
                break;
              }
        }
      for (int r = 0; r < ep->n_roots; r++)
        {
          FbLiteral *o = j->out->elems ? j->out->elems[r] : j->out;
          const float *v = vals + (gsize) ep->roots[r] * EP_BLOCK;
          if (o->shape->type == FB_F32)
            memcpy ((float *) o->data + b0, v, sizeof (float) * m);
          else
            for (int e = 0; e < m; e++)
              o->data[b0 + e] = v[e] != 0;
        }
    }
  g_free (vals);
}

gboolean
_fb_cpu_epilogue_run (FbCpuPool *pool, FbCpuEpilogue *ep, FbLiteral *const *ops, const FbLiteral *product,
                      FbLiteral *out, GError **error)
{
  if ((out->elems ? out->n_elems : 1) != ep->n_roots)
    {
      _fb_cpu_error (error, ep->product, "the epilogue has %d outputs, the fusion %d", ep->n_roots,
                     out->elems ? out->n_elems : 1);
      return FALSE;
    }
  EpJob j = { ep, ops, (const float *) product->data, out };
  int64_t blocks = (fb_shape_elements (product->shape) + EP_BLOCK - 1) / EP_BLOCK;
  _fb_cpu_pool_parallel_for (pool, blocks, 16, ep_range, &j);
  return TRUE;
}
