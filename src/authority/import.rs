//! `gitca import-openssl`: adopt a CA built with the classic `openssl ca` recipe (index.txt,
//! serial, crlnumber, certs/, newcerts/, private/) as a gitca repository.
//!
//! The CA certificate and key are kept (so every certificate openssl issued keeps verifying),
//! the key is re-encrypted with age, index.txt becomes the ledger, every openssl revocation stays
//! on the CRL, CRL numbers continue after openssl's, and the still-valid identities are declared
//! so that the next `gitca plan` has nothing to do.
//!
//! The old CA's directory is read as hostile input, as every other tree gitca reads: below it,
//! files are opened without following links and size-checked on the open file (a certificate
//! linked to /dev/zero is refused, not read), index.txt's serials must be the positive integers
//! of at most 20 octets their certificates carry, once each, and a value that would enter a
//! subject, the ledger or gitca.yaml passes the same grammar as a pull request's
//! ([`crate::authority::subject`]). What gitca would later refuse is refused here, naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use zeroize::Zeroizing;

use crate::authority::ca::{self, CaCert, CaKey};
use crate::authority::custody::{self, Custody};
use crate::authority::init;
use crate::authority::revocation::RevocationReason;
use crate::error::{Error, Result};
use crate::layout::{
    cert_path, CA_CERT, CONFIG_FILE, CRL_FILE, KEY_FILE, LEDGER_FILE, RECIPIENTS_FILE, SEAL_FILE,
};
use crate::repository::config::{valid_group, Config};
use crate::repository::confined::{Dir, Kind as EntryKind};
use crate::repository::inventory::{valid_name, Kind};
use crate::repository::ledger::{self, Ledger, Record, State};
use crate::repository::yaml;
use crate::time::fmt_time;

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
/// Largest private key or CSR file read from the old CA.
const MAX_SMALL_BYTES: u64 = 64 << 10;
/// The CSR search: how deep and how many directory entries, whatever the old tree holds.
const MAX_SCAN_DEPTH: usize = 6;
const MAX_SCAN_ENTRIES: usize = 20_000;
/// The subject attributes gitca issues (RFC 4514 short names); others are dropped at renewal.
const ISSUED_ATTRIBUTES: [&str; 3] = ["O", "OU", "CN"];

/// The old CA's directory, every file in it read confined (no link followed, size-checked).
struct Source {
    dir: Dir,
    path: PathBuf,
}

impl Source {
    fn shown(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    fn bad(&self, rel: &str, reason: impl Into<String>, help: impl Into<String>) -> Error {
        Error::bad_file(self.shown(rel), reason, help)
    }

    /// Reads `rel` below the old CA: a regular file of at most `limit` bytes, never through a
    /// link; `None` when absent.
    fn read_opt(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        self.dir.read_opt(rel, limit).map_err(|e| match e {
            Error::SymlinkRefused { .. } => self.bad(
                rel,
                "is a symbolic link: gitca reads the old CA's files only as regular files inside it",
                format!(
                    "replace the link with the file itself (cp --remove-destination \"$(readlink -f {0})\" {0}) and import again",
                    self.shown(rel).display()
                ),
            ),
            Error::FileTooLarge { len, limit, .. } => Error::FileTooLarge {
                path: self.shown(rel),
                len,
                limit,
            },
            Error::BadFile { reason, help, .. } => Error::BadFile {
                path: self.shown(rel),
                reason,
                help,
            },
            other => other,
        })
    }

    fn read(&self, rel: &str, limit: u64) -> Result<Vec<u8>> {
        self.read_opt(rel, limit)?.ok_or_else(|| Error::Io {
            action: "read",
            path: self.shown(rel),
            source: std::io::ErrorKind::NotFound.into(),
        })
    }

    /// The regular files of the directory `rel`, with what was passed over and why.
    fn files(&self, rel: &str) -> (Vec<String>, Vec<String>) {
        let mut files = Vec::new();
        let mut skipped = Vec::new();
        for (name, kind) in self.dir.list(rel).unwrap_or_default() {
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            match kind {
                EntryKind::File => files.push(path),
                EntryKind::Symlink => skipped.push(format!("{path} (a symbolic link)")),
                EntryKind::Other => skipped.push(format!("{path} (not a regular file)")),
                EntryKind::Dir => {}
            }
        }
        (files, skipped)
    }
}

fn pem_certs(bytes: &[u8]) -> Vec<Vec<u8>> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| pem::parse_many(t).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect()
}

fn is_self_signed_ca(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| {
        c.subject() == c.issuer()
            && c.basic_constraints()
                .ok()
                .flatten()
                .is_some_and(|b| b.value.ca)
    })
}

