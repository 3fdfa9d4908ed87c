//! `gitca deploy crl` and `gitca deploy cert`: the relying party's side. A server keeps the
//! CA's CRL current for nginx; a client, bot or node keeps its own certificate current, without
//! a person copying files (invariant 14).
//!
//! Whatever the source serves, only what the pinned CA signed is installed (never a CA from the
//! source), never older than what is installed (CRL numbers, notBefore), never expired or not
//! yet valid; files are replaced atomically, a reload hook runs after, and a failing hook puts
//! the previous files back. Staleness is loud: when what is installed is about to expire and
//! nothing newer can be had, the command exits 4 and the metrics say so, days before nginx
//! would lock everyone out.
//!
//! Exit codes: 0 installed or nothing new (and what is installed is fine); 1 an error, a
//! fetched file refused (wrong signature, older, an issuer dropped, expired) or a failed reload
//! hook, even when what is installed is stale too; 4 stale (nothing was refused).
//!
//! What `deploy crl` has installed only moves forward, per issuer, across fetches: see
//! [`crate::authority::floors`], kept in the state file next to the installed file.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use crate::authority::ca::{self, id_of, CaCert};
use crate::authority::chain;
use crate::authority::floors::Floors;
use crate::error::{Error, Result};
use crate::relying::bundle::{ClientFiles, TargetOptions};
use crate::relying::source::{Fetch, Item, Source, SourceArgs, Validators};
pub use crate::relying::watch::EXIT_STALE;
use crate::relying::watch::{
    drive, fetch_failed, file_label, interval, now_or, reload, seconds, split, Run, Verdict,
    WatchOptions,
};
use crate::repository::config::Dur;
use crate::repository::confined::Dir;
use crate::time::{fmt_time, human_span};

use chain::SKEW;

/// Where a deploy fetches from, the CA it pins, and how long a fetch may take.
#[derive(Debug)]
pub struct FromOptions {
    /// Where to fetch from: a published tree (`gitca publish`) as an http(s) URL or a
    /// directory, or a clone of the CA repository.
    pub from: Option<String>,
    /// The CA repository itself, through the `git` program (the machine's credentials apply).
    pub from_git: Option<String>,
    /// The branch to read with --from-git.
    pub branch: String,
    /// Where --from-git keeps its shallow copy (default ~/.cache/gitca/deploy-…).
    pub git_cache: Option<PathBuf>,
    /// The CA certificate of an https:// source's TLS server (default: the system's roots).
    pub https_ca: Option<PathBuf>,
    /// The CA certificate this machine trusts: everything installed must be signed by it.
    /// Never taken from the source.
    pub pinned: PathBuf,
    /// The most one fetch may take (HTTP: the whole request; --from-git: every git program it
    /// runs, which are then killed); past it the fetch fails like any other.
    pub timeout: String,
}

/// What `gitca deploy crl` keeps current, and where.
#[derive(Debug)]
pub struct DeployCrlOptions {
    pub from: FromOptions,
    /// The CRL file nginx reads (`ssl_crl`), written as PEM.
    pub out: PathBuf,
    /// Exit 4 when the installed CRL expires within this and no newer one can be fetched.
    pub stale_margin: String,
    pub watch: WatchOptions,
}

/// What `gitca deploy cert` keeps current, and where.
#[derive(Debug)]
pub struct DeployCertOptions {
    /// The identity whose certificate to keep installed.
    pub name: String,
    /// Its private key (stays where it is; copied 0600 next to the certificate, as Docker and
    /// containerd want it).
    pub key: PathBuf,
    pub from: FromOptions,
    pub target: TargetOptions,
    /// Exit 4 when the installed certificate expires within this and no renewal can be had.
    pub stale_margin: String,
    pub watch: WatchOptions,
}

/// What a deploy remembers between runs (next to what it installs).
#[derive(Debug, Default, Serialize, Deserialize)]
struct DeployState {
    validators: Validators,
    failures_total: u64,
    consecutive_failures: u64,
    last_success: Option<i64>,
    last_check: Option<i64>,
    /// What was verified about the installed CRLs (deploy crl).
    #[serde(default)]
    crls: Option<VerifiedCrls>,
    /// The common name of the certificate installed (deploy cert): an identity imported with
    /// a `common_name` has certificates whose CN is not its name.
    #[serde(default)]
    installed_cn: Option<String>,
    /// The newest CRL of every issuer ever installed (deploy crl): what no later fetch may go
    /// below, whatever was fetched in between.
    #[serde(default)]
    floors: Option<Floors>,
}

