//! Admission by record: the list of live certificates the CA's reviewed history issued, signed
//! with the history signing key (never the CA key), and its install on a relying party as an
//! nginx map, so that a certificate minted with a stolen CA key — outside that history — opens
//! nothing.
//!
//! `gitca publish` writes `admitted.txt` and `admitted.txt.sig` when the repository declares
//! history signers (`ca/allowed_signers`), `gitca audit` proves its history, and the history
//! signing key is given. The list is text, one certificate a line, bound to the commit it comes
//! from and to that commit's first-parent depth (its sequence: what "never older" compares):
//!
//! ```text
//! gitca-admission 1
//! commit 5a11fe0…
//! sequence 42
//! generated 2026-01-01T00:00:00Z
//! SERIAL SHA256 SHA1
//! ```
//!
//! SERIAL is the ledger's (lowercase hex), SHA256 and SHA1 the fingerprints of the leaf's DER.
//! nginx can only match a certificate by `$ssl_client_serial` and `$ssl_client_fingerprint`
//! (SHA-1 of the DER): the serial alone is not enough, since whoever holds the CA key can mint a
//! certificate with an admitted serial; its fingerprint cannot be reproduced (that would take a
//! second preimage of a certificate the CA already issued). The map keys on both.
//!
//! `gitca deploy admission` verifies the signature against the signers the relying party
//! pinned (an allowed-signers file, namespace `gitca-admission`), refuses a list older than the
//! one installed, and writes the map atomically.
//!
//! What this module must never do: install a list whose signature it did not verify against
//! the pinned signers, or go back to a lower sequence.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::relying::source::{Fetch, Item, Source, SourceArgs, Validators};
use crate::relying::watch::{
    drive, fetch_failed, file_label, interval, now_or, reload, seconds, Run, Verdict, WatchOptions,
};
use crate::repository::config::Dur;
use crate::repository::signer::{AllowedSigners, SigningKey};

pub const LIST: &str = "admitted.txt";
pub const SIG: &str = "admitted.txt.sig";
/// The SSHSIG namespace of admission lists: a commit signature is never one of them.
pub const NAMESPACE: &str = "gitca-admission";
const MAGIC: &str = "gitca-admission 1";
const MAX_BYTES: u64 = 32 << 20;
const MAP_HEADER: &str = "# gitca admission map:";

/// One admitted certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub serial: String,
    pub sha256: String,
    pub sha1: String,
}

impl Entry {
    /// The entry for a certificate of the ledger, from its leaf's DER.
    pub fn of(serial: &str, der: &[u8]) -> Entry {
        use sha1::Digest as _;
        Entry {
            serial: serial.to_string(),
            sha256: hex::encode(sha2::Sha256::digest(der)),
            sha1: hex::encode(sha1::Sha1::digest(der)),
        }
    }
}

/// An admission list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub commit: String,
    pub sequence: u64,
    pub generated: String,
    pub entries: Vec<Entry>,
}

/// The largest sequence a list may carry: a first-parent depth no history reaches, and far
/// below `u64::MAX`, so that no list can pin every later one out.
pub const MAX_SEQUENCE: u64 = 1 << 40;

/// How far in the future a list's signing time may be (clocks drift); past it, the list is
/// refused, since it would keep the relying party from ever going stale.
const FUTURE_SKEW: time::Duration = time::Duration::minutes(5);

/// `N` as `publish` writes it: decimal digits, no sign, no leading zero.
fn canonical_sequence(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    text.parse::<u64>()
        .ok()
        .filter(|n| canonical && *n <= MAX_SEQUENCE)
}

