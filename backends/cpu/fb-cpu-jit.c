/* SPDX-License-Identifier: MIT
 *
 * The in-process JIT for CPU kernels and its disk cache. Each kernel is
 * emitted into its own LLVM context on a worker thread (contexts are not
 * shared between threads), verified, optimised with the default<O3>
 * pipeline for the host CPU, and turned into an object file, its optimised
 * IR text and its assembly. The object file is added to an ORC LLJIT and
 * the kernel's symbol looked up.
 *
 * The cache keys a kernel by a SHA-256 of everything that decides its code:
 * a code generator version, the LLVM version, the host CPU name and
 * features, and the printed HLO of the instruction with every computation
 * it calls (and the raw bytes of constants). An entry is one file holding
 * a checksum, the object file, the IR and the assembly; an entry whose
 * checksum or structure is wrong is ignored and rewritten.
 */
#include "fb-cpu-codegen-private.h"
#include "fb-cpu-private.h"
#include "fb-hlo.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <glib/gstdio.h>
#include <string.h>

/* Bump when generated code changes for the same input. */
#define CODEGEN_VERSION "fusebox-cpu-codegen-10"
#define CACHE_MAGIC "FBK1"

struct _FbCpuJit {
  LLVMOrcLLJITRef jit;
  char           *cache_dir;   /* NULL: no disk cache */
  GHashTable     *loaded;      /* key -> Loaded*: kernels already in this JIT */
};

typedef struct {
  FbCpuKernelFn fn;
  char         *llvm_ir;
  char         *asm_text;
} Loaded;

static void
loaded_free (gpointer p)
{
  Loaded *l = p;
  g_free (l->llvm_ir);
  g_free (l->asm_text);
  g_free (l);
}

/* --------------------------------------------------------------- host */

static gpointer
init_llvm (gpointer unused)
{
  LLVMInitializeNativeTarget ();
  LLVMInitializeNativeAsmPrinter ();
  LLVMInitializeNativeAsmParser ();
  return NULL;
}

static void
ensure_llvm (void)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, init_llvm, NULL);
}

const char *
fb_cpu_host_name (void)
{
  static char *name;
  static gsize done;
  if (g_once_init_enter (&done))
    {
      char *n = LLVMGetHostCPUName ();
      name = g_strdup (n);
      LLVMDisposeMessage (n);
      g_once_init_leave (&done, 1);
    }
  return name;
}

const char *
fb_cpu_host_features (void)
{
  static char *features;
  static gsize done;
  if (g_once_init_enter (&done))
    {
      char *f = LLVMGetHostCPUFeatures ();
      features = g_strdup (f);
      LLVMDisposeMessage (f);
      g_once_init_leave (&done, 1);
    }
  return features;
}

gboolean
fb_cpu_host_has_avx512 (void)
{
  const char *f = fb_cpu_host_features ();
  return f != NULL && (g_str_has_prefix (f, "+avx512f,") || strstr (f, ",+avx512f,") != NULL
                       || g_str_has_suffix (f, ",+avx512f"));
}

/* Consumes @err. */
static gboolean
take_error (LLVMErrorRef err, GError **error, const char *what)
{
  if (err == NULL)
    return TRUE;
  char *msg = LLVMGetErrorMessage (err);
  g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME, "%s: %s", what, msg);
  LLVMDisposeErrorMessage (msg);
  return FALSE;
}

static LLVMTargetMachineRef
host_machine (GError **error)
{
  char *triple = LLVMGetDefaultTargetTriple ();
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple (triple, &target, &msg))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME, "no LLVM target for %s: %s", triple, msg);
      LLVMDisposeMessage (msg);
      LLVMDisposeMessage (triple);
      return NULL;
    }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine (target, triple, fb_cpu_host_name (), fb_cpu_host_features (),
                                                     LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                                     LLVMCodeModelSmall);
  LLVMDisposeMessage (triple);
  if (tm == NULL)
    g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME, "cannot create an LLVM target machine for %s",
                 fb_cpu_host_name ());
  return tm;
}

/* ---------------------------------------------------------------- JIT */

