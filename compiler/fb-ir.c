/* SPDX-License-Identifier: MIT
 *
 * The IR's plumbing: the module arena, the element type, opcode and attribute
 * tables, shapes, and the operations that create, rewire and remove
 * instructions. Clone and structural equality live in fb-ir-clone.c.
 */
#include <string.h>

#include "fb-ir.h"

G_DEFINE_QUARK (fusebox-error-quark, fb_error)

/* ---------------------------------------------------------------- arena */

#define ARENA_CHUNK (64 * 1024)

typedef struct Chunk Chunk;
struct Chunk {
  Chunk *next;
  gsize  size, used;
  /* data follows, 16-byte aligned */
};

typedef struct Cleanup Cleanup;
struct Cleanup {
  Cleanup       *next;
  GDestroyNotify fn;
  gpointer       data;
};

struct _FbArena {
  Chunk   *head;
  gsize    total;
  Cleanup *cleanups;   /* newest first */
};

static void
run_cleanups (FbArena *arena)
{
  while (arena->cleanups != NULL)
    {
      Cleanup *c = arena->cleanups;
      arena->cleanups = c->next;
      c->fn (c->data);
      g_free (c);
    }
}

FbArena *
fb_arena_new (void)
{
  return g_new0 (FbArena, 1);
}

void
fb_arena_free (FbArena *arena)
{
  if (arena == NULL)
    return;
  run_cleanups (arena);
  for (Chunk *c = arena->head, *next; c != NULL; c = next)
    {
      next = c->next;
      g_free (c);
    }
  g_free (arena);
}

static inline guint8 *
chunk_data (Chunk *c)
{
  return (guint8 *) c + ((sizeof (Chunk) + 15) & ~(gsize) 15);
}

gpointer
fb_arena_alloc (FbArena *arena, gsize size)
{
  size = (size + 15) & ~(gsize) 15;
  if (size == 0)
    size = 16;
  Chunk *c = arena->head;
  if (c == NULL || c->used + size > c->size)
    {
      gsize cap = MAX (size, ARENA_CHUNK);
      /* Fresh chunks come zeroed (often straight from the kernel), and every
       * byte of a chunk is handed out at most once, so no memset below. */
      Chunk *n = g_malloc0 (((sizeof (Chunk) + 15) & ~(gsize) 15) + cap);
      n->size = cap;
      n->used = 0;
      if (c != NULL && size > ARENA_CHUNK / 4)
        {
          /* A big block gets its own chunk behind the current one, so the
           * current chunk keeps serving small requests. */
          n->next = c->next;
          c->next = n;
        }
      else
        {
          n->next = c;
          arena->head = n;
        }
      c = n;
    }
  guint8 *p = chunk_data (c) + c->used;
  c->used += size;
  arena->total += size;
  return p;
}

void
fb_arena_add_cleanup (FbArena *arena, GDestroyNotify fn, gpointer data)
{
  g_return_if_fail (arena != NULL && fn != NULL);
  Cleanup *c = g_new (Cleanup, 1);
  c->fn = fn;
  c->data = data;
  c->next = arena->cleanups;
  arena->cleanups = c;
}

char *
fb_arena_strndup (FbArena *arena, const char *s, gsize n)
{
  if (s == NULL)
    return NULL;
  char *p = fb_arena_alloc (arena, n + 1);
  memcpy (p, s, n);
  p[n] = '\0';
  return p;
}

char *
fb_arena_strdup (FbArena *arena, const char *s)
{
  return s ? fb_arena_strndup (arena, s, strlen (s)) : NULL;
}

gpointer
fb_arena_memdup (FbArena *arena, gconstpointer p, gsize size)
{
  if (p == NULL)
    return NULL;
  gpointer q = fb_arena_alloc (arena, size);
  memcpy (q, p, size);
  return q;
}

gsize
fb_arena_bytes (FbArena *arena)
{
  return arena->total;
}

/* ---------------------------------------------------------- name tables */

/* Name -> index tables for element types, opcodes and attribute keys: open addressing over
 * a fixed array, built once, looked up without copying the name. */
#define NAME_SLOTS 1024

typedef struct {
  gsize   once;
  guint16 slot[NAME_SLOTS];   /* index + 1; 0 is empty */
} NameIndex;

static guint32
name_hash (const char *s, gsize n)
{
  guint32 h = 2166136261u;
  for (gsize i = 0; i < n; i++)
    h = (h ^ (guchar) s[i]) * 16777619u;
  return h;
}

