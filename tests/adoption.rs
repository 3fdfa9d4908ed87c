//! Issue 20, "adopting an `openssl ca` CA, and the first week after, without surprises": a CA
//! built by the real `openssl ca` exactly as the reference article builds it (RSA-4096 key
//! encrypted with aes256, index.txt, serial from 1000, `[usr_cert] nsCertType = client`, the
//! people's keys in private/ beside the CA key, their CSRs as csr/NAME.csr.pem), signed minutes
//! before the import, then driven through its first month with `--now`. And issue 26 (item 5):
//! the old CA's directory is hostile input like any other.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The article's openssl-ca.cnf, with what the reporter's CA had besides: the subject policy
/// that lets C, ST and emailAddress through, and emailProtection next to clientAuth.
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
countryName = optional
stateOrProvinceName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
emailAddress = optional
[ req ]
distinguished_name = req_dn
[ req_dn ]
[ usr_cert ]
basicConstraints = CA:FALSE
nsCertType = client
nsComment = "Docker Registry CA"
extendedKeyUsage = clientAuth, emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = cRLSign, keyCertSign
subjectKeyIdentifier = hash
"#;

const PEOPLE: [(&str, &str); 3] = [
    ("sebdangerfield", "sebdangerfield"),
    ("Olga Ray", "olga-ray"),
    ("pete.smith", "pete.smith"),
];

fn openssl_in(dir: &Path, args: &[&str]) -> std::process::Output {
    ok(tool("openssl", args, dir))
}

/// Signs a CSR with the old CA, as the article does (`openssl ca … -extensions usr_cert`).
fn sign(dir: &Path, csr: &str, out: &str, extensions: &str) {
    openssl_in(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "openssl-ca.cnf",
            "-keyfile",
            "private/docker_ca.key",
            "-cert",
            "certs/docker_ca.crt",
            "-passin",
            "pass:secret",
            "-extensions",
            extensions,
            "-notext",
            "-md",
            "sha256",
            "-in",
            csr,
            "-out",
            out,
            "-days",
            "366",
        ],
    );
}

/// A key in private/ and its CSR in csr/, subject as the reporter's people had it.
fn person(dir: &Path, cn: &str, file: &str) {
    openssl_in(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("private/{file}.key"),
            "-out",
            &format!("csr/{file}.csr.pem"),
            "-subj",
            &format!("/C=GB/ST=London/O=Example Ltd/CN={cn}/emailAddress={file}@example.com"),
        ],
    );
}

/// The article's CA, now: sebdangerfield, Olga Ray and pete.smith certified; pete.smith's first
/// key compromised (revoked, keyCompromise) and certified anew; a CRL published.
fn article_ca(dir: &Path) {
    for d in ["certs", "crl", "newcerts", "private", "csr"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    std::fs::write(dir.join("crlnumber"), "1000\n").unwrap();
    std::fs::write(dir.join("openssl-ca.cnf"), OPENSSL_CNF).unwrap();
    openssl_in(
        dir,
        &[
            "genrsa",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "private/docker_ca.key",
            "4096",
        ],
    );
    openssl_in(
        dir,
        &[
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
            "/C=GB/ST=London/O=Example Ltd/CN=Docker Registry CA",
            "-out",
            "certs/docker_ca.crt",
        ],
    );
    for (cn, file) in PEOPLE {
        person(dir, cn, file);
        sign(
            dir,
            &format!("csr/{file}.csr.pem"),
            &format!("certs/{file}.crt"),
            "usr_cert",
        );
    }
    openssl_in(
        dir,
        &[
            "ca",
            "-config",
            "openssl-ca.cnf",
            "-passin",
            "pass:secret",
            "-revoke",
            "certs/pete.smith.crt",
            "-crl_reason",
            "keyCompromise",
        ],
    );
    std::fs::rename(
        dir.join("certs/pete.smith.crt"),
        dir.join("certs/pete.smith-compromised.crt"),
    )
    .unwrap();
    std::fs::remove_file(dir.join("private/pete.smith.key")).unwrap();
    person(dir, "pete.smith", "pete.smith");
    sign(
        dir,
        "csr/pete.smith.csr.pem",
        "certs/pete.smith.crt",
        "usr_cert",
    );
    openssl_in(
        dir,
        &[
            "ca",
            "-gencrl",
            "-config",
            "openssl-ca.cnf",
            "-passin",
            "pass:secret",
            "-out",
            "crl/crl.pem",
        ],
    );
}

/// The wall clock plus `minutes`: `openssl ca` signs with the real clock, and the import comes
/// minutes after.
fn minutes_from_now(minutes: i64) -> String {
    rfc3339(time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes))
}

