/* SPDX-License-Identifier: MIT
 *
 * The verifier: checks that a module is well formed before a pass, a backend
 * or the user relies on it. It looks at structure first (an entry, a root in
 * every computation, parameters numbered 0..n-1, operands and callees that
 * exist, no cycles), then compares every instruction's declared shape with
 * the one shape inference gives, then the module header (input/output
 * aliasing, buffer donors, entry computation layout).
 *
 * The first violation is returned as an FB_ERROR_VERIFY error located at the
 * instruction: `file:line:column: %name: message`. Inferred shapes go to a
 * scratch arena, so verifying after every pass does not grow the module.
 */
#include <stdarg.h>
#include <string.h>

#include "fb-verify.h"

static gboolean G_GNUC_PRINTF (5, 6)
    fail_at (GError **error, const FbModule *m, FbLoc loc, const char *who, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  const char *path = m->source_path ? m->source_path : "<input>";

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (loc.line > 0)
    g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "%s:%d:%d: %s: %s", path, loc.line, loc.column, who, msg);
  else if (m->source_path)
    g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "%s: %s: %s", path, who, msg);
  else
    g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "%s: %s", who, msg);
  return FALSE;
}

static gboolean G_GNUC_PRINTF (4, 5)
    fail_instr (GError **error, const FbModule *m, const FbInstr *in, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  g_autofree char *who = g_strconcat ("%", in->name, NULL);

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return fail_at (error, m, in->loc, who, "%s", msg);
}

static gboolean G_GNUC_PRINTF (4, 5)
    fail_comp (GError **error, const FbModule *m, const FbComputation *comp, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  g_autofree char *who = g_strconcat ("computation ", comp->name, NULL);

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return fail_at (error, m, comp->loc, who, "%s", msg);
}

static char *
shape_text (const FbShape *s)
{
  GString *out = g_string_new (NULL);
  if (s)
    fb_shape_print (out, s, FALSE);
  else
    g_string_append (out, "(none)");
  return g_string_free (out, FALSE);
}

/* Same element types and dimensions (an unbounded dimension matches any
 * size); layouts and dynamic markers are not compared. */
static gboolean
shapes_match (const FbShape *a, const FbShape *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  if (a->type != b->type)
    return FALSE;
  if (a->type == FB_TUPLE)
    {
      if (a->n_elems != b->n_elems)
        return FALSE;
      for (int i = 0; i < a->n_elems; i++)
        if (!shapes_match (a->elems[i], b->elems[i]))
          return FALSE;
      return TRUE;
    }
  if (!fb_elem_type_is_array (a->type))
    return TRUE;
  if (a->rank != b->rank)
    return FALSE;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i] && a->dims[i] >= 0 && b->dims[i] >= 0)
      return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------ structure */

static gboolean
check_params (FbModule *module, FbComputation *comp, GError **error)
{
  int n = 0;
  for (FbInstr *in = comp->first; in; in = in->next)
    n += in->opcode == FB_OP_PARAMETER;
  g_autofree FbInstr **seen = g_new0 (FbInstr *, MAX (n, 1));
  for (FbInstr *in = comp->first; in; in = in->next)
    {
      if (in->opcode != FB_OP_PARAMETER)
        continue;
      int64_t k = in->parameter_number;
      if (k < 0 || k >= n)
        return fail_instr (error, module, in,
                           "parameter number %" G_GINT64_FORMAT
                           " leaves a gap: %s has %d parameter%s, numbered 0 to %d",
                           k, comp->name, n, n == 1 ? "" : "s", n - 1);
      if (seen[k])
        return fail_instr (error, module, in, "parameter number %" G_GINT64_FORMAT " is also used by %%%s", k,
                           seen[k]->name);
      seen[k] = in;
    }
  if (comp->n_params != n)
    return fail_comp (error, module, comp, "lists %d parameters but has %d parameter instructions", comp->n_params,
                      n);
  for (int i = 0; i < n; i++)
    if (comp->params == NULL || comp->params[i] != seen[i])
      return fail_comp (error, module, comp, "parameter %d is not %%%s in the parameter list", i, seen[i]->name);
  return TRUE;
}

