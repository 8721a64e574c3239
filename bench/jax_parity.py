#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# Training parity between Fusebox and JAX, both ways:
#
#  1. Fusebox's zoo generates a training step and dumps its initial weights
#     and a batch as .npy (`fusebox-cli gen --dump-init`); JAX trains the same
#     model from those arrays; both run the same number of SGD steps and the
#     per-step losses are compared.
#  2. JAX's own training step is lowered to HLO text (what XLA itself would
#     compile), written under build/parity/jax/, and run by Fusebox's reference
#     interpreter (`fusebox-cli run --feed ... --inputs ...`), feeding the new
#     weights back into the parameters after each step. Its losses must match
#     JAX's too: this checks that Fusebox reads and executes what XLA emits.
#
# The goal is a relative difference of at most 1e-4 on every step; both sides
# compute in f32.
#
# JAX comes from PyPI in a virtual environment (`make bench` creates
# build/bench-venv); run the script with that interpreter:
#   build/bench-venv/bin/python bench/jax_parity.py [--model mlp|cnn|transformer|resnet-block|all]
#                                                     [--steps 20]
# Exit status: 0 when everything is within tolerance (or with a SKIP line when
# JAX or NumPy is missing), 1 when a comparison fails, 2 on bad usage or when
# a Fusebox command fails.

import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MODELS = {
    "mlp": ["--layers", "784,128,10", "--batch", "32", "--lr", "0.05"],
    "cnn": ["--image", "28", "--channels", "6,16", "--hidden", "120", "--classes", "10",
            "--batch", "8", "--lr", "0.02"],
    "transformer": ["--layers", "2", "--heads", "4", "--dmodel", "64", "--seq", "32", "--vocab", "128",
                    "--batch", "8", "--lr", "0.02"],
    "resnet-block": ["--image", "16", "--channels", "16", "--classes", "10", "--batch", "16",
                     "--lr", "0.05"],
}


def skip(why):
    print(f"jax_parity: SKIP: {why}")
    sys.exit(0)


def find_cli(given):
    for c in [given, os.environ.get("FUSEBOX_CLI"), os.path.join(ROOT, "build", "app", "fusebox-cli"),
              shutil.which("fusebox-cli")]:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    print("jax_parity: cannot find fusebox-cli; build it (meson/ninja) or pass --cli PATH "
          "or set FUSEBOX_CLI", file=sys.stderr)
    sys.exit(2)


def run(cmd, what):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"jax_parity: {what} failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr}",
              file=sys.stderr)
        return None
    return res.stdout


def run_losses(cmd, what):
    out = run(cmd, what)
    if out is None:
        return None
    result = json.loads(out.strip().splitlines()[-1])
    return [float("nan") if l is None else float(l) for l in result["losses"]]


def lr_of(model):
    return float(MODELS[model][MODELS[model].index("--lr") + 1])


