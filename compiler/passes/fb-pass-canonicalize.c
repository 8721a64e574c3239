/* SPDX-License-Identifier: MIT
 *
 * canonicalize: puts instructions into the few forms the later passes and
 * the backends know best.
 *
 * Dots become canonical: `[M,K] x [K,N] -> [M,N]` without batch dimensions,
 * `[B,M,K] x [B,K,N] -> [B,M,N]` with them. Each operand is transposed
 * (batch dimensions first, then the free ones, then the contracted ones for
 * the left side; batch, contracted, free for the right) and reshaped to
 * rank 2 or 3, and the product is reshaped back to the original result
 * shape, whose dimension order (batch, lhs free, rhs free) is exactly the
 * row-major order of [B,M,N]. Transposes and reshapes that would do nothing
 * are not inserted, and an operand that is already a transposed matrix
 * ([B,K,M] on the left, [B,N,K] on the right) is kept so: matrix-multiply
 * routines take a transposed operand as a flag, while a transpose would copy
 * it on every step. So the canonical form has one contracted dimension
 * among the last two of each operand.
 *
 * Movement sinks below elementwise work when that costs nothing: a
 * transpose or reshape of an elementwise instruction that has no other
 * user becomes the elementwise instruction applied to transposed (or
 * reshaped) operands, provided at most one operand needs a real transpose;
 * broadcasts of scalars are simply broadcast to the new shape. The
 * elementwise instruction then sits next to its consumers and can fuse
 * with them. Every rewrite is recorded, and keeps values exactly.
 */
#include <string.h>

#include "fb-passes-private.h"

#define MAX_RANK 16

static int
dims_of (const FbInstr *i, FbAttrKey key, int64_t *out, int rank)
{
  const FbDims *d = fb_instr_dims (i, key);
  if (d == NULL)
    return 0;
  if (d->n > rank)
    return -1;
  for (int k = 0; k < d->n; k++)
    {
      if (d->v[k] < 0 || d->v[k] >= rank)
        return -1;
      out[k] = d->v[k];
    }
  return d->n;
}

static FbInstr *
transpose_before (FbInstr *before, FbInstr *x, const int64_t *perm)
{
  int r = x->shape->rank;
  gboolean identity = TRUE;
  int64_t dims[MAX_RANK];
  for (int k = 0; k < r; k++)
    {
      dims[k] = x->shape->dims[perm[k]];
      identity &= perm[k] == k;
    }
  if (identity)
    return x;
  FbModule *m = before->parent->module;
  FbInstr *t = fb_instr_new (before->parent, before, FB_OP_TRANSPOSE,
                             _fb_shape_like (m, x->shape, x->shape->type, r, dims), 1, &x, NULL);
  fb_instr_set_dims (t, FB_A_DIMENSIONS, r, perm);
  return t;
}

static FbInstr *
reshape_before (FbInstr *before, FbInstr *x, int rank, const int64_t *dims)
{
  if (x->shape->rank == rank && memcmp (x->shape->dims, dims, sizeof (int64_t) * rank) == 0)
    return x;
  FbModule *m = before->parent->module;
  return fb_instr_new (before->parent, before, FB_OP_RESHAPE, _fb_shape_like (m, x->shape, x->shape->type, rank, dims),
                       1, &x, NULL);
}

/* Canonical: rank 2 without batch dimensions, rank 3 with batch dimension
 * 0, one contracted dimension among the last two of each operand. */
static gboolean
is_canonical (int lr, int rr, int nb, const int64_t *lb, const int64_t *rb, int nc, const int64_t *lc,
              const int64_t *rc)
{
  if (nc != 1 || lr != rr || lr != 2 + nb || nb > 1)
    return FALSE;
  if (nb == 1 && (lb[0] != 0 || rb[0] != 0))
    return FALSE;
  return lc[0] >= lr - 2 && rc[0] >= rr - 2;
}

static gboolean
is_identity (const int64_t *perm, int n)
{
  for (int k = 0; k < n; k++)
    if (perm[k] != k)
      return FALSE;
  return TRUE;
}

