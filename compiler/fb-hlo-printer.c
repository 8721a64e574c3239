/* SPDX-License-Identifier: MIT
 *
 * The HLO text printer. It writes a module the way XLA prints it, in the long
 * style (`%` before names, operand shapes, computation signatures) or the
 * short one (none of those), so that the output loads again in Fusebox and in
 * XLA. Printing is a fixed point: text printed from a parsed module parses
 * back to an equal module and prints again byte for byte the same. Floats are
 * written with the fewest digits that read back to the same bits.
 */
#include <math.h>
#include <string.h>

#include "fb-hlo.h"

/* XLA puts `/\*index=N*\/` before every fifth operand or parameter. */
#define INDEX_ANNOTATION_INTERVAL 5

static void
print_name (GString *out, const char *name, FbPrintStyle style)
{
  if (style == FB_PRINT_LONG)
    g_string_append_c (out, '%');
  g_string_append (out, name);
}

static void
print_int (GString *out, int64_t v)
{
  g_string_append_printf (out, "%" G_GINT64_FORMAT, v);
}

/* ------------------------------------------------------------- numbers */

/* Appends the shortest decimal form of @v that reads back (through
 * g_ascii_strtod and @accept) to the same value. */
static void
print_shortest (GString *out, double v, gboolean (*accept) (double parsed, gconstpointer data),
                gconstpointer data)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  char fmt[8];

  if (isnan (v))
    {
      g_string_append (out, signbit (v) ? "-nan" : "nan");
      return;
    }
  if (isinf (v))
    {
      g_string_append (out, v < 0 ? "-inf" : "inf");
      return;
    }
  /* Whole numbers as integers (`65504`, not `6.55e+04`), as XLA does. */
  if (v == floor (v) && fabs (v) < 1e16)
    {
      g_string_append_printf (out, "%.0f", v);
      return;
    }
  for (int digits = 1; digits <= 17; digits++)
    {
      g_snprintf (fmt, sizeof fmt, "%%.%dg", digits);
      g_ascii_formatd (buf, sizeof buf, fmt, v);
      if (accept (g_ascii_strtod (buf, NULL), data))
        break;
    }
  g_string_append (out, buf);
}

static gboolean
accept_double (double parsed, gconstpointer data)
{
  const double *want = data;
  return memcmp (&parsed, want, sizeof parsed) == 0;
}

typedef struct {
  FbElemType   type;
  const guint8 *bits;
} Encoded;

static gboolean
accept_encoded (double parsed, gconstpointer data)
{
  const Encoded *e = data;
  guint8 got[8] = { 0 };
  int bytes = fb_elem_type_bytes (e->type);
  fb_float_encode (e->type, got, parsed);
  return memcmp (got, e->bits, bytes) == 0;
}

static void
print_double (GString *out, double v)
{
  print_shortest (out, v, accept_double, &v);
}

/* One element of a FLOAT-kind type stored at @p. */
static void
print_float_elem (GString *out, FbElemType type, const guint8 *p)
{
  double v = fb_float_decode (type, p);
  if (type == FB_F64)
    {
      print_double (out, v);
      return;
    }
  Encoded e = { type, p };
  print_shortest (out, v, accept_encoded, &e);
}

/* ------------------------------------------------------------ literals */

static void
print_element (GString *out, const FbLiteral *lit, int64_t i)
{
  FbElemType t = lit->shape->type;
  int bytes = fb_elem_type_bytes (t);
  const guint8 *p = lit->data + (gsize) i * bytes;

  switch (fb_elem_type_kind (t))
    {
    case FB_KIND_PRED:
      g_string_append (out, p[0] ? "true" : "false");
      break;
    case FB_KIND_SINT:
      print_int (out, fb_literal_get_s64 (lit, i));
      break;
    case FB_KIND_UINT:
      g_string_append_printf (out, "%" G_GUINT64_FORMAT, (guint64) fb_literal_get_s64 (lit, i));
      break;
    case FB_KIND_FLOAT:
      print_float_elem (out, t, p);
      break;
    case FB_KIND_COMPLEX:
      {
        FbElemType part = t == FB_C64 ? FB_F32 : FB_F64;
        int half = bytes / 2;
        g_string_append_c (out, '(');
        print_float_elem (out, part, p);
        g_string_append (out, ", ");
        print_float_elem (out, part, p + half);
        g_string_append_c (out, ')');
      }
      break;
    default:
      break;
    }
}

