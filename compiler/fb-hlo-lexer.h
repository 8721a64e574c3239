/* SPDX-License-Identifier: MIT
 *
 * Tokens of HLO text. The lexer walks a byte range of a larger text (one
 * module of a multi-module file) without copying it: a token is a pointer and
 * a length into the text. It skips whitespace and both comment styles, and
 * builds the diagnostics of the parser: `file:line:column: message`, the
 * source line and a caret, with columns counted in bytes from 1.
 *
 * Much of HLO is context sensitive (`3x3`, `0_1x1_0`, `b01f_01io->b01f`), so
 * the parser also reads characters directly at the lexer's cursor.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

typedef enum {
  FB_TOK_EOF,
  FB_TOK_NAME,        /* `%name` (percent set) or an identifier: `add`, `f32`, `get-tuple-element.1` */
  FB_TOK_INT,         /* `12`, `-3` */
  FB_TOK_FLOAT,       /* `1.5`, `-2e-3`, `-inf`, `-nan` */
  FB_TOK_STRING,      /* `"text"`, escapes left in place */
  FB_TOK_LPAREN, FB_TOK_RPAREN, FB_TOK_LBRACE, FB_TOK_RBRACE,
  FB_TOK_LBRACKET, FB_TOK_RBRACKET,
  FB_TOK_COMMA, FB_TOK_EQUAL, FB_TOK_COLON, FB_TOK_ARROW, FB_TOK_LEQ,
  FB_TOK_QUESTION, FB_TOK_HASH, FB_TOK_DOTS,   /* `...` */
} FbTokKind;

typedef struct {
  FbTokKind   kind;
  const char *start;     /* first byte of the token (the `%` of a name) */
  gsize       len;
  gboolean    percent;   /* NAME written with a leading `%` */
} FbToken;

typedef struct {
  const char *text;      /* the whole input: lines are counted from its start */
  gsize       text_len;
  const char *path;      /* for diagnostics */
  const char *p;         /* cursor */
  const char *end;       /* end of the range being lexed */
  /* Incremental line counting for locations (monotonic use only). */
  const char *loc_pos;
  int         loc_line;
  const char *loc_line_start;
} FbHloLexer;

/* Lexes text[start, end) of @text. @path may be NULL ("<input>"). */
void        fb_hlo_lexer_init  (FbHloLexer *lx, const char *text, gsize text_len,
                                gsize start, gsize end, const char *path);
/* Skips whitespace, `// ...` and `/ * ... * /` comments. FALSE on an unterminated block comment. */
gboolean    fb_hlo_lexer_skip  (FbHloLexer *lx, GError **error);
/* Reads the next token; FALSE (and @error set) on a character that starts no token. */
gboolean    fb_hlo_lexer_next  (FbHloLexer *lx, FbToken *tok, GError **error);
/* Like next, but leaves the cursor where it was. */
gboolean    fb_hlo_lexer_peek  (FbHloLexer *lx, FbToken *tok, GError **error);
/* Text of a NAME without its `%`. */
const char *fb_hlo_token_name  (const FbToken *tok, gsize *len);
const char *fb_hlo_token_kind_name (FbTokKind kind);

/* Line and column (1-based, bytes) of @at. Fast when called with increasing @at. */
FbLoc       fb_hlo_lexer_loc   (FbHloLexer *lx, const char *at);
/* Sets @error to FB_ERROR_PARSE with `path:line:col: message`, the source
 * line of @at and a caret under it. Always returns FALSE. */
gboolean    fb_hlo_lexer_error (FbHloLexer *lx, GError **error, const char *at,
                                const char *format, ...) G_GNUC_PRINTF (4, 5);

/* Character classes shared with the parser: bit 1 starts a name (letters
 * and `_`), bit 2 continues one (also digits, `.` and `-`). */
extern const guint8 _fb_hlo_char_class[256];

static inline gboolean
fb_hlo_is_ident_start (char c)
{
  return _fb_hlo_char_class[(guchar) c] & 1;
}

static inline gboolean
fb_hlo_is_ident_char (char c)
{
  return _fb_hlo_char_class[(guchar) c] & 2;
}

/* End of the identifier that starts at @p (see FB_TOK_NAME). */
static inline const char *
fb_hlo_scan_ident (const char *p, const char *end)
{
  while (p < end && fb_hlo_is_ident_char (*p))
    {
      /* `->` ends a name: `(x: f32[])->f32[]`. */
      if (*p == '-' && p + 1 < end && p[1] == '>')
        break;
      p++;
    }
  return p;
}

/* fb_hlo_lexer_skip with the common cases inline: nothing to skip, or
 * single spaces between tokens. */
static inline gboolean
fb_hlo_lexer_skip_fast (FbHloLexer *lx, GError **error)
{
  const char *p = lx->p;
  while (p < lx->end && *p == ' ')
    p++;
  lx->p = p;
  if (p < lx->end && (*p == '\n' || *p == '\t' || *p == '\r' || *p == '/'))
    return fb_hlo_lexer_skip (lx, error);
  return TRUE;
}

G_END_DECLS
