/* SPDX-License-Identifier: MIT
 *
 * Tests of `fusebox-cli run` as a user runs it: the text and JSON output on
 * the linear regression step in tests/data/run, .npy inputs and saved
 * outputs, the feed mapping, --threads on the CPU backend, and exit codes 1
 * (bad input) and 2 (bad usage) with a message on stderr.
 */
#include <glib/gstdio.h>
#include <json.h>
#include <string.h>

#include "fb-npy.h"

typedef struct {
  int   status;
  char *out;
  char *err;
} Result;

static void
result_clear (Result *r)
{
  g_free (r->out);
  g_free (r->err);
}

static const char *
cli_path (void)
{
  const char *cli = g_getenv ("FUSEBOX_CLI");
  if (cli == NULL)
    g_test_skip ("FUSEBOX_CLI is not set: run through meson test");
  return cli;
}

static char *
data_file (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "data", "run", name, NULL);
}

/* Runs `fusebox-cli run ARGS...` (NULL-terminated). */
static Result
run_cli (const char *first, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  Result r = { 0 };
  va_list ap;

  g_ptr_array_add (argv, (char *) g_getenv ("FUSEBOX_CLI"));
  g_ptr_array_add (argv, "run");
  va_start (ap, first);
  for (const char *a = first; a; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  int wait = 0;
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &r.out, &r.err, &wait, &error));
  g_assert_no_error (error);
  if (g_spawn_check_wait_status (wait, &error))
    r.status = 0;
  else if (error->domain == G_SPAWN_EXIT_ERROR)
    r.status = error->code;
  else
    g_error ("fusebox-cli did not exit normally: %s", error->message);
  return r;
}

static json_object *
parse_json (const char *text)
{
  json_object *obj = json_tokener_parse (text);
  if (obj == NULL || !json_object_is_type (obj, json_type_object))
    g_error ("not a JSON object: %s", text);
  return obj;
}

