/* SPDX-License-Identifier: MIT
 *
 * bench-cpu's GEMM section: the measurement behind the backend's choice of
 * GEMM library. It runs one training step of each zoo model on the CPU
 * backend and records every f32 product the step hands to a library, as
 * the slab one thread multiplies. Then it times each of those shapes, on one
 * thread, with OpenBLAS, with oneDNN, and with BLIS when its serial build
 * is installed (it is loaded at run time into a scope of its own: it
 * exports the same cblas and BLAS names as OpenBLAS, which would otherwise
 * answer its internal calls). Per model it prints the time per step of the products with
 * each library alone and with the backend's choice, against the best
 * library for every shape.
 */
#include "bench-cpu-gemm.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cblas.h>

#include "fb-cpu-private.h"
#include "fb-runner.h"
#include "fb-zoo.h"

#ifndef FB_BLIS_PATH
#define FB_BLIS_PATH "libblis.so.4"
#endif

typedef struct {
  gboolean ta, tb;
  int64_t  m, n, k, lda, ldb, ldc;
} Shape;

typedef struct {
  Shape        s;
  FbCpuGemmLib chosen;
  int          calls;   /* per step */
} Seen;

typedef struct {
  GMutex  lock;
  GArray *seen;         /* of Seen */
} Log;

static void
observe (gpointer data, FbCpuGemmLib lib, gboolean ta, gboolean tb, int64_t m, int64_t n, int64_t k,
         int64_t lda, int64_t ldb, int64_t ldc)
{
  Log *log = data;
  Shape s = { ta, tb, m, n, k, lda, ldb, ldc };
  g_mutex_lock (&log->lock);
  guint i;
  for (i = 0; i < log->seen->len; i++)
    if (memcmp (&g_array_index (log->seen, Seen, i).s, &s, sizeof s) == 0)
      break;
  if (i == log->seen->len)
    {
      Seen z = { s, lib, 0 };
      g_array_append_val (log->seen, z);
    }
  g_array_index (log->seen, Seen, i).calls++;
  g_mutex_unlock (&log->lock);
}

typedef void (*CblasSgemm) (int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                            const float *b, int ldb, float beta, float *c, int ldc);

enum { LIB_OPENBLAS, LIB_ONEDNN, LIB_BLIS, N_LIBS };
static const char *const lib_names[N_LIBS] = { "OpenBLAS", "oneDNN", "BLIS" };

static void
multiply (int lib, CblasSgemm blis, const Shape *s, const float *a, const float *b, float *c)
{
  if (lib == LIB_BLIS)
    blis (CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, (int) s->m,
          (int) s->n, (int) s->k, 1.0f, a, (int) s->lda, b, (int) s->ldb, 0.0f, c, (int) s->ldc);
  else
    _fb_cpu_sgemm_here (lib == LIB_ONEDNN ? FB_CPU_GEMM_ONEDNN : FB_CPU_GEMM_OPENBLAS, s->ta, s->tb, s->m, s->n,
                        s->k, a, s->lda, b, s->ldb, 0.0f, c, s->ldc);
}

/* Seconds per product: the fastest of 5 rounds, each long enough to read. */
static double
time_shape (int lib, CblasSgemm blis, const Shape *s, const float *a, const float *b, float *c)
{
  double madds = (double) s->m * (double) s->n * (double) s->k;
  int reps = CLAMP ((int) (2e7 / MAX (madds, 1.0)), 3, 2000);
  multiply (lib, blis, s, a, b, c);    /* oneDNN generates its kernels on first use */
  double best = INFINITY;
  for (int round = 0; round < 5; round++)
    {
      double t0 = g_get_monotonic_time () / 1e6;
      for (int r = 0; r < reps; r++)
        multiply (lib, blis, s, a, b, c);
      best = MIN (best, (g_get_monotonic_time () / 1e6 - t0) / reps);
    }
  return best;
}

static gboolean
record_step (FbModule *m, Log *log, GError **error)
{
  FbRunOptions ro;
  fb_run_options_init (&ro);
  ro.backend = "cpu";
  ro.steps = 1;
  ro.init = fb_zoo_init_fn;
  ro.data = fb_zoo_data_fn;
  FbRunResult r;
  _fb_cpu_gemm_observe (observe, log);
  gboolean ok = fb_runner_run (m, &ro, &r, error);
  _fb_cpu_gemm_observe (NULL, NULL);
  if (ok)
    fb_run_result_clear (&r);
  return ok;
}

