# tests/clients/common.sh — shared part of the real-client end-to-end scripts (skopeo.sh,
# containerd.sh, docker.sh), driven by tests/clients_e2e.rs. Source it from a bash script
# running with `set -euo pipefail`.
#
# All client PKI comes from gitca: the Rust test made the CA, the identities (alice: group push,
# bob: group pull, ci: a bot in group push), their bundles (`gitca bundle`), the published trees
# (`gitca publish`) at three moments of the CA's life, and the server's nginx.conf and registry
# config (`gitca export`). These scripts only run the daemons and the clients, and do the
# server's and the bot's side with `gitca deploy crl` / `gitca deploy cert`.
#
# Environment (set by tests/clients_e2e.rs; every path absolute):
#   GITCA            the gitca binary
#   W                the test's work directory (chmod 755; nginx workers run as nobody). These
#                    scripts write only under $W/run (and the directories named below); the
#                    Rust test removes $W.
#   PINNED_CA        the gitca CA certificate the server (and the bot) trust: the pin. The
#                    registry's own TLS certificate comes from the same CA (a `servers:` entry),
#                    so every client verifies the server with the ca.crt gitca installed beside
#                    its client certificate: no --server-ca anywhere
#   SERVER_CRL       the CRL file nginx reads (`ssl_crl`), written by `gitca deploy crl`
#   NGINX_PREFIX     nginx's prefix: nginx.conf (from `gitca export nginx --standalone`), logs/, tmp/
#   REGISTRY_CONF    docker-registry's config (from `gitca export registry --behind-nginx`)
#   REGISTRY_ADDR    where that registry listens (127.0.0.1:PORT)
#   REGISTRY         HOST:PORT the clients use (nginx's --listen)
#   PUB_INITIAL      `gitca publish` tree: everyone valid, CRL current (day 19 after issuance)
#   PUB_RENEWED      `gitca publish` tree after the day-21 reconcile renewed the bot's certificate
#   PUB_OFFBOARDED   `gitca publish` tree after alice's entry was deleted and reconcile revoked her
#   NOW_INSTALL      simulated time (RFC 3339) of the bot's first `gitca deploy cert`
#   NOW_RENEW        simulated time of the bot's `gitca deploy cert` after the renewal
#   KEY_CI           the bot's private key
#   CERTS_ALICE, CERTS_BOB   alice's and bob's files from `gitca bundle` (layout per client)
#
# Results for the Rust side: $W/run/ci-serial-before and $W/run/ci-serial-after (the serial of
# the bot's installed client.cert before and after the renewal), and the line "PASS <client>".

log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

for v in GITCA W PINNED_CA SERVER_CRL NGINX_PREFIX REGISTRY_CONF REGISTRY_ADDR REGISTRY \
    PUB_INITIAL PUB_RENEWED PUB_OFFBOARDED NOW_INSTALL NOW_RENEW KEY_CI CERTS_ALICE CERTS_BOB; do
    [ -n "${!v:-}" ] || die "environment variable $v is not set (run through tests/clients_e2e.rs)"
done
# A missing tool fails the test, it never skips it.
need_tools() {
    local t
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || die "required tool '$t' is not installed (scripts/install-deps.sh)"; done
}
need_tools nginx docker-registry curl openssl tar gzip sha256sum pgrep

RUN=$W/run
mkdir -p "$RUN"
# pids to stop at cleanup — pids of *this* pid namespace only (docker.sh's inner half keeps its own)
PIDS=${PIDS:-$RUN/pids}
: >>"$PIDS"

assert_eq() { # expected actual what
    if [ "$1" != "$2" ]; then die "$3: expected '$1', got '$2'"; fi
    log "ok: $3 = $2"
}
assert_contains() { # text needle what
    if ! grep -qF -- "$2" <<<"$1"; then die "$3: '$2' not found in: $1"; fi
    log "ok: $3 (contains '$2')"
}
assert_not_contains() { # text needle what
    if grep -qF -- "$2" <<<"$1"; then die "$3: '$2' must not appear in: $1"; fi
    log "ok: $3 (no '$2')"
}

