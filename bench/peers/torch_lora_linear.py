#!/usr/bin/env python3
"""torch_lora_linear.py — the peer of bench/bench_lora_linear.c on CUDA: one LoRA linear layer,
forward + backward, as PyTorch + PEFT runs it (peft.tuners.lora.Linear around nn.Linear, autograd),
and the frozen nn.Linear alone, in bf16. One JSON line per (shape, variant).

usage: torch_lora_linear.py [--shape M,K,D,R ...] [--warmup N] [--samples N] [--dtype bf16|fp32]
Time: CUDA events around forward + backward (dy given, dx and the LoRA weight gradients computed;
the frozen weight gets no gradient), median of --samples; inputs are rotated among 4 random sets so
that repeated runs do not measure the L2 cache on one buffer.
"""
import argparse
import json

import torch
import peft

from cuda_timing import median_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", action="append", default=[])
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    args = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shape] or [(8192, 4096, 4096, 16), (8192, 4096, 4096, 64)]
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    dev = "cuda"
    torch.manual_seed(0)
    for (m, k, d, r) in shapes:
        base = torch.nn.Linear(k, d, bias=False, device=dev, dtype=dtype)
        base.weight.requires_grad_(False)
        model = peft.get_peft_model(torch.nn.Sequential(base),
                                    peft.LoraConfig(r=r, lora_alpha=2 * r, target_modules=["0"], lora_dropout=0.0,
                                                    init_lora_weights=False))
        model.to(dev, dtype=dtype)
        xs = [torch.randn(m, k, device=dev, dtype=dtype, requires_grad=True) for _ in range(4)]
        dys = [torch.randn(m, d, device=dev, dtype=dtype) for _ in range(4)]
        lora_params = [p for p in model.parameters() if p.requires_grad]
        assert len(lora_params) == 2, "PEFT should train lora_A and lora_B only"

        def step_lora(i):
            x = xs[i % 4]
            x.grad = None
            for p in lora_params:
                p.grad = None
            y = model(x)
            y.backward(dys[i % 4])

        def step_frozen(i):
            x = xs[i % 4]
            x.grad = None
            y = base(x)
            y.backward(dys[i % 4])

        t_frozen = median_ms(step_frozen, args.warmup, args.samples)
        t_lora = median_ms(step_lora, args.warmup, args.samples)
        flops_frozen = 4.0 * m * k * d
        flops_lora = flops_frozen + 6.0 * m * r * (k + d)  # LoRA terms: fwd 2mr(k+d), bwd (dA, dB, dx) 4mr(k+d)
        for name, t, fl in (("torch_frozen", t_frozen, flops_frozen), ("peft_lora", t_lora, flops_lora)):
            print(json.dumps({"bench": "lora_linear", "impl": name, "m": m, "k": k, "d": d, "r": r,
                              "dtype": args.dtype, "ms": t, "tflops": fl / t / 1e9,
                              "ratio_to_frozen": t / t_frozen, "device": torch.cuda.get_device_name(),
                              "torch": torch.__version__, "peft": peft.__version__}), flush=True)
        del model, base, xs, dys
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
