/* SPDX-License-Identifier: MIT
 *
 * Linear algebra and Fourier transforms on the CPU backend: cholesky,
 * triangular-solve and fft, with XLA's semantics.
 *
 * All three work in double precision on a copy of each matrix or line and
 * round once when they store the result, so f32 results match a reference
 * computed in f64 to f32 precision. Batches of matrices and the lines of an
 * fft are independent and run in parallel over the thread pool.
 *
 *   - cholesky reads the triangle that `lower` names and writes the factor
 *     into it (L with A = L L^T, or U with A = U^T U), zeros in the other
 *     triangle; a matrix that is not positive definite gives NaN throughout.
 *   - triangular-solve solves op(a) x = b (left_side=true) or x op(a) = b,
 *     where op is the identity or the transpose (transpose_a), a is read
 *     from its `lower` or upper triangle and unit_diagonal takes its
 *     diagonal as ones.
 *   - fft: FFT and IFFT (complex to complex, IFFT scaled by 1/n), RFFT (real
 *     to the n/2+1 non-negative frequencies of the last dimension) and
 *     IRFFT (back, completing the spectrum by Hermitian symmetry), over the
 *     last one to three dimensions. Power-of-two lengths use an iterative
 *     radix-2 transform, others a direct sum with a table of roots.
 */
#include "fb-cpu-private.h"

#include <math.h>
#include <string.h>

#define MAX_RANK 16

/* ------------------------------------------------------------ helpers */

static inline double
load (const FbLiteral *lit, int64_t i)
{
  switch (lit->shape->type)
    {
    case FB_F32: return ((const float *) lit->data)[i];
    case FB_F64: return ((const double *) lit->data)[i];
    default: return fb_literal_get_f64 (lit, i);
    }
}

static inline void
store (FbLiteral *lit, int64_t i, double v)
{
  switch (lit->shape->type)
    {
    case FB_F32: ((float *) lit->data)[i] = (float) v; return;
    case FB_F64: ((double *) lit->data)[i] = v; return;
    default: fb_literal_set_f64 (lit, i, v); return;
    }
}

/* Element @i as (re, im); a real element has im = 0. */
static inline void
load_complex (const FbLiteral *lit, int64_t i, double *re, double *im)
{
  if (lit->shape->type == FB_C64)
    {
      const float *p = (const float *) lit->data + 2 * i;
      *re = p[0];
      *im = p[1];
    }
  else if (lit->shape->type == FB_C128)
    {
      const double *p = (const double *) lit->data + 2 * i;
      *re = p[0];
      *im = p[1];
    }
  else
    {
      *re = load (lit, i);
      *im = 0;
    }
}

static inline void
store_complex (FbLiteral *lit, int64_t i, double re, double im)
{
  if (lit->shape->type == FB_C64)
    {
      float *p = (float *) lit->data + 2 * i;
      p[0] = (float) re;
      p[1] = (float) im;
    }
  else if (lit->shape->type == FB_C128)
    {
      double *p = (double *) lit->data + 2 * i;
      p[0] = re;
      p[1] = im;
    }
  else
    store (lit, i, re);
}

/* A boolean attribute kept verbatim by the parser (`lower=true`). */
static gboolean
flag (const FbInstr *instr, const char *name)
{
  const FbAttr *a = fb_instr_get_raw_attr (instr, name);
  if (a == NULL)
    return FALSE;
  switch (a->kind)
    {
    case FB_AV_BOOL:
    case FB_AV_INT:
      return a->v.i != 0;
    case FB_AV_RAW:
    case FB_AV_IDENT:
    case FB_AV_STRING:
      return a->v.s != NULL && (g_ascii_strcasecmp (a->v.s, "true") == 0 || strcmp (a->v.s, "1") == 0);
    default:
      return FALSE;
    }
}

static const char *
text (const FbInstr *instr, const char *name)
{
  const FbAttr *a = fb_instr_get_raw_attr (instr, name);
  if (a != NULL && (a->kind == FB_AV_RAW || a->kind == FB_AV_IDENT || a->kind == FB_AV_STRING))
    return a->v.s;
  return NULL;
}

