#!/usr/bin/env python3
"""PyTorch's side of the GPU comparison: the reference model of ../shared/peers/torch_gpt_ref.py
(imported from the path given, unchanged) trained on CUDA with the same AdamW, batches and
step count as `bench/train_worker.ts`. Prints one JSON line like the peer's `bench`.

    python3 bench/torch_device.py PATH/torch_gpt_ref.py [--steps 20] [--device cuda]
"""
import argparse
import importlib.util
import json
import statistics
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("peer")
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--device", default="cuda")
a = ap.parse_args()

spec = importlib.util.spec_from_file_location("torch_gpt_ref", a.peer)
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

torch.manual_seed(0)
dev = torch.device(a.device)
model = ref.GPT().to(dev)
xs, ys = ref.batches(8)
xs, ys = xs.to(dev), ys.to(dev)
opt = torch.optim.AdamW(model.parameters(), **ref.ADAMW)


def step(i):
    loss = model(xs[i % len(xs)], ys[i % len(ys)])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


for i in range(3):  # warm-up
    first = step(i).item()
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
sync()
times = []
for i in range(a.steps):
    t0 = time.perf_counter()
    last = step(3 + i).item()  # .item() waits for the step, as our worker reads the loss each step
    sync()
    times.append(time.perf_counter() - t0)
med = statistics.median(times)
print(json.dumps({
    "impl": "torch", "torch": torch.__version__, "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
    "step_ms": med * 1e3, "step_ms_min": min(times) * 1e3, "step_ms_max": max(times) * 1e3,
    "tokens_per_s": ref.B * ref.T / med, "loss_first": first, "loss_last": last,
    "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None,
}))