fn later(t: &str, minutes: i64) -> String {
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
    (t + time::Duration::minutes(minutes))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn import(old: &Path, new: &Path, recipient: &str, now: &str) -> std::process::Output {
    run(gitca()
        .arg("import-openssl")
        .arg(old)
        .arg("-C")
        .arg(new)
        .args(["--recipient", recipient, "--now", now])
        .env("GITCA_IMPORT_PASSPHRASE", "secret"))
}

/// An article CA under a temporary directory, imported into `ca` at `now`.
fn adopted(now: &str) -> (Ca, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old-ca");
    article_ca(&old);
    let (identity, recipient) = age_identity(tmp.path(), "custodian");
    let root = tmp.path().join("ca");
    let o = ok(import(&old, &root, &recipient, now));
    let said = stdout(&o);
    (Ca::imported(tmp, root, identity, recipient), old, said)
}

/// Item 1, 2, 3 and 7 on the reporter's path: nothing reissued on every run, the old
/// certificate superseded after the grace period like any other, the new one taken by bundle,
/// publish and deploy cert; CSRs and the CA key found by their public keys; the plan warns of
/// what the reissue drops.
#[test]
fn an_article_ca_adopted_minutes_after_its_last_signature_lives_through_its_first_month() {
    let start = minutes_from_now(5);
    let (ca, old, said) = adopted(&start);
    // The CA key picked among the people's keys in private/, the CSRs found as csr/NAME.csr.pem.
    assert!(said.contains("private/docker_ca.key"), "{said}");
    assert!(said.contains("3 still valid"), "{said}");
    assert!(said.contains("(3 with a CSR)"), "{said}");
    assert!(
        said.contains("csr/olga-ray.csr.pem → csr/olga-ray.csr"),
        "{said}"
    );
    assert!(
        said.contains("C, ST, emailAddress, nsCertType"),
        "the import says what renewals drop: {said}"
    );
    let o = ok(run(ca.cmd(&start).arg("check")));
    assert!(
        stdout(&o).contains("check passed: 0 error(s), 0 warning(s)"),
        "{}",
        stdout(&o)
    );
    let o = run(ca.cmd(&start).args(["plan", "--detailed-exitcode"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // The same CA: openssl's certificates verify against gitca's CRL, pete.smith's
    // compromised one does not.
    for (_, file) in PEOPLE {
        ok(ca.verify_crl(&old.join(format!("certs/{file}.crt")), &start));
    }
    let o = ca.verify_crl(&old.join("certs/pete.smith-compromised.crt"), &start);
    let said = stdout(&o) + &stderr(&o);
    assert!(
        !o.status.success() && said.contains("certificate revoked"),
        "{said}"
    );
    let imported_olga = serial_of(&old.join("certs/olga-ray.crt"));

    // Olga's laptop installs her imported certificate from the published tree.
    let public = ca.tmp.path().join("public");
    let pinned = ca.keep("ca/ca.crt", "pinned.crt");
    let installed = ca.tmp.path().join("olga-certs");
    let olga_key = old.join("private/olga-ray.key");
    let deploy = |now: &str| {
        ok(run(ca.cmd(now).arg("publish").arg(&public)));
        ok(run(gitca()
            .args(["--now", now, "deploy", "cert", "olga-ray", "--key"])
            .arg(&olga_key)
            .arg("--from")
            .arg(&public)
            .arg("--ca")
            .arg(&pinned)
            .arg("--out-dir")
            .arg(&installed)));
        serial_of(&installed.join("client.cert"))
    };
    assert_eq!(deploy(&start), imported_olga);

    // Half an hour later Olga joins the push group: her certificate is reissued, once, and the
    // plan warns of what the new certificate no longer carries.
    let t30 = later(&start, 30);
    let y = ca.read("identities/imported.yaml").replace(
        "    csr: csr/olga-ray.csr\n",
        "    csr: csr/olga-ray.csr\n    groups: [push]\n",
    );
    ca.write("identities/imported.yaml", &y);
    ca.commit("olga may push");
    let o = run(ca.cmd(&t30).args(["plan", "--detailed-exitcode"]));
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let human = stdout(&o);
    assert!(human.contains("1 to reissue"), "{human}");
    for warning in [
        "⚠ olga-ray: subject changes from emailAddress=olga-ray@example.com,CN=Olga Ray,O=Example Ltd,ST=London,C=GB to CN=Olga Ray,OU=push,O=Example Ltd",
        "⚠ olga-ray: drops nsCertType (client)",
        "⚠ olga-ray: drops extended key usage email_protection",
    ] {
        assert!(human.contains(warning), "{warning}\n{human}");
    }
    let md = stdout(&ok(run(ca.cmd(&t30).args(["plan", "--markdown"]))));
    assert!(
        md.contains("**⚠ Warnings**") && md.contains("drops nsCertType (client)"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&ok(run(ca.cmd(&t30).args(["plan", "--json"]))))).unwrap();
    let notes = json["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 3, "{json}");
    assert!(notes
        .iter()
        .all(|n| n["identity"] == "olga-ray" && n["level"] == "warning"));
    let o = ok(ca.reconcile(&t30));
    assert!(
        stdout(&o).contains("Signed 1 certificate(s)"),
        "{}",
        stdout(&o)
    );
    let rows = ca.ledger_rows();
    let olga: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "olga-ray").collect();
    assert_eq!(olga.len(), 2, "{rows:?}");
    assert_eq!(olga[0][0], imported_olga, "the imported row first");
    let reissued = olga[1][0].clone();
    assert_eq!(serial_of(&ca.path("certs/olga-ray.crt")), reissued);

    // Ten minutes, then two hours later: nothing to do, and everything reads the new one.
    for t in [later(&start, 40), later(&start, 150)] {
        let o = run(ca.cmd(&t).args(["plan", "--detailed-exitcode"]));
        assert_eq!(o.status.code(), Some(0), "at {t}: {}", stdout(&o));
        ok(run(ca.cmd(&t).arg("check")));
        let head = ca.head();
        let o = ok(ca.reconcile(&t));
        assert!(stdout(&o).contains("Nothing to do"), "{}", stdout(&o));
        assert_eq!(ca.head(), head, "no commit");
    }
    let t40 = later(&start, 40);
    let bundle = ca.tmp.path().join("bundle");
    ok(run(ca
        .cmd(&t40)
        .args(["bundle", "olga-ray", "--key"])
        .arg(&olga_key)
        .arg("--out-dir")
        .arg(&bundle)));
    assert_eq!(serial_of(&bundle.join("client.cert")), reissued);
    ok(ca.verify_crl(&bundle.join("client.cert"), &t40));
    // Published, and installed by deploy cert over the imported one (it starts later).
    assert_eq!(deploy(&t40), reissued);
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(public.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["certs"]["olga-ray"]["serial"], reissued.as_str());
    assert_eq!(index["certs"].as_object().unwrap().len(), 3, "{index}");

    // After the seven days of grace the imported certificate is revoked as superseded.
    let week = later(&start, 7 * 24 * 60 + 150);
    let o = ok(ca.reconcile(&week));
    assert!(stdout(&o).contains("superseded"), "{}", stdout(&o));
    let o = ca.verify_crl(&old.join("certs/olga-ray.crt"), &week);
    let said = stdout(&o) + &stderr(&o);
    assert!(
        !o.status.success() && said.contains("certificate revoked"),
        "{said}"
    );
    let text = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-noout",
        "-text",
    ])));
    assert!(text.contains("Superseded"), "{text}");
    // A month on: the daily reconciles keep it quiet and sound.
    for day in 8..=31 {
        let t = later(&start, day * 24 * 60);
        ok(ca.reconcile(&t));
    }
    let month = later(&start, 31 * 24 * 60);
    ok(run(ca.cmd(&month).arg("check")));
    ok(ca.verify_crl(&ca.path("certs/olga-ray.crt"), &month));
    for file in ["sebdangerfield", "pete.smith"] {
        ok(ca.verify_crl(&old.join(format!("certs/{file}.crt")), &month));
    }
    let rows = ca.ledger_rows();
    assert_eq!(rows.len(), 5, "one reissue in a month: {rows:?}");
}

