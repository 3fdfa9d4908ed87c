//! The offline root: a CA made with `gitca init --offline-root` (or moved to it with
//! `gitca root migrate`) has two levels. The root key is encrypted to the root custodians only
//! and signs nothing but intermediates and its own CRL, in a ceremony (`gitca root …`); CI
//! holds the issuing intermediate, which signs the certificates, its CRL and the seal exactly
//! as a single-level CA does. A compromised runner then costs an intermediate, which the
//! custodians revoke and replace, not the root every server and client trusts.
//!
//! ```text
//! ca/root.crt             the root certificate (the anchor servers and clients pin)
//! ca/root.key.age         its key, age-encrypted to the root custodians only
//! ca/root-recipients.txt  who they are
//! ca/intermediates.tsv    every intermediate the root certified (the root's ledger)
//! crl/root.crl            the root's CRL: revoked intermediates; re-signed in ceremonies only
//! ca/ca.crt, ca/ca.key.age, ca/recipients.txt, crl/ca.crl
//!                         the issuing intermediate (CI and the custodians decrypt its key)
//! ca/previous.crt, ca/previous.key.age, crl/previous.crl
//!                         the intermediate being retired after a planned rotation: reconcile
//!                         keeps its CRL current while certificates it signed are unexpired,
//!                         and removes all three once none is left, or once a ceremony has
//!                         revoked it (which ceremonies do when none of its certificates is
//!                         valid any more)
//! ```
//!
//! Trust is anchored in history: `ca/root.crt` must be the root of the repository's first
//! commit (`ca/root.crt` there, or `ca/ca.crt` for a CA that was migrated), and every
//! intermediate must verify under it, be listed in the roster and not be revoked.

use std::fmt::Write;

use time::OffsetDateTime;

use crate::authority::ca::{self, id_of, CaCert, CaKey, CrlEntry, CrlInfo};
use crate::authority::custody::Vault;
use crate::authority::revocation::RevocationReason;
use crate::error::{Error, Located, Result};
use crate::layout::{
    CA_CERT, KEY_FILE, PREVIOUS_CERT, PREVIOUS_CRL, PREVIOUS_KEY, RECIPIENTS_FILE, ROOT_CERT,
    ROOT_CRL, ROOT_KEY, ROOT_RECIPIENTS, ROSTER,
};
use crate::repository::confined::Dir;
use crate::repository::git::CaRepo;
use crate::repository::ledger::Ledger;
use crate::time::{fmt_time, human_span, next_crl_update, parse_time};

/// Largest root CRL gitca reads: it lists revoked intermediates only (a few hundred bytes each).
pub const MAX_ROOT_CRL_BYTES: u64 = 1 << 20;

/// The root key: decrypted only in a ceremony.
pub const ROOT_VAULT: Vault = Vault {
    key: ROOT_KEY,
    cert: ROOT_CERT,
    recipients: ROOT_RECIPIENTS,
    what: "the root key",
};

/// The retiring intermediate's key (encrypted to the same recipients as the current one).
pub const PREVIOUS_VAULT: Vault = Vault {
    key: PREVIOUS_KEY,
    cert: PREVIOUS_CERT,
    recipients: RECIPIENTS_FILE,
    what: "the previous intermediate's key",
};

/// A CA with an offline root has `ca/root.crt`.
pub fn present(dir: &Dir) -> bool {
    matches!(dir.meta(ROOT_CERT), Ok(Some(_)))
}

/// One intermediate the root certified: a row of `ca/intermediates.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intermediate {
    pub id: String,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub reason: Option<RevocationReason>,
    pub subject: String,
}

impl Intermediate {
    pub fn of(cert: &CaCert) -> Result<Intermediate> {
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&cert.der).map_err(|e| Error::Crypto {
                what: "intermediate",
                detail: e.to_string(),
            })?;
        Ok(Intermediate {
            id: id_of(&cert.der),
            serial: ca::serial_hex(parsed.raw_serial()),
            not_before: cert.not_before,
            not_after: cert.not_after,
            revoked_at: None,
            reason: None,
            subject: cert.subject.clone(),
        })
    }
}

/// The roster's header: the first line, as in the ledger (every intermediate the root certified,
/// oldest first; written only by `gitca init --offline-root` and the root ceremonies).
const ROSTER_PREAMBLE: &str = "id\tserial\tnot_before\tnot_after\trevoked_at\treason\tsubject\n";

/// `ca/intermediates.tsv`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    pub rows: Vec<Intermediate>,
}

