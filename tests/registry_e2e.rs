//! The deployment gitca exists for, end to end with the real programs on 127.0.0.1: a Docker
//! registry behind nginx, configured by `gitca export`, clients onboarded with `gitca request`
//! and installed with `gitca bundle`; offboarding takes effect through nginx's CRL check — and
//! the registry's own TLS, which never checks a CRL, still lets the revoked client in.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::daemons::*;
use common::*;

/// A client's files: client.cert, client.key (as `gitca bundle` writes them) and the server's CA.
struct Client<'a> {
    dir: PathBuf,
    server_ca: &'a Path,
}

impl Client<'_> {
    fn curl(&self, args: &[&str]) -> (i32, String) {
        let mut c = Command::new("curl");
        c.args([
            "-sS",
            "--max-time",
            "10",
            "--noproxy",
            "*",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ]);
        c.arg(self.server_ca);
        if self.dir.join("client.cert").exists() {
            c.arg("--cert")
                .arg(self.dir.join("client.cert"))
                .arg("--key")
                .arg(self.dir.join("client.key"));
        }
        c.args(args);
        let o = c.output().unwrap();
        let text = stdout(&o);
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "000"));
        (
            code.trim().parse().unwrap_or(0),
            body.to_string() + &stderr(&o),
        )
    }

    fn get(&self, url: &str) -> (i32, String) {
        self.curl(&[url])
    }
}

/// Pushes a blob through the v2 API (POST an upload, PUT it with its digest) and reads it back;
/// returns its digest.
fn push_and_read_blob(c: &Client<'_>, base: &str) -> String {
    use sha2::Digest;
    let data = format!("hello from gitca e2e {}\n", now_rfc3339());
    let file = c.dir.join("layer");
    std::fs::write(&file, &data).unwrap();
    let digest = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(data.as_bytes()))
    );
    let (code, headers) = c.curl(&[
        "-X",
        "POST",
        "-D",
        "-",
        &format!("{base}/v2/test/blobs/uploads/"),
    ]);
    assert_eq!(code, 202, "POST upload: {headers}");
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .expect("Location header")
        .trim()
        .to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = format!("{location}{sep}digest={digest}");
    let body = format!("@{}", file.display());
    let (code, out) = c.curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &body,
        &put,
    ]);
    assert_eq!(code, 201, "PUT blob: {out}");
    let (code, out) = c.get(&format!("{base}/v2/test/blobs/{digest}"));
    assert_eq!(code, 200, "GET blob: {out}");
    assert_eq!(out, data, "the blob reads back");
    digest
}

