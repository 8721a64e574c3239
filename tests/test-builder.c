/* SPDX-License-Identifier: MIT
 *
 * Tests of the builder: modules written from C verify, print as XLA would
 * print them, parse back, and compute what they say; errors are sticky and
 * reported with the operation that caused them.
 */
#include <math.h>
#include <string.h>

#include "fb-builder.h"
#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-verify.h"

static void
assert_contains (const char *text, const char *needle)
{
  if (strstr (text, needle) == NULL)
    g_error ("expected \"%s\" in:\n%s", needle, text);
}

/* Verifies @m, prints it, parses the text back and checks the reparsed
 * module prints the same. Returns the text. */
static char *
verify_and_roundtrip (FbModule *m)
{
  g_autoptr (GError) error = NULL;
  fb_verify (m, &error);
  g_assert_no_error (error);
  char *text = fb_hlo_to_string (m, FB_PRINT_LONG);
  FbModule *back = fb_hlo_parse (text, strlen (text), "built.hlo", 0, &error);
  g_assert_no_error (error);
  g_autofree char *again = fb_hlo_to_string (back, FB_PRINT_LONG);
  g_assert_cmpstr (text, ==, again);
  fb_module_free (back);
  return text;
}

static FbLiteral *
literal_f32 (FbArena *arena, int rank, const int64_t *dims, const float *v)
{
  FbShape *s = fb_shape_new_array (arena, FB_F32, rank, dims);
  FbLiteral *l = fb_literal_new (arena, s);
  for (int64_t i = 0; i < fb_shape_elements (s); i++)
    fb_literal_set_f64 (l, i, v[i]);
  return l;
}

/* y = sum(tanh(x w + b)) */
static void
test_mlp (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("mlp");
  g_autoptr (FbBuilder) b = fb_builder_new (m, "main");
  FbInstr *x = fb_b_param (b, fb_b_shape (b, FB_F32, 2, (int64_t[]) { 2, 3 }), "x");
  FbInstr *w = fb_b_param (b, fb_b_shape (b, FB_F32, 2, (int64_t[]) { 3, 4 }), "w");
  FbInstr *bias = fb_b_param (b, fb_b_shape (b, FB_F32, 1, (int64_t[]) { 4 }), "b");
  fb_builder_push_scope (b, "mlp");
  fb_builder_push_scope (b, "dense");
  FbInstr *h = fb_b_matmul (b, x, w);
  h = fb_b_add (b, h, fb_b_broadcast_like (b, bias, h));
  fb_builder_pop_scope (b);
  h = fb_b_tanh (b, h);
  fb_builder_pop_scope (b);
  fb_builder_set_root (b, fb_b_sum_all (b, h));
  fb_builder_set_entry (b);
  FbComputation *main = fb_builder_finish (b, &error);
  g_assert_no_error (error);
  g_assert_true (m->entry == main);
  g_assert_cmpint (main->n_params, ==, 3);

  g_autofree char *text = verify_and_roundtrip (m);
  assert_contains (text, "f32[2,4]{1,0} dot(");
  assert_contains (text, "lhs_contracting_dims={1}, rhs_contracting_dims={0}");
  assert_contains (text, "broadcast(");
  assert_contains (text, "dimensions={1}");
  assert_contains (text, "metadata={op_name=\"mlp/dense/dot\"}");
  assert_contains (text, "metadata={op_name=\"mlp/tanh\"}");
  assert_contains (text, "ENTRY");
  assert_contains (text, "to_apply=");
  assert_contains (text, "parameter(2)");

  FbArena *arena = fb_arena_new ();
  float xv[6], wv[12], bv[4];
  for (int i = 0; i < 6; i++) xv[i] = 0.1f * i - 0.2f;
  for (int i = 0; i < 12; i++) wv[i] = 0.05f * i - 0.3f;
  for (int i = 0; i < 4; i++) bv[i] = 0.25f * i;
  FbLiteral *args[3] = {
    literal_f32 (arena, 2, (int64_t[]) { 2, 3 }, xv),
    literal_f32 (arena, 2, (int64_t[]) { 3, 4 }, wv),
    literal_f32 (arena, 1, (int64_t[]) { 4 }, bv),
  };
  FbLiteral *out = fb_interp_run (m, main, arena, 3, args, NULL, &error);
  g_assert_no_error (error);
  double want = 0;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      {
        double acc = bv[j];
        for (int k = 0; k < 3; k++)
          acc += (double) xv[i * 3 + k] * wv[k * 4 + j];
        want += tanh (acc);
      }
  g_assert_cmpfloat_with_epsilon (fb_literal_get_f64 (out, 0), want, 1e-5);
  fb_arena_free (arena);
  fb_module_free (m);
}