impl Roster {
    pub fn parse(text: &str) -> Result<Roster> {
        let mut rows: Vec<Intermediate> = Vec::new();
        let mut offset = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let start = offset;
            offset += line.len();
            let row = line.trim_end_matches(['\n', '\r']);
            if row.is_empty() || row.starts_with('#') || row.starts_with("id\t") {
                continue;
            }
            let fail = |what: String| -> Error {
                Located::new(
                    ROSTER,
                    text,
                    (start, row.len()),
                    format!("{ROSTER} line {}: {what}", i + 1),
                    "this row",
                    "the roster is written by gitca's root ceremonies only; restore it from git history",
                )
                .into()
            };
            let f: Vec<&str> = row.splitn(7, '\t').collect();
            if f.len() != 7 {
                return Err(fail(format!(
                    "expected 7 tab-separated fields, found {}",
                    f.len()
                )));
            }
            let hex = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            };
            if !(f[0].len() == 16 && hex(f[0])) {
                return Err(fail(format!("`{}` is not an intermediate id", f[0])));
            }
            if !(hex(f[1]) && f[1].len() <= 40) {
                return Err(fail(format!("`{}` is not a serial", f[1])));
            }
            let time = |s: &str| parse_time(s).ok_or_else(|| fail(format!("`{s}` is not a time")));
            let (revoked_at, reason) = match (f[4], f[5]) {
                ("-", "-") => (None, None),
                (t, r) => (
                    Some(time(t)?),
                    Some(
                        RevocationReason::parse(r)
                            .ok_or_else(|| fail(format!("unknown reason `{r}`")))?,
                    ),
                ),
            };
            if rows.iter().any(|r| r.id == f[0]) {
                return Err(fail(format!("intermediate {} appears twice", f[0])));
            }
            rows.push(Intermediate {
                id: f[0].to_string(),
                serial: f[1].to_string(),
                not_before: time(f[2])?,
                not_after: time(f[3])?,
                revoked_at,
                reason,
                subject: f[6].to_string(),
            });
        }
        Ok(Roster { rows })
    }

    pub fn render(&self) -> String {
        let mut out = String::from(ROSTER_PREAMBLE);
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.id,
                r.serial,
                fmt_time(r.not_before),
                fmt_time(r.not_after),
                r.revoked_at.map_or("-".into(), fmt_time),
                r.reason.map_or("-", |x| x.as_str()),
                r.subject.replace(['\t', '\n', '\r'], " ")
            );
        }
        out
    }

    pub fn get(&self, id: &str) -> Option<&Intermediate> {
        self.rows.iter().find(|r| r.id == id)
    }
}

/// The intermediate being retired: its certificate and CRL. Its CRL is kept current until a
/// ceremony revokes it on the root CRL once none of its certificates is valid (a revoked one
/// stays listed until then), or until it expires: relying parties let an intermediate go only
/// on the root's word (see [`crate::authority::floors`]).
#[derive(Debug, Clone)]
pub struct Retiring {
    pub cert: CaCert,
    pub id: String,
    pub crl: CrlInfo,
    pub crl_text: String,
    /// The root revoked it: nothing of it is needed any more, reconcile removes it.
    pub revoked: bool,
}

/// The root side of a two-level CA, as loaded and checked.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub root: CaCert,
    pub root_id: String,
    pub root_crl: CrlInfo,
    pub root_crl_text: String,
    /// Set when the root CRL on disk was older than one in history (put back by a merge): the
    /// newest one stands in, and reconcile writes it back.
    pub root_crl_recovered: Option<String>,
    /// Every intermediate the root certified, oldest first: the certificates in history that
    /// verify under the root (serials and dates from them), revoked as the newest root CRL says.
    /// Never read from `ca/intermediates.tsv`, which is derived from this.
    pub intermediates: Vec<Intermediate>,
    /// Set when `ca/intermediates.tsv` is not what the root signed says (a merged edit): what
    /// differs, and how to restore it. Nothing reads the file; `check` reports this.
    pub roster_problem: Option<String>,
    /// The issuing intermediate's id.
    pub current: String,
    pub previous: Option<Retiring>,
}

impl Hierarchy {
    /// Every CA whose signature on a seal is accepted: the root, the current intermediate, and
    /// a retiring one (none of them revoked).
    pub fn seal_signers<'a>(&'a self, current: &'a CaCert) -> Vec<&'a CaCert> {
        let mut v = vec![current, &self.root];
        if let Some(p) = self.previous.as_ref().filter(|p| !p.revoked) {
            v.push(&p.cert);
        }
        v
    }

