/* SPDX-License-Identifier: MIT
 *
 * Deep clone of a module into a fresh arena (how a pass snapshot is taken),
 * and structural equality (how round trips are checked). Equality compares
 * what the text says: names, shapes with layouts, operands, attributes,
 * literals, header; it ignores ids and provenance, which text does not carry.
 */
#include <string.h>

#include "fb-ir.h"

static FbDims
dims_copy (FbArena *arena, FbDims d)
{
  FbDims c = { d.n, NULL };
  c.v = fb_arena_new0 (arena, int64_t, MAX (d.n, 1));
  if (d.n > 0)
    memcpy (c.v, d.v, sizeof (int64_t) * d.n);
  return c;
}

static void
attr_copy (FbArena *arena, FbAttr *dst, const FbAttr *src, GHashTable *comp_map)
{
  *dst = *src;
  dst->name = src->key == FB_A_RAW_KEY ? fb_arena_strdup (arena, src->name) : src->name;
  switch (src->kind)
    {
    case FB_AV_STRING:
    case FB_AV_IDENT:
    case FB_AV_RAW:
      dst->v.s = fb_arena_strdup (arena, src->v.s);
      break;
    case FB_AV_DIMS:
      dst->v.dims = dims_copy (arena, src->v.dims);
      break;
    case FB_AV_SLICE:
      dst->v.slice.d = fb_arena_memdup (arena, src->v.slice.d, sizeof (FbSliceDim) * MAX (src->v.slice.n, 1));
      break;
    case FB_AV_PADDING:
      dst->v.pad.d = fb_arena_memdup (arena, src->v.pad.d, sizeof (FbPadDim) * MAX (src->v.pad.n, 1));
      break;
    case FB_AV_WINDOW:
      dst->v.window.d = fb_arena_memdup (arena, src->v.window.d, sizeof (FbWindowDim) * MAX (src->v.window.n, 1));
      break;
    case FB_AV_DIM_LABELS:
      {
        int n = MAX (src->v.conv.n_spatial, 1);
        dst->v.conv.in_spatial = fb_arena_memdup (arena, src->v.conv.in_spatial, sizeof (int64_t) * n);
        dst->v.conv.k_spatial = fb_arena_memdup (arena, src->v.conv.k_spatial, sizeof (int64_t) * n);
        dst->v.conv.out_spatial = fb_arena_memdup (arena, src->v.conv.out_spatial, sizeof (int64_t) * n);
        break;
      }
    case FB_AV_COMP:
    case FB_AV_COMPS:
      dst->v.comps.c = fb_arena_new0 (arena, FbComputation *, MAX (src->v.comps.n, 1));
      for (int i = 0; i < src->v.comps.n; i++)
        dst->v.comps.c[i] = g_hash_table_lookup (comp_map, src->v.comps.c[i]);
      break;
    default:
      break;
    }
}

static FbAlias *
aliases_copy (FbArena *arena, const FbAlias *src, int n)
{
  if (n == 0)
    return NULL;
  FbAlias *a = fb_arena_new0 (arena, FbAlias, n);
  for (int i = 0; i < n; i++)
    {
      a[i].output_index = dims_copy (arena, src[i].output_index);
      a[i].param_number = src[i].param_number;
      a[i].param_index = dims_copy (arena, src[i].param_index);
      a[i].kind = fb_arena_strdup (arena, src[i].kind);
    }
  return a;
}