impl DeployState {
    /// The metrics both `deploy crl` and `deploy cert` report: when they last checked and
    /// succeeded, their failures, and whether what is installed is stale.
    fn metrics(&self, now: OffsetDateTime, stale: bool) -> Vec<(String, f64)> {
        vec![
            (
                "deploy_last_check_timestamp_seconds".into(),
                now.unix_timestamp() as f64,
            ),
            (
                "deploy_last_success_timestamp_seconds".into(),
                self.last_success.unwrap_or(0) as f64,
            ),
            ("deploy_failures_total".into(), self.failures_total as f64),
            (
                "deploy_consecutive_failures".into(),
                self.consecutive_failures as f64,
            ),
            ("deploy_stale".into(), f64::from(u8::from(stale))),
        ]
    }
}

/// The installed CRLs as last verified, keyed by the file's exact bytes and by the pinned CA:
/// a poll that finds nothing new hashes the file instead of parsing and verifying 100,000
/// entries again. Anyone who could forge this could as well replace the CRLs next to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VerifiedCrls {
    sha256: String,
    pinned: String,
    crls: Vec<Recorded>,
}

/// One installed CRL: who signed it, its number and dates.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Recorded {
    issuer: String,
    number: u64,
    this_update: i64,
    next_update: Option<i64>,
}

impl Recorded {
    fn of(c: &chain::IssuedCrl) -> Recorded {
        Recorded {
            issuer: c.issuer.clone(),
            number: c.info.number,
            this_update: c.info.this_update.unix_timestamp(),
            next_update: c.info.next_update.map(OffsetDateTime::unix_timestamp),
        }
    }

    fn next_update(&self) -> Option<OffsetDateTime> {
        self.next_update
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
    }
}

/// SHA-256 through aws-lc (SHA extensions where the CPU has them: a 100,000-entry CRL is 5 MB).
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// What the installed CRL file holds.
struct Installed {
    bytes: Vec<u8>,
    /// Its CRLs that the pin or an intermediate the floors know signed.
    record: VerifiedCrls,
    /// Those CRLs, when the file was read afresh (the state's record was not of these bytes).
    parsed: Vec<chain::IssuedCrl>,
    /// Its CRLs that no CA known here signed (PEM): an intermediate the floors do not know yet,
    /// or something gitca did not write.
    strangers: Vec<String>,
}

/// The installed CRLs: the state's record when the file is byte for byte what was verified,
/// else each CRL in the file attributed to the pinned CA or an intermediate in `cas`.
fn installed_crls(
    dir: &Dir,
    name: &str,
    pinned: &CaCert,
    known: Option<&VerifiedCrls>,
    cas: &[CaCert],
) -> Option<Installed> {
    let bytes = dir.read_opt(name, ca::MAX_CRL_BYTES).ok().flatten()?;
    let sha256 = sha256_hex(&bytes);
    let fingerprint = pinned.fingerprint();
    if let Some(k) = known.filter(|k| k.sha256 == sha256 && k.pinned == fingerprint) {
        return Some(Installed {
            bytes,
            record: k.clone(),
            parsed: Vec::new(),
            strangers: Vec::new(),
        });
    }
    let blocks = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| pem::parse_many(t).ok())
        .unwrap_or_default();
    let signers: Vec<&CaCert> = std::iter::once(pinned).chain(cas.iter()).collect();
    let mut parsed = Vec::new();
    let mut strangers = Vec::new();
    for b in blocks.iter().filter(|b| b.tag() == "X509 CRL") {
        let pem = crate::output::encode::to_pem("X509 CRL", b.contents());
        match chain::attribute(&pem, &signers) {
            Some(c) => parsed.push(c),
            None => strangers.push(pem),
        }
    }
    Some(Installed {
        bytes,
        record: VerifiedCrls {
            sha256,
            pinned: fingerprint,
            crls: parsed.iter().map(Recorded::of).collect(),
        },
        parsed,
        strangers,
    })
}

fn state_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.gitca-deploy.json"))
}

/// The state file: `Ok(None)` when there is none; `Err` says why it cannot be read.
fn load_state(path: &Path) -> std::result::Result<Option<DeployState>, String> {
    let (dir, name) = split(path).map_err(|e| e.to_string())?;
    match dir.read_opt(&name, 1 << 20) {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("not a state file gitca wrote: {e}")),
        Err(e) => Err(e.to_string()),
    }
}

fn save_state(path: &Path, state: &DeployState) -> Result<()> {
    let (dir, name) = split(path)?;
    let text = serde_json::to_string_pretty(state).expect("json");
    dir.write(&name, text.as_bytes(), 0o644)
}

