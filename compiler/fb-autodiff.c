/* SPDX-License-Identifier: MIT
 *
 * Reverse-mode autodiff driver. It copies the forward computation into the
 * target computation (inlining `call`s so their insides are differentiated
 * too), marks the values that depend on a differentiated parameter, seeds
 * the loss with 1, and walks the copy backwards: every active instruction
 * with a cotangent hands it to its opcode's rule (fb-autodiff-rules.c),
 * which adds to the cotangents of its operands. Cotangents of values with
 * several users are summed as they arrive.
 */
#include <string.h>

#include "fb-autodiff-private.h"
#include "fb-verify.h"

/* ------------------------------------------------------ cotangent table */

gboolean
_fb_ad_is_active (FbAdCtx *ctx, FbInstr *instr)
{
  return g_hash_table_contains (ctx->active, instr);
}

static gboolean
check_ct_shape (FbAdCtx *ctx, FbInstr *fwd, FbInstr *ct)
{
  if (ct == NULL)
    return FALSE;   /* an error is already recorded */
  if (!fb_shape_compatible (fwd->shape, ct->shape))
    {
      g_autofree char *want = fb_shape_to_string (fwd->shape);
      g_autofree char *got = fb_shape_to_string (ct->shape);
      fb_builder_set_error (ctx->b, "autodiff: the cotangent of %s has shape %s, not %s",
                            fwd->name, got, want);
      return FALSE;
    }
  return TRUE;
}

void
_fb_ad_accum (FbAdCtx *ctx, FbInstr *fwd, FbInstr *ct)
{
  if (!_fb_ad_is_active (ctx, fwd) || !fb_builder_ok (ctx->b))
    return;
  if (fb_shape_is_tuple (fwd->shape))
    {
      fb_builder_set_error (ctx->b, "autodiff: %s is a tuple and needs per-element cotangents", fwd->name);
      return;
    }
  if (!check_ct_shape (ctx, fwd, ct))
    return;
  FbInstr *old = g_hash_table_lookup (ctx->ct, fwd);
  g_hash_table_insert (ctx->ct, fwd, old ? fb_b_add (ctx->b, old, ct) : ct);
}

void
_fb_ad_accum_elem (FbAdCtx *ctx, FbInstr *fwd, int64_t index, FbInstr *ct)
{
  if (!_fb_ad_is_active (ctx, fwd) || !fb_builder_ok (ctx->b))
    return;
  if (!fb_shape_is_tuple (fwd->shape) || index < 0 || index >= fwd->shape->n_elems)
    {
      fb_builder_set_error (ctx->b, "autodiff: %s has no tuple element %" G_GINT64_FORMAT, fwd->name, index);
      return;
    }
  FbShape *es = fwd->shape->elems[index];
  if (fb_shape_is_tuple (es))
    {
      fb_builder_set_error (ctx->b, "autodiff: nested tuples (element %" G_GINT64_FORMAT " of %s) are not supported",
                            index, fwd->name);
      return;
    }
  if (ct == NULL)
    return;
  if (!fb_shape_compatible (es, ct->shape))
    {
      fb_builder_set_error (ctx->b, "autodiff: the cotangent of element %" G_GINT64_FORMAT " of %s has the wrong shape",
                            index, fwd->name);
      return;
    }
  FbInstr **el = g_hash_table_lookup (ctx->tuple_ct, fwd);
  if (el == NULL)
    {
      el = g_new0 (FbInstr *, fwd->shape->n_elems);
      g_hash_table_insert (ctx->tuple_ct, fwd, el);
    }
  el[index] = el[index] ? fb_b_add (ctx->b, el[index], ct) : ct;
}

FbInstr *
_fb_ad_elem_ct (FbAdCtx *ctx, FbInstr *fwd, int64_t index)
{
  FbInstr **el = g_hash_table_lookup (ctx->tuple_ct, fwd);
  if (el == NULL || index < 0 || index >= fwd->shape->n_elems)
    return NULL;
  return el[index];
}

/* ---------------------------------------------------------------- copy */

/* Copies the instructions @root depends on, callees of `call` inlined;
 * @map takes a forward instruction to its copy and starts with the
 * parameters. @order receives the copies in a topological order. */
