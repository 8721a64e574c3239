/* SPDX-License-Identifier: MIT
 *
 * Fusebox's own JSON form of a module (schema in docs/json-format.md):
 * lossless against the IR, read and written with json-c.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

char     *fb_json_from_module (FbModule *module, gboolean pretty);        /* g_free */
FbModule *fb_json_to_module   (const char *text, gsize len, const char *path, GError **error);
FbModule *fb_json_load_file   (const char *path, GError **error);

G_END_DECLS
