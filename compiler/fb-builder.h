/* SPDX-License-Identifier: MIT
 *
 * The builder: writes HLO from C. An FbBuilder appends instructions to one
 * computation of a module; every function returns the new instruction, with
 * its shape computed by the verifier's shape inference, its attributes set,
 * and metadata={op_name="scope/.../op"} taken from the current name scope.
 *
 * Errors are sticky: the first failure (a NULL operand, a shape mismatch, an
 * attribute out of range) is kept, every later call returns NULL and does
 * nothing, and fb_builder_finish reports it. Model code therefore reads
 * straight, with one error check at the end:
 *
 *   g_autoptr (FbBuilder) b = fb_builder_new (module, "main");
 *   FbInstr *x = fb_b_param (b, fb_b_shape (b, FB_F32, 2, (int64_t[]) {4, 8}), "x");
 *   FbInstr *y = fb_b_tanh (b, x);
 *   fb_builder_set_root (b, fb_b_reduce_sum (b, y, 2, (int64_t[]) {0, 1}));
 *   if (!fb_builder_finish (b, error)) return NULL;
 *
 * Computations called by an instruction (while bodies, branches, ...) are
 * built with nested builders (fb_builder_new_nested); their errors are
 * recorded in the outermost builder as well. Scalar combiners for reduce,
 * reduce-window, select-and-scatter and scatter are made on demand and reused
 * per element type and opcode.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

typedef struct _FbBuilder FbBuilder;

/* Largest rank the fixed-size dimension arrays below hold. */
#define FB_BUILDER_MAX_RANK 8

/* ------------------------------------------------------------- lifetime */

/* A builder for a new, empty computation @name (made unique in the module). */
FbBuilder     *fb_builder_new          (FbModule *module, const char *name);
/* A builder that appends to an existing computation; its parameters are kept
 * and new ones are numbered after them. */
FbBuilder     *fb_builder_new_for      (FbComputation *comp);
/* A builder for a new computation of the same module whose errors are also
 * recorded in @parent (and @parent's parent...). Its scope starts empty. */
FbBuilder     *fb_builder_new_nested   (FbBuilder *parent, const char *name);
void           fb_builder_free         (FbBuilder *b);

FbModule      *fb_builder_get_module   (FbBuilder *b);
FbComputation *fb_builder_get_computation (FbBuilder *b);
/* TRUE while no error has been recorded. */
gboolean       fb_builder_ok           (FbBuilder *b);
/* The first error, or NULL; borrowed. */
const GError  *fb_builder_get_error    (FbBuilder *b);
/* Records an error found by the caller (takes @error) unless one is already
 * kept; lets code on top of the builder use the same sticky error. */
