/* SPDX-License-Identifier: MIT
 *
 * fold-constants: an instruction whose operands are all constants is
 * evaluated once at compile time and replaced by a constant holding its
 * value.
 *
 * Why an evaluator hook: folding must give exactly the value the running
 * program would have computed, for every opcode and element type (bf16
 * rounding, integer overflow, NaN rules). The reference interpreter already
 * has those semantics, but it lives in the backends library, which the
 * compiler library must not link. So this pass builds a tiny module (the
 * constant operands and a copy of the instruction) and hands it to the
 * evaluator registered with fb_pass_set_constant_evaluator(); the layers
 * that link the backends (the CLI, the workbench, the tests) register the
 * interpreter. Without an evaluator the pass changes nothing and says so.
 *
 * Never folded: parameters, rng and other side-effecting instructions,
 * instructions that call computations, broadcasts (a broadcast of a
 * constant is cheaper to keep than a big literal), elided constants (their
 * values are not known), tuples, results above 1 MiB (recorded as REFUSED
 * with the size) and instructions too costly to evaluate at compile time
 * (above 10^7 estimated operations, also recorded).
 */
#include <string.h>

#include "fb-cost.h"
#include "fb-passes-private.h"

#define MAX_FOLD_BYTES (1 << 20)
/* Work the evaluator may spend on one instruction at compile time. */
#define MAX_FOLD_FLOPS 1e7

static gboolean
is_known_constant (const FbInstr *i)
{
  return i->opcode == FB_OP_CONSTANT && i->literal != NULL && !i->literal_elided && i->opcode_suffix == NULL
         && fb_shape_is_array (i->shape);
}

static gboolean
foldable (FbInstr *i)
{
  if (i->n_operands == 0 || !fb_shape_is_array (i->shape) || !fb_elem_type_is_array (i->shape->type)
      || i->shape->dyn != NULL)
    return FALSE;
  switch (fb_opcode_category (i->opcode))
    {
    case FB_CAT_RNG:
    case FB_CAT_CONTROL:
    case FB_CAT_COLLECTIVE:
    case FB_CAT_LEAF:
    case FB_CAT_TUPLE:
      return FALSE;
    default:
      break;
    }
  switch (i->opcode)
    {
    case FB_OP_BROADCAST:
    case FB_OP_INFEED:
    case FB_OP_OUTFEED:
    case FB_OP_SEND:
    case FB_OP_RECV:
    case FB_OP_SEND_DONE:
    case FB_OP_RECV_DONE:
    case FB_OP_DOMAIN:
    case FB_OP_OPTIMIZATION_BARRIER:
    case FB_OP_AFTER_ALL:
    case FB_OP_ADD_DEPENDENCY:
    case FB_OP_SET_DIMENSION_SIZE:
    case FB_OP_GET_DIMENSION_SIZE:
    case FB_OP_STOCHASTIC_CONVERT:
      return FALSE;
    default:
      break;
    }
  if (_fb_instr_has_side_effect (i))
    return FALSE;
  FbComputation *called[1];
  if (fb_instr_called (i, called, 1) > 0)
    return FALSE;
  for (int k = 0; k < i->n_operands; k++)
    if (i->operands[k] == NULL || !is_known_constant (i->operands[k]))
      return FALSE;
  return TRUE;
}

/* Evaluates @i on its constant operands in a scratch module. */
static FbLiteral *
evaluate (FbInstr *i, FbArena *dest, FbConstantEvaluator eval, gpointer data, GError **error)
{
  FbModule *tmp = fb_module_new ("fold");
  FbComputation *comp = fb_module_add_computation (tmp, "fold");
  comp->is_entry = TRUE;
  tmp->entry = comp;
  FbInstr **ops = g_new0 (FbInstr *, i->n_operands);
  for (int k = 0; k < i->n_operands; k++)
    {
      /* Shapes and literals are only read: borrowing them from the module is safe. */
      ops[k] = fb_instr_new (comp, NULL, FB_OP_CONSTANT, i->operands[k]->shape, 0, NULL, NULL);
      ops[k]->literal = i->operands[k]->literal;
    }
  FbInstr *copy = fb_instr_new (comp, NULL, i->opcode, i->shape, i->n_operands, ops, NULL);
  copy->n_attrs = copy->attrs_cap = i->n_attrs;
  copy->attrs = fb_arena_memdup (tmp->arena, i->attrs, sizeof (FbAttr) * MAX (i->n_attrs, 1));
  comp->root = copy;
  g_free (ops);

  FbArena *scratch = fb_arena_new ();
  FbLiteral *value = eval (tmp, scratch, data, error);
  FbLiteral *out = value ? fb_literal_copy (dest, value) : NULL;
  fb_arena_free (scratch);
  fb_module_free (tmp);
  return out;
}