#[test]
fn registry_behind_nginx_enforces_revocation_and_the_registry_alone_does_not() {
    for t in ["nginx", "docker-registry", "curl", "openssl"] {
        require(t);
    }
    let ca = Ca::new();
    let now = now_rfc3339();
    let tmp = ca.tmp.path().to_path_buf();
    // nginx workers run as nobody: they must be able to traverse to their temp directory.
    traversable(&tmp);

    // Onboarding: each person runs gitca request; the PR is merged; CI reconciles.
    for name in ["alice", "bob"] {
        let key = ca.keys.join(format!("{name}.key"));
        ok(run(ca
            .cmd(&now)
            .args([
                "request",
                name,
                "--email",
                &format!("{name}@example.com"),
                "--key-out",
            ])
            .arg(&key)));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "keys are private");
    }
    ca.commit("onboard alice and bob");
    ok(ca.reconcile(&now));
    let clients: Vec<PathBuf> = ["alice", "bob"]
        .iter()
        .map(|name| {
            let dir = tmp.join(format!("{name}-certs.d"));
            ok(run(ca
                .cmd(&now)
                .args(["bundle", name, "--key"])
                .arg(ca.keys.join(format!("{name}.key")))
                .arg("--out-dir")
                .arg(&dir)));
            dir
        })
        .collect();

    // Deploy the CA and CRL where the servers read them.
    let deployed_ca = tmp.join("deployed-ca.crt");
    let deployed_crl = tmp.join("deployed-crl.pem");
    std::fs::copy(ca.path("ca/ca.crt"), &deployed_ca).unwrap();
    std::fs::copy(ca.path("crl/ca.crl"), &deployed_crl).unwrap();
    let stack = start_stack(&ca, &now, &tmp, &deployed_ca, &deployed_crl);
    let (via_nginx, via_registry, server_ca) =
        (&stack.via_nginx, &stack.via_registry, &stack.server_ca);
    let alice = Client {
        dir: clients[0].clone(),
        server_ca,
    };
    let bob = Client {
        dir: clients[1].clone(),
        server_ca,
    };

    // Both get in; alice pushes a blob and reads it back.
    assert_eq!(alice.get(&format!("{via_nginx}/v2/")).0, 200);
    assert_eq!(bob.get(&format!("{via_nginx}/v2/")).0, 200);
    let digest = push_and_read_blob(&alice, via_nginx);
    // The default export keeps deletion off: even a pusher cannot erase what others pull.
    let (code, body) = alice.curl(&[
        "-X",
        "DELETE",
        &format!("{via_nginx}/v2/test/blobs/{digest}"),
    ]);
    assert_eq!(code, 405, "DELETE with deletion disabled: {body}");
    assert_eq!(
        alice.get(&format!("{via_nginx}/v2/test/blobs/{digest}")).0,
        200
    );
    // The registry exported with --allow-delete deletes.
    let digest = push_and_read_blob(&alice, via_registry);
    let (code, body) = alice.curl(&[
        "-X",
        "DELETE",
        &format!("{via_registry}/v2/test/blobs/{digest}"),
    ]);
    assert_eq!(code, 202, "DELETE with --allow-delete: {body}");
    assert_eq!(
        alice
            .get(&format!("{via_registry}/v2/test/blobs/{digest}"))
            .0,
        404
    );

    // No client certificate, and a certificate from another CA: refused.
    let nobody_dir = tmp.join("nobody");
    std::fs::create_dir_all(&nobody_dir).unwrap();
    let nobody = Client {
        dir: nobody_dir,
        server_ca,
    };
    let (code, body) = nobody.get(&format!("{via_nginx}/v2/"));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("No required SSL certificate was sent"),
        "{body}"
    );
    let other = Ca::new();
    let mallory_key = other.p256_csr("mallory");
    other.identities("users:\n  - name: mallory\n");
    other.commit("mallory");
    ok(other.reconcile(&now));
    let mallory_dir = tmp.join("mallory-certs.d");
    ok(run(other
        .cmd(&now)
        .args(["bundle", "mallory", "--key"])
        .arg(&mallory_key)
        .arg("--out-dir")
        .arg(&mallory_dir)));
    let mallory = Client {
        dir: mallory_dir,
        server_ca,
    };
    let (code, body) = mallory.get(&format!("{via_nginx}/v2/"));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("SSL certificate error"), "{body}");

    // Offboard bob: delete his entry, reconcile, deploy the CRL, reload nginx.
    ca.offboard("bob");
    ca.commit("offboard bob");
    let o = ok(ca.reconcile(&now_rfc3339()));
    assert!(stdout(&o).contains("identity-removed"), "{}", stdout(&o));
    std::fs::copy(ca.path("crl/ca.crl"), &deployed_crl).unwrap();
    stack.reload();

    let (code, body) = bob.get(&format!("{via_nginx}/v2/"));
    assert_eq!(code, 400, "bob is refused through nginx: {body}");
    assert_eq!(
        alice.get(&format!("{via_nginx}/v2/")).0,
        200,
        "alice still gets in"
    );
    let o = run(gitca()
        .arg("-C")
        .arg(&ca.root)
        .args(["doctor", "--cert"])
        .arg(bob.dir.join("client.cert"))
        .arg("--key")
        .arg(bob.dir.join("client.key")));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("revoked on") && stdout(&o).contains("cessation"),
        "{}",
        stdout(&o)
    );

    // The registry's own TLS never reads a CRL: bob still gets in there. This is why the
    // nginx front is needed.
    assert_eq!(
        bob.get(&format!("{via_registry}/v2/")).0,
        200,
        "the registry alone accepts revoked bob"
    );
    assert_eq!(
        nobody.get(&format!("{via_registry}/v2/")).0,
        0,
        "without a certificate the registry's TLS aborts the handshake"
    );
}

/// The deployment under test: a registry behind nginx (configured by `gitca export`), and a
/// second registry with its own TLS client verification (Go's verifier, no CRL).
struct Stack {
    _servers: Vec<Server>,
    via_nginx: String,
    via_registry: String,
    server_ca: PathBuf,
    prefix: PathBuf,
    conf: PathBuf,
}

impl Stack {
    /// `nginx -s reload`, and a moment for the workers to restart.
    fn reload(&self) {
        ok(Command::new("nginx")
            .args(nginx_args(&self.prefix, &self.conf, &["-s", "reload"]))
            .output()
            .unwrap());
        std::thread::sleep(Duration::from_millis(700));
    }
}