    /// The retiring intermediate, when none of its certificates is valid any more: a ceremony
    /// revokes it on the root CRL (cessation of operation), and the next reconcile removes it.
    pub fn idle_previous(&self, ledger: &Ledger, now: OffsetDateTime) -> Option<&Retiring> {
        let p = self.previous.as_ref().filter(|p| !p.revoked)?;
        let busy = ledger
            .records
            .iter()
            .any(|r| r.issuer.as_deref() == Some(p.id.as_str()) && r.is_live(now));
        (!busy).then_some(p)
    }

    /// The root CRL needs a ceremony: it expires within `warning` (or has).
    pub fn ceremony_due(&self, now: OffsetDateTime, warning: time::Duration) -> Option<String> {
        let next = self.root_crl.next_update?;
        if next <= now {
            Some(format!(
                "the root CRL EXPIRED {}: nginx refuses EVERY client; the root custodians must run `gitca root sign-crl` now",
                fmt_time(next)
            ))
        } else if next - now <= warning {
            Some(format!(
                "the root CRL expires {} (in {}): gather the root custodians for `gitca root sign-crl` before then",
                fmt_time(next),
                human_span(next - now)
            ))
        } else {
            None
        }
    }

    /// Unexpired certificates whose issuer is no longer here to keep their CRL: not the root,
    /// the current or the retiring intermediate, and not revoked by the root (which makes all of
    /// them invalid at once). Only a merge that deleted `ca/previous.*` leaves such orphans:
    /// their revocations could reach no CRL, so reconcile refuses until the files are back.
    pub fn orphans(&self, ledger: &Ledger, now: OffsetDateTime) -> Option<Error> {
        let here = |issuer: &str| {
            issuer == self.root_id
                || issuer == self.current
                || self.previous.as_ref().is_some_and(|p| p.id == issuer)
                || self
                    .intermediate(issuer)
                    .is_some_and(|r| self.root_crl.serials.contains(&r.serial))
        };
        let lost: std::collections::BTreeSet<&str> = ledger
            .records
            .iter()
            .filter(|r| r.not_after > now)
            .filter_map(|r| r.issuer.as_deref())
            .filter(|i| !here(i))
            .collect();
        let first = *lost.iter().next()?;
        Some(Error::bad_file(
            PREVIOUS_CERT,
            format!(
                "unexpired certificates were signed by intermediate {}, which is neither current, retiring (ca/previous.crt) nor revoked by the root: its files were removed by hand, and revocations of its certificates could reach no CRL",
                lost.iter().copied().collect::<Vec<_>>().join(", ")
            ),
            format!(
                "restore the retiring intermediate: `git checkout $(git log -1 --format=%H --diff-filter=D -- {PREVIOUS_CERT})~1 -- {PREVIOUS_CERT} '{}' {PREVIOUS_CRL}` (intermediate {first}; its key's record, {PREVIOUS_KEY} or the token's {}, whichever it had)",
                PREVIOUS_KEY.replace(".age", ".*"),
                crate::authority::custody::token_file(&PREVIOUS_VAULT)
            ),
        ))
    }

    /// Certificates the root itself signed (a migrated CA's older ones) that the ledger has
    /// revoked but the root CRL does not list yet: only a ceremony can publish them.
    pub fn unpublished_revocations(&self, ledger: &Ledger, now: OffsetDateTime) -> Vec<String> {
        let listed: std::collections::HashSet<&str> =
            self.root_crl.serials.iter().map(String::as_str).collect();
        ledger
            .records
            .iter()
            .filter(|r| r.issuer.as_deref() == Some(self.root_id.as_str()) && r.on_crl(now))
            .filter(|r| !listed.contains(r.serial.as_str()))
            .map(|r| format!("{} ({})", r.serial, r.identity))
            .collect()
    }

    /// The intermediate with this id.
    pub fn intermediate(&self, id: &str) -> Option<&Intermediate> {
        self.intermediates.iter().find(|i| i.id == id)
    }

