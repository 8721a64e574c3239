/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "fb-ir.h"

/* A zoo model's training step, compiled with all passes, as bench-cpu
 * measures it. */
typedef FbModule *(*FbBenchStepFn) (const char *model, GError **error);

/* Prints the GEMM section of bench-cpu (see bench-cpu-gemm.c). */
gboolean fb_bench_gemm_section (FbBenchStepFn step, GError **error);
