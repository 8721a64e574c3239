/* SPDX-License-Identifier: MIT
 *
 * Tests of the fusion passes: for each pass, hand-written HLO goes in and
 * the test checks what a user of the workbench would see: how many fusions
 * and kernels there are, of which kind, which instructions ended up inside,
 * and the decisions with their numbers. Every case also checks that the
 * result verifies, prints and parses back to the same module, and computes
 * the same values as the input in the reference interpreter.
 */
#include <math.h>
#include <string.h>

#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-pass.h"
#include "fb-verify.h"
#include "fb-zoo.h"
#include "passes/fb-fusion-private.h"

/* ----------------------------------------------------------- utilities */

static FbModule *
load (const char *name)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", "fusion", name, NULL);
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse_file (path, 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  return m;
}

static FbPassContext *
run_passes (FbModule *m, FbPassContext *ctx, const char *const *names)
{
  if (ctx == NULL)
    ctx = fb_pass_context_new ();
  for (int i = 0; names[i]; i++)
    {
      const FbPass *pass = fb_pass_lookup (names[i]);
      g_assert_nonnull (pass);
      ctx->pass_name = pass->name;
      gboolean changed = FALSE;
      g_autoptr (GError) error = NULL;
      g_assert_true (pass->run (m, ctx, &changed, &error));
      g_assert_no_error (error);
      fb_verify (m, &error);
      g_assert_no_error (error);
    }
  return ctx;
}

/* Deterministic, varied arguments for every entry parameter. */
static FbLiteral **
make_args (FbModule *m, FbArena *arena)
{
  FbComputation *e = m->entry;
  FbLiteral **args = fb_arena_new0 (arena, FbLiteral *, MAX (e->n_params, 1));
  for (int p = 0; p < e->n_params; p++)
    {
      args[p] = fb_literal_new (arena, e->params[p]->shape);
      if (fb_zoo_is_zoo_module (m) && fb_zoo_fill_parameter (m, p, 1, args[p], NULL))
        continue;
      int64_t n = fb_shape_elements (args[p]->shape);
      for (int64_t i = 0; i < n; i++)
        fb_literal_set_f64 (args[p], i, sin ((double) (i * 7 + p * 13 + 1)) * 1.5);
    }
  return args;
}

static double
tolerance (FbElemType t)
{
  switch (t)
    {
    case FB_F64: return 1e-12;
    case FB_F32: return 1e-5;
    case FB_F16: case FB_BF16: return 1e-2;
    default: return fb_elem_type_is_float (t) ? 0.1 : 0;
    }
}

static void
assert_literals_close (const FbLiteral *a, const FbLiteral *b)
{
  g_assert_true (fb_shape_compatible (a->shape, b->shape));
  if (a->shape->type == FB_TUPLE)
    {
      g_assert_cmpint (a->n_elems, ==, b->n_elems);
      for (int i = 0; i < a->n_elems; i++)
        assert_literals_close (a->elems[i], b->elems[i]);
      return;
    }
  double tol = tolerance (a->shape->type);
  int64_t n = fb_shape_elements (a->shape);
  for (int64_t i = 0; i < n; i++)
    {
      double x = fb_literal_get_f64 (a, i), y = fb_literal_get_f64 (b, i);
      if (isnan (x) && isnan (y))
        continue;
      g_assert_cmpfloat (fabs (x - y), <=, tol * MAX (1.0, fabs (x)));
    }
}

/* The interpreter gives the same results before and after. */
static void
assert_same_results (FbModule *before, FbModule *after)
{
  FbArena *arena = fb_arena_new ();
  g_autoptr (GError) error = NULL;
  FbLiteral **args = make_args (before, arena);
  FbLiteral *a = fb_interp_run (before, before->entry, arena, before->entry->n_params, args, NULL, &error);
  g_assert_no_error (error);
  FbLiteral *b = fb_interp_run (after, after->entry, arena, after->entry->n_params, args, NULL, &error);
  g_assert_no_error (error);
  assert_literals_close (a, b);
  fb_arena_free (arena);
}

/* Every fused computation left in the module is called by a fusion:
 * the ones a pass replaced are gone from the list once it ends. */
static void
assert_no_orphan_computations (FbModule *m)
{
  g_autoptr (GHashTable) called = g_hash_table_new (NULL, NULL);
  for (int c = 0; c < m->n_comps; c++)
    for (FbInstr *i = m->comps[c]->first; i; i = i->next)
      if (i->opcode == FB_OP_FUSION && fb_instr_comp (i, FB_A_CALLS) != NULL)
        g_hash_table_add (called, fb_instr_comp (i, FB_A_CALLS));
  for (int c = 0; c < m->n_comps; c++)
    if (m->comps[c]->is_fusion && !g_hash_table_contains (called, m->comps[c]))
      g_error ("fused computation %s is called by no fusion", m->comps[c]->name);
}

/* Verifies, prints, parses back and compares. */
static void
assert_round_trip (FbModule *m)
{
  assert_no_orphan_computations (m);
  g_autoptr (GError) error = NULL;
  fb_verify (m, &error);
  g_assert_no_error (error);
  g_autofree char *text = fb_hlo_to_string (m, FB_PRINT_LONG);
  FbModule *back = fb_hlo_parse (text, strlen (text), "after.hlo", 0, &error);
  g_assert_no_error (error);
  g_autoptr (GString) why = g_string_new (NULL);
  if (!fb_module_equal (m, back, why))
    g_error ("round trip differs: %s\n%s", why->str, text);
  fb_module_free (back);
}

