/* SPDX-License-Identifier: MIT
 *
 * libFuzzer entry point for the HLO text parser: any byte string must give
 * either a module or a GError, without crashing, leaking or running away.
 * Inputs with `// -----` separators also exercise module selection.
 */
#include "fb-hlo.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;
  int n = fb_hlo_count_modules (text, size);
  for (int i = 0; i < n && i < 4; i++)
    {
      GError *error = NULL;
      FbModule *m = fb_hlo_parse (text, size, "fuzz.hlo", i, &error);
      if ((m == NULL) == (error == NULL))
        __builtin_trap ();
      if (m != NULL)
        {
          /* Touch what the parser built: every instruction and its operands. */
          for (int c = 0; c < m->n_comps; c++)
            for (FbInstr *instr = m->comps[c]->first; instr; instr = instr->next)
              for (int k = 0; k < instr->n_operands; k++)
                if (instr->operands[k] == NULL)
                  __builtin_trap ();
          if (m->entry == NULL || m->entry->root == NULL)
            __builtin_trap ();
        }
      g_clear_error (&error);
      fb_module_free (m);
    }
  return 0;
}
