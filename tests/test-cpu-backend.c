/* SPDX-License-Identifier: MIT
 *
 * The CPU backend against the reference interpreter. Every zoo model (at
 * small sizes) and every module of the real corpus that the interpreter can
 * run give the same results on CPU, within a tolerance that depends on the
 * element type, with all passes on, all off, and each fusion pass alone.
 * Training for 50 steps gives the same losses; one thread and two threads
 * give identical results; unknown custom calls are refused with the same
 * advice as on the interpreter. The operations the CPU backend runs as C
 * functions of its own (rng-bit-generator bit for bit, fft, cholesky,
 * triangular-solve and map) agree with the interpreter on small modules.
 */
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>

#include "fb-backend.h"
#include "fb-cpu-private.h"
#include "fb-hlo.h"
#include "fb-interp.h"
#include "fb-pass.h"
#include "fb-runner.h"
#include "fb-zoo.h"

/* ---------------------------------------------------------- utilities */

static double
tolerance (FbElemType t)
{
  switch (t)
    {
    case FB_F64: return 1e-9;
    case FB_F32: return 2e-4;
    case FB_F16: return 5e-3;
    case FB_BF16: return 3e-2;
    default: return fb_elem_type_is_float (t) ? 0.25 : 0;
    }
}

/* NULL when equal within tolerance, else a description of the first mismatch. */
static char *
compare (const FbLiteral *want, const FbLiteral *got, const char *where)
{
  if (want->shape->type == FB_TUPLE || got->shape->type == FB_TUPLE)
    {
      if (want->n_elems != got->n_elems)
        return g_strdup_printf ("%s: %d tuple elements instead of %d", where, got->n_elems, want->n_elems);
      for (int i = 0; i < want->n_elems; i++)
        {
          g_autofree char *w = g_strdup_printf ("%s{%d}", where, i);
          char *why = compare (want->elems[i], got->elems[i], w);
          if (why)
            return why;
        }
      return NULL;
    }
  if (!fb_shape_compatible (want->shape, got->shape))
    return g_strdup_printf ("%s: shapes differ", where);
  FbElemType t = want->shape->type;
  if (!fb_elem_type_is_array (t))
    return NULL;
  int64_t n = fb_shape_elements (want->shape);
  if (fb_elem_type_kind (t) == FB_KIND_COMPLEX)
    {
      /* Real and imaginary parts, relative to the largest magnitude. */
      gboolean wide = t == FB_C128;
      double scale = 1e-6, tol = tolerance (wide ? FB_F64 : FB_F32);
      for (int64_t i = 0; i < 2 * n; i++)
        scale = MAX (scale, fabs (wide ? ((double *) want->data)[i] : ((float *) want->data)[i]));
      for (int64_t i = 0; i < 2 * n; i++)
        {
          double a = wide ? ((double *) want->data)[i] : ((float *) want->data)[i];
          double b = wide ? ((double *) got->data)[i] : ((float *) got->data)[i];
          if (!(fabs (a - b) <= tol * (fabs (a) + scale)))
            return g_strdup_printf ("%s: %s part of element %" G_GINT64_FORMAT " is %.9g, the interpreter says %.9g",
                                    where, i % 2 ? "imaginary" : "real", i / 2, b, a);
        }
      return NULL;
    }
  if (fb_elem_type_kind (t) == FB_KIND_FLOAT)
    {
      /* Relative to the largest magnitude, so cancellation does not count. */
      double scale = 1e-6;
      for (int64_t i = 0; i < n; i++)
        if (isfinite (fb_literal_get_f64 (want, i)))
          scale = MAX (scale, fabs (fb_literal_get_f64 (want, i)));
      double tol = tolerance (t);
      for (int64_t i = 0; i < n; i++)
        {
          double a = fb_literal_get_f64 (want, i), b = fb_literal_get_f64 (got, i);
          if (isnan (a) && isnan (b))
            continue;
          if (isinf (a) && a == b)
            continue;
          if (!(fabs (a - b) <= tol * (fabs (a) + scale)))
            return g_strdup_printf ("%s: element %" G_GINT64_FORMAT " of %s is %.9g, the interpreter says %.9g",
                                    where, i, fb_elem_type_name (t), b, a);
        }
      return NULL;
    }
  if (memcmp (want->data, got->data, (gsize) n * fb_elem_type_bytes (t)) != 0)
    for (int64_t i = 0; i < n; i++)
      if (fb_literal_get_s64 (want, i) != fb_literal_get_s64 (got, i))
        return g_strdup_printf ("%s: element %" G_GINT64_FORMAT " is %" G_GINT64_FORMAT ", the interpreter says %"
                                G_GINT64_FORMAT, where, i, fb_literal_get_s64 (got, i), fb_literal_get_s64 (want, i));
  return NULL;
}

/* Arguments for the entry: the zoo's own values, else seeded small values
 * (integers in [0, 4) so that they are valid indices of small dimensions). */
static FbLiteral **
make_args (FbModule *m, FbArena *arena)
{
  FbComputation *e = m->entry;
  FbLiteral **args = fb_arena_new0 (arena, FbLiteral *, MAX (e->n_params, 1));
  GRand *rand = g_rand_new_with_seed (7);
  for (int p = 0; p < e->n_params; p++)
    {
      FbShape *s = e->params[p]->shape;
      args[p] = fb_literal_new (arena, s);
      if (fb_zoo_is_zoo_module (m) && fb_zoo_fill_parameter (m, p, 1, args[p], NULL))
        continue;
      if (!fb_shape_is_array (s))
        continue;   /* tuple parameters stay zero */
      int64_t n = fb_shape_elements (s);
      for (int64_t i = 0; i < n; i++)
        {
          if (fb_elem_type_kind (s->type) == FB_KIND_FLOAT)
            fb_literal_set_f64 (args[p], i, g_rand_double_range (rand, -1, 1));
          else if (fb_elem_type_is_array (s->type))
            fb_literal_set_s64 (args[p], i, g_rand_int_range (rand, 0, s->type == FB_PRED ? 2 : 4));
        }
    }
  g_rand_free (rand);
  return args;
}

static FbModule *
with_passes (FbModule *m, const char *spec)
{
  g_autoptr (GError) error = NULL;
  FbModule *c = fb_module_clone (m);
  FbPipeline *p = fb_pipeline_new_default ();
  if (!fb_pipeline_set_spec (p, spec, &error))
    g_error ("--passes %s: %s", spec, error->message);
  FbPipelineOptions opts = { .verify_each = TRUE, .keep_snapshots = FALSE };
  GPtrArray *snaps = fb_pipeline_run (p, c, &opts, &error);
  if (snaps == NULL)
    g_error ("%s: passes %s failed: %s", m->name, spec, error->message);
  g_ptr_array_free (snaps, TRUE);
  fb_pipeline_free (p);
  return c;
}

static FbLiteral *
run_cpu (FbModule *m, FbArena *arena, FbLiteral **args, int threads, GError **error)
{
  const FbBackend *cpu = fb_backend_lookup ("cpu", error);
  if (cpu == NULL)
    return NULL;
  FbBackendOptions opts = { .threads = threads };
  FbExecutable *exe = cpu->compile (m, &opts, error);
  if (exe == NULL)
    return NULL;
  FbLiteral *r = cpu->execute (exe, arena, m->entry->n_params, args, error);
  cpu->free (exe);
  return r;
}

/* Runs @m on the interpreter (as given) and on CPU after @spec; asserts equality. */
static void
check_parity (FbModule *m, FbLiteral *want, FbLiteral **args, const char *spec, const char *what)
{
  g_autoptr (GError) error = NULL;
  FbModule *c = with_passes (m, spec);
  FbArena *arena = fb_arena_new ();
  FbLiteral *got = run_cpu (c, arena, args, 0, &error);
  if (got == NULL)
    g_error ("%s with --passes %s: the CPU backend failed: %s", what, spec, error->message);
  g_autofree char *where = g_strdup_printf ("%s (--passes %s)", what, spec);
  g_autofree char *why = compare (want, got, where);
  if (why)
    g_error ("%s", why);
  fb_arena_free (arena);
  fb_module_free (c);
}

/* all, none, and each fuse-* pass alone. */
static GPtrArray *
pass_specs (void)
{
  GPtrArray *specs = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (specs, g_strdup ("all"));
  g_ptr_array_add (specs, g_strdup ("none"));
  int n;
  const FbPass *const *all = fb_passes_all (&n);
  for (int i = 0; i < n; i++)
    if (g_str_has_prefix (all[i]->name, "fuse-"))
      g_ptr_array_add (specs, g_strdup (all[i]->name));
  return specs;
}

static void
check_module (FbModule *m, const char *what)
{
  g_autoptr (GError) error = NULL;
  FbArena *arena = fb_arena_new ();
  FbLiteral **args = make_args (m, arena);
  FbLiteral *want = fb_interp_run (m, m->entry, arena, m->entry->n_params, args, NULL, &error);
  if (want == NULL)
    g_error ("%s: the interpreter failed: %s", what, error->message);
  g_autoptr (GPtrArray) specs = pass_specs ();
  for (guint i = 0; i < specs->len; i++)
    check_parity (m, want, args, specs->pdata[i], what);
  fb_arena_free (arena);
}

/* ---------------------------------------------------------------- zoo */

typedef struct {
  const char *model;
  const char *opts[16];   /* key, value, ... NULL */
} ZooCase;

static const ZooCase zoo_cases[] = {
  { "mlp", { "layers", "32,24,10", "batch", "8", NULL } },
  { "cnn", { "image", "12", "channels", "2,4", "hidden", "16", "batch", "4", NULL } },
  { "transformer", { "layers", "1", "dmodel", "16", "heads", "2", "seq", "8", "vocab", "16", "batch", "2", NULL } },
  { "resnet-block", { "image", "8", "channels", "4", "batch", "2", NULL } },
};

