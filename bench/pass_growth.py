#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# How the cost of each pass grows with the size of a training step, counted
# in executed instructions rather than wall time: callgrind runs
# `fusebox-cli compile FILE --json` on two generated transformer steps (Adam,
# about 10k and 40k instructions), and each pass's run function is charged
# with everything it executes. Instruction counts do not move with the load
# of the machine or its caches, so the growth they give can be compared with
# n log n to a few percent; bench-passes prints the wall-clock times beside
# them. Needs valgrind (the Debian package); prints SKIP without it.
#
#   python3 bench/pass_growth.py [--cli PATH] [--layers 17,69] [--workdir DIR]

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PASS_RE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+\S*fb-pass-([a-z-]+)\.c:(\w*run)\s")


def find_cli(arg):
    for c in (arg, os.environ.get("FUSEBOX_CLI"), os.path.join(ROOT, "build", "app", "fusebox-cli")):
        if c and os.access(c, os.X_OK):
            return c
    return shutil.which("fusebox-cli")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def measure(cli, workdir, layers):
    hlo = os.path.join(workdir, f"transformer-{layers}.hlo")
    run([cli, "gen", "transformer", "--layers", str(layers), "--optimizer", "adam", "-o", hlo])
    stats = json.loads(run([cli, "compile", hlo, "--passes", "none", "--json"]).stdout)
    out = os.path.join(workdir, f"callgrind.{layers}")
    run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", cli, "compile", hlo, "--json"])
    text = run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out]).stdout
    per_pass = {}
    for line in text.splitlines():
        m = PASS_RE.match(line)
        if m:
            per_pass[m.group(2)] = per_pass.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return stats["input"]["instructions"], per_pass


def main():
    ap = argparse.ArgumentParser(description="growth of each pass, in executed instructions")
    ap.add_argument("--cli", help="fusebox-cli to measure (default: $FUSEBOX_CLI, then build/app/fusebox-cli)")
    ap.add_argument("--layers", default="17,69", help="layers of the two generated steps (default 17,69)")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "pass-growth"))
    args = ap.parse_args()

    print("== growth of each pass in executed instructions (callgrind) ==")
    cli = find_cli(args.cli)
    if cli is None:
        print("pass_growth: no fusebox-cli; build first (make build) or pass --cli", file=sys.stderr)
        return 2
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} is missing (apt-get install valgrind)")
            return 0
    try:
        small_layers, large_layers = (int(x) for x in args.layers.split(","))
    except ValueError:
        print("pass_growth: --layers takes two numbers, e.g. 17,69", file=sys.stderr)
        return 2
    os.makedirs(args.workdir, exist_ok=True)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            small, large = pool.map(lambda n: measure(cli, args.workdir, n), (small_layers, large_layers))
    except subprocess.CalledProcessError as e:
        print(f"pass_growth: {' '.join(e.cmd)} failed:\n{e.stderr}", file=sys.stderr)
        return 2
    (n1, a), (n2, b) = small, large
    if not a or not b:
        print("pass_growth: no pass functions in the profile (a build without debug information?)",
              file=sys.stderr)
        return 2
    ratio = n2 / n1
    nlogn = ratio * math.log(n2) / math.log(n1)
    print(f"cli: {cli}")
    print(f"modules: transformer --layers {small_layers} / {large_layers} --optimizer adam: "
          f"{n1} and {n2} instructions")
    print(f"growth: linear {ratio:.2f}x, n log n {nlogn:.2f}x, quadratic {ratio * ratio:.1f}x\n")
    print(f"  {'pass':18s} {'instructions':>14s} {'instructions':>14s} {'growth':>8s}")
    worse = []
    for name in sorted(b, key=lambda k: -b[k]):
        if name not in a or a[name] == 0:
            continue
        g = b[name] / a[name]
        # Counts are exact: a pass within 2% of n log n is n log n.
        verdict = "ok" if g <= nlogn * 1.02 else "worse than n log n"
        if g > nlogn * 1.02:
            worse.append(name)
        print(f"  {name:18s} {a[name]:>14,d} {b[name]:>14,d} {g:7.2f}x  {verdict}")
    print()
    if worse:
        print(f"goal: no pass growing worse than n log n: NOT MET ({', '.join(worse)})")
    else:
        print("goal: no pass growing worse than n log n: met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