static NameIndex *
name_index (NameIndex *t, int n, const char *(*name_of) (int))
{
  if (g_once_init_enter (&t->once))
    {
      g_assert (n < NAME_SLOTS / 2);
      for (int i = 0; i < n; i++)
        {
          const char *name = name_of (i);
          guint32 h = name_hash (name, strlen (name)) % NAME_SLOTS;
          while (t->slot[h] != 0)
            h = (h + 1) % NAME_SLOTS;
          t->slot[h] = i + 1;
        }
      g_once_init_leave (&t->once, 1);
    }
  return t;
}

static int
table_lookup (NameIndex *t, const char *(*name_of) (int), const char *name, gssize len)
{
  gsize n = len < 0 ? strlen (name) : (gsize) len;
  for (guint32 h = name_hash (name, n) % NAME_SLOTS; t->slot[h] != 0; h = (h + 1) % NAME_SLOTS)
    {
      const char *cand = name_of (t->slot[h] - 1);
      gsize i = 0;
      while (i < n && cand[i] != '\0' && cand[i] == name[i])
        i++;
      if (i == n && cand[n] == '\0')
        return t->slot[h] - 1;
    }
  return -1;
}

/* -------------------------------------------------------- element types */

typedef struct {
  const char *name;
  int bits, bytes;
  FbElemKind kind;
} ElemInfo;

static const ElemInfo elem_info[FB_N_ELEM_TYPES] = {
#define FB_ELEM(e, name, bits, bytes, kind) { name, bits, bytes, FB_KIND_##kind },
#include "fb-elemtypes.def"
#undef FB_ELEM
};

const char *
fb_elem_type_name (FbElemType t)
{
  return (unsigned) t < FB_N_ELEM_TYPES ? elem_info[t].name : "?";
}

static const char *elem_name_of (int i) { return elem_info[i].name; }

gboolean
fb_elem_type_lookup (const char *name, gssize len, FbElemType *out)
{
  static NameIndex table;
  int t = table_lookup (name_index (&table, FB_N_ELEM_TYPES, elem_name_of), elem_name_of, name, len);
  if (t < 0 || t == FB_TUPLE)
    return FALSE;   /* `tuple` is not written as an element type */
  *out = t;
  return TRUE;
}

int fb_elem_type_bits (FbElemType t) { return elem_info[t].bits; }
int fb_elem_type_bytes (FbElemType t) { return elem_info[t].bytes; }
FbElemKind fb_elem_type_kind (FbElemType t) { return elem_info[t].kind; }
gboolean fb_elem_type_is_float (FbElemType t) { return elem_info[t].kind == FB_KIND_FLOAT; }

gboolean
fb_elem_type_is_int (FbElemType t)
{
  return elem_info[t].kind == FB_KIND_SINT || elem_info[t].kind == FB_KIND_UINT;
}

gboolean
fb_elem_type_is_array (FbElemType t)
{
  FbElemKind k = elem_info[t].kind;
  return k != FB_KIND_TOKEN && k != FB_KIND_OPAQUE && k != FB_KIND_TUPLE;
}

/* --------------------------------------------------------------- shapes */

FbShape *
fb_shape_new_array (FbArena *arena, FbElemType type, int rank, const int64_t *dims)
{
  FbShape *s = fb_arena_new0 (arena, FbShape, 1);
  s->type = type;
  s->rank = rank;
  if (rank > 0)
    s->dims = fb_arena_memdup (arena, dims, sizeof (int64_t) * rank);
  return s;
}

FbShape *
fb_shape_new_scalar (FbArena *arena, FbElemType type)
{
  return fb_shape_new_array (arena, type, 0, NULL);
}

FbShape *
fb_shape_new_tuple (FbArena *arena, int n, FbShape *const *elems)
{
  FbShape *s = fb_arena_new0 (arena, FbShape, 1);
  s->type = FB_TUPLE;
  s->n_elems = n;
  if (n > 0)
    s->elems = fb_arena_memdup (arena, elems, sizeof (FbShape *) * n);
  return s;
}

void
fb_shape_set_default_layout (FbArena *arena, FbShape *shape)
{
  if (shape->type == FB_TUPLE)
    {
      for (int i = 0; i < shape->n_elems; i++)
        fb_shape_set_default_layout (arena, shape->elems[i]);
      return;
    }
  if (!fb_elem_type_is_array (shape->type))
    return;
  FbLayout *l = fb_arena_new0 (arena, FbLayout, 1);
  l->n = shape->rank;
  l->minor_to_major = fb_arena_new0 (arena, int64_t, MAX (1, shape->rank));
  for (int i = 0; i < shape->rank; i++)
    l->minor_to_major[i] = shape->rank - 1 - i;
  shape->layout = l;
}

