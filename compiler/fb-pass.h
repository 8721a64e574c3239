/* SPDX-License-Identifier: MIT
 *
 * Passes and the pass pipeline. A pass rewrites a module in place and
 * records decisions: what it did and what it refused to do, with the rule
 * and the reason in words and numbers. A pipeline is an ordered list of
 * passes, each enabled or not; running it yields one snapshot per pass (a
 * clone of the module after it, the diff against the snapshot before, the
 * decisions, the wall time and statistics), which is what the workbench
 * steps through and the CLI prints.
 */
#pragma once

#include "fb-ir.h"

G_BEGIN_DECLS

/* ------------------------------------------------------------ decisions */

typedef enum {
  FB_DECISION_FUSED,       /* instructions became (part of) a fusion */
  FB_DECISION_REFUSED,     /* a candidate the pass did not take, and why */
  FB_DECISION_REWRITTEN,   /* an instruction was replaced by a simpler one */
  FB_DECISION_REMOVED,     /* an instruction was deleted */
  FB_DECISION_NOTE         /* anything else worth telling (layout chosen, buffer reused) */
} FbDecisionKind;

typedef struct {
  FbDecisionKind kind;
  const char    *pass;       /* static pass name */
  char          *rule;       /* short rule id: "producer-has-many-users", "x+0" */
  char          *message;    /* "did not fuse %exp.4 into %reduce.9: the producer has 3 users ..." */
  int            n_ids;
  int64_t       *ids;        /* ids of the instructions involved: each one's own id and at most
                              * FB_DECISION_MAX_PROV ids of its provenance */
} FbDecision;

#define FB_DECISION_MAX_PROV 32

const char *fb_decision_kind_name (FbDecisionKind kind);
void        fb_decision_free      (FbDecision *d);

/* ----------------------------------------------------------------- pass */

typedef struct _FbPassContext FbPassContext;
struct _FbPassContext {
  const char *pass_name;     /* set by the pipeline before each pass */
  GPtrArray  *decisions;     /* of FbDecision*, owned */
  /* Limits a kernel may not pass (fusion passes): defaults in fb_pass_context_new. */
  int         max_fusion_operands;      /* 64 */
  int         max_fusion_instructions;  /* 200 */
  double      max_recompute_bytes;      /* a producer duplicated into k users may cost at most this many extra bytes */
};

FbPassContext *fb_pass_context_new  (void);
void           fb_pass_context_free (FbPassContext *ctx);
/* Records a decision: @instrs (NULL-terminated is not required; @n of them) give the ids. */
void           fb_pass_decide (FbPassContext *ctx, FbDecisionKind kind, const char *rule,
                               int n, FbInstr *const *instrs, const char *fmt, ...) G_GNUC_PRINTF (6, 7);

typedef struct {
  const char *name;          /* "fuse-loops" */
  const char *summary;       /* one line */
  const char *explain;       /* a paragraph for a student */
  /* Rewrites @module; *changed tells whether anything changed. */
  gboolean  (*run) (FbModule *module, FbPassContext *ctx, gboolean *changed, GError **error);
} FbPass;

/* Constant folding evaluates instructions with an evaluator that a layer
 * above the compiler provides (the reference interpreter): it runs the entry
 * computation of @module, which takes no parameters, and returns the root's
 * value in @arena. Without one, fold-constants folds nothing and says so. */
typedef FbLiteral *(*FbConstantEvaluator) (FbModule *module, FbArena *arena, gpointer user_data,
                                           GError **error);
void                fb_pass_set_constant_evaluator (FbConstantEvaluator eval, gpointer user_data);
FbConstantEvaluator fb_pass_get_constant_evaluator (gpointer *user_data);

/* Every pass, in the default pipeline order. */
const FbPass *const *fb_passes_all    (int *n);
const FbPass        *fb_pass_lookup   (const char *name);

/* ---------------------------------------------------------- statistics */

typedef struct {
  int    instructions;       /* in every computation that is not a fused computation */
  int    kernels;            /* launches the backend makes per step (see fb_module_kernel_count) */
  double flops;
  double bytes;              /* estimated bytes moved by the kernels */
  double peak_bytes;         /* peak live bytes of the entry's buffer plan */
} FbStats;

void fb_stats_compute (FbModule *module, FbStats *out);
/* Kernels a backend launches per step: instructions of the entry (and of
 * computations it calls through while/conditional/call) that do work, each
 * fusion counting once; parameters, constants, tuples, get-tuple-element,
 * bitcasts and no-op reshapes launch nothing. */
int  fb_module_kernel_count (FbModule *module);

/* ----------------------------------------------------------------- diff */

typedef struct {
  GArray *added;       /* int64 provenance ids present after, not before */
  GArray *removed;     /* ids present before, not after */
  GArray *changed;     /* ids on both sides whose opcode, shape, operands or attributes changed */
  GArray *fused;       /* ids that stand inside a fusion after and did not before */
} FbDiff;

/* Diff by provenance: an instruction "is" every id in its provenance. */
FbDiff *fb_diff_modules (FbModule *before, FbModule *after);
void    fb_diff_free    (FbDiff *diff);

/* ------------------------------------------------------------ pipeline */

typedef struct {
  const FbPass *pass;
  gboolean      enabled;
} FbPipelineEntry;

typedef struct {
  int              n;
  FbPipelineEntry *entries;
} FbPipeline;

/* All passes in default order, all enabled. */
FbPipeline *fb_pipeline_new_default (void);
void        fb_pipeline_free        (FbPipeline *p);
/* `all`, `none`, `a,b,c` (only those, in default order), or `all,-a,-b`. */
gboolean    fb_pipeline_set_spec    (FbPipeline *p, const char *spec, GError **error);
char       *fb_pipeline_dup_spec    (const FbPipeline *p);

typedef struct {
  const FbPass *pass;        /* NULL for snapshot 0 (the input) */
  gboolean      enabled;
  gboolean      changed;
  FbModule     *module;      /* owned clone after the pass */
  FbDiff       *diff;        /* against the previous snapshot; NULL for snapshot 0 */
  GPtrArray    *decisions;   /* of FbDecision*, owned */
  double        ms;
  FbStats       stats;
} FbSnapshot;

void fb_snapshot_free (FbSnapshot *s);

typedef struct {
  gboolean verify_each;      /* run fb_verify after every pass (tests do) */
  gboolean keep_snapshots;   /* clone the module after each pass (else only stats) */
} FbPipelineOptions;

/* Runs @p over @module in place. Returns snapshots 0..n (0 is the input), or
 * NULL with an error naming the pass that failed. */
GPtrArray *fb_pipeline_run (FbPipeline *p, FbModule *module, const FbPipelineOptions *options, GError **error);

G_END_DECLS
