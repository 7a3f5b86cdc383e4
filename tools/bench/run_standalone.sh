#!/usr/bin/env bash
# Runs the docs/benchmarks.md comparison: YCSB workloads against gojodb-standalone over
# gRPC and against raw RocksDB in-process (--engine-direct), same data set, same thread
# count, durable writes on both sides; prints each throughput and the ratio.
#
#   tools/bench/run_standalone.sh BIN_DIR          (make bench does this with build/bin)
#
# Environment: RECORDS (100000), OPS (100000), THREADS (32), VALUE_SIZE (1000),
# WORKLOADS ("a write"), MAX_SECONDS (300, per phase), SEED (1),
# OUT_DIR (BIN_DIR/../bench-results/<UTC time>): each run's text output and JSON are
# kept there, with the commands, the environment and a summary.
set -euo pipefail

BIN_DIR=${1:?usage: $0 BIN_DIR}
BENCH=$BIN_DIR/gojodb-bench
SERVER=$BIN_DIR/gojodb-standalone
for b in "$BENCH" "$SERVER"; do
  [[ -x $b ]] || { echo "missing $b (build it first)" >&2; exit 2; }
done

RECORDS=${RECORDS:-100000}
OPS=${OPS:-100000}
THREADS=${THREADS:-32}
VALUE_SIZE=${VALUE_SIZE:-1000}
WORKLOADS=${WORKLOADS:-"a write"}
MAX_SECONDS=${MAX_SECONDS:-300}
SEED=${SEED:-1}
OUT_DIR=${OUT_DIR:-$BIN_DIR/../bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT_DIR"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gojodb-bench.XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

source "$(cd "$(dirname "$0")" && pwd)/../../scripts/bench-lib.sh"

COMMON=(--records "$RECORDS" --ops "$OPS" --threads "$THREADS" --value-size "$VALUE_SIZE"
        --seed "$SEED" --max-seconds "$MAX_SECONDS" --progress 30)

# run NAME ARGS...: runs gojodb-bench, keeps its JSON, prints its output, and records
# the run phase's throughput in $OUT_DIR/NAME.ops.
run() {
  local name=$1
  shift
  echo "== $name: gojodb-bench $*" | tee -a "$OUT_DIR/commands.txt"
  "$BENCH" "$@" --json "$OUT_DIR/$name.json" | tee "$OUT_DIR/$name.txt"
  awk '/^\[(run|load)\]/ { for (i = 1; i <= NF; i++) if ($i == "ops/s;") v = $(i - 1) } END { print v }' \
    "$OUT_DIR/$name.txt" > "$OUT_DIR/$name.ops"
}

echo "results in $OUT_DIR"
"$BENCH" --help > /dev/null
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) cores"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} | tee "$OUT_DIR/environment.txt"

# Raw RocksDB, in-process, fsync on every write.
run engine-load --engine-direct "$WORK/rocksdb" --workload load --sync true "${COMMON[@]}"
for w in $WORKLOADS; do
  run "engine-$w" --engine-direct "$WORK/rocksdb" --workload "$w" --sync true "${COMMON[@]}"
done
rm -rf "$WORK/rocksdb"

# gojodb-standalone with its default durable writes.
GRPC_PORT=$(free_port)
HTTP_PORT=$(free_port)
"$SERVER" --data-dir "$WORK/standalone" --http-addr "127.0.0.1:$HTTP_PORT" \
  --grpc-addr "127.0.0.1:$GRPC_PORT" > "$OUT_DIR/standalone.log" 2>&1 &
SERVER_PID=$!
ADDR=127.0.0.1:$GRPC_PORT
run standalone-load --addr "$ADDR" --workload load "${COMMON[@]}"
for w in $WORKLOADS; do
  run "standalone-$w" --addr "$ADDR" --workload "$w" "${COMMON[@]}"
done
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=

echo
printf '%-10s %16s %16s %8s\n' workload "standalone ops/s" "rocksdb ops/s" ratio | tee "$OUT_DIR/summary.txt"
for w in load $WORKLOADS; do
  s=$(cat "$OUT_DIR/standalone-$w.ops")
  e=$(cat "$OUT_DIR/engine-$w.ops")
  awk -v w="$w" -v s="$s" -v e="$e" \
    'BEGIN { printf "%-10s %16.1f %16.1f %8.2f\n", w, s, e, (e > 0 ? s / e : 0) }' |
    tee -a "$OUT_DIR/summary.txt"
done
