/* SPDX-License-Identifier: MIT
 *
 * The model zoo's frame: options, the assembly of a training step around a
 * model's forward computation (parameters, autodiff, optimizer, aliasing,
 * header), and the values a zoo module starts from: initial weights and
 * state, and synthetic batches whose labels come from a fixed random
 * teacher. Everything random derives from the seed in the module header, so
 * the values can be rebuilt from the HLO text alone. See fb-zoo.h for the
 * layout and the init specs.
 */
#include <math.h>
#include <string.h>

#include "fb-autodiff.h"
#include "fb-verify.h"
#include "fb-zoo-private.h"

struct _FbZooOptions {
  int64_t     batch;        /* 0: the model's default */
  guint64     seed;
  FbOptim     optim;
  gboolean    lr_set;
  GHashTable *model;        /* option name -> value */
};

#define DEFAULT_SEED 1

/* ------------------------------------------------------------- options */

const FbZooModelInfo *
fb_zoo_models (int *n_models)
{
  static FbZooModelInfo infos[16];
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      g_assert (_fb_zoo_n_model_defs <= (int) G_N_ELEMENTS (infos));
      for (int i = 0; i < _fb_zoo_n_model_defs; i++)
        infos[i] = _fb_zoo_model_defs[i].info;
      g_once_init_leave (&once, 1);
    }
  if (n_models)
    *n_models = _fb_zoo_n_model_defs;
  return infos;
}

static const FbZooModelDef *
lookup_def (const char *name)
{
  for (int i = 0; i < _fb_zoo_n_model_defs; i++)
    if (strcmp (_fb_zoo_model_defs[i].info.name, name) == 0)
      return &_fb_zoo_model_defs[i];
  return NULL;
}

const FbZooModelInfo *
fb_zoo_lookup (const char *name)
{
  g_return_val_if_fail (name != NULL, NULL);
  int n;
  const FbZooModelInfo *infos = fb_zoo_models (&n);
  for (int i = 0; i < n; i++)
    if (strcmp (infos[i].name, name) == 0)
      return &infos[i];
  return NULL;
}

FbZooOptions *
fb_zoo_options_new (void)
{
  FbZooOptions *o = g_new0 (FbZooOptions, 1);
  o->seed = DEFAULT_SEED;
  fb_optim_init_defaults (&o->optim, FB_OPTIM_SGD);
  o->model = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return o;
}

void
fb_zoo_options_free (FbZooOptions *options)
{
  if (options == NULL)
    return;
  g_hash_table_unref (options->model);
  g_free (options);
}

static gboolean
parse_double (const char *key, const char *value, double *out, GError **error)
{
  char *end = NULL;
  double v = g_ascii_strtod (value, &end);
  if (end == value || *end != '\0' || !isfinite (v))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "--%s: '%s' is not a number", key, value);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

gboolean
fb_zoo_options_set (FbZooOptions *o, const char *key, const char *value, GError **error)
{
  g_return_val_if_fail (o != NULL && key != NULL && value != NULL, FALSE);

  if (strcmp (key, "batch") == 0)
    {
      guint64 v;
      g_autoptr (GError) local = NULL;
      if (!g_ascii_string_to_unsigned (value, 10, 1, 1 << 20, &v, &local))
        {
          g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "--batch: %s", local->message);
          return FALSE;
        }
      o->batch = (int64_t) v;
      return TRUE;
    }
  if (strcmp (key, "seed") == 0)
    {
      g_autoptr (GError) local = NULL;
      if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT64, &o->seed, &local))
        {
          g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "--seed: %s", local->message);
          return FALSE;
        }
      return TRUE;
    }
  if (strcmp (key, "optimizer") == 0)
    {
      FbOptimKind kind;
      if (!fb_optim_kind_parse (value, &kind, error))
        return FALSE;
      o->optim.kind = kind;
      return TRUE;
    }
  struct { const char *key; double *field; } nums[] = {
    { "lr", &o->optim.lr }, { "momentum", &o->optim.momentum }, { "beta1", &o->optim.beta1 },
    { "beta2", &o->optim.beta2 }, { "eps", &o->optim.eps },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (nums); i++)
    if (strcmp (key, nums[i].key) == 0)
      {
        if (!parse_double (key, value, nums[i].field, error))
          return FALSE;
        if (nums[i].field == &o->optim.lr)
          o->lr_set = TRUE;
        return TRUE;
      }
  g_hash_table_replace (o->model, g_strdup (key), g_strdup (value));
  return TRUE;
}

