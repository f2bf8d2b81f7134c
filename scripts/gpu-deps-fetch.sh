#!/usr/bin/env bash
# Run HERE (a machine with Debian's package mirror) before a GPU check: downloads the .deb files of
# the build dependencies into .gpu-deps/ (git-ignored), because the GPU machine cannot reach any
# registry. scripts/gpu-check.sh unpacks them there when the libraries are missing.
# Then: device run with carry [".gpu-deps"] and command "scripts/gpu-check.sh".
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-deps
cd .gpu-deps
pkgs=(libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0
      libgtest-dev libjansson-dev libjansson4 libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0
      libpcre2-posix3 pkg-config libpkgconf3 pkgconf pkgconf-bin zlib1g-dev zlib1g)
apt-get download "${pkgs[@]}" 2>&1 | tail -n 3
ls -la
du -sh .
