//! The root custodians' ceremonies (`gitca root …`): the only commands that decrypt the root
//! key of a CA with an offline root (see [`crate::authority::hierarchy`]). Each one unlocks the root key
//! in memory, signs, writes and commits, like reconcile: all or nothing.
//!
//! - `sign-crl`: re-signs the root CRL (revoked intermediates, and revoked certificates the root
//!   signed itself before a migration) for another `root.crl_validity`.
//! - `new-intermediate`: a new issuing intermediate; the current one is either revoked on the
//!   root CRL (`--revoke-current REASON`: a compromise) or retired (its CRL stays current, kept
//!   by reconcile, until no certificate it signed is valid). The next reconcile re-issues every
//!   identity under the new one, from the CSRs on file.
//! - `migrate`: a single-level CA becomes the root of a new intermediate (same certificate, so
//!   every server and client that trusts it keeps trusting it).

use std::io::Write;
use std::path::Path;

use time::OffsetDateTime;

use crate::authority::ca::{self, CaCert, CaKey};
use crate::authority::custody::{self, Custody, KeySource};
use crate::authority::hierarchy::{self as h, Intermediate};
use crate::authority::revocation::RevocationReason;
use crate::authority::token::{self, Pkcs11Uri, Record};
use crate::error::{Error, Result};
use crate::layout::{
    CA_CERT, CONFIG_FILE, CRL_FILE, KEY_FILE, LEDGER_FILE, PREVIOUS_CERT, PREVIOUS_CRL,
    PREVIOUS_KEY, RECIPIENTS_FILE, ROOT_CERT, ROOT_CRL, ROOT_KEY, ROOT_RECIPIENTS, ROSTER,
    SEAL_FILE,
};
use crate::repository::config::{self, Config, Dur};
use crate::repository::git::{self, CaRepo};
use crate::repository::ledger;
use crate::repository::load;
use crate::repository::recipients;
use crate::repository::seal::{Seal, Standing};
use crate::time::fmt_time;

/// What a ceremony starts from: the repository locked and clean under ca/ and crl/, with an
/// offline root, and its outputs as the CA sealed them.
struct Start {
    repo: CaRepo,
    _lock: std::fs::File,
    outputs: load::Outputs,
    config: Config,
}

fn start(dir: &Path) -> Result<Start> {
    let repo = CaRepo::open(dir)?;
    let lock = repo.lock()?;
    refuse_dirty(&repo)?;
    // The ceremony's commit is signed like reconcile's: no key, no ceremony (before unlocking).
    repo.history_signer()?;
    let outputs = load::outputs(&repo)?;
    if outputs.hierarchy.is_none() {
        return Err(Error::usage(
            "this CA has no offline root",
            "`gitca root migrate` moves a single-level CA to one; `gitca init --offline-root` makes a new one",
        ));
    }
    if let Standing::Recovered { .. } = outputs.standing {
        return Err(Error::usage(
            "ledger.tsv, crl/ca.crl or ledger.sig is not what the CA sealed",
            "run `gitca reconcile` first (it writes the sealed versions back), then the ceremony",
        ));
    }
    let config = Config::parse(&repo.dir.read_string(CONFIG_FILE, config::MAX_BYTES)?)?;
    Ok(Start {
        repo,
        _lock: lock,
        outputs,
        config,
    })
}

