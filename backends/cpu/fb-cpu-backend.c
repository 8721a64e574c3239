/* SPDX-License-Identifier: MIT
 *
 * The CPU backend driver. Compiling turns each computation that runs (the
 * entry, and every computation it calls through while, conditional, call,
 * a fusion the code generator does not take, or a runtime function's
 * to_apply) into a program: a list of steps in schedule order, one per
 * instruction, each of which is
 *
 *   - a generated loop kernel (fb-cpu-codegen.h), split over the thread pool;
 *   - a dot through BLAS (fb-cpu-gemm.c), or for a kOutput fusion the
 *     GEMM followed by its elementwise epilogue in one pass: a generated
 *     kernel that reads the GEMM's result as one more buffer, split over
 *     the pool (any epilogue the generator takes, broadcasts included),
 *     else a small interpreter over blocks (fb-cpu-gemm.c);
 *   - a convolution (im2col + GEMM or direct loops, chosen by timing);
 *   - a runtime function written in C (fb-cpu-runtime.c);
 *   - a call of sub-programs (while, conditional, call, other fusions);
 *   - or nothing at all: parameters, constants, tuples, get-tuple-element,
 *     reshapes, bitcasts and copies only name an existing buffer.
 *
 * Every value that needs memory gets a buffer in one block per program;
 * buffers whose live ranges do not overlap share memory. Executing runs the
 * steps in order; the steps that compute the entry's result write it
 * straight into the caller's arena (faulted in beforehand on every thread),
 * and only what they do not write (a parameter, a constant, ...) is copied.
 */
#include "fb-cpu-private.h"
#include "fb-cpu-codegen.h"
#include "fb-recorder.h"

#include <string.h>
#include <sys/mman.h>

typedef struct _Program Program;
typedef struct _Exe Exe;
typedef struct _Recycler Recycler;

typedef enum {
  STEP_PARAM, STEP_CONST, STEP_ALIAS, STEP_TUPLE, STEP_GTE,
  STEP_KERNEL, STEP_DOT, STEP_CONV, STEP_EPILOGUE, STEP_RUNTIME, STEP_CALL, STEP_WHILE, STEP_COND
} StepKind;

typedef struct {
  StepKind       kind;
  FbInstr       *instr;
  int           *ops;          /* value slots of the operands */
  FbCpuKernel   *kernel;
  FbCpuRuntimeFn rt_fn;
  int            n_programs;
  Program      **programs;
  FbLiteral     *out;          /* preallocated output for steps that write memory */
  FbCpuEpilogue *epilogue;
  FbLiteral     *product;      /* the GEMM's result before the epilogue */
  const FbInstr *ep_product;   /* generated epilogue: the fused dot or convolution */
  FbInstr       *jit_instr;    /* the instruction the kernel is generated from when not @instr:
                                * a rewritten fusion in the executable's shadow module */
  gboolean       out_transposed; /* a dot that stores its result transposed for its one user */
  int            pair;         /* > 0: a later step that runs at the same time as this one, each
                                * on one thread (see pair_gemms) */
} Step;

struct _Program {
  Exe           *exe;
  FbComputation *comp;
  int            n_steps;
  Step          *steps;
  FbLiteral    **values;       /* one per step, for the current execution */
  guint8        *memory;
  int64_t        memory_bytes;
  int64_t        naive_bytes;  /* what the buffers would take without reuse */
};

struct _Exe {
  FbExecutable   base;
  FbArena       *arena;        /* shapes and literals of the programs */
  FbCpuPool     *pool;
  Recycler      *recycler;     /* result buffers reused across executions */
  FbCpuJit      *jit;
  FbCustomCallMap *own_map;
  const FbCustomCallMap *custom_calls;
  GPtrArray     *programs;     /* every Program, owned */
  GPtrArray     *kernels;      /* every FbCpuKernel, owned */
  GPtrArray     *epilogues;    /* every FbCpuEpilogue, owned */
  GHashTable    *by_comp;      /* FbComputation* -> Program* */
  FbModule      *shadow;       /* clone of the module holding rewritten fusions; NULL until needed */
  GHashTable    *shadow_comps; /* FbComputation* -> its rewritten clone (epilogues); or itself when
                                * the clone was rewritten otherwise and cannot be shared */
  int            depth;
  FbRecorder    *recorder;     /* borrowed; NULL: no spans */
  guint64        launch_flow;  /* flow started by the kernel span now open on the host; 0: none */
};

void
_fb_cpu_error (GError **error, const FbInstr *instr, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME, "%%%s: %s", instr ? instr->name : "?", msg);
}

int64_t
_fb_cpu_storage_bytes (const FbShape *shape)
{
  if (fb_shape_is_tuple (shape))
    {
      int64_t b = 0;
      for (int i = 0; i < shape->n_elems; i++)
        b += _fb_cpu_storage_bytes (shape->elems[i]);
      return b;
    }
  if (!fb_shape_is_array (shape))
    return 0;
  return fb_shape_elements (shape) * fb_elem_type_bytes (shape->type);
}

void
_fb_cpu_strides (const FbShape *shape, int64_t *strides)
{
  int64_t acc = 1;
  for (int d = shape->rank - 1; d >= 0; d--)
    {
      strides[d] = acc;
      acc *= shape->dims[d];
    }
}

/* ------------------------------------------------------------ compile */

static Program *compile_computation (Exe *exe, FbComputation *comp, GError **error);

static gboolean
is_alias_op (const FbInstr *i)
{
  if (i->opcode == FB_OP_RESHAPE || i->opcode == FB_OP_BITCAST || i->opcode == FB_OP_COPY
      || i->opcode == FB_OP_OPTIMIZATION_BARRIER)
    return i->n_operands == 1 && _fb_cpu_storage_bytes (i->shape) == _fb_cpu_storage_bytes (i->operands[0]->shape)
           && (fb_shape_is_tuple (i->shape) || i->shape->type == i->operands[0]->shape->type);
  return FALSE;
}

/* Leaves of a tuple shape get one buffer each; records them in @leaves. */
static FbLiteral *
new_output (FbArena *arena, FbShape *shape, GPtrArray *leaves)
{
  FbLiteral *lit = fb_arena_new0 (arena, FbLiteral, 1);
  lit->shape = shape;
  if (fb_shape_is_tuple (shape))
    {
      lit->n_elems = shape->n_elems;
      lit->elems = fb_arena_new0 (arena, FbLiteral *, shape->n_elems);
      for (int i = 0; i < shape->n_elems; i++)
        lit->elems[i] = new_output (arena, shape->elems[i], leaves);
    }
  else
    g_ptr_array_add (leaves, lit);
  return lit;
}

static void advise_huge_pages (gpointer data, gsize bytes);

typedef struct {
  int64_t offset, size;
  int     end;
} Live;

/* Buffers of one step: placed at the lowest offset that does not overlap a
 * buffer still live; buffers die after their last use. */
static void
plan_memory (Program *prog, GPtrArray **leaves_of, const int *last_use)
{
  GArray *live = g_array_new (FALSE, FALSE, sizeof (Live));
  int64_t top = 0, naive = 0;
  for (int s = 0; s < prog->n_steps; s++)
    {
      GPtrArray *leaves = leaves_of[s];
      for (guint k = 0; leaves && k < leaves->len; k++)
        {
          FbLiteral *leaf = leaves->pdata[k];
          int64_t size = (_fb_cpu_storage_bytes (leaf->shape) + 63) & ~(int64_t) 63;
          size = MAX (size, 64);
          naive += size;
          /* live is kept sorted by offset */
          int64_t at = 0;
          guint pos = 0;
          for (; pos < live->len; pos++)
            {
              Live *l = &g_array_index (live, Live, pos);
              if (l->offset - at >= size)
                break;
              at = MAX (at, l->offset + l->size);
            }
          Live nl = { at, size, last_use[s] };
          g_array_insert_val (live, pos, nl);
          leaf->data = GSIZE_TO_POINTER ((gsize) at + 1);   /* offset + 1 until the block exists */
          top = MAX (top, at + size);
        }
      for (guint pos = 0; pos < live->len;)
        if (g_array_index (live, Live, pos).end <= s)
          g_array_remove_index (live, pos);
        else
          pos++;
    }
  g_array_free (live, TRUE);
  prog->memory_bytes = top;
  prog->naive_bytes = naive;
  prog->memory = g_malloc0 (MAX (top, 64));
  advise_huge_pages (prog->memory, (gsize) top);
  for (int s = 0; s < prog->n_steps; s++)
    for (guint k = 0; leaves_of[s] && k < leaves_of[s]->len; k++)
      {
        FbLiteral *leaf = leaves_of[s]->pdata[k];
        leaf->data = prog->memory + (GPOINTER_TO_SIZE (leaf->data) - 1);
      }
}