/// Checks fetched CRLs against the pinned CA, the floors and what is installed (`file`).
/// `Ok(None)`: what is installed already. `unresolved`: the floors come from the installed
/// file alone (no state file, or one of another pin) and some of its CRLs are nobody's known
/// here; cleared once the fetched intermediates account for all of them.
fn judge_crls(
    bytes: &[u8],
    pinned: &CaCert,
    floors: &mut Floors,
    unresolved: &mut bool,
    installed: Option<&Installed>,
    file: &Path,
    now: OffsetDateTime,
) -> std::result::Result<Option<chain::Crls>, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "the fetched CRLs are not PEM".to_string())?;
    let crls = chain::verify_crls(text, pinned, now)?;
    let pinned_id = id_of(&pinned.der);
    if let Some(i) = installed {
        // Installed CRLs of intermediates the floors did not know: one the source carries may
        // have signed them, and then they are floors too.
        let fetched: Vec<&CaCert> = crls.intermediates.iter().collect();
        let (found, unknown): (Vec<_>, Vec<_>) = i
            .strangers
            .iter()
            .map(|pem| chain::attribute(pem, &fetched).ok_or(pem))
            .partition(std::result::Result::is_ok);
        let found: Vec<chain::IssuedCrl> = found.into_iter().flatten().collect();
        floors.raise(&found, &crls.intermediates, &pinned_id);
        // Without a record, a CRL of an intermediate the source no longer carries cannot be told
        // from one the source dropped to lock its clients out, or to roll it back later.
        if !unknown.is_empty() && *unresolved {
            return Err(format!(
                "{} holds {} CRL(s) that neither the pinned CA nor an intermediate of the fetched CRLs signed, and no state file records whose they are: the source may have dropped an intermediate that is still valid; refused (if the CA retired it, remove {} and run again)",
                file.display(),
                unknown.len(),
                file.display()
            ));
        }
        *unresolved = false;
    }
    floors.check(&crls, &pinned_id, now)?;
    if installed.is_some_and(|i| i.bytes == crls.render().as_bytes()) {
        return Ok(None);
    }
    Ok(Some(crls))
}

/// One check of `deploy crl`.
fn crl_once(
    args: &DeployCrlOptions,
    source: &Source,
    pinned: &CaCert,
    now: OffsetDateTime,
    margin: time::Duration,
) -> Result<Run> {
    let mut check = CrlCheck::start(&args.out, pinned, now)?;
    let verdict = if let Some(why) = &check.damaged {
        Verdict::Refused(format!(
            "{} is damaged ({why}); it records the newest CRL of every issuer installed, which is what refuses rollbacks, so nothing is installed while it is: if it was damaged by accident, remove it (gitca then takes the CRLs installed in {} as the floor)",
            check.state_file.display(),
            args.out.display()
        ))
    } else {
        // Going stale: ask without validators, whatever the source sent before, so that no
        // answer of a mirror's can keep this server on an old CRL ("not modified" forever).
        if crl_staleness(
            check.current.as_ref(),
            &check.floors,
            &args.out,
            now,
            margin,
        )
        .is_some()
        {
            check.last = Validators::default();
        }
        check.fetch_and_install(args, source, pinned, now)?
    };
    count_outcome(&mut check.state, &verdict, now);
    check.state.crls = check.current.clone();
    let stale = crl_staleness(
        check.current.as_ref(),
        &check.floors,
        &args.out,
        now,
        margin,
    );
    let metrics = crl_metrics(
        check.state.metrics(now, stale.is_some()),
        check.current.as_ref(),
        &id_of(&pinned.der),
    );
    check.save()?;
    Ok(Run {
        verdict,
        stale,
        metrics,
    })
}

/// What one check of `deploy crl` works on: the state file, the floors, and what is installed.
struct CrlCheck {
    dir: Dir,
    name: String,
    state_file: PathBuf,
    state: DeployState,
    /// Why the state file could not be read: then nothing is installed, nor the state saved.
    damaged: Option<String>,
    floors: Floors,
    installed: Option<Installed>,
    /// The floors are not whole (see [`judge_crls`]): they are not kept.
    unresolved: bool,
    /// What is installed when this run ends; changes only when new CRLs stay installed.
    current: Option<VerifiedCrls>,
    /// The validators to ask "only if changed" with.
    last: Validators,
}