def jax_model(jax, model, names, heads=4):
    """The loss of the zoo model @model as a function of (weights, x, y),
    written to match compiler/fb-zoo-models.c layer by layer. @names are the
    weight parameter names in order (`w.dense0.kernel`); sizes come from the
    arrays themselves, except the transformer's number of attention @heads."""
    jnp, lax = jax.numpy, jax.lax
    index = {n: i for i, n in enumerate(names)}

    def count(prefix, suffix):
        return len([k for k in names if k.startswith("w." + prefix) and k.endswith(suffix)])

    def conv(h, k, pad):
        # NCHW images, OIHW kernels, as the zoo lays them out.
        return lax.conv_general_dilated(h, k, (1, 1), ((pad, pad), (pad, pad)),
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def layer_norm(w, h, name):
        mean = h.mean(axis=-1, keepdims=True)
        xc = h - mean
        var = (xc * xc).mean(axis=-1, keepdims=True)
        return xc * lax.rsqrt(var + 1e-5) * w(name + ".scale") + w(name + ".bias")

    def gelu(h):
        # The tanh form, as the zoo writes it.
        return 0.5 * h * (1.0 + jnp.tanh(jnp.sqrt(2.0 / jnp.pi) * (h + 0.044715 * h * h * h)))

    def attention(w, h, name):
        B, S, D = h.shape
        dh = D // heads

        def heads_of(p):
            return (h @ w(f"{name}.{p}.kernel")).reshape(B, S, heads, dh).transpose(0, 2, 1, 3)

        q, k, v = heads_of("query"), heads_of("key"), heads_of("value")
        scores = jnp.einsum("bhqd,bhkd->bhqk", q, k) * (1.0 / float(dh) ** 0.5)
        causal = jnp.arange(S)[:, None] >= jnp.arange(S)[None, :]
        scores = jnp.where(causal[None, None], scores, -1e9)
        e = jnp.exp(scores - scores.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        o = jnp.einsum("bhqk,bhkd->bhqd", p, v).transpose(0, 2, 1, 3).reshape(B, S, D)
        return o @ w(f"{name}.output.kernel")

    def batch_norm_training(h, scale, offset):
        # Statistics over batch and space per channel (feature index 1), biased variance.
        mean = h.mean(axis=(0, 2, 3), keepdims=True)
        var = ((h - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
        return (h - mean) * lax.rsqrt(var + 1e-5) * scale[None, :, None, None] + offset[None, :, None, None]

    def logits_of(weights, x):
        w = lambda n: weights[index["w." + n]]
        if model == "mlp":
            h = x
            n = count("dense", ".kernel")
            for i in range(n):
                h = h @ w(f"dense{i}.kernel") + w(f"dense{i}.bias")
                if i < n - 1:
                    h = jax.nn.relu(h)
            return h
        if model == "cnn":
            def pool(h):
                return lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

            h = pool(jax.nn.relu(conv(x, w("conv0.kernel"), 2) + w("conv0.bias")[None, :, None, None]))
            h = pool(jax.nn.relu(conv(h, w("conv1.kernel"), 0) + w("conv1.bias")[None, :, None, None]))
            h = h.reshape(h.shape[0], -1)
            h = jax.nn.relu(h @ w("dense0.kernel") + w("dense0.bias"))
            return h @ w("dense1.kernel") + w("dense1.bias")
        if model == "transformer":
            emb = w("embed.tokens")
            h = jax.nn.one_hot(x, emb.shape[0], dtype=jnp.float32) @ emb + w("embed.positions")[None]
            for l in range(count("block", ".ln1.scale")):
                blk = f"block{l}"
                h = h + attention(w, layer_norm(w, h, f"{blk}.ln1"), f"{blk}.attn")
                m = gelu(layer_norm(w, h, f"{blk}.ln2") @ w(f"{blk}.mlp_in.kernel") + w(f"{blk}.mlp_in.bias"))
                h = h + (m @ w(f"{blk}.mlp_out.kernel") + w(f"{blk}.mlp_out.bias"))
            h = layer_norm(w, h, "ln_final")
            if "w.unembed.kernel" in index:
                logits = h @ w("unembed.kernel")
            else:
                logits = h @ emb.T                       # tied to the token embedding
            return logits.reshape(-1, logits.shape[-1])
        if model == "resnet-block":
            def conv_bn(h, unit):
                return batch_norm_training(conv(h, w(f"{unit}.conv.kernel"), 1), w(f"{unit}.bn.scale"),
                                           w(f"{unit}.bn.offset"))

            h = jax.nn.relu(conv_bn(x, "unit0"))
            h = jax.nn.relu(conv_bn(h, "unit1") + x)
            pooled = h.sum(axis=(2, 3)) * (1.0 / (h.shape[2] * h.shape[3]))
            return pooled @ w("classifier.kernel") + w("classifier.bias")
        raise ValueError(model)

    def loss_fn(weights, x, y):
        logits = logits_of(weights, x)
        if model == "transformer":
            # Labels are the next tokens: one-hot over the vocabulary, flattened like the logits.
            y = jax.nn.one_hot(y.reshape(-1), logits.shape[-1], dtype=jnp.float32)
        return -(y * jax.nn.log_softmax(logits, axis=1)).sum(axis=1).mean()

    return loss_fn


def option_of(model, name, default):
    args = MODELS.get(model, [])
    flag = "--" + name
    return int(args[args.index(flag) + 1]) if flag in args else default


def hlo_text(lowered):
    """HLO text of a lowered computation, whichever JAX API this version has."""
    try:
        return lowered.as_text(dialect="hlo")
    except Exception:
        pass
    try:
        return lowered.compiler_ir("hlo").as_hlo_text()
    except Exception as e:
        raise RuntimeError(f"this JAX cannot print HLO text: {e}")


def compare(title, a_label, a, b_label, b, tol):
    print(f"\n{title}")
    print(f"  {'step':>4}  {a_label:>16}  {b_label:>16}  {'rel diff':>10}")
    worst = 0.0
    for i, (u, v) in enumerate(zip(a, b)):
        rel = abs(u - v) / max(abs(v), 1e-12)
        worst = max(worst, rel) if rel == rel else float("inf")
        print(f"  {i + 1:>4}  {u:>16.8f}  {v:>16.8f}  {rel:>10.2e}")
    if len(a) != len(b):
        print(f"  step counts differ: {len(a)} vs {len(b)}")
        worst = float("inf")
    verdict = "PASS" if worst <= tol else "FAIL"
    print(f"  max relative difference {worst:.3e} (goal {tol:g}): {verdict}")
    return worst <= tol


def machine(jax, np):
    import platform
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    print(f"machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}, "
          f"jax {jax.__version__} on {jax.default_backend()}, numpy {np.__version__}")


def parity(jax, np, cli, model, steps, tol, workdir):
    os.makedirs(workdir, exist_ok=True)
    hlo = os.path.join(workdir, f"{model}.hlo")
    init = os.path.join(workdir, "init")
    shutil.rmtree(init, ignore_errors=True)
    if run([cli, "gen", model, *MODELS[model], "--optimizer", "sgd", "-o", hlo, "--dump-init", init],
           "fusebox-cli gen") is None:
        sys.exit(2)
    with open(os.path.join(init, "params.json")) as f:
        params = json.load(f)["params"]
    arrays = [np.load(os.path.join(init, f"param.{p['number']}.npy")) for p in params]
    roles = [p["role"] for p in params]
    names = [p["name"] for p in params if p["role"] == "weight"]
    if roles != ["weight"] * len(names) + ["data", "labels"]:
        print(f"jax_parity: unexpected parameter layout {roles}", file=sys.stderr)
        sys.exit(2)
    lr = lr_of(model)
    n = len(names)

    # 1. Fusebox's zoo step, on the dumped values.
    fb_losses = run_losses([cli, "run", hlo, "--backend", "interp", "--steps", str(steps),
                            "--inputs", init, "--json"], "fusebox-cli run (zoo step)")
    if fb_losses is None:
        sys.exit(2)

    # 2. The same step in JAX: (weights..., x, y) -> (loss, new weights...).
    loss_fn = jax_model(jax, model, names, heads=option_of(model, "heads", 4))

    def step(*args):
        weights, x, y = list(args[:n]), args[n], args[n + 1]
        loss, grads = jax.value_and_grad(loss_fn)(weights, x, y)
        return (loss, *[w - lr * g for w, g in zip(weights, grads)])

    jstep = jax.jit(step)
    state = [jax.numpy.asarray(a) for a in arrays]
    jax_losses = []
    for _ in range(steps):
        out = jstep(*state)
        jax_losses.append(float(out[0]))
        state = list(out[1:]) + state[n:]

    # 3. JAX's step as HLO text, run by Fusebox with the outputs fed back.
    text = hlo_text(jstep.lower(*[jax.numpy.asarray(a) for a in arrays]))
    jhlo = os.path.join(workdir, f"{model}_jax_step.hlo")
    with open(jhlo, "w") as f:
        f.write(text)
    feed = ",".join(f"{1 + i}={i}" for i in range(n))
    fbj_losses = run_losses([cli, "run", jhlo, "--backend", "interp", "--steps", str(steps),
                             "--feed", feed, "--inputs", init, "--json"], "fusebox-cli run (JAX's HLO)")

    ok = compare(f"{model}: Fusebox zoo step vs JAX ({steps} SGD steps, lr {lr})",
                 "fusebox zoo", fb_losses, "jax", jax_losses, tol)
    if fbj_losses is None:
        print(f"\n{model}: Fusebox could not run JAX's HLO ({jhlo}): FAIL")
        return False
    ok &= compare(f"{model}: JAX's own HLO on Fusebox's interpreter vs JAX ({jhlo})",
                  "fusebox jax-hlo", fbj_losses, "jax", jax_losses, tol)
    return ok


def main():
    ap = argparse.ArgumentParser(description="Fusebox vs JAX training parity")
    ap.add_argument("--model", default="all", choices=["all", *MODELS])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--cli", help="path of fusebox-cli")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "parity", "jax"))
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be at least 1")

    try:
        import numpy as np
    except ImportError:
        skip("NumPy is not installed for this interpreter")
    try:
        import jax
    except ImportError:
        skip("JAX is not installed for this interpreter; create the environment with "
             "`python3 -m venv build/bench-venv && build/bench-venv/bin/pip install jax` "
             "(`make bench` does this) and run build/bench-venv/bin/python bench/jax_parity.py")
    machine(jax, np)

    cli = find_cli(args.cli)
    ok = True
    for model in (MODELS if args.model == "all" else [args.model]):
        ok &= parity(jax, np, cli, model, args.steps, args.tol, os.path.join(args.workdir, model))
    print("\njax_parity:", "all comparisons within tolerance" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
