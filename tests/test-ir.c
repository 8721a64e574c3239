/* SPDX-License-Identifier: MIT
 *
 * Tests of the IR plumbing: tables, shapes, literals and number formats,
 * instruction rewiring, clone and structural equality.
 */
#include <math.h>
#include <string.h>

#include "fb-ir.h"

static void
test_opcode_table (void)
{
  FbOpcode op;
  int n = 0;
  for (int i = 0; i < FB_N_OPCODES; i++)
    {
      g_assert_true (fb_opcode_lookup (fb_opcode_name (i), -1, &op));
      g_assert_cmpint (op, ==, i);
      n++;
    }
  /* Every opcode of XLA's HLO_OPCODE_LIST at the time of writing. */
  g_assert_cmpint (n, ==, 136);
  g_assert_true (fb_opcode_lookup ("count-leading-zeros", -1, &op));
  g_assert_cmpint (op, ==, FB_OP_CLZ);
  g_assert_true (fb_opcode_lookup ("add(", 3, &op));
  g_assert_cmpint (op, ==, FB_OP_ADD);
  g_assert_false (fb_opcode_lookup ("frobnicate", -1, &op));
  g_assert_cmpint (fb_opcode_arity (FB_OP_SELECT), ==, 3);
  g_assert_cmpint (fb_opcode_arity (FB_OP_TUPLE), ==, -1);
  g_assert_true (fb_opcode_is_elementwise (FB_OP_MULTIPLY));
  g_assert_true (fb_opcode_is_elementwise (FB_OP_SELECT));
  g_assert_false (fb_opcode_is_elementwise (FB_OP_DOT));
  g_assert_cmpstr (fb_category_name (fb_opcode_category (FB_OP_DOT)), ==, "contraction");
}

static void
test_elem_types (void)
{
  FbElemType t;
  g_assert_true (fb_elem_type_lookup ("f8e4m3b11fnuz", -1, &t));
  g_assert_cmpint (t, ==, FB_F8E4M3B11FNUZ);
  g_assert_true (fb_elem_type_lookup ("bf16[", 4, &t));
  g_assert_cmpint (t, ==, FB_BF16);
  g_assert_false (fb_elem_type_lookup ("f17", -1, &t));
  g_assert_false (fb_elem_type_lookup ("tuple", -1, &t));
  g_assert_cmpint (fb_elem_type_bytes (FB_S4), ==, 1);
  g_assert_cmpint (fb_elem_type_bits (FB_S4), ==, 4);
  g_assert_cmpint (fb_elem_type_bytes (FB_C128), ==, 16);
  g_assert_true (fb_elem_type_is_int (FB_U2));
  g_assert_false (fb_elem_type_is_array (FB_TOKEN));
}

static void
test_arena (void)
{
  FbArena *arena = fb_arena_new ();
  /* Small and large blocks, all zeroed and 16-byte aligned. */
  for (int round = 0; round < 3; round++)
    {
      for (gsize size = 1; size < 300000; size = size * 3 + 1)
        {
          guint8 *p = fb_arena_alloc (arena, size);
          g_assert_cmpuint ((guintptr) p % 16, ==, 0);
          for (gsize i = 0; i < size; i++)
            g_assert_cmpuint (p[i], ==, 0);
          memset (p, 0xab, size);   /* dirty it for the next round */
        }
      g_assert_cmpuint (fb_arena_bytes (arena), >, 0);
      /* After a reset the arena hands out zeroed memory again. */
      fb_arena_reset (arena);
      g_assert_cmpuint (fb_arena_bytes (arena), ==, 0);
    }
  char *s = fb_arena_strndup (arena, "abcdef", 3);
  g_assert_cmpstr (s, ==, "abc");
  fb_arena_free (arena);
}

