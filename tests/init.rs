//! `gitca init` and the CA key's custody, checked with the real openssl, age and git.

mod common;

use common::*;

fn extensions_of(text: &str) -> Vec<String> {
    let start = text.find("X509v3 extensions:").expect("extensions section");
    let end = text[start..].find("Signature Algorithm").unwrap() + start;
    text[start..end]
        .lines()
        .skip(1)
        .filter(|l| {
            l.starts_with("            X509v3")
                || l.starts_with("            Authority")
                || l.starts_with("            Netscape")
        })
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn ca_certificate_carries_exactly_the_ca_extensions() {
    let ca = Ca::new();
    let text = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "ca/ca.crt",
        "-noout",
        "-text",
    ])));
    let mut ext = extensions_of(&text);
    ext.sort();
    assert_eq!(
        ext,
        [
            "X509v3 Basic Constraints: critical",
            "X509v3 Key Usage: critical",
            "X509v3 Subject Key Identifier:"
        ],
        "{text}"
    );
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(
        text.contains("Subject: O = Acme, CN = Test Registry CA"),
        "{text}"
    );
    assert!(
        text.contains("Not After : Dec 30 00:00:00 2035 GMT"),
        "ten years by default:\n{text}"
    );
    // A random positive serial of about 128 bits.
    let serial = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "ca/ca.crt",
        "-noout",
        "-serial",
    ])));
    let hex = serial.trim().trim_start_matches("serial=");
    assert!(hex.len() >= 18 && hex.len() <= 34, "serial {hex}");
    assert!(!text.contains("Negative"), "positive serial");
    ok(ca.openssl(&["verify", "-CAfile", "ca/ca.crt", "ca/ca.crt"]));
}

#[test]
fn empty_crl_is_signed_numbered_one_and_has_an_aki() {
    let ca = Ca::new();
    let o = ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-CAfile",
        "ca/ca.crt",
        "-noout",
        "-text",
    ]));
    let text = stdout(&o) + &stderr(&o);
    assert!(text.contains("verify OK"), "{text}");
    assert!(
        text.contains("X509v3 CRL Number: \n                1"),
        "{text}"
    );
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    assert!(text.contains("No Revoked Certificates"), "{text}");
    assert!(
        text.contains("Next Update: Jan  8 00:00:00 2026 GMT"),
        "crl.validity 7d:\n{text}"
    );
}

#[test]
fn init_makes_one_commit_with_every_file() {
    let ca = Ca::new();
    let log = git(&ca.root, &["log", "--format=%s"]);
    assert_eq!(log.trim(), "gitca: initialize Test Registry CA");
    let files = git(&ca.root, &["ls-files"]);
    for f in [
        ".gitignore",
        "gitca.yaml",
        "identities/people.yaml",
        "ca/ca.crt",
        "ca/ca.key.age",
        "ca/recipients.txt",
        "crl/ca.crl",
        "ledger.tsv",
        "schema/gitca.schema.json",
        "schema/identities.schema.json",
    ] {
        assert!(files.lines().any(|l| l == f), "{f} not committed:\n{files}");
    }
    assert_eq!(ca.status(), "", "the tree is clean after init");
    assert!(ca.read(".gitignore").lines().any(|l| l == "*.key"));
    assert!(ca.read("ca/recipients.txt").contains(&ca.recipient));
    assert!(ca
        .read("gitca.yaml")
        .starts_with("# yaml-language-server: $schema=schema/gitca.schema.json"));
    assert!(ca
        .read("identities/people.yaml")
        .starts_with("# yaml-language-server: $schema=../schema/identities.schema.json"));
    // The commit author falls back to gitca's own identity when git has none configured.
    let author = git(&ca.root, &["log", "--format=%an <%ae>"]);
    assert_eq!(author.trim(), "gitca <gitca@localhost>");
}

fn assert_age_key_matches_cert(ca: &Ca, decrypted: &[u8]) {
    let key = ca.tmp.path().join("decrypted.pem");
    std::fs::write(&key, decrypted).unwrap();
    let from_key = stdout(&ok(ca.openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
    ])));
    let from_cert = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "ca/ca.crt",
        "-noout",
        "-pubkey",
    ])));
    assert_eq!(from_key, from_cert);
    std::fs::remove_file(key).unwrap();
}

