/* SPDX-License-Identifier: MIT
 *
 * Tests of the cleanup passes: simplify on golden input / expected-output
 * pairs in data/passes (run with dce so that operands left unused go too,
 * and compared after printing both, with instruction names numbered in
 * order), cse merging duplicates and refusing rng, dce keeping side
 * effects and dropping computations nothing calls, fold-constants folding
 * and refusing a big result, and canonicalize producing the canonical dot
 * form while computing the same values.
 */
#include <string.h>

#include <glib.h>

#include "fb-builder.h"
#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-pass.h"
#include "fb-verify.h"

static FbLiteral *
interp_evaluator (FbModule *module, FbArena *arena, gpointer user_data, GError **error)
{
  return fb_interp_run (module, module->entry, arena, 0, NULL, NULL, error);
}

static FbModule *
parse (const char *text)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "test.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_no_error (error);
  return m;
}

static FbModule *
parse_data (const char *name)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", "passes", name, NULL);
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse_file (path, 0, &error);
  g_assert_no_error (error);
  return m;
}

/* Runs the passes of @spec; returns the decisions of all of them. */
static GPtrArray *
run_passes (FbModule *m, const char *spec, gboolean *changed)
{
  FbPipeline *p = fb_pipeline_new_default ();
  g_autoptr (GError) error = NULL;
  g_assert_true (fb_pipeline_set_spec (p, spec, &error));
  FbPipelineOptions options = { .verify_each = TRUE, .keep_snapshots = FALSE };
  g_autoptr (GPtrArray) snaps = fb_pipeline_run (p, m, &options, &error);
  g_assert_no_error (error);
  GPtrArray *all = g_ptr_array_new ();
  if (changed)
    *changed = FALSE;
  for (guint s = 1; s < snaps->len; s++)
    {
      FbSnapshot *snap = g_ptr_array_index (snaps, s);
      if (changed)
        *changed |= snap->changed;
      for (guint d = 0; d < snap->decisions->len; d++)
        {
          FbDecision *src = g_ptr_array_index (snap->decisions, d);
          FbDecision *copy = g_new0 (FbDecision, 1);
          *copy = *src;
          copy->rule = g_strdup (src->rule);
          copy->message = g_strdup (src->message);
          copy->ids = g_memdup2 (src->ids, sizeof (int64_t) * MAX (src->n_ids, 1));
          g_ptr_array_add (all, copy);
        }
    }
  g_ptr_array_set_free_func (all, (GDestroyNotify) fb_decision_free);
  fb_pipeline_free (p);
  return all;
}

static const FbDecision *
find_decision (GPtrArray *ds, FbDecisionKind kind, const char *rule)
{
  for (guint i = 0; i < ds->len; i++)
    {
      const FbDecision *d = g_ptr_array_index (ds, i);
      if (d->kind == kind && strcmp (d->rule, rule) == 0)
        return d;
    }
  return NULL;
}

static gboolean
is_name_char (char c)
{
  return g_ascii_isalnum (c) || c == '_' || c == '.' || c == '-';
}

/* The module printed in the short style, with every instruction renamed to
 * v0, v1, ... in order of definition, so that names a pass made up do not
 * matter. */
static char *
normalized (FbModule *m)
{
  g_autofree char *text = fb_hlo_to_string (m, FB_PRINT_SHORT);
  g_autoptr (GHashTable) names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i]; i++)
    {
      const char *l = lines[i];
      while (*l == ' ')
        l++;
      if (g_str_has_prefix (l, "ROOT "))
        l += 5;
      const char *eq = strstr (l, " = ");
      if (eq == NULL || (strchr (l, '{') != NULL && strchr (l, '{') < eq))
        continue;
      char *name = g_strndup (l, eq - l);
      if (!g_hash_table_contains (names, name))
        g_hash_table_insert (names, name, g_strdup_printf ("v%u", g_hash_table_size (names)));
      else
        g_free (name);
    }
  GString *out = g_string_new (NULL);
  for (const char *p = text; *p;)
    {
      if (!is_name_char (*p))
        {
          g_string_append_c (out, *p++);
          continue;
        }
      const char *q = p;
      while (*q && is_name_char (*q))
        q++;
      g_autofree char *tok = g_strndup (p, q - p);
      const char *rename = g_hash_table_lookup (names, tok);
      g_string_append (out, rename ? rename : tok);
      p = q;
    }
  return g_string_free (out, FALSE);
}