/// Starts the stack for `ca`: the servers trust `deployed_ca` and nginx reads `deployed_crl`.
fn start_stack(ca: &Ca, now: &str, tmp: &Path, deployed_ca: &Path, deployed_crl: &Path) -> Stack {
    let now = now.to_string();
    // The server's own TLS certificate, from an unrelated throwaway CA.
    let (server_ca, server_key) = server_tls(tmp);

    let (p_plain, p_nginx, p_tls) = (free_port(), free_port(), free_port());
    let export = |args: &[&str]| stdout(&ok(run(ca.cmd(&now).arg("export").args(args))));
    let plain = tmp.join("registry-plain.yml");
    std::fs::write(
        &plain,
        export_registry_behind_nginx(
            ca.cmd(&now),
            &format!("127.0.0.1:{p_plain}"),
            &tmp.join("data-plain"),
        ),
    )
    .unwrap();
    let own_tls = tmp.join("registry-tls.yml");
    // The registry with its own TLS; `flags` right after `registry`.
    let registry_tls = |flags: &[&str]| {
        let (listen, storage) = (format!("127.0.0.1:{p_tls}"), tmp.join("data-tls"));
        let rest = [
            "--listen",
            &listen,
            "--storage",
            storage.to_str().unwrap(),
            "--tls-cert",
            server_ca.to_str().unwrap(),
            "--tls-key",
            server_key.to_str().unwrap(),
            "--client-ca",
            deployed_ca.to_str().unwrap(),
        ];
        export(&[&["registry"][..], flags, &rest].concat())
    };
    let reg_tls = registry_tls(&[]);
    assert!(
        reg_tls.contains("NEVER CHECKS REVOCATION"),
        "the registry export warns"
    );
    // Deleting images is off unless asked for; this registry asks (see the DELETE below).
    assert!(reg_tls.contains("delete:\n    enabled: false"), "{reg_tls}");
    let reg_tls = registry_tls(&["--allow-delete"]);
    std::fs::write(&own_tls, reg_tls).unwrap();
    let prefix = tmp.join("nginx");
    nginx_prefix(&prefix);
    let conf = prefix.join("nginx.conf");
    let site = NginxSite {
        prefix: &prefix,
        listen: &format!("127.0.0.1:{p_nginx}"),
        server_name: "127.0.0.1",
        upstream: &format!("127.0.0.1:{p_plain}"),
        tls_cert: &server_ca,
        tls_key: &server_key,
        client_ca: deployed_ca,
        crl: deployed_crl,
    };
    let nginx_conf = site.export(ca.cmd(&now), &[]);
    for needle in [
        "ssl_verify_client       on;",
        "ssl_crl",
        "nginx -s reload",
        "EXPIRED CRL LOCKS EVERY CLIENT OUT",
    ] {
        assert!(nginx_conf.contains(needle), "{needle}");
    }
    std::fs::write(&conf, nginx_conf).unwrap();

    let _registry = Server::listening(
        "docker-registry (plain)",
        Command::new("docker-registry").arg("serve").arg(&plain),
        p_plain,
        &tmp.join("registry-plain.log"),
    );
    let _registry_tls = Server::listening(
        "docker-registry (own TLS)",
        Command::new("docker-registry").arg("serve").arg(&own_tls),
        p_tls,
        &tmp.join("registry-tls.log"),
    );
    let nginx_args = |extra: &[&str]| nginx_args(&prefix, &conf, extra);
    let _nginx = Server::listening(
        "nginx",
        Command::new("nginx").args(nginx_args(&[])),
        p_nginx,
        &tmp.join("nginx.out"),
    );

    Stack {
        _servers: vec![_registry, _registry_tls, _nginx],
        via_nginx: format!("https://127.0.0.1:{p_nginx}"),
        via_registry: format!("https://127.0.0.1:{p_tls}"),
        server_ca,
        prefix,
        conf,
    }
}

