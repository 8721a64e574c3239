/* SPDX-License-Identifier: MIT
 *
 * The elemental emitter: the LLVM value of an instruction at a
 * multi-dimensional index. Elementwise ops combine their operands' values at
 * the same index; movement ops (broadcast, reshape, transpose, slice, pad,
 * concatenate, reverse, dynamic slices) map the index onto their operand's
 * index; parameters load from buffers with row-major index arithmetic;
 * reduces loop over their reduced dimensions. Inside a fusion it recurses
 * through the fused computation, so producers are computed on the fly.
 *
 * Values that were already emitted at the same index in an enclosing scope
 * are reused (a memo), which keeps shared subexpressions and reductions
 * hoisted by the driver from being emitted twice. Nothing here knows about
 * the loops over the output or the threads that run them.
 *
 * Semantics follow the reference interpreter: f16 and bf16 compute in f32
 * and round to their type after every operation; integer division by zero
 * gives all ones, INT_MIN / -1 gives INT_MIN; out-of-range shifts saturate;
 * maximum and minimum propagate NaN; float to integer converts saturate and
 * map NaN to 0.
 */
#include "fb-cpu-codegen-private.h"

#include <string.h>

/* ------------------------------------------------------------- set up */

void
_fb_emit_init (FbEmitter *e, LLVMContextRef ctx, LLVMModuleRef mod, LLVMBuilderRef b)
{
  memset (e, 0, sizeof *e);
  e->ctx = ctx;
  e->mod = mod;
  e->b = b;
  e->t_i1 = LLVMInt1TypeInContext (ctx);
  e->t_i8 = LLVMInt8TypeInContext (ctx);
  e->t_i16 = LLVMInt16TypeInContext (ctx);
  e->t_i32 = LLVMInt32TypeInContext (ctx);
  e->t_i64 = LLVMInt64TypeInContext (ctx);
  e->t_i128 = LLVMInt128TypeInContext (ctx);
  e->t_f16 = LLVMHalfTypeInContext (ctx);
  e->t_f32 = LLVMFloatTypeInContext (ctx);
  e->t_f64 = LLVMDoubleTypeInContext (ctx);
  e->t_ptr = LLVMPointerTypeInContext (ctx, 0);
  e->t_void = LLVMVoidTypeInContext (ctx);
  e->bindings = g_hash_table_new (NULL, NULL);
  e->memo = g_array_new (FALSE, FALSE, sizeof (FbMemoEntry));
}

void
_fb_emit_clear (FbEmitter *e)
{
  g_clear_pointer (&e->bindings, g_hash_table_unref);
  if (e->memo != NULL)
    g_array_unref (e->memo);
  e->memo = NULL;
  g_clear_error (&e->error);
}

void
_fb_emit_fail (FbEmitter *e, const FbInstr *instr, const char *fmt, ...)
{
  if (e->error != NULL)
    return;
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (&e->error, FB_ERROR, FB_ERROR_UNSUPPORTED, "%%%s: %s",
               instr != NULL ? instr->name : "?", msg);
}

void
_fb_emit_push (FbEmitter *e)
{
  e->depth++;
}

void
_fb_emit_pop (FbEmitter *e)
{
  e->depth--;
  guint keep = e->memo->len;
  while (keep > 0 && g_array_index (e->memo, FbMemoEntry, keep - 1).depth > e->depth)
    keep--;
  g_array_set_size (e->memo, keep);
}

LLVMValueRef
_fb_emit_i64 (FbEmitter *e, int64_t v)
{
  return LLVMConstInt (e->t_i64, (unsigned long long) v, TRUE);
}

/* -------------------------------------------------------------- index */

void
_fb_index_init (FbIndex *idx, const FbShape *shape)
{
  memset (idx, 0, sizeof *idx);
  idx->rank = shape->rank;
  idx->dims = shape->dims;
}

void
_fb_index_scalar (FbIndex *idx)
{
  memset (idx, 0, sizeof *idx);
}

LLVMValueRef
_fb_index_linear (FbEmitter *e, FbIndex *idx)
{
  if (idx->linear != NULL)
    return idx->linear;
  if (idx->rank == 0)
    return idx->linear = _fb_emit_i64 (e, 0);
  LLVMValueRef acc = NULL;
  for (int d = 0; d < idx->rank; d++)
    {
      LLVMValueRef v = _fb_index_dim (e, idx, d);
      if (acc == NULL)
        acc = v;
      else
        acc = LLVMBuildNUWAdd (e->b, LLVMBuildNUWMul (e->b, acc, _fb_emit_i64 (e, idx->dims[d]), ""), v, "");
    }
  return idx->linear = acc;
}

LLVMValueRef
_fb_index_dim (FbEmitter *e, FbIndex *idx, int d)
{
  if (idx->v[d] != NULL)
    return idx->v[d];
  g_assert (idx->linear != NULL);
  int64_t stride = 1;
  for (int k = d + 1; k < idx->rank; k++)
    stride *= idx->dims[k];
  LLVMValueRef v = idx->linear;
  if (stride != 1)
    v = LLVMBuildUDiv (e->b, v, _fb_emit_i64 (e, stride), "");
  if (d > 0 && idx->dims[d] != 1)
    v = LLVMBuildURem (e->b, v, _fb_emit_i64 (e, idx->dims[d]), "");
  if (idx->dims[d] == 1)
    v = _fb_emit_i64 (e, 0);
  return idx->v[d] = v;
}

static gboolean
index_same (const FbIndex *a, const FbIndex *b)
{
  if (a->rank != b->rank)
    return FALSE;
  if (a->rank == 0)
    return TRUE;
  if (a->linear != NULL && a->linear == b->linear)
    return TRUE;
  for (int d = 0; d < a->rank; d++)
    if (a->dims[d] != 1 && (a->v[d] == NULL || a->v[d] != b->v[d]))
      return FALSE;
  return TRUE;
}

static LLVMValueRef
memo_find (FbEmitter *e, const FbInstr *instr, const FbIndex *idx)
{
  for (guint i = e->memo->len; i > 0; i--)
    {
      FbMemoEntry *m = &g_array_index (e->memo, FbMemoEntry, i - 1);
      if (m->instr == instr && index_same (&m->index, idx))
        return m->value;
    }
  return NULL;
}

static void
memo_add (FbEmitter *e, const FbInstr *instr, const FbIndex *idx, LLVMValueRef v)
{
  FbMemoEntry m = { instr, *idx, v, e->depth };
  g_array_append_val (e->memo, m);
}

/* -------------------------------------------------------------- types */

gboolean
_fb_emit_type_ok (FbElemType t)
{
  switch (t)
    {
    case FB_PRED: case FB_S8: case FB_S16: case FB_S32: case FB_S64:
    case FB_U8: case FB_U16: case FB_U32: case FB_U64:
    case FB_F16: case FB_BF16: case FB_F32: case FB_F64:
      return TRUE;
    default:
      return FALSE;
    }
}

LLVMTypeRef
_fb_emit_reg_type (FbEmitter *e, FbElemType t)
{
  switch (t)
    {
    case FB_PRED: return e->t_i1;
    case FB_S8: case FB_U8: return e->t_i8;
    case FB_S16: case FB_U16: return e->t_i16;
    case FB_S32: case FB_U32: return e->t_i32;
    case FB_S64: case FB_U64: return e->t_i64;
    case FB_F16: case FB_BF16: case FB_F32: return e->t_f32;
    case FB_F64: return e->t_f64;
    default: return e->t_i8;
    }
}

LLVMTypeRef
_fb_emit_store_type (FbEmitter *e, FbElemType t)
{
  switch (t)
    {
    case FB_PRED: return e->t_i8;
    case FB_F16: return e->t_f16;
    case FB_BF16: return e->t_i16;
    default: return _fb_emit_reg_type (e, t);
    }
}

static gboolean
is_float (FbElemType t)
{
  return t == FB_F16 || t == FB_BF16 || t == FB_F32 || t == FB_F64;
}

static gboolean
is_signed (FbElemType t)
{
  return fb_elem_type_kind (t) == FB_KIND_SINT;
}

