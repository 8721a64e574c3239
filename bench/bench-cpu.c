/* SPDX-License-Identifier: MIT
 *
 * CPU backend benchmarks, the Fusebox side. Without arguments it prints the
 * machine and then, in this order, each against a limit measured in the
 * same run:
 *   - a fused layer norm + GELU over 64 MiB against a STREAM triad, timed
 *     over its kernels (from the host's kernel spans) and, apart, with the
 *     copy of the result to the caller; beside it the same computation as
 *     one hand-written fusion, the form the passes should reach;
 *   - compile time of the MLP step with a cold and a warm kernel cache;
 *   - the MLP 784-1024-1024-10 training step (batch 128, SGD): achieved
 *     GFLOP/s against a large OpenBLAS sgemm;
 *   - every zoo model with all passes against the fusion passes off;
 *   - the GEMM libraries on the products of the zoo's steps
 *     (bench-cpu-gemm.c).
 * `--only compile|mlp|ln-gelu|zoo|gemm` runs one of them.
 * With `--serve MODEL` it compiles MODEL's training step once and then, for
 * every line `rep N` on stdin, runs N steps and prints `steps_per_s X`:
 * bench_cpu.py drives it interleaved with PyTorch and JAX.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cblas.h>

#include "bench-common.h"
#include "bench-cpu-gemm.h"
#include "fb-backend.h"
#include "fb-hlo.h"
#include "fb-pass.h"
#include "fb-runner.h"
#include "fb-recorder.h"
#include "fb-zoo.h"
#include "fb-cpu-codegen.h"
#include "fb-cpu-private.h"

#define REPS 5
#define NO_FUSION "all,-fuse-epilogues,-fuse-reductions,-fuse-loops,-fuse-siblings,-fuse-horizontal"

static double
now_s (void)
{
  return g_get_monotonic_time () / 1e6;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (double *v, int n)
{
  qsort (v, n, sizeof (double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void
print_stats (const char *what, double *v, int n, const char *unit)
{
  double tmp[64];
  memcpy (tmp, v, sizeof (double) * n);
  double med = median (tmp, n);
  printf ("  %-34s min %10.3f  median %10.3f  max %10.3f %s\n", what, tmp[0], med, tmp[n - 1], unit);
}

static void
print_machine (void)
{
  fb_bench_print_machine ();
  /* The features that matter for these kernels, not LLVM's whole list. */
  g_auto (GStrv) feats = g_strsplit (fb_cpu_host_features (), ",", -1);
  g_autoptr (GString) isa = g_string_new (NULL);
  for (int i = 0; feats[i]; i++)
    if (feats[i][0] == '+' && (g_str_has_prefix (feats[i] + 1, "avx") || g_str_equal (feats[i] + 1, "fma")
                              || g_str_has_prefix (feats[i] + 1, "amx")))
      g_string_append_printf (isa, " %s", feats[i] + 1);
  printf ("ISA (LLVM %s):%s\n", fb_cpu_host_name (), isa->str);
  printf ("GEMM: %s\n", _fb_cpu_gemm_library ());
}

static FbModule *
zoo (const char *model, const char *const *opts, GError **error)
{
  g_autoptr (FbZooOptions) o = fb_zoo_options_new ();
  for (int i = 0; opts && opts[i]; i += 2)
    if (!fb_zoo_options_set (o, opts[i], opts[i + 1], error))
      return NULL;
  return fb_zoo_generate (model, o, error);
}

static gboolean
apply_passes (FbModule *m, const char *spec, GError **error)
{
  FbPipeline *p = fb_pipeline_new_default ();
  FbPipelineOptions po = { 0 };
  gboolean ok = fb_pipeline_set_spec (p, spec, error);
  GPtrArray *snaps = ok ? fb_pipeline_run (p, m, &po, error) : NULL;
  fb_pipeline_free (p);
  if (snaps)
    g_ptr_array_free (snaps, TRUE);
  return snaps != NULL;
}

/* Steps per second of @steps training steps on CPU (compile excluded). */
static double
train_rate (FbModule *m, int steps, double *compile_s, GError **error)
{
  FbRunOptions o;
  fb_run_options_init (&o);
  o.backend = "cpu";
  o.steps = steps;
  if (fb_zoo_is_zoo_module (m))
    {
      o.init = fb_zoo_init_fn;
      o.data = fb_zoo_data_fn;
    }
  FbRunResult r;
  if (!fb_runner_run (m, &o, &r, error))
    return -1;
  double rate = r.steps_per_s;
  if (compile_s)
    *compile_s = r.compile_s;
  fb_run_result_clear (&r);
  return rate;
}

