#!/usr/bin/env bash
# skopeo through nginx (client certificates + CRL, configured by `gitca export`) to
# docker-registry, all on 127.0.0.1. Run by tests/clients_e2e.rs; see common.sh for the
# environment. skopeo's cert dirs are the flat `gitca bundle --out-dir` / `gitca deploy cert
# --out-dir` directories: *.crt = CAs for the server, client.cert + client.key = the client pair.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
trap cleanup EXIT
trap 'exit 143' TERM
START=$(date +%s.%N)
need_tools skopeo

# Hermetic skopeo: own policy and registries.conf, temp files under $RUN.
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$RUN/policy.json"
printf 'unqualified-search-registries = []\n' >"$RUN/registries.conf"
export CONTAINERS_REGISTRIES_CONF=$RUN/registries.conf
SK=(skopeo --policy "$RUN/policy.json" --tmpdir "$RUN" --registries-conf "$RUN/registries.conf")
CI_DIR=$W/clients/ci

certdir() {
    case $1 in
        alice) echo "$CERTS_ALICE" ;;
        bob) echo "$CERTS_BOB" ;;
        ci) echo "$CI_DIR" ;;
    esac
}
# skopeo silently ignores a cert dir that does not exist: make sure it does.
check_dir() { [ -f "$1/client.cert" ] && [ -f "$1/client.key" ] || die "no client.cert/client.key in $1"; }

LOCAL_DIGEST=
client_push() { # who ref
    local oci=$RUN/oci-$1
    [ -d "$oci" ] || LOCAL_DIGEST=$(make_oci_layout "$oci" v1 "$2" "$1")
    check_dir "$(certdir "$1")"
    expect_ok "$1 push ($2)" "${SK[@]}" copy --dest-cert-dir "$(certdir "$1")" "oci:$oci:v1" "docker://$2"
    local remote
    remote=$("${SK[@]}" inspect --cert-dir "$(certdir "$1")" --format '{{.Digest}}' "docker://$2")
    assert_eq "$LOCAL_DIGEST" "$remote" "pushed manifest digest (skopeo inspect)"
    PUSHED_DIGEST=$LOCAL_DIGEST
}
# skopeo's words for nginx's refusals
why_text() { case $1 in forbidden) echo "StatusCode: 403" ;; revoked) echo "400 (Bad Request)" ;; esac; }
client_push_refused() { # who ref why
    local oci=$RUN/oci-$1-refused
    [ -d "$oci" ] || make_oci_layout "$oci" v1 "$2" "$1" >/dev/null
    check_dir "$(certdir "$1")"
    expect_fail "$1 push ($2)" "${SK[@]}" copy --dest-cert-dir "$(certdir "$1")" "oci:$oci:v1" "docker://$2"
    assert_contains "$(cat "$RUN/last.out")" "$(why_text "$3")" "skopeo's error for $1's push"
}
N=0
client_pull() { # who ref
    N=$((N + 1))
    local out=$RUN/pulled-$1-$N
    check_dir "$(certdir "$1")"
    expect_ok "$1 pull ($2)" "${SK[@]}" copy --src-cert-dir "$(certdir "$1")" "docker://$2" "oci:$out:v1"
    local got
    got=$(grep -o '"digest":"sha256:[0-9a-f]*"' "$out/index.json" | cut -d'"' -f4)
    assert_eq "$PUSHED_DIGEST" "$got" "manifest digest pulled by $1"
}
client_pull_refused() { # who ref why
    N=$((N + 1))
    check_dir "$(certdir "$1")"
    expect_fail "$1 pull ($2)" "${SK[@]}" copy --src-cert-dir "$(certdir "$1")" "docker://$2" "oci:$RUN/refused-$N:v1"
    assert_contains "$(cat "$RUN/last.out")" "$(why_text "$3")" "skopeo's error for $1's pull"
}
ci_deploy() { # now tree -> prints the cert dir
    expect_ok "bot: gitca deploy cert ci --out-dir (now $1)" \
        "$GITCA" --now "$1" deploy cert ci --key "$KEY_CI" --from "$2" --ca "$PINNED_CA" \
        --out-dir "$CI_DIR"
    log "  $(cat "$RUN/last.out")"
    echo "$CI_DIR"
}

registry_start
nginx_start

part_a
part_c
part_b

log "skopeo: all assertions passed in $(elapsed "$START")s"
echo "PASS skopeo"
