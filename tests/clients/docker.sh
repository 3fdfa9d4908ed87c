#!/usr/bin/env bash
# dockerd (a private daemon) and the docker CLI through nginx (client certificates + CRL,
# configured by `gitca export`) to docker-registry, inside a private network + mount + pid
# namespace. Run by tests/clients_e2e.rs; see common.sh for the environment.
#
# Why a namespace: dockerd treats 127.0.0.0/8 registries as insecure and then never reads
# certs.d, so it would send no client certificate. Inside a new network namespace the registry
# gets 192.0.2.10 (TEST-NET-1) on the namespace's own loopback ($REGISTRY is 192.0.2.10:5443).
# In the new mount namespace $W/run/etc-docker is bind-mounted on /etc/docker (dockerd reads
# /etc/docker/certs.d and writes key.json there) and tmpfs are mounted on /run and /opt (the
# containerd dockerd starts creates /opt/containerd), so the machine's /etc/docker, /run and
# /opt are never written. The pid namespace makes the kernel kill whatever is left when the
# inner half ends.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SELF=$HERE/$(basename "$0")

if [ "${1:-}" != --inner ]; then
    # ------------------------------------------------------------ outer: the machine's side
    source "$HERE/common.sh"
    trap cleanup EXIT
    trap 'exit 143' TERM; trap 'exit 130' INT
    START=$(date +%s.%N)
    need_tools dockerd docker unshare ip mount
    [ "$(id -u)" = 0 ] || die "needs root (unshare --mount --net --pid, mount, dockerd)"
    [ -d /etc/docker ] || die "/etc/docker does not exist (the docker.io package makes it): it is the bind-mount target"
    [ "${REGISTRY%:*}" = 192.0.2.10 ] || die "REGISTRY must be 192.0.2.10:PORT (got $REGISTRY)"
    touch "$RUN/marker"
    log "entering private namespaces (unshare --mount --net --pid --fork --mount-proc --propagation private)"
    # --kill-child=SIGTERM: if unshare itself is killed, its child (the inner bash, pid 1 of the
    # namespace) gets SIGTERM and stops its daemons; when it exits, the kernel kills the rest.
    unshare --mount --net --pid --fork --kill-child=SIGTERM --mount-proc --propagation private \
        bash "$SELF" --inner &
    UPID=$!
    echo "$UPID" >>"$PIDS"
    # On an early stop: unshare does not pass SIGTERM on while it waits for its child, so signal
    # the child and let it stop its daemons.
    pre_cleanup() {
        kill -0 "$UPID" 2>/dev/null || return 0
        local child; child=$(pgrep -P "$UPID" || true)
        [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
        for _ in $(seq 1 300); do kill -0 "$UPID" 2>/dev/null || return 0; sleep 0.1; done
        log "inner part did not stop in 30 s; SIGKILL to unshare (the kernel then kills the namespace)"
        kill -KILL "$UPID" 2>/dev/null
    }
    rc=0; wait "$UPID" || rc=$?
    [ $rc = 0 ] || die "inner part failed (exit $rc)"
    # Nothing may be left: no mount, no process of the test, nothing new on the machine.
    if grep -q " $W" /proc/self/mounts; then grep " $W" /proc/self/mounts >&2; die "mounts left under $W"; fi
    for p in /proc/[0-9]*; do
        [ "$p" = "/proc/$$" ] && continue
        if [ "$(readlink "$p/cwd" 2>/dev/null)" = "$W" ] || grep -qs "$W/run" "$p/cmdline"; then
            die "process left: $(tr '\0' ' ' <"$p/cmdline")"
        fi
    done
    for f in /etc/docker/certs.d /etc/docker/key.json /etc/docker/daemon.json /opt/containerd /etc/cni \
        /run/docker /run/containerd /run/mount /var/lib/docker /var/lib/containerd; do
        if [ -e "$f" ] && [ "$f" -nt "$RUN/marker" ]; then die "$f appeared or changed on the machine"; fi
    done
    CG=$(find /sys/fs/cgroup -maxdepth 2 -name docker -newer "$RUN/marker" 2>/dev/null || true)
    [ -z "$CG" ] || die "cgroup directories appeared on the machine: $CG"
    log "docker: passed in $(elapsed "$START")s end to end; the namespace left nothing behind"
    echo "PASS docker"
    exit 0
fi

# ---------------------------------------------------------------- inner: private namespaces
PIDS=$W/run/pids.inner   # pids of this pid namespace (the outer half never uses them)
source "$HERE/common.sh"
trap cleanup EXIT
trap 'exit 143' TERM; trap 'exit 130' INT
INNER_START=$(date +%s.%N)

ip link set lo up
ip addr add 192.0.2.10/32 dev lo
mount -n -t tmpfs -o mode=755 tmpfs /run   # -n: no /run/mount/utab on the machine's /run
mount -n -t tmpfs -o mode=755 tmpfs /opt
mkdir -p "$RUN/etc-docker/certs.d"
mount -n --bind "$RUN/etc-docker" /etc/docker
log "namespace: lo up with 192.0.2.10, /etc/docker -> $RUN/etc-docker, tmpfs on /run and /opt"

registry_start
nginx_start

# ---------------------------------------------------------------- dockerd
D=$RUN/docker
mkdir -p "$D/data" "$D/exec" "$D/cli"
echo '{}' >"$D/daemon.json"
DPID=$(spawn "$D/dockerd.log" dockerd \
    --config-file "$D/daemon.json" \
    --data-root "$D/data" \
    --exec-root "$D/exec" \
    --pidfile "$D/dockerd.pid" \
    -H "unix://$D/docker.sock" \
    --storage-driver vfs \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --bridge=none)
export DOCKER_CONFIG=$D/cli   # the CLI's config.json stays in the test's directory
DK=(docker -H "unix://$D/docker.sock")
for _ in $(seq 1 300); do
    "${DK[@]}" version >/dev/null 2>&1 && break
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.1
done
"${DK[@]}" version >/dev/null 2>&1 || { cat "$D/dockerd.log" >&2; die "dockerd did not start"; }
log "dockerd up: $("${DK[@]}" version --format 'server {{.Server.Version}}, client {{.Client.Version}}')"
# stop dockerd (and the containerd it started) before the common cleanup
pre_cleanup() {
    if kill -0 "$DPID" 2>/dev/null; then
        kill -TERM "$DPID"
        for _ in $(seq 1 150); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    fi
}

# certs.d/192.0.2.10:5443/ — dockerd reads it at every push and pull.
CERTS_ROOT=$RUN/etc-docker/certs.d
DIR=$CERTS_ROOT/$REGISTRY
certdir() {
    case $1 in
        alice) echo "$CERTS_ALICE" ;;
        bob) echo "$CERTS_BOB" ;;
        ci) echo "$DIR" ;;
    esac
}
# Whose certificate is in certs.d now (its CN), or nothing.
current() {
    [ -f "$DIR/client.cert" ] || return 0
    openssl x509 -in "$DIR/client.cert" -noout -subject -nameopt RFC2253 | sed -n 's/^subject=CN=\([^,]*\),.*/\1/p'
}
# Put WHO's files where dockerd reads them: alice's and bob's bundles (`gitca bundle`) are
# copied; the bot's certificate is installed there by `gitca deploy cert` itself.
use_identity() { # who
    [ "$(current)" = "$1" ] && return 0
    rm -rf "$DIR"
    case $1 in
        ci) ci_deploy_now ;;
        *) cp -a "$(certdir "$1")" "$DIR" ;;
    esac
    assert_eq "$1" "$(current)" "identity in certs.d/$REGISTRY"
}
ci_deploy() { # now tree -> prints the cert dir
    # certs.d/HOST:PORT/ holds one identity at a time, and `gitca deploy cert ci` refuses to
    # overwrite another identity's files (tests/deploy.rs proves it): empty it when it holds
    # another one's.
    if [ -n "$(current)" ] && [ "$(current)" != ci ]; then rm -rf "$DIR"; fi
    expect_ok "bot: gitca deploy cert ci --registry $REGISTRY (now $1)" \
        "$GITCA" --now "$1" deploy cert ci --key "$KEY_CI" --from "$2" --ca "$PINNED_CA" \
        --registry "$REGISTRY" --certs-root "$CERTS_ROOT"
    log "  $(cat "$RUN/last.out")"
    echo "$DIR"
}
# The bot's deploy-cert timer again, at the real time, from the newest published tree.
ci_deploy_now() {
    expect_ok "bot: gitca deploy cert ci --registry $REGISTRY" \
        "$GITCA" deploy cert ci --key "$KEY_CI" --from "$PUB_OFFBOARDED" --ca "$PINNED_CA" \
        --registry "$REGISTRY" --certs-root "$CERTS_ROOT"
    log "  $(cat "$RUN/last.out")"
    assert_eq "$(cat "$RUN/ci-serial-after")" "$(serial_of "$DIR/client.cert")" "ci's installed serial (the renewed one)"
}
# docker's words for nginx's refusals
why_text() { case $1 in forbidden) echo "403 Forbidden" ;; revoked) echo "400 The SSL certificate error" ;; esac; }

