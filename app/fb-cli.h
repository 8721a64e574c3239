/* SPDX-License-Identifier: MIT
 *
 * Shared pieces of fusebox-cli: the subcommand table, exit codes, loading a
 * module from any supported file, and printing errors.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

enum { FB_EXIT_OK = 0, FB_EXIT_INPUT = 1, FB_EXIT_USAGE = 2 };

typedef int (*FbCliCommand) (int argc, char **argv);

/* Loads HLO text, Fusebox JSON (by extension .json or a leading `{`), module
 * @index of a multi-module file. */
FbModule *fb_cli_load_module (const char *path, int index, GError **error);
/* Prints `fusebox-cli: message` (or the diagnostic as it is) to stderr and
 * returns the exit code for the error's kind (usage 2, else 1). */
int       fb_cli_fail        (GError *error);
/* Parses @argc/@argv with @entries; prints help for --help (returns -1 then,
 * caller exits 0), or an error (returns FB_EXIT_USAGE). 0 on success. */
int       fb_cli_parse_options (int *argc, char ***argv, const char *usage, const char *summary,
                                const GOptionEntry *entries);

/* Subcommands, each in app/cli-NAME.c. */
int fb_cli_inspect (int argc, char **argv);
int fb_cli_print   (int argc, char **argv);
int fb_cli_gen     (int argc, char **argv);
int fb_cli_run     (int argc, char **argv);
int fb_cli_render  (int argc, char **argv);
int fb_cli_passes  (int argc, char **argv);
int fb_cli_compile (int argc, char **argv);
/* Runs the passes of @spec (`all`, `none`, `a,b`, `all,-a`) over @module in
 * place; constant folding uses the interpreter. FB_ERROR_USAGE for a bad spec. */
gboolean fb_cli_apply_passes (FbModule *module, const char *spec, GError **error);

int fb_cli_profile (int argc, char **argv);
int fb_cli_bench   (int argc, char **argv);
/* The batch size of a training step: the leading dimension of the first
 * parameter that no output feeds (input_output_alias), or 1. */
int      fb_cli_batch_size     (FbModule *module);
/* "512 B", "1.5 MiB". */
char    *fb_cli_bytes_text     (double bytes);
/* FALSE with an FB_ERROR_IO error saying why when @path cannot be written;
 * leaves no new file behind. */
gboolean fb_cli_check_writable (const char *path, GError **error);

G_END_DECLS
