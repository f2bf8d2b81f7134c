#!/usr/bin/env python3
"""Writes tests/data/peft_lora_linear.json: a LoRA linear layer run through PyTorch + PEFT.

For each case a tiny module holding one nn.Linear (or a GPT-2 Conv1D, which PEFT wraps with
fan_in_fan_out=True) is wrapped with LoraConfig(..., lora_dropout=0, init_lora_weights=False, so
that lora_B is not zero), run forward on random x, and the loss sum(y * g) is back-propagated.
The file records the inputs, weights, output and the gradients PEFT/autograd computed; the CPU
backend must reproduce them (tests/cpu/test_lora_linear_peft.cpp).

Run:  python3 tests/gen/gen_peft_lora_linear.py   (needs torch, transformers, peft; not run by CI)
"""
import json
import os

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers.pytorch_utils import Conv1D

OUT = os.path.join(os.path.dirname(__file__), "..", "data", "peft_lora_linear.json")


class Holder(torch.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.proj = layer

    def forward(self, x):
        return self.proj(x)


def flat(t):
    return [float(f"{v:.9g}") for v in t.detach().reshape(-1).tolist()]


def run_case(name, layer, m, r, alpha, rslora, fan_in_fan_out, seed):
    torch.manual_seed(seed)
    with torch.no_grad():  # frozen weights and bias from a fixed seed
        for p in layer.parameters():
            p.uniform_(-0.5, 0.5)
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.0, use_rslora=rslora,
                     init_lora_weights=False, fan_in_fan_out=fan_in_fan_out, bias="none")
    model = get_peft_model(Holder(layer), cfg)
    lora = model.base_model.model.proj
    base = lora.base_layer
    is_conv = isinstance(base, Conv1D)
    k = base.weight.shape[0] if is_conv else base.in_features
    d = base.weight.shape[1] if is_conv else base.out_features
    x = (torch.rand(m, k) * 2 - 1).requires_grad_(True)
    g = torch.rand(m, d) * 2 - 1
    y = model(x)
    (y * g).sum().backward()
    A = lora.lora_A["default"].weight
    B = lora.lora_B["default"].weight
    return {
        "name": name, "m": m, "k": k, "d": d, "r": r, "alpha": alpha, "use_rslora": rslora,
        "fan_in_fan_out": fan_in_fan_out, "scaling": lora.scaling["default"],
        "has_bias": base.bias is not None,
        "x": flat(x), "w0": flat(base.weight), "bias": flat(base.bias) if base.bias is not None else [],
        "lora_A": flat(A), "lora_B": flat(B), "dy": flat(g), "y": flat(y),
        "dx": flat(x.grad), "dA": flat(A.grad), "dB": flat(B.grad),
    }


def main():
    cases = [
        run_case("linear_bias", torch.nn.Linear(8, 6, bias=True), m=5, r=2, alpha=4, rslora=False,
                 fan_in_fan_out=False, seed=1),
        run_case("linear_rslora", torch.nn.Linear(16, 12, bias=False), m=7, r=4, alpha=8, rslora=True,
                 fan_in_fan_out=False, seed=2),
        run_case("gpt2_conv1d", Conv1D(10, 12), m=4, r=3, alpha=6, rslora=False, fan_in_fan_out=True, seed=3),
        run_case("linear_r16", torch.nn.Linear(40, 24, bias=True), m=9, r=16, alpha=32, rslora=False,
                 fan_in_fan_out=False, seed=4),
    ]
    doc = {"generator": "tests/gen/gen_peft_lora_linear.py", "torch": torch.__version__, "peft": peft.__version__,
           "transformers": transformers.__version__, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