static gboolean
fold_run (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error)
{
  gpointer data = NULL;
  FbConstantEvaluator eval = fb_pass_get_constant_evaluator (&data);
  *changed = FALSE;
  if (eval == NULL)
    {
      fb_pass_decide (ctx, FB_DECISION_NOTE, "no-evaluator", 0, NULL,
                      "folded nothing: no constant evaluator is registered in this program");
      return TRUE;
    }
  for (int c = 0; c < module->n_comps; c++)
    {
      FbInstr *next;
      for (FbInstr *i = module->comps[c]->first; i; i = next)
        {
          next = i->next;
          if (!foldable (i))
            continue;
          int64_t bytes = fb_shape_bytes (i->shape);
          if (bytes > MAX_FOLD_BYTES)
            {
              fb_pass_decide (ctx, FB_DECISION_REFUSED, "result-too-big", 1, &i,
                              "did not fold %%%s: its value would be a %" G_GINT64_FORMAT
                              "-byte constant (more than 1 MiB)", i->name, bytes);
              continue;
            }
          FbCost cost = fb_cost_instr (i);
          if (cost.flops + cost.transcendentals > MAX_FOLD_FLOPS)
            {
              fb_pass_decide (ctx, FB_DECISION_REFUSED, "too-costly", 1, &i,
                              "did not fold %%%s: evaluating it at compile time would take %.3g operations",
                              i->name, cost.flops + cost.transcendentals);
              continue;
            }
          g_autoptr (GError) local = NULL;
          FbLiteral *value = evaluate (i, module->arena, eval, data, &local);
          if (value == NULL)
            {
              fb_pass_decide (ctx, FB_DECISION_REFUSED, "cannot-evaluate", 1, &i, "did not fold %%%s: %s",
                              i->name, local ? local->message : "the evaluator failed");
              continue;
            }
          FbInstr *k = fb_instr_new (i->parent, i, FB_OP_CONSTANT, i->shape, 0, NULL, NULL);
          k->literal = value;
          FbInstr *both[2] = { i, k };
          fb_pass_decide (ctx, FB_DECISION_REWRITTEN, "fold", 2, both, "folded %%%s (%s of constants) into %%%s",
                          i->name, fb_opcode_name (i->opcode), k->name);
          FbInstr *ops[i->n_operands + 1];
          int n_ops = i->n_operands;
          memcpy (ops, i->operands, sizeof (FbInstr *) * n_ops);
          _fb_pass_replace (ctx, i, k, NULL);
          /* Operand constants nothing else reads go with it. */
          for (int o = 0; o < n_ops; o++)
            if (ops[o] != NULL && ops[o]->parent != NULL && ops[o]->n_users == 0)
              {
                gboolean seen = FALSE;
                for (int p = 0; p < o; p++)
                  seen |= ops[p] == ops[o];
                if (!seen)
                  _fb_pass_remove_if_dead (ops[o], k);
              }
          *changed = TRUE;
        }
    }
  return TRUE;
}

const FbPass fb_pass_fold_constants = {
  "fold-constants",
  "constant folding: compute at compile time what depends only on constants",
  "An operation whose inputs are all constants gives the same result at every step, so the compiler "
  "computes it once, with the same arithmetic the program would use, and puts the result in the "
  "program as a constant. Chains fold one after the other, since each folded result is a constant "
  "for the next operation. Some things are never folded: parameters, random numbers, operations "
  "with side effects, and broadcasts (a small constant broadcast at run time is cheaper than a big "
  "constant). A result larger than 1 MiB is not folded either, to keep the program small; the "
  "decision log shows its size.",
  fold_run,
};
