/* SPDX-License-Identifier: MIT
 *
 * assign-layouts: every array shape without a layout gets the default
 * row-major layout {rank-1, ..., 0}; layouts the module already has are
 * kept. When an operand of a dot or convolution gets its layout here, a
 * note says where its contracting (or feature) dimension ended up, since
 * that decides whether the kernel reads it contiguously.
 *
 * The one hard constraint is the entry_computation_layout: a parameter
 * arrives, and the result must leave, in the layout it names. Where that
 * differs from what the computation uses, a copy converts between the two;
 * nowhere else is a copy inserted.
 */
#include <string.h>

#include "fb-passes-private.h"

#define MAX_OPERAND_NOTES 200

/* Gives every array leaf of @shape without a layout the default; TRUE if
 * anything changed. */
static gboolean
default_layouts (FbArena *arena, FbShape *shape)
{
  if (shape == NULL)
    return FALSE;
  if (shape->type == FB_TUPLE)
    {
      gboolean any = FALSE;
      for (int i = 0; i < shape->n_elems; i++)
        any |= default_layouts (arena, shape->elems[i]);
      return any;
    }
  if (!fb_elem_type_is_array (shape->type) || shape->layout != NULL)
    return FALSE;
  fb_shape_set_default_layout (arena, shape);
  return TRUE;
}

static gboolean
layout_equal (const FbLayout *a, const FbLayout *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  if (a->n != b->n || g_strcmp0 (a->extra, b->extra) != 0)
    return FALSE;
  return memcmp (a->minor_to_major, b->minor_to_major, sizeof (int64_t) * a->n) == 0;
}

static void
print_layout (GString *s, const FbLayout *l)
{
  g_string_append_c (s, '{');
  for (int i = 0; l && i < l->n; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? "," : "", l->minor_to_major[i]);
  g_string_append_c (s, '}');
}

/* Position of dimension @dim in minor-to-major order (0 = most minor). */
static int
minor_rank (const FbLayout *l, int64_t dim)
{
  for (int i = 0; l && i < l->n; i++)
    if (l->minor_to_major[i] == dim)
      return i;
  return -1;
}

static void
note_operand (FbPassContext *ctx, FbInstr *user, int o, int *n_notes)
{
  FbInstr *op = user->operands[o];
  if (!fb_shape_is_array (op->shape) || op->shape->rank == 0)
    return;
  if ((*n_notes)++ >= MAX_OPERAND_NOTES)
    return;
  g_autoptr (GString) l = g_string_new (NULL);
  print_layout (l, op->shape->layout);
  const char *why = "";
  g_autofree char *detail = NULL;
  if (user->opcode == FB_OP_DOT)
    {
      const FbDims *c = fb_instr_dims (user, o == 0 ? FB_A_LHS_CONTRACTING_DIMS : FB_A_RHS_CONTRACTING_DIMS);
      if (c && c->n > 0)
        {
          int r = minor_rank (op->shape->layout, c->v[0]);
          detail = g_strdup_printf ("contracting dimension %" G_GINT64_FORMAT " is %s", c->v[0],
                                    r == 0 ? "the most minor: each dot product reads contiguous memory"
                                           : "major: each dot product reads with a stride");
        }
      why = "operand of a dot";
    }
  else
    {
      const FbAttr *a = fb_instr_get_attr (user, FB_A_DIM_LABELS);
      if (a && a->kind == FB_AV_DIM_LABELS && o <= 1)
        {
          int64_t f = o == 0 ? a->v.conv.in_feature : a->v.conv.k_in;
          int r = minor_rank (op->shape->layout, f);
          detail = g_strdup_printf ("%s dimension %" G_GINT64_FORMAT " is %s", o == 0 ? "feature" : "input feature",
                                    f, r == 0 ? "the most minor" : "not the most minor");
        }
      why = "operand of a convolution";
    }
  fb_pass_decide (ctx, FB_DECISION_NOTE, "operand-layout", 2, (FbInstr *[]) { op, user },
                  "%%%s (%s %d of %%%s) gets the row-major layout %s%s%s",
                  op->name, why, o, user->name, l->str, detail ? ": " : "", detail ? detail : "");
}

/* ----------------------------------------- entry_computation_layout */

/* Parameter @p must arrive in @want: the parameter takes that layout and a
 * copy gives its users the layout they had. */
static void
constrain_parameter (FbModule *m, FbInstr *p, const FbShape *want, FbPassContext *ctx)
{
  FbShape *inner = fb_shape_copy (m->arena, p->shape);
  p->shape = fb_shape_copy (m->arena, want);
  FbInstr *copy = fb_instr_new (p->parent, p->next, FB_OP_COPY, inner, 1, &p, NULL);
  fb_instr_add_prov (copy, p->n_prov, p->prov);
  /* Every former user of p now reads the copy. */
  g_autofree FbInstr **users = g_memdup2 (p->users, sizeof (FbInstr *) * p->n_users);
  int n_users = p->n_users;
  for (int u = 0; u < n_users; u++)
    {
      if (users[u] == copy)
        continue;
      for (int o = 0; o < users[u]->n_operands; o++)
        if (users[u]->operands[o] == p)
          fb_instr_set_operand (users[u], o, copy);
    }
  if (p->parent->root == p)
    p->parent->root = copy;
  g_autoptr (GString) a = g_string_new (NULL), b = g_string_new (NULL);
  fb_shape_print (a, want, TRUE);
  fb_shape_print (b, inner, TRUE);
  fb_pass_decide (ctx, FB_DECISION_REWRITTEN, "entry-layout-copy", 2, (FbInstr *[]) { p, copy },
                  "parameter %%%s arrives as %s (entry_computation_layout) but is used as %s: "
                  "inserted %%%s to convert", p->name, a->str, b->str, copy->name);
}

