#!/usr/bin/env python3
"""Writes tests/data/nn/*.json: the transformer ops run through PyTorch and Hugging Face code.

Each file holds small fp32 inputs, the outputs and the autograd gradients of L = sum(y * dy) for
a random dy. The CPU backend must reproduce them (tests/nn/test_nn_torch.cpp):

  layernorm.json      torch.nn.functional.layer_norm (GPT-2's LayerNorm), with and without bias
  rmsnorm.json        transformers LlamaRMSNorm
  rope.json           transformers LlamaRotaryEmbedding + apply_rotary_pos_emb (rotate_half), with
                      per-token positions that restart (packed sequences)
  attention.json      transformers repeat_kv + causal softmax attention (eager, GQA 6 heads over 2)
                      and torch scaled_dot_product_attention(is_causal=True) as a second opinion
  activations.json    gelu(approximate="tanh") (GPT-2), silu(gate) * up (LLaMA MLP)
  cross_entropy.json  torch.nn.functional.cross_entropy(ignore_index=-100), mean over valid rows
  adamw.json          torch.optim.AdamW, three steps with given gradients
  embedding.json      torch.nn.Embedding with repeated ids (gradient accumulates per row)

Run:  python3 tests/gen/gen_nn_fixtures.py   (needs torch and transformers; CI does not run it)
"""
import json
import math
import os

import torch
import torch.nn.functional as F
import transformers
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (LlamaRMSNorm, LlamaRotaryEmbedding, apply_rotary_pos_emb,
                                                      repeat_kv)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "nn")


def flat(t):
    return [float(f"{v:.9g}") for v in t.detach().reshape(-1).tolist()]


def write(name, doc):
    doc["generator"] = f"tests/gen/gen_nn_fixtures.py (torch {torch.__version__}, transformers {transformers.__version__})"
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


def leaf(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape, dtype=torch.float32) * (hi - lo) + lo).requires_grad_(True)


def layernorm():
    cases = []
    for n, c, bias in ((5, 12, True), (3, 7, False)):
        x, w = leaf(n, c, lo=-2, hi=3), leaf(c, lo=0.5, hi=1.5)
        b = leaf(c) if bias else None
        y = F.layer_norm(x, (c,), w, b, eps=1e-5)
        dy = torch.rand(n, c) * 2 - 1
        (y * dy).sum().backward()
        case = {"n": n, "c": c, "eps": 1e-5, "x": flat(x), "gamma": flat(w), "y": flat(y), "dy": flat(dy),
                "dx": flat(x.grad), "dgamma": flat(w.grad)}
        if bias:
            case.update(beta=flat(b), dbeta=flat(b.grad))
        cases.append(case)
    write("layernorm.json", {"cases": cases})


def rmsnorm():
    n, c, eps = 6, 16, 1e-6
    norm = LlamaRMSNorm(c, eps=eps)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = leaf(n, c, lo=-2, hi=2)
    y = norm(x)
    dy = torch.rand(n, c) * 2 - 1
    (y * dy).sum().backward()
    write("rmsnorm.json", {"cases": [{"n": n, "c": c, "eps": eps, "x": flat(x), "gamma": flat(norm.weight),
                                      "y": flat(y), "dy": flat(dy), "dx": flat(x.grad),
                                      "dgamma": flat(norm.weight.grad)}]})


def llama_config(hidden, heads, kv_heads, theta):
    cfg = LlamaConfig(hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=kv_heads,
                      intermediate_size=4 * hidden, num_hidden_layers=1, vocab_size=32, max_position_embeddings=4096)
    # transformers >= 5 keeps rope_theta in rope_parameters; older versions in rope_theta
    if getattr(cfg, "rope_parameters", None) is not None:
        cfg.rope_parameters = {"rope_type": "default", "rope_theta": theta}
    cfg.rope_theta = theta
    return cfg


def rope():
    # q [B, H, T, D] and k [B, Hkv, T, D] as HF holds them; culora's layout is [B·T, heads·D].
    B, T, H, HKV, D, theta = 2, 7, 3, 1, 8, 10000.0
    cfg = llama_config(H * D, H, HKV, theta)
    emb = LlamaRotaryEmbedding(cfg)
    pos = torch.tensor([[0, 1, 2, 3, 0, 1, 2], [5, 6, 7, 8, 9, 100, 2047]])  # restarts and a large position
    q, k = leaf(B, H, T, D), leaf(B, HKV, T, D)
    cos, sin = emb(q, pos)
    qe, ke = apply_rotary_pos_emb(q, k, cos, sin)
    gq, gk = torch.rand_like(qe) * 2 - 1, torch.rand_like(ke) * 2 - 1
    ((qe * gq).sum() + (ke * gk).sum()).backward()
    tok = lambda t: t.permute(0, 2, 1, 3).reshape(B * T, -1)  # noqa: E731  [B,h,T,D] -> [B·T, h·D]
    write("rope.json", {"cases": [{"batch": B, "seq": T, "n_heads": H, "n_kv_heads": HKV, "head_dim": D,
                                   "theta": theta, "pos": pos.reshape(-1).tolist(),
                                   "inv_freq": flat(emb.inv_freq), "q": flat(tok(q)), "k": flat(tok(k)),
                                   "q_out": flat(tok(qe)), "k_out": flat(tok(ke)), "dq_out": flat(tok(gq)),
                                   "dk_out": flat(tok(gk)), "dq": flat(tok(q.grad)), "dk": flat(tok(k.grad))}]})


