/* SPDX-License-Identifier: MIT
 *
 * Throughput statistics and the roofline. The statistics are plain sums
 * over the spans of a finished trace; the roofline is two measured numbers
 * kept in a small JSON file per user so that only the first run on a
 * machine pays for measuring them.
 */
#include "fb-throughput.h"

#include <json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- roofline */

void
fb_roofline_clear (FbRoofline *r)
{
  g_return_if_fail (r != NULL);
  g_clear_pointer (&r->flops_source, g_free);
  g_clear_pointer (&r->machine, g_free);
  r->peak_gflops = r->peak_gbps = 0;
}

double
fb_roofline_attainable (const FbRoofline *r, double intensity)
{
  g_return_val_if_fail (r != NULL, 0);
  return MIN (r->peak_gflops, intensity * r->peak_gbps);
}

#define TRIAD_N (4u << 20)     /* 4 Mi doubles: 32 MiB per array */
#define TRIAD_REPS 5

gboolean
fb_roofline_measure_triad (double *gbps, GError **error)
{
  g_autofree double *a = g_try_new (double, TRIAD_N);
  g_autofree double *b = g_try_new (double, TRIAD_N);
  g_autofree double *c = g_try_new (double, TRIAD_N);
  gint64 best = G_MAXINT64;
  volatile double sink;

  g_return_val_if_fail (gbps != NULL, FALSE);
  if (!a || !b || !c)
    {
      g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_FAILED,
                   "triad: cannot allocate %u MiB", (3 * TRIAD_N * 8) >> 20);
      return FALSE;
    }
  for (guint i = 0; i < TRIAD_N; i++)
    {
      a[i] = 0;
      b[i] = i * 0.5;
      c[i] = 1.0 + (i & 7);
    }
  for (int r = 0; r < TRIAD_REPS; r++)
    {
      const double s = 3.0 + r;
      gint64 t0 = fb_trace_now_ns (), dt;

      for (guint i = 0; i < TRIAD_N; i++)
        a[i] = b[i] + s * c[i];
      dt = fb_trace_now_ns () - t0;
      sink = a[r];
      best = MIN (best, MAX (dt, 1));
    }
  (void) sink;
  *gbps = (3.0 * 8.0 * TRIAD_N) / (double) best;
  return TRUE;
}

#define FMA_LANES 32
#define FMA_ITERS 2000000

gboolean
fb_roofline_measure_fma_loop (double *gflops, GError **error)
{
  float acc[FMA_LANES];
  volatile float mul = 0.999999f, add = 1e-7f;
  const float m = mul, d = add;
  volatile float sink;
  gint64 t0, dt;

  g_return_val_if_fail (gflops != NULL, FALSE);
  for (int j = 0; j < FMA_LANES; j++)
    acc[j] = (float) j;
  t0 = fb_trace_now_ns ();
  for (int i = 0; i < FMA_ITERS; i++)
    for (int j = 0; j < FMA_LANES; j++)
      acc[j] = acc[j] * m + d;
  dt = MAX (fb_trace_now_ns () - t0, 1);
  sink = 0;
  for (int j = 0; j < FMA_LANES; j++)
    sink = sink + acc[j];
  (void) sink;
  *gflops = 2.0 * FMA_LANES * (double) FMA_ITERS / (double) dt;
  return TRUE;
}

char *
fb_roofline_default_path (void)
{
  const char *xdg = g_getenv ("XDG_CACHE_HOME");

  return g_build_filename (xdg && *xdg ? xdg : g_get_user_cache_dir (), "fusebox", "roofline.json",
                           NULL);
}

/* What identifies a machine for the cache: host name, CPU model, CPUs. */
static char *
machine_id (void)
{
  g_autofree char *cpuinfo = NULL;
  g_autofree char *model = NULL;

  if (g_file_get_contents ("/proc/cpuinfo", &cpuinfo, NULL, NULL))
    {
      const char *p = strstr (cpuinfo, "model name");
      if (p && (p = strchr (p, ':')))
        {
          const char *e = strchr (p, '\n');
          model = g_strstrip (g_strndup (p + 1, e ? (gsize) (e - p - 1) : strlen (p + 1)));
        }
    }
  return g_strdup_printf ("%s; %s; %u CPUs", g_get_host_name (), model ? model : "unknown CPU",
                          g_get_num_processors ());
}

