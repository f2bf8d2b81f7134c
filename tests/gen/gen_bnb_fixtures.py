#!/usr/bin/env python3
"""Writes the bitsandbytes oracle fixtures under tests/data/quant/ with the real bitsandbytes.

    pip install bitsandbytes torch safetensors transformers
    python3 tests/gen/gen_bnb_fixtures.py

CI does not run this; tests read only the small committed outputs. Everything here runs on the
CPU: bitsandbytes >= 0.48 has a CPU path for every function used (checked with 0.50.2, where
quantize_4bit is the PyTorch "default" kernel in backends/default/ops.py, quantize_blockwise and
dequantize_blockwise / dequantize_4bit are the C library's cquantize_blockwise_cpu_* /
cdequantize_blockwise_cpu_* in libbitsandbytes_cpu.so, and int8_vectorwise_quant/_dequant are the
PyTorch default kernels). The fixtures record the versions in their metadata.

Files (safetensors; tensors named after what they hold):
  nf4_bs{32,64,128,256}.safetensors  input F32 [16,256] with special blocks (below), quantize_4bit
                                     nf4 outputs: packed U8 [n/2,1], absmax F32; dequantize_4bit
                                     to F32: dequant
  fp4_bs{64,128}.safetensors         the same for fp4
  nf4_dq_bs64.safetensors            compress_statistics=True on input BF16 [20,1024] (320 blocks:
                                     one full nested block of 256 and a partial one of 64):
                                     packed, absmax_q U8 [320], nested_absmax F32 [2],
                                     nested_code F32 [256], offset F32 [] (absmax.mean() as torch
                                     computed it), absmax_f32 (the first-level absmax before
                                     double quantization, from the same call without DQ),
                                     absmax_dq (nested dequant + offset), dequant F32
  fp4_dq_bs32.safetensors            the same for fp4, blocksize 32, input BF16 [10,960] (300 blocks),
                                     plus dequant_bf16 (dequantize_4bit to the input's bf16)
  int8_rowwise.safetensors           int8_vectorwise_quant (threshold 0) of input F32 [24,96] with a
                                     zero row, a row with one huge outlier, denormals, exact .5
                                     rounding ties, and a value whose scale 127/absmax must be
                                     computed as torch does (reciprocal, then ·127): cb I8, scb F32,
                                     dequant F32
                                     (int8_vectorwise_dequant)
  int8_act_t6.safetensors            int8_vectorwise_quant(threshold=6.0) of activations F32 [6,96]
                                     with outliers: cb I8, row_stats F32, outlier_cols I64
  hf_tiny/                           transformers LlamaForCausalLM (tiny, bf16): config.json +
                                     model.safetensors: the input of `culora quantize`
  hf_tiny_nf4_dq/ hf_tiny_nf4/ hf_tiny_fp4/ hf_tiny_int8/
                                     the same model loaded with BitsAndBytesConfig(load_in_4bit /
                                     load_in_8bit, ...) on the CPU and saved with save_pretrained:
                                     the serialization culora writes and reads
Special 4-bit blocks (F32 fixtures; block = blocksize consecutive elements of the flattened input):
  0 all zeros; 1 normal values plus one huge outlier (1e4); 2 all fp32 subnormals (absmax below
  the 1e-38 clamp bitsandbytes applies to the reciprocal); 3 a mix of normals, subnormals, +0 and -0;
  4 absmax 1.0 and every other element exactly on a rounding midpoint of the code (ties);
  5 the absmax element negative (-3.0); the rest normal values at scales from 1e-3 to 1e2.
"""
import copy
import json
import os
import shutil

import torch
from safetensors.torch import save_file

import bitsandbytes
import bitsandbytes.functional as F
import transformers
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "quant")
VERSIONS = {
    "generator": "tests/gen/gen_bnb_fixtures.py",
    "bitsandbytes": bitsandbytes.__version__,
    "torch": torch.__version__,
    "transformers": transformers.__version__,
}
# One metadata key: safetensors keeps __metadata__ in a hash map, so several keys would come out
# in a different order on every run.
META = {"source": "; ".join(f"{k} {v}" for k, v in VERSIONS.items())}


def code_midpoints(quant_type):
    code = F.get_4bit_type(quant_type, device="cpu")
    s = torch.sort(code).values
    return ((s[:-1] + s[1:]) / 2).tolist()


def special_input(rows, cols, blocksize, quant_type, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows * cols, generator=g, dtype=torch.float32)
    nb = rows * cols // blocksize
    scales = torch.logspace(-3, 2, nb, dtype=torch.float64).to(torch.float32)
    x = (x.view(nb, blocksize) * scales.view(-1, 1)).view(-1)
    b = blocksize
    x[0:b] = 0.0                                               # 0: all zeros
    x[b + 5] = 1.0e4                                           # 1: one huge outlier
    x[2 * b:3 * b] = torch.randn(b, generator=g) * 1.0e-40     # 2: all subnormal
    blk = torch.randn(b, generator=g)                          # 3: normals, subnormals, +-0
    blk[1::4] *= 1.0e-41
    blk[2] = 0.0
    blk[6] = -0.0
    x[3 * b:4 * b] = blk
    mids = code_midpoints(quant_type)                           # 4: ties
    blk = torch.tensor([mids[i % len(mids)] for i in range(b)], dtype=torch.float32)
    blk[0] = 1.0
    x[4 * b:5 * b] = blk
    blk = torch.randn(b, generator=g).clamp(-2.5, 2.5)          # 5: negative absmax
    blk[7] = -3.0
    x[5 * b:6 * b] = blk
    return x.view(rows, cols)


