//! `gitca reconcile`: apply the plan — verify the CSRs to sign, unlock the CA key, sign in
//! parallel, write every file atomically, and make one commit.
//!
//! Order matters (DESIGN.md invariants 1 and 8): every check that can refuse the run happens
//! before the CA key is decrypted; files are written only once everything is signed; the
//! commit comes last, and any failure puts every touched file back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;

use rayon::prelude::*;
use time::OffsetDateTime;

use crate::authority::ca::{self, CaCert, CaKey, LeafSpec};
use crate::authority::custody::{self, KeySource};
use crate::authority::revocation::RevocationReason;
use crate::error::{Error, Result};
use crate::layout::{
    cert_path, CONFIG_FILE, CRL_FILE, LEDGER_FILE, PREVIOUS_CERT, PREVIOUS_CRL, PREVIOUS_KEY,
    ROOT_CRL, SEAL_FILE,
};
use crate::output::report;
use crate::reconcile::plan::{Op, Plan};
use crate::reconcile::policy::VerifiedCsr;
use crate::repository::git::{CaRepo, Start, Transaction};
use crate::repository::inventory::Identity;
use crate::repository::ledger::{Ledger, Record, State};
use crate::repository::load::{self, State as Loaded};
use crate::repository::seal::Seal;

pub struct ReconcileOptions {
    pub dir: PathBuf,
    pub now: OffsetDateTime,
    pub key_source: KeySource,
    pub no_commit: bool,
    pub allow_dirty: bool,
    pub quiet: bool,
}

/// What a reconcile did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub plan: Plan,
    /// (identity, serial) of every certificate signed.
    pub issued: Vec<(String, String)>,
    pub commit: Option<git2::Oid>,
    /// Why identities were held or refused, pointing at their entries.
    pub diagnostics: Vec<Error>,
    /// Something was left for a person (see [`EXIT_ATTENTION`]).
    pub attention: bool,
}

/// A certificate to sign: the identity, its verified CSR and the ledger record to be.
struct Job<'a> {
    identity: &'a Identity,
    csr: VerifiedCsr,
    record: Record,
    serial_der: Vec<u8>,
}

/// Revokes a record, or raises an earlier revocation's reason to key-compromise (RFC 5280
/// allows that change; the original revocation date stays). A reason is never lowered.
pub fn apply_revocation(r: &mut Record, why: RevocationReason, now: OffsetDateTime) {
    match r.state {
        State::Issued => {
            r.state = State::Revoked;
            r.revoked_at = Some(now);
            r.reason = Some(why);
        }
        State::Revoked if why == RevocationReason::KeyCompromise => {
            r.reason = Some(why);
        }
        State::Revoked => {}
    }
}

/// Fresh serials, unique against the ledger and each other.
fn fresh_serials(n: usize, ledger: &Ledger) -> Result<Vec<Vec<u8>>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let used: HashSet<&str> = ledger.records.iter().map(|r| r.serial.as_str()).collect();
    let mut mine: HashSet<String> = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        for s in ca::random_serials(n - out.len())? {
            let hex = ca::serial_hex(&s);
            if !used.contains(hex.as_str()) && mine.insert(hex) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Checks a freshly signed certificate before it is written, as Let's Encrypt lints before
/// issuance: it must parse, carry the serial, key and validity we meant, sit inside the CA's
/// validity, and carry exactly the extensions of the profile.
fn lint_leaf(der: &[u8], job: &Job<'_>, ca: &CaCert, crl_url: bool) -> Result<()> {
    let fail = |what: String| Error::Crypto {
        what: "pre-issuance lint",
        detail: format!("certificate for {}: {what}", job.identity.name),
    };
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| fail(e.to_string()))?;
    if !rest.is_empty() {
        return Err(fail("trailing bytes".into()));
    }
    let serial = cert.raw_serial();
    if serial.is_empty() || serial.len() > 20 || serial[0] & 0x80 != 0 {
        return Err(fail(
            "serial is not a positive integer of at most 20 octets".into(),
        ));
    }
    if ca::serial_hex(serial) != job.record.serial {
        return Err(fail("serial differs from the ledger".into()));
    }
    if cert.public_key().raw != job.csr.spki_der.as_slice() {
        return Err(fail("public key differs from the CSR's".into()));
    }
    let v = cert.validity();
    if v.not_before.to_datetime() < ca.not_before || v.not_after.to_datetime() > ca.not_after {
        return Err(fail("validity is outside the CA's".into()));
    }
    let mut oids: Vec<String> = cert
        .extensions()
        .iter()
        .map(|e| e.oid.to_id_string())
        .collect();
    oids.sort();
    let mut want = vec![
        "2.5.29.14",
        "2.5.29.15",
        "2.5.29.19",
        "2.5.29.35",
        "2.5.29.37",
    ];
    if job.identity.email.is_some() || !job.identity.names.is_empty() {
        want.push("2.5.29.17");
    }
    // A server certificate names exactly its declared names and is never a client
    // certificate: serverAuth is its only extended key usage.
    if !job.identity.names.is_empty() {
        let san = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|s| s.value.general_names.len());
        let eku = cert.extended_key_usage().ok().flatten().map(|e| e.value);
        let server_only = eku.is_some_and(|e| {
            e.server_auth
                && !e.client_auth
                && !e.any
                && e.other.is_empty()
                && !e.email_protection
                && !e.code_signing
                && !e.time_stamping
                && !e.ocsp_signing
        });
        if san != Some(job.identity.names.len()) || !server_only {
            return Err(fail(
                "a server certificate must carry its names and serverAuth alone".into(),
            ));
        }
    }
    if crl_url {
        want.push("2.5.29.31");
    }
    want.sort();
    if oids != want {
        return Err(fail(format!(
            "extensions {oids:?} differ from the profile's {want:?}"
        )));
    }
    Ok(())
}

