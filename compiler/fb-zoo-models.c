/* SPDX-License-Identifier: MIT
 *
 * The zoo's models: the forward pass and loss of each, written with the
 * builder. fb-zoo.c adds gradients and the optimizer around them. Layers are
 * small functions (dense, conv, layer norm, attention) so the models read
 * like their textbook diagrams. Images are NCHW and convolution kernels OIHW
 * (dim_labels bf01_oi01->bf01), as PyTorch lays them out.
 */
#include <math.h>

#include "fb-zoo-private.h"

#define DIMS(...) ((const int64_t[]) { __VA_ARGS__ })

/* -------------------------------------------------------------- layers */

/* x[N, in] . w[in, out] + b[out] */
static FbInstr *
dense (FbZooCtx *z, FbInstr *x, int64_t out, const char *name, const char *init)
{
  FbBuilder *b = z->b;
  if (!fb_builder_ok (b))
    return NULL;
  int64_t in = x->shape->dims[1], n = x->shape->dims[0];
  g_autofree char *wname = g_strdup_printf ("%s.kernel", name);
  g_autofree char *bname = g_strdup_printf ("%s.bias", name);
  fb_builder_push_scope (b, name);
  FbInstr *w = _fb_zoo_weight (z, wname, 2, DIMS (in, out), init, in, out, 0);
  FbInstr *bias = _fb_zoo_weight (z, bname, 1, DIMS (out), "zeros", 0, 0, 0);
  FbInstr *y = fb_b_matmul (b, x, w);
  y = fb_b_add (b, y, fb_b_broadcast (b, bias, 2, DIMS (n, out), DIMS (1)));
  fb_builder_pop_scope (b);
  return y;
}

static FbInstr *
relu (FbZooCtx *z, FbInstr *x)
{
  if (!fb_builder_ok (z->b))
    return NULL;
  return fb_b_max (z->b, x, fb_b_full (z->b, x->shape, 0.0));
}

/* Mean softmax cross-entropy of logits[N, C] against one-hot labels[N, C]. */
static FbInstr *
softmax_cross_entropy (FbZooCtx *z, FbInstr *logits, FbInstr *onehot)
{
  FbBuilder *b = z->b;
  if (!fb_builder_ok (b))
    return NULL;
  int64_t n = logits->shape->dims[0];
  fb_builder_push_scope (b, "loss");
  FbInstr *m = fb_b_reduce_max (b, logits, 1, DIMS (1));
  FbInstr *shifted = fb_b_sub (b, logits, fb_b_broadcast (b, m, 2, logits->shape->dims, DIMS (0)));
  FbInstr *lse = fb_b_log (b, fb_b_reduce_sum (b, fb_b_exp (b, shifted), 1, DIMS (1)));
  FbInstr *logp = fb_b_sub (b, shifted, fb_b_broadcast (b, lse, 2, logits->shape->dims, DIMS (0)));
  FbInstr *total = fb_b_sum_all (b, fb_b_mul (b, onehot, logp));
  FbInstr *loss = fb_b_mul (b, total, fb_b_const_f32 (b, (float) (-1.0 / (double) n)));
  fb_builder_pop_scope (b);
  return loss;
}

/* NCHW convolution with an OIHW kernel, "same" padding for odd sizes when
 * @same, plus a bias per output channel when @bias. */
static FbInstr *
conv2d (FbZooCtx *z, FbInstr *x, int64_t out, int64_t k, gboolean same, gboolean bias,
        const char *name)
{
  FbBuilder *b = z->b;
  if (!fb_builder_ok (b))
    return NULL;
  int64_t in = x->shape->dims[1];
  g_autofree char *wname = g_strdup_printf ("%s.kernel", name);
  g_autofree char *bname = g_strdup_printf ("%s.bias", name);
  fb_builder_push_scope (b, name);
  FbInstr *w = _fb_zoo_weight (z, wname, 4, DIMS (out, in, k, k), "he_uniform", in * k * k, out * k * k, 0);
  FbConvWindow win = { 0 };
  if (same)
    for (int i = 0; i < 2; i++)
      win.pad_lo[i] = win.pad_hi[i] = (k - 1) / 2;
  FbInstr *y = fb_b_conv (b, x, w, "bf01_oi01->bf01", &win, 1, 1);
  if (bias && y)
    {
      FbInstr *bv = _fb_zoo_weight (z, bname, 1, DIMS (out), "zeros", 0, 0, 0);
      y = fb_b_add (b, y, fb_b_broadcast (b, bv, 4, y->shape->dims, DIMS (1)));
    }
  fb_builder_pop_scope (b);
  return y;
}

