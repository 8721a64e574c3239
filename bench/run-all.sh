#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Runs every built benchmark in turn and prints their reports. Usage:
# bench/run-all.sh [BUILD_DIR] (default: build). The corpus of real modules
# is taken from FUSEBOX_CORPUS, else from ../shared/corpus/hlo next to the
# source tree.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-build}
case "$build" in
  /*) ;;
  *) build="$root/$build" ;;
esac
if [ -z "${FUSEBOX_CORPUS:-}" ] && [ -d "$root/../shared/corpus/hlo" ]; then
  FUSEBOX_CORPUS=$(cd "$root/../shared/corpus/hlo" && pwd)
  export FUSEBOX_CORPUS
fi

status=0
ran=0
for bench in bench-parse bench-passes bench-layout bench-gui; do
  exe="$build/bench/$bench"
  if [ ! -x "$exe" ]; then
    echo "$bench: not built ($exe is missing); run 'ninja -C $build' first" >&2
    status=1
    continue
  fi
  echo
  echo "######## $bench"
  "$exe" || status=1
  ran=$((ran + 1))
done
# How each pass grows with the module, in executed instructions (callgrind).
echo; echo "######## pass_growth.py"; /usr/bin/python3 "$here/pass_growth.py" --cli "$build/app/fusebox-cli" \
  --workdir "$build/pass-growth" && ran=$((ran + 1)) || status=1
# The CPU backend against PyTorch and JAX; it runs bench-cpu for the limits.
echo; echo "######## bench_cpu.py"; /usr/bin/python3 "$here/bench_cpu.py" "$build" && ran=$((ran + 1)) || status=1
# Fusion against XLA, and training parity with PyTorch and JAX, on this build's CLI.
# xla_compare.py creates build/bench-venv with JAX when it is missing.
FUSEBOX_CLI=${FUSEBOX_CLI:-$build/app/fusebox-cli}; export FUSEBOX_CLI
echo; echo "######## xla_compare.py"; /usr/bin/python3 "$here/xla_compare.py" && ran=$((ran + 1)) || status=1
echo; echo "######## torch_parity.py"; /usr/bin/python3 "$here/torch_parity.py" && ran=$((ran + 1)) || status=1
venv_py="$root/build/bench-venv/bin/python"; [ -x "$venv_py" ] || venv_py=/usr/bin/python3
echo; echo "######## jax_parity.py"; "$venv_py" "$here/jax_parity.py" && ran=$((ran + 1)) || status=1
[ "$ran" -gt 0 ] || status=1
exit $status
