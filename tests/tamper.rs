//! Reconcile never trusts merged edits of its own outputs (issue 12, class 4): the ledger and
//! CRL are used as the CA sealed them, the newest seal in history wins over a rollback, and the
//! CA certificate must be the one init wrote. Each test merges the edit (as a pull request
//! merged over a red check would) and then runs the real reconcile and the real openssl.

mod common;

use common::*;

/// alice stays; mallory's key is compromised; bob leaves. Returns the CA after the revocations.
fn ca_with_revocations() -> Ca {
    let ca = Ca::new();
    for n in ["alice", "bob", "mallory"] {
        ca.p256_csr(n);
    }
    ca.identities("users:\n  - name: alice\n  - name: bob\n  - name: mallory\n");
    ca.commit("three");
    ok(ca.reconcile(T0));
    ca.keep("certs/mallory.crt", "mallory.crt");
    ca.keep("certs/bob.crt", "bob.crt");
    ca.identities("users:\n  - name: alice\n  - name: mallory\n    revoke: key-compromise\n");
    ca.commit("bob leaves, mallory compromised");
    ok(ca.reconcile(&days_after(T0, 1)));
    ca
}

fn edit_ledger(ca: &Ca, f: impl Fn(&mut Vec<String>)) {
    let text: String = ca
        .read("ledger.tsv")
        .lines()
        .map(|l| {
            if l.starts_with('#') || l.starts_with("serial\t") {
                return l.to_string();
            }
            let mut fields: Vec<String> = l.split('\t').map(str::to_string).collect();
            f(&mut fields);
            fields.join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    ca.write("ledger.tsv", &text);
}

fn crl_number(ca: &Ca) -> u64 {
    let o = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-noout",
        "-crlnumber",
    ])));
    u64::from_str_radix(o.trim().trim_start_matches("crlNumber=0x"), 16).unwrap()
}

/// The revoked certificates still fail `openssl verify -crl_check` with the CRL on main.
fn assert_still_revoked(ca: &Ca, at: &str) {
    for f in ["mallory.crt", "bob.crt"] {
        let o = ca.verify_crl(&ca.tmp.path().join(f), at);
        assert!(!o.status.success(), "{f} verifies again:\n{}", stdout(&o));
        assert!(
            stderr(&o).contains("certificate revoked")
                || stdout(&o).contains("certificate revoked"),
            "{f}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }
}

#[test]
fn shortened_expiry_of_revoked_rows_does_not_drop_them_from_the_crl() {
    let ca = ca_with_revocations();
    edit_ledger(&ca, |f| {
        if f[4] == "revoked" {
            f[6] = "2026-01-03T00:00:00Z".into();
        }
    });
    ca.commit("merged: shorten revoked rows");
    // A week later the CRL is refreshed: both revocations are still on it.
    let later = days_after(T0, 6);
    let o = ca.reconcile(&later);
    assert_ne!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("restore"), "{}", stdout(&o));
    assert_still_revoked(&ca, &later);
    ok(run(ca.cmd(&later).arg("check")));
}

#[test]
fn a_downgraded_reason_does_not_unbar_a_compromised_key() {
    let ca = ca_with_revocations();
    edit_ledger(&ca, |f| {
        if f[8] == "key-compromise" {
            f[8] = "superseded".into();
        }
    });
    ca.commit("merged: downgrade the reason");
    // The same key under a new name.
    let key = ca.keys.join("mallory.key");
    let csr = ca.path("csr/mallory2.csr");
    ok(ca.openssl(&[
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=mallory2",
        "-out",
        csr.to_str().unwrap(),
    ]));
    ca.identities("users:\n  - name: alice\n  - name: mallory\n    revoke: key-compromise\n  - name: mallory2\n");
    ca.commit("mallory2");
    let o = ca.reconcile(&days_after(T0, 2));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert_ne!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("revoked for key compromise"), "{all}");
    assert!(
        !ca.ledger_rows().iter().any(|r| r[1] == "mallory2"),
        "never certified"
    );
    let crl = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-noout",
        "-text",
    ])));
    assert!(crl.contains("Key Compromise"), "{crl}");
}