gboolean
fb_bench_gemm_section (FbBenchStepFn step, GError **error)
{
  printf ("\n== GEMM libraries on the shapes of the zoo's steps (one thread per product, us per call)\n");
  printf ("  in use: %s\n", _fb_cpu_gemm_library ());
  void *blis_lib = dlopen (FB_BLIS_PATH, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  CblasSgemm blis = blis_lib ? (CblasSgemm) dlsym (blis_lib, "cblas_sgemm") : NULL;
  if (blis == NULL)
    printf ("  BLIS: not measured (%s could not be loaded; Debian's libblis4-serial provides it)\n",
            FB_BLIS_PATH);
  int n_libs = blis ? N_LIBS : LIB_BLIS;
  /* One thread per product, as the backend runs them. */
  int blas_threads = openblas_get_num_threads ();
  openblas_set_num_threads (1);

  int n_models;
  const FbZooModelInfo *models = fb_zoo_models (&n_models);
  gboolean ok = TRUE;
  for (int mi = 0; ok && mi < n_models; mi++)
    {
      Log log = { 0 };
      g_mutex_init (&log.lock);
      log.seen = g_array_new (FALSE, FALSE, sizeof (Seen));
      FbModule *m = step (models[mi].name, error);
      ok = m != NULL && record_step (m, &log, error);
      if (m)
        fb_module_free (m);
      printf (" %s: %u shapes\n", models[mi].name, ok ? log.seen->len : 0);
      if (ok)
        printf ("  %5s  %-3s %17s %9s %9s%s  %s\n", "calls", "t", "m x n x k", lib_names[0], lib_names[1],
                blis ? "      BLIS" : "", "backend's choice");
      double total[N_LIBS] = { 0 }, chosen = 0, best_total = 0;
      for (guint i = 0; ok && i < log.seen->len; i++)
        {
          const Seen *z = &g_array_index (log.seen, Seen, i);
          const Shape *s = &z->s;
          gsize na = (gsize) (s->ta ? s->k : s->m) * s->lda, nb = (gsize) (s->tb ? s->n : s->k) * s->ldb;
          gsize nc = (gsize) s->m * s->ldc;
          float *a = g_malloc (MAX (na, 1) * sizeof (float)), *b = g_malloc (MAX (nb, 1) * sizeof (float));
          float *c = g_malloc0 (MAX (nc, 1) * sizeof (float));
          for (gsize x = 0; x < na; x++)
            a[x] = (float) (x % 13) * 0.01f;
          for (gsize x = 0; x < nb; x++)
            b[x] = (float) (x % 7) * 0.02f;
          double t[N_LIBS], best = INFINITY;
          for (int l = 0; l < n_libs; l++)
            {
              t[l] = time_shape (l, blis, s, a, b, c);
              total[l] += t[l] * z->calls;
              best = MIN (best, t[l]);
            }
          int pick = z->chosen == FB_CPU_GEMM_ONEDNN ? LIB_ONEDNN : LIB_OPENBLAS;
          chosen += t[pick] * z->calls;
          best_total += best * z->calls;
          printf ("  %5d  %c%c  %5ldx%5ldx%5ld %9.1f %9.1f", z->calls, s->ta ? 'T' : 'N', s->tb ? 'T' : 'N',
                  (long) s->m, (long) s->n, (long) s->k, t[0] * 1e6, t[1] * 1e6);
          if (blis)
            printf (" %9.1f", t[2] * 1e6);
          printf ("  %s%s\n", lib_names[pick], t[pick] <= best * 1.05 ? "" : " (not the fastest)");
          g_free (a);
          g_free (b);
          g_free (c);
        }
      if (ok && log.seen->len > 0)
        {
          printf ("  per step:");
          for (int l = 0; l < n_libs; l++)
            printf (" %s %.0f us,", lib_names[l], total[l] * 1e6);
          printf (" backend's choice %.0f us = %.2fx the fastest library per shape\n", chosen * 1e6,
                  chosen / best_total);
        }
      g_array_free (log.seen, TRUE);
      g_mutex_clear (&log.lock);
    }
  openblas_set_num_threads (blas_threads);
  if (blis_lib)
    dlclose (blis_lib);
  return ok;
}
