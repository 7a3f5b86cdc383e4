#!/usr/bin/env bash
# A local GojoDB cluster of real processes on loopback, with a fault-injecting TCP proxy
# (gojodb-netproxy) on every link between processes. See docs/operations/cluster-harness.md.
#
#   scripts/cluster.sh up --controllers N --storage M --api K --dir DIR [--base-port P]
#                         [-- extra server flags]
#   scripts/cluster.sh status|down|heal --dir DIR
#   scripts/cluster.sh kill|stop|cont|restart NAME --dir DIR
#   scripts/cluster.sh partition NAMES NAMES --dir DIR
#
# Environment: GOJODB_BIN (the binaries, default: build/bin of this checkout),
# GOJODB_NETPROXY (default: $GOJODB_BIN/gojodb-netproxy), GOJODB_CLUSTER_TIMEOUT (seconds
# to wait for the cluster to serve, default 60).
# Exit status: 0 ok, 1 failure (a message on stderr), 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${GOJODB_BIN:-$ROOT/build/bin}
NETPROXY=${GOJODB_NETPROXY:-$BIN/gojodb-netproxy}
TIMEOUT=${GOJODB_CLUSTER_TIMEOUT:-60}
STOP_TIMEOUT=10
HOST=127.0.0.1

USAGE="usage: cluster.sh up --controllers N --storage M --api K --dir DIR [--base-port P] [-- FLAGS]
       cluster.sh status|down|heal --dir DIR
       cluster.sh kill|stop|cont|restart NAME --dir DIR
       cluster.sh partition NAME[,NAME...] NAME[,NAME...] --dir DIR"

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}
usage() {
  [[ $# -gt 0 ]] && echo "cluster.sh: $*" >&2
  echo "$USAGE" >&2
  exit 2
}
is_count() { [[ $1 =~ ^[0-9]+$ ]]; }

# --- the cluster's records under DIR -------------------------------------------------
# DIR/cluster.conf        controllers=N storage=M api=K base_port=P (one per line)
# DIR/links               the netproxy's links file
# DIR/procs/NAME.args     the process's command line, NUL-separated
# DIR/procs/NAME.pid      its pid
# DIR/procs/NAME.addrs    http=HOST:PORT grpc=HOST:PORT
# DIR/data/NAME/          its data directory; DIR/logs/NAME.log its output

NCTL=0 NSTORAGE=0 NAPI=0 BASE=30000

load_conf() {
  [[ -f $DIR/cluster.conf ]] || die "$DIR holds no cluster (no cluster.conf); start one with up"
  local key value
  while IFS='=' read -r key value; do
    case $key in
      controllers) NCTL=$value ;;
      storage) NSTORAGE=$value ;;
      api) NAPI=$value ;;
      base_port) BASE=$value ;;
    esac
  done <"$DIR/cluster.conf"
}

# Every process name, the netproxy first.
names() {
  local i
  echo netproxy
  for ((i = 1; i <= NCTL; i++)); do echo "controller-$i"; done
  for ((i = 1; i <= NSTORAGE; i++)); do echo "storage-$i"; done
  for ((i = 1; i <= NAPI; i++)); do echo "api-$i"; done
}

known_name() {
  local n
  for n in $(names); do [[ $n == "$1" ]] && return 0; done
  return 1
}

pid_of() { cat "$DIR/procs/$1.pid" 2>/dev/null || echo 0; }
addrs_of() { cat "$DIR/procs/$1.addrs" 2>/dev/null || echo "http=- grpc=-"; }
http_of() {
  local a
  a=$(addrs_of "$1")
  a=${a#http=}
  echo "${a%% *}"
}

# running, stopped or dead. A pid counts only while it runs the recorded binary.
state_of() {
  local name=$1 pid stat exe
  pid=$(pid_of "$name")
  [[ $pid -gt 0 && -r /proc/$pid/stat && -f $DIR/procs/$name.args ]] || {
    echo dead
    return
  }
  exe=$(head -zn1 "$DIR/procs/$name.args" | tr -d '\0')
  [[ $( (tr '\0' '\n' <"/proc/$pid/cmdline") 2>/dev/null | head -n1) == "$exe" ]] || {
    echo dead
    return
  }
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || {
    echo dead
    return
  }
  stat=${stat##*) }
  case ${stat%% *} in
    Z | X | x) echo dead ;;
    T | t) echo stopped ;;
    *) echo running ;;
  esac
}
alive() { [[ $(state_of "$1") != dead ]]; }

