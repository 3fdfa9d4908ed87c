//! `gitca publish DIR`: the CA's public outputs as a static tree any web server, object store
//! or Pages site can serve, for relying parties (`gitca deploy`) and CRL distribution points.
//!
//! ```text
//! DIR/ca.crt          the issuing CA's certificate (PEM)
//! DIR/ca.crl          its current CRL, DER (as CRL distribution points serve it)
//! DIR/ca.crl.pem      the same CRL, PEM
//! DIR/crls.pem        every CRL of the chain with the intermediates (what `gitca deploy crl`
//!                     fetches; its CRLs are what nginx's ssl_crl reads)
//! DIR/certs/NAME.crt  the current certificate (chain) of each identity holding one
//! DIR/index.json      a manifest: CRL numbers and dates, each file's SHA-256
//! ```
//!
//! With an offline root (see [`crate::authority::hierarchy`]) also `root.crt` (the anchor relying parties
//! pin), `root.crl` (DER) and `root.crl.pem`.
//!
//! Only what the CA sealed is published (see [`crate::repository::seal`]): a hand edit of the repository's
//! ledger or CRL is never published. Nothing here is secret; relying parties verify everything
//! against the CA certificate they pinned, never against one from this tree.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::authority::ca;
use crate::error::{Error, Result};
use crate::layout::{cert_path, CRL_FILE};
use crate::repository::confined::{Dir, Kind};
use crate::repository::git::CaRepo;
use crate::repository::load;
use crate::time::fmt_time;

pub use crate::layout::published::{
    CA_CRT, CRLS, CRL_DER, CRL_PEM, INDEX, ROOT_CRL_DER, ROOT_CRL_PEM, ROOT_CRT,
};