impl CrlCheck {
    /// Reads the state file and the installed CRLs, and sets the floors from both.
    fn start(out: &Path, pinned: &CaCert, now: OffsetDateTime) -> Result<CrlCheck> {
        let (dir, name) = split(out)?;
        let state_file = state_path(dir.path(), &name);
        let (mut state, damaged) = match load_state(&state_file) {
            Ok(s) => (s.unwrap_or_default(), None),
            Err(why) => (DeployState::default(), Some(why)),
        };
        state.last_check = Some(now.unix_timestamp());
        let pinned_id = id_of(&pinned.der);
        // Floors kept under another pin say nothing of this one's issuers (the operator re-pinned).
        let kept = state.floors.take().filter(|f| f.belong_to(pinned));
        let rebuilt = kept.is_none();
        let mut floors = kept.unwrap_or_else(|| Floors::new(pinned));
        let known = floors.intermediates();
        // The record of the installed file stands in for reading it only next to whole floors:
        // without them every CRL in the file must be attributed afresh.
        let record = state.crls.as_ref().filter(|_| !rebuilt);
        let installed = installed_crls(&dir, &name, pinned, record, &known);
        if let Some(i) = &installed {
            // What is installed is a floor as well: the state may be behind the file, or gone.
            floors.raise(&i.parsed, &known, &pinned_id);
        }
        // Rebuilt from a file some of whose CRLs nobody known here signed: the floors are not
        // whole, and are not kept as if they were (the next run rebuilds them again).
        let unresolved = rebuilt && installed.as_ref().is_some_and(|i| !i.strangers.is_empty());
        // What is installed when this run ends; changes only when new CRLs stay installed.
        let current = installed
            .as_ref()
            .map(|i| i.record.clone())
            .filter(|r| !r.crls.is_empty());
        // Ask "only if changed" only while the installed file is the one the state recorded.
        let last = if installed.is_some() && !rebuilt {
            state.validators.clone()
        } else {
            Validators::default()
        };
        Ok(CrlCheck {
            dir,
            name,
            state_file,
            state,
            damaged,
            floors,
            installed,
            unresolved,
            current,
            last,
        })
    }

    /// Fetches the CRLs, judges them, and installs them when they are new and acceptable.
    fn fetch_and_install(
        &mut self,
        args: &DeployCrlOptions,
        source: &Source,
        pinned: &CaCert,
        now: OffsetDateTime,
    ) -> Result<Verdict> {
        Ok(match source.fetch(Item::Crls, &self.last) {
            Err(e) => fetch_failed(e),
            Ok(Fetch::NotModified) => Verdict::Unchanged("the source has nothing new".into()),
            Ok(Fetch::Got(bytes, validators)) => {
                match judge_crls(
                    &bytes,
                    pinned,
                    &mut self.floors,
                    &mut self.unresolved,
                    self.installed.as_ref(),
                    &args.out,
                    now,
                ) {
                    Err(why) => Verdict::Refused(why),
                    Ok(None) => {
                        self.state.validators = validators;
                        Verdict::Unchanged(format!(
                            "CRL {} installed; nothing new",
                            describe_numbers(self.current.as_ref())
                        ))
                    }
                    Ok(Some(crls)) => self.install(args, pinned, &crls, validators)?,
                }
            }
        })
    }

    /// Installs new CRLs (the floors saved first) and runs the reload hook; a failing hook puts
    /// the previous file back.
    fn install(
        &mut self,
        args: &DeployCrlOptions,
        pinned: &CaCert,
        crls: &chain::Crls,
        validators: Validators,
    ) -> Result<Verdict> {
        let pinned_id = id_of(&pinned.der);
        let text = crls.render();
        // The floors move before the file does: a crash in between leaves them
        // ahead of what is installed, never behind.
        self.floors
            .raise(&crls.crls, &crls.intermediates, &pinned_id);
        self.state.floors = Some(self.floors.clone());
        save_state(&self.state_file, &self.state)?;
        let backup = self.dir.backup(&self.name)?;
        self.dir.write_keeping(&self.name, text.as_bytes(), 0o644)?;
        let issuing = issuing_crl(crls);
        let hook = args.watch.hook().map(|h| {
            reload(
                h,
                &[
                    ("GITCA_CRL_NUMBER", issuing.info.number.to_string()),
                    ("GITCA_CRL_FILE", args.out.display().to_string()),
                ],
            )
        });
        Ok(match hook {
            Some(Err(why)) => {
                match backup {
                    Some(b) => b.restore()?,
                    None => self.dir.remove(&self.name)?,
                }
                Verdict::Refused(format!("{why}: the previous CRL was put back"))
            }
            _ => {
                self.state.validators = validators;
                let verified = VerifiedCrls {
                    sha256: sha256_hex(text.as_bytes()),
                    pinned: pinned.fingerprint(),
                    crls: crls.crls.iter().map(Recorded::of).collect(),
                };
                let done = Verdict::Installed(format!(
                    "installed CRL {} (next update {}) in {}",
                    describe_numbers(Some(&verified)),
                    crls.next_update().map(fmt_time).unwrap_or_default(),
                    args.out.display()
                ));
                self.current = Some(verified);
                done
            }
        })
    }

    /// Saves the state with the floors (unless they are not whole).
    fn save(mut self) -> Result<()> {
        // A damaged state file stays as it is, for whoever looks into it.
        if self.damaged.is_none() {
            self.state.floors = (!self.unresolved).then_some(self.floors);
            save_state(&self.state_file, &self.state)?;
        }
        Ok(())
    }
}

