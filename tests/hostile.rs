//! A hostile pull request, and a hostile tree: links planted where gitca reads or writes,
//! special files, huge files, and secrets in the environment that must never reach the output.
//! Each reproduction of issue 12's first two classes, plus instances of our own.

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Output;

use common::*;

fn all_output(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// A CA with alice declared and issued, so there are certificates, a ledger and a CRL.
fn issued_ca() -> Ca {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n    groups: [push]\n");
    ca.commit("alice");
    ok(ca.reconcile(T0));
    ca
}

#[test]
fn reconcile_never_writes_through_a_planted_temporary_name() {
    let ca = issued_ca();
    let outside = ca.tmp.path().join("outside");
    std::fs::write(&outside, "precious\n").unwrap();
    // Links under every name the previous versions used for their temporary files, at the root
    // (where `check --base` looks at nothing) and in the output directories.
    for link in [
        ".ledger.tsv.gitca-tmp",
        "certs/.alice.crt.gitca-tmp",
        "certs/.bob.crt.gitca-tmp",
        "crl/.ca.crl.gitca-tmp",
    ] {
        symlink(&outside, ca.path(link)).unwrap();
    }
    ca.p256_csr("bob");
    ca.identities("users:\n  - name: alice\n    groups: [push]\n  - name: bob\n");
    ca.commit("bob, and links");
    // The pull request's check names the links.
    let o = fails(run(ca.cmd(T0).args(["check"])));
    for link in [".ledger.tsv.gitca-tmp", "certs/.alice.crt.gitca-tmp"] {
        assert!(
            stdout(&o).contains(&format!("{link}: tracked as a symbolic link")),
            "{}",
            stdout(&o)
        );
    }
    // Merged anyway: reconcile issues bob and never touches the outside file. The links under
    // certs/ are edits of an output: removed, and the run asks a person to look (exit 3).
    let o = ca.reconcile(&days_after(T0, 1));
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious\n");
    for link in ["certs/.alice.crt.gitca-tmp", "certs/.bob.crt.gitca-tmp"] {
        assert!(
            std::fs::symlink_metadata(ca.path(link)).is_err(),
            "{link} stays"
        );
    }
    for f in ["ledger.tsv", "certs/bob.crt"] {
        let m = std::fs::symlink_metadata(ca.path(f)).unwrap();
        assert!(m.file_type().is_file(), "{f} is a regular file");
        assert_eq!(m.permissions().mode() & 0o777, 0o644, "{f}");
    }
    assert!(ca.read("ledger.tsv").contains("\tbob\t"));
}

#[test]
fn request_never_writes_through_a_planted_temporary_name() {
    let ca = Ca::new();
    let outside = ca.tmp.path().join("outside");
    std::fs::write(&outside, "precious\n").unwrap();
    symlink(&outside, ca.path("identities/.carol.yaml.gitca-tmp")).unwrap();
    std::fs::create_dir_all(ca.path("csr")).unwrap();
    symlink(&outside, ca.path("csr/.carol.csr.gitca-tmp")).unwrap();
    ca.commit("links");
    let key = ca.keys.join("carol.key");
    ok(run(ca
        .cmd(T0)
        .args(["request", "carol", "--key-out"])
        .arg(&key)));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious\n");
    assert!(ca.read("identities/carol.yaml").contains("name: carol"));
    assert!(std::fs::symlink_metadata(ca.path("identities/carol.yaml"))
        .unwrap()
        .is_file());
    assert!(ca.read("csr/carol.csr").contains("CERTIFICATE REQUEST"));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn request_refuses_a_linked_identities_file_and_leaves_no_key() {
    let ca = Ca::new();
    let outside = ca.tmp.path().join("elsewhere.yaml");
    std::fs::write(&outside, "users: []\n").unwrap();
    std::fs::remove_file(ca.path("identities/people.yaml")).unwrap();
    symlink(&outside, ca.path("identities/people.yaml")).unwrap();
    let key = ca.keys.join("dave.key");
    let o = fails(run(ca
        .cmd(T0)
        .args(["request", "dave", "--key-out"])
        .arg(&key)));
    assert!(
        stderr(&o).contains("identities/people.yaml is a symbolic link"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "users: []\n");
    assert!(!key.exists(), "no key left behind");
    assert!(!ca.path("csr/dave.csr").exists());
}

#[test]
fn bundle_keeps_the_promised_mode_whatever_was_planted_in_the_output_directory() {
    let ca = issued_ca();
    let out = ca.tmp.path().join("certs.d/reg.example:5000");
    std::fs::create_dir_all(&out).unwrap();
    let outside = ca.tmp.path().join("outside");
    std::fs::write(&outside, "precious\n").unwrap();
    // A pre-created world-readable temporary file, and links under the final names.
    std::fs::write(out.join(".client.key.gitca-tmp"), "").unwrap();
    std::fs::set_permissions(
        out.join(".client.key.gitca-tmp"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    symlink(&outside, out.join("client.key")).unwrap();
    symlink(&outside, out.join("client.cert")).unwrap();
    let o = ok(run(ca
        .cmd(T0)
        .args(["bundle", "alice", "--key"])
        .arg(ca.keys.join("alice.key"))
        .arg("--out-dir")
        .arg(&out)));
    assert!(stdout(&o).contains("0600"));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious\n");
    let key = std::fs::symlink_metadata(out.join("client.key")).unwrap();
    assert!(key.file_type().is_file());
    assert_eq!(
        key.permissions().mode() & 0o777,
        0o600,
        "client.key is 0600"
    );
    assert!(std::fs::symlink_metadata(out.join("client.cert"))
        .unwrap()
        .file_type()
        .is_file());
    // A link on the way into the output directory, planted in a directory others may write.
    let shared = ca.tmp.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim = ca.tmp.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    symlink(&victim, shared.join("out")).unwrap();
    let o = fails(run(ca
        .cmd(T0)
        .args(["bundle", "alice", "--key"])
        .arg(ca.keys.join("alice.key"))
        .arg("--out-dir")
        .arg(shared.join("out"))));
    assert!(
        stderr(&o).contains("symbolic link another user could have planted"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
}

/// Every input, replaced by a link to the process's own environment: refused by name, nothing
/// of the target printed.
#[test]
fn linked_inputs_are_refused_and_never_echoed() {
    for rel in ["gitca.yaml", "identities/people.yaml", "ca/ca.crt"] {
        let ca = issued_ca();
        std::fs::remove_file(ca.path(rel)).unwrap();
        symlink("/proc/self/environ", ca.path(rel)).unwrap();
        ca.commit("link");
        for args in [
            vec!["check"],
            vec!["plan"],
            vec!["status"],
            vec!["reconcile", "--identity", ca.identity.to_str().unwrap()],
        ] {
            let o = run(ca
                .cmd(&days_after(T0, 6))
                .args(&args)
                .env("CANARY_PLAIN", "canary-from-the-environment"));
            let all = all_output(&o);
            assert!(
                !all.contains("canary-from-the-environment"),
                "{rel} / {args:?} printed the environment:\n{all}"
            );
            assert!(
                all.contains(&format!("{rel} is a symbolic link"))
                    || all.contains(&format!("{rel}: tracked as a symbolic link")),
                "{rel} / {args:?}: the link is named:\n{all}"
            );
            assert_ne!(o.status.code(), Some(0), "{rel} / {args:?}");
        }
    }
}

/// gitca's own outputs replaced by links (to the environment, or to a file the runner would
/// let it overwrite): never read, never written through; reconcile puts the sealed files back.
#[test]
fn linked_outputs_are_replaced_by_the_sealed_files() {
    for rel in ["ledger.tsv", "crl/ca.crl", "ledger.sig"] {
        let ca = issued_ca();
        let sealed = ca.read(rel);
        let victim = ca.tmp.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        std::fs::remove_file(ca.path(rel)).unwrap();
        symlink(&victim, ca.path(rel)).unwrap();
        ca.commit("link");
        let o = fails(run(ca.cmd(T0).arg("check")));
        assert!(stdout(&o).contains("ledger.sig: "), "{rel}: {}", stdout(&o));
        let o = ok(run(ca.cmd(T0).arg("plan")));
        assert!(stdout(&o).contains("restore"), "{rel}: {}", stdout(&o));
        let o = run(ca
            .cmd(T0)
            .args(["reconcile", "--identity", ca.identity.to_str().unwrap()])
            .env("CANARY_PLAIN", "canary-from-the-environment"));
        assert!(!all_output(&o).contains("canary-from-the-environment"));
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "precious\n",
            "{rel}"
        );
        assert!(
            std::fs::symlink_metadata(ca.path(rel)).unwrap().is_file(),
            "{rel}"
        );
        if rel != "ledger.sig" {
            assert_eq!(ca.read(rel), sealed, "{rel}: the sealed file is back");
        }
        ok(run(ca.cmd(T0).arg("check")));
    }
}

#[test]
fn a_linked_identities_directory_is_refused() {
    let ca = Ca::new();
    let elsewhere = ca.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("x.yaml"), "users:\n  - name: secret-x\n").unwrap();
    std::fs::remove_dir_all(ca.path("identities")).unwrap();
    symlink(&elsewhere, ca.path("identities")).unwrap();
    ca.commit("linked dir");
    for cmd in ["check", "plan"] {
        let o = fails(run(ca.cmd(T0).arg(cmd)));
        let all = all_output(&o);
        assert!(all.contains("identities is a symbolic link"), "{all}");
        assert!(!all.contains("secret-x"), "{all}");
    }
}

#[test]
fn check_refuses_links_and_submodules_tracked_anywhere() {
    let ca = issued_ca();
    assert_eq!(ok(run(ca.cmd(T0).arg("check"))).status.code(), Some(0));
    std::fs::create_dir_all(ca.path("docs")).unwrap();
    symlink("/etc/hostname", ca.path("docs/notes.md")).unwrap();
    symlink("../identities", ca.path("docs/inside")).unwrap();
    ca.commit("links");
    // A gitlink (submodule entry) in the index.
    let sub = git(&ca.root, &["rev-parse", "HEAD"]);
    git(
        &ca.root,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{},vendor/lib", sub.trim()),
        ],
    );
    git(&ca.root, &["commit", "-qm", "submodule"]);
    let o = fails(run(ca.cmd(T0).arg("check")));
    let out = stdout(&o);
    assert!(
        out.contains("docs/notes.md: tracked as a symbolic link"),
        "{out}"
    );
    assert!(
        out.contains("docs/inside: tracked as a symbolic link"),
        "{out}"
    );
    assert!(out.contains("vendor/lib: tracked as a submodule"), "{out}");
}

#[test]
fn huge_and_special_files_are_refused_before_they_are_read() {
    let ca = issued_ca();
    // A 300 MB gitca.yaml (sparse: it costs no disk), refused from its size alone.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(ca.path("gitca.yaml"))
        .unwrap();
    f.set_len(300 << 20).unwrap();
    drop(f);
    let o = fails(run(ca.cmd(T0).arg("plan").env("GITCA_TIMINGS", "1")));
    assert!(
        stderr(&o).contains("gitca.yaml is 314572800 bytes, more than the 1048576 gitca reads"),
        "{}",
        stderr(&o)
    );
    let rss: u64 = stderr(&o)
        .lines()
        .find_map(|l| l.strip_prefix("gitca peak RSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .expect("peak RSS printed");
    assert!(rss < 64 * 1024, "the file was not read: {rss} kB");
    git(&ca.root, &["checkout", "--", "gitca.yaml"]);
    // A FIFO where a CSR belongs: refused at once, no hang.
    std::fs::remove_file(ca.path("csr/alice.csr")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(ca.path("csr/alice.csr"))
        .status()
        .unwrap();
    assert!(status.success());
    let o = fails(run(ca.cmd(T0).arg("check")));
    assert!(
        stdout(&o).contains("csr/alice.csr: not a regular file"),
        "{}",
        stdout(&o)
    );
}

/// The canary: the real age identity in GITCA_IDENTITY (as CI holds it), passphrases in every
/// variable gitca reads, a tree full of links to the process's environment, and every command.
/// Nothing printed may contain any of the secrets.
#[test]
fn no_command_ever_prints_a_secret_whatever_the_tree() {
    let ca = issued_ca();
    let identity_text = std::fs::read_to_string(&ca.identity).unwrap();
    let secret_line = identity_text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_string();
    let passphrase = "canary-passphrase-0123456789";
    // A real history signing key (ssh-keygen), as CI holds it: its body lines are secrets too.
    let signing = ca.tmp.path().join("signing.key");
    ok(tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            signing.to_str().unwrap(),
        ],
        ca.tmp.path(),
    ));
    let signing_text = std::fs::read_to_string(&signing).unwrap();
    let signing_line = signing_text.lines().nth(1).unwrap().to_string();
    let env = |c: &mut std::process::Command| {
        c.env("GITCA_SIGNING_KEY", &signing_text)
            .env("GITCA_IDENTITY", &identity_text)
            .env("GITCA_PASSPHRASE", passphrase)
            .env("GITCA_NEW_PASSPHRASE", passphrase)
            .env("GITCA_IMPORT_PASSPHRASE", passphrase)
            .env("GITCA_P12_PASSWORD", passphrase)
            .env("CANARY_PLAIN", "canary-from-the-environment");
    };
    // The hostile tree: links to the environment wherever gitca might read.
    let environ = Path::new("/proc/self/environ");
    for rel in [
        "csr/evil.csr",
        "identities/evil.yaml",
        "ca/recipients.txt",
        "ca/allowed_signers",
        "certs/evil.crt",
        "schema/x.json",
    ] {
        let p = ca.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&p);
        symlink(environ, &p).unwrap();
    }
    // An identities file that quotes a secret key as a name, and a CSR that holds one.
    ca.write(
        "identities/quoted.yaml",
        &format!("users:\n  - name: \"{secret_line}\"\n"),
    );
    ca.commit("hostile tree");
    let later = days_after(T0, 5);
    let key = ca.keys.join("alice.key");
    let out_dir = ca.tmp.path().join("bundle");
    let ca_root = ca.root.to_str().unwrap().to_string();
    let runs: Vec<Vec<String>> = vec![
        vec!["check".into()],
        vec!["check".into(), "--json".into()],
        vec!["plan".into()],
        vec!["plan".into(), "--json".into()],
        vec!["plan".into(), "--markdown".into()],
        vec!["status".into(), "--json".into()],
        vec!["reconcile".into()],
        vec!["ca".into(), "verify".into()],
        vec!["request".into(), "mallory".into()],
        vec![
            "bundle".into(),
            "alice".into(),
            "--key".into(),
            key.display().to_string(),
            "--out-dir".into(),
            out_dir.display().to_string(),
        ],
        vec![
            "doctor".into(),
            "--cert".into(),
            "certs/alice.crt".into(),
            "--key".into(),
            key.display().to_string(),
        ],
        vec![
            "doctor".into(),
            "--cert".into(),
            "/proc/self/environ".into(),
            "--key".into(),
            "/proc/self/environ".into(),
        ],
        vec!["export".into(), "nginx".into()],
        vec!["export".into(), "registry".into()],
        vec!["rekey".into(), "--recipient".into(), secret_line.clone()],
        vec!["rekey".into(), "--recipient".into(), ca.recipient.clone()],
        vec![
            "init".into(),
            "-C".into(),
            format!("{ca_root}/../new"),
            "--name".into(),
            "x".into(),
            "--recipient".into(),
            secret_line.clone(),
        ],
        vec![
            "init".into(),
            "-C".into(),
            format!("{ca_root}/../new2"),
            "--name".into(),
            "x".into(),
            "--passphrase".into(),
        ],
        vec![
            "import-openssl".into(),
            "/proc/self".into(),
            "-C".into(),
            format!("{ca_root}/../imp"),
            "--recipient".into(),
            ca.recipient.clone(),
        ],
        vec![
            "reconcile".into(),
            "--identity".into(),
            "/proc/self/environ".into(),
        ],
        vec!["--bogus-flag".into(), secret_line.clone()],
        vec!["audit".into()],
        vec!["audit".into(), "--json".into()],
        vec![
            "publish".into(),
            ca.tmp.path().join("public").display().to_string(),
        ],
        vec![
            "deploy".into(),
            "admission".into(),
            "--from".into(),
            "/proc/self".into(),
            "--signers".into(),
            "/proc/self/environ".into(),
            "--out".into(),
            ca.tmp.path().join("admitted.map").display().to_string(),
        ],
        vec![
            "--signing-key".into(),
            "/proc/self/environ".into(),
            "reconcile".into(),
        ],
    ];
    for args in runs {
        let mut c = ca.cmd(&later);
        c.current_dir(&ca.root).args(&args);
        env(&mut c);
        let o = run(&mut c);
        let all = all_output(&o);
        for secret in [
            secret_line.as_str(),
            &secret_line[20..50],
            signing_line.as_str(),
            passphrase,
            "canary-from-the-environment",
        ] {
            assert!(
                !all.contains(secret),
                "`gitca {}` printed a secret ({secret}):\n{all}",
                args.join(" ")
            );
        }
        assert_ne!(o.status.code(), Some(101), "no panic: {args:?}\n{all}");
    }
}

#[test]
fn check_finds_private_keys_in_every_shape() {
    let ca = issued_ca();
    ok(run(ca.cmd(T0).arg("check")));
    let key = ca.keys.join("alice.key");
    let k = key.to_str().unwrap();
    // DER PKCS#8, PKCS#12 (as `openssl pkcs12 -export` writes it), PKCS#1 DER, a JWK, and a
    // key pasted as bare base64 into a text file.
    std::fs::create_dir_all(ca.path("docs")).unwrap();
    ok(ca.openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        k,
        "-outform",
        "DER",
        "-out",
        "docs/a.der",
    ]));
    ok(ca.openssl(&[
        "pkcs12",
        "-export",
        "-inkey",
        k,
        "-in",
        "certs/alice.crt",
        "-passout",
        "pass:x",
        "-out",
        "docs/alice.p12",
    ]));
    ok(ca.openssl(&["genrsa", "-traditional", "-out", "rsa.pem", "2048"]));
    ok(ca.openssl(&[
        "rsa",
        "-in",
        "rsa.pem",
        "-traditional",
        "-outform",
        "DER",
        "-out",
        "docs/rsa.bin",
    ]));
    std::fs::remove_file(ca.path("rsa.pem")).unwrap();
    ca.write(
        "docs/key.jwk",
        r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "d": "jpsQnnGQmL-YBIffH1136cLyN_2aW3PNYTp3HS6-HzE"}]}"#,
    );
    let der = std::fs::read(ca.path("docs/a.der")).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    ca.write(
        "docs/notes.txt",
        &format!("the key, just in case:\n{b64}\n"),
    );
    let o = fails(run(ca.cmd(T0).arg("check")));
    let out = stdout(&o);
    for (file, kind) in [
        ("docs/a.der", "PKCS#8"),
        ("docs/alice.p12", "PKCS#12"),
        ("docs/rsa.bin", "PKCS#1"),
        ("docs/key.jwk", "JSON Web Key"),
        ("docs/notes.txt", "base64"),
    ] {
        assert!(
            out.contains(file) && out.contains(kind),
            "{file} ({kind}):\n{out}"
        );
    }
    assert!(out.contains("docs/notes.txt: line 2"), "{out}");
}