/// Prints how long each phase took when GITCA_TIMINGS is set: how the performance numbers in
/// docs/performance.md were broken down.
struct Phases {
    start: std::time::Instant,
    on: bool,
}

impl Phases {
    fn new() -> Phases {
        Phases {
            start: std::time::Instant::now(),
            on: std::env::var_os("GITCA_TIMINGS").is_some(),
        }
    }

    fn mark(&self, phase: &str) {
        if self.on {
            // Resident memory now and at its peak so far: which phase holds what.
            let m = crate::output::usage::memory();
            crate::output::redact::stderr(&format!(
                "gitca timing: {phase:<22} {:>8.1} ms  rss {:>5} MiB (heap {}, files {}), peak {:>5} MiB",
                self.start.elapsed().as_secs_f64() * 1000.0,
                m.resident >> 10,
                m.heap >> 10,
                m.files >> 10,
                m.peak >> 10
            ));
        }
    }
}

/// Checks a freshly signed CRL before it is written: it verifies against the CA, carries the
/// number and entries we meant, and its nextUpdate follows its thisUpdate.
fn lint_crl(pem_text: &str, ca: &CaCert, number: u64, entries: usize) -> Result<()> {
    let fail = |what: String| Error::Crypto {
        what: "pre-issuance CRL lint",
        detail: what,
    };
    let info = ca::CrlInfo::parse(pem_text, Some(ca)).map_err(|e| fail(e.to_string()))?;
    if info.number != number {
        return Err(fail(format!(
            "CRL number {} instead of {number}",
            info.number
        )));
    }
    if info.serials.len() != entries {
        return Err(fail(format!(
            "{} entries instead of {entries}",
            info.serials.len()
        )));
    }
    if info.next_update.is_none_or(|n| n <= info.this_update) {
        return Err(fail("nextUpdate is not after thisUpdate".into()));
    }
    Ok(())
}

/// A progress bar on stderr while signing many certificates: only on a terminal, never with
/// --quiet, and not for a handful.
fn progress_bar(len: u64, quiet: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if quiet || len < 100 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "signing {bar:40} {pos}/{len} certificates ({per_sec}, {eta} left)",
        )
        .expect("a valid template"),
    );
    bar
}

/// The exit code of a reconcile that applied everything it could (revocations, the CRL, every
/// certificate it could sign) and committed it, but left something that needs a person: an
/// identity it could not sign for (unless its `acknowledged:` holds), a broken declaration, a
/// hand edit of its outputs it undid. CI pushes and publishes the commit and still turns red.
pub const EXIT_ATTENTION: u8 = 3;

