/* SPDX-License-Identifier: MIT
 *
 * State shared by the two halves of the HLO parser: fb-hlo-parser.c reads
 * the module structure (header, computations, instructions, operands) and
 * fb-hlo-parser-values.c reads values (shapes, literals, attributes).
 */
#pragma once

#include "fb-hlo-lexer.h"

G_BEGIN_DECLS

/* Nesting limit for tuples, literals and bracketed attribute values. */
#define FB_HLO_MAX_DEPTH 64
/* Largest dimension and element count of a shape. */
#define FB_HLO_MAX_ELEMENTS (G_GINT64_CONSTANT (1) << 40)
/* Largest constant a module may hold in memory (twice that for all of them). */
#define FB_HLO_MAX_LITERAL_BYTES (G_GINT64_CONSTANT (512) << 20)

typedef struct {
  FbInstr    *instr;
  int         attr;      /* index of a COMP or COMPS attribute of instr */
  int         slot;      /* index into its v.comps.c */
  const char *name;      /* computation name in the text (no `%`) */
  gsize       len;
} FbHloPendingComp;

/* Instruction names of the computation being read, looked up by the bytes
 * of the text (no copy, no NUL needed). Open addressing; emptied in O(1)
 * between computations by moving to a new stamp. */
typedef struct {
  const char *name;      /* NUL-terminated, in the module's arena */
  guint32     len;
  guint32     stamp;     /* the slot is live when this equals the table's stamp */
  FbInstr    *instr;
} FbHloNameSlot;

typedef struct {
  FbHloNameSlot *slots;
  guint32        mask;   /* number of slots - 1 */
  guint32        used;
  guint32        stamp;
} FbHloNames;

typedef struct {
  FbHloLexer  lx;
  GError     *err;
  FbModule   *m;
  FbArena    *arena;
  GHashTable *comps;     /* name -> FbComputation*, whole module */
  FbHloNames  names;     /* name -> FbInstr*, current computation */
  GArray     *pending;   /* FbHloPendingComp: resolved once every computation is known */
  GString    *buf;       /* scratch for NUL-terminated lookups */
  FbElemType  last_type; /* element type of the last shape read */
  gint64      literal_bytes; /* constant data loaded so far */
  FbArena    *scratch;   /* operand shapes written out in the text: checked, then dropped */
} FbHloParser;

/* Error at @at; returns FALSE. */
#define _fb_hlo_fail(P, at, ...) fb_hlo_lexer_error (&(P)->lx, &(P)->err, (at), __VA_ARGS__)

static inline gboolean
_fb_hlo_skip (FbHloParser *P)
{
  return fb_hlo_lexer_skip_fast (&P->lx, &P->err);
}

/* Skips trivia and consumes @c, or fails with "expected 'c' CONTEXT". */
gboolean  _fb_hlo_expect     (FbHloParser *P, char c, const char *context);

/* Skips trivia; TRUE and consumes @c when it is next. */
static inline gboolean
_fb_hlo_accept (FbHloParser *P, char c)
{
  if (!_fb_hlo_skip (P))
    return FALSE;
  if (P->lx.p < P->lx.end && *P->lx.p == c)
    {
      P->lx.p++;
      return TRUE;
    }
  return FALSE;
}

/* The next token. Names, the most common tokens, are read inline; the rest
 * goes to the lexer. */
static inline gboolean
_fb_hlo_next (FbHloParser *P, FbToken *tok)
{
  if (!_fb_hlo_skip (P))
    return FALSE;
  const char *p = P->lx.p, *end = P->lx.end;
  if (p < end)
    {
      gboolean percent = *p == '%';
      const char *s = p + percent;
      if (s < end && (percent ? fb_hlo_is_ident_char (*s) : fb_hlo_is_ident_start (*s)))
        {
          const char *q = fb_hlo_scan_ident (s, end);
          tok->kind = FB_TOK_NAME;
          tok->start = p;
          tok->len = q - p;
          tok->percent = percent;
          P->lx.p = q;
          return TRUE;
        }
    }
  return fb_hlo_lexer_next (&P->lx, tok, &P->err);
}

gboolean  _fb_hlo_int        (FbHloParser *P, const FbToken *tok, int64_t *out);
gboolean  _fb_hlo_read_int   (FbHloParser *P, int64_t *out, const char *what);
char     *_fb_hlo_unescape   (FbHloParser *P, const FbToken *tok);

FbShape  *_fb_hlo_parse_shape   (FbHloParser *P, int depth);
gboolean  _fb_hlo_parse_dims    (FbHloParser *P, FbDims *out);
gboolean  _fb_hlo_parse_literal (FbHloParser *P, FbInstr *instr);
gboolean  _fb_hlo_parse_attr    (FbHloParser *P, FbInstr *instr);
/* Verbatim text of a value: balanced brackets and strings, up to a ',' or
 * a newline at the top level or a closing bracket that it did not open. */
gboolean  _fb_hlo_scan_raw      (FbHloParser *P, const char **start, gsize *len, const char *key);

G_END_DECLS
