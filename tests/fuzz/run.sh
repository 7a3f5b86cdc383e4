#!/usr/bin/env bash
# Runs every fuzzer for a bounded time from its seed corpus.
#   tests/fuzz/run.sh BIN_DIR SECONDS
set -euo pipefail
bin=${1:?bin dir}
secs=${2:-15}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in key_codec http_request controller_command document_query; do
  mkdir -p "$work/$f"
  cp -r "$here/corpus/$f/." "$work/$f/"
  echo "fuzz: ${f}_fuzzer for ${secs}s"
  "$bin/${f}_fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=0 "$work/$f" 2>"$work/$f.log" || { tail -50 "$work/$f.log"; exit 1; }
  grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$work/$f.log" | tail -1 || true
done
