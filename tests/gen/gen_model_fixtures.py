#!/usr/bin/env python3
"""Writes tiny GPT-2 and LLaMA models with PEFT LoRA adapters, and what PyTorch computes with them,
for tests/model/test_model_oracle.cpp:

  tests/data/model/<arch>/            config.json + model.safetensors (transformers save_pretrained)
  tests/data/model/<arch>_adapter/    adapter_config.json + adapter_model.safetensors (PEFT save_pretrained)
  tests/data/model/<arch>_oracle.json tokens, targets, logits, the loss, every LoRA gradient, and the
                                      losses of 5 torch.optim.AdamW steps on the same batch

Models: 2 layers, hidden 32, 4 heads (LLaMA: 2 key/value heads — GQA on, untied lm_head), vocab
96, random init (seeded). LoRA r=4, alpha=8 on every attention and MLP linear, init_lora_weights=False
(so B is not zero and the adapter changes the logits), dropout 0. Loss: mean cross-entropy of
logits[b, t] against targets[b, t] = tokens[b, t+1], -100 on the last position and a few masked ones.

Run:  python3 tests/gen/gen_model_fixtures.py   (needs torch, transformers, peft; not run by CI)
"""
import json
import os
import shutil

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "model")
B, T, V = 2, 16, 96
LR, BETAS, EPS, WD, STEPS = 1e-2, (0.9, 0.999), 1e-8, 0.01, 5


def flat(t):
    return [float(f"{v:.9g}") for v in t.detach().float().reshape(-1).tolist()]


def make(arch):
    torch.manual_seed(1234 if arch == "gpt2" else 4321)
    if arch == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=V, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                                      activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                                      attn_pdrop=0.0)
        model = transformers.GPT2LMHeadModel(cfg)
        targets = ["c_attn", "c_proj", "c_fc"]
        fifo = True
    else:
        cfg = transformers.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                                       rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                                       attention_dropout=0.0)
        model = transformers.LlamaForCausalLM(cfg)
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        fifo = False
    model = model.float().eval()
    base_dir = os.path.join(OUT, arch)
    shutil.rmtree(base_dir, ignore_errors=True)
    model.save_pretrained(base_dir, safe_serialization=True)
    lcfg = LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0, init_lora_weights=False,
                      fan_in_fan_out=fifo, bias="none", task_type="CAUSAL_LM")
    pm = get_peft_model(model, lcfg)
    ad_dir = os.path.join(OUT, arch + "_adapter")
    shutil.rmtree(ad_dir, ignore_errors=True)
    pm.save_pretrained(ad_dir)
    for extra in (os.path.join(ad_dir, "README.md"), os.path.join(base_dir, "generation_config.json")):
        if os.path.exists(extra):
            os.remove(extra)

    g = torch.Generator().manual_seed(99)
    tokens = torch.randint(0, V, (B, T), generator=g)
    tgt = torch.full((B, T), -100, dtype=torch.long)
    tgt[:, :-1] = tokens[:, 1:]
    tgt[0, 3] = -100  # a masked prompt-like position
    tgt[1, 0:2] = -100

    def loss_of(out):
        return torch.nn.functional.cross_entropy(out.logits.reshape(-1, V), tgt.reshape(-1), ignore_index=-100)

    pm.train()  # dropout is 0 everywhere: train and eval compute the same
    out = pm(input_ids=tokens)
    loss = loss_of(out)
    loss.backward()
    grads = {}
    for name, p in pm.named_parameters():
        if p.requires_grad:
            mod = name.replace("base_model.model.", "").replace(".default.weight", "")
            grads.setdefault(mod.rsplit(".", 1)[0], {})[mod.rsplit(".", 1)[1]] = flat(p.grad)
    logits = flat(out.logits)

    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=LR, betas=BETAS, eps=EPS,
                            weight_decay=WD)
    opt.zero_grad()
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        l = loss_of(pm(input_ids=tokens))
        losses.append(float(l))
        l.backward()
        opt.step()
    losses.append(float(loss_of(pm(input_ids=tokens))))
    doc = {"generator": "tests/gen/gen_model_fixtures.py", "torch": torch.__version__,
           "transformers": transformers.__version__, "peft": peft.__version__, "arch": arch, "batch": B, "seq": T,
           "vocab": V, "tokens": tokens.reshape(-1).tolist(), "targets": tgt.reshape(-1).tolist(), "logits": logits,
           "loss": float(loss), "lora_grads": grads,
           "adamw": {"lr": LR, "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS, "weight_decay": WD,
                     "losses": losses}}
    with open(os.path.join(OUT, arch + "_oracle.json"), "w") as f:
        json.dump(doc, f)
        f.write("\n")
    print(arch, "loss", float(loss), "adamw losses", losses)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make("gpt2")
    make("llama")
