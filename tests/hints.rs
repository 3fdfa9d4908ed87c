//! Issue 15, "errors that say the true thing": each hint that names a command is followed, in
//! the situation that prints it, and the command must work and fix what was reported.

mod common;

use common::*;

#[test]
fn check_base_hints_undo_hand_edits_added_and_changed_files() {
    let ca = Ca::new();
    for n in ["alice", "bob"] {
        ok(run(ca
            .cmd(T0)
            .args(["request", n, "--key-out"])
            .arg(ca.keys.join(format!("{n}.key")))));
    }
    ca.commit("two");
    ok(ca.reconcile(T0));
    git(&ca.root, &["branch", "-q", "base"]);
    // The pull request drops bob's ledger row and adds a certificate file by hand.
    let ledger: String = ca
        .read("ledger.tsv")
        .lines()
        .filter(|l| !l.contains("\tbob\t"))
        .map(|l| format!("{l}\n"))
        .collect();
    ca.write("ledger.tsv", &ledger);
    ca.write("certs/dave.crt", "not a certificate\n");
    ca.commit("hand edits");
    let o = fails(run(ca.cmd(T0).args(["check", "--base", "base"])));
    let text = stdout(&o) + &stderr(&o);
    let cmds = suggested(&text, "git ");
    assert!(
        cmds.contains(&"git rm -f certs/dave.crt".to_string()),
        "{cmds:?}\n{text}"
    );
    assert!(
        cmds.contains(&"git checkout base -- ledger.tsv".to_string()),
        "{cmds:?}"
    );
    for c in &cmds {
        ca.sh(c);
    }
    ca.commit("undo");
    let o = ok(run(ca.cmd(T0).args(["check", "--base", "base"])));
    assert!(stdout(&o).contains("check passed"), "{}", stdout(&o));
}

#[test]
fn a_der_csr_is_told_how_to_convert_it_and_the_conversion_works() {
    let ca = Ca::new();
    ca.p256_csr("erin");
    ok(ca.openssl(&[
        "req",
        "-in",
        "csr/erin.csr",
        "-outform",
        "DER",
        "-out",
        "csr/erin.der",
    ]));
    std::fs::rename(ca.path("csr/erin.der"), ca.path("csr/erin.csr")).unwrap();
    ca.identities("users:\n  - name: erin\n");
    ca.commit("erin, DER");
    let o = fails(run(ca.cmd(T0).arg("check")));
    let text = stdout(&o) + &stderr(&o);
    let cmds = suggested(&text, "openssl req");
    assert_eq!(cmds.len(), 1, "{text}");
    // The hint names FILE: applied to the CSR, then the PEM takes its place.
    let cmd = cmds[0]
        .replace("FILE.pem", "csr/erin.pem")
        .replace("FILE", "csr/erin.csr");
    ca.sh(&format!("{cmd} && mv csr/erin.pem csr/erin.csr"));
    ca.commit("erin, PEM");
    ok(run(ca.cmd(T0).arg("check")));
    ok(ca.reconcile(T0));
}

#[test]
fn a_compromised_key_is_told_to_rotate_and_rotating_works() {
    let ca = Ca::new();
    ok(run(ca
        .cmd(T0)
        .args(["request", "carol", "--key-out"])
        .arg(ca.keys.join("carol.key"))));
    ca.commit("carol");
    ok(ca.reconcile(T0));
    let y = ca.read("identities/carol.yaml").replace(
        "csr: csr/carol.csr",
        "csr: csr/carol.csr\n    revoke: key-compromise",
    );
    ca.write("identities/carol.yaml", &y);
    ca.commit("compromised");
    ok(ca.reconcile(&days_after(T0, 1)));
    // revoke: is lifted, the old CSR is still on file: its key is barred, and the hint says how.
    let y = ca
        .read("identities/carol.yaml")
        .replace("\n    revoke: key-compromise", "");
    ca.write("identities/carol.yaml", &y);
    ca.commit("carol back");
    let o = fails(run(ca.cmd(&days_after(T0, 2)).arg("check")));
    let text = stdout(&o) + &stderr(&o);
    let cmds = suggested(&text, "gitca request carol");
    assert_eq!(cmds, ["gitca request carol --rotate"], "{text}");
    ca.sh(&format!(
        "{} --key-out {}",
        cmds[0],
        ca.keys.join("carol2.key").display()
    ));
    ca.commit("carol rotates");
    ok(run(ca.cmd(&days_after(T0, 2)).arg("check")));
    ok(ca.reconcile(&days_after(T0, 2)));
}

