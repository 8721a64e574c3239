/* SPDX-License-Identifier: MIT
 *
 * Tests of buffer assignment, scheduling and layout assignment on small
 * modules whose live bytes are worked out by hand: a chain whose peak is the
 * largest pair of neighbours, reuse of freed memory, in-place updates, an
 * output written into its parameter, tuples that alias their operands, a
 * wasteful order the scheduler improves without changing any result, and
 * default and constrained layouts. With FUSEBOX_CORPUS set, the three passes
 * also run over a real training step.
 */
#include <string.h>

#include "fb-buffers.h"
#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-pass.h"
#include "fb-verify.h"

static FbModule *
load (const char *name)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", "buffers", name, NULL);
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse_file (path, 0, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  return m;
}

static FbBufferPlan *
plan_of (FbModule *m)
{
  g_autoptr (GError) error = NULL;
  FbBufferPlan *plan = fb_buffer_plan_new (m, &error);
  g_assert_no_error (error);
  g_assert_nonnull (plan);
  return plan;
}

static const FbBufferAlloc *
alloc_of (const FbBufferPlan *plan, const char *name)
{
  for (int i = 0; i < plan->n_allocs; i++)
    if (strcmp (plan->allocs[i].instr->name, name) == 0)
      return &plan->allocs[i];
  return NULL;
}

static GPtrArray *
run_pass (FbModule *m, const char *name, gboolean *changed)
{
  const FbPass *pass = fb_pass_lookup (name);
  g_assert_nonnull (pass);
  FbPassContext *ctx = fb_pass_context_new ();
  ctx->pass_name = pass->name;
  g_autoptr (GError) error = NULL;
  gboolean dummy;
  g_assert_true (pass->run (m, ctx, changed ? changed : &dummy, &error));
  g_assert_no_error (error);
  GPtrArray *decisions = g_ptr_array_ref (ctx->decisions);
  fb_pass_context_free (ctx);
  g_assert_true (fb_verify (m, &error));
  g_assert_no_error (error);
  return decisions;
}

static gboolean
has_decision (GPtrArray *decisions, const char *rule, const char *needle)
{
  for (guint i = 0; i < decisions->len; i++)
    {
      FbDecision *d = g_ptr_array_index (decisions, i);
      if (strcmp (d->rule, rule) == 0 && (needle == NULL || strstr (d->message, needle)))
        return TRUE;
    }
  return FALSE;
}

/* a (1 KiB) -> b (512 B) -> c (2 KiB) -> d: the peak is the largest pair of
 * neighbours, b and c, plus the parameter and the constant (4 B each). */
static void
test_chain_peak (void)
{
  FbModule *m = load ("chain.hlo");
  FbBufferPlan *plan = plan_of (m);
  g_assert_cmpint (plan->n_positions, ==, 6);
  g_assert_cmpint (plan->peak_bytes, ==, 512 + 2048 + 8);
  g_assert_cmpint (plan->peak_position, ==, 3);
  int64_t expect[] = { 8, 8 + 1024, 8 + 1024 + 512, 8 + 512 + 2048, 8 + 2048, 8 + 2048 + 4 };
  for (int i = 0; i < 6; i++)
    g_assert_cmpint (plan->live_bytes[i], ==, expect[i]);
  const FbBufferAlloc *p = alloc_of (plan, "p"), *zero = alloc_of (plan, "zero"), *c = alloc_of (plan, "c");
  g_assert_true (p->is_parameter);
  g_assert_cmpint (p->start, ==, 0);
  g_assert_cmpint (p->end, ==, 5);
  g_assert_true (zero->is_constant);
  g_assert_cmpint (zero->start, ==, 0);
  g_assert_cmpint (c->start, ==, 3);
  g_assert_cmpint (c->end, ==, 5);
  g_assert_true (alloc_of (plan, "d")->is_output);
  /* d (4 bytes) goes into the block a and b left behind. */
  g_assert_cmpint (alloc_of (plan, "d")->offset, ==, 0);
  fb_buffer_plan_free (plan);
  fb_module_free (m);
}

/* Four 1 KiB temporaries in a chain of reverses (not elementwise, so no
 * in-place update): c reuses a's block, d reuses b's; the arena holds two. */
