//! The certificate files reconcile writes (`certs/NAME.crt`): what makes a file the certificate
//! the ledger records, and how a file edited since reconcile wrote it is found and put back.
//!
//! `certs/` is an output, like the ledger and the CRL, and as hostile as any file a merge can
//! touch: a self-signed certificate carrying alice's serial, published, makes every `deploy
//! cert` of alice's refuse it and her machines go stale. So:
//!
//! - a certificate file is what the ledger records only if it parses, carries the recorded
//!   serial, dates, key and CN, and verifies under the issuer the ledger names ([`verify`]);
//! - reconcile writes `certs/` only in commits that also write the seal, so any change to
//!   `certs/` between the commit of the seal in use and HEAD is a hand edit ([`edited`]):
//!   reconcile writes back what that commit holds, and `publish` publishes that version, after
//!   verifying it, and nothing that does not verify.

use x509_parser::prelude::FromDer;

use crate::authority::ca::{self, CaCert};
use crate::error::Result;
use crate::repository::git::CaRepo;
use crate::repository::history::History;
use crate::repository::ledger::Record;
use crate::repository::seal::Standing;
use crate::time::fmt_time;

/// What a certificate file must be: the ledger's record, signed by `issuer`, named `cn`.
pub struct Expected<'a> {
    pub record: &'a Record,
    pub issuer: &'a CaCert,
    /// Where the issuer's certificate lives, for messages.
    pub issuer_path: &'a str,
    /// The CN the declaration asks for, when known (publish reads no declarations: the
    /// serial, key and issuer's signature already tie the file to the ledger's record).
    pub cn: Option<&'a str>,
}

/// Whether `text` is the certificate `e` describes; the reason when it is not.
pub fn verify(text: &str, e: &Expected<'_>) -> std::result::Result<(), String> {
    let blocks = pem::parse_many(text).map_err(|_| "not PEM".to_string())?;
    let first = blocks
        .first()
        .filter(|b| b.tag() == "CERTIFICATE")
        .ok_or("does not start with a certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(first.contents())
        .map_err(|_| "not an X.509 certificate".to_string())?;
    let serial = ca::serial_hex(cert.raw_serial());
    if serial != e.record.serial {
        return Err(format!(
            "holds serial {serial}, but the ledger's current certificate is {}",
            e.record.serial
        ));
    }
    let verified = x509_parser::x509::SubjectPublicKeyInfo::from_der(&e.issuer.spki_der)
        .ok()
        .is_some_and(|(_, spki)| cert.verify_signature(Some(&spki)).is_ok());
    if !verified {
        return Err(format!(
            "its signature does not verify against {}",
            e.issuer_path
        ));
    }
    let v = cert.validity();
    if v.not_before.to_datetime() != e.record.not_before
        || v.not_after.to_datetime() != e.record.not_after
    {
        return Err(format!(
            "valid {} to {}, but the ledger records {} to {}",
            fmt_time(v.not_before.to_datetime()),
            fmt_time(v.not_after.to_datetime()),
            fmt_time(e.record.not_before),
            fmt_time(e.record.not_after)
        ));
    }
    let key = crate::authority::pubkey::canonical(cert.public_key().raw).map(|k| k.id);
    if key.as_deref() != Ok(e.record.key_sha256.as_str()) {
        return Err("its public key is not the one the ledger records".into());
    }
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok());
    if let Some(want) = e.cn.filter(|w| cn != Some(*w)) {
        return Err(format!(
            "its CN is {}, not `{want}`",
            cn.map_or("missing".into(), |c| format!(
                "`{}`",
                crate::output::encode::terminal(c)
            )),
        ));
    }
    Ok(())
}

/// A file under `certs/` that differs from what reconcile last wrote.
#[derive(Debug, Clone)]
pub struct Edited {
    pub path: String,
    /// What the commit of the seal in use holds there (`None`: no such file).
    pub sealed: Option<git2::Oid>,
}

/// The commit (index into `history`) that wrote the seal in use.
fn sealed_commit(history: &History, standing: &Standing) -> Option<git2::Oid> {
    match standing {
        Standing::Recovered { commit, .. } => git2::Oid::from_str(commit).ok(),
        Standing::Sealed(_) => history
            .runs(crate::layout::SEAL_FILE)
            .first()
            .filter(|r| r.blob.is_some())
            .and_then(|r| history.commit(r.oldest)),
        Standing::Unsealed => None,
    }
}

/// The files under `certs/` that differ between the commit of the seal in use and HEAD: hand
/// edits, since reconcile writes `certs/` only together with the seal. Compares trees only
/// (no blob is read); nothing for a repository without seals.
pub fn edited(repo: &CaRepo, standing: &Standing) -> Result<Vec<Edited>> {
    let history = repo.history()?;
    let (Some(sealed), Some(head)) = (sealed_commit(history, standing), history.commit(0)) else {
        return Ok(Vec::new());
    };
    if sealed == head {
        return Ok(Vec::new());
    }
    let old = repo.git.find_commit(sealed)?.tree()?;
    let new = repo.git.find_commit(head)?.tree()?;
    let certs_id = |t: &git2::Tree<'_>| t.get_name("certs").map(|e| e.id());
    if certs_id(&old) == certs_id(&new) {
        return Ok(Vec::new());
    }
    let mut opts = git2::DiffOptions::new();
    opts.pathspec("certs");
    let diff = repo
        .git
        .diff_tree_to_tree(Some(&old), Some(&new), Some(&mut opts))?;
    let mut out = Vec::new();
    for d in diff.deltas() {
        let Some(p) = d.new_file().path().or(d.old_file().path()) else {
            continue;
        };
        let path = p.to_string_lossy().to_string();
        let sealed = (!d.old_file().id().is_zero()).then(|| d.old_file().id());
        out.push(Edited { path, sealed });
    }
    Ok(out)
}

/// The text of certificate file `edit` as the seal's commit holds it.
pub fn sealed_text(repo: &CaRepo, edit: &Edited) -> Option<String> {
    let blob = edit.sealed?;
    crate::repository::history::read_blob(&repo.git, blob, ca::MAX_CERT_BYTES)
        .and_then(|b| String::from_utf8(b).ok())
}

/// A line for people about the edited files.
pub fn describe(edits: &[Edited]) -> Option<String> {
    let first = edits.first()?;
    Some(format!(
        "{}{} changed since reconcile wrote {} (a hand edit): the versions reconcile wrote stand",
        first.path,
        if edits.len() > 1 {
            format!(" and {} more file(s) under certs/", edits.len() - 1)
        } else {
            String::new()
        },
        if edits.len() > 1 { "them" } else { "it" }
    ))
}
