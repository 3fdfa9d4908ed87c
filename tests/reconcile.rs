//! `gitca reconcile`: issuance, renewal, revocation and the CRL, checked with real openssl and git.

mod common;

use common::*;

const ALICE_BOB: &str = "users:\n  - name: alice\n    email: alice@example.com\n    csr: csr/alice.csr\n    groups: [push, pull]\n  - name: bob\n    csr: csr/bob.csr\n";

fn ca_with_alice_and_bob() -> Ca {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.p256_csr("bob");
    ca.identities(ALICE_BOB);
    ca.commit("onboard alice and bob");
    ca
}

#[test]
fn removing_identity_revokes_every_unexpired_cert() {
    let ca = ca_with_alice_and_bob();
    ok(ca.reconcile(T0));
    let first = ca.keep("certs/alice.crt", "alice-1.crt");
    // 340 days in, alice is inside renew_before (30d of 365d): renewed, same key, new serial.
    let t1 = days_after(T0, 340);
    let o = ok(ca.reconcile(&t1));
    assert!(stdout(&o).contains("nearing-expiry"), "{}", stdout(&o));
    let second = ca.keep("certs/alice.crt", "alice-2.crt");
    assert_ne!(serial_of(&first), serial_of(&second));
    let pk = |p: &std::path::Path| {
        stdout(&ok(ca.openssl(&[
            "x509",
            "-in",
            p.to_str().unwrap(),
            "-noout",
            "-pubkey",
        ])))
    };
    assert_eq!(pk(&first), pk(&second), "renewal keeps the key");
    ok(ca.verify_crl(&first, &t1));
    ok(ca.verify_crl(&second, &t1));

    // Offboard alice: both of her unexpired certificates are revoked, bob's stays good.
    ca.identities("users:\n  - name: bob\n    csr: csr/bob.csr\n");
    ca.commit("offboard alice");
    let t2 = days_after(T0, 341);
    ok(ca.reconcile(&t2));
    for c in [&first, &second] {
        let o = ca.verify_crl(c, &t2);
        assert!(!o.status.success());
        assert!(
            stdout(&o).contains("certificate revoked")
                || stderr(&o).contains("certificate revoked"),
            "{}{}",
            stdout(&o),
            stderr(&o)
        );
    }
    let o = ok(ca.verify_crl(&ca.path("certs/bob.crt"), &t2));
    assert!(stdout(&o).contains("OK"));
    assert!(
        !ca.path("certs/alice.crt").exists(),
        "a revoked identity has no current certificate"
    );
    let text = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-noout",
        "-text",
    ])));
    assert_eq!(text.matches("Cessation Of Operation").count(), 2, "{text}");
    let log = git(&ca.root, &["log", "-1", "--format=%B"]);
    assert!(
        log.contains("revoke (cessation-of-operation) alice") && log.contains("identity-removed"),
        "{log}"
    );
}

#[test]
fn csr_requests_are_never_copied_into_the_certificate() {
    let ca = Ca::new();
    ca.openssl_csr(
        "mallory",
        "mallory",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-addext",
            "subjectAltName=DNS:registry.example.com,email:boss@example.com",
        ],
    );
    ca.identities("users:\n  - name: mallory\n");
    ca.commit("mallory");
    ok(ca.reconcile(T0));
    let text = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/mallory.crt",
        "-noout",
        "-text",
    ])));
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(!text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(!text.contains("Server Authentication"), "{text}");
    assert!(!text.contains("DNS:"), "{text}");
    assert!(!text.contains("boss@example.com"), "{text}");
    assert!(!text.contains("Certificate Sign"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("Subject: O = Acme, CN = mallory"), "{text}");
}

#[test]
fn certificates_carry_the_profile_extensions() {
    let ca = ca_with_alice_and_bob();
    ok(ca.reconcile(T0));
    let text = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/alice.crt",
        "-noout",
        "-text",
    ])));
    assert!(
        text.contains("Subject: O = Acme, OU = push, OU = pull, CN = alice"),
        "{text}"
    );
    assert!(text.contains("email:alice@example.com"), "{text}");
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    // Validity from the profile: 365 days from now, backdated one hour.
    assert!(
        text.contains("Not Before: Dec 31 23:00:00 2025 GMT"),
        "{text}"
    );
    assert!(
        text.contains("Not After : Jan  1 00:00:00 2027 GMT"),
        "{text}"
    );
    // certs/<name>.crt is the leaf first, then the CA.
    let file = ca.read("certs/alice.crt");
    assert_eq!(file.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(file.ends_with(&ca.read("ca/ca.crt")));
}