fn refuse_dirty(repo: &CaRepo) -> Result<()> {
    let dirty: Vec<String> = repo
        .dirty_paths()?
        .into_iter()
        .filter(|p| {
            p.starts_with("ca/")
                || p.starts_with("crl/")
                || p.starts_with("ledger")
                || p == CONFIG_FILE
        })
        .collect();
    if dirty.is_empty() {
        return Ok(());
    }
    Err(Error::Dirty {
        files: dirty
            .iter()
            .map(|p| format!("  {p}"))
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

fn unlock_root(repo: &CaRepo, root: &CaCert, source: &KeySource) -> Result<CaKey> {
    let key = custody::unlock_vault(&repo.dir, &h::ROOT_VAULT, source)?;
    custody::check_key_matches(&h::ROOT_VAULT, root, &key)?;
    Ok(key)
}

/// Writes `files` (None: remove) and commits them; puts everything back on failure.
fn commit(repo: &CaRepo, files: Vec<(&str, Option<Vec<u8>>)>, message: &str) -> Result<git2::Oid> {
    let mut tx = git::Transaction::new(&repo.dir);
    let result = (|| -> Result<git2::Oid> {
        for (path, data) in files {
            match data {
                Some(d) => tx.write(path, d),
                None => tx.remove(path),
            }
        }
        tx.apply()?;
        repo.commit_files(std::mem::take(&mut tx.done), message)
    })();
    result.inspect_err(|_| tx.rollback())
}

/// The root CRL of a ceremony at `now`, revoking `revoke` too, and its entries.
fn next_root_crl(
    hierarchy: &h::Hierarchy,
    root_key: &CaKey,
    ledger: &ledger::Ledger,
    config: &Config,
    now: OffsetDateTime,
    revoke: &[(String, RevocationReason)],
) -> Result<(String, ca::CrlInfo, Vec<ca::CrlEntry>)> {
    let entries = hierarchy.root_crl_entries(ledger, now, revoke)?;
    let number = hierarchy.root_crl.number + 1;
    let pem = h::sign_root_crl(
        &hierarchy.root,
        root_key,
        number,
        now,
        config.root.crl_validity.0,
        hierarchy.root_crl.next_update,
        &entries,
    )?;
    let info = ca::CrlInfo::parse(&pem, Some(&hierarchy.root))?;
    if info.number != number || info.serials.len() != entries.len() {
        return Err(Error::Crypto {
            what: "pre-issuance root CRL lint",
            detail: "the signed root CRL differs from what was meant".into(),
        });
    }
    Ok((pem, info, entries))
}

pub fn sign_crl(
    dir: &Path,
    now: OffsetDateTime,
    source: &KeySource,
    out: &mut dyn Write,
) -> Result<()> {
    let s = start(dir)?;
    let hierarchy = s.outputs.hierarchy.clone().expect("checked by start");
    let root_key = unlock_root(&s.repo, &hierarchy.root, source)?;
    let retired = idle_previous(&hierarchy, &s.outputs.ledger, now);
    let revoke: Vec<(String, RevocationReason)> = retired
        .iter()
        .map(|id| (id.clone(), RevocationReason::CessationOfOperation))
        .collect();
    let (pem, info, entries) = next_root_crl(
        &hierarchy,
        &root_key,
        &s.outputs.ledger,
        &s.config,
        now,
        &revoke,
    )?;
    drop(root_key);
    let published = hierarchy
        .unpublished_revocations(&s.outputs.ledger, now)
        .len();
    // The roster is rewritten from what the root signed, whatever a merge made of it.
    let files = vec![
        (ROOT_CRL, Some(pem.into_bytes())),
        (
            ROSTER,
            Some(hierarchy.roster_for(&entries, None).render().into_bytes()),
        ),
    ];
    let oid = commit(
        &s.repo,
        files,
        &format!(
            "gitca: root CRL #{} (ceremony), next update {}{}",
            info.number,
            info.next_update.map(fmt_time).unwrap_or_default(),
            retired
                .as_deref()
                .map(|id| format!("; retired intermediate {id} revoked"))
                .unwrap_or_default()
        ),
    )?;
    let _ = writeln!(
        out,
        "Signed root CRL #{} ({} entr{}), valid until {} (commit {}).",
        info.number,
        info.serials.len(),
        if info.serials.len() == 1 { "y" } else { "ies" },
        info.next_update.map(fmt_time).unwrap_or_default(),
        &oid.to_string()[..12]
    );
    if published > 0 {
        let _ = writeln!(
            out,
            "  it publishes {published} revocation(s) of certificates the root signed itself"
        );
    }
    if let Some(id) = retired {
        let _ = writeln!(
            out,
            "  the retiring intermediate {id} has no valid certificate left: revoked (cessation-of-operation); the next reconcile removes it"
        );
    }
    let _ = writeln!(
        out,
        "Next: git push; the publish job (`gitca publish`) serves it and servers install it with `gitca deploy crl` (nginx needs the root CRL too)."
    );
    Ok(())
}

/// A retiring intermediate none of whose certificates is valid any more is revoked in this
/// ceremony (its CRL then need not be kept any longer); returns its id.
fn idle_previous(
    hierarchy: &h::Hierarchy,
    ledger: &ledger::Ledger,
    now: OffsetDateTime,
) -> Option<String> {
    hierarchy.idle_previous(ledger, now).map(|p| p.id.clone())
}

/// What `new-intermediate` does with the intermediates in place.
pub struct Rotation {
    pub revoke_current: Option<RevocationReason>,
    pub revoke_previous: Option<RevocationReason>,
    pub validity: Dur,
    /// New recipients for the new intermediate's key (with the root custodians), replacing
    /// ca/recipients.txt; empty: whoever can decrypt the current one.
    pub recipients: Vec<String>,
    /// Recipients the custodian confirms although no key holder signed them.
    pub accept: Vec<String>,
    /// The new intermediate's key in a PKCS#11 token (made there, or adopted) instead of
    /// age-encrypted: custody moves from age to a token, or from one token to another.
    pub token: Option<NewTokenKey>,
}

/// `new-intermediate --pkcs11 URI [--pkcs11-generate]`: the token key the new intermediate
/// gets. The module and PIN are the operator's ([`KeySource`]'s token access).
pub struct NewTokenKey {
    pub uri: Pkcs11Uri,
    pub generate: bool,
}

/// Files a ceremony writes (`None`: removes), by path.
type Files<'a> = Vec<(&'a str, Option<Vec<u8>>)>;

/// Where a new intermediate's key goes, settled before the root key is unlocked.
enum Placement {
    /// Age-encrypted to these recipients; `ca/recipients.txt`'s standing (its next version
    /// is signed by the new key).
    Age(Custody, recipients::Standing),
    /// Held by a token, which proved it signs: what the repository records of it.
    Token(Record),
}

/// Whom a new intermediate's key is encrypted to: `replacing` (and the root custodians) when
/// given, else whoever can decrypt the current one (`ca/recipients.txt`); checked against what
/// the key holders signed, shown, and confirmed (see [`crate::repository::recipients`]) before any key is
/// unlocked. Returns the custody and the standing of `ca/recipients.txt` (for its next
/// signed version).
fn issuing_custody(
    repo: &CaRepo,
    issuing_signer: &CaCert,
    root_signer: Option<&CaCert>,
    replacing: &[String],
    named: &[String],
    out: &mut dyn Write,
) -> Result<(Custody, recipients::Standing)> {
    let (issuing, issuing_standing) = issuing_recipients(repo, issuing_signer, replacing)?;
    let root = match root_signer {
        // A root key in a token has no custodians' list: nobody to add.
        Some(_) if custody::token_record(&repo.dir, &h::ROOT_VAULT)?.is_some() => None,
        Some(root) => Some(recipients::judge(repo, &h::ROOT_VAULT, root)?),
        None => None,
    };
    let mut to: Vec<String> = if replacing.is_empty() {
        issuing.clone()
    } else {
        replacing.iter().map(|r| r.trim().to_string()).collect()
    };
    if let (false, Some((root_list, _))) = (replacing.is_empty(), &root) {
        for r in &root_list.recipients {
            if !to.contains(r) {
                to.push(r.clone());
            }
        }
    }
    if to.is_empty() {
        return Err(Error::usage(
            "ca/recipients.txt lists no recipient for the issuing key (a passphrase CA?)",
            "encrypt the CA key to CI's age recipient first: gitca rekey -r age1…",
        ));
    }
    let mut sources = Vec::new();
    if let Some(standing) = &issuing_standing {
        sources.push((RECIPIENTS_FILE, standing, issuing.as_slice()));
    }
    if let Some((list, standing)) = &root {
        sources.push((ROOT_RECIPIENTS, standing, list.recipients.as_slice()));
    }
    let mut confirmed: Vec<String> = replacing.iter().map(|r| r.trim().to_string()).collect();
    confirmed.extend(named.iter().map(|r| r.trim().to_string()));
    recipients::Agreement {
        what: "the new intermediate's key",
        to: &to,
        sources,
        named: &confirmed,
    }
    .confirm(out)?;
    Ok((
        Custody::Recipients(custody::validate_recipients(&to)?),
        issuing_standing.unwrap_or(recipients::Standing::Unsigned),
    ))
}

/// Whom the current intermediate's key is encrypted to (`ca/recipients.txt`) and the list's
/// standing; nobody and no list when a token holds that key, so then `replacing` must name
/// the new key's recipients.
fn issuing_recipients(
    repo: &CaRepo,
    issuing_signer: &CaCert,
    replacing: &[String],
) -> Result<(Vec<String>, Option<recipients::Standing>)> {
    if custody::token_record(&repo.dir, &custody::ISSUING)?.is_none() {
        let (list, standing) = recipients::judge(repo, &custody::ISSUING, issuing_signer)?;
        return Ok((list.recipients, Some(standing)));
    }
    if replacing.is_empty() {
        return Err(Error::usage(
            "the current intermediate's key is in a PKCS#11 token: no ca/recipients.txt names whom to encrypt the new one to",
            "name CI's age recipient: --recipient age1… (or keep the new key in a token: --pkcs11 URI)",
        ));
    }
    Ok((Vec::new(), None))
}

/// The `new-intermediate` ceremony: a new issuing intermediate signed by the root, the current
/// one revoked or retiring, committed with the root CRL and roster that follow.
pub fn new_intermediate(
    dir: &Path,
    now: OffsetDateTime,
    source: &KeySource,
    rotation: Rotation,
    out: &mut dyn Write,
) -> Result<()> {
    let s = start(dir)?;
    let current_in_token = custody::token_record(&s.repo.dir, &custody::ISSUING)?.is_some();
    refuse_recipients_without_revocation(&rotation, current_in_token)?;
    let mut hierarchy = s.outputs.hierarchy.clone().expect("checked by start");
    let current = s.outputs.ca.clone();
    let rotation = settle_previous(&s, &mut hierarchy, rotation, now)?;
    let (key, placement) = place_new_key(&s, &hierarchy, &current, &rotation, source, out)?;
    let root_key = unlock_root(&s.repo, &hierarchy.root, source)?;
    let new = sign_new_intermediate(
        (&hierarchy.root, &root_key),
        key,
        &s.config,
        hierarchy.intermediates.len() + 1,
        now,
        rotation.validity,
    )?;
    let current_id = hierarchy.current.clone();
    let previous_id = hierarchy.previous.as_ref().map(|p| p.id.clone());
    let (root_crl, root_crl_number, roster) =
        revoke_on_root_crl(&s, &hierarchy, root_key, &new.row, &rotation, now)?;

    // The new intermediate's first CRL, and the seal it makes over the outputs.
    let previous_crl = retiring_crl(&s, &hierarchy, &rotation);
    let ledger_text = s.outputs.ledger.render();
    let (crl, seal) = first_crl_and_seal(
        &new.cert,
        &new.key,
        (&s.config, now),
        s.outputs.standing.next_sequence(),
        &ledger_text,
        previous_crl.as_deref(),
    )?;
    let token_files = [
        custody::token_file(&custody::ISSUING),
        custody::token_file(&h::PREVIOUS_VAULT),
    ];
    let mut files: Vec<(&str, Option<Vec<u8>>)> = vec![
        (CA_CERT, Some(new.pem.into_bytes())),
        (CRL_FILE, Some(crl.into_bytes())),
        (ROSTER, Some(roster.render().into_bytes())),
        (ROOT_CRL, Some(root_crl.into_bytes())),
        (SEAL_FILE, Some(seal.render().into_bytes())),
        (LEDGER_FILE, Some(ledger_text.into_bytes())),
    ];
    // Custody of the new key first: the current one's files move aside below, so the issuing
    // files written here must not name them.
    files.extend(issuing_key_files(new.key, placement, &token_files[0])?);
    previous_files(
        &s,
        &hierarchy,
        &rotation,
        &current,
        (previous_crl, &token_files),
        &mut files,
    )?;
    let what = match rotation.revoke_current {
        Some(why) => format!("revoked intermediate {current_id} ({why})"),
        None => format!("intermediate {current_id} retires"),
    };
    let message = format!("gitca: new intermediate {} (ceremony); {what}", new.row.id);
    let oid = commit(&s.repo, files, &message)?;
    report_new_intermediate(
        out,
        (&new.row, oid),
        &current_id,
        previous_id.as_deref(),
        &rotation,
        root_crl_number,
    );
    Ok(())
}

/// A new intermediate: a fresh key, and its certificate signed by the root.
struct NewIntermediate {
    key: CaKey,
    pem: String,
    cert: CaCert,
    row: Intermediate,
}

/// Signs the certificate of a new intermediate holding `key`, the `number`th intermediate of
/// the CA, with the root key.
fn sign_new_intermediate(
    (root, root_key): (&CaCert, &CaKey),
    key: CaKey,
    config: &Config,
    number: usize,
    now: OffsetDateTime,
    validity: Dur,
) -> Result<NewIntermediate> {
    let pem = h::intermediate_certificate(
        root,
        root_key,
        &h::intermediate_name(&config.ca.name, number),
        &config.ca.organization,
        &key,
        now,
        validity.0,
    )?;
    let cert = CaCert::parse(&pem)?;
    let row = Intermediate::of(&cert)?;
    Ok(NewIntermediate {
        key,
        pem,
        cert,
        row,
    })
}

/// Refuses new recipients for a rotation that keeps the current intermediate retiring.
fn refuse_recipients_without_revocation(rotation: &Rotation, current_in_token: bool) -> Result<()> {
    if !rotation.recipients.is_empty() && rotation.revoke_current.is_none() && !current_in_token {
        // A retiring intermediate's key stays with the current recipients (CI keeps its CRL):
        // both keys must be readable by the same CI identity. (A token-held one is read
        // through the token, whoever the new key's recipients are.)
        return Err(Error::usage(
            "--recipient replaces CI's recipient for the new intermediate, which only a rotation with --revoke-current may do",
            "for a planned rotation, change CI's recipient first with `gitca rekey --add NEW --remove OLD`, then run the ceremony",
        ));
    }
    Ok(())
}

/// Settles the retiring intermediate: revoked on the way when idle, refused when it still
/// has valid certificates and the current one would retire too (only one retires at a time).
/// Returns the rotation with the idle one's revocation added.
fn settle_previous(
    s: &Start,
    hierarchy: &mut h::Hierarchy,
    rotation: Rotation,
    now: OffsetDateTime,
) -> Result<Rotation> {
    // A retiring intermediate with no valid certificate left is revoked on the way.
    let idle = idle_previous(hierarchy, &s.outputs.ledger, now);
    if let (Some(p), Some(_)) = (hierarchy.previous.as_mut(), &idle) {
        p.revoked = true;
    }
    let rotation = Rotation {
        revoke_previous: rotation.revoke_previous.or(idle
            .as_ref()
            .map(|_| RevocationReason::CessationOfOperation)),
        ..rotation
    };
    if let (Some(p), None) = (
        hierarchy.previous.as_ref().filter(|p| !p.revoked),
        rotation.revoke_previous,
    ) {
        if rotation.revoke_current.is_none() {
            let live = s
                .outputs
                .ledger
                .records
                .iter()
                .filter(|r| r.issuer.as_deref() == Some(p.id.as_str()) && r.is_live(now))
                .count();
            return Err(Error::usage(
                format!(
                    "intermediate {} is still retiring ({live} valid certificate(s)): only one retires at a time",
                    p.id
                ),
                "wait until reconcile has retired it (after the supersede_grace), revoke the current one instead (--revoke-current REASON), or revoke the retiring one (--revoke-previous superseded)",
            ));
        }
    }
    Ok(rotation)
}

/// The revocations of this ceremony, on the root CRL, signed with the root key (dropped once
/// done); the roster follows from it. Returns the root CRL, its number, and the roster.
fn revoke_on_root_crl(
    s: &Start,
    hierarchy: &h::Hierarchy,
    root_key: CaKey,
    new_row: &Intermediate,
    rotation: &Rotation,
    now: OffsetDateTime,
) -> Result<(String, u64, h::Roster)> {
    let current_id = hierarchy.current.clone();
    let previous_id = hierarchy.previous.as_ref().map(|p| p.id.clone());
    let revoke = ceremony_revocations(&current_id, previous_id.as_deref(), rotation);
    let (root_crl, root_info, entries) = next_root_crl(
        hierarchy,
        &root_key,
        &s.outputs.ledger,
        &s.config,
        now,
        &revoke,
    )?;
    drop(root_key);
    let roster = hierarchy.roster_for(&entries, Some(new_row));
    Ok((root_crl, root_info.number, roster))
}

/// The intermediates this ceremony revokes on the root CRL, with their reasons.
fn ceremony_revocations(
    current_id: &str,
    previous_id: Option<&str>,
    rotation: &Rotation,
) -> Vec<(String, RevocationReason)> {
    let mut revoke: Vec<(String, RevocationReason)> = Vec::new();
    if let Some(why) = rotation.revoke_current {
        revoke.push((current_id.to_string(), why));
    }
    if let (Some(id), Some(why)) = (previous_id, rotation.revoke_previous) {
        revoke.push((id.to_string(), why));
    }
    revoke
}

/// The CRL of the intermediate that retires after this ceremony, if one does: the current
/// one's when it retires, else the retiring one's when it is not revoked.
fn retiring_crl(s: &Start, hierarchy: &h::Hierarchy, rotation: &Rotation) -> Option<String> {
    if rotation.revoke_current.is_none() {
        Some(s.outputs.crl_text.clone())
    } else if rotation.revoke_previous.is_none() {
        hierarchy.previous.as_ref().map(|p| p.crl_text.clone())
    } else {
        None
    }
}

/// A new intermediate's first CRL (number 1, empty) and the seal it makes over the outputs.
fn first_crl_and_seal(
    new_cert: &CaCert,
    key: &CaKey,
    (config, now): (&Config, OffsetDateTime),
    sequence: u64,
    ledger_text: &str,
    previous_crl: Option<&str>,
) -> Result<(String, Seal)> {
    let crl = ca::sign_crl(new_cert, key, 1, now, now + config.crl.validity.0, &[])?;
    let seal = Seal::sign(
        new_cert,
        key,
        sequence,
        (ledger_text.as_bytes(), crl.as_bytes(), 1),
        previous_crl.map(str::as_bytes),
    )?;
    Ok((crl, seal))
}

/// Encrypts a new intermediate's key to `custody` and signs the recipients list with it; the
/// key is dropped once done. Returns the encrypted key and `ca/recipients.txt`.
fn encrypt_issuing_key(
    key: CaKey,
    custody: &Custody,
    issuing_standing: &recipients::Standing,
) -> Result<(String, String)> {
    let encrypted = custody::encrypt(key.to_pem()?.as_bytes(), custody)?;
    let recipients_text = recipients::signed_text(
        &custody::ISSUING,
        custody,
        issuing_standing.next_sequence(),
        &key,
    )?;
    drop(key);
    Ok((encrypted, recipients_text))
}

/// The retiring intermediate's files: the current one's moved aside when it retires, the
/// retiring one's removed when it is revoked.
fn previous_files<'a>(
    s: &Start,
    hierarchy: &h::Hierarchy,
    rotation: &Rotation,
    current: &CaCert,
    (previous_crl, [issuing_token, previous_token]): (Option<String>, &'a [String; 2]),
    files: &mut Vec<(&'a str, Option<Vec<u8>>)>,
) -> Result<()> {
    if rotation.revoke_current.is_none() {
        // The current intermediate moves aside, its key as it is (CI can still decrypt it, or
        // the token still holds it): the age file, or the token record, under its new name.
        let (from, to, other) = match s.repo.dir.meta(issuing_token)? {
            Some(_) => (
                issuing_token.as_str(),
                previous_token.as_str(),
                PREVIOUS_KEY,
            ),
            None => (KEY_FILE, PREVIOUS_KEY, previous_token.as_str()),
        };
        let old_key = s.repo.dir.read(from, custody::MAX_FILE_BYTES)?;
        files.push((PREVIOUS_CERT, Some(current.pem.clone().into_bytes())));
        files.push((to, Some(old_key)));
        files.push((other, None));
        files.push((PREVIOUS_CRL, previous_crl.map(String::into_bytes)));
    } else if hierarchy.previous.is_some() && rotation.revoke_previous.is_some() {
        for f in [PREVIOUS_CERT, PREVIOUS_KEY, previous_token, PREVIOUS_CRL] {
            files.push((f, None));
        }
    }
    Ok(())
}

/// The new intermediate's key, and where it goes: generated in memory for age (its
/// recipients agreed as [`issuing_custody`] does), or made or adopted in a token (which proves
/// it signs). Settled before the root key is unlocked, so a refusal unlocks nothing.
fn place_new_key(
    s: &Start,
    hierarchy: &h::Hierarchy,
    current: &CaCert,
    rotation: &Rotation,
    source: &KeySource,
    out: &mut dyn Write,
) -> Result<(CaKey, Placement)> {
    let key_type = key_type_of(current)?;
    if let Some(t) = &rotation.token {
        let mut known: Vec<h::Held> = [(&hierarchy.root, ROOT_CERT), (current, CA_CERT)]
            .into_iter()
            .chain(
                hierarchy
                    .previous
                    .as_ref()
                    .map(|p| (&p.cert, PREVIOUS_CERT)),
            )
            .map(|(cert, place)| h::Held {
                cert: cert.clone(),
                place: place.to_string(),
            })
            .collect();
        known.extend(h::ca_certificates_ever(&s.repo)?);
        return token_placement(t, source, key_type, &known);
    }
    let (custody, standing) = issuing_custody(
        &s.repo,
        current,
        Some(&hierarchy.root),
        &rotation.recipients,
        &rotation.accept,
        out,
    )?;
    Ok((
        CaKey::new(key_type.generate()?),
        Placement::Age(custody, standing),
    ))
}

/// A new intermediate's key made or adopted in a token, refused when it is a key this CA has
/// or had (`known`: the root, the current and a retiring intermediate, and every CA
/// certificate in history, see [`h::ca_certificates_ever`]): the root's key would put the
/// offline root online, a current or revoked intermediate's would certify a key the ceremony
/// is meant to replace, and an older intermediate's — retired, even revoked — would make its
/// old certificates, and everything they signed, chain to the new intermediate.
fn token_placement(
    t: &NewTokenKey,
    source: &KeySource,
    key_type: crate::authority::keygen::KeyType,
    known: &[h::Held],
) -> Result<(CaKey, Placement)> {
    let made = token::init_key(&t.uri, &source.token, t.generate.then_some(key_type))?;
    if let Some(held) = known
        .iter()
        .find(|held| crate::authority::pubkey::same_key(&made.record.spki_der, &held.cert.spki_der))
    {
        let (tense, since) = if held.place.contains(" of commit ") {
            ("was", ", a key this CA had")
        } else {
            ("is", "")
        };
        return Err(Error::usage(
            format!(
                "the key {} {tense} already the key of {} ({}, {}{since}): a new intermediate needs a key of its own",
                made.record.uri.render(),
                held.cert.subject,
                ca::id_of(&held.cert.der),
                held.place
            ),
            "name a new key in the token (another object= label) with --pkcs11-generate, or adopt one made for this intermediate; a key that ever certified for this CA never does again; nothing was written",
        ));
    }
    Ok((CaKey::in_token(made.key), Placement::Token(made.record)))
}

/// The issuing key's files after a new intermediate: `ca/ca.key.age` and a
/// `ca/recipients.txt` signed by the new key, or the token record `ca/ca.key.pkcs11`; the
/// other custody's files removed. The key is dropped once done.
fn issuing_key_files(key: CaKey, placement: Placement, token_file: &str) -> Result<Files<'_>> {
    Ok(match placement {
        Placement::Age(custody, standing) => {
            let (encrypted, recipients_text) = encrypt_issuing_key(key, &custody, &standing)?;
            vec![
                (KEY_FILE, Some(encrypted.into_bytes())),
                // Signed by the new intermediate's key: the list its holders agreed to.
                (RECIPIENTS_FILE, Some(recipients_text.into_bytes())),
                (token_file, None),
            ]
        }
        Placement::Token(record) => {
            drop(key);
            vec![
                (
                    token_file,
                    Some(
                        record
                            .render("The issuing intermediate's private key")
                            .into_bytes(),
                    ),
                ),
                (KEY_FILE, None),
                (RECIPIENTS_FILE, None),
            ]
        }
    })
}

/// Prints the new intermediate, what became of the current and retiring ones, and what to do next.
fn report_new_intermediate(
    out: &mut dyn Write,
    (new_row, oid): (&Intermediate, git2::Oid),
    current_id: &str,
    previous_id: Option<&str>,
    rotation: &Rotation,
    root_crl_number: u64,
) {
    let _ = writeln!(
        out,
        "New issuing intermediate {} (valid until {}), commit {}.",
        new_row.id,
        fmt_time(new_row.not_after),
        &oid.to_string()[..12]
    );
    match rotation.revoke_current {
        Some(why) => {
            let _ = writeln!(
                out,
                "  intermediate {current_id} is revoked ({why}) on root CRL #{}: every certificate it signed is refused once servers have the new CRLs",
                root_crl_number
            );
            if !rotation.recipients.is_empty() {
                let _ = writeln!(
                    out,
                    "  the new intermediate's key is encrypted to the recipients given and the root custodians (ca/recipients.txt): give CI its new identity before the next reconcile"
                );
            } else if why == RevocationReason::KeyCompromise && rotation.token.is_none() {
                let _ = writeln!(
                    out,
                    "warning: the new intermediate's key is encrypted to ca/recipients.txt as it was, CI's identity included: if that identity leaked, whoever holds it can decrypt the new key too. Run this ceremony again with --recipient set to CI's new age recipient (and --revoke-current key-compromise)."
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "  intermediate {current_id} retires: its certificates stay valid until reconcile has replaced them and supersede_grace is over; reconcile keeps its CRL (crl/previous.crl) current until a later ceremony revokes it (once none of them is valid)"
            );
        }
    }
    if let (Some(id), Some(why)) = (previous_id, rotation.revoke_previous) {
        let _ = writeln!(out, "  intermediate {id} (retiring) is revoked ({why})");
    }
    let _ = writeln!(
        out,
        "Next: git push. The next `gitca reconcile` re-issues every identity's certificate under {} (same keys, from the CSRs on file); then `gitca deploy cert` on bots and `gitca bundle` for people install them, and `gitca deploy crl` installs the new CRLs on servers.",
        new_row.id
    );
}

/// The key type of an existing CA certificate (a new intermediate keeps it).
fn key_type_of(cert: &CaCert) -> Result<crate::authority::keygen::KeyType> {
    let (_, spki) =
        <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(
            &cert.spki_der,
        )
        .map_err(|e| Error::Crypto {
            what: "CA key type",
            detail: e.to_string(),
        })?;
    use x509_parser::public_key::PublicKey;
    Ok(match spki.parsed() {
        Ok(PublicKey::EC(p)) if p.key_size() == 384 => crate::authority::keygen::KeyType::P384,
        Ok(PublicKey::EC(_)) => crate::authority::keygen::KeyType::P256,
        Ok(PublicKey::RSA(r)) if r.key_size() <= 3072 => crate::authority::keygen::KeyType::Rsa3072,
        Ok(PublicKey::RSA(_)) => crate::authority::keygen::KeyType::Rsa4096,
        _ => crate::authority::keygen::KeyType::P256,
    })
}

/// What `root migrate` is asked for: the root's custodians (for an age-held CA key), and
/// where the first intermediate's key goes.
pub struct Migration {
    /// The root custodians (age or SSH recipients); none when the CA key is in a token, which
    /// then keeps the root key.
    pub custodians: Vec<String>,
    /// Recipients the custodian confirms although no key holder signed them.
    pub accept: Vec<String>,
    pub validity: Dur,
    /// CI's age recipients for the first intermediate's key, when the CA key is in a token
    /// (there is no `ca/recipients.txt` to reuse).
    pub recipients: Vec<String>,
    /// The first intermediate's key in a PKCS#11 token instead of age.
    pub token: Option<NewTokenKey>,
}

/// The `migrate` ceremony: a single-level CA's certificate and key become the root of a new
/// issuing intermediate, the root key encrypted to its custodians only (or kept in the token
/// that holds it).
pub fn migrate(
    dir: &Path,
    now: OffsetDateTime,
    source: &KeySource,
    m: &Migration,
    out: &mut dyn Write,
) -> Result<()> {
    let repo = CaRepo::open(dir)?;
    let _lock = repo.lock()?;
    let root_record = custody::token_record(&repo.dir, &custody::ISSUING)?;
    let outputs = migratable_outputs(&repo, m, root_record.is_some())?;
    let config_text = config_with_root(&repo)?;
    let config = Config::parse(&config_text)?;
    let root = outputs.ca.clone();
    let (key, placement) =
        first_intermediate_key(&repo, &root, m, source, root_record.is_some(), out)?;
    let root_key = custody::unlock(&repo.dir, source)?;
    custody::check_key_matches(&custody::ISSUING, &root, &root_key)?;
    let root_id = ca::id_of(&root.der);

    let new = sign_new_intermediate((&root, &root_key), key, &config, 1, now, m.validity)?;
    let first = new.row.clone();
    let ledger = issued_by_root(&outputs.ledger, &root_id);
    let hierarchy = first_hierarchy(&outputs, &root, root_id, &first);
    let sealed_root = seal_root(&hierarchy, &root_key, &ledger, (&config, now))?;
    let wheres = custody_after_migration(root_record.as_ref(), &placement, m.custodians.len());
    let root_files = root_key_files(root_key, root_record, &m.custodians)?;
    let ledger_text = ledger.render();
    let (crl, seal) = first_crl_and_seal(
        &new.cert,
        &new.key,
        (&config, now),
        outputs.standing.next_sequence(),
        &ledger_text,
        None,
    )?;
    let token_file = custody::token_file(&custody::ISSUING);
    let mut files: Files<'_> = vec![
        (CONFIG_FILE, Some(config_text.into_bytes())),
        (ROOT_CERT, Some(root.pem.clone().into_bytes())),
        (ROSTER, Some(sealed_root.roster.render().into_bytes())),
        (ROOT_CRL, Some(sealed_root.crl.into_bytes())),
        (CA_CERT, Some(new.pem.into_bytes())),
        (CRL_FILE, Some(crl.into_bytes())),
        (LEDGER_FILE, Some(ledger_text.into_bytes())),
        (SEAL_FILE, Some(seal.render().into_bytes())),
    ];
    files.extend(root_files);
    files.extend(issuing_key_files(new.key, placement, &token_file)?);
    let oid = commit(
        &repo,
        files,
        &format!(
            "gitca: migrate to an offline root (ceremony); new intermediate {}",
            first.id
        ),
    )?;
    report_migration(
        out,
        oid,
        (&wheres.0, &wheres.1),
        sealed_root.crl_number,
        &first,
    );
    Ok(())
}

/// The ledger with its issuer column: every certificate so far was signed by the key that is
/// now the root.
fn issued_by_root(ledger: &ledger::Ledger, root_id: &str) -> ledger::Ledger {
    let mut ledger = ledger.clone();
    ledger.with_issuer = true;
    for r in &mut ledger.records {
        r.issuer = Some(root_id.to_string());
    }
    ledger
}

/// Where the root key and the first intermediate's key are after a migration, in words.
fn custody_after_migration(
    root_record: Option<&Record>,
    placement: &Placement,
    custodians: usize,
) -> (String, String) {
    let root = match root_record {
        Some(r) => format!(
            "{ROOT_TOKEN_FILE}: in the PKCS#11 token, {} (never leaves it)",
            r.uri.render()
        ),
        None => format!(
            "{} (encrypted to the {custodians} root custodian(s) only)",
            ROOT_KEY
        ),
    };
    let issuing = match placement {
        Placement::Token(r) => format!("its key in the PKCS#11 token, {}", r.uri.render()),
        Placement::Age(..) => format!("its key in {}, encrypted to {}", KEY_FILE, RECIPIENTS_FILE),
    };
    (root, issuing)
}

/// The first intermediate's key and where it goes: made or adopted in a token (`--pkcs11`);
/// else age, to whoever decrypts the CA key now and the custodians, or — when a token holds
/// the CA key — to the `--recipient`s given. Settled before the CA key is unlocked.
fn first_intermediate_key(
    repo: &CaRepo,
    root: &CaCert,
    m: &Migration,
    source: &KeySource,
    root_in_token: bool,
    out: &mut dyn Write,
) -> Result<(CaKey, Placement)> {
    let key_type = key_type_of(root)?;
    if let Some(t) = &m.token {
        let mut known = vec![h::Held {
            cert: root.clone(),
            place: CA_CERT.to_string(),
        }];
        known.extend(h::ca_certificates_ever(repo)?);
        return token_placement(t, source, key_type, &known);
    }
    let (custody, standing) = if root_in_token {
        issuing_custody(repo, root, None, &m.recipients, &m.accept, out)?
    } else {
        if !m.recipients.is_empty() {
            return Err(Error::usage(
                "--recipient is for a CA whose key is in a PKCS#11 token: this CA's first intermediate goes to ca/recipients.txt's recipients and the custodians",
                "change CI's recipient first with `gitca rekey --add NEW --remove OLD`, then migrate",
            ));
        }
        let (to, standing) = agree_issuing_recipients(repo, root, &m.custodians, &m.accept, out)?;
        (
            Custody::Recipients(custody::validate_recipients(&to)?),
            standing,
        )
    };
    Ok((
        CaKey::new(key_type.generate()?),
        Placement::Age(custody, standing),
    ))
}

/// The root key's files after a migration: encrypted to its custodians with the list they
/// hold it under, or — held by a token — its record moved to `ca/root.key.pkcs11`. The key is
/// dropped once done.
fn root_key_files(
    root_key: CaKey,
    record: Option<Record>,
    custodians: &[String],
) -> Result<Files<'static>> {
    if let Some(record) = record {
        drop(root_key);
        debug_assert_eq!(custody::token_file(&h::ROOT_VAULT), ROOT_TOKEN_FILE);
        return Ok(vec![(
            ROOT_TOKEN_FILE,
            Some(record.render("The root key").into_bytes()),
        )]);
    }
    let root_custody = Custody::Recipients(custody::validate_recipients(custodians)?);
    let encrypted = custody::encrypt(root_key.to_pem()?.as_bytes(), &root_custody)?;
    let recipients = recipients::signed_text(&h::ROOT_VAULT, &root_custody, 1, &root_key)?;
    drop(root_key);
    Ok(vec![
        (ROOT_KEY, Some(encrypted.into_bytes())),
        (ROOT_RECIPIENTS, Some(recipients.into_bytes())),
    ])
}

/// Where a token-held root key is recorded (`custody::token_file` of the root's vault).
const ROOT_TOKEN_FILE: &str = "ca/root.key.pkcs11";

/// The outputs of a CA that may migrate: clean, its history signed, single-level, custodians
/// named, and its outputs as the CA sealed them.
fn migratable_outputs(repo: &CaRepo, m: &Migration, in_token: bool) -> Result<load::Outputs> {
    refuse_dirty(repo)?;
    repo.history_signer()?;
    if h::present(&repo.dir) {
        return Err(Error::usage(
            "this CA already has an offline root",
            "`gitca root new-intermediate` replaces the issuing intermediate",
        ));
    }
    if in_token && !m.custodians.is_empty() {
        return Err(Error::usage(
            "the CA key is in a PKCS#11 token, which keeps it as the root key: there are no custodians to encrypt it to",
            "drop --root-recipient: the root's custodians are whoever holds the token and its PIN (docs/custody.md)",
        ));
    }
    if !in_token && m.custodians.is_empty() {
        return Err(Error::usage(
            "the root needs custodians",
            "pass each custodian's age recipient with --root-recipient age1… (CI is not one of them)",
        ));
    }
    let outputs = load::outputs(repo)?;
    if let Standing::Recovered { .. } = outputs.standing {
        return Err(Error::usage(
            "ledger.tsv, crl/ca.crl or ledger.sig is not what the CA sealed",
            "run `gitca reconcile` first, then migrate",
        ));
    }
    Ok(outputs)
}

/// gitca.yaml's text, with the `root:` section's template appended when it has none (and the
/// result still parses).
fn config_with_root(repo: &CaRepo) -> Result<String> {
    let config_text = repo.dir.read_string(CONFIG_FILE, config::MAX_BYTES)?;
    Ok(
        if Config::parse(&config_text)?.root == config::RootPolicy::default()
            && !config_text.lines().any(|l| l.starts_with("root:"))
        {
            let with = format!(
                "{}\n{}",
                config_text.trim_end_matches('\n'),
                Config::ROOT_TEMPLATE
            );
            if Config::parse(&with).is_ok() {
                with
            } else {
                config_text
            }
        } else {
            config_text
        },
    )
}

/// The new intermediate's key goes to whoever decrypts the CA key now, and the custodians:
/// shown and confirmed before any key is unlocked. Returns the recipients and the standing of
/// `ca/recipients.txt`.
fn agree_issuing_recipients(
    repo: &CaRepo,
    root: &CaCert,
    custodians: &[String],
    accept: &[String],
    out: &mut dyn Write,
) -> Result<(Vec<String>, recipients::Standing)> {
    let (issuing_now, issuing_standing) = recipients::judge(repo, &custody::ISSUING, root)?;
    let mut to = issuing_now.recipients.clone();
    for c in custodians {
        if !to.contains(c) {
            to.push(c.clone());
        }
    }
    let mut named: Vec<String> = custodians.to_vec();
    named.extend(accept.iter().cloned());
    recipients::Agreement {
        what: "the new intermediate's key",
        to: &to,
        sources: vec![(
            RECIPIENTS_FILE,
            &issuing_standing,
            issuing_now.recipients.as_slice(),
        )],
        named: &named,
    }
    .confirm(out)?;
    Ok((to, issuing_standing))
}

/// The hierarchy right after a migration: the former CA as the root, with its CRL, and the
/// first intermediate as the current one.
fn first_hierarchy(
    outputs: &load::Outputs,
    root: &CaCert,
    root_id: String,
    first: &Intermediate,
) -> h::Hierarchy {
    h::Hierarchy {
        root: root.clone(),
        root_id,
        root_crl: outputs.crl.clone(),
        root_crl_text: outputs.crl_text.clone(),
        root_crl_recovered: None,
        intermediates: vec![first.clone()],
        roster_problem: None,
        current: first.id.clone(),
        previous: None,
    }
}

/// The root's files after a migration, made while its key is held.
struct SealedRoot {
    crl: String,
    crl_number: u64,
    roster: h::Roster,
}

/// Signs the root CRL and makes the roster that follows from it.
fn seal_root(
    hierarchy: &h::Hierarchy,
    root_key: &CaKey,
    ledger: &ledger::Ledger,
    (config, now): (&Config, OffsetDateTime),
) -> Result<SealedRoot> {
    let (root_crl, root_info, entries) =
        next_root_crl(hierarchy, root_key, ledger, config, now, &[])?;
    let roster = hierarchy.roster_for(&entries, None);
    Ok(SealedRoot {
        crl: root_crl,
        crl_number: root_info.number,
        roster,
    })
}

/// Prints where the migration put the root and the intermediate, and what to do next.
fn report_migration(
    out: &mut dyn Write,
    oid: git2::Oid,
    (root_key, issuing_key): (&str, &str),
    root_crl_number: u64,
    first: &Intermediate,
) {
    let _ = writeln!(
        out,
        "Migrated to an offline root (commit {}).",
        &oid.to_string()[..12]
    );
    let _ = writeln!(
        out,
        "  root         {} (the former ca/ca.crt: everything that trusted it still does)",
        ROOT_CERT
    );
    let _ = writeln!(out, "  root key     {root_key}");
    let _ = writeln!(
        out,
        "  root CRL     {} #{}: the revocations of the certificates the root signed so far",
        ROOT_CRL, root_crl_number
    );
    let _ = writeln!(
        out,
        "  issuing CA   {CA_CERT}: intermediate {} ({issuing_key})",
        first.id
    );
    if !root_key.contains("PKCS#11") {
        let _ = writeln!(
            out,
            "warning: git history still holds the former ca/ca.key.age, encrypted to everyone who could decrypt it before (CI included): anyone holding one of those identities can still decrypt the root key from an old commit. Retire those identities (rotate CI's age identity and destroy the old one), or, if one may have leaked, make a new root (gitca init --offline-root) instead."
        );
    }
    let _ = writeln!(
        out,
        "Next: git push. The next reconcile re-issues every certificate under the intermediate; after supersede_grace it revokes the old ones, which only the root can publish: run `gitca root sign-crl` then (`gitca status` says when)."
    );
}