FbShape *
fb_shape_copy (FbArena *arena, const FbShape *shape)
{
  if (shape == NULL)
    return NULL;
  FbShape *s = fb_arena_new0 (arena, FbShape, 1);
  s->type = shape->type;
  s->rank = shape->rank;
  if (shape->rank > 0)
    s->dims = fb_arena_memdup (arena, shape->dims, sizeof (int64_t) * shape->rank);
  if (shape->dyn)
    s->dyn = fb_arena_memdup (arena, shape->dyn, shape->rank);
  if (shape->layout)
    {
      FbLayout *l = fb_arena_new0 (arena, FbLayout, 1);
      l->n = shape->layout->n;
      if (l->n > 0)
        l->minor_to_major = fb_arena_memdup (arena, shape->layout->minor_to_major, sizeof (int64_t) * l->n);
      l->extra = fb_arena_strdup (arena, shape->layout->extra);
      s->layout = l;
    }
  s->n_elems = shape->n_elems;
  if (shape->n_elems > 0)
    {
      s->elems = fb_arena_new0 (arena, FbShape *, shape->n_elems);
      for (int i = 0; i < shape->n_elems; i++)
        s->elems[i] = fb_shape_copy (arena, shape->elems[i]);
    }
  return s;
}

gboolean
fb_shape_is_tuple (const FbShape *shape)
{
  return shape->type == FB_TUPLE;
}

gboolean
fb_shape_is_array (const FbShape *shape)
{
  return fb_elem_type_is_array (shape->type);
}

int64_t
fb_shape_elements (const FbShape *shape)
{
  if (!fb_shape_is_array (shape))
    return 0;
  int64_t n = 1;
  for (int i = 0; i < shape->rank; i++)
    n *= MAX (shape->dims[i], 0);
  return n;
}

int64_t
fb_shape_bytes (const FbShape *shape)
{
  if (shape->type == FB_TUPLE)
    {
      int64_t b = 0;
      for (int i = 0; i < shape->n_elems; i++)
        b += fb_shape_bytes (shape->elems[i]);
      return b;
    }
  if (!fb_shape_is_array (shape))
    return 0;
  int bits = fb_elem_type_bits (shape->type);
  int64_t n = fb_shape_elements (shape);
  return bits >= 8 ? n * (bits / 8) : (n * bits + 7) / 8;
}

static gboolean
shape_eq (const FbShape *a, const FbShape *b, gboolean layouts)
{
  if (a == b)
    return TRUE;
  if (a == NULL || b == NULL || a->type != b->type)
    return FALSE;
  if (a->type == FB_TUPLE)
    {
      if (a->n_elems != b->n_elems)
        return FALSE;
      for (int i = 0; i < a->n_elems; i++)
        if (!shape_eq (a->elems[i], b->elems[i], layouts))
          return FALSE;
      return TRUE;
    }
  if (a->rank != b->rank)
    return FALSE;
  for (int i = 0; i < a->rank; i++)
    {
      if (a->dims[i] != b->dims[i])
        return FALSE;
      int da = a->dyn ? a->dyn[i] : 0, db = b->dyn ? b->dyn[i] : 0;
      if (da != db)
        return FALSE;
    }
  if (!layouts)
    return TRUE;
  if ((a->layout == NULL) != (b->layout == NULL))
    return FALSE;
  if (a->layout)
    {
      if (a->layout->n != b->layout->n
          || (a->layout->n > 0 && memcmp (a->layout->minor_to_major, b->layout->minor_to_major,
                                          sizeof (int64_t) * a->layout->n) != 0))
        return FALSE;
      if (g_strcmp0 (a->layout->extra, b->layout->extra) != 0)
        return FALSE;
    }
  return TRUE;
}

gboolean
fb_shape_compatible (const FbShape *a, const FbShape *b)
{
  return shape_eq (a, b, FALSE);
}

gboolean
fb_shape_equal (const FbShape *a, const FbShape *b)
{
  return shape_eq (a, b, TRUE);
}

