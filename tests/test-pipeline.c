/* SPDX-License-Identifier: MIT
 *
 * Tests of the pass pipeline: pipeline specs (`all`, `none`, lists,
 * `all,-cse`) and their errors, one snapshot per pass plus the input,
 * statistics that follow what the passes did, decisions recorded with the
 * instructions involved, the provenance diff (added, removed, changed,
 * fused) on hand-made modules, and disabled passes leaving the module as
 * it was.
 */
#include <string.h>

#include <glib.h>

#include "fb-hlo.h"
#include "fb-pass.h"

static const char *small_text =
  "HloModule small\n\n"
  "ENTRY main {\n"
  "  x = f32[4]{0} parameter(0)\n"
  "  y = f32[4]{0} parameter(1)\n"
  "  zero = f32[] constant(0)\n"
  "  zeros = f32[4]{0} broadcast(zero), dimensions={}\n"
  "  a = f32[4]{0} add(x, zeros)\n"
  "  m1 = f32[4]{0} multiply(a, y)\n"
  "  m2 = f32[4]{0} multiply(x, y)\n"
  "  unused = f32[4]{0} exponential(y)\n"
  "  ROOT s = f32[4]{0} subtract(m1, m2)\n"
  "}\n";

static FbModule *
parse (const char *text)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "test.hlo", 0, &error);
  g_assert_no_error (error);
  return m;
}

static gboolean
enabled (FbPipeline *p, const char *name)
{
  for (int i = 0; i < p->n; i++)
    if (strcmp (p->entries[i].pass->name, name) == 0)
      return p->entries[i].enabled;
  g_error ("no pass %s", name);
  return FALSE;
}

static int
n_enabled (FbPipeline *p)
{
  int n = 0;
  for (int i = 0; i < p->n; i++)
    n += p->entries[i].enabled;
  return n;
}

static void
test_spec_forms (void)
{
  FbPipeline *p = fb_pipeline_new_default ();
  g_autoptr (GError) error = NULL;
  g_assert_cmpint (n_enabled (p), ==, p->n);
  g_assert_true (fb_pipeline_set_spec (p, "none", &error));
  g_assert_cmpint (n_enabled (p), ==, 0);
  g_autofree char *none = fb_pipeline_dup_spec (p);
  g_assert_cmpstr (none, ==, "none");

  g_assert_true (fb_pipeline_set_spec (p, "dce, cse", &error));
  g_assert_cmpint (n_enabled (p), ==, 2);
  g_assert_true (enabled (p, "cse") && enabled (p, "dce") && !enabled (p, "simplify"));
  /* Passes run in the default order whatever order the spec names them. */
  g_autofree char *two = fb_pipeline_dup_spec (p);
  g_assert_cmpstr (two, ==, "cse,dce");

  g_assert_true (fb_pipeline_set_spec (p, "all,-cse", &error));
  g_assert_cmpint (n_enabled (p), ==, p->n - 1);
  g_assert_false (enabled (p, "cse"));
  g_autofree char *minus = fb_pipeline_dup_spec (p);
  g_assert_cmpstr (minus, ==, "all,-cse");

  g_assert_true (fb_pipeline_set_spec (p, "-simplify", &error));
  g_assert_cmpint (n_enabled (p), ==, p->n - 1);
  g_assert_false (enabled (p, "simplify"));

  /* A spec printed back parses to the same selection. */
  g_assert_true (fb_pipeline_set_spec (p, minus, &error));
  g_assert_false (enabled (p, "cse"));
  g_assert_true (fb_pipeline_set_spec (p, "all", &error));
  g_assert_cmpint (n_enabled (p), ==, p->n);
  g_assert_no_error (error);
  fb_pipeline_free (p);
}

static void
test_spec_errors (void)
{
  FbPipeline *p = fb_pipeline_new_default ();
  g_assert_true (fb_pipeline_set_spec (p, "cse", NULL));
  static const char *bad[] = { "bogus", "", "cse,,dce", "cse,all", "all,-none", "-all" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_false (fb_pipeline_set_spec (p, bad[i], &error));
      g_assert_error (error, FB_ERROR, FB_ERROR_USAGE);
    }
  g_autoptr (GError) error = NULL;
  g_assert_false (fb_pipeline_set_spec (p, "simplify,bogus", &error));
  g_assert_nonnull (strstr (error->message, "unknown pass 'bogus'"));
  /* The message lists the passes that do exist. */
  g_assert_nonnull (strstr (error->message, "simplify"));
  g_assert_nonnull (strstr (error->message, "canonicalize"));
  /* A failed spec leaves the pipeline as it was. */
  g_assert_cmpint (n_enabled (p), ==, 1);
  g_assert_true (enabled (p, "cse"));
  fb_pipeline_free (p);
}