static void
test_golden (gconstpointer data)
{
  const char *name = data;
  g_autofree char *in_name = g_strdup_printf ("%s.hlo", name);
  g_autofree char *want_name = g_strdup_printf ("%s.expected.hlo", name);
  FbModule *m = parse_data (in_name);
  FbModule *want = parse_data (want_name);
  gboolean changed = FALSE;
  g_autoptr (GPtrArray) ds = run_passes (m, "simplify,dce", &changed);
  g_autofree char *got_text = normalized (m);
  g_autofree char *want_text = normalized (want);
  g_assert_true (changed);
  g_assert_cmpuint (ds->len, >, 0);
  if (g_test_verbose ())
    g_test_message ("%s", got_text);
  g_assert_cmpstr (got_text, ==, want_text);
  fb_module_free (m);
  fb_module_free (want);
}

static void
test_simplify_rules_recorded (void)
{
  FbModule *m = parse_data ("add-zero.hlo");
  int64_t add_id = -1;
  for (FbInstr *i = m->entry->first; i; i = i->next)
    if (strcmp (i->name, "a") == 0)
      add_id = i->id;
  g_autoptr (GPtrArray) ds = run_passes (m, "simplify", NULL);
  const FbDecision *d = find_decision (ds, FB_DECISION_REWRITTEN, "x+0");
  g_assert_nonnull (d);
  gboolean has = FALSE;
  for (int k = 0; k < d->n_ids; k++)
    has |= d->ids[k] == add_id;
  g_assert_true (has);
  g_assert_nonnull (find_decision (ds, FB_DECISION_REWRITTEN, "0+x"));
  g_assert_nonnull (find_decision (ds, FB_DECISION_REWRITTEN, "x-0"));
  /* The parameter that replaced %a now stands for it too. */
  FbInstr *x = m->entry->params[0];
  has = FALSE;
  for (int k = 0; k < x->n_prov; k++)
    has |= x->prov[k] == add_id;
  g_assert_true (has);
  fb_module_free (m);
}

static void
test_simplify_float_times_zero_kept (void)
{
  FbModule *m = parse ("HloModule m\n\nENTRY main {\n  x = f32[4]{0} parameter(0)\n  z = f32[] constant(0)\n"
                       "  zs = f32[4]{0} broadcast(z), dimensions={}\n  ROOT r = f32[4]{0} multiply(x, zs)\n}\n");
  gboolean changed = TRUE;
  g_autoptr (GPtrArray) ds = run_passes (m, "simplify", &changed);
  g_assert_false (changed);
  g_assert_cmpint (m->entry->root->opcode, ==, FB_OP_MULTIPLY);
  fb_module_free (m);
}

static int
count_op (FbComputation *c, FbOpcode op)
{
  int n = 0;
  for (FbInstr *i = c->first; i; i = i->next)
    n += i->opcode == op;
  return n;
}

static void
test_cse_merges (void)
{
  FbModule *m = parse ("HloModule m\n\nENTRY main {\n  x = f32[4]{0} parameter(0)\n  y = f32[4]{0} parameter(1)\n"
                       "  a1 = f32[4]{0} add(x, y)\n  a2 = f32[4]{0} add(x, y)\n  e1 = f32[4]{0} exponential(a1)\n"
                       "  e2 = f32[4]{0} exponential(a2)\n  c1 = f32[] constant(2)\n  c2 = f32[] constant(2)\n"
                       "  b1 = f32[4]{0} broadcast(c1), dimensions={}\n  b2 = f32[4]{0} broadcast(c2), dimensions={}\n"
                       "  m1 = f32[4]{0} multiply(e1, b1)\n  m2 = f32[4]{0} multiply(e2, b2)\n"
                       "  ROOT t = (f32[4]{0}, f32[4]{0}) tuple(m1, m2)\n}\n");
  gboolean changed = FALSE;
  g_autoptr (GPtrArray) ds = run_passes (m, "cse", &changed);
  g_assert_true (changed);
  g_assert_cmpint (count_op (m->entry, FB_OP_ADD), ==, 1);
  g_assert_cmpint (count_op (m->entry, FB_OP_EXP), ==, 1);
  g_assert_cmpint (count_op (m->entry, FB_OP_CONSTANT), ==, 1);
  g_assert_cmpint (count_op (m->entry, FB_OP_MULTIPLY), ==, 1);
  g_assert_true (m->entry->root->operands[0] == m->entry->root->operands[1]);
  g_assert_nonnull (find_decision (ds, FB_DECISION_REWRITTEN, "duplicate"));
  fb_module_free (m);
}