/// `path` relative to `root` when it lies below it (lexically, `..` resolved), as `a/b`.
fn lexical_below(path: &Path, root: &Path) -> Option<String> {
    use std::path::Component;
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let root_parts: Vec<String> = root
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts
        .starts_with(&root_parts)
        .then(|| parts[root_parts.len()..].join("/"))
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn der_of(pem_text: &str) -> Result<Vec<u8>> {
    Ok(pem::parse(pem_text)
        .map_err(|_| Error::bad_file(CRL_FILE, "not PEM", "run gitca reconcile"))?
        .into_contents())
}

/// One CRL as the manifest lists it.
fn crl_summary(issuer: &ca::CaCert, crl: &ca::CrlInfo) -> serde_json::Value {
    json!({
        "issuer": issuer.subject,
        "issuer_id": crate::authority::ca::id_of(&issuer.der),
        "number": crl.number,
        "this_update": fmt_time(crl.this_update),
        "next_update": crl.next_update.map(fmt_time),
        "entries": crl.serials.len(),
    })
}

/// The top-level entry point for `gitca publish`.
pub fn run_publish(
    repo_dir: &Path,
    out_dir: &Path,
    now: OffsetDateTime,
    out: &mut dyn Write,
) -> Result<()> {
    let repo = CaRepo::open(repo_dir)?;
    let inside = place_of_target(&repo, out_dir)?;
    let outputs = load::outputs(&repo)?;
    if let Some(why) = crate::repository::seal::describe(&outputs.standing) {
        let _ = writeln!(
            out,
            "warning: {why}; publishing the sealed versions (run gitca reconcile to restore the files)"
        );
    }
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let crls = add_ca_and_crls(&outputs, &mut files)?;
    let certs = add_live_certs(&repo, &outputs, now, &mut files, out);
    // The admission list: only with declared history signers, a history audit proves, and the
    // history signing key. Its absence never stops the CRL from being published: the list
    // installed on servers stays until a newer one is (and a warning says why there is none).
    let admission = crate::relying::admission::for_publish(&repo, &outputs, certs.admitted, now)?;
    let admitted_count = add_admission_list(&admission, &mut files, out);
    let index = manifest(&outputs, now, crls, &files, &certs.manifest);
    write_tree(&repo, out_dir, inside.as_deref(), &files, &index)?;
    let _ = writeln!(
        out,
        "Published CRL #{} (next update {}) and {} certificate(s) to {}",
        outputs.crl.number,
        outputs
            .crl
            .next_update
            .map(fmt_time)
            .unwrap_or_else(|| "-".into()),
        certs.manifest.len(),
        out_dir.display()
    );
    if let Some(count) = admitted_count {
        let _ = writeln!(
            out,
            "Published the signed admission list: {count} certificate(s)"
        );
    }
    refuse_unpublished(&certs.refused)
}

/// Where the tree goes: `Some(path)` relative to the repository root when `out_dir` lies inside
/// it, refusing the repository itself and its `.git`.
fn place_of_target(repo: &CaRepo, out_dir: &Path) -> Result<Option<String>> {
    // Inside the repository (CI publishes `public/` of its checkout), the directory is reached
    // as everything in the repository is: a link a merged pull request planted is refused.
    let abs = if out_dir.is_absolute() {
        out_dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(Error::io("read", Path::new(".")))?
            .join(out_dir)
    };
    let real_root = repo
        .root
        .canonicalize()
        .map_err(Error::io("resolve", &repo.root))?;
    let inside = lexical_below(&abs, &real_root).or_else(|| lexical_below(&abs, &repo.root));
    if real_root.starts_with(&abs) || inside.as_deref() == Some("") {
        return Err(Error::usage(
            format!("{} would hold the CA repository", out_dir.display()),
            "publish into a subdirectory (public/) or a directory outside the repository",
        ));
    }
    if inside
        .as_deref()
        .is_some_and(|r| r == ".git" || r.starts_with(".git/"))
    {
        return Err(Error::usage(
            "publishing into .git",
            "pick another directory",
        ));
    }
    Ok(inside)
}

/// Adds the CA certificate, its CRL, the root's with a hierarchy, and the `crls.pem` chain
/// bundle; returns the manifest's summary of each CRL, root first.
fn add_ca_and_crls(
    outputs: &load::Outputs,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Vec<serde_json::Value>> {
    let crl_der = der_of(&outputs.crl_text)?;
    files.insert(CA_CRT.into(), outputs.ca.pem.clone().into_bytes());
    files.insert(CRL_DER.into(), crl_der);
    files.insert(CRL_PEM.into(), outputs.crl_text.clone().into_bytes());
    let mut crls = vec![crl_summary(&outputs.ca, &outputs.crl)];
    let bundle = match &outputs.hierarchy {
        None => outputs.crl_text.clone(),
        Some(h) => {
            files.insert(ROOT_CRT.into(), h.root.pem.clone().into_bytes());
            files.insert(ROOT_CRL_DER.into(), der_of(&h.root_crl_text)?);
            files.insert(ROOT_CRL_PEM.into(), h.root_crl_text.clone().into_bytes());
            crls.insert(0, crl_summary(&h.root, &h.root_crl));
            let mut b = outputs.ca.pem.clone();
            if let Some(p) = &h.previous {
                b.push_str(&p.cert.pem);
            }
            b.push_str(&h.root_crl_text);
            b.push_str(&outputs.crl_text);
            if let Some(p) = &h.previous {
                b.push_str(&p.crl_text);
                crls.push(crl_summary(&p.cert, &p.crl));
            }
            b
        }
    };
    files.insert(CRLS.into(), bundle.into_bytes());
    Ok(crls)
}

/// What [`add_live_certs`] found: the manifest's `certs`, the files refused, and the admission
/// list's entries.
struct PublishedCerts {
    manifest: BTreeMap<String, serde_json::Value>,
    refused: Vec<String>,
    admitted: Vec<crate::relying::admission::Entry>,
}

/// Adds `certs/NAME.crt` for each identity holding a live certificate that is the one the
/// ledger records; the others are refused (reported after the tree is written).
fn add_live_certs(
    repo: &CaRepo,
    outputs: &load::Outputs,
    now: OffsetDateTime,
    files: &mut BTreeMap<String, Vec<u8>>,
    out: &mut dyn Write,
) -> PublishedCerts {
    // The current certificate of each identity holding a live one, checked against the ledger.
    let mut certs = BTreeMap::new();
    let live: BTreeMap<&str, &crate::repository::ledger::Record> = outputs
        .ledger
        .records
        .iter()
        .filter(|r| r.is_live(now))
        .map(|r| (r.identity.as_str(), r))
        .collect();
    let mut refused: Vec<String> = Vec::new();
    let mut admitted = Vec::new();
    for (name, rec) in &live {
        let path = cert_path(name);
        // A file edited since reconcile wrote it: the version reconcile wrote stands in.
        let edited = outputs.certs_edited.iter().find(|e| e.path == path);
        let text = match edited {
            Some(e) => crate::authority::issued::sealed_text(repo, e),
            None => repo.dir.read_string(&path, ca::MAX_CERT_BYTES).ok(),
        };
        let Some(text) = text else {
            continue;
        };
        if let Err(why) = check_against_ledger(outputs, rec, &text) {
            refused.push(format!("{path}: {why}"));
            continue;
        }
        if let Some(leaf) = pem::parse_many(&text)
            .ok()
            .and_then(|b| b.into_iter().next())
        {
            admitted.push(crate::relying::admission::Entry::of(
                &rec.serial,
                leaf.contents(),
            ));
        }
        if edited.is_some() {
            let _ = writeln!(out, "warning: {path} was edited since reconcile wrote it; published the version reconcile wrote (run gitca reconcile to restore the file)");
        }
        certs.insert(
            name.to_string(),
            json!({
                "serial": rec.serial,
                "not_before": fmt_time(rec.not_before),
                "not_after": fmt_time(rec.not_after),
                "sha256": sha256_hex(text.as_bytes()),
            }),
        );
        files.insert(format!("certs/{name}.crt"), text.into_bytes());
    }
    PublishedCerts {
        manifest: certs,
        refused,
        admitted,
    }
}

/// Published only when it is the certificate the ledger records, under its issuer.
fn check_against_ledger(
    outputs: &load::Outputs,
    rec: &crate::repository::ledger::Record,
    text: &str,
) -> std::result::Result<(), String> {
    match load::issuer_cert(
        &outputs.ca,
        outputs.hierarchy.as_ref(),
        rec.issuer.as_deref(),
    ) {
        None => Err("its issuer no longer issues".to_string()),
        Some((issuer_path, issuer)) => crate::authority::issued::verify(
            text,
            &crate::authority::issued::Expected {
                record: rec,
                issuer,
                issuer_path,
                cn: None,
            },
        ),
    }
}

/// Adds the signed admission list when there is one (returning how many certificates it
/// admits), or warns why there is none.
fn add_admission_list(
    admission: &Option<std::result::Result<(String, String), String>>,
    files: &mut BTreeMap<String, Vec<u8>>,
    out: &mut dyn Write,
) -> Option<usize> {
    match admission {
        Some(Ok((list, sig))) => {
            files.insert(
                crate::relying::admission::LIST.into(),
                list.clone().into_bytes(),
            );
            files.insert(
                crate::relying::admission::SIG.into(),
                sig.clone().into_bytes(),
            );
            Some(list.lines().count().saturating_sub(4))
        }
        Some(Err(why)) => {
            let _ = writeln!(
                out,
                "warning: no admission list published ({why}); servers keep the one they installed"
            );
            None
        }
        None => None,
    }
}

/// The `index.json` manifest: the CA, its CRLs, and each file's SHA-256.
fn manifest(
    outputs: &load::Outputs,
    now: OffsetDateTime,
    crls: Vec<serde_json::Value>,
    files: &BTreeMap<String, Vec<u8>>,
    certs: &BTreeMap<String, serde_json::Value>,
) -> serde_json::Value {
    json!({
        "format_version": 1,
        "generated": fmt_time(now),
        "ca": {
            "subject": outputs.ca.subject,
            "sha256": sha256_hex(&outputs.ca.der),
            "not_after": fmt_time(outputs.ca.not_after),
        },
        "anchor": if outputs.hierarchy.is_some() { ROOT_CRT } else { CA_CRT },
        "crl": {
            "number": outputs.crl.number,
            "this_update": fmt_time(outputs.crl.this_update),
            "next_update": outputs.crl.next_update.map(fmt_time),
            "entries": outputs.crl.serials.len(),
        },
        "crls": crls,
        "files": files.iter().map(|(k, v)| (k.clone(), sha256_hex(v))).collect::<BTreeMap<_, _>>(),
        "certs": certs,
    })
}

/// Writes the tree: the files, then drops certificates no longer held, then the manifest.
fn write_tree(
    repo: &CaRepo,
    out_dir: &Path,
    inside: Option<&str>,
    files: &BTreeMap<String, Vec<u8>>,
    index: &serde_json::Value,
) -> Result<()> {
    let dir = match inside {
        Some(rel) => repo.dir.subdir(rel, true)?,
        None => Dir::create(out_dir)?,
    };
    // Files first, the manifest last: a reader that trusts the manifest sees complete files.
    for (rel, data) in files {
        dir.write(rel, data, 0o644)?;
    }
    // Certificates of identities that no longer hold one go.
    for (file, kind) in dir.list("certs")? {
        let rel = format!("certs/{file}");
        if kind == Kind::File && file.ends_with(".crt") && !files.contains_key(&rel) {
            dir.remove(&rel)?;
        }
    }
    let mut index_text = serde_json::to_string_pretty(index).expect("json");
    index_text.push('\n');
    dir.write(INDEX, index_text.as_bytes(), 0o644)
}

/// Fails, after the rest was published, when certificate files were refused.
fn refuse_unpublished(refused: &[String]) -> Result<()> {
    if !refused.is_empty() {
        return Err(Error::bad_file(
            "certs/",
            format!(
                "{} certificate file(s) are not what the ledger records and were not published: {}",
                refused.len(),
                refused.join("; ")
            ),
            "run gitca reconcile (it writes back the certificates it issued), then publish again; the CRLs and every verified certificate were published",
        ));
    }
    Ok(())
}