/// The top-level entry point for `gitca reconcile`.
pub fn run_reconcile(opts: &ReconcileOptions, out: &mut dyn Write) -> Result<Outcome> {
    let phases = Phases::new();
    let repo = CaRepo::open(&opts.dir)?;
    let _lock = repo.lock()?;
    refuse_shallow(&repo)?;
    // A reconcile killed between writing and committing leaves its outputs changed; they are
    // derived data, so `prepare` puts them back (a rerun converges). It scans the tree while
    // the identities load.
    let (mut state, start) = load::load_with(&repo, CaRepo::prepare)?;
    report_restored(opts, &start, out);
    let now = opts.now;
    if let Some(e) = state
        .hierarchy
        .as_ref()
        .and_then(|h| h.orphans(&state.ledger, now))
    {
        return Err(e);
    }
    let Planned {
        plan,
        verified,
        diagnostics,
        attention,
    } = plan_run(&repo, &mut state, now);
    phases.mark("load and plan");
    if plan.is_empty() {
        return Ok(nothing_to_apply(opts, out, plan, diagnostics, attention));
    }
    // Only a run that writes must start from a committed state: it applies what was reviewed
    // and commits only its own outputs. A run with nothing to do needs no such check.
    refuse_uncommitted(opts, &start)?;

    // 1. Everything that can refuse the run, before the CA key is touched. The ledger is
    // taken out of the state (extended in place later: a clone of a 100,000-row ledger costs
    // tens of MiB).
    let ledger = std::mem::take(&mut state.ledger);
    // The CSRs are verified: their bytes are not read again (100,000 of them are about 50 MB).
    for identity in &mut state.inventory.identities {
        identity.csr_bytes = None;
    }
    let jobs = jobs(&state, &ledger, verified, now)?;
    if !opts.no_commit {
        // A history that declares its signers is never extended unsigned: refused before the
        // CA key is unlocked.
        repo.history_signer()?;
    }
    phases.mark("verify CSRs");
    // 2. Unlock the CA key: the last thing before signing.
    let (key, previous_key) = unlock_keys(&repo, &state, &plan, opts)?;
    let signed = sign_all(&state, &key, &jobs, opts.quiet)?;
    phases.mark("unlock and sign");
    // 3. The new ledger, CRL(s) and seal. Signed, a job is its name and serial; its record
    // moves into the ledger (never a copy of 100,000 records held beside it).
    let issued: Vec<(String, String)> = jobs
        .iter()
        .map(|j| (j.identity.name.clone(), j.record.serial.clone()))
        .collect();
    let records: Vec<Record> = jobs.into_iter().map(|j| j.record).collect();
    let keys = Keys {
        current: &key,
        previous: previous_key.as_ref(),
    };
    let next = next_outputs(ledger, &state, &plan, records, keys, now)?;
    drop(previous_key);
    drop(key);
    phases.mark("ledger and CRL");
    // 4. Write, then commit; on any failure put every file back.
    let commit = write_and_commit(&repo, opts, &state, &plan, &issued, signed, next)?;
    phases.mark("commit");
    if !opts.quiet {
        report::render_applied(out, &plan, &issued, commit);
    }
    Ok(Outcome {
        plan,
        issued,
        commit,
        diagnostics,
        attention,
    })
}

/// Says which outputs `prepare` put back, if any.
fn report_restored(opts: &ReconcileOptions, start: &Start, out: &mut dyn Write) {
    if !start.restored.is_empty() && !opts.quiet {
        let _ = writeln!(
            out,
            "Restored {} output file(s) (certs/, crl/, ledger.tsv, ledger.sig) to HEAD: an earlier reconcile was interrupted or they were edited by hand.",
            start.restored.len()
        );
    }
}

/// The plan of a run, with what it reports whatever it applies.
struct Planned {
    plan: Plan,
    verified: Vec<(usize, VerifiedCsr)>,
    diagnostics: Vec<Error>,
    attention: bool,
}

/// Plans the run, and gathers what a person must see: broken declarations, acknowledgements
/// set too far ahead, refused CSRs, revocations waiting for the root.
fn plan_run(repo: &CaRepo, state: &mut Loaded, now: OffsetDateTime) -> Planned {
    let vetted = state.plan(now);
    let (mut plan, verified) = (vetted.plan, vetted.verified);
    state.note_replacements(&repo.dir, &mut plan);
    let mut diagnostics = std::mem::take(&mut state.problems);
    diagnostics.extend(state.inventory.acknowledgements_too_far(now));
    let pending = root_pending(state, &plan, now);
    // A person is needed for a broken declaration, a repair, revocations waiting for the root,
    // and each blocked identity nobody acknowledged. The refusals vetting reports are those
    // blocked identities: an acknowledged one is still reported, but alone it is not news.
    let attention = !diagnostics.is_empty()
        || pending.is_some()
        || plan.repair.is_some()
        || plan.unacknowledged().next().is_some();
    diagnostics.extend(vetted.diagnostics);
    diagnostics.extend(pending);
    Planned {
        plan,
        verified,
        diagnostics,
        attention,
    }
}

