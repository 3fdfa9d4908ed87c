#!/usr/bin/env bash
# The gitca story on a throwaway CA: create it, onboard three people and a bot through
# "pull requests", reconcile, offboard one, reconcile, and let openssl judge the result.
set -euo pipefail
cd "$(dirname "$0")/.."
for t in openssl age-keygen git; do
  command -v "$t" >/dev/null || { echo "demo needs $t: sudo apt-get install openssl age git" >&2; exit 1; }
done
echo "== building gitca"
cargo build --quiet
GITCA="$PWD/target/debug/gitca"
work=$(mktemp -d /tmp/gitca-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
export GITCA_AUTHOR_NAME="gitca demo" GITCA_AUTHOR_EMAIL="demo@example.com"

step "1. A custodian makes an age identity; the CA key will be encrypted to it"
run age-keygen -o custodian.agekey 2>/dev/null
recipient=$(age-keygen -y custodian.agekey)

step "2. gitca init: CA key, self-signed certificate, encrypted key, empty CRL, first commit"
run "$GITCA" init -C ca --name "Demo Registry CA" --organization "Demo Corp" --recipient "$recipient"
cd ca
run git log --oneline
run openssl x509 -in ca/ca.crt -noout -subject -ext basicConstraints,keyUsage

step "3. Three people and a bot make their own keys and CSRs (keys stay outside the repo)"
mkdir -p ../keys csr
for u in alice bob carol ci-builder; do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "../keys/$u.key" \
    -out "csr/$u.csr" -subj "/CN=$u" 2>/dev/null
  echo "  $u: key ../keys/$u.key (0600, never committed), CSR csr/$u.csr"
done
cat > identities/people.yaml <<'YAML'
users:
  - name: alice
    email: alice@example.com
    csr: csr/alice.csr
    groups: [push]
  - name: bob
    csr: csr/bob.csr
    groups: [pull]
  - name: carol
    csr: csr/carol.csr
bots:
  - name: ci-builder
    csr: csr/ci-builder.csr
YAML
git add -A && git -c user.name=demo -c user.email=demo@example.com commit -qm "onboard alice, bob, carol, ci-builder"

step "4. The pull request's check job: gitca check and gitca plan (no CA key needed)"
run "$GITCA" check
run "$GITCA" plan

step "5. After the merge, CI runs gitca reconcile with the age identity from a secret"
export GITCA_IDENTITY="$(cat ../custodian.agekey)"
run "$GITCA" reconcile
run git log --oneline -3
run openssl verify -CAfile ca/ca.crt certs/alice.crt certs/bob.crt certs/carol.crt certs/ci-builder.crt

step "6. Nothing changed: reconcile does nothing, needs no key, makes no commit"
GITCA_IDENTITY= run "$GITCA" reconcile

step "7. Offboarding bob is deleting his entry"
cp certs/bob.crt ../bob-old.crt
awk '/^  - name: bob$/ {skip=1; next} skip && /^    / {next} {skip=0; print}' \
  identities/people.yaml > people.tmp && mv people.tmp identities/people.yaml
run git diff --stat
git -c user.name=demo -c user.email=demo@example.com commit -qam "offboard bob"
run "$GITCA" plan
run "$GITCA" reconcile

step "8. openssl with the new CRL: the others pass, bob is revoked"
for c in certs/alice.crt certs/carol.crt certs/ci-builder.crt; do
  run openssl verify -crl_check -CAfile ca/ca.crt -CRLfile crl/ca.crl "$c"
done
if openssl verify -crl_check -CAfile ca/ca.crt -CRLfile crl/ca.crl ../bob-old.crt; then
  echo "UNEXPECTED: bob's certificate still verifies" >&2; exit 1
fi
echo "  -> bob's certificate is refused: certificate revoked"

step "9. Status, as a monitoring job would see it"
run "$GITCA" status
echo
echo "Demo complete. (The throwaway CA in $work is removed on exit.)"
