//! What a relying party checks before it installs anything (`gitca deploy`): every CRL of the
//! chain and a leaf's chain, against the one CA certificate it pinned — a single-level CA, or
//! the offline root (see `authority::hierarchy`). Intermediates may come from the source; they
//! count only once they verify under the pin.
//!
//! The CRL bundle (`crls.pem` in a published tree) holds the intermediates' certificates and
//! every CRL: the pinned CA's, and each intermediate's. nginx checks the CRL of every CA in the
//! chain and refuses every client when one is missing or expired, so the bundle is accepted
//! only whole: the pinned CA's CRL, a CRL for every unexpired intermediate the root has not
//! revoked, all of them current. What a bundle must hold beyond itself (every issuer installed
//! before, nothing older) is `authority::floors`'s.

use time::OffsetDateTime;

use crate::authority::ca::{self, id_of, CaCert, CrlInfo};
use crate::time::fmt_time;

/// How far in the future a thisUpdate or notBefore may be (clocks drift).
pub const SKEW: time::Duration = time::Duration::minutes(5);

/// One CRL and the CA that signed it.
#[derive(Debug, Clone)]
pub struct IssuedCrl {
    /// [`id_of`] the issuing CA's certificate.
    pub issuer: String,
    pub issuer_subject: String,
    pub info: CrlInfo,
    pub pem: String,
}

/// A verified CRL bundle.
#[derive(Debug, Clone)]
pub struct Crls {
    /// The pinned CA's CRL first, then the intermediates'.
    pub crls: Vec<IssuedCrl>,
    /// Intermediates that verified under the pin.
    pub intermediates: Vec<CaCert>,
}

impl Crls {
    /// What nginx's `ssl_crl` reads: every CRL, PEM, the pinned CA's first.
    pub fn render(&self) -> String {
        self.crls.iter().map(|c| c.pem.as_str()).collect()
    }

    /// The earliest nextUpdate: when nginx starts refusing everyone.
    pub fn next_update(&self) -> Option<OffsetDateTime> {
        self.crls.iter().filter_map(|c| c.info.next_update).min()
    }

    /// Whether the CRL of `issuer` lists `serial`.
    pub fn lists(&self, issuer: &str, serial: &str) -> bool {
        self.crls
            .iter()
            .any(|c| c.issuer == issuer && c.info.serials.iter().any(|s| s == serial))
    }

    pub fn of(&self, issuer: &str) -> Option<&IssuedCrl> {
        self.crls.iter().find(|c| c.issuer == issuer)
    }
}

/// Splits PEM text into its certificates and CRLs (anything else is refused).
fn blocks(text: &str) -> Result<(Vec<Vec<u8>>, Vec<String>), String> {
    let parsed = pem::parse_many(text).map_err(|_| "not PEM".to_string())?;
    if parsed.is_empty() {
        return Err("no PEM block in it".into());
    }
    let mut certs = Vec::new();
    let mut crls = Vec::new();
    for b in parsed {
        match b.tag() {
            "CERTIFICATE" => certs.push(b.into_contents()),
            "X509 CRL" => crls.push(crate::output::encode::to_pem("X509 CRL", b.contents())),
            other => return Err(format!("an unexpected `{other}` block")),
        }
    }
    Ok((certs, crls))
}

/// Verifies a CRL bundle against `pinned` at `now` (see the module's rules).
pub fn verify_crls(text: &str, pinned: &CaCert, now: OffsetDateTime) -> Result<Crls, String> {
    let (certs, crl_pems) = blocks(text).map_err(|e| format!("the fetched CRLs: {e}"))?;
    let intermediates = certified_intermediates(certs, pinned)?;
    let mut crls: Vec<IssuedCrl> = Vec::new();
    let cas: Vec<&CaCert> = std::iter::once(pinned)
        .chain(intermediates.iter())
        .collect();
    for pem in crl_pems {
        let Some(crl) = attribute(&pem, &cas) else {
            return Err(
                "a fetched CRL is refused: it is signed neither by the pinned CA nor by an intermediate it certified".into(),
            );
        };
        if crls.iter().any(|c| c.issuer == crl.issuer) {
            return Err(format!(
                "two CRLs of {} in one bundle: refused",
                crl.issuer_subject
            ));
        }
        check_current(&crl, now)?;
        crls.push(crl);
    }
    let pinned_id = id_of(&pinned.der);
    let Some(at) = crls.iter().position(|c| c.issuer == pinned_id) else {
        return Err("the pinned CA's own CRL is missing: refused (nginx needs the CRL of every CA in the chain)".into());
    };
    let own = crls.remove(at);
    // One order whatever the source's: the same CRLs are the same installed file.
    crls.sort_by(|a, b| a.issuer.cmp(&b.issuer));
    crls.insert(0, own);
    for i in &intermediates {
        let id = id_of(&i.der);
        let revoked = serial_of(i).is_some_and(|s| crls[0].info.serials.contains(&s));
        // An expired intermediate's clients fail anyway: nginx needs its CRL no more.
        if !revoked && i.not_after > now && !crls.iter().any(|c| c.issuer == id) {
            return Err(format!(
                "the CRL of intermediate {} is missing: refused (nginx would refuse its clients)",
                i.subject
            ));
        }
    }
    Ok(Crls {
        crls,
        intermediates,
    })
}

