#!/usr/bin/env bash
# Runs the docs/benchmarks.md "Transactions" comparison on this machine: the `transfer`
# workload of gojodb-bench (a transaction moving 1 between the balances of two records
# chosen uniformly) against
#   - a GojoDB cluster (3 controllers, 3 storage nodes, RF 3) with one shard: every
#     transaction commits in one phase;
#   - the same with small shards (--split-bytes): the two records are nearly always on
#     different shards, so every transaction is a two-phase commit;
#   - PostgreSQL (Debian's, one server, synchronous_commit on, fsync on), the transfer
#     as BEGIN; two UPDATEs in key order; COMMIT.
# Each gets a fresh data set and the same load phase, records, operations, threads and
# value size. GojoDB's client coordinates its transactions itself (the client library
# routed by the shard map, as in bench-cluster.sh).
#
#   scripts/bench-txn.sh [BIN_DIR]          (make bench-txn: build/bin)
#
# Environment: RECORDS (10000), OPS (10000), THREADS (16), VALUE_SIZE (100), SEED (1),
# SPLIT_BYTES (65536), PG_BIN (/usr/lib/postgresql/15/bin), ONLY (gojodb or postgres: one
# side only), OUT_DIR
# (BIN_DIR/../bench-results/txn-<UTC time>). Needs gojodb-bench built with its postgres
# target (libpq-dev), and PostgreSQL's server (apt-get install postgresql;
# scripts/bootstrap.sh --bench).
set -euo pipefail

BIN_DIR=${1:-build/bin}
RECORDS=${RECORDS:-10000}
OPS=${OPS:-10000}
THREADS=${THREADS:-16}
VALUE_SIZE=${VALUE_SIZE:-100}
SEED=${SEED:-1}
SPLIT_BYTES=${SPLIT_BYTES:-65536}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$BIN_DIR/gojodb-bench
OUT_DIR=${OUT_DIR:-$BIN_DIR/../bench-results/txn-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

[[ -x $BENCH ]] || { echo "bench-txn: missing $BENCH (build it first)" >&2; exit 2; }
grep -qa "PQconnectdb" "$BENCH" ||
  { echo "bench-txn: $BENCH has no postgres target (install libpq-dev, reconfigure, rebuild)" >&2; exit 2; }
[[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]] ||
  { echo "bench-txn: no PostgreSQL server in $PG_BIN (apt-get install postgresql)" >&2; exit 2; }

export RECORDS OPS THREADS VALUE_SIZE SEED
ONLY=${ONLY:-}
if [[ $ONLY != postgres ]]; then
  # GojoDB: one shard, then many.
  OUT_DIR=$OUT_DIR/gojodb-one-shard "$HERE/bench-cluster.sh" --only gojodb --workloads transfer \
    "$BIN_DIR"
  OUT_DIR=$OUT_DIR/gojodb-shards "$HERE/bench-cluster.sh" --only gojodb --workloads transfer \
    --split-bytes "$SPLIT_BYTES" "$BIN_DIR"
fi
if [[ $ONLY == gojodb ]]; then exit 0; fi

# PostgreSQL in a scratch directory, as the postgres user when run as root (initdb
# refuses root).
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gojodb-bench-pg.XXXXXX")
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[[ $(id -u) -ne 0 ]] || chown postgres "$WORK"
PORT=$((20000 + RANDOM % 10000))
cleanup() {
  as_pg "$PG_BIN/pg_ctl" -D "$WORK/data" -m fast stop > /dev/null 2>&1 || true
  cp "$WORK/postgres.log" "$OUT_DIR/" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
as_pg "$PG_BIN/initdb" -D "$WORK/data" -A trust -U bench > "$OUT_DIR/postgres-initdb.log" 2>&1
as_pg "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/postgres.log" -w \
  -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on -c max_connections=200" \
  start > /dev/null
CONN="host=127.0.0.1 port=$PORT dbname=postgres user=bench"
COMMON=(--records "$RECORDS" --ops "$OPS" --threads "$THREADS" --value-size "$VALUE_SIZE" --seed "$SEED"
        --max-seconds 120)
for w in load transfer; do
  echo "== postgres $w" | tee -a "$OUT_DIR/commands.txt"
  "$BENCH" --target postgres --addr "$CONN" --workload "$w" "${COMMON[@]}" \
    --json "$OUT_DIR/postgres-$w.json" | tee "$OUT_DIR/postgres-$w.txt"
done

# Summary: throughput and p99 of the transfer phase.
stats() {  # "ops/s p99_us" of the run phase of a gojodb-bench text output
  awk '/^\[(run|load)\]/ { for (i = 1; i <= NF; i++) if ($i == "ops/s;") ops = $(i - 1) }
       /^TOTAL / { p99 = $11 }
       END { if (ops == "") print "- -"; else print ops, p99 }' "$1" 2>/dev/null || echo "- -"
}
{
  echo "| system | transfers/s | p99 ms |"
  echo "|---|---|---|"
  for s in gojodb-one-shard/gojodb-transfer gojodb-shards/gojodb-transfer postgres-transfer; do
    read -r ops p99 <<< "$(stats "$OUT_DIR/$s.txt")"
    echo "| ${s%%/*} | $ops | $(awk -v v="$p99" 'BEGIN { if (v == "-") print "-"; else printf "%.1f", v / 1000 }') |"
  done
} | tee "$OUT_DIR/summary.md"
echo "results in $OUT_DIR"