/* The product of a kOutput fusion that can run as GEMM + generated
 * epilogue: the one dot or convolution of the fused computation, reading
 * parameters only. NULL otherwise. */
static FbInstr *
epilogue_product (const FbInstr *fusion)
{
  const char *kind = fb_instr_str (fusion, FB_A_KIND);
  FbComputation *comp = fb_instr_comp (fusion, FB_A_CALLS);
  if (kind == NULL || strcmp (kind, "kOutput") != 0 || comp == NULL || comp->root == NULL
      || comp->n_params != fusion->n_operands)
    return NULL;
  FbInstr *product = NULL;
  for (FbInstr *i = comp->first; i; i = i->next)
    if (i->opcode == FB_OP_DOT || i->opcode == FB_OP_CONVOLUTION)
      {
        if (product != NULL)
          return NULL;
        product = i;
      }
  if (product == NULL || product == comp->root || !fb_shape_is_array (product->shape))
    return NULL;
  for (int k = 0; k < product->n_operands; k++)
    if (product->operands[k]->opcode != FB_OP_PARAMETER)
      return NULL;
  return product;
}

static FbModule *
shadow_module (Exe *exe)
{
  if (exe->shadow == NULL)
    {
      exe->shadow = fb_module_clone (exe->base.module);
      exe->shadow_comps = g_hash_table_new (NULL, NULL);
    }
  return exe->shadow;
}

/* Makes the epilogue of the kOutput @fusion a loop kernel: in a clone of
 * the module (made once per executable), the fused computation's product
 * becomes one more parameter, numbered after the fusion's operands, and a
 * kLoop fusion calls the result. The kernel then takes the fusion's
 * operands followed by the product's buffer. NULL when the generator does
 * not take the epilogue; @product receives the original dot or convolution. */
static FbInstr *
epilogue_kernel_instr (Exe *exe, const FbInstr *fusion, const FbInstr **product)
{
  FbInstr *p = epilogue_product (fusion);
  if (p == NULL)
    return NULL;
  FbComputation *comp = fb_instr_comp (fusion, FB_A_CALLS);
  FbModule *m = shadow_module (exe);
  FbComputation *cc = g_hash_table_lookup (exe->shadow_comps, comp);
  if (cc == comp)
    return NULL;   /* rewritten for another purpose */
  if (cc == NULL)
    {
      cc = fb_module_find_computation (m, comp->name);
      FbInstr *cp = NULL;
      for (FbInstr *i = cc ? cc->first : NULL; i; i = i->next)
        if (strcmp (i->name, p->name) == 0)
          cp = i;
      if (cc == NULL || cp == NULL || m->entry == NULL || cc->n_params != fusion->n_operands)
        return NULL;
      g_hash_table_insert (exe->shadow_comps, comp, cc);

      int n = cc->n_params;
      FbInstr *param = fb_instr_new (cc, cp, FB_OP_PARAMETER, cp->shape, 0, NULL, NULL);
      param->parameter_number = n;
      FbInstr **params = fb_arena_new0 (m->arena, FbInstr *, n + 1);
      memcpy (params, cc->params, sizeof (FbInstr *) * n);
      params[n] = param;
      cc->params = params;
      cc->n_params = n + 1;
      fb_instr_replace_all_uses (cp, param);
      fb_instr_remove (cp);
    }
  int n = fusion->n_operands;

  g_autofree char *name = g_strconcat (fusion->name, ".epilogue", NULL);
  FbInstr *k = fb_instr_new (m->entry, NULL, FB_OP_FUSION, cc->root->shape, n + 1, cc->params, name);
  fb_instr_set_ident (k, FB_A_KIND, "kLoop");
  fb_instr_set_comp (k, FB_A_CALLS, cc);
  if (!fb_cpu_can_generate (k))
    return NULL;   /* the clone keeps the rewrite; nothing else uses it */
  *product = p;
  return k;
}

/* Transpose folding for generated fusions. A dot whose only use is a
 * fusion that reads it only through a 2-D transpose (the weight gradients
 * of a dense layer, before the optimizer's update) can write its result
 * transposed at no cost (the GEMM with its sides swapped); the fusion then
 * reads it in order instead of across rows. In the shadow module, the
 * fusion's parameter and its transpose become one parameter of the
 * transposed shape. Returns the rewritten fusion, or NULL (nothing to fold,
 * or the generator does not take the result); marks the dots it folded. */
static FbInstr *
fold_transposes (Exe *exe, Program *prog, Step *st)
{
  FbInstr *i = st->instr;
  FbComputation *comp = fb_instr_comp (i, FB_A_CALLS);
  const char *kind = fb_instr_str (i, FB_A_KIND);
  if (comp == NULL || kind == NULL || comp->n_params != i->n_operands || i->n_operands > 256)
    return NULL;
  int fold[256], n_fold = 0;
  for (int k = 0; k < i->n_operands; k++)
    {
      const FbInstr *d = i->operands[k];
      const FbInstr *prm = comp->params[k];
      Step *ds = &prog->steps[st->ops[k]];
      if (d->opcode != FB_OP_DOT || ds->kind != STEP_DOT || d->n_users != 1 || d == prog->comp->root
          || d->shape->type != FB_F32 || d->shape->rank != 2 || prm == NULL || prm->n_users != 1
          || prm == comp->root)
        continue;
      const FbDims *lb = fb_instr_dims (d, FB_A_LHS_BATCH_DIMS);
      if (lb != NULL && lb->n > 0)
        continue;
      gboolean once = TRUE;
      for (int j = 0; j < i->n_operands; j++)
        once &= j == k || i->operands[j] != d;
      const FbInstr *t = prm->users[0];
      const FbDims *perm = fb_instr_dims (t, FB_A_DIMENSIONS);
      if (once && t->opcode == FB_OP_TRANSPOSE && perm && perm->n == 2 && perm->v[0] == 1 && perm->v[1] == 0)
        fold[n_fold++] = k;
    }
  if (n_fold == 0)
    return NULL;

  FbModule *m = shadow_module (exe);
  FbComputation *cc = fb_module_find_computation (m, comp->name);
  if (g_hash_table_contains (exe->shadow_comps, comp) || cc == NULL || m->entry == NULL
      || cc->n_params != comp->n_params)
    return NULL;
  g_hash_table_insert (exe->shadow_comps, comp, comp);
  for (int f = 0; f < n_fold; f++)
    {
      FbInstr *prm = cc->params[fold[f]];
      if (prm == NULL || prm->n_users != 1)
        return NULL;
      FbInstr *t = prm->users[0];
      FbInstr *np = fb_instr_new (cc, prm, FB_OP_PARAMETER, t->shape, 0, NULL, NULL);
      np->parameter_number = fold[f];
      fb_instr_replace_all_uses (t, np);
      fb_instr_remove (t);
      fb_instr_remove (prm);
      cc->params[fold[f]] = np;
    }
  g_autofree char *name = g_strconcat (i->name, ".folded", NULL);
  FbInstr *k = fb_instr_new (m->entry, NULL, FB_OP_FUSION, cc->root->shape, cc->n_params, cc->params, name);
  fb_instr_set_ident (k, FB_A_KIND, kind);
  fb_instr_set_comp (k, FB_A_CALLS, cc);
  if (!fb_cpu_can_generate (k))
    return NULL;
  for (int f = 0; f < n_fold; f++)
    prog->steps[st->ops[fold[f]]].out_transposed = TRUE;
  return k;
}

