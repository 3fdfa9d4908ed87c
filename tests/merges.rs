//! Issue 19/26, the attack on history's shape: a fast-forward push of a merge whose FIRST parent
//! is an old commit (or another CA's orphan) and whose second parent is main hides everything
//! main's line holds behind a second parent. Each rule that reads history (signed recipients,
//! the seal, the trust anchor) must still see it. Proved with the real `age`, `openssl` and
//! `git commit-tree`, as an attacker with push rights would build the merge.

mod common;

use std::path::Path;

use common::*;

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

/// Makes HEAD a merge of `first` (its first parent) and the current HEAD (its second), with
/// the tree the index holds: a fast-forward of main that keeps main off the first-parent line.
fn merge_behind(repo: &Path, first: &str) {
    let tree = git(repo, &["write-tree"]);
    let head = git(repo, &["rev-parse", "HEAD"]);
    let merge = git(
        repo,
        &[
            "commit-tree",
            tree.trim(),
            "-p",
            first,
            "-p",
            head.trim(),
            "-m",
            "Merge branch 'main' into docs-typo",
        ],
    );
    ok(tool(
        "git",
        &["merge-base", "--is-ancestor", head.trim(), merge.trim()],
        repo,
    ));
    git(repo, &["reset", "-q", "--hard", merge.trim()]);
}

/// A signed recipients list rolled back behind the merge is still older than the newest one the
/// key signed: check fails naming it, rekey refuses to encrypt to the recipient it brings back.
#[test]
fn a_rollback_behind_a_second_parent_is_still_a_rollback_of_recipients() {
    let ca = Ca::new();
    let tmp = ca.tmp.path().to_path_buf();
    let (mallory, mallory_r) = age_identity(&tmp, "mallory");
    let (bob, bob_r) = age_identity(&tmp, "bob");
    // Sequence 2: mallory added by a custodian; sequence 3: removed again.
    ok(run(ca
        .cmd(T0)
        .args(["rekey", "--add", &mallory_r, "--identity"])
        .arg(&ca.identity)));
    let with_mallory = ca.head();
    ok(run(ca
        .cmd(T0)
        .args(["rekey", "--remove", &mallory_r, "--identity"])
        .arg(&ca.identity)));
    assert!(!age_decrypts(&mallory, &ca.path("ca/ca.key.age")));
    ok(run(ca.cmd(T0).arg("check")));

    let old = git(
        &ca.root,
        &["rev-parse", &format!("{with_mallory}:ca/recipients.txt")],
    );
    git(
        &ca.root,
        &[
            "update-index",
            "--cacheinfo",
            &format!("100644,{},ca/recipients.txt", old.trim()),
        ],
    );
    merge_behind(&ca.root, &with_mallory);

    let o = fails(run(ca.cmd(T0).arg("check")));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("older signed list"),
        "check names the rollback: {all}"
    );
    let o = run(ca
        .cmd(T0)
        .args(["rekey", "--add", &bob_r, "--identity"])
        .arg(&ca.identity));
    assert!(!o.status.success(), "rekey refuses: {}", stdout(&o));
    assert!(!age_decrypts(&mallory, &ca.path("ca/ca.key.age")));
    // The positive path: the restore check names, and the custodian's rekey goes through.
    git(&ca.root, &["checkout", "HEAD^2", "--", "ca/recipients.txt"]);
    ca.commit("restore the signed recipients");
    ok(run(ca.cmd(T0).arg("check")));
    ok(run(ca
        .cmd(T0)
        .args(["rekey", "--add", &bob_r, "--identity"])
        .arg(&ca.identity)));
    assert!(age_decrypts(&bob, &ca.path("ca/ca.key.age")));
    assert!(!age_decrypts(&mallory, &ca.path("ca/ca.key.age")));
}

