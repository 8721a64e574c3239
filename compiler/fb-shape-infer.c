/* SPDX-License-Identifier: MIT
 *
 * Shape inference: the shape XLA's rules give an instruction from the shapes
 * of its operands, its attributes and the computations it calls. Every rule
 * also checks what it needs (operand count, element types, ranges of
 * dimension numbers) and reports the first fault as an error that names the
 * instruction and says what was expected, so the verifier can compare the
 * result with the declared shape and the user learns why they differ.
 *
 * Bounded dynamic dimensions count as their bound; an unbounded dimension
 * (-1) matches any size. Layouts are never inferred or compared.
 */
#include <stdarg.h>
#include <string.h>

#include "fb-shape-infer-private.h"

/* ------------------------------------------------------------ helpers */

gboolean
_fb_infer_fail (FbInferCtx *c, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  const FbInstr *in = c->instr;
  const char *path = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (in->parent && in->parent->module)
    path = in->parent->module->source_path;
  if (in->loc.line > 0)
    g_set_error (c->error, FB_ERROR, FB_ERROR_VERIFY, "%s:%d:%d: %%%s: %s", path ? path : "<input>", in->loc.line,
                 in->loc.column, in->name, msg);
  else
    g_set_error (c->error, FB_ERROR, FB_ERROR_VERIFY, "%%%s: %s", in->name, msg);
  return FALSE;
}

/* A shape as text without layout, kept until inference of this
 * instruction ends. */
/* The same as _fb_infer_fail, for rules that return a shape. */
FbShape *
_fb_infer_error (FbInferCtx *c, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  _fb_infer_fail (c, "%s", msg);
  return NULL;
}

const char *
_fb_infer_str (FbInferCtx *c, const FbShape *s)
{
  GString *out = g_string_new (NULL);

  if (s == NULL)
    g_string_append (out, "(none)");
  else
    fb_shape_print (out, s, FALSE);
  if (c->strings == NULL)
    c->strings = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (c->strings, g_string_free (out, FALSE));
  return g_ptr_array_index (c->strings, c->strings->len - 1);
}

/* Same element type, rank and dimensions; tuples element by element. */
gboolean
_fb_infer_compatible (const FbShape *a, const FbShape *b)
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
        if (!_fb_infer_compatible (a->elems[i], b->elems[i]))
          return FALSE;
      return TRUE;
    }
  return !fb_elem_type_is_array (a->type) || same_dims (a, b);
}

FbShape *
_fb_infer_array (FbInferCtx *c, FbElemType t, int rank, const int64_t *dims)
{
  return fb_shape_new_array (c->arena, t, rank, dims);
}

FbShape *
_fb_infer_with_type (FbInferCtx *c, const FbShape *s, FbElemType t)
{
  return _fb_infer_array (c, t, s->rank, s->dims);
}

FbShape *
_fb_infer_copy (FbInferCtx *c, const FbShape *s)
{
  return fb_shape_copy (c->arena, s);
}

gboolean
_fb_infer_need_operands (FbInferCtx *c, int n)
{
  if (c->instr->n_operands != n)
    return _fb_infer_fail (c, "%s takes %d operand%s but has %d", opname (c), n, n == 1 ? "" : "s",
                           c->instr->n_operands);
  return TRUE;
}

gboolean
_fb_infer_need_array (FbInferCtx *c, int i)
{
  if (!is_array (op (c, i)))
    return _fb_infer_fail (c, "operand %d of %s must be an array but has shape %s", i, opname (c),
                           _fb_infer_str (c, op (c, i)));
  return TRUE;
}

const FbDims *
_fb_infer_need_dims (FbInferCtx *c, FbAttrKey key)
{
  const FbDims *d = fb_instr_dims (c->instr, key);
  if (d == NULL)
    _fb_infer_fail (c, "%s needs the attribute %s", opname (c), fb_attr_key_name (key));
  return d;
}

static const FbDims empty_dims = { 0, NULL };

const FbDims *
_fb_infer_opt_dims (FbInferCtx *c, FbAttrKey key)
{
  const FbDims *d = fb_instr_dims (c->instr, key);
  return d ? d : &empty_dims;
}

/* Every entry of @d is a dimension number below @rank, none twice. */
gboolean
_fb_infer_check_dims (FbInferCtx *c, const FbDims *d, int rank, const char *what)
{
  for (int i = 0; i < d->n; i++)
    {
      if (d->v[i] < 0 || d->v[i] >= rank)
        return _fb_infer_fail (c, "%s %" G_GINT64_FORMAT " is out of range for rank %d", what, d->v[i], rank);
      for (int k = 0; k < i; k++)
        if (d->v[k] == d->v[i])
          return _fb_infer_fail (c, "%s %" G_GINT64_FORMAT " is listed twice", what, d->v[i]);
    }
  return TRUE;
}

gboolean
_fb_infer_check_sorted (FbInferCtx *c, const FbDims *d, const char *what)
{
  for (int i = 1; i < d->n; i++)
    if (d->v[i] <= d->v[i - 1])
      return _fb_infer_fail (c, "%s must be sorted", what);
  return TRUE;
}

/* One window dimension: output size of sliding @w over a base of size @in. */
gboolean
_fb_infer_window_out (FbInferCtx *c, int64_t in, const FbWindowDim *w, int i, int64_t *out)
{
  int64_t stride = w->stride, ld = w->lhs_dilate, rd = w->rhs_dilate;
  if (w->size < 0)
    return _fb_infer_fail (c, "window dimension %d has negative size %" G_GINT64_FORMAT, i, w->size);
  if (stride < 1 || ld < 1 || rd < 1)
    return _fb_infer_fail (c, "window dimension %d needs a positive stride and dilations", i);
  if (in < 0)
    {
      *out = -1;
      return TRUE;
    }
  int64_t base = in == 0 ? 0 : (in - 1) * ld + 1;
  int64_t padded = base + w->pad_lo + w->pad_hi;
  int64_t eff = w->size == 0 ? 0 : (w->size - 1) * rd + 1;
  if (padded < 0)
    return _fb_infer_fail (c, "window dimension %d pads a base of size %" G_GINT64_FORMAT " below zero", i, in);
  *out = padded < eff ? 0 : (padded - eff) / stride + 1;
  return TRUE;
}

/* The window attribute, which must have @rank dimensions; *out is NULL
 * when it is absent and not @required. */
gboolean
_fb_infer_get_window (FbInferCtx *c, int rank, gboolean required, const FbAttr **out)
{
  const FbAttr *a = fb_instr_get_attr (c->instr, FB_A_WINDOW);
  *out = NULL;
  if (a == NULL || a->kind != FB_AV_WINDOW)
    {
      if (required && rank > 0)
        return _fb_infer_fail (c, "%s needs a window", opname (c));
      return TRUE;
    }
  if (a->v.window.n != rank)
    return _fb_infer_fail (c, "window has %d dimensions but %s needs %d", a->v.window.n, opname (c), rank);
  *out = a;
  return TRUE;
}

/* ---------------------------------------------------------- elementwise */

static gboolean
is_transcendental_float_only (FbOpcode o)
{
  switch (o)
    {
    case FB_OP_FLOOR: case FB_OP_CEIL: case FB_OP_ROUND_NEAREST_AFZ: case FB_OP_ROUND_NEAREST_EVEN:
    case FB_OP_ERF: case FB_OP_IS_FINITE: case FB_OP_REDUCE_PRECISION:
      return TRUE;
    default:
      return FALSE;
    }
}

