/* SPDX-License-Identifier: MIT
 *
 * simplify: algebraic identities that make an instruction disappear or
 * shrink two into one, without changing any value the module computes.
 * Each rule looks at one instruction and its operands; the pass sweeps every
 * computation until no rule applies. Identities that only hold for some
 * element types (x*0 is 0 only for integers: for floats NaN*0 is NaN) check
 * the type. A rule only replaces an instruction by one with the very same
 * shape and layout, so no user can tell the difference.
 */
#include <math.h>
#include <string.h>

#include "fb-passes-private.h"

/* Sweeps before giving up on reaching a fixed point (each sweep that changes
 * something removes or shrinks at least one instruction, so this is only a
 * guard). */
#define MAX_SWEEPS 16

static gboolean
same (const FbInstr *x, const FbInstr *i)
{
  return _fb_shape_same (x->shape, i->shape);
}

static gboolean
replace (FbPassContext *ctx, FbInstr *i, FbInstr *x, const char *rule)
{
  _fb_pass_replace (ctx, i, x, rule);
  return TRUE;
}

/* @i now reads @x's operand instead of @x: @x may have become dead. */
static gboolean
rewired (FbPassContext *ctx, FbInstr *i, FbInstr *x, const char *rule)
{
  FbInstr *both[2] = { i, x };
  fb_pass_decide (ctx, FB_DECISION_REWRITTEN, rule, 2, both, "%%%s now reads %%%s directly", i->name,
                  i->operands[0]->name);
  _fb_pass_remove_if_dead (x, i);
  return TRUE;
}

/* Bits of precision of a float type (mantissa plus the implicit one). */
static int
float_precision (FbElemType t)
{
  switch (t)
    {
    case FB_F16: return 11;
    case FB_BF16: return 8;
    case FB_F32: return 24;
    case FB_F64: return 53;
    default: return 0;
    }
}

/* TRUE when every value of @from converts to @to exactly, so that
 * convert(convert(x, @to), T) equals convert(x, T) for any T. */
static gboolean
convert_is_exact (FbElemType from, FbElemType to)
{
  FbElemKind kf = fb_elem_type_kind (from), kt = fb_elem_type_kind (to);
  int bf = fb_elem_type_bits (from), bt = fb_elem_type_bits (to);
  if (from == to)
    return TRUE;
  switch (kf)
    {
    case FB_KIND_PRED:
      return kt == FB_KIND_UINT || (kt == FB_KIND_SINT && bt >= 2) || float_precision (to) > 0;
    case FB_KIND_SINT:
      if (kt == FB_KIND_SINT)
        return bt >= bf;
      return kt == FB_KIND_FLOAT && bf - 1 <= float_precision (to);
    case FB_KIND_UINT:
      if (kt == FB_KIND_UINT)
        return bt >= bf;
      if (kt == FB_KIND_SINT)
        return bt > bf;
      return kt == FB_KIND_FLOAT && bf <= float_precision (to);
    case FB_KIND_FLOAT:
      if (to == FB_F64)
        return bf <= 32;
      if (to == FB_F32)
        return bf <= 16;
      return FALSE;
    default:
      return FALSE;
    }
}

static gboolean
is_full_slice (const FbInstr *i)
{
  const FbAttr *a = fb_instr_get_attr (i, FB_A_SLICE);
  const FbShape *s = i->operands[0]->shape;
  if (a == NULL || a->kind != FB_AV_SLICE || a->v.slice.n != s->rank)
    return FALSE;
  for (int k = 0; k < s->rank; k++)
    {
      const FbSliceDim *d = &a->v.slice.d[k];
      if (d->start != 0 || d->limit != s->dims[k] || d->stride != 1)
        return FALSE;
    }
  return TRUE;
}

static gboolean
is_zero_pad (const FbInstr *i)
{
  const FbAttr *a = fb_instr_get_attr (i, FB_A_PADDING);
  if (a == NULL || a->kind != FB_AV_PADDING)
    return FALSE;
  for (int k = 0; k < a->v.pad.n; k++)
    if (a->v.pad.d[k].lo != 0 || a->v.pad.d[k].hi != 0 || a->v.pad.d[k].interior != 0)
      return FALSE;
  return TRUE;
}