/* Elements of dimension @dim onwards, starting at flat index *@next. */
static void
print_array_level (GString *out, const FbLiteral *lit, int dim, int64_t *next)
{
  const FbShape *s = lit->shape;
  int64_t n = MAX (s->dims[dim], 0);
  gboolean innermost = dim == s->rank - 1;

  if (n == 0)
    {
      g_string_append (out, "{}");
      return;
    }
  g_string_append (out, innermost ? "{" : "{ ");
  for (int64_t k = 0; k < n; k++)
    {
      if (k > 0)
        g_string_append (out, ", ");
      if (innermost)
        print_element (out, lit, (*next)++);
      else
        print_array_level (out, lit, dim + 1, next);
    }
  g_string_append (out, innermost ? "}" : " }");
}

void
fb_hlo_print_literal (GString *out, const FbLiteral *lit)
{
  g_return_if_fail (out != NULL && lit != NULL);

  if (lit->shape->type == FB_TUPLE)
    {
      g_string_append (out, "( ");
      for (int i = 0; i < lit->n_elems; i++)
        {
          if (i > 0)
            g_string_append (out, ", ");
          fb_hlo_print_literal (out, lit->elems[i]);
        }
      g_string_append (out, " )");
      return;
    }
  if (!fb_shape_is_array (lit->shape) || lit->data == NULL)
    return;
  if (lit->shape->rank == 0)
    {
      print_element (out, lit, 0);
      return;
    }
  int64_t next = 0;
  print_array_level (out, lit, 0, &next);
}

/* ---------------------------------------------------------- attributes */

static void
print_quoted (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    {
      switch (*p)
        {
        case '"':  g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\t': g_string_append (out, "\\t"); break;
        case '\r': g_string_append (out, "\\r"); break;
        default:
          if (*p < 0x20 || *p == 0x7f)
            g_string_append_printf (out, "\\%03o", *p);
          else
            g_string_append_c (out, *p);
        }
    }
  g_string_append_c (out, '"');
}

static void
print_dims (GString *out, const FbDims *d)
{
  g_string_append_c (out, '{');
  for (int i = 0; i < d->n; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      print_int (out, d->v[i]);
    }
  g_string_append_c (out, '}');
}

typedef enum { W_SIZE, W_STRIDE, W_PAD, W_LHS_DILATE, W_RHS_DILATE, W_REVERSAL } WindowField;

static gboolean
window_field_at_default (const FbWindowDim *d, WindowField f)
{
  switch (f)
    {
    case W_SIZE:       return FALSE;
    case W_STRIDE:     return d->stride == 1;
    case W_PAD:        return d->pad_lo == 0 && d->pad_hi == 0;
    case W_LHS_DILATE: return d->lhs_dilate == 1;
    case W_RHS_DILATE: return d->rhs_dilate == 1;
    case W_REVERSAL:   return !d->reversal;
    }
  return TRUE;
}