/* 2x2 max pooling with stride 2 over the spatial dimensions of NCHW. */
static FbInstr *
max_pool2 (FbZooCtx *z, FbInstr *x)
{
  FbBuilder *b = z->b;
  if (!fb_builder_ok (b))
    return NULL;
  FbWindowDim win[4] = {
    { .size = 1, .stride = 1 }, { .size = 1, .stride = 1 },
    { .size = 2, .stride = 2 }, { .size = 2, .stride = 2 },
  };
  return fb_b_reduce_window (b, x, fb_b_identity (b, FB_F32, FB_OP_MAXIMUM), FB_OP_MAXIMUM, win);
}

/* Layer norm over the last dimension of x[B, S, D], with gain and bias. */
static FbInstr *
layer_norm (FbZooCtx *z, FbInstr *x, const char *name)
{
  FbBuilder *b = z->b;
  if (!fb_builder_ok (b))
    return NULL;
  const int64_t *d = x->shape->dims;
  g_autofree char *gname = g_strdup_printf ("%s.scale", name);
  g_autofree char *bname = g_strdup_printf ("%s.bias", name);
  fb_builder_push_scope (b, name);
  FbInstr *g = _fb_zoo_weight (z, gname, 1, DIMS (d[2]), "ones", 0, 0, 0);
  FbInstr *beta = _fb_zoo_weight (z, bname, 1, DIMS (d[2]), "zeros", 0, 0, 0);
  double inv_d = 1.0 / (double) d[2];
  FbInstr *mean = fb_b_binary_scalar (b, FB_OP_MULTIPLY, fb_b_reduce_sum (b, x, 1, DIMS (2)), inv_d);
  FbInstr *xc = fb_b_sub (b, x, fb_b_broadcast (b, mean, 3, d, DIMS (0, 1)));
  FbInstr *var = fb_b_binary_scalar (b, FB_OP_MULTIPLY, fb_b_reduce_sum (b, fb_b_mul (b, xc, xc), 1, DIMS (2)),
                                     inv_d);
  FbInstr *inv = fb_b_rsqrt (b, fb_b_binary_scalar (b, FB_OP_ADD, var, 1e-5));
  FbInstr *y = fb_b_mul (b, xc, fb_b_broadcast (b, inv, 3, d, DIMS (0, 1)));
  y = fb_b_mul (b, y, fb_b_broadcast (b, g, 3, d, DIMS (2)));
  y = fb_b_add (b, y, fb_b_broadcast (b, beta, 3, d, DIMS (2)));
  fb_builder_pop_scope (b);
  return y;
}

/* x[B, S, in] . w[in, out] (+ b[out]) */
static FbInstr *
dense3 (FbZooCtx *z, FbInstr *x, int64_t out, gboolean bias, const char *name, const char *init)
{
  FbBuilder *b = z->b;
  if (!fb_builder_ok (b))
    return NULL;
  const int64_t *d = x->shape->dims;
  g_autofree char *wname = g_strdup_printf ("%s.kernel", name);
  g_autofree char *bname = g_strdup_printf ("%s.bias", name);
  fb_builder_push_scope (b, name);
  FbInstr *w = _fb_zoo_weight (z, wname, 2, DIMS (d[2], out), init, d[2], out, 0);
  FbInstr *y = fb_b_matmul (b, x, w);
  if (bias)
    {
      FbInstr *bv = _fb_zoo_weight (z, bname, 1, DIMS (out), "zeros", 0, 0, 0);
      y = fb_b_add (b, y, fb_b_broadcast (b, bv, 3, DIMS (d[0], d[1], out), DIMS (2)));
    }
  fb_builder_pop_scope (b);
  return y;
}

