/* SPDX-License-Identifier: MIT
 *
 * `fusebox-cli render`: draws a module as a PNG, SVG or PDF with the same
 * painters the workbench uses. The picture can be the graph after any pass
 * of the default pipeline, the diff a pass made, the memory of the static
 * buffer plan, the estimated per-step cost before and after the pipeline,
 * or, from a recorded trace, the timeline and the roofline.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fb-chrome-trace.h"
#include "fb-cli.h"
#include "fb-cost.h"
#include "fb-paint.h"

typedef enum { WHAT_GRAPH, WHAT_DIFF, WHAT_TIMELINE, WHAT_MEMORY, WHAT_THROUGHPUT, WHAT_ROOFLINE } What;
static const char *const what_names[] = { "graph", "diff", "timeline", "memory", "throughput", "roofline" };

typedef struct {
  What              what;
  FbGraphLayout    *layout;
  FbDiffView       *diff;
  FbBufferPlan     *plan;
  FbTrace          *trace;
  FbThroughputItem  items[4];
  int               n_items;
  const char       *a_name, *b_name;
  FbRooflinePoint  *points;
  int               n_points;
  double            peak_flops, peak_bytes;
} Picture;

static void
paint (cairo_t *cr, double width, double height, gpointer data)
{
  Picture *p = data;
  FbViewport vp;
  double w, h;
  switch (p->what)
    {
    case WHAT_GRAPH:
      fb_graph_layout_get_size (p->layout, &w, &h);
      fb_viewport_fit (&vp, w, h, width, height, 10, 2.0);
      fb_paint_graph (cr, p->layout, &vp, NULL);
      break;
    case WHAT_DIFF:
      fb_graph_layout_get_size (fb_diff_view_get_layout (p->diff), &w, &h);
      fb_viewport_fit (&vp, w, h + 30, width, height, 10, 2.0);
      vp.y -= 30 / vp.zoom;
      fb_paint_diff (cr, p->diff, &vp, NULL);
      break;
    case WHAT_TIMELINE:
      fb_paint_timeline (cr, p->trace, width, height, NULL);
      break;
    case WHAT_MEMORY:
      fb_paint_memory (cr, p->plan, p->trace, width, height);
      break;
    case WHAT_THROUGHPUT:
      fb_paint_throughput (cr, p->items, p->n_items, p->a_name, p->b_name, "per step", width, height);
      break;
    case WHAT_ROOFLINE:
      fb_paint_roofline (cr, p->points, p->n_points, p->peak_flops, p->peak_bytes, width, height);
      break;
    }
}

static int
usage_error (const char *message)
{
  fprintf (stderr, "fusebox-cli render: %s\nRun `fusebox-cli render --help` for the options.\n", message);
  return FB_EXIT_USAGE;
}

/* Runs the default pipeline up to and including @pass (all of it when NULL)
 * on @module; returns the snapshots. */
static GPtrArray *
run_until (FbModule *module, const char *pass, GError **error)
{
  g_autoptr (GString) spec = g_string_new (NULL);
  int n = 0;
  const FbPass *const *all = fb_passes_all (&n);
  for (int i = 0; i < n; i++)
    {
      g_string_append_printf (spec, "%s%s", spec->len ? "," : "", all[i]->name);
      if (pass && strcmp (all[i]->name, pass) == 0)
        break;
    }
  FbPipeline *p = fb_pipeline_new_default ();
  if (!fb_pipeline_set_spec (p, spec->str, error))
    {
      fb_pipeline_free (p);
      return NULL;
    }
  FbPipelineOptions opts = { .verify_each = FALSE, .keep_snapshots = TRUE };
  GPtrArray *snaps = fb_pipeline_run (p, module, &opts, error);
  fb_pipeline_free (p);
  return snaps;
}