FbModule *
fb_module_clone (FbModule *module)
{
  FbModule *m = fb_module_new (module->name);
  FbArena *arena = m->arena;
  g_autoptr (GHashTable) comp_map = g_hash_table_new (NULL, NULL);
  g_autoptr (GHashTable) instr_map = g_hash_table_new (NULL, NULL);

  m->source_path = fb_arena_strdup (arena, module->source_path);
  m->next_id = module->next_id;
  m->n_aliases = module->n_aliases;
  m->aliases = aliases_copy (arena, module->aliases, module->n_aliases);
  m->n_donors = module->n_donors;
  m->donors = aliases_copy (arena, module->donors, module->n_donors);
  m->entry_layout_result = fb_shape_copy (arena, module->entry_layout_result);
  m->n_entry_layout_params = module->n_entry_layout_params;
  if (module->n_entry_layout_params > 0)
    {
      m->entry_layout_params = fb_arena_new0 (arena, FbShape *, module->n_entry_layout_params);
      for (int i = 0; i < module->n_entry_layout_params; i++)
        m->entry_layout_params[i] = fb_shape_copy (arena, module->entry_layout_params[i]);
    }
  m->is_scheduled = module->is_scheduled;
  m->n_header_attrs = module->n_header_attrs;
  if (module->n_header_attrs > 0)
    {
      m->header_attrs = fb_arena_new0 (arena, FbModuleAttr, module->n_header_attrs);
      for (int i = 0; i < module->n_header_attrs; i++)
        {
          m->header_attrs[i].key = fb_arena_strdup (arena, module->header_attrs[i].key);
          m->header_attrs[i].value = fb_arena_strdup (arena, module->header_attrs[i].value);
        }
    }
  m->stack_tables = fb_arena_strdup (arena, module->stack_tables);
  m->n_elided = module->n_elided;

  for (int c = 0; c < module->n_comps; c++)
    {
      FbComputation *src = module->comps[c];
      FbComputation *dst = fb_module_add_computation (m, src->name);
      dst->is_entry = src->is_entry;
      dst->is_fusion = src->is_fusion;
      dst->has_signature = src->has_signature;
      dst->execution_thread = fb_arena_strdup (arena, src->execution_thread);
      dst->loc = src->loc;
      g_hash_table_insert (comp_map, src, dst);
      if (module->entry == src)
        m->entry = dst;
    }

  for (int c = 0; c < module->n_comps; c++)
    {
      FbComputation *src = module->comps[c];
      FbComputation *dst = m->comps[c];
      dst->n_params = src->n_params;
      if (src->n_params > 0)
        dst->params = fb_arena_new0 (arena, FbInstr *, src->n_params);
      for (FbInstr *si = src->first; si; si = si->next)
        {
          FbInstr *di = fb_arena_new0 (arena, FbInstr, 1);
          di->name = fb_arena_strdup (arena, si->name);
          di->id = si->id;
          di->opcode = si->opcode;
          di->shape = fb_shape_copy (arena, si->shape);
          di->parent = dst;
          di->prev = dst->last;
          if (dst->last)
            dst->last->next = di;
          else
            dst->first = di;
          dst->last = di;
          dst->n_instrs++;
          di->parameter_number = si->parameter_number;
          di->literal = fb_literal_copy (arena, si->literal);
          di->literal_elided = si->literal_elided;
          di->opcode_suffix = fb_arena_strdup (arena, si->opcode_suffix);
          di->n_prov = si->n_prov;
          di->prov = fb_arena_memdup (arena, si->prov, sizeof (int64_t) * MAX (si->n_prov, 1));
          di->loc = si->loc;
          di->n_attrs = di->attrs_cap = si->n_attrs;
          if (si->n_attrs > 0)
            {
              di->attrs = fb_arena_new0 (arena, FbAttr, si->n_attrs);
              for (int a = 0; a < si->n_attrs; a++)
                attr_copy (arena, &di->attrs[a], &si->attrs[a], comp_map);
            }
          g_hash_table_insert (instr_map, si, di);
          if (src->root == si)
            dst->root = di;
          for (int p = 0; p < src->n_params; p++)
            if (src->params[p] == si)
              dst->params[p] = di;
        }
    }

  /* Operands and users, now that every instruction has its copy. */
  for (int c = 0; c < module->n_comps; c++)
    for (FbInstr *si = module->comps[c]->first; si; si = si->next)
      {
        FbInstr *di = g_hash_table_lookup (instr_map, si);
        di->n_operands = si->n_operands;
        di->operands_unique = si->operands_unique;
        if (si->n_operands > 0)
          {
            di->operands = fb_arena_new0 (arena, FbInstr *, si->n_operands);
            for (int k = 0; k < si->n_operands; k++)
              di->operands[k] = g_hash_table_lookup (instr_map, si->operands[k]);
          }
        di->n_users = di->users_cap = si->n_users;
        if (si->n_users > 0)
          {
            di->users = fb_arena_new0 (arena, FbInstr *, si->n_users);
            for (int k = 0; k < si->n_users; k++)
              di->users[k] = g_hash_table_lookup (instr_map, si->users[k]);
          }
      }
  return m;
}

/* ------------------------------------------------------------- equality */

#define DIFF(...) G_STMT_START { if (why) g_string_append_printf (why, __VA_ARGS__); return FALSE; } G_STMT_END

static gboolean
dims_eq (FbDims a, FbDims b)
{
  return a.n == b.n && (a.n == 0 || memcmp (a.v, b.v, sizeof (int64_t) * a.n) == 0);
}