static void
print_window (GString *out, const FbAttr *a)
{
  static const char *const heading[] = { "size", "stride", "pad", "lhs_dilate", "rhs_dilate", "rhs_reversal" };
  int n = a->v.window.n;
  const FbWindowDim *d = a->v.window.d;
  gboolean first = TRUE;

  g_string_append_c (out, '{');
  for (int f = W_SIZE; f <= W_REVERSAL && n > 0; f++)
    {
      gboolean needed = FALSE;
      for (int i = 0; i < n; i++)
        needed |= !window_field_at_default (&d[i], f);
      if (!needed)
        continue;
      g_string_append_printf (out, "%s%s=", first ? "" : " ", heading[f]);
      first = FALSE;
      for (int i = 0; i < n; i++)
        {
          if (i > 0)
            g_string_append_c (out, 'x');
          switch ((WindowField) f)
            {
            case W_SIZE:       print_int (out, d[i].size); break;
            case W_STRIDE:     print_int (out, d[i].stride); break;
            case W_PAD:
              g_string_append_printf (out, "%" G_GINT64_FORMAT "_%" G_GINT64_FORMAT, d[i].pad_lo, d[i].pad_hi);
              break;
            case W_LHS_DILATE: print_int (out, d[i].lhs_dilate); break;
            case W_RHS_DILATE: print_int (out, d[i].rhs_dilate); break;
            case W_REVERSAL:   g_string_append_c (out, d[i].reversal ? '1' : '0'); break;
            }
        }
    }
  g_string_append_c (out, '}');
}

/* One group of dim_labels: @rank letters where position @a holds @ca,
 * position @b holds @cb and spatial[i] holds the digit i. */
static void
print_label_group (GString *out, int n_spatial, int64_t a, char ca, int64_t b, char cb, const int64_t *spatial)
{
  int rank = n_spatial + 2;
  for (int p = 0; p < rank; p++)
    {
      char c = '?';
      if (p == a)
        c = ca;
      else if (p == b)
        c = cb;
      else
        for (int i = 0; i < n_spatial; i++)
          if (spatial && spatial[i] == p)
            c = (char) ('0' + i);
      g_string_append_c (out, c);
    }
}

static void
print_dim_labels (GString *out, const FbConvDims *c)
{
  print_label_group (out, c->n_spatial, c->in_batch, 'b', c->in_feature, 'f', c->in_spatial);
  g_string_append_c (out, '_');
  print_label_group (out, c->n_spatial, c->k_in, 'i', c->k_out, 'o', c->k_spatial);
  g_string_append (out, "->");
  print_label_group (out, c->n_spatial, c->out_batch, 'b', c->out_feature, 'f', c->out_spatial);
}

static void
print_attr_value (GString *out, const FbAttr *a, FbPrintStyle style)
{
  switch (a->kind)
    {
    case FB_AV_INT:
      print_int (out, a->v.i);
      break;
    case FB_AV_BOOL:
      g_string_append (out, a->v.i ? "true" : "false");
      break;
    case FB_AV_FLOAT:
      print_double (out, a->v.f);
      break;
    case FB_AV_STRING:
      print_quoted (out, a->v.s ? a->v.s : "");
      break;
    case FB_AV_IDENT:
    case FB_AV_RAW:
      g_string_append (out, a->v.s ? a->v.s : "");
      break;
    case FB_AV_DIMS:
      print_dims (out, &a->v.dims);
      break;
    case FB_AV_SLICE:
      g_string_append_c (out, '{');
      for (int i = 0; i < a->v.slice.n; i++)
        {
          const FbSliceDim *d = &a->v.slice.d[i];
          g_string_append_printf (out, "%s[%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT,
                                  i > 0 ? ", " : "", d->start, d->limit);
          if (d->stride != 1)
            g_string_append_printf (out, ":%" G_GINT64_FORMAT, d->stride);
          g_string_append_c (out, ']');
        }
      g_string_append_c (out, '}');
      break;
    case FB_AV_PADDING:
      for (int i = 0; i < a->v.pad.n; i++)
        {
          const FbPadDim *d = &a->v.pad.d[i];
          g_string_append_printf (out, "%s%" G_GINT64_FORMAT "_%" G_GINT64_FORMAT,
                                  i > 0 ? "x" : "", d->lo, d->hi);
          if (d->interior != 0)
            g_string_append_printf (out, "_%" G_GINT64_FORMAT, d->interior);
        }
      break;
    case FB_AV_WINDOW:
      print_window (out, a);
      break;
    case FB_AV_DIM_LABELS:
      print_dim_labels (out, &a->v.conv);
      break;
    case FB_AV_COMP:
    case FB_AV_COMPS:
      {
        gboolean braced = a->kind == FB_AV_COMPS && (a->v.comps.braced || a->v.comps.n != 1);
        if (braced)
          g_string_append_c (out, '{');
        for (int i = 0; i < a->v.comps.n; i++)
          {
            if (i > 0)
              g_string_append (out, ", ");
            const FbComputation *c = a->v.comps.c[i];
            print_name (out, c ? c->name : "?", style);
          }
        if (braced)
          g_string_append_c (out, '}');
      }
      break;
    }
}

