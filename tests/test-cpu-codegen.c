/* SPDX-License-Identifier: MIT
 *
 * Tests of CPU code generation: every kernel here is written as HLO text,
 * compiled to native code, run on random inputs over its whole range and
 * split into two parts, and compared with the reference interpreter on the
 * same module. Also: the polynomial math functions against the C library
 * over wide ranges, the disk cache (hits, and a corrupt entry rebuilt), and
 * that a large f32 kernel is vectorised on a host with AVX-512.
 */
#include <float.h>
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-cpu-codegen.h"
#include "fb-cpu-private.h"

/* ------------------------------------------------------------ helpers */

static FbCpuJit *shared_jit;

typedef struct {
  double lo, hi;        /* float range */
  int64_t ilo, ihi;     /* integer range */
} Range;

static const Range default_range = { -3.0, 3.0, -9, 9 };

static void
fill_random (FbLiteral *lit, GRand *rand, const Range *r)
{
  FbElemType t = lit->shape->type;
  int64_t n = fb_shape_elements (lit->shape);
  for (int64_t i = 0; i < n; i++)
    {
      switch (fb_elem_type_kind (t))
        {
        case FB_KIND_PRED:
          lit->data[i] = g_rand_boolean (rand);
          break;
        case FB_KIND_FLOAT:
          fb_literal_set_f64 (lit, i, g_rand_double_range (rand, r->lo, r->hi));
          break;
        case FB_KIND_UINT:
          fb_literal_set_s64 (lit, i, g_rand_int_range (rand, 0, (gint32) MAX (r->ihi, 1) + 1));
          break;
        default:
          fb_literal_set_s64 (lit, i, g_rand_int_range (rand, (gint32) r->ilo, (gint32) r->ihi + 1));
          break;
        }
    }
}

static double
tolerance (FbElemType t)
{
  switch (t)
    {
    case FB_F16: return 4e-3;
    case FB_BF16: return 2e-2;
    case FB_F32: return 2e-5;
    case FB_F64: return 1e-12;
    default: return 0;
    }
}

static void
assert_close (const FbLiteral *want, const FbLiteral *got, const char *what)
{
  FbElemType t = want->shape->type;
  int64_t n = fb_shape_elements (want->shape);
  g_assert_cmpint (got->shape->type, ==, t);
  for (int64_t i = 0; i < n; i++)
    {
      if (fb_elem_type_is_float (t))
        {
          double a = fb_literal_get_f64 (want, i), b = fb_literal_get_f64 (got, i);
          if (isnan (a) && isnan (b))
            continue;
          if (isinf (a) && a == b)
            continue;
          double tol = tolerance (t) * MAX (1.0, fabs (a));
          if (!(fabs (a - b) <= tol))
            g_error ("%s: element %" G_GINT64_FORMAT ": expected %.9g, got %.9g", what, i, a, b);
        }
      else if (fb_literal_get_s64 (want, i) != fb_literal_get_s64 (got, i))
        g_error ("%s: element %" G_GINT64_FORMAT ": expected %" G_GINT64_FORMAT ", got %" G_GINT64_FORMAT,
                 what, i, fb_literal_get_s64 (want, i), fb_literal_get_s64 (got, i));
    }
}

static FbInstr *
find_instr (FbModule *m, const char *name)
{
  for (FbInstr *i = m->entry->first; i != NULL; i = i->next)
    if (strcmp (i->name, name) == 0)
      return i;
  return NULL;
}

/* Compiles instruction @name of @text (its operands are entry parameters),
 * runs it on random inputs, all at once and in two parts, and compares with
 * the interpreter. */
static void
check_kernel_range (const char *text, const char *name, const Range *range)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "test.hlo", 0, &error);
  g_assert_no_error (error);
  FbInstr *instr = name != NULL ? find_instr (m, name) : m->entry->root;
  g_assert_nonnull (instr);
  g_autoptr (GString) why = g_string_new (NULL);
  if (!fb_cpu_can_generate_why (instr, why))
    g_error ("%%%s cannot be generated: %s", instr->name, why->str);

  FbArena *arena = fb_arena_new ();
  GRand *rand = g_rand_new_with_seed (42);
  int n_args = m->entry->n_params;
  FbLiteral **args = g_new0 (FbLiteral *, MAX (n_args, 1));
  for (int i = 0; i < n_args; i++)
    {
      args[i] = fb_literal_new (arena, m->entry->params[i]->shape);
      fill_random (args[i], rand, range);
    }
  FbLiteral *want = fb_interp_run (m, m->entry, arena, n_args, args, NULL, &error);
  g_assert_no_error (error);

  FbCpuKernel *k = NULL;
  g_assert_true (fb_cpu_jit_compile (shared_jit, 1, &instr, &k, &error));
  g_assert_no_error (error);
  g_assert_nonnull (k->fn);
  g_assert_cmpint (k->n_buffers, ==, k->n_outputs + instr->n_operands);
  g_assert_nonnull (strstr (k->llvm_ir, k->name));

  for (int split = 0; split < 2; split++)
    {
      void **bufs = g_new0 (void *, k->n_buffers);
      FbLiteral **outs = g_new0 (FbLiteral *, k->n_outputs);
      for (int o = 0; o < k->n_outputs; o++)
        {
          FbShape *s = fb_shape_is_tuple (instr->shape) ? instr->shape->elems[o] : instr->shape;
          outs[o] = fb_literal_new (arena, s);
          memset (outs[o]->data, 0x5a, (size_t) fb_shape_bytes (s));   /* every element must be written */
          bufs[o] = outs[o]->data;
        }
      for (int i = 0; i < instr->n_operands; i++)
        {
          FbInstr *op = instr->operands[i];
          if (op->opcode == FB_OP_CONSTANT)
            bufs[k->n_outputs + i] = op->literal->data;
          else
            {
              g_assert_cmpint (op->opcode, ==, FB_OP_PARAMETER);
              bufs[k->n_outputs + i] = args[op->parameter_number]->data;
            }
        }
      if (split == 0)
        {
          /* An empty part writes nothing, wherever it lies. */
          k->fn (bufs, 0, 0);
          k->fn (bufs, k->outer_extent / 2, k->outer_extent / 2);
          k->fn (bufs, k->outer_extent, k->outer_extent);
          for (int o = 0; o < k->n_outputs; o++)
            for (int64_t b = 0; b < fb_shape_bytes (outs[o]->shape); b++)
              if (((guint8 *) outs[o]->data)[b] != 0x5a)
                g_error ("%s output %d: an empty part wrote byte %" G_GINT64_FORMAT, instr->name, o, b);
          k->fn (bufs, 0, k->outer_extent);
        }
      else
        {
          int64_t h = k->outer_extent / 2;
          k->fn (bufs, h, k->outer_extent);
          k->fn (bufs, 0, h);
        }
      for (int o = 0; o < k->n_outputs; o++)
        {
          const FbLiteral *w = fb_shape_is_tuple (instr->shape) ? want->elems[o] : want;
          g_autofree char *what = g_strdup_printf ("%s output %d%s", instr->name, o, split ? " (split)" : "");
          assert_close (w, outs[o], what);
        }
      g_free (bufs);
      g_free (outs);
    }
  fb_cpu_kernel_free (k);
  g_free (args);
  g_rand_free (rand);
  fb_arena_free (arena);
  fb_module_free (m);
}

