/* SPDX-License-Identifier: MIT
 *
 * The code view. The kernel of a selection is the entry instruction itself,
 * or for an instruction inside a fused computation the fusion that calls
 * it. Generating its code compiles it with LLVM, which takes long enough to
 * freeze the window, so it runs in a GTask on a clone of the snapshot's
 * module; both the LLVM IR and the assembly are made at once and cached
 * under "snapshot index:kernel name". The cache is dropped whenever the
 * pipeline reruns, since the snapshots it was keyed by are gone.
 */
#include "fb-code-view.h"

#include <glib/gi18n.h>

#include "fb-cpu-codegen.h"
#include "fb-hlo.h"

typedef struct {
  char *llvm;
  char *asm_text;
  char *error;
} CodeEntry;

struct _FbCodeView
{
  GtkWidget     parent_instance;

  /* children */
  GtkWidget    *box;
  GtkWidget    *selector;     /* GtkDropDown */
  GtkWidget    *status;
  GtkWidget    *text;         /* GtkTextView */

  /* borrowed */
  FbDocument   *doc;
  gulong        changed_id, current_id, selected_id;

  /* owned */
  GHashTable   *cache;        /* key -> CodeEntry */
  GHashTable   *pending;      /* keys being generated */
  char         *key;          /* of the kernel shown; NULL when none */
  guint         generation;   /* bumped when the cache is dropped */
  GCancellable *cancellable;
  gboolean      active;
  gboolean      disposed;
};

G_DEFINE_FINAL_TYPE (FbCodeView, fb_code_view, GTK_TYPE_WIDGET)

