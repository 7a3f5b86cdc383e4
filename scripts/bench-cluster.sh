#!/usr/bin/env bash
# Runs the docs/benchmarks.md "Cluster vs etcd" comparison on this machine: YCSB
# workloads through gojodb-bench against a GojoDB cluster (3 controllers, 3 storage nodes,
# replication factor 3, 1 gateway) and against a 3-member etcd cluster, both on loopback
# with their default durability (every acknowledged write fsync'd on a quorum), the same
# records, operations, client threads and value size. One system runs at a time; each
# gets a fresh data set loaded with the same load phase. Prints throughput, p99 and the
# GojoDB/etcd ratios, and keeps every output.
#
#   scripts/bench-cluster.sh [options] [BIN_DIR]       (make bench-cluster: build/bin)
#
# Options (or the environment variable in brackets):
#   --records N      [RECORDS, 10000]       records loaded before the workloads
#   --ops N          [OPS, 20000]           operations per workload
#   --threads N      [THREADS, 32]          client threads
#   --value-size B   [VALUE_SIZE, 256]      bytes per value
#   --workloads "W…" [WORKLOADS, "a b c write"]
#   --seed N         [SEED, 1]
#   --max-seconds S  [MAX_SECONDS, 120]     per phase
#   --out DIR        [OUT_DIR, BIN_DIR/../bench-results/cluster-<UTC time>]
#   --only gojodb|etcd                      run one side only (no ratios)
#   --split-bytes B  [SPLIT_BYTES]          GojoDB's shard split size for the run (default:
#                    the cluster's, 64 MiB: one shard at these sizes); small values spread
#                    the records over many shards
#   --route direct|gateway [ROUTE, direct]  how GojoDB's clients reach the data: the
#                    client library routed by the shard map straight to the storage
#                    nodes (as etcd's client talks to the members), or through a gateway
# ETCD (etcd) names the etcd binary. Needs gojodb-bench built with its etcd target
# (golang-etcd-server-dev installed when it was configured), etcd and curl.
#
# Outputs in OUT_DIR: SYSTEM-PHASE.txt/.json per gojodb-bench run, commands.txt,
# environment.txt, the servers' logs, summary.md (the table) and summary.json.
set -euo pipefail

RECORDS=${RECORDS:-10000}
OPS=${OPS:-20000}
THREADS=${THREADS:-32}
VALUE_SIZE=${VALUE_SIZE:-256}
WORKLOADS=${WORKLOADS:-"a b c write"}
SEED=${SEED:-1}
MAX_SECONDS=${MAX_SECONDS:-120}
OUT_DIR=${OUT_DIR:-}
ETCD=${ETCD:-etcd}
ONLY=
ROUTE=${ROUTE:-direct}
SPLIT_BYTES=${SPLIT_BYTES:-}
BIN_DIR=

usage() { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --records) RECORDS=$2; shift 2 ;;
    --ops) OPS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --value-size) VALUE_SIZE=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --max-seconds) MAX_SECONDS=$2; shift 2 ;;
    --out) OUT_DIR=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --route) ROUTE=$2; shift 2 ;;
    --split-bytes) SPLIT_BYTES=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "bench-cluster: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [[ -z $BIN_DIR ]] || { echo "bench-cluster: one BIN_DIR only" >&2; exit 2; }
       BIN_DIR=$1; shift ;;
  esac
done
BIN_DIR=${BIN_DIR:-build/bin}
case "$ONLY" in ""|gojodb|etcd) ;; *) echo "bench-cluster: --only gojodb|etcd" >&2; exit 2 ;; esac
case "$ROUTE" in direct|gateway) ;; *) echo "bench-cluster: --route direct|gateway" >&2; exit 2 ;; esac