static void
test_cse_refuses_rng (void)
{
  FbModule *m = parse ("HloModule m\n\nENTRY main {\n  lo = f32[] constant(0)\n  hi = f32[] constant(1)\n"
                       "  r1 = f32[4]{0} rng(lo, hi), distribution=rng_uniform\n"
                       "  r2 = f32[4]{0} rng(lo, hi), distribution=rng_uniform\n"
                       "  ROOT s = f32[4]{0} subtract(r1, r2)\n}\n");
  g_autoptr (GPtrArray) ds = run_passes (m, "cse", NULL);
  g_assert_cmpint (count_op (m->entry, FB_OP_RNG), ==, 2);
  g_assert_true (m->entry->root->operands[0] != m->entry->root->operands[1]);
  g_assert_nonnull (find_decision (ds, FB_DECISION_REFUSED, "side-effect"));
  fb_module_free (m);

  /* Nor two calls of a computation that draws random numbers. */
  m = parse ("HloModule m\n\nnoise {\n  p = f32[4]{0} parameter(0)\n  lo = f32[] constant(0)\n  hi = f32[] constant(1)\n"
             "  r = f32[4]{0} rng(lo, hi), distribution=rng_uniform\n  ROOT a = f32[4]{0} add(p, r)\n}\n\n"
             "ENTRY main {\n  x = f32[4]{0} parameter(0)\n  c1 = f32[4]{0} call(x), to_apply=noise\n"
             "  c2 = f32[4]{0} call(x), to_apply=noise\n  ROOT s = f32[4]{0} subtract(c1, c2)\n}\n");
  g_autoptr (GPtrArray) ds2 = run_passes (m, "cse", NULL);
  g_assert_cmpint (count_op (m->entry, FB_OP_CALL), ==, 2);
  g_assert_nonnull (find_decision (ds2, FB_DECISION_REFUSED, "side-effect"));
  fb_module_free (m);
}

static void
test_dce_keeps_side_effects (void)
{
  FbModule *m = parse ("HloModule m\n\n"
                       "unused_comp {\n  p = f32[] parameter(0)\n  ROOT n = f32[] negate(p)\n}\n\n"
                       "fused_comp {\n  q = f32[4]{0} parameter(0)\n  ROOT e = f32[4]{0} exponential(q)\n}\n\n"
                       "ENTRY main {\n  x = f32[4]{0} parameter(0)\n  lo = f32[] constant(0)\n  hi = f32[] constant(1)\n"
                       "  r = f32[4]{0} rng(lo, hi), distribution=rng_uniform\n"
                       "  cc = f32[4]{0} custom-call(x), custom_call_target=\"log_it\", custom_call_has_side_effect=true\n"
                       "  dead1 = f32[4]{0} add(x, x)\n  dead2 = f32[4]{0} exponential(dead1)\n"
                       "  ROOT y = f32[4]{0} negate(x)\n}\n");
  FbComputation *fused = fb_module_find_computation (m, "fused_comp");
  g_assert_nonnull (fused);
  fused->is_fusion = TRUE;
  gboolean changed = FALSE;
  g_autoptr (GPtrArray) ds = run_passes (m, "dce", &changed);
  g_assert_true (changed);
  g_assert_cmpint (count_op (m->entry, FB_OP_RNG), ==, 1);
  g_assert_cmpint (count_op (m->entry, FB_OP_CUSTOM_CALL), ==, 1);
  g_assert_cmpint (count_op (m->entry, FB_OP_ADD), ==, 0);
  g_assert_cmpint (count_op (m->entry, FB_OP_EXP), ==, 0);
  g_assert_cmpint (count_op (m->entry, FB_OP_NEGATE), ==, 1);
  /* rng keeps its operands alive. */
  g_assert_cmpint (count_op (m->entry, FB_OP_CONSTANT), ==, 2);
  g_assert_null (fb_module_find_computation (m, "unused_comp"));
  g_assert_null (fb_module_find_computation (m, "fused_comp"));
  g_assert_cmpint (m->n_comps, ==, 1);
  g_assert_nonnull (find_decision (ds, FB_DECISION_REMOVED, "unused"));
  g_assert_nonnull (find_decision (ds, FB_DECISION_REMOVED, "unused-fused-computation"));
  g_assert_nonnull (find_decision (ds, FB_DECISION_REMOVED, "unreachable-computation"));
  fb_module_free (m);
}