/* Picks the method of @conv now, timing it if neither this process nor the
 * kernel cache knows it yet, so that the first step does not. */
static gboolean
choose_conv (Exe *exe, const FbInstr *conv, GError **error)
{
  const char *how;
  return _fb_cpu_conv_choose (exe->pool, fb_cpu_jit_get_cache_dir (exe->jit), conv, &how, error);
}

static gboolean
choose_step (Exe *exe, Step *st, GPtrArray *to_jit, GError **error)
{
  FbInstr *i = st->instr;
  switch (i->opcode)
    {
    case FB_OP_PARAMETER:
      st->kind = STEP_PARAM;
      return TRUE;
    case FB_OP_CONSTANT:
      st->kind = STEP_CONST;
      return TRUE;
    case FB_OP_TUPLE:
      st->kind = STEP_TUPLE;
      return TRUE;
    case FB_OP_GET_TUPLE_ELEMENT:
      st->kind = STEP_GTE;
      return TRUE;
    case FB_OP_AFTER_ALL:
    case FB_OP_ADD_DEPENDENCY:
    case FB_OP_DOMAIN:
      st->kind = STEP_ALIAS;
      return TRUE;
    case FB_OP_DOT:
      st->kind = STEP_DOT;
      return TRUE;
    case FB_OP_CONVOLUTION:
      st->kind = STEP_CONV;
      return choose_conv (exe, i, error);
    case FB_OP_WHILE:
    case FB_OP_CONDITIONAL:
    case FB_OP_CALL:
      {
        FbComputation *called[64];
        int n = fb_instr_called (i, called, G_N_ELEMENTS (called));
        st->kind = i->opcode == FB_OP_WHILE ? STEP_WHILE : i->opcode == FB_OP_CONDITIONAL ? STEP_COND : STEP_CALL;
        st->n_programs = n;
        st->programs = fb_arena_new0 (exe->arena, Program *, MAX (n, 1));
        for (int k = 0; k < n; k++)
          if ((st->programs[k] = compile_computation (exe, called[k], error)) == NULL)
            return FALSE;
        /* Keep the condition first for while, and the true branch first
         * for a pred conditional, whatever the attribute order. */
        FbAttrKey first = i->opcode == FB_OP_WHILE ? FB_A_CONDITION : FB_A_TRUE_COMPUTATION;
        if (n == 2 && fb_instr_comp (i, first) == called[1])
          {
            Program *t = st->programs[0];
            st->programs[0] = st->programs[1];
            st->programs[1] = t;
          }
        if ((i->opcode == FB_OP_WHILE && n != 2) || (i->opcode == FB_OP_CONDITIONAL && n < 1))
          {
            g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "%%%s: %s calls %d computations", i->name,
                         fb_opcode_name (i->opcode), n);
            return FALSE;
          }
        return TRUE;
      }
    case FB_OP_CUSTOM_CALL:
      {
        const char *target = fb_instr_str (i, FB_A_CUSTOM_CALL_TARGET);
        if (!fb_custom_call_map_lookup (exe->custom_calls, target ? target : "", NULL, error))
          return FALSE;
        break;
      }
    default:
      break;
    }
  if (is_alias_op (i))
    {
      st->kind = STEP_ALIAS;
      return TRUE;
    }
  if (fb_cpu_can_generate (i))
    {
      st->kind = STEP_KERNEL;
      g_ptr_array_add (to_jit, st);
      return TRUE;
    }
  if (i->opcode == FB_OP_FUSION && (st->jit_instr = epilogue_kernel_instr (exe, i, &st->ep_product)) != NULL)
    {
      st->kind = STEP_EPILOGUE;
      g_ptr_array_add (to_jit, st);
      return st->ep_product->opcode != FB_OP_CONVOLUTION || choose_conv (exe, st->ep_product, error);
    }
  if (i->opcode == FB_OP_FUSION && (st->epilogue = _fb_cpu_epilogue_new (i)) != NULL)
    {
      const FbInstr *p = _fb_cpu_epilogue_product (st->epilogue);
      g_ptr_array_add (exe->epilogues, st->epilogue);
      st->kind = STEP_EPILOGUE;
      return p->opcode != FB_OP_CONVOLUTION || choose_conv (exe, p, error);
    }
  if (i->opcode == FB_OP_FUSION)
    {
      /* A fusion the generator does not take (a kOutput fusion around a dot,
       * a convolution, ...): its computation runs as a program of its own. */
      st->kind = STEP_CALL;
      st->n_programs = 1;
      st->programs = fb_arena_new0 (exe->arena, Program *, 1);
      return (st->programs[0] = compile_computation (exe, fb_instr_comp (i, FB_A_CALLS), error)) != NULL;
    }
  g_autoptr (GError) why = NULL;
  st->rt_fn = _fb_cpu_runtime_lookup (i, &why);
  if (st->rt_fn == NULL)
    {
      g_autoptr (GString) gen = g_string_new (NULL);
      fb_cpu_can_generate_why (i, gen);
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED,
                   "%%%s: the CPU backend cannot run %s: %s%s%s", i->name, fb_opcode_name (i->opcode),
                   why->message, gen->len ? "; not generated either: " : "", gen->str);
      return FALSE;
    }
  st->kind = STEP_RUNTIME;
  FbComputation *called[64];
  int n = fb_instr_called (i, called, G_N_ELEMENTS (called));
  st->n_programs = n;
  st->programs = fb_arena_new0 (exe->arena, Program *, MAX (n, 1));
  for (int k = 0; k < n; k++)
    if ((st->programs[k] = compile_computation (exe, called[k], error)) == NULL)
      return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------ pairs */

/* Two GEMMs next to each other in the schedule that do not depend on each
 * other (a layer's weight gradient and the gradient it passes back) run at
 * the same time, each on one thread with single-threaded BLAS, instead of
 * one after the other split over both threads. A split GEMM packs its
 * shared operand once per part and its parts wait for each other; a pair
 * does neither. It pays when the two take about as long: a pair lasts as
 * long as its larger GEMM on one thread, so the larger may be at most half
 * as large again as the smaller, unless both are small enough to run on
 * one thread anyway. Only with exactly two threads: with more, each GEMM
 * would get one thread and the rest would wait. Only OpenBLAS's GEMMs
 * above that size: oneDNN's split well, and its two products of the MLP's
 * backward layer take 3.1 ms one after the other against 3.3 ms as a pair
 * (its transposed-B product is the slower one, so the pair is uneven). */
#define PAIR_SMALL (2.0 * 1024 * 1024)   /* the split threshold of fb-cpu-gemm.c */

/* The dot a step runs through BLAS, or NULL. */
static const FbInstr *
step_dot (Step *st)
{
  const FbInstr *p = NULL;
  if (st->kind == STEP_DOT)
    p = st->instr;
  else if (st->kind == STEP_EPILOGUE)
    p = st->ep_product ? st->ep_product : _fb_cpu_epilogue_product (st->epilogue);
  if (p == NULL || p->opcode != FB_OP_DOT || p->n_operands != 2)
    return NULL;
  FbElemType t = p->shape->type;
  return t == FB_F32 || t == FB_F64 || t == FB_BF16 || t == FB_F16 ? p : NULL;
}