FbCpuJit *
fb_cpu_jit_new (const char *cache_dir, GError **error)
{
  ensure_llvm ();
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder ();
  LLVMOrcLLJITRef jit = NULL;
  if (!take_error (LLVMOrcCreateLLJIT (&jit, builder), error, "cannot create the JIT"))
    return NULL;

  FbCpuJit *self = g_new0 (FbCpuJit, 1);
  self->jit = jit;
  self->loaded = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, loaded_free);

  /* The C library functions kernels call, by address; then the process. */
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib (jit);
  int n;
  const FbMathSymbol *syms = _fb_math_symbols (&n);
  LLVMOrcCSymbolMapPair *pairs = g_new0 (LLVMOrcCSymbolMapPair, n);
  for (int i = 0; i < n; i++)
    {
      pairs[i].Name = LLVMOrcLLJITMangleAndIntern (jit, syms[i].name);
      pairs[i].Sym.Address = (LLVMOrcExecutorAddress) (uintptr_t) syms[i].addr;
      pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    }
  LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols (pairs, (size_t) n);
  g_free (pairs);
  if (!take_error (LLVMOrcJITDylibDefine (jd, mu), error, "cannot define C library symbols"))
    {
      fb_cpu_jit_free (self);
      return NULL;
    }
  LLVMOrcDefinitionGeneratorRef gen = NULL;
  if (!take_error (LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess (&gen, LLVMOrcLLJITGetGlobalPrefix (jit),
                                                                         NULL, NULL),
                   error, "cannot search the process for symbols"))
    {
      fb_cpu_jit_free (self);
      return NULL;
    }
  LLVMOrcJITDylibAddGenerator (jd, gen);

  if (cache_dir == NULL)
    self->cache_dir = g_build_filename (g_get_user_cache_dir (), "fusebox", "kernels", NULL);
  else if (cache_dir[0] != '\0')
    self->cache_dir = g_strdup (cache_dir);
  if (self->cache_dir != NULL && g_mkdir_with_parents (self->cache_dir, 0755) != 0)
    {
      /* a read-only home still compiles, just without a cache */
      g_debug ("kernel cache %s is not writable: %s", self->cache_dir, g_strerror (errno));
      g_clear_pointer (&self->cache_dir, g_free);
    }
  return self;
}

void
fb_cpu_jit_free (FbCpuJit *jit)
{
  if (jit == NULL)
    return;
  if (jit->jit != NULL)
    {
      LLVMErrorRef err = LLVMOrcDisposeLLJIT (jit->jit);
      if (err != NULL)
        LLVMConsumeError (err);
    }
  g_hash_table_unref (jit->loaded);
  g_free (jit->cache_dir);
  g_free (jit);
}

const char *
fb_cpu_jit_get_cache_dir (FbCpuJit *jit)
{
  g_return_val_if_fail (jit != NULL, NULL);
  return jit->cache_dir;
}

void
fb_cpu_kernel_free (FbCpuKernel *kernel)
{
  if (kernel == NULL)
    return;
  g_free (kernel->name);
  g_free (kernel->llvm_ir);
  g_free (kernel->asm_text);
  g_free (kernel);
}

/* ------------------------------------------------------------ hashing */

static void
hash_comp (GChecksum *sum, GString *buf, FbComputation *comp, GHashTable *seen)
{
  if (comp == NULL || g_hash_table_contains (seen, comp))
    return;
  g_hash_table_add (seen, comp);
  for (FbInstr *i = comp->first; i != NULL; i = i->next)
    {
      FbComputation *called[16];
      int n = fb_instr_called (i, called, G_N_ELEMENTS (called));
      for (int k = 0; k < MIN (n, (int) G_N_ELEMENTS (called)); k++)
        hash_comp (sum, buf, called[k], seen);
    }
  g_string_truncate (buf, 0);
  g_string_append_printf (buf, "computation %s root %s\n", comp->name, comp->root ? comp->root->name : "-");
  g_checksum_update (sum, (const guchar *) buf->str, (gssize) buf->len);
  for (FbInstr *i = comp->first; i != NULL; i = i->next)
    {
      g_string_truncate (buf, 0);
      fb_hlo_print_instr (buf, i, FB_PRINT_LONG);
      g_string_append_c (buf, '\n');
      g_checksum_update (sum, (const guchar *) buf->str, (gssize) buf->len);
      if (i->literal != NULL && i->literal->data != NULL)
        g_checksum_update (sum, i->literal->data,
                           (gssize) (fb_shape_elements (i->literal->shape) * fb_elem_type_bytes (i->literal->shape->type)));
    }
}