static FbShape *
infer_unary (FbInferCtx *c)
{
  FbOpcode o = c->instr->opcode;
  if (!_fb_infer_need_operands (c, 1) || !_fb_infer_need_array (c, 0))
    return NULL;
  const FbShape *a = op (c, 0);
  FbElemKind k = fb_elem_type_kind (a->type);
  gboolean fl = k == FB_KIND_FLOAT, cx = k == FB_KIND_COMPLEX;
  gboolean in = k == FB_KIND_SINT || k == FB_KIND_UINT;

  switch (o)
    {
    case FB_OP_NOT:
      if (!in && k != FB_KIND_PRED)
        return _fb_infer_error (c, "not needs an integer or pred operand, not %s", _fb_infer_str (c, a));
      return _fb_infer_copy (c, a);
    case FB_OP_POPCNT: case FB_OP_CLZ:
      if (!in)
        return _fb_infer_error (c, "%s needs an integer operand, not %s", opname (c), _fb_infer_str (c, a));
      return _fb_infer_copy (c, a);
    case FB_OP_NEGATE:
      if (!in && !fl && !cx)
        return _fb_infer_error (c, "negate needs a number, not %s", _fb_infer_str (c, a));
      return _fb_infer_copy (c, a);
    case FB_OP_SIGN:
      if (!fl && !cx && k != FB_KIND_SINT)
        return _fb_infer_error (c, "sign needs a signed integer, float or complex operand, not %s",
                                _fb_infer_str (c, a));
      return _fb_infer_copy (c, a);
    case FB_OP_ABS:
      if (!fl && !cx && k != FB_KIND_SINT)
        return _fb_infer_error (c, "abs needs a signed integer, float or complex operand, not %s",
                                _fb_infer_str (c, a));
      return _fb_infer_with_type (c, a, a->type == FB_C64 ? FB_F32 : a->type == FB_C128 ? FB_F64 : a->type);
    case FB_OP_REAL: case FB_OP_IMAG:
      if (!fl && !cx)
        return _fb_infer_error (c, "%s needs a float or complex operand, not %s", opname (c), _fb_infer_str (c, a));
      return _fb_infer_with_type (c, a, a->type == FB_C64 ? FB_F32 : a->type == FB_C128 ? FB_F64 : a->type);
    case FB_OP_IS_FINITE:
      if (!fl)
        return _fb_infer_error (c, "is-finite needs a float operand, not %s", _fb_infer_str (c, a));
      return _fb_infer_with_type (c, a, FB_PRED);
    case FB_OP_REDUCE_PRECISION:
      if (!fl)
        return _fb_infer_error (c, "reduce-precision needs a float operand, not %s", _fb_infer_str (c, a));
      if (fb_instr_int (c->instr, FB_A_EXPONENT_BITS, 1) < 1 || fb_instr_int (c->instr, FB_A_MANTISSA_BITS, 0) < 0)
        return _fb_infer_error (c, "reduce-precision needs exponent_bits >= 1 and mantissa_bits >= 0");
      return _fb_infer_copy (c, a);
    case FB_OP_CONVERT:
      {
        FbElemType t = c->instr->shape->type;
        if (!fb_elem_type_is_array (t) || t == FB_TUPLE)
          return _fb_infer_error (c, "convert must produce an array, not %s", _fb_infer_str (c, c->instr->shape));
        if (cx && fb_elem_type_kind (t) != FB_KIND_COMPLEX)
          return _fb_infer_error (c, "convert from complex %s to %s is not defined; use real or imag",
                                  _fb_infer_str (c, a), fb_elem_type_name (t));
        return _fb_infer_with_type (c, a, t);
      }
    case FB_OP_BITCAST_CONVERT:
      {
        FbElemType t = c->instr->shape->type;
        if (!fb_elem_type_is_array (t) || t == FB_TUPLE)
          return _fb_infer_error (c, "bitcast-convert must produce an array, not %s",
                                  _fb_infer_str (c, c->instr->shape));
        int ib = fb_elem_type_bits (a->type), ob = fb_elem_type_bits (t);
        if (ib == ob)
          return _fb_infer_with_type (c, a, t);
        if (ib > ob)
          {
            if (ib % ob != 0 || a->rank >= FB_INFER_MAX_RANK)
              return _fb_infer_error (c, "bitcast-convert from %d-bit to %d-bit elements", ib, ob);
            int64_t dims[FB_INFER_MAX_RANK];
            memcpy (dims, a->dims, sizeof (int64_t) * a->rank);
            dims[a->rank] = ib / ob;
            return _fb_infer_array (c, t, a->rank + 1, dims);
          }
        if (ob % ib != 0 || a->rank == 0 || !dim_eq (a->dims[a->rank - 1], ob / ib))
          return _fb_infer_error (c, "bitcast-convert from %s to %d-bit elements needs a last dimension of %d",
                                  _fb_infer_str (c, a), ob, ib ? ob / ib : 0);
        return _fb_infer_array (c, t, a->rank - 1, a->dims);
      }
    default:
      break;
    }

  if (is_transcendental_float_only (o))
    {
      if (!fl)
        return _fb_infer_error (c, "%s needs a float operand, not %s", opname (c), _fb_infer_str (c, a));
      return _fb_infer_copy (c, a);
    }
  switch (o)
    {
    case FB_OP_EXP: case FB_OP_EXPM1: case FB_OP_LOG: case FB_OP_LOG1P: case FB_OP_LOGISTIC:
    case FB_OP_SQRT: case FB_OP_RSQRT: case FB_OP_CBRT: case FB_OP_SIN: case FB_OP_COS:
    case FB_OP_TAN: case FB_OP_TANH: case FB_OP_ACOS: case FB_OP_ASIN: case FB_OP_ATAN:
    case FB_OP_ACOSH: case FB_OP_ASINH: case FB_OP_ATANH: case FB_OP_COSH: case FB_OP_SINH:
      if (!fl && !cx)
        return _fb_infer_error (c, "%s needs a float or complex operand, not %s", opname (c), _fb_infer_str (c, a));
      break;
    default:
      break;
    }
  return _fb_infer_copy (c, a);
}

/* Both operands the same shape (layouts aside); the first is returned. */
static gboolean
check_same_operands (FbInferCtx *c, int i, int j)
{
  const FbShape *a = op (c, i), *b = op (c, j);
  if (a->type != b->type || !same_dims (a, b))
    return _fb_infer_fail (c, "operand %d has shape %s but %s needs %s (same as operand %d)", j, _fb_infer_str (c, b),
                           opname (c), _fb_infer_str (c, a), i);
  return TRUE;
}

static FbShape *
infer_binary (FbInferCtx *c)
{
  FbOpcode o = c->instr->opcode;
  if (!_fb_infer_need_operands (c, 2) || !_fb_infer_need_array (c, 0) || !_fb_infer_need_array (c, 1))
    return NULL;
  const FbShape *a = op (c, 0);
  FbElemKind k = fb_elem_type_kind (a->type);

  if (o == FB_OP_STOCHASTIC_CONVERT)
    {
      const FbShape *r = op (c, 1);
      if (k != FB_KIND_FLOAT)
        return _fb_infer_error (c, "stochastic-convert needs a float operand, not %s", _fb_infer_str (c, a));
      if (fb_elem_type_kind (r->type) != FB_KIND_UINT || !same_dims (a, r)
          || fb_elem_type_bits (r->type) != fb_elem_type_bits (a->type))
        return _fb_infer_error (
            c, "stochastic-convert needs random bits %s of the operand's dimensions and width, not %s",
            _fb_infer_str (c, _fb_infer_with_type (c, a,
                                                   fb_elem_type_bits (a->type) == 64   ? FB_U64
                                                   : fb_elem_type_bits (a->type) == 32 ? FB_U32
                                                   : fb_elem_type_bits (a->type) == 16 ? FB_U16
                                                                                       : FB_U8)),
            _fb_infer_str (c, r));
      return _fb_infer_with_type (c, a, c->instr->shape->type);
    }
  if (!check_same_operands (c, 0, 1))
    return NULL;
  switch (o)
    {
    case FB_OP_AND: case FB_OP_OR: case FB_OP_XOR:
      if (k != FB_KIND_PRED && k != FB_KIND_SINT && k != FB_KIND_UINT)
        return _fb_infer_error (c, "%s needs integer or pred operands, not %s", opname (c), _fb_infer_str (c, a));
      break;
    case FB_OP_SHIFT_LEFT: case FB_OP_SHIFT_RIGHT_ARITHMETIC: case FB_OP_SHIFT_RIGHT_LOGICAL:
    case FB_OP_MULHI:
      if (k != FB_KIND_SINT && k != FB_KIND_UINT)
        return _fb_infer_error (c, "%s needs integer operands, not %s", opname (c), _fb_infer_str (c, a));
      break;
    case FB_OP_COMPLEX:
      if (a->type != FB_F32 && a->type != FB_F64)
        return _fb_infer_error (c, "complex needs f32 or f64 operands, not %s", _fb_infer_str (c, a));
      return _fb_infer_with_type (c, a, a->type == FB_F32 ? FB_C64 : FB_C128);
    case FB_OP_ATAN2:
      if (k != FB_KIND_FLOAT && k != FB_KIND_COMPLEX)
        return _fb_infer_error (c, "atan2 needs float or complex operands, not %s", _fb_infer_str (c, a));
      break;
    default:
      if (k == FB_KIND_TOKEN || k == FB_KIND_OPAQUE)
        return _fb_infer_error (c, "%s needs numbers, not %s", opname (c), _fb_infer_str (c, a));
      break;
    }
  return _fb_infer_copy (c, a);
}

