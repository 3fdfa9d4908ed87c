//! The person's side: `gitca request`, `gitca bundle` and `gitca doctor`, including every
//! mistake the doctor is meant to explain.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn ca_with(names: &[&str]) -> Ca {
    let ca = Ca::new();
    for n in names {
        ok(run(ca
            .cmd(T0)
            .args(["request", n, "--group", "push", "--key-out"])
            .arg(ca.keys.join(format!("{n}.key")))));
    }
    ca.commit("onboard");
    ok(ca.reconcile(T0));
    ca
}

fn bundle(ca: &Ca, name: &str, dir: &Path) -> std::process::Output {
    run(ca
        .cmd(T0)
        .args(["bundle", name, "--key"])
        .arg(ca.keys.join(format!("{name}.key")))
        .arg("--out-dir")
        .arg(dir))
}

fn doctor(ca: &Ca, now: &str, args: &[&str]) -> (i32, String) {
    let o = run(ca.cmd(now).arg("doctor").args(args));
    (o.status.code().unwrap(), stdout(&o) + &stderr(&o))
}

#[test]
fn request_keeps_the_key_outside_and_the_yaml_layout() {
    let ca = Ca::new();
    let key = ca.keys.join("alice.key");
    let o = ok(run(ca
        .cmd(T0)
        .args([
            "request",
            "alice",
            "--email",
            "alice@example.com",
            "--group",
            "push",
            "--key-out",
        ])
        .arg(&key)));
    // One file per identity: two people onboarding at once never touch the same file.
    assert!(
        stdout(&o).contains("git add csr/alice.csr identities/alice.yaml"),
        "{}",
        stdout(&o)
    );
    let yaml = ca.read("identities/alice.yaml");
    assert_eq!(yaml, "# yaml-language-server: $schema=../schema/identities.schema.json\n\nusers:\n  - name: alice\n    email: alice@example.com\n    csr: csr/alice.csr\n    groups: [push]\n");
    // --file appends to a shared file, keeping every comment line of it in order.
    let before = ca.read("identities/people.yaml");
    ok(run(ca
        .cmd(T0)
        .args([
            "request",
            "dave",
            "--file",
            "identities/people.yaml",
            "--key-out",
        ])
        .arg(ca.keys.join("dave.key"))));
    let shared = ca.read("identities/people.yaml");
    let comments: Vec<&str> = before.lines().filter(|l| l.starts_with('#')).collect();
    let kept: Vec<&str> = shared.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(comments, kept);
    assert!(
        shared.contains("users:\n  - name: dave\n    csr: csr/dave.csr\nbots: []\n"),
        "{shared}"
    );
    // The CSR is what openssl expects, for the key that stays outside.
    let csr_pub = stdout(&ok(ca.openssl(&[
        "req",
        "-in",
        "csr/alice.csr",
        "-noout",
        "-verify",
        "-pubkey",
    ])));
    let key_pub = stdout(&ok(ca.openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
    ])));
    assert!(csr_pub.contains(&key_pub), "{csr_pub}\n{key_pub}");
    let subj = stdout(&ok(ca.openssl(&[
        "req",
        "-in",
        "csr/alice.csr",
        "-noout",
        "-subject",
    ])));
    assert_eq!(subj.trim(), "subject=CN = alice");
    // A bot goes to bots:, and check accepts the result.
    ok(run(ca
        .cmd(T0)
        .args(["request", "ci-builder", "--bot", "--key-out"])
        .arg(ca.keys.join("ci.key"))));
    assert!(ca
        .read("identities/ci-builder.yaml")
        .contains("bots:\n  - name: ci-builder\n    csr: csr/ci-builder.csr\n"));
    ok(run(ca.cmd(T0).arg("check")));
}

