/* SPDX-License-Identifier: MIT
 *
 * The HLO text parser: reads what XLA, JAX, TensorFlow and PyTorch/XLA dump
 * (long style with or without operand shapes, short style) into an FbModule,
 * in one pass over the bytes. Names live in hash tables; everything else in
 * the module's arena. Called computations may be named before they are
 * defined, so they are resolved once the whole module has been read.
 *
 *   module      := ['HloModule' name {',' key '=' value}] [tables] {computation}
 *   computation := ['ENTRY'] name [signature] '{' {instruction} '}'
 *                  [',' 'execution_thread' '=' string]
 *   instruction := ['ROOT'] name '=' shape opcode '(' operands ')' {',' attr}
 *   operand     := [shape] name ['#' index]
 */
#include "fb-hlo.h"
#include "fb-hlo-parser-private.h"

#include <string.h>

/* ---------------------------------------------------- module separation */

static gboolean
is_separator_line (const char *p, const char *end)
{
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  return end - p >= 8 && memcmp (p, "// -----", 8) == 0;
}

/* Finds the byte range of module @want (-1: none) and returns how many
 * modules the text holds. */
static int
find_modules (const char *text, gsize len, int want, gsize *start, gsize *end)
{
  const char *p = text, *e = text + len;
  int index = 0;
  gsize s = 0;
  while (p < e)
    {
      const char *nl = memchr (p, '\n', e - p);
      const char *le = nl ? nl : e;
      if ((*p == '/' || *p == ' ' || *p == '\t') && is_separator_line (p, le))
        {
          if (index == want)
            {
              *start = s;
              *end = p - text;
              return index + 1;
            }
          index++;
          s = nl ? (gsize) (nl + 1 - text) : len;
        }
      p = nl ? nl + 1 : e;
    }
  if (index == want)
    {
      *start = s;
      *end = len;
    }
  return index + 1;
}

int
fb_hlo_count_modules (const char *text, gsize len)
{
  gsize s, e;
  g_return_val_if_fail (text != NULL || len == 0, 1);
  return find_modules (text, len, -1, &s, &e);
}

/* ----------------------------------------------------------- utilities */

static void
names_init (FbHloNames *t)
{
  t->mask = 255;
  t->slots = g_new0 (FbHloNameSlot, t->mask + 1);
  t->used = 0;
  t->stamp = 1;
}

static void
names_clear (FbHloNames *t)
{
  t->used = 0;
  if (++t->stamp == 0)
    {
      memset (t->slots, 0, sizeof (FbHloNameSlot) * (t->mask + 1));
      t->stamp = 1;
    }
}

/* Eight bytes at a time: names are short, and this runs for every operand. */
static guint32
names_hash (const char *name, gsize len)
{
  guint64 h = len * G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);
  gsize i = 0;
  for (; i + 8 <= len; i += 8)
    {
      guint64 w;
      memcpy (&w, name + i, 8);
      h = (h ^ w) * G_GUINT64_CONSTANT (0xff51afd7ed558ccd);
      h ^= h >> 29;
    }
  if (i < len)
    {
      guint64 w = 0;
      memcpy (&w, name + i, len - i);
      h = (h ^ w) * G_GUINT64_CONSTANT (0xff51afd7ed558ccd);
      h ^= h >> 29;
    }
  h *= G_GUINT64_CONSTANT (0xc4ceb9fe1a85ec53);
  return (guint32) (h >> 32);
}

/* The slot that holds @name, or the empty slot where it would go. */
static FbHloNameSlot *
names_slot (FbHloNames *t, const char *name, gsize len)
{
  for (guint32 i = names_hash (name, len) & t->mask;; i = (i + 1) & t->mask)
    {
      FbHloNameSlot *s = &t->slots[i];
      if (s->stamp != t->stamp)
        return s;
      if (s->len == len && memcmp (s->name, name, len) == 0)
        return s;
    }
}

static FbInstr *
names_lookup (FbHloNames *t, const char *name, gsize len)
{
  FbHloNameSlot *s = names_slot (t, name, len);
  return s->stamp == t->stamp ? s->instr : NULL;
}

/* @name must stay valid as long as the table holds it. */
static void
names_insert (FbHloNames *t, const char *name, FbInstr *instr)
{
  gsize len = strlen (name);
  if ((t->used + 1) * 2 > t->mask + 1)
    {
      FbHloNameSlot *old = t->slots;
      guint32 old_n = t->mask + 1, stamp = t->stamp;
      t->mask = old_n * 2 - 1;
      t->slots = g_new0 (FbHloNameSlot, t->mask + 1);
      t->stamp = 1;
      for (guint32 i = 0; i < old_n; i++)
        if (old[i].stamp == stamp)
          {
            FbHloNameSlot *s = names_slot (t, old[i].name, old[i].len);
            *s = old[i];
            s->stamp = t->stamp;
          }
      g_free (old);
    }
  FbHloNameSlot *s = names_slot (t, name, len);
  if (s->stamp != t->stamp)
    t->used++;
  *s = (FbHloNameSlot) { name, (guint32) len, t->stamp, instr };
}