static void
check_kernel (const char *text, const char *name)
{
  check_kernel_range (text, name, &default_range);
}

/* ---------------------------------------------------- elementwise */

static const char *float_ops =
  "HloModule m\n"
  "fused {\n"
  "  a = T[8,37] parameter(0)\n"
  "  b = T[8,37] parameter(1)\n"
  "  add = T[8,37] add(a, b)\n"
  "  sub = T[8,37] subtract(a, b)\n"
  "  mul = T[8,37] multiply(a, b)\n"
  "  div = T[8,37] divide(a, b)\n"
  "  max = T[8,37] maximum(a, b)\n"
  "  min = T[8,37] minimum(a, b)\n"
  "  neg = T[8,37] negate(a)\n"
  "  abs = T[8,37] abs(a)\n"
  "  sign = T[8,37] sign(a)\n"
  "  floor = T[8,37] floor(a)\n"
  "  ceil = T[8,37] ceil(a)\n"
  "  rafz = T[8,37] round-nearest-afz(a)\n"
  "  reven = T[8,37] round-nearest-even(a)\n"
  "  sqrt = T[8,37] sqrt(abs)\n"
  "  rsqrt = T[8,37] rsqrt(abs)\n"
  "  exp = T[8,37] exponential(a)\n"
  "  log = T[8,37] log(abs)\n"
  "  tanh = T[8,37] tanh(a)\n"
  "  logistic = T[8,37] logistic(a)\n"
  "  erf = T[8,37] erf(a)\n"
  "  sin = T[8,37] sine(a)\n"
  "  pow = T[8,37] power(abs, b)\n"
  "  rem = T[8,37] remainder(a, b)\n"
  "  lt = pred[8,37] compare(a, b), direction=LT\n"
  "  sel = T[8,37] select(lt, a, b)\n"
  "  clamp = T[8,37] clamp(b, a, abs)\n"
  "  conv = s32[8,37] convert(mul)\n"
  "  fin = pred[8,37] is-finite(div)\n"
  "  ROOT t = (T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37],"
  " T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37],"
  " T[8,37], T[8,37], pred[8,37], T[8,37], T[8,37], s32[8,37], pred[8,37])"
  " tuple(add, sub, mul, div, max, min, neg, abs, sign, floor, ceil, rafz, reven, sqrt, rsqrt, exp, log,"
  " tanh, logistic, erf, sin, pow, rem, lt, sel, clamp, conv, fin)\n"
  "}\n"
  "ENTRY e {\n"
  "  a = T[8,37] parameter(0)\n"
  "  b = T[8,37] parameter(1)\n"
  "  ROOT f = (T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37],"
  " T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37], T[8,37],"
  " T[8,37], T[8,37], pred[8,37], T[8,37], T[8,37], s32[8,37], pred[8,37])"
  " fusion(a, b), kind=kLoop, calls=fused\n"
  "}\n";

static const char *int_ops =
  "HloModule m\n"
  "fused {\n"
  "  a = T[5,29] parameter(0)\n"
  "  b = T[5,29] parameter(1)\n"
  "  add = T[5,29] add(a, b)\n"
  "  sub = T[5,29] subtract(a, b)\n"
  "  mul = T[5,29] multiply(a, b)\n"
  "  div = T[5,29] divide(a, b)\n"
  "  rem = T[5,29] remainder(a, b)\n"
  "  max = T[5,29] maximum(a, b)\n"
  "  min = T[5,29] minimum(a, b)\n"
  "  and = T[5,29] and(a, b)\n"
  "  or = T[5,29] or(a, b)\n"
  "  xor = T[5,29] xor(a, b)\n"
  "  shl = T[5,29] shift-left(a, b)\n"
  "  shrl = T[5,29] shift-right-logical(a, b)\n"
  "  shra = T[5,29] shift-right-arithmetic(a, b)\n"
  "  neg = T[5,29] negate(a)\n"
  "  abs = T[5,29] abs(a)\n"
  "  sign = T[5,29] sign(a)\n"
  "  not = T[5,29] not(a)\n"
  "  pop = T[5,29] popcnt(a)\n"
  "  clz = T[5,29] count-leading-zeros(a)\n"
  "  pow = T[5,29] power(a, b)\n"
  "  ge = pred[5,29] compare(a, b), direction=GE\n"
  "  sel = T[5,29] select(ge, a, b)\n"
  "  clamp = T[5,29] clamp(b, a, abs)\n"
  "  conv = f32[5,29] convert(mul)\n"
  "  c8 = s8[5,29] convert(mul)\n"
  "  ROOT t = (T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29],"
  " T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29],"
  " pred[5,29], T[5,29], T[5,29], f32[5,29], s8[5,29])"
  " tuple(add, sub, mul, div, rem, max, min, and, or, xor, shl, shrl, shra, neg, abs, sign, not, pop, clz,"
  " pow, ge, sel, clamp, conv, c8)\n"
  "}\n"
  "ENTRY e {\n"
  "  a = T[5,29] parameter(0)\n"
  "  b = T[5,29] parameter(1)\n"
  "  ROOT f = (T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29],"
  " T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29], T[5,29],"
  " pred[5,29], T[5,29], T[5,29], f32[5,29], s8[5,29])"
  " fusion(a, b), kind=kLoop, calls=fused\n"
  "}\n";

