/* SPDX-License-Identifier: MIT
 *
 * The pass pipeline: decisions, pipeline specs (`all,-cse`), and the run
 * loop that takes one snapshot per pass. Each snapshot is a clone of the
 * module after the pass, so the workbench can step back and forth without
 * running anything again. Also what the passes share: replacing an
 * instruction while keeping provenance, the side-effect rule, and the
 * constant evaluator that a layer above registers for constant folding.
 */
#include <stdarg.h>
#include <string.h>

#include "fb-pass.h"
#include "fb-verify.h"
#include "passes/fb-passes-private.h"

/* ------------------------------------------------------------ decisions */

const char *
fb_decision_kind_name (FbDecisionKind kind)
{
  switch (kind)
    {
    case FB_DECISION_FUSED: return "fused";
    case FB_DECISION_REFUSED: return "refused";
    case FB_DECISION_REWRITTEN: return "rewritten";
    case FB_DECISION_REMOVED: return "removed";
    case FB_DECISION_NOTE: return "note";
    }
  return "?";
}

void
fb_decision_free (FbDecision *d)
{
  if (d == NULL)
    return;
  g_free (d->rule);
  g_free (d->message);
  g_free (d->ids);
  g_free (d);
}

FbPassContext *
fb_pass_context_new (void)
{
  FbPassContext *ctx = g_new0 (FbPassContext, 1);
  ctx->decisions = g_ptr_array_new_with_free_func ((GDestroyNotify) fb_decision_free);
  ctx->max_fusion_operands = 64;
  ctx->max_fusion_instructions = 200;
  ctx->max_recompute_bytes = 16.0 * 1024 * 1024;
  return ctx;
}

void
fb_pass_context_free (FbPassContext *ctx)
{
  if (ctx == NULL)
    return;
  g_ptr_array_unref (ctx->decisions);
  g_free (ctx);
}

void
fb_pass_decide (FbPassContext *ctx, FbDecisionKind kind, const char *rule,
                int n, FbInstr *const *instrs, const char *fmt, ...)
{
  if (ctx == NULL)
    return;
  FbDecision *d = g_new0 (FbDecision, 1);
  va_list ap;
  d->kind = kind;
  d->pass = ctx->pass_name;
  d->rule = g_strdup (rule);
  va_start (ap, fmt);
  d->message = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  /* Each instruction is named by its own id and at most the first
   * FB_DECISION_MAX_PROV ids of its provenance: enough to find it in any
   * snapshot, while a fusion that stands for thousands of originals (a
   * constant shared by a whole model after cse) does not copy them all into
   * every decision it takes part in. */
  int total = 0;
  for (int i = 0; i < n; i++)
    if (instrs[i])
      total += 1 + MIN (instrs[i]->n_prov, FB_DECISION_MAX_PROV);
  d->ids = g_new0 (int64_t, MAX (total, 1));
  for (int i = 0; i < n; i++)
    if (instrs[i])
      {
        d->ids[d->n_ids++] = instrs[i]->id;
        for (int k = 0; k < MIN (instrs[i]->n_prov, FB_DECISION_MAX_PROV); k++)
          if (instrs[i]->prov[k] != instrs[i]->id)
            d->ids[d->n_ids++] = instrs[i]->prov[k];
      }
  g_ptr_array_add (ctx->decisions, d);
}

/* ------------------------------------------------------------ pipeline */

FbPipeline *
fb_pipeline_new_default (void)
{
  int n;
  const FbPass *const *all = fb_passes_all (&n);
  FbPipeline *p = g_new0 (FbPipeline, 1);
  p->n = n;
  p->entries = g_new0 (FbPipelineEntry, MAX (n, 1));
  for (int i = 0; i < n; i++)
    {
      p->entries[i].pass = all[i];
      p->entries[i].enabled = TRUE;
    }
  return p;
}

void
fb_pipeline_free (FbPipeline *p)
{
  if (p == NULL)
    return;
  g_free (p->entries);
  g_free (p);
}

static FbPipelineEntry *
find_entry (FbPipeline *p, const char *name)
{
  for (int i = 0; i < p->n; i++)
    if (strcmp (p->entries[i].pass->name, name) == 0)
      return &p->entries[i];
  return NULL;
}

