//! Issue 22: server certificates from the same reviewed repository. A server is declared in
//! identities/ with its names, asks with its own key (`gitca request --server`), is bounded by
//! gitca.yaml's `servers:` policy, and gets a serverAuth-only certificate for exactly its names
//! — proved with the real openssl, GnuTLS's certtool, nginx (as the registry's front) and the
//! registry's own Go TLS (each refuses a server certificate as a client certificate), curl and
//! skopeo (which trust the server through the `ca.crt` of `gitca bundle`, with no
//! `--server-ca`); below an offline root, the chain verifies from the root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::daemons::*;
use common::*;

const POLICY: &str =
    "\nservers:\n  dns_names: [registry.test, .internal.test]\n  ip_ranges: [127.0.0.0/8, 2001:db8::/32]\n";

/// A CA whose gitca.yaml certifies registry.test, *.internal.test names and 127.0.0.0/8.
fn ca_with_policy(now: &str) -> Ca {
    let ca = Ca::new();
    let text = ca.read("gitca.yaml") + POLICY;
    ca.write("gitca.yaml", &text);
    ca.commit("server policy");
    if now != T0 {
        // The CA was made at T0: its CRL is re-signed at `now`.
        ok(ca.reconcile(now));
    }
    ca
}

/// `gitca request NAME --server …`, run as the server would (its key outside the repository).
fn request_server(ca: &Ca, now: &str, name: &str, names: &[&str]) -> PathBuf {
    let key = ca.keys.join(format!("{name}.key"));
    let mut c = ca.cmd(now);
    c.args(["request", name, "--server", "--key-out"]).arg(&key);
    for n in names {
        let flag = if n.parse::<std::net::IpAddr>().is_ok() {
            "--ip-address"
        } else {
            "--dns-name"
        };
        c.args([flag, n]);
    }
    ok(run(&mut c));
    key
}

fn openssl_verify(ca: &Ca, at: &str, extra: &[&str]) -> Output {
    let at = epoch(at);
    let mut args = vec!["verify", "-attime", &at, "-CAfile", "ca/ca.crt"];
    args.extend(extra);
    args.push("certs/registry.crt");
    ca.openssl(&args)
}

use std::process::Output;

