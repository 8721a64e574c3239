#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# Kernels launched and bytes moved per training step: Fusebox's fusion passes
# against XLA's own CPU compiler, on the same models.
#
# For each zoo model at its shipped defaults (data/models/MODEL.hlo, written
# by `fusebox-cli gen MODEL`), `fusebox-cli compile FILE --json` gives the
# kernels and estimated bytes of the input and after every pass. The same
# model is written in JAX (bench/jax_parity.py holds the definitions, layer
# by layer as the zoo builds them; same shapes, batch, plain SGD, f32),
# compiled for the CPU with `jax.jit(step).lower(...).compile()`, and XLA's
# optimized HLO is written to build/xla-compare/MODEL_xla_cpu.hlo. That text
# is loaded into Fusebox and counted by the very same code that counts
# Fusebox's own kernels (`fusebox-cli compile --passes none --json`): a
# kernel is a fusion or an unfused op that does work in the entry computation
# (parameters, constants, tuples, get-tuple-element, bitcasts and row-major
# reshapes launch nothing); bytes are what each kernel reads and writes.
#
# The goal, per model: Fusebox after fusion launches no more kernels than XLA
# and moves no more bytes.
#
# JAX comes from PyPI into the virtual environment build/bench-venv, which
# this script creates when it is missing (python3 -m venv, then pip install
# jax) and then re-runs itself with. When the package index cannot be
# reached, the Fusebox columns are still printed and the XLA part is skipped
# with a SKIP line. Usage:
#   python3 bench/xla_compare.py [--model mlp|cnn|transformer|resnet-block|all]
# Exit status: 0 when the table was printed (whether or not the goal is met)
# or the XLA part was skipped, 2 when a Fusebox command fails.

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = ["mlp", "cnn", "transformer", "resnet-block"]
VENV = os.path.join(ROOT, "build", "bench-venv")
REEXEC_MARK = "FUSEBOX_XLA_COMPARE_IN_VENV"

# What launches nothing, as Fusebox's statistics count it (compiler/fb-stats.c).
FREE_OPS = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "reshape", "after-all",
            "add-dependency", "opt-barrier", "domain", "partition-id", "replica-id"}


def say(msg):
    print(f"xla_compare: {msg}", flush=True)


def fail(msg):
    print(f"xla_compare: {msg}", file=sys.stderr)
    sys.exit(2)


def find_cli(given):
    for c in [given, os.environ.get("FUSEBOX_CLI"), os.path.join(ROOT, "build", "app", "fusebox-cli"),
              shutil.which("fusebox-cli")]:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    fail("cannot find fusebox-cli; build it (meson/ninja) or pass --cli PATH or set FUSEBOX_CLI")


def run(cmd):
    """stdout of @cmd, or None with the error printed."""
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"xla_compare: command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr.strip()}",
              file=sys.stderr)
        return None
    return res.stdout


# ------------------------------------------------------------ JAX set-up

def ensure_jax(venv, allow_install):
    """Imports JAX here, or creates @venv and re-runs this script with its
    interpreter. Returns the jax module, or None with the reason printed."""
    try:
        import jax  # noqa: F401
        return jax
    except ImportError:
        pass
    vpy = os.path.join(venv, "bin", "python")
    if os.environ.get(REEXEC_MARK) or os.path.realpath(sys.prefix) == os.path.realpath(venv):
        say(f"SKIP: the XLA columns: JAX does not import in {sys.executable}; "
            f"remove {venv} and run again, or `{vpy} -m pip install jax`")
        return None
    if not allow_install and not os.path.exists(vpy):
        say(f"SKIP: the XLA columns: JAX is not installed and --no-install was given "
            f"(`python3 -m venv {venv} && {venv}/bin/pip install jax`)")
        return None
    if not os.path.exists(vpy):
        say(f"creating {venv} for JAX")
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        res = subprocess.run([py, "-m", "venv", venv], capture_output=True, text=True)
        if res.returncode != 0:
            say(f"SKIP: the XLA columns: cannot create the virtual environment {venv} "
                f"(Debian: apt install python3-venv): {res.stderr.strip()}")
            return None
    res = subprocess.run([vpy, "-c", "import jax"], capture_output=True, text=True)
    if res.returncode != 0:
        if not allow_install:
            say(f"SKIP: the XLA columns: JAX is not installed in {venv} and --no-install was given")
            return None
        say(f"installing JAX from PyPI into {venv} (newest for this Python)")
        res = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--quiet", "jax"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            tail = "\n".join(res.stderr.strip().splitlines()[-3:])
            say(f"SKIP: the XLA columns: pip could not install jax (is the package index reachable?): {tail}")
            return None
    sys.stdout.flush()
    env = dict(os.environ, **{REEXEC_MARK: "1"})
    os.execve(vpy, [vpy, os.path.abspath(__file__), *sys.argv[1:]], env)