/// Finds the CA certificate: the one self-signed CA certificate among the usual places.
fn find_ca_cert(src: &Source) -> Result<(PathBuf, Vec<u8>)> {
    let mut candidates = Vec::new();
    let mut skipped = Vec::new();
    for dir in ["", "certs"] {
        let (files, passed) = src.files(dir);
        skipped.extend(passed.into_iter().filter(|p| {
            p.ends_with(".crt (a symbolic link)") || p.ends_with(".pem (a symbolic link)")
        }));
        for rel in files {
            if !(rel.ends_with(".crt") || rel.ends_with(".pem") || rel.ends_with(".cer")) {
                continue;
            }
            let Ok(Some(bytes)) = src.read_opt(&rel, ca::MAX_CERT_BYTES) else {
                continue;
            };
            if let Some(der) = pem_certs(&bytes).into_iter().next() {
                if is_self_signed_ca(&der) {
                    candidates.push((src.shown(&rel), der));
                }
            }
        }
    }
    candidates.sort();
    let passed = if skipped.is_empty() {
        String::new()
    } else {
        format!(" (passed over: {})", skipped.join(", "))
    };
    match candidates.len() {
        1 => Ok(candidates.remove(0)),
        0 => Err(Error::bad_file(
            &src.path,
            format!("no self-signed CA certificate found in it or in certs/{passed}"),
            "pass --ca-cert FILE",
        )),
        _ => Err(Error::bad_file(
            &src.path,
            format!(
                "several CA certificates found: {}",
                candidates
                    .iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "pass --ca-cert FILE",
        )),
    }
}

/// What a key file turned out to be, for the CA key search.
enum KeyFile {
    Key(CaKey),
    /// OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` PEM, which gitca cannot decrypt.
    Legacy,
    Unusable(String),
}

/// Reads a PEM private key: PKCS#8 `ENCRYPTED PRIVATE KEY` (what OpenSSL 3 writes for
/// `genrsa -aes256`), decrypted in memory, or an unencrypted PKCS#8, SEC1 or PKCS#1 key.
fn read_key(bytes: &[u8], passphrase: Option<&Zeroizing<String>>) -> Result<KeyFile> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(KeyFile::Unusable("not a PEM private key".into()));
    };
    let text = Zeroizing::new(text.to_string());
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Ok(KeyFile::Legacy);
    }
    let Ok(block) = pem::parse(text.as_bytes()) else {
        return Ok(KeyFile::Unusable("not a PEM private key".into()));
    };
    let der = Zeroizing::new(block.contents().to_vec());
    let pair = match block.tag() {
        "ENCRYPTED PRIVATE KEY" => {
            let pass = passphrase.ok_or_else(|| Error::Unlock {
                reason: "the openssl CA key is encrypted and no passphrase was given".into(),
                help: "set GITCA_IMPORT_PASSPHRASE to the passphrase of the openssl CA key, or run on a terminal to be asked".into(),
            })?;
            let Ok(info) = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()) else {
                return Ok(KeyFile::Unusable("an unreadable encrypted key".into()));
            };
            let Ok(doc) = info.decrypt(pass.as_bytes()) else {
                return Ok(KeyFile::Unusable(
                    "encrypted, and the passphrase does not open it".into(),
                ));
            };
            let plain = Zeroizing::new(doc.as_bytes().to_vec());
            rcgen::KeyPair::try_from(plain.as_slice())
        }
        tag if tag.ends_with("PRIVATE KEY") => rcgen::KeyPair::from_pem(&text),
        tag => return Ok(KeyFile::Unusable(format!("a `{tag}`, not a private key"))),
    };
    Ok(match pair {
        Ok(pair) => KeyFile::Key(CaKey::new(pair)),
        Err(e) => KeyFile::Unusable(format!("a key gitca cannot load ({e})")),
    })
}

fn legacy_key(path: &Path) -> Error {
    Error::bad_file(
        path,
        "the key is in the legacy OpenSSL encrypted format (Proc-Type: 4,ENCRYPTED)",
        format!(
            "convert it to PKCS#8 first (nothing leaves your machine): openssl pkcs8 -topk8 -v2 aes-256-cbc -in {0} -out {0}.p8 — then pass --ca-key {0}.p8",
            path.display()
        ),
    )
}

/// The CA key given with --ca-key: it must be the CA certificate's.
fn given_ca_key(path: &Path, ca: &CaCert, passphrase: Option<&Zeroizing<String>>) -> Result<CaKey> {
    let bytes = Zeroizing::new(crate::repository::confined::read_named(
        path,
        MAX_SMALL_BYTES,
        "read the CA key",
    )?);
    let key = match read_key(&bytes, passphrase)? {
        KeyFile::Key(k) => k,
        KeyFile::Legacy => return Err(legacy_key(path)),
        KeyFile::Unusable(why) if why.contains("passphrase") => {
            return Err(Error::Unlock {
                reason: "wrong passphrase for the openssl CA key".into(),
                help: "set GITCA_IMPORT_PASSPHRASE to the passphrase of the openssl CA key".into(),
            })
        }
        KeyFile::Unusable(why) => {
            return Err(Error::bad_file(
                path,
                format!("the key cannot be used: it is {why}"),
                "gitca supports RSA and ECDSA P-256/P-384 CA keys (PEM, PKCS#8 encrypted or not)",
            ))
        }
    };
    if key.spki_der() != ca.spki_der {
        return Err(Error::bad_file(
            path,
            "this key is not the CA certificate's",
            "pass the matching --ca-key",
        ));
    }
    Ok(key)
}

/// Finds the CA key in private/: the key whose public key is the CA certificate's. The recipe
/// keeps people's keys there too, so the file count says nothing; every candidate is read
/// (size-checked, no link followed) and the one that matches is taken.
fn find_ca_key(
    src: &Source,
    ca: &CaCert,
    passphrase: Option<&Zeroizing<String>>,
) -> Result<(PathBuf, CaKey)> {
    let (files, skipped) = src.files("private");
    let mut found: Option<(PathBuf, CaKey)> = None;
    let mut others: Vec<String> = skipped;
    let mut legacy = Vec::new();
    let mut locked = false;
    for rel in &files {
        let bytes = match src.read_opt(rel, MAX_SMALL_BYTES) {
            Ok(Some(b)) => Zeroizing::new(b),
            Ok(None) => continue,
            Err(e) => {
                others.push(format!("{rel} ({e})"));
                continue;
            }
        };
        match read_key(&bytes, passphrase)? {
            KeyFile::Key(k) if k.spki_der() == ca.spki_der => {
                if found.is_none() {
                    found = Some((src.shown(rel), k));
                }
            }
            KeyFile::Key(_) => others.push(format!("{rel} (another certificate's key)")),
            KeyFile::Legacy => {
                legacy.push(src.shown(rel));
                others.push(format!("{rel} (legacy encrypted format)"));
            }
            KeyFile::Unusable(why) => {
                locked |= why.contains("passphrase");
                others.push(format!("{rel} ({why})"));
            }
        }
    }
    if let Some(found) = found {
        return Ok(found);
    }
    if let [one] = legacy.as_slice() {
        return Err(legacy_key(one));
    }
    if locked {
        return Err(Error::Unlock {
            reason: format!(
                "wrong passphrase for the openssl CA key: it opens no encrypted key in {} ({})",
                src.shown("private").display(),
                others.join(", ")
            ),
            help: "set GITCA_IMPORT_PASSPHRASE to the passphrase of the openssl CA key, or pass --ca-key FILE".into(),
        });
    }
    Err(Error::bad_file(
        src.shown("private"),
        if others.is_empty() {
            "no key file in private/".to_string()
        } else {
            format!(
                "no key in private/ is the CA certificate's; candidates: {}",
                others.join(", ")
            )
        },
        "pass --ca-key FILE",
    ))
}

