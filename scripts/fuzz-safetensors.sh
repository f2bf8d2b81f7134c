#!/usr/bin/env bash
# Fuzzes the safetensors parser with libFuzzer (clang + AddressSanitizer + UBSan) for a bounded time.
#
#   scripts/fuzz-safetensors.sh [SECONDS]        default 60
#
# Builds build-fuzz/ (clang-14, -DCULORA_FUZZ=ON, the library instrumented too), runs from the
# committed corpus tests/data/fuzz/safetensors/ plus a scratch copy, then merges the inputs that
# found new coverage back into the committed corpus (kept small: -max_len). A crash is written to
# tests/data/fuzz/safetensors/crash-<sha1> and the script exits non-zero; test_io replays every
# file there (FuzzCorpus), so commit crash inputs together with the fix.
# Env: CULORA_FUZZ_BUILD (build dir), CULORA_FUZZ_JOBS (parallel fuzzing jobs, default 1), CC.
set -euo pipefail

secs="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${CULORA_FUZZ_BUILD:-$root/build-fuzz}"
corpus="$root/tests/data/fuzz/safetensors"
dict="$root/tests/data/fuzz/safetensors.dict"
cc="${CC:-clang-14}"
cxx="${CXX:-clang++-14}"
command -v "$cc" >/dev/null || { echo "fuzz-safetensors: $cc not found (apt-get install clang-14)" >&2; exit 1; }

flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
CC="$cc" CXX="$cxx" cmake -S "$root" -B "$build" -DCULORA_CUDA=OFF -DCULORA_BENCH=OFF -DCULORA_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="$flags" >/dev/null
cmake --build "$build" --target fuzz_safetensors -j2

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/new"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
jobs="${CULORA_FUZZ_JOBS:-1}"
parallel=()
if [ "$jobs" -gt 1 ]; then
  parallel=(-jobs="$jobs" -workers="$jobs")  # libFuzzer writes fuzz-N.log into the current directory
  cd "$scratch"
fi
echo "fuzz-safetensors: fuzzing for ${secs}s"
"$build/tests/fuzz_safetensors" -max_total_time="$secs" -max_len=2048 -timeout=10 -rss_limit_mb=2048 \
  "${parallel[@]}" -print_final_stats=1 -dict="$dict" -artifact_prefix="$corpus/crash-" "$scratch/new" "$corpus"
# keep only inputs that add coverage; the committed corpus stays small
"$build/tests/fuzz_safetensors" -merge=1 -max_len=2048 -dict="$dict" "$corpus" "$scratch/new" 2>/dev/null
echo "fuzz-safetensors: clean; corpus has $(ls "$corpus" | wc -l) inputs"
