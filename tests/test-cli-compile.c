/* SPDX-License-Identifier: MIT
 *
 * Tests of `fusebox-cli passes` and `fusebox-cli compile`, run as a user
 * would run them: the binary named by FUSEBOX_CLI on hand-written modules
 * in data/passes. They check the pass list and explanations, the table
 * (an input row and one row per pass), the decisions printed by --explain,
 * the JSON form, the files --dump-after-each writes (which must load
 * again), and the exit codes: 1 for bad input or an unwritable dump
 * directory, 2 for bad usage such as an unknown pass.
 */
#include <json-c/json.h>
#include <string.h>
#include <sys/wait.h>

#include <glib.h>

#include "fb-test-cli.h"
#include <glib/gstdio.h>

#include "fb-hlo.h"
#include "fb-verify.h"


static char *
data_path (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "data", "passes", name, NULL);
}

/* Runs `fusebox-cli ARGS...` (NULL-terminated); FALSE when the binary is
 * not known, after marking the test skipped. */
static gboolean
run_cli (FbTestRun *r, ...)
{
  va_list ap;
  va_start (ap, r);
  gboolean ok = fb_test_cli_runv (r, NULL, ap);
  va_end (ap);
  return ok;
}

/* The line of @text whose first two words are @first and @second, split
 * into words; NULL when there is none. */
static GStrv
find_row (const char *text, const char *first, const char *second)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i]; i++)
    {
      g_auto (GStrv) words = g_regex_split_simple ("\\s+", g_strstrip (lines[i]), 0, 0);
      if (words[0] && words[1] && strcmp (words[0], first) == 0 && strcmp (words[1], second) == 0)
        return g_steal_pointer (&words);
    }
  return NULL;
}

static void
test_passes_list (void)
{
  g_auto (FbTestRun) r = { 0 };
  if (!run_cli (&r, "passes", NULL))
    return;
  g_assert_cmpint (r.status, ==, 0);
  g_auto (GStrv) lines = g_strsplit (r.out, "\n", -1);
  /* Pipeline order: the cleanup passes first. */
  g_assert_true (g_str_has_prefix (lines[0], "simplify "));
  g_assert_true (g_str_has_prefix (lines[1], "fold-constants "));
  g_assert_nonnull (strstr (r.out, "\ncse "));
  g_assert_nonnull (strstr (r.out, "\ndce "));
  g_assert_nonnull (strstr (r.out, "common subexpression elimination"));
}

static void
test_passes_explain (void)
{
  g_auto (FbTestRun) r = { 0 };
  if (!run_cli (&r, "passes", "--explain", "dce", NULL))
    return;
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_str_has_prefix (r.out, "dce: "));
  g_assert_nonnull (strstr (r.out, "dead code elimination"));

  g_auto (FbTestRun) bad = { 0 };
  run_cli (&bad, "passes", "--explain", "no-such-pass", NULL);
  g_assert_cmpint (bad.status, ==, 2);
  g_assert_nonnull (strstr (bad.err, "unknown pass 'no-such-pass'"));
  g_assert_nonnull (strstr (bad.err, "simplify"));
}

static void
test_compile_table (void)
{
  g_autofree char *path = data_path ("add-zero.hlo");
  g_auto (FbTestRun) r = { 0 };
  if (!run_cli (&r, "compile", path, "--passes", "simplify,dce", NULL))
    return;
  g_assert_cmpint (r.status, ==, 0);
  g_auto (GStrv) header = find_row (r.out, "#", "pass");
  g_assert_nonnull (header);
  /* input: 7 instructions, 5 kernels (broadcast, add, add, subtract, multiply). */
  g_auto (GStrv) input = find_row (r.out, "-", "input");
  g_assert_nonnull (input);
  g_assert_cmpstr (input[4], ==, "7");
  g_assert_cmpstr (input[5], ==, "5");
  g_auto (GStrv) simplify = find_row (r.out, "1", "simplify");
  g_assert_nonnull (simplify);
  g_assert_cmpstr (simplify[2], ==, "on");
  g_assert_cmpstr (simplify[3], ==, "yes");
  g_auto (GStrv) cse = find_row (r.out, "3", "cse");
  g_assert_nonnull (cse);
  g_assert_cmpstr (cse[2], ==, "off");
  /* After dce: x and the multiply. */
  g_auto (GStrv) dce = find_row (r.out, "5", "dce");
  g_assert_nonnull (dce);
  g_assert_cmpstr (dce[3], ==, "yes");
  g_assert_cmpstr (dce[4], ==, "2");
  g_assert_cmpstr (dce[5], ==, "1");
  /* No decisions without --explain. */
  g_assert_null (strstr (r.out, "x+0"));
}

static void
test_compile_explain (void)
{
  g_autofree char *path = data_path ("add-zero.hlo");
  g_auto (FbTestRun) r = { 0 };
  if (!run_cli (&r, "compile", path, "--passes", "simplify,dce", "--explain", NULL))
    return;
  g_assert_cmpint (r.status, ==, 0);
  const char *simplify = strstr (r.out, "simplify");
  const char *rule = strstr (r.out, "[x+0]");
  const char *dce = strstr (r.out, "dce");
  g_assert_nonnull (rule);
  /* Decisions stand under the row of their pass. */
  g_assert_true (simplify < rule && rule < dce);
  g_assert_nonnull (strstr (r.out, "%a became %x"));
  g_assert_nonnull (strstr (r.out, "removed [unused]"));
}

