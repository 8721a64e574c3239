/* SPDX-License-Identifier: MIT
 *
 * Tests of the verifier and shape inference. Each opcode family has a module
 * that must verify and at least one that must not, with the error naming the
 * faulty instruction and the fault. Structural faults the parser cannot
 * produce (gaps in parameter numbers, operands from another computation,
 * cycles) are made by editing a parsed module. With FUSEBOX_CORPUS set,
 * every module of every corpus file must verify.
 */
#include <string.h>

#include "fb-hlo.h"
#include "fb-verify.h"

/* Scalar computations the cases call. */
static const char prelude[] =
  "HloModule m\n\n"
  "add {\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT s = f32[] add(x, y)\n}\n\n"
  "ge {\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT p = pred[] compare(x, y), direction=GE\n}\n\n"
  "lt {\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT p = pred[] compare(x, y), direction=LT\n}\n\n";

typedef struct {
  const char *path;      /* test path below /compiler/verify/ */
  const char *comps;     /* extra computations, before the entry */
  const char *entry;     /* body of ENTRY e { ... } */
  const char *bad;       /* NULL: must verify; else the instruction named in the error */
  const char *fault;     /* a part of the message */
} Case;

static const Case cases[] = {
  /* elementwise unary */
  { "unary/valid", NULL,
    "  a = f32[2] parameter(0)\n  c = c64[2] parameter(1)\n  n = f32[2] negate(a)\n"
    "  f = pred[2] is-finite(n)\n  r = f32[2] real(c)\n  i = f32[2] imag(c)\n  m = f32[2] abs(c)\n"
    "  ROOT t = (pred[2], f32[2], f32[2], f32[2]) tuple(f, r, i, m)\n", NULL, NULL },
  { "unary/is-finite-int", NULL,
    "  a = s32[2] parameter(0)\n  ROOT f = pred[2] is-finite(a)\n", "f", "is-finite needs a float operand" },
  { "unary/real-declared-complex", NULL,
    "  c = c64[2] parameter(0)\n  ROOT r = c64[2] real(c)\n", "r", "declared shape c64[2], but real of its operands gives f32[2]" },
  { "unary/exp-int", NULL,
    "  a = s32[2] parameter(0)\n  ROOT e = s32[2] exponential(a)\n", "e", "exponential needs a float or complex operand" },
  /* elementwise binary */
  { "binary/valid", NULL,
    "  a = f32[2] parameter(0)\n  b = f32[2] parameter(1)\n  i = s32[2] parameter(2)\n  p = pred[2] parameter(3)\n"
    "  s = f32[2] add(a, b)\n  l = s32[2] shift-left(i, i)\n  o = pred[2] or(p, p)\n  x = s32[2] xor(i, i)\n"
    "  c = c64[2] complex(a, b)\n  ROOT t = (f32[2], s32[2], pred[2], s32[2], c64[2]) tuple(s, l, o, x, c)\n", NULL, NULL },
  { "binary/shape-mismatch", NULL,
    "  a = f32[2] parameter(0)\n  b = f32[3] parameter(1)\n  ROOT add.3 = f32[2] add(a, b)\n", "add.3",
    "operand 1 has shape f32[3] but add needs f32[2] (same as operand 0)" },
  { "binary/type-mismatch", NULL,
    "  a = f32[2] parameter(0)\n  b = s32[2] parameter(1)\n  ROOT m = f32[2] multiply(a, b)\n", "m",
    "operand 1 has shape s32[2] but multiply needs f32[2]" },
  { "binary/shift-float", NULL,
    "  a = f32[2] parameter(0)\n  ROOT s = f32[2] shift-left(a, a)\n", "s", "shift-left needs integer operands" },
  { "binary/and-float", NULL,
    "  a = f32[2] parameter(0)\n  ROOT s = f32[2] and(a, a)\n", "s", "and needs integer or pred operands" },
  { "binary/complex-int", NULL,
    "  a = s32[2] parameter(0)\n  ROOT c = c64[2] complex(a, a)\n", "c", "complex needs f32 or f64 operands" },
  /* compare */
  { "compare/valid", NULL,
    "  a = f32[2] parameter(0)\n  ROOT c = pred[2] compare(a, a), direction=LT, type=TOTALORDER\n", NULL, NULL },
  { "compare/result-not-pred", NULL,
    "  a = f32[2] parameter(0)\n  ROOT c = f32[2] compare(a, a), direction=LT\n", "c",
    "declared shape f32[2], but compare of its operands gives pred[2]" },
  { "compare/wrong-type", NULL,
    "  a = f32[2] parameter(0)\n  ROOT c = pred[2] compare(a, a), direction=LT, type=SIGNED\n", "c",
    "compare type SIGNED does not apply to f32" },
  /* select */
  { "select/valid", NULL,
    "  p = pred[2] parameter(0)\n  q = pred[] parameter(1)\n  a = f32[2] parameter(2)\n"
    "  s = f32[2] select(p, a, a)\n  ROOT t = f32[2] select(q, s, a)\n", NULL, NULL },
  { "select/pred-not-pred", NULL,
    "  a = f32[2] parameter(0)\n  ROOT s = f32[2] select(a, a, a)\n", "s",
    "operand 0 has shape f32[2] but select needs pred[2] or pred[]" },
  /* clamp */
  { "clamp/valid", NULL,
    "  lo = f32[] parameter(0)\n  a = f32[2] parameter(1)\n  hi = f32[2] parameter(2)\n  ROOT c = f32[2] clamp(lo, a, hi)\n", NULL, NULL },
  { "clamp/bounds-shape", NULL,
    "  lo = f32[3] parameter(0)\n  a = f32[2] parameter(1)\n  ROOT c = f32[2] clamp(lo, a, lo)\n", "c",
    "operand 0 has shape f32[3] but clamp needs f32[] or f32[2]" },
  /* convert, bitcast-convert */
  { "convert/valid", NULL,
    "  a = f32[2] parameter(0)\n  c = s32[2] convert(a)\n  b = u8[2,4] bitcast-convert(a)\n"
    "  w = f32[2] bitcast-convert(b)\n  ROOT t = (s32[2], f32[2]) tuple(c, w)\n", NULL, NULL },
  { "convert/bitcast-width", NULL,
    "  a = f32[2] parameter(0)\n  ROOT b = u8[2] bitcast-convert(a)\n", "b",
    "declared shape u8[2], but bitcast-convert of its operands gives u8[2,4]" },
  { "convert/dims", NULL,
    "  a = f32[2] parameter(0)\n  ROOT c = s32[3] convert(a)\n", "c", "gives s32[2]" },
  /* broadcast, reshape, transpose */
  { "broadcast/valid", NULL,
    "  a = f32[3] parameter(0)\n  ROOT b = f32[2,3] broadcast(a), dimensions={1}\n", NULL, NULL },
  { "broadcast/size", NULL,
    "  a = f32[3] parameter(0)\n  ROOT b = f32[2,4] broadcast(a), dimensions={1}\n", "b",
    "operand dimension 0 (size 3) maps to output dimension 1 of size 4" },
  { "broadcast/count", NULL,
    "  a = f32[3] parameter(0)\n  ROOT b = f32[2,3] broadcast(a), dimensions={}\n", "b", "dimensions has 0 entries" },
  { "reshape/valid", NULL,
    "  a = f32[2,3] parameter(0)\n  ROOT r = f32[6] reshape(a)\n", NULL, NULL },
  { "reshape/count", NULL,
    "  a = f32[2,3] parameter(0)\n  ROOT r = f32[4] reshape(a)\n", "r", "reshape from f32[2,3] (6 elements) to f32[4] (4 elements)" },
  { "transpose/valid", NULL,
    "  a = f32[2,3] parameter(0)\n  ROOT t = f32[3,2] transpose(a), dimensions={1,0}\n", NULL, NULL },
  { "transpose/not-permutation", NULL,
    "  a = f32[2,3] parameter(0)\n  ROOT t = f32[2,2] transpose(a), dimensions={0,0}\n", "t", "transpose dimension 0 is listed twice" },
  { "transpose/dims", NULL,
    "  a = f32[2,3] parameter(0)\n  ROOT t = f32[2,3] transpose(a), dimensions={1,0}\n", "t", "gives f32[3,2]" },
  /* slices */
  { "slice/valid", NULL,
    "  a = f32[10] parameter(0)\n  ROOT s = f32[4] slice(a), slice={[1:8:2]}\n", NULL, NULL },
  { "slice/out-of-bounds", NULL,
    "  a = f32[10] parameter(0)\n  ROOT s = f32[4] slice(a), slice={[8:12]}\n", "s", "out of bounds for dimension 0 of size 10" },
  { "dynamic-slice/valid", NULL,
    "  a = f32[10,4] parameter(0)\n  i = s32[] parameter(1)\n"
    "  s = f32[2,4] dynamic-slice(a, i, i), dynamic_slice_sizes={2,4}\n"
    "  ROOT u = f32[10,4] dynamic-update-slice(a, s, i, i)\n", NULL, NULL },
  { "dynamic-slice/float-index", NULL,
    "  a = f32[10] parameter(0)\n  i = f32[] parameter(1)\n  ROOT s = f32[2] dynamic-slice(a, i), dynamic_slice_sizes={2}\n",
    "s", "start index operand 1 has shape f32[] but must be an integer scalar" },
  { "dynamic-slice/size", NULL,
    "  a = f32[10] parameter(0)\n  i = s32[] parameter(1)\n  ROOT s = f32[12] dynamic-slice(a, i), dynamic_slice_sizes={12}\n",
    "s", "slice size 12 does not fit dimension 0" },
  { "dynamic-update-slice/too-big", NULL,
    "  a = f32[4] parameter(0)\n  u = f32[5] parameter(1)\n  i = s32[] parameter(2)\n"
    "  ROOT d = f32[4] dynamic-update-slice(a, u, i)\n", "d", "does not fit in the operand f32[4]" },
  /* concatenate, pad, reverse, iota */
  { "concatenate/valid", NULL,
    "  a = f32[2,3] parameter(0)\n  b = f32[4,3] parameter(1)\n  ROOT c = f32[6,3] concatenate(a, b), dimensions={0}\n", NULL, NULL },
  { "concatenate/mismatch", NULL,
    "  a = f32[2,3] parameter(0)\n  b = f32[4,2] parameter(1)\n  ROOT c = f32[6,3] concatenate(a, b), dimensions={0}\n",
    "c", "operand 1 has shape f32[4,2] but concatenate along dimension 0" },
  { "pad/valid-negative", NULL,
    "  a = f32[4] parameter(0)\n  z = f32[] constant(0)\n  ROOT p = f32[5] pad(a, z), padding=-1_2\n", NULL, NULL },
  { "pad/interior", NULL,
    "  a = f32[4] parameter(0)\n  z = f32[] constant(0)\n  ROOT p = f32[4] pad(a, z), padding=0_0_1\n", "p",
    "declared shape f32[4], but pad of its operands gives f32[7]" },
  { "pad/value-type", NULL,
    "  a = f32[4] parameter(0)\n  z = s32[] constant(0)\n  ROOT p = f32[4] pad(a, z), padding=0_0\n", "p",
    "padding value has shape s32[] but must be f32[]" },
  { "reverse/valid", NULL,
    "  a = f32[2,3] parameter(0)\n  ROOT r = f32[2,3] reverse(a), dimensions={1}\n", NULL, NULL },
  { "reverse/range", NULL,
    "  a = f32[2,3] parameter(0)\n  ROOT r = f32[2,3] reverse(a), dimensions={2}\n", "r", "reverse dimension 2 is out of range" },
  { "iota/valid", NULL,
    "  ROOT i = s32[2,3] iota(), iota_dimension=1\n", NULL, NULL },
  { "iota/range", NULL,
    "  ROOT i = s32[2,3] iota(), iota_dimension=2\n", "i", "iota_dimension 2 is out of range" },
  /* gather, scatter */
  { "gather/valid", NULL,
    "  a = f32[10,4] parameter(0)\n  i = s32[3,1] parameter(1)\n"
    "  ROOT g = f32[3,4] gather(a, i), offset_dims={1}, collapsed_slice_dims={0}, start_index_map={0},"
    " index_vector_dim=1, slice_sizes={1,4}\n", NULL, NULL },
  { "gather/valid-batching", NULL,
    "  a = f32[2,10,4] parameter(0)\n  i = s32[2,3,1] parameter(1)\n"
    "  ROOT g = f32[2,3,4] gather(a, i), offset_dims={2}, collapsed_slice_dims={1}, start_index_map={1},"
    " operand_batching_dims={0}, start_indices_batching_dims={0}, index_vector_dim=2, slice_sizes={1,1,4}\n", NULL, NULL },
  { "gather/slice-size", NULL,
    "  a = f32[10,4] parameter(0)\n  i = s32[3,1] parameter(1)\n"
    "  ROOT g = f32[3,5] gather(a, i), offset_dims={1}, collapsed_slice_dims={0}, start_index_map={0},"
    " index_vector_dim=1, slice_sizes={1,5}\n", "g", "slice size 5 does not fit dimension 1" },
  { "gather/batching-size", NULL,
    "  a = f32[2,10,4] parameter(0)\n  i = s32[3,3,1] parameter(1)\n"
    "  ROOT g = f32[3,3,4] gather(a, i), offset_dims={2}, collapsed_slice_dims={1}, start_index_map={1},"
    " operand_batching_dims={0}, start_indices_batching_dims={0}, index_vector_dim=2, slice_sizes={1,1,4}\n",
    "g", "batching dimension sizes differ" },
  { "scatter/valid", NULL,
    "  a = f32[10,4] parameter(0)\n  i = s32[3,1] parameter(1)\n  u = f32[3,4] parameter(2)\n"
    "  ROOT s = f32[10,4] scatter(a, i, u), update_window_dims={1}, inserted_window_dims={0},"
    " scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add\n", NULL, NULL },
  { "scatter/valid-batching", NULL,
    "  a = f32[2,10,4] parameter(0)\n  i = s32[2,3,1] parameter(1)\n  u = f32[2,3,4] parameter(2)\n"
    "  ROOT s = f32[2,10,4] scatter(a, i, u), update_window_dims={2}, inserted_window_dims={1},"
    " input_batching_dims={0}, scatter_indices_batching_dims={0}, scatter_dims_to_operand_dims={1},"
    " index_vector_dim=2, to_apply=add\n", NULL, NULL },
  { "scatter/window-too-big", NULL,
    "  a = f32[10,4] parameter(0)\n  i = s32[3,1] parameter(1)\n  u = f32[3,5] parameter(2)\n"
    "  ROOT s = f32[10,4] scatter(a, i, u), update_window_dims={1}, inserted_window_dims={0},"
    " scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add\n", "s",
    "update window dimension 1 (size 5) does not fit operand dimension 1" },
  { "scatter/reducer", NULL,
    "  a = f32[10,4] parameter(0)\n  i = s32[3,1] parameter(1)\n  u = f32[3,4] parameter(2)\n"
    "  ROOT s = f32[10,4] scatter(a, i, u), update_window_dims={1}, inserted_window_dims={0},"
    " scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=ge\n", "s",
    "to_apply computation ge returns pred[] but should return f32[]" },
  /* reduce, reduce-window, select-and-scatter */
  { "reduce/valid", NULL,
    "  a = f32[4,5] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[5] reduce(a, z), dimensions={0}, to_apply=add\n", NULL, NULL },
  { "reduce/valid-variadic",
    "argmax {\n  v0 = f32[] parameter(0)\n  i0 = s32[] parameter(1)\n  v1 = f32[] parameter(2)\n  i1 = s32[] parameter(3)\n"
    "  g = pred[] compare(v0, v1), direction=GE\n  v = f32[] select(g, v0, v1)\n  i = s32[] select(g, i0, i1)\n"
    "  ROOT t = (f32[], s32[]) tuple(v, i)\n}\n\n",
    "  a = f32[4,5] parameter(0)\n  ix = s32[4,5] iota(), iota_dimension=1\n  z = f32[] constant(0)\n  zi = s32[] constant(0)\n"
    "  ROOT r = (f32[4], s32[4]) reduce(a, ix, z, zi), dimensions={1}, to_apply=argmax\n", NULL, NULL },
  { "reduce/reducer-arity", NULL,
    "  a = f32[4,5] parameter(0)\n  z = f32[] constant(0)\n"
    "  ROOT r = (f32[4], f32[4]) reduce(a, a, z, z), dimensions={1}, to_apply=add\n", "r",
    "to_apply computation add takes 2 parameters but reduce needs 4" },
  { "reduce/dims", NULL,
    "  a = f32[4,5] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[4] reduce(a, z), dimensions={0}, to_apply=add\n", "r",
    "declared shape f32[4], but reduce of its operands gives f32[5]" },
  { "reduce-window/valid", NULL,
    "  a = f32[4,4] parameter(0)\n  z = f32[] constant(0)\n"
    "  ROOT r = f32[2,2] reduce-window(a, z), window={size=2x2 stride=2x2}, to_apply=add\n", NULL, NULL },
  { "reduce-window/shape", NULL,
    "  a = f32[4,4] parameter(0)\n  z = f32[] constant(0)\n"
    "  ROOT r = f32[3,3] reduce-window(a, z), window={size=2x2 stride=2x2}, to_apply=add\n", "r", "gives f32[2,2]" },
  { "select-and-scatter/valid", NULL,
    "  a = f32[4,4] parameter(0)\n  s = f32[2,2] parameter(1)\n  z = f32[] constant(0)\n"
    "  ROOT r = f32[4,4] select-and-scatter(a, s, z), window={size=2x2 stride=2x2}, select=ge, scatter=add\n", NULL, NULL },
  { "select-and-scatter/source", NULL,
    "  a = f32[4,4] parameter(0)\n  s = f32[3,3] parameter(1)\n  z = f32[] constant(0)\n"
    "  ROOT r = f32[4,4] select-and-scatter(a, s, z), window={size=2x2 stride=2x2}, select=ge, scatter=add\n", "r",
    "source has shape f32[3,3] but the window over the operand gives f32[2,2]" },
  { "select-and-scatter/select-returns", NULL,
    "  a = f32[4,4] parameter(0)\n  s = f32[2,2] parameter(1)\n  z = f32[] constant(0)\n"
    "  ROOT r = f32[4,4] select-and-scatter(a, s, z), window={size=2x2 stride=2x2}, select=add, scatter=add\n", "r",
    "select computation add must return pred[]" },
  /* dot */
  { "dot/valid", NULL,
    "  a = f32[2,3] parameter(0)\n  b = f32[3,4] parameter(1)\n  h = f16[5,2,3] parameter(2)\n  k = f16[5,4,3] parameter(3)\n"
    "  d = f32[2,4] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
    "  e = f32[5,2,4] dot(h, k), lhs_batch_dims={0}, rhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_contracting_dims={2}\n"
    "  ROOT t = (f32[2,4], f32[5,2,4]) tuple(d, e)\n", NULL, NULL },
  { "dot/contracting", NULL,
    "  a = f32[2,3] parameter(0)\n  b = f32[4,4] parameter(1)\n"
    "  ROOT d = f32[2,4] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n", "d", "contracting dimensions differ" },
  { "dot/order", NULL,
    "  a = f32[5,2,3] parameter(0)\n  b = f32[5,3,4] parameter(1)\n"
    "  ROOT d = f32[2,4,5] dot(a, b), lhs_batch_dims={0}, rhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_contracting_dims={1}\n",
    "d", "gives f32[5,2,4]" },
  { "dot/int-narrowing", NULL,
    "  a = s32[2,3] parameter(0)\n  ROOT d = s8[2,2] dot(a, a), lhs_contracting_dims={1}, rhs_contracting_dims={1}\n",
    "d", "result type s8 is narrower than operand 0 type s32" },
  /* convolution */
  { "convolution/valid", NULL,
    "  x = f32[1,8,8,3] parameter(0)\n  k = f32[3,3,3,16] parameter(1)\n  dw = f32[3,3,1,3] parameter(2)\n"
    "  c = f32[1,8,8,16] convolution(x, k), window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f\n"
    "  s = f32[1,4,4,16] convolution(x, k), window={size=3x3 stride=2x2 pad=1_1x1_1}, dim_labels=b01f_01io->b01f\n"
    "  d = f32[1,6,6,3] convolution(x, dw), window={size=3x3}, dim_labels=b01f_01io->b01f, feature_group_count=3\n"
    "  l = f32[1,4,4,3] convolution(x, dw), window={size=3x3 rhs_dilate=2x2}, dim_labels=b01f_01io->b01f, feature_group_count=3\n"
    "  ROOT t = (f32[1,8,8,16], f32[1,4,4,16], f32[1,6,6,3], f32[1,4,4,3]) tuple(c, s, d, l)\n", NULL, NULL },
  { "convolution/valid-batch-group", NULL,
    "  x = f32[4,8,8,3] parameter(0)\n  k = f32[3,3,3,2] parameter(1)\n"
    "  ROOT c = f32[2,6,6,2] convolution(x, k), window={size=3x3}, dim_labels=b01f_01io->b01f, batch_group_count=2\n", NULL, NULL },
  { "convolution/features", NULL,
    "  x = f32[1,8,8,3] parameter(0)\n  k = f32[3,3,4,16] parameter(1)\n"
    "  ROOT c = f32[1,6,6,16] convolution(x, k), window={size=3x3}, dim_labels=b01f_01io->b01f\n", "c",
    "input has 3 features but the kernel takes 4 per group" },
  { "convolution/shape", NULL,
    "  x = f32[1,8,8,3] parameter(0)\n  k = f32[3,3,3,16] parameter(1)\n"
    "  ROOT c = f32[1,8,8,16] convolution(x, k), window={size=3x3}, dim_labels=b01f_01io->b01f\n", "c", "gives f32[1,6,6,16]" },
  /* batch norm */
  { "batch-norm/valid", NULL,
    "  x = f32[2,4] parameter(0)\n  s = f32[4] parameter(1)\n"
    "  t = (f32[2,4], f32[4], f32[4]) batch-norm-training(x, s, s), epsilon=0.001, feature_index=1\n"
    "  i = f32[2,4] batch-norm-inference(x, s, s, s, s), epsilon=0.001, feature_index=1\n"
    "  g = (f32[2,4], f32[4], f32[4]) batch-norm-grad(x, s, s, s, x), epsilon=0.001, feature_index=1\n"
    "  ROOT r = ((f32[2,4], f32[4], f32[4]), f32[2,4], (f32[2,4], f32[4], f32[4])) tuple(t, i, g)\n", NULL, NULL },
  { "batch-norm/scale", NULL,
    "  x = f32[2,4] parameter(0)\n  s = f32[3] parameter(1)\n"
    "  ROOT t = (f32[2,4], f32[4], f32[4]) batch-norm-training(x, s, s), epsilon=0.001, feature_index=1\n", "t",
    "operand 1 has shape f32[3] but batch-norm-training needs f32[4]" },
  /* sort */
  { "sort/valid",
    "cmp2 {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  c = s32[] parameter(2)\n  d = s32[] parameter(3)\n"
    "  ROOT p = pred[] compare(a, b), direction=LT\n}\n\n",
    "  a = f32[4] parameter(0)\n  i = s32[4] iota(), iota_dimension=0\n  s = f32[4] sort(a), dimensions={0}, to_apply=lt\n"
    "  v = (f32[4], s32[4]) sort(a, i), dimensions={0}, to_apply=cmp2\n  ROOT t = (f32[4], (f32[4], s32[4])) tuple(s, v)\n", NULL, NULL },
  { "sort/comparator-result", NULL,
    "  a = f32[4] parameter(0)\n  ROOT s = f32[4] sort(a), dimensions={0}, to_apply=add\n", "s",
    "comparator add must return pred[], not f32[]" },
  { "sort/comparator-arity", NULL,
    "  a = f32[4] parameter(0)\n  ROOT s = (f32[4], f32[4]) sort(a, a), dimensions={0}, to_apply=lt\n", "s",
    "comparator computation lt takes 2 parameters but sort needs 4" },
  /* while */
  { "while/valid",
    "cond {\n  p = (s32[], f32[2]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  n = s32[] constant(10)\n"
    "  ROOT l = pred[] compare(i, n), direction=LT\n}\n\n"
    "body {\n  p = (s32[], f32[2]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n  x = f32[2] get-tuple-element(p), index=1\n"
    "  one = s32[] constant(1)\n  j = s32[] add(i, one)\n  y = f32[2] add(x, x)\n  ROOT t = (s32[], f32[2]) tuple(j, y)\n}\n\n",
    "  x = f32[2] parameter(0)\n  z = s32[] constant(0)\n  t = (s32[], f32[2]) tuple(z, x)\n"
    "  ROOT w = (s32[], f32[2]) while(t), condition=cond, body=body\n", NULL, NULL },
  { "while/condition-type",
    "cond {\n  p = f32[2] parameter(0)\n  ROOT c = f32[] constant(1)\n}\n\n"
    "body {\n  ROOT p = f32[2] parameter(0)\n}\n\n",
    "  x = f32[2] parameter(0)\n  ROOT w = f32[2] while(x), condition=cond, body=body\n", "w",
    "condition cond must return pred[], not f32[]" },
  { "while/body-state",
    "cond {\n  p = f32[2] parameter(0)\n  ROOT c = pred[] constant(false)\n}\n\n"
    "body {\n  p = f32[2] parameter(0)\n  c = f32[] constant(1)\n  ROOT q = f32[3] broadcast(c), dimensions={}\n}\n\n",
    "  x = f32[2] parameter(0)\n  ROOT w = f32[2] while(x), condition=cond, body=body\n", "w",
    "body body returns f32[3] but the loop state is f32[2]" },
  /* call, conditional */
  { "call/valid", NULL,
    "  a = f32[] parameter(0)\n  ROOT c = f32[] call(a, a), to_apply=add\n", NULL, NULL },
  { "call/arity", NULL,
    "  a = f32[] parameter(0)\n  ROOT c = f32[] call(a), to_apply=add\n", "c",
    "to_apply computation add takes 2 parameters but call needs 1" },
  { "call/arg-shape", NULL,
    "  a = f32[2] parameter(0)\n  ROOT c = f32[] call(a, a), to_apply=add\n", "c",
    "parameter 0 has shape f32[] but operand 0 is f32[2]" },
  { "conditional/valid",
    "neg {\n  x = f32[] parameter(0)\n  ROOT n = f32[] negate(x)\n}\n\n"
    "id {\n  ROOT x = f32[] parameter(0)\n}\n\n",
    "  p = pred[] parameter(0)\n  i = s32[] parameter(1)\n  a = f32[] parameter(2)\n"
    "  c = f32[] conditional(p, a, a), true_computation=neg, false_computation=id\n"
    "  ROOT d = f32[] conditional(i, a, c, a), branch_computations={neg, id, neg}\n", NULL, NULL },
  { "conditional/selector",
    "id {\n  ROOT x = f32[] parameter(0)\n}\n\n",
    "  p = f32[] parameter(0)\n  ROOT c = f32[] conditional(p, p, p), true_computation=id, false_computation=id\n", "c",
    "operand 0 has shape f32[] but conditional needs pred[] or s32[]" },
  { "conditional/branches",
    "id {\n  ROOT x = f32[] parameter(0)\n}\n\n"
    "two {\n  x = f32[] parameter(0)\n  ROOT b = f32[2] broadcast(x), dimensions={}\n}\n\n",
    "  i = s32[] parameter(0)\n  a = f32[] parameter(1)\n  ROOT c = f32[] conditional(i, a, a), branch_computations={id, two}\n", "c",
    "branch two returns f32[2] but branch id returns f32[]" },
  /* tuples */
  { "tuple/valid", NULL,
    "  a = f32[2] parameter(0)\n  t = (f32[2], f32[2]) tuple(a, a)\n  ROOT g = f32[2] get-tuple-element(t), index=1\n", NULL, NULL },
  { "tuple/index", NULL,
    "  a = f32[2] parameter(0)\n  t = (f32[2], f32[2]) tuple(a, a)\n  ROOT g = f32[2] get-tuple-element(t), index=2\n", "g",
    "index=2 is out of range for a tuple of 2 elements" },
  { "tuple/declared", NULL,
    "  a = f32[2] parameter(0)\n  ROOT t = (f32[2], f32[3]) tuple(a, a)\n", "t", "gives (f32[2], f32[2])" },
  /* custom-call, rng */
  { "custom-call/valid", NULL,
    "  a = f32[2] parameter(0)\n  ROOT c = (s32[7], f32[]) custom-call(a), custom_call_target=\"anything\"\n", NULL, NULL },
  { "rng/valid", NULL,
    "  s = u64[2] parameter(0)\n  lo = f32[] constant(0)\n  hi = f32[] constant(1)\n"
    "  b = (u64[2], u32[4,4]) rng-bit-generator(s), algorithm=rng_default\n"
    "  r = f32[3] rng(lo, hi), distribution=rng_uniform\n  ROOT t = ((u64[2], u32[4,4]), f32[3]) tuple(b, r)\n", NULL, NULL },
  { "rng/state", NULL,
    "  s = u64[2] parameter(0)\n  ROOT b = (u64[3], u32[4,4]) rng-bit-generator(s), algorithm=rng_default\n", "b",
    "the new state u64[3] must have the shape of the state operand u64[2]" },
  { "rng/bounds", NULL,
    "  lo = s32[] constant(0)\n  ROOT r = f32[3] rng(lo, lo), distribution=rng_uniform\n", "r",
    "operand 0 has shape s32[] but rng needs f32[]" },
  /* collectives */
  { "collectives/valid", NULL,
    "  a = f32[4,2] parameter(0)\n  r = f32[4,2] all-reduce(a), replica_groups={}, to_apply=add\n"
    "  g = f32[4,8] all-gather(r), replica_groups={}, dimensions={1}\n"
    "  s = f32[4,2] reduce-scatter(g), replica_groups={}, dimensions={1}, to_apply=add\n"
    "  ROOT p = f32[4,2] collective-permute(s), source_target_pairs={{0,0}}\n", NULL, NULL },
  { "collectives/all-reduce-shape", NULL,
    "  a = f32[4,2] parameter(0)\n  ROOT r = f32[4,3] all-reduce(a), replica_groups={}, to_apply=add\n", "r",
    "gives f32[4,2]" },
  { "collectives/all-gather-multiple", NULL,
    "  a = f32[4,3] parameter(0)\n  ROOT g = f32[4,8] all-gather(a), replica_groups={}, dimensions={1}\n", "g",
    "all-gather size 8 along dimension 1 is not a multiple of 3" },
  /* fusion, map */
  { "fusion/valid",
    "fused {\n  p0 = f32[2] parameter(0)\n  p1 = f32[2] parameter(1)\n  ROOT m = f32[2] multiply(p0, p1)\n}\n\n",
    "  a = f32[2] parameter(0)\n  ROOT f = f32[2] fusion(a, a), kind=kLoop, calls=fused\n", NULL, NULL },
  { "fusion/param-shape",
    "fused {\n  p0 = f32[3] parameter(0)\n  ROOT m = f32[3] negate(p0)\n}\n\n",
    "  a = f32[2] parameter(0)\n  ROOT f = f32[3] fusion(a), kind=kLoop, calls=fused\n", "f",
    "fused computation fused: parameter 0 has shape f32[3] but operand 0 is f32[2]" },
  { "fusion/root-shape",
    "fused {\n  p0 = f32[2] parameter(0)\n  ROOT m = f32[2] negate(p0)\n}\n\n",
    "  a = f32[2] parameter(0)\n  ROOT f = f32[4] fusion(a), kind=kLoop, calls=fused\n", "f",
    "declared shape f32[4], but fusion of its operands gives f32[2]" },
  { "map/valid", NULL,
    "  a = f32[4] parameter(0)\n  ROOT m = f32[4] map(a, a), dimensions={0}, to_apply=add\n", NULL, NULL },
  { "map/arity", NULL,
    "  a = f32[4] parameter(0)\n  ROOT m = f32[4] map(a), dimensions={0}, to_apply=add\n", "m",
    "to_apply computation add takes 2 parameters but map needs 1" },
  /* reduce-precision, topk */
  { "reduce-precision/valid", NULL,
    "  a = f32[4] parameter(0)\n  ROOT r = f32[4] reduce-precision(a), exponent_bits=5, mantissa_bits=10\n", NULL, NULL },
  { "reduce-precision/int", NULL,
    "  a = s32[4] parameter(0)\n  ROOT r = s32[4] reduce-precision(a), exponent_bits=5, mantissa_bits=10\n", "r",
    "reduce-precision needs a float operand" },
  { "topk/valid", NULL,
    "  a = f32[4,10] parameter(0)\n  ROOT t = (f32[4,3], s32[4,3]) topk(a), k=3, largest=true\n", NULL, NULL },
  { "topk/k", NULL,
    "  a = f32[4,10] parameter(0)\n  ROOT t = (f32[4,11], s32[4,11]) topk(a), k=11, largest=true\n", "t",
    "k=11 does not fit the last dimension of f32[4,10]" },
  /* leaves and the rest */
  { "leaf/valid", NULL,
    "  a = f32[2] parameter(0)\n  c = f32[2] constant({1, 2})\n  ROOT s = f32[2] add(a, c)\n", NULL, NULL },
  { "get-dimension-size/valid", NULL,
    "  a = f32[4,<=8] parameter(0)\n  ROOT s = s32[] get-dimension-size(a), dimensions={1}\n", NULL, NULL },
  { "get-dimension-size/range", NULL,
    "  a = f32[4,8] parameter(0)\n  ROOT s = s32[] get-dimension-size(a), dimensions={2}\n", "s",
    "get-dimension-size needs one dimension below the rank of f32[4,8]" },
  { "opt-barrier/valid", NULL,
    "  a = f32[2] parameter(0)\n  t = (f32[2], f32[2]) tuple(a, a)\n  ROOT b = (f32[2], f32[2]) opt-barrier(t)\n", NULL, NULL },
  { "opt-barrier/shape", NULL,
    "  a = f32[2] parameter(0)\n  ROOT b = f32[3] opt-barrier(a)\n", "b", "gives f32[2]" },
  { "tokens/valid", NULL,
    "  a = f32[2] parameter(0)\n  t0 = token[] after-all()\n  t1 = token[] after-all(t0, t0)\n"
    "  ROOT d = f32[2] add-dependency(a, t1)\n", NULL, NULL },
  { "tokens/after-all-operand", NULL,
    "  a = f32[2] parameter(0)\n  ROOT t = token[] after-all(a)\n", "t", "operand 0 has shape f32[2] but after-all joins tokens" },
  { "tokens/add-dependency", NULL,
    "  a = f32[2] parameter(0)\n  ROOT d = f32[2] add-dependency(a, a)\n", "d", "add-dependency needs a token" },
  { "other/given-shape", NULL,
    "  a = f32[4,4] parameter(0)\n  ROOT c = f32[4,4] cholesky(a), lower=true\n", NULL, NULL },
};