#[test]
fn a_server_certificate_carries_its_names_and_server_auth_alone() {
    require("certtool");
    // certtool verifies at the real time: the CA works at it too.
    let now = now_rfc3339();
    let now = now.as_str();
    let ca = ca_with_policy(now);
    request_server(&ca, now, "registry", &["registry.test", "127.0.0.1"]);
    let entry = ca.read("identities/registry.yaml");
    assert!(
        entry.contains("servers:\n  - name: registry\n")
            && entry.contains("dns_names: [registry.test]")
            && entry.contains("ip_addresses: [127.0.0.1]"),
        "{entry}"
    );
    ca.commit("onboard the registry server");
    ok(run(ca.cmd(now).arg("check")));
    // Reviewers see every name, in every format.
    let human = stdout(&ok(run(ca.cmd(now).arg("plan"))));
    assert!(
        human.contains("names DNS:registry.test, IP:127.0.0.1") && human.contains("server_auth"),
        "{human}"
    );
    let md = stdout(&ok(run(ca.cmd(now).args(["plan", "--markdown"]))));
    assert!(md.contains("names DNS:registry.test, IP:127.0.0.1"), "{md}");
    let json = stdout(&ok(run(ca.cmd(now).args(["plan", "--json"]))));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["signing"][0]["names"],
        serde_json::json!(["DNS:registry.test", "IP:127.0.0.1"]),
        "{json}"
    );
    assert_eq!(
        v["signing"][0]["extended_key_usage"],
        serde_json::json!(["server_auth"])
    );
    ok(ca.reconcile(now));
    // status names the server's names where people have their groups.
    let st = stdout(&ok(run(ca.cmd(now).arg("status"))));
    let row = st
        .lines()
        .find(|l| l.contains("registry "))
        .unwrap_or_default();
    assert!(row.contains("[DNS:registry.test,IP:127.0.0.1]"), "{st}");
    let json = stdout(&ok(run(ca.cmd(now).args(["status", "--json"]))));
    assert!(json.contains("\"DNS:registry.test\""), "{json}");

    // openssl: the host name and the address verify, as a TLS server; nothing else does.
    ok(openssl_verify(
        &ca,
        now,
        &["-purpose", "sslserver", "-verify_hostname", "registry.test"],
    ));
    ok(openssl_verify(
        &ca,
        now,
        &["-purpose", "sslserver", "-verify_ip", "127.0.0.1"],
    ));
    for wrong in [
        ["-verify_hostname", "other.test"],
        ["-verify_hostname", "x.registry.test"],
        ["-verify_ip", "127.0.0.2"],
        ["-purpose", "sslclient"],
    ] {
        let o = openssl_verify(&ca, now, &wrong);
        assert!(!o.status.success(), "{wrong:?} verified: {}", stdout(&o));
    }
    let text = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/registry.crt",
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName,extendedKeyUsage,basicConstraints",
    ])));
    assert!(
        text.contains("DNS:registry.test, IP Address:127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(
        !text.contains("Client"),
        "never a client certificate: {text}"
    );
    assert!(
        text.contains("CN=registry.test") || text.contains("CN = registry.test"),
        "{text}"
    );

    // GnuTLS: verifies for the host name and the serverAuth purpose, refuses another name and
    // the clientAuth purpose.
    let certtool = |args: &[&str]| {
        tool(
            "certtool",
            &[
                &[
                    "--verify",
                    "--load-ca-certificate",
                    "ca/ca.crt",
                    "--infile",
                    "certs/registry.crt",
                ][..],
                args,
            ]
            .concat(),
            &ca.root,
        )
    };
    let o = certtool(&[
        "--verify-hostname",
        "registry.test",
        "--verify-purpose",
        "1.3.6.1.5.5.7.3.1",
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    for wrong in [
        ["--verify-hostname", "other.test"],
        ["--verify-purpose", "1.3.6.1.5.5.7.3.2"],
    ] {
        let o = certtool(&wrong);
        assert!(!o.status.success(), "certtool {wrong:?}: {}", stdout(&o));
    }

    // The ledger records the names; a second run has nothing to do.
    let rows = ca.ledger_rows();
    assert_eq!(rows[0][2], "server");
    assert_eq!(rows[0].last().unwrap(), "DNS:registry.test,IP:127.0.0.1");
    let head = ca.head();
    ok(ca.reconcile(now));
    assert_eq!(ca.head(), head, "idempotent");

    // A name added: reissued for both, the old certificate superseded later. A name dropped:
    // reissued, and the certificate that still names it revoked at once.
    let t1 = days_after(now, 1);
    let file = ca.read("identities/registry.yaml");
    ca.write(
        "identities/registry.yaml",
        &file.replace("[registry.test]", "[registry.test, cache.internal.test]"),
    );
    ca.commit("registry: cache name");
    let plan = stdout(&ok(run(ca.cmd(&t1).arg("plan"))));
    assert!(plan.contains("names-changed"), "{plan}");
    ok(ca.reconcile(&t1));
    ok(openssl_verify(
        &ca,
        &t1,
        &["-verify_hostname", "cache.internal.test"],
    ));
    let t2 = days_after(now, 2);
    ca.write("identities/registry.yaml", &file);
    ca.commit("registry: no cache name");
    ok(ca.reconcile(&t2));
    let rows = ca.ledger_rows();
    let withdrawn: Vec<_> = rows
        .iter()
        .filter(|r| r.last().unwrap().contains("cache.internal.test"))
        .collect();
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(withdrawn[0][4], "revoked");
    assert_eq!(withdrawn[0][8], "privilege-withdrawn");
    let o = openssl_verify(&ca, &t2, &["-verify_hostname", "registry.test"]);
    assert!(o.status.success(), "the current one verifies");
}

/// Everything in a pull request is hostile: each bad server entry is refused by check with the
/// file, the line and the fix, nothing is written, and reconcile signs nothing for it; the
/// same file with a good entry then passes (the positive path of every refusal).
#[test]
fn hostile_server_entries_are_refused_with_file_line_and_fix() {
    let ca = ca_with_policy(T0);
    ca.openssl_csr(
        "web",
        "web.internal.test",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &[],
    );
    ca.commit("web's CSR");
    let good = "servers:\n  - name: web\n    dns_names: [web.internal.test]\n";
    for (entry, says) in [
        ("dns_names: [Web.internal.test]", "upper-case"),
        ("dns_names: [\"web.internal.test.\"]", "ends with a dot"),
        ("dns_names: [\"web,internal.test\"]", "holds `,`"),
        ("dns_names: [\"web.internal.test\\nx\"]", "holds `\\n`"),
        ("dns_names: [\"web\\0.internal.test\"]", "holds `\\u{0}`"),
        ("dns_names: [\"wеb.internal.test\"]", "non-ASCII"),
        ("dns_names: [xn--wb-nlc.internal.test]", "mixes scripts"),
        ("dns_names: [\"*.internal.test\"]", "wildcard"),
        ("dns_names: [web.example.com]", "does not cover it"),
        ("dns_names: [internal.test]", "does not cover it"),
        ("ip_addresses: [10.0.0.1]", "does not cover it"),
        ("ip_addresses: [127.0.0.01]", "not an IPv4 or IPv6"),
        (
            "ip_addresses: [\"2001:DB8::1\"]",
            "write it as `2001:db8::1`",
        ),
        ("dns_names: [web.internal.test, web.internal.test]", "twice"),
        ("dns_names: []", "has no names"),
        (
            "dns_names: [web.internal.test]\n    common_name: evil.test",
            "not one of its names",
        ),
        (
            "dns_names: [web.internal.test]\n    groups: [push]",
            "has groups",
        ),
        (
            "dns_names: [web.internal.test]\n    profile: user",
            "grants [client_auth]",
        ),
    ] {
        let text = format!("servers:\n  - name: web\n    {entry}\n");
        ca.write("identities/web.yaml", &text);
        let before = ca.snapshot();
        let head = ca.head();
        for cmd in ["check", "plan"] {
            let o = run(ca.cmd(T0).arg(cmd));
            assert!(!o.status.success(), "{cmd} accepted {entry:?}");
            let said = stdout(&o) + &stderr(&o);
            assert!(said.contains(says), "{entry:?}: {said}");
            assert!(said.contains("identities/web.yaml:"), "{entry:?}: {said}");
            assert!(said.contains("help:"), "{entry:?}: {said}");
            assert!(!said.contains("panicked"), "{said}");
        }
        assert_eq!(ca.snapshot(), before, "{entry:?}: nothing written");
        assert_eq!(ca.head(), head);
    }
    // A user cannot carry server names, and a server in a CA without a policy has none.
    ca.write(
        "identities/web.yaml",
        "users:\n  - name: web\n    dns_names: [web.internal.test]\n",
    );
    let said = stdout(&fails(run(ca.cmd(T0).arg("check"))));
    assert!(said.contains("is for servers"), "{said}");
    ca.write("identities/web.yaml", good);
    ok(run(ca.cmd(T0).arg("check")));
    ca.commit("web");
    ok(ca.reconcile(T0));
    assert!(ca.path("certs/web.crt").exists());
    let no_policy = ca.read("gitca.yaml").replace(POLICY, "\n");
    ca.write("gitca.yaml", &no_policy);
    let said = stdout(&fails(run(ca.cmd(T0).arg("check"))));
    assert!(said.contains("no `servers:` policy"), "{said}");

    // The person's side refuses the same names before any key is written.
    ca.write("gitca.yaml", &(no_policy + POLICY));
    let key = ca.keys.join("evil.key");
    let o = fails(run(ca
        .cmd(T0)
        .args([
            "request",
            "evil",
            "--server",
            "--dns-name",
            "evil.example.com",
            "--key-out",
        ])
        .arg(&key)));
    assert!(stderr(&o).contains("does not cover it"), "{}", stderr(&o));
    assert!(!key.exists(), "no key left behind");
    assert!(!ca.path("csr/evil.csr").exists() && !ca.path("identities/evil.yaml").exists());
}

/// curl through nginx with `--resolve`, so the host name is checked; returns the HTTP code
/// (0 when TLS fails) and what curl said.
fn curl(port: u16, host: &str, cacert: &Path, client: Option<(&Path, &Path)>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "--max-time",
        "10",
        "--noproxy",
        "*",
        "-o",
        "/dev/null",
    ]);
    c.args(["-w", "%{http_code}", "--resolve"]);
    c.arg(format!("{host}:{port}:127.0.0.1"));
    c.arg("--cacert").arg(cacert);
    if let Some((cert, key)) = client {
        c.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    c.arg(format!("https://{host}:{port}/v2/"));
    let o = c.output().unwrap();
    (stdout(&o).trim().parse().unwrap_or(0), stderr(&o))
}

/// Both ends of the registry's connection from one repository: nginx (configured by `gitca
/// export nginx`) serves the registry's gitca certificate; alice's client certificate is
/// admitted, curl and skopeo trust the server through her bundle's ca.crt alone, and the
/// server's own certificate presented as a client certificate is refused by nginx.
#[test]
fn nginx_serves_a_gitca_server_certificate_and_refuses_it_as_a_client_certificate() {
    for t in ["nginx", "docker-registry", "curl", "skopeo"] {
        require(t);
    }
    let now = now_rfc3339();
    let ca = ca_with_policy(&now);
    let tmp = ca.tmp.path().to_path_buf();
    traversable(&tmp);
    let server_key = request_server(&ca, &now, "registry", &["registry.test", "127.0.0.1"]);
    let alice_key = ca.keys.join("alice.key");
    ok(run(ca
        .cmd(&now)
        .args(["request", "alice", "--key-out"])
        .arg(&alice_key)));
    ca.commit("onboard the registry and alice");
    ok(ca.reconcile(&now));
    let alice = tmp.join("alice-certs");
    ok(run(ca
        .cmd(&now)
        .args(["bundle", "alice", "--key"])
        .arg(&alice_key)
        .arg("--out-dir")
        .arg(&alice)));
    assert!(
        !alice.join("server-ca.crt").exists(),
        "no --server-ca was given"
    );

    let (p_plain, p_nginx) = (free_port(), free_port());
    let export = |args: &[&str]| stdout(&ok(run(ca.cmd(&now).arg("export").args(args))));
    let plain = tmp.join("registry-plain.yml");
    std::fs::write(
        &plain,
        export_registry_behind_nginx(
            ca.cmd(&now),
            &format!("127.0.0.1:{p_plain}"),
            &tmp.join("data"),
        ),
    )
    .unwrap();
    let prefix = tmp.join("nginx");
    nginx_prefix(&prefix);
    // The server installs its certificate next to its key from what CI published, verified
    // against the CA it pinned: server.crt and server.key, where `export nginx` reads them.
    let public = tmp.join("public");
    let etc = tmp.join("etc-gitca");
    let deploy = |name: &str, key: &Path, flag: &str, dir: &Path, reload: Option<&str>| {
        ok(run(ca.cmd(&now).arg("publish").arg(&public)));
        let mut c = gitca();
        c.args(["deploy", "cert", name, "--key"]).arg(key);
        c.arg("--from")
            .arg(&public)
            .arg("--ca")
            .arg(ca.path("ca/ca.crt"));
        c.arg(flag).arg(dir);
        if let Some(r) = reload {
            c.args(["--reload", r]);
        }
        run(&mut c)
    };
    ok(deploy("registry", &server_key, "--server-dir", &etc, None));
    let cert = etc.join("server.crt");
    let installed_key = etc.join("server.key");
    assert!(cert.exists() && installed_key.exists());
    // Each kind of certificate only where its kind is read.
    let both = |o: Output| stdout(&o) + &stderr(&o);
    let said = both(fails(deploy(
        "registry",
        &server_key,
        "--out-dir",
        &tmp.join("x"),
        None,
    )));
    assert!(said.contains("--server-dir"), "{said}");
    let said = both(fails(deploy(
        "alice",
        &alice_key,
        "--server-dir",
        &tmp.join("y"),
        None,
    )));
    assert!(said.contains("not hold a server certificate"), "{said}");
    let conf = prefix.join("nginx.conf");
    let site = NginxSite {
        prefix: &prefix,
        listen: &format!("127.0.0.1:{p_nginx}"),
        server_name: "registry.test",
        upstream: &format!("127.0.0.1:{p_plain}"),
        tls_cert: &cert,
        tls_key: &installed_key,
        client_ca: &ca.path("ca/ca.crt"),
        crl: &ca.path("crl/ca.crl"),
    };
    let nginx_conf = site.export(ca.cmd(&now), &[]);
    std::fs::write(&conf, nginx_conf).unwrap();
    let _registry = Server::listening(
        "docker-registry",
        Command::new("docker-registry").arg("serve").arg(&plain),
        p_plain,
        &tmp.join("registry.log"),
    );
    let _nginx = Server::listening(
        "nginx",
        Command::new("nginx").args(nginx_args(&prefix, &conf, &[])),
        p_nginx,
        &tmp.join("nginx.out"),
    );
    // The registry's own TLS (Go's verifier), on the same deployed files.
    let p_tls = free_port();
    let own_tls = tmp.join("registry-tls.yml");
    std::fs::write(
        &own_tls,
        export(&[
            "registry",
            "--listen",
            &format!("127.0.0.1:{p_tls}"),
            "--storage",
            tmp.join("data-tls").to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            installed_key.to_str().unwrap(),
            "--client-ca",
            ca.path("ca/ca.crt").to_str().unwrap(),
        ]),
    )
    .unwrap();
    let _registry_tls = Server::listening(
        "docker-registry (own TLS)",
        Command::new("docker-registry").arg("serve").arg(&own_tls),
        p_tls,
        &tmp.join("registry-tls.log"),
    );
    let ca_crt = alice.join("ca.crt");
    let alice_pair = (alice.join("client.cert"), alice.join("client.key"));
    let as_alice = Some((alice_pair.0.as_path(), alice_pair.1.as_path()));

    // alice is admitted, curl trusting the server through her bundle's ca.crt, by name and
    // by address.
    let (code, said) = curl(p_nginx, "registry.test", &ca_crt, as_alice);
    assert_eq!(code, 200, "{said}");
    let (code, said) = curl(p_nginx, "127.0.0.1", &ca_crt, as_alice);
    assert_eq!(code, 200, "{said}");
    // A name the certificate does not carry fails TLS (the positive path above proves it is
    // the name, not the setup).
    let (code, said) = curl(p_nginx, "localhost", &ca_crt, as_alice);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("certificate") || said.contains("match"),
        "{said}"
    );

    // doctor judges the server side as the client will: trusted through the bundle's ca.crt
    // for the address it carries; another name is a mismatch, said in plain words.
    let doctor = |server: String| {
        let o = run(ca
            .cmd(&now)
            .args(["doctor", "--certs-dir"])
            .arg(&alice)
            .args(["--server", &server]));
        (o.status.code(), stdout(&o) + &stderr(&o))
    };
    let (code, said) = doctor(format!("127.0.0.1:{p_nginx}"));
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("is trusted for 127.0.0.1"), "{said}");
    let (code, said) = doctor(format!("localhost:{p_nginx}"));
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("is not for the name localhost"), "{said}");
    // The server's own certificate and key, presented as a client certificate: refused.
    let (code, said) = curl(
        p_nginx,
        "registry.test",
        &ca_crt,
        Some((cert.as_path(), server_key.as_path())),
    );
    assert_eq!(
        code, 400,
        "a server certificate is no client certificate: {said}"
    );
    let log = std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default();
    assert!(log.contains("unsuitable certificate purpose"), "{log}");
    // Go's verifier, in the registry's own TLS: alice in, the server certificate refused.
    let (code, said) = curl(p_tls, "registry.test", &ca_crt, as_alice);
    assert_eq!(code, 200, "{said}");
    let (code, said) = curl(
        p_tls,
        "registry.test",
        &ca_crt,
        Some((cert.as_path(), server_key.as_path())),
    );
    assert_eq!(
        code, 0,
        "the registry refuses a server certificate as a client's: {said}"
    );
    // The registry logs the handshake error on its own goroutine, maybe after curl has
    // returned: read its log until the line is there (or 10 s have passed).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(tmp.join("registry-tls.log")).unwrap_or_default();
        if log.contains("incompatible key usage") || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(log.contains("incompatible key usage"), "{log}");

    // skopeo, with alice's bundle directory as its cert dir: TLS to the registry succeeds
    // (the registry answers for a missing image); without the bundle's ca.crt it does not.
    let policy = tmp.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let registries = tmp.join("registries.conf");
    std::fs::write(&registries, "unqualified-search-registries = []\n").unwrap();
    let skopeo = |dir: &Path| {
        Command::new("skopeo")
            .arg("--policy")
            .arg(&policy)
            .arg("--registries-conf")
            .arg(&registries)
            .env("CONTAINERS_REGISTRIES_CONF", &registries)
            .args(["inspect", "--cert-dir"])
            .arg(dir)
            .arg(format!("docker://127.0.0.1:{p_nginx}/gitca/none:latest"))
            .output()
            .unwrap()
    };
    let o = skopeo(&alice);
    let said = stderr(&o);
    assert!(
        !said.contains("x509") && !said.contains("certificate"),
        "{said}"
    );
    assert!(
        said.contains("manifest unknown") || said.contains("not found"),
        "{said}"
    );
    let no_ca = tmp.join("alice-no-ca");
    std::fs::create_dir_all(&no_ca).unwrap();
    std::fs::copy(&alice_pair.0, no_ca.join("client.cert")).unwrap();
    std::fs::copy(&alice_pair.1, no_ca.join("client.key")).unwrap();
    let said = stderr(&skopeo(&no_ca));
    assert!(
        said.contains("x509") || said.contains("certificate"),
        "{said}"
    );
}

