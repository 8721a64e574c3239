/* SPDX-License-Identifier: MIT
 *
 * The builder: appends instructions to a computation with their attributes
 * and metadata, and lets the verifier's shape inference give each its shape,
 * so shapes follow one set of rules everywhere. The first error is kept
 * (sticky) and turns every later call into a no-op returning NULL.
 */
#include <math.h>
#include <string.h>

#include "fb-builder.h"
#include "fb-verify.h"

struct _FbBuilder {
  FbModule      *module;
  FbComputation *comp;
  FbBuilder     *parent;     /* nested builders report errors upwards */
  GError        *error;      /* the first error; sticky */
  GPtrArray     *scopes;     /* name scope, outermost first */
  FbInstr       *root;
  int            params_cap;
};

static gboolean check_ops (FbBuilder *b, const char *what, int n, FbInstr *const *ops);

/* ------------------------------------------------------------- lifetime */

static char *
unique_comp_name (FbModule *module, const char *name)
{
  if (fb_module_find_computation (module, name) == NULL)
    return g_strdup (name);
  for (int i = 1;; i++)
    {
      char *n = g_strdup_printf ("%s.%d", name, i);
      if (fb_module_find_computation (module, n) == NULL)
        return n;
      g_free (n);
    }
}

FbBuilder *
fb_builder_new (FbModule *module, const char *name)
{
  g_return_val_if_fail (module != NULL, NULL);
  g_autofree char *n = unique_comp_name (module, name ? name : "computation");
  FbComputation *comp = fb_module_add_computation (module, n);
  return fb_builder_new_for (comp);
}

FbBuilder *
fb_builder_new_for (FbComputation *comp)
{
  g_return_val_if_fail (comp != NULL, NULL);
  FbBuilder *b = g_new0 (FbBuilder, 1);
  b->module = comp->module;
  b->comp = comp;
  b->scopes = g_ptr_array_new_with_free_func (g_free);
  b->params_cap = comp->n_params;
  return b;
}

FbBuilder *
fb_builder_new_nested (FbBuilder *parent, const char *name)
{
  g_return_val_if_fail (parent != NULL, NULL);
  FbBuilder *b = fb_builder_new (parent->module, name);
  b->parent = parent;
  if (parent->error)
    b->error = g_error_copy (parent->error);
  return b;
}

void
fb_builder_free (FbBuilder *b)
{
  if (b == NULL)
    return;
  g_clear_error (&b->error);
  g_ptr_array_unref (b->scopes);
  g_free (b);
}

FbModule *
fb_builder_get_module (FbBuilder *b)
{
  g_return_val_if_fail (b != NULL, NULL);
  return b->module;
}

FbComputation *
fb_builder_get_computation (FbBuilder *b)
{
  g_return_val_if_fail (b != NULL, NULL);
  return b->comp;
}

gboolean
fb_builder_ok (FbBuilder *b)
{
  return b != NULL && b->error == NULL;
}

const GError *
fb_builder_get_error (FbBuilder *b)
{
  g_return_val_if_fail (b != NULL, NULL);
  return b->error;
}

void
fb_builder_take_error (FbBuilder *b, GError *error)
{
  g_return_if_fail (b != NULL);
  if (error == NULL)
    return;
  for (FbBuilder *p = b->parent; p; p = p->parent)
    if (p->error == NULL)
      p->error = g_error_copy (error);
  if (b->error == NULL)
    b->error = error;
  else
    g_error_free (error);
}

void
fb_builder_set_error (FbBuilder *b, const char *fmt, ...)
{
  g_return_if_fail (b != NULL);
  if (b->error)
    return;
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fb_builder_take_error (b, g_error_new (FB_ERROR, FB_ERROR_VERIFY, "%s: %s", b->comp->name, msg));
}

void
fb_builder_push_scope (FbBuilder *b, const char *name)
{
  g_return_if_fail (b != NULL && name != NULL);
  g_ptr_array_add (b->scopes, g_strdup (name));
}

void
fb_builder_pop_scope (FbBuilder *b)
{
  g_return_if_fail (b != NULL);
  if (b->scopes->len == 0)
    {
      fb_builder_set_error (b, "name scope popped more often than pushed");
      return;
    }
  g_ptr_array_remove_index (b->scopes, b->scopes->len - 1);
}

void
fb_builder_set_root (FbBuilder *b, FbInstr *root)
{
  g_return_if_fail (b != NULL);
  if (!check_ops (b, "root", 1, &root))
    return;
  if (root->parent != b->comp)
    {
      fb_builder_set_error (b, "root %s belongs to computation %s", root->name, root->parent->name);
      return;
    }
  b->root = root;
  b->comp->root = root;
}

void
fb_builder_set_entry (FbBuilder *b)
{
  g_return_if_fail (b != NULL);
  FbModule *m = b->module;
  if (m->entry && m->entry != b->comp)
    {
      /* The old entry's signature and aliasing do not describe the new one. */
      m->entry->is_entry = FALSE;
      m->entry_layout_result = NULL;
      m->n_entry_layout_params = 0;
      m->entry_layout_params = NULL;
      m->n_aliases = 0;
      m->n_donors = 0;
    }
  m->entry = b->comp;
  b->comp->is_entry = TRUE;
}

FbComputation *
fb_builder_finish (FbBuilder *b, GError **error)
{
  g_return_val_if_fail (b != NULL, NULL);
  if (b->error == NULL && b->comp->first == NULL)
    fb_builder_set_error (b, "the computation has no instructions");
  if (b->error)
    {
      g_propagate_error (error, g_error_copy (b->error));
      return NULL;
    }
  if (b->root == NULL && b->comp->root == NULL)
    b->comp->root = b->comp->last;
  return b->comp;
}

/* ------------------------------------------------------ shared internals */

static gboolean
check_ops (FbBuilder *b, const char *what, int n, FbInstr *const *ops)
{
  if (b->error)
    return FALSE;
  for (int i = 0; i < n; i++)
    {
      if (ops[i] == NULL)
        {
          fb_builder_set_error (b, "%s: operand %d is missing", what, i);
          return FALSE;
        }
      if (ops[i]->parent != b->comp)
        {
          fb_builder_set_error (b, "%s: operand %s belongs to computation %s", what,
                                ops[i]->name, ops[i]->parent ? ops[i]->parent->name : "(none)");
          return FALSE;
        }
    }
  return TRUE;
}

static FbInstr *
begin (FbBuilder *b, FbOpcode op, const FbShape *hint, int n, FbInstr *const *ops)
{
  if (!check_ops (b, fb_opcode_name (op), n, ops))
    return NULL;
  FbShape *s = hint ? fb_shape_copy (b->module->arena, hint)
                    : fb_shape_new_scalar (b->module->arena, n > 0 && fb_shape_is_array (ops[0]->shape)
                                                             ? ops[0]->shape->type : FB_F32);
  return fb_instr_new (b->comp, NULL, op, s, n, ops, NULL);
}

static void
append_escaped (GString *out, const char *s)
{
  for (; *s; s++)
    {
      if (*s == '"' || *s == '\\')
        g_string_append_c (out, '\\');
      g_string_append_c (out, *s);
    }
}

static void
add_metadata (FbBuilder *b, FbInstr *instr)
{
  g_autoptr (GString) s = g_string_new ("{op_name=\"");
  for (guint i = 0; i < b->scopes->len; i++)
    {
      append_escaped (s, g_ptr_array_index (b->scopes, i));
      g_string_append_c (s, '/');
    }
  append_escaped (s, fb_opcode_name (instr->opcode));
  g_string_append (s, "\"}");
  FbAttr *a = fb_instr_set_attr (instr, FB_A_METADATA);
  a->v.s = fb_arena_strdup (b->module->arena, s->str);
}