# ------------------------------------------------------------ Fusebox side

def compile_stats(cli, path):
    """(input stats, stats after the last pass) from `compile --json`."""
    out = run([cli, "compile", path, "--json"])
    if out is None:
        return None
    d = json.loads(out)
    return d["input"], (d["passes"][-1] if d["passes"] else d["input"])


def module_header(path):
    """The zoo's frontend_attributes of the module header (zoo_lr, ...)."""
    with open(path) as f:
        head = f.readline()
    return dict(re.findall(r'(zoo_\w+)="([^"]*)"', head))


def gen_defaults(cli, model):
    """The model's default options as `gen --list` prints them: {name: value}."""
    out = run([cli, "gen", "--list"]) or ""
    opts, current = {}, None
    for line in out.splitlines():
        m = re.match(r"^  (\S+)\s{2,}", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"^\s+--(\S+) (\S+)\s", line)
        if m and current == model:
            opts[m.group(1)] = m.group(2)
    return opts


# ------------------------------------------------------------ XLA side

def parse_shape(text):
    m = re.match(r"^(\w+)\[([0-9,]*)\]", text)
    if not m:
        raise ValueError(f"unexpected parameter shape {text}")
    dims = tuple(int(d) for d in m.group(2).split(",") if d)
    return m.group(1), dims


def xla_hlo(jax, cli, model, path, workdir):
    """Compiles the JAX version of @model for the CPU; returns the path of
    XLA's optimized HLO text."""
    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True          # no __pycache__ in the source tree
    import jax_parity
    jnp = jax.numpy
    info = json.loads(run([cli, "inspect", path, "--json"]) or "null")
    if info is None:
        fail(f"cannot inspect {path}")
    header = module_header(path)
    if header.get("zoo_optimizer", "sgd") != "sgd":
        raise ValueError(f"{path} uses {header['zoo_optimizer']}; the comparison is written for sgd")
    params = info["parameters"]
    names = [p["name"] for p in params[:-2]]           # weights; then data and labels
    dtypes = {"f32": jnp.float32, "s32": jnp.int32}
    specs = []
    for p in params:
        et, dims = parse_shape(p["shape"])
        if et not in dtypes:
            raise ValueError(f"parameter {p['name']} has element type {et}")
        specs.append(jax.ShapeDtypeStruct(dims, dtypes[et]))
    lr = float(header.get("zoo_lr", "0.01"))
    heads = int(gen_defaults(cli, model).get("heads", "4"))
    loss_fn = jax_parity.jax_model(jax, model, names, heads=heads)
    n = len(names)

    def step(*args):
        weights, x, y = list(args[:n]), args[n], args[n + 1]
        loss, grads = jax.value_and_grad(loss_fn)(weights, x, y)
        return (loss, *[w - lr * g for w, g in zip(weights, grads)])

    # Weights are not donated: with donation XLA adds a copy of every weight it
    # still reads after updating it in place; without, it writes fresh buffers
    # and launches fewer kernels, the stricter figure to compare against.
    compiled = jax.jit(step).lower(*specs).compile()
    out = os.path.join(workdir, f"{model}_xla_cpu.hlo")
    with open(out, "w") as f:
        f.write(compiled.as_text())
    return out


def count_entry_kernels(text):
    """Kernels of the ENTRY computation of HLO text, counted as Fusebox does
    (while/call/conditional bodies are not followed here)."""
    n, inside = 0, False
    for line in text.splitlines():
        if line.startswith("ENTRY "):
            inside = True
            continue
        if inside and line.startswith("}"):
            break
        if not inside or " = " not in line:
            continue
        rhs = line.split(" = ", 1)[1].lstrip()
        if rhs.startswith("("):                         # tuple shape: skip to its closing parenthesis
            depth = 0
            for i, ch in enumerate(rhs):
                depth += ch == "("
                depth -= ch == ")"
                if depth == 0:
                    rhs = rhs[i + 1:]
                    break
        else:
            rhs = rhs.split(" ", 1)[1] if " " in rhs else ""
        m = re.match(r"\s*([a-z][a-z0-9\-]*)\(", rhs)
        if m and m.group(1) not in FREE_OPS:
            n += 1
    return n


def xla_stats(cli, hlo):
    """(kernels, bytes, how) of XLA's optimized HLO, counted by Fusebox."""
    out = run([cli, "compile", hlo, "--passes", "none", "--json"])
    if out is not None:
        s = json.loads(out)["input"]
        return s["kernels"], s["bytes"], "fusebox"
    # It did not verify: bytes from the cost model without verification, kernels counted here.
    out = run([cli, "inspect", hlo, "--json", "--no-verify"])
    if out is None:
        return None
    with open(hlo) as f:
        kernels = count_entry_kernels(f.read())
    return kernels, json.loads(out)["cost"]["bytes"], "script"


