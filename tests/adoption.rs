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
    (time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes))
        .replace_nanosecond(0)
        .unwrap()
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