static void
give_layouts (FbArena *arena, FbShape *s)
{
  if (s->type == FB_TUPLE)
    {
      for (int i = 0; i < s->n_elems; i++)
        give_layouts (arena, s->elems[i]);
      return;
    }
  /* XLA prints scalars without a layout: `f32[]`. */
  if (s->layout == NULL && s->rank > 0)
    fb_shape_set_default_layout (arena, s);
}

static FbInstr *
end (FbBuilder *b, FbInstr *instr)
{
  if (instr == NULL)
    return NULL;
  add_metadata (b, instr);
  GError *err = NULL;
  FbShape *s = fb_infer_shape (instr, &err);
  if (s == NULL)
    {
      fb_instr_remove (instr);
      fb_builder_take_error (b, err);
      return NULL;
    }
  give_layouts (b->module->arena, s);
  instr->shape = s;
  return instr;
}

/* ------------------------------------------------------- shapes, names */

FbShape *
fb_b_shape (FbBuilder *b, FbElemType type, int rank, const int64_t *dims)
{
  g_return_val_if_fail (b != NULL, NULL);
  FbShape *s = fb_shape_new_array (b->module->arena, type, rank, dims);
  give_layouts (b->module->arena, s);
  return s;
}

FbShape *
fb_b_scalar_shape (FbBuilder *b, FbElemType type)
{
  return fb_b_shape (b, type, 0, NULL);
}

static gboolean
name_taken (FbModule *m, const char *name)
{
  for (int c = 0; c < m->n_comps; c++)
    for (FbInstr *i = m->comps[c]->first; i; i = i->next)
      if (strcmp (i->name, name) == 0)
        return TRUE;
  return FALSE;
}

static char *
unique_instr_name (FbModule *m, const char *name)
{
  if (!name_taken (m, name))
    return g_strdup (name);
  for (int i = 1;; i++)
    {
      char *n = g_strdup_printf ("%s.%d", name, i);
      if (!name_taken (m, n))
        return n;
      g_free (n);
    }
}

FbInstr *
fb_b_name (FbBuilder *b, FbInstr *instr, const char *name)
{
  g_return_val_if_fail (b != NULL && name != NULL, NULL);
  if (!check_ops (b, "name", 1, &instr))
    return NULL;
  g_autofree char *n = unique_instr_name (b->module, name);
  instr->name = fb_arena_strdup (b->module->arena, n);
  if (b->module->names)
    g_hash_table_add (b->module->names, instr->name);
  return instr;
}

/* ------------------------------------------------ parameters, constants */

FbInstr *
fb_b_param (FbBuilder *b, FbShape *shape, const char *name)
{
  g_return_val_if_fail (b != NULL, NULL);
  if (b->error)
    return NULL;
  if (shape == NULL)
    {
      fb_builder_set_error (b, "parameter %s has no shape", name ? name : "");
      return NULL;
    }
  FbComputation *c = b->comp;
  FbArena *arena = b->module->arena;
  g_autofree char *n = name ? unique_instr_name (b->module, name) : NULL;
  FbShape *s = fb_shape_copy (arena, shape);
  give_layouts (arena, s);
  /* Parameters go before the first non-parameter, as XLA prints them. */
  FbInstr *before = c->first;
  while (before && before->opcode == FB_OP_PARAMETER)
    before = before->next;
  FbInstr *p = fb_instr_new (c, before, FB_OP_PARAMETER, s, 0, NULL, n);
  p->parameter_number = c->n_params;
  add_metadata (b, p);
  if (c->n_params >= b->params_cap)
    {
      int cap = MAX (8, b->params_cap * 2);
      FbInstr **np = fb_arena_new0 (arena, FbInstr *, cap);
      if (c->n_params)
        memcpy (np, c->params, sizeof (FbInstr *) * c->n_params);
      c->params = np;
      b->params_cap = cap;
    }
  c->params[c->n_params++] = p;
  return p;
}

FbInstr *
fb_b_const (FbBuilder *b, FbElemType type, double v)
{
  return fb_b_const_array (b, type, 0, NULL, &v);
}

FbInstr *
fb_b_const_f32 (FbBuilder *b, float v)
{
  return fb_b_const (b, FB_F32, v);
}

FbInstr *
fb_b_const_s32 (FbBuilder *b, int32_t v)
{
  return fb_b_const (b, FB_S32, v);
}

FbInstr *
fb_b_const_array (FbBuilder *b, FbElemType type, int rank, const int64_t *dims,
                  const double *values)
{
  g_return_val_if_fail (b != NULL && values != NULL && (rank == 0 || dims != NULL), NULL);
  if (b->error)
    return NULL;
  if (!fb_elem_type_is_array (type) || rank < 0 || rank > FB_BUILDER_MAX_RANK)
    {
      fb_builder_set_error (b, "constant: bad element type or rank");
      return NULL;
    }
  FbShape *s = fb_b_shape (b, type, rank, dims);
  FbLiteral *lit = fb_literal_new (b->module->arena, s);
  int64_t n = fb_shape_elements (s);
  for (int64_t i = 0; i < n; i++)
    {
      if (fb_elem_type_is_float (type) || fb_elem_type_kind (type) == FB_KIND_COMPLEX)
        fb_literal_set_f64 (lit, i, values[i]);
      else
        fb_literal_set_s64 (lit, i, (int64_t) values[i]);
    }
  FbInstr *c = fb_instr_new (b->comp, NULL, FB_OP_CONSTANT, s, 0, NULL, NULL);
  c->literal = lit;
  return end (b, c);
}

FbInstr *
fb_b_const_literal (FbBuilder *b, const FbLiteral *lit)
{
  g_return_val_if_fail (b != NULL && lit != NULL, NULL);
  if (b->error)
    return NULL;
  if (!fb_shape_is_array (lit->shape))
    {
      fb_builder_set_error (b, "constant: the literal is not an array");
      return NULL;
    }
  FbLiteral *l = fb_literal_copy (b->module->arena, lit);
  give_layouts (b->module->arena, l->shape);
  FbInstr *c = fb_instr_new (b->comp, NULL, FB_OP_CONSTANT, l->shape, 0, NULL, NULL);
  c->literal = l;
  return end (b, c);
}

FbInstr *
fb_b_full (FbBuilder *b, const FbShape *shape, double v)
{
  g_return_val_if_fail (b != NULL, NULL);
  if (b->error)
    return NULL;
  if (shape == NULL || !fb_shape_is_array (shape))
    {
      fb_builder_set_error (b, "full: not an array shape");
      return NULL;
    }
  FbInstr *c = fb_b_const (b, shape->type, v);
  if (shape->rank == 0)
    return c;
  return fb_b_broadcast (b, c, shape->rank, shape->dims, NULL);
}

FbInstr *
fb_b_zeros_like (FbBuilder *b, FbInstr *x)
{
  if (!check_ops (b, "zeros_like", 1, &x))
    return NULL;
  if (fb_shape_is_tuple (x->shape))
    {
      int n = x->shape->n_elems;
      g_autofree FbInstr **el = g_new0 (FbInstr *, MAX (n, 1));
      for (int i = 0; i < n; i++)
        el[i] = fb_b_full (b, x->shape->elems[i], 0);
      return fb_b_tuple (b, n, el);
    }
  return fb_b_full (b, x->shape, 0);
}

FbInstr *
fb_b_iota (FbBuilder *b, FbElemType type, int rank, const int64_t *dims, int64_t iota_dimension)
{
  g_return_val_if_fail (b != NULL, NULL);
  if (b->error)
    return NULL;
  FbShape *s = fb_b_shape (b, type, rank, dims);
  FbInstr *i = fb_instr_new (b->comp, NULL, FB_OP_IOTA, s, 0, NULL, NULL);
  fb_instr_set_int (i, FB_A_IOTA_DIMENSION, iota_dimension);
  return end (b, i);
}

