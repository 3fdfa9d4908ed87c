//! Signed history (issue 23): with `ca/allowed_signers`, gitca's commits carry an SSH signature
//! by a key that is not the CA key, checked here with the real `git verify-commit` and
//! `ssh-keygen -Y verify`; `gitca audit` proves every certificate came from such a commit.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const ALICE: &str = "users:\n  - name: alice\n    csr: csr/alice.csr\n";

/// A CA whose history is signed by `ci-signer` (listed as principal `gitca-ci`), with alice
/// declared and not yet signed for. The allowed-signers file is committed signed by that key
/// with the real `git commit -S`, as a signer adds it.
fn signed_ca() -> (Ca, PathBuf, String) {
    let ca = Ca::new();
    let keys = ca.path("../keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (key, public) = ca.sign_history(&keys);
    ca.p256_csr("alice");
    ca.identities(ALICE);
    ca.commit("onboard alice");
    (ca, key, public)
}

fn reconcile_signed(ca: &Ca, key: &Path, now: &str) -> std::process::Output {
    let mut c = ca.cmd(now);
    c.arg("reconcile")
        .arg("--identity")
        .arg(&ca.identity)
        .env("GITCA_SIGNING_KEY", std::fs::read_to_string(key).unwrap());
    run(&mut c)
}

/// `git verify-commit REV` against `allowed` (an allowed-signers file).
fn git_verify(ca: &Ca, allowed: &Path, rev: &str) -> std::process::Output {
    tool(
        "git",
        &[
            "-C",
            ca.root.to_str().unwrap(),
            "-c",
            "gpg.format=ssh",
            "-c",
            &format!("gpg.ssh.allowedSignersFile={}", allowed.display()),
            "verify-commit",
            rev,
        ],
        &ca.root,
    )
}

/// `ssh-keygen -Y verify` of commit `rev`: the signature from its `gpgsig` header, the payload
/// the commit object without that header, as git hands them to ssh-keygen.
fn ssh_keygen_verify(ca: &Ca, allowed: &Path, principal: &str, rev: &str) -> std::process::Output {
    let raw = git(&ca.root, &["cat-file", "commit", rev]);
    let (mut payload, mut sig, mut in_sig) = (String::new(), String::new(), false);
    for line in raw.split_inclusive('\n') {
        if let Some(first) = line.strip_prefix("gpgsig ") {
            in_sig = true;
            sig.push_str(first);
        } else if in_sig && line.starts_with(' ') {
            sig.push_str(&line[1..]);
        } else {
            in_sig = false;
            payload.push_str(line);
        }
    }
    let dir = ca.path("../verify");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("commit.sig"), sig).unwrap();
    std::fs::write(dir.join("payload"), payload).unwrap();
    require("ssh-keygen");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ssh-keygen -Y verify -f '{}' -I '{principal}' -n git -s commit.sig < payload",
            allowed.display()
        ))
        .current_dir(&dir)
        .output()
        .unwrap()
}

#[test]
fn reconcile_signs_its_commit_and_git_and_ssh_keygen_verify_it() {
    let (ca, key, _) = signed_ca();
    let before = ca.head();
    // Without the signing key: refused before anything is unlocked or written.
    let o = fails(ca.reconcile(T0));
    let err = stderr(&o);
    assert!(err.contains("ca/allowed_signers"), "{err}");
    assert!(err.contains("GITCA_SIGNING_KEY"), "{err}");
    assert_eq!(ca.head(), before);
    assert_eq!(ca.status(), "");
    assert!(!ca.path("certs/alice.crt").exists());

    let o = ok(reconcile_signed(&ca, &key, T0));
    let key_text = std::fs::read_to_string(&key).unwrap();
    for line in key_text.lines().filter(|l| l.len() > 20) {
        assert!(!stdout(&o).contains(line) && !stderr(&o).contains(line));
    }
    assert_ne!(ca.head(), before);
    assert!(ca.path("certs/alice.crt").exists());
    let allowed = ca.path("ca/allowed_signers");
    let v = ok(git_verify(&ca, &allowed, "HEAD"));
    assert!(
        stderr(&v).contains("Good \"git\" signature for gitca-ci"),
        "{}",
        stderr(&v)
    );
    let v = ok(ssh_keygen_verify(&ca, &allowed, "gitca-ci", "HEAD"));
    assert!(
        stdout(&v).contains("Good \"git\" signature"),
        "{}",
        stdout(&v)
    );

    // The same checks fail for a key nobody listed, and for the human commit before.
    let (_, stranger) = ssh_key(&ca.path("../keys"), "stranger");
    let other = ca.path("../keys/other_signers");
    std::fs::write(&other, format!("gitca-ci {stranger}\n")).unwrap();
    assert!(!git_verify(&ca, &other, "HEAD").status.success());
    assert!(!ssh_keygen_verify(&ca, &other, "gitca-ci", "HEAD")
        .status
        .success());
    assert!(!git_verify(&ca, &allowed, "HEAD~1").status.success());
}

