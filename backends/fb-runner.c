/* SPDX-License-Identifier: MIT
 *
 * The training runner (see fb-runner.h for the rules it follows). The work
 * is split into a plan and a loop. The plan resolves everything that can go
 * wrong before the first step: the feeds (from input_output_alias or the
 * feed mapping) checked against the root and parameter shapes, the loss
 * output, the .npy inputs, and the compiled executable. The loop then only
 * executes, copies the fed outputs into a fresh arena (a backend may hand
 * back an argument literal as part of its result, so state never points
 * into memory that is about to be freed) and refreshes the data parameters.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "fb-npy.h"
#include "fb-runner.h"

#define SYNTH_STDDEV 0.05
#define SYNTH_INT_RANGE 4

/* One output (or part of one) that feeds a parameter (or part of one). */
typedef struct {
  int      n_out;
  int64_t *out;           /* index path into the root's value */
  int      param;
  int      n_pidx;
  int64_t *pidx;          /* index path into the parameter's value */
} Feed;

typedef struct {
  FbModule        *module;
  FbComputation   *entry;
  int              n_params;
  GArray          *feeds;       /* Feed */
  gboolean        *is_state;    /* per parameter */
  FbLiteral      **npy;         /* per parameter, NULL when synthetic */
  FbArena         *keep;        /* lives for the whole run */
  int              loss_output;
} Plan;

static void
plan_clear (Plan *plan)
{
  for (guint i = 0; plan->feeds && i < plan->feeds->len; i++)
    {
      Feed *f = &g_array_index (plan->feeds, Feed, i);
      g_free (f->out);
      g_free (f->pidx);
    }
  g_clear_pointer (&plan->feeds, g_array_unref);
  g_clear_pointer (&plan->is_state, g_free);
  g_clear_pointer (&plan->npy, g_free);
  g_clear_pointer (&plan->keep, fb_arena_free);
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ----------------------------------------------------- shapes and paths */

static char *
shape_str (const FbShape *shape)
{
  GString *s = g_string_new (NULL);
  fb_shape_print (s, shape, FALSE);
  return g_string_free (s, FALSE);
}

/* `{1,0}` */
static char *
path_str (int n, const int64_t *idx)
{
  GString *s = g_string_new ("{");
  for (int i = 0; i < n; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? "," : "", idx[i]);
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

static const FbShape *
shape_at (const FbShape *shape, int n, const int64_t *idx)
{
  for (int i = 0; i < n; i++)
    {
      if (shape == NULL || shape->type != FB_TUPLE || idx[i] < 0 || idx[i] >= shape->n_elems)
        return NULL;
      shape = shape->elems[idx[i]];
    }
  return shape;
}

static FbLiteral *
literal_at (FbLiteral *lit, int n, const int64_t *idx)
{
  for (int i = 0; i < n; i++)
    {
      if (lit == NULL || lit->shape->type != FB_TUPLE || idx[i] < 0 || idx[i] >= lit->n_elems)
        return NULL;
      lit = lit->elems[idx[i]];
    }
  return lit;
}

static int
n_outputs (const FbShape *root)
{
  return root->type == FB_TUPLE ? root->n_elems : 1;
}

/* The path of top-level output @i: {i} for a tuple root, {} otherwise. */
static int
output_path (const FbShape *root, int i, int64_t *path)
{
  if (root->type != FB_TUPLE)
    return 0;
  path[0] = i;
  return 1;
}

/* ------------------------------------------------------------- feeding */

static void
add_feed (Plan *plan, int n_out, const int64_t *out, int param, int n_pidx, const int64_t *pidx)
{
  Feed f = {
    .n_out = n_out, .out = g_memdup2 (out, sizeof (int64_t) * MAX (n_out, 1)),
    .param = param,
    .n_pidx = n_pidx, .pidx = g_memdup2 (pidx, sizeof (int64_t) * MAX (n_pidx, 1)),
  };
  g_array_append_val (plan->feeds, f);
}

/* Parses `OUT=PARAM,...` into feeds of whole outputs into whole parameters. */
static gboolean
parse_feed_spec (Plan *plan, const char *spec, GError **error)
{
  const FbShape *root = plan->entry->root->shape;
  g_autofree char *trimmed = g_strstrip (g_strdup (spec));
  if (*trimmed == '\0')
    return TRUE;   /* no feeding at all */
  g_auto (GStrv) items = g_strsplit (trimmed, ",", -1);
  for (int i = 0; items[i]; i++)
    {
      char *item = g_strstrip (items[i]);
      const char *eq = strchr (item, '=');
      guint64 out, param;
      g_autofree char *lhs = eq ? g_strndup (item, eq - item) : NULL;
      if (eq == NULL
          || !g_ascii_string_to_unsigned (g_strstrip (lhs), 10, 0, G_MAXINT, &out, NULL)
          || !g_ascii_string_to_unsigned (g_strstrip ((char *) eq + 1), 10, 0, G_MAXINT, &param, NULL))
        {
          g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
                       "feed mapping '%s': expected OUT=PARAM with two numbers, e.g. 0=1,2=3", item);
          return FALSE;
        }
      if ((int) out >= n_outputs (root))
        {
          g_autofree char *s = shape_str (root);
          g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                       "feed mapping %d=%d: output %d does not exist (the module has %d output%s: %s)",
                       (int) out, (int) param, (int) out, n_outputs (root),
                       n_outputs (root) == 1 ? "" : "s", s);
          return FALSE;
        }
      int64_t path[1];
      int n = output_path (root, (int) out, path);
      add_feed (plan, n, path, (int) param, 0, NULL);
    }
  return TRUE;
}