enum { LOADED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
code_entry_free (CodeEntry *e)
{
  g_free (e->llvm);
  g_free (e->asm_text);
  g_free (e->error);
  g_free (e);
}

/* ---------------------------------------------------------- the kernel */

/* The entry instruction that runs @instr: itself, or the fusion whose
 * computation holds it. NULL when it runs inside something else. */
static FbInstr *
kernel_of (FbModule *module, FbInstr *instr)
{
  if (instr->parent == module->entry)
    return instr;
  if (!instr->parent->is_fusion)
    return NULL;
  for (FbInstr *in = module->entry->first; in; in = in->next)
    {
      if (in->opcode != FB_OP_FUSION)
        continue;
      FbComputation *called[4];
      int n = fb_instr_called (in, called, G_N_ELEMENTS (called));
      for (int c = 0; c < n && c < (int) G_N_ELEMENTS (called); c++)
        if (called[c] == instr->parent)
          return in;
    }
  return NULL;
}

/* Why the CPU backend generates no loop kernel for @kernel. */
static char *
no_code_reason (FbInstr *kernel)
{
  g_autoptr (GString) why = g_string_new (NULL);
  if (fb_cpu_can_generate_why (kernel, why))
    return NULL;
  switch (kernel->opcode)
    {
    case FB_OP_PARAMETER:
    case FB_OP_TUPLE:
    case FB_OP_GET_TUPLE_ELEMENT:
    case FB_OP_BITCAST:
      return g_strdup_printf (_("%%%s has no generated code: it only names a buffer."), kernel->name);
    case FB_OP_DOT:
    case FB_OP_CONVOLUTION:
      return g_strdup_printf (_("%%%s has no generated code: the CPU backend runs it through BLAS."),
                              kernel->name);
    default:
      break;
    }
  if (why->len == 0)
    return g_strdup_printf (_("%%%s has no generated code: the CPU backend runs it with a library routine."),
                            kernel->name);
  return g_strdup_printf (_("%%%s has no generated code: %s."), kernel->name, why->str);
}

static void
print_hlo (GString *out, FbInstr *kernel)
{
  fb_hlo_print_instr (out, kernel, FB_PRINT_LONG);
  FbComputation *called[8];
  int n = fb_instr_called (kernel, called, G_N_ELEMENTS (called));
  for (int c = 0; c < n && c < (int) G_N_ELEMENTS (called); c++)
    {
      g_string_append_printf (out, "\n\n%s {\n", called[c]->name);
      for (FbInstr *in = called[c]->first; in; in = in->next)
        {
          g_string_append (out, in == called[c]->root ? "  ROOT " : "  ");
          fb_hlo_print_instr (out, in, FB_PRINT_SHORT);
          g_string_append_c (out, '\n');
        }
      g_string_append (out, "}");
    }
}

/* ---------------------------------------------------------- generating */

typedef struct {
  FbModule *module;
  char     *kernel;
  char     *key;
  guint     generation;
} Job;

static void
job_free (Job *job)
{
  fb_module_free (job->module);
  g_free (job->kernel);
  g_free (job->key);
  g_free (job);
}

static void
generate (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Job *job = task_data;
  CodeEntry *e = g_new0 (CodeEntry, 1);
  g_autoptr (GString) llvm = g_string_new (NULL);
  g_autoptr (GString) asm_text = g_string_new (NULL);
  g_autoptr (GError) error = NULL;

  if (fb_cpu_emit_report (job->module, "llvm", job->kernel, llvm, &error)
      && fb_cpu_emit_report (job->module, "asm", job->kernel, asm_text, &error))
    {
      e->llvm = g_string_free (g_steal_pointer (&llvm), FALSE);
      e->asm_text = g_string_free (g_steal_pointer (&asm_text), FALSE);
    }
  else
    e->error = g_strdup (error->message);
  g_task_return_pointer (task, e, (GDestroyNotify) code_entry_free);
}

static void update (FbCodeView *self);

static void
on_generated (GObject *source, GAsyncResult *res, gpointer user_data)
{
  FbCodeView *self = FB_CODE_VIEW (source);
  Job *job = g_task_get_task_data (G_TASK (res));
  CodeEntry *e = g_task_propagate_pointer (G_TASK (res), NULL);

  if (self->disposed || e == NULL || job->generation != self->generation)
    {
      if (e)
        code_entry_free (e);
      return;
    }
  g_hash_table_remove (self->pending, job->key);
  g_hash_table_insert (self->cache, g_strdup (job->key), e);
  if (g_strcmp0 (job->key, self->key) == 0)
    {
      update (self);
      g_signal_emit (self, signals[LOADED], 0);
    }
}

static void
start_job (FbCodeView *self, FbModule *module, FbInstr *kernel)
{
  Job *job = g_new0 (Job, 1);
  job->module = fb_module_clone (module);
  job->kernel = g_strdup (kernel->name);
  job->key = g_strdup (self->key);
  job->generation = self->generation;
  g_hash_table_add (self->pending, g_strdup (self->key));

  g_autoptr (GTask) task = g_task_new (self, self->cancellable, on_generated, NULL);
  g_task_set_source_tag (task, start_job);
  g_task_set_task_data (task, job, (GDestroyNotify) job_free);
  g_task_run_in_thread (task, generate);
}

/* ------------------------------------------------------------- showing */

static void
show (FbCodeView *self, const char *status, const char *text)
{
  gtk_label_set_text (GTK_LABEL (self->status), status ? status : "");
  gtk_widget_set_visible (self->status, status && *status);
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->text)), text ? text : "", -1);
}

