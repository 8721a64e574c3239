/* SPDX-License-Identifier: MIT
 *
 * Helpers every fusebox-cli subcommand uses: loading a module from a path,
 * turning errors into messages and exit codes, and option parsing with
 * consistent --help and usage errors.
 */
#include <stdio.h>
#include <string.h>

#include "fb-cli.h"
#include "fb-hlo.h"
#include "fb-json.h"

FbModule *
fb_cli_load_module (const char *path, int index, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;

  if (!g_file_get_contents (path, &text, &len, &local))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: %s", path, local->message);
      return NULL;
    }
  const char *p = text;
  while (p < text + len && g_ascii_isspace (*p))
    p++;
  if (g_str_has_suffix (path, ".json") || (p < text + len && *p == '{'))
    return fb_json_to_module (text, len, path, error);
  return fb_hlo_parse (text, len, path, index, error);
}

int
fb_cli_fail (GError *error)
{
  if (error == NULL)
    return FB_EXIT_INPUT;
  fprintf (stderr, "%s\n", error->message);
  return error->domain == FB_ERROR && error->code == FB_ERROR_USAGE ? FB_EXIT_USAGE : FB_EXIT_INPUT;
}

int
fb_cli_parse_options (int *argc, char ***argv, const char *usage, const char *summary,
                      const GOptionEntry *entries)
{
  g_autoptr (GOptionContext) ctx = g_option_context_new (usage);
  g_autoptr (GError) error = NULL;

  if (summary)
    g_option_context_set_summary (ctx, summary);
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_help_enabled (ctx, TRUE);
  /* --help is handled by GLib (prints and exits 0). */
  if (!g_option_context_parse (ctx, argc, argv, &error))
    {
      fprintf (stderr, "fusebox-cli: %s\n", error->message);
      return FB_EXIT_USAGE;
    }
  return 0;
}