static gboolean
is_iota_dims (const FbDims *d, int n)
{
  if (d == NULL || d->n != n)
    return FALSE;
  for (int k = 0; k < n; k++)
    if (d->v[k] != k)
      return FALSE;
  return TRUE;
}

/* A zero of @i's shape: the zero operand itself when it already has the
 * shape, else a broadcast of a new scalar zero before @i. */
static FbInstr *
zero_like (FbInstr *i, FbInstr *zero)
{
  if (same (zero, i))
    return zero;
  FbModule *m = i->parent->module;
  FbShape *scalar = _fb_shape_like (m, i->shape, i->shape->type, 0, NULL);
  FbInstr *c = fb_instr_new (i->parent, i, FB_OP_CONSTANT, scalar, 0, NULL, NULL);
  c->literal = fb_literal_new (m->arena, scalar);
  FbInstr *b = fb_instr_new (i->parent, i, FB_OP_BROADCAST, i->shape, 1, &c, NULL);
  fb_instr_set_dims (b, FB_A_DIMENSIONS, 0, NULL);
  return b;
}

static gboolean
simplify_binary (FbPassContext *ctx, FbInstr *i)
{
  FbInstr *x = i->operands[0], *y = i->operands[1];
  gboolean is_int = fb_elem_type_is_int (i->shape->type);

  switch (i->opcode)
    {
    case FB_OP_ADD:
      if (_fb_instr_is_splat (y, 0) && same (x, i))
        return replace (ctx, i, x, "x+0");
      if (_fb_instr_is_splat (x, 0) && same (y, i))
        return replace (ctx, i, y, "0+x");
      break;
    case FB_OP_SUBTRACT:
      if (_fb_instr_is_splat (y, 0) && same (x, i))
        return replace (ctx, i, x, "x-0");
      break;
    case FB_OP_MULTIPLY:
      if (_fb_instr_is_splat (y, 1) && same (x, i))
        return replace (ctx, i, x, "x*1");
      if (_fb_instr_is_splat (x, 1) && same (y, i))
        return replace (ctx, i, y, "1*x");
      if (is_int && _fb_instr_is_splat (y, 0))
        return replace (ctx, i, zero_like (i, y), "x*0");
      if (is_int && _fb_instr_is_splat (x, 0))
        return replace (ctx, i, zero_like (i, x), "0*x");
      break;
    case FB_OP_DIVIDE:
      if (_fb_instr_is_splat (y, 1) && same (x, i))
        return replace (ctx, i, x, "x/1");
      break;
    case FB_OP_MAXIMUM:
      if (x == y && same (x, i))
        return replace (ctx, i, x, "max(x,x)");
      break;
    case FB_OP_MINIMUM:
      if (x == y && same (x, i))
        return replace (ctx, i, x, "min(x,x)");
      break;
    default:
      break;
    }
  return FALSE;
}