static void
test_sticky_error (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("bad");
  g_autoptr (FbBuilder) b = fb_builder_new (m, "main");
  FbInstr *x = fb_b_param (b, fb_b_shape (b, FB_F32, 2, (int64_t[]) { 2, 3 }), "x");
  g_assert_nonnull (x);
  FbInstr *r = fb_b_reshape (b, x, 1, (int64_t[]) { 7 });
  g_assert_null (r);
  g_assert_false (fb_builder_ok (b));
  /* Later calls do nothing, even valid ones, and NULL operands are fine. */
  int before = fb_builder_get_computation (b)->n_instrs;
  g_assert_null (fb_b_exp (b, r));
  g_assert_null (fb_b_exp (b, x));
  g_assert_null (fb_b_add (b, x, x));
  g_assert_cmpint (fb_builder_get_computation (b)->n_instrs, ==, before);
  g_assert_null (fb_builder_finish (b, &error));
  g_assert_nonnull (error);
  assert_contains (error->message, "reshape");
  g_clear_error (&error);

  /* A shape mismatch found by shape inference names the opcode. */
  g_autoptr (FbBuilder) b2 = fb_builder_new (m, "main");
  FbInstr *p = fb_b_param (b2, fb_b_shape (b2, FB_F32, 1, (int64_t[]) { 3 }), "p");
  FbInstr *q = fb_b_param (b2, fb_b_shape (b2, FB_F32, 1, (int64_t[]) { 4 }), "q");
  g_assert_cmpstr (fb_builder_get_computation (b2)->name, !=, "main");   /* made unique */
  g_assert_null (fb_b_add (b2, p, q));
  g_assert_null (fb_builder_finish (b2, &error));
  assert_contains (error->message, "add");
  g_clear_error (&error);

  /* An error in a nested builder stops its parent too. */
  g_autoptr (FbBuilder) outer = fb_builder_new (m, "outer");
  FbInstr *o = fb_b_param (outer, fb_b_scalar_shape (outer, FB_F32), "o");
  g_autoptr (FbBuilder) inner = fb_builder_new_nested (outer, "inner");
  fb_b_gte (inner, fb_b_param (inner, fb_b_scalar_shape (inner, FB_F32), "i"), 0);
  g_assert_false (fb_builder_ok (outer));
  g_assert_null (fb_b_neg (outer, o));
  g_assert_null (fb_builder_finish (outer, &error));
  assert_contains (error->message, "get-tuple-element");
  g_clear_error (&error);
  fb_module_free (m);
}

static void
test_bad_input (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("bad");
  struct { const char *what; } expect[] = { { "dim_labels" }, { "element 2" }, { "belongs to" },
                                            { "cannot broadcast" }, { "popped" } };
  for (guint i = 0; i < G_N_ELEMENTS (expect); i++)
    {
      g_autoptr (FbBuilder) b = fb_builder_new (m, "c");
      g_autoptr (FbBuilder) other = fb_builder_new (m, "o");
      FbInstr *x = fb_b_param (b, fb_b_shape (b, FB_F32, 4, (int64_t[]) { 1, 4, 4, 2 }), "x");
      FbInstr *k = fb_b_param (b, fb_b_shape (b, FB_F32, 4, (int64_t[]) { 3, 3, 2, 2 }), "k");
      FbInstr *y = fb_b_param (other, x->shape, "y");
      switch (i)
        {
        case 0: fb_b_conv (b, x, k, "b01f_01io->bzzf", NULL, 1, 1); break;
        case 1: fb_b_gte (b, fb_b_tuple (b, 2, (FbInstr *[]) { x, k }), 2); break;
        case 2: fb_b_add (b, x, y); break;
        case 3: fb_b_broadcast_to (b, k, 4, (int64_t[]) { 3, 3, 5, 2 }); break;
        case 4: fb_builder_pop_scope (b); break;
        }
      g_assert_null (fb_builder_finish (b, &error));
      assert_contains (error->message, expect[i].what);
      g_clear_error (&error);
    }
  fb_module_free (m);
}

