/* SPDX-License-Identifier: MIT
 *
 * What a fusion pass keeps on the side while it runs, and above all the
 * provenance of the fusions it builds and grows. A fusion's provenance is
 * the union of the members' it took over, in order (a producer copied in
 * that lives on outside keeps its own); taking that union each time a
 * fusion grows by one producer would copy ever longer lists, so during a
 * pass the lists live in growable heap arrays with marks on the ids they
 * hold, and the pass's end hands them to the module's arena. The same
 * state caches the computations called more than once and counts the
 * names in use, so that naming a new computation or instruction is not a
 * search.
 */
#include <string.h>

#include "fb-fusion.h"
#include "fb-fusion-private.h"

/* ---------------------------------------------------------- id marks */

/* Marks on provenance ids, for taking unions of provenance lists without
 * a set per list: ids are small positive numbers (fb_instr_new counts them
 * up from 1), so a mark is a number stored at the id's index, and a new
 * round of marking forgets every earlier mark at once. The rare id out of
 * that range goes to a small hash set for the round. */
#define ID_MARKS_DENSE_MAX ((int64_t) 1 << 24)

typedef struct {
  guint32    *round_of;        /* per id: the last round that marked it */
  int64_t     n;               /* ids covered by round_of */
  guint32     round;
  GHashTable *others;          /* ids out of range marked this round, or NULL */
} IdMarks;

static void
id_marks_clear (IdMarks *marks)
{
  g_clear_pointer (&marks->round_of, g_free);
  g_clear_pointer (&marks->others, g_hash_table_unref);
  marks->n = 0;
  marks->round = 0;
}

/* Forgets every mark. */
static void
id_marks_begin (IdMarks *marks)
{
  if (++marks->round == 0)
    {
      memset (marks->round_of, 0, sizeof (guint32) * marks->n);
      marks->round = 1;
    }
  if (marks->others != NULL)
    g_hash_table_remove_all (marks->others);
}

static gboolean id_marks_add_slow (IdMarks *marks, int64_t id);

/* Marks @id; FALSE when it was marked already in this round. */
static inline gboolean
id_marks_add (IdMarks *marks, int64_t id)
{
  if (G_LIKELY (id >= 0 && id < marks->n))
    {
      if (marks->round_of[id] == marks->round)
        return FALSE;
      marks->round_of[id] = marks->round;
      return TRUE;
    }
  return id_marks_add_slow (marks, id);
}

static gboolean
id_marks_add_slow (IdMarks *marks, int64_t id)
{
  if (id < 0 || id >= ID_MARKS_DENSE_MAX)
    {
      if (marks->others == NULL)
        marks->others = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
      if (g_hash_table_contains (marks->others, &id))
        return FALSE;
      g_hash_table_add (marks->others, g_memdup2 (&id, sizeof id));
      return TRUE;
    }
  if (id >= marks->n)
    {
      int64_t n = MIN (MAX (MAX (marks->n * 2, id + 1), 4096), ID_MARKS_DENSE_MAX);
      marks->round_of = g_renew (guint32, marks->round_of, n);
      memset (marks->round_of + marks->n, 0, sizeof (guint32) * (n - marks->n));
      marks->n = n;
    }
  if (marks->round_of[id] == marks->round)
    return FALSE;
  marks->round_of[id] = marks->round;
  return TRUE;
}

/* The provenance of a fusion built or grown during a pass: an array with
 * room to append in place, and the marking round in which its ids were
 * last all marked (still current when no other union was taken since).
 * The array is heap memory, so that growing does not leave copies behind
 * in the module's arena; the pass's end gives it to the arena to free
 * (prov_of_settle). */
typedef struct {
  int64_t    *ids;             /* the array the fusion's prov points at, g_malloc'd */
  int         n, cap;
  guint32     round;
} ProvOf;

static void
prov_of_free (ProvOf *po)
{
  g_free (po->ids);
  g_free (po);
}

/* Hands @po's array, the provenance of @fusion, over to the module's arena
 * at its final size; a fusion no longer in a computation keeps none. */