/* -------------------------------------------------------- instructions */

void
fb_hlo_print_instr (GString *out, const FbInstr *instr, FbPrintStyle style)
{
  g_return_if_fail (out != NULL && instr != NULL);

  if (instr->parent && instr->parent->root == instr)
    g_string_append (out, "ROOT ");
  print_name (out, instr->name, style);
  g_string_append (out, " = ");
  fb_shape_print (out, instr->shape, TRUE);
  g_string_append_c (out, ' ');
  g_string_append (out, fb_opcode_name (instr->opcode));
  g_string_append_c (out, '(');
  if (instr->opcode_suffix)
    g_string_append (out, instr->opcode_suffix);
  else if (instr->opcode == FB_OP_PARAMETER)
    print_int (out, instr->parameter_number);
  else if (instr->opcode == FB_OP_CONSTANT)
    {
      if (instr->literal_elided || instr->literal == NULL)
        g_string_append (out, "{...}");
      else
        fb_hlo_print_literal (out, instr->literal);
    }
  else
    for (int i = 0; i < instr->n_operands; i++)
      {
        const FbInstr *op = instr->operands[i];
        if (i > 0)
          g_string_append (out, ", ");
        if (i > 0 && i % INDEX_ANNOTATION_INTERVAL == 0)
          g_string_append_printf (out, "/*index=%d*/", i);
        if (op == NULL)
          {
            g_string_append (out, "?");
            continue;
          }
        if (style == FB_PRINT_LONG)
          {
            fb_shape_print (out, op->shape, TRUE);
            g_string_append_c (out, ' ');
          }
        print_name (out, op->name, style);
      }
  g_string_append_c (out, ')');

  for (int i = 0; i < instr->n_attrs; i++)
    {
      const FbAttr *a = &instr->attrs[i];
      g_string_append (out, ", ");
      g_string_append (out, a->name ? a->name : fb_attr_key_name (a->key));
      g_string_append_c (out, '=');
      print_attr_value (out, a, style);
    }
}

/* -------------------------------------------------------- computations */

static void
print_signature (GString *out, const FbComputation *comp)
{
  g_string_append (out, " (");
  for (int i = 0; i < comp->n_params; i++)
    {
      const FbInstr *p = comp->params[i];
      if (i > 0)
        g_string_append (out, ", ");
      if (i > 0 && i % INDEX_ANNOTATION_INTERVAL == 0)
        g_string_append_printf (out, "/*index=%d*/", i);
      if (p == NULL)
        {
          g_string_append (out, "?: ?");
          continue;
        }
      g_string_append_printf (out, "%s: ", p->name);
      fb_shape_print (out, p->shape, FALSE);
    }
  g_string_append (out, ") -> ");
  if (comp->root)
    fb_shape_print (out, comp->root->shape, FALSE);
  else
    g_string_append (out, "()");
}