static void
test_fold_constants (void)
{
  fb_pass_set_constant_evaluator (interp_evaluator, NULL);
  FbModule *m = parse ("HloModule m\n\nENTRY main {\n  x = f32[3]{0} parameter(0)\n"
                       "  a = f32[3]{0} constant({1, 2, 3})\n  b = f32[3]{0} constant({10, 20, 30})\n"
                       "  s = f32[3]{0} add(a, b)\n  n = f32[3]{0} negate(s)\n  ROOT r = f32[3]{0} multiply(x, n)\n}\n");
  gboolean changed = FALSE;
  g_autoptr (GPtrArray) ds = run_passes (m, "fold-constants", &changed);
  g_assert_true (changed);
  FbInstr *k = m->entry->root->operands[1];
  g_assert_cmpint (k->opcode, ==, FB_OP_CONSTANT);
  g_assert_cmpfloat (fb_literal_get_f64 (k->literal, 0), ==, -11);
  g_assert_cmpfloat (fb_literal_get_f64 (k->literal, 2), ==, -33);
  g_assert_cmpint (count_op (m->entry, FB_OP_ADD), ==, 0);
  g_assert_cmpint (count_op (m->entry, FB_OP_CONSTANT), ==, 1);
  g_assert_nonnull (find_decision (ds, FB_DECISION_REWRITTEN, "fold"));
  fb_module_free (m);
}

static void
test_fold_refuses_big (void)
{
  fb_pass_set_constant_evaluator (interp_evaluator, NULL);
  FbModule *m = fb_module_new ("big");
  FbBuilder *b = fb_builder_new (m, "main");
  FbShape *shape = fb_b_shape (b, FB_F32, 2, (int64_t[]) { 512, 1024 });   /* 2 MiB */
  FbLiteral *lit = fb_literal_new (m->arena, shape);
  FbInstr *c = fb_b_const_literal (b, lit);
  FbInstr *e = fb_b_exp (b, c);
  fb_builder_set_root (b, e);
  fb_builder_set_entry (b);
  g_autoptr (GError) error = NULL;
  g_assert_nonnull (fb_builder_finish (b, &error));
  fb_builder_free (b);
  gboolean changed = TRUE;
  g_autoptr (GPtrArray) ds = run_passes (m, "fold-constants", &changed);
  g_assert_false (changed);
  g_assert_cmpint (m->entry->root->opcode, ==, FB_OP_EXP);
  const FbDecision *d = find_decision (ds, FB_DECISION_REFUSED, "result-too-big");
  g_assert_nonnull (d);
  g_assert_nonnull (strstr (d->message, "2097152"));
  fb_module_free (m);
}

static void
test_fold_never_rng (void)
{
  fb_pass_set_constant_evaluator (interp_evaluator, NULL);
  FbModule *m = parse ("HloModule m\n\nENTRY main {\n  lo = f32[] constant(0)\n  hi = f32[] constant(1)\n"
                       "  ROOT r = f32[4]{0} rng(lo, hi), distribution=rng_uniform\n}\n");
  gboolean changed = TRUE;
  g_autoptr (GPtrArray) ds = run_passes (m, "fold-constants", &changed);
  g_assert_false (changed);
  g_assert_cmpint (m->entry->root->opcode, ==, FB_OP_RNG);
  fb_module_free (m);
}

/* Runs the entry on arguments filled from a fixed seed. */
static FbLiteral *
run_seeded (FbModule *m, FbArena *arena)
{
  GRand *rand = g_rand_new_with_seed (7);
  FbLiteral *args[16];
  g_assert_cmpint (m->entry->n_params, <=, 16);
  for (int p = 0; p < m->entry->n_params; p++)
    {
      args[p] = fb_literal_new (arena, m->entry->params[p]->shape);
      for (int64_t i = 0; i < fb_shape_elements (args[p]->shape); i++)
        fb_literal_set_f64 (args[p], i, g_rand_double_range (rand, -2, 2));
    }
  g_rand_free (rand);
  g_autoptr (GError) error = NULL;
  FbLiteral *out = fb_interp_run (m, m->entry, arena, m->entry->n_params, args, NULL, &error);
  g_assert_no_error (error);
  return out;
}