static gboolean
load_cache (const char *path, const char *machine, gboolean want_sgemm, FbRoofline *out)
{
  json_object *root = json_object_from_file (path), *v;
  gboolean ok = FALSE;

  if (!root || !json_object_is_type (root, json_type_object))
    goto out;
  if (!json_object_object_get_ex (root, "machine", &v) || g_strcmp0 (json_object_get_string (v), machine) != 0)
    goto out;
  if (!json_object_object_get_ex (root, "flops_source", &v))
    goto out;
  if (want_sgemm && g_strcmp0 (json_object_get_string (v), "sgemm") != 0)
    goto out;
  out->flops_source = g_strdup (json_object_get_string (v));
  if (!json_object_object_get_ex (root, "peak_gflops", &v))
    goto out;
  out->peak_gflops = json_object_get_double (v);
  if (!json_object_object_get_ex (root, "peak_gbps", &v))
    goto out;
  out->peak_gbps = json_object_get_double (v);
  ok = isfinite (out->peak_gflops) && isfinite (out->peak_gbps) && out->peak_gflops > 0 && out->peak_gbps > 0;
  out->machine = g_strdup (machine);
out:
  if (!ok)
    fb_roofline_clear (out);
  if (root)
    json_object_put (root);
  return ok;
}

static void
save_cache (const char *path, const FbRoofline *r)
{
  json_object *root = json_object_new_object ();
  g_autofree char *dir = g_path_get_dirname (path);
  const char *text;

  json_object_object_add (root, "version", json_object_new_int (1));
  json_object_object_add (root, "machine", json_object_new_string (r->machine));
  json_object_object_add (root, "flops_source", json_object_new_string (r->flops_source));
  json_object_object_add (root, "peak_gflops", json_object_new_double (r->peak_gflops));
  json_object_object_add (root, "peak_gbps", json_object_new_double (r->peak_gbps));
  text = json_object_to_json_string_ext (root, JSON_C_TO_STRING_PRETTY);
  /* The cache only saves time: failing to write it is not worth an error. */
  if (g_mkdir_with_parents (dir, 0755) == 0)
    g_file_set_contents (path, text, -1, NULL);
  json_object_put (root);
}

