//! `gitca doctor`: why a client certificate would be refused, and how to fix it.
//!
//! Facts this module is built on (measured with the real programs, see DESIGN.md): nginx checks
//! every client certificate against the CA and the CRL, and refuses everyone once the CRL
//! expires; Docker reads the first certificate of `client.cert` as the client's, treats `*.crt`
//! as CA roots, and pairs each `X.cert` with `X.key`; Go (the registry) refuses a certificate
//! without the clientAuth extended key usage.

use std::io::Write;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

use crate::authority::ca::{self, CaCert};
use crate::error::{Error, Result};
use crate::layout::CRL_FILE;
use crate::relying::bundle::{parse_pem_certs, read_client_key};
use crate::repository::confined::Dir;
use crate::repository::git::CaRepo;
use crate::time::fmt_time;

/// What `gitca doctor` examines: a certificate and its key, or a certs.d directory (and the
/// registry behind it), against a CA and a CRL.
#[derive(Debug)]
pub struct DoctorOptions {
    /// The client certificate (or Docker's client.cert bundle).
    pub cert: Option<PathBuf>,
    /// The private key that goes with it.
    pub key: Option<PathBuf>,
    /// A Docker/Podman certs.d directory.
    pub certs_dir: Option<PathBuf>,
    /// The CA certificate (default: the CA repository's anchor, or the certs.d directory's ca.crt).
    pub ca: Option<PathBuf>,
    /// The CRL (default: the CA repository's CRLs).
    pub crl: Option<PathBuf>,
    /// With `certs_dir`: the registry (HOST:PORT) whose server certificate to check.
    pub server: Option<String>,
}

/// One thing doctor found.
struct Finding {
    ok: bool,
    text: String,
    fix: String,
}

struct Doctor {
    findings: Vec<Finding>,
}

impl Doctor {
    fn good(&mut self, text: impl Into<String>) {
        self.findings.push(Finding {
            ok: true,
            text: text.into(),
            fix: String::new(),
        });
    }
    fn bad(&mut self, text: impl Into<String>, fix: impl Into<String>) {
        self.findings.push(Finding {
            ok: false,
            text: text.into(),
            fix: fix.into(),
        });
    }
    fn note(&mut self, text: impl Into<String>) {
        self.findings.push(Finding {
            ok: true,
            text: format!("note: {}", text.into()),
            fix: String::new(),
        });
    }
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    cert.basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca)
}

/// What doctor knows of a CRL: who signed it, its revocations (serial, time, reason) and its
/// dates.
struct Crl {
    /// The issuing CA's subject, and its certificate when doctor knows it.
    issuer: String,
    issuer_der: Option<Vec<u8>>,
    revoked: Vec<(String, OffsetDateTime, String)>,
    number: Option<u64>,
    this_update: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
}

/// What doctor compares a client certificate with.
struct Context<'a> {
    /// The CA the server trusts: the CA itself, or the root of a CA with an offline root.
    ca: Option<&'a CaCert>,
    /// Intermediates doctor knows of (the CA repository's current and retiring ones).
    intermediates: &'a [CaCert],
    /// Every CRL given (a file may hold several: the root's and the intermediates').
    crls: &'a [Crl],
    /// The CA repository's ledger, when doctor runs inside it: which certificate is newest.
    ledger: Option<&'a crate::repository::ledger::Ledger>,
    now: OffsetDateTime,
}

/// Every CRL in `text`, each attributed to the CA among `cas` that signed it (refused when
/// CAs are known and none did).
fn read_crls(text: &str, origin: &str, cas: &[&CaCert]) -> Result<Vec<Crl>> {
    let blocks = pem::parse_many(text)
        .map_err(|_| Error::bad_file(origin, "not a PEM CRL", "pass --crl FILE"))?;
    let mut out = Vec::new();
    for block in blocks.iter().filter(|b| b.tag() == "X509 CRL") {
        let (_, crl) = x509_parser::parse_x509_crl(block.contents())
            .map_err(|e| Error::bad_file(origin, e.to_string(), "pass --crl FILE"))?;
        let issuer = cas.iter().find(|c| {
            x509_parser::parse_x509_certificate(&c.der)
                .ok()
                .is_some_and(|(_, c)| crl.verify_signature(c.public_key()).is_ok())
        });
        if issuer.is_none() && !cas.is_empty() {
            return Err(Error::bad_file(
                origin,
                format!("the CRL of {} is not signed by the CA", crate::authority::subject::rfc4514(crl.issuer())),
                "pass the CRL of this CA (with an offline root: the root's and the intermediate's, as `gitca deploy crl` writes them)",
            ));
        }
        let revoked = crl
            .iter_revoked_certificates()
            .map(|r| {
                let reason = r
                    .reason_code()
                    .map(|(_, rc)| {
                        crate::authority::revocation::RevocationReason::ALL
                            .into_iter()
                            .find(|r| r.code() == rc.0)
                            .map(|r| r.as_str().to_string())
                            .unwrap_or_else(|| format!("reason {}", rc.0))
                    })
                    .unwrap_or_else(|| "unspecified".into());
                (
                    ca::serial_hex(r.raw_serial()),
                    r.revocation_date.to_datetime(),
                    reason,
                )
            })
            .collect();
        out.push(Crl {
            issuer: issuer.map_or_else(
                || crate::authority::subject::rfc4514(crl.issuer()),
                |c| c.subject.clone(),
            ),
            issuer_der: issuer.map(|c| c.der.clone()),
            revoked,
            number: crl.crl_number().and_then(|n| u64::try_from(n).ok()),
            this_update: crl.last_update().to_datetime(),
            next_update: crl.next_update().map(|t| t.to_datetime()),
        });
    }
    if out.is_empty() {
        return Err(Error::bad_file(origin, "holds no CRL", "pass --crl FILE"));
    }
    Ok(out)
}