N=0
import_image() { # ref text
    N=$((N + 1))
    make_rootfs_tar "$RUN/rootfs-$N.tar" "$2"
    expect_ok "docker import $1" "${DK[@]}" import "$RUN/rootfs-$N.tar" "$1"
}
client_push() { # who ref
    import_image "$2" "$1"
    IMG_ID=$("${DK[@]}" image inspect --format '{{.Id}}' "$2")
    use_identity "$1"
    expect_ok "$1 push ($2)" "${DK[@]}" push "$2"
    PUSHED_DIGEST=$(grep -o 'digest: sha256:[0-9a-f]*' "$RUN/last.out" | cut -d' ' -f2)
    [ -n "$PUSHED_DIGEST" ] || die "no digest in docker push's output: $(cat "$RUN/last.out")"
    log "pushed $2 = $PUSHED_DIGEST"
}
client_push_refused() { # who ref why
    "${DK[@]}" image inspect "$2" >/dev/null 2>&1 || import_image "$2" "$1-refused"
    use_identity "$1"
    expect_fail "$1 push ($2)" "${DK[@]}" push "$2"
    assert_contains "$(cat "$RUN/last.out")" "$(why_text "$3")" "docker's error for $1's push"
}
client_pull() { # who ref
    use_identity "$1"
    "${DK[@]}" rmi "$2" >/dev/null 2>&1 || true
    expect_ok "$1 pull ($2)" "${DK[@]}" pull "$2"
    assert_contains "$(cat "$RUN/last.out")" "Digest: $PUSHED_DIGEST" "digest pulled by $1"
    assert_eq "$IMG_ID" "$("${DK[@]}" image inspect --format '{{.Id}}' "$2")" "image id pulled by $1"
}
client_pull_refused() { # who ref why
    use_identity "$1"
    "${DK[@]}" rmi "$2" >/dev/null 2>&1 || true
    expect_fail "$1 pull ($2)" "${DK[@]}" pull "$2"
    assert_contains "$(cat "$RUN/last.out")" "$(why_text "$3")" "docker's error for $1's pull"
}

part_a
part_c
part_b

STOP=$(date +%s.%N)
pre_cleanup
kill -0 "$DPID" 2>/dev/null && die "dockerd did not stop in 15 s"
log "dockerd stopped in $(elapsed "$STOP")s"
LEFT=$(ps -e --no-headers -o comm | grep -E 'dockerd|containerd|shim|runc' || true)
[ -z "$LEFT" ] || die "left running after dockerd stopped: $LEFT"
log "inner part took $(elapsed "$INNER_START")s"