/// Counts a run as a success (installed or current) or as a failure, in the state.
fn count_outcome(state: &mut DeployState, verdict: &Verdict, now: OffsetDateTime) {
    match verdict {
        Verdict::Installed(_) | Verdict::Unchanged(_) => {
            state.consecutive_failures = 0;
            state.last_success = Some(now.unix_timestamp());
        }
        _ => {
            state.consecutive_failures += 1;
            state.failures_total += 1;
        }
    }
}

/// The installed CRL that expires first.
fn earliest_expiring(current: Option<&VerifiedCrls>) -> Option<&Recorded> {
    current.and_then(|v| {
        v.crls
            .iter()
            .min_by_key(|c| c.next_update.unwrap_or(i64::MIN))
    })
}

/// Why what is installed is stale, if it is.
fn crl_staleness(
    current: Option<&VerifiedCrls>,
    floors: &Floors,
    out: &Path,
    now: OffsetDateTime,
    margin: time::Duration,
) -> Option<String> {
    // Staleness, judged on what is installed now: a CRL nginx needs and lacks, or the first to
    // expire, locks clients out.
    let ids: Vec<&str> = current
        .iter()
        .flat_map(|v| v.crls.iter().map(|c| c.issuer.as_str()))
        .collect();
    let missing = floors.missing(&ids, now);
    match earliest_expiring(current) {
        None => Some(format!("no valid CRL is installed in {}: nginx cannot start or refuses clients", out.display())),
        Some(_) if !missing.is_empty() => Some(format!(
            "{} holds no CRL of intermediate {} (its CRL #{} was installed before): nginx refuses every client it certified",
            out.display(),
            missing.iter().map(|f| f.subject.as_str()).collect::<Vec<_>>().join(", "),
            missing[0].number
        )),
        Some(c) => match c.next_update() {
            Some(n) if n <= now => Some(format!(
                "the installed CRL #{} EXPIRED {}: nginx refuses EVERY client",
                c.number,
                fmt_time(n)
            )),
            Some(n) if n - now <= margin => Some(format!(
                "the installed CRL #{} expires {} (in {}) and no newer one could be installed: nginx will refuse EVERY client then",
                c.number,
                fmt_time(n),
                human_span(n - now)
            )),
            None => Some("an installed CRL has no nextUpdate".into()),
            _ => None,
        },
    }
}

/// The state's metrics, with the installed CRLs' numbers and dates.
fn crl_metrics(
    mut metrics: Vec<(String, f64)>,
    current: Option<&VerifiedCrls>,
    pinned_id: &str,
) -> Vec<(String, f64)> {
    if let Some(v) = current {
        if let Some(own) = v.crls.iter().find(|c| c.issuer == pinned_id) {
            metrics.push(("crl_number".into(), own.number as f64));
            metrics.push((
                "crl_this_update_timestamp_seconds".into(),
                own.this_update as f64,
            ));
        }
        if let Some(n) = earliest_expiring(current).and_then(|c| c.next_update) {
            metrics.push(("crl_next_update_timestamp_seconds".into(), n as f64));
        }
        for c in &v.crls {
            let at = format!(
                "{{issuer=\"{}\"}}",
                crate::output::encode::prometheus_label(&c.issuer)
            );
            metrics.push((format!("crl_issuer_number{at}"), c.number as f64));
            metrics.push((
                format!("crl_issuer_next_update_timestamp_seconds{at}"),
                c.next_update.unwrap_or(0) as f64,
            ));
        }
    }
    metrics
}

/// The CRL of the CA that issues now: the newest intermediate's, or the pinned CA's.
fn issuing_crl(crls: &chain::Crls) -> &chain::IssuedCrl {
    crls.intermediates
        .iter()
        .filter_map(|i| crls.of(&id_of(&i.der)).map(|c| (i.not_before, c)))
        .max_by_key(|(nb, _)| *nb)
        .map_or(&crls.crls[0], |(_, c)| c)
}

