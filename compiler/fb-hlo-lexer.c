/* SPDX-License-Identifier: MIT
 *
 * The HLO lexer: one pass over the bytes, no copies, no regular expressions.
 * It also owns the diagnostic format shared by everything that reads HLO
 * text, so every message looks the same: location, source line, caret.
 */
#include "fb-hlo-lexer.h"

#include <string.h>

#define LETTERS(lo) [lo] = 3, [lo + 1] = 3, [lo + 2] = 3, [lo + 3] = 3, [lo + 4] = 3, [lo + 5] = 3, \
  [lo + 6] = 3, [lo + 7] = 3, [lo + 8] = 3, [lo + 9] = 3, [lo + 10] = 3, [lo + 11] = 3, [lo + 12] = 3

const guint8 _fb_hlo_char_class[256] = {
  LETTERS ('a'), LETTERS ('a' + 13), LETTERS ('A'), LETTERS ('A' + 13), ['_'] = 3,
  ['0'] = 2, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2, ['8'] = 2, ['9'] = 2,
  ['.'] = 2, ['-'] = 2,
};

#undef LETTERS

void
fb_hlo_lexer_init (FbHloLexer *lx, const char *text, gsize text_len,
                   gsize start, gsize end, const char *path)
{
  memset (lx, 0, sizeof *lx);
  lx->text = text;
  lx->text_len = text_len;
  lx->path = path ? path : "<input>";
  lx->p = text + MIN (start, text_len);
  lx->end = text + MIN (end, text_len);
  lx->loc_pos = text;
  lx->loc_line = 1;
  lx->loc_line_start = text;
}

FbLoc
fb_hlo_lexer_loc (FbHloLexer *lx, const char *at)
{
  if (at < lx->loc_pos)
    {
      lx->loc_pos = lx->text;
      lx->loc_line = 1;
      lx->loc_line_start = lx->text;
    }
  const char *p = lx->loc_pos;
  while (p < at)
    {
      const char *nl = memchr (p, '\n', at - p);
      if (nl == NULL)
        break;
      lx->loc_line++;
      lx->loc_line_start = nl + 1;
      p = nl + 1;
    }
  lx->loc_pos = at;
  return (FbLoc) { lx->loc_line, (int) (at - lx->loc_line_start) + 1 };
}

gboolean
fb_hlo_lexer_error (FbHloLexer *lx, GError **error, const char *at, const char *format, ...)
{
  if (error == NULL || *error != NULL)
    return FALSE;
  const char *text_end = lx->text + lx->text_len;
  if (at == NULL || at < lx->text)
    at = lx->text;
  if (at > text_end)
    at = text_end;
  FbLoc loc = fb_hlo_lexer_loc (lx, at);
  const char *ls = lx->loc_line_start;
  const char *le = memchr (ls, '\n', text_end - ls);
  if (le == NULL)
    le = text_end;
  if (le > ls && le[-1] == '\r')
    le--;

  va_list args;
  va_start (args, format);
  g_autofree char *msg = g_strdup_vprintf (format, args);
  va_end (args);

  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "%s:%d:%d: %s\n", lx->path, loc.line, loc.column, msg);
  /* The source line, with bytes that would garble a terminal replaced. */
  for (const char *q = ls; q < le; q++)
    g_string_append_c (s, (*q == '\0' || (*q > 0 && *q < ' ' && *q != '\t')) ? ' ' : *q);
  g_string_append_c (s, '\n');
  for (const char *q = ls; q < at && q < le; q++)
    g_string_append_c (s, *q == '\t' ? '\t' : ' ');
  g_string_append_c (s, '^');
  g_set_error_literal (error, FB_ERROR, FB_ERROR_PARSE, s->str);
  g_string_free (s, TRUE);
  return FALSE;
}

gboolean
fb_hlo_lexer_skip (FbHloLexer *lx, GError **error)
{
  const char *p = lx->p, *end = lx->end;
  while (p < end)
    {
      char c = *p;
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r')
        p++;
      else if (c == '/' && p + 1 < end && p[1] == '/')
        {
          const char *nl = memchr (p, '\n', end - p);
          p = nl ? nl + 1 : end;
        }
      else if (c == '/' && p + 1 < end && p[1] == '*')
        {
          const char *q = p + 2;
          while (q + 1 < end && !(q[0] == '*' && q[1] == '/'))
            q++;
          if (q + 1 >= end)
            {
              lx->p = end;
              return fb_hlo_lexer_error (lx, error, p, "unterminated comment");
            }
          p = q + 2;
        }
      else
        break;
    }
  lx->p = p;
  return TRUE;
}

static gboolean
is_digit (char c)
{
  return c >= '0' && c <= '9';
}

/* Reads a decimal number at @p: digits, fraction, exponent. */
static const char *
scan_number (const char *p, const char *end, gboolean *is_float)
{
  *is_float = FALSE;
  while (p < end && is_digit (*p))
    p++;
  if (p + 1 < end && *p == '.' && is_digit (p[1]))
    {
      *is_float = TRUE;
      p++;
      while (p < end && is_digit (*p))
        p++;
    }
  if (p < end && (*p == 'e' || *p == 'E'))
    {
      const char *q = p + 1;
      if (q < end && (*q == '+' || *q == '-'))
        q++;
      if (q < end && is_digit (*q))
        {
          *is_float = TRUE;
          while (q < end && is_digit (*q))
            q++;
          p = q;
        }
    }
  return p;
}

