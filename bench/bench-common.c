/* SPDX-License-Identifier: MIT
 *
 * Shared by the C benchmarks: the machine line at the top of every report
 * (CPU model, cores, and the vector extensions that decide kernel speed).
 */
#include <stdio.h>
#include <string.h>

#include "bench-common.h"

void
fb_bench_print_machine (void)
{
  static const char *const wanted[] = { "sse4_2", "avx", "avx2", "bmi2", "fma", "avx512f", "avx512bw",
                                        "avx512vl", "avx512_bf16", "avx512_vnni", "amx_tile", NULL };
  g_autofree char *text = NULL;
  g_autofree char *model = NULL;
  g_autoptr (GString) flags = g_string_new (NULL);

  if (g_file_get_contents ("/proc/cpuinfo", &text, NULL, NULL))
    {
      g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
      for (int i = 0; lines[i]; i++)
        {
          char *colon = strchr (lines[i], ':');
          if (colon == NULL)
            continue;
          if (model == NULL && g_str_has_prefix (lines[i], "model name"))
            model = g_strstrip (g_strdup (colon + 1));
          else if (flags->len == 0 && g_str_has_prefix (lines[i], "flags"))
            {
              g_auto (GStrv) have = g_strsplit (colon + 1, " ", -1);
              for (int w = 0; wanted[w]; w++)
                if (g_strv_contains ((const char *const *) have, wanted[w]))
                  g_string_append_printf (flags, "%s%s", flags->len ? " " : "", wanted[w]);
            }
        }
    }
  printf ("machine: %s, %u cores, flags: %s\n", model ? model : "unknown CPU", g_get_num_processors (),
          flags->len ? flags->str : "(none of the vector extensions)");
}
