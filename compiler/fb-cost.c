/* SPDX-License-Identifier: MIT
 *
 * The cost model, in the conventions of XLA's HloCostAnalysis, so that the
 * numbers agree with what an engineer reads in XLA's own tooling:
 *
 * - elementwise ops count one flop per output element; exp, log, tanh and
 *   the other transcendental functions count one transcendental instead;
 * - dot counts 2 * batch * M * N * K, convolution 2 * output elements *
 *   kernel spatial size * input features per group;
 * - reductions apply their reducer once per input element that is folded
 *   into an output element (input elements - output elements for reduce);
 * - bytes are the operands read plus the output written; parameters,
 *   constants, tuples, get-tuple-element and bitcast move nothing;
 * - a fusion has the flops of its fused computation but only the bytes of
 *   its own operands and output, since the fused values stay in registers;
 * - a while loop costs its body and condition once, or times the trip count
 *   when the backend_config carries "known_trip_count".
 */
#include <json-c/json.h>
#include <math.h>
#include <string.h>

#include "fb-cost.h"

static void
cost_add (FbCost *acc, FbCost c, double times)
{
  acc->flops += c.flops * times;
  acc->bytes += c.bytes * times;
  acc->transcendentals += c.transcendentals * times;
}

static gboolean
is_transcendental (FbOpcode op)
{
  switch (op)
    {
    case FB_OP_EXP: case FB_OP_EXPM1: case FB_OP_LOG: case FB_OP_LOG1P: case FB_OP_LOGISTIC:
    case FB_OP_POWER: case FB_OP_SQRT: case FB_OP_RSQRT: case FB_OP_CBRT: case FB_OP_SIN:
    case FB_OP_COS: case FB_OP_TAN: case FB_OP_TANH: case FB_OP_ATAN2: case FB_OP_ERF:
    case FB_OP_ACOS: case FB_OP_ASIN: case FB_OP_ATAN: case FB_OP_ACOSH: case FB_OP_ASINH:
    case FB_OP_ATANH: case FB_OP_COSH: case FB_OP_SINH:
      return TRUE;
    default:
      return FALSE;
    }
}

static double
elements (const FbShape *s)
{
  if (s == NULL)
    return 0;
  if (s->type == FB_TUPLE)
    {
      double n = 0;
      for (int i = 0; i < s->n_elems; i++)
        n += elements (s->elems[i]);
      return n;
    }
  return (double) fb_shape_elements (s);
}

static double
bytes (const FbShape *s)
{
  return s ? (double) fb_shape_bytes (s) : 0;
}

static double
operand_bytes (const FbInstr *instr)
{
  double b = 0;
  for (int i = 0; i < instr->n_operands; i++)
    if (instr->operands[i])
      b += bytes (instr->operands[i]->shape);
  return b;
}

/* Deeper nesting than this means a call cycle in an unverified module. */
#define MAX_DEPTH 64

static FbCost comp_cost (FbComputation *comp, int depth);

/* Flops of one application of a scalar computation (a reducer); at least 1. */
static double
apply_flops (FbComputation *comp, int depth)
{
  if (comp == NULL)
    return 1;
  FbCost c = comp_cost (comp, depth + 1);
  return MAX (c.flops + c.transcendentals, 1);
}

/* The known trip count of a while loop, 0 when unknown. */
static int64_t
trip_count (const FbInstr *instr)
{
  const FbAttr *a = fb_instr_get_attr (instr, FB_A_BACKEND_CONFIG);
  if (a == NULL || a->v.s == NULL || strstr (a->v.s, "known_trip_count") == NULL)
    return 0;
  json_object *root = json_tokener_parse (a->v.s);
  int64_t n = 0;
  json_object *ktc, *jn;
  if (root && json_object_object_get_ex (root, "known_trip_count", &ktc)
      && json_object_object_get_ex (ktc, "n", &jn))
    {
      if (json_object_is_type (jn, json_type_string))
        n = g_ascii_strtoll (json_object_get_string (jn), NULL, 10);
      else
        n = json_object_get_int64 (jn);
    }
  json_object_put (root);
  return MAX (n, 0);
}

