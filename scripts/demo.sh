#!/usr/bin/env bash
# The gitca story on a throwaway CA, against a real Docker registry behind nginx on 127.0.0.1:
# create the CA, onboard three people and a bot through "pull requests", reconcile, install
# client certificates, push to the registry, offboard one person, and watch nginx refuse them —
# while the registry on its own would still let them in.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
if [ -n "${GITCA_BIN:-}" ]; then
  GITCA=$GITCA_BIN # the test suite runs the demo with the binary it built (tests/docs.rs)
else
  echo "== building gitca"
  cargo build --quiet
  GITCA="$PWD/target/debug/gitca"
fi
work=$(mktemp -d /tmp/gitca-demo.XXXXXX)
chmod 755 "$work" # nginx workers (nobody) traverse it
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
if [ -t 1 ]; then B=$'\033[1m'; N=$'\033[0m'; else B=; N=; fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }
gitc() { git -c user.name="${WHO:-demo}" -c user.email="${WHO:-demo}@example.com" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
# curl reads `--cert a:b` as certificate:password, and certs.d names hold a colon: run it inside.
as() { local who=$1; shift; (cd "$work/certs.d/$who/127.0.0.1:$p_nginx" &&
  curl -s --noproxy '*' --max-time 5 --cacert "$work/server.crt" --cert client.cert --key client.key "$@"); }
code() { as "$1" -o /dev/null -w '%{http_code}' "$2" || true; }

step "1. A custodian makes an age identity; the CA key is encrypted to it (CI gets it as a secret)"
run age-keygen -o custodian.agekey 2>/dev/null
recipient=$(age-keygen -y custodian.agekey)

step "2. gitca init: key, self-signed CA certificate, age-encrypted key, empty CRL, first commit"
run "$GITCA" init -C ca --name "Demo Registry CA" --organization "Demo Corp" --recipient "$recipient"
cd ca
run git log --oneline
run openssl x509 -in ca/ca.crt -noout -subject -ext basicConstraints,keyUsage

step "3. People and a bot onboard themselves: gitca request makes the key (outside the repo), the CSR and identities/NAME.yaml"
mkdir -p ../keys
for u in alice bob carol; do
  run "$GITCA" request "$u" --email "$u@example.com" --group push --key-out "../keys/$u.key" -q
done
run "$GITCA" request ci-builder --bot --key-out ../keys/ci-builder.key -q
run cat identities/alice.yaml
WHO=alice gitc add -A && WHO=alice gitc commit -qm "onboard alice, bob, carol and ci-builder"

step "4. The pull request's check job: check and plan, without the CA key"
run "$GITCA" check
run "$GITCA" plan --markdown

step "5. After the merge, CI reconciles with the age identity from its secret store"
export GITCA_IDENTITY="$(cat ../custodian.agekey)"
run "$GITCA" reconcile
run git log --oneline -2
run git show --stat --format=%B HEAD

step "6. Nothing changed: reconcile does nothing, needs no key, makes no commit"
GITCA_IDENTITY= run "$GITCA" reconcile

step "7. The server side: a registry on loopback behind nginx, configured by gitca export"
p_reg=$(free_port); p_nginx=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout ../server.key -out ../server.crt 2>/dev/null
mkdir -p ../srv/nginx/logs ../srv/nginx/tmp && chmod 1777 ../srv/nginx/tmp
cp ca/ca.crt ../srv/ca.crt && cp crl/ca.crl ../srv/ca.crl
run "$GITCA" export registry --behind-nginx --listen "127.0.0.1:$p_reg" --storage "$work/srv/data" > ../srv/registry.yml
run "$GITCA" export nginx --standalone "$work/srv/nginx" --listen "127.0.0.1:$p_nginx" --server-name 127.0.0.1 \
  --upstream "127.0.0.1:$p_reg" --tls-cert "$work/server.crt" --tls-key "$work/server.key" \
  --client-ca "$work/srv/ca.crt" --crl "$work/srv/ca.crl" > ../srv/nginx/nginx.conf
grep -E 'ssl_(verify_client|client_certificate|crl) ' ../srv/nginx/nginx.conf
docker-registry serve ../srv/registry.yml > ../srv/registry.log 2>&1 & pids+=($!)
nginx -p "$work/srv/nginx/" -c "$work/srv/nginx/nginx.conf" -e "$work/srv/nginx/logs/error.log" & pids+=($!)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$p_nginx") 2>/dev/null && break; sleep 0.1; done
cd "$work"
URL="https://127.0.0.1:$p_nginx"

step "8. Each person installs their files in Docker's certs.d layout (client cert first)"
for u in alice bob; do
  run "$GITCA" -C ca bundle "$u" --key "keys/$u.key" --out-dir "certs.d/$u/127.0.0.1:$p_nginx" -q
done
run ls -l "certs.d/alice/127.0.0.1:$p_nginx"
echo "alice GET /v2/ -> $(code alice "$URL/v2/")"
echo "bob   GET /v2/ -> $(code bob "$URL/v2/")"
echo "no certificate -> $(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --cacert server.crt "$URL/v2/")  (nginx: \"No required SSL certificate was sent\")"
printf 'hello from the gitca demo\n' > layer
digest="sha256:$(sha256sum layer | cut -d' ' -f1)"
loc=$(as alice -X POST -D - -o /dev/null "$URL/v2/demo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
case "$loc" in http*) ;; *) loc="$URL$loc";; esac
case "$loc" in *\?*) sep='&';; *) sep='?';; esac
echo "alice pushes a blob -> $(as alice -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$work/layer" "$loc${sep}digest=$digest")"
echo "alice reads it back: $(as alice "$URL/v2/demo/blobs/$digest")"

step "9. Offboarding bob is deleting his entry in a pull request"
cd ca
run git rm -q identities/bob.yaml csr/bob.csr
run git diff --cached --stat
WHO=lead gitc commit -qm "offboard bob"
run "$GITCA" plan
run "$GITCA" reconcile -q
run "$GITCA" status

step "10. CI publishes; the server's gitca deploy crl installs the CRL its pinned CA signed and reloads nginx: bob is out, alice is not"
run "$GITCA" publish ../public
run "$GITCA" deploy crl --from ../public --ca ../srv/ca.crt --out ../srv/ca.crl \
  --reload "nginx -p $work/srv/nginx/ -c $work/srv/nginx/nginx.conf -e $work/srv/nginx/logs/error.log -s reload"
sleep 0.7
cd "$work"
echo "alice GET /v2/ -> $(code alice "$URL/v2/")"
echo "bob   GET /v2/ -> $(code bob "$URL/v2/")  (nginx: \"The SSL certificate error\")"
run "$GITCA" -C ca doctor --certs-dir "certs.d/bob/127.0.0.1:$p_nginx" || true
run openssl verify -crl_check -CAfile ca/ca/ca.crt -CRLfile ca/crl/ca.crl certs.d/bob/*/client.cert || true

echo
echo "The registry alone (http.tls.clientcas) never reads a CRL: bob would still get 200 there,"
echo "which is why nginx (gitca export nginx) must sit in front. Demo complete; cleaning up."