static FbInstr *
lookup_instr (FbHloParser *P, const char *name, gsize len)
{
  return names_lookup (&P->names, name, len);
}

static gboolean
token_is (const FbToken *tok, const char *word)
{
  gsize n = strlen (word);
  return tok->kind == FB_TOK_NAME && !tok->percent && tok->len == n && memcmp (tok->start, word, n) == 0;
}

/* Where a name is defined later in the current computation, or NULL. */
static const char *
find_later_definition (FbHloParser *P, const char *name, gsize len)
{
  const char *p = P->lx.p, *end = P->lx.end;
  while (p < end)
    {
      const char *hit = len ? memchr (p, name[0], end - p) : NULL;
      if (hit == NULL || (gsize) (end - hit) < len)
        return NULL;
      p = hit + 1;
      if (memcmp (hit, name, len) != 0)
        continue;
      char before = hit > P->lx.text ? hit[-1] : '\n';
      if (!(before == '%' || before == ' ' || before == '\t' || before == '\n'))
        continue;
      const char *q = hit + len;
      while (q < end && (*q == ' ' || *q == '\t'))
        q++;
      if (q < end && *q == '=' && (q + 1 >= end || q[1] != '='))
        {
          /* Only within this computation: no '}' at the start of a line in between. */
          for (const char *r = P->lx.p; r < hit; r++)
            if (*r == '\n' && r + 1 < end && r[1] == '}')
              return NULL;
          return hit;
        }
    }
  return NULL;
}

/* -------------------------------------------------------- instructions */

/* `%x#2`: element 2 of tuple %x, as an implicit get-tuple-element. */
static FbInstr *
tuple_element (FbHloParser *P, FbComputation *comp, FbInstr *tuple, int64_t index, const char *at)
{
  g_autofree char *key = g_strdup_printf ("%s#%" G_GINT64_FORMAT, tuple->name, index);
  FbInstr *gte = names_lookup (&P->names, key, strlen (key));
  if (gte)
    return gte;
  if (tuple->shape->type != FB_TUPLE || index < 0 || index >= tuple->shape->n_elems)
    return _fb_hlo_fail (P, at, "'%s' has no tuple element %" G_GINT64_FORMAT, tuple->name, index), NULL;
  g_autofree char *name = g_strdup_printf ("%s.gte%" G_GINT64_FORMAT, tuple->name, index);
  for (int n = 1; names_lookup (&P->names, name, strlen (name)); n++)
    {
      g_free (name);
      name = g_strdup_printf ("%s.gte%" G_GINT64_FORMAT ".%d", tuple->name, index, n);
    }
  gte = fb_instr_new (comp, NULL, FB_OP_GET_TUPLE_ELEMENT,
                      fb_shape_copy (P->arena, tuple->shape->elems[index]), 1, &tuple, name);
  fb_instr_set_int (gte, FB_A_INDEX, index);
  gte->loc = fb_hlo_lexer_loc (&P->lx, at);
  names_insert (&P->names, gte->name, gte);
  names_insert (&P->names, fb_arena_strdup (P->arena, key), gte);
  return gte;
}