/// "#7" for one CRL; "#2 (root), #7" for a chain (the pinned CA's first).
fn describe_numbers(v: Option<&VerifiedCrls>) -> String {
    let Some(v) = v else {
        return "(none)".into();
    };
    v.crls
        .iter()
        .map(|c| format!("#{}", c.number))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn read_pinned(path: &Path) -> Result<CaCert> {
    let text = crate::repository::confined::read_named_string(
        path,
        ca::MAX_CERT_BYTES,
        "read the pinned CA",
    )?;
    let pinned = CaCert::parse(&text).map_err(|_| {
        Error::bad_file(path, "is not a CA certificate", "pass the CA certificate this machine trusts (ca/ca.crt of the CA repository, copied once by hand)")
    })?;
    // The pin is a trust anchor: a self-signed CA. An intermediate cannot vouch for the root
    // CRL nginx needs, nor survive the intermediate's replacement.
    if ca::verify_ca_signature(&pinned, &pinned.spki_der).is_err() {
        return Err(Error::bad_file(
            path,
            format!("is not a root: {} is not self-signed (an intermediate?)", pinned.subject),
            "pin the CA's root: ca/root.crt of a CA with an offline root (root.crt of the published tree), ca/ca.crt otherwise",
        ));
    }
    Ok(pinned)
}

/// The source, and the limits checked before anything runs.
fn source_of(f: &FromOptions, w: &WatchOptions) -> Result<Source> {
    seconds(&w.reload_timeout)?;
    Source::new(&SourceArgs {
        from: f.from.as_deref(),
        from_git: f.from_git.as_deref(),
        branch: &f.branch,
        https_ca: f.https_ca.as_deref(),
        git_cache: f.git_cache.as_deref(),
        timeout: seconds(&f.timeout)?,
    })
}

/// The top-level entry point for `gitca deploy crl`.
pub fn run_deploy_crl(
    args: &DeployCrlOptions,
    fixed_now: Option<OffsetDateTime>,
    out: &mut dyn Write,
) -> Result<u8> {
    let pinned = read_pinned(&args.from.pinned)?;
    let source = source_of(&args.from, &args.watch)?;
    let margin = Dur::parse(&args.stale_margin)?.0;
    let every = interval(args.watch.watch.as_deref())?;
    let label = file_label(&args.out);
    let metrics = args.watch.metrics_to(&label);
    drive(every, out, metrics, || {
        crl_once(args, &source, &pinned, now_or(fixed_now), margin)
    })
}

/// Checks a fetched chain: the leaf verifies under the pinned CA (or an intermediate it
/// certified and did not revoke), certifies the local key, is current and not revoked.
fn judge_cert(
    bytes: &[u8],
    pinned: &CaCert,
    key_spki: &[u8],
    crls: &chain::Crls,
    now: OffsetDateTime,
) -> std::result::Result<chain::Leaf, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the certificate is not PEM".to_string())?;
    let leaf = chain::verify_leaf(text, pinned, crls)?;
    if !crate::authority::pubkey::same_key(key_spki, &leaf.spki) {
        return Err("the fetched certificate is for another key than the local one: refused (a rotation? install the new key first)".into());
    }
    if leaf.not_before > now + SKEW || leaf.not_after <= now {
        return Err(format!(
            "the fetched certificate {} is not valid now ({} to {}): refused",
            leaf.serial,
            fmt_time(leaf.not_before),
            fmt_time(leaf.not_after)
        ));
    }
    Ok(leaf)
}

/// Whether a certificate grants serverAuth and no client authentication (a gitca server
/// certificate).
fn server_auth_only(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| {
        c.extended_key_usage()
            .ok()
            .flatten()
            .is_some_and(|e| e.value.server_auth && !e.value.client_auth && !e.value.any)
    })
}

/// The installed leaf, when it verifies under the pinned CA (directly, or through the
/// intermediate installed after it).
struct InstalledCert {
    serial: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    cn: Option<String>,
}

fn installed_cert(dir: &Dir, file: &str, pinned: &CaCert) -> Option<InstalledCert> {
    let text = dir.read_string(file, ca::MAX_CERT_BYTES).ok()?;
    let ders = crate::relying::bundle::parse_pem_certs(&text);
    let (_, cert) = x509_parser::parse_x509_certificate(ders.first()?).ok()?;
    let verifies = |spki_der: &[u8]| {
        x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
            .ok()
            .is_some_and(|(_, k)| cert.verify_signature(Some(&k)).is_ok())
    };
    let chained = verifies(&pinned.spki_der)
        || ders.iter().skip(1).any(|d| {
            CaCert::parse(&crate::output::encode::to_pem("CERTIFICATE", d)).is_ok_and(|i| {
                ca::verify_ca_signature(&i, &pinned.spki_der).is_ok() && verifies(&i.spki_der)
            })
        });
    if !chained {
        return None;
    }
    let v = cert.validity();
    Some(InstalledCert {
        serial: ca::serial_hex(cert.raw_serial()),
        not_before: v.not_before.to_datetime(),
        not_after: v.not_after.to_datetime(),
        cn: chain::common_name(&cert),
    })
}