/// Issue 14, the compromise drill, end to end: a CA with an offline root, nginx trusting the
/// root with both CRLs (as `gitca deploy crl` installs them), the registry's own TLS (Go's
/// verifier, which checks extended key usages up the chain). The custodians revoke the
/// intermediate CI held; after reconcile and deploy, a certificate from the old intermediate
/// is refused and every re-issued one is admitted.
#[test]
fn the_compromise_drill_with_an_offline_root() {
    for t in ["nginx", "docker-registry", "curl", "openssl"] {
        require(t);
    }
    let now = now_rfc3339();
    let (ca, custodian) = offline_root_ca(&now);
    let tmp = ca.tmp.path().to_path_buf();
    traversable(&tmp);
    for (name, bot) in [("alice", false), ("builder", true)] {
        let mut c = ca.cmd(&now);
        c.args(["request", name, "--key-out"])
            .arg(ca.keys.join(format!("{name}.key")));
        if bot {
            c.arg("--bot");
        }
        ok(run(&mut c));
    }
    ca.commit("onboard");
    ok(ca.reconcile(&now));
    let bundle = |name: &str| {
        let dir = tmp.join(format!("{name}-certs.d"));
        ok(run(ca
            .cmd(&now)
            .args(["bundle", name, "--key"])
            .arg(ca.keys.join(format!("{name}.key")))
            .arg("--out-dir")
            .arg(&dir)));
        dir
    };
    let old_alice = bundle("alice");
    // The server side: the root, pinned by hand; the CRLs installed by deploy from the
    // published tree.
    let public = tmp.join("public");
    let deployed_ca = tmp.join("deployed-root.crt");
    let deployed_crl = tmp.join("deployed-crls.pem");
    std::fs::copy(ca.path("ca/root.crt"), &deployed_ca).unwrap();
    let deploy = || {
        ok(run(ca.cmd(&now).arg("publish").arg(&public)));
        ok(run(gitca()
            .args(["--now", &now, "deploy", "crl", "--from"])
            .arg(&public)
            .arg("--ca")
            .arg(&deployed_ca)
            .arg("--out")
            .arg(&deployed_crl)))
    };
    deploy();
    let stack = start_stack(&ca, &now, &tmp, &deployed_ca, &deployed_crl);
    let nginx_conf = std::fs::read_to_string(&stack.conf).unwrap();
    assert!(nginx_conf.contains("holds the ROOT"), "{nginx_conf}");
    let alice = Client {
        dir: old_alice.clone(),
        server_ca: &stack.server_ca,
    };
    assert_eq!(alice.get(&format!("{}/v2/", stack.via_nginx)).0, 200);
    push_and_read_blob(&alice, &stack.via_nginx);
    // Go's verifier accepts the chain: the intermediate carries clientAuth.
    assert_eq!(alice.get(&format!("{}/v2/", stack.via_registry)).0, 200);

    // The drill: CI's identity leaked. The custodians revoke the intermediate it decrypts.
    ok(run(ca
        .cmd(&now)
        .args([
            "root",
            "new-intermediate",
            "--revoke-current",
            "key-compromise",
        ])
        .arg("--identity")
        .arg(&custodian)));
    ok(ca.reconcile(&now));
    let o = deploy();
    assert!(stdout(&o).contains("installed CRL"), "{}", stdout(&o));
    stack.reload();
    let (code, body) = alice.get(&format!("{}/v2/", stack.via_nginx));
    assert_eq!(
        code, 400,
        "the old intermediate's certificate is refused: {body}"
    );
    // Every identity was re-issued under the new intermediate and is admitted.
    let new_alice = Client {
        dir: bundle("alice"),
        server_ca: &stack.server_ca,
    };
    assert_eq!(new_alice.get(&format!("{}/v2/", stack.via_nginx)).0, 200);
    push_and_read_blob(&new_alice, &stack.via_nginx);
    let builder_dir = tmp.join("builder-deployed");
    ok(run(gitca()
        .args(["--now", &now, "deploy", "cert", "builder", "--key"])
        .arg(ca.keys.join("builder.key"))
        .arg("--from")
        .arg(&public)
        .arg("--ca")
        .arg(&deployed_ca)
        .arg("--out-dir")
        .arg(&builder_dir)));
    let builder = Client {
        dir: builder_dir,
        server_ca: &stack.server_ca,
    };
    assert_eq!(builder.get(&format!("{}/v2/", stack.via_nginx)).0, 200);
    assert_eq!(builder.get(&format!("{}/v2/", stack.via_registry)).0, 200);
}

