#!/usr/bin/env bash
# Runs the whole gitca test suite on a fresh Debian machine: installs the real tools the tests
# drive (openssl, age, git, nginx, docker-registry, curl, GnuTLS certtool, ssh-keygen, script;
# gitlab-ci-local and actionlint for the CI examples' job graphs), then formatting, lints, and
# every test. Fails — never skips — when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
./scripts/install-ci-tools.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
# Python with pkilint (and cryptography, which it depends on): the PKCS#12 tests read gitca's
# files with cryptography, and pkilint lints every artifact after the suite.
PY=python3
if ! python3 -c 'import pkilint, cryptography' 2>/dev/null; then
  if [ ! -x target/pkilint-venv/bin/python ]; then python3 -m venv target/pkilint-venv >/dev/null; fi
  PY=target/pkilint-venv/bin/python
  "$PY" -c 'import pkilint, cryptography' 2>/dev/null ||
    "$PY" -m pip install --quiet --disable-pip-version-check pkilint cryptography
fi
case "$PY" in
  */*) GITCA_TEST_PYTHON=$PWD/$PY ;;
  *) GITCA_TEST_PYTHON=$(command -v "$PY") ;;
esac
export GITCA_TEST_PYTHON

echo "== cargo test"
# Every CA the tests make leaves what gitca issued here, for pkilint below.
GITCA_ARTIFACTS=$(mktemp -d /tmp/gitca-artifacts.XXXXXX)
export GITCA_ARTIFACTS
trap 'rm -rf "$GITCA_ARTIFACTS"' EXIT
cargo test --no-fail-fast

echo "== pkilint: every certificate and CRL the tests issued, RFC 5280 profile, no finding at WARNING or above"
"$PY" scripts/lint-artifacts.py "$GITCA_ARTIFACTS"