static FbModule *
zoo_module (const ZooCase *zc, const char *optimizer)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (FbZooOptions) o = fb_zoo_options_new ();
  for (int i = 0; zc->opts[i]; i += 2)
    g_assert_true (fb_zoo_options_set (o, zc->opts[i], zc->opts[i + 1], NULL));
  if (optimizer)
    g_assert_true (fb_zoo_options_set (o, "optimizer", optimizer, NULL));
  FbModule *m = fb_zoo_generate (zc->model, o, &error);
  g_assert_no_error (error);
  return m;
}

static void
test_zoo (gconstpointer data)
{
  const ZooCase *zc = data;
  FbModule *m = zoo_module (zc, NULL);
  check_module (m, zc->model);
  fb_module_free (m);
}

/* ------------------------------------------------------------- corpus */

/* Larger modules (a 1B-parameter model) would take the interpreter minutes. */
#define MAX_PARAM_BYTES (64 << 20)

static void
test_corpus_file (gconstpointer data)
{
  const char *path = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (path, &text, &len, &error));
  int n = fb_hlo_count_modules (text, len);
  g_autoptr (GString) skipped = g_string_new (NULL);
  int ran = 0;
  for (int i = 0; i < n; i++)
    {
      g_autofree char *what = g_strdup_printf ("%s (module %d)", path, i);
      FbModule *m = fb_hlo_parse (text, len, path, i, &error);
      g_assert_no_error (error);
      int64_t param_bytes = 0;
      for (int p = 0; p < m->entry->n_params; p++)
        param_bytes += fb_shape_bytes (m->entry->params[p]->shape);
      if (param_bytes > MAX_PARAM_BYTES)
        {
          g_string_append_printf (skipped, "%smodule %d: its parameters take %" G_GINT64_FORMAT " MiB, more than "
                                  "the interpreter runs in a unit test", skipped->len ? "; " : "", i,
                                  param_bytes >> 20);
          fb_module_free (m);
          continue;
        }
      FbArena *arena = fb_arena_new ();
      FbLiteral **args = make_args (m, arena);
      FbLiteral *want = fb_interp_run (m, m->entry, arena, m->entry->n_params, args, NULL, &error);
      if (want == NULL)
        {
          g_string_append_printf (skipped, "%smodule %d: the interpreter refuses it (%s)",
                                  skipped->len ? "; " : "", i, error->message);
          g_clear_error (&error);
        }
      else
        {
          g_autoptr (GPtrArray) specs = pass_specs ();
          for (guint s = 0; s < specs->len; s++)
            check_parity (m, want, args, specs->pdata[s], what);
          ran++;
        }
      fb_arena_free (arena);
      fb_module_free (m);
    }
  if (ran == 0)
    g_test_skip (skipped->str);
  else if (skipped->len)
    g_test_message ("%s", skipped->str);
}

static void
test_corpus_unset (void)
{
  g_test_skip ("FUSEBOX_CORPUS is not set (point it at the directory of real .hlo modules)");
}

/* ------------------------------------------------------------ training */

typedef struct {
  double losses[64];
} Losses;

static void
record_loss (int step, double loss, gpointer user_data)
{
  Losses *l = user_data;
  if (step >= 1 && step <= 64)
    l->losses[step - 1] = loss;
}

static void
train (FbModule *m, const char *backend, Losses *out)
{
  g_autoptr (GError) error = NULL;
  FbRunOptions o;
  fb_run_options_init (&o);
  o.backend = backend;
  o.steps = 50;
  o.init = fb_zoo_init_fn;
  o.data = fb_zoo_data_fn;
  o.on_step = record_loss;
  o.on_step_data = out;
  FbRunResult res;
  if (!fb_runner_run (m, &o, &res, &error))
    g_error ("training on %s failed: %s", backend, error->message);
  g_assert_cmpint (res.steps, ==, 50);
  fb_run_result_clear (&res);
}

static void
test_training_parity (void)
{
  FbModule *m = zoo_module (&zoo_cases[0], NULL);
  FbModule *compiled = with_passes (m, "all");
  Losses a = { 0 }, b = { 0 };
  train (m, "interp", &a);
  train (compiled, "cpu", &b);
  for (int s = 0; s < 50; s++)
    {
      g_assert_true (isfinite (a.losses[s]));
      if (fabs (a.losses[s] - b.losses[s]) > 1e-4 * fabs (a.losses[s]))
        g_error ("step %d: loss %.9g on CPU, %.9g on the interpreter", s + 1, b.losses[s], a.losses[s]);
    }
  fb_module_free (compiled);
  fb_module_free (m);
}

/* ------------------------------------------------------------- threads */

static void
test_threads_identical (void)
{
  g_autoptr (GError) error = NULL;
  for (guint z = 0; z < G_N_ELEMENTS (zoo_cases); z++)
    {
      FbModule *m0 = zoo_module (&zoo_cases[z], "adam");
      FbModule *m = with_passes (m0, "all");
      FbArena *arena = fb_arena_new ();
      FbLiteral **args = make_args (m, arena);
      FbLiteral *one = run_cpu (m, arena, args, 1, &error);
      g_assert_no_error (error);
      FbLiteral *two = run_cpu (m, arena, args, 2, &error);
      g_assert_no_error (error);
      if (!fb_literal_equal (one, two))
        g_error ("%s: 1 and 2 threads give different results", zoo_cases[z].model);
      fb_arena_free (arena);
      fb_module_free (m);
      fb_module_free (m0);
    }
}

/* ------------------------------------------------ operations in C */

typedef void (*PrepareFn) (FbLiteral **args, int n_args);

/* Parses @hlo, fills its arguments (seeded values, then @prepare), and
 * checks the CPU backend against the interpreter with every pass set, and
 * one thread against two bit for bit. */
static void
check_text (const char *what, const char *hlo, PrepareFn prepare)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (hlo, strlen (hlo), what, 0, &error);
  g_assert_no_error (error);
  FbArena *arena = fb_arena_new ();
  FbLiteral **args = make_args (m, arena);
  if (prepare)
    prepare (args, m->entry->n_params);
  FbLiteral *want = fb_interp_run (m, m->entry, arena, m->entry->n_params, args, NULL, &error);
  if (want == NULL)
    g_error ("%s: the interpreter failed: %s", what, error->message);
  g_autoptr (GPtrArray) specs = pass_specs ();
  for (guint i = 0; i < specs->len; i++)
    check_parity (m, want, args, specs->pdata[i], what);
  FbLiteral *one = run_cpu (m, arena, args, 1, &error);
  g_assert_no_error (error);
  FbLiteral *two = run_cpu (m, arena, args, 2, &error);
  g_assert_no_error (error);
  if (!fb_literal_equal (one, two))
    g_error ("%s: 1 and 2 threads give different results", what);
  fb_arena_free (arena);
  fb_module_free (m);
}

static void
set_u64 (FbLiteral *lit, int i, uint64_t v)
{
  memcpy (lit->data + 8 * i, &v, 8);
}

/* A key with bits in both words, and counters that carry. */
static void
prepare_rng (FbLiteral **args, int n_args)
{
  set_u64 (args[0], 0, 0x0123456789abcdefull);
  set_u64 (args[0], 1, 0xfffffffffffffffeull);
  set_u64 (args[0], 2, 41);
  set_u64 (args[1], 0, 0x9e3779b97f4a7c15ull);
  set_u64 (args[1], 1, 0xfffffffffffffffdull);
}

static void
test_rng_bit_generator (void)
{
  /* Every algorithm, 8- to 64-bit outputs, odd and even shapes, a scalar,
   * states fed from one generator into the next, and outputs large enough
   * to be split over threads. */
  check_text ("rng.hlo",
    "HloModule rng\n"
    "ENTRY e {\n"
    "  s3 = u64[3] parameter(0)\n"
    "  s2 = u64[2] parameter(1)\n"
    "  a = (u64[3], u32[5,3]) rng-bit-generator(s3), algorithm=rng_philox\n"
    "  as = u64[3] get-tuple-element(a), index=0\n"
    "  b = (u64[3], u64[7]) rng-bit-generator(as), algorithm=rng_default\n"
    "  c = (u64[2], s16[9]) rng-bit-generator(s2), algorithm=rng_philox\n"
    "  d = (u64[2], u32[3,5]) rng-bit-generator(s2), algorithm=rng_three_fry\n"
    "  ds = u64[2] get-tuple-element(d), index=0\n"
    "  e = (u64[2], u8[4,6]) rng-bit-generator(ds), algorithm=rng_three_fry\n"
    "  es = u64[2] get-tuple-element(e), index=0\n"
    "  f = (u64[2], u64[5]) rng-bit-generator(es), algorithm=rng_three_fry\n"
    "  g = (u64[2], s32[]) rng-bit-generator(s2), algorithm=rng_three_fry\n"
    "  h = (u64[2], u32[3,4,2]) rng-bit-generator(s2), algorithm=rng_three_fry\n"
    "  i = (u64[3], u32[64,100]) rng-bit-generator(s3), algorithm=rng_philox\n"
    "  j = (u64[2], u32[64,101]) rng-bit-generator(s2), algorithm=rng_three_fry\n"
    "  ROOT t = ((u64[3], u32[5,3]), (u64[3], u64[7]), (u64[2], s16[9]), (u64[2], u32[3,5]), (u64[2], u8[4,6]),"
    " (u64[2], u64[5]), (u64[2], s32[]), (u64[2], u32[3,4,2]), (u64[3], u32[64,100]), (u64[2], u32[64,101]))"
    " tuple(a, b, c, d, e, f, g, h, i, j)\n"
    "}\n", prepare_rng);
}

/* Seeded values in [-1, 1) for both parts of complex parameters. */
static void
prepare_complex (FbLiteral **args, int n_args)
{
  GRand *rand = g_rand_new_with_seed (11);
  for (int p = 0; p < n_args; p++)
    {
      FbElemType t = args[p]->shape->type;
      int64_t n = 2 * fb_shape_elements (args[p]->shape);
      for (int64_t i = 0; i < n && fb_elem_type_kind (t) == FB_KIND_COMPLEX; i++)
        if (t == FB_C64)
          ((float *) args[p]->data)[i] = (float) g_rand_double_range (rand, -1, 1);
        else
          ((double *) args[p]->data)[i] = g_rand_double_range (rand, -1, 1);
    }
  g_rand_free (rand);
}