void           fb_builder_take_error   (FbBuilder *b, GError *error);
void           fb_builder_set_error    (FbBuilder *b, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* Name scopes for metadata op_name: push "mlp", push "dense1", then an add
 * gets op_name="mlp/dense1/add". */
void           fb_builder_push_scope   (FbBuilder *b, const char *name);
void           fb_builder_pop_scope    (FbBuilder *b);

/* Sets the computation's root. Without a call, finish uses the last
 * instruction (unless the computation already had a root). */
void           fb_builder_set_root     (FbBuilder *b, FbInstr *root);
/* Makes the computation the module's entry. When another computation was
 * the entry, the module's entry_computation_layout, input_output_alias and
 * buffer_donor (which described it) are dropped. */
void           fb_builder_set_entry    (FbBuilder *b);
/* Sets the root, checks the computation is not empty, and returns it; NULL
 * with the first recorded error. The builder still needs freeing. */
FbComputation *fb_builder_finish       (FbBuilder *b, GError **error);

/* ------------------------------------------------------- shapes, names */

/* A shape in the module's arena, with the default layout. */
FbShape  *fb_b_shape        (FbBuilder *b, FbElemType type, int rank, const int64_t *dims);
FbShape  *fb_b_scalar_shape (FbBuilder *b, FbElemType type);
/* Gives @instr a name (made unique in the module); returns @instr. */
FbInstr  *fb_b_name         (FbBuilder *b, FbInstr *instr, const char *name);

/* ------------------------------------------------ parameters, constants */

/* Parameter number n_params of the computation, named @name (may be NULL). */
FbInstr  *fb_b_param        (FbBuilder *b, FbShape *shape, const char *name);
/* A scalar constant of any array type (value converted). */
FbInstr  *fb_b_const        (FbBuilder *b, FbElemType type, double v);
FbInstr  *fb_b_const_f32    (FbBuilder *b, float v);
FbInstr  *fb_b_const_s32    (FbBuilder *b, int32_t v);
/* An array constant; @values holds fb_shape_elements entries in row-major order. */
FbInstr  *fb_b_const_array  (FbBuilder *b, FbElemType type, int rank, const int64_t *dims,
                             const double *values);
/* A constant holding a copy of @lit (array shape). */
FbInstr  *fb_b_const_literal (FbBuilder *b, const FbLiteral *lit);
/* broadcast(constant(v)) to @shape (an array shape). */
FbInstr  *fb_b_full         (FbBuilder *b, const FbShape *shape, double v);
/* Zeros of @x's shape (tuples: a tuple of zeros). */
FbInstr  *fb_b_zeros_like   (FbBuilder *b, FbInstr *x);
FbInstr  *fb_b_iota         (FbBuilder *b, FbElemType type, int rank, const int64_t *dims,
                             int64_t iota_dimension);

/* ---------------------------------------------------------- elementwise */

/* Any unary elementwise opcode (abs, exponential, not, is-finite, ...). */
FbInstr  *fb_b_unary        (FbBuilder *b, FbOpcode op, FbInstr *x);
/* Any binary elementwise opcode. Operands must have the same shape. */
FbInstr  *fb_b_binary       (FbBuilder *b, FbOpcode op, FbInstr *x, FbInstr *y);

FbInstr  *fb_b_neg          (FbBuilder *b, FbInstr *x);
FbInstr  *fb_b_exp          (FbBuilder *b, FbInstr *x);
FbInstr  *fb_b_log          (FbBuilder *b, FbInstr *x);
FbInstr  *fb_b_tanh         (FbBuilder *b, FbInstr *x);
FbInstr  *fb_b_logistic     (FbBuilder *b, FbInstr *x);
FbInstr  *fb_b_sqrt         (FbBuilder *b, FbInstr *x);
FbInstr  *fb_b_rsqrt        (FbBuilder *b, FbInstr *x);
FbInstr  *fb_b_abs          (FbBuilder *b, FbInstr *x);
FbInstr  *fb_b_erf          (FbBuilder *b, FbInstr *x);
FbInstr  *fb_b_add          (FbBuilder *b, FbInstr *x, FbInstr *y);
FbInstr  *fb_b_sub          (FbBuilder *b, FbInstr *x, FbInstr *y);
FbInstr  *fb_b_mul          (FbBuilder *b, FbInstr *x, FbInstr *y);
FbInstr  *fb_b_div          (FbBuilder *b, FbInstr *x, FbInstr *y);
FbInstr  *fb_b_max          (FbBuilder *b, FbInstr *x, FbInstr *y);
FbInstr  *fb_b_min          (FbBuilder *b, FbInstr *x, FbInstr *y);
FbInstr  *fb_b_pow          (FbBuilder *b, FbInstr *x, FbInstr *y);

/* x (op) constant v, the constant broadcast to x's shape. */
FbInstr  *fb_b_binary_scalar (FbBuilder *b, FbOpcode op, FbInstr *x, double v);

typedef enum {
  FB_CMP_EQ, FB_CMP_NE, FB_CMP_LT, FB_CMP_LE, FB_CMP_GT, FB_CMP_GE
} FbCompareDir;

const char *fb_compare_dir_name (FbCompareDir dir);   /* "EQ", ... */

/* pred[...] compare(x, y), direction=@dir. */
FbInstr  *fb_b_compare      (FbBuilder *b, FbCompareDir dir, FbInstr *x, FbInstr *y);
/* @pred is pred with @on_true's shape (or a pred scalar). */
FbInstr  *fb_b_select       (FbBuilder *b, FbInstr *pred, FbInstr *on_true, FbInstr *on_false);
/* clamp(lo, x, hi): lo and hi have x's shape or are scalars. */
FbInstr  *fb_b_clamp        (FbBuilder *b, FbInstr *lo, FbInstr *x, FbInstr *hi);
FbInstr  *fb_b_convert      (FbBuilder *b, FbInstr *x, FbElemType type);

/* ------------------------------------------------------------- movement */

/* broadcast: the result has @rank dims @dims; operand dimension i maps to
 * result dimension @map[i] (x's rank entries, increasing). */
FbInstr  *fb_b_broadcast    (FbBuilder *b, FbInstr *x, int rank, const int64_t *dims,
                             const int64_t *map);
/* NumPy-style broadcast of @x to @rank/@dims: dimensions align at the end,
 * size-1 dimensions of x are stretched (a reshape drops them first). */
FbInstr  *fb_b_broadcast_to (FbBuilder *b, FbInstr *x, int rank, const int64_t *dims);
/* fb_b_broadcast_to @like's shape. */
FbInstr  *fb_b_broadcast_like (FbBuilder *b, FbInstr *x, FbInstr *like);
FbInstr  *fb_b_reshape      (FbBuilder *b, FbInstr *x, int rank, const int64_t *dims);
/* result dimension i is operand dimension @perm[i]. */
FbInstr  *fb_b_transpose    (FbBuilder *b, FbInstr *x, const int64_t *perm);
/* Static slice; @strides may be NULL (all 1). Arrays have x's rank entries. */
FbInstr  *fb_b_slice        (FbBuilder *b, FbInstr *x, const int64_t *start, const int64_t *limit,
                             const int64_t *strides);
/* Edge (may be negative) and interior padding, x's rank entries, with the
 * scalar @value. */
FbInstr  *fb_b_pad          (FbBuilder *b, FbInstr *x, FbInstr *value, const FbPadDim *pads);
FbInstr  *fb_b_concatenate  (FbBuilder *b, int n, FbInstr *const *xs, int64_t dimension);
FbInstr  *fb_b_reverse      (FbBuilder *b, FbInstr *x, int n_dims, const int64_t *dims);
FbInstr  *fb_b_copy         (FbBuilder *b, FbInstr *x);
/* @starts: x's rank scalar integer instructions; @sizes: x's rank entries. */
FbInstr  *fb_b_dynamic_slice (FbBuilder *b, FbInstr *x, FbInstr *const *starts, const int64_t *sizes);
FbInstr  *fb_b_dynamic_update_slice (FbBuilder *b, FbInstr *x, FbInstr *update,
                                     FbInstr *const *starts);

/* ---------------------------------------------------- contractions */

typedef struct {
  int     n_batch;
  int64_t lhs_batch[FB_BUILDER_MAX_RANK], rhs_batch[FB_BUILDER_MAX_RANK];
  int     n_contracting;
  int64_t lhs_contracting[FB_BUILDER_MAX_RANK], rhs_contracting[FB_BUILDER_MAX_RANK];
} FbDotDims;

/* General dot. The result is batch dims, lhs free dims, rhs free dims. */
FbInstr  *fb_b_dot          (FbBuilder *b, FbInstr *lhs, FbInstr *rhs, const FbDotDims *dims);
/* Matrix product: [.., m, k] x [k, n] contracts lhs's last dimension with
 * rhs's first; when both have rank r > 2 with equal leading dimensions, they
 * are batch dimensions ([.., m, k] x [.., k, n]). */
FbInstr  *fb_b_matmul       (FbBuilder *b, FbInstr *lhs, FbInstr *rhs);

/* Window of a convolution over its spatial dimensions (the window sizes
 * come from the kernel). A zero stride or dilation means 1. */
typedef struct {
  int64_t stride[FB_BUILDER_MAX_RANK];
  int64_t pad_lo[FB_BUILDER_MAX_RANK], pad_hi[FB_BUILDER_MAX_RANK];
  int64_t lhs_dilate[FB_BUILDER_MAX_RANK], rhs_dilate[FB_BUILDER_MAX_RANK];
} FbConvWindow;

/* Parses dim_labels like "b01f_01io->b01f" into @out (arrays in @arena);
 * FALSE with an error when malformed. */
gboolean  fb_conv_dims_parse (FbArena *arena, const char *labels, FbConvDims *out, GError **error);

/* convolution(lhs, rhs), dim_labels=@dim_labels; @window may be NULL (stride
 * 1, no padding, no dilation); group counts below 1 mean 1. */
FbInstr  *fb_b_conv         (FbBuilder *b, FbInstr *lhs, FbInstr *rhs, const char *dim_labels,
                             const FbConvWindow *window, int64_t feature_group_count,
                             int64_t batch_group_count);

/* ------------------------------------------------------------ reductions */

/* Combiner opcodes: FB_OP_ADD, FB_OP_MULTIPLY, FB_OP_MAXIMUM, FB_OP_MINIMUM,
 * FB_OP_AND, FB_OP_OR; for scatter also FB_COMBINE_REPLACE (the update wins). */
#define FB_COMBINE_REPLACE FB_OP_PARAMETER

/* The scalar computation (a, b) -> a op b for @type, made once per type and
 * opcode in the module and reused. */
FbComputation *fb_builder_combiner (FbBuilder *b, FbElemType type, FbOpcode op);

/* reduce(x, init) over @dims with the combiner; @init is a scalar of x's type. */
FbInstr  *fb_b_reduce       (FbBuilder *b, FbInstr *x, FbInstr *init, FbOpcode combiner,
                             int n_dims, const int64_t *dims);
/* With the identity as init (0 for add, -inf for max, +inf for min, 1 for multiply). */
FbInstr  *fb_b_reduce_sum   (FbBuilder *b, FbInstr *x, int n_dims, const int64_t *dims);
FbInstr  *fb_b_reduce_max   (FbBuilder *b, FbInstr *x, int n_dims, const int64_t *dims);
FbInstr  *fb_b_reduce_min   (FbBuilder *b, FbInstr *x, int n_dims, const int64_t *dims);
/* Sum of every element: a scalar. */
FbInstr  *fb_b_sum_all      (FbBuilder *b, FbInstr *x);
/* The identity of @combiner for @type as a scalar constant. */
FbInstr  *fb_b_identity     (FbBuilder *b, FbElemType type, FbOpcode combiner);

/* @window has x's rank entries; zero stride or dilation means 1 (size must
 * be set). */
FbInstr  *fb_b_reduce_window (FbBuilder *b, FbInstr *x, FbInstr *init, FbOpcode combiner,
                              const FbWindowDim *window);
/* select-and-scatter: in each window of @operand, the element for which
 * compare(@select_dir) holds against the others (GE: the first maximum) gets
 * @source's value combined with @scatter (usually FB_OP_ADD) onto @init. */
FbInstr  *fb_b_select_and_scatter (FbBuilder *b, FbInstr *operand, FbInstr *source, FbInstr *init,
                                   FbCompareDir select_dir, FbOpcode scatter,
                                   const FbWindowDim *window);

/* ----------------------------------------------------- gather, scatter */

typedef struct {
  int     n_offset_dims;          int64_t offset_dims[FB_BUILDER_MAX_RANK];
  int     n_collapsed_slice_dims; int64_t collapsed_slice_dims[FB_BUILDER_MAX_RANK];
  int     n_start_index_map;      int64_t start_index_map[FB_BUILDER_MAX_RANK];
  int     n_operand_batching_dims; int64_t operand_batching_dims[FB_BUILDER_MAX_RANK];
  int     n_start_indices_batching_dims; int64_t start_indices_batching_dims[FB_BUILDER_MAX_RANK];
  int64_t index_vector_dim;
  int64_t slice_sizes[FB_BUILDER_MAX_RANK];   /* operand rank entries */
  gboolean indices_are_sorted;
} FbGatherDims;

typedef struct {
  int     n_update_window_dims;   int64_t update_window_dims[FB_BUILDER_MAX_RANK];
  int     n_inserted_window_dims; int64_t inserted_window_dims[FB_BUILDER_MAX_RANK];
  int     n_scatter_dims_to_operand_dims; int64_t scatter_dims_to_operand_dims[FB_BUILDER_MAX_RANK];
  int     n_input_batching_dims;  int64_t input_batching_dims[FB_BUILDER_MAX_RANK];
  int     n_scatter_indices_batching_dims; int64_t scatter_indices_batching_dims[FB_BUILDER_MAX_RANK];
  int64_t index_vector_dim;
  gboolean indices_are_sorted, unique_indices;
} FbScatterDims;

FbInstr  *fb_b_gather       (FbBuilder *b, FbInstr *operand, FbInstr *indices, const FbGatherDims *d);
/* Combines @updates into @operand at @indices with @combiner (FB_OP_ADD, ...
 * or FB_COMBINE_REPLACE). */
FbInstr  *fb_b_scatter      (FbBuilder *b, FbInstr *operand, FbInstr *indices, FbInstr *updates,
                             FbOpcode combiner, const FbScatterDims *d);

/* ------------------------------------------------------ tuples, control */

FbInstr  *fb_b_tuple        (FbBuilder *b, int n, FbInstr *const *xs);
FbInstr  *fb_b_gte          (FbBuilder *b, FbInstr *tuple, int64_t index);
/* call(args), to_apply=@comp. */
FbInstr  *fb_b_call         (FbBuilder *b, FbComputation *comp, int n, FbInstr *const *args);
/* while(init), condition=@cond, body=@body. */
FbInstr  *fb_b_while        (FbBuilder *b, FbComputation *cond, FbComputation *body, FbInstr *init);
/* conditional(selector, operands...): a pred selector takes two branches
 * (true first, printed as true_computation/false_computation), an s32 one
 * any number (branch_computations). One operand per branch. */
FbInstr  *fb_b_conditional  (FbBuilder *b, FbInstr *selector, int n_branches,
                             FbComputation *const *branches, FbInstr *const *operands);
/* custom-call(operands), custom_call_target=@target, with the given result shape. */
FbInstr  *fb_b_custom_call  (FbBuilder *b, const char *target, int n, FbInstr *const *operands,
                             FbShape *shape);

/* ------------------------------------------------------- normalisation */

/* (output, batch mean, batch variance) */
FbInstr  *fb_b_batch_norm_training  (FbBuilder *b, FbInstr *x, FbInstr *scale, FbInstr *offset,
                                     double epsilon, int64_t feature_index);
FbInstr  *fb_b_batch_norm_inference (FbBuilder *b, FbInstr *x, FbInstr *scale, FbInstr *offset,
                                     FbInstr *mean, FbInstr *variance, double epsilon,
                                     int64_t feature_index);
/* (grad x, grad scale, grad offset) */
FbInstr  *fb_b_batch_norm_grad      (FbBuilder *b, FbInstr *x, FbInstr *scale, FbInstr *mean,
                                     FbInstr *variance, FbInstr *grad_output, double epsilon,
                                     int64_t feature_index);

/* ----------------------------------------------------------------- rng */

/* (new state, bits of @shape): @state is u64[2] or u64[3]; @algorithm is
 * "rng_default", "rng_three_fry" or "rng_philox". */
FbInstr  *fb_b_rng_bit_generator (FbBuilder *b, FbInstr *state, const char *algorithm,
                                  const FbShape *shape);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FbBuilder, fb_builder_free)

G_END_DECLS