gboolean
fb_attr_equal (const FbAttr *a, const FbAttr *b)
{
  if (a->key != b->key || a->kind != b->kind || strcmp (a->name, b->name) != 0)
    return FALSE;
  switch (a->kind)
    {
    case FB_AV_INT:
    case FB_AV_BOOL:
      return a->v.i == b->v.i;
    case FB_AV_FLOAT:
      return memcmp (&a->v.f, &b->v.f, sizeof (double)) == 0;
    case FB_AV_STRING:
    case FB_AV_IDENT:
    case FB_AV_RAW:
      return g_strcmp0 (a->v.s, b->v.s) == 0;
    case FB_AV_DIMS:
      return dims_eq (a->v.dims, b->v.dims);
    case FB_AV_SLICE:
      return a->v.slice.n == b->v.slice.n
             && (a->v.slice.n == 0 || memcmp (a->v.slice.d, b->v.slice.d, sizeof (FbSliceDim) * a->v.slice.n) == 0);
    case FB_AV_PADDING:
      return a->v.pad.n == b->v.pad.n
             && (a->v.pad.n == 0 || memcmp (a->v.pad.d, b->v.pad.d, sizeof (FbPadDim) * a->v.pad.n) == 0);
    case FB_AV_WINDOW:
      if (a->v.window.n != b->v.window.n)
        return FALSE;
      for (int i = 0; i < a->v.window.n; i++)
        {
          const FbWindowDim *x = &a->v.window.d[i], *y = &b->v.window.d[i];
          if (x->size != y->size || x->stride != y->stride || x->pad_lo != y->pad_lo || x->pad_hi != y->pad_hi
              || x->lhs_dilate != y->lhs_dilate || x->rhs_dilate != y->rhs_dilate || !x->reversal != !y->reversal)
            return FALSE;
        }
      return TRUE;
    case FB_AV_DIM_LABELS:
      {
        const FbConvDims *x = &a->v.conv, *y = &b->v.conv;
        if (x->n_spatial != y->n_spatial || x->in_batch != y->in_batch || x->in_feature != y->in_feature
            || x->k_in != y->k_in || x->k_out != y->k_out || x->out_batch != y->out_batch
            || x->out_feature != y->out_feature)
          return FALSE;
        gsize n = sizeof (int64_t) * x->n_spatial;
        return n == 0 || (memcmp (x->in_spatial, y->in_spatial, n) == 0 && memcmp (x->k_spatial, y->k_spatial, n) == 0
                          && memcmp (x->out_spatial, y->out_spatial, n) == 0);
      }
    case FB_AV_COMP:
    case FB_AV_COMPS:
      if (a->v.comps.n != b->v.comps.n || !a->v.comps.braced != !b->v.comps.braced)
        return FALSE;
      for (int i = 0; i < a->v.comps.n; i++)
        if ((a->v.comps.c[i] == NULL) != (b->v.comps.c[i] == NULL)
            || (a->v.comps.c[i] && strcmp (a->v.comps.c[i]->name, b->v.comps.c[i]->name) != 0))
          return FALSE;
      return TRUE;
    }
  return FALSE;
}

static gboolean
aliases_eq (const FbAlias *a, const FbAlias *b, int n)
{
  for (int i = 0; i < n; i++)
    if (!dims_eq (a[i].output_index, b[i].output_index) || a[i].param_number != b[i].param_number
        || !dims_eq (a[i].param_index, b[i].param_index) || g_strcmp0 (a[i].kind, b[i].kind) != 0)
      return FALSE;
  return TRUE;
}