/// The intermediates fetched with the CRLs, each certified by the pinned CA, once each.
fn certified_intermediates(certs: Vec<Vec<u8>>, pinned: &CaCert) -> Result<Vec<CaCert>, String> {
    let mut intermediates: Vec<CaCert> = Vec::new();
    for der in certs {
        if der == pinned.der {
            continue;
        }
        let cert = CaCert::parse(&crate::output::encode::to_pem("CERTIFICATE", &der))
            .map_err(|_| "a fetched intermediate is not a usable CA certificate".to_string())?;
        ca::verify_ca_signature(&cert, &pinned.spki_der).map_err(|_| {
            format!(
                "the fetched intermediate {} is not certified by the pinned CA: refused",
                cert.subject
            )
        })?;
        if !intermediates.iter().any(|i| i.der == cert.der) {
            intermediates.push(cert);
        }
    }
    Ok(intermediates)
}

/// Refuses a CRL not yet valid (beyond the clock skew allowed) or expired at `now`.
fn check_current(crl: &IssuedCrl, now: OffsetDateTime) -> Result<(), String> {
    let info = &crl.info;
    if info.this_update > now + SKEW {
        return Err(format!(
            "the fetched CRL #{} of {} is not valid before {}: refused (check this machine's clock)",
            info.number,
            crl.issuer_subject,
            fmt_time(info.this_update)
        ));
    }
    match info.next_update {
        Some(n) if n > now => {}
        Some(n) => {
            return Err(format!(
                "the fetched CRL #{} of {} expired {}: refused (the CA has not re-signed it)",
                info.number,
                crl.issuer_subject,
                fmt_time(n)
            ))
        }
        None => return Err("a fetched CRL has no nextUpdate: refused".into()),
    }
    Ok(())
}

/// The CRL `pem` as issued by the first of `cas` whose signature on it verifies, if any.
pub fn attribute(pem: &str, cas: &[&CaCert]) -> Option<IssuedCrl> {
    cas.iter().find_map(|ca| {
        CrlInfo::parse(pem, Some(ca)).ok().map(|info| IssuedCrl {
            issuer: id_of(&ca.der),
            issuer_subject: ca.subject.clone(),
            info,
            pem: pem.to_string(),
        })
    })
}

/// The serial of a CA certificate (lowercase hex), as CRLs list it.
pub fn serial_of(cert: &CaCert) -> Option<String> {
    x509_parser::parse_x509_certificate(&cert.der)
        .ok()
        .map(|(_, c)| ca::serial_hex(c.raw_serial()))
}

/// A leaf certificate that verified, with the chain to install.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub der: Vec<u8>,
    /// The leaf, then its issuer (the intermediate below a root, or the pinned CA itself).
    pub chain_pem: String,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub spki: Vec<u8>,
    /// The subject's common name (the identity's name, or its `common_name`).
    pub cn: Option<String>,
}

/// The first common name of a certificate's subject.
pub fn common_name(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<String> {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .map(str::to_string)
}

/// Verifies a leaf's chain (the leaf first, then its intermediate if any) against `pinned`:
/// the leaf is signed by the pin or by an intermediate the pin certified and did not revoke,
/// and is not revoked itself. Currency is the caller's to judge.
pub fn verify_leaf(text: &str, pinned: &CaCert, crls: &Crls) -> Result<Leaf, String> {
    let (certs, _) = blocks(text).map_err(|e| format!("the fetched certificate: {e}"))?;
    let leaf = certs.first().ok_or("no certificate in the fetched file")?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| format!("not X.509: {e}"))?;
    let serial = ca::serial_hex(cert.raw_serial());
    let signed_by = |ca: &CaCert| {
        <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(
            &ca.spki_der,
        )
        .ok()
        .is_some_and(|(_, spki)| cert.verify_signature(Some(&spki)).is_ok())
    };
    // The issuer: the pin itself, or an intermediate from the file or the CRL bundle that
    // verifies under the pin.
    let mut candidates: Vec<CaCert> = crls.intermediates.clone();
    for der in certs.iter().skip(1) {
        if let Ok(c) = CaCert::parse(&crate::output::encode::to_pem("CERTIFICATE", der)) {
            if ca::verify_ca_signature(&c, &pinned.spki_der).is_ok() {
                candidates.push(c);
            }
        }
    }
    let issuer: CaCert = if signed_by(pinned) {
        pinned.clone()
    } else {
        candidates
            .into_iter()
            .find(|c| c.der != pinned.der && signed_by(c))
            .ok_or_else(|| {
                "the fetched certificate is not signed by the pinned CA or an intermediate it certified: refused".to_string()
            })?
    };
    let pinned_id = id_of(&pinned.der);
    let issuer_id = id_of(&issuer.der);
    if issuer_id != pinned_id {
        if serial_of(&issuer).is_some_and(|s| crls.lists(&pinned_id, &s)) {
            return Err(format!(
                "the fetched certificate {serial} was signed by intermediate {}, which the root revoked: refused",
                issuer.subject
            ));
        }
        if crls.of(&issuer_id).is_none() {
            return Err(format!(
                "no CRL of intermediate {} was fetched: refused (its revocations cannot be checked)",
                issuer.subject
            ));
        }
    }
    if crls.lists(&issuer_id, &serial) {
        return Err(format!(
            "the fetched certificate {serial} is revoked on the CA's CRL: refused"
        ));
    }
    // What a client presents: the leaf, then its issuer (from the pin or verified under it,
    // never an unverified certificate from the source).
    let mut chain_pem = crate::output::encode::to_pem("CERTIFICATE", leaf);
    chain_pem.push_str(&issuer.pem);
    let v = cert.validity();
    Ok(Leaf {
        der: leaf.clone(),
        chain_pem,
        serial,
        not_before: v.not_before.to_datetime(),
        not_after: v.not_after.to_datetime(),
        spki: cert.public_key().raw.to_vec(),
        cn: common_name(&cert),
    })
}