/* f32 bits of a bf16 value rounded to nearest even (quiet NaN kept). */
static LLVMValueRef
f32_to_bf16_bits (FbEmitter *e, LLVMValueRef f)
{
  LLVMBuilderRef b = e->b;
  LLVMValueRef u = LLVMBuildBitCast (b, f, e->t_i32, "");
  LLVMValueRef c16 = LLVMConstInt (e->t_i32, 16, FALSE);
  LLVMValueRef lsb = LLVMBuildAnd (b, LLVMBuildLShr (b, u, c16, ""), LLVMConstInt (e->t_i32, 1, FALSE), "");
  LLVMValueRef rnd = LLVMBuildAdd (b, u, LLVMBuildAdd (b, lsb, LLVMConstInt (e->t_i32, 0x7fff, FALSE), ""), "");
  LLVMValueRef rounded = LLVMBuildLShr (b, rnd, c16, "");
  LLVMValueRef nan = LLVMBuildOr (b, LLVMBuildLShr (b, u, c16, ""), LLVMConstInt (e->t_i32, 0x40, FALSE), "");
  LLVMValueRef is_nan = LLVMBuildICmp (b, LLVMIntUGT,
                                       LLVMBuildAnd (b, u, LLVMConstInt (e->t_i32, 0x7fffffff, FALSE), ""),
                                       LLVMConstInt (e->t_i32, 0x7f800000, FALSE), "");
  return LLVMBuildTrunc (b, LLVMBuildSelect (b, is_nan, nan, rounded, ""), e->t_i16, "");
}

static LLVMValueRef
bf16_bits_to_f32 (FbEmitter *e, LLVMValueRef h)
{
  LLVMValueRef u = LLVMBuildShl (e->b, LLVMBuildZExt (e->b, h, e->t_i32, ""),
                                 LLVMConstInt (e->t_i32, 16, FALSE), "");
  return LLVMBuildBitCast (e->b, u, e->t_f32, "");
}

/* Rounds an f32 register value to the precision of @t (f16, bf16). */
static LLVMValueRef
round_to (FbEmitter *e, FbElemType t, LLVMValueRef v)
{
  if (t == FB_F16)
    return LLVMBuildFPExt (e->b, LLVMBuildFPTrunc (e->b, v, e->t_f16, ""), e->t_f32, "");
  if (t == FB_BF16)
    return bf16_bits_to_f32 (e, f32_to_bf16_bits (e, v));
  return v;
}

LLVMValueRef
_fb_emit_load (FbEmitter *e, FbElemType t, LLVMValueRef base, LLVMValueRef linear)
{
  LLVMTypeRef st = _fb_emit_store_type (e, t);
  LLVMValueRef p = LLVMBuildInBoundsGEP2 (e->b, st, base, &linear, 1, "");
  LLVMValueRef v = LLVMBuildLoad2 (e->b, st, p, "");
  LLVMSetAlignment (v, (unsigned) fb_elem_type_bytes (t));
  switch (t)
    {
    case FB_PRED: return LLVMBuildICmp (e->b, LLVMIntNE, v, LLVMConstInt (e->t_i8, 0, FALSE), "");
    case FB_F16: return LLVMBuildFPExt (e->b, v, e->t_f32, "");
    case FB_BF16: return bf16_bits_to_f32 (e, v);
    default: return v;
    }
}

void
_fb_emit_store (FbEmitter *e, FbElemType t, LLVMValueRef base, LLVMValueRef linear, LLVMValueRef value)
{
  LLVMTypeRef st = _fb_emit_store_type (e, t);
  switch (t)
    {
    case FB_PRED: value = LLVMBuildZExt (e->b, value, e->t_i8, ""); break;
    case FB_F16: value = LLVMBuildFPTrunc (e->b, value, e->t_f16, ""); break;
    case FB_BF16: value = f32_to_bf16_bits (e, value); break;
    default: break;
    }
  LLVMValueRef p = LLVMBuildInBoundsGEP2 (e->b, st, base, &linear, 1, "");
  LLVMValueRef s = LLVMBuildStore (e->b, value, p);
  LLVMSetAlignment (s, (unsigned) fb_elem_type_bytes (t));
}

/* ----------------------------------------------------------- helpers */

LLVMValueRef
_fb_emit_alloca (FbEmitter *e, LLVMTypeRef type, const char *name)
{
  LLVMBuilderRef ab = LLVMCreateBuilderInContext (e->ctx);
  LLVMValueRef first = LLVMGetFirstInstruction (e->entry);
  if (first != NULL)
    LLVMPositionBuilderBefore (ab, first);
  else
    LLVMPositionBuilderAtEnd (ab, e->entry);
  LLVMValueRef a = LLVMBuildAlloca (ab, type, name);
  LLVMDisposeBuilder (ab);
  return a;
}

LLVMValueRef
_fb_emit_intrinsic (FbEmitter *e, const char *name, LLVMTypeRef type, int n, LLVMValueRef *args)
{
  unsigned id = LLVMLookupIntrinsicID (name, strlen (name));
  g_assert (id != 0);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration (e->mod, id, &type, 1);
  LLVMTypeRef ft = LLVMIntrinsicGetType (e->ctx, id, &type, 1);
  return LLVMBuildCall2 (e->b, ft, f, args, (unsigned) n, "");
}

LLVMValueRef
_fb_emit_libcall (FbEmitter *e, const char *name, LLVMTypeRef type, int n, LLVMValueRef *args)
{
  LLVMTypeRef params[3] = { type, type, type };
  LLVMTypeRef ft = LLVMFunctionType (type, params, (unsigned) n, FALSE);
  LLVMValueRef f = LLVMGetNamedFunction (e->mod, name);
  if (f == NULL)
    {
      f = LLVMAddFunction (e->mod, name, ft);
      LLVMSetLinkage (f, LLVMExternalLinkage);
    }
  return LLVMBuildCall2 (e->b, ft, f, args, (unsigned) n, "");
}

LLVMValueRef
_fb_emit_fmf (FbEmitter *e, LLVMValueRef v)
{
  if (LLVMIsAInstruction (v) && LLVMCanValueUseFastMathFlags (v))
    LLVMSetFastMathFlags (v, LLVMFastMathAllowContract | (e->reassoc ? LLVMFastMathAllowReassoc : 0));
  return v;
}

void
_fb_emit_loop_begin (FbEmitter *e, FbLoop *loop, const char *name, LLVMValueRef start, LLVMValueRef end)
{
  loop->pre = LLVMGetInsertBlock (e->b);
  loop->header = LLVMAppendBasicBlockInContext (e->ctx, e->fn, name);
  loop->body = LLVMAppendBasicBlockInContext (e->ctx, e->fn, "body");
  loop->latch = NULL;
  loop->exit = LLVMAppendBasicBlockInContext (e->ctx, e->fn, "exit");
  LLVMBuildBr (e->b, loop->header);
  LLVMPositionBuilderAtEnd (e->b, loop->header);
  loop->iv = LLVMBuildPhi (e->b, e->t_i64, name);
  LLVMAddIncoming (loop->iv, &start, &loop->pre, 1);
  LLVMValueRef cond = LLVMBuildICmp (e->b, LLVMIntSLT, loop->iv, end, "");
  LLVMBuildCondBr (e->b, cond, loop->body, loop->exit);
  LLVMPositionBuilderAtEnd (e->b, loop->body);
  _fb_emit_push (e);
}

void
_fb_emit_loop_end (FbEmitter *e, FbLoop *loop)
{
  _fb_emit_pop (e);
  LLVMBasicBlockRef last = LLVMGetInsertBlock (e->b);
  LLVMValueRef next = LLVMBuildNSWAdd (e->b, loop->iv, _fb_emit_i64 (e, 1), "");
  LLVMBuildBr (e->b, loop->header);
  LLVMAddIncoming (loop->iv, &next, &last, 1);
  LLVMPositionBuilderAtEnd (e->b, loop->exit);
}

static LLVMValueRef
undef_of (FbEmitter *e, FbElemType t)
{
  return LLVMGetUndef (_fb_emit_reg_type (e, t));
}

static LLVMValueRef
const_of (FbEmitter *e, FbElemType t, double f, int64_t i)
{
  LLVMTypeRef rt = _fb_emit_reg_type (e, t);
  if (is_float (t))
    return LLVMConstReal (rt, f);
  return LLVMConstInt (rt, (unsigned long long) i, TRUE);
}

/* --------------------------------------------------------- elementwise */

static LLVMValueRef
select_nan (FbEmitter *e, LLVMValueRef a, LLVMValueRef b, gboolean is_max)
{
  /* (a >= b || isnan (a)) ? a : b, and <= for minimum. */
  LLVMValueRef c = LLVMBuildFCmp (e->b, is_max ? LLVMRealOGE : LLVMRealOLE, a, b, "");
  LLVMValueRef n = LLVMBuildFCmp (e->b, LLVMRealUNO, a, a, "");
  return LLVMBuildSelect (e->b, LLVMBuildOr (e->b, c, n, ""), a, b, "");
}

