/* SPDX-License-Identifier: MIT
 *
 * Tests of the painters and the file output: a graph, a pass diff, the
 * memory of a buffer plan, throughput bars, a timeline and a roofline are
 * drawn into PNG, SVG and PDF files that a viewer would open (PNG read back
 * with real content, SVG and PDF with their signatures), bad output names
 * give clear errors, and `fusebox-cli render` exits with the right codes.
 */
#include <math.h>
#include <string.h>

#include <cairo.h>
#include <glib/gstdio.h>

#include "fb-hlo.h"
#include "fb-paint.h"

typedef struct {
  char *dir;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->dir = g_dir_make_tmp ("fusebox-render-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autoptr (GDir) d = g_dir_open (f->dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *p = g_build_filename (f->dir, name, NULL);
      g_unlink (p);
    }
  g_rmdir (f->dir);
  g_free (f->dir);
}

static FbModule *
load_data (const char *name)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", "viz", name, NULL);
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse_file (path, 0, &error);
  g_assert_no_error (error);
  return m;
}

/* Pixels that differ from the top-left corner's colour. */
static int
count_ink (const char *png)
{
  cairo_surface_t *s = cairo_image_surface_create_from_png (png);
  g_assert_cmpint (cairo_surface_status (s), ==, CAIRO_STATUS_SUCCESS);
  cairo_surface_flush (s);
  int w = cairo_image_surface_get_width (s), h = cairo_image_surface_get_height (s);
  int stride = cairo_image_surface_get_stride (s);
  const guint8 *data = cairo_image_surface_get_data (s);
  guint32 bg = *(const guint32 *) data;
  int ink = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      ink += *(const guint32 *) (data + y * stride + 4 * x) != bg;
  cairo_surface_destroy (s);
  return ink;
}

static void
assert_file_starts (const char *path, const char *const *prefixes)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &text, &len, &error));
  g_assert_cmpuint (len, >, 200);
  gboolean ok = FALSE;
  for (int i = 0; prefixes[i]; i++)
    ok |= g_str_has_prefix (text, prefixes[i]);
  if (!ok)
    g_error ("%s starts with %.20s", path, text);
}

/* Renders with @paint to NAME.png, .svg and .pdf in the fixture's folder and
 * checks each file. Returns the PNG's ink. */
static int
render_all (Fixture *f, const char *name, int w, int h, FbPaintFunc paint, gpointer data)
{
  static const char *const svg[] = { "<?xml", "<svg", NULL };
  static const char *const pdf[] = { "%PDF", NULL };
  int ink = 0;
  const char *exts[] = { "png", "svg", "pdf" };
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *file = g_strdup_printf ("%s.%s", name, exts[i]);
      g_autofree char *path = g_build_filename (f->dir, file, NULL);
      g_autoptr (GError) error = NULL;
      g_assert_true (fb_render_to_file (path, w, h, paint, data, &error));
      g_assert_no_error (error);
      if (i == 0)
        {
          ink = count_ink (path);
          cairo_surface_t *s = cairo_image_surface_create_from_png (path);
          g_assert_cmpint (cairo_image_surface_get_width (s), ==, w);
          g_assert_cmpint (cairo_image_surface_get_height (s), ==, h);
          cairo_surface_destroy (s);
        }
      else
        assert_file_starts (path, i == 1 ? svg : pdf);
    }
  return ink;
}

static void
paint_graph (cairo_t *cr, double w, double h, gpointer data)
{
  const FbGraphLayout *l = data;
  double cw, ch;
  FbViewport vp;
  fb_graph_layout_get_size (l, &cw, &ch);
  fb_viewport_fit (&vp, cw, ch, w, h, 10, 2.0);
  fb_paint_graph (cr, l, &vp, NULL);
}

