/* SPDX-License-Identifier: MIT
 *
 * Internals of the CPU backend, shared by its files: the thread pool
 * (fb-cpu-threads.c), dot through a tuned BLAS (fb-cpu-gemm.c), the runtime
 * functions written in C for the operations that are not generated as loop
 * kernels (fb-cpu-runtime.c), and the driver that ties them together
 * (fb-cpu-backend.c).
 *
 * Values at run time are FbLiterals whose data points into the executable's
 * buffers: dense, row-major in logical order, exactly what the generated
 * kernels read and write.
 */
#pragma once

#include "fb-ir.h"
#include "fb-backend.h"

G_BEGIN_DECLS

extern const FbBackend fb_cpu_backend;

/* ------------------------------------------------------------ threads */

typedef struct _FbCpuPool FbCpuPool;
typedef void (*FbCpuRangeFn) (gpointer data, int64_t begin, int64_t end);

/* @threads <= 0: one per core. */
FbCpuPool *_fb_cpu_pool_new          (int threads);
void       _fb_cpu_pool_free         (FbCpuPool *pool);
int        _fb_cpu_pool_threads      (FbCpuPool *pool);
/* Runs @fn over [0, @n) in chunks of at least @grain, on every thread of the
 * pool (the caller takes part), and returns once all chunks ran. */
void       _fb_cpu_pool_parallel_for (FbCpuPool *pool, int64_t n, int64_t grain,
                                      FbCpuRangeFn fn, gpointer data);
/* Brackets a BLAS call: the pool's workers are idle meanwhile and the BLAS
 * library gets the pool's thread count, so the two never run at once. */
void       _fb_cpu_pool_blas_begin   (FbCpuPool *pool);
void       _fb_cpu_pool_blas_end     (FbCpuPool *pool);
/* (Since GEMMs are split over the pool by fb-cpu-gemm.c, blas_begin sets
 * BLAS to one thread per call and blas_end restores the process-wide
 * count: BLAS's own threads stay asleep instead of spinning next to the
 * pool's workers.) */

/* --------------------------------------------------------------- gemm */

/* The GEMM libraries in use and which products each takes. */
const char *_fb_cpu_gemm_library (void);
typedef enum { FB_CPU_GEMM_OPENBLAS, FB_CPU_GEMM_ONEDNN } FbCpuGemmLib;
/* The library for an f32 product whose C is @m x @n: decide it once for the
 * whole product, so that how it is split over threads does not change the
 * rounding. */
FbCpuGemmLib _fb_cpu_sgemm_library (int64_t m, int64_t n);
/* The library that multiplies @dot's GEMMs when they are f32 (f16 and bf16
 * widened); OpenBLAS for the rest (f64; integer dots use a C loop). */
FbCpuGemmLib _fb_cpu_dot_library (const FbInstr *dot);
/* out = dot (lhs, rhs) with @dot's dimension numbers; f32/f64 directly,
 * f16/bf16 through f32, integers by a C loop. */
gboolean    _fb_cpu_dot (FbCpuPool *pool, const FbInstr *dot, const FbLiteral *lhs,
                         const FbLiteral *rhs, FbLiteral *out, GError **error);
/* The same; with @transpose_out (f32, no batch dimensions) the result is
 * stored transposed, [cols, rows], for a consumer that reads it through a
 * transpose. */
gboolean    _fb_cpu_dot_full (FbCpuPool *pool, const FbInstr *dot, const FbLiteral *lhs,
                              const FbLiteral *rhs, FbLiteral *out, gboolean transpose_out, GError **error);
/* Row-major C[m,n] = A[m,k] * B[k,n] + beta C in f32 (with transposes), on
 * the calling thread alone. */
void        _fb_cpu_sgemm_here (FbCpuGemmLib lib, gboolean ta, gboolean tb, int64_t m, int64_t n, int64_t k,
                                const float *a, int64_t lda, const float *b, int64_t ldb,
                                float beta, float *c, int64_t ldc);
/* Calls @fn (from whichever thread multiplies) before every f32 GEMM that
 * _fb_cpu_sgemm_here runs, until set back to NULL: bench-cpu collects the
 * shapes a training step multiplies this way. */
typedef void (*FbCpuGemmObserver) (gpointer data, FbCpuGemmLib lib, gboolean ta, gboolean tb, int64_t m,
                                   int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc);
void        _fb_cpu_gemm_observe (FbCpuGemmObserver fn, gpointer data);
/* Row-major C[m,n] (+)= A[m,k] * B[k,n] in f32 (with transposes). */
void        _fb_cpu_sgemm (FbCpuPool *pool, gboolean ta, gboolean tb, int64_t m, int64_t n, int64_t k,
                           const float *a, int64_t lda, const float *b, int64_t ldb,
                           float beta, float *c, int64_t ldc);

/* A kOutput fusion run as its product (dot or convolution) and then the
 * elementwise epilogue in one pass; NULL when @fusion is not of that form. */