/* operand := [shape] name ['#' index] */
static FbInstr *
parse_operand (FbHloParser *P, FbComputation *comp, const char *self, gsize self_len)
{
  FbShape *declared = NULL;
  FbToken tok;
  if (!_fb_hlo_skip (P))
    return NULL;
  const char *at = P->lx.p, *end = P->lx.end;
  gboolean has_shape = at < end && *at == '(';
  if (at < end && fb_hlo_is_ident_start (*at))
    {
      const char *e = fb_hlo_scan_ident (at, end), *q = e;
      FbElemType t;
      const char *last = fb_elem_type_name (P->last_type);
      if (e < end && *e == '[')
        has_shape = (strncmp (last, at, e - at) == 0 && last[e - at] == '\0')
                    || fb_elem_type_lookup (at, e - at, &t);
      else
        {
          /* `token %t`: a bracketless token shape, when a name follows. */
          while (q < end && (*q == ' ' || *q == '\t'))
            q++;
          has_shape = q < end && (*q == '%' || fb_hlo_is_ident_start (*q))
                      && fb_elem_type_lookup (at, e - at, &t) && !fb_elem_type_is_array (t);
        }
    }
  if (has_shape)
    {
      /* Only checked against the operand's own shape, so kept aside. */
      FbArena *own = P->arena;
      P->arena = P->scratch;
      declared = _fb_hlo_parse_shape (P, 0);
      P->arena = own;
    }
  if (P->err)
    return NULL;
  if (!_fb_hlo_next (P, &tok))
    return NULL;
  if (tok.kind != FB_TOK_NAME)
    return _fb_hlo_fail (P, tok.start, "expected an operand name, found %s",
                         fb_hlo_token_kind_name (tok.kind)), NULL;
  gsize len;
  const char *name = fb_hlo_token_name (&tok, &len);
  FbInstr *op = lookup_instr (P, name, len);
  if (op == NULL)
    {
      if (len == self_len && memcmp (name, self, len) == 0)
        return _fb_hlo_fail (P, tok.start, "cycle: instruction '%.*s' uses itself",
                             (int) len, name), NULL;
      const char *later = find_later_definition (P, name, len);
      if (later)
        {
          FbLoc l = fb_hlo_lexer_loc (&P->lx, later);
          return _fb_hlo_fail (P, tok.start, "instruction '%.*s' is used before its definition"
                               " at line %d", (int) len, name, l.line), NULL;
        }
      return _fb_hlo_fail (P, tok.start, "undefined instruction '%.*s'", (int) len, name), NULL;
    }
  if (P->lx.p < P->lx.end && *P->lx.p == '#')
    {
      const char *hash = P->lx.p++;
      int64_t index;
      if (!_fb_hlo_read_int (P, &index, "after '#'"))
        return NULL;
      op = tuple_element (P, comp, op, index, hash);
      if (op == NULL)
        return NULL;
    }
  if (declared && !fb_shape_compatible (declared, op->shape))
    {
      g_autofree char *want = fb_shape_to_string (declared);
      g_autofree char *have = fb_shape_to_string (op->shape);
      return _fb_hlo_fail (P, at, "operand shape %s does not match the shape %s of '%s'",
                           want, have, op->name), NULL;
    }
  return op;
}