static FbShape *
infer_compare (FbInferCtx *c)
{
  static const char *const dirs[] = { "EQ", "NE", "LT", "LE", "GT", "GE" };
  if (!_fb_infer_need_operands (c, 2) || !_fb_infer_need_array (c, 0) || !_fb_infer_need_array (c, 1)
      || !check_same_operands (c, 0, 1))
    return NULL;
  const FbShape *a = op (c, 0);
  const char *dir = fb_instr_str (c->instr, FB_A_DIRECTION);
  gboolean known = FALSE;
  if (dir == NULL)
    return _fb_infer_error (c, "compare needs a direction (EQ, NE, LT, LE, GT or GE)");
  for (gsize i = 0; i < G_N_ELEMENTS (dirs); i++)
    known |= strcmp (dir, dirs[i]) == 0;
  if (!known)
    return _fb_infer_error (c, "unknown compare direction '%s'", dir);
  const char *type = fb_instr_str (c->instr, FB_A_COMPARE_TYPE);
  if (type)
    {
      FbElemKind k = fb_elem_type_kind (a->type);
      gboolean ok;
      if (strcmp (type, "FLOAT") == 0 || strcmp (type, "TOTALORDER") == 0)
        ok = k == FB_KIND_FLOAT || k == FB_KIND_COMPLEX;
      else if (strcmp (type, "SIGNED") == 0)
        ok = k == FB_KIND_SINT;
      else if (strcmp (type, "UNSIGNED") == 0)
        ok = k == FB_KIND_UINT || k == FB_KIND_PRED;
      else
        return _fb_infer_error (c, "unknown compare type '%s'", type);
      if (!ok)
        return _fb_infer_error (c, "compare type %s does not apply to %s operands", type,
                                fb_elem_type_name (a->type));
    }
  return _fb_infer_with_type (c, a, FB_PRED);
}

static FbShape *
infer_select (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 3) || !_fb_infer_need_array (c, 0) || !_fb_infer_need_array (c, 1)
      || !_fb_infer_need_array (c, 2))
    return NULL;
  const FbShape *p = op (c, 0), *t = op (c, 1);
  if (!check_same_operands (c, 1, 2))
    return NULL;
  if (p->type != FB_PRED || (p->rank != 0 && !same_dims (p, t)))
    return _fb_infer_error (c, "operand 0 has shape %s but select needs %s or pred[]", _fb_infer_str (c, p),
                            _fb_infer_str (c, _fb_infer_with_type (c, t, FB_PRED)));
  return _fb_infer_copy (c, t);
}

static FbShape *
infer_clamp (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 3) || !_fb_infer_need_array (c, 0) || !_fb_infer_need_array (c, 1)
      || !_fb_infer_need_array (c, 2))
    return NULL;
  const FbShape *x = op (c, 1);
  for (int i = 0; i < 3; i += 2)
    {
      const FbShape *b = op (c, i);
      if (b->type != x->type || (b->rank != 0 && !same_dims (b, x)))
        return _fb_infer_error (c, "operand %d has shape %s but clamp needs %s[] or %s (like operand 1)", i,
                                _fb_infer_str (c, b), fb_elem_type_name (x->type), _fb_infer_str (c, x));
    }
  return _fb_infer_copy (c, x);
}

/* ------------------------------------------------------------- movement */

static FbShape *
infer_broadcast (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 1) || !_fb_infer_need_array (c, 0))
    return NULL;
  const FbShape *a = op (c, 0), *out = c->instr->shape;
  const FbDims *d = _fb_infer_opt_dims (c, FB_A_DIMENSIONS);
  if (!is_array (out))
    return _fb_infer_error (c, "broadcast must produce an array, not %s", _fb_infer_str (c, out));
  if (d->n != a->rank)
    return _fb_infer_error (c, "dimensions has %d entries but the operand %s has rank %d", d->n, _fb_infer_str (c, a),
                            a->rank);
  if (!_fb_infer_check_dims (c, d, out->rank, "broadcast dimension"))
    return NULL;
  for (int i = 0; i < d->n; i++)
    if (!dim_eq (out->dims[d->v[i]], a->dims[i]))
      return _fb_infer_error (c,
                              "operand dimension %d (size %" G_GINT64_FORMAT
                              ") maps to output dimension %" G_GINT64_FORMAT " of size %" G_GINT64_FORMAT,
                              i, a->dims[i], d->v[i], out->dims[d->v[i]]);
  return _fb_infer_with_type (c, out, a->type);
}

static FbShape *
infer_reshape (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 1) || !_fb_infer_need_array (c, 0))
    return NULL;
  const FbShape *a = op (c, 0), *out = c->instr->shape;
  if (!is_array (out))
    return _fb_infer_error (c, "reshape must produce an array, not %s", _fb_infer_str (c, out));
  gboolean dynamic = FALSE;
  for (int i = 0; i < a->rank; i++)
    dynamic |= a->dims[i] < 0;
  for (int i = 0; i < out->rank; i++)
    dynamic |= out->dims[i] < 0;
  if (!dynamic && fb_shape_elements (a) != fb_shape_elements (out))
    return _fb_infer_error (c,
                            "reshape from %s (%" G_GINT64_FORMAT " elements) to %s (%" G_GINT64_FORMAT " elements)",
                            _fb_infer_str (c, a), fb_shape_elements (a),
                            _fb_infer_str (c, _fb_infer_with_type (c, out, a->type)), fb_shape_elements (out));
  return _fb_infer_with_type (c, out, a->type);
}

static FbShape *
infer_transpose (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 1) || !_fb_infer_need_array (c, 0))
    return NULL;
  const FbShape *a = op (c, 0);
  const FbDims *d = _fb_infer_need_dims (c, FB_A_DIMENSIONS);
  if (d == NULL)
    return NULL;
  if (d->n != a->rank)
    return _fb_infer_error (c, "dimensions={...} has %d entries but the operand has rank %d", d->n, a->rank);
  if (!_fb_infer_check_dims (c, d, a->rank, "transpose dimension"))
    return NULL;
  int64_t dims[FB_INFER_MAX_RANK];
  for (int i = 0; i < d->n && i < FB_INFER_MAX_RANK; i++)
    dims[i] = a->dims[d->v[i]];
  return _fb_infer_array (c, a->type, a->rank, dims);
}