static void
test_reuse (void)
{
  FbModule *m = load ("reuse.hlo");
  FbBufferPlan *plan = plan_of (m);
  g_assert_cmpint (plan->peak_bytes, ==, 4 + 2048);
  g_assert_cmpint (plan->arena_bytes, ==, 2048);
  g_assert_cmpint (alloc_of (plan, "c")->offset, ==, alloc_of (plan, "a")->offset);
  g_assert_cmpint (alloc_of (plan, "d")->offset, ==, alloc_of (plan, "b")->offset);
  g_assert_cmpint (alloc_of (plan, "a")->offset, !=, alloc_of (plan, "b")->offset);
  g_assert_false (alloc_of (plan, "c")->in_place);

  g_autoptr (GPtrArray) d = run_pass (m, "assign-buffers", NULL);
  g_assert_true (has_decision (d, "reuse", "2 buffers reuse memory"));
  g_assert_true (has_decision (d, "peak", "at position 2"));
  fb_buffer_plan_free (plan);
  fb_module_free (m);
}

/* exponential and negate overwrite their operand, which dies at them. */
static void
test_in_place (void)
{
  FbModule *m = load ("in-place.hlo");
  FbBufferPlan *plan = plan_of (m);
  g_assert_cmpint (plan->peak_bytes, ==, 4 + 1024);
  g_assert_cmpint (plan->arena_bytes, ==, 1024);
  g_assert_true (alloc_of (plan, "b")->in_place);
  g_assert_true (alloc_of (plan, "c")->in_place);
  g_assert_false (alloc_of (plan, "a")->in_place);
  g_assert_cmpint (alloc_of (plan, "c")->offset, ==, alloc_of (plan, "a")->offset);
  g_autoptr (GPtrArray) d = run_pass (m, "assign-buffers", NULL);
  g_assert_true (has_decision (d, "in-place", "%c"));
  fb_buffer_plan_free (plan);
  fb_module_free (m);
}

/* The new weight is written into parameter 0: it costs nothing. */
static void
test_output_into_parameter (void)
{
  FbModule *m = load ("io-alias.hlo");
  FbBufferPlan *plan = plan_of (m);
  g_assert_cmpint (plan->peak_bytes, ==, 2048);
  g_assert_cmpint (plan->arena_bytes, ==, 0);
  const FbBufferAlloc *u = alloc_of (plan, "u");
  g_assert_true (u->in_place);
  g_assert_true (u->is_output);
  fb_buffer_plan_free (plan);

  gboolean changed = TRUE;
  g_autoptr (GPtrArray) d = run_pass (m, "assign-buffers", &changed);
  g_assert_false (changed);
  g_assert_true (has_decision (d, "output-into-parameter", "%u"));

  /* Without the alias the output needs its own 1 KiB. */
  m->n_aliases = 0;
  plan = plan_of (m);
  g_assert_cmpint (plan->peak_bytes, ==, 3072);
  g_assert_false (alloc_of (plan, "u")->in_place);
  fb_buffer_plan_free (plan);
  fb_module_free (m);
}

/* A tuple and get-tuple-element take no memory; reading g keeps a alive. */
static void
test_tuple_alias (void)
{
  FbModule *m = load ("tuple.hlo");
  FbBufferPlan *plan = plan_of (m);
  g_assert_null (alloc_of (plan, "t"));
  g_assert_null (alloc_of (plan, "g"));
  const FbBufferAlloc *a = alloc_of (plan, "a"), *b = alloc_of (plan, "b");
  g_assert_cmpint (a->end, ==, 6);
  g_assert_cmpint (b->end, ==, 4);
  /* e overwrites b, n overwrites a (through the tuple): never more than
   * a, b and the parameter. */
  g_assert_true (alloc_of (plan, "e")->in_place);
  g_assert_true (alloc_of (plan, "n")->in_place);
  g_assert_cmpint (alloc_of (plan, "n")->offset, ==, a->offset);
  g_assert_cmpint (plan->peak_bytes, ==, 4 + 1024 + 256);
  g_assert_cmpint (plan->peak_position, ==, 2);
  fb_buffer_plan_free (plan);
  fb_module_free (m);
}

static FbLiteral *
eval (FbModule *m, FbArena *arena, double x)
{
  FbLiteral *arg = fb_literal_new (arena, m->entry->params[0]->shape);
  fb_literal_set_f64 (arg, 0, x);
  g_autoptr (GError) error = NULL;
  FbLiteral *out = fb_interp_run (m, m->entry, arena, 1, &arg, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (out);
  return out;
}

static void
assert_topological (FbComputation *comp)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  for (FbInstr *in = comp->first; in; in = in->next)
    {
      for (int o = 0; o < in->n_operands; o++)
        g_assert_true (g_hash_table_contains (seen, in->operands[o]));
      g_hash_table_add (seen, in);
    }
}

