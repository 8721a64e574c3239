/* SPDX-License-Identifier: MIT
 *
 * The HLO text parser: tokens, shapes, attributes, constants, the three
 * print styles, module headers, multi-module files and exact diagnostics,
 * plus every real XLA dump of the corpus when FUSEBOX_CORPUS names it.
 */
#include "fb-hlo.h"
#include "fb-hlo-lexer.h"

#include <math.h>
#include <string.h>

static FbModule *
parse_ok (const char *text)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "test.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  return m;
}

/* The first line of the error message for @text. */
static char *
parse_error (const char *text)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "t.hlo", 0, &error);
  g_assert_null (m);
  g_assert_error (error, FB_ERROR, FB_ERROR_PARSE);
  const char *nl = strchr (error->message, '\n');
  return g_strndup (error->message, nl ? (gsize) (nl - error->message) : strlen (error->message));
}

static FbInstr *
find_instr (FbModule *m, const char *name)
{
  for (int c = 0; c < m->n_comps; c++)
    for (FbInstr *i = m->comps[c]->first; i; i = i->next)
      if (strcmp (i->name, name) == 0)
        return i;
  g_assert_not_reached ();
  return NULL;
}

static char *
shape_str (const FbShape *s)
{
  GString *out = g_string_new (NULL);
  fb_shape_print (out, s, TRUE);
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------- lexer */

static void
test_lexer_tokens (void)
{
  const char *text = "%add.1 = f32[<=4,?]{0} /*index=5*/ add(-1.5e3, 7) // tail\n"
                     "\"s\\\"q\" -> ... #2 : -inf";
  FbHloLexer lx;
  fb_hlo_lexer_init (&lx, text, strlen (text), 0, strlen (text), "lex");
  static const struct { FbTokKind kind; const char *text; } want[] = {
    { FB_TOK_NAME, "%add.1" }, { FB_TOK_EQUAL, "=" }, { FB_TOK_NAME, "f32" },
    { FB_TOK_LBRACKET, "[" }, { FB_TOK_LEQ, "<=" }, { FB_TOK_INT, "4" }, { FB_TOK_COMMA, "," },
    { FB_TOK_QUESTION, "?" }, { FB_TOK_RBRACKET, "]" }, { FB_TOK_LBRACE, "{" }, { FB_TOK_INT, "0" },
    { FB_TOK_RBRACE, "}" }, { FB_TOK_NAME, "add" }, { FB_TOK_LPAREN, "(" },
    { FB_TOK_FLOAT, "-1.5e3" }, { FB_TOK_COMMA, "," }, { FB_TOK_INT, "7" }, { FB_TOK_RPAREN, ")" },
    { FB_TOK_STRING, "\"s\\\"q\"" }, { FB_TOK_ARROW, "->" }, { FB_TOK_DOTS, "..." },
    { FB_TOK_HASH, "#" }, { FB_TOK_INT, "2" }, { FB_TOK_COLON, ":" }, { FB_TOK_FLOAT, "-inf" },
    { FB_TOK_EOF, "" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    {
      FbToken tok;
      g_autoptr (GError) error = NULL;
      g_assert_true (fb_hlo_lexer_next (&lx, &tok, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (fb_hlo_token_kind_name (tok.kind), ==, fb_hlo_token_kind_name (want[i].kind));
      g_autofree char *t = g_strndup (tok.start, tok.len);
      g_assert_cmpstr (t, ==, want[i].text);
    }

  /* A name token gives its text without the '%'; locations count bytes from 1. */
  fb_hlo_lexer_init (&lx, text, strlen (text), 0, strlen (text), "lex");
  FbToken tok;
  g_assert_true (fb_hlo_lexer_next (&lx, &tok, NULL));
  gsize len;
  const char *name = fb_hlo_token_name (&tok, &len);
  g_assert_cmpint (len, ==, 5);
  g_assert_cmpint (memcmp (name, "add.1", 5), ==, 0);
  FbLoc loc = fb_hlo_lexer_loc (&lx, strchr (text, '"'));
  g_assert_cmpint (loc.line, ==, 2);
  g_assert_cmpint (loc.column, ==, 1);

  const char *bad = "a\n  $";
  g_autoptr (GError) error = NULL;
  fb_hlo_lexer_init (&lx, bad, strlen (bad), 0, strlen (bad), "bad.hlo");
  g_assert_true (fb_hlo_lexer_next (&lx, &tok, &error));
  g_assert_false (fb_hlo_lexer_next (&lx, &tok, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_PARSE);
  g_assert_cmpstr (error->message, ==, "bad.hlo:2:3: unexpected character '$'\n  $\n  ^");
}

/* -------------------------------------------------------- shapes */

static void
test_element_types (void)
{
  for (int t = 0; t < FB_N_ELEM_TYPES; t++)
    {
      if (t == FB_TUPLE)
        continue;
      const char *name = fb_elem_type_name (t);
      gboolean array = fb_elem_type_is_array (t);
      g_autofree char *text = g_strdup_printf ("ENTRY e {\n  ROOT p = %s[%s] parameter(0)\n}\n",
                                               name, array ? "2,3" : "");
      FbModule *m = parse_ok (text);
      FbShape *s = m->entry->root->shape;
      g_assert_cmpint (s->type, ==, t);
      g_assert_cmpint (s->rank, ==, array ? 2 : 0);
      fb_module_free (m);
    }
  g_autofree char *msg = parse_error ("ENTRY e {\n  ROOT p = f24[2] parameter(0)\n}\n");
  g_assert_cmpstr (msg, ==, "t.hlo:2:12: unknown element type 'f24'");
}

static void
test_shapes (void)
{
  FbModule *m = parse_ok (
    "ENTRY e {\n"
    "  t = ((f32[2]{0}, s32[]), (), pred[1,2]{0,1}) parameter(0)\n"
    "  d = f32[<=8,?,3]{2,1,0} parameter(1)\n"
    "  l = bf16[256,128]{1,0:T(8,128)(2,1)S(1)} parameter(2)\n"
    "  n = f32[2]{} parameter(3)\n"
    "  ROOT z = f32[0,4] parameter(4)\n"
    "}\n");
  FbInstr *t = find_instr (m, "t");
  g_assert_cmpint (t->shape->type, ==, FB_TUPLE);
  g_assert_cmpint (t->shape->n_elems, ==, 3);
  g_assert_cmpint (t->shape->elems[0]->n_elems, ==, 2);
  g_assert_cmpint (t->shape->elems[1]->n_elems, ==, 0);
  g_assert_cmpint (t->shape->elems[2]->layout->minor_to_major[0], ==, 0);
  g_assert_cmpint (t->shape->elems[2]->layout->minor_to_major[1], ==, 1);

  FbInstr *d = find_instr (m, "d");
  g_assert_cmpint (d->shape->rank, ==, 3);
  g_assert_cmpint (d->shape->dims[0], ==, 8);
  g_assert_cmpint (d->shape->dyn[0], ==, FB_DIM_BOUNDED);
  g_assert_cmpint (d->shape->dims[1], ==, -1);
  g_assert_cmpint (d->shape->dyn[1], ==, FB_DIM_UNBOUNDED);
  g_assert_cmpint (d->shape->dyn[2], ==, FB_DIM_STATIC);

  FbInstr *l = find_instr (m, "l");
  g_assert_cmpint (l->shape->layout->n, ==, 2);
  g_assert_cmpstr (l->shape->layout->extra, ==, "T(8,128)(2,1)S(1)");
  g_autofree char *ls = shape_str (l->shape);
  g_assert_nonnull (strstr (ls, "T(8,128)(2,1)S(1)"));

  FbInstr *n = find_instr (m, "n");
  g_assert_nonnull (n->shape->layout);
  g_assert_cmpint (n->shape->layout->n, ==, 0);
  g_assert_cmpint (fb_shape_elements (m->entry->root->shape), ==, 0);
  fb_module_free (m);
}

/* ---------------------------------------------------- attributes */

static void
test_attributes (void)
{
  FbModule *m = parse_ok (
    "HloModule attrs\n"
    "\n"
    "ENTRY main {\n"
    "  a = f32[1,8,8,4]{3,2,1,0} parameter(0)\n"
    "  k = f32[3,3,4,2]{3,2,1,0} parameter(1)\n"
    "  c = f32[1,4,4,2]{3,2,1,0} convolution(a, k), window={size=3x3 stride=2x2 pad=0_1x1_0"
    " lhs_dilate=1x1 rhs_dilate=2x1 rhs_reversal=0x1}, dim_labels=b01f_01io->b01f,"
    " feature_group_count=1, metadata={op_name=\"conv\" source_file=\"m.py\" source_line=3}\n"
    "  s = f32[1,2,4,4]{3,2,1,0} slice(a), slice={[0:1], [0:8:4], [1:5], [0:4]}\n"
    "  z = f32[] constant(0)\n"
    "  p = f32[1,11,8,5] pad(a, z), padding=0_0x1_2_1x0_0x0_1\n"
    "  r = f32[4]{0} reduce(a, z), dimensions={0,1,2}, to_apply=%sum\n"
    "  t = f32[8,8,1,4] transpose(a), dimensions={1,2,0,3}, sharding={devices=[2,1,1,1]0,1},"
    " backend_config=\"{\\\"x\\\": 1}\", frontend_attributes={_a=\"1\",_b=\"{}\"}\n"
    "  cc = f32[4] custom-call(r), custom_call_target=\"my$target\", backend_config={\"k\":[1,2]},"
    " control-predecessors={%t}, replica_groups=mesh['x'=2] {'x'}, api_version=API_VERSION_TYPED_FFI\n"
    "  cmp = pred[4] compare(r, cc), direction=LT, type=TOTALORDER\n"
    "  bn = (f32[1,8,8,4], f32[4], f32[4]) batch-norm-training(a, r, r), epsilon=0.001, feature_index=3\n"
    "  i = s32[4] iota(), iota_dimension=0\n"
    "  srt = f32[4] sort(r), dimensions={0}, is_stable=true, to_apply=%less\n"
    "  ROOT cond = f32[4] conditional(i, r, r), branch_computations={%neg, sum2}\n"
    "}\n"
    "sum { x = f32[] parameter(0)\n y = f32[] parameter(1)\n ROOT s = f32[] add(x, y) }\n"
    "sum2 { x = f32[4] parameter(0)\n ROOT s = f32[4] negate(x) }\n"
    "neg { x = f32[4] parameter(0)\n ROOT s = f32[4] negate(x) }\n"
    "less { x = f32[] parameter(0)\n y = f32[] parameter(1)\n ROOT s = pred[] compare(x, y), direction=LT }\n");

  FbInstr *c = find_instr (m, "c");
  const FbAttr *w = fb_instr_get_attr (c, FB_A_WINDOW);
  g_assert_nonnull (w);
  g_assert_cmpint (w->kind, ==, FB_AV_WINDOW);
  g_assert_cmpint (w->v.window.n, ==, 2);
  g_assert_cmpint (w->v.window.d[0].size, ==, 3);
  g_assert_cmpint (w->v.window.d[1].stride, ==, 2);
  g_assert_cmpint (w->v.window.d[0].pad_lo, ==, 0);
  g_assert_cmpint (w->v.window.d[0].pad_hi, ==, 1);
  g_assert_cmpint (w->v.window.d[1].pad_lo, ==, 1);
  g_assert_cmpint (w->v.window.d[0].rhs_dilate, ==, 2);
  g_assert_cmpint (w->v.window.d[1].lhs_dilate, ==, 1);
  g_assert_false (w->v.window.d[0].reversal);
  g_assert_true (w->v.window.d[1].reversal);
  const FbAttr *dl = fb_instr_get_attr (c, FB_A_DIM_LABELS);
  g_assert_cmpint (dl->v.conv.n_spatial, ==, 2);
  g_assert_cmpint (dl->v.conv.in_batch, ==, 0);
  g_assert_cmpint (dl->v.conv.in_feature, ==, 3);
  g_assert_cmpint (dl->v.conv.in_spatial[1], ==, 2);
  g_assert_cmpint (dl->v.conv.k_in, ==, 2);
  g_assert_cmpint (dl->v.conv.k_out, ==, 3);
  g_assert_cmpint (dl->v.conv.out_feature, ==, 3);
  g_assert_cmpint (fb_instr_int (c, FB_A_FEATURE_GROUP_COUNT, -1), ==, 1);
  const FbAttr *md = fb_instr_get_attr (c, FB_A_METADATA);
  g_assert_cmpstr (md->v.s, ==, "{op_name=\"conv\" source_file=\"m.py\" source_line=3}");

  const FbAttr *sl = fb_instr_get_attr (find_instr (m, "s"), FB_A_SLICE);
  g_assert_cmpint (sl->v.slice.n, ==, 4);
  g_assert_cmpint (sl->v.slice.d[1].limit, ==, 8);
  g_assert_cmpint (sl->v.slice.d[1].stride, ==, 4);
  g_assert_cmpint (sl->v.slice.d[2].start, ==, 1);
  g_assert_cmpint (sl->v.slice.d[2].stride, ==, 1);

  const FbAttr *pd = fb_instr_get_attr (find_instr (m, "p"), FB_A_PADDING);
  g_assert_cmpint (pd->v.pad.n, ==, 4);
  g_assert_cmpint (pd->v.pad.d[1].lo, ==, 1);
  g_assert_cmpint (pd->v.pad.d[1].hi, ==, 2);
  g_assert_cmpint (pd->v.pad.d[1].interior, ==, 1);
  g_assert_cmpint (pd->v.pad.d[3].hi, ==, 1);

  FbInstr *r = find_instr (m, "r");
  const FbDims *dims = fb_instr_dims (r, FB_A_DIMENSIONS);
  g_assert_cmpint (dims->n, ==, 3);
  g_assert_cmpint (dims->v[2], ==, 2);
  /* Called computations may be defined after their caller. */
  g_assert_true (fb_instr_comp (r, FB_A_TO_APPLY) == fb_module_find_computation (m, "sum"));

  FbInstr *t = find_instr (m, "t");
  g_assert_cmpstr (fb_instr_get_raw_attr (t, "sharding")->v.s, ==, "{devices=[2,1,1,1]0,1}");
  g_assert_cmpstr (fb_instr_get_attr (t, FB_A_BACKEND_CONFIG)->v.s, ==, "\"{\\\"x\\\": 1}\"");
  g_assert_cmpstr (fb_instr_get_raw_attr (t, "frontend_attributes")->v.s, ==, "{_a=\"1\",_b=\"{}\"}");

  FbInstr *cc = find_instr (m, "cc");
  g_assert_cmpstr (fb_instr_str (cc, FB_A_CUSTOM_CALL_TARGET), ==, "my$target");
  g_assert_cmpstr (fb_instr_get_attr (cc, FB_A_BACKEND_CONFIG)->v.s, ==, "{\"k\":[1,2]}");
  g_assert_cmpstr (fb_instr_get_raw_attr (cc, "control-predecessors")->v.s, ==, "{%t}");
  g_assert_cmpstr (fb_instr_get_raw_attr (cc, "replica_groups")->v.s, ==, "mesh['x'=2] {'x'}");
  g_assert_cmpstr (fb_instr_get_raw_attr (cc, "api_version")->v.s, ==, "API_VERSION_TYPED_FFI");
  /* Attributes keep their text order. */
  g_assert_cmpstr (cc->attrs[0].name, ==, "custom_call_target");
  g_assert_cmpstr (cc->attrs[2].name, ==, "control-predecessors");

  FbInstr *cmp = find_instr (m, "cmp");
  g_assert_cmpstr (fb_instr_str (cmp, FB_A_DIRECTION), ==, "LT");
  g_assert_cmpstr (fb_instr_str (cmp, FB_A_COMPARE_TYPE), ==, "TOTALORDER");

  const FbAttr *eps = fb_instr_get_attr (find_instr (m, "bn"), FB_A_EPSILON);
  g_assert_cmpfloat_with_epsilon (eps->v.f, 0.001, 1e-12);
  g_assert_cmpint (fb_instr_int (find_instr (m, "bn"), FB_A_FEATURE_INDEX, -1), ==, 3);
  g_assert_cmpint (fb_instr_int (find_instr (m, "i"), FB_A_IOTA_DIMENSION, -1), ==, 0);
  g_assert_cmpint (fb_instr_get_attr (find_instr (m, "srt"), FB_A_IS_STABLE)->v.i, ==, 1);

  const FbAttr *br = fb_instr_get_attr (find_instr (m, "cond"), FB_A_BRANCH_COMPUTATIONS);
  g_assert_cmpint (br->kind, ==, FB_AV_COMPS);
  g_assert_cmpint (br->v.comps.n, ==, 2);
  g_assert_true (br->v.comps.braced);
  g_assert_cmpstr (br->v.comps.c[0]->name, ==, "neg");
  g_assert_cmpstr (br->v.comps.c[1]->name, ==, "sum2");
  fb_module_free (m);
}

static void
test_dim_labels (void)
{
  static const struct { const char *labels; int n_spatial; int in_feature; int k_out; } cases[] = {
    { "b0f_0io->b0f", 1, 2, 2 },
    { "bf01_oi01->bf01", 2, 1, 0 },
    { "b012f_012io->b012f", 3, 4, 4 },
    { "bf_io->bf", 0, 1, 1 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strdup_printf (
        "ENTRY e {\n  a = f32[2,2,2,2,2] parameter(0)\n"
        "  ROOT c = f32[2,2,2,2,2] convolution(a, a), dim_labels=%s\n}\n", cases[i].labels);
      FbModule *m = parse_ok (text);
      const FbAttr *a = fb_instr_get_attr (m->entry->root, FB_A_DIM_LABELS);
      g_assert_cmpint (a->v.conv.n_spatial, ==, cases[i].n_spatial);
      g_assert_cmpint (a->v.conv.in_feature, ==, cases[i].in_feature);
      g_assert_cmpint (a->v.conv.k_out, ==, cases[i].k_out);
      fb_module_free (m);
    }
  g_autofree char *msg = parse_error ("ENTRY e {\n  a = f32[2,2,2] parameter(0)\n"
                                      "  ROOT c = f32[2,2,2] convolution(a, a), dim_labels=b01f_0io->b0f\n}\n");
  g_assert_cmpstr (msg, ==, "t.hlo:3:58: dim_labels groups disagree on the number of spatial dimensions");
}

/* ------------------------------------------------------ constants */

static void
test_constants (void)
{
  FbModule *m = parse_ok (
    "ENTRY e {\n"
    "  s = f32[] constant(1.5)\n"
    "  a = s32[2,3]{1,0} constant({ {1, 2, 3}, {-4, 5, -6} })\n"
    "  b = pred[3] constant({true, false, true})\n"
    "  f = f32[4] constant({inf, -inf, nan, -nan})\n"
    "  u = u64[2] constant({18446744073709551615, 0})\n"
    "  n = s64[] constant(-9223372036854775808)\n"
    "  c = c64[2] constant({(1, 2), (-3.5, 0)})\n"
    "  h = f16[2] constant({-65504, 0.015625})\n"
    "  t = (f32[], s8[2]) constant((2.5, {-128, 127}))\n"
    "  x = f32[100,100] constant({...})\n"
    "  ROOT z = f32[0] constant({})\n"
    "}\n");
  g_assert_cmpfloat (fb_literal_get_f64 (find_instr (m, "s")->literal, 0), ==, 1.5);
  FbLiteral *a = find_instr (m, "a")->literal;
  g_assert_cmpint (fb_literal_get_s64 (a, 2), ==, 3);
  g_assert_cmpint (fb_literal_get_s64 (a, 3), ==, -4);
  g_assert_cmpint (fb_literal_get_s64 (a, 5), ==, -6);
  FbLiteral *b = find_instr (m, "b")->literal;
  g_assert_cmpint (fb_literal_get_s64 (b, 0), ==, 1);
  g_assert_cmpint (fb_literal_get_s64 (b, 1), ==, 0);
  FbLiteral *f = find_instr (m, "f")->literal;
  g_assert_true (isinf (fb_literal_get_f64 (f, 0)) && fb_literal_get_f64 (f, 0) > 0);
  g_assert_true (isinf (fb_literal_get_f64 (f, 1)) && fb_literal_get_f64 (f, 1) < 0);
  g_assert_true (isnan (fb_literal_get_f64 (f, 2)));
  g_assert_true (isnan (fb_literal_get_f64 (f, 3)));
  FbLiteral *u = find_instr (m, "u")->literal;
  guint64 umax;
  memcpy (&umax, u->data, 8);
  g_assert_cmpuint (umax, ==, G_MAXUINT64);
  g_assert_cmpint (fb_literal_get_s64 (find_instr (m, "n")->literal, 0), ==, G_MININT64);
  FbLiteral *c = find_instr (m, "c")->literal;
  float parts[4];
  memcpy (parts, c->data, sizeof parts);
  g_assert_cmpfloat (parts[0], ==, 1);
  g_assert_cmpfloat (parts[1], ==, 2);
  g_assert_cmpfloat (parts[2], ==, -3.5);
  g_assert_cmpfloat (fb_literal_get_f64 (find_instr (m, "h")->literal, 0), ==, -65504);
  g_assert_cmpfloat (fb_literal_get_f64 (find_instr (m, "h")->literal, 1), ==, 0.015625);
  FbLiteral *t = find_instr (m, "t")->literal;
  g_assert_cmpint (t->n_elems, ==, 2);
  g_assert_cmpfloat (fb_literal_get_f64 (t->elems[0], 0), ==, 2.5);
  g_assert_cmpint (fb_literal_get_s64 (t->elems[1], 0), ==, -128);
  g_assert_cmpint (fb_literal_get_s64 (t->elems[1], 1), ==, 127);
  FbInstr *x = find_instr (m, "x");
  g_assert_true (x->literal_elided);
  g_assert_cmpfloat (fb_literal_get_f64 (x->literal, 9999), ==, 0);
  g_assert_cmpint (m->n_elided, ==, 1);
  g_assert_false (find_instr (m, "a")->literal_elided);
  fb_module_free (m);

  g_autofree char *m1 = parse_error ("ENTRY e {\n  ROOT c = f32[2,2] constant({ {1, 2}, {3} })\n}\n");
  g_assert_cmpstr (m1, ==, "t.hlo:2:40: literal has 1 elements in dimension 1 but f32[2,2] needs 2");
  g_autofree char *m2 = parse_error ("ENTRY e {\n  ROOT c = u8[] constant(256)\n}\n");
  g_assert_cmpstr (m2, ==, "t.hlo:2:26: 256 is out of range for u8");
  g_autofree char *m3 = parse_error ("ENTRY e {\n  ROOT c = s64[] constant(9223372036854775808)\n}\n");
  g_assert_cmpstr (m3, ==, "t.hlo:2:27: 9223372036854775808 is out of range for s64");
}

/* --------------------------------------------------- print styles */

static const char *long_with_shapes =
  "HloModule styles\n\n"
  "%add (x: f32[], y: f32[]) -> f32[] {\n"
  "  %x = f32[] parameter(0)\n"
  "  %y = f32[] parameter(1)\n"
  "  ROOT %add.1 = f32[] add(f32[] %x, f32[] %y)\n"
  "}\n\n"
  "ENTRY %main (p: f32[4]) -> f32[] {\n"
  "  %p = f32[4]{0} parameter(0)\n"
  "  %zero = f32[] constant(0)\n"
  "  %neg = f32[4]{0} negate(f32[4]{0} %p)\n"
  "  ROOT %r = f32[] reduce(f32[4]{0} %neg, f32[] %zero), dimensions={0}, to_apply=%add\n"
  "}\n";

static const char *long_without_shapes =
  "HloModule styles\n\n"
  "%add (x: f32[], y: f32[]) -> f32[] {\n"
  "  %x = f32[] parameter(0)\n"
  "  %y = f32[] parameter(1)\n"
  "  ROOT %add.1 = f32[] add(%x, %y)\n"
  "}\n\n"
  "ENTRY %main (p: f32[4]) -> f32[] {\n"
  "  %p = f32[4]{0} parameter(0)\n"
  "  %zero = f32[] constant(0)\n"
  "  %neg = f32[4]{0} negate(%p)\n"
  "  ROOT %r = f32[] reduce(%neg, %zero), dimensions={0}, to_apply=%add\n"
  "}\n";

static const char *short_form =
  "HloModule styles\n\n"
  "add {\n"
  "  x = f32[] parameter(0)\n"
  "  y = f32[] parameter(1)\n"
  "  ROOT add.1 = f32[] add(x, y)\n"
  "}\n\n"
  "ENTRY main {\n"
  "  p = f32[4]{0} parameter(0)\n"
  "  zero = f32[] constant(0)\n"
  "  neg = f32[4]{0} negate(p)\n"
  "  ROOT r = f32[] reduce(neg, zero), dimensions={0}, to_apply=add\n"
  "}\n";

static void
check_styles_module (FbModule *m, gboolean signature)
{
  g_assert_cmpstr (m->name, ==, "styles");
  g_assert_cmpint (m->n_comps, ==, 2);
  g_assert_cmpstr (m->entry->name, ==, "main");
  g_assert_true (m->entry->is_entry);
  g_assert_cmpint (m->entry->has_signature, ==, signature);
  g_assert_cmpint (m->entry->n_params, ==, 1);
  g_assert_cmpstr (m->entry->params[0]->name, ==, "p");
  FbInstr *r = m->entry->root;
  g_assert_cmpstr (r->name, ==, "r");
  g_assert_cmpint (r->opcode, ==, FB_OP_REDUCE);
  g_assert_cmpint (r->n_operands, ==, 2);
  g_assert_cmpstr (r->operands[0]->name, ==, "neg");
  g_assert_true (r->operands[0]->operands[0] == m->entry->params[0]);
  g_assert_true (fb_instr_comp (r, FB_A_TO_APPLY) == m->comps[0]);
  g_assert_cmpint (r->loc.line, ==, 13);
}

static void
test_long_form (void)
{
  FbModule *m = parse_ok (long_with_shapes);
  check_styles_module (m, TRUE);
  fb_module_free (m);
}

static void
test_long_form_no_operand_shapes (void)
{
  FbModule *m = parse_ok (long_without_shapes);
  check_styles_module (m, TRUE);
  FbModule *m2 = parse_ok (long_with_shapes);
  GString *why = g_string_new (NULL);
  g_assert_true (fb_module_equal (m, m2, why));
  g_string_free (why, TRUE);
  fb_module_free (m2);
  fb_module_free (m);
}

static void
test_short_form (void)
{
  FbModule *m = parse_ok (short_form);
  check_styles_module (m, FALSE);
  fb_module_free (m);
}

/* --------------------------------------------------------- module */

static void
test_header (void)
{
  FbModule *m = parse_ok (
    "HloModule jit_step, is_scheduled=true, entry_computation_layout={(f32[2]{0}, /*index=1*/s32[]{:T(128)})->(f32[2]{0}, s32[])},"
    " input_output_alias={ {0}: (0, {}, may-alias), {1}: (1, {}) }, buffer_donor={ (0, {}), (1, {}) },"
    " frontend_attributes={xla.sdy.meshes={mesh = #sdy.mesh<[\"x\"=2]>}}, num_partitions=2\n\n"
    "ENTRY main {\n  a = f32[2]{0} parameter(0)\n  b = s32[] parameter(1)\n"
    "  ROOT t = (f32[2]{0}, s32[]) tuple(a, b)\n}\n");
  g_assert_cmpstr (m->name, ==, "jit_step");
  g_assert_true (m->is_scheduled);
  g_assert_cmpint (m->n_entry_layout_params, ==, 2);
  g_assert_cmpstr (m->entry_layout_params[1]->layout->extra, ==, "T(128)");
  g_assert_cmpint (m->entry_layout_result->n_elems, ==, 2);
  g_assert_cmpint (m->n_aliases, ==, 2);
  g_assert_cmpint (m->aliases[0].output_index.n, ==, 1);
  g_assert_cmpint (m->aliases[1].output_index.v[0], ==, 1);
  g_assert_cmpint (m->aliases[1].param_number, ==, 1);
  g_assert_cmpstr (m->aliases[0].kind, ==, "may-alias");
  g_assert_null (m->aliases[1].kind);
  g_assert_cmpint (m->n_donors, ==, 2);
  g_assert_cmpint (m->donors[1].param_number, ==, 1);
  g_assert_cmpint (m->n_header_attrs, ==, 2);
  g_assert_cmpstr (m->header_attrs[0].key, ==, "frontend_attributes");
  g_assert_cmpstr (m->header_attrs[0].value, ==, "{xla.sdy.meshes={mesh = #sdy.mesh<[\"x\"=2]>}}");
  g_assert_cmpstr (m->header_attrs[1].key, ==, "num_partitions");
  g_assert_cmpstr (m->header_attrs[1].value, ==, "2");
  fb_module_free (m);
}

static void
test_no_header (void)
{
  const char *text = "c {\n  ROOT x = f32[] parameter(0)\n}\n\nmain {\n  p = f32[] parameter(0)\n"
                     "  ROOT r = f32[] call(p), to_apply=c\n}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "dir/while_loop.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (m->name, ==, "while_loop");
  /* Without ENTRY the last computation is the entry; without ROOT the last instruction is the root. */
  g_assert_cmpstr (m->entry->name, ==, "main");
  g_assert_true (m->entry->is_entry);
  g_assert_false (m->comps[0]->is_entry);
  g_assert_cmpstr (m->entry->root->name, ==, "r");
  fb_module_free (m);

  FbModule *m2 = parse_ok ("ENTRY e {\n  ROOT a = f32[] parameter(0)\n  b = f32[] negate(a)\n}\n");
  g_assert_cmpstr (m2->entry->root->name, ==, "a");
  fb_module_free (m2);
}

static void
test_multi_module (void)
{
  const char *text =
    "// first\nHloModule one\n\nENTRY e {\n  ROOT a = f32[] parameter(0)\n}\n\n"
    "// -----\n\nHloModule two\n\nENTRY e {\n  ROOT b = s32[] parameter(0)\n}\n"
    "  // -----\nHloModule three\nENTRY e {\n  ROOT c = f32[] bogus()\n}\n";
  g_assert_cmpint (fb_hlo_count_modules (text, strlen (text)), ==, 3);
  g_assert_cmpint (fb_hlo_count_modules ("", 0), ==, 1);
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "multi.hlo", 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (m->name, ==, "two");
  g_assert_cmpstr (m->entry->root->name, ==, "b");
  /* Lines count from the start of the file. */
  g_assert_cmpint (m->entry->root->loc.line, ==, 13);
  fb_module_free (m);
  m = fb_hlo_parse (text, strlen (text), "multi.hlo", 0, &error);
  g_assert_cmpstr (m->name, ==, "one");
  fb_module_free (m);

  g_assert_null (fb_hlo_parse (text, strlen (text), "multi.hlo", 2, &error));
  g_assert_true (g_str_has_prefix (error->message, "multi.hlo:18:18: unknown opcode 'bogus'\n"));
  g_clear_error (&error);
  g_assert_null (fb_hlo_parse (text, strlen (text), "multi.hlo", 3, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_PARSE);
}

static void
test_stack_tables (void)
{
  const char *tables =
    "FileNames\n1 \"a.py\"\n2 \"b.py\"\n\nFunctionNames\n1 \"f\"\n"
    "FileLocations\n1 {file_name_id=1 function_name_id=1 line=3 end_line=3 column=1 end_column=9}\n"
    "StackFrames\n1 {file_location_id=1 parent_frame_id=0}";
  g_autofree char *text = g_strdup_printf ("HloModule st\n\n%s\n\nENTRY e {\n"
                                           "  ROOT a = f32[] parameter(0), metadata={stack_frame_id=1}\n}\n",
                                           tables);
  FbModule *m = parse_ok (text);
  g_assert_cmpstr (m->stack_tables, ==, tables);
  g_assert_cmpint (m->n_comps, ==, 1);
  fb_module_free (m);
  FbModule *m2 = parse_ok (short_form);
  g_assert_null (m2->stack_tables);
  fb_module_free (m2);
}

static void
test_comments (void)
{
  FbModule *m = parse_ok (
    "// leading\nHloModule c /* block */\n"
    "ENTRY e { // trailing\n"
    "  a = f32[] parameter(0) // after\n"
    "  b = f32[] parameter(1)\n"
    "  /* between */ ROOT t = (f32[], f32[]) tuple(a, /*index=1*/b), metadata={op_name=\"//not a comment\"}\n"
    "}\n");
  FbInstr *t = m->entry->root;
  g_assert_cmpint (t->n_operands, ==, 2);
  g_assert_cmpstr (fb_instr_get_attr (t, FB_A_METADATA)->v.s, ==, "{op_name=\"//not a comment\"}");
  fb_module_free (m);
}

static void
test_tuple_operand (void)
{
  FbModule *m = parse_ok (
    "ENTRY %e {\n"
    "  %p = (f32[2], s32[]) parameter(0)\n"
    "  %n = f32[2] negate(f32[2] %p#0)\n"
    "  %m = f32[2] add(%p#0, %n)\n"
    "  ROOT %i = s32[] negate(%p#1)\n"
    "}\n");
  FbInstr *n = find_instr (m, "n"), *mm = find_instr (m, "m");
  FbInstr *g = n->operands[0];
  g_assert_cmpint (g->opcode, ==, FB_OP_GET_TUPLE_ELEMENT);
  g_assert_cmpstr (g->name, ==, "p.gte0");
  g_assert_cmpint (fb_instr_int (g, FB_A_INDEX, -1), ==, 0);
  g_assert_true (g->operands[0] == find_instr (m, "p"));
  g_assert_true (mm->operands[0] == g);
  g_assert_cmpint (m->entry->root->operands[0]->shape->type, ==, FB_S32);
  g_assert_cmpint (m->entry->n_instrs, ==, 6);
  fb_module_free (m);
}

static void
test_fusion_calls (void)
{
  FbModule *m = parse_ok (
    "ENTRY e {\n  a = f32[4] parameter(0)\n  z = f32[] constant(0)\n"
    "  f = f32[4] fusion(a), kind=kLoop, calls=fused\n"
    "  s = f32[] parameter(1)\n  ps = f32[] pad(s, z), padding=\n"
    "  ROOT r = f32[4] custom-call(f), custom_call_target=\"x\", called_computations={}\n}\n"
    "fused {\n  p = f32[4] parameter(0)\n  ROOT n = f32[4] negate(p)\n}\n");
  FbInstr *f = find_instr (m, "f");
  const FbAttr *calls = fb_instr_get_attr (f, FB_A_CALLS);
  g_assert_cmpint (calls->v.comps.n, ==, 1);
  g_assert_false (calls->v.comps.braced);
  g_assert_true (calls->v.comps.c[0]->is_fusion);
  g_assert_false (m->entry->is_fusion);
  g_assert_cmpstr (fb_instr_str (f, FB_A_KIND), ==, "kLoop");
  g_assert_cmpint (fb_instr_get_attr (find_instr (m, "ps"), FB_A_PADDING)->v.pad.n, ==, 0);
  const FbAttr *cc = fb_instr_get_attr (m->entry->root, FB_A_CALLED_COMPUTATIONS);
  g_assert_cmpint (cc->v.comps.n, ==, 0);
  g_assert_true (cc->v.comps.braced);
  fb_module_free (m);
}

static void
test_execution_thread (void)
{
  FbModule *m = parse_ok ("%t (p: f32[]) -> f32[] {\n  ROOT %p = f32[] parameter(0)\n}, execution_thread=\"host\"\n"
                          "ENTRY %e {\n  %a = f32[] parameter(0)\n  ROOT %c = f32[] call(%a), to_apply=%t\n}\n");
  g_assert_cmpstr (m->comps[0]->execution_thread, ==, "host");
  g_assert_null (m->comps[1]->execution_thread);
  fb_module_free (m);
}

/* ---------------------------------------------------------- errors */

static void
test_errors (void)
{
  static const struct { const char *text, *first_line; } cases[] = {
    { "ENTRY e {\n  ROOT a = f32[2] parameter(0)\n", "t.hlo:3:1: unexpected end of input: computation 'e' is not closed with '}'" },
    { "ENTRY e {\n  a = f32[2] parameter(0)\n  ROOT b = f32[2] add(a, a, a)\n}\n", "t.hlo:3:19: add takes 2 operands, not 3" },
    { "ENTRY e {\n  a = f32[2] parameter(0)\n  ROOT b = f32[2] add(a, q)\n}\n", "t.hlo:3:26: undefined instruction 'q'" },
    { "ENTRY e {\n  a = f32[2] parameter(0)\n  b = f32[2] add(a, c)\n  ROOT c = f32[2] add(a, b)\n}\n",
      "t.hlo:3:21: instruction 'c' is used before its definition at line 4" },
    { "ENTRY e {\n  a = f32[3000000000000] parameter(0)\n}\n", "t.hlo:2:11: dimension size 3000000000000 is too large (the limit is 2^40)" },
    { "ENTRY e {\n\ta = f32[2] parameter(0)\n\tROOT b = f32[2] nope(a)\n}\n", "t.hlo:3:18: unknown opcode 'nope'" },
    { "ENTRY e {\n  a = f32[2] parameter(0), to_apply=%nowhere\n}\n", "t.hlo:2:38: undefined computation 'nowhere'" },
    { "", "t.hlo:1:1: no computation found: the input is empty" },
    { "ENTRY e {\n  a = f32[2] parameter(0), backend_config=\"abc\n}\n", "t.hlo:2:43: unterminated string" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *msg = parse_error (cases[i].text);
      g_assert_cmpstr (msg, ==, cases[i].first_line);
    }

  /* The full message: location, source line, caret (tabs kept). */
  g_autoptr (GError) error = NULL;
  const char *text = "ENTRY e {\n\ta = f32[2] parameter(0)\n\tROOT b = f32[2] nope(a)\n}\n";
  g_assert_null (fb_hlo_parse (text, strlen (text), "tab.hlo", 0, &error));
  g_assert_cmpstr (error->message, ==, "tab.hlo:3:18: unknown opcode 'nope'\n"
                                       "\tROOT b = f32[2] nope(a)\n"
                                       "\t                ^");
}

static void
test_garbage (void)
{
  /* Every byte value at the start of an otherwise valid module: an error or a module, never a crash. */
  for (int b = 0; b < 256; b++)
    {
      char text[] = "?NTRY e {\n  ROOT a = f32[] parameter(0)\n}\n";
      text[0] = (char) b;
      g_autoptr (GError) error = NULL;
      FbModule *m = fb_hlo_parse (text, sizeof text - 1, "g.hlo", 0, &error);
      g_assert_true ((m != NULL) != (error != NULL));
      if (error)
        g_assert_true (g_str_has_prefix (error->message, "g.hlo:"));
      fb_module_free (m);
    }
  /* Every prefix of a module is handled cleanly. */
  gsize len = strlen (long_with_shapes);
  for (gsize n = 0; n < len; n++)
    {
      g_autoptr (GError) error = NULL;
      FbModule *m = fb_hlo_parse (long_with_shapes, n, "p.hlo", 0, &error);
      g_assert_true ((m != NULL) != (error != NULL));
      fb_module_free (m);
    }
  g_autoptr (GError) error = NULL;
  const char bin[] = { 'E', 'N', 'T', 'R', 'Y', ' ', (char) 0xff, (char) 0xfe, 0, 1, 2 };
  g_assert_null (fb_hlo_parse (bin, sizeof bin, "bin.hlo", 0, &error));
  g_assert_true (g_str_has_prefix (error->message, "bin.hlo:1:7: invalid UTF-8 (byte 0xff)"));
}

static void
test_parse_file (void)
{
  g_autoptr (GError) error = NULL;
  g_assert_null (fb_hlo_parse_file ("/nonexistent/dir/x.hlo", 0, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_IO);
}

/* ---------------------------------------------------------- corpus */

static void
test_corpus (void)
{
  const char *dir = g_getenv ("FUSEBOX_CORPUS");
  if (dir == NULL)
    {
      g_test_skip ("FUSEBOX_CORPUS is not set: no directory of real HLO modules");
      return;
    }
  static const struct { const char *file; int modules, comps, instrs; const char *entry; } cases[] = {
    { "argsort_axis_1024x512_bf16.hlo", 1, 5, 50, "main.5" },
    { "depthwise_conv_3x3_1x256x56x56_bf16.hlo", 1, 1, 4, "main.1" },
    { "dynamic_slice_loop_1x2048x768_bf16.hlo", 1, 1, 453, "main.1" },
    { "gemma3_1b_flax_call.hlo", 1, 403, 9738, "main.10141" },
    { "import.hlo", 1, 181, 574, "dummy_main" },
    { "kernel_reuse.hlo", 5, 4, 21, "main" },
    { "layer_norm_1x4096x768_bf16.hlo", 1, 3, 37, "main.3" },
    { "mha_block_1x12x128x64_bf16.hlo", 1, 3, 41, "main.3" },
    { "mobilenet_v2.hlo", 1, 55, 3924, "IrToHlo.3979" },
    { "multiple_gemm_fusions.hlo", 1, 5, 26, "e" },
    { "while_with_known_trip_count.hlo", 1, 3, 12, "main" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_build_filename (dir, cases[i].file, NULL);
      g_autofree char *text = NULL;
      gsize len;
      g_assert_true (g_file_get_contents (path, &text, &len, NULL));
      int n = fb_hlo_count_modules (text, len);
      g_assert_cmpint (n, ==, cases[i].modules);
      for (int k = 0; k < n; k++)
        {
          g_autoptr (GError) error = NULL;
          FbModule *m = fb_hlo_parse (text, len, path, k, &error);
          g_assert_no_error (error);
          if (k == 0)
            {
              g_assert_cmpint (m->n_comps, ==, cases[i].comps);
              g_assert_cmpint (fb_module_instr_count (m), ==, cases[i].instrs);
              g_assert_cmpstr (m->entry->name, ==, cases[i].entry);
            }
          fb_module_free (m);
        }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/compiler/parser/lexer-tokens", test_lexer_tokens);
  g_test_add_func ("/compiler/parser/element-types", test_element_types);
  g_test_add_func ("/compiler/parser/shapes", test_shapes);
  g_test_add_func ("/compiler/parser/attributes", test_attributes);
  g_test_add_func ("/compiler/parser/dim-labels", test_dim_labels);
  g_test_add_func ("/compiler/parser/constants", test_constants);
  g_test_add_func ("/compiler/parser/long-form", test_long_form);
  g_test_add_func ("/compiler/parser/long-form-no-operand-shapes", test_long_form_no_operand_shapes);
  g_test_add_func ("/compiler/parser/short-form", test_short_form);
  g_test_add_func ("/compiler/parser/header", test_header);
  g_test_add_func ("/compiler/parser/no-header", test_no_header);
  g_test_add_func ("/compiler/parser/multi-module", test_multi_module);
  g_test_add_func ("/compiler/parser/stack-tables", test_stack_tables);
  g_test_add_func ("/compiler/parser/comments", test_comments);
  g_test_add_func ("/compiler/parser/tuple-operand", test_tuple_operand);
  g_test_add_func ("/compiler/parser/fusion-calls", test_fusion_calls);
  g_test_add_func ("/compiler/parser/execution-thread", test_execution_thread);
  g_test_add_func ("/compiler/parser/errors", test_errors);
  g_test_add_func ("/compiler/parser/garbage", test_garbage);
  g_test_add_func ("/compiler/parser/parse-file", test_parse_file);
  g_test_add_func ("/compiler/parser/corpus", test_corpus);
  return g_test_run ();
}
