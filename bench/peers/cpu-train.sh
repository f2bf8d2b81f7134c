#!/usr/bin/env bash
# cpu-train.sh — culora's CPU backend and PyTorch + PEFT (CPU, fp32) side by side on the same
# small configs, in one run on one machine: tokens/s of one optimizer step and the ratio.
#   bench/peers/cpu-train.sh [BUILD_DIR]     (needs python3 with torch, transformers, peft)
# Writes JSON lines to stdout and a summary table to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
B=4; T=256; STEPS=${STEPS:-5}
out=$(mktemp)
for cfg in gpt2-small-cpu llama-small-cpu; do
    for mode in full lora; do
        "$BUILD/bench/bench_train" --backend cpu --config $cfg --mode $mode --batch $B --seq $T --steps $STEPS --warmup 2 \
            2>/dev/null | sed 's/"bench":"train"/"bench":"train","impl":"culora"/' | tee -a "$out"
        python3 bench/peers/torch_train.py --config $cfg --mode $mode --batch $B --seq $T --steps $STEPS --warmup 2 \
            2>/dev/null | tee -a "$out"
    done
done
python3 - "$out" >&2 <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'config':18} {'mode':5} {'culora tok/s':>13} {'torch tok/s':>12} {'culora/torch':>13}")
for cfg in sorted({r['config'] for r in rows}):
    for mode in ('full', 'lora'):
        c = [r for r in rows if r['config'] == cfg and r['mode'] == mode and r.get('impl') == 'culora']
        t = [r for r in rows if r['config'] == cfg and r['mode'] == mode and r.get('impl') != 'culora']
        if c and t:
            print(f"{cfg:18} {mode:5} {c[0]['tokens_per_s']:13.0f} {t[0]['tokens_per_s']:12.0f} "
                  f"{c[0]['tokens_per_s'] / t[0]['tokens_per_s']:13.2f}")
PY
rm -f "$out"