static void
assert_close (const FbLiteral *a, const FbLiteral *b)
{
  g_assert_true (fb_shape_compatible (a->shape, b->shape));
  for (int64_t i = 0; i < fb_shape_elements (a->shape); i++)
    g_assert_cmpfloat_with_epsilon (fb_literal_get_f64 (a, i), fb_literal_get_f64 (b, i), 1e-4);
}

/* A convolution over a zero-padded input takes the pad into its window:
 * the spatial pads add to the window's, the pad goes, and the result is
 * the same. A pad it must not take stays. */
#define CONV_PAD_HLO(VALUE, PADDING, P_DIMS, WINDOW, C_DIMS)                                          \
  "HloModule m\n\nENTRY main {\n  x = f32[2,3,6,5]{3,2,1,0} parameter(0)\n"                           \
  "  k = f32[4,3,3,3]{3,2,1,0} parameter(1)\n  z = f32[] constant(" VALUE ")\n"                         \
  "  p = f32[" P_DIMS "]{3,2,1,0} pad(x, z), padding=" PADDING "\n"                                      \
  "  ROOT c = f32[" C_DIMS "]{3,2,1,0} convolution(p, k), window={" WINDOW "}, dim_labels=bf01_oi01->bf01\n}\n"

static void
test_conv_pad_folded (void)
{
  FbModule *m = parse (CONV_PAD_HLO ("0", "0_0x0_0x2_1x0_3", "2,3,9,8", "size=3x3 pad=1_0x0_2", "2,4,8,8"));
  FbModule *before = fb_module_clone (m);
  g_autoptr (GPtrArray) ds = run_passes (m, "simplify,dce", NULL);
  g_assert_nonnull (find_decision (ds, FB_DECISION_REWRITTEN, "conv(pad)"));
  const FbInstr *c = m->entry->root;
  g_assert_cmpint (c->opcode, ==, FB_OP_CONVOLUTION);
  g_assert_true (c->operands[0] == m->entry->params[0]);
  g_assert_cmpint (count_op (m->entry, FB_OP_PAD), ==, 0);
  const FbAttr *w = fb_instr_get_attr (c, FB_A_WINDOW);
  g_assert_cmpint (w->v.window.d[0].pad_lo, ==, 3);
  g_assert_cmpint (w->v.window.d[0].pad_hi, ==, 1);
  g_assert_cmpint (w->v.window.d[1].pad_lo, ==, 0);
  g_assert_cmpint (w->v.window.d[1].pad_hi, ==, 5);
  FbArena *arena = fb_arena_new ();
  assert_close (run_seeded (before, arena), run_seeded (m, arena));
  fb_arena_free (arena);
  fb_module_free (before);
  fb_module_free (m);

  /* Kept: a pad value other than +0, interior padding, padding of the
   * features, and a window that dilates the input. */
  static const char *const kept[] = {
    CONV_PAD_HLO ("1", "0_0x0_0x2_1x0_3", "2,3,9,8", "size=3x3 pad=1_0x0_2", "2,4,8,8"),
    CONV_PAD_HLO ("-0", "0_0x0_0x2_1x0_3", "2,3,9,8", "size=3x3 pad=1_0x0_2", "2,4,8,8"),
    CONV_PAD_HLO ("0", "0_0x0_0x1_0_1x0_3", "2,3,12,8", "size=3x3 pad=1_0x0_2", "2,4,11,8"),
    "HloModule m\n\nENTRY main {\n  x = f32[2,3,6,5]{3,2,1,0} parameter(0)\n"
    "  k = f32[4,4,3,3]{3,2,1,0} parameter(1)\n  z = f32[] constant(0)\n"
    "  p = f32[2,4,6,5]{3,2,1,0} pad(x, z), padding=0_0x0_1x0_0x0_0\n"
    "  ROOT c = f32[2,4,4,3]{3,2,1,0} convolution(p, k), window={size=3x3}, dim_labels=bf01_oi01->bf01\n}\n",
    CONV_PAD_HLO ("0", "0_0x0_0x1_1x0_0", "2,3,8,5", "size=3x3 lhs_dilate=2x1", "2,4,13,3"),
  };
  for (guint t = 0; t < G_N_ELEMENTS (kept); t++)
    {
      FbModule *k = parse (kept[t]);
      g_autoptr (GPtrArray) kd = run_passes (k, "simplify,dce", NULL);
      g_assert_null (find_decision (kd, FB_DECISION_REWRITTEN, "conv(pad)"));
      fb_module_free (k);
    }
}