#[test]
fn every_kind_of_csr_yields_a_certificate_for_its_exact_key() {
    let ca = Ca::new();
    let kinds: &[(&str, &[&str], &[&str])] = &[
        ("ec256", &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], &[]),
        ("ec384", &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"], &[]),
        ("rsa2048", &["rsa:2048"], &[]),
        ("rsa4096", &["rsa:4096"], &[]),
        (
            "ec256-sha384",
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            &["-sha384"],
        ),
    ];
    let mut yaml = String::from("users:\n");
    for (name, spec, extra) in kinds {
        ca.openssl_csr(name, name, spec, extra);
        yaml.push_str(&format!("  - name: {name}\n"));
    }
    // GnuTLS certtool.
    let key = ca.keys.join("gnutls.key");
    ok(tool(
        "certtool",
        &[
            "--generate-privkey",
            "--key-type",
            "ecdsa",
            "--curve",
            "secp256r1",
            "--outfile",
            key.to_str().unwrap(),
        ],
        &ca.root,
    ));
    let tmpl = ca.tmp.path().join("certtool.tmpl");
    std::fs::write(&tmpl, "cn = gnutls\n").unwrap();
    ok(tool(
        "certtool",
        &[
            "--generate-request",
            "--load-privkey",
            key.to_str().unwrap(),
            "--template",
            tmpl.to_str().unwrap(),
            "--outfile",
            ca.path("csr/gnutls.csr").to_str().unwrap(),
        ],
        &ca.root,
    ));
    yaml.push_str("  - name: gnutls\n");
    ca.identities(&yaml);
    ca.commit("many kinds");
    ok(ca.reconcile(T0));
    for name in kinds.iter().map(|k| k.0).chain(["gnutls"]) {
        let csr_pub = stdout(&ok(ca.openssl(&[
            "req",
            "-in",
            &format!("csr/{name}.csr"),
            "-noout",
            "-pubkey",
        ])));
        let crt_pub = stdout(&ok(ca.openssl(&[
            "x509",
            "-in",
            &format!("certs/{name}.crt"),
            "-noout",
            "-pubkey",
        ])));
        assert_eq!(
            csr_pub, crt_pub,
            "{name}: the certificate certifies the CSR's exact key"
        );
        ok(ca.openssl(&[
            "verify",
            "-attime",
            &epoch(T0),
            "-CAfile",
            "ca/ca.crt",
            &format!("certs/{name}.crt"),
        ]));
    }
    // The P-256 key signed with SHA-384 is still a P-256 certificate.
    let text = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/ec256-sha384.crt",
        "-noout",
        "-text",
    ])));
    assert!(text.contains("NIST CURVE: P-256"), "{text}");
}

#[test]
fn second_reconcile_needs_no_key_and_makes_no_commit() {
    let ca = ca_with_alice_and_bob();
    ok(ca.reconcile(T0));
    let head = ca.head();
    let o = ok(run(ca.cmd(&days_after(T0, 1)).arg("reconcile")));
    assert!(stdout(&o).contains("Nothing to do"), "{}", stdout(&o));
    assert_eq!(ca.head(), head);
    assert_eq!(ca.status(), "");
}

#[test]
fn crl_numbers_increase_and_follow_the_configured_window() {
    let ca = ca_with_alice_and_bob();
    let crl_number = |ca: &Ca| -> u64 {
        let t = stdout(&ok(ca.openssl(&[
            "crl",
            "-in",
            "crl/ca.crl",
            "-noout",
            "-crlnumber",
        ])));
        u64::from_str_radix(t.trim().trim_start_matches("crlNumber=0x"), 16).unwrap()
    };
    assert_eq!(crl_number(&ca), 1);
    ok(ca.reconcile(T0));
    assert_eq!(crl_number(&ca), 1, "issuing alone does not re-sign the CRL");
    // Day 5: inside refresh_before (3d) of nextUpdate (day 7): refreshed without other changes.
    let head = ca.head();
    let t5 = days_after(T0, 5);
    let o = ok(run(ca
        .cmd(&t5)
        .arg("reconcile")
        .arg("--identity")
        .arg(&ca.identity)));
    assert!(stdout(&o).contains("crl-refresh"), "{}", stdout(&o));
    assert_ne!(ca.head(), head);
    assert_eq!(crl_number(&ca), 2);
    let text = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-CAfile",
        "ca/ca.crt",
        "-noout",
        "-text",
    ])));
    assert!(
        text.contains("Last Update: Jan  6 00:00:00 2026 GMT"),
        "{text}"
    );
    assert!(
        text.contains("Next Update: Jan 13 00:00:00 2026 GMT"),
        "{text}"
    );
    assert!(text.contains("Authority Key Identifier"), "{text}");
    // Day 6: fresh, nothing to do.
    let head = ca.head();
    ok(run(ca.cmd(&days_after(T0, 6)).arg("reconcile")));
    assert_eq!(ca.head(), head);
    // A revocation re-signs it at once.
    ca.identities("users:\n  - name: alice\n    email: alice@example.com\n    csr: csr/alice.csr\n    groups: [push, pull]\n");
    ca.commit("offboard bob");
    ok(ca.reconcile(&days_after(T0, 6)));
    assert_eq!(crl_number(&ca), 3);
}