static gboolean
simplify_movement (FbPassContext *ctx, FbInstr *i)
{
  FbInstr *x = i->operands[0];

  switch (i->opcode)
    {
    case FB_OP_RESHAPE:
      if (same (x, i))
        return replace (ctx, i, x, "reshape-same-shape");
      if (x->opcode == FB_OP_RESHAPE && x->n_operands == 1)
        {
          fb_instr_set_operand (i, 0, x->operands[0]);
          return rewired (ctx, i, x, "reshape(reshape)");
        }
      break;
    case FB_OP_TRANSPOSE:
      {
        const FbDims *p2 = fb_instr_dims (i, FB_A_DIMENSIONS);
        if (p2 == NULL || p2->n != i->shape->rank)
          break;
        if (is_iota_dims (p2, p2->n) && same (x, i))
          return replace (ctx, i, x, "transpose-identity");
        const FbDims *p1 = x->opcode == FB_OP_TRANSPOSE ? fb_instr_dims (x, FB_A_DIMENSIONS) : NULL;
        if (p1 == NULL || p1->n != p2->n)
          break;
        int64_t composed[p2->n + 1];
        for (int j = 0; j < p2->n; j++)
          {
            if (p2->v[j] < 0 || p2->v[j] >= p1->n)
              return FALSE;
            composed[j] = p1->v[p2->v[j]];
          }
        fb_instr_set_dims (i, FB_A_DIMENSIONS, p2->n, composed);
        fb_instr_set_operand (i, 0, x->operands[0]);
        return rewired (ctx, i, x, "transpose(transpose)");
      }
    case FB_OP_BROADCAST:
      {
        const FbDims *d2 = fb_instr_dims (i, FB_A_DIMENSIONS);
        if (d2 == NULL)
          break;
        if (x->shape->rank == i->shape->rank && is_iota_dims (d2, d2->n) && same (x, i))
          return replace (ctx, i, x, "broadcast-identity");
        const FbDims *d1 = x->opcode == FB_OP_BROADCAST ? fb_instr_dims (x, FB_A_DIMENSIONS) : NULL;
        if (d1 == NULL)
          break;
        int64_t composed[d1->n + 1];
        for (int k = 0; k < d1->n; k++)
          {
            if (d1->v[k] < 0 || d1->v[k] >= d2->n)
              return FALSE;
            composed[k] = d2->v[d1->v[k]];
          }
        fb_instr_set_dims (i, FB_A_DIMENSIONS, d1->n, composed);
        fb_instr_set_operand (i, 0, x->operands[0]);
        return rewired (ctx, i, x, "broadcast(broadcast)");
      }
    case FB_OP_SLICE:
      if (is_full_slice (i) && same (x, i))
        return replace (ctx, i, x, "full-slice");
      break;
    case FB_OP_CONCATENATE:
      if (i->n_operands == 1 && same (x, i))
        return replace (ctx, i, x, "concatenate-one");
      break;
    case FB_OP_PAD:
      if (is_zero_pad (i) && same (x, i))
        return replace (ctx, i, x, "pad-zero");
      break;
    case FB_OP_COPY:
      if (same (x, i))
        return replace (ctx, i, x, "copy-same-layout");
      break;
    default:
      break;
    }
  return FALSE;
}

/* convolution(pad(x, +0), k) -> convolution(x, k) with the pad added to the
 * window's padding, when the pad only widens spatial dimensions (no
 * interior padding, none on batch or feature) and the window does not
 * dilate the input there: the convolution's own padding is zeros too, and
 * a kernel that knows where the padding is skips it instead of multiplying
 * zeros. A backward-data convolution arrives in this form: its output
 * gradient padded by the kernel size less one on each side. */
static gboolean
fold_conv_pad (FbPassContext *ctx, FbInstr *i)
{
  FbInstr *x = i->operands[0];
  if (i->n_operands != 2 || x->opcode != FB_OP_PAD || x->n_operands != 2)
    return FALSE;
  const FbInstr *pv = x->operands[1];
  if (pv->opcode != FB_OP_CONSTANT || !_fb_instr_is_splat (pv, 0) || signbit (fb_literal_get_f64 (pv->literal, 0)))
    return FALSE;       /* +0 only: -0 would turn some zero sums negative */
  const FbAttr *pa = fb_instr_get_attr (x, FB_A_PADDING);
  const FbAttr *wa = fb_instr_get_attr (i, FB_A_WINDOW);
  const FbAttr *dl = fb_instr_get_attr (i, FB_A_DIM_LABELS);
  int rank = x->shape->rank;
  if (pa == NULL || pa->kind != FB_AV_PADDING || pa->v.pad.n != rank || wa == NULL || wa->kind != FB_AV_WINDOW
      || dl == NULL || dl->kind != FB_AV_DIM_LABELS || dl->v.conv.n_spatial != wa->v.window.n
      || dl->v.conv.n_spatial != rank - 2)
    return FALSE;
  const FbConvDims *cd = &dl->v.conv;
  for (int d = 0; d < rank; d++)
    {
      const FbPadDim *p = &pa->v.pad.d[d];
      if (p->interior != 0 || p->lo < 0 || p->hi < 0)
        return FALSE;
      if ((d == cd->in_batch || d == cd->in_feature) && (p->lo != 0 || p->hi != 0))
        return FALSE;
    }
  int n = wa->v.window.n;
  for (int s = 0; s < n; s++)
    if (wa->v.window.d[s].lhs_dilate != 1)
      return FALSE;
  FbWindowDim *w = fb_arena_new0 (i->parent->module->arena, FbWindowDim, MAX (n, 1));
  for (int s = 0; s < n; s++)
    {
      const FbPadDim *p = &pa->v.pad.d[cd->in_spatial[s]];
      w[s] = wa->v.window.d[s];
      w[s].pad_lo += p->lo;
      w[s].pad_hi += p->hi;
    }
  FbAttr *a = fb_instr_set_attr (i, FB_A_WINDOW);
  a->v.window.n = n;
  a->v.window.d = w;
  fb_instr_set_operand (i, 0, x->operands[0]);
  return rewired (ctx, i, x, "conv(pad)");
}