/* Checks every feed against the module; @what names their origin in errors. */
static gboolean
check_feeds (Plan *plan, const char *what, GError **error)
{
  const FbShape *root = plan->entry->root->shape;

  for (guint i = 0; i < plan->feeds->len; i++)
    {
      Feed *f = &g_array_index (plan->feeds, Feed, i);
      g_autofree char *op = path_str (f->n_out, f->out);
      g_autofree char *pidx = path_str (f->n_pidx, f->pidx);
      /* " {0}" for an element of a tuple parameter, nothing for all of it. */
      g_autofree char *pp = f->n_pidx ? g_strconcat (" ", pidx, NULL) : g_strdup ("");
      const FbShape *os = shape_at (root, f->n_out, f->out);
      if (os == NULL)
        {
          g_autofree char *s = shape_str (root);
          g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                       "%s: output %s does not exist; the root is %s", what, op, s);
          return FALSE;
        }
      if (f->param < 0 || f->param >= plan->n_params)
        {
          g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                       "%s: output %s feeds parameter %d, but the entry computation has %d parameter%s",
                       what, op, f->param, plan->n_params, plan->n_params == 1 ? "" : "s");
          return FALSE;
        }
      FbInstr *param = plan->entry->params[f->param];
      const FbShape *ps = shape_at (param->shape, f->n_pidx, f->pidx);
      if (ps == NULL)
        {
          g_autofree char *s = shape_str (param->shape);
          g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                       "%s: parameter %d (%%%s) has no element %s; it is %s",
                       what, f->param, param->name, pidx, s);
          return FALSE;
        }
      if (!fb_shape_compatible (os, ps))
        {
          g_autofree char *s1 = shape_str (os);
          g_autofree char *s2 = shape_str (ps);
          g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                       "%s: output %s is %s but parameter %d (%%%s)%s is %s",
                       what, op, s1, f->param, param->name, pp, s2);
          return FALSE;
        }
      /* Two feeds into the same place, or one into a part of another's. */
      for (guint j = 0; j < i; j++)
        {
          Feed *g = &g_array_index (plan->feeds, Feed, j);
          int common = MIN (f->n_pidx, g->n_pidx);
          if (g->param == f->param
              && (common == 0 || memcmp (f->pidx, g->pidx, sizeof (int64_t) * common) == 0))
            {
              g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                           "%s: parameter %d (%%%s) is fed twice", what, f->param, param->name);
              return FALSE;
            }
        }
      plan->is_state[f->param] = TRUE;
    }
  return TRUE;
}