/* ---------------------------------------------------------- elementwise */

FbInstr *
fb_b_unary (FbBuilder *b, FbOpcode op, FbInstr *x)
{
  g_return_val_if_fail (b != NULL, NULL);
  if (!check_ops (b, fb_opcode_name (op), 1, &x))
    return NULL;
  if (fb_opcode_arity (op) != 1 || !fb_opcode_is_elementwise (op))
    {
      fb_builder_set_error (b, "%s is not a unary elementwise opcode", fb_opcode_name (op));
      return NULL;
    }
  return end (b, begin (b, op, x->shape, 1, &x));
}

FbInstr *
fb_b_binary (FbBuilder *b, FbOpcode op, FbInstr *x, FbInstr *y)
{
  g_return_val_if_fail (b != NULL, NULL);
  FbInstr *ops[2] = { x, y };
  if (!check_ops (b, fb_opcode_name (op), 2, ops))
    return NULL;
  if (fb_opcode_arity (op) != 2 || !fb_opcode_is_elementwise (op) || op == FB_OP_COMPARE)
    {
      fb_builder_set_error (b, "%s is not a binary elementwise opcode", fb_opcode_name (op));
      return NULL;
    }
  return end (b, begin (b, op, x->shape, 2, ops));
}

FbInstr *fb_b_neg (FbBuilder *b, FbInstr *x) { return fb_b_unary (b, FB_OP_NEGATE, x); }
FbInstr *fb_b_exp (FbBuilder *b, FbInstr *x) { return fb_b_unary (b, FB_OP_EXP, x); }
FbInstr *fb_b_log (FbBuilder *b, FbInstr *x) { return fb_b_unary (b, FB_OP_LOG, x); }
FbInstr *fb_b_tanh (FbBuilder *b, FbInstr *x) { return fb_b_unary (b, FB_OP_TANH, x); }
FbInstr *fb_b_logistic (FbBuilder *b, FbInstr *x) { return fb_b_unary (b, FB_OP_LOGISTIC, x); }
FbInstr *fb_b_sqrt (FbBuilder *b, FbInstr *x) { return fb_b_unary (b, FB_OP_SQRT, x); }
FbInstr *fb_b_rsqrt (FbBuilder *b, FbInstr *x) { return fb_b_unary (b, FB_OP_RSQRT, x); }
FbInstr *fb_b_abs (FbBuilder *b, FbInstr *x) { return fb_b_unary (b, FB_OP_ABS, x); }
FbInstr *fb_b_erf (FbBuilder *b, FbInstr *x) { return fb_b_unary (b, FB_OP_ERF, x); }
FbInstr *fb_b_add (FbBuilder *b, FbInstr *x, FbInstr *y) { return fb_b_binary (b, FB_OP_ADD, x, y); }
FbInstr *fb_b_sub (FbBuilder *b, FbInstr *x, FbInstr *y) { return fb_b_binary (b, FB_OP_SUBTRACT, x, y); }
FbInstr *fb_b_mul (FbBuilder *b, FbInstr *x, FbInstr *y) { return fb_b_binary (b, FB_OP_MULTIPLY, x, y); }
FbInstr *fb_b_div (FbBuilder *b, FbInstr *x, FbInstr *y) { return fb_b_binary (b, FB_OP_DIVIDE, x, y); }
FbInstr *fb_b_max (FbBuilder *b, FbInstr *x, FbInstr *y) { return fb_b_binary (b, FB_OP_MAXIMUM, x, y); }
FbInstr *fb_b_min (FbBuilder *b, FbInstr *x, FbInstr *y) { return fb_b_binary (b, FB_OP_MINIMUM, x, y); }
FbInstr *fb_b_pow (FbBuilder *b, FbInstr *x, FbInstr *y) { return fb_b_binary (b, FB_OP_POWER, x, y); }

FbInstr *
fb_b_binary_scalar (FbBuilder *b, FbOpcode op, FbInstr *x, double v)
{
  if (!check_ops (b, fb_opcode_name (op), 1, &x))
    return NULL;
  if (!fb_shape_is_array (x->shape))
    {
      fb_builder_set_error (b, "%s: operand %s is not an array", fb_opcode_name (op), x->name);
      return NULL;
    }
  return fb_b_binary (b, op, x, fb_b_full (b, x->shape, v));
}

const char *
fb_compare_dir_name (FbCompareDir dir)
{
  static const char *const names[] = { "EQ", "NE", "LT", "LE", "GT", "GE" };
  g_return_val_if_fail ((unsigned) dir < G_N_ELEMENTS (names), "EQ");
  return names[dir];
}

FbInstr *
fb_b_compare (FbBuilder *b, FbCompareDir dir, FbInstr *x, FbInstr *y)
{
  FbInstr *ops[2] = { x, y };
  if (!check_ops (b, "compare", 2, ops))
    return NULL;
  FbShape *hint = fb_shape_copy (b->module->arena, x->shape);
  hint->type = FB_PRED;
  FbInstr *i = begin (b, FB_OP_COMPARE, hint, 2, ops);
  fb_instr_set_ident (i, FB_A_DIRECTION, fb_compare_dir_name (dir));
  return end (b, i);
}

FbInstr *
fb_b_select (FbBuilder *b, FbInstr *pred, FbInstr *on_true, FbInstr *on_false)
{
  FbInstr *ops[3] = { pred, on_true, on_false };
  if (!check_ops (b, "select", 3, ops))
    return NULL;
  return end (b, begin (b, FB_OP_SELECT, on_true->shape, 3, ops));
}

FbInstr *
fb_b_clamp (FbBuilder *b, FbInstr *lo, FbInstr *x, FbInstr *hi)
{
  FbInstr *ops[3] = { lo, x, hi };
  if (!check_ops (b, "clamp", 3, ops))
    return NULL;
  return end (b, begin (b, FB_OP_CLAMP, x->shape, 3, ops));
}

FbInstr *
fb_b_convert (FbBuilder *b, FbInstr *x, FbElemType type)
{
  if (!check_ops (b, "convert", 1, &x))
    return NULL;
  if (!fb_shape_is_array (x->shape) || !fb_elem_type_is_array (type))
    {
      fb_builder_set_error (b, "convert: %s to %s is not an array conversion",
                            x->name, fb_elem_type_name (type));
      return NULL;
    }
  FbShape *hint = fb_shape_copy (b->module->arena, x->shape);
  hint->type = type;
  return end (b, begin (b, FB_OP_CONVERT, hint, 1, &x));
}

/* ------------------------------------------------------------- movement */

static gboolean
check_array (FbBuilder *b, const char *what, FbInstr *x, int max_rank)
{
  if (!check_ops (b, what, 1, &x))
    return FALSE;
  if (!fb_shape_is_array (x->shape))
    {
      fb_builder_set_error (b, "%s: %s is not an array", what, x->name);
      return FALSE;
    }
  if (x->shape->rank > max_rank)
    {
      fb_builder_set_error (b, "%s: rank %d of %s is above %d", what, x->shape->rank, x->name, max_rank);
      return FALSE;
    }
  return TRUE;
}

FbInstr *
fb_b_broadcast (FbBuilder *b, FbInstr *x, int rank, const int64_t *dims, const int64_t *map)
{
  if (!check_array (b, "broadcast", x, FB_BUILDER_MAX_RANK))
    return NULL;
  if (rank < x->shape->rank || rank > FB_BUILDER_MAX_RANK)
    {
      fb_builder_set_error (b, "broadcast: rank %d cannot hold %s", rank, x->name);
      return NULL;
    }
  if (map == NULL && x->shape->rank > 0)
    {
      fb_builder_set_error (b, "broadcast: %s needs a dimension map", x->name);
      return NULL;
    }
  FbShape *hint = fb_b_shape (b, x->shape->type, rank, dims);
  FbInstr *i = begin (b, FB_OP_BROADCAST, hint, 1, &x);
  fb_instr_set_dims (i, FB_A_DIMENSIONS, x->shape->rank, map);
  return end (b, i);
}