/// The seal, ledger and CRL of an old commit put back behind a second parent: reconcile finds
/// main's newer seal there, keeps every revocation and numbers the CRL past it.
#[test]
fn a_rollback_behind_a_second_parent_keeps_every_revocation() {
    let ca = Ca::new();
    for n in ["alice", "bob", "carol"] {
        ca.p256_csr(n);
    }
    ca.identities("users:\n  - name: alice\n  - name: bob\n  - name: carol\n");
    ca.commit("onboard");
    ok(ca.reconcile(T0));
    let old = ca.head();
    let bob = ca.keep("certs/bob.crt", "bob-old.crt");
    let later = days_after(T0, 1);
    ca.offboard("bob");
    ca.commit("offboard bob");
    ok(ca.reconcile(&later));
    let crl_number = |ca: &Ca| -> u64 {
        let o = ok(ca.openssl(&["crl", "-in", "crl/ca.crl", "-noout", "-crlnumber"]));
        let text = stdout(&o);
        u64::from_str_radix(text.trim().trim_start_matches("crlNumber=0x"), 16).unwrap()
    };
    let newest = crl_number(&ca);
    assert!(
        !ca.verify_crl(&bob, &later).status.success(),
        "bob is revoked"
    );

    // The attacker's merge: first parent the commit before bob was revoked, tree as of then
    // but without bob's entry (so nothing re-declares him).
    git(&ca.root, &["read-tree", &old]);
    ca.write(
        &ca.declaration("bob"),
        "users:\n  - name: alice\n  - name: carol\n",
    );
    git(&ca.root, &["rm", "-q", "--cached", "csr/bob.csr"]);
    git(&ca.root, &["add", &ca.declaration("bob")]);
    merge_behind(&ca.root, &old);
    std::fs::remove_file(ca.path("csr/bob.csr")).unwrap();
    assert_eq!(ca.read("ledger.tsv").matches("\trevoked\t").count(), 0);

    let o = run(ca.cmd(&later).arg("check"));
    assert!(!o.status.success(), "check sees the rollback");
    let o = ca.reconcile(&days_after(T0, 2));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("older sealed state"), "{all}");
    assert!(
        crl_number(&ca) >= newest,
        "the newest CRL stands, never an older one"
    );
    assert!(
        !ca.verify_crl(&bob, &days_after(T0, 2)).status.success(),
        "bob stays revoked"
    );
    let alice = ca.path("certs/alice.crt");
    ok(ca.verify_crl(&alice, &days_after(T0, 2)));
}

/// Another CA's orphan commit as first parent: two beginnings of a CA in reachable history.
/// check and reconcile refuse, naming both, and sign nothing.
#[test]
fn another_cas_orphan_as_first_parent_is_refused() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    ca.commit("onboard");
    ok(ca.reconcile(T0));
    ok(run(ca.cmd(T0).arg("check")));
    let evil = ca.tmp.path().join("evil");
    ok(run(gitca().args([
        "init",
        "-C",
        evil.to_str().unwrap(),
        "--name",
        "Test Registry CA",
        "--organization",
        "Acme",
        "--recipient",
        &ca.recipient,
        "--now",
        T0,
    ])));
    git(
        &ca.root,
        &["fetch", "-q", evil.to_str().unwrap(), "main:evil"],
    );
    let orphan = git(&ca.root, &["rev-list", "--max-parents=0", "evil"]);
    git(&ca.root, &["read-tree", "evil"]);
    for p in ["identities/people.yaml", "csr/alice.csr"] {
        let blob = git(&ca.root, &["rev-parse", &format!("main:{p}")]);
        git(
            &ca.root,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{},{p}", blob.trim()),
            ],
        );
    }
    merge_behind(&ca.root, orphan.trim());
    let before = ca.head();
    for args in [vec!["check"], vec!["plan"]] {
        let o = fails(run(ca.cmd(T0).args(&args)));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(all.contains("two different CAs"), "{args:?}: {all}");
    }
    let o = fails(ca.reconcile(&days_after(T0, 1)));
    assert!(stderr(&o).contains("two different CAs"), "{}", stderr(&o));
    assert_eq!(ca.head(), before, "nothing committed");
    assert!(!ca.path("certs/alice.crt").exists());
}