static void
update (FbCodeView *self)
{
  FbSnapshot *snap = self->doc ? fb_document_get_current_snapshot (self->doc) : NULL;
  FbInstr *instr = snap ? fb_document_find_instr (snap->module, fb_document_get_selected (self->doc)) : NULL;

  g_clear_pointer (&self->key, g_free);
  if (instr == NULL)
    {
      show (self, _("Select a fusion or an instruction to see its code."), NULL);
      return;
    }
  FbInstr *kernel = kernel_of (snap->module, instr);
  if (kernel == NULL)
    {
      g_autofree char *msg = g_strdup_printf (_("%%%s runs inside %s, not as a kernel of its own."),
                                              instr->name, instr->parent->name);
      show (self, msg, NULL);
      return;
    }

  FbCodeKind kind = fb_code_view_get_kind (self);
  if (kind == FB_CODE_HLO)
    {
      g_autoptr (GString) hlo = g_string_new (NULL);
      print_hlo (hlo, kernel);
      g_autofree char *msg = kernel != instr ? g_strdup_printf (_("Kernel %%%s"), kernel->name) : NULL;
      show (self, msg, hlo->str);
      return;
    }
  g_autofree char *reason = no_code_reason (kernel);
  if (reason)
    {
      show (self, reason, NULL);
      return;
    }

  self->key = g_strdup_printf ("%d:%s", fb_document_get_current (self->doc), kernel->name);
  CodeEntry *e = g_hash_table_lookup (self->cache, self->key);
  if (e && e->error)
    {
      g_autofree char *msg = g_strdup_printf (_("Could not generate the code of %%%s: %s"), kernel->name, e->error);
      show (self, msg, NULL);
    }
  else if (e)
    show (self, NULL, kind == FB_CODE_LLVM ? e->llvm : e->asm_text);
  else if (!self->active)
    show (self, _("Open the code view to generate the code."), NULL);
  else
    {
      g_autofree char *msg = g_strdup_printf (_("Generating the code of %%%s…"), kernel->name);
      show (self, msg, NULL);
      if (!g_hash_table_contains (self->pending, self->key))
        start_job (self, snap->module, kernel);
    }
}

static void
on_changed (FbCodeView *self)
{
  /* New snapshots: cached code and jobs in flight belong to the old ones. */
  g_hash_table_remove_all (self->cache);
  g_hash_table_remove_all (self->pending);
  self->generation++;
  update (self);
}

void
fb_code_view_set_document (FbCodeView *self, FbDocument *doc)
{
  g_return_if_fail (FB_IS_CODE_VIEW (self));
  if (self->disposed)
    return;
  if (self->doc)
    {
      g_clear_signal_handler (&self->changed_id, self->doc);
      g_clear_signal_handler (&self->current_id, self->doc);
      g_clear_signal_handler (&self->selected_id, self->doc);
      g_clear_object (&self->doc);
    }
  if (doc)
    {
      self->doc = g_object_ref (doc);
      self->changed_id = g_signal_connect_swapped (doc, "changed", G_CALLBACK (on_changed), self);
      self->current_id = g_signal_connect_swapped (doc, "notify::current", G_CALLBACK (update), self);
      self->selected_id = g_signal_connect_swapped (doc, "notify::selected", G_CALLBACK (update), self);
    }
  on_changed (self);
}

void
fb_code_view_set_active (FbCodeView *self, gboolean active)
{
  g_return_if_fail (FB_IS_CODE_VIEW (self));
  if (self->active == !!active)
    return;
  self->active = !!active;
  update (self);
}

void
fb_code_view_set_kind (FbCodeView *self, FbCodeKind kind)
{
  g_return_if_fail (FB_IS_CODE_VIEW (self));
  g_return_if_fail (kind <= FB_CODE_ASM);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (self->selector), kind);
}

FbCodeKind
fb_code_view_get_kind (FbCodeView *self)
{
  g_return_val_if_fail (FB_IS_CODE_VIEW (self), FB_CODE_HLO);
  guint k = gtk_drop_down_get_selected (GTK_DROP_DOWN (self->selector));
  return k <= FB_CODE_ASM ? (FbCodeKind) k : FB_CODE_HLO;
}

gboolean
fb_code_view_is_loading (FbCodeView *self)
{
  g_return_val_if_fail (FB_IS_CODE_VIEW (self), FALSE);
  return self->key != NULL && g_hash_table_contains (self->pending, self->key);
}

