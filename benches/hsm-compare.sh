#!/usr/bin/env bash
# Bulk issue of N CSRs with the CA key in a SoftHSM2 token (PKCS#11, private token directory)
# against the same CSRs with an age-encrypted key (docs/performance.md, "PKCS#11").
# usage: benches/hsm-compare.sh [N=10000]   (builds the release binary first unless BIN is set)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin gitca --example fixture
  BIN=$PWD/target/release
fi
B=$BIN; N=${1:-10000}
W=$(mktemp -d /dev/shm/hsmb.XXXX); trap 'rm -rf $W' EXIT; cd $W
mkdir -p tokens
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\n' "$PWD" > softhsm2.conf
export SOFTHSM2_CONF="$PWD/softhsm2.conf" GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@x GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@x
softhsm2-util --init-token --free --label ca-token --pin 123456 --so-pin 12345678 > /dev/null
export GITCA_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so GITCA_PKCS11_PIN=123456 GITCA_NOW=2026-01-01T00:00:00Z
$B/gitca init -C hsm --name "HSM CA" --organization B -q --pkcs11 "pkcs11:token=ca-token;object=ca" --pkcs11-generate
out=$($B/examples/fixture $W/age $N p256); root=$(echo "$out"|sed -n 1p); id=$(echo "$out"|sed -n 2p)
cp -r $root/identities/. hsm/identities/; cp -r $root/csr hsm/
# the fixture's gitca.yaml profiles may differ: keep the HSM CA's own
git -C hsm add -A; git -C hsm commit -qm "$N identities"
cd hsm; s=$(date +%s.%N); GITCA_TIMINGS=1 $B/gitca reconcile -q 2> ../err || { cat ../err; exit 1; }; e=$(date +%s.%N)
echo "token: bulk issue $N: $(echo "$e-$s"|bc) s; $(grep 'peak RSS' ../err)"; grep timing ../err
openssl verify -attime $(date -d 2026-01-02 +%s) -CAfile ca/ca.crt -crl_check -CRLfile crl/ca.crl certs/$(ls certs | head -1) 
cd $root; s=$(date +%s.%N); GITCA_TIMINGS=1 $B/gitca reconcile --identity $id -q 2> ../err2; e=$(date +%s.%N)
echo "age: bulk issue $N: $(echo "$e-$s"|bc) s; $(grep 'peak RSS' ../err2)"