# Run a command that must succeed / fail; combined output in $RUN/last.out.
expect_ok() {
    local what=$1; shift
    if ! "$@" >"$RUN/last.out" 2>&1; then
        cat "$RUN/last.out" >&2
        die "$what: command failed: $*"
    fi
    log "ok: $what"
}
expect_fail() {
    local what=$1 rc=0; shift
    "$@" >"$RUN/last.out" 2>&1 || rc=$?
    if [ $rc = 0 ]; then
        cat "$RUN/last.out" >&2
        die "$what: command succeeded but must fail: $*"
    fi
    log "ok: $what failed as expected (exit $rc): $(grep -v '^\s*$' "$RUN/last.out" | tail -1 | cut -c1-300)"
}

# Wait until a TCP port accepts connections.
wait_port() { # host port [seconds]
    local i
    for i in $(seq 1 $(( ${3:-10} * 20 ))); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    die "nothing listens on $1:$2"
}

# Start a background process, remember its pid for cleanup; prints the pid.
spawn() { # logfile cmd...
    local out=$1; shift
    "$@" >"$out" 2>&1 &
    echo $! >>"$PIDS"
    echo $!
}

# Kill what this script started, by pid (nginx's master with QUIT so that it stops its workers).
cleanup() {
    local rc=$?
    set +e
    if declare -F pre_cleanup >/dev/null; then pre_cleanup; fi
    if [ "${NGINX_STARTED:-0}" = 1 ] && [ -s "$NGINX_PREFIX/nginx.pid" ]; then
        kill -QUIT "$(cat "$NGINX_PREFIX/nginx.pid")" 2>/dev/null
    fi
    if [ -s "$PIDS" ]; then
        tac "$PIDS" | while read -r pid; do kill -TERM "$pid" 2>/dev/null; done
        local alive
        for _ in $(seq 1 100); do
            alive=0
            while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$PIDS"
            [ $alive = 0 ] && break
            sleep 0.1
        done
        while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$PIDS"
    fi
    exit $rc
}

elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

# ---------------------------------------------------------------- server: registry + nginx
NGINX_ARGS=(-p "$NGINX_PREFIX/" -c "$NGINX_PREFIX/nginx.conf" -e "$NGINX_PREFIX/logs/error.log")
# The reload hook `gitca deploy crl --reload` runs (through sh): test the new CRL, then reload.
NGINX_RELOAD="nginx -t -q ${NGINX_ARGS[*]} && nginx ${NGINX_ARGS[*]} -s reload"

registry_start() {
    spawn "$RUN/registry.log" docker-registry serve "$REGISTRY_CONF" >/dev/null
    wait_port "${REGISTRY_ADDR%:*}" "${REGISTRY_ADDR##*:}"
    log "docker-registry on http://$REGISTRY_ADDR"
}

# The server's first CRL, then nginx with the configuration `gitca export nginx` wrote.
nginx_start() {
    expect_ok "server: gitca deploy crl (initial)" \
        "$GITCA" deploy crl --from "$PUB_INITIAL" --ca "$PINNED_CA" --out "$SERVER_CRL"
    log "  $(cat "$RUN/last.out")"
    nginx -t "${NGINX_ARGS[@]}" >"$RUN/nginx-t.log" 2>&1 || { cat "$RUN/nginx-t.log" >&2; die "nginx -t"; }
    spawn "$RUN/nginx.out" nginx "${NGINX_ARGS[@]}" >/dev/null
    NGINX_STARTED=1
    wait_port "${REGISTRY%:*}" "${REGISTRY##*:}"
    log "nginx on https://$REGISTRY -> http://$REGISTRY_ADDR"
}

nginx_workers() { pgrep -P "$(cat "$NGINX_PREFIX/nginx.pid")" | sort | tr '\n' ' '; }

# `gitca deploy crl` with the reload hook; nginx's reload is asynchronous: wait until the master
# has replaced its workers.
deploy_crl_and_reload() { # published-tree
    local before now
    before=$(nginx_workers)
    expect_ok "server: gitca deploy crl --reload" \
        "$GITCA" deploy crl --from "$1" --ca "$PINNED_CA" --out "$SERVER_CRL" --reload "$NGINX_RELOAD"
    log "  $(tr '\n' ' ' <"$RUN/last.out")"
    assert_contains "$(cat "$RUN/last.out")" "installed CRL" "deploy crl installed a new CRL"
    # done when the master has a new worker and none of the old ones (an old worker still
    # accepts connections, with the old CRL, until it has seen the signal)
    local done=0 p
    for _ in $(seq 1 200); do
        now=$(nginx_workers)
        if [ -n "$now" ] && [ "$now" != "$before" ]; then
            done=1
            for p in $before; do
                case " $now " in *" $p "*) done=0 ;; esac
            done
        fi
        [ $done = 1 ] && break
        sleep 0.05
    done
    [ $done = 1 ] || die "nginx did not replace its workers after the reload (before: $before, now: $now)"
    log "nginx reloaded (workers $before-> $now)"
}