#[test]
fn a_signing_key_the_file_does_not_list_is_refused_before_anything_is_written() {
    let (ca, _, _) = signed_ca();
    let (stranger, _) = ssh_key(&ca.path("../keys"), "stranger");
    let before = ca.head();
    let mut c = ca.cmd(T0);
    c.arg("--signing-key")
        .arg(&stranger)
        .arg("reconcile")
        .arg("--identity")
        .arg(&ca.identity);
    let o = fails(run(&mut c));
    assert!(
        stderr(&o).contains("not listed in ca/allowed_signers"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("gitca-ci"), "{}", stderr(&o));
    assert_eq!(ca.head(), before);
    assert_eq!(ca.status(), "");
    // Not a key at all: said plainly, the text never echoed.
    let mut c = ca.cmd(T0);
    c.arg("reconcile")
        .arg("--identity")
        .arg(&ca.identity)
        .env("GITCA_SIGNING_KEY", "not-a-key-but-a-secret-value");
    let o = fails(run(&mut c));
    assert!(
        stderr(&o).contains("not an OpenSSH private key"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("not-a-key-but-a-secret-value"));
    assert_eq!(ca.head(), before);
}

#[test]
fn without_allowed_signers_reconcile_commits_unsigned_as_before() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities(ALICE);
    ca.commit("onboard alice");
    ok(ca.reconcile(T0));
    let raw = git(&ca.root, &["cat-file", "commit", "HEAD"]);
    assert!(raw.starts_with("tree "), "{raw}");
    assert!(!raw.contains("gpgsig"), "{raw}");
    assert!(ca.path("certs/alice.crt").exists());
    // Audit has nothing to prove, and says so; with pinned signers that is a failure.
    let o = ok(run(ca.cmd(T0).arg("audit")));
    assert!(stdout(&o).contains("nothing to prove"), "{}", stdout(&o));
    let keys = ca.path("../keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (_, public) = ssh_key(&keys, "ci-signer");
    std::fs::write(keys.join("pinned"), format!("gitca-ci {public}\n")).unwrap();
    let o = fails(run(ca
        .cmd(T0)
        .args(["audit", "--json", "--signers"])
        .arg(keys.join("pinned"))));
    assert!(stdout(&o).contains("never-signed"), "{}", stdout(&o));
}

#[test]
fn check_names_a_bad_allowed_signer_line_and_base_flags_any_change() {
    let (ca, key, public) = signed_ca();
    ok(reconcile_signed(&ca, &key, T0));
    let good = ca.head();
    ok(run(ca.cmd(T0).args(["check", "--base", &good])));
    // A pull request that adds a signer: flagged for what it is.
    let (_, mallory) = ssh_key(&ca.path("../keys"), "mallory");
    ca.write(
        "ca/allowed_signers",
        &format!("gitca-ci {public}\nmallory {mallory}\n"),
    );
    ca.commit("add a signer");
    let o = fails(run(ca.cmd(T0).args(["check", "--base", &good])));
    let err = stdout(&o) + &stderr(&o);
    assert!(err.contains("who may sign the CA's history"), "{err}");
    // A line gitca cannot read: file and line.
    ca.write(
        "ca/allowed_signers",
        &format!("gitca-ci {public}\n* ssh-rsa AAAA\n"),
    );
    let o = fails(run(ca.cmd(T0).arg("check")));
    let err = stdout(&o) + &stderr(&o);
    assert!(err.contains("ca/allowed_signers:2"), "{err}");
    assert!(err.contains("not a principal"), "{err}");
}

#[test]
fn a_root_ceremony_signs_its_commit_and_refuses_without_the_key() {
    let (ca, custodian) = offline_root_ca(T0);
    let keys = ca.path("../keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (key, _) = ca.sign_history(&keys);
    let before = ca.head();
    let ceremony = |with_key: bool| {
        let mut c = ca.cmd(T0);
        c.args(["root", "sign-crl", "--identity"]).arg(&custodian);
        if with_key {
            c.arg("--signing-key").arg(&key);
        }
        run(&mut c)
    };
    let o = fails(ceremony(false));
    assert!(stderr(&o).contains("GITCA_SIGNING_KEY"), "{}", stderr(&o));
    assert_eq!(ca.head(), before);
    assert_eq!(ca.status(), "");
    ok(ceremony(true));
    assert_ne!(ca.head(), before);
    let v = ok(git_verify(&ca, &ca.path("ca/allowed_signers"), "HEAD"));
    assert!(stderr(&v).contains("gitca-ci"), "{}", stderr(&v));
    // Issuance under the intermediate, a rotation that revokes it, revocation of alice: the
    // signed history proves out, CRL numbers checked per issuer across the rotation.
    ca.p256_csr("alice");
    ca.p256_csr("bob");
    ca.identities(
        "users:\n  - name: alice\n    csr: csr/alice.csr\n  - name: bob\n    csr: csr/bob.csr\n",
    );
    ca.commit("onboard alice and bob");
    ok(reconcile_signed(&ca, &key, T0));
    let d1 = days_after(T0, 1);
    let mut c = ca.cmd(&d1);
    c.args(["root", "new-intermediate", "--identity"])
        .arg(&custodian)
        .arg("--signing-key")
        .arg(&key);
    ok(run(&mut c));
    ca.identities("users:\n  - name: bob\n    csr: csr/bob.csr\n");
    ca.commit("offboard alice");
    ok(reconcile_signed(&ca, &key, &days_after(T0, 2)));
    let (o, v) = audit(&ca);
    assert_eq!(o.status.code(), Some(0), "{v}");
    assert!(v["proven"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["revocations"].as_u64().unwrap() >= 1, "{v}");
}

/// `gitca audit --json`; every report is also checked to be the same when no ledger version
/// is read ahead (GITCA_AUDIT_PREFETCH_KIB=0: the path a version over 4 MiB takes).
fn audit(ca: &Ca) -> (std::process::Output, serde_json::Value) {
    let o = run(ca.cmd(T0).args(["audit", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    let unread = run(ca
        .cmd(T0)
        .args(["audit", "--json"])
        .env("GITCA_AUDIT_PREFETCH_KIB", "0"));
    assert_eq!(unread.status.code(), o.status.code());
    assert_eq!(
        stdout(&unread),
        stdout(&o),
        "the same report without the prefetch"
    );
    (o, v)
}

/// A clean signed history: issuance, a second identity, an offboarding (revocation on the CRL).
fn clean_history() -> (Ca, PathBuf) {
    let (ca, key, _) = signed_ca();
    ok(reconcile_signed(&ca, &key, T0));
    ca.p256_csr("bob");
    ca.identities(&format!("{ALICE}  - name: bob\n    csr: csr/bob.csr\n"));
    ca.commit("onboard bob");
    ok(reconcile_signed(&ca, &key, T0));
    ca.identities("users:\n  - name: bob\n    csr: csr/bob.csr\n");
    ca.commit("offboard alice");
    ok(reconcile_signed(&ca, &key, &days_after(T0, 1)));
    (ca, key)
}

#[test]
fn audit_proves_a_clean_signed_history() {
    let (ca, _) = clean_history();
    let (o, v) = audit(&ca);
    assert_eq!(o.status.code(), Some(0), "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["proven"], 2, "{v}");
    assert_eq!(v["revocations"], 1, "{v}");
    assert_eq!(
        v["crls"], 2,
        "the first CRL and the one revoking alice: {v}"
    );
    assert!(v["break"].is_null(), "{v}");
    let o = ok(run(ca.cmd(T0).arg("audit")));
    assert!(stdout(&o).contains("audit: ok"), "{}", stdout(&o));
    // Pinned signers: the first signers file must be signed by one of them.
    let pinned = ca.path("../keys/pinned_signers");
    std::fs::copy(ca.path("ca/allowed_signers"), &pinned).unwrap();
    let o = ok(run(ca.cmd(T0).arg("audit").arg("--signers").arg(&pinned)));
    assert!(stdout(&o).contains("audit: ok"), "{}", stdout(&o));
    let (_, stranger) = ssh_key(&ca.path("../keys"), "stranger");
    std::fs::write(&pinned, format!("gitca-ci {stranger}\n")).unwrap();
    let o = fails(run(ca
        .cmd(T0)
        .args(["audit", "--json", "--signers"])
        .arg(&pinned)));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["break"]["rule"], "signers-changed-unsigned", "{v}");
    assert_eq!(v["break"]["summary"], "history signers", "{v}");
    assert!(
        v["break"]["message"]
            .as_str()
            .unwrap()
            .contains("--signers"),
        "{v}"
    );
    // Its reading of history is bounded, and the bound says how to raise it.
    let o = fails(run(ca.cmd(T0).arg("audit").env("GITCA_AUDIT_MAX_MIB", "0")));
    assert!(stderr(&o).contains("GITCA_AUDIT_MAX_MIB"), "{}", stderr(&o));
}

#[test]
fn audit_names_an_unsigned_commit_that_adds_a_certificate() {
    let (ca, _) = clean_history();
    // A thief with the CA key (and not the signing key): reconcile without committing, then a
    // plain commit pushed past CI.
    ca.p256_csr("mallory");
    ca.identities("users:\n  - name: bob\n    csr: csr/bob.csr\n  - name: mallory\n    csr: csr/mallory.csr\n");
    ca.commit("onboard mallory");
    ok(run(ca
        .cmd(&days_after(T0, 2))
        .args(["reconcile", "--no-commit", "--identity"])
        .arg(&ca.identity)));
    ca.commit("certificates");
    let bad = ca.head();
    let (o, v) = audit(&ca);
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert_eq!(v["break"]["commit"], bad.as_str(), "{v}");
    assert_eq!(v["break"]["rule"], "unsigned-issuance", "{v}");
    assert_eq!(v["break"]["identity"], "mallory", "{v}");
    let serial = v["break"]["serial"].as_str().unwrap().to_string();
    assert_eq!(serial_of(&ca.path("certs/mallory.crt")), serial);
    let o = fails(run(ca.cmd(T0).arg("audit")));
    let text = stdout(&o);
    assert!(text.contains(&bad[..12]), "{text}");
    assert!(text.contains("what to do"), "{text}");
}

#[test]
fn audit_names_a_signed_commit_that_issues_what_its_parent_never_declared() {
    let (ca, key) = clean_history();
    let main = git(&ca.root, &["rev-parse", "--abbrev-ref", "HEAD"]);
    // On a side branch mallory is declared and signed for; only the outputs reach main, in a
    // commit signed with the real history signing key.
    git(&ca.root, &["checkout", "-q", "-b", "side"]);
    ca.p256_csr("mallory");
    ca.identities("users:\n  - name: bob\n    csr: csr/bob.csr\n  - name: mallory\n    csr: csr/mallory.csr\n");
    ca.commit("onboard mallory");
    ok(reconcile_signed(&ca, &key, &days_after(T0, 2)));
    git(&ca.root, &["checkout", "-q", main.trim()]);
    git(
        &ca.root,
        &[
            "checkout",
            "side",
            "--",
            "ledger.tsv",
            "ledger.sig",
            "certs",
            "crl",
        ],
    );
    ca.signed_commit(&key, "outputs only");
    let bad = ca.head();
    let (o, v) = audit(&ca);
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert_eq!(v["break"]["commit"], bad.as_str(), "{v}");
    assert_eq!(v["break"]["rule"], "undeclared-issuance", "{v}");
    assert_eq!(v["break"]["identity"], "mallory", "{v}");
    // The side branch itself proves out: mallory was declared there.
    git(&ca.root, &["checkout", "-q", "side"]);
    let (o, v) = audit(&ca);
    assert_eq!(o.status.code(), Some(0), "{v}");
}

#[test]
fn audit_refuses_switching_signing_off_or_changing_signers_unsigned() {
    let (ca, _) = clean_history();
    let good = ca.head();
    git(&ca.root, &["rm", "-q", "ca/allowed_signers"]);
    ca.commit("no more signing");
    let (o, v) = audit(&ca);
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert_eq!(v["break"]["rule"], "signers-removed", "{v}");
    git(&ca.root, &["reset", "-q", "--hard", &good]);
    let (_, mallory) = ssh_key(&ca.path("../keys"), "mallory");
    let text = ca.read("ca/allowed_signers");
    ca.write("ca/allowed_signers", &format!("{text}mallory {mallory}\n"));
    ca.commit("one more signer");
    let (o, v) = audit(&ca);
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert_eq!(v["break"]["rule"], "signers-changed-unsigned", "{v}");
    assert_eq!(v["break"]["commit"], ca.head().as_str(), "{v}");
}

#[test]
fn audit_names_a_crl_rolled_back_to_a_lower_number() {
    let (ca, key) = clean_history();
    let first = git(&ca.root, &["rev-list", "--max-parents=0", "HEAD"]);
    let good = ca.head();
    git(&ca.root, &["checkout", first.trim(), "--", "crl/ca.crl"]);
    ca.commit("an older CRL");
    // Pushed unsigned: a change of gitca's outputs nobody allowed signed.
    let (o, v) = audit(&ca);
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert_eq!(v["break"]["rule"], "unsigned-output-change", "{v}");
    assert_eq!(v["break"]["commit"], ca.head().as_str(), "{v}");
    // Signed with the history signing key itself: still a rollback.
    git(&ca.root, &["reset", "-q", "--hard", &good]);
    git(&ca.root, &["checkout", first.trim(), "--", "crl/ca.crl"]);
    ca.signed_commit(&key, "an older CRL, signed");
    let (o, v) = audit(&ca);
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert_eq!(v["break"]["rule"], "crl-number-not-grown", "{v}");
    assert_eq!(v["break"]["commit"], ca.head().as_str(), "{v}");
}

#[test]
fn audit_names_an_unsigned_edit_of_a_ledger_row() {
    let (ca, _) = clean_history();
    // bob's row handed to mallory, no certificate added: an edit, not an issuance.
    let ledger = ca.read("ledger.tsv").replace("\tbob\t", "\tmallory\t");
    assert_ne!(ledger, ca.read("ledger.tsv"));
    ca.write("ledger.tsv", &ledger);
    ca.commit("hand edit");
    let (o, v) = audit(&ca);
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert_eq!(v["break"]["rule"], "unsigned-output-change", "{v}");
    assert_eq!(v["break"]["commit"], ca.head().as_str(), "{v}");
}

/// A hostile allowed-signers file — a link to the process's environment, a binary blob, an
/// oversized one — is named, never read through or echoed, and nothing is written.
#[test]
fn a_hostile_allowed_signers_file_is_named_and_never_followed() {
    for (what, plant) in [("link", 0), ("binary", 1), ("oversized", 2)] {
        let (ca, key, _) = signed_ca();
        let rel = "ca/allowed_signers";
        std::fs::remove_file(ca.path(rel)).unwrap();
        match plant {
            0 => std::os::unix::fs::symlink("/proc/self/environ", ca.path(rel)).unwrap(),
            1 => std::fs::write(ca.path(rel), [0xffu8, 0, 1, 2, b'\n']).unwrap(),
            _ => std::fs::write(ca.path(rel), "# x\n".repeat(20_000)).unwrap(),
        }
        ca.commit("hostile signers");
        let before = ca.head();
        let mut c = ca.cmd(T0);
        c.args(["reconcile", "--identity"])
            .arg(&ca.identity)
            .env("GITCA_SIGNING_KEY", std::fs::read_to_string(&key).unwrap())
            .env("CANARY_PLAIN", "canary-from-the-environment");
        let o = fails(run(&mut c));
        let all = stdout(&o) + &stderr(&o);
        assert!(all.contains(rel), "{what}: {all}");
        assert!(
            !all.contains("canary-from-the-environment"),
            "{what}: {all}"
        );
        assert!(!all.contains("panicked"), "{what}: {all}");
        assert_eq!(ca.head(), before, "{what}");
        assert_eq!(ca.status(), "", "{what}");
        let o = fails(run(ca
            .cmd(T0)
            .arg("check")
            .env("CANARY_PLAIN", "canary-from-the-environment")));
        let all = stdout(&o) + &stderr(&o);
        assert!(all.contains(rel), "{what}: {all}");
        assert!(
            !all.contains("canary-from-the-environment"),
            "{what}: {all}"
        );
        let (o, v) = audit(&ca);
        assert_eq!(o.status.code(), Some(1), "{what}: {v}");
        assert_eq!(v["break"]["commit"], before.as_str(), "{what}: {v}");
        assert!(!stdout(&o).contains("canary"), "{what}");
    }
}