static void
test_fft (void)
{
  /* Power-of-two and other lengths, 1 to 3 transformed dimensions, c64
   * and c128, and a real signal through RFFT and back through IRFFT. */
  check_text ("fft.hlo",
    "HloModule fft\n"
    "ENTRY e {\n"
    "  x = c64[3,8] parameter(0)\n"
    "  f = c64[3,8] fft(x), fft_type=FFT, fft_length={8}\n"
    "  i = c64[3,8] fft(x), fft_type=IFFT, fft_length={3,8}\n"
    "  r = f32[2,6,5] parameter(1)\n"
    "  rf = c64[2,6,3] fft(r), fft_type=RFFT, fft_length={6,5}\n"
    "  ir = f32[2,6,5] fft(rf), fft_type=IRFFT, fft_length={6,5}\n"
    "  re2 = f32[4,8] parameter(2)\n"
    "  rf8 = c64[4,5] fft(re2), fft_type=RFFT, fft_length={8}\n"
    "  ir8 = f32[4,8] fft(rf8), fft_type=IRFFT, fft_length={8}\n"
    "  dx = c128[2,3,5] parameter(3)\n"
    "  d = c128[2,3,5] fft(dx), fft_type=FFT, fft_length={2,3,5}\n"
    "  big = c64[1200,16] parameter(4)\n"
    "  fb = c64[1200,16] fft(big), fft_type=FFT, fft_length={16}\n"
    "  ROOT t = (c64[3,8], c64[3,8], c64[2,6,3], f32[2,6,5], c64[4,5], f32[4,8], c128[2,3,5], c64[1200,16])"
    " tuple(f, i, rf, ir, rf8, ir8, d, fb)\n"
    "}\n", prepare_complex);
}

/* Symmetric positive definite matrices M M^T + n I, except the last of
 * the batch, which has a negative pivot. */
static void
prepare_spd (FbLiteral **args, int n_args)
{
  for (int p = 0; p < n_args; p++)
    {
      const FbShape *s = args[p]->shape;
      int64_t n = s->dims[s->rank - 1], batches = fb_shape_elements (s) / (n * n);
      g_autofree double *m = g_new (double, n * n);
      for (int64_t b = 0; b < batches; b++)
        {
          for (int64_t i = 0; i < n * n; i++)
            m[i] = fb_literal_get_f64 (args[p], b * n * n + i);
          for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
              {
                double v = i == j ? (double) n : 0.0;
                for (int64_t k = 0; k < n; k++)
                  v += m[i * n + k] * m[j * n + k];
                if (b == batches - 1 && i == 2 && j == 2)
                  v = -1;
                fb_literal_set_f64 (args[p], b * n * n + i * n + j, v);
              }
        }
    }
}

static void
test_cholesky (void)
{
  check_text ("cholesky.hlo",
    "HloModule cholesky\n"
    "ENTRY e {\n"
    "  a = f32[3,4,4] parameter(0)\n"
    "  b = f64[2,5,5] parameter(1)\n"
    "  l = f32[3,4,4] cholesky(a), lower=true\n"
    "  u = f32[3,4,4] cholesky(a), lower=false\n"
    "  dl = f64[2,5,5] cholesky(b), lower=true\n"
    "  du = f64[2,5,5] cholesky(b)\n"
    "  ROOT t = (f32[3,4,4], f32[3,4,4], f64[2,5,5], f64[2,5,5]) tuple(l, u, dl, du)\n"
    "}\n", prepare_spd);
}

/* Diagonals of a away from zero, so that every solve is well conditioned. */
static void
prepare_triangular (FbLiteral **args, int n_args)
{
  for (int p = 0; p < n_args; p++)
    {
      const FbShape *s = args[p]->shape;
      if (s->rank != 3 || s->dims[1] != s->dims[2])
        continue;
      int64_t n = s->dims[2];
      for (int64_t b = 0; b < s->dims[0]; b++)
        for (int64_t i = 0; i < n; i++)
          fb_literal_set_f64 (args[p], (b * n + i) * n + i, 3.0 + (double) i);
    }
}

static void
test_triangular_solve (void)
{
  GString *hlo = g_string_new ("HloModule trsm\nENTRY e {\n"
                               "  a = f32[2,4,4] parameter(0)\n"
                               "  bl = f32[2,4,3] parameter(1)\n"
                               "  br = f32[2,3,4] parameter(2)\n"
                               "  da = f64[1,5,5] parameter(3)\n"
                               "  db = f64[1,5,2] parameter(4)\n");
  GString *types = g_string_new (NULL), *names = g_string_new (NULL);
  int k = 0;
  for (int left = 0; left < 2; left++)
    for (int lower = 0; lower < 2; lower++)
      for (int unit = 0; unit < 2; unit++)
        for (int trans = 0; trans < 3; trans++)
          {
            static const char *const how[3] = { "NO_TRANSPOSE", "TRANSPOSE", "ADJOINT" };
            const char *shape = left ? "f32[2,4,3]" : "f32[2,3,4]";
            g_string_append_printf (hlo, "  x%d = %s triangular-solve(a, %s), left_side=%s, lower=%s, "
                                    "unit_diagonal=%s, transpose_a=%s\n", k, shape, left ? "bl" : "br",
                                    left ? "true" : "false", lower ? "true" : "false", unit ? "true" : "false",
                                    how[trans]);
            g_string_append_printf (types, "%s, ", shape);
            g_string_append_printf (names, "x%d, ", k);
            k++;
          }
  g_string_append (hlo, "  d = f64[1,5,2] triangular-solve(da, db), left_side=true, lower=true, "
                        "transpose_a=TRANSPOSE\n");
  g_string_append_printf (hlo, "  ROOT t = (%sf64[1,5,2]) tuple(%sd)\n}\n", types->str, names->str);
  check_text ("triangular-solve.hlo", hlo->str, prepare_triangular);
  g_string_free (types, TRUE);
  g_string_free (names, TRUE);
  g_string_free (hlo, TRUE);
}

static void
test_windows (void)
{
  /* Pooling windows that hang off the edges (padding), with strides,
   * reducers written either way round, in three dimensions; then the
   * max-pool gradient with padding and with the comparison reversed. */
  check_text ("windows.hlo",
    "HloModule windows\n"
    "mx { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT m = f32[] maximum(a, b) }\n"
    "mn { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT m = f32[] minimum(b, a) }\n"
    "ad { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT s = f32[] add(b, a) }\n"
    "ge { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT c = pred[] compare(a, b), direction=GE }\n"
    "le { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT c = pred[] compare(b, a), direction=LE }\n"
    "lt { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT c = pred[] compare(a, b), direction=LT }\n"
    "da { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT s = f32[] add(b, a) }\n"
    "ENTRY e {\n"
    "  x = f32[2,3,7,9] parameter(0)\n"
    "  s = f32[2,3,4,5] parameter(1)\n"
    "  v = f32[5,6,7] parameter(2)\n"
    "  ninf = f32[] constant(-inf)\n"
    "  inf = f32[] constant(inf)\n"
    "  zero = f32[] constant(0)\n"
    "  a = f32[2,3,4,5] reduce-window(x, ninf), window={size=1x1x3x3 stride=1x1x2x2 pad=0_0x0_0x1_1x1_1}, to_apply=mx\n"
    "  b = f32[2,3,3,4] reduce-window(x, inf), window={size=1x1x2x3 stride=1x1x2x2}, to_apply=mn\n"
    "  c = f32[3,3,4] reduce-window(v, zero), window={size=3x2x3 stride=2x2x2 pad=1_1x0_1x1_1}, to_apply=ad\n"
    "  d = f32[2,3,7,9] select-and-scatter(x, s, zero), window={size=1x1x3x3 stride=1x1x2x2 pad=0_0x0_0x1_1x1_1}, "
    "select=ge, scatter=ad\n"
    "  f = f32[2,3,7,9] select-and-scatter(x, s, zero), window={size=1x1x3x3 stride=1x1x2x2 pad=0_0x0_0x1_1x1_1}, "
    "select=le, scatter=ad\n"
    "  ROOT t = (f32[2,3,4,5], f32[2,3,3,4], f32[3,3,4], f32[2,3,7,9], f32[2,3,7,9]) tuple(a, b, c, d, f)\n"
    "}\n", NULL);
}

/* Values from a few levels, with +0 and -0, so that windows hold ties:
 * which element a max keeps, and which a select picks, shows. */
static void
prepare_ties (FbLiteral **args, int n_args)
{
  static const float levels[] = { -1.0f, -0.0f, 0.0f, 0.5f, 0.5f, 2.0f };
  for (int a = 0; a < n_args && a <= 2; a += 2)     /* the pooled inputs: parameters 0 and 2 */
    for (int64_t i = 0; i < fb_shape_elements (args[a]->shape); i++)
      ((float *) args[a]->data)[i] = levels[(i * 7 + i / 5) % G_N_ELEMENTS (levels)];
}