static char *
with_type (const char *tmpl, const char *type)
{
  g_auto (GStrv) parts = g_strsplit (tmpl, "T[", -1);
  g_autofree char *sep = g_strconcat (type, "[", NULL);
  return g_strjoinv (sep, parts);
}

static void
test_float_types (void)
{
  const char *types[] = { "f32", "f64", "f16", "bf16" };
  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autofree char *text = with_type (float_ops, types[i]);
      g_test_message ("type %s", types[i]);
      check_kernel (text, NULL);
    }
}

static void
test_int_types (void)
{
  const char *types[] = { "s32", "s8", "s16", "s64", "u8", "u16", "u32", "u64" };
  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autofree char *text = with_type (int_ops, types[i]);
      g_test_message ("type %s", types[i]);
      check_kernel (text, NULL);
    }
}

static void
test_pred (void)
{
  check_kernel ("HloModule m\n"
                "fused {\n"
                "  a = pred[7,9] parameter(0)\n"
                "  b = pred[7,9] parameter(1)\n"
                "  x = s32[7,9] parameter(2)\n"
                "  and = pred[7,9] and(a, b)\n"
                "  or = pred[7,9] or(a, b)\n"
                "  xor = pred[7,9] xor(a, b)\n"
                "  not = pred[7,9] not(a)\n"
                "  sel = s32[7,9] select(xor, x, x)\n"
                "  c = pred[7,9] convert(x)\n"
                "  f = f32[7,9] convert(a)\n"
                "  ROOT t = (pred[7,9], pred[7,9], pred[7,9], pred[7,9], s32[7,9], pred[7,9], f32[7,9])"
                " tuple(and, or, xor, not, sel, c, f)\n"
                "}\n"
                "ENTRY e {\n"
                "  a = pred[7,9] parameter(0)\n"
                "  b = pred[7,9] parameter(1)\n"
                "  x = s32[7,9] parameter(2)\n"
                "  ROOT f = (pred[7,9], pred[7,9], pred[7,9], pred[7,9], s32[7,9], pred[7,9], f32[7,9])"
                " fusion(a, b, x), kind=kLoop, calls=fused\n"
                "}\n", NULL);
}

static void
test_single_elementwise (void)
{
  /* a lone instruction, not a fusion; scalar operands of clamp broadcast */
  check_kernel ("HloModule m\nENTRY e {\n  a = f32[1000] parameter(0)\n  b = f32[1000] parameter(1)\n"
                "  ROOT m = f32[1000] multiply(a, b)\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  lo = f32[] parameter(0)\n  x = f32[3,50] parameter(1)\n"
                "  hi = f32[] parameter(2)\n  ROOT c = f32[3,50] clamp(lo, x, hi)\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  a = bf16[77] parameter(0)\n"
                "  ROOT c = f16[77] convert(a)\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  a = f32[4,4] parameter(0)\n"
                "  ROOT c = s32[4,4] bitcast-convert(a)\n}\n", NULL);
}

/* ------------------------------------------------------- movement */

static void
test_movement (void)
{
  check_kernel ("HloModule m\nENTRY e {\n  a = f32[3,5] parameter(0)\n"
                "  ROOT b = f32[3,4,5] broadcast(a), dimensions={0,2}\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  a = s32[2,3,4] parameter(0)\n"
                "  ROOT t = s32[4,2,3] transpose(a), dimensions={2,0,1}\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  a = f32[10,12] parameter(0)\n"
                "  ROOT s = f32[3,4] slice(a), slice={[1:10:3], [2:12:3]}\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  a = f32[4,5] parameter(0)\n  z = f32[] parameter(1)\n"
                "  ROOT p = f32[9,10] pad(a, z), padding=1_1_1x-1_2_1\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  a = s16[3,2] parameter(0)\n  b = s16[3,5] parameter(1)\n"
                "  c = s16[3,1] parameter(2)\n"
                "  ROOT c2 = s16[3,8] concatenate(a, b, c), dimensions={1}\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  a = u8[6,7] parameter(0)\n"
                "  ROOT r = u8[6,7] reverse(a), dimensions={0,1}\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  ROOT i = f32[5,6] iota(), iota_dimension=1\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  a = f32[6,10] parameter(0)\n"
                "  ROOT r = f32[4,15] reshape(a)\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  a = f32[8,9] parameter(0)\n  i = s32[] parameter(1)\n"
                "  j = s32[] parameter(2)\n"
                "  ROOT d = f32[3,4] dynamic-slice(a, i, j), dynamic_slice_sizes={3,4}\n}\n", NULL);
  check_kernel ("HloModule m\nENTRY e {\n  a = f32[8,9] parameter(0)\n  u = f32[3,4] parameter(1)\n"
                "  i = s32[] parameter(2)\n  j = s32[] parameter(3)\n"
                "  ROOT d = f32[8,9] dynamic-update-slice(a, u, i, j)\n}\n", NULL);
}

static void
test_movement_fusion (void)
{
  /* a loop fusion mixing movement ops, an array constant and elementwise ops */
  check_kernel ("HloModule m\n"
                "fused {\n"
                "  a = f32[4,6] parameter(0)\n"
                "  b = f32[6] parameter(1)\n"
                "  t = f32[6,4] transpose(a), dimensions={1,0}\n"
                "  bb = f32[6,4] broadcast(b), dimensions={0}\n"
                "  k = f32[4] constant({1.5, -2, 0.25, 3})\n"
                "  kb = f32[6,4] broadcast(k), dimensions={1}\n"
                "  m = f32[6,4] multiply(t, bb)\n"
                "  s = f32[6,4] add(m, kb)\n"
                "  r = f32[6,4] reverse(s), dimensions={1}\n"
                "  z = f32[] constant(0)\n"
                "  p = f32[8,6] pad(r, z), padding=1_1x1_1\n"
                "  ROOT e = f32[8,6] exponential(p)\n"
                "}\n"
                "ENTRY e {\n"
                "  a = f32[4,6] parameter(0)\n"
                "  b = f32[6] parameter(1)\n"
                "  ROOT f = f32[8,6] fusion(a, b), kind=kLoop, calls=fused\n"
                "}\n", NULL);
}

