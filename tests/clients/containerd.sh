#!/usr/bin/env bash
# containerd (a private daemon: own root, state, sockets and opt path under $W/run, CRI disabled)
# and ctr through nginx (client certificates + CRL, configured by `gitca export`) to
# docker-registry, all on 127.0.0.1. Run by tests/clients_e2e.rs; see common.sh for the
# environment.
#
# ctr reads `--hosts-dir DIR`: DIR/HOST:PORT/hosts.toml, as `gitca bundle --containerd` and
# `gitca deploy cert --containerd` write it. On 127.0.0.1 ctr speaks plain HTTP unless hosts.toml
# has a [host."https://…"] table, so these pushes also prove gitca writes one.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
trap cleanup EXIT
trap 'exit 143' TERM
START=$(date +%s.%N)
need_tools containerd ctr
SNAPSHOTTER=native   # copies instead of mounts: nothing can stay mounted under $W

C=$RUN/containerd
mkdir -p "$C/tmp"
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
temp = "$C/tmp"
# CRI creates /etc/cni/net.d on the host and opens a TCP port: not needed for ctr.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"

[plugins]
  # default /opt/containerd: keep it inside the test's directory
  [plugins."io.containerd.internal.v1.opt"]
    path = "$C/opt"
  # each namespace its own blobs, so a pull in another namespace really downloads them
  [plugins."io.containerd.metadata.v1.bolt"]
    content_sharing_policy = "isolated"
EOF
CPID=$(spawn "$C/containerd.log" containerd -c "$C/config.toml")
CTR=(ctr --address "$C/containerd.sock")
for _ in $(seq 1 200); do
    "${CTR[@]}" version >/dev/null 2>&1 && break
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.05
done
"${CTR[@]}" version >/dev/null 2>&1 || { cat "$C/containerd.log" >&2; die "containerd did not start"; }
log "containerd up (pid $CPID)"
# stop containerd before the common cleanup (it takes ~2 s on SIGTERM)
pre_cleanup() {
    if kill -0 "$CPID" 2>/dev/null; then
        kill -TERM "$CPID"
        for _ in $(seq 1 150); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
    fi
    if grep -q " $W" /proc/self/mounts; then log "WARNING: mounts left under $W"; grep " $W" /proc/self/mounts >&2; fi
}

CI_ROOT=$W/clients/ci-certs.d
# the directory holding client.cert; ctr wants its parent (the hosts dir)
certdir() {
    case $1 in
        alice) echo "$CERTS_ALICE" ;;
        bob) echo "$CERTS_BOB" ;;
        ci) echo "$CI_ROOT/$REGISTRY" ;;
    esac
}
hosts_dir() {
    local d; d=$(certdir "$1")
    [ -f "$d/hosts.toml" ] || die "no hosts.toml in $d"
    dirname "$d"
}
# ctr's words for nginx's refusals
why_text() { case $1 in forbidden) echo "403 Forbidden" ;; revoked) echo "400 Bad Request" ;; esac; }

# alice's image, imported offline into namespace "push"
IMPORTED=
import_image() { # ref text
    local oci=$RUN/oci-$2
    make_oci_layout "$oci" v1 "$1" "$2" >/dev/null
    tar -C "$oci" -cf "$oci.tar" oci-layout index.json blobs
    expect_ok "ctr images import $1" "${CTR[@]}" -n push images import --snapshotter "$SNAPSHOTTER" "$oci.tar"
    "${CTR[@]}" -n push images ls | awk -v r="$1" '$1==r{print $3}'
}
client_push() { # who ref
    PUSHED_DIGEST=$(import_image "$2" "$1")
    [ -n "$PUSHED_DIGEST" ] || die "imported image $2 not found"
    expect_ok "$1 push ($2)" "${CTR[@]}" -n push images push --hosts-dir "$(hosts_dir "$1")" "$2"
}
client_push_refused() { # who ref why
    if ! "${CTR[@]}" -n push images ls -q | grep -qxF "$2"; then import_image "$2" "$1-refused" >/dev/null; fi
    expect_fail "$1 push ($2)" "${CTR[@]}" -n push images push --hosts-dir "$(hosts_dir "$1")" "$2"
    assert_contains "$(cat "$RUN/last.out")" "$(why_text "$3")" "ctr's error for $1's push"
}
# every pull in the identity's own namespace, after removing the image there: a real download
client_pull() { # who ref
    "${CTR[@]}" -n "pull-$1" images rm "$2" >/dev/null 2>&1 || true
    local lines; lines=$(wc -l <"$NGINX_PREFIX/logs/access.log")
    expect_ok "$1 pull ($2)" "${CTR[@]}" -n "pull-$1" images pull --snapshotter "$SNAPSHOTTER" \
        --hosts-dir "$(hosts_dir "$1")" "$2"
    local got; got=$("${CTR[@]}" -n "pull-$1" images ls | awk -v r="$2" '$1==r{print $3}')
    assert_eq "$PUSHED_DIGEST" "$got" "manifest digest pulled by $1"
    # the pull resolved the tag through nginx (a HEAD, or a GET; the first pull in a namespace
    # also downloads the blobs: content_sharing_policy = isolated)
    tail -n +"$((lines + 1))" "$NGINX_PREFIX/logs/access.log" >"$RUN/pull-access.log"
    assert_contains "$(cat "$RUN/pull-access.log")" "/v2/test/hello/manifests/v1 HTTP/1.1\" 200" "$1's pull went through nginx"
}
client_pull_refused() { # who ref why
    "${CTR[@]}" -n "pull-$1" images rm "$2" >/dev/null 2>&1 || true
    expect_fail "$1 pull ($2)" "${CTR[@]}" -n "pull-$1" images pull --snapshotter "$SNAPSHOTTER" \
        --hosts-dir "$(hosts_dir "$1")" "$2"
    assert_contains "$(cat "$RUN/last.out")" "$(why_text "$3")" "ctr's error for $1's pull"
}
ci_deploy() { # now tree -> prints the cert dir
    expect_ok "bot: gitca deploy cert ci --containerd (now $1)" \
        "$GITCA" --now "$1" deploy cert ci --key "$KEY_CI" --from "$2" --ca "$PINNED_CA" \
        --containerd --registry "$REGISTRY" --certs-root "$CI_ROOT"
    log "  $(cat "$RUN/last.out")"
    certdir ci
}

registry_start
nginx_start

part_a
part_c
part_b

log "containerd: all assertions passed in $(elapsed "$START")s"
STOP=$(date +%s.%N)
pre_cleanup
kill -0 "$CPID" 2>/dev/null && die "containerd did not stop"
log "containerd stopped in $(elapsed "$STOP")s"
echo "PASS containerd"