static void
test_combiner_reuse (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("reuse");
  g_autoptr (FbBuilder) b = fb_builder_new (m, "main");
  FbInstr *x = fb_b_param (b, fb_b_shape (b, FB_F32, 2, (int64_t[]) { 2, 3 }), "x");
  FbInstr *s0 = fb_b_reduce_sum (b, x, 1, (int64_t[]) { 0 });
  FbInstr *s1 = fb_b_reduce_sum (b, x, 1, (int64_t[]) { 1 });
  FbInstr *mx = fb_b_reduce_max (b, x, 1, (int64_t[]) { 1 });
  FbInstr *d = fb_b_reduce_sum (b, fb_b_convert (b, x, FB_F64), 1, (int64_t[]) { 1 });
  g_assert_true (fb_instr_comp (s0, FB_A_TO_APPLY) == fb_instr_comp (s1, FB_A_TO_APPLY));
  g_assert_true (fb_instr_comp (s0, FB_A_TO_APPLY) != fb_instr_comp (mx, FB_A_TO_APPLY));
  g_assert_true (fb_instr_comp (s0, FB_A_TO_APPLY) != fb_instr_comp (d, FB_A_TO_APPLY));
  g_assert_cmpint (fb_instr_comp (mx, FB_A_TO_APPLY)->root->opcode, ==, FB_OP_MAXIMUM);
  g_assert_cmpint (m->n_comps, ==, 4);
  fb_builder_set_root (b, fb_b_tuple (b, 4, (FbInstr *[]) { s0, s1, mx, d }));
  fb_builder_set_entry (b);
  g_assert_nonnull (fb_builder_finish (b, &error));
  g_free (verify_and_roundtrip (m));
  fb_module_free (m);
}

/* while (i < 10) { i += 1; acc *= 2 } built with nested builders, and a
 * conditional and a call. */
static void
test_control_flow (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("loop");
  g_autoptr (FbBuilder) b = fb_builder_new (m, "main");
  FbInstr *acc0 = fb_b_param (b, fb_b_scalar_shape (b, FB_F32), "acc");
  FbInstr *init = fb_b_tuple (b, 2, (FbInstr *[]) { fb_b_const_s32 (b, 0), acc0 });

  g_autoptr (FbBuilder) cb = fb_builder_new_nested (b, "cond");
  FbInstr *cs = fb_b_param (cb, init->shape, "s");
  fb_b_compare (cb, FB_CMP_LT, fb_b_gte (cb, cs, 0), fb_b_const_s32 (cb, 10));
  FbComputation *cond = fb_builder_finish (cb, &error);
  g_assert_no_error (error);

  g_autoptr (FbBuilder) bb = fb_builder_new_nested (b, "body");
  FbInstr *bs = fb_b_param (bb, init->shape, "s");
  FbInstr *i1 = fb_b_add (bb, fb_b_gte (bb, bs, 0), fb_b_const_s32 (bb, 1));
  FbInstr *a1 = fb_b_binary_scalar (bb, FB_OP_MULTIPLY, fb_b_gte (bb, bs, 1), 2);
  fb_b_tuple (bb, 2, (FbInstr *[]) { i1, a1 });
  FbComputation *body = fb_builder_finish (bb, &error);
  g_assert_no_error (error);

  FbInstr *loop = fb_b_while (b, cond, body, init);
  FbInstr *acc = fb_b_gte (b, loop, 1);

  g_autoptr (FbBuilder) tb = fb_builder_new_nested (b, "neg");
  fb_b_neg (tb, fb_b_param (tb, acc->shape, "v"));
  g_autoptr (FbBuilder) fb = fb_builder_new_nested (b, "same");
  fb_b_copy (fb, fb_b_param (fb, acc->shape, "v"));
  FbComputation *br[2] = { fb_builder_finish (tb, NULL), fb_builder_finish (fb, NULL) };
  FbInstr *pred = fb_b_compare (b, FB_CMP_GT, acc, fb_b_const_f32 (b, 100));
  FbInstr *cnd = fb_b_conditional (b, pred, 2, br, (FbInstr *[]) { acc, acc });
  FbInstr *called = fb_b_call (b, br[0], 1, &cnd);
  fb_builder_set_root (b, called);
  fb_builder_set_entry (b);
  g_assert_nonnull (fb_builder_finish (b, &error));
  g_autofree char *text = verify_and_roundtrip (m);
  assert_contains (text, "condition=");
  assert_contains (text, "body=");
  assert_contains (text, "true_computation=");
  assert_contains (text, "false_computation=");

  FbArena *arena = fb_arena_new ();
  FbLiteral *arg = literal_f32 (arena, 0, NULL, (float[]) { 0.5f });
  FbLiteral *out = fb_interp_run (m, m->entry, arena, 1, &arg, NULL, &error);
  g_assert_no_error (error);
  /* 0.5 * 2^10 = 512 > 100: negated by the branch, negated back by the call. */
  g_assert_cmpfloat (fb_literal_get_f64 (out, 0), ==, 512);
  fb_arena_free (arena);
  fb_module_free (m);
}