static gboolean
check_links (FbModule *module, FbComputation *comp, GHashTable *comps, GError **error)
{
  if (comp->root == NULL)
    return fail_comp (error, module, comp, "has no root instruction");
  if (comp->root->parent != comp)
    return fail_comp (error, module, comp, "its root %%%s belongs to another computation", comp->root->name);
  for (FbInstr *in = comp->first; in; in = in->next)
    {
      if (in->parent != comp)
        return fail_instr (error, module, in, "is listed in %s but belongs to another computation", comp->name);
      if (in->shape == NULL)
        return fail_instr (error, module, in, "has no shape");
      for (int i = 0; i < in->n_operands; i++)
        {
          FbInstr *o = in->operands[i];
          if (o == NULL)
            return fail_instr (error, module, in, "operand %d does not exist", i);
          if (o->parent != comp)
            return fail_instr (error, module, in, "operand %d %%%s belongs to computation %s, not %s", i, o->name,
                               o->parent ? o->parent->name : "(none)", comp->name);
        }
      for (int a = 0; a < in->n_attrs; a++)
        {
          const FbAttr *attr = &in->attrs[a];
          if (attr->kind != FB_AV_COMP && attr->kind != FB_AV_COMPS)
            continue;
          for (int k = 0; k < attr->v.comps.n; k++)
            {
              FbComputation *callee = attr->v.comps.c[k];
              if (callee == NULL || !g_hash_table_contains (comps, callee))
                return fail_instr (error, module, in, "%s refers to a computation that is not in the module",
                                   attr->name);
              if (callee == comp)
                return fail_instr (error, module, in, "%s calls its own computation %s", attr->name, comp->name);
              if (callee->is_entry)
                return fail_instr (error, module, in, "%s calls the entry computation %s", attr->name, callee->name);
            }
        }
    }
  return TRUE;
}

typedef struct {
  FbInstr *instr;
  int next;
} Frame;

/* Visit state of each instruction during the cycle search: 0 not seen, 1 on
 * the stack, 2 done. Indexed by instruction id when the ids are unique and
 * dense enough (as the parser and builder make them), else a hash table. */
typedef struct {
  guint8     *by_id;
  int64_t     n_ids;
  GHashTable *by_ptr;
} VisitState;

static void
visit_state_init (VisitState *vs, FbModule *module)
{
  int64_t max_id = 0, n = 0;
  gboolean usable = TRUE;
  for (int c = 0; c < module->n_comps && usable; c++)
    for (FbInstr *in = module->comps[c]->first; in; in = in->next)
      {
        n++;
        if (in->id <= 0)
          {
            usable = FALSE;
            break;
          }
        max_id = MAX (max_id, in->id);
      }
  vs->by_id = NULL;
  vs->by_ptr = NULL;
  vs->n_ids = max_id + 1;
  if (usable && max_id <= 4 * n + 1024)
    {
      /* Every id once: two instructions sharing an id would share a state. */
      vs->by_id = g_new0 (guint8, vs->n_ids);
      for (int c = 0; c < module->n_comps && usable; c++)
        for (FbInstr *in = module->comps[c]->first; in && usable; in = in->next)
          usable = vs->by_id[in->id]++ == 0;
      if (usable)
        memset (vs->by_id, 0, vs->n_ids);
      else
        g_clear_pointer (&vs->by_id, g_free);
    }
  if (vs->by_id == NULL)
    vs->by_ptr = g_hash_table_new (NULL, NULL);
}

static void
visit_state_clear (VisitState *vs)
{
  g_clear_pointer (&vs->by_id, g_free);
  g_clear_pointer (&vs->by_ptr, g_hash_table_unref);
}

static int
visit_get (VisitState *vs, FbInstr *in)
{
  if (vs->by_id)
    return vs->by_id[in->id];
  return GPOINTER_TO_INT (g_hash_table_lookup (vs->by_ptr, in));
}

static void
visit_set (VisitState *vs, FbInstr *in, int st)
{
  if (vs->by_id)
    vs->by_id[in->id] = st;
  else
    g_hash_table_insert (vs->by_ptr, in, GINT_TO_POINTER (st));
}

/* A growable stack of frames, kept across computations. */
typedef struct {
  Frame *f;
  int    n, cap;
} FrameStack;

static void
frame_push (FrameStack *st, FbInstr *instr)
{
  if (st->n == st->cap)
    {
      st->cap = MAX (64, st->cap * 2);
      st->f = g_renew (Frame, st->f, st->cap);
    }
  st->f[st->n++] = (Frame) { instr, 0 };
}

/* Depth-first over operands with an explicit stack, so that long chains do
 * not exhaust the C stack. Operands are known to be in @comp. */
