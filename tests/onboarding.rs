//! Onboarding as people do it: two people request on two branches at once, people bring their
//! own key or CSR, and a person is renamed without losing their key.

mod common;

use std::path::Path;

use common::*;

const T0: &str = "2026-01-10T00:00:00Z";

/// `gitca request` in the CA repository, as the person runs it.
fn request(ca: &Ca, args: &[&str]) -> std::process::Output {
    run(ca.cmd(T0).arg("request").args(args))
}

/// The public key of a certificate or private key file, PEM, as openssl prints it.
fn pubkey_of_cert(ca: &Ca, cert: &str) -> String {
    stdout(&ok(ca.openssl(&["x509", "-in", cert, "-noout", "-pubkey"])))
}
fn pubkey_of_key(ca: &Ca, key: &Path) -> String {
    stdout(&ok(ca.openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
    ])))
}

#[test]
fn two_people_onboarding_on_two_branches_merge_without_conflict() {
    let ca = Ca::new();
    let main = git(&ca.root, &["rev-parse", "--abbrev-ref", "HEAD"]);
    let main = main.trim();
    for who in ["dana", "erin"] {
        git(&ca.root, &["switch", "-q", "-c", who, main]);
        let key = ca.keys.join(format!("{who}.key"));
        let email = format!("{who}@example.com");
        ok(request(
            &ca,
            &[who, "--email", &email, "--key-out", key.to_str().unwrap()],
        ));
        ca.commit(&format!("onboard {who}"));
    }
    git(&ca.root, &["switch", "-q", main]);
    // Both merges are clean: each request wrote its own identities/NAME.yaml.
    for who in ["dana", "erin"] {
        let o = run(std::process::Command::new("git")
            .args(["merge", "--no-edit", "-q", who])
            .current_dir(&ca.root));
        assert!(o.status.success(), "merge {who}: {}", stderr(&o));
    }
    assert!(ca.path("identities/dana.yaml").is_file());
    assert!(ca.path("identities/erin.yaml").is_file());
    ok(ca.reconcile(T0));
    for who in ["dana", "erin"] {
        assert!(ca.path(&format!("certs/{who}.crt")).is_file(), "{who}");
    }
    // The same two requests appended to one shared file (--file) do conflict: the proof that
    // the per-identity file is what avoids it.
    let ca = Ca::new();
    for who in ["fay", "gus"] {
        git(&ca.root, &["switch", "-q", "-c", who, main]);
        ok(request(
            &ca,
            &[
                who,
                "--file",
                "identities/people.yaml",
                "--key-out",
                ca.keys.join(format!("{who}.key")).to_str().unwrap(),
            ],
        ));
        ca.commit(&format!("onboard {who}"));
    }
    git(&ca.root, &["switch", "-q", main]);
    git(&ca.root, &["merge", "--no-edit", "-q", "fay"]);
    let o = run(std::process::Command::new("git")
        .args(["merge", "--no-edit", "-q", "gus"])
        .current_dir(&ca.root));
    assert!(!o.status.success(), "a shared file conflicts");
}

#[test]
fn a_person_brings_their_own_ed25519_key() {
    let ca = Ca::new();
    let key = ca.keys.join("hana.key");
    ok(ca.openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        key.to_str().unwrap(),
    ]));
    let before = std::fs::read(&key).unwrap();
    let o = ok(request(&ca, &["hana", "--key", key.to_str().unwrap()]));
    assert!(stdout(&o).contains("Ed25519"), "{}", stdout(&o));
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "the key is left alone"
    );
    ca.commit("onboard hana");
    ok(ca.reconcile(T0));
    assert_eq!(
        pubkey_of_cert(&ca, "certs/hana.crt"),
        pubkey_of_key(&ca, &key),
        "certified for exactly that key"
    );
    // A key gitca does not accept (RSA 1024) is refused before anything is written.
    let weak = ca.keys.join("weak.key");
    ok(ca.openssl(&[
        "genpkey",
        "-algorithm",
        "rsa",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        weak.to_str().unwrap(),
    ]));
    let snap = ca.snapshot();
    let o = fails(request(&ca, &["ivan", "--key", weak.to_str().unwrap()]));
    assert!(stderr(&o).contains("help:"), "{}", stderr(&o));
    assert_eq!(ca.snapshot(), snap, "nothing written");
    // A new key for the same new name goes through (the refusal was the key's).
    let fresh = ca.keys.join("lou2.key");
    ok(request(
        &ca,
        &["lou2", "--key-out", fresh.to_str().unwrap()],
    ));
    assert!(ca.path("identities/lou2.yaml").exists());
}