static const char *const mlp_opts[] = { "layers", "784,1024,1024,10", "batch", "128", "optimizer", "sgd", NULL };

/* @model's training step with all passes (the MLP at the size). */
static FbModule *
zoo_step (const char *model, GError **error)
{
  FbModule *m = zoo (model, strcmp (model, "mlp") == 0 ? mlp_opts : NULL, error);
  if (m != NULL && !apply_passes (m, "all", error))
    g_clear_pointer (&m, fb_module_free);
  return m;
}

static int
serve (const char *model)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = zoo_step (model, &error);
  if (m == NULL)
    {
      fprintf (stderr, "bench-cpu: %s\n", error->message);
      return 1;
    }
  char line[128];
  printf ("ready\n");
  fflush (stdout);
  while (fgets (line, sizeof line, stdin))
    {
      int n = 0;
      if (sscanf (line, "rep %d", &n) != 1 || n < 1)
        break;
      double rate = train_rate (m, n, NULL, &error);
      if (rate < 0)
        {
          fprintf (stderr, "bench-cpu: %s\n", error->message);
          return 1;
        }
      printf ("steps_per_s %.6f\n", rate);
      fflush (stdout);
    }
  fb_module_free (m);
  return 0;
}

/* ------------------------------------------------------------- limits */

static double
sgemm_gflops (int n)
{
  float *a = g_new (float, (gsize) n * n), *b = g_new (float, (gsize) n * n), *c = g_new0 (float, (gsize) n * n);
  for (gsize i = 0; i < (gsize) n * n; i++)
    a[i] = b[i] = (float) (i % 7) * 0.1f;
  openblas_set_num_threads (g_get_num_processors ());
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
  double best = 1e30;
  for (int r = 0; r < 3; r++)
    {
      double t0 = now_s ();
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
      best = MIN (best, now_s () - t0);
    }
  g_free (a);
  g_free (b);
  g_free (c);
  return 2.0 * n * n * (double) n / best / 1e9;
}

typedef struct {
  float *a, *b, *c;
  gsize  begin, end;
} Triad;

/* Four floats at a time (the vector width every x86-64 has), written with
 * the compiler's vector types: the plain loop is not vectorised at -O2 (a,
 * b and c might overlap), and one float at a time measures how fast the
 * core runs the loop rather than the memory. */
typedef float TriadVec __attribute__ ((vector_size (16)));

static gpointer
triad_part (gpointer data)
{
  Triad *t = data;
  TriadVec *a = (TriadVec *) (gpointer) t->a, *b = (TriadVec *) (gpointer) t->b, *c = (TriadVec *) (gpointer) t->c;
  for (gsize i = t->begin / 4; i < t->end / 4; i++)
    a[i] = b[i] + 3.0f * c[i];
  return NULL;
}

/* GB/s of a[i] = b[i] + s c[i] over 64 MiB arrays on every core. The
 * arrays are filled first, as STREAM does: pages of fresh memory that were
 * never written all read the kernel's one page of zeros, which stays in
 * the cache, and the triad would time little more than its writes. */
static double
triad_gbs (void)
{
  gsize n = (64u << 20) / sizeof (float);
  float *a = g_aligned_alloc (n, sizeof (float), 64), *b = g_aligned_alloc (n, sizeof (float), 64),
        *c = g_aligned_alloc (n, sizeof (float), 64);
  for (gsize i = 0; i < n; i++)
    {
      a[i] = 0.0f;
      b[i] = 1.0f + (float) (i & 7);
      c[i] = 2.0f;
    }
  int th = g_get_num_processors ();
  double best = 1e30;
  for (int r = 0; r < 4; r++)
    {
      GThread *threads[64];
      Triad parts[64];
      double t0 = now_s ();
      for (int i = 0; i < th && i < 64; i++)
        {
          parts[i] = (Triad) { a, b, c, n / 16 * i / th * 16, n / 16 * (i + 1) / th * 16 };
          threads[i] = g_thread_new ("triad", triad_part, &parts[i]);
        }
      for (int i = 0; i < th && i < 64; i++)
        g_thread_join (threads[i]);
      if (r > 0)
        best = MIN (best, now_s () - t0);
    }
  g_aligned_free (a);
  g_aligned_free (b);
  g_aligned_free (c);
  return 3.0 * n * sizeof (float) / best / 1e9;
}

