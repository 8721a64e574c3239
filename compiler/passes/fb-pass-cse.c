/* SPDX-License-Identifier: MIT
 *
 * cse: common subexpression elimination. Two instructions of a computation
 * that have the same opcode, shape (layout included), operands, attributes
 * (metadata aside) and literal compute the same value, so the later one is
 * replaced by the earlier. Instructions are visited in order, which is a
 * topological order, so a duplicate's operands have already been merged
 * when it is looked up; one hash table per computation makes the pass
 * O(n) expected (n log n at worst). Never merged: parameters, elided
 * constants (their real values are unknown), and anything with a side
 * effect or randomness (rng, infeed/outfeed, send/recv, collectives,
 * custom-calls with side effects), nor a call, while or conditional whose
 * computations hold one.
 */
#include <string.h>

#include "fb-passes-private.h"

static guint
mix (guint h, guint64 v)
{
  return (h ^ (guint) (v ^ (v >> 32))) * 16777619u;
}

static guint
shape_hash (const FbShape *s)
{
  guint h = mix (2166136261u, s->type);
  h = mix (h, s->rank);
  for (int k = 0; k < s->rank; k++)
    h = mix (h, (guint64) s->dims[k]);
  for (int k = 0; k < s->n_elems; k++)
    h = mix (h, shape_hash (s->elems[k]));
  return h;
}

static guint
literal_hash (const FbLiteral *lit)
{
  if (lit == NULL)
    return 0;
  guint h = 0;
  if (lit->data)
    {
      gsize n = (gsize) fb_shape_elements (lit->shape) * fb_elem_type_bytes (lit->shape->type);
      for (gsize k = 0; k < n; k++)
        h = mix (h, lit->data[k]);
    }
  for (int k = 0; k < lit->n_elems; k++)
    h = mix (h, literal_hash (lit->elems[k]));
  return h;
}

static guint
instr_hash (gconstpointer p)
{
  const FbInstr *i = p;
  guint h = mix (shape_hash (i->shape), i->opcode);
  for (int k = 0; k < i->n_operands; k++)
    h = mix (h, GPOINTER_TO_SIZE (i->operands[k]));
  if (i->opcode == FB_OP_CONSTANT)
    h = mix (h, literal_hash (i->literal));
  return h;
}

static gboolean
ignored_attr (const FbAttr *a)
{
  return a->key == FB_A_METADATA;
}

static gboolean
attrs_equal (const FbInstr *a, const FbInstr *b)
{
  int ia = 0, ib = 0;
  for (;;)
    {
      while (ia < a->n_attrs && ignored_attr (&a->attrs[ia]))
        ia++;
      while (ib < b->n_attrs && ignored_attr (&b->attrs[ib]))
        ib++;
      if (ia == a->n_attrs || ib == b->n_attrs)
        return ia == a->n_attrs && ib == b->n_attrs;
      if (!fb_attr_equal (&a->attrs[ia], &b->attrs[ib]))
        return FALSE;
      ia++;
      ib++;
    }
}

static gboolean
instr_equal (gconstpointer pa, gconstpointer pb)
{
  const FbInstr *a = pa, *b = pb;
  if (a->opcode != b->opcode || a->n_operands != b->n_operands || !fb_shape_equal (a->shape, b->shape))
    return FALSE;
  for (int k = 0; k < a->n_operands; k++)
    if (a->operands[k] != b->operands[k])
      return FALSE;
  if ((a->literal == NULL) != (b->literal == NULL) || (a->literal && !fb_literal_equal (a->literal, b->literal)))
    return FALSE;
  if (g_strcmp0 (a->opcode_suffix, b->opcode_suffix) != 0)
    return FALSE;
  return attrs_equal (a, b);
}

static gboolean
never_merge (const FbInstr *i, GHashTable *memo)
{
  if (i->opcode == FB_OP_PARAMETER || fb_opcode_category (i->opcode) == FB_CAT_RNG
      || _fb_instr_has_side_effect_deep (i, memo))
    return TRUE;
  if (i->opcode == FB_OP_CONSTANT && (i->literal_elided || i->literal == NULL))
    return TRUE;
  return FALSE;
}

static gboolean
cse_run (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error)
{
  g_autoptr (GHashTable) memo = g_hash_table_new (NULL, NULL);
  *changed = FALSE;
  for (int c = 0; c < module->n_comps; c++)
    {
      g_autoptr (GHashTable) seen = g_hash_table_new (instr_hash, instr_equal);
      /* The provenance a kept instruction takes over, merged once at the
       * end: a constant that thousands of copies merge into would
       * otherwise copy its growing list at every merge. */
      g_autoptr (GHashTable) taken = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_array_unref);
      FbInstr *next;
      for (FbInstr *i = module->comps[c]->first; i; i = next)
        {
          next = i->next;
          if (never_merge (i, memo))
            {
              if (i->opcode != FB_OP_PARAMETER && i->opcode != FB_OP_CONSTANT)
                {
                  FbInstr *twin = g_hash_table_lookup (seen, i);
                  if (twin == NULL)
                    g_hash_table_add (seen, i);   /* only to notice its twins */
                  else
                    {
                      FbInstr *both[2] = { twin, i };
                      fb_pass_decide (ctx, FB_DECISION_REFUSED, "side-effect", 2, both,
                                      "did not merge %%%s into %%%s: %s has side effects or is random, each "
                                      "one must run", i->name, twin->name, fb_opcode_name (i->opcode));
                    }
                }
              continue;
            }
          FbInstr *twin = g_hash_table_lookup (seen, i);
          if (twin == NULL)
            {
              g_hash_table_add (seen, i);
              continue;
            }
          FbInstr *both[2] = { i, twin };
          if (i->opcode == FB_OP_CONSTANT)
            fb_pass_decide (ctx, FB_DECISION_REWRITTEN, "duplicate", 2, both,
                            "merged %%%s into %%%s: the same constant value", i->name, twin->name);
          else
            fb_pass_decide (ctx, FB_DECISION_REWRITTEN, "duplicate", 2, both,
                            "merged %%%s into %%%s: the same %s of the same operands", i->name, twin->name,
                            fb_opcode_name (i->opcode));
          GArray *ids = g_hash_table_lookup (taken, twin);
          if (ids == NULL)
            {
              ids = g_array_new (FALSE, FALSE, sizeof (int64_t));
              g_hash_table_insert (taken, twin, ids);
            }
          g_array_append_vals (ids, i->prov, i->n_prov);
          fb_instr_replace_all_uses (i, twin);
          _fb_pass_remove_if_dead (i, NULL);
          *changed = TRUE;
        }
      /* Each kept instruction on its own: the order does not matter. */
      GHashTableIter it;
      gpointer twin, ids;
      g_hash_table_iter_init (&it, taken);
      while (g_hash_table_iter_next (&it, &twin, &ids))
        fb_instr_add_prov (twin, (int) ((GArray *) ids)->len, (const int64_t *) ((GArray *) ids)->data);
    }
  return TRUE;
}

const FbPass fb_pass_cse = {
  "cse",
  "common subexpression elimination: compute each distinct value once",
  "Finds instructions that compute exactly the same thing: the same operation on the same operands "
  "with the same attributes and result shape, or constants with the same value. Only the first one "
  "is kept; every use of a later copy reads the first instead. Because instructions are visited in "
  "order, merging the operands of two expressions lets the expressions themselves merge next, so a "
  "whole duplicated subgraph collapses in one sweep. Random numbers, host transfers and operations "
  "with side effects are never merged: two rng calls are meant to give different numbers.",
  cse_run,
};