static LLVMValueRef
float_unary (FbEmitter *e, const FbInstr *instr, FbElemType t, LLVMValueRef x)
{
  LLVMBuilderRef b = e->b;
  LLVMTypeRef rt = LLVMTypeOf (x);
  gboolean f32 = rt == e->t_f32;
  const char *lib = NULL;
  switch (instr->opcode)
    {
    case FB_OP_ABS: return _fb_emit_intrinsic (e, "llvm.fabs", rt, 1, &x);
    case FB_OP_NEGATE: return LLVMBuildFNeg (b, x, "");
    case FB_OP_SIGN:
      {
        LLVMValueRef one = LLVMConstReal (rt, 1.0);
        LLVMValueRef args[2] = { one, x };
        LLVMValueRef s = _fb_emit_intrinsic (e, "llvm.copysign", rt, 2, args);
        LLVMValueRef z = LLVMBuildFCmp (b, LLVMRealUEQ, x, LLVMConstReal (rt, 0.0), "");  /* zero or NaN */
        return LLVMBuildSelect (b, z, x, s, "");
      }
    case FB_OP_SQRT: return _fb_emit_intrinsic (e, "llvm.sqrt", rt, 1, &x);
    case FB_OP_RSQRT:
      return _fb_emit_fmf (e, LLVMBuildFDiv (b, LLVMConstReal (rt, 1.0),
                                             _fb_emit_intrinsic (e, "llvm.sqrt", rt, 1, &x), ""));
    case FB_OP_FLOOR: return _fb_emit_intrinsic (e, "llvm.floor", rt, 1, &x);
    case FB_OP_CEIL: return _fb_emit_intrinsic (e, "llvm.ceil", rt, 1, &x);
    case FB_OP_ROUND_NEAREST_AFZ: return _fb_emit_intrinsic (e, "llvm.round", rt, 1, &x);
    case FB_OP_ROUND_NEAREST_EVEN: return _fb_emit_intrinsic (e, "llvm.roundeven", rt, 1, &x);
    case FB_OP_EXP: if (f32) return _fb_math_exp_f32 (e, x); lib = "exp"; break;
    case FB_OP_LOG: if (f32) return _fb_math_log_f32 (e, x); lib = "log"; break;
    case FB_OP_TANH: if (f32) return _fb_math_tanh_f32 (e, x); lib = "tanh"; break;
    case FB_OP_ERF: if (f32) return _fb_math_erf_f32 (e, x); lib = "erf"; break;
    case FB_OP_LOGISTIC:
      if (f32)
        return _fb_math_logistic_f32 (e, x);
      {
        LLVMValueRef nx = LLVMBuildFNeg (b, x, "");
        LLVMValueRef ex = _fb_emit_libcall (e, "exp", rt, 1, &nx);
        return LLVMBuildFDiv (b, LLVMConstReal (rt, 1.0), LLVMBuildFAdd (b, LLVMConstReal (rt, 1.0), ex, ""), "");
      }
    case FB_OP_EXPM1: lib = "expm1"; break;
    case FB_OP_LOG1P: lib = "log1p"; break;
    case FB_OP_CBRT: lib = "cbrt"; break;
    case FB_OP_SIN: lib = "sin"; break;
    case FB_OP_COS: lib = "cos"; break;
    case FB_OP_TAN: lib = "tan"; break;
    case FB_OP_ASIN: lib = "asin"; break;
    case FB_OP_ACOS: lib = "acos"; break;
    case FB_OP_ATAN: lib = "atan"; break;
    case FB_OP_SINH: lib = "sinh"; break;
    case FB_OP_COSH: lib = "cosh"; break;
    case FB_OP_ASINH: lib = "asinh"; break;
    case FB_OP_ACOSH: lib = "acosh"; break;
    case FB_OP_ATANH: lib = "atanh"; break;
    default:
      _fb_emit_fail (e, instr, "%s is not supported on %s", fb_opcode_name (instr->opcode), fb_elem_type_name (t));
      return undef_of (e, t);
    }
  g_autofree char *name = f32 ? g_strconcat (lib, "f", NULL) : g_strdup (lib);
  return _fb_emit_libcall (e, name, rt, 1, &x);
}

static LLVMValueRef
int_unary (FbEmitter *e, const FbInstr *instr, FbElemType t, LLVMValueRef x)
{
  LLVMBuilderRef b = e->b;
  LLVMTypeRef rt = LLVMTypeOf (x);
  LLVMValueRef zero = LLVMConstInt (rt, 0, FALSE);
  if (t == FB_PRED)
    {
      if (instr->opcode == FB_OP_NOT)
        return LLVMBuildNot (b, x, "");
      _fb_emit_fail (e, instr, "%s is not defined for pred", fb_opcode_name (instr->opcode));
      return x;
    }
  switch (instr->opcode)
    {
    case FB_OP_NEGATE: return LLVMBuildSub (b, zero, x, "");
    case FB_OP_ABS:
      if (!is_signed (t))
        return x;
      return LLVMBuildSelect (b, LLVMBuildICmp (b, LLVMIntSLT, x, zero, ""), LLVMBuildSub (b, zero, x, ""), x, "");
    case FB_OP_SIGN:
      if (!is_signed (t))
        return LLVMBuildZExt (b, LLVMBuildICmp (b, LLVMIntNE, x, zero, ""), rt, "");
      return LLVMBuildSub (b, LLVMBuildZExt (b, LLVMBuildICmp (b, LLVMIntSGT, x, zero, ""), rt, ""),
                           LLVMBuildZExt (b, LLVMBuildICmp (b, LLVMIntSLT, x, zero, ""), rt, ""), "");
    case FB_OP_NOT: return LLVMBuildNot (b, x, "");
    case FB_OP_POPCNT: return _fb_emit_intrinsic (e, "llvm.ctpop", rt, 1, &x);
    case FB_OP_CLZ:
      {
        LLVMValueRef args[2] = { x, LLVMConstInt (e->t_i1, 0, FALSE) };
        return _fb_emit_intrinsic (e, "llvm.ctlz", rt, 2, args);
      }
    default:
      _fb_emit_fail (e, instr, "%s is not supported on %s", fb_opcode_name (instr->opcode), fb_elem_type_name (t));
      return undef_of (e, t);
    }
}

static LLVMValueRef
float_binary (FbEmitter *e, const FbInstr *instr, FbElemType t, LLVMValueRef x, LLVMValueRef y)
{
  LLVMBuilderRef b = e->b;
  LLVMTypeRef rt = LLVMTypeOf (x);
  const char *lib = NULL;
  switch (instr->opcode)
    {
    case FB_OP_ADD: return _fb_emit_fmf (e, LLVMBuildFAdd (b, x, y, ""));
    case FB_OP_SUBTRACT: return _fb_emit_fmf (e, LLVMBuildFSub (b, x, y, ""));
    case FB_OP_MULTIPLY: return _fb_emit_fmf (e, LLVMBuildFMul (b, x, y, ""));
    case FB_OP_DIVIDE: return _fb_emit_fmf (e, LLVMBuildFDiv (b, x, y, ""));
    case FB_OP_REMAINDER: return LLVMBuildFRem (b, x, y, "");
    case FB_OP_MAXIMUM: return select_nan (e, x, y, TRUE);
    case FB_OP_MINIMUM: return select_nan (e, x, y, FALSE);
    case FB_OP_POWER: lib = "pow"; break;
    case FB_OP_ATAN2: lib = "atan2"; break;
    default:
      _fb_emit_fail (e, instr, "%s is not supported on %s", fb_opcode_name (instr->opcode), fb_elem_type_name (t));
      return undef_of (e, t);
    }
  g_autofree char *name = rt == e->t_f32 ? g_strconcat (lib, "f", NULL) : g_strdup (lib);
  LLVMValueRef args[2] = { x, y };
  return _fb_emit_libcall (e, name, rt, 2, args);
}