static gboolean
plan_feeds (Plan *plan, const FbRunOptions *options, GError **error)
{
  FbModule *m = plan->module;

  plan->feeds = g_array_new (FALSE, TRUE, sizeof (Feed));
  if (options->feed != NULL)
    {
      if (strcmp (options->feed, "none") != 0 && !parse_feed_spec (plan, options->feed, error))
        return FALSE;
      return check_feeds (plan, "feed mapping", error);
    }
  for (int i = 0; i < m->n_aliases; i++)
    {
      const FbAlias *a = &m->aliases[i];
      add_feed (plan, a->output_index.n, a->output_index.v, (int) CLAMP (a->param_number, -1, G_MAXINT),
                a->param_index.n, a->param_index.v);
    }
  return check_feeds (plan, "input_output_alias", error);
}

/* ----------------------------------------------------------------- loss */

static gboolean
is_scalar_float (const FbShape *s)
{
  return s && s->type != FB_TUPLE && s->rank == 0 && fb_elem_type_is_float (s->type);
}

gboolean
fb_runner_find_loss (FbModule *module, int requested, int *loss_output, GError **error)
{
  g_return_val_if_fail (module != NULL, FALSE);
  g_return_val_if_fail (loss_output != NULL, FALSE);

  *loss_output = -1;
  if (module->entry == NULL || module->entry->root == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "%s: the module has no entry computation",
                   module->source_path ? module->source_path : module->name);
      return FALSE;
    }
  const FbShape *root = module->entry->root->shape;
  int n = n_outputs (root);
  int64_t path[1];

  *loss_output = -1;
  if (requested < 0)
    {
      int k = output_path (root, 0, path);
      if (n > 0 && is_scalar_float (shape_at (root, k, path)))
        *loss_output = 0;
      return TRUE;
    }
  if (requested >= n)
    {
      g_autofree char *s = shape_str (root);
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                   "%s%sloss output %d does not exist (the module has %d output%s: %s)",
                   module->source_path ? module->source_path : "", module->source_path ? ": " : "",
                   requested, n, n == 1 ? "" : "s", s);
      return FALSE;
    }
  int k = output_path (root, requested, path);
  const FbShape *s = shape_at (root, k, path);
  if (!is_scalar_float (s))
    {
      g_autofree char *str = shape_str (s);
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                   "%s%sloss output %d is %s, not a floating-point scalar",
                   module->source_path ? module->source_path : "", module->source_path ? ": " : "",
                   requested, str);
      return FALSE;
    }
  *loss_output = requested;
  return TRUE;
}

/* --------------------------------------------------------------- inputs */

static int
find_param_by_name (Plan *plan, const char *name)
{
  for (int p = 0; p < plan->n_params; p++)
    if (plan->entry->params[p] && g_strcmp0 (plan->entry->params[p]->name, name) == 0)
      return p;
  return -1;
}

/* Which parameter a file stem names: `param.N` or a parameter name; -1 if none. */
static int
param_for_stem (Plan *plan, const char *stem, gboolean *by_number)
{
  guint64 n;
  *by_number = FALSE;
  if (g_str_has_prefix (stem, "param.")
      && g_ascii_string_to_unsigned (stem + 6, 10, 0, G_MAXINT, &n, NULL))
    {
      *by_number = TRUE;
      return (int) n < plan->n_params ? (int) n : -1;
    }
  return find_param_by_name (plan, stem);
}

