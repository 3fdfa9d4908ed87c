//! The seal: the CA's own signature over what it published (`ledger.tsv` and `crl/ca.crl`), and
//! how gitca finds the newest seal the CA ever made.
//!
//! A merged pull request can edit anything in the tree, gitca's outputs included: shorten the
//! `not_after` of revoked rows (so the next CRL drops them), lower a reason from key-compromise
//! to superseded (so the key is certified again), or put back an older, validly signed CRL. The
//! ledger and the CRL are therefore trusted only as the CA sealed them:
//!
//! - every run that writes them also writes `ledger.sig`: the SHA-256 of both files and the CRL
//!   number, signed with the CA key (a signature over text that starts with `gitca-seal-v1`,
//!   which no certificate or CRL — DER, starting with 0x30 — can ever be confused with);
//! - whoever reads them checks the seal against `ca/ca.crt`, and looks through the history of
//!   HEAD for a newer seal (a higher CRL number): an older seal put back is a rollback;
//! - when the files on disk are not the newest sealed ones, gitca uses the newest sealed
//!   versions from history instead (reconcile writes them back and says so).
//!
//! History is the anchor against rollback, so reconcile needs the whole of it (a shallow clone
//! is refused); it is read as [`crate::repository::history`] bounds it: HEAD's first-parent line, where
//! every reconcile commits. Rewriting main's history (a force push) is outside what this defends against.

use std::collections::HashMap;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::authority::ca::{CaCert, CaKey};
use crate::error::{Error, Result};
use crate::layout::{CRL_FILE, LEDGER_FILE, PREVIOUS_CRL, SEAL_FILE};
use crate::repository::history::History;

const DOMAIN: &str = "gitca-seal-v1\n";
/// Largest seal file gitca reads (an RSA-8192 signature is about 1.4 KB in base64).
pub const MAX_BYTES: u64 = 16 << 10;

/// What a seal says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// One more than the seal before it: the newest seal is the one with the highest sequence
    /// (CRL numbers do not order them: issuing a certificate re-seals without a new CRL).
    pub sequence: u64,
    pub ledger_sha256: String,
    pub crl_sha256: String,
    pub crl_number: u64,
    /// SHA-256 (hex) of the DER of the CA certificate whose key signed it.
    pub signer: String,
    /// SHA-256 of `crl/previous.crl`, while a retiring intermediate has one (format 2).
    pub previous_crl_sha256: Option<String>,
    pub signature: Vec<u8>,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

impl Seal {
    /// The exact bytes the CA signs.
    fn message(&self) -> String {
        match &self.previous_crl_sha256 {
            None => format!(
                "{DOMAIN}format: 1\nsequence: {}\nledger-sha256: {}\ncrl-sha256: {}\ncrl-number: {}\nsigner: {}\n",
                self.sequence, self.ledger_sha256, self.crl_sha256, self.crl_number, self.signer
            ),
            Some(previous) => format!(
                "{DOMAIN}format: 2\nsequence: {}\nledger-sha256: {}\ncrl-sha256: {}\ncrl-number: {}\nprevious-crl-sha256: {previous}\nsigner: {}\n",
                self.sequence, self.ledger_sha256, self.crl_sha256, self.crl_number, self.signer
            ),
        }
    }

    /// Seals `ledger` and `crl` (the texts about to be written), and a retiring intermediate's
    /// CRL when there is one, with the CA key.
    pub fn sign(
        ca: &CaCert,
        key: &CaKey,
        sequence: u64,
        (ledger, crl, crl_number): (&[u8], &[u8], u64),
        previous_crl: Option<&[u8]>,
    ) -> Result<Seal> {
        let mut seal = Seal {
            sequence,
            ledger_sha256: sha256_hex(ledger),
            crl_sha256: sha256_hex(crl),
            crl_number,
            signer: sha256_hex(&ca.der),
            previous_crl_sha256: previous_crl.map(sha256_hex),
            signature: Vec::new(),
        };
        seal.signature = rcgen::SigningKey::sign(key, seal.message().as_bytes())
            .map_err(Error::crypto("sealing the ledger"))?;
        Ok(seal)
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let body = self.message();
        let body = body
            .strip_prefix(DOMAIN)
            .expect("the message starts with the domain");
        format!(
            "# gitca seal: the CA's signature over ledger.tsv and crl/ca.crl (and crl/previous.crl). Written by gitca only.\n\
             # The signed message is \"gitca-seal-v1\" and a newline, then the lines below\n\
             # `format` through `signer`; `signature` is base64 (see docs/formats.md to check it with openssl).\n\
             {body}signature: {}\n",
            base64::engine::general_purpose::STANDARD.encode(&self.signature)
        )
    }

