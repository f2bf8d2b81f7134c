# Thin wrapper over CMake. `make demo` and `make test` work on a fresh Debian/Ubuntu machine:
# they install what is missing (scripts/setup-deps.sh), configure, build, then run.
#   make demo                         pre-train a tiny model, LoRA-fine-tune it, samples and a loss plot
#   make test                         the whole test suite (GPU tests are reported skipped without a GPU)
#   make bench                        benchmarks in quick mode
#   make CMAKE_FLAGS=-DCULORA_CUDA=OFF test     CPU-only build, no nvcc needed
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
# CUDA's default install location, so CMake finds nvcc when it is not on PATH.
export PATH := $(PATH):/usr/local/cuda/bin

.PHONY: all deps configure build demo test bench clean

all: build

deps:
	./scripts/setup-deps.sh

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	./scripts/setup-deps.sh --demo
	BUILD=$(BUILD) ./scripts/demo.sh

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

bench: build
	@set -e; for b in $(BUILD)/bench/bench_*; do echo "== $$b --quick" >&2; "$$b" --quick; done

clean:
	rm -rf $(BUILD)
