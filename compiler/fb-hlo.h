/* SPDX-License-Identifier: MIT
 *
 * HLO text in and out: the parser reads every print style XLA emits, the
 * printer writes the long or the short style. Parse errors carry
 * `file:line:column: message`, then the source line and a caret under the
 * fault, all in the GError message, ready for the CLI to print.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

/* Number of modules in @text (separated by `// -----` lines); at least 1. */
int       fb_hlo_count_modules (const char *text, gsize len);
/* Parses module @index (0-based) of @text. @path names the file in
 * diagnostics (may be NULL: "<input>"). */
FbModule *fb_hlo_parse      (const char *text, gsize len, const char *path, int index, GError **error);
FbModule *fb_hlo_parse_file (const char *path, int index, GError **error);

typedef enum {
  FB_PRINT_LONG,        /* `%name = f32[2]{0} add(f32[2]{0} %a, f32[2]{0} %b)`, signatures */
  FB_PRINT_SHORT        /* `name = f32[2]{0} add(a, b)`, no `%`, no operand shapes, no signatures */
} FbPrintStyle;

void      fb_hlo_print      (GString *out, FbModule *module, FbPrintStyle style);
char     *fb_hlo_to_string  (FbModule *module, FbPrintStyle style);   /* g_free */
/* One instruction as it would be printed (no indent, no newline). */
void      fb_hlo_print_instr (GString *out, const FbInstr *instr, FbPrintStyle style);
/* Appends the literal text of a constant: `1.5`, `{1, 2}`, `{ {1, 2}, {3, 4} }`. */
void      fb_hlo_print_literal (GString *out, const FbLiteral *lit);

G_END_DECLS