static LLVMValueRef
int_binary (FbEmitter *e, const FbInstr *instr, FbElemType t, LLVMValueRef x, LLVMValueRef y)
{
  LLVMBuilderRef b = e->b;
  LLVMTypeRef rt = LLVMTypeOf (x);
  int bits = (int) LLVMGetIntTypeWidth (rt);
  gboolean sgn = is_signed (t);
  LLVMValueRef zero = LLVMConstInt (rt, 0, FALSE), one = LLVMConstInt (rt, 1, FALSE);
  LLVMValueRef ones = LLVMConstAllOnes (rt);
  FbOpcode op = instr->opcode;

  if (t == FB_PRED)
    {
      switch (op)
        {
        case FB_OP_AND: case FB_OP_MULTIPLY: case FB_OP_MINIMUM: return LLVMBuildAnd (b, x, y, "");
        case FB_OP_OR: case FB_OP_ADD: case FB_OP_MAXIMUM: return LLVMBuildOr (b, x, y, "");
        case FB_OP_XOR: return LLVMBuildXor (b, x, y, "");
        default:
          _fb_emit_fail (e, instr, "%s is not defined for pred", fb_opcode_name (op));
          return x;
        }
    }
  switch (op)
    {
    case FB_OP_ADD: return LLVMBuildAdd (b, x, y, "");
    case FB_OP_SUBTRACT: return LLVMBuildSub (b, x, y, "");
    case FB_OP_MULTIPLY: return LLVMBuildMul (b, x, y, "");
    case FB_OP_AND: return LLVMBuildAnd (b, x, y, "");
    case FB_OP_OR: return LLVMBuildOr (b, x, y, "");
    case FB_OP_XOR: return LLVMBuildXor (b, x, y, "");
    case FB_OP_MAXIMUM:
      return LLVMBuildSelect (b, LLVMBuildICmp (b, sgn ? LLVMIntSGE : LLVMIntUGE, x, y, ""), x, y, "");
    case FB_OP_MINIMUM:
      return LLVMBuildSelect (b, LLVMBuildICmp (b, sgn ? LLVMIntSLE : LLVMIntULE, x, y, ""), x, y, "");
    case FB_OP_DIVIDE:
    case FB_OP_REMAINDER:
      {
        LLVMValueRef yz = LLVMBuildICmp (b, LLVMIntEQ, y, zero, "");
        LLVMValueRef ovf = LLVMConstInt (e->t_i1, 0, FALSE);
        if (sgn)
          {
            LLVMValueRef smin = LLVMConstInt (rt, 1ull << (bits - 1), FALSE);
            ovf = LLVMBuildAnd (b, LLVMBuildICmp (b, LLVMIntEQ, x, smin, ""),
                                LLVMBuildICmp (b, LLVMIntEQ, y, ones, ""), "");
          }
        LLVMValueRef safe = LLVMBuildSelect (b, LLVMBuildOr (b, yz, ovf, ""), one, y, "");
        if (op == FB_OP_DIVIDE)
          {
            LLVMValueRef q = sgn ? LLVMBuildSDiv (b, x, safe, "") : LLVMBuildUDiv (b, x, safe, "");
            q = LLVMBuildSelect (b, ovf, x, q, "");
            return LLVMBuildSelect (b, yz, ones, q, "");
          }
        LLVMValueRef r = sgn ? LLVMBuildSRem (b, x, safe, "") : LLVMBuildURem (b, x, safe, "");
        r = LLVMBuildSelect (b, ovf, zero, r, "");
        return LLVMBuildSelect (b, yz, x, r, "");
      }
    case FB_OP_SHIFT_LEFT:
    case FB_OP_SHIFT_RIGHT_LOGICAL:
    case FB_OP_SHIFT_RIGHT_ARITHMETIC:
      {
        LLVMValueRef big = LLVMBuildICmp (b, LLVMIntUGE, y, LLVMConstInt (rt, (unsigned long long) bits, FALSE), "");
        LLVMValueRef amt = LLVMBuildSelect (b, big, zero, y, "");
        if (op == FB_OP_SHIFT_LEFT)
          return LLVMBuildSelect (b, big, zero, LLVMBuildShl (b, x, amt, ""), "");
        if (op == FB_OP_SHIFT_RIGHT_LOGICAL)
          return LLVMBuildSelect (b, big, zero, LLVMBuildLShr (b, x, amt, ""), "");
        LLVMValueRef fill = LLVMBuildAShr (b, x, LLVMConstInt (rt, (unsigned long long) bits - 1, FALSE), "");
        return LLVMBuildSelect (b, big, fill, LLVMBuildAShr (b, x, amt, ""), "");
      }
    case FB_OP_POWER:
      {
        LLVMValueRef acc = one, base = x, ex = y;
        for (int i = 0; i < 6; i++)
          {
            LLVMValueRef bit = LLVMBuildTrunc (b, ex, e->t_i1, "");
            acc = LLVMBuildSelect (b, bit, LLVMBuildMul (b, acc, base, ""), acc, "");
            base = LLVMBuildMul (b, base, base, "");
            ex = LLVMBuildLShr (b, ex, one, "");
          }
        LLVMValueRef neg = LLVMBuildICmp (b, LLVMIntSLT, y, zero, "");
        LLVMValueRef neg_r = LLVMBuildZExt (b, LLVMBuildICmp (b, LLVMIntEQ, x, one, ""), rt, "");
        return LLVMBuildSelect (b, neg, neg_r, acc, "");
      }
    case FB_OP_MULHI:
      {
        LLVMTypeRef wt = LLVMIntTypeInContext (e->ctx, (unsigned) bits * 2);
        LLVMValueRef wx = sgn ? LLVMBuildSExt (b, x, wt, "") : LLVMBuildZExt (b, x, wt, "");
        LLVMValueRef wy = sgn ? LLVMBuildSExt (b, y, wt, "") : LLVMBuildZExt (b, y, wt, "");
        LLVMValueRef p = LLVMBuildMul (b, wx, wy, "");
        p = LLVMBuildLShr (b, p, LLVMConstInt (wt, (unsigned long long) bits, FALSE), "");
        return LLVMBuildTrunc (b, p, rt, "");
      }
    default:
      _fb_emit_fail (e, instr, "%s is not supported on %s", fb_opcode_name (op), fb_elem_type_name (t));
      return undef_of (e, t);
    }
}

static LLVMValueRef
emit_compare (FbEmitter *e, const FbInstr *instr, FbElemType t, LLVMValueRef x, LLVMValueRef y)
{
  static const char *const names[] = { "EQ", "NE", "LT", "LE", "GT", "GE" };
  const char *dir = fb_instr_str (instr, FB_A_DIRECTION);
  const char *type = fb_instr_str (instr, FB_A_COMPARE_TYPE);
  int d = -1;
  for (int i = 0; dir != NULL && i < 6; i++)
    if (g_ascii_strcasecmp (dir, names[i]) == 0)
      d = i;
  if (d < 0)
    {
      _fb_emit_fail (e, instr, "compare needs direction=EQ, NE, LT, LE, GT or GE");
      return LLVMConstInt (e->t_i1, 0, FALSE);
    }
  if (is_float (t) && type != NULL && g_ascii_strcasecmp (type, "TOTALORDER") == 0)
    {
      /* Order the bits: negative values flip their magnitude bits. */
      LLVMTypeRef it = LLVMIntTypeInContext (e->ctx, (unsigned) fb_elem_type_bits (t));
      LLVMValueRef k[2];
      LLVMValueRef v[2] = { x, y };
      for (int i = 0; i < 2; i++)
        {
          LLVMValueRef bits;
          if (t == FB_F16)
            bits = LLVMBuildBitCast (e->b, LLVMBuildFPTrunc (e->b, v[i], e->t_f16, ""), it, "");
          else if (t == FB_BF16)
            bits = f32_to_bf16_bits (e, v[i]);
          else
            bits = LLVMBuildBitCast (e->b, v[i], it, "");
          LLVMValueRef neg = LLVMBuildICmp (e->b, LLVMIntSLT, bits, LLVMConstInt (it, 0, FALSE), "");
          LLVMValueRef flip = LLVMBuildXor (e->b, bits, LLVMBuildLShr (e->b, LLVMConstAllOnes (it),
                                                                       LLVMConstInt (it, 1, FALSE), ""), "");
          k[i] = LLVMBuildSelect (e->b, neg, flip, bits, "");
        }
      static const LLVMIntPredicate sp[] = { LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE };
      return LLVMBuildICmp (e->b, sp[d], k[0], k[1], "");
    }
  if (is_float (t))
    {
      static const LLVMRealPredicate fp[] = { LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE };
      return LLVMBuildFCmp (e->b, fp[d], x, y, "");
    }
  gboolean sgn = is_signed (t);
  if (type != NULL && g_ascii_strcasecmp (type, "UNSIGNED") == 0)
    sgn = FALSE;
  else if (type != NULL && g_ascii_strcasecmp (type, "SIGNED") == 0 && t != FB_PRED)
    sgn = TRUE;
  static const LLVMIntPredicate sp[] = { LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE };
  static const LLVMIntPredicate up[] = { LLVMIntEQ, LLVMIntNE, LLVMIntULT, LLVMIntULE, LLVMIntUGT, LLVMIntUGE };
  return LLVMBuildICmp (e->b, sgn ? sp[d] : up[d], x, y, "");
}

