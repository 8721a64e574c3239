/* SPDX-License-Identifier: MIT
 *
 * oneDNN on the CPU backend: what its sgemm and its convolutions need.
 *
 * Debian's oneDNN runs on OpenMP. Every thread that calls it is set to one
 * OpenMP thread, so that oneDNN never starts threads of its own: the pool
 * owns the cores (fb-cpu-threads.c) and splits the work itself. A oneDNN
 * built sequential (as the Flatpak builds it) needs nothing of the kind.
 *
 * A convolution runs as oneDNN's forward convolution on the canonical
 * packed operands of fb-cpu-runtime-conv.c (input [N][C][H][W], kernel
 * [O][C/G][KH][KW] with any reversal applied, output [N][O][OH][OW]). Its
 * fast kernels want blocked layouts, so the input and the kernel are
 * reordered into the layouts the primitive asks for and the result back
 * out of its layout, by oneDNN's reorders. The batch is split into one
 * piece per core; each piece is a primitive of its own, run on a thread of
 * the pool with that thread's scratch memory. When oneDNN has only its
 * reference kernel for a shape, or the window needs input dilation or
 * negative padding, the convolution is left to the backend's own methods.
 * Primitives are made once per shape and kept for the life of the process.
 *
 * A convolution padded by the kernel's size less one on every side, with
 * stride 1 and no dilation, is the gradient of another one's input (what
 * autodiff writes for the input of a convolution): out[o] sums x[c] under
 * the kernel k[o][c] slid over every position where they overlap. oneDNN's
 * backward-data convolution computes exactly that, for the forward
 * convolution with weights w[c][o] = k[o][c] flipped in both spatial
 * dimensions, without visiting the padding: about twice as fast as the
 * forward form here.
 */
#include "fb-cpu-private.h"

#include <string.h>

#ifdef FB_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#define ONEDNN_OMP 1
#endif

/* What each thread that calls oneDNN keeps: its stream and its scratch. */
typedef struct {
  dnnl_stream_t stream;
  guint8       *buf;
  gsize         size;
} ThreadState;

static dnnl_engine_t engine;

static void
thread_state_free (gpointer p)
{
  ThreadState *ts = p;
  if (ts->stream)
    dnnl_stream_destroy (ts->stream);
  g_free (ts->buf);
  g_free (ts);
}

static GPrivate thread_state = G_PRIVATE_INIT (thread_state_free);

gboolean
_fb_cpu_have_onednn (void)
{
  return TRUE;
}

void
_fb_cpu_onednn_this_thread_only (void)
{
#ifdef ONEDNN_OMP
  static __thread gboolean single;
  if (!single)
    {
      omp_set_num_threads (1);
      single = TRUE;
    }
#endif
}

static dnnl_engine_t
get_engine (void)
{
  static gsize once;
  if (g_once_init_enter (&once))
    {
      if (dnnl_engine_create (&engine, dnnl_cpu, 0) != dnnl_success)
        engine = NULL;
      g_once_init_leave (&once, 1);
    }
  return engine;
}

/* This thread's state, with room for @size bytes of scratch. */
static ThreadState *
this_thread (gsize size)
{
  ThreadState *ts = g_private_get (&thread_state);
  if (ts == NULL)
    {
      ts = g_new0 (ThreadState, 1);
      if (dnnl_stream_create (&ts->stream, get_engine (), dnnl_stream_default_flags) != dnnl_success)
        ts->stream = NULL;
      g_private_set (&thread_state, ts);
    }
  if (ts->size < size)
    {
      g_free (ts->buf);
      ts->buf = g_malloc (size);
      ts->size = size;
    }
  _fb_cpu_onednn_this_thread_only ();
  return ts;
}

/* One piece of a convolution: the primitive, the reorders into and out of
 * its layouts (NULL where the plain layout is its own), and the layouts. */
