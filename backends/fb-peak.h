/* SPDX-License-Identifier: MIT
 *
 * The compute roof of the machine as the backends see it: single-precision
 * matrix multiplication through the same BLAS the CPU backend calls for dot.
 * The profiler links no BLAS, so it takes this measurement as a function
 * pointer (FbPeakFlopsFn, see profiler/fb-throughput.h):
 *
 *   fb_roofline_get (&roof, NULL, fb_backend_measure_sgemm, NULL, FALSE, &error);
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Times cblas_sgemm on square f32 matrices larger than the caches, on every
 * core BLAS uses, and returns the best of a few repetitions in GFLOP/s.
 * An FbPeakFlopsFn; @user_data is unused. */
gboolean fb_backend_measure_sgemm (double *gflops, gpointer user_data, GError **error);

G_END_DECLS