#[test]
fn age_cli_decrypts_the_ca_key_with_the_x25519_identity() {
    let ca = Ca::new();
    let armored = ca.read("ca/ca.key.age");
    assert!(
        armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"),
        "ASCII-armored"
    );
    let o = ok(tool(
        "age",
        &["-d", "-i", ca.identity.to_str().unwrap(), "ca/ca.key.age"],
        &ca.root,
    ));
    assert!(stdout(&o).starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_age_key_matches_cert(&ca, &o.stdout);
    // A different identity cannot.
    let (other, _) = age_identity(ca.tmp.path(), "stranger");
    assert!(!tool(
        "age",
        &["-d", "-i", other.to_str().unwrap(), "ca/ca.key.age"],
        &ca.root,
    )
    .status
    .success());
}

#[test]
fn ssh_ed25519_recipient_works_with_age_and_gitca() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("id_ed25519");
    ok(tool(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
        tmp.path(),
    ));
    let pubkey = std::fs::read_to_string(tmp.path().join("id_ed25519.pub")).unwrap();
    let root = tmp.path().join("ca");
    let init = ok(run(gitca().args([
        "init",
        "-C",
        root.to_str().unwrap(),
        "--name",
        "SSH CA",
        "--recipient",
        pubkey.trim(),
    ])));
    // The key is shown by the fingerprint ssh-keygen -l prints, which people compare.
    let l = ok(tool(
        "ssh-keygen",
        &[
            "-l",
            "-f",
            tmp.path().join("id_ed25519.pub").to_str().unwrap(),
        ],
        tmp.path(),
    ));
    let fp = stdout(&l).split_whitespace().nth(1).unwrap().to_string();
    assert!(fp.starts_with("SHA256:"), "{fp}");
    let shown = format!("{}{}", stdout(&init), stderr(&init));
    assert!(shown.contains(&format!("ssh-ed25519 {fp}")), "{shown}");
    let o = ok(tool(
        "age",
        &["-d", "-i", key.to_str().unwrap(), "ca/ca.key.age"],
        &root,
    ));
    assert!(stdout(&o).contains("BEGIN PRIVATE KEY"));
    let v = ok(run(gitca().args([
        "-C",
        root.to_str().unwrap(),
        "ca",
        "verify",
        "--identity",
        key.to_str().unwrap(),
    ])));
    assert!(stdout(&v).contains("matches ca/ca.crt"), "{}", stdout(&v));
}

#[test]
fn passphrase_custody_round_trips_through_the_age_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ca");
    ok(run(gitca()
        .args([
            "init",
            "-C",
            root.to_str().unwrap(),
            "--name",
            "Pass CA",
            "--passphrase",
        ])
        .env("GITCA_PASSPHRASE", "correct horse battery staple")));
    assert!(std::fs::read_to_string(root.join("ca/recipients.txt"))
        .unwrap()
        .contains("passphrase"));
    // The age CLI reads passphrases from a terminal only: give it one with script(1).
    require("script");
    let out = tmp.path().join("key.pem");
    let cmd = format!(
        "age -d -o {} {}",
        out.display(),
        root.join("ca/ca.key.age").display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        stdin.write_all(b"correct horse battery staple\n").unwrap();
    }
    assert!(child.wait().unwrap().success());
    let pem = std::fs::read_to_string(&out).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    // gitca unlocks it from GITCA_PASSPHRASE, and refuses a wrong one.
    ok(run(gitca()
        .args(["-C", root.to_str().unwrap(), "ca", "verify"])
        .env("GITCA_PASSPHRASE", "correct horse battery staple")));
    let bad = fails(run(gitca()
        .args(["-C", root.to_str().unwrap(), "ca", "verify"])
        .env("GITCA_PASSPHRASE", "wrong")));
    assert!(
        stderr(&bad).contains("wrong passphrase"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn no_private_key_in_tree_or_history() {
    let ca = Ca::new();
    let history = git(&ca.root, &["log", "--all", "-p", "--format="]);
    assert!(history.contains("BEGIN AGE ENCRYPTED FILE"));
    assert!(
        !history.contains("PRIVATE KEY-----"),
        "history holds a private key"
    );
    for (path, bytes) in ca.snapshot() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("PRIVATE KEY-----"),
            "{path} holds a private key"
        );
        assert!(
            !text.contains("AGE-SECRET-KEY"),
            "{path} holds an age identity"
        );
    }
}

