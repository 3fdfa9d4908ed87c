//! `gitca import-openssl`: adopt a CA built with the classic `openssl ca` recipe (index.txt,
//! serial, crlnumber, certs/, newcerts/, private/) as a gitca repository.
//!
//! The CA certificate and key are kept (so every certificate openssl issued keeps verifying),
//! the key is re-encrypted with age, index.txt becomes the ledger, every openssl revocation stays
//! on the CRL, CRL numbers continue after openssl's, and the still-valid identities are declared
//! so that the next `gitca plan` has nothing to do.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use zeroize::Zeroizing;

use crate::apply::cert_path;
use crate::ca::{self, CaCert, CaKey};
use crate::config::{self, Config};
use crate::custody::{self, Custody};
use crate::error::{Error, Result};
use crate::init::{self, CA_CERT, CRL_FILE};
use crate::inventory::{valid_name, Kind};
use crate::ledger::{self, fmt_time, Ledger, Record, RevocationReason, State};
use crate::yaml;

pub struct ImportOptions {
    /// The openssl CA directory.
    pub source: PathBuf,
    /// The new CA repository.
    pub dir: PathBuf,
    pub ca_cert: Option<PathBuf>,
    pub ca_key: Option<PathBuf>,
    /// The passphrase of the openssl CA key (GITCA_IMPORT_PASSPHRASE or the terminal).
    pub passphrase: Option<Zeroizing<String>>,
    pub custody: Custody,
    pub now: OffsetDateTime,
}

const IMPORTED_FILE: &str = "identities/imported.yaml";

fn bad(path: &Path, reason: impl Into<String>, help: impl Into<String>) -> Error {
    Error::bad_file(path, reason, help)
}

fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| pem::parse_many(t).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect()
}

/// Finds the CA certificate: the one self-signed CA certificate among the usual places.
fn find_ca_cert(src: &Path) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    for dir in [src.to_path_buf(), src.join("certs")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if !p
                .extension()
                .is_some_and(|x| x == "crt" || x == "pem" || x == "cer")
            {
                continue;
            }
            let is_ca = pem_certs(&p).first().is_some_and(|der| {
                x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| {
                    c.subject() == c.issuer()
                        && c.basic_constraints()
                            .ok()
                            .flatten()
                            .is_some_and(|b| b.value.ca)
                })
            });
            if is_ca {
                candidates.push(p);
            }
        }
    }
    candidates.sort();
    match candidates.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(bad(
            src,
            "no self-signed CA certificate found in it or in certs/",
            "pass --ca-cert FILE",
        )),
        many => Err(bad(
            src,
            format!(
                "several CA certificates found: {}",
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "pass --ca-cert FILE",
        )),
    }
}

fn find_ca_key(src: &Path) -> Result<PathBuf> {
    let dir = src.join("private");
    let mut keys: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|_| bad(src, "no private/ directory", "pass --ca-key FILE"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    keys.sort();
    match keys.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(bad(
            &dir,
            "expected exactly one key file in private/",
            "pass --ca-key FILE",
        )),
    }
}

/// Decrypts the openssl CA key: PKCS#8 `ENCRYPTED PRIVATE KEY` (what OpenSSL 3 writes).
fn decrypt_key(path: &Path, passphrase: Option<&Zeroizing<String>>) -> Result<CaKey> {
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(Error::io("read the CA key", path))?);
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(bad(
            path,
            "the key is in the legacy OpenSSL encrypted format (Proc-Type: 4,ENCRYPTED)",
            format!(
                "convert it to PKCS#8 first (nothing leaves your machine): openssl pkcs8 -topk8 -v2 aes-256-cbc -in {0} -out {0}.p8 — then pass --ca-key {0}.p8",
                path.display()
            ),
        ));
    }
    let block = pem::parse(text.as_bytes())
        .map_err(|_| bad(path, "not a PEM private key", "pass --ca-key FILE"))?;
    let der = Zeroizing::new(block.contents().to_vec());
    let plain: Zeroizing<Vec<u8>> = if block.tag() == "ENCRYPTED PRIVATE KEY" {
        let pass = passphrase.ok_or(Error::NoPassphrase)?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| {
            bad(
                path,
                format!("unreadable encrypted key: {e}"),
                "pass the key openssl genrsa/genpkey wrote",
            )
        })?;
        let doc = info.decrypt(pass.as_bytes()).map_err(|_| Error::Unlock {
            reason: "wrong passphrase for the openssl CA key".into(),
            help: "set GITCA_IMPORT_PASSPHRASE to the passphrase of the openssl CA key".into(),
        })?;
        Zeroizing::new(doc.as_bytes().to_vec())
    } else {
        der
    };
    let pair = rcgen::KeyPair::try_from(plain.as_slice()).map_err(|e| {
        bad(
            path,
            format!("the key cannot be loaded: {e}"),
            "gitca supports RSA and ECDSA P-256/P-384 CA keys",
        )
    })?;
    Ok(CaKey::new(pair))
}