static gboolean
instr_eq (const FbInstr *a, const FbInstr *b, GString *why)
{
  if (strcmp (a->name, b->name) != 0)
    DIFF ("instruction %s is %s in the other module", a->name, b->name);
  if (a->opcode != b->opcode)
    DIFF ("%%%s: opcode %s vs %s", a->name, fb_opcode_name (a->opcode), fb_opcode_name (b->opcode));
  if (!fb_shape_equal (a->shape, b->shape))
    {
      g_autofree char *sa = fb_shape_to_string (a->shape);
      g_autofree char *sb = fb_shape_to_string (b->shape);
      DIFF ("%%%s: shape %s vs %s", a->name, sa, sb);
    }
  if (a->n_operands != b->n_operands)
    DIFF ("%%%s: %d vs %d operands", a->name, a->n_operands, b->n_operands);
  for (int i = 0; i < a->n_operands; i++)
    if (strcmp (a->operands[i]->name, b->operands[i]->name) != 0)
      DIFF ("%%%s: operand %d is %%%s vs %%%s", a->name, i, a->operands[i]->name, b->operands[i]->name);
  if (a->opcode == FB_OP_PARAMETER && a->parameter_number != b->parameter_number)
    DIFF ("%%%s: parameter number %" G_GINT64_FORMAT " vs %" G_GINT64_FORMAT, a->name,
          a->parameter_number, b->parameter_number);
  if (!a->literal_elided != !b->literal_elided)
    DIFF ("%%%s: elided constant on one side only", a->name);
  if ((a->literal == NULL) != (b->literal == NULL) || (a->literal && !fb_literal_equal (a->literal, b->literal)))
    DIFF ("%%%s: literal values differ", a->name);
  if (g_strcmp0 (a->opcode_suffix, b->opcode_suffix) != 0)
    DIFF ("%%%s: raw operand text differs", a->name);
  if (a->n_attrs != b->n_attrs)
    DIFF ("%%%s: %d vs %d attributes", a->name, a->n_attrs, b->n_attrs);
  for (int i = 0; i < a->n_attrs; i++)
    if (!fb_attr_equal (&a->attrs[i], &b->attrs[i]))
      DIFF ("%%%s: attribute %s differs", a->name, a->attrs[i].name);
  return TRUE;
}

gboolean
fb_module_equal (FbModule *a, FbModule *b, GString *why)
{
  if (strcmp (a->name, b->name) != 0)
    DIFF ("module name %s vs %s", a->name, b->name);
  if (a->is_scheduled != b->is_scheduled)
    DIFF ("is_scheduled differs");
  if (a->n_aliases != b->n_aliases || !aliases_eq (a->aliases, b->aliases, a->n_aliases))
    DIFF ("input_output_alias differs");
  if (a->n_donors != b->n_donors || !aliases_eq (a->donors, b->donors, a->n_donors))
    DIFF ("buffer_donor differs");
  if ((a->entry_layout_result == NULL) != (b->entry_layout_result == NULL)
      || (a->entry_layout_result && !fb_shape_equal (a->entry_layout_result, b->entry_layout_result))
      || a->n_entry_layout_params != b->n_entry_layout_params)
    DIFF ("entry_computation_layout differs");
  for (int i = 0; i < a->n_entry_layout_params; i++)
    if (!fb_shape_equal (a->entry_layout_params[i], b->entry_layout_params[i]))
      DIFF ("entry_computation_layout parameter %d differs", i);
  if (a->n_header_attrs != b->n_header_attrs)
    DIFF ("%d vs %d header attributes", a->n_header_attrs, b->n_header_attrs);
  for (int i = 0; i < a->n_header_attrs; i++)
    if (strcmp (a->header_attrs[i].key, b->header_attrs[i].key) != 0
        || g_strcmp0 (a->header_attrs[i].value, b->header_attrs[i].value) != 0)
      DIFF ("header attribute %s differs", a->header_attrs[i].key);
  if (g_strcmp0 (a->stack_tables, b->stack_tables) != 0)
    DIFF ("stack frame tables differ");
  if (a->n_comps != b->n_comps)
    DIFF ("%d vs %d computations", a->n_comps, b->n_comps);
  if ((a->entry == NULL) != (b->entry == NULL) || (a->entry && strcmp (a->entry->name, b->entry->name) != 0))
    DIFF ("entry computation differs");

  /* Computations may be printed in another order: match them by name. */
  for (int i = 0; i < a->n_comps; i++)
    {
      FbComputation *ca = a->comps[i];
      FbComputation *cb = fb_module_find_computation (b, ca->name);
      if (cb == NULL)
        DIFF ("computation %s is missing", ca->name);
      if (ca->n_instrs != cb->n_instrs)
        DIFF ("computation %s: %d vs %d instructions", ca->name, ca->n_instrs, cb->n_instrs);
      if ((ca->root == NULL) != (cb->root == NULL) || (ca->root && strcmp (ca->root->name, cb->root->name) != 0))
        DIFF ("computation %s: root differs", ca->name);
      if (g_strcmp0 (ca->execution_thread, cb->execution_thread) != 0)
        DIFF ("computation %s: execution thread differs", ca->name);
      for (FbInstr *x = ca->first, *y = cb->first; x && y; x = x->next, y = y->next)
        if (!instr_eq (x, y, why))
          return FALSE;
    }
  return TRUE;
}
