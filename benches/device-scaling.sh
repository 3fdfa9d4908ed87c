#!/usr/bin/env bash
# Thread scaling and size curve on a many-core machine, with no compiling there: a release
# gitca and the fixture example built elsewhere, passed in $BIN (gitca, fixture), and prepared
# fixtures in $FIX (f10k.tar: 10,000 users in one file; p10k.tar: in one file each; both
# committed, not reconciled). Prints one table row per run; `time` gives wall, CPU and peak RSS.
# usage: BIN=dir FIX=dir benches/device-scaling.sh [OUT]
set -uo pipefail
out=${1:-/tmp/scaling}; mkdir -p "$out"
work=$(mktemp -d /dev/shm/gitca-scaling.XXXXXX 2>/dev/null || mktemp -d)
export GITCA_NOW=2026-01-01T00:00:00Z
echo "cores $(nproc); git $(command -v git || echo none); openssl $(openssl version 2>/dev/null || echo none); work $work"
run() { # label dir args...: wall (date), CPU and peak RSS (GITCA_TIMINGS), history walked
  local label=$1 dir=$2; shift 2
  local t0 t1; t0=$(date +%s%N)
  GITCA_TIMINGS=1 "$BIN/gitca" -C "$dir" "$@" > "$work/log" 2>&1
  local rc=$?; t1=$(date +%s%N)
  local cpu rss phases
  cpu=$(sed -n 's/^gitca cpu: \([0-9]*\) us/\1/p' "$work/log" | tail -1)
  rss=$(sed -n 's/^gitca peak RSS: \([0-9]*\) kB/\1/p' "$work/log" | tail -1)
  # Each phase's end, in ms since the start: "load and plan 41.7, verify CSRs 65.5, ...".
  phases=$(sed -n 's/^gitca timing: \(.*[^ ]\)  *\([0-9.]*\) ms .*/\1 \2/p' "$work/log" | paste -sd, -)
  awk -v l="$label" -v rc="$rc" -v w="$(( (t1 - t0) / 1000000 ))" -v c="${cpu:-0}" -v r="${rss:-0}" -v p="$phases" \
    'BEGIN { printf "%-40s rc=%s wall %7.2f s  cpu %7.2f s  rss %5d MiB  %s\n", l, rc, w / 1000, c / 1e6, r / 1024, p }' | tee -a "$out/table.txt"
  [ "$rc" = 0 ] || tail -5 "$work/log"
}
fresh() { rm -rf "$work/run"; mkdir -p "$work/run"; tar xf "$FIX/$1" -C "$work/run"; }
for layout in f10k p10k; do
  # Every thread count with the file-system pool at its default (2 from 4 cores on), then the
  # pool itself at 16 threads: 1, 4 and 16 writers.
  for tf in 1:default 2:default 4:default 8:default 16:default 16:1 16:4 16:16; do
    t=${tf%:*}; fs=${tf#*:}
    fresh $layout.tar
    (
      export RAYON_NUM_THREADS=$t GITCA_IDENTITY_FILE=$work/run/bench.agekey
      [ "$fs" = default ] || export GITCA_FS_THREADS=$fs
      run "$layout bulk threads=$t fs=$fs" "$work/run/ca" -q reconcile
    )
  done
  run "$layout no-op (16 threads)" "$work/run/ca" -q reconcile --identity "$work/run/bench.agekey"
  run "$layout check" "$work/run/ca" -q check
  run "$layout plan" "$work/run/ca" -q plan
  # The first run after a fresh clone (racy index entries).
  if command -v git >/dev/null; then
    rm -rf "$work/clone"; git clone -q "$work/run/ca" "$work/clone"
    run "$layout no-op after fresh clone" "$work/clone" -q reconcile --identity "$work/run/bench.agekey"
    run "$layout no-op again" "$work/clone" -q reconcile --identity "$work/run/bench.agekey"
  fi
done
# The size curve, built here when git is present (the fixture commits with the git CLI).
if command -v git >/dev/null; then
  for n in 1000 50000 100000; do
    for layout in one per; do
      d="$work/n$n-$layout"; mkdir -p "$d"
      flag=; [ $layout = per ] && flag=--per-file
      "$BIN/fixture" "$d" $n p256 $flag > /dev/null || { echo "fixture $n failed"; continue; }
      GITCA_IDENTITY_FILE=$d/bench.agekey run "n=$n $layout-file bulk" "$d/ca" -q reconcile
      run "n=$n $layout-file no-op" "$d/ca" -q reconcile --identity "$d/bench.agekey"
      run "n=$n $layout-file check" "$d/ca" -q check
      rm -rf "$d"
    done
  done
fi
# openssl ca, one process per certificate, on 1,000 of the same CSRs (the per-certificate
# cost; the 10,000 loop takes minutes).
if command -v openssl >/dev/null; then
  fresh f10k.tar; o=$work/openssl; mkdir -p "$o"/{newcerts,private,certs}; : > "$o/index.txt"; echo 1000 > "$o/serial"
  printf '[ca]\ndefault_ca=d\n[d]\ndir=%s\ndatabase=$dir/index.txt\nnew_certs_dir=$dir/newcerts\ncertificate=$dir/ca.crt\nprivate_key=$dir/private/ca.key\nserial=$dir/serial\ndefault_md=sha256\ndefault_days=365\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n[req]\ndistinguished_name=dn\n[dn]\n[u]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' "$o" > "$o/ca.cnf"
  openssl ecparam -name prime256v1 -genkey -noout -out "$o/private/ca.key"
  openssl req -new -x509 -days 3650 -key "$o/private/ca.key" -subj /CN=o -config "$o/ca.cnf" -out "$o/ca.crt"
  t0=$(date +%s.%N); i=0
  for csr in "$work"/run/ca/csr/*.csr; do
    i=$((i + 1)); [ $i -le 1000 ] || break
    openssl ca -batch -config "$o/ca.cnf" -extensions u -notext -in "$csr" -out "$o/certs/$i.crt" 2>/dev/null
  done
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "openssl ca loop: 1000 certificates in %.2f s\n", b - a }' | tee -a "$out/table.txt"
fi
rm -rf "$work"