static gboolean
canonicalize_dot (FbPassContext *ctx, FbInstr *dot)
{
  if (dot->n_operands != 2 || !fb_shape_is_array (dot->shape))
    return FALSE;
  FbInstr *lhs = dot->operands[0], *rhs = dot->operands[1];
  if (!fb_shape_is_array (lhs->shape) || !fb_shape_is_array (rhs->shape) || lhs->shape->dyn || rhs->shape->dyn
      || dot->shape->dyn)
    return FALSE;
  int lr = lhs->shape->rank, rr = rhs->shape->rank;
  if (lr > MAX_RANK || rr > MAX_RANK)
    return FALSE;
  int64_t lb[MAX_RANK], rb[MAX_RANK], lc[MAX_RANK], rc[MAX_RANK];
  int nlb = dims_of (dot, FB_A_LHS_BATCH_DIMS, lb, lr), nrb = dims_of (dot, FB_A_RHS_BATCH_DIMS, rb, rr);
  int nlc = dims_of (dot, FB_A_LHS_CONTRACTING_DIMS, lc, lr), nrc = dims_of (dot, FB_A_RHS_CONTRACTING_DIMS, rc, rr);
  if (nlb < 0 || nrb < 0 || nlc < 0 || nrc < 0 || nlb != nrb || nlc != nrc)
    return FALSE;
  if (is_canonical (lr, rr, nlb, lb, rb, nlc, lc, rc))
    return FALSE;

  /* Left: batch, free, contracted. Right: batch, contracted, free. */
  gboolean lused[MAX_RANK] = { 0 }, rused[MAX_RANK] = { 0 };
  int64_t lperm[MAX_RANK], rperm[MAX_RANK];
  int nl = 0, nr = 0;
  int64_t B = 1, M = 1, K = 1, N = 1;
  for (int k = 0; k < nlb; k++)
    {
      if (lused[lb[k]] || rused[rb[k]])
        return FALSE;
      lused[lb[k]] = rused[rb[k]] = TRUE;
      lperm[nl++] = lb[k];
      rperm[nr++] = rb[k];
      B *= lhs->shape->dims[lb[k]];
    }
  for (int k = 0; k < nlc; k++)
    {
      if (lused[lc[k]] || rused[rc[k]])
        return FALSE;
      lused[lc[k]] = rused[rc[k]] = TRUE;
      rperm[nr++] = rc[k];
      K *= lhs->shape->dims[lc[k]];
    }
  for (int k = 0; k < lr; k++)
    if (!lused[k])
      {
        lperm[nl++] = k;
        M *= lhs->shape->dims[k];
      }
  for (int k = 0; k < nlc; k++)
    lperm[nl++] = lc[k];
  for (int k = 0; k < rr; k++)
    if (!rused[k])
      {
        rperm[nr++] = k;
        N *= rhs->shape->dims[k];
      }
  if (B * M * N != fb_shape_elements (dot->shape))
    return FALSE;

  /* An operand already laid out as [B,K,M] (left) or [B,N,K] (right) stays
   * that way: a matrix-multiply routine reads a transposed operand for free,
   * while a transpose here would copy it (a whole weight matrix, often). */
  int64_t lalt[MAX_RANK], ralt[MAX_RANK];
  int na = 0;
  for (int k = 0; k < nlb; k++)
    lalt[na++] = lb[k];
  for (int k = 0; k < nlc; k++)
    lalt[na++] = lc[k];
  for (int k = nlb; k < lr - nlc; k++)
    lalt[na++] = lperm[k];
  gboolean lhs_t = !is_identity (lperm, lr) && is_identity (lalt, lr);
  na = 0;
  for (int k = 0; k < nlb; k++)
    ralt[na++] = rb[k];
  for (int k = nlb + nlc; k < rr; k++)
    ralt[na++] = rperm[k];
  for (int k = 0; k < nlc; k++)
    ralt[na++] = rc[k];
  gboolean rhs_t = !is_identity (rperm, rr) && is_identity (ralt, rr);

  gboolean batched = nlb > 0;
  int64_t ldims[3], rdims[3], odims[3];
  int rank = batched ? 3 : 2, o = 0;
  if (batched)
    ldims[o] = rdims[o] = odims[o] = B, o++;
  ldims[o] = lhs_t ? K : M, rdims[o] = rhs_t ? N : K, odims[o] = M;
  ldims[o + 1] = lhs_t ? M : K, rdims[o + 1] = rhs_t ? K : N, odims[o + 1] = N;

  FbModule *m = dot->parent->module;
  FbInstr *ops[2];
  ops[0] = reshape_before (dot, transpose_before (dot, lhs, lhs_t ? lalt : lperm), rank, ldims);
  ops[1] = reshape_before (dot, transpose_before (dot, rhs, rhs_t ? ralt : rperm), rank, rdims);
  gboolean same_dims = dot->shape->rank == rank && memcmp (dot->shape->dims, odims, sizeof (int64_t) * rank) == 0;
  FbShape *shape = same_dims ? dot->shape : _fb_shape_like (m, dot->shape, dot->shape->type, rank, odims);
  FbInstr *canon = fb_instr_new (dot->parent, dot, FB_OP_DOT, shape, 2, ops, NULL);
  for (int a = 0; a < dot->n_attrs; a++)
    {
      FbAttrKey key = dot->attrs[a].key;
      if (key == FB_A_LHS_BATCH_DIMS || key == FB_A_RHS_BATCH_DIMS || key == FB_A_LHS_CONTRACTING_DIMS
          || key == FB_A_RHS_CONTRACTING_DIMS)
        continue;
      FbAttr *dst = fb_instr_add_attr (canon, key, dot->attrs[a].name);
      *dst = dot->attrs[a];
    }
  if (batched)
    {
      fb_instr_set_dims (canon, FB_A_LHS_BATCH_DIMS, 1, (int64_t[]) { 0 });
      fb_instr_set_dims (canon, FB_A_RHS_BATCH_DIMS, 1, (int64_t[]) { 0 });
    }
  fb_instr_set_dims (canon, FB_A_LHS_CONTRACTING_DIMS, 1, (int64_t[]) { lhs_t ? rank - 2 : rank - 1 });
  fb_instr_set_dims (canon, FB_A_RHS_CONTRACTING_DIMS, 1, (int64_t[]) { rhs_t ? rank - 1 : rank - 2 });
  FbInstr *result = same_dims ? canon : reshape_before (dot, canon, dot->shape->rank, dot->shape->dims);
  if (result != canon)
    result->shape = dot->shape;

  FbInstr *both[2] = { dot, canon };
  const char *note = lhs_t && rhs_t ? " (both operands read transposed)"
                     : lhs_t ? " (left operand read transposed)" : rhs_t ? " (right operand read transposed)" : "";
  if (batched)
    fb_pass_decide (ctx, FB_DECISION_REWRITTEN, "canonical-dot", 2, both,
                    "%%%s is now the canonical [B,M,K] x [B,K,N] dot %%%s with B=%" G_GINT64_FORMAT ", M=%"
                    G_GINT64_FORMAT ", K=%" G_GINT64_FORMAT ", N=%" G_GINT64_FORMAT "%s", dot->name, canon->name, B, M, K,
                    N, note);
  else
    fb_pass_decide (ctx, FB_DECISION_REWRITTEN, "canonical-dot", 2, both,
                    "%%%s is now the canonical [M,K] x [K,N] dot %%%s with M=%" G_GINT64_FORMAT ", K=%"
                    G_GINT64_FORMAT ", N=%" G_GINT64_FORMAT "%s", dot->name, canon->name, M, K, N, note);
  fb_instr_add_prov (canon, dot->n_prov, dot->prov);
  _fb_pass_replace (ctx, dot, result, NULL);
  return TRUE;
}