static int
count_fusions (FbModule *m, const char *kind)
{
  int n = 0;
  for (FbInstr *i = m->entry->first; i; i = i->next)
    if (i->opcode == FB_OP_FUSION && (kind == NULL || g_strcmp0 (fb_instr_str (i, FB_A_KIND), kind) == 0))
      n++;
  return n;
}

static FbInstr *
find (FbComputation *c, const char *name)
{
  for (FbInstr *i = c->first; i; i = i->next)
    if (strcmp (i->name, name) == 0)
      return i;
  return NULL;
}

/* The fusion instruction of the entry whose fused computation holds @name. */
static FbInstr *
fusion_holding (FbModule *m, const char *name)
{
  for (FbInstr *i = m->entry->first; i; i = i->next)
    if (i->opcode == FB_OP_FUSION && find (fb_instr_comp (i, FB_A_CALLS), name))
      return i;
  return NULL;
}

static gboolean
has_prov (const FbInstr *i, int64_t id)
{
  for (int k = 0; k < i->n_prov; k++)
    if (i->prov[k] == id)
      return TRUE;
  return FALSE;
}

static const FbDecision *
decision (FbPassContext *ctx, FbDecisionKind kind, const char *needle)
{
  for (guint i = 0; i < ctx->decisions->len; i++)
    {
      const FbDecision *d = g_ptr_array_index (ctx->decisions, i);
      if (d->kind == kind && strstr (d->message, needle))
        return d;
    }
  return NULL;
}

static void
assert_decision (FbPassContext *ctx, FbDecisionKind kind, const char *needle)
{
  if (decision (ctx, kind, needle) == NULL)
    {
      g_autoptr (GString) all = g_string_new (NULL);
      for (guint i = 0; i < ctx->decisions->len; i++)
        {
          const FbDecision *d = g_ptr_array_index (ctx->decisions, i);
          g_string_append_printf (all, "  %s [%s] %s\n", fb_decision_kind_name (d->kind), d->rule, d->message);
        }
      g_error ("no %s decision with '%s'; decisions:\n%s", fb_decision_kind_name (kind), needle, all->str);
    }
}

/* --------------------------------------------------------------- loops */