static void
test_windows_2x2 (void)
{
  /* The unrolled 2x2 paths: max, min and sum pools with strides 2 and 1,
   * a plane whose last row and column no window reaches, and the max-pool
   * gradient with GE, GT and the comparison written the other way; then
   * windows that tile a plane exactly, eleven to a row (two vectors of four
   * and three more), with LT, a nonzero initial value and the scatter's
   * sum written the other way. */
  check_text ("windows_2x2.hlo",
    "HloModule windows_2x2\n"
    "mx { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT m = f32[] maximum(a, b) }\n"
    "mn { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT m = f32[] minimum(b, a) }\n"
    "ad { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT s = f32[] add(a, b) }\n"
    "ge { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT c = pred[] compare(a, b), direction=GE }\n"
    "gt { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT c = pred[] compare(a, b), direction=GT }\n"
    "le { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT c = pred[] compare(b, a), direction=LE }\n"
    "lt { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT c = pred[] compare(a, b), direction=LT }\n"
    "da { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT s = f32[] add(b, a) }\n"
    "ENTRY e {\n"
    "  x = f32[2,3,7,9] parameter(0)\n"
    "  s = f32[2,3,3,4] parameter(1)\n"
    "  ninf = f32[] constant(-inf)\n"
    "  inf = f32[] constant(inf)\n"
    "  zero = f32[] constant(0)\n"
    "  a = f32[2,3,3,4] reduce-window(x, ninf), window={size=1x1x2x2 stride=1x1x2x2}, to_apply=mx\n"
    "  b = f32[2,3,6,8] reduce-window(x, inf), window={size=1x1x2x2 stride=1x1x1x1}, to_apply=mn\n"
    "  c = f32[2,3,3,4] reduce-window(x, zero), window={size=1x1x2x2 stride=1x1x2x2}, to_apply=ad\n"
    "  d = f32[2,3,7,9] select-and-scatter(x, s, zero), window={size=1x1x2x2 stride=1x1x2x2}, "
    "select=ge, scatter=ad\n"
    "  f = f32[2,3,7,9] select-and-scatter(x, s, zero), window={size=1x1x2x2 stride=1x1x2x2}, "
    "select=gt, scatter=ad\n"
    "  g = f32[2,3,7,9] select-and-scatter(x, s, zero), window={size=1x1x2x2 stride=1x1x2x2}, "
    "select=le, scatter=ad\n"
    "  x2 = f32[2,2,6,22] parameter(2)\n"
    "  s2 = f32[2,2,3,11] parameter(3)\n"
    "  half = f32[] constant(0.5)\n"
    "  h = f32[2,2,6,22] select-and-scatter(x2, s2, half), window={size=1x1x2x2 stride=1x1x2x2}, "
    "select=lt, scatter=da\n"
    "  ROOT t = (f32[2,3,3,4], f32[2,3,6,8], f32[2,3,3,4], f32[2,3,7,9], f32[2,3,7,9], f32[2,3,7,9], "
    "f32[2,2,6,22]) tuple(a, b, c, d, f, g, h)\n"
    "}\n", prepare_ties);
}

/* Batch norm: training, inference on its statistics, and the gradient,
 * over the feature in the middle (the f32 path, one channel per task), in
 * the last place, and first in bf16 (the general path). */
static void
test_batch_norm (void)
{
  check_text ("batch-norm.hlo",
    "HloModule bn\n"
    "ENTRY e {\n"
    "  x = f32[3,5,4,6] parameter(0)\n"
    "  s = f32[5] parameter(1)\n"
    "  o = f32[5] parameter(2)\n"
    "  t = (f32[3,5,4,6], f32[5], f32[5]) batch-norm-training(x, s, o), epsilon=0.001, feature_index=1\n"
    "  y = f32[3,5,4,6] get-tuple-element(t), index=0\n"
    "  m = f32[5] get-tuple-element(t), index=1\n"
    "  v = f32[5] get-tuple-element(t), index=2\n"
    "  dy = f32[3,5,4,6] parameter(3)\n"
    "  g = (f32[3,5,4,6], f32[5], f32[5]) batch-norm-grad(x, s, m, v, dy), epsilon=0.001, feature_index=1\n"
    "  dx = f32[3,5,4,6] get-tuple-element(g), index=0\n"
    "  ds = f32[5] get-tuple-element(g), index=1\n"
    "  do = f32[5] get-tuple-element(g), index=2\n"
    "  i = f32[3,5,4,6] batch-norm-inference(x, s, o, m, v), epsilon=0.001, feature_index=1\n"
    "  x2 = f32[4,7] parameter(4)\n"
    "  s2 = f32[7] parameter(5)\n"
    "  o2 = f32[7] parameter(6)\n"
    "  t2 = (f32[4,7], f32[7], f32[7]) batch-norm-training(x2, s2, o2), epsilon=0.01, feature_index=1\n"
    "  y2 = f32[4,7] get-tuple-element(t2), index=0\n"
    "  v2 = f32[7] get-tuple-element(t2), index=2\n"
    "  x3 = bf16[6,2,3] parameter(7)\n"
    "  s3 = bf16[6] parameter(8)\n"
    "  o3 = bf16[6] parameter(9)\n"
    "  t3 = (bf16[6,2,3], bf16[6], bf16[6]) batch-norm-training(x3, s3, o3), epsilon=0.001, feature_index=0\n"
    "  y3 = bf16[6,2,3] get-tuple-element(t3), index=0\n"
    "  ROOT r = (f32[3,5,4,6], f32[5], f32[5], f32[3,5,4,6], f32[5], f32[5], f32[3,5,4,6], f32[4,7], f32[7], "
    "bf16[6,2,3]) tuple(y, m, v, dx, ds, do, i, y2, v2, y3)\n"
    "}\n", NULL);
}

static void
test_map (void)
{
  /* A computation of several instructions, one with a constant, and an
   * integer one with three operands. */
  check_text ("map.hlo",
    "HloModule map\n"
    "f {\n"
    "  x = f32[] parameter(0)\n"
    "  y = f32[] parameter(1)\n"
    "  m = f32[] multiply(x, y)\n"
    "  c = f32[] constant(0.5)\n"
    "  s = f32[] add(m, c)\n"
    "  ROOT r = f32[] maximum(s, x)\n"
    "}\n"
    "g {\n"
    "  a = s32[] parameter(0)\n"
    "  b = s32[] parameter(1)\n"
    "  c = s32[] parameter(2)\n"
    "  p = s32[] multiply(a, b)\n"
    "  ROOT r = s32[] subtract(p, c)\n"
    "}\n"
    "ENTRY e {\n"
    "  p0 = f32[6,5] parameter(0)\n"
    "  p1 = f32[6,5] parameter(1)\n"
    "  i0 = s32[7] parameter(2)\n"
    "  i1 = s32[7] parameter(3)\n"
    "  i2 = s32[7] parameter(4)\n"
    "  a = f32[6,5] map(p0, p1), dimensions={0,1}, to_apply=f\n"
    "  b = s32[7] map(i0, i1, i2), dimensions={0}, to_apply=g\n"
    "  ROOT t = (f32[6,5], s32[7]) tuple(a, b)\n"
    "}\n", NULL);
}

static void
test_map_bad_result (void)
{
  /* A mapped computation that does not return the result's type: an
   * error, not a crash. */
  static const char hlo[] =
    "HloModule bad\n"
    "f {\n"
    "  x = f32[] parameter(0)\n"
    "  ROOT r = s32[] convert(x)\n"
    "}\n"
    "ENTRY e {\n"
    "  p = f32[4] parameter(0)\n"
    "  ROOT a = f32[4] map(p), dimensions={0}, to_apply=f\n"
    "}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (hlo, strlen (hlo), "bad.hlo", 0, &error);
  g_assert_no_error (error);
  FbArena *arena = fb_arena_new ();
  FbLiteral **args = make_args (m, arena);
  g_assert_null (run_cpu (m, arena, args, 0, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "f32 scalar"));
  fb_arena_free (arena);
  fb_module_free (m);
}

/* ------------------------------------------------------------- refusals */

static const char custom_call_hlo[] =
  "HloModule cc\n"
  "ENTRY main {\n"
  "  p = f32[4] parameter(0)\n"
  "  ROOT c = f32[4] custom-call(p), custom_call_target=\"MyKernel\"\n"
  "}\n";

