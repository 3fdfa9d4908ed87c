#!/usr/bin/env bash
# One point of the scale curve (docs/performance.md, "Scale"): a fixture of N identities, one
# file each (`per`) or all in one file (`one`), on tmpfs; then bulk issue, no-op, plan, check,
# and a no-op after a fresh clone, each with wall time, peak RSS and gitca's phase timings.
# usage: benches/scale.sh N [per|one]   (builds the release binary first unless BIN is set)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?N}; L=${2:-per}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin gitca --example fixture
  BIN=$PWD/target/release
fi
W=$(mktemp -d "${GITCA_BENCH_DIR:-/dev/shm}/gitca-scale.XXXXXX"); trap 'rm -rf "$W"' EXIT
flag=; [ "$L" = per ] && flag=--per-file
out=$("$BIN/examples/fixture" "$W/ca" "$N" p256 $flag)
root=$(echo "$out" | sed -n 1p); id=$(echo "$out" | sed -n 2p)
export GITCA_NOW=2026-01-01T00:00:00Z GITCA_TIMINGS=1
m() {
  local what=$1; shift
  local s e; s=$(date +%s.%N)
  "$@" > "$W/out" 2> "$W/err" || echo "  ($what exited $?)"
  e=$(date +%s.%N)
  printf '%s: wall %.2f s, %s\n' "$what" "$(echo "$e - $s" | bc)" "$(grep 'peak RSS' "$W/err" | head -1)"
  grep 'gitca timing' "$W/err" | sed 's/^/    /' || true
}
echo "N=$N layout=$L"
cd "$root"
m "bulk issue" "$BIN/gitca" reconcile --identity "$id" -q
m "no-op reconcile" "$BIN/gitca" reconcile --identity "$id" -q
m "plan" "$BIN/gitca" plan
m "check" "$BIN/gitca" check
git clone -q "$root" "$W/fresh" && cd "$W/fresh"
m "no-op after a fresh clone" "$BIN/gitca" reconcile --identity "$id" -q
