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