static void
test_broadcast_to (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("bc");
  g_autoptr (FbBuilder) b = fb_builder_new (m, "main");
  FbInstr *x = fb_b_param (b, fb_b_shape (b, FB_F32, 2, (int64_t[]) { 3, 1 }), "x");
  FbInstr *y = fb_b_broadcast_to (b, x, 3, (int64_t[]) { 2, 3, 4 });
  g_assert_nonnull (y);
  g_autofree char *s = fb_shape_to_string (y->shape);
  g_assert_cmpstr (s, ==, "f32[2,3,4]{2,1,0}");
  g_assert_cmpint (y->opcode, ==, FB_OP_BROADCAST);
  g_assert_cmpint (y->operands[0]->opcode, ==, FB_OP_RESHAPE);
  g_assert_true (fb_b_broadcast_to (b, x, 2, (int64_t[]) { 3, 1 }) == x);
  fb_builder_set_entry (b);
  g_assert_nonnull (fb_builder_finish (b, &error));

  FbArena *arena = fb_arena_new ();
  FbLiteral *arg = literal_f32 (arena, 2, (int64_t[]) { 3, 1 }, (float[]) { 1, 2, 3 });
  FbLiteral *out = fb_interp_run (m, m->entry, arena, 1, &arg, NULL, &error);
  g_assert_no_error (error);
  for (int i = 0; i < 24; i++)
    g_assert_cmpfloat (fb_literal_get_f64 (out, i), ==, 1 + (i / 4) % 3);
  fb_arena_free (arena);
  fb_module_free (m);
}

/* One of every kind of op the builder makes: the module verifies and the
 * printed text parses back to the same text. */