/* Layer norm over rows and the tanh form of GELU, one instruction a line;
 * the bench runs it as the passes fuse it, and beside that the same lines
 * written by hand as one kInput fusion, which is what the passes should
 * reach: read x once, write the result once. */
#define LN_GELU_ADD \
  "add { a = f32[] parameter(0)\n b = f32[] parameter(1)\n ROOT s = f32[] add(a, b) }\n"
#define LN_GELU_BODY \
  "  x = f32[4096,4096] parameter(0)\n" \
  "  zero = f32[] constant(0)\n" \
  "  n = f32[] constant(4096)\n" \
  "  sum = f32[4096] reduce(x, zero), dimensions={1}, to_apply=add\n" \
  "  nb = f32[4096] broadcast(n), dimensions={}\n" \
  "  mean = f32[4096] divide(sum, nb)\n" \
  "  mb = f32[4096,4096] broadcast(mean), dimensions={0}\n" \
  "  d = f32[4096,4096] subtract(x, mb)\n" \
  "  d2 = f32[4096,4096] multiply(d, d)\n" \
  "  v = f32[4096] reduce(d2, zero), dimensions={1}, to_apply=add\n" \
  "  var = f32[4096] divide(v, nb)\n" \
  "  ce = f32[] constant(1e-5)\n" \
  "  eps = f32[4096] broadcast(ce), dimensions={}\n" \
  "  ve = f32[4096] add(var, eps)\n" \
  "  r = f32[4096] rsqrt(ve)\n" \
  "  rb = f32[4096,4096] broadcast(r), dimensions={0}\n" \
  "  y = f32[4096,4096] multiply(d, rb)\n" \
  "  y3 = f32[4096,4096] multiply(y, y)\n" \
  "  y3b = f32[4096,4096] multiply(y3, y)\n" \
  "  k1 = f32[] constant(0.044715)\n" \
  "  c1 = f32[4096,4096] broadcast(k1), dimensions={}\n" \
  "  t1 = f32[4096,4096] multiply(y3b, c1)\n" \
  "  t2 = f32[4096,4096] add(y, t1)\n" \
  "  k2 = f32[] constant(0.7978845608)\n" \
  "  c2 = f32[4096,4096] broadcast(k2), dimensions={}\n" \
  "  t3 = f32[4096,4096] multiply(t2, c2)\n" \
  "  th = f32[4096,4096] tanh(t3)\n" \
  "  k3 = f32[] constant(1)\n" \
  "  one = f32[4096,4096] broadcast(k3), dimensions={}\n" \
  "  t4 = f32[4096,4096] add(th, one)\n" \
  "  k4 = f32[] constant(0.5)\n" \
  "  half = f32[4096,4096] broadcast(k4), dimensions={}\n" \
  "  t5 = f32[4096,4096] multiply(y, half)\n" \
  "  ROOT g = f32[4096,4096] multiply(t5, t4)\n"

static const char ln_gelu_hlo[] =
  "HloModule ln_gelu\n" LN_GELU_ADD "ENTRY main {\n" LN_GELU_BODY "}\n";

static const char ln_gelu_fused_hlo[] =
  "HloModule ln_gelu_fused\n" LN_GELU_ADD "fused_ln_gelu {\n" LN_GELU_BODY "}\n"
  "ENTRY main {\n"
  "  p = f32[4096,4096] parameter(0)\n"
  "  ROOT f = f32[4096,4096] fusion(p), kind=kInput, calls=fused_ln_gelu\n"
  "}\n";

#define LN_GELU_BYTES (2.0 * 64 * 1048576)   /* read x once, write the result once */
/* Runs per repetition, the fastest of which counts: as for the triad. */
#define LN_RUNS 3

typedef struct {
  const char   *what;
  const char   *hlo;
  const char   *passes;
  FbModule     *module;
  FbExecutable *exe;
  FbTrace      *trace;
  FbRecorder   *recorder;
  gint64        win[REPS][LN_RUNS][2]; /* execute() of each measured run, trace clock */
  double        total_gbs[REPS]; /* from execute()'s wall time, the result's copy included */
  double        kernel_gbs[REPS];/* from the first kernel's start to the last kernel's end */
  FbStats       stats;
} LnVariant;