/// A certificate minted with the real `openssl x509 -req` and the CA's own key (decrypted with
/// the age CLI, as a custodian could): subjects gitca would never issue, to test the server's
/// rules on their own. `subj` is openssl's `-subj` form.
fn mint(ca: &Ca, ca_key: &Path, dir: &Path, subj: &str, multivalue: bool, serial: u32) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let (key, csr, cert, ext) = (
        dir.join("client.key"),
        dir.join("req.csr"),
        dir.join("client.cert"),
        dir.join("ext.cnf"),
    );
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        csr.to_str().unwrap(),
        "-utf8",
        "-subj",
        subj,
    ];
    if multivalue {
        args.push("-multivalue-rdn");
    }
    ok(tool("openssl", &args, dir));
    ok(tool(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            ca.path("ca/ca.crt").to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-set_serial",
            &format!("0x7a{serial:06x}"),
            "-days",
            "2",
            "-extfile",
            ext.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
        dir,
    ));
    dir.to_path_buf()
}

/// Issue 19, class 1, at the server that reads the values: the nginx that `gitca export nginx`
/// writes admits each group to exactly its methods, and a subject whose values try to forge a
/// group — an escaped comma in CN, O or OU, a multi-valued RDN, `=` in a value, a trailing
/// space, another case — is worth nothing. Every group × method, against the real nginx and
/// registry.
#[test]
fn nginx_group_rules_match_whole_attributes_only() {
    for t in ["nginx", "docker-registry", "curl", "openssl", "age"] {
        require(t);
    }
    let ca = Ca::new();
    let now = now_rfc3339();
    let tmp = ca.tmp.path().to_path_buf();
    traversable(&tmp);
    let config = ca.read("gitca.yaml")
        + "\nregistry:\n  push_groups: [push, ops.admin]\n  pull_groups: [push, pull, ops.admin]\n";
    ca.write("gitca.yaml", &config);
    ca.commit("registry rights");
    ok(ca.reconcile(&now));
    let ca_key = tmp.join("stolen-ca.key");
    ca.decrypt_ca_key(&ca_key);
    let deployed_ca = tmp.join("deployed-ca.crt");
    let deployed_crl = tmp.join("deployed-crl.pem");
    std::fs::copy(ca.path("ca/ca.crt"), &deployed_ca).unwrap();
    std::fs::copy(ca.path("crl/ca.crl"), &deployed_crl).unwrap();
    let stack = start_stack(&ca, &now, &tmp, &deployed_ca, &deployed_crl);

    // (subject, multi-valued RDN, may push, may pull)
    let cases: &[(&str, bool, bool, bool)] = &[
        ("/O=Acme/OU=push/CN=pusher", false, true, true),
        ("/O=Acme/OU=ops.admin/CN=admin", false, true, true),
        ("/O=Acme/OU=pull/CN=puller", false, false, true),
        ("/O=Acme/OU=pull/OU=push/CN=both", false, true, true),
        ("/O=Acme/CN=nobody", false, false, false),
        ("/O=Acme/OU=pull/CN=mallory\\,OU=push", false, false, true),
        (
            "/O=Acme/OU=pull/CN=x\\,OU=push\\,O=Acme",
            false,
            false,
            true,
        ),
        ("/O=Acme\\,OU=push/OU=pull/CN=org", false, false, true),
        ("/O=Acme/OU=pull\\,OU=push/CN=ou", false, false, false),
        ("/O=Acme/OU=push\\,x/CN=suffix", false, false, false),
        ("/O=Acme/OU=push+CN=multi", true, false, false),
        ("/O=Acme/OU=pull/CN=OU=push", false, false, true),
        ("/O=Acme/OU=push /CN=space", false, false, false),
        ("/O=Acme/OU=PUSH/CN=upper", false, false, false),
        ("/O=Acme/OU=opsXadmin/CN=dot", false, false, false),
        ("/O=Acme/OU=pull/CN=\\,OU=push", false, false, true),
    ];
    let methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
    let mut wrong = Vec::new();
    for (i, (subj, multi, push, pull)) in cases.iter().enumerate() {
        let dir = mint(
            &ca,
            &ca_key,
            &tmp.join(format!("minted-{i}")),
            subj,
            *multi,
            i as u32,
        );
        let client = Client {
            dir,
            server_ca: &stack.server_ca,
        };
        for m in methods {
            let url = format!("{}/v2/rights-test/blobs/uploads/", stack.via_nginx);
            let mut args = vec!["-X", m, url.as_str()];
            if m == "HEAD" {
                args = vec!["-I", url.as_str()];
            }
            let (code, body) = client.curl(&args);
            let allowed = *push || (*pull && (m == "GET" || m == "HEAD"));
            if (code == 403) == allowed || code == 0 || code == 400 {
                wrong.push(format!("{subj} {m}: {code} (allowed: {allowed}) {body}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Decoding the key leaves no unencrypted CA key behind in the test's tree.
    std::fs::remove_file(&ca_key).unwrap();
}