#[test]
fn serials_are_unique_random_and_positive() {
    let ca = Ca::new();
    let mut yaml = String::from("bots:\n");
    for i in 0..12 {
        ca.p256_csr(&format!("bot{i}"));
        yaml.push_str(&format!("  - name: bot{i}\n"));
    }
    ca.identities(&yaml);
    ca.commit("bots");
    // Bots live 30 days and renew 10 days before: 4 reconciles over 70 days renew each twice.
    for d in [0, 21, 42, 63] {
        ok(ca.reconcile(&days_after(T0, d)));
    }
    let rows = ca.ledger_rows();
    assert_eq!(rows.len(), 48, "12 bots x 4 certificates");
    let serials: std::collections::HashSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(serials.len(), rows.len(), "no serial repeats");
    for s in &serials {
        assert!(s.len() >= 18 && s.len() <= 32, "about 128 bits: {s}");
    }
    // openssl agrees the current ones are positive and match the ledger.
    let text = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/bot3.crt",
        "-noout",
        "-text",
    ])));
    assert!(!text.contains("Negative"));
    assert!(serials.contains(serial_of(&ca.path("certs/bot3.crt")).as_str()));
}

#[test]
fn new_csr_replaces_and_supersedes_the_old_certificate() {
    let ca = ca_with_alice_and_bob();
    ok(ca.reconcile(T0));
    let old = ca.keep("certs/alice.crt", "alice-old.crt");
    ca.p256_csr("alice"); // a new key
    ca.commit("alice rotates her key");
    let t = days_after(T0, 10);
    let o = ok(ca.reconcile(&t));
    assert!(stdout(&o).contains("csr-changed"));
    // Nothing was withdrawn: the old certificate stays valid through the grace period, so
    // alice is not locked out before she installs the new one.
    ok(ca.verify_crl(&old, &t));
    ok(ca.verify_crl(&ca.path("certs/alice.crt"), &t));
    let o = ok(run(ca.cmd(&days_after(T0, 16)).arg("plan")));
    assert!(!stdout(&o).contains("revoke"), "{}", stdout(&o));
    // The daily reconcile after the seven-day grace revokes it as superseded.
    let t = days_after(T0, 17);
    let o = ok(ca.reconcile(&t));
    assert!(
        stdout(&o).contains("grace period is over"),
        "{}",
        stdout(&o)
    );
    let o = ca.verify_crl(&old, &t);
    assert!(!o.status.success(), "the old certificate is revoked");
    ok(ca.verify_crl(&ca.path("certs/alice.crt"), &t));
    let text = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-noout",
        "-text",
    ])));
    assert!(text.contains("Superseded"), "{text}");
}

#[test]
fn compromised_key_is_revoked_and_never_certified_again() {
    let ca = ca_with_alice_and_bob();
    ok(ca.reconcile(T0));
    ca.identities(&ALICE_BOB.replace(
        "    groups: [push, pull]\n",
        "    groups: [push, pull]\n    revoke: key-compromise\n",
    ));
    ca.commit("alice's key leaked");
    ok(ca.reconcile(&days_after(T0, 1)));
    let text = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-noout",
        "-text",
    ])));
    assert!(text.contains("Key Compromise"), "{text}");
    // Dropping the revoke line with the same CSR: the key is barred.
    ca.identities(ALICE_BOB);
    ca.commit("alice wants back in with the same key");
    let head = ca.head();
    let o = ca.reconcile(&days_after(T0, 2));
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("revoked for key compromise"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ca.head(), head);
}

#[test]
fn a_key_belongs_to_one_identity() {
    let ca = ca_with_alice_and_bob();
    ok(ca.reconcile(T0));
    // carol submits a CSR for alice's key (with her own CN): refused.
    let key = ca.keys.join("alice.key");
    ok(ca.openssl(&[
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=carol",
        "-out",
        "csr/carol.csr",
    ]));
    ca.identities(&format!("{ALICE_BOB}  - name: carol\n"));
    ca.commit("carol");
    let o = ca.reconcile(T0);
    assert_eq!(o.status.code(), Some(3));
    assert!(!ca.path("certs/carol.crt").exists());
    assert!(
        stderr(&o).contains("belongs to identity `alice`"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("identities/people.yaml"),
        "{}",
        stderr(&o)
    );
}

/// Runs a failing reconcile and proves it changed nothing.
#[track_caller]
/// Reconcile skips the refused identities with a located diagnostic and exits 3 ("needs
/// attention"); here nothing else is to be done, so nothing changes.
fn refused(ca: &Ca, now: &str, expect: &[&str]) -> String {
    let head = ca.head();
    let before = ca.snapshot();
    let err = skipped(ca, now, expect);
    assert_eq!(ca.head(), head, "HEAD unchanged");
    assert_eq!(ca.snapshot(), before, "working tree unchanged");
    err
}

/// Reconcile skips what it cannot sign, applies the rest, and exits 3.
fn skipped(ca: &Ca, now: &str, expect: &[&str]) -> String {
    let o = ca.reconcile(now);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(3),
        "exit 3 (needs attention):\n{}{err}",
        stdout(&o)
    );
    for e in expect {
        assert!(err.contains(e), "expected `{e}` in:\n{err}");
    }
    assert!(err.contains("help:"), "a help line:\n{err}");
    err
}

