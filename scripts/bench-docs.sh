#!/usr/bin/env bash
# Runs the docs/benchmarks.md "Documents" comparison on this machine: gojodb-docs-bench
# (tools/bench/docs_bench.cc) against
#   - gojodb-standalone (fsync on, its defaults), over its HTTP API;
#   - PostgreSQL (Debian's, one server, synchronous_commit on, fsync on), JSONB with
#     expression indexes on the same fields, over libpq.
# Both get the same generated documents: NDJSON bulk ingest against COPY, an indexed
# point query, an indexed range query, and a group-by over every document. Both servers
# run at once and the systems take turns: every phase runs ROUNDS times on each, in
# alternating order, and each figure is the mean of its rounds, so that the machine's
# drift during a run weighs on both alike (the summary also gives the range of the
# rounds' ratios).
#
#   scripts/bench-docs.sh [BIN_DIR]          (make bench-docs: build/bin)
#
# Environment: DOCS (200000), THREADS (8), PHASE_SECONDS (5, a round), ROUNDS (3),
# SEED (1), PG_BIN (/usr/lib/postgresql/15/bin),
# OUT_DIR (BIN_DIR/../bench-results/docs-<UTC time>),
# RECLAIM (0; 1: GojoDB runs with gc_ttl_seconds=1, and each ingest round waits until
# the collection the round before dropped is deleted and compacted away, as
# PostgreSQL's DROP TABLE frees its files at once; with 0 the dropped rounds' rows stay
# for the default TTL of 600 s).
set -euo pipefail

BIN_DIR=${1:-build/bin}
DOCS=${DOCS:-200000}
THREADS=${THREADS:-8}
SECONDS_PER_PHASE=${PHASE_SECONDS:-5}
ROUNDS=${ROUNDS:-3}
SEED=${SEED:-1}
RECLAIM=${RECLAIM:-0}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BENCH=$BIN_DIR/gojodb-docs-bench
SERVER=$BIN_DIR/gojodb-standalone
OUT_DIR=${OUT_DIR:-$BIN_DIR/../bench-results/docs-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
for b in "$BENCH" "$SERVER"; do
  [[ -x $b ]] || { echo "bench-docs: missing $b (build it first)" >&2; exit 2; }
done
grep -qa "PQconnectdb" "$BENCH" ||
  { echo "bench-docs: $BENCH has no postgres side (install libpq-dev, reconfigure, rebuild)" >&2; exit 2; }
[[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]] ||
  { echo "bench-docs: no PostgreSQL server in $PG_BIN (apt-get install postgresql)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gojodb-bench-docs.XXXXXX")
SERVER_PID=
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m fast stop > /dev/null 2>&1 || true
  cp "$WORK/pg/postgres.log" "$OUT_DIR/" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
source "$(cd "$(dirname "$0")" && pwd)/bench-lib.sh"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) cores"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "docs: $DOCS threads: $THREADS seconds: $SECONDS_PER_PHASE rounds: $ROUNDS seed: $SEED reclaim: $RECLAIM"
} | tee "$OUT_DIR/environment.txt"
COMMON=(--docs "$DOCS" --threads "$THREADS" --seconds "$SECONDS_PER_PHASE" --seed "$SEED"
  --rounds "$ROUNDS")
SERVER_FLAGS=()
if [[ $RECLAIM == 1 ]]; then
  SERVER_FLAGS=(--gc-ttl-seconds 1)
  COMMON+=(--reclaim-wait 120)
fi

# GojoDB standalone and PostgreSQL, both up for the whole run.
HTTP_PORT=$(free_port)
GRPC_PORT=$(free_port)
"$SERVER" --data-dir "$WORK/standalone" --http-addr "127.0.0.1:$HTTP_PORT" \
  --grpc-addr "127.0.0.1:$GRPC_PORT" "${SERVER_FLAGS[@]}" > "$OUT_DIR/standalone.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$HTTP_PORT/readyz" > /dev/null 2>&1 && break
  sleep 0.2
done
mkdir -p "$WORK/pg"
[[ $(id -u) -ne 0 ]] || { chmod 711 "$WORK"; chown postgres "$WORK/pg"; }
PORT=$(free_port)
as_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -A trust -U bench > "$OUT_DIR/postgres-initdb.log" 2>&1
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/postgres.log" -w \
  -o "-p $PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on" \
  start > /dev/null
"$BENCH" --gojodb "127.0.0.1:$HTTP_PORT" \
  --postgres "host=127.0.0.1 port=$PORT dbname=postgres user=bench" "${COMMON[@]}" \
  > "$OUT_DIR/docs.json"

python3 - "$OUT_DIR" <<'PY' | tee "$OUT_DIR/summary.md"
import json, sys
d = sys.argv[1]
g, p = json.load(open(d + "/docs.json"))["results"]
assert g["system"] == "gojodb" and p["system"] == "postgres"
def ratios(phase, key, higher_better):
    rs = [a[key] / b[key] if higher_better else b[key] / a[key]
          for a, b in zip(g["rounds"][phase], p["rounds"][phase])]
    return f"{min(rs):.2f}–{max(rs):.2f}" if len(rs) > 1 else f"{rs[0]:.2f}"
def row(name, phase, key, unit, scale=1, higher_better=True):
    gv, pv = g[phase][key] * scale, p[phase][key] * scale
    r = gv / pv if higher_better else pv / gv
    print(f"| {name} | {gv:,.0f} {unit} | {pv:,.0f} {unit} | {r:.2f} | {ratios(phase, key, higher_better)} |")
print("| phase | GojoDB standalone | PostgreSQL | GojoDB / PostgreSQL | rounds' ratios |")
print("|---|---|---|---|---|")
row("ingest, no secondary index", "ingest_plain", "docs_per_s", "docs/s")
row("ingest, 3 indexes", "ingest", "docs_per_s", "docs/s")
for ph in ("point", "range"):
    row(f"{ph} query ({g[ph]['p99_ms']:.1f} / {p[ph]['p99_ms']:.1f} ms p99)", ph, "ops_per_s", "q/s")
row("group-by, 50 groups over every document", "groupby", "median_s", "ms", 1000, False)
PY
echo "results in $OUT_DIR"
