/* SPDX-License-Identifier: MIT
 *
 * Tests of the Fusebox JSON form: modules go to JSON and back without losing
 * anything the IR holds (ids and provenance included), for hand-written
 * modules and, when FUSEBOX_CORPUS names the corpus directory, for every real
 * module in it; broken JSON is reported at its line and column, and JSON of
 * the wrong shape with the path of the offending value.
 */
#include <string.h>

#include <json-c/json.h>

#include "fb-hlo.h"
#include "fb-json.h"

static void
assert_same (FbModule *a, FbModule *b)
{
  g_autoptr (GString) why = g_string_new (NULL);
  if (!fb_module_equal (a, b, why))
    g_error ("modules differ: %s", why->str);
  /* Equality ignores what text does not carry; JSON keeps it too. */
  g_assert_cmpint (a->next_id, ==, b->next_id);
  g_assert_cmpint (a->n_elided, ==, b->n_elided);
  for (int c = 0; c < a->n_comps; c++)
    {
      FbComputation *ca = a->comps[c], *cb = b->comps[c];
      g_assert_cmpstr (ca->name, ==, cb->name);
      g_assert_cmpint (ca->is_entry, ==, cb->is_entry);
      g_assert_cmpint (ca->is_fusion, ==, cb->is_fusion);
      g_assert_cmpint (ca->has_signature, ==, cb->has_signature);
      g_assert_cmpint (ca->n_params, ==, cb->n_params);
      for (FbInstr *x = ca->first, *y = cb->first; x; x = x->next, y = y->next)
        {
          g_assert_cmpint (x->id, ==, y->id);
          g_assert_cmpmem (x->prov, x->n_prov * sizeof (int64_t), y->prov, y->n_prov * sizeof (int64_t));
          g_assert_cmpint (x->n_users, ==, y->n_users);
        }
    }
}

/* JSON -> module -> JSON gives the same text, and the module is the same. */
static void
check_round_trip (FbModule *m, const char *what)
{
  for (int pretty = 0; pretty < 2; pretty++)
    {
      g_autofree char *json = fb_json_from_module (m, pretty);
      g_autoptr (GError) error = NULL;
      FbModule *back = fb_json_to_module (json, strlen (json), what, &error);
      g_assert_no_error (error);
      assert_same (m, back);
      g_autofree char *again = fb_json_from_module (back, pretty);
      g_assert_cmpstr (json, ==, again);
      fb_module_free (back);
    }
}

static void
test_golden_round_trip (void)
{
  const char *const names[] = { "train_step", "attrs", "literals", "stack_tables" };
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *file = g_strconcat (names[i], ".hlo", NULL);
      g_autofree char *path = g_test_build_filename (G_TEST_DIST, "data", "roundtrip", file, NULL);
      g_autoptr (GError) error = NULL;
      FbModule *m = fb_hlo_parse_file (path, 0, &error);
      g_assert_no_error (error);
      check_round_trip (m, path);
      fb_module_free (m);
    }
}

/* A module built through the API: ids that text would not give, merged
 * provenance, a tuple literal and a multi-dimensional f16 literal. */
static void
test_built_module (void)
{
  FbModule *m = fb_module_new ("built");
  FbArena *arena = m->arena;
  FbComputation *c = fb_module_add_computation (m, "main");
  c->is_entry = TRUE;
  m->entry = c;
  int64_t dims[] = { 2, 3 };
  FbShape *s = fb_shape_new_array (arena, FB_F16, 2, dims);
  fb_shape_set_default_layout (arena, s);
  FbInstr *k = fb_instr_new (c, NULL, FB_OP_CONSTANT, s, 0, NULL, "k");
  k->literal = fb_literal_new (arena, s);
  for (int i = 0; i < 6; i++)
    fb_literal_set_f64 (k->literal, i, i / 3.0);
  FbShape *ts[] = { fb_shape_new_scalar (arena, FB_S64), fb_shape_new_scalar (arena, FB_PRED) };
  FbShape *tshape = fb_shape_new_tuple (arena, 2, ts);
  FbInstr *t = fb_instr_new (c, NULL, FB_OP_CONSTANT, tshape, 0, NULL, "t");
  t->literal = fb_literal_new (arena, tshape);
  fb_literal_set_s64 (t->literal->elems[0], 0, G_MININT64);
  FbInstr *n = fb_instr_new (c, NULL, FB_OP_NEGATE, s, 1, &k, NULL);
  int64_t prov[] = { 1000, 2000 };
  fb_instr_add_prov (n, 2, prov);
  n->id = 77;
  m->next_id = 100;
  FbInstr *ops[] = { n, n };
  FbInstr *add = fb_instr_new (c, NULL, FB_OP_ADD, s, 2, ops, "sum");
  fb_instr_add_attr (add, FB_A_EPSILON, NULL)->v.f = 1e-5;
  fb_instr_add_attr (add, FB_A_METADATA, NULL)->v.s = (char *) "{op_name=\"a/b\"}";
  c->root = add;

  check_round_trip (m, "built");

  g_autofree char *json = fb_json_from_module (m, FALSE);
  FbModule *back = fb_json_to_module (json, strlen (json), NULL, NULL);
  FbInstr *nb = back->entry->first->next->next;
  g_assert_cmpint (nb->id, ==, 77);
  g_assert_cmpint (nb->n_prov, ==, 3);
  g_assert_cmpint (nb->prov[1], ==, 1000);
  g_assert_cmpfloat (fb_literal_get_f64 (back->entry->first->literal, 5), ==, fb_literal_get_f64 (k->literal, 5));
  g_assert_cmpint (fb_literal_get_s64 (back->entry->first->next->literal->elems[0], 0), ==, G_MININT64);
  g_assert_true (back->entry->root->operands[0] == nb && back->entry->root->operands[1] == nb);
  fb_module_free (back);
  fb_module_free (m);
}