    /// What the root CRL of a ceremony at `now` lists, revoking also `revoke` (intermediate id
    /// and reason): every revocation the newest root CRL holds stays until the certificate it
    /// names expires (an intermediate's real notAfter, from its certificate; an entry gitca
    /// cannot date stays for good), then this ceremony's revocations, then revoked certificates
    /// the root signed itself (a migrated CA's older ones). Nothing comes from the roster.
    pub fn root_crl_entries(
        &self,
        ledger: &Ledger,
        now: OffsetDateTime,
        revoke: &[(String, RevocationReason)],
    ) -> Result<Vec<CrlEntry>> {
        let mut entries: Vec<CrlEntry> = Vec::new();
        let mut listed = std::collections::HashSet::new();
        let expiry = |serial: &str| {
            self.intermediates
                .iter()
                .find(|i| i.serial == serial)
                .map(|i| i.not_after)
                .or_else(|| {
                    ledger
                        .records
                        .iter()
                        .find(|r| r.serial == serial && r.issuer.as_deref() == Some(&self.root_id))
                        .map(|r| r.not_after)
                })
        };
        let mut push = |serial: &str, revoked_at: OffsetDateTime, reason: RevocationReason| {
            if listed.insert(serial.to_string()) {
                entries.push(CrlEntry {
                    serial: hex::decode(serial).map_err(|_| bad_roster())?,
                    revoked_at,
                    reason,
                });
            }
            Ok::<(), Error>(())
        };
        for (serial, at, reason) in revocations(&self.root_crl_text) {
            if expiry(&serial).is_none_or(|t| t > now) {
                push(&serial, at, reason)?;
            }
        }
        for (id, why) in revoke {
            if let Some(i) = self.intermediate(id).filter(|i| i.not_after > now) {
                push(&i.serial, now, *why)?;
            }
        }
        for r in &ledger.records {
            if r.issuer.as_deref() == Some(self.root_id.as_str()) && r.on_crl(now) {
                push(
                    &r.serial,
                    r.revoked_at.unwrap_or(now),
                    r.reason.unwrap_or(RevocationReason::Unspecified),
                )?;
            }
        }
        Ok(entries)
    }

    /// `ca/intermediates.tsv` as the intermediates and a root CRL's entries make it.
    pub fn roster_for(&self, entries: &[CrlEntry], extra: Option<&Intermediate>) -> Roster {
        let mut rows: Vec<Intermediate> = self.intermediates.clone();
        rows.extend(extra.cloned());
        for row in &mut rows {
            let on = entries
                .iter()
                .find(|e| hex::encode(&e.serial) == row.serial);
            row.revoked_at = on.map(|e| e.revoked_at);
            row.reason = on.map(|e| e.reason);
        }
        Roster { rows }
    }
}

/// The revocations a root CRL lists (serial, date, reason). The root CRL is small (revoked
/// intermediates), so it is read whole with x509-parser; its signature was checked on load.
pub fn revocations(pem_text: &str) -> Vec<(String, OffsetDateTime, RevocationReason)> {
    let Ok(block) = pem::parse(pem_text) else {
        return Vec::new();
    };
    let Ok((_, crl)) = x509_parser::parse_x509_crl(block.contents()) else {
        return Vec::new();
    };
    crl.iter_revoked_certificates()
        .map(|r| {
            let reason = r
                .reason_code()
                .and_then(|(_, c)| RevocationReason::ALL.into_iter().find(|x| x.code() == c.0))
                .unwrap_or(RevocationReason::Unspecified);
            (
                ca::serial_hex(r.raw_serial()),
                r.revocation_date.to_datetime(),
                reason,
            )
        })
        .collect()
}

fn bad_roster() -> Error {
    Error::bad_file(
        ROSTER,
        "holds a serial that is not hex",
        "restore ca/intermediates.tsv from git history",
    )
}

/// The repository's trust anchor: `ca/root.crt` of the oldest first-parent commit that has
/// one — unless that commit already had `ca/ca.crt` without a root, in which case the CA was
/// migrated and its original `ca/ca.crt` is the root.
///
/// Every commit HEAD reaches that begins a CA (any parent, not only the first: a merge whose
/// first parent is another CA's orphan commit must not make that CA the anchor) must begin the
/// same one; two different beginnings are refused, naming both commits.
pub fn anchor(repo: &CaRepo) -> Result<Option<Vec<u8>>> {
    let history = repo.history()?;
    let anchors = history.anchors();
    if let Some((first, blob)) = anchors.first() {
        if let Some((other, _)) = anchors.iter().find(|(_, b)| b != blob) {
            return Err(Error::usage(
                format!(
                    "history holds the beginnings of two different CAs: commit {} and commit {} each add a CA certificate that no parent has",
                    crate::repository::seal::short(&first.to_string()),
                    crate::repository::seal::short(&other.to_string())
                ),
                "a merge joined another CA's history to this one (a merge whose first parent is an unrelated commit hides main behind its second parent); reset main to the last commit gitca wrote before that merge and merge the change again with main as first parent",
            ));
        }
        return history.read(&repo.git, *blob, ca::MAX_CERT_BYTES);
    }
    let Some(first) = history.oldest_with(&[CA_CERT, ROOT_CERT]) else {
        return Ok(None);
    };
    let Some(blob) = history
        .blob_at(ROOT_CERT, first)
        .or_else(|| history.blob_at(CA_CERT, first))
    else {
        return Ok(None);
    };
    history.read(&repo.git, blob, ca::MAX_CERT_BYTES)
}

