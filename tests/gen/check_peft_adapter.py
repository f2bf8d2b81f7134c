#!/usr/bin/env python3
"""check_peft_adapter.py — an adapter trained by culora loads in PEFT and gives the same logits.

  1. `culora init` a tiny LLaMA and `culora train --mode lora` it for a few steps on a text;
  2. transformers + PeftModel.from_pretrained load the base and culora's adapter: logits for fixed
     tokens;
  3. culora computes the same logits through its C API (ctypes on libculora.so);
  4. `culora merge` writes a merged model; transformers loads it: logits again.
All three must agree (fp32 on both sides: max |diff| < 1e-4). Run by hand (needs torch,
transformers, peft); not part of CI.

usage: python3 tests/gen/check_peft_adapter.py BUILD_DIR [TEXT_FILE]
"""
import ctypes
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
from peft import PeftModel


class ContextParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("api_version", ctypes.c_uint32), ("backend", ctypes.c_int32),
                ("device", ctypes.c_int32), ("stream", ctypes.c_void_p), ("workspace", ctypes.c_void_p),
                ("workspace_bytes", ctypes.c_size_t), ("n_threads", ctypes.c_int32)]


class ModelParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("api_version", ctypes.c_uint32), ("mode", ctypes.c_int32),
                ("lora", ctypes.c_void_p), ("adapter_dir", ctypes.c_char_p), ("seed", ctypes.c_uint64),
                ("max_batch", ctypes.c_int64), ("max_seq", ctypes.c_int64), ("quant_format", ctypes.c_int32),
                ("quant_flags", ctypes.c_uint32), ("quant_blocksize", ctypes.c_int32)]


def culora_logits(lib, base, adapter, tokens):
    ctx = ctypes.c_void_p()
    cp = ContextParams(ctypes.sizeof(ContextParams), 1, 1, 0, None, None, 0, 0)  # CPU backend
    assert lib.culora_context_create(ctypes.byref(cp), ctypes.byref(ctx)) == 0
    mp = ModelParams(ctypes.sizeof(ModelParams), 1, 0, None, adapter.encode(), 0, 1, len(tokens), 0, 0, 0)
    m = ctypes.c_void_p()
    rc = lib.culora_model_load(ctx, base.encode(), ctypes.byref(mp), ctypes.byref(m))
    lib.culora_context_last_error.restype = ctypes.c_char_p
    assert rc == 0, lib.culora_context_last_error(ctx)
    toks = (ctypes.c_int32 * len(tokens))(*tokens)
    assert lib.culora_model_forward(m, toks, None, ctypes.c_int64(1), ctypes.c_int64(len(tokens)), None) == 0
    V = 256
    out = np.zeros(len(tokens) * V, dtype=np.float32)
    assert lib.culora_model_logits(m, ctypes.c_int64(0), ctypes.c_int64(len(tokens)),
                                   out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))) == 0
    lib.culora_model_destroy(m)
    lib.culora_context_destroy(ctx)
    return out.reshape(len(tokens), V)


def main():
    build = sys.argv[1]
    text = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
    cli = os.path.join(build, "culora")
    lib = ctypes.CDLL(os.path.join(build, "libculora.so"))
    with tempfile.TemporaryDirectory() as d:
        base, out, merged = os.path.join(d, "base"), os.path.join(d, "run"), os.path.join(d, "merged")
        subprocess.run([cli, "init", "--arch", "llama", "--layers", "2", "--dim", "64", "--heads", "4",
                        "--kv-heads", "2", "--max-pos", "64", "--out", base], check=True)
        subprocess.run([cli, "train", "--model", base, "--data", text, "--mode", "lora", "--rank", "8", "--alpha",
                        "16", "--targets", "q_proj,v_proj,down_proj", "--seq-len", "32", "--batch", "4", "--steps",
                        "15", "--lr", "1e-2", "--out", out, "--quiet", "--device", "cpu"], check=True)
        adapter = os.path.join(out, "adapter")
        subprocess.run([cli, "merge", "--model", base, "--adapter", adapter, "--out", merged], check=True)
        tokens = [ord(c) for c in "Hello, culora! LoRA adapters."]
        ids = torch.tensor([tokens])
        peft_model = PeftModel.from_pretrained(transformers.AutoModelForCausalLM.from_pretrained(base), adapter)
        with torch.no_grad():
            lp = peft_model(input_ids=ids).logits[0].numpy()
            lm = transformers.AutoModelForCausalLM.from_pretrained(merged)(input_ids=ids).logits[0].numpy()
            lb = transformers.AutoModelForCausalLM.from_pretrained(base)(input_ids=ids).logits[0].numpy()
        lc = culora_logits(lib, base, adapter, tokens)
        d_cp = np.abs(lc - lp).max()
        d_mp = np.abs(lm - lp).max()
        d_ad = np.abs(lp - lb).max()
        print(f"adapter changes the logits by up to {d_ad:.4f} (must be > 0: the check is not vacuous)")
        print(f"culora (C API, unmerged) vs PEFT: max |diff| {d_cp:.2e}")
        print(f"culora merge -> transformers vs PEFT: max |diff| {d_mp:.2e}")
        ok = d_ad > 1e-3 and d_cp < 1e-4 and d_mp < 1e-4
        print("OK" if ok else "MISMATCH")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