static char *
kernel_key (const FbInstr *instr)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GString) buf = g_string_new (NULL);
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  unsigned major, minor, patch;
  LLVMGetVersion (&major, &minor, &patch);
  g_string_printf (buf, "%s\nllvm %u.%u.%u\n%s\n%s\n", CODEGEN_VERSION, major, minor, patch,
                   fb_cpu_host_name (), fb_cpu_host_features ());
  for (int k = 0; k < instr->n_operands; k++)
    {
      g_string_append (buf, "operand ");
      fb_shape_print (buf, instr->operands[k]->shape, FALSE);
      g_string_append_c (buf, '\n');
    }
  fb_hlo_print_instr (buf, instr, FB_PRINT_LONG);
  g_string_append_c (buf, '\n');
  g_checksum_update (sum, (const guchar *) buf->str, (gssize) buf->len);
  if (instr->literal != NULL && instr->literal->data != NULL)
    g_checksum_update (sum, instr->literal->data,
                       (gssize) (fb_shape_elements (instr->literal->shape)
                                 * fb_elem_type_bytes (instr->literal->shape->type)));
  FbComputation *called[16];
  int n = fb_instr_called (instr, called, G_N_ELEMENTS (called));
  for (int k = 0; k < MIN (n, (int) G_N_ELEMENTS (called)); k++)
    hash_comp (sum, buf, called[k], seen);
  return g_strdup (g_checksum_get_string (sum));
}

static char *
kernel_symbol (const FbInstr *instr, const char *key)
{
  GString *s = g_string_new ("fb_");
  for (const char *p = instr->name; *p; p++)
    g_string_append_c (s, g_ascii_isalnum (*p) ? *p : '_');
  g_string_append_c (s, '_');
  g_string_append_len (s, key, 12);
  return g_string_free (s, FALSE);
}

/* -------------------------------------------------------------- cache */

/* An entry: "FBK1", 64 hex digits of SHA-256 over the rest, then three
 * sections (object, IR, assembly), each a little-endian u64 size and bytes. */
static GBytes *
cache_pack (GBytes *obj, const char *ir, const char *asm_text)
{
  GByteArray *body = g_byte_array_new ();
  const void *parts[3];
  guint64 sizes[3];
  gsize osize;
  parts[0] = g_bytes_get_data (obj, &osize);
  sizes[0] = osize;
  parts[1] = ir;
  sizes[1] = strlen (ir);
  parts[2] = asm_text;
  sizes[2] = strlen (asm_text);
  for (int i = 0; i < 3; i++)
    {
      guint64 le = GUINT64_TO_LE (sizes[i]);
      g_byte_array_append (body, (const guint8 *) &le, 8);
      g_byte_array_append (body, parts[i], (guint) sizes[i]);
    }
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, body->data, body->len);
  GByteArray *out = g_byte_array_new ();
  g_byte_array_append (out, (const guint8 *) CACHE_MAGIC, 4);
  g_byte_array_append (out, (const guint8 *) sum, 64);
  g_byte_array_append (out, body->data, body->len);
  g_byte_array_unref (body);
  return g_byte_array_free_to_bytes (out);
}

static gboolean
cache_unpack (const guint8 *data, gsize len, GBytes **obj, char **ir, char **asm_text)
{
  if (len < 68 || memcmp (data, CACHE_MAGIC, 4) != 0)
    return FALSE;
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data + 68, len - 68);
  if (memcmp (sum, data + 4, 64) != 0)
    return FALSE;
  gsize at = 68;
  const guint8 *parts[3];
  guint64 sizes[3];
  for (int i = 0; i < 3; i++)
    {
      guint64 le;
      if (len - at < 8)
        return FALSE;
      memcpy (&le, data + at, 8);
      sizes[i] = GUINT64_FROM_LE (le);
      at += 8;
      if (sizes[i] > len - at)
        return FALSE;
      parts[i] = data + at;
      at += sizes[i];
    }
  if (at != len || sizes[0] == 0)
    return FALSE;
  *obj = g_bytes_new (parts[0], sizes[0]);
  *ir = g_strndup ((const char *) parts[1], sizes[1]);
  *asm_text = g_strndup ((const char *) parts[2], sizes[2]);
  return TRUE;
}

static char *
cache_path (FbCpuJit *jit, const char *key)
{
  g_autofree char *base = g_strconcat (key, ".fbk", NULL);
  return g_build_filename (jit->cache_dir, base, NULL);
}

/* ---------------------------------------------------------- compiling */

