//! What reviewers see: `gitca plan` for the onboarding/offboarding stories in human, JSON and
//! markdown form, and `gitca check`'s diagnostics — pinned by insta snapshots, so any change in
//! what users read is a reviewed diff.

mod common;

use common::*;

/// Serials are random: pin their shape, not their value.
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"\b[0-9a-f]{32}\b", "[SERIAL-32-HEX-DIGITS-----------]");
    s.add_filter(r"\b[0-9a-f]{8}…", "[SERIAL]…");
    s.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    s.add_filter(r"key [0-9a-f]{16}\b", "key [KEY-SHA256-16]");
    s.add_filter(r"`[0-9a-f]{16}`", "`[KEY-SHA256-16]`");
    s
}

fn plans(ca: &Ca, now: &str) -> (String, String, String, i32) {
    let human = run(ca.cmd(now).args(["plan", "--detailed-exitcode"]));
    let json = ok(run(ca.cmd(now).args(["plan", "--json"])));
    let md = ok(run(ca.cmd(now).args(["plan", "--markdown"])));
    (
        stdout(&human),
        stdout(&json),
        stdout(&md),
        human.status.code().unwrap(),
    )
}

#[track_caller]
fn pin(story: &str, ca: &Ca, now: &str) {
    let (human, json, md, code) = plans(ca, now);
    assert_eq!(code, 2, "changes pending for {story}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["changes"], true);
    settings().bind(|| {
        insta::assert_snapshot!(format!("{story}_human"), human);
        insta::assert_snapshot!(format!("{story}_json"), json);
        insta::assert_snapshot!(format!("{story}_markdown"), md);
    });
}

fn alice_ca() -> Ca {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n    email: alice@example.com\n    groups: [push]\n");
    ca.commit("onboard alice");
    ca
}

#[test]
fn plan_new_user() {
    let ca = alice_ca();
    pin("new_user", &ca, T0);
    // Exit 2 before the reconcile, 0 right after it.
    ok(ca.reconcile(T0));
    let o = run(ca.cmd(T0).args(["plan", "--detailed-exitcode"]));
    assert_eq!(o.status.code(), Some(0));
    settings().bind(|| insta::assert_snapshot!("no_changes_human", stdout(&o)));
}

#[test]
fn plan_renewal_due() {
    let ca = alice_ca();
    ok(ca.reconcile(T0));
    pin("renewal_due", &ca, &days_after(T0, 350));
}

#[test]
fn plan_user_removed() {
    let ca = alice_ca();
    ok(ca.reconcile(T0));
    ok(ca.reconcile(&days_after(T0, 340))); // renewed: two unexpired certificates
    ca.identities("users: []\n");
    ca.commit("offboard alice");
    pin("user_removed", &ca, &days_after(T0, 341));
}

#[test]
fn plan_key_compromised() {
    let ca = alice_ca();
    ok(ca.reconcile(T0));
    ca.identities("users:\n  - name: alice\n    email: alice@example.com\n    groups: [push]\n    revoke: key-compromise\n");
    ca.commit("alice's laptop was stolen");
    pin("key_compromised", &ca, &days_after(T0, 20));
}

#[test]
fn plan_csr_replaced() {
    let ca = alice_ca();
    ok(ca.reconcile(T0));
    ca.p256_csr("alice");
    ca.commit("alice rotates her key");
    pin("csr_replaced", &ca, &days_after(T0, 30));
}

#[test]
fn check_reports_every_problem_at_once() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.p256_csr("bob");
    ca.identities("users:\n  - name: alice\n  - name: bob\n    csr: csr/bob.csr\n");
    ca.commit("ok");
    ok(ca.reconcile(T0));
    // Three mistakes in one pull request: a committed key, a duplicate name, a tampered CSR.
    std::fs::copy(ca.keys.join("alice.key"), ca.path("csr/alice.key")).unwrap();
    ca.write(
        "identities/more.yaml",
        "bots:\n  - name: alice\n    csr: csr/alice.csr\n",
    );
    let block = pem::parse(ca.read("csr/bob.csr")).unwrap();
    let mut der = block.contents().to_vec();
    let n = der.len();
    der[n - 3] ^= 0x40;
    ca.write(
        "csr/bob.csr",
        &pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der)),
    );
    let o = fails(run(ca.cmd(T0).arg("check")));
    let out = stdout(&o);
    assert!(out.contains("csr/alice.key"), "{out}");
    assert!(out.contains("`alice` is declared twice"), "{out}");
    assert!(out.contains("CSR of `bob` (csr/bob.csr) refused"), "{out}");
    let tmp = ca.tmp.path().display().to_string();
    settings().bind(|| insta::assert_snapshot!("check_three_problems", out.replace(&tmp, "[TMP]")));
    let o = fails(run(ca.cmd(T0).args(["check", "--json"])));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["ok"], false);
    let errors = doc["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["file"] == "csr/alice.key"), "{doc}");
    assert!(
        errors
            .iter()
            .any(|e| e["file"] == "identities/people.yaml" && e["line"] == 2),
        "{doc}"
    );
}