FbInstr *
fb_b_broadcast_to (FbBuilder *b, FbInstr *x, int rank, const int64_t *dims)
{
  if (!check_array (b, "broadcast", x, FB_BUILDER_MAX_RANK))
    return NULL;
  int r = x->shape->rank;
  if (rank < r || rank > FB_BUILDER_MAX_RANK)
    {
      fb_builder_set_error (b, "broadcast: %s of rank %d does not fit rank %d", x->name, r, rank);
      return NULL;
    }
  int64_t keep[FB_BUILDER_MAX_RANK], map[FB_BUILDER_MAX_RANK];
  int n_keep = 0;
  gboolean same = rank == r;
  for (int i = 0; i < r; i++)
    {
      int64_t d = x->shape->dims[i], t = dims[rank - r + i];
      if (d == t)
        {
          keep[n_keep] = d;
          map[n_keep++] = rank - r + i;
        }
      else if (d == 1)
        same = FALSE;
      else
        {
          fb_builder_set_error (b, "broadcast: dimension %d of %s has size %" G_GINT64_FORMAT
                                ", which cannot broadcast to %" G_GINT64_FORMAT, i, x->name, d, t);
          return NULL;
        }
    }
  if (same)
    return x;
  FbInstr *y = n_keep == r ? x : fb_b_reshape (b, x, n_keep, keep);
  return fb_b_broadcast (b, y, rank, dims, map);
}

FbInstr *
fb_b_broadcast_like (FbBuilder *b, FbInstr *x, FbInstr *like)
{
  if (!check_array (b, "broadcast", like, FB_BUILDER_MAX_RANK))
    return NULL;
  return fb_b_broadcast_to (b, x, like->shape->rank, like->shape->dims);
}

FbInstr *
fb_b_reshape (FbBuilder *b, FbInstr *x, int rank, const int64_t *dims)
{
  g_return_val_if_fail (b != NULL && (rank <= 0 || dims != NULL), NULL);
  if (!check_array (b, "reshape", x, G_MAXINT))
    return NULL;
  if (rank < 0)
    {
      fb_builder_set_error (b, "reshape: negative rank");
      return NULL;
    }
  FbShape *hint = fb_b_shape (b, x->shape->type, rank, dims);
  if (fb_shape_elements (hint) != fb_shape_elements (x->shape))
    {
      g_autofree char *from = fb_shape_to_string (x->shape);
      g_autofree char *to = fb_shape_to_string (hint);
      fb_builder_set_error (b, "reshape: %s of %s has a different element count than %s",
                            x->name, from, to);
      return NULL;
    }
  return end (b, begin (b, FB_OP_RESHAPE, hint, 1, &x));
}

FbInstr *
fb_b_transpose (FbBuilder *b, FbInstr *x, const int64_t *perm)
{
  g_return_val_if_fail (b != NULL && perm != NULL, NULL);
  if (!check_array (b, "transpose", x, G_MAXINT))
    return NULL;
  FbInstr *i = begin (b, FB_OP_TRANSPOSE, NULL, 1, &x);
  fb_instr_set_dims (i, FB_A_DIMENSIONS, x->shape->rank, perm);
  return end (b, i);
}

FbInstr *
fb_b_slice (FbBuilder *b, FbInstr *x, const int64_t *start, const int64_t *limit,
            const int64_t *strides)
{
  g_return_val_if_fail (b != NULL && start != NULL && limit != NULL, NULL);
  if (!check_array (b, "slice", x, G_MAXINT))
    return NULL;
  int r = x->shape->rank;
  FbInstr *i = begin (b, FB_OP_SLICE, NULL, 1, &x);
  FbAttr *a = fb_instr_set_attr (i, FB_A_SLICE);
  a->v.slice.n = r;
  a->v.slice.d = fb_arena_new0 (b->module->arena, FbSliceDim, MAX (r, 1));
  for (int k = 0; k < r; k++)
    {
      a->v.slice.d[k].start = start[k];
      a->v.slice.d[k].limit = limit[k];
      a->v.slice.d[k].stride = strides ? strides[k] : 1;
    }
  return end (b, i);
}

FbInstr *
fb_b_pad (FbBuilder *b, FbInstr *x, FbInstr *value, const FbPadDim *pads)
{
  g_return_val_if_fail (b != NULL && pads != NULL, NULL);
  FbInstr *ops[2] = { x, value };
  if (!check_ops (b, "pad", 2, ops) || !check_array (b, "pad", x, G_MAXINT))
    return NULL;
  int r = x->shape->rank;
  FbInstr *i = begin (b, FB_OP_PAD, NULL, 2, ops);
  FbAttr *a = fb_instr_set_attr (i, FB_A_PADDING);
  a->v.pad.n = r;
  a->v.pad.d = fb_arena_memdup (b->module->arena, pads, sizeof (FbPadDim) * MAX (r, 1));
  return end (b, i);
}

FbInstr *
fb_b_concatenate (FbBuilder *b, int n, FbInstr *const *xs, int64_t dimension)
{
  g_return_val_if_fail (b != NULL && (n < 1 || xs != NULL), NULL);
  if (n < 1)
    {
      fb_builder_set_error (b, "concatenate: no operands");
      return NULL;
    }
  if (!check_ops (b, "concatenate", n, xs))
    return NULL;
  FbInstr *i = begin (b, FB_OP_CONCATENATE, NULL, n, xs);
  fb_instr_set_dims (i, FB_A_DIMENSIONS, 1, &dimension);
  return end (b, i);
}

FbInstr *
fb_b_reverse (FbBuilder *b, FbInstr *x, int n_dims, const int64_t *dims)
{
  g_return_val_if_fail (b != NULL && (n_dims <= 0 || dims != NULL), NULL);
  if (!check_array (b, "reverse", x, G_MAXINT))
    return NULL;
  FbInstr *i = begin (b, FB_OP_REVERSE, x->shape, 1, &x);
  fb_instr_set_dims (i, FB_A_DIMENSIONS, n_dims, dims);
  return end (b, i);
}

FbInstr *
fb_b_copy (FbBuilder *b, FbInstr *x)
{
  if (!check_ops (b, "copy", 1, &x))
    return NULL;
  return end (b, begin (b, FB_OP_COPY, x->shape, 1, &x));
}

FbInstr *
fb_b_dynamic_slice (FbBuilder *b, FbInstr *x, FbInstr *const *starts, const int64_t *sizes)
{
  g_return_val_if_fail (b != NULL && starts != NULL && sizes != NULL, NULL);
  if (!check_array (b, "dynamic-slice", x, FB_BUILDER_MAX_RANK))
    return NULL;
  int r = x->shape->rank;
  FbInstr *ops[FB_BUILDER_MAX_RANK + 1];
  ops[0] = x;
  for (int k = 0; k < r; k++)
    ops[k + 1] = starts[k];
  if (!check_ops (b, "dynamic-slice", r + 1, ops))
    return NULL;
  FbInstr *i = begin (b, FB_OP_DYNAMIC_SLICE, NULL, r + 1, ops);
  fb_instr_set_dims (i, FB_A_DYNAMIC_SLICE_SIZES, r, sizes);
  return end (b, i);
}

