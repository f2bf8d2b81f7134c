#!/usr/bin/env python3
"""bnb_quant.py — the peer of bench/bench_quant.c: bitsandbytes on the same shapes, same GPU.

  gemv   y = W·x, batch 1, W [d×k] NF4 (blocksize 64, with and without double quantization):
         bitsandbytes.matmul_4bit (its gemv_4bit inference kernel) vs torch bf16 x @ Wᵀ; effective
         GB/s counts the bytes of W, its scales, x and y once. Several copies of W are cycled so
         that every call streams W from HBM, not L2.
  layer  QLoRA layer forward + backward at M=8192, k=d=4096, r=16: PEFT LoRA around
         bitsandbytes.nn.Linear4bit (NF4 + double quantization, bf16 compute), the QLoRA recipe.
One JSON line per measurement; time is the median of CUDA-event-timed samples after warm-up.
usage: bnb_quant.py [--samples N] [--quick]
"""
import argparse
import json

import torch
import bitsandbytes as bnb
import bitsandbytes.functional as F
import peft

from cuda_timing import median_ms


def emit(**kv):
    kv.update(bench="quant", impl="bitsandbytes", device=torch.cuda.get_device_name(), bnb=bnb.__version__,
              torch=torch.__version__)
    print(json.dumps(kv), flush=True)


def gemv(d, k, samples):
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    copies = max(2, int(2 * l2 // (d * k // 2)) + 1)
    x = torch.randn(1, k, device="cuda", dtype=torch.bfloat16)
    for dq in (False, True):
        qs = []
        for _ in range(copies):
            w = torch.randn(d, k, device="cuda", dtype=torch.bfloat16)
            qs.append(F.quantize_4bit(w, blocksize=64, compress_statistics=dq, quant_type="nf4"))
        w_ref = F.dequantize_4bit(qs[0][0], qs[0][1])
        y = bnb.matmul_4bit(x, qs[0][0].t(), quant_state=qs[0][1])
        ref = x.float() @ w_ref.float().t()
        err = float(torch.linalg.norm(y.float() - ref) / torch.linalg.norm(ref))
        ms = median_ms(lambda i: bnb.matmul_4bit(x, qs[i % copies][0].t(), quant_state=qs[i % copies][1]), 10, samples, 20)
        scale_bytes = (d * k // 64) * (1 if dq else 4) + ((d * k // 64 // 256) * 4 if dq else 0)
        nbytes = d * k // 2 + scale_bytes + 2 * (k + d)
        emit(suite="gemv", variant="nf4-dq" if dq else "nf4", d=d, k=k, ms=ms, gbps=nbytes / ms / 1e6,
             rel_err_vs_dequant=err)
        del qs
    ws = [torch.randn(d, k, device="cuda", dtype=torch.bfloat16) for _ in range(max(2, int(2 * l2 // (2 * d * k)) + 1))]
    ms = median_ms(lambda i: x @ ws[i % len(ws)].t(), 10, samples, 20)
    emit(suite="gemv", variant="bf16", d=d, k=k, ms=ms, gbps=(2 * d * k + 2 * (k + d)) / ms / 1e6)
    del ws
    torch.cuda.empty_cache()


def layer(m, k, d, r, samples):
    torch.manual_seed(0)
    for variant in ("nf4-dq", "bf16"):
        if variant == "bf16":
            base = torch.nn.Linear(k, d, bias=False, dtype=torch.bfloat16)
        else:
            base = bnb.nn.Linear4bit(k, d, bias=False, compute_dtype=torch.bfloat16, compress_statistics=True,
                                     quant_type="nf4")
        model = peft.get_peft_model(torch.nn.Sequential(base),
                                    peft.LoraConfig(r=r, lora_alpha=2 * r, target_modules=["0"], lora_dropout=0.0,
                                                    init_lora_weights=False))
        model = model.to("cuda")
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.data = p.data.to(torch.bfloat16)
        xs = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(4)]
        dys = [torch.randn(m, d, device="cuda", dtype=torch.bfloat16) for _ in range(4)]
        params = [p for p in model.parameters() if p.requires_grad]

        def step(i):
            x = xs[i % 4]
            x.grad = None
            for p in params:
                p.grad = None
            model(x).backward(dys[i % 4])

        ms = median_ms(step, 5, samples)
        emit(suite="layer", variant=variant, m=m, k=k, d=d, r=r, ms=ms)
        del model, base, xs, dys
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    shapes = [(4096, 4096)] if a.quick else [(4096, 4096), (14336, 4096), (4096, 14336)]
    status = 0
    jobs = [(gemv, (d, k, a.samples)) for d, k in shapes] + [(layer, (8192, 4096, 4096, 16, a.samples))]
    for fn, args in jobs:  # one failing suite is reported and the others still run
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 — report any failure as a JSON line
            status = 1
            print(json.dumps({"bench": "quant", "impl": "bitsandbytes", "suite": fn.__name__, "args": list(args),
                              "error": f"{type(e).__name__}: {e}"}), flush=True)
    raise SystemExit(status)


if __name__ == "__main__":
    main()
