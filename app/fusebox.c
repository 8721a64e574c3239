/* SPDX-License-Identifier: MIT
 *
 * fusebox: the GTK 4 workbench. For now a window that loads a module (the
 * bundled zoo MLP when no file is given) and shows its summary; the panels
 * arrive with the UI layer.
 */
#include <gtk/gtk.h>
#include <glib/gi18n.h>
#include <locale.h>

#include "fb-ir.h"
#include "fb-hlo.h"

#define FB_APP_ID "org.fusebox.Fusebox"

static char *
default_model_path (void)
{
  const char *env = g_getenv ("FUSEBOX_SAMPLE");
  if (env)
    return g_strdup (env);
  return g_build_filename (FB_SOURCE_ROOT, "data", "models", "mlp.hlo", NULL);
}

static void
open_window (GtkApplication *app, const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  GtkWidget *window = gtk_application_window_new (app);
  gtk_window_set_title (GTK_WINDOW (window), "Fusebox");
  gtk_window_set_default_size (GTK_WINDOW (window), 1200, 800);

  FbModule *module = fb_hlo_parse_file (path, 0, &error);
  if (module)
    {
      text = g_strdup_printf (_("%s: %d computations, %d instructions"), module->name,
                              module->n_comps, fb_module_instr_count (module));
      fb_module_free (module);
    }
  else
    text = g_strdup (error->message);
  GtkWidget *label = gtk_label_new (text);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gtk_window_set_child (GTK_WINDOW (window), label);
  gtk_window_present (GTK_WINDOW (window));
}

static void
on_activate (GtkApplication *app, gpointer user_data)
{
  g_autofree char *path = default_model_path ();
  open_window (app, path);
}

static void
on_open (GApplication *app, GFile **files, int n_files, const char *hint, gpointer user_data)
{
  for (int i = 0; i < n_files; i++)
    {
      g_autofree char *path = g_file_get_path (files[i]);
      open_window (GTK_APPLICATION (app), path);
    }
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  g_autoptr (GtkApplication) app = gtk_application_new (FB_APP_ID, G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE);
  g_signal_connect (app, "activate", G_CALLBACK (on_activate), NULL);
  g_signal_connect (app, "open", G_CALLBACK (on_open), NULL);
  return g_application_run (G_APPLICATION (app), argc, argv);
}