/* The value @v must leave as @want: returns a copy in that layout. */
static FbInstr *
constrain_output (FbModule *m, FbInstr *v, const FbShape *want, FbPassContext *ctx)
{
  FbInstr *copy = fb_instr_new (v->parent, NULL, FB_OP_COPY, fb_shape_copy (m->arena, want), 1, &v, NULL);
  fb_instr_add_prov (copy, v->n_prov, v->prov);
  g_autoptr (GString) a = g_string_new (NULL), b = g_string_new (NULL);
  fb_shape_print (a, want, TRUE);
  fb_shape_print (b, v->shape, TRUE);
  fb_pass_decide (ctx, FB_DECISION_REWRITTEN, "entry-layout-copy", 2, (FbInstr *[]) { v, copy },
                  "the result %%%s is %s but entry_computation_layout asks for %s: inserted %%%s to convert",
                  v->name, b->str, a->str, copy->name);
  return copy;
}

static gboolean
array_layout_differs (const FbShape *have, const FbShape *want)
{
  return want && fb_shape_is_array (want) && want->layout && fb_shape_is_array (have)
         && fb_shape_compatible (have, want) && !layout_equal (have->layout, want->layout);
}

static gboolean
apply_entry_layout (FbModule *m, FbPassContext *ctx)
{
  FbComputation *entry = m->entry;
  gboolean changed = FALSE;
  for (int i = 0; i < m->n_entry_layout_params && i < entry->n_params; i++)
    {
      FbInstr *p = entry->params[i];
      if (p && array_layout_differs (p->shape, m->entry_layout_params[i]))
        {
          constrain_parameter (m, p, m->entry_layout_params[i], ctx);
          changed = TRUE;
        }
    }
  const FbShape *want = m->entry_layout_result;
  FbInstr *root = entry->root;
  if (want == NULL || root == NULL)
    return changed;
  if (array_layout_differs (root->shape, want))
    {
      entry->root = constrain_output (m, root, want, ctx);
      return TRUE;
    }
  if (want->type == FB_TUPLE && root->opcode == FB_OP_TUPLE && root->n_operands == want->n_elems
      && root->shape->type == FB_TUPLE && root->shape->n_elems == want->n_elems)
    {
      gboolean any = FALSE;
      for (int k = 0; k < root->n_operands; k++)
        if (array_layout_differs (root->operands[k]->shape, want->elems[k]))
          {
            if (!any)
              root->shape = fb_shape_copy (m->arena, root->shape);
            any = TRUE;
            FbInstr *copy = constrain_output (m, root->operands[k], want->elems[k], ctx);
            fb_instr_move_before (copy, root);
            fb_instr_set_operand (root, k, copy);
            root->shape->elems[k] = copy->shape;
          }
      changed |= any;
    }
  return changed;
}

static gboolean
run (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error)
{
  *changed = FALSE;
  int n_defaulted = 0, n_notes = 0;
  for (int c = 0; c < module->n_comps; c++)
    {
      FbComputation *comp = module->comps[c];
      for (FbInstr *in = comp->first; in; in = in->next)
        if (default_layouts (module->arena, in->shape))
          n_defaulted++;
    }
  /* Notes once every shape has its layout; an operand may be shared by many
   * dots, so it is noted once. */
  if (n_defaulted > 0)
    {
      g_autoptr (GHashTable) noted = g_hash_table_new (NULL, NULL);
      for (int c = 0; c < module->n_comps; c++)
        for (FbInstr *in = module->comps[c]->first; in; in = in->next)
          {
            if (in->opcode != FB_OP_DOT && in->opcode != FB_OP_CONVOLUTION)
              continue;
            for (int o = 0; o < MIN (in->n_operands, 2); o++)
              if (g_hash_table_add (noted, in->operands[o]))
                note_operand (ctx, in, o, &n_notes);
          }
    }
  if (n_notes > MAX_OPERAND_NOTES)
    fb_pass_decide (ctx, FB_DECISION_NOTE, "operand-layout", 0, NULL,
                    "%d more dot and convolution operands got the row-major layout (not listed)",
                    n_notes - MAX_OPERAND_NOTES);

  gboolean copies = module->entry ? apply_entry_layout (module, ctx) : FALSE;
  if (n_defaulted > 0)
    fb_pass_decide (ctx, FB_DECISION_NOTE, "default-layout", 0, NULL,
                    "%d instructions got the default row-major layout; the others kept the layout they had",
                    n_defaulted);
  *changed = n_defaulted > 0 || copies;
  return TRUE;
}

const FbPass fb_pass_assign_layouts = {
  "assign-layouts",
  "give every array a memory layout",
  "An array's layout says in which order its dimensions are laid out in "
  "memory (minor-to-major: {1,0} is row-major for a matrix). XLA dumps "
  "usually carry layouts; modules written by hand or by a front end may "
  "not. This pass gives every array without a layout the row-major one, "
  "keeps the layouts that are already there, and inserts a copy only where "
  "the entry computation layout forces a parameter or the result into a "
  "layout different from the one the computation uses. For a matrix "
  "product, the layout decides whether the contracted dimension is "
  "contiguous in memory, so the pass notes it for every dot operand.",
  run,
};