static double
dot_flops (const FbInstr *instr)
{
  if (instr->n_operands < 2)
    return 0;
  const FbShape *l = instr->operands[0]->shape;
  const FbDims *lc = fb_instr_dims (instr, FB_A_LHS_CONTRACTING_DIMS);
  double k = 1;
  for (int i = 0; lc && i < lc->n; i++)
    if (lc->v[i] >= 0 && lc->v[i] < l->rank)
      k *= MAX (l->dims[lc->v[i]], 0);
  return 2 * elements (instr->shape) * k;
}

static double
conv_flops (const FbInstr *instr)
{
  const FbAttr *dl = fb_instr_get_attr (instr, FB_A_DIM_LABELS);
  if (instr->n_operands < 2 || dl == NULL || dl->kind != FB_AV_DIM_LABELS)
    return 0;
  const FbShape *k = instr->operands[1]->shape;
  const FbConvDims *cd = &dl->v.conv;
  if (k->rank != cd->n_spatial + 2 || cd->k_in < 0 || cd->k_in >= k->rank)
    return 0;
  double window = 1;
  for (int i = 0; i < cd->n_spatial; i++)
    if (cd->k_spatial[i] >= 0 && cd->k_spatial[i] < k->rank)
      window *= MAX (k->dims[cd->k_spatial[i]], 0);
  /* The kernel's input-feature dimension already holds the features of one group. */
  return 2 * elements (instr->shape) * window * MAX (k->dims[cd->k_in], 0);
}

static double
window_size (const FbInstr *instr)
{
  const FbAttr *w = fb_instr_get_attr (instr, FB_A_WINDOW);
  double n = 1;
  if (w && w->kind == FB_AV_WINDOW)
    for (int i = 0; i < w->v.window.n; i++)
      n *= MAX (w->v.window.d[i].size, 0);
  return n;
}