void
fb_shape_print (GString *out, const FbShape *shape, gboolean with_layout)
{
  if (shape->type == FB_TUPLE)
    {
      g_string_append_c (out, '(');
      for (int i = 0; i < shape->n_elems; i++)
        {
          if (i > 0)
            g_string_append (out, ", ");
          fb_shape_print (out, shape->elems[i], with_layout);
        }
      g_string_append_c (out, ')');
      return;
    }
  g_string_append (out, fb_elem_type_name (shape->type));
  if (!fb_shape_is_array (shape))
    {
      g_string_append (out, "[]");   /* token[], opaque[] as XLA prints them */
      return;
    }
  g_string_append_c (out, '[');
  for (int i = 0; i < shape->rank; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      int d = shape->dyn ? shape->dyn[i] : FB_DIM_STATIC;
      if (d == FB_DIM_UNBOUNDED)
        g_string_append_c (out, '?');
      else
        g_string_append_printf (out, "%s%" G_GINT64_FORMAT, d == FB_DIM_BOUNDED ? "<=" : "", shape->dims[i]);
    }
  g_string_append_c (out, ']');
  if (with_layout && shape->layout)
    {
      g_string_append_c (out, '{');
      for (int i = 0; i < shape->layout->n; i++)
        g_string_append_printf (out, "%s%" G_GINT64_FORMAT, i > 0 ? "," : "", shape->layout->minor_to_major[i]);
      if (shape->layout->extra)
        g_string_append_printf (out, ":%s", shape->layout->extra);
      g_string_append_c (out, '}');
    }
}

char *
fb_shape_to_string (const FbShape *shape)
{
  GString *s = g_string_new (NULL);
  fb_shape_print (s, shape, TRUE);
  return g_string_free (s, FALSE);
}

/* -------------------------------------------------------------- opcodes */

typedef struct {
  const char *name;
  int arity;
  FbOpCategory cat;
} OpInfo;

static const OpInfo op_info[FB_N_OPCODES] = {
#define FB_OPCODE(e, name, arity, cat) { name, arity, FB_CAT_##cat },
#include "fb-opcodes.def"
#undef FB_OPCODE
};

static const char *const category_names[FB_N_CATEGORIES] = {
  "unary", "binary", "elementwise", "movement", "reduction", "contraction", "normalization",
  "linear-algebra", "control", "collective", "leaf", "tuple", "rng", "other"
};

const char *
fb_opcode_name (FbOpcode op)
{
  return (unsigned) op < FB_N_OPCODES ? op_info[op].name : "?";
}

static const char *op_name_of (int i) { return op_info[i].name; }

gboolean
fb_opcode_lookup (const char *name, gssize len, FbOpcode *out)
{
  static NameIndex table;
  int i = table_lookup (name_index (&table, FB_N_OPCODES, op_name_of), op_name_of, name, len);
  if (i < 0)
    return FALSE;
  *out = i;
  return TRUE;
}

int fb_opcode_arity (FbOpcode op) { return op_info[op].arity; }
FbOpCategory fb_opcode_category (FbOpcode op) { return op_info[op].cat; }

const char *
fb_category_name (FbOpCategory cat)
{
  return (unsigned) cat < FB_N_CATEGORIES ? category_names[cat] : "?";
}

gboolean
fb_opcode_is_elementwise (FbOpcode op)
{
  switch (op_info[op].cat)
    {
    case FB_CAT_UNARY:
    case FB_CAT_BINARY:
      return op != FB_OP_STOCHASTIC_CONVERT;
    case FB_CAT_ELEMENTWISE:
      return op != FB_OP_MAP;
    default:
      return FALSE;
    }
}

/* ----------------------------------------------------------- attributes */

typedef struct {
  const char *name;
  FbAttrKind kind;
} AttrInfo;

static const AttrInfo attr_info[FB_N_ATTR_KEYS] = {
#define FB_ATTR(e, key, kind) { key, FB_AV_##kind },
#include "fb-attrs.def"
#undef FB_ATTR
  { "", FB_AV_RAW },
};

const char *fb_attr_key_name (FbAttrKey key) { return attr_info[key].name; }
FbAttrKind fb_attr_key_kind (FbAttrKey key) { return attr_info[key].kind; }

static const char *attr_name_of (int i) { return attr_info[i].name; }

FbAttrKey
fb_attr_key_lookup (const char *name, gssize len)
{
  static NameIndex table;
  int i = table_lookup (name_index (&table, FB_A_RAW_KEY, attr_name_of), attr_name_of, name, len);
  return i < 0 ? FB_A_RAW_KEY : (FbAttrKey) i;
}

/* ---------------------------------------------------------- modules */

FbModule *
fb_module_new (const char *name)
{
  FbArena *arena = fb_arena_new ();
  FbModule *m = fb_arena_new0 (arena, FbModule, 1);
  m->arena = arena;
  m->name = fb_arena_strdup (arena, name ? name : "module");
  m->next_id = 1;
  return m;
}

void
fb_module_free (FbModule *module)
{
  if (module == NULL)
    return;
  g_clear_pointer (&module->names, g_hash_table_unref);
  fb_arena_free (module->arena);
}