FbInstr *
fb_b_dynamic_update_slice (FbBuilder *b, FbInstr *x, FbInstr *update, FbInstr *const *starts)
{
  g_return_val_if_fail (b != NULL && starts != NULL, NULL);
  if (!check_array (b, "dynamic-update-slice", x, FB_BUILDER_MAX_RANK))
    return NULL;
  int r = x->shape->rank;
  FbInstr *ops[FB_BUILDER_MAX_RANK + 2];
  ops[0] = x;
  ops[1] = update;
  for (int k = 0; k < r; k++)
    ops[k + 2] = starts[k];
  if (!check_ops (b, "dynamic-update-slice", r + 2, ops))
    return NULL;
  return end (b, begin (b, FB_OP_DYNAMIC_UPDATE_SLICE, x->shape, r + 2, ops));
}

/* ---------------------------------------------------- contractions */

FbInstr *
fb_b_dot (FbBuilder *b, FbInstr *lhs, FbInstr *rhs, const FbDotDims *d)
{
  g_return_val_if_fail (b != NULL && d != NULL, NULL);
  FbInstr *ops[2] = { lhs, rhs };
  if (!check_ops (b, "dot", 2, ops))
    return NULL;
  if (d->n_batch < 0 || d->n_batch > FB_BUILDER_MAX_RANK
      || d->n_contracting < 0 || d->n_contracting > FB_BUILDER_MAX_RANK)
    {
      fb_builder_set_error (b, "dot: bad dimension counts");
      return NULL;
    }
  FbInstr *i = begin (b, FB_OP_DOT, NULL, 2, ops);
  if (d->n_batch > 0)
    {
      fb_instr_set_dims (i, FB_A_LHS_BATCH_DIMS, d->n_batch, d->lhs_batch);
      fb_instr_set_dims (i, FB_A_RHS_BATCH_DIMS, d->n_batch, d->rhs_batch);
    }
  fb_instr_set_dims (i, FB_A_LHS_CONTRACTING_DIMS, d->n_contracting, d->lhs_contracting);
  fb_instr_set_dims (i, FB_A_RHS_CONTRACTING_DIMS, d->n_contracting, d->rhs_contracting);
  return end (b, i);
}

FbInstr *
fb_b_matmul (FbBuilder *b, FbInstr *lhs, FbInstr *rhs)
{
  if (!check_array (b, "matmul", lhs, FB_BUILDER_MAX_RANK)
      || !check_array (b, "matmul", rhs, FB_BUILDER_MAX_RANK))
    return NULL;
  int rl = lhs->shape->rank, rr = rhs->shape->rank;
  FbDotDims d = { 0 };
  if (rl < 1 || rr < 1)
    {
      fb_builder_set_error (b, "matmul: operands must have rank 1 or more");
      return NULL;
    }
  if (rl > 2 && rr == rl)
    {
      d.n_batch = rl - 2;
      for (int k = 0; k < rl - 2; k++)
        d.lhs_batch[k] = d.rhs_batch[k] = k;
      d.n_contracting = 1;
      d.lhs_contracting[0] = rl - 1;
      d.rhs_contracting[0] = rr - 2;
    }
  else
    {
      d.n_contracting = 1;
      d.lhs_contracting[0] = rl - 1;
      d.rhs_contracting[0] = 0;
    }
  return fb_b_dot (b, lhs, rhs, &d);
}

/* Reads one part of dim_labels: @a and @b are the two non-spatial letters;
 * their positions go to *pa and *pb, spatial digit k's position to sp[k]. */
static gboolean
parse_labels_part (const char *s, gsize len, char a, char b, int64_t *pa, int64_t *pb,
                   int64_t *sp, int *n_spatial)
{
  *pa = *pb = -1;
  int n = 0;
  for (gsize i = 0; i < len; i++)
    {
      if (s[i] == a && *pa < 0)
        *pa = i;
      else if (s[i] == b && *pb < 0)
        *pb = i;
      else if (g_ascii_isdigit (s[i]) && s[i] - '0' < (int) len - 2)
        {
          sp[s[i] - '0'] = i;
          n++;
        }
      else
        return FALSE;
    }
  if (*pa < 0 || *pb < 0 || n != (int) len - 2)
    return FALSE;
  *n_spatial = n;
  return TRUE;
}

gboolean
fb_conv_dims_parse (FbArena *arena, const char *labels, FbConvDims *out, GError **error)
{
  g_return_val_if_fail (labels != NULL && out != NULL, FALSE);
  const char *u = strchr (labels, '_');
  const char *arrow = u ? strstr (u, "->") : NULL;
  int64_t sp[3][12];
  int n[3] = { -1, -1, -1 };
  if (u == NULL || arrow == NULL || u - labels > 12 || arrow - u - 1 > 12 || strlen (arrow + 2) > 12
      || !parse_labels_part (labels, u - labels, 'b', 'f', &out->in_batch, &out->in_feature, sp[0], &n[0])
      || !parse_labels_part (u + 1, arrow - u - 1, 'i', 'o', &out->k_in, &out->k_out, sp[1], &n[1])
      || !parse_labels_part (arrow + 2, strlen (arrow + 2), 'b', 'f', &out->out_batch, &out->out_feature, sp[2], &n[2])
      || n[0] != n[1] || n[1] != n[2])
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                   "dim_labels \"%s\" is not like \"b01f_01io->b01f\"", labels);
      return FALSE;
    }
  out->n_spatial = n[0];
  out->in_spatial = fb_arena_memdup (arena, sp[0], sizeof (int64_t) * MAX (1, n[0]));
  out->k_spatial = fb_arena_memdup (arena, sp[1], sizeof (int64_t) * MAX (1, n[0]));
  out->out_spatial = fb_arena_memdup (arena, sp[2], sizeof (int64_t) * MAX (1, n[0]));
  return TRUE;
}

static int64_t
one_if_zero (int64_t v)
{
  return v == 0 ? 1 : v;
}

static void
set_window (FbBuilder *b, FbInstr *i, int n, const FbWindowDim *w)
{
  FbAttr *a = fb_instr_set_attr (i, FB_A_WINDOW);
  a->v.window.n = n;
  a->v.window.d = fb_arena_new0 (b->module->arena, FbWindowDim, MAX (n, 1));
  for (int k = 0; k < n; k++)
    {
      FbWindowDim d = w[k];
      d.stride = one_if_zero (d.stride);
      d.lhs_dilate = one_if_zero (d.lhs_dilate);
      d.rhs_dilate = one_if_zero (d.rhs_dilate);
      a->v.window.d[k] = d;
    }
}

FbInstr *
fb_b_conv (FbBuilder *b, FbInstr *lhs, FbInstr *rhs, const char *dim_labels,
           const FbConvWindow *window, int64_t feature_group_count, int64_t batch_group_count)
{
  FbInstr *ops[2] = { lhs, rhs };
  if (!check_ops (b, "convolution", 2, ops)
      || !check_array (b, "convolution", lhs, FB_BUILDER_MAX_RANK)
      || !check_array (b, "convolution", rhs, FB_BUILDER_MAX_RANK))
    return NULL;
  FbConvDims cd;
  GError *err = NULL;
  if (!fb_conv_dims_parse (b->module->arena, dim_labels ? dim_labels : "", &cd, &err))
    {
      fb_builder_take_error (b, err);
      return NULL;
    }
  if (cd.n_spatial + 2 != lhs->shape->rank || cd.n_spatial + 2 != rhs->shape->rank)
    {
      fb_builder_set_error (b, "convolution: dim_labels %s do not match the ranks of %s and %s",
                            dim_labels, lhs->name, rhs->name);
      return NULL;
    }
  FbWindowDim w[FB_BUILDER_MAX_RANK];
  memset (w, 0, sizeof w);
  for (int k = 0; k < cd.n_spatial; k++)
    {
      w[k].size = rhs->shape->dims[cd.k_spatial[k]];
      if (window)
        {
          w[k].stride = window->stride[k];
          w[k].pad_lo = window->pad_lo[k];
          w[k].pad_hi = window->pad_hi[k];
          w[k].lhs_dilate = window->lhs_dilate[k];
          w[k].rhs_dilate = window->rhs_dilate[k];
        }
    }
  FbInstr *i = begin (b, FB_OP_CONVOLUTION, NULL, 2, ops);
  if (cd.n_spatial > 0)
    set_window (b, i, cd.n_spatial, w);
  FbAttr *a = fb_instr_set_attr (i, FB_A_DIM_LABELS);
  a->v.conv = cd;
  if (feature_group_count > 1)
    fb_instr_set_int (i, FB_A_FEATURE_GROUP_COUNT, feature_group_count);
  if (batch_group_count > 1)
    fb_instr_set_int (i, FB_A_BATCH_GROUP_COUNT, batch_group_count);
  return end (b, i);
}