static void
prov_of_settle (FbInstr *fusion, ProvOf *po)
{
  if (fusion->prov != po->ids)
    return;
  if (fusion->parent == NULL)
    {
      fusion->prov = NULL;
      fusion->n_prov = 0;
      return;
    }
  po->ids = g_renew (int64_t, po->ids, MAX (po->n, 1));
  fusion->prov = po->ids;
  fusion->n_prov = po->n;
  fb_arena_add_cleanup (fusion->parent->module->arena, g_free, g_steal_pointer (&po->ids));
}

/* -------------------------------------------------------- pass state */

/* The pass state with what only this file uses. */
typedef struct {
  PassState   st;
  IdMarks     marks;
  gboolean    settled;   /* provenance moved into the arena by _fb_fusion_pass_end */
  FbModule   *module;
  GHashTable *dead;      /* computations removed during the pass, still listed */
  GHashTable *slots;     /* instruction of many operands -> (operand -> slot + 1) */
} PassStateFull;

static void
pass_state_free (PassState *st)
{
  g_hash_table_unref (st->shared);
  g_hash_table_unref (st->comp_names);
  g_hash_table_unref (st->names);
  g_hash_table_unref (st->reduces);
  if (!((PassStateFull *) st)->settled)
    {
      /* A pass that did not end may have left fusions reading these. */
      GHashTableIter it;
      gpointer po;
      g_hash_table_iter_init (&it, st->provs);
      while (g_hash_table_iter_next (&it, NULL, &po))
        ((ProvOf *) po)->ids = NULL;
    }
  g_hash_table_unref (st->provs);
  g_hash_table_unref (((PassStateFull *) st)->dead);
  g_hash_table_unref (((PassStateFull *) st)->slots);
  id_marks_clear (&((PassStateFull *) st)->marks);
  g_free (st);
}

static GPrivate pass_state = G_PRIVATE_INIT ((GDestroyNotify) pass_state_free);

PassState *
_fb_fusion_pass_state (void)
{
  return g_private_get (&pass_state);
}

static GHashTable *
find_shared (FbModule *m)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  GHashTable *shared = g_hash_table_new (NULL, NULL);
  for (int c = 0; c < m->n_comps; c++)
    for (FbInstr *i = m->comps[c]->first; i; i = i->next)
      if (i->n_attrs > 0)
        {
          FbComputation *called[8];
          int n = fb_instr_called (i, called, G_N_ELEMENTS (called));
          for (int k = 0; k < MIN (n, (int) G_N_ELEMENTS (called)); k++)
            if (called[k] && !g_hash_table_add (seen, called[k]))
              g_hash_table_add (shared, called[k]);
        }
  return shared;
}

/* Counts @name (a string that outlives the table) in @names. */
void
_fb_fusion_name_count (GHashTable *names, const char *name, int delta)
{
  int n = GPOINTER_TO_INT (g_hash_table_lookup (names, name)) + delta;
  if (n > 0)
    g_hash_table_replace (names, (gpointer) name, GINT_TO_POINTER (n));
  else
    g_hash_table_remove (names, name);
}

static void
comp_name_count (PassState *st, const char *name, int delta)
{
  _fb_fusion_name_count (st->comp_names, name, delta);
}

/* The computations removed during the pass leave the module's list, the
 * others keep their order. */
static void
drop_dead_computations (PassStateFull *st)
{
  if (g_hash_table_size (st->dead) == 0)
    return;
  FbModule *m = st->module;
  int kept = 0;
  for (int c = 0; c < m->n_comps; c++)
    if (!g_hash_table_contains (st->dead, m->comps[c]))
      m->comps[kept++] = m->comps[c];
  m->n_comps = kept;
  g_hash_table_remove_all (st->dead);
}

