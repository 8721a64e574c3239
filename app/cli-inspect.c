/* SPDX-License-Identifier: MIT
 *
 * `fusebox-cli inspect FILE`: a summary of one module for a first look at a
 * dump. It names the module (and lists the others of a multi-module file),
 * its computations, an opcode histogram, the element types in use, the entry
 * parameters and outputs, aliasing and donors, elided constants and the
 * estimated FLOPs and bytes of one run of the entry computation. The module
 * is verified first, so a summary is never shown for an invalid module.
 * With --json the same facts come as one JSON object.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "fb-cli.h"
#include "fb-cost.h"
#include "fb-hlo.h"
#include "fb-verify.h"

typedef struct {
  const char *name;
  int         count;
} OpCount;

typedef struct {
  const char *path;
  int         index;
  int         n_modules;
  char      **names;        /* of every module in the file, NULL entries when unknown */
  FbModule   *module;
  FbCost      cost;
  GPtrArray  *notes;        /* char*: remarks on the cost estimate */
} Summary;

/* ----------------------------------------------------------- formatting */

static char *
human (double v, const char *const *units, int n_units, double step)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  int i = 0;
  while (v >= step && i < n_units - 1)
    {
      v /= step;
      i++;
    }
  g_ascii_formatd (buf, sizeof buf, i == 0 ? "%.0f" : "%.1f", v);
  return g_strdup_printf ("%s %s", buf, units[i]);
}

static char *
human_flops (double v)
{
  static const char *const units[] = { "FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP" };
  return human (v, units, G_N_ELEMENTS (units), 1000);
}

static char *
human_bytes (double v)
{
  static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
  return human (v, units, G_N_ELEMENTS (units), 1024);
}

static char *
human_count (double v)
{
  static const char *const units[] = { "", "k", "M", "G", "T", "P" };
  g_autofree char *s = human (v, units, G_N_ELEMENTS (units), 1000);
  return g_strchomp (g_steal_pointer (&s));
}

static char *
shape_str (const FbShape *s)
{
  GString *out = g_string_new (NULL);
  fb_shape_print (out, s, TRUE);
  return g_string_free (out, FALSE);
}