/// The CRL's freshness: nginx refuses every client once it has expired (or before it is valid).
fn check_crl_dates(d: &mut Doctor, crl: &Crl, root: bool, now: OffsetDateTime) {
    let number = format!(
        "{}{}",
        crl.number.map(|n| format!(" #{n}")).unwrap_or_default(),
        if root {
            format!(" of the root ({})", crl.issuer)
        } else {
            String::new()
        }
    );
    if crl.this_update > now + time::Duration::minutes(5) {
        d.bad(
            format!(
                "the CRL{number} is not valid before {}: nginx refuses every client until then",
                fmt_time(crl.this_update)
            ),
            "check the server's clock (timedatectl); the CRL's thisUpdate is set when the CA signs it",
        );
    }
    match crl.next_update {
        Some(next) if next <= now => d.bad(
            format!(
                "the CRL{number} expired {}: nginx refuses EVERY client certificate, this one included",
                fmt_time(next)
            ),
            if root {
                "the root CRL is re-signed by the root custodians: `gitca root sign-crl`, then `gitca deploy crl` on the server"
            } else {
                "the CA's daily `gitca reconcile` re-signs the CRL; install the fresh one on the server (gitca deploy crl) and reload nginx"
            },
        ),
        Some(next) => d.good(format!("the CRL{number} is current until {}", fmt_time(next))),
        None => d.note("the CRL has no nextUpdate"),
    }
}

/// Judges a client certificate (and its key): readable, client first, matching, valid, for
/// client authentication, chained to the CA, and not revoked.
fn check_pair(d: &mut Doctor, cert_path: &Path, key_path: Option<&Path>, cx: &Context<'_>) {
    let now = cx.now;
    let shown = cert_path.display().to_string();
    let Some(ders) = read_cert_file(d, cert_path, &shown) else {
        return;
    };
    let Some(parsed) = parse_all(d, &ders, &shown) else {
        return;
    };
    let leaf_at = find_leaf(d, &parsed, &shown);
    let leaf = &parsed[leaf_at];
    if let Some(key_path) = key_path {
        check_key_matches(d, key_path, leaf);
    }
    check_validity(d, leaf, now);
    check_client_eku(d, leaf);
    let serial = ca::serial_hex(leaf.raw_serial());
    // The chain: the leaf's issuer (the CA, or an intermediate from the file or the
    // repository), the intermediate's standing under the root, and every CRL on the way.
    let issuer = match cx.ca {
        Some(anchor) => match check_chain(d, leaf, &ders[leaf_at + 1..], anchor, cx) {
            Some(i) => Some(i),
            None => return,
        },
        None => None,
    };
    let newer = cx.ledger.and_then(|l| newer_certificate(l, &serial, now));
    let revoked = check_revocation(d, issuer.as_ref(), &serial, newer.as_ref(), cx);
    check_every_crl_date(d, issuer.as_ref(), cx);
    // Not revoked: the server still accepts this one (a renewal, or a replacement within its
    // grace period), so the newer certificate is advice, not a refusal.
    if let Some(n) = newer.filter(|_| !revoked) {
        d.note(format!("{}; {}", n.what, n.fix));
    }
}

/// The certificates (DER) of the file at `cert_path`; `None` when it cannot be read or holds
/// none (reported).
fn read_cert_file(d: &mut Doctor, cert_path: &Path, shown: &str) -> Option<Vec<Vec<u8>>> {
    let text =
        match crate::repository::confined::read_named_string(cert_path, ca::MAX_CERT_BYTES, "read")
        {
            Ok(t) => t,
            Err(e) => {
                d.bad(
                    format!("{shown}: cannot read it ({e})"),
                    "check the path and permissions",
                );
                return None;
            }
        };
    let ders = parse_pem_certs(&text);
    if ders.is_empty() {
        d.bad(
            format!("{shown} holds no PEM certificate"),
            "use the client.cert written by `gitca bundle`",
        );
        return None;
    }
    Some(ders)
}