/// One row of index.txt.
struct IndexRow {
    status: char,
    serial: String,
    revoked: Option<(OffsetDateTime, RevocationReason)>,
    line: usize,
}

fn parse_openssl_time(s: &str) -> Option<OffsetDateTime> {
    // YYMMDDHHMMSSZ (UTCTime) or YYYYMMDDHHMMSSZ.
    let digits = s.strip_suffix('Z')?;
    let (year, rest) = match digits.len() {
        12 => {
            let yy: i32 = digits[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        14 => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let n = |i: usize| rest[i..i + 2].parse::<u8>().ok();
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(n(0)?).ok()?, n(2)?).ok()?;
    let t = time::Time::from_hms(n(4)?, n(6)?, n(8)?).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

fn parse_index(path: &Path) -> Result<Vec<IndexRow>> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let fail = |why: &str| {
            bad(
                path,
                format!("line {}: {why}", i + 1),
                "index.txt must be the database `openssl ca` writes",
            )
        };
        if f.len() < 6 {
            return Err(fail("expected 6 tab-separated fields"));
        }
        let status = f[0].chars().next().ok_or_else(|| fail("empty status"))?;
        let revoked = match status {
            'V' | 'E' => None,
            'R' => {
                let (date, reason) = f[2].split_once(',').unwrap_or((f[2], "unspecified"));
                let at = parse_openssl_time(date).ok_or_else(|| fail("bad revocation date"))?;
                let reason = match reason {
                    "keyCompromise" | "CAkeyCompromise" => RevocationReason::KeyCompromise,
                    "affiliationChanged" => RevocationReason::AffiliationChanged,
                    "superseded" => RevocationReason::Superseded,
                    "cessationOfOperation" => RevocationReason::CessationOfOperation,
                    "privilegeWithdrawn" => RevocationReason::PrivilegeWithdrawn,
                    // certificateHold is not permanent in openssl; gitca's revocations are.
                    _ => RevocationReason::Unspecified,
                };
                Some((at, reason))
            }
            _ => return Err(fail("status is not V, R or E")),
        };
        rows.push(IndexRow {
            status,
            serial: f[3].to_ascii_lowercase(),
            revoked,
            line: i + 1,
        });
    }
    Ok(rows)
}

/// A gitca name for an openssl CN: lowercase, other characters become `-`.
fn name_for(cn: &str) -> String {
    let mut s: String = cn
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("..") {
        s = s.replace("..", ".");
    }
    s.trim_start_matches(['.', '_', '-'])
        .chars()
        .take(64)
        .collect()
}

struct Attrs {
    cn: String,
    email: Option<String>,
    groups: Vec<String>,
}

fn attributes(c: &X509Certificate<'_>) -> Attrs {
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or("")
        .to_string();
    let mut email = c
        .subject()
        .iter_email()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_string);
    for e in c.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = e.parsed_extension() {
            for n in &san.general_names {
                if let GeneralName::RFC822Name(m) = n {
                    email = Some(m.to_string());
                }
            }
        }
    }
    let groups = c
        .subject()
        .iter_organizational_unit()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    Attrs { cn, email, groups }
}