static FbShape *
infer_slice (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 1) || !_fb_infer_need_array (c, 0))
    return NULL;
  const FbShape *a = op (c, 0);
  const FbAttr *s = fb_instr_get_attr (c->instr, FB_A_SLICE);
  if (s == NULL || s->kind != FB_AV_SLICE)
    return _fb_infer_error (c, "slice needs slice={[start:limit:stride], ...}");
  if (s->v.slice.n != a->rank)
    return _fb_infer_error (c, "slice has %d ranges but the operand %s has rank %d", s->v.slice.n,
                            _fb_infer_str (c, a), a->rank);
  int64_t dims[FB_INFER_MAX_RANK];
  for (int i = 0; i < a->rank && i < FB_INFER_MAX_RANK; i++)
    {
      const FbSliceDim *r = &s->v.slice.d[i];
      if (r->stride < 1)
        return _fb_infer_error (c, "slice dimension %d has stride %" G_GINT64_FORMAT "; it must be positive", i,
                                r->stride);
      if (r->start < 0 || r->start > r->limit || (a->dims[i] >= 0 && r->limit > a->dims[i]))
        return _fb_infer_error (c,
                                "slice [%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT
                                "] is out of bounds for dimension %d of size %" G_GINT64_FORMAT,
                                r->start, r->limit, i, a->dims[i]);
      dims[i] = (r->limit - r->start + r->stride - 1) / r->stride;
    }
  return _fb_infer_array (c, a->type, a->rank, dims);
}

static gboolean
check_start_indices (FbInferCtx *c, int first, int rank)
{
  int n = c->instr->n_operands - first;
  if (n == 1 && rank != 1 && is_array (op (c, first)) && op (c, first)->rank == 1
      && fb_elem_type_is_int (op (c, first)->type) && dim_eq (op (c, first)->dims[0], rank))
    return TRUE; /* the older form: one vector of start indices */
  if (n != rank)
    return _fb_infer_fail (c, "%s needs %d scalar start indices (one per dimension) but has %d", opname (c), rank, n);
  for (int i = first; i < c->instr->n_operands; i++)
    {
      const FbShape *s = op (c, i);
      if (!is_scalar (s) || !fb_elem_type_is_int (s->type))
        return _fb_infer_fail (c, "start index operand %d has shape %s but must be an integer scalar", i,
                               _fb_infer_str (c, s));
      if (s->type != op (c, first)->type)
        return _fb_infer_fail (c, "start index operand %d has type %s but operand %d has %s", i,
                               fb_elem_type_name (s->type), first, fb_elem_type_name (op (c, first)->type));
    }
  return TRUE;
}

static FbShape *
infer_dynamic_slice (FbInferCtx *c)
{
  if (c->instr->n_operands < 1 || !_fb_infer_need_array (c, 0))
    return c->instr->n_operands < 1 ? (_fb_infer_fail (c, "dynamic-slice needs an operand"), NULL) : NULL;
  const FbShape *a = op (c, 0);
  if (!check_start_indices (c, 1, a->rank))
    return NULL;
  const FbDims *sz = _fb_infer_need_dims (c, FB_A_DYNAMIC_SLICE_SIZES);
  if (sz == NULL)
    return NULL;
  if (sz->n != a->rank)
    return _fb_infer_error (c, "dynamic_slice_sizes has %d entries but the operand %s has rank %d", sz->n,
                            _fb_infer_str (c, a), a->rank);
  for (int i = 0; i < sz->n; i++)
    if (sz->v[i] < 0 || (a->dims[i] >= 0 && sz->v[i] > a->dims[i]))
      return _fb_infer_error (c, "slice size %" G_GINT64_FORMAT " does not fit dimension %d of %s", sz->v[i], i,
                              _fb_infer_str (c, a));
  return _fb_infer_array (c, a->type, a->rank, sz->v);
}

static FbShape *
infer_dynamic_update_slice (FbInferCtx *c)
{
  if (c->instr->n_operands < 2)
    return _fb_infer_error (c, "dynamic-update-slice needs an operand, an update and start indices");
  if (!_fb_infer_need_array (c, 0) || !_fb_infer_need_array (c, 1))
    return NULL;
  const FbShape *a = op (c, 0), *u = op (c, 1);
  if (u->type != a->type || u->rank != a->rank)
    return _fb_infer_error (c, "update %s must have the element type and rank of the operand %s",
                            _fb_infer_str (c, u), _fb_infer_str (c, a));
  for (int i = 0; i < a->rank; i++)
    if (u->dims[i] >= 0 && a->dims[i] >= 0 && u->dims[i] > a->dims[i])
      return _fb_infer_error (c, "update %s does not fit in the operand %s (dimension %d)", _fb_infer_str (c, u),
                              _fb_infer_str (c, a), i);
  if (!check_start_indices (c, 2, a->rank))
    return NULL;
  return _fb_infer_copy (c, a);
}

static FbShape *
infer_concatenate (FbInferCtx *c)
{
  int n = c->instr->n_operands;
  if (n < 1)
    return _fb_infer_error (c, "concatenate needs at least one operand");
  const FbDims *d = _fb_infer_need_dims (c, FB_A_DIMENSIONS);
  if (d == NULL)
    return NULL;
  if (!_fb_infer_need_array (c, 0))
    return NULL;
  const FbShape *a = op (c, 0);
  if (d->n != 1 || d->v[0] < 0 || d->v[0] >= a->rank)
    return _fb_infer_error (c, "concatenate needs one dimension below the rank %d", a->rank);
  int64_t cd = d->v[0];
  int64_t dims[FB_INFER_MAX_RANK];
  memcpy (dims, a->dims, sizeof (int64_t) * MIN (a->rank, FB_INFER_MAX_RANK));
  for (int i = 1; i < n; i++)
    {
      if (!_fb_infer_need_array (c, i))
        return NULL;
      const FbShape *b = op (c, i);
      gboolean ok = b->type == a->type && b->rank == a->rank;
      for (int k = 0; ok && k < a->rank; k++)
        ok = k == cd || dim_eq (a->dims[k], b->dims[k]);
      if (!ok)
        return _fb_infer_error (c,
                                "operand %d has shape %s but concatenate along dimension %" G_GINT64_FORMAT
                                " needs it to match operand 0 %s in every other dimension",
                                i, _fb_infer_str (c, b), cd, _fb_infer_str (c, a));
      dims[cd] = dims[cd] < 0 || b->dims[cd] < 0 ? -1 : dims[cd] + b->dims[cd];
    }
  return _fb_infer_array (c, a->type, a->rank, dims);
}

static FbShape *
infer_pad (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 2) || !_fb_infer_need_array (c, 0) || !_fb_infer_need_array (c, 1))
    return NULL;
  const FbShape *a = op (c, 0), *v = op (c, 1);
  if (!is_scalar (v) || v->type != a->type)
    return _fb_infer_error (c, "padding value has shape %s but must be %s[]", _fb_infer_str (c, v),
                            fb_elem_type_name (a->type));
  const FbAttr *p = fb_instr_get_attr (c->instr, FB_A_PADDING);
  if (p == NULL || p->kind != FB_AV_PADDING)
    return _fb_infer_error (c, "pad needs padding=lo_hi_interior per dimension");
  if (p->v.pad.n != a->rank)
    return _fb_infer_error (c, "padding has %d dimensions but the operand %s has rank %d", p->v.pad.n,
                            _fb_infer_str (c, a), a->rank);
  int64_t dims[FB_INFER_MAX_RANK];
  for (int i = 0; i < a->rank && i < FB_INFER_MAX_RANK; i++)
    {
      const FbPadDim *pd = &p->v.pad.d[i];
      if (pd->interior < 0)
        return _fb_infer_error (c, "interior padding of dimension %d is negative", i);
      if (a->dims[i] < 0)
        {
          dims[i] = -1;
          continue;
        }
      dims[i] = pd->lo + pd->hi + a->dims[i] + MAX (a->dims[i] - 1, 0) * pd->interior;
      if (dims[i] < 0)
        return _fb_infer_error (c, "padding of dimension %d leaves a negative size %" G_GINT64_FORMAT, i, dims[i]);
    }
  return _fb_infer_array (c, a->type, a->rank, dims);
}

