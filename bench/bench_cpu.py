#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# The CPU backend against its peers: training steps per second of the zoo's
# MLP (784-1024-1024-10, batch 128), CNN and transformer with plain SGD in
# f32, on Fusebox's CPU backend (all passes), PyTorch (Debian's
# python3-torch, torch.set_num_threads = cores) and XLA's CPU backend
# through jax.jit. The three run as long-lived workers that the driver asks
# for one repetition at a time, in turn (A, B, C, A, B, C, ...), after a
# warm-up, so that drift on a shared machine hits all sides alike. Then it
# runs bench-cpu for the physical limits (sgemm rate, STREAM triad), compile
# time and fusion on/off.
#
# Usage: /usr/bin/python3 bench/bench_cpu.py [BUILD_DIR] [--reps N] [--steps N]
# JAX comes from PyPI into BUILD_DIR/bench-venv, created when missing; when
# that cannot be done (no network, no venv module) the JAX column says why.

import argparse
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOAL_TORCH = 2.0
GOAL_XLA = 1.0

# The zoo's models at their CLI defaults (see `fusebox-cli gen --list`).
CONFIGS = {
    "mlp": dict(layers=[784, 1024, 1024, 10], batch=128, lr=0.01),
    "cnn": dict(image=28, channels=[6, 16], hidden=120, classes=10, batch=64, lr=0.01),
    "transformer": dict(layers=2, heads=4, dmodel=64, seq=32, vocab=128, batch=8, lr=0.01),
}

# ------------------------------------------------------------ workers