static LLVMValueRef
emit_convert (FbEmitter *e, FbElemType st, FbElemType dt, LLVMValueRef x)
{
  LLVMBuilderRef b = e->b;
  LLVMTypeRef rt = _fb_emit_reg_type (e, dt);
  if (st == dt)
    return x;
  if (is_float (st))
    {
      if (is_float (dt))
        {
          LLVMTypeRef xt = LLVMTypeOf (x);
          if (xt != rt)
            x = xt == e->t_f64 ? LLVMBuildFPTrunc (b, x, rt, "") : LLVMBuildFPExt (b, x, rt, "");
          return round_to (e, dt, x);
        }
      if (dt == FB_PRED)
        return LLVMBuildFCmp (b, LLVMRealUNE, x, LLVMConstReal (LLVMTypeOf (x), 0.0), "");
      LLVMTypeRef tys[2] = { rt, LLVMTypeOf (x) };
      const char *name = is_signed (dt) ? "llvm.fptosi.sat" : "llvm.fptoui.sat";
      unsigned id = LLVMLookupIntrinsicID (name, strlen (name));
      LLVMValueRef f = LLVMGetIntrinsicDeclaration (e->mod, id, tys, 2);
      LLVMTypeRef ft = LLVMIntrinsicGetType (e->ctx, id, tys, 2);
      return LLVMBuildCall2 (b, ft, f, &x, 1, "");
    }
  /* pred or integer source */
  if (is_float (dt))
    {
      LLVMValueRef v = is_signed (st) ? LLVMBuildSIToFP (b, x, rt, "") : LLVMBuildUIToFP (b, x, rt, "");
      return round_to (e, dt, v);
    }
  if (dt == FB_PRED)
    return LLVMBuildICmp (b, LLVMIntNE, x, LLVMConstInt (LLVMTypeOf (x), 0, FALSE), "");
  unsigned sw = LLVMGetIntTypeWidth (LLVMTypeOf (x)), dw = LLVMGetIntTypeWidth (rt);
  if (sw == dw)
    return x;
  if (sw > dw)
    return LLVMBuildTrunc (b, x, rt, "");
  return is_signed (st) ? LLVMBuildSExt (b, x, rt, "") : LLVMBuildZExt (b, x, rt, "");
}

static LLVMValueRef
emit_bitcast_convert (FbEmitter *e, FbElemType st, FbElemType dt, LLVMValueRef x)
{
  unsigned bits = (unsigned) fb_elem_type_bits (st);
  LLVMTypeRef it = LLVMIntTypeInContext (e->ctx, bits);
  LLVMValueRef raw;
  if (st == FB_F16)
    raw = LLVMBuildBitCast (e->b, LLVMBuildFPTrunc (e->b, x, e->t_f16, ""), it, "");
  else if (st == FB_BF16)
    raw = f32_to_bf16_bits (e, x);
  else if (is_float (st))
    raw = LLVMBuildBitCast (e->b, x, it, "");
  else
    raw = x;
  if (dt == FB_F16)
    return LLVMBuildFPExt (e->b, LLVMBuildBitCast (e->b, raw, e->t_f16, ""), e->t_f32, "");
  if (dt == FB_BF16)
    return bf16_bits_to_f32 (e, raw);
  if (is_float (dt))
    return LLVMBuildBitCast (e->b, raw, _fb_emit_reg_type (e, dt), "");
  return raw;
}

/* ------------------------------------------------------------ operands */

LLVMValueRef
_fb_emit_operand (FbEmitter *e, const FbInstr *instr, int k, FbIndex *idx)
{
  const FbInstr *op = instr->operands[k];
  if (instr == e->top)
    {
      if (k >= e->n_params)
        {
          _fb_emit_fail (e, instr, "operand %d has no buffer", k);
          return undef_of (e, op->shape->type);
        }
      LLVMValueRef v = memo_find (e, op, idx);
      if (v != NULL)
        return v;
      v = _fb_emit_load (e, op->shape->type, e->params[k], _fb_index_linear (e, idx));
      memo_add (e, op, idx, v);
      return v;
    }
  return _fb_emit_value (e, op, idx);
}

/* The value of a scalar operand (rank 0). */
static LLVMValueRef
operand_scalar (FbEmitter *e, const FbInstr *instr, int k)
{
  FbIndex idx;
  _fb_index_scalar (&idx);
  return _fb_emit_operand (e, instr, k, &idx);
}

/* Operand @k of an elementwise op at the op's index; rank-0 operands broadcast. */
static LLVMValueRef
elementwise_operand (FbEmitter *e, const FbInstr *instr, int k, FbIndex *idx)
{
  if (instr->operands[k]->shape->rank == 0 && idx->rank != 0)
    return operand_scalar (e, instr, k);
  FbIndex oi = *idx;
  oi.dims = instr->operands[k]->shape->dims;
  LLVMValueRef v = _fb_emit_operand (e, instr, k, &oi);
  /* keep what the operand computed of the shared index */
  if (idx->linear == NULL)
    idx->linear = oi.linear;
  for (int d = 0; d < idx->rank; d++)
    if (idx->v[d] == NULL)
      idx->v[d] = oi.v[d];
  return v;
}

static LLVMValueRef
clamp_i64 (FbEmitter *e, LLVMValueRef v, int64_t lo, int64_t hi)
{
  LLVMValueRef l = _fb_emit_i64 (e, lo), h = _fb_emit_i64 (e, hi);
  v = LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, LLVMIntSLT, v, l, ""), l, v, "");
  return LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, LLVMIntSGT, v, h, ""), h, v, "");
}

/* Start index @i of a dynamic-(update-)slice, clamped so that @size fits in @dim. */
static LLVMValueRef
dynamic_start (FbEmitter *e, const FbInstr *instr, int first, int i, int64_t dim, int64_t size)
{
  int rank = instr->operands[0]->shape->rank;
  int n_idx = instr->n_operands - first;
  gboolean vector = n_idx == 1 && rank != 1 && instr->operands[first]->shape->rank == 1;
  const FbInstr *s = instr->operands[vector ? first : first + i];
  LLVMValueRef v;
  if (vector)
    {
      FbIndex vi;
      _fb_index_init (&vi, s->shape);
      vi.v[0] = _fb_emit_i64 (e, i);
      v = _fb_emit_operand (e, instr, first, &vi);
    }
  else
    v = operand_scalar (e, instr, first + i);
  FbElemType t = s->shape->type;
  unsigned w = LLVMGetIntTypeWidth (LLVMTypeOf (v));
  if (w < 64)
    v = is_signed (t) ? LLVMBuildSExt (e->b, v, e->t_i64, "") : LLVMBuildZExt (e->b, v, e->t_i64, "");
  else if (!is_signed (t))   /* u64 above INT64_MAX clamps to the top */
    v = LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, LLVMIntSLT, v, _fb_emit_i64 (e, 0), ""),
                         _fb_emit_i64 (e, G_MAXINT64), v, "");
  return clamp_i64 (e, v, 0, dim - size);
}

/* -------------------------------------------------------- constants */