log_tail() {
  echo "--- last lines of $DIR/logs/$1.log:" >&2
  tail -n 15 "$DIR/logs/$1.log" >&2 2>/dev/null || true
}

# Starts NAME from its recorded command line, appending to its log.
launch() {
  local name=$1 args=()
  mapfile -d '' args <"$DIR/procs/$name.args"
  echo "=== $(date -u +%FT%TZ) ${args[*]}" >>"$DIR/logs/$name.log"
  "${args[@]}" </dev/null >>"$DIR/logs/$name.log" 2>&1 &
  local pid=$! i
  echo "$pid" >"$DIR/procs/$name.pid"
  # Until the child has exec'd, /proc shows the shell's command line, and state_of would
  # call a process that is still starting dead: wait for the exec (or the exit).
  local stat
  for ((i = 0; i < 200; i++)); do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || break
    [[ ${stat##*) } != Z* ]] || break # exited, not reaped yet
    [[ $( (tr '\0' '\n' <"/proc/$pid/cmdline") 2>/dev/null | head -n1) == "${args[0]}" ]] && break
    sleep 0.05
  done
}

record() {
  local name=$1 addrs=$2
  shift 2
  printf '%s\0' "$@" >"$DIR/procs/$name.args"
  echo "$addrs" >"$DIR/procs/$name.addrs"
}

http_code() {
  curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$1$2" 2>/dev/null || true
}

# Runs CHECK... every 0.2 s until it succeeds; after SECONDS fails saying WHAT.
poll_until() {
  local seconds=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      echo "cluster.sh: after ${seconds}s: $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# Whether every named process answers /healthz (gateways also /readyz); PENDING names
# those that do not yet. A process that exited is a failure at once.
PENDING=""
all_healthy() {
  local name
  PENDING=""
  for name in "$@"; do
    if ! alive "$name"; then
      log_tail "$name"
      die "$name exited"
    fi
    if [[ $(http_code "$(http_of "$name")" /healthz) != 200 ]]; then
      PENDING+=" $name"
    elif [[ $name == api-* && $(http_code "$(http_of "$name")" /readyz) != 200 ]]; then
      PENDING+=" $name(readyz)"
    fi
  done
  [[ -z $PENDING ]]
}
wait_healthy() {
  local seconds=$1
  shift
  if ! poll_until "$seconds" "not healthy" all_healthy "$@"; then
    echo "cluster.sh: not answering:$PENDING" >&2
    return 1
  fi
}

# Whether a controller reports a shard with a leader.
shard_has_leader() {
  local i body
  for ((i = 1; i <= NCTL; i++)); do
    alive "controller-$i" || continue
    body=$(curl -s -m 2 "http://$(http_of "controller-$i")/v1/cluster/status" 2>/dev/null) ||
      continue
    # The keys come sorted: "shards" is followed by "storage_nodes".
    body=${body#*\"shards\":}
    body=${body%%\"storage_nodes\":*}
    if [[ $body =~ \"leader\":[1-9] ]]; then return 0; fi
  done
  return 1
}

print_proc() {
  local name=$1 a
  a=$(addrs_of "$name")
  echo "$name $(pid_of "$name") $a${2:+ $2}"
}
print_gateway() {
  ((NAPI > 0)) && echo "GATEWAY http://$(http_of api-1)"
  return 0
}

# Sends SIG to NAME and waits up to SECONDS for it to be gone; 1 if it is not.
signal_and_wait() {
  local name=$1 sig=$2 seconds=$3 pid deadline
  pid=$(pid_of "$name")
  alive "$name" || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  if [[ $sig == TERM ]]; then kill -CONT "$pid" 2>/dev/null || true; fi
  deadline=$((SECONDS + seconds))
  while alive "$name"; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.1
  done
}

# --- up ------------------------------------------------------------------------------

port_in_use() {
  if command -v ss >/dev/null; then
    ss -Htln "sport = :$1" 2>/dev/null | grep -q .
  else
    (: <"/dev/tcp/$HOST/$1") 2>/dev/null
  fi
}

cmd_up() {
  local extra=() have_dir=0
  NCTL="" NSTORAGE="" NAPI=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --controllers | --storage | --api | --dir | --base-port)
        [[ $# -ge 2 ]] || usage "$1 needs a value"
        case $1 in
          --controllers) NCTL=$2 ;;
          --storage) NSTORAGE=$2 ;;
          --api) NAPI=$2 ;;
          --dir) DIR=$2 have_dir=1 ;;
          --base-port) BASE=$2 ;;
        esac
        shift 2
        ;;
      --)
        shift
        extra=("$@")
        break
        ;;
      *) usage "unknown argument $1" ;;
    esac
  done
  [[ $have_dir == 1 ]] || usage "--dir is required"
  is_count "$NCTL" || usage "--controllers must be a positive number"
  ((NCTL >= 1)) || usage "--controllers must be a positive number"
  is_count "$NSTORAGE" || usage "--storage must be a number"
  is_count "$NAPI" || usage "--api must be a number"
  is_count "$BASE" || usage "--base-port must be a number"
  ((NCTL <= 99 && NSTORAGE <= 99 && NAPI <= 99)) || usage "at most 99 processes of a kind"
  command -v curl >/dev/null || die "curl is needed"
  local b
  for b in "$BIN/gojodb-controller" "$BIN/gojodb-storage" "$BIN/gojodb-api" "$NETPROXY"; do
    [[ -x $b ]] || die "no executable $b (set GOJODB_BIN or GOJODB_NETPROXY)"
  done
  # Absolute paths: restart runs the recorded command lines from anywhere.
  BIN=$(realpath "$BIN")
  NETPROXY=$(realpath "$NETPROXY")
  [[ ! -e $DIR/cluster.conf ]] || die "$DIR already holds a cluster; use another --dir"
  mkdir -p "$DIR/procs" "$DIR/logs" "$DIR/data"
  DIR=$(cd "$DIR" && pwd)

  # Port layout: the netproxy's control port is P; process j (0-based, controllers then
  # storage nodes then gateways) has HTTP P+1+2j and gRPC P+2+2j; links follow.
  local nprocs=$((NCTL + NSTORAGE + NAPI)) nlinks
  nlinks=$((NCTL * (NCTL - 1) + NSTORAGE * NCTL + NSTORAGE * (NSTORAGE - 1) + NAPI * NCTL))
  local last=$((BASE + 2 * nprocs + nlinks))
  ((BASE >= 1024 && last <= 65535)) || die "ports $BASE..$last are out of range"
  local p busy=()
  for ((p = BASE; p <= last; p++)); do port_in_use "$p" && busy+=("$p"); done
  ((${#busy[@]} == 0)) || die "ports in use in $BASE..$last: ${busy[*]} (pick another --base-port)"

  local -A http grpc
  local j=0 name i k
  for name in $(names); do
    [[ $name == netproxy ]] && continue
    http[$name]=$HOST:$((BASE + 1 + 2 * j))
    grpc[$name]=$HOST:$((BASE + 2 + 2 * j))
    j=$((j + 1))
  done

  # One link per directed path: FROM>TO forwards to TO's gRPC address.
  local -A link
  local next=$((BASE + 1 + 2 * nprocs))
  : >"$DIR/links"
  # add_links FROM_KIND COUNT TO_KIND COUNT: a link from each FROM to each other TO.
  add_links() {
    local a b
    for ((a = 1; a <= $2; a++)); do
      for ((b = 1; b <= $4; b++)); do
        [[ $1-$a != "$3-$b" ]] || continue
        link["$1-$a>$3-$b"]=$HOST:$next
        echo "$1-$a>$3-$b $HOST:$next ${grpc[$3-$b]}" >>"$DIR/links"
        next=$((next + 1))
      done
    done
  }
  add_links controller "$NCTL" controller "$NCTL"
  add_links storage "$NSTORAGE" controller "$NCTL"
  add_links storage "$NSTORAGE" storage "$NSTORAGE"
  add_links api "$NAPI" controller "$NCTL"

  printf 'controllers=%s\nstorage=%s\napi=%s\nbase_port=%s\n' "$NCTL" "$NSTORAGE" "$NAPI" \
    "$BASE" >"$DIR/cluster.conf"

  # Whatever fails from here on takes the processes started so far down with it.
  trap 'up_failed' EXIT

  record netproxy "http=$HOST:$BASE grpc=-" "$NETPROXY" --links "$DIR/links" \
    --control-addr "$HOST:$BASE"
  launch netproxy
  wait_healthy 10 netproxy || exit 1

  local peers ctls
  for ((i = 1; i <= NCTL; i++)); do
    peers=""
    for ((k = 1; k <= NCTL; k++)); do
      if ((i == k)); then
        peers+=",$k=${grpc[controller-$k]}"
      else
        peers+=",$k=${link["controller-$i>controller-$k"]}"
      fi
    done
    name=controller-$i
    record "$name" "http=${http[$name]} grpc=${grpc[$name]}" "$BIN/gojodb-controller" \
      --id "$i" --data-dir "$DIR/data/$name" --http-addr "${http[$name]}" \
      --grpc-addr "${grpc[$name]}" --peers "${peers#,}" "${extra[@]}"
  done
  local peer_flags
  for ((i = 1; i <= NSTORAGE; i++)); do
    name=storage-$i
    ctls="" peers=""
    for ((k = 1; k <= NCTL; k++)); do ctls+=",${link["$name>controller-$k"]}"; done
    for ((k = 1; k <= NSTORAGE; k++)); do
      if ((i != k)); then peers+=",$k=${link["$name>storage-$k"]}"; fi
    done
    peer_flags=()
    if [[ -n $peers ]]; then peer_flags=(--peer-addrs "${peers#,}"); fi
    record "$name" "http=${http[$name]} grpc=${grpc[$name]}" "$BIN/gojodb-storage" \
      --id "$i" --data-dir "$DIR/data/$name" --http-addr "${http[$name]}" \
      --grpc-addr "${grpc[$name]}" --controllers "${ctls#,}" --zone "zone-$i" \
      "${peer_flags[@]}" "${extra[@]}"
  done
  for ((i = 1; i <= NAPI; i++)); do
    name=api-$i
    ctls=""
    for ((k = 1; k <= NCTL; k++)); do ctls+=",${link["$name>controller-$k"]}"; done
    record "$name" "http=${http[$name]} grpc=${grpc[$name]}" "$BIN/gojodb-api" \
      --http-addr "${http[$name]}" --grpc-addr "${grpc[$name]}" --controllers "${ctls#,}" \
      "${extra[@]}"
  done

  local servers=()
  for name in $(names); do
    [[ $name == netproxy ]] && continue
    launch "$name"
    servers+=("$name")
  done
  wait_healthy "$TIMEOUT" "${servers[@]}" || exit 1
  if ((NSTORAGE > 0)); then
    poll_until "$TIMEOUT" "no shard has a leader" shard_has_leader || exit 1
  fi
  trap - EXIT
  for name in $(names); do print_proc "$name"; done
  print_gateway
}

up_failed() {
  echo "cluster.sh: up failed; killing what it started (logs in $DIR/logs)" >&2
  kill_all
}

kill_all() {
  local name
  for name in $(names); do
    if alive "$name"; then
      kill -KILL "$(pid_of "$name")" 2>/dev/null || true
    fi
  done
}

# --- the other commands ----------------------------------------------------------------

cmd_status() {
  local name s down=0
  for name in $(names); do
    s=$(state_of "$name")
    [[ $s == dead ]] && down=$((down + 1))
    print_proc "$name" "$s"
  done
  print_gateway
  ((down == 0)) || die "$down processes are not running"
}

# SIGTERM (and SIGCONT, for stopped ones) to NAMES; SIGKILL to those left after
# STOP_TIMEOUT seconds.
stop_group() {
  local name left=() deadline=$((SECONDS + STOP_TIMEOUT))
  for name in "$@"; do
    if alive "$name"; then kill -TERM "$(pid_of "$name")" 2>/dev/null || true; fi
  done
  for name in "$@"; do
    if alive "$name"; then kill -CONT "$(pid_of "$name")" 2>/dev/null || true; fi
  done
  for name in "$@"; do
    while alive "$name" && ((SECONDS < deadline)); do sleep 0.1; done
    if alive "$name"; then left+=("$name"); fi
  done
  for name in "${left[@]}"; do
    echo "cluster.sh: $name did not stop in ${STOP_TIMEOUT}s; SIGKILL" >&2
    signal_and_wait "$name" KILL 5 || die "$name survived SIGKILL"
  done
}

# Clients first, so that no controller waits for their calls; the netproxy last.
cmd_down() {
  local name clients=() controllers=()
  for name in $(names); do
    case $name in
      controller-*) controllers+=("$name") ;;
      storage-* | api-*) clients+=("$name") ;;
    esac
  done
  stop_group "${clients[@]}"
  stop_group "${controllers[@]}"
  stop_group netproxy
}

cmd_signal() {
  local what=$1 name=$2 pid
  alive "$name" || die "$name is not running"
  pid=$(pid_of "$name")
  case $what in
    kill) signal_and_wait "$name" KILL 5 || die "$name survived SIGKILL" ;;
    stop)
      kill -STOP "$pid"
      local deadline=$((SECONDS + 5))
      until [[ $(state_of "$name") == stopped ]]; do
        ((SECONDS < deadline)) || die "$name did not stop"
        sleep 0.05
      done
      ;;
    cont) kill -CONT "$pid" ;;
  esac
}

