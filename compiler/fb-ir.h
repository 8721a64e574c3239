/* SPDX-License-Identifier: MIT
 *
 * The Fusebox IR: a mirror of XLA HLO. A module owns one arena; every shape,
 * instruction, computation, string and literal of the module lives in it, so
 * freeing the module frees everything and a snapshot is a deep clone.
 *
 * Instructions keep their attributes as an ordered list. Attributes that the
 * passes and backends use (fb-attrs.def) are decoded into typed values; any
 * other attribute is kept verbatim, so a parse/print round trip loses nothing.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* ---------------------------------------------------------------- arena */

typedef struct _FbArena FbArena;

FbArena    *fb_arena_new      (void);
void        fb_arena_free     (FbArena *arena);
/* Zeroed, 16-byte aligned memory that lives as long as the arena. */
gpointer    fb_arena_alloc    (FbArena *arena, gsize size);
char       *fb_arena_strdup   (FbArena *arena, const char *s);
char       *fb_arena_strndup  (FbArena *arena, const char *s, gsize n);
gpointer    fb_arena_memdup   (FbArena *arena, gconstpointer p, gsize size);
gsize       fb_arena_bytes    (FbArena *arena);
/* Calls @fn (@data) when @arena is freed or reset, newest first: memory a
 * value in the arena points at that lives outside it (a backend's reused
 * result buffers). */
void        fb_arena_add_cleanup (FbArena *arena, GDestroyNotify fn, gpointer data);
#define fb_arena_new0(arena, Type, n) ((Type *) fb_arena_alloc ((arena), sizeof (Type) * (gsize) (n)))

/* -------------------------------------------------------- element types */

typedef enum {
#define FB_ELEM(e, name, bits, bytes, kind) FB_##e,
#include "fb-elemtypes.def"
#undef FB_ELEM
  FB_N_ELEM_TYPES
} FbElemType;

typedef enum {
  FB_KIND_PRED, FB_KIND_SINT, FB_KIND_UINT, FB_KIND_FLOAT,
  FB_KIND_COMPLEX, FB_KIND_TOKEN, FB_KIND_OPAQUE, FB_KIND_TUPLE
} FbElemKind;

const char *fb_elem_type_name   (FbElemType t);
/* Returns FALSE when @name (length @len, or -1 for NUL-terminated) is not an element type. */
gboolean    fb_elem_type_lookup (const char *name, gssize len, FbElemType *out);
int         fb_elem_type_bits   (FbElemType t);
/* Bytes one element takes in a literal or a buffer (sub-byte types take 1). */
int         fb_elem_type_bytes  (FbElemType t);
FbElemKind  fb_elem_type_kind   (FbElemType t);
gboolean    fb_elem_type_is_float (FbElemType t);   /* FLOAT kind */
gboolean    fb_elem_type_is_int   (FbElemType t);   /* SINT or UINT */
gboolean    fb_elem_type_is_array (FbElemType t);   /* has elements: not token, opaque or tuple */

/* --------------------------------------------------------------- shapes */

/* Dimension state: static, bounded dynamic (`<=N`, dims[i] holds N) or
 * unbounded dynamic (`?`, dims[i] is -1). */
enum { FB_DIM_STATIC = 0, FB_DIM_BOUNDED = 1, FB_DIM_UNBOUNDED = 2 };

typedef struct {
  int      n;                /* number of entries in minor_to_major */
  int64_t *minor_to_major;
  char    *extra;            /* text after ':' (tiling, memory space, ...), verbatim; NULL if none */
} FbLayout;

typedef struct _FbShape FbShape;
struct _FbShape {
  FbElemType type;           /* FB_TUPLE for tuples */
  int        rank;
  int64_t   *dims;
  uint8_t   *dyn;            /* NULL when every dimension is static */
  FbLayout  *layout;         /* NULL when the text had no layout */
  int        n_elems;        /* tuples */
  FbShape  **elems;
};

FbShape    *fb_shape_new_array (FbArena *arena, FbElemType type, int rank, const int64_t *dims);
FbShape    *fb_shape_new_scalar (FbArena *arena, FbElemType type);
FbShape    *fb_shape_new_tuple (FbArena *arena, int n, FbShape *const *elems);
/* Gives an array shape the default row-major layout {rank-1,...,0}. */
void        fb_shape_set_default_layout (FbArena *arena, FbShape *shape);
FbShape    *fb_shape_copy      (FbArena *arena, const FbShape *shape);
gboolean    fb_shape_is_tuple  (const FbShape *shape);
gboolean    fb_shape_is_array  (const FbShape *shape);
int64_t     fb_shape_elements  (const FbShape *shape);   /* 1 for scalars; 0 for tuples */
/* Bytes of every array leaf, tuples summed (pointers not counted). */
int64_t     fb_shape_bytes     (const FbShape *shape);
/* Same type, rank and dimensions (and tuple structure); layouts ignored. */
gboolean    fb_shape_compatible (const FbShape *a, const FbShape *b);
/* Everything equal, layouts included. */
gboolean    fb_shape_equal     (const FbShape *a, const FbShape *b);
/* Appends the HLO text of @shape: `f32[2,<=3]{1,0}`, `(f32[], s32[4]{0})`. */
void        fb_shape_print     (GString *out, const FbShape *shape, gboolean with_layout);
char       *fb_shape_to_string (const FbShape *shape);   /* g_free */