typedef struct {
  gboolean            ok;
  gboolean            bwd;     /* run as a backward-data convolution (see above) */
  dnnl_primitive_t    conv, src_in, wei_in, dst_out;
  dnnl_memory_desc_t  src_plain, wei_plain, dst_plain, src_blk, wei_blk, dst_blk, scratch;
  gsize               off_src, off_wei, off_dst, off_scratch, off_flip, total;   /* in the thread's scratch */
} Plan;

static GHashTable *plans;   /* key -> Plan */
static GMutex plans_lock;

static const char *
impl_name (const_dnnl_primitive_desc_t pd)
{
  const char *s = NULL;
  if (dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success)
    return "";
  return s ? s : "";
}

/* A reorder from @from to @to, or NULL when the two are the same layout. */
static gboolean
make_reorder (const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_t *out)
{
  *out = NULL;
  if (dnnl_memory_desc_equal (from, to))
    return TRUE;
  dnnl_primitive_desc_t pd;
  if (dnnl_reorder_primitive_desc_create (&pd, from, get_engine (), to, get_engine (), NULL) != dnnl_success)
    return FALSE;
  dnnl_status_t s = dnnl_primitive_create (out, pd);
  dnnl_primitive_desc_destroy (pd);
  return s == dnnl_success;
}

/* Padded by the kernel less one on every side, stride 1, no dilation. */
static gboolean
is_full_pad (const FbCpuConvGeom *g)
{
  return g->G == 1 && g->stride[0] == 1 && g->stride[1] == 1 && g->dil[0] == 1 && g->dil[1] == 1
         && g->pad_l[0] == g->KH - 1 && g->pad_r[0] == g->KH - 1 && g->pad_l[1] == g->KW - 1
         && g->pad_r[1] == g->KW - 1 && g->OH == g->H + g->KH - 1 && g->OW == g->W + g->KW - 1;
}

static gsize
align64 (gsize n)
{
  return (n + 63) & ~(gsize) 63;
}