/// One check of `deploy cert`.
fn cert_once(
    args: &DeployCertOptions,
    source: &Source,
    pinned: &CaCert,
    now: OffsetDateTime,
    margin: time::Duration,
) -> Result<Run> {
    let target = args.target.target()?;
    let dir = Dir::create(&target.dir)?;
    let state_file = state_path(&target.dir, &format!("client-{}", args.name));
    // What it records (validators, counters) only saves work: a damaged one starts afresh.
    let mut state = load_state(&state_file).ok().flatten().unwrap_or_default();
    state.last_check = Some(now.unix_timestamp());
    let (key_text, key) = crate::relying::bundle::read_client_key(&args.key)?;
    let key_spki = rcgen::PublicKeyData::subject_public_key_info(&key);
    let installed = installed_cert(&dir, target.cert_file(), pinned);
    let check = CertCheck {
        args,
        source,
        pinned,
        target: &target,
        key_pem: &key_text,
        key_spki: &key_spki,
        now,
    };
    // Going stale: ask without validators, so that no answer of a mirror's can keep the old
    // certificate installed until it expires.
    if installed
        .as_ref()
        .is_some_and(|i| i.not_after - now <= margin)
    {
        state.validators = Validators::default();
    }
    let verdict = check.fetch_and_install(installed.as_ref(), &mut state)?;
    count_outcome(&mut state, &verdict, now);
    // What is installed counts only if it is this identity's.
    let current = installed_cert(&dir, target.cert_file(), pinned)
        .filter(|i| {
            i.cn.as_deref() == Some(args.name.as_str())
                || (i.cn.is_some() && i.cn == state.installed_cn)
        })
        .map(|i| (i.serial, i.not_before, i.not_after));
    let stale = cert_staleness(current.as_ref(), args, &target, now, margin);
    let mut metrics = state.metrics(now, stale.is_some());
    if let Some((_, nb, na)) = &current {
        metrics.push((
            "cert_not_before_timestamp_seconds".into(),
            nb.unix_timestamp() as f64,
        ));
        metrics.push((
            "cert_not_after_timestamp_seconds".into(),
            na.unix_timestamp() as f64,
        ));
    }
    save_state(&state_file, &state)?;
    Ok(Run {
        verdict,
        stale,
        metrics,
    })
}

/// What one check of `deploy cert` works with: where it installs, and the local key.
struct CertCheck<'a> {
    args: &'a DeployCertOptions,
    source: &'a Source,
    pinned: &'a CaCert,
    target: &'a crate::relying::bundle::Target,
    key_pem: &'a str,
    key_spki: &'a [u8],
    now: OffsetDateTime,
}