static gboolean
has_word (const char *p, const char *end, const char *w)
{
  gsize n = strlen (w);
  return (gsize) (end - p) >= n && memcmp (p, w, n) == 0
         && (p + n == end || !fb_hlo_is_ident_char (p[n]));
}

gboolean
fb_hlo_lexer_next (FbHloLexer *lx, FbToken *tok, GError **error)
{
  if (!fb_hlo_lexer_skip_fast (lx, error))
    return FALSE;
  const char *p = lx->p, *end = lx->end;
  tok->kind = FB_TOK_EOF;
  tok->start = p;
  tok->len = 0;
  tok->percent = FALSE;
  if (p >= end)
    return TRUE;
  char c = *p;
  const char *q = p + 1;
  switch (c)
    {
    case '(': tok->kind = FB_TOK_LPAREN; break;
    case ')': tok->kind = FB_TOK_RPAREN; break;
    case '{': tok->kind = FB_TOK_LBRACE; break;
    case '}': tok->kind = FB_TOK_RBRACE; break;
    case '[': tok->kind = FB_TOK_LBRACKET; break;
    case ']': tok->kind = FB_TOK_RBRACKET; break;
    case ',': tok->kind = FB_TOK_COMMA; break;
    case '=': tok->kind = FB_TOK_EQUAL; break;
    case ':': tok->kind = FB_TOK_COLON; break;
    case '?': tok->kind = FB_TOK_QUESTION; break;
    case '#': tok->kind = FB_TOK_HASH; break;
    case '<':
      if (q < end && *q == '=')
        {
          tok->kind = FB_TOK_LEQ;
          q++;
          break;
        }
      return fb_hlo_lexer_error (lx, error, p, "unexpected character '<'");
    case '.':
      if (end - p >= 3 && p[1] == '.' && p[2] == '.')
        {
          tok->kind = FB_TOK_DOTS;
          q = p + 3;
          break;
        }
      return fb_hlo_lexer_error (lx, error, p, "unexpected character '.'");
    case '%':
      if (q >= end || !fb_hlo_is_ident_char (*q))
        return fb_hlo_lexer_error (lx, error, p, "expected a name after '%%'");
      tok->kind = FB_TOK_NAME;
      tok->percent = TRUE;
      q = fb_hlo_scan_ident (q, end);
      break;
    case '"':
      while (q < end && *q != '"' && *q != '\n')
        q += (*q == '\\' && q + 1 < end) ? 2 : 1;
      if (q >= end || *q != '"')
        return fb_hlo_lexer_error (lx, error, p, "unterminated string");
      q++;
      tok->kind = FB_TOK_STRING;
      break;
    case '-':
      if (q < end && *q == '>')
        {
          tok->kind = FB_TOK_ARROW;
          q++;
          break;
        }
      if (has_word (q, end, "inf") || has_word (q, end, "nan"))
        {
          tok->kind = FB_TOK_FLOAT;
          q += 3;
          break;
        }
      if (q < end && is_digit (*q))
        {
          gboolean f;
          q = scan_number (q, end, &f);
          tok->kind = f ? FB_TOK_FLOAT : FB_TOK_INT;
          break;
        }
      return fb_hlo_lexer_error (lx, error, p, "unexpected character '-'");
    default:
      if (is_digit (c))
        {
          gboolean f;
          q = scan_number (p, end, &f);
          tok->kind = f ? FB_TOK_FLOAT : FB_TOK_INT;
        }
      else if (fb_hlo_is_ident_start (c))
        {
          tok->kind = FB_TOK_NAME;
          q = fb_hlo_scan_ident (p, end);
        }
      else if ((guchar) c >= 0x20 && (guchar) c < 0x7f)
        return fb_hlo_lexer_error (lx, error, p, "unexpected character '%c'", c);
      else
        return fb_hlo_lexer_error (lx, error, p, "unexpected byte 0x%02x", (guchar) c);
    }
  tok->len = q - p;
  lx->p = q;
  return TRUE;
}

gboolean
fb_hlo_lexer_peek (FbHloLexer *lx, FbToken *tok, GError **error)
{
  const char *save = lx->p;
  gboolean ok = fb_hlo_lexer_next (lx, tok, error);
  lx->p = save;
  return ok;
}

const char *
fb_hlo_token_name (const FbToken *tok, gsize *len)
{
  if (tok->percent)
    {
      *len = tok->len - 1;
      return tok->start + 1;
    }
  *len = tok->len;
  return tok->start;
}

const char *
fb_hlo_token_kind_name (FbTokKind kind)
{
  static const char *const names[] = {
    "end of input", "name", "integer", "number", "string",
    "'('", "')'", "'{'", "'}'", "'['", "']'",
    "','", "'='", "':'", "'->'", "'<='", "'?'", "'#'", "'...'",
  };
  return (unsigned) kind < G_N_ELEMENTS (names) ? names[kind] : "?";
}