static void
test_canonical_dot (void)
{
  /* Batch dimension last, contracting dimension first on the left. */
  const char *text = "HloModule m\n\nENTRY main {\n  a = f32[3,2,5]{2,1,0} parameter(0)\n"
                     "  b = f32[4,3,5]{2,1,0} parameter(1)\n"
                     "  ROOT d = f32[5,2,4]{2,1,0} dot(a, b), lhs_batch_dims={2}, rhs_batch_dims={2}, "
                     "lhs_contracting_dims={0}, rhs_contracting_dims={1}\n}\n";
  FbModule *m = parse (text);
  FbModule *orig = parse (text);
  gboolean changed = FALSE;
  g_autoptr (GPtrArray) ds = run_passes (m, "canonicalize", &changed);
  g_assert_true (changed);
  g_assert_nonnull (find_decision (ds, FB_DECISION_REWRITTEN, "canonical-dot"));
  FbInstr *dot = NULL;
  for (FbInstr *i = m->entry->first; i; i = i->next)
    if (i->opcode == FB_OP_DOT)
      dot = i;
  g_assert_nonnull (dot);
  g_assert_cmpint (dot->operands[0]->shape->rank, ==, 3);
  g_assert_cmpint (dot->operands[1]->shape->rank, ==, 3);
  g_assert_cmpint (fb_instr_dims (dot, FB_A_LHS_BATCH_DIMS)->v[0], ==, 0);
  g_assert_cmpint (fb_instr_dims (dot, FB_A_RHS_BATCH_DIMS)->v[0], ==, 0);
  g_assert_cmpint (fb_instr_dims (dot, FB_A_LHS_CONTRACTING_DIMS)->v[0], ==, 2);
  g_assert_cmpint (fb_instr_dims (dot, FB_A_RHS_CONTRACTING_DIMS)->v[0], ==, 1);
  /* [B,M,K] = [5,2,3] and [B,K,N] = [5,3,4]. */
  g_assert_cmpint (dot->operands[0]->shape->dims[1], ==, 2);
  g_assert_cmpint (dot->operands[1]->shape->dims[2], ==, 4);

  FbArena *arena = fb_arena_new ();
  assert_close (run_seeded (m, arena), run_seeded (orig, arena));
  fb_arena_free (arena);

  /* Canonical already: nothing to do, a second time. */
  changed = TRUE;
  g_autoptr (GPtrArray) again = run_passes (m, "canonicalize", &changed);
  g_assert_false (changed);
  fb_module_free (m);
  fb_module_free (orig);
}

static void
test_canonical_matmul_untouched (void)
{
  FbModule *m = parse ("HloModule m\n\nENTRY main {\n  a = f32[2,3]{1,0} parameter(0)\n  b = f32[3,4]{1,0} parameter(1)\n"
                       "  ROOT d = f32[2,4]{1,0} dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n");
  gboolean changed = TRUE;
  g_autoptr (GPtrArray) ds = run_passes (m, "canonicalize", &changed);
  g_assert_false (changed);
  fb_module_free (m);

  /* x times a transposed weight matrix: canonical, the weights are not copied. */
  m = parse ("HloModule m\n\nENTRY main {\n  x = f32[2,3]{1,0} parameter(0)\n  w = f32[4,3]{1,0} parameter(1)\n"
             "  ROOT d = f32[2,4]{1,0} dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={1}\n}\n");
  changed = TRUE;
  g_autoptr (GPtrArray) ds2 = run_passes (m, "canonicalize", &changed);
  g_assert_false (changed);
  fb_module_free (m);
}

