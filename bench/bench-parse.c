/* SPDX-License-Identifier: MIT
 *
 * Parser benchmark: how fast HLO text becomes a verified module, in MB/s,
 * next to the physical floor for a parser, the time it takes just to read
 * the file into memory (from the page cache). Three real modules of
 * different sizes are measured (import.hlo 0.1 MB, mobilenet_v2.hlo 0.8 MB,
 * gemma3_1b_flax_call.hlo 2.3 MB) so that growth with size shows: a linear
 * parser keeps the same MB/s at every size.
 *
 * Each file is read, parsed and verified once to warm up; then every
 * repetition reads, parses and verifies each file in turn (interleaved, so
 * drift on a busy machine spreads over all of them). Min, median and max
 * are printed and the median is quoted.
 *
 * Goal: parse + verify of the largest file at 100 MB/s or more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-common.h"
#include "fb-hlo.h"
#include "fb-verify.h"

#define GOAL_MB_PER_S 100.0

static int reps = 7;
static char *corpus_dir = NULL;

static GOptionEntry entries[] = {
  { "reps", 'r', 0, G_OPTION_ARG_INT, &reps, "Timed repetitions per file (default 7, at least 5)", "N" },
  { "corpus", 0, 0, G_OPTION_ARG_FILENAME, &corpus_dir, "Directory of the real HLO modules", "DIR" },
  { NULL }
};

/* Smallest to largest; the last one carries the goal. */
static const char *const default_files[] = {
  "import.hlo", "mobilenet_v2.hlo", "gemma3_1b_flax_call.hlo",
};

/* ----------------------------------------------------------- machine */

static void
print_machine (void)
{
  fb_bench_print_machine ();
#ifndef FB_BUILD_TYPE
#define FB_BUILD_TYPE "unknown"
#endif
  printf ("build: %s, glib %u.%u.%u\n", FB_BUILD_TYPE, glib_major_version, glib_minor_version, glib_micro_version);
}

/* ----------------------------------------------------------- timing */

static double
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

typedef struct {
  double *ms;            /* reps samples, sorted once all are in */
  double  median;
} Series;

static void
series_finish (Series *s)
{
  qsort (s->ms, reps, sizeof (double), cmp_double);
  s->median = s->ms[reps / 2];
}

/* One file under test. */
typedef struct {
  char     *name;
  char     *path;
  gsize     size;
  int       n_modules;
  int       instrs;
  gsize     arena_bytes;
  gboolean  failed;      /* parse failed: no figures */
  char     *verify_error;/* verification failed: parse figures only */
  Series    read, parse, verify, total;
} Input;

static void
input_clear (Input *in)
{
  g_free (in->name);
  g_free (in->path);
  g_free (in->verify_error);
  g_free (in->read.ms);
  g_free (in->parse.ms);
  g_free (in->verify.ms);
  g_free (in->total.ms);
}

/* Reads, parses and verifies @in once; stores the times in slot @k of its
 * series (k < 0: warm-up, times dropped). Returns FALSE when the file cannot
 * be read or parsed. */
static gboolean
measure_once (Input *in, int k, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  double t0 = now_ms ();
  if (!g_file_get_contents (in->path, &text, &len, error))
    return FALSE;
  double t1 = now_ms ();

  int n = fb_hlo_count_modules (text, len);
  FbModule **mods = g_new0 (FbModule *, n);
  gboolean ok = TRUE;
  double t2 = now_ms ();
  for (int i = 0; i < n && ok; i++)
    ok = (mods[i] = fb_hlo_parse (text, len, in->path, i, error)) != NULL;
  double t3 = now_ms ();
  double verify_ms = 0;
  if (ok && in->verify_error == NULL)
    {
      g_autoptr (GError) verr = NULL;
      for (int i = 0; i < n && verr == NULL; i++)
        fb_verify (mods[i], &verr);
      verify_ms = now_ms () - t3;
      if (verr)
        in->verify_error = g_strdup (verr->message);
    }
  if (ok && k < 0)
    {
      in->size = len;
      in->n_modules = n;
      in->instrs = 0;
      in->arena_bytes = 0;
      for (int i = 0; i < n; i++)
        {
          in->instrs += fb_module_instr_count (mods[i]);
          in->arena_bytes += fb_arena_bytes (mods[i]->arena);
        }
    }
  for (int i = 0; i < n; i++)
    if (mods[i])
      fb_module_free (mods[i]);
  g_free (mods);
  if (!ok)
    return FALSE;
  if (k >= 0)
    {
      in->read.ms[k] = t1 - t0;
      in->parse.ms[k] = t3 - t2;
      in->verify.ms[k] = verify_ms;
      in->total.ms[k] = t3 - t2 + verify_ms;
    }
  return TRUE;
}

static double
mb_per_s (gsize bytes, double ms)
{
  return ms > 0 ? (double) bytes / 1e6 / (ms / 1e3) : 0;
}

static void
print_series (const char *what, const Series *s, gsize bytes)
{
  printf ("  %-16s %10.3f %10.3f %10.3f   %9.1f MB/s\n", what, s->ms[0], s->median, s->ms[reps - 1],
          mb_per_s (bytes, s->median));
}