/* GELU, tanh form: 0.5 x (1 + tanh (sqrt (2 / pi) (x + 0.044715 x^3))). */
static FbInstr *
gelu (FbZooCtx *z, FbInstr *x)
{
  FbBuilder *b = z->b;
  if (!fb_builder_ok (b))
    return NULL;
  FbInstr *x3 = fb_b_mul (b, fb_b_mul (b, x, x), x);
  FbInstr *inner = fb_b_add (b, x, fb_b_binary_scalar (b, FB_OP_MULTIPLY, x3, 0.044715));
  inner = fb_b_binary_scalar (b, FB_OP_MULTIPLY, inner, sqrt (2.0 / G_PI));
  FbInstr *t = fb_b_binary_scalar (b, FB_OP_ADD, fb_b_tanh (b, inner), 1.0);
  return fb_b_mul (b, fb_b_binary_scalar (b, FB_OP_MULTIPLY, x, 0.5), t);
}

/* One-hot f32[..., depth] of integer indices. */
static FbInstr *
one_hot (FbZooCtx *z, FbInstr *idx, int64_t depth)
{
  FbBuilder *b = z->b;
  if (!fb_builder_ok (b))
    return NULL;
  int r = idx->shape->rank;
  int64_t dims[FB_BUILDER_MAX_RANK], map[FB_BUILDER_MAX_RANK];
  for (int i = 0; i < r; i++)
    {
      dims[i] = idx->shape->dims[i];
      map[i] = i;
    }
  dims[r] = depth;
  FbInstr *bi = fb_b_broadcast (b, idx, r + 1, dims, map);
  FbInstr *io = fb_b_iota (b, idx->shape->type, r + 1, dims, r);
  return fb_b_convert (b, fb_b_compare (b, FB_CMP_EQ, bi, io), FB_F32);
}

/* Causal multi-head self-attention on x[B, S, D]. */
static FbInstr *
attention (FbZooCtx *z, FbInstr *x, int64_t heads, const char *name)
{
  FbBuilder *b = z->b;
  if (!fb_builder_ok (b))
    return NULL;
  int64_t B = x->shape->dims[0], S = x->shape->dims[1], D = x->shape->dims[2], Dh = D / heads;
  fb_builder_push_scope (b, name);
  FbInstr *qkv[3];
  static const char *const names[3] = { "query", "key", "value" };
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *n = g_strdup_printf ("%s.%s", name, names[i]);
      FbInstr *p = dense3 (z, x, D, FALSE, n, "glorot_uniform");
      p = fb_b_reshape (b, p, 4, DIMS (B, S, heads, Dh));
      qkv[i] = fb_b_transpose (b, p, DIMS (0, 2, 1, 3));     /* [B, H, S, Dh] */
    }
  FbDotDims qk = { .n_batch = 2, .lhs_batch = { 0, 1 }, .rhs_batch = { 0, 1 },
                   .n_contracting = 1, .lhs_contracting = { 3 }, .rhs_contracting = { 3 } };
  FbInstr *scores = fb_b_dot (b, qkv[0], qkv[1], &qk);    /* [B, H, S, S] */
  scores = fb_b_binary_scalar (b, FB_OP_MULTIPLY, scores, 1.0 / sqrt ((double) Dh));

  /* Causal mask: query i sees keys j <= i. */
  FbInstr *row = fb_b_iota (b, FB_S32, 2, DIMS (S, S), 0);
  FbInstr *col = fb_b_iota (b, FB_S32, 2, DIMS (S, S), 1);
  FbInstr *mask = fb_b_broadcast (b, fb_b_compare (b, FB_CMP_GE, row, col), 4, DIMS (B, heads, S, S),
                                  DIMS (2, 3));
  scores = fb_b_select (b, mask, scores, fb_b_full (b, scores ? scores->shape : NULL, -1e9));

  FbInstr *m = fb_b_reduce_max (b, scores, 1, DIMS (3));
  FbInstr *e = fb_b_exp (b, fb_b_sub (b, scores, fb_b_broadcast (b, m, 4, DIMS (B, heads, S, S), DIMS (0, 1, 2))));
  FbInstr *sum = fb_b_reduce_sum (b, e, 1, DIMS (3));
  FbInstr *p = fb_b_div (b, e, fb_b_broadcast (b, sum, 4, DIMS (B, heads, S, S), DIMS (0, 1, 2)));

  FbDotDims pv = { .n_batch = 2, .lhs_batch = { 0, 1 }, .rhs_batch = { 0, 1 },
                   .n_contracting = 1, .lhs_contracting = { 3 }, .rhs_contracting = { 2 } };
  FbInstr *o = fb_b_dot (b, p, qkv[2], &pv);               /* [B, H, S, Dh] */
  o = fb_b_reshape (b, fb_b_transpose (b, o, DIMS (0, 2, 1, 3)), 3, DIMS (B, S, D));
  g_autofree char *oname = g_strdup_printf ("%s.output", name);
  o = dense3 (z, o, D, FALSE, oname, "glorot_uniform");
  fb_builder_pop_scope (b);
  return o;
}