#[test]
fn a_tampered_csr_blocks_only_its_identity() {
    let ca = ca_with_alice_and_bob();
    ca.write(
        "csr/bob.csr",
        &with_broken_signature(&ca.read("csr/bob.csr")),
    );
    ca.commit("tamper");
    let err = skipped(
        &ca,
        T0,
        &[
            "bob",
            "csr/bob.csr",
            "signature does not verify",
            "identities/people.yaml",
        ],
    );
    assert!(
        err.contains("6 │") || err.contains("[identities/people.yaml:6"),
        "points at the csr line:\n{err}"
    );
    assert!(err.contains("1 identity(ies) not signed for: bob"), "{err}");
    assert!(
        ca.path("certs/alice.crt").exists(),
        "alice is issued all the same"
    );
    assert!(!ca.path("certs/bob.crt").exists());
    assert_eq!(ca.status(), "", "what was done is committed");
}

#[test]
fn csr_rules_refuse_weak_keys_wrong_names_and_non_pem() {
    let ca = Ca::new();
    ca.openssl_csr("weak", "weak", &["rsa:1024"], &[]);
    ca.openssl_csr(
        "liar",
        "someone-else",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &[],
    );
    ca.write("csr/junk.csr", "hello, I am not a CSR\n");
    ca.identities("users:\n  - name: weak\n  - name: liar\n  - name: junk\n");
    ca.commit("bad csrs");
    let err = refused(
        &ca,
        T0,
        &[
            "RSA key of 1024 bits is weak",
            "CN is `someone-else`, not `liar`",
            "not PEM",
        ],
    );
    assert!(
        err.contains("3 identity(ies) not signed for: junk, liar, weak"),
        "{err}"
    );
}

#[test]
fn wrong_or_missing_age_identity_changes_nothing() {
    let ca = ca_with_alice_and_bob();
    let (other, _) = age_identity(ca.tmp.path(), "stranger");
    let head = ca.head();
    let before = ca.snapshot();
    let o = fails(run(ca
        .cmd(T0)
        .arg("reconcile")
        .arg("--identity")
        .arg(&other)));
    assert!(
        stderr(&o).contains(&ca.recipient),
        "lists recipients:\n{}",
        stderr(&o)
    );
    let o = fails(run(ca.cmd(T0).arg("reconcile")));
    assert!(stderr(&o).contains("no age identity"), "{}", stderr(&o));
    assert_eq!(ca.head(), head);
    assert_eq!(ca.snapshot(), before);
    // The identity text from the environment works, as in CI.
    let text = std::fs::read_to_string(&ca.identity).unwrap();
    ok(run(ca.cmd(T0).arg("reconcile").env("GITCA_IDENTITY", text)));
    assert!(ca.path("certs/alice.crt").exists());
}