void
_fb_fusion_pass_begin (FbModule *module)
{
  PassStateFull *full = g_new0 (PassStateFull, 1);
  PassState *st = &full->st;
  st->shared = find_shared (module);
  st->comp_names = g_hash_table_new (g_str_hash, g_str_equal);
  st->names = g_hash_table_new (g_str_hash, g_str_equal);
  st->reduces = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  st->provs = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) prov_of_free);
  full->module = module;
  full->dead = g_hash_table_new (NULL, NULL);
  full->slots = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_hash_table_unref);
  for (int c = 0; c < module->n_comps; c++)
    comp_name_count (st, module->comps[c]->name, +1);
  g_private_replace (&pass_state, st);
}

void
_fb_fusion_pass_end (void)
{
  PassState *st = g_private_get (&pass_state);
  if (st != NULL)
    {
      GHashTableIter it;
      gpointer fusion, po;
      g_hash_table_iter_init (&it, st->provs);
      while (g_hash_table_iter_next (&it, &fusion, &po))
        prov_of_settle (fusion, po);
      ((PassStateFull *) st)->settled = TRUE;
      drop_dead_computations ((PassStateFull *) st);
    }
  g_private_replace (&pass_state, NULL);
}

/* Removes @comp from @module's list; during a pass, at its end, all at
 * once: taking each one out of the middle of the list would shift the
 * rest each time, and a pass removes thousands. */
void
_fb_fusion_remove_computation (FbModule *module, FbComputation *comp)
{
  PassStateFull *st = g_private_get (&pass_state);
  if (st == NULL || st->module != module || comp == module->entry)
    {
      fb_module_remove_computation (module, comp);
      return;
    }
  g_hash_table_add (st->dead, comp);
}

/* Is there a computation named @name? */
static gboolean
comp_name_taken (FbModule *module, const char *name)
{
  PassState *st = g_private_get (&pass_state);
  if (st != NULL)
    return g_hash_table_contains (st->comp_names, name);
  return fb_module_find_computation (module, name) != NULL;
}

/* Renames @comp (or with @name NULL, forgets it, when it is removed). */
void
_fb_fusion_comp_renamed (FbComputation *comp, const char *name)
{
  PassState *st = g_private_get (&pass_state);
  if (st != NULL && comp->name != NULL)
    comp_name_count (st, comp->name, -1);
  if (name == NULL)
    return;
  comp->name = (char *) name;
  if (st != NULL)
    comp_name_count (st, comp->name, +1);
}

gboolean
_fb_fusion_owns_computation (const FbInstr *fusion)
{
  FbComputation *f = fb_instr_comp (fusion, FB_A_CALLS);
  if (f == NULL)
    return FALSE;
  PassState *st = g_private_get (&pass_state);
  if (st != NULL)
    return !g_hash_table_contains (st->shared, f);
  g_autoptr (GHashTable) once = find_shared (fusion->parent->module);
  return !g_hash_table_contains (once, f);
}

/* ------------------------------------------------------------- names */

/* `fused_computation` with @fusion_name's suffix, or with `.N` added when
 * a computation of @module bears that name already. */
char *
_fb_fusion_fused_comp_name (FbModule *module, const char *fusion_name)
{
  const char *suffix = g_str_has_prefix (fusion_name, "fusion") ? fusion_name + strlen ("fusion") : "";
  g_autofree char *base = g_strconcat ("fused_computation", suffix, NULL);
  if (!comp_name_taken (module, base))
    return g_steal_pointer (&base);
  for (int n = 1;; n++)
    {
      char *t = g_strdup_printf ("%s.%d", base, n);
      if (!comp_name_taken (module, t))
        return t;
      g_free (t);
    }
}

/* The names of the instructions of @comp, with counts, kept in the pass
 * state while a consumer grows in place; NULL outside a pass. */
static GHashTable *
fused_names (FbComputation *comp)
{
  PassState *st = g_private_get (&pass_state);
  if (st == NULL)
    return NULL;
  if (st->named != comp || st->named_count != comp->n_instrs)
    {
      g_hash_table_remove_all (st->names);
      for (FbInstr *i = comp->first; i; i = i->next)
        _fb_fusion_name_count (st->names, i->name, +1);
      st->named = comp;
      st->named_count = comp->n_instrs;
    }
  return st->names;
}