static void
test_graph (Fixture *f, gconstpointer data)
{
  FbModule *m = load_data ("fusion.hlo");
  g_autoptr (FbGraphLayout) l = fb_graph_layout_new (m->entry, NULL, NULL);
  int ink = render_all (f, "graph", 600, 500, paint_graph, l);
  /* boxes, edges and labels: far more than a few stray pixels */
  g_assert_cmpint (ink, >, 600 * 500 / 20);

  /* zoomed far out the labels go but the boxes stay */
  g_autofree char *small = g_build_filename (f->dir, "small.png", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (fb_render_to_file (small, 60, 50, paint_graph, l, &error));
  g_assert_cmpint (count_ink (small), >, 60 * 50 / 20);

  /* a heat overlay from the cost model */
  g_autoptr (FbNodeValues) bytes = fb_node_values_new_from_cost (m, FB_OVERLAY_BYTES);
  double v = 0;
  g_assert_true (fb_node_values_lookup (bytes, m->entry->root, &v));
  g_assert_cmpfloat (v, >, 0);
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 400, 300);
  cairo_t *cr = cairo_create (s);
  FbViewport vp;
  double cw, ch;
  fb_graph_layout_get_size (l, &cw, &ch);
  fb_viewport_fit (&vp, cw, ch, 400, 300, 0, 0);
  FbGraphPaintOptions o;
  fb_graph_paint_options_init (&o);
  o.overlay = bytes;
  o.selected = m->entry->root->id;
  fb_paint_graph (cr, l, &vp, &o);
  g_assert_cmpint (cairo_status (cr), ==, CAIRO_STATUS_SUCCESS);
  cairo_destroy (cr);
  cairo_surface_destroy (s);
  fb_module_free (m);
}

static void
paint_diff (cairo_t *cr, double w, double h, gpointer data)
{
  const FbDiffView *v = data;
  double cw, ch;
  FbViewport vp;
  fb_graph_layout_get_size (fb_diff_view_get_layout (v), &cw, &ch);
  fb_viewport_fit (&vp, cw, ch, w, h, 10, 2.0);
  fb_paint_diff (cr, v, &vp, NULL);
}

static void
test_diff (Fixture *f, gconstpointer data)
{
  FbModule *m = load_data ("dead.hlo");
  FbPipeline *p = fb_pipeline_new_default ();
  g_autoptr (GError) error = NULL;
  g_assert_true (fb_pipeline_set_spec (p, "dce", &error));
  FbPipelineOptions opts = { .verify_each = TRUE, .keep_snapshots = TRUE };
  GPtrArray *snaps = fb_pipeline_run (p, m, &opts, &error);
  g_assert_no_error (error);
  FbSnapshot *before = g_ptr_array_index (snaps, 0), *after = NULL;
  guint at = 0;
  for (guint i = 1; i < snaps->len; i++)
    {
      FbSnapshot *s = g_ptr_array_index (snaps, i);
      if (s->pass && strcmp (s->pass->name, "dce") == 0)
        after = s, at = i;
    }
  g_assert_nonnull (after);
  FbSnapshot *prev = g_ptr_array_index (snaps, at - 1);
  g_assert_nonnull (before);
  g_autoptr (FbDiffView) v = fb_diff_view_new_from_snapshots (prev, after, NULL, NULL);
  int added, removed, changed, fused;
  fb_diff_view_get_counts (v, &added, &removed, &changed, &fused);
  g_assert_cmpint (removed, ==, 1);
  g_assert_cmpint (added, ==, 0);
  g_assert_true (g_str_has_prefix (fb_diff_view_get_summary (v), "dce: "));
  g_assert_nonnull (strstr (fb_diff_view_get_summary (v), "kernels"));
  g_assert_cmpint (fb_graph_layout_get_n_boxes (fb_diff_view_get_layout (v)), ==,
                   fb_graph_layout_get_n_boxes (fb_diff_view_get_before_layout (v)) - 1);
  for (FbInstr *i = after->module->entry->first; i; i = i->next)
    g_assert_cmpint (fb_diff_view_get_state (v, i), ==, FB_DIFF_SAME);
  int ink = render_all (f, "diff", 700, 600, paint_diff, v);
  g_assert_cmpint (ink, >, 700 * 600 / 20);

  /* the removed node is ghosted in red where it was */
  g_autofree char *png = g_build_filename (f->dir, "diff.png", NULL);
  cairo_surface_t *s = cairo_image_surface_create_from_png (png);
  int reddish = 0, stride = cairo_image_surface_get_stride (s);
  const guint8 *px = cairo_image_surface_get_data (s);
  for (int y = 0; y < 600; y++)
    for (int x = 0; x < 700; x++)
      {
        const guint8 *q = px + y * stride + 4 * x;   /* B G R A */
        reddish += q[2] > 180 && q[1] < 120 && q[0] < 120;
      }
  cairo_surface_destroy (s);
  g_assert_cmpint (reddish, >, 20);

  g_ptr_array_unref (snaps);
  fb_pipeline_free (p);
  fb_module_free (m);
}