#[test]
fn hostile_identity_files_get_located_diagnostics() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "users:\n  - name: x\n    csr: ../../etc/passwd\n",
            "passwd",
            &["stay inside the repository", "people.yaml:3"],
        ),
        (
            "users:\n  - name: x\n    csr: csr/missing.csr\n",
            "missing",
            &["does not exist", "people.yaml:3"],
        ),
        (
            "users:\n  - name: ../x\n",
            "dotdot",
            &["not a valid identity name", "people.yaml:2"],
        ),
        (
            "users:\n  - name: a/b\n",
            "slash",
            &["not a valid identity name"],
        ),
        (
            "users:\n  - name: x\n    profile: admin\n",
            "profile",
            &["unknown profile `admin`", "bot, server, user"],
        ),
        (
            "users:\n  - name: x\n   csr: [\n",
            "syntax",
            &["people.yaml"],
        ),
        (
            "users:\n  - name: x\n    colour: blue\n",
            "unknown-key",
            &["colour", "people.yaml:3"],
        ),
        (
            "users:\n  - name: x\n    revoke: because\n",
            "reason",
            &["not a revocation reason"],
        ),
    ];
    for (yaml, label, expect) in cases {
        let ca = Ca::new();
        ca.identities(yaml);
        ca.commit(label);
        let head = ca.head();
        let o = ca.reconcile(T0);
        assert_eq!(o.status.code(), Some(3), "{label}: {}", stderr(&o));
        let err = stderr(&o);
        for e in *expect {
            assert!(err.contains(e), "{label}: expected `{e}` in:\n{err}");
        }
        assert!(err.contains("help:"), "{label}: {err}");
        assert_eq!(ca.head(), head, "{label}");
        // check reports the same problem.
        let o = fails(run(ca.cmd(T0).arg("check")));
        assert!(
            stdout(&o).contains("check failed"),
            "{label}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn symlinked_csr_leading_out_of_the_repo_is_refused() {
    let ca = Ca::new();
    std::os::unix::fs::symlink("/etc/hostname", ca.path("identities/../outside.csr")).unwrap();
    ca.identities("users:\n  - name: x\n    csr: outside.csr\n");
    ca.commit("symlink");
    refused(&ca, T0, &["symbolic link", "people.yaml:3"]);
}

/// csr/ is read ahead while the YAML is parsed; links there go through the same checks: no
/// link is ever followed, whether it leads out or stays inside.
#[test]
fn symlinks_in_csr_dir_are_refused_like_any_other_link() {
    let ca = Ca::new();
    std::fs::create_dir_all(ca.path("csr")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", ca.path("csr/x.csr")).unwrap();
    ca.identities("users:\n  - name: x\n");
    ca.commit("symlink out");
    refused(&ca, T0, &["symbolic link", "people.yaml:2"]);

    let ca = Ca::new();
    ca.p256_csr("y");
    std::fs::create_dir_all(ca.path("requests")).unwrap();
    std::fs::rename(ca.path("csr/y.csr"), ca.path("requests/y.csr")).unwrap();
    std::os::unix::fs::symlink("../requests/y.csr", ca.path("csr/y.csr")).unwrap();
    ca.identities("users:\n  - name: y\n");
    ca.commit("symlink inside");
    refused(&ca, T0, &["csr/y.csr is a symbolic link", "people.yaml:2"]);
    // The same file, committed as a file, is issued.
    std::fs::remove_file(ca.path("csr/y.csr")).unwrap();
    std::fs::rename(ca.path("requests/y.csr"), ca.path("csr/y.csr")).unwrap();
    ca.commit("the file itself");
    ok(ca.reconcile(T0));
    let subject = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/y.crt",
        "-noout",
        "-subject",
    ])));
    assert!(subject.contains("CN = y"), "{subject}");
}

#[test]
fn duplicate_names_across_files_show_both_places() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    ca.write(
        "identities/team.yaml",
        "bots:\n  - name: bob\n  - name: alice\n    csr: csr/alice.csr\n",
    );
    ca.commit("dup");
    let err = refused(
        &ca,
        T0,
        &[
            "`alice` is declared twice",
            "identities/people.yaml",
            "identities/team.yaml",
        ],
    );
    assert!(err.contains("first declared here"), "{err}");
    // The second place nests under the first: one diagnostic, not a second `Error:`.
    assert!(!err.lines().any(|l| l.starts_with("Error:")), "{err}");
}

/// A duplicate added next to a revocation request does not hold the revocation up: revoking
/// takes nothing from anyone, so the revoking declaration goes ahead (and the run exits 3 for
/// the duplicate).
#[test]
fn a_duplicate_never_holds_up_a_revocation() {
    let ca = Ca::new();
    ca.p256_csr("mallory");
    ca.identities("users:\n  - name: mallory\n");
    ca.commit("mallory");
    ok(ca.reconcile(T0));
    ca.identities("users:\n  - name: mallory\n    revoke: key-compromise\n");
    ca.write("identities/zz.yaml", "users:\n  - name: mallory\n");
    ca.commit("revoke mallory, and a duplicate");
    let o = ca.reconcile(T0);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("declared twice"), "{}", stderr(&o));
    let rows = ca.ledger_rows();
    let row = rows.iter().find(|r| r[1] == "mallory").unwrap();
    assert_eq!(
        (row[4].as_str(), row[8].as_str()),
        ("revoked", "key-compromise")
    );
}

