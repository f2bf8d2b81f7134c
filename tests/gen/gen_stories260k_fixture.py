#!/usr/bin/env python3
"""Oracle fixture for the llama2.c converter on the real pretrained stories260K model (not part of
CI: needs numpy, torch and transformers).

    python3 tests/gen/gen_stories260k_fixture.py CULORA_BINARY [STORIES260K_BIN] [OUT_JSON]
    # defaults: $CULORA_SHARED_DATA or ../shared/data beside the checkout for stories260K.bin,
    #           tests/data/io/stories260k_logits.json

1. Converts the .bin with `CULORA_BINARY convert --from llama2c FILE --out TMPDIR` and records the
   sha256 of TMPDIR/model.safetensors (tests/io/test_llama2c.cpp checks culora writes the same bytes).
2. Loads TMPDIR in transformers' LlamaForCausalLM (fp32, eager attention) and records the logits (all
   512) at a few positions of a fixed token sequence, and the greedy continuation of token 1 (BOS),
   200 new tokens, no stop token.
3. Independent reading, from the .bin itself (not from culora's output): a float64 numpy transcription
   of llama2.c run.c's forward (adjacent-pair RoPE on the UNpermuted wq/wk, rmsnorm eps 1e-5 added to
   the mean square, GQA, SwiGLU, tied classifier). Its logits at every position of the sequence must
   agree with transformers' on the converted model, and its greedy continuation must be the same 200
   tokens: this is what shows that the q/k row permutation (and every name and shape) is right.
   As a control, the same numpy forward with transformers' rotate_half RoPE applied to the unpermuted
   weights must NOT agree (recorded), so the comparison can see a missing permutation.
4. q_proj / k_proj of the converted file are compared bit for bit with
   convert_llama_weights_to_hf.py's permute() applied (in torch) to the .bin's wq / wk.
Exits non-zero when any check fails; the fixture is written only when all pass.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# BOS, then 15 fixed ids spread over the 512-token vocabulary (chosen once, by hand).
TOKENS = [1, 400, 77, 12, 305, 260, 3, 511, 98, 144, 62, 430, 2, 219, 33, 181]
POSITIONS = [0, 1, 7, 15]
N_GREEDY = 200
# float64 numpy (llama2.c) vs fp32 transformers: observed max |diff| ~1e-5 on logits of size ~10;
# 1e-4 leaves 10x headroom while any RoPE/permutation/name mistake gives differences of order 1.
LOGIT_ATOL = 1e-4

failures = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        failures.append(what)


# ---- the llama2.c file, read independently of culora -------------------------------------------

def read_llama2c(path):
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    hs = dim // n_heads
    kv_dim = n_kv * hs
    w = np.frombuffer(raw, dtype="<f4", offset=28).astype(np.float64)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = w[off:off + n].reshape(shape)
        off += n
        return a

    p = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv=n_kv, vocab=vocab, seq_len=seq_len,
             hs=hs, kv_dim=kv_dim, shared=shared)
    p["tok"] = take(vocab, dim)
    p["rms_att"] = take(n_layers, dim)
    p["wq"] = take(n_layers, dim, dim)
    p["wk"] = take(n_layers, kv_dim, dim)
    p["wv"] = take(n_layers, kv_dim, dim)
    p["wo"] = take(n_layers, dim, dim)
    p["rms_ffn"] = take(n_layers, dim)
    p["w1"] = take(n_layers, hidden, dim)
    p["w2"] = take(n_layers, dim, hidden)
    p["w3"] = take(n_layers, hidden, dim)
    p["rms_final"] = take(dim)
    take(seq_len * hs // 2)  # legacy freq_cis_real
    take(seq_len * hs // 2)  # legacy freq_cis_imag
    p["wcls"] = p["tok"] if shared else take(vocab, dim)
    assert off == w.size, f"{path}: {w.size - off} floats left over"
    return p, raw


def rmsnorm(x, weight):
    # run.c: ss = mean(x^2) + 1e-5; x * weight / sqrt(ss)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5) * weight


def rope_adjacent(x, pos, hs):
    """run.c: pairs (2i, 2i+1) of each head rotated by pos * 10000^(-2i/hs). x: [T, n*hs]."""
    T, d = x.shape
    xr = x.reshape(T, d // hs, hs // 2, 2)
    freq = 1.0 / 10000.0 ** (np.arange(0, hs, 2) / hs)
    ang = pos[:, None] * freq[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = xr[..., 0], xr[..., 1]
    return np.stack([a * c - b * s, a * s + b * c], axis=-1).reshape(T, d)


def rope_rotate_half(x, pos, hs):
    """transformers: pairs (i, i + hs/2) of each head (the control)."""
    T, d = x.shape
    xr = x.reshape(T, d // hs, 2, hs // 2)
    freq = 1.0 / 10000.0 ** (np.arange(0, hs, 2) / hs)
    ang = pos[:, None] * freq[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = xr[:, :, 0], xr[:, :, 1]
    return np.stack([a * c - b * s, a * s + b * c], axis=2).reshape(T, d)


def llama2c_forward(p, tokens, rope=rope_adjacent):
    """Logits [T, vocab] for tokens (causal), as run.c computes them position by position."""
    T = len(tokens)
    pos = np.arange(T, dtype=np.float64)
    hs, nh, nkv = p["hs"], p["n_heads"], p["n_kv"]
    x = p["tok"][np.array(tokens)]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(p["n_layers"]):
        xb = rmsnorm(x, p["rms_att"][l])
        q = rope(xb @ p["wq"][l].T, pos, hs)
        k = rope(xb @ p["wk"][l].T, pos, hs)
        v = xb @ p["wv"][l].T
        out = np.empty_like(q)
        for h in range(nh):
            g = h // (nh // nkv)
            qh, kh, vh = q[:, h * hs:(h + 1) * hs], k[:, g * hs:(g + 1) * hs], v[:, g * hs:(g + 1) * hs]
            att = qh @ kh.T / np.sqrt(hs) + mask
            att = np.exp(att - att.max(axis=1, keepdims=True))
            att /= att.sum(axis=1, keepdims=True)
            out[:, h * hs:(h + 1) * hs] = att @ vh
        x = x + out @ p["wo"][l].T
        xb = rmsnorm(x, p["rms_ffn"][l])
        g1 = xb @ p["w1"][l].T
        hb = g1 / (1.0 + np.exp(-g1)) * (xb @ p["w3"][l].T)
        x = x + hb @ p["w2"][l].T
    return rmsnorm(x, p["rms_final"]) @ p["wcls"].T


def greedy(step_logits, start, n):
    """n argmax steps from start; returns the new tokens and each step's top-1 minus top-2 logit."""
    seq, margins = list(start), []
    for _ in range(n):
        logits = np.asarray(step_logits(seq), dtype=np.float64)
        top2 = np.sort(logits)[-2:]
        margins.append(float(top2[1] - top2[0]))
        seq.append(int(np.argmax(logits)))
    return seq[len(start):], margins