static void
paint_memory (cairo_t *cr, double w, double h, gpointer data)
{
  fb_paint_memory (cr, data, NULL, w, h);
}

static void
test_memory (Fixture *f, gconstpointer data)
{
  FbModule *m = load_data ("dead.hlo");
  g_autoptr (GError) error = NULL;
  FbBufferPlan *plan = fb_buffer_plan_new (m, &error);
  g_assert_no_error (error);
  g_assert_cmpint (plan->n_positions, >, 0);
  int ink = render_all (f, "memory", 500, 300, paint_memory, plan);
  g_assert_cmpint (ink, >, 500 * 300 / 30);
  fb_buffer_plan_free (plan);

  /* a measured curve from a trace, alone */
  FbTrace *trace = fb_trace_new ();
  guint t = fb_trace_add_track (trace, FB_TRACK_MEMORY, "live bytes", 0, -1, 0, "bytes");
  for (int i = 0; i < 50; i++)
    fb_trace_add_sample (trace, t, 1000 + i * 100, (i % 10) * 1024.0 * 1024.0);
  fb_trace_finish (trace);
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 300, 200);
  cairo_t *cr = cairo_create (s);
  fb_paint_memory (cr, NULL, trace, 300, 200);
  g_assert_cmpint (cairo_status (cr), ==, CAIRO_STATUS_SUCCESS);
  cairo_destroy (cr);
  cairo_surface_destroy (s);
  fb_trace_unref (trace);
  fb_module_free (m);
}

static void
paint_throughput (cairo_t *cr, double w, double h, gpointer data)
{
  static const FbThroughputItem items[] = {
    { "mlp", 120.0, 310.0 }, { "cnn", 40.0, 38.0 }, { "transformer", 12.0, 0 },
  };
  fb_paint_throughput (cr, items, G_N_ELEMENTS (items), "cpu", "gpu", "steps/s", w, h);
}

static void
test_throughput (Fixture *f, gconstpointer data)
{
  int ink = render_all (f, "throughput", 500, 240, paint_throughput, NULL);
  g_assert_cmpint (ink, >, 500 * 240 / 30);
}

static void
paint_timeline (cairo_t *cr, double w, double h, gpointer data)
{
  fb_paint_timeline (cr, data, w, h, NULL);
}

static void
paint_roofline (cairo_t *cr, double w, double h, gpointer data)
{
  static const FbRooflinePoint pts[] = {
    { "fusion.1", 0.25, 2e9 }, { "dot.3", 40, 8e10 }, { "reduce.2", 1, 6e9 },
  };
  fb_paint_roofline (cr, pts, G_N_ELEMENTS (pts), 1e11, 2e10, w, h);
}