static FbShape *
infer_reverse (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 1) || !_fb_infer_need_array (c, 0))
    return NULL;
  if (!_fb_infer_check_dims (c, _fb_infer_opt_dims (c, FB_A_DIMENSIONS), op (c, 0)->rank, "reverse dimension"))
    return NULL;
  return _fb_infer_copy (c, op (c, 0));
}

static FbShape *
infer_iota (FbInferCtx *c)
{
  const FbShape *out = c->instr->shape;
  if (!_fb_infer_need_operands (c, 0))
    return NULL;
  if (!is_array (out) || out->rank < 1)
    return _fb_infer_error (c, "iota must produce an array of rank 1 or more, not %s", _fb_infer_str (c, out));
  int64_t d = fb_instr_int (c->instr, FB_A_IOTA_DIMENSION, 0);
  if (d < 0 || d >= out->rank)
    return _fb_infer_error (c, "iota_dimension %" G_GINT64_FORMAT " is out of range for %s", d,
                            _fb_infer_str (c, out));
  return _fb_infer_copy (c, out);
}

/* ------------------------------------------------------ gather, scatter */

/* The start indices with index_vector_dim appended as a size-1 dimension
 * when it equals their rank. */
gboolean
_fb_infer_expand_indices (FbInferCtx *c, const FbShape *idx, int64_t ivd, int64_t *dims, int *rank)
{
  if (!is_array (idx) || !fb_elem_type_is_int (idx->type))
    return _fb_infer_fail (c, "start indices have shape %s but must be an integer array", _fb_infer_str (c, idx));
  if (ivd < 0 || ivd > idx->rank)
    return _fb_infer_fail (c, "index_vector_dim %" G_GINT64_FORMAT " is out of range for indices %s", ivd,
                           _fb_infer_str (c, idx));
  if (idx->rank + 1 >= FB_INFER_MAX_RANK)
    return _fb_infer_fail (c, "start indices have too many dimensions");
  memcpy (dims, idx->dims, sizeof (int64_t) * idx->rank);
  *rank = idx->rank;
  if (ivd == idx->rank)
    dims[(*rank)++] = 1;
  return TRUE;
}

gboolean
_fb_infer_check_batching (FbInferCtx *c, const FbShape *operand, const FbDims *ob, const FbDims *ib,
                          const int64_t *idims, int irank, int64_t ivd, const char *on, const char *in)
{
  if (ob->n != ib->n)
    return _fb_infer_fail (c, "%s and %s must have the same number of entries", on, in);
  for (int i = 0; i < ib->n; i++)
    {
      if (ib->v[i] < 0 || ib->v[i] >= irank || ib->v[i] == ivd)
        return _fb_infer_fail (c, "%s %" G_GINT64_FORMAT " is out of range or the index vector dimension", in,
                               ib->v[i]);
      if (!dim_eq (operand->dims[ob->v[i]], idims[ib->v[i]]))
        return _fb_infer_fail (c,
                               "batching dimension sizes differ: operand dimension %" G_GINT64_FORMAT
                               " has %" G_GINT64_FORMAT ", indices dimension %" G_GINT64_FORMAT
                               " has %" G_GINT64_FORMAT,
                               ob->v[i], operand->dims[ob->v[i]], ib->v[i], idims[ib->v[i]]);
    }
  return _fb_infer_check_dims (c, ib, irank, in);
}

static FbShape *
infer_gather (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 2) || !_fb_infer_need_array (c, 0))
    return NULL;
  const FbShape *a = op (c, 0);
  int64_t ivd = fb_instr_int (c->instr, FB_A_INDEX_VECTOR_DIM, op (c, 1)->rank);
  int64_t idims[FB_INFER_MAX_RANK];
  int irank;
  if (!_fb_infer_expand_indices (c, op (c, 1), ivd, idims, &irank))
    return NULL;
  const FbDims *offset = _fb_infer_opt_dims (c, FB_A_OFFSET_DIMS),
               *collapsed = _fb_infer_opt_dims (c, FB_A_COLLAPSED_SLICE_DIMS);
  const FbDims *map = _fb_infer_opt_dims (c, FB_A_START_INDEX_MAP),
               *ob = _fb_infer_opt_dims (c, FB_A_OPERAND_BATCHING_DIMS);
  const FbDims *ib = _fb_infer_opt_dims (c, FB_A_START_INDICES_BATCHING_DIMS);
  const FbDims *sizes = _fb_infer_need_dims (c, FB_A_SLICE_SIZES);
  if (sizes == NULL)
    return NULL;
  if (sizes->n != a->rank)
    return _fb_infer_error (c, "slice_sizes has %d entries but the operand %s has rank %d", sizes->n,
                            _fb_infer_str (c, a), a->rank);
  for (int i = 0; i < a->rank; i++)
    if (sizes->v[i] < 0 || (a->dims[i] >= 0 && sizes->v[i] > a->dims[i]))
      return _fb_infer_error (c, "slice size %" G_GINT64_FORMAT " does not fit dimension %d of the operand %s",
                              sizes->v[i], i, _fb_infer_str (c, a));
  if (!dim_eq (idims[ivd], map->n))
    return _fb_infer_error (c, "start_index_map has %d entries but the index vector has %" G_GINT64_FORMAT, map->n,
                            idims[ivd]);
  if (!_fb_infer_check_dims (c, map, a->rank, "start_index_map entry")
      || !_fb_infer_check_dims (c, collapsed, a->rank, "collapsed_slice_dims entry")
      || !_fb_infer_check_sorted (c, collapsed, "collapsed_slice_dims")
      || !_fb_infer_check_dims (c, ob, a->rank, "operand_batching_dims entry")
      || !_fb_infer_check_sorted (c, ob, "operand_batching_dims")
      || !_fb_infer_check_sorted (c, offset, "offset_dims"))
    return NULL;
  for (int i = 0; i < collapsed->n; i++)
    if (sizes->v[collapsed->v[i]] > 1 || dims_contain (ob, collapsed->v[i]))
      return _fb_infer_error (
          c, "collapsed dimension %" G_GINT64_FORMAT " must have slice size 1 and not be a batching dimension",
          collapsed->v[i]);
  for (int i = 0; i < ob->n; i++)
    if (sizes->v[ob->v[i]] > 1)
      return _fb_infer_error (c, "batching dimension %" G_GINT64_FORMAT " must have slice size 1", ob->v[i]);
  for (int i = 0; i < map->n; i++)
    if (dims_contain (ob, map->v[i]))
      return _fb_infer_error (c, "start_index_map entry %" G_GINT64_FORMAT " is a batching dimension", map->v[i]);
  if (offset->n + collapsed->n + ob->n != a->rank)
    return _fb_infer_error (
        c, "offset_dims (%d) + collapsed_slice_dims (%d) + operand_batching_dims (%d) must equal the operand rank %d",
        offset->n, collapsed->n, ob->n, a->rank);
  if (!_fb_infer_check_batching (c, a, ob, ib, idims, irank, ivd, "operand_batching_dims",
                                 "start_indices_batching_dims"))
    return NULL;
  int out_rank = offset->n + irank - 1;
  if (out_rank >= FB_INFER_MAX_RANK || !_fb_infer_check_dims (c, offset, out_rank, "offset_dims entry"))
    return NULL;
  int64_t dims[FB_INFER_MAX_RANK];
  int next_off = 0, next_batch = 0;
  for (int i = 0; i < out_rank; i++)
    {
      if (dims_contain (offset, i))
        {
          while (dims_contain (collapsed, next_off) || dims_contain (ob, next_off))
            next_off++;
          dims[i] = sizes->v[next_off++];
        }
      else
        {
          if (next_batch == ivd)
            next_batch++;
          dims[i] = idims[next_batch++];
        }
    }
  return _fb_infer_array (c, a->type, out_rank, dims);
}