#[test]
fn a_name_taken_by_a_pull_request_is_flagged_where_the_pull_request_took_it() {
    // main declares carol in team.yaml; a pull request declares another carol in
    // identities/carol.yaml, which sorts first: the diagnostic still points at the new entry.
    let ca = Ca::new();
    ca.p256_csr("carol");
    ca.write("identities/team.yaml", "users:\n  - name: carol\n");
    ca.commit("carol");
    ok(ca.reconcile(T0));
    git(&ca.root, &["branch", "main-before"]);
    ca.write(
        "identities/carol.yaml",
        "users:\n  - name: carol\n    email: carol@example.com\n",
    );
    ca.commit("a second carol");
    let o = fails(run(ca.cmd(T0).args(["check", "--base", "main-before"])));
    let out = stdout(&o) + &stderr(&o);
    let flagged = out
        .split("`carol` is declared twice")
        .nth(1)
        .expect("the duplicate is reported");
    assert!(
        flagged.find("identities/carol.yaml") < flagged.find("identities/team.yaml"),
        "the new entry is the flagged one:\n{out}"
    );
    assert!(out.contains("declared again here, by this change"), "{out}");
    assert!(
        out.contains("first declared here, before this change"),
        "{out}"
    );
    assert!(!out.lines().any(|l| l.starts_with("Error:")), "{out}");
    // Without the base, file order decides (carol.yaml comes first): the proof that --base
    // is what turned it round.
    let o = fails(run(ca.cmd(T0).arg("check")));
    let out = stdout(&o) + &stderr(&o);
    let flagged = out.split("`carol` is declared twice").nth(1).unwrap();
    assert!(
        flagged.find("identities/team.yaml") < flagged.find("identities/carol.yaml"),
        "{out}"
    );
    // Dropping the new entry, as the hint says, makes the pull request clean again.
    std::fs::remove_file(ca.path("identities/carol.yaml")).unwrap();
    ca.commit("drop it");
    ok(run(ca.cmd(T0).args(["check", "--base", "main-before"])));
}

#[test]
fn dirty_tree_is_refused_unless_allowed_and_no_commit_leaves_files() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    // Not committed yet.
    let o = fails(ca.reconcile(T0));
    assert!(stderr(&o).contains("uncommitted changes"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("identities/people.yaml"),
        "{}",
        stderr(&o)
    );
    let head = ca.head();
    // --allow-dirty alone would commit alice's certificate without her entry: refused, with
    // the uncommitted inputs named; with --no-commit it tries them out.
    let o = fails(run(ca
        .cmd(T0)
        .args(["reconcile", "--allow-dirty", "--identity"])
        .arg(&ca.identity)));
    assert!(
        stderr(&o).contains("would commit certificates for uncommitted changes")
            && stderr(&o).contains("identities/people.yaml"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ca.head(), head);
    assert!(!ca.path("certs/alice.crt").exists());
    ok(run(ca
        .cmd(T0)
        .args(["reconcile", "--allow-dirty", "--no-commit", "--identity"])
        .arg(&ca.identity)));
    assert_eq!(ca.head(), head, "--no-commit makes no commit");
    assert!(ca.path("certs/alice.crt").exists());
    assert!(ca.status().contains("ledger.tsv"));
}

#[test]
fn the_lock_stops_a_second_reconcile_in_the_same_clone() {
    let ca = ca_with_alice_and_bob();
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(ca.path(".git/gitca.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let o = fails(ca.reconcile(T0));
    assert!(stderr(&o).contains("holds the lock"), "{}", stderr(&o));
    drop(lock);
    ok(ca.reconcile(T0));
}

#[test]
fn disabled_identity_is_revoked_and_re_enabled_gets_a_new_certificate() {
    let ca = ca_with_alice_and_bob();
    ok(ca.reconcile(T0));
    ca.identities(&ALICE_BOB.replace(
        "    csr: csr/bob.csr\n",
        "    csr: csr/bob.csr\n    disabled: true\n",
    ));
    ca.commit("disable bob");
    ok(ca.reconcile(&days_after(T0, 1)));
    assert!(!ca.path("certs/bob.crt").exists());
    ca.identities(ALICE_BOB);
    ca.commit("enable bob");
    let o = ok(ca.reconcile(&days_after(T0, 2)));
    assert!(
        stdout(&o).contains("no-valid-certificate"),
        "{}",
        stdout(&o)
    );
    ok(ca.verify_crl(&ca.path("certs/bob.crt"), &days_after(T0, 2)));
}

#[test]
fn groups_change_reissues_and_withdraws_the_old_privilege() {
    let ca = ca_with_alice_and_bob();
    ok(ca.reconcile(T0));
    let old = ca.keep("certs/alice.crt", "alice-old.crt");
    ca.identities(&ALICE_BOB.replace("[push, pull]", "[pull]"));
    ca.commit("alice loses push");
    let t = days_after(T0, 3);
    ok(ca.reconcile(&t));
    assert!(!ca.verify_crl(&old, &t).status.success());
    let text = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/alice.crt",
        "-noout",
        "-subject",
    ])));
    assert!(
        text.contains("OU = pull") && !text.contains("OU = push"),
        "{text}"
    );
    let crl = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-noout",
        "-text",
    ])));
    assert!(crl.contains("Privilege Withdrawn"), "{crl}");
}

