#!/usr/bin/env bash
# Run HERE (a machine that reaches PyPI) before a GPU check that compares with bitsandbytes: unpacks
# the bitsandbytes wheel for the GPU machine's Python (3.12, manylinux x86_64) into .whl/site
# (git-ignored), keeping only its CUDA 13 and CPU libraries so the carried tree stays small (~8 MB
# instead of 43). bench/peers/run-all.sh puts .whl/site on PYTHONPATH when it exists.
# Then: device run with carry [".gpu-deps", ".whl"] and command "scripts/gpu-check.sh".
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${BNB_VERSION:-0.50.2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$tmp" "bitsandbytes==$VERSION"
rm -rf .whl/site/bitsandbytes .whl/site/bitsandbytes-*.dist-info
mkdir -p .whl/site
(cd .whl/site && python3 -m zipfile -e "$tmp"/bitsandbytes-*.whl .)
find .whl/site/bitsandbytes -name 'libbitsandbytes_*.so' ! -name '*cuda13*.so' ! -name '*_cpu.so' -delete
du -sh .whl/site
