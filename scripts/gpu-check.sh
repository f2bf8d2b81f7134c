#!/usr/bin/env bash
# gpu-check.sh — everything culora checks on a GPU machine, in one command (target: < 8 minutes).
#
#   1. environment (nvidia-smi, nvcc) ............................ $OUT/env.txt
#   2. build for sm_90 with 16 jobs ................................ $OUT/build.log
#   3. ctest -L gpu (CUDA vs CPU, skips nothing on a GPU) ......... $OUT/ctest-gpu.log
#      ctest -L cpu (the rest of the suite, same build) ........... $OUT/ctest-cpu.log
#   4. compute-sanitizer memcheck over the GPU tests (small shapes; racecheck over kernels that
#      use shared memory, listed in RACECHECK_FILTER) ............. $OUT/sanitizer.log
#   5. benchmarks in --quick mode, one JSON line each ............. $OUT/bench.jsonl
#   6. pass/fail summary with timings ............................. $OUT/summary.txt
#
# The GPU machine reaches no package registry: run scripts/gpu-deps-fetch.sh here first and
# carry .gpu-deps; missing build libraries are unpacked from it into /tmp/culora-deps.
# Usage (device tool): command "scripts/gpu-check.sh", carry [".gpu-deps"]. OUT defaults to
# ./gpu-check-out. Exit status: 0 when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./gpu-check-out}
mkdir -p "$OUT"
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-16}
# gtest filter of the tests whose kernels use shared memory (sgmv, attention, norms, cross-entropy,
# embedding backward, NF4/int8 blockwise reductions, AdamW/grad-norm reductions); each binary runs
# only the names it has
RACECHECK_FILTER=${RACECHECK_FILTER:-'*SgmvCuda*:*AttentionCudaVsCpu*:*NormCudaVsCpu*:NnCuda.Embedding*:NnCuda.CrossEntropyMatchesCpu:NnCuda.GradNorm*:QuantCuda.QuantizeAndDequantize*'}
t0=$(date +%s)
declare -a results=()
step() { # name, status
    results+=("$(printf '%-28s %s  (%ds)' "$1" "$2" $(( $(date +%s) - t0 )))")
}
export PATH=$PATH:/usr/local/cuda/bin

# 1. environment
{ date -u; nvidia-smi || true; nvcc --version || true; cmake --version | head -1; gcc --version | head -1; } \
    > "$OUT/env.txt" 2>&1

# 2. dependencies and build
if [ -n "${CULORA_FORCE_GPU_DEPS:-}" ] || ! pkg-config --exists openblas jansson 2>/dev/null || [ ! -e /usr/include/gtest/gtest.h ]; then
    if ls .gpu-deps/*.deb >/dev/null 2>&1; then
        D=/tmp/culora-deps
        mkdir -p "$D"
        for f in .gpu-deps/*.deb; do dpkg -x "$f" "$D"; done
        # Debian's .pc files name absolute /usr paths: point them into the unpacked tree.
        find "$D" -name '*.pc' -exec sed -i "s#/usr#$D/usr#g" {} +
        export PKG_CONFIG_PATH=$(find "$D" -type d -name pkgconfig | tr '\n' ':')${PKG_CONFIG_PATH:-}
        export CMAKE_PREFIX_PATH=$D/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
        export LD_LIBRARY_PATH=$(find "$D" -name '*.so*' -printf '%h\n' | sort -u | tr '\n' ':')${LD_LIBRARY_PATH:-}
        command -v pkg-config >/dev/null || export PATH=$PATH:$D/usr/bin
        [ -x "$D/usr/bin/pkgconf" ] && [ ! -e "$D/usr/bin/pkg-config" ] && ln -s pkgconf "$D/usr/bin/pkg-config"
        echo "unpacked $(ls .gpu-deps/*.deb | wc -l) packages into $D" >> "$OUT/env.txt"
    else
        echo "build libraries missing and no .gpu-deps/ carried (run scripts/gpu-deps-fetch.sh)" >> "$OUT/env.txt"
    fi
fi
if cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > "$OUT/build.log" 2>&1 &&
   cmake --build "$BUILD" -j"$JOBS" >> "$OUT/build.log" 2>&1; then
    step build PASS
else
    step build FAIL
    printf '%s\n' "${results[@]}" > "$OUT/summary.txt"
    tail -n 40 "$OUT/build.log"
    exit 1
fi

# 3. tests
if (cd "$BUILD" && ctest -L gpu --output-on-failure -j1 --timeout 300) > "$OUT/ctest-gpu.log" 2>&1; then
    step "ctest -L gpu" PASS
else
    step "ctest -L gpu" FAIL
fi
if (cd "$BUILD" && ctest -L cpu -j"$JOBS" --timeout 300) > "$OUT/ctest-cpu.log" 2>&1; then
    step "ctest -L cpu" PASS
else
    step "ctest -L cpu" FAIL
fi

# 4. compute-sanitizer: memcheck on every GPU test binary except the real-model shapes (too slow
#    under instrumentation; same kernels as the ragged shapes).
san_ok=PASS
: > "$OUT/sanitizer.log"
if command -v compute-sanitizer >/dev/null; then
    for bin in "$BUILD"/tests/test_cuda*; do
        [ -x "$bin" ] || continue
        echo "== memcheck $bin" >> "$OUT/sanitizer.log"
        compute-sanitizer --tool memcheck --error-exitcode 1 --leak-check full "$bin" \
            --gtest_filter='-*m512*' >> "$OUT/sanitizer.log" 2>&1 || san_ok=FAIL
        if [ -n "$RACECHECK_FILTER" ]; then
            echo "== racecheck $bin ($RACECHECK_FILTER)" >> "$OUT/sanitizer.log"
            compute-sanitizer --tool racecheck --error-exitcode 1 "$bin" --gtest_filter="$RACECHECK_FILTER" \
                >> "$OUT/sanitizer.log" 2>&1 || san_ok=FAIL
        fi
    done
else
    echo "compute-sanitizer not found" >> "$OUT/sanitizer.log"
    san_ok=MISSING
fi
step compute-sanitizer "$san_ok"

# 5. benchmarks (quick)
: > "$OUT/bench.jsonl"
bench_ok=PASS
for b in "$BUILD"/bench/bench_*; do
    [ -x "$b" ] || continue
    "$b" --quick >> "$OUT/bench.jsonl" 2>> "$OUT/sanitizer.log" || bench_ok=FAIL
done
step "benchmarks --quick" "$bench_ok"

# 6. summary
{
    printf '%s\n' "${results[@]}"
    grep -E "tests passed|tests failed|Skipped|Failed" "$OUT/ctest-gpu.log" | head -n 40
    grep -E "ERROR SUMMARY" "$OUT/sanitizer.log"
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"
grep -q FAIL "$OUT/summary.txt" && exit 1
exit 0
