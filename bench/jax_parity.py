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
#   build/bench-venv/bin/python bench/jax_parity.py [--model mlp|cnn|all] [--steps 20]
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


def jax_model(jax, model, names):
    """The loss of the zoo model @model as a function of (weights..., x, y)."""
    jnp, lax = jax.numpy, jax.lax
    index = {n: i for i, n in enumerate(names)}

    def loss_fn(weights, x, y):
        w = lambda n: weights[index["w." + n]]
        if model == "mlp":
            h = x
            n = len([k for k in names if k.endswith(".kernel")])
            for i in range(n):
                h = h @ w(f"dense{i}.kernel") + w(f"dense{i}.bias")
                if i < n - 1:
                    h = jax.nn.relu(h)
        elif model == "cnn":
            def conv(h, k, b, pad):
                h = lax.conv_general_dilated(h, k, (1, 1), ((pad, pad), (pad, pad)),
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
                return h + b[None, :, None, None]

            def pool(h):
                return lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

            h = pool(jax.nn.relu(conv(x, w("conv0.kernel"), w("conv0.bias"), 2)))
            h = pool(jax.nn.relu(conv(h, w("conv1.kernel"), w("conv1.bias"), 0)))
            h = h.reshape(h.shape[0], -1)
            h = jax.nn.relu(h @ w("dense0.kernel") + w("dense0.bias"))
            h = h @ w("dense1.kernel") + w("dense1.bias")
        else:
            raise ValueError(model)
        return -(y * jax.nn.log_softmax(h, axis=1)).sum(axis=1).mean()

    return loss_fn


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
    loss_fn = jax_model(jax, model, names)

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