/// Every certificate parsed; `None` when one cannot be (reported).
fn parse_all<'a>(
    d: &mut Doctor,
    ders: &'a [Vec<u8>],
    shown: &str,
) -> Option<Vec<X509Certificate<'a>>> {
    let parsed: Vec<X509Certificate<'_>> = ders
        .iter()
        .filter_map(|der| {
            x509_parser::parse_x509_certificate(der)
                .ok()
                .map(|(_, c)| c)
        })
        .collect();
    if parsed.len() != ders.len() {
        d.bad(
            format!("{shown} holds a certificate that cannot be parsed"),
            "re-create it with `gitca bundle`",
        );
        return None;
    }
    Some(parsed)
}

/// Where the client certificate is in the file: the first that is no CA (reported when it is
/// not first, which Docker cannot use).
fn find_leaf(d: &mut Doctor, parsed: &[X509Certificate<'_>], shown: &str) -> usize {
    let leaf_at = parsed.iter().position(|c| !is_ca(c)).unwrap_or(0);
    if leaf_at > 0 {
        d.bad(
            format!("{shown} starts with the CA certificate; the client certificate comes {}", ordinal(leaf_at + 1)),
            "Docker reads the first certificate as the client's and then says \"private key does not match public key\": put the client certificate first (gitca bundle does)",
        );
    }
    leaf_at
}

/// Whether the key at `key_path` is the one the certificate certifies.
fn check_key_matches(d: &mut Doctor, key_path: &Path, leaf: &X509Certificate<'_>) {
    let who = crate::authority::subject::rfc4514(leaf.subject());
    match read_client_key(key_path) {
        Ok((_, key)) if crate::authority::pubkey::same_key(&rcgen::PublicKeyData::subject_public_key_info(&key), leaf.public_key().raw) => {
            d.good(format!("the key matches the certificate of {who}"))
        }
        Ok(_) => d.bad(
            format!("{} does not match the certificate of {who}", key_path.display()),
            "use the key that made this certificate's CSR; if it is lost, `gitca request NAME --rotate` makes a new one",
        ),
        Err(e) => d.bad(format!("{e}"), e.help().map(|h| h.to_string()).unwrap_or_default()),
    }
}

/// Whether the certificate is valid now.
fn check_validity(d: &mut Doctor, leaf: &X509Certificate<'_>, now: OffsetDateTime) {
    let v = leaf.validity();
    let (nb, na) = (v.not_before.to_datetime(), v.not_after.to_datetime());
    if now < nb {
        d.bad(
            format!("the certificate is not valid before {}", fmt_time(nb)),
            "check this machine's clock, or wait",
        );
    } else if now >= na {
        d.bad(
            format!("the certificate expired {}", fmt_time(na)),
            "renewal happens in reconcile: pull the CA repository and run `gitca bundle` again (or ask for a reconcile)",
        );
    } else {
        d.good(format!("valid until {}", fmt_time(na)));
    }
}

/// Whether the extended key usage allows TLS client authentication.
fn check_client_eku(d: &mut Doctor, leaf: &X509Certificate<'_>) {
    let eku = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(k) => Some(k.client_auth || k.any),
            _ => None,
        });
    match eku {
        Some(true) => d.good("extended key usage allows TLS client authentication"),
        Some(false) => d.bad(
            "the certificate has no clientAuth extended key usage: the registry (Go) refuses it with \"incompatible key usage\"",
            "issue it from a profile with `extended_key_usage: [client_auth]` (gitca's user and bot profiles)",
        ),
        None => d.note("no extended key usage extension: allowed for any use"),
    }
}

/// Whether the issuer's CRL revokes `serial`; returns whether it does.
fn check_revocation(
    d: &mut Doctor,
    issuer: Option<&CaCert>,
    serial: &str,
    newer: Option<&Newer>,
    cx: &Context<'_>,
) -> bool {
    let issuer_crl = issuer
        .and_then(|i| {
            cx.crls
                .iter()
                .find(|c| c.issuer_der.as_deref() == Some(&i.der[..]))
        })
        .or(if cx.ca.is_none() {
            cx.crls.first()
        } else {
            None
        });
    let revoked_here = issuer_crl.and_then(|crl| crl.revoked.iter().find(|(s, _, _)| *s == serial));
    match (issuer_crl, revoked_here) {
        (Some(_), Some((_, at, reason))) => {
            let fix = match newer {
                Some(n) => n.fix.clone(),
                None => "a revoked certificate never comes back: if you still need access, get re-declared (and, after a key compromise, make a new key with `gitca request NAME --rotate`)".into(),
            };
            d.bad(
                format!("revoked on {} ({reason}): nginx refuses it", fmt_time(*at)),
                fix,
            )
        }
        (Some(_), None) => d.good("not on the current CRL"),
        (None, _) => {}
    }
    revoked_here.is_some()
}

/// Whether each CRL given is current (the root's told apart, as its custodians re-sign it).
fn check_every_crl_date(d: &mut Doctor, issuer: Option<&CaCert>, cx: &Context<'_>) {
    // With an offline root, the anchor's CRL is the root CRL (re-signed in ceremonies).
    let root_der = cx.ca.map(|c| c.der.as_slice());
    let two_levels =
        !cx.intermediates.is_empty() || issuer.is_some_and(|i| Some(i.der.as_slice()) != root_der);
    for crl in cx.crls {
        let root = two_levels && root_der.is_some() && crl.issuer_der.as_deref() == root_der;
        check_crl_dates(d, crl, root, cx.now);
    }
}