static gboolean
ln_variant_setup (LnVariant *v, const FbBackend *cpu, GError **error)
{
  v->module = fb_hlo_parse (v->hlo, strlen (v->hlo), "ln_gelu.hlo", 0, error);
  if (v->module == NULL || !apply_passes (v->module, v->passes, error))
    return FALSE;
  fb_stats_compute (v->module, &v->stats);
  v->trace = fb_trace_new ();
  v->recorder = fb_recorder_new (v->trace, FB_RECORDER_NONE);
  FbBackendOptions bo = { .recorder = v->recorder };
  v->exe = cpu->compile (v->module, &bo, error);
  return v->exe != NULL;
}

static void
ln_variant_clear (LnVariant *v, const FbBackend *cpu)
{
  if (v->exe)
    cpu->free (v->exe);
  g_clear_pointer (&v->recorder, fb_recorder_free);
  g_clear_pointer (&v->trace, fb_trace_unref);
  g_clear_pointer (&v->module, fb_module_free);
}

/* Kernel time of every repetition: the host thread's kernel spans inside a
 * run's window, from the first start to the last end (the gaps between
 * kernels count, the copy of the result to the caller does not); the
 * fastest of the repetition's runs. */
static void
ln_variant_kernel_rates (LnVariant *v)
{
  fb_trace_finish (v->trace);
  for (guint t = 0; t < fb_trace_get_n_tracks (v->trace); t++)
    {
      const FbTrack *track = fb_trace_get_track (v->trace, t);
      if (track->kind != FB_TRACK_HOST_THREAD)
        continue;
      for (int r = 0; r < REPS; r++)
        {
          v->kernel_gbs[r] = 0;
          for (int run = 0; run < LN_RUNS; run++)
            {
              const gint64 *win = v->win[r][run];
              gint64 first = G_MAXINT64, last = 0;
              for (guint s = 0; s < track->n_spans; s++)
                {
                  const FbSpan *sp = &track->spans[s];
                  if (sp->kind == FB_SPAN_KERNEL && sp->start_ns >= win[0] && sp->end_ns <= win[1])
                    {
                      first = MIN (first, sp->start_ns);
                      last = MAX (last, sp->end_ns);
                    }
                }
              if (last > first)
                v->kernel_gbs[r] = MAX (v->kernel_gbs[r], LN_GELU_BYTES / ((last - first) / 1e9) / 1e9);
            }
        }
    }
}