/* @a is a batch of real floating-point n x n matrices. */
static gboolean
square_matrices (const FbInstr *instr, const FbLiteral *a, int64_t *n, int64_t *batches, GError **error)
{
  const FbShape *s = a->shape;
  if (!fb_shape_is_array (s) || s->rank < 2 || s->dims[s->rank - 1] != s->dims[s->rank - 2])
    {
      _fb_cpu_error (error, instr, "the operand must be a square matrix or a batch of them");
      return FALSE;
    }
  if (fb_elem_type_kind (s->type) != FB_KIND_FLOAT)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED,
                   "%%%s: %s supports real floating-point matrices, not %s", instr->name,
                   fb_opcode_name (instr->opcode), fb_elem_type_name (s->type));
      return FALSE;
    }
  *n = s->dims[s->rank - 1];
  *batches = *n > 0 ? fb_shape_elements (s) / (*n * *n) : 0;
  return TRUE;
}

/* ----------------------------------------------------------- cholesky */

typedef struct {
  const FbLiteral *a;
  FbLiteral       *out;
  int64_t          n;
  gboolean         lower;
} CholJob;

static void
cholesky_range (gpointer user_data, int64_t begin, int64_t end)
{
  CholJob *j = user_data;
  int64_t n = j->n;
  g_autofree double *m = g_new (double, MAX (n * n, 1));
  for (int64_t b = begin; b < end; b++)
    {
      int64_t base = b * n * n;
      /* m holds the lower triangle of the symmetric matrix, row-major;
       * it is factored in place, column by column. */
      for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c <= r; c++)
          m[r * n + c] = load (j->a, base + (j->lower ? r * n + c : c * n + r));
      gboolean definite = TRUE;
      for (int64_t c = 0; c < n && definite; c++)
        {
          double diag = m[c * n + c];
          for (int64_t k = 0; k < c; k++)
            diag -= m[c * n + k] * m[c * n + k];
          if (!(diag > 0))
            {
              definite = FALSE;
              break;
            }
          double pivot = sqrt (diag);
          m[c * n + c] = pivot;
          for (int64_t r = c + 1; r < n; r++)
            {
              double v = m[r * n + c];
              for (int64_t k = 0; k < c; k++)
                v -= m[r * n + k] * m[c * n + k];
              m[r * n + c] = v / pivot;
            }
        }
      for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < n; c++)
          {
            double v;
            if (!definite)
              v = NAN;
            else if (j->lower)
              v = c <= r ? m[r * n + c] : 0.0;
            else
              v = r <= c ? m[c * n + r] : 0.0;
            store (j->out, base + r * n + c, v);
          }
    }
}

gboolean
_fb_cpu_cholesky (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  int64_t n, batches;
  if (instr->n_operands != 1 || !square_matrices (instr, ops[0], &n, &batches, error))
    return FALSE;
  if (!fb_shape_is_array (out->shape) || !fb_shape_compatible (out->shape, ops[0]->shape))
    {
      _fb_cpu_error (error, instr, "the result must have the operand's shape");
      return FALSE;
    }
  CholJob j = { ops[0], out, n, flag (instr, "lower") };
  _fb_cpu_pool_parallel_for (rt->pool, batches, MAX (1, 4096 / MAX (n * n * n, 1)), cholesky_range, &j);
  return TRUE;
}

/* --------------------------------------------------- triangular-solve */

typedef struct {
  const FbLiteral *a, *b;
  FbLiteral       *out;
  int64_t          m, rows, cols;
  gboolean         left, lower, unit, trans;
} SolveJob;

static void
solve_range (gpointer user_data, int64_t begin, int64_t end)
{
  SolveJob *j = user_data;
  int64_t m = j->m, rows = j->rows, cols = j->cols;
  g_autofree double *t = g_new (double, MAX (m * m, 1));     /* op(a), zero off its triangle */
  g_autofree double *x = g_new (double, MAX (rows * cols, 1));
  /* The triangle op(a) keeps: transposing swaps lower and upper. */
  gboolean t_lower = j->lower != j->trans;
  for (int64_t bt = begin; bt < end; bt++)
    {
      int64_t abase = bt * m * m, bbase = bt * rows * cols;
      for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < m; c++)
          {
            gboolean kept = t_lower ? c <= r : c >= r;
            double v = kept ? load (j->a, abase + (j->trans ? c * m + r : r * m + c)) : 0.0;
            t[r * m + c] = r == c && j->unit ? 1.0 : v;
          }
      for (int64_t i = 0; i < rows * cols; i++)
        x[i] = load (j->b, bbase + i);
      if (j->left)
        {
          /* t x = b: each column of x by substitution, top down for a
           * lower t, bottom up for an upper one. */
          for (int64_t c = 0; c < cols; c++)
            for (int64_t s = 0; s < m; s++)
              {
                int64_t r = t_lower ? s : m - 1 - s;
                double v = x[r * cols + c];
                int64_t k0 = t_lower ? 0 : r + 1, k1 = t_lower ? r : m;
                for (int64_t k = k0; k < k1; k++)
                  v -= t[r * m + k] * x[k * cols + c];
                x[r * cols + c] = v / t[r * m + r];
              }
        }
      else
        {
          /* x t = b: each row of x, element c from column c of t; an upper
           * t is solved left to right, a lower one right to left. */
          for (int64_t r = 0; r < rows; r++)
            for (int64_t s = 0; s < m; s++)
              {
                int64_t c = t_lower ? m - 1 - s : s;
                double v = x[r * cols + c];
                int64_t k0 = t_lower ? c + 1 : 0, k1 = t_lower ? m : c;
                for (int64_t k = k0; k < k1; k++)
                  v -= x[r * cols + k] * t[k * m + c];
                x[r * cols + c] = v / t[c * m + c];
              }
        }
      for (int64_t i = 0; i < rows * cols; i++)
        store (j->out, bbase + i, x[i]);
    }
}