/// Loads and checks the root side; `current` is `ca/ca.crt`, already parsed.
pub fn load(repo: &CaRepo, current: &CaCert) -> Result<Hierarchy> {
    let dir = &repo.dir;
    let root = CaCert::parse(&dir.read_string(ROOT_CERT, ca::MAX_CERT_BYTES)?)
        .map_err(|_| bad(ROOT_CERT, "is not a usable CA certificate"))?;
    ca::verify_ca_signature(&root, &root.spki_der)
        .map_err(|_| bad(ROOT_CERT, "is not a self-signed CA certificate"))?;
    if let Some(anchor) = anchor(repo)? {
        let anchor = CaCert::parse(&String::from_utf8_lossy(&anchor)).ok();
        if anchor.is_some_and(|a| a.der != root.der) {
            return Err(Error::bad_file(
                ROOT_CERT,
                "is not the root this CA was created with",
                "ca/root.crt never changes: restore it from the first commit that has it (git log --diff-filter=A -- ca/root.crt ca/ca.crt)",
            ));
        }
    }
    let (root_crl_text, root_crl, root_crl_recovered) = root_crl(repo, &root)?;
    let revoked_by_root = revocations(&root_crl_text);
    // Only the root's own signature says an intermediate is revoked: the newest root CRL.
    let check_intermediate = |cert: &CaCert,
                              path: &str,
                              may_be_revoked: bool|
     -> Result<(String, bool)> {
        ca::verify_ca_signature(cert, &root.spki_der)
            .map_err(|_| bad(path, "is not signed by the root (ca/root.crt)"))?;
        let row = Intermediate::of(cert)?;
        let is_revoked = root_crl.serials.contains(&row.serial);
        if is_revoked && !may_be_revoked {
            return Err(Error::bad_file(
                path,
                format!("is the intermediate {} the root revoked", row.id),
                "a revoked intermediate never signs again: restore the current one from git history, or make a new one with `gitca root new-intermediate`",
            ));
        }
        Ok((row.id, is_revoked))
    };
    let (current_id, _) = check_intermediate(current, CA_CERT, false)?;
    let previous = match dir.read_opt(PREVIOUS_CERT, ca::MAX_CERT_BYTES)? {
        None => None,
        Some(bytes) => {
            let cert = CaCert::parse(&String::from_utf8_lossy(&bytes))
                .map_err(|_| bad(PREVIOUS_CERT, "is not a usable CA certificate"))?;
            // A retiring intermediate the root revoked is no error: reconcile removes it.
            let (id, revoked) = check_intermediate(&cert, PREVIOUS_CERT, true)?;
            let crl_text = dir.read_string(PREVIOUS_CRL, ca::MAX_CRL_BYTES)?;
            let crl = CrlInfo::parse(&crl_text, Some(&cert))
                .map_err(|_| bad(PREVIOUS_CRL, "is not a CRL signed by ca/previous.crt"))?;
            Some(Retiring {
                cert,
                id,
                crl,
                crl_text,
                revoked,
            })
        }
    };
    let mut known = certified(repo, &root, current, previous.as_ref().map(|p| &p.cert))?;
    refuse_rolled_back_intermediate(repo, &known, current)?;
    for k in &mut known {
        if let Some((_, at, why)) = revoked_by_root.iter().find(|(s, _, _)| *s == k.row.serial) {
            k.row.revoked_at = Some(*at);
            k.row.reason = Some(*why);
        }
    }
    let intermediates: Vec<Intermediate> = known.into_iter().map(|k| k.row).collect();
    let roster_problem = roster_problem(repo, &intermediates);
    Ok(Hierarchy {
        root_id: id_of(&root.der),
        root,
        root_crl,
        root_crl_text,
        root_crl_recovered,
        intermediates,
        roster_problem,
        current: current_id,
        previous,
    })
}

/// The facts of two rosters agree (the subject column is for people, and its form changed).
fn same_rows(a: &Roster, b: &Roster) -> bool {
    let key = |r: &Intermediate| {
        (
            r.id.clone(),
            r.serial.clone(),
            r.not_before,
            r.not_after,
            r.revoked_at,
            r.reason,
        )
    };
    a.rows.len() == b.rows.len() && a.rows.iter().map(key).eq(b.rows.iter().map(key))
}

/// An intermediate found in history, and whether it was ever `ca/ca.crt` (made current).
struct Certified {
    row: Intermediate,
    /// The newest commit whose `ca/ca.crt` it is, when it ever was.
    current_in: Option<git2::Oid>,
}