static gboolean
load_input (Plan *plan, int p, const char *path, GError **error)
{
  FbInstr *param = plan->entry->params[p];
  if (param->shape->type == FB_TUPLE)
    {
      g_autofree char *s = shape_str (param->shape);
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED,
                   "%s: parameter %d (%%%s) is the tuple %s; a .npy file holds one array",
                   path, p, param->name, s);
      return FALSE;
    }
  FbLiteral *lit = fb_npy_load (plan->keep, path, error);
  if (lit == NULL)
    return FALSE;
  if (!fb_shape_compatible (lit->shape, param->shape))
    {
      g_autofree char *want = shape_str (param->shape);
      g_autofree char *got = shape_str (lit->shape);
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                   "%s: parameter %d (%%%s) expects %s but the file holds %s",
                   path, p, param->name, want, got);
      return FALSE;
    }
  lit->shape = param->shape;
  plan->npy[p] = lit;
  return TRUE;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static gboolean
plan_inputs (Plan *plan, const char *dir, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &local);
  if (d == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot open the inputs directory: %s",
                   dir, local->message);
      return FALSE;
    }
  g_autofree char **found = g_new0 (char *, plan->n_params + 1);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *entry;
  while ((entry = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (entry, ".npy"))
      g_ptr_array_add (names, g_strdup (entry));
  /* Sorted, so that errors do not depend on the directory order. */
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      const char *file = names->pdata[i];
      g_autofree char *stem = g_strndup (file, strlen (file) - 4);
      g_autofree char *path = g_build_filename (dir, file, NULL);
      gboolean by_number;
      int p = param_for_stem (plan, stem, &by_number);
      if (p < 0)
        {
          if (by_number)
            g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                         "%s: there is no parameter %s; the entry computation has %d parameter%s",
                         path, stem + 6, plan->n_params, plan->n_params == 1 ? "" : "s");
          else
            g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                         "%s: matches no parameter (expected param.N.npy or a parameter's name, "
                         "e.g. %s.npy)", path,
                         plan->n_params > 0 ? plan->entry->params[0]->name : "p0");
          return FALSE;
        }
      if (found[p] != NULL)
        {
          g_set_error (error, FB_ERROR, FB_ERROR_VERIFY,
                       "%s: parameter %d (%%%s) is also given by %s", path, p,
                       plan->entry->params[p]->name, found[p]);
          return FALSE;
        }
      found[p] = names->pdata[i];
      if (!load_input (plan, p, path, error))
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------ synthetic values */