/* Grows an arena-backed array; the old block stays in the arena. */
static gpointer
grow (FbArena *arena, gpointer old, int n, int *cap, gsize elem)
{
  if (n < *cap)
    return old;
  int ncap = MAX (4, *cap * 2);
  gpointer p = fb_arena_alloc (arena, elem * ncap);
  if (old && n > 0)
    memcpy (p, old, elem * n);
  *cap = ncap;
  return p;
}

FbComputation *
fb_module_add_computation (FbModule *module, const char *name)
{
  FbComputation *c = fb_arena_new0 (module->arena, FbComputation, 1);
  c->name = fb_arena_strdup (module->arena, name);
  c->module = module;
  module->comps = grow (module->arena, module->comps, module->n_comps, &module->comps_cap, sizeof (FbComputation *));
  module->comps[module->n_comps++] = c;
  return c;
}

FbComputation *
fb_module_find_computation (FbModule *module, const char *name)
{
  for (int i = 0; i < module->n_comps; i++)
    if (strcmp (module->comps[i]->name, name) == 0)
      return module->comps[i];
  return NULL;
}

void
fb_module_remove_computation (FbModule *module, FbComputation *comp)
{
  for (int i = 0; i < module->n_comps; i++)
    if (module->comps[i] == comp)
      {
        memmove (module->comps + i, module->comps + i + 1, sizeof (FbComputation *) * (module->n_comps - i - 1));
        module->n_comps--;
        if (module->entry == comp)
          module->entry = NULL;
        return;
      }
}

static void
post_order_visit (FbComputation *c, GHashTable *seen, GPtrArray *out)
{
  if (g_hash_table_contains (seen, c))
    return;
  g_hash_table_add (seen, c);
  for (FbInstr *i = c->first; i; i = i->next)
    for (int a = 0; a < i->n_attrs; a++)
      if (i->attrs[a].kind == FB_AV_COMP || i->attrs[a].kind == FB_AV_COMPS)
        for (int k = 0; k < i->attrs[a].v.comps.n; k++)
          if (i->attrs[a].v.comps.c[k])
            post_order_visit (i->attrs[a].v.comps.c[k], seen, out);
  g_ptr_array_add (out, c);
}

GPtrArray *
fb_module_post_order (FbModule *module)
{
  GPtrArray *out = g_ptr_array_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  /* Visit in text order so that unrelated computations keep their order. */
  for (int i = 0; i < module->n_comps; i++)
    if (module->comps[i] != module->entry)
      post_order_visit (module->comps[i], seen, out);
  if (module->entry)
    post_order_visit (module->entry, seen, out);
  return out;
}

int
fb_module_instr_count (FbModule *module)
{
  int n = 0;
  for (int i = 0; i < module->n_comps; i++)
    n += module->comps[i]->n_instrs;
  return n;
}

/* ---------------------------------------------------------- instructions */

static void
append_user (FbInstr *operand, FbInstr *user)
{
  FbArena *arena = operand->parent->module->arena;
  operand->users = grow (arena, operand->users, operand->n_users, &operand->users_cap, sizeof (FbInstr *));
  operand->users[operand->n_users++] = user;
}

/* @user now reads @operand through one more slot. */
static void
add_user (FbInstr *operand, FbInstr *user)
{
  for (int i = 0; i < operand->n_users; i++)
    if (operand->users[i] == user)
      {
        user->operands_unique = FALSE;   /* it read @operand already */
        return;
      }
  append_user (operand, user);
}

/* @user no longer reads @operand through one slot: unless another slot
 * still reads it, @user leaves @operand's users. When @user's operands are
 * known to be unique, no other slot can, and a tuple of thousands of
 * operands is not scanned each time one of them changes. */
static void
remove_user (FbInstr *operand, FbInstr *user)
{
  if (!user->operands_unique)
    for (int i = 0; i < user->n_operands; i++)
      if (user->operands[i] == operand)
        return;
  for (int i = 0; i < operand->n_users; i++)
    if (operand->users[i] == user)
      {
        operand->users[i] = operand->users[--operand->n_users];
        return;
      }
}

static void
link_before (FbComputation *comp, FbInstr *instr, FbInstr *before)
{
  instr->parent = comp;
  if (before == NULL)
    {
      instr->prev = comp->last;
      instr->next = NULL;
      if (comp->last)
        comp->last->next = instr;
      else
        comp->first = instr;
      comp->last = instr;
    }
  else
    {
      instr->next = before;
      instr->prev = before->prev;
      if (before->prev)
        before->prev->next = instr;
      else
        comp->first = instr;
      before->prev = instr;
    }
  comp->n_instrs++;
}