static FbCost
instr_cost (const FbInstr *instr, int depth)
{
  FbCost c = { 0, 0, 0 };

  FbOpcode op = instr->opcode;
  double out_elems = elements (instr->shape);
  c.bytes = operand_bytes (instr) + bytes (instr->shape);

  switch (op)
    {
    case FB_OP_PARAMETER: case FB_OP_CONSTANT: case FB_OP_TUPLE: case FB_OP_GET_TUPLE_ELEMENT:
    case FB_OP_BITCAST: case FB_OP_AFTER_ALL: case FB_OP_ADD_DEPENDENCY: case FB_OP_OPTIMIZATION_BARRIER:
      c.bytes = 0;
      return c;
    case FB_OP_DOT:
      c.flops = dot_flops (instr);
      return c;
    case FB_OP_CONVOLUTION:
      c.flops = conv_flops (instr);
      return c;
    case FB_OP_REDUCE:
      {
        int n = instr->n_operands / 2;
        double in_elems = 0, outs = 0;
        for (int i = 0; i < n; i++)
          in_elems += elements (instr->operands[i]->shape);
        outs = n > 0 ? out_elems : 0;
        /* Each input is folded in by one application of the reducer;
         * the first element of each output needs none. */
        c.flops = MAX (in_elems - outs, 0) / MAX (n, 1) * apply_flops (fb_instr_comp (instr, FB_A_TO_APPLY), depth);
        return c;
      }
    case FB_OP_REDUCE_WINDOW:
      {
        int n = MAX (instr->n_operands / 2, 1);
        double outs = out_elems / n;
        c.flops = outs * MAX (window_size (instr) - 1, 0) * apply_flops (fb_instr_comp (instr, FB_A_TO_APPLY), depth);
        return c;
      }
    case FB_OP_SELECT_AND_SCATTER:
      if (instr->n_operands >= 2)
        {
          double src = elements (instr->operands[1]->shape), w = window_size (instr);
          c.flops = src * (w - 1) * apply_flops (fb_instr_comp (instr, FB_A_SELECT), depth)
                    + src * apply_flops (fb_instr_comp (instr, FB_A_SCATTER), depth);
        }
      return c;
    case FB_OP_MAP:
      c.flops = out_elems * apply_flops (fb_instr_comp (instr, FB_A_TO_APPLY), depth);
      return c;
    case FB_OP_SCATTER:
      {
        int n = (instr->n_operands - 1) / 2;
        if (n >= 1)
          {
            double upd = elements (instr->operands[instr->n_operands - 1]->shape);
            c.flops = n * upd * apply_flops (fb_instr_comp (instr, FB_A_TO_APPLY), depth);
            /* Reads the indices and updates, writes the updated elements. */
            c.bytes = bytes (instr->operands[n]->shape);
            for (int i = 0; i < n; i++)
              c.bytes += 2 * bytes (instr->operands[n + 1 + i]->shape);
          }
        return c;
      }
    case FB_OP_GATHER:
    case FB_OP_DYNAMIC_SLICE:
    case FB_OP_SLICE:
      /* Only the selected elements are read. */
      c.bytes = 2 * bytes (instr->shape);
      for (int i = 1; i < instr->n_operands; i++)
        c.bytes += bytes (instr->operands[i]->shape);
      return c;
    case FB_OP_DYNAMIC_UPDATE_SLICE:
      /* The update is read and written in place. */
      c.bytes = 0;
      for (int i = 1; i < instr->n_operands; i++)
        c.bytes += bytes (instr->operands[i]->shape);
      if (instr->n_operands >= 2)
        c.bytes += bytes (instr->operands[1]->shape);
      return c;
    case FB_OP_SORT:
      {
        const FbDims *d = fb_instr_dims (instr, FB_A_DIMENSIONS);
        if (instr->n_operands > 0 && d && d->n == 1)
          {
            const FbShape *a = instr->operands[0]->shape;
            double n = elements (a), len = d->v[0] >= 0 && d->v[0] < a->rank ? a->dims[d->v[0]] : 1;
            c.flops = n * (len > 1 ? log2 (len) : 0) * apply_flops (fb_instr_comp (instr, FB_A_TO_APPLY), depth);
          }
        return c;
      }
    case FB_OP_FUSION:
      {
        FbComputation *f = fb_instr_comp (instr, FB_A_CALLS);
        if (f)
          {
            FbCost inner = comp_cost (f, depth + 1);
            c.flops = inner.flops;
            c.transcendentals = inner.transcendentals;
          }
        return c;
      }
    case FB_OP_CALL:
      {
        FbComputation *f = fb_instr_comp (instr, FB_A_TO_APPLY);
        return f ? comp_cost (f, depth + 1) : c;
      }
    case FB_OP_WHILE:
      {
        FbCost body = { 0, 0, 0 };
        FbComputation *b = fb_instr_comp (instr, FB_A_BODY), *cond = fb_instr_comp (instr, FB_A_CONDITION);
        if (b)
          cost_add (&body, comp_cost (b, depth + 1), 1);
        if (cond)
          cost_add (&body, comp_cost (cond, depth + 1), 1);
        int64_t n = trip_count (instr);
        FbCost r = { 0, 0, 0 };
        cost_add (&r, body, n > 0 ? (double) n : 1);
        return r;
      }
    case FB_OP_CONDITIONAL:
      {
        /* The most expensive branch, plus reading the selector. */
        FbComputation *callees[64];
        int n = MIN (fb_instr_called (instr, callees, G_N_ELEMENTS (callees)), (int) G_N_ELEMENTS (callees));
        FbCost best = { 0, 0, 0 };
        for (int i = 0; i < n; i++)
          {
            FbCost b = comp_cost (callees[i], depth + 1);
            if (b.flops + b.transcendentals > best.flops + best.transcendentals)
              best = b;
          }
        return best;
      }
    default:
      break;
    }

  if (fb_opcode_is_elementwise (op) || fb_opcode_category (op) == FB_CAT_UNARY
      || fb_opcode_category (op) == FB_CAT_BINARY)
    {
      if (op == FB_OP_BITCAST_CONVERT || op == FB_OP_COPY)
        return c;
      if (is_transcendental (op))
        c.transcendentals = out_elems;
      else
        c.flops = out_elems;
    }
  return c;
}

static FbCost
comp_cost (FbComputation *comp, int depth)
{
  FbCost c = { 0, 0, 0 };
  if (comp == NULL || depth > MAX_DEPTH)
    return c;
  for (FbInstr *in = comp->first; in; in = in->next)
    cost_add (&c, instr_cost (in, depth), 1);
  return c;
}

FbCost
fb_cost_instr (const FbInstr *instr)
{
  FbCost c = { 0, 0, 0 };
  g_return_val_if_fail (instr != NULL, c);
  return instr_cost (instr, 0);
}

FbCost
fb_cost_computation (FbComputation *comp)
{
  FbCost c = { 0, 0, 0 };
  g_return_val_if_fail (comp != NULL, c);
  return comp_cost (comp, 0);
}
