/* SPDX-License-Identifier: MIT
 *
 * Fusebox's JSON form of a module, written and read with json-c. The form is
 * lossless against the IR: header, aliasing, layouts, stack tables, every
 * computation and instruction with its typed attributes, literals (raw bytes
 * in base64, so every bit survives), provenance and metadata. The reader
 * trusts nothing: a syntax error is reported at its line and column, a schema
 * error with the JSON path of the offending value, e.g.
 * `computations[2].instructions[5].shape: expected an object, got a string`.
 * The schema is documented in docs/json-format.md.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "fb-json.h"

#define FORMAT_NAME    "fusebox-module"
#define FORMAT_VERSION 1
#define MAX_RANK       64
#define MAX_DEPTH      256
#define MAX_LITERAL_BYTES (G_GINT64_CONSTANT (512) << 20)

static const char *const kind_names[] = {
  [FB_AV_INT] = "int", [FB_AV_BOOL] = "bool", [FB_AV_FLOAT] = "float",
  [FB_AV_STRING] = "string", [FB_AV_IDENT] = "ident", [FB_AV_DIMS] = "dims",
  [FB_AV_SLICE] = "slice", [FB_AV_PADDING] = "padding", [FB_AV_WINDOW] = "window",
  [FB_AV_DIM_LABELS] = "dim_labels", [FB_AV_COMP] = "comp", [FB_AV_COMPS] = "comps",
  [FB_AV_RAW] = "raw",
};

static const char *const dyn_names[] = { "static", "bounded", "unbounded" };

/* ================================================================ writer */

static json_object *
int_array (int n, const int64_t *v)
{
  json_object *a = json_object_new_array_ext (n);
  for (int i = 0; i < n; i++)
    json_object_array_add (a, json_object_new_int64 (v[i]));
  return a;
}

static json_object *
name_or_null (const char *s)
{
  return s ? json_object_new_string (s) : NULL;
}

static json_object *
float_value (double v)
{
  if (isnan (v))
    return json_object_new_string ("nan");
  if (isinf (v))
    return json_object_new_string (v < 0 ? "-inf" : "inf");
  return json_object_new_double (v);
}

static json_object *
shape_to_json (const FbShape *s)
{
  json_object *o = json_object_new_object ();
  if (s->type == FB_TUPLE)
    {
      json_object_object_add (o, "type", json_object_new_string ("tuple"));
      json_object *e = json_object_new_array_ext (s->n_elems);
      for (int i = 0; i < s->n_elems; i++)
        json_object_array_add (e, shape_to_json (s->elems[i]));
      json_object_object_add (o, "elements", e);
      return o;
    }
  json_object_object_add (o, "type", json_object_new_string (fb_elem_type_name (s->type)));
  if (!fb_elem_type_is_array (s->type))
    return o;
  json_object_object_add (o, "dims", int_array (s->rank, s->dims));
  if (s->dyn)
    {
      json_object *d = json_object_new_array_ext (s->rank);
      for (int i = 0; i < s->rank; i++)
        json_object_array_add (d, json_object_new_string (dyn_names[s->dyn[i] <= FB_DIM_UNBOUNDED ? s->dyn[i] : 0]));
      json_object_object_add (o, "dynamic", d);
    }
  if (s->layout)
    {
      json_object_object_add (o, "layout", int_array (s->layout->n, s->layout->minor_to_major));
      if (s->layout->extra)
        json_object_object_add (o, "layout_extra", json_object_new_string (s->layout->extra));
    }
  return o;
}

static json_object *
literal_to_json (const FbLiteral *lit)
{
  json_object *o = json_object_new_object ();
  json_object_object_add (o, "shape", shape_to_json (lit->shape));
  if (lit->shape->type == FB_TUPLE)
    {
      json_object *e = json_object_new_array_ext (lit->n_elems);
      for (int i = 0; i < lit->n_elems; i++)
        json_object_array_add (e, literal_to_json (lit->elems[i]));
      json_object_object_add (o, "elements", e);
      return o;
    }
  gsize bytes = (gsize) fb_shape_elements (lit->shape) * fb_elem_type_bytes (lit->shape->type);
  g_autofree char *b64 = g_base64_encode (lit->data, lit->data ? bytes : 0);
  json_object_object_add (o, "data", json_object_new_string (b64));
  return o;
}

static json_object *
label_group (const char *ka, int64_t a, const char *kb, int64_t b, int n, const int64_t *spatial)
{
  json_object *o = json_object_new_object ();
  json_object_object_add (o, ka, json_object_new_int64 (a));
  json_object_object_add (o, kb, json_object_new_int64 (b));
  json_object_object_add (o, "spatial", int_array (n, spatial));
  return o;
}

static json_object *
attr_value_to_json (const FbAttr *a)
{
  switch (a->kind)
    {
    case FB_AV_INT:
      return json_object_new_int64 (a->v.i);
    case FB_AV_BOOL:
      return json_object_new_boolean (a->v.i != 0);
    case FB_AV_FLOAT:
      return float_value (a->v.f);
    case FB_AV_STRING:
    case FB_AV_IDENT:
    case FB_AV_RAW:
      return json_object_new_string (a->v.s ? a->v.s : "");
    case FB_AV_DIMS:
      return int_array (a->v.dims.n, a->v.dims.v);
    case FB_AV_SLICE:
    case FB_AV_PADDING:
      {
        int n = a->kind == FB_AV_SLICE ? a->v.slice.n : a->v.pad.n;
        json_object *arr = json_object_new_array_ext (n);
        for (int i = 0; i < n; i++)
          {
            int64_t t[3];
            if (a->kind == FB_AV_SLICE)
              t[0] = a->v.slice.d[i].start, t[1] = a->v.slice.d[i].limit, t[2] = a->v.slice.d[i].stride;
            else
              t[0] = a->v.pad.d[i].lo, t[1] = a->v.pad.d[i].hi, t[2] = a->v.pad.d[i].interior;
            json_object_array_add (arr, int_array (3, t));
          }
        return arr;
      }
    case FB_AV_WINDOW:
      {
        json_object *arr = json_object_new_array_ext (a->v.window.n);
        for (int i = 0; i < a->v.window.n; i++)
          {
            const FbWindowDim *d = &a->v.window.d[i];
            json_object *o = json_object_new_object ();
            json_object_object_add (o, "size", json_object_new_int64 (d->size));
            if (d->stride != 1)
              json_object_object_add (o, "stride", json_object_new_int64 (d->stride));
            if (d->pad_lo != 0)
              json_object_object_add (o, "pad_lo", json_object_new_int64 (d->pad_lo));
            if (d->pad_hi != 0)
              json_object_object_add (o, "pad_hi", json_object_new_int64 (d->pad_hi));
            if (d->lhs_dilate != 1)
              json_object_object_add (o, "lhs_dilate", json_object_new_int64 (d->lhs_dilate));
            if (d->rhs_dilate != 1)
              json_object_object_add (o, "rhs_dilate", json_object_new_int64 (d->rhs_dilate));
            if (d->reversal)
              json_object_object_add (o, "reversal", json_object_new_boolean (TRUE));
            json_object_array_add (arr, o);
          }
        return arr;
      }
    case FB_AV_DIM_LABELS:
      {
        const FbConvDims *c = &a->v.conv;
        json_object *o = json_object_new_object ();
        json_object_object_add (o, "input", label_group ("batch", c->in_batch, "feature", c->in_feature,
                                                         c->n_spatial, c->in_spatial));
        json_object_object_add (o, "kernel", label_group ("input", c->k_in, "output", c->k_out,
                                                          c->n_spatial, c->k_spatial));
        json_object_object_add (o, "output", label_group ("batch", c->out_batch, "feature", c->out_feature,
                                                          c->n_spatial, c->out_spatial));
        return o;
      }
    case FB_AV_COMP:
    case FB_AV_COMPS:
      {
        if (a->kind == FB_AV_COMP && a->v.comps.n == 1)
          return json_object_new_string (a->v.comps.c[0] ? a->v.comps.c[0]->name : "");
        json_object *arr = json_object_new_array_ext (a->v.comps.n);
        for (int i = 0; i < a->v.comps.n; i++)
          json_object_array_add (arr, json_object_new_string (a->v.comps.c[i] ? a->v.comps.c[i]->name : ""));
        return arr;
      }
    }
  return NULL;
}