/// The signing progress bar: drawn on stderr when it is a terminal (script(1) gives gitca one),
/// absent with --quiet and when stderr is a pipe.
#[test]
fn progress_bar_only_on_a_terminal_and_never_with_quiet() {
    require("script");
    let ca = Ca::new();
    let mut yaml = String::from("users:\n");
    for i in 0..120 {
        let name = format!("u{i:03}");
        ca.p256_csr(&name);
        yaml.push_str(&format!("  - name: {name}\n"));
    }
    ca.identities(&yaml);
    ca.commit("120 identities");
    let bin = assert_cmd::cargo::cargo_bin("gitca");
    // --no-commit --allow-dirty: each run signs all 120 again (the previous run's files are
    // restored away first).
    let on_tty = |extra: &str| -> String {
        let line = format!(
            "{} -C {} --now {T0} reconcile --identity {} --no-commit --allow-dirty {extra}",
            bin.display(),
            ca.root.display(),
            ca.identity.display()
        );
        let o = run(std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("HOME", empty_home())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(std::process::Stdio::null()));
        assert!(o.status.success(), "{}", stdout(&o));
        stdout(&o)
    };
    let shown = on_tty("");
    assert!(
        shown.contains("signing") && shown.contains("/120 certificates"),
        "{shown}"
    );
    let quiet = on_tty("--quiet");
    assert!(!quiet.contains("signing"), "{quiet}");
    let o = ok(run(ca
        .cmd(T0)
        .args(["reconcile", "--identity"])
        .arg(&ca.identity)
        .args(["--no-commit", "--allow-dirty"])));
    assert!(!stderr(&o).contains("signing"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(ca.path("certs")).unwrap().count(), 120);
}

/// Issue 13: two merged pull requests declare two new identities with one key, and an urgent
/// offboarding is merged the same day. The offboarding is applied at once, the CRL stays
/// fresh day after day, and neither twin gets the key until one of them is withdrawn.
#[test]
fn a_duplicate_key_never_holds_up_an_offboarding() {
    let ca = ca_with_alice_and_bob();
    ok(ca.reconcile(T0));
    let key = ca.keys.join("shared.key");
    ok(ca.openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]));
    for n in ["svc1", "svc2"] {
        ok(ca.openssl(&[
            "req",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            &format!("/CN={n}"),
            "-out",
            &format!("csr/{n}.csr"),
        ]));
    }
    // bob leaves in the same merge window.
    let alice_only = ALICE_BOB.split("  - name: bob").next().unwrap().to_string();
    ca.identities(&format!(
        "{alice_only}bots:\n  - name: svc1\n  - name: svc2\n"
    ));
    ca.commit("svc1 and svc2 (one key); bob leaves");
    let bob = ca.keep("certs/bob.crt", "bob.crt");
    let o = ca.reconcile(&days_after(T0, 1));
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("also in the CSR of `svc2`"),
        "{}",
        stderr(&o)
    );
    assert!(!ca.path("certs/svc1.crt").exists() && !ca.path("certs/svc2.crt").exists());
    assert!(
        !ca.verify_crl(&bob, &days_after(T0, 1)).status.success(),
        "bob is refused at once"
    );
    // Daily reconciles keep the CRL fresh while the twins stay blocked.
    for day in 2..12 {
        let o = ca.reconcile(&days_after(T0, day));
        assert_eq!(o.status.code(), Some(3), "day {day}");
        ok(ca.verify_crl(&ca.path("certs/alice.crt"), &days_after(T0, day)));
    }
    // svc2 is withdrawn: svc1 gets its certificate.
    ca.identities(&format!("{alice_only}bots:\n  - name: svc1\n"));
    ca.commit("svc2 withdrawn");
    ok(ca.reconcile(&days_after(T0, 12)));
    assert!(ca.path("certs/svc1.crt").exists());
}

/// The plan is the promise: after `request --rotate` with `revoke: key-compromise` still set,
/// plan does not say "no changes" while carol holds nothing.
#[test]
fn a_held_revocation_is_shown_in_every_plan_format() {
    let ca = Ca::new();
    ok(run(ca
        .cmd(T0)
        .args(["request", "carol", "--key-out"])
        .arg(ca.keys.join("carol.key"))));
    ca.commit("carol");
    ok(ca.reconcile(T0));
    let text = ca.read("identities/carol.yaml").replace(
        "csr: csr/carol.csr",
        "csr: csr/carol.csr\n    revoke: key-compromise",
    );
    ca.write("identities/carol.yaml", &text);
    ca.commit("carol's key leaked");
    ok(ca.reconcile(&days_after(T0, 1)));
    ok(run(ca
        .cmd(&days_after(T0, 1))
        .args(["request", "carol", "--rotate", "--key-out"])
        .arg(ca.keys.join("carol2.key"))));
    ca.commit("carol rotates, revoke still set");
    let now = days_after(T0, 2);
    let o = fails(run(ca.cmd(&now).arg("plan")));
    assert!(stdout(&o).contains("revocation-held"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("remove the `revoke:` line"),
        "{}",
        stdout(&o)
    );
    let o = fails(run(ca.cmd(&now).args(["plan", "--markdown"])));
    assert!(stdout(&o).contains("**Blocked**"), "{}", stdout(&o));
    let o = fails(run(ca.cmd(&now).args(["plan", "--json"])));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["blocked"][0]["code"], "revocation-held");
    assert_eq!(doc["blocked"][0]["identity"], "carol");
}

