/* SPDX-License-Identifier: MIT
 *
 * Tests of `fusebox-cli inspect`, run as a user would run it: the binary
 * named by FUSEBOX_CLI on the hand-written modules in data/inspect. They
 * check the summary lines (with FLOPs and bytes worked out by hand), the
 * JSON form, the listing of a multi-module file, and the exit codes: 0 for
 * a summary, 1 for a malformed or invalid module, 2 for bad usage.
 */
#include <json-c/json.h>
#include <string.h>
#include <sys/wait.h>

#include <glib.h>

#include "fb-test-cli.h"


static char *
data_path (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "data", "inspect", name, NULL);
}

/* Runs `fusebox-cli inspect ARGS...` (NULL-terminated); FALSE when the
 * binary is not known, after marking the test skipped. */
static gboolean
run_inspect (FbTestRun *r, ...)
{
  va_list ap;
  va_start (ap, r);
  gboolean ok = fb_test_cli_runv (r, "inspect", ap);
  va_end (ap);
  return ok;
}

static void
assert_line (const char *text, const char *line)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i]; i++)
    if (strcmp (lines[i], line) == 0)
      return;
  g_error ("no line '%s' in:\n%s", line, text);
}

/* A line that starts with @start and, after spaces, ends with @end. */
static void
assert_row (const char *text, const char *start, const char *end)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], start) && g_str_has_suffix (g_strchomp (lines[i]), end))
      return;
  g_error ("no line '%s ... %s' in:\n%s", start, end, text);
}

static void
test_summary (void)
{
  g_autofree char *path = data_path ("train-step.hlo");
  g_auto (FbTestRun) r = { 0 };
  if (!run_inspect (&r, path, NULL))
    return;
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  assert_line (r.out, "module: train_step");
  assert_line (r.out, "computations: 3");
  assert_row (r.out, "  fused_update ", "6 instructions  fusion");
  assert_row (r.out, "  train_step ", "11 instructions  entry");
  assert_line (r.out, "instructions: 20");
  assert_line (r.out, "element types: f32");
  assert_line (r.out, "parameters: 3");
  assert_line (r.out, "  1      %w f32[16,8]");
  assert_line (r.out, "  {0}    f32[]");
  assert_line (r.out, "  {1}    f32[16,8]");
  assert_line (r.out, "  output {1} <- parameter 1 {} may-alias");
  assert_line (r.out, "buffer donors: 1");
  assert_line (r.out, "  parameter 2 {}");
  assert_line (r.out, "elided constants: 0");
  /* dots 2*4*8*16 + 2*16*8*4, subtract and multiply 32 each, reduce 31,
   * fused multiply and subtract 128 each: 2399 flops. Bytes: 896 + 384 +
   * 384 + 136 + 896 + 1536 (the fusion reads w and grad, writes nw) = 4232. */
  assert_line (r.out, "estimated flops: 2.4 kFLOP");
  assert_line (r.out, "estimated bytes: 4.1 KiB");

  /* The histogram is sorted by count: parameters first. */
  const char *hist = strstr (r.out, "opcodes:\n");
  g_assert_nonnull (hist);
  g_assert_true (g_str_has_prefix (hist + strlen ("opcodes:\n"), "  parameter "));
  assert_row (r.out, "  parameter ", " 7");
  assert_row (r.out, "  dot ", " 2");
}