/// A clone owned by another user (as after `sudo gitca bundle` in someone's checkout): git's
/// ownership check is named as such, and the `safe.directory` remedy it prints works.
#[test]
fn a_clone_owned_by_another_user_is_explained_and_the_remedy_works() {
    let ca = Ca::new();
    let theirs = ca.tmp.path().join("theirs");
    ok(std::process::Command::new("cp")
        .args(["-a"])
        .arg(&ca.root)
        .arg(&theirs)
        .output()
        .unwrap());
    ok(std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&theirs)
        .output()
        .unwrap());
    let home = ca.tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let status = || {
        run(gitca()
            .arg("-C")
            .arg(&theirs)
            .args(["--now", T0, "status"])
            .env("HOME", &home)
            .env_remove("GIT_CONFIG_GLOBAL"))
    };
    let o = fails(status());
    let text = stderr(&o);
    assert!(text.contains("belongs to another user"), "{text}");
    let cmds = suggested(&text, "git config");
    assert_eq!(cmds.len(), 1, "{text}");
    ok(std::process::Command::new("bash")
        .arg("-c")
        .arg(&cmds[0])
        .env("HOME", &home)
        .output()
        .unwrap());
    let o = ok(status());
    assert!(stdout(&o).contains("CRL  #1"), "{}", stdout(&o));
}

/// Issue 20, item 9: reconcile names each blocked identity once (its diagnostic, with the fix,
/// on stderr; the plan on stdout points at it), and no plan reason repeats its own code.
#[test]
fn reconcile_tells_each_blocked_identity_once_and_reasons_do_not_repeat_themselves() {
    let ca = Ca::new();
    ok(run(ca
        .cmd(T0)
        .args([
            "request",
            "alice",
            "--email",
            "alice@example.com",
            "--key-out",
        ])
        .arg(ca.keys.join("alice.key"))));
    ok(run(ca
        .cmd(T0)
        .args(["request", "carl", "--group", "pull", "--key-out"])
        .arg(ca.keys.join("carl.key"))));
    ca.openssl_csr("bob", "bob", &["rsa:1024"], &[]);
    ca.write("identities/bob.yaml", "users:\n  - name: bob\n");
    ca.commit("alice, carl, and bob with a weak key");
    let o = run(ca
        .cmd(T0)
        .args(["reconcile", "--identity"])
        .arg(&ca.identity));
    assert_eq!(o.status.code(), Some(3));
    let all = stdout(&o) + &stderr(&o);
    assert_eq!(all.matches("1024 bits is weak").count(), 1, "{all}");
    assert!(
        stdout(&o)
            .contains("bob  identities/bob.yaml:2  csr-refused (explained below, with the fix)"),
        "{all}"
    );
    assert!(stderr(&o).contains("generate a new key and CSR"), "{all}");
    // Reasons: new, email and groups changed, renamed.
    let y = ca
        .read("identities/alice.yaml")
        .replace("alice@example.com", "alice@example.org");
    ca.write("identities/alice.yaml", &y);
    let y = ca
        .read("identities/carl.yaml")
        .replace("[pull]", "[pull, push]");
    ca.write("identities/carl.yaml", &y);
    std::fs::remove_file(ca.path("identities/bob.yaml")).unwrap();
    ca.p256_csr("dora");
    ca.write("identities/dora.yaml", "users:\n  - name: dora\n");
    ca.commit("changes");
    let plan: serde_json::Value =
        serde_json::from_str(&stdout(&ok(run(ca.cmd(T0).args(["plan", "--json"]))))).unwrap();
    let mut codes = Vec::new();
    for a in plan["actions"].as_array().unwrap() {
        let code = a["reason"]["code"].as_str().unwrap();
        let detail = a["reason"]["detail"].as_str().unwrap().to_lowercase();
        let first_word = code.split('-').next().unwrap();
        assert!(
            !detail.starts_with(&code.replace('-', " ")) && !detail.starts_with(first_word),
            "{code}: {detail}"
        );
        codes.push(code.to_string());
    }
    codes.sort();
    assert_eq!(
        codes,
        ["email-changed", "groups-changed", "new-identity"],
        "{plan}"
    );
}

/// Issue 20, item 9: `export nginx` and `export registry` each have their own flags and help.
#[test]
fn export_nginx_and_registry_each_have_their_own_flags() {
    let help = |target: &str| stdout(&ok(run(gitca().args(["export", target, "--help"]))));
    let (nginx, registry) = (help("nginx"), help("registry"));
    for f in [
        "--upstream",
        "--crl",
        "--server-name",
        "--standalone",
        "--client-ca",
    ] {
        assert!(nginx.contains(f), "{f}\n{nginx}");
    }
    for f in ["--storage", "--behind-nginx", "--allow-delete"] {
        assert!(!nginx.contains(f), "{f}\n{nginx}");
        assert!(registry.contains(f), "{f}\n{registry}");
    }
    for f in ["--upstream", "--crl ", "--server-name", "--standalone"] {
        assert!(!registry.contains(f), "{f}\n{registry}");
    }
    let ca = Ca::new();
    let o = fails(run(ca.cmd(T0).args(["export", "nginx", "--storage", "/x"])));
    assert!(stderr(&o).contains("--storage"), "{}", stderr(&o));
    let conf = stdout(&ok(run(ca
        .cmd(T0)
        .args(["export", "nginx", "--listen", "8443"]))));
    assert!(conf.contains("listen \"8443\" ssl;"), "{conf}");
    let conf = stdout(&ok(run(ca.cmd(T0).args([
        "export",
        "registry",
        "--behind-nginx",
        "--listen",
        "127.0.0.1:5000",
    ]))));
    assert!(conf.contains("addr: \"127.0.0.1:5000\""), "{conf}");
}