gboolean
_fb_cpu_triangular_solve (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out,
                          GError **error)
{
  int64_t m, batches;
  if (instr->n_operands != 2 || !square_matrices (instr, ops[0], &m, &batches, error))
    return FALSE;
  const FbShape *as = ops[0]->shape, *bs = ops[1]->shape;
  SolveJob j = { ops[0], ops[1], out, m, 0, 0, flag (instr, "left_side"), flag (instr, "lower"),
                 flag (instr, "unit_diagonal"), FALSE };
  const char *ta = text (instr, "transpose_a");
  if (ta != NULL && strcmp (ta, "NO_TRANSPOSE") != 0)
    {
      /* ADJOINT of a real matrix is its transpose. */
      if (strcmp (ta, "TRANSPOSE") != 0 && strcmp (ta, "ADJOINT") != 0)
        {
          _fb_cpu_error (error, instr, "transpose_a=%s is not NO_TRANSPOSE, TRANSPOSE or ADJOINT", ta);
          return FALSE;
        }
      j.trans = TRUE;
    }
  if (!fb_shape_is_array (bs) || bs->rank != as->rank || bs->type != as->type
      || !fb_shape_is_array (out->shape) || !fb_shape_compatible (out->shape, bs))
    {
      _fb_cpu_error (error, instr, "b and the result must have a's rank and type and the same shape");
      return FALSE;
    }
  for (int d = 0; d < as->rank - 2; d++)
    if (as->dims[d] != bs->dims[d])
      {
        _fb_cpu_error (error, instr, "a and b have different batch dimensions");
        return FALSE;
      }
  j.rows = bs->dims[bs->rank - 2];
  j.cols = bs->dims[bs->rank - 1];
  if ((j.left ? j.rows : j.cols) != m)
    {
      _fb_cpu_error (error, instr, "b's %s dimension must have size %" G_GINT64_FORMAT,
                     j.left ? "second-to-last" : "last", m);
      return FALSE;
    }
  _fb_cpu_pool_parallel_for (rt->pool, batches, 1, solve_range, &j);
  return TRUE;
}

/* ---------------------------------------------------------------- fft */

/* One transform length: its roots of unity, and for powers of two the
 * bit-reversal permutation. */
typedef struct {
  int64_t  n;
  gboolean pow2;
  double  *roots;       /* (cos, sin) of -2 pi k / n, k < n */
  int64_t *reversed;    /* pow2 only */
} Plan;

static void
plan_init (Plan *p, int64_t n)
{
  p->n = n;
  p->pow2 = n > 0 && (n & (n - 1)) == 0;
  p->roots = g_new (double, 2 * MAX (n, 1));
  for (int64_t k = 0; k < n; k++)
    {
      double angle = -2.0 * G_PI * (double) k / (double) n;
      p->roots[2 * k] = cos (angle);
      p->roots[2 * k + 1] = sin (angle);
    }
  p->reversed = NULL;
  if (p->pow2)
    {
      int log2n = 0;
      while (((int64_t) 1 << log2n) < n)
        log2n++;
      p->reversed = g_new (int64_t, MAX (n, 1));
      for (int64_t i = 0; i < n; i++)
        {
          int64_t r = 0;
          for (int b = 0; b < log2n; b++)
            if (i & ((int64_t) 1 << b))
              r |= (int64_t) 1 << (log2n - 1 - b);
          p->reversed[i] = r;
        }
    }
}