typedef struct {
  const FbInstr *instr;
  char          *key;
  char          *symbol;
  /* results */
  GBytes        *obj;
  char          *llvm_ir;
  char          *asm_text;
  gboolean       from_cache;
  GError        *error;
} Job;

static void
job_clear (Job *j)
{
  g_free (j->key);
  g_free (j->symbol);
  g_clear_pointer (&j->obj, g_bytes_unref);
  g_free (j->llvm_ir);
  g_free (j->asm_text);
  g_clear_error (&j->error);
}

static char *
emit_to_text (LLVMTargetMachineRef tm, LLVMModuleRef mod, LLVMCodeGenFileType type, GBytes **bytes,
              GError **error)
{
  char *msg = NULL;
  LLVMMemoryBufferRef buf = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer (tm, mod, type, &msg, &buf))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME, "code generation failed: %s", msg ? msg : "?");
      LLVMDisposeMessage (msg);
      return NULL;
    }
  const char *start = LLVMGetBufferStart (buf);
  size_t size = LLVMGetBufferSize (buf);
  char *text = NULL;
  if (bytes != NULL)
    *bytes = g_bytes_new (start, size);
  else
    text = g_strndup (start, size);
  LLVMDisposeMemoryBuffer (buf);
  return bytes != NULL ? g_strdup ("") : text;
}