# curl through nginx with the files of a cert dir (client.cert, client.key, ca.crt: the gitca CA,
# which issued the server's certificate too).
# Prints the HTTP status (000: no HTTP answer).
curl_code() { # certdir method path
    local code cert=$1/client.cert
    # curl reads --cert as FILE[:PASSWORD]: escape the colon of a HOST:PORT directory
    cert=${cert//:/\\:}
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --noproxy '*' \
        --cacert "$1/ca.crt" --cert "$cert" --key "$1/client.key" \
        -X "$2" "https://$REGISTRY$3" 2>"$RUN/curl.err") || true
    [ "$code" != 000 ] || log "curl $2 $3 with $1: $(cat "$RUN/curl.err")"
    echo "$code"
}

# The v2 API's first step of every push: open a blob upload.
upload_code() { curl_code "$1" POST /v2/test/hello/blobs/uploads/; }

# The serial of a certificate file (first certificate), lower-case hex.
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

# The serial a published tree (index.json) lists for NAME.
published_serial() { # tree name
    tr -d ' \n' <"$1/index.json" | grep -o "\"$2\":{[^}]*}" | grep -o '"serial":"[0-9a-f]*"' | cut -d'"' -f4
}

# ---------------------------------------------------------------- images, offline
make_rootfs_tar() { # out.tar [text]
    local d=$RUN/rootfs.$$.$RANDOM
    mkdir -p "$d"
    echo "${2:-hello} from the gitca client test $(date +%s%N)" >"$d/hello.txt"
    tar -C "$d" --owner=0 --group=0 --numeric-owner -cf "$1" hello.txt
    rm -rf "$d"
}

# A complete OCI image layout made with tar/gzip/sha256sum only (no network, no daemon).
# index.json carries the OCI ref name (skopeo `oci:DIR:TAG`) and io.containerd.image.name
# (`ctr images import`). Prints the manifest digest.
make_oci_layout() { # dir tag full-image-name [text]
    local d=$1 tag=$2 name=$3 tmp=$RUN/ocibuild.$$.$RANDOM
    mkdir -p "$d/blobs/sha256" "$tmp"
    make_rootfs_tar "$tmp/layer.tar" "${4:-hello}"
    local diffid ld ls cd cs md ms
    diffid=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
    gzip -n -c "$tmp/layer.tar" >"$tmp/layer.tar.gz"
    ld=$(sha256sum "$tmp/layer.tar.gz" | cut -d' ' -f1); ls=$(stat -c %s "$tmp/layer.tar.gz")
    cp "$tmp/layer.tar.gz" "$d/blobs/sha256/$ld"
    printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello.txt"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$diffid" >"$tmp/config.json"
    cd=$(sha256sum "$tmp/config.json" | cut -d' ' -f1); cs=$(stat -c %s "$tmp/config.json")
    cp "$tmp/config.json" "$d/blobs/sha256/$cd"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
        "$cd" "$cs" "$ld" "$ls" >"$tmp/manifest.json"
    md=$(sha256sum "$tmp/manifest.json" | cut -d' ' -f1); ms=$(stat -c %s "$tmp/manifest.json")
    cp "$tmp/manifest.json" "$d/blobs/sha256/$md"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s","io.containerd.image.name":"%s"}}]}' \
        "$md" "$ms" "$tag" "$name" >"$d/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
    rm -rf "$tmp"
    echo "sha256:$md"
}

# ---------------------------------------------------------------- the shared story
# The three parts every client script runs, with client-specific hooks:
#   client_push WHO IMAGE-REF      push (WHO: alice); the script builds the image
#   client_pull WHO IMAGE-REF      pull (WHO: alice, bob, ci); checks the digest alice pushed
#   client_push_refused WHO IMAGE-REF WHY   a push that must fail; WHY: forbidden (nginx's 403
#                                  to a pull-only identity) or revoked (nginx's 400)
#   client_pull_refused WHO IMAGE-REF WHY   a pull that must fail (WHY: revoked)
#   ci_deploy NOW TREE             `gitca deploy cert` of the bot into the client's location;
#                                  prints the directory holding its client.cert
#   certdir WHO                    a directory with WHO's client.cert, client.key, ca.crt