/* Builds the plan of @g for a piece of @n images. */
static void
plan_build (Plan *p, const FbCpuConvGeom *g, int64_t n)
{
  memset (p, 0, sizeof *p);
  if (get_engine () == NULL)
    return;
  gboolean grouped = g->G > 1;
  dnnl_dims_t src = { n, g->C, g->H, g->W }, dst = { n, g->O, g->OH, g->OW };
  dnnl_dims_t wei = { g->O, g->C, g->KH, g->KW }, gwei = { g->G, g->O / g->G, g->C / g->G, g->KH, g->KW };
  dnnl_dims_t strides = { g->stride[0], g->stride[1] }, dil = { g->dil[0] - 1, g->dil[1] - 1 };
  dnnl_dims_t pad_l = { g->pad_l[0], g->pad_l[1] }, pad_r = { g->pad_r[0], g->pad_r[1] };
  dnnl_memory_desc_t src_any, wei_any, dst_any;
  if (dnnl_memory_desc_init_by_tag (&p->src_plain, 4, src, dnnl_f32, dnnl_nchw) != dnnl_success
      || dnnl_memory_desc_init_by_tag (&p->dst_plain, 4, dst, dnnl_f32, dnnl_nchw) != dnnl_success
      || dnnl_memory_desc_init_by_tag (&p->wei_plain, grouped ? 5 : 4, grouped ? gwei : wei, dnnl_f32,
                                       grouped ? dnnl_goihw : dnnl_oihw) != dnnl_success
      || dnnl_memory_desc_init_by_tag (&src_any, 4, src, dnnl_f32, dnnl_format_tag_any) != dnnl_success
      || dnnl_memory_desc_init_by_tag (&dst_any, 4, dst, dnnl_f32, dnnl_format_tag_any) != dnnl_success
      || dnnl_memory_desc_init_by_tag (&wei_any, grouped ? 5 : 4, grouped ? gwei : wei, dnnl_f32,
                                       dnnl_format_tag_any) != dnnl_success)
    return;
  dnnl_primitive_attr_t attr;
  if (dnnl_primitive_attr_create (&attr) != dnnl_success)
    return;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_status_t s = dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user);
  dnnl_convolution_desc_t cd;
  p->bwd = is_full_pad (g);
  if (p->bwd)
    {
      /* The forward convolution this is the input gradient of: input y's
       * shape, weights [C][O][KH][KW], output x's shape, no padding. */
      dnnl_dims_t fwei = { g->C, g->O, g->KH, g->KW }, zero = { 0, 0 }, one = { 1, 1 };
      dnnl_memory_desc_t fwei_any;
      dnnl_convolution_desc_t fd;
      dnnl_primitive_desc_t hint = NULL;
      if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag (&p->wei_plain, 4, fwei, dnnl_f32, dnnl_oihw);
      if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag (&fwei_any, 4, fwei, dnnl_f32, dnnl_format_tag_any);
      if (s == dnnl_success)
        s = dnnl_dilated_convolution_forward_desc_init (&fd, dnnl_forward_training, dnnl_convolution_direct,
                                                        &dst_any, &fwei_any, NULL, &src_any, one, zero, zero, zero);
      if (s == dnnl_success)
        s = dnnl_primitive_desc_create (&hint, &fd, NULL, get_engine (), NULL);
      if (s == dnnl_success)
        s = dnnl_dilated_convolution_backward_data_desc_init (&cd, dnnl_convolution_direct, &dst_any, &fwei_any,
                                                              &src_any, one, zero, zero, zero);
      if (s == dnnl_success)
        s = dnnl_primitive_desc_create (&pd, &cd, attr, get_engine (), hint);
      if (hint)
        dnnl_primitive_desc_destroy (hint);
    }
  else
    {
      if (s == dnnl_success)
        s = dnnl_dilated_convolution_forward_desc_init (&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                                        &src_any, &wei_any, NULL, &dst_any, strides, dil, pad_l,
                                                        pad_r);
      if (s == dnnl_success)
        s = dnnl_primitive_desc_create (&pd, &cd, attr, get_engine (), NULL);
    }
  dnnl_primitive_attr_destroy (attr);
  if (s != dnnl_success)
    return;
  /* The reference kernel is far slower than the backend's own loops. */
  if (g_str_has_prefix (impl_name (pd), "ref"))
    {
      dnnl_primitive_desc_destroy (pd);
      return;
    }
  /* src is always what reads x, dst what writes y. */
  p->src_blk = *dnnl_primitive_desc_query_md (pd, p->bwd ? dnnl_query_diff_dst_md : dnnl_query_src_md, 0);
  p->wei_blk = *dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  p->dst_blk = *dnnl_primitive_desc_query_md (pd, p->bwd ? dnnl_query_diff_src_md : dnnl_query_dst_md, 0);
  const dnnl_memory_desc_t *sc = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  if (sc)
    p->scratch = *sc;
  s = dnnl_primitive_create (&p->conv, pd);
  dnnl_primitive_desc_destroy (pd);
  if (s != dnnl_success || !make_reorder (&p->src_plain, &p->src_blk, &p->src_in)
      || !make_reorder (&p->wei_plain, &p->wei_blk, &p->wei_in)
      || !make_reorder (&p->dst_blk, &p->dst_plain, &p->dst_out))
    return;
  gsize off = 0;
  p->off_src = off;
  off += p->src_in ? align64 (dnnl_memory_desc_get_size (&p->src_blk)) : 0;
  p->off_wei = off;
  off += p->wei_in ? align64 (dnnl_memory_desc_get_size (&p->wei_blk)) : 0;
  p->off_dst = off;
  off += p->dst_out ? align64 (dnnl_memory_desc_get_size (&p->dst_blk)) : 0;
  p->off_scratch = off;
  off += align64 (dnnl_memory_desc_get_size (&p->scratch));
  p->off_flip = off;
  off += p->bwd ? align64 (sizeof (float) * g->C * g->O * g->KH * g->KW) : 0;
  p->total = off + 64;
  p->ok = TRUE;
}