/// Every intermediate the root certified: each distinct version of `ca/ca.crt` and
/// `ca/previous.crt` in history, and the files on disk, that verifies under the root (the root
/// itself, a migrated CA's old `ca/ca.crt`, left out). Oldest first.
fn certified(
    repo: &CaRepo,
    root: &CaCert,
    current: &CaCert,
    previous: Option<&CaCert>,
) -> Result<Vec<Certified>> {
    let mut found: Vec<Certified> = Vec::new();
    let mut add = |cert: &CaCert, current_in: Option<git2::Oid>| {
        if cert.der == root.der || ca::verify_ca_signature(cert, &root.spki_der).is_err() {
            return;
        }
        let id = id_of(&cert.der);
        if let Some(known) = found.iter_mut().find(|k| k.row.id == id) {
            known.current_in = known.current_in.or(current_in);
        } else if let Ok(row) = Intermediate::of(cert) {
            found.push(Certified { row, current_in });
        }
    };
    add(current, None);
    if let Some(p) = previous {
        add(p, None);
    }
    for path in [CA_CERT, PREVIOUS_CERT] {
        each_version(repo, path, ca::MAX_CERT_BYTES, |oid, text| {
            if let Ok(cert) = CaCert::parse(&text) {
                add(&cert, (path == CA_CERT).then_some(oid));
            }
        })?;
    }
    found.sort_by(|a, b| (a.row.not_before, &a.row.id).cmp(&(b.row.not_before, &b.row.id)));
    Ok(found)
}

/// A CA certificate the repository holds or held, and where: `ca/ca.crt` on disk, or
/// `ca/ca.crt of commit 0123456789ab`.
pub struct Held {
    pub cert: CaCert,
    pub place: String,
}

/// Every CA certificate the repository holds or ever held: `ca/root.crt`, `ca/ca.crt` and
/// `ca/previous.crt`, on disk and each version history holds (the first-parent line and what
/// merges brought in), distinct, on disk first. A key any of them certifies is a key this CA
/// has or had — the root's, a migrated CA's, every intermediate's, retired and revoked ones
/// included — which a ceremony never certifies again as a new intermediate's. Read from
/// history rather than recorded: nothing to keep in step, nothing a merge can drop, and the
/// walk is the one [`load`] makes anyway (certificates are small).
pub fn ca_certificates_ever(repo: &CaRepo) -> Result<Vec<Held>> {
    let mut held: Vec<Held> = Vec::new();
    let mut add = |text: &str, place: String| {
        if let Ok(cert) = CaCert::parse(text) {
            if !held.iter().any(|h| h.cert.der == cert.der) {
                held.push(Held { cert, place });
            }
        }
    };
    for path in [ROOT_CERT, CA_CERT, PREVIOUS_CERT] {
        if let Some(bytes) = repo.dir.read_opt(path, ca::MAX_CERT_BYTES)? {
            add(&String::from_utf8_lossy(&bytes), path.to_string());
        }
    }
    for path in [ROOT_CERT, CA_CERT, PREVIOUS_CERT] {
        each_version(repo, path, ca::MAX_CERT_BYTES, |oid, text| {
            add(
                &text,
                format!("{path} of commit {}", &oid.to_string()[..12]),
            );
        })?;
    }
    Ok(held)
}

/// What differs between `ca/intermediates.tsv` and the intermediates the root signed, if
/// anything, with how to restore it.
fn roster_problem(repo: &CaRepo, intermediates: &[Intermediate]) -> Option<String> {
    let derived = Roster {
        rows: intermediates.to_vec(),
    };
    let text = repo.dir.read_string(ROSTER, 1 << 20).ok();
    let on_disk = text.as_deref().map(Roster::parse);
    let why = match on_disk {
        None => "is missing or unreadable".to_string(),
        Some(Err(_)) => "does not parse".to_string(),
        Some(Ok(r)) if same_rows(&r, &derived) => return None,
        Some(Ok(r)) => {
            let differs = derived
                .rows
                .iter()
                .find(|d| {
                    r.get(&d.id).is_none_or(|row| {
                        !same_rows(
                            &Roster {
                                rows: vec![row.clone()],
                            },
                            &Roster {
                                rows: vec![(*d).clone()],
                            },
                        )
                    })
                })
                .map(|d| match r.get(&d.id) {
                    None => format!("intermediate {} is not listed", d.id),
                    Some(row) if row.serial != d.serial => format!(
                        "intermediate {} is listed with serial {}, but its certificate has {}",
                        d.id, row.serial, d.serial
                    ),
                    Some(row) if row.reason != d.reason => format!(
                        "intermediate {} is listed as {}, but the root CRL says {}",
                        d.id,
                        row.reason
                            .map_or("not revoked".into(), |x| format!("revoked ({x})")),
                        d.reason
                            .map_or("not revoked".into(), |x| format!("revoked ({x})"))
                    ),
                    Some(_) => format!("the row of intermediate {} was changed", d.id),
                })
                .or_else(|| {
                    r.rows
                        .iter()
                        .find(|row| derived.get(&row.id).is_none())
                        .map(|row| format!("it lists {}, which the root never signed", row.id))
                });
            differs.unwrap_or_else(|| "its rows are not in order".into())
        }
    };
    Some(format!(
        "{ROSTER} {why}: it is derived from the intermediates the root signed (their certificates in history) and the root CRL, and nothing trusts it; restore it with `git checkout $(git log -1 --format=%H -- {ROOT_CRL}) -- {ROSTER}`, or let the next ceremony (`gitca root sign-crl`) rewrite it"
    ))
}