/// A file name (or anything else from the repository) cannot forge rows of the markdown plan
/// a pull-request comment shows.
#[test]
fn markdown_plan_cannot_be_forged_by_file_names() {
    let ca = issued_ca();
    // A line break in the name would end the row and start new ones: refused outright.
    let evil = "identities/x\n| mallory | user | **issue** | new | 2099-01-01 | looks fine |\n<img src=x>`|.yaml";
    std::fs::remove_file(ca.path("identities/people.yaml")).unwrap();
    let entry = "users:\n  - name: alice\n    groups: [push]\n    revoke: superseded\n";
    ca.write(evil, entry);
    git(&ca.root, &["add", "-A"]);
    git(&ca.root, &["commit", "-qm", "evil name"]);
    // A line break in the name: the file is not read (removals suspended), check fails, and
    // the name, shown escaped, starts no row.
    let o = run(ca.cmd(T0).args(["plan", "--markdown"]));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("removals"), "{all}");
    assert!(!all.lines().any(|l| l.starts_with("| mallory")), "{all}");
    let o = fails(run(ca.cmd(T0).arg("check")));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("control or invisible character"), "{all}");
    // Without a line break the name stays in its cell, its markup inert.
    git(&ca.root, &["rm", "-q", evil]);
    let evil = "identities/x | mallory | user | **issue** | new | <img src=x>`|.yaml";
    ca.write(evil, entry);
    git(&ca.root, &["add", "-A"]);
    git(&ca.root, &["commit", "-qm", "markup name"]);
    let o = ok(run(ca.cmd(T0).args(["plan", "--markdown"])));
    let md = stdout(&o);
    assert!(
        md.contains("explicit\\-revocation") || md.contains("explicit-revocation"),
        "{md}"
    );
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(
        rows.len(),
        2 + 2,
        "header, rule, alice's revocation, the CRL:\n{md}"
    );
    assert!(!md.lines().any(|l| l.starts_with("| mallory")), "{md}");
    assert!(!md.replace("\\<", "").contains('<'), "no raw HTML: {md}");
    assert!(!md.contains("**issue**"), "no raw emphasis: {md}");
}