/* ------------------------------------------------------ reductions */

static const char *add_f32 =
  "add {\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT s = f32[] add(x, y)\n}\n"
  "max {\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT s = f32[] maximum(x, y)\n}\n";

static void
test_reduce_rows_columns (void)
{
  g_autofree char *rows = g_strconcat ("HloModule m\n", add_f32,
                                       "ENTRY e {\n  a = f32[33,250] parameter(0)\n  z = f32[] constant(0)\n"
                                       "  ROOT r = f32[33] reduce(a, z), dimensions={1}, to_apply=add\n}\n", NULL);
  check_kernel (rows, NULL);
  g_autofree char *cols = g_strconcat ("HloModule m\n", add_f32,
                                       "ENTRY e {\n  a = f32[120,70] parameter(0)\n  z = f32[] constant(0)\n"
                                       "  ROOT r = f32[70] reduce(a, z), dimensions={0}, to_apply=add\n}\n", NULL);
  check_kernel (cols, "r");
  g_autofree char *mid = g_strconcat ("HloModule m\n", add_f32,
                                      "ENTRY e {\n  a = f32[5,6,7] parameter(0)\n  z = f32[] constant(-inf)\n"
                                      "  ROOT r = f32[5,7] reduce(a, z), dimensions={1}, to_apply=max\n}\n", NULL);
  check_kernel (mid, "r");
  g_autofree char *all = g_strconcat ("HloModule m\n", add_f32,
                                      "ENTRY e {\n  a = f32[9,11] parameter(0)\n  z = f32[] constant(0)\n"
                                      "  ROOT r = f32[] reduce(a, z), dimensions={0,1}, to_apply=add\n}\n", NULL);
  check_kernel (all, "r");
}

static void
test_softmax (void)
{
  g_autofree char *text = g_strconcat (
    "HloModule m\n", add_f32,
    "fused {\n"
    "  x = f32[16,100] parameter(0)\n"
    "  ninf = f32[] constant(-inf)\n"
    "  mx = f32[16] reduce(x, ninf), dimensions={1}, to_apply=max\n"
    "  mb = f32[16,100] broadcast(mx), dimensions={0}\n"
    "  d = f32[16,100] subtract(x, mb)\n"
    "  e = f32[16,100] exponential(d)\n"
    "  zero = f32[] constant(0)\n"
    "  s = f32[16] reduce(e, zero), dimensions={1}, to_apply=add\n"
    "  sb = f32[16,100] broadcast(s), dimensions={0}\n"
    "  ROOT o = f32[16,100] divide(e, sb)\n"
    "}\n"
    "ENTRY e {\n  x = f32[16,100] parameter(0)\n"
    "  ROOT f = f32[16,100] fusion(x), kind=kLoop, calls=fused\n}\n", NULL);
  check_kernel (text, NULL);
}

static void
test_layer_norm (void)
{
  /* multi-output of mixed rank: the normalised rows and each row's mean */
  g_autofree char *text = g_strconcat (
    "HloModule m\n", add_f32,
    "fused {\n"
    "  x = f32[12,64] parameter(0)\n"
    "  g = f32[64] parameter(1)\n"
    "  zero = f32[] constant(0)\n"
    "  n = f32[] constant(0.015625)\n"
    "  s = f32[12] reduce(x, zero), dimensions={1}, to_apply=add\n"
    "  nb = f32[12] broadcast(n), dimensions={}\n"
    "  mean = f32[12] multiply(s, nb)\n"
    "  mb = f32[12,64] broadcast(mean), dimensions={0}\n"
    "  c = f32[12,64] subtract(x, mb)\n"
    "  c2 = f32[12,64] multiply(c, c)\n"
    "  v = f32[12] reduce(c2, zero), dimensions={1}, to_apply=add\n"
    "  var = f32[12] multiply(v, nb)\n"
    "  eps = f32[] constant(1e-5)\n"
    "  eb = f32[12] broadcast(eps), dimensions={}\n"
    "  ve = f32[12] add(var, eb)\n"
    "  r = f32[12] rsqrt(ve)\n"
    "  rb = f32[12,64] broadcast(r), dimensions={0}\n"
    "  y = f32[12,64] multiply(c, rb)\n"
    "  gb = f32[12,64] broadcast(g), dimensions={1}\n"
    "  o = f32[12,64] multiply(y, gb)\n"
    "  ROOT t = (f32[12,64], f32[12]) tuple(o, mean)\n"
    "}\n"
    "ENTRY e {\n  x = f32[12,64] parameter(0)\n  g = f32[64] parameter(1)\n"
    "  ROOT f = (f32[12,64], f32[12]) fusion(x, g), kind=kLoop, calls=fused\n}\n", NULL);
  check_kernel (text, NULL);
}

static void
test_input_fusions (void)
{
  /* row reduction of a computed value, with two outputs sharing the loop */
  g_autofree char *rows = g_strconcat (
    "HloModule m\n", add_f32,
    "fused {\n"
    "  x = f32[20,300] parameter(0)\n"
    "  zero = f32[] constant(0)\n"
    "  x2 = f32[20,300] multiply(x, x)\n"
    "  s = f32[20] reduce(x, zero), dimensions={1}, to_apply=add\n"
    "  q = f32[20] reduce(x2, zero), dimensions={1}, to_apply=add\n"
    "  ROOT t = (f32[20], f32[20]) tuple(s, q)\n"
    "}\n"
    "ENTRY e {\n  x = f32[20,300] parameter(0)\n"
    "  ROOT f = (f32[20], f32[20]) fusion(x), kind=kInput, calls=fused\n}\n", NULL);
  check_kernel (rows, NULL);
  /* column reduction of a computed value */
  g_autofree char *cols = g_strconcat (
    "HloModule m\n", add_f32,
    "fused {\n"
    "  x = f32[64,40] parameter(0)\n"
    "  b = f32[40] parameter(1)\n"
    "  bb = f32[64,40] broadcast(b), dimensions={1}\n"
    "  y = f32[64,40] multiply(x, bb)\n"
    "  zero = f32[] constant(0)\n"
    "  ROOT s = f32[40] reduce(y, zero), dimensions={0}, to_apply=add\n"
    "}\n"
    "ENTRY e {\n  x = f32[64,40] parameter(0)\n  b = f32[40] parameter(1)\n"
    "  ROOT f = f32[40] fusion(x, b), kind=kInput, calls=fused\n}\n", NULL);
  check_kernel (cols, NULL);
  /* argmax: a variadic reduce */
  check_kernel ("HloModule m\n"
                "argmax {\n"
                "  av = f32[] parameter(0)\n  ai = s32[] parameter(1)\n"
                "  bv = f32[] parameter(2)\n  bi = s32[] parameter(3)\n"
                "  gt = pred[] compare(av, bv), direction=GE\n"
                "  v = f32[] select(gt, av, bv)\n  i = s32[] select(gt, ai, bi)\n"
                "  ROOT t = (f32[], s32[]) tuple(v, i)\n"
                "}\n"
                "ENTRY e {\n  x = f32[6,50] parameter(0)\n  io = s32[6,50] parameter(1)\n"
                "  ninf = f32[] constant(-inf)\n  z = s32[] constant(0)\n"
                "  ROOT r = (f32[6], s32[6]) reduce(x, io, ninf, z), dimensions={1}, to_apply=argmax\n}\n",
                "r");
}