static void
test_text_output (void)
{
  if (!cli_path ())
    return;
  g_autofree char *hlo = data_file ("linreg.hlo");
  Result r = run_cli (hlo, "--backend", "interp", "--steps", "5", "--seed", "3", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_auto (GStrv) lines = g_strsplit (r.out, "\n", -1);
  g_assert_cmpint (g_strv_length (lines), ==, 7);   /* 5 steps, steps/s, "" */
  for (int i = 0; i < 5; i++)
    {
      g_autofree char *prefix = g_strdup_printf ("step %d loss ", i + 1);
      g_assert_true (g_str_has_prefix (lines[i], prefix));
      char *end = NULL;
      double loss = g_ascii_strtod (lines[i] + strlen (prefix), &end);
      g_assert_true (*end == '\0');
      g_assert_cmpfloat (loss, >, 0);
    }
  g_assert_true (g_regex_match_simple ("^steps/s [0-9.e+-]+$", lines[5], 0, 0));
  g_assert_cmpstr (lines[6], ==, "");
  result_clear (&r);
}

static void
test_json_output (void)
{
  if (!cli_path ())
    return;
  g_autofree char *hlo = data_file ("linreg.hlo");
  Result r = run_cli (hlo, "--steps", "20", "--json", NULL);
  g_assert_cmpint (r.status, ==, 0);
  json_object *obj = parse_json (r.out);
  json_object *v;
  g_assert_true (json_object_object_get_ex (obj, "backend", &v));
  g_assert_cmpstr (json_object_get_string (v), ==, "interp");
  g_assert_true (json_object_object_get_ex (obj, "steps", &v));
  g_assert_cmpint (json_object_get_int (v), ==, 20);
  g_assert_true (json_object_object_get_ex (obj, "steps_per_s", &v));
  g_assert_cmpfloat (json_object_get_double (v), >, 0);
  g_assert_true (json_object_object_get_ex (obj, "losses", &v));
  g_assert_cmpint (json_object_array_length (v), ==, 20);
  double first = json_object_get_double (json_object_array_get_idx (v, 0));
  double last = json_object_get_double (json_object_array_get_idx (v, 19));
  g_assert_cmpfloat (first, >, 0);
  g_assert_cmpfloat (last, <, first * 0.3);
  json_object_put (obj);
  result_clear (&r);
}

static void
write_x (const char *dir, const char *file, int n)
{
  g_autoptr (GError) error = NULL;
  FbArena *arena = fb_arena_new ();
  int64_t dims[1] = { n };
  FbLiteral *lit = fb_literal_new (arena, fb_shape_new_array (arena, FB_F32, 1, dims));
  for (int i = 0; i < n; i++)
    fb_literal_set_f64 (lit, i, -1.0 + 2.0 * i / (n - 1));
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_assert_true (fb_npy_save (path, lit, &error));
  g_assert_no_error (error);
  fb_arena_free (arena);
}

static void
remove_tree (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        remove_tree (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}

static void
test_inputs_and_outputs (void)
{
  if (!cli_path ())
    return;
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("fb-cli-run-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *in = g_build_filename (tmp, "in", NULL);
  g_autofree char *out = g_build_filename (tmp, "out", NULL);
  g_mkdir (in, 0755);
  write_x (in, "x.npy", 8);
  g_autofree char *hlo = data_file ("linreg.hlo");

  Result r = run_cli (hlo, "--steps", "10", "--inputs", in, "--save-outputs", out, "--json", NULL);
  g_assert_cmpint (r.status, ==, 0);
  json_object *obj = parse_json (r.out);
  json_object *losses;
  g_assert_true (json_object_object_get_ex (obj, "losses", &losses));
  for (int i = 1; i < 10; i++)
    g_assert_cmpfloat (json_object_get_double (json_object_array_get_idx (losses, i)), <,
                       json_object_get_double (json_object_array_get_idx (losses, i - 1)));
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *file = g_strdup_printf ("out.%d.npy", i);
      g_autofree char *path = g_build_filename (out, file, NULL);
      g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
    }
  json_object_put (obj);
  result_clear (&r);

  /* The wrong shape for x is bad input, named in the message. */
  g_autofree char *bad = g_build_filename (tmp, "bad", NULL);
  g_mkdir (bad, 0755);
  write_x (bad, "param.2.npy", 5);
  r = run_cli (hlo, "--inputs", bad, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "expects f32[8] but the file holds f32[5]"));
  result_clear (&r);
  remove_tree (tmp);
}

static void
test_feed (void)
{
  if (!cli_path ())
    return;
  g_autofree char *hlo = data_file ("linreg-noalias.hlo");
  Result r = run_cli (hlo, "--steps", "20", "--feed", "1=0,2=1", "--json", NULL);
  g_assert_cmpint (r.status, ==, 0);
  json_object *obj = parse_json (r.out);
  json_object *losses;
  g_assert_true (json_object_object_get_ex (obj, "losses", &losses));
  g_assert_cmpfloat (json_object_get_double (json_object_array_get_idx (losses, 19)), <,
                     json_object_get_double (json_object_array_get_idx (losses, 0)) * 0.3);
  json_object_put (obj);
  result_clear (&r);

  /* The only pipeline there is for now. */
  g_autofree char *linreg = data_file ("linreg.hlo");
  r = run_cli (linreg, "--steps", "1", "--passes", "none", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_str_has_prefix (r.out, "step 1 loss "));
  result_clear (&r);
}

static void
expect_exit (int status, const char *fragment, const char *first, ...)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a; a = va_arg (ap, const char *))
    g_ptr_array_add (args, (char *) a);
  va_end (ap);
  while (args->len < 10)
    g_ptr_array_add (args, NULL);
  char **a = (char **) args->pdata;
  Result r = run_cli (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], NULL);
  if (r.status != status || strstr (r.err, fragment) == NULL)
    g_error ("run %s %s %s: expected exit %d and '%s' on stderr, got %d:\n%s", a[0], a[1] ? a[1] : "",
             a[2] ? a[2] : "", status, fragment, r.status, r.err);
  g_assert_cmpstr (r.out, ==, "");
  result_clear (&r);
}