static void
test_custom_call_refused (void)
{
  g_autoptr (GError) error = NULL, ierror = NULL;
  FbModule *m = fb_hlo_parse (custom_call_hlo, strlen (custom_call_hlo), "cc.hlo", 0, &error);
  g_assert_no_error (error);
  FbArena *arena = fb_arena_new ();
  FbLiteral **args = make_args (m, arena);
  g_assert_null (run_cpu (m, arena, args, 0, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "\"MyKernel\""));
  g_assert_nonnull (strstr (error->message, "--custom-call MyKernel=identity"));
  /* The same words as the interpreter. */
  g_assert_null (fb_interp_run (m, m->entry, arena, 1, args, NULL, &ierror));
  g_assert_nonnull (ierror);
  g_assert_nonnull (strstr (ierror->message, error->message));

  /* Mapped, it runs and is the identity. */
  FbCustomCallMap *map = fb_custom_call_map_new ();
  g_assert_true (fb_custom_call_map_add_spec (map, "MyKernel=identity", NULL));
  const FbBackend *cpu = fb_backend_lookup ("cpu", NULL);
  FbBackendOptions opts = { .custom_calls = map };
  g_clear_error (&error);
  FbExecutable *exe = cpu->compile (m, &opts, &error);
  g_assert_no_error (error);
  fb_literal_set_f64 (args[0], 2, 3.5);
  FbLiteral *r = cpu->execute (exe, arena, 1, args, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (fb_literal_get_f64 (r, 2), ==, 3.5);
  cpu->free (exe);
  fb_custom_call_map_free (map);
  fb_arena_free (arena);
  fb_module_free (m);
}

static void
test_bad_arguments (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (custom_call_hlo, strlen (custom_call_hlo), "cc.hlo", 0, &error);
  g_assert_no_error (error);
  FbCustomCallMap *map = fb_custom_call_map_new ();
  g_assert_true (fb_custom_call_map_add_spec (map, "MyKernel=identity", NULL));
  const FbBackend *cpu = fb_backend_lookup ("cpu", NULL);
  FbBackendOptions opts = { .custom_calls = map };
  FbExecutable *exe = cpu->compile (m, &opts, &error);
  g_assert_no_error (error);
  FbArena *arena = fb_arena_new ();
  /* Too few arguments, then one of the wrong shape: errors, not crashes. */
  g_assert_null (cpu->execute (exe, arena, 0, NULL, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_USAGE);
  g_clear_error (&error);
  int64_t d = 5;
  FbLiteral *wrong = fb_literal_new (arena, fb_shape_new_array (arena, FB_F32, 1, &d));
  g_assert_null (cpu->execute (exe, arena, 1, &wrong, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_USAGE);
  g_assert_nonnull (strstr (error->message, "f32[4]"));
  cpu->free (exe);
  fb_custom_call_map_free (map);
  fb_arena_free (arena);
  fb_module_free (m);
}

/* The result is written straight into the caller's arena where it can be:
 * a tuple result mixes values written in place (a kernel's output, a
 * multi-output fusion, a dot) with values that are copied (a parameter, a
 * constant, an alias, one value twice). Each execution's result stays
 * valid and unchanged after the next one runs. */
static const char in_place_hlo[] =
  "HloModule in_place\n"
  "add { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT s = f32[] add(a, b) }\n"
  "fused_rows {\n"
  "  x = f32[7,19] parameter(0)\n"
  "  zero = f32[] constant(0)\n"
  "  s = f32[7] reduce(x, zero), dimensions={1}, to_apply=add\n"
  "  sb = f32[7,19] broadcast(s), dimensions={0}\n"
  "  d = f32[7,19] subtract(x, sb)\n"
  "  ROOT t = (f32[7,19], f32[7]) tuple(d, s)\n"
  "}\n"
  "ENTRY e {\n"
  "  x = f32[7,19] parameter(0)\n"
  "  w = f32[19,5] parameter(1)\n"
  "  c = f32[3] constant({1, 2, 3})\n"
  "  e = f32[7,19] exponential(x)\n"
  "  f = (f32[7,19], f32[7]) fusion(x), kind=kInput, calls=fused_rows\n"
  "  g = f32[7] get-tuple-element(f), index=1\n"
  "  dot = f32[7,5] dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
  "  r = f32[19,7] reshape(e)\n"
  "  ROOT t = (f32[7,19], f32[7,19], (f32[7,19], f32[7]), f32[7], f32[7,5], f32[7,19], f32[3], f32[19,7]) "
  "tuple(e, e, f, g, dot, x, c, r)\n"
  "}\n";

/* The same with the multi-output fusion as the whole result. */
static const char in_place_root_hlo[] =
  "HloModule in_place_root\n"
  "add { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT s = f32[] add(a, b) }\n"
  "fused_rows {\n"
  "  x = f32[7,19] parameter(0)\n"
  "  zero = f32[] constant(0)\n"
  "  s = f32[7] reduce(x, zero), dimensions={1}, to_apply=add\n"
  "  sb = f32[7,19] broadcast(s), dimensions={0}\n"
  "  d = f32[7,19] subtract(x, sb)\n"
  "  ROOT t = (f32[7,19], f32[7]) tuple(d, s)\n"
  "}\n"
  "ENTRY e {\n"
  "  x = f32[7,19] parameter(0)\n"
  "  w = f32[19,5] parameter(1)\n"
  "  ROOT f = (f32[7,19], f32[7]) fusion(x), kind=kInput, calls=fused_rows\n"
  "}\n";

static void
check_in_place (const char *what, const char *hlo)
{
  check_text (what, hlo, NULL);

  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (hlo, strlen (hlo), what, 0, &error);
  g_assert_no_error (error);
  FbArena *arena = fb_arena_new ();
  FbLiteral **args = make_args (m, arena);
  FbLiteral *want = fb_interp_run (m, m->entry, arena, m->entry->n_params, args, NULL, &error);
  g_assert_no_error (error);
  const FbBackend *cpu = fb_backend_lookup ("cpu", NULL);
  FbBackendOptions opts = { 0 };
  FbExecutable *exe = cpu->compile (m, &opts, &error);
  g_assert_no_error (error);
  FbArena *first = fb_arena_new (), *second = fb_arena_new ();
  FbLiteral *r1 = cpu->execute (exe, first, m->entry->n_params, args, &error);
  g_assert_no_error (error);
  /* different inputs for the second run */
  FbLiteral *x2 = fb_literal_copy (arena, args[0]);
  for (int64_t i = 0; i < fb_shape_elements (x2->shape); i++)
    ((float *) x2->data)[i] += 1.0f;
  FbLiteral *args2[2] = { x2, args[1] };
  FbLiteral *r2 = cpu->execute (exe, second, 2, args2, &error);
  g_assert_no_error (error);
  g_autofree char *why = compare (want, r1, "the first result after a second run");
  if (why != NULL)
    g_error ("%s", why);
  g_assert_false (fb_literal_equal (r1, r2));
  fb_arena_free (second);
  fb_arena_free (first);
  cpu->free (exe);
  fb_arena_free (arena);
  fb_module_free (m);
}

static void
test_result_in_place (void)
{
  check_in_place ("in_place.hlo", in_place_hlo);
  check_in_place ("in_place_root.hlo", in_place_root_hlo);
}

/* A kOutput fusion whose epilogue has broadcasts (bias, relu, the relu's
 * mask for the backward pass) and two outputs, one dot with a transposed
 * right side and one that also outputs the product itself: the epilogue
 * runs as a generated kernel over the GEMM's result. */
static void
test_output_fusion_epilogue (void)
{
  check_text ("epilogue.hlo",
    "HloModule epilogue\n"
    "fused_relu {\n"
    "  x = f32[33,70] parameter(0)\n"
    "  w = f32[50,70] parameter(1)\n"
    "  bias = f32[50] parameter(2)\n"
    "  zero = f32[] parameter(3)\n"
    "  d = f32[33,50] dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={1}\n"
    "  bb = f32[33,50] broadcast(bias), dimensions={1}\n"
    "  a = f32[33,50] add(d, bb)\n"
    "  zb = f32[33,50] broadcast(zero), dimensions={}\n"
    "  r = f32[33,50] maximum(a, zb)\n"
    "  c = pred[33,50] compare(a, zb), direction=GT\n"
    "  one = f32[] constant(1)\n"
    "  ob = f32[33,50] broadcast(one), dimensions={}\n"
    "  m = f32[33,50] select(c, ob, zb)\n"
    "  ROOT t = (f32[33,50], f32[33,50]) tuple(r, m)\n"
    "}\n"
    "fused_scale {\n"
    "  p = f32[50,33] parameter(0)\n"
    "  q = f32[33,50] parameter(1)\n"
    "  s = f32[] parameter(2)\n"
    "  d = f32[50,50] dot(p, q), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
    "  sb = f32[50,50] broadcast(s), dimensions={}\n"
    "  e = f32[50,50] multiply(d, sb)\n"
    "  ROOT t = (f32[50,50], f32[50,50]) tuple(e, d)\n"
    "}\n"
    "ENTRY e {\n"
    "  x = f32[33,70] parameter(0)\n"
    "  w = f32[50,70] parameter(1)\n"
    "  bias = f32[50] parameter(2)\n"
    "  p = f32[50,33] parameter(3)\n"
    "  zero = f32[] constant(0)\n"
    "  half = f32[] constant(0.5)\n"
    "  f = (f32[33,50], f32[33,50]) fusion(x, w, bias, zero), kind=kOutput, calls=fused_relu\n"
    "  r = f32[33,50] get-tuple-element(f), index=0\n"
    "  g = (f32[50,50], f32[50,50]) fusion(p, r, half), kind=kOutput, calls=fused_scale\n"
    "  ROOT t = ((f32[33,50], f32[33,50]), (f32[50,50], f32[50,50])) tuple(f, g)\n"
    "}\n", NULL);
}

/* Weight gradients read through a transpose by the optimizer's update (a
 * dense layer's backward pass): the dots write their results transposed
 * for the fusion, except the one that has a second user. */
static void
test_transposed_result (void)
{
  check_text ("transposed.hlo",
    "HloModule transposed\n"
    "fused_update {\n"
    "  w = f32[40,30] parameter(0)\n"
    "  g = f32[30,40] parameter(1)\n"
    "  v = f32[7,40] parameter(2)\n"
    "  h = f32[40,7] parameter(3)\n"
    "  lr = f32[] constant(0.01)\n"
    "  lb = f32[40,30] broadcast(lr), dimensions={}\n"
    "  gt = f32[40,30] transpose(g), dimensions={1,0}\n"
    "  s = f32[40,30] multiply(gt, lb)\n"
    "  nw = f32[40,30] subtract(w, s)\n"
    "  vt = f32[40,7] transpose(v), dimensions={1,0}\n"
    "  nh = f32[40,7] add(h, vt)\n"
    "  ROOT t = (f32[40,30], f32[40,7]) tuple(nw, nh)\n"
    "}\n"
    "ENTRY e {\n"
    "  w = f32[40,30] parameter(0)\n"
    "  x = f32[16,30] parameter(1)\n"
    "  y = f32[16,40] parameter(2)\n"
    "  a = f32[16,7] parameter(3)\n"
    "  h = f32[40,7] parameter(4)\n"
    "  g = f32[30,40] dot(x, y), lhs_contracting_dims={0}, rhs_contracting_dims={0}\n"
    "  v = f32[7,40] dot(a, y), lhs_contracting_dims={0}, rhs_contracting_dims={0}\n"
    "  f = (f32[40,30], f32[40,7]) fusion(w, g, v, h), kind=kLoop, calls=fused_update\n"
    "  ROOT t = ((f32[40,30], f32[40,7]), f32[7,40]) tuple(f, v)\n"
    "}\n", NULL);
}

/* --------------------------------------------------------- convolution */

/* The convolution shapes of a CNN's training step and their relatives, each
 * run by both methods (im2col + GEMM and direct loops) against the
 * interpreter. */
static const char conv_hlo[] =
  "HloModule convs\n"
  "ENTRY e {\n"
  /* A 1-channel input, padded, with an odd width. */
  "  x1 = f32[3,1,9,11] parameter(0)\n"
  "  k1 = f32[4,1,5,5] parameter(1)\n"
  "  c1 = f32[3,4,9,11] convolution(x1, k1), window={size=5x5 pad=2_2x2_2}, dim_labels=bf01_oi01->bf01\n"
  /* Stride 2 with uneven padding. */
  "  x2 = f32[2,3,9,7] parameter(2)\n"
  "  k2 = f32[5,3,3,3] parameter(3)\n"
  "  c2 = f32[2,5,4,4] convolution(x2, k2), window={size=3x3 stride=2x2 pad=1_0x1_1}, dim_labels=bf01_oi01->bf01\n"
  /* Gradient of the input of a stride-2 convolution: lhs dilation,
   * padding, a reversed kernel stored [rows, columns, in, out]. */
  "  x3 = f32[2,4,4,4] parameter(4)\n"
  "  k3 = f32[3,3,4,2] parameter(5)\n"
  "  c3 = f32[2,2,9,9] convolution(x3, k3), window={size=3x3 pad=2_2x2_2 lhs_dilate=2x2 rhs_reversal=1x1}, "
  "dim_labels=bf01_01io->bf01\n"
  /* Gradient of a kernel: the window is the output gradient, the sum runs
   * over batch x rows x columns (16 x 8 x 7). */
  "  x4 = f32[16,3,10,9] parameter(6)\n"
  "  k4 = f32[16,4,8,7] parameter(7)\n"
  "  c4 = f32[4,3,5,5] convolution(x4, k4), window={size=8x7 pad=1_1x1_1}, dim_labels=fb01_io01->fb01\n"
  /* ... and of a stride-2 convolution's kernel: rhs dilation. */
  "  x5 = f32[4,2,9,9] parameter(8)\n"
  "  k5 = f32[4,3,4,4] parameter(9)\n"
  "  c5 = f32[3,2,3,3] convolution(x5, k5), window={size=4x4 rhs_dilate=2x2}, dim_labels=fb01_io01->fb01\n"
  /* Channels last. */
  "  x6 = f32[2,7,7,3] parameter(10)\n"
  "  k6 = f32[3,3,3,4] parameter(11)\n"
  "  c6 = f32[2,7,7,4] convolution(x6, k6), window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f\n"
  /* Feature groups, and depthwise with a channel multiplier. */
  "  x7 = f32[2,6,7,7] parameter(12)\n"
  "  k7 = f32[6,2,3,3] parameter(13)\n"
  "  c7 = f32[2,6,7,7] convolution(x7, k7), window={size=3x3 pad=1_1x1_1}, dim_labels=bf01_oi01->bf01, "
  "feature_group_count=3\n"
  "  x8 = f32[2,4,6,5] parameter(14)\n"
  "  k8 = f32[8,1,3,3] parameter(15)\n"
  "  c8 = f32[2,8,3,3] convolution(x8, k8), window={size=3x3 stride=2x2 pad=1_1x1_1}, dim_labels=bf01_oi01->bf01, "
  "feature_group_count=4\n"
  /* One spatial dimension, stride 2; and none. */
  "  x9 = f32[2,3,10] parameter(16)\n"
  "  k9 = f32[4,3,3] parameter(17)\n"
  "  c9 = f32[2,4,5] convolution(x9, k9), window={size=3 stride=2 pad=1_1}, dim_labels=bf0_oi0->bf0\n"
  "  x10 = f32[5,6] parameter(18)\n"
  "  k10 = f32[6,3] parameter(19)\n"
  "  c10 = f32[5,3] convolution(x10, k10), dim_labels=bf_io->bf\n"
  /* bf16 operands and result. */
  "  x11 = bf16[2,3,6,6] parameter(20)\n"
  "  k11 = bf16[2,3,3,3] parameter(21)\n"
  "  c11 = bf16[2,2,6,6] convolution(x11, k11), window={size=3x3 pad=1_1x1_1}, dim_labels=bf01_oi01->bf01\n"
  /* Padded by the kernel less one on every side: the gradient of an
   * input, which oneDNN runs as a backward-data convolution; plain, and
   * with the kernel stored [rows, columns, in, out] and reversed. */
  "  x12 = f32[3,4,5,6] parameter(22)\n"
  "  k12 = f32[3,4,3,2] parameter(23)\n"
  "  c12 = f32[3,3,7,7] convolution(x12, k12), window={size=3x2 pad=2_2x1_1}, dim_labels=bf01_oi01->bf01\n"
  "  x13 = f32[4,5,4,4] parameter(24)\n"
  "  k13 = f32[3,3,5,2] parameter(25)\n"
  "  c13 = f32[4,2,6,6] convolution(x13, k13), window={size=3x3 pad=2_2x2_2 rhs_reversal=1x1}, "
  "dim_labels=bf01_01io->bf01\n"
  "  ROOT t = (f32[3,4,9,11], f32[2,5,4,4], f32[2,2,9,9], f32[4,3,5,5], f32[3,2,3,3], f32[2,7,7,4], "
  "f32[2,6,7,7], f32[2,8,3,3], f32[2,4,5], f32[5,3], bf16[2,2,6,6], f32[3,3,7,7], f32[4,2,6,6]) "
  "tuple(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13)\n"
  "}\n";

/* A convolution followed by bias and relu, as a kOutput fusion takes it. */
static const char conv_epilogue_hlo[] =
  "HloModule conv_relu\n"
  "ENTRY e {\n"
  "  x = f32[4,1,12,13] parameter(0)\n"
  "  k = f32[6,1,5,5] parameter(1)\n"
  "  b = f32[6] parameter(2)\n"
  "  c = f32[4,6,12,13] convolution(x, k), window={size=5x5 pad=2_2x2_2}, dim_labels=bf01_oi01->bf01\n"
  "  bb = f32[4,6,12,13] broadcast(b), dimensions={1}\n"
  "  s = f32[4,6,12,13] add(c, bb)\n"
  "  z = f32[] constant(0)\n"
  "  zb = f32[4,6,12,13] broadcast(z), dimensions={}\n"
  "  ROOT r = f32[4,6,12,13] maximum(s, zb)\n"
  "}\n";

/* Which convolutions of @hlo oneDNN takes, by name, in a string. */
static char *
onednn_convs (const char *hlo)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (hlo, strlen (hlo), "convs", 0, &error);
  g_assert_no_error (error);
  GString *names = g_string_new (NULL);
  for (FbInstr *i = m->entry->first; i; i = i->next)
    if (i->opcode == FB_OP_CONVOLUTION && _fb_cpu_conv_onednn_applies (i))
      g_string_append_printf (names, "%s ", i->name);
  fb_module_free (m);
  return g_string_free (names, FALSE);
}

static void
test_conv_method (gconstpointer data)
{
  const char *how = data;
  if (g_str_equal (how, "onednn"))
    {
      /* oneDNN takes every 2-D and 1-D convolution here (strides, uneven
       * padding, kernel dilation, groups, channels last, bf16) but input
       * dilation (c3), which its forward convolution lacks. */
      g_autofree char *taken = onednn_convs (conv_hlo);
      g_autofree char *relu = onednn_convs (conv_epilogue_hlo);
      if (!_fb_cpu_have_onednn ())
        g_assert_cmpstr (taken, ==, "");
      else
        {
          g_assert_cmpstr (relu, ==, "c ");
          for (const char *const *want = (const char *const[]) { "c1 ", "c2 ", "c4 ", "c5 ", "c6 ", "c7 ", "c8 ", "c9 ", "c10 ", "c11 ", "c12 ",
                                                   "c13 ", NULL }; *want;
               want++)
            if (strstr (taken, *want) == NULL)
              g_error ("oneDNN should take %s; it takes %s", *want, taken);
          if (strstr (taken, "c3 "))
            g_error ("oneDNN has no kernel for input dilation, yet takes c3");
        }
    }
  _fb_cpu_conv_force (how);
  check_text ("convs.hlo", conv_hlo, NULL);
  check_text ("conv-relu.hlo", conv_epilogue_hlo, NULL);
  _fb_cpu_conv_force (NULL);
}

/* The method chosen for a convolution is kept on disk beside the kernels:
 * a second process reads it instead of timing again, and a damaged entry
 * is timed again and rewritten. */
static char *
choose_method (FbCpuPool *pool, const char *dir, const FbInstr *conv)
{
  g_autoptr (GError) error = NULL;
  const char *how = NULL;
  _fb_cpu_conv_forget ();       /* as if in a new process */
  g_assert_true (_fb_cpu_conv_choose (pool, dir, conv, &how, &error));
  g_assert_no_error (error);
  return g_strdup (how);
}

static char *
method_entry (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  const char *name, *found = NULL;
  int n = 0;
  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, "conv-") && g_str_has_suffix (name, ".method"))
      {
        found = name;
        n++;
      }
  g_assert_cmpint (n, ==, 1);
  return g_build_filename (dir, found, NULL);
}