/* ------------------------------------------------------------ reductions */

static const char *
combiner_stem (FbOpcode op)
{
  switch (op)
    {
    case FB_OP_ADD: return "add";
    case FB_OP_MULTIPLY: return "mul";
    case FB_OP_MAXIMUM: return "max";
    case FB_OP_MINIMUM: return "min";
    case FB_OP_AND: return "and";
    case FB_OP_OR: return "or";
    case FB_COMBINE_REPLACE: return "replace";
    default: return NULL;
    }
}

static gboolean
is_combiner (FbComputation *c, FbElemType type, FbOpcode op)
{
  if (c->n_params != 2 || c->root == NULL || c->params[0] == NULL || c->params[1] == NULL
      || c->params[0]->shape->type != type || c->params[0]->shape->rank != 0)
    return FALSE;
  if (op == FB_COMBINE_REPLACE)
    return c->root == c->params[1];
  return c->root->opcode == op && c->root->n_operands == 2
         && c->root->operands[0] == c->params[0] && c->root->operands[1] == c->params[1];
}

FbComputation *
fb_builder_combiner (FbBuilder *b, FbElemType type, FbOpcode op)
{
  g_return_val_if_fail (b != NULL, NULL);
  if (b->error)
    return NULL;
  const char *stem = combiner_stem (op);
  if (stem == NULL || !fb_elem_type_is_array (type))
    {
      fb_builder_set_error (b, "%s is not a combiner for %s", fb_opcode_name (op), fb_elem_type_name (type));
      return NULL;
    }
  g_autofree char *name = g_strdup_printf ("%s_%s", stem, fb_elem_type_name (type));
  for (int i = 0; i < b->module->n_comps; i++)
    {
      FbComputation *c = b->module->comps[i];
      if (g_str_has_prefix (c->name, name) && is_combiner (c, type, op))
        return c;
    }
  g_autoptr (FbBuilder) sub = fb_builder_new_nested (b, name);
  FbInstr *x = fb_b_param (sub, fb_b_scalar_shape (sub, type), "x");
  FbInstr *y = fb_b_param (sub, fb_b_scalar_shape (sub, type), "y");
  if (op == FB_COMBINE_REPLACE)
    fb_builder_set_root (sub, y);
  else
    fb_builder_set_root (sub, fb_b_binary (sub, op, x, y));
  GError *err = NULL;
  FbComputation *c = fb_builder_finish (sub, &err);
  if (c == NULL)
    g_clear_error (&err);  /* already recorded in @b */
  return c;
}

FbInstr *
fb_b_identity (FbBuilder *b, FbElemType type, FbOpcode combiner)
{
  double v;
  switch (combiner)
    {
    case FB_OP_ADD: case FB_OP_OR: v = 0; break;
    case FB_OP_MULTIPLY: case FB_OP_AND: v = 1; break;
    case FB_OP_MAXIMUM:
      v = fb_elem_type_is_float (type) ? -INFINITY
          : fb_elem_type_kind (type) == FB_KIND_SINT ? -ldexp (1, fb_elem_type_bits (type) - 1) : 0;
      break;
    case FB_OP_MINIMUM:
      v = fb_elem_type_is_float (type) ? INFINITY
          : fb_elem_type_kind (type) == FB_KIND_SINT ? ldexp (1, fb_elem_type_bits (type) - 1) - 1
          : fb_elem_type_kind (type) == FB_KIND_PRED ? 1 : ldexp (1, fb_elem_type_bits (type)) - 1;
      break;
    default:
      fb_builder_set_error (b, "%s has no identity", fb_opcode_name (combiner));
      return NULL;
    }
  return fb_b_const (b, type, v);
}

FbInstr *
fb_b_reduce (FbBuilder *b, FbInstr *x, FbInstr *init, FbOpcode combiner,
             int n_dims, const int64_t *dims)
{
  g_return_val_if_fail (b != NULL && (n_dims <= 0 || dims != NULL), NULL);
  FbInstr *ops[2] = { x, init };
  if (!check_ops (b, "reduce", 2, ops) || !check_array (b, "reduce", x, G_MAXINT))
    return NULL;
  FbComputation *c = fb_builder_combiner (b, x->shape->type, combiner);
  if (c == NULL)
    return NULL;
  FbInstr *i = begin (b, FB_OP_REDUCE, NULL, 2, ops);
  fb_instr_set_dims (i, FB_A_DIMENSIONS, n_dims, dims);
  fb_instr_set_comp (i, FB_A_TO_APPLY, c);
  return end (b, i);
}

static FbInstr *
reduce_with_identity (FbBuilder *b, FbInstr *x, FbOpcode op, int n_dims, const int64_t *dims)
{
  if (!check_array (b, "reduce", x, G_MAXINT))
    return NULL;
  return fb_b_reduce (b, x, fb_b_identity (b, x->shape->type, op), op, n_dims, dims);
}

FbInstr *
fb_b_reduce_sum (FbBuilder *b, FbInstr *x, int n_dims, const int64_t *dims)
{
  return reduce_with_identity (b, x, FB_OP_ADD, n_dims, dims);
}

FbInstr *
fb_b_reduce_max (FbBuilder *b, FbInstr *x, int n_dims, const int64_t *dims)
{
  return reduce_with_identity (b, x, FB_OP_MAXIMUM, n_dims, dims);
}

FbInstr *
fb_b_reduce_min (FbBuilder *b, FbInstr *x, int n_dims, const int64_t *dims)
{
  return reduce_with_identity (b, x, FB_OP_MINIMUM, n_dims, dims);
}

FbInstr *
fb_b_sum_all (FbBuilder *b, FbInstr *x)
{
  if (!check_array (b, "reduce", x, G_MAXINT))
    return NULL;
  int r = x->shape->rank;
  if (r == 0)
    return x;
  g_autofree int64_t *dims = g_new (int64_t, r);
  for (int k = 0; k < r; k++)
    dims[k] = k;
  return fb_b_reduce_sum (b, x, r, dims);
}

FbInstr *
fb_b_reduce_window (FbBuilder *b, FbInstr *x, FbInstr *init, FbOpcode combiner,
                    const FbWindowDim *window)
{
  g_return_val_if_fail (b != NULL && window != NULL, NULL);
  FbInstr *ops[2] = { x, init };
  if (!check_ops (b, "reduce-window", 2, ops) || !check_array (b, "reduce-window", x, G_MAXINT))
    return NULL;
  FbComputation *c = fb_builder_combiner (b, x->shape->type, combiner);
  if (c == NULL)
    return NULL;
  FbInstr *i = begin (b, FB_OP_REDUCE_WINDOW, NULL, 2, ops);
  set_window (b, i, x->shape->rank, window);
  fb_instr_set_comp (i, FB_A_TO_APPLY, c);
  return end (b, i);
}