static void
test_shapes (void)
{
  FbArena *arena = fb_arena_new ();
  int64_t dims[] = { 2, 3 };
  FbShape *a = fb_shape_new_array (arena, FB_F32, 2, dims);
  fb_shape_set_default_layout (arena, a);
  g_autofree char *sa = fb_shape_to_string (a);
  g_assert_cmpstr (sa, ==, "f32[2,3]{1,0}");
  g_assert_cmpint (fb_shape_elements (a), ==, 6);
  g_assert_cmpint (fb_shape_bytes (a), ==, 24);

  FbShape *b = fb_shape_copy (arena, a);
  b->dyn = fb_arena_new0 (arena, uint8_t, 2);
  b->dyn[1] = FB_DIM_BOUNDED;
  b->layout->extra = fb_arena_strdup (arena, "T(8,128)");
  g_autofree char *sb = fb_shape_to_string (b);
  g_assert_cmpstr (sb, ==, "f32[2,<=3]{1,0:T(8,128)}");
  g_assert_false (fb_shape_equal (a, b));

  FbShape *s4 = fb_shape_new_array (arena, FB_S4, 1, (int64_t[]) { 5 });
  g_assert_cmpint (fb_shape_bytes (s4), ==, 3);   /* 20 bits packed */

  FbShape *elems[] = { a, fb_shape_new_scalar (arena, FB_PRED) };
  FbShape *t = fb_shape_new_tuple (arena, 2, elems);
  g_autofree char *st = fb_shape_to_string (t);
  g_assert_cmpstr (st, ==, "(f32[2,3]{1,0}, pred[])");
  g_assert_cmpint (fb_shape_bytes (t), ==, 25);
  g_assert_true (fb_shape_compatible (t, fb_shape_copy (arena, t)));
  fb_arena_free (arena);
}

static void
test_half_floats (void)
{
  /* Hand-worked encodings. */
  g_assert_cmphex (fb_f32_to_f16 (1.0f), ==, 0x3c00);
  g_assert_cmphex (fb_f32_to_f16 (-2.0f), ==, 0xc000);
  g_assert_cmphex (fb_f32_to_f16 (65504.0f), ==, 0x7bff);
  g_assert_cmphex (fb_f32_to_f16 (65520.0f), ==, 0x7c00);       /* rounds up to inf */
  g_assert_cmphex (fb_f32_to_f16 (5.9604645e-8f), ==, 0x0001);  /* smallest subnormal */
  g_assert_cmphex (fb_f32_to_f16 (1.0f + 1.0f / 2048), ==, 0x3c00); /* tie to even */
  g_assert_cmpfloat (fb_f16_to_f32 (0x3555), ==, 0.333251953125f);
  g_assert_true (isnan (fb_f16_to_f32 (fb_f32_to_f16 (NAN))));
  g_assert_cmphex (fb_f32_to_bf16 (1.0f), ==, 0x3f80);
  g_assert_cmphex (fb_f32_to_bf16 (1.00390625f), ==, 0x3f80);    /* tie to even */
  g_assert_cmphex (fb_f32_to_bf16 (1.01171875f), ==, 0x3f82);    /* tie to even, upwards */
  g_assert_cmpfloat (fb_bf16_to_f32 (0xc049), ==, -3.140625f);
  /* Every f16 value survives f16 -> f32 -> f16. */
  for (unsigned h = 0; h < 0x10000; h++)
    {
      float f = fb_f16_to_f32 ((uint16_t) h);
      if (!isnan (f))
        g_assert_cmphex (fb_f32_to_f16 (f), ==, h);
    }
}

static void
test_small_floats (void)
{
  guint8 b;
  fb_float_encode (FB_F8E4M3FN, &b, 448.0);
  g_assert_cmphex (b, ==, 0x7e);
  g_assert_cmpfloat (fb_float_decode (FB_F8E4M3FN, &b), ==, 448.0);
  fb_float_encode (FB_F8E4M3FN, &b, 1000.0);      /* no inf: overflow is NaN */
  g_assert_true (isnan (fb_float_decode (FB_F8E4M3FN, &b)));
  fb_float_encode (FB_F8E5M2, &b, 1e6);
  g_assert_true (isinf (fb_float_decode (FB_F8E5M2, &b)));
  fb_float_encode (FB_F8E5M2, &b, 57344.0);
  g_assert_cmphex (b, ==, 0x7b);
  fb_float_encode (FB_F8E4M3FNUZ, &b, NAN);
  g_assert_cmphex (b, ==, 0x80);
  fb_float_encode (FB_F8E4M3FNUZ, &b, 240.0);
  g_assert_cmphex (b, ==, 0x7f);
  fb_float_encode (FB_F4E2M1FN, &b, 6.0);
  g_assert_cmphex (b, ==, 0x7);
  fb_float_encode (FB_F4E2M1FN, &b, -0.5);
  g_assert_cmphex (b, ==, 0x9);
  fb_float_encode (FB_F8E8M0FNU, &b, 0.25);
  g_assert_cmphex (b, ==, 125);
  fb_float_encode (FB_F8E3M4, &b, 1.0);
  g_assert_cmphex (b, ==, 0x30);
  /* Round trip of every code of every 8-bit format. */
  const FbElemType types[] = { FB_F8E3M4, FB_F8E4M3, FB_F8E4M3FN, FB_F8E4M3FNUZ, FB_F8E4M3B11FNUZ,
                               FB_F8E5M2, FB_F8E5M2FNUZ, FB_F8E8M0FNU };
  for (gsize t = 0; t < G_N_ELEMENTS (types); t++)
    for (unsigned c = 0; c < 256; c++)
      {
        guint8 in = c, out;
        double v = fb_float_decode (types[t], &in);
        if (isnan (v))
          continue;
        fb_float_encode (types[t], &out, v);
        g_assert_cmphex (out, ==, in);
      }
}