/* Three 4 KiB broadcasts made before any is reduced; the scheduler reduces
 * each one before making the next. */
static void
test_schedule_lowers_peak (void)
{
  FbModule *m = load ("wasteful.hlo");
  int n_before = m->entry->n_instrs;
  FbArena *arena = fb_arena_new ();
  FbLiteral *want = eval (m, arena, 0.25);
  FbBufferPlan *plan = plan_of (m);
  int64_t before = plan->peak_bytes;
  fb_buffer_plan_free (plan);
  g_assert_cmpint (before, >=, 3 * 4096);

  gboolean changed = FALSE;
  g_autoptr (GPtrArray) d = run_pass (m, "schedule", &changed);
  g_assert_true (changed);
  g_assert_true (m->is_scheduled);
  g_assert_cmpint (m->entry->n_instrs, ==, n_before);
  assert_topological (m->entry);
  plan = plan_of (m);
  /* One 4 KiB array at a time, plus scalars. */
  g_assert_cmpint (plan->peak_bytes, <, 4096 + 64);
  g_assert_cmpint (plan->peak_bytes, <, before);
  fb_buffer_plan_free (plan);
  g_assert_true (has_decision (d, "peak-memory", "after"));

  FbLiteral *got = eval (m, arena, 0.25);
  g_assert_true (fb_literal_equal (want, got));

  g_autofree char *text = fb_hlo_to_string (m, FB_PRINT_SHORT);
  g_assert_nonnull (strstr (text, "is_scheduled=true"));
  /* The printed schedule loads again, in the same order. */
  g_autoptr (GError) error = NULL;
  FbModule *again = fb_hlo_parse (text, strlen (text), "scheduled.hlo", 0, &error);
  g_assert_no_error (error);
  g_assert_true (again->is_scheduled);
  g_assert_cmpstr (again->entry->first->next->name, ==, m->entry->first->next->name);

  /* Scheduling a scheduled module keeps its order. */
  changed = TRUE;
  g_autoptr (GPtrArray) d2 = run_pass (again, "schedule", &changed);
  g_assert_false (changed);
  fb_module_free (again);
  fb_arena_free (arena);
  fb_module_free (m);
}

static void
assert_all_layouts (FbShape *s)
{
  if (s->type == FB_TUPLE)
    {
      for (int i = 0; i < s->n_elems; i++)
        assert_all_layouts (s->elems[i]);
      return;
    }
  if (fb_elem_type_is_array (s->type))
    g_assert_nonnull (s->layout);
}

static FbInstr *
find (FbComputation *comp, const char *name)
{
  for (FbInstr *in = comp->first; in; in = in->next)
    if (strcmp (in->name, name) == 0)
      return in;
  return NULL;
}

static void
test_layouts (void)
{
  FbModule *m = load ("chain.hlo");
  /* Drop the layouts the text gave, keep one non-default. */
  for (FbInstr *in = m->entry->first; in; in = in->next)
    if (strcmp (in->name, "c") != 0)
      in->shape->layout = NULL;
  find (m->entry, "c")->shape->layout->minor_to_major[0] = 0;
  find (m->entry, "c")->shape->layout->minor_to_major[1] = 1;
  gboolean changed = FALSE;
  g_autoptr (GPtrArray) d = run_pass (m, "assign-layouts", &changed);
  g_assert_true (changed);
  for (int c = 0; c < m->n_comps; c++)
    for (FbInstr *in = m->comps[c]->first; in; in = in->next)
      assert_all_layouts (in->shape);
  g_autofree char *a = fb_shape_to_string (find (m->entry, "a")->shape);
  g_assert_cmpstr (a, ==, "f32[256]{0}");
  g_autofree char *c = fb_shape_to_string (find (m->entry, "c")->shape);
  g_assert_cmpstr (c, ==, "f32[128,4]{0,1}");
  g_assert_true (has_decision (d, "default-layout", NULL));

  /* Nothing left to do the second time. */
  g_autoptr (GPtrArray) d2 = run_pass (m, "assign-layouts", &changed);
  g_assert_false (changed);
  fb_module_free (m);
}

/* entry_computation_layout wants x in column-major and the result too: a
 * copy after the parameter and one before the result, nothing else. */