/// The end of a run whose plan is empty: it says so, and writes nothing.
fn nothing_to_apply(
    opts: &ReconcileOptions,
    out: &mut dyn Write,
    plan: Plan,
    diagnostics: Vec<Error>,
    attention: bool,
) -> Outcome {
    if !opts.quiet {
        let _ = writeln!(
            out,
            "{}",
            if plan.blocked.is_empty() {
                "Nothing to do: every identity holds a current certificate and the CRL is fresh."
            } else {
                "Nothing to apply; see the blocked identities below."
            }
        );
    }
    Outcome {
        plan,
        diagnostics,
        attention,
        ..Outcome::default()
    }
}

/// Refuses a run that writes from uncommitted changes: any under gitca's paths, or, with
/// --allow-dirty, uncommitted inputs when it would commit.
fn refuse_uncommitted(opts: &ReconcileOptions, start: &Start) -> Result<()> {
    if !opts.allow_dirty {
        start.ensure_clean()?;
    } else if !opts.no_commit {
        // A commit of certificates for inputs that are not committed would record a state the
        // repository does not hold (and the next plan would revoke them).
        let inputs: Vec<&String> = start
            .dirty
            .iter()
            .filter(|p| p.starts_with("identities/") || p.starts_with("csr/") || *p == CONFIG_FILE)
            .collect();
        if !inputs.is_empty() {
            return Err(Error::usage(
                format!(
                    "--allow-dirty would commit certificates for uncommitted changes: {}",
                    inputs.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
                ),
                "commit them first (git add identities/ csr/ gitca.yaml && git commit; their review is the point), or add --no-commit to try them out without committing",
            ));
        }
    }
    Ok(())
}

/// Unlocks the issuing CA's key, and the retiring intermediate's when its CRL must be
/// re-signed; each must match its certificate.
fn unlock_keys(
    repo: &CaRepo,
    state: &Loaded,
    plan: &Plan,
    opts: &ReconcileOptions,
) -> Result<(CaKey, Option<CaKey>)> {
    let key: CaKey = custody::unlock(&repo.dir, &opts.key_source)?;
    custody::check_key_matches(&custody::ISSUING, &state.ca, &key)?;
    crate::repository::git::failpoint("after-unlock");
    // A retiring intermediate's key, only when its CRL must be re-signed.
    let previous_key = match &plan.previous_crl {
        Some(_) => Some(custody::unlock_vault(
            &repo.dir,
            &crate::authority::hierarchy::PREVIOUS_VAULT,
            &opts.key_source,
        )?),
        None => None,
    };
    if let (Some(k), Some(p)) = (
        &previous_key,
        state.hierarchy.as_ref().and_then(|h| h.previous.as_ref()),
    ) {
        custody::check_key_matches(&crate::authority::hierarchy::PREVIOUS_VAULT, &p.cert, k)?;
    }
    Ok((key, previous_key))
}

/// Revocations that only the offline root can publish (certificates it signed itself before a
/// migration): they stay valid until a custodians' ceremony, so the run asks for one (exit 3).
fn root_pending(state: &Loaded, plan: &Plan, now: OffsetDateTime) -> Option<Error> {
    let h = state.hierarchy.as_ref()?;
    let listed: HashSet<&str> = h.root_crl.serials.iter().map(String::as_str).collect();
    let revoking: BTreeMap<&str, RevocationReason> = plan
        .actions
        .iter()
        .filter(|a| a.op == Op::Revoke)
        .filter_map(|a| Some((a.serial.as_deref()?, a.revocation?)))
        .collect();
    let pending: Vec<String> = state
        .ledger
        .records
        .iter()
        .filter(|r| r.issuer.as_deref() == Some(h.root_id.as_str()) && r.not_after > now)
        .filter(|r| !listed.contains(r.serial.as_str()))
        .filter_map(|r| {
            let why = revoking.get(r.serial.as_str()).copied().or(r.reason)?;
            Some(format!("{} ({}, {why})", r.serial, r.identity))
        })
        .collect();
    (!pending.is_empty()).then(|| {
        Error::usage(
            format!(
                "{} revocation(s) of certificates the root signed before the migration are not published: {}",
                pending.len(),
                pending.join(", ")
            ),
            "only the root can publish them: a root custodian runs `gitca root sign-crl` and pushes; until then those certificates stay valid",
        )
    })
}