/* ------------------------------------------------ frontend attributes */

/* The value of `key="value"` in frontend_attributes text like
 * `{init="zeros",role="state"}`; newly allocated, NULL when absent. */
static char *
attrs_get (const char *text, const char *key)
{
  if (text == NULL)
    return NULL;
  gsize klen = strlen (key);
  const char *p = text;
  while ((p = strstr (p, key)) != NULL)
    {
      gboolean starts = p == text || p[-1] == '{' || p[-1] == ',' || p[-1] == ' ';
      if (starts && p[klen] == '=' && p[klen + 1] == '"')
        {
          const char *v = p + klen + 2;
          const char *e = strchr (v, '"');
          return e ? g_strndup (v, e - v) : NULL;
        }
      p += klen;
    }
  return NULL;
}

static const char *
param_attrs (FbInstr *param)
{
  const FbAttr *a = fb_instr_get_raw_attr (param, "frontend_attributes");
  return a && a->kind == FB_AV_RAW ? a->v.s : NULL;
}

static const char *
header_attrs (FbModule *module)
{
  for (int i = 0; i < module->n_header_attrs; i++)
    if (strcmp (module->header_attrs[i].key, "frontend_attributes") == 0)
      return module->header_attrs[i].value;
  return NULL;
}

static void
set_param_attrs (FbInstr *param, const char *text)
{
  FbAttr *a = fb_instr_add_attr (param, FB_A_RAW_KEY, "frontend_attributes");
  a->kind = FB_AV_RAW;
  a->v.s = fb_arena_strdup (param->parent->module->arena, text);
}

static void
add_header_attr (FbModule *module, const char *key, const char *value)
{
  FbModuleAttr *attrs = fb_arena_new0 (module->arena, FbModuleAttr, module->n_header_attrs + 1);
  if (module->n_header_attrs > 0)
    memcpy (attrs, module->header_attrs, sizeof (FbModuleAttr) * module->n_header_attrs);
  attrs[module->n_header_attrs].key = fb_arena_strdup (module->arena, key);
  attrs[module->n_header_attrs].value = fb_arena_strdup (module->arena, value);
  module->header_attrs = attrs;
  module->n_header_attrs++;
}

/* ------------------------------------------- building blocks for models */

void
_fb_zoo_usage_error (FbZooCtx *z, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fb_builder_take_error (z->b, g_error_new (FB_ERROR, FB_ERROR_USAGE, "%s %s", z->info->name, msg));
}

static const char *
opt_text (FbZooCtx *z, const char *name)
{
  const char *v = z->options ? g_hash_table_lookup (z->options, name) : NULL;
  if (v)
    return v;
  for (int i = 0; i < z->info->n_options; i++)
    if (strcmp (z->info->options[i].name, name) == 0)
      return z->info->options[i].default_value;
  g_assert_not_reached ();
  return NULL;
}