static gboolean
parse_instruction (FbHloParser *P, FbComputation *comp, FbInstr **root, const char **root_at,
                   GPtrArray *params)
{
  FbToken tok, name_tok;
  if (!_fb_hlo_next (P, &tok))
    return FALSE;
  gboolean is_root = FALSE;
  if (token_is (&tok, "ROOT"))
    {
      FbToken next;
      if (!fb_hlo_lexer_peek (&P->lx, &next, &P->err))
        return FALSE;
      if (next.kind != FB_TOK_EQUAL)
        {
          is_root = TRUE;
          if (*root)
            return _fb_hlo_fail (P, tok.start, "computation '%s' has more than one ROOT", comp->name);
          *root_at = tok.start;
          if (!_fb_hlo_next (P, &tok))
            return FALSE;
        }
    }
  if (tok.kind != FB_TOK_NAME)
    return _fb_hlo_fail (P, tok.start, "expected an instruction name, found %s",
                         fb_hlo_token_kind_name (tok.kind));
  name_tok = tok;
  gsize name_len;
  const char *name = fb_hlo_token_name (&name_tok, &name_len);
  FbInstr *dup = lookup_instr (P, name, name_len);
  if (dup)
    return _fb_hlo_fail (P, name_tok.start, "duplicate instruction name '%.*s' (first defined at line %d)",
                         (int) name_len, name, dup->loc.line);
  if (!_fb_hlo_expect (P, '=', "after the instruction name"))
    return FALSE;
  FbShape *shape = _fb_hlo_parse_shape (P, 0);
  if (shape == NULL)
    return FALSE;
  FbToken op_tok;
  if (!_fb_hlo_next (P, &op_tok))
    return FALSE;
  FbOpcode op;
  if (op_tok.kind != FB_TOK_NAME || op_tok.percent)
    return _fb_hlo_fail (P, op_tok.start, "expected an opcode, found %s",
                         fb_hlo_token_kind_name (op_tok.kind));
  if (!fb_opcode_lookup (op_tok.start, op_tok.len, &op))
    return _fb_hlo_fail (P, op_tok.start, "unknown opcode '%.*s'", (int) op_tok.len, op_tok.start);
  if (!_fb_hlo_expect (P, '(', "after the opcode"))
    return FALSE;

  FbInstr *instr = NULL;
  /* fb_instr_new copies the name: a NUL-terminated one on the stack will do. */
  char name_buf[128];
  const char *arena_name;
  if (name_len < sizeof name_buf)
    {
      memcpy (name_buf, name, name_len);
      name_buf[name_len] = '\0';
      arena_name = name_buf;
    }
  else
    arena_name = fb_arena_strndup (P->arena, name, name_len);
  fb_arena_reset (P->scratch);
  if (op == FB_OP_PARAMETER)
    {
      if (!_fb_hlo_skip (P))
        return FALSE;
      const char *at = P->lx.p;
      int64_t number;
      if (!_fb_hlo_read_int (P, &number, "for the parameter number"))
        return FALSE;
      if (number < 0)
        return _fb_hlo_fail (P, at, "negative parameter number");
      if (!_fb_hlo_expect (P, ')', "after the parameter number"))
        return FALSE;
      instr = fb_instr_new (comp, NULL, op, shape, 0, NULL, arena_name);
      instr->parameter_number = number;
      g_ptr_array_add (params, instr);
    }
  else if (op == FB_OP_CONSTANT)
    {
      instr = fb_instr_new (comp, NULL, op, shape, 0, NULL, arena_name);
      if (!_fb_hlo_parse_literal (P, instr) || !_fb_hlo_expect (P, ')', "after the literal"))
        return FALSE;
    }
  else
    {
      /* Operands on the stack unless there are many (concatenate, tuple). */
      FbInstr *few[16];
      g_autofree FbInstr **many = NULL;
      FbInstr **ops = few;
      guint n_ops = 0, cap = G_N_ELEMENTS (few);
      if (!_fb_hlo_accept (P, ')'))
        {
          do
            {
              if (P->err)
                break;
              FbInstr *o = parse_operand (P, comp, name, name_len);
              if (o == NULL)
                break;
              if (n_ops == cap)
                {
                  cap *= 2;
                  FbInstr **grown = g_new (FbInstr *, cap);
                  memcpy (grown, ops, sizeof (FbInstr *) * n_ops);
                  g_free (many);
                  ops = many = grown;
                }
              ops[n_ops++] = o;
            }
          while (_fb_hlo_accept (P, ','));
          if (P->err == NULL)
            _fb_hlo_expect (P, ')', "after the operands");
        }
      int arity = fb_opcode_arity (op);
      if (P->err == NULL && arity >= 0 && (int) n_ops != arity)
        _fb_hlo_fail (P, op_tok.start, "%s takes %d operand%s, not %u", fb_opcode_name (op),
                      arity, arity == 1 ? "" : "s", n_ops);
      if (P->err == NULL)
        instr = fb_instr_new (comp, NULL, op, shape, n_ops, ops, arena_name);
      if (instr == NULL)
        return FALSE;
    }
  instr->loc = fb_hlo_lexer_loc (&P->lx, name_tok.start);
  names_insert (&P->names, instr->name, instr);
  if (is_root)
    *root = instr;

  /* Attributes go to a local array first and then to an arena block of
   * exactly the right size. */
  FbAttr attrs[8];
  instr->attrs = attrs;
  instr->attrs_cap = G_N_ELEMENTS (attrs);
  gboolean ok = TRUE;
  while (ok && _fb_hlo_accept (P, ','))
    ok = _fb_hlo_skip (P) && _fb_hlo_parse_attr (P, instr);
  if (instr->attrs == attrs)
    {
      instr->attrs = instr->n_attrs ? fb_arena_memdup (P->arena, attrs, sizeof (FbAttr) * instr->n_attrs) : NULL;
      instr->attrs_cap = instr->n_attrs;
    }
  return ok && P->err == NULL;
}

/* -------------------------------------------------------- computations */

/* signature := '(' [name ':' shape {',' name ':' shape}] ')' '->' shape */
static gboolean
parse_signature (FbHloParser *P)
{
  P->lx.p++;   /* '(' */
  if (!_fb_hlo_accept (P, ')'))
    {
      if (P->err)
        return FALSE;
      do
        {
          FbToken tok;
          if (!_fb_hlo_next (P, &tok))
            return FALSE;
          if (tok.kind != FB_TOK_NAME)
            return _fb_hlo_fail (P, tok.start, "expected a parameter name, found %s",
                                 fb_hlo_token_kind_name (tok.kind));
          if (!_fb_hlo_expect (P, ':', "after the parameter name") || !_fb_hlo_parse_shape (P, 0))
            return FALSE;
        }
      while (_fb_hlo_accept (P, ','));
      if (!_fb_hlo_expect (P, ')', "to close the parameter list"))
        return FALSE;
    }
  if (P->err)
    return FALSE;
  FbToken arrow;
  if (!_fb_hlo_next (P, &arrow))
    return FALSE;
  if (arrow.kind != FB_TOK_ARROW)
    return _fb_hlo_fail (P, arrow.start, "expected '->' after the parameter list");
  return _fb_hlo_parse_shape (P, 0) != NULL;
}

