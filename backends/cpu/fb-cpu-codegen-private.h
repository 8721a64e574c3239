/* SPDX-License-Identifier: MIT
 *
 * Internals of CPU code generation, shared by the elemental emitter
 * (fb-cpu-emit.c), its math functions (fb-cpu-math.c), the loop driver
 * (fb-cpu-kernel.c) and the JIT (fb-cpu-jit.c).
 *
 * The emitter knows nothing about loops over the output or threads: it
 * produces the value of one instruction at one multi-dimensional index,
 * recursively through its operands, and reads parameters from buffer
 * pointers it is given. A driver (the CPU loop nest here, a GPU grid-stride
 * loop elsewhere) decides which indices to ask for and where to store.
 */
#pragma once

#include "fb-cpu-codegen.h"

#include <llvm-c/Core.h>

G_BEGIN_DECLS

#define FB_EMIT_MAX_RANK 8

/* An index into an array shape: per-dimension values, the row-major linear
 * offset, or both. Either side is computed from the other when needed. */
typedef struct {
  int            rank;
  const int64_t *dims;                    /* borrowed: the shape's dimensions */
  LLVMValueRef   v[FB_EMIT_MAX_RANK];     /* i64 each, NULL until known */
  LLVMValueRef   linear;                  /* i64, NULL until known */
} FbIndex;

typedef struct _FbEmitter FbEmitter;

typedef struct {
  const FbInstr *instr;
  FbIndex        index;
  LLVMValueRef   value;
  int            depth;
} FbMemoEntry;

struct _FbEmitter {
  LLVMContextRef ctx;
  LLVMModuleRef  mod;
  LLVMBuilderRef b;
  LLVMValueRef   fn;           /* the function being emitted */
  LLVMBasicBlockRef entry;     /* allocas go at its start */
  LLVMTypeRef    t_i1, t_i8, t_i16, t_i32, t_i64, t_i128, t_f16, t_f32, t_f64, t_ptr, t_void;

  /* Where values come from. For a fusion, parameters of the fused
   * computation read params[parameter_number]. For a single instruction
   * `top`, its operand k reads params[k]. */
  const FbInstr *top;          /* the kernel's instruction when it is not a fusion; else NULL */
  LLVMValueRef  *params;       /* buffer pointers, one per operand of the kernel instruction */
  int            n_params;

  GHashTable    *bindings;     /* FbInstr* -> LLVMValueRef: scalar values bound to parameters of called computations */
  GArray        *memo;         /* FbMemoEntry: values already emitted at an index, valid in the current scope */
  int            depth;        /* scope depth: loops and computation calls open a scope */
  gboolean       reassoc;      /* float ops may be reassociated (inside reductions) */
  int            n_consts;
  GError        *error;        /* the first error; emission goes on with undef values after it */
};

