#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# Training parity between Fusebox and PyTorch. Fusebox's model zoo generates a
# training step (`fusebox-cli gen`) and writes its initial weights and a batch
# as .npy (`--dump-init`); the same model is built in PyTorch from those
# arrays, both sides run the same number of plain SGD steps on that batch
# (Fusebox on its reference interpreter, `fusebox-cli run --backend interp`),
# and the script prints the loss of every step and the largest relative
# difference. The goal is 1e-4: both sides compute in f32, so the only
# differences are the order of floating-point sums.
#
# Run with Debian's PyTorch (python3-torch) and the system interpreter:
#   /usr/bin/python3 bench/torch_parity.py [--model mlp|cnn|all] [--steps 20]
# It exits 0 when every model is within the tolerance, 1 when one is not,
# 2 on bad usage or when a Fusebox command fails, and 0 with a SKIP line when
# PyTorch or NumPy is missing.

import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The configurations both sides build: small enough for the interpreter.
MODELS = {
    "mlp": ["--layers", "784,128,10", "--batch", "32", "--lr", "0.05"],
    "cnn": ["--image", "28", "--channels", "6,16", "--hidden", "120", "--classes", "10",
            "--batch", "8", "--lr", "0.02"],
}


def skip(why):
    print(f"torch_parity: SKIP: {why}")
    sys.exit(0)


def find_cli(given):
    candidates = [given, os.environ.get("FUSEBOX_CLI"),
                  os.path.join(ROOT, "build", "app", "fusebox-cli"),
                  shutil.which("fusebox-cli")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    print("torch_parity: cannot find fusebox-cli; build it (meson/ninja) or pass --cli PATH "
          "or set FUSEBOX_CLI", file=sys.stderr)
    sys.exit(2)


def run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"torch_parity: command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr}",
              file=sys.stderr)
        sys.exit(2)
    return res.stdout


def fusebox_side(cli, model, steps, workdir):
    """Generates the model, dumps its initial values, runs it; returns
    (losses, parameter table, init directory)."""
    hlo = os.path.join(workdir, f"{model}.hlo")
    init = os.path.join(workdir, "init")
    shutil.rmtree(init, ignore_errors=True)
    run([cli, "gen", model, *MODELS[model], "--optimizer", "sgd", "-o", hlo, "--dump-init", init])
    with open(os.path.join(init, "params.json")) as f:
        params = json.load(f)["params"]
    out = run([cli, "run", hlo, "--backend", "interp", "--steps", str(steps), "--inputs", init, "--json"])
    result = json.loads(out.strip().splitlines()[-1])
    return [float("nan") if l is None else float(l) for l in result["losses"]], params, init


def load_arrays(np, params, init):
    arrays = {}
    for p in params:
        arrays[p["name"]] = (p["role"], np.load(os.path.join(init, f"param.{p['number']}.npy")))
    return arrays


def torch_side(torch, np, model, steps, arrays, lr):
    """The same network and loss in PyTorch, from the same arrays."""
    F = torch.nn.functional
    weights = {name: torch.tensor(a, requires_grad=True)
               for name, (role, a) in arrays.items() if role == "weight"}
    x = torch.tensor(next(a for role, a in arrays.values() if role == "data"))
    y = torch.tensor(next(a for role, a in arrays.values() if role == "labels"))
    w = lambda n: weights["w." + n]

    def forward():
        if model == "mlp":
            h = x
            n = len([k for k in weights if k.endswith(".kernel")])
            for i in range(n):
                h = h @ w(f"dense{i}.kernel") + w(f"dense{i}.bias")
                if i < n - 1:
                    h = torch.relu(h)
            return h
        if model == "cnn":
            h = F.conv2d(x, w("conv0.kernel"), w("conv0.bias"), padding=2)
            h = F.max_pool2d(torch.relu(h), 2)
            h = F.conv2d(h, w("conv1.kernel"), w("conv1.bias"))
            h = F.max_pool2d(torch.relu(h), 2)
            h = h.reshape(h.shape[0], -1)
            h = torch.relu(h @ w("dense0.kernel") + w("dense0.bias"))
            return h @ w("dense1.kernel") + w("dense1.bias")
        raise ValueError(model)

    opt = torch.optim.SGD(list(weights.values()), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = -(y * F.log_softmax(forward(), dim=1)).sum(dim=1).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


def compare(name, a_label, a, b_label, b, tol):
    print(f"\n{name}: per-step loss")
    print(f"  {'step':>4}  {a_label:>14}  {b_label:>14}  {'rel diff':>10}")
    worst = 0.0
    for i, (u, v) in enumerate(zip(a, b)):
        rel = abs(u - v) / max(abs(v), 1e-12)
        worst = max(worst, rel) if rel == rel else float("inf")
        print(f"  {i + 1:>4}  {u:>14.8f}  {v:>14.8f}  {rel:>10.2e}")
    if len(a) != len(b):
        print(f"  step counts differ: {len(a)} vs {len(b)}")
        worst = float("inf")
    verdict = "PASS" if worst <= tol else "FAIL"
    print(f"  max relative difference {worst:.3e} (goal {tol:g}): {verdict}")
    return worst <= tol


def machine(torch, np):
    import platform
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    print(f"machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}, "
          f"torch {torch.__version__}, numpy {np.__version__}")


def main():
    ap = argparse.ArgumentParser(description="Fusebox vs PyTorch training parity")
    ap.add_argument("--model", default="all", choices=["all", *MODELS])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--cli", help="path of fusebox-cli")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "parity", "torch"))
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be at least 1")

    try:
        import numpy as np
    except ImportError:
        skip("NumPy is not installed (Debian: apt install python3-numpy)")
    try:
        import torch
    except ImportError:
        skip("PyTorch is not installed for this interpreter (Debian: apt install python3-torch, "
             "then run with /usr/bin/python3)")
    torch.set_num_threads(os.cpu_count() or 1)
    machine(torch, np)

    cli = find_cli(args.cli)
    ok = True
    for model in (MODELS if args.model == "all" else [args.model]):
        workdir = os.path.join(args.workdir, model)
        os.makedirs(workdir, exist_ok=True)
        fb_losses, params, init = fusebox_side(cli, model, args.steps, workdir)
        lr = float(MODELS[model][MODELS[model].index("--lr") + 1])
        pt_losses = torch_side(torch, np, model, args.steps, load_arrays(np, params, init), lr)
        ok &= compare(f"{model} ({args.steps} SGD steps, lr {lr})", "fusebox", fb_losses,
                      "pytorch", pt_losses, args.tol)
    print("\ntorch_parity:", "all models within tolerance" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