static void
print_computation (GString *out, const FbComputation *comp, FbPrintStyle style)
{
  if (comp->is_entry)
    g_string_append (out, "ENTRY ");
  print_name (out, comp->name, style);
  if (style == FB_PRINT_LONG)
    print_signature (out, comp);
  g_string_append (out, " {\n");
  for (const FbInstr *i = comp->first; i; i = i->next)
    {
      g_string_append (out, "  ");
      fb_hlo_print_instr (out, i, style);
      g_string_append_c (out, '\n');
    }
  g_string_append_c (out, '}');
  if (comp->execution_thread)
    {
      g_string_append (out, ", execution_thread=");
      print_quoted (out, comp->execution_thread);
    }
}

/* ------------------------------------------------------------- modules */

static void
print_header (GString *out, const FbModule *m)
{
  g_string_append (out, "HloModule ");
  g_string_append (out, m->name);
  if (m->is_scheduled)
    g_string_append (out, ", is_scheduled=true");
  if (m->n_aliases > 0)
    {
      g_string_append (out, ", input_output_alias={ ");
      for (int i = 0; i < m->n_aliases; i++)
        {
          const FbAlias *a = &m->aliases[i];
          if (i > 0)
            g_string_append (out, ", ");
          print_dims (out, &a->output_index);
          g_string_append_printf (out, ": (%" G_GINT64_FORMAT ", ", a->param_number);
          print_dims (out, &a->param_index);
          if (a->kind)
            g_string_append_printf (out, ", %s", a->kind);
          g_string_append_c (out, ')');
        }
      g_string_append (out, " }");
    }
  if (m->n_donors > 0)
    {
      g_string_append (out, ", buffer_donor={ ");
      for (int i = 0; i < m->n_donors; i++)
        {
          const FbAlias *a = &m->donors[i];
          if (i > 0)
            g_string_append (out, ", ");
          g_string_append_printf (out, "(%" G_GINT64_FORMAT ", ", a->param_number);
          print_dims (out, &a->param_index);
          g_string_append_c (out, ')');
        }
      g_string_append (out, " }");
    }
  if (m->entry_layout_result)
    {
      g_string_append (out, ", entry_computation_layout={(");
      for (int i = 0; i < m->n_entry_layout_params; i++)
        {
          if (i > 0)
            g_string_append (out, ", ");
          if (i > 0 && i % INDEX_ANNOTATION_INTERVAL == 0)
            g_string_append_printf (out, "/*index=%d*/", i);
          fb_shape_print (out, m->entry_layout_params[i], TRUE);
        }
      g_string_append (out, ")->");
      fb_shape_print (out, m->entry_layout_result, TRUE);
      g_string_append_c (out, '}');
    }
  for (int i = 0; i < m->n_header_attrs; i++)
    g_string_append_printf (out, ", %s=%s", m->header_attrs[i].key,
                            m->header_attrs[i].value ? m->header_attrs[i].value : "");
  g_string_append (out, "\n\n");
}

void
fb_hlo_print (GString *out, FbModule *module, FbPrintStyle style)
{
  g_return_if_fail (out != NULL && module != NULL);

  print_header (out, module);
  if (module->stack_tables && module->stack_tables[0])
    {
      g_string_append (out, module->stack_tables);
      if (!g_str_has_suffix (module->stack_tables, "\n"))
        g_string_append_c (out, '\n');
      g_string_append_c (out, '\n');
    }
  g_autoptr (GPtrArray) order = fb_module_post_order (module);
  for (guint i = 0; i < order->len; i++)
    {
      if (i > 0)
        g_string_append (out, "\n\n");
      print_computation (out, g_ptr_array_index (order, i), style);
    }
  g_string_append_c (out, '\n');
}

char *
fb_hlo_to_string (FbModule *module, FbPrintStyle style)
{
  g_return_val_if_fail (module != NULL, NULL);
  GString *out = g_string_new (NULL);
  fb_hlo_print (out, module, style);
  return g_string_free (out, FALSE);
}
