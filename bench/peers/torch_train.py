#!/usr/bin/env python3
"""torch_train.py — the peer of bench/bench_train.c: one optimizer step (forward, backward, AdamW)
of the same configs with PyTorch + transformers + PEFT, on random tokens; one JSON line.

usage: torch_train.py --config gpt2-small-cpu|llama-small-cpu|gpt2-124m|llama-1b --mode full|lora
                      [--batch B] [--seq T] [--steps N] [--warmup N] [--device cpu|cuda] [--dtype fp32|bf16]
LoRA: r=16, alpha=32 on the same modules as bench_train (GPT-2: c_attn, c_proj, c_fc; LLaMA: all
seven projections). Time = median step after warm-up, synchronised on CUDA.
"""
import argparse
import json
import statistics
import time

import torch
import transformers

CONFIGS = {
    "gpt2-124m": ("gpt2", 12, 768, 12, 12, 3072, 50257),
    "llama-1b": ("llama", 16, 2048, 32, 8, 8192, 128256),
    "gpt2-small-cpu": ("gpt2", 4, 256, 4, 4, 1024, 50257),
    "llama-small-cpu": ("llama", 4, 256, 4, 2, 704, 32000),
}


def build(name, seq):
    arch, layers, dim, heads, kv, inter, vocab = CONFIGS[name]
    if arch == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=vocab, n_positions=max(seq, 1024), n_embd=dim, n_layer=layers,
                                      n_head=heads, n_inner=inter, activation_function="gelu_new", resid_pdrop=0.0,
                                      embd_pdrop=0.0, attn_pdrop=0.0)
        return transformers.GPT2LMHeadModel(cfg), ["c_attn", "c_proj", "c_fc"], True
    cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=inter, num_hidden_layers=layers,
                                   num_attention_heads=heads, num_key_value_heads=kv,
                                   max_position_embeddings=max(seq, 1024), rope_theta=500000.0,
                                   tie_word_embeddings=False)
    return (transformers.LlamaForCausalLM(cfg),
            ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="gpt2-small-cpu", choices=sorted(CONFIGS))
    ap.add_argument("--mode", default="lora", choices=["full", "lora"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    args = ap.parse_args()
    torch.manual_seed(0)
    model, targets, fifo = build(args.config, args.seq)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = model.to(args.device, dtype=dtype)
    if args.mode == "lora":
        import peft
        model = peft.get_peft_model(model, peft.LoraConfig(r=16, lora_alpha=32, target_modules=targets,
                                                           lora_dropout=0.0, fan_in_fan_out=fifo,
                                                           task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    vocab = CONFIGS[args.config][6]
    tok = torch.randint(0, vocab, (args.batch, args.seq), device=args.device)
    times = []
    for step in range(args.warmup + args.steps):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(input_ids=tok, labels=tok)
        out.loss.backward()
        opt.step()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(json.dumps({"bench": "train", "impl": "torch+peft" if args.mode == "lora" else "torch",
                      "config": args.config, "mode": args.mode, "device": args.device, "dtype": args.dtype,
                      "batch": args.batch, "seq": args.seq, "threads": torch.get_num_threads(),
                      "trainable": sum(p.numel() for p in params), "step_ms": 1e3 * t,
                      "tokens_per_s": args.batch * args.seq / t, "torch": torch.__version__,
                      "loss": float(out.loss)}))


if __name__ == "__main__":
    main()