gboolean
_fb_zoo_opt_int (FbZooCtx *z, const char *name, int64_t min, int64_t *out)
{
  const char *text = opt_text (z, name);
  gint64 v;
  if (!g_ascii_string_to_signed (text, 10, min, 1 << 24, &v, NULL))
    {
      _fb_zoo_usage_error (z, "--%s: '%s' is not a whole number in [%" G_GINT64_FORMAT ", %d]",
                           name, text, min, 1 << 24);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

gboolean
_fb_zoo_opt_list (FbZooCtx *z, const char *name, int min_n, int max_n, int64_t *out, int *n_out)
{
  const char *text = opt_text (z, name);
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  int n = (int) g_strv_length (parts);
  if (n < min_n || n > max_n)
    {
      _fb_zoo_usage_error (z, "--%s: '%s' needs %d to %d comma-separated sizes", name, text, min_n, max_n);
      return FALSE;
    }
  for (int i = 0; i < n; i++)
    {
      gint64 v;
      if (!g_ascii_string_to_signed (g_strstrip (parts[i]), 10, 1, 1 << 24, &v, NULL))
        {
          _fb_zoo_usage_error (z, "--%s: '%s' is not a positive size", name, parts[i]);
          return FALSE;
        }
      out[i] = v;
    }
  *n_out = n;
  return TRUE;
}

gboolean
_fb_zoo_opt_bool (FbZooCtx *z, const char *name, gboolean *out)
{
  const char *text = opt_text (z, name);
  if (g_ascii_strcasecmp (text, "true") == 0 || g_ascii_strcasecmp (text, "yes") == 0 || strcmp (text, "1") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp (text, "false") == 0 || g_ascii_strcasecmp (text, "no") == 0 || strcmp (text, "0") == 0)
    *out = FALSE;
  else
    {
      _fb_zoo_usage_error (z, "--%s: '%s' is not yes or no", name, text);
      return FALSE;
    }
  return TRUE;
}

FbInstr *
_fb_zoo_weight (FbZooCtx *z, const char *name, int rank, const int64_t *dims, const char *init,
                int64_t fan_in, int64_t fan_out, double stddev)
{
  FbInstr *w = fb_b_param (z->b, fb_b_shape (z->b, FB_F32, rank, dims), NULL);
  if (w == NULL)
    return NULL;
  GString *s = g_string_new ("{");
  if (fan_in > 0)
    g_string_append_printf (s, "fan_in=\"%" G_GINT64_FORMAT "\",", fan_in);
  if (fan_out > 0)
    g_string_append_printf (s, "fan_out=\"%" G_GINT64_FORMAT "\",", fan_out);
  g_string_append_printf (s, "init=\"%s\",role=\"weight\"", init);
  if (stddev > 0)
    {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];
      g_string_append_printf (s, ",stddev=\"%s\"", g_ascii_dtostr (buf, sizeof buf, stddev));
    }
  g_string_append_c (s, '}');
  g_ptr_array_add (z->weights, w);
  g_ptr_array_add (z->names, g_strdup_printf ("w.%s", name));
  g_ptr_array_add (z->inits, g_string_free (s, FALSE));
  return w;
}

void
_fb_zoo_inputs (FbZooCtx *z, FbShape *x, FbShape *y, const char *extra)
{
  fb_b_param (z->b, x, NULL);
  fb_b_param (z->b, y, NULL);
  z->data_attrs = g_strdup_printf ("{init=\"data\",role=\"data\"%s%s}", extra ? "," : "", extra ? extra : "");
  z->label_attrs = g_strdup ("{init=\"teacher\",role=\"labels\"}");
}

/* --------------------------------------------------------- assembly */

static gboolean
check_model_options (const FbZooModelInfo *info, GHashTable *given, GError **error)
{
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, given);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      gboolean known = FALSE;
      for (int i = 0; i < info->n_options; i++)
        known |= strcmp (info->options[i].name, key) == 0;
      if (!known)
        {
          g_autoptr (GString) names = g_string_new (NULL);
          for (int i = 0; i < info->n_options; i++)
            g_string_append_printf (names, "%s--%s", i ? ", " : "", info->options[i].name);
          g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "model '%s' has no option --%s (its options: %s)",
                       info->name, (const char *) key, names->len ? names->str : "none");
          return FALSE;
        }
    }
  return TRUE;
}

static void
set_entry_layout (FbModule *module, FbComputation *entry)
{
  module->n_entry_layout_params = entry->n_params;
  module->entry_layout_params = fb_arena_new0 (module->arena, FbShape *, MAX (entry->n_params, 1));
  for (int i = 0; i < entry->n_params; i++)
    module->entry_layout_params[i] = fb_shape_copy (module->arena, entry->params[i]->shape);
  module->entry_layout_result = fb_shape_copy (module->arena, entry->root->shape);
}

