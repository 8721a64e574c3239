/* SPDX-License-Identifier: MIT
 *
 * LLVM code generation for CPU loop kernels. One instruction of an entry
 * computation (an elementwise or movement op, a reduce, or a kLoop/kInput
 * fusion) becomes one native function that computes a part of its output:
 *
 *   void fn (void *const *buffers, int64_t begin, int64_t end);
 *
 * `buffers` holds the output buffers first (the leaves of a tuple output, in
 * order; one buffer for an array output), then one buffer per operand of the
 * instruction, in operand order. Every buffer is dense, row-major in logical
 * order, one element every fb_elem_type_bytes() bytes, exactly as the data of
 * an FbLiteral (pred is one byte, 0 or 1). Output buffers must not overlap
 * operand buffers. Large outputs are written with streaming (non-temporal)
 * stores when their buffers are 64-byte aligned, so such a kernel runs
 * fastest with aligned outputs; any alignment of the element type works. The function computes the part
 * [begin, end) of the kernel's outer range [0, outer_extent); disjoint parts
 * write disjoint output elements, so a driver may run parts on different
 * threads at once and the whole output is written once every part has run.
 *
 * Kernels are optimised for the host CPU (name and features as LLVM reports
 * them), compiled in process by an ORC JIT, and cached on disk as object
 * files keyed by a content hash of the instruction's printed HLO (with the
 * computations it calls), the LLVM version, the CPU name and its features.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

typedef struct _FbCpuJit FbCpuJit;

typedef void (*FbCpuKernelFn) (void *const *buffers, int64_t begin, int64_t end);

typedef struct {
  char          *name;          /* symbol of the function: "fb_<sanitised instruction name>_<12 hex digits of the content hash>" */
  const FbInstr *instr;         /* borrowed: the instruction it was generated from */
  FbCpuKernelFn  fn;            /* valid as long as the FbCpuJit that compiled it */
  int64_t        outer_extent;  /* the full range is [0, outer_extent); 0 when the output is empty */
  int64_t        inner_elements;/* output elements one unit of the outer range writes (for choosing grain sizes) */
  int            n_outputs;     /* output buffers (array leaves of the output) */
  int            n_buffers;     /* n_outputs + number of operands */
  char          *llvm_ir;       /* the optimised LLVM IR module text */
  char          *asm_text;      /* the host assembly */
  gboolean       from_cache;    /* TRUE when loaded from the disk cache instead of compiled */
} FbCpuKernel;

void         fb_cpu_kernel_free (FbCpuKernel *kernel);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbCpuKernel, fb_cpu_kernel_free)

/* The host CPU as LLVM names it ("sapphirerapids") and its feature string
 * ("+avx512f,+fma,..."). Static strings, computed once. */
const char  *fb_cpu_host_name     (void);
const char  *fb_cpu_host_features (void);
/* TRUE when the host has AVX-512 (avx512f); tests use it to expect zmm registers. */
gboolean     fb_cpu_host_has_avx512 (void);

/* Creates a JIT with a kernel cache in @cache_dir (created when missing).
 * NULL means $XDG_CACHE_HOME/fusebox/kernels (g_get_user_cache_dir). The
 * empty string "" turns the disk cache off. */
FbCpuJit    *fb_cpu_jit_new       (const char *cache_dir, GError **error);
/* Frees the JIT and with it the code of every kernel it compiled. */
void         fb_cpu_jit_free      (FbCpuJit *jit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbCpuJit, fb_cpu_jit_free)
/* The cache directory in use, NULL when the disk cache is off. */
const char  *fb_cpu_jit_get_cache_dir (FbCpuJit *jit);

/* Can @instr be generated as a loop kernel by fb_cpu_jit_compile? Elementwise
 * ops (unary, binary, compare, select, clamp, convert) on pred, integer
 * (8..64 bits) and float (f16, bf16, f32, f64) types; broadcast, reshape,
 * bitcast, copy, transpose, slice, pad, concatenate, reverse, iota, constant,
 * dynamic-slice, dynamic-update-slice; reduce along the innermost dims (rows)
 * or along outer dims (columns); kLoop and kInput fusions made of these,
 * with a single output or a tuple root whose outputs share one shape (or are
 * reductions of the same kind). FALSE for everything else (dot, convolution,
 * gather, sort, complex and f8 types, ...): the driver runs those otherwise. */
gboolean     fb_cpu_can_generate  (const FbInstr *instr);
/* The same, but says why not in @why (may be NULL) when FALSE. */
gboolean     fb_cpu_can_generate_why (const FbInstr *instr, GString *why);

/* Compiles @n kernels, in parallel on a thread pool (one LLVM context per
 * thread), or loads them from the disk cache. @out_kernels receives @n new
 * kernels (fb_cpu_kernel_free each). On failure nothing is returned in
 * @out_kernels and the error names the instruction. The JIT may be used by
 * one thread at a time; the kernels it returns may be called from any
 * thread, concurrently. */
gboolean     fb_cpu_jit_compile   (FbCpuJit *jit, int n, FbInstr *const *instrs,
                                   FbCpuKernel **out_kernels, GError **error);

/* For `fusebox-cli compile --backend cpu --emit llvm|asm [--kernel NAME]`:
 * compiles every instruction of @module's entry computation that
 * fb_cpu_can_generate accepts (only the one named @kernel_name, an
 * instruction or kernel name, when not NULL) and appends, for each, a
 * `; kernel NAME (instruction)` header line and its optimised LLVM IR
 * (@what "llvm") or assembly (@what "asm") to @out. FB_ERROR_USAGE for an
 * unknown @what or a @kernel_name that matches nothing. Uses the default
 * disk cache. */
gboolean     fb_cpu_emit_report   (FbModule *module, const char *what, const char *kernel_name,
                                   GString *out, GError **error);

G_END_DECLS
