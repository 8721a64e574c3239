/* SPDX-License-Identifier: MIT
 *
 * Tests of the cost model against FLOP and byte counts worked out by hand
 * in XLA's conventions: dot, convolution (plain and grouped), elementwise
 * and transcendental ops, reduce, fusion (inner flops, outer bytes), a while
 * loop with a known trip count, and the instructions that move nothing.
 */
#include <string.h>

#include "fb-cost.h"
#include "fb-hlo.h"

static FbModule *
parse (const char *text)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "cost.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  return m;
}

static const FbInstr *
find (FbComputation *comp, const char *name)
{
  for (FbInstr *in = comp->first; in; in = in->next)
    if (strcmp (in->name, name) == 0)
      return in;
  g_assert_not_reached ();
  return NULL;
}

static FbCost
cost_of (FbModule *m, const char *name)
{
  return fb_cost_instr (find (m->entry, name));
}

static void
test_dot (void)
{
  FbModule *m = parse (
    "HloModule m\n"
    "ENTRY e {\n"
    "  a = f32[2,3] parameter(0)\n"
    "  b = f32[3,4] parameter(1)\n"
    "  d = f32[2,4] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
    "  x = f32[5,2,3] parameter(2)\n"
    "  y = f32[5,3,4] parameter(3)\n"
    "  ROOT bd = f32[5,2,4] dot(x, y), lhs_batch_dims={0}, rhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_contracting_dims={1}\n"
    "}\n");
  FbCost c = cost_of (m, "d");
  /* 2 * M * N * K = 2 * 2 * 4 * 3; bytes (6 + 12 + 8) * 4. */
  g_assert_cmpfloat (c.flops, ==, 48);
  g_assert_cmpfloat (c.bytes, ==, 104);
  g_assert_cmpfloat (c.transcendentals, ==, 0);
  c = cost_of (m, "bd");
  /* The batch of 5 multiplies: 2 * 5 * 2 * 4 * 3. */
  g_assert_cmpfloat (c.flops, ==, 240);
  g_assert_cmpfloat (c.bytes, ==, (30 + 60 + 40) * 4);
  fb_module_free (m);
}

static void
test_convolution (void)
{
  FbModule *m = parse (
    "HloModule m\n"
    "ENTRY e {\n"
    "  x = f32[1,8,8,3] parameter(0)\n"
    "  k = f32[3,3,3,16] parameter(1)\n"
    "  c = f32[1,8,8,16] convolution(x, k), window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f\n"
    "  dw = f32[3,3,1,3] parameter(2)\n"
    "  ROOT g = f32[1,6,6,3] convolution(x, dw), window={size=3x3}, dim_labels=b01f_01io->b01f, feature_group_count=3\n"
    "}\n");
  FbCost c = cost_of (m, "c");
  /* 2 * 1024 outputs * 9 window taps * 3 input features. */
  g_assert_cmpfloat (c.flops, ==, 55296);
  g_assert_cmpfloat (c.bytes, ==, (192 + 432 + 1024) * 4);
  c = cost_of (m, "g");
  /* Depthwise: one input feature per group. 2 * 108 * 9 * 1. */
  g_assert_cmpfloat (c.flops, ==, 1944);
  fb_module_free (m);
}

static void
test_elementwise (void)
{
  FbModule *m = parse (
    "HloModule m\n"
    "ENTRY e {\n"
    "  a = f32[4] parameter(0)\n"
    "  c = f32[4] constant({1, 2, 3, 4})\n"
    "  s = f32[4] add(a, c)\n"
    "  x = f32[4] exponential(s)\n"
    "  h = bf16[4] convert(x)\n"
    "  t = (f32[4], bf16[4]) tuple(x, h)\n"
    "  ROOT g = f32[4] get-tuple-element(t), index=0\n"
    "}\n");
  FbCost c = cost_of (m, "s");
  g_assert_cmpfloat (c.flops, ==, 4);
  g_assert_cmpfloat (c.bytes, ==, 48);
  c = cost_of (m, "x");
  /* Transcendentals are counted apart from flops. */
  g_assert_cmpfloat (c.flops, ==, 0);
  g_assert_cmpfloat (c.transcendentals, ==, 4);
  g_assert_cmpfloat (c.bytes, ==, 32);
  c = cost_of (m, "h");
  g_assert_cmpfloat (c.flops, ==, 4);
  g_assert_cmpfloat (c.bytes, ==, 16 + 8);
  /* Parameters, constants, tuples and get-tuple-element move nothing. */
  for (const char *const *n = (const char *const[]) { "a", "c", "t", "g", NULL }; *n; n++)
    {
      c = cost_of (m, *n);
      g_assert_cmpfloat (c.flops, ==, 0);
      g_assert_cmpfloat (c.bytes, ==, 0);
    }
  /* The computation is the sum of its instructions. */
  c = fb_cost_computation (m->entry);
  g_assert_cmpfloat (c.flops, ==, 8);
  g_assert_cmpfloat (c.transcendentals, ==, 4);
  g_assert_cmpfloat (c.bytes, ==, 48 + 32 + 24);
  fb_module_free (m);
}