static void
test_horizontal_fusion (void)
{
  /* outputs of unrelated shapes, as horizontal fusion makes them: a scalar,
   * rows longer than a unit of work (9000), a pad, and reductions long
   * enough to count as many units each */
  g_autofree char *text = g_strconcat (
    "HloModule m\n", add_f32,
    "fused {\n"
    "  a = f32[7,13] parameter(0)\n"
    "  b = f32[5] parameter(1)\n"
    "  c = s32[3,2,4] parameter(2)\n"
    "  d = f32[3,9000] parameter(3)\n"
    "  e = f32[7,13] exponential(a)\n"
    "  zero = f32[] constant(0)\n"
    "  s = f32[13] reduce(a, zero), dimensions={0}, to_apply=add\n"
    "  n = f32[5] negate(b)\n"
    "  t = s32[4,3,2] transpose(c), dimensions={2,0,1}\n"
    "  all = f32[] reduce(b, zero), dimensions={0}, to_apply=add\n"
    "  nd = f32[3,9000] negate(d)\n"
    "  p = f32[10,17] pad(a, zero), padding=1_2x1_3\n"
    "  rows = f32[3] reduce(d, zero), dimensions={1}, to_apply=add\n"
    "  ROOT r = (f32[7,13], f32[13], f32[5], s32[4,3,2], f32[], f32[3,9000], f32[10,17], f32[3]) "
    "tuple(e, s, n, t, all, nd, p, rows)\n"
    "}\n"
    "ENTRY e {\n  a = f32[7,13] parameter(0)\n  b = f32[5] parameter(1)\n  c = s32[3,2,4] parameter(2)\n"
    "  d = f32[3,9000] parameter(3)\n"
    "  ROOT f = (f32[7,13], f32[13], f32[5], s32[4,3,2], f32[], f32[3,9000], f32[10,17], f32[3]) "
    "fusion(a, b, c, d), "
    "kind=kLoop, calls=fused\n}\n", NULL);
  check_kernel (text, NULL);
}

/* ------------------------------------------------------------ math */

/* ------------------------------------------- row reductions, broadcast */

/* Layer norm over the rows of f32[@rows,@cols] and the tanh form of GELU,
 * one kInput fusion: two row reductions whose results are broadcast back
 * along the rows and consumed elementwise. */
static char *
ln_gelu_text (int rows, int cols)
{
  return g_strdup_printf (
    "HloModule m\n%3$s"
    "fused {\n"
    "  x = f32[%1$d,%2$d] parameter(0)\n"
    "  zero = f32[] constant(0)\n"
    "  n = f32[] constant(%2$d)\n"
    "  sum = f32[%1$d] reduce(x, zero), dimensions={1}, to_apply=add\n"
    "  nb = f32[%1$d] broadcast(n), dimensions={}\n"
    "  mean = f32[%1$d] divide(sum, nb)\n"
    "  mb = f32[%1$d,%2$d] broadcast(mean), dimensions={0}\n"
    "  d = f32[%1$d,%2$d] subtract(x, mb)\n"
    "  d2 = f32[%1$d,%2$d] multiply(d, d)\n"
    "  v = f32[%1$d] reduce(d2, zero), dimensions={1}, to_apply=add\n"
    "  var = f32[%1$d] divide(v, nb)\n"
    "  ce = f32[] constant(1e-5)\n"
    "  eps = f32[%1$d] broadcast(ce), dimensions={}\n"
    "  ve = f32[%1$d] add(var, eps)\n"
    "  r = f32[%1$d] rsqrt(ve)\n"
    "  rb = f32[%1$d,%2$d] broadcast(r), dimensions={0}\n"
    "  y = f32[%1$d,%2$d] multiply(d, rb)\n"
    "  y3 = f32[%1$d,%2$d] multiply(y, y)\n"
    "  y3b = f32[%1$d,%2$d] multiply(y3, y)\n"
    "  k1 = f32[] constant(0.044715)\n"
    "  c1 = f32[%1$d,%2$d] broadcast(k1), dimensions={}\n"
    "  t1 = f32[%1$d,%2$d] multiply(y3b, c1)\n"
    "  t2 = f32[%1$d,%2$d] add(y, t1)\n"
    "  k2 = f32[] constant(0.7978845608)\n"
    "  c2 = f32[%1$d,%2$d] broadcast(k2), dimensions={}\n"
    "  t3 = f32[%1$d,%2$d] multiply(t2, c2)\n"
    "  th = f32[%1$d,%2$d] tanh(t3)\n"
    "  k3 = f32[] constant(1)\n"
    "  one = f32[%1$d,%2$d] broadcast(k3), dimensions={}\n"
    "  t4 = f32[%1$d,%2$d] add(th, one)\n"
    "  k4 = f32[] constant(0.5)\n"
    "  half = f32[%1$d,%2$d] broadcast(k4), dimensions={}\n"
    "  t5 = f32[%1$d,%2$d] multiply(y, half)\n"
    "  ROOT g = f32[%1$d,%2$d] multiply(t5, t4)\n"
    "}\n"
    "ENTRY e {\n"
    "  p = f32[%1$d,%2$d] parameter(0)\n"
    "  ROOT f = f32[%1$d,%2$d] fusion(p), kind=kInput, calls=fused\n"
    "}\n", rows, cols, add_f32);
}