static gboolean
simplify_instr (FbPassContext *ctx, FbInstr *i)
{
  if (i->n_operands == 0 || !fb_shape_is_array (i->shape))
    return FALSE;
  for (int k = 0; k < i->n_operands; k++)
    if (i->operands[k] == NULL || i->operands[k]->shape == NULL)
      return FALSE;
  FbInstr *x = i->operands[0];

  switch (i->opcode)
    {
    case FB_OP_ADD:
    case FB_OP_SUBTRACT:
    case FB_OP_MULTIPLY:
    case FB_OP_DIVIDE:
    case FB_OP_MAXIMUM:
    case FB_OP_MINIMUM:
      return i->n_operands == 2 && simplify_binary (ctx, i);
    case FB_OP_CONVOLUTION:
      return fold_conv_pad (ctx, i);
    case FB_OP_NEGATE:
    case FB_OP_NOT:
      if (x->opcode == i->opcode && x->n_operands == 1 && same (x->operands[0], i))
        return replace (ctx, i, x->operands[0], i->opcode == FB_OP_NEGATE ? "neg(neg x)" : "not(not x)");
      return FALSE;
    case FB_OP_CONVERT:
      if (same (x, i))
        return replace (ctx, i, x, "convert-same-type");
      if (x->opcode == FB_OP_CONVERT && x->n_operands == 1 && fb_shape_is_array (x->operands[0]->shape)
          && convert_is_exact (x->operands[0]->shape->type, x->shape->type))
        {
          fb_instr_set_operand (i, 0, x->operands[0]);
          return rewired (ctx, i, x, "convert(convert)-exact");
        }
      return FALSE;
    case FB_OP_SELECT:
      if (i->n_operands != 3 || x->shape->type != FB_PRED)
        return FALSE;
      if (_fb_instr_is_splat (x, 1) && same (i->operands[1], i))
        return replace (ctx, i, i->operands[1], "select-true");
      if (_fb_instr_is_splat (x, 0) && same (i->operands[2], i))
        return replace (ctx, i, i->operands[2], "select-false");
      return FALSE;
    default:
      return i->n_operands >= 1 && simplify_movement (ctx, i);
    }
}

static gboolean
simplify_run (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error)
{
  *changed = FALSE;
  for (int sweep = 0; sweep < MAX_SWEEPS; sweep++)
    {
      gboolean any = FALSE;
      for (int c = 0; c < module->n_comps; c++)
        {
          FbInstr *next;
          for (FbInstr *i = module->comps[c]->first; i; i = next)
            {
              next = i->next;
              if (simplify_instr (ctx, i))
                any = TRUE;
            }
        }
      if (!any)
        break;
      *changed = TRUE;
    }
  return TRUE;
}

const FbPass fb_pass_simplify = {
  "simplify",
  "algebraic identities: x+0, x*1, double negation, reshape/transpose chains, no-op copies",
  "Removes instructions that provably compute nothing new. x+0, x-0, x*1 and x/1 are x; -(-x) and "
  "not(not x) are x; max(x,x) and min(x,x) are x; integer x*0 is 0 (a float x*0 is not, because of "
  "NaN and infinity). Movement ops that do not move anything disappear: a reshape to the same shape, "
  "a transpose by the identity permutation, a slice of everything, a pad by zero, a copy to the same "
  "layout, a concatenate of one operand. Chains shrink: a reshape of a reshape is one reshape, a "
  "transpose of a transpose is one transpose by the composed permutation, a broadcast of a broadcast "
  "is one broadcast, and a convert of a convert is one convert when the middle type holds every value "
  "exactly. A select whose predicate is a constant becomes the chosen operand. A convolution of an "
  "input padded with zeros along its spatial dimensions takes the padding into its window, so that "
  "the kernel skips the padding instead of multiplying zeros (a backward-data convolution arrives "
  "in that form). Every rewrite is listed with the rule that made it.",
  simplify_run,
};