static void
set_aliases (FbModule *module, int n)
{
  module->n_aliases = n;
  module->aliases = fb_arena_new0 (module->arena, FbAlias, MAX (n, 1));
  for (int i = 0; i < n; i++)
    {
      FbAlias *a = &module->aliases[i];
      a->output_index.n = 1;
      a->output_index.v = fb_arena_new0 (module->arena, int64_t, 1);
      a->output_index.v[0] = 1 + i;
      a->param_number = i;
      a->param_index.n = 0;
      a->param_index.v = fb_arena_new0 (module->arena, int64_t, 1);
      a->kind = fb_arena_strdup (module->arena, "may-alias");
    }
}

static FbComputation *
build_forward (FbModule *module, const FbZooModelDef *def, FbZooCtx *z, GError **error)
{
  g_autofree char *name = g_strdup_printf ("%s.forward", def->info.name);
  z->b = fb_builder_new (module, name);
  fb_builder_push_scope (z->b, def->info.name);
  FbInstr *loss = def->build (z);
  fb_builder_pop_scope (z->b);
  if (loss)
    fb_builder_set_root (z->b, loss);
  FbComputation *fwd = fb_builder_finish (z->b, error);
  if (fwd == NULL)
    return NULL;
  if (fwd->n_params != 2 + (int) z->weights->len || fb_shape_elements (fwd->root->shape) != 1
      || fwd->root->shape->rank != 0)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "%s: the forward computation must take "
                   "(data, labels, weights...) and return a scalar loss", def->info.name);
      return NULL;
    }
  return fwd;
}

