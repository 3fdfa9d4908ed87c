//! Custody and time: rekey, status, adopting an `openssl ca` CA, and years of simulated reconciles.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use common::*;

const OPENSSL_CNF: &str = r#"
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = .
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/certs/docker_ca.crt
private_key = $dir/private/docker_ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 366
default_crl_days = 30
policy = policy_anything
unique_subject = no
copy_extensions = none
[ policy_anything ]
commonName = supplied
organizationName = optional
organizationalUnitName = optional
emailAddress = optional
[ req ]
distinguished_name = req_dn
[ req_dn ]
[ usr_cert ]
basicConstraints = CA:FALSE
nsCertType = client
nsComment = "Docker Registry CA"
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = cRLSign, keyCertSign
subjectKeyIdentifier = hash
"#;

/// An `openssl ca` directory made exactly as the reference article does, with alice, bob and
/// carol issued and carol revoked for key compromise.
fn openssl_ca(dir: &Path) {
    openssl_ca_with(dir, &["alice", "bob", "carol"], Some("carol"));
}

/// An `openssl ca` directory with a certificate for each CN (keys and CSRs kept beside them,
/// as the article's recipe leaves them), `revoked` revoked for key compromise.
fn openssl_ca_with(dir: &Path, cns: &[&str], revoked: Option<&str>) {
    for d in ["certs", "crl", "newcerts", "private"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    std::fs::write(dir.join("crlnumber"), "1000\n").unwrap();
    std::fs::write(dir.join("openssl-ca.cnf"), OPENSSL_CNF).unwrap();
    let o = |args: &[&str]| ok(tool("openssl", args, dir));
    o(&[
        "genrsa",
        "-aes256",
        "-passout",
        "pass:secret",
        "-out",
        "private/docker_ca.key",
        "2048",
    ]);
    o(&[
        "req",
        "-new",
        "-x509",
        "-days",
        "3650",
        "-key",
        "private/docker_ca.key",
        "-passin",
        "pass:secret",
        "-sha256",
        "-extensions",
        "v3_ca",
        "-config",
        "openssl-ca.cnf",
        "-subj",
        "/O=Acme/CN=Docker Registry CA",
        "-out",
        "certs/docker_ca.crt",
    ]);
    for cn in cns {
        let name = cn.to_ascii_lowercase().replace(' ', "-");
        o(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("certs/{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ]);
        o(&[
            "ca",
            "-batch",
            "-config",
            "openssl-ca.cnf",
            "-passin",
            "pass:secret",
            "-extensions",
            "usr_cert",
            "-notext",
            "-md",
            "sha256",
            "-in",
            &format!("certs/{name}.csr"),
            "-out",
            &format!("certs/{name}.crt"),
            "-days",
            "366",
        ]);
    }
    if let Some(r) = revoked {
        o(&[
            "ca",
            "-config",
            "openssl-ca.cnf",
            "-passin",
            "pass:secret",
            "-revoke",
            &format!("certs/{r}.crt"),
            "-crl_reason",
            "keyCompromise",
        ]);
    }
    o(&[
        "ca",
        "-gencrl",
        "-config",
        "openssl-ca.cnf",
        "-passin",
        "pass:secret",
        "-out",
        "crl/crl.pem",
    ]);
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn importing_an_openssl_ca_keeps_its_certificates_and_revocations() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old-ca");
    openssl_ca(&old);
    let (identity, recipient) = age_identity(tmp.path(), "custodian");
    let new = tmp.path().join("new-ca");
    let now = now();
    let o = ok(run(gitca()
        .args(["import-openssl"])
        .arg(&old)
        .arg("-C")
        .arg(&new)
        .args(["--recipient", &recipient, "--now", &now])
        .env("GITCA_IMPORT_PASSPHRASE", "secret")));
    assert!(
        stdout(&o).contains("3 certificate(s), 1 revoked"),
        "{}",
        stdout(&o)
    );
    let g = |args: &[&str]| run(gitca().arg("-C").arg(&new).args(["--now", &now]).args(args));

    // The next plan has nothing to do, and check is happy.
    let o = g(&["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    ok(g(&["check"]));
    // The same CA: openssl's certificates verify against the new CRL; carol stays revoked.
    let verify = |cert: &str| {
        tool(
            "openssl",
            &[
                "verify",
                "-crl_check",
                "-CAfile",
                "ca/ca.crt",
                "-CRLfile",
                "crl/ca.crl",
                cert,
            ],
            &new,
        )
    };
    for name in ["alice", "bob"] {
        ok(verify(
            old.join(format!("certs/{name}.crt")).to_str().unwrap(),
        ));
    }
    let o = verify(old.join("certs/carol.crt").to_str().unwrap());
    let said = stdout(&o) + &stderr(&o);
    assert!(
        !o.status.success() && said.contains("certificate revoked"),
        "{said}"
    );
    // CRL numbers continue after openssl's (its crlnumber file holds 1001 after one CRL).
    let n = stdout(&ok(tool(
        "openssl",
        &["crl", "-in", "crl/ca.crl", "-noout", "-crlnumber"],
        &new,
    )));
    assert_eq!(n.trim(), "crlNumber=0x1001");
    let text = stdout(&ok(tool(
        "openssl",
        &["crl", "-in", "crl/ca.crl", "-noout", "-text"],
        &new,
    )));
    assert!(text.contains("Key Compromise"), "{text}");
    // Declared identities and carried-over CSRs.
    let yaml = std::fs::read_to_string(new.join("identities/imported.yaml")).unwrap();
    assert!(
        yaml.contains("name: alice") && yaml.contains("name: bob") && !yaml.contains("carol"),
        "{yaml}"
    );
    assert!(new.join("csr/alice.csr").exists());
    // The key was re-encrypted with age: the real age CLI decrypts it, and it is the old key.
    let o = ok(tool(
        "age",
        &["-d", "-i", identity.to_str().unwrap(), "ca/ca.key.age"],
        &new,
    ));
    assert!(stdout(&o).starts_with("-----BEGIN PRIVATE KEY-----"));
    // And gitca runs the CA from here: offboarding bob revokes his openssl-issued certificate.
    let yaml = yaml.replace("  - name: bob\n    csr: csr/bob.csr\n", "");
    std::fs::write(new.join("identities/imported.yaml"), yaml).unwrap();
    git(&new, &["commit", "-qam", "offboard bob"]);
    ok(run(gitca()
        .arg("-C")
        .arg(&new)
        .args(["--now", &now, "reconcile", "--identity"])
        .arg(&identity)));
    let o = verify(old.join("certs/bob.crt").to_str().unwrap());
    assert!(
        !o.status.success(),
        "bob's openssl certificate is revoked by gitca"
    );
    ok(verify(old.join("certs/alice.crt").to_str().unwrap()));
}

#[test]
fn legacy_encrypted_openssl_key_gets_the_conversion_command() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old-ca");
    openssl_ca(&old);
    // The pre-OpenSSL-3 form: Proc-Type: 4,ENCRYPTED.
    ok(tool(
        "openssl",
        &[
            "rsa",
            "-in",
            "private/docker_ca.key",
            "-passin",
            "pass:secret",
            "-aes256",
            "-passout",
            "pass:secret",
            "-traditional",
            "-out",
            "private/docker_ca.key",
        ],
        &old,
    ));
    assert!(std::fs::read_to_string(old.join("private/docker_ca.key"))
        .unwrap()
        .contains("Proc-Type: 4,ENCRYPTED"));
    let (_, recipient) = age_identity(tmp.path(), "c");
    let new = tmp.path().join("new-ca");
    let o = fails(run(gitca()
        .arg("import-openssl")
        .arg(&old)
        .arg("-C")
        .arg(&new)
        .args(["--recipient", &recipient])
        .env("GITCA_IMPORT_PASSPHRASE", "secret")));
    assert!(
        stderr(&o).contains("openssl pkcs8 -topk8"),
        "{}",
        stderr(&o)
    );
    assert!(!new.exists(), "nothing written");
    // Wrong passphrase on the PKCS#8 form.
    let old2 = tmp.path().join("old-ca-2");
    openssl_ca(&old2);
    let o = fails(run(gitca()
        .arg("import-openssl")
        .arg(&old2)
        .arg("-C")
        .arg(&new)
        .args(["--recipient", &recipient])
        .env("GITCA_IMPORT_PASSPHRASE", "nope")));
    assert!(stderr(&o).contains("wrong passphrase"), "{}", stderr(&o));
    assert!(!new.exists());
}

#[test]
fn rekey_changes_custodians_and_warns_about_history() {
    let ca = Ca::new();
    let (new_id, new_r) = age_identity(ca.tmp.path(), "new-custodian");
    let o = ok(run(ca
        .cmd(T0)
        .args(["rekey", "--identity"])
        .arg(&ca.identity)
        .args(["--recipient", &new_r])));
    assert!(
        stdout(&o).contains("stays in git history"),
        "{}",
        stdout(&o)
    );
    assert!(ca.read("ca/recipients.txt").contains(&new_r));
    assert!(!ca.read("ca/recipients.txt").contains(&ca.recipient));
    assert_eq!(
        git(&ca.root, &["log", "-1", "--format=%s"]).trim(),
        "gitca: rekey the CA key for 1 recipient(s)"
    );
    // The old identity no longer opens the current key; the new one does; the key is the same.
    assert!(!tool(
        "age",
        &["-d", "-i", ca.identity.to_str().unwrap(), "ca/ca.key.age"],
        &ca.root
    )
    .status
    .success());
    ok(run(ca
        .cmd(T0)
        .args(["ca", "verify", "--identity"])
        .arg(&new_id)));
    // ...but the old ciphertext in history still opens with the old identity: the warning is true.
    let old_blob = git(&ca.root, &["show", "HEAD~1:ca/ca.key.age"]);
    let f = ca.tmp.path().join("old.age");
    std::fs::write(&f, old_blob).unwrap();
    ok(tool(
        "age",
        &[
            "-d",
            "-i",
            ca.identity.to_str().unwrap(),
            f.to_str().unwrap(),
        ],
        &ca.root,
    ));
    // Without the current identity nothing changes.
    let head = ca.head();
    fails(run(ca
        .cmd(T0)
        .args(["rekey", "--identity"])
        .arg(&ca.identity)
        .args(["--recipient", &new_r])));
    assert_eq!(ca.head(), head);
    // --add keeps everyone and adds one: no warning, nobody lost access.
    let (third_id, third_r) = age_identity(ca.tmp.path(), "third");
    let o = ok(run(ca
        .cmd(T0)
        .args(["rekey", "--identity"])
        .arg(&new_id)
        .args(["--add", &third_r])));
    assert!(!stdout(&o).contains("warning"), "{}", stdout(&o));
    let listed = ca.read("ca/recipients.txt");
    assert!(
        listed.contains(&new_r) && listed.contains(&third_r),
        "{listed}"
    );
    for id in [&new_id, &third_id] {
        ok(tool(
            "age",
            &["-d", "-i", id.to_str().unwrap(), "ca/ca.key.age"],
            &ca.root,
        ));
    }
    // --remove takes one away, and then the history warning is due; a recipient that is not
    // there is refused, naming the file that lists them.
    let o = fails(run(ca
        .cmd(T0)
        .args(["rekey", "--identity"])
        .arg(&new_id)
        .args(["--remove", &ca.recipient])));
    assert!(stderr(&o).contains("ca/recipients.txt"), "{}", stderr(&o));
    let o = ok(run(ca
        .cmd(T0)
        .args(["rekey", "--identity"])
        .arg(&new_id)
        .args(["--remove", &third_r])));
    assert!(
        stdout(&o).contains("1 recipient(s) lost access"),
        "{}",
        stdout(&o)
    );
    assert!(!tool(
        "age",
        &["-d", "-i", third_id.to_str().unwrap(), "ca/ca.key.age"],
        &ca.root
    )
    .status
    .success());
}

/// With an offline root, `rekey --root` changes the root's custodians; CI's identity cannot.
#[test]
fn the_root_custodians_change_with_rekey_root() {
    let (ca, custodian) = offline_root_ca(T0);
    let (new_id, new_r) = age_identity(ca.tmp.path(), "new-root-custodian");
    fails(run(ca
        .cmd(T0)
        .args(["rekey", "--root", "--identity"])
        .arg(&ca.identity)
        .args(["--add", &new_r])));
    ok(run(ca
        .cmd(T0)
        .args(["rekey", "--root", "--identity"])
        .arg(&custodian)
        .args(["--add", &new_r])));
    ok(tool(
        "age",
        &["-d", "-i", new_id.to_str().unwrap(), "ca/root.key.age"],
        &ca.root,
    ));
    assert!(!tool(
        "age",
        &["-d", "-i", new_id.to_str().unwrap(), "ca/ca.key.age"],
        &ca.root
    )
    .status
    .success());
    ok(run(ca
        .cmd(T0)
        .args(["root", "sign-crl", "--identity"])
        .arg(&new_id)));
}

#[test]
fn status_reports_and_alerts_on_expiry() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.p256_csr("ci");
    ca.identities("users:\n  - name: alice\nbots:\n  - name: ci\n");
    ca.commit("two");
    ok(ca.reconcile(T0));
    let o = ok(run(ca.cmd(T0).args(["status", "--json"])));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["identities"][0]["name"], "alice");
    assert_eq!(doc["identities"][0]["days_left"], 365);
    assert_eq!(doc["identities"][1]["days_left"], 30);
    assert_eq!(doc["crl"]["number"], 1);
    // The bot's certificate (30 days) is inside a 31-day window; nothing is inside 5 days.
    let o = run(ca.cmd(T0).args(["status", "--expiring", "31d"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("certificate of ci ("), "{}", stdout(&o));
    let o = run(ca.cmd(T0).args(["status", "--expiring", "5d"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // The README's monitoring example does not fire on a healthy, fresh CA: the CRL is
    // re-signed daily, so it alerts only when the reconcile job stopped.
    let o = run(ca.cmd(T0).args(["status", "-q", "--expiring", "14d"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(stdout(&o), "", "quiet and healthy: silent");
    // Five days without a reconcile: the CRL has two days left; -q prints the one line.
    let o = run(ca
        .cmd(&days_after(T0, 5))
        .args(["status", "-q", "--expiring", "14d"]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("CRL #1 expires"), "{}", stdout(&o));
    assert!(stdout(&o).contains("daily job"), "{}", stdout(&o));

    // Time passes without reconciles: the bot's certificate expires and shows as expired,
    // with its date; an offboarded identity is listed with who, when and why.
    let o = ok(run(ca.cmd(&days_after(T0, 40)).args(["status", "--json"])));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["identities"][1]["name"], "ci");
    assert_eq!(doc["identities"][1]["state"], "expired");
    assert_eq!(doc["identities"][1]["not_after"], "2026-01-31T00:00:00Z");
    let o = ok(run(ca.cmd(&days_after(T0, 40)).arg("status")));
    assert!(stdout(&o).contains("expired"), "{}", stdout(&o));
    assert!(stdout(&o).contains("2026-01-31"), "{}", stdout(&o));
    ca.identities("bots:\n  - name: ci\n");
    ca.commit("alice leaves");
    ok(ca.reconcile(&days_after(T0, 1)));
    let o = ok(run(ca
        .cmd(&days_after(T0, 1))
        .args(["status", "--revoked"])));
    let out = stdout(&o);
    assert!(
        out.contains("alice") && out.contains("cessation-of-operation"),
        "{out}"
    );
    assert!(out.contains("2026-01-02T00:00:00Z"), "when: {out}");
}

/// A day of the simulation: who is declared.
fn declare(ca: &Ca, users: &BTreeSet<String>, bots: &BTreeSet<String>) {
    let mut y = String::from("users:\n");
    for u in users {
        y.push_str(&format!("  - name: {u}\n"));
    }
    y.push_str("bots:\n");
    for b in bots {
        y.push_str(&format!("  - name: {b}\n"));
    }
    ca.identities(&y);
}

fn rcgen_csr(ca: &Ca, name: &str) {
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(ca.keys.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    ca.write(
        &format!("csr/{name}.csr"),
        &p.serialize_request(&key).unwrap().pem().unwrap(),
    );
}

#[test]
fn eight_hundred_days_of_daily_reconciles_keep_everyone_valid_and_the_crl_fresh() {
    let ca = Ca::new();
    let mut users: BTreeSet<String> = ["u0", "u1", "u2"].iter().map(|s| s.to_string()).collect();
    let mut bots: BTreeSet<String> = ["b0", "b1"].iter().map(|s| s.to_string()).collect();
    for n in users.iter().chain(bots.iter()) {
        rcgen_csr(&ca, n);
    }
    declare(&ca, &users, &bots);
    ca.commit("day 0");
    let identity = std::fs::read_to_string(&ca.identity).unwrap();
    let mut removed_pending: Vec<String> = Vec::new();
    let mut last_crl = 0u64;
    let mut next_id = 3;
    for day in 0..800i64 {
        let now = days_after(T0, day);
        // People and bots come and go.
        let mut changed = false;
        if day > 0 && day % 37 == 0 {
            let n = format!("u{next_id}");
            next_id += 1;
            rcgen_csr(&ca, &n);
            users.insert(n);
            changed = true;
        }
        if day > 0 && day % 53 == 0 {
            let n = format!("b{next_id}");
            next_id += 1;
            rcgen_csr(&ca, &n);
            bots.insert(n);
            changed = true;
        }
        if day % 61 == 30 && users.len() > 1 {
            let gone = users.iter().next().unwrap().clone();
            users.remove(&gone);
            removed_pending.push(gone);
            changed = true;
        }
        if day % 89 == 45 && bots.len() > 1 {
            let gone = bots.iter().next().unwrap().clone();
            bots.remove(&gone);
            removed_pending.push(gone);
            changed = true;
        }
        if changed {
            declare(&ca, &users, &bots);
            ca.commit(&format!("day {day}"));
        }
        ok(run(ca
            .cmd(&now)
            .args(["reconcile", "-q"])
            .env("GITCA_IDENTITY", &identity)));

        // Every declared identity holds a valid certificate; the CRL is fresh; numbers grow.
        let rows = ca.ledger_rows();
        let t = time::OffsetDateTime::parse(&now, &time::format_description::well_known::Rfc3339)
            .unwrap();
        let parse = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let mut live: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &rows {
            if r[4] == "issued" && parse(&r[6]) > t && parse(&r[5]) <= t {
                *live.entry(r[1].as_str()).or_default() += 1;
            }
        }
        for n in users.iter().chain(bots.iter()) {
            assert!(
                live.contains_key(n.as_str()),
                "day {day}: {n} has no valid certificate"
            );
        }
        let crl_pem = ca.read("crl/ca.crl");
        let block = pem::parse(&crl_pem).unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(block.contents()).unwrap();
        let next = crl.next_update().unwrap().to_datetime();
        assert!(next > t, "day {day}: the CRL expired");
        let number = crl
            .crl_number()
            .unwrap()
            .to_u64_digits()
            .first()
            .copied()
            .unwrap_or(0);
        assert!(number >= last_crl, "day {day}: CRL number went back");
        last_crl = number;
        let on_crl: HashSet<String> = crl
            .iter_revoked_certificates()
            .map(|r| gitca::authority::ca::serial_hex(r.raw_serial()))
            .collect();
        for gone in removed_pending.drain(..) {
            for r in rows.iter().filter(|r| r[1] == gone && parse(&r[6]) > t) {
                assert!(
                    on_crl.contains(&r[0]),
                    "day {day}: {gone}'s {} is not on the CRL",
                    r[0]
                );
            }
        }
        let serials: HashSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(serials.len(), rows.len(), "day {day}: a serial repeats");
        // Once in a while, let openssl judge a current certificate against the CRL.
        if day % 100 == 0 {
            let name = users.iter().next().unwrap();
            ok(ca.verify_crl(&ca.path(&format!("certs/{name}.crt")), &now));
        }
    }
    assert!(
        last_crl > 100,
        "the CRL was refreshed all along ({last_crl})"
    );
}

/// What the simulation checks every day on main, whatever happened.
struct Watch {
    last_crl: u64,
    last_crl_text: String,
}

impl Watch {
    /// The CRL on main is current; its number rose if it changed; every name in `gone` has
    /// every unexpired certificate on it; every name in `must_hold` holds a valid certificate.
    fn check(&mut self, ca: &Ca, day: i64, now: &str, gone: &[String], must_hold: &[String]) {
        let t = time::OffsetDateTime::parse(now, &time::format_description::well_known::Rfc3339)
            .unwrap();
        let parse = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let text = ca.read("crl/ca.crl");
        let block = pem::parse(&text).unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(block.contents()).unwrap();
        assert!(
            crl.next_update().unwrap().to_datetime() > t,
            "day {day}: the CRL on main has expired"
        );
        let number = crl
            .crl_number()
            .unwrap()
            .to_u64_digits()
            .first()
            .copied()
            .unwrap_or(0);
        if text != self.last_crl_text {
            assert!(
                number > self.last_crl,
                "day {day}: CRL number {number} after {}",
                self.last_crl
            );
        }
        self.last_crl = number;
        self.last_crl_text = text;
        let on_crl: HashSet<String> = crl
            .iter_revoked_certificates()
            .map(|r| gitca::authority::ca::serial_hex(r.raw_serial()))
            .collect();
        let rows = ca.ledger_rows();
        for g in gone {
            for r in rows.iter().filter(|r| &r[1] == g && parse(&r[6]) > t) {
                assert!(
                    on_crl.contains(&r[0]),
                    "day {day}: {g}'s {} is not on the CRL",
                    r[0]
                );
            }
        }
        for n in must_hold {
            let valid = rows
                .iter()
                .any(|r| &r[1] == n && r[4] == "issued" && parse(&r[5]) <= t && parse(&r[6]) > t);
            assert!(valid, "day {day}: {n} holds no valid certificate");
        }
    }
}

/// Issue 13's simulation: 800 days of daily reconciles on an imported CA (CNs that are not
/// names), with faults: a poisoned pull request merged on day 100 and fixed on day 130, a
/// duplicate key on day 200 (with an urgent offboarding the same day), and a week without any
/// reconcile. Every day: the CRL on main is current, every declared signable identity holds a
/// valid certificate, every removal is on the CRL by the next run, CRL numbers only rise.
#[test]
fn eight_hundred_days_with_faults_never_lock_anyone_out() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old-ca");
    openssl_ca_with(&old, &["John Smith", "Mallory", "alice"], None);
    let (identity_file, recipient) = age_identity(tmp.path(), "custodian");
    let root = tmp.path().join("ca");
    let start = now();
    ok(run(gitca()
        .args([
            "import-openssl",
            old.to_str().unwrap(),
            "-C",
            root.to_str().unwrap(),
        ])
        .args(["--recipient", &recipient, "--now", &start])
        .env("GITCA_IMPORT_PASSPHRASE", "secret")));
    let ca = Ca::imported(tmp, root, identity_file, recipient);
    let imported = ca.read("identities/imported.yaml");
    assert!(imported.contains("common_name: John Smith"), "{imported}");
    // A team that wants to survive a week without CI: the CRL is re-signed whenever less than
    // eight of its ten days remain.
    let cfg = ca
        .read("gitca.yaml")
        .replace("validity: 7d", "validity: 10d")
        .replace("refresh_before: 3d", "refresh_before: 8d");
    ca.write("gitca.yaml", &cfg);
    for b in ["b0", "b1"] {
        rcgen_csr(&ca, b);
    }
    ca.write(
        "identities/bots.yaml",
        "bots:\n  - name: b0\n  - name: b1\n",
    );
    ca.commit("day 0: bots, and a CRL policy for week-long outages");
    ok(run(ca.cmd(&start).arg("check")));
    let identity = std::fs::read_to_string(&ca.identity).unwrap();
    let reconcile = |now: &str| {
        run(ca
            .cmd(now)
            .args(["reconcile", "-q"])
            .env("GITCA_IDENTITY", &identity))
    };
    let mut watch = Watch {
        last_crl: 0,
        last_crl_text: String::new(),
    };
    let everyone = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut holders = everyone(&["alice", "john-smith", "mallory", "b0", "b1"]);
    let mut gone: Vec<String> = Vec::new();
    let mut alice_key: Option<std::path::PathBuf> = None;
    for day in 0..800i64 {
        let now = days_after(&start, day);
        match day {
            // A poisoned pull request: alice's CSR replaced by a weak key, b1 offboarded.
            100 => {
                ca.openssl_csr("alice-weak", "alice", &["rsa:1024"], &[]);
                std::fs::rename(ca.path("csr/alice-weak.csr"), ca.path("csr/alice.csr")).unwrap();
                ca.write("identities/bots.yaml", "bots:\n  - name: b0\n");
                ca.commit("day 100: poisoned");
                holders.retain(|n| n != "b1");
                gone.push("b1".into());
            }
            // The fix: a proper new key for alice.
            130 => {
                alice_key = Some(ca.p256_csr("alice"));
                ca.commit("day 130: alice's CSR fixed");
            }
            // A second identity declares b0's key; mallory must leave the same day.
            200 => {
                let b0_key = ca.keys.join("b0.key");
                ok(ca.openssl(&[
                    "req",
                    "-new",
                    "-key",
                    b0_key.to_str().unwrap(),
                    "-subj",
                    "/CN=svc2",
                    "-out",
                    "csr/svc2.csr",
                ]));
                ca.write(
                    "identities/bots.yaml",
                    "bots:\n  - name: b0\n  - name: svc2\n",
                );
                let text = ca.read("identities/imported.yaml");
                let without_mallory: String = {
                    let mut out = String::new();
                    let mut skip = false;
                    for l in text.lines() {
                        if l.trim_start().starts_with("- name:") {
                            skip = l.contains("mallory");
                        }
                        if !skip {
                            out.push_str(l);
                            out.push('\n');
                        }
                    }
                    out
                };
                ca.write("identities/imported.yaml", &without_mallory);
                ca.commit("day 200: svc2 with b0's key; mallory leaves");
                holders.retain(|n| n != "mallory");
                gone.push("mallory".into());
            }
            230 => {
                ca.write("identities/bots.yaml", "bots:\n  - name: b0\n");
                ca.commit("day 230: svc2 withdrawn");
            }
            _ => {}
        }
        // A week without any reconcile.
        if (300..307).contains(&day) {
            watch.check(&ca, day, &now, &gone, &holders);
            continue;
        }
        let o = reconcile(&now);
        let expected = if (100..130).contains(&day) || (200..230).contains(&day) {
            3
        } else {
            0
        };
        assert_eq!(
            o.status.code(),
            Some(expected),
            "day {day}:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
        watch.check(&ca, day, &now, &gone, &holders);
    }
    assert!(alice_key.is_some());
    // The imported identities were renewed from their carried-over CSRs (CN `John Smith`).
    let renewals = ca
        .ledger_rows()
        .iter()
        .filter(|r| r[1] == "john-smith")
        .count();
    assert!(
        renewals >= 2,
        "john-smith was renewed: {renewals} certificates"
    );
    let subject = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/john-smith.crt",
        "-noout",
        "-subject",
    ])));
    assert!(subject.contains("CN = John Smith"), "{subject}");
}

/// Issue 15: a break-glass identity kept encrypted with a passphrase (`age -p` over an
/// `age-keygen` identity) unlocks the CA key, as the age CLI does: the passphrase from
/// GITCA_IDENTITY_PASSPHRASE or the terminal.
#[test]
fn a_passphrase_protected_identity_file_unlocks_the_ca_key() {
    for t in ["age", "age-keygen", "script"] {
        require(t);
    }
    let ca = Ca::new();
    let dir = ca.tmp.path();
    let plain = dir.join("breakglass.txt");
    ok(tool("age-keygen", &["-o", plain.to_str().unwrap()], dir));
    let public = stdout(&ok(tool(
        "age-keygen",
        &["-y", plain.to_str().unwrap()],
        dir,
    )));
    let tty = |cmd: &str, input: &str| {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf '{input}' | script -qec '{cmd}' /dev/null"))
            .current_dir(dir)
            .output()
            .unwrap()
    };
    // The age CLI encrypts the identity with a passphrase...
    tty(
        "age -p -a -o breakglass.age breakglass.txt",
        "correct horse\\ncorrect horse\\n",
    );
    std::fs::remove_file(&plain).unwrap();
    let enc = dir.join("breakglass.age");
    assert!(std::fs::read_to_string(&enc)
        .unwrap()
        .contains("BEGIN AGE ENCRYPTED FILE"));
    ok(run(ca
        .cmd(T0)
        .args(["rekey", "--identity"])
        .arg(&ca.identity)
        .args(["--add", public.trim()])));
    // ...and decrypts the CA key with it.
    let o = tty(
        &format!(
            "age -d -i breakglass.age {}",
            ca.path("ca/ca.key.age").display()
        ),
        "correct horse\\n",
    );
    assert!(stdout(&o).contains("PRIVATE KEY"), "the age CLI reads it");
    // gitca does too: from the environment, or asked on the terminal.
    let verify = |pass: Option<&str>| {
        let mut c = ca.cmd(T0);
        c.args(["ca", "verify", "--identity"]).arg(&enc);
        if let Some(p) = pass {
            c.env("GITCA_IDENTITY_PASSPHRASE", p);
        }
        run(&mut c)
    };
    let o = ok(verify(Some("correct horse")));
    assert!(stdout(&o).contains("CA key unlocked"), "{}", stdout(&o));
    let o = fails(verify(Some("wrong horse")));
    assert!(stderr(&o).contains("wrong passphrase"), "{}", stderr(&o));
    let o = fails(verify(None));
    assert!(
        stderr(&o).contains("GITCA_IDENTITY_PASSPHRASE"),
        "{}",
        stderr(&o)
    );
    let bin = assert_cmd::cargo::cargo_bin("gitca");
    let o = tty(
        &format!(
            "{} -C {} ca verify --identity breakglass.age",
            bin.display(),
            ca.root.display()
        ),
        "correct horse\\n",
    );
    assert!(stdout(&o).contains("CA key unlocked"), "{}", stdout(&o));
}
