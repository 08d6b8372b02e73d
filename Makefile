# doppel — the two commands a new user runs are `make demo` and `make test` (see README.md).
# Everything else here is what they are made of.

SHELL := /bin/bash
JOBS ?= $(shell nproc)
export DOPPEL_SHARED_DATA ?= $(abspath $(CURDIR)/../shared/data)
# ccache: rewrite absolute paths relative to the checkout so that clones in other folders
# (CI) reuse the cache.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1

.PHONY: all bootstrap build demo test test-release test-asan fuzz-smoke tidy format bench clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

# The demo: what doppel can do so far, on real third-party ontologies.
demo: build
	@scripts/demo

# Every test. Under CI=true also the AddressSanitizer/UBSan build, a fuzzing smoke run and
# clang-tidy; the release test run comes last so its ctest summary closes the log.
test: build
ifeq ($(CI),true)
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory tidy
endif
	@$(MAKE) --no-print-directory test-release

test-release: build
	@ctest --preset release -j $(JOBS)

test-asan: bootstrap
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	@ctest --preset asan -j $(JOBS)

fuzz-smoke: bootstrap
	@scripts/fuzz-smoke

# clang-tidy over src/ with the release build's compile commands.
tidy: build
	@scripts/tidy

format:
	@find src tests bench fuzz -name '*.cc' -o -name '*.h' | xargs clang-format -i

bench: build
	@build/release/bench/model_bench
	@build/release/bench/graph_bench
	@build/release/bench/sync_bench
	@build/release/bench/history_bench
	@build/release/bench/sim_bench
	@build/release/bench/fmu_bench
	@build/release/bench/rul_bench
	@build/release/bench/forecast_bench
	@build/release/bench/anomaly_bench
	@node bench/ui_bench.mjs --doppel build/release/doppel

clean:
	rm -rf build