BENCH=$BIN_DIR/gojodb-bench
needed=(gojodb-bench)
[[ $ONLY == etcd ]] || needed+=(gojodb-controller gojodb-storage gojodb-api gojodb)
for b in "${needed[@]}"; do
  [[ -x $BIN_DIR/$b ]] || { echo "bench-cluster: missing $BIN_DIR/$b (build it first)" >&2; exit 2; }
done
if [[ $ONLY != gojodb ]]; then
  command -v "$ETCD" >/dev/null ||
    { echo "bench-cluster: no $ETCD (apt-get install etcd-server; scripts/bootstrap.sh --bench)" >&2; exit 2; }
  grep -qa "etcdserverpb.KV" "$BENCH" ||
    { echo "bench-cluster: $BENCH has no etcd target (install golang-etcd-server-dev, reconfigure, rebuild)" >&2; exit 2; }
fi
command -v curl >/dev/null || { echo "bench-cluster: needs curl" >&2; exit 2; }

OUT_DIR=${OUT_DIR:-$BIN_DIR/../bench-results/cluster-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gojodb-bench-cluster.XXXXXX")
CLK_TCK=$(getconf CLK_TCK)

# Every process this script starts, by name; all stopped on exit, whatever the exit.
declare -A PIDS=()
stop_group() {  # stop_group PREFIX: SIGTERM to those named PREFIX*, SIGKILL after 10 s
  local name pid alive
  local -a group=()
  for name in "${!PIDS[@]}"; do [[ $name == "$1"* ]] && group+=("$name"); done
  [[ ${#group[@]} -gt 0 ]] || return 0
  for name in "${group[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for name in "${group[@]}"; do kill -0 "${PIDS[$name]}" 2>/dev/null && alive=1; done
    [[ $alive -eq 0 ]] && break
    sleep 0.2
  done
  for name in "${group[@]}"; do
    pid=${PIDS[$name]}
    if kill -0 "$pid" 2>/dev/null; then
      echo "bench-cluster: $name (pid $pid) still running 10 s after SIGTERM; SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    unset "PIDS[$name]"
  done
}
# Clients of the others first, so that nothing waits on a process already gone.
stop_all() {
  local g
  for g in api- storage- controller- etcd- ""; do stop_group "$g"; done
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() {  # start NAME CMD ARGS...: runs it in the background, its log in OUT_DIR
  local name=$1
  shift
  echo "$name: $*" >> "$OUT_DIR/commands.txt"
  "$@" > "$OUT_DIR/$name.log" 2>&1 &
  PIDS[$name]=$!
}

# free_port VAR: sets VAR to a port nothing listens on that was not handed out before,
# below the kernel's ephemeral range so that no outgoing connection takes it meanwhile.
declare -A USED_PORTS=()
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
((EPHEMERAL_LOW > 12000)) || EPHEMERAL_LOW=32768
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
    [[ -n ${USED_PORTS[$p]:-} ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS[$p]=1
      printf -v "$1" '%s' "$p"
      return
    fi
  done
  echo "bench-cluster: no free port found" >&2
  exit 1
}

wait_http() {  # wait_http URL SECONDS NAME: until URL answers 2xx
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "bench-cluster: $3 not ready at $1 after $2 s; log: $OUT_DIR/$3.log" >&2
      tail -20 "$OUT_DIR/$3.log" >&2 || true
      exit 1
    fi
    for name in "${!PIDS[@]}"; do
      kill -0 "${PIDS[$name]}" 2>/dev/null ||
        { echo "bench-cluster: $name exited; log: $OUT_DIR/$name.log" >&2; tail -20 "$OUT_DIR/$name.log" >&2; exit 1; }
    done
    sleep 0.2
  done
}

cpu_ticks() {  # "NAME TICKS" per running server: its user + system CPU so far
  local name stat
  local -a f
  for name in "${!PIDS[@]}"; do
    stat=$(cat "/proc/${PIDS[$name]}/stat" 2>/dev/null) || continue
    stat=${stat##*) }  # fields after "(comm) "; utime and stime are fields 14, 15
    read -r -a f <<< "$stat"
    echo "$name $((f[11] + f[12]))"
  done | sort
}

COMMON=(--records "$RECORDS" --ops "$OPS" --threads "$THREADS" --value-size "$VALUE_SIZE"
        --seed "$SEED" --max-seconds "$MAX_SECONDS" --progress 30)

# bench SYSTEM PHASE ARGS...: one gojodb-bench run; keeps its output and JSON, and the
# servers' CPU seconds over the run in SYSTEM-PHASE.server_cpu. A run with failed
# operations is kept and reported, not fatal.
bench() {
  local system=$1 phase=$2
  shift 2
  local wl=$phase
  echo "== $system $phase: gojodb-bench $*" | tee -a "$OUT_DIR/commands.txt"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT_DIR/$system-$phase.load"
  local before rc
  before=$(cpu_ticks)
  set +e
  "$BENCH" "$@" --workload "$wl" "${COMMON[@]}" --json "$OUT_DIR/$system-$phase.json" \
    2> "$OUT_DIR/$system-$phase.err" | tee "$OUT_DIR/$system-$phase.txt"
  rc=${PIPESTATUS[0]}
  set -e
  cat "$OUT_DIR/$system-$phase.err" >&2
  # Server CPU seconds during the run: the total, and per process.
  cpu_ticks | awk -v t="$CLK_TCK" -v before="$before" '
    BEGIN { n = split(before, b, "\n"); for (i = 1; i <= n; i++) { split(b[i], kv, " "); was[kv[1]] = kv[2] } }
    { d = ($2 - was[$1]) / t; total += d; per = per sprintf(" %s=%.2f", $1, d) }
    END { printf "%.2f\n", total > out; print substr(per, 2) > by }' \
    out="$OUT_DIR/$system-$phase.server_cpu" by="$OUT_DIR/$system-$phase.server_cpu_by_process"
  if [[ $rc -ne 0 ]]; then
    echo "bench-cluster: gojodb-bench exited $rc on $system $phase (failures are in the summary)" |
      tee -a "$OUT_DIR/$system-$phase.err" >&2
  fi
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "etcd: $("$ETCD" --version 2>/dev/null | sed -n 1p)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "records $RECORDS, ops $OPS, threads $THREADS, value size $VALUE_SIZE, workloads $WORKLOADS, seed $SEED, GojoDB route $ROUTE"
} | tee "$OUT_DIR/environment.txt"
echo "results in $OUT_DIR"

run_gojodb() {
  local d=$WORK/gojodb peers="" ctrls="" i
  local -a cg ch sg sh
  for i in 1 2 3; do
    free_port "cg[$i]"; free_port "ch[$i]"; free_port "sg[$i]"; free_port "sh[$i]"
    peers+="${peers:+,}$i=127.0.0.1:${cg[i]}"
    ctrls+="${ctrls:+,}127.0.0.1:${cg[i]}"
  done
  local ag ah
  free_port ag; free_port ah
  for i in 1 2 3; do
    start "controller-$i" "$BIN_DIR/gojodb-controller" --id "$i" --data-dir "$d/controller-$i" \
      --grpc-addr "127.0.0.1:${cg[i]}" --http-addr "127.0.0.1:${ch[i]}" --peers "$peers"
  done
  for i in 1 2 3; do wait_http "http://127.0.0.1:${ch[i]}/readyz" 60 "controller-$i"; done
  for i in 1 2 3; do
    start "storage-$i" "$BIN_DIR/gojodb-storage" --id "$i" --data-dir "$d/storage-$i" \
      --grpc-addr "127.0.0.1:${sg[i]}" --http-addr "127.0.0.1:${sh[i]}" --controllers "$ctrls"
  done
  start api-1 "$BIN_DIR/gojodb-api" --grpc-addr "127.0.0.1:$ag" --http-addr "127.0.0.1:$ah" \
    --controllers "$ctrls"
  for i in 1 2 3; do wait_http "http://127.0.0.1:${sh[i]}/readyz" 60 "storage-$i"; done
  wait_http "http://127.0.0.1:$ah/readyz" 120 api-1
  # Served once a write through the gateway succeeds (the first shard's replicas elect a
  # leader after the storage nodes register).
  local deadline=$((SECONDS + 120))
  until curl -fsS -o /dev/null --max-time 5 -X PUT --data-binary ready \
      "http://127.0.0.1:$ah/v1/collections/default/keys/bench-cluster-ready" 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "bench-cluster: the GojoDB cluster does not take writes" >&2; exit 1; }
    sleep 0.5
  done
  if [[ -n $SPLIT_BYTES ]]; then
    "$BIN_DIR/gojodb" --addr "127.0.0.1:${cg[1]}" settings set "shard_split_bytes=$SPLIT_BYTES" \
      >> "$OUT_DIR/commands.txt"
  fi
  curl -fsS --max-time 5 "http://127.0.0.1:${ch[1]}/v1/cluster/status" > "$OUT_DIR/gojodb-cluster-status.json" || true
  echo "GojoDB cluster: gateway gRPC 127.0.0.1:$ag; controllers $ctrls; route $ROUTE"
  local -a via=(--addr "127.0.0.1:$ag")
  if [[ $ROUTE == direct ]]; then
    # The gateway only told us the cluster takes writes; the clients route themselves.
    stop_group api-
    via=(--target cluster --addr "$ctrls")
  fi
  bench gojodb load "${via[@]}"
  for w in $WORKLOADS; do bench gojodb "$w" "${via[@]}"; done
  curl -fsS --max-time 5 "http://127.0.0.1:${ch[1]}/v1/cluster/status" > "$OUT_DIR/gojodb-cluster-status-after.json" || true
  stop_all
}

run_etcd() {
  local d=$WORK/etcd cluster="" eps="" i
  local -a cport pport
  for i in 1 2 3; do
    free_port "cport[$i]"; free_port "pport[$i]"
    cluster+="${cluster:+,}etcd-$i=http://127.0.0.1:${pport[i]}"
    eps+="${eps:+,}127.0.0.1:${cport[i]}"
  done
  # Defaults otherwise: fsync of the WAL on every commit, --snapshot-count 100000.
  for i in 1 2 3; do
    start "etcd-$i" "$ETCD" --name "etcd-$i" --data-dir "$d/etcd-$i" \
      --listen-client-urls "http://127.0.0.1:${cport[i]}" --advertise-client-urls "http://127.0.0.1:${cport[i]}" \
      --listen-peer-urls "http://127.0.0.1:${pport[i]}" --initial-advertise-peer-urls "http://127.0.0.1:${pport[i]}" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$$" \
      --quota-backend-bytes $((8 << 30)) --logger zap --log-level warn
  done
  for i in 1 2 3; do wait_http "http://127.0.0.1:${cport[i]}/health" 60 "etcd-$i"; done
  echo "etcd cluster: $eps"
  bench etcd load --target etcd --addr "$eps"
  for w in $WORKLOADS; do bench etcd "$w" --target etcd --addr "$eps"; done
  du -sh "$d" > "$OUT_DIR/etcd-data-size.txt" 2>/dev/null || true
  stop_all
}

[[ $ONLY == etcd ]] || run_gojodb
[[ $ONLY == gojodb ]] || run_etcd

# --- Summary -------------------------------------------------------------------------
# From a gojodb-bench text output: "ops/s p99_us failures client_cpu_s" of its last phase.
stats() {
  local file=$1
  [[ -f $file ]] || { echo "- - - -"; return; }
  awk '
    /^\[(run|load)\]/ { for (i = 1; i <= NF; i++) { if ($i == "ops/s;") ops = $(i - 1); if ($i == "CPU") cpu = $(i + 1) } }
    /^TOTAL / { p99 = $11; fail = $4 + $6 }
    END { if (ops == "") print "- - - -"; else printf "%s %s %d %s\n", ops, p99, fail, cpu }' "$file"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
num() { if [[ $1 == - ]]; then echo null; else echo "$1"; fi; }
ms() { awk -v v="$1" 'BEGIN { if (v == "-") print "-"; else printf "%.1f", v / 1000 }'; }

{
  echo "| workload | GojoDB ops/s | GojoDB p99 ms | etcd ops/s | etcd p99 ms | throughput GojoDB/etcd | p99 GojoDB/etcd | GojoDB failed ops | etcd failed ops |"
  echo "|---|---|---|---|---|---|---|---|---|"
} > "$OUT_DIR/summary.md"
json="{\"records\": $RECORDS, \"operations\": $OPS, \"threads\": $THREADS, \"value_size\": $VALUE_SIZE, \"seed\": $SEED, \"workloads\": {"
sep=""
for w in load $WORKLOADS; do
  read -r g_ops g_p99 g_fail g_cpu <<< "$(stats "$OUT_DIR/gojodb-$w.txt")"
  read -r e_ops e_p99 e_fail e_cpu <<< "$(stats "$OUT_DIR/etcd-$w.txt")"
  g_srv=$(cat "$OUT_DIR/gojodb-$w.server_cpu" 2>/dev/null || echo -)
  e_srv=$(cat "$OUT_DIR/etcd-$w.server_cpu" 2>/dev/null || echo -)
  echo "| $w | $g_ops | $(ms "$g_p99") | $e_ops | $(ms "$e_p99") | $(ratio "$g_ops" "$e_ops") | $(ratio "$g_p99" "$e_p99") | $g_fail | $e_fail |" >> "$OUT_DIR/summary.md"
  json+="$sep\"$w\": {\"gojodb\": {\"ops_per_sec\": $(num "$g_ops"), \"p99_us\": $(num "$g_p99"), \"failed\": $(num "$g_fail"), \"client_cpu_s\": $(num "$g_cpu"), \"server_cpu_s\": $(num "$g_srv")}, "
  json+="\"etcd\": {\"ops_per_sec\": $(num "$e_ops"), \"p99_us\": $(num "$e_p99"), \"failed\": $(num "$e_fail"), \"client_cpu_s\": $(num "$e_cpu"), \"server_cpu_s\": $(num "$e_srv")}, "
  t_ratio=$(ratio "$g_ops" "$e_ops"); p_ratio=$(ratio "$g_p99" "$e_p99")
  json+="\"throughput_ratio\": $(num "$t_ratio"), \"p99_ratio\": $(num "$p_ratio")}"
  sep=", "
done
echo "$json}}" > "$OUT_DIR/summary.json"

echo
echo "GojoDB: 3 controllers + 3 storage nodes (RF 3) + 1 gateway; etcd: 3 members; loopback, fsync on both"
echo "records $RECORDS, ops $OPS, threads $THREADS, value $VALUE_SIZE B; ratios are GojoDB/etcd"
echo
cat "$OUT_DIR/summary.md"
echo
echo "server CPU seconds per phase (all server processes; client CPU in each .txt):"
for w in load $WORKLOADS; do
  printf '  %-6s gojodb %s s, etcd %s s\n' "$w" "$(cat "$OUT_DIR/gojodb-$w.server_cpu" 2>/dev/null || echo -)" \
    "$(cat "$OUT_DIR/etcd-$w.server_cpu" 2>/dev/null || echo -)"
  for sys in gojodb etcd; do
    [[ -f $OUT_DIR/$sys-$w.server_cpu_by_process ]] &&
      echo "           $(cat "$OUT_DIR/$sys-$w.server_cpu_by_process")"
  done
done
echo "results in $OUT_DIR"