/// `ca/ca.crt` must be the newest intermediate the repository's history ever made current: a
/// merge that puts a retired intermediate back (with its key) would let it sign again and make
/// its older seal look like the newest, dropping what the current one issued. An error before
/// any key is unlocked, as for any other edit of `ca/`.
fn refuse_rolled_back_intermediate(
    repo: &CaRepo,
    known: &[Certified],
    current: &CaCert,
) -> Result<()> {
    let newest = known
        .iter()
        .filter_map(|k| k.current_in.map(|c| (k, c)))
        .max_by_key(|(k, _)| k.row.not_before);
    match newest {
        Some((k, commit)) if k.row.not_before > current.not_before => Err(Error::bad_file(
            CA_CERT,
            format!(
                "ca/ca.crt is intermediate {}, older than intermediate {} (ca/ca.crt of commit {}): a retired intermediate was put back",
                id_of(&current.der),
                k.row.id,
                &commit.to_string()[..12]
            ),
            format!(
                "only a root ceremony changes the issuing intermediate: restore it with `{}`",
                restore_issuing(repo, commit)
            ),
        )),
        _ => Ok(()),
    }
}

/// The command that puts back the issuing intermediate's files as `commit` holds them: its
/// certificate and its key's record in whichever custody it had there (`ca/ca.key.age` and
/// `ca/recipients.txt`, or the token record `ca/ca.key.pkcs11`), removing the other
/// custody's files the working tree holds.
fn restore_issuing(repo: &CaRepo, commit: git2::Oid) -> String {
    let token = crate::authority::custody::token_file(&crate::authority::custody::ISSUING);
    let files = [CA_CERT, KEY_FILE, token.as_str(), RECIPIENTS_FILE];
    let tree = repo.git.find_commit(commit).and_then(|c| c.tree()).ok();
    let held = |f: &str| {
        tree.as_ref()
            .is_none_or(|t| t.get_path(std::path::Path::new(f)).is_ok())
    };
    let short = &commit.to_string()[..12];
    let mut command = format!(
        "git checkout {short} -- {}",
        files
            .iter()
            .filter(|f| held(f))
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    );
    let extra: Vec<&str> = files
        .iter()
        .filter(|f| !held(f) && matches!(repo.dir.meta(f), Ok(Some(_))))
        .copied()
        .collect();
    if !extra.is_empty() {
        command.push_str(&format!(" && git rm -q -- {}", extra.join(" ")));
    }
    command
}

/// Calls `each` with every distinct version of `path` in HEAD's first-parent history, newest
/// first, as text, and the newest commit that has it. One at a time: a long history never sits
/// in memory at once. Versions over `limit` bytes are skipped without being inflated, and so
/// is what is not UTF-8 (see [`crate::repository::history`]).
fn each_version(
    repo: &CaRepo,
    path: &str,
    limit: u64,
    mut each: impl FnMut(git2::Oid, String),
) -> Result<()> {
    let history = repo.history()?;
    for (blob, index) in history.versions(path) {
        if let (Some(text), Some(commit)) =
            (history.text(&repo.git, blob, limit)?, history.commit(index))
        {
            each(commit, text);
        }
    }
    Ok(())
}

fn bad(path: &str, what: &str) -> Error {
    Error::bad_file(
        path,
        format!("{path} {what}"),
        format!("{path} is written by gitca's root ceremonies only; restore it from git history"),
    )
}