fn refuse_shallow(repo: &CaRepo) -> Result<()> {
    if repo.git.is_shallow() {
        return Err(Error::usage(
            "this clone is shallow: reconcile needs the repository's whole history",
            "history is how gitca finds the newest ledger and CRL the CA sealed (a rolled-back CRL would otherwise go unnoticed); clone without --depth, or set `fetch-depth: 0` in actions/checkout (GIT_DEPTH: 0 in GitLab)",
        ));
    }
    Ok(())
}

/// The certificates to sign: each verified CSR with a fresh serial and its ledger record.
fn jobs<'a>(
    state: &'a Loaded,
    ledger: &Ledger,
    verified: Vec<(usize, VerifiedCsr)>,
    now: OffsetDateTime,
) -> Result<Vec<Job<'a>>> {
    let serials = fresh_serials(verified.len(), ledger)?;
    let mut latest_of_key: HashMap<&str, OffsetDateTime> = HashMap::new();
    if !verified.is_empty() {
        for r in &ledger.records {
            let t = latest_of_key
                .entry(r.key_sha256.as_str())
                .or_insert(r.not_before);
            *t = (*t).max(r.not_before);
        }
    }
    let mut jobs: Vec<Job<'_>> = Vec::with_capacity(verified.len());
    for ((at, csr), serial_der) in verified.into_iter().zip(serials) {
        let identity = &state.inventory.identities[at];
        let profile = &state.config.profiles[&identity.profile];
        let validity = identity.validity.unwrap_or(profile.validity).0;
        // The certificates this one follows: the identity's own, and any of the same key.
        let after = ledger
            .of(&identity.name)
            .map(|r| r.not_before)
            .chain(latest_of_key.get(csr.key_sha256.as_str()).copied())
            .max();
        let (not_before, not_after) = crate::authority::ca::validity_window(
            now,
            validity,
            (state.ca.not_before, state.ca.not_after),
            after,
        );
        let record = Record {
            serial: ca::serial_hex(&serial_der),
            identity: identity.name.clone(),
            kind: identity.kind,
            profile: identity.profile.clone(),
            state: State::Issued,
            not_before: not_before.replace_nanosecond(0).expect("valid"),
            not_after: not_after.replace_nanosecond(0).expect("valid"),
            revoked_at: None,
            reason: None,
            key_sha256: csr.key_sha256.clone(),
            csr_sha256: identity.csr_sha256.clone().unwrap_or_default(),
            email: identity.email.clone(),
            groups: identity.groups.clone(),
            issuer: state.issuer_id(),
            names: identity.names.clone(),
        };
        jobs.push(Job {
            identity,
            csr,
            record,
            serial_der,
        });
    }
    Ok(jobs)
}