static gboolean
check_acyclic (FbModule *module, FbComputation *comp, VisitState *state, FrameStack *stack, GError **error)
{
  for (FbInstr *start = comp->first; start; start = start->next)
    {
      if (visit_get (state, start) != 0)
        continue;
      stack->n = 0;
      frame_push (stack, start);
      visit_set (state, start, 1);
      while (stack->n > 0)
        {
          Frame *f = &stack->f[stack->n - 1];
          if (f->next >= f->instr->n_operands)
            {
              visit_set (state, f->instr, 2);
              stack->n--;
              continue;
            }
          FbInstr *user = f->instr;
          FbInstr *o = user->operands[f->next++];
          int st = visit_get (state, o);
          if (st == 1)
            return fail_instr (error, module, o, "is part of a cycle: it depends on itself through %%%s",
                               user->name);
          if (st == 0)
            {
              visit_set (state, o, 1);
              frame_push (stack, o);
            }
        }
    }
  return TRUE;
}

/* A computation may not call itself through other computations. Call
 * chains are short, so plain recursion is fine here. */
static gboolean
visit_callees (FbModule *module, FbComputation *comp, GHashTable *state, GError **error)
{
  g_hash_table_insert (state, comp, GINT_TO_POINTER (1));
  for (FbInstr *in = comp->first; in; in = in->next)
    {
      int n = fb_instr_called (in, NULL, 0);
      if (n == 0)
        continue;
      FbComputation *few[8];
      g_autofree FbComputation **many = n > (int) G_N_ELEMENTS (few) ? g_new (FbComputation *, n) : NULL;
      FbComputation **callees = many ? many : few;
      fb_instr_called (in, callees, n);
      for (int k = 0; k < n; k++)
        {
          int st = GPOINTER_TO_INT (g_hash_table_lookup (state, callees[k]));
          if (st == 1)
            return fail_instr (error, module, in,
                               "calls %s, which is already on the call path: computations form a cycle",
                               callees[k]->name);
          if (st == 0 && !visit_callees (module, callees[k], state, error))
            return FALSE;
        }
    }
  g_hash_table_insert (state, comp, GINT_TO_POINTER (2));
  return TRUE;
}

static gboolean
check_call_graph (FbModule *module, GError **error)
{
  g_autoptr (GHashTable) state = g_hash_table_new (NULL, NULL);
  for (int i = 0; i < module->n_comps; i++)
    if (!g_hash_table_contains (state, module->comps[i]) && !visit_callees (module, module->comps[i], state, error))
      return FALSE;
  return TRUE;
}

/* --------------------------------------------------------------- shapes */

static gboolean
check_shapes (FbModule *module, FbComputation *comp, FbArena *scratch, GError **error)
{
  for (FbInstr *in = comp->first; in; in = in->next)
    {
      FbShape *want = fb_infer_shape_in (in, scratch, error);
      if (want == NULL)
        return FALSE;
      if (!shapes_match (want, in->shape))
        {
          g_autofree char *have = shape_text (in->shape);
          g_autofree char *need = shape_text (want);
          return fail_instr (error, module, in, "declared shape %s, but %s of its operands gives %s", have,
                             fb_opcode_name (in->opcode), need);
        }
      /* The inferred shape is done with: reuse the same memory for the next. */
      fb_arena_reset (scratch);
    }
  return TRUE;
}

/* ---------------------------------------------------------------- header */

static const FbShape *
subshape (const FbShape *s, const FbDims *index)
{
  for (int i = 0; s && i < index->n; i++)
    s = s->type == FB_TUPLE && index->v[i] >= 0 && index->v[i] < s->n_elems ? s->elems[index->v[i]] : NULL;
  return s;
}

static char *
index_text (const FbDims *index)
{
  GString *out = g_string_new ("{");
  for (int i = 0; i < index->n; i++)
    g_string_append_printf (out, "%s%" G_GINT64_FORMAT, i ? ", " : "", index->v[i]);
  g_string_append_c (out, '}');
  return g_string_free (out, FALSE);
}

static gboolean
check_param_ref (FbModule *module, const FbAlias *a, const char *what, const FbShape **out, GError **error)
{
  FbComputation *e = module->entry;
  FbLoc none = { 0, 0 };
  g_autofree char *pi = index_text (&a->param_index);
  if (a->param_number < 0 || a->param_number >= e->n_params)
    return fail_at (error, module, none, what, "parameter %" G_GINT64_FORMAT " does not exist; %s has %d",
                    a->param_number, e->name, e->n_params);
  const FbShape *p = subshape (e->params[a->param_number]->shape, &a->param_index);
  if (p == NULL)
    return fail_at (error, module, none, what, "parameter %" G_GINT64_FORMAT " has no element %s", a->param_number,
                    pi);
  *out = p;
  return TRUE;
}

