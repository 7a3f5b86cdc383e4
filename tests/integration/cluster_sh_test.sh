#!/usr/bin/env bash
# scripts/cluster.sh end to end, with real processes: three controllers, three storage
# nodes and a gateway on a random base port in a temporary directory.
# - a key put and read through the gateway's HTTP API;
# - `partition storage-1 storage-2,storage-3`: the netproxy shows the four links between
#   them blocked, storage-1 leads no shard within a few seconds, storage-2 and storage-3
#   agree on a leader, and writes through the gateway succeed; `heal`; the same for
#   whichever node leads the shard then (it steps down, the other two elect one);
# - `kill storage-2` (status says dead), a write, `restart storage-2`: every key readable;
# - `stop` / `cont` seen in `status`; `down` leaves no process behind.
# GOJODB_BIN: the binaries (default: build/bin of this checkout).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=$ROOT/scripts/cluster.sh
export GOJODB_CLUSTER_TIMEOUT=${GOJODB_CLUSTER_TIMEOUT:-40}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cluster-sh-test.XXXXXX")
DIR=$WORK/cluster
PIDS=()

cleanup() {
  local rc=$?
  if [[ -f $DIR/cluster.conf ]]; then "$CLUSTER" down --dir "$DIR" >/dev/null 2>&1 || true; fi
  if ((rc == 0)); then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  local log
  for log in "$DIR"/logs/*.log; do
    [[ -f $log ]] || continue
    echo "--- $log" >&2
    tail -n 20 "$log" >&2
  done
  exit 1
}
step() { echo "[$SECONDS s] $*"; }

# The value of field KEY (http, grpc) of process NAME in `up` / `status` output.
field() { awk -v n="$2" -v k="$3=" '$1 == n { for (i = 3; i <= NF; i++) if (index($i, k) == 1) print substr($i, length(k) + 1) }' <<<"$1"; }

# Waits up to SECONDS for COMMAND to succeed.
eventually() {
  local seconds=$1 deadline
  shift
  deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.3
  done
}

# `status` output whatever its exit status.
status() { "$CLUSTER" status --dir "$DIR" 2>/dev/null || true; }

put() { [[ $(curl -s -m 15 -o /dev/null -w '%{http_code}' -X PUT --data-binary "$2" "$GATEWAY/v1/collections/default/keys/$1") == 200 ]]; }
get_is() { [[ $(curl -s -m 15 "$GATEWAY/v1/collections/default/keys/$1") == "$2" ]]; }

# The leader storage node NAME sees for every shard, space-separated ("0": none).
shards_at() { curl -s -m 2 "http://$(field "$UP" "$1" http)/v1/shards"; }
# The values of number field KEY in JSON text, space-separated.
numbers() { grep -o "\"$1\":[0-9]*" <<<"$2" | cut -d: -f2 | paste -sd' '; }
leaders_seen_by() {
  local body
  body=$(shards_at "$1") || return 1
  numbers leader "$body"
}
# The sum of the shards' applied indexes at storage node NAME.
applied_at() {
  local body n sum=0
  body=$(shards_at "$1") || return 1
  for n in $(numbers applied "$body"); do sum=$((sum + n)); done
  echo "$sum"
}
storage1_behind() {
  local a b
  a=$(applied_at storage-1) && b=$(applied_at storage-2) || return 1
  ((a < b))
}
storage1_caught_up() {
  local a b
  a=$(applied_at storage-1) && b=$(applied_at storage-2) || return 1
  ((a == b))
}
# storage-N's own view: it leads no shard.
leads_nothing() {
  local l
  l=$(leaders_seen_by "storage-$1") || return 1
  [[ -n $l && " $l " != *" $1 "* ]]
}
# The two storage nodes other than storage-N agree on leaders, none of them N.
others_have_leader() {
  local a b others
  others=$(others_of "$1")
  a=$(leaders_seen_by "storage-${others% *}") && b=$(leaders_seen_by "storage-${others#* }") ||
    return 1
  [[ -n $a && $a == "$b" && " $a " != *" 0 "* && " $a " != *" $1 "* ]]
}
others_of() {
  local i out=()
  for i in 1 2 3; do if ((i != $1)); then out+=("$i"); fi; done
  echo "${out[*]}"
}
all_agree_on_leader() {
  local a b c
  a=$(leaders_seen_by storage-1) && b=$(leaders_seen_by storage-2) &&
    c=$(leaders_seen_by storage-3) || return 1
  [[ -n $a && $a == "$b" && $b == "$c" && " $a " != *" 0 "* ]]
}

step "up"
UP=""
for attempt in 1 2 3; do
  BASE=$((20000 + (RANDOM % 120) * 100))
  if UP=$("$CLUSTER" up --controllers 3 --storage 3 --api 1 --dir "$DIR" --base-port "$BASE" 2>"$WORK/up.err"); then
    break
  fi
  if ! grep -q "ports in use" "$WORK/up.err" || ((attempt == 3)); then
    fail "up: $(cat "$WORK/up.err")"
  fi
  rm -rf "$DIR"
done
echo "$UP"
[[ $(grep -c " http=" <<<"$UP") == 8 ]] || fail "up printed $(grep -c " http=" <<<"$UP") process lines, want 8"
GATEWAY=$(awk '$1 == "GATEWAY" { print $2 }' <<<"$UP")
[[ $(tail -n1 <<<"$UP") == "GATEWAY $GATEWAY" && -n $GATEWAY ]] || fail "no GATEWAY line last"
mapfile -t PIDS < <(awk '$3 ~ /^http=/ { print $2 }' <<<"$UP")

step "put and get through $GATEWAY"
put k1 v1 || fail "PUT k1"
get_is k1 v1 || fail "GET k1"

step "partition storage-1 storage-2,storage-3 (shard leaders: $(leaders_seen_by storage-2 || true))"
"$CLUSTER" partition storage-1 storage-2,storage-3 --dir "$DIR" || fail "partition"
LINKS=$(curl -s "http://$(field "$UP" netproxy http)/links")
[[ $(grep -cE '^storage-1>storage-[23] .* blocked |^storage-[23]>storage-1 .* blocked ' <<<"$LINKS") == 4 ]] ||
  fail "want four blocked links, got: $LINKS"
[[ $(grep -c ' blocked ' <<<"$LINKS") == 4 ]] || fail "other links blocked: $LINKS"
eventually 15 leads_nothing 1 || fail "storage-1 still leads: $(leaders_seen_by storage-1)"
eventually 15 others_have_leader 1 || fail "no leader on the majority side"
put k2 v2 || fail "PUT k2 during the partition"
get_is k2 v2 || fail "GET k2 during the partition"
# The majority applied the write; storage-1 cannot have.
eventually 5 storage1_behind || fail "storage-1 applied what the majority did: it was not cut off"
APPLIED1=$(applied_at storage-1) || fail "storage-1 does not answer /v1/shards"
sleep 1
[[ $(applied_at storage-1) == "$APPLIED1" ]] || fail "storage-1 applies entries while cut off"

step "heal"
"$CLUSTER" heal --dir "$DIR" || fail "heal"
if grep -q ' blocked ' <<<"$(curl -s "http://$(field "$UP" netproxy http)/links")"; then
  fail "links still blocked"
fi
eventually 15 all_agree_on_leader || fail "storage-1 did not rejoin"
eventually 15 storage1_caught_up || fail "storage-1 did not catch up after heal"

# Whoever leads the shard now, cut off from both followers, steps down.
L=$(leaders_seen_by storage-2 | cut -d' ' -f1)
[[ $L =~ ^[123]$ ]] || fail "no shard leader after heal: '$L'"
O=$(others_of "$L")
step "partition the shard leader storage-$L from the others"
"$CLUSTER" partition "storage-$L" "storage-${O% *},storage-${O#* }" --dir "$DIR" || fail "partition"
eventually 15 leads_nothing "$L" || fail "storage-$L still leads: $(leaders_seen_by "storage-$L")"
eventually 15 others_have_leader "$L" || fail "no new leader on the majority side"
put k5 v5 || fail "PUT k5 with the old leader cut off"
"$CLUSTER" heal --dir "$DIR" || fail "heal"
eventually 15 all_agree_on_leader || fail "storage-$L did not rejoin"

step "kill storage-2, write, restart storage-2"
"$CLUSTER" kill storage-2 --dir "$DIR" || fail "kill"
grep -q '^storage-2 .* dead$' <<<"$(status)" || fail "status does not say storage-2 is dead"
put k3 v3 || fail "PUT k3 with storage-2 down"
RESTARTED=$("$CLUSTER" restart storage-2 --dir "$DIR") || fail "restart"
PIDS+=("$(awk '{ print $2 }' <<<"$RESTARTED")")
get_is k1 v1 || fail "GET k1 after the restart"
get_is k2 v2 || fail "GET k2 after the restart"
get_is k3 v3 || fail "GET k3 after the restart"
get_is k5 v5 || fail "GET k5 after the restart"
"$CLUSTER" status --dir "$DIR" >/dev/null || fail "not every process runs after the restart"

step "stop and cont controller-1"
"$CLUSTER" stop controller-1 --dir "$DIR" || fail "stop"
grep -q '^controller-1 .* stopped$' <<<"$(status)" || fail "status does not say stopped"
put k4 v4 || fail "PUT k4 with controller-1 stopped"
"$CLUSTER" cont controller-1 --dir "$DIR" || fail "cont"
grep -q '^controller-1 .* running$' <<<"$(status)" || fail "status does not say running"

step "down"
"$CLUSTER" down --dir "$DIR" || fail "down"
for pid in "${PIDS[@]}"; do
  if [[ -r /proc/$pid/stat ]]; then
    state=$(cat "/proc/$pid/stat" 2>/dev/null || true)
    state=${state##*) }
    [[ -z $state || ${state%% *} == Z ]] || fail "pid $pid still runs after down"
  fi
done
if "$CLUSTER" status --dir "$DIR" >/dev/null 2>&1; then fail "status succeeds after down"; fi
step "ok"