/* @instr was just added to @comp (@delta +1) or is about to leave it (-1). */
void
_fb_fusion_fused_name_changed (FbComputation *comp, FbInstr *instr, int delta)
{
  PassState *st = g_private_get (&pass_state);
  if (st == NULL || st->named != comp)
    return;
  int before = delta > 0 ? comp->n_instrs - 1 : comp->n_instrs;
  if (st->named_count != before)
    {
      st->named = NULL;   /* changed behind our back: rebuilt when next asked */
      return;
    }
  _fb_fusion_name_count (st->names, instr->name, delta);
  st->named_count = before + delta;
}

static gboolean
name_taken (FbComputation *comp, const char *name)
{
  GHashTable *names = fused_names (comp);
  if (names != NULL)
    return g_hash_table_contains (names, name);
  for (FbInstr *i = comp->first; i; i = i->next)
    if (strcmp (i->name, name) == 0)
      return TRUE;
  return FALSE;
}

char *
_fb_fusion_free_name (FbComputation *comp, const char *name)
{
  if (!name_taken (comp, name))
    return g_strdup (name);
  for (int n = 1;; n++)
    {
      char *t = g_strdup_printf ("%s.%d", name, n);
      if (!name_taken (comp, t))
        return t;
      g_free (t);
    }
}

/* -------------------------------------------------------- provenance */

/* @fusion left its computation during the pass: the heap array its
 * provenance had is released now, so that later fusions reuse it, as
 * _fb_fusion_pass_end would have at the end. */
void
_fb_fusion_prov_forget (FbInstr *fusion)
{
  PassState *st = g_private_get (&pass_state);
  ProvOf *po = st != NULL ? g_hash_table_lookup (st->provs, fusion) : NULL;
  if (po == NULL)
    return;
  prov_of_settle (fusion, po);
  g_hash_table_remove (st->provs, fusion);
}

/* Gives @fusion, whose provenance is empty, the distinct ids of the
 * provenance of @members of @plan (get-tuple-elements of members aside),
 * in order, as fb_instr_add_prov of all of them at once does. */
void
_fb_fusion_prov_union (FbInstr *fusion, FbFusionPlan *plan, GPtrArray *members)
{
  PassState *st = g_private_get (&pass_state);
  gsize n = 0;
  for (guint k = 0; k < members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (members, k);
      if (!(m->opcode == FB_OP_GET_TUPLE_ELEMENT && _fb_fusion_plan_is_inner_gte (plan, m)))
        n += m->n_prov;
    }
  if (st == NULL || n == 0 || n > G_MAXINT / 2)
    {
      g_autoptr (GArray) prov = g_array_new (FALSE, FALSE, sizeof (int64_t));
      for (guint k = 0; k < members->len; k++)
        {
          FbInstr *m = g_ptr_array_index (members, k);
          if (!(m->opcode == FB_OP_GET_TUPLE_ELEMENT && _fb_fusion_plan_is_inner_gte (plan, m)))
            g_array_append_vals (prov, m->prov, m->n_prov);
        }
      fb_instr_add_prov (fusion, prov->len, (const int64_t *) prov->data);
      return;
    }
  IdMarks *marks = &((PassStateFull *) st)->marks;
  int64_t *merged = g_new (int64_t, n);
  int total = 0;
  id_marks_begin (marks);
  for (guint k = 0; k < members->len; k++)
    {
      FbInstr *m = g_ptr_array_index (members, k);
      if (m->opcode == FB_OP_GET_TUPLE_ELEMENT && _fb_fusion_plan_is_inner_gte (plan, m))
        continue;
      for (int i = 0; i < m->n_prov; i++)
        if (id_marks_add (marks, m->prov[i]))
          merged[total++] = m->prov[i];
    }
  fusion->prov = merged;
  fusion->n_prov = total;
  /* The fusion may go on absorbing producers (_fb_fusion_prov_absorb):
   * the room left and the marks just made serve it. */
  ProvOf *po = g_new0 (ProvOf, 1);
  po->ids = merged;
  po->n = total;
  po->cap = (int) n;
  po->round = marks->round;
  g_hash_table_insert (st->provs, fusion, po);
}