#[test]
fn a_csr_made_elsewhere_is_checked_like_reconcile_and_taken() {
    let ca = Ca::new();
    let key = ca.keys.join("jo.key");
    let csr = ca.tmp.path().join("jo.csr");
    ok(ca.openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/CN=jo",
        "-outform",
        "DER",
        "-out",
        csr.to_str().unwrap(),
    ]));
    // A CSR for another name is refused, nothing written.
    let snap = ca.snapshot();
    let o = fails(request(&ca, &["joanna", "--csr", csr.to_str().unwrap()]));
    assert!(stderr(&o).contains("CN"), "{}", stderr(&o));
    assert_eq!(ca.snapshot(), snap);
    // The right name: taken (DER converted to PEM), certified for that key.
    ok(request(&ca, &["jo", "--csr", csr.to_str().unwrap()]));
    assert!(ca
        .read("csr/jo.csr")
        .starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    ca.commit("onboard jo");
    ok(ca.reconcile(T0));
    assert_eq!(
        pubkey_of_cert(&ca, "certs/jo.crt"),
        pubkey_of_key(&ca, &key)
    );
}

#[test]
fn a_renamed_person_keeps_their_key_and_the_old_name_is_superseded() {
    let ca = Ca::new();
    let key = ca.keys.join("kim.key");
    ok(request(
        &ca,
        &["kim", "--group", "push", "--key-out", key.to_str().unwrap()],
    ));
    ca.commit("onboard kim");
    ok(ca.reconcile(T0));
    let old_serial = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/kim.crt",
        "-noout",
        "-serial",
    ])));
    // Without renamed_from the key belongs to kim: the new name is blocked.
    std::fs::remove_file(ca.path("identities/kim.yaml")).unwrap();
    std::fs::rename(ca.path("csr/kim.csr"), ca.tmp.path().join("kim.csr")).unwrap();
    let o = ok(request(
        &ca,
        &[
            "kim-lee",
            "--group",
            "push",
            "--key",
            key.to_str().unwrap(),
            "--renamed-from",
            "kim",
        ],
    ));
    assert!(
        stdout(&o).contains("remove `kim`'s entry"),
        "{}",
        stdout(&o)
    );
    assert!(ca
        .read("identities/kim-lee.yaml")
        .contains("renamed_from: kim"));
    ca.commit("kim is now kim-lee");
    let plan = stdout(&run(ca.cmd(T0).arg("plan")));
    assert!(plan.contains("renamed"), "{plan}");
    ok(ca.reconcile(T0));
    assert_eq!(
        pubkey_of_cert(&ca, "certs/kim-lee.crt"),
        pubkey_of_key(&ca, &key),
        "same key under the new name"
    );
    assert!(!ca.path("certs/kim.crt").exists());
    let serial = old_serial
        .trim()
        .trim_start_matches("serial=")
        .to_lowercase();
    let row = ca
        .ledger_rows()
        .into_iter()
        .find(|r| r[0].trim_start_matches('0') == serial.trim_start_matches('0'))
        .expect("kim's row");
    assert_eq!(
        (row[4].as_str(), row[8].as_str()),
        ("revoked", "superseded")
    );
    // The proof that renamed_from is what allowed it: without it the same change is refused.
    let ca2 = Ca::new();
    let key2 = ca2.keys.join("kim.key");
    ok(request(&ca2, &["kim", "--key-out", key2.to_str().unwrap()]));
    ca2.commit("kim");
    ok(ca2.reconcile(T0));
    std::fs::remove_file(ca2.path("identities/kim.yaml")).unwrap();
    std::fs::remove_file(ca2.path("csr/kim.csr")).unwrap();
    // request itself refuses a key another identity holds…
    let o = fails(request(&ca2, &["kim-lee", "--key", key2.to_str().unwrap()]));
    assert!(
        stderr(&o).contains("belongs to identity `kim`"),
        "{}",
        stderr(&o)
    );
    assert!(!ca2.path("identities/kim-lee.yaml").exists());
    // …and reconcile refuses the same entry written by hand (the rename line dropped).
    ok(request(
        &ca2,
        &[
            "kim-lee",
            "--key",
            key2.to_str().unwrap(),
            "--renamed-from",
            "kim",
        ],
    ));
    let yaml = ca2.read("identities/kim-lee.yaml");
    ca2.write(
        "identities/kim-lee.yaml",
        &yaml.replace("    renamed_from: kim\n", ""),
    );
    ca2.commit("kim-lee, not declared a rename");
    let o = ca2.reconcile(T0);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("renamed_from"), "{}", stderr(&o));
    assert!(!ca2.path("certs/kim-lee.crt").exists());
}