/// Finds the leaf's issuer under `anchor` and judges each link: returns the issuer (the
/// anchor itself, or an intermediate), or `None` when the chain is broken (already reported).
fn check_chain(
    d: &mut Doctor,
    leaf: &X509Certificate<'_>,
    rest: &[Vec<u8>],
    anchor: &CaCert,
    cx: &Context<'_>,
) -> Option<CaCert> {
    let signs = |ca: &CaCert| {
        x509_parser::parse_x509_certificate(&ca.der)
            .ok()
            .is_some_and(|(_, c)| {
                leaf.issuer() == c.subject() && leaf.verify_signature(Some(c.public_key())).is_ok()
            })
    };
    if signs(anchor) {
        d.good(format!("issued by {}", anchor.subject));
        return Some(anchor.clone());
    }
    let from_file: Vec<CaCert> = rest
        .iter()
        .filter_map(|der| CaCert::parse(&crate::output::encode::to_pem("CERTIFICATE", der)).ok())
        .collect();
    // Only an intermediate the anchor certified counts (a CA of the same name does not).
    let certified = |c: &&CaCert| ca::verify_ca_signature(c, &anchor.spki_der).is_ok();
    let in_file = from_file.iter().filter(certified).find(|c| signs(c));
    let known = cx.intermediates.iter().filter(certified).find(|c| signs(c));
    let Some(intermediate) = in_file.or(known) else {
        d.bad(
            format!(
                "not issued by this CA ({}); issuer is {}",
                anchor.subject,
                crate::authority::subject::rfc4514(leaf.issuer())
            ),
            "the server trusts only the CA's root (ca/root.crt, or ca/ca.crt of a single-level CA): get a certificate from this CA (gitca request, then reconcile)",
        );
        return None;
    };
    if in_file.is_none() {
        d.bad(
            format!(
                "the intermediate {} is missing from the certificate file: the server cannot build the chain to the root",
                intermediate.subject
            ),
            "client.cert holds the client certificate, then the intermediate: reinstall it with `gitca bundle` (or `gitca deploy cert`)",
        );
    } else {
        d.good(format!(
            "issued by intermediate {}, certified by {}",
            intermediate.subject, anchor.subject
        ));
    }
    check_intermediate_standing(d, intermediate, anchor, cx);
    Some(intermediate.clone())
}

/// Whether the root's CRL revokes the intermediate, and whether the CRLs of the root and of
/// the intermediate were given (nginx needs both).
fn check_intermediate_standing(
    d: &mut Doctor,
    intermediate: &CaCert,
    anchor: &CaCert,
    cx: &Context<'_>,
) {
    // Revoked by the root?
    let serial = x509_parser::parse_x509_certificate(&intermediate.der)
        .ok()
        .map(|(_, c)| ca::serial_hex(c.raw_serial()));
    let root_crl = cx
        .crls
        .iter()
        .find(|c| c.issuer_der.as_deref() == Some(&anchor.der[..]));
    let mut revoked_by_root = false;
    match (root_crl, serial) {
        (Some(crl), Some(serial)) => {
            if let Some((_, at, reason)) = crl.revoked.iter().find(|(s, _, _)| *s == serial) {
                revoked_by_root = true;
                d.bad(
                    format!(
                        "its intermediate {} was revoked by the root on {} ({reason}): nginx refuses every certificate it signed",
                        intermediate.subject,
                        fmt_time(*at)
                    ),
                    "the CA re-issued every certificate under a new intermediate: pull the CA repository and install yours again (gitca bundle, or gitca deploy cert)",
                );
            } else {
                d.good(format!(
                    "intermediate {} is not revoked on the root CRL",
                    intermediate.subject
                ));
            }
        }
        (None, _) if !cx.crls.is_empty() => d.bad(
            format!("no CRL of the root ({}) was given", anchor.subject),
            "nginx checks the CRL of every CA in the chain: ssl_crl must hold the root's CRL and the intermediate's (gitca deploy crl writes both)",
        ),
        _ => {}
    }
    // A revoked intermediate's own CRL is no longer published: its absence is no second problem.
    if !cx.crls.is_empty()
        && !revoked_by_root
        && !cx
            .crls
            .iter()
            .any(|c| c.issuer_der.as_deref() == Some(&intermediate.der[..]))
    {
        d.bad(
            format!("no CRL of intermediate {} was given", intermediate.subject),
            "nginx refuses a client whose intermediate's CRL it lacks: ssl_crl must hold it (gitca deploy crl writes it)",
        );
    }
}

/// A certificate in the repository newer than the installed one, and how to install it.
struct Newer {
    what: String,
    fix: String,
}