static void
test_loops_chain (void)
{
  FbModule *m = load ("loops.hlo");
  FbModule *before = fb_module_clone (m);
  g_assert_cmpint (fb_module_kernel_count (m), ==, 7);
  int64_t id_m = find (m->entry, "m")->id, id_t = find (m->entry, "t")->id;
  static const char *const passes[] = { "fuse-loops", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);

  g_assert_cmpint (count_fusions (m, "kLoop"), ==, 1);
  g_assert_cmpint (fb_module_kernel_count (m), ==, 1);
  FbInstr *f = m->entry->root;
  g_assert_cmpint (f->opcode, ==, FB_OP_FUSION);
  FbComputation *fc = fb_instr_comp (f, FB_A_CALLS);
  g_assert_true (fc->is_fusion);
  g_assert_true (g_str_has_prefix (fc->name, "fused_computation"));
  /* Everything but the parameters went in, the constant as a scalar. */
  static const char *const inside[] = { "c", "bc", "m", "a", "t", "r", "s", "cv", "n" };
  for (gsize k = 0; k < G_N_ELEMENTS (inside); k++)
    g_assert_nonnull (find (fc, inside[k]));
  g_assert_cmpstr (fc->root->name, ==, "n");
  g_assert_cmpint (f->n_operands, ==, 2);
  g_assert_cmpint (fc->n_params, ==, 2);
  g_assert_true (has_prov (f, id_m) && has_prov (f, id_t));
  g_assert_true (has_prov (find (fc, "m"), id_m));
  assert_decision (ctx, FB_DECISION_FUSED, "fused %t into");
  assert_decision (ctx, FB_DECISION_FUSED, "fused %c into");

  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static void
test_loops_many_users (void)
{
  FbModule *m = load ("many-users.hlo");
  FbModule *before = fb_module_clone (m);
  FbPassContext *ctx = fb_pass_context_new ();
  ctx->max_recompute_bytes = 64 * 1024;
  static const char *const passes[] = { "fuse-loops", NULL };
  run_passes (m, ctx, passes);

  /* exp has 3 users: computing it 3 times costs too much, so it stays. */
  assert_decision (ctx, FB_DECISION_REFUSED, "did not fuse %e into");
  assert_decision (ctx, FB_DECISION_REFUSED,
                   "the producer has 3 users and would be computed 3 times, 16.0 KiB each "
                   "(exponential counts 8 times: 256.0 KiB of extra work, over the 64.0 KiB limit)");
  const FbDecision *d = decision (ctx, FB_DECISION_REFUSED, "did not fuse %e into");
  g_assert_cmpstr (d->rule, ==, "producer-has-many-users");
  g_assert_cmpint (d->n_ids, >=, 2);
  g_assert_nonnull (find (m->entry, "e"));
  /* negate is cheap: it is computed again in both of its users' kernels. */
  assert_decision (ctx, FB_DECISION_FUSED, "fused %ng into");
  g_assert_null (find (m->entry, "ng"));
  g_assert_nonnull (fusion_holding (m, "ng"));
  g_assert_cmpint (count_fusions (m, "kLoop"), ==, 2);
  /* e, its three users (none fused with it) and the two users of ng. */
  g_assert_cmpint (fb_module_kernel_count (m), ==, 6);

  assert_round_trip (m);
  assert_same_results (before, m);

  /* Under the default 16 MiB limit the 256 KiB of extra work is fine: exp
   * is cloned into each of its users' kernels. */
  FbModule *m2 = load ("many-users.hlo");
  FbPassContext *ctx2 = run_passes (m2, NULL, passes);
  assert_decision (ctx2, FB_DECISION_FUSED, "computed 3 times");
  g_assert_null (find (m2->entry, "e"));
  g_assert_cmpint (fb_module_kernel_count (m2), ==, 5);
  assert_round_trip (m2);
  assert_same_results (before, m2);

  fb_pass_context_free (ctx2);
  fb_module_free (m2);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static gboolean
ids_hold (const FbDecision *d, int64_t id)
{
  for (int k = 0; k < d->n_ids; k++)
    if (d->ids[k] == id)
      return TRUE;
  return FALSE;
}

static gboolean
array_holds (GArray *a, int64_t id)
{
  for (guint k = 0; k < a->len; k++)
    if (g_array_index (a, int64_t, k) == id)
      return TRUE;
  return FALSE;
}

static void
test_loops_provenance (void)
{
  /* cb is copied into the kernels of a and b and stays for the root, where
   * it becomes a kernel of its own: only that kernel stands for it, and the
   * decisions that copied it name it. */
  FbModule *m = load ("shared-producer.hlo");
  FbModule *before = fb_module_clone (m);
  int64_t id_cb = find (m->entry, "cb")->id, id_a = find (m->entry, "a")->id;
  static const char *const passes[] = { "fuse-loops", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);
  g_assert_cmpint (count_fusions (m, "kLoop"), ==, 3);
  FbInstr *ka = fusion_holding (m, "a"), *kb = fusion_holding (m, "b");
  g_assert_nonnull (ka);
  g_assert_nonnull (kb);
  g_assert_true (has_prov (ka, id_a));
  g_assert_false (has_prov (ka, id_cb) || has_prov (kb, id_cb));
  FbInstr *kcb = m->entry->root->operands[2];
  g_assert_cmpint (kcb->opcode, ==, FB_OP_FUSION);
  g_assert_true (has_prov (kcb, id_cb));
  const FbDecision *d = decision (ctx, FB_DECISION_FUSED, "fused %cb into");
  g_assert_nonnull (d);
  g_assert_cmpstr (d->rule, ==, "duplicated-producer");
  g_assert_true (ids_hold (d, id_cb));
  FbDiff *diff = fb_diff_modules (before, m);
  g_assert_true (array_holds (diff->fused, id_cb) && array_holds (diff->fused, id_a));
  g_assert_false (array_holds (diff->removed, id_cb));
  fb_diff_free (diff);
  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (m);

  /* e is computed again in each of its three users' kernels and then gone:
   * exactly one kernel, the one that took its last use, stands for it, and
   * the diff says it was fused. */
  m = load ("many-users.hlo");
  fb_module_free (before);
  before = fb_module_clone (m);
  int64_t id_e = find (m->entry, "e")->id;
  ctx = run_passes (m, NULL, passes);
  g_assert_null (find (m->entry, "e"));
  int holders = 0;
  for (FbInstr *i = m->entry->first; i; i = i->next)
    holders += i->opcode == FB_OP_FUSION && has_prov (i, id_e);
  g_assert_cmpint (holders, ==, 1);
  diff = fb_diff_modules (before, m);
  g_assert_true (array_holds (diff->fused, id_e));
  g_assert_false (array_holds (diff->removed, id_e));
  fb_diff_free (diff);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static void
test_reductions_cycle (void)
{
  /* e feeds r's kernel twice: directly through s, and through three dots
   * that stay outside. Computing e twice costs too much under a 64 KiB
   * limit, and reading it from r's kernel as an extra output would make
   * the dots read a result of the kernel they feed: refused, naming an
   * instruction on that way back. e2 has another user, n2, that does not
   * lead back: it becomes an extra output of r2's kernel. */
  FbModule *m = load ("cycle.hlo");
  FbModule *before = fb_module_clone (m);
  FbPassContext *ctx = fb_pass_context_new ();
  ctx->max_recompute_bytes = 64 * 1024;
  static const char *const passes[] = { "fuse-reductions", NULL };
  run_passes (m, ctx, passes);
  const FbDecision *d = decision (ctx, FB_DECISION_REFUSED, "did not fuse %e into");
  g_assert_nonnull (d);
  g_assert_cmpstr (d->rule, ==, "would-create-cycle");
  g_assert_true (strstr (d->message, "would create a cycle through %d1") != NULL
                 || strstr (d->message, "would create a cycle through %d2") != NULL
                 || strstr (d->message, "would create a cycle through %d3") != NULL);
  g_assert_nonnull (find (m->entry, "e"));
  g_assert_null (fusion_holding (m, "e"));
  assert_decision (ctx, FB_DECISION_FUSED, "fused %e2 into");
  g_assert_nonnull (fusion_holding (m, "e2"));
  g_assert_null (find (m->entry, "e2"));
  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static void
test_loops_wide_root (void)
{
  /* A root tuple of 48 results, two of them the same value, each made by
   * a chain that fuse-loops turns into a kernel: every kernel takes its
   * chain's place in the tuple, whichever slot it fills. */
  enum { N = 48 };
  g_autoptr (GString) text = g_string_new ("HloModule wide\n\nENTRY main {\n");
  g_string_append (text, "  x = f32[8,8]{1,0} parameter(0)\n");
  for (int k = 0; k < N; k++)
    {
      g_string_append_printf (text, "  c%d = f32[] constant(%d)\n", k, k + 1);
      g_string_append_printf (text, "  b%d = f32[8,8]{1,0} broadcast(c%d), dimensions={}\n", k, k);
      g_string_append_printf (text, "  a%d = f32[8,8]{1,0} add(x, b%d)\n", k, k);
      g_string_append_printf (text, "  n%d = f32[8,8]{1,0} negate(a%d)\n", k, k);
    }
  g_string_append (text, "  ROOT t = (");
  for (int k = 0; k <= N; k++)
    g_string_append_printf (text, "%sf32[8,8]{1,0}", k ? ", " : "");
  g_string_append (text, ") tuple(");
  for (int k = 0; k <= N; k++)
    g_string_append_printf (text, "%sn%d", k ? ", " : "", k < N ? k : 7);
  g_string_append (text, ")\n}\n");
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text->str, text->len, "wide.hlo", 0, &error);
  g_assert_no_error (error);
  FbModule *before = fb_module_clone (m);
  static const char *const passes[] = { "fuse-loops", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);
  FbInstr *root = m->entry->root;
  g_assert_cmpint (root->n_operands, ==, N + 1);
  for (int k = 0; k <= N; k++)
    {
      FbInstr *o = root->operands[k];
      g_autofree char *want = g_strdup_printf ("n%d", k < N ? k : 7);
      g_assert_cmpint (o->opcode, ==, FB_OP_FUSION);
      g_assert_true (find (fb_instr_comp (o, FB_A_CALLS), want) != NULL);
      gboolean listed = FALSE;
      for (int u = 0; u < o->n_users; u++)
        listed |= o->users[u] == root;
      g_assert_true (listed);
    }
  g_assert_true (root->operands[7] == root->operands[N]);
  g_assert_cmpint (count_fusions (m, "kLoop"), ==, N);
  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static void
test_loops_copy_reads (void)
{
  /* h = x * 0.5 costs a copy one read of x, which it saves: it is computed
   * again in both users. a = y + z would make each copy read y and z to
   * save one read of a: it stays a kernel and its users read it. */
  FbModule *m = load ("copy-reads.hlo");
  FbModule *before = fb_module_clone (m);
  static const char *const passes[] = { "fuse-loops", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);
  assert_decision (ctx, FB_DECISION_FUSED, "fused %h into");
  g_assert_null (find (m->entry, "h"));
  assert_decision (ctx, FB_DECISION_REFUSED,
                   "the producer has 2 users; a copy in %u1 would read 32.0 KiB of operands it does not "
                   "read yet, to save reading 16.0 KiB");
  FbInstr *a = find (m->entry, "a");
  g_assert_nonnull (a);
  g_assert_cmpint (a->n_users, ==, 2);
  /* a, and the three users with h inside two of them. */
  g_assert_cmpint (fb_module_kernel_count (m), ==, 4);
  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static void
test_loops_limits (void)
{
  FbModule *m = load ("loops.hlo");
  FbModule *before = fb_module_clone (m);
  FbPassContext *ctx = fb_pass_context_new ();
  ctx->max_fusion_instructions = 4;
  static const char *const passes[] = { "fuse-loops", NULL };
  run_passes (m, ctx, passes);
  assert_decision (ctx, FB_DECISION_REFUSED, "over the limit of 4");
  g_assert_cmpint (fb_module_kernel_count (m), >, 1);
  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

/* ---------------------------------------------------------- reductions */

static void
test_reductions_softmax (void)
{
  FbModule *m = load ("softmax.hlo");
  FbModule *before = fb_module_clone (m);
  g_assert_cmpint (fb_module_kernel_count (m), ==, 7);
  static const char *const reductions[] = { "fuse-reductions", NULL };
  FbPassContext *ctx = run_passes (m, NULL, reductions);

  /* max row, sum row (with x - max and exp computed on the fly), and the
   * division left as it was. */
  g_assert_cmpint (count_fusions (m, "kInput"), ==, 2);
  FbInstr *sum = fusion_holding (m, "sm");
  g_assert_nonnull (sum);
  FbComputation *sc = fb_instr_comp (sum, FB_A_CALLS);
  g_assert_nonnull (find (sc, "ex"));
  g_assert_nonnull (find (sc, "sh"));
  g_assert_nonnull (find (sc, "bmx"));
  g_assert_cmpstr (fb_instr_str (fusion_holding (m, "mx"), FB_A_KIND), ==, "kInput");
  g_assert_true (fusion_holding (m, "mx") != sum);
  assert_decision (ctx, FB_DECISION_FUSED, "fused %ex into %sm");
  assert_decision (ctx, FB_DECISION_REFUSED, "is a kInput fusion");
  assert_same_results (before, m);
  fb_pass_context_free (ctx);

  /* fuse-loops makes the division a loop kernel, which then takes in both
   * row reductions: one kernel reads x once. */
  static const char *const loops[] = { "fuse-loops", NULL };
  ctx = run_passes (m, NULL, loops);
  g_assert_cmpint (fb_module_kernel_count (m), ==, 1);
  g_assert_cmpint (count_fusions (m, "kInput"), ==, 1);
  g_assert_cmpint (count_fusions (m, "kLoop"), ==, 0);
  FbInstr *all = m->entry->root;
  g_assert_cmpint (all->opcode, ==, FB_OP_FUSION);
  FbComputation *ac = fb_instr_comp (all, FB_A_CALLS);
  static const char *const inside[] = { "mx", "sm", "ex", "bsm", "out" };
  for (gsize k = 0; k < G_N_ELEMENTS (inside); k++)
    g_assert_nonnull (find (ac, inside[k]));
  g_assert_cmpint (all->n_operands, ==, 1);
  assert_decision (ctx, FB_DECISION_FUSED, "fused the row reductions");
  assert_decision (ctx, FB_DECISION_FUSED, "each row of f32[4,16]");

  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static void
test_reductions_layernorm (void)
{
  FbModule *m = load ("layernorm.hlo");
  FbModule *before = fb_module_clone (m);
  static const char *const reductions[] = { "fuse-reductions", NULL };
  FbPassContext *ctx = run_passes (m, NULL, reductions);

  /* mean, and variance (of x - mean, on the fly). */
  g_assert_cmpint (count_fusions (m, "kInput"), ==, 2);
  FbComputation *var = fb_instr_comp (fusion_holding (m, "ss"), FB_A_CALLS);
  g_assert_nonnull (find (var, "sq"));
  g_assert_nonnull (find (var, "xc"));
  assert_decision (ctx, FB_DECISION_FUSED, "fused %sq into %ss");
  fb_pass_context_free (ctx);

  /* Then the normalisation takes both statistics in: one kernel. */
  static const char *const loops[] = { "fuse-loops", NULL };
  ctx = run_passes (m, NULL, loops);
  g_assert_cmpint (fb_module_kernel_count (m), ==, 1);
  g_assert_cmpint (count_fusions (m, "kInput"), ==, 1);
  FbComputation *norm = fb_instr_comp (fusion_holding (m, "y"), FB_A_CALLS);
  static const char *const inside[] = { "s", "ss", "rs", "var", "nrm", "bg" };
  for (gsize k = 0; k < G_N_ELEMENTS (inside); k++)
    g_assert_nonnull (find (norm, inside[k]));
  assert_decision (ctx, FB_DECISION_FUSED, "fused the row reductions");

  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static void
test_reductions_rows_other_way (void)
{
  /* The consumer reads the row maximum along its columns: taking the
   * reduction in would compute it again for every element. */
  FbModule *m = load ("rows-other-way.hlo");
  FbModule *before = fb_module_clone (m);
  static const char *const passes[] = { "fuse-reductions", "fuse-loops", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);
  g_assert_cmpint (fb_module_kernel_count (m), ==, 2);
  g_assert_cmpint (count_fusions (m, "kInput"), ==, 1);
  g_assert_cmpint (count_fusions (m, "kLoop"), ==, 1);
  assert_decision (ctx, FB_DECISION_REFUSED, "other than along its rows");
  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static void
test_reductions_extra_output (void)
{
  /* With no room to compute exp twice, it becomes a second output of the
   * sum kernel and the division reads it from there. */
  FbModule *m = load ("softmax.hlo");
  FbModule *before = fb_module_clone (m);
  FbPassContext *ctx = fb_pass_context_new ();
  ctx->max_recompute_bytes = 0;
  static const char *const reductions[] = { "fuse-reductions", NULL };
  run_passes (m, ctx, reductions);
  assert_decision (ctx, FB_DECISION_FUSED, "fused %ex into %sm as an extra output");
  FbInstr *sum = fusion_holding (m, "sm");
  g_assert_cmpint (sum->shape->type, ==, FB_TUPLE);
  assert_round_trip (m);
  assert_same_results (before, m);
  /* The division reads both outputs along its rows: all of it becomes
   * one kernel, and exp(x - max) is no longer written out. */
  static const char *const loops[] = { "fuse-loops", NULL };
  run_passes (m, ctx, loops);
  g_assert_cmpint (fb_module_kernel_count (m), ==, 1);
  g_assert_cmpint (m->entry->root->shape->type, ==, FB_F32);
  assert_decision (ctx, FB_DECISION_FUSED, "fused the row reductions");
  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

/* ----------------------------------------------------------- epilogues */

static void
test_epilogues_relu (void)
{
  FbModule *m = load ("epilogue.hlo");
  FbModule *before = fb_module_clone (m);
  int64_t id_d = find (m->entry, "d")->id, id_r = find (m->entry, "r")->id;
  static const char *const passes[] = { "fuse-epilogues", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);

  FbInstr *f = fusion_holding (m, "d");
  g_assert_nonnull (f);
  g_assert_cmpstr (fb_instr_str (f, FB_A_KIND), ==, "kOutput");
  FbComputation *fc = fb_instr_comp (f, FB_A_CALLS);
  /* relu (maximum with 0) is the root; the bias add feeds it; the dot feeds that. */
  g_assert_cmpstr (fc->root->name, ==, "r");
  g_assert_cmpint (fc->root->opcode, ==, FB_OP_MAXIMUM);
  g_assert_cmpstr (fc->root->operands[0]->name, ==, "a");
  g_assert_cmpint (fc->root->operands[0]->operands[0]->opcode, ==, FB_OP_DOT);
  g_assert_nonnull (find (fc, "bb"));
  g_assert_true (has_prov (f, id_d) && has_prov (f, id_r));
  assert_decision (ctx, FB_DECISION_FUSED, "fused the epilogue %a and %r of %d");
  /* The second dot is followed by a reduction: not an epilogue. */
  assert_decision (ctx, FB_DECISION_REFUSED, "did not fuse %rd into the epilogue of %d2: reduce is not elementwise");
  g_assert_cmpint (count_fusions (m, "kOutput"), ==, 1);
  g_assert_cmpint (fb_module_kernel_count (m), ==, 3);

  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static void
test_epilogues_gelu (void)
{
  FbModule *m = load ("gelu.hlo");
  FbModule *before = fb_module_clone (m);
  static const char *const passes[] = { "fuse-epilogues", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);
  g_assert_cmpint (fb_module_kernel_count (m), ==, 1);
  FbInstr *f = m->entry->root;
  g_assert_cmpstr (fb_instr_str (f, FB_A_KIND), ==, "kOutput");
  FbComputation *fc = fb_instr_comp (f, FB_A_CALLS);
  g_assert_cmpstr (fc->root->name, ==, "g");
  g_assert_nonnull (find (fc, "th"));
  g_assert_nonnull (find (fc, "d"));
  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

/* ------------------------------------------------------------ siblings */

static void
test_siblings (void)
{
  FbModule *m = load ("siblings.hlo");
  FbModule *before = fb_module_clone (m);
  static const char *const passes[] = { "fuse-reductions", "fuse-loops", "fuse-siblings", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);

  /* The two reductions of x are one kernel with two outputs: x is read once. */
  FbInstr *x = find (m->entry, "x");
  g_assert_cmpint (x->n_users, ==, 1);
  FbInstr *f = x->users[0];
  g_assert_cmpint (f->opcode, ==, FB_OP_FUSION);
  g_assert_cmpint (f->shape->type, ==, FB_TUPLE);
  g_assert_cmpint (f->shape->n_elems, ==, 2);
  FbComputation *fc = fb_instr_comp (f, FB_A_CALLS);
  g_assert_nonnull (find (fc, "s1"));
  g_assert_nonnull (find (fc, "s2"));
  g_assert_nonnull (find (fc, "sq"));
  g_assert_cmpint (fc->root->opcode, ==, FB_OP_TUPLE);
  g_assert_cmpstr (fb_instr_str (f, FB_A_KIND), ==, "kInput");
  for (int u = 0; u < f->n_users; u++)
    g_assert_cmpint (f->users[u]->opcode, ==, FB_OP_GET_TUPLE_ELEMENT);
  assert_decision (ctx, FB_DECISION_FUSED, "%x is read once instead of 2 times");
  /* y's two readers depend on each other (the add needs the row sum), so
   * they are no siblings; the add takes the row sum in instead. */
  assert_decision (ctx, FB_DECISION_FUSED, "fused the row reductions");
  g_assert_cmpint (find (m->entry, "y")->n_users, ==, 1);
  g_assert_cmpint (fb_module_kernel_count (m), ==, 2);

  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

/* The first member of a group that a candidate depends on, or that
 * depends on it, asked of plain walks both ways, member by member. */
static int
related_by_walks (GPtrArray *group, FbInstr *s, gboolean *s_depends)
{
  for (guint g = 0; g < group->len; g++)
    {
      FbInstr *o = g_ptr_array_index (group, g);
      if (_fb_fusion_reaches (o, s))
        {
          *s_depends = TRUE;
          return g;
        }
      if (_fb_fusion_reaches (s, o))
        {
          *s_depends = FALSE;
          return g;
        }
    }
  return -1;
}

/* In a training step the readers of one tensor sit in the forward and in
 * the backward pass. The hubs certify only dependences that are there,
 * and certify some; the groups answer as the plain walks do, with the
 * hubs and without. */
static void
test_siblings_related (void)
{
  g_autoptr (FbZooOptions) o = fb_zoo_options_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (fb_zoo_options_set (o, "layers", "2", &error));
  g_assert_true (fb_zoo_options_set (o, "optimizer", "adam", &error));
  FbModule *m = fb_zoo_generate ("transformer", o, &error);
  g_assert_no_error (error);
  FbComputation *c = m->entry;
  _fb_fusion_pass_begin (m);
  _fb_fusion_ensure_numbered (c);
  g_assert_true (_fb_fusion_positions_topological (c));
  g_autoptr (FbFusionHubs) hubs = _fb_fusion_hubs_new (c);
  _fb_fusion_hubs_build (hubs);
  int certified = 0, asked = 0, related = 0;
  for (FbInstr *x = c->first; x; x = x->next)
    {
      g_autoptr (GPtrArray) readers = g_ptr_array_new ();
      for (int u = 0; u < x->n_users; u++)
        if (x->users[u]->parent == c)
          g_ptr_array_add (readers, x->users[u]);
      if (readers->len < 2)
        continue;
      for (guint k = 1; k < readers->len; k++)
        for (int way = 0; way < 2; way++)
          {
            FbInstr *a = g_ptr_array_index (readers, way ? k : 0);
            FbInstr *b = g_ptr_array_index (readers, way ? 0 : k);
            if (a != b && _fb_fusion_hubs_lead (hubs, a, b))
              {
                g_assert_true (_fb_fusion_reaches (a, b));
                certified++;
              }
          }
      for (int with_hubs = 0; with_hubs < 2; with_hubs++)
        {
          g_autoptr (FbFusionRelated) rel = _fb_fusion_related_new (c, (FbInstr *const *) readers->pdata, readers->len);
          if (with_hubs)
            _fb_fusion_related_use_hubs (rel, hubs);
          g_autoptr (GPtrArray) group = g_ptr_array_new ();
          g_ptr_array_add (group, g_ptr_array_index (readers, 0));
          _fb_fusion_related_add (rel, g_ptr_array_index (readers, 0));
          for (guint k = 1; k < readers->len; k++)
            {
              FbInstr *s = g_ptr_array_index (readers, k);
              gboolean want_depends = FALSE, got_depends = FALSE;
              int want = related_by_walks (group, s, &want_depends);
              int got = _fb_fusion_related_first (rel, s, &got_depends);
              g_assert_cmpint (got, ==, want);
              if (want >= 0)
                {
                  g_assert_cmpint (got_depends, ==, want_depends);
                  related++;
                }
              else
                {
                  g_ptr_array_add (group, s);
                  _fb_fusion_related_add (rel, s);
                }
              asked++;
            }
        }
    }
  g_assert_cmpint (certified, >, 0);
  g_assert_cmpint (related, >, 0);
  g_assert_cmpint (related, <, asked);
  _fb_fusion_pass_end ();
  fb_module_free (m);
}

/* ---------------------------------------------------------- horizontal */

static void
test_horizontal_updates (void)
{
  FbModule *m = load ("horizontal.hlo");
  FbModule *before = fb_module_clone (m);
  static const char *const passes[] = { "fuse-loops", "fuse-horizontal", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);

  g_assert_cmpint (fb_module_kernel_count (m), ==, 1);
  g_assert_cmpint (count_fusions (m, "kLoop"), ==, 1);
  FbInstr *f = fusion_holding (m, "n0");
  g_assert_nonnull (f);
  g_assert_true (f == fusion_holding (m, "n1") && f == fusion_holding (m, "n2"));
  g_assert_cmpint (f->shape->type, ==, FB_TUPLE);
  g_assert_cmpint (f->shape->n_elems, ==, 3);
  assert_decision (ctx, FB_DECISION_FUSED, "merged 3 independent kernels producing results");
  assert_round_trip (m);
  assert_same_results (before, m);

  /* An operand limit splits the group, and says so. */
  FbModule *m2 = load ("horizontal.hlo");
  FbPassContext *ctx2 = fb_pass_context_new ();
  ctx2->max_fusion_operands = 4;
  run_passes (m2, ctx2, passes);
  assert_decision (ctx2, FB_DECISION_REFUSED, "the kernel would read 6 operands, over the limit of 4");
  g_assert_cmpint (fb_module_kernel_count (m2), ==, 2);
  assert_round_trip (m2);
  assert_same_results (before, m2);

  fb_pass_context_free (ctx2);
  fb_module_free (m2);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

static void
test_horizontal_zoo_mlp (void)
{
  g_autoptr (FbZooOptions) o = fb_zoo_options_new ();
  g_autoptr (GError) error = NULL;
  static const char *const opts[] = { "layers", "6,8,3", "batch", "4", "optimizer", "sgd", NULL };
  for (int i = 0; opts[i]; i += 2)
    {
      fb_zoo_options_set (o, opts[i], opts[i + 1], &error);
      g_assert_no_error (error);
    }
  FbModule *m = fb_zoo_generate ("mlp", o, &error);
  g_assert_no_error (error);
  FbModule *before = fb_module_clone (m);
  int kernels_before = fb_module_kernel_count (m);
  static const char *const passes[] = { "fuse-epilogues", "fuse-reductions", "fuse-loops",
                                        "fuse-siblings", "fuse-horizontal", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);

  /* The four new weights (two kernels, two biases) leave one kernel. */
  FbInstr *root = m->entry->root;
  g_assert_cmpint (root->opcode, ==, FB_OP_TUPLE);
  g_assert_cmpint (root->n_operands, ==, 5);
  FbInstr *updates = NULL;
  for (int i = 1; i < root->n_operands; i++)
    {
      FbInstr *o = root->operands[i];
      g_assert_cmpint (o->opcode, ==, FB_OP_GET_TUPLE_ELEMENT);
      if (updates == NULL)
        updates = o->operands[0];
      g_assert_true (o->operands[0] == updates);
    }
  g_assert_cmpint (updates->opcode, ==, FB_OP_FUSION);
  g_assert_cmpstr (fb_instr_str (updates, FB_A_KIND), ==, "kLoop");
  /* (the loss, which also only leaves the step, may join them) */
  assert_decision (ctx, FB_DECISION_FUSED, "independent kernels producing results");
  g_assert_cmpint (updates->shape->n_elems, >=, 4);
  g_assert_nonnull (decision (ctx, FB_DECISION_FUSED, "kOutput"));
  g_assert_cmpint (fb_module_kernel_count (m), <, kernels_before);

  assert_round_trip (m);
  assert_same_results (before, m);
  fb_pass_context_free (ctx);
  fb_module_free (before);
  fb_module_free (m);
}

/* -------------------------------------------------------------- all */

static void
test_all_zoo_models (void)
{
  static const char *const cnn[] = { "image", "12", "channels", "2,4", "hidden", "16", "classes", "4",
                                     "batch", "4", NULL };
  static const char *const tr[] = { "layers", "1", "heads", "2", "dmodel", "16", "seq", "6", "vocab", "12",
                                    "batch", "2", "optimizer", "adam", NULL };
  static const char *const res[] = { "image", "4", "channels", "3", "classes", "3", "batch", "4",
                                     "optimizer", "momentum", NULL };
  static const struct { const char *model; const char *const *opts; } cases[] = {
    { "cnn", cnn }, { "transformer", tr }, { "resnet-block", res },
  };
  static const char *const passes[] = { "fuse-epilogues", "fuse-reductions", "fuse-loops",
                                        "fuse-siblings", "fuse-horizontal", NULL };
  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (FbZooOptions) o = fb_zoo_options_new ();
      g_autoptr (GError) error = NULL;
      for (int i = 0; cases[c].opts[i]; i += 2)
        {
          fb_zoo_options_set (o, cases[c].opts[i], cases[c].opts[i + 1], &error);
          g_assert_no_error (error);
        }
      FbModule *m = fb_zoo_generate (cases[c].model, o, &error);
      g_assert_no_error (error);
      FbModule *before = fb_module_clone (m);
      int kernels_before = fb_module_kernel_count (m);
      FbPassContext *ctx = run_passes (m, NULL, passes);
      g_assert_cmpint (fb_module_kernel_count (m), <, kernels_before / 2);
      g_assert_nonnull (decision (ctx, FB_DECISION_FUSED, "kInput"));
      assert_round_trip (m);
      assert_same_results (before, m);
      fb_pass_context_free (ctx);
      fb_module_free (before);
      fb_module_free (m);
    }
}

/* The refusals of one epilogue come in the order of the instructions, the
 * same on every run (they were once in the order of a pointer table). */
static void
test_epilogue_refusal_order (void)
{
  FbModule *m = load ("epilogue-refusals.hlo");
  static const char *const passes[] = { "fuse-epilogues", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);
  int seen = 0;
  for (guint i = 0; i < ctx->decisions->len; i++)
    {
      const FbDecision *d = g_ptr_array_index (ctx->decisions, i);
      if (d->kind != FB_DECISION_REFUSED || strcmp (d->rule, "not-an-epilogue") != 0)
        continue;
      g_autofree char *want = g_strdup_printf ("did not fuse %%u%d into the epilogue of %%d:", seen);
      if (!g_str_has_prefix (d->message, want))
        g_error ("refusal %d: '%s' does not start with '%s'", seen, d->message, want);
      seen++;
    }
  g_assert_cmpint (seen, ==, 10);
  fb_pass_context_free (ctx);
  fb_module_free (m);
}

static void
test_every_decision_names_instructions (void)
{
  FbModule *m = load ("layernorm.hlo");
  static const char *const passes[] = { "fuse-epilogues", "fuse-reductions", "fuse-loops",
                                        "fuse-siblings", "fuse-horizontal", NULL };
  FbPassContext *ctx = run_passes (m, NULL, passes);
  g_assert_cmpuint (ctx->decisions->len, >, 0);
  for (guint i = 0; i < ctx->decisions->len; i++)
    {
      const FbDecision *d = g_ptr_array_index (ctx->decisions, i);
      g_assert_nonnull (d->pass);
      g_assert_nonnull (d->rule);
      g_assert_cmpint (d->n_ids, >, 0);
      g_assert_nonnull (strchr (d->message, '%'));
    }
  fb_pass_context_free (ctx);
  fb_module_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/compiler/fusion/loops/chain", test_loops_chain);
  g_test_add_func ("/compiler/fusion/loops/many-users", test_loops_many_users);
  g_test_add_func ("/compiler/fusion/loops/limits", test_loops_limits);
  g_test_add_func ("/compiler/fusion/loops/copy-reads", test_loops_copy_reads);
  g_test_add_func ("/compiler/fusion/loops/provenance", test_loops_provenance);
  g_test_add_func ("/compiler/fusion/loops/wide-root", test_loops_wide_root);
  g_test_add_func ("/compiler/fusion/reductions/softmax", test_reductions_softmax);
  g_test_add_func ("/compiler/fusion/reductions/layer-norm", test_reductions_layernorm);
  g_test_add_func ("/compiler/fusion/reductions/extra-output", test_reductions_extra_output);
  g_test_add_func ("/compiler/fusion/reductions/rows-other-way", test_reductions_rows_other_way);
  g_test_add_func ("/compiler/fusion/reductions/cycle", test_reductions_cycle);
  g_test_add_func ("/compiler/fusion/epilogues/dot-bias-relu", test_epilogues_relu);
  g_test_add_func ("/compiler/fusion/epilogues/gelu", test_epilogues_gelu);
  g_test_add_func ("/compiler/fusion/siblings/read-once", test_siblings);
  g_test_add_func ("/compiler/fusion/siblings/related", test_siblings_related);
  g_test_add_func ("/compiler/fusion/horizontal/updates", test_horizontal_updates);
  g_test_add_func ("/compiler/fusion/horizontal/zoo-mlp-sgd", test_horizontal_zoo_mlp);
  g_test_add_func ("/compiler/fusion/all/zoo-models", test_all_zoo_models);
  g_test_add_func ("/compiler/fusion/decisions/name-instructions", test_every_decision_names_instructions);
  g_test_add_func ("/compiler/fusion/decisions/epilogue-refusal-order", test_epilogue_refusal_order);
  return g_test_run ();
}
