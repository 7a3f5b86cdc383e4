#!/usr/bin/env bash
# Installs every Debian package GojoDB's build and tests need. Idempotent and quiet
# when everything is present; uses sudo when not run as root.
#   scripts/bootstrap.sh           build + test dependencies
#   scripts/bootstrap.sh --lint    also clang-format and clang-tidy
#   scripts/bootstrap.sh --bench   also the benchmark peers: etcd, and the .proto files of
#                                  its API that gojodb-bench's etcd target is built from;
#                                  PostgreSQL and libpq for its postgres target
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl
  clang libclang-rt-14-dev
  librocksdb-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libssl-dev libcurl4-openssl-dev
  nlohmann-json3-dev libsimdjson-dev libspdlog-dev libcli11-dev libyaml-cpp-dev libcpp-httplib-dev libboost-dev
  libreadline-dev libjemalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  iproute2 procps
)
for arg in "$@"; do
  case "$arg" in
    --lint) packages+=(clang-format clang-tidy) ;;
    --bench) packages+=(etcd-server etcd-client golang-etcd-server-dev postgresql libpq-dev) ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
