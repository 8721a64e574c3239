/* SPDX-License-Identifier: MIT
 *
 * Graph layout and painting speed, next to Graphviz `dot` on the same graphs.
 *
 * For each graph (a zoo transformer step of about 1k instructions, the
 * MobileNetV2 training step of about 4k, and the largest module of the
 * corpus, Gemma 3 1B with its calls expanded, about 8k boxes and 90k nodes
 * with the bends of long edges) it prints the layout time and the edge
 * crossings of the Fusebox layout, then exports the same graph as DOT and
 * times `dot -Tplain` under a time limit (saying so when it does not
 * finish). Last, it paints the largest graph zoomed out to fit a 1920x1080
 * image surface and zoomed in at 100 %, and prints milliseconds per frame.
 * Goals are printed beside the results.
 *
 * Usage: bench-layout [--dot-timeout SECONDS] (modules from FUSEBOX_CORPUS
 * and the source tree's data/models).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "fb-hlo.h"
#include "fb-paint.h"

typedef struct {
  const char *label;
  const char *path;
  FbExpandPolicy expand;
  double goal_ms;
} Graph;

static double
now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

/* CPU time of this process: what the work cost, whatever else runs on the machine. */
static double
cpu_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Runs dot on @dot_text with a time limit; returns ms, or -1 when it did
 * not finish, -2 when dot is missing or failed. */
static double
time_dot (const char *dot_text, int timeout_s, char **why)
{
  g_autofree char *dot = g_find_program_in_path ("dot");
  g_autofree char *timeout = g_find_program_in_path ("timeout");
  if (dot == NULL)
    {
      *why = g_strdup ("Graphviz `dot` is not installed (Debian package graphviz; `make bench` installs it)");
      return -2;
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = NULL;
  int fd = g_file_open_tmp ("fusebox-bench-XXXXXX.dot", &tmp, &error);
  if (fd < 0)
    {
      *why = g_strdup (error->message);
      return -2;
    }
  close (fd);
  if (!g_file_set_contents (tmp, dot_text, -1, &error))
    {
      *why = g_strdup (error->message);
      g_unlink (tmp);
      return -2;
    }
  g_autofree char *secs = g_strdup_printf ("%d", timeout_s);
  const char *argv_t[] = { timeout, "-s", "KILL", secs, dot, "-Tplain", "-o", "/dev/null", tmp, NULL };
  const char *argv_d[] = { dot, "-Tplain", "-o", "/dev/null", tmp, NULL };
  int status = 0;
  double t0 = now_ms ();
  gboolean ok = g_spawn_sync (NULL, (char **) (timeout ? argv_t : argv_d), NULL,
                              G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                              NULL, NULL, NULL, NULL, &status, &error);
  double ms = now_ms () - t0;
  g_unlink (tmp);
  if (!ok)
    {
      *why = g_strdup (error->message);
      return -2;
    }
  if (WIFSIGNALED (status) || (WIFEXITED (status) && (WEXITSTATUS (status) == 124 || WEXITSTATUS (status) == 137)))
    return -1;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      *why = g_strdup_printf ("dot failed (exit %d)", WIFEXITED (status) ? WEXITSTATUS (status) : -1);
      return -2;
    }
  return ms;
}

static double
paint_ms (const FbGraphLayout *l, double zoom, int frames, int *drawn, double *cpu)
{
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 1920, 1080);
  cairo_t *cr = cairo_create (s);
  double w, h;
  FbViewport vp;
  fb_graph_layout_get_size (l, &w, &h);
  if (zoom <= 0)
    fb_viewport_fit (&vp, w, h, 1920, 1080, 0, 0);
  else
    {
      vp.zoom = zoom;
      vp.width = 1920;
      vp.height = 1080;
      /* centred on the middle instruction, where the graph has content */
      const FbGraphNode *mid = fb_graph_layout_get_node (l, fb_graph_layout_get_n_boxes (l) / 2);
      vp.x = mid->x - 960 / zoom;
      vp.y = mid->y - 540 / zoom;
    }
  g_autoptr (GArray) vis = g_array_new (FALSE, FALSE, sizeof (int));
  fb_graph_layout_query (l, vp.x, vp.y, vp.x + 1920 / vp.zoom, vp.y + 1080 / vp.zoom, vis);
  *drawn = vis->len;
  fb_paint_graph (cr, l, &vp, NULL);   /* warm-up: fonts, glyph caches */
  cairo_surface_flush (s);
  double t0 = now_ms (), c0 = cpu_ms ();
  for (int i = 0; i < frames; i++)
    {
      fb_paint_graph (cr, l, &vp, NULL);
      cairo_surface_flush (s);
    }
  double ms = (now_ms () - t0) / frames;
  *cpu = (cpu_ms () - c0) / frames;
  cairo_destroy (cr);
  cairo_surface_destroy (s);
  return ms;
}

