/* SPDX-License-Identifier: MIT
 *
 * Random numbers in the reference interpreter.
 *
 * rng-bit-generator is bit-exact with XLA's expansion of the op (the one its
 * CPU and GPU compilers run). The state is a u64 vector whose first element
 * is the key.
 * - Threefry-2x32 (20 rounds): the counter is state[1]. For 32-bit outputs
 *   the result is split in two halves along its first even dimension (or its
 *   largest one); element i of the half shape runs the block cipher on
 *   counter + i and its two output words fill the two halves, interleaved
 *   along the split dimension. 64-bit outputs use one block per element
 *   (low word first); 8- and 16-bit outputs keep the low bits of the 32-bit
 *   stream. The new counter is the old one plus the blocks used.
 * - Philox-4x32 (10 rounds): the 128-bit counter is state[1] (low) and
 *   state[2] (high); a two-element state uses state[1] and state[0] and
 *   returns only the low word. Each block gives four 32-bit words in order
 *   (or two 64-bit words, low word first).
 * - rng_default is Philox, as XLA's CPU and GPU compilers expand it.
 *
 * The older `rng` op (uniform and normal distributions) is seeded from the
 * instruction id and how often it has run; it is deterministic from run to
 * run but not bit-exact with XLA, whose expansion of it is backend-defined.
 */
#include "fb-interp-private.h"

#include <math.h>
#include <string.h>


/* --------------------------------------------------------- the ciphers */

static inline uint32_t
rotl32 (uint32_t v, int d)
{
  return (v << d) | (v >> (32 - d));
}

static void
threefry2x32 (const uint32_t key[2], const uint32_t in[2], uint32_t out[2])
{
  static const int rot[8] = { 13, 15, 26, 6, 17, 29, 16, 24 };
  uint32_t ks[3] = { key[0], key[1], 0x1BD11BDAu ^ key[0] ^ key[1] };
  uint32_t x0 = in[0] + ks[0], x1 = in[1] + ks[1];

  for (int block = 0; block < 5; block++)
    {
      const int *r = rot + (block % 2) * 4;
      for (int j = 0; j < 4; j++)
        {
          x0 += x1;
          x1 = rotl32 (x1, r[j]);
          x1 ^= x0;
        }
      /* key injection number block + 1 */
      x0 += ks[(block + 1) % 3];
      x1 += ks[(block + 2) % 3] + (uint32_t) (block + 1);
    }
  out[0] = x0;
  out[1] = x1;
}