    /// Parses a seal file (its signature is not checked here: see [`Seal::verify`]).
    pub fn parse(text: &str) -> std::result::Result<Seal, String> {
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once(": ")
                .ok_or_else(|| format!("`{}` is not a `key: value` line", truncate(line)))?;
            if fields.insert(k, v).is_some() {
                return Err(format!("`{k}` appears twice"));
            }
        }
        let get = |k: &str| {
            fields
                .get(k)
                .copied()
                .ok_or_else(|| format!("`{k}` is missing"))
        };
        let format = get("format")?;
        if format != "1" && format != "2" {
            return Err("unknown format (this gitca reads formats 1 and 2)".into());
        }
        let hex64 = |k: &str| -> std::result::Result<String, String> {
            let v = get(k)?;
            if v.len() == 64
                && v.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                Ok(v.to_string())
            } else {
                Err(format!("`{k}` is not a SHA-256"))
            }
        };
        Ok(Seal {
            sequence: get("sequence")?
                .parse()
                .map_err(|_| "`sequence` is not a number".to_string())?,
            ledger_sha256: hex64("ledger-sha256")?,
            crl_sha256: hex64("crl-sha256")?,
            crl_number: get("crl-number")?
                .parse()
                .map_err(|_| "`crl-number` is not a number".to_string())?,
            signer: hex64("signer")?,
            previous_crl_sha256: match format {
                "2" => Some(hex64("previous-crl-sha256")?),
                _ => None,
            },
            signature: base64::engine::general_purpose::STANDARD
                .decode(get("signature")?)
                .map_err(|_| "`signature` is not base64".to_string())?,
        })
    }

    /// Whether `ca`'s key made this seal.
    pub fn verify(&self, ca: &CaCert) -> bool {
        self.signer == sha256_hex(&ca.der)
            && crate::authority::pubkey::verify_with(
                &ca.spki_der,
                self.message().as_bytes(),
                &self.signature,
            )
    }

    /// Whether one of `signers` made this seal.
    pub fn verify_any(&self, signers: &[&CaCert]) -> bool {
        signers.iter().any(|ca| self.verify(ca))
    }

    /// Whether these are the sealed files.
    pub fn covers(&self, ledger: &[u8], crl: &[u8], previous_crl: Option<&[u8]>) -> bool {
        self.ledger_sha256 == sha256_hex(ledger)
            && self.crl_sha256 == sha256_hex(crl)
            && self.previous_crl_sha256 == previous_crl.map(sha256_hex)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// How far the ledger and CRL on disk can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Sealed by the CA (this seal's sequence), and no newer seal exists in history.
    Sealed(u64),
    /// No seal anywhere in history: a repository from before seals. Trusted as found; the next
    /// run that writes seals it.
    Unsealed,
    /// The files on disk are not the newest the CA sealed; these are (from `commit`).
    Recovered {
        sequence: u64,
        commit: String,
        why: String,
        ledger: String,
        crl: String,
        previous_crl: Option<String>,
        seal: String,
    },
}

/// The outputs as read from disk, to be judged.
pub struct OnDisk<'a> {
    pub ledger: Option<&'a [u8]>,
    pub crl: Option<&'a [u8]>,
    /// `crl/previous.crl`, when the file exists.
    pub previous_crl: Option<&'a [u8]>,
    pub seal: Option<&'a [u8]>,
}

/// Judges the outputs on disk against their seal and every seal in HEAD's history. A seal
/// counts when one of `signers` made it (the CA; with an offline root, the root and the
/// current and retiring intermediates).
pub fn judge(
    git: &git2::Repository,
    history: &History,
    signers: &[&CaCert],
    disk: &OnDisk<'_>,
) -> Result<Standing> {
    let current = disk
        .seal
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|t| Seal::parse(t).ok())
        .filter(|s| s.verify_any(signers));
    let current_ok = match (&current, disk.ledger, disk.crl) {
        (Some(s), Some(l), Some(c)) => s.covers(l, c, disk.previous_crl),
        _ => false,
    };
    let candidates = seals_in_history(git, history)?;
    // The common case costs one signature check: the seal on disk is valid, covers the files,
    // and no seal in history has a higher sequence.
    let newest_number = candidates.first().map(|c| c.seal.sequence);
    if let Some(c) = current.as_ref().filter(|_| current_ok) {
        if newest_number.is_none_or(|n| c.sequence >= n) {
            return Ok(Standing::Sealed(c.sequence));
        }
    }
    let Some(found) = newest_verified(git, history, signers, candidates)? else {
        return Ok(if current_ok {
            Standing::Sealed(current.map_or(0, |c| c.sequence))
        } else {
            Standing::Unsealed
        });
    };
    if let Some(c) = current
        .as_ref()
        .filter(|c| current_ok && c.sequence >= found.seal.sequence)
    {
        return Ok(Standing::Sealed(c.sequence));
    }
    let best = &found.seal;
    let why = match (&current, current_ok) {
        (Some(c), true) => format!(
            "ledger.tsv, crl/ca.crl and ledger.sig were put back to an older sealed state (seal {}, CRL #{}; commit {} holds seal {}, CRL #{})",
            c.sequence,
            c.crl_number,
            short(&found.commit),
            best.sequence,
            best.crl_number
        ),
        (Some(_), false) => "ledger.tsv or crl/ca.crl differs from what ledger.sig seals (edited by hand)".into(),
        (None, _) if disk.seal.is_some() => "ledger.sig does not verify against ca/ca.crt (edited by hand)".into(),
        (None, _) => "ledger.sig is missing (removed by hand)".into(),
    };
    Ok(Standing::Recovered {
        sequence: best.sequence,
        commit: found.commit.clone(),
        why,
        ledger: found.ledger,
        crl: found.crl,
        previous_crl: found.previous_crl,
        seal: found.seal_text,
    })
}

