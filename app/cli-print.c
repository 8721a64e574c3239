/* SPDX-License-Identifier: MIT
 *
 * `fusebox-cli print`: loads a module from HLO text or Fusebox JSON and
 * writes it to stdout as HLO text in the long or short style, or as JSON.
 * Printing what was loaded is the quickest way to check that a file reads
 * as expected, and to turn one format into another.
 */
#include <stdio.h>
#include <string.h>

#include "fb-cli.h"
#include "fb-hlo.h"
#include "fb-json.h"
#include "fb-layout.h"

int
fb_cli_print (int argc, char **argv)
{
  int module_index = 0;
  g_autofree char *style = NULL;
  gboolean json = FALSE, dot = FALSE;
  const GOptionEntry entries[] = {
    { "module", 'm', 0, G_OPTION_ARG_INT, &module_index,
      "Which module of a file with several (separated by `// -----`), counted from 0", "N" },
    { "style", 's', 0, G_OPTION_ARG_STRING, &style,
      "HLO print style: long (`%` names, operand shapes, signatures) or short", "long|short" },
    { "json", 'j', 0, G_OPTION_ARG_NONE, &json, "Write Fusebox JSON instead of HLO text", NULL },
    { "dot", 0, 0, G_OPTION_ARG_NONE, &dot, "Write the entry computation as a Graphviz digraph (fusions as clusters)", NULL },
    { NULL }
  };

  int rc = fb_cli_parse_options (&argc, &argv, "FILE",
                                 "Print a module (HLO text or Fusebox JSON) as HLO text or JSON.",
                                 entries);
  if (rc == -1)
    return FB_EXIT_OK;
  if (rc != 0)
    return rc;

  FbPrintStyle print_style = FB_PRINT_LONG;
  if (style != NULL && strcmp (style, "long") != 0)
    {
      if (strcmp (style, "short") != 0)
        {
          fprintf (stderr, "fusebox-cli print: unknown style '%s' (use long or short)\n", style);
          return FB_EXIT_USAGE;
        }
      print_style = FB_PRINT_SHORT;
    }
  if ((json || style != NULL) && dot)
    {
      fprintf (stderr, "fusebox-cli print: --dot cannot be used with --style or --json\n");
      return FB_EXIT_USAGE;
    }
  if (json && style != NULL)
    {
      fprintf (stderr, "fusebox-cli print: --style and --json cannot be used together\n");
      return FB_EXIT_USAGE;
    }
  if (module_index < 0)
    {
      fprintf (stderr, "fusebox-cli print: --module must be 0 or more\n");
      return FB_EXIT_USAGE;
    }
  if (argc != 2)
    {
      fprintf (stderr, "fusebox-cli print: %s\nUsage: fusebox-cli print FILE [--module N] [--style long|short] [--json]\n",
               argc < 2 ? "missing FILE" : "only one FILE may be given");
      return FB_EXIT_USAGE;
    }

  g_autoptr (GError) error = NULL;
  FbModule *m = fb_cli_load_module (argv[1], module_index, &error);
  if (m == NULL)
    return fb_cli_fail (error);

  g_autofree char *text = dot && m->entry ? fb_graph_to_dot (m->entry, TRUE)
                          : json ? fb_json_from_module (m, TRUE) : fb_hlo_to_string (m, print_style);
  fb_module_free (m);
  fputs (text, stdout);
  if (fflush (stdout) != 0 || ferror (stdout))
    {
      fprintf (stderr, "fusebox-cli print: could not write the output\n");
      return FB_EXIT_INPUT;
    }
  return FB_EXIT_OK;
}