static void
test_json (void)
{
  g_autofree char *path = data_path ("train-step.hlo");
  g_auto (FbTestRun) r = { 0 };
  if (!run_inspect (&r, "--json", path, NULL))
    return;
  g_assert_cmpint (r.status, ==, 0);
  json_object *root = json_tokener_parse (r.out), *v, *cost;
  g_assert_nonnull (root);
  g_assert_true (json_object_object_get_ex (root, "module", &v));
  g_assert_cmpstr (json_object_get_string (v), ==, "train_step");
  g_assert_true (json_object_object_get_ex (root, "instructions", &v));
  g_assert_cmpint (json_object_get_int (v), ==, 20);
  g_assert_true (json_object_object_get_ex (root, "opcodes", &v));
  g_assert_true (json_object_object_get_ex (v, "dot", &v));
  g_assert_cmpint (json_object_get_int (v), ==, 2);
  g_assert_true (json_object_object_get_ex (root, "computations", &v));
  g_assert_cmpint (json_object_array_length (v), ==, 3);
  g_assert_true (json_object_object_get_ex (root, "input_output_alias", &v));
  g_assert_cmpint (json_object_array_length (v), ==, 1);
  g_assert_true (json_object_object_get_ex (root, "cost", &cost));
  g_assert_true (json_object_object_get_ex (cost, "flops", &v));
  g_assert_cmpfloat (json_object_get_double (v), ==, 2399);
  g_assert_true (json_object_object_get_ex (cost, "bytes", &v));
  g_assert_cmpfloat (json_object_get_double (v), ==, 4232);
  json_object_put (root);
}

static void
test_multi_module (void)
{
  g_autofree char *path = data_path ("two-modules.hlo");
  g_auto (FbTestRun) r = { 0 };
  if (!run_inspect (&r, "--module", "1", path, NULL))
    return;
  g_assert_cmpint (r.status, ==, 0);
  assert_line (r.out, "module: second");
  assert_line (r.out, "modules in file: 2 (showing 1)");
  assert_line (r.out, "    0 first");
  assert_line (r.out, "  * 1 second");
  assert_line (r.out, "instructions: 2");
}

static void
test_malformed (void)
{
  g_autofree char *path = data_path ("malformed.hlo");
  g_auto (FbTestRun) r = { 0 };
  if (!run_inspect (&r, path, NULL))
    return;
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.out, ==, "");
  g_assert_nonnull (strstr (r.err, "malformed.hlo:6:"));
}

static void
test_invalid (void)
{
  g_autofree char *path = data_path ("invalid.hlo");
  g_auto (FbTestRun) r = { 0 };
  if (!run_inspect (&r, path, NULL))
    return;
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.out, ==, "");
  g_assert_nonnull (strstr (r.err, "invalid.hlo:6:8: %c: operand 1 has shape f32[3] but add needs f32[2]"));
  /* The source line and a caret under the instruction follow. */
  assert_line (r.err, "  ROOT c = f32[2] add(a, b)");
  assert_line (r.err, "       ^");

  g_auto (FbTestRun) nv = { 0 };
  run_inspect (&nv, "--no-verify", path, NULL);
  g_assert_cmpint (nv.status, ==, 0);
  assert_line (nv.out, "module: invalid");
}

static void
test_usage (void)
{
  g_autofree char *path = data_path ("train-step.hlo");
  g_auto (FbTestRun) bad = { 0 }, range = { 0 }, none = { 0 }, missing = { 0 }, help = { 0 };
  if (!run_inspect (&bad, "--frobnicate", path, NULL))
    return;
  g_assert_cmpint (bad.status, ==, 2);
  g_assert_cmpstr (bad.out, ==, "");
  run_inspect (&range, "--module", "3", path, NULL);
  g_assert_cmpint (range.status, ==, 2);
  g_assert_nonnull (strstr (range.err, "has 1 module"));
  run_inspect (&none, NULL);
  g_assert_cmpint (none.status, ==, 2);
  run_inspect (&missing, "no-such-file.hlo", NULL);
  g_assert_cmpint (missing.status, ==, 1);
  g_assert_nonnull (strstr (missing.err, "no-such-file.hlo"));
  run_inspect (&help, "--help", NULL);
  g_assert_cmpint (help.status, ==, 0);
  g_assert_nonnull (strstr (help.out, "--no-verify"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/inspect/summary", test_summary);
  g_test_add_func ("/cli/inspect/json", test_json);
  g_test_add_func ("/cli/inspect/multi-module", test_multi_module);
  g_test_add_func ("/cli/inspect/malformed", test_malformed);
  g_test_add_func ("/cli/inspect/invalid", test_invalid);
  g_test_add_func ("/cli/inspect/usage", test_usage);
  return g_test_run ();
}