/* ------------------------------------------------------------- models */

static FbInstr *
build_mlp (FbZooCtx *z)
{
  int64_t sizes[64];
  int n;
  if (!_fb_zoo_opt_list (z, "layers", 2, 64, sizes, &n))
    return NULL;
  FbBuilder *b = z->b;
  _fb_zoo_inputs (z, fb_b_shape (b, FB_F32, 2, DIMS (z->batch, sizes[0])),
                  fb_b_shape (b, FB_F32, 2, DIMS (z->batch, sizes[n - 1])), NULL);
  z->data_kind = "linear_teacher";
  FbComputation *c = fb_builder_get_computation (b);
  FbInstr *h = c->params[0];
  for (int i = 1; i < n; i++)
    {
      g_autofree char *name = g_strdup_printf ("dense%d", i - 1);
      gboolean last = i == n - 1;
      h = dense (z, h, sizes[i], name, last ? "glorot_uniform" : "he_uniform");
      if (!last)
        h = relu (z, h);
    }
  return softmax_cross_entropy (z, h, c->params[1]);
}

static FbInstr *
build_cnn (FbZooCtx *z)
{
  int64_t image, classes, hidden, ch[2];
  int n_ch;
  if (!_fb_zoo_opt_int (z, "image", 12, &image) || !_fb_zoo_opt_int (z, "classes", 2, &classes)
      || !_fb_zoo_opt_int (z, "hidden", 1, &hidden) || !_fb_zoo_opt_list (z, "channels", 2, 2, ch, &n_ch))
    return NULL;
  /* conv 5x5 same -> pool -> conv 5x5 valid -> pool: each pool needs an even size. */
  int64_t s1 = image / 2, s2 = (s1 - 4) / 2;
  if (image % 2 != 0 || (s1 - 4) % 2 != 0 || s2 < 1)
    {
      _fb_zoo_usage_error (z, "--image %" G_GINT64_FORMAT ": needs an even size whose half minus 4 "
                           "is even and positive (e.g. 12, 20, 28)", image);
      return NULL;
    }
  FbBuilder *b = z->b;
  _fb_zoo_inputs (z, fb_b_shape (b, FB_F32, 4, DIMS (z->batch, 1, image, image)),
                  fb_b_shape (b, FB_F32, 2, DIMS (z->batch, classes)), NULL);
  z->data_kind = "linear_teacher";
  FbComputation *c = fb_builder_get_computation (b);
  FbInstr *h = c->params[0];
  h = max_pool2 (z, relu (z, conv2d (z, h, ch[0], 5, TRUE, TRUE, "conv0")));
  h = max_pool2 (z, relu (z, conv2d (z, h, ch[1], 5, FALSE, TRUE, "conv1")));
  h = fb_b_reshape (b, h, 2, DIMS (z->batch, ch[1] * s2 * s2));
  h = relu (z, dense (z, h, hidden, "dense0", "he_uniform"));
  h = dense (z, h, classes, "dense1", "glorot_uniform");
  return softmax_cross_entropy (z, h, c->params[1]);
}