def torch_worker(model):
    import time
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(os.cpu_count())
    c = CONFIGS[model]
    torch.manual_seed(0)
    if model == "mlp":
        dims = c["layers"]
        layers = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        net = nn.Sequential(*layers)
        x = torch.randn(c["batch"], dims[0])
        y = torch.randint(0, dims[-1], (c["batch"],))
    elif model == "cnn":
        ch, img = c["channels"], c["image"]
        side = ((img // 2) - 4) // 2
        net = nn.Sequential(nn.Conv2d(1, ch[0], 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(ch[0], ch[1], 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(ch[1] * side * side, c["hidden"]), nn.ReLU(),
                            nn.Linear(c["hidden"], c["classes"]))
        x = torch.randn(c["batch"], 1, img, img)
        y = torch.randint(0, c["classes"], (c["batch"],))
    else:
        d, v, s = c["dmodel"], c["vocab"], c["seq"]

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
                self.att = nn.MultiheadAttention(d, c["heads"], batch_first=True)
                self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
                self.register_buffer("mask", torch.triu(torch.ones(s, s, dtype=torch.bool), 1))

            def forward(self, h):
                a = self.ln1(h)
                h = h + self.att(a, a, a, attn_mask=self.mask, need_weights=False)[0]
                return h + self.fc2(F.gelu(self.fc1(self.ln2(h)), approximate="tanh"))

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(v, d)
                self.pos = nn.Parameter(torch.zeros(s, d))
                self.blocks = nn.Sequential(*[Block() for _ in range(c["layers"])])
                self.ln = nn.LayerNorm(d)

            def forward(self, t):
                h = self.ln(self.blocks(self.emb(t) + self.pos))
                return (h @ self.emb.weight.t()).reshape(-1, v)

        net = Net()
        x = torch.randint(0, v, (c["batch"], s))
        y = torch.randint(0, v, (c["batch"] * s,))
    opt = torch.optim.SGD(net.parameters(), lr=c["lr"])

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    serve_loop(step, lambda: None, time)


def jax_worker(model):
    import time
    import jax
    import jax.numpy as jnp
    c = CONFIGS[model]
    key = jax.random.PRNGKey(0)

    def dense(k, i, o):
        return (jax.random.normal(k, (i, o)) * (2.0 / i) ** 0.5, jnp.zeros(o))

    def xent(logits, y):
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(y, logits.shape[-1]), -1))

    if model == "mlp":
        dims = c["layers"]
        ks = jax.random.split(key, len(dims))
        params = [dense(ks[i], dims[i], dims[i + 1]) for i in range(len(dims) - 1)]
        x = jax.random.normal(ks[-1], (c["batch"], dims[0]))
        y = jnp.arange(c["batch"]) % dims[-1]

        def fwd(p, x):
            for i, (w, b) in enumerate(p):
                x = x @ w + b
                if i < len(p) - 1:
                    x = jax.nn.relu(x)
            return x
    elif model == "cnn":
        ch, img = c["channels"], c["image"]
        side = ((img // 2) - 4) // 2
        ks = jax.random.split(key, 5)
        params = [(jax.random.normal(ks[0], (ch[0], 1, 5, 5)) * 0.2, jnp.zeros(ch[0])),
                  (jax.random.normal(ks[1], (ch[1], ch[0], 5, 5)) * 0.1, jnp.zeros(ch[1])),
                  dense(ks[2], ch[1] * side * side, c["hidden"]), dense(ks[3], c["hidden"], c["classes"])]
        x = jax.random.normal(ks[4], (c["batch"], 1, img, img))
        y = jnp.arange(c["batch"]) % c["classes"]

        def conv(x, w, b, pad):
            y = jax.lax.conv_general_dilated(x, w, (1, 1), pad, dimension_numbers=("NCHW", "OIHW", "NCHW"))
            return y + b[None, :, None, None]

        def pool(x):
            return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

        def fwd(p, x):
            h = pool(jax.nn.relu(conv(x, *p[0], "SAME")))
            h = pool(jax.nn.relu(conv(h, *p[1], "VALID")))
            h = jax.nn.relu(h.reshape(h.shape[0], -1) @ p[2][0] + p[2][1])
            return h @ p[3][0] + p[3][1]
    else:
        d, v, s, nh = c["dmodel"], c["vocab"], c["seq"], c["heads"]
        ks = list(jax.random.split(key, 4 + 4 * c["layers"]))
        params = {"emb": jax.random.normal(ks.pop(), (v, d)) * 0.02,
                  "pos": jax.random.normal(ks.pop(), (s, d)) * 0.02, "blocks": []}
        for _ in range(c["layers"]):
            params["blocks"].append({"qkv": dense(ks.pop(), d, 3 * d), "o": dense(ks.pop(), d, d),
                                     "fc1": dense(ks.pop(), d, 4 * d), "fc2": dense(ks.pop(), 4 * d, d)})
        x = jax.random.randint(ks.pop(), (c["batch"], s), 0, v)
        y = ((x + 1) % v).reshape(-1)

        def ln(h):
            m = h.mean(-1, keepdims=True)
            return (h - m) * jax.lax.rsqrt(((h - m) ** 2).mean(-1, keepdims=True) + 1e-5)

        def fwd(p, t):
            h = p["emb"][t] + p["pos"]
            B = h.shape[0]
            mask = jnp.tril(jnp.ones((s, s), bool))
            for blk in p["blocks"]:
                a = ln(h) @ blk["qkv"][0] + blk["qkv"][1]
                q, k, vv = [z.reshape(B, s, nh, d // nh).transpose(0, 2, 1, 3) for z in jnp.split(a, 3, -1)]
                sc = jnp.where(mask, q @ k.transpose(0, 1, 3, 2) / (d // nh) ** 0.5, -1e9)
                o = (jax.nn.softmax(sc, -1) @ vv).transpose(0, 2, 1, 3).reshape(B, s, d)
                h = h + o @ blk["o"][0] + blk["o"][1]
                m = jax.nn.gelu(ln(h) @ blk["fc1"][0] + blk["fc1"][1], approximate=True)
                h = h + m @ blk["fc2"][0] + blk["fc2"][1]
            return (ln(h) @ p["emb"].T).reshape(-1, v)

    lr = c["lr"]

    @jax.jit
    def step(p, x, y):
        loss, g = jax.value_and_grad(lambda p: xent(fwd(p, x), y))(p)
        return loss, jax.tree_util.tree_map(lambda a, b: a - lr * b, p, g)

    state = {"p": params}

    def one():
        loss, state["p"] = step(state["p"], x, y)
        return loss

    serve_loop(one, lambda: jax.block_until_ready(state["p"]), time)


def serve_loop(step, sync, time):
    for _ in range(3):
        step()
    sync()
    print("ready", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 2 or parts[0] != "rep":
            break
        n = int(parts[1])
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        sync()
        print(f"steps_per_s {n / (time.perf_counter() - t0):.6f}", flush=True)

# ------------------------------------------------------------- driver

class Worker:
    def __init__(self, name, cmd, env=None):
        self.name, self.why = name, None
        try:
            self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=env)
            line = self.p.stdout.readline()
            if line.strip() != "ready":
                self.why = (self.p.stderr.read() or "it exited").strip().splitlines()[-1:]
                self.why = self.why[0] if self.why else "it exited before it was ready"
                self.p = None
        except OSError as e:
            self.p, self.why = None, str(e)

    def rep(self, steps):
        if self.p is None:
            return None
        self.p.stdin.write(f"rep {steps}\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline().split()
        if len(line) != 2:
            self.why = "it stopped answering: " + (self.p.stderr.read().strip().splitlines() or ["?"])[-1]
            self.p = None
            return None
        return float(line[1])

    def close(self):
        if self.p:
            self.p.stdin.close()
            self.p.wait()


def ensure_venv(build):
    venv = os.path.join(build, "bench-venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        r = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True, text=True)
        if r.returncode != 0:
            return None, f"could not create the virtual environment {venv}: {r.stderr.strip()[-200:]}"
    r = subprocess.run([py, "-c", "import jax"], capture_output=True)
    if r.returncode != 0:
        r = subprocess.run([py, "-m", "pip", "install", "-q", "jax[cpu]"], capture_output=True, text=True)
        if r.returncode != 0:
            return None, f"pip install jax failed in {venv}: {r.stderr.strip()[-200:]}"
    return py, None


def machine():
    model = "unknown"
    flags = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags |= set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = " ".join(f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "amx_tile")
                   if f in flags)
    print(f"machine: {model}, {os.cpu_count()} cores, {platform.machine()}; ISA: {isa}")
    try:
        import torch
        print(f"PyTorch {torch.__version__} (/usr/bin/python3), threads {os.cpu_count()}")
    except ImportError:
        print("PyTorch: not installed (apt install python3-torch)")


def summary(values):
    return min(values), statistics.median(values), max(values)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="mlp,cnn,transformer")
    args = ap.parse_args()
    if args.worker:
        side, model = args.worker.split(":")
        (torch_worker if side == "torch" else jax_worker)(model)
        return 0

    build = args.build if os.path.isabs(args.build) else os.path.join(ROOT, args.build)
    bench = os.path.join(build, "bench", "bench-cpu")
    if not os.access(bench, os.X_OK):
        print(f"bench_cpu: {bench} is not built; run ninja -C {build}", file=sys.stderr)
        return 2
    machine()
    jax_py, jax_why = ensure_venv(build)
    if jax_py:
        v = subprocess.run([jax_py, "-c", "import jax; print(jax.__version__)"], capture_output=True, text=True)
        print(f"JAX {v.stdout.strip()} ({jax_py})")
    else:
        print(f"JAX: not measured: {jax_why}")
    me = os.path.abspath(__file__)
    env = dict(os.environ, XLA_FLAGS="--xla_cpu_multi_thread_eigen=true")

    for model in args.model.split(","):
        print(f"\n== {model}: training steps/s, {args.reps} interleaved repetitions of {args.steps} steps "
              f"(goals: {GOAL_TORCH:.1f}x PyTorch, >= {GOAL_XLA:.1f}x XLA)")
        workers = [Worker("Fusebox CPU", [bench, "--serve", model]),
                   Worker("PyTorch", ["/usr/bin/python3", me, "--worker", f"torch:{model}"])]
        if jax_py:
            workers.append(Worker("JAX (XLA CPU)", [jax_py, me, "--worker", f"jax:{model}"], env))
        rates = {w.name: [] for w in workers}
        for w in workers:
            w.rep(2)   # warm-up
        for _ in range(args.reps):
            for w in workers:
                r = w.rep(args.steps)
                if r is not None:
                    rates[w.name].append(r)
        for w in workers:
            w.close()
            if rates[w.name] and w.why is None:
                lo, med, hi = summary(rates[w.name])
                print(f"  {w.name:14} min {lo:9.2f}  median {med:9.2f}  max {hi:9.2f} steps/s")
            else:
                print(f"  {w.name:14} not measured: {w.why}")
        fb = rates["Fusebox CPU"]
        for peer, goal in (("PyTorch", GOAL_TORCH), ("JAX (XLA CPU)", GOAL_XLA)):
            pr = rates.get(peer)
            if not fb or not pr or len(pr) != len(fb):
                continue
            ratio = statistics.median(a / b for a, b in zip(fb, pr))
            words = "faster than" if ratio > 1.02 else "slower than" if ratio < 0.98 else "as fast as"
            verdict = "meets" if ratio >= goal else "misses"
            print(f"  Fusebox / {peer}: {ratio:.2f}x (median of per-pair ratios): Fusebox is {words} "
                  f"{peer}; goal {goal:.1f}x: {verdict} it")
    if "cnn" in args.model or "transformer" in args.model:
        print("  differences: PyTorch's and JAX's CNN and transformer are written to the zoo's "
              "architecture by hand; initial values and data differ, the work per step is the same.")

    print("\n######## bench-cpu (limits, compile time, fusion on/off)")
    sys.stdout.flush()
    return subprocess.call([bench])


if __name__ == "__main__":
    sys.exit(main())