/* Multiply-adds of a dot. */
static double
dot_work (const FbInstr *dot)
{
  double w = (double) fb_shape_elements (dot->shape);
  const FbDims *c = fb_instr_dims (dot, FB_A_LHS_CONTRACTING_DIMS);
  const FbShape *lhs = dot->operands[0]->shape;
  for (int k = 0; c && k < c->n; k++)
    if (c->v[k] >= 0 && c->v[k] < lhs->rank)
      w *= (double) lhs->dims[c->v[k]];
  return w;
}

static gboolean
is_view_step (const Step *st)
{
  return st->kind == STEP_PARAM || st->kind == STEP_CONST || st->kind == STEP_ALIAS
         || st->kind == STEP_TUPLE || st->kind == STEP_GTE;
}

/* Marks the pairs of @prog (Step.pair). Between the two steps of a pair
 * only view steps may stand, none of which reads the first (they run
 * before the pair), and the second may not read the first. */
static void
pair_gemms (Exe *exe, Program *prog)
{
  if (_fb_cpu_pool_threads (exe->pool) != 2)
    return;
  for (int s = 0; s < prog->n_steps; s++)
    {
      const FbInstr *a = step_dot (&prog->steps[s]);
      if (a == NULL)
        continue;
      int t = s + 1;
      gboolean reads_s = FALSE;
      for (; t < prog->n_steps && is_view_step (&prog->steps[t]); t++)
        for (int k = 0; k < prog->steps[t].instr->n_operands; k++)
          reads_s |= prog->steps[t].ops[k] == s;
      if (reads_s || t >= prog->n_steps)
        continue;
      const FbInstr *b = step_dot (&prog->steps[t]);
      if (b == NULL)
        continue;
      gboolean independent = TRUE;
      for (int k = 0; k < prog->steps[t].instr->n_operands; k++)
        independent &= prog->steps[t].ops[k] != s;
      double wa = dot_work (a), wb = dot_work (b);
      double big = MAX (wa, wb), small = MIN (wa, wb);
      gboolean openblas = _fb_cpu_dot_library (a) == FB_CPU_GEMM_OPENBLAS
                          && _fb_cpu_dot_library (b) == FB_CPU_GEMM_OPENBLAS;
      if (!independent || !(big < PAIR_SMALL || (openblas && small * 1.5 >= big)))
        continue;
      prog->steps[s].pair = t;
      s = t;
    }
}


static Program *
compile_computation (Exe *exe, FbComputation *comp, GError **error)
{
  Program *prog = g_hash_table_lookup (exe->by_comp, comp);
  if (prog != NULL)
    return prog;
  if (comp == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "an instruction calls no computation");
      return NULL;
    }
  if (exe->depth > 64)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "computation %s: calls nest more than 64 deep", comp->name);
      return NULL;
    }
  exe->depth++;

  prog = g_new0 (Program, 1);
  prog->exe = exe;
  prog->comp = comp;
  prog->n_steps = comp->n_instrs;
  prog->steps = g_new0 (Step, MAX (prog->n_steps, 1));
  prog->values = g_new0 (FbLiteral *, MAX (prog->n_steps, 1));
  g_ptr_array_add (exe->programs, prog);
  g_hash_table_insert (exe->by_comp, comp, prog);

  /* The text order (or the schedule, when the module is scheduled) is a
   * valid order: operands come before their users. */
  g_autoptr (GHashTable) slot = g_hash_table_new (NULL, NULL);
  int s = 0;
  for (FbInstr *i = comp->first; i; i = i->next, s++)
    {
      g_hash_table_insert (slot, i, GINT_TO_POINTER (s + 1));
      prog->steps[s].instr = i;
    }

  g_autoptr (GPtrArray) to_jit = g_ptr_array_new ();
  g_autofree int *last_use = g_new0 (int, MAX (prog->n_steps, 1));
  g_autofree int *owner = g_new0 (int, MAX (prog->n_steps, 1));
  GPtrArray **leaves_of = g_new0 (GPtrArray *, MAX (prog->n_steps, 1));
  gboolean ok = TRUE;
  for (s = 0; s < prog->n_steps && ok; s++)
    {
      Step *st = &prog->steps[s];
      FbInstr *i = st->instr;
      st->ops = fb_arena_new0 (exe->arena, int, MAX (i->n_operands, 1));
      for (int k = 0; k < i->n_operands; k++)
        {
          int o = GPOINTER_TO_INT (g_hash_table_lookup (slot, i->operands[k])) - 1;
          if (o < 0 || o >= s)
            {
              g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "%%%s: operand %%%s is not defined before it in %s",
                           i->name, i->operands[k]->name, comp->name);
              ok = FALSE;
              break;
            }
          st->ops[k] = o;
        }
      if (!ok || !(ok = choose_step (exe, st, to_jit, error)))
        break;
      if (st->kind == STEP_KERNEL && i->opcode == FB_OP_FUSION)
        st->jit_instr = fold_transposes (exe, prog, st);

      owner[s] = s;
      last_use[s] = s;
      switch (st->kind)
        {
        case STEP_PARAM:
        case STEP_CONST:
          break;
        case STEP_ALIAS:
        case STEP_TUPLE:
        case STEP_GTE:
          /* Names operands' buffers: keep them alive as long as this. */
          owner[s] = -1;
          break;
        default:
          leaves_of[s] = g_ptr_array_new ();
          st->out = new_output (exe->arena, i->shape, leaves_of[s]);
          if (st->kind == STEP_EPILOGUE)
            st->product = new_output (exe->arena, st->ep_product ? st->ep_product->shape
                                                                  : _fb_cpu_epilogue_product (st->epilogue)->shape,
                                      leaves_of[s]);
          break;
        }
    }

  if (ok)
    {
      /* Last uses, through aliases: a use of an alias is a use of every
       * buffer it may name. Walk backwards so that alias ends are known. */
      g_autofree int *end = g_new0 (int, MAX (prog->n_steps, 1));
      for (s = 0; s < prog->n_steps; s++)
        end[s] = s;
      for (s = 0; s < prog->n_steps; s++)
        if (prog->steps[s].instr == comp->root)
          end[s] = G_MAXINT;
      /* The two steps of a pair run at once: the first one's buffers and
       * operands stay live until the second, whose output must not take
       * their memory. */
      pair_gemms (exe, prog);
      for (s = 0; s < prog->n_steps; s++)
        if (prog->steps[s].pair > 0)
          end[s] = MAX (end[s], prog->steps[s].pair);
      for (s = prog->n_steps - 1; s >= 0; s--)
        {
          Step *st = &prog->steps[s];
          for (int k = 0; k < st->instr->n_operands; k++)
            {
              int o = st->ops[k];
              int e = owner[s] == -1 ? end[s] : MAX (s, st->pair);
              end[o] = MAX (end[o], e);
            }
        }
      for (s = 0; s < prog->n_steps; s++)
        last_use[s] = end[s];
      plan_memory (prog, leaves_of, last_use);
    }
  for (s = 0; s < prog->n_steps; s++)
    if (leaves_of[s])
      g_ptr_array_free (leaves_of[s], TRUE);
  g_free (leaves_of);

  if (ok && to_jit->len > 0)
    {
      g_autofree FbInstr **instrs = g_new (FbInstr *, to_jit->len);
      g_autofree FbCpuKernel **kernels = g_new0 (FbCpuKernel *, to_jit->len);
      for (guint k = 0; k < to_jit->len; k++)
        {
          Step *js = to_jit->pdata[k];
          instrs[k] = js->jit_instr ? js->jit_instr : js->instr;
        }
      ok = fb_cpu_jit_compile (exe->jit, to_jit->len, instrs, kernels, error);
      for (guint k = 0; ok && k < to_jit->len; k++)
        {
          ((Step *) to_jit->pdata[k])->kernel = kernels[k];
          g_ptr_array_add (exe->kernels, kernels[k]);
        }
    }
  exe->depth--;
  return ok ? prog : NULL;
}