/// A rename hands a key on to one successor, once, and never brings back a key its holder lost
/// to a revocation: two entries renamed from the same name get nothing, and an offboarded
/// person's key cannot return under another name.
#[test]
fn a_rename_hands_a_key_to_one_successor_and_never_revives_a_revoked_key() {
    let ca = Ca::new();
    let key = ca.keys.join("mallory.key");
    ok(request(
        &ca,
        &["mallory", "--key-out", key.to_str().unwrap()],
    ));
    ca.commit("mallory");
    ok(ca.reconcile(T0));
    // Two successors claim her key in one change: neither is certified.
    std::fs::remove_file(ca.path("identities/mallory.yaml")).unwrap();
    std::fs::remove_file(ca.path("csr/mallory.csr")).unwrap();
    for n in ["mal2", "mal3"] {
        ok(request(
            &ca,
            &[
                n,
                "--key",
                key.to_str().unwrap(),
                "--renamed-from",
                "mallory",
            ],
        ));
    }
    ca.commit("two successors");
    let o = ca.reconcile(T0);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("more than one entry says it was renamed from it"),
        "{}",
        stderr(&o)
    );
    assert!(!ca.path("certs/mal2.crt").exists() && !ca.path("certs/mal3.crt").exists());
    // The proof that it was the second claim: with one successor left, the rename goes through.
    std::fs::remove_file(ca.path("identities/mal3.yaml")).unwrap();
    std::fs::remove_file(ca.path("csr/mal3.csr")).unwrap();
    ca.commit("one successor");
    ok(ca.reconcile(T0));
    assert_eq!(
        pubkey_of_cert(&ca, "certs/mal2.crt"),
        pubkey_of_key(&ca, &key)
    );

    // Offboarded: her key does not come back under a new name.
    let ca = Ca::new();
    let key = ca.keys.join("mallory.key");
    ok(request(
        &ca,
        &["mallory", "--key-out", key.to_str().unwrap()],
    ));
    ca.commit("mallory");
    ok(ca.reconcile(T0));
    ca.offboard("mallory");
    std::fs::remove_file(ca.path("csr/mallory.csr")).unwrap();
    ca.commit("offboard mallory");
    ok(ca.reconcile(T0));
    ok(request(
        &ca,
        &[
            "mal2",
            "--key",
            key.to_str().unwrap(),
            "--renamed-from",
            "mallory",
        ],
    ));
    ca.commit("mallory returns as mal2");
    let o = ca.reconcile(T0);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("was revoked"), "{}", stderr(&o));
    assert!(!ca.path("certs/mal2.crt").exists());
}