static gboolean
parse_computation (FbHloParser *P, const char **entry_at)
{
  FbToken tok;
  if (!_fb_hlo_next (P, &tok))
    return FALSE;
  gboolean is_entry = FALSE;
  if (token_is (&tok, "ENTRY"))
    {
      is_entry = TRUE;
      if (*entry_at)
        return _fb_hlo_fail (P, tok.start, "more than one ENTRY computation");
      *entry_at = tok.start;
      if (!_fb_hlo_next (P, &tok))
        return FALSE;
    }
  if (tok.kind != FB_TOK_NAME)
    return _fb_hlo_fail (P, tok.start, "expected a computation name, found %s",
                         fb_hlo_token_kind_name (tok.kind));
  gsize len;
  const char *name = fb_hlo_token_name (&tok, &len);
  g_string_truncate (P->buf, 0);
  g_string_append_len (P->buf, name, len);
  FbComputation *dup = g_hash_table_lookup (P->comps, P->buf->str);
  if (dup)
    return _fb_hlo_fail (P, tok.start, "duplicate computation name '%s' (first defined at line %d)",
                         dup->name, dup->loc.line);
  if (!_fb_hlo_skip (P))
    return FALSE;
  gboolean has_sig = FALSE;
  if (P->lx.p < P->lx.end && *P->lx.p == '(')
    {
      if (!parse_signature (P))
        return FALSE;
      has_sig = TRUE;
    }
  if (!_fb_hlo_expect (P, '{', "to open the computation body"))
    return FALSE;

  g_string_truncate (P->buf, 0);
  g_string_append_len (P->buf, name, len);
  FbComputation *comp = fb_module_add_computation (P->m, P->buf->str);
  comp->loc = fb_hlo_lexer_loc (&P->lx, tok.start);
  comp->is_entry = is_entry;
  comp->has_signature = has_sig;
  g_hash_table_insert (P->comps, comp->name, comp);
  names_clear (&P->names);

  FbInstr *root = NULL;
  const char *root_at = NULL;
  g_autoptr (GPtrArray) params = g_ptr_array_new ();
  for (;;)
    {
      if (!_fb_hlo_skip (P))
        return FALSE;
      if (P->lx.p >= P->lx.end)
        return _fb_hlo_fail (P, P->lx.p, "unexpected end of input: computation '%s' is not closed with '}'",
                             comp->name);
      if (*P->lx.p == '}')
        {
          P->lx.p++;
          break;
        }
      if (!parse_instruction (P, comp, &root, &root_at, params))
        return FALSE;
    }
  if (comp->n_instrs == 0)
    return _fb_hlo_fail (P, tok.start, "computation '%s' has no instructions", comp->name);
  comp->root = root ? root : comp->last;

  /* Parameters: numbers 0..n-1, each once. */
  int n = params->len;
  comp->n_params = n;
  comp->params = fb_arena_new0 (P->arena, FbInstr *, MAX (n, 1));
  for (int i = 0; i < n; i++)
    {
      FbInstr *p = params->pdata[i];
      if (p->parameter_number < n && comp->params[p->parameter_number] == NULL)
        {
          comp->params[p->parameter_number] = p;
          continue;
        }
      FbHloLexer *lx = &P->lx;
      const char *at = lx->text;
      /* Point at the offending instruction's line. */
      FbLoc l = p->loc;
      for (int line = 1; line < l.line && at < lx->text + lx->text_len; line++)
        {
          const char *nl = memchr (at, '\n', lx->text + lx->text_len - at);
          at = nl ? nl + 1 : lx->text + lx->text_len;
        }
      at += l.column - 1;
      if (p->parameter_number < n)
        return _fb_hlo_fail (P, at, "parameter number %" G_GINT64_FORMAT " is used twice in '%s'",
                             p->parameter_number, comp->name);
      return _fb_hlo_fail (P, at, "parameter number %" G_GINT64_FORMAT " is out of range: '%s' has %d"
                           " parameter%s", p->parameter_number, comp->name, n, n == 1 ? "" : "s");
    }

  /* `}, execution_thread="name"` */
  if (_fb_hlo_accept (P, ','))
    {
      FbToken key, val;
      if (!_fb_hlo_next (P, &key))
        return FALSE;
      if (!token_is (&key, "execution_thread"))
        return _fb_hlo_fail (P, key.start, "expected execution_thread after the computation");
      if (!_fb_hlo_expect (P, '=', "after execution_thread") || !_fb_hlo_next (P, &val))
        return FALSE;
      if (val.kind != FB_TOK_STRING)
        return _fb_hlo_fail (P, val.start, "expected a string for execution_thread");
      comp->execution_thread = fb_arena_strndup (P->arena, val.start + 1, val.len - 2);
    }
  return P->err == NULL;
}