#[test]
fn request_refuses_keys_inside_the_repo_overwrites_and_duplicates() {
    let ca = Ca::new();
    let before = ca.snapshot();
    let o = fails(run(ca
        .cmd(T0)
        .args(["request", "alice", "--key-out"])
        .arg(ca.path("alice.key"))));
    assert!(
        stderr(&o).contains("inside the CA repository"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ca.snapshot(), before);
    let key = ca.keys.join("alice.key");
    std::fs::write(&key, "precious").unwrap();
    let o = fails(run(ca
        .cmd(T0)
        .args(["request", "alice", "--key-out"])
        .arg(&key)));
    assert!(stderr(&o).contains("never overwrites"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "precious");
    assert_eq!(ca.snapshot(), before);
    let o = fails(run(ca
        .cmd(T0)
        .args(["request", "Bad/Name", "--key-out"])
        .arg(ca.keys.join("x.key"))));
    assert!(stderr(&o).contains("not a valid identity name"));
    // The default key location is ~/.config/gitca/keys/NAME.key, outside the repo.
    let home = tempfile::tempdir().unwrap();
    ok(run(ca
        .cmd(T0)
        .args(["request", "bob"])
        .env("HOME", home.path())));
    assert!(home.path().join(".config/gitca/keys/bob.key").is_file());
    let o = fails(run(ca
        .cmd(T0)
        .args(["request", "bob", "--key-out"])
        .arg(ca.keys.join("bob2.key"))));
    assert!(
        stderr(&o).contains("declared already") && stderr(&o).contains("--rotate"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn request_file_declares_in_another_identities_file_and_refuses_others() {
    let ca = Ca::new();
    // A new file under identities/ is created with the schema modeline; reconcile issues from it.
    let o = ok(run(ca
        .cmd(T0)
        .args([
            "request",
            "ci-deploy",
            "--bot",
            "--group",
            "pull",
            "--file",
            "identities/bots.yaml",
            "--key-out",
        ])
        .arg(ca.keys.join("ci-deploy.key"))));
    assert!(
        stdout(&o).contains("git add csr/ci-deploy.csr identities/bots.yaml"),
        "{}",
        stdout(&o)
    );
    let bots = ca.read("identities/bots.yaml");
    assert!(
        bots.starts_with(
            "# yaml-language-server: $schema=../schema/identities.schema.json
"
        ),
        "{bots}"
    );
    assert!(
        bots.contains(
            "bots:
  - name: ci-deploy
    csr: csr/ci-deploy.csr
    groups: [pull]
"
        ),
        "{bots}"
    );
    assert!(!ca.read("identities/people.yaml").contains("ci-deploy"));
    ca.commit("onboard ci-deploy");
    ok(ca.reconcile(T0));
    let text = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/ci-deploy.crt",
        "-noout",
        "-subject",
    ])));
    assert!(text.contains("OU = pull, CN = ci-deploy"), "{text}");
    // Declared under bots:, so issued as a bot with the bot profile.
    let rows = ca.ledger_rows();
    let row = rows
        .iter()
        .find(|r| r[1] == "ci-deploy")
        .expect("in the ledger");
    assert_eq!(
        (row[2].as_str(), row[3].as_str()),
        ("bot", "bot"),
        "{row:?}"
    );
    // Files outside identities/ (or not YAML) are refused, and nothing is written.
    let before = ca.snapshot();
    for bad in [
        "people.yaml",
        "../identities/x.yaml",
        "identities/../csr/x.yaml",
        "csr/x.yaml",
        "identities/x.txt",
        "/etc/passwd",
    ] {
        let o = fails(run(ca
            .cmd(T0)
            .args(["request", "eve", "--file", bad, "--key-out"])
            .arg(ca.keys.join("eve.key"))));
        assert!(
            stderr(&o).contains("is not an identities file")
                && stderr(&o).contains("--file identities/NAME.yaml"),
            "{bad}: {}",
            stderr(&o)
        );
        assert!(!ca.keys.join("eve.key").exists(), "{bad}: no key left");
        assert_eq!(ca.snapshot(), before, "{bad}");
    }
}

#[test]
fn rotation_by_the_person_supersedes_the_old_certificate() {
    let ca = ca_with(&["alice"]);
    let old = ca.keep("certs/alice.crt", "old.crt");
    let new_key = ca.keys.join("alice-new.key");
    ok(run(ca
        .cmd(T0)
        .args(["request", "alice", "--rotate", "--key-out"])
        .arg(&new_key)));
    ca.commit("alice rotates");
    let t = days_after(T0, 1);
    let o = ok(ca.reconcile(&t));
    assert!(stdout(&o).contains("csr-changed"));
    // The old certificate keeps working through the grace period, then is superseded.
    ok(ca.verify_crl(&old, &t));
    let after_grace = days_after(T0, 9);
    ok(ca.reconcile(&after_grace));
    assert!(!ca.verify_crl(&old, &after_grace).status.success());
    let dir = ca.tmp.path().join("alice-new");
    ok(run(ca
        .cmd(&t)
        .args(["bundle", "alice", "--key"])
        .arg(&new_key)
        .arg("--out-dir")
        .arg(&dir)));
}

#[test]
fn bundle_writes_docker_certs_d_leaf_first() {
    let ca = ca_with(&["alice"]);
    let root = ca.tmp.path().join("certs.d");
    ok(run(ca
        .cmd(T0)
        .args(["bundle", "alice", "--key"])
        .arg(ca.keys.join("alice.key"))
        .args(["--registry", "registry.example.com:5000", "--certs-root"])
        .arg(&root)));
    let dir = root.join("registry.example.com:5000");
    let cert = std::fs::read_to_string(dir.join("client.cert")).unwrap();
    assert_eq!(cert.matches("BEGIN CERTIFICATE").count(), 2);
    let first = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        dir.join("client.cert").to_str().unwrap(),
        "-noout",
        "-subject",
    ])));
    assert!(
        first.contains("CN = alice"),
        "the client certificate comes first: {first}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
        ca.read("ca/ca.crt")
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("client.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // Port 443 is Docker's bare host name.
    ok(run(ca
        .cmd(T0)
        .args(["bundle", "alice", "--key"])
        .arg(ca.keys.join("alice.key"))
        .args(["--registry", "registry.example.com:443", "--certs-root"])
        .arg(&root)));
    assert!(root.join("registry.example.com/client.cert").exists());
    // And the doctor agrees.
    let (code, out) = doctor(&ca, T0, &["--certs-dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // The client side is sound; the server's certificate was not judged, and doctor says so.
    assert!(
        out.contains("No problem found in what was checked")
            && out.contains("not checked: the registry's server certificate"),
        "{out}"
    );
}

/// Issue 16: Docker never reads certs.d for a registry on 127.0.0.0/8 (its default insecure
/// registries), so it sends no client certificate. bundle warns when installing for Docker
/// there, doctor flags such a directory under docker/certs.d; Podman's is fine.
#[test]
fn the_docker_loopback_trap_is_named() {
    let ca = ca_with(&["alice"]);
    let docker_root = ca.tmp.path().join("etc/docker/certs.d");
    let bundle = |extra: &[&str], root: &Path, registry: &str| {
        stdout(&ok(run(ca
            .cmd(T0)
            .args(["bundle", "alice", "--key"])
            .arg(ca.keys.join("alice.key"))
            .args(["--registry", registry])
            .args(extra)
            .arg("--certs-root")
            .arg(root))))
    };
    let out = bundle(&[], &docker_root, "127.0.0.1:5000");
    assert!(
        out.contains("warning: Docker treats 127.0.0.1:5000 as an insecure registry")
            && out.contains("never reads certs.d"),
        "{out}"
    );
    let (code, out) = doctor(
        &ca,
        T0,
        &[
            "--certs-dir",
            docker_root.join("127.0.0.1:5000").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Docker will not use this directory"), "{out}");
    // The same files for a routable address, and for Podman on loopback: no warning, all well.
    let out = bundle(&[], &docker_root, "192.0.2.10:5000");
    assert!(!out.contains("warning"), "{out}");
    let (code, out) = doctor(
        &ca,
        T0,
        &[
            "--certs-dir",
            docker_root.join("192.0.2.10:5000").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let podman_root = ca.tmp.path().join("etc/containers/certs.d");
    let out = bundle(&["--podman"], &podman_root, "127.0.0.1:5000");
    assert!(!out.contains("warning"), "{out}");
    let (code, out) = doctor(
        &ca,
        T0,
        &[
            "--certs-dir",
            podman_root.join("127.0.0.1:5000").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("if Docker reads this directory"), "{out}");
}

#[test]
fn bundle_refuses_bad_keys_unknown_names_and_unwritable_targets() {
    let ca = ca_with(&["alice", "bob"]);
    let target = ca.tmp.path().join("out");
    let try_key = |key: &Path, expect: &str| {
        let o = fails(run(ca
            .cmd(T0)
            .args(["bundle", "alice", "--key"])
            .arg(key)
            .arg("--out-dir")
            .arg(&target)));
        assert!(
            stderr(&o).contains(expect),
            "expected `{expect}`:\n{}",
            stderr(&o)
        );
        assert!(
            !target.exists() || std::fs::read_dir(&target).unwrap().count() == 0,
            "nothing written"
        );
    };
    let junk = ca.tmp.path().join("junk.key");
    std::fs::write(&junk, "not a key").unwrap();
    try_key(&junk, "not a PEM private key");
    let enc = ca.tmp.path().join("enc.key");
    ok(ca.openssl(&[
        "pkey",
        "-in",
        ca.keys.join("alice.key").to_str().unwrap(),
        "-aes256",
        "-passout",
        "pass:secret",
        "-out",
        enc.to_str().unwrap(),
    ]));
    try_key(&enc, "passphrase-protected");
    try_key(
        &ca.keys.join("bob.key"),
        "is not the key of alice's certificate",
    );

    let o = fails(run(ca
        .cmd(T0)
        .args(["bundle", "zed", "--key"])
        .arg(ca.keys.join("bob.key"))
        .arg("--out-dir")
        .arg(&target)));
    assert!(
        stderr(&o).contains("`zed` is not declared"),
        "{}",
        stderr(&o)
    );

    let file = ca.tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = fails(bundle(&ca, "alice", &file.join("sub")));
    assert!(stderr(&o).contains("cannot create"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
}

fn write_bundle(dir: &Path, files: &[(&str, String)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir.to_path_buf()
}

#[test]
fn doctor_explains_every_refusal() {
    let ca = ca_with(&["alice", "bob"]);
    let alice_cert = ca.read("certs/alice.crt");
    let alice_key = std::fs::read_to_string(ca.keys.join("alice.key")).unwrap();
    let bob_key = std::fs::read_to_string(ca.keys.join("bob.key")).unwrap();
    let ca_pem = ca.read("ca/ca.crt");
    let leaf = alice_cert.replace(&ca_pem, "");
    let d = ca.tmp.path();

    // The article's mistake: the CA first in client.cert.
    let dir = write_bundle(
        &d.join("ca-first"),
        &[
            ("client.cert", format!("{ca_pem}{leaf}")),
            ("client.key", alice_key.clone()),
        ],
    );
    let (code, out) = doctor(
        &ca,
        T0,
        &[
            "--cert",
            dir.join("client.cert").to_str().unwrap(),
            "--key",
            dir.join("client.key").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("starts with the CA certificate")
            && out.contains("private key does not match public key"),
        "{out}"
    );

    // A key that does not match.
    let dir = write_bundle(
        &d.join("mismatch"),
        &[("client.cert", alice_cert.clone()), ("client.key", bob_key)],
    );
    let (code, out) = doctor(
        &ca,
        T0,
        &[
            "--cert",
            dir.join("client.cert").to_str().unwrap(),
            "--key",
            dir.join("client.key").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    assert!(out.contains("does not match the certificate"), "{out}");

    // Expired, and not yet valid.
    let args = [
        "--cert",
        dir.join("client.cert").to_str().unwrap(),
        "--key",
        ca.keys.join("alice.key").to_str().unwrap(),
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = doctor(&ca, &days_after(T0, 400), &args);
    assert_eq!(code, 1);
    assert!(out.contains("expired 2027-01-01"), "{out}");
    let (code, out) = doctor(&ca, &days_after(T0, -2), &args);
    assert_eq!(code, 1);
    assert!(out.contains("not valid before"), "{out}");
    let (code, out) = doctor(&ca, T0, &args);
    assert_eq!(code, 0, "{out}");

    // Not issued by this CA.
    let other = Ca::new();
    let (code, out) = doctor(&other, T0, &args);
    assert_eq!(code, 1);
    assert!(out.contains("not issued by this CA"), "{out}");

    // No clientAuth: a certificate from the server-only profile `gitca init` writes.
    assert!(ca
        .read("gitca.yaml")
        .contains("extended_key_usage: [server_auth]"));
    let web_key = ca.keys.join("web.key");
    ok(run(ca
        .cmd(T0)
        .args(["request", "web", "--key-out"])
        .arg(&web_key)));
    let yaml = ca.read("identities/web.yaml").replace(
        "    csr: csr/web.csr\n",
        "    csr: csr/web.csr\n    profile: server\n",
    );
    ca.write("identities/web.yaml", &yaml);
    ca.commit("a server cert");
    ok(ca.reconcile(T0));
    let (code, out) = doctor(
        &ca,
        T0,
        &[
            "--cert",
            ca.path("certs/web.crt").to_str().unwrap(),
            "--key",
            web_key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("no clientAuth extended key usage") && out.contains("incompatible key usage"),
        "{out}"
    );

    // certs.d naming mistakes.
    let dir = write_bundle(
        &d.join("registry.example.com"),
        &[
            ("client.crt", alice_cert.clone()),
            ("client.key", alice_key.clone()),
            ("ca.crt", ca_pem.clone()),
        ],
    );
    let (code, out) = doctor(&ca, T0, &["--certs-dir", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("rename client.crt to client.cert"), "{out}");
    assert!(out.contains("has no port"), "{out}");
    let dir = write_bundle(
        &d.join("reg:5000"),
        &[("client.cert", alice_cert), ("ca.crt", ca_pem)],
    );
    let (code, out) = doctor(&ca, T0, &["--certs-dir", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("client.cert has no client.key"), "{out}");
}

/// doctor tells the truth about time: an expired CRL locks everyone out, and a certificate
/// superseded by a renewal for the same key only needs the new one installed.
#[test]
fn doctor_knows_the_crl_has_expired_and_that_a_newer_certificate_exists() {
    let ca = Ca::new();
    ok(run(ca
        .cmd(T0)
        .args(["request", "ci", "--bot", "--key-out"])
        .arg(ca.keys.join("ci.key"))));
    ca.commit("ci");
    ok(ca.reconcile(T0));
    let dir = ca.tmp.path().join("installed");
    ok(bundle(&ca, "ci", &dir));
    let cert = dir.join("client.cert");
    let key = dir.join("client.key");
    let args = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let (code, out) = doctor(&ca, T0, &args);
    assert_eq!(code, 0, "{out}");
    // Ten days later nobody re-signed the CRL: nginx refuses everyone.
    let (code, out) = doctor(&ca, &days_after(T0, 10), &args);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the CRL #1 expired 2026-01-08T00:00:00Z"),
        "{out}"
    );
    assert!(out.contains("refuses EVERY client"), "{out}");
    // Day 21: the bot's certificate is renewed in the repository (same key).
    let t = days_after(T0, 21);
    ok(ca.reconcile(&t));
    // The installed one still works (a renewal revokes nothing): advice, not a refusal.
    let (code, out) = doctor(&ca, &t, &args);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("note: a newer certificate of ci is in the CA repository"),
        "{out}"
    );
    assert!(out.contains("for this same key"), "{out}");
    assert!(out.contains("gitca bundle ci --key"), "{out}");
    assert!(!out.contains("get re-declared"), "{out}");
}