def write(name, tensors):
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(OUT, name), metadata=META)


def four_bit(quant_type, blocksize):
    x = special_input(16, 256, blocksize, quant_type, 1000 + blocksize)
    packed, st = F.quantize_4bit(x, blocksize=blocksize, compress_statistics=False, quant_type=quant_type)
    deq = F.dequantize_4bit(packed, st)
    assert deq.dtype == torch.float32
    write(f"{quant_type}_bs{blocksize}.safetensors",
          {"input": x, "packed": packed, "absmax": st.absmax, "dequant": deq})


def four_bit_dq(quant_type, blocksize, rows, cols, seed):
    g = torch.Generator().manual_seed(seed)
    nb = rows * cols // blocksize
    scales = torch.logspace(-2, 0.5, nb, dtype=torch.float64).to(torch.float32)
    perm = torch.randperm(nb, generator=g)
    x = (torch.randn(nb, blocksize, generator=g) * scales[perm].view(-1, 1)).view(-1)
    x[0:blocksize] = 0.0                      # an all-zero block: absmax 0 far below the mean
    x[3 * blocksize + 1] = 40.0               # an outlier block: the nested absmax of block 0
    x = x.view(rows, cols).to(torch.bfloat16)
    packed, st = F.quantize_4bit(x, blocksize=blocksize, compress_statistics=True, quant_type=quant_type)
    _, st_plain = F.quantize_4bit(x, blocksize=blocksize, compress_statistics=False, quant_type=quant_type)
    deq = F.dequantize_4bit(packed, st)  # in quant_state.dtype (bf16)
    # The same in fp32 through the same code path (nested dequant + offset, then 4-bit dequant):
    st32 = copy.copy(st)
    st32.dtype = torch.float32
    deq32 = F.dequantize_4bit(packed, st32)
    absmax = F.dequantize_blockwise(st.absmax, st.state2) + st.offset
    tensors = {
        "input": x, "packed": packed, "absmax_q": st.absmax, "nested_absmax": st.state2.absmax,
        "nested_code": st.state2.code, "offset": st.offset.reshape(()).float(),
        "absmax_f32": st_plain.absmax, "absmax_dq": absmax, "dequant": deq32,
    }
    if quant_type == "fp4":  # bf16 output once (the nf4 file would grow past 170 KB)
        tensors["dequant_bf16"] = deq
    write(f"{quant_type}_dq_bs{blocksize}.safetensors", tensors)


def int8_rowwise():
    g = torch.Generator().manual_seed(77)
    x = torch.randn(24, 96, generator=g) * torch.logspace(-3, 1, 24).view(-1, 1)
    x[0] = 0.0                               # zero row
    x[1, 10] = 5.0e3                         # a huge outlier dominates its row
    x[2] = torch.randn(96, generator=g) * 1e-41   # subnormal row
    x[3, 0] = 127.0                          # row absmax 127: x*(127/127) = x, ties at .5 below
    x[3, 1:9] = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 126.5, -126.5, 3.5])
    # torch computes 127/absmax as reciprocal(absmax)·127 (two roundings): here that makes
    # x·scale = 63.499996 (-> 63) where an exact division would give 63.5 (-> 64)
    x[4] = x[4].clamp(-0.01, 0.01)
    x[4, 0] = 0.032958984375
    x[4, 1] = -0.0164794921875
    cb, scb, _ = F.int8_vectorwise_quant(x.clone())
    deq = F.int8_vectorwise_dequant(cb, scb)
    write("int8_rowwise.safetensors", {"input": x, "cb": cb, "scb": scb, "dequant": deq})


def int8_act():
    g = torch.Generator().manual_seed(78)
    a = torch.randn(6, 96, generator=g) * 1.5
    a[0, 3] = 7.0                            # outlier column 3 (one row)
    a[4, 50] = -6.0                          # exactly at the threshold: |a| >= 6 is an outlier
    a[2, 70] = 5.999                         # just below: not an outlier
    a[5, 90] = 30.0
    cb, stats, cols = F.int8_vectorwise_quant(a.clone(), threshold=6.0)
    write("int8_act_t6.safetensors", {"input": a, "cb": cb, "row_stats": stats, "outlier_cols": cols})


def hf_models():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    src = os.path.join(OUT, "hf_tiny")
    model.save_pretrained(src)
    variants = {
        "hf_tiny_nf4_dq": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                             bnb_4bit_use_double_quant=True,
                                             bnb_4bit_compute_dtype=torch.bfloat16),
        "hf_tiny_nf4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_compute_dtype=torch.bfloat16),
        "hf_tiny_fp4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4",
                                          bnb_4bit_compute_dtype=torch.bfloat16),
        "hf_tiny_int8": BitsAndBytesConfig(load_in_8bit=True),
    }
    for name, q in variants.items():
        m = AutoModelForCausalLM.from_pretrained(src, quantization_config=q, device_map="cpu",
                                                 dtype=torch.bfloat16)
        m.save_pretrained(os.path.join(OUT, name))
    for d in [src] + [os.path.join(OUT, v) for v in variants]:
        gc = os.path.join(d, "generation_config.json")
        if os.path.exists(gc):
            os.remove(gc)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for bs in (32, 64, 128, 256):
        four_bit("nf4", bs)
    for bs in (64, 128):
        four_bit("fp4", bs)
    four_bit_dq("nf4", 64, 20, 1024, 5)
    four_bit_dq("fp4", 32, 10, 960, 6)
    int8_rowwise()
    int8_act()
    hf_models()
    with open(os.path.join(OUT, "VERSIONS.json"), "w") as f:
        json.dump(VERSIONS, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
