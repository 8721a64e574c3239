/* SPDX-License-Identifier: MIT
 *
 * fusebox-cli: the headless face of Fusebox. One subcommand per task; every
 * one has --help, prints errors with file:line:column, and exits 0 on
 * success, 1 on bad input and 2 on bad usage. Never links GTK.
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "fb-cli.h"

typedef struct {
  const char   *name;
  FbCliCommand  run;
  const char   *summary;
} Command;

static const Command commands[] = {
  { "inspect", fb_cli_inspect, "summarise a module: computations, opcodes, shapes, aliasing, cost" },
  { "gen",     fb_cli_gen,     "generate a zoo model's training step (mlp, cnn, transformer, resnet-block)" },
  { "print",   fb_cli_print,   "print a module as HLO text (long or short style) or JSON" },
  { "render",  fb_cli_render,  "draw a graph, a pass diff, memory, throughput, timeline or roofline to PNG, SVG or PDF" },
  { "run",     fb_cli_run,     "run training steps on a backend: loss per step and steps/s" },
  { "bench",   fb_cli_bench,   "compare two pass sets (and backends) side by side: steps/s, GFLOP/s, memory, kernels" },
  { "profile", fb_cli_profile, "run training steps with the profiler: Chrome trace, per-kernel time, FLOP/s and roofline" },
  { "passes",  fb_cli_passes,  "list the compiler passes in pipeline order, or explain one" },
  { "compile", fb_cli_compile, "run the compiler passes over a module: a table of what each pass did" },
};

static void
usage (FILE *out)
{
  fprintf (out, "Usage: fusebox-cli COMMAND [OPTIONS] ...\n\nCommands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\nRun `fusebox-cli COMMAND --help` for the options of a command.\n");
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  if (argc < 2)
    {
      usage (stderr);
      return FB_EXIT_USAGE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    {
      usage (stdout);
      return FB_EXIT_OK;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      printf ("fusebox-cli %s\n", FB_VERSION);
      return FB_EXIT_OK;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].run (argc - 1, argv + 1);
  fprintf (stderr, "fusebox-cli: unknown command '%s'\n\n", argv[1]);
  usage (stderr);
  return FB_EXIT_USAGE;
}