impl Standing {
    /// The sequence the next seal takes.
    pub fn next_sequence(&self) -> u64 {
        match self {
            Standing::Sealed(n) | Standing::Recovered { sequence: n, .. } => n + 1,
            Standing::Unsealed => 1,
        }
    }
}

pub fn short(oid: &str) -> &str {
    &oid[..oid.len().min(12)]
}

struct Found {
    seal: Seal,
    seal_text: String,
    commit: String,
    ledger: String,
    crl: String,
    previous_crl: Option<String>,
}

/// A seal found in history (parsed, not yet verified), with the commits (indices into
/// [`History`]) where it was written: the commit that introduced it first.
struct Candidate {
    seal: Seal,
    text: String,
    commits: Vec<usize>,
}

/// How many commits holding one seal are tried for the ledger and CRL it covers. Reconcile
/// writes the three files in one commit, the seal's first, which is tried first; the others
/// are where a merge put the seal back.
const COMMITS_TRIED: usize = 8;

/// Every distinct seal in HEAD's history that parses, highest sequence first.
fn seals_in_history(git: &git2::Repository, history: &History) -> Result<Vec<Candidate>> {
    let mut by_blob: Vec<(git2::Oid, Vec<usize>)> = Vec::new();
    let mut at: HashMap<git2::Oid, usize> = HashMap::new();
    for run in history.runs(SEAL_FILE) {
        let Some(blob) = run.blob else { continue };
        let i = *at.entry(blob).or_insert_with(|| {
            by_blob.push((blob, Vec::new()));
            by_blob.len() - 1
        });
        by_blob[i].1.push(run.oldest);
    }
    // Seals reached only through a merge's other parents: a merge whose first parent is an old
    // commit hides main's newest seal there (see crate::repository::history).
    let mut side: HashMap<git2::Oid, usize> = HashMap::new();
    for &(blob, index) in history.side(SEAL_FILE) {
        side.insert(blob, index);
        if let std::collections::hash_map::Entry::Vacant(e) = at.entry(blob) {
            e.insert(by_blob.len());
            by_blob.push((blob, Vec::new()));
        }
    }
    let mut out = Vec::new();
    for (blob, mut commits) in by_blob {
        let Some(text) = history.text(git, blob, MAX_BYTES)? else {
            continue;
        };
        if let Ok(seal) = Seal::parse(&text) {
            // Runs come newest first: the oldest commit holding the seal wrote it.
            commits.reverse();
            commits.truncate(COMMITS_TRIED);
            commits.extend(side.get(&blob));
            out.push(Candidate {
                seal,
                text,
                commits,
            });
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.seal.sequence));
    Ok(out)
}

/// The newest candidate that verifies against `ca`, with the ledger and CRL it seals (from a
/// commit that holds all three).
fn newest_verified(
    git: &git2::Repository,
    history: &History,
    signers: &[&CaCert],
    candidates: Vec<Candidate>,
) -> Result<Option<Found>> {
    for c in candidates {
        if !c.seal.verify_any(signers) {
            continue;
        }
        for &index in &c.commits {
            let blob_text = |path: &str, limit: u64| -> Result<Option<String>> {
                match history.blob_at(path, index) {
                    Some(blob) => history.text(git, blob, limit),
                    None => Ok(None),
                }
            };
            let (Some(ledger), Some(crl)) = (
                blob_text(LEDGER_FILE, crate::repository::ledger::MAX_BYTES)?,
                blob_text(CRL_FILE, crate::authority::ca::MAX_CRL_BYTES)?,
            ) else {
                continue;
            };
            let previous_crl = match c.seal.previous_crl_sha256 {
                Some(_) => blob_text(PREVIOUS_CRL, crate::authority::ca::MAX_CRL_BYTES)?,
                None => None,
            };
            if c.seal.covers(
                ledger.as_bytes(),
                crl.as_bytes(),
                previous_crl.as_deref().map(str::as_bytes),
            ) {
                return Ok(Some(Found {
                    seal: c.seal,
                    seal_text: c.text,
                    commit: history
                        .commit(index)
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                    ledger,
                    crl,
                    previous_crl,
                }));
            }
        }
    }
    Ok(None)
}

/// A human line about a recovery, for reconcile's output and check's error.
pub fn describe(standing: &Standing) -> Option<String> {
    match standing {
        Standing::Recovered { commit, why, .. } => Some(format!(
            "{why}; using the ledger and CRL the CA sealed in commit {}",
            short(commit)
        )),
        _ => None,
    }
}