/// One row of index.txt.
struct IndexRow {
    status: char,
    /// As index.txt writes it (uppercase hex): the name of its file in newcerts/.
    serial: String,
    revoked: Option<(OffsetDateTime, RevocationReason)>,
    line: usize,
}

fn parse_openssl_time(s: &str) -> Option<OffsetDateTime> {
    // YYMMDDHHMMSSZ (UTCTime) or YYYYMMDDHHMMSSZ.
    let digits = s.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
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

fn parse_index(src: &Source) -> Result<Vec<IndexRow>> {
    let bytes = src.read("index.txt", ledger::MAX_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        src.bad(
            "index.txt",
            "is not text",
            "index.txt must be the database `openssl ca` writes",
        )
    })?;
    let mut rows = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let fail = |why: String, help: &str| {
            src.bad(
                "index.txt",
                format!("line {}: {why}", i + 1),
                help.to_string(),
            )
        };
        const DB: &str = "index.txt must be the database `openssl ca` writes";
        if f.len() < 6 {
            return Err(fail("expected 6 tab-separated fields".into(), DB));
        }
        let status = f[0]
            .chars()
            .next()
            .ok_or_else(|| fail("empty status".into(), DB))?;
        let revoked = match status {
            'V' | 'E' => None,
            'R' => {
                let (date, reason) = f[2].split_once(',').unwrap_or((f[2], "unspecified"));
                let at = parse_openssl_time(date)
                    .ok_or_else(|| fail("bad revocation date".into(), DB))?;
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
            _ => return Err(fail("status is not V, R or E".into(), DB)),
        };
        // A serial names a file in newcerts/ and a CRL entry: hexadecimal digits only (a
        // negative serial, `-1001`, or a path is refused before anything is opened).
        let serial = f[3];
        if serial.is_empty() || serial.len() > 42 || !serial.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(fail(
                format!(
                    "serial `{}` is not a positive hexadecimal number",
                    crate::output::encode::terminal(serial)
                ),
                "gitca imports certificates with positive serials of at most 20 octets (RFC 5280); revoke this certificate with openssl, reissue it with a positive serial, and import again",
            ));
        }
        let key = serial.trim_start_matches('0').to_ascii_lowercase();
        if let Some(first) = seen.insert(key, i + 1) {
            return Err(fail(
                format!("serial {serial} appears twice (first on line {first})"),
                "a serial names one certificate: index.txt was edited or merged by hand; restore it from a backup of the openssl CA",
            ));
        }
        rows.push(IndexRow {
            status,
            serial: serial.to_ascii_uppercase(),
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

/// A CA name or organization for gitca.yaml: the CA certificate's value when it passes the
/// grammar of every subject value ([`crate::authority::subject::check_text`]), else that value with the
/// characters it refuses turned into spaces (`Example, Ltd` → `Example Ltd`), else `fallback`.
/// Only what gitca writes into new certificates follows it; the CA certificate is unchanged.
fn mapped_text(value: &str, fallback: &str) -> String {
    if crate::authority::subject::check_text(value).is_ok() {
        return value.to_string();
    }
    let spaced: String = value
        .nfc()
        .map(|c| {
            if ",+=\"\\<>;#/".contains(c)
                || c.is_control()
                || crate::output::encode::is_invisible(c)
            {
                ' '
            } else {
                c
            }
        })
        .collect();
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let mapped: String = words
        .join(" ")
        .chars()
        .take(crate::authority::subject::MAX_TEXT)
        .collect();
    let mapped = mapped.trim().to_string();
    if crate::authority::subject::check_text(&mapped).is_ok() {
        mapped
    } else {
        fallback.to_string()
    }
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

/// The subject attributes (RFC 4514 short names) a certificate carries that gitca does not
/// issue, and whether it carries Netscape's nsCertType: what a renewal drops.
fn foreign_attributes(c: &X509Certificate<'_>) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = c
        .subject()
        .iter_attributes()
        .map(|a| crate::authority::subject::attribute_name(a.attr_type()))
        .filter(|n| !ISSUED_ATTRIBUTES.contains(&n.as_str()))
        .collect();
    if c.extensions()
        .iter()
        .any(|e| e.oid.to_id_string() == crate::authority::subject::OID_NS_CERT_TYPE)
    {
        out.insert("nsCertType".into());
    }
    out
}

/// Why a certificate's serial cannot be gitca's: RFC 5280 serials are positive integers of at
/// most 20 octets, and the ledger and CRL take them as such (EF FF is −4097, not 61439).
fn serial_problem(raw: &[u8]) -> Option<String> {
    if raw.is_empty() || raw.iter().all(|b| *b == 0) {
        return Some("its serial is zero".into());
    }
    if raw[0] & 0x80 != 0 {
        return Some(format!(
            "its serial is negative (DER {})",
            hex::encode_upper(raw)
        ));
    }
    if raw.len() > 20 {
        return Some(format!("its serial has {} octets (at most 20)", raw.len()));
    }
    None
}

/// Whether a certificate is itself a CA (basicConstraints CA:TRUE or keyUsage keyCertSign).
fn is_ca(c: &X509Certificate<'_>) -> bool {
    c.is_ca()
        || c.key_usage()
            .ok()
            .flatten()
            .is_some_and(|k| k.value.key_cert_sign())
}

/// A CSR found in the old CA's tree.
struct FoundCsr {
    rel: String,
    bytes: Vec<u8>,
    key_sha256: String,
    cn: Option<String>,
}

/// Every CSR in the old CA's tree, wherever the recipe kept it (`certs/NAME.csr`,
/// `csr/NAME.csr.pem`, …): bounded in depth, entries and size, never through a link, and never
/// inside private/ or newcerts/. What is not a CSR gitca verifies is passed over.
fn find_csrs(src: &Source) -> Vec<FoundCsr> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), 0usize)];
    let mut visited = 0usize;
    while let Some((at, depth)) = stack.pop() {
        let Ok(entries) = src.dir.list(&at) else {
            continue;
        };
        for (name, kind) in entries {
            visited += 1;
            if visited > MAX_SCAN_ENTRIES {
                return out;
            }
            let rel = if at.is_empty() {
                name.clone()
            } else {
                format!("{at}/{name}")
            };
            match kind {
                EntryKind::Dir
                    if depth < MAX_SCAN_DEPTH
                        && !(at.is_empty()
                            && ["private", "newcerts", ".git"].contains(&name.as_str())) =>
                {
                    stack.push((rel, depth + 1))
                }
                EntryKind::File => {
                    let small = src
                        .dir
                        .meta(&rel)
                        .ok()
                        .flatten()
                        .is_some_and(|m| m.len <= MAX_SMALL_BYTES);
                    if !small {
                        continue;
                    }
                    let Ok(Some(bytes)) = src.read_opt(&rel, MAX_SMALL_BYTES) else {
                        continue;
                    };
                    if !bytes.windows(24).any(|w| w == b"CERTIFICATE REQUEST-----") {
                        continue;
                    }
                    if let Ok(v) = crate::reconcile::policy::verify_csr(&bytes) {
                        out.push(FoundCsr {
                            rel,
                            bytes,
                            key_sha256: v.key_sha256,
                            cn: v.common_name,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// An identity to declare: its name, CN, email, groups, current certificate and CSR.
struct Declared {
    cn: String,
    email: Option<String>,
    groups: Vec<String>,
    /// The subject attributes and extensions its certificate has that gitca does not issue.
    foreign: BTreeSet<String>,
}

/// The old CA's certificate: where it was found, its DER, the PEM gitca writes, and its parse.
struct OldCaCert {
    path: PathBuf,
    der: Vec<u8>,
    /// The certificate alone, re-encoded (whatever else its file held is left behind).
    pem: String,
    cert: CaCert,
}

/// gitca.yaml as derived from the CA's subject, with the values that had to be mapped.
struct NamedCa {
    name: String,
    config_text: String,
    config: Config,
    mapped_notes: Vec<String>,
}

/// What index.txt and newcerts/ carry over: the ledger, each certificate's DER by serial, and
/// the identities whose certificates are still valid.
#[derive(Default)]
struct History {
    ledger: Ledger,
    ders: BTreeMap<String, Vec<u8>>,
    declared: BTreeMap<String, Declared>,
    skipped_ca_rows: usize,
}

/// The CSRs carried over, by identity: where they were found and their bytes.
type CarriedCsrs = BTreeMap<String, (String, Vec<u8>)>;

/// The new CRL, the ledger's seal, and the CA key re-encrypted, all made while the key is held.
struct Signed {
    crl: String,
    crl_entries: usize,
    seal: crate::repository::seal::Seal,
    encrypted: String,
    recipients: String,
}

/// The top-level entry point for `gitca import-openssl`.
pub fn run_import(opts: ImportOptions, out: &mut dyn Write) -> Result<()> {
    let src = open_source(&opts.source)?;
    init::check_target(&opts.dir)?;
    let old = old_ca_cert(&opts, &src)?;
    let (_, ca_x509) = x509_parser::parse_x509_certificate(&old.der)
        .map_err(|e| Error::bad_file(&old.path, e.to_string(), "pass --ca-cert FILE"))?;
    let (key_path, key) = old_ca_key(&opts, &src, &old.cert)?;
    let named = name_ca(&ca_x509)?;
    let mut history = read_history(&src, &old.der, &ca_x509, opts.now)?;
    let (csrs, csr_notes) = carry_csrs(&find_csrs(&src), &mut history, opts.now);
    let ledger_text = history.ledger.render();
    let crl_number = next_crl_number(&src)?;
    let signed = sign_and_seal(
        &opts,
        &old.cert,
        key,
        (&history.ledger, &ledger_text),
        crl_number,
        &named.config,
    )?;

    let next_update = opts.now + named.config.crl.validity.0;
    let crl_entries = signed.crl_entries;
    let (yaml_text, declared) = declared_files(&history, &csrs, &old.pem, opts.now);
    let files = repo_files(
        declared,
        [named.config_text, yaml_text, old.pem, ledger_text],
        signed,
    );
    let oid = init::write_new_repo(
        &opts.dir,
        &files,
        &format!("gitca: import the openssl CA {}", named.name),
    )?;
    report(
        out,
        &Summary {
            opts: &opts,
            src: &src,
            ca_name: &named.name,
            mapped_notes: &named.mapped_notes,
            key_path: &key_path,
            ca_path: &old.path,
            history: &history,
            csrs: &csrs,
            csr_notes: &csr_notes,
            crl_number,
            crl_entries,
            next_update,
            oid,
        },
    );
    Ok(())
}

/// Opens the old CA's directory, refusing one that holds no index.txt.
fn open_source(path: &Path) -> Result<Source> {
    let src = Source {
        dir: Dir::open(path)?,
        path: path.to_path_buf(),
    };
    if src.dir.meta("index.txt")?.is_none() {
        return Err(Error::bad_file(
            &src.path,
            "no index.txt: not an `openssl ca` directory",
            "pass the directory that holds index.txt, serial, certs/, newcerts/ and private/",
        ));
    }
    Ok(src)
}

/// The CA certificate, from --ca-cert or found in the old CA, which gitca must be able to parse.
fn old_ca_cert(opts: &ImportOptions, src: &Source) -> Result<OldCaCert> {
    let (path, der) = match &opts.ca_cert {
        Some(p) => {
            let bytes = crate::repository::confined::read_named(
                p,
                ca::MAX_CERT_BYTES,
                "read the CA certificate",
            )?;
            let der = pem_certs(&bytes)
                .into_iter()
                .next()
                .ok_or_else(|| Error::bad_file(p, "no PEM certificate", "pass --ca-cert FILE"))?;
            (p.clone(), der)
        }
        None => find_ca_cert(src)?,
    };
    let pem = crate::output::encode::to_pem("CERTIFICATE", &der);
    let cert = CaCert::parse(&pem).map_err(|_| {
        Error::bad_file(
            &path,
            "the CA certificate has no subject key identifier or cannot be parsed",
            "gitca needs an X.509 v3 CA certificate with a subject key identifier",
        )
    })?;
    Ok(OldCaCert {
        path,
        der,
        pem,
        cert,
    })
}

/// The CA key, from --ca-key or found in the old CA: the key of the CA certificate.
fn old_ca_key(opts: &ImportOptions, src: &Source, ca_cert: &CaCert) -> Result<(PathBuf, CaKey)> {
    Ok(match &opts.ca_key {
        Some(p) => (
            p.clone(),
            given_ca_key(p, ca_cert, opts.passphrase.as_ref())?,
        ),
        None => find_ca_key(src, ca_cert, opts.passphrase.as_ref())?,
    })
}

/// gitca.yaml: the CA's name and organization, as gitca may write them into certificates.
fn name_ca(ca_x509: &X509Certificate<'_>) -> Result<NamedCa> {
    let subject_value = |it: &mut dyn Iterator<
        Item = &x509_parser::x509::AttributeTypeAndValue<'_>,
    >| { it.next().and_then(|a| a.as_str().ok()).map(str::to_string) };
    let ca_cn = subject_value(&mut ca_x509.subject().iter_common_name())
        .unwrap_or_else(|| "Imported CA".into());
    let ca_o = subject_value(&mut ca_x509.subject().iter_organization());
    let ca_name = mapped_text(&ca_cn, "Imported CA");
    let organization = match &ca_o {
        Some(o) => mapped_text(o, &ca_name),
        None => ca_name.clone(),
    };
    let mut mapped_notes = Vec::new();
    if ca_name != ca_cn {
        mapped_notes.push(format!(
            "ca.name `{}` (the certificate's CN `{}` holds characters a subject value may not)",
            ca_name,
            crate::output::encode::terminal(&ca_cn)
        ));
    }
    if let Some(o) = ca_o.as_ref().filter(|o| **o != organization) {
        mapped_notes.push(format!(
            "ca.organization `{}` (the CA's O `{}` holds characters a subject value may not): new certificates carry it",
            organization,
            crate::output::encode::terminal(o)
        ));
    }
    let config_text = Config::template(&yaml::quote(&ca_name), &yaml::quote(&organization));
    let config = Config::parse(&config_text)?;
    Ok(NamedCa {
        name: ca_name,
        config_text,
        config,
        mapped_notes,
    })
}

/// The ledger, from index.txt and the certificates in newcerts/, in index.txt's order (the
/// order openssl issued them: the ledger's order of issue).
fn read_history(
    src: &Source,
    ca_der: &[u8],
    ca_x509: &X509Certificate<'_>,
    now: OffsetDateTime,
) -> Result<History> {
    let rows = parse_index(src)?;
    let mut history = History::default();
    let mut cn_of: BTreeMap<String, String> = BTreeMap::new();
    for row in &rows {
        let (rel, der) = row_cert(src, row)?;
        if der == ca_der {
            // `openssl ca -selfsign` records the CA certificate itself: not an identity.
            history.skipped_ca_rows += 1;
            continue;
        }
        let (c, serial) = checked_row_cert(src, &rel, &der, ca_x509, row)?;
        let not_after = c.validity().not_after.to_datetime();
        let live = row.status == 'V' && row.revoked.is_none() && not_after > now;
        if live && is_ca(&c) {
            return Err(src.bad(
                &rel,
                "is a CA certificate (CA:TRUE or keyCertSign), not a person's or a bot's",
                format!(
                    "gitca imports client certificates only: revoke it with openssl (openssl ca -config openssl.cnf -revoke {rel}) and import again; its revocation is carried over"
                ),
            ));
        }
        let a = attributes(&c);
        let name = identity_name(src, &rel, &a, live, &serial)?;
        if live {
            declare(src, &rel, &name, &a, &c, &mut cn_of, &mut history.declared)?;
        }
        let record = history_record(row, serial.clone(), name, a, &c);
        history.ledger.records.push(record);
        history.ders.insert(serial, der);
    }
    history.ledger.sort();
    // What gitca writes must read back: the ledger it will parse on every later run.
    let ledger_text = history.ledger.render();
    Ledger::parse(&ledger_text).map_err(|e| {
        src.bad(
            "index.txt",
            format!("the imported ledger would not read back: {e}"),
            "report this as a gitca bug, with the index.txt row it names",
        )
    })?;
    Ok(history)
}

/// The certificate index.txt's row names: its path in newcerts/ and its DER.
fn row_cert(src: &Source, row: &IndexRow) -> Result<(String, Vec<u8>)> {
    let rel = format!("newcerts/{}.pem", row.serial);
    let bytes = src.read_opt(&rel, ca::MAX_CERT_BYTES)?.ok_or_else(|| {
        src.bad(
            "index.txt",
            format!("line {}: serial {} has no {rel}", row.line, row.serial),
            "restore newcerts/ from the openssl CA",
        )
    })?;
    let der = pem_certs(&bytes).into_iter().next().ok_or_else(|| {
        src.bad(
            &rel,
            "holds no PEM certificate",
            "restore it from the openssl CA",
        )
    })?;
    Ok((rel, der))
}

/// Parses a row's certificate and checks it against the CA and the row: signed by the CA, an
/// RFC 5280 serial, the serial index.txt names. Returns it with its serial as gitca writes it.
fn checked_row_cert<'a>(
    src: &Source,
    rel: &str,
    der: &'a [u8],
    ca_x509: &X509Certificate<'_>,
    row: &IndexRow,
) -> Result<(X509Certificate<'a>, String)> {
    let (_, c) = x509_parser::parse_x509_certificate(der).map_err(|e| {
        src.bad(
            rel,
            format!("not an X.509 certificate: {e}"),
            "restore it from the openssl CA",
        )
    })?;
    if c.verify_signature(Some(ca_x509.public_key())).is_err() {
        return Err(src.bad(
            rel,
            "not signed by the CA certificate",
            "pass the right --ca-cert",
        ));
    }
    if let Some(why) = serial_problem(c.raw_serial()) {
        return Err(src.bad(
            rel,
            format!("{why}: no CRL could list it correctly"),
            "gitca keeps RFC 5280 serials (positive, at most 20 octets): revoke this certificate with openssl, reissue it with a positive serial, remove its row from index.txt, and import again",
        ));
    }
    let serial = ca::serial_hex(c.raw_serial());
    let norm = |s: &str| s.trim_start_matches('0').to_ascii_lowercase();
    if norm(&serial) != norm(&row.serial) {
        return Err(src.bad(
            rel,
            format!(
                "holds serial {}, but index.txt line {} names {}",
                serial.to_ascii_uppercase(),
                row.line,
                row.serial
            ),
            "restore newcerts/ and index.txt from the openssl CA",
        ));
    }
    Ok((c, serial))
}

/// The gitca name a certificate is recorded under. A live one's CN, email and OUs must pass
/// the grammar gitca gives every subject value; history keeps what it can.
fn identity_name(src: &Source, rel: &str, a: &Attrs, live: bool, serial: &str) -> Result<String> {
    let derived = name_for(&a.cn);
    if !live {
        return Ok(if valid_name(&derived) {
            derived
        } else {
            // History only (revoked or expired): kept under a name nobody is declared as.
            format!("imported-{serial}")
        });
    }
    let refuse = |why: String| {
        src.bad(
            rel,
            why,
            format!("gitca gives every value in a subject one grammar (docs/onboarding.md, \"Names\"): reissue this certificate with openssl under a plain value, revoke this one (openssl ca -revoke {rel}), and import again"),
        )
    };
    if let Err(why) = crate::authority::subject::check_text(&a.cn) {
        return Err(refuse(format!(
            "its CN `{}` cannot be a common name: {why}",
            crate::output::encode::terminal(&a.cn)
        )));
    }
    if !valid_name(&derived) {
        return Err(refuse(format!(
            "its CN `{}` cannot become a gitca name ([a-z0-9][a-z0-9._-]*)",
            crate::output::encode::terminal(&a.cn)
        )));
    }
    if let Some(Err(why)) = a
        .email
        .as_deref()
        .map(crate::authority::subject::check_email)
    {
        return Err(refuse(format!(
            "its email `{}` is refused: {why}",
            crate::output::encode::terminal(a.email.as_deref().unwrap_or(""))
        )));
    }
    if let Some(g) = a.groups.iter().find(|g| !valid_group(g)) {
        return Err(refuse(format!(
            "its OU `{}` cannot be a group ([A-Za-z0-9._-])",
            crate::output::encode::terminal(g)
        )));
    }
    Ok(derived)
}

/// Declares a live certificate's identity, refusing two CNs that become the same name.
fn declare(
    src: &Source,
    rel: &str,
    name: &str,
    a: &Attrs,
    c: &X509Certificate<'_>,
    cn_of: &mut BTreeMap<String, String>,
    declared: &mut BTreeMap<String, Declared>,
) -> Result<()> {
    if let Some(other) = cn_of
        .insert(name.to_string(), a.cn.clone())
        .filter(|o| *o != a.cn)
    {
        return Err(src.bad(
            rel,
            format!(
                "CNs `{}` and `{}` both become `{name}`",
                crate::output::encode::terminal(&other),
                crate::output::encode::terminal(&a.cn)
            ),
            "rename one of them in the openssl CA first",
        ));
    }
    declared.insert(
        name.to_string(),
        Declared {
            cn: a.cn.clone(),
            email: a.email.clone(),
            groups: a.groups.clone(),
            foreign: foreign_attributes(c),
        },
    );
    Ok(())
}

/// The ledger record of one imported certificate.
fn history_record(
    row: &IndexRow,
    serial: String,
    name: String,
    a: Attrs,
    c: &X509Certificate<'_>,
) -> Record {
    // History keeps only what the ledger's grammar holds.
    let email = a
        .email
        .filter(|e| crate::authority::subject::check_email(e).is_ok());
    let groups = if a.groups.iter().all(|g| valid_group(g)) {
        a.groups
    } else {
        Vec::new()
    };
    Record {
        serial,
        identity: name,
        kind: Kind::User,
        profile: "user".into(),
        state: if row.revoked.is_some() {
            State::Revoked
        } else {
            State::Issued
        },
        not_before: c.validity().not_before.to_datetime(),
        not_after: c.validity().not_after.to_datetime(),
        revoked_at: row.revoked.map(|r| r.0),
        reason: row.revoked.map(|r| r.1),
        // The key's identity as reconcile computes it, so ownership and bars carry over.
        key_sha256: crate::authority::pubkey::canonical(c.public_key().raw)
            .map(|k| k.id)
            .unwrap_or_else(|_| crate::authority::pubkey::key_fingerprint(c.public_key().raw)),
        csr_sha256: "-".into(),
        email,
        groups,
        issuer: None,
        names: Vec::new(),
    }
}

/// CSRs, wherever the old CA kept them, carried over when their key is an identity's
/// current key and they name its CN (reconcile renews from them). Records each carried CSR's
/// digest in the ledger; returns the CSRs and a note for each one passed over.
fn carry_csrs(
    found: &[FoundCsr],
    history: &mut History,
    now: OffsetDateTime,
) -> (CarriedCsrs, Vec<String>) {
    let mut csrs: CarriedCsrs = BTreeMap::new();
    let mut csr_notes = Vec::new();
    for name in history.declared.keys() {
        let Some(current) = history.ledger.current(name, now) else {
            continue;
        };
        let cn = &history.declared[name].cn;
        let same_key: Vec<&FoundCsr> = found
            .iter()
            .filter(|f| f.key_sha256 == current.key_sha256)
            .collect();
        match same_key
            .iter()
            .find(|f| f.cn.as_deref() == Some(cn.as_str()))
        {
            Some(f) => {
                csrs.insert(name.clone(), (f.rel.clone(), f.bytes.clone()));
            }
            None => {
                if let Some(f) = same_key.first() {
                    csr_notes.push(format!(
                        "{} has {name}'s key but names CN {}: not carried over",
                        f.rel,
                        f.cn.as_deref().map_or("(none)".into(), |c| format!(
                            "`{}`",
                            crate::output::encode::terminal(c)
                        ))
                    ));
                }
            }
        }
    }
    for r in history.ledger.records.iter_mut() {
        if let Some((_, bytes)) = csrs.get(&r.identity) {
            if crate::reconcile::policy::verify_csr(bytes)
                .is_ok_and(|v| v.key_sha256 == r.key_sha256)
            {
                r.csr_sha256 = hex::encode(Sha256::digest(bytes));
            }
        }
    }
    (csrs, csr_notes)
}

/// The CRL continues openssl's numbering (crlnumber is hexadecimal).
fn next_crl_number(src: &Source) -> Result<u64> {
    Ok(match src.read_opt("crlnumber", 1024)? {
        None => 1,
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            u64::from_str_radix(text.trim(), 16)
                .ok()
                .filter(|n| *n < u64::MAX / 2)
                .ok_or_else(|| {
                    src.bad(
                        "crlnumber",
                        format!(
                            "holds `{}`, not the hexadecimal CRL number openssl writes",
                            crate::output::encode::terminal(text.trim())
                        ),
                        "restore crlnumber from the openssl CA (it holds the next CRL number, e.g. 1001)",
                    )
                })?
                .max(1)
        }
    })
}

/// Signs the first CRL (keeping every unexpired revocation) and the seal, and re-encrypts the
/// CA key with age; the key is dropped once done.
fn sign_and_seal(
    opts: &ImportOptions,
    ca_cert: &CaCert,
    key: CaKey,
    (ledger, ledger_text): (&Ledger, &str),
    crl_number: u64,
    config: &Config,
) -> Result<Signed> {
    let entries = crate::repository::ledger::crl_entries(ledger, opts.now, None)?;
    let crl = ca::sign_crl(
        ca_cert,
        &key,
        crl_number,
        opts.now,
        opts.now + config.crl.validity.0,
        &entries,
    )?;
    let seal = crate::repository::seal::Seal::sign(
        ca_cert,
        &key,
        1,
        (ledger_text.as_bytes(), crl.as_bytes(), crl_number),
        None,
    )?;
    let encrypted = custody::encrypt(key.to_pem()?.as_bytes(), &opts.custody)?;
    let recipients =
        crate::repository::recipients::signed_text(&custody::ISSUING, &opts.custody, 1, &key)?;
    drop(key);
    Ok(Signed {
        crl,
        crl_entries: entries.len(),
        seal,
        encrypted,
        recipients,
    })
}

/// The still-valid identities, declared as they are certified: the identities file's text, and
/// each one's certificate (with the CA's) and carried CSR.
fn declared_files(
    history: &History,
    csrs: &CarriedCsrs,
    ca_pem: &str,
    now: OffsetDateTime,
) -> (String, Vec<(String, Vec<u8>)>) {
    let mut yaml_text = String::from(
        "# yaml-language-server: $schema=../schema/identities.schema.json\n# Imported from an `openssl ca` directory by `gitca import-openssl`: the identities whose\n# certificates were still valid. Edit like any other identities file (`gitca identity` edits\n# one entry in place).\nusers:\n",
    );
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, d) in &history.declared {
        yaml_text.push_str(&format!("  - name: {name}\n"));
        // A CN that is not the name (`Olga Ray`) is kept as the certificate's CN, so renewals
        // from the CSR on file (which names it) keep working.
        if d.cn != *name {
            yaml_text.push_str(&format!("    common_name: {}\n", yaml::quote(&d.cn)));
        }
        if let Some(e) = &d.email {
            yaml_text.push_str(&format!("    email: {}\n", yaml::quote(e)));
        }
        yaml_text.push_str(&format!("    csr: csr/{name}.csr\n"));
        if !d.groups.is_empty() {
            let gs: Vec<String> = d.groups.iter().map(|g| yaml::quote(g)).collect();
            yaml_text.push_str(&format!("    groups: [{}]\n", gs.join(", ")));
        }
        let Some(current) = history.ledger.current(name, now) else {
            continue;
        };
        let mut pem_text =
            crate::output::encode::to_pem("CERTIFICATE", &history.ders[&current.serial]);
        pem_text.push_str(ca_pem);
        files.push((cert_path(name), pem_text.into_bytes()));
        if let Some((_, bytes)) = csrs.get(name) {
            files.push((format!("csr/{name}.csr"), bytes.clone()));
        }
    }
    if history.declared.is_empty() {
        yaml_text = yaml_text.replace("users:\n", "users: []\n");
    }
    (yaml_text, files)
}

/// Every file of the new repository: the declared identities' certificates and CSRs, then
/// gitca.yaml, the identities file, the CA certificate, the encrypted key, its recipients, the
/// CRL, the ledger, the seal, and the files every new repository starts with.
fn repo_files(
    mut files: Vec<(String, Vec<u8>)>,
    [config_text, yaml_text, ca_pem, ledger_text]: [String; 4],
    signed: Signed,
) -> Vec<(String, Vec<u8>)> {
    files.extend([
        (CONFIG_FILE.to_string(), config_text.into_bytes()),
        (IMPORTED_FILE.to_string(), yaml_text.into_bytes()),
        (CA_CERT.to_string(), ca_pem.into_bytes()),
        (KEY_FILE.to_string(), signed.encrypted.into_bytes()),
        (RECIPIENTS_FILE.to_string(), signed.recipients.into_bytes()),
        (CRL_FILE.to_string(), signed.crl.into_bytes()),
        (LEDGER_FILE.to_string(), ledger_text.into_bytes()),
        (SEAL_FILE.to_string(), signed.seal.render().into_bytes()),
    ]);
    files.extend(init::common_files().map(|(p, t)| (p.to_string(), t.into_bytes())));
    files
}

/// What the import did, for the report it prints.
struct Summary<'a> {
    opts: &'a ImportOptions,
    src: &'a Source,
    ca_name: &'a str,
    mapped_notes: &'a [String],
    key_path: &'a Path,
    ca_path: &'a Path,
    history: &'a History,
    csrs: &'a CarriedCsrs,
    csr_notes: &'a [String],
    crl_number: u64,
    crl_entries: usize,
    next_update: OffsetDateTime,
    oid: git2::Oid,
}

/// Prints what was imported, where it went, and what its holders have left to do.
fn report(out: &mut dyn Write, s: &Summary<'_>) {
    let ledger = &s.history.ledger;
    let declared = &s.history.declared;
    let revoked = ledger
        .records
        .iter()
        .filter(|r| r.state == State::Revoked)
        .count();
    let _ = writeln!(
        out,
        "Imported `{}` from {} into {}",
        s.ca_name,
        s.src.path.display(),
        s.opts.dir.display()
    );
    let _ = writeln!(
        out,
        "  CA key       {} (the key of {}), re-encrypted with age into {}",
        s.key_path.display(),
        s.ca_path.display(),
        KEY_FILE
    );
    let _ = writeln!(
        out,
        "  ledger       {} certificate(s), {revoked} revoked{}",
        ledger.records.len(),
        if s.history.skipped_ca_rows > 0 {
            " (the CA's own row left out)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  identities   {} still valid, declared in {IMPORTED_FILE} ({} with a CSR)",
        declared.len(),
        s.csrs.len()
    );
    report_csrs(out, s);
    let foreign: BTreeSet<&str> = declared
        .values()
        .flat_map(|d| d.foreign.iter().map(String::as_str))
        .collect();
    if !foreign.is_empty() {
        let n = declared.values().filter(|d| !d.foreign.is_empty()).count();
        let _ = writeln!(
            out,
            "  subjects     {n} certificate(s) carry {} that gitca does not issue (it writes O, OU and CN, the email as a SAN): a renewal drops them, and `gitca plan` flags each one (docs/setup.md)",
            foreign.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    for note in s.mapped_notes {
        let _ = writeln!(out, "  gitca.yaml   {note}");
    }
    let _ = writeln!(
        out,
        "  CRL          number {} (continuing openssl's), {} entries, next update {}",
        s.crl_number,
        s.crl_entries,
        fmt_time(s.next_update)
    );
    let _ = writeln!(out, "  commit       {}", &s.oid.to_string()[..12]);
    let _ = writeln!(out, "Keep the openssl directory's private/ offline or destroy it: the age-encrypted copy is now the CA key.");
}

/// The report's lines on CSRs: each one carried over, the identities left without one, and
/// those passed over.
fn report_csrs(out: &mut dyn Write, s: &Summary<'_>) {
    for (name, (rel, _)) in s.csrs {
        let _ = writeln!(
            out,
            "    {name}: CSR {rel} → csr/{name}.csr (the certificate's key)"
        );
    }
    let without: Vec<&str> = s
        .history
        .declared
        .keys()
        .filter(|n| !s.csrs.contains_key(*n))
        .map(String::as_str)
        .collect();
    if !without.is_empty() {
        let _ = writeln!(
            out,
            "    without a CSR: {} — their certificates keep working; before each renewal, its holder runs `gitca request NAME --rotate` (`gitca check` warns until then)",
            without.join(", ")
        );
    }
    for note in s.csr_notes {
        let _ = writeln!(out, "    {note}");
    }
}
