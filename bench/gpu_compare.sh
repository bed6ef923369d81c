#!/usr/bin/env bash
# The training-step benchmark on a GPU machine: our stack through Deno's WebGPU (Vulkan)
# against PyTorch on CUDA, same reference model, batches and AdamW. Such machines here have
# no Deno and no network, so everything travels in a folder prepared by
#   bench/gpu_prepare.sh DIR
# (a bundled worker, the PyTorch fixture, the peer script and Deno compressed with xz).
#
#   bench/gpu_compare.sh DIR [STEPS] [OUTDIR]
# prints and writes OUTDIR/gpu_bench.json: one JSON line per implementation.
set -euo pipefail
dir=${1:?usage: bench/gpu_compare.sh DIR [STEPS] [OUTDIR]}
steps=${2:-20}
out=${3:-.}
mkdir -p "$out"

[ -x /tmp/deno ] || xz -dc "$dir/deno.xz" >/tmp/deno && chmod +x /tmp/deno
# The NVIDIA Vulkan driver's manifest, where the machine keeps it outside the default path.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

echo "== ours: WebGPU"
AGENT_FORGE_BLAS=off /tmp/deno run -A "$dir/worker.js" webgpu "$steps" | tee "$out/ours_webgpu.json"
echo "== PyTorch: CUDA"
python3 "$(dirname "$0")/torch_device.py" "$dir/torch_gpt_ref.py" --steps "$steps" | tee "$out/torch_cuda.json"
echo "== PyTorch: CPU (the same machine's cores, for scale)"
python3 "$(dirname "$0")/torch_device.py" "$dir/torch_gpt_ref.py" --steps 5 --device cpu | tee "$out/torch_cpu.json" || true
echo "== WGSL kernels: tests and bench on this adapter"
(cd "$dir" && cp kernels_test.js /tmp/kernels_test.js && cd /tmp && /tmp/deno test -A kernels_test.js) 2>&1 | tail -15 | tee "$out/kernels_test.txt" || true # deno test skips files under hidden folders
/tmp/deno run -A "$dir/kernels_bench.js" --shapes "${KERNEL_SHAPES:-64x256x256,64x512x512,128x512x1024,256x512x2048,512x1024x4096}" --json "$out/kernels.json" 2>&1 | tail -12 || true
echo "== our HF exports in PyTorch transformers (same logits and greedy tokens)"
python3 "$(dirname "$0")/hf_torch_check.py" "$dir/hf" 2>&1 | tee "$out/hf_torch_check.txt" || true
cat "$out"/ours_webgpu.json "$out"/torch_cuda.json >"$out/gpu_bench.json"
python3 - "$out/ours_webgpu.json" "$out/torch_cuda.json" <<'EOF'
import json, sys
ours, torch = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:])
print(f"ours webgpu {ours['step_ms']:.1f} ms/step ({ours.get('adapter')}), torch cuda {torch['step_ms']:.1f} ms/step ({torch['device']}); "
      f"ours/torch throughput {torch['step_ms'] / ours['step_ms']:.3f}")
EOF
