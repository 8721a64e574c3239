/* SPDX-License-Identifier: MIT
 *
 * The CPU backend's thread pool: one worker per core unless told otherwise.
 * parallel_for hands out chunks of a range through an atomic counter; the
 * calling thread works too and waits for the rest. The pool is the one owner
 * of the machine's threads: around a BLAS call the workers sleep and BLAS
 * gets the same thread count, so the two never compete for cores.
 */
#include "fb-cpu-private.h"

#include <cblas.h>

struct _FbCpuPool {
  int       n_threads;     /* including the caller */
  GThread **workers;
  GMutex    lock;
  GCond     work_cond, done_cond;
  guint64   generation;    /* bumped for every parallel_for */
  gboolean  quit;

  /* the current job */
  FbCpuRangeFn fn;
  gpointer     data;
  int64_t      n, chunk;
  gint64       next;       /* atomic: next chunk index */
  int          busy;       /* workers still in the current job */
};

static void
run_chunks (FbCpuPool *pool)
{
  int64_t n_chunks = (pool->n + pool->chunk - 1) / pool->chunk;
  for (;;)
    {
      int64_t c = __atomic_fetch_add (&pool->next, 1, __ATOMIC_RELAXED);
      if (c >= n_chunks)
        break;
      int64_t b = c * pool->chunk;
      pool->fn (pool->data, b, MIN (pool->n, b + pool->chunk));
    }
}

static gpointer
worker_main (gpointer user_data)
{
  FbCpuPool *pool = user_data;
  guint64 seen = 0;

  g_mutex_lock (&pool->lock);
  for (;;)
    {
      while (!pool->quit && pool->generation == seen)
        g_cond_wait (&pool->work_cond, &pool->lock);
      if (pool->quit)
        break;
      seen = pool->generation;
      g_mutex_unlock (&pool->lock);
      run_chunks (pool);
      g_mutex_lock (&pool->lock);
      if (--pool->busy == 0)
        g_cond_signal (&pool->done_cond);
    }
  g_mutex_unlock (&pool->lock);
  return NULL;
}

FbCpuPool *
_fb_cpu_pool_new (int threads)
{
  FbCpuPool *pool = g_new0 (FbCpuPool, 1);
  pool->n_threads = threads > 0 ? threads : (int) g_get_num_processors ();
  pool->n_threads = CLAMP (pool->n_threads, 1, 256);
  g_mutex_init (&pool->lock);
  g_cond_init (&pool->work_cond);
  g_cond_init (&pool->done_cond);
  pool->workers = g_new0 (GThread *, pool->n_threads);
  for (int i = 1; i < pool->n_threads; i++)
    pool->workers[i] = g_thread_new ("fb-cpu-worker", worker_main, pool);
  return pool;
}

void
_fb_cpu_pool_free (FbCpuPool *pool)
{
  if (pool == NULL)
    return;
  g_mutex_lock (&pool->lock);
  pool->quit = TRUE;
  g_cond_broadcast (&pool->work_cond);
  g_mutex_unlock (&pool->lock);
  for (int i = 1; i < pool->n_threads; i++)
    g_thread_join (pool->workers[i]);
  g_free (pool->workers);
  g_mutex_clear (&pool->lock);
  g_cond_clear (&pool->work_cond);
  g_cond_clear (&pool->done_cond);
  g_free (pool);
}

int
_fb_cpu_pool_threads (FbCpuPool *pool)
{
  return pool ? pool->n_threads : 1;
}

void
_fb_cpu_pool_parallel_for (FbCpuPool *pool, int64_t n, int64_t grain, FbCpuRangeFn fn, gpointer data)
{
  if (n <= 0)
    return;
  grain = MAX (grain, 1);
  if (pool == NULL || pool->n_threads == 1 || n <= grain)
    {
      fn (data, 0, n);
      return;
    }
  /* About four chunks per thread balances uneven chunks without much overhead. */
  int64_t chunk = MAX (grain, (n + pool->n_threads * 4 - 1) / (pool->n_threads * 4));

  g_mutex_lock (&pool->lock);
  pool->fn = fn;
  pool->data = data;
  pool->n = n;
  pool->chunk = chunk;
  pool->next = 0;
  pool->busy = pool->n_threads - 1;
  pool->generation++;
  g_cond_broadcast (&pool->work_cond);
  g_mutex_unlock (&pool->lock);

  run_chunks (pool);

  g_mutex_lock (&pool->lock);
  while (pool->busy > 0)
    g_cond_wait (&pool->done_cond, &pool->lock);
  g_mutex_unlock (&pool->lock);
}

void
_fb_cpu_pool_blas_begin (FbCpuPool *pool)
{
  /* The workers are parked on work_cond between jobs, so only BLAS runs. */
  openblas_set_num_threads (_fb_cpu_pool_threads (pool));
}

void
_fb_cpu_pool_blas_end (FbCpuPool *pool)
{
}