/// The newest root CRL: the one on disk, unless history holds one with a higher number (a
/// merge put an older one back: the newer one stands in, and the reason is returned).
fn root_crl(repo: &CaRepo, root: &CaCert) -> Result<(String, CrlInfo, Option<String>)> {
    let disk = repo
        .dir
        .read_opt(ROOT_CRL, MAX_ROOT_CRL_BYTES)
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| CrlInfo::parse(&t, Some(root)).ok().map(|i| (t, i)));
    let mut best = disk.clone();
    let mut from: Option<String> = None;
    each_version(repo, ROOT_CRL, MAX_ROOT_CRL_BYTES, |oid, text| {
        let Ok(info) = CrlInfo::parse(&text, Some(root)) else {
            return;
        };
        if best.as_ref().is_none_or(|(_, b)| info.number > b.number) {
            best = Some((text, info));
            from = Some(oid.to_string());
        }
    })?;
    let (text, info) = best.ok_or_else(|| bad(ROOT_CRL, "is missing or not signed by the root"))?;
    let why = from.map(|commit| {
        format!(
            "crl/root.crl on disk is {} than root CRL #{} of commit {}: that one stands in",
            if disk.is_some() {
                "older"
            } else {
                "missing or invalid, and older"
            },
            info.number,
            &commit[..12]
        )
    });
    Ok((text, info, why))
}

/// The root certificate: self-signed, allowed one intermediate below it (pathLen 1).
pub fn root_certificate(
    name: &str,
    organization: &str,
    key: &CaKey,
    now: OffsetDateTime,
    validity: time::Duration,
) -> Result<String> {
    ca::self_signed_with(name, organization, key, now, validity, Some(1))
}

/// A new intermediate for `key`, signed by the root: pathLen 0, and extended key usages for
/// everything a profile can grant (Go checks EKUs up the chain: an intermediate without
/// clientAuth fails every client certificate below it at the registry).
pub fn intermediate_certificate(
    root: &CaCert,
    root_key: &CaKey,
    name: &str,
    organization: &str,
    key: &CaKey,
    now: OffsetDateTime,
    validity: time::Duration,
) -> Result<String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyIdMethod, KeyUsagePurpose, SerialNumber,
    };
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, organization);
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::EmailProtection,
        ExtendedKeyUsagePurpose::CodeSigning,
    ];
    let (not_before, not_after) = crate::authority::ca::validity_window(
        now,
        validity,
        (root.not_before, root.not_after),
        None,
    );
    params.not_before = not_before.replace_nanosecond(0).expect("valid");
    params.not_after = not_after.replace_nanosecond(0).expect("valid");
    params.serial_number = Some(SerialNumber::from_slice(&ca::random_serial()?));
    params.key_identifier_method = KeyIdMethod::Sha256;
    params.use_authority_key_identifier_extension = true;
    let issuer = Issuer::from_ca_cert_der(&root.der.clone().into(), root_key)
        .map_err(Error::crypto("root issuer"))?;
    let cert = params
        .signed_by(key, &issuer)
        .map_err(Error::crypto("intermediate certificate"))?;
    Ok(cert.pem())
}

/// The common name of the `n`th intermediate of a CA called `name`.
pub fn intermediate_name(name: &str, n: usize) -> String {
    format!("{name} Issuing CA {n}")
}

/// Signs the root CRL of a ceremony: number one above the current, nextUpdate `validity`
/// from now and never earlier than the current one's.
pub fn sign_root_crl(
    root: &CaCert,
    root_key: &CaKey,
    number: u64,
    now: OffsetDateTime,
    validity: time::Duration,
    previous_next: Option<OffsetDateTime>,
    entries: &[CrlEntry],
) -> Result<String> {
    let next = next_crl_update(now, validity, previous_next).min(root.not_after);
    ca::sign_crl(root, root_key, number, now, next, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_round_trips_and_refuses_damage() {
        let t = parse_time("2026-01-01T00:00:00Z").unwrap();
        let r = Roster {
            rows: vec![
                Intermediate {
                    id: "0123456789abcdef".into(),
                    serial: "7f01".into(),
                    not_before: t,
                    not_after: t + time::Duration::days(100),
                    revoked_at: Some(t),
                    reason: Some(RevocationReason::KeyCompromise),
                    subject: "CN=X Issuing CA 1, O=X".into(),
                },
                Intermediate {
                    id: "fedcba9876543210".into(),
                    serial: "7f02".into(),
                    not_before: t,
                    not_after: t + time::Duration::days(100),
                    revoked_at: None,
                    reason: None,
                    subject: "CN=X Issuing CA 2, O=X".into(),
                },
            ],
        };
        let text = r.render();
        assert_eq!(Roster::parse(&text).unwrap(), r);
        for bad in [
            text.replace("0123456789abcdef", "0123"),
            text.replace("key-compromise", "oops"),
            text.replace("7f02", "zz"),
            format!("{text}{}", text.lines().last().unwrap()),
        ] {
            assert!(Roster::parse(&bad).is_err(), "{bad}");
        }
    }
}