static void
test_literals (void)
{
  FbArena *arena = fb_arena_new ();
  FbLiteral *l = fb_literal_new (arena, fb_shape_new_array (arena, FB_S8, 1, (int64_t[]) { 3 }));
  fb_literal_set_s64 (l, 0, -128);
  fb_literal_set_s64 (l, 1, 255);      /* wraps */
  fb_literal_set_f64 (l, 2, 3.7);      /* truncates */
  g_assert_cmpint (fb_literal_get_s64 (l, 0), ==, -128);
  g_assert_cmpint (fb_literal_get_s64 (l, 1), ==, -1);
  g_assert_cmpint (fb_literal_get_s64 (l, 2), ==, 3);

  FbLiteral *s4 = fb_literal_new (arena, fb_shape_new_scalar (arena, FB_S4));
  fb_literal_set_s64 (s4, 0, -3);
  g_assert_cmpint (fb_literal_get_s64 (s4, 0), ==, -3);

  FbLiteral *u64 = fb_literal_new (arena, fb_shape_new_scalar (arena, FB_U64));
  fb_literal_set_s64 (u64, 0, -1);
  g_assert_cmpuint ((uint64_t) fb_literal_get_s64 (u64, 0), ==, G_MAXUINT64);

  FbLiteral *bf = fb_literal_new (arena, fb_shape_new_scalar (arena, FB_BF16));
  fb_literal_set_f64 (bf, 0, 3.14159);
  g_assert_cmpfloat (fb_literal_get_f64 (bf, 0), ==, 3.140625);

  FbLiteral *c = fb_literal_copy (arena, l);
  g_assert_true (fb_literal_equal (l, c));
  fb_literal_set_s64 (c, 2, 4);
  g_assert_false (fb_literal_equal (l, c));
  fb_arena_free (arena);
}

/* p0, p1 -> add -> negate (root) in an entry computation. */
static FbModule *
small_module (FbInstr **add_out, FbInstr **neg_out)
{
  FbModule *m = fb_module_new ("m");
  FbComputation *c = fb_module_add_computation (m, "main");
  c->is_entry = TRUE;
  m->entry = c;
  FbShape *s = fb_shape_new_array (m->arena, FB_F32, 1, (int64_t[]) { 4 });
  FbInstr *p0 = fb_instr_new (c, NULL, FB_OP_PARAMETER, s, 0, NULL, "p0");
  FbInstr *p1 = fb_instr_new (c, NULL, FB_OP_PARAMETER, s, 0, NULL, "p1");
  p1->parameter_number = 1;
  c->n_params = 2;
  c->params = fb_arena_new0 (m->arena, FbInstr *, 2);
  c->params[0] = p0;
  c->params[1] = p1;
  FbInstr *add = fb_instr_new (c, NULL, FB_OP_ADD, s, 2, (FbInstr *[]) { p0, p1 }, NULL);
  FbInstr *neg = fb_instr_new (c, NULL, FB_OP_NEGATE, s, 1, (FbInstr *[]) { add }, NULL);
  c->root = neg;
  if (add_out)
    *add_out = add;
  if (neg_out)
    *neg_out = neg;
  return m;
}