static json_object *
instr_to_json (const FbInstr *instr)
{
  json_object *o = json_object_new_object ();
  json_object_object_add (o, "name", json_object_new_string (instr->name));
  json_object_object_add (o, "id", json_object_new_int64 (instr->id));
  json_object_object_add (o, "opcode", json_object_new_string (fb_opcode_name (instr->opcode)));
  json_object_object_add (o, "shape", shape_to_json (instr->shape));
  json_object *ops = json_object_new_array_ext (instr->n_operands);
  for (int i = 0; i < instr->n_operands; i++)
    json_object_array_add (ops, json_object_new_string (instr->operands[i] ? instr->operands[i]->name : ""));
  json_object_object_add (o, "operands", ops);
  if (instr->opcode == FB_OP_PARAMETER)
    json_object_object_add (o, "parameter_number", json_object_new_int64 (instr->parameter_number));
  if (instr->literal_elided)
    json_object_object_add (o, "literal_elided", json_object_new_boolean (TRUE));
  /* An elided constant holds zeros: the flag says it all. */
  if (instr->literal && !instr->literal_elided)
    json_object_object_add (o, "literal", literal_to_json (instr->literal));
  if (instr->opcode_suffix)
    json_object_object_add (o, "opcode_suffix", json_object_new_string (instr->opcode_suffix));
  json_object *attrs = json_object_new_array_ext (instr->n_attrs);
  for (int i = 0; i < instr->n_attrs; i++)
    {
      const FbAttr *a = &instr->attrs[i];
      json_object *ao = json_object_new_object ();
      json_object_object_add (ao, "key", json_object_new_string (a->name ? a->name : fb_attr_key_name (a->key)));
      json_object_object_add (ao, "kind", json_object_new_string (kind_names[a->kind]));
      json_object_object_add (ao, "value", attr_value_to_json (a));
      if (a->kind == FB_AV_COMPS)
        json_object_object_add (ao, "braced", json_object_new_boolean (a->v.comps.braced));
      json_object_array_add (attrs, ao);
    }
  json_object_object_add (o, "attributes", attrs);
  json_object_object_add (o, "provenance", int_array (instr->n_prov, instr->prov));
  return o;
}

static json_object *
alias_to_json (const FbAlias *a, gboolean donor)
{
  json_object *o = json_object_new_object ();
  if (!donor)
    json_object_object_add (o, "output_index", int_array (a->output_index.n, a->output_index.v));
  json_object_object_add (o, "parameter", json_object_new_int64 (a->param_number));
  json_object_object_add (o, "parameter_index", int_array (a->param_index.n, a->param_index.v));
  if (!donor && a->kind)
    json_object_object_add (o, "kind", json_object_new_string (a->kind));
  return o;
}

/* In pretty output, small records (an instruction, an alias, a shape of the
 * entry layout) stay on one line each: the file reads top to bottom like the
 * HLO text instead of one number per line. */