static gboolean
is_scalar_broadcast (const FbInstr *x)
{
  return x->opcode == FB_OP_BROADCAST && x->n_operands == 1 && x->operands[0]->shape->rank == 0
         && fb_shape_is_array (x->operands[0]->shape);
}

static FbShape *
retyped (FbModule *m, const FbShape *s, FbElemType type)
{
  FbShape *c = fb_shape_copy (m->arena, s);
  c->type = type;
  return c;
}

/* transpose(elementwise(a, b...)) -> elementwise(transpose(a), ...). */
static gboolean
sink_movement (FbPassContext *ctx, FbInstr *t)
{
  if (t->n_operands != 1)
    return FALSE;
  FbInstr *e = t->operands[0];
  if (!fb_opcode_is_elementwise (e->opcode) || e->opcode == FB_OP_MAP || e->n_users != 1
      || e->parent->root == e || e->n_operands == 0 || _fb_instr_has_side_effect (e)
      || fb_opcode_category (e->opcode) == FB_CAT_RNG || !fb_shape_is_array (e->shape) || e->shape->dyn
      || t->shape->dyn || e->shape->rank > MAX_RANK || e->n_operands > 8)
    return FALSE;
  FbComputation *called[1];
  if (fb_instr_called (e, called, 1) > 0)
    return FALSE;

  int general = 0;
  for (int k = 0; k < e->n_operands; k++)
    {
      FbInstr *o = e->operands[k];
      if (!fb_shape_is_array (o->shape))
        return FALSE;
      if (o->shape->rank == 0 && e->shape->rank != 0)
        continue;
      if (o->shape->rank != e->shape->rank
          || memcmp (o->shape->dims, e->shape->dims, sizeof (int64_t) * e->shape->rank) != 0)
        return FALSE;
      if (!is_scalar_broadcast (o))
        general++;
    }
  if (general > 1)
    return FALSE;

  FbModule *m = t->parent->module;
  FbInstr *ops[8];
  for (int k = 0; k < e->n_operands; k++)
    {
      FbInstr *o = e->operands[k];
      if (o->shape->rank == 0 && e->shape->rank != 0)
        ops[k] = o;
      else if (is_scalar_broadcast (o))
        {
          FbInstr *s = o->operands[0];
          ops[k] = fb_instr_new (t->parent, t, FB_OP_BROADCAST, retyped (m, t->shape, o->shape->type), 1, &s, NULL);
          fb_instr_set_dims (ops[k], FB_A_DIMENSIONS, 0, NULL);
          fb_instr_add_prov (ops[k], o->n_prov, o->prov);
        }
      else
        {
          ops[k] = fb_instr_new (t->parent, t, t->opcode, retyped (m, t->shape, o->shape->type), 1, &o, NULL);
          for (int a = 0; a < t->n_attrs; a++)
            *fb_instr_add_attr (ops[k], t->attrs[a].key, t->attrs[a].name) = t->attrs[a];
        }
    }
  FbInstr *e2 = fb_instr_new (t->parent, t, e->opcode, retyped (m, t->shape, e->shape->type), e->n_operands, ops,
                              NULL);
  for (int a = 0; a < e->n_attrs; a++)
    *fb_instr_add_attr (e2, e->attrs[a].key, e->attrs[a].name) = e->attrs[a];
  FbInstr *trio[3] = { t, e, e2 };
  fb_pass_decide (ctx, FB_DECISION_REWRITTEN, t->opcode == FB_OP_TRANSPOSE ? "sink-transpose" : "sink-reshape", 3,
                  trio, "%s of %%%s moved onto its operands: %%%s now computes %%%s's value directly, so it can "
                  "fuse with what follows", fb_opcode_name (t->opcode), e->name, e2->name, t->name);
  fb_instr_add_prov (e2, e->n_prov, e->prov);
  _fb_pass_replace (ctx, t, e2, NULL);
  _fb_pass_remove_if_dead (e, NULL);
  return TRUE;
}