/* Sets up types; @mod and @b must exist. */
void          _fb_emit_init         (FbEmitter *e, LLVMContextRef ctx, LLVMModuleRef mod, LLVMBuilderRef b);
void          _fb_emit_clear        (FbEmitter *e);
/* Records the first error (in FB_ERROR_UNSUPPORTED) naming @instr. */
void          _fb_emit_fail         (FbEmitter *e, const FbInstr *instr, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

/* Scopes: memo entries made after a push are dropped at the matching pop. */
void          _fb_emit_push         (FbEmitter *e);
void          _fb_emit_pop          (FbEmitter *e);

/* Index helpers. */
void          _fb_index_init        (FbIndex *idx, const FbShape *shape);
void          _fb_index_scalar      (FbIndex *idx);
LLVMValueRef  _fb_index_linear      (FbEmitter *e, FbIndex *idx);
LLVMValueRef  _fb_index_dim         (FbEmitter *e, FbIndex *idx, int d);
LLVMValueRef  _fb_emit_i64          (FbEmitter *e, int64_t v);

/* Types: the register type of an element type (pred i1, f16/bf16 as f32),
 * and its storage type in buffers (pred i8, f16/bf16 as i16). */
LLVMTypeRef   _fb_emit_reg_type     (FbEmitter *e, FbElemType t);
LLVMTypeRef   _fb_emit_store_type   (FbEmitter *e, FbElemType t);
/* Is @t something the emitter handles? */
gboolean      _fb_emit_type_ok      (FbElemType t);
/* Load and store of one element at a linear offset of a buffer. */
LLVMValueRef  _fb_emit_load         (FbEmitter *e, FbElemType t, LLVMValueRef base, LLVMValueRef linear);
void          _fb_emit_store        (FbEmitter *e, FbElemType t, LLVMValueRef base, LLVMValueRef linear,
                                     LLVMValueRef value);

/* The value of @instr (an array-shaped instruction) at @index. */
LLVMValueRef  _fb_emit_value        (FbEmitter *e, const FbInstr *instr, FbIndex *index);
/* Operand @k of @instr at @idx (an index into the operand's shape): a
 * buffer load when @instr is the kernel's own instruction, else its value. */
LLVMValueRef  _fb_emit_operand      (FbEmitter *e, const FbInstr *instr, int k, FbIndex *idx);
/* The values of a reduce at @index: one per input (variadic reduces give several). */
void          _fb_emit_reduce       (FbEmitter *e, const FbInstr *reduce, FbIndex *index, LLVMValueRef *out);
/* Calls a scalar computation on @args; writes one value per root leaf into @out. */
int           _fb_emit_call_scalar  (FbEmitter *e, FbComputation *comp, int n_args, LLVMValueRef *args,
                                     LLVMValueRef *out, int max_out);
/* Can the emitter produce @instr (inside a fusion or alone)? Says why not in @why. */
gboolean      _fb_emit_supports     (const FbInstr *instr, gboolean in_fusion, GString *why);

/* Counted loops: for (iv = start; iv < end; iv++). Opens a scope. */
typedef struct {
  LLVMBasicBlockRef header, body, latch, exit, pre;
  LLVMValueRef      iv;
} FbLoop;
void          _fb_emit_loop_begin   (FbEmitter *e, FbLoop *loop, const char *name, LLVMValueRef start,
                                     LLVMValueRef end);
void          _fb_emit_loop_end     (FbEmitter *e, FbLoop *loop);

/* An alloca in the entry block. */
LLVMValueRef  _fb_emit_alloca       (FbEmitter *e, LLVMTypeRef type, const char *name);
/* Calls an intrinsic overloaded on @type. */
LLVMValueRef  _fb_emit_intrinsic    (FbEmitter *e, const char *name, LLVMTypeRef type, int n, LLVMValueRef *args);
/* Calls an external C function double(double...) / float(float...) by name. */
LLVMValueRef  _fb_emit_libcall      (FbEmitter *e, const char *name, LLVMTypeRef type, int n, LLVMValueRef *args);
/* Sets fast-math flags on a float instruction: contract always, reassoc in reductions. */
LLVMValueRef  _fb_emit_fmf          (FbEmitter *e, LLVMValueRef v);

/* Vectorisable polynomial approximations on f32 values (fb-cpu-math.c). */
LLVMValueRef  _fb_math_exp_f32      (FbEmitter *e, LLVMValueRef x);
LLVMValueRef  _fb_math_log_f32      (FbEmitter *e, LLVMValueRef x);
LLVMValueRef  _fb_math_tanh_f32     (FbEmitter *e, LLVMValueRef x);
LLVMValueRef  _fb_math_erf_f32      (FbEmitter *e, LLVMValueRef x);
LLVMValueRef  _fb_math_logistic_f32 (FbEmitter *e, LLVMValueRef x);
/* Names and addresses of the C library functions kernels may call. */
typedef struct { const char *name; void *addr; } FbMathSymbol;
const FbMathSymbol *_fb_math_symbols (int *n);

/* The loop driver (fb-cpu-kernel.c): emits the kernel function @symbol for
 * @instr into @mod. Fills outer extent, inner elements and buffer counts. */
gboolean      _fb_cpu_kernel_emit   (LLVMContextRef ctx, LLVMModuleRef mod, const FbInstr *instr,
                                     const char *symbol, FbCpuKernel *info, GError **error);
/* After optimisation: turns the vector stores of the streaming bodies in
 * @mod that the optimiser proved aligned into non-temporal stores. */
void          _fb_cpu_kernel_stream_stores (LLVMModuleRef mod);
/* Fills the outer extent, inner elements and buffer counts of @info. */
gboolean      _fb_cpu_kernel_describe (const FbInstr *instr, FbCpuKernel *info, GError **error);
/* The output leaves of @instr in buffer order. */
int           _fb_cpu_output_count  (const FbInstr *instr);

G_END_DECLS
