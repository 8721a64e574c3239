/* SPDX-License-Identifier: MIT
 *
 * Buffer assignment. Walks the entry computation in its instruction order
 * (the schedule, once the module is scheduled), gives every value that
 * needs memory a live range, and places the temporaries in one arena:
 * a temporary whose range has ended frees its block, and a later one takes
 * the smallest free block it fits in (best fit). Two cases need no new
 * memory at all: an elementwise or fused output may overwrite an operand
 * of the same size that dies at it, and an output that input_output_alias
 * maps to a parameter is written into that parameter.
 *
 * Parameters are owned by the caller and constants are read-only data:
 * both count as live for the whole step but take no arena space. The plan
 * runs for every snapshot's statistics, so it is linear apart from the
 * free-block trees (n log n).
 */
#include <string.h>

#include "fb-buffers-private.h"

#define ARENA_ALIGN 64

/* --------------------------------------------------------------- values */

static FbValueKind
value_kind (const FbInstr *in)
{
  switch (in->opcode)
    {
    case FB_OP_TUPLE:
    case FB_OP_GET_TUPLE_ELEMENT:
    case FB_OP_BITCAST:
    case FB_OP_RESHAPE:
    case FB_OP_OPTIMIZATION_BARRIER:
    case FB_OP_DOMAIN:
    case FB_OP_ADD_DEPENDENCY:
      if (in->n_operands > 0)
        return FB_VALUE_ALIAS;
      break;
    default:
      break;
    }
  if (fb_shape_bytes (in->shape) <= 0)
    return FB_VALUE_NONE;
  if (in->opcode == FB_OP_PARAMETER)
    return FB_VALUE_PARAM;
  if (in->opcode == FB_OP_CONSTANT)
    return FB_VALUE_CONST;
  return FB_VALUE_TEMP;
}

gboolean
_fb_values_init (FbValues *v, FbComputation *comp, FbInstr *const *order, GError **error)
{
  memset (v, 0, sizeof *v);
  int n = comp->n_instrs;
  v->n = n;
  v->instrs = g_new (FbInstr *, MAX (n, 1));
  v->kind = g_new0 (guint8, MAX (n, 1));
  v->size = g_new0 (int64_t, MAX (n, 1));
  v->src_start = g_new0 (int, n + 1);
  v->saved_scratch = g_new (gpointer, MAX (n, 1));

  int k = 0;
  for (FbInstr *in = comp->first; in && k < n; in = in->next, k++)
    v->instrs[k] = order ? order[k] : in;
  for (int i = 0; i < n; i++)
    {
      v->saved_scratch[i] = v->instrs[i]->scratch;
      v->instrs[i]->scratch = NULL;
    }
  for (int i = 0; i < n; i++)
    v->instrs[i]->scratch = GINT_TO_POINTER (i + 1);

  GArray *src = g_array_sized_new (FALSE, FALSE, sizeof (int), n + n / 2 + 1);
  g_autofree int *stamp = g_new (int, MAX (n, 1));
  for (int i = 0; i < n; i++)
    stamp[i] = -1;

  for (int i = 0; i < n; i++)
    {
      FbInstr *in = v->instrs[i];
      v->src_start[i] = src->len;
      for (int o = 0; o < in->n_operands; o++)
        {
          int p = _fb_values_pos (in->operands[o]);
          if (p < 0 || p >= i || v->instrs[p] != in->operands[o])
            {
              g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                           "%s: %%%s uses %%%s before it is defined",
                           comp->name, in->name, in->operands[o]->name);
              g_array_free (src, TRUE);
              v->src = NULL;
              _fb_values_clear (v);
              return FALSE;
            }
        }
      FbValueKind kind = value_kind (in);
      v->kind[i] = kind;
      if (kind == FB_VALUE_NONE)
        continue;
      if (kind != FB_VALUE_ALIAS)
        {
          v->size[i] = fb_shape_bytes (in->shape);
          g_array_append_val (src, i);
          continue;
        }
      /* An alias refers to the buffers of the operands it passes through. */
      int first = 0, last = in->n_operands;
      FbInstr *through = NULL;
      if (in->opcode == FB_OP_GET_TUPLE_ELEMENT && in->operands[0]->opcode == FB_OP_TUPLE)
        {
          int64_t idx = fb_instr_int (in, FB_A_INDEX, -1);
          if (idx >= 0 && idx < in->operands[0]->n_operands)
            through = in->operands[0]->operands[idx];
        }
      else if (in->opcode == FB_OP_ADD_DEPENDENCY)
        last = 1;
      for (int o = first; o < last; o++)
        {
          FbInstr *op = through ? through : in->operands[o];
          int p = _fb_values_pos (op);
          int s0 = v->src_start[p];
          int s1 = v->src_start[p + 1];
          for (int s = s0; s < s1; s++)
            {
              int b = g_array_index (src, int, s);
              if (stamp[b] == i)
                continue;
              stamp[b] = i;
              g_array_append_val (src, b);
            }
          if (through)
            break;
        }
    }
  v->src_start[n] = src->len;
  v->src = (int *) g_array_free (src, FALSE);
  return TRUE;
}

