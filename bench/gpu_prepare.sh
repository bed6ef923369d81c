#!/usr/bin/env bash
# Prepares DIR for bench/gpu_compare.sh on a machine without Deno or network:
# the bench worker bundled into one file (npm packages inlined), the PyTorch fixture beside
# it (the worker finds it relative to itself), the peer script, HF export folders for the
# transformers check, and this Deno, xz-compressed.
#   bench/gpu_prepare.sh DIR
set -euo pipefail
dir=${1:?usage: bench/gpu_prepare.sh DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir/data"
deno bundle --platform deno -o "$dir/worker.js" "$root/bench/train_worker.ts"
deno bundle --platform deno -o "$dir/kernels_test.js" "$root/kernels/kernels_test.ts"
deno bundle --platform deno -o "$dir/kernels_bench.js" "$root/bench/kernels.ts"
rm -rf "$dir/data/torch_ref" && cp -r "$root/tests/data/torch_ref" "$dir/data/"
cp "$root/../shared/peers/torch_gpt_ref.py" "$dir/"
# HF folders with our expected tokens and logits, for PyTorch transformers (bench/hf_torch_check.py).
rm -rf "$dir/hf" && deno run -A "$root/bench/hf_fixtures.ts" "$dir/hf"
[ -f "$dir/deno.xz" ] || xz -T0 -6 -c "$(readlink -f "$(command -v deno)")" >"$dir/deno.xz"
du -sh "$dir"