cmd_restart() {
  local name=$1
  if alive "$name"; then
    signal_and_wait "$name" TERM "$STOP_TIMEOUT" || signal_and_wait "$name" KILL 5 ||
      die "$name survived SIGKILL"
  fi
  launch "$name"
  wait_healthy "$TIMEOUT" "$name" || die "$name did not come back"
  print_proc "$name"
}

control() {
  local path=$1 body=${2:-} out
  out=$(curl -s -m 5 -w '\n%{http_code}' -X POST --data-binary "$body" \
    "http://$(http_of netproxy)$path" 2>/dev/null) || die "the netproxy does not answer"
  [[ ${out##*$'\n'} == 200 ]] || die "netproxy $path: ${out%$'\n'*}"
  printf '%s' "${out%$'\n'*}"
}

cmd_partition() {
  local a b x y links=() missing=()
  IFS=, read -ra a <<<"$1"
  IFS=, read -ra b <<<"$2"
  ((${#a[@]} > 0 && ${#b[@]} > 0)) || usage "partition needs two non-empty sets"
  for x in "${a[@]}" "${b[@]}"; do
    if ! known_name "$x" || [[ $x == netproxy ]]; then usage "unknown process $x"; fi
  done
  for x in "${a[@]}"; do
    for y in "${b[@]}"; do
      [[ $x != "$y" ]] || usage "$x is in both sets"
      local found=0 l
      for l in "$x>$y" "$y>$x"; do
        if grep -q "^$l " "$DIR/links"; then
          links+=("$l")
          found=1
        fi
      done
      ((found)) || missing+=("$x/$y")
    done
  done
  ((${#missing[@]} == 0)) ||
    echo "cluster.sh: no proxied link (not partitioned): ${missing[*]}" >&2
  ((${#links[@]} == 0)) || control /block "${links[*]}"
}

# --- main --------------------------------------------------------------------------------

[[ $# -ge 1 ]] || usage
CMD=$1
shift
DIR=""
if [[ $CMD == up ]]; then
  cmd_up "$@"
  exit 0
fi
POS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --dir)
      [[ $# -ge 2 ]] || usage "--dir needs a value"
      DIR=$2
      shift 2
      ;;
    -h | --help) usage ;;
    *)
      POS+=("$1")
      shift
      ;;
  esac
done
[[ -n $DIR ]] || usage "--dir is required"
want_args() { [[ ${#POS[@]} -eq $1 ]] || usage "$CMD takes $1 argument(s)"; }
case $CMD in
  status | down | heal | kill | stop | cont | restart | partition) ;;
  -h | --help | help) usage ;;
  *) usage "unknown command $CMD" ;;
esac
load_conf
case $CMD in
  status) want_args 0 && cmd_status ;;
  down) want_args 0 && cmd_down ;;
  heal) want_args 0 && control /heal >/dev/null ;;
  kill | stop | cont | restart)
    want_args 1
    known_name "${POS[0]}" || usage "unknown process ${POS[0]}"
    if [[ $CMD == restart ]]; then cmd_restart "${POS[0]}"; else cmd_signal "$CMD" "${POS[0]}"; fi
    ;;
  partition) want_args 2 && cmd_partition "${POS[0]}" "${POS[1]}" ;;
esac