/* ----------------------------------------------------------- contraction */

static FbShape *
infer_dot (FbInferCtx *c)
{
  if (c->instr->n_operands < 2)
    return _fb_infer_error (c, "dot takes 2 operands but has %d", c->instr->n_operands);
  if (!_fb_infer_need_array (c, 0) || !_fb_infer_need_array (c, 1))
    return NULL;
  const FbShape *l = op (c, 0), *r = op (c, 1);
  FbElemType out_t = c->instr->shape->type;
  const FbDims *lb = _fb_infer_opt_dims (c, FB_A_LHS_BATCH_DIMS), *rb = _fb_infer_opt_dims (c, FB_A_RHS_BATCH_DIMS);
  const FbDims *lc = _fb_infer_opt_dims (c, FB_A_LHS_CONTRACTING_DIMS),
               *rc = _fb_infer_opt_dims (c, FB_A_RHS_CONTRACTING_DIMS);
  if (lb->n != rb->n)
    return _fb_infer_error (c, "lhs_batch_dims has %d entries but rhs_batch_dims has %d", lb->n, rb->n);
  if (lc->n != rc->n)
    return _fb_infer_error (c, "lhs_contracting_dims has %d entries but rhs_contracting_dims has %d", lc->n, rc->n);
  if (!_fb_infer_check_dims (c, lb, l->rank, "lhs batch dimension")
      || !_fb_infer_check_dims (c, lc, l->rank, "lhs contracting dimension")
      || !_fb_infer_check_dims (c, rb, r->rank, "rhs batch dimension")
      || !_fb_infer_check_dims (c, rc, r->rank, "rhs contracting dimension"))
    return NULL;
  for (int i = 0; i < lc->n; i++)
    {
      if (dims_contain (lb, lc->v[i]) || dims_contain (rb, rc->v[i]))
        return _fb_infer_error (c, "a dimension cannot be both batch and contracting");
      if (!dim_eq (l->dims[lc->v[i]], r->dims[rc->v[i]]))
        return _fb_infer_error (c,
                                "contracting dimensions differ: lhs %s dimension %" G_GINT64_FORMAT
                                " vs rhs %s dimension %" G_GINT64_FORMAT,
                                _fb_infer_str (c, l), lc->v[i], _fb_infer_str (c, r), rc->v[i]);
    }
  for (int i = 0; i < lb->n; i++)
    if (!dim_eq (l->dims[lb->v[i]], r->dims[rb->v[i]]))
      return _fb_infer_error (
          c, "batch dimensions differ: lhs %s dimension %" G_GINT64_FORMAT " vs rhs %s dimension %" G_GINT64_FORMAT,
          _fb_infer_str (c, l), lb->v[i], _fb_infer_str (c, r), rb->v[i]);
  /* Operand types may differ (the output type is the preferred type), but
   * an integer result may not be narrower than an integer operand. */
  if (!fb_elem_type_is_array (out_t) || out_t == FB_TUPLE)
    return _fb_infer_error (c, "dot must produce an array");
  for (int i = 0; i < 2; i++)
    {
      FbElemType t = op (c, i)->type;
      FbElemKind k = fb_elem_type_kind (t);
      if (k == FB_KIND_COMPLEX && fb_elem_type_kind (out_t) != FB_KIND_COMPLEX)
        return _fb_infer_error (c, "dot of complex operands must produce complex numbers, not %s",
                                fb_elem_type_name (out_t));
      if (!fb_elem_type_is_float (t) && t != out_t && fb_elem_type_bits (out_t) < fb_elem_type_bits (t))
        return _fb_infer_error (c, "result type %s is narrower than operand %d type %s", fb_elem_type_name (out_t), i,
                                fb_elem_type_name (t));
    }
  int64_t dims[FB_INFER_MAX_RANK];
  int rank = 0;
  if (l->rank + r->rank > FB_INFER_MAX_RANK)
    return _fb_infer_error (c, "dot operands have too many dimensions");
  for (int i = 0; i < lb->n; i++)
    dims[rank++] = l->dims[lb->v[i]];
  for (int i = 0; i < l->rank; i++)
    if (!dims_contain (lb, i) && !dims_contain (lc, i))
      dims[rank++] = l->dims[i];
  for (int i = 0; i < r->rank; i++)
    if (!dims_contain (rb, i) && !dims_contain (rc, i))
      dims[rank++] = r->dims[i];
  return _fb_infer_array (c, out_t, rank, dims);
}

static FbShape *
infer_convolution (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 2) || !_fb_infer_need_array (c, 0) || !_fb_infer_need_array (c, 1))
    return NULL;
  const FbShape *in = op (c, 0), *k = op (c, 1);
  const FbAttr *dl = fb_instr_get_attr (c->instr, FB_A_DIM_LABELS);
  if (dl == NULL || dl->kind != FB_AV_DIM_LABELS)
    return _fb_infer_error (c, "convolution needs dim_labels like b01f_01io->b01f");
  const FbConvDims *cd = &dl->v.conv;
  int ns = cd->n_spatial, rank = ns + 2;
  if (in->rank != rank || k->rank != rank)
    return _fb_infer_error (c, "dim_labels name %d dimensions but the input is %s and the kernel %s", rank,
                            _fb_infer_str (c, in), _fb_infer_str (c, k));
  gboolean labels_ok = cd->in_batch < rank && cd->in_feature < rank && cd->k_in < rank && cd->k_out < rank
                       && cd->out_batch < rank && cd->out_feature < rank && cd->in_batch >= 0 && cd->in_feature >= 0
                       && cd->k_in >= 0 && cd->k_out >= 0 && cd->out_batch >= 0 && cd->out_feature >= 0;
  for (int i = 0; labels_ok && i < ns; i++)
    labels_ok = cd->in_spatial[i] >= 0 && cd->in_spatial[i] < rank && cd->k_spatial[i] >= 0 && cd->k_spatial[i] < rank
                && cd->out_spatial[i] >= 0 && cd->out_spatial[i] < rank;
  if (!labels_ok)
    return _fb_infer_error (c, "dim_labels are inconsistent");
  int64_t fgc = fb_instr_int (c->instr, FB_A_FEATURE_GROUP_COUNT, 1);
  int64_t bgc = fb_instr_int (c->instr, FB_A_BATCH_GROUP_COUNT, 1);
  if (fgc < 1 || bgc < 1)
    return _fb_infer_error (c, "feature_group_count and batch_group_count must be positive");
  if (fgc > 1 && bgc > 1)
    return _fb_infer_error (c, "feature_group_count and batch_group_count cannot both be above 1");
  int64_t in_f = in->dims[cd->in_feature], in_b = in->dims[cd->in_batch];
  int64_t k_in = k->dims[cd->k_in], k_out = k->dims[cd->k_out];
  if (in_f >= 0 && k_in >= 0 && (in_f % fgc != 0 || in_f / fgc != k_in))
    return _fb_infer_error (c,
                            "input has %" G_GINT64_FORMAT " features but the kernel takes %" G_GINT64_FORMAT
                            " per group with feature_group_count=%" G_GINT64_FORMAT,
                            in_f, k_in, fgc);
  if (k_out >= 0 && (k_out % fgc != 0 || k_out % bgc != 0))
    return _fb_infer_error (c, "kernel output features %" G_GINT64_FORMAT " must be divisible by the group count",
                            k_out);
  if (in_b >= 0 && in_b % bgc != 0)
    return _fb_infer_error (
        c, "input batch %" G_GINT64_FORMAT " is not divisible by batch_group_count=%" G_GINT64_FORMAT, in_b, bgc);
  const FbAttr *w;
  if (!_fb_infer_get_window (c, ns, FALSE, &w))
    return NULL;
  int64_t dims[FB_INFER_MAX_RANK];
  dims[cd->out_batch] = in_b < 0 ? -1 : in_b / bgc;
  dims[cd->out_feature] = k_out;
  for (int i = 0; i < ns; i++)
    {
      FbWindowDim def = { k->dims[cd->k_spatial[i]], 1, 0, 0, 1, 1, FALSE };
      const FbWindowDim *wd = w ? &w->v.window.d[i] : &def;
      /* XLA's builders make the window size equal the kernel's spatial
       * size, but imported modules do not always; the window decides. */
      if (!_fb_infer_window_out (c, in->dims[cd->in_spatial[i]], wd, i, &dims[cd->out_spatial[i]]))
        return NULL;
    }
  FbElemType out_t = c->instr->shape->type;
  if (!fb_elem_type_is_array (out_t) || out_t == FB_TUPLE)
    return _fb_infer_error (c, "convolution must produce an array");
  return _fb_infer_array (c, out_t, rank, dims);
}