static void
unlink_instr (FbInstr *instr)
{
  FbComputation *comp = instr->parent;
  if (instr->prev)
    instr->prev->next = instr->next;
  else
    comp->first = instr->next;
  if (instr->next)
    instr->next->prev = instr->prev;
  else
    comp->last = instr->prev;
  instr->prev = instr->next = NULL;
  comp->n_instrs--;
}

FbInstr *
fb_instr_new (FbComputation *comp, FbInstr *before, FbOpcode op, FbShape *shape,
              int n_operands, FbInstr *const *operands, const char *name)
{
  FbModule *m = comp->module;
  FbInstr *instr = fb_arena_new0 (m->arena, FbInstr, 1);
  instr->id = m->next_id++;
  instr->opcode = op;
  instr->shape = shape;
  if (name != NULL)
    instr->name = fb_arena_strdup (m->arena, name);
  else
    {
      if (m->names == NULL)
        {
          m->names = g_hash_table_new (g_str_hash, g_str_equal);
          for (int c = 0; c < m->n_comps; c++)
            for (FbInstr *i = m->comps[c]->first; i; i = i->next)
              g_hash_table_add (m->names, i->name);
        }
      char buf[96];
      int64_t n = instr->id;
      do
        g_snprintf (buf, sizeof buf, "%s.%" G_GINT64_FORMAT, fb_opcode_name (op), n++);
      while (g_hash_table_contains (m->names, buf));
      instr->name = fb_arena_strdup (m->arena, buf);
    }
  if (m->names)
    g_hash_table_add (m->names, instr->name);
  instr->n_prov = 1;
  instr->prov = fb_arena_new0 (m->arena, int64_t, 1);
  instr->prov[0] = instr->id;
  link_before (comp, instr, before);
  instr->n_operands = n_operands;
  instr->operands_unique = TRUE;
  if (n_operands > 0)
    {
      instr->operands = fb_arena_new0 (m->arena, FbInstr *, n_operands);
      for (int i = 0; i < n_operands; i++)
        {
          instr->operands[i] = operands[i];
          /* A new instruction uses nothing yet, so it can only be the last
           * user added, by an earlier operand slot: no scan of all users. */
          FbInstr *o = operands[i];
          if (o && (o->n_users == 0 || o->users[o->n_users - 1] != instr))
            append_user (o, instr);
          else if (o)
            instr->operands_unique = FALSE;
        }
    }
  return instr;
}

void
fb_instr_remove (FbInstr *instr)
{
  g_return_if_fail (instr->n_users == 0);
  FbComputation *comp = instr->parent;
  FbInstr **ops = instr->operands;
  int n = instr->n_operands;
  instr->n_operands = 0;
  for (int i = 0; i < n; i++)
    if (ops[i])
      remove_user (ops[i], instr);
  instr->operands = NULL;
  if (comp->root == instr)
    comp->root = NULL;
  if (instr->opcode == FB_OP_PARAMETER && comp->params
      && instr->parameter_number >= 0 && instr->parameter_number < comp->n_params
      && comp->params[instr->parameter_number] == instr)
    comp->params[instr->parameter_number] = NULL;
  unlink_instr (instr);
}

void
fb_instr_set_operand (FbInstr *instr, int i, FbInstr *operand)
{
  g_return_if_fail (i >= 0 && i < instr->n_operands);
  FbInstr *old = instr->operands[i];
  if (old == operand)
    return;
  instr->operands[i] = operand;
  if (old)
    remove_user (old, instr);
  if (operand)
    add_user (operand, instr);
}

void
fb_instr_replace_all_uses (FbInstr *old, FbInstr *new_instr)
{
  if (old == new_instr)
    return;
  while (old->n_users > 0)
    {
      FbInstr *user = old->users[0];
      if (user == new_instr)
        {
          /* new_instr itself uses old (e.g. wrapping it): leave that use. */
          if (old->n_users == 1)
            break;
          old->users[0] = old->users[old->n_users - 1];
          old->users[old->n_users - 1] = user;
          user = old->users[0];
        }
      for (int i = 0; i < user->n_operands; i++)
        if (user->operands[i] == old)
          user->operands[i] = new_instr;
      remove_user (old, user);
      add_user (new_instr, user);
    }
  if (old->parent && old->parent->root == old)
    old->parent->root = new_instr;
}

void
fb_instr_move_before (FbInstr *instr, FbInstr *before)
{
  if (instr == before)
    return;
  FbComputation *comp = instr->parent;
  unlink_instr (instr);
  link_before (comp, instr, before);
}