FbModule *
fb_zoo_generate (const char *model, const FbZooOptions *options, GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  g_autoptr (FbZooOptions) defaults = NULL;
  if (options == NULL)
    options = defaults = fb_zoo_options_new ();

  const FbZooModelDef *def = lookup_def (model);
  if (def == NULL)
    {
      g_autoptr (GString) names = g_string_new (NULL);
      for (int i = 0; i < _fb_zoo_n_model_defs; i++)
        g_string_append_printf (names, "%s%s", i ? ", " : "", _fb_zoo_model_defs[i].info.name);
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "unknown model '%s' (known: %s)", model, names->str);
      return NULL;
    }
  if (!check_model_options (&def->info, options->model, error))
    return NULL;

  FbOptim optim = options->optim;
  if (optim.kind == FB_OPTIM_ADAM && !options->lr_set)
    optim.lr = 0.001;
  if (!fb_optim_check (&optim, error))
    return NULL;

  g_autofree char *mname = g_strdup_printf ("zoo_%s", def->info.name);
  g_strdelimit (mname, "-", '_');
  FbModule *module = fb_module_new (mname);

  FbZooCtx z = {
    .info = &def->info,
    .options = options->model,
    .batch = options->batch > 0 ? options->batch : def->info.default_batch,
    .weights = g_ptr_array_new (),
    .names = g_ptr_array_new_with_free_func (g_free),
    .inits = g_ptr_array_new_with_free_func (g_free),
  };
  FbBuilder *b = NULL;
  FbComputation *fwd = build_forward (module, def, &z, error);
  gboolean ok = fwd != NULL;

  int nw = z.weights->len;
  int ns = fb_optim_n_state (&optim, nw);
  if (ok)
    {
      g_autofree char *ename = g_strdup_printf ("%s.train_step", def->info.name);
      b = fb_builder_new (module, ename);
      fb_builder_set_entry (b);
      fb_builder_push_scope (b, def->info.name);

      g_autofree FbInstr **w = g_new0 (FbInstr *, nw + 1);
      g_autofree FbInstr **state = g_new0 (FbInstr *, ns + 1);
      g_autofree FbInstr **grads = g_new0 (FbInstr *, nw + 1);
      g_autofree FbInstr **new_w = g_new0 (FbInstr *, nw + 1);
      g_autofree FbInstr **new_state = g_new0 (FbInstr *, ns + 1);
      g_autofree FbInstr **args = g_new0 (FbInstr *, nw + 2);
      g_autofree FbInstr **outs = g_new0 (FbInstr *, 1 + nw + ns);
      g_autofree int *wrt = g_new0 (int, nw + 1);

      for (int i = 0; i < nw; i++)
        {
          FbInstr *fw = g_ptr_array_index (z.weights, i);
          w[i] = fb_b_param (b, fb_shape_copy (module->arena, fw->shape), g_ptr_array_index (z.names, i));
          if (w[i])
            set_param_attrs (w[i], g_ptr_array_index (z.inits, i));
          args[2 + i] = w[i];
          wrt[i] = 2 + i;
        }
      for (int i = 0; i < ns; i++)
        {
          g_autofree char *sname = NULL;
          FbShape *shape = fb_optim_state_shape (b, &optim, nw, w, i, &sname);
          state[i] = fb_b_param (b, shape, sname);
          if (state[i])
            set_param_attrs (state[i], "{init=\"zeros\",role=\"state\"}");
        }
      args[0] = fb_b_param (b, fb_shape_copy (module->arena, fwd->params[0]->shape), "data.x");
      args[1] = fb_b_param (b, fb_shape_copy (module->arena, fwd->params[1]->shape), "label.y");
      if (args[0] && args[1])
        {
          set_param_attrs (args[0], z.data_attrs);
          set_param_attrs (args[1], z.label_attrs);
        }

      FbInstr *loss = NULL;
      if (fb_builder_ok (b))
        {
          fb_builder_push_scope (b, "grad");
          fb_autodiff_emit (b, fwd, args, -1, nw, wrt, &loss, grads, NULL, NULL);
          fb_builder_pop_scope (b);
        }
      fb_optim_emit (b, &optim, nw, w, grads, state, new_w, new_state);
      fb_builder_pop_scope (b);
      outs[0] = loss;
      for (int i = 0; i < nw; i++)
        outs[1 + i] = new_w[i];
      for (int i = 0; i < ns; i++)
        outs[1 + nw + i] = new_state[i];
      if (fb_builder_ok (b))
        fb_builder_set_root (b, fb_b_tuple (b, 1 + nw + ns, outs));
      ok = fb_builder_finish (b, error) != NULL;
    }

  if (ok)
    {
      fb_module_remove_computation (module, fwd);
      set_aliases (module, nw + ns);
      set_entry_layout (module, module->entry);

      char buf[64];
      g_autoptr (GString) h = g_string_new ("{");
      g_string_append_printf (h, "zoo_batch=\"%" G_GINT64_FORMAT "\",", z.batch);
      g_string_append_printf (h, "zoo_data=\"%s\",", z.data_kind ? z.data_kind : "linear_teacher");
      g_string_append_printf (h, "zoo_lr=\"%s\",", g_ascii_dtostr (buf, sizeof buf, optim.lr));
      g_string_append_printf (h, "zoo_model=\"%s\",", def->info.name);
      g_string_append_printf (h, "zoo_optimizer=\"%s\",", fb_optim_kind_name (optim.kind));
      g_string_append_printf (h, "zoo_seed=\"%" G_GUINT64_FORMAT "\"}", options->seed);
      add_header_attr (module, "frontend_attributes", h->str);
      ok = fb_verify (module, error);
    }

  if (b)
    fb_builder_free (b);
  if (z.b)
    fb_builder_free (z.b);
  g_ptr_array_unref (z.weights);
  g_ptr_array_unref (z.names);
  g_ptr_array_unref (z.inits);
  g_free (z.data_attrs);
  g_free (z.label_attrs);
  if (!ok)
    {
      fb_module_free (module);
      return NULL;
    }
  return module;
}

/* ------------------------------------------------ values: randomness */

/* SplitMix64: a tiny, well-mixed generator whose stream is fully defined by
 * its 64-bit state, so values are the same on every machine. */
typedef struct { guint64 s; } Rng;

static guint64
mix64 (guint64 z)
{
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static guint64
rng_next (Rng *r)
{
  r->s += G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);
  return mix64 (r->s);
}

/* A stream for (seed, what, step): `what` is a parameter number, or one of
 * the teacher tags below. */
#define STREAM_TEACHER (-1)

static Rng
rng_stream (guint64 seed, int64_t what, int64_t step)
{
  Rng r = { mix64 (seed ^ G_GUINT64_CONSTANT (0x5a6f6f5a6f6f5a6f)) };
  r.s = mix64 (r.s ^ mix64 ((guint64) what + G_GUINT64_CONSTANT (0x1234567)));
  r.s = mix64 (r.s ^ mix64 ((guint64) step + G_GUINT64_CONSTANT (0x7654321)));
  return r;
}