static gboolean
ln_gelu_section (const FbBackend *cpu, GError **error)
{
  printf ("\n== layer norm + GELU over 64 MiB (f32[4096,4096]) against a STREAM triad (goal: >= 80%%)\n");
  printf ("  GB/s counts 128 MiB per run (x read once, the result written once), whatever the kernels move\n");
  LnVariant vs[2] = {
    { .what = "as the passes fuse it (all passes)", .hlo = ln_gelu_hlo, .passes = "all" },
    { .what = "written as one kInput fusion (no passes)", .hlo = ln_gelu_fused_hlo, .passes = "none" },
  };
  gboolean ok = TRUE;
  for (int k = 0; ok && k < 2; k++)
    ok = ln_variant_setup (&vs[k], cpu, error);

  FbArena *arena = fb_arena_new ();
  FbLiteral *x = NULL;
  if (ok)
    {
      x = fb_literal_new (arena, vs[0].module->entry->params[0]->shape);
      for (int64_t i = 0; i < 4096 * 4096; i++)
        ((float *) x->data)[i] = (float) ((i * 7919) % 1000) / 500.0f - 1.0f;
    }
  double triad[REPS];
  for (int r = -1; ok && r < REPS; r++)
    {
      for (int k = 0; ok && k < 2; k++)
        for (int run = 0; ok && run < LN_RUNS; run++)
          {
            FbArena *out = fb_arena_new ();
            gint64 t0 = fb_trace_now_ns ();
            ok = cpu->execute (vs[k].exe, out, 1, &x, error) != NULL;
            gint64 t1 = fb_trace_now_ns ();
            fb_arena_free (out);
            if (r >= 0)
              {
                vs[k].win[r][run][0] = t0;
                vs[k].win[r][run][1] = t1;
                double gbs = LN_GELU_BYTES / ((t1 - t0) / 1e9) / 1e9;
                vs[k].total_gbs[r] = run == 0 ? gbs : MAX (vs[k].total_gbs[r], gbs);
              }
          }
      double tr = triad_gbs ();
      if (r >= 0)
        triad[r] = tr;
    }
  if (ok)
    {
      double tm = median (triad, REPS);
      for (int k = 0; k < 2; k++)
        {
          LnVariant *v = &vs[k];
          ln_variant_kernel_rates (v);
          printf (" %s: %d kernel%s, %.0f MiB moved (estimate)\n", v->what, v->stats.kernels,
                  v->stats.kernels == 1 ? "" : "s", v->stats.bytes / 1048576);
          print_stats ("kernels (GB/s)", v->kernel_gbs, REPS, "GB/s");
          print_stats ("execute, result copy incl. (GB/s)", v->total_gbs, REPS, "GB/s");
          /* Each repetition's kernels against the triad run right after
           * them: drift on a shared machine hits both sides of a pair. */
          double ratio[REPS];
          for (int r = 0; r < REPS; r++)
            ratio[r] = triad[r] > 0 ? v->kernel_gbs[r] / triad[r] : 0;
          double a = median (ratio, REPS);
          printf ("  the kernels reach %.0f%% of the triad bandwidth (median of per-repetition ratios; "
                  "medians alone: %.0f%%) (%s)\n", 100 * a, 100 * median (v->kernel_gbs, REPS) / tm,
                  a >= 0.8 ? "meets the goal" : "misses the goal");
        }
      print_stats ("triad (GB/s)", triad, REPS, "GB/s");
    }
  for (int k = 0; k < 2; k++)
    ln_variant_clear (&vs[k], cpu);
  fb_arena_free (arena);
  return ok;
}

/* The MLP step's achieved GFLOP/s against an sgemm, interleaved. */
static gboolean
mlp_section (FbModule *mlp, GError **error)
{
  printf ("\n== MLP step: achieved GFLOP/s against OpenBLAS sgemm 2048^3, same run\n");
  FbStats st;
  fb_stats_compute (mlp, &st);
  double step_rate[REPS], gemm[REPS];
  /* The sgemm reference first: OpenBLAS's own threads keep spinning for a
   * while after a multi-threaded call, beside the backend's pool, which
   * runs its GEMMs on single-threaded BLAS calls. The warm-up step run
   * absorbs that. */
  for (int r = 0; r < REPS; r++)
    gemm[r] = sgemm_gflops (2048);
  for (int r = -1; r < REPS; r++)
    {
      double rate = train_rate (mlp, 10, NULL, error);
      if (rate < 0)
        return FALSE;
      if (r >= 0)
        step_rate[r] = rate * st.flops / 1e9;
    }
  print_stats ("MLP step (GFLOP/s)", step_rate, REPS, "GFLOP/s");
  print_stats ("sgemm 2048 (GFLOP/s)", gemm, REPS, "GFLOP/s");
  double a = median (step_rate, REPS), b = median (gemm, REPS);
  printf ("  the step reaches %.0f%% of the sgemm rate (%.3g FLOP per step)\n", 100 * a / b, st.flops);
  return TRUE;
}

/* Is section @name selected by `--only @only` (NULL: every section)? */
static gboolean
want (const char *only, const char *name)
{
  return only == NULL || strcmp (only, name) == 0;
}

