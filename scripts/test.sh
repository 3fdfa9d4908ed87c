#!/usr/bin/env bash
# Runs the whole gitca test suite on a fresh Debian machine: installs the real tools the tests
# drive (openssl, age, git, nginx, docker-registry, curl, GnuTLS certtool, ssh-keygen, script),
# then formatting, lints, and every test. Fails — never skips — when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(openssl age age-keygen nginx docker-registry curl certtool ssh-keygen script git)
missing=()
for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing test tools (missing: ${missing[*]})"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    openssl age nginx docker-registry curl gnutls-bin openssh-client bsdutils git ca-certificates >/dev/null
fi
for t in "${need[@]}"; do command -v "$t" >/dev/null || { echo "missing after install: $t" >&2; exit 1; }; done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets --no-fail-fast