static FbInstr *
build_transformer (FbZooCtx *z)
{
  int64_t layers, heads, dmodel, seq, vocab;
  gboolean tied;
  if (!_fb_zoo_opt_int (z, "layers", 1, &layers) || !_fb_zoo_opt_int (z, "heads", 1, &heads)
      || !_fb_zoo_opt_int (z, "dmodel", 1, &dmodel) || !_fb_zoo_opt_int (z, "seq", 1, &seq)
      || !_fb_zoo_opt_int (z, "vocab", 2, &vocab) || !_fb_zoo_opt_bool (z, "tied", &tied))
    return NULL;
  if (dmodel % heads != 0)
    {
      _fb_zoo_usage_error (z, "--dmodel %" G_GINT64_FORMAT " is not a multiple of --heads %" G_GINT64_FORMAT,
                           dmodel, heads);
      return NULL;
    }
  FbBuilder *b = z->b;
  int64_t B = z->batch;
  g_autofree char *extra = g_strdup_printf ("vocab=\"%" G_GINT64_FORMAT "\"", vocab);
  _fb_zoo_inputs (z, fb_b_shape (b, FB_S32, 2, DIMS (B, seq)), fb_b_shape (b, FB_S32, 2, DIMS (B, seq)), extra);
  z->data_kind = "permutation_teacher";
  FbComputation *c = fb_builder_get_computation (b);

  fb_builder_push_scope (b, "embed");
  FbInstr *emb = _fb_zoo_weight (z, "embed.tokens", 2, DIMS (vocab, dmodel), "normal", 0, 0, 0.02);
  FbInstr *pos = _fb_zoo_weight (z, "embed.positions", 2, DIMS (seq, dmodel), "normal", 0, 0, 0.02);
  FbInstr *h = fb_b_matmul (b, one_hot (z, c->params[0], vocab), emb);     /* [B, S, D] */
  h = fb_b_add (b, h, fb_b_broadcast (b, pos, 3, DIMS (B, seq, dmodel), DIMS (1, 2)));
  fb_builder_pop_scope (b);

  for (int64_t l = 0; l < layers && fb_builder_ok (b); l++)
    {
      g_autofree char *blk = g_strdup_printf ("block%" G_GINT64_FORMAT, l);
      g_autofree char *ln1 = g_strdup_printf ("%s.ln1", blk);
      g_autofree char *ln2 = g_strdup_printf ("%s.ln2", blk);
      g_autofree char *att = g_strdup_printf ("%s.attn", blk);
      g_autofree char *fc1 = g_strdup_printf ("%s.mlp_in", blk);
      g_autofree char *fc2 = g_strdup_printf ("%s.mlp_out", blk);
      fb_builder_push_scope (b, blk);
      h = fb_b_add (b, h, attention (z, layer_norm (z, h, ln1), heads, att));
      FbInstr *m = gelu (z, dense3 (z, layer_norm (z, h, ln2), 4 * dmodel, TRUE, fc1, "he_uniform"));
      h = fb_b_add (b, h, dense3 (z, m, dmodel, TRUE, fc2, "glorot_uniform"));
      fb_builder_pop_scope (b);
    }
  h = layer_norm (z, h, "ln_final");

  FbInstr *logits;
  fb_builder_push_scope (b, "unembed");
  if (tied)
    {
      FbDotDims dd = { .n_contracting = 1, .lhs_contracting = { 2 }, .rhs_contracting = { 1 } };
      logits = fb_b_dot (b, h, emb, &dd);                                  /* [B, S, V] */
    }
  else
    logits = dense3 (z, h, vocab, FALSE, "unembed", "glorot_uniform");
  fb_builder_pop_scope (b);
  logits = fb_b_reshape (b, logits, 2, DIMS (B * seq, vocab));
  FbInstr *labels = fb_b_reshape (b, one_hot (z, c->params[1], vocab), 2, DIMS (B * seq, vocab));
  return softmax_cross_entropy (z, logits, labels);
}

/* conv 3x3 (no bias) -> batch-norm-training, with its scale and offset. */
static FbInstr *
conv_bn (FbZooCtx *z, FbInstr *x, const char *name)
{
  FbBuilder *b = z->b;
  if (!fb_builder_ok (b))
    return NULL;
  int64_t ch = x->shape->dims[1];
  g_autofree char *cname = g_strdup_printf ("%s.conv", name);
  g_autofree char *sname = g_strdup_printf ("%s.bn.scale", name);
  g_autofree char *oname = g_strdup_printf ("%s.bn.offset", name);
  FbInstr *y = conv2d (z, x, ch, 3, TRUE, FALSE, cname);
  fb_builder_push_scope (b, name);
  FbInstr *scale = _fb_zoo_weight (z, sname, 1, DIMS (ch), "ones", 0, 0, 0);
  FbInstr *offset = _fb_zoo_weight (z, oname, 1, DIMS (ch), "zeros", 0, 0, 0);
  FbInstr *bn = fb_b_batch_norm_training (b, y, scale, offset, 1e-5, 1);
  fb_builder_pop_scope (b);
  return fb_b_gte (b, bn, 0);
}