static void
plan_clear (Plan *p)
{
  g_clear_pointer (&p->roots, g_free);
  g_clear_pointer (&p->reversed, g_free);
}

/* In-place transform of @z (n interleaved complex values); @inverse uses
 * conjugate roots and scales by 1/n. @tmp has room for n values. */
static void
transform (const Plan *p, double *z, double *tmp, gboolean inverse)
{
  int64_t n = p->n;
  double conj = inverse ? -1.0 : 1.0;
  if (n <= 1)
    return;
  if (p->pow2)
    {
      for (int64_t i = 0; i < n; i++)
        {
          tmp[2 * p->reversed[i]] = z[2 * i];
          tmp[2 * p->reversed[i] + 1] = z[2 * i + 1];
        }
      for (int64_t len = 2; len <= n; len *= 2)
        {
          int64_t half = len / 2, step = n / len;
          for (int64_t start = 0; start < n; start += len)
            for (int64_t k = 0; k < half; k++)
              {
                double wr = p->roots[2 * k * step], wi = conj * p->roots[2 * k * step + 1];
                double *u = tmp + 2 * (start + k), *v = tmp + 2 * (start + k + half);
                double tr = v[0] * wr - v[1] * wi, ti = v[0] * wi + v[1] * wr;
                v[0] = u[0] - tr;
                v[1] = u[1] - ti;
                u[0] += tr;
                u[1] += ti;
              }
        }
    }
  else
    for (int64_t k = 0; k < n; k++)
      {
        double sr = 0, si = 0;
        int64_t w = 0;               /* k * t mod n */
        for (int64_t t = 0; t < n; t++)
          {
            double wr = p->roots[2 * w], wi = conj * p->roots[2 * w + 1];
            sr += z[2 * t] * wr - z[2 * t + 1] * wi;
            si += z[2 * t] * wi + z[2 * t + 1] * wr;
            w += k;
            if (w >= n)
              w -= n;
          }
        tmp[2 * k] = sr;
        tmp[2 * k + 1] = si;
      }
  double scale = inverse ? 1.0 / (double) n : 1.0;
  for (int64_t i = 0; i < 2 * n; i++)
    z[i] = tmp[i] * scale;
}

typedef struct {
  double     *z;          /* the whole array, interleaved complex, full sizes */
  const Plan *plan;
  int64_t     inner;      /* stride of the transformed dimension, in complex values */
  gboolean    inverse;
  gboolean    hermitian;  /* IRFFT: first fill the upper half of each line */
} LineJob;

/* Lines are numbered outer-major: line l starts at (l / inner) * n * inner + l % inner. */
static void
lines_range (gpointer user_data, int64_t begin, int64_t end)
{
  LineJob *j = user_data;
  int64_t n = j->plan->n, inner = j->inner;
  g_autofree double *line = g_new (double, 2 * MAX (n, 1));
  g_autofree double *tmp = g_new (double, 2 * MAX (n, 1));
  for (int64_t l = begin; l < end; l++)
    {
      double *base = j->z + 2 * ((l / inner) * n * inner + l % inner);
      for (int64_t k = 0; k < n; k++)
        {
          line[2 * k] = base[2 * k * inner];
          line[2 * k + 1] = base[2 * k * inner + 1];
        }
      if (j->hermitian)
        for (int64_t k = n / 2 + 1; k < n; k++)
          {
            line[2 * k] = line[2 * (n - k)];
            line[2 * k + 1] = -line[2 * (n - k) + 1];
          }
      transform (j->plan, line, tmp, j->inverse);
      for (int64_t k = 0; k < n; k++)
        {
          base[2 * k * inner] = line[2 * k];
          base[2 * k * inner + 1] = line[2 * k + 1];
        }
    }
}

static void
transform_dim (FbCpuPool *pool, double *z, int rank, const int64_t *dims, int d, gboolean inverse,
               gboolean hermitian)
{
  int64_t inner = 1, total = 1;
  for (int i = 0; i < rank; i++)
    total *= dims[i];
  for (int i = d + 1; i < rank; i++)
    inner *= dims[i];
  if (dims[d] <= 1 && !hermitian)
    return;
  if (dims[d] == 0)
    return;
  Plan plan;
  plan_init (&plan, dims[d]);
  LineJob j = { z, &plan, inner, inverse, hermitian };
  _fb_cpu_pool_parallel_for (pool, total / dims[d], MAX (1, 4096 / dims[d]), lines_range, &j);
  plan_clear (&plan);
}