/// Issue 20, item 9: the key is encrypted to recipients, so a passphrase can only be the
/// identity file's own: the hint names GITCA_IDENTITY_PASSPHRASE, not GITCA_PASSPHRASE.
#[test]
fn a_wrong_identity_is_told_the_identity_passphrase_variable() {
    let ca = Ca::new();
    let (other, _) = age_identity(ca.tmp.path(), "other");
    ca.p256_csr("erin");
    ca.identities("users:\n  - name: erin\n");
    ca.commit("erin");
    let o = fails(run(ca
        .cmd(T0)
        .args(["reconcile", "--identity"])
        .arg(&other)));
    let text = stderr(&o);
    assert!(text.contains("GITCA_IDENTITY_PASSPHRASE"), "{text}");
    assert!(!text.contains("reads GITCA_PASSPHRASE"), "{text}");
    assert!(text.contains(&ca.recipient[..20]), "{text}");
}

/// Issue 20, item 10: a registry whose server certificate comes from a private CA. doctor
/// --certs-dir no longer says "All is well" without judging it; with --server it finds what
/// skopeo would ("signed by unknown authority"), and the fix it gives (bundle --server-ca)
/// makes it trusted.
#[test]
fn doctor_says_what_it_did_not_judge_and_checks_the_server_certificate() {
    let ca = Ca::new();
    ok(run(ca
        .cmd(T0)
        .args(["request", "alice", "--key-out"])
        .arg(ca.keys.join("alice.key"))));
    ca.commit("alice");
    let w = ca.tmp.path();
    let o = |args: &[&str]| ok(tool("openssl", args, w));
    o(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=Registry Server CA",
        "-keyout",
        "server-ca.key",
        "-out",
        "server-ca.pem",
    ]);
    o(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(w.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    o(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "server-ca.pem",
        "-CAkey",
        "server-ca.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
    // The server certificate above was made by openssl with the real clock: so is the rest.
    let now = now_rfc3339();
    ok(ca.reconcile(&now));
    // s_server says ACCEPT once it listens (a port taken meanwhile makes it exit instead).
    let (mut server, port) = loop {
        let port = free_port();
        let mut child = std::process::Command::new("openssl")
            .args(["s_server", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-cert", "server.crt", "-key", "server.key"])
            .current_dir(w)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Read on a thread that keeps draining what s_server writes later.
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut told = false;
            for l in std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(Result::ok) {
                if !told && l.contains("ACCEPT") {
                    told = tx.send(true).is_ok();
                }
            }
            let _ = tx.send(false);
        });
        if rx.recv() == Ok(true) {
            break (child, port);
        }
        let _ = child.kill();
        let _ = child.wait();
    };
    let registry = format!("127.0.0.1:{port}");
    let root = w.join("certs.d");
    let bundle = |extra: &[&str]| {
        ok(run(ca
            .cmd(&now)
            .args(["bundle", "alice", "--key"])
            .arg(ca.keys.join("alice.key"))
            .args(["--registry", &registry, "--podman", "--certs-root"])
            .arg(&root)
            .args(extra)))
    };
    bundle(&[]);
    let dir = root.join(&registry);
    let doctor = |server: bool| {
        let mut c = ca.cmd(&now);
        c.args(["doctor", "--certs-dir"]).arg(&dir);
        if server {
            c.args(["--server", &registry]);
        }
        run(&mut c)
    };
    let out = doctor(false);
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(!said.contains("All is well"), "{said}");
    assert!(
        said.contains("not checked: the registry's server certificate")
            && said.contains("--server HOST:PORT")
            && said.contains("--server-ca FILE"),
        "{said}"
    );
    let out = doctor(true);
    let said = stdout(&out) + &stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("certificate signed by unknown authority"),
        "{said}"
    );
    let fix = suggested(&said, "gitca bundle");
    assert_eq!(fix.len(), 1, "{said}");
    assert!(fix[0].contains("--server-ca FILE"), "{}", fix[0]);
    // The fix, with the server's CA for FILE.
    bundle(&["--server-ca", w.join("server-ca.pem").to_str().unwrap()]);
    let out = doctor(true);
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("server certificate (CN=127.0.0.1) is trusted for 127.0.0.1")
            && said.contains("server-ca.crt")
            && said.contains("All is well"),
        "{said}"
    );
    let _ = server.kill();
    let _ = server.wait();
}