static void
test_timeline_roofline (Fixture *f, gconstpointer data)
{
  FbTrace *trace = fb_trace_new ();
  guint host = fb_trace_add_track (trace, FB_TRACK_HOST_THREAD, "main", 0, -1, 1, NULL);
  guint worker = fb_trace_add_track (trace, FB_TRACK_CPU_WORKER, "worker 1", 1, -1, 2, NULL);
  guint64 flow = fb_trace_new_flow_id (trace);
  FbSpan sp;
  fb_span_init (&sp);
  sp.name = "step";
  sp.kind = FB_SPAN_STEP;
  sp.start_ns = 0;
  sp.end_ns = 100000;
  fb_trace_add_span (trace, host, &sp);
  for (int i = 0; i < 8; i++)
    {
      fb_span_init (&sp);
      sp.name = i % 2 ? "fusion.3" : "dot.1";
      sp.kind = FB_SPAN_KERNEL;
      sp.start_ns = i * 12000;
      sp.end_ns = i * 12000 + 10000;
      sp.flow_out = i == 0 ? flow : 0;
      fb_trace_add_span (trace, host, &sp);
      sp.flow_out = 0;
      sp.flow_in = i == 0 ? flow : 0;
      sp.start_ns += 500;
      sp.end_ns -= 500;
      fb_trace_add_span (trace, worker, &sp);
    }
  fb_trace_finish (trace);
  int ink = render_all (f, "timeline", 640, 200, paint_timeline, trace);
  g_assert_cmpint (ink, >, 640 * 200 / 20);
  fb_trace_unref (trace);

  ink = render_all (f, "roofline", 500, 350, paint_roofline, NULL);
  g_assert_cmpint (ink, >, 500 * 350 / 40);
}