# ---- transformers --------------------------------------------------------------------------------

def hf_permute(w, n_heads, dim1, dim2):
    # transformers/models/llama/convert_llama_weights_to_hf.py
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def compact_json(obj, indent=0):
    """JSON with lists of numbers on one line (the fixture stays readable and small)."""
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f'{pad}  {json.dumps(k)}: {compact_json(v, indent + 2)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and all(isinstance(v, (int, float)) for v in obj):
        return "[" + ", ".join(json.dumps(v) for v in obj) + "]"
    if isinstance(obj, list):
        return "[\n" + ",\n".join(pad + "  " + compact_json(v, indent + 2) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def f32(v):
    return float("%.9g" % v)  # 9 significant digits read back as the same float32


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    culora = os.path.abspath(sys.argv[1])
    shared = os.environ.get("CULORA_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
    bin_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(shared, "stories260K.bin")
    out_json = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "tests", "data", "io",
                                                                  "stories260k_logits.json")
    torch.manual_seed(0)
    p, raw = read_llama2c(bin_path)
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = os.path.join(tmp, "stories260K")
        print(f"culora convert --from llama2c {bin_path} --out {out_dir}")
        subprocess.run([culora, "convert", "--from", "llama2c", bin_path, "--out", out_dir], check=True)
        st_path = os.path.join(out_dir, "model.safetensors")
        st_sha = sha256_file(st_path)
        config = json.load(open(os.path.join(out_dir, "config.json")))

        print("permutation: converted q_proj / k_proj vs convert_llama_weights_to_hf.permute() of wq / wk")
        sd = load_file(st_path)
        dim, nh, nkv, kv_dim = p["dim"], p["n_heads"], p["n_kv"], p["kv_dim"]
        wq32 = torch.from_numpy(p["wq"].astype(np.float32))
        wk32 = torch.from_numpy(p["wk"].astype(np.float32))
        same = all(torch.equal(sd[f"model.layers.{l}.self_attn.q_proj.weight"], hf_permute(wq32[l], nh, dim, dim)) and
                   torch.equal(sd[f"model.layers.{l}.self_attn.k_proj.weight"], hf_permute(wk32[l], nkv, kv_dim, dim))
                   for l in range(p["n_layers"]))
        check(same, "q_proj and k_proj of every layer are bit-identical to HF's permute(wq / wk)")
        check("lm_head.weight" not in sd and config["tie_word_embeddings"] is True,
              "tied classifier: no lm_head.weight, tie_word_embeddings true")

        print("transformers: LlamaForCausalLM.from_pretrained on the converted directory")
        model = LlamaForCausalLM.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        check(torch.equal(model.lm_head.weight, model.model.embed_tokens.weight), "lm_head tied to embed_tokens")
        with torch.no_grad():
            hf_logits = model(torch.tensor([TOKENS])).logits[0].double().numpy()

            def hf_step(seq):
                return model(torch.tensor([seq])).logits[0, -1].numpy()

            hf_greedy, _ = greedy(hf_step, [1], N_GREEDY)

    print("independent reading: numpy transcription of llama2.c run.c on the .bin")
    np_logits = llama2c_forward(p, TOKENS)
    diff = float(np.abs(np_logits - hf_logits).max())
    check(diff <= LOGIT_ATOL, f"logits at all {len(TOKENS)} positions: max |numpy - transformers| = {diff:.3g} "
                              f"(tolerance {LOGIT_ATOL})")
    np_greedy, margins = greedy(lambda seq: llama2c_forward(p, seq)[-1], [1], N_GREEDY)
    check(np_greedy == hf_greedy, f"greedy continuation of [1], {N_GREEDY} tokens: numpy == transformers")
    control = float(np.abs(llama2c_forward(p, TOKENS, rope=rope_rotate_half) - hf_logits).max())
    check(control > 100 * LOGIT_ATOL, f"control: rotate_half on the UNpermuted weights differs by {control:.3g}")

    if failures:
        sys.exit(f"{len(failures)} check(s) failed; fixture not written")
    fixture = {
        "description": "stories260K.bin (llama2.c) converted by `culora convert --from llama2c`, run by "
                       "transformers LlamaForCausalLM in fp32: logits for a fixed token sequence and a greedy "
                       "continuation, for checking culora's LLaMA forward on real pretrained weights.",
        "generator": "tests/gen/gen_stories260k_fixture.py",
        "source": {"file": "stories260K.bin", "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()},
        "converted": {"model.safetensors sha256": st_sha, "config.json": config},
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                     "numpy": np.__version__},
        "tokens": TOKENS,
        "positions": POSITIONS,
        "logits_shape": [len(POSITIONS), p["vocab"]],
        "logits_note": "logits[i] = transformers' fp32 logits (all vocab entries) at position positions[i] of a "
                       "forward over all of tokens (causal: they depend only on tokens[0..positions[i]]); "
                       "written with 9 significant digits (exact float32).",
        "logits": [[f32(v) for v in hf_logits[t]] for t in POSITIONS],
        "greedy": {"prompt": [1], "n_new_tokens": N_GREEDY, "stop_token": None,
                   "note": "argmax at each step, full recompute (no KV cache), nothing stops it",
                   "tokens": hf_greedy},
        "checks": {
            "numpy_llama2c_vs_transformers_max_abs_logit_diff": f32(diff),
            "numpy_llama2c_vs_transformers_positions": list(range(len(TOKENS))),
            "numpy_llama2c_vs_transformers_tolerance": LOGIT_ATOL,
            "numpy_llama2c_greedy_equal": True,
            "control_rotate_half_unpermuted_max_abs_logit_diff": f32(control),
            "qk_bit_identical_to_hf_permute": True,
            "what": "A float64 numpy transcription of llama2.c run.c's forward (adjacent-pair RoPE on the "
                    "unpermuted wq/wk read from the .bin) agrees with transformers on culora's converted "
                    "directory within the tolerance above at every position, and gives the same greedy "
                    "tokens; the same numpy forward with rotate_half on unpermuted weights does not agree "
                    "(control). q_proj/k_proj equal HF convert_llama_weights_to_hf.py permute() bit for bit.",
        },
        "tolerance_notes": "For an fp32 forward (culora's CPU backend) against these logits: max |diff| of "
                           "order 1e-5 is expected (logits are of order 10; different summation orders); "
                           "suggested atol 1e-4, rtol 1e-4. The greedy tokens should match exactly; a "
                           "mismatch late in the sequence may be a near-tie, so compare the logit margin "
                           "before calling it a bug.",
    }
    step = int(np.argmin(margins))
    fixture["greedy"]["min_top1_top2_logit_margin"] = {"margin": f32(margins[step]), "step": step}
    with open(out_json, "w") as f:
        f.write(compact_json(fixture) + "\n")
    print(f"wrote {out_json} (smallest greedy margin {margins[step]:.3g} at step {step})")


if __name__ == "__main__":
    main()