#[test]
fn policy_changes_are_shown_field_by_field_and_bounded() {
    let ca = issued_ca();
    let base = ca.head();
    let text = ca
        .read("gitca.yaml")
        .replace("validity: 7d", "validity: 10d")
        .replacen(
            "extended_key_usage: [client_auth]",
            "extended_key_usage: [client_auth, server_auth, code_signing]",
            1,
        );
    ca.write("gitca.yaml", &text);
    ca.commit("policy");
    let o = ok(run(ca.cmd(T0).args(["check", "--base", &base])));
    let out = stdout(&o);
    assert!(out.contains("crl.validity 7d → 10d"), "{out}");
    assert!(
        out.contains("profile user: + server_auth, + code_signing"),
        "{out}"
    );
    let o = ok(run(ca.cmd(T0).args([
        "plan",
        "--markdown",
        "--base",
        &base,
    ])));
    assert!(stdout(&o).contains("**Policy change**"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("crl.validity 7d → 10d"),
        "{}",
        stdout(&o)
    );
    // Out of bounds: a CRL valid for 100 years is refused with file and line.
    ca.write(
        "gitca.yaml",
        &text.replace("validity: 10d", "validity: 100y"),
    );
    let o = fails(run(ca.cmd(T0).arg("check")));
    assert!(
        stdout(&o).contains("crl.validity 36500d is outside 1h to 10d"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("gitca.yaml:"), "{}", stdout(&o));
}

/// A file gitca does not understand as a whole (flow style broken mid-way, UTF-16 without a
/// byte-order mark) may declare names no line-by-line reading finds: nobody is revoked as
/// removed until it parses. A real removal, once it does, revokes.
#[test]
fn a_file_not_understood_revokes_nobody() {
    let ca = Ca::new();
    for n in ["alice", "bob"] {
        ca.p256_csr(n);
    }
    let team = "users:\n  - name: alice\n  - name: bob\n";
    ca.write("identities/team.yaml", team);
    ca.commit("onboard");
    ok(ca.reconcile(T0));
    let revoked = |ca: &Ca| {
        ca.ledger_rows()
            .iter()
            .filter(|r| r.iter().any(|c| c == "revoked"))
            .count()
    };
    let utf16: Vec<u8> = team.bytes().flat_map(|b| [b, 0]).collect();
    let flow = b"{users: [{name: alice}, {name: bob}".to_vec();
    for (what, bytes) in [("flow style", flow), ("UTF-16", utf16)] {
        std::fs::write(ca.path("identities/team.yaml"), bytes).unwrap();
        ca.commit(what);
        let o = ca.reconcile(&days_after(T0, 1));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!o.status.success(), "{what}: {all}");
        assert_eq!(revoked(&ca), 0, "{what}: nobody revoked\n{all}");
        assert!(
            all.contains("removals-suspended") || all.contains("no certificate is revoked"),
            "{what}: {all}"
        );
        ca.write("identities/team.yaml", team);
        ca.commit("restore");
    }
    ca.write("identities/team.yaml", "users:\n  - name: alice\n");
    ca.commit("offboard bob");
    ok(ca.reconcile(&days_after(T0, 2)));
    assert_eq!(revoked(&ca), 1, "bob's removal revokes");
}

/// A `.gitattributes` anywhere makes git rewrite gitca's files on every later checkout (CI's
/// too): check refuses it, naming the file; without it, check passes.
#[test]
fn git_attributes_are_refused_by_check() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    ca.commit("onboard");
    ok(run(ca.cmd(T0).arg("check")));
    for at in [".gitattributes", "docs/.gitattributes"] {
        ca.write(at, "identities/*.yaml text eol=crlf\n");
        ca.commit("normalize encodings");
        let o = fails(run(ca.cmd(T0).arg("check")));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(all.contains(at) && all.contains("git attributes"), "{all}");
        git(&ca.root, &["rm", "-q", at]);
        ca.commit("remove");
        ok(run(ca.cmd(T0).arg("check")));
    }
    // A file named like gitca's temporary files is skipped where gitca reads: tracked, it
    // would hide whom it declares.
    let hidden = "identities/.alice.yaml.0123.gitca-tmp";
    git(&ca.root, &["mv", "identities/people.yaml", hidden]);
    ca.commit("hide");
    let o = fails(run(ca.cmd(T0).arg("check")));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("gitca temporary file"), "{all}");
}

