/* SPDX-License-Identifier: MIT
 *
 * rng-bit-generator on the CPU backend, bit for bit the stream the reference
 * interpreter produces (and XLA's expansion of the op).
 *
 * The state operand is a u64 vector whose element 0 is the 64-bit key.
 *   - rng_three_fry: Threefry-2x32 with 20 rounds; the 64-bit counter is
 *     state[1]. A 64-bit output takes one block per element (low word
 *     first). Narrower outputs split the result shape in two halves along
 *     its first even dimension (else its largest): one block per element of
 *     the half shape, whose two words go to neighbouring elements along that
 *     dimension; 8- and 16-bit outputs keep the low bits of each word.
 *   - rng_philox and rng_default: Philox-4x32 with 10 rounds; the 128-bit
 *     counter is state[1] (low) and state[2] (high), or state[0] as the high
 *     half when the state has two elements. A block gives four 32-bit
 *     elements, or two 64-bit ones (low word first).
 * The returned state advances the counter by the number of blocks used and
 * keeps every other element. Blocks are independent, so they are computed
 * in parallel over the thread pool.
 */
#include "fb-cpu-private.h"

#include <string.h>

#define MAX_RANK 16

/* ------------------------------------------------------------ ciphers */

static inline uint32_t
rotate_left (uint32_t v, unsigned n)
{
  return (v << n) | (v >> (32 - n));
}

/* Threefry-2x32, 20 rounds: five groups of four rounds, each group
 * followed by a key injection. */
static inline void
threefry (uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t *w0, uint32_t *w1)
{
  static const unsigned rotations[2][4] = { { 13, 15, 26, 6 }, { 17, 29, 16, 24 } };
  const uint32_t keys[3] = { k0, k1, k0 ^ k1 ^ 0x1BD11BDAu };
  uint32_t x = c0 + keys[0], y = c1 + keys[1];
  for (unsigned group = 0; group < 5; group++)
    {
      const unsigned *r = rotations[group & 1];
      for (unsigned j = 0; j < 4; j++)
        {
          x += y;
          y = rotate_left (y, r[j]) ^ x;
        }
      x += keys[(group + 1) % 3];
      y += keys[(group + 2) % 3] + group + 1;
    }
  *w0 = x;
  *w1 = y;
}