static void
throughput_items (Picture *pic, const FbStats *a, const FbStats *b)
{
  pic->items[0] = (FbThroughputItem) { "kernels", a->kernels, b->kernels };
  pic->items[1] = (FbThroughputItem) { "MB moved", a->bytes / 1e6, b->bytes / 1e6 };
  pic->items[2] = (FbThroughputItem) { "GFLOP", a->flops / 1e9, b->flops / 1e9 };
  pic->items[3] = (FbThroughputItem) { "instructions", a->instructions, b->instructions };
  pic->n_items = 4;
}

/* One point per kernel span name: FLOPs and bytes from the instructions it
 * runs (by provenance), time from the trace. */
static void
roofline_points (Picture *pic, FbModule *module)
{
  /* id (own or provenance) -> the instruction that stands for it */
  g_autoptr (GHashTable) owner = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  for (int c = 0; c < module->n_comps; c++)
    if (!module->comps[c]->is_fusion)
      for (FbInstr *i = module->comps[c]->first; i; i = i->next)
        for (int j = -1; j < i->n_prov; j++)
          {
            int64_t id = j < 0 ? i->id : i->prov[j];
            if (!g_hash_table_contains (owner, &id))
              g_hash_table_insert (owner, g_memdup2 (&id, sizeof id), i);
          }
  /* per kernel name: FLOPs and bytes of one run, runs and total seconds */
  typedef struct { const char *name; double flops, bytes, seconds; int runs; } Acc;
  g_autoptr (GHashTable) by_name = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GArray) acc = g_array_new (FALSE, TRUE, sizeof (Acc));
  for (guint t = 0; t < fb_trace_get_n_tracks (pic->trace); t++)
    {
      const FbTrack *tr = fb_trace_get_track (pic->trace, t);
      for (guint s = 0; s < tr->n_spans; s++)
        {
          const FbSpan *sp = &tr->spans[s];
          if (sp->kind != FB_SPAN_KERNEL || sp->depth > 0)
            continue;
          int idx = GPOINTER_TO_INT (g_hash_table_lookup (by_name, sp->name)) - 1;
          if (idx < 0)
            {
              Acc a = { sp->name, 0, 0, 0, 0 };
              g_autoptr (GHashTable) seen = g_hash_table_new (g_direct_hash, g_direct_equal);
              for (guint k = 0; k < sp->n_instr; k++)
                {
                  FbInstr *i = g_hash_table_lookup (owner, &sp->instr_ids[k]);
                  if (i && g_hash_table_add (seen, i))
                    {
                      FbCost c = fb_cost_instr (i);
                      a.flops += c.flops;
                      a.bytes += c.bytes;
                    }
                }
              g_array_append_val (acc, a);
              idx = acc->len - 1;
              g_hash_table_insert (by_name, (gpointer) sp->name, GINT_TO_POINTER (idx + 1));
            }
          Acc *a = &g_array_index (acc, Acc, idx);
          a->seconds += fb_span_duration_ns (sp) / 1e9;
          a->runs++;
        }
    }
  pic->points = g_new0 (FbRooflinePoint, MAX (1, acc->len));
  for (guint i = 0; i < acc->len; i++)
    {
      Acc *a = &g_array_index (acc, Acc, i);
      FbRooflinePoint *p = &pic->points[pic->n_points++];
      p->label = a->name;
      p->intensity = a->bytes > 0 ? a->flops / a->bytes : 0;
      p->flops_per_s = a->seconds > 0 ? a->flops * a->runs / a->seconds : 0;
      pic->peak_flops = MAX (pic->peak_flops, p->flops_per_s);
      pic->peak_bytes = MAX (pic->peak_bytes, a->seconds > 0 ? a->bytes * a->runs / a->seconds : 0);
    }
  const char *pf = fb_trace_get_metadata (pic->trace, "peak_flops_per_s");
  const char *pb = fb_trace_get_metadata (pic->trace, "peak_bytes_per_s");
  if (pf)
    pic->peak_flops = g_ascii_strtod (pf, NULL);
  if (pb)
    pic->peak_bytes = g_ascii_strtod (pb, NULL);
}

