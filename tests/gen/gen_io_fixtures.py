#!/usr/bin/env python3
"""Writes the I/O oracle fixtures under tests/data/io/ with the real reference libraries.

    python3 tests/gen/gen_io_fixtures.py            # needs torch, safetensors, transformers, peft

CI does not run this (it lacks those packages); tests read only the small committed outputs:

  safetensors/dtypes.safetensors  save_file() with many dtypes, a scalar, an empty tensor, metadata
  safetensors/expected.json       dtype, shape and values (as float64) of every tensor in it
  gpt2/                           transformers GPT2LMHeadModel (tiny, random): config.json + model.safetensors
  llama/                          transformers LlamaForCausalLM (tiny, GQA, rope_theta 5e5, untied)
  llama_sharded/                  the same model saved in shards + model.safetensors.index.json
  configs/*.json                  config.json variants (llama3 rope scaling, tied LLaMA, an unsupported arch)
  adapter_gpt2/                   PEFT save_pretrained: GPT-2 c_attn + c_proj (Conv1D, fan_in_fan_out)
  adapter_llama/                  PEFT: q/v_proj + embed_tokens, rank_pattern, alpha_pattern, rsLoRA,
                                  modules_to_save=["lm_head"]
  adapter_regex/                  PEFT: target_modules as a regex string
  adapters_expected.json          per adapter: PEFT's delta weights for some modules and PEFT's own
                                  decisions (targeted, r, alpha) for every module name of the base model
Every file stays well under 200 KB. The output is deterministic for a given library version, except
the order of __metadata__ keys in dtypes.safetensors (the Rust writer keeps them in a HashMap).
"""
import json
import os
import shutil
import sys

if os.environ.get("PYTHONHASHSEED") != "0":  # PEFT stores target_modules as a set: fix its order
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

import peft
from peft import LoraConfig, get_peft_model
from peft.tuners.tuners_utils import check_target_module_exists
from peft.utils.other import get_pattern_key

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "io")