/// When the installed certificate (`serial`) is not its identity's newest live one in the
/// ledger: the newer one, and whether it certifies the same key.
fn newer_certificate(
    ledger: &crate::repository::ledger::Ledger,
    serial: &str,
    now: OffsetDateTime,
) -> Option<Newer> {
    let installed = ledger.records.iter().find(|r| r.serial == serial)?;
    let newest = ledger.current(&installed.identity, now)?;
    if newest.serial == installed.serial {
        return None;
    }
    let name = &installed.identity;
    let same_key = newest.key_sha256 == installed.key_sha256;
    Some(Newer {
        what: format!(
            "a newer certificate of {name} is in the CA repository: {} (valid until {}){}",
            newest.serial,
            fmt_time(newest.not_after),
            if same_key {
                ", for this same key"
            } else {
                ", for a new key"
            }
        ),
        fix: if same_key {
            format!("install the new certificate: gitca bundle {name} --key THIS-KEY --registry HOST:PORT (or gitca deploy cert to keep it current)")
        } else {
            format!("install the new certificate with the new key it was issued for: gitca bundle {name} --key NEW-KEY --registry HOST:PORT")
        },
    })
}

fn ordinal(n: usize) -> String {
    match n {
        2 => "second".into(),
        3 => "third".into(),
        n => format!("{n}th"),
    }
}

/// The CA certificates after the leaf in the certificate file (`--cert`, or certs.d's
/// `client.cert`); unverified (the caller checks them against the anchor).
fn chain_intermediates(args: &DoctorOptions) -> Vec<CaCert> {
    let path = match (&args.cert, &args.certs_dir) {
        (Some(c), _) => c.clone(),
        (None, Some(d)) => d.join("client.cert"),
        _ => return Vec::new(),
    };
    let Ok(text) =
        crate::repository::confined::read_named_string(&path, ca::MAX_CERT_BYTES * 4, "read")
    else {
        return Vec::new();
    };
    pem::parse_many(&text)
        .unwrap_or_default()
        .iter()
        .skip(1)
        .filter(|b| b.tag() == "CERTIFICATE")
        .filter_map(|b| CaCert::parse(&pem::encode(b)).ok())
        .collect()
}

/// The top-level entry point for `gitca doctor`. Exit 0 only when all is well.
pub fn run_doctor(
    dir: &Path,
    now: OffsetDateTime,
    args: &DoctorOptions,
    out: &mut dyn Write,
) -> Result<u8> {
    let repo = CaRepo::open(dir).ok();
    let mut d = Doctor {
        findings: Vec::new(),
    };
    // Inside the CA repository: its anchor (the root, with an offline root), intermediates and
    // CRLs, as the CA sealed them; the sealed ledger says which certificate is the newest.
    let outputs = repo
        .as_ref()
        .and_then(|r| crate::repository::load::outputs(r).ok());
    let ca = anchor_of(args, outputs.as_ref())?;
    let (mut intermediates, repo_crls) = repository_chain(outputs.as_ref());
    // Outside the repository, the intermediate comes with the certificate (client.cert is leaf
    // + issuer): it counts once the pinned anchor has signed it.
    if let Some(anchor) = &ca {
        for c in chain_intermediates(args) {
            if c.der != anchor.der
                && ca::verify_ca_signature(&c, &anchor.spki_der).is_ok()
                && !intermediates.iter().any(|i| i.der == c.der)
            {
                intermediates.push(c);
            }
        }
    }
    let cas: Vec<&CaCert> = ca.iter().chain(intermediates.iter()).collect();
    let crls = match (&args.crl, &outputs) {
        (Some(p), _) => {
            let text =
                crate::repository::confined::read_named_string(p, ca::MAX_CRL_BYTES, "read")?;
            read_crls(&text, &p.display().to_string(), &cas)?
        }
        (None, Some(_)) => read_crls(&repo_crls, CRL_FILE, &cas)?,
        _ => Vec::new(),
    };
    if ca.is_none() {
        d.note(
            "no CA certificate given (--ca, or run inside the CA repository): issuer not checked",
        );
    }
    if crls.is_empty() {
        d.note("no CRL given (--crl, or run inside the CA repository): revocation not checked");
    }
    let cx = Context {
        ca: ca.as_ref(),
        intermediates: &intermediates,
        crls: &crls,
        ledger: outputs.as_ref().map(|o| &o.ledger),
        now,
    };
    let unjudged = examine(&mut d, args, &cx)?;
    Ok(report_findings(&d, &unjudged, out))
}

/// The CA the server trusts: `--ca`, the repository's anchor, or the certs.d directory's
/// `ca.crt`.
fn anchor_of(
    args: &DoctorOptions,
    outputs: Option<&crate::repository::load::Outputs>,
) -> Result<Option<CaCert>> {
    Ok(match (&args.ca, outputs, &args.certs_dir) {
        (Some(p), _, _) => Some(CaCert::parse(
            &crate::repository::confined::read_named_string(p, ca::MAX_CERT_BYTES, "read")?,
        )?),
        (None, Some(o), _) => Some(o.hierarchy.as_ref().map_or(&o.ca, |h| &h.root).clone()),
        (None, None, Some(dir)) => Dir::open(dir)
            .and_then(|d| d.read_string("ca.crt", ca::MAX_CERT_BYTES))
            .ok()
            .map(|t| CaCert::parse(&t))
            .transpose()?,
        _ => None,
    })
}