static void
test_compile_json (void)
{
  g_autofree char *path = data_path ("add-zero.hlo");
  g_auto (FbTestRun) r = { 0 };
  if (!run_cli (&r, "compile", path, "--passes", "all,-cse", "--json", NULL))
    return;
  g_assert_cmpint (r.status, ==, 0);
  json_object *root = json_tokener_parse (r.out);
  g_assert_nonnull (root);
  json_object *input, *passes, *v;
  g_assert_true (json_object_object_get_ex (root, "input", &input));
  static const char *fields[] = { "instructions", "kernels", "bytes", "peak_bytes", "flops" };
  for (gsize i = 0; i < G_N_ELEMENTS (fields); i++)
    g_assert_true (json_object_object_get_ex (input, fields[i], NULL));
  g_assert_true (json_object_object_get_ex (input, "instructions", &v));
  g_assert_cmpint (json_object_get_int (v), ==, 7);
  g_assert_true (json_object_object_get_ex (root, "passes", &passes));
  g_assert_cmpint (json_object_array_length (passes), >=, 5);
  gboolean saw_cse = FALSE;
  for (size_t i = 0; i < json_object_array_length (passes); i++)
    {
      json_object *p = json_object_array_get_idx (passes, i), *name, *enabled, *changed;
      g_assert_true (json_object_object_get_ex (p, "name", &name));
      g_assert_true (json_object_object_get_ex (p, "enabled", &enabled));
      g_assert_true (json_object_object_get_ex (p, "changed", &changed));
      g_assert_true (json_object_object_get_ex (p, "ms", NULL));
      for (gsize k = 0; k < G_N_ELEMENTS (fields); k++)
        g_assert_true (json_object_object_get_ex (p, fields[k], NULL));
      if (strcmp (json_object_get_string (name), "cse") == 0)
        {
          saw_cse = TRUE;
          g_assert_false (json_object_get_boolean (enabled));
          g_assert_false (json_object_get_boolean (changed));
        }
      if (strcmp (json_object_get_string (name), "simplify") == 0)
        g_assert_true (json_object_get_boolean (changed));
    }
  g_assert_true (saw_cse);
  json_object_put (root);
}

static void
test_compile_dump (void)
{
  g_autofree char *path = data_path ("reshape-transpose.hlo");
  g_autofree char *tmp = g_dir_make_tmp ("fb-dump-XXXXXX", NULL);
  g_autofree char *dir = g_build_filename (tmp, "nested", "dumps", NULL);
  g_auto (FbTestRun) r = { 0 };
  if (!run_cli (&r, "compile", path, "--passes", "simplify,cse,dce", "--dump-after-each", dir, NULL))
    return;
  g_assert_cmpint (r.status, ==, 0);
  static const char *names[] = { "01.after_simplify.hlo", "02.after_cse.hlo", "03.after_dce.hlo" };
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *file = g_build_filename (dir, names[i], NULL);
      g_assert_true (g_file_test (file, G_FILE_TEST_EXISTS));
      g_autoptr (GError) error = NULL;
      FbModule *m = fb_hlo_parse_file (file, 0, &error);
      g_assert_no_error (error);
      g_assert_true (fb_verify (m, &error));
      if (i == 2)
        g_assert_cmpint (fb_module_instr_count (m), ==, 4);
      fb_module_free (m);
      g_remove (file);
    }
  /* Only passes that ran are dumped. */
  g_autofree char *none = g_build_filename (dir, "04.after_canonicalize.hlo", NULL);
  g_assert_false (g_file_test (none, G_FILE_TEST_EXISTS));
  g_rmdir (dir);
  g_autofree char *nested = g_build_filename (tmp, "nested", NULL);
  g_rmdir (nested);
  g_rmdir (tmp);
}

static void
test_compile_errors (void)
{
  g_autofree char *path = data_path ("add-zero.hlo");
  g_auto (FbTestRun) unknown = { 0 };
  if (!run_cli (&unknown, "compile", path, "--passes", "simplify,nope", NULL))
    return;
  g_assert_cmpint (unknown.status, ==, 2);
  g_assert_nonnull (strstr (unknown.err, "unknown pass 'nope'"));
  g_assert_nonnull (strstr (unknown.err, "canonicalize"));

  g_auto (FbTestRun) no_file = { 0 };
  run_cli (&no_file, "compile", NULL);
  g_assert_cmpint (no_file.status, ==, 2);

  g_auto (FbTestRun) missing = { 0 };
  run_cli (&missing, "compile", "does-not-exist.hlo", NULL);
  g_assert_cmpint (missing.status, ==, 1);
  g_assert_nonnull (strstr (missing.err, "does-not-exist.hlo"));

  /* A dump directory under a regular file cannot be made. */
  g_auto (FbTestRun) unwritable = { 0 };
  g_autofree char *under_file = g_build_filename (path, "dumps", NULL);
  run_cli (&unwritable, "compile", path, "--passes", "dce", "--dump-after-each", under_file, NULL);
  g_assert_cmpint (unwritable.status, ==, 1);
  g_assert_nonnull (strstr (unwritable.err, "dump"));
  g_assert_cmpstr (unwritable.out, ==, "");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/passes/list", test_passes_list);
  g_test_add_func ("/cli/passes/explain", test_passes_explain);
  g_test_add_func ("/cli/compile/table", test_compile_table);
  g_test_add_func ("/cli/compile/explain", test_compile_explain);
  g_test_add_func ("/cli/compile/json", test_compile_json);
  g_test_add_func ("/cli/compile/dump", test_compile_dump);
  g_test_add_func ("/cli/compile/errors", test_compile_errors);
  return g_test_run ();
}