static void
test_every_op (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_module_new ("ops");
  g_autoptr (FbBuilder) b = fb_builder_new (m, "main");
  FbInstr *img = fb_b_param (b, fb_b_shape (b, FB_F32, 4, (int64_t[]) { 2, 8, 8, 4 }), "img");
  FbInstr *ker = fb_b_param (b, fb_b_shape (b, FB_F32, 4, (int64_t[]) { 3, 3, 2, 6 }), "ker");
  FbInstr *idx = fb_b_param (b, fb_b_shape (b, FB_S32, 2, (int64_t[]) { 3, 1 }), "idx");
  FbInstr *state = fb_b_param (b, fb_b_shape (b, FB_U64, 1, (int64_t[]) { 2 }), "state");
  FbInstr *scale = fb_b_full (b, fb_b_shape (b, FB_F32, 1, (int64_t[]) { 6 }), 1);
  FbInstr *offset = fb_b_full (b, scale->shape, 0);

  FbConvWindow cw = { .stride = { 2, 2 }, .pad_lo = { 1, 1 }, .pad_hi = { 1, 1 } };
  FbInstr *conv = fb_b_conv (b, img, ker, "b01f_01io->b01f", &cw, 2, 1);
  g_assert_nonnull (conv);
  g_autofree char *cs = fb_shape_to_string (conv->shape);
  g_assert_cmpstr (cs, ==, "f32[2,4,4,6]{3,2,1,0}");
  FbInstr *bn = fb_b_batch_norm_training (b, conv, scale, offset, 1e-3, 3);
  FbInstr *y = fb_b_gte (b, bn, 0);
  FbInstr *inf = fb_b_batch_norm_inference (b, y, scale, offset, fb_b_gte (b, bn, 1), fb_b_gte (b, bn, 2), 1e-3, 3);
  FbInstr *bng = fb_b_batch_norm_grad (b, y, scale, fb_b_gte (b, bn, 1), fb_b_gte (b, bn, 2), inf, 1e-3, 3);
  FbWindowDim pool[4] = { { .size = 1 }, { .size = 2, .stride = 2 }, { .size = 2, .stride = 2 }, { .size = 1 } };
  FbInstr *mp = fb_b_reduce_window (b, y, fb_b_identity (b, FB_F32, FB_OP_MAXIMUM), FB_OP_MAXIMUM, pool);
  FbInstr *sas = fb_b_select_and_scatter (b, y, mp, fb_b_const_f32 (b, 0), FB_CMP_GE, FB_OP_ADD, pool);
  FbInstr *flat = fb_b_reshape (b, fb_b_gte (b, bng, 0), 2, (int64_t[]) { 32, 6 });
  FbGatherDims gd = {
    .n_offset_dims = 1, .offset_dims = { 1 }, .n_collapsed_slice_dims = 1, .collapsed_slice_dims = { 0 },
    .n_start_index_map = 1, .start_index_map = { 0 }, .index_vector_dim = 1, .slice_sizes = { 1, 6 },
  };
  FbInstr *rows = fb_b_gather (b, flat, idx, &gd);
  FbScatterDims sd = {
    .n_update_window_dims = 1, .update_window_dims = { 1 }, .n_inserted_window_dims = 1,
    .inserted_window_dims = { 0 }, .n_scatter_dims_to_operand_dims = 1,
    .scatter_dims_to_operand_dims = { 0 }, .index_vector_dim = 1,
  };
  FbInstr *sc = fb_b_scatter (b, flat, idx, rows, FB_OP_ADD, &sd);
  FbInstr *zero = fb_b_const_s32 (b, 0);
  FbInstr *ds = fb_b_dynamic_slice (b, sc, (FbInstr *[]) { fb_b_const_s32 (b, 4), zero }, (int64_t[]) { 2, 6 });
  FbInstr *dus = fb_b_dynamic_update_slice (b, sc, fb_b_exp (b, ds), (FbInstr *[]) { zero, zero });
  FbInstr *t = fb_b_transpose (b, dus, (int64_t[]) { 1, 0 });
  FbInstr *sl = fb_b_slice (b, t, (int64_t[]) { 0, 1 }, (int64_t[]) { 6, 31 }, (int64_t[]) { 2, 3 });
  FbPadDim pads[2] = { { 1, 0, 1 }, { -1, 2, 0 } };
  FbInstr *pd = fb_b_pad (b, sl, fb_b_const_f32 (b, 0), pads);
  FbInstr *rv = fb_b_reverse (b, pd, 1, (int64_t[]) { 0 });
  FbInstr *io = fb_b_convert (b, fb_b_iota (b, FB_S32, 2, rv->shape->dims, 1), FB_F32);
  FbInstr *cl = fb_b_clamp (b, fb_b_const_f32 (b, -1), fb_b_sub (b, rv, io), fb_b_const_f32 (b, 1));
  FbInstr *sel = fb_b_select (b, fb_b_compare (b, FB_CMP_GE, cl, io), cl, fb_b_pow (b, io, cl));
  FbInstr *cat = fb_b_concatenate (b, 2, (FbInstr *[]) { sel, cl }, 0);
  FbInstr *rng = fb_b_rng_bit_generator (b, state, "rng_default",
                                         fb_b_shape (b, FB_U32, 2, (int64_t[]) { 2, 3 }));
  FbInstr *cc = fb_b_custom_call (b, "Sharding", 1, &cat, cat->shape);
  FbInstr *bd = fb_b_dot (b, fb_b_reshape (b, conv, 3, (int64_t[]) { 2, 16, 6 }),
                          fb_b_reshape (b, conv, 3, (int64_t[]) { 2, 16, 6 }),
                          &(FbDotDims) { .n_batch = 1, .lhs_batch = { 0 }, .rhs_batch = { 0 },
                                         .n_contracting = 1, .lhs_contracting = { 1 }, .rhs_contracting = { 1 } });
  g_autofree char *bds = fb_shape_to_string (bd->shape);
  g_assert_cmpstr (bds, ==, "f32[2,6,6]{2,1,0}");
  FbInstr *all[] = { cc, fb_b_gte (b, rng, 1), sas, bd, fb_b_reduce_min (b, cat, 1, (int64_t[]) { 1 }) };
  fb_builder_set_root (b, fb_b_tuple (b, G_N_ELEMENTS (all), all));
  fb_builder_set_entry (b);
  FbComputation *main = fb_builder_finish (b, &error);
  g_assert_no_error (error);
  g_assert_nonnull (main);
  g_autofree char *text = verify_and_roundtrip (m);
  assert_contains (text, "dim_labels=b01f_01io->b01f");
  assert_contains (text, "feature_group_count=2");
  assert_contains (text, "window={size=3x3 stride=2x2 pad=1_1x1_1}");
  assert_contains (text, "select-and-scatter(");
  assert_contains (text, "custom_call_target=\"Sharding\"");
  assert_contains (text, "algorithm=rng_default");
  assert_contains (text, "slice={[0:6:2], [1:31:3]}");
  assert_contains (text, "padding=1_0_1x-1_2");
  fb_module_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/compiler/builder/mlp", test_mlp);
  g_test_add_func ("/compiler/builder/sticky-error", test_sticky_error);
  g_test_add_func ("/compiler/builder/bad-input", test_bad_input);
  g_test_add_func ("/compiler/builder/combiner-reuse", test_combiner_reuse);
  g_test_add_func ("/compiler/builder/control-flow", test_control_flow);
  g_test_add_func ("/compiler/builder/broadcast-to", test_broadcast_to);
  g_test_add_func ("/compiler/builder/every-op", test_every_op);
  return g_test_run ();
}