/* Row lengths that are not a multiple of the vector width: the remainder
 * of each row (and rows shorter than one vector) must match too. */
static void
test_row_reduction_odd_rows (void)
{
  static const int shapes[][2] = { { 37, 1003 }, { 3, 17 }, { 5, 1 }, { 2, 15 }, { 9, 33 } };
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      g_autofree char *text = ln_gelu_text (shapes[i][0], shapes[i][1]);
      check_kernel (text, NULL);
    }
}

/* A large output whose rows are whole cache lines is written with
 * streaming stores when the buffer is 64-byte aligned, with plain stores
 * otherwise; both give the interpreter's values, and so does a range that
 * starts mid-way (a thread's part). 16400 is a multiple of 16 elements but
 * not of 32, so the vector loops end on a half step. */
static void
test_streamed_output (void)
{
  enum { ROWS = 256, COLS = 16400 };
  g_autofree char *text = ln_gelu_text (ROWS, COLS);
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "stream.hlo", 0, &error);
  g_assert_no_error (error);
  FbArena *arena = fb_arena_new ();
  GRand *rand = g_rand_new_with_seed (3);
  FbLiteral *x = fb_literal_new (arena, m->entry->params[0]->shape);
  fill_random (x, rand, &default_range);
  FbLiteral *want = fb_interp_run (m, m->entry, arena, 1, &x, NULL, &error);
  g_assert_no_error (error);

  FbInstr *f = m->entry->root;
  FbCpuKernel *k = NULL;
  g_assert_true (fb_cpu_jit_compile (shared_jit, 1, &f, &k, &error));
  g_assert_no_error (error);
  g_assert_nonnull (strstr (k->llvm_ir, "!nontemporal"));

  gsize bytes = (gsize) ROWS * COLS * sizeof (float);
  guint8 *block = g_malloc (bytes + 128);
  guint8 *aligned = (guint8 *) (((guintptr) block + 63) & ~(guintptr) 63);
  for (int misaligned = 0; misaligned < 2; misaligned++)
    {
      FbLiteral got = { .shape = f->shape, .data = aligned + (misaligned ? 16 : 0) };
      memset (got.data, 0x5a, bytes);   /* every element must be written */
      void *bufs[2] = { got.data, x->data };
      k->fn (bufs, ROWS / 3, ROWS);
      k->fn (bufs, 0, ROWS / 3);
      assert_close (want, &got, misaligned ? "plain stores" : "streaming stores");
    }
  g_free (block);
  fb_cpu_kernel_free (k);
  g_rand_free (rand);
  fb_arena_free (arena);
  fb_module_free (m);
}

static void
test_math_accuracy (void)
{
  const char *text =
    "HloModule m\n"
    "fused {\n"
    "  x = f32[200000] parameter(0)\n"
    "  y = f32[200000] parameter(1)\n"
    "  e = f32[200000] exponential(x)\n"
    "  l = f32[200000] log(y)\n"
    "  t = f32[200000] tanh(x)\n"
    "  r = f32[200000] erf(x)\n"
    "  s = f32[200000] logistic(x)\n"
    "  ROOT o = (f32[200000], f32[200000], f32[200000], f32[200000], f32[200000]) tuple(e, l, t, r, s)\n"
    "}\n"
    "ENTRY e {\n  x = f32[200000] parameter(0)\n  y = f32[200000] parameter(1)\n"
    "  ROOT f = (f32[200000], f32[200000], f32[200000], f32[200000], f32[200000]) fusion(x, y), kind=kLoop, calls=fused\n}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "math.hlo", 0, &error);
  g_assert_no_error (error);
  FbInstr *f = m->entry->root;
  FbCpuKernel *k = NULL;
  g_assert_true (fb_cpu_jit_compile (shared_jit, 1, &f, &k, &error));
  g_assert_no_error (error);

  enum { N = 200000 };
  float *x = g_new (float, N), *y = g_new (float, N);
  float *o[5];
  for (int i = 0; i < 5; i++)
    o[i] = g_new0 (float, N);
  GRand *rand = g_rand_new_with_seed (7);
  for (int i = 0; i < N; i++)
    {
      /* x: dense near 0, then out to +-110; y: log-uniform over the whole f32 range */
      double u = g_rand_double (rand);
      x[i] = (float) (i < N / 2 ? g_rand_double_range (rand, -10, 10) : g_rand_double_range (rand, -110, 110));
      y[i] = (float) exp (-103.0 + u * (88.0 + 103.0));
    }
  x[0] = 0; x[1] = -0.0f; x[2] = NAN; x[3] = INFINITY; x[4] = -INFINITY; x[5] = 88.7f; x[6] = -87.0f;
  y[0] = 0; y[1] = 1; y[2] = NAN; y[3] = INFINITY; y[4] = -1; y[5] = 1e-45f; y[6] = FLT_MAX;
  void *bufs[7] = { o[0], o[1], o[2], o[3], o[4], x, y };
  k->fn (bufs, 0, k->outer_extent);

  double max_rel_exp = 0, max_rel_log = 0, max_abs_tanh = 0, max_abs_erf = 0, max_abs_logistic = 0;
  for (int i = 0; i < N; i++)
    {
      double ex = exp ((double) x[i]), lg = log ((double) y[i]), th = tanh ((double) x[i]);
      double ef = erf ((double) x[i]), ls = 1.0 / (1.0 + exp (-(double) x[i]));
      if (isnan (x[i]))
        {
          for (int j = 0; j < 5; j++)
            if (j != 1)
              g_assert_true (isnan (o[j][i]));
        }
      else
        {
          if (ex > FLT_MAX)
            g_assert_true (isinf (o[0][i]));
          else if (ex >= FLT_MIN)
            max_rel_exp = MAX (max_rel_exp, fabs (o[0][i] - ex) / ex);
          else
            g_assert_cmpfloat (fabs (o[0][i] - ex), <=, 2 * FLT_MIN);
          max_abs_tanh = MAX (max_abs_tanh, fabs (o[2][i] - th));
          max_abs_erf = MAX (max_abs_erf, fabs (o[3][i] - ef));
          max_abs_logistic = MAX (max_abs_logistic, fabs (o[4][i] - ls));
        }
      if (isnan (y[i]) || y[i] < 0)
        g_assert_true (isnan (o[1][i]));
      else if (isinf (lg))
        g_assert_true (isinf (o[1][i]) && (o[1][i] > 0) == (lg > 0));
      else if (y[i] != 1)
        max_rel_log = MAX (max_rel_log, fabs (o[1][i] - lg) / MAX (fabs (lg), 1e-30));
      else
        g_assert_cmpfloat (o[1][i], ==, 0);
    }
  g_test_message ("max errors: exp %.3g rel, log %.3g rel, tanh %.3g, erf %.3g, logistic %.3g", max_rel_exp,
                  max_rel_log, max_abs_tanh, max_abs_erf, max_abs_logistic);
  g_assert_cmpfloat (max_rel_exp, <, 2.5e-7);
  g_assert_cmpfloat (max_rel_log, <, 2.5e-7);
  g_assert_cmpfloat (max_abs_tanh, <, 3.5e-7);
  g_assert_cmpfloat (max_abs_erf, <, 1.5e-6);
  g_assert_cmpfloat (max_abs_logistic, <, 3e-7);
  /* exp(0) and tanh(0) are exact */
  g_assert_cmpfloat (o[0][0], ==, 1.0f);
  g_assert_cmpfloat (o[2][0], ==, 0.0f);

  g_rand_free (rand);
  for (int i = 0; i < 5; i++)
    g_free (o[i]);
  g_free (x);
  g_free (y);
  fb_cpu_kernel_free (k);
  fb_module_free (m);
}