#[test]
fn check_catches_hand_edits_of_certs_ledger_and_crl() {
    let ca = Ca::issued_to(&["alice", "bob"]);
    ca.identities("users:\n  - name: alice\n");
    ca.commit("offboard bob");
    ok(ca.reconcile(T0));
    ok(run(ca.cmd(T0).arg("check")));
    let base = ca.head();

    // Un-revoking bob by hand in the ledger is caught, with and without --base.
    let ledger = ca.read("ledger.tsv");
    let edited: String = ledger
        .lines()
        .map(|l| {
            if l.contains("\tbob\t") {
                let mut f: Vec<&str> = l.split('\t').collect();
                f[4] = "issued";
                f[7] = "-";
                f[8] = "-";
                f.join("\t")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    ca.write("ledger.tsv", &edited);
    let o = fails(run(ca.cmd(T0).arg("check")));
    assert!(
        stdout(&o).contains("ledger.tsv or crl/ca.crl differs from what ledger.sig seals"),
        "{}",
        stdout(&o)
    );
    let o = fails(run(ca.cmd(T0).args(["check", "--base", &base])));
    assert!(
        stdout(&o).contains("ledger.tsv: edited by hand"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("was revoked and is no longer"),
        "{}",
        stdout(&o)
    );
    git(&ca.root, &["checkout", "--", "ledger.tsv"]);

    // A certificate file swapped for another identity's.
    std::fs::copy(ca.path("certs/alice.crt"), ca.path("certs/bob.crt")).unwrap();
    let o = fails(run(ca.cmd(T0).args(["check", "--base", &base])));
    let out = stdout(&o);
    assert!(out.contains("certs/bob.crt"), "{out}");
    assert!(out.contains("added by hand"), "{out}");
    std::fs::remove_file(ca.path("certs/bob.crt")).unwrap();

    // A CRL that is not signed by the CA.
    let other = Ca::new();
    std::fs::copy(other.path("crl/ca.crl"), ca.path("crl/ca.crl")).unwrap();
    let o = fails(run(ca.cmd(T0).arg("check")));
    assert!(
        stdout(&o).contains("differs from what ledger.sig seals"),
        "{}",
        stdout(&o)
    );
    git(&ca.root, &["checkout", "--", "crl/ca.crl"]);

    // Deleting an identity is offboarding: allowed by --base, shown as a revocation.
    ca.identities("users: []\n");
    let o = ok(run(ca.cmd(T0).args(["check", "--base", &base])));
    assert!(stdout(&o).contains("check passed"));
    let o = ok(run(ca.cmd(T0).args(["plan", "--base", &base])));
    assert!(stdout(&o).contains("identity-removed"), "{}", stdout(&o));
}

#[test]
fn check_watches_the_clock() {
    let ca = Ca::new();
    // Day 5: inside the CRL's refresh window (3 of 7 days): a warning, still passing.
    let o = ok(run(ca.cmd(&days_after(T0, 5)).arg("check")));
    assert!(
        stdout(&o).contains("the CRL expires in 2 days"),
        "{}",
        stdout(&o)
    );
    // Day 8: expired: an error, because nginx now refuses everyone.
    let o = fails(run(ca.cmd(&days_after(T0, 8)).arg("check")));
    assert!(stdout(&o).contains("the CRL expired"), "{}", stdout(&o));
    // The CA itself, 60 days before its expiry.
    let o = fails(run(ca.cmd(&days_after(T0, 3650 - 60)).arg("check")));
    assert!(
        stdout(&o).contains("the CA certificate expires in"),
        "{}",
        stdout(&o)
    );
}