/// Item 2: CSRs are found by the key they carry, wherever the old CA kept them; an identity
/// imported without one is a warning until its renewal is due, then blocked with the command
/// that fixes it, and that command works.
#[test]
fn csrs_are_found_by_key_and_a_missing_one_warns_until_the_renewal_needs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old-ca");
    article_ca(&old);
    // Olga's CSR kept under another name elsewhere in the tree; sebdangerfield's lost.
    std::fs::create_dir_all(old.join("requests/2025")).unwrap();
    std::fs::rename(
        old.join("csr/olga-ray.csr.pem"),
        old.join("requests/2025/olga"),
    )
    .unwrap();
    std::fs::remove_file(old.join("csr/sebdangerfield.csr.pem")).unwrap();
    // A CSR of someone else's key, and things that are not CSRs, are passed over.
    std::fs::write(
        old.join("csr/notes.txt"),
        "-----BEGIN CERTIFICATE REQUEST-----\nnope\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", old.join("csr/zero.csr")).unwrap();
    let (identity, recipient) = age_identity(tmp.path(), "custodian");
    let root = tmp.path().join("ca");
    let start = minutes_from_now(5);
    let o = ok(import(&old, &root, &recipient, &start));
    let said = stdout(&o);
    assert!(said.contains("(2 with a CSR)"), "{said}");
    assert!(
        said.contains("requests/2025/olga → csr/olga-ray.csr"),
        "{said}"
    );
    assert!(said.contains("without a CSR: sebdangerfield"), "{said}");
    let ca = Ca::imported(tmp, root, identity, recipient);
    ok(ca.openssl(&["req", "-in", "csr/olga-ray.csr", "-noout", "-verify"]));
    // Not yet due: check passes, warning with the command.
    let o = ok(run(ca.cmd(&start).arg("check")));
    let text = stdout(&o);
    assert!(text.contains("1 warning(s)"), "{text}");
    assert!(
        text.contains("`sebdangerfield` has no CSR")
            && text.contains("`gitca request sebdangerfield --rotate`"),
        "{text}"
    );
    // Due (25 days left): blocked, the exact command in the fix, exit 1.
    let due = days_after(&start, 341);
    let o = fails(run(ca.cmd(&due).arg("plan")));
    let text = stdout(&o) + &stderr(&o);
    assert!(
        text.contains("sebdangerfield") && text.contains("csr-missing"),
        "{text}"
    );
    let cmds = suggested(&text, "gitca request sebdangerfield");
    assert_eq!(cmds, ["gitca request sebdangerfield --rotate"], "{text}");
    ca.sh(&format!(
        "{} --key-out {}",
        cmds[0],
        ca.keys.join("seb2.key").display()
    ));
    ca.commit("sebdangerfield's new key");
    let o = ok(ca.reconcile(&due));
    assert!(
        stdout(&o).contains("Signed 3 certificate(s)"),
        "{}",
        stdout(&o)
    );
    ok(run(ca.cmd(&due).arg("check")));
    ok(ca.verify_crl(&ca.path("certs/sebdangerfield.crt"), &due));
}