/* ------------------------------------------------------------ batch norm */

static FbShape *
infer_batch_norm (FbInferCtx *c)
{
  FbOpcode o = c->instr->opcode;
  int n = o == FB_OP_BATCH_NORM_TRAINING ? 3 : 5;
  if (!_fb_infer_need_operands (c, n))
    return NULL;
  for (int i = 0; i < n; i++)
    if (!_fb_infer_need_array (c, i))
      return NULL;
  const FbShape *a = op (c, 0);
  if (!fb_elem_type_is_float (a->type))
    return _fb_infer_error (c, "%s needs a float operand, not %s", opname (c), _fb_infer_str (c, a));
  int64_t fi = fb_instr_int (c->instr, FB_A_FEATURE_INDEX, -1);
  if (fi < 0 || fi >= a->rank)
    return _fb_infer_error (c, "feature_index %" G_GINT64_FORMAT " is out of range for %s", fi, _fb_infer_str (c, a));
  int64_t f = a->dims[fi];
  FbShape *feat = _fb_infer_array (c, a->type, 1, &f);
  /* Operand i (after the first) is a feature vector, except grad_output of
   * batch-norm-grad (the last), which has the operand's shape. */
  for (int i = 1; i < n; i++)
    {
      gboolean full = o == FB_OP_BATCH_NORM_GRAD && i == 4;
      const FbShape *want = full ? a : feat;
      if (op (c, i)->type != a->type || !same_dims (op (c, i), want))
        return _fb_infer_error (c, "operand %d has shape %s but %s needs %s", i, _fb_infer_str (c, op (c, i)),
                                opname (c), _fb_infer_str (c, want));
    }
  if (o == FB_OP_BATCH_NORM_INFERENCE)
    return _fb_infer_copy (c, a);
  FbShape *elems[3] = { _fb_infer_copy (c, a), feat, feat };
  return fb_shape_new_tuple (c->arena, 3, elems);
}

/* ------------------------------------------------------------------ misc */

static FbShape *
infer_rng (FbInferCtx *c)
{
  const FbShape *out = c->instr->shape;
  const char *dist = fb_instr_str (c->instr, FB_A_DISTRIBUTION);
  if (!is_array (out))
    return _fb_infer_error (c, "rng must produce an array, not %s", _fb_infer_str (c, out));
  if (!_fb_infer_need_operands (c, 2))
    return NULL;
  if (dist && strcmp (dist, "rng_normal") == 0 && !fb_elem_type_is_float (out->type))
    return _fb_infer_error (c, "rng_normal needs a float result, not %s", _fb_infer_str (c, out));
  for (int i = 0; i < 2; i++)
    if (!is_scalar (op (c, i)) || op (c, i)->type != out->type)
      return _fb_infer_error (c, "operand %d has shape %s but rng needs %s[]", i, _fb_infer_str (c, op (c, i)),
                              fb_elem_type_name (out->type));
  return _fb_infer_copy (c, out);
}

static FbShape *
infer_rng_bit_generator (FbInferCtx *c)
{
  const FbShape *out = c->instr->shape;
  if (!_fb_infer_need_operands (c, 1) || !_fb_infer_need_array (c, 0))
    return NULL;
  /* Normally (new state, bits); imported modules also use the bits alone. */
  const FbShape *bits = out;
  if (out->type == FB_TUPLE)
    {
      if (out->n_elems != 2 || !is_array (out->elems[1]))
        return _fb_infer_error (c, "rng-bit-generator must produce (state, bits), not %s", _fb_infer_str (c, out));
      if (!_fb_infer_compatible (out->elems[0], op (c, 0)))
        return _fb_infer_error (c, "the new state %s must have the shape of the state operand %s",
                                _fb_infer_str (c, out->elems[0]), _fb_infer_str (c, op (c, 0)));
      bits = out->elems[1];
    }
  FbElemKind k = fb_elem_type_kind (bits->type);
  if (!is_array (bits) || (k != FB_KIND_UINT && k != FB_KIND_SINT && k != FB_KIND_FLOAT))
    return _fb_infer_error (c, "rng-bit-generator produces integers, not %s", _fb_infer_str (c, bits));
  return _fb_infer_copy (c, out);
}

static FbShape *
infer_topk (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 1) || !_fb_infer_need_array (c, 0))
    return NULL;
  const FbShape *a = op (c, 0);
  int64_t k = fb_instr_int (c->instr, FB_A_K, -1);
  if (a->rank < 1)
    return _fb_infer_error (c, "topk needs an operand of rank 1 or more, not %s", _fb_infer_str (c, a));
  if (k < 0 || (a->dims[a->rank - 1] >= 0 && k > a->dims[a->rank - 1]))
    return _fb_infer_error (c, "k=%" G_GINT64_FORMAT " does not fit the last dimension of %s", k,
                            _fb_infer_str (c, a));
  int64_t dims[FB_INFER_MAX_RANK];
  memcpy (dims, a->dims, sizeof (int64_t) * MIN (a->rank, FB_INFER_MAX_RANK));
  dims[a->rank - 1] = k;
  FbShape *elems[2] = { _fb_infer_array (c, a->type, a->rank, dims), _fb_infer_array (c, FB_S32, a->rank, dims) };
  return fb_shape_new_tuple (c->arena, 2, elems);
}

static FbShape *
infer_tuple_ops (FbInferCtx *c)
{
  if (c->instr->opcode == FB_OP_TUPLE)
    {
      int n = c->instr->n_operands;
      g_autofree FbShape **elems = g_new (FbShape *, MAX (n, 1));
      for (int i = 0; i < n; i++)
        elems[i] = _fb_infer_copy (c, op (c, i));
      return fb_shape_new_tuple (c->arena, n, elems);
    }
  if (!_fb_infer_need_operands (c, 1))
    return NULL;
  const FbShape *t = op (c, 0);
  int64_t i = fb_instr_int (c->instr, FB_A_INDEX, -1);
  if (t->type != FB_TUPLE)
    return _fb_infer_error (c, "get-tuple-element needs a tuple operand, not %s", _fb_infer_str (c, t));
  if (i < 0 || i >= t->n_elems)
    return _fb_infer_error (c, "index=%" G_GINT64_FORMAT " is out of range for a tuple of %d elements %s", i,
                            t->n_elems, _fb_infer_str (c, t));
  return _fb_infer_copy (c, t->elems[i]);
}

static FbShape *
infer_leaf (FbInferCtx *c)
{
  FbInstr *in = c->instr;
  if (!_fb_infer_need_operands (c, 0))
    return NULL;
  if (in->opcode == FB_OP_PARAMETER && in->parameter_number < 0)
    return _fb_infer_error (c, "parameter number %" G_GINT64_FORMAT " is negative", in->parameter_number);
  if (in->opcode == FB_OP_CONSTANT && in->literal && !_fb_infer_compatible (in->literal->shape, in->shape))
    return _fb_infer_error (c, "the literal has shape %s but the constant is declared %s",
                            _fb_infer_str (c, in->literal->shape), _fb_infer_str (c, in->shape));
  return _fb_infer_copy (c, in->shape);
}

