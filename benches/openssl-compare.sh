#!/usr/bin/env bash
# Side by side: the classic `openssl ca` loop (one process per certificate, as in the reference
# article) against one `gitca reconcile`, on the same N CSRs, with a CA of the same key type.
# usage: benches/openssl-compare.sh [N=1000] [p256|rsa4096]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}; kt=${2:-p256}
work=$(mktemp -d "${GITCA_BENCH_DIR:-/tmp}/gitca-vs-openssl.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --example fixture --bin gitca
out=$(target/release/examples/fixture "$work/gitca" "$n" "$kt")
root=$(echo "$out" | sed -n 1p); identity=$(echo "$out" | sed -n 2p)

# The openssl CA, same key type, same CSRs.
o="$work/openssl"; mkdir -p "$o"/{certs,newcerts,private,crl}; : > "$o/index.txt"; echo 1000 > "$o/serial"
cat > "$o/ca.cnf" <<CNF
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = $o
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
certificate = \$dir/ca.crt
private_key = \$dir/private/ca.key
serial = \$dir/serial
default_md = sha256
default_days = 365
policy = policy_anything
unique_subject = no
copy_extensions = none
[ policy_anything ]
commonName = supplied
[ req ]
distinguished_name = dn
[ dn ]
[ usr_cert ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,cRLSign,keyCertSign
subjectKeyIdentifier = hash
CNF
case "$kt" in
  p256) openssl ecparam -name prime256v1 -genkey -noout -out "$o/private/ca.key" ;;
  rsa4096) openssl genrsa -out "$o/private/ca.key" 4096 2>/dev/null ;;
esac
openssl req -new -x509 -days 3650 -key "$o/private/ca.key" -subj "/CN=openssl CA" -extensions v3_ca -config "$o/ca.cnf" -out "$o/ca.crt"

echo "== openssl ca: $n certificates, one process each"
start=$(date +%s.%N)
for csr in "$root"/csr/*.csr; do
  openssl ca -batch -config "$o/ca.cnf" -extensions usr_cert -notext -in "$csr" -out "$o/certs/$(basename "$csr" .csr).crt" 2>/dev/null
done
t_openssl=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')

echo "== gitca reconcile: $n certificates, one process"
start=$(date +%s.%N)
GITCA_NOW=2026-01-01T00:00:00Z GITCA_IDENTITY_FILE="$identity" target/release/gitca -C "$root" -q reconcile
t_gitca=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')

printf '\n%-14s %8s %12s\n' "" "total s" "per cert ms"
awk -v o="$t_openssl" -v g="$t_gitca" -v n="$n" -v kt="$kt" -v cores="$(nproc)" 'BEGIN {
  printf "%-14s %8.2f %12.3f\n", "openssl ca", o, o * 1000 / n
  printf "%-14s %8.2f %12.3f\n", "gitca", g, g * 1000 / n
  printf "gitca is %.1fx faster (CA key %s, %d CSRs, %d cores)\n", o / g, kt, n, cores
}'