static FbInstr *
copy_instr (FbBuilder *b, FbInstr *fwd, GHashTable *map, GPtrArray *order, int depth)
{
  FbInstr *done = g_hash_table_lookup (map, fwd);
  if (done)
    return done;
  if (!fb_builder_ok (b))
    return NULL;
  if (depth > 64)
    {
      fb_builder_set_error (b, "autodiff: calls are nested too deeply at %s", fwd->name);
      return NULL;
    }
  if (fwd->opcode == FB_OP_PARAMETER)
    {
      fb_builder_set_error (b, "autodiff: parameter %s of %s has no argument", fwd->name, fwd->parent->name);
      return NULL;
    }
  /* Operands first, with an explicit stack: forward graphs can be deep. */
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  FbModule *mod = fb_builder_get_module (b);
  guint limit = 1;   /* every pending entry is an edge or on the path: more means a cycle */
  for (int c = 0; c < mod->n_comps; c++)
    for (FbInstr *i = mod->comps[c]->first; i; i = i->next)
      limit += 1 + i->n_operands;
  g_ptr_array_add (stack, fwd);
  while (stack->len > 0)
    {
      FbInstr *top = g_ptr_array_index (stack, stack->len - 1);
      gboolean ready = TRUE;
      for (int i = 0; i < top->n_operands; i++)
        if (!g_hash_table_contains (map, top->operands[i]))
          {
            if (top->operands[i]->opcode == FB_OP_PARAMETER)
              {
                fb_builder_set_error (b, "autodiff: parameter %s of %s has no argument",
                                      top->operands[i]->name, top->operands[i]->parent->name);
                return NULL;
              }
            g_ptr_array_add (stack, top->operands[i]);
            ready = FALSE;
          }
      if (!ready)
        {
          if (stack->len > limit)
            {
              fb_builder_set_error (b, "autodiff: %s is part of a cycle", top->name);
              return NULL;
            }
          continue;
        }
      g_ptr_array_remove_index (stack, stack->len - 1);
      if (g_hash_table_contains (map, top))
        continue;

      g_autofree FbInstr **ops = g_new0 (FbInstr *, MAX (top->n_operands, 1));
      for (int i = 0; i < top->n_operands; i++)
        ops[i] = g_hash_table_lookup (map, top->operands[i]);

      FbInstr *copy;
      FbComputation *callee = top->opcode == FB_OP_CALL ? fb_instr_comp (top, FB_A_TO_APPLY) : NULL;
      if (callee != NULL)
        {
          if (callee->n_params != top->n_operands || callee->root == NULL)
            {
              fb_builder_set_error (b, "autodiff: %s calls %s with the wrong number of arguments",
                                    top->name, callee->name);
              return NULL;
            }
          g_autoptr (GHashTable) inner = g_hash_table_new (NULL, NULL);
          for (int i = 0; i < callee->n_params; i++)
            g_hash_table_insert (inner, callee->params[i], ops[i]);
          copy = copy_instr (b, callee->root, inner, order, depth + 1);
          if (copy == NULL)
            return NULL;
        }
      else
        {
          FbModule *m = fb_builder_get_module (b);
          FbComputation *comp = fb_builder_get_computation (b);
          copy = fb_instr_new (comp, NULL, top->opcode, fb_shape_copy (m->arena, top->shape),
                               top->n_operands, ops, NULL);
          if (top->n_attrs > 0)
            {
              copy->attrs = fb_arena_memdup (m->arena, top->attrs, sizeof (FbAttr) * top->n_attrs);
              copy->n_attrs = copy->attrs_cap = top->n_attrs;
            }
          if (top->literal)
            copy->literal = fb_literal_copy (m->arena, top->literal);
          copy->literal_elided = top->literal_elided;
          copy->opcode_suffix = top->opcode_suffix;
          if (top->n_prov > 0)
            {
              copy->n_prov = top->n_prov;
              copy->prov = fb_arena_memdup (m->arena, top->prov, sizeof (int64_t) * top->n_prov);
            }
          g_ptr_array_add (order, copy);
          /* The rules trust attributes: check them as the verifier would. */
          GError *err = NULL;
          if (fb_infer_shape (copy, &err) == NULL)
            {
              fb_builder_take_error (b, err);
              return NULL;
            }
        }
      g_hash_table_insert (map, top, copy);
    }
  return g_hash_table_lookup (map, fwd);
}

/* ------------------------------------------------------------- driver */