static void
philox4x32 (const uint32_t key_in[2], const uint32_t in[4], uint32_t out[4])
{
  uint32_t k0 = key_in[0], k1 = key_in[1];
  uint32_t x[4] = { in[0], in[1], in[2], in[3] };
  for (int round = 0; round < 10; round++)
    {
      uint64_t p0 = (uint64_t) x[0] * 0xD2511F53u;
      uint64_t p1 = (uint64_t) x[2] * 0xCD9E8D57u;
      uint32_t y0 = (uint32_t) (p1 >> 32) ^ x[1] ^ k0;
      uint32_t y1 = (uint32_t) p1;
      uint32_t y2 = (uint32_t) (p0 >> 32) ^ x[3] ^ k1;
      uint32_t y3 = (uint32_t) p0;
      x[0] = y0; x[1] = y1; x[2] = y2; x[3] = y3;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
  memcpy (out, x, sizeof x);
}

/* ------------------------------------------------------------- helpers */

static inline void
store_bits (FbLiteral *lit, int64_t i, int bytes, uint64_t v)
{
  guint8 *p = lit->data + i * bytes;
  switch (bytes)
    {
    case 1: p[0] = (guint8) v; break;
    case 2: { uint16_t x = (uint16_t) v; memcpy (p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t) v; memcpy (p, &x, 4); break; }
    default: memcpy (p, &v, 8); break;
    }
}

static inline uint64_t
state_at (const FbLiteral *state, int i)
{
  uint64_t v;
  memcpy (&v, state->data + i * 8, 8);
  return v;
}

static inline void
state_set (FbLiteral *state, int i, uint64_t v)
{
  memcpy (state->data + i * 8, &v, 8);
}

/* Threefry with 32-bit words: the split-in-halves layout. Returns the
 * number of blocks used. */
static int64_t
threefry_bits32 (const uint32_t key[2], uint64_t counter, const FbShape *shape, FbLiteral *data, int bytes)
{
  int rank = shape->rank;
  int64_t n = fb_shape_elements (shape);
  if (rank == 0)
    {
      uint32_t in[2] = { (uint32_t) counter, (uint32_t) (counter >> 32) }, o[2];
      threefry2x32 (key, in, o);
      store_bits (data, 0, bytes, o[0]);
      return 1;
    }
  int split = -1;
  for (int i = 0; i < rank; i++)
    if (shape->dims[i] % 2 == 0)
      {
        split = i;
        break;
      }
  if (split < 0)
    for (int i = 0; i < rank; i++)
      if (split < 0 || shape->dims[i] > shape->dims[split])
        split = i;

  g_autofree int64_t *half = g_new (int64_t, (gsize) MAX (rank, 1));
  g_autofree int64_t *idx = g_new0 (int64_t, (gsize) MAX (rank, 1));
  int64_t half_n = 1;
  for (int i = 0; i < rank; i++)
    {
      half[i] = i == split ? (shape->dims[i] + 1) / 2 : shape->dims[i];
      half_n *= half[i];
    }
  for (int64_t e = 0; e < n; e++)
    {
      int64_t lin = 0;
      for (int i = 0; i < rank; i++)
        lin = lin * half[i] + (i == split ? idx[i] / 2 : idx[i]);
      uint64_t c = counter + (uint64_t) lin;
      uint32_t in[2] = { (uint32_t) c, (uint32_t) (c >> 32) }, o[2];
      threefry2x32 (key, in, o);
      store_bits (data, e, bytes, o[idx[split] % 2]);
      for (int i = rank - 1; i >= 0; i--)
        {
          if (++idx[i] < shape->dims[i])
            break;
          idx[i] = 0;
        }
    }
  return half_n;
}

/* Philox blocks for element i of a stream of 32-bit words, starting at the
 * 128-bit counter (lo, hi). */
static void
philox_block (const uint32_t key[2], uint64_t lo, uint64_t hi, uint64_t v, uint32_t o[4])
{
  uint64_t l = lo + v;
  uint64_t h = l < lo ? hi + 1 : hi;
  uint32_t in[4] = { (uint32_t) l, (uint32_t) (l >> 32), (uint32_t) h, (uint32_t) (h >> 32) };
  philox4x32 (key, in, o);
}

/* ------------------------------------------------------------- rng-bit-generator */

gboolean
_fb_interp_rng_bit_generator (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops,
                              FbLiteral **out, GError **error)
{
  const FbShape *shape = instr->shape;
  if (instr->n_operands != 1 || !fb_shape_is_tuple (shape) || shape->n_elems != 2)
    {
      _fb_interp_error (error, instr, "rng-bit-generator takes one state and returns (state, bits)");
      return FALSE;
    }
  const FbLiteral *state = ops[0];
  if (state->shape->type != FB_U64 || state->shape->rank != 1 || state->shape->dims[0] < 2)
    {
      _fb_interp_error (error, instr, "rng-bit-generator needs a u64 state with at least 2 elements");
      return FALSE;
    }
  if (!fb_shape_compatible (shape->elems[0], state->shape))
    {
      _fb_interp_error (error, instr, "rng-bit-generator must return a state shaped like its operand");
      return FALSE;
    }
  const FbShape *dshape = shape->elems[1];
  FbElemType dt = dshape->type;
  int bits = fb_elem_type_bits (dt);
  FbElemKind kind = fb_elem_type_kind (dt);
  if (!fb_shape_is_array (dshape) || kind == FB_KIND_PRED || kind == FB_KIND_COMPLEX
      || (bits != 8 && bits != 16 && bits != 32 && bits != 64))
    {
      _fb_interp_error (error, instr, "rng-bit-generator cannot produce %s", fb_elem_type_name (dt));
      return FALSE;
    }

  const char *alg = fb_instr_str (instr, FB_A_ALGORITHM);
  gboolean threefry;
  if (alg == NULL || g_ascii_strcasecmp (alg, "rng_default") == 0
      || g_ascii_strcasecmp (alg, "rng_philox") == 0)
    threefry = FALSE;
  else if (g_ascii_strcasecmp (alg, "rng_three_fry") == 0)
    threefry = TRUE;
  else
    {
      _fb_interp_error (error, instr, "unknown rng algorithm \"%s\" (known: rng_default, rng_three_fry, rng_philox)", alg);
      return FALSE;
    }

  FbLiteral *res = fb_literal_new (ctx->arena, (FbShape *) shape);
  FbLiteral *new_state = res->elems[0], *data = res->elems[1];
  int n_state = (int) state->shape->dims[0];
  memcpy (new_state->data, state->data, (gsize) n_state * 8);

  uint64_t key64 = state_at (state, 0);
  uint32_t key[2] = { (uint32_t) key64, (uint32_t) (key64 >> 32) };
  int64_t n = fb_shape_elements (dshape);
  int bytes = fb_elem_type_bytes (dt);

  if (threefry)
    {
      uint64_t counter = state_at (state, 1);
      int64_t used;
      if (bits == 64)
        {
          for (int64_t i = 0; i < n; i++)
            {
              uint64_t c = counter + (uint64_t) i;
              uint32_t in[2] = { (uint32_t) c, (uint32_t) (c >> 32) }, o[2];
              threefry2x32 (key, in, o);
              store_bits (data, i, 8, (uint64_t) o[0] | ((uint64_t) o[1] << 32));
            }
          used = n;
        }
      else
        used = threefry_bits32 (key, counter, dshape, data, bytes);
      state_set (new_state, 1, counter + (uint64_t) used);
    }
  else
    {
      uint64_t lo = state_at (state, 1);
      uint64_t hi = n_state >= 3 ? state_at (state, 2) : state_at (state, 0);
      int64_t blocks;
      uint32_t o[4];
      if (bits == 64)
        {
          blocks = (n + 1) / 2;
          for (int64_t v = 0; v < blocks; v++)
            {
              philox_block (key, lo, hi, (uint64_t) v, o);
              for (int j = 0; j < 2 && v * 2 + j < n; j++)
                store_bits (data, v * 2 + j, 8, (uint64_t) o[2 * j] | ((uint64_t) o[2 * j + 1] << 32));
            }
        }
      else
        {
          blocks = (n + 3) / 4;
          for (int64_t v = 0; v < blocks; v++)
            {
              philox_block (key, lo, hi, (uint64_t) v, o);
              for (int j = 0; j < 4 && v * 4 + j < n; j++)
                store_bits (data, v * 4 + j, bytes, o[j]);
            }
        }
      uint64_t nlo = lo + (uint64_t) blocks;
      uint64_t nhi = nlo < lo ? hi + 1 : hi;
      state_set (new_state, 1, nlo);
      if (n_state >= 3)
        state_set (new_state, 2, nhi);
    }
  *out = res;
  return TRUE;
}

/* ------------------------------------------------------------------ rng */

gboolean
_fb_interp_rng (FbInterp *ctx, FbInstr *instr, FbLiteral *const *ops,
                uint64_t seed, FbLiteral **out, GError **error)
{
  const char *dist = fb_instr_str (instr, FB_A_DISTRIBUTION);
  gboolean normal;
  if (dist != NULL && g_ascii_strcasecmp (dist, "rng_uniform") == 0)
    normal = FALSE;
  else if (dist != NULL && g_ascii_strcasecmp (dist, "rng_normal") == 0)
    normal = TRUE;
  else
    {
      _fb_interp_error (error, instr, "rng needs distribution=rng_uniform or rng_normal");
      return FALSE;
    }
  if (instr->n_operands != 2 || !fb_shape_is_array (instr->shape)
      || fb_shape_elements (ops[0]->shape) != 1 || fb_shape_elements (ops[1]->shape) != 1)
    {
      _fb_interp_error (error, instr, "rng takes two scalar parameters and returns an array");
      return FALSE;
    }
  FbElemType t = instr->shape->type;
  FbElemKind kind = fb_elem_type_kind (t);
  if (kind != FB_KIND_FLOAT && kind != FB_KIND_SINT && kind != FB_KIND_UINT)
    {
      _fb_interp_error (error, instr, "rng cannot produce %s", fb_elem_type_name (t));
      return FALSE;
    }
  if (normal && kind != FB_KIND_FLOAT)
    {
      _fb_interp_error (error, instr, "rng_normal needs a floating-point result");
      return FALSE;
    }

  FbLiteral *res = fb_literal_new (ctx->arena, instr->shape);
  int64_t n = fb_shape_elements (instr->shape);
  uint32_t key[2] = { (uint32_t) seed, (uint32_t) (seed >> 32) };
  for (int64_t i = 0; i < n; i++)
    {
      uint32_t o[4];
      philox_block (key, 0, (uint64_t) instr->id, (uint64_t) i, o);
      uint64_t w0 = (uint64_t) o[0] | ((uint64_t) o[1] << 32);
      uint64_t w1 = (uint64_t) o[2] | ((uint64_t) o[3] << 32);
      double u0 = (double) (w0 >> 11) * 0x1.0p-53;
      if (kind == FB_KIND_FLOAT)
        {
          double a = fb_literal_get_f64 (ops[0], 0), b = fb_literal_get_f64 (ops[1], 0);
          double v;
          if (normal)
            {
              double u1 = (double) ((w1 >> 11) + 1) * 0x1.0p-53;   /* (0, 1] */
              v = a + b * sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u0);
            }
          else
            {
              v = a + (b - a) * u0;
              if (v >= b && b > a)
                v = nextafter (b, a);
            }
          fb_literal_set_f64 (res, i, v);
        }
      else
        {
          int64_t a = fb_literal_get_s64 (ops[0], 0), b = fb_literal_get_s64 (ops[1], 0);
          uint64_t range = (uint64_t) b - (uint64_t) a;
          int64_t v = (kind == FB_KIND_SINT ? b > a : (uint64_t) b > (uint64_t) a)
                      ? (int64_t) ((uint64_t) a + w0 % range) : a;
          fb_literal_set_s64 (res, i, v);
        }
    }
  *out = res;
  return TRUE;
}