static LLVMValueRef
emit_constant (FbEmitter *e, const FbInstr *instr, FbIndex *idx)
{
  FbElemType t = instr->shape->type;
  const FbLiteral *lit = instr->literal;
  if (lit == NULL || lit->data == NULL)
    {
      _fb_emit_fail (e, instr, "constant without a literal");
      return undef_of (e, t);
    }
  int64_t n = fb_shape_elements (instr->shape);
  if (n == 1)
    {
      if (is_float (t))
        return const_of (e, t, fb_literal_get_f64 (lit, 0), 0);
      return const_of (e, t, 0, fb_literal_get_s64 (lit, 0));
    }
  /* A global array of the storage type, loaded at the linear index. */
  gsize bytes = (gsize) n * fb_elem_type_bytes (t);
  LLVMValueRef init = LLVMConstStringInContext (e->ctx, (const char *) lit->data, (unsigned) bytes, TRUE);
  g_autofree char *name = g_strdup_printf ("fb_const_%d", e->n_consts++);
  LLVMValueRef g = LLVMAddGlobal (e->mod, LLVMTypeOf (init), name);
  LLVMSetInitializer (g, init);
  LLVMSetGlobalConstant (g, TRUE);
  LLVMSetLinkage (g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress (g, LLVMGlobalUnnamedAddr);
  LLVMSetAlignment (g, 64);
  return _fb_emit_load (e, t, g, _fb_index_linear (e, idx));
}

/* ---------------------------------------------------------- reduce */

int
_fb_emit_call_scalar (FbEmitter *e, FbComputation *comp, int n_args, LLVMValueRef *args,
                      LLVMValueRef *out, int max_out)
{
  if (comp == NULL || comp->n_params != n_args || comp->root == NULL)
    {
      _fb_emit_fail (e, comp != NULL ? comp->root : NULL, "the called computation does not take %d scalars", n_args);
      return 0;
    }
  _fb_emit_push (e);
  for (int i = 0; i < n_args; i++)
    g_hash_table_insert (e->bindings, comp->params[i], args[i]);
  const FbInstr *root = comp->root;
  int n = 0;
  FbIndex idx;
  _fb_index_scalar (&idx);
  if (root->opcode == FB_OP_TUPLE)
    for (int i = 0; i < root->n_operands && n < max_out; i++)
      out[n++] = _fb_emit_value (e, root->operands[i], &idx);
  else if (max_out > 0)
    out[n++] = _fb_emit_value (e, root, &idx);
  for (int i = 0; i < n_args; i++)
    g_hash_table_remove (e->bindings, comp->params[i]);
  _fb_emit_pop (e);
  return n;
}

static gboolean
in_dims (const FbDims *d, int k)
{
  for (int i = 0; d != NULL && i < d->n; i++)
    if (d->v[i] == k)
      return TRUE;
  return FALSE;
}

void
_fb_emit_reduce (FbEmitter *e, const FbInstr *reduce, FbIndex *index, LLVMValueRef *out)
{
  int n = reduce->n_operands / 2;
  const FbShape *in = reduce->operands[0]->shape;
  const FbDims *dims = fb_instr_dims (reduce, FB_A_DIMENSIONS);
  FbComputation *fn = fb_instr_comp (reduce, FB_A_TO_APPLY);
  LLVMValueRef accs[FB_EMIT_MAX_RANK], cur[2 * FB_EMIT_MAX_RANK];
  FbElemType types[FB_EMIT_MAX_RANK];

  if (n < 1 || n > FB_EMIT_MAX_RANK)
    {
      _fb_emit_fail (e, reduce, "reduce with %d inputs", n);
      return;
    }
  for (int j = 0; j < n; j++)
    {
      types[j] = reduce->operands[j]->shape->type;
      accs[j] = _fb_emit_alloca (e, _fb_emit_reg_type (e, types[j]), "acc");
      LLVMBuildStore (e->b, operand_scalar (e, reduce, n + j), accs[j]);
    }

  /* Kept dims come from @index in order; reduced dims from loops. */
  FbIndex ii;
  _fb_index_init (&ii, in);
  int k = 0;
  for (int d = 0; d < in->rank; d++)
    if (!in_dims (dims, d))
      ii.v[d] = _fb_index_dim (e, index, k++);

  FbLoop loops[FB_EMIT_MAX_RANK];
  int n_loops = 0;
  for (int d = 0; d < in->rank; d++)
    if (in_dims (dims, d))
      {
        _fb_emit_loop_begin (e, &loops[n_loops], "red", _fb_emit_i64 (e, 0), _fb_emit_i64 (e, in->dims[d]));
        ii.v[d] = loops[n_loops].iv;
        n_loops++;
      }
  gboolean saved = e->reassoc;
  e->reassoc = TRUE;
  for (int j = 0; j < n; j++)
    {
      cur[j] = LLVMBuildLoad2 (e->b, _fb_emit_reg_type (e, types[j]), accs[j], "");
      FbIndex oi = ii;
      cur[n + j] = _fb_emit_operand (e, reduce, j, &oi);
      if (j == 0)
        ii.linear = oi.linear;
    }
  LLVMValueRef res[FB_EMIT_MAX_RANK];
  int got = _fb_emit_call_scalar (e, fn, 2 * n, cur, res, n);
  e->reassoc = saved;
  if (got != n)
    _fb_emit_fail (e, reduce, "the reducer returns %d values, not %d", got, n);
  for (int j = 0; j < got; j++)
    LLVMBuildStore (e->b, res[j], accs[j]);
  while (n_loops > 0)
    _fb_emit_loop_end (e, &loops[--n_loops]);
  for (int j = 0; j < n; j++)
    out[j] = LLVMBuildLoad2 (e->b, _fb_emit_reg_type (e, types[j]), accs[j], "");
}

/* ------------------------------------------------------------ dispatch */

static LLVMValueRef
emit_movement (FbEmitter *e, const FbInstr *instr, FbIndex *idx)
{
  const FbShape *os = instr->shape;
  const FbShape *in = instr->n_operands > 0 ? instr->operands[0]->shape : NULL;
  FbIndex oi;
  if (in != NULL)
    _fb_index_init (&oi, in);

  switch (instr->opcode)
    {
    case FB_OP_COPY:
      oi = *idx;
      oi.dims = in->dims;
      return _fb_emit_operand (e, instr, 0, &oi);
    case FB_OP_RESHAPE:
    case FB_OP_BITCAST:
      if (in->rank == os->rank && memcmp (in->dims, os->dims, sizeof (int64_t) * os->rank) == 0)
        oi = *idx, oi.dims = in->dims;
      else
        oi.linear = _fb_index_linear (e, idx);
      return _fb_emit_operand (e, instr, 0, &oi);
    case FB_OP_BROADCAST:
      {
        const FbDims *d = fb_instr_dims (instr, FB_A_DIMENSIONS);
        for (int i = 0; i < in->rank; i++)
          oi.v[i] = in->dims[i] == 1 ? _fb_emit_i64 (e, 0) : _fb_index_dim (e, idx, (int) d->v[i]);
        return _fb_emit_operand (e, instr, 0, &oi);
      }
    case FB_OP_TRANSPOSE:
      {
        const FbDims *p = fb_instr_dims (instr, FB_A_DIMENSIONS);
        for (int j = 0; j < os->rank; j++)
          oi.v[p->v[j]] = _fb_index_dim (e, idx, j);
        return _fb_emit_operand (e, instr, 0, &oi);
      }
    case FB_OP_REVERSE:
      {
        const FbDims *r = fb_instr_dims (instr, FB_A_DIMENSIONS);
        for (int j = 0; j < os->rank; j++)
          {
            LLVMValueRef v = _fb_index_dim (e, idx, j);
            oi.v[j] = in_dims (r, j) ? LLVMBuildSub (e->b, _fb_emit_i64 (e, os->dims[j] - 1), v, "") : v;
          }
        return _fb_emit_operand (e, instr, 0, &oi);
      }
    case FB_OP_SLICE:
      {
        const FbAttr *a = fb_instr_get_attr (instr, FB_A_SLICE);
        for (int j = 0; j < os->rank; j++)
          {
            const FbSliceDim *s = &a->v.slice.d[j];
            LLVMValueRef v = _fb_index_dim (e, idx, j);
            if (s->stride > 1)
              v = LLVMBuildNUWMul (e->b, v, _fb_emit_i64 (e, s->stride), "");
            if (s->start != 0)
              v = LLVMBuildNUWAdd (e->b, v, _fb_emit_i64 (e, s->start), "");
            oi.v[j] = v;
          }
        return _fb_emit_operand (e, instr, 0, &oi);
      }
    case FB_OP_PAD:
      {
        const FbAttr *a = fb_instr_get_attr (instr, FB_A_PADDING);
        LLVMValueRef inside = LLVMConstInt (e->t_i1, 1, FALSE);
        for (int j = 0; j < os->rank; j++)
          {
            const FbPadDim *p = &a->v.pad.d[j];
            LLVMValueRef v = LLVMBuildSub (e->b, _fb_index_dim (e, idx, j), _fb_emit_i64 (e, p->lo), "");
            LLVMValueRef ok = LLVMBuildICmp (e->b, LLVMIntSGE, v, _fb_emit_i64 (e, 0), "");
            if (p->interior > 0)
              {
                LLVMValueRef step = _fb_emit_i64 (e, p->interior + 1);
                LLVMValueRef sv = LLVMBuildSelect (e->b, ok, v, _fb_emit_i64 (e, 0), "");
                ok = LLVMBuildAnd (e->b, ok, LLVMBuildICmp (e->b, LLVMIntEQ, LLVMBuildURem (e->b, sv, step, ""),
                                                            _fb_emit_i64 (e, 0), ""), "");
                v = LLVMBuildUDiv (e->b, sv, step, "");
              }
            ok = LLVMBuildAnd (e->b, ok, LLVMBuildICmp (e->b, LLVMIntSLT, v, _fb_emit_i64 (e, in->dims[j]), ""), "");
            inside = LLVMBuildAnd (e->b, inside, ok, "");
            oi.v[j] = clamp_i64 (e, v, 0, MAX (in->dims[j] - 1, 0));
          }
        LLVMValueRef pv = operand_scalar (e, instr, 1);
        if (fb_shape_elements (in) == 0)
          return pv;
        LLVMValueRef x = _fb_emit_operand (e, instr, 0, &oi);
        return LLVMBuildSelect (e->b, inside, x, pv, "");
      }
    case FB_OP_CONCATENATE:
      {
        int64_t d = fb_instr_dims (instr, FB_A_DIMENSIONS)->v[0];
        LLVMValueRef pos = _fb_index_dim (e, idx, (int) d);
        LLVMValueRef result = NULL;
        int64_t at = 0;
        for (int k = 0; k < instr->n_operands; k++)
          {
            const FbShape *ks = instr->operands[k]->shape;
            if (ks->dims[d] == 0)
              continue;
            FbIndex ki;
            _fb_index_init (&ki, ks);
            for (int j = 0; j < os->rank; j++)
              ki.v[j] = _fb_index_dim (e, idx, j);
            ki.v[d] = clamp_i64 (e, LLVMBuildSub (e->b, pos, _fb_emit_i64 (e, at), ""), 0, ks->dims[d] - 1);
            LLVMValueRef v = _fb_emit_operand (e, instr, k, &ki);
            if (result == NULL)
              result = v;
            else
              result = LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, LLVMIntSGE, pos, _fb_emit_i64 (e, at), ""),
                                        v, result, "");
            at += ks->dims[d];
          }
        return result != NULL ? result : undef_of (e, os->type);
      }
    case FB_OP_DYNAMIC_SLICE:
      for (int j = 0; j < os->rank; j++)
        oi.v[j] = LLVMBuildNUWAdd (e->b, _fb_index_dim (e, idx, j),
                                   dynamic_start (e, instr, 1, j, in->dims[j], os->dims[j]), "");
      return _fb_emit_operand (e, instr, 0, &oi);
    case FB_OP_DYNAMIC_UPDATE_SLICE:
      {
        const FbShape *us = instr->operands[1]->shape;
        FbIndex ui;
        _fb_index_init (&ui, us);
        LLVMValueRef inside = LLVMConstInt (e->t_i1, 1, FALSE);
        for (int j = 0; j < os->rank; j++)
          {
            LLVMValueRef v = _fb_index_dim (e, idx, j);
            LLVMValueRef u = LLVMBuildSub (e->b, v, dynamic_start (e, instr, 2, j, in->dims[j], us->dims[j]), "");
            inside = LLVMBuildAnd (e->b, inside, LLVMBuildICmp (e->b, LLVMIntSGE, u, _fb_emit_i64 (e, 0), ""), "");
            inside = LLVMBuildAnd (e->b, inside,
                                   LLVMBuildICmp (e->b, LLVMIntSLT, u, _fb_emit_i64 (e, us->dims[j]), ""), "");
            ui.v[j] = clamp_i64 (e, u, 0, MAX (us->dims[j] - 1, 0));
          }
        oi = *idx;
        oi.dims = in->dims;
        LLVMValueRef base = _fb_emit_operand (e, instr, 0, &oi);
        if (fb_shape_elements (us) == 0)
          return base;
        LLVMValueRef upd = _fb_emit_operand (e, instr, 1, &ui);
        return LLVMBuildSelect (e->b, inside, upd, base, "");
      }
    case FB_OP_IOTA:
      {
        int64_t d = fb_instr_int (instr, FB_A_IOTA_DIMENSION, 0);
        LLVMValueRef v = _fb_index_dim (e, idx, (int) d);
        return emit_convert (e, FB_S64, os->type, v);
      }
    default:
      _fb_emit_fail (e, instr, "%s cannot be generated", fb_opcode_name (instr->opcode));
      return undef_of (e, os->type);
    }
}

