/* SPDX-License-Identifier: MIT
 *
 * The backend interface: every backend (interp, cpu, gpu) can say whether it
 * is available, compile a module into an executable, and execute it on
 * argument literals. Custom-call targets are resolved only through the
 * explicit registry in FbCustomCallMap, never as symbols.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

/* Known implementations a custom-call target may be mapped to. */
typedef enum {
  FB_CC_IDENTITY,      /* returns its operand (or tuple of operands) */
  FB_CC_TOPK,          /* values and indices of the k largest along the last dim */
  FB_CC_N_IMPLS
} FbCustomCallImpl;

typedef struct _FbCustomCallMap FbCustomCallMap;

/* The built-in map: Sharding, SPMDFullToShardShape, SPMDShardToFullShape -> identity; TopK -> topk. */
FbCustomCallMap *fb_custom_call_map_new     (void);
void             fb_custom_call_map_free    (FbCustomCallMap *map);
/* Adds `TARGET=IMPL` (from --custom-call); error on unknown IMPL or bad text. */
gboolean         fb_custom_call_map_add_spec (FbCustomCallMap *map, const char *spec, GError **error);
/* FALSE with an error that names the target and says how to map it. */
gboolean         fb_custom_call_map_lookup  (const FbCustomCallMap *map, const char *target,
                                             FbCustomCallImpl *out, GError **error);
const char      *fb_custom_call_impl_name   (FbCustomCallImpl impl);

/* The profiler's recorder (profiler/fb-recorder.h); declared here so that
 * backends which do not record need not include the profiler. */
typedef struct _FbRecorder FbRecorder;

typedef struct {
  FbCustomCallMap *custom_calls;   /* borrowed; NULL means the built-in map */
  int              threads;        /* 0: one per core */
  FbRecorder      *recorder;       /* borrowed; NULL: record nothing. When set, the
                                    * executable records a kernel span for every
                                    * kernel it runs, on the calling thread */
} FbBackendOptions;

typedef struct _FbBackend FbBackend;
typedef struct _FbExecutable FbExecutable;

struct _FbBackend {
  const char *name;
  gboolean      (*available) (GError **error);
  FbExecutable *(*compile)   (FbModule *module, const FbBackendOptions *options, GError **error);
  /* Runs the entry computation. @args has one literal per entry parameter;
   * the result is the root's literal (a tuple for tuple roots), owned by @arena. */
  FbLiteral    *(*execute)   (FbExecutable *exe, FbArena *arena, int n_args, FbLiteral *const *args,
                              GError **error);
  void          (*free)      (FbExecutable *exe);
};

struct _FbExecutable {
  const FbBackend *backend;
  FbModule        *module;     /* borrowed: the module it was compiled from */
};

const FbBackend *fb_backend_lookup (const char *name, GError **error);
const char      *fb_backend_names  (void);   /* "interp, cpu, gpu" as far as built */

G_END_DECLS
