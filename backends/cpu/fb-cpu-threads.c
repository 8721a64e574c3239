/* SPDX-License-Identifier: MIT
 *
 * The CPU backend's thread pool: one worker per core unless told otherwise.
 * parallel_for hands out chunks of a range through an atomic counter; the
 * calling thread works too and waits for the rest. The pool is the one owner
 * of the machine's threads: a GEMM is split over the pool with BLAS running
 * single-threaded in each part, so BLAS's own threads never compete with
 * the workers for cores.
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
  int          busy;       /* atomic: workers still in the current job */
  int          sleepers;   /* workers waiting on work_cond */

  int          blas_saved; /* BLAS's thread count before blas_begin */
};

/* Set while a thread runs a chunk of a job: a parallel_for inside a chunk
 * (the two GEMMs of a pair, each on its own thread) runs on that thread
 * alone, and the pool counts as one thread there. */
static __thread gboolean in_chunk;

static void
run_chunks (FbCpuPool *pool)
{
  gboolean outer = in_chunk;
  in_chunk = TRUE;
  int64_t n_chunks = (pool->n + pool->chunk - 1) / pool->chunk;
  for (;;)
    {
      int64_t c = __atomic_fetch_add (&pool->next, 1, __ATOMIC_RELAXED);
      if (c >= n_chunks)
        break;
      int64_t b = c * pool->chunk;
      pool->fn (pool->data, b, MIN (pool->n, b + pool->chunk));
    }
  in_chunk = outer;
}

/* How long an idle thread keeps polling for the next job before it sleeps
 * on a condition variable. The kernels of a training step follow one
 * another within microseconds, and waking a sleeping thread costs about as
 * much as a small kernel; a whole step's gap (feeding the results back,
 * the next batch) is far longer, so the workers sleep between steps. */
#define SPIN_US 200

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__)
  __asm__ __volatile__ ("yield");
#endif
}

/* What a polling thread waits for: a new job (the generation moved on
 * from the one it saw) or the end of the current one (no worker busy). */
static inline gboolean
new_job (const FbCpuPool *pool, guint64 seen)
{
  return __atomic_load_n (&pool->generation, __ATOMIC_ACQUIRE) != seen;
}

static inline gboolean
job_done (const FbCpuPool *pool, guint64 seen)
{
  return __atomic_load_n (&pool->busy, __ATOMIC_ACQUIRE) == 0;
}

/* Polls until @ready or SPIN_US pass; TRUE when it became ready. */
static inline gboolean
spin_until (gboolean (*ready) (const FbCpuPool *, guint64), const FbCpuPool *pool, guint64 seen)
{
  gint64 deadline = 0;
  for (guint it = 1;; it++)
    {
      if (ready (pool, seen))
        return TRUE;
      if ((it & 255) == 0)
        /* Every few microseconds, let a thread that waits for this core
         * run (on a busy machine, the one this loop waits for may be it);
         * on an idle machine this returns at once. */
        g_thread_yield ();
      if ((it & 127) == 0)
        {
          gint64 t = g_get_monotonic_time ();
          if (deadline == 0)
            deadline = t + SPIN_US;
          else if (t > deadline)
            return FALSE;
        }
      cpu_relax ();
    }
}

static gpointer
worker_main (gpointer user_data)
{
  FbCpuPool *pool = user_data;
  guint64 seen = 0;

  for (;;)
    {
      spin_until (new_job, pool, seen);
      g_mutex_lock (&pool->lock);
      while (!pool->quit && pool->generation == seen)
        {
          pool->sleepers++;
          g_cond_wait (&pool->work_cond, &pool->lock);
          pool->sleepers--;
        }
      if (pool->quit)
        break;
      seen = pool->generation;
      g_mutex_unlock (&pool->lock);
      run_chunks (pool);
      if (__atomic_sub_fetch (&pool->busy, 1, __ATOMIC_ACQ_REL) == 0)
        {
          g_mutex_lock (&pool->lock);
          g_cond_signal (&pool->done_cond);
          g_mutex_unlock (&pool->lock);
        }
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
  return pool && !in_chunk ? pool->n_threads : 1;
}

void
_fb_cpu_pool_parallel_for (FbCpuPool *pool, int64_t n, int64_t grain, FbCpuRangeFn fn, gpointer data)
{
  if (n <= 0)
    return;
  grain = MAX (grain, 1);
  if (pool == NULL || pool->n_threads == 1 || n <= grain || in_chunk)
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
  /* Publishes the job to the workers polling the generation. */
  __atomic_store_n (&pool->generation, pool->generation + 1, __ATOMIC_RELEASE);
  if (pool->sleepers > 0)
    g_cond_broadcast (&pool->work_cond);
  g_mutex_unlock (&pool->lock);

  run_chunks (pool);

  /* Poll a little for the workers' last chunks, then sleep. */
  if (spin_until (job_done, pool, 0))
    return;
  g_mutex_lock (&pool->lock);
  while (__atomic_load_n (&pool->busy, __ATOMIC_ACQUIRE) > 0)
    g_cond_wait (&pool->done_cond, &pool->lock);
  g_mutex_unlock (&pool->lock);
}

void
_fb_cpu_pool_blas_begin (FbCpuPool *pool)
{
  /* The pool splits GEMMs itself (fb-cpu-gemm.c): BLAS runs one thread per
   * call, so its own threads stay asleep instead of spinning next to the
   * pool's workers. The process-wide setting is given back afterwards.
   * Without a pool, BLAS keeps its own threads. */
  if (pool == NULL || in_chunk)
    return;   /* inside a chunk, the job's owner set BLAS up */
  pool->blas_saved = openblas_get_num_threads ();
  if (pool->blas_saved != 1)
    openblas_set_num_threads (1);
}

void
_fb_cpu_pool_blas_end (FbCpuPool *pool)
{
  if (pool != NULL && !in_chunk && pool->blas_saved > 1)
    openblas_set_num_threads (pool->blas_saved);
}
