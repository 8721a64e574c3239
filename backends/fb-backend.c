/* SPDX-License-Identifier: MIT
 *
 * The backend registry and the custom-call map. A custom-call target is a
 * name in an XLA dump ("Sharding", "TopK", ...); Fusebox never resolves it
 * as a symbol. Instead this map says which known implementation stands for
 * it: a few targets are mapped out of the box, and the user adds more with
 * `--custom-call TARGET=IMPL`.
 */
#include "fb-backend.h"
#include "fb-interp.h"

#include <string.h>

struct _FbCustomCallMap {
  GHashTable *targets;   /* target name (owned) -> FbCustomCallImpl + 1 */
};

static const char *const impl_names[FB_CC_N_IMPLS] = {
  [FB_CC_IDENTITY] = "identity",
  [FB_CC_TOPK] = "topk",
};

const char *
fb_custom_call_impl_name (FbCustomCallImpl impl)
{
  g_return_val_if_fail (impl < FB_CC_N_IMPLS, NULL);
  return impl_names[impl];
}

static char *
known_impls (void)
{
  GString *s = g_string_new (NULL);
  for (int i = 0; i < FB_CC_N_IMPLS; i++)
    g_string_append_printf (s, "%s%s", i ? ", " : "", impl_names[i]);
  return g_string_free (s, FALSE);
}

static void
map_set (FbCustomCallMap *map, const char *target, FbCustomCallImpl impl)
{
  g_hash_table_replace (map->targets, g_strdup (target), GINT_TO_POINTER ((int) impl + 1));
}

FbCustomCallMap *
fb_custom_call_map_new (void)
{
  FbCustomCallMap *map = g_new0 (FbCustomCallMap, 1);
  map->targets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  map_set (map, "Sharding", FB_CC_IDENTITY);
  map_set (map, "SPMDFullToShardShape", FB_CC_IDENTITY);
  map_set (map, "SPMDShardToFullShape", FB_CC_IDENTITY);
  map_set (map, "TopK", FB_CC_TOPK);
  return map;
}

void
fb_custom_call_map_free (FbCustomCallMap *map)
{
  if (map == NULL)
    return;
  g_hash_table_unref (map->targets);
  g_free (map);
}

gboolean
fb_custom_call_map_add_spec (FbCustomCallMap *map, const char *spec, GError **error)
{
  g_return_val_if_fail (map != NULL, FALSE);
  g_return_val_if_fail (spec != NULL, FALSE);

  const char *eq = strchr (spec, '=');
  if (eq == NULL)
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
                   "--custom-call \"%s\": expected TARGET=IMPL, e.g. Foo=identity", spec);
      return FALSE;
    }
  g_autofree char *target = g_strstrip (g_strndup (spec, eq - spec));
  g_autofree char *impl = g_strstrip (g_strdup (eq + 1));
  if (target[0] == '\0')
    {
      g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
                   "--custom-call \"%s\": the target name before '=' is empty", spec);
      return FALSE;
    }
  for (int i = 0; i < FB_CC_N_IMPLS; i++)
    if (g_ascii_strcasecmp (impl, impl_names[i]) == 0)
      {
        map_set (map, target, (FbCustomCallImpl) i);
        return TRUE;
      }
  g_autofree char *known = known_impls ();
  g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
               "--custom-call \"%s\": \"%s\" is not a known implementation (known: %s)", spec, impl, known);
  return FALSE;
}

gboolean
fb_custom_call_map_lookup (const FbCustomCallMap *map, const char *target,
                           FbCustomCallImpl *out, GError **error)
{
  g_return_val_if_fail (map != NULL, FALSE);
  g_return_val_if_fail (target != NULL, FALSE);

  gpointer v = g_hash_table_lookup (map->targets, target);
  if (v != NULL)
    {
      if (out != NULL)
        *out = (FbCustomCallImpl) (GPOINTER_TO_INT (v) - 1);
      return TRUE;
    }
  g_autofree char *known = known_impls ();
  g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED,
               "custom-call target \"%s\" is not known; map it to a known implementation with "
               "--custom-call %s=identity (known: %s)", target, target, known);
  return FALSE;
}

/* ------------------------------------------------------------ registry */

#ifdef FB_HAVE_CPU_BACKEND
extern const FbBackend fb_cpu_backend;
#endif
#ifdef FB_HAVE_GPU_BACKEND
extern const FbBackend fb_gpu_backend;
#endif

static const FbBackend *const backends[] = {
  &fb_interp_backend,
#ifdef FB_HAVE_CPU_BACKEND
  &fb_cpu_backend,
#endif
#ifdef FB_HAVE_GPU_BACKEND
  &fb_gpu_backend,
#endif
};

const char *
fb_backend_names (void)
{
  return "interp"
#ifdef FB_HAVE_CPU_BACKEND
         ", cpu"
#endif
#ifdef FB_HAVE_GPU_BACKEND
         ", gpu"
#endif
    ;
}

const FbBackend *
fb_backend_lookup (const char *name, GError **error)
{
  g_return_val_if_fail (name != NULL, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (backends); i++)
    if (g_ascii_strcasecmp (backends[i]->name, name) == 0)
      return backends[i];
  if (g_ascii_strcasecmp (name, "cpu") == 0 || g_ascii_strcasecmp (name, "gpu") == 0)
    g_set_error (error, FB_ERROR, FB_ERROR_UNSUPPORTED,
                 "the %s backend is not part of this build (available: %s)", name, fb_backend_names ());
  else
    g_set_error (error, FB_ERROR, FB_ERROR_USAGE,
                 "unknown backend \"%s\" (available: %s)", name, fb_backend_names ());
  return NULL;
}