typedef struct _FbCpuEpilogue FbCpuEpilogue;
FbCpuEpilogue *_fb_cpu_epilogue_new     (const FbInstr *fusion);
void           _fb_cpu_epilogue_free    (FbCpuEpilogue *ep);
const FbInstr *_fb_cpu_epilogue_product (FbCpuEpilogue *ep);
/* @ops: the fusion's operands; @product: the product's value (f32). */
gboolean       _fb_cpu_epilogue_run     (FbCpuPool *pool, FbCpuEpilogue *ep, FbLiteral *const *ops,
                                         const FbLiteral *product, FbLiteral *out, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbCpuEpilogue, _fb_cpu_epilogue_free)

/* ------------------------------------------------------------ runtime */

/* Calls a compiled computation (reduce's to_apply, sort's comparator, while
 * body, ...): the result lives in @arena. */
typedef FbLiteral *(*FbCpuCallFn) (gpointer program, FbArena *arena, int n_args,
                                   FbLiteral *const *args, GError **error);

typedef struct {
  FbCpuPool             *pool;
  FbArena               *arena;        /* scratch for this execution */
  const FbCustomCallMap *custom_calls;
  FbCpuCallFn            call;
  /* The compiled sub-programs of the instruction's called computations, in
   * fb_instr_called order. */
  int                    n_programs;
  gpointer              *programs;
} FbCpuRt;

/* A runtime function: computes @instr from @ops into @out, whose shape is
 * the instruction's and whose data (and tuple leaves) are already allocated. */
typedef gboolean (*FbCpuRuntimeFn) (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops,
                                    FbLiteral *out, GError **error);

/* The C runtime function for @instr, or NULL with an FB_ERROR_UNSUPPORTED
 * error saying why there is none. */
FbCpuRuntimeFn _fb_cpu_runtime_lookup (const FbInstr *instr, GError **error);

/* Convolution: picks direct loops, im2col + GEMM or oneDNN for the shape
 * by timing them, or by what @cache_dir (the kernel cache; NULL: none)
 * kept from an earlier timing on this machine; the choice is kept in the
 * process and in @cache_dir. @how receives "direct", "im2col" or
 * "onednn". */
gboolean _fb_cpu_conv_choose (FbCpuPool *pool, const char *cache_dir, const FbInstr *conv, const char **how,
                              GError **error);
/* Forgets the choices this process made (not the ones on disk); for tests. */
void     _fb_cpu_conv_forget (void);
gboolean _fb_cpu_convolution (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops,
                              FbLiteral *out, GError **error);
/* Makes every convolution from now on use @how ("im2col", "direct" or
 * "onednn") where it applies (direct otherwise), or measure again with
 * NULL; for tests of each method. */
void     _fb_cpu_conv_force (const char *how);
/* Whether "onednn" is one of the methods for @conv. */
gboolean _fb_cpu_conv_onednn_applies (const FbInstr *conv);
/* Whether this build has oneDNN. */
gboolean _fb_cpu_have_onednn (void);

/* ------------------------------------------------------------- oneDNN */

/* Keeps this thread's oneDNN calls on this thread (fb-cpu-onednn.c). */
void     _fb_cpu_onednn_this_thread_only (void);
/* A 2-D convolution in canonical form: input [N][C][H][W], kernel
 * [O][C/G][KH][KW], output [N][O][OH][OW], all packed f32; padding on
 * each side, strides and kernel dilation (1: none) per spatial axis. */
typedef struct {
  int64_t N, C, O, G, H, W, KH, KW, OH, OW;
  int64_t stride[2], pad_l[2], pad_r[2], dil[2];
} FbCpuConvGeom;
/* Whether oneDNN has a fast kernel for @g (never its reference one). */
gboolean _fb_cpu_onednn_conv_applies (const FbCpuConvGeom *g);
/* Runs @g through oneDNN, the batch split over the pool; FALSE when it
 * could not (then @y holds nothing useful). */
gboolean _fb_cpu_onednn_conv (FbCpuPool *pool, const FbCpuConvGeom *g, const float *x, const float *k, float *y);

/* Runtime functions of fb-cpu-runtime-rng.c and fb-cpu-runtime-linalg.c. */
gboolean _fb_cpu_rng_bit_generator (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops,
                                    FbLiteral *out, GError **error);
gboolean _fb_cpu_cholesky          (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops,
                                    FbLiteral *out, GError **error);
gboolean _fb_cpu_triangular_solve  (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops,
                                    FbLiteral *out, GError **error);
gboolean _fb_cpu_fft               (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops,
                                    FbLiteral *out, GError **error);

/* Sets `%name: message` in FB_ERROR_RUNTIME. */
void _fb_cpu_error (GError **error, const FbInstr *instr, const char *fmt, ...) G_GNUC_PRINTF (3, 4);
void _fb_cpu_strides (const FbShape *shape, int64_t *strides);
/* Bytes a value takes in memory: one element every fb_elem_type_bytes, so
 * sub-byte types (pred, s4, ...) take a byte each, unlike fb_shape_bytes. */
int64_t _fb_cpu_storage_bytes (const FbShape *shape);

G_END_DECLS
