#!/usr/bin/env bash
# demo.sh — what `make demo` runs: a tiny LLaMA-style model is created, pre-trained on one real
# corpus (Debian's fortunes), then LoRA-fine-tuned on another (Shakespeare from ../shared/data when
# present, else the Jargon File from Debian's jargon-text); losses, samples before and after, and
# a loss plot. About 2 minutes on 2 CPU cores; faster on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-demo-out}
C="$BUILD/culora"
mkdir -p "$OUT"

# 1. corpora
if [ ! -s "$OUT/fortunes.txt" ]; then
    for f in /usr/share/games/fortunes/*; do
        case "$f" in *.dat | *.u8) continue ;; esac
        [ -f "$f" ] && grep -v '^%$' "$f" || true
    done > "$OUT/fortunes.txt"
fi
SHARED=${CULORA_SHARED_DATA:-../shared/data}
if [ -f "$SHARED/tinyshakespeare.txt" ]; then
    src="$SHARED/tinyshakespeare.txt"; name="Shakespeare"; prompt="ROMEO:"
else
    zcat /usr/share/doc/jargon-text/jargon.txt.gz > "$OUT/jargon.txt"; src="$OUT/jargon.txt"; name="the Jargon File"; prompt="hacker"
fi
lines=$(wc -l < "$src")
head -n $((lines * 9 / 10)) "$src" > "$OUT/finetune.txt"
tail -n $((lines / 10)) "$src" > "$OUT/finetune-eval.txt"
echo "== corpora: fortunes ($(wc -c < "$OUT/fortunes.txt") bytes) for pre-training, $name ($(wc -c < "$OUT/finetune.txt") bytes) for the LoRA fine-tune"

# 2. a small random model (byte-level vocabulary)
rm -rf "$OUT/base" "$OUT/pretrain" "$OUT/lora"
"$C" init --arch llama --layers 3 --dim 96 --heads 4 --kv-heads 2 --max-pos 128 --out "$OUT/base"

# 3. pre-training (full fine-tuning of every parameter)
echo "== pre-training on fortunes"
"$C" train --model "$OUT/base" --data "$OUT/fortunes.txt" --mode full --seq-len 128 --batch 8 --steps 200 \
    --lr 3e-3 --warmup 20 --out "$OUT/pretrain"
echo "== sample after pre-training (prompt \"$prompt\"):"
"$C" generate --model "$OUT/pretrain/model" --prompt "$prompt" --max-new 160 --temperature 0.7 --seed 7

# 4. LoRA fine-tune on the second corpus
echo "== LoRA fine-tune (rank 16 on every attention and MLP projection) on $name"
"$C" train --model "$OUT/pretrain/model" --data "$OUT/finetune.txt" --eval-data "$OUT/finetune-eval.txt" \
    --mode lora --rank 16 --alpha 32 --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
    --seq-len 128 --batch 8 --steps 120 --lr 5e-3 --warmup 10 --eval-every 40 --eval-batches 10 --out "$OUT/lora"
echo "== sample with the adapter (prompt \"$prompt\"):"
"$C" generate --model "$OUT/pretrain/model" --adapter "$OUT/lora/adapter" --prompt "$prompt" --max-new 160 \
    --temperature 0.7 --seed 7

# 5. the loss plot
PY=python3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null && PY=/usr/bin/python3
"$PY" scripts/plot-metrics "$OUT/pretrain/metrics.jsonl" "$OUT/lora/metrics.jsonl" -o "$OUT/loss.png" \
    --title "culora demo: pre-training on fortunes, then LoRA on $name" || echo "(no plot: install python3-matplotlib)"
echo
echo "== done. adapter: $OUT/lora/adapter (PEFT format)   pre-trained model: $OUT/pretrain/model"
echo "   metrics: $OUT/pretrain/metrics.jsonl, $OUT/lora/metrics.jsonl   plot: $OUT/loss.png"