/* ------------------------------------------------------------ execute */

static FbLiteral *run_program (Program *prog, FbArena *scratch, int n_args, FbLiteral *const *args,
                               GError **error);

static FbLiteral *
call_program (gpointer program, FbArena *arena, int n_args, FbLiteral *const *args, GError **error)
{
  return run_program (program, arena, n_args, args, error);
}

/* Copies the array leaves of @src into those of @dst (same structure). */
static void
copy_into (FbLiteral *dst, const FbLiteral *src)
{
  if (dst->elems != NULL)
    {
      for (int i = 0; i < dst->n_elems && i < src->n_elems; i++)
        copy_into (dst->elems[i], src->elems[i]);
      return;
    }
  if (dst->data != src->data && src->data != NULL)
    memmove (dst->data, src->data, _fb_cpu_storage_bytes (dst->shape));
}

typedef struct {
  FbCpuKernel *kernel;
  void       **buffers;
  FbRecorder  *recorder;       /* NULL: no spans */
  GThread     *caller;         /* its chunks are inside the kernel's own span */
  const FbInstr *instr;
  guint64     *flow;           /* the open launch flow; the first worker chunk takes it (sets 0) */
} KernelJob;

static void
kernel_range (gpointer data, int64_t begin, int64_t end)
{
  KernelJob *job = data;
  if (job->recorder == NULL || g_thread_self () == job->caller)
    {
      job->kernel->fn ((void *const *) job->buffers, begin, end);
      return;
    }
  /* A chunk on a worker thread: a span of its own on the worker's track. */
  FbRecorderScope scope;
  fb_recorder_begin_kernel (job->recorder, &scope, (int) CLAMP (job->instr->id, 0, G_MAXINT),
                            job->instr->name, (guint) MAX (job->instr->n_prov, 0),
                            (const gint64 *) job->instr->prov);
  /* The host's kernel span points at the first chunk that ran on a worker. */
  guint64 flow = __atomic_load_n (job->flow, __ATOMIC_ACQUIRE);
  if (flow != 0 && __atomic_compare_exchange_n (job->flow, &flow, 0, FALSE, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    scope.span.flow_in = flow;
  job->kernel->fn ((void *const *) job->buffers, begin, end);
  fb_recorder_end (job->recorder, &scope);
}

static void
collect_leaves (FbLiteral *lit, void **buffers, int *n)
{
  if (lit->elems != NULL)
    for (int i = 0; i < lit->n_elems; i++)
      collect_leaves (lit->elems[i], buffers, n);
  else
    buffers[(*n)++] = lit->data;
}

static gboolean
run_kernel (Program *prog, Step *st, GError **error)
{
  FbCpuKernel *k = st->kernel;
  void *buffers[k->n_buffers + 1];
  int n = 0;
  collect_leaves (st->out, buffers, &n);
  if (n != k->n_outputs)
    {
      _fb_cpu_error (error, st->instr, "the kernel expects %d outputs, the value has %d", k->n_outputs, n);
      return FALSE;
    }
  for (int o = 0; o < st->instr->n_operands; o++)
    buffers[n++] = prog->values[st->ops[o]]->data;
  if (st->kind == STEP_EPILOGUE)
    buffers[n++] = st->product->data;   /* a generated epilogue reads the product last */
  if (n != k->n_buffers)
    {
      _fb_cpu_error (error, st->instr, "the kernel expects %d buffers, the step has %d", k->n_buffers, n);
      return FALSE;
    }
  KernelJob job = { k, buffers, prog->exe->recorder, g_thread_self (), st->instr, &prog->exe->launch_flow };
  int64_t inner = MAX (k->inner_elements, 1);
  int64_t grain = MAX (1, 16384 / inner);
  _fb_cpu_pool_parallel_for (prog->exe->pool, k->outer_extent, grain, kernel_range, &job);
  return TRUE;
}

static FbLiteral *
alias_literal (FbArena *arena, FbShape *shape, FbLiteral *src)
{
  FbLiteral *lit = fb_arena_new0 (arena, FbLiteral, 1);
  *lit = *src;
  lit->shape = shape;
  return lit;
}

static gboolean
run_step (Program *prog, Step *st, FbArena *scratch, int n_args, FbLiteral *const *args, GError **error)
{
  FbInstr *i = st->instr;
  int s = st - prog->steps;
  Exe *exe = prog->exe;
  FbLiteral *ops[MAX (i->n_operands, 1)];
  for (int k = 0; k < i->n_operands; k++)
    ops[k] = prog->values[st->ops[k]];

  switch (st->kind)
    {
    case STEP_PARAM:
      if (i->parameter_number < 0 || i->parameter_number >= n_args)
        {
          _fb_cpu_error (error, i, "parameter %" G_GINT64_FORMAT " was not given", i->parameter_number);
          return FALSE;
        }
      prog->values[s] = args[i->parameter_number];
      return TRUE;
    case STEP_CONST:
      if (i->literal == NULL)
        {
          prog->values[s] = fb_literal_new (scratch, i->shape);
          return TRUE;
        }
      prog->values[s] = i->literal;
      return TRUE;
    case STEP_ALIAS:
      prog->values[s] = i->n_operands > 0 ? alias_literal (scratch, i->shape, ops[0]) : fb_literal_new (scratch, i->shape);
      return TRUE;
    case STEP_TUPLE:
      {
        FbLiteral *lit = fb_arena_new0 (scratch, FbLiteral, 1);
        lit->shape = i->shape;
        lit->n_elems = i->n_operands;
        lit->elems = fb_arena_new0 (scratch, FbLiteral *, MAX (i->n_operands, 1));
        for (int k = 0; k < i->n_operands; k++)
          lit->elems[k] = ops[k];
        prog->values[s] = lit;
        return TRUE;
      }
    case STEP_GTE:
      {
        int64_t idx = fb_instr_int (i, FB_A_INDEX, -1);
        if (ops[0]->elems == NULL || idx < 0 || idx >= ops[0]->n_elems)
          {
            _fb_cpu_error (error, i, "tuple index %" G_GINT64_FORMAT " is out of range", idx);
            return FALSE;
          }
        prog->values[s] = ops[0]->elems[idx];
        return TRUE;
      }
    case STEP_KERNEL:
      prog->values[s] = st->out;
      return run_kernel (prog, st, error);
    case STEP_DOT:
      prog->values[s] = st->out;
      return _fb_cpu_dot_full (exe->pool, i, ops[0], ops[1], st->out, st->out_transposed, error);
    case STEP_EPILOGUE:
      {
        const FbInstr *p = st->ep_product ? st->ep_product : _fb_cpu_epilogue_product (st->epilogue);
        FbLiteral *pops[2];
        for (int k = 0; k < 2 && k < p->n_operands; k++)
          {
            int64_t pn = p->operands[k]->parameter_number;
            if (pn < 0 || pn >= i->n_operands)
              {
                _fb_cpu_error (error, i, "the product reads a parameter the fusion does not have");
                return FALSE;
              }
            pops[k] = ops[pn];
          }
        gboolean ok;
        if (p->opcode == FB_OP_DOT)
          ok = _fb_cpu_dot (exe->pool, p, pops[0], pops[1], st->product, error);
        else
          {
            FbCpuRt rt = { exe->pool, scratch, exe->custom_calls, call_program, 0, NULL };
            ok = _fb_cpu_convolution (&rt, p, pops, st->product, error);
          }
        prog->values[s] = st->out;
        if (ok && st->kernel != NULL)
          return run_kernel (prog, st, error);
        return ok && _fb_cpu_epilogue_run (exe->pool, st->epilogue, ops, st->product, st->out, error);
      }
    case STEP_CONV:
    case STEP_RUNTIME:
      {
        FbCpuRt rt = { exe->pool, scratch, exe->custom_calls, call_program, st->n_programs,
                       (gpointer *) st->programs };
        prog->values[s] = st->out;
        return (st->kind == STEP_CONV ? _fb_cpu_convolution : st->rt_fn) (&rt, i, ops, st->out, error);
      }
    case STEP_CALL:
      {
        FbLiteral *r = run_program (st->programs[0], scratch, i->n_operands, ops, error);
        if (r == NULL)
          return FALSE;
        copy_into (st->out, r);
        prog->values[s] = st->out;
        return TRUE;
      }
    case STEP_COND:
      {
        int64_t b = fb_literal_get_s64 (ops[0], 0);
        int n_branches = st->n_programs;
        if (ops[0]->shape->type == FB_PRED)
          b = b ? 0 : 1;   /* true_computation first */
        else if (b < 0 || b >= n_branches)
          b = n_branches - 1;
        FbLiteral *r = run_program (st->programs[b], scratch, 1, &ops[1 + b], error);
        if (r == NULL)
          return FALSE;
        copy_into (st->out, r);
        prog->values[s] = st->out;
        return TRUE;
      }
    case STEP_WHILE:
      {
        copy_into (st->out, ops[0]);
        prog->values[s] = st->out;
        for (;;)
          {
            FbLiteral *state = st->out;
            FbLiteral *c = run_program (st->programs[0], scratch, 1, &state, error);
            if (c == NULL)
              return FALSE;
            if (!fb_literal_get_s64 (c, 0))
              return TRUE;
            FbLiteral *r = run_program (st->programs[1], scratch, 1, &state, error);
            if (r == NULL)
              return FALSE;
            copy_into (st->out, r);
          }
      }
    }
  return TRUE;
}

/* run_step inside a kernel span on the calling thread, for the steps of
 * the entry computation that do work (when a recorder is set). */
static gboolean
run_step_recorded (Program *prog, Step *st, FbArena *scratch, int n_args, FbLiteral *const *args,
                   GError **error)
{
  FbInstr *i = st->instr;
  if (st->kind == STEP_PARAM || st->kind == STEP_CONST || st->kind == STEP_ALIAS
      || st->kind == STEP_TUPLE || st->kind == STEP_GTE)
    return run_step (prog, st, scratch, n_args, args, error);
  FbRecorderScope scope;
  fb_recorder_begin_kernel (prog->exe->recorder, &scope, (int) CLAMP (i->id, 0, G_MAXINT), i->name,
                            (guint) MAX (i->n_prov, 0), (const gint64 *) i->prov);
  guint64 flow = fb_trace_new_flow_id (fb_recorder_get_trace (prog->exe->recorder));
  __atomic_store_n (&prog->exe->launch_flow, flow, __ATOMIC_RELEASE);
  gboolean ok = run_step (prog, st, scratch, n_args, args, error);
  /* A worker took the flow when it is 0 again: only then does it start
   * here, so that no flow dangles. */
  guint64 left = __atomic_exchange_n (&prog->exe->launch_flow, 0, __ATOMIC_ACQ_REL);
  if (left == 0)
    scope.span.flow_out = flow;
  fb_recorder_end (prog->exe->recorder, &scope);
  return ok;
}

typedef struct {
  Program     *prog;
  int          s[2];
  FbArena     *scratch;
  int          n_args;
  FbLiteral *const *args;
  gboolean     record;
  gboolean     ok[2];
  GError      *error[2];
} PairJob;

static void
pair_range (gpointer data, int64_t begin, int64_t end)
{
  PairJob *j = data;
  for (int64_t k = begin; k < end; k++)
    {
      Step *st = &j->prog->steps[j->s[k]];
      FbRecorderScope scope;
      if (j->record)
        fb_recorder_begin_kernel (j->prog->exe->recorder, &scope, (int) CLAMP (st->instr->id, 0, G_MAXINT),
                                  st->instr->name, (guint) MAX (st->instr->n_prov, 0),
                                  (const gint64 *) st->instr->prov);
      j->ok[k] = run_step (j->prog, st, j->scratch, j->n_args, j->args, &j->error[k]);
      if (j->record)
        fb_recorder_end (j->prog->exe->recorder, &scope);
    }
}

/* Steps @s and @t at once, one per thread, BLAS on one thread in each. */
static gboolean
run_pair (Program *prog, int s, int t, FbArena *scratch, int n_args, FbLiteral *const *args, GError **error)
{
  Exe *exe = prog->exe;
  PairJob j = { prog, { s, t }, scratch, n_args, args, exe->recorder != NULL && prog->comp->is_entry,
                { FALSE, FALSE }, { NULL, NULL } };
  _fb_cpu_pool_blas_begin (exe->pool);
  _fb_cpu_pool_parallel_for (exe->pool, 2, 1, pair_range, &j);
  _fb_cpu_pool_blas_end (exe->pool);
  for (int k = 0; k < 2; k++)
    if (!j.ok[k])
      {
        g_propagate_error (error, j.error[k]);
        g_clear_error (&j.error[1 - k]);
        return FALSE;
      }
  return TRUE;
}

static FbLiteral *
run_program (Program *prog, FbArena *scratch, int n_args, FbLiteral *const *args, GError **error)
{
  gboolean record = prog->exe->recorder != NULL && prog->comp->is_entry;
  for (int s = 0; s < prog->n_steps; s++)
    {
      Step *st = &prog->steps[s];
      if (st->pair > 0)
        {
          /* The view steps between the two first, then both at once. */
          for (int v = s + 1; v < st->pair; v++)
            if (!run_step (prog, &prog->steps[v], scratch, n_args, args, error))
              return NULL;
          if (!run_pair (prog, s, st->pair, scratch, n_args, args, error))
            return NULL;
          s = st->pair;
          continue;
        }
      if (!(record ? run_step_recorded : run_step) (prog, st, scratch, n_args, args, error))
        return NULL;
    }
  for (int s = prog->n_steps - 1; s >= 0; s--)
    if (prog->steps[s].instr == prog->comp->root)
      return prog->values[s];
  g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "computation %s has no root", prog->comp->name);
  return NULL;
}

/* ------------------------------------------------------------ backend */

static gboolean
cpu_available (GError **error)
{
  return TRUE;
}

static void cpu_free (FbExecutable *base);

/* ------------------------------------------------- result in place */

/* The entry's result goes straight into the caller's arena: for one
 * execution, the buffers of the steps that compute the result point there
 * instead of into the program's memory, so the result is not copied after
 * the run (a full read and write of it, on one thread, into memory that
 * faults in page by page). Leaves of a tuple result that come from
 * elsewhere (a parameter, a constant, an alias, one buffer twice) are still
 * copied. A leaf taken out of a step's tuple-shaped output by
 * get-tuple-element is written in place too. */
#define REDIRECT_MAX 64

typedef struct {
  int        n;
  FbLiteral *leaf[REDIRECT_MAX];    /* program leaves pointed elsewhere */
  guint8    *saved[REDIRECT_MAX];   /* their own data */
  gboolean   whole;                 /* the whole result is written in place */
  gboolean   direct[REDIRECT_MAX];  /* else, of a tuple result: element k is */
  GHashTable *reused;               /* data of result leaves in recycled buffers */
} Redirect;

/* Fresh memory of a large buffer faults in 2 MiB at a time rather than
 * 4 KiB (a 64 MiB result takes 32 faults instead of 16384), where the
 * kernel offers transparent huge pages. Only a hint: nothing changes when
 * it is not taken. */
static void
advise_huge_pages (gpointer data, gsize bytes)
{
#if defined(MADV_HUGEPAGE)
  const guintptr huge = 2u << 20;
  if (bytes < 2 * huge)
    return;
  guintptr lo = ((guintptr) data + huge - 1) & ~(huge - 1);
  guintptr hi = ((guintptr) data + bytes) & ~(huge - 1);
  if (hi > lo)
    madvise ((void *) lo, hi - lo, MADV_HUGEPAGE);
#endif
}

/* Result buffers of 64 KiB and more are reused from one execution to the
 * next. A training loop keeps one step's result alive while the next step
 * runs and then frees it: without reuse every step's result is fresh memory
 * that the operating system must map and clear, page by page (for the MLP
 * step, 7 MiB of weights: about 4% of the step). A buffer goes back to the
 * executable's free list when the caller frees the arena that holds the
 * result, and is handed out again to a leaf of the same size. The list
 * never holds more than RECYCLE_KEEP results' worth of memory; after the
 * executable is freed, returned buffers are freed at once. */
#define RECYCLE_MIN (64u << 10)
#define RECYCLE_KEEP 4

struct _Recycler {
  gint      ref;           /* atomic: the executable and every buffer out */
  GMutex    lock;
  GPtrArray *free_list;    /* Block */
  gsize     free_bytes;
  gsize     result_bytes;  /* the largest result of one execution so far */
  gboolean  closed;        /* the executable is gone */
};

typedef struct {
  Recycler *rc;
  gsize     bytes;
  guint8   *mem;           /* 64-byte aligned */
} Block;

static Recycler *
recycler_new (void)
{
  Recycler *rc = g_new0 (Recycler, 1);
  rc->ref = 1;
  g_mutex_init (&rc->lock);
  rc->free_list = g_ptr_array_new ();
  return rc;
}

static void
block_free (Block *b)
{
  g_aligned_free (b->mem);
  g_free (b);
}

static void
recycler_unref (Recycler *rc)
{
  if (!g_atomic_int_dec_and_test (&rc->ref))
    return;
  for (guint k = 0; k < rc->free_list->len; k++)
    block_free (rc->free_list->pdata[k]);
  g_ptr_array_free (rc->free_list, TRUE);
  g_mutex_clear (&rc->lock);
  g_free (rc);
}

/* The executable is being freed: the free list goes, and buffers still out
 * are freed when they come back. */
static void
recycler_close (Recycler *rc)
{
  g_mutex_lock (&rc->lock);
  rc->closed = TRUE;
  for (guint k = 0; k < rc->free_list->len; k++)
    block_free (rc->free_list->pdata[k]);
  g_ptr_array_set_size (rc->free_list, 0);
  rc->free_bytes = 0;
  g_mutex_unlock (&rc->lock);
  recycler_unref (rc);
}

/* An arena cleanup: the buffer goes back to the list, or is freed. */
static void
block_return (gpointer data)
{
  Block *b = data;
  Recycler *rc = b->rc;
  g_mutex_lock (&rc->lock);
  if (!rc->closed && rc->free_bytes + b->bytes <= RECYCLE_KEEP * rc->result_bytes)
    {
      g_ptr_array_add (rc->free_list, b);
      rc->free_bytes += b->bytes;
      b = NULL;
    }
  g_mutex_unlock (&rc->lock);
  if (b != NULL)
    block_free (b);
  recycler_unref (rc);
}

/* A buffer of @bytes for a result leaf in @arena; *@fresh tells whether its
 * pages are new (not yet mapped) or were written by an earlier execution. */
static guint8 *
block_take (Recycler *rc, FbArena *arena, gsize bytes, gboolean *fresh)
{
  Block *b = NULL;
  g_mutex_lock (&rc->lock);
  for (guint k = 0; k < rc->free_list->len; k++)
    if (((Block *) rc->free_list->pdata[k])->bytes == bytes)
      {
        b = g_ptr_array_steal_index_fast (rc->free_list, k);
        rc->free_bytes -= bytes;
        break;
      }
  g_mutex_unlock (&rc->lock);
  *fresh = b == NULL;
  if (b == NULL)
    {
      b = g_new (Block, 1);
      b->bytes = bytes;
      b->mem = g_aligned_alloc (1, bytes, 64);
      advise_huge_pages (b->mem, bytes);
    }
  b->rc = rc;
  g_atomic_int_inc (&rc->ref);
  fb_arena_add_cleanup (arena, block_return, b);
  return b->mem;
}

/* A literal of @shape in @arena whose array data is 64-byte aligned (the
 * generated kernels stream aligned stores). Its contents are undefined: the
 * run writes every leaf of the result. Leaves from recycled buffers are
 * marked in @reused (pointer set) when it is given. */
static FbLiteral *
new_result (Recycler *rc, FbArena *arena, FbShape *shape, GHashTable *reused)
{
  FbLiteral *lit = fb_arena_new0 (arena, FbLiteral, 1);
  lit->shape = shape;
  if (fb_shape_is_tuple (shape))
    {
      lit->n_elems = shape->n_elems;
      lit->elems = fb_arena_new0 (arena, FbLiteral *, MAX (1, shape->n_elems));
      for (int i = 0; i < shape->n_elems; i++)
        lit->elems[i] = new_result (rc, arena, shape->elems[i], reused);
      return lit;
    }
  gsize bytes = (gsize) MAX (_fb_cpu_storage_bytes (shape), 1);
  if (rc != NULL && bytes >= RECYCLE_MIN)
    {
      gboolean fresh;
      lit->data = block_take (rc, arena, bytes, &fresh);
      if (!fresh && reused != NULL)
        g_hash_table_add (reused, lit->data);
      return lit;
    }
  guint8 *p = fb_arena_alloc (arena, bytes + 64);
  lit->data = (guint8 *) (((guintptr) p + 63) & ~(guintptr) 63);
  return lit;
}

/* Points the leaves of @from (a step's preallocated output) at those of @to
 * (same structure). FALSE when there are too many. */
static gboolean
redirect_leaves (Redirect *rd, FbLiteral *from, FbLiteral *to)
{
  if (from->elems != NULL)
    {
      for (int i = 0; i < from->n_elems; i++)
        if (!redirect_leaves (rd, from->elems[i], to->elems[i]))
          return FALSE;
      return TRUE;
    }
  if (rd->n >= REDIRECT_MAX)
    return FALSE;
  rd->leaf[rd->n] = from;
  rd->saved[rd->n] = from->data;
  rd->n++;
  from->data = to->data;
  return TRUE;
}

/* The pages of the redirected leaves, one range of pages per leaf. */
typedef struct {
  int      n;
  guint8  *data[REDIRECT_MAX];
  int64_t  first[REDIRECT_MAX + 1];   /* page index where leaf i starts; first[n]: the total */
} Touch;

static void
touch_pages (gpointer data, int64_t begin, int64_t end)
{
  Touch *t = data;
  int i = 0;
  for (int64_t p = begin; p < end; p++)
    {
      while (p >= t->first[i + 1])
        i++;
      ((volatile guint8 *) t->data[i])[(gsize) (p - t->first[i]) * 4096] = 0;
    }
}

/* Faults in the fresh memory of the redirected leaves of 64 KiB and more
 * (not the buffers an earlier execution wrote) before the run, on every thread of the pool: the kernels then write into
 * mapped memory (and their spans measure their own work), and the kernel's
 * clearing of the new pages is shared among the threads. The memory is
 * zero already, so writing a zero into each page changes nothing. */
static void
redirect_fault_in (Redirect *rd, FbCpuPool *pool)
{
  Touch t = { 0 };
  for (int i = 0; i < rd->n; i++)
    {
      gsize bytes = (gsize) _fb_cpu_storage_bytes (rd->leaf[i]->shape);
      if (bytes < (64u << 10) || g_hash_table_contains (rd->reused, rd->leaf[i]->data))
        continue;
      t.data[t.n] = rd->leaf[i]->data;
      t.first[t.n + 1] = t.first[t.n] + (int64_t) ((bytes - 1) / 4096 + 1);
      t.n++;
    }
  if (t.n > 0)
    _fb_cpu_pool_parallel_for (pool, t.first[t.n], 256, touch_pages, &t);
}

/* Gives the program's leaves their own memory back. */
static void
redirect_end (Redirect *rd)
{
  for (int i = rd->n - 1; i >= 0; i--)
    rd->leaf[i]->data = rd->saved[i];
  rd->n = 0;
  g_clear_pointer (&rd->reused, g_hash_table_unref);
}

/* The array buffer a step of the program writes that is the value of step
 * @s: its own output, or for a get-tuple-element the element of the
 * tuple-shaped output it takes (an optimizer's update fusion computes
 * every new weight, and the result tuple takes them apart). NULL when @s
 * writes no array buffer of its own (or with @follow_gte FALSE, for a
 * get-tuple-element). */
static FbLiteral *
step_leaf (Program *prog, int s, gboolean follow_gte)
{
  Step *st = &prog->steps[s];
  if (st->kind == STEP_GTE)
    {
      if (!follow_gte)
        return NULL;
      int64_t idx = fb_instr_int (st->instr, FB_A_INDEX, -1);
      Step *src = &prog->steps[st->ops[0]];
      if (src->out == NULL || src->out->elems == NULL || idx < 0 || idx >= src->out->n_elems)
        return NULL;
      FbLiteral *l = src->out->elems[idx];
      return l->elems == NULL ? l : NULL;
    }
  return st->out != NULL && st->out->elems == NULL ? st->out : NULL;
}

/* The result literal in @arena that the run writes into, or NULL when the
 * result must be copied after the run. */
static FbLiteral *
redirect_begin (Program *prog, FbArena *arena, Redirect *rd)
{
  memset (rd, 0, sizeof *rd);
  rd->reused = g_hash_table_new (NULL, NULL);
  Recycler *rc = prog->exe->recycler;
  int rs = -1;
  for (int s = prog->n_steps - 1; s >= 0 && rs < 0; s--)
    if (prog->steps[s].instr == prog->comp->root)
      rs = s;
  if (rs < 0)
    return NULL;
  Step *st = &prog->steps[rs];
  g_mutex_lock (&rc->lock);
  rc->result_bytes = MAX (rc->result_bytes, (gsize) _fb_cpu_storage_bytes (st->instr->shape));
  g_mutex_unlock (&rc->lock);
  if (st->out != NULL)
    {
      FbLiteral *out = new_result (rc, arena, fb_shape_copy (arena, st->instr->shape), rd->reused);
      if (!redirect_leaves (rd, st->out, out))
        {
          redirect_end (rd);
          return NULL;
        }
      rd->whole = TRUE;
      return out;
    }
  if (st->kind != STEP_TUPLE || st->instr->n_operands > REDIRECT_MAX)
    return NULL;
  FbLiteral *out = new_result (rc, arena, fb_shape_copy (arena, st->instr->shape), rd->reused);
  /* A tuple element of the result is copied from the program's buffers
   * after the run: then no leaf of a tuple may move, in case it is one of
   * them. */
  gboolean follow = TRUE;
  for (int k = 0; k < st->instr->n_operands; k++)
    follow &= !fb_shape_is_tuple (st->instr->operands[k]->shape);
  FbLiteral *leaf[REDIRECT_MAX];
  for (int k = 0; k < st->instr->n_operands; k++)
    leaf[k] = step_leaf (prog, st->ops[k], follow);
  for (int k = 0; k < st->instr->n_operands; k++)
    {
      gboolean once = leaf[k] != NULL;
      for (int j = 0; j < st->instr->n_operands && once; j++)
        if (j != k && leaf[j] == leaf[k])
          once = FALSE;
      if (once && out->elems[k]->elems == NULL && redirect_leaves (rd, leaf[k], out->elems[k]))
        rd->direct[k] = TRUE;
    }
  return out;
}

static FbExecutable *
cpu_compile (FbModule *module, const FbBackendOptions *options, GError **error)
{
  g_return_val_if_fail (module != NULL, NULL);
  if (module->entry == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "the module has no entry computation");
      return NULL;
    }
  Exe *exe = g_new0 (Exe, 1);
  exe->base.backend = &fb_cpu_backend;
  exe->base.module = module;
  exe->arena = fb_arena_new ();
  exe->programs = g_ptr_array_new ();
  exe->kernels = g_ptr_array_new ();
  exe->epilogues = g_ptr_array_new_with_free_func ((GDestroyNotify) _fb_cpu_epilogue_free);
  exe->by_comp = g_hash_table_new (NULL, NULL);
  exe->pool = _fb_cpu_pool_new (options ? options->threads : 0);
  exe->recycler = recycler_new ();
  exe->recorder = options ? options->recorder : NULL;
  if (options && options->custom_calls)
    exe->custom_calls = options->custom_calls;
  else
    exe->custom_calls = exe->own_map = fb_custom_call_map_new ();
  exe->jit = fb_cpu_jit_new (NULL, error);
  if (exe->jit == NULL || compile_computation (exe, module->entry, error) == NULL)
    {
      cpu_free (&exe->base);
      return NULL;
    }
  return &exe->base;
}