static void
test_conv_method_cache (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (conv_epilogue_hlo, strlen (conv_epilogue_hlo), "conv-relu.hlo", 0, &error);
  g_assert_no_error (error);
  FbInstr *conv = NULL;
  for (FbInstr *i = m->entry->first; i; i = i->next)
    if (i->opcode == FB_OP_CONVOLUTION)
      conv = i;
  g_autofree char *dir = g_dir_make_tmp ("fusebox-methods-XXXXXX", &error);
  g_assert_no_error (error);
  FbCpuPool *pool = _fb_cpu_pool_new (2);

  g_autofree char *first = choose_method (pool, dir, conv);
  g_autofree char *path = method_entry (dir);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_assert_cmpstr (g_strstrip (text), ==, first);

  /* What the entry says wins over timing: name the method not chosen. */
  const char *other = g_str_equal (first, "direct") ? "im2col" : "direct";
  g_assert_true (g_file_set_contents (path, other, -1, NULL));
  g_autofree char *second = choose_method (pool, dir, conv);
  g_assert_cmpstr (second, ==, other);

  /* A damaged entry is timed again and rewritten. */
  g_assert_true (g_file_set_contents (path, "im2c\xff", -1, NULL));
  g_autofree char *third = choose_method (pool, dir, conv);
  g_autofree char *again = NULL;
  g_assert_true (g_file_get_contents (path, &again, NULL, NULL));
  g_assert_cmpstr (g_strstrip (again), ==, third);
  g_assert_true (g_str_equal (third, "direct") || g_str_equal (third, "im2col") || g_str_equal (third, "onednn"));

  /* Without a disk cache it is timed and nothing is written. */
  g_autofree char *none = choose_method (pool, NULL, conv);
  g_assert_nonnull (none);
  g_autofree char *still = method_entry (dir);     /* the one entry, and no other */
  g_autofree char *unchanged = NULL;
  g_assert_true (g_file_get_contents (still, &unchanged, NULL, NULL));
  g_assert_cmpstr (g_strstrip (unchanged), ==, third);
  _fb_cpu_conv_forget ();
  g_unlink (path);
  g_rmdir (dir);
  _fb_cpu_pool_free (pool);
  fb_module_free (m);
}