static gboolean
check_header (FbModule *module, GError **error)
{
  FbComputation *e = module->entry;
  FbLoc none = { 0, 0 };

  for (int i = 0; i < module->n_aliases; i++)
    {
      const FbAlias *a = &module->aliases[i];
      g_autofree char *oi = index_text (&a->output_index);
      const FbShape *o = subshape (e->root->shape, &a->output_index), *p;
      if (o == NULL)
        {
          g_autofree char *rs = shape_text (e->root->shape);
          return fail_at (error, module, none, "input_output_alias", "output %s does not exist in the result %s", oi,
                          rs);
        }
      if (!check_param_ref (module, a, "input_output_alias", &p, error))
        return FALSE;
      if (!shapes_match (o, p))
        {
          g_autofree char *os = shape_text (o), *ps = shape_text (p);
          return fail_at (error, module, none, "input_output_alias",
                          "output %s is %s but parameter %" G_GINT64_FORMAT " is %s", oi, os, a->param_number, ps);
        }
    }
  for (int i = 0; i < module->n_donors; i++)
    {
      const FbShape *p;
      if (!check_param_ref (module, &module->donors[i], "buffer_donor", &p, error))
        return FALSE;
    }
  if (module->entry_layout_result || module->n_entry_layout_params > 0)
    {
      if (module->n_entry_layout_params != e->n_params)
        return fail_at (error, module, none, "entry_computation_layout", "lists %d parameters but %s has %d",
                        module->n_entry_layout_params, e->name, e->n_params);
      for (int i = 0; i < e->n_params; i++)
        if (!shapes_match (module->entry_layout_params[i], e->params[i]->shape))
          {
            g_autofree char *ls = shape_text (module->entry_layout_params[i]), *ps = shape_text (e->params[i]->shape);
            return fail_at (error, module, none, "entry_computation_layout", "parameter %d is %s but %%%s is %s", i,
                            ls, e->params[i]->name, ps);
          }
      if (module->entry_layout_result && !shapes_match (module->entry_layout_result, e->root->shape))
        {
          g_autofree char *ls = shape_text (module->entry_layout_result), *rs = shape_text (e->root->shape);
          return fail_at (error, module, none, "entry_computation_layout", "result is %s but the root %%%s is %s", ls,
                          e->root->name, rs);
        }
    }
  return TRUE;
}

gboolean
fb_verify (FbModule *module, GError **error)
{
  g_return_val_if_fail (module != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  FbLoc none = { 0, 0 };
  g_autoptr (GHashTable) comps = g_hash_table_new (NULL, NULL);
  const char *mname = module->name ? module->name : "module";

  if (module->entry == NULL)
    return fail_at (error, module, none, mname, "has no entry computation");
  for (int i = 0; i < module->n_comps; i++)
    g_hash_table_add (comps, module->comps[i]);
  if (!g_hash_table_contains (comps, module->entry))
    return fail_at (error, module, none, mname, "its entry computation is not in the module");

  for (int i = 0; i < module->n_comps; i++)
    {
      FbComputation *comp = module->comps[i];
      if (comp->is_entry != (comp == module->entry))
        return fail_comp (error, module, comp, "is marked entry but the module's entry is %s", module->entry->name);
      if (!check_links (module, comp, comps, error) || !check_params (module, comp, error))
        return FALSE;
    }
  {
    VisitState state;
    FrameStack stack = { NULL, 0, 0 };
    gboolean acyclic = TRUE;
    visit_state_init (&state, module);
    for (int i = 0; acyclic && i < module->n_comps; i++)
      acyclic = check_acyclic (module, module->comps[i], &state, &stack, error);
    visit_state_clear (&state);
    g_free (stack.f);
    if (!acyclic)
      return FALSE;
  }
  if (!check_call_graph (module, error))
    return FALSE;

  FbArena *scratch = fb_arena_new ();
  gboolean ok = TRUE;
  for (int i = 0; ok && i < module->n_comps; i++)
    ok = check_shapes (module, module->comps[i], scratch, error);
  fb_arena_free (scratch);
  return ok && check_header (module, error);
}