/// The CRL's number, from openssl.
fn crl_number(ca: &Ca) -> u64 {
    let crl = ca.path("crl/ca.crl");
    let o = ok(ca.openssl(&["crl", "-in", crl.to_str().unwrap(), "-noout", "-crlnumber"]));
    let hex = stdout(&o)
        .trim()
        .trim_start_matches("crlNumber=0x")
        .to_string();
    u64::from_str_radix(&hex, 16).unwrap_or_else(|_| panic!("crl number: {}", stdout(&o)))
}

/// An entry under identities/ that gitca does not read (a trailing space, another case of the
/// extension, a hidden name, a folder) may declare anyone: check fails naming it, and reconcile
/// revokes nobody as removed (exit 3) while keeping the CRL fresh. Put back, nothing is lost.
#[test]
fn an_identity_file_gitca_does_not_read_revokes_nobody() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.write("identities/alice.yaml", "users:\n  - name: alice\n");
    ca.commit("onboard");
    ok(ca.reconcile(T0));
    let live = |ca: &Ca| {
        ca.ledger_rows()
            .iter()
            .filter(|r| r.iter().any(|c| c == "revoked"))
            .count()
    };
    for (i, stray) in [
        "identities/alice.yaml ",
        "identities/alice.YAML",
        "identities/.alice.yaml",
        "identities/sub/alice.yaml",
        "identities/alice.yaml~",
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(dir) = std::path::Path::new(&ca.path(stray)).parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::rename(ca.path("identities/alice.yaml"), ca.path(stray)).unwrap();
        ca.commit(stray);
        let o = fails(run(ca.cmd(T0).arg("check")));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            all.contains("not an identity file gitca reads"),
            "{stray}: {all}"
        );
        // Six days on: the CRL (7 days, refreshed 3 days before) must be re-signed.
        let now = days_after(T0, 6 * (i as i64 + 1));
        let before = crl_number(&ca);
        let o = ca.reconcile(&now);
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(3), "{stray}: {all}");
        assert_eq!(live(&ca), 0, "{stray}: alice is not revoked\n{all}");
        assert!(
            crl_number(&ca) > before,
            "{stray}: the CRL is refreshed\n{all}"
        );
        std::fs::rename(ca.path(stray), ca.path("identities/alice.yaml")).unwrap();
        ca.commit("put back");
        ok(run(ca.cmd(&now).arg("check")));
        ok(ca.reconcile(&now));
    }
    ca.write("identities/alice.yaml", "users: []\n");
    ca.commit("offboard alice");
    ok(ca.reconcile(&days_after(T0, 31)));
    assert_eq!(live(&ca), 1, "a real removal revokes");
}