static char *
index_str (const FbDims *d)
{
  GString *out = g_string_new ("{");
  for (int i = 0; i < d->n; i++)
    g_string_append_printf (out, "%s%" G_GINT64_FORMAT, i ? ", " : "", d->v[i]);
  g_string_append_c (out, '}');
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------- gathering */

static int
compare_counts (gconstpointer a, gconstpointer b)
{
  const OpCount *x = a, *y = b;
  if (x->count != y->count)
    return y->count - x->count;
  return strcmp (x->name, y->name);
}

static GArray *
opcode_histogram (FbModule *m)
{
  int counts[FB_N_OPCODES] = { 0 };
  GArray *out = g_array_new (FALSE, FALSE, sizeof (OpCount));
  for (int i = 0; i < m->n_comps; i++)
    for (FbInstr *in = m->comps[i]->first; in; in = in->next)
      counts[in->opcode]++;
  for (int op = 0; op < FB_N_OPCODES; op++)
    if (counts[op] > 0)
      {
        OpCount c = { fb_opcode_name (op), counts[op] };
        g_array_append_val (out, c);
      }
  g_array_sort (out, compare_counts);
  return out;
}

static void
mark_types (const FbShape *s, gboolean *used)
{
  if (s == NULL)
    return;
  if (s->type == FB_TUPLE)
    {
      for (int i = 0; i < s->n_elems; i++)
        mark_types (s->elems[i], used);
      return;
    }
  used[s->type] = TRUE;
}

static GPtrArray *
element_types (FbModule *m)
{
  gboolean used[FB_N_ELEM_TYPES] = { FALSE };
  GPtrArray *out = g_ptr_array_new ();
  for (int i = 0; i < m->n_comps; i++)
    for (FbInstr *in = m->comps[i]->first; in; in = in->next)
      mark_types (in->shape, used);
  for (int t = 0; t < FB_N_ELEM_TYPES; t++)
    if (used[t])
      g_ptr_array_add (out, (gpointer) fb_elem_type_name (t));
  return out;
}

static void
collect_notes (Summary *s)
{
  FbModule *m = s->module;
  for (int i = 0; i < m->n_comps; i++)
    for (FbInstr *in = m->comps[i]->first; in; in = in->next)
      {
        if (in->opcode != FB_OP_WHILE)
          continue;
        const FbAttr *a = fb_instr_get_attr (in, FB_A_BACKEND_CONFIG);
        if (a == NULL || a->v.s == NULL || strstr (a->v.s, "known_trip_count") == NULL)
          g_ptr_array_add (s->notes, g_strdup_printf ("while %%%s: trip count unknown, body counted once", in->name));
      }
}

/* Names of the modules of a multi-module file, by parsing each. */
static void
list_modules (Summary *s, const char *text, gsize len)
{
  s->names = g_new0 (char *, s->n_modules + 1);
  for (int i = 0; i < s->n_modules; i++)
    {
      if (i == s->index)
        continue;
      FbModule *m = fb_hlo_parse (text, len, s->path, i, NULL);
      if (m)
        s->names[i] = g_strdup (m->name);
      g_clear_pointer (&m, fb_module_free);
    }
}

/* ---------------------------------------------------------------- output */

static void
outputs_foreach (const FbShape *root, void (*fn) (const char *index, const FbShape *shape, gpointer data),
                 gpointer data)
{
  if (root->type != FB_TUPLE)
    {
      fn ("{}", root, data);
      return;
    }
  for (int i = 0; i < root->n_elems; i++)
    {
      g_autofree char *idx = g_strdup_printf ("{%d}", i);
      fn (idx, root->elems[i], data);
    }
}

static void
print_output (const char *index, const FbShape *shape, gpointer data)
{
  g_autofree char *s = shape_str (shape);
  printf ("  %-6s %s\n", index, s);
}

static void
print_text (Summary *s)
{
  FbModule *m = s->module;
  g_autoptr (GArray) hist = opcode_histogram (m);
  g_autoptr (GPtrArray) types = element_types (m);
  FbComputation *e = m->entry;

  printf ("module: %s\n", m->name ? m->name : "(unnamed)");
  if (s->n_modules > 1)
    {
      printf ("modules in file: %d (showing %d)\n", s->n_modules, s->index);
      for (int i = 0; i < s->n_modules; i++)
        printf ("  %c %d %s\n", i == s->index ? '*' : ' ', i,
                i == s->index ? m->name : s->names[i] ? s->names[i] : "(does not parse)");
    }
  printf ("computations: %d\n", m->n_comps);
  for (int i = 0; i < m->n_comps; i++)
    {
      FbComputation *c = m->comps[i];
      printf ("  %-32s %6d instructions%s%s\n", c->name, c->n_instrs,
              c == e ? "  entry" : "", c->is_fusion ? "  fusion" : "");
    }
  printf ("instructions: %d\n", fb_module_instr_count (m));
  printf ("opcodes:\n");
  for (guint i = 0; i < hist->len; i++)
    {
      OpCount *c = &g_array_index (hist, OpCount, i);
      printf ("  %-28s %6d\n", c->name, c->count);
    }
  printf ("element types:");
  for (guint i = 0; i < types->len; i++)
    printf ("%s%s", i ? ", " : " ", (const char *) types->pdata[i]);
  printf ("\n");
  printf ("parameters: %d\n", e->n_params);
  for (int i = 0; i < e->n_params; i++)
    {
      if (e->params[i] == NULL)
        continue;
      g_autofree char *sh = shape_str (e->params[i]->shape);
      printf ("  %-6d %%%s %s\n", i, e->params[i]->name, sh);
    }
  printf ("outputs:\n");
  outputs_foreach (e->root->shape, print_output, NULL);
  printf ("input_output_alias: %d\n", m->n_aliases);
  for (int i = 0; i < m->n_aliases; i++)
    {
      const FbAlias *a = &m->aliases[i];
      g_autofree char *oi = index_str (&a->output_index), *pi = index_str (&a->param_index);
      printf ("  output %s <- parameter %" G_GINT64_FORMAT " %s%s%s\n", oi, a->param_number, pi,
              a->kind ? " " : "", a->kind ? a->kind : "");
    }
  printf ("buffer donors: %d\n", m->n_donors);
  for (int i = 0; i < m->n_donors; i++)
    {
      g_autofree char *pi = index_str (&m->donors[i].param_index);
      printf ("  parameter %" G_GINT64_FORMAT " %s\n", m->donors[i].param_number, pi);
    }
  printf ("elided constants: %d\n", m->n_elided);
  g_autofree char *fl = human_flops (s->cost.flops), *by = human_bytes (s->cost.bytes);
  g_autofree char *tr = human_count (s->cost.transcendentals);
  printf ("estimated flops: %s\n", fl);
  printf ("estimated transcendentals: %s\n", tr);
  printf ("estimated bytes: %s\n", by);
  for (guint i = 0; i < s->notes->len; i++)
    printf ("note: %s\n", (const char *) s->notes->pdata[i]);
}

static json_object *
json_index (const FbDims *d)
{
  json_object *a = json_object_new_array ();
  for (int i = 0; i < d->n; i++)
    json_object_array_add (a, json_object_new_int64 (d->v[i]));
  return a;
}

static void
json_output (const char *index, const FbShape *shape, gpointer data)
{
  json_object *o = json_object_new_object ();
  g_autofree char *sh = shape_str (shape);
  json_object_object_add (o, "index", json_object_new_string (index));
  json_object_object_add (o, "shape", json_object_new_string (sh));
  json_object_array_add (data, o);
}

static void
print_json (Summary *s)
{
  FbModule *m = s->module;
  FbComputation *e = m->entry;
  g_autoptr (GArray) hist = opcode_histogram (m);
  g_autoptr (GPtrArray) types = element_types (m);
  json_object *root = json_object_new_object ();

  json_object_object_add (root, "file", json_object_new_string (s->path));
  json_object_object_add (root, "module", json_object_new_string (m->name ? m->name : ""));
  json_object_object_add (root, "module_index", json_object_new_int (s->index));
  json_object *mods = json_object_new_array ();
  for (int i = 0; i < s->n_modules; i++)
    {
      json_object *o = json_object_new_object ();
      const char *name = i == s->index ? m->name : s->names ? s->names[i] : NULL;
      json_object_object_add (o, "index", json_object_new_int (i));
      json_object_object_add (o, "name", name ? json_object_new_string (name) : NULL);
      json_object_object_add (o, "shown", json_object_new_boolean (i == s->index));
      json_object_array_add (mods, o);
    }
  json_object_object_add (root, "modules", mods);

  json_object *comps = json_object_new_array ();
  for (int i = 0; i < m->n_comps; i++)
    {
      FbComputation *c = m->comps[i];
      json_object *o = json_object_new_object ();
      json_object_object_add (o, "name", json_object_new_string (c->name));
      json_object_object_add (o, "instructions", json_object_new_int (c->n_instrs));
      json_object_object_add (o, "entry", json_object_new_boolean (c == e));
      json_object_object_add (o, "fusion", json_object_new_boolean (c->is_fusion));
      json_object_array_add (comps, o);
    }
  json_object_object_add (root, "computations", comps);
  json_object_object_add (root, "instructions", json_object_new_int (fb_module_instr_count (m)));

  json_object *ops = json_object_new_object ();
  for (guint i = 0; i < hist->len; i++)
    {
      OpCount *c = &g_array_index (hist, OpCount, i);
      json_object_object_add (ops, c->name, json_object_new_int (c->count));
    }
  json_object_object_add (root, "opcodes", ops);
  json_object *ty = json_object_new_array ();
  for (guint i = 0; i < types->len; i++)
    json_object_array_add (ty, json_object_new_string (types->pdata[i]));
  json_object_object_add (root, "element_types", ty);

  json_object *params = json_object_new_array ();
  for (int i = 0; i < e->n_params; i++)
    {
      if (e->params[i] == NULL)
        continue;
      json_object *o = json_object_new_object ();
      g_autofree char *sh = shape_str (e->params[i]->shape);
      json_object_object_add (o, "number", json_object_new_int (i));
      json_object_object_add (o, "name", json_object_new_string (e->params[i]->name));
      json_object_object_add (o, "shape", json_object_new_string (sh));
      json_object_array_add (params, o);
    }
  json_object_object_add (root, "parameters", params);
  json_object *outs = json_object_new_array ();
  outputs_foreach (e->root->shape, json_output, outs);
  json_object_object_add (root, "outputs", outs);

  json_object *aliases = json_object_new_array ();
  for (int i = 0; i < m->n_aliases; i++)
    {
      const FbAlias *a = &m->aliases[i];
      json_object *o = json_object_new_object ();
      json_object_object_add (o, "output_index", json_index (&a->output_index));
      json_object_object_add (o, "parameter", json_object_new_int64 (a->param_number));
      json_object_object_add (o, "parameter_index", json_index (&a->param_index));
      json_object_object_add (o, "kind", a->kind ? json_object_new_string (a->kind) : NULL);
      json_object_array_add (aliases, o);
    }
  json_object_object_add (root, "input_output_alias", aliases);
  json_object *donors = json_object_new_array ();
  for (int i = 0; i < m->n_donors; i++)
    {
      json_object *o = json_object_new_object ();
      json_object_object_add (o, "parameter", json_object_new_int64 (m->donors[i].param_number));
      json_object_object_add (o, "parameter_index", json_index (&m->donors[i].param_index));
      json_object_array_add (donors, o);
    }
  json_object_object_add (root, "buffer_donors", donors);
  json_object_object_add (root, "elided_constants", json_object_new_int (m->n_elided));

  json_object *cost = json_object_new_object ();
  g_autofree char *fl = human_flops (s->cost.flops), *by = human_bytes (s->cost.bytes);
  json_object_object_add (cost, "flops", json_object_new_double (s->cost.flops));
  json_object_object_add (cost, "transcendentals", json_object_new_double (s->cost.transcendentals));
  json_object_object_add (cost, "bytes", json_object_new_double (s->cost.bytes));
  json_object_object_add (cost, "flops_text", json_object_new_string (fl));
  json_object_object_add (cost, "bytes_text", json_object_new_string (by));
  json_object *notes = json_object_new_array ();
  for (guint i = 0; i < s->notes->len; i++)
    json_object_array_add (notes, json_object_new_string (s->notes->pdata[i]));
  json_object_object_add (cost, "notes", notes);
  json_object_object_add (root, "cost", cost);

  int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE;
  printf ("%s\n", json_object_to_json_string_ext (root, flags));
  json_object_put (root);
}

/* ------------------------------------------------------------ diagnostics */

/* A verifier error names `path:line:column:`; add the source line and a
 * caret under the column, as parse errors have. */
static void
print_with_source (const GError *error, const char *path, const char *text, gsize len)
{
  fprintf (stderr, "%s\n", error->message);
  if (text == NULL || !g_str_has_prefix (error->message, path))
    return;
  const char *p = error->message + strlen (path);
  char *end;
  if (*p != ':')
    return;
  long line = strtol (p + 1, &end, 10);
  if (*end != ':' || line < 1)
    return;
  long col = strtol (end + 1, &end, 10);
  if (*end != ':' || col < 1)
    return;
  const char *l = text, *stop = text + len;
  for (long i = 1; i < line && l < stop; i++)
    {
      const char *nl = memchr (l, '\n', stop - l);
      l = nl ? nl + 1 : stop;
    }
  if (l >= stop)
    return;
  const char *nl = memchr (l, '\n', stop - l);
  int n = (int) ((nl ? nl : stop) - l);
  fprintf (stderr, "%.*s\n", n, l);
  for (long i = 1; i < col && i <= n; i++)
    fputc (l[i - 1] == '\t' ? '\t' : ' ', stderr);
  fprintf (stderr, "^\n");
}

static gboolean
looks_like_json (const char *path, const char *text, gsize len)
{
  const char *p = text;
  while (p < text + len && g_ascii_isspace (*p))
    p++;
  return g_str_has_suffix (path, ".json") || (p < text + len && *p == '{');
}

int
fb_cli_inspect (int argc, char **argv)
{
  int module_index = 0;
  gboolean as_json = FALSE, no_verify = FALSE;
  g_auto (GStrv) files = NULL;
  const GOptionEntry entries[] = {
    { "module", 'm', 0, G_OPTION_ARG_INT, &module_index, "Show module N of a multi-module file (from 0)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &as_json, "Print one JSON object instead of text", NULL },
    { "no-verify", 0, 0, G_OPTION_ARG_NONE, &no_verify, "Summarise even if the module does not verify", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &files, NULL, "FILE" },
    { NULL }
  };
  int rc = fb_cli_parse_options (&argc, &argv, "- summarise a module",
                                 "Prints a module's computations, opcode histogram, element types, parameters,\n"
                                 "outputs, aliasing and estimated FLOPs and bytes of its entry computation.",
                                 entries);
  if (rc == -1)
    return FB_EXIT_OK;
  if (rc != 0)
    return rc;
  if (files == NULL || files[0] == NULL || files[1] != NULL)
    {
      fprintf (stderr, "fusebox-cli inspect: expected exactly one FILE (see --help)\n");
      return FB_EXIT_USAGE;
    }
  if (module_index < 0)
    {
      fprintf (stderr, "fusebox-cli inspect: --module must be 0 or more\n");
      return FB_EXIT_USAGE;
    }

  Summary s = { files[0], module_index, 1, NULL, NULL, { 0, 0, 0 }, g_ptr_array_new_with_free_func (g_free) };
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;
  int status = FB_EXIT_OK;

  if (!g_file_get_contents (s.path, &text, &len, &error))
    {
      fprintf (stderr, "fusebox-cli: %s\n", error->message);
      status = FB_EXIT_INPUT;
      goto out;
    }
  if (!looks_like_json (s.path, text, len))
    s.n_modules = fb_hlo_count_modules (text, len);
  if (module_index >= s.n_modules)
    {
      fprintf (stderr, "fusebox-cli inspect: --module %d: %s has %d module%s\n", module_index, s.path,
               s.n_modules, s.n_modules == 1 ? "" : "s");
      status = FB_EXIT_USAGE;
      goto out;
    }
  s.module = fb_cli_load_module (s.path, module_index, &error);
  if (s.module == NULL)
    {
      status = fb_cli_fail (error);
      goto out;
    }
  if (!no_verify && !fb_verify (s.module, &error))
    {
      print_with_source (error, s.path, text, len);
      status = FB_EXIT_INPUT;
      goto out;
    }
  if (s.n_modules > 1)
    list_modules (&s, text, len);
  if (s.module->entry)
    s.cost = fb_cost_computation (s.module->entry);
  collect_notes (&s);
  if (s.module->entry == NULL || s.module->entry->root == NULL)
    {
      fprintf (stderr, "%s: the module has no entry computation with a root\n", s.path);
      status = FB_EXIT_INPUT;
      goto out;
    }
  if (as_json)
    print_json (&s);
  else
    print_text (&s);

out:
  g_clear_pointer (&s.module, fb_module_free);
  g_strfreev (s.names);
  g_ptr_array_unref (s.notes);
  return status;
}