gboolean
fb_roofline_get (FbRoofline *out, const char *cache_path, FbPeakFlopsFn sgemm, gpointer sgemm_data,
                 gboolean force, GError **error)
{
  g_autofree char *default_path = NULL;
  g_autofree char *machine = machine_id ();
  FbRoofline r = { 0 };

  g_return_val_if_fail (out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  if (!cache_path)
    cache_path = default_path = fb_roofline_default_path ();

  if (!force && load_cache (cache_path, machine, sgemm != NULL, out))
    return TRUE;

  if (sgemm)
    {
      if (!sgemm (&r.peak_gflops, sgemm_data, error))
        return FALSE;
      r.flops_source = g_strdup ("sgemm");
    }
  else
    {
      if (!fb_roofline_measure_fma_loop (&r.peak_gflops, error))
        return FALSE;
      r.flops_source = g_strdup ("fma-loop");
    }
  if (!fb_roofline_measure_triad (&r.peak_gbps, error))
    {
      fb_roofline_clear (&r);
      return FALSE;
    }
  r.machine = g_steal_pointer (&machine);
  save_cache (cache_path, &r);
  *out = r;
  return TRUE;
}

/* ------------------------------------------------------------- statistics */

typedef struct {
  FbKernelStats stats;
} KernelAcc;

static int
kind_priority (FbTrackKind kind)
{
  switch (kind)
    {
    case FB_TRACK_GPU_STREAM: return 0;
    case FB_TRACK_HOST_THREAD: return 1;
    case FB_TRACK_CPU_WORKER: return 2;
    default: return 3;
    }
}

static char *
kernel_key (const FbSpan *span)
{
  return span->kernel_id >= 0 ? g_strdup_printf ("#%d", span->kernel_id)
                              : g_strdup_printf ("@%s", span->name);
}

static int
cmp_kernel (const void *pa, const void *pb)
{
  const FbKernelStats *a = pa, *b = pb;

  if (a->total_ns != b->total_ns)
    return a->total_ns > b->total_ns ? -1 : 1;
  return g_strcmp0 (a->name, b->name);
}

static int
cmp_step (const void *pa, const void *pb)
{
  const FbStepStats *a = pa, *b = pb;

  return (a->step > b->step) - (a->step < b->step);
}

static const FbKernelCost *
find_cost (const FbKernelCost *costs, guint n, const FbSpan *span)
{
  for (guint i = 0; i < n; i++)
    {
      if (span->kernel_id >= 0 && costs[i].kernel_id == span->kernel_id)
        return &costs[i];
      if (span->kernel_id < 0 && costs[i].kernel_id < 0 && costs[i].name
          && strcmp (costs[i].name, span->name) == 0)
        return &costs[i];
    }
  return NULL;
}

FbThroughput *
fb_throughput_compute (FbTrace *trace, const FbKernelCost *costs, guint n_costs, guint batch_size,
                       const FbRoofline *roofline, GError **error)
{
  g_autoptr (GHashTable) kernels = NULL;
  g_autoptr (GHashTable) step_kind = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) steps = NULL;
  g_autoptr (GArray) step_arr = NULL;
  FbThroughput *tp;
  gint64 step_ns = 0;
  double total_flops = 0, total_bytes = 0;
  guint n_tracks;

  g_return_val_if_fail (trace != NULL, NULL);
  g_return_val_if_fail (n_costs == 0 || costs != NULL, NULL);
  for (guint i = 0; i < n_costs; i++)
    if (!isfinite (costs[i].flops) || !isfinite (costs[i].bytes) || costs[i].flops < 0 || costs[i].bytes < 0)
      {
        g_set_error (error, FB_PROFILER_ERROR, FB_PROFILER_ERROR_USAGE,
                     "cost of kernel %d has a negative or non-finite value", costs[i].kernel_id);
        return NULL;
      }

  n_tracks = fb_trace_get_n_tracks (trace);
  kernels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  steps = g_hash_table_new (g_direct_hash, g_direct_equal);
  step_arr = g_array_new (FALSE, TRUE, sizeof (FbStepStats));

  /* Pass 1: steps, and the best track kind of each kernel in each step
   * (key "KERNEL/STEP" -> priority + 1). */
  for (guint t = 0; t < n_tracks; t++)
    {
      const FbTrack *track = fb_trace_get_track (trace, t);
      for (guint i = 0; i < track->n_spans; i++)
        {
          const FbSpan *s = &track->spans[i];
          if (s->kind == FB_SPAN_STEP)
            {
              FbStepStats st = { .step = s->step, .duration_ns = fb_span_duration_ns (s) };
              g_array_append_val (step_arr, st);
              step_ns += st.duration_ns;
            }
          else if (s->kind == FB_SPAN_KERNEL)
            {
              g_autofree char *key = kernel_key (s);
              KernelAcc *acc = g_hash_table_lookup (kernels, key);
              if (!acc)
                {
                  acc = g_new0 (KernelAcc, 1);
                  acc->stats.kernel_id = s->kernel_id;
                  g_hash_table_insert (kernels, g_steal_pointer (&key), acc);
                }
              /* Per step too: a kernel that ran on a worker thread alone in
               * some step (the second of a pair of GEMMs run at once) counts
               * there, though other steps ran it on the host thread. */
              g_autofree char *k = kernel_key (s);
              char *skey = g_strdup_printf ("%s/%d", k, s->step);
              int prio = kind_priority (track->kind);
              gpointer old = g_hash_table_lookup (step_kind, skey);
              if (old == NULL || prio < GPOINTER_TO_INT (old) - 1)
                g_hash_table_insert (step_kind, skey, GINT_TO_POINTER (prio + 1));
              else
                g_free (skey);
            }
        }
    }
  if (step_arr->len > 1)
    qsort (step_arr->data, step_arr->len, sizeof (FbStepStats), cmp_step);
  for (guint i = 0; i < step_arr->len; i++)
    g_hash_table_insert (steps, GINT_TO_POINTER (g_array_index (step_arr, FbStepStats, i).step),
                         GUINT_TO_POINTER (i + 1));

  /* Pass 2: time, calls and work from the spans on each kernel's best kind
   * in their step: the other spans are chunks of a kernel the host ran. */
  for (guint t = 0; t < n_tracks; t++)
    {
      const FbTrack *track = fb_trace_get_track (trace, t);
      for (guint i = 0; i < track->n_spans; i++)
        {
          const FbSpan *s = &track->spans[i];
          g_autofree char *key = NULL;
          const FbKernelCost *cost;
          KernelAcc *acc;
          guint si;

          if (s->kind != FB_SPAN_KERNEL)
            continue;
          key = kernel_key (s);
          acc = g_hash_table_lookup (kernels, key);
          {
            g_autofree char *skey = g_strdup_printf ("%s/%d", key, s->step);
            if (GPOINTER_TO_INT (g_hash_table_lookup (step_kind, skey)) - 1 != kind_priority (track->kind))
              continue;
          }
          cost = find_cost (costs, n_costs, s);
          if (!acc->stats.name)
            acc->stats.name = g_strdup (cost && cost->name ? cost->name : s->name);
          acc->stats.calls++;
          acc->stats.total_ns += fb_span_duration_ns (s);
          if (cost)
            {
              acc->stats.flops = cost->flops;
              acc->stats.bytes = cost->bytes;
              total_flops += cost->flops;
              total_bytes += cost->bytes;
              si = GPOINTER_TO_UINT (g_hash_table_lookup (steps, GINT_TO_POINTER (s->step)));
              if (s->step >= 0 && si > 0)
                {
                  FbStepStats *st = &g_array_index (step_arr, FbStepStats, si - 1);
                  st->flops += cost->flops;
                  st->bytes += cost->bytes;
                }
            }
        }
    }

  tp = g_new0 (FbThroughput, 1);
  tp->n_steps = step_arr->len;
  if (tp->n_steps > 0 && step_ns > 0)
    {
      tp->mean_step_s = step_ns * 1e-9 / tp->n_steps;
      tp->steps_per_s = 1.0 / tp->mean_step_s;
      tp->samples_per_s = tp->steps_per_s * batch_size;
      tp->gflops = total_flops / (double) step_ns;
      tp->gbps = total_bytes / (double) step_ns;
    }
  for (guint i = 0; i < step_arr->len; i++)
    {
      FbStepStats *st = &g_array_index (step_arr, FbStepStats, i);
      if (st->duration_ns > 0)
        {
          st->gflops = st->flops / (double) st->duration_ns;
          st->gbps = st->bytes / (double) st->duration_ns;
        }
    }
  tp->steps = (FbStepStats *) g_array_free (g_steal_pointer (&step_arr), FALSE);

  {
    GHashTableIter it;
    KernelAcc *acc;
    guint k = 0;

    tp->n_kernels = g_hash_table_size (kernels);
    tp->kernels = g_new0 (FbKernelStats, MAX (tp->n_kernels, 1));
    g_hash_table_iter_init (&it, kernels);
    while (g_hash_table_iter_next (&it, NULL, (gpointer *) &acc))
      {
        tp->kernel_ns += acc->stats.total_ns;
        tp->kernels[k++] = acc->stats;
        acc->stats.name = NULL;   /* moved */
      }
  }
  for (guint k = 0; k < tp->n_kernels; k++)
    {
      FbKernelStats *ks = &tp->kernels[k];

      if (ks->calls > 0)
        ks->mean_ns = (double) ks->total_ns / ks->calls;
      if (tp->kernel_ns > 0)
        ks->time_fraction = (double) ks->total_ns / (double) tp->kernel_ns;
      if (ks->total_ns > 0)
        {
          ks->gflops = ks->flops * ks->calls / (double) ks->total_ns;
          ks->gbps = ks->bytes * ks->calls / (double) ks->total_ns;
        }
      if (ks->bytes > 0)
        ks->intensity = ks->flops / ks->bytes;
      if (roofline && roofline->peak_gbps > 0 && roofline->peak_gflops > 0)
        {
          double ridge = roofline->peak_gflops / roofline->peak_gbps;

          ks->memory_bound = ks->bytes > 0 && ks->intensity < ridge;
          if (ks->bytes > 0)
            ks->roof_gflops = fb_roofline_attainable (roofline, ks->intensity);
          else if (ks->flops > 0)
            ks->roof_gflops = roofline->peak_gflops;
          if (ks->roof_gflops > 0)
            ks->roof_fraction = ks->gflops / ks->roof_gflops;
          if (ks->flops == 0 && ks->bytes > 0)   /* pure data movement: against bandwidth */
            ks->roof_fraction = ks->gbps / roofline->peak_gbps;
        }
    }
  qsort (tp->kernels, tp->n_kernels, sizeof (FbKernelStats), cmp_kernel);
  return tp;
}

void
fb_throughput_free (FbThroughput *tp)
{
  if (!tp)
    return;
  for (guint k = 0; k < tp->n_kernels; k++)
    g_free (tp->kernels[k].name);
  g_free (tp->kernels);
  g_free (tp->steps);
  g_free (tp);
}