/// Signs every job in parallel, linting each certificate before it is kept.
fn sign_all(state: &Loaded, key: &CaKey, jobs: &[Job<'_>], quiet: bool) -> Result<Vec<Vec<u8>>> {
    let signed_count = std::sync::atomic::AtomicUsize::new(0);
    let organization = state.config.ca.organization.clone();
    let progress = progress_bar(jobs.len() as u64, quiet);
    let signed: Vec<Result<Vec<u8>>> = jobs
        .par_iter()
        .map(|job| {
            progress.inc(1);
            if signed_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == jobs.len() / 2 {
                crate::repository::git::failpoint("mid-signing");
            }
            let profile = &state.config.profiles[&job.identity.profile];
            let der = ca::sign_leaf(
                &state.ca,
                key,
                &LeafSpec {
                    name: &job.identity.cn(),
                    organization: &organization,
                    groups: &job.identity.groups,
                    email: job.identity.email.as_deref(),
                    names: &job.identity.names,
                    ekus: &profile.extended_key_usage,
                    spki_der: &job.csr.spki_der,
                    serial: &job.serial_der,
                    not_before: job.record.not_before,
                    not_after: job.record.not_after,
                    crl_url: state.config.crl.distribution_point.as_deref(),
                },
            )?;
            lint_leaf(
                &der,
                job,
                &state.ca,
                state.config.crl.distribution_point.is_some(),
            )?;
            Ok(der)
        })
        .collect();
    progress.finish_and_clear();
    signed.into_iter().collect()
}

/// What a run writes besides the certificates: the ledger, the CRL(s) and the seal over them.
struct NextOutputs {
    ledger: Ledger,
    ledger_text: String,
    crl_text: String,
    /// `crl/previous.crl`: `None` when there is no retiring intermediate (any more).
    previous_crl: Option<String>,
    seal: Seal,
}

/// The keys a run signs with: the issuing CA's, and the retiring intermediate's when its CRL
/// must be re-signed.
struct Keys<'a> {
    current: &'a CaKey,
    previous: Option<&'a CaKey>,
}

/// The new ledger (revocations applied, new certificates added), the CRL (re-signed when the
/// plan says so, else the current one) and the seal over both.
fn next_outputs(
    mut ledger: Ledger,
    state: &Loaded,
    plan: &Plan,
    issued: Vec<Record>,
    keys: Keys<'_>,
    now: OffsetDateTime,
) -> Result<NextOutputs> {
    let revoke: BTreeMap<&str, RevocationReason> = plan
        .actions
        .iter()
        .filter(|a| a.op == Op::Revoke)
        .filter_map(|a| Some((a.serial.as_deref()?, a.revocation?)))
        .collect();
    for r in &mut ledger.records {
        if let Some(why) = revoke.get(r.serial.as_str()) {
            apply_revocation(r, *why, now);
        }
    }
    ledger.records.extend(issued);
    ledger.sort();
    let issuer = state.issuer_id();
    let crl_text = match &plan.crl {
        Some(c) => {
            let entries = crate::repository::ledger::crl_entries(&ledger, now, issuer.as_deref())?;
            let pem = ca::sign_crl(
                &state.ca,
                keys.current,
                c.number,
                now,
                c.next_update,
                &entries,
            )?;
            lint_crl(&pem, &state.ca, c.number, entries.len())?;
            pem
        }
        None => state.crl_text.clone(),
    };
    let previous_crl = previous_crl(&ledger, state, plan, keys.previous, now)?;
    let ledger_text = ledger.render();
    let seal = Seal::sign(
        &state.ca,
        keys.current,
        state.standing.next_sequence(),
        (
            ledger_text.as_bytes(),
            crl_text.as_bytes(),
            plan.crl.as_ref().map_or(state.crl.number, |c| c.number),
        ),
        previous_crl.as_deref().map(str::as_bytes),
    )?;
    Ok(NextOutputs {
        ledger,
        ledger_text,
        crl_text,
        previous_crl,
        seal,
    })
}

/// The retiring intermediate's CRL as this run leaves it: re-signed when the plan says so,
/// gone when it retires, else as it is.
fn previous_crl(
    ledger: &Ledger,
    state: &Loaded,
    plan: &Plan,
    key: Option<&CaKey>,
    now: OffsetDateTime,
) -> Result<Option<String>> {
    let Some(previous) = state.hierarchy.as_ref().and_then(|h| h.previous.as_ref()) else {
        return Ok(None);
    };
    if plan.retire_previous || previous.revoked {
        return Ok(None);
    }
    match (&plan.previous_crl, key) {
        (Some(c), Some(key)) => {
            let entries = crate::repository::ledger::crl_entries(ledger, now, Some(&previous.id))?;
            let pem = ca::sign_crl(&previous.cert, key, c.number, now, c.next_update, &entries)?;
            lint_crl(&pem, &previous.cert, c.number, entries.len())?;
            Ok(Some(pem))
        }
        _ => Ok(Some(previous.crl_text.clone())),
    }
}