/// Issue 13: a change that takes nothing away does not cut anyone off; one that withdraws a
/// right does, at once.
#[test]
fn adding_a_group_keeps_the_old_certificate_dropping_one_revokes_it() {
    let ca = ca_with_alice_and_bob();
    ok(ca.reconcile(T0));
    let old = ca.keep("certs/alice.crt", "alice-1.crt");
    ca.identities(&ALICE_BOB.replace("groups: [push, pull]", "groups: [push, pull, deploy]"));
    ca.commit("alice gains deploy");
    let t = days_after(T0, 1);
    let o = ok(ca.reconcile(&t));
    assert!(stdout(&o).contains("groups-changed"), "{}", stdout(&o));
    ok(ca.verify_crl(&old, &t));
    let second = ca.keep("certs/alice.crt", "alice-2.crt");
    ca.identities(&ALICE_BOB.replace("groups: [push, pull]", "groups: [pull, deploy]"));
    ca.commit("alice loses push");
    let t = days_after(T0, 2);
    let o = ok(ca.reconcile(&t));
    assert!(stdout(&o).contains("privilege-withdrawn"), "{}", stdout(&o));
    for cert in [&old, &second] {
        assert!(
            !ca.verify_crl(cert, &t).status.success(),
            "push is withdrawn at once"
        );
    }
    ok(ca.verify_crl(&ca.path("certs/alice.crt"), &t));
}

/// Issue 19: a known blocked identity, acknowledged in a reviewed change, is still reported but
/// alone keeps reconcile (exit 0), plan and check green, so that the next new problem stands
/// out: a new blocked identity still makes exit 3, and so does the acknowledged one once its
/// `until` has passed. An `until` more than 30 days ahead is refused where it is written.
#[test]
fn an_acknowledged_blocked_identity_is_reported_but_alone_is_not_news() {
    let ca = ca_with_alice_and_bob();
    let p256 = ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    ca.openssl_csr("carol", "mallory", &p256, &[]);
    let carol = |until: &str| {
        format!("{ALICE_BOB}  - name: carol\n    acknowledged: {{until: {until}, reason: \"waiting for carol's new CSR\"}}\n")
    };
    ca.identities(&carol("2026-01-15"));
    ca.commit("carol, whose CSR is wrong: acknowledged");
    let o = ca.reconcile(T0);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("its CN is `mallory`")
            && stderr(&o).contains(
                "still blocked, acknowledged: carol (until 2026-01-15: waiting for carol's new CSR)"
            ),
        "still reported: {}",
        stderr(&o)
    );
    assert!(ca.path("certs/alice.crt").exists() && !ca.path("certs/carol.crt").exists());
    let o = run(ca.cmd(T0).arg("plan"));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("1 blocked (1 acknowledged)")
            && stdout(&o).contains("acknowledged until 2026-01-15: waiting for carol's new CSR"),
        "{}",
        stdout(&o)
    );
    let o = run(ca.cmd(T0).args(["plan", "--json"]));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["blocked"][0]["acknowledged"]["until"], "2026-01-15");
    let o = run(ca.cmd(T0).arg("check"));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        format!("{}{}", stdout(&o), stderr(&o)).contains("acknowledged until 2026-01-15"),
        "a warning: {}{}",
        stdout(&o),
        stderr(&o)
    );

    // A new blocked identity is news, and the acknowledged one is named beside it.
    ca.openssl_csr("dave", "eve", &p256, &[]);
    ca.identities(&format!("{}  - name: dave\n", carol("2026-01-15")));
    ca.commit("dave, whose CSR is wrong too");
    let o = ca.reconcile(T0);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 identity(ies) not signed for: dave")
            && stderr(&o).contains("acknowledged: carol"),
        "{}",
        stderr(&o)
    );
    assert_eq!(run(ca.cmd(T0).arg("plan")).status.code(), Some(1));

    // Past its last day, carol is news again (the clock is --now).
    ca.identities(&carol("2026-01-15"));
    ca.commit("dave leaves");
    ok(ca.reconcile(&days_after(T0, 14)));
    let o = ca.reconcile(&days_after(T0, 15));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not signed for: carol"),
        "{}",
        stderr(&o)
    );

    // At most 30 days ahead: check points at the value; reconcile does not honour it.
    let now = days_after(T0, 16);
    ca.identities(&carol("2026-02-18"));
    ca.commit("carol, acknowledged for a long time");
    let o = run(ca.cmd(&now).arg("check"));
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("identities/people.yaml:9") && text.contains("more than 30 days ahead"),
        "{text}"
    );
    let o = ca.reconcile(&now);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("more than 30 days ahead"),
        "{}",
        stderr(&o)
    );
}