const FbAttr *
fb_instr_get_attr (const FbInstr *instr, FbAttrKey key)
{
  for (int i = 0; i < instr->n_attrs; i++)
    if (instr->attrs[i].key == key)
      return &instr->attrs[i];
  return NULL;
}

const FbAttr *
fb_instr_get_raw_attr (const FbInstr *instr, const char *name)
{
  for (int i = 0; i < instr->n_attrs; i++)
    if (strcmp (instr->attrs[i].name, name) == 0)
      return &instr->attrs[i];
  return NULL;
}

FbAttr *
fb_instr_add_attr (FbInstr *instr, FbAttrKey key, const char *raw_name)
{
  FbArena *arena = instr->parent->module->arena;
  instr->attrs = grow (arena, instr->attrs, instr->n_attrs, &instr->attrs_cap, sizeof (FbAttr));
  FbAttr *a = &instr->attrs[instr->n_attrs++];
  memset (a, 0, sizeof *a);
  a->key = key;
  a->kind = fb_attr_key_kind (key);
  a->name = key == FB_A_RAW_KEY ? fb_arena_strdup (arena, raw_name) : fb_attr_key_name (key);
  return a;
}

FbAttr *
fb_instr_set_attr (FbInstr *instr, FbAttrKey key)
{
  g_return_val_if_fail (key != FB_A_RAW_KEY, NULL);
  for (int i = 0; i < instr->n_attrs; i++)
    if (instr->attrs[i].key == key)
      {
        FbAttr *a = &instr->attrs[i];
        memset (&a->v, 0, sizeof a->v);
        a->kind = fb_attr_key_kind (key);
        return a;
      }
  return fb_instr_add_attr (instr, key, NULL);
}

void
fb_instr_remove_attr (FbInstr *instr, FbAttrKey key)
{
  for (int i = 0; i < instr->n_attrs; i++)
    if (instr->attrs[i].key == key)
      {
        memmove (instr->attrs + i, instr->attrs + i + 1, sizeof (FbAttr) * (instr->n_attrs - i - 1));
        instr->n_attrs--;
        return;
      }
}

const FbDims *
fb_instr_dims (const FbInstr *instr, FbAttrKey key)
{
  const FbAttr *a = fb_instr_get_attr (instr, key);
  return a && a->kind == FB_AV_DIMS ? &a->v.dims : NULL;
}

int64_t
fb_instr_int (const FbInstr *instr, FbAttrKey key, int64_t fallback)
{
  const FbAttr *a = fb_instr_get_attr (instr, key);
  return a && (a->kind == FB_AV_INT || a->kind == FB_AV_BOOL) ? a->v.i : fallback;
}

const char *
fb_instr_str (const FbInstr *instr, FbAttrKey key)
{
  const FbAttr *a = fb_instr_get_attr (instr, key);
  return a && (a->kind == FB_AV_STRING || a->kind == FB_AV_IDENT || a->kind == FB_AV_RAW) ? a->v.s : NULL;
}

FbComputation *
fb_instr_comp (const FbInstr *instr, FbAttrKey key)
{
  const FbAttr *a = fb_instr_get_attr (instr, key);
  return a && (a->kind == FB_AV_COMP || a->kind == FB_AV_COMPS) && a->v.comps.n > 0 ? a->v.comps.c[0] : NULL;
}

void
fb_instr_set_dims (FbInstr *instr, FbAttrKey key, int n, const int64_t *v)
{
  FbAttr *a = fb_instr_set_attr (instr, key);
  a->v.dims.n = n;
  a->v.dims.v = fb_arena_new0 (instr->parent->module->arena, int64_t, MAX (n, 1));
  if (n > 0)
    memcpy (a->v.dims.v, v, sizeof (int64_t) * n);
}

void
fb_instr_set_int (FbInstr *instr, FbAttrKey key, int64_t v)
{
  FbAttr *a = fb_instr_set_attr (instr, key);
  a->v.i = v;
}

void
fb_instr_set_ident (FbInstr *instr, FbAttrKey key, const char *ident)
{
  FbAttr *a = fb_instr_set_attr (instr, key);
  a->v.s = fb_arena_strdup (instr->parent->module->arena, ident);
}

void
fb_instr_set_comp (FbInstr *instr, FbAttrKey key, FbComputation *comp)
{
  FbAttr *a = fb_instr_set_attr (instr, key);
  a->v.comps.n = 1;
  a->v.comps.c = fb_arena_new0 (instr->parent->module->arena, FbComputation *, 1);
  a->v.comps.c[0] = comp;
  a->v.comps.braced = a->kind == FB_AV_COMPS && key != FB_A_CALLS;
}