static const Plan *
plan_get (const FbCpuConvGeom *g, int64_t n)
{
  const int64_t v[] = { n, g->C, g->O, g->G, g->H, g->W, g->KH, g->KW, g->OH, g->OW, g->stride[0], g->stride[1],
                        g->pad_l[0], g->pad_l[1], g->pad_r[0], g->pad_r[1], g->dil[0], g->dil[1] };
  GString *ks = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    g_string_append_printf (ks, "%" G_GINT64_FORMAT ",", v[i]);
  g_autofree char *key = g_string_free (ks, FALSE);
  g_mutex_lock (&plans_lock);
  if (plans == NULL)
    plans = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  Plan *p = g_hash_table_lookup (plans, key);
  if (p == NULL)
    {
      p = g_new (Plan, 1);
      plan_build (p, g, n);
      g_hash_table_insert (plans, g_steal_pointer (&key), p);
    }
  g_mutex_unlock (&plans_lock);
  return p;
}

static gboolean
run_prim (dnnl_primitive_t prim, dnnl_stream_t stream, int n, const dnnl_exec_arg_t *args)
{
  return dnnl_primitive_execute (prim, stream, n, args) == dnnl_success && dnnl_stream_wait (stream) == dnnl_success;
}

static dnnl_memory_t
mem (const dnnl_memory_desc_t *md, const void *data)
{
  dnnl_memory_t m = NULL;
  if (dnnl_memory_create (&m, md, get_engine (), (void *) data) != dnnl_success)
    return NULL;
  return m;
}

/* Runs @p on images [n0, n0 + n) of x into y. */
static gboolean
plan_run (const Plan *p, const FbCpuConvGeom *g, int64_t n0, const float *x, const float *k, float *y)
{
  ThreadState *ts = this_thread (p->total);
  if (ts->stream == NULL)
    return FALSE;
  guint8 *base = (guint8 *) (((guintptr) ts->buf + 63) & ~(guintptr) 63);
  const float *xs = x + n0 * g->C * g->H * g->W;
  float *ys = y + n0 * g->O * g->OH * g->OW;
  if (p->bwd)
    {
      /* w[c][o][i][j] = k[o][c][KH-1-i][KW-1-j] */
      float *w = (float *) (base + p->off_flip);
      int64_t KH = g->KH, KW = g->KW;
      for (int64_t c = 0; c < g->C; c++)
        for (int64_t o = 0; o < g->O; o++)
          for (int64_t i = 0; i < KH; i++)
            for (int64_t j = 0; j < KW; j++)
              w[((c * g->O + o) * KH + i) * KW + j] = k[((o * g->C + c) * KH + KH - 1 - i) * KW + KW - 1 - j];
      k = w;
    }
  dnnl_memory_t m[8] = { 0 };
  int nm = 0;
  dnnl_memory_t src_plain = m[nm++] = mem (&p->src_plain, xs);
  dnnl_memory_t wei_plain = m[nm++] = mem (&p->wei_plain, k);
  dnnl_memory_t dst_plain = m[nm++] = mem (&p->dst_plain, ys);
  dnnl_memory_t src = p->src_in ? (m[nm++] = mem (&p->src_blk, base + p->off_src)) : src_plain;
  dnnl_memory_t wei = p->wei_in ? (m[nm++] = mem (&p->wei_blk, base + p->off_wei)) : wei_plain;
  dnnl_memory_t dst = p->dst_out ? (m[nm++] = mem (&p->dst_blk, base + p->off_dst)) : dst_plain;
  dnnl_memory_t scratch = m[nm++] = mem (&p->scratch, base + p->off_scratch);
  gboolean ok = TRUE;
  for (int i = 0; i < nm; i++)
    ok &= m[i] != NULL;
  if (ok && p->src_in)
    ok = run_prim (p->src_in, ts->stream, 2,
                   (dnnl_exec_arg_t[]) { { DNNL_ARG_FROM, src_plain }, { DNNL_ARG_TO, src } });
  if (ok && p->wei_in)
    ok = run_prim (p->wei_in, ts->stream, 2,
                   (dnnl_exec_arg_t[]) { { DNNL_ARG_FROM, wei_plain }, { DNNL_ARG_TO, wei } });
  if (ok)
    ok = run_prim (p->conv, ts->stream, 4,
                   (dnnl_exec_arg_t[]) { { p->bwd ? DNNL_ARG_DIFF_DST : DNNL_ARG_SRC, src },
                                         { DNNL_ARG_WEIGHTS, wei },
                                         { p->bwd ? DNNL_ARG_DIFF_SRC : DNNL_ARG_DST, dst },
                                         { DNNL_ARG_SCRATCHPAD, scratch } });
  if (ok && p->dst_out)
    ok = run_prim (p->dst_out, ts->stream, 2,
                   (dnnl_exec_arg_t[]) { { DNNL_ARG_FROM, dst }, { DNNL_ARG_TO, dst_plain } });
  for (int i = 0; i < nm; i++)
    if (m[i])
      dnnl_memory_destroy (m[i]);
  return ok;
}