static const char *
case_text (const Case *c, GString *out)
{
  g_string_assign (out, prelude);
  if (c->comps)
    g_string_append (out, c->comps);
  g_string_append_printf (out, "ENTRY e {\n%s}\n", c->entry);
  return out->str;
}

static void
test_case (gconstpointer data)
{
  const Case *c = data;
  g_autoptr (GString) text = g_string_new (NULL);
  g_autoptr (GError) error = NULL;

  case_text (c, text);
  FbModule *m = fb_hlo_parse (text->str, text->len, "m.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  gboolean ok = fb_verify (m, &error);
  if (c->bad == NULL)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
    }
  else
    {
      g_autofree char *who = g_strdup_printf (": %%%s: ", c->bad);
      g_assert_false (ok);
      g_assert_error (error, FB_ERROR, FB_ERROR_VERIFY);
      g_test_message ("%s", error->message);
      if (!g_str_has_prefix (error->message, "m.hlo:") || strstr (error->message, who) == NULL
          || strstr (error->message, c->fault) == NULL)
        g_error ("unexpected message: %s\n(wanted %s and '%s')", error->message, who, c->fault);
    }
  fb_module_free (m);
}

/* The exact text of a verifier error: file, line and column of the
 * instruction, its name, then the fault. */
static void
test_message_format (void)
{
  static const char text[] =
    "HloModule m\n"
    "\n"
    "ENTRY e {\n"
    "  a = f32[2] parameter(0)\n"
    "  b = f32[3] parameter(1)\n"
    "\n"
    "  add.3 = f32[2] add(a, b)\n"
    "  ROOT n = f32[2] negate(add.3)\n"
    "}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "m.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_false (fb_verify (m, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_VERIFY);
  g_assert_cmpstr (error->message, ==, "m.hlo:7:3: %add.3: operand 1 has shape f32[3] but add needs f32[2] (same as operand 0)");
  fb_module_free (m);
}

/* fb_infer_shape gives the shape rather than only a yes or no. */
static void
test_infer_shape (void)
{
  static const char text[] =
    "HloModule m\n"
    "ENTRY e {\n"
    "  a = f32[5,2,3] parameter(0)\n"
    "  b = f32[5,3,4] parameter(1)\n"
    "  ROOT d = f32[5,2,4]{2,1,0} dot(a, b), lhs_batch_dims={0}, rhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_contracting_dims={1}\n"
    "}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "m.hlo", 0, &error);
  g_assert_no_error (error);
  FbShape *s = fb_infer_shape (m->entry->root, &error);
  g_assert_no_error (error);
  g_autofree char *str = fb_shape_to_string (s);
  g_assert_cmpstr (str, ==, "f32[5,2,4]");
  fb_module_free (m);
}

static FbModule *
parse_ok (const char *text)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "s.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_true (fb_verify (m, NULL));
  return m;
}