static void
test_instr_rewiring (void)
{
  FbInstr *add, *neg;
  FbModule *m = small_module (&add, &neg);
  FbComputation *c = m->entry;
  g_assert_cmpstr (add->name, ==, "add.3");
  g_assert_cmpint (add->n_users, ==, 1);
  g_assert_true (c->params[0]->users[0] == add);

  /* Replace add by multiply: users and root follow. */
  FbInstr *mul = fb_instr_new (c, add, FB_OP_MULTIPLY, add->shape, 2, add->operands, NULL);
  fb_instr_replace_all_uses (add, mul);
  g_assert_true (neg->operands[0] == mul);
  g_assert_cmpint (add->n_users, ==, 0);
  fb_instr_remove (add);
  g_assert_cmpint (c->n_instrs, ==, 4);
  g_assert_cmpint (c->params[0]->n_users, ==, 1);
  g_assert_true (c->params[0]->users[0] == mul);
  fb_instr_replace_all_uses (neg, mul);
  g_assert_true (c->root == mul);

  /* Generated names never clash with existing ones. */
  FbInstr *x = fb_instr_new (c, NULL, FB_OP_NEGATE, mul->shape, 1, &mul, NULL);
  FbInstr *y = fb_instr_new (c, NULL, FB_OP_NEGATE, mul->shape, 1, &mul, "negate.8");
  FbInstr *z = fb_instr_new (c, NULL, FB_OP_NEGATE, mul->shape, 1, &mul, NULL);
  g_assert_cmpstr (x->name, !=, y->name);
  g_assert_cmpstr (z->name, !=, y->name);
  g_assert_cmpstr (z->name, !=, x->name);

  /* Attributes: set replaces, typed getters find them. */
  fb_instr_set_dims (x, FB_A_DIMENSIONS, 2, (int64_t[]) { 1, 0 });
  fb_instr_set_dims (x, FB_A_DIMENSIONS, 1, (int64_t[]) { 0 });
  g_assert_cmpint (x->n_attrs, ==, 1);
  g_assert_cmpint (fb_instr_dims (x, FB_A_DIMENSIONS)->n, ==, 1);
  FbAttr *meta = fb_instr_add_attr (x, FB_A_METADATA, NULL);
  meta->v.s = fb_arena_strdup (m->arena, "{op_name=\"jit(f)/a b\" source_file=\"model.py\" source_line=42}");
  g_autofree char *file = fb_instr_dup_metadata (x, "source_file");
  g_autofree char *line = fb_instr_dup_metadata (x, "source_line");
  g_autofree char *opn = fb_instr_dup_metadata (x, "op_name");
  g_assert_cmpstr (file, ==, "model.py");
  g_assert_cmpstr (line, ==, "42");
  g_assert_cmpstr (opn, ==, "jit(f)/a b");
  fb_module_free (m);
}

static gboolean
uses (const FbInstr *operand, const FbInstr *user)
{
  for (int i = 0; i < operand->n_users; i++)
    if (operand->users[i] == user)
      return TRUE;
  return FALSE;
}

/* A user stays in an operand's user list exactly as long as one of its
 * slots reads the operand, through every way slots change. */
static void
test_instr_user_lists (void)
{
  FbInstr *add, *neg;
  FbModule *m = small_module (&add, &neg);
  FbComputation *c = m->entry;
  FbInstr *p0 = c->params[0], *p1 = c->params[1];
  FbInstr *pair[2] = { p0, p1 };
  FbInstr *t = fb_instr_new (c, NULL, FB_OP_TUPLE, add->shape, 2, pair, NULL);
  g_assert_true (uses (p0, t) && uses (p1, t));

  /* (p1, p1): p0 loses t; p1 keeps it while either slot reads it. */
  fb_instr_set_operand (t, 0, p1);
  g_assert_false (uses (p0, t));
  g_assert_true (uses (p1, t));
  fb_instr_set_operand (t, 0, p0);
  g_assert_true (uses (p0, t) && uses (p1, t));
  fb_instr_set_operand (t, 1, p0);
  g_assert_false (uses (p1, t));
  fb_instr_set_operand (t, 1, neg);
  g_assert_true (uses (p0, t) && uses (neg, t));
  /* Setting a slot to what it holds changes nothing. */
  fb_instr_set_operand (t, 1, neg);
  fb_instr_set_operand (t, 0, p1);
  g_assert_false (uses (p0, t));

  /* An instruction made with a repeated operand, then one slot moved. */
  FbInstr *twice[2] = { p0, p0 };
  FbInstr *sq = fb_instr_new (c, NULL, FB_OP_MULTIPLY, add->shape, 2, twice, NULL);
  fb_instr_set_operand (sq, 0, p1);
  g_assert_true (uses (p0, sq) && uses (p1, sq));
  fb_instr_set_operand (sq, 1, p1);
  g_assert_false (uses (p0, sq));

  /* Uses replaced into an instruction that read the new value already. */
  FbInstr *u = fb_instr_new (c, NULL, FB_OP_ADD, add->shape, 2, pair, NULL);
  fb_instr_replace_all_uses (p1, p0);
  g_assert_true (u->operands[0] == p0 && u->operands[1] == p0);
  fb_instr_set_operand (u, 0, neg);
  g_assert_true (uses (p0, u));
  fb_instr_set_operand (u, 1, neg);
  g_assert_false (uses (p0, u));

  /* A clone keeps what it knows of its operands. */
  FbModule *copy = fb_module_clone (m);
  FbInstr *cu = copy->entry->last;
  g_assert_cmpstr (cu->name, ==, u->name);
  FbInstr *cp0 = copy->entry->params[0];
  fb_instr_set_operand (cu, 0, cp0);
  fb_instr_set_operand (cu, 1, cp0);
  fb_instr_set_operand (cu, 0, copy->entry->params[1]);
  g_assert_true (uses (cp0, cu));
  fb_module_free (copy);
  fb_module_free (m);
}