# a) the registry rights of gitca.yaml `registry:`: alice (push) pushes and pulls, bob (pull)
#    pulls; bob's push is refused with 403 by nginx before it reaches the registry.
part_a() {
    log "== a) alice (push group) pushes and pulls; bob (pull group) pulls, his push is refused"
    assert_eq 202 "$(upload_code "$(certdir alice)")" "curl POST upload as alice"
    assert_eq 403 "$(upload_code "$(certdir bob)")" "curl POST upload as bob"
    assert_eq 200 "$(curl_code "$(certdir bob)" GET /v2/)" "curl GET /v2/ as bob"
    client_push alice "$REGISTRY/test/hello:v1"
    client_pull alice "$REGISTRY/test/hello:v1"
    client_pull bob "$REGISTRY/test/hello:v1"
    client_push_refused bob "$REGISTRY/test/bob:v1" forbidden
    assert_eq 404 "$(curl_code "$(certdir alice)" GET /v2/test/bob/manifests/v1)" "bob's image is not in the registry"
    assert_contains "$(cat "$NGINX_PREFIX/logs/access.log")" '"POST /v2/test/bob/blobs/uploads/ HTTP/1.1" 403' \
        "nginx refused bob's upload (access.log)"
}

# c) the bot: its certificate installed with `gitca deploy cert`; after the day-21 renewal was
#    published, `gitca deploy cert` installs the new one and the client keeps pulling.
part_c() {
    log "== c) the bot ci: gitca deploy cert, renewal on day 21, gitca deploy cert again"
    local dir before after expected old_pub
    dir=$(ci_deploy "$NOW_INSTALL" "$PUB_INITIAL")
    assert_contains "$(cat "$RUN/last.out")" "installed certificate" "deploy cert installed ci's certificate"
    before=$(serial_of "$dir/client.cert")
    old_pub=$(published_serial "$PUB_INITIAL" ci)
    assert_eq "$old_pub" "$before" "ci's installed serial (initial) = the published one"
    echo "$before" >"$RUN/ci-serial-before"
    client_pull ci "$REGISTRY/test/hello:v1"
    dir=$(ci_deploy "$NOW_RENEW" "$PUB_RENEWED")
    assert_contains "$(cat "$RUN/last.out")" "installed certificate" "deploy cert installed ci's renewed certificate"
    after=$(serial_of "$dir/client.cert")
    expected=$(published_serial "$PUB_RENEWED" ci)
    assert_eq "$expected" "$after" "ci's installed serial (renewed) = the published one"
    [ "$after" != "$before" ] || die "the renewed certificate has the old serial $before"
    log "ok: ci's serial changed: $before -> $after"
    echo "$after" >"$RUN/ci-serial-after"
    # a second run finds nothing newer
    dir=$(ci_deploy "$NOW_RENEW" "$PUB_RENEWED")
    assert_contains "$(cat "$RUN/last.out")" "nothing newer" "deploy cert again: nothing newer"
    assert_eq 200 "$(curl_code "$dir" GET /v2/)" "curl GET /v2/ with ci's renewed certificate"
    client_pull ci "$REGISTRY/test/hello:v1"
}

# b) offboarding: the tree published after alice's entry was deleted is installed on the server
#    with `gitca deploy crl --reload`; alice is refused (push and pull), bob and ci still pull.
part_b() {
    log "== b) alice offboarded: gitca deploy crl --reload on the server"
    assert_eq 200 "$(curl_code "$(certdir alice)" GET /v2/)" "curl as alice before the new CRL"
    deploy_crl_and_reload "$PUB_OFFBOARDED"
    assert_eq 400 "$(curl_code "$(certdir alice)" GET /v2/)" "curl as alice after the new CRL"
    assert_eq 400 "$(upload_code "$(certdir alice)")" "curl POST upload as alice after the new CRL"
    client_pull_refused alice "$REGISTRY/test/hello:v1" revoked
    client_push_refused alice "$REGISTRY/test/hello:v2" revoked
    assert_contains "$(cat "$NGINX_PREFIX/logs/error.log")" "client SSL certificate verify error: (23:certificate revoked)" \
        "nginx error.log names the revocation"
    assert_eq 200 "$(curl_code "$(certdir bob)" GET /v2/)" "curl as bob after alice's revocation"
    client_pull bob "$REGISTRY/test/hello:v1"
    client_pull ci "$REGISTRY/test/hello:v1"
}