static void
test_canonical_dot_no_transpose (void)
{
  /* Left operand [B,K,M1,M2]: a reshape makes it [B,K,M], read transposed. */
  const char *text = "HloModule m\n\nENTRY main {\n  a = f32[2,3,4,5]{3,2,1,0} parameter(0)\n"
                     "  b = f32[2,3,6]{2,1,0} parameter(1)\n"
                     "  ROOT d = f32[2,4,5,6]{3,2,1,0} dot(a, b), lhs_batch_dims={0}, rhs_batch_dims={0}, "
                     "lhs_contracting_dims={1}, rhs_contracting_dims={1}\n}\n";
  FbModule *m = parse (text);
  FbModule *orig = parse (text);
  gboolean changed = FALSE;
  g_autoptr (GPtrArray) ds = run_passes (m, "canonicalize", &changed);
  g_assert_true (changed);
  g_assert_cmpint (count_op (m->entry, FB_OP_TRANSPOSE), ==, 0);
  g_assert_cmpint (m->entry->root->opcode, ==, FB_OP_RESHAPE);
  FbInstr *dot = m->entry->root->operands[0];
  g_assert_cmpint (dot->opcode, ==, FB_OP_DOT);
  g_assert_cmpint (dot->operands[0]->shape->rank, ==, 3);
  g_assert_cmpint (dot->operands[0]->shape->dims[2], ==, 20);
  g_assert_cmpint (fb_instr_dims (dot, FB_A_LHS_CONTRACTING_DIMS)->v[0], ==, 1);
  FbArena *arena = fb_arena_new ();
  assert_close (run_seeded (m, arena), run_seeded (orig, arena));
  fb_arena_free (arena);
  fb_module_free (m);
  fb_module_free (orig);
}

static void
test_sink_transpose (void)
{
  const char *text = "HloModule m\n\nENTRY main {\n  x = f32[2,3]{1,0} parameter(0)\n  c = f32[] constant(1.5)\n"
                     "  cb = f32[2,3]{1,0} broadcast(c), dimensions={}\n  e = f32[2,3]{1,0} multiply(x, cb)\n"
                     "  ROOT t = f32[3,2]{1,0} transpose(e), dimensions={1,0}\n}\n";
  FbModule *m = parse (text);
  FbModule *orig = parse (text);
  g_autoptr (GPtrArray) ds = run_passes (m, "canonicalize,dce", NULL);
  g_assert_nonnull (find_decision (ds, FB_DECISION_REWRITTEN, "sink-transpose"));
  g_assert_cmpint (m->entry->root->opcode, ==, FB_OP_MULTIPLY);
  g_assert_cmpint (m->entry->root->operands[0]->opcode, ==, FB_OP_TRANSPOSE);
  g_assert_cmpint (m->entry->root->operands[1]->opcode, ==, FB_OP_BROADCAST);
  FbArena *arena = fb_arena_new ();
  assert_close (run_seeded (m, arena), run_seeded (orig, arena));
  fb_arena_free (arena);
  fb_module_free (m);
  fb_module_free (orig);
}

int
main (int argc, char **argv)
{
  static const char *golden[] = {
    "add-zero", "mul-one", "mul-zero", "double-negation", "reshape-transpose", "convert", "noop-movement",
    "broadcast-select",
  };
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (golden); i++)
    {
      g_autofree char *path = g_strdup_printf ("/passes/simplify/golden/%s", golden[i]);
      g_test_add_data_func (path, golden[i], test_golden);
    }
  g_test_add_func ("/passes/simplify/rules-recorded", test_simplify_rules_recorded);
  g_test_add_func ("/passes/simplify/float-times-zero-kept", test_simplify_float_times_zero_kept);
  g_test_add_func ("/passes/simplify/conv-pad", test_conv_pad_folded);
  g_test_add_func ("/passes/cse/merges-duplicates", test_cse_merges);
  g_test_add_func ("/passes/cse/refuses-rng", test_cse_refuses_rng);
  g_test_add_func ("/passes/dce/keeps-side-effects", test_dce_keeps_side_effects);
  g_test_add_func ("/passes/fold-constants/folds", test_fold_constants);
  g_test_add_func ("/passes/fold-constants/refuses-big", test_fold_refuses_big);
  g_test_add_func ("/passes/fold-constants/never-rng", test_fold_never_rng);
  g_test_add_func ("/passes/canonicalize/dot-form", test_canonical_dot);
  g_test_add_func ("/passes/canonicalize/matmul-untouched", test_canonical_matmul_untouched);
  g_test_add_func ("/passes/canonicalize/dot-without-transpose", test_canonical_dot_no_transpose);
  g_test_add_func ("/passes/canonicalize/sink-transpose", test_sink_transpose);
  return g_test_run ();
}
