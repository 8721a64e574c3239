/* SPDX-License-Identifier: MIT
 *
 * What every benchmark prints first: the machine it ran on.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* `machine: MODEL, N cores, flags: avx2 fma avx512f ...` from /proc/cpuinfo. */
void fb_bench_print_machine (void);

G_END_DECLS