gboolean
_fb_cpu_fft (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out, GError **error)
{
  const FbLiteral *x = ops[0];
  const FbShape *is = x->shape, *os = out->shape;
  const char *type = fb_instr_str (instr, FB_A_FFT_TYPE);
  const FbDims *len = fb_instr_dims (instr, FB_A_FFT_LENGTH);
  if (instr->n_operands != 1 || !fb_shape_is_array (is) || !fb_shape_is_array (os))
    {
      _fb_cpu_error (error, instr, "fft takes one array and gives one");
      return FALSE;
    }
  if (type == NULL || len == NULL || len->n < 1 || len->n > 3)
    {
      _fb_cpu_error (error, instr, "fft needs fft_type and an fft_length of 1 to 3 dimensions");
      return FALSE;
    }
  gboolean rfft = strcmp (type, "RFFT") == 0, irfft = strcmp (type, "IRFFT") == 0;
  gboolean ifft = strcmp (type, "IFFT") == 0;
  if (!rfft && !irfft && !ifft && strcmp (type, "FFT") != 0)
    {
      _fb_cpu_error (error, instr, "unknown fft_type %s (known: FFT, IFFT, RFFT, IRFFT)", type);
      return FALSE;
    }
  int rank = is->rank, nf = len->n;
  if (rank < nf || os->rank != rank || rank > MAX_RANK)
    {
      _fb_cpu_error (error, instr, "the operand and the result must have the same rank, at least %d", nf);
      return FALSE;
    }
  gboolean in_complex = !rfft, out_complex = !irfft;
  FbElemKind ik = fb_elem_type_kind (is->type), ok = fb_elem_type_kind (os->type);
  if ((ik == FB_KIND_COMPLEX) != in_complex || (ok == FB_KIND_COMPLEX) != out_complex
      || (!in_complex && ik != FB_KIND_FLOAT) || (!out_complex && ok != FB_KIND_FLOAT))
    {
      _fb_cpu_error (error, instr, "%s takes %s and gives %s values", type, in_complex ? "complex" : "real",
                     out_complex ? "complex" : "real");
      return FALSE;
    }
  /* The full (time-domain) sizes; only the last dimension of the complex
   * side of RFFT and IRFFT is shorter, n/2 + 1. */
  int64_t full[MAX_RANK], total = 1;
  for (int d = 0; d < rank; d++)
    {
      full[d] = d >= rank - nf ? len->v[d - (rank - nf)] : is->dims[d];
      int64_t short_last = full[d] / 2 + 1;
      gboolean last = d == rank - 1;
      int64_t want_in = last && irfft ? short_last : full[d], want_out = last && rfft ? short_last : full[d];
      if (full[d] < 0 || is->dims[d] != want_in || os->dims[d] != want_out)
        {
          _fb_cpu_error (error, instr, "dimension %d: the operand has %" G_GINT64_FORMAT " and the result %"
                         G_GINT64_FORMAT " elements, fft_length asks for %" G_GINT64_FORMAT " and %"
                         G_GINT64_FORMAT, d, is->dims[d], os->dims[d], want_in, want_out);
          return FALSE;
        }
      total *= full[d];
    }

  /* Work in a full-size complex array; the shorter side is a prefix of its
   * last dimension. */
  g_autofree double *z = g_new0 (double, 2 * MAX (total, 1));
  int64_t last_full = full[rank - 1];
  int64_t in_last = rank > 0 ? is->dims[rank - 1] : 1, n_in = fb_shape_elements (is);
  for (int64_t e = 0; rank > 0 && e < n_in; e++)
    {
      int64_t row = e / MAX (in_last, 1), col = e % MAX (in_last, 1);
      int64_t f = row * last_full + col;
      load_complex (x, e, &z[2 * f], &z[2 * f + 1]);
    }
  if (irfft)
    {
      for (int d = rank - nf; d < rank - 1; d++)
        transform_dim (rt->pool, z, rank, full, d, TRUE, FALSE);
      transform_dim (rt->pool, z, rank, full, rank - 1, TRUE, TRUE);
    }
  else
    for (int d = rank - nf; d < rank; d++)
      transform_dim (rt->pool, z, rank, full, d, ifft, FALSE);

  int64_t out_last = os->dims[rank - 1], n_out = fb_shape_elements (os);
  for (int64_t e = 0; e < n_out; e++)
    {
      int64_t row = e / MAX (out_last, 1), col = e % MAX (out_last, 1);
      int64_t f = row * last_full + col;
      store_complex (out, e, z[2 * f], z[2 * f + 1]);
    }
  return TRUE;
}