static GPtrArray *
run (FbModule *m, const char *spec, gboolean keep)
{
  FbPipeline *p = fb_pipeline_new_default ();
  g_autoptr (GError) error = NULL;
  g_assert_true (fb_pipeline_set_spec (p, spec, &error));
  FbPipelineOptions options = { .verify_each = TRUE, .keep_snapshots = keep };
  GPtrArray *snaps = fb_pipeline_run (p, m, &options, &error);
  g_assert_no_error (error);
  g_assert_cmpint (snaps->len, ==, p->n + 1);
  fb_pipeline_free (p);
  return snaps;
}

static FbSnapshot *
snap_of (GPtrArray *snaps, const char *pass)
{
  for (guint i = 1; i < snaps->len; i++)
    {
      FbSnapshot *s = g_ptr_array_index (snaps, i);
      if (strcmp (s->pass->name, pass) == 0)
        return s;
    }
  g_error ("no snapshot of %s", pass);
  return NULL;
}

static void
test_snapshots (void)
{
  FbModule *m = parse (small_text);
  g_autoptr (GPtrArray) snaps = run (m, "simplify,cse,dce", TRUE);
  FbSnapshot *first = g_ptr_array_index (snaps, 0);
  g_assert_null (first->pass);
  g_assert_null (first->diff);
  g_assert_nonnull (first->module);
  g_assert_cmpint (first->stats.instructions, ==, 9);

  FbSnapshot *simplify = snap_of (snaps, "simplify");
  g_assert_true (simplify->enabled && simplify->changed);
  /* add(x, 0) is gone: m1 and m2 became the same product, which cse merges. */
  FbSnapshot *cse = snap_of (snaps, "cse");
  g_assert_true (cse->enabled && cse->changed);
  FbSnapshot *dce = snap_of (snaps, "dce");
  g_assert_true (dce->changed);
  g_assert_cmpint (dce->stats.instructions, ==, 4);   /* x, y, m1, s */
  FbSnapshot *canon = snap_of (snaps, "canonicalize");
  g_assert_false (canon->enabled);
  g_assert_false (canon->changed);
  g_assert_cmpint (canon->decisions->len, ==, 0);

  /* Every snapshot has a module of its own, unchanged by later passes. */
  g_assert_cmpint (fb_module_instr_count (first->module), ==, 9);
  g_assert_cmpint (fb_module_instr_count (simplify->module), ==, 8);
  g_assert_cmpint (fb_module_instr_count (m), ==, 4);
  FbSnapshot *last = g_ptr_array_index (snaps, snaps->len - 1);
  g_assert_true (fb_module_equal (last->module, m, NULL));
  fb_module_free (m);
}

static void
test_snapshots_without_modules (void)
{
  FbModule *m = parse (small_text);
  g_autoptr (GPtrArray) snaps = run (m, "simplify,cse,dce", FALSE);
  for (guint i = 0; i < snaps->len; i++)
    g_assert_null (((FbSnapshot *) g_ptr_array_index (snaps, i))->module);
  g_assert_cmpint (snap_of (snaps, "dce")->stats.instructions, ==, 4);
  fb_module_free (m);
}

static void
test_stats (void)
{
  FbModule *m = parse (small_text);
  FbStats before;
  fb_stats_compute (m, &before);
  g_assert_cmpint (before.instructions, ==, 9);
  /* broadcast, add, 2 multiplies, exponential, subtract. */
  g_assert_cmpint (before.kernels, ==, 6);
  g_assert_cmpfloat (before.bytes, >, 0);
  g_assert_cmpfloat (before.flops, >, 0);
  g_autoptr (GPtrArray) snaps = run (m, "simplify,cse,dce", FALSE);
  FbStats after;
  fb_stats_compute (m, &after);
  g_assert_cmpint (after.instructions, ==, 4);
  g_assert_cmpint (after.kernels, ==, 2);
  g_assert_cmpfloat (after.bytes, <, before.bytes);
  g_assert_cmpfloat (after.flops, <, before.flops);
  FbSnapshot *last = g_ptr_array_index (snaps, snaps->len - 1);
  g_assert_cmpint (last->stats.kernels, ==, 2);
  fb_module_free (m);
}