/* Runs on a worker thread with its own context. */
static void
compile_job (gpointer data, gpointer user_data)
{
  Job *j = data;
  GError *error = NULL;
  LLVMTargetMachineRef tm = host_machine (&error);
  if (tm == NULL)
    {
      j->error = error;
      return;
    }
  LLVMContextRef ctx = LLVMContextCreate ();
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext (j->symbol, ctx);
  char *triple = LLVMGetTargetMachineTriple (tm);
  LLVMSetTarget (mod, triple);
  LLVMDisposeMessage (triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout (tm);
  char *dl = LLVMCopyStringRepOfTargetData (layout);
  LLVMSetDataLayout (mod, dl);
  LLVMDisposeMessage (dl);
  LLVMDisposeTargetData (layout);

  FbCpuKernel info = { 0 };
  char *msg = NULL;
  if (!_fb_cpu_kernel_emit (ctx, mod, j->instr, j->symbol, &info, &error))
    goto out;
  if (LLVMVerifyModule (mod, LLVMReturnStatusAction, &msg))
    {
      g_set_error (&error, FB_ERROR, FB_ERROR_RUNTIME, "%%%s: generated invalid LLVM IR: %s", j->instr->name, msg);
      goto out;
    }
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions ();
  LLVMPassBuilderOptionsSetLoopVectorization (opts, TRUE);
  LLVMPassBuilderOptionsSetSLPVectorization (opts, TRUE);
  LLVMPassBuilderOptionsSetLoopUnrolling (opts, TRUE);
  LLVMErrorRef err = LLVMRunPasses (mod, "default<O3>", tm, opts);
  LLVMDisposePassBuilderOptions (opts);
  if (!take_error (err, &error, "optimisation failed"))
    goto out;
  _fb_cpu_kernel_stream_stores (mod);

  char *ir = LLVMPrintModuleToString (mod);
  j->llvm_ir = g_strdup (ir);
  LLVMDisposeMessage (ir);
  /* code generation may change the module: the assembly comes from a clone */
  LLVMModuleRef clone = LLVMCloneModule (mod);
  j->asm_text = emit_to_text (tm, clone, LLVMAssemblyFile, NULL, &error);
  LLVMDisposeModule (clone);
  if (j->asm_text == NULL)
    goto out;
  g_free (emit_to_text (tm, mod, LLVMObjectFile, &j->obj, &error));

out:
  if (msg != NULL)
    LLVMDisposeMessage (msg);
  if (error != NULL)
    j->error = error;
  LLVMDisposeModule (mod);
  LLVMContextDispose (ctx);
  LLVMDisposeTargetMachine (tm);
}

static gboolean
add_object (FbCpuJit *jit, Job *j, FbCpuKernelFn *fn, GError **error)
{
  gsize size;
  const char *data = g_bytes_get_data (j->obj, &size);
  LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy (data, size, j->symbol);
  if (!take_error (LLVMOrcLLJITAddObjectFile (jit->jit, LLVMOrcLLJITGetMainJITDylib (jit->jit), buf), error,
                   "cannot load the kernel's object file"))
    return FALSE;
  LLVMOrcExecutorAddress addr = 0;
  if (!take_error (LLVMOrcLLJITLookup (jit->jit, &addr, j->symbol), error, "cannot link the kernel"))
    return FALSE;
  *fn = (FbCpuKernelFn) (uintptr_t) addr;
  return TRUE;
}

gboolean
fb_cpu_jit_compile (FbCpuJit *jit, int n, FbInstr *const *instrs, FbCpuKernel **out_kernels, GError **error)
{
  g_return_val_if_fail (jit != NULL, FALSE);
  g_return_val_if_fail (n >= 0 && (n == 0 || (instrs != NULL && out_kernels != NULL)), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autofree Job *jobs = g_new0 (Job, MAX (n, 1));
  g_autofree FbCpuKernel **kernels = g_new0 (FbCpuKernel *, MAX (n, 1));
  g_autoptr (GHashTable) first_of = g_hash_table_new (g_str_hash, g_str_equal);   /* key -> Job* */
  GPtrArray *misses = g_ptr_array_new ();
  gboolean ok = TRUE;

  for (int i = 0; i < n && ok; i++)
    {
      Job *j = &jobs[i];
      j->instr = instrs[i];
      kernels[i] = g_new0 (FbCpuKernel, 1);
      if (!_fb_cpu_kernel_describe (j->instr, kernels[i], error))
        {
          ok = FALSE;
          break;
        }
      j->key = kernel_key (j->instr);
      j->symbol = kernel_symbol (j->instr, j->key);
      if (g_hash_table_contains (jit->loaded, j->key) || g_hash_table_contains (first_of, j->key))
        continue;
      g_hash_table_insert (first_of, j->key, j);
      if (jit->cache_dir != NULL)
        {
          g_autofree char *path = cache_path (jit, j->key);
          g_autofree char *data = NULL;
          gsize len = 0;
          if (g_file_get_contents (path, &data, &len, NULL))
            {
              if (cache_unpack ((const guint8 *) data, len, &j->obj, &j->llvm_ir, &j->asm_text))
                {
                  j->from_cache = TRUE;
                  continue;
                }
              g_debug ("ignoring a corrupt kernel cache entry %s", path);
            }
        }
      g_ptr_array_add (misses, j);
    }

  if (ok && misses->len > 0)
    {
      int threads = MIN ((int) misses->len, (int) g_get_num_processors ());
      GThreadPool *pool = g_thread_pool_new (compile_job, NULL, MAX (threads, 1), TRUE, NULL);
      for (guint i = 0; pool != NULL && i < misses->len; i++)
        g_thread_pool_push (pool, misses->pdata[i], NULL);
      if (pool != NULL)
        g_thread_pool_free (pool, FALSE, TRUE);
      else
        for (guint i = 0; i < misses->len; i++)
          compile_job (misses->pdata[i], NULL);
      for (guint i = 0; ok && i < misses->len; i++)
        {
          Job *j = misses->pdata[i];
          if (j->error != NULL)
            {
              g_propagate_error (error, g_steal_pointer (&j->error));
              ok = FALSE;
            }
          else if (jit->cache_dir != NULL)
            {
              g_autoptr (GBytes) packed = cache_pack (j->obj, j->llvm_ir, j->asm_text);
              g_autofree char *path = cache_path (jit, j->key);
              g_autoptr (GError) werr = NULL;
              if (!g_file_set_contents (path, g_bytes_get_data (packed, NULL), (gssize) g_bytes_get_size (packed),
                                        &werr))
                g_debug ("cannot write the kernel cache: %s", werr->message);
            }
        }
    }
  g_ptr_array_unref (misses);

  /* load new objects into the JIT, in input order */
  for (int i = 0; ok && i < n; i++)
    {
      Job *j = &jobs[i];
      if (g_hash_table_lookup (first_of, j->key) != j)
        continue;
      Loaded *l = g_new0 (Loaded, 1);
      if (!add_object (jit, j, &l->fn, error))
        {
          g_prefix_error (error, "%%%s: ", j->instr->name);
          loaded_free (l);
          ok = FALSE;
          break;
        }
      l->llvm_ir = g_steal_pointer (&j->llvm_ir);
      l->asm_text = g_steal_pointer (&j->asm_text);
      g_hash_table_insert (jit->loaded, g_strdup (j->key), l);
    }

  for (int i = 0; i < n; i++)
    {
      Job *j = &jobs[i];
      if (ok)
        {
          Loaded *l = g_hash_table_lookup (jit->loaded, j->key);
          Job *first = g_hash_table_lookup (first_of, j->key);
          kernels[i]->name = g_strdup (j->symbol);
          kernels[i]->fn = l->fn;
          kernels[i]->llvm_ir = g_strdup (l->llvm_ir);
          kernels[i]->asm_text = g_strdup (l->asm_text);
          kernels[i]->from_cache = first == NULL || first->from_cache || first != j;
          out_kernels[i] = g_steal_pointer (&kernels[i]);
        }
    }
  for (int i = 0; i < n; i++)
    {
      job_clear (&jobs[i]);
      fb_cpu_kernel_free (kernels[i]);
    }
  return ok;
}

/* ------------------------------------------------------------- report */

gboolean
fb_cpu_emit_report (FbModule *module, const char *what, const char *kernel_name, GString *out, GError **error)
{
  g_return_val_if_fail (module != NULL && out != NULL, FALSE);
  gboolean want_asm;
  if (g_strcmp0 (what, "llvm") == 0)
    want_asm = FALSE;
  else if (g_strcmp0 (what, "asm") == 0)
    want_asm = TRUE;
  else
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "--emit takes llvm or asm, not '%s'", what ? what : "");
      return FALSE;
    }
  if (module->entry == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "the module has no entry computation");
      return FALSE;
    }
  g_autoptr (GPtrArray) instrs = g_ptr_array_new ();
  for (FbInstr *i = module->entry->first; i != NULL; i = i->next)
    {
      if (!fb_cpu_can_generate (i))
        continue;
      if (kernel_name != NULL && strcmp (i->name, kernel_name) != 0)
        {
          g_autofree char *key = kernel_key (i);
          g_autofree char *sym = kernel_symbol (i, key);
          if (strcmp (sym, kernel_name) != 0)
            continue;
        }
      g_ptr_array_add (instrs, i);
    }
  if (kernel_name != NULL && instrs->len == 0)
    {
      /* An instruction by that name that runs no generated code: say what
       * runs it instead. */
      const FbInstr *named = NULL;
      for (FbInstr *i = module->entry->first; i != NULL && named == NULL; i = i->next)
        if (strcmp (i->name, kernel_name) == 0)
          named = i;
      if (named == NULL)
        g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "no loop kernel is named '%s'", kernel_name);
      else if (named->opcode == FB_OP_DOT && fb_elem_type_kind (named->shape->type) != FB_KIND_FLOAT)
        g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "%%%s is not a loop kernel: an integer dot runs as a C loop",
                     kernel_name);
      else if (named->opcode == FB_OP_DOT)
        g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
                     "%%%s is not a loop kernel: it runs as GEMMs on %s (FUSEBOX_GEMM picks the library)",
                     kernel_name, _fb_cpu_dot_library (named) == FB_CPU_GEMM_ONEDNN ? "oneDNN" : "OpenBLAS");
      else if (named->opcode == FB_OP_CONVOLUTION)
        g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
                     "%%%s is not a loop kernel: it runs as a convolution by direct loops, im2col + GEMM or oneDNN, "
                     "whichever measured fastest when the step was first compiled (FUSEBOX_CONV picks one)",
                     kernel_name);
      else
        g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
                     "%%%s is not a loop kernel: the CPU backend runs it by a function written in C, or as a view "
                     "of its operand", kernel_name);
      return FALSE;
    }
  g_autoptr (FbCpuJit) jit = fb_cpu_jit_new (NULL, error);
  if (jit == NULL)
    return FALSE;
  g_autofree FbCpuKernel **kernels = g_new0 (FbCpuKernel *, MAX (instrs->len, 1));
  if (!fb_cpu_jit_compile (jit, (int) instrs->len, (FbInstr *const *) instrs->pdata, kernels, error))
    return FALSE;
  for (guint i = 0; i < instrs->len; i++)
    {
      FbCpuKernel *k = kernels[i];
      g_string_append_printf (out, "; kernel %s (%%%s)\n", k->name, k->instr->name);
      g_string_append (out, want_asm ? k->asm_text : k->llvm_ir);
      if (out->len > 0 && out->str[out->len - 1] != '\n')
        g_string_append_c (out, '\n');
      fb_cpu_kernel_free (k);
    }
  return TRUE;
}