gboolean
fb_autodiff_has_rule (FbOpcode op)
{
  return _fb_ad_blocks (op) || _fb_ad_rule_exists (op);
}

static gboolean
fail (FbBuilder *b, GError **error)
{
  const GError *e = fb_builder_get_error (b);
  if (e)
    g_propagate_error (error, g_error_copy (e));
  else
    g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "autodiff failed");
  return FALSE;
}

static gboolean
carries_derivative (const FbShape *s)
{
  if (fb_shape_is_tuple (s))
    {
      for (int i = 0; i < s->n_elems; i++)
        if (carries_derivative (s->elems[i]))
          return TRUE;
      return FALSE;
    }
  return fb_elem_type_is_float (s->type);
}

gboolean
fb_autodiff_emit (FbBuilder *b, FbComputation *forward, FbInstr *const *args,
                  int loss_index, int n_wrt, const int *wrt_param_numbers,
                  FbInstr **out_loss, FbInstr **out_grads, FbInstr **out_outputs,
                  GError **error)
{
  g_return_val_if_fail (b != NULL && forward != NULL, FALSE);
  g_return_val_if_fail (n_wrt >= 0 && (n_wrt == 0 || (wrt_param_numbers && out_grads)), FALSE);
  if (!fb_builder_ok (b))
    return fail (b, error);
  if (forward->module != fb_builder_get_module (b) || forward->root == NULL)
    {
      fb_builder_set_error (b, "autodiff: %s is not a finished computation of this module", forward->name);
      return fail (b, error);
    }

  /* Which value is the loss. */
  FbInstr *root = forward->root;
  const FbShape *loss_shape = root->shape;
  if (loss_index >= 0)
    {
      if (!fb_shape_is_tuple (root->shape) || loss_index >= root->shape->n_elems)
        {
          fb_builder_set_error (b, "autodiff: the root of %s has no tuple element %d to use as the loss",
                                forward->name, loss_index);
          return fail (b, error);
        }
      loss_shape = root->shape->elems[loss_index];
    }
  if (!fb_shape_is_array (loss_shape) || loss_shape->rank != 0 || !fb_elem_type_is_float (loss_shape->type))
    {
      g_autofree char *s = fb_shape_to_string (loss_shape);
      fb_builder_set_error (b, "autodiff: the loss of %s must be a floating-point scalar, not %s",
                            forward->name, s);
      return fail (b, error);
    }
  for (int i = 0; i < n_wrt; i++)
    {
      int p = wrt_param_numbers[i];
      if (p < 0 || p >= forward->n_params || forward->params[p] == NULL)
        {
          fb_builder_set_error (b, "autodiff: %s has no parameter %d", forward->name, p);
          return fail (b, error);
        }
      if (!fb_shape_is_array (forward->params[p]->shape) || !fb_elem_type_is_float (forward->params[p]->shape->type))
        {
          fb_builder_set_error (b, "autodiff: parameter %d (%s) of %s is not a floating-point array",
                                p, forward->params[p]->name, forward->name);
          return fail (b, error);
        }
    }
  for (int i = 0; i < forward->n_params; i++)
    if (forward->params[i] == NULL || args[i] == NULL || !fb_shape_compatible (args[i]->shape, forward->params[i]->shape))
      {
        fb_builder_set_error (b, "autodiff: argument %d for %s is missing or has the wrong shape",
                              i, forward->name);
        return fail (b, error);
      }

  /* Forward copy. */
  g_autoptr (GHashTable) map = g_hash_table_new (NULL, NULL);
  g_autoptr (GPtrArray) order = g_ptr_array_new ();
  for (int i = 0; i < forward->n_params; i++)
    g_hash_table_insert (map, forward->params[i], args[i]);
  fb_builder_push_scope (b, "forward");
  FbInstr *out = copy_instr (b, root, map, order, 0);
  fb_builder_pop_scope (b);
  if (out == NULL)
    return fail (b, error);

  FbAdCtx ctx = {
    .b = b,
    .active = g_hash_table_new (NULL, NULL),
    .ct = g_hash_table_new (NULL, NULL),
    .tuple_ct = g_hash_table_new_full (NULL, NULL, NULL, g_free),
  };
  for (int i = 0; i < n_wrt; i++)
    g_hash_table_add (ctx.active, args[wrt_param_numbers[i]]);
  for (guint k = 0; k < order->len; k++)
    {
      FbInstr *in = g_ptr_array_index (order, k);
      if (_fb_ad_blocks (in->opcode) || !carries_derivative (in->shape))
        continue;
      for (int i = 0; i < in->n_operands; i++)
        if (_fb_ad_is_active (&ctx, in->operands[i]))
          {
            g_hash_table_add (ctx.active, in);
            break;
          }
    }

  /* The loss and its seed. */
  FbInstr *loss = loss_index >= 0 ? fb_b_gte (b, out, loss_index) : out;
  fb_builder_push_scope (b, "backward");
  FbInstr *one = fb_b_const (b, loss_shape->type, 1.0);
  if (loss_index >= 0)
    _fb_ad_accum_elem (&ctx, out, loss_index, one);
  else
    _fb_ad_accum (&ctx, out, one);

  for (guint k = order->len; k-- > 0 && fb_builder_ok (b);)
    {
      FbInstr *in = g_ptr_array_index (order, k);
      if (!_fb_ad_is_active (&ctx, in))
        continue;
      FbInstr *g = NULL;
      if (fb_shape_is_tuple (in->shape))
        {
          if (!g_hash_table_contains (ctx.tuple_ct, in))
            continue;
        }
      else if ((g = g_hash_table_lookup (ctx.ct, in)) == NULL)
        continue;
      if (!_fb_ad_rule_exists (in->opcode))
        {
          g_autofree char *where = fb_instr_dup_metadata (in, "op_name");
          fb_builder_take_error (b, g_error_new (FB_ERROR, FB_ERROR_UNSUPPORTED,
                                                 "autodiff: no derivative rule for opcode %s (instruction %s%s%s)",
                                                 fb_opcode_name (in->opcode), in->name,
                                                 where ? ", from " : "", where ? where : ""));
          break;
        }
      fb_builder_push_scope (b, in->name);
      _fb_ad_apply_rule (&ctx, in, g);
      fb_builder_pop_scope (b);
    }

  /* Gradients. */
  for (int i = 0; i < n_wrt && fb_builder_ok (b); i++)
    {
      FbInstr *p = args[wrt_param_numbers[i]];
      FbInstr *g = g_hash_table_lookup (ctx.ct, p);
      out_grads[i] = g ? g : fb_b_zeros_like (b, p);
    }
  fb_builder_pop_scope (b);

  g_hash_table_unref (ctx.active);
  g_hash_table_unref (ctx.ct);
  g_hash_table_unref (ctx.tuple_ct);
  if (!fb_builder_ok (b))
    return fail (b, error);
  if (out_loss)
    *out_loss = loss;
  if (out_outputs)
    *out_outputs = out;
  return TRUE;
}

