/* SPDX-License-Identifier: MIT
 *
 * Malformed HLO: every NAME.hlo in data/malformed must fail to parse with
 * the exact first line stored in NAME.expect (`NAME.hlo:LINE:COLUMN: message`),
 * followed by the source line and a caret. One test case per file.
 */
#include "fb-hlo.h"

#include <string.h>

static void
check_one (gconstpointer data)
{
  const char *name = data;
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "data", "malformed", NULL);
  g_autofree char *hlo = g_strconcat (name, ".hlo", NULL);
  g_autofree char *hlo_path = g_build_filename (dir, hlo, NULL);
  g_autofree char *expect_path = g_strconcat (dir, G_DIR_SEPARATOR_S, name, ".expect", NULL);
  g_autofree char *text = NULL, *expect = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (hlo_path, &text, &len, NULL));
  g_assert_true (g_file_get_contents (expect_path, &expect, NULL, NULL));
  g_strchomp (expect);

  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, len, hlo, 0, &error);
  g_assert_null (m);
  g_assert_error (error, FB_ERROR, FB_ERROR_PARSE);

  /* First line exact; then the source line and a caret line. */
  g_auto (GStrv) lines = g_strsplit (error->message, "\n", -1);
  g_assert_cmpstr (lines[0], ==, expect);
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  g_assert_true (g_str_has_suffix (lines[2], "^"));
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static guint n_inputs;

static void
check_count (void)
{
  /* The directory must hold the whole set, not a handful that happened to load. */
  g_assert_cmpuint (n_inputs, >=, 40);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "data", "malformed", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *f;
  while (d && (f = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (f, ".hlo"))
      g_ptr_array_add (names, g_strndup (f, strlen (f) - 4));
  g_ptr_array_sort (names, compare_names);
  n_inputs = names->len;

  g_test_add_func ("/compiler/malformed/count", check_count);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_strconcat ("/compiler/malformed/", (char *) names->pdata[i], NULL);
      g_test_add_data_func (path, names->pdata[i], check_one);
    }
  return g_test_run ();
}