int
fb_cli_render (int argc, char **argv)
{
  int module_index = 0, width = 0, height = 0;
  g_autofree char *after = NULL, *diff = NULL, *what_s = NULL, *trace_path = NULL, *out = NULL;
  const GOptionEntry entries[] = {
    { "module", 'm', 0, G_OPTION_ARG_INT, &module_index,
      "Which module of a file with several (separated by `// -----`), counted from 0", "N" },
    { "after", 'a', 0, G_OPTION_ARG_STRING, &after, "Draw the module after this pass of the default pipeline", "PASS" },
    { "diff", 'd', 0, G_OPTION_ARG_STRING, &diff, "Draw what this pass changed (implies --what diff)", "PASS" },
    { "what", 'w', 0, G_OPTION_ARG_STRING, &what_s,
      "Picture: graph (default), diff, timeline, memory, throughput or roofline", "WHAT" },
    { "trace", 't', 0, G_OPTION_ARG_FILENAME, &trace_path, "A recorded trace (Chrome trace JSON) for timeline, memory and roofline", "T.json" },
    { "width", 'W', 0, G_OPTION_ARG_INT, &width, "Picture width in pixels or points (default: fits the content, at most 4096)", "W" },
    { "height", 'H', 0, G_OPTION_ARG_INT, &height, "Picture height (default: fits the content, at most 4096)", "H" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Output file: .png, .svg or .pdf", "OUT" },
    { NULL }
  };
  int rc = fb_cli_parse_options (&argc, &argv, "FILE -o OUT.png|svg|pdf",
                                 "Draw a module's graph, a pass's diff, memory, throughput, timeline or roofline.",
                                 entries);
  if (rc == -1)
    return FB_EXIT_OK;
  if (rc != 0)
    return rc;

  Picture pic = { 0 };
  pic.what = diff ? WHAT_DIFF : WHAT_GRAPH;
  if (what_s)
    {
      gboolean found = FALSE;
      for (gsize i = 0; i < G_N_ELEMENTS (what_names); i++)
        if (strcmp (what_s, what_names[i]) == 0)
          {
            pic.what = i;
            found = TRUE;
          }
      if (!found)
        {
          g_autofree char *m = g_strdup_printf ("unknown --what '%s' (use graph, diff, timeline, memory, throughput or roofline)", what_s);
          return usage_error (m);
        }
    }
  if (argc != 2)
    return usage_error (argc < 2 ? "missing FILE" : "only one FILE may be given");
  if (out == NULL)
    return usage_error ("missing -o OUT.png|svg|pdf");
  if (module_index < 0)
    return usage_error ("--module must be 0 or more");
  if (after && diff)
    return usage_error ("--after and --diff cannot be used together");
  if (diff && pic.what != WHAT_DIFF)
    return usage_error ("--diff draws a diff; it cannot be used with another --what");
  if (width < 0 || height < 0 || width > 32768 || height > 32768)
    return usage_error ("--width and --height must be between 1 and 32768");
  const char *pass = diff ? diff : after;
  if (pass && fb_pass_lookup (pass) == NULL)
    {
      GString *names = g_string_new (NULL);
      int n = 0;
      const FbPass *const *all = fb_passes_all (&n);
      for (int i = 0; i < n; i++)
        g_string_append_printf (names, "%s%s", i ? ", " : "", all[i]->name);
      g_autofree char *m = g_strdup_printf ("unknown pass '%s' (passes: %s)", pass, names->str);
      g_string_free (names, TRUE);
      return usage_error (m);
    }
  if ((pic.what == WHAT_TIMELINE || pic.what == WHAT_ROOFLINE) && trace_path == NULL)
    return usage_error ("--what timeline and roofline need --trace T.json");
  g_autoptr (GError) error = NULL;
  if (!fb_render_format_from_path (out, NULL, &error))
    return fb_cli_fail (error);

  FbModule *module = fb_cli_load_module (argv[1], module_index, &error);
  if (module == NULL)
    return fb_cli_fail (error);
  if (module->entry == NULL)
    {
      fprintf (stderr, "fusebox-cli render: %s: the module has no entry computation\n", argv[1]);
      fb_module_free (module);
      return FB_EXIT_INPUT;
    }

  GPtrArray *snaps = NULL;
  guint at = 0;   /* the snapshot shown */
  FbModule *shown = module;
  if (pass || pic.what == WHAT_DIFF || pic.what == WHAT_THROUGHPUT)
    {
      snaps = run_until (module, pass, &error);
      if (snaps == NULL)
        {
          fb_module_free (module);
          return fb_cli_fail (error);
        }
      /* the pipeline yields a snapshot for every pass, disabled ones too */
      for (guint i = 1; i < snaps->len; i++)
        {
          FbSnapshot *s = g_ptr_array_index (snaps, i);
          if (s->pass && s->enabled)
            at = i;
          if (pass && s->pass && strcmp (s->pass->name, pass) == 0)
            {
              at = i;
              break;
            }
        }
      shown = ((FbSnapshot *) g_ptr_array_index (snaps, at))->module;
    }
  if (trace_path)
    {
      pic.trace = fb_chrome_trace_read (trace_path, &error);
      if (pic.trace == NULL)
        {
          g_clear_pointer (&snaps, g_ptr_array_unref);
          fb_module_free (module);
          return fb_cli_fail (error);
        }
    }

  double cw = 1000, ch = 700;
  switch (pic.what)
    {
    case WHAT_GRAPH:
      pic.layout = fb_graph_layout_new (shown->entry, NULL, NULL);
      fb_graph_layout_get_size (pic.layout, &cw, &ch);
      break;
    case WHAT_DIFF:
      {
        FbSnapshot *a = g_ptr_array_index (snaps, at > 0 ? at - 1 : 0);
        FbSnapshot *b = g_ptr_array_index (snaps, at);
        pic.diff = fb_diff_view_new_from_snapshots (a, b, NULL, NULL);
        fb_graph_layout_get_size (fb_diff_view_get_layout (pic.diff), &cw, &ch);
        ch += 30;
        printf ("%s\n", fb_diff_view_get_summary (pic.diff));
      }
      break;
    case WHAT_MEMORY:
      pic.plan = fb_buffer_plan_new (shown, &error);
      if (pic.plan == NULL && pic.trace == NULL)
        {
          g_clear_pointer (&snaps, g_ptr_array_unref);
          fb_module_free (module);
          return fb_cli_fail (error);
        }
      break;
    case WHAT_THROUGHPUT:
      {
        FbSnapshot *a = g_ptr_array_index (snaps, 0);
        FbSnapshot *b = g_ptr_array_index (snaps, at);
        throughput_items (&pic, &a->stats, &b->stats);
        pic.a_name = "input";
        pic.b_name = b->pass ? b->pass->name : "input";
        ch = 320;
      }
      break;
    case WHAT_TIMELINE:
      ch = 400;
      break;
    case WHAT_ROOFLINE:
      roofline_points (&pic, shown);
      break;
    }
  if (width == 0)
    width = (int) CLAMP (ceil (cw), 200, 4096);
  if (height == 0)
    height = (int) CLAMP (ceil (ch), 150, 4096);

  gboolean ok = fb_render_to_file (out, width, height, paint, &pic, &error);
  g_clear_pointer (&pic.layout, fb_graph_layout_free);
  g_clear_pointer (&pic.diff, fb_diff_view_free);
  g_clear_pointer (&pic.plan, fb_buffer_plan_free);
  g_clear_pointer (&pic.trace, fb_trace_unref);
  g_free (pic.points);
  g_clear_pointer (&snaps, g_ptr_array_unref);
  fb_module_free (module);
  if (!ok)
    return fb_cli_fail (error);
  return FB_EXIT_OK;
}