FbComputation *
fb_autodiff_grad (FbModule *module, FbComputation *forward, int loss_index,
                  int n_wrt, const int *wrt_param_numbers, GError **error)
{
  g_return_val_if_fail (module != NULL && forward != NULL, NULL);
  g_return_val_if_fail (n_wrt >= 0, NULL);
  g_autofree char *name = g_strdup_printf ("%s.grad", forward->name);
  g_autoptr (FbBuilder) b = fb_builder_new (module, name);
  g_autofree FbInstr **args = g_new0 (FbInstr *, MAX (forward->n_params, 1));
  for (int i = 0; i < forward->n_params; i++)
    {
      FbInstr *p = forward->params[i];
      if (p == NULL)
        {
          g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "%s: parameter %d is missing", forward->name, i);
          fb_module_remove_computation (module, fb_builder_get_computation (b));
          return NULL;
        }
      args[i] = fb_b_param (b, p->shape, p->name);
    }
  g_autofree FbInstr **outs = g_new0 (FbInstr *, n_wrt + 1);
  if (!fb_autodiff_emit (b, forward, args, loss_index, n_wrt, wrt_param_numbers,
                         &outs[0], outs + 1, NULL, error))
    {
      fb_module_remove_computation (module, fb_builder_get_computation (b));
      return NULL;
    }
  fb_builder_set_root (b, fb_b_tuple (b, n_wrt + 1, outs));
  FbComputation *c = fb_builder_finish (b, error);
  if (c == NULL)
    fb_module_remove_computation (module, fb_builder_get_computation (b));
  return c;
}