static void
unknown_pass (GError **error, const char *name)
{
  g_autoptr (GString) known = g_string_new (NULL);
  int n;
  const FbPass *const *all = fb_passes_all (&n);
  for (int i = 0; i < n; i++)
    g_string_append_printf (known, "%s%s", i ? ", " : "", all[i]->name);
  g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "unknown pass '%s' (known: all, none, %s)", name, known->str);
}

gboolean
fb_pipeline_set_spec (FbPipeline *p, const char *spec, GError **error)
{
  g_return_val_if_fail (spec != NULL, FALSE);
  g_auto (GStrv) parts = g_strsplit (spec, ",", -1);
  if (parts[0] == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "empty pass list: give all, none, or pass names");
      return FALSE;
    }
  g_autofree gboolean *want = g_new0 (gboolean, MAX (p->n, 1));
  gboolean any = FALSE;

  for (int i = 0; parts[i]; i++)
    {
      char *name = g_strstrip (parts[i]);
      if (*name == '\0')
        {
          g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "empty pass name in '%s'", spec);
          return FALSE;
        }
      gboolean minus = name[0] == '-';
      if (minus)
        name++;
      if (strcmp (name, "all") == 0 || strcmp (name, "none") == 0)
        {
          if (minus || i != 0)
            {
              g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "'%s' may only come first in '%s'", name, spec);
              return FALSE;
            }
          for (int k = 0; k < p->n; k++)
            want[k] = name[0] == 'a';
          any = TRUE;
          continue;
        }
      FbPipelineEntry *e = find_entry (p, name);
      if (e == NULL)
        {
          unknown_pass (error, name);
          return FALSE;
        }
      if (minus && !any)
        {
          /* `-cse` alone means all but cse. */
          for (int k = 0; k < p->n; k++)
            want[k] = TRUE;
          any = TRUE;
        }
      want[e - p->entries] = !minus;
      any = TRUE;
    }
  for (int k = 0; k < p->n; k++)
    p->entries[k].enabled = want[k];
  return TRUE;
}

char *
fb_pipeline_dup_spec (const FbPipeline *p)
{
  int on = 0;
  for (int i = 0; i < p->n; i++)
    on += p->entries[i].enabled;
  if (on == p->n)
    return g_strdup ("all");
  if (on == 0)
    return g_strdup ("none");
  GString *s = g_string_new (NULL);
  if (on * 2 >= p->n)
    {
      g_string_append (s, "all");
      for (int i = 0; i < p->n; i++)
        if (!p->entries[i].enabled)
          g_string_append_printf (s, ",-%s", p->entries[i].pass->name);
    }
  else
    for (int i = 0; i < p->n; i++)
      if (p->entries[i].enabled)
        g_string_append_printf (s, "%s%s", s->len ? "," : "", p->entries[i].pass->name);
  return g_string_free (s, FALSE);
}

void
fb_snapshot_free (FbSnapshot *s)
{
  if (s == NULL)
    return;
  fb_module_free (s->module);
  fb_diff_free (s->diff);
  if (s->decisions)
    g_ptr_array_unref (s->decisions);
  g_free (s);
}

static FbSnapshot *
take_snapshot (FbModule *module, const FbPipelineOptions *options)
{
  FbSnapshot *s = g_new0 (FbSnapshot, 1);
  if (options->keep_snapshots)
    s->module = fb_module_clone (module);
  fb_stats_compute (module, &s->stats);
  return s;
}