/// Item 3: the CA key is the key in private/ whose public key is the CA certificate's, among
/// the people's keys the recipe keeps there; when none is, every candidate is listed.
#[test]
fn the_ca_key_is_picked_by_its_public_key_and_the_candidates_are_listed_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old-ca");
    article_ca(&old);
    let (_, recipient) = age_identity(tmp.path(), "custodian");
    let now = minutes_from_now(5);
    // The CA key moved away: nothing in private/ is it.
    let away = tmp.path().join("docker_ca.key");
    std::fs::rename(old.join("private/docker_ca.key"), &away).unwrap();
    let new = tmp.path().join("ca");
    let o = fails(import(&old, &new, &recipient, &now));
    let text = stderr(&o);
    assert!(
        text.contains("no key in private/ is the CA certificate's")
            && text.contains("private/olga-ray.key (another certificate's key)")
            && text.contains("--ca-key FILE"),
        "{text}"
    );
    assert!(!new.exists(), "nothing written");
    // A wrong passphrase for the key that is there says so.
    std::fs::rename(&away, old.join("private/docker_ca.key")).unwrap();
    let o = fails(run(gitca()
        .arg("import-openssl")
        .arg(&old)
        .arg("-C")
        .arg(&new)
        .args(["--recipient", &recipient, "--now", &now])
        .env("GITCA_IMPORT_PASSPHRASE", "wrong")));
    assert!(stderr(&o).contains("wrong passphrase"), "{}", stderr(&o));
    assert!(!new.exists());
    let o = ok(import(&old, &new, &recipient, &now));
    assert!(
        stdout(&o).contains("private/docker_ca.key"),
        "{}",
        stdout(&o)
    );
}

