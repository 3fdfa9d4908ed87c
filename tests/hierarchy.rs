//! Issue 14: an offline root. The root key is encrypted to the custodians only; CI's identity
//! decrypts the intermediate and nothing else. Everything is checked with the real tools:
//! `age` for who can decrypt what, `openssl verify -crl_check_all` and GnuTLS `certtool` for
//! every chain, and the ceremonies (`gitca root …`) through the binary.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A CA with an offline root: `identity` is CI's (it reconciles), `custodian` the root's.
struct Hier {
    ca: Ca,
    custodian: PathBuf,
}

fn offline_root(now: &str) -> Hier {
    let (ca, custodian) = offline_root_ca(now);
    assert!(ca
        .read("ca/root-recipients.txt")
        .lines()
        .any(|l| l.starts_with("age1")));
    Hier { ca, custodian }
}

impl Hier {
    fn request(&self, name: &str, bot: bool, now: &str) -> PathBuf {
        let key = self.ca.keys.join(format!("{name}.key"));
        let mut c = self.ca.cmd(now);
        c.args(["request", name, "--key-out"]).arg(&key);
        if bot {
            c.arg("--bot");
        }
        ok(run(&mut c));
        key
    }

    fn ceremony(&self, now: &str, args: &[&str]) -> std::process::Output {
        run(self
            .ca
            .cmd(now)
            .arg("root")
            .args(args)
            .arg("--identity")
            .arg(&self.custodian))
    }

    /// `openssl verify -crl_check_all` of a chain file against the root and every CRL.
    fn verify(&self, chain: &Path, at: &str) -> std::process::Output {
        self.ca.verify_chain(chain, at)
    }

    fn crls(&self) -> PathBuf {
        all_crls(&self.ca.root)
    }
}

/// Offboards `name`.
fn remove(ca: &Ca, name: &str) {
    ca.offboard(name);
}