/* Adds the ids of @p's provenance that @fusion lacks, in order, as
 * fb_instr_add_prov does; during a pass without copying the whole list
 * each time a fusion grows by one producer. */
void
_fb_fusion_prov_absorb (FbInstr *fusion, const FbInstr *p)
{
  PassState *st = g_private_get (&pass_state);
  if (st == NULL)
    {
      fb_instr_add_prov (fusion, p->n_prov, p->prov);
      return;
    }
  IdMarks *marks = &((PassStateFull *) st)->marks;
  ProvOf *po = g_hash_table_lookup (st->provs, fusion);
  if (po != NULL && (po->ids != fusion->prov || po->n != fusion->n_prov))
    {
      g_hash_table_remove (st->provs, fusion);   /* changed elsewhere: unused now */
      po = NULL;
    }
  if (po == NULL)
    {
      po = g_new0 (ProvOf, 1);
      po->n = fusion->n_prov;
      po->cap = MAX (16, fusion->n_prov * 2);
      po->ids = g_new (int64_t, po->cap);
      memcpy (po->ids, fusion->prov, sizeof (int64_t) * fusion->n_prov);
      fusion->prov = po->ids;
      g_hash_table_insert (st->provs, fusion, po);
    }
  if (po->round == 0 || po->round != marks->round)
    {
      id_marks_begin (marks);
      for (int k = 0; k < po->n; k++)
        id_marks_add (marks, po->ids[k]);
      po->round = marks->round;
    }
  for (int i = 0; i < p->n_prov; i++)
    {
      if (!id_marks_add (marks, p->prov[i]))
        continue;
      if (po->n == po->cap)
        {
          po->cap *= 2;
          po->ids = g_renew (int64_t, po->ids, po->cap);
        }
      po->ids[po->n++] = p->prov[i];
    }
  fusion->prov = po->ids;
  fusion->n_prov = po->n;
}

/* ------------------------------------------------------------- slots */

/* Below this many operands, a scan finds a slot as fast as a table. */
#define SLOTS_MIN_OPERANDS 32

static GHashTable *
slots_index (GHashTable *slots, FbInstr *user)
{
  GHashTable *index = g_hash_table_new (NULL, NULL);
  for (int i = user->n_operands - 1; i >= 0; i--)
    if (user->operands[i] != NULL)
      g_hash_table_insert (index, user->operands[i], GINT_TO_POINTER (i + 1));
  g_hash_table_insert (slots, user, index);
  return index;
}

/* Points @user's slot that reads @from at @to, when @user's operands are
 * known unique: FALSE when it cannot tell, and the caller scans. During a
 * pass, a user of many operands (a root tuple of thousands) keeps a table
 * from operand to slot, checked against the slot before it is trusted and
 * made again when found wrong, so that rewiring one of its operands is
 * not a scan of all of them. */
gboolean
_fb_fusion_replace_operand (FbInstr *user, FbInstr *from, FbInstr *to)
{
  PassStateFull *st = g_private_get (&pass_state);
  if (st == NULL || !user->operands_unique || user->n_operands < SLOTS_MIN_OPERANDS)
    return FALSE;
  GHashTable *index = g_hash_table_lookup (st->slots, user);
  if (index == NULL)
    index = slots_index (st->slots, user);
  int i = GPOINTER_TO_INT (g_hash_table_lookup (index, from)) - 1;
  if (i < 0 || i >= user->n_operands || user->operands[i] != from)
    {
      index = slots_index (st->slots, user);
      i = GPOINTER_TO_INT (g_hash_table_lookup (index, from)) - 1;
      if (i < 0)
        return FALSE;
    }
  fb_instr_set_operand (user, i, to);
  g_hash_table_remove (index, from);
  if (to != NULL)
    g_hash_table_insert (index, to, GINT_TO_POINTER (i + 1));
  return TRUE;
}