/// With an offline root, a server certificate comes from the intermediate like every other,
/// and `certs/NAME.crt` (what `deploy cert --server-dir` installs as server.crt) is the chain
/// nginx serves: it verifies from the root and the file itself, for the name, as a TLS server.
#[test]
fn below_an_offline_root_the_server_chain_verifies_from_the_root() {
    require("certtool");
    let now = now_rfc3339();
    let (ca, _custodian) = offline_root_ca(&now);
    let text = ca.read("gitca.yaml") + POLICY;
    ca.write("gitca.yaml", &text);
    ca.commit("server policy");
    request_server(&ca, &now, "registry", &["registry.test"]);
    ca.commit("registry");
    ok(ca.reconcile(&now));
    let chain = ca.read("certs/registry.crt");
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
    let at = epoch(&now);
    let verify = |host: &str| {
        ca.openssl(&[
            "verify",
            "-attime",
            &at,
            "-CAfile",
            "ca/root.crt",
            "-untrusted",
            "certs/registry.crt",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            host,
            "certs/registry.crt",
        ])
    };
    ok(verify("registry.test"));
    assert!(!verify("other.test").status.success());
    let o = tool(
        "certtool",
        &[
            "--verify",
            "--load-ca-certificate",
            "ca/root.crt",
            "--infile",
            "certs/registry.crt",
            "--verify-hostname",
            "registry.test",
        ],
        &ca.root,
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}
