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
cargo test --all-targets --no-fail-fast
