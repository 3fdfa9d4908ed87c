#!/usr/bin/env bash
# Builds gitca's Debian package: the binary, its manual pages and shell completions, and the
# systemd units that keep a server's CRL and a bot's certificate current (examples/systemd).
#
#   scripts/build-deb.sh                      # cargo build --release, then package it
#   scripts/build-deb.sh --binary PATH        # package an already built gitca
#   scripts/build-deb.sh --out DIR            # where the .deb goes (default target/debian)
#
# Prints the package's path and SHA-256 (the CI examples pin both). Needs dpkg-deb; with
# dpkg-dev installed, Depends is computed by dpkg-shlibdeps.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=
out=target/debian
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 1 ;;
  esac
done
if [ -z "$binary" ]; then
  cargo build --release --locked --quiet
  binary=target/release/gitca
fi

version=$("$binary" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
umask 022

install -D -m 0755 "$binary" "$stage/usr/bin/gitca"
strip --strip-unneeded "$stage/usr/bin/gitca"

"$binary" man "$stage/usr/share/man/man1"
gzip -9n "$stage"/usr/share/man/man1/*.1

install -d "$stage/usr/share/bash-completion/completions" \
  "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d"
"$binary" completions bash > "$stage/usr/share/bash-completion/completions/gitca"
"$binary" completions zsh > "$stage/usr/share/zsh/vendor-completions/_gitca"
"$binary" completions fish > "$stage/usr/share/fish/vendor_completions.d/gitca.fish"

install -d "$stage/lib/systemd/system"
install -m 0644 examples/systemd/*.service examples/systemd/*.timer "$stage/lib/systemd/system/"

doc=$stage/usr/share/doc/gitca
install -d "$doc/examples"
install -m 0644 examples/systemd/*.env examples/systemd/README.md "$doc/examples/"
install -m 0644 README.md "$doc/"
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: gitca

Files: *
Copyright: the gitca authors
License: MIT or Apache-2.0
 On Debian systems, the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.
EOF

depends="libc6, libgcc-s1, zlib1g"
if command -v dpkg-shlibdeps >/dev/null; then
  shl=$(mktemp -d)
  mkdir "$shl/debian"
  printf 'Source: gitca\n\nPackage: gitca\nArchitecture: any\n' > "$shl/debian/control"
  depends=$(cd "$shl" && dpkg-shlibdeps -O -e "$stage/usr/bin/gitca" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
  rm -rf "$shl"
fi

install -d "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<EOF
Package: gitca
Version: $version
Architecture: $arch
Maintainer: gitca maintainers <maintainers@gitca.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends
Recommends: git
Suggests: nginx, age
Section: admin
Priority: optional
Description: git-backed, declarative private certificate authority
 gitca keeps a private CA in a git repository: identities are declared in
 YAML, each person adds their own CSR, the CA key is age-encrypted, and
 "gitca reconcile" issues, renews and revokes certificates.
 .
 This package also carries what runs where the certificates are used:
 "gitca deploy crl" keeps a server's CRL current, "gitca deploy cert" a
 bot's client certificate, with systemd timers for both (disabled until
 configured in /etc/gitca).
EOF
# systemd learns about new or removed units; nothing is enabled or started.
for script in postinst postrm; do
  cat > "$stage/DEBIAN/$script" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
EOF
  chmod 0755 "$stage/DEBIAN/$script"
done
cat > "$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop gitca-deploy-crl.timer gitca-deploy-crl.service \
    gitca-deploy-admission.timer gitca-deploy-admission.service \
    'gitca-deploy-cert@*.timer' 'gitca-deploy-cert@*.service' >/dev/null 2>&1 || true
fi
EOF
chmod 0755 "$stage/DEBIAN/prerm"

mkdir -p "$out"
deb=$out/gitca_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
sha256sum "$deb" | cut -d' ' -f1