#[test]
fn a_rolled_back_crl_is_replaced_and_numbers_keep_rising() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    ca.commit("alice");
    ok(ca.reconcile(T0));
    let old_crl = ca.keep("crl/ca.crl", "old.crl");
    let old_ledger = ca.keep("ledger.tsv", "old.tsv");
    let old_seal = ca.keep("ledger.sig", "old.sig");
    ca.identities("users: []\n");
    ca.commit("alice leaves");
    ok(ca.reconcile(&days_after(T0, 1)));
    let published = crl_number(&ca);
    ca.keep("certs/../crl/ca.crl", "published.crl");

    // The CRL alone put back: the seal no longer covers it.
    std::fs::copy(&old_crl, ca.path("crl/ca.crl")).unwrap();
    ca.commit("merged: old CRL");
    let o = ok(run(ca.cmd(&days_after(T0, 1)).arg("plan")));
    assert!(
        stdout(&o).contains("restore"),
        "not 'nothing to do': {}",
        stdout(&o)
    );
    // All three put back, a consistent older sealed state: history knows a newer seal.
    std::fs::copy(&old_ledger, ca.path("ledger.tsv")).unwrap();
    std::fs::copy(&old_seal, ca.path("ledger.sig")).unwrap();
    ca.commit("merged: old ledger, CRL and seal");
    let o = fails(run(ca.cmd(&days_after(T0, 1)).arg("check")));
    assert!(
        stdout(&o).contains("put back to an older sealed state"),
        "{}",
        stdout(&o)
    );
    let later = days_after(T0, 5);
    let o = ca.reconcile(&later);
    assert_ne!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(crl_number(&ca) > published, "CRL numbers never go back");
    let o = ca.verify_crl(&ca.path("../alice.crt"), &later);
    let _ = o;
    let rows = ca.ledger_rows();
    assert_eq!(
        rows[0][4], "revoked",
        "alice's revocation survived the rollback"
    );
    ok(run(ca.cmd(&later).arg("check")));
}