int
fb_instr_called (const FbInstr *instr, FbComputation **out, int max)
{
  int n = 0;
  for (int i = 0; i < instr->n_attrs; i++)
    if (instr->attrs[i].kind == FB_AV_COMP || instr->attrs[i].kind == FB_AV_COMPS)
      for (int k = 0; k < instr->attrs[i].v.comps.n; k++)
        {
          if (n < max)
            out[n] = instr->attrs[i].v.comps.c[k];
          n++;
        }
  return n;
}

char *
fb_instr_dup_metadata (const FbInstr *instr, const char *field)
{
  const FbAttr *a = fb_instr_get_attr (instr, FB_A_METADATA);
  if (a == NULL || a->v.s == NULL)
    return NULL;
  const char *s = a->v.s;
  gsize flen = strlen (field);
  /* Scan `key=value` pairs, skipping quoted strings. */
  for (const char *p = s; *p; p++)
    {
      if (*p == '"')
        {
          for (p++; *p && *p != '"'; p++)
            if (*p == '\\' && p[1])
              p++;
          if (!*p)
            break;
          continue;
        }
      if ((p == s || p[-1] == '{' || p[-1] == ' ' || p[-1] == ',') && strncmp (p, field, flen) == 0 && p[flen] == '=')
        {
          const char *v = p + flen + 1;
          if (*v == '"')
            {
              GString *out = g_string_new (NULL);
              for (v++; *v && *v != '"'; v++)
                {
                  if (*v == '\\' && v[1])
                    {
                      v++;
                      g_string_append_c (out, *v == 'n' ? '\n' : *v == 't' ? '\t' : *v);
                    }
                  else
                    g_string_append_c (out, *v);
                }
              return g_string_free (out, FALSE);
            }
          const char *e = v;
          while (*e && *e != ' ' && *e != '}' && *e != ',')
            e++;
          return g_strndup (v, e - v);
        }
    }
  return NULL;
}

void
fb_instr_add_prov (FbInstr *instr, int n, const int64_t *ids)
{
  FbArena *arena = instr->parent->module->arena;
  int total = instr->n_prov;
  if (n <= 8)
    {
      /* A few ids (a producer taken into a kernel): nothing to copy when
       * all of them are already there, which is common. */
      gboolean any_new = FALSE;
      for (int i = 0; i < n && !any_new; i++)
        {
          gboolean dup = FALSE;
          for (int k = 0; k < total && !dup; k++)
            dup = instr->prov[k] == ids[i];
          for (int k = 0; k < i && !dup; k++)
            dup = ids[k] == ids[i];
          any_new = !dup;
        }
      if (!any_new)
        return;
    }
  int64_t *merged = fb_arena_new0 (arena, int64_t, instr->n_prov + n);
  memcpy (merged, instr->prov, sizeof (int64_t) * instr->n_prov);
  if (n > 8 && (gint64) (total + n) * n > 512)
    {
      /* Large sets (a fusion of hundreds of instructions): a hash set keeps
       * this linear; the order is the same as the scan's below. */
      g_autoptr (GHashTable) have = g_hash_table_new (g_int64_hash, g_int64_equal);
      for (int k = 0; k < total; k++)
        g_hash_table_add (have, &merged[k]);
      for (int i = 0; i < n; i++)
        if (!g_hash_table_contains (have, &ids[i]))
          {
            merged[total] = ids[i];
            g_hash_table_add (have, &merged[total++]);
          }
      instr->prov = merged;
      instr->n_prov = total;
      return;
    }
  for (int i = 0; i < n; i++)
    {
      gboolean dup = FALSE;
      for (int k = 0; k < total && !dup; k++)
        dup = merged[k] == ids[i];
      if (!dup)
        merged[total++] = ids[i];
    }
  instr->prov = merged;
  instr->n_prov = total;
}

/* ------------------------------------------------------- arena reuse */

void
fb_arena_reset (FbArena *arena)
{
  g_return_if_fail (arena != NULL);
  run_cleanups (arena);
  Chunk *keep = arena->head;
  if (keep == NULL)
    return;
  for (Chunk *c = keep->next, *next; c != NULL; c = next)
    {
      next = c->next;
      g_free (c);
    }
  /* Only the used part was handed out; the rest is still zero. */
  memset (chunk_data (keep), 0, keep->used);
  keep->used = 0;
  keep->next = NULL;
  arena->total = 0;
}

guint64
fb_instr_walk_begin (int n)
{
  static guint64 next = 1;
  return __atomic_fetch_add (&next, (guint64) MAX (n, 1), __ATOMIC_RELAXED);
}