static int
run_all (const char *only)
{
  g_autoptr (GError) error = NULL;
  print_machine ();

  FbModule *mlp = zoo_step ("mlp", &error);
  if (mlp == NULL)
    {
      fprintf (stderr, "bench-cpu: %s\n", error->message);
      return 1;
    }
  const FbBackend *cpu = fb_backend_lookup ("cpu", &error);
  if (cpu == NULL)
    {
      fprintf (stderr, "bench-cpu: %s\n", error->message);
      return 1;
    }

  /* The bandwidth section first: the MLP section's sgemm reference runs
   * on OpenBLAS's own threads, which keep polling for a while after it. */
  if (want (only, "ln-gelu") && !ln_gelu_section (cpu, &error))
    {
      fprintf (stderr, "bench-cpu: %s\n", error->message);
      return 1;
    }

  /* Compile time, cold cache first (a fresh cache directory), then warm. */
  if (want (only, "compile"))
    printf ("\n== compile time of the MLP 784-1024-1024-10 step (goals: < 1 s cold, < 50 ms warm)\n");
  for (int warm = 0; want (only, "compile") && warm < 2; warm++)
    {
      FbBackendOptions bo = { 0 };
      double t0 = now_s ();
      FbExecutable *exe = cpu->compile (mlp, &bo, &error);
      double t = now_s () - t0;
      if (exe == NULL)
        {
          fprintf (stderr, "bench-cpu: %s\n", error->message);
          return 1;
        }
      cpu->free (exe);
      printf ("  %-5s cache: %8.1f ms  (%s)\n", warm ? "warm" : "cold", t * 1e3,
              warm ? (t < 0.050 ? "meets the goal" : "misses the goal")
                   : (t < 1.0 ? "meets the goal" : "misses the goal"));
    }

  /* MLP step rate against the sgemm rate, interleaved. */
  if (want (only, "mlp") && !mlp_section (mlp, &error))
    {
      fprintf (stderr, "bench-cpu: %s\n", error->message);
      return 1;
    }


  /* All passes against fusion off, per zoo model. */
  int n_models;
  const FbZooModelInfo *models = fb_zoo_models (&n_models);
  if (!want (only, "zoo"))
    n_models = 0;
  else
    printf ("\n== all passes against the fusion passes off (steps/s, interleaved)\n");
  for (int k = 0; k < n_models; k++)
    {
      const char *name = models[k].name;
      FbModule *off = zoo (name, strcmp (name, "mlp") == 0 ? mlp_opts : NULL, &error);
      FbModule *on = off ? zoo_step (name, &error) : NULL;
      if (on == NULL || !apply_passes (off, NO_FUSION, &error))
        {
          fprintf (stderr, "bench-cpu: %s: %s\n", name, error->message);
          return 1;
        }
      double ra[REPS], rb[REPS], ratio[REPS];
      for (int r = -1; r < REPS; r++)
        {
          double x1 = train_rate (on, 5, NULL, &error);
          double x2 = x1 >= 0 ? train_rate (off, 5, NULL, &error) : -1;
          if (x1 < 0 || x2 < 0)
            {
              fprintf (stderr, "bench-cpu: %s: %s\n", name, error->message);
              return 1;
            }
          if (r >= 0)
            {
              ra[r] = x1;
              rb[r] = x2;
              ratio[r] = x1 / x2;
            }
        }
      printf (" %s\n", name);
      print_stats ("all passes", ra, REPS, "steps/s");
      print_stats ("fusion off", rb, REPS, "steps/s");
      double q = median (ratio, REPS);
      printf ("  ratio %.2fx: all passes are %s\n", q,
              q >= 1.02 ? "faster" : q <= 0.98 ? "slower" : "about as fast");
      fb_module_free (on);
      fb_module_free (off);
    }
  if (want (only, "gemm") && !fb_bench_gemm_section (zoo_step, &error))
    {
      fprintf (stderr, "bench-cpu: %s\n", error->message);
      return 1;
    }
  fb_module_free (mlp);
  return 0;
}

int
main (int argc, char **argv)
{
  /* A fresh kernel cache, so that the first compile is a cold one. */
  g_autofree char *cache = g_dir_make_tmp ("fusebox-bench-XXXXXX", NULL);
  if (cache)
    g_setenv ("XDG_CACHE_HOME", cache, TRUE);
  int rc;
  if (argc == 3 && strcmp (argv[1], "--serve") == 0)
    rc = serve (argv[2]);
  else if (argc == 1)
    rc = run_all (NULL);
  else if (argc == 3 && strcmp (argv[1], "--only") == 0
           && (g_str_equal (argv[2], "compile") || g_str_equal (argv[2], "mlp")
               || g_str_equal (argv[2], "ln-gelu") || g_str_equal (argv[2], "zoo") || g_str_equal (argv[2], "gemm")))
    rc = run_all (argv[2]);
  else
    {
      fprintf (stderr, "usage: bench-cpu [--serve MODEL | --only compile|mlp|ln-gelu|zoo|gemm]\n");
      return 2;
    }
  if (cache)
    {
      g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", cache);
      if (system (cmd) != 0)
        fprintf (stderr, "bench-cpu: could not remove %s\n", cache);
    }
  return rc;
}