static gboolean
geom_fits (const FbCpuConvGeom *g)
{
  for (int a = 0; a < 2; a++)
    if (g->pad_l[a] < 0 || g->pad_r[a] < 0 || g->stride[a] < 1 || g->dil[a] < 1)
      return FALSE;
  return g->N >= 1 && g->C >= 1 && g->O >= 1 && g->G >= 1 && g->C % g->G == 0 && g->O % g->G == 0
         && g->OH >= 1 && g->OW >= 1;
}

/* The batch in pieces: one per core of the machine, as even as can be. Not
 * one per thread of the pool: oneDNN's kernels for different batch sizes
 * round differently, and the result must not depend on --threads. */
static int64_t
piece_size (const FbCpuConvGeom *g)
{
  int64_t pieces = MIN (g->N, (int64_t) g_get_num_processors ());
  return (g->N + pieces - 1) / MAX (pieces, 1);
}

gboolean
_fb_cpu_onednn_conv_applies (const FbCpuConvGeom *g)
{
  if (!geom_fits (g))
    return FALSE;
  int64_t size = piece_size (g), last = g->N - (g->N - 1) / size * size;
  return plan_get (g, size)->ok && plan_get (g, last)->ok;
}

typedef struct {
  const FbCpuConvGeom *g;
  int64_t              size;
  const float         *x, *k;
  float               *y;
  gint                 failed;
} ConvJob;

static void
conv_pieces (gpointer data, int64_t begin, int64_t end)
{
  ConvJob *j = data;
  for (int64_t i = begin; i < end; i++)
    {
      int64_t n0 = i * j->size, n = MIN (j->size, j->g->N - n0);
      const Plan *p = plan_get (j->g, n);
      if (!p->ok || !plan_run (p, j->g, n0, j->x, j->k, j->y))
        g_atomic_int_set (&j->failed, 1);
    }
}

gboolean
_fb_cpu_onednn_conv (FbCpuPool *pool, const FbCpuConvGeom *g, const float *x, const float *k, float *y)
{
  if (!geom_fits (g))
    return FALSE;
  ConvJob j = { g, piece_size (g), x, k, y, 0 };
  _fb_cpu_pool_parallel_for (pool, (g->N + j.size - 1) / j.size, 1, conv_pieces, &j);
  return !j.failed;
}

#else /* !FB_HAVE_ONEDNN */

gboolean
_fb_cpu_have_onednn (void)
{
  return FALSE;
}

void
_fb_cpu_onednn_this_thread_only (void)
{
}

gboolean
_fb_cpu_onednn_conv_applies (const FbCpuConvGeom *g)
{
  return FALSE;
}

gboolean
_fb_cpu_onednn_conv (FbCpuPool *pool, const FbCpuConvGeom *g, const float *x, const float *k, float *y)
{
  return FALSE;
}

#endif