#[test]
fn an_odd_serial_never_makes_reconcile_panic() {
    let ca = ca_with_revocations();
    edit_ledger(&ca, |f| {
        if f[1] == "alice" {
            f[0].pop();
        }
    });
    ca.commit("merged: odd serial");
    let later = days_after(T0, 6);
    let o = ca.reconcile(&later);
    assert_ne!(o.status.code(), Some(101), "no panic: {}", stderr(&o));
    assert_ne!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert_still_revoked(&ca, &later);
    // Without any seal (a repository from before seals: history without ledger.sig), the
    // parser names the row.
    let ca = Ca::new();
    std::fs::remove_file(ca.path("ledger.sig")).unwrap();
    std::fs::remove_dir_all(ca.path(".git")).unwrap();
    git(&ca.root, &["init", "-q", "-b", "main"]);
    let bad = format!("{}abc\talice\tuser\tuser\tissued\t2026-01-01T00:00:00Z\t2027-01-01T00:00:00Z\t-\t-\t{}\t{}\t-\t-\n", ca.read("ledger.tsv"), "ab".repeat(32), "cd".repeat(32));
    ca.write("ledger.tsv", &bad);
    ca.commit("legacy + odd serial");
    let o = fails(run(ca.cmd(T0).arg("plan")));
    assert!(stderr(&o).contains("ledger.tsv line 2"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a serial"), "{}", stderr(&o));
}

#[test]
fn a_forged_ca_certificate_is_refused_before_the_key_is_unlocked() {
    let ca = ca_with_revocations();
    // The real public key, another subject, a signature that cannot verify.
    let der = {
        let text = ca.read("ca/ca.crt");
        pem::parse(text).unwrap().into_contents()
    };
    let mut forged = der.clone();
    let at = forged
        .windows(4)
        .position(|w| w == b"Test")
        .expect("the subject holds `Test`");
    forged[at..at + 4].copy_from_slice(b"Evil");
    ca.write(
        "ca/ca.crt",
        &pem::encode(&pem::Pem::new("CERTIFICATE", forged)),
    );
    ca.commit("merged: forged CA certificate");
    // No identity given: a run that got as far as unlocking would say so.
    let o = fails(run(ca.cmd(&days_after(T0, 6)).arg("reconcile")));
    assert!(stderr(&o).contains("ca/ca.crt"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("signature does not verify"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("unlock"), "{}", stderr(&o));
    git(&ca.root, &["checkout", "HEAD~1", "--", "ca/ca.crt"]);
    ca.commit("restored");

    // Validly self-signed by the real key (a custodian's re-issue) but not what init wrote.
    let key = ca.tmp.path().join("ca-key.pem");
    ca.decrypt_ca_key(&key);
    ok(ca.openssl(&[
        "req",
        "-new",
        "-x509",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/O=Acme/CN=Test Registry CA",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        "ca/ca.crt",
    ]));
    std::fs::remove_file(&key).unwrap();
    ca.commit("merged: re-issued CA certificate");
    let o = fails(run(ca.cmd(&days_after(T0, 6)).arg("reconcile")));
    assert!(
        stderr(&o).contains("differs from the CA certificate gitca init wrote"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_seal_verifies_with_openssl() {
    let ca = ca_with_revocations();
    let seal = ca.read("ledger.sig");
    let field = |k: &str| {
        seal.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}: ")))
            .unwrap()
            .to_string()
    };
    let message = format!(
        "gitca-seal-v1\nformat: 1\nsequence: {}\nledger-sha256: {}\ncrl-sha256: {}\ncrl-number: {}\nsigner: {}\n",
        field("sequence"),
        field("ledger-sha256"),
        field("crl-sha256"),
        field("crl-number"),
        field("signer")
    );
    let dir = ca.tmp.path();
    std::fs::write(dir.join("msg"), &message).unwrap();
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(field("signature"))
        .unwrap();
    std::fs::write(dir.join("sig"), sig).unwrap();
    let pubkey = ok(ca.openssl(&["x509", "-in", "ca/ca.crt", "-noout", "-pubkey"])).stdout;
    std::fs::write(dir.join("ca.pub"), pubkey).unwrap();
    let o = ok(tool(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            "ca.pub",
            "-signature",
            "sig",
            "msg",
        ],
        dir,
    ));
    assert!(stdout(&o).contains("Verified OK"));
    let ledger_sha = stdout(&ok(tool("sha256sum", &["ledger.tsv"], &ca.root)));
    assert!(ledger_sha.starts_with(&field("ledger-sha256")));
    assert_eq!(field("crl-number"), crl_number(&ca).to_string());
}

#[test]
fn reconcile_refuses_a_shallow_clone() {
    let ca = ca_with_revocations();
    let shallow = ca.tmp.path().join("shallow");
    git(
        ca.tmp.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &format!("file://{}", ca.root.display()),
            shallow.to_str().unwrap(),
        ],
    );
    let o = fails(run(gitca()
        .arg("-C")
        .arg(&shallow)
        .args(["--now", &days_after(T0, 6), "reconcile", "--identity"])
        .arg(&ca.identity)));
    assert!(stderr(&o).contains("shallow"), "{}", stderr(&o));
    assert!(stderr(&o).contains("fetch-depth: 0"), "{}", stderr(&o));
}

/// Issue 26, item 4: `certs/` is an output like the ledger and the CRL. A forged
/// `certs/alice.crt` (self-signed, alice's serial), a deleted `certs/bob.crt` and a planted
/// `certs/mallory.crt`, merged: publish publishes only what verifies (the versions reconcile
/// wrote), reconcile writes them back, and alice's `deploy cert` installs her real certificate.
#[test]
fn edited_certificate_files_are_never_published_and_are_written_back() {
    let ca = Ca::issued_to(&["alice", "bob"]);
    let real_alice = ca.read("certs/alice.crt");
    let real_bob = ca.read("certs/bob.crt");
    let serial = serial_of(&ca.path("certs/alice.crt"));
    // A self-signed certificate with alice's serial, CN and key.
    let forged = ca.tmp.path().join("forged.crt");
    ok(ca.openssl(&[
        "req",
        "-x509",
        "-key",
        ca.keys.join("alice.key").to_str().unwrap(),
        "-subj",
        "/O=Acme/CN=alice",
        "-set_serial",
        &format!("0x{serial}"),
        "-days",
        "30",
        "-out",
        forged.to_str().unwrap(),
    ]));
    ca.write(
        "certs/alice.crt",
        &(std::fs::read_to_string(&forged).unwrap() + "junk\n"),
    );
    std::fs::remove_file(ca.path("certs/bob.crt")).unwrap();
    ca.write(
        "certs/mallory.crt",
        &std::fs::read_to_string(&forged).unwrap(),
    );
    ca.commit("merged: certificate files by hand");
    // check names them.
    let o = run(ca.cmd(T0).arg("check"));
    assert!(!o.status.success());
    // publish: the versions reconcile wrote, never the forged one.
    let public = ca.tmp.path().join("public");
    let o = ok(run(ca.cmd(T0).arg("publish").arg(&public)));
    assert!(
        stdout(&o).contains("edited since reconcile wrote it"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read_to_string(public.join("certs/alice.crt")).unwrap(),
        real_alice
    );
    assert_eq!(
        std::fs::read_to_string(public.join("certs/bob.crt")).unwrap(),
        real_bob
    );
    assert!(!public.join("certs/mallory.crt").exists());
    // alice's machine installs her real certificate from it.
    let out = ca.tmp.path().join("alice-certs");
    ok(run(gitca()
        .args(["--now", T0, "deploy", "cert", "alice", "--key"])
        .arg(ca.keys.join("alice.key"))
        .arg("--from")
        .arg(&public)
        .arg("--ca")
        .arg(ca.path("ca/ca.crt"))
        .arg("--out-dir")
        .arg(&out)));
    assert_eq!(
        std::fs::read_to_string(out.join("client.cert")).unwrap(),
        real_alice
    );
    // reconcile writes them back and says so (a person should look: exit 3).
    let o = ca.reconcile(T0);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(ca.read("certs/alice.crt"), real_alice);
    assert_eq!(ca.read("certs/bob.crt"), real_bob);
    assert!(!ca.path("certs/mallory.crt").exists());
    ok(run(ca.cmd(T0).arg("check")));
    let o = ok(ca.reconcile(T0));
    assert!(stdout(&o).contains("Nothing to do"), "{}", stdout(&o));
}

/// `check` does not verify again the signature of a CSR whose exact bytes the CA signed for (its
/// digest in the sealed ledger), and only the sealed ledger vouches: a pull request that alters
/// a signed-for CSR and writes the new digest into the ledger gets its signature checked (the
/// seal no longer covers that ledger). Every other CSR rule still applies to the CSRs whose
/// signatures are not checked again.
#[test]
fn check_takes_proof_of_possession_only_from_the_sealed_ledger() {
    use sha2::Digest;
    let ca = Ca::issued_to(&["alice", "bob"]);
    ok(run(ca.cmd(T0).arg("check")));

    let forged = with_broken_signature(&ca.read("csr/bob.csr"));
    ca.write("csr/bob.csr", &forged);
    let digest = hex::encode(sha2::Sha256::digest(forged.as_bytes()));
    edit_ledger(&ca, |f| {
        if f[1] == "bob" {
            f[10] = digest.clone();
        }
    });
    ca.commit("bob's CSR altered, the ledger made to agree");
    let o = fails(run(ca.cmd(T0).arg("check")));
    let err = stderr(&o) + &stdout(&o);
    assert!(
        err.contains("csr/bob.csr") && err.contains("signature does not verify"),
        "the altered CSR is verified:\n{err}"
    );
    assert!(!err.contains("csr/alice.csr"), "{err}");

    // alice's CSR is one the sealed ledger vouches for; a CN rule broken by the entry is found.
    ca.identities("users:\n  - name: alice\n    common_name: alice.admin\n  - name: bob\n");
    ca.commit("alice's entry names another CN");
    let o = fails(run(ca.cmd(T0).arg("check")));
    let err = stderr(&o) + &stdout(&o);
    assert!(
        err.contains("its CN is `alice`, not `alice.admin`"),
        "the other rules apply to a CSR the seal vouches for:\n{err}"
    );
}

/// A CSR of an entry that takes no certificate (`disabled:`, `revoke:`) is not signed for, but
/// one the rules would refuse is named by `check` (a warning: nothing is signed), unless a
/// sealed ledger vouches for it: a key-compromise revocation keeps its certified CSR quietly.
#[test]
fn check_names_a_bad_csr_of_an_entry_that_takes_no_certificate() {
    let ca = Ca::issued_to(&["alice", "bob"]);
    ca.identities("users:\n  - name: alice\n  - name: bob\n    revoke: key-compromise\n");
    ca.commit("bob's key compromised");
    ok(ca.reconcile(T0));
    ca.p256_csr("carol");
    ca.write(
        "csr/dave.csr",
        &with_broken_signature(&ca.read("csr/carol.csr")),
    );
    ca.identities(
        "users:\n  - name: alice\n  - name: bob\n    revoke: key-compromise\n  - name: carol\n    disabled: true\n  - name: dave\n    disabled: true\n",
    );
    ca.commit("carol and dave disabled, dave's CSR broken");
    let o = ok(run(ca.cmd(T0).arg("check")));
    let out = stdout(&o) + &stderr(&o);
    assert!(
        out.contains("`dave` takes no certificate now")
            && out.contains("signature does not verify"),
        "dave's broken CSR is named:\n{out}"
    );
    for quiet in ["`bob`", "`carol`"] {
        assert!(
            !out.contains(&format!("{quiet} takes no certificate")),
            "{quiet}'s CSR passes the rules or is the certified one:\n{out}"
        );
    }
}