/* -------------------------------------------------------------- opcodes */

typedef enum {
#define FB_OPCODE(e, name, arity, cat) FB_OP_##e,
#include "fb-opcodes.def"
#undef FB_OPCODE
  FB_N_OPCODES
} FbOpcode;

typedef enum {
  FB_CAT_UNARY, FB_CAT_BINARY, FB_CAT_ELEMENTWISE, FB_CAT_MOVEMENT,
  FB_CAT_REDUCTION, FB_CAT_CONTRACTION, FB_CAT_NORM, FB_CAT_LINALG,
  FB_CAT_CONTROL, FB_CAT_COLLECTIVE, FB_CAT_LEAF, FB_CAT_TUPLE,
  FB_CAT_RNG, FB_CAT_OTHER, FB_N_CATEGORIES
} FbOpCategory;

const char  *fb_opcode_name     (FbOpcode op);
gboolean     fb_opcode_lookup   (const char *name, gssize len, FbOpcode *out);
int          fb_opcode_arity    (FbOpcode op);          /* -1: variadic */
FbOpCategory fb_opcode_category (FbOpcode op);
const char  *fb_category_name   (FbOpCategory cat);
/* Unary, binary, compare, select, clamp, convert and friends: one output
 * element depends only on the operands' elements at the same index. */
gboolean     fb_opcode_is_elementwise (FbOpcode op);

/* ----------------------------------------------------------- attributes */

typedef enum {
#define FB_ATTR(e, key, kind) FB_A_##e,
#include "fb-attrs.def"
#undef FB_ATTR
  FB_A_RAW_KEY,            /* any other key: kept verbatim */
  FB_N_ATTR_KEYS
} FbAttrKey;

typedef enum {
  FB_AV_INT, FB_AV_BOOL, FB_AV_FLOAT, FB_AV_STRING, FB_AV_IDENT,
  FB_AV_DIMS, FB_AV_SLICE, FB_AV_PADDING, FB_AV_WINDOW, FB_AV_DIM_LABELS,
  FB_AV_COMP, FB_AV_COMPS, FB_AV_RAW
} FbAttrKind;

typedef struct { int n; int64_t *v; } FbDims;
typedef struct { int64_t start, limit, stride; } FbSliceDim;
typedef struct { int64_t lo, hi, interior; } FbPadDim;
typedef struct {
  int64_t  size, stride, pad_lo, pad_hi, lhs_dilate, rhs_dilate;
  gboolean reversal;
} FbWindowDim;

/* Convolution dimension numbers, from dim_labels like `b01f_01io->b01f`. */
typedef struct {
  int      n_spatial;
  int64_t  in_batch, in_feature, *in_spatial;
  int64_t  k_in, k_out, *k_spatial;
  int64_t  out_batch, out_feature, *out_spatial;
} FbConvDims;

typedef struct _FbComputation FbComputation;
typedef struct _FbInstr FbInstr;
typedef struct _FbModule FbModule;

typedef struct {
  FbAttrKey  key;
  const char *name;          /* the key's text (also for FB_A_RAW_KEY) */
  FbAttrKind kind;
  union {
    int64_t   i;             /* INT, BOOL */
    double    f;             /* FLOAT */
    char     *s;             /* STRING (unquoted, unescaped), IDENT, RAW (verbatim value text) */
    FbDims    dims;          /* DIMS */
    struct { int n; FbSliceDim *d; } slice;
    struct { int n; FbPadDim *d; } pad;
    struct { int n; FbWindowDim *d; } window;
    FbConvDims conv;         /* DIM_LABELS */
    struct { int n; FbComputation **c; gboolean braced; } comps;   /* COMP, COMPS */
  } v;
} FbAttr;

const char *fb_attr_key_name (FbAttrKey key);
FbAttrKind  fb_attr_key_kind (FbAttrKey key);
/* FB_A_RAW_KEY when @name is not a typed key. */
FbAttrKey   fb_attr_key_lookup (const char *name, gssize len);
/* Same key, kind and value; called computations compare by name (so
 * attributes of two clones compare equal), floats bit for bit. */