static FbInstr *
build_resnet_block (FbZooCtx *z)
{
  int64_t image, channels, classes;
  if (!_fb_zoo_opt_int (z, "image", 1, &image) || !_fb_zoo_opt_int (z, "channels", 1, &channels)
      || !_fb_zoo_opt_int (z, "classes", 2, &classes))
    return NULL;
  FbBuilder *b = z->b;
  int64_t B = z->batch;
  _fb_zoo_inputs (z, fb_b_shape (b, FB_F32, 4, DIMS (B, channels, image, image)),
                  fb_b_shape (b, FB_F32, 2, DIMS (B, classes)), NULL);
  z->data_kind = "linear_teacher";
  FbComputation *c = fb_builder_get_computation (b);
  FbInstr *x = c->params[0];

  fb_builder_push_scope (b, "block");
  FbInstr *h = relu (z, conv_bn (z, x, "unit0"));
  h = conv_bn (z, h, "unit1");
  h = relu (z, fb_b_add (b, h, x));
  fb_builder_pop_scope (b);

  fb_builder_push_scope (b, "head");
  FbInstr *pooled = fb_b_binary_scalar (b, FB_OP_MULTIPLY, fb_b_reduce_sum (b, h, 2, DIMS (2, 3)),
                                        1.0 / (double) (image * image));
  fb_builder_pop_scope (b);
  FbInstr *logits = dense (z, pooled, classes, "classifier", "glorot_uniform");
  return softmax_cross_entropy (z, logits, c->params[1]);
}

/* -------------------------------------------------------------- table */

static const FbZooOptionInfo mlp_options[] = {
  { "layers", "784,1024,1024,10", "layer widths, input first and classes last" },
};
static const FbZooOptionInfo cnn_options[] = {
  { "image", "28", "side of the 1xNxN input image (12, 20, 28, ...)" },
  { "channels", "6,16", "output channels of the two 5x5 convolutions" },
  { "hidden", "120", "width of the hidden dense layer" },
  { "classes", "10", "number of classes" },
};
static const FbZooOptionInfo transformer_options[] = {
  { "layers", "2", "decoder blocks" },
  { "heads", "4", "attention heads (divides --dmodel)" },
  { "dmodel", "64", "model width; the MLP is 4x wider" },
  { "seq", "32", "sequence length" },
  { "vocab", "128", "vocabulary size" },
  { "tied", "yes", "output projection tied to the token embedding (yes or no)" },
};
static const FbZooOptionInfo resnet_options[] = {
  { "image", "16", "side of the CxNxN input" },
  { "channels", "16", "channels of the input and of both convolutions" },
  { "classes", "10", "number of classes" },
};

const FbZooModelDef _fb_zoo_model_defs[] = {
  { { "mlp", "multi-layer perceptron, ReLU, softmax cross-entropy", 128,
      G_N_ELEMENTS (mlp_options), mlp_options }, build_mlp },
  { { "cnn", "LeNet-5 style: conv-relu-pool twice, dense-relu-dense, softmax cross-entropy", 64,
      G_N_ELEMENTS (cnn_options), cnn_options }, build_cnn },
  { { "transformer", "decoder-only transformer: causal multi-head attention, GELU MLP, next-token loss", 8,
      G_N_ELEMENTS (transformer_options), transformer_options }, build_transformer },
  { { "resnet-block", "residual block: conv-bn-relu-conv-bn, add, relu, pooled classifier", 16,
      G_N_ELEMENTS (resnet_options), resnet_options }, build_resnet_block },
};
const int _fb_zoo_n_model_defs = G_N_ELEMENTS (_fb_zoo_model_defs);
