#!/usr/bin/env bash
# Installs the programs gitca's demo and tests drive, when missing (Debian/Ubuntu, apt-get):
# openssl, age, git, nginx, docker-registry, curl, GnuTLS certtool, ssh-keygen, script, and the
# real registry clients the end-to-end tests drive: dockerd/docker, containerd/ctr, skopeo (with
# ip and unshare for the private network namespace dockerd runs in); and what builds and checks
# the Debian package (dpkg-deb, dpkg-shlibdeps, strip, systemd-analyze, man).
set -euo pipefail
need=(openssl age age-keygen nginx docker-registry curl certtool ssh-keygen script git dockerd containerd ctr skopeo ip unshare python3 dpkg-deb dpkg-shlibdeps strip systemd-analyze man pgrep)
missing=()
for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "== installing missing tools: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  openssl age nginx docker-registry curl gnutls-bin openssh-client bsdutils git ca-certificates \
  docker.io containerd skopeo iproute2 util-linux python3 python3-venv \
  dpkg-dev binutils systemd man-db procps >/dev/null
# Debian starts the packaged services on install; the demo and tests run their own on loopback.
# The tests start private daemons (own roots, sockets, namespaces) and never use these.
$SUDO systemctl disable --now nginx docker-registry docker.socket docker containerd >/dev/null 2>&1 || true
for t in "${need[@]}"; do command -v "$t" >/dev/null || { echo "still missing after install: $t" >&2; exit 1; }; done
