/* SPDX-License-Identifier: MIT
 *
 * Diff of two snapshots through provenance. Every instruction stands for the
 * original instructions listed in its provenance, so an id present after and
 * not before was added, one present before and not after was removed, one
 * that moved into a fused computation was fused, and one whose instruction
 * changed opcode, shape, operands or attributes was changed.
 */
#include <string.h>

#include "fb-pass.h"

typedef struct {
  FbInstr *instr;
  gboolean in_fusion;
} Where;

static GHashTable *
index_module (FbModule *m)
{
  GHashTable *t = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL, g_free);
  for (int c = 0; c < m->n_comps; c++)
    {
      FbComputation *comp = m->comps[c];
      for (FbInstr *i = comp->first; i; i = i->next)
        for (int k = 0; k < i->n_prov; k++)
          {
            /* The first top-level home wins over a fused copy. */
            Where *old = g_hash_table_lookup (t, &i->prov[k]);
            if (old && !old->in_fusion)
              continue;
            if (old && comp->is_fusion)
              continue;
            Where *w = g_new0 (Where, 1);
            w->instr = i;
            w->in_fusion = comp->is_fusion;
            g_hash_table_replace (t, &i->prov[k], w);
          }
    }
  return t;
}

static gboolean
same_instr (const FbInstr *a, const FbInstr *b)
{
  if (a->opcode != b->opcode || !fb_shape_compatible (a->shape, b->shape) || a->n_operands != b->n_operands
      || a->n_attrs != b->n_attrs)
    return FALSE;
  for (int i = 0; i < a->n_operands; i++)
    if (strcmp (a->operands[i]->name, b->operands[i]->name) != 0)
      return FALSE;
  return TRUE;
}

static void
sorted_append (GArray *arr, int64_t id)
{
  g_array_append_val (arr, id);
}

static int
cmp_i64 (gconstpointer a, gconstpointer b)
{
  int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
  return x < y ? -1 : x > y;
}

FbDiff *
fb_diff_modules (FbModule *before, FbModule *after)
{
  FbDiff *d = g_new0 (FbDiff, 1);
  d->added = g_array_new (FALSE, FALSE, sizeof (int64_t));
  d->removed = g_array_new (FALSE, FALSE, sizeof (int64_t));
  d->changed = g_array_new (FALSE, FALSE, sizeof (int64_t));
  d->fused = g_array_new (FALSE, FALSE, sizeof (int64_t));
  g_autoptr (GHashTable) b = index_module (before);
  g_autoptr (GHashTable) a = index_module (after);
  GHashTableIter it;
  gpointer key, value;

  g_hash_table_iter_init (&it, a);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      Where *wa = value, *wb = g_hash_table_lookup (b, key);
      int64_t id = *(int64_t *) key;
      if (wb == NULL)
        sorted_append (d->added, id);
      else if ((wa->in_fusion && !wb->in_fusion)
               || (wa->instr->opcode == FB_OP_FUSION && wb->instr->opcode != FB_OP_FUSION))
        sorted_append (d->fused, id);
      else if (!same_instr (wa->instr, wb->instr))
        sorted_append (d->changed, id);
    }
  g_hash_table_iter_init (&it, b);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (!g_hash_table_contains (a, key))
      sorted_append (d->removed, *(int64_t *) key);
  g_array_sort (d->added, cmp_i64);
  g_array_sort (d->removed, cmp_i64);
  g_array_sort (d->changed, cmp_i64);
  g_array_sort (d->fused, cmp_i64);
  return d;
}

void
fb_diff_free (FbDiff *diff)
{
  if (diff == NULL)
    return;
  g_array_unref (diff->added);
  g_array_unref (diff->removed);
  g_array_unref (diff->changed);
  g_array_unref (diff->fused);
  g_free (diff);
}
