/* SPDX-License-Identifier: MIT
 *
 * Throughput statistics from a trace: steps per second, samples per second,
 * and achieved GFLOP/s and GB/s per kernel and per step, given what each
 * kernel costs (FLOPs and bytes, from the compiler's cost model; the caller
 * passes them, the profiler does not depend on the compiler). Each kernel
 * is also placed on the machine's roofline.
 *
 * Which spans count: steps are FB_SPAN_STEP spans; a kernel's time is the sum
 * of its FB_SPAN_KERNEL spans on GPU-stream tracks if it has any there, else
 * on host-thread tracks, else on CPU-worker tracks, so that a kernel recorded
 * both as a whole and as worker chunks is not counted twice.
 *
 * The roofline's two peaks (sgemm GFLOP/s and triad GB/s) are measured once
 * per machine and cached in $XDG_CACHE_HOME/fusebox/roofline.json. The sgemm
 * measurement comes from the backends layer as a function pointer (the
 * profiler links no BLAS); without one, a plain C multiply-add loop stands in
 * and the cache says so, so that a later call with sgemm measures again.
 */
#pragma once

#include "fb-trace.h"

G_BEGIN_DECLS

/* ---------------------------------------------------------------- roofline */

typedef struct {
  double  peak_gflops;     /* compute roof */
  double  peak_gbps;       /* memory roof */
  char   *flops_source;    /* "sgemm" or "fma-loop" */
  char   *machine;         /* what the cache entry was measured on */
} FbRoofline;

/* Measures a machine's peak single-precision GFLOP/s (sgemm through BLAS in
 * the backends layer). */
typedef gboolean (*FbPeakFlopsFn) (double *gflops, gpointer user_data, GError **error);

void     fb_roofline_clear (FbRoofline *roofline);
/* Attainable GFLOP/s at @intensity FLOP/byte: min (peak, intensity × bandwidth). */
double   fb_roofline_attainable (const FbRoofline *roofline, double intensity);

/* STREAM-style triad a[i] = b[i] + s·c[i] over arrays larger than the caches;
 * best of a few repetitions, in GB/s (counting 3 × 8 bytes per element). */
gboolean fb_roofline_measure_triad (double *gbps, GError **error);
/* A plain C single-precision multiply-add loop: a rough compute roof. */
gboolean fb_roofline_measure_fma_loop (double *gflops, GError **error);

/* Reads the cached roofline from @cache_path (NULL: the default path),
 * measuring and writing it when absent, for another machine, unreadable,
 * measured without sgemm while @sgemm is now given, or when @force.
 * @sgemm may be NULL. A cache that cannot be written is not an error. */
gboolean fb_roofline_get (FbRoofline *out, const char *cache_path, FbPeakFlopsFn sgemm,
                          gpointer sgemm_data, gboolean force, GError **error);
/* $XDG_CACHE_HOME/fusebox/roofline.json; free with g_free. */
char    *fb_roofline_default_path (void);

/* -------------------------------------------------------------- statistics */

/* What the caller knows of a kernel: FLOPs and bytes per call. */
typedef struct {
  int         kernel_id;
  const char *name;          /* may be NULL: taken from the spans */
  double      flops;
  double      bytes;
} FbKernelCost;

typedef struct {
  int      kernel_id;
  char    *name;
  guint    calls;
  gint64   total_ns;
  double   mean_ns;
  double   time_fraction;     /* of the summed kernel time, 0..1 */
  double   flops;             /* per call; 0: unknown */
  double   bytes;             /* per call; 0: unknown */
  double   gflops;            /* achieved */
  double   gbps;              /* achieved */
  double   intensity;         /* flops / bytes; 0 when bytes unknown */
  double   roof_gflops;       /* attainable at this intensity; 0 without roofline */
  double   roof_fraction;     /* gflops / roof_gflops, 0..1+; 0 without roofline */
  gboolean memory_bound;      /* left of the ridge point */
} FbKernelStats;

typedef struct {
  int     step;
  gint64  duration_ns;
  double  flops;              /* summed over the kernels run in the step */
  double  bytes;
  double  gflops;
  double  gbps;
} FbStepStats;

typedef struct {
  guint          n_steps;
  double         mean_step_s;
  double         steps_per_s;
  double         samples_per_s;  /* steps_per_s × batch size */
  double         gflops;         /* all kernel FLOPs over all step time */
  double         gbps;
  gint64         kernel_ns;      /* summed kernel time */
  FbStepStats   *steps;          /* by step number */
  FbKernelStats *kernels;        /* by total time, largest first */
  guint          n_kernels;
} FbThroughput;

/* Computes the statistics of @trace. @costs may be NULL (then FLOP/s and
 * GB/s stay 0); @roofline may be NULL. Kernel spans with kernel_id < 0 are
 * grouped by name. NULL with FB_PROFILER_ERROR_USAGE on a cost with a
 * negative or non-finite value. */
FbThroughput *fb_throughput_compute (FbTrace *trace, const FbKernelCost *costs, guint n_costs,
                                     guint batch_size, const FbRoofline *roofline, GError **error);
void          fb_throughput_free    (FbThroughput *throughput);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbThroughput, fb_throughput_free)

G_END_DECLS