static LLVMValueRef
emit_uncached (FbEmitter *e, const FbInstr *instr, FbIndex *idx)
{
  FbElemType t = instr->shape->type;
  FbOpcode op = instr->opcode;

  switch (op)
    {
    case FB_OP_PARAMETER:
      {
        int64_t p = instr->parameter_number;
        if (p < 0 || p >= e->n_params)
          {
            _fb_emit_fail (e, instr, "parameter %" G_GINT64_FORMAT " has no buffer", p);
            return undef_of (e, t);
          }
        return _fb_emit_load (e, t, e->params[p], _fb_index_linear (e, idx));
      }
    case FB_OP_CONSTANT:
      return emit_constant (e, instr, idx);
    case FB_OP_GET_TUPLE_ELEMENT:
      {
        const FbInstr *src = instr->operands[0];
        int64_t k = fb_instr_int (instr, FB_A_INDEX, 0);
        if (src->opcode == FB_OP_REDUCE && k >= 0 && k < src->n_operands / 2)
          {
            LLVMValueRef vals[FB_EMIT_MAX_RANK];
            _fb_emit_reduce (e, src, idx, vals);
            return vals[k];
          }
        _fb_emit_fail (e, instr, "get-tuple-element of %s cannot be generated", fb_opcode_name (src->opcode));
        return undef_of (e, t);
      }
    case FB_OP_REDUCE:
      {
        LLVMValueRef vals[FB_EMIT_MAX_RANK];
        if (instr->n_operands != 2)
          {
            _fb_emit_fail (e, instr, "a variadic reduce has a tuple value");
            return undef_of (e, t);
          }
        _fb_emit_reduce (e, instr, idx, vals);
        return vals[0];
      }
    case FB_OP_COMPARE:
      {
        FbElemType it = instr->operands[0]->shape->type;
        LLVMValueRef x = elementwise_operand (e, instr, 0, idx);
        LLVMValueRef y = elementwise_operand (e, instr, 1, idx);
        return emit_compare (e, instr, it, x, y);
      }
    case FB_OP_SELECT:
      {
        LLVMValueRef c = elementwise_operand (e, instr, 0, idx);
        LLVMValueRef x = elementwise_operand (e, instr, 1, idx);
        LLVMValueRef y = elementwise_operand (e, instr, 2, idx);
        return LLVMBuildSelect (e->b, c, x, y, "");
      }
    case FB_OP_CLAMP:
      {
        LLVMValueRef lo = elementwise_operand (e, instr, 0, idx);
        LLVMValueRef x = elementwise_operand (e, instr, 1, idx);
        LLVMValueRef hi = elementwise_operand (e, instr, 2, idx);
        if (is_float (t))
          return select_nan (e, hi, select_nan (e, lo, x, TRUE), FALSE);
        gboolean sgn = is_signed (t);
        LLVMValueRef m = LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, sgn ? LLVMIntSGE : LLVMIntUGE, lo, x, ""),
                                          lo, x, "");
        return LLVMBuildSelect (e->b, LLVMBuildICmp (e->b, sgn ? LLVMIntSLE : LLVMIntULE, hi, m, ""), hi, m, "");
      }
    case FB_OP_CONVERT:
      return emit_convert (e, instr->operands[0]->shape->type, t, elementwise_operand (e, instr, 0, idx));
    case FB_OP_BITCAST_CONVERT:
      return emit_bitcast_convert (e, instr->operands[0]->shape->type, t, elementwise_operand (e, instr, 0, idx));
    case FB_OP_IS_FINITE:
      {
        LLVMValueRef x = elementwise_operand (e, instr, 0, idx);
        LLVMTypeRef rt = LLVMTypeOf (x);
        LLVMValueRef a = _fb_emit_intrinsic (e, "llvm.fabs", rt, 1, &x);
        return LLVMBuildFCmp (e->b, LLVMRealOLT, a, LLVMConstReal (rt, G_MAXDOUBLE * 2.0), "");
      }
    default:
      break;
    }

  FbOpCategory cat = fb_opcode_category (op);
  if (cat == FB_CAT_UNARY && instr->n_operands == 1)
    {
      LLVMValueRef x = elementwise_operand (e, instr, 0, idx);
      if (is_float (t))
        return round_to (e, t, float_unary (e, instr, t, x));
      return int_unary (e, instr, t, x);
    }
  if (cat == FB_CAT_BINARY && instr->n_operands == 2)
    {
      LLVMValueRef x = elementwise_operand (e, instr, 0, idx);
      LLVMValueRef y = elementwise_operand (e, instr, 1, idx);
      if (is_float (t))
        return round_to (e, t, float_binary (e, instr, t, x, y));
      return int_binary (e, instr, t, x, y);
    }
  return emit_movement (e, instr, idx);
}

