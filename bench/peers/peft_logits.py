#!/usr/bin/env python3
"""peft_logits.py — the committed tiny GPT-2 and LLaMA fixtures (tests/data/model/<arch> with the
PEFT adapter <arch>_adapter) run by transformers + PEFT on this machine's GPU, compared with the
oracle logits in tests/data/model/<arch>_oracle.json (made on the CPU by tests/gen/gen_model_fixtures.py).
test_model_cuda (ModelCuda.LogitsLossAndGradientsMatchPeftInBf16) compares culora's CUDA logits
with the same oracle, so together they show that PEFT and culora give the same logits on the GPU.
One JSON line per (arch, dtype): relative RMS error (and NMSE, worst element over the RMS) of the
logits and of the LoRA gradients against the oracle.
"""
import json
import os
import sys

import torch
import transformers
import peft

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "model")
dev = "cuda" if torch.cuda.is_available() else "cpu"
status = 0
for arch in ("gpt2", "llama"):
    doc = json.load(open(os.path.join(root, arch + "_oracle.json")))
    B, T, V = doc["batch"], doc["seq"], doc["vocab"]
    ref = torch.tensor(doc["logits"], dtype=torch.float64).reshape(B, T, V)
    tok = torch.tensor(doc["tokens"]).reshape(B, T).to(dev)
    for dtype, tol in ((torch.float32, 1e-4), (torch.bfloat16, 3e-2)):
        # fp32 on the GPU (TF32 off): summation order only, far under 1e-4; bf16 weights and
        # activations through 2 layers: a few bf16 ulps (2^-8) of relative error
        torch.backends.cuda.matmul.allow_tf32 = False
        base = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(root, arch), dtype=dtype)
        model = peft.PeftModel.from_pretrained(base, os.path.join(root, arch + "_adapter")).to(dev).eval()
        for n, p in model.named_parameters():
            p.requires_grad_("lora_" in n)
        logits = model(input_ids=tok).logits
        tgt = torch.tensor(doc["targets"]).to(dev)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, V), tgt, ignore_index=-100)
        loss.backward()
        out = logits.detach().double().cpu()
        rel = float(torch.linalg.norm(out - ref) / torch.linalg.norm(ref))
        worst = float((out - ref).abs().max() / ref.pow(2).mean().sqrt())
        # LoRA gradients against the oracle's (fp32 CPU): the same measure for the backward pass
        num = den = 0.0
        gworst = 0.0
        for n, p in model.named_parameters():
            if not p.requires_grad:
                continue
            mod = n.replace("base_model.model.", "").replace(".default.weight", "")
            want = torch.tensor(doc["lora_grads"][mod.rsplit(".", 1)[0]][mod.rsplit(".", 1)[1]], dtype=torch.float64)
            got = p.grad.double().cpu().reshape(-1)
            num += float((got - want).pow(2).sum())
            den += float(want.pow(2).sum())
            gworst = max(gworst, float((got - want).abs().max() / want.pow(2).mean().sqrt()))
        ok = rel < tol and bool(torch.isfinite(out).all())
        status |= not ok
        print(json.dumps({"bench": "peft_logits", "arch": arch, "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
                          "dtype": str(dtype).split(".")[-1], "rel_rms_vs_oracle": rel, "nmse": rel * rel,
                          "max_err_over_rms": worst, "grad_nmse": num / den, "grad_max_err_over_rms": gworst,
                          "tolerance": tol, "ok": ok, "peft": peft.__version__,
                          "transformers": transformers.__version__}), flush=True)
sys.exit(status)
