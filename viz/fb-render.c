/* SPDX-License-Identifier: MIT
 *
 * Output files: any painter drawn into a PNG, SVG or PDF surface of the
 * requested size, chosen by the file's extension, and the Graphviz DOT
 * text of a computation for people who want to lay it out with `dot`.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <glib/gstdio.h>

#include "fb-paint.h"

#define MAX_SIDE 32768

gboolean
fb_render_format_from_path (const char *path, FbRenderFormat *out, GError **error)
{
  g_return_val_if_fail (path != NULL, FALSE);
  const char *dot = strrchr (path, '.');
  const char *slash = strrchr (path, '/');
  if (dot == NULL || (slash && dot < slash))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
                   "%s: no file extension; use .png, .svg or .pdf", path);
      return FALSE;
    }
  FbRenderFormat f;
  if (g_ascii_strcasecmp (dot, ".png") == 0)
    f = FB_RENDER_PNG;
  else if (g_ascii_strcasecmp (dot, ".svg") == 0)
    f = FB_RENDER_SVG;
  else if (g_ascii_strcasecmp (dot, ".pdf") == 0)
    f = FB_RENDER_PDF;
  else
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
                   "%s: unknown output format '%s'; use .png, .svg or .pdf", path, dot);
      return FALSE;
    }
  if (out)
    *out = f;
  return TRUE;
}

static cairo_status_t
write_chunk (void *closure, const unsigned char *data, unsigned int length)
{
  FILE *fp = closure;
  return fwrite (data, 1, length, fp) == length ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

gboolean
fb_render_to_file (const char *path, int width, int height,
                   FbPaintFunc paint, gpointer user_data, GError **error)
{
  g_return_val_if_fail (path != NULL && paint != NULL, FALSE);
  FbRenderFormat format;
  if (!fb_render_format_from_path (path, &format, error))
    return FALSE;
  if (width <= 0 || height <= 0 || width > MAX_SIDE || height > MAX_SIDE)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
                   "picture size %d x %d is out of range (1 to %d on each side)", width, height, MAX_SIDE);
      return FALSE;
    }
  FILE *fp = g_fopen (path, "wb");
  if (fp == NULL)
    {
      int e = errno;
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot write: %s", path, g_strerror (e));
      return FALSE;
    }

  cairo_surface_t *surface;
  switch (format)
    {
    case FB_RENDER_SVG:
      surface = cairo_svg_surface_create_for_stream (write_chunk, fp, width, height);
      break;
    case FB_RENDER_PDF:
      surface = cairo_pdf_surface_create_for_stream (write_chunk, fp, width, height);
      break;
    case FB_RENDER_PNG:
    default:
      surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, width, height);
      break;
    }
  cairo_status_t st = cairo_surface_status (surface);
  if (st == CAIRO_STATUS_SUCCESS)
    {
      cairo_t *cr = cairo_create (surface);
      paint (cr, width, height, user_data);
      st = cairo_status (cr);
      cairo_destroy (cr);
      if (st == CAIRO_STATUS_SUCCESS && format == FB_RENDER_PNG)
        st = cairo_surface_write_to_png_stream (surface, write_chunk, fp);
      cairo_surface_finish (surface);
      if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status (surface);
    }
  cairo_surface_destroy (surface);
  gboolean closed = fclose (fp) == 0;
  if (st != CAIRO_STATUS_SUCCESS || !closed)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot write: %s", path,
                   st != CAIRO_STATUS_SUCCESS ? cairo_status_to_string (st) : g_strerror (errno));
      g_unlink (path);
      return FALSE;
    }
  return TRUE;
}

/* -------------------------------------------------------------- DOT */

static FbComputation *
callee_of (const FbInstr *instr)
{
  if (instr->opcode == FB_OP_FUSION)
    return fb_instr_comp (instr, FB_A_CALLS);
  if (instr->opcode == FB_OP_CALL)
    return fb_instr_comp (instr, FB_A_TO_APPLY);
  return NULL;
}

static void
dot_escape (GString *out, const char *s)
{
  for (; *s; s++)
    {
      if (*s == '"' || *s == '\\')
        g_string_append_c (out, '\\');
      g_string_append_c (out, *s);
    }
}

static void
dot_comp (GString *out, FbComputation *comp, gboolean expand, GHashTable *done, int depth)
{
  for (FbInstr *i = comp->first; i; i = i->next)
    {
      FbComputation *callee = callee_of (i);
      if (expand && callee && callee->root && depth < 8 && !g_hash_table_contains (done, callee))
        {
          g_hash_table_add (done, callee);
          g_string_append_printf (out, "  subgraph \"cluster_%s\" {\n    label=\"", i->name);
          dot_escape (out, i->name);
          g_string_append (out, "\";\n");
          dot_comp (out, callee, expand, done, depth + 1);
          g_string_append (out, "  }\n");
          /* the fusion's value is its root's; its operands feed the parameters */
          g_string_append (out, "  \"");
          dot_escape (out, i->name);
          g_string_append (out, "\" [shape=point];\n  \"");
          dot_escape (out, callee->root->name);
          g_string_append (out, "\" -> \"");
          dot_escape (out, i->name);
          g_string_append (out, "\";\n");
          for (int p = 0; p < callee->n_params && p < i->n_operands; p++)
            if (callee->params[p])
              {
                g_string_append (out, "  \"");
                dot_escape (out, i->operands[p]->name);
                g_string_append (out, "\" -> \"");
                dot_escape (out, callee->params[p]->name);
                g_string_append (out, "\";\n");
              }
          continue;
        }
      const char *title = fb_opcode_name (i->opcode);
      g_autofree char *shape = fb_shape_to_string (i->shape);
      g_string_append (out, "  \"");
      dot_escape (out, i->name);
      g_string_append (out, "\" [label=\"");
      dot_escape (out, title);
      g_string_append (out, "\\n");
      dot_escape (out, shape);
      g_string_append (out, "\\n");
      dot_escape (out, i->name);
      g_string_append (out, "\"];\n");
      for (int j = 0; j < i->n_operands; j++)
        {
          g_string_append (out, "  \"");
          dot_escape (out, i->operands[j]->name);
          g_string_append (out, "\" -> \"");
          dot_escape (out, i->name);
          g_string_append (out, "\";\n");
        }
    }
}

char *
fb_graph_to_dot (FbComputation *comp, gboolean expand_fusions)
{
  g_return_val_if_fail (comp != NULL, NULL);
  GString *out = g_string_new ("digraph \"");
  dot_escape (out, comp->name ? comp->name : "computation");
  g_string_append (out, "\" {\n  node [shape=box, fontname=\"Sans\", fontsize=8];\n");
  g_autoptr (GHashTable) done = g_hash_table_new (g_direct_hash, g_direct_equal);
  dot_comp (out, comp, expand_fusions, done, 0);
  g_string_append (out, "}\n");
  return g_string_free (out, FALSE);
}