typedef struct {
  const char *json;
  const char *message;   /* expected error message, after "<input>:" */
} BadCase;

static void
expect_error (const char *json, const char *message)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_json_to_module (json, strlen (json), "bad.json", &error);
  g_assert_null (m);
  g_assert_error (error, FB_ERROR, FB_ERROR_PARSE);
  if (!g_str_has_prefix (error->message, message))
    g_error ("for %s\nexpected: %s\ngot:      %s", json, message, error->message);
}

static void
test_syntax_errors (void)
{
  const BadCase cases[] = {
    { "", "bad.json:1:1: JSON syntax error: unexpected end of input" },
    { "{\n  \"format\": \"fusebox-module\",\n  \"name\": }", "bad.json:3:11: JSON syntax error" },
    { "{\"a\": [1, 2,, 3]}", "bad.json:1:13: JSON syntax error" },
    { "{\n\n  \"a\": tru }", "bad.json:3:11: JSON syntax error: boolean expected" },
    { "{\"a\": \"unterminated", "bad.json:1:20: JSON syntax error: unexpected end of input" },
    { "{} {}", "bad.json:1:4: JSON syntax error" },
    { "{\"a\": 1,}", "bad.json:1:9: JSON syntax error" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    expect_error (cases[i].json, cases[i].message);
}

/* Takes a valid module's JSON, replaces the value at a path, and checks the
 * reader names that path. */
static char *
mutate (const char *json, const char *const *path, int n, json_object *value)
{
  json_object *root = json_tokener_parse (json);
  json_object *o = root, *parent = NULL;
  const char *last = NULL;
  for (int i = 0; i < n; i++)
    {
      parent = o;
      last = path[i];
      if (g_ascii_isdigit (path[i][0]))
        o = json_object_array_get_idx (o, atoi (path[i]));
      else
        json_object_object_get_ex (o, path[i], &o);
    }
  if (g_ascii_isdigit (last[0]))
    json_object_array_put_idx (parent, atoi (last), value);
  else if (value == NULL)
    json_object_object_del (parent, last);
  else
    json_object_object_add (parent, last, value);
  char *out = g_strdup (json_object_to_json_string (root));
  json_object_put (root);
  return out;
}

static void
test_schema_errors (void)
{
  const char *text =
    "HloModule m, entry_computation_layout={(f32[2]{0})->f32[2]{0}}\n\n"
    "add {\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT s = f32[] add(x, y)\n}\n\n"
    "ENTRY main {\n  p = f32[2]{0} parameter(0)\n  z = f32[] constant(0)\n"
    "  r = f32[] reduce(p, z), dimensions={0}, to_apply=add\n"
    "  ROOT b = f32[2]{0} broadcast(r), dimensions={}\n}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "m.hlo", 0, &error);
  g_assert_no_error (error);
  g_autofree char *json = fb_json_from_module (m, FALSE);
  fb_module_free (m);

  struct {
    const char *path[6];
    int n;
    json_object *(*value) (void);
    const char *message;
  } cases[] = {
    { { "computations", "1", "instructions", "0", "shape" }, 5, NULL,
      "bad.json: computations[1].instructions[0].shape: missing" },
    { { "computations", "1", "instructions", "2", "opcode" }, 5, NULL,
      "bad.json: computations[1].instructions[2].opcode: missing" },
    { { "name" }, 1, NULL, "bad.json: name: missing" },
    { { "format" }, 1, NULL, "bad.json: format: missing" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *bad = mutate (json, cases[i].path, cases[i].n, NULL);
      expect_error (bad, cases[i].message);
    }

  /* Wrong types and bad values anywhere in the tree. */
  struct {
    const char *path[8];
    int n;
    const char *value;
    const char *message;
  } typed[] = {
    { { "computations", "1", "instructions", "0", "shape" }, 5, "\"f32[2]\"",
      "bad.json: computations[1].instructions[0].shape: expected an object (a shape), got a string" },
    { { "computations", "1", "instructions", "0", "shape", "type" }, 6, "\"f33\"",
      "bad.json: computations[1].instructions[0].shape.type: unknown element type 'f33'" },
    { { "computations", "1", "instructions", "0", "shape", "dims" }, 6, "[2, \"x\"]",
      "bad.json: computations[1].instructions[0].shape.dims[1]: expected an integer, got a string" },
    { { "computations", "1", "instructions", "0", "shape", "layout" }, 6, "[0, 0]",
      "bad.json: computations[1].instructions[0].shape.layout: dimension 0 appears twice" },
    { { "computations", "1", "instructions", "2", "operands", "1" }, 6, "\"nowhere\"",
      "bad.json: computations[1].instructions[2].operands[1]: no instruction named 'nowhere' in computation 'main'" },
    { { "computations", "1", "instructions", "2", "attributes", "1", "value" }, 7, "\"nothing\"",
      "bad.json: computations[1].instructions[2].attributes[1].value: no computation named 'nothing'" },
    { { "computations", "1", "instructions", "2", "attributes", "0", "value" }, 7, "{}",
      "bad.json: computations[1].instructions[2].attributes[0].value: expected an array of integers, got an object" },
    { { "computations", "1", "instructions", "2", "attributes", "0", "kind" }, 7, "\"window\"",
      "bad.json: computations[1].instructions[2].attributes[0].kind: attribute 'dimensions' has kind \"dims\", not \"window\"" },
    { { "computations", "1", "instructions", "1", "literal", "data" }, 6, "\"AAAA\"",
      "bad.json: computations[1].instructions[1].literal.data: holds 3 bytes, the shape needs 4" },
    { { "computations", "1", "instructions", "1", "literal", "data" }, 6, "\"A*A=\"",
      "bad.json: computations[1].instructions[1].literal.data: not base64" },
    { { "computations", "1", "instructions", "0", "parameter_number" }, 5, "-1",
      "bad.json: computations[1].instructions[0].parameter_number: -1 is out of range" },
    { { "computations", "1", "instructions", "0", "id" }, 5, "3.5",
      "bad.json: computations[1].instructions[0].id: expected an integer, got a number" },
    { { "computations", "1", "instructions", "3", "name" }, 5, "\"p\"",
      "bad.json: computations[1].instructions[3].name: 'p' is defined twice in computation 'main'" },
    { { "computations", "1", "root" }, 3, "\"ghost\"",
      "bad.json: computations[1].root: no instruction named 'ghost' in computation 'main'" },
    { { "computations", "1" }, 2, "[]",
      "bad.json: computations[1]: expected an object (a computation), got an array" },
    { { "entry" }, 1, "\"nope\"", "bad.json: entry: no computation named 'nope'" },
    { { "next_id" }, 1, "2", "bad.json: next_id: 2 is not above every instruction id" },
    { { "version" }, 1, "99", "bad.json: version: version 99 is newer than this Fusebox reads" },
    { { "is_scheduled" }, 1, "\"yes\"", "bad.json: is_scheduled: expected true or false, got a string" },
    { { "entry_computation_layout", "result" }, 2, "null",
      "bad.json: entry_computation_layout.result: missing" },
    { { "computations", "0", "instructions", "1", "parameter_number" }, 5, "0",
      "bad.json: computations[0].instructions[1].parameter_number: parameter 0 of computation 'add' is defined twice" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (typed); i++)
    {
      json_object *v = json_tokener_parse (typed[i].value);
      if (v == NULL && strcmp (typed[i].value, "null") != 0)
        g_error ("bad test value %s", typed[i].value);
      g_autofree char *bad = mutate (json, typed[i].path, typed[i].n, v);
      expect_error (bad, typed[i].message);
    }

  /* Not a module at all. */
  expect_error ("[1, 2]", "bad.json: (top level): expected an object (a Fusebox module), got an array");
  expect_error ("{\"format\": \"something-else\"}",
                "bad.json: format: expected \"fusebox-module\", got \"something-else\"");
}

/* Every node of a valid module's JSON, replaced in turn by a value of each
 * other type, gives an error or a module, never a crash; every truncation
 * gives an error. */
static int
replace_everywhere (json_object *root, json_object *node)
{
  int count = 0;
  if (json_object_is_type (node, json_type_object))
    {
      json_object_object_foreach (node, key, child)
        {
          json_object *saved = json_object_get (child);
          const char *replacements[] = { "null", "7", "-1", "\"x\"", "[]", "{}", "[\"a\", 1]", "true", "1.5" };
          for (gsize r = 0; r < G_N_ELEMENTS (replacements); r++)
            {
              json_object_object_add (node, key, json_tokener_parse (replacements[r]));
              const char *text = json_object_to_json_string (root);
              g_autoptr (GError) error = NULL;
              FbModule *m = fb_json_to_module (text, strlen (text), NULL, &error);
              g_assert_true ((m == NULL) != (error == NULL));
              fb_module_free (m);
              count++;
            }
          json_object_object_add (node, key, saved);
          count += replace_everywhere (root, saved);
        }
    }
  else if (json_object_is_type (node, json_type_array))
    {
      for (size_t i = 0; i < json_object_array_length (node); i++)
        {
          json_object *saved = json_object_get (json_object_array_get_idx (node, i));
          json_object_array_put_idx (node, i, json_object_new_string ("?"));
          const char *text = json_object_to_json_string (root);
          g_autoptr (GError) error = NULL;
          FbModule *m = fb_json_to_module (text, strlen (text), NULL, &error);
          g_assert_true ((m == NULL) != (error == NULL));
          fb_module_free (m);
          json_object_array_put_idx (node, i, saved);
          count += 1 + replace_everywhere (root, saved);
        }
    }
  return count;
}

static void
test_never_crashes (void)
{
  const char *text =
    "HloModule m, input_output_alias={ {0}: (0, {}, may-alias) }, entry_computation_layout={(f32[2]{0})->f32[2]{0}}\n\n"
    "add {\n  x = f32[] parameter(0)\n  y = f32[] parameter(1)\n  ROOT s = f32[] add(x, y)\n}\n\n"
    "ENTRY main {\n  p = f32[2]{0} parameter(0)\n  z = (f32[], s32[2]) constant((0, {1, 2}))\n"
    "  zz = f32[] get-tuple-element(z), index=0\n"
    "  r = f32[2]{0} reduce-window(p, zz), window={size=2 pad=0_1}, to_apply=add\n"
    "  c = f32[2]{0} convolution(p, p), window={size=1}, dim_labels=b0f_0io->b0f\n"
    "  sl = f32[1]{0} slice(c), slice={[0:1]}\n"
    "  ROOT b = f32[2]{0} pad(sl, zz), padding=0_1\n}\n";
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_hlo_parse (text, strlen (text), "m.hlo", 0, &error);
  g_assert_no_error (error);
  g_autofree char *json = fb_json_from_module (m, FALSE);
  fb_module_free (m);

  json_object *root = json_tokener_parse (json);
  int n = replace_everywhere (root, root);
  g_assert_cmpint (n, >, 500);
  json_object_put (root);

  gsize len = strlen (json);
  for (gsize cut = 0; cut < len - 1; cut++)
    {
      g_autoptr (GError) e = NULL;
      FbModule *t = fb_json_to_module (json, cut, NULL, &e);
      g_assert_null (t);
      g_assert_error (e, FB_ERROR, FB_ERROR_PARSE);
    }
}

static void
test_corpus_round_trip (void)
{
  const char *dir = g_getenv ("FUSEBOX_CORPUS");
  if (dir == NULL)
    {
      g_test_skip ("FUSEBOX_CORPUS is not set (point it at the directory of real .hlo modules)");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &error);
  g_assert_no_error (error);
  int n_files = 0;
  for (const char *name; (name = g_dir_read_name (d)) != NULL;)
    {
      if (!g_str_has_suffix (name, ".hlo"))
        continue;
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *text = NULL;
      gsize len = 0;
      g_file_get_contents (path, &text, &len, &error);
      g_assert_no_error (error);
      int n = fb_hlo_count_modules (text, len);
      for (int i = 0; i < n; i++)
        {
          FbModule *m = fb_hlo_parse (text, len, path, i, &error);
          g_assert_no_error (error);
          check_round_trip (m, path);
          fb_module_free (m);
        }
      n_files++;
    }
  g_assert_cmpint (n_files, >, 0);
}

static void
test_load_file (void)
{
  g_autoptr (GError) error = NULL;
  FbModule *m = fb_json_load_file ("/nonexistent/module.json", &error);
  g_assert_null (m);
  g_assert_error (error, FB_ERROR, FB_ERROR_IO);
  g_assert_true (g_str_has_prefix (error->message, "/nonexistent/module.json: "));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/compiler/json/round-trip/golden", test_golden_round_trip);
  g_test_add_func ("/compiler/json/round-trip/built", test_built_module);
  g_test_add_func ("/compiler/json/round-trip/corpus", test_corpus_round_trip);
  g_test_add_func ("/compiler/json/errors/syntax", test_syntax_errors);
  g_test_add_func ("/compiler/json/errors/schema", test_schema_errors);
  g_test_add_func ("/compiler/json/errors/io", test_load_file);
  g_test_add_func ("/compiler/json/errors/never-crashes", test_never_crashes);
  return g_test_run ();
}
