# GojoDB. `make run` and `make test` are all a newcomer needs on Debian 12:
# both install missing packages first (scripts/bootstrap.sh).
BUILD_DIR ?= build
FUZZ_BUILD_DIR ?= build-fuzz
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 15
DATA_DIR ?= ./data
HTTP_ADDR ?= 127.0.0.1:8080
GRPC_ADDR ?= 127.0.0.1:7001
CTEST_ARGS ?=

export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all bootstrap configure build run test unit-test fuzz bench bench-cluster bench-txn bench-docs fmt lint clean

all: build

bootstrap:
	@scripts/bootstrap.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: bootstrap $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/bin/gojodb-standalone --data-dir $(DATA_DIR) --http-addr $(HTTP_ADDR) --grpc-addr $(GRPC_ADDR)

# Every test: unit, integration, crash safety, the Raft simulation, then short fuzz runs.
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900 -j 2 $(CTEST_ARGS)
	$(MAKE) --no-print-directory fuzz

unit-test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -LE "integration|sim" $(CTEST_ARGS)

# libFuzzer targets need clang; they build in their own tree (tests/fuzz/README.md).
fuzz: bootstrap
	@test -f $(FUZZ_BUILD_DIR)/build.ninja || CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DGOJODB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS)
	tests/fuzz/run.sh $(FUZZ_BUILD_DIR)/bin $(FUZZ_SECONDS)

bench: build
	@scripts/bootstrap.sh --bench
	tools/bench/run_standalone.sh $(BUILD_DIR)/bin

# A GojoDB cluster (3 controllers, 3 storage nodes, RF 3, a gateway) against a 3-member
# etcd cluster, both on loopback with fsync (docs/benchmarks.md). RECORDS, OPS, THREADS,
# VALUE_SIZE, WORKLOADS override its defaults. cmake runs again so that gojodb-bench
# gets its etcd target once etcd's .proto files are installed.
bench-cluster: configure
	@scripts/bootstrap.sh --bench
	cmake -S . -B $(BUILD_DIR) > /dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS) --target gojodb-bench gojodb-controller gojodb-storage gojodb-api
	scripts/bench-cluster.sh $(BUILD_DIR)/bin

# Transactions: 2-key transfers on a GojoDB cluster with one shard (one phase) and with
# many (two-phase commit), and on PostgreSQL (docs/benchmarks.md).
bench-txn: configure
	@scripts/bootstrap.sh --bench
	cmake -S . -B $(BUILD_DIR) > /dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS) --target gojodb-bench gojodb-controller gojodb-storage gojodb-api gojodb
	scripts/bench-txn.sh $(BUILD_DIR)/bin

# JSON documents: bulk ingest, indexed point and range queries and a group-by on the
# standalone server and on PostgreSQL JSONB (docs/benchmarks.md).
bench-docs: configure
	@scripts/bootstrap.sh --bench
	cmake -S . -B $(BUILD_DIR) > /dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS) --target gojodb-docs-bench gojodb-standalone
	scripts/bench-docs.sh $(BUILD_DIR)/bin

fmt:
	@scripts/bootstrap.sh --lint
	git ls-files '*.cc' '*.h' | xargs clang-format -i

lint: configure
	@scripts/bootstrap.sh --lint
	git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror
	git ls-files 'core/*.cc' 'internal/*.cc' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf $(BUILD_DIR) $(FUZZ_BUILD_DIR)