char *
fb_code_view_dup_text (FbCodeView *self)
{
  g_return_val_if_fail (FB_IS_CODE_VIEW (self), NULL);
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (GTK_TEXT_VIEW (self->text));
  GtkTextIter a, b;
  gtk_text_buffer_get_bounds (buffer, &a, &b);
  return gtk_text_buffer_get_text (buffer, &a, &b, FALSE);
}

const char *
fb_code_view_get_status (FbCodeView *self)
{
  g_return_val_if_fail (FB_IS_CODE_VIEW (self), NULL);
  return gtk_label_get_text (GTK_LABEL (self->status));
}

/* ----------------------------------------------------------- life cycle */

static void
fb_code_view_dispose (GObject *object)
{
  FbCodeView *self = FB_CODE_VIEW (object);

  /* A job in flight keeps us alive until it ends; its result is dropped. */
  self->disposed = TRUE;
  g_cancellable_cancel (self->cancellable);
  if (self->doc)
    {
      g_clear_signal_handler (&self->changed_id, self->doc);
      g_clear_signal_handler (&self->current_id, self->doc);
      g_clear_signal_handler (&self->selected_id, self->doc);
      g_clear_object (&self->doc);
    }
  g_clear_pointer (&self->box, gtk_widget_unparent);
  G_OBJECT_CLASS (fb_code_view_parent_class)->dispose (object);
}

static void
fb_code_view_finalize (GObject *object)
{
  FbCodeView *self = FB_CODE_VIEW (object);

  g_clear_pointer (&self->cache, g_hash_table_unref);
  g_clear_pointer (&self->pending, g_hash_table_unref);
  g_clear_pointer (&self->key, g_free);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (fb_code_view_parent_class)->finalize (object);
}

static void
fb_code_view_class_init (FbCodeViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = fb_code_view_dispose;
  object_class->finalize = fb_code_view_finalize;
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);

  /* The generated code of the shown kernel arrived (or failed). */
  signals[LOADED] = g_signal_new ("loaded", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
fb_code_view_init (FbCodeView *self)
{
  const char *kinds[] = { _("HLO"), _("LLVM IR"), _("Assembly"), NULL };

  self->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) code_entry_free);
  self->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->cancellable = g_cancellable_new ();

  self->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  gtk_widget_set_parent (self->box, GTK_WIDGET (self));

  self->selector = gtk_drop_down_new_from_strings (kinds);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (self->selector), FB_CODE_LLVM);
  gtk_widget_set_halign (self->selector, GTK_ALIGN_START);
  gtk_widget_set_tooltip_text (self->selector, _("What to show of the kernel"));
  g_signal_connect_swapped (self->selector, "notify::selected", G_CALLBACK (update), self);
  gtk_box_append (GTK_BOX (self->box), self->selector);

  self->status = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->status), 0);
  gtk_label_set_wrap (GTK_LABEL (self->status), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (self->status), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_selectable (GTK_LABEL (self->status), TRUE);
  gtk_widget_add_css_class (self->status, "dim-label");
  gtk_box_append (GTK_BOX (self->box), self->status);

  self->text = gtk_text_view_new ();
  gtk_text_view_set_editable (GTK_TEXT_VIEW (self->text), FALSE);
  gtk_text_view_set_monospace (GTK_TEXT_VIEW (self->text), TRUE);
  gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (self->text), GTK_WRAP_NONE);
  GtkWidget *scroller = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroller), self->text);
  gtk_scrolled_window_set_min_content_height (GTK_SCROLLED_WINDOW (scroller), 240);
  gtk_scrolled_window_set_max_content_height (GTK_SCROLLED_WINDOW (scroller), 480);
  gtk_scrolled_window_set_propagate_natural_height (GTK_SCROLLED_WINDOW (scroller), TRUE);
  gtk_box_append (GTK_BOX (self->box), scroller);
  update (self);
}

GtkWidget *
fb_code_view_new (void)
{
  return g_object_new (FB_TYPE_CODE_VIEW, NULL);
}