static void
test_decisions (void)
{
  FbModule *m = parse (small_text);
  int64_t add_id = -1, unused_id = -1;
  for (FbInstr *i = m->entry->first; i; i = i->next)
    {
      if (strcmp (i->name, "a") == 0)
        add_id = i->id;
      if (strcmp (i->name, "unused") == 0)
        unused_id = i->id;
    }
  g_autoptr (GPtrArray) snaps = run (m, "simplify,cse,dce", TRUE);
  FbSnapshot *simplify = snap_of (snaps, "simplify");
  gboolean found = FALSE;
  for (guint k = 0; k < simplify->decisions->len; k++)
    {
      FbDecision *d = g_ptr_array_index (simplify->decisions, k);
      if (d->kind != FB_DECISION_REWRITTEN || strcmp (d->rule, "x+0") != 0)
        continue;
      g_assert_cmpstr (d->pass, ==, "simplify");
      g_assert_nonnull (strstr (d->message, "%a"));
      for (int j = 0; j < d->n_ids; j++)
        found |= d->ids[j] == add_id;
    }
  g_assert_true (found);

  FbSnapshot *dce = snap_of (snaps, "dce");
  found = FALSE;
  for (guint k = 0; k < dce->decisions->len; k++)
    {
      FbDecision *d = g_ptr_array_index (dce->decisions, k);
      g_assert_cmpint (d->kind, ==, FB_DECISION_REMOVED);
      for (int j = 0; j < d->n_ids; j++)
        found |= d->ids[j] == unused_id;
    }
  g_assert_true (found);
  g_assert_cmpstr (fb_decision_kind_name (FB_DECISION_REFUSED), ==, "refused");
  fb_module_free (m);
}

static gboolean
has_id (GArray *a, int64_t id)
{
  for (guint i = 0; i < a->len; i++)
    if (g_array_index (a, int64_t, i) == id)
      return TRUE;
  return FALSE;
}

static FbInstr *
find (FbComputation *c, const char *name)
{
  for (FbInstr *i = c->first; i; i = i->next)
    if (strcmp (i->name, name) == 0)
      return i;
  g_error ("no %s", name);
  return NULL;
}

static void
test_diff (void)
{
  FbModule *before = parse ("HloModule d\n\nENTRY main {\n  x = f32[4]{0} parameter(0)\n  y = f32[4]{0} parameter(1)\n"
                            "  e = f32[4]{0} exponential(x)\n  n = f32[4]{0} negate(y)\n  gone = f32[4]{0} sine(y)\n"
                            "  a = f32[4]{0} add(e, n)\n  ROOT r = f32[4]{0} multiply(a, gone)\n}\n");
  FbModule *after = fb_module_clone (before);
  FbComputation *entry = after->entry;
  FbInstr *x = find (entry, "x"), *y = find (entry, "y"), *e = find (entry, "e"), *n = find (entry, "n");
  FbInstr *gone = find (entry, "gone"), *a = find (entry, "a"), *r = find (entry, "r");

  /* Removed: gone (r now multiplies by y). Changed: r. */
  fb_instr_set_operand (r, 1, y);
  fb_instr_remove (gone);
  /* Added: a new cosine between a and r. */
  FbInstr *cosine = fb_instr_new (entry, r, FB_OP_COS, a->shape, 1, &a, "cosine.new");
  fb_instr_set_operand (r, 0, cosine);
  /* Fused: e and n move into a fused computation that a fusion calls. */
  FbComputation *fc = fb_module_add_computation (after, "fused");
  fc->is_fusion = TRUE;
  FbInstr *p0 = fb_instr_new (fc, NULL, FB_OP_PARAMETER, x->shape, 0, NULL, "p0");
  FbInstr *p1 = fb_instr_new (fc, NULL, FB_OP_PARAMETER, y->shape, 0, NULL, "p1");
  p1->parameter_number = 1;
  fc->n_params = 2;
  fc->params = fb_arena_new0 (after->arena, FbInstr *, 2);
  fc->params[0] = p0;
  fc->params[1] = p1;
  FbInstr *fe = fb_instr_new (fc, NULL, FB_OP_EXP, e->shape, 1, &p0, "fe");
  FbInstr *fn = fb_instr_new (fc, NULL, FB_OP_NEGATE, n->shape, 1, &p1, "fn");
  FbInstr *fa = fb_instr_new (fc, NULL, FB_OP_ADD, a->shape, 2, (FbInstr *[]) { fe, fn }, "fa");
  fc->root = fa;
  fe->n_prov = fn->n_prov = 0;
  fb_instr_add_prov (fe, e->n_prov, e->prov);
  fb_instr_add_prov (fn, n->n_prov, n->prov);
  FbInstr *fusion = fb_instr_new (entry, a, FB_OP_FUSION, a->shape, 2, (FbInstr *[]) { x, y }, "fusion");
  fb_instr_set_comp (fusion, FB_A_CALLS, fc);
  fusion->n_prov = 0;
  fb_instr_add_prov (fusion, a->n_prov, a->prov);
  fb_instr_replace_all_uses (a, fusion);
  int64_t e_id = e->id, n_id = n->id, a_id = a->id, gone_id = gone->id, r_id = r->id, cos_id = cosine->id;
  fb_instr_remove (a);
  fb_instr_remove (e);
  fb_instr_remove (n);

  FbDiff *d = fb_diff_modules (before, after);
  g_assert_true (has_id (d->removed, gone_id));
  g_assert_true (has_id (d->added, cos_id));
  g_assert_true (has_id (d->changed, r_id));
  g_assert_true (has_id (d->fused, e_id));
  g_assert_true (has_id (d->fused, n_id));
  g_assert_true (has_id (d->fused, a_id));
  g_assert_false (has_id (d->changed, e_id));
  g_assert_false (has_id (d->removed, e_id));
  g_assert_cmpuint (d->removed->len, ==, 1);
  g_assert_cmpuint (d->added->len, >=, 1);
  fb_diff_free (d);

  /* A module against itself: nothing at all. */
  d = fb_diff_modules (before, before);
  g_assert_cmpuint (d->added->len + d->removed->len + d->changed->len + d->fused->len, ==, 0);
  fb_diff_free (d);
  fb_module_free (before);
  fb_module_free (after);
}