impl CertCheck<'_> {
    /// Fetches the CRLs and the identity's certificate, judges it, and installs it when it is
    /// newer than what is installed.
    fn fetch_and_install(
        &self,
        installed: Option<&InstalledCert>,
        state: &mut DeployState,
    ) -> Result<Verdict> {
        // The CRLs first: a certificate is installed only if it is not revoked, nor its
        // intermediate.
        let crls = match self.fetch_crls() {
            Ok(c) => c,
            Err(v) => return Ok(v),
        };
        let last = if installed.is_some() {
            state.validators.clone()
        } else {
            Validators::default()
        };
        let (bytes, validators) = match self.source.fetch(Item::Cert(&self.args.name), &last) {
            Err(e) => return Ok(fetch_failed(e)),
            Ok(Fetch::NotModified) => {
                return Ok(Verdict::Unchanged("the source has nothing new".into()))
            }
            Ok(Fetch::Got(b, v)) => (b, v),
        };
        let checked = match judge_cert(&bytes, self.pinned, self.key_spki, &crls, self.now) {
            Err(why) => return Ok(Verdict::Refused(why)),
            Ok(c) => c,
        };
        if let Some(refused) = self.misplaced(&checked) {
            return Ok(refused);
        }
        if let Some(i) = installed {
            if let Some(verdict) = self.against_installed(i, &checked) {
                if matches!(verdict, Verdict::Unchanged(_)) {
                    state.validators = validators;
                }
                return Ok(verdict);
            }
        }
        self.install(&checked, validators, state)
    }

    /// The CRLs, verified under the pinned CA; or the verdict when there are none to trust.
    fn fetch_crls(&self) -> std::result::Result<chain::Crls, Verdict> {
        let crls = match self.source.fetch(Item::Crls, &Validators::default()) {
            Err(e) => return Err(fetch_failed(e)),
            Ok(Fetch::NotModified) => return Err(Verdict::Unavailable("no CRL".into())),
            Ok(Fetch::Got(b, _)) => b,
        };
        std::str::from_utf8(&crls)
            .map_err(|_| "the fetched CRLs are not PEM".to_string())
            .and_then(|t| chain::verify_crls(t, self.pinned, self.now))
            .map_err(Verdict::Refused)
    }

    /// Refuses a server's certificate bound for a client's place, or the other way round.
    fn misplaced(&self, checked: &chain::Leaf) -> Option<Verdict> {
        // A server's certificate goes where a server reads it, a client's where a client
        // does: each in the other's place would fail there, later and less clearly.
        let serves = server_auth_only(&checked.der);
        if serves == self.target.server {
            return None;
        }
        let name = &self.args.name;
        Some(Verdict::Refused(if serves {
            format!("{name} holds a server certificate (serverAuth only): install it with --server-dir DIR, where the server reads server.crt and server.key")
        } else {
            format!("{name} does not hold a server certificate: --server-dir is for identities declared under `servers:`")
        }))
    }

    /// Refuses to overwrite another identity's files, and keeps an installed certificate that
    /// is the same or newer (`Unchanged`).
    fn against_installed(&self, i: &InstalledCert, checked: &chain::Leaf) -> Option<Verdict> {
        // Another identity's certificate (a person's bundle where a bot deploys) is never
        // taken for this one's, nor overwritten.
        if i.cn != checked.cn {
            return Some(Verdict::Refused(format!(
                "{} holds the certificate of {} ({}), not {}'s: gitca does not overwrite another identity's files (use another --certs-root or --out-dir, or remove them)",
                self.target.dir.display(),
                i.cn.as_deref().unwrap_or("an unnamed identity"),
                i.serial,
                self.args.name
            )));
        }
        let (serial, nb) = (&i.serial, &i.not_before);
        if *serial == checked.serial || *nb >= checked.not_before {
            return Some(Verdict::Unchanged(format!(
                "certificate {serial} of {} is installed; nothing newer",
                self.args.name
            )));
        }
        None
    }

    /// Installs the certificate with the key and the CA, and runs the reload hook; a failing
    /// hook puts the previous files back.
    fn install(
        &self,
        checked: &chain::Leaf,
        validators: Validators,
        state: &mut DeployState,
    ) -> Result<Verdict> {
        let backups = crate::relying::bundle::install(
            self.target,
            &ClientFiles {
                chain_pem: &checked.chain_pem,
                key_pem: self.key_pem,
                ca_pem: &self.pinned.pem,
            },
        )?;
        let hook = self.args.watch.hook().map(|h| {
            reload(
                h,
                &[
                    ("GITCA_CERT_SERIAL", checked.serial.clone()),
                    ("GITCA_CERT_DIR", self.target.dir.display().to_string()),
                ],
            )
        });
        if let Some(Err(why)) = hook {
            for b in backups {
                b.restore()?;
            }
            return Ok(Verdict::Refused(format!(
                "{why}: the previous files were put back"
            )));
        }
        state.validators = validators;
        state.installed_cn = checked.cn.clone();
        Ok(Verdict::Installed(format!(
            "installed certificate {} of {} (valid until {}) in {}",
            checked.serial,
            self.args.name,
            fmt_time(checked.not_after),
            self.target.dir.display()
        )))
    }
}

/// Why the identity's installed certificate (serial, not before, not after) is stale, if it is.
fn cert_staleness(
    current: Option<&(String, OffsetDateTime, OffsetDateTime)>,
    args: &DeployCertOptions,
    target: &crate::relying::bundle::Target,
    now: OffsetDateTime,
    margin: time::Duration,
) -> Option<String> {
    match current {
        None => Some(format!("no certificate of {} is installed in {}", args.name, target.dir.display())),
        Some((serial, _, na)) if *na <= now => Some(format!("the installed certificate {serial} EXPIRED {}", fmt_time(*na))),
        Some((serial, _, na)) if *na - now <= margin => Some(format!(
            "the installed certificate {serial} expires {} and no renewal could be installed: is the CA's reconcile running, and is the identity still declared?",
            fmt_time(*na)
        )),
        _ => None,
    }
}

/// The top-level entry point for `gitca deploy cert`.
pub fn run_deploy_cert(
    args: &DeployCertOptions,
    fixed_now: Option<OffsetDateTime>,
    out: &mut dyn Write,
) -> Result<u8> {
    let pinned = read_pinned(&args.from.pinned)?;
    let source = source_of(&args.from, &args.watch)?;
    let margin = Dur::parse(&args.stale_margin)?.0;
    let every = interval(args.watch.watch.as_deref())?;
    if let Some(r) = args.target.docker_loopback() {
        let _ = writeln!(
            out,
            "warning: {}",
            crate::relying::bundle::docker_loopback_warning(r)
        );
    }
    let label = format!(
        "name=\"{}\"",
        crate::output::encode::prometheus_label(&args.name)
    );
    let metrics = args.watch.metrics_to(&label);
    drive(every, out, metrics, || {
        cert_once(args, &source, &pinned, now_or(fixed_now), margin)
    })
}
