#!/usr/bin/env bash
# Installs what culora needs to build and test, and nothing that is already there (idempotent).
# --demo: also what `make demo` needs (text corpora, matplotlib).
# Debian/Ubuntu packages through apt-get (as root, or through sudo when it is available).
# CUDA is optional: with nvcc on PATH (or in /usr/local/cuda/bin) the CUDA backend is built too.
set -euo pipefail

pkgs=(cmake make gcc g++ pkg-config libopenblas-dev libgtest-dev libjansson-dev libpcre2-dev libopenmpi-dev openmpi-bin zlib1g-dev)
# `make demo` also needs its text corpora and matplotlib for the loss plot.
if [ "${1:-}" = "--demo" ]; then
  pkgs+=(fortunes jargon-text python3-matplotlib)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all packages present"
  exit 0
fi

echo "setup-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "setup-deps: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
