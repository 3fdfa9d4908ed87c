#!/usr/bin/env bash
# Runs the whole gitca test suite on a fresh Debian machine: installs the real tools the tests
# drive (openssl, age, git, nginx, docker-registry, curl, GnuTLS certtool, ssh-keygen, script),
# then formatting, lints, and every test. Fails — never skips — when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
# Every CA the tests make leaves what gitca issued here, for pkilint below.
GITCA_ARTIFACTS=$(mktemp -d /tmp/gitca-artifacts.XXXXXX)
export GITCA_ARTIFACTS
trap 'rm -rf "$GITCA_ARTIFACTS"' EXIT
cargo test --no-fail-fast

echo "== pkilint: every certificate and CRL the tests issued, RFC 5280 profile, no finding at WARNING or above"
PY=python3
if ! python3 -c 'import pkilint' 2>/dev/null; then
  if python3 -m venv target/pkilint-venv >/dev/null 2>&1; then PY=target/pkilint-venv/bin/python; fi
  "$PY" -c 'import pkilint' 2>/dev/null ||
    "$PY" -m pip install --quiet --disable-pip-version-check pkilint ||
    "$PY" -m pip install --quiet --disable-pip-version-check --break-system-packages pkilint
fi
"$PY" scripts/lint-artifacts.py "$GITCA_ARTIFACTS"