/* The scalar predicate computation (a, b) -> compare(a, b), direction=@dir. */
static FbComputation *
select_computation (FbBuilder *b, FbElemType type, FbCompareDir dir)
{
  g_autofree char *name = g_strdup_printf ("select_%s_%s", fb_compare_dir_name (dir),
                                           fb_elem_type_name (type));
  for (int i = 0; i < b->module->n_comps; i++)
    {
      FbComputation *c = b->module->comps[i];
      if (g_str_has_prefix (c->name, name) && c->n_params == 2 && c->root
          && c->root->opcode == FB_OP_COMPARE && c->params[0]->shape->type == type
          && g_strcmp0 (fb_instr_str (c->root, FB_A_DIRECTION), fb_compare_dir_name (dir)) == 0)
        return c;
    }
  g_autoptr (FbBuilder) sub = fb_builder_new_nested (b, name);
  FbInstr *x = fb_b_param (sub, fb_b_scalar_shape (sub, type), "x");
  FbInstr *y = fb_b_param (sub, fb_b_scalar_shape (sub, type), "y");
  fb_builder_set_root (sub, fb_b_compare (sub, dir, x, y));
  GError *err = NULL;
  FbComputation *c = fb_builder_finish (sub, &err);
  g_clear_error (&err);
  return c;
}

FbInstr *
fb_b_select_and_scatter (FbBuilder *b, FbInstr *operand, FbInstr *source, FbInstr *init,
                         FbCompareDir select_dir, FbOpcode scatter, const FbWindowDim *window)
{
  g_return_val_if_fail (b != NULL && window != NULL, NULL);
  FbInstr *ops[3] = { operand, source, init };
  if (!check_ops (b, "select-and-scatter", 3, ops)
      || !check_array (b, "select-and-scatter", operand, G_MAXINT))
    return NULL;
  FbComputation *sel = select_computation (b, operand->shape->type, select_dir);
  FbComputation *sc = fb_builder_combiner (b, source->shape->type, scatter);
  if (sel == NULL || sc == NULL)
    return NULL;
  FbInstr *i = begin (b, FB_OP_SELECT_AND_SCATTER, operand->shape, 3, ops);
  set_window (b, i, operand->shape->rank, window);
  fb_instr_set_comp (i, FB_A_SELECT, sel);
  fb_instr_set_comp (i, FB_A_SCATTER, sc);
  return end (b, i);
}

/* ----------------------------------------------------- gather, scatter */

static void
set_bool (FbInstr *i, FbAttrKey key, gboolean v)
{
  FbAttr *a = fb_instr_set_attr (i, key);
  a->v.i = v != FALSE;
}

static gboolean
counts_ok (FbBuilder *b, const char *what, int n, const int *counts)
{
  for (int k = 0; k < n; k++)
    if (counts[k] < 0 || counts[k] > FB_BUILDER_MAX_RANK)
      {
        fb_builder_set_error (b, "%s: a dimension list has %d entries", what, counts[k]);
        return FALSE;
      }
  return TRUE;
}

FbInstr *
fb_b_gather (FbBuilder *b, FbInstr *operand, FbInstr *indices, const FbGatherDims *d)
{
  g_return_val_if_fail (b != NULL && d != NULL, NULL);
  FbInstr *ops[2] = { operand, indices };
  if (!check_ops (b, "gather", 2, ops) || !check_array (b, "gather", operand, FB_BUILDER_MAX_RANK))
    return NULL;
  int counts[] = { d->n_offset_dims, d->n_collapsed_slice_dims, d->n_start_index_map,
                   d->n_operand_batching_dims, d->n_start_indices_batching_dims };
  if (!counts_ok (b, "gather", G_N_ELEMENTS (counts), counts))
    return NULL;
  FbInstr *i = begin (b, FB_OP_GATHER, NULL, 2, ops);
  fb_instr_set_dims (i, FB_A_OFFSET_DIMS, d->n_offset_dims, d->offset_dims);
  fb_instr_set_dims (i, FB_A_COLLAPSED_SLICE_DIMS, d->n_collapsed_slice_dims, d->collapsed_slice_dims);
  fb_instr_set_dims (i, FB_A_START_INDEX_MAP, d->n_start_index_map, d->start_index_map);
  if (d->n_operand_batching_dims > 0)
    {
      fb_instr_set_dims (i, FB_A_OPERAND_BATCHING_DIMS, d->n_operand_batching_dims, d->operand_batching_dims);
      fb_instr_set_dims (i, FB_A_START_INDICES_BATCHING_DIMS, d->n_start_indices_batching_dims,
                         d->start_indices_batching_dims);
    }
  fb_instr_set_int (i, FB_A_INDEX_VECTOR_DIM, d->index_vector_dim);
  fb_instr_set_dims (i, FB_A_SLICE_SIZES, operand->shape->rank, d->slice_sizes);
  if (d->indices_are_sorted)
    set_bool (i, FB_A_INDICES_ARE_SORTED, TRUE);
  return end (b, i);
}

FbInstr *
fb_b_scatter (FbBuilder *b, FbInstr *operand, FbInstr *indices, FbInstr *updates,
              FbOpcode combiner, const FbScatterDims *d)
{
  g_return_val_if_fail (b != NULL && d != NULL, NULL);
  FbInstr *ops[3] = { operand, indices, updates };
  if (!check_ops (b, "scatter", 3, ops) || !check_array (b, "scatter", operand, FB_BUILDER_MAX_RANK))
    return NULL;
  int counts[] = { d->n_update_window_dims, d->n_inserted_window_dims, d->n_scatter_dims_to_operand_dims,
                   d->n_input_batching_dims, d->n_scatter_indices_batching_dims };
  if (!counts_ok (b, "scatter", G_N_ELEMENTS (counts), counts))
    return NULL;
  FbComputation *c = fb_builder_combiner (b, operand->shape->type, combiner);
  if (c == NULL)
    return NULL;
  FbInstr *i = begin (b, FB_OP_SCATTER, operand->shape, 3, ops);
  fb_instr_set_dims (i, FB_A_UPDATE_WINDOW_DIMS, d->n_update_window_dims, d->update_window_dims);
  fb_instr_set_dims (i, FB_A_INSERTED_WINDOW_DIMS, d->n_inserted_window_dims, d->inserted_window_dims);
  fb_instr_set_dims (i, FB_A_SCATTER_DIMS_TO_OPERAND_DIMS, d->n_scatter_dims_to_operand_dims,
                     d->scatter_dims_to_operand_dims);
  if (d->n_input_batching_dims > 0)
    {
      fb_instr_set_dims (i, FB_A_INPUT_BATCHING_DIMS, d->n_input_batching_dims, d->input_batching_dims);
      fb_instr_set_dims (i, FB_A_SCATTER_INDICES_BATCHING_DIMS, d->n_scatter_indices_batching_dims,
                         d->scatter_indices_batching_dims);
    }
  fb_instr_set_int (i, FB_A_INDEX_VECTOR_DIM, d->index_vector_dim);
  if (d->indices_are_sorted)
    set_bool (i, FB_A_INDICES_ARE_SORTED, TRUE);
  if (d->unique_indices)
    set_bool (i, FB_A_UNIQUE_INDICES, TRUE);
  fb_instr_set_comp (i, FB_A_TO_APPLY, c);
  return end (b, i);
}

/* ------------------------------------------------------ tuples, control */

FbInstr *
fb_b_tuple (FbBuilder *b, int n, FbInstr *const *xs)
{
  if (!check_ops (b, "tuple", n, xs))
    return NULL;
  FbArena *arena = b->module->arena;
  g_autofree FbShape **el = g_new0 (FbShape *, MAX (n, 1));
  for (int k = 0; k < n; k++)
    el[k] = xs[k]->shape;
  FbShape *hint = fb_shape_new_tuple (arena, n, el);
  return end (b, begin (b, FB_OP_TUPLE, hint, n, xs));
}

