/* SPDX-License-Identifier: MIT
 *
 * Runs fusebox-cli for the CLI tests and captures what it printed.
 */
#include <sys/wait.h>

#include "fb-test-cli.h"

void
fb_test_run_clear (FbTestRun *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
}

gboolean
fb_test_cli_runv (FbTestRun *r, const char *command, va_list ap)
{
  const char *cli = g_getenv ("FUSEBOX_CLI");
  if (cli == NULL)
    {
      g_test_skip ("FUSEBOX_CLI is not set; it names the fusebox-cli binary");
      return FALSE;
    }
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) cli);
  if (command)
    g_ptr_array_add (argv, (gpointer) command);
  for (const char *a = va_arg (ap, const char *); a; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  g_ptr_array_add (argv, NULL);

  g_autoptr (GError) error = NULL;
  int wait_status = 0;
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &r->out, &r->err,
                &wait_status, &error);
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (wait_status));
  r->status = WEXITSTATUS (wait_status);
  return TRUE;
}