static guint64
splitmix64 (guint64 *state)
{
  guint64 z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double
uniform01 (guint64 *state)
{
  return ((splitmix64 (state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double
normal (guint64 *state)
{
  double u1 = uniform01 (state), u2 = uniform01 (state);
  return sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2);
}

static void
fill_synthetic (FbLiteral *lit, guint64 *rng)
{
  FbElemType t = lit->shape->type;

  if (t == FB_TUPLE)
    {
      for (int i = 0; i < lit->n_elems; i++)
        fill_synthetic (lit->elems[i], rng);
      return;
    }
  if (!fb_elem_type_is_array (t))
    return;
  int64_t n = fb_shape_elements (lit->shape);
  int bytes = fb_elem_type_bytes (t);
  switch (fb_elem_type_kind (t))
    {
    case FB_KIND_PRED:
      for (int64_t i = 0; i < n; i++)
        lit->data[i] = splitmix64 (rng) >> 63;
      break;
    case FB_KIND_SINT:
    case FB_KIND_UINT:
      for (int64_t i = 0; i < n; i++)
        fb_literal_set_s64 (lit, i, (int64_t) (splitmix64 (rng) % SYNTH_INT_RANGE));
      break;
    case FB_KIND_FLOAT:
      for (int64_t i = 0; i < n; i++)
        fb_float_encode (t, lit->data + i * bytes, normal (rng) * SYNTH_STDDEV);
      break;
    case FB_KIND_COMPLEX:
      for (int64_t i = 0; i < 2 * n; i++)
        {
          double v = normal (rng) * SYNTH_STDDEV;
          if (t == FB_C64)
            {
              float f = (float) v;
              memcpy (lit->data + i * 4, &f, 4);
            }
          else
            memcpy (lit->data + i * 8, &v, 8);
        }
      break;
    default:
      break;
    }
}

/* A stream that depends only on the seed, the parameter and the step. */
static guint64
stream_seed (guint64 seed, int param, int step)
{
  guint64 s = seed ^ 0x6a09e667f3bcc909ull;
  guint64 a = splitmix64 (&s);
  s = a ^ ((guint64) (param + 1) * 0xd1b54a32d192ed03ull);
  guint64 b = splitmix64 (&s);
  s = b ^ ((guint64) step * 0x8cb92ba72f3d8dd7ull);
  return splitmix64 (&s);
}

static FbLiteral *
make_value (Plan *plan, const FbRunOptions *options, FbArena *arena, int p, int step)
{
  if (plan->npy[p])
    return plan->npy[p];
  FbInstr *param = plan->entry->params[p];
  FbLiteral *lit = fb_literal_new (arena, param->shape);
  gboolean filled = FALSE;
  if (step == 0 && options->init)
    filled = options->init (plan->module, p, lit, options->source_data);
  else if (step > 0 && options->data)
    filled = options->data (plan->module, p, step, lit, options->source_data);
  if (!filled)
    {
      guint64 rng = stream_seed (options->seed, p, step);
      fill_synthetic (lit, &rng);
    }
  return lit;
}

/* -------------------------------------------------------------- outputs */

static gboolean
save_output (const char *dir, const char *stem, const FbLiteral *lit, GError **error)
{
  if (lit->shape->type == FB_TUPLE)
    {
      for (int i = 0; i < lit->n_elems; i++)
        {
          g_autofree char *sub = g_strdup_printf ("%s.%d", stem, i);
          if (!save_output (dir, sub, lit->elems[i], error))
            return FALSE;
        }
      return TRUE;
    }
  if (!fb_elem_type_is_array (lit->shape->type))
    return TRUE;   /* tokens carry no data */
  g_autofree char *file = g_strdup_printf ("%s.npy", stem);
  g_autofree char *path = g_build_filename (dir, file, NULL);
  return fb_npy_save (path, lit, error);
}

static gboolean
save_outputs (const char *dir, const FbShape *root, FbLiteral *result, GError **error)
{
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int e = errno;
      g_set_error (error, FB_ERROR, FB_ERROR_IO, "%s: cannot create the directory: %s",
                   dir, g_strerror (e));
      return FALSE;
    }
  for (int i = 0; i < n_outputs (root); i++)
    {
      int64_t path[1];
      int k = output_path (root, i, path);
      FbLiteral *lit = literal_at (result, k, path);
      g_autofree char *stem = g_strdup_printf ("out.%d", i);
      if (lit && !save_output (dir, stem, lit, error))
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------ measured memory */

/* With FbRunOptions.memory set, every array the runner holds (arguments,
 * results, state) is an alloc event when it appears and a free event when
 * the arena holding it is dropped. A value is counted once however many
 * literals share its data (a backend may return an argument as a result). */
typedef struct {
  FbMemoryTimeline *timeline;
  GHashTable       *live;     /* data pointer -> the list (MemArena.blocks) it is counted in */
} MemTrack;

typedef struct {
  GArray *blocks;             /* guint8 *: data pointers counted in this arena */
} MemArena;

static void
mem_count (MemTrack *mt, MemArena *ma, const FbLiteral *lit)
{
  if (mt->timeline == NULL || lit == NULL)
    return;
  if (lit->shape->type == FB_TUPLE)
    {
      for (int i = 0; i < lit->n_elems; i++)
        mem_count (mt, ma, lit->elems[i]);
      return;
    }
  if (lit->data == NULL || g_hash_table_contains (mt->live, lit->data))
    return;
  guint64 size = (guint64) fb_shape_elements (lit->shape) * fb_elem_type_bytes (lit->shape->type);
  fb_memory_timeline_add_event (mt->timeline, FB_MEMORY_ALLOC, fb_trace_now_ns (),
                                (guint64) (guintptr) lit->data, size, -1);
  if (ma->blocks == NULL)
    ma->blocks = g_array_new (FALSE, FALSE, sizeof (guint8 *));
  /* The list, not the MemArena, names the owner: the loop swaps MemArenas
   * by value from one step to the next, and the list moves with them. */
  g_hash_table_insert (mt->live, lit->data, ma->blocks);
  g_array_append_val (ma->blocks, lit->data);
}

/* Frees every value counted in @ma (its arena is about to be dropped). */
static void
mem_release (MemTrack *mt, MemArena *ma)
{
  if (mt->timeline == NULL || ma->blocks == NULL)
    return;
  gint64 now = fb_trace_now_ns ();
  for (guint i = 0; i < ma->blocks->len; i++)
    {
      guint8 *data = g_array_index (ma->blocks, guint8 *, i);
      if (g_hash_table_lookup (mt->live, data) != ma->blocks)
        continue;
      g_hash_table_remove (mt->live, data);
      fb_memory_timeline_add_event (mt->timeline, FB_MEMORY_FREE, now, (guint64) (guintptr) data, 0, -1);
    }
  g_array_set_size (ma->blocks, 0);
}

static void
mem_clear (MemTrack *mt, MemArena *ma)
{
  mem_release (mt, ma);
  g_clear_pointer (&ma->blocks, g_array_unref);
}

/* ----------------------------------------------------------------- run */

void
fb_run_options_init (FbRunOptions *options)
{
  g_return_if_fail (options != NULL);
  memset (options, 0, sizeof *options);
  options->backend = "interp";
  options->steps = 10;
  options->loss_output = -1;
}

void
fb_run_result_clear (FbRunResult *result)
{
  if (result == NULL)
    return;
  g_free (result->backend);
  g_free (result->losses);
  g_free (result->step_s);
  memset (result, 0, sizeof *result);
  result->loss_output = -1;
}

/* Does a leaf of @lit hold the data of a leaf of @other? */
static gboolean
shares_data (const FbLiteral *lit, const FbLiteral *other)
{
  if (lit == NULL || other == NULL)
    return FALSE;
  if (other->elems != NULL)
    {
      for (int i = 0; i < other->n_elems; i++)
        if (shares_data (lit, other->elems[i]))
          return TRUE;
      return FALSE;
    }
  if (lit->elems != NULL)
    {
      for (int i = 0; i < lit->n_elems; i++)
        if (shares_data (lit->elems[i], other))
          return TRUE;
      return FALSE;
    }
  return lit->data != NULL && lit->data == other->data;
}

/* New state after a step: every fed parameter takes its output; partly fed
 * (tuple) parameters keep their other elements. An output takes the
 * parameter's place without a copy: its data lives in the step's arena,
 * which the caller keeps until the next step has run. Only an output that
 * shares data with an argument (a backend may return a parameter as it
 * came) is copied into @arena, since the arguments' memory goes first. */
static gboolean
feed_back (Plan *plan, FbArena *arena, FbLiteral *result, FbLiteral **args, GError **error)
{
  g_autofree FbLiteral **next = g_new0 (FbLiteral *, MAX (plan->n_params, 1));

  for (guint i = 0; i < plan->feeds->len; i++)
    {
      Feed *f = &g_array_index (plan->feeds, Feed, i);
      FbLiteral *src = literal_at (result, f->n_out, f->out);
      FbShape *dest = (FbShape *) shape_at (plan->entry->params[f->param]->shape, f->n_pidx, f->pidx);
      if (src == NULL || !fb_shape_compatible (src->shape, dest))
        {
          g_autofree char *op = path_str (f->n_out, f->out);
          g_set_error (error, FB_ERROR, FB_ERROR_RUNTIME,
                       "the backend returned no output %s of the module's shape", op);
          return FALSE;
        }
      gboolean shared = FALSE;
      for (int p = 0; p < plan->n_params && !shared; p++)
        shared = shares_data (src, args[p]);
      FbLiteral *copy;
      if (shared)
        copy = fb_literal_copy (arena, src);
      else
        {
          copy = fb_arena_new0 (arena, FbLiteral, 1);
          *copy = *src;
        }
      copy->shape = dest;
      if (f->n_pidx == 0)
        {
          next[f->param] = copy;
          continue;
        }
      if (next[f->param] == NULL)
        next[f->param] = fb_literal_copy (arena, args[f->param]);
      FbLiteral *parent = literal_at (next[f->param], f->n_pidx - 1, f->pidx);
      parent->elems[f->pidx[f->n_pidx - 1]] = copy;
    }
  for (int p = 0; p < plan->n_params; p++)
    if (next[p])
      args[p] = next[p];
  return TRUE;
}

static gboolean
run_steps (Plan *plan, const FbRunOptions *options, const FbBackend *backend, FbExecutable *exe,
           FbRunResult *res, GError **error)
{
  int n = plan->n_params;
  g_autofree FbLiteral **args = g_new0 (FbLiteral *, MAX (n, 1));
  FbArena *state = fb_arena_new ();
  gboolean ok = TRUE;
  MemTrack mt = { options->memory, options->memory ? g_hash_table_new (NULL, NULL) : NULL };
  MemArena keep_mem = { 0 }, state_mem = { 0 }, next_mem = { 0 }, step_mem = { 0 }, held_mem = { 0 };
  FbArena *held = NULL;   /* the previous step's arena: the state's data lives there */

  for (int p = 0; p < n; p++)
    if (plan->npy[p])
      mem_count (&mt, &keep_mem, plan->npy[p]);
  for (int p = 0; p < n; p++)
    if (plan->is_state[p])
      {
        args[p] = make_value (plan, options, state, p, 0);
        mem_count (&mt, &state_mem, args[p]);
      }

  for (int step = 1; step <= options->steps && ok; step++)
    {
      /* Cancelling stops between steps: the steps already run are kept. */
      if (g_cancellable_set_error_if_cancelled (options->cancellable, error))
        {
          ok = FALSE;
          break;
        }
      FbArena *arena = fb_arena_new ();
      for (int p = 0; p < n; p++)
        if (!plan->is_state[p])
          {
            args[p] = make_value (plan, options, arena, p, step);
            mem_count (&mt, &step_mem, args[p]);
          }

      FbRecorderScope scope;
      if (options->recorder)
        fb_recorder_begin_step (options->recorder, &scope, step);
      double t0 = now_s ();
      FbLiteral *result = backend->execute (exe, arena, n, args, error);
      mem_count (&mt, &step_mem, result);
      FbArena *next_state = fb_arena_new ();
      ok = result != NULL && feed_back (plan, next_state, result, args, error);
      double dt = now_s () - t0;
      if (options->recorder)
        fb_recorder_end (options->recorder, &scope);
      if (ok)
        for (int p = 0; p < n; p++)
          if (plan->is_state[p])
            mem_count (&mt, &next_mem, args[p]);

      if (ok)
        {
          double loss = NAN;
          if (plan->loss_output >= 0)
            {
              int64_t path[1];
              int k = output_path (plan->entry->root->shape, plan->loss_output, path);
              FbLiteral *l = literal_at (result, k, path);
              if (l != NULL && l->data != NULL)
                loss = fb_literal_get_f64 (l, 0);
            }
          res->losses[step - 1] = loss;
          res->step_s[step - 1] = dt;
          res->run_s += dt;
          res->steps = step;
          if (step == options->steps && options->save_outputs_dir)
            ok = save_outputs (options->save_outputs_dir, plan->entry->root->shape, result, error);
          if (ok && options->on_step)
            options->on_step (step, loss, options->on_step_data);
        }
      fb_arena_free (state);
      state = next_state;
      mem_release (&mt, &state_mem);
      MemArena swap = state_mem;
      state_mem = next_mem;
      next_mem = swap;
      /* This step's arena holds the new state: keep it one step longer. */
      g_clear_pointer (&held, fb_arena_free);
      mem_release (&mt, &held_mem);
      held = arena;
      MemArena swap_step = held_mem;
      held_mem = step_mem;
      step_mem = swap_step;
    }
  fb_arena_free (state);
  g_clear_pointer (&held, fb_arena_free);
  mem_clear (&mt, &held_mem);
  mem_clear (&mt, &state_mem);
  mem_clear (&mt, &next_mem);
  mem_clear (&mt, &step_mem);
  mem_clear (&mt, &keep_mem);
  g_clear_pointer (&mt.live, g_hash_table_unref);
  return ok;
}

gboolean
fb_runner_run (FbModule *module, const FbRunOptions *options, FbRunResult *out, GError **error)
{
  g_return_val_if_fail (module != NULL, FALSE);
  g_return_val_if_fail (options != NULL, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  memset (out, 0, sizeof *out);
  out->loss_output = -1;
  if (options->steps < 1)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "the number of steps must be at least 1, not %d",
                   options->steps);
      return FALSE;
    }
  if (module->entry == NULL || module->entry->root == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "%s: the module has no entry computation",
                   module->source_path ? module->source_path : module->name);
      return FALSE;
    }

  Plan plan = { .module = module, .entry = module->entry, .n_params = module->entry->n_params };
  plan.is_state = g_new0 (gboolean, MAX (plan.n_params, 1));
  plan.npy = g_new0 (FbLiteral *, MAX (plan.n_params, 1));
  plan.keep = fb_arena_new ();
  for (int p = 0; p < plan.n_params; p++)
    if (plan.entry->params[p] == NULL)
      {
        g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "the entry computation has no parameter %d", p);
        plan_clear (&plan);
        return FALSE;
      }

  if (!plan_feeds (&plan, options, error))
    {
      /* Aliases, feeds and the loss are facts about the module: name it. */
      if (error && *error && (*error)->code != FB_ERROR_USAGE && module->source_path)
        g_prefix_error (error, "%s: ", module->source_path);
      plan_clear (&plan);
      return FALSE;
    }
  if (!fb_runner_find_loss (module, options->loss_output, &plan.loss_output, error))
    {
      plan_clear (&plan);
      return FALSE;
    }
  if (options->inputs_dir && !plan_inputs (&plan, options->inputs_dir, error))
    {
      plan_clear (&plan);
      return FALSE;
    }

  const char *name = options->backend ? options->backend : "interp";
  const FbBackend *backend = fb_backend_lookup (name, error);
  if (backend == NULL || (backend->available && !backend->available (error)))
    {
      plan_clear (&plan);
      return FALSE;
    }

  FbBackendOptions bopts = { .custom_calls = options->custom_calls, .recorder = options->recorder,
                            .threads = options->threads };
  double t0 = now_s ();
  FbExecutable *exe = backend->compile (module, &bopts, error);
  double compile_s = now_s () - t0;
  if (exe == NULL)
    {
      plan_clear (&plan);
      return FALSE;
    }

  FbRunResult res = { 0 };
  res.backend = g_strdup (backend->name);
  res.compile_s = compile_s;
  res.loss_output = plan.loss_output;
  res.losses = g_new (double, options->steps);
  res.step_s = g_new0 (double, options->steps);
  for (int i = 0; i < options->steps; i++)
    res.losses[i] = NAN;
  for (int p = 0; p < plan.n_params; p++)
    {
      if (plan.is_state[p])
        res.n_state++;
      else
        res.n_data++;
    }

  GError *local = NULL;
  gboolean ok = run_steps (&plan, options, backend, exe, &res, &local);
  backend->free (exe);
  plan_clear (&plan);
  if (!ok && g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      res.steps_per_s = res.steps / MAX (res.run_s, 1e-9);
      *out = res;
      g_propagate_error (error, local);
      return FALSE;
    }
  if (!ok)
    {
      g_propagate_error (error, local);
      fb_run_result_clear (&res);
      return FALSE;
    }
  res.steps_per_s = res.steps / MAX (res.run_s, 1e-9);
  *out = res;
  return TRUE;
}