/// `request --key`/`--csr` with a key reconcile would refuse is refused at once, nothing
/// written: a key revoked for compromise comes back under no name and in no encoding.
#[test]
fn a_compromised_key_brought_along_is_refused_by_request() {
    let ca = Ca::new();
    let key = ca.keys.join("lou.key");
    ok(request(&ca, &["lou", "--key-out", key.to_str().unwrap()]));
    ca.commit("lou");
    ok(ca.reconcile(T0));
    let yaml = ca.read("identities/lou.yaml");
    ca.write(
        "identities/lou.yaml",
        &(yaml + "    revoke: key-compromise\n"),
    );
    ca.commit("lou compromised");
    ok(ca.reconcile(T0));
    let snap = ca.snapshot();
    let o = fails(request(&ca, &["lou2", "--key", key.to_str().unwrap()]));
    assert!(
        stderr(&o).contains("revoked for key compromise"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ca.snapshot(), snap, "nothing written");
}

/// What reviewers approved is what status shows for live certificates: subject, groups, EKU
/// and key type, in the table and in JSON.
#[test]
fn status_shows_what_each_live_certificate_carries() {
    let ca = Ca::new();
    let key = ca.keys.join("nia.key");
    ok(ca.openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        key.to_str().unwrap(),
    ]));
    ok(request(
        &ca,
        &["nia", "--group", "push", "--key", key.to_str().unwrap()],
    ));
    ca.commit("nia");
    let o = ok(run(ca.cmd(T0).arg("status")));
    assert!(
        !stdout(&o).contains("Ed25519"),
        "nothing issued yet: {}",
        stdout(&o)
    );
    ok(ca.reconcile(T0));
    let o = ok(run(ca.cmd(T0).arg("status")));
    let row = stdout(&o)
        .lines()
        .find(|l| l.trim_start().starts_with("nia "))
        .unwrap_or_else(|| panic!("{}", stdout(&o)))
        .to_string();
    assert!(
        row.contains("[push]") && row.contains("client_auth") && row.contains("Ed25519"),
        "{row}"
    );
    let o = ok(run(ca.cmd(T0).args(["status", "--json"])));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let nia = &v["identities"][0];
    assert_eq!(nia["name"], "nia");
    assert_eq!(nia["subject"], "CN=nia,OU=push,O=Acme");
    assert_eq!(nia["key_type"], "Ed25519");
}

/// The `git add …` lines request prints as the next step.
fn git_add(said: &str) -> Vec<String> {
    said.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("git add "))
        .map(str::to_string)
        .collect()
}

/// Runs a printed command as its person would, with a git identity for the commit.
fn as_person(ca: &Ca, cmd: &str) {
    ca.sh(&format!(
        "export GIT_AUTHOR_NAME=P GIT_AUTHOR_EMAIL=p@example.com GIT_COMMITTER_NAME=P GIT_COMMITTER_EMAIL=p@example.com; {cmd}"
    ));
}

