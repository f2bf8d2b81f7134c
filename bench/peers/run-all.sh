#!/usr/bin/env bash
# run-all.sh — culora and PyTorch + PEFT side by side on the same GPU in one run (issue 12):
#   1. correctness: the tiny GPT-2 / LLaMA fixtures with their PEFT adapters give the oracle logits
#      in transformers + PEFT on this GPU (peft_logits.py); test_model_cuda checks culora's CUDA
#      logits against the same oracle
#   2. LoRA linear fwd+bwd, bf16, M=8192, k=d=4096, r=16 and r=64: culora frozen / unfused / fused
#      (bench_lora_linear) vs torch frozen nn.Linear and PEFT lora.Linear (torch_lora_linear.py)
#   3. one training step (forward, backward, AdamW), LoRA r=16, seq 1024, batch $B: GPT-2 124M and
#      LLaMA-style 1B from the same configs, random weights and tokens: culora (bench_train) vs
#      transformers + PEFT in bf16 (torch_train.py)
#   4. NF4 batch-1 GEMV (4096², 14336×4096, 4096×14336) and the QLoRA layer fwd+bwd (M=8192,
#      k=d=4096, r=16): culora (bench_quant) vs bitsandbytes (bnb_quant.py; PEFT around Linear4bit),
#      when bitsandbytes imports (carry it as .whl/site, see docs/benchmarks.md)
#   bench/peers/run-all.sh [BUILD_DIR]      (needs a CUDA build of culora, python3 with torch,
#                                            transformers, peft; finishes in ~3 minutes on an H100)
# JSON lines to stdout, the ratio table to stderr. Each command is capped by `timeout` so that one
# hang cannot eat a GPU lease; a failed command is reported and the rest still run.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
B=${B:-4}; T=1024; STEPS=${STEPS:-10}; CAP=${CAP:-150}
out=$(mktemp)
fail=0
run() { # label, command...
    local label=$1; shift
    timeout "$CAP" "$@" > >(tee -a "$out") 2> >(sed "s/^/[$label] /" >&2)
    local rc=$?
    if [ $rc -ne 0 ]; then
        echo "run-all: $label FAILED (exit $rc$([ $rc -eq 124 ] && echo ", timed out after ${CAP} s"))" >&2
        fail=1
    fi
}
export PYTHONUNBUFFERED=1
[ -d .whl/site ] && export PYTHONPATH=$PWD/.whl/site${PYTHONPATH:+:$PYTHONPATH}
run peft_logits python3 bench/peers/peft_logits.py
for r in 16 64; do
    run culora_linear_r$r "$BUILD/bench/bench_lora_linear" --backend cuda --shape 8192,4096,4096,$r --samples 30
done
run torch_linear python3 bench/peers/torch_lora_linear.py --shape 8192,4096,4096,16 --shape 8192,4096,4096,64
for cfg in gpt2-124m llama-1b; do
    run culora_train_$cfg "$BUILD/bench/bench_train" --backend cuda --config $cfg --mode lora --batch $B --seq $T \
        --steps $STEPS --warmup 3
    run torch_train_$cfg python3 bench/peers/torch_train.py --config $cfg --mode lora --batch $B --seq $T \
        --steps $STEPS --warmup 3 --device cuda --dtype bf16
done
if python3 -c "import bitsandbytes" 2>/dev/null; then
    run culora_quant "$BUILD/bench/bench_quant" --backend cuda
    run bnb_quant python3 bench/peers/bnb_quant.py
else
    echo "run-all: bitsandbytes does not import; the NF4 comparison is skipped" >&2
fi
sleep 1
python3 - "$out" >&2 <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    try:
        rows.append(json.loads(line))
    except ValueError:
        pass
print("== LoRA linear fwd+bwd, bf16 (ms; ratio = culora fused / PEFT)")
for r in (16, 64):
    lin = [x for x in rows if x.get("bench") == "lora_linear" and x.get("r") == r and x.get("m") == 8192]
    get = lambda key, val: next((x["ms"] for x in lin if x.get(key) == val and "ms" in x), float("nan"))
    fused, unfused, frozen = get("variant", "fused"), get("variant", "unfused"), get("variant", "frozen")
    peft_ms, tfrozen = get("impl", "peft_lora"), get("impl", "torch_frozen")
    print(f"r={r:3d}  culora fused {fused:7.3f}  unfused {unfused:7.3f}  frozen {frozen:7.3f} | "
          f"PEFT {peft_ms:7.3f}  torch frozen {tfrozen:7.3f} | fused/PEFT {fused / peft_ms:5.2f}  "
          f"fused/frozen {fused / frozen:5.2f}  PEFT/torch-frozen {peft_ms / tfrozen:5.2f}")
print("== training step, LoRA r=16 (tokens/s; ratio = culora / transformers+PEFT)")
for cfg in ("gpt2-124m", "llama-1b"):
    c = next((x for x in rows if x.get("bench") == "train" and x.get("config") == cfg and "impl" not in x), None)
    t = next((x for x in rows if x.get("bench") == "train" and x.get("config") == cfg and "impl" in x), None)
    ct, tt = (c or {}).get("tokens_per_s", float("nan")), (t or {}).get("tokens_per_s", float("nan"))
    print(f"{cfg:10s} culora {ct:10.0f}  torch+peft {tt:10.0f}  ratio {ct / tt:5.2f}")
q = [x for x in rows if x.get("bench") == "quant"]
if q:
    print("== NF4 GEMV, batch 1 (GB/s; ratio = culora / bitsandbytes)")
    for d, k in ((4096, 4096), (14336, 4096), (4096, 14336)):
        for v in ("nf4", "nf4-dq", "bf16"):
            c = next((x for x in q if "impl" not in x and x.get("suite") == "gemv" and x.get("variant") == v
                      and x.get("rows") == d and x.get("cols") == k), None)
            b = next((x for x in q if x.get("impl") == "bitsandbytes" and x.get("suite") == "gemv"
                      and x.get("variant") == v and x.get("d") == d and x.get("k") == k), None)
            if c or b:
                cg, bg = (c or {}).get("gbps", float("nan")), (b or {}).get("gbps", float("nan"))
                print(f"{d:5d}x{k:<5d} {v:6s} culora {cg:7.0f}  {'bnb' if v != 'bf16' else 'torch'} {bg:7.0f}  ratio {cg / bg:5.2f}")
    print("== QLoRA layer fwd+bwd, M=8192 k=d=4096 r=16 (ms; ratio = culora / PEFT+bitsandbytes)")
    for v in ("nf4-dq", "bf16"):
        c = next((x for x in q if "impl" not in x and x.get("suite") == "layer" and x.get("variant") == v), None)
        b = next((x for x in q if x.get("impl") == "bitsandbytes" and x.get("suite") == "layer" and x.get("variant") == v), None)
        cm, bm = (c or {}).get("ms", float("nan")), (b or {}).get("ms", float("nan"))
        print(f"{v:6s} culora {cm:8.3f}  peft {bm:8.3f}  ratio {cm / bm:5.2f}")
    for x in q:
        if "error" in x:
            print("bitsandbytes error:", x["suite"], x["error"])
for x in rows:
    if x.get("bench") == "peft_logits":
        print(f"PEFT logits on {x['device']} vs oracle: {x['arch']} {x['dtype']} rel {x['rel_rms_vs_oracle']:.2e} ok={x['ok']}")
PY
rm -f "$out"
exit $fail