void
_fb_values_clear (FbValues *v)
{
  if (v->saved_scratch)
    for (int i = 0; i < v->n; i++)
      v->instrs[i]->scratch = v->saved_scratch[i];
  g_free (v->instrs);
  g_free (v->kind);
  g_free (v->size);
  g_free (v->src_start);
  g_free (v->src);
  g_free (v->saved_scratch);
  memset (v, 0, sizeof *v);
}

/* ----------------------------------------------------- free-block trees */

typedef struct {
  int64_t offset, size;
} Block;

static int
cmp_by_size (gconstpointer a, gconstpointer b, gpointer unused)
{
  const Block *x = a, *y = b;
  if (x->size != y->size)
    return x->size < y->size ? -1 : 1;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int
cmp_by_offset (gconstpointer a, gconstpointer b, gpointer unused)
{
  const Block *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

typedef struct {
  GTree  *by_size;     /* owns the blocks */
  GTree  *by_offset;
  int64_t top;         /* arena size so far */
} Arena;

static void
arena_insert (Arena *a, int64_t offset, int64_t size)
{
  Block *b = g_new (Block, 1);
  b->offset = offset;
  b->size = size;
  g_tree_insert (a->by_size, b, b);
  g_tree_insert (a->by_offset, b, b);
}

static void
arena_remove (Arena *a, Block *b)
{
  g_tree_remove (a->by_offset, b);
  g_tree_remove (a->by_size, b);   /* frees it */
}

/* Returns the offset; *reused tells whether freed memory was taken. */
static int64_t
arena_alloc (Arena *a, int64_t size, gboolean *reused)
{
  Block key = { 0, size };
  GTreeNode *node = g_tree_lower_bound (a->by_size, &key);
  *reused = FALSE;
  if (node)
    {
      Block *b = g_tree_node_value (node);
      int64_t off = b->offset, rest = b->size - size;
      arena_remove (a, b);
      if (rest > 0)
        arena_insert (a, off + size, rest);
      *reused = TRUE;
      return off;
    }
  /* Nothing fits: grow the arena, starting inside a free block at its end. */
  GTreeNode *lastn = g_tree_node_last (a->by_offset);
  if (lastn)
    {
      Block *b = g_tree_node_value (lastn);
      if (b->offset + b->size == a->top)
        {
          int64_t off = b->offset;
          arena_remove (a, b);
          a->top = off + size;
          *reused = TRUE;
          return off;
        }
    }
  int64_t off = a->top;
  a->top += size;
  return off;
}

static void
arena_free (Arena *a, int64_t offset, int64_t size)
{
  Block key = { offset, 0 };
  GTreeNode *next = g_tree_lower_bound (a->by_offset, &key);
  GTreeNode *prev = next ? g_tree_node_previous (next) : g_tree_node_last (a->by_offset);
  if (next)
    {
      Block *b = g_tree_node_value (next);
      if (b->offset == offset + size)
        {
          size += b->size;
          arena_remove (a, b);
        }
    }
  if (prev)
    {
      Block *b = g_tree_node_value (prev);
      if (b->offset + b->size == offset)
        {
          offset = b->offset;
          size += b->size;
          arena_remove (a, b);
        }
    }
  arena_insert (a, offset, size);
}

/* ------------------------------------------------------------ the plan */

static gboolean
may_update_in_place (const FbInstr *in)
{
  return in->opcode == FB_OP_FUSION || fb_opcode_is_elementwise (in->opcode);
}

/* The buffer output @index of the root stands for, or -1. */
static int
output_buffer (FbValues *v, FbInstr *root, const FbDims *index)
{
  FbInstr *cur = root;
  for (int k = 0; k < index->n; k++)
    {
      while (cur->opcode == FB_OP_BITCAST || cur->opcode == FB_OP_OPTIMIZATION_BARRIER)
        cur = cur->operands[0];
      if (cur->opcode != FB_OP_TUPLE || index->v[k] < 0 || index->v[k] >= cur->n_operands)
        return -1;
      cur = cur->operands[index->v[k]];
    }
  int p = _fb_values_pos (cur);
  if (p < 0 || v->src_start[p + 1] - v->src_start[p] != 1)
    return -1;
  int b = v->src[v->src_start[p]];
  return v->kind[b] == FB_VALUE_TEMP ? b : -1;
}

FbBufferPlan *
_fb_buffer_plan_new_full (FbModule *module, FbBufferPlanInfo *info, GError **error)
{
  FbBufferPlanInfo dummy;
  if (info == NULL)
    info = &dummy;
  memset (info, 0, sizeof *info);
  if (module->entry == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "the module has no entry computation");
      return NULL;
    }
  FbComputation *comp = module->entry;
  FbValues v;
  if (!_fb_values_init (&v, comp, NULL, error))
    return NULL;
  int n = v.n;

  /* Live ranges: a buffer lives from its definition to its last reader. */
  g_autofree int *end = g_new (int, MAX (n, 1));
  g_autofree guint8 *flags = g_new0 (guint8, MAX (n, 1));   /* 1 output, 2 written into a parameter */
  for (int i = 0; i < n; i++)
    end[i] = v.kind[i] == FB_VALUE_PARAM || v.kind[i] == FB_VALUE_CONST ? n - 1 : i;
  /* An alias reads only what it passes on (get-tuple-element: one element). */
  for (int i = 0; i < n; i++)
    if (v.kind[i] == FB_VALUE_ALIAS)
      for (int s = v.src_start[i]; s < v.src_start[i + 1]; s++)
        end[v.src[s]] = MAX (end[v.src[s]], i);
    else
      for (int o = 0; o < v.instrs[i]->n_operands; o++)
        {
          int p = _fb_values_pos (v.instrs[i]->operands[o]);
          for (int s = v.src_start[p]; s < v.src_start[p + 1]; s++)
            end[v.src[s]] = MAX (end[v.src[s]], i);
        }
  if (comp->root && n > 0)
    {
      int r = _fb_values_pos (comp->root);
      for (int s = v.src_start[r]; s < v.src_start[r + 1]; s++)
        {
          end[v.src[s]] = n - 1;
          flags[v.src[s]] |= 1;
        }
      for (int a = 0; a < module->n_aliases; a++)
        {
          int b = output_buffer (&v, comp->root, &module->aliases[a].output_index);
          if (b >= 0 && !(flags[b] & 2))
            {
              flags[b] |= 2;
              info->n_param_aliased++;
            }
        }
    }

  /* Slots: the memory a temporary occupies; in-place updates share one. */
  g_autofree int *slot = g_new (int, MAX (n, 1));
  g_autofree int *slot_end = g_new (int, MAX (n, 1));
  g_autofree gboolean *in_place = g_new0 (gboolean, MAX (n, 1));
  for (int i = 0; i < n; i++)
    {
      slot[i] = -1;
      if (v.kind[i] != FB_VALUE_TEMP || (flags[i] & 2))
        continue;
      FbInstr *in = v.instrs[i];
      if (may_update_in_place (in))
        for (int o = 0; o < in->n_operands && slot[i] < 0; o++)
          {
            int p = _fb_values_pos (in->operands[o]);
            if (v.src_start[p + 1] - v.src_start[p] != 1)
              continue;
            int s = v.src[v.src_start[p]];
            if (v.kind[s] == FB_VALUE_TEMP && !(flags[s] & 3) && slot[s] >= 0
                && slot_end[slot[s]] == i && v.size[s] == v.size[i])
              {
                slot[i] = slot[s];
                in_place[i] = TRUE;
                info->n_in_place++;
              }
          }
      if (slot[i] < 0)
        slot[i] = i;
      slot_end[slot[i]] = end[i];
    }

  /* Live bytes per position: parameters and constants throughout, plus
   * every slot over its range. */
  FbBufferPlan *plan = g_new0 (FbBufferPlan, 1);
  plan->n_positions = n;
  plan->live_bytes = g_new0 (int64_t, MAX (n, 1));
  g_autofree int64_t *delta = g_new0 (int64_t, n + 1);
  int n_allocs = 0;
  for (int i = 0; i < n; i++)
    {
      if (v.kind[i] == FB_VALUE_PARAM)
        info->param_bytes += v.size[i];
      else if (v.kind[i] == FB_VALUE_CONST)
        info->const_bytes += v.size[i];
      else if (v.kind[i] == FB_VALUE_TEMP)
        {
          info->temp_bytes += v.size[i];
          if (slot[i] == i)
            {
              delta[i] += v.size[i];
              delta[slot_end[i] + 1] -= v.size[i];
            }
        }
      if (v.kind[i] == FB_VALUE_PARAM || v.kind[i] == FB_VALUE_CONST || v.kind[i] == FB_VALUE_TEMP)
        n_allocs++;
    }
  int64_t base = info->param_bytes + info->const_bytes, live = 0;
  plan->peak_bytes = n > 0 ? base : 0;
  for (int i = 0; i < n; i++)
    {
      live += delta[i];
      plan->live_bytes[i] = base + live;
      if (plan->live_bytes[i] > plan->peak_bytes)
        {
          plan->peak_bytes = plan->live_bytes[i];
          plan->peak_position = i;
        }
    }

  /* Offsets: free what ended before this position, then place what starts
   * here. Slots ending at each position are chained through next_free. */
  g_autofree int *free_head = g_new (int, MAX (n, 1));
  g_autofree int *next_free = g_new (int, MAX (n, 1));
  g_autofree int64_t *slot_off = g_new0 (int64_t, MAX (n, 1));
  for (int i = 0; i < n; i++)
    free_head[i] = -1;
  for (int i = 0; i < n; i++)
    if (slot[i] == i)
      {
        next_free[i] = free_head[slot_end[i]];
        free_head[slot_end[i]] = i;
      }
  Arena arena = {
    g_tree_new_full (cmp_by_size, NULL, g_free, NULL),
    g_tree_new_full (cmp_by_offset, NULL, NULL, NULL),
    0
  };
  for (int i = 0; i < n; i++)
    {
      if (i > 0)
        for (int s = free_head[i - 1]; s >= 0; s = next_free[s])
          arena_free (&arena, slot_off[s], (v.size[s] + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
      if (slot[i] == i)
        {
          gboolean reused;
          int64_t sz = (v.size[i] + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
          slot_off[i] = arena_alloc (&arena, sz, &reused);
          info->n_reused += reused;
        }
    }
  plan->arena_bytes = arena.top;
  g_tree_destroy (arena.by_offset);
  g_tree_destroy (arena.by_size);

  plan->n_allocs = n_allocs;
  plan->allocs = g_new0 (FbBufferAlloc, MAX (n_allocs, 1));
  int k = 0;
  for (int i = 0; i < n; i++)
    {
      if (v.kind[i] != FB_VALUE_PARAM && v.kind[i] != FB_VALUE_CONST && v.kind[i] != FB_VALUE_TEMP)
        continue;
      FbBufferAlloc *a = &plan->allocs[k++];
      a->instr = v.instrs[i];
      a->size = v.size[i];
      a->start = v.kind[i] == FB_VALUE_TEMP ? i : 0;
      a->end = end[i];
      a->is_parameter = v.kind[i] == FB_VALUE_PARAM;
      a->is_constant = v.kind[i] == FB_VALUE_CONST;
      a->is_output = (flags[i] & 1) != 0;
      a->in_place = in_place[i] || (flags[i] & 2);
      a->offset = slot[i] >= 0 ? slot_off[slot[i]] : -1;
    }
  _fb_values_clear (&v);
  return plan;
}

FbBufferPlan *
fb_buffer_plan_new (FbModule *module, GError **error)
{
  g_return_val_if_fail (module != NULL, NULL);
  return _fb_buffer_plan_new_full (module, NULL, error);
}

void
fb_buffer_plan_free (FbBufferPlan *plan)
{
  if (plan == NULL)
    return;
  g_free (plan->allocs);
  g_free (plan->live_bytes);
  g_free (plan);
}