static void
test_reduce (void)
{
  FbModule *m = parse (
    "HloModule m\n"
    "add {\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT s = f32[] add(x, y)\n}\n"
    "ENTRY e {\n"
    "  a = f32[4,5] parameter(0)\n"
    "  z = f32[] constant(0)\n"
    "  ROOT r = f32[5] reduce(a, z), dimensions={0}, to_apply=add\n"
    "}\n");
  FbCost c = cost_of (m, "r");
  /* 20 inputs fold into 5 outputs: 15 additions. Bytes 80 + 4 + 20. */
  g_assert_cmpfloat (c.flops, ==, 15);
  g_assert_cmpfloat (c.bytes, ==, 104);
  fb_module_free (m);
}

static void
test_fusion (void)
{
  FbModule *m = parse (
    "HloModule m\n"
    "fused {\n"
    "  p0 = f32[8] parameter(0)\n"
    "  p1 = f32[8] parameter(1)\n"
    "  m = f32[8] multiply(p0, p1)\n"
    "  e = f32[8] exponential(m)\n"
    "  ROOT a = f32[8] add(e, p0)\n"
    "}\n"
    "ENTRY e {\n"
    "  x = f32[8] parameter(0)\n"
    "  y = f32[8] parameter(1)\n"
    "  ROOT f = f32[8] fusion(x, y), kind=kLoop, calls=fused\n"
    "}\n");
  FbCost c = cost_of (m, "f");
  /* Flops of the fused ops; bytes only of the fusion's operands and output,
   * not of the intermediate m and e. */
  g_assert_cmpfloat (c.flops, ==, 16);
  g_assert_cmpfloat (c.transcendentals, ==, 8);
  g_assert_cmpfloat (c.bytes, ==, 96);
  fb_module_free (m);
}

static void
test_while_trip_count (void)
{
  static const char body[] =
    "HloModule m\n"
    "cond {\n  p = (s32[], f32[4]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n"
    "  n = s32[] constant(10)\n  ROOT l = pred[] compare(i, n), direction=LT\n}\n"
    "body {\n  p = (s32[], f32[4]) parameter(0)\n  i = s32[] get-tuple-element(p), index=0\n"
    "  x = f32[4] get-tuple-element(p), index=1\n  one = s32[] constant(1)\n  j = s32[] add(i, one)\n"
    "  y = f32[4] multiply(x, x)\n  ROOT t = (s32[], f32[4]) tuple(j, y)\n}\n"
    "ENTRY e {\n  x = f32[4] parameter(0)\n  z = s32[] constant(0)\n  t = (s32[], f32[4]) tuple(z, x)\n"
    "  ROOT w = (s32[], f32[4]) while(t), condition=cond, body=body%s\n}\n";
  g_autofree char *known = g_strdup_printf (body, ", backend_config={\"known_trip_count\":{\"n\":\"10\"}}");
  g_autofree char *unknown = g_strdup_printf (body, "");

  /* One iteration: body add (1) + multiply (4) + condition compare (1). */
  FbModule *m = parse (unknown);
  FbCost once = cost_of (m, "w");
  g_assert_cmpfloat (once.flops, ==, 6);
  fb_module_free (m);

  m = parse (known);
  FbCost ten = cost_of (m, "w");
  g_assert_cmpfloat (ten.flops, ==, 60);
  g_assert_cmpfloat (ten.bytes, ==, 10 * once.bytes);
  fb_module_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/compiler/cost/dot", test_dot);
  g_test_add_func ("/compiler/cost/convolution", test_convolution);
  g_test_add_func ("/compiler/cost/elementwise", test_elementwise);
  g_test_add_func ("/compiler/cost/reduce", test_reduce);
  g_test_add_func ("/compiler/cost/fusion", test_fusion);
  g_test_add_func ("/compiler/cost/while-trip-count", test_while_trip_count);
  return g_test_run ();
}