/* ------------------------------------------------------------- main */

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) oc = g_option_context_new ("[FILE...] - time the HLO text parser and verifier");
  g_autoptr (GError) error = NULL;
  g_option_context_add_main_entries (oc, entries, NULL);
  g_option_context_set_description (oc, "Without FILEs, times import.hlo, mobilenet_v2.hlo and "
                                        "gemma3_1b_flax_call.hlo from --corpus, $FUSEBOX_CORPUS or the "
                                        "shared corpus next to the source tree.");
  if (!g_option_context_parse (oc, &argc, &argv, &error))
    {
      fprintf (stderr, "bench-parse: %s\n", error->message);
      return 2;
    }
  if (reps < 5)
    {
      fprintf (stderr, "bench-parse: --reps %d: at least 5 repetitions are needed for a median\n", reps);
      return 2;
    }

  const char *dir = corpus_dir ? corpus_dir : g_getenv ("FUSEBOX_CORPUS");
  g_autofree char *fallback = g_build_filename (FB_SOURCE_ROOT, "..", "shared", "corpus", "hlo", NULL);
  if (dir == NULL)
    dir = fallback;

  g_autoptr (GArray) inputs = g_array_new (FALSE, TRUE, sizeof (Input));
  g_array_set_clear_func (inputs, (GDestroyNotify) input_clear);
  int n_args = argc - 1;
  int n_files = n_args > 0 ? n_args : (int) G_N_ELEMENTS (default_files);
  for (int i = 0; i < n_files; i++)
    {
      Input in = { 0 };
      in.path = n_args > 0 ? g_strdup (argv[1 + i]) : g_build_filename (dir, default_files[i], NULL);
      in.name = g_path_get_basename (in.path);
      in.read.ms = g_new0 (double, reps);
      in.parse.ms = g_new0 (double, reps);
      in.verify.ms = g_new0 (double, reps);
      in.total.ms = g_new0 (double, reps);
      g_array_append_val (inputs, in);
    }

  printf ("== HLO parse + verify benchmark ==\n");
  print_machine ();
  printf ("repetitions: 1 warm-up + %d timed, files interleaved; times in ms\n", reps);

  /* Warm-up: page cache, allocator, and the figures that do not change. */
  int usable = 0;
  for (guint f = 0; f < inputs->len; f++)
    {
      Input *in = &g_array_index (inputs, Input, f);
      if (!measure_once (in, -1, &error))
        {
          printf ("\n%s: skipped: %s\n", in->name, error->message);
          g_clear_error (&error);
          in->failed = TRUE;
          continue;
        }
      usable++;
    }
  if (usable == 0)
    {
      printf ("\nno file could be parsed; set FUSEBOX_CORPUS or --corpus to the directory of the real "
              "HLO modules\n");
      return 1;
    }

  for (int k = 0; k < reps; k++)
    for (guint f = 0; f < inputs->len; f++)
      {
        Input *in = &g_array_index (inputs, Input, f);
        if (in->failed)
          continue;
        if (!measure_once (in, k, &error))
          {
            /* The file changed under us; drop it rather than report half a series. */
            printf ("\n%s: failed on repetition %d: %s\n", in->name, k + 1, error->message);
            g_clear_error (&error);
            in->failed = TRUE;
          }
      }

  Input *smallest = NULL, *largest = NULL;
  for (guint f = 0; f < inputs->len; f++)
    {
      Input *in = &g_array_index (inputs, Input, f);
      if (in->failed)
        continue;
      series_finish (&in->read);
      series_finish (&in->parse);
      series_finish (&in->verify);
      series_finish (&in->total);
      if (smallest == NULL || in->size < smallest->size)
        smallest = in;
      if (largest == NULL || in->size >= largest->size)
        largest = in;

      printf ("\n%s: %.2f MB, %d module%s, %d instructions, IR arena %.1f MB\n", in->name, in->size / 1e6,
              in->n_modules, in->n_modules == 1 ? "" : "s", in->instrs, in->arena_bytes / 1e6);
      printf ("  %-16s %10s %10s %10s   %14s\n", "", "min", "median", "max", "median rate");
      print_series ("read file", &in->read, in->size);
      print_series ("parse", &in->parse, in->size);
      if (in->verify_error)
        printf ("  verify: the module does not verify, so parse figures only: %s\n", in->verify_error);
      else
        {
          print_series ("verify", &in->verify, in->size);
          print_series ("parse + verify", &in->total, in->size);
        }
      printf ("  parse + verify takes %.1fx the time of reading the file; %.0f ns per instruction\n",
              in->total.median / MAX (in->read.median, 1e-6), in->total.median * 1e6 / MAX (in->instrs, 1));
    }

  printf ("\nsummary (medians):\n");
  printf ("  %-28s %8s %8s %12s %12s %12s\n", "file", "MB", "instrs", "read MB/s", "parse MB/s", "p+v MB/s");
  for (guint f = 0; f < inputs->len; f++)
    {
      Input *in = &g_array_index (inputs, Input, f);
      if (in->failed)
        continue;
      printf ("  %-28s %8.2f %8d %12.0f %12.1f %12.1f%s\n", in->name, in->size / 1e6, in->instrs,
              mb_per_s (in->size, in->read.median), mb_per_s (in->size, in->parse.median),
              mb_per_s (in->size, in->total.median), in->verify_error ? " (no verify)" : "");
    }

  if (smallest != largest)
    {
      double size_ratio = (double) largest->size / smallest->size;
      double time_ratio = largest->total.median / MAX (smallest->total.median, 1e-6);
      printf ("\ngrowth from %s to %s: %.1fx the bytes take %.1fx the time (linear: %.1fx) -> %s\n",
              smallest->name, largest->name, size_ratio, time_ratio, size_ratio,
              time_ratio <= size_ratio * 1.5 ? "about linear" : "GROWS FASTER THAN LINEAR");
    }

  double rate = mb_per_s (largest->size, largest->total.median);
  printf ("\ngoal: parse + verify of %s at %.0f MB/s or more: %.1f MB/s (median) -> %s\n", largest->name,
          GOAL_MB_PER_S, rate, rate >= GOAL_MB_PER_S ? "met" : "NOT MET");
  return 0;
}