fn age_decrypts(identity: &Path, file: &Path) -> bool {
    std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn ci_holds_only_the_intermediate_and_every_chain_verifies() {
    for t in ["age", "openssl", "certtool"] {
        require(t);
    }
    // certtool checks against the real clock: this CA lives now.
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let h = offline_root(&now);
    let ca = &h.ca;
    for f in [
        "ca/root.crt",
        "ca/root.key.age",
        "ca/root-recipients.txt",
        "ca/intermediates.tsv",
        "crl/root.crl",
        "ca/ca.crt",
        "ca/ca.key.age",
        "crl/ca.crl",
    ] {
        assert!(ca.path(f).is_file(), "{f}");
    }
    // Custody, with the real age CLI: CI cannot decrypt the root key; the custodian can, and
    // both can decrypt the intermediate's.
    assert!(!age_decrypts(&ca.identity, &ca.path("ca/root.key.age")));
    assert!(age_decrypts(&h.custodian, &ca.path("ca/root.key.age")));
    assert!(age_decrypts(&ca.identity, &ca.path("ca/ca.key.age")));
    assert!(age_decrypts(&h.custodian, &ca.path("ca/ca.key.age")));
    assert!(!ca.read("ca/root-recipients.txt").contains(&ca.recipient));

    // The root may certify one level below it; the intermediate none, and carries clientAuth
    // (Go checks extended key usages up the chain).
    let root = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "ca/root.crt",
        "-noout",
        "-text",
    ])));
    assert!(root.contains("CA:TRUE, pathlen:1"), "{root}");
    let inter = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "ca/ca.crt",
        "-noout",
        "-text",
    ])));
    assert!(inter.contains("CA:TRUE, pathlen:0"), "{inter}");
    assert!(inter.contains("TLS Web Client Authentication"), "{inter}");

    // CI reconciles with its identity alone: issues, and later revokes.
    h.request("alice", false, &now);
    h.request("ci-bot", true, &now);
    ca.commit("two");
    let o = ok(ca.reconcile(&now));
    assert!(stdout(&o).contains("2 to issue"), "{}", stdout(&o));
    let id = ca.read("ca/intermediates.tsv");
    let intermediate = id.lines().last().unwrap().split('\t').next().unwrap();
    for row in ca.ledger_rows() {
        assert_eq!(
            row.last().unwrap(),
            intermediate,
            "the issuer column: {row:?}"
        );
    }
    for name in ["alice", "ci-bot"] {
        let chain = ca.path(&format!("certs/{name}.crt"));
        assert_eq!(
            ca.read(&format!("certs/{name}.crt"))
                .matches("BEGIN CERTIFICATE")
                .count(),
            2
        );
        let o = h.verify(&chain, &now);
        assert!(o.status.success(), "{name}: {}{}", stdout(&o), stderr(&o));
        // GnuTLS, with both CRLs.
        let o = tool(
            "certtool",
            &[
                "--verify",
                "--load-ca-certificate",
                "ca/root.crt",
                "--load-crl",
                h.crls().to_str().unwrap(),
                "--infile",
                chain.to_str().unwrap(),
            ],
            &ca.root,
        );
        assert!(
            stdout(&o).contains("Chain verification output: Verified"),
            "{name}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }
    // Without the intermediate's CRL, or without the root's, the chain is refused (nginx
    // behaves the same: every CA of the chain needs its CRL).
    let alice = ca.keep("certs/alice.crt", "alice.crt");
    for only in ["crl/root.crl", "crl/ca.crl"] {
        let o = ca.openssl(&[
            "verify",
            "-attime",
            &epoch(&now),
            "-crl_check_all",
            "-CAfile",
            "ca/root.crt",
            "-untrusted",
            alice.to_str().unwrap(),
            "-CRLfile",
            only,
            alice.to_str().unwrap(),
        ]);
        assert!(!o.status.success(), "verified with {only} alone");
    }

    // Offboarding: the intermediate's CRL lists alice; openssl and certtool refuse her.
    remove(ca, "alice");
    ca.commit("alice leaves");
    let o = ok(ca.reconcile(&now));
    assert!(stdout(&o).contains("identity-removed"), "{}", stdout(&o));
    let o = h.verify(&alice, &now);
    assert!(stdout(&o).contains("revoked") || stderr(&o).contains("revoked"));
    let o = tool(
        "certtool",
        &[
            "--verify",
            "--load-ca-certificate",
            "ca/root.crt",
            "--load-crl",
            h.crls().to_str().unwrap(),
            "--infile",
            alice.to_str().unwrap(),
        ],
        &ca.root,
    );
    assert!(stdout(&o).contains("revoked"), "{}", stdout(&o));
    let o = ok(run(ca.cmd(&now).arg("check")));
    assert!(
        stdout(&o).contains("issuing intermediate"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn root_crl_ceremonies_are_scheduled_from_status() {
    let h = offline_root(T0);
    let ca = &h.ca;
    // CI's identity cannot sign the root CRL.
    let o = fails(run(ca
        .cmd(T0)
        .args(["root", "sign-crl", "--identity"])
        .arg(&ca.identity)));
    assert!(
        stderr(&o).contains("the root key is encrypted to"),
        "{}",
        stderr(&o)
    );
    // Fresh: no warning. 310 days later (55 left of 365): check warns, status --expiring says
    // so whatever the window; after the ceremony, all is quiet for another year.
    let o = ok(run(ca.cmd(T0).args(["status", "-q", "--expiring", "1d"])));
    assert!(stdout(&o).is_empty());
    ok(ca.reconcile(&days_after(T0, 5)));
    let day = days_after(T0, 310);
    ok(ca.reconcile(&day));
    let o = ok(run(ca.cmd(&day).arg("check")));
    assert!(
        stdout(&o).contains("gather the root custodians"),
        "{}",
        stdout(&o)
    );
    let o = run(ca.cmd(&day).args(["status", "--expiring", "1d"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("root CRL expires"), "{}", stdout(&o));
    let o = ok(h.ceremony(&day, &["sign-crl"]));
    assert!(stdout(&o).contains("Signed root CRL #2"), "{}", stdout(&o));
    let next = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/root.crl",
        "-noout",
        "-nextupdate",
    ])));
    assert!(
        next.contains(&(day[..4].parse::<i32>().unwrap() + 1).to_string()),
        "{next}"
    );
    let o = run(ca.cmd(&day).args(["status", "-q", "--expiring", "1d"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // A custodian's ceremony is a commit of crl/root.crl alone.
    let files = git(&ca.root, &["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(files.trim(), "crl/root.crl");
}

#[test]
fn a_planned_rotation_keeps_old_certificates_revocable_until_they_retire() {
    let h = offline_root(T0);
    let ca = &h.ca;
    h.request("alice", false, T0);
    h.request("bob", false, T0);
    ca.commit("two");
    ok(ca.reconcile(T0));
    let old_alice = ca.keep("certs/alice.crt", "old-alice.crt");
    let old_bob = ca.keep("certs/bob.crt", "old-bob.crt");
    let d1 = days_after(T0, 30);
    let o = ok(h.ceremony(&d1, &["new-intermediate"]));
    assert!(stdout(&o).contains("retires"), "{}", stdout(&o));
    for f in ["ca/previous.crt", "ca/previous.key.age", "crl/previous.crl"] {
        assert!(ca.path(f).exists(), "{f}");
    }
    assert!(ca.read("ledger.sig").contains("format: 2"));
    let o = ok(run(ca.cmd(&d1).arg("plan")));
    assert!(stdout(&o).contains("issuer-rotated"), "{}", stdout(&o));
    ok(ca.reconcile(&d1));
    // Both generations verify during the grace period (three CRLs on the server).
    for f in [&old_alice, &old_bob, &ca.path("certs/alice.crt")] {
        let o = h.verify(f, &days_after(T0, 31));
        assert!(o.status.success(), "{}: {}", f.display(), stdout(&o));
    }
    // bob leaves during the grace period: both his certificates are revoked, the old one on
    // the retiring intermediate's CRL, kept by reconcile with CI's identity alone.
    let d2 = days_after(T0, 33);
    remove(ca, "bob");
    ca.commit("bob leaves");
    ok(ca.reconcile(&d2));
    let o = h.verify(&old_bob, &d2);
    assert!(
        !o.status.success() && stdout(&o).contains("revoked") || stderr(&o).contains("revoked"),
        "{}",
        stdout(&o)
    );
    let o = ok(ca.openssl(&["crl", "-in", "crl/previous.crl", "-noout", "-text"]));
    let bob_serial = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        old_bob.to_str().unwrap(),
        "-noout",
        "-serial",
    ])));
    let bob_serial = bob_serial.trim().trim_start_matches("serial=");
    assert!(
        stdout(&o).to_uppercase().contains(bob_serial),
        "{}",
        stdout(&o)
    );
    // After the grace period the old certificates are superseded: listed on the retiring
    // intermediate's CRL, which reconcile keeps current while they are unexpired.
    let d3 = days_after(T0, 40);
    let o = ok(ca.reconcile(&d3));
    assert!(stdout(&o).contains("superseded"), "{}", stdout(&o));
    assert!(ca.path("crl/previous.crl").exists());
    let o = h.verify(&old_alice, &d3);
    assert!(!o.status.success(), "the old certificate is revoked");
    assert!(h.verify(&ca.path("certs/alice.crt"), &d3).status.success());
    let d4 = days_after(T0, 60);
    ok(ca.reconcile(&d4));
    assert!(
        ca.read("crl/previous.crl") != git(&ca.root, &["show", "HEAD~3:crl/previous.crl"]),
        "reconcile re-signs the retiring intermediate's CRL"
    );
    // The next ceremony revokes the idle intermediate on the root CRL; reconcile removes it.
    let o = ok(h.ceremony(&d4, &["sign-crl"]));
    assert!(
        stdout(&o).contains("no valid certificate left"),
        "{}",
        stdout(&o)
    );
    let o = ok(ca.reconcile(&d4));
    assert!(stdout(&o).contains("retire"), "{}", stdout(&o));
    for f in ["ca/previous.crt", "ca/previous.key.age", "crl/previous.crl"] {
        assert!(!ca.path(f).exists(), "{f}");
    }
    assert!(ca.read("ledger.sig").contains("format: 1"));
    ok(run(ca.cmd(&d4).arg("check")));
    let o = h.verify(&old_alice, &d4);
    assert!(!o.status.success(), "its intermediate is revoked");
    assert!(h.verify(&ca.path("certs/alice.crt"), &d4).status.success());
    let d3 = d4;
    // A second rotation while one retires is refused with the way out.
    ok(h.ceremony(&d3, &["new-intermediate"]));
    let o = fails(h.ceremony(&days_after(T0, 41), &["new-intermediate"]));
    assert!(stderr(&o).contains("--revoke-previous"), "{}", stderr(&o));
}

#[test]
fn a_compromised_intermediate_is_revoked_and_everyone_reissued() {
    let h = offline_root(T0);
    let ca = &h.ca;
    h.request("alice", false, T0);
    h.request("bot", true, T0);
    ca.commit("two");
    ok(ca.reconcile(T0));
    let old = ca.keep("certs/alice.crt", "old-alice.crt");
    let old_key = ca.read("ca/ca.key.age");
    let d1 = days_after(T0, 3);
    let o = ok(h.ceremony(
        &d1,
        &["new-intermediate", "--revoke-current", "key-compromise"],
    ));
    assert!(
        stdout(&o).contains("revoked (key-compromise)"),
        "{}",
        stdout(&o)
    );
    assert!(!ca.path("ca/previous.key.age").exists());
    assert_ne!(ca.read("ca/ca.key.age"), old_key);
    assert!(ca.read("ca/intermediates.tsv").contains("key-compromise"));
    let o = ok(run(ca.cmd(&d1).args(["plan", "--json"])));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let codes: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["reason"]["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"issuer-revoked"), "{codes:?}");
    ok(ca.reconcile(&d1));
    // The old certificate's intermediate is on the root CRL: refused with every CRL of the
    // old chain too (the old intermediate's last CRL included).
    let with_old = ca.tmp.path().join("with-old.pem");
    std::fs::write(
        &with_old,
        ca.read("crl/root.crl") + &git(&ca.root, &["show", "HEAD~2:crl/ca.crl"]),
    )
    .unwrap();
    let o = ca.openssl(&[
        "verify",
        "-attime",
        &epoch(&d1),
        "-crl_check_all",
        "-CAfile",
        "ca/root.crt",
        "-untrusted",
        old.to_str().unwrap(),
        "-CRLfile",
        with_old.to_str().unwrap(),
        old.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("revoked") || stderr(&o).contains("revoked"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    for name in ["alice", "bot"] {
        let o = h.verify(&ca.path(&format!("certs/{name}.crt")), &d1);
        assert!(o.status.success(), "{name}: {}", stdout(&o));
    }
    // doctor names the failing link.
    let o = run(ca
        .cmd(&d1)
        .args(["doctor", "--cert"])
        .arg(&old)
        .arg("--key")
        .arg(ca.keys.join("alice.key")));
    assert!(
        stdout(&o).contains("was revoked by the root"),
        "{}",
        stdout(&o)
    );
    // One problem, not two: a revoked intermediate's CRL is not published any more.
    assert!(
        !stdout(&o).contains("no CRL of intermediate"),
        "{}",
        stdout(&o)
    );
    let o = run(ca
        .cmd(&d1)
        .args(["doctor", "--cert"])
        .arg(ca.path("certs/alice.crt"))
        .arg("--key")
        .arg(ca.keys.join("alice.key")));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn a_single_level_ca_migrates_and_stays_trusted() {
    let ca = Ca::issued_to(&["alice", "bob"]);
    let old_ca = ca.read("ca/ca.crt");
    let old_alice = ca.keep("certs/alice.crt", "old-alice.crt");
    let (custodian, custodian_recipient) = age_identity(ca.tmp.path(), "root-custodian");
    let d1 = days_after(T0, 10);
    let o = ok(run(ca
        .cmd(&d1)
        .args(["root", "migrate", "--identity"])
        .arg(&ca.identity)
        .args(["--root-recipient", &custodian_recipient])));
    assert!(
        stdout(&o).contains("git history still holds"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        ca.read("ca/root.crt"),
        old_ca,
        "the CA became the root, unchanged"
    );
    assert!(!age_decrypts(&ca.identity, &ca.path("ca/root.key.age")));
    assert!(age_decrypts(&custodian, &ca.path("ca/root.key.age")));
    let h = Hier {
        ca,
        custodian: custodian.clone(),
    };
    let ca = &h.ca;
    // The old certificates verify under the root as before (its CRL is now the root CRL).
    assert!(h.verify(&old_alice, &d1).status.success());
    let o = ok(ca.reconcile(&d1));
    assert!(stdout(&o).contains("issuer-rotated"), "{}", stdout(&o));
    assert!(h.verify(&ca.path("certs/alice.crt"), &d1).status.success());
    // After the grace, the old (root-signed) certificates are superseded, which only the root
    // can publish: reconcile commits and says so (exit 3) until the ceremony publishes them.
    let d2 = days_after(T0, 20);
    let o = run(ca
        .cmd(&d2)
        .arg("reconcile")
        .arg("--identity")
        .arg(&ca.identity));
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("superseded"), "{}", stdout(&o));
    let o = run(ca.cmd(&d2).args(["status", "--expiring", "1d"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("await a root ceremony"),
        "{}",
        stdout(&o)
    );
    assert!(
        h.verify(&old_alice, &d2).status.success(),
        "not published yet"
    );
    // bob leaves: his new certificate is revoked by reconcile at once; his old, root-signed
    // one only by the root: the run stays red (exit 3) until a ceremony.
    remove(ca, "bob");
    ca.commit("bob leaves");
    let d3 = days_after(T0, 21);
    let o = run(ca
        .cmd(&d3)
        .arg("reconcile")
        .arg("--identity")
        .arg(&ca.identity));
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("gitca root sign-crl"), "{}", stderr(&o));
    ok(h.ceremony(&d3, &["sign-crl"]));
    let o = h.verify(&old_alice, &d3);
    assert!(!o.status.success(), "published by the root CRL");
    let o = run(ca
        .cmd(&d3)
        .arg("reconcile")
        .arg("--identity")
        .arg(&ca.identity));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = ok(run(ca.cmd(&d3).args(["status", "--expiring", "1d"])));
    assert!(!stdout(&o).contains("await a root ceremony"));
}

#[test]
fn hand_edits_of_the_root_side_are_refused_or_undone() {
    let h = offline_root(T0);
    let ca = &h.ca;
    h.request("alice", false, T0);
    ca.commit("alice");
    ok(ca.reconcile(T0));
    // A merged pull request puts back an older root CRL: reconcile writes the newest back.
    let d1 = days_after(T0, 5);
    ok(h.ceremony(&d1, &["sign-crl"]));
    let newest = ca.read("crl/root.crl");
    let older = git(&ca.root, &["show", "HEAD~1:crl/root.crl"]);
    ca.write("crl/root.crl", &older);
    ca.commit("merged: older root CRL");
    let o = run(ca
        .cmd(&d1)
        .arg("reconcile")
        .arg("--identity")
        .arg(&ca.identity));
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(ca.read("crl/root.crl"), newest);
    // Another root, a missing root, an intermediate the root did not sign: refused, with the
    // file named; and nothing is written.
    let other = offline_root(T0);
    for (path, text, says) in [
        (
            "ca/root.crt",
            other.ca.read("ca/root.crt"),
            "is not the root this CA was created with",
        ),
        (
            "ca/ca.crt",
            other.ca.read("ca/ca.crt"),
            "is not signed by the root",
        ),
    ] {
        let keep = ca.read(path);
        ca.write(path, &text);
        let before = ca.snapshot();
        let o = fails(run(ca
            .cmd(&d1)
            .arg("reconcile")
            .arg("--identity")
            .arg(&ca.identity)));
        assert!(stderr(&o).contains(says), "{path}: {}", stderr(&o));
        assert_eq!(ca.snapshot(), before);
        let o = fails(run(ca.cmd(&d1).arg("check")));
        assert!(
            stdout(&o).contains(says) || stderr(&o).contains(says),
            "{path}"
        );
        ca.write(path, &keep);
    }
    let root = ca.read("ca/root.crt");
    std::fs::remove_file(ca.path("ca/root.crt")).unwrap();
    // Without ca/root.crt the intermediate is taken for a single-level CA's certificate, and
    // it is not self-signed.
    let o = fails(run(ca.cmd(&d1).arg("check")));
    assert!(
        (stdout(&o) + &stderr(&o)).contains("ca/ca.crt: not the CA certificate"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    ca.write("ca/root.crt", &root);
    // A revoked intermediate put back as the issuing one.
    let d2 = days_after(T0, 6);
    let revoked = ca.read("ca/ca.crt");
    ok(h.ceremony(
        &d2,
        &["new-intermediate", "--revoke-current", "key-compromise"],
    ));
    ca.write("ca/ca.crt", &revoked);
    let o = fails(run(ca.cmd(&d2).arg("check")));
    assert!(
        (stdout(&o) + &stderr(&o)).contains("the root revoked"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn relying_parties_install_the_whole_chain() {
    let h = offline_root(T0);
    let ca = &h.ca;
    let bot_key = h.request("bot", true, T0);
    ca.commit("bot");
    ok(ca.reconcile(T0));
    let public = ca.tmp.path().join("public");
    ok(run(ca.cmd(T0).arg("publish").arg(&public)));
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(public.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["anchor"], "root.crt");
    assert_eq!(index["crls"].as_array().unwrap().len(), 2);
    let pinned = ca.keep("ca/root.crt", "pinned-root.crt");
    let server = ca.tmp.path().join("server");
    let out = server.join("crls.pem");
    let deploy_crl = |now: &str, pin: &Path| {
        run(gitca()
            .args(["--now", now, "deploy", "crl", "--from"])
            .arg(&public)
            .arg("--ca")
            .arg(pin)
            .arg("--out")
            .arg(&out))
    };
    let o = ok(deploy_crl(T0, &pinned));
    assert!(stdout(&o).contains("#1 + #1"), "{}", stdout(&o));
    assert_eq!(
        std::fs::read_to_string(&out)
            .unwrap()
            .matches("BEGIN X509 CRL")
            .count(),
        2
    );
    // Pinning the intermediate instead of the root: the root CRL cannot be checked.
    let wrong = ca.keep("ca/ca.crt", "pinned-intermediate.crt");
    let o = fails(deploy_crl(T0, &wrong));
    assert!(stderr(&o).contains("is not a root"), "{}", stderr(&o));
    // The bot installs its chain; after a compromise rotation it gets the re-issued one.
    let certs_d = ca.tmp.path().join("certs.d");
    let deploy_cert = |now: &str| {
        run(gitca()
            .args(["--now", now, "deploy", "cert", "bot", "--key"])
            .arg(&bot_key)
            .arg("--from")
            .arg(&public)
            .arg("--ca")
            .arg(&pinned)
            .arg("--out-dir")
            .arg(&certs_d))
    };
    ok(deploy_cert(T0));
    let chain = std::fs::read_to_string(certs_d.join("client.cert")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    assert_eq!(
        std::fs::read_to_string(certs_d.join("ca.crt")).unwrap(),
        ca.read("ca/root.crt")
    );
    let d1 = days_after(T0, 2);
    ok(h.ceremony(
        &d1,
        &["new-intermediate", "--revoke-current", "key-compromise"],
    ));
    ok(ca.reconcile(&d1));
    ok(run(ca.cmd(&d1).arg("publish").arg(&public)));
    let o = ok(deploy_crl(&d1, &pinned));
    assert!(stdout(&o).contains("installed CRL #"), "{}", stdout(&o));
    let o = ok(deploy_cert(&d1));
    assert!(
        stdout(&o).contains("installed certificate"),
        "{}",
        stdout(&o)
    );
    let installed = certs_d.join("client.cert");
    let o = ca.openssl(&[
        "verify",
        "-attime",
        &epoch(&d1),
        "-crl_check_all",
        "-CAfile",
        pinned.to_str().unwrap(),
        "-untrusted",
        installed.to_str().unwrap(),
        "-CRLfile",
        out.to_str().unwrap(),
        installed.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

/// Issue 14's simulation: 800 days of daily reconciles with CI's identity on a CA with an
/// offline root. People come and go, a planned rotation on day 150, a compromise rotation on
/// day 700, and the root CRL's ceremonies scheduled only from what `status --expiring`
/// reports (as a cron job would). Every day: no CRL anywhere in the chain has expired, every
/// declared identity holds a valid certificate from the issuing intermediate or (during the
/// grace after a planned rotation) the retiring one, and every removal is on its CRL.
#[test]
fn eight_hundred_days_of_a_hierarchy_never_lock_anyone_out() {
    let h = offline_root(T0);
    let ca = &h.ca;
    let mut people: Vec<String> = (0..4).map(|i| format!("u{i}")).collect();
    for p in &people {
        h.request(p, false, T0);
    }
    ca.commit("day 0");
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let crl_next = |rel: &str| -> time::OffsetDateTime {
        let block = pem::parse(ca.read(rel)).unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(block.contents()).unwrap();
        crl.next_update().unwrap().to_datetime()
    };
    let crl_serials = |rel: &str| -> Vec<String> {
        let block = pem::parse(ca.read(rel)).unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(block.contents()).unwrap();
        crl.iter_revoked_certificates()
            .map(|r| gitca::authority::ca::serial_hex(r.raw_serial()))
            .collect()
    };
    let mut ceremonies = 0;
    let mut gone: Vec<String> = Vec::new();
    let mut next_id = people.len();
    for day in 0..800i64 {
        let now = days_after(T0, day);
        let t = parse(&now);
        if day > 0 && day % 45 == 0 {
            let n = format!("u{next_id}");
            next_id += 1;
            h.request(&n, false, &now);
            people.push(n);
            ca.commit(&format!("day {day}: join"));
        }
        if day % 70 == 35 && people.len() > 2 {
            let n = people.remove(0);
            remove(ca, &n);
            gone.push(n);
            ca.commit(&format!("day {day}: leave"));
        }
        if day == 150 {
            ok(h.ceremony(&now, &["new-intermediate"]));
        }
        if day == 700 {
            ok(h.ceremony(
                &now,
                &["new-intermediate", "--revoke-current", "key-compromise"],
            ));
        }
        let o = ca.reconcile(&now);
        assert_eq!(
            o.status.code(),
            Some(0),
            "day {day}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        // The cron job: a ceremony when status says one is due.
        let s = run(ca.cmd(&now).args(["status", "-q", "--expiring", "1d"]));
        if s.status.code() == Some(1) {
            assert!(stdout(&s).contains("root CRL"), "day {day}: {}", stdout(&s));
            ok(h.ceremony(&now, &["sign-crl"]));
            ceremonies += 1;
        }
        // No CRL in the chain has expired.
        for rel in ["crl/root.crl", "crl/ca.crl", "crl/previous.crl"] {
            if ca.path(rel).exists() {
                assert!(crl_next(rel) > t, "day {day}: {rel} has expired");
            }
        }
        // Everyone declared holds a valid certificate of a live intermediate.
        let issuers: Vec<String> = ca
            .read("ca/intermediates.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("id\t"))
            .filter(|l| l.split('\t').nth(5) == Some("-"))
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect();
        let rows = ca.ledger_rows();
        for p in &people {
            assert!(
                rows.iter().any(|r| &r[1] == p
                    && r[4] == "issued"
                    && parse(&r[5]) <= t
                    && parse(&r[6]) > t
                    && issuers.contains(&r[13])),
                "day {day}: {p} holds no valid certificate"
            );
        }
        // Every certificate of those who left is on its issuer's CRL (or its issuer is gone).
        let current = crl_serials("crl/ca.crl");
        let previous = if ca.path("crl/previous.crl").exists() {
            crl_serials("crl/previous.crl")
        } else {
            Vec::new()
        };
        for g in &gone {
            for r in rows.iter().filter(|r| &r[1] == g && parse(&r[6]) > t) {
                assert!(
                    current.contains(&r[0])
                        || previous.contains(&r[0])
                        || !issuers.contains(&r[13]),
                    "day {day}: {g}'s {} is not on a CRL",
                    r[0]
                );
            }
        }
        if day % 100 == 50 {
            let p = &people[people.len() - 1];
            let o = h.verify(&ca.path(&format!("certs/{p}.crt")), &now);
            assert!(o.status.success(), "day {day}: {p}: {}", stdout(&o));
        }
    }
    assert!(
        ceremonies >= 1,
        "status scheduled the root CRL's ceremonies"
    );
}

/// Merged edits of the hierarchy's files during a planned rotation: putting the retiring
/// intermediate back in charge, deleting it, or writing a revocation into the unsigned roster.
/// None may drop what the current intermediate issued or stop revocations silently.
#[test]
fn merged_edits_during_a_rotation_never_drop_certificates_or_revocations() {
    let h = offline_root(T0);
    let ca = &h.ca;
    h.request("alice", false, T0);
    h.request("mallory", false, T0);
    ca.commit("two");
    ok(ca.reconcile(T0));
    let d1 = days_after(T0, 30);
    ok(h.ceremony(&d1, &["new-intermediate"]));
    ok(ca.reconcile(&d1));
    let ledger = ca.read("ledger.tsv");
    let d2 = days_after(T0, 31);
    let refused = |says: &str| {
        let head = ca.head();
        let o = fails(ca.reconcile(&d2));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
        assert_eq!(ca.head(), head, "nothing committed");
        assert_eq!(ca.read("ledger.tsv"), ledger, "no ledger row dropped");
        let o = fails(run(ca.cmd(&d2).arg("check")));
        assert!((stdout(&o) + &stderr(&o)).contains(says));
        o
    };
    // 1. The retiring intermediate put back as the current one (with its key).
    let current = (ca.read("ca/ca.crt"), ca.read("ca/ca.key.age"));
    ca.write("ca/ca.crt", &ca.read("ca/previous.crt"));
    ca.write("ca/ca.key.age", &ca.read("ca/previous.key.age"));
    ca.commit("merged: swap");
    let o = refused("a retired intermediate was put back");
    // Its hint restores the current one, and the CA works again.
    let hint = stdout(&o) + &stderr(&o);
    ca.sh(&suggested(&hint, "git checkout")[0]);
    assert_eq!(ca.read("ca/ca.crt"), current.0);
    assert_eq!(ca.read("ca/ca.key.age"), current.1);
    ca.commit("restored");

    // 2. The retiring intermediate's files deleted: its unexpired certificates would lose
    // their CRL.
    let keep: Vec<(String, String)> =
        ["ca/previous.crt", "ca/previous.key.age", "crl/previous.crl"]
            .iter()
            .map(|f| (f.to_string(), ca.read(f)))
            .collect();
    for (f, _) in &keep {
        std::fs::remove_file(ca.path(f)).unwrap();
    }
    ca.commit("merged: previous deleted");
    let o = refused("neither current, retiring");
    let hint = stdout(&o) + &stderr(&o);
    ca.sh(&suggested(&hint, "git checkout")[0]);
    for (f, text) in &keep {
        assert_eq!(&ca.read(f), text, "{f} restored by the hint");
    }
    ca.commit("previous restored");

    // 3. A revocation written into the roster (unsigned): the root CRL says otherwise, so
    // reconcile goes on, and mallory's offboarding is applied.
    let roster = ca.read("ca/intermediates.tsv");
    let forged: Vec<String> = roster
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split('\t').collect();
            if f.len() == 7 && f[4] == "-" {
                f[4] = "2026-01-01T00:00:00Z";
                f[5] = "key-compromise";
            }
            f.join("\t")
        })
        .collect();
    ca.write("ca/intermediates.tsv", &(forged.join("\n") + "\n"));
    remove(ca, "mallory");
    ca.commit("merged: roster revocation + offboard mallory");
    ok(ca.reconcile(&d2));
    let rows = ca.ledger_rows();
    assert!(
        rows.iter()
            .filter(|r| r[1] == "mallory" && r[6].as_str() > d2.as_str())
            .all(|r| r[4] == "revoked"),
        "every unexpired certificate of mallory revoked: {rows:?}"
    );
}

/// After a compromise of CI, the new intermediate's key must not be readable with the leaked
/// identity: `--recipient` gives it to CI's new identity (and the custodians) only.
#[test]
fn a_compromise_rotation_can_leave_the_leaked_ci_identity_behind() {
    let h = offline_root(T0);
    let ca = &h.ca;
    h.request("alice", false, T0);
    ca.commit("alice");
    ok(ca.reconcile(T0));
    let d1 = days_after(T0, 3);
    // Without --recipient the ceremony warns, and the leaked identity does open the new key.
    let o = ok(h.ceremony(
        &d1,
        &["new-intermediate", "--revoke-current", "key-compromise"],
    ));
    assert!(
        stdout(&o).contains(
            "warning: the new intermediate's key is encrypted to ca/recipients.txt as it was"
        ),
        "{}",
        stdout(&o)
    );
    assert!(age_decrypts(&ca.identity, &ca.path("ca/ca.key.age")));
    // --recipient only goes with --revoke-current.
    let (new_ci, new_r) = age_identity(ca.tmp.path(), "new-ci");
    let o = fails(h.ceremony(&d1, &["new-intermediate", "--recipient", &new_r]));
    assert!(stderr(&o).contains("--revoke-current"), "{}", stderr(&o));
    // With it: the leaked identity opens nothing new, CI's new one and the custodian do.
    let o = ok(h.ceremony(
        &d1,
        &[
            "new-intermediate",
            "--revoke-current",
            "key-compromise",
            "--recipient",
            &new_r,
        ],
    ));
    assert!(!stdout(&o).contains("warning"), "{}", stdout(&o));
    assert!(!age_decrypts(&ca.identity, &ca.path("ca/ca.key.age")));
    assert!(age_decrypts(&new_ci, &ca.path("ca/ca.key.age")));
    assert!(age_decrypts(&h.custodian, &ca.path("ca/ca.key.age")));
    assert!(ca.read("ca/recipients.txt").contains(&new_r));
    ok(run(ca
        .cmd(&d1)
        .args(["reconcile", "--identity"])
        .arg(&new_ci)));
    let o = h.verify(&ca.path("certs/alice.crt"), &d1);
    assert!(o.status.success(), "{}", stdout(&o));
}

/// On a server or a bot, outside any CA repository: doctor takes the intermediate from the
/// certificate file, checks it against the pinned root, and reads both CRLs as `deploy crl`
/// wrote them.
#[test]
fn doctor_outside_the_repository_reads_the_chain_and_both_crls() {
    let h = offline_root(T0);
    let ca = &h.ca;
    let key = h.request("alice", false, T0);
    ca.commit("alice");
    ok(ca.reconcile(T0));
    let box_dir = ca.tmp.path().join("bot-box");
    std::fs::create_dir_all(&box_dir).unwrap();
    let publish_and_deploy = |at: &str| {
        let public = ca.tmp.path().join("public");
        ok(run(ca.cmd(at).arg("publish").arg(&public)));
        ok(run(gitca()
            .current_dir(&box_dir)
            .args(["--now", at, "deploy", "crl", "--from"])
            .arg(&public)
            .arg("--ca")
            .arg(ca.path("ca/root.crt"))
            .args(["--out", "ca.crl"])));
    };
    publish_and_deploy(T0);
    ok(run(ca
        .cmd(T0)
        .args(["bundle", "alice", "--key"])
        .arg(&key)
        .arg("--out-dir")
        .arg(box_dir.join("certs"))));
    let doctor = |at: &str| {
        run(gitca().current_dir(&box_dir).args([
            "--now",
            at,
            "doctor",
            "--certs-dir",
            "certs",
            "--crl",
            "ca.crl",
        ]))
    };
    let o = doctor(T0);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("is not revoked on the root CRL"),
        "{}",
        stdout(&o)
    );
    // alice leaves: the new CRLs reach the box, and doctor says she is refused.
    let d1 = days_after(T0, 1);
    remove(ca, "alice");
    ca.commit("alice leaves");
    ok(ca.reconcile(&d1));
    publish_and_deploy(&d1);
    let o = doctor(&d1);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("revoked on"), "{}", stdout(&o));
}

/// The serials a root CRL lists (openssl crl -text), lowercase.
fn root_crl_serials(ca: &Ca) -> Vec<String> {
    let o = ok(ca.openssl(&["crl", "-in", "crl/root.crl", "-noout", "-text"]));
    stdout(&o)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

/// Rewrites the roster row of `serial` with `f` (fields: id, serial, not_before, not_after,
/// revoked_at, reason, subject) and commits it, as a merged pull request would.
fn edit_roster(ca: &Ca, serial: &str, f: impl Fn(&mut Vec<String>)) {
    let text: String = ca
        .read("ca/intermediates.tsv")
        .lines()
        .map(|l| {
            let mut fields: Vec<String> = l.split('\t').map(str::to_string).collect();
            if fields.get(1).map(String::as_str) == Some(serial) {
                f(&mut fields);
            }
            fields.join("\t") + "\n"
        })
        .collect();
    ca.write("ca/intermediates.tsv", &text);
    ca.commit("merged: edit the roster");
}

/// Issue 26, items 1 and 2: a ceremony revokes the intermediate the root signed — its serial
/// from its certificate, never from `ca/intermediates.tsv` — and an intermediate the root CRL
/// revokes stays on every later root CRL until its real notAfter, whatever the roster says.
/// The roster is derived and checked: a mismatch is an error naming the file and its remedy.
#[test]
fn ceremonies_revoke_what_the_root_signed_whatever_the_roster_says() {
    let h = offline_root(T0);
    h.request("alice", false, T0);
    h.ca.commit("onboard alice");
    ok(h.ca.reconcile(T0));
    let int1_cert = h.ca.keep("ca/ca.crt", "int1.pem");
    let int1 = serial_of(&h.ca.path("ca/ca.crt"));
    ok(run(h.ca.cmd(T0).arg("check")));
    // The compromised intermediate, checked against the root and the root CRL alone.
    let int1_revoked = |at: &str| {
        let v = h.ca.openssl(&[
            "verify",
            "-attime",
            &epoch(at),
            "-crl_check",
            "-CAfile",
            "ca/root.crt",
            "-CRLfile",
            "crl/root.crl",
            int1_cert.to_str().unwrap(),
        ]);
        !v.status.success() && format!("{}{}", stdout(&v), stderr(&v)).contains("revoked")
    };
    assert!(
        !int1_revoked(T0),
        "the positive path: int1 verifies before the ceremony"
    );

    // 1. The current intermediate's serial is forged in the roster and merged.
    edit_roster(&h.ca, &int1, |f| f[1] = "0bad".into());
    let o = run(h.ca.cmd(T0).arg("check"));
    let err = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "check passes a forged roster:\n{err}");
    assert!(
        err.contains("ca/intermediates.tsv") && err.contains("0bad") && err.contains(&int1),
        "{err}"
    );
    // Reconcile does not read it: revocations and signing go on.
    ok(h.ca.reconcile(T0));
    let (_, ci2) = age_identity(h.ca.tmp.path(), "ci-2");
    let day1 = days_after(T0, 1);
    ok(h.ceremony(
        &day1,
        &[
            "new-intermediate",
            "--revoke-current",
            "key-compromise",
            "--recipient",
            &ci2,
        ],
    ));
    let listed = root_crl_serials(&h.ca);
    assert!(
        listed.contains(&int1),
        "root CRL lists {listed:?}, not {int1}"
    );
    assert!(!listed.iter().any(|s| s.ends_with("0bad")), "{listed:?}");
    assert!(int1_revoked(&day1), "the compromised intermediate verifies");
    // The ceremony wrote the roster back as the root signed it.
    let o = run(h.ca.cmd(&day1).arg("check"));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains("ca/intermediates.tsv"), "{all}");

    // 2. The revocation is blanked in the roster (and the expiry moved into the past), merged;
    //    the next root CRL still lists the compromised intermediate.
    edit_roster(&h.ca, &int1, |f| {
        f[3] = "2026-01-01T00:00:00Z".into();
        f[4] = "-".into();
        f[5] = "-".into();
    });
    let o = run(h.ca.cmd(&day1).arg("check"));
    assert!(!o.status.success());
    let day2 = days_after(T0, 2);
    ok(h.ceremony(&day2, &["sign-crl"]));
    let listed = root_crl_serials(&h.ca);
    assert!(
        listed.contains(&int1),
        "the revocation was dropped: {listed:?}"
    );
    assert!(
        int1_revoked(&day2),
        "the compromised intermediate verifies again"
    );
    let roster = h.ca.read("ca/intermediates.tsv");
    assert!(
        roster
            .lines()
            .any(|l| l.contains(&int1) && l.contains("key-compromise")),
        "{roster}"
    );
}

/// Appends a recipient to a recipients file and commits it, as a merged pull request (or a
/// compromised CI runner) would.
fn append_recipient(ca: &Ca, file: &str, recipient: &str) {
    let text = ca.read(file) + recipient + "\n";
    ca.write(file, &text);
    ca.commit("merged: one more recipient");
}

/// Issue 26, item 3: whoever receives a key is said, and agreed to. A recipient appended to
/// `ca/recipients.txt` or `ca/root-recipients.txt` by a merge is flagged by check, shown by
/// every ceremony and rekey, and refused unless a person names it; the age CLI proves who can
/// decrypt what came out.
#[test]
fn a_recipient_nobody_confirmed_never_receives_a_key() {
    let h = offline_root(T0);
    let tmp = h.ca.tmp.path().to_path_buf();
    let (mallory, mallory_r) = age_identity(&tmp, "mallory");
    ok(run(h.ca.cmd(T0).arg("check")));

    // ca/recipients.txt: check says so; a planned rotation refuses and writes nothing.
    append_recipient(&h.ca, "ca/recipients.txt", &mallory_r);
    let o = run(h.ca.cmd(T0).arg("check"));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "{all}");
    assert!(
        all.contains("ca/recipients.txt") && all.contains(&format!("+ {mallory_r}")),
        "{all}"
    );
    let head = h.ca.head();
    let o = h.ceremony(&days_after(T0, 1), &["new-intermediate"]);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !o.status.success(),
        "the ceremony encrypted to mallory:\n{all}"
    );
    assert!(
        all.contains("nobody confirmed") && all.contains(&mallory_r),
        "{all}"
    );
    assert!(
        all.contains("Encrypting the new intermediate's key to"),
        "{all}"
    );
    assert_eq!(h.ca.head(), head, "nothing committed");
    // A compromise rotation to CI's new identity leaves the file aside: mallory gets nothing.
    let (ci2, ci2_r) = age_identity(&tmp, "ci-2");
    ok(h.ceremony(
        &days_after(T0, 1),
        &[
            "new-intermediate",
            "--revoke-current",
            "key-compromise",
            "--recipient",
            &ci2_r,
        ],
    ));
    assert!(age_decrypts(&ci2, &h.ca.path("ca/ca.key.age")));
    assert!(age_decrypts(&h.custodian, &h.ca.path("ca/ca.key.age")));
    assert!(!age_decrypts(&mallory, &h.ca.path("ca/ca.key.age")));
    ok(run(h.ca.cmd(&days_after(T0, 1)).arg("check")));

    // ca/root-recipients.txt: the root custodians receive every new intermediate's key.
    append_recipient(&h.ca, "ca/root-recipients.txt", &mallory_r);
    let o = run(h.ca.cmd(&days_after(T0, 2)).arg("check"));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("ca/root-recipients.txt")
            || stdout(&o).contains("ca/root-recipients.txt")
    );
    let (ci3, ci3_r) = age_identity(&tmp, "ci-3");
    let head = h.ca.head();
    let o = h.ceremony(
        &days_after(T0, 2),
        &[
            "new-intermediate",
            "--revoke-current",
            "key-compromise",
            "--recipient",
            &ci3_r,
        ],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    assert_eq!(h.ca.head(), head);
    // rekey --root refuses to keep mallory unless someone names her.
    let (custodian2, custodian2_r) = age_identity(&tmp, "custodian-2");
    let o = run(h
        .ca
        .cmd(&days_after(T0, 2))
        .args(["rekey", "--root", "--add", &custodian2_r, "--identity"])
        .arg(&h.custodian));
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(!age_decrypts(&custodian2, &h.ca.path("ca/root.key.age")));
    // The positive path: a person who checked names her, and she does get the key.
    ok(h.ceremony(
        &days_after(T0, 2),
        &[
            "new-intermediate",
            "--revoke-current",
            "superseded",
            "--recipient",
            &ci3_r,
            "--accept-recipient",
            &mallory_r,
        ],
    ));
    assert!(age_decrypts(&ci3, &h.ca.path("ca/ca.key.age")));
    assert!(age_decrypts(&mallory, &h.ca.path("ca/ca.key.age")));
    let _ = ci2;
}

/// Issue 26, item 3, for a single-level CA: rekey and migrate refuse a recipient a merge added.
#[test]
fn rekey_and_migrate_refuse_a_recipient_nobody_confirmed() {
    let ca = Ca::new();
    let tmp = ca.tmp.path().to_path_buf();
    let (mallory, mallory_r) = age_identity(&tmp, "mallory");
    let (bob, bob_r) = age_identity(&tmp, "bob");
    append_recipient(&ca, "ca/recipients.txt", &mallory_r);
    let o = run(ca
        .cmd(T0)
        .args(["rekey", "--add", &bob_r, "--identity"])
        .arg(&ca.identity));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "{all}");
    assert!(all.contains(&mallory_r), "{all}");
    assert!(!age_decrypts(&mallory, &ca.path("ca/ca.key.age")));
    let (custodian, custodian_r) = age_identity(&tmp, "root-custodian");
    let o = run(ca
        .cmd(T0)
        .args([
            "root",
            "migrate",
            "--root-recipient",
            &custodian_r,
            "--identity",
        ])
        .arg(&ca.identity));
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(!ca.path("ca/root.crt").exists());
    // Restoring the signed list, as check says, and the rekey goes through.
    git(&ca.root, &["checkout", "HEAD~1", "--", "ca/recipients.txt"]);
    ca.commit("restore the signed list");
    ok(run(ca.cmd(T0).arg("check")));
    ok(run(ca
        .cmd(T0)
        .args(["rekey", "--add", &bob_r, "--identity"])
        .arg(&ca.identity)));
    assert!(age_decrypts(&bob, &ca.path("ca/ca.key.age")));
    assert!(!age_decrypts(&mallory, &ca.path("ca/ca.key.age")));
    ok(run(ca.cmd(T0).arg("check")));
    let _ = custodian;
}