/* -------------------------------------------------------------- header */

/* alias := dims ':' '(' int ',' dims [',' kind] ')' */
static gboolean
parse_aliases (FbHloParser *P, gboolean donors)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (FbAlias));
  gboolean ok = FALSE;
  if (!_fb_hlo_expect (P, '{', donors ? "to open buffer_donor" : "to open input_output_alias"))
    goto out;
  if (!_fb_hlo_accept (P, '}'))
    {
      do
        {
          FbAlias al = { 0 };
          if (P->err)
            goto out;
          if (!donors && (!_fb_hlo_parse_dims (P, &al.output_index)
                          || !_fb_hlo_expect (P, ':', "after the output index")))
            goto out;
          if (!_fb_hlo_expect (P, '(', "to open the parameter of an alias")
              || !_fb_hlo_read_int (P, &al.param_number, "for the parameter number")
              || !_fb_hlo_expect (P, ',', "after the parameter number")
              || !_fb_hlo_parse_dims (P, &al.param_index))
            goto out;
          if (_fb_hlo_accept (P, ','))
            {
              FbToken kind;
              if (!_fb_hlo_next (P, &kind))
                goto out;
              if (kind.kind != FB_TOK_NAME || kind.percent)
                {
                  _fb_hlo_fail (P, kind.start, "expected an alias kind such as may-alias");
                  goto out;
                }
              al.kind = fb_arena_strndup (P->arena, kind.start, kind.len);
            }
          if (!_fb_hlo_expect (P, ')', "to close the alias"))
            goto out;
          g_array_append_val (a, al);
        }
      while (_fb_hlo_accept (P, ','));
      if (!_fb_hlo_expect (P, '}', "to close the list"))
        goto out;
    }
  if (P->err)
    goto out;
  FbAlias *copy = a->len ? fb_arena_memdup (P->arena, a->data, sizeof (FbAlias) * a->len) : NULL;
  if (donors)
    P->m->n_donors = a->len, P->m->donors = copy;
  else
    P->m->n_aliases = a->len, P->m->aliases = copy;
  ok = TRUE;
out:
  g_array_free (a, TRUE);
  return ok;
}

/* entry_computation_layout := '{' '(' [shape {',' shape}] ')' '->' shape '}' */
static gboolean
parse_entry_layout (FbHloParser *P)
{
  g_autoptr (GPtrArray) params = g_ptr_array_new ();
  if (!_fb_hlo_expect (P, '{', "to open entry_computation_layout")
      || !_fb_hlo_expect (P, '(', "to open the parameter shapes"))
    return FALSE;
  if (!_fb_hlo_accept (P, ')'))
    {
      do
        {
          if (P->err)
            return FALSE;
          FbShape *s = _fb_hlo_parse_shape (P, 0);
          if (s == NULL)
            return FALSE;
          g_ptr_array_add (params, s);
        }
      while (_fb_hlo_accept (P, ','));
      if (!_fb_hlo_expect (P, ')', "to close the parameter shapes"))
        return FALSE;
    }
  FbToken arrow;
  if (P->err || !_fb_hlo_next (P, &arrow))
    return FALSE;
  if (arrow.kind != FB_TOK_ARROW)
    return _fb_hlo_fail (P, arrow.start, "expected '->' in entry_computation_layout");
  FbShape *result = _fb_hlo_parse_shape (P, 0);
  if (result == NULL || !_fb_hlo_expect (P, '}', "to close entry_computation_layout"))
    return FALSE;
  P->m->entry_layout_result = result;
  P->m->n_entry_layout_params = params->len;
  P->m->entry_layout_params = fb_arena_memdup (P->arena, params->pdata,
                                               sizeof (FbShape *) * MAX (params->len, 1));
  return TRUE;
}