/// The repository's intermediates (current and retiring) and its CRLs (PEM), when doctor runs
/// inside it.
fn repository_chain(outputs: Option<&crate::repository::load::Outputs>) -> (Vec<CaCert>, String) {
    let mut intermediates: Vec<CaCert> = Vec::new();
    let mut repo_crls = String::new();
    if let Some(o) = outputs {
        match &o.hierarchy {
            Some(h) => {
                intermediates.push(o.ca.clone());
                repo_crls.push_str(&h.root_crl_text);
                repo_crls.push_str(&o.crl_text);
                if let Some(p) = &h.previous {
                    intermediates.push(p.cert.clone());
                    repo_crls.push_str(&p.crl_text);
                }
            }
            None => repo_crls.push_str(&o.crl_text),
        }
    }
    (intermediates, repo_crls)
}

/// Checks the certificate and key, or the certs.d directory (and the registry with
/// `--server`); returns what could not be judged.
fn examine(d: &mut Doctor, args: &DoctorOptions, cx: &Context<'_>) -> Result<Vec<String>> {
    // What doctor could not judge, said instead of "all is well".
    let mut unjudged: Vec<String> = Vec::new();
    match (&args.cert, &args.certs_dir) {
        (Some(cert), _) => check_pair(d, cert, args.key.as_deref(), cx),
        (None, Some(dir)) => {
            check_certs_dir(d, dir, cx)?;
            match &args.server {
                Some(server) => check_server(d, dir, server, cx.now),
                None => unjudged.push(
                    "the registry's server certificate was not checked: pass --server HOST:PORT, or, if it comes from a private CA, install that CA with `gitca bundle NAME --key KEY --registry HOST:PORT --server-ca FILE` (clients refuse it otherwise: \"x509: certificate signed by unknown authority\")".into(),
                ),
            }
        }
        (None, None) => unreachable!("clap requires one"),
    }
    Ok(unjudged)
}

/// Prints the findings and the verdict; the exit code: 0 when no problem was found.
fn report_findings(d: &Doctor, unjudged: &[String], out: &mut dyn Write) -> u8 {
    let problems = d.findings.iter().filter(|f| !f.ok).count();
    for f in &d.findings {
        if f.ok {
            let _ = writeln!(out, "  ✔ {}", f.text);
        } else {
            let _ = writeln!(out, "  ✘ {}\n    fix: {}", f.text, f.fix);
        }
    }
    if problems == 0 && !unjudged.is_empty() {
        for u in unjudged {
            let _ = writeln!(out, "  ? not checked: {u}");
        }
        let _ = writeln!(
            out,
            "No problem found in what was checked; see what was not, above."
        );
        0
    } else if problems == 0 {
        let _ = writeln!(
            out,
            "All is well: the server should accept this client certificate."
        );
        0
    } else {
        let _ = writeln!(
            out,
            "{problems} problem(s): the server would refuse this client certificate."
        );
        1
    }
}

/// Judges a Docker/Podman certs.d directory: its name, each client pair, and its CA roots.
fn check_certs_dir(d: &mut Doctor, dir: &Path, cx: &Context<'_>) -> Result<()> {
    check_dir_name(d, dir);
    let listing = Dir::open(dir)?;
    let files: Vec<String> = listing
        .list("")?
        .into_iter()
        .filter(|(_, kind)| *kind == crate::repository::confined::Kind::File)
        .map(|(name, _)| name)
        .collect();
    let stem = |f: &str, ext: &str| f.strip_suffix(ext).map(str::to_string);
    let mut pairs = 0;
    for f in &files {
        if let Some(s) = stem(f, ".cert") {
            if files.contains(&format!("{s}.key")) {
                pairs += 1;
                check_pair(d, &dir.join(f), Some(&dir.join(format!("{s}.key"))), cx);
            } else {
                d.bad(
                    format!("{f} has no {s}.key beside it"),
                    format!(
                        "Docker pairs X.cert with X.key: add {s}.key (gitca bundle writes both)"
                    ),
                );
            }
        } else if let Some(s) = stem(f, ".key") {
            if !files.contains(&format!("{s}.cert")) {
                let hint = if files.contains(&format!("{s}.crt")) {
                    format!("rename {s}.crt to {s}.cert: Docker treats every .crt file as a CA root, not as a client certificate")
                } else {
                    format!("add {s}.cert (the client certificate, first in the file)")
                };
                d.bad(format!("{f} has no {s}.cert beside it"), hint);
            }
        } else if f.ends_with(".crt") {
            check_crt_file(d, &listing, f);
        } else if f.ends_with(".pem") {
            d.note(format!(
                "{f} is ignored by Docker (it reads .crt, .cert and .key only)"
            ));
        }
    }
    if pairs == 0 && !d.findings.iter().any(|f| !f.ok) {
        d.bad(
            "no client certificate (X.cert with X.key) in the directory",
            "run gitca bundle NAME --key KEY --registry HOST:PORT",
        );
    }
    Ok(())
}

