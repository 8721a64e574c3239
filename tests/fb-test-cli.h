/* SPDX-License-Identifier: MIT
 *
 * For tests that run the fusebox-cli binary named by FUSEBOX_CLI and look
 * at its exit status, stdout and stderr.
 */
#pragma once

#include <glib.h>
#include <stdarg.h>

G_BEGIN_DECLS

typedef struct {
  int   status;   /* exit status */
  char *out;      /* stdout */
  char *err;      /* stderr */
} FbTestRun;

void     fb_test_run_clear (FbTestRun *r);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (FbTestRun, fb_test_run_clear)

/* Runs `fusebox-cli [COMMAND] ARGS...` (@ap: NULL-terminated strings; @command
 * may be NULL). FALSE, with the test marked skipped, when FUSEBOX_CLI is
 * unset. The process must exit normally. */
gboolean fb_test_cli_runv (FbTestRun *r, const char *command, va_list ap);

G_END_DECLS