static gboolean
parse_header (FbHloParser *P)
{
  FbToken tok;
  if (!_fb_hlo_next (P, &tok))   /* HloModule */
    return FALSE;
  if (!_fb_hlo_next (P, &tok))
    return FALSE;
  if (tok.kind != FB_TOK_NAME)
    return _fb_hlo_fail (P, tok.start, "expected a module name after HloModule");
  gsize len;
  const char *name = fb_hlo_token_name (&tok, &len);
  P->m->name = fb_arena_strndup (P->arena, name, len);
  GArray *attrs = g_array_new (FALSE, TRUE, sizeof (FbModuleAttr));
  gboolean ok = FALSE;
  while (_fb_hlo_accept (P, ','))
    {
      FbToken key;
      if (!_fb_hlo_next (P, &key))
        goto out;
      if (key.kind != FB_TOK_NAME || key.percent)
        {
          _fb_hlo_fail (P, key.start, "expected a module attribute, found %s",
                        fb_hlo_token_kind_name (key.kind));
          goto out;
        }
      if (!_fb_hlo_expect (P, '=', "after the module attribute name"))
        goto out;
      if (token_is (&key, "is_scheduled"))
        {
          FbToken v;
          if (!_fb_hlo_next (P, &v))
            goto out;
          if (!token_is (&v, "true") && !token_is (&v, "false"))
            {
              _fb_hlo_fail (P, v.start, "expected true or false for is_scheduled");
              goto out;
            }
          P->m->is_scheduled = v.start[0] == 't';
        }
      else if (token_is (&key, "entry_computation_layout"))
        {
          if (!parse_entry_layout (P))
            goto out;
        }
      else if (token_is (&key, "input_output_alias") || token_is (&key, "buffer_donor"))
        {
          if (!parse_aliases (P, key.start[0] == 'b'))
            goto out;
        }
      else
        {
          g_autofree char *k = g_strndup (key.start, key.len);
          const char *s;
          gsize n;
          if (!_fb_hlo_scan_raw (P, &s, &n, k))
            goto out;
          FbModuleAttr ma = { fb_arena_strdup (P->arena, k), fb_arena_strndup (P->arena, s, n) };
          g_array_append_val (attrs, ma);
        }
    }
  if (P->err)
    goto out;
  P->m->n_header_attrs = attrs->len;
  P->m->header_attrs = attrs->len ? fb_arena_memdup (P->arena, attrs->data,
                                                     sizeof (FbModuleAttr) * attrs->len) : NULL;
  ok = TRUE;
out:
  g_array_free (attrs, TRUE);
  return ok;
}

