/* SPDX-License-Identifier: MIT
 *
 * Internals of the model zoo shared by fb-zoo.c (options, the training-step
 * assembly, initial values and synthetic data) and fb-zoo-models.c (the
 * forward pass and loss of each model).
 *
 * A model builds only its forward computation: parameter 0 is the batch,
 * parameter 1 the labels, then one parameter per weight, created through
 * _fb_zoo_weight so that its init spec is recorded; the root is the scalar
 * loss. fb-zoo.c turns it into the training step.
 */
#pragma once

#include "fb-builder.h"
#include "fb-zoo.h"

G_BEGIN_DECLS

typedef struct {
  FbBuilder            *b;          /* the forward computation */
  const FbZooModelInfo *info;
  GHashTable           *options;    /* model option -> value text; borrowed */
  int64_t               batch;
  GPtrArray            *weights;    /* FbInstr *, forward parameters 2.. */
  GPtrArray            *names;      /* char *: the entry parameter name of each weight */
  GPtrArray            *inits;      /* char *: frontend_attributes text of each weight */
  char                 *data_attrs; /* frontend_attributes of data.x and label.y */
  char                 *label_attrs;
  const char           *data_kind;  /* "linear_teacher" or "permutation_teacher" */
} FbZooCtx;

typedef FbInstr *(*FbZooBuildFn) (FbZooCtx *z);

typedef struct {
  FbZooModelInfo info;
  FbZooBuildFn   build;
} FbZooModelDef;

extern const FbZooModelDef _fb_zoo_model_defs[];
extern const int           _fb_zoo_n_model_defs;

/* A weight parameter of the forward computation (the training step names it
 * `w.NAME`; the forward copy stays unnamed so the names stay free), with its
 * init spec (`he_uniform`, `glorot_uniform`, `zeros`, `ones`, `normal`);
 * fan_in/fan_out/stddev are recorded when positive. */
FbInstr *_fb_zoo_weight (FbZooCtx *z, const char *name, int rank, const int64_t *dims,
                         const char *init, int64_t fan_in, int64_t fan_out, double stddev);
/* Creates the forward parameters 0 (`data.x`) and 1 (`label.y`). @extra is
 * appended to data.x's frontend attributes (e.g. `vocab="64"`), may be NULL. */
void     _fb_zoo_inputs (FbZooCtx *z, FbShape *x, FbShape *y, const char *extra);

/* Model options: the value given, else the model's default. A malformed or
 * out-of-range value records a usage error in the builder and returns FALSE. */
gboolean _fb_zoo_opt_int  (FbZooCtx *z, const char *name, int64_t min, int64_t *out);
gboolean _fb_zoo_opt_list (FbZooCtx *z, const char *name, int min_n, int max_n,
                           int64_t *out, int *n_out);
gboolean _fb_zoo_opt_bool (FbZooCtx *z, const char *name, gboolean *out);
/* Records an FB_ERROR_USAGE error in the builder (sticky). */
void     _fb_zoo_usage_error (FbZooCtx *z, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

G_END_DECLS