int
main (int argc, char **argv)
{
  int dot_timeout = 120;
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--dot-timeout") != 0 || i + 1 >= argc)
        {
          fprintf (stderr, "usage: bench-layout [--dot-timeout SECONDS]\n");
          return 2;
        }
      dot_timeout = atoi (argv[++i]);
      dot_timeout = MAX (1, dot_timeout);
    }
  const char *corpus = g_getenv ("FUSEBOX_CORPUS");
  const char *root = g_getenv ("FUSEBOX_SOURCE_ROOT");
  if (root == NULL)
    root = FB_SOURCE_ROOT;
  g_autofree char *transformer = g_build_filename (root, "data", "models", "transformer.hlo", NULL);
  g_autofree char *mobilenet = corpus ? g_build_filename (corpus, "mobilenet_v2.hlo", NULL) : NULL;
  g_autofree char *gemma = corpus ? g_build_filename (corpus, "gemma3_1b_flax_call.hlo", NULL) : NULL;
  Graph graphs[] = {
    { "~1k: zoo transformer step", transformer, FB_EXPAND_AUTO, 200 },
    { "~4k: MobileNetV2 training step", mobilenet, FB_EXPAND_AUTO, 1000 },
    { "largest: Gemma 3 1B, calls expanded", gemma, FB_EXPAND_ALL, 2000 },
  };
  if (corpus == NULL)
    printf ("note: FUSEBOX_CORPUS is not set; only the zoo graph is measured\n");

  printf ("Graph layout: Fusebox (layered, %s) against Graphviz dot -Tplain (time limit %d s)\n\n",
          "median sweeps + transpositions, isotonic x", dot_timeout);
  double load[1] = { 0 };
  g_autofree char *loadavg = NULL;
  if (g_file_get_contents ("/proc/loadavg", &loadavg, NULL, NULL))
    load[0] = g_ascii_strtod (loadavg, NULL);
  printf ("Times are wall/CPU milliseconds (best of 3); load average %.1f on %d CPUs. Goals are on CPU time.\n\n",
          load[0], g_get_num_processors ());
  printf ("%-38s %7s %8s %14s %16s %9s  %-10s %s\n", "graph", "boxes", "nodes", "layout ms", "goal (CPU) ms",
          "crossings", "dot ms", "note");
  FbGraphLayout *largest = NULL;
  FbModule *largest_module = NULL;
  int status = 0;
  for (gsize g = 0; g < G_N_ELEMENTS (graphs); g++)
    {
      if (graphs[g].path == NULL || !g_file_test (graphs[g].path, G_FILE_TEST_EXISTS))
        continue;
      g_autoptr (GError) error = NULL;
      FbModule *m = fb_hlo_parse_file (graphs[g].path, 0, &error);
      if (m == NULL)
        {
          printf ("%-38s could not be read: %s\n", graphs[g].label, error->message);
          status = 1;
          continue;
        }
      FbGraphLayoutOptions o;
      fb_graph_layout_options_init (&o);
      o.expand = graphs[g].expand;
      double best = G_MAXDOUBLE, best_cpu = G_MAXDOUBLE;
      FbGraphLayout *l = NULL;
      for (int rep = 0; rep < 3; rep++)
        {
          double t0 = now_ms (), c0 = cpu_ms ();
          FbGraphLayout *k = fb_graph_layout_new (m->entry, NULL, &o);
          best = MIN (best, now_ms () - t0);
          best_cpu = MIN (best_cpu, cpu_ms () - c0);
          fb_graph_layout_free (l);
          l = k;
        }
      g_autofree char *dot_text = fb_graph_to_dot (m->entry, o.expand == FB_EXPAND_ALL);
      g_autofree char *why = NULL;
      double dot_ms = time_dot (dot_text, dot_timeout, &why);
      g_autofree char *dot_col = dot_ms >= 0 ? g_strdup_printf ("%.0f", dot_ms)
                                 : dot_ms == -1 ? g_strdup ("> limit") : g_strdup ("-");
      const char *note = dot_ms == -1 ? "dot did not finish within the limit"
                         : dot_ms == -2 ? why : "dot reports no crossing count";
      g_autofree char *goal = g_strdup_printf ("<= %.0f%s", graphs[g].goal_ms,
                                               best_cpu <= graphs[g].goal_ms ? "" : " (missed)");
      g_autofree char *times = g_strdup_printf ("%.0f/%.0f", best, best_cpu);
      g_autofree char *ratio = dot_ms >= 0 ? g_strdup_printf (" (%.1fx our time)", dot_ms / MAX (best, 0.001))
                               : g_strdup ("");
      printf ("%-38s %7d %8d %14s %16s %9" G_GINT64_FORMAT "  %-10s %s%s\n", graphs[g].label,
              fb_graph_layout_get_n_boxes (l), fb_graph_layout_get_n_nodes (l), times, goal,
              fb_graph_layout_get_crossings (l), dot_col, note, ratio);
      if (largest == NULL || fb_graph_layout_get_n_boxes (l) > fb_graph_layout_get_n_boxes (largest))
        {
          fb_graph_layout_free (largest);
          if (largest_module)
            fb_module_free (largest_module);
          largest = l;
          largest_module = m;
        }
      else
        {
          fb_graph_layout_free (l);
          fb_module_free (m);
        }
    }

  if (largest)
    {
      int drawn_out = 0, drawn_in = 0;
      double out_cpu, in_cpu;
      double out_ms = paint_ms (largest, 0, 20, &drawn_out, &out_cpu);
      double in_ms = paint_ms (largest, 1.0, 20, &drawn_in, &in_cpu);
      printf ("\nPainting the largest graph (%d boxes) into a 1920x1080 image surface:\n",
              fb_graph_layout_get_n_boxes (largest));
      printf ("  %-20s %6.1f ms wall, %6.1f ms CPU per frame; goal <= 16 ms CPU: %s (%d boxes visible, no labels)\n",
              "zoomed out to fit", out_ms, out_cpu, out_cpu <= 16 ? "met" : "NOT met", drawn_out);
      printf ("  %-20s %6.1f ms wall, %6.1f ms CPU per frame; goal <= 16 ms CPU: %s (%d boxes visible, labels)\n",
              "zoomed in at 100 %", in_ms, in_cpu, in_cpu <= 16 ? "met" : "NOT met", drawn_in);
      fb_graph_layout_free (largest);
      fb_module_free (largest_module);
    }
  return status;
}