/* ----------------------------------------------------------- cache */

static const char *cache_text =
  "HloModule m\nENTRY e {\n  a = f32[100] parameter(0)\n  ROOT t = f32[100] tanh(a)\n}\n";

static gboolean
compile_cached (const char *dir, float *out)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (cache_text, strlen (cache_text), "cache.hlo", 0, &error);
  g_assert_no_error (error);
  FbCpuJit *jit = fb_cpu_jit_new (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (fb_cpu_jit_get_cache_dir (jit), ==, dir);
  FbInstr *root = m->entry->root;
  FbCpuKernel *k = NULL;
  g_assert_true (fb_cpu_jit_compile (jit, 1, &root, &k, &error));
  g_assert_no_error (error);
  g_assert_nonnull (k->asm_text);
  g_assert_nonnull (strstr (k->llvm_ir, "define"));
  float a[100];
  for (int i = 0; i < 100; i++)
    a[i] = (float) i / 20.0f - 2.5f;
  void *bufs[2] = { out, a };
  k->fn (bufs, 0, k->outer_extent);
  for (int i = 0; i < 100; i++)
    g_assert_cmpfloat (fabs (out[i] - tanh (a[i])), <, 1e-6);
  gboolean hit = k->from_cache;
  fb_cpu_kernel_free (k);
  fb_cpu_jit_free (jit);
  fb_module_free (m);
  return hit;
}

static void
test_cache (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("fb-kernels-XXXXXX", &error);
  g_assert_no_error (error);
  float out[100];

  g_assert_false (compile_cached (dir, out));
  g_assert_true (compile_cached (dir, out));

  /* corrupt the entry: it is ignored, rebuilt, and then hits again */
  GDir *d = g_dir_open (dir, 0, &error);
  g_assert_no_error (error);
  const char *name;
  int n = 0;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *data = NULL;
      gsize len;
      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      g_assert_cmpuint (len, >, 200);
      data[len / 2] ^= 0x55;
      data[100] ^= 0x1;
      g_assert_true (g_file_set_contents (path, data, (gssize) len, NULL));
      n++;
    }
  g_dir_close (d);
  g_assert_cmpint (n, ==, 1);
  g_assert_false (compile_cached (dir, out));
  g_assert_true (compile_cached (dir, out));

  /* a truncated entry too */
  d = g_dir_open (dir, 0, NULL);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_assert_true (g_file_set_contents (path, "FBK1", 4, NULL));
    }
  g_dir_close (d);
  g_assert_false (compile_cached (dir, out));

  d = g_dir_open (dir, 0, NULL);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_remove (path);
    }
  g_dir_close (d);
  g_rmdir (dir);
}

/* ------------------------------------------------------ vectorised */