static void
test_diff_of_pipeline (void)
{
  FbModule *m = parse (small_text);
  int64_t unused_id = -1;
  for (FbInstr *i = m->entry->first; i; i = i->next)
    if (strcmp (i->name, "unused") == 0)
      unused_id = i->id;
  g_autoptr (GPtrArray) snaps = run (m, "dce", TRUE);
  FbSnapshot *dce = snap_of (snaps, "dce");
  g_assert_nonnull (dce->diff);
  g_assert_true (has_id (dce->diff->removed, unused_id));
  FbSnapshot *cse = snap_of (snaps, "cse");
  g_assert_nonnull (cse->diff);
  g_assert_cmpuint (cse->diff->removed->len + cse->diff->added->len + cse->diff->changed->len, ==, 0);
  fb_module_free (m);
}

static void
test_disabled_pass_leaves_module (void)
{
  FbModule *m = parse (small_text);
  FbModule *orig = parse (small_text);
  g_autoptr (GPtrArray) snaps = run (m, "none", TRUE);
  g_autoptr (GString) why = g_string_new (NULL);
  g_assert_true (fb_module_equal (m, orig, why));
  for (guint i = 1; i < snaps->len; i++)
    {
      FbSnapshot *s = g_ptr_array_index (snaps, i);
      g_assert_false (s->enabled);
      g_assert_false (s->changed);
      g_assert_true (fb_module_equal (s->module, orig, why));
    }

  /* Everything but simplify: the add of zero stays. */
  FbModule *m2 = parse ("HloModule m\n\nENTRY main {\n  x = f32[4]{0} parameter(0)\n  z = f32[] constant(0)\n"
                        "  zs = f32[4]{0} broadcast(z), dimensions={}\n  ROOT a = f32[4]{0} add(x, zs)\n}\n");
  g_autoptr (GPtrArray) snaps2 = run (m2, "cse,dce,canonicalize", TRUE);
  g_assert_cmpint (m2->entry->root->opcode, ==, FB_OP_ADD);
  g_assert_false (snap_of (snaps2, "simplify")->changed);
  fb_module_free (m);
  fb_module_free (m2);
  fb_module_free (orig);
}

static void
test_passes_described (void)
{
  int n;
  const FbPass *const *all = fb_passes_all (&n);
  g_assert_cmpint (n, >=, 5);
  for (int i = 0; i < n; i++)
    {
      g_assert_true (fb_pass_lookup (all[i]->name) == all[i]);
      g_assert_cmpuint (strlen (all[i]->summary), >, 10);
      g_assert_cmpuint (strlen (all[i]->explain), >, strlen (all[i]->summary));
    }
  g_assert_null (fb_pass_lookup ("bogus"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pipeline/spec/forms", test_spec_forms);
  g_test_add_func ("/pipeline/spec/errors", test_spec_errors);
  g_test_add_func ("/pipeline/snapshots/one-per-pass", test_snapshots);
  g_test_add_func ("/pipeline/snapshots/stats-only", test_snapshots_without_modules);
  g_test_add_func ("/pipeline/stats", test_stats);
  g_test_add_func ("/pipeline/decisions", test_decisions);
  g_test_add_func ("/pipeline/diff/hand-made", test_diff);
  g_test_add_func ("/pipeline/diff/after-pass", test_diff_of_pipeline);
  g_test_add_func ("/pipeline/disabled-pass", test_disabled_pass_leaves_module);
  g_test_add_func ("/pipeline/passes-described", test_passes_described);
  return g_test_run ();
}