static void
append_compact (struct printbuf *pb, json_object *v)
{
  const char *s = json_object_to_json_string_ext (v, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
  printbuf_memappend (pb, s, (int) strlen (s));
}

static int
compact_serializer (json_object *o, struct printbuf *pb, int level, int flags)
{
  if (json_object_is_type (o, json_type_array))
    {
      printbuf_strappend (pb, "[ ");
      for (size_t i = 0; i < json_object_array_length (o); i++)
        {
          if (i > 0)
            printbuf_strappend (pb, ", ");
          append_compact (pb, json_object_array_get_idx (o, i));
        }
      if (json_object_array_length (o) > 0)
        printbuf_strappend (pb, " ]");
      else
        printbuf_strappend (pb, "]");
      return 0;
    }
  printbuf_strappend (pb, "{ ");
  gboolean first = TRUE;
  json_object_object_foreach (o, key, child)
    {
      printbuf_memappend (pb, first ? "\"" : ", \"", first ? 1 : 3);
      printbuf_memappend (pb, key, (int) strlen (key));   /* keys are plain identifiers */
      printbuf_strappend (pb, "\": ");
      append_compact (pb, child);
      first = FALSE;
    }
  if (first)
    printbuf_strappend (pb, "}");
  else
    printbuf_strappend (pb, " }");
  return 0;
}

static json_object *
one_line (json_object *o, gboolean pretty)
{
  if (pretty)
    json_object_set_serializer (o, compact_serializer, NULL, NULL);
  return o;
}

char *
fb_json_from_module (FbModule *m, gboolean pretty)
{
  g_return_val_if_fail (m != NULL, NULL);

  json_object *root = json_object_new_object ();
  json_object_object_add (root, "format", json_object_new_string (FORMAT_NAME));
  json_object_object_add (root, "version", json_object_new_int (FORMAT_VERSION));
  json_object_object_add (root, "name", json_object_new_string (m->name));
  json_object_object_add (root, "entry", name_or_null (m->entry ? m->entry->name : NULL));
  json_object_object_add (root, "is_scheduled", json_object_new_boolean (m->is_scheduled));
  json_object_object_add (root, "next_id", json_object_new_int64 (m->next_id));
  if (m->entry_layout_result)
    {
      json_object *l = json_object_new_object ();
      json_object *p = json_object_new_array_ext (m->n_entry_layout_params);
      for (int i = 0; i < m->n_entry_layout_params; i++)
        json_object_array_add (p, one_line (shape_to_json (m->entry_layout_params[i]), pretty));
      json_object_object_add (l, "parameters", p);
      json_object_object_add (l, "result", one_line (shape_to_json (m->entry_layout_result), pretty));
      json_object_object_add (root, "entry_computation_layout", l);
    }
  json_object *aliases = json_object_new_array_ext (m->n_aliases);
  for (int i = 0; i < m->n_aliases; i++)
    json_object_array_add (aliases, one_line (alias_to_json (&m->aliases[i], FALSE), pretty));
  if (m->n_aliases > 0)
    json_object_object_add (root, "input_output_alias", aliases);
  else
    json_object_put (aliases);
  json_object *donors = json_object_new_array_ext (m->n_donors);
  for (int i = 0; i < m->n_donors; i++)
    json_object_array_add (donors, one_line (alias_to_json (&m->donors[i], TRUE), pretty));
  if (m->n_donors > 0)
    json_object_object_add (root, "buffer_donor", donors);
  else
    json_object_put (donors);
  json_object *hdr = json_object_new_array_ext (m->n_header_attrs);
  for (int i = 0; i < m->n_header_attrs; i++)
    {
      json_object *h = json_object_new_object ();
      json_object_object_add (h, "key", json_object_new_string (m->header_attrs[i].key));
      json_object_object_add (h, "value", json_object_new_string (m->header_attrs[i].value ? m->header_attrs[i].value : ""));
      json_object_array_add (hdr, one_line (h, pretty));
    }
  if (m->n_header_attrs > 0)
    json_object_object_add (root, "header_attributes", hdr);
  else
    json_object_put (hdr);
  if (m->stack_tables)
    json_object_object_add (root, "stack_tables", json_object_new_string (m->stack_tables));

  json_object *comps = json_object_new_array_ext (m->n_comps);
  for (int c = 0; c < m->n_comps; c++)
    {
      const FbComputation *comp = m->comps[c];
      json_object *co = json_object_new_object ();
      json_object_object_add (co, "name", json_object_new_string (comp->name));
      json_object_object_add (co, "root", name_or_null (comp->root ? comp->root->name : NULL));
      if (comp->is_fusion)
        json_object_object_add (co, "is_fusion", json_object_new_boolean (TRUE));
      if (comp->has_signature)
        json_object_object_add (co, "has_signature", json_object_new_boolean (TRUE));
      if (comp->execution_thread)
        json_object_object_add (co, "execution_thread", json_object_new_string (comp->execution_thread));
      json_object *instrs = json_object_new_array_ext (comp->n_instrs);
      for (const FbInstr *i = comp->first; i; i = i->next)
        json_object_array_add (instrs, one_line (instr_to_json (i), pretty));
      json_object_object_add (co, "instructions", instrs);
      json_object_array_add (comps, co);
    }
  json_object_object_add (root, "computations", comps);

  int flags = JSON_C_TO_STRING_NOSLASHESCAPE | (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                                                       : JSON_C_TO_STRING_PLAIN);
  size_t len = 0;
  const char *text = json_object_to_json_string_length (root, flags, &len);
  char *out = g_malloc (len + 2);
  memcpy (out, text, len);
  out[len] = '\n';
  out[len + 1] = '\0';
  json_object_put (root);
  return out;
}

/* ================================================================ reader */

typedef struct {
  const char *file;
  FbModule   *m;
  GString    *path;      /* JSON path of the value being read */
  GError    **error;
  gboolean    failed;
} Reader;

static const char *
type_word (json_object *o)
{
  switch (json_object_get_type (o))
    {
    case json_type_null:    return "null";
    case json_type_boolean: return "a boolean";
    case json_type_double:  return "a number";
    case json_type_int:     return "an integer";
    case json_type_object:  return "an object";
    case json_type_array:   return "an array";
    case json_type_string:  return "a string";
    }
  return "something else";
}

static gboolean G_GNUC_PRINTF (2, 3)
fail (Reader *r, const char *fmt, ...)
{
  if (r->failed)
    return FALSE;
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (r->error, FB_ERROR, FB_ERROR_PARSE, "%s: %s: %s", r->file,
               r->path->len ? r->path->str : "(top level)", msg);
  r->failed = TRUE;
  return FALSE;
}

/* Fails at member @key of the current value. */
static gboolean G_GNUC_PRINTF (3, 4)
fail_at (Reader *r, const char *key, const char *fmt, ...)
{
  if (r->failed)
    return FALSE;
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (r->error, FB_ERROR, FB_ERROR_PARSE, "%s: %s%s%s: %s", r->file,
               r->path->str, r->path->len ? "." : "", key, msg);
  r->failed = TRUE;
  return FALSE;
}

/* Path helpers: push returns the length to restore with pop. */
static gsize
push_key (Reader *r, const char *key)
{
  gsize len = r->path->len;
  if (len > 0)
    g_string_append_c (r->path, '.');
  g_string_append (r->path, key);
  return len;
}

static gsize
push_index (Reader *r, gsize i)
{
  gsize len = r->path->len;
  g_string_append_printf (r->path, "[%" G_GSIZE_FORMAT "]", i);
  return len;
}

static void
pop (Reader *r, gsize len)
{
  g_string_truncate (r->path, len);
}

static gboolean
expect_type (Reader *r, json_object *o, json_type t, const char *what)
{
  if (o != NULL && json_object_is_type (o, t))
    return TRUE;
  return fail (r, "expected %s, got %s", what, o ? type_word (o) : "null");
}

/* A member of @obj; NULL (and an error when @required) if absent or null. */
static json_object *
member (Reader *r, json_object *obj, const char *key, gboolean required)
{
  json_object *v = NULL;
  if (!json_object_object_get_ex (obj, key, &v) || v == NULL)
    {
      if (required)
        {
          gsize l = push_key (r, key);
          fail (r, "missing");
          pop (r, l);
        }
      return NULL;
    }
  return v;
}

static gboolean
read_int (Reader *r, json_object *v, int64_t min, int64_t max, int64_t *out)
{
  if (!expect_type (r, v, json_type_int, "an integer"))
    return FALSE;
  errno = 0;
  int64_t x = json_object_get_int64 (v);
  if (errno == ERANGE || x < min || x > max)
    return fail (r, "%s is out of range (%" G_GINT64_FORMAT "..%" G_GINT64_FORMAT ")",
                 json_object_get_string (v), min, max);
  *out = x;
  return TRUE;
}

static gboolean
get_int (Reader *r, json_object *obj, const char *key, gboolean required, int64_t min, int64_t max,
         int64_t fallback, int64_t *out)
{
  json_object *v = member (r, obj, key, required);
  *out = fallback;
  if (v == NULL)
    return !r->failed;
  gsize l = push_key (r, key);
  gboolean ok = read_int (r, v, min, max, out);
  pop (r, l);
  return ok;
}

static gboolean
get_bool (Reader *r, json_object *obj, const char *key, gboolean *out)
{
  json_object *v = member (r, obj, key, FALSE);
  *out = FALSE;
  if (v == NULL)
    return TRUE;
  gsize l = push_key (r, key);
  gboolean ok = expect_type (r, v, json_type_boolean, "true or false");
  pop (r, l);
  if (ok)
    *out = json_object_get_boolean (v);
  return ok;
}

/* A string member copied into the arena; NULL when absent and optional. */
static gboolean
get_string (Reader *r, json_object *obj, const char *key, gboolean required, char **out)
{
  json_object *v = member (r, obj, key, required);
  *out = NULL;
  if (v == NULL)
    return !r->failed;
  gsize l = push_key (r, key);
  gboolean ok = expect_type (r, v, json_type_string, "a string");
  pop (r, l);
  if (ok)
    *out = fb_arena_strndup (r->m->arena, json_object_get_string (v), json_object_get_string_len (v));
  return ok;
}

static json_object *
get_array (Reader *r, json_object *obj, const char *key, gboolean required)
{
  json_object *v = member (r, obj, key, required);
  if (v == NULL)
    return NULL;
  gsize l = push_key (r, key);
  gboolean ok = expect_type (r, v, json_type_array, "an array");
  pop (r, l);
  return ok ? v : NULL;
}

/* An array of integers at the current path into the arena. */
static gboolean
read_int_array (Reader *r, json_object *v, int64_t min, int64_t max, int *n_out, int64_t **out)
{
  if (!expect_type (r, v, json_type_array, "an array of integers"))
    return FALSE;
  size_t n = json_object_array_length (v);
  if (n > G_MAXINT / 16)
    return fail (r, "too many entries");
  int64_t *a = fb_arena_new0 (r->m->arena, int64_t, MAX (n, 1));
  for (size_t i = 0; i < n; i++)
    {
      gsize l = push_index (r, i);
      gboolean ok = read_int (r, json_object_array_get_idx (v, i), min, max, &a[i]);
      pop (r, l);
      if (!ok)
        return FALSE;
    }
  *n_out = (int) n;
  *out = a;
  return TRUE;
}

static gboolean
get_int_array (Reader *r, json_object *obj, const char *key, gboolean required, int64_t min, int64_t max,
               int *n_out, int64_t **out)
{
  json_object *v = member (r, obj, key, required);
  *n_out = 0;
  *out = NULL;
  if (v == NULL)
    return !r->failed;
  gsize l = push_key (r, key);
  gboolean ok = read_int_array (r, v, min, max, n_out, out);
  pop (r, l);
  return ok;
}

/* ---------------------------------------------------------------- shapes */

static FbShape *read_shape (Reader *r, json_object *o);

static FbShape *
get_shape (Reader *r, json_object *obj, const char *key)
{
  json_object *v = member (r, obj, key, TRUE);
  if (v == NULL)
    return NULL;
  gsize l = push_key (r, key);
  FbShape *s = read_shape (r, v);
  pop (r, l);
  return s;
}

static FbShape *
read_shape (Reader *r, json_object *o)
{
  FbArena *arena = r->m->arena;
  char *type = NULL;
  FbElemType t;

  if (!expect_type (r, o, json_type_object, "an object (a shape)") || !get_string (r, o, "type", TRUE, &type))
    return NULL;
  if (strcmp (type, "tuple") == 0)
    {
      json_object *e = get_array (r, o, "elements", TRUE);
      if (e == NULL)
        return NULL;
      int n = (int) MIN (json_object_array_length (e), (size_t) G_MAXINT / 16);
      FbShape **elems = fb_arena_new0 (arena, FbShape *, MAX (n, 1));
      gsize l = push_key (r, "elements");
      for (int i = 0; i < n; i++)
        {
          gsize li = push_index (r, i);
          elems[i] = read_shape (r, json_object_array_get_idx (e, i));
          pop (r, li);
          if (elems[i] == NULL)
            return NULL;
        }
      pop (r, l);
      return fb_shape_new_tuple (arena, n, elems);
    }
  if (!fb_elem_type_lookup (type, -1, &t))
    {
      fail_at (r, "type", "unknown element type '%s'", type);
      return NULL;
    }
  if (!fb_elem_type_is_array (t))
    return fb_shape_new_scalar (arena, t);

  int rank = 0;
  int64_t *dims = NULL;
  if (!get_int_array (r, o, "dims", TRUE, -1, G_MAXINT64, &rank, &dims))
    return NULL;
  if (rank > MAX_RANK)
    {
      fail_at (r, "dims", "rank %d is more than %d", rank, MAX_RANK);
      return NULL;
    }
  FbShape *s = fb_shape_new_array (arena, t, rank, dims);

  json_object *dyn = get_array (r, o, "dynamic", FALSE);
  if (r->failed)
    return NULL;
  gsize l = push_key (r, "dynamic");
  if (dyn && json_object_array_length (dyn) != (size_t) rank)
    {
      fail (r, "has %zu entries for %d dimensions", json_object_array_length (dyn), rank);
      return NULL;
    }
  if (dyn)
    {
      s->dyn = fb_arena_new0 (arena, uint8_t, MAX (rank, 1));
      for (int i = 0; i < rank; i++)
        {
          json_object *d = json_object_array_get_idx (dyn, i);
          gsize li = push_index (r, i);
          int k = -1;
          if (expect_type (r, d, json_type_string, "\"static\", \"bounded\" or \"unbounded\""))
            for (int j = 0; j < 3; j++)
              if (strcmp (json_object_get_string (d), dyn_names[j]) == 0)
                k = j;
          if (k < 0)
            fail (r, "expected \"static\", \"bounded\" or \"unbounded\"");
          pop (r, li);
          if (r->failed)
            return NULL;
          s->dyn[i] = (uint8_t) k;
        }
    }
  for (int i = 0; i < rank; i++)
    if (dims[i] < 0 && !(s->dyn && s->dyn[i] == FB_DIM_UNBOUNDED))
      {
        pop (r, l);
        push_key (r, "dims");
        push_index (r, i);
        fail (r, "a dimension is negative but not marked unbounded");
        return NULL;
      }
  pop (r, l);

  json_object *lay = member (r, o, "layout", FALSE);
  if (lay)
    {
      FbLayout *layout = fb_arena_new0 (arena, FbLayout, 1);
      l = push_key (r, "layout");
      if (!read_int_array (r, lay, 0, MAX (rank - 1, 0), &layout->n, &layout->minor_to_major))
        return NULL;
      guint64 seen = 0;
      for (int i = 0; i < layout->n; i++)
        {
          guint64 bit = (guint64) 1 << layout->minor_to_major[i];
          if (seen & bit)
            {
              fail (r, "dimension %" G_GINT64_FORMAT " appears twice", layout->minor_to_major[i]);
              return NULL;
            }
          seen |= bit;
        }
      if (layout->n != rank && layout->n != 0)
        {
          fail (r, "has %d entries for %d dimensions", layout->n, rank);
          return NULL;
        }
      pop (r, l);
      if (!get_string (r, o, "layout_extra", FALSE, &layout->extra))
        return NULL;
      s->layout = layout;
    }
  return r->failed ? NULL : s;
}

/* -------------------------------------------------------------- literals */

static FbLiteral *
read_literal (Reader *r, json_object *o)
{
  FbArena *arena = r->m->arena;

  if (!expect_type (r, o, json_type_object, "an object (a literal)"))
    return NULL;
  FbShape *shape = get_shape (r, o, "shape");
  if (shape == NULL)
    return NULL;
  if (shape->type == FB_TUPLE)
    {
      json_object *e = get_array (r, o, "elements", TRUE);
      if (e == NULL)
        return NULL;
      gsize l = push_key (r, "elements");
      if (json_object_array_length (e) != (size_t) shape->n_elems)
        {
          fail (r, "has %zu entries for a tuple of %d", json_object_array_length (e), shape->n_elems);
          return NULL;
        }
      FbLiteral *lit = fb_arena_new0 (arena, FbLiteral, 1);
      lit->shape = shape;
      lit->n_elems = shape->n_elems;
      lit->elems = fb_arena_new0 (arena, FbLiteral *, MAX (shape->n_elems, 1));
      for (int i = 0; i < shape->n_elems; i++)
        {
          gsize li = push_index (r, i);
          lit->elems[i] = read_literal (r, json_object_array_get_idx (e, i));
          pop (r, li);
          if (lit->elems[i] == NULL)
            return NULL;
        }
      pop (r, l);
      return lit;
    }
  if (!fb_shape_is_array (shape) || shape->dyn)
    {
      fail_at (r, "shape", "a literal needs a static array or tuple shape");
      return NULL;
    }
  /* Expected size, with overflow checks; compared with the decoded bytes
   * before anything that large is allocated. */
  guint64 want = (guint64) fb_elem_type_bytes (shape->type);
  for (int i = 0; i < shape->rank; i++)
    {
      if (shape->dims[i] != 0 && want > G_MAXINT64 / (guint64) shape->dims[i])
        want = G_MAXUINT64;
      else
        want *= (guint64) shape->dims[i];
    }
  char *b64 = NULL;
  if (!get_string (r, o, "data", TRUE, &b64))
    return NULL;
  gsize l = push_key (r, "data");
  for (const char *p = b64; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '+' && *p != '/' && *p != '=')
      {
        fail (r, "not base64: unexpected character '%c'", g_ascii_isprint (*p) ? *p : '?');
        return NULL;
      }
  gsize got = 0;
  g_autofree guint8 *data = g_base64_decode (b64, &got);
  if ((guint64) got != want)
    {
      fail (r, "holds %" G_GSIZE_FORMAT " bytes, the shape needs %" G_GUINT64_FORMAT, got, want);
      return NULL;
    }
  pop (r, l);
  FbLiteral *lit = fb_literal_new (arena, shape);
  if (got > 0)
    memcpy (lit->data, data, got);
  return lit;
}

/* Bytes of every array leaf of @s, or -1 beyond MAX_LITERAL_BYTES. */
static int64_t
literal_bytes (const FbShape *s)
{
  if (s->type == FB_TUPLE)
    {
      int64_t sum = 0;
      for (int i = 0; i < s->n_elems; i++)
        {
          int64_t b = literal_bytes (s->elems[i]);
          if (b < 0 || (sum += b) > MAX_LITERAL_BYTES)
            return -1;
        }
      return sum;
    }
  if (!fb_shape_is_array (s) || s->dyn)
    return -1;
  int64_t b = fb_elem_type_bytes (s->type);
  for (int i = 0; i < s->rank; i++)
    {
      if (s->dims[i] != 0 && b > MAX_LITERAL_BYTES / s->dims[i])
        return -1;
      b *= s->dims[i];
    }
  return b;
}

/* An elided constant (`{...}` in the text) is loaded as zeros, as the HLO
 * parser does. */
static gboolean
elided_zeros (Reader *r, FbInstr *instr)
{
  if (literal_bytes (instr->shape) < 0)
    {
      return fail_at (r, "shape", "an elided constant needs a static array or tuple shape of at most %d MiB", (int) (MAX_LITERAL_BYTES >> 20));
    }
  instr->literal = fb_literal_new (r->m->arena, instr->shape);
  return TRUE;
}

/* ------------------------------------------------------------ attributes */

static gboolean
read_float (Reader *r, json_object *v, double *out)
{
  if (v && json_object_is_type (v, json_type_string))
    {
      const char *s = json_object_get_string (v);
      if (strcmp (s, "inf") == 0)
        *out = INFINITY;
      else if (strcmp (s, "-inf") == 0)
        *out = -INFINITY;
      else if (strcmp (s, "nan") == 0)
        *out = NAN;
      else
        return fail (r, "expected a number, \"inf\", \"-inf\" or \"nan\", got \"%s\"", s);
      return TRUE;
    }
  if (v && (json_object_is_type (v, json_type_double) || json_object_is_type (v, json_type_int)))
    {
      *out = json_object_get_double (v);
      return TRUE;
    }
  return fail (r, "expected a number, got %s", v ? type_word (v) : "null");
}

static gboolean
read_label_group (Reader *r, json_object *o, const char *key, const char *ka, int64_t *a,
                  const char *kb, int64_t *b, int *n, int64_t **spatial)
{
  json_object *g = member (r, o, key, TRUE);
  if (g == NULL)
    return FALSE;
  gsize l = push_key (r, key);
  gboolean ok = expect_type (r, g, json_type_object, "an object")
                && get_int (r, g, ka, TRUE, 0, MAX_RANK, 0, a)
                && get_int (r, g, kb, TRUE, 0, MAX_RANK, 0, b)
                && get_int_array (r, g, "spatial", TRUE, 0, MAX_RANK, n, spatial);
  if (ok && *n > MAX_RANK - 2)
    ok = fail (r, "too many spatial dimensions");
  pop (r, l);
  return ok;
}

static gboolean
read_dim_labels (Reader *r, json_object *v, FbConvDims *c)
{
  int n_in = 0, n_k = 0, n_out = 0;
  if (!expect_type (r, v, json_type_object, "an object (dimension labels)")
      || !read_label_group (r, v, "input", "batch", &c->in_batch, "feature", &c->in_feature, &n_in, &c->in_spatial)
      || !read_label_group (r, v, "kernel", "input", &c->k_in, "output", &c->k_out, &n_k, &c->k_spatial)
      || !read_label_group (r, v, "output", "batch", &c->out_batch, "feature", &c->out_feature, &n_out, &c->out_spatial))
    return FALSE;
  if (n_in != n_k || n_in != n_out)
    return fail (r, "input, kernel and output have %d, %d and %d spatial dimensions", n_in, n_k, n_out);
  c->n_spatial = n_in;
  return TRUE;
}

static gboolean
read_window (Reader *r, json_object *v, FbAttr *a)
{
  if (!expect_type (r, v, json_type_array, "an array (window dimensions)"))
    return FALSE;
  int n = (int) MIN (json_object_array_length (v), (size_t) MAX_RANK + 1);
  if (n > MAX_RANK)
    return fail (r, "more than %d window dimensions", MAX_RANK);
  a->v.window.n = n;
  a->v.window.d = fb_arena_new0 (r->m->arena, FbWindowDim, MAX (n, 1));
  for (int i = 0; i < n; i++)
    {
      json_object *o = json_object_array_get_idx (v, i);
      FbWindowDim *d = &a->v.window.d[i];
      gsize l = push_index (r, i);
      gboolean ok = expect_type (r, o, json_type_object, "an object (a window dimension)")
                    && get_int (r, o, "size", TRUE, 0, G_MAXINT64, 0, &d->size)
                    && get_int (r, o, "stride", FALSE, 0, G_MAXINT64, 1, &d->stride)
                    && get_int (r, o, "pad_lo", FALSE, G_MININT64, G_MAXINT64, 0, &d->pad_lo)
                    && get_int (r, o, "pad_hi", FALSE, G_MININT64, G_MAXINT64, 0, &d->pad_hi)
                    && get_int (r, o, "lhs_dilate", FALSE, 0, G_MAXINT64, 1, &d->lhs_dilate)
                    && get_int (r, o, "rhs_dilate", FALSE, 0, G_MAXINT64, 1, &d->rhs_dilate)
                    && get_bool (r, o, "reversal", &d->reversal);
      pop (r, l);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static gboolean
read_triples (Reader *r, json_object *v, int *n_out, int64_t **out)
{
  if (!expect_type (r, v, json_type_array, "an array of [a, b, c] triples"))
    return FALSE;
  int n = (int) MIN (json_object_array_length (v), (size_t) MAX_RANK + 1);
  if (n > MAX_RANK)
    return fail (r, "more than %d dimensions", MAX_RANK);
  int64_t *t = fb_arena_new0 (r->m->arena, int64_t, 3 * MAX (n, 1));
  for (int i = 0; i < n; i++)
    {
      int k = 0;
      int64_t *e = NULL;
      gsize l = push_index (r, i);
      gboolean ok = read_int_array (r, json_object_array_get_idx (v, i), G_MININT64, G_MAXINT64, &k, &e);
      if (ok && k != 3)
        ok = fail (r, "expected 3 integers, got %d", k);
      pop (r, l);
      if (!ok)
        return FALSE;
      memcpy (t + 3 * i, e, sizeof (int64_t) * 3);
    }
  *n_out = n;
  *out = t;
  return TRUE;
}

static gboolean
read_comp_ref (Reader *r, json_object *v, FbComputation **out)
{
  if (!expect_type (r, v, json_type_string, "a computation name"))
    return FALSE;
  *out = fb_module_find_computation (r->m, json_object_get_string (v));
  if (*out == NULL)
    return fail (r, "no computation named '%s'", json_object_get_string (v));
  return TRUE;
}

static gboolean
read_attr_value (Reader *r, json_object *v, FbAttr *a)
{
  FbArena *arena = r->m->arena;
  switch (a->kind)
    {
    case FB_AV_INT:
      return read_int (r, v, G_MININT64, G_MAXINT64, &a->v.i);
    case FB_AV_BOOL:
      if (!expect_type (r, v, json_type_boolean, "true or false"))
        return FALSE;
      a->v.i = json_object_get_boolean (v);
      return TRUE;
    case FB_AV_FLOAT:
      return read_float (r, v, &a->v.f);
    case FB_AV_STRING:
    case FB_AV_IDENT:
    case FB_AV_RAW:
      if (!expect_type (r, v, json_type_string, "a string"))
        return FALSE;
      a->v.s = fb_arena_strndup (arena, json_object_get_string (v), json_object_get_string_len (v));
      if (a->kind == FB_AV_IDENT && a->v.s[0] == '\0')
        return fail (r, "an identifier cannot be empty");
      return TRUE;
    case FB_AV_DIMS:
      if (!read_int_array (r, v, G_MININT64, G_MAXINT64, &a->v.dims.n, &a->v.dims.v))
        return FALSE;
      return TRUE;
    case FB_AV_SLICE:
    case FB_AV_PADDING:
      {
        int n = 0;
        int64_t *t = NULL;
        if (!read_triples (r, v, &n, &t))
          return FALSE;
        if (a->kind == FB_AV_SLICE)
          {
            a->v.slice.n = n;
            a->v.slice.d = fb_arena_new0 (arena, FbSliceDim, MAX (n, 1));
            for (int i = 0; i < n; i++)
              a->v.slice.d[i] = (FbSliceDim) { t[3 * i], t[3 * i + 1], t[3 * i + 2] };
          }
        else
          {
            a->v.pad.n = n;
            a->v.pad.d = fb_arena_new0 (arena, FbPadDim, MAX (n, 1));
            for (int i = 0; i < n; i++)
              a->v.pad.d[i] = (FbPadDim) { t[3 * i], t[3 * i + 1], t[3 * i + 2] };
          }
        return TRUE;
      }
    case FB_AV_WINDOW:
      return read_window (r, v, a);
    case FB_AV_DIM_LABELS:
      return read_dim_labels (r, v, &a->v.conv);
    case FB_AV_COMP:
    case FB_AV_COMPS:
      if (v && json_object_is_type (v, json_type_string))
        {
          a->v.comps.n = 1;
          a->v.comps.c = fb_arena_new0 (arena, FbComputation *, 1);
          return read_comp_ref (r, v, &a->v.comps.c[0]);
        }
      if (!expect_type (r, v, json_type_array, "a computation name or an array of names"))
        return FALSE;
      a->v.comps.n = (int) MIN (json_object_array_length (v), (size_t) G_MAXINT / 16);
      a->v.comps.c = fb_arena_new0 (arena, FbComputation *, MAX (a->v.comps.n, 1));
      for (int i = 0; i < a->v.comps.n; i++)
        {
          gsize l = push_index (r, i);
          gboolean ok = read_comp_ref (r, json_object_array_get_idx (v, i), &a->v.comps.c[i]);
          pop (r, l);
          if (!ok)
            return FALSE;
        }
      return TRUE;
    }
  return fail (r, "unknown attribute kind");
}

static gboolean
read_attr (Reader *r, json_object *o, FbInstr *instr)
{
  char *key = NULL, *kind = NULL;
  if (!expect_type (r, o, json_type_object, "an object (an attribute)")
      || !get_string (r, o, "key", TRUE, &key) || !get_string (r, o, "kind", TRUE, &kind))
    return FALSE;
  int k = -1;
  for (int i = 0; i < (int) G_N_ELEMENTS (kind_names); i++)
    if (strcmp (kind_names[i], kind) == 0)
      k = i;
  FbAttrKey akey = fb_attr_key_lookup (key, -1);
  gsize l = push_key (r, "kind");
  if (k < 0)
    fail (r, "unknown attribute kind '%s'", kind);
  else if (key[0] == '\0')
    fail (r, "the attribute key is empty");
  else if (akey == FB_A_RAW_KEY && k != FB_AV_RAW)
    fail (r, "attribute '%s' is not a typed attribute; its kind must be \"raw\"", key);
  else if (akey != FB_A_RAW_KEY && k != FB_AV_RAW && k != (int) fb_attr_key_kind (akey)
           && !((k == FB_AV_COMP || k == FB_AV_COMPS)
                && (fb_attr_key_kind (akey) == FB_AV_COMP || fb_attr_key_kind (akey) == FB_AV_COMPS)))
    fail (r, "attribute '%s' has kind \"%s\", not \"%s\"", key, kind_names[fb_attr_key_kind (akey)], kind);
  pop (r, l);
  if (r->failed)
    return FALSE;

  FbAttr *a = fb_instr_add_attr (instr, akey, key);
  a->kind = k;
  json_object *v = member (r, o, "value", TRUE);
  if (v == NULL)
    return FALSE;
  l = push_key (r, "value");
  gboolean ok = read_attr_value (r, v, a);
  pop (r, l);
  if (ok && k == FB_AV_COMPS)
    ok = get_bool (r, o, "braced", &a->v.comps.braced);
  return ok;
}

/* ---------------------------------------------------------- instructions */

/* Reads one instruction; operands are resolved later (they are created with
 * empty slots, filled once every name of the computation is known). */
static FbInstr *
read_instr (Reader *r, json_object *o, FbComputation *comp, GHashTable *names, GHashTable *ids)
{
  char *name = NULL, *opname = NULL;
  FbOpcode op;

  if (!expect_type (r, o, json_type_object, "an object (an instruction)")
      || !get_string (r, o, "name", TRUE, &name) || !get_string (r, o, "opcode", TRUE, &opname))
    return NULL;
  if (name[0] == '\0')
    return fail (r, "an instruction name cannot be empty"), NULL;
  if (g_hash_table_contains (names, name))
    {
      fail_at (r, "name", "'%s' is defined twice in computation '%s'", name, comp->name);
      return NULL;
    }
  if (!fb_opcode_lookup (opname, -1, &op))
    {
      fail_at (r, "opcode", "unknown opcode '%s'", opname);
      return NULL;
    }
  FbShape *shape = get_shape (r, o, "shape");
  if (shape == NULL)
    return NULL;
  json_object *ops = get_array (r, o, "operands", TRUE);
  if (ops == NULL)
    return NULL;
  int n_ops = (int) MIN (json_object_array_length (ops), (size_t) G_MAXINT / 16);
  gsize l = push_key (r, "operands");
  for (int i = 0; i < n_ops; i++)
    {
      gsize li = push_index (r, i);
      expect_type (r, json_object_array_get_idx (ops, i), json_type_string, "an instruction name");
      pop (r, li);
    }
  pop (r, l);
  if (r->failed)
    return NULL;

  g_autofree FbInstr **empty = g_new0 (FbInstr *, MAX (n_ops, 1));
  FbInstr *instr = fb_instr_new (comp, NULL, op, shape, n_ops, empty, name);
  g_hash_table_insert (names, instr->name, instr);

  if (!get_int (r, o, "id", TRUE, 0, G_MAXINT64 - 1, 0, &instr->id))
    return NULL;
  if (g_hash_table_contains (ids, &instr->id))
    {
      fail_at (r, "id", "id %" G_GINT64_FORMAT " is used twice", instr->id);
      return NULL;
    }
  g_hash_table_add (ids, &instr->id);

  if (op == FB_OP_PARAMETER
      && !get_int (r, o, "parameter_number", TRUE, 0, G_MAXINT / 16, 0, &instr->parameter_number))
    return NULL;
  if (!get_bool (r, o, "literal_elided", &instr->literal_elided)
      || !get_string (r, o, "opcode_suffix", FALSE, &instr->opcode_suffix))
    return NULL;
  json_object *lit = member (r, o, "literal", FALSE);
  if (lit)
    {
      l = push_key (r, "literal");
      instr->literal = read_literal (r, lit);
      pop (r, l);
      if (instr->literal == NULL)
        return NULL;
    }
  if (instr->literal_elided)
    {
      r->m->n_elided++;
      if (instr->literal == NULL && !elided_zeros (r, instr))
        return NULL;
    }

  json_object *attrs = get_array (r, o, "attributes", FALSE);
  if (r->failed)
    return NULL;
  l = push_key (r, "attributes");
  for (size_t i = 0; attrs && i < json_object_array_length (attrs); i++)
    {
      gsize li = push_index (r, i);
      gboolean ok = read_attr (r, json_object_array_get_idx (attrs, i), instr);
      pop (r, li);
      if (!ok)
        return NULL;
    }
  pop (r, l);

  int n_prov = 0;
  int64_t *prov = NULL;
  if (!get_int_array (r, o, "provenance", FALSE, 0, G_MAXINT64, &n_prov, &prov))
    return NULL;
  if (member (r, o, "provenance", FALSE))
    {
      instr->n_prov = n_prov;
      instr->prov = prov;
    }
  else
    instr->prov[0] = instr->id;
  return instr;
}

static gboolean
resolve_operands (Reader *r, json_object *o, FbInstr *instr, GHashTable *names)
{
  json_object *ops = member (r, o, "operands", TRUE);
  gsize l = push_key (r, "operands");
  for (int i = 0; i < instr->n_operands; i++)
    {
      const char *name = json_object_get_string (json_object_array_get_idx (ops, i));
      FbInstr *op = g_hash_table_lookup (names, name);
      if (op == NULL)
        {
          push_index (r, i);
          fail (r, "no instruction named '%s' in computation '%s'", name, instr->parent->name);
          return FALSE;
        }
      fb_instr_set_operand (instr, i, op);
    }
  pop (r, l);
  return TRUE;
}

/* ---------------------------------------------------------- computations */

static gboolean
read_computation_body (Reader *r, json_object *co, FbComputation *comp, GHashTable *ids)
{
  FbArena *arena = r->m->arena;
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);

  if (!get_bool (r, co, "is_fusion", &comp->is_fusion)
      || !get_bool (r, co, "has_signature", &comp->has_signature)
      || !get_string (r, co, "execution_thread", FALSE, &comp->execution_thread))
    return FALSE;
  json_object *instrs = get_array (r, co, "instructions", TRUE);
  if (instrs == NULL)
    return FALSE;
  size_t n = json_object_array_length (instrs);
  gsize l = push_key (r, "instructions");
  int64_t max_param = -1;
  for (size_t i = 0; i < n; i++)
    {
      gsize li = push_index (r, i);
      FbInstr *instr = read_instr (r, json_object_array_get_idx (instrs, i), comp, names, ids);
      pop (r, li);
      if (instr == NULL)
        return FALSE;
      if (instr->opcode == FB_OP_PARAMETER)
        max_param = MAX (max_param, instr->parameter_number);
    }
  if (max_param >= (int64_t) n)
    return fail (r, "computation '%s' has parameter %" G_GINT64_FORMAT " but only %zu instructions",
                 comp->name, max_param, n);
  FbInstr *instr = comp->first;
  for (size_t i = 0; i < n; i++, instr = instr->next)
    {
      gsize li = push_index (r, i);
      gboolean ok = resolve_operands (r, json_object_array_get_idx (instrs, i), instr, names);
      pop (r, li);
      if (!ok)
        return FALSE;
    }

  comp->n_params = (int) (max_param + 1);
  comp->params = fb_arena_new0 (arena, FbInstr *, MAX (comp->n_params, 1));
  instr = comp->first;
  for (size_t i = 0; i < n; i++, instr = instr->next)
    if (instr->opcode == FB_OP_PARAMETER)
      {
        if (comp->params[instr->parameter_number] != NULL)
          {
            push_index (r, i);
            push_key (r, "parameter_number");
            return fail (r, "parameter %" G_GINT64_FORMAT " of computation '%s' is defined twice",
                         instr->parameter_number, comp->name);
          }
        comp->params[instr->parameter_number] = instr;
      }
  for (int p = 0; p < comp->n_params; p++)
    if (comp->params[p] == NULL)
      return fail (r, "computation '%s' has no parameter %d (parameters are numbered from 0 without gaps)",
                   comp->name, p);
  pop (r, l);

  char *root = NULL;
  if (!get_string (r, co, "root", n > 0, &root))
    return FALSE;
  if (root)
    {
      comp->root = g_hash_table_lookup (names, root);
      if (comp->root == NULL)
        {
          return fail_at (r, "root", "no instruction named '%s' in computation '%s'", root, comp->name);
        }
    }
  return TRUE;
}

static gboolean
read_aliases (Reader *r, json_object *root, const char *key, gboolean donor, int *n_out, FbAlias **out)
{
  json_object *arr = get_array (r, root, key, FALSE);
  *n_out = 0;
  if (arr == NULL)
    return !r->failed;
  int n = (int) MIN (json_object_array_length (arr), (size_t) G_MAXINT / 64);
  FbAlias *a = fb_arena_new0 (r->m->arena, FbAlias, MAX (n, 1));
  gsize l = push_key (r, key);
  for (int i = 0; i < n; i++)
    {
      json_object *o = json_object_array_get_idx (arr, i);
      gsize li = push_index (r, i);
      gboolean ok = expect_type (r, o, json_type_object, "an object")
                    && (donor || get_int_array (r, o, "output_index", TRUE, 0, G_MAXINT64,
                                                &a[i].output_index.n, &a[i].output_index.v))
                    && get_int (r, o, "parameter", TRUE, 0, G_MAXINT, 0, &a[i].param_number)
                    && get_int_array (r, o, "parameter_index", TRUE, 0, G_MAXINT64,
                                      &a[i].param_index.n, &a[i].param_index.v)
                    && (donor || get_string (r, o, "kind", FALSE, &a[i].kind));
      if (ok && !donor && a[i].output_index.v == NULL)
        a[i].output_index.v = fb_arena_new0 (r->m->arena, int64_t, 1);
      pop (r, li);
      if (!ok)
        return FALSE;
    }
  pop (r, l);
  *n_out = n;
  *out = a;
  return TRUE;
}

static gboolean
read_header (Reader *r, json_object *root)
{
  FbModule *m = r->m;
  char *format = NULL;
  int64_t version = 0;

  if (!get_string (r, root, "format", TRUE, &format))
    return FALSE;
  if (strcmp (format, FORMAT_NAME) != 0)
    {
      return fail_at (r, "format", "expected \"%s\", got \"%s\"", FORMAT_NAME, format);
    }
  if (!get_int (r, root, "version", TRUE, 1, G_MAXINT, 0, &version))
    return FALSE;
  if (version > FORMAT_VERSION)
    {
      return fail_at (r, "version", "version %" G_GINT64_FORMAT " is newer than this Fusebox reads (%d)", version, FORMAT_VERSION);
    }
  if (!get_string (r, root, "name", TRUE, &m->name)
      || !get_bool (r, root, "is_scheduled", &m->is_scheduled)
      || !get_int (r, root, "next_id", TRUE, 1, G_MAXINT64, 1, &m->next_id)
      || !read_aliases (r, root, "input_output_alias", FALSE, &m->n_aliases, &m->aliases)
      || !read_aliases (r, root, "buffer_donor", TRUE, &m->n_donors, &m->donors)
      || !get_string (r, root, "stack_tables", FALSE, &m->stack_tables))
    return FALSE;

  json_object *layout = member (r, root, "entry_computation_layout", FALSE);
  if (layout)
    {
      gsize l = push_key (r, "entry_computation_layout");
      if (!expect_type (r, layout, json_type_object, "an object"))
        return FALSE;
      json_object *params = get_array (r, layout, "parameters", TRUE);
      if (params == NULL)
        return FALSE;
      m->n_entry_layout_params = (int) MIN (json_object_array_length (params), (size_t) G_MAXINT / 16);
      m->entry_layout_params = fb_arena_new0 (m->arena, FbShape *, MAX (m->n_entry_layout_params, 1));
      gsize lp = push_key (r, "parameters");
      for (int i = 0; i < m->n_entry_layout_params; i++)
        {
          gsize li = push_index (r, i);
          m->entry_layout_params[i] = read_shape (r, json_object_array_get_idx (params, i));
          pop (r, li);
          if (m->entry_layout_params[i] == NULL)
            return FALSE;
        }
      pop (r, lp);
      if ((m->entry_layout_result = get_shape (r, layout, "result")) == NULL)
        return FALSE;
      pop (r, l);
    }

  json_object *hdr = get_array (r, root, "header_attributes", FALSE);
  if (r->failed)
    return FALSE;
  if (hdr)
    {
      m->n_header_attrs = (int) MIN (json_object_array_length (hdr), (size_t) G_MAXINT / 16);
      m->header_attrs = fb_arena_new0 (m->arena, FbModuleAttr, MAX (m->n_header_attrs, 1));
      gsize l = push_key (r, "header_attributes");
      for (int i = 0; i < m->n_header_attrs; i++)
        {
          json_object *o = json_object_array_get_idx (hdr, i);
          gsize li = push_index (r, i);
          gboolean ok = expect_type (r, o, json_type_object, "an object")
                        && get_string (r, o, "key", TRUE, &m->header_attrs[i].key)
                        && get_string (r, o, "value", TRUE, &m->header_attrs[i].value);
          pop (r, li);
          if (!ok)
            return FALSE;
        }
      pop (r, l);
    }
  return TRUE;
}

static gboolean
read_module (Reader *r, json_object *root)
{
  FbModule *m = r->m;
  g_autoptr (GHashTable) ids = g_hash_table_new (g_int64_hash, g_int64_equal);

  if (!expect_type (r, root, json_type_object, "an object (a Fusebox module)") || !read_header (r, root))
    return FALSE;

  /* Creating instructions advances next_id; the file's value wins. */
  int64_t next_id = m->next_id;
  json_object *comps = get_array (r, root, "computations", TRUE);
  if (comps == NULL)
    return FALSE;
  size_t n = json_object_array_length (comps);
  gsize l = push_key (r, "computations");
  /* Every computation first, so that attributes can name any of them. */
  for (size_t c = 0; c < n; c++)
    {
      json_object *co = json_object_array_get_idx (comps, c);
      char *name = NULL;
      gsize lc = push_index (r, c);
      if (!expect_type (r, co, json_type_object, "an object (a computation)")
          || !get_string (r, co, "name", TRUE, &name))
        return FALSE;
      if (fb_module_find_computation (m, name))
        {
          push_key (r, "name");
          return fail (r, "computation '%s' is defined twice", name);
        }
      fb_module_add_computation (m, name);
      pop (r, lc);
    }
  for (size_t c = 0; c < n; c++)
    {
      gsize lc = push_index (r, c);
      if (!read_computation_body (r, json_object_array_get_idx (comps, c), m->comps[c], ids))
        return FALSE;
      pop (r, lc);
    }
  pop (r, l);
  m->next_id = next_id;

  char *entry = NULL;
  if (!get_string (r, root, "entry", FALSE, &entry))
    return FALSE;
  if (entry)
    {
      m->entry = fb_module_find_computation (m, entry);
      if (m->entry == NULL)
        {
          return fail_at (r, "entry", "no computation named '%s'", entry);
        }
      m->entry->is_entry = TRUE;
    }

  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, ids);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (*(int64_t *) key >= m->next_id)
      {
        return fail_at (r, "next_id", "%" G_GINT64_FORMAT " is not above every instruction id (%" G_GINT64_FORMAT " is used)", m->next_id, *(int64_t *) key);
      }
  return TRUE;
}

/* 1-based line and column of byte @offset. */
static void
offset_to_line_column (const char *text, gsize len, gsize offset, int *line, int *column)
{
  *line = 1;
  *column = 1;
  for (gsize i = 0; i < offset && i < len; i++)
    {
      if (text[i] == '\n')
        {
          (*line)++;
          *column = 1;
        }
      else
        (*column)++;
    }
}

FbModule *
fb_json_to_module (const char *text, gsize len, const char *path, GError **error)
{
  g_return_val_if_fail (text != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  const char *file = path ? path : "<input>";
  int line, column;

  if (len > G_MAXINT)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_PARSE, "%s: the file is too large for the JSON reader", file);
      return NULL;
    }
  json_tokener *tok = json_tokener_new_ex (MAX_DEPTH);
  json_tokener_set_flags (tok, JSON_TOKENER_STRICT);
  json_object *root = json_tokener_parse_ex (tok, text ? text : "", (int) len);
  enum json_tokener_error jerr = json_tokener_get_error (tok);
  gsize end = json_tokener_get_parse_end (tok);
  json_tokener_free (tok);

  if (jerr == json_tokener_continue || (jerr == json_tokener_success && root == NULL && end >= len))
    {
      offset_to_line_column (text, len, len, &line, &column);
      g_set_error (error, FB_ERROR, FB_ERROR_PARSE, "%s:%d:%d: JSON syntax error: unexpected end of input",
                   file, line, column);
      json_object_put (root);
      return NULL;
    }
  if (jerr != json_tokener_success)
    {
      /* The tokener stops at the offending character. */
      offset_to_line_column (text, len, end, &line, &column);
      g_set_error (error, FB_ERROR, FB_ERROR_PARSE, "%s:%d:%d: JSON syntax error: %s",
                   file, line, column, json_tokener_error_desc (jerr));
      return NULL;
    }
  for (gsize i = end; i < len; i++)
    if (!g_ascii_isspace (text[i]))
      {
        offset_to_line_column (text, len, i, &line, &column);
        g_set_error (error, FB_ERROR, FB_ERROR_PARSE,
                     "%s:%d:%d: JSON syntax error: unexpected text after the end of the module", file, line, column);
        json_object_put (root);
        return NULL;
      }

  g_autoptr (GString) jpath = g_string_new (NULL);
  FbModule *m = fb_module_new (NULL);
  m->source_path = fb_arena_strdup (m->arena, path);
  Reader r = { file, m, jpath, error, FALSE };
  gboolean ok = read_module (&r, root);
  json_object_put (root);
  if (!ok)
    {
      fb_module_free (m);
      return NULL;
    }
  return m;
}

FbModule *
fb_json_load_file (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  if (!g_file_get_contents (path, &text, &len, &local))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: %s", path, local->message);
      return NULL;
    }
  return fb_json_to_module (text, len, path, error);
}
