#!/usr/bin/env python3
"""Loads the config.json files culora_model_config_save writes in transformers (not part of CI:
needs torch and transformers).

    python3 tests/gen/check_config_write.py [BUILD_DIR]      # default build

1. Runs BUILD_DIR/tests/test_io --gtest_filter=ConfigWrite.* with CULORA_IO_EXPORT_DIR set to a temp
   dir (tests/io/test_hf_config_write.cpp): it writes config_*/config.json and, beside each,
   config_*.culora.json (the culora_model_config it read back and the parameter tensors culora
   expects for it).
2. For each: transformers.AutoConfig.from_pretrained gives the right config class with every value
   culora wrote (sizes, heads, head_dim, eps, activation, tying, biases, RoPE theta and llama3
   scaling, bos/eos); AutoModelForCausalLM.from_config builds GPT2LMHeadModel / LlamaForCausalLM
   whose parameters are exactly culora's expected tensors (names without "transformer.", shapes),
   and a forward pass runs. For llama3 RoPE the model's inv_freq equals the one transformers
   computes from a LlamaConfig built directly with the same values.
Exits non-zero on any mismatch.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ACT = {1: "gelu_new", 2: "gelu", 3: "silu", 4: "relu"}
failures = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        failures.append(what)


def token(v):
    return None if v < 0 else v


def check_one(path, want):
    name = os.path.basename(path)
    print(f"{name}: {want['architecture']}")
    cfg = AutoConfig.from_pretrained(path)
    llama = want["architecture"] == "LlamaForCausalLM"
    check(type(cfg).__name__ == ("LlamaConfig" if llama else "GPT2Config"), f"AutoConfig -> {type(cfg).__name__}")
    check(cfg.architectures == [want["architecture"]], f"architectures {cfg.architectures}")
    check(cfg.dtype == torch.float32, f"dtype {cfg.dtype}")
    if llama:
        got = dict(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, n_layers=cfg.num_hidden_layers,
                   n_heads=cfg.num_attention_heads, n_kv_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim,
                   intermediate_size=cfg.intermediate_size, max_position_embeddings=cfg.max_position_embeddings,
                   norm_eps=cfg.rms_norm_eps, activation=cfg.hidden_act, attention_bias=cfg.attention_bias,
                   mlp_bias=cfg.mlp_bias)
    else:
        got = dict(vocab_size=cfg.vocab_size, hidden_size=cfg.n_embd, n_layers=cfg.n_layer, n_heads=cfg.n_head,
                   n_kv_heads=cfg.n_head, head_dim=cfg.n_embd // cfg.n_head, intermediate_size=cfg.n_inner,
                   max_position_embeddings=cfg.n_positions, norm_eps=cfg.layer_norm_epsilon,
                   activation=cfg.activation_function, attention_bias=True, mlp_bias=True)
        check(cfg.scale_attn_weights and not cfg.scale_attn_by_inverse_layer_idx and not cfg.add_cross_attention
              and not cfg.reorder_and_upcast_attn, "GPT-2 attention flags are the defaults culora implements")
    exp = {k: want[k] for k in got}
    exp["activation"] = ACT[want["activation"]]
    check(got == exp, f"sizes, eps, activation, biases as culora wrote them {'' if got == exp else (got, exp)}")
    check(cfg.tie_word_embeddings == want["tie_word_embeddings"], f"tie_word_embeddings {cfg.tie_word_embeddings}")
    check(cfg.bos_token_id == token(want["bos_token_id"]) and cfg.eos_token_id == token(want["eos_token_id"]),
          f"bos/eos {cfg.bos_token_id}/{cfg.eos_token_id}")
    if llama:
        rp = cfg.rope_parameters
        ok = rp["rope_theta"] == want["rope_theta"]
        if want["rope_type"] == 2:
            ok = ok and rp["rope_type"] == "llama3" and rp["factor"] == want["rope_factor"] and \
                rp["low_freq_factor"] == want["rope_low_freq_factor"] and \
                rp["high_freq_factor"] == want["rope_high_freq_factor"] and \
                rp["original_max_position_embeddings"] == want["rope_original_max_position_embeddings"]
        else:
            ok = ok and rp["rope_type"] == "default"
        check(ok, f"rope_parameters {rp}")

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    check(type(model).__name__ == want["architecture"], f"AutoModelForCausalLM -> {type(model).__name__}")
    params = {n[len("transformer."):] if n.startswith("transformer.") else n: list(p.shape)
              for n, p in model.named_parameters()}  # tied lm_head is deduplicated
    check(params == want["tensors"],
          f"{len(params)} parameters == culora's expected tensors" +
          ("" if params == want["tensors"] else f": only transformers {sorted(set(params) - set(want['tensors']))}, "
           f"only culora {sorted(set(want['tensors']) - set(params))}, "
           f"shapes {[(k, params[k], want['tensors'][k]) for k in params if k in want['tensors'] and params[k] != want['tensors'][k]]}"))
    with torch.no_grad():
        logits = model(torch.tensor([[0, 1, 2, 3]])).logits
    check(list(logits.shape) == [1, 4, want["vocab_size"]] and bool(torch.isfinite(logits).all()),
          f"forward runs, logits {list(logits.shape)}")
    if llama and want["rope_type"] == 2:
        ref = LlamaForCausalLM(LlamaConfig(
            vocab_size=want["vocab_size"], hidden_size=want["hidden_size"], intermediate_size=want["intermediate_size"],
            num_hidden_layers=want["n_layers"], num_attention_heads=want["n_heads"],
            num_key_value_heads=want["n_kv_heads"], head_dim=want["head_dim"],
            max_position_embeddings=want["max_position_embeddings"],
            rope_parameters={"rope_type": "llama3", "rope_theta": want["rope_theta"], "factor": want["rope_factor"],
                             "low_freq_factor": want["rope_low_freq_factor"],
                             "high_freq_factor": want["rope_high_freq_factor"],
                             "original_max_position_embeddings": want["rope_original_max_position_embeddings"]}))
        check(torch.equal(model.model.rotary_emb.inv_freq, ref.model.rotary_emb.inv_freq),
              "llama3 inv_freq equals transformers' own for the same parameters")


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
    test_io = os.path.join(build, "tests", "test_io")
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, CULORA_IO_EXPORT_DIR=out)
        subprocess.run([test_io, "--gtest_filter=ConfigWrite.*", "--gtest_brief=1"], env=env, check=True)
        names = sorted(n[:-len(".culora.json")] for n in os.listdir(out) if n.endswith(".culora.json"))
        check(len(names) >= 6, f"{len(names)} configs exported: {names}")
        for n in names:
            with open(os.path.join(out, n + ".culora.json")) as f:
                check_one(os.path.join(out, n), json.load(f))
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print("all checks passed")


if __name__ == "__main__":
    main()
