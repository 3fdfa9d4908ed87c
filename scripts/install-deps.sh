#!/usr/bin/env bash
# Installs the programs gitca's demo and tests drive, when missing (Debian/Ubuntu, apt-get):
# openssl, age, git, nginx, docker-registry, curl, GnuTLS certtool, ssh-keygen, script, and the
# real registry clients the end-to-end tests drive: dockerd/docker, containerd/ctr, skopeo (with
# ip and unshare for the private network namespace dockerd runs in); and what builds and checks
# the Debian package (dpkg-deb, dpkg-shlibdeps, strip, systemd-analyze, man); and what runs the
# CI examples' job graphs (Node.js and npm for gitlab-ci-local, rsync, shellcheck; the tools
# themselves come from scripts/install-ci-tools.sh); and SoftHSM2, the PKCS#11 token the CA-key-in-
# hardware tests drive (softhsm2-util and /usr/lib/softhsm/libsofthsm2.so).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
# The job-graph tools, on their own: a machine may have Node.js from elsewhere (NodeSource's
# package conflicts with Debian's npm), so only what is missing is installed.
graph=()
command -v rsync >/dev/null 2>&1 || graph+=(rsync)
command -v shellcheck >/dev/null 2>&1 || graph+=(shellcheck)
command -v node >/dev/null 2>&1 || graph+=(nodejs)
command -v npm >/dev/null 2>&1 || graph+=(npm)
updated=
if [ ${#graph[@]} -gt 0 ]; then
  echo "== installing missing packages: ${graph[*]}"
  $SUDO apt-get update -qq && updated=1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${graph[@]}" >/dev/null
fi
need=(openssl age age-keygen nginx docker-registry curl certtool ssh-keygen script git dockerd containerd ctr skopeo ip unshare python3 dpkg-deb dpkg-shlibdeps strip systemd-analyze man pgrep rsync shellcheck node npm softhsm2-util)
missing=()
for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "== installing missing tools: ${missing[*]}"
[ -n "$updated" ] || $SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  openssl age nginx docker-registry curl gnutls-bin openssh-client bsdutils git ca-certificates \
  docker.io containerd skopeo iproute2 util-linux python3 python3-venv \
  dpkg-dev binutils systemd man-db procps softhsm2 >/dev/null
# Debian starts the packaged services on install; the demo and tests run their own on loopback.
# The tests start private daemons (own roots, sockets, namespaces) and never use these.
$SUDO systemctl disable --now nginx docker-registry docker.socket docker containerd >/dev/null 2>&1 || true
for t in "${need[@]}"; do command -v "$t" >/dev/null || { echo "still missing after install: $t" >&2; exit 1; }; done