def clean(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def values(t):
    if t.dtype == torch.bool:
        return [float(v) for v in t.flatten().tolist()]
    return [float(v) for v in t.to(torch.float64).flatten().tolist()]


def gen_safetensors():
    d = os.path.join(OUT, "safetensors")
    clean(d)
    g = torch.Generator().manual_seed(1)
    base = (torch.arange(24, dtype=torch.float64) * 0.25 - 3.0).reshape(2, 3, 4)
    tensors = {
        "f32": base.to(torch.float32),
        "f16": base.to(torch.float16),
        "bf16": torch.randn(3, 5, generator=g).to(torch.bfloat16),
        "f64": torch.randn(4, generator=g).to(torch.float64),
        "i8": torch.tensor([-128, -1, 0, 1, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 200, 255], dtype=torch.uint8),
        "i16": torch.tensor([[-32768, 7], [8, 32767]], dtype=torch.int16),
        "i32": torch.tensor([-(2**31), 0, 2**31 - 1], dtype=torch.int32),
        "i64": torch.tensor([-(2**40), 3], dtype=torch.int64),
        "bool": torch.tensor([True, False, True], dtype=torch.bool),
        "f8_e4m3": torch.tensor([0.5, -1.0, 2.0], dtype=torch.float32).to(torch.float8_e4m3fn),
        "f8_e5m2": torch.tensor([0.25, 4.0], dtype=torch.float32).to(torch.float8_e5m2),
        "scalar": torch.tensor(1.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "a.long.name/with:punct": torch.ones(2, dtype=torch.float32),
    }
    meta = {"format": "pt", "producer": "gen_io_fixtures.py", "unicode": "caf\u00e9 \u2713"}
    save_file(tensors, os.path.join(d, "dtypes.safetensors"), metadata=meta)
    exp = {"metadata": meta, "tensors": {}}
    st_names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
                torch.int8: "I8", torch.uint8: "U8", torch.int16: "I16", torch.int32: "I32", torch.int64: "I64",
                torch.bool: "BOOL", torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2"}
    for k, t in tensors.items():
        exp["tensors"][k] = {"dtype": st_names[t.dtype], "shape": list(t.shape), "values": values(t)}
    # Python-written bytes for the same tensors without metadata order ambiguity: one key only
    save_file({k: tensors[k] for k in ("f32", "bf16", "i8", "scalar", "empty")},
              os.path.join(d, "layout.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)


def tiny_gpt2():
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=2, n_head=2)
    return GPT2LMHeadModel(cfg).eval()


def tiny_llama(**kw):
    torch.manual_seed(0)
    args = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=32, rope_theta=500000.0, rms_norm_eps=1e-5,
                tie_word_embeddings=False)
    args.update(kw)
    return LlamaForCausalLM(LlamaConfig(**args)).eval()


def save_model(model, name, **kw):
    d = os.path.join(OUT, name)
    clean(d)
    model.save_pretrained(d, **kw)
    gc = os.path.join(d, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)


def gen_models():
    save_model(tiny_gpt2(), "gpt2")
    save_model(tiny_llama(), "llama")
    save_model(tiny_llama(), "llama_sharded", max_shard_size="8KB")
    d = os.path.join(OUT, "configs")
    clean(d)
    LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                num_key_value_heads=1, rope_theta=500000.0, tie_word_embeddings=True,
                rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                bos_token_id=128000, eos_token_id=[128001, 128009]).to_json_file(os.path.join(d, "llama3_rope.json"))
    cfg = GPT2Config(n_embd=32, n_layer=1, n_head=4).to_dict()
    cfg["architectures"] = ["GPT2ForSequenceClassification"]
    with open(os.path.join(d, "unsupported_arch.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def module_names(model):
    return [n for n, _ in model.named_modules() if n]


def peft_decisions(config, base_names):
    out = {}
    for n in base_names:
        hit = check_target_module_exists(config, n)
        targeted = bool(hit) and type(hit).__name__ != "_ExcludedModule"
        rk = get_pattern_key(config.rank_pattern.keys(), n)
        ak = get_pattern_key(config.alpha_pattern.keys(), n)
        out[n] = {"targeted": targeted, "r": config.rank_pattern.get(rk, config.r),
                  "alpha": config.alpha_pattern.get(ak, config.lora_alpha)}
    return out


def make_adapter(name, base, config, delta_modules):
    names = module_names(base)
    torch.manual_seed(42)
    pm = get_peft_model(base, config)
    with torch.no_grad():  # non-zero B so that the delta weights carry information
        for n, p in pm.named_parameters():
            if "lora_B" in n or "lora_embedding_A" in n:
                p.copy_(torch.randn_like(p) * 0.1)
    d = os.path.join(OUT, name)
    clean(d)
    pm.save_pretrained(d)
    readme = os.path.join(d, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    deltas = {}
    for mod_name in delta_modules:
        mod = pm.base_model.model.get_submodule(mod_name)
        dw = mod.get_delta_weight("default")
        deltas[mod_name] = {"shape": list(dw.shape), "values": values(dw), "scaling": mod.scaling["default"]}
    cfg = pm.peft_config["default"]
    return {"deltas": deltas, "decisions": peft_decisions(cfg, names)}


def gen_adapters():
    exp = {"peft_version": peft.__version__}
    exp["adapter_gpt2"] = make_adapter(
        "adapter_gpt2", tiny_gpt2(),
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True,
                   task_type="CAUSAL_LM"),
        ["transformer.h.0.attn.c_attn", "transformer.h.1.mlp.c_proj"])
    exp["adapter_llama"] = make_adapter(
        "adapter_llama", tiny_llama(),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "embed_tokens"], use_rslora=True,
                   rank_pattern={"v_proj": 2}, alpha_pattern={"layers.1.self_attn.q_proj": 16},
                   modules_to_save=["lm_head"], task_type="CAUSAL_LM"),
        ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
         "model.embed_tokens"])
    exp["adapter_regex"] = make_adapter(
        "adapter_regex", tiny_llama(),
        LoraConfig(r=2, lora_alpha=4, target_modules=r".*\.(q|k)_proj", rank_pattern={"^model.layers.1.*": 3},
                   task_type="CAUSAL_LM"),
        ["model.layers.0.self_attn.k_proj", "model.layers.1.self_attn.q_proj"])
    with open(os.path.join(OUT, "adapters_expected.json"), "w") as f:
        json.dump(exp, f, separators=(",", ":"))


def main():
    os.makedirs(OUT, exist_ok=True)
    gen_safetensors()
    gen_models()
    gen_adapters()
    big = []
    for root, _, files in os.walk(OUT):
        for fn in files:
            p = os.path.join(root, fn)
            if os.path.getsize(p) > 200_000:
                big.append((p, os.path.getsize(p)))
    if big:
        sys.exit(f"fixtures too large: {big}")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