static void
test_bad_output (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *gif = g_build_filename (f->dir, "x.gif", NULL);
  g_assert_false (fb_render_to_file (gif, 10, 10, paint_throughput, NULL, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_USAGE);
  g_assert_nonnull (strstr (error->message, ".gif"));
  g_clear_error (&error);

  g_autofree char *missing = g_build_filename (f->dir, "no", "such", "dir", "x.png", NULL);
  g_assert_false (fb_render_to_file (missing, 10, 10, paint_throughput, NULL, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_IO);
  g_assert_nonnull (strstr (error->message, missing));
  g_clear_error (&error);

  g_autofree char *png = g_build_filename (f->dir, "x.PNG", NULL);
  g_assert_false (fb_render_to_file (png, 0, 10, paint_throughput, NULL, &error));
  g_assert_error (error, FB_ERROR, FB_ERROR_USAGE);
  g_clear_error (&error);
  FbRenderFormat fmt;
  g_assert_true (fb_render_format_from_path (png, &fmt, NULL));
  g_assert_cmpint (fmt, ==, FB_RENDER_PNG);
}

/* ------------------------------------------------------------- CLI */

static int
run_cli (const char *const *args, char **out, char **err)
{
  const char *cli = g_getenv ("FUSEBOX_CLI");
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) cli);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               out, err, &status, &error));
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
test_cli (Fixture *f, gconstpointer data)
{
  if (g_getenv ("FUSEBOX_CLI") == NULL)
    {
      g_test_skip ("FUSEBOX_CLI is not set");
      return;
    }
  g_autofree char *in = g_test_build_filename (G_TEST_DIST, "data", "viz", "fusion.hlo", NULL);
  g_autofree char *png = g_build_filename (f->dir, "cli.png", NULL);
  g_autofree char *svg = g_build_filename (f->dir, "cli.svg", NULL);
  g_autofree char *pdf = g_build_filename (f->dir, "cli.pdf", NULL);
  struct {
    const char *args[12];
    int code;
    const char *in_stderr;
  } cases[] = {
    { { "render", in, "-o", png, NULL }, 0, NULL },
    { { "render", in, "--after", "fuse-loops", "--width", "300", "--height", "200", "-o", svg, NULL }, 0, NULL },
    { { "render", in, "--diff", "simplify", "-o", pdf, NULL }, 0, NULL },
    { { "render", in, "--what", "memory", "-o", png, NULL }, 0, NULL },
    { { "render", in, "--what", "throughput", "-o", png, NULL }, 0, NULL },
    { { "render", in, "--what", "pie", "-o", png, NULL }, 2, "unknown --what 'pie'" },
    { { "render", in, "--after", "no-such-pass", "-o", png, NULL }, 2, "unknown pass 'no-such-pass'" },
    { { "render", in, "-o", "picture.bmp", NULL }, 2, "unknown output format '.bmp'" },
    { { "render", in, NULL }, 2, "missing -o" },
    { { "render", in, "--what", "timeline", "-o", png, NULL }, 2, "--trace" },
    { { "render", in, "-o", "/nonexistent-dir/x.png", NULL }, 1, "cannot write" },
    { { "render", "/nonexistent-dir/in.hlo", "-o", png, NULL }, 1, NULL },
    { { "render", in, "--trace", "/nonexistent-dir/t.json", "--what", "timeline", "-o", png, NULL }, 1, NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = NULL, *err = NULL;
      int code = run_cli (cases[i].args, &out, &err);
      if (code != cases[i].code)
        g_error ("case %zu: exit %d, expected %d; stderr: %s", i, code, cases[i].code, err);
      if (cases[i].in_stderr)
        g_assert_nonnull (strstr (err, cases[i].in_stderr));
      if (code != 0)
        g_assert_cmpstr (err, !=, "");
    }
  g_assert_cmpint (count_ink (png), >, 1000);
  static const char *const svgp[] = { "<?xml", "<svg", NULL };
  static const char *const pdfp[] = { "%PDF", NULL };
  assert_file_starts (svg, svgp);
  assert_file_starts (pdf, pdfp);

  /* DOT for Graphviz users */
  g_autofree char *out = NULL, *err = NULL;
  const char *dot_args[] = { "print", in, "--dot", NULL };
  g_assert_cmpint (run_cli (dot_args, &out, &err), ==, 0);
  g_assert_true (g_str_has_prefix (out, "digraph"));
  g_assert_nonnull (strstr (out, "subgraph \"cluster_f\""));
}

/* The hit test finds the span the painter drew under a point, zoomed or
 * not, and highlighted spans are outlined in blue. */
static void
test_timeline_hit_test (void)
{
  g_autoptr (FbTrace) trace = fb_trace_new ();
  /* Sort indices put the worker row above the host row. */
  guint host = fb_trace_add_track (trace, FB_TRACK_HOST_THREAD, "main", 5, -1, 1, NULL);
  guint worker = fb_trace_add_track (trace, FB_TRACK_CPU_WORKER, "worker 1", 1, -1, 2, NULL);
  static const gint64 ids[4][1] = { { 11 }, { 12 }, { 13 }, { 14 } };
  FbSpan sp;
  fb_span_init (&sp);
  sp.name = "step 1";
  sp.kind = FB_SPAN_STEP;
  sp.start_ns = 0;
  sp.end_ns = 400000;
  fb_trace_add_span (trace, host, &sp);
  for (int i = 0; i < 4; i++)
    {
      fb_span_init (&sp);
      sp.name = "fusion";
      sp.kind = FB_SPAN_KERNEL;
      sp.start_ns = i * 100000 + 10000;
      sp.end_ns = i * 100000 + 90000;
      sp.n_instr = 1;
      sp.instr_ids = ids[i];
      fb_trace_add_span (trace, host, &sp);
      fb_trace_add_span (trace, worker, &sp);
    }
  fb_trace_finish (trace);
  const FbTrack *ht = fb_trace_get_track (trace, host);
  g_assert_cmpuint (ht->n_spans, ==, 5);
  g_assert_cmpuint (ht->max_depth, ==, 1);

  FbTimelineOptions o;
  fb_timeline_options_init (&o);
  const double W = 800, H = 200;
  double r[4];
  guint track, span;
  gint64 index;

  /* The third kernel on the host: depth 1, under the step. */
  g_assert_true (fb_timeline_span_rect (trace, W, &o, host, 3, r));
  g_assert_true (fb_timeline_hit_test (trace, W, H, &o, r[0] + r[2] / 2, r[1] + r[3] / 2, &track, &span, &index));
  g_assert_cmpuint (track, ==, host);
  g_assert_cmpuint (span, ==, 3);
  g_assert_cmpint (ht->spans[span].instr_ids[0], ==, 13);
  /* Counted the way selected_span counts: the worker's 4 spans come first. */
  g_assert_cmpint (index, ==, 4 + 3);

  /* Above it, at depth 0, is the step. */
  g_assert_true (fb_timeline_hit_test (trace, W, H, &o, r[0] + r[2] / 2, r[1] - 5, &track, &span, NULL));
  g_assert_cmpuint (span, ==, 0);
  g_assert_cmpint (ht->spans[0].kind, ==, FB_SPAN_STEP);

  /* Track names, the axis and gaps between kernels hit nothing. */
  g_assert_false (fb_timeline_hit_test (trace, W, H, &o, 20, r[1] + 2, NULL, NULL, NULL));
  g_assert_false (fb_timeline_hit_test (trace, W, H, &o, r[0] + r[2] / 2, 5, NULL, NULL, NULL));
  g_assert_false (fb_timeline_hit_test (trace, W, H, &o, r[0] - 2, r[1] + r[3] / 2, NULL, NULL, NULL));

  /* Zoomed to the second kernel: it fills the plot, the others are gone. */
  FbTimelineGeometry g;
  o.t0_ns = 110000;
  o.t1_ns = 190000;
  fb_timeline_get_geometry (trace, W, &o, &g);
  g_assert_cmpint (g.t0, ==, 110000);
  g_assert_true (fb_timeline_span_rect (trace, W, &o, worker, 1, r));
  g_assert_cmpfloat (fabs (r[0] - g.plot_x), <, 1);
  g_assert_cmpfloat (fabs (r[2] - g.plot_w), <, 1);
  g_assert_false (fb_timeline_span_rect (trace, W, &o, worker, 3, r));
  g_assert_true (fb_timeline_hit_test (trace, W, H, &o, g.plot_x + 5, r[1] + 5, &track, &span, NULL));
  g_assert_cmpuint (track, ==, worker);
  g_assert_cmpuint (span, ==, 1);

  /* Highlighting instruction 12 outlines its kernels in blue. */
  fb_timeline_options_init (&o);
  o.highlight_ids = ids[1];
  o.n_highlight_ids = 1;
  cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_RGB24, (int) W, (int) H);
  cairo_t *cr = cairo_create (surface);
  fb_paint_timeline (cr, trace, W, H, &o);
  cairo_destroy (cr);
  cairo_surface_flush (surface);
  g_assert_true (fb_timeline_span_rect (trace, W, &o, worker, 1, r));
  const guint8 *px = cairo_image_surface_get_data (surface);
  int stride = cairo_image_surface_get_stride (surface);
  guint32 edge = *(const guint32 *) (px + (int) (r[1] + r[3] / 2) * stride + (int) r[0] * 4);
  g_assert_cmpuint (edge & 0xff, >, ((edge >> 16) & 0xff) + 80);   /* blue well above red */
  g_assert_true (fb_timeline_span_rect (trace, W, &o, worker, 2, r));
  edge = *(const guint32 *) (px + (int) (r[1] + r[3] / 2) * stride + (int) r[0] * 4);
  g_assert_cmpuint (edge & 0xff, <, ((edge >> 16) & 0xff) + 80);
  cairo_surface_destroy (surface);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/viz/render/timeline-hit-test", test_timeline_hit_test);
#define ADD(path, fn) g_test_add ("/viz/render/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("graph", test_graph);
  ADD ("diff", test_diff);
  ADD ("memory", test_memory);
  ADD ("throughput", test_throughput);
  ADD ("timeline-roofline", test_timeline_roofline);
  ADD ("bad-output", test_bad_output);
  ADD ("cli", test_cli);
  return g_test_run ();
}