FbInstr *
fb_b_gte (FbBuilder *b, FbInstr *tuple, int64_t index)
{
  if (!check_ops (b, "get-tuple-element", 1, &tuple))
    return NULL;
  if (!fb_shape_is_tuple (tuple->shape) || index < 0 || index >= tuple->shape->n_elems)
    {
      fb_builder_set_error (b, "get-tuple-element: %s has no element %" G_GINT64_FORMAT,
                            tuple->name, index);
      return NULL;
    }
  FbInstr *i = begin (b, FB_OP_GET_TUPLE_ELEMENT, tuple->shape->elems[index], 1, &tuple);
  fb_instr_set_int (i, FB_A_INDEX, index);
  return end (b, i);
}

static gboolean
check_comps (FbBuilder *b, const char *what, int n, FbComputation *const *comps)
{
  if (b->error)
    return FALSE;
  for (int k = 0; k < n; k++)
    {
      if (comps[k] == NULL)
        {
          fb_builder_set_error (b, "%s: computation %d is missing", what, k);
          return FALSE;
        }
      if (comps[k]->module != b->module || comps[k]->root == NULL)
        {
          fb_builder_set_error (b, "%s: computation %s is not finished or not in this module",
                                what, comps[k]->name);
          return FALSE;
        }
    }
  return TRUE;
}

FbInstr *
fb_b_call (FbBuilder *b, FbComputation *comp, int n, FbInstr *const *args)
{
  if (!check_comps (b, "call", 1, &comp) || !check_ops (b, "call", n, args))
    return NULL;
  FbInstr *i = begin (b, FB_OP_CALL, comp->root->shape, n, args);
  fb_instr_set_comp (i, FB_A_TO_APPLY, comp);
  return end (b, i);
}

FbInstr *
fb_b_while (FbBuilder *b, FbComputation *cond, FbComputation *body, FbInstr *init)
{
  FbComputation *cs[2] = { cond, body };
  if (!check_comps (b, "while", 2, cs) || !check_ops (b, "while", 1, &init))
    return NULL;
  FbInstr *i = begin (b, FB_OP_WHILE, init->shape, 1, &init);
  fb_instr_set_comp (i, FB_A_CONDITION, cond);
  fb_instr_set_comp (i, FB_A_BODY, body);
  return end (b, i);
}

FbInstr *
fb_b_conditional (FbBuilder *b, FbInstr *selector, int n_branches,
                  FbComputation *const *branches, FbInstr *const *operands)
{
  if (n_branches < 1 || !check_comps (b, "conditional", n_branches, branches)
      || !check_ops (b, "conditional", 1, &selector) || !check_ops (b, "conditional", n_branches, operands))
    {
      if (n_branches < 1)
        fb_builder_set_error (b, "conditional: no branches");
      return NULL;
    }
  g_autofree FbInstr **ops = g_new (FbInstr *, n_branches + 1);
  ops[0] = selector;
  memcpy (ops + 1, operands, sizeof (FbInstr *) * n_branches);
  FbInstr *i = begin (b, FB_OP_CONDITIONAL, branches[0]->root->shape, n_branches + 1, ops);
  if (selector->shape->type == FB_PRED && n_branches == 2)
    {
      fb_instr_set_comp (i, FB_A_TRUE_COMPUTATION, branches[0]);
      fb_instr_set_comp (i, FB_A_FALSE_COMPUTATION, branches[1]);
    }
  else
    {
      FbAttr *a = fb_instr_set_attr (i, FB_A_BRANCH_COMPUTATIONS);
      a->v.comps.n = n_branches;
      a->v.comps.c = fb_arena_memdup (b->module->arena, branches, sizeof (FbComputation *) * n_branches);
      a->v.comps.braced = TRUE;
    }
  return end (b, i);
}

FbInstr *
fb_b_custom_call (FbBuilder *b, const char *target, int n, FbInstr *const *operands, FbShape *shape)
{
  if (!check_ops (b, "custom-call", n, operands))
    return NULL;
  if (target == NULL || shape == NULL)
    {
      fb_builder_set_error (b, "custom-call: a target and a result shape are needed");
      return NULL;
    }
  FbInstr *i = begin (b, FB_OP_CUSTOM_CALL, shape, n, operands);
  FbAttr *a = fb_instr_set_attr (i, FB_A_CUSTOM_CALL_TARGET);
  a->v.s = fb_arena_strdup (b->module->arena, target);
  return end (b, i);
}

/* ------------------------------------------------------- normalisation */

static void
set_bn_attrs (FbInstr *i, double epsilon, int64_t feature_index)
{
  FbAttr *a = fb_instr_set_attr (i, FB_A_EPSILON);
  a->v.f = epsilon;
  fb_instr_set_int (i, FB_A_FEATURE_INDEX, feature_index);
}

FbInstr *
fb_b_batch_norm_training (FbBuilder *b, FbInstr *x, FbInstr *scale, FbInstr *offset,
                          double epsilon, int64_t feature_index)
{
  FbInstr *ops[3] = { x, scale, offset };
  if (!check_ops (b, "batch-norm-training", 3, ops))
    return NULL;
  FbShape *el[3] = { x->shape, scale->shape, scale->shape };
  FbShape *hint = fb_shape_new_tuple (b->module->arena, 3, el);
  FbInstr *i = begin (b, FB_OP_BATCH_NORM_TRAINING, hint, 3, ops);
  set_bn_attrs (i, epsilon, feature_index);
  return end (b, i);
}

FbInstr *
fb_b_batch_norm_inference (FbBuilder *b, FbInstr *x, FbInstr *scale, FbInstr *offset,
                           FbInstr *mean, FbInstr *variance, double epsilon, int64_t feature_index)
{
  FbInstr *ops[5] = { x, scale, offset, mean, variance };
  if (!check_ops (b, "batch-norm-inference", 5, ops))
    return NULL;
  FbInstr *i = begin (b, FB_OP_BATCH_NORM_INFERENCE, x->shape, 5, ops);
  set_bn_attrs (i, epsilon, feature_index);
  return end (b, i);
}

FbInstr *
fb_b_batch_norm_grad (FbBuilder *b, FbInstr *x, FbInstr *scale, FbInstr *mean,
                      FbInstr *variance, FbInstr *grad_output, double epsilon, int64_t feature_index)
{
  FbInstr *ops[5] = { x, scale, mean, variance, grad_output };
  if (!check_ops (b, "batch-norm-grad", 5, ops))
    return NULL;
  FbShape *el[3] = { x->shape, scale->shape, scale->shape };
  FbShape *hint = fb_shape_new_tuple (b->module->arena, 3, el);
  FbInstr *i = begin (b, FB_OP_BATCH_NORM_GRAD, hint, 5, ops);
  set_bn_attrs (i, epsilon, feature_index);
  return end (b, i);
}

/* ----------------------------------------------------------------- rng */

FbInstr *
fb_b_rng_bit_generator (FbBuilder *b, FbInstr *state, const char *algorithm, const FbShape *shape)
{
  if (!check_ops (b, "rng-bit-generator", 1, &state))
    return NULL;
  if (shape == NULL || !fb_shape_is_array (shape))
    {
      fb_builder_set_error (b, "rng-bit-generator: the output must be an array shape");
      return NULL;
    }
  FbShape *el[2] = { state->shape, (FbShape *) shape };
  FbShape *hint = fb_shape_new_tuple (b->module->arena, 2, el);
  FbInstr *i = begin (b, FB_OP_RNG_BIT_GENERATOR, hint, 1, &state);
  fb_instr_set_ident (i, FB_A_ALGORITHM, algorithm ? algorithm : "rng_default");
  return end (b, i);
}