GPtrArray *
fb_pipeline_run (FbPipeline *p, FbModule *module, const FbPipelineOptions *options, GError **error)
{
  FbPipelineOptions defaults = { FALSE, TRUE };
  if (options == NULL)
    options = &defaults;
  g_autoptr (GPtrArray) snaps = g_ptr_array_new_with_free_func ((GDestroyNotify) fb_snapshot_free);
  FbSnapshot *first = take_snapshot (module, options);
  first->decisions = g_ptr_array_new_with_free_func ((GDestroyNotify) fb_decision_free);
  g_ptr_array_add (snaps, first);
  FbModule *prev = first->module;

  for (int i = 0; i < p->n; i++)
    {
      const FbPass *pass = p->entries[i].pass;
      gboolean changed = FALSE;
      FbPassContext *ctx = fb_pass_context_new ();
      ctx->pass_name = pass->name;
      gint64 t0 = g_get_monotonic_time ();
      if (p->entries[i].enabled)
        {
          g_autoptr (GError) local = NULL;
          if (!pass->run (module, ctx, &changed, &local))
            {
              g_set_error (error, FB_ERROR, local ? local->code : FB_ERROR_RUNTIME, "pass %s failed: %s",
                           pass->name, local ? local->message : "no reason given");
              fb_pass_context_free (ctx);
              return NULL;
            }
          if (options->verify_each)
            {
              g_autoptr (GError) local2 = NULL;
              if (!fb_verify (module, &local2))
                {
                  g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "the module is invalid after pass %s: %s",
                               pass->name, local2->message);
                  fb_pass_context_free (ctx);
                  return NULL;
                }
            }
        }
      double ms = (g_get_monotonic_time () - t0) / 1000.0;
      FbSnapshot *s = changed || prev == NULL ? take_snapshot (module, options) : NULL;
      if (s == NULL)
        {
          /* Unchanged: share nothing, but keep the same statistics. */
          s = g_new0 (FbSnapshot, 1);
          s->module = options->keep_snapshots ? fb_module_clone (prev) : NULL;
          s->stats = ((FbSnapshot *) g_ptr_array_index (snaps, snaps->len - 1))->stats;
        }
      s->pass = pass;
      s->enabled = p->entries[i].enabled;
      s->changed = changed;
      s->ms = ms;
      s->decisions = g_ptr_array_ref (ctx->decisions);
      if (prev && s->module)
        s->diff = changed ? fb_diff_modules (prev, s->module) : fb_diff_modules (prev, prev);
      fb_pass_context_free (ctx);
      g_ptr_array_add (snaps, s);
      prev = s->module;
    }
  return g_steal_pointer (&snaps);
}

/* ------------------------------------------------ constant evaluator hook */

static FbConstantEvaluator constant_evaluator;
static gpointer constant_evaluator_data;

void
fb_pass_set_constant_evaluator (FbConstantEvaluator eval, gpointer user_data)
{
  constant_evaluator = eval;
  constant_evaluator_data = user_data;
}

FbConstantEvaluator
fb_pass_get_constant_evaluator (gpointer *user_data)
{
  if (user_data)
    *user_data = constant_evaluator_data;
  return constant_evaluator;
}

/* ------------------------------------------------------ shared by the passes */

gboolean
_fb_instr_has_side_effect (const FbInstr *instr)
{
  switch (instr->opcode)
    {
    case FB_OP_RNG:
    case FB_OP_RNG_GET_AND_UPDATE_STATE:
    case FB_OP_INFEED:
    case FB_OP_OUTFEED:
    case FB_OP_SEND:
    case FB_OP_SEND_DONE:
    case FB_OP_RECV:
    case FB_OP_RECV_DONE:
    case FB_OP_AFTER_ALL:
    case FB_OP_ADD_DEPENDENCY:
    case FB_OP_OPTIMIZATION_BARRIER:
    case FB_OP_ASYNC_START:
    case FB_OP_ASYNC_UPDATE:
    case FB_OP_ASYNC_DONE:
    case FB_OP_COPY_START:
    case FB_OP_COPY_DONE:
      return TRUE;
    case FB_OP_CUSTOM_CALL:
      {
        const FbAttr *a = fb_instr_get_raw_attr (instr, "custom_call_has_side_effect");
        return a && a->kind == FB_AV_RAW && a->v.s && g_ascii_strcasecmp (a->v.s, "true") == 0;
      }
    default:
      return fb_opcode_category (instr->opcode) == FB_CAT_COLLECTIVE;
    }
}

/* Nesting of called computations followed before assuming the worst. */
#define MAX_CALL_DEPTH 64

static gboolean comp_has_side_effect (FbComputation *comp, GHashTable *memo, int depth);

static gboolean
instr_has_side_effect_deep (const FbInstr *instr, GHashTable *memo, int depth)
{
  if (_fb_instr_has_side_effect (instr))
    return TRUE;
  FbComputation *called[32];
  int n = fb_instr_called (instr, called, G_N_ELEMENTS (called));
  if (n > (int) G_N_ELEMENTS (called))
    return TRUE;
  for (int k = 0; k < n; k++)
    if (called[k] && comp_has_side_effect (called[k], memo, depth + 1))
      return TRUE;
  return FALSE;
}

