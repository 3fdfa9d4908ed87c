//! PKCS#11 custody against the real SoftHSM2: a CA whose key is generated in (or adopted from)
//! a token signs certificates and CRLs through it, everything checked with `openssl verify
//! -crl_check`; a wrong PIN, a missing token, a foreign key or a hostile URI changes nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::hsm::{Token, LABEL, PIN};
use common::*;

const URI: &str = "pkcs11:token=gitca-test;object=ca";

struct HsmCa {
    token: Token,
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl HsmCa {
    /// A CA whose key `gitca init --pkcs11-generate` made in a fresh token.
    fn new() -> HsmCa {
        let token = Token::new();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ca");
        let mut c = gitca();
        token
            .env(&mut c)
            .args(["--now", T0, "init", "-C"])
            .arg(&root);
        c.args([
            "--name",
            "HSM CA",
            "--pkcs11",
            URI,
            "--pkcs11-generate",
            "-q",
        ]);
        ok(run(&mut c));
        HsmCa { token, tmp, root }
    }

    fn cmd(&self, now: &str) -> Command {
        let mut c = gitca();
        self.token.env(&mut c);
        c.arg("-C").arg(&self.root).arg("--now").arg(now);
        c
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn request(&self, names: &[String]) {
        for n in names {
            let key = self.tmp.path().join(format!("{n}.key"));
            ok(run(self
                .cmd(T0)
                .args(["request", n, "-q", "--key-out"])
                .arg(&key)));
        }
        git(&self.root, &["add", "-A"]);
        git(&self.root, &["commit", "-q", "-m", "onboard"]);
    }

    /// `openssl verify -crl_check` at the time the CA was last reconciled ([`T0`] or a day on).
    fn verify(&self, name: &str) -> Output {
        tool(
            "openssl",
            &[
                "verify",
                "-attime",
                &epoch("2026-01-02T00:00:00Z"),
                "-crl_check",
                "-CAfile",
                "ca/ca.crt",
                "-CRLfile",
                "crl/ca.crl",
                &format!("certs/{name}.crt"),
            ],
            &self.root,
        )
    }

    fn head(&self) -> String {
        git(&self.root, &["rev-parse", "HEAD"])
    }

    fn status(&self) -> String {
        git(&self.root, &["status", "--porcelain", "--ignored"])
    }

    fn read_record(&self) -> String {
        std::fs::read_to_string(self.path("ca/ca.key.pkcs11")).unwrap()
    }
}

fn tracked_text(root: &Path) -> String {
    git(root, &["ls-files"])
        .lines()
        .map(|f| String::from_utf8_lossy(&std::fs::read(root.join(f)).unwrap()).to_string())
        .collect()
}

#[test]
fn a_ca_key_generated_in_softhsm_signs_a_bulk_reconcile_and_its_crls() {
    let ca = HsmCa::new();
    // The repository records where the key is and its public key: no age key, no PIN, no module.
    assert!(ca.path("ca/ca.key.pkcs11").is_file());
    assert!(!ca.path("ca/ca.key.age").exists());
    assert!(!ca.path("ca/recipients.txt").exists());
    let recorded = std::fs::read_to_string(ca.path("ca/ca.key.pkcs11")).unwrap();
    assert!(
        recorded.contains("pkcs11:token=gitca-test;serial="),
        "{recorded}"
    );
    let text = tracked_text(&ca.root);
    assert!(!text.contains(PIN) && !text.contains("libsofthsm2"));
    // The recorded public key is the certificate's.
    let cert_pub = tool(
        "openssl",
        &["x509", "-in", "ca/ca.crt", "-pubkey", "-noout"],
        &ca.root,
    );
    assert!(recorded.contains(stdout(&cert_pub).trim()), "{recorded}");

    let names: Vec<String> = (0..12).map(|i| format!("user{i:02}")).collect();
    ca.request(&names);
    let out = ok(run(ca.cmd(T0).arg("reconcile")));
    assert!(
        stdout(&out).contains("Signed 12 certificate(s)"),
        "{}",
        stdout(&out)
    );
    for n in &names {
        let v = ca.verify(n);
        assert!(v.status.success(), "{n}: {}{}", stdout(&v), stderr(&v));
    }
    ok(run(ca.cmd(T0).arg("check")));

    // Offboarding revokes through the token: the new CRL, signed by the token, names user03.
    common::offboard_at(&ca.root, "user03");
    git(&ca.root, &["add", "-A"]);
    git(&ca.root, &["commit", "-q", "-m", "offboard user03"]);
    ok(run(ca.cmd("2026-01-02T00:00:00Z").arg("reconcile")));
    let v = ca.verify("user03");
    if ca.path("certs/user03.crt").exists() {
        assert!(!v.status.success());
    }
    let crl = tool(
        "openssl",
        &[
            "crl",
            "-in",
            "crl/ca.crl",
            "-CAfile",
            "ca/ca.crt",
            "-noout",
            "-text",
        ],
        &ca.root,
    );
    assert!(stderr(&crl).contains("verify OK"), "{}", stderr(&crl));
    assert!(stdout(&crl).contains("Serial Number"), "{}", stdout(&crl));
    for n in names.iter().filter(|n| *n != "user03") {
        assert!(ca.verify(n).status.success(), "{n}");
    }
    assert_eq!(ca.status(), "");
}

#[test]
fn a_wrong_pin_a_missing_token_or_module_or_a_foreign_key_changes_nothing() {
    let ca = HsmCa::new();
    ca.request(&["alice".to_string()]);
    let head = ca.head();
    let refused = |c: &mut Command, why: &str| {
        let o = fails(run(c));
        assert!(stderr(&o).contains(why), "want {why}:\n{}", stderr(&o));
        assert!(!stderr(&o).contains(PIN));
        assert_eq!(ca.head(), head);
        assert_eq!(ca.status(), "");
        assert!(!ca.path("certs/alice.crt").exists());
    };
    refused(
        ca.cmd(T0)
            .env("GITCA_PKCS11_PIN", "not-the-pin")
            .arg("reconcile"),
        "wrong PIN",
    );
    refused(
        ca.cmd(T0).env_remove("GITCA_PKCS11_PIN").arg("reconcile"),
        "needs its user PIN",
    );
    refused(
        ca.cmd(T0)
            .env_remove("GITCA_PKCS11_MODULE")
            .arg("reconcile"),
        "no module was given",
    );
    let elsewhere = Token::new();
    refused(
        ca.cmd(T0)
            .env("SOFTHSM2_CONF", &elsewhere.conf)
            .arg("reconcile"),
        "no token matches",
    );

    // Another key in the same token, swapped into the record: the token proves it is not the
    // CA's key before anything is signed.
    let other = ca.tmp.path().join("other");
    let mut c = gitca();
    ca.token
        .env(&mut c)
        .args(["--now", T0, "init", "-C"])
        .arg(&other);
    c.args([
        "--name",
        "Other",
        "--pkcs11",
        "pkcs11:token=gitca-test;object=other",
    ]);
    ok(run(c.args(["--pkcs11-generate", "-q"])));
    let ours = std::fs::read_to_string(ca.path("ca/ca.key.pkcs11")).unwrap();
    let theirs = std::fs::read_to_string(other.join("ca/ca.key.pkcs11")).unwrap();
    let uri = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("pkcs11:"))
            .unwrap()
            .to_string()
    };
    let swapped = ours.replace(&uri(&ours), &uri(&theirs));
    std::fs::write(ca.path("ca/ca.key.pkcs11"), &swapped).unwrap();
    git(&ca.root, &["commit", "-q", "-am", "merged: another key"]);
    let head = ca.head();
    let o = fails(run(ca.cmd(T0).arg("reconcile")));
    assert!(
        stderr(&o).contains("is not the private half"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ca.head(), head);
    assert!(!ca.path("certs/alice.crt").exists());
    git(&ca.root, &["revert", "--no-edit", "HEAD"]);

    // The same repository with the right token and PIN signs.
    ok(run(ca.cmd(T0).arg("reconcile")));
    assert!(ca.verify("alice").status.success());
}

#[test]
fn a_hostile_token_record_is_refused_with_its_file_and_line() {
    let ca = HsmCa::new();
    ca.request(&["alice".to_string()]);
    let good = std::fs::read_to_string(ca.path("ca/ca.key.pkcs11")).unwrap();
    let uri = good.lines().find(|l| l.starts_with("pkcs11:")).unwrap();
    for (bad, why, line) in [
        (format!("{uri}?module-path=/tmp/evil.so"), "query part", 4),
        (format!("{uri}?pin-value={PIN}"), "query part", 4),
        (format!("{uri};slot-id=0"), "slot-id", 4),
        (format!("{uri};object=again"), "given twice", 4),
        (
            uri.replace("pkcs11:", "pkcs12:"),
            "does not start with `pkcs11:`",
            4,
        ),
        (
            uri.replace("token=gitca-test", "token=gitca test"),
            "percent-encoded",
            4,
        ),
        (format!("{uri}\n{uri}"), "a second URI", 5),
    ] {
        std::fs::write(ca.path("ca/ca.key.pkcs11"), good.replace(uri, &bad)).unwrap();
        for args in [
            &["reconcile", "--no-commit", "--allow-dirty"][..],
            &["ca", "verify"],
            &["check"],
        ] {
            let o = fails(run(ca.cmd(T0).args(args)));
            let err = format!("{}{}", stdout(&o), stderr(&o));
            assert!(
                err.contains(&format!("ca/ca.key.pkcs11:{line}")) && err.contains(why),
                "{args:?} {bad}:\n{err}"
            );
            assert!(err.contains("git log -p -- ca/ca.key.pkcs11"), "{err}");
            assert!(!ca.path("certs/alice.crt").exists());
        }
    }
    // A record whose public key is not the certificate's: check names the file.
    let other_key = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKzqhjeATGH6XSpQAcfDQ3WO6LS36\nAVAz3YpmU7JkV8U11S+lb3tduzAcAzpxi0CUluCuz57WLZmYXyajrfCWvg==\n-----END PUBLIC KEY-----\n";
    let pem_at = good.find("-----BEGIN PUBLIC KEY-----").unwrap();
    std::fs::write(
        ca.path("ca/ca.key.pkcs11"),
        format!("{}{other_key}", &good[..pem_at]),
    )
    .unwrap();
    let o = fails(run(ca.cmd(T0).arg("check")));
    assert!(
        stdout(&o).contains("ca/ca.key.pkcs11") || stderr(&o).contains("ca/ca.key.pkcs11"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = fails(run(ca.cmd(T0).args([
        "reconcile",
        "--no-commit",
        "--allow-dirty",
    ])));
    assert!(
        stderr(&o).contains("is not the private half"),
        "{}",
        stderr(&o)
    );
    // Both custodies at once is refused: nobody can tell which key signs.
    std::fs::write(ca.path("ca/ca.key.pkcs11"), &good).unwrap();
    std::fs::write(ca.path("ca/ca.key.age"), "x").unwrap();
    let o = fails(run(ca.cmd(T0).args(["ca", "verify"])));
    assert!(
        stderr(&o).contains("both ca/ca.key.pkcs11 and ca/ca.key.age"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(ca.path("ca/ca.key.age")).unwrap();
    // Restored, the same commands succeed.
    assert_eq!(ca.status(), "");
    ok(run(ca.cmd(T0).arg("check")));
    ok(run(ca.cmd(T0).arg("reconcile")));
    assert!(ca.verify("alice").status.success());
}

#[test]
fn init_adopts_an_existing_token_key_and_refuses_to_overwrite_or_invent_one() {
    let ca = HsmCa::new();
    let adopt = |dir: &Path, uri: &str, generate: bool| {
        let mut c = gitca();
        ca.token
            .env(&mut c)
            .args(["--now", T0, "init", "-C"])
            .arg(dir);
        c.args(["--name", "Adopted", "--pkcs11", uri, "-q"]);
        if generate {
            c.arg("--pkcs11-generate");
        }
        run(&mut c)
    };
    let b = ca.tmp.path().join("b");
    let o = fails(adopt(&b, URI, true));
    assert!(stderr(&o).contains("already holds a key"), "{}", stderr(&o));
    let o = fails(adopt(
        &b,
        "pkcs11:token=gitca-test;object=nothing-here",
        false,
    ));
    assert!(
        stderr(&o).contains("holds no private key"),
        "{}",
        stderr(&o)
    );
    let o = fails(adopt(
        &b,
        "pkcs11:token=gitca-test;object=ca?pin-value=1",
        false,
    ));
    assert!(stderr(&o).contains("query part"), "{}", stderr(&o));
    assert!(!b.join("gitca.yaml").exists());
    // Adopting the key by its label: the new CA's certificate carries the same public key.
    ok(adopt(&b, &format!("pkcs11:token={LABEL};object=ca"), false));
    let pubkey = |root: &Path| {
        stdout(&tool(
            "openssl",
            &["x509", "-in", "ca/ca.crt", "-pubkey", "-noout"],
            root,
        ))
    };
    assert_eq!(pubkey(&b), pubkey(&ca.root));
    let mut c = gitca();
    ca.token.env(&mut c).arg("-C").arg(&b);
    let o = ok(run(c.args(["ca", "verify"])));
    assert!(stdout(&o).contains("matches ca/ca.crt"));
    // rekey has no recipients to change on a token CA, and says so.
    let o = fails(run(ca.cmd(T0).args([
        "rekey",
        "--add",
        "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
    ])));
    assert!(
        stderr(&o).contains("lives in a PKCS#11 token"),
        "{}",
        stderr(&o)
    );
}

/// Custody of an offline-root CA's issuing key moves by ceremony: age → a token (made there),
/// → another token, → age again; after each, reconcile re-issues everyone under the new
/// intermediate, signing through whichever custody holds the key, and every chain verifies
/// with openssl. A ceremony the token refuses (wrong PIN) changes nothing.
#[test]
fn issuing_key_custody_moves_age_to_token_to_another_token_and_back() {
    let (ca, custodian) = offline_root_ca(T0);
    let token = Token::new();
    token.add("gitca-next");
    for name in ["alice", "bob"] {
        let key = ca.keys.join(format!("{name}.key"));
        ok(run(ca
            .cmd(T0)
            .args(["request", name, "-q", "--key-out"])
            .arg(&key)));
    }
    ca.commit("two");
    ok(ca.reconcile(T0));
    let ceremony = |now: &str, args: &[&str], pin: &str| {
        let mut c = ca.cmd(now);
        token.env(&mut c).env("GITCA_PKCS11_PIN", pin);
        run(c
            .args(["root", "new-intermediate"])
            .args(args)
            .arg("--identity")
            .arg(&custodian))
    };
    let reconcile = |now: &str, identity: &Path| {
        let mut c = ca.cmd(now);
        token.env(&mut c);
        ok(run(c.arg("reconcile").arg("--identity").arg(identity)))
    };
    let verify = |now: &str| {
        for name in ["alice", "bob"] {
            if !ca.path(&format!("certs/{name}.crt")).exists() {
                continue;
            }
            let chain = ca.path(&format!("certs/{name}.crt"));
            let o = ca.verify_chain(&chain, now);
            assert!(o.status.success(), "{name}: {}{}", stdout(&o), stderr(&o));
            // Issued by the intermediate ca/ca.crt holds now.
            let issuer = stdout(&ca.openssl(&[
                "x509",
                "-in",
                &format!("certs/{name}.crt"),
                "-noout",
                "-issuer",
            ]));
            let current = stdout(&ca.openssl(&["x509", "-in", "ca/ca.crt", "-noout", "-subject"]));
            assert_eq!(
                issuer.replace("issuer=", ""),
                current.replace("subject=", "")
            );
        }
        ok(run(ca.cmd(now).arg("check")));
    };
    verify(T0);

    // A token that refuses (wrong PIN): nothing written, nothing committed.
    let d1 = days_after(T0, 1);
    let head = ca.head();
    let uri2 = format!("pkcs11:token={LABEL};object=issuing-2");
    let o = fails(ceremony(
        &d1,
        &["--pkcs11", &uri2, "--pkcs11-generate"],
        "wrong-pin",
    ));
    assert!(stderr(&o).to_lowercase().contains("pin"), "{}", stderr(&o));
    assert_eq!(ca.head(), head);
    assert_eq!(ca.status(), "");

    // age → token: the new intermediate's key is made in the token; the current one retires
    // with its age key (CI still decrypts it to keep its CRL).
    let o = ok(ceremony(
        &d1,
        &["--pkcs11", &uri2, "--pkcs11-generate"],
        PIN,
    ));
    assert!(stdout(&o).contains("retires"), "{}", stdout(&o));
    assert!(ca.path("ca/ca.key.pkcs11").exists());
    for gone in ["ca/ca.key.age", "ca/recipients.txt"] {
        assert!(!ca.path(gone).exists(), "{gone} is still there");
    }
    assert!(ca.path("ca/previous.key.age").exists());
    assert!(ca.read("ca/ca.key.pkcs11").contains("object=issuing-2"));
    assert!(!tracked_text(&ca.root).contains(PIN));
    reconcile(&d1, &ca.identity);
    verify(&d1);

    // token → another token: the token-held intermediate retires (its record moves aside, and
    // reconcile keeps its CRL through the first token); the first one is revoked.
    let old_alice = ca.keep("certs/alice.crt", "alice-under-issuing-2.crt");
    let old_bob = ca.keep("certs/bob.crt", "bob-under-issuing-2.crt");
    let d2 = days_after(T0, 2);
    let uri3 = "pkcs11:token=gitca-next;object=issuing-3";
    // The current intermediate's own key is no new key, even to revoke it for compromise:
    // refused, nothing written (the same ceremony with a new key passes just below).
    let head = ca.head();
    for extra in [&[][..], &["--revoke-current", "key-compromise"][..]] {
        let o = fails(ceremony(
            &d2,
            &[
                &["--pkcs11", &uri2, "--revoke-previous", "superseded"][..],
                extra,
            ]
            .concat(),
            PIN,
        ));
        assert!(stderr(&o).contains("already the key of"), "{}", stderr(&o));
        assert_eq!(ca.head(), head);
        assert_eq!(ca.status(), "");
    }
    ok(ceremony(
        &d2,
        &[
            "--pkcs11",
            uri3,
            "--pkcs11-generate",
            "--revoke-previous",
            "superseded",
        ],
        PIN,
    ));
    assert!(ca.read("ca/ca.key.pkcs11").contains("token=gitca-next"));
    assert!(ca
        .read("ca/previous.key.pkcs11")
        .contains("object=issuing-2"));
    assert!(!ca.path("ca/previous.key.age").exists());
    // check reads the retiring intermediate's token record too: garbage, or another key's
    // record, is named; the genuine one passes.
    let genuine = ca.read("ca/previous.key.pkcs11");
    for forged in ["\u{0}junk\n".to_string(), ca.read("ca/ca.key.pkcs11")] {
        ca.write("ca/previous.key.pkcs11", &forged);
        let o = fails(run(ca.cmd(&d2).arg("check")));
        let said = stdout(&o) + &stderr(&o);
        assert!(said.contains("ca/previous.key.pkcs11"), "{said}");
    }
    ca.write("ca/previous.key.pkcs11", &genuine);
    ok(run(ca.cmd(&d2).arg("check")));
    reconcile(&d2, &ca.identity);
    verify(&d2);
    // bob leaves while issuing-2 retires: his certificate from it goes on the retiring CRL,
    // which reconcile signs through the first token; alice's from it still verifies.
    ca.offboard("bob");
    ca.commit("bob leaves");
    let previous_crl_before = ca.read("crl/previous.crl");
    reconcile(&d2, &ca.identity);
    assert_ne!(ca.read("crl/previous.crl"), previous_crl_before);
    assert!(!ca.path("certs/bob.crt").exists());
    verify(&d2);
    let verify_old = |cert: &Path| ca.verify_chain(cert, &d2);
    let o = verify_old(&old_alice);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = verify_old(&old_bob);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        (stdout(&o) + &stderr(&o)).contains("revoked"),
        "{}",
        stdout(&o)
    );

    // token → age, after a compromise: back to CI's new age identity; reconcile then needs no
    // token at all.
    let d3 = days_after(T0, 3);
    let (ci2, ci2_recipient) = age_identity(ca.tmp.path(), "ci-new");
    ok(ceremony(
        &d3,
        &[
            "--revoke-current",
            "key-compromise",
            "--revoke-previous",
            "superseded",
            "--recipient",
            &ci2_recipient,
        ],
        PIN,
    ));
    for gone in [
        "ca/ca.key.pkcs11",
        "ca/previous.key.pkcs11",
        "ca/previous.crt",
    ] {
        assert!(!ca.path(gone).exists(), "{gone} is still there");
    }
    assert!(ca.path("ca/ca.key.age").exists());
    ok(run(ca
        .cmd(&d3)
        .arg("reconcile")
        .arg("--identity")
        .arg(&ci2)));
    verify(&d3);
}

/// An offline root whose key is made in one token (`init --offline-root --root-pkcs11`), its
/// first intermediate in age for CI, its next in a second token: reconcile never touches the
/// root's token, the ceremonies sign through it, and every chain verifies with openssl.
#[test]
fn an_offline_root_in_one_token_and_its_intermediate_in_age_then_in_another() {
    let token = Token::new();
    token.add("gitca-issuing");
    let tmp = tempfile::tempdir().unwrap();
    let (ci, ci_recipient) = age_identity(tmp.path(), "ci");
    let root = tmp.path().join("ca");
    let init = |args: &[&str]| {
        let mut c = gitca();
        token
            .env(&mut c)
            .args(["--now", T0, "init", "-C"])
            .arg(&root);
        run(c
            .args([
                "--name",
                "Token Root CA",
                "--offline-root",
                "--recipient",
                &ci_recipient,
            ])
            .args(args))
    };
    // The root custodians or a root token: one of them.
    let o = fails(init(&[]));
    assert!(stderr(&o).contains("--root-pkcs11"), "{}", stderr(&o));
    assert!(!root.join("gitca.yaml").exists());
    let root_uri = format!("pkcs11:token={LABEL};object=root");
    let o = ok(init(&[
        "--root-pkcs11",
        &root_uri,
        "--root-pkcs11-generate",
    ]));
    assert!(
        stdout(&o).contains("in the PKCS#11 token"),
        "{}",
        stdout(&o)
    );
    let ca = Ca::at(tmp, root, ci.clone(), ci_recipient);
    assert!(ca.read("ca/root.key.pkcs11").contains("object=root"));
    for absent in ["ca/root.key.age", "ca/root-recipients.txt"] {
        assert!(!ca.path(absent).exists(), "{absent}");
    }
    assert!(ca.path("ca/ca.key.age").exists());
    assert!(!tracked_text(&ca.root).contains(PIN));
    // The root's public key is the token's: the root certificate's key is the recorded one.
    let pubkey = stdout(&ca.openssl(&["x509", "-in", "ca/root.crt", "-noout", "-pubkey"]));
    assert!(ca.read("ca/root.key.pkcs11").contains(pubkey.trim()));

    for name in ["alice", "bob"] {
        let key = ca.keys.join(format!("{name}.key"));
        ok(run(ca
            .cmd(T0)
            .args(["request", name, "-q", "--key-out"])
            .arg(&key)));
    }
    ca.commit("two");
    // Reconcile needs CI's age identity only: no token, no module.
    ok(ca.reconcile(T0));
    ok(run(ca.cmd(T0).arg("check")));
    let verify = |now: &str| {
        let chain = ca.path("certs/alice.crt");
        let o = ca.verify_chain(&chain, now);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    };
    verify(T0);

    let ceremony = |now: &str, args: &[&str]| {
        let mut c = ca.cmd(now);
        token.env(&mut c);
        run(c.arg("root").args(args))
    };
    // The root CRL is re-signed through the root's token.
    let d1 = days_after(T0, 1);
    let before = ca.read("crl/root.crl");
    ok(ceremony(&d1, &["sign-crl"]));
    assert_ne!(ca.read("crl/root.crl"), before);
    verify(&d1);
    // Without the token's module, a ceremony is refused and nothing changes.
    let head = ca.head();
    let o = fails(run(ca.cmd(&d1).args(["root", "sign-crl"])));
    assert!(stderr(&o).contains("module"), "{}", stderr(&o));
    assert_eq!(ca.head(), head);

    // No custodians' list to change: rekey --root says the root key is in a token.
    let o = fails(run(ca.cmd(&d1).args([
        "rekey",
        "--root",
        "--add",
        "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
    ])));
    assert!(stderr(&o).contains("PKCS#11 token"), "{}", stderr(&o));
    assert_eq!(ca.head(), head);

    // The root's own key as the issuing intermediate's would put the offline root online:
    // refused, nothing written.
    let o = fails(ceremony(&d1, &["new-intermediate", "--pkcs11", &root_uri]));
    assert!(stderr(&o).contains("already the key of"), "{}", stderr(&o));
    assert_eq!(ca.head(), head);
    assert_eq!(ca.status(), "");

    // The next intermediate in another token, signed by the root's; the age one is revoked.
    let d2 = days_after(T0, 2);
    ok(ceremony(
        &d2,
        &[
            "new-intermediate",
            "--revoke-current",
            "superseded",
            "--pkcs11",
            "pkcs11:token=gitca-issuing;object=issuing-2",
            "--pkcs11-generate",
        ],
    ));
    assert!(ca.read("ca/ca.key.pkcs11").contains("token=gitca-issuing"));
    let mut c = ca.cmd(&d2);
    token.env(&mut c);
    ok(run(c.arg("reconcile")));
    ok(run(ca.cmd(&d2).arg("check")));
    verify(&d2);
    let issuer = stdout(&ca.openssl(&["x509", "-in", "certs/bob.crt", "-noout", "-issuer"]));
    assert!(issuer.contains("Issuing CA 2"), "{issuer}");
}

/// `root migrate` of a CA whose key is in a token: the key stays there as the root key
/// (`ca/root.key.pkcs11`, no custodians), the first intermediate goes to CI's age recipient;
/// every certificate issued before still verifies under the root, the new ones under the
/// intermediate. Custodians named for a token-held key are refused, nothing written.
#[test]
fn a_token_held_ca_migrates_to_an_offline_root_that_stays_in_the_token() {
    let ca = HsmCa::new();
    ca.request(&["alice".to_string()]);
    ok(run(ca.cmd(T0).arg("reconcile")));
    let before = ca.tmp.path().join("alice-before.crt");
    std::fs::copy(ca.path("certs/alice.crt"), &before).unwrap();
    let (ci, ci_recipient) = age_identity(ca.tmp.path(), "ci");
    let d1 = "2026-01-02T00:00:00Z";
    let head = ca.head();
    let o = fails(run(ca.cmd(d1).args([
        "root",
        "migrate",
        "--root-recipient",
        &ci_recipient,
    ])));
    assert!(stderr(&o).contains("no custodians"), "{}", stderr(&o));
    assert_eq!(ca.head(), head);
    assert_eq!(ca.status(), "");
    // No recipient for the first intermediate: there is no ca/recipients.txt to reuse.
    let o = fails(run(ca.cmd(d1).args(["root", "migrate"])));
    assert!(stderr(&o).contains("--recipient"), "{}", stderr(&o));
    assert_eq!(ca.head(), head);

    let o = ok(run(ca.cmd(d1).args([
        "root",
        "migrate",
        "--recipient",
        &ci_recipient,
    ])));
    assert!(stdout(&o).contains("ca/root.key.pkcs11"), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains("git history still holds"),
        "{}",
        stdout(&o)
    );
    assert!(ca.path("ca/root.key.pkcs11").is_file());
    for gone in [
        "ca/ca.key.pkcs11",
        "ca/root.key.age",
        "ca/root-recipients.txt",
    ] {
        assert!(!ca.path(gone).exists(), "{gone}");
    }
    assert!(ca.path("ca/ca.key.age").is_file());
    // The root certificate is the former CA certificate: its key is the token's.
    ok(run(ca.cmd(d1).arg("check")));
    // Reconcile needs CI's age identity now, not the token.
    let mut c = gitca();
    c.arg("-C")
        .arg(&ca.root)
        .args(["--now", d1, "reconcile", "--identity"])
        .arg(&ci);
    ok(run(&mut c));
    for cert in [ca.path("certs/alice.crt"), before] {
        let o = verify_chain_at(&ca.root, &cert, d1);
        assert!(
            o.status.success(),
            "{}: {}{}",
            cert.display(),
            stdout(&o),
            stderr(&o)
        );
    }
    // The root CRL is signed through the token by the next ceremony.
    let before_crl = std::fs::read(ca.path("crl/root.crl")).unwrap();
    ok(run(ca
        .cmd("2026-01-03T00:00:00Z")
        .args(["root", "sign-crl"])));
    assert_ne!(std::fs::read(ca.path("crl/root.crl")).unwrap(), before_crl);
}

/// `root migrate --pkcs11` of an age-held CA: the root key goes to its custodians in age, the
/// first intermediate's key is made in the token; reconcile signs through it.
#[test]
fn an_age_held_ca_migrates_with_its_first_intermediate_in_a_token() {
    let ca = Ca::new();
    let token = Token::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n    csr: csr/alice.csr\n");
    ca.commit("alice");
    ok(ca.reconcile(T0));
    let (_custodian, custodian_recipient) = age_identity(ca.tmp.path(), "root-keeper");
    let d1 = days_after(T0, 1);
    let mut c = ca.cmd(&d1);
    token.env(&mut c);
    ok(run(c
        .args(["root", "migrate", "--root-recipient", &custodian_recipient])
        .args([
            "--pkcs11",
            "pkcs11:token=gitca-test;object=issuing-1",
            "--pkcs11-generate",
        ])
        .arg("--identity")
        .arg(&ca.identity)));
    assert!(ca.path("ca/root.key.age").is_file());
    assert!(ca.read("ca/ca.key.pkcs11").contains("object=issuing-1"));
    for gone in ["ca/ca.key.age", "ca/recipients.txt"] {
        assert!(!ca.path(gone).exists(), "{gone}");
    }
    let mut c = ca.cmd(&d1);
    token.env(&mut c);
    ok(run(c.arg("reconcile")));
    ok(run(ca.cmd(&d1).arg("check")));
    let chain = ca.path("certs/alice.crt");
    let o = ca.verify_chain(&chain, &d1);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let issuer = stdout(&ca.openssl(&["x509", "-in", "certs/alice.crt", "-noout", "-issuer"]));
    assert!(issuer.contains("Issuing CA 1"), "{issuer}");
}

/// The key of an intermediate retired two ceremonies ago is in no file any more (no
/// `ca/previous.*`, the roster keeps only ids), but it certified for this CA: a ceremony that
/// adopts it as the next intermediate's is refused, nothing written; a new key passes.
#[test]
fn a_ceremony_refuses_the_key_of_an_intermediate_retired_two_ceremonies_ago() {
    let (ca, custodian) = offline_root_ca(T0);
    let token = Token::new();
    let ceremony = |now: &str, args: &[&str]| {
        let mut c = ca.cmd(now);
        token.env(&mut c);
        run(c
            .args(["root", "new-intermediate"])
            .args(args)
            .arg("--identity")
            .arg(&custodian))
    };
    let uri = |object: &str| format!("pkcs11:token={LABEL};object={object}");
    // issuing-2 in the token; then issuing-3 (issuing-2 retires), then issuing-4 (issuing-2 is
    // revoked and its files removed).
    ok(ceremony(
        &days_after(T0, 1),
        &["--pkcs11", &uri("issuing-2"), "--pkcs11-generate"],
    ));
    for (day, object) in [(2, "issuing-3"), (3, "issuing-4")] {
        ok(ceremony(
            &days_after(T0, day),
            &[
                "--pkcs11",
                &uri(object),
                "--pkcs11-generate",
                "--revoke-previous",
                "superseded",
            ],
        ));
    }
    assert!(ca
        .read("ca/previous.key.pkcs11")
        .contains("object=issuing-3"));
    assert!(!tracked_text(&ca.root).contains("object=issuing-2"));
    let d4 = days_after(T0, 4);
    let head = ca.head();
    let o = fails(ceremony(
        &d4,
        &[
            "--pkcs11",
            &uri("issuing-2"),
            "--revoke-previous",
            "superseded",
        ],
    ));
    let err = stderr(&o);
    assert!(err.contains("already the key of"), "{err}");
    assert!(
        err.contains("Issuing CA 2") && err.contains("of commit"),
        "{err}"
    );
    assert_eq!(ca.head(), head);
    assert_eq!(ca.status(), "");
    // A key of its own passes, and the CA checks out.
    ok(ceremony(
        &d4,
        &[
            "--pkcs11",
            &uri("issuing-5"),
            "--pkcs11-generate",
            "--revoke-previous",
            "superseded",
        ],
    ));
    assert!(ca.read("ca/ca.key.pkcs11").contains("object=issuing-5"));
    ok(run(ca.cmd(&d4).arg("check")));
}

/// The URI line of a token record.
fn record_uri(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("pkcs11:"))
        .unwrap()
        .to_string()
}

/// A token record that names another key the token holds (its URI and public key, a whole
/// record swapped in by a merge): the token proves it holds that key, and the mismatch with the
/// certificate names the record's file — ca/ca.key.pkcs11, ca/root.key.pkcs11,
/// ca/previous.key.pkcs11 — and token help, never ca/ca.key.age. Nothing is signed or
/// committed; restored, the same commands work.
#[test]
fn a_key_mismatch_names_the_token_record_that_holds_the_key() {
    let hsm = HsmCa::new();
    hsm.request(&["alice".to_string()]);
    let (ci, ci_recipient) = age_identity(hsm.tmp.path(), "ci");
    // Another key in the same token: a second CA's record, whole.
    let other = hsm.tmp.path().join("other");
    let mut c = gitca();
    hsm.token
        .env(&mut c)
        .args(["--now", T0, "init", "-C"])
        .arg(&other)
        .args(["--name", "Other", "-q", "--pkcs11-generate", "--pkcs11"])
        .arg(format!("pkcs11:token={LABEL};object=other"));
    ok(run(&mut c));
    let other_record = std::fs::read_to_string(other.join("ca/ca.key.pkcs11")).unwrap();
    let swapped = |root: &Path, file: &str, with: &str, run_it: &mut dyn FnMut() -> Output| {
        let genuine = std::fs::read_to_string(root.join(file)).unwrap();
        std::fs::write(root.join(file), with).unwrap();
        git(root, &["commit", "-q", "-am", "merged: another key"]);
        let head = git(root, &["rev-parse", "HEAD"]);
        let o = fails(run_it());
        let err = stderr(&o);
        assert!(err.contains(file), "{file}: {err}");
        assert!(err.contains(&record_uri(with)), "{err}");
        assert!(err.contains("pkcs11-tool"), "{err}");
        assert!(!err.contains(".key.age"), "{err}");
        assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
        assert_eq!(git(root, &["status", "--porcelain"]), "");
        std::fs::write(root.join(file), genuine).unwrap();
        git(root, &["commit", "-q", "-am", "restored"]);
    };

    // The issuing key: reconcile and ca verify.
    swapped(&hsm.root, "ca/ca.key.pkcs11", &other_record, &mut || {
        run(hsm.cmd(T0).args(["ca", "verify"]))
    });
    swapped(&hsm.root, "ca/ca.key.pkcs11", &other_record, &mut || {
        run(hsm.cmd(T0).arg("reconcile"))
    });
    assert!(!hsm.path("certs/alice.crt").exists());
    ok(run(hsm.cmd(T0).arg("reconcile")));

    // The offline root's key, in the same token: root sign-crl.
    let root = hsm.tmp.path().join("tiered");
    let mut c = gitca();
    hsm.token
        .env(&mut c)
        .args(["--now", T0, "init", "-C"])
        .arg(&root)
        .args(["--name", "Tiered", "-q", "--offline-root", "--recipient"])
        .arg(&ci_recipient)
        .args(["--root-pkcs11-generate", "--root-pkcs11"])
        .arg(format!("pkcs11:token={LABEL};object=root"));
    ok(run(&mut c));
    let ca = Ca::at(tempfile::tempdir().unwrap(), root.clone(), ci, ci_recipient);
    let cmd = |now: &str| {
        let mut c = ca.cmd(now);
        hsm.token.env(&mut c);
        c
    };
    let d1 = days_after(T0, 1);
    swapped(&root, "ca/root.key.pkcs11", &other_record, &mut || {
        run(cmd(&d1).args(["root", "sign-crl"]))
    });
    ok(run(cmd(&d1).args(["root", "sign-crl"])));

    // A retiring intermediate in the token: its CRL is re-signed when bob leaves.
    for name in ["alice", "bob"] {
        let key = ca.keys.join(format!("{name}.key"));
        ok(run(cmd(T0)
            .args(["request", name, "-q", "--key-out"])
            .arg(&key)));
    }
    ca.commit("two");
    let reconcile = |now: &str| {
        run(cmd(now)
            .arg("reconcile")
            .arg("--identity")
            .arg(&ca.identity))
    };
    ok(reconcile(&d1));
    let d2 = days_after(T0, 2);
    let new_intermediate = |now: &str, object: &str, extra: &[&str]| {
        ok(run(cmd(now)
            .args(["root", "new-intermediate", "--pkcs11-generate", "--pkcs11"])
            .arg(format!("pkcs11:token={LABEL};object={object}"))
            .args(extra)))
    };
    new_intermediate(&d2, "issuing-2", &[]);
    ok(reconcile(&d2));
    let d3 = days_after(T0, 3);
    new_intermediate(&d3, "issuing-3", &["--revoke-previous", "superseded"]);
    ok(reconcile(&d3));
    assert!(ca
        .read("ca/previous.key.pkcs11")
        .contains("object=issuing-2"));
    ca.offboard("bob");
    ca.commit("bob leaves");
    swapped(&root, "ca/previous.key.pkcs11", &other_record, &mut || {
        reconcile(&d3)
    });
    let previous_crl = ca.read("crl/previous.crl");
    ok(reconcile(&d3));
    assert_ne!(ca.read("crl/previous.crl"), previous_crl);
    ok(run(cmd(&d3).arg("check")));

    // The hints that restore the intermediates' files name the token records too, and work.
    let restored_by_hint = |says: &str| {
        let head = ca.head();
        let o = fails(reconcile(&d3));
        let err = stderr(&o);
        assert!(err.contains(says), "{err}");
        assert_eq!(ca.head(), head);
        let hint = suggested(&err, "git checkout");
        assert!(!hint.is_empty() && !hint[0].contains(".key.age"), "{err}");
        ca.sh(&hint[0]);
        ca.commit("restored");
    };
    // The retiring intermediate put back in charge, its token record with it.
    let current = ["ca/ca.crt", "ca/ca.key.pkcs11"];
    let now_current: Vec<String> = current.iter().map(|f| ca.read(f)).collect();
    ca.write("ca/ca.crt", &ca.read("ca/previous.crt"));
    ca.write("ca/ca.key.pkcs11", &ca.read("ca/previous.key.pkcs11"));
    ca.commit("merged: swap");
    restored_by_hint("a retired intermediate was put back");
    for (f, text) in current.iter().zip(&now_current) {
        assert_eq!(&ca.read(f), text, "{f} restored by the hint");
    }
    // The retiring intermediate's files deleted.
    let previous = [
        "ca/previous.crt",
        "ca/previous.key.pkcs11",
        "crl/previous.crl",
    ];
    let kept: Vec<String> = previous.iter().map(|f| ca.read(f)).collect();
    for f in previous {
        std::fs::remove_file(ca.path(f)).unwrap();
    }
    ca.commit("merged: previous deleted");
    restored_by_hint("neither current, retiring");
    for (f, text) in previous.iter().zip(&kept) {
        assert_eq!(&ca.read(f), text, "{f} restored by the hint");
    }
    ok(reconcile(&d3));
}

/// `--pkcs11-generate` with an id= (or object= label) another object in the token already has
/// would leave two keys the URI names: refused before anything is made, with the clash and the
/// ways out; nothing is written to the repository or the token. A free id passes.
#[test]
fn generating_a_key_refuses_an_id_or_label_the_token_already_holds() {
    let hsm = HsmCa::new();
    let uri = record_uri(&hsm.read_record());
    let id = uri
        .split(';')
        .find_map(|p| p.strip_prefix("id="))
        .unwrap()
        .to_string();
    let init = |dir: &Path, uri: &str, generate: bool| {
        let mut c = gitca();
        hsm.token
            .env(&mut c)
            .args(["--now", T0, "init", "-C"])
            .arg(dir)
            .args(["--name", "Second", "-q", "--pkcs11", uri]);
        if generate {
            c.arg("--pkcs11-generate");
        }
        run(&mut c)
    };
    let second = hsm.tmp.path().join("second");
    for (clash, says) in [
        (
            format!("pkcs11:token={LABEL};object=second;id={id}"),
            format!("id={id}"),
        ),
        (
            format!("pkcs11:token={LABEL};object=ca;id=%42"),
            "object=ca".to_string(),
        ),
    ] {
        let o = fails(init(&second, &clash, true));
        let err = stderr(&o);
        assert!(err.contains("already holds a private key"), "{err}");
        assert!(err.contains(&says), "{says}: {err}");
        assert!(err.contains("drop --pkcs11-generate"), "{err}");
        assert!(!second.join("gitca.yaml").exists());
    }

    // In a ceremony too: the repository stays as it was.
    let (ca, custodian) = offline_root_ca(T0);
    let ceremony = |uri: &str| {
        let mut c = ca.cmd(&days_after(T0, 1));
        hsm.token.env(&mut c);
        run(c
            .args([
                "root",
                "new-intermediate",
                "--pkcs11-generate",
                "--pkcs11",
                uri,
            ])
            .arg("--identity")
            .arg(&custodian))
    };
    let head = ca.head();
    let o = fails(ceremony(&format!(
        "pkcs11:token={LABEL};object=issuing-2;id={id}"
    )));
    assert!(stderr(&o).contains(&format!("id={id}")), "{}", stderr(&o));
    assert_eq!(ca.head(), head);
    assert_eq!(ca.status(), "");
    // Nothing was made in the token: its id and its label each still name exactly one key,
    // the CA's (adopting by either alone finds it, where two would be refused).
    for (i, alone) in [format!("id={id}"), "object=ca".to_string()]
        .iter()
        .enumerate()
    {
        let dir = hsm.tmp.path().join(format!("adopted-{i}"));
        ok(init(&dir, &format!("pkcs11:token={LABEL};{alone}"), false));
        let pem = |t: &str| t[t.find("-----BEGIN PUBLIC KEY-----").unwrap()..].to_string();
        let adopted = std::fs::read_to_string(dir.join("ca/ca.key.pkcs11")).unwrap();
        assert_eq!(pem(&adopted), pem(&hsm.read_record()), "{alone}");
    }
    // A free id passes, and the record keeps it.
    ok(ceremony(&format!(
        "pkcs11:token={LABEL};object=issuing-2;id=%42"
    )));
    assert!(ca.read("ca/ca.key.pkcs11").contains("id=%42"));
    ok(init(
        &second,
        &format!("pkcs11:token={LABEL};object=second;id=%43"),
        true,
    ));
}