gboolean    fb_attr_equal (const FbAttr *a, const FbAttr *b);

/* --------------------------------------------------------- source spans */

typedef struct { int line, column; } FbLoc;   /* 1-based; 0 when not from text */

/* ---------------------------------------------------------- instructions */

typedef struct _FbLiteral FbLiteral;

struct _FbInstr {
  char          *name;
  int64_t        id;           /* unique in the module, kept by clones */
  FbOpcode       opcode;
  FbShape       *shape;
  FbComputation *parent;
  FbInstr       *prev, *next;  /* order within the computation */

  int            n_operands;
  FbInstr      **operands;
  int            n_users, users_cap;
  FbInstr      **users;        /* each user once, in no particular order */
  gboolean       operands_unique;   /* known: no operand fills two slots (FALSE: not known) */

  int            n_attrs, attrs_cap;
  FbAttr        *attrs;        /* in text order */

  int64_t        parameter_number;  /* parameter */
  FbLiteral     *literal;      /* constant */
  gboolean       literal_elided;    /* constant({...}): loaded as zeros */
  char          *opcode_suffix;     /* verbatim text of e.g. `constant` raw literal when not decodable; NULL */

  int            n_prov;
  int64_t       *prov;         /* ids of the original instructions it stands for */

  FbLoc          loc;          /* where it was defined in the text */
  gpointer       scratch;      /* free for a pass or backend to use while it runs */
  guint64        walk;         /* the number of the last graph walk that marked it (fb_instr_walk_begin) */
  FbInstr       *walk_from;    /* free for that walk: e.g. where it came from */
};

struct _FbComputation {
  char          *name;
  FbModule      *module;
  gboolean       is_entry;
  gboolean       is_fusion;        /* called by a fusion instruction */
  FbInstr       *first, *last;
  int            n_instrs;
  FbInstr       *root;
  int            n_params;
  FbInstr      **params;           /* by parameter number */
  gboolean       has_signature;    /* the text gave `(p: f32[]) -> f32[]` */
  char          *execution_thread; /* verbatim, NULL when absent */
  FbLoc          loc;
};

typedef struct {
  FbDims    output_index;     /* {} or {0} ... */
  int64_t   param_number;
  FbDims    param_index;
  char     *kind;             /* "may-alias", "must-alias" or NULL */
} FbAlias;

typedef struct { char *key; char *value; } FbModuleAttr;

struct _FbModule {
  FbArena        *arena;
  char           *name;
  char           *source_path;     /* for diagnostics; may be NULL */
  int             n_comps, comps_cap;
  FbComputation **comps;           /* in text order; callees before callers when printed */
  FbComputation  *entry;
  int64_t         next_id;

  int             n_aliases;
  FbAlias        *aliases;         /* input_output_alias */
  int             n_donors;
  FbAlias        *donors;          /* buffer_donor: param_number and param_index used */
  FbShape        *entry_layout_result;   /* entry_computation_layout, NULL if absent */
  int             n_entry_layout_params;
  FbShape       **entry_layout_params;
  gboolean        is_scheduled;
  int             n_header_attrs;
  FbModuleAttr   *header_attrs;    /* every other header attribute, verbatim, in order */
  char           *stack_tables;    /* FileNames ... StackFrames block, verbatim; NULL if none */
  int             n_elided;        /* constants loaded as zeros from `{...}` */
  GHashTable     *names;           /* private: instruction names, built on demand by fb_instr_new */
};

FbModule      *fb_module_new        (const char *name);
void           fb_module_free       (FbModule *module);
FbComputation *fb_module_add_computation (FbModule *module, const char *name);
FbComputation *fb_module_find_computation (FbModule *module, const char *name);
void           fb_module_remove_computation (FbModule *module, FbComputation *comp);
/* Computations in an order where every callee comes before its callers. */
GPtrArray     *fb_module_post_order (FbModule *module);
int            fb_module_instr_count (FbModule *module);
/* The first of @n fresh walk numbers, unique in the process, for a walk
 * that marks instructions through their walk field instead of a set. */
guint64        fb_instr_walk_begin (int n);
/* Deep copy in a fresh arena. Names, ids and provenance are kept. */
FbModule      *fb_module_clone      (FbModule *module);
/* Same computations, instructions, shapes, attributes, literals and header. */
gboolean       fb_module_equal      (FbModule *a, FbModule *b, GString *why);

/* Creates an instruction at the end of @comp (or before @before when not NULL).
 * Operands get @instr as a user. The name is made unique in the module when
 * @name is NULL (`add.12`). The id is fresh and provenance is {id}. */
FbInstr  *fb_instr_new        (FbComputation *comp, FbInstr *before, FbOpcode op, FbShape *shape,
                               int n_operands, FbInstr *const *operands, const char *name);