#[test]
fn second_init_is_refused_and_changes_nothing() {
    let ca = Ca::new();
    let head = ca.head();
    let before = ca.snapshot();
    let o = fails(run(gitca().args([
        "init",
        "-C",
        ca.root.to_str().unwrap(),
        "--name",
        "Again",
        "--recipient",
        &ca.recipient,
    ])));
    assert!(
        stderr(&o).contains("already a gitca CA repository"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ca.head(), head);
    assert_eq!(ca.status(), "");
    assert_eq!(ca.snapshot(), before);
}

#[test]
fn ca_verify_unlocks_from_the_identity_text_and_lists_recipients_when_wrong() {
    let ca = Ca::new();
    let text = std::fs::read_to_string(&ca.identity).unwrap();
    let o = ok(run(ca
        .cmd(T0)
        .args(["ca", "verify"])
        .env("GITCA_IDENTITY", &text)));
    let out = stdout(&o);
    assert!(
        out.contains("matches ca/ca.crt") && out.contains("SHA-256"),
        "{out}"
    );
    assert!(
        !out.contains("PRIVATE") && !out.contains("AGE-SECRET"),
        "prints nothing secret"
    );

    let (other, _) = age_identity(ca.tmp.path(), "stranger");
    let o = fails(run(ca.cmd(T0).args([
        "ca",
        "verify",
        "--identity",
        other.to_str().unwrap(),
    ])));
    let err = stderr(&o);
    assert!(err.contains("not one the key is encrypted to"), "{err}");
    assert!(err.contains(&ca.recipient), "lists the recipients: {err}");
    assert!(
        err.contains("GITCA_IDENTITY"),
        "says how to pass one: {err}"
    );

    let o = fails(run(ca.cmd(T0).args(["ca", "verify"])));
    assert!(
        stderr(&o).contains("no age identity was given"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn rsa4096_and_p384_cas_issue_verifiable_certificates() {
    for (kt, sig) in [
        ("rsa4096", "sha256WithRSAEncryption"),
        ("p384", "ecdsa-with-SHA384"),
        ("rsa3072", "sha256WithRSAEncryption"),
    ] {
        let ca = Ca::with_key_type(kt);
        let text = stdout(&ok(ca.openssl(&[
            "x509",
            "-in",
            "ca/ca.crt",
            "-noout",
            "-text",
        ])));
        assert!(text.contains(sig), "{kt}: {text}");
        ok(ca.openssl(&["crl", "-in", "crl/ca.crl", "-CAfile", "ca/ca.crt", "-noout"]));
        ca.p256_csr("alice");
        ca.identities("users:\n  - name: alice\n    csr: csr/alice.csr\n");
        ca.commit("alice");
        ok(ca.reconcile(T0));
        let o = ok(ca.openssl(&[
            "verify",
            "-attime",
            &epoch(T0),
            "-CAfile",
            "ca/ca.crt",
            "certs/alice.crt",
        ]));
        assert!(stdout(&o).contains("OK"), "{kt}");
        ok(ca.verify_crl(&ca.path("certs/alice.crt"), T0));
    }
}

fn assert_refused(args: &[&str], expect: &str, dir: &std::path::Path) {
    let before = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let o = fails(run(gitca().args(args)));
    let err = stderr(&o);
    assert!(err.contains(expect), "expected `{expect}` in:\n{err}");
    assert!(err.contains("help:"), "a help line:\n{err}");
    let after = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(before, after, "nothing written for {args:?}");
}

#[test]
fn bad_init_input_is_refused_with_a_diagnostic_and_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, r) = age_identity(tmp.path(), "k");
    let ca = tmp.path().join("ca");
    let ca_s = ca.to_str().unwrap();
    assert_refused(
        &[
            "init",
            "-C",
            ca_s,
            "--name",
            "X",
            "--key-type",
            "dsa1024",
            "--recipient",
            &r,
        ],
        "unknown key type",
        tmp.path(),
    );
    assert_refused(
        &[
            "init",
            "-C",
            ca_s,
            "--name",
            "X",
            "--recipient",
            "age1notakey",
        ],
        "is not an age recipient",
        tmp.path(),
    );
    assert_refused(
        &[
            "init",
            "-C",
            ca_s,
            "--name",
            "X",
            "--recipient",
            "AGE-SECRET-KEY-1XYZ",
        ],
        "private key, not a recipient",
        tmp.path(),
    );
    assert_refused(
        &[
            "init",
            "-C",
            ca_s,
            "--name",
            "X",
            "--recipients-file",
            "/nonexistent/r.txt",
        ],
        "cannot read the recipients file",
        tmp.path(),
    );
    let rf = tmp.path().join("recipients.txt");
    std::fs::write(&rf, format!("# custodians\n{r}\nssh-ed25519 garbage\n")).unwrap();
    assert_refused(
        &[
            "init",
            "-C",
            ca_s,
            "--name",
            "X",
            "--recipients-file",
            rf.to_str().unwrap(),
        ],
        "not an age recipient",
        tmp.path(),
    );
    assert_refused(
        &["init", "-C", ca_s, "--name", "X"],
        "no recipients",
        tmp.path(),
    );
    assert_refused(
        &[
            "init",
            "-C",
            ca_s,
            "--name",
            "X",
            "--recipient",
            &r,
            "--validity",
            "ten years",
        ],
        "invalid duration",
        tmp.path(),
    );
    let o = fails(run(gitca()
        .args(["init", "-C", ca_s, "--name", "X", "--passphrase"])
        .env("GITCA_PASSPHRASE", "")));
    assert!(stderr(&o).contains("passphrase is empty"), "{}", stderr(&o));
    assert!(!ca.exists());

    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert_refused(
        &[
            "init",
            "-C",
            file.to_str().unwrap(),
            "--name",
            "X",
            "--recipient",
            &r,
        ],
        "is a file",
        tmp.path(),
    );
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    assert_refused(
        &[
            "init",
            "-C",
            busy.to_str().unwrap(),
            "--name",
            "X",
            "--recipient",
            &r,
        ],
        "is not empty",
        &busy,
    );

    // A recipients file with comments and several keys works.
    let (_, r2) = age_identity(tmp.path(), "k2");
    std::fs::write(&rf, format!("# custodians\n{r}\n\n{r2}\n")).unwrap();
    ok(run(gitca().args([
        "init",
        "-C",
        ca_s,
        "--name",
        "X",
        "--recipients-file",
        rf.to_str().unwrap(),
    ])));
    let listed = std::fs::read_to_string(ca.join("ca/recipients.txt")).unwrap();
    assert!(listed.contains(&r) && listed.contains(&r2));
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        "init",
        "check",
        "plan",
        "reconcile",
        "status",
        "request",
        "bundle",
        "doctor",
        "export",
    ] {
        let o = ok(run(gitca().args([cmd, "--help"])));
        assert!(
            stdout(&o).contains("Example"),
            "{cmd} --help has no example:\n{}",
            stdout(&o)
        );
    }
    let o = ok(run(gitca().arg("--help")));
    assert!(stdout(&o).contains("Exit codes"));
}

/// A passphrase together with recipients is refused with the custody that does both (age
/// encrypts to recipients or to one passphrase); nothing is created. The same init without
/// the passphrase works.
#[test]
fn a_passphrase_with_recipients_is_refused_with_the_custody_that_works() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, recipient) = age_identity(tmp.path(), "ci");
    let root = tmp.path().join("ca");
    let o = fails(run(gitca()
        .args([
            "init",
            "-C",
            root.to_str().unwrap(),
            "--name",
            "X",
            "--passphrase",
        ])
        .args(["--recipient", &recipient])
        .env("GITCA_PASSPHRASE", "correct horse battery staple")));
    assert!(stderr(&o).contains("never both"), "{}", stderr(&o));
    assert!(stderr(&o).contains("age -p"), "{}", stderr(&o));
    assert!(!root.join("gitca.yaml").exists());
    ok(run(gitca()
        .args(["init", "-C", root.to_str().unwrap(), "--name", "X"])
        .args(["--recipient", &recipient])));
}