static double
rng_uniform (Rng *r)   /* [0, 1) */
{
  return (double) (rng_next (r) >> 11) * (1.0 / 9007199254740992.0);
}

static double
rng_normal (Rng *r)
{
  /* Box-Muller; one value per call keeps the stream simple to reproduce. */
  double u1 = rng_uniform (r), u2 = rng_uniform (r);
  return sqrt (-2.0 * log (1.0 - u1)) * cos (2.0 * G_PI * u2);
}

/* ------------------------------------------------- values: filling */

gboolean
fb_zoo_is_zoo_module (FbModule *module)
{
  g_return_val_if_fail (module != NULL, FALSE);
  g_autofree char *model = attrs_get (header_attrs (module), "zoo_model");
  g_autofree char *seed = attrs_get (header_attrs (module), "zoo_seed");
  return model != NULL && seed != NULL && module->entry != NULL;
}

FbZooRole
fb_zoo_parameter_role (FbModule *module, int param)
{
  g_return_val_if_fail (module != NULL, FB_ZOO_ROLE_NONE);
  if (module->entry == NULL || param < 0 || param >= module->entry->n_params)
    return FB_ZOO_ROLE_NONE;
  g_autofree char *role = attrs_get (param_attrs (module->entry->params[param]), "role");
  if (role == NULL)
    return FB_ZOO_ROLE_NONE;
  if (strcmp (role, "weight") == 0)
    return FB_ZOO_ROLE_WEIGHT;
  if (strcmp (role, "state") == 0)
    return FB_ZOO_ROLE_STATE;
  if (strcmp (role, "data") == 0)
    return FB_ZOO_ROLE_DATA;
  if (strcmp (role, "labels") == 0)
    return FB_ZOO_ROLE_LABELS;
  return FB_ZOO_ROLE_NONE;
}

static gboolean
attr_number (const char *attrs, const char *key, double *out, GError **error)
{
  g_autofree char *text = attrs_get (attrs, key);
  char *end = NULL;
  double v = text ? g_ascii_strtod (text, &end) : 0;
  if (text == NULL || end == text || *end != '\0' || !(v > 0))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "zoo init spec needs a positive %s, got %s",
                   key, text ? text : "none");
      return FALSE;
    }
  *out = v;
  return TRUE;
}

/* The teacher permutation of the vocabulary (Fisher-Yates). */
static int64_t *
teacher_perm (guint64 seed, int64_t vocab)
{
  int64_t *perm = g_new (int64_t, vocab);
  Rng t = rng_stream (seed, STREAM_TEACHER, 0);
  for (int64_t i = 0; i < vocab; i++)
    perm[i] = i;
  for (int64_t i = vocab - 1; i > 0; i--)
    {
      int64_t j = (int64_t) (rng_next (&t) % (guint64) (i + 1));
      int64_t tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
  return perm;
}

/* Data of @step for data parameter @param: N(0, 1) floats, or token
 * sequences following the teacher permutation. */
static gboolean
fill_data (FbModule *module, guint64 seed, int param, int64_t step, FbLiteral *dest, GError **error)
{
  const char *attrs = param_attrs (module->entry->params[param]);
  Rng r = rng_stream (seed, param, step);
  int64_t n = fb_shape_elements (dest->shape);

  if (fb_elem_type_is_float (dest->shape->type))
    {
      for (int64_t i = 0; i < n; i++)
        fb_literal_set_f64 (dest, i, rng_normal (&r));
      return TRUE;
    }

  /* Tokens [batch, seq]: a random start, then the permutation. */
  double vocab_d;
  if (!attr_number (attrs, "vocab", &vocab_d, error))
    return FALSE;
  int64_t vocab = (int64_t) vocab_d;
  if (vocab < 2 || vocab > (1 << 24))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "zoo vocab %g is out of range [2, %d]", vocab_d, 1 << 24);
      return FALSE;
    }
  if (dest->shape->rank != 2)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "zoo token data must be [batch, seq]");
      return FALSE;
    }
  g_autofree int64_t *perm = teacher_perm (seed, vocab);
  int64_t batch = dest->shape->dims[0], seq = dest->shape->dims[1];
  for (int64_t bi = 0; bi < batch; bi++)
    {
      int64_t tok = (int64_t) (rng_next (&r) % (guint64) vocab);
      for (int64_t si = 0; si < seq; si++)
        {
          fb_literal_set_s64 (dest, bi * seq + si, tok);
          tok = perm[tok];
        }
    }
  return TRUE;
}