static void
test_entry_layout_copies (void)
{
  FbModule *m = load ("layouts.hlo");
  FbArena *arena = fb_arena_new ();
  FbLiteral *args[2];
  for (int i = 0; i < 2; i++)
    {
      args[i] = fb_literal_new (arena, m->entry->params[i]->shape);
      for (int k = 0; k < fb_shape_elements (args[i]->shape); k++)
        fb_literal_set_f64 (args[i], k, 0.1 * (k + 1) * (i ? -1 : 1));
    }
  g_autoptr (GError) error = NULL;
  FbLiteral *want = fb_interp_run (m, m->entry, arena, 2, args, NULL, &error);
  g_assert_no_error (error);
  int n_before = m->entry->n_instrs;

  g_autoptr (GPtrArray) d = run_pass (m, "assign-layouts", NULL);
  /* x: default {1,0} inside, {0,1} outside; w: {0,1} kept inside, {1,0}
   * outside; the result: {1,0} inside, {0,1} outside. */
  g_assert_cmpint (m->entry->n_instrs, ==, n_before + 3);
  g_autofree char *x = fb_shape_to_string (m->entry->params[0]->shape);
  g_assert_cmpstr (x, ==, "f32[2,3]{0,1}");
  g_autofree char *w = fb_shape_to_string (m->entry->params[1]->shape);
  g_assert_cmpstr (w, ==, "f32[3,4]{1,0}");
  g_assert_cmpint (m->entry->root->opcode, ==, FB_OP_COPY);
  g_autofree char *r = fb_shape_to_string (m->entry->root->shape);
  g_assert_cmpstr (r, ==, "f32[2,4]{0,1}");
  FbInstr *dot = find (m->entry, "d");
  g_assert_cmpint (dot->operands[0]->opcode, ==, FB_OP_COPY);
  g_assert_true (has_decision (d, "entry-layout-copy", "%x"));
  g_assert_true (has_decision (d, "operand-layout", "contracting dimension 1 is the most minor"));

  FbLiteral *got = fb_interp_run (m, m->entry, arena, 2, args, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (fb_literal_equal (want, got));
  fb_arena_free (arena);
  fb_module_free (m);
}

static void
test_no_entry (void)
{
  FbModule *m = fb_module_new ("empty");
  g_autoptr (GError) error = NULL;
  g_assert_null (fb_buffer_plan_new (m, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_VERIFY);
  fb_module_free (m);
}

/* The three passes over a real training step: still valid, every
 * instruction kept, and the schedule never raises the peak. */
static void
test_corpus_training_step (void)
{
  const char *dir = g_getenv ("FUSEBOX_CORPUS");
  if (dir == NULL)
    {
      g_test_skip ("FUSEBOX_CORPUS is not set");
      return;
    }
  g_autofree char *path = g_build_filename (dir, "mobilenet_v2.hlo", NULL);
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse_file (path, 0, &error);
  g_assert_no_error (error);
  int n = fb_module_instr_count (m);
  g_autoptr (GPtrArray) d1 = run_pass (m, "assign-layouts", NULL);
  FbBufferPlan *plan = plan_of (m);
  int64_t before = plan->peak_bytes;
  fb_buffer_plan_free (plan);
  g_autoptr (GPtrArray) d2 = run_pass (m, "schedule", NULL);
  assert_topological (m->entry);
  g_assert_cmpint (fb_module_instr_count (m), ==, n);
  plan = plan_of (m);
  g_assert_cmpint (plan->peak_bytes, <=, before);
  g_assert_cmpint (plan->arena_bytes, >, 0);
  fb_buffer_plan_free (plan);
  g_autoptr (GPtrArray) d3 = run_pass (m, "assign-buffers", NULL);
  g_assert_true (has_decision (d3, "peak", NULL));
  fb_module_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/compiler/buffers/chain-peak", test_chain_peak);
  g_test_add_func ("/compiler/buffers/reuse", test_reuse);
  g_test_add_func ("/compiler/buffers/in-place", test_in_place);
  g_test_add_func ("/compiler/buffers/output-into-parameter", test_output_into_parameter);
  g_test_add_func ("/compiler/buffers/tuple-alias", test_tuple_alias);
  g_test_add_func ("/compiler/buffers/no-entry", test_no_entry);
  g_test_add_func ("/compiler/schedule/lowers-peak", test_schedule_lowers_peak);
  g_test_add_func ("/compiler/layouts/default", test_layouts);
  g_test_add_func ("/compiler/layouts/entry-layout-copies", test_entry_layout_copies);
  g_test_add_func ("/compiler/buffers/corpus-training-step", test_corpus_training_step);
  return g_test_run ();
}