static void
test_clone_equal (void)
{
  FbInstr *add;
  FbModule *m = small_module (&add, NULL);
  FbComputation *sum = fb_module_add_computation (m, "sum");
  FbShape *scalar = fb_shape_new_scalar (m->arena, FB_F32);
  FbInstr *a = fb_instr_new (sum, NULL, FB_OP_PARAMETER, scalar, 0, NULL, "a");
  FbInstr *b = fb_instr_new (sum, NULL, FB_OP_PARAMETER, scalar, 0, NULL, "b");
  b->parameter_number = 1;
  sum->root = fb_instr_new (sum, NULL, FB_OP_ADD, scalar, 2, (FbInstr *[]) { a, b }, "s");
  FbInstr *zero = fb_instr_new (m->entry, NULL, FB_OP_CONSTANT, scalar, 0, NULL, "zero");
  zero->literal = fb_literal_new (m->arena, scalar);
  FbInstr *red = fb_instr_new (m->entry, NULL, FB_OP_REDUCE, scalar, 2, (FbInstr *[]) { add, zero }, "r");
  fb_instr_set_dims (red, FB_A_DIMENSIONS, 1, (int64_t[]) { 0 });
  fb_instr_set_comp (red, FB_A_TO_APPLY, sum);

  GPtrArray *order = fb_module_post_order (m);
  g_assert_true (g_ptr_array_index (order, 0) == sum);
  g_assert_true (g_ptr_array_index (order, 1) == m->entry);
  g_ptr_array_unref (order);

  FbModule *c = fb_module_clone (m);
  g_autoptr (GString) why = g_string_new (NULL);
  g_assert_true (fb_module_equal (m, c, why));
  FbInstr *cred = c->entry->last;
  g_assert_true (fb_instr_comp (cred, FB_A_TO_APPLY) == fb_module_find_computation (c, "sum"));
  g_assert_cmpint (cred->operands[0]->n_users, ==, 2);   /* negate and reduce */
  g_assert_true (cred->operands[0]->users[1] == cred);
  g_assert_cmpint (cred->id, ==, red->id);

  /* A change in the clone is a difference, and it says which. */
  fb_literal_set_f64 (c->entry->last->operands[1]->literal, 0, 1.0);
  g_assert_false (fb_module_equal (m, c, why));
  g_assert_nonnull (strstr (why->str, "zero"));
  fb_module_free (c);
  fb_module_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/compiler/ir/opcode-table", test_opcode_table);
  g_test_add_func ("/compiler/ir/element-types", test_elem_types);
  g_test_add_func ("/compiler/ir/arena", test_arena);
  g_test_add_func ("/compiler/ir/shapes", test_shapes);
  g_test_add_func ("/compiler/ir/half-floats", test_half_floats);
  g_test_add_func ("/compiler/ir/small-floats", test_small_floats);
  g_test_add_func ("/compiler/ir/literals", test_literals);
  g_test_add_func ("/compiler/ir/instr-rewiring", test_instr_rewiring);
  g_test_add_func ("/compiler/ir/user-lists", test_instr_user_lists);
  g_test_add_func ("/compiler/ir/clone-equal", test_clone_equal);
  return g_test_run ();
}