LLVMValueRef
_fb_emit_value (FbEmitter *e, const FbInstr *instr, FbIndex *index)
{
  LLVMValueRef bound = g_hash_table_lookup (e->bindings, instr);
  if (bound != NULL)
    return bound;
  if (instr->shape->rank > FB_EMIT_MAX_RANK || !fb_shape_is_array (instr->shape))
    {
      _fb_emit_fail (e, instr, "cannot generate a value of shape rank %d", instr->shape->rank);
      return LLVMGetUndef (e->t_i32);
    }
  if (e->error != NULL)
    return undef_of (e, instr->shape->type);
  FbIndex idx = *index;
  idx.rank = instr->shape->rank;
  idx.dims = instr->shape->dims;
  LLVMValueRef v = memo_find (e, instr, &idx);
  if (v != NULL)
    return v;
  v = emit_uncached (e, instr, &idx);
  memo_add (e, instr, &idx, v);
  /* hand back index parts computed on the way */
  if (index->linear == NULL)
    index->linear = idx.linear;
  for (int d = 0; d < index->rank && d < idx.rank; d++)
    if (index->v[d] == NULL)
      index->v[d] = idx.v[d];
  return v;
}

/* -------------------------------------------------------- capabilities */

static gboolean
shape_ok (const FbShape *s, GString *why, const FbInstr *instr)
{
  if (!fb_shape_is_array (s) || !_fb_emit_type_ok (s->type))
    {
      if (why)
        g_string_append_printf (why, "%%%s has type %s, which loop kernels do not handle", instr->name,
                                fb_elem_type_name (s->type));
      return FALSE;
    }
  if (s->rank > FB_EMIT_MAX_RANK || s->dyn != NULL)
    {
      if (why)
        g_string_append_printf (why, "%%%s has a rank above %d or dynamic dimensions", instr->name, FB_EMIT_MAX_RANK);
      return FALSE;
    }
  return TRUE;
}

static gboolean
reducer_ok (FbComputation *comp, int n, GString *why)
{
  if (comp == NULL || comp->n_params != 2 * n || comp->root == NULL)
    {
      if (why)
        g_string_append (why, "the reducer is not a computation of matching arity");
      return FALSE;
    }
  for (FbInstr *i = comp->first; i != NULL; i = i->next)
    {
      if (i->opcode == FB_OP_PARAMETER)
        continue;
      if (i == comp->root && i->opcode == FB_OP_TUPLE && n > 1)
        continue;
      if (i->shape->rank != 0 || !_fb_emit_supports (i, TRUE, why))
        {
          if (why && why->len == 0)
            g_string_append_printf (why, "the reducer uses %s", fb_opcode_name (i->opcode));
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
_fb_emit_supports (const FbInstr *instr, gboolean in_fusion, GString *why)
{
  FbOpcode op = instr->opcode;
  if (op == FB_OP_PARAMETER)
    return in_fusion ? shape_ok (instr->shape, why, instr) : FALSE;
  if (op == FB_OP_GET_TUPLE_ELEMENT)
    {
      if (in_fusion && instr->operands[0]->opcode == FB_OP_REDUCE && shape_ok (instr->shape, why, instr))
        return TRUE;
      if (why)
        g_string_append_printf (why, "%%%s: get-tuple-element is generated only of a variadic reduce", instr->name);
      return FALSE;
    }
  if (op == FB_OP_REDUCE)
    {
      int n = instr->n_operands / 2;
      if (n < 1 || n > FB_EMIT_MAX_RANK || instr->n_operands != 2 * n)
        return FALSE;
      if (n > 1 && !in_fusion && !fb_shape_is_tuple (instr->shape))
        return FALSE;
      for (int j = 0; j < instr->n_operands; j++)
        if (!shape_ok (instr->operands[j]->shape, why, instr))
          return FALSE;
      if (fb_instr_dims (instr, FB_A_DIMENSIONS) == NULL)
        return FALSE;
      return reducer_ok (fb_instr_comp (instr, FB_A_TO_APPLY), n, why);
    }
  if (!shape_ok (instr->shape, why, instr))
    return FALSE;
  for (int j = 0; j < instr->n_operands; j++)
    if (!shape_ok (instr->operands[j]->shape, why, instr))
      return FALSE;

  switch (op)
    {
    case FB_OP_CONSTANT:
      return instr->literal != NULL && instr->literal->data != NULL && !instr->literal_elided
             && fb_shape_elements (instr->shape) <= (1 << 20);
    case FB_OP_COPY: case FB_OP_RESHAPE: case FB_OP_BITCAST:
      return instr->n_operands == 1 && fb_shape_elements (instr->shape) == fb_shape_elements (instr->operands[0]->shape)
             && instr->shape->type == instr->operands[0]->shape->type;
    case FB_OP_BROADCAST: case FB_OP_TRANSPOSE: case FB_OP_REVERSE:
      {
        const FbDims *d = fb_instr_dims (instr, FB_A_DIMENSIONS);
        return instr->n_operands == 1 && (d != NULL || instr->operands[0]->shape->rank == 0);
      }
    case FB_OP_SLICE:
      return instr->n_operands == 1 && fb_instr_get_attr (instr, FB_A_SLICE) != NULL;
    case FB_OP_PAD:
      return instr->n_operands == 2 && fb_instr_get_attr (instr, FB_A_PADDING) != NULL
             && instr->operands[1]->shape->rank == 0;
    case FB_OP_CONCATENATE:
      return instr->n_operands >= 1 && fb_instr_dims (instr, FB_A_DIMENSIONS) != NULL;
    case FB_OP_DYNAMIC_SLICE:
    case FB_OP_DYNAMIC_UPDATE_SLICE:
      for (int j = op == FB_OP_DYNAMIC_SLICE ? 1 : 2; j < instr->n_operands; j++)
        if (!fb_elem_type_is_int (instr->operands[j]->shape->type))
          return FALSE;
      return instr->n_operands >= 2;
    case FB_OP_IOTA:
      return instr->shape->rank >= 1;
    case FB_OP_COMPARE: case FB_OP_SELECT: case FB_OP_CLAMP: case FB_OP_CONVERT: case FB_OP_IS_FINITE:
      return TRUE;
    case FB_OP_BITCAST_CONVERT:
      return fb_elem_type_bits (instr->shape->type) == fb_elem_type_bits (instr->operands[0]->shape->type)
             && instr->shape->rank == instr->operands[0]->shape->rank;
    default:
      break;
    }
  FbOpCategory cat = fb_opcode_category (op);
  FbElemType t = instr->shape->type;
  if (cat == FB_CAT_UNARY && instr->n_operands == 1)
    {
      switch (op)
        {
        case FB_OP_REAL: case FB_OP_IMAG: case FB_OP_REDUCE_PRECISION:
          break;
        default:
          if (is_float (t) || (!is_float (t) && (op == FB_OP_NEGATE || op == FB_OP_ABS || op == FB_OP_SIGN
                                                 || op == FB_OP_NOT || op == FB_OP_POPCNT || op == FB_OP_CLZ)))
            return t != FB_PRED || op == FB_OP_NOT;
          break;
        }
    }
  if (cat == FB_CAT_BINARY && instr->n_operands == 2 && op != FB_OP_COMPLEX && op != FB_OP_STOCHASTIC_CONVERT)
    {
      if (is_float (t))
        return op != FB_OP_AND && op != FB_OP_OR && op != FB_OP_XOR && op != FB_OP_MULHI
               && op != FB_OP_SHIFT_LEFT && op != FB_OP_SHIFT_RIGHT_LOGICAL && op != FB_OP_SHIFT_RIGHT_ARITHMETIC;
      if (t == FB_PRED)
        return op == FB_OP_AND || op == FB_OP_OR || op == FB_OP_XOR || op == FB_OP_ADD || op == FB_OP_MULTIPLY
               || op == FB_OP_MAXIMUM || op == FB_OP_MINIMUM;
      return op != FB_OP_ATAN2;
    }
  if (why)
    g_string_append_printf (why, "%%%s: %s on %s is not generated as a loop kernel", instr->name,
                            fb_opcode_name (op), fb_elem_type_name (t));
  return FALSE;
}
