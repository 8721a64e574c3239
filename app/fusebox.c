/* SPDX-License-Identifier: MIT
 *
 * fusebox: the GTK 4 workbench application. It opens the files given on
 * the command line (or the sample MLP), follows the desktop's dark style,
 * and has a screenshot mode that loads a model, renders the window once
 * offscreen into a PNG and exits:
 *
 *   fusebox --screenshot OUT.png [FILE] [--pass P] [--panel timeline|memory|throughput|decisions]
 *
 * Exit status: 0 on success, 1 when the model or the picture fails, 2 for
 * bad usage.
 */
#include <gtk/gtk.h>
#include <glib/gi18n.h>
#include <locale.h>

#include "fb-window.h"

typedef struct {
  char      *screenshot;   /* --screenshot */
  char      *pass;         /* --pass */
  char      *panel;        /* --panel */
  gboolean   version;
  int        status;       /* exit status decided by the application */
  int        frames;       /* frames drawn while waiting to take the screenshot */
  GDBusProxy *portal;
} FbAppOptions;

static const char *const panels[] = { "timeline", "memory", "throughput", "decisions", "messages", NULL };

/* ----------------------------------------------------------- dark style */

static void
apply_color_scheme (GVariant *value)
{
  /* The portal's color-scheme: 0 no preference, 1 prefer dark, 2 prefer light. */
  if (value && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    g_object_set (gtk_settings_get_default (), "gtk-application-prefer-dark-theme",
                  g_variant_get_uint32 (value) == 1, NULL);
}

static void
on_portal_signal (GDBusProxy *proxy, const char *sender, const char *signal, GVariant *params, gpointer data)
{
  const char *ns, *key;
  g_autoptr (GVariant) value = NULL;

  if (g_strcmp0 (signal, "SettingChanged") != 0)
    return;
  g_variant_get (params, "(&s&sv)", &ns, &key, &value);
  if (g_str_equal (ns, "org.freedesktop.appearance") && g_str_equal (key, "color-scheme"))
    apply_color_scheme (value);
}

static void
on_portal_read (GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr (GVariant) reply = g_dbus_proxy_call_finish (G_DBUS_PROXY (source), res, NULL);
  if (reply == NULL)
    return;   /* no portal or no such setting: keep GTK's own theme */
  g_autoptr (GVariant) outer = NULL;
  g_variant_get (reply, "(v)", &outer);
  g_autoptr (GVariant) inner = g_variant_is_of_type (outer, G_VARIANT_TYPE_VARIANT)
                                 ? g_variant_get_variant (outer) : g_variant_ref (outer);
  apply_color_scheme (inner);
}

static void
on_portal_proxy (GObject *source, GAsyncResult *res, gpointer data)
{
  FbAppOptions *opts = data;
  opts->portal = g_dbus_proxy_new_for_bus_finish (res, NULL);
  if (opts->portal == NULL)
    return;
  g_signal_connect (opts->portal, "g-signal", G_CALLBACK (on_portal_signal), NULL);
  g_dbus_proxy_call (opts->portal, "Read", g_variant_new ("(ss)", "org.freedesktop.appearance", "color-scheme"),
                     G_DBUS_CALL_FLAGS_NONE, 2000, NULL, on_portal_read, NULL);
}

static void
follow_dark_style (FbAppOptions *opts)
{
  /* Only ask the portal when a session bus is known: never start one. */
  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    return;
  g_dbus_proxy_new_for_bus (G_BUS_TYPE_SESSION, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES, NULL,
                            "org.freedesktop.portal.Desktop", "/org/freedesktop/portal/desktop",
                            "org.freedesktop.portal.Settings", NULL, on_portal_proxy, opts);
}

/* ----------------------------------------------------------- screenshot */

static gboolean
screenshot_tick (GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
  FbAppOptions *opts = data;
  /* Wait for a couple of frames so that layout and first paint are done. */
  if (++opts->frames < 3 || !gtk_widget_get_mapped (widget))
    {
      gtk_widget_queue_draw (widget);
      return G_SOURCE_CONTINUE;
    }
  g_autoptr (GError) error = NULL;
  if (!fb_window_save_screenshot (FB_WINDOW (widget), opts->screenshot, &error))
    {
      g_printerr ("fusebox: %s\n", error->message);
      opts->status = 1;
    }
  gtk_window_destroy (GTK_WINDOW (widget));
  return G_SOURCE_REMOVE;
}

/* -------------------------------------------------------------- windows */

static void
open_window (GtkApplication *app, const char *path, FbAppOptions *opts)
{
  FbWindow *window = fb_window_new (app);
  g_autoptr (GError) error = NULL;
  g_autofree char *sample = NULL;

  if (path == NULL)
    path = sample = fb_window_dup_sample_path ();
  if (!fb_window_open_file (window, path, &error))
    {
      g_printerr ("fusebox: %s\n", error->message);
      if (opts->screenshot)
        {
          opts->status = 1;
          gtk_window_destroy (GTK_WINDOW (window));
          return;
        }
    }
  FbDocument *doc = fb_window_get_document (window);
  if (opts->pass && doc)
    {
      int index = fb_document_find_pass (doc, opts->pass);
      if (index < 0)
        {
          g_printerr ("fusebox: ");
          g_printerr (_("unknown pass '%s'; `fusebox-cli passes` lists them"), opts->pass);
          g_printerr ("\n");
          if (opts->screenshot)
            {
              opts->status = 2;
              gtk_window_destroy (GTK_WINDOW (window));
              return;
            }
        }
      else
        fb_document_set_current (doc, index);
    }
  if (opts->panel)
    fb_bottom_pane_show (fb_window_get_bottom_pane (window), opts->panel);
  if (opts->screenshot)
    gtk_widget_add_tick_callback (GTK_WIDGET (window), screenshot_tick, opts, NULL);
  gtk_window_present (GTK_WINDOW (window));
}

static void
on_startup (GApplication *app, FbAppOptions *opts)
{
  follow_dark_style (opts);
}

static void
on_activate (GtkApplication *app, FbAppOptions *opts)
{
  open_window (app, NULL, opts);
}

static void
on_open (GApplication *app, GFile **files, int n_files, const char *hint, FbAppOptions *opts)
{
  int n = opts->screenshot ? MIN (n_files, 1) : n_files;
  for (int i = 0; i < n; i++)
    {
      g_autofree char *path = g_file_get_path (files[i]);
      if (path == NULL)
        {
          g_autofree char *uri = g_file_get_uri (files[i]);
          g_printerr ("fusebox: %s: %s\n", uri, _("not a local file"));
          opts->status = 1;
          continue;
        }
      open_window (GTK_APPLICATION (app), path, opts);
    }
}

static int
on_local_options (GApplication *app, GVariantDict *dict, FbAppOptions *opts)
{
  if (opts->version)
    {
      g_print ("fusebox %s\n", FB_VERSION);
      return 0;
    }
  if (opts->panel && !g_strv_contains (panels, opts->panel))
    {
      g_printerr ("fusebox: %s '%s' (%s)\n", _("unknown panel"), opts->panel,
                  "timeline, memory, throughput, decisions, messages");
      return 2;
    }
  if (opts->screenshot && *opts->screenshot == '\0')
    {
      g_printerr ("fusebox: %s\n", _("--screenshot needs a file name"));
      return 2;
    }
  return -1;
}

int
main (int argc, char **argv)
{
  FbAppOptions opts = { 0 };
  const GOptionEntry entries[] = {
    { "screenshot", 0, 0, G_OPTION_ARG_FILENAME, &opts.screenshot,
      N_("Render the window into a PNG file after loading, then exit"), N_("OUT.png") },
    { "pass", 0, 0, G_OPTION_ARG_STRING, &opts.pass, N_("Show the snapshot after this pass"), N_("PASS") },
    { "panel", 0, 0, G_OPTION_ARG_STRING, &opts.panel,
      N_("Bottom tab to show: timeline, memory, throughput, decisions or messages"), N_("PANEL") },
    { "version", 0, 0, G_OPTION_ARG_NONE, &opts.version, N_("Print the version and exit"), NULL },
    { NULL }
  };

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, FB_LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_application_name (_("Fusebox"));

  g_autoptr (GtkApplication) app = gtk_application_new (FB_APP_ID, G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE);
  g_application_add_main_option_entries (G_APPLICATION (app), entries);
  g_application_set_option_context_parameter_string (G_APPLICATION (app), _("[FILE…]"));
  g_signal_connect (app, "handle-local-options", G_CALLBACK (on_local_options), &opts);
  g_signal_connect (app, "startup", G_CALLBACK (on_startup), &opts);
  g_signal_connect (app, "activate", G_CALLBACK (on_activate), &opts);
  g_signal_connect (app, "open", G_CALLBACK (on_open), &opts);

  int status = g_application_run (G_APPLICATION (app), argc, argv);
  g_clear_object (&opts.portal);
  g_free (opts.screenshot);
  g_free (opts.pass);
  g_free (opts.panel);
  return status != 0 ? status : opts.status;
}