/* Philox-4x32, 10 rounds, on the 128-bit counter (lo, hi). */
static inline void
philox (uint32_t k0, uint32_t k1, uint64_t lo, uint64_t hi, uint32_t w[4])
{
  uint32_t a = (uint32_t) lo, b = (uint32_t) (lo >> 32), c = (uint32_t) hi, d = (uint32_t) (hi >> 32);
  for (int round = 0; round < 10; round++)
    {
      uint64_t ma = (uint64_t) a * 0xD2511F53u, mc = (uint64_t) c * 0xCD9E8D57u;
      uint32_t na = (uint32_t) (mc >> 32) ^ b ^ k0;
      uint32_t nc = (uint32_t) (ma >> 32) ^ d ^ k1;
      b = (uint32_t) mc;
      d = (uint32_t) ma;
      a = na;
      c = nc;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
  w[0] = a;
  w[1] = b;
  w[2] = c;
  w[3] = d;
}

/* ------------------------------------------------------------- output */

static inline void
put (guint8 *data, int64_t i, int bytes, uint64_t v)
{
  switch (bytes)
    {
    case 1: data[i] = (guint8) v; break;
    case 2: { uint16_t h = (uint16_t) v; memcpy (data + 2 * i, &h, 2); break; }
    case 4: { uint32_t s = (uint32_t) v; memcpy (data + 4 * i, &s, 4); break; }
    default: memcpy (data + 8 * i, &v, 8); break;
    }
}

static inline uint64_t
state_get (const FbLiteral *state, int i)
{
  uint64_t v;
  memcpy (&v, state->data + 8 * i, 8);
  return v;
}

static inline void
state_put (FbLiteral *state, int i, uint64_t v)
{
  memcpy (state->data + 8 * i, &v, 8);
}

typedef struct {
  uint32_t  k0, k1;
  uint64_t  lo, hi;            /* counter; threefry uses lo only */
  guint8   *data;
  int       bytes;
  int64_t   n;                 /* elements */
  /* threefry, narrow outputs: the shape and its split dimension */
  int       rank, split;
  int64_t   dims[MAX_RANK], half[MAX_RANK];
} RngJob;

static void
philox_range (gpointer user_data, int64_t begin, int64_t end)
{
  RngJob *j = user_data;
  int per = j->bytes == 8 ? 2 : 4;
  for (int64_t blk = begin; blk < end; blk++)
    {
      uint64_t lo = j->lo + (uint64_t) blk;
      uint64_t hi = lo < j->lo ? j->hi + 1 : j->hi;
      uint32_t w[4];
      philox (j->k0, j->k1, lo, hi, w);
      for (int e = 0; e < per && blk * per + e < j->n; e++)
        {
          uint64_t v = per == 2 ? (uint64_t) w[2 * e] | ((uint64_t) w[2 * e + 1] << 32) : w[e];
          put (j->data, blk * per + e, j->bytes, v);
        }
    }
}

static void
threefry64_range (gpointer user_data, int64_t begin, int64_t end)
{
  RngJob *j = user_data;
  for (int64_t i = begin; i < end; i++)
    {
      uint64_t c = j->lo + (uint64_t) i;
      uint32_t w0, w1;
      threefry (j->k0, j->k1, (uint32_t) c, (uint32_t) (c >> 32), &w0, &w1);
      put (j->data, i, 8, (uint64_t) w0 | ((uint64_t) w1 << 32));
    }
}

/* Over the blocks, i.e. the elements of the half shape: each fills the
 * element at 2*h and, when it exists, 2*h+1 along the split dimension. */
static void
threefry32_range (gpointer user_data, int64_t begin, int64_t end)
{
  RngJob *j = user_data;
  int64_t stride = 1;                        /* of the split dimension in the full shape */
  for (int d = j->rank - 1; d > j->split; d--)
    stride *= j->dims[d];
  for (int64_t blk = begin; blk < end; blk++)
    {
      /* Unravel @blk in the half shape and ravel it in the full one. */
      int64_t rest = blk, full = 0, mul = 1, hs = 0;
      for (int d = j->rank - 1; d >= 0; d--)
        {
          int64_t i = rest % j->half[d];
          rest /= j->half[d];
          if (d == j->split)
            {
              hs = i;
              i *= 2;
            }
          full += i * mul;
          mul *= j->dims[d];
        }
      uint64_t c = j->lo + (uint64_t) blk;
      uint32_t w0, w1;
      threefry (j->k0, j->k1, (uint32_t) c, (uint32_t) (c >> 32), &w0, &w1);
      put (j->data, full, j->bytes, w0);
      if (2 * hs + 1 < j->dims[j->split])
        put (j->data, full + stride, j->bytes, w1);
    }
}

gboolean
_fb_cpu_rng_bit_generator (FbCpuRt *rt, const FbInstr *instr, FbLiteral *const *ops, FbLiteral *out,
                           GError **error)
{
  const FbLiteral *state = ops[0];
  if (instr->n_operands != 1 || out->elems == NULL || out->n_elems != 2)
    {
      _fb_cpu_error (error, instr, "rng-bit-generator takes one state and returns (state, bits)");
      return FALSE;
    }
  if (state->shape->type != FB_U64 || state->shape->rank != 1 || state->shape->dims[0] < 2)
    {
      _fb_cpu_error (error, instr, "rng-bit-generator needs a u64 state with at least 2 elements");
      return FALSE;
    }
  FbLiteral *new_state = out->elems[0], *bits = out->elems[1];
  if (!fb_shape_compatible (new_state->shape, state->shape))
    {
      _fb_cpu_error (error, instr, "rng-bit-generator must return a state shaped like its operand");
      return FALSE;
    }
  FbElemType t = bits->shape->type;
  FbElemKind kind = fb_elem_type_kind (t);
  int nbits = fb_elem_type_bits (t);
  if (!fb_shape_is_array (bits->shape) || kind == FB_KIND_PRED || kind == FB_KIND_COMPLEX
      || (nbits != 8 && nbits != 16 && nbits != 32 && nbits != 64) || bits->shape->rank > MAX_RANK)
    {
      _fb_cpu_error (error, instr, "rng-bit-generator cannot produce %s", fb_elem_type_name (t));
      return FALSE;
    }
  const char *alg = fb_instr_str (instr, FB_A_ALGORITHM);
  gboolean use_threefry = FALSE;
  if (alg != NULL && g_ascii_strcasecmp (alg, "rng_three_fry") == 0)
    use_threefry = TRUE;
  else if (alg != NULL && g_ascii_strcasecmp (alg, "rng_default") != 0 && g_ascii_strcasecmp (alg, "rng_philox") != 0)
    {
      _fb_cpu_error (error, instr, "unknown rng algorithm \"%s\" (known: rng_default, rng_three_fry, rng_philox)", alg);
      return FALSE;
    }

  int n_state = (int) state->shape->dims[0];
  uint64_t key = state_get (state, 0);
  RngJob j = { .k0 = (uint32_t) key, .k1 = (uint32_t) (key >> 32), .lo = state_get (state, 1),
               .data = bits->data, .bytes = fb_elem_type_bytes (t), .n = fb_shape_elements (bits->shape) };
  uint64_t hi = n_state >= 3 ? state_get (state, 2) : key;
  if (new_state->data != state->data)
    memmove (new_state->data, state->data, (gsize) n_state * 8);

  int64_t blocks;
  if (!use_threefry)
    {
      int per = j.bytes == 8 ? 2 : 4;
      j.hi = hi;
      blocks = (j.n + per - 1) / per;
      _fb_cpu_pool_parallel_for (rt->pool, blocks, 1024, philox_range, &j);
      uint64_t lo = j.lo + (uint64_t) blocks;
      state_put (new_state, 1, lo);
      if (n_state >= 3)
        state_put (new_state, 2, lo < j.lo ? hi + 1 : hi);
      return TRUE;
    }

  if (j.bytes == 8)
    {
      blocks = j.n;
      _fb_cpu_pool_parallel_for (rt->pool, blocks, 1024, threefry64_range, &j);
    }
  else
    {
      /* A scalar is a rank-1 shape of one element here: one block, word 0. */
      const FbShape *s = bits->shape;
      j.rank = MAX (s->rank, 1);
      for (int d = 0; d < j.rank; d++)
        j.dims[d] = s->rank == 0 ? 1 : s->dims[d];
      j.split = -1;
      for (int d = 0; d < j.rank && j.split < 0; d++)
        if (j.dims[d] % 2 == 0)
          j.split = d;
      if (j.split < 0)
        {
          j.split = 0;
          for (int d = 1; d < j.rank; d++)
            if (j.dims[d] > j.dims[j.split])
              j.split = d;
        }
      blocks = 1;
      for (int d = 0; d < j.rank; d++)
        {
          j.half[d] = d == j.split ? (j.dims[d] + 1) / 2 : j.dims[d];
          blocks *= j.half[d];
        }
      if (j.n == 0)
        blocks = 0;
      _fb_cpu_pool_parallel_for (rt->pool, blocks, 1024, threefry32_range, &j);
    }
  state_put (new_state, 1, j.lo + (uint64_t) blocks);
  return TRUE;
}
