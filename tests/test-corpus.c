/* SPDX-License-Identifier: MIT
 *
 * The corpus round trip: every module of every *.hlo file in the directory
 * that FUSEBOX_CORPUS names (real dumps from JAX, TensorFlow and
 * PyTorch/XLA) parses, verifies, prints in the long and the short style,
 * parses back to an equal module, and prints again byte for byte the same.
 * One test case per file; skipped with the reason when the variable is unset.
 */
#include <string.h>

#include "fb-hlo.h"
#include "fb-verify.h"

static void
round_trip_style (FbModule *m, FbPrintStyle style, const char *what)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) why = g_string_new (NULL);
  g_autofree char *once = fb_hlo_to_string (m, style);
  FbModule *back = fb_hlo_parse (once, strlen (once), what, 0, &error);
  if (error)
    g_error ("%s: printed %s text does not parse: %s", what, style == FB_PRINT_LONG ? "long" : "short",
             error->message);
  if (!fb_module_equal (m, back, why))
    g_error ("%s: %s style round trip changed the module: %s", what,
             style == FB_PRINT_LONG ? "long" : "short", why->str);
  g_autofree char *twice = fb_hlo_to_string (back, style);
  g_assert_cmpstr (once, ==, twice);
  fb_module_free (back);
}

static void
test_file (gconstpointer data)
{
  const char *path = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;

  g_file_get_contents (path, &text, &len, &error);
  g_assert_no_error (error);
  int n = fb_hlo_count_modules (text, len);
  g_assert_cmpint (n, >=, 1);
  for (int i = 0; i < n; i++)
    {
      g_autofree char *what = g_strdup_printf ("%s (module %d)", path, i);
      FbModule *m = fb_hlo_parse (text, len, path, i, &error);
      if (error)
        g_error ("%s: %s", what, error->message);
      if (!fb_verify (m, &error))
        g_error ("%s: does not verify: %s", what, error->message);
      round_trip_style (m, FB_PRINT_LONG, what);
      round_trip_style (m, FB_PRINT_SHORT, what);
      fb_module_free (m);
    }
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
test_skipped (void)
{
  g_test_skip ("FUSEBOX_CORPUS is not set (point it at the directory of real .hlo modules)");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  const char *dir = g_getenv ("FUSEBOX_CORPUS");
  if (dir == NULL)
    {
      g_test_add_func ("/corpus/roundtrip", test_skipped);
      return g_test_run ();
    }

  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &error);
  if (d == NULL)
    g_error ("FUSEBOX_CORPUS: %s", error->message);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (const char *name; (name = g_dir_read_name (d)) != NULL;)
    if (g_str_has_suffix (name, ".hlo"))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  if (names->len == 0)
    g_error ("FUSEBOX_CORPUS: no .hlo files in %s", dir);

  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      char *path = g_build_filename (dir, name, NULL);
      g_ptr_array_add (paths, path);
      g_autofree char *stem = g_strndup (name, strlen (name) - 4);
      g_autofree char *test = g_strdup_printf ("/corpus/roundtrip/%s", stem);
      g_test_add_data_func (test, path, test_file);
    }
  return g_test_run ();
}