static int
find_role (FbModule *module, FbZooRole role)
{
  for (int i = 0; i < module->entry->n_params; i++)
    if (fb_zoo_parameter_role (module, i) == role)
      return i;
  return -1;
}

static gboolean
fill_labels (FbModule *module, guint64 seed, int64_t step, FbLiteral *dest, GError **error)
{
  int xp = find_role (module, FB_ZOO_ROLE_DATA);
  if (xp < 0)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "zoo labels need a data parameter");
      return FALSE;
    }
  g_autofree char *kind = attrs_get (header_attrs (module), "zoo_data");
  FbArena *arena = fb_arena_new ();
  FbLiteral *x = fb_literal_new (arena, module->entry->params[xp]->shape);
  gboolean ok = fill_data (module, seed, xp, step, x, error);
  int64_t batch = x->shape->rank > 0 ? x->shape->dims[0] : 1;

  if (ok && kind && strcmp (kind, "permutation_teacher") == 0)
    {
      /* The next token of every position: pi (token). */
      int64_t n = fb_shape_elements (x->shape);
      double vocab_d = 0;
      if (fb_shape_elements (dest->shape) != n || fb_elem_type_is_float (dest->shape->type))
        {
          g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "zoo labels must be tokens shaped like the data");
          ok = FALSE;
        }
      else if ((ok = attr_number (param_attrs (module->entry->params[xp]), "vocab", &vocab_d, error)))
        {
          int64_t vocab = MIN ((int64_t) vocab_d, 1 << 24);
          g_autofree int64_t *perm = teacher_perm (seed, vocab);
          for (int64_t i = 0; i < n; i++)
            {
              int64_t tok = fb_literal_get_s64 (x, i);
              fb_literal_set_s64 (dest, i, tok >= 0 && tok < vocab ? perm[tok] : 0);
            }
        }
    }
  else if (ok)
    {
      /* One-hot argmax of x (flattened per example) times a fixed N(0, 1)
       * teacher matrix. */
      if (dest->shape->rank != 2 || dest->shape->dims[0] != batch)
        {
          g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "zoo labels must be one-hot [batch, classes]");
          ok = FALSE;
        }
      else if (fb_shape_elements (x->shape) / MAX (batch, 1) * dest->shape->dims[1] > (1 << 28))
        {
          g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "zoo labels: the teacher matrix would be too large");
          ok = FALSE;
        }
      else
        {
          int64_t classes = dest->shape->dims[1];
          int64_t features = fb_shape_elements (x->shape) / MAX (batch, 1);
          g_autofree double *teacher = g_new (double, features * classes);
          Rng t = rng_stream (seed, STREAM_TEACHER, 0);
          for (int64_t i = 0; i < features * classes; i++)
            teacher[i] = rng_normal (&t);
          g_autofree double *logits = g_new (double, classes);
          for (int64_t bi = 0; bi < batch; bi++)
            {
              memset (logits, 0, sizeof (double) * classes);
              for (int64_t f = 0; f < features; f++)
                {
                  double xv = fb_literal_get_f64 (x, bi * features + f);
                  for (int64_t c = 0; c < classes; c++)
                    logits[c] += xv * teacher[f * classes + c];
                }
              int64_t best = 0;
              for (int64_t c = 1; c < classes; c++)
                if (logits[c] > logits[best])
                  best = c;
              for (int64_t c = 0; c < classes; c++)
                fb_literal_set_f64 (dest, bi * classes + c, c == best ? 1.0 : 0.0);
            }
        }
    }
  fb_arena_free (arena);
  return ok;
}