def attention():
    B, T, H, HKV, D = 2, 9, 6, 2, 4
    scale = 1.0 / math.sqrt(D)
    q, k, v = leaf(B, H, T, D, lo=-2, hi=2), leaf(B, HKV, T, D, lo=-2, hi=2), leaf(B, HKV, T, D)
    # transformers' eager path: repeat_kv, scores, causal mask, softmax in fp32, P·V
    kr, vr = repeat_kv(k, H // HKV), repeat_kv(v, H // HKV)
    s = torch.matmul(q, kr.transpose(2, 3)) * scale
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    y = torch.matmul(torch.softmax(s, dim=-1), vr)
    y_sdpa = F.scaled_dot_product_attention(q, kr, vr, is_causal=True, scale=scale)
    assert torch.allclose(y, y_sdpa, atol=1e-5), "eager and SDPA disagree"
    dy = torch.rand_like(y) * 2 - 1
    (y * dy).sum().backward()
    tok = lambda t: t.permute(0, 2, 1, 3).reshape(B * T, -1)  # noqa: E731
    write("attention.json", {"cases": [{"batch": B, "seq": T, "n_heads": H, "n_kv_heads": HKV, "head_dim": D,
                                        "scale": scale, "q": flat(tok(q)), "k": flat(tok(k)), "v": flat(tok(v)),
                                        "y": flat(tok(y)), "lse": flat(lse), "dy": flat(tok(dy)),
                                        "dq": flat(tok(q.grad)), "dk": flat(tok(k.grad)),
                                        "dv": flat(tok(v.grad))}]})


def activations():
    n, c = 4, 9
    x = leaf(n, c, lo=-5, hi=5)
    y = F.gelu(x, approximate="tanh")
    dy = torch.rand(n, c) * 2 - 1
    (y * dy).sum().backward()
    g, u = leaf(n, c, lo=-6, hi=6), leaf(n, c, lo=-2, hi=2)
    s = F.silu(g) * u
    ds = torch.rand(n, c) * 2 - 1
    (s * ds).sum().backward()
    write("activations.json", {"n": n, "c": c,
                               "gelu": {"x": flat(x), "y": flat(y), "dy": flat(dy), "dx": flat(x.grad)},
                               "swiglu": {"gate": flat(g), "up": flat(u), "y": flat(s), "dy": flat(ds),
                                          "dgate": flat(g.grad), "dup": flat(u.grad)}})


def cross_entropy():
    n, V = 8, 37
    logits = leaf(n, V, lo=-4, hi=4)
    targets = torch.randint(0, V, (n,))
    targets[0] = targets[3] = targets[4] = -100  # masked prompt tokens
    loss = F.cross_entropy(logits, targets, ignore_index=-100)
    loss.backward()
    per_row = F.cross_entropy(logits.detach(), targets, ignore_index=-100, reduction="none")
    write("cross_entropy.json", {"cases": [{"n": n, "vocab": V, "logits": flat(logits), "targets": targets.tolist(),
                                            "loss": float(loss.detach()), "losses": flat(per_row),
                                            "dlogits": flat(logits.grad)}]})


def adamw():
    n = 16
    p = torch.nn.Parameter(torch.rand(n) * 2 - 1)
    hp = {"lr": 1e-2, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1}
    opt = torch.optim.AdamW([p], **hp)
    p0 = flat(p)
    steps = []
    for _ in range(3):
        g = torch.rand(n) * 4 - 2
        p.grad = g.clone()
        opt.step()
        st = opt.state[p]
        steps.append({"grad": flat(g), "param": flat(p), "m": flat(st["exp_avg"]), "v": flat(st["exp_avg_sq"])})
    write("adamw.json", {"n": n, "lr": hp["lr"], "beta1": hp["betas"][0], "beta2": hp["betas"][1], "eps": hp["eps"],
                         "weight_decay": hp["weight_decay"], "param0": p0, "steps": steps})


def embedding():
    n, c, V = 6, 5, 4
    emb = torch.nn.Embedding(V, c)
    tokens = torch.tensor([2, 0, 2, 3, 2, 1])
    y = emb(tokens)
    dy = torch.rand(n, c) * 2 - 1
    (y * dy).sum().backward()
    write("embedding.json", {"n": n, "c": c, "vocab": V, "tokens": tokens.tolist(), "wte": flat(emb.weight),
                             "y": flat(y), "dy": flat(dy), "dwte": flat(emb.weight.grad)})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20240611)
    layernorm()
    rmsnorm()
    rope()
    attention()
    activations()
    cross_entropy()
    adamw()
    embedding()


if __name__ == "__main__":
    main()