static void
test_vectorised (void)
{
  if (!fb_cpu_host_has_avx512 ())
    {
      g_test_skip ("the host has no AVX-512");
      return;
    }
  const char *text = "HloModule m\nENTRY e {\n  a = f32[65536] parameter(0)\n  b = f32[65536] parameter(1)\n"
                     "  m = f32[65536] multiply(a, b)\n  ROOT s = f32[65536] add(m, a)\n}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "v.hlo", 0, &error);
  g_assert_no_error (error);
  /* a fusion is not needed: compile the multiply and the add separately */
  FbInstr *instrs[2] = { find_instr (m, "m"), find_instr (m, "s") };
  FbCpuKernel *k[2] = { NULL, NULL };
  g_assert_true (fb_cpu_jit_compile (shared_jit, 2, instrs, k, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 2; i++)
    {
      g_assert_true (strstr (k[i]->asm_text, "zmm") != NULL || strstr (k[i]->asm_text, "ymm") != NULL);
      g_assert_cmpint (k[i]->outer_extent, ==, 65536);
      fb_cpu_kernel_free (k[i]);
    }
  fb_module_free (m);
}

/* ------------------------------------------------------------ errors */

static void
test_unsupported (void)
{
  const char *text = "HloModule m\nENTRY e {\n  a = f32[4,4] parameter(0)\n"
                     "  ROOT d = f32[4,4] dot(a, a), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "d.hlo", 0, &error);
  g_assert_no_error (error);
  FbInstr *d = m->entry->root;
  g_autoptr (GString) why = g_string_new (NULL);
  g_assert_false (fb_cpu_can_generate_why (d, why));
  g_assert_nonnull (strstr (why->str, "dot"));
  FbCpuKernel *k = NULL;
  g_assert_false (fb_cpu_jit_compile (shared_jit, 1, &d, &k, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED);
  g_assert_null (k);
  fb_module_free (m);

  /* the report names unknown kernels and bad --emit values as usage errors */
  m = fb_hlo_parse (cache_text, strlen (cache_text), "c.hlo", 0, NULL);
  g_autoptr (GString) out = g_string_new (NULL);
  g_clear_error (&error);
  g_assert_false (fb_cpu_emit_report (m, "ptx", NULL, out, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_USAGE);
  g_clear_error (&error);
  g_assert_false (fb_cpu_emit_report (m, "llvm", "nope", out, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_USAGE);
  g_clear_error (&error);
  g_assert_true (fb_cpu_emit_report (m, "llvm", "t", out, &error));
  g_assert_no_error (error);
  g_assert_nonnull (strstr (out->str, "; kernel fb_t_"));
  g_assert_nonnull (strstr (out->str, "define"));
  fb_module_free (m);
}

/* Asked for the code of an instruction that runs none, the report says
 * what runs it. */
static void
test_emit_not_a_kernel (void)
{
  static const char text[] =
    "HloModule m\n"
    "ENTRY e {\n"
    "  a = f32[128,96] parameter(0)\n"
    "  b = f32[96,80] parameter(1)\n"
    "  d = f32[128,80] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
    "  t = f32[4,8] parameter(2)\n"
    "  u = f32[8,2] parameter(3)\n"
    "  small = f32[4,2] dot(t, u), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
    "  x = f32[1,2,6,6] parameter(4)\n"
    "  k = f32[3,2,3,3] parameter(5)\n"
    "  c = f32[1,3,4,4] convolution(x, k), window={size=3x3}, dim_labels=bf01_oi01->bf01\n"
    "  ROOT r = (f32[128,80], f32[4,2], f32[1,3,4,4]) tuple(d, small, c)\n"
    "}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "m.hlo", 0, &error);
  g_assert_no_error (error);
  static const struct { const char *name, *says; } cases[] = {
    { "d", "runs as GEMMs on oneDNN" },   /* C is at least 64x64 */
    { "small", "runs as GEMMs on OpenBLAS" },
    { "c", "convolution by direct loops, im2col + GEMM or oneDNN" },
    { "r", "function written in C, or as a view" },
    { "nothing", "no loop kernel is named 'nothing'" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GString) out = g_string_new (NULL);
      g_clear_error (&error);
      g_assert_false (fb_cpu_emit_report (m, "asm", cases[i].name, out, &error));
      g_assert_nonnull (error);
      const char *want = cases[i].says;
      gboolean gemm = g_str_has_prefix (want, "runs as GEMMs");
      if (gemm && g_getenv ("FUSEBOX_GEMM") != NULL)
        continue;       /* the library is forced */
      if (g_str_equal (cases[i].name, "d") && !_fb_cpu_have_onednn ())
        want = "runs as GEMMs on OpenBLAS";
      if (strstr (error->message, want) == NULL)
        g_error ("--kernel %s: \"%s\" does not say \"%s\"", cases[i].name, error->message, want);
    }
  fb_module_free (m);
}

static void
test_cli_emit (void)
{
  const char *cli = g_getenv ("FUSEBOX_CLI");
  if (cli == NULL)
    {
      g_test_skip ("FUSEBOX_CLI is not set (meson test sets it to the built fusebox-cli)");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  int fd = g_file_open_tmp ("fb-emit-XXXXXX.hlo", &path, &error);
  g_assert_no_error (error);
  close (fd);
  g_assert_true (g_file_set_contents (path, cache_text, -1, NULL));

  const char *argv_llvm[] = { cli, "compile", path, "--passes", "none", "--backend", "cpu", "--emit", "llvm", NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_assert_true (g_spawn_sync (NULL, (char **) argv_llvm, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                               &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (out, "; kernel fb_t_"));
  g_assert_nonnull (strstr (out, "define void @fb_t_"));

  const char *argv_bad[] = { cli, "compile", path, "--emit", "llvm", "--kernel", "nope", NULL };
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_true (g_spawn_sync (NULL, (char **) argv_bad, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                               &error));
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 2);
  g_assert_nonnull (strstr (err, "nope"));
  g_remove (path);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  shared_jit = fb_cpu_jit_new ("", &error);   /* no disk cache: every test compiles */
  g_assert_no_error (error);

  g_test_add_func ("/backends/cpu-codegen/float-types", test_float_types);
  g_test_add_func ("/backends/cpu-codegen/emit-not-a-kernel", test_emit_not_a_kernel);
  g_test_add_func ("/backends/cpu-codegen/int-types", test_int_types);
  g_test_add_func ("/backends/cpu-codegen/pred", test_pred);
  g_test_add_func ("/backends/cpu-codegen/single-elementwise", test_single_elementwise);
  g_test_add_func ("/backends/cpu-codegen/movement", test_movement);
  g_test_add_func ("/backends/cpu-codegen/movement-fusion", test_movement_fusion);
  g_test_add_func ("/backends/cpu-codegen/reduce-rows-columns", test_reduce_rows_columns);
  g_test_add_func ("/backends/cpu-codegen/softmax", test_softmax);
  g_test_add_func ("/backends/cpu-codegen/layer-norm", test_layer_norm);
  g_test_add_func ("/backends/cpu-codegen/input-fusions", test_input_fusions);
  g_test_add_func ("/backends/cpu-codegen/horizontal-fusion", test_horizontal_fusion);
  g_test_add_func ("/backends/cpu-codegen/row-reduction-odd-rows", test_row_reduction_odd_rows);
  g_test_add_func ("/backends/cpu-codegen/streamed-output", test_streamed_output);
  g_test_add_func ("/backends/cpu-codegen/math-accuracy", test_math_accuracy);
  g_test_add_func ("/backends/cpu-codegen/cache", test_cache);
  g_test_add_func ("/backends/cpu-codegen/vectorised", test_vectorised);
  g_test_add_func ("/backends/cpu-codegen/unsupported", test_unsupported);
  g_test_add_func ("/backends/cpu-codegen/cli-emit", test_cli_emit);
  int rc = g_test_run ();
  fb_cpu_jit_free (shared_jit);
  return rc;
}