static gboolean
is_table_keyword (const char *p, const char *end)
{
  static const char *const words[] = { "FileNames", "FunctionNames", "FileLocations", "StackFrames" };
  for (guint i = 0; i < G_N_ELEMENTS (words); i++)
    {
      gsize n = strlen (words[i]);
      if ((gsize) (end - p) >= n && memcmp (p, words[i], n) == 0)
        {
          const char *q = p + n;
          while (q < end && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
          if (q >= end || *q == '\n')
            return TRUE;
        }
    }
  return FALSE;
}

/* FileNames / FunctionNames / FileLocations / StackFrames: kept verbatim. */
static void
parse_stack_tables (FbHloParser *P)
{
  const char *p = P->lx.p, *end = P->lx.end;
  if (!is_table_keyword (p, end))
    return;
  const char *start = p, *last = p;
  while (p < end)
    {
      const char *q = p;
      while (q < end && (*q == ' ' || *q == '\t'))
        q++;
      gboolean blank = q >= end || *q == '\n' || *q == '\r';
      if (!blank && !is_table_keyword (q, end) && !g_ascii_isdigit (*q))
        break;
      const char *nl = memchr (q, '\n', end - q);
      const char *le = nl ? nl : end;
      if (!blank)
        last = le;
      p = nl ? nl + 1 : end;
    }
  while (last > start && (last[-1] == '\r' || last[-1] == ' '))
    last--;
  P->m->stack_tables = fb_arena_strndup (P->arena, start, last - start);
  P->lx.p = last;
}

/* --------------------------------------------------------------- module */

/* First byte at or after @p that is NUL or not ASCII, eight bytes at a time. */
static const char *
skip_ascii (const char *p, const char *e)
{
  for (;;)
    {
      while (e - p >= 8)
        {
          guint64 w;
          memcpy (&w, p, 8);
          /* A high bit set in (w - 0x01..) | w flags a zero or non-ASCII
           * byte (and sometimes a byte next to one): look bytewise. */
          if (((w - G_GUINT64_CONSTANT (0x0101010101010101)) | w) & G_GUINT64_CONSTANT (0x8080808080808080))
            break;
          p += 8;
        }
      const char *stop = e - p > 8 ? p + 8 : e;
      while (p < stop && (guchar) *p - 1u < 0x7fu)
        p++;
      if (p < stop || p >= e)
        return p;
    }
}

/* The text must be UTF-8 without NUL bytes; the first fault is reported. */
static gboolean
check_bytes (FbHloParser *P)
{
  const char *p = P->lx.p, *e = P->lx.end;
  for (;;)
    {
      p = skip_ascii (p, e);
      if (p >= e)
        return TRUE;
      if (*p == '\0')
        return _fb_hlo_fail (P, p, "embedded NUL byte: this is not HLO text");
      /* A run of non-ASCII bytes holds whole UTF-8 sequences when valid. */
      const char *q = p, *bad = NULL;
      while (q < e && (guchar) *q >= 0x80)
        q++;
      if (!g_utf8_validate_len (p, q - p, &bad))
        return _fb_hlo_fail (P, bad, "invalid UTF-8 (byte 0x%02x): this is not HLO text", (guchar) *bad);
      p = q;
    }
}

static char *
module_name_from_path (const char *path)
{
  if (path == NULL)
    return g_strdup ("module");
  g_autofree char *base = g_path_get_basename (path);
  char *dot = strrchr (base, '.');
  if (dot && dot != base)
    *dot = '\0';
  return g_strdup (base);
}

static gboolean
resolve_calls (FbHloParser *P)
{
  for (guint i = 0; i < P->pending->len; i++)
    {
      FbHloPendingComp *pc = &g_array_index (P->pending, FbHloPendingComp, i);
      g_string_truncate (P->buf, 0);
      g_string_append_len (P->buf, pc->name, pc->len);
      FbComputation *c = g_hash_table_lookup (P->comps, P->buf->str);
      if (c == NULL)
        return _fb_hlo_fail (P, pc->name, "undefined computation '%s'", P->buf->str);
      FbAttr *a = &pc->instr->attrs[pc->attr];
      a->v.comps.c[pc->slot] = c;
      if (pc->instr->opcode == FB_OP_FUSION && a->key == FB_A_CALLS)
        c->is_fusion = TRUE;
    }
  return TRUE;
}

static FbModule *
parse_module (FbHloParser *P, const char *path)
{
  if (!check_bytes (P) || !_fb_hlo_skip (P))
    return NULL;
  FbToken tok;
  if (!fb_hlo_lexer_peek (&P->lx, &tok, &P->err))
    return NULL;
  if (token_is (&tok, "HloModule"))
    {
      if (!parse_header (P) || !_fb_hlo_skip (P))
        return NULL;
    }
  else
    {
      g_autofree char *name = module_name_from_path (path);
      P->m->name = fb_arena_strdup (P->arena, name);
    }
  parse_stack_tables (P);

  const char *entry_at = NULL;
  for (;;)
    {
      if (!_fb_hlo_skip (P))
        return NULL;
      if (P->lx.p >= P->lx.end)
        break;
      if (!parse_computation (P, &entry_at))
        return NULL;
    }
  if (P->m->n_comps == 0)
    return _fb_hlo_fail (P, P->lx.p, "no computation found: the input is empty"), NULL;
  if (!resolve_calls (P))
    return NULL;
  FbComputation *entry = P->m->comps[P->m->n_comps - 1];
  for (int i = 0; i < P->m->n_comps; i++)
    if (P->m->comps[i]->is_entry)
      entry = P->m->comps[i];
  entry->is_entry = TRUE;
  P->m->entry = entry;
  return P->m;
}

FbModule *
fb_hlo_parse (const char *text, gsize len, const char *path, int index, GError **error)
{
  g_return_val_if_fail (text != NULL || len == 0, NULL);
  g_return_val_if_fail (index >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  gsize start = 0, end = 0;
  int n = find_modules (text ? text : "", len, index, &start, &end);
  if (index >= n)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_PARSE, "%s: module %d requested, but the input has %d module%s",
                   path ? path : "<input>", index, n, n == 1 ? "" : "s");
      return NULL;
    }

  FbHloParser P = { 0 };
  fb_hlo_lexer_init (&P.lx, text ? text : "", len, start, end, path);
  P.m = fb_module_new (NULL);
  P.arena = P.m->arena;
  P.m->source_path = path ? fb_arena_strdup (P.arena, path) : NULL;
  P.comps = g_hash_table_new (g_str_hash, g_str_equal);
  names_init (&P.names);
  P.pending = g_array_new (FALSE, FALSE, sizeof (FbHloPendingComp));
  P.buf = g_string_new (NULL);
  P.scratch = fb_arena_new ();

  FbModule *m = parse_module (&P, path);
  if (m == NULL || P.err)
    {
      if (P.err == NULL)
        g_set_error (&P.err, FB_ERROR, FB_ERROR_PARSE, "%s: could not parse", P.lx.path);
      g_propagate_error (error, P.err);
      fb_module_free (P.m);
      m = NULL;
    }
  g_hash_table_unref (P.comps);
  g_free (P.names.slots);
  g_array_free (P.pending, TRUE);
  g_string_free (P.buf, TRUE);
  fb_arena_free (P.scratch);
  return m;
}

FbModule *
fb_hlo_parse_file (const char *path, int index, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &text, &len, &local))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s", local->message);
      return NULL;
    }
  return fb_hlo_parse (text, len, path, index, error);
}