# ------------------------------------------------------------ report

def mib(b):
    return f"{b / 2**20:.1f} MiB"


def machine(jax):
    import platform
    cpu = platform.machine()
    flags = []
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        cpu = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), cpu)
        have = next((l.split(":", 1)[1].split() for l in lines if l.startswith("flags")), [])
        flags = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "amx_tile") if f in have]
    except OSError:
        pass
    extra = ""
    if jax is not None:
        import jaxlib
        extra = f", jax {jax.__version__}, jaxlib {jaxlib.__version__} on {jax.default_backend()}"
    print(f"machine: {cpu}, {os.cpu_count()} cores, flags: {' '.join(flags) or '-'}; "
          f"python {platform.python_version()}{extra}")


def verdict(fb_k, fb_b, xla_k, xla_b):
    if xla_k is None:
        return "no XLA figures"
    more_k, more_b = fb_k > xla_k, fb_b > xla_b
    if not more_k and not more_b:
        return "met"
    why = []
    if more_k:
        why.append(f"{fb_k - xla_k} more kernels")
    if more_b:
        why.append(f"{fb_b / xla_b:.2f}x the bytes")
    return "not met: " + ", ".join(why)


def main():
    ap = argparse.ArgumentParser(description="Fusebox's fusion vs XLA's CPU compiler: kernels and bytes")
    ap.add_argument("--model", default="all", choices=["all", *MODELS])
    ap.add_argument("--cli", help="path of fusebox-cli (else $FUSEBOX_CLI, then build/app/fusebox-cli)")
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "data", "models"),
                    help="where MODEL.hlo is (generated with `fusebox-cli gen` when missing)")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "xla-compare"))
    ap.add_argument("--venv", default=VENV, help="virtual environment for JAX")
    ap.add_argument("--no-install", action="store_true", help="do not create the venv or install JAX")
    args = ap.parse_args()

    cli = find_cli(args.cli)
    # Before any output, so that a re-run in the venv does not print twice.
    jax = ensure_jax(args.venv, not args.no_install)
    if jax is not None:
        jax.config.update("jax_platforms", "cpu")
    print("== kernels and bytes per training step: Fusebox fusion vs XLA CPU ==")
    machine(jax)
    os.makedirs(args.workdir, exist_ok=True)

    rows = []
    for model in (MODELS if args.model == "all" else [args.model]):
        path = os.path.join(args.models_dir, f"{model}.hlo")
        if not os.path.exists(path):
            path = os.path.join(args.workdir, f"{model}.hlo")
            if run([cli, "gen", model, "-o", path]) is None:
                sys.exit(2)
        stats = compile_stats(cli, path)
        if stats is None:
            sys.exit(2)
        before, after = stats
        xk = xb = None
        how = ""
        if jax is not None:
            try:
                hlo = xla_hlo(jax, cli, model, path, args.workdir)
                got = xla_stats(cli, hlo)
                if got is None:
                    how = f"Fusebox cannot load {hlo}"
                else:
                    xk, xb, how = got
                    how = f"{os.path.relpath(hlo, ROOT)}" + (" (kernels counted by the script)"
                                                             if how == "script" else "")
            except Exception as e:           # a JAX or model error: report it in the row, go on
                how = f"JAX failed: {e}"
        rows.append((model, before, after, xk, xb, how))

    print()
    print(f"{'model':<13} {'fusebox kernels':>17} {'fusebox bytes':>25} {'xla kernels':>11} "
          f"{'xla bytes':>11}  goal (kernels and bytes <= XLA)")
    met = 0
    for model, before, after, xk, xb, _ in rows:
        k = f"{before['kernels']} -> {after['kernels']}"
        b = f"{mib(before['bytes'])} -> {mib(after['bytes'])}"
        v = verdict(after["kernels"], after["bytes"], xk, xb)
        met += v == "met"
        print(f"{model:<13} {k:>17} {b:>25} {'-' if xk is None else xk:>11} "
              f"{'-' if xb is None else mib(xb):>11}  {v}")
    print()
    for model, before, after, xk, xb, how in rows:
        if xk is not None:
            print(f"  {model}: Fusebox after fusion launches {after['kernels'] / xk:.2f}x XLA's kernels and "
                  f"moves {after['bytes'] / xb:.3f}x its bytes; XLA's HLO: {how}")
        elif how:
            print(f"  {model}: {how}")
    print()
    if jax is None:
        say("XLA columns skipped (see the SKIP line above)")
    else:
        say(f"goal met for {met} of {len(rows)} models")
    sys.exit(0)


if __name__ == "__main__":
    main()