/// Writes every file (certificates, stale certificate files removed, ledger, CRL, seal) and
/// commits them; on any failure every file is put back and the index reset to HEAD.
fn write_and_commit(
    repo: &CaRepo,
    opts: &ReconcileOptions,
    state: &Loaded,
    plan: &Plan,
    issued: &[(String, String)],
    signed: Vec<Vec<u8>>,
    next: NextOutputs,
) -> Result<Option<git2::Oid>> {
    let mut tx = Transaction::new(&repo.dir);
    let result = (|| -> Result<Option<git2::Oid>> {
        stage_certificates(&mut tx, repo, state, issued, signed, &next.ledger, opts.now)?;
        stage_ledger_and_crls(&mut tx, state, plan, next);
        tx.apply()?;
        crate::repository::git::failpoint("before-commit");
        if opts.no_commit {
            return Ok(None);
        }
        let message = report::commit_message(plan, issued);
        Ok(Some(
            repo.commit_files(std::mem::take(&mut tx.done), &message)?,
        ))
    })();
    match result {
        Ok(c) => Ok(c),
        Err(e) => {
            tx.rollback();
            reset_index(repo);
            Err(e)
        }
    }
}

/// Stages certs/: the new certificates (each followed by the CA's), the removal of files left
/// without a live certificate, and hand-edited files put back.
fn stage_certificates(
    tx: &mut Transaction<'_>,
    repo: &CaRepo,
    state: &Loaded,
    issued: &[(String, String)],
    signed: Vec<Vec<u8>>,
    ledger: &Ledger,
    now: OffsetDateTime,
) -> Result<()> {
    let mut staged = std::collections::HashSet::new();
    // Each DER is dropped once its file's text is made: never both for every certificate.
    for ((name, _), der) in issued.iter().zip(signed) {
        let mut text = crate::output::encode::to_pem("CERTIFICATE", &der);
        text.push_str(&state.ca.pem);
        let path = cert_path(name);
        tx.write(&path, text);
        staged.insert(path);
    }
    // certs/NAME.crt is the current certificate of a live identity: one left without a live
    // certificate (revoked, disabled, expired, removed) has none.
    for (file, _) in repo.dir.list("certs")? {
        if let Some(name) = file.strip_suffix(".crt") {
            if !ledger.of(name).any(|r| r.is_live(now)) && staged.insert(cert_path(name)) {
                tx.remove(&cert_path(name));
            }
        }
    }
    // Files under certs/ edited by hand since reconcile wrote them go back to what it
    // wrote (see crate::authority::issued), unless this run writes or removes them anyway.
    for edit in &state.certs_edited {
        if !staged.insert(edit.path.clone()) {
            continue;
        }
        match crate::authority::issued::sealed_text(repo, edit) {
            Some(text) => tx.write(&edit.path, text),
            None if edit.sealed.is_none() => tx.remove(&edit.path),
            None => {}
        }
    }
    Ok(())
}

/// Stages the ledger, the CRL(s) (a retiring intermediate's re-signed or removed, a recovered
/// root CRL written back) and the seal.
fn stage_ledger_and_crls(tx: &mut Transaction<'_>, state: &Loaded, plan: &Plan, next: NextOutputs) {
    drop(next.ledger);
    tx.write(LEDGER_FILE, next.ledger_text.into_bytes());
    tx.write(CRL_FILE, next.crl_text.into_bytes());
    if let Some(h) = &state.hierarchy {
        use PREVIOUS_CERT;
        use PREVIOUS_CRL;
        use PREVIOUS_KEY;
        match &next.previous_crl {
            Some(text) => tx.write(PREVIOUS_CRL, text.clone().into_bytes()),
            None if plan.retire_previous => {
                let token = custody::token_file(&crate::authority::hierarchy::PREVIOUS_VAULT);
                for f in [PREVIOUS_CERT, PREVIOUS_KEY, &token, PREVIOUS_CRL] {
                    tx.remove(f);
                }
            }
            None => {}
        }
        // A root CRL put back by a merge: the newest one from history is written back.
        if h.root_crl_recovered.is_some() {
            tx.write(ROOT_CRL, h.root_crl_text.clone().into_bytes());
        }
    }
    tx.write(SEAL_FILE, next.seal.render());
}

/// The index may hold staged paths from a failed commit: reset it to HEAD.
fn reset_index(repo: &CaRepo) {
    if let Some(head) = repo.head_oid() {
        if let (Ok(commit), Ok(mut index)) = (repo.git.find_commit(head), repo.git.index()) {
            if let Ok(tree) = commit.tree() {
                let _ = index.read_tree(&tree);
                let _ = index.write();
            }
        }
    }
}