static gboolean
canonicalize_run (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error)
{
  *changed = FALSE;
  for (int c = 0; c < module->n_comps; c++)
    {
      FbInstr *next;
      for (FbInstr *i = module->comps[c]->first; i; i = next)
        {
          next = i->next;
          if (i->opcode == FB_OP_DOT)
            *changed |= canonicalize_dot (ctx, i);
          else if (i->opcode == FB_OP_TRANSPOSE || i->opcode == FB_OP_RESHAPE)
            *changed |= sink_movement (ctx, i);
        }
    }
  return TRUE;
}

const FbPass fb_pass_canonicalize = {
  "canonicalize",
  "canonical forms: dots as [B,M,K] x [B,K,N], transposes and reshapes sunk below elementwise ops",
  "Rewrites instructions into the forms the rest of the compiler handles best, without changing any "
  "value. Every matrix product (dot) becomes either [M,K] times [K,N] or, with batch dimensions, "
  "[B,M,K] times [B,K,N]: the operands are transposed and reshaped into that form and the product is "
  "reshaped back, so a backend needs only one matrix-multiply routine and the fusion passes only one "
  "pattern. A transpose or reshape applied to the result of an elementwise operation is moved onto "
  "that operation's input when this adds no work, which puts the elementwise operation next to its "
  "consumers, where it can be fused.",
  canonicalize_run,
};