/// Issue 20, item 4: rotating the key of an identity declared in a shared file prints a
/// `git add` that works (the CSR only: the entry does not change), and a CSR for the key the
/// person already holds is called that, not a new key.
#[test]
fn rotating_in_a_shared_file_prints_a_git_add_that_works_and_names_the_same_key() {
    let ca = Ca::new();
    let keys: Vec<_> = ["ann", "ben"]
        .iter()
        .map(|n| {
            let key = ca.keys.join(format!("{n}.key"));
            ok(request(
                &ca,
                &[
                    n,
                    "--file",
                    "identities/team.yaml",
                    "--key-out",
                    key.to_str().unwrap(),
                ],
            ));
            key
        })
        .collect();
    ca.commit("team");
    ok(ca.reconcile(T0));
    let yaml = ca.read("identities/team.yaml");
    // A CSR for the key ann holds: the same key.
    let o = ok(request(
        &ca,
        &["ann", "--rotate", "--key", keys[0].to_str().unwrap()],
    ));
    let said = stdout(&o);
    assert!(said.contains("Same key"), "{said}");
    assert!(!said.contains("New key"), "{said}");
    let cmds = git_add(&said);
    assert_eq!(
        cmds,
        ["git add csr/ann.csr && git commit -m 'CSR for ann (same key)'"],
        "{said}"
    );
    as_person(&ca, &cmds[0]);
    assert_eq!(
        ca.read("identities/team.yaml"),
        yaml,
        "the entry is unchanged"
    );
    // A new key for ben.
    let o = ok(request(
        &ca,
        &[
            "ben",
            "--rotate",
            "--key-out",
            ca.keys.join("ben-2.key").to_str().unwrap(),
        ],
    ));
    let said = stdout(&o);
    assert!(said.contains("New key"), "{said}");
    let cmds = git_add(&said);
    assert_eq!(
        cmds,
        ["git add csr/ben.csr && git commit -m 'new key for ben'"],
        "{said}"
    );
    as_person(&ca, &cmds[0]);
    assert!(
        ca.status().is_empty(),
        "everything committed: {}",
        ca.status()
    );
    ok(run(ca.cmd(T0).arg("check")));
}

/// Issue 20, item 5: `--common-name` declares the CN, checked like reconcile checks it
/// (grammar, and never standing for someone else) before anything is written; so are
/// `--email` and `--group`.
#[test]
fn request_takes_a_common_name_and_checks_every_value_before_writing() {
    let ca = Ca::new();
    ok(request(
        &ca,
        &[
            "alice",
            "--key-out",
            ca.keys.join("alice.key").to_str().unwrap(),
        ],
    ));
    ca.commit("alice");
    let snap = ca.snapshot();
    let refused = |args: &[&str], said: &str| {
        let key = ca.keys.join("x.key");
        let mut all = vec!["zoe", "--key-out", key.to_str().unwrap()];
        all.extend(args);
        let o = fails(request(&ca, &all));
        assert!(stderr(&o).contains(said), "{args:?}: {}", stderr(&o));
        assert_eq!(ca.snapshot(), snap, "{args:?}: nothing written");
        assert!(!key.exists(), "{args:?}: no key made");
    };
    refused(&["--common-name", "Smith, Zoe"], "holds `,`");
    refused(&["--common-name", "A  lice"], "double space");
    refused(&["--common-name", "ALICE"], "it stands for `alice`");
    refused(&["--common-name", "Аlice"], "mixes scripts");
    refused(
        &["--email", "zoe@localhost"],
        "--email `zoe@localhost` is refused",
    );
    refused(
        &["--group", "push,admin"],
        "--group `push,admin` is refused",
    );
    // A good one: in the entry, in the CSR, and in the certificate.
    let o = ok(request(
        &ca,
        &[
            "zoe",
            "--common-name",
            "Zoë Ångström",
            "--email",
            "zoe@example.com",
            "--key-out",
            ca.keys.join("zoe.key").to_str().unwrap(),
        ],
    ));
    assert!(stdout(&o).contains("CN=Zoë Ångström"), "{}", stdout(&o));
    assert!(
        ca.read("identities/zoe.yaml")
            .contains("common_name: \"Zoë Ångström\""),
        "{}",
        ca.read("identities/zoe.yaml")
    );
    ca.commit("zoe");
    ok(ca.reconcile(T0));
    let subject = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/zoe.crt",
        "-noout",
        "-subject",
        "-nameopt",
        "utf8",
    ])));
    assert!(subject.contains("CN=Zoë Ångström"), "{subject}");
}