static void
expect_fault (FbModule *m, const char *fault)
{
  g_autoptr (GError) error = NULL;
  g_assert_false (fb_verify (m, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_VERIFY);
  if (strstr (error->message, fault) == NULL)
    g_error ("unexpected message: %s\n(wanted '%s')", error->message, fault);
}

static const char structure_text[] =
  "HloModule s\n"
  "\n"
  "other {\n"
  "  o = f32[2] parameter(0)\n"
  "  ROOT on = f32[2] negate(o)\n"
  "}\n"
  "\n"
  "ENTRY e {\n"
  "  a = f32[2] parameter(0)\n"
  "  b = f32[2] parameter(1)\n"
  "  n = f32[2] negate(a)\n"
  "  ROOT s = f32[2] add(n, b)\n"
  "}\n";

static FbInstr *
find (FbComputation *comp, const char *name)
{
  for (FbInstr *in = comp->first; in; in = in->next)
    if (strcmp (in->name, name) == 0)
      return in;
  g_assert_not_reached ();
  return NULL;
}

static void
test_structure_parameter_gap (void)
{
  FbModule *m = parse_ok (structure_text);
  find (m->entry, "b")->parameter_number = 2;
  expect_fault (m, "s.hlo:10:3: %b: parameter number 2 leaves a gap");
  fb_module_free (m);
}

static void
test_structure_parameter_twice (void)
{
  FbModule *m = parse_ok (structure_text);
  find (m->entry, "b")->parameter_number = 0;
  expect_fault (m, "%b: parameter number 0 is also used by %a");
  fb_module_free (m);
}

static void
test_structure_no_root (void)
{
  FbModule *m = parse_ok (structure_text);
  fb_module_find_computation (m, "other")->root = NULL;
  expect_fault (m, "computation other: has no root instruction");
  fb_module_free (m);
}

static void
test_structure_foreign_operand (void)
{
  FbModule *m = parse_ok (structure_text);
  FbInstr *s = find (m->entry, "s");
  fb_instr_set_operand (s, 1, find (fb_module_find_computation (m, "other"), "on"));
  expect_fault (m, "%s: operand 1 %on belongs to computation other, not e");
  fb_module_free (m);
}

static void
test_structure_cycle (void)
{
  FbModule *m = parse_ok (structure_text);
  fb_instr_set_operand (find (m->entry, "n"), 0, find (m->entry, "s"));
  expect_fault (m, "is part of a cycle");
  fb_module_free (m);
}

static void
test_structure_missing_callee (void)
{
  static const char text[] =
    "HloModule s\n"
    "f {\n  x = f32[2] parameter(0)\n  ROOT y = f32[2] negate(x)\n}\n"
    "ENTRY e {\n  a = f32[2] parameter(0)\n  ROOT c = f32[2] call(a), to_apply=f\n}\n";
  FbModule *m = parse_ok (text);
  FbComputation *f = fb_module_find_computation (m, "f");
  fb_module_remove_computation (m, f);
  expect_fault (m, "%c: to_apply refers to a computation that is not in the module");
  fb_module_free (m);
}

/* A constant whose literal does not have its declared shape (the parser
 * never builds one, a faulty pass could). */
static void
test_structure_constant_literal (void)
{
  static const char text[] =
    "HloModule s\n"
    "ENTRY e {\n  k = f32[2] constant({1, 2})\n  ROOT n = f32[2] negate(k)\n}\n";
  FbModule *m = parse_ok (text);
  FbInstr *k = find (m->entry, "k");
  int64_t three = 3;
  k->shape = fb_shape_new_array (m->arena, FB_F32, 1, &three);
  expect_fault (m, "%k: the literal has shape f32[2] but the constant is declared f32[3]");
  fb_module_free (m);
}

/* A custom-call keeps any declared shape, but its operands must exist. */
static void
test_structure_missing_operand (void)
{
  static const char text[] =
    "HloModule s\n"
    "ENTRY e {\n  a = f32[2] parameter(0)\n"
    "  ROOT c = (f32[7], s32[]) custom-call(a), custom_call_target=\"anything\"\n}\n";
  FbModule *m = parse_ok (text);
  find (m->entry, "c")->operands[0] = NULL;
  expect_fault (m, "%c: operand 0 does not exist");
  fb_module_free (m);
}

static void
test_header_alias (void)
{
  static const char good[] =
    "HloModule s, input_output_alias={ {0}: (0, {}, may-alias) }\n"
    "ENTRY e {\n  a = f32[2] parameter(0)\n  b = s32[] parameter(1)\n  n = f32[2] negate(a)\n"
    "  ROOT t = (f32[2], s32[]) tuple(n, b)\n}\n";
  static const char bad_shape[] =
    "HloModule s, input_output_alias={ {1}: (0, {}, may-alias) }\n"
    "ENTRY e {\n  a = f32[2] parameter(0)\n  b = s32[] parameter(1)\n  n = f32[2] negate(a)\n"
    "  ROOT t = (f32[2], s32[]) tuple(n, b)\n}\n";
  static const char bad_index[] =
    "HloModule s, input_output_alias={ {2}: (0, {}, may-alias) }\n"
    "ENTRY e {\n  a = f32[2] parameter(0)\n  b = s32[] parameter(1)\n  n = f32[2] negate(a)\n"
    "  ROOT t = (f32[2], s32[]) tuple(n, b)\n}\n";
  g_autoptr (GError) error = NULL;

  FbModule *m = parse_ok (good);
  fb_module_free (m);
  m = fb_hlo_parse (bad_shape, strlen (bad_shape), "s.hlo", 0, &error);
  g_assert_no_error (error);
  expect_fault (m, "input_output_alias: output {1} is s32[] but parameter 0 is f32[2]");
  fb_module_free (m);
  m = fb_hlo_parse (bad_index, strlen (bad_index), "s.hlo", 0, &error);
  g_assert_no_error (error);
  expect_fault (m, "input_output_alias: output {2} does not exist in the result (f32[2], s32[])");
  fb_module_free (m);
}

static void
test_header_entry_layout (void)
{
  static const char good[] =
    "HloModule s, entry_computation_layout={(f32[2]{0})->f32[2]{0}}\n"
    "ENTRY e {\n  a = f32[2] parameter(0)\n  ROOT n = f32[2] negate(a)\n}\n";
  static const char bad[] =
    "HloModule s, entry_computation_layout={(f32[3]{0})->f32[2]{0}}\n"
    "ENTRY e {\n  a = f32[2] parameter(0)\n  ROOT n = f32[2] negate(a)\n}\n";
  static const char bad_result[] =
    "HloModule s, entry_computation_layout={(f32[2]{0})->s32[2]{0}}\n"
    "ENTRY e {\n  a = f32[2] parameter(0)\n  ROOT n = f32[2] negate(a)\n}\n";
  g_autoptr (GError) error = NULL;

  FbModule *m = parse_ok (good);
  fb_module_free (m);
  m = fb_hlo_parse (bad, strlen (bad), "s.hlo", 0, &error);
  g_assert_no_error (error);
  expect_fault (m, "entry_computation_layout: parameter 0 is f32[3] but %a is f32[2]");
  fb_module_free (m);
  m = fb_hlo_parse (bad_result, strlen (bad_result), "s.hlo", 0, &error);
  g_assert_no_error (error);
  expect_fault (m, "entry_computation_layout: result is s32[2] but the root %n is f32[2]");
  fb_module_free (m);
}

/* Every module of every corpus file verifies. */
static void
test_corpus (void)
{
  const char *dir = g_getenv ("FUSEBOX_CORPUS");
  if (dir == NULL)
    {
      g_test_skip ("FUSEBOX_CORPUS is not set; it names the folder of real HLO modules");
      return;
    }
  g_autofree char *hlo_dir = g_build_filename (dir, "hlo", NULL);
  const char *root = g_file_test (hlo_dir, G_FILE_TEST_IS_DIR) ? hlo_dir : dir;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) d = g_dir_open (root, 0, &error);
  g_assert_no_error (error);
  int n_files = 0;
  const char *name;
  while ((name = g_dir_read_name (d)))
    {
      if (!g_str_has_suffix (name, ".hlo"))
        continue;
      g_autofree char *path = g_build_filename (root, name, NULL);
      g_autofree char *text = NULL;
      gsize len;
      g_assert_true (g_file_get_contents (path, &text, &len, NULL));
      int n = fb_hlo_count_modules (text, len);
      for (int i = 0; i < n; i++)
        {
          FbModule *m = fb_hlo_parse (text, len, path, i, &error);
          g_assert_no_error (error);
          fb_verify (m, &error);
          g_assert_no_error (error);
          fb_module_free (m);
        }
      n_files++;
    }
  g_assert_cmpint (n_files, >, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/compiler/verify/%s", cases[i].path);
      g_test_add_data_func (path, &cases[i], test_case);
    }
  g_test_add_func ("/compiler/verify/message-format", test_message_format);
  g_test_add_func ("/compiler/verify/infer-shape", test_infer_shape);
  g_test_add_func ("/compiler/verify/structure/parameter-gap", test_structure_parameter_gap);
  g_test_add_func ("/compiler/verify/structure/parameter-twice", test_structure_parameter_twice);
  g_test_add_func ("/compiler/verify/structure/no-root", test_structure_no_root);
  g_test_add_func ("/compiler/verify/structure/foreign-operand", test_structure_foreign_operand);
  g_test_add_func ("/compiler/verify/structure/cycle", test_structure_cycle);
  g_test_add_func ("/compiler/verify/structure/missing-callee", test_structure_missing_callee);
  g_test_add_func ("/compiler/verify/structure/constant-literal", test_structure_constant_literal);
  g_test_add_func ("/compiler/verify/structure/missing-operand", test_structure_missing_operand);
  g_test_add_func ("/compiler/verify/header/alias", test_header_alias);
  g_test_add_func ("/compiler/verify/header/entry-layout", test_header_entry_layout);
  g_test_add_func ("/compiler/verify/corpus", test_corpus);
  return g_test_run ();
}
