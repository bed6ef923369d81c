"""Checks the HF folders of bench/hf_fixtures.ts with PyTorch `transformers`: each loads with
AutoModelForCausalLM / AutoTokenizer from its local path, tokenizes the prompts to our ids, gives
our logits at the last prompt position (max |diff| <= 1e-4) and our greedy tokens.

    python3 bench/hf_torch_check.py DIR      (DIR as written by bench/hf_fixtures.ts)

Prints one line per folder and exits 1 if any check fails; exits 2 when transformers is missing.
"""
import json, os, sys

try:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
except ImportError as e:  # the CPU machines here have no transformers
    print(f"hf_torch_check: transformers not importable here ({e}); nothing checked")
    sys.exit(2)

root = sys.argv[1]
failed = 0
for name in sorted(os.listdir(root)):
    folder = os.path.join(root, name)
    exp_path = os.path.join(folder, "expected.json")
    if not os.path.exists(exp_path):
        continue
    exp = json.load(open(exp_path))
    problems = []
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    worst = 0.0
    for i, prompt in enumerate(exp["prompts"]):
        ids = tok(prompt)["input_ids"]
        if ids != exp["ids"][i]:
            problems.append(f"prompt {i}: tokenizer gives {ids[:8]}..., ours {exp['ids'][i][:8]}...")
        x = torch.tensor([exp["ids"][i]])
        with torch.no_grad():
            logits = model(x).logits[0, -1]
            worst = max(worst, (logits - torch.tensor(exp["last_logits"][i])).abs().max().item())
            out = model.generate(x, max_new_tokens=exp["new_tokens"], do_sample=False, eos_token_id=exp["eos"],
                                 pad_token_id=exp["eos"], attention_mask=torch.ones_like(x))
        tail = out[0, x.shape[1]:].tolist()
        if exp["eos"] in tail:
            tail = tail[: tail.index(exp["eos"])]
        if tail != exp["tokens"][i]:
            problems.append(f"prompt {i}: greedy {tail}, ours {exp['tokens'][i]}")
    if worst > 1e-4:
        problems.append(f"max |logits diff| {worst:.2e} > 1e-4")
    failed += bool(problems)
    print(f"{name}: {'ok' if not problems else 'FAILED'} (max |logits diff| {worst:.2e})" + "".join(f"\n  {p}" for p in problems))
sys.exit(1 if failed else 0)