/* Shapes whose unfolded matrix is split: a filter gradient whose sum
 * (batch x rows x columns = 64 x 28 x 28) is long enough to be split into
 * blocks, which must add up to what the interpreter computes, the same with
 * one thread or two; and large outputs split into tiles. */
static void
test_conv_long_contraction (void)
{
  _fb_cpu_conv_force ("im2col");
  check_text ("filter-gradient.hlo",
    "HloModule filter_gradient\n"
    "ENTRY e {\n"
    "  x = f32[64,1,28,28] parameter(0)\n"
    "  dy = f32[64,3,28,28] parameter(1)\n"
    "  ROOT dk = f32[3,1,5,5] convolution(x, dy), window={size=28x28 pad=2_2x2_2}, dim_labels=fb01_io01->fb01\n"
    "}\n", NULL);
  /* A large image, unfolded a few output rows at a time; and many input
   * features with a wide row, where even one output row is split. */
  check_text ("large.hlo",
    "HloModule large\n"
    "ENTRY e {\n"
    "  x = f32[1,3,64,64] parameter(0)\n"
    "  k = f32[4,3,3,3] parameter(1)\n"
    "  a = f32[1,4,64,64] convolution(x, k), window={size=3x3 pad=1_1x1_1}, dim_labels=bf01_oi01->bf01\n"
    "  y = f32[1,64,4,120] parameter(2)\n"
    "  w = f32[2,64,3,3] parameter(3)\n"
    "  b = f32[1,2,4,120] convolution(y, w), window={size=3x3 pad=1_1x1_1}, dim_labels=bf01_oi01->bf01\n"
    "  ROOT t = (f32[1,4,64,64], f32[1,2,4,120]) tuple(a, b)\n"
    "}\n", NULL);
  _fb_cpu_conv_force (NULL);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Dots large enough to be split over the thread pool, in slabs of rows or
 * columns of the result, with sizes that are not multiples of the slabs:
 * each operand in place or transposed, a batch, f64, and a result written
 * transposed for an update fusion. */
static const char split_gemm_hlo[] =
  "HloModule split_gemm\n"
  "fused_update {\n"
  "  w = f32[130,150] parameter(0)\n"
  "  g = f32[150,130] parameter(1)\n"
  "  gt = f32[130,150] transpose(g), dimensions={1,0}\n"
  "  ROOT nw = f32[130,150] subtract(w, gt)\n"
  "}\n"
  "ENTRY e {\n"
  "  a = f32[100,300] parameter(0)\n"
  "  b = f32[300,80] parameter(1)\n"
  "  nn = f32[100,80] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
  "  at = f32[300,100] parameter(2)\n"
  "  b2 = f32[300,90] parameter(3)\n"
  "  tn = f32[100,90] dot(at, b2), lhs_contracting_dims={0}, rhs_contracting_dims={0}\n"
  "  a3 = f32[70,300] parameter(4)\n"
  "  bt = f32[200,300] parameter(5)\n"
  "  nt = f32[70,200] dot(a3, bt), lhs_contracting_dims={1}, rhs_contracting_dims={1}\n"
  "  a4 = f32[300,70] parameter(6)\n"
  "  tt = f32[70,200] dot(a4, bt), lhs_contracting_dims={0}, rhs_contracting_dims={1}\n"
  "  x = f32[2,100,250] parameter(7)\n"
  "  y = f32[2,250,90] parameter(8)\n"
  "  bd = f32[2,100,90] dot(x, y), lhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_batch_dims={0}, "
  "rhs_contracting_dims={1}\n"
  "  da = f64[100,300] parameter(9)\n"
  "  db = f64[300,80] parameter(10)\n"
  "  dd = f64[100,80] dot(da, db), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
  "  u = f32[120,150] parameter(11)\n"
  "  v = f32[120,130] parameter(12)\n"
  "  w = f32[130,150] parameter(13)\n"
  "  g = f32[150,130] dot(u, v), lhs_contracting_dims={0}, rhs_contracting_dims={0}\n"
  "  f = f32[130,150] fusion(w, g), kind=kLoop, calls=fused_update\n"
  "  ROOT t = (f32[100,80], f32[100,90], f32[70,200], f32[70,200], f32[2,100,90], f64[100,80], f32[130,150]) "
  "tuple(nn, tn, nt, tt, bd, dd, f)\n"
  "}\n";

static void
test_split_gemm (void)
{
  check_text ("split_gemm.hlo", split_gemm_hlo, NULL);

  /* Three threads: six slabs, the last one short. */
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (split_gemm_hlo, strlen (split_gemm_hlo), "split_gemm.hlo", 0, &error);
  g_assert_no_error (error);
  FbArena *arena = fb_arena_new ();
  FbLiteral **args = make_args (m, arena);
  FbLiteral *want = fb_interp_run (m, m->entry, arena, m->entry->n_params, args, NULL, &error);
  g_assert_no_error (error);
  FbModule *c = with_passes (m, "all");
  FbLiteral *got = run_cpu (c, arena, args, 3, &error);
  g_assert_no_error (error);
  g_autofree char *why = compare (want, got, "split_gemm.hlo on 3 threads");
  if (why != NULL)
    g_error ("%s", why);
  fb_module_free (c);
  fb_arena_free (arena);
  fb_module_free (m);
}

/* Both GEMM libraries, called as the backend calls them (row-major, either
 * side transposed, leading dimensions wider than the matrix, beta 0 and 1),
 * against sums in double. Shapes on both sides of the size at which the
 * backend changes library. */
static void
test_gemm_libraries (void)
{
  static const int64_t shapes[][3] = { { 128, 256, 200 }, { 6, 98, 400 }, { 70, 64, 33 }, { 1, 65, 7 } };
  for (int lib = FB_CPU_GEMM_OPENBLAS; lib <= FB_CPU_GEMM_ONEDNN; lib++)
    for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
      for (int t = 0; t < 8; t++)
        {
          gboolean ta = t & 1, tb = (t >> 1) & 1;
          float beta = (t >> 2) & 1 ? 1.0f : 0.0f;
          int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
          int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
          float *a = g_new (float, (ta ? k : m) * lda), *b = g_new (float, (tb ? n : k) * ldb);
          float *c = g_new (float, m * ldc);
          for (int64_t i = 0; i < (ta ? k : m) * lda; i++)
            a[i] = (float) ((i * 7919) % 23) / 11.0f - 1.0f;
          for (int64_t i = 0; i < (tb ? n : k) * ldb; i++)
            b[i] = (float) ((i * 104729) % 19) / 9.0f - 1.0f;
          for (int64_t i = 0; i < m * ldc; i++)
            c[i] = (float) (i % 5) - 2.0f;
          float *c0 = g_memdup2 (c, m * ldc * sizeof (float));
          _fb_cpu_sgemm_here (lib, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
          for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < ldc; j++)
              {
                double want = c0[i * ldc + j], mag = fabs (want);
                if (j < n)
                  {
                    want *= beta;
                    mag *= beta;
                    for (int64_t p = 0; p < k; p++)
                      {
                        double x = ta ? a[p * lda + i] : a[i * lda + p];
                        double y = tb ? b[j * ldb + p] : b[p * ldb + j];
                        want += x * y;
                        mag += fabs (x * y);
                      }
                  }
                if (fabs (c[i * ldc + j] - want) > 1e-6 * mag + 1e-30)
                  g_error ("%s sgemm %ldx%ldx%ld ta=%d tb=%d beta=%g: C[%ld,%ld] = %g, want %g%s",
                           lib == FB_CPU_GEMM_ONEDNN ? "oneDNN" : "OpenBLAS", (long) m, (long) n, (long) k, ta, tb,
                           beta, (long) i, (long) j, c[i * ldc + j], want,
                           j >= n ? " (a column beyond C, which must stay as it was)" : "");
              }
          g_free (a);
          g_free (b);
          g_free (c);
          g_free (c0);
        }
}

/* Two independent GEMMs next to each other run at the same time, one per
 * thread (both below the size from which a GEMM is split, so they pair
 * whichever library multiplies them). The inputs of the first die with it,
 * and the second's output is nearly as large as each of them: the buffers
 * must still not share memory while both run. */
static const char gemm_pair_hlo[] =
  "HloModule gemm_pair\n"
  "ENTRY e {\n"
  "  a = f32[96,128] parameter(0)\n"
  "  b = f32[128,96] parameter(1)\n"
  "  c = f32[96,96] parameter(2)\n"
  "  d = f32[96,96] parameter(3)\n"
  "  na = f32[96,128] negate(a)\n"
  "  eb = f32[128,96] exponential(b)\n"
  "  s = f32[96,96] dot(na, eb), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
  "  t = f32[96,96] dot(c, d), lhs_contracting_dims={1}, rhs_contracting_dims={1}\n"
  "  ROOT u = f32[96,96] subtract(s, t)\n"
  "}\n";

static void
test_gemm_pair (void)
{
  check_text ("gemm_pair.hlo", gemm_pair_hlo, NULL);
}

/* A dense layer's forward and backward pass with an SGD update. */
static const char dense_hlo[] =
  "HloModule dense\n"
  "ENTRY e {\n"
  "  x = f32[128,96] parameter(0)\n"
  "  w = f32[96,200] parameter(1)\n"
  "  dy = f32[128,200] parameter(2)\n"
  "  y = f32[128,200] dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n"
  "  zero = f32[] constant(0)\n"
  "  zb = f32[128,200] broadcast(zero), dimensions={}\n"
  "  r = f32[128,200] maximum(y, zb)\n"
  "  dw = f32[96,200] dot(x, dy), lhs_contracting_dims={0}, rhs_contracting_dims={0}\n"
  "  dx = f32[128,96] dot(dy, w), lhs_contracting_dims={1}, rhs_contracting_dims={1}\n"
  "  lr = f32[] constant(0.125)\n"
  "  lb = f32[96,200] broadcast(lr), dimensions={}\n"
  "  s = f32[96,200] multiply(dw, lb)\n"
  "  nw = f32[96,200] subtract(w, s)\n"
  "  ROOT t = (f32[128,200], f32[128,96], f32[96,200]) tuple(r, dx, nw)\n"
  "}\n";

/* One executable runs the dense layer several times with new inputs each
 * time: the buffers it keeps between runs never leak one run's values into
 * the next. */
static void
test_repeated_execute (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m0 = fb_hlo_parse (dense_hlo, strlen (dense_hlo), "dense.hlo", 0, &error);
  g_assert_no_error (error);
  FbModule *m = with_passes (m0, "all");
  FbArena *arena = fb_arena_new ();
  FbLiteral **args = make_args (m, arena);
  const FbBackend *cpu = fb_backend_lookup ("cpu", NULL);
  FbBackendOptions opts = { 0 };
  FbExecutable *exe = cpu->compile (m, &opts, &error);
  g_assert_no_error (error);
  FbLiteral *prev = NULL;
  for (int run = 0; run < 3; run++)
    {
      /* New inputs for every run; the weights are the last run's result. */
      for (int p = 0; p < 3; p += 2)
        for (int64_t i = 0; i < fb_shape_elements (args[p]->shape); i++)
          ((float *) args[p]->data)[i] = (float) (((i * (run + 3) + p) % 17) - 8) / 8.0f;
      if (prev != NULL)
        args[1] = prev->elems[2];
      FbLiteral *want = fb_interp_run (m, m->entry, arena, 3, args, NULL, &error);
      g_assert_no_error (error);
      FbLiteral *got = cpu->execute (exe, arena, 3, args, &error);
      g_assert_no_error (error);
      g_autofree char *where = g_strdup_printf ("dense.hlo, run %d", run + 1);
      g_autofree char *why = compare (want, got, where);
      if (why != NULL)
        g_error ("%s", why);
      if (prev != NULL)
        g_assert_false (fb_literal_equal (prev, got));
      prev = got;
    }
  cpu->free (exe);
  fb_arena_free (arena);
  fb_module_free (m);
  fb_module_free (m0);
}

/* A training loop frees each step's result after the next step has run:
 * the results' large buffers are then reused instead of mapped afresh, the
 * values stay right, and a result outlives the executable that made it. */
static void
test_result_memory_reused (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m0 = fb_hlo_parse (dense_hlo, strlen (dense_hlo), "dense.hlo", 0, &error);
  g_assert_no_error (error);
  FbModule *m = with_passes (m0, "all");
  FbArena *keep = fb_arena_new ();
  FbLiteral **args = make_args (m, keep);
  const FbBackend *cpu = fb_backend_lookup ("cpu", NULL);
  FbBackendOptions opts = { 0 };
  FbExecutable *exe = cpu->compile (m, &opts, &error);
  g_assert_no_error (error);
  FbArena *arenas[5] = { NULL };
  void *first_r = NULL, *first_nw = NULL;
  FbLiteral *got = NULL;
  for (int run = 0; run < 5; run++)
    {
      for (int p = 0; p < 3; p += 2)
        for (int64_t i = 0; i < fb_shape_elements (args[p]->shape); i++)
          ((float *) args[p]->data)[i] = (float) (((i * (run + 5) + p) % 13) - 6) / 4.0f;
      arenas[run] = fb_arena_new ();
      FbLiteral *want = fb_interp_run (m, m->entry, arenas[run], 3, args, NULL, &error);
      g_assert_no_error (error);
      got = cpu->execute (exe, arenas[run], 3, args, &error);
      g_assert_no_error (error);
      g_autofree char *where = g_strdup_printf ("dense.hlo, run %d", run + 1);
      g_autofree char *why = compare (want, got, where);
      if (why != NULL)
        g_error ("%s", why);
      if (run == 0)
        {
          first_r = got->elems[0]->data;     /* 100 KiB */
          first_nw = got->elems[2]->data;    /* 75 KiB */
        }
      if (run == 2)
        {
          /* Run 1's arena went before run 3: its buffers came back. */
          g_assert_true (got->elems[0]->data == first_r);
          g_assert_true (got->elems[2]->data == first_nw);
        }
      /* The weights are the result of the run before; its arena lives one
       * run longer, as in the runner. */
      args[1] = got->elems[2];
      if (run >= 1)
        g_clear_pointer (&arenas[run - 1], fb_arena_free);
    }
  /* The executable goes first; the last result is still readable. */
  g_autofree float *copy = g_memdup2 (got->elems[2]->data, 96 * 200 * sizeof (float));
  cpu->free (exe);
  g_assert_cmpmem (got->elems[2]->data, 96 * 200 * sizeof (float), copy, 96 * 200 * sizeof (float));
  g_clear_pointer (&arenas[4], fb_arena_free);
  fb_arena_free (keep);
  fb_module_free (m);
  fb_module_free (m0);
}

/* The result tuple takes a multi-output fusion apart (an optimizer's update
 * returning each new weight): the elements are written in place, in any
 * order, and an element named twice still comes out twice. */
static void
test_result_elements_in_place (void)
{
  check_in_place ("in_place_gte.hlo",
    "HloModule in_place_gte\n"
    "fused_update {\n"
    "  w = f32[40,30] parameter(0)\n"
    "  g = f32[40,30] parameter(1)\n"
    "  lr = f32[] constant(0.5)\n"
    "  lw = f32[40,30] broadcast(lr), dimensions={}\n"
    "  nw = f32[40,30] subtract(w, g)\n"
    "  sw = f32[40,30] multiply(nw, lw)\n"
    "  aw = f32[40,30] add(w, g)\n"
    "  ROOT t = (f32[40,30], f32[40,30], f32[40,30]) tuple(nw, sw, aw)\n"
    "}\n"
    "ENTRY e {\n"
    "  w = f32[40,30] parameter(0)\n"
    "  g = f32[40,30] parameter(1)\n"
    "  f = (f32[40,30], f32[40,30], f32[40,30]) fusion(w, g), kind=kLoop, calls=fused_update\n"
    "  e0 = f32[40,30] get-tuple-element(f), index=0\n"
    "  e1 = f32[40,30] get-tuple-element(f), index=1\n"
    "  e2 = f32[40,30] get-tuple-element(f), index=2\n"
    "  again = f32[40,30] get-tuple-element(f), index=2\n"
    "  ROOT t = (f32[40,30], f32[40,30], f32[40,30], f32[40,30]) tuple(e2, e1, e0, again)\n"
    "}\n");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (guint z = 0; z < G_N_ELEMENTS (zoo_cases); z++)
    {
      g_autofree char *path = g_strdup_printf ("/cpu/zoo/%s", zoo_cases[z].model);
      g_test_add_data_func (path, &zoo_cases[z], test_zoo);
    }
  g_test_add_func ("/cpu/training/mlp-50-steps", test_training_parity);
  g_test_add_func ("/cpu/threads/one-vs-two", test_threads_identical);
  g_test_add_func ("/cpu/custom-call/refused", test_custom_call_refused);
  g_test_add_func ("/cpu/execute/bad-arguments", test_bad_arguments);
  g_test_add_func ("/cpu/execute/result-in-place", test_result_in_place);
  g_test_add_func ("/cpu/runtime/rng-bit-generator", test_rng_bit_generator);
  g_test_add_func ("/cpu/runtime/fft", test_fft);
  g_test_add_func ("/cpu/runtime/cholesky", test_cholesky);
  g_test_add_func ("/cpu/runtime/triangular-solve", test_triangular_solve);
  g_test_add_func ("/cpu/runtime/map", test_map);
  g_test_add_func ("/cpu/runtime/batch-norm", test_batch_norm);
  g_test_add_func ("/cpu/runtime/windows", test_windows);
  g_test_add_func ("/cpu/runtime/windows-2x2", test_windows_2x2);
  g_test_add_func ("/cpu/runtime/map-bad-result", test_map_bad_result);
  g_test_add_func ("/cpu/gemm/output-fusion-epilogue", test_output_fusion_epilogue);
  g_test_add_func ("/cpu/gemm/transposed-result", test_transposed_result);
  g_test_add_data_func ("/cpu/conv/im2col", "im2col", test_conv_method);
  g_test_add_data_func ("/cpu/conv/direct", "direct", test_conv_method);
  g_test_add_data_func ("/cpu/conv/onednn", "onednn", test_conv_method);
  g_test_add_func ("/cpu/conv/long-contraction", test_conv_long_contraction);
  g_test_add_func ("/cpu/conv/method-cache", test_conv_method_cache);
  g_test_add_func ("/cpu/gemm/split-over-threads", test_split_gemm);
  g_test_add_func ("/cpu/gemm/libraries", test_gemm_libraries);
  g_test_add_func ("/cpu/gemm/pair", test_gemm_pair);
  g_test_add_func ("/cpu/gemm/repeated-execute", test_repeated_execute);
  g_test_add_func ("/cpu/execute/result-memory-reused", test_result_memory_reused);
  g_test_add_func ("/cpu/execute/result-elements-in-place", test_result_elements_in_place);

  const char *dir = g_getenv ("FUSEBOX_CORPUS");
  GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);
  if (dir == NULL)
    g_test_add_func ("/cpu/corpus", test_corpus_unset);
  else
    {
      GDir *d = g_dir_open (dir, 0, NULL);
      const char *name;
      while (d && (name = g_dir_read_name (d)))
        if (g_str_has_suffix (name, ".hlo"))
          g_ptr_array_add (paths, g_build_filename (dir, name, NULL));
      if (d)
        g_dir_close (d);
      g_ptr_array_sort (paths, compare_names);
      for (guint i = 0; i < paths->len; i++)
        {
          g_autofree char *base = g_path_get_basename (paths->pdata[i]);
          g_autofree char *tpath = g_strdup_printf ("/cpu/corpus/%s", base);
          g_test_add_data_func (tpath, paths->pdata[i], test_corpus_file);
        }
    }
  int rc = g_test_run ();
  g_ptr_array_free (paths, TRUE);
  return rc;
}