gboolean
fb_zoo_fill_parameter (FbModule *module, int param, int64_t step, FbLiteral *dest, GError **error)
{
  g_return_val_if_fail (module != NULL && dest != NULL, FALSE);

  g_autofree char *seed_text = attrs_get (header_attrs (module), "zoo_seed");
  guint64 seed;
  if (seed_text == NULL || module->entry == NULL
      || !g_ascii_string_to_unsigned (seed_text, 10, 0, G_MAXUINT64, &seed, NULL))
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED,
                   "%s: not a zoo module (its header has no frontend_attributes zoo_seed)", module->name);
      return FALSE;
    }
  if (param < 0 || param >= module->entry->n_params)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE, "%s: no parameter %d (the entry has %d)",
                   module->name, param, module->entry->n_params);
      return FALSE;
    }
  FbInstr *p = module->entry->params[param];
  if (!fb_shape_compatible (p->shape, dest->shape) || !fb_shape_is_array (dest->shape))
    {
      g_autofree char *want = fb_shape_to_string (p->shape);
      g_autofree char *got = fb_shape_to_string (dest->shape);
      g_set_error (error, FB_ERROR, FB_ERROR_VERIFY, "%s: parameter %d is %s, the literal %s",
                   module->name, param, want, got);
      return FALSE;
    }
  const char *attrs = param_attrs (p);
  g_autofree char *init = attrs_get (attrs, "init");
  if (init == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "%s: parameter %d (%%%s) has no zoo init spec",
                   module->name, param, p->name);
      return FALSE;
    }

  int64_t n = fb_shape_elements (dest->shape);
  if (strcmp (init, "zeros") == 0 || strcmp (init, "ones") == 0)
    {
      double v = init[0] == 'o' ? 1.0 : 0.0;
      for (int64_t i = 0; i < n; i++)
        fb_literal_set_f64 (dest, i, v);
      return TRUE;
    }
  if (strcmp (init, "he_uniform") == 0 || strcmp (init, "glorot_uniform") == 0)
    {
      double fan_in, fan_out = 0;
      if (!attr_number (attrs, "fan_in", &fan_in, error))
        return FALSE;
      if (init[0] == 'g' && !attr_number (attrs, "fan_out", &fan_out, error))
        return FALSE;
      double a = sqrt (6.0 / (fan_in + fan_out));
      Rng r = rng_stream (seed, param, 0);
      for (int64_t i = 0; i < n; i++)
        fb_literal_set_f64 (dest, i, (2.0 * rng_uniform (&r) - 1.0) * a);
      return TRUE;
    }
  if (strcmp (init, "normal") == 0)
    {
      double stddev;
      if (!attr_number (attrs, "stddev", &stddev, error))
        return FALSE;
      Rng r = rng_stream (seed, param, 0);
      for (int64_t i = 0; i < n; i++)
        fb_literal_set_f64 (dest, i, stddev * rng_normal (&r));
      return TRUE;
    }
  if (strcmp (init, "data") == 0)
    return fill_data (module, seed, param, step, dest, error);
  if (strcmp (init, "teacher") == 0)
    return fill_labels (module, seed, step, dest, error);

  g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED, "%s: parameter %d: unknown zoo init '%s'",
               module->name, param, init);
  return FALSE;
}

gboolean
fb_zoo_init_fn (FbModule *module, int param, FbLiteral *dest, gpointer user_data)
{
  FbZooRole role = fb_zoo_parameter_role (module, param);
  if (role != FB_ZOO_ROLE_WEIGHT && role != FB_ZOO_ROLE_STATE)
    return FALSE;
  return fb_zoo_fill_parameter (module, param, 0, dest, NULL);
}

gboolean
fb_zoo_data_fn (FbModule *module, int param, int step, FbLiteral *dest, gpointer user_data)
{
  FbZooRole role = fb_zoo_parameter_role (module, param);
  if (role != FB_ZOO_ROLE_DATA && role != FB_ZOO_ROLE_LABELS)
    return FALSE;
  return fb_zoo_fill_parameter (module, param, step, dest, NULL);
}