/* Unlinks from the computation and from its operands' users. It must have no users. */
void      fb_instr_remove     (FbInstr *instr);
void      fb_instr_set_operand (FbInstr *instr, int i, FbInstr *operand);
/* Every use of @old becomes a use of @new_instr; root follows. */
void      fb_instr_replace_all_uses (FbInstr *old, FbInstr *new_instr);
/* Moves @instr so that it stands before @before (or last when NULL). */
void      fb_instr_move_before (FbInstr *instr, FbInstr *before);

/* Attribute access. get returns NULL when absent. add appends; set replaces or appends. */
const FbAttr *fb_instr_get_attr   (const FbInstr *instr, FbAttrKey key);
const FbAttr *fb_instr_get_raw_attr (const FbInstr *instr, const char *name);
FbAttr       *fb_instr_add_attr   (FbInstr *instr, FbAttrKey key, const char *raw_name);
FbAttr       *fb_instr_set_attr   (FbInstr *instr, FbAttrKey key);
void          fb_instr_remove_attr (FbInstr *instr, FbAttrKey key);
/* Typed shortcuts: return NULL / @fallback when absent. */
const FbDims *fb_instr_dims       (const FbInstr *instr, FbAttrKey key);
int64_t       fb_instr_int        (const FbInstr *instr, FbAttrKey key, int64_t fallback);
const char   *fb_instr_str        (const FbInstr *instr, FbAttrKey key);
FbComputation *fb_instr_comp      (const FbInstr *instr, FbAttrKey key);   /* first one */
void          fb_instr_set_dims   (FbInstr *instr, FbAttrKey key, int n, const int64_t *v);
void          fb_instr_set_int    (FbInstr *instr, FbAttrKey key, int64_t v);
void          fb_instr_set_ident  (FbInstr *instr, FbAttrKey key, const char *ident);
void          fb_instr_set_comp   (FbInstr *instr, FbAttrKey key, FbComputation *comp);
/* All computations an instruction calls, in attribute order. */
int           fb_instr_called     (const FbInstr *instr, FbComputation **out, int max);
/* A value from metadata={op_name="..." source_file="..." source_line=3}: newly allocated, NULL when absent. */
char         *fb_instr_dup_metadata (const FbInstr *instr, const char *field);
void          fb_instr_add_prov   (FbInstr *instr, int n, const int64_t *ids);

/* ------------------------------------------------------------- literals */

struct _FbLiteral {
  FbShape *shape;         /* array shape, or tuple */
  guint8  *data;          /* row-major (logical order), fb_elem_type_bytes each; NULL for tuples */
  int      n_elems;       /* tuples */
  FbLiteral **elems;
};

FbLiteral *fb_literal_new      (FbArena *arena, FbShape *shape);    /* zeros */
FbLiteral *fb_literal_copy     (FbArena *arena, const FbLiteral *lit);
gboolean   fb_literal_equal    (const FbLiteral *a, const FbLiteral *b);
/* Element @i in logical order, converted. Complex: the real part. */
double     fb_literal_get_f64  (const FbLiteral *lit, int64_t i);
int64_t    fb_literal_get_s64  (const FbLiteral *lit, int64_t i);
void       fb_literal_set_f64  (FbLiteral *lit, int64_t i, double v);
void       fb_literal_set_s64  (FbLiteral *lit, int64_t i, int64_t v);

/* Scalar conversions shared by every layer (round to nearest even). */
float      fb_f16_to_f32   (uint16_t h);
uint16_t   fb_f32_to_f16   (float f);
float      fb_bf16_to_f32  (uint16_t h);
uint16_t   fb_f32_to_bf16  (float f);
/* Any FLOAT-kind element (f4, f8 family, f16, bf16, f32, f64) from its bits and back. */
double     fb_float_decode (FbElemType t, const guint8 *p);
void       fb_float_encode (FbElemType t, guint8 *p, double v);

/* --------------------------------------------------------------- errors */

#define FB_ERROR (fb_error_quark ())
GQuark fb_error_quark (void);
typedef enum {
  FB_ERROR_PARSE,      /* malformed text or JSON */
  FB_ERROR_VERIFY,     /* well-formed but invalid module */
  FB_ERROR_IO,         /* files */
  FB_ERROR_UNSUPPORTED,/* valid but not handled here */
  FB_ERROR_USAGE,      /* bad options */
  FB_ERROR_RUNTIME     /* failure while executing */
} FbErrorCode;

/* ------------------------------------------------------- arena reuse */

/* Releases everything allocated from @arena at once and keeps one chunk, so
 * that a scratch arena filled and emptied many times stays small and warm.
 * Pointers into the arena become invalid. */
void fb_arena_reset (FbArena *arena);

G_END_DECLS