/// The top-level entry point for `gitca import-openssl`.
pub fn run_import(opts: ImportOptions, out: &mut dyn Write) -> Result<()> {
    let src = &opts.source;
    if !src.join("index.txt").is_file() {
        return Err(bad(
            src,
            "no index.txt: not an `openssl ca` directory",
            "pass the directory that holds index.txt, serial, certs/, newcerts/ and private/",
        ));
    }
    init::check_target(&opts.dir)?;
    let ca_path = match &opts.ca_cert {
        Some(p) => p.clone(),
        None => find_ca_cert(src)?,
    };
    let ca_der = pem_certs(&ca_path)
        .into_iter()
        .next()
        .ok_or_else(|| bad(&ca_path, "no certificate", "pass --ca-cert FILE"))?;
    let ca_pem_clean = ca::to_pem("CERTIFICATE", &ca_der);
    let ca_cert = CaCert::parse(&ca_pem_clean).map_err(|_| {
        bad(
            &ca_path,
            "the CA certificate has no subject key identifier or cannot be parsed",
            "gitca needs an X.509 v3 CA certificate with a subject key identifier",
        )
    })?;
    let key_path = match &opts.ca_key {
        Some(p) => p.clone(),
        None => find_ca_key(src)?,
    };
    let key = decrypt_key(&key_path, opts.passphrase.as_ref())?;
    ca::check_key_matches(&ca_cert, &key).map_err(|_| {
        bad(
            &key_path,
            "this key is not the CA certificate's",
            "pass the matching --ca-key",
        )
    })?;

    let (_, ca_x509) = x509_parser::parse_x509_certificate(&ca_der)
        .map_err(|e| bad(&ca_path, e.to_string(), ""))?;
    let ca_name = ca_x509
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or("Imported CA")
        .to_string();
    let organization = ca_x509
        .subject()
        .iter_organization()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or(&ca_name)
        .to_string();
    let config_text = Config::template(&ca_name, &organization);
    let config = Config::parse(&config_text)?;

    // The ledger, from index.txt and the certificates in newcerts/.
    let rows = parse_index(&src.join("index.txt"))?;
    let mut ledger = Ledger::default();
    let mut ders: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut cn_of: BTreeMap<String, String> = BTreeMap::new();
    let mut attrs_of: BTreeMap<String, (Option<String>, Vec<String>)> = BTreeMap::new();
    for row in &rows {
        let file = src
            .join("newcerts")
            .join(format!("{}.pem", row.serial.to_ascii_uppercase()));
        let der = pem_certs(&file).into_iter().next().ok_or_else(|| {
            bad(
                &src.join("index.txt"),
                format!(
                    "line {}: serial {} has no newcerts/{}.pem",
                    row.line,
                    row.serial.to_ascii_uppercase(),
                    row.serial.to_ascii_uppercase()
                ),
                "restore newcerts/ from the openssl CA",
            )
        })?;
        let (_, c) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| bad(&file, e.to_string(), ""))?;
        if c.verify_signature(Some(ca_x509.public_key())).is_err() {
            return Err(bad(
                &file,
                "not signed by the CA certificate",
                "pass the right --ca-cert",
            ));
        }
        let a = attributes(&c);
        let name = name_for(&a.cn);
        if !valid_name(&name) {
            return Err(bad(
                &file,
                format!("CN `{}` cannot become a gitca name", a.cn),
                "gitca names match [a-z0-9][a-z0-9._-]*",
            ));
        }
        if let Some(other) = cn_of
            .insert(name.clone(), a.cn.clone())
            .filter(|o| *o != a.cn)
        {
            return Err(bad(
                &file,
                format!("CNs `{other}` and `{}` both become `{name}`", a.cn),
                "rename one of them in the openssl CA first",
            ));
        }
        let serial = ca::serial_hex(c.raw_serial());
        let not_after = c.validity().not_after.to_datetime();
        if row.status != 'R' && not_after > opts.now {
            attrs_of.insert(name.clone(), (a.email.clone(), a.groups.clone()));
        }
        ledger.records.push(Record {
            serial: serial.clone(),
            identity: name,
            kind: Kind::User,
            profile: "user".into(),
            state: if row.revoked.is_some() {
                State::Revoked
            } else {
                State::Issued
            },
            not_before: c.validity().not_before.to_datetime(),
            not_after,
            revoked_at: row.revoked.map(|r| r.0),
            reason: row.revoked.map(|r| r.1),
            // The key's identity as reconcile computes it, so ownership and bars carry over.
            key_sha256: crate::pubkey::canonical(c.public_key().raw)
                .map(|k| k.id)
                .unwrap_or_else(|_| ca::key_fingerprint(c.public_key().raw)),
            csr_sha256: "-".into(),
            email: a.email,
            groups: a.groups,
            issuer: None,
        });
        ders.insert(serial, der);
    }
    ledger.sort();

    // CSRs kept next to the certificates (the recipe leaves certs/NAME.csr) are carried over,
    // matched by public key, so reconcile can renew with them.
    let mut csrs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for dir in [src.join("certs"), src.join("csr"), src.to_path_buf()] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "csr") {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let Ok(v) = crate::policy::verify_csr(&bytes) else {
                continue;
            };
            if let Some(rec) = ledger.records.iter().rev().find(|r| {
                r.key_sha256 == v.key_sha256 && r.state == State::Issued && r.not_after > opts.now
            }) {
                csrs.entry(rec.identity.clone()).or_insert(bytes);
            }
        }
    }
    for r in ledger.records.iter_mut() {
        if let Some(bytes) = csrs.get(&r.identity) {
            if crate::policy::verify_csr(bytes).is_ok_and(|v| v.key_sha256 == r.key_sha256) {
                r.csr_sha256 = hex::encode(Sha256::digest(bytes));
            }
        }
    }

    // The CRL continues openssl's numbering and keeps every unexpired revocation.
    let next_number = std::fs::read_to_string(src.join("crlnumber"))
        .ok()
        .and_then(|t| u64::from_str_radix(t.trim(), 16).ok())
        .unwrap_or(1)
        .max(1);
    let entries = ca::crl_entries(&ledger, opts.now, None)?;
    let crl = ca::sign_crl(
        &ca_cert,
        &key,
        next_number,
        opts.now,
        opts.now + config.crl.validity.0,
        &entries,
    )?;
    let ledger_text = ledger.render();
    let seal = crate::seal::Seal::sign(
        &ca_cert,
        &key,
        1,
        (ledger_text.as_bytes(), crl.as_bytes(), next_number),
        None,
    )?;
    let encrypted = custody::encrypt(key.to_pem().as_bytes(), &opts.custody)?;
    drop(key);

    // The still-valid identities, declared as they are certified.
    let mut yaml_text = String::from(
        "# yaml-language-server: $schema=../schema/identities.schema.json\n# Imported from an `openssl ca` directory by `gitca import-openssl`: the identities whose\n# certificates were still valid. Edit like any other identities file.\nusers:\n",
    );
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut declared = 0;
    for (name, (email, groups)) in &attrs_of {
        declared += 1;
        yaml_text.push_str(&format!("  - name: {name}\n"));
        // A CN that is not a valid name (`John Smith`) is kept as the certificate's CN, so
        // renewals from the CSR on file (which names it) keep working.
        if let Some(cn) = cn_of.get(name).filter(|cn| *cn != name) {
            yaml_text.push_str(&format!("    common_name: {}\n", yaml::quote(cn)));
        }
        if let Some(e) = email {
            yaml_text.push_str(&format!("    email: {}\n", yaml::quote(e)));
        }
        yaml_text.push_str(&format!("    csr: csr/{name}.csr\n"));
        if !groups.is_empty() {
            let gs: Vec<String> = groups.iter().map(|g| yaml::quote(g)).collect();
            yaml_text.push_str(&format!("    groups: [{}]\n", gs.join(", ")));
        }
        let current = ledger
            .of(name)
            .filter(|r| r.is_live(opts.now))
            .last()
            .expect("declared identities hold a live certificate");
        let mut pem_text = ca::to_pem("CERTIFICATE", &ders[&current.serial]);
        pem_text.push_str(&ca_pem_clean);
        files.push((cert_path(name), pem_text.into_bytes()));
        if let Some(bytes) = csrs.get(name) {
            files.push((format!("csr/{name}.csr"), bytes.clone()));
        }
    }
    if declared == 0 {
        yaml_text = yaml_text.replace("users:\n", "users: []\n");
    }
    files.extend([
        (config::FILE.to_string(), config_text.into_bytes()),
        (IMPORTED_FILE.to_string(), yaml_text.into_bytes()),
        (CA_CERT.to_string(), ca_pem_clean.into_bytes()),
        (custody::KEY_FILE.to_string(), encrypted.into_bytes()),
        (
            custody::RECIPIENTS_FILE.to_string(),
            custody::recipients_txt(&opts.custody).into_bytes(),
        ),
        (CRL_FILE.to_string(), crl.into_bytes()),
        (ledger::FILE.to_string(), ledger_text.into_bytes()),
        (crate::seal::FILE.to_string(), seal.render().into_bytes()),
    ]);
    files.extend(init::common_files().map(|(p, t)| (p.to_string(), t.into_bytes())));

    let oid = init::write_new_repo(
        &opts.dir,
        &files,
        &format!("gitca: import the openssl CA {ca_name}"),
    )?;
    let revoked = ledger
        .records
        .iter()
        .filter(|r| r.state == State::Revoked)
        .count();
    let _ = writeln!(
        out,
        "Imported `{ca_name}` from {} into {}",
        src.display(),
        opts.dir.display()
    );
    let _ = writeln!(
        out,
        "  ledger       {} certificate(s), {revoked} revoked",
        ledger.records.len()
    );
    let _ = writeln!(
        out,
        "  identities   {declared} still valid, declared in {IMPORTED_FILE} ({} with a CSR)",
        csrs.len()
    );
    let _ = writeln!(
        out,
        "  CRL          number {next_number} (continuing openssl's), {} entries, next update {}",
        entries.len(),
        fmt_time(opts.now + config.crl.validity.0)
    );
    let _ = writeln!(
        out,
        "  CA key       re-encrypted with age into {}",
        custody::KEY_FILE
    );
    let _ = writeln!(out, "  commit       {}", &oid.to_string()[..12]);
    let _ = writeln!(out, "Keep the openssl directory's private/ offline or destroy it: the age-encrypted copy is now the CA key.");
    Ok(())
}