static FbLiteral *
cpu_execute (FbExecutable *base, FbArena *arena, int n_args, FbLiteral *const *args, GError **error)
{
  Exe *exe = (Exe *) base;
  FbComputation *entry = base->module->entry;
  if (n_args != entry->n_params)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "the entry computation takes %d arguments, %d were given",
                   entry->n_params, n_args);
      return NULL;
    }
  for (int p = 0; p < n_args; p++)
    if (args[p] == NULL || entry->params[p] == NULL || !fb_shape_compatible (args[p]->shape, entry->params[p]->shape))
      {
        g_autofree char *want = entry->params[p] ? fb_shape_to_string (entry->params[p]->shape) : g_strdup ("?");
        g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "argument %d does not have the parameter's shape %s", p, want);
        return NULL;
      }
  Program *main = g_hash_table_lookup (exe->by_comp, entry);
  FbArena *scratch = fb_arena_new ();
  Redirect rd;
  FbLiteral *out = redirect_begin (main, arena, &rd);
  redirect_fault_in (&rd, exe->pool);
  FbLiteral *r = run_program (main, scratch, n_args, args, error);
  redirect_end (&rd);
  if (r == NULL)
    out = NULL;
  else if (out == NULL)
    out = fb_literal_copy (arena, r);
  else if (!rd.whole && out->elems != NULL && r->elems != NULL)
    {
      for (int k = 0; k < out->n_elems && k < r->n_elems; k++)
        if (!rd.direct[k])
          copy_into (out->elems[k], r->elems[k]);
    }
  fb_arena_free (scratch);
  return out;
}