/// A fresh copy of a built article CA (the RSA-4096 key takes a while to make).
fn copy_of(built: &Path, to: &Path) -> PathBuf {
    ok(std::process::Command::new("cp")
        .arg("-a")
        .arg(built)
        .arg(to)
        .output()
        .unwrap());
    to.to_path_buf()
}

/// Issue 26, item 5: import-openssl reads the old CA as hostile input. Each case is refused
/// with the file named, exit 1 and nothing written; what is accepted reads back.
#[test]
fn the_old_ca_is_read_as_hostile_input() {
    let tmp = tempfile::tempdir().unwrap();
    let built = tmp.path().join("built");
    article_ca(&built);
    let (_, recipient) = age_identity(tmp.path(), "custodian");
    let now = minutes_from_now(5);
    let mut n = 0;
    let mut case = |what: &str, spoil: &dyn Fn(&Path), wanted: &[&str]| {
        n += 1;
        let old = copy_of(&built, &tmp.path().join(format!("old-{n}")));
        spoil(&old);
        let new = tmp.path().join(format!("new-{n}"));
        let o = fails(import(&old, &new, &recipient, &now));
        let text = stderr(&o);
        for w in wanted {
            assert!(text.contains(w), "{what}: `{w}` not said:\n{text}");
        }
        assert!(!new.exists(), "{what}: nothing written");
    };
    let openssl = |dir: &Path, args: &[&str]| {
        openssl_in(dir, args);
    };
    // A certificate file linked to /dev/zero is refused, not read.
    case(
        "link",
        &|old| {
            let f = old.join("newcerts/1000.pem");
            std::fs::remove_file(&f).unwrap();
            std::os::unix::fs::symlink("/dev/zero", &f).unwrap();
        },
        &["newcerts/1000.pem", "symbolic link"],
    );
    // A certificate file larger than any certificate.
    case(
        "large",
        &|old| std::fs::write(old.join("newcerts/1001.pem"), vec![b'A'; 200 << 10]).unwrap(),
        &["newcerts/1001.pem", "more than"],
    );
    // index.txt with a negative serial as openssl writes one, and a path.
    for serial in ["-1001", "../../x"] {
        case(
            "index serial",
            &|old| {
                let t = std::fs::read_to_string(old.join("index.txt")).unwrap();
                std::fs::write(
                    old.join("index.txt"),
                    t.replacen("\t1001\t", &format!("\t{serial}\t"), 1),
                )
                .unwrap();
            },
            &[
                "index.txt",
                "line 2",
                "is not a positive hexadecimal number",
            ],
        );
    }
    // A certificate whose DER serial is EF FF (−4097): never 61439 on gitca's CRL.
    let signed_with_serial = |old: &Path, serial: &str, file: &str| {
        openssl(
            old,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "odd.key",
                "-out",
                "odd.csr",
                "-subj",
                "/CN=odd",
            ],
        );
        openssl(
            old,
            &[
                "x509",
                "-req",
                "-in",
                "odd.csr",
                "-CA",
                "certs/docker_ca.crt",
                "-CAkey",
                "private/docker_ca.key",
                "-passin",
                "pass:secret",
                "-set_serial",
                serial,
                "-days",
                "30",
                "-extfile",
                "openssl-ca.cnf",
                "-extensions",
                "usr_cert",
                "-out",
                &format!("newcerts/{file}.pem"),
            ],
        );
        let mut t = std::fs::read_to_string(old.join("index.txt")).unwrap();
        t.push_str(&format!("V\t271231000000Z\t\t{file}\tunknown\t/CN=odd\n"));
        std::fs::write(old.join("index.txt"), t).unwrap();
    };
    case(
        "negative DER serial",
        &|old| signed_with_serial(old, "-4097", "EFFF"),
        &["newcerts/EFFF.pem", "negative (DER EFFF)"],
    );
    case(
        "21-octet serial",
        &|old| {
            signed_with_serial(
                old,
                "0x0102030405060708090a0b0c0d0e0f101112131415",
                "0102030405060708090A0B0C0D0E0F101112131415",
            )
        },
        &[
            "0102030405060708090A0B0C0D0E0F101112131415.pem",
            "21 octets",
        ],
    );
    case(
        "duplicate serial",
        &|old| {
            let t = std::fs::read_to_string(old.join("index.txt")).unwrap();
            let first = t.lines().next().unwrap().to_string();
            std::fs::write(old.join("index.txt"), format!("{t}{first}\n")).unwrap();
        },
        &[
            "index.txt",
            "line 5",
            "serial 1000 appears twice (first on line 1)",
        ],
    );
    // A live CA certificate is no identity.
    case(
        "sub-CA",
        &|old| {
            openssl(
                old,
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    "sub.key",
                    "-out",
                    "sub.csr",
                    "-subj",
                    "/CN=Sub CA",
                ],
            );
            sign(old, "sub.csr", "certs/sub.crt", "v3_ca");
        },
        &[
            "newcerts/1004.pem",
            "is a CA certificate",
            "openssl ca -config openssl.cnf -revoke newcerts/1004.pem",
        ],
    );
    // A CN holding DN syntax, refused with the fix (gitca does not rename people silently).
    case(
        "CN",
        &|old| {
            openssl(
                old,
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    "js.key",
                    "-out",
                    "js.csr",
                    "-subj",
                    "/CN=Smith, John",
                ],
            );
            sign(old, "js.csr", "certs/js.crt", "usr_cert");
        },
        &[
            "newcerts/1004.pem",
            "its CN `Smith, John` cannot be a common name",
            "holds `,`",
            "reissue this certificate with openssl",
        ],
    );
    // The crlnumber file must be openssl's hexadecimal number.
    case(
        "crlnumber",
        &|old| std::fs::write(old.join("crlnumber"), "ffffffffffffffffffff\n").unwrap(),
        &["crlnumber", "not the hexadecimal CRL number"],
    );

    // The CA's own O holds a comma: gitca.yaml gets it without (what new certificates carry),
    // and everything imported verifies with openssl.
    let old = copy_of(&built, &tmp.path().join("old-comma"));
    openssl(
        &old,
        &[
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
            "/C=GB/O=Example, Ltd/CN=Docker Registry CA",
            "-out",
            "certs/docker_ca.crt",
        ],
    );
    // The people's certificates, signed anew under it.
    std::fs::write(old.join("index.txt"), "").unwrap();
    for (_, file) in PEOPLE {
        sign(
            &old,
            &format!("csr/{file}.csr.pem"),
            &format!("certs/{file}.crt"),
            "usr_cert",
        );
    }
    let new = tmp.path().join("new-comma");
    let o = ok(import(&old, &new, &recipient, &now));
    assert!(
        stdout(&o).contains("ca.organization `Example Ltd`"),
        "{}",
        stdout(&o)
    );
    let cfg = std::fs::read_to_string(new.join("gitca.yaml")).unwrap();
    assert!(cfg.contains("organization: Example Ltd\n"), "{cfg}");
    ok(run(gitca()
        .arg("-C")
        .arg(&new)
        .args(["--now", &now, "check"])));
    let verify = |cert: &str| {
        tool(
            "openssl",
            &[
                "verify",
                "-attime",
                &epoch(&now),
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
    for (_, file) in PEOPLE {
        ok(verify(&format!("certs/{file}.crt")));
    }
    ok(tool(
        "openssl",
        &["crl", "-in", "crl/ca.crl", "-CAfile", "ca/ca.crt", "-noout"],
        &new,
    ));
}

/// Item 6: on imported.yaml, where `echo "    revoke: key-compromise" >> …` revoked the last
/// entry (someone else), `gitca identity` edits the entry of the person named, keeps every
/// other line, and shows the plan that follows; reinstating after a new key and offboarding
/// work the same way.
#[test]
fn identity_edits_revoke_reinstate_and_offboard_the_right_entry_of_a_shared_file() {
    let start = minutes_from_now(5);
    let (ca, old, _) = adopted(&start);
    let before = ca.read("identities/imported.yaml");
    let t = later(&start, 60);
    let o = ok(run(ca.cmd(&t).args([
        "identity",
        "revoke",
        "olga-ray",
        "--reason",
        "key-compromise",
    ])));
    let said = stdout(&o);
    assert!(said.contains("Plan: 1 to revoke"), "{said}");
    assert!(
        said.contains("olga-ray")
            && said.contains("revoke (key-compromise)")
            && !said.contains("sebdangerfield  user"),
        "{said}"
    );
    let after = ca.read("identities/imported.yaml");
    assert_eq!(
        after,
        before.replace(
            "    csr: csr/olga-ray.csr\n",
            "    csr: csr/olga-ray.csr\n    revoke: key-compromise\n"
        ),
        "one line added, in olga's entry"
    );
    let cmd = said
        .lines()
        .find_map(|l| l.strip_prefix("Next: "))
        .expect("next step")
        .to_string();
    assert_eq!(
        cmd,
        "git add -A identities/imported.yaml && git commit -m 'olga-ray: revoke (key-compromise)'"
    );
    ca.sh(&format!(
        "export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com GIT_COMMITTER_NAME=A GIT_COMMITTER_EMAIL=a@example.com; {cmd}"
    ));
    ok(ca.reconcile(&t));
    let o = ca.verify_crl(&old.join("certs/olga-ray.crt"), &t);
    assert!(!o.status.success(), "olga's certificate is revoked");
    for file in ["sebdangerfield", "pete.smith"] {
        ok(ca.verify_crl(&old.join(format!("certs/{file}.crt")), &t));
    }
    // A new key, then the revocation lifted: olga is certified again; her old key stays barred.
    ok(run(ca
        .cmd(&t)
        .args(["request", "olga-ray", "--rotate", "--key-out"])
        .arg(ca.keys.join("olga-2.key"))));
    let o = ok(run(ca.cmd(&t).args(["identity", "reinstate", "olga-ray"])));
    assert!(stdout(&o).contains("1 to issue"), "{}", stdout(&o));
    assert_eq!(ca.read("identities/imported.yaml"), before);
    ca.commit("olga: new key");
    ok(ca.reconcile(&t));
    ok(ca.verify_crl(&ca.path("certs/olga-ray.crt"), &t));
    // Offboarding pete.smith, the middle entry: his entry and CSR go, nobody else's.
    let o = ok(run(ca.cmd(&t).args(["identity", "offboard", "pete.smith"])));
    let said = stdout(&o);
    assert!(said.contains("csr/pete.smith.csr removed"), "{said}");
    assert!(said.contains("revoke (cessation-of-operation)"), "{said}");
    let yaml = ca.read("identities/imported.yaml");
    assert!(
        !yaml.contains("pete.smith")
            && yaml.contains("name: olga-ray")
            && yaml.contains("name: sebdangerfield"),
        "{yaml}"
    );
    assert!(!ca.path("csr/pete.smith.csr").exists());
    ca.commit("offboard pete");
    ok(ca.reconcile(&t));
    let o = ca.verify_crl(&old.join("certs/pete.smith.crt"), &t);
    assert!(!o.status.success(), "pete's certificate is revoked");
    ok(ca.verify_crl(&old.join("certs/sebdangerfield.crt"), &t));
    // A name nobody declares, and a reason that is none: refused, nothing written.
    let snap = ca.snapshot();
    let o = fails(run(ca.cmd(&t).args(["identity", "offboard", "pete.smith"])));
    assert!(stderr(&o).contains("is not declared"), "{}", stderr(&o));
    let o = fails(run(ca
        .cmd(&t)
        .args(["identity", "revoke", "olga-ray", "--reason", "lost"])));
    assert!(stderr(&o).contains("key-compromise"), "{}", stderr(&o));
    assert_eq!(ca.snapshot(), snap);
}