/// Whether Docker uses a directory of this name: not for a loopback registry, and without a
/// port only for port 443.
fn check_dir_name(d: &mut Doctor, dir: &Path) {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if crate::relying::bundle::docker_ignores_certs_d(&name) {
        let docker = dir.parent().is_some_and(|p| p.ends_with("docker/certs.d"));
        let text = crate::relying::bundle::docker_loopback_warning(&name);
        if docker {
            d.bad(
                format!("`{name}` is a loopback registry: Docker will not use this directory"),
                text,
            );
        } else {
            d.note(format!("if Docker reads this directory: {text}"));
        }
    }
    if !name.contains(':') {
        d.note(format!(
            "directory `{name}` has no port: Docker uses it for {name}:443 only; for a registry on another port name it `{name}:PORT`"
        ));
    }
}

/// A `.crt` file, which Docker reads as a CA root: refused when it holds a client certificate.
fn check_crt_file(d: &mut Doctor, listing: &Dir, f: &str) {
    let text = listing
        .read_string(f, ca::MAX_CERT_BYTES)
        .unwrap_or_default();
    let client = parse_pem_certs(&text)
        .first()
        .and_then(|der| {
            x509_parser::parse_x509_certificate(der)
                .ok()
                .map(|(_, c)| !is_ca(&c))
        })
        .unwrap_or(false);
    if client {
        d.bad(
            format!("{f} is a client certificate, but Docker reads every .crt file as a CA root"),
            format!(
                "rename it to {}.cert (with its key as {}.key)",
                f.trim_end_matches(".crt"),
                f.trim_end_matches(".crt")
            ),
        );
    } else {
        d.good(format!("{f}: CA root"));
    }
}