static void
test_bad_input (void)
{
  if (!cli_path ())
    return;
  g_autofree char *hlo = data_file ("linreg.hlo");
  g_autofree char *missing = data_file ("missing.hlo");
  g_autofree char *bad_param = data_file ("bad-alias-param.hlo");
  g_autofree char *bad_output = data_file ("bad-alias-output.hlo");
  g_autofree char *bad_shape = data_file ("bad-alias-shape.hlo");
  g_autofree char *custom = data_file ("custom-call.hlo");

  expect_exit (1, "missing.hlo", missing, NULL);
  expect_exit (1, "5", bad_param, NULL);
  expect_exit (1, "7", bad_output, NULL);
  expect_exit (1, "f32[8]", bad_shape, NULL);
  expect_exit (1, "warp-drive", hlo, "--backend", "warp-drive", NULL);
  expect_exit (1, "loss output 5 does not exist", hlo, "--loss", "5", NULL);
  expect_exit (1, "output 9 does not exist", hlo, "--feed", "9=0", NULL);
  expect_exit (1, "MyFancyKernel", custom, NULL);
  expect_exit (1, "no-such-dir", hlo, "--inputs", "no-such-dir", NULL);
}

static void
test_bad_usage (void)
{
  if (!cli_path ())
    return;
  g_autofree char *hlo = data_file ("linreg.hlo");

  expect_exit (2, "FILE", "--steps", "3", NULL);
  expect_exit (2, "more", hlo, hlo, NULL);
  expect_exit (2, "--steps", hlo, "--steps", "0", NULL);
  expect_exit (2, "steps", hlo, "--steps", "many", NULL);
  expect_exit (2, "unknown pass 'fuse'", hlo, "--passes", "fuse", NULL);
  expect_exit (2, "expected OUT=PARAM", hlo, "--feed", "1to0", NULL);
  expect_exit (2, "--frobnicate", hlo, "--frobnicate", NULL);
}

/* The losses of a --json run, as printed. */
static char *
json_losses (const Result *r)
{
  json_object *obj = parse_json (r->out), *v;
  g_assert_true (json_object_object_get_ex (obj, "losses", &v));
  g_assert_true (json_object_is_type (v, json_type_array));
  g_assert_cmpint (json_object_array_length (v), ==, 4);
  char *s = g_strdup (json_object_to_json_string_ext (v, JSON_C_TO_STRING_PLAIN));
  json_object_put (obj);
  return s;
}

static void
test_threads (void)
{
  if (!cli_path ())
    return;
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("fusebox-threads-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *hlo = g_build_filename (dir, "mlp.hlo", NULL);
  const char *gen[] = { g_getenv ("FUSEBOX_CLI"), "gen", "mlp", "--layers", "16,8,4", "--batch", "4",
                        "-o", hlo, NULL };
  int wait = 0;
  g_assert_true (g_spawn_sync (NULL, (char **) gen, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &wait, &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (wait, NULL));

  /* One worker thread or two: the same losses, digit for digit. */
  Result one = run_cli (hlo, "--backend", "cpu", "--steps", "4", "--threads", "1", "--json", NULL);
  Result two = run_cli (hlo, "--backend", "cpu", "--steps", "4", "--threads", "2", "--json", NULL);
  g_assert_cmpint (one.status, ==, 0);
  g_assert_cmpint (two.status, ==, 0);
  g_autofree char *l1 = json_losses (&one);
  g_autofree char *l2 = json_losses (&two);
  g_assert_cmpstr (l1, ==, l2);
  g_assert_null (strstr (l1, "null"));   /* every loss finite */
  result_clear (&one);
  result_clear (&two);

  expect_exit (2, "--threads", hlo, "--backend", "cpu", "--threads", "-1", NULL);
  expect_exit (2, "threads", hlo, "--threads", "two", NULL);
  g_remove (hlo);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/app/cli-run/text-output", test_text_output);
  g_test_add_func ("/app/cli-run/json-output", test_json_output);
  g_test_add_func ("/app/cli-run/inputs-and-outputs", test_inputs_and_outputs);
  g_test_add_func ("/app/cli-run/feed", test_feed);
  g_test_add_func ("/app/cli-run/exit-1", test_bad_input);
  g_test_add_func ("/app/cli-run/exit-2", test_bad_usage);
  g_test_add_func ("/app/cli-run/threads", test_threads);
  return g_test_run ();
}