static void
cpu_free (FbExecutable *base)
{
  Exe *exe = (Exe *) base;
  if (exe == NULL)
    return;
  for (guint k = 0; k < exe->programs->len; k++)
    {
      Program *p = exe->programs->pdata[k];
      g_free (p->steps);
      g_free (p->values);
      g_free (p->memory);
      g_free (p);
    }
  g_ptr_array_free (exe->programs, TRUE);
  for (guint k = 0; k < exe->kernels->len; k++)
    fb_cpu_kernel_free (exe->kernels->pdata[k]);
  g_ptr_array_free (exe->kernels, TRUE);
  g_ptr_array_free (exe->epilogues, TRUE);
  g_clear_pointer (&exe->jit, fb_cpu_jit_free);
  g_hash_table_unref (exe->by_comp);
  g_clear_pointer (&exe->shadow_comps, g_hash_table_unref);
  g_clear_pointer (&exe->shadow, fb_module_free);
  _fb_cpu_pool_free (exe->pool);
  if (exe->recycler)
    recycler_close (exe->recycler);
  fb_custom_call_map_free (exe->own_map);
  fb_arena_free (exe->arena);
  g_free (exe);
}

const FbBackend fb_cpu_backend = {
  .name = "cpu",
  .available = cpu_available,
  .compile = cpu_compile,
  .execute = cpu_execute,
  .free = cpu_free,
};