/// Longest doctor waits for the registry: connecting, then the TLS handshake.
const SERVER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The system's roots, where Debian, Fedora and Alpine keep them.
const SYSTEM_ROOTS: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Records the server's certificates during the handshake and accepts them: they are judged
/// afterwards, against the client's trust, so that doctor can say why they would be refused.
#[derive(Debug)]
struct Recorder {
    seen: std::sync::Mutex<Vec<Vec<u8>>>,
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let mut seen = self.seen.lock().expect("not poisoned");
        seen.push(end_entity.to_vec());
        seen.extend(intermediates.iter().take(8).map(|c| c.to_vec()));
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The certificates `server` presents (leaf first), fetched with a bounded TLS handshake.
fn server_chain(host: &str, port: u16) -> std::result::Result<Vec<Vec<u8>>, String> {
    use std::net::ToSocketAddrs;
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let recorder = Arc::new(Recorder {
        seen: std::sync::Mutex::new(Vec::new()),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| format!("`{host}` is not a host name or address"))?;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut sock = std::net::TcpStream::connect_timeout(&addr, SERVER_TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = sock.set_read_timeout(Some(SERVER_TIMEOUT));
    let _ = sock.set_write_timeout(Some(SERVER_TIMEOUT));
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    // A handful of round trips at most; the server may end it once it has sent its
    // certificate (a client certificate is required), which is all doctor needs.
    for _ in 0..16 {
        if !conn.is_handshaking() || !recorder.seen.lock().expect("not poisoned").is_empty() {
            break;
        }
        if let Err(e) = conn.complete_io(&mut sock) {
            if recorder.seen.lock().expect("not poisoned").is_empty() {
                return Err(format!("TLS handshake with {addr} failed: {e}"));
            }
            break;
        }
    }
    let seen = recorder.seen.lock().expect("not poisoned").clone();
    if seen.is_empty() {
        return Err(format!("{addr} sent no certificate"));
    }
    Ok(seen)
}

/// The registry's server certificate, judged as the client will: against the `.crt` files of
/// the certs.d directory (Docker and Podman read each as a CA root) and the system's roots,
/// for the host name the client connects to.
fn check_server(d: &mut Doctor, dir: &Path, server: &str, now: OffsetDateTime) {
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let Some((host, port)) = parse_server(d, server) else {
        return;
    };
    let chain = match server_chain(&host, port) {
        Ok(c) => c,
        Err(why) => {
            d.bad(
                format!("the registry's server certificate could not be fetched: {why}"),
                "check that the registry (or the nginx in front of it) listens there",
            );
            return;
        }
    };
    let (roots, local) = client_roots(dir);
    let subject = x509_parser::parse_x509_certificate(&chain[0])
        .map(|(_, c)| crate::authority::subject::rfc4514(c.subject()))
        .unwrap_or_else(|_| "?".into());
    let Some(verifier) = server_verifier(d, roots) else {
        return;
    };
    let leaf = CertificateDer::from(chain[0].clone());
    let rest: Vec<CertificateDer<'static>> = chain[1..]
        .iter()
        .cloned()
        .map(CertificateDer::from)
        .collect();
    let name = match ServerName::try_from(host.clone()) {
        Ok(n) => n,
        Err(_) => return,
    };
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        now.unix_timestamp().max(0) as u64,
    ));
    use rustls::client::danger::ServerCertVerifier;
    match verifier.verify_server_cert(&leaf, &rest, &name, &[], at) {
        Ok(_) => d.good(format!(
            "the registry's server certificate ({subject}) is trusted for {host}{}",
            if local.is_empty() {
                " by the system's roots".to_string()
            } else {
                format!(" (this directory's CA roots: {}, and the system's)", local.join(", "))
            }
        )),
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => d.bad(
            format!(
                "the registry's server certificate ({subject}) is signed by an authority the client does not trust: Docker, Podman and skopeo fail with \"x509: certificate signed by unknown authority\""
            ),
            format!(
                "install the CA that signed it beside the client certificate: gitca bundle NAME --key KEY --registry {server} --server-ca FILE (it becomes server-ca.crt); or have this CA issue the registry's certificate, which the bundle's ca.crt then verifies (docs/deploy.md, \"Server certificates\")"
            ),
        ),
        Err(rustls::Error::InvalidCertificate(why)) => {
            let (what, fix) = server_cert_refusal(&why, &host);
            d.bad(
                format!("the registry's server certificate ({subject}) {what}"),
                format!("{fix}; checked at {server}"),
            )
        }
        Err(e) => d.bad(
            format!("the registry's server certificate ({subject}) would be refused: {e}"),
            format!("fix the server certificate of {server} (its names, dates or chain)"),
        ),
    }
}

/// `--server` as a host (brackets of an IPv6 address dropped) and a port (443 by default);
/// `None` when it is not HOST:PORT (reported).
fn parse_server(d: &mut Doctor, server: &str) -> Option<(String, u16)> {
    match crate::relying::bundle::parse_host_port(server) {
        Ok((h, p)) => Some((h.trim_matches(['[', ']']).to_string(), p.unwrap_or(443))),
        Err(why) => {
            d.bad(
                format!(
                    "--server `{}` is not HOST:PORT: {why}",
                    crate::output::encode::terminal(server)
                ),
                "pass the registry's address, e.g. registry.example.com:5000",
            );
            None
        }
    }
}

/// The roots a client trusts: each `.crt` file of the certs.d directory (their names returned)
/// and the system's.
fn client_roots(dir: &Path) -> (rustls::RootCertStore, Vec<String>) {
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let mut local = Vec::new();
    if let Ok(listing) = Dir::open(dir) {
        for (f, kind) in listing.list("").unwrap_or_default() {
            if kind != crate::repository::confined::Kind::File || !f.ends_with(".crt") {
                continue;
            }
            let text = listing
                .read_string(&f, ca::MAX_CERT_BYTES)
                .unwrap_or_default();
            let (added, _) = roots.add_parsable_certificates(
                parse_pem_certs(&text).into_iter().map(CertificateDer::from),
            );
            if added > 0 {
                local.push(f);
            }
        }
    }
    for path in SYSTEM_ROOTS {
        if let Ok(text) =
            crate::repository::confined::read_named_string(Path::new(path), 8 << 20, "read")
        {
            roots.add_parsable_certificates(
                parse_pem_certs(&text).into_iter().map(CertificateDer::from),
            );
            break;
        }
    }
    (roots, local)
}

/// A verifier of server certificates under `roots`; `None` when there is no root (reported).
fn server_verifier(
    d: &mut Doctor,
    roots: rustls::RootCertStore,
) -> Option<std::sync::Arc<rustls::client::WebPkiServerVerifier>> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    match rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider,
    )
    .build()
    {
        Ok(v) => Some(v),
        Err(e) => {
            d.bad(
                format!("no CA to check the registry's server certificate against: {e}"),
                "install the system's CA certificates (ca-certificates), or the registry's CA with `gitca bundle … --server-ca FILE`",
            );
            None
        }
    }
}

/// What is wrong with a server certificate a client refuses (other than an unknown issuer),
/// and the fix.
fn server_cert_refusal(why: &rustls::CertificateError, host: &str) -> (String, &'static str) {
    use rustls::CertificateError as C;
    match why {
        C::NotValidForName | C::NotValidForNameContext { .. } => (
            format!("is not for the name {host}: clients refuse it (\"certificate is valid for …, not {host}\")"),
            "connect by a name the certificate carries, or add the name to the server's dns_names (ip_addresses) in review (docs/deploy.md, \"Server certificates\")",
        ),
        C::Expired | C::ExpiredContext { .. } => (
            "has expired: every client refuses it".to_string(),
            "install the renewed certificate on the server (gitca deploy cert NAME --server-dir … --reload 'nginx -s reload')",
        ),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => (
            "is not a TLS server certificate (no serverAuth extended key usage)".to_string(),
            "serve a certificate of the `server` profile (declared under `servers:`), not a client's",
        ),
        _ => (
            format!("would be refused: {why:?}"),
            "fix the server certificate (its names, dates or chain)",
        ),
    }
}