static FbShape *
infer_tokens (FbInferCtx *c)
{
  FbInstr *in = c->instr;
  if (in->opcode == FB_OP_AFTER_ALL)
    {
      for (int i = 0; i < in->n_operands; i++)
        if (op (c, i)->type != FB_TOKEN)
          return _fb_infer_error (c, "operand %d has shape %s but after-all joins tokens", i,
                                  _fb_infer_str (c, op (c, i)));
      return fb_shape_new_scalar (c->arena, FB_TOKEN);
    }
  if (!_fb_infer_need_operands (c, 2))
    return NULL;
  if (op (c, 1)->type != FB_TOKEN)
    return _fb_infer_error (c, "operand 1 has shape %s but add-dependency needs a token",
                            _fb_infer_str (c, op (c, 1)));
  return _fb_infer_copy (c, op (c, 0));
}

static FbShape *
infer_get_dimension_size (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 1) || !_fb_infer_need_array (c, 0))
    return NULL;
  const FbDims *d = _fb_infer_need_dims (c, FB_A_DIMENSIONS);
  if (d == NULL)
    return NULL;
  if (d->n != 1 || d->v[0] < 0 || d->v[0] >= op (c, 0)->rank)
    return _fb_infer_error (c, "get-dimension-size needs one dimension below the rank of %s",
                            _fb_infer_str (c, op (c, 0)));
  return fb_shape_new_scalar (c->arena, FB_S32);
}

static FbShape *
infer_set_dimension_size (FbInferCtx *c)
{
  if (!_fb_infer_need_operands (c, 2) || !_fb_infer_need_array (c, 0))
    return NULL;
  const FbDims *d = _fb_infer_need_dims (c, FB_A_DIMENSIONS);
  if (d == NULL)
    return NULL;
  if (d->n != 1 || d->v[0] < 0 || d->v[0] >= op (c, 0)->rank)
    return _fb_infer_error (c, "set-dimension-size needs one dimension below the rank of %s",
                            _fb_infer_str (c, op (c, 0)));
  if (!is_scalar (op (c, 1)) || op (c, 1)->type != FB_S32)
    return _fb_infer_error (c, "the size operand has shape %s but must be s32[]", _fb_infer_str (c, op (c, 1)));
  return _fb_infer_copy (c, op (c, 0));
}

/* --------------------------------------------------------------- dispatch */

static FbShape *
infer (FbInferCtx *c)
{
  FbInstr *instr = c->instr;
  FbOpcode o = instr->opcode;

  for (int i = 0; i < instr->n_operands; i++)
    {
      if (instr->operands[i] == NULL || instr->operands[i]->shape == NULL)
        return _fb_infer_error (c, "operand %d does not exist", i);
      if (op (c, i)->rank >= FB_INFER_MAX_RANK)
        return _fb_infer_error (c, "operand %d has more than %d dimensions", i, FB_INFER_MAX_RANK - 1);
    }
  if (instr->shape->rank >= FB_INFER_MAX_RANK)
    return _fb_infer_error (c, "the shape has more than %d dimensions", FB_INFER_MAX_RANK - 1);

  switch (o)
    {
    case FB_OP_COMPARE:
      return infer_compare (c);
    case FB_OP_SELECT:
      return infer_select (c);
    case FB_OP_CLAMP:
      return infer_clamp (c);
    case FB_OP_MAP:
      return _fb_infer_map (c);
    case FB_OP_BROADCAST:
      return infer_broadcast (c);
    case FB_OP_RESHAPE:
      return infer_reshape (c);
    case FB_OP_TRANSPOSE:
      return infer_transpose (c);
    case FB_OP_SLICE:
      return infer_slice (c);
    case FB_OP_DYNAMIC_SLICE:
      return infer_dynamic_slice (c);
    case FB_OP_DYNAMIC_UPDATE_SLICE:
      return infer_dynamic_update_slice (c);
    case FB_OP_CONCATENATE:
      return infer_concatenate (c);
    case FB_OP_PAD:
      return infer_pad (c);
    case FB_OP_REVERSE:
      return infer_reverse (c);
    case FB_OP_IOTA:
      return infer_iota (c);
    case FB_OP_GATHER:
      return infer_gather (c);
    case FB_OP_SCATTER:
      return _fb_infer_scatter (c);
    case FB_OP_REDUCE:
      return _fb_infer_reduce (c);
    case FB_OP_REDUCE_WINDOW:
      return _fb_infer_reduce_window (c);
    case FB_OP_SELECT_AND_SCATTER:
      return _fb_infer_select_and_scatter (c);
    case FB_OP_DOT:
      return infer_dot (c);
    case FB_OP_CONVOLUTION:
      return infer_convolution (c);
    case FB_OP_BATCH_NORM_TRAINING: case FB_OP_BATCH_NORM_INFERENCE: case FB_OP_BATCH_NORM_GRAD:
      return infer_batch_norm (c);
    case FB_OP_SORT:
      return _fb_infer_sort (c);
    case FB_OP_WHILE:
      return _fb_infer_while (c);
    case FB_OP_CALL:
      return _fb_infer_call (c);
    case FB_OP_FUSION:
      return _fb_infer_fusion (c);
    case FB_OP_CONDITIONAL:
      return _fb_infer_conditional (c);
    case FB_OP_TUPLE: case FB_OP_GET_TUPLE_ELEMENT:
      return infer_tuple_ops (c);
    case FB_OP_PARAMETER: case FB_OP_CONSTANT:
      return infer_leaf (c);
    case FB_OP_AFTER_ALL: case FB_OP_ADD_DEPENDENCY:
      return infer_tokens (c);
    case FB_OP_GET_DIMENSION_SIZE:
      return infer_get_dimension_size (c);
    case FB_OP_SET_DIMENSION_SIZE:
      return infer_set_dimension_size (c);
    case FB_OP_RNG:
      return infer_rng (c);
    case FB_OP_RNG_BIT_GENERATOR:
      return infer_rng_bit_generator (c);
    case FB_OP_TOPK:
      return infer_topk (c);
    case FB_OP_ALL_REDUCE: case FB_OP_ALL_GATHER: case FB_OP_REDUCE_SCATTER: case FB_OP_ALL_TO_ALL:
    case FB_OP_COLLECTIVE_PERMUTE: case FB_OP_COLLECTIVE_BROADCAST:
      return _fb_infer_collective (c);
    case FB_OP_OPTIMIZATION_BARRIER: case FB_OP_COPY:
      if (!_fb_infer_need_operands (c, 1))
        return NULL;
      return _fb_infer_copy (c, op (c, 0));
    case FB_OP_CUSTOM_CALL:
      return _fb_infer_copy (c, instr->shape);
    default:
      break;
    }

  switch (fb_opcode_category (o))
    {
    case FB_CAT_UNARY:
      if (fb_opcode_arity (o) == 1)
        return infer_unary (c);
      break;
    case FB_CAT_BINARY:
      return infer_binary (c);
    default:
      break;
    }
  /* Anything else keeps its declared shape once its operand count fits. */
  int arity = fb_opcode_arity (o);
  if (arity >= 0 && !_fb_infer_need_operands (c, arity))
    return NULL;
  return _fb_infer_copy (c, instr->shape);
}

FbShape *
fb_infer_shape_in (FbInstr *instr, FbArena *arena, GError **error)
{
  g_return_val_if_fail (instr != NULL && instr->shape != NULL, NULL);
  g_return_val_if_fail (arena != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  FbInferCtx c = { instr, arena, error, NULL };
  FbShape *shape = infer (&c);
  g_clear_pointer (&c.strings, g_ptr_array_unref);
  return shape;
}

FbShape *
fb_infer_shape (FbInstr *instr, GError **error)
{
  g_return_val_if_fail (instr != NULL && instr->parent != NULL, NULL);
  return fb_infer_shape_in (instr, instr->parent->module->arena, error);
}