static gboolean
comp_has_side_effect (FbComputation *comp, GHashTable *memo, int depth)
{
  if (depth > MAX_CALL_DEPTH)
    return TRUE;
  gpointer v;
  if (g_hash_table_lookup_extended (memo, comp, NULL, &v))
    return GPOINTER_TO_INT (v);
  /* Assume pure while visiting, so that recursion through a cycle ends. */
  g_hash_table_insert (memo, comp, GINT_TO_POINTER (FALSE));
  gboolean effect = FALSE;
  for (FbInstr *i = comp->first; i && !effect; i = i->next)
    effect = instr_has_side_effect_deep (i, memo, depth);
  g_hash_table_insert (memo, comp, GINT_TO_POINTER (effect));
  return effect;
}

gboolean
_fb_instr_has_side_effect_deep (const FbInstr *instr, GHashTable *memo)
{
  return instr_has_side_effect_deep (instr, memo, 0);
}

gboolean
_fb_pass_remove_if_dead (FbInstr *instr, FbInstr *heir)
{
  if (instr->n_users > 0 || instr->parent == NULL || instr->parent->root == instr
      || instr->opcode == FB_OP_PARAMETER || _fb_instr_has_side_effect (instr))
    return FALSE;
  if (heir)
    fb_instr_add_prov (heir, instr->n_prov, instr->prov);
  fb_instr_remove (instr);
  return TRUE;
}

void
_fb_pass_replace (FbPassContext *ctx, FbInstr *old, FbInstr *repl, const char *rule)
{
  if (rule)
    {
      FbInstr *both[2] = { old, repl };
      fb_pass_decide (ctx, FB_DECISION_REWRITTEN, rule, 2, both, "%%%s became %%%s", old->name, repl->name);
    }
  fb_instr_add_prov (repl, old->n_prov, old->prov);
  fb_instr_replace_all_uses (old, repl);
  _fb_pass_remove_if_dead (old, NULL);
}

static gboolean
layout_is_default (const FbLayout *l, int rank)
{
  if (l == NULL)
    return TRUE;
  if (l->extra != NULL || l->n != rank)
    return FALSE;
  for (int i = 0; i < rank; i++)
    if (l->minor_to_major[i] != rank - 1 - i)
      return FALSE;
  return TRUE;
}

gboolean
_fb_shape_same (const FbShape *a, const FbShape *b)
{
  if (!fb_shape_compatible (a, b))
    return FALSE;
  if (fb_shape_is_tuple (a))
    {
      for (int i = 0; i < a->n_elems; i++)
        if (!_fb_shape_same (a->elems[i], b->elems[i]))
          return FALSE;
      return TRUE;
    }
  if (a->layout == NULL || b->layout == NULL)
    return layout_is_default (a->layout ? a->layout : b->layout, a->rank);
  return fb_shape_equal (a, b);
}

gboolean
_fb_instr_is_splat (const FbInstr *instr, double v)
{
  while (instr->opcode == FB_OP_BROADCAST && instr->n_operands == 1)
    instr = instr->operands[0];
  if (instr->opcode != FB_OP_CONSTANT || instr->literal == NULL || instr->literal_elided
      || instr->opcode_suffix != NULL || !fb_shape_is_array (instr->shape)
      || fb_shape_is_tuple (instr->literal->shape))
    return FALSE;
  FbElemKind kind = fb_elem_type_kind (instr->shape->type);
  if (kind != FB_KIND_PRED && kind != FB_KIND_SINT && kind != FB_KIND_UINT && kind != FB_KIND_FLOAT)
    return FALSE;
  int64_t n = fb_shape_elements (instr->literal->shape);
  if (n < 1)
    return FALSE;
  for (int64_t i = 0; i < n; i++)
    if (fb_literal_get_f64 (instr->literal, i) != v)
      return FALSE;
  return TRUE;
}

FbShape *
_fb_shape_like (FbModule *m, const FbShape *like, FbElemType type, int rank, const int64_t *dims)
{
  FbShape *s = fb_shape_new_array (m->arena, type, rank, dims);
  if (like && like->layout)
    fb_shape_set_default_layout (m->arena, s);
  return s;
}