fn is_hex(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl List {
    pub fn render(&self) -> String {
        let mut s = format!(
            "{MAGIC}\ncommit {}\nsequence {}\ngenerated {}\n",
            self.commit, self.sequence, self.generated
        );
        for e in &self.entries {
            s.push_str(&format!("{} {} {}\n", e.serial, e.sha256, e.sha1));
        }
        s
    }

    /// Parses a list strictly: anything else is refused with the line it is on.
    pub fn parse(text: &str) -> std::result::Result<List, String> {
        let mut lines = text.lines().enumerate();
        let mut next = |what: &str| {
            lines
                .next()
                .map(|(_, l)| l)
                .ok_or_else(|| format!("it ends before its {what} line"))
        };
        if next("first")? != MAGIC {
            return Err(format!("it does not start with `{MAGIC}`"));
        }
        let commit = next("commit")?
            .strip_prefix("commit ")
            .filter(|c| is_hex(c, 40, 64))
            .ok_or("line 2 is not `commit HEX`")?
            .to_string();
        let sequence = next("sequence")?
            .strip_prefix("sequence ")
            .and_then(canonical_sequence)
            .ok_or(format!(
                "line 3 is not `sequence N` (N in decimal as publish writes it, no sign or leading zero, at most {MAX_SEQUENCE})"
            ))?;
        let generated = next("generated")?
            .strip_prefix("generated ")
            .filter(|g| crate::time::parse_time(g).is_some_and(|t| crate::time::fmt_time(t) == *g))
            .ok_or("line 4 is not `generated YYYY-MM-DDTHH:MM:SSZ` as publish writes it")?
            .to_string();
        let mut entries = Vec::new();
        for (i, line) in lines {
            let f: Vec<&str> = line.split(' ').collect();
            match f[..] {
                [serial, sha256, sha1]
                    if is_hex(serial, 2, 40)
                        && serial.len() % 2 == 0
                        && is_hex(sha256, 64, 64)
                        && is_hex(sha1, 40, 40) =>
                {
                    entries.push(Entry {
                        serial: serial.into(),
                        sha256: sha256.into(),
                        sha1: sha1.into(),
                    })
                }
                _ => return Err(format!("line {} is not `SERIAL SHA256 SHA1`", i + 1)),
            }
        }
        if let Some(w) = entries.windows(2).find(|w| w[0].serial >= w[1].serial) {
            return Err(format!(
                "serial {} is listed after {} (publish lists each certificate once, in ascending serial order)",
                w[1].serial, w[0].serial
            ));
        }
        let list = List {
            commit,
            sequence,
            generated,
            entries,
        };
        // Byte for byte what publish writes: no CR, a final newline, nothing else.
        if list.render() != text {
            return Err(
                "it is not written as publish writes it (LF line endings, a final newline)".into(),
            );
        }
        Ok(list)
    }

    /// The nginx map fragment (`include`d inside `map "$ssl_client_serial:$ssl_client_fingerprint"`
    /// by `gitca export nginx --admitted`): nginx writes the serial in uppercase hex and the
    /// fingerprint in lowercase, and every value here is hex, so nothing in it is syntax.
    pub fn nginx_map(&self) -> String {
        let mut s = format!(
            "{MAP_HEADER} sequence {} commit {} generated {}\n# written by `gitca deploy admission`: do not edit\n",
            self.sequence, self.commit, self.generated
        );
        for e in &self.entries {
            s.push_str(&format!(
                "\"{}:{}\" 1;\n",
                e.serial.to_ascii_uppercase(),
                e.sha1
            ));
        }
        s
    }
}

/// The signed list `publish` writes, or why it writes none (`Ok(None)`: the repository
/// declares no history signers, so there is nothing to admit by).
pub fn for_publish(
    repo: &crate::repository::git::CaRepo,
    outputs: &crate::repository::load::Outputs,
    mut entries: Vec<Entry>,
    now: time::OffsetDateTime,
) -> Result<Option<std::result::Result<(String, String), String>>> {
    let head = match repo.head_oid() {
        Some(h) => repo.git.find_commit(h)?,
        None => return Ok(None),
    };
    let Some(allowed) = crate::repository::signer::in_tree(
        &repo.git,
        &head.tree()?,
        crate::repository::signer::ALLOWED_SIGNERS,
    )?
    else {
        return Ok(None);
    };
    let report = crate::repository::audit::audit(&repo.git, None)?;
    if let Some(b) = &report.broken {
        return Ok(Some(Err(format!(
            "gitca audit breaks at commit {} ({}): run gitca audit",
            &b.commit[..12],
            b.rule
        ))));
    }
    let key = match listed_signing_key(&allowed) {
        Ok(k) => k,
        Err(why) => return Ok(Some(Err(why))),
    };
    add_replaced_certs(repo, outputs, &report.issued_in, &mut entries, now);
    entries.sort_by(|a, b| a.serial.cmp(&b.serial));
    let list = List {
        commit: head.id().to_string(),
        sequence: report.commits as u64,
        generated: crate::time::fmt_time(now),
        entries,
    };
    let text = list.render();
    let sig = key.sign_in(NAMESPACE, text.as_bytes())?;
    Ok(Some(Ok((text, sig))))
}

/// The history signing key given (environment or `--signing-key`), when `allowed` lists it;
/// else why there is none to sign with.
fn listed_signing_key(allowed: &AllowedSigners) -> std::result::Result<SigningKey, String> {
    let key = match SigningKey::from_env() {
        Ok(Some(k)) => k,
        Ok(None) => {
            return Err(
                "no history signing key was given (GITCA_SIGNING_KEY, GITCA_SIGNING_KEY_FILE or --signing-key)".into(),
            )
        }
        Err(e) => return Err(e.to_string()),
    };
    if allowed
        .find_for(key.public().key_data(), NAMESPACE)
        .is_none()
    {
        return Err(format!(
            "the history signing key given ({}) is not listed in {} for admission lists (or its line says namespaces=\"git\")",
            key.fingerprint(),
            crate::repository::signer::ALLOWED_SIGNERS
        ));
    }
    Ok(key)
}

/// Adds the live certificates not yet in `entries` (those a renewal replaced), each read from
/// the commit that issued it.
fn add_replaced_certs(
    repo: &crate::repository::git::CaRepo,
    outputs: &crate::repository::load::Outputs,
    issued_in: &std::collections::HashMap<String, git2::Oid>,
    entries: &mut Vec<Entry>,
    now: time::OffsetDateTime,
) {
    // Every live certificate, not only each identity's current one: a certificate a renewal
    // replaced stays valid (and in use) until it expires. Its file is the one the commit that
    // issued it wrote, verified against the ledger and its issuer like the current ones.
    let listed: std::collections::HashSet<String> =
        entries.iter().map(|e| e.serial.clone()).collect();
    for rec in outputs.ledger.records.iter().filter(|r| r.is_live(now)) {
        if listed.contains(&rec.serial) {
            continue;
        }
        let Some(text) = issued_in
            .get(&rec.serial)
            .and_then(|b| {
                crate::repository::history::read_blob(
                    &repo.git,
                    *b,
                    crate::authority::ca::MAX_CERT_BYTES,
                )
            })
            .and_then(|b| String::from_utf8(b).ok())
        else {
            continue;
        };
        let Some((issuer_path, issuer)) = crate::repository::load::issuer_cert(
            &outputs.ca,
            outputs.hierarchy.as_ref(),
            rec.issuer.as_deref(),
        ) else {
            continue;
        };
        let expected = crate::authority::issued::Expected {
            record: rec,
            issuer,
            issuer_path,
            cn: None,
        };
        if crate::authority::issued::verify(&text, &expected).is_err() {
            continue;
        }
        if let Some(leaf) = pem::parse_many(&text)
            .ok()
            .and_then(|b| b.into_iter().next())
        {
            entries.push(Entry::of(&rec.serial, leaf.contents()));
        }
    }
}

/// Where `gitca deploy admission` reads the published list, the signers it pins, where it
/// writes the nginx map, and how it keeps it current.
#[derive(Debug)]
pub struct DeployAdmissionOptions {
    /// The published tree holding admitted.txt and admitted.txt.sig: a directory, or the
    /// http(s) URL it is served at.
    pub from: String,
    /// The CA certificate of an https:// source's TLS server (default: the system's roots).
    pub https_ca: Option<PathBuf>,
    /// The most one fetch may take.
    pub timeout: String,
    /// The history signers this server trusts (allowed-signers format): the pin.
    pub signers: PathBuf,
    /// The nginx map fragment to write.
    pub out: PathBuf,
    /// Stale (exit 4) when the newest list seen was signed longer ago than this.
    pub max_age: String,
    pub watch: WatchOptions,
}

/// The top-level entry point for `gitca deploy admission`: installs the published admission
/// list as an nginx map when it verifies against the pinned signers and is not older than the
/// installed one, reloads the server (putting the previous map back if the reload fails), and
/// with `--watch` keeps doing so; like `deploy crl`, a source that cannot be read leaves what
/// is installed, and exit 4 says it went stale.
pub fn run_deploy_admission(
    args: &DeployAdmissionOptions,
    fixed_now: Option<time::OffsetDateTime>,
    out: &mut dyn Write,
) -> Result<u8> {
    let pinned = read_signers(&args.signers)?;
    let source = AdmissionSource::new(args)?;
    let max_age = Dur::parse(&args.max_age)?.0;
    seconds(&args.watch.reload_timeout)?;
    let every = interval(args.watch.watch.as_deref())?;
    let label = file_label(&args.out);
    let metrics = args.watch.metrics_to(&label);
    drive(every, out, metrics, || {
        Ok(admission_once(
            args,
            &source,
            &pinned,
            now_or(fixed_now),
            max_age,
        ))
    })
}

/// The pinned history signers. A file of the operator's, outside any repository: its lines
/// are never quoted back (it could be anything, /proc/self/environ included), only their
/// numbers.
fn read_signers(path: &Path) -> Result<AllowedSigners> {
    let text = crate::repository::confined::read_named_string(
        path,
        crate::repository::signer::MAX_BYTES,
        "read the pinned signers",
    )?;
    AllowedSigners::parse(&path.display().to_string(), &text).map_err(|e| match e {
        Error::Located(l) => Error::usage(
            format!(
                "{} line {} is not an allowed signer gitca reads",
                path.display(),
                l.line()
            ),
            "pass a copy of the CA's ca/allowed_signers (`PRINCIPAL ssh-ed25519 AAAA…` lines)",
        ),
        e => e,
    })
}

/// Where the list comes from: a directory read as it is (a published tree, or any directory
/// holding the two files), or a published tree over HTTP(S).
enum AdmissionSource {
    Dir(PathBuf),
    Http(Source),
}

impl AdmissionSource {
    fn new(args: &DeployAdmissionOptions) -> Result<AdmissionSource> {
        if !(args.from.starts_with("http://") || args.from.starts_with("https://")) {
            return Ok(AdmissionSource::Dir(PathBuf::from(&args.from)));
        }
        Ok(AdmissionSource::Http(Source::new(&SourceArgs {
            from: Some(&args.from),
            from_git: None,
            branch: "main",
            https_ca: args.https_ca.as_deref(),
            git_cache: None,
            timeout: seconds(&args.timeout)?,
        })?))
    }

    fn describe(&self, name: &str) -> String {
        match self {
            AdmissionSource::Dir(d) => d.join(name).display().to_string(),
            AdmissionSource::Http(s) => format!("{}/{name}", s.describe()),
        }
    }

    /// The list's text, and its signature if there is one (`None`: the source has none); or
    /// the verdict when there is no list to judge: unavailable when the source cannot be read,
    /// refused when what it holds is no list (too large, not text, a link, not a file).
    fn fetch(&self) -> std::result::Result<(String, Option<Vec<u8>>), Verdict> {
        let (list, sig) = match self {
            AdmissionSource::Dir(dir) => {
                let dir = crate::repository::confined::Dir::open(dir).map_err(fetch_failed)?;
                let list = dir
                    .read_opt(LIST, MAX_BYTES)
                    .map_err(|e| self.refused(LIST, fetch_failed(e)))?
                    .ok_or_else(|| {
                        Verdict::Unavailable(format!("{} does not exist", self.describe(LIST)))
                    })?;
                let sig = dir
                    .read_opt(SIG, MAX_SIG_BYTES)
                    .map_err(|e| self.refused(SIG, fetch_failed(e)))?;
                (list, sig)
            }
            AdmissionSource::Http(source) => {
                let get = |name| match source.fetch(Item::Published(name), &Validators::default()) {
                    Ok(Fetch::Got(bytes, _)) => Ok(bytes),
                    Ok(Fetch::NotModified) => Err(Verdict::Unavailable(
                        "the source answered 304 to an unconditional request".into(),
                    )),
                    Err(e) => Err(self.refused(name, fetch_failed(e))),
                };
                let list = get(LIST)?;
                if list.len() as u64 > MAX_BYTES {
                    return Err(self.refused(
                        LIST,
                        Verdict::Refused(format!("{} bytes, more than {MAX_BYTES}", list.len())),
                    ));
                }
                // A list the source has no signature for is refused below; a signature it
                // cannot serve now (an error, a timeout) leaves the source unavailable.
                let sig = match source.fetch(Item::Published(SIG), &Validators::default()) {
                    Ok(Fetch::Got(bytes, _)) => Some(bytes),
                    Err(e) if crate::relying::source::is_not_found(&e) => None,
                    Err(e) => return Err(self.refused(SIG, fetch_failed(e))),
                    Ok(Fetch::NotModified) => {
                        return Err(Verdict::Unavailable(
                            "the source answered 304 to an unconditional request".into(),
                        ))
                    }
                };
                (list, sig)
            }
        };
        if sig.as_ref().is_some_and(|s| s.len() as u64 > MAX_SIG_BYTES) {
            return Err(self.refused(
                SIG,
                Verdict::Refused(format!("more than {MAX_SIG_BYTES} bytes")),
            ));
        }
        let text = String::from_utf8(list)
            .map_err(|_| self.refused(LIST, Verdict::Refused("not UTF-8 text".into())))?;
        Ok((text, sig))
    }

    /// A refusal of what the source holds, said of the file it is about.
    fn refused(&self, name: &str, verdict: Verdict) -> Verdict {
        match verdict {
            Verdict::Refused(why) => Verdict::Refused(format!(
                "admission list refused: {}: {why}; nothing was installed, the list installed before stays",
                self.describe(name)
            )),
            other => other,
        }
    }
}

const MAX_SIG_BYTES: u64 = 64 << 10;

/// What the installed map says of itself: its sequence, commit and signing time from its
/// header, and how many certificates it admits.
struct InstalledMap {
    sequence: u64,
    commit: Option<String>,
    generated: Option<time::OffsetDateTime>,
    entries: usize,
    bytes: Vec<u8>,
}

/// The newest list ever installed at an `--out`: its sequence, commit and signing time.
#[derive(Debug, Default)]
struct Floor {
    sequence: u64,
    commit: Option<String>,
    generated: Option<time::OffsetDateTime>,
}

/// One check of `deploy admission`: fetch, verify, install (and reload), judge staleness.
fn admission_once(
    args: &DeployAdmissionOptions,
    source: &AdmissionSource,
    pinned: &AllowedSigners,
    now: time::OffsetDateTime,
    max_age: time::Duration,
) -> Run {
    let (installed, floor) = match installed_and_floor(&args.out) {
        Ok(found) => found,
        Err(e) => {
            return Run {
                verdict: Verdict::Refused(e.to_string()),
                stale: None,
                metrics: Vec::new(),
            }
        }
    };
    let mut newest = installed.as_ref().and_then(|i| i.generated);
    let verdict = match source.fetch() {
        Err(verdict) => verdict,
        Ok((text, sig)) => match verified(pinned, source, &text, sig.as_deref(), now) {
            Err(why) => Verdict::Refused(format!("admission list refused: {why}; nothing was installed, the list installed before stays")),
            Ok((list, signer)) => {
                let verdict = install(args, &list, &signer, (installed.as_ref(), &floor));
                if !matches!(verdict, Verdict::Refused(_)) {
                    newest = newest.max(crate::time::parse_time(&list.generated));
                }
                verdict
            }
        },
    };
    let stale = match newest {
        Some(t) if now - t > max_age => Some(format!(
            "the newest admission list seen was signed at {} (over --max-age {} ago): `gitca publish` has stopped, or this server cannot reach it; identities merged since are not admitted",
            crate::time::fmt_time(t),
            args.max_age
        )),
        _ => None,
    };
    let after = installed_map(&args.out).ok().flatten();
    let metrics = admission_metrics(now, after.as_ref(), newest, &verdict, stale.is_some());
    Run {
        verdict,
        stale,
        metrics,
    }
}

/// The metrics of one check: they describe what is installed after it, not what was fetched.
fn admission_metrics(
    now: time::OffsetDateTime,
    installed: Option<&InstalledMap>,
    newest: Option<time::OffsetDateTime>,
    verdict: &Verdict,
    stale: bool,
) -> Vec<(String, f64)> {
    vec![
        (
            "admission_last_check_timestamp_seconds".into(),
            now.unix_timestamp() as f64,
        ),
        (
            "admission_sequence".into(),
            installed.map_or(0.0, |m| m.sequence as f64),
        ),
        (
            "admission_signed_timestamp_seconds".into(),
            newest.map_or(0.0, |t| t.unix_timestamp() as f64),
        ),
        (
            "admission_entries".into(),
            installed.map_or(-1.0, |m| m.entries as f64),
        ),
        (
            "admission_refused".into(),
            f64::from(u8::from(matches!(verdict, Verdict::Refused(_)))),
        ),
        ("admission_stale".into(), f64::from(u8::from(stale))),
    ]
}

/// The list, verified against the pinned signers, and who signed it.
fn verified(
    pinned: &AllowedSigners,
    source: &AdmissionSource,
    text: &str,
    sig: Option<&[u8]>,
    now: time::OffsetDateTime,
) -> std::result::Result<(List, String), String> {
    let shown = source.describe(LIST);
    let sig = sig.ok_or_else(|| format!("{shown} has no signature ({SIG})"))?;
    let signer = crate::repository::signer::verify_in(pinned, NAMESPACE, sig, text.as_bytes())
        .map_err(|why| format!("{shown}: {why}"))?;
    let list = List::parse(text).map_err(|why| format!("{shown}: {why}"))?;
    if let Some(t) = crate::time::parse_time(&list.generated).filter(|t| *t > now + FUTURE_SKEW) {
        return Err(format!(
            "{shown}: it says it was signed at {}, later than this machine's clock ({}) allows: a list from the future would never go stale; check both clocks",
            crate::time::fmt_time(t),
            crate::time::fmt_time(now)
        ));
    }
    Ok((list, signer))
}

/// What installing a list would do, judged against the installed map and the floor.
enum Judged {
    /// Write the map and reload the server.
    Install,
    /// The same entries, signed later: the map's header is refreshed (so that staleness
    /// survives a restart), and the server needs no reload.
    Refresh(String),
    /// Nothing to do, or refused.
    Done(Verdict),
}

/// Never older, and never a second list for a sequence already installed unless it is the
/// same history's, signed later: two lists with one sequence and different commits mean the
/// history was rewritten or the signing key signed a fork.
fn judge(list: &List, installed: Option<&InstalledMap>, floor: &Floor) -> Judged {
    let kept = "nothing was installed, the list installed before stays";
    if list.sequence < floor.sequence {
        return Judged::Done(Verdict::Refused(format!(
            "admission list refused: it is older (sequence {}) than the newest list installed here (sequence {}); {kept}",
            list.sequence, floor.sequence
        )));
    }
    if list.sequence > floor.sequence {
        return Judged::Install;
    }
    if let Some(c) = floor.commit.as_deref().filter(|c| *c != list.commit) {
        return Judged::Done(Verdict::Refused(format!(
            "admission list refused: sequence {} was installed here from commit {} and this list says commit {}: two histories of one length, so the CA's history was rewritten or its signing key signed a fork (run gitca audit on a clone); {kept}",
            list.sequence,
            short(c),
            short(&list.commit)
        )));
    }
    same_sequence(
        list,
        installed.filter(|i| i.sequence == list.sequence),
        floor,
    )
}

/// A list of the installed history's sequence and commit: installed when it was signed later
/// (publish drops a certificate that expired), refreshed when only its time is newer; an
/// earlier one is a replay, refused unless it admits exactly what is installed (a cache that
/// serves the previous publish).
fn same_sequence(list: &List, installed: Option<&InstalledMap>, floor: &Floor) -> Judged {
    let kept = "nothing was installed, the list installed before stays";
    let signed = crate::time::parse_time(&list.generated);
    // The newest signing time installed at this sequence: the map's, or the floor's when the
    // map was removed.
    let newest = installed.and_then(|i| i.generated).max(floor.generated);
    let later = match (signed, newest) {
        (Some(new), Some(old)) => new > old,
        (Some(_), None) => true,
        _ => false,
    };
    let earlier = matches!((signed, newest), (Some(new), Some(old)) if new < old);
    let same_entries =
        installed.is_some_and(|i| map_body(&i.bytes) == map_body(list.nginx_map().as_bytes()));
    match (installed, same_entries, later) {
        // A floor an earlier gitca wrote records no signing time (or no commit): with the map
        // gone, nothing tells this list from a replay or a fork.
        (None, _, _) if floor.generated.is_none() && floor.sequence > 0 => {
            Judged::Done(Verdict::Refused(format!(
                "admission list refused: sequence {} is the newest installed here, but the map is gone and its floor file (written by an earlier gitca) records no signing time, so a replay cannot be told apart; {kept}. If this list is the newest the CA published, remove the floor file beside --out and run again",
                list.sequence
            )))
        }
        (None, _, _) if !earlier => Judged::Install,
        (Some(i), true, true) => Judged::Refresh(format!(
            "Admission list current: sequence {}, {} certificate(s)",
            i.sequence, i.entries
        )),
        (Some(i), true, false) => Judged::Done(Verdict::Unchanged(format!(
            "Admission list current: sequence {}, {} certificate(s)",
            i.sequence, i.entries
        ))),
        (Some(_), false, true) => Judged::Install,
        _ => Judged::Done(Verdict::Refused(format!(
            "admission list refused: it has sequence {} like the newest list installed here, but {} and was not signed later ({} against {}): a replayed or forged list; {kept}",
            list.sequence,
            if installed.is_some() { "other entries" } else { "the map was removed" },
            list.generated,
            newest.map_or("unknown".into(), crate::time::fmt_time)
        ))),
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// A map's entries: every line but its comments.
fn map_body(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.starts_with(b"#"))
        .collect()
}

/// Installs `list` as [`judge`] decides; runs the reload hook after a change and puts the
/// previous map back if it fails.
fn install(
    args: &DeployAdmissionOptions,
    list: &List,
    signer: &str,
    (installed, floor): (Option<&InstalledMap>, &Floor),
) -> Verdict {
    let write = |bytes: &[u8]| crate::relying::watch::install_file(&args.out, bytes);
    match judge(list, installed, floor) {
        Judged::Done(verdict) => {
            // A floor an earlier gitca wrote is brought up to date from the installed map.
            if let (Verdict::Unchanged(_), Some(i), None) = (&verdict, installed, floor.generated) {
                if let (Some(commit), Some(t)) = (&i.commit, i.generated) {
                    let text = floor_text(i.sequence, commit, &crate::time::fmt_time(t));
                    if let Err(e) = store_floor(&args.out, &text) {
                        return Verdict::Refused(e.to_string());
                    }
                }
            }
            return verdict;
        }
        Judged::Refresh(current) => {
            return match write_floor(&args.out, list)
                .and_then(|()| write(list.nginx_map().as_bytes()))
            {
                Ok(()) => Verdict::Unchanged(current),
                Err(e) => Verdict::Refused(e.to_string()),
            }
        }
        Judged::Install => {}
    }
    if let Err(e) = write_floor(&args.out, list) {
        return Verdict::Refused(e.to_string());
    }
    if let Err(e) = write(list.nginx_map().as_bytes()) {
        return Verdict::Refused(e.to_string());
    }
    if let Some(hook) = args.watch.hook() {
        let env = [("GITCA_ADMISSION_FILE", args.out.display().to_string())];
        if let Err(why) = reload(hook, &env) {
            let restored = match installed {
                Some(i) => write(&i.bytes),
                None => std::fs::remove_file(&args.out).map_err(Error::io("remove", &args.out)),
            };
            return Verdict::Refused(format!(
                "the reload failed ({why}); {}",
                match restored {
                    Ok(()) => "the previous admission map is back in place".to_string(),
                    Err(e) => format!("putting the previous map back failed too: {e}"),
                }
            ));
        }
    }
    Verdict::Installed(format!(
        "Installed admission list sequence {} (commit {}, signed by {signer}): {} certificate(s) in {}",
        list.sequence,
        short(&list.commit),
        list.entries.len(),
        args.out.display()
    ))
}

/// The map installed at `out`, and the newest list ever installed there: the map's, or the
/// floor file's when the map was removed or replaced (a source may wait for that to serve an
/// older list).
fn installed_and_floor(out: &Path) -> Result<(Option<InstalledMap>, Floor)> {
    let installed = installed_map(out)?;
    let mut floor = read_floor(out)?;
    if let Some(i) = installed.as_ref().filter(|i| i.sequence > floor.sequence) {
        floor = Floor {
            sequence: i.sequence,
            commit: i.commit.clone(),
            generated: i.generated,
        };
    }
    Ok((installed, floor))
}

/// The file beside the map that keeps the newest list ever installed there.
fn floor_file(out: &Path) -> Result<(crate::repository::confined::Dir, String)> {
    let (dir, name) = crate::relying::watch::split(out)?;
    Ok((dir, format!(".{name}.gitca-admission-floor")))
}

/// The newest list ever installed at `out` (sequence 0: none recorded); a floor file gitca
/// did not write is refused, since it is what refuses rollbacks.
fn read_floor(out: &Path) -> Result<Floor> {
    let (dir, name) = floor_file(out)?;
    let Some(bytes) = dir.read_opt(&name, 256)? else {
        return Ok(Floor::default());
    };
    let parsed = std::str::from_utf8(&bytes).ok().and_then(|t| {
        let mut lines = t.lines();
        let sequence = lines.next()?.strip_prefix("sequence ")?.parse().ok()?;
        let mut floor = Floor {
            sequence,
            ..Floor::default()
        };
        // Written by earlier versions: the sequence alone, or with the commit.
        if let Some(l) = lines.next() {
            let c = l.strip_prefix("commit ").filter(|c| is_hex(c, 40, 64))?;
            floor.commit = Some(c.to_string());
        }
        if let Some(l) = lines.next() {
            floor.generated = Some(crate::time::parse_time(l.strip_prefix("generated ")?)?);
        }
        lines.next().is_none().then_some(floor)
    });
    parsed.ok_or_else(|| {
        Error::bad_file(
            dir.path().join(&name),
            "is not the floor gitca deploy admission writes",
            "it records the newest admission list installed, which is what refuses rollbacks: if it was damaged by accident, remove it (the installed map's sequence is then the floor)",
        )
    })
}

fn write_floor(out: &Path, list: &List) -> Result<()> {
    store_floor(
        out,
        &floor_text(list.sequence, &list.commit, &list.generated),
    )
}

fn floor_text(sequence: u64, commit: &str, generated: &str) -> String {
    format!("sequence {sequence}\ncommit {commit}\ngenerated {generated}\n")
}

fn store_floor(out: &Path, text: &str) -> Result<()> {
    let (dir, name) = floor_file(out)?;
    dir.write(&name, text.as_bytes(), 0o644)
}

/// The map installed at `path`, if one is: its sequence and signing time from its header.
fn installed_map(path: &Path) -> Result<Option<InstalledMap>> {
    let bytes = match crate::repository::confined::read_named(
        path,
        MAX_BYTES * 2,
        "read the installed map",
    ) {
        Ok(b) => b,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let header = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| t.lines().next())
        .and_then(|l| l.strip_prefix(MAP_HEADER));
    let field = |name: &str| {
        let mut words = header?.split_whitespace();
        words.find(|w| *w == name)?;
        words.next().map(str::to_string)
    };
    let Some(sequence) = field("sequence").and_then(|n| n.parse().ok()) else {
        return Err(Error::bad_file(
            path,
            "is not an admission map gitca wrote",
            "remove it (the next run installs the published list) or pass another --out",
        ));
    };
    let generated = field("generated").and_then(|t| crate::time::parse_time(&t));
    let commit = field("commit").filter(|c| is_hex(c, 40, 64));
    let entries = map_body(&bytes).iter().filter(|l| !l.is_empty()).count();
    Ok(Some(InstalledMap {
        sequence,
        commit,
        generated,
        entries,
        bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_and_refuse_anything_else() {
        let list = List {
            commit: "ab".repeat(20),
            sequence: 7,
            generated: "2026-01-01T00:00:00Z".into(),
            entries: vec![Entry::of("0a1b", b"der")],
        };
        assert_eq!(List::parse(&list.render()).unwrap(), list);
        let text = list.render();
        for bad in [
            text.replace("sequence 7", "sequence -1"),
            text.replace("0a1b", "0A1B"),
            format!("{text}\"x\" 1;\n"),
            text.replacen(MAGIC, "gitca-admission 2", 1),
            text.replace("sequence 7", "sequence +7"),
            text.replace("sequence 7", "sequence 07"),
            text.replace("sequence 7", &format!("sequence {}", u64::MAX)),
            text.replace("00:00:00Z", "00:00:00+00:00"),
        ] {
            assert!(List::parse(&bad).is_err(), "{bad}");
        }
        assert!(list.nginx_map().contains("\"0A1B:"));
    }
}
