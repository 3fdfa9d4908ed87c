//! The declared identities: `identities/*.yaml`, each entry with its source position.
//!
//! Loading validates every entry (name, email, groups, profile, CSR path) and reports every
//! problem found, not only the first, each pointing at its file and line. It reads CSR files
//! only to hash them: no CSR is parsed here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use crate::authority::revocation::RevocationReason;
use crate::error::{Error, Located, Result};
use crate::repository::config::{valid_group, Config, Dur};
use crate::repository::confined::Dir;
use crate::repository::yaml;

pub const DIR: &str = "identities";
/// Largest CSR file gitca reads; an RSA-4096 CSR is about 1.7 KiB.
pub const MAX_CSR_BYTES: u64 = 64 * 1024;
/// Most identities one CA repository may declare.
pub const MAX_IDENTITIES: usize = 100_000;
/// Most identity files, and most bytes all of them together, that gitca reads.
pub const MAX_FILES: usize = 2 * MAX_IDENTITIES;
pub const MAX_TOTAL_BYTES: u64 = 128 << 20;
/// Identity files are read and parsed in parallel this many bytes at a time (see `parse_all`).
const CHUNK_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    User,
    Bot,
    /// A TLS server (a registry host, an internal service): DNS names and IP addresses,
    /// serverAuth only.
    Server,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Bot => "bot",
            Kind::Server => "server",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "user" => Some(Kind::User),
            "bot" => Some(Kind::Bot),
            "server" => Some(Kind::Server),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    users: Option<Vec<Spanned<EntrySpec>>>,
    #[serde(default)]
    bots: Option<Vec<Spanned<EntrySpec>>>,
    #[serde(default)]
    servers: Option<Vec<Spanned<EntrySpec>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySpec {
    name: Spanned<String>,
    #[serde(default)]
    email: Option<Spanned<String>>,
    #[serde(default)]
    csr: Option<Spanned<String>>,
    #[serde(default)]
    groups: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    profile: Option<Spanned<String>>,
    #[serde(default)]
    validity: Option<Spanned<String>>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    revoke: Option<Spanned<String>>,
    #[serde(default)]
    common_name: Option<Spanned<String>>,
    #[serde(default)]
    renamed_from: Option<Spanned<String>>,
    #[serde(default)]
    acknowledged: Option<AcknowledgedSpec>,
    /// Servers only: the certificate's DNS names.
    #[serde(default)]
    dns_names: Option<Spanned<Vec<Spanned<String>>>>,
    /// Servers only: the certificate's IP addresses.
    #[serde(default)]
    ip_addresses: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `acknowledged: {until: YYYY-MM-DD, reason: "…"}` (see [`Acknowledged`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcknowledgedSpec {
    until: Spanned<String>,
    reason: Spanned<String>,
}

/// Longest an acknowledgement may run, counted from the clock of the run that reads it.
pub const MAX_ACKNOWLEDGED_DAYS: i64 = 30;

/// A reviewed acknowledgement that an identity is blocked (a CSR refused or missing): through
/// the end of `until` (UTC) it is still reported everywhere, but alone it turns nothing red —
/// reconcile exits 0, plan and check pass — so that the next new problem stands out. It holds
/// only while `until` is at most [`MAX_ACKNOWLEDGED_DAYS`] ahead: silencing is renewed by a
/// reviewed change, never open-ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    pub until: time::Date,
    pub reason: String,
    /// Byte span of the `until` value.
    pub span: (usize, usize),
}

impl Acknowledged {
    fn today(now: time::OffsetDateTime) -> time::Date {
        now.to_offset(time::UtcOffset::UTC).date()
    }

    /// Whether it holds at `now`: `until` not past, and not too far ahead.
    pub fn holds(&self, now: time::OffsetDateTime) -> bool {
        Acknowledged::today(now) <= self.until && !self.too_far(now)
    }

    /// `until` is more than [`MAX_ACKNOWLEDGED_DAYS`] after `now`.
    pub fn too_far(&self, now: time::OffsetDateTime) -> bool {
        self.until > Acknowledged::today(now) + time::Duration::days(MAX_ACKNOWLEDGED_DAYS)
    }

    /// `until` has passed.
    pub fn ended(&self, now: time::OffsetDateTime) -> bool {
        Acknowledged::today(now) > self.until
    }
}

/// Where an identity was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: String,
    /// Byte span of the entry's `name` value.
    pub span: (usize, usize),
    /// Byte span of the entry's `csr` value (the name's when `csr` is implicit).
    pub csr_span: (usize, usize),
    /// Byte span of the entry's `common_name` value, when it has one.
    pub cn_span: Option<(usize, usize)>,
    pub line: usize,
}

/// One declared user or bot, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub kind: Kind,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub profile: String,
    pub validity: Option<Dur>,
    pub disabled: bool,
    pub revoke: Option<RevocationReason>,
    /// The certificate's CN when it is not the name (identities imported from an `openssl ca`
    /// whose CNs are not valid names, such as `John Smith`).
    pub common_name: Option<String>,
    /// The name this identity had before (a rename): it takes over that identity's key, and
    /// that identity's certificates are revoked as superseded.
    pub renamed_from: Option<String>,
    /// Its being blocked is known and reviewed (see [`Acknowledged`]).
    pub acknowledged: Option<Acknowledged>,
    /// A server's DNS names and IP addresses, as declared (checked against gitca.yaml's
    /// `servers:` policy); empty for users and bots.
    pub names: Vec<crate::authority::server::San>,
    /// Repository-relative path of the CSR.
    pub csr: String,
    /// SHA-256 (hex) of the CSR file's bytes; `None` when the file does not exist.
    pub csr_sha256: Option<String>,
    /// The bytes that were hashed, kept so that the CSR reconcile verifies and signs for is the
    /// one whose digest it records (and is not read twice).
    pub csr_bytes: Option<std::sync::Arc<[u8]>>,
    pub source: Source,
}

impl Identity {
    /// The CN its certificates carry (and its CSR must name). A server's is its
    /// `common_name` (one of its names) or else its first name: a CN that is not a SAN would
    /// be a name clients must never match.
    pub fn cn(&self) -> std::borrow::Cow<'_, str> {
        match (&self.common_name, self.names.first()) {
            (Some(c), _) => c.as_str().into(),
            (None, Some(first)) if self.kind == Kind::Server => first.value().into(),
            (None, _) => self.name.as_str().into(),
        }
    }

    /// Whether reconcile may issue to this identity at all.
    pub fn wants_certificate(&self) -> bool {
        !self.disabled && self.revoke.is_none()
    }
}

/// All identity files with their texts (for diagnostics) and the identities they declare.
#[derive(Debug, Default)]
pub struct Inventory {
    pub identities: Vec<Identity>,
    /// Names whose declarations are broken (what the planner holds back).
    pub held: BTreeMap<String, Blocked>,
    /// Set when an identities file cannot be read at all: the names it declares are unknown,
    /// so no certificate may be revoked as removed.
    pub removals_suspended: Option<String>,
    /// Each identities file's text, shared with the diagnostics that point into it.
    pub files: BTreeMap<String, Arc<str>>,
}

impl Inventory {
    /// The identity called `name` (identities are sorted by name once loaded).
    pub fn get(&self, name: &str) -> Option<&Identity> {
        self.identities
            .binary_search_by(|i| i.name.as_str().cmp(name))
            .ok()
            .map(|at| &self.identities[at])
    }

    /// A diagnostic pointing at an identity's entry (`at_csr`: at its `csr:` value).
    pub fn locate(
        &self,
        id: &Identity,
        at_csr: bool,
        message: String,
        label: &str,
        help: &str,
    ) -> Located {
        let span = if at_csr {
            id.source.csr_span
        } else {
            id.source.span
        };
        Located::shared(
            &id.source.file,
            self.files.get(&id.source.file).unwrap_or(&empty_text()),
            span,
            message,
            label,
            help,
        )
    }

    /// Every `acknowledged:` whose `until` is more than [`MAX_ACKNOWLEDGED_DAYS`] after `now`,
    /// as a diagnostic at that value: it does not hold (its identity counts as news again).
    pub fn acknowledgements_too_far(&self, now: time::OffsetDateTime) -> Vec<Error> {
        let latest = Acknowledged::today(now) + time::Duration::days(MAX_ACKNOWLEDGED_DAYS);
        let help = format!(
            "acknowledge for at most {MAX_ACKNOWLEDGED_DAYS} days (until {latest} at the latest), and renew it in a reviewed change if it still holds then"
        );
        self.acknowledgements()
            .filter(|(_, a)| a.too_far(now))
            .map(|(id, a)| {
                let message = format!(
                    "the acknowledgement of `{}` runs until {}, more than {MAX_ACKNOWLEDGED_DAYS} days ahead",
                    id.name, a.until
                );
                let text = self.files.get(&id.source.file).cloned();
                let text = text.unwrap_or_else(empty_text);
                Located::shared(&id.source.file, &text, a.span, message, "too far ahead", &help)
                    .into()
            })
            .collect()
    }

    /// Every identity with an `acknowledged:`, and it.
    pub fn acknowledgements(&self) -> impl Iterator<Item = (&Identity, &Acknowledged)> {
        self.identities
            .iter()
            .filter_map(|id| Some((id, id.acknowledged.as_ref()?)))
    }
}

/// An identity reconcile will not sign for this time, and why: its CSR is missing or refused,
/// its entry could not be validated, or a `revoke:` holds it. Everything else (revocations, the
/// CRL) goes ahead without it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Blocked {
    pub identity: String,
    /// `csr-missing`, `csr-refused`, `entry-invalid`, `revocation-held`, `config-invalid`.
    pub code: &'static str,
    pub detail: String,
    /// What to do about it.
    pub fix: String,
    /// Where it is declared, when known.
    pub file: Option<String>,
    pub line: Option<usize>,
    /// The identity's reviewed `acknowledged:`, when it holds now: still reported, but alone
    /// it needs no one's attention (see [`Acknowledged`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Acknowledgement>,
}

/// An acknowledgement as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Acknowledgement {
    /// The last day it holds, YYYY-MM-DD (UTC).
    pub until: String,
    pub reason: String,
}

pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c))
        && !name.contains("..")
}

/// Checks a `csr:` path: relative, inside the repository (no `..`), not under `.git`, and
/// returns it normalised. Purely lexical: the file is later read without following any link
/// (see [`crate::repository::confined`]), so a link anywhere on the way is refused there.
pub fn normalize_path(rel: &str) -> std::result::Result<String, String> {
    let p = Path::new(rel);
    if rel.is_empty() || p.is_absolute() {
        return Err("the path must be relative to the repository root".into());
    }
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err("the path must stay inside the repository (no `..`)".into());
    }
    let normal: Vec<&str> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    if normal.is_empty() {
        return Err("the path names no file".into());
    }
    if normal.first() == Some(&".git") {
        return Err("the path points into .git".into());
    }
    if rel.chars().any(char::is_control) {
        return Err("the path contains a control character".into());
    }
    Ok(normal.join("/"))
}

pub enum CsrFileError {
    Missing,
    Unusable(String),
}

/// A CSR file's SHA-256 (hex) and the bytes hashed.
pub type Digested = (String, std::sync::Arc<[u8]>);

/// Hashes a CSR file, refusing what is not a regular file of sane size (and any link).
pub fn hash_csr(dir: &Dir, rel: &str) -> std::result::Result<Digested, CsrFileError> {
    match dir.read_opt(rel, MAX_CSR_BYTES) {
        Ok(Some(bytes)) => Ok((hex::encode(Sha256::digest(&bytes)), bytes.into())),
        Ok(None) => Err(CsrFileError::Missing),
        Err(e) => Err(CsrFileError::Unusable(e.to_string())),
    }
}

/// Parses and validates one identities file's text (no file is read: CSR digests come later).
/// Also the entry point of the `identities` fuzz target.
pub fn parse_file(config: &Config, rel: &str, text: &Arc<str>) -> (Vec<Identity>, Vec<Error>) {
    let (ids, errors, _, _) = parse_file_holding(config, rel, text, usize::MAX);
    (ids, errors)
}

/// Most diagnostics kept in memory for one run; the rest are counted. A pull request can make
/// every one of 100,000 entries invalid: each diagnostic is small (the file's text is shared),
/// but a million of them are not.
pub const MAX_KEPT_ERRORS: usize = 1_000;

/// [`parse_file`], also naming the identities whose entries are broken: they are held, never
/// taken for removed (a typo must not revoke anyone).
fn parse_file_holding(
    config: &Config,
    rel: &str,
    text: &Arc<str>,
    keep: usize,
) -> (Vec<Identity>, Vec<Error>, Vec<Blocked>, usize) {
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    let mut held = Vec::new();
    let mut dropped = 0;
    let has_content = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
    if !has_content {
        return (ids, errors, held, dropped);
    }
    match yaml::from_str::<FileSpec>(rel, text) {
        Ok(spec) => {
            let lists = [
                (Kind::User, spec.users),
                (Kind::Bot, spec.bots),
                (Kind::Server, spec.servers),
            ];
            for (kind, list) in lists {
                for entry in list.unwrap_or_default() {
                    let name = entry.value.name.value.clone();
                    let line = entry.value.name.referenced.line() as usize;
                    match validate(config, rel, text, kind, entry.value) {
                        Ok(id) => ids.push(id),
                        Err(e) => {
                            if valid_name(&name) {
                                held.push(hold(&name, rel, Some(line), &e));
                            }
                            if errors.len() < keep {
                                errors.push(e);
                            } else {
                                dropped += 1;
                            }
                        }
                    }
                }
            }
        }
        Err(e) => {
            // The whole file is unreadable as YAML: every name it appears to declare is held,
            // and since a file not understood may declare names no line-by-line reading finds
            // (flow style, another encoding), nobody is taken for removed until it parses.
            for (line, name) in names_in_text(text) {
                held.push(hold(&name, rel, Some(line), &e));
            }
            held.push(Blocked {
                identity: SUSPENDS.into(),
                ..hold(SUSPENDS, rel, None, &e)
            });
            errors.push(e);
        }
    }
    (ids, errors, held, dropped)
}

/// Not a name (no valid name has a space): marks a file that does not parse at all, which
/// suspends every removal (see `parse_file_holding`).
const SUSPENDS: &str = "* unparsed file";

/// A hold on `name` because of the problem `e` in `file`.
fn hold(name: &str, file: &str, line: Option<usize>, e: &Error) -> Blocked {
    Blocked {
        identity: name.to_string(),
        code: "entry-invalid",
        detail: e.to_string(),
        fix: "fix the entry (gitca check shows it); until then its certificates are neither renewed nor revoked".into(),
        file: Some(file.to_string()),
        line,
        acknowledged: None,
    }
}

/// `name:` values found line by line in a file that does not parse as YAML.
fn names_in_text(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.trim_start().trim_start_matches("- ").trim_start();
            let v = l.strip_prefix("name:")?;
            let v = v.split(" #").next().unwrap_or("").trim();
            let v = v.trim_matches(|c| c == '"' || c == '\'');
            valid_name(v).then(|| (i + 1, v.to_string()))
        })
        .collect()
}

/// CSR digests (and bytes) computed ahead of need, by repository-relative path.
type Prefetched = std::collections::HashMap<String, Digested>;

/// Hashes the plain files of `csr/` (where CSRs live unless an entry says otherwise) while the
/// identity files are parsed, on a core that would otherwise wait: YAML parsing is one thread.
/// Stops as soon as `stop` is set; whatever it did not reach is hashed afterwards as usual.
/// Symbolic links and anything but regular files are left to the normal path, which checks
/// where they lead first.
fn prefetch_csrs(dir: &Dir, stop: &std::sync::atomic::AtomicBool) -> Prefetched {
    let mut out = Prefetched::new();
    let Ok(entries) = dir.list("csr") else {
        return out;
    };
    for (name, kind) in entries {
        if stop.load(std::sync::atomic::Ordering::Relaxed) || out.len() >= MAX_IDENTITIES {
            break;
        }
        if kind != crate::repository::confined::Kind::File {
            continue;
        }
        let name = format!("csr/{name}");
        if let Ok(hashed) = hash_csr(dir, &name) {
            out.insert(name, hashed);
        }
    }
    out
}

/// Hashes every identity's CSR file, in parallel. A missing CSR is not an error here: an
/// imported identity may hold a certificate and no CSR yet; whoever must sign for it
/// (reconcile) or check it reports the missing file. A CSR that is not a regular file of sane
/// size is an error, and the identity is dropped.
fn hash_csrs(dir: &Dir, inv: &mut Inventory, errors: &mut Vec<Error>, mut early: Prefetched) {
    use rayon::prelude::*;
    let early: Vec<Option<Digested>> = inv
        .identities
        .iter()
        .map(|id| early.remove(&id.csr))
        .collect();
    let results: Vec<std::result::Result<Option<Digested>, String>> = inv
        .identities
        .par_iter()
        .zip(early)
        .map(
            |(id, early)| match early.map(Ok).unwrap_or_else(|| hash_csr(dir, &id.csr)) {
                Ok(h) => Ok(Some(h)),
                Err(CsrFileError::Missing) => Ok(None),
                Err(CsrFileError::Unusable(why)) => Err(why),
            },
        )
        .collect();
    for (id, r) in inv.identities.iter_mut().zip(results) {
        match r {
            Ok(h) => (id.csr_sha256, id.csr_bytes) = h.unzip(),
            Err(why) => {
                let name = id.name.clone();
                let e: Error = inv_locate(
                    &inv.files,
                    id,
                    format!("CSR of `{name}` cannot be used: {why}"),
                    "commit the CSR as a plain file (`gitca request NAME --rotate` writes one), or fix the path",
                )
                .into();
                inv.held.insert(
                    name.clone(),
                    hold(&name, &id.source.file, Some(id.source.line), &e),
                );
                errors.push(e);
            }
        }
    }
}

fn empty_text() -> Arc<str> {
    Arc::from("")
}

fn inv_locate(
    files: &BTreeMap<String, Arc<str>>,
    id: &Identity,
    message: String,
    help: &str,
) -> Located {
    Located::shared(
        &id.source.file,
        files.get(&id.source.file).unwrap_or(&empty_text()),
        id.source.csr_span,
        message,
        "CSR here",
        help,
    )
}

/// Lists `identities/*.yaml` (and `.yml`), sorted, with what each entry is (not followed),
/// and apart from them every other entry there, each with why gitca does not read it: a name
/// that is not `NAME.yaml` (`alice.yaml ` with a trailing space, `alice.YAML`, `.alice.yaml`,
/// `alice.yaml~`), a folder, or a name with a control, bidirectional or invisible character
/// (file names reach every message and CI log, where a newline in one forges whole lines).
/// An entry not read may declare anyone, so it suspends removals (see `parse_all`).
pub fn identity_files(dir: &Dir) -> Result<IdentityFiles> {
    use crate::repository::confined::Kind;
    let hidden = |c: char| c.is_control() || crate::output::encode::is_invisible(c);
    let mut files = Vec::new();
    let mut strays = Vec::new();
    for (name, kind) in dir.list(DIR)? {
        let rel = format!("{DIR}/{name}");
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        let why = if name.chars().any(hidden) {
            "its name has a control or invisible character: rename it (`gitca request` writes identities/NAME.yaml)"
        } else if kind == Kind::Dir && dir.list(&rel).is_ok_and(|l| l.is_empty()) {
            continue;
        } else if kind == Kind::Dir {
            "gitca reads identities/*.yaml only, not folders: move its files up into identities/"
        } else if NOT_IDENTITIES.contains(&name.as_str())
            || (name.starts_with('.') && name.ends_with(".gitca-tmp"))
        {
            continue;
        } else if !yaml || name.starts_with('.') {
            "gitca reads identities/NAME.yaml (or .yml) only: rename it so that it ends in .yaml, or move it out of identities/"
        } else {
            files.push((rel, kind));
            continue;
        };
        strays.push((rel, why));
    }
    Ok((files, strays))
}

/// Files a team may keep beside its identity files (gitca's own temporary files, which a
/// command writing an identity file leaves there for a moment, are skipped too).
const NOT_IDENTITIES: &[&str] = &["README.md", "README", ".gitkeep"];

/// What [`identity_files`] lists: the files read, and the entries not read with why.
pub type IdentityFiles = (
    Vec<(String, crate::repository::confined::Kind)>,
    Vec<(String, &'static str)>,
);

/// How a name declared twice is shown: (the flagged declaration, the other one, the fix).
const LATER_IN_ORDER: (&str, &str, &str) = (
    "declared again here",
    "first declared here",
    "names are unique across all identity files; remove or rename one of the two entries",
);
const NEW_IN_CHANGE: (&str, &str, &str) = (
    "declared again here, by this change",
    "first declared here, before this change",
    "names are unique across all identity files: this change declares a name that is taken; pick another name (or rename with renamed_from)",
);

/// The names a file declares (valid entries and held ones alike): what a base revision had.
pub fn names_in(config: &Config, rel: &str, text: &str) -> BTreeSet<String> {
    let text: Arc<str> = Arc::from(text);
    let (ids, _, held, _) = parse_file_holding(config, rel, &text, 0);
    ids.into_iter()
        .map(|i| i.name)
        .chain(held.into_iter().map(|h| h.identity))
        .filter(|n| n != SUSPENDS)
        .collect()
}

/// Loads and validates every identity file, failing with every problem found.
pub fn load(dir: &Dir, config: &Config) -> Result<Inventory> {
    let (inv, errors) = load_all(dir, config)?;
    Error::collect(errors)?;
    Ok(inv)
}

/// Loads every identity file; returns the identities that passed validation and the problems
/// found (for `check`, which goes on checking the valid ones). A name declared twice is dropped.
pub fn load_all(dir: &Dir, config: &Config) -> Result<(Inventory, Vec<Error>)> {
    load_all_against(dir, config, None)
}

/// Whether a base revision already declared a name in a file: `check --base` passes it, so a
/// name declared twice is reported at the declaration the pull request added.
pub type Established<'a> = &'a dyn Fn(&str, &str) -> bool;

/// [`load_all`], knowing which declarations the base revision already had.
pub fn load_all_against(
    dir: &Dir,
    config: &Config,
    established: Option<Established>,
) -> Result<(Inventory, Vec<Error>)> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let early = s.spawn(|| prefetch_csrs(dir, &stop));
        let parsed = parse_all(dir, config, established);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let early = early
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let (mut inv, mut errors) = parsed?;
        hash_csrs(dir, &mut inv, &mut errors, early);
        Ok((inv, errors))
    })
}

/// Every identity file parsed and validated, before the CSRs are hashed. Each file is read
/// without following links and size-checked before it is read; all of them together are
/// bounded too, so memory stays bounded whatever a pull request adds.
fn parse_all(
    dir: &Dir,
    config: &Config,
    established: Option<Established>,
) -> Result<(Inventory, Vec<Error>)> {
    let mut g = Gathering::default();
    let (files, strays) = identity_files(dir)?;
    g.refuse_strays(strays);
    if files.len() > MAX_FILES {
        return Err(Error::bad_file(
            DIR,
            format!(
                "{} identity files; gitca reads at most {MAX_FILES}",
                files.len()
            ),
            "an identity file declares one or more identities: merge some files, or split the population over several CAs",
        ));
    }
    g.read_files(dir, config, &files);
    let Gathering {
        mut inv,
        mut errors,
        more_errors,
        ..
    } = g;
    if more_errors > 0 {
        errors.push(Error::usage(
            format!("… and {more_errors} more invalid entries"),
            format!("only the first {MAX_KEPT_ERRORS} problems are listed: fix those and run gitca check again"),
        ));
    }
    if inv.identities.len() > MAX_IDENTITIES {
        errors.push(Error::usage(
            format!(
                "{} identities declared; gitca manages at most {MAX_IDENTITIES}",
                inv.identities.len()
            ),
            "split the population over several CAs",
        ));
    }
    let mut held = duplicate_names(&inv, established, &mut errors);
    held.extend(shared_csrs(&inv, &mut errors));
    drop_duplicates(&mut inv, held);
    inv.identities.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((inv, errors))
}

/// One file as [`parse_file_holding`] returns it.
type ParsedFile = (Vec<Identity>, Vec<Error>, Vec<Blocked>, usize);

/// What [`parse_all`] gathers file by file: the inventory, the problems it keeps, how many
/// more it does not, and the bytes read so far.
#[derive(Default)]
struct Gathering {
    inv: Inventory,
    errors: Vec<Error>,
    more_errors: usize,
    total: u64,
}

impl Gathering {
    /// Files under identities/ that gitca does not read are errors, and suspend removals.
    fn refuse_strays(&mut self, strays: Vec<(String, &'static str)>) {
        self.more_errors += strays.len().saturating_sub(MAX_KEPT_ERRORS);
        for (rel, why) in strays.into_iter().take(MAX_KEPT_ERRORS) {
            self.inv.removals_suspended = Some(format!(
                "{} is not read",
                crate::output::encode::one_line(&rel)
            ));
            let name = rel.strip_prefix("identities/").unwrap_or(&rel);
            self.errors.push(Error::bad_file(
                &rel,
                format!(
                    "is under identities/ but not an identity file gitca reads (name {name:?})"
                ),
                why,
            ));
        }
    }

    /// Reads and parses the identity files, in order, until they exceed the bounds.
    fn read_files(
        &mut self,
        dir: &Dir,
        config: &Config,
        files: &[(String, crate::repository::confined::Kind)],
    ) {
        use rayon::prelude::*;
        // Files are read and parsed in parallel, a chunk of at most CHUNK_BYTES (by their sizes)
        // at a time, in order: the totals are checked between chunks, so a pull request of many
        // small entries costs at most one chunk past the bounds.
        let sizes: Vec<u64> = files
            .par_iter()
            .map(|(rel, _)| dir.meta(rel).ok().flatten().map_or(0, |m| m.len))
            .collect();
        let mut next = 0;
        while next < files.len() {
            let mut end = next;
            let mut bytes = 0;
            while end < files.len() && (end == next || bytes + sizes[end] <= CHUNK_BYTES) {
                bytes += sizes[end];
                end += 1;
            }
            let parsed: Vec<_> = files[next..end]
                .par_iter()
                .map(|(rel, _)| {
                    let text = dir.read_string(rel, yaml::MAX_BYTES as u64)?;
                    let text: Arc<str> = Arc::from(text);
                    let parsed = parse_file_holding(config, rel, &text, MAX_KEPT_ERRORS);
                    Ok((text, parsed))
                })
                .collect();
            for ((rel, _), parsed) in files[next..end].iter().zip(parsed) {
                if !self.take(rel, parsed) {
                    return;
                }
            }
            next = end;
        }
    }

    /// Takes in one file as parsed; `false` once the files together exceed the bounds (the
    /// rest are not read).
    fn take(&mut self, rel: &str, parsed: Result<(Arc<str>, ParsedFile)>) -> bool {
        let inv = &mut self.inv;
        let (text, (ids, problems, held, dropped)) = match parsed {
            Ok(p) => p,
            Err(e) => {
                // Its names are unknown: nobody may be taken for removed while it is unreadable.
                inv.removals_suspended = Some(format!("{rel} cannot be read ({e})"));
                self.errors.push(e);
                return true;
            }
        };
        self.total += text.len() as u64;
        let declared = inv.identities.len() + inv.held.len();
        if self.total > MAX_TOTAL_BYTES || declared > MAX_IDENTITIES {
            inv.removals_suspended = Some(format!(
                "{rel} and the files after it were not read (more than {MAX_TOTAL_BYTES} bytes or {MAX_IDENTITIES} entries in all)"
            ));
            self.errors.push(Error::bad_file(
                rel,
                format!(
                    "identity files together exceed {MAX_TOTAL_BYTES} bytes or {MAX_IDENTITIES} entries"
                ),
                "split the population over several CAs",
            ));
            return false;
        }
        inv.identities.extend(ids);
        let keep = MAX_KEPT_ERRORS.saturating_sub(self.errors.len());
        self.more_errors += dropped + problems.len().saturating_sub(keep);
        self.errors.extend(problems.into_iter().take(keep));
        for h in held {
            if h.identity == SUSPENDS {
                inv.removals_suspended = Some(format!("{rel} does not parse as YAML"));
                continue;
            }
            inv.held.insert(h.identity.clone(), h);
        }
        inv.files.insert(rel.to_string(), text);
        true
    }
}

/// Names are unique across all files: one diagnostic showing both places, at the later
/// declaration, or with a base revision at the one it did not have. Returns the identities
/// so held.
fn duplicate_names(
    inv: &Inventory,
    established: Option<Established>,
    errors: &mut Vec<Error>,
) -> Vec<Blocked> {
    let mut held = Vec::new();
    let mut first: BTreeMap<&str, &Identity> = BTreeMap::new();
    for id in &inv.identities {
        if let Some(prev) = first.get(id.name.as_str()) {
            let known = |i: &Identity| established.map(|f| f(&i.source.file, &i.name));
            let (added, kept, labels) = match (known(prev), known(id)) {
                (Some(false), Some(true)) => (*prev, id, NEW_IN_CHANGE),
                (Some(true), Some(false)) => (id, *prev, NEW_IN_CHANGE),
                _ => (id, *prev, LATER_IN_ORDER),
            };
            let mut d = inv.locate(
                added,
                false,
                format!("`{}` is declared twice", id.name),
                labels.0,
                labels.2,
            );
            d.related
                .push(inv.locate(kept, false, labels.1.into(), labels.1, ""));
            let e: Error = d.into();
            held.push(hold(
                &added.name,
                &added.source.file,
                Some(added.source.line),
                &e,
            ));
            errors.push(e);
        } else {
            first.insert(&id.name, id);
        }
    }
    held
}

/// A CSR shared by two identities would certify one key twice. Returns the identities so
/// held.
fn shared_csrs(inv: &Inventory, errors: &mut Vec<Error>) -> Vec<Blocked> {
    let mut held = Vec::new();
    let mut by_csr: BTreeMap<&str, &Identity> = BTreeMap::new();
    for id in &inv.identities {
        if let Some(prev) = by_csr.get(id.csr.as_str()) {
            if prev.name != id.name {
                let mut d = inv.locate(
                    id,
                    true,
                    format!("`{}` uses the CSR of `{}` ({})", id.name, prev.name, id.csr),
                    "same CSR",
                    "every identity has its own key and CSR",
                );
                d.related
                    .push(inv.locate(prev, true, "also used here".into(), "here", ""));
                let e: Error = d.into();
                held.push(hold(&id.name, &id.source.file, Some(id.source.line), &e));
                errors.push(e);
            }
        } else {
            by_csr.insert(&id.csr, id);
        }
    }
    held
}

/// Drops every name declared twice and holds the identities found wanting above.
fn drop_duplicates(inv: &mut Inventory, held: Vec<Blocked>) {
    let dup: std::collections::HashSet<String> = {
        let mut seen = std::collections::HashSet::new();
        inv.identities
            .iter()
            .filter(|i| !seen.insert(i.name.clone()))
            .map(|i| i.name.clone())
            .collect()
    };
    // A name declared twice is dropped (held: neither renewed nor revoked) — unless one of its
    // declarations asks for a revocation, which takes nothing from anyone: the strongest such
    // declaration stays, so a duplicate added by a pull request never holds up a revocation.
    let strength = |i: &Identity| match (i.revoke, i.disabled) {
        (Some(RevocationReason::KeyCompromise), _) => 3,
        (Some(_), _) => 2,
        (None, true) => 1,
        (None, false) => 0,
    };
    let mut revoking: BTreeMap<String, usize> = BTreeMap::new();
    for (n, i) in inv.identities.iter().enumerate() {
        if dup.contains(&i.name) && strength(i) > 0 {
            let best = revoking.entry(i.name.clone()).or_insert(n);
            if strength(i) > strength(&inv.identities[*best]) {
                *best = n;
            }
        }
    }
    let kept: std::collections::HashSet<usize> = revoking.values().copied().collect();
    let mut n = 0;
    inv.identities.retain(|i| {
        n += 1;
        !dup.contains(&i.name) || kept.contains(&(n - 1))
    });
    for h in held {
        if !revoking.contains_key(&h.identity) {
            inv.held.entry(h.identity.clone()).or_insert(h);
        }
    }
}

/// One entry checked field by field, in this order; the first refusal is its error.
fn validate(
    config: &Config,
    file: &str,
    text: &Arc<str>,
    kind: Kind,
    e: EntrySpec,
) -> Result<Identity> {
    let span = |loc: &serde_saphyr::Location| yaml::location_span(text, loc);
    let at = |loc: &serde_saphyr::Location, message: String, label: &str, help: &str| -> Error {
        Located::shared(file, text, span(loc), message, label, help).into()
    };
    let name = e.name.value.clone();
    let name_loc = e.name.referenced;
    name_field(&name, name_loc, &at)?;
    let names = server_names(config, kind, &name, &e, name_loc, &at)?;
    let email = email_field(&name, e.email, &at)?;
    let groups = groups_field(&name, e.groups, &at)?;
    let profile_loc = e.profile.as_ref().map(|p| p.referenced);
    let profile = profile_field(config, kind, &name, e.profile, &at)?;
    if kind == Kind::Server {
        server_profile(
            config,
            &name,
            &profile,
            profile_loc.unwrap_or(name_loc),
            &at,
        )?;
    }
    let validity = validity_field(config, &profile, &name, e.validity, &at)?;
    let revoke = revoke_field(e.revoke, &at)?;
    let (csr, csr_loc) = csr_field(&name, e.csr.as_ref(), name_loc, &at)?;
    let (common_name, cn_span) = common_name_field(&name, e.common_name, &span, &at)?.unzip();
    let renamed_from = renamed_from_field(&name, e.renamed_from, &at)?;
    let acknowledged = match e.acknowledged {
        Some(a) => Some(acknowledgement(&name, a, &span, &at)?),
        None => None,
    };
    if let (Some(cn), Kind::Server) = (&common_name, kind) {
        server_cn(
            file,
            text,
            &name,
            cn,
            &names,
            cn_span.unwrap_or(span(&name_loc)),
        )?;
    }
    let disabled = e.disabled.unwrap_or(false);
    // The CSR is hashed later, in parallel, for all identities at once (see `hash_csrs`).
    let line = name_loc.line() as usize;
    Ok(Identity {
        name,
        kind,
        email,
        groups,
        profile,
        validity,
        disabled,
        revoke,
        common_name,
        renamed_from,
        acknowledged,
        names,
        csr,
        csr_sha256: None,
        csr_bytes: None,
        source: Source {
            file: file.to_string(),
            span: span(&name_loc),
            csr_span: span(&csr_loc),
            cn_span,
            line,
        },
    })
}

/// An entry's name, under the grammar of identity names.
fn name_field(name: &str, name_loc: serde_saphyr::Location, at: &At<'_>) -> Result<()> {
    if !valid_name(name) {
        return Err(at(
            &name_loc,
            format!("`{name}` is not a valid identity name"),
            "invalid name",
            "names match [a-z0-9][a-z0-9._-]* (at most 64 characters, no `..`): lowercase letters, digits, dot, underscore, hyphen",
        ));
    }
    Ok(())
}

/// An entry's `csr` path (by default csr/NAME.csr), normalized and kept inside the
/// repository, with where it is written (the name's place when it is implicit).
fn csr_field(
    name: &str,
    csr: Option<&Spanned<String>>,
    name_loc: serde_saphyr::Location,
    at: &At<'_>,
) -> Result<(String, serde_saphyr::Location)> {
    let (csr_rel, csr_loc) = match csr {
        Some(c) => (c.value.clone(), c.referenced),
        None => (format!("csr/{name}.csr"), name_loc),
    };
    let csr = normalize_path(&csr_rel).map_err(|why| {
        at(
            &csr_loc,
            format!(
                "csr path `{}` of `{name}` is refused: {why}",
                crate::output::encode::one_line(&csr_rel)
            ),
            "refused path",
            "point csr at a file inside the repository, e.g. csr/NAME.csr",
        )
    })?;
    Ok((csr, csr_loc))
}

/// An entry's `email`, under the grammar of every subject value.
fn email_field(name: &str, email: Option<Spanned<String>>, at: &At<'_>) -> Result<Option<String>> {
    Ok(match email {
        Some(s) => match crate::authority::subject::check_email(&s.value) {
            Ok(()) => Some(s.value),
            Err(why) => {
                return Err(at(
                    &s.referenced,
                    format!(
                        "`{}` is not a valid email address for `{name}`: {why}",
                        s.value
                    ),
                    "invalid email",
                    "write a plain ASCII address such as alice@example.com",
                ))
            }
        },
        None => None,
    })
}

/// An entry's `groups`, each a valid OU, repeats next to each other dropped.
fn groups_field(
    name: &str,
    groups: Option<Spanned<Vec<String>>>,
    at: &At<'_>,
) -> Result<Vec<String>> {
    Ok(match groups {
        Some(g) => {
            if let Some(bad) = g.value.iter().find(|x| !valid_group(x)) {
                return Err(at(
                    &g.referenced,
                    format!("group `{bad}` of `{name}` is not valid"),
                    "invalid group",
                    "groups use letters, digits, dot, underscore and hyphen (at most 64 characters); each becomes one OU",
                ));
            }
            let mut v = g.value.clone();
            v.dedup();
            v
        }
        None => Vec::new(),
    })
}

/// An entry's `profile`, one gitca.yaml defines; by default the one named after its kind.
fn profile_field(
    config: &Config,
    kind: Kind,
    name: &str,
    profile: Option<Spanned<String>>,
    at: &At<'_>,
) -> Result<String> {
    Ok(match profile {
        Some(p) if !config.profiles.contains_key(&p.value) => {
            return Err(at(
                &p.referenced,
                format!("unknown profile `{}` for `{name}`", p.value),
                "unknown profile",
                &format!(
                    "profiles defined in gitca.yaml: {}",
                    config
                        .profiles
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
        Some(p) => p.value,
        None => kind.as_str().to_string(),
    })
}

/// An entry's `validity`: a duration within its profile's bounds (at most its validity, above
/// its renew_before).
fn validity_field(
    config: &Config,
    profile: &str,
    name: &str,
    validity: Option<Spanned<String>>,
    at: &At<'_>,
) -> Result<Option<Dur>> {
    Ok(match validity {
        Some(v) => {
            let d = Dur::parse(&v.value).map_err(|_| {
                at(
                    &v.referenced,
                    format!("`{}` is not a duration", v.value),
                    "invalid duration",
                    "write e.g. 90d, 2w or 12h",
                )
            })?;
            let p = &config.profiles[profile];
            if d > p.validity || d <= p.renew_before {
                return Err(at(
                    &v.referenced,
                    format!("validity {d} of `{name}` is outside its profile's bounds"),
                    "out of bounds",
                    &format!(
                        "a per-identity validity may shorten the profile's {} but must exceed its renew_before {}",
                        p.validity, p.renew_before
                    ),
                ));
            }
            Some(d)
        }
        None => None,
    })
}

/// An entry's `revoke`, a revocation reason.
fn revoke_field(revoke: Option<Spanned<String>>, at: &At<'_>) -> Result<Option<RevocationReason>> {
    Ok(match revoke {
        Some(r) => Some(RevocationReason::parse(&r.value).ok_or_else(|| {
            at(
                &r.referenced,
                format!("`{}` is not a revocation reason", r.value),
                "unknown reason",
                "use key-compromise, affiliation-changed, superseded, cessation-of-operation or privilege-withdrawn",
            )
        })?),
        None => None,
    })
}

/// An entry's `common_name`, under the grammar of every subject value, with where it is.
fn common_name_field(
    name: &str,
    common_name: Option<Spanned<String>>,
    span: &dyn Fn(&serde_saphyr::Location) -> (usize, usize),
    at: &At<'_>,
) -> Result<Option<(String, (usize, usize))>> {
    Ok(match common_name {
        Some(c) => {
            if let Err(why) = crate::authority::subject::check_text(&c.value) {
                return Err(at(
                    &c.referenced,
                    format!(
                        "common_name `{}` of `{name}` is refused: {why}",
                        crate::output::encode::one_line(&c.value)
                    ),
                    "invalid common name",
                    "a common name is 1 to 64 letters, digits and spaces of one script, with . - _ ' ( ) & @ : (docs/onboarding.md, \"Names\"); leave it out to use the name",
                ));
            }
            let span = span(&c.referenced);
            Some((c.value, span))
        }
        None => None,
    })
}

/// An entry's `renamed_from`: another identity's (valid) name.
fn renamed_from_field(
    name: &str,
    renamed_from: Option<Spanned<String>>,
    at: &At<'_>,
) -> Result<Option<String>> {
    Ok(match renamed_from {
        Some(r) if !valid_name(&r.value) || r.value == name => return Err(at(
            &r.referenced,
            format!(
                "renamed_from `{}` of `{name}` is not another identity's name",
                r.value
            ),
            "not a former name",
            "renamed_from names the identity this one was called before, e.g. renamed_from: carol",
        )),
        Some(r) => Some(r.value),
        None => None,
    })
}

/// A server's common name, when it has one, is one of its names: clients match only those.
fn server_cn(
    file: &str,
    text: &Arc<str>,
    name: &str,
    cn: &str,
    names: &[crate::authority::server::San],
    cn_span: (usize, usize),
) -> Result<()> {
    if !names.iter().any(|n| n.value() == *cn) {
        return Err(Located::shared(
            file,
            text,
            cn_span,
            format!(
                "common_name `{}` of server `{name}` is not one of its names",
                crate::output::encode::one_line(cn)
            ),
            "not a DNS name or IP address of this entry",
            "a server's CN, if any, is one of its dns_names or ip_addresses (clients match only those); leave it out to use the first name",
        )
        .into());
    }
    Ok(())
}

type At<'a> = dyn Fn(&serde_saphyr::Location, String, &str, &str) -> Error + 'a;

/// A server entry's names, checked against the grammar and gitca.yaml's `servers:` policy
/// (see [`crate::authority::server`]); what only servers may have (names), and what they may not (an
/// email, groups), refused for the others.
fn server_names(
    config: &Config,
    kind: Kind,
    name: &str,
    e: &EntrySpec,
    name_loc: serde_saphyr::Location,
    at: &At<'_>,
) -> Result<Vec<crate::authority::server::San>> {
    use crate::authority::server;
    let lists = [
        (&e.dns_names, "dns_names"),
        (&e.ip_addresses, "ip_addresses"),
    ];
    if kind != Kind::Server {
        if let Some((list, key)) = lists.iter().find_map(|(l, k)| l.as_ref().map(|l| (l, k))) {
            return Err(at(
                &list.referenced,
                format!("`{name}` is a {}: {key} is for servers", kind.as_str()),
                "servers only",
                "declare the server under `servers:` (its certificate is serverAuth only); users and bots hold client certificates",
            ));
        }
        return Ok(Vec::new());
    }
    for (what, loc) in [
        ("an email", e.email.as_ref().map(|x| x.referenced)),
        ("groups", e.groups.as_ref().map(|x| x.referenced)),
    ] {
        if let Some(loc) = loc {
            return Err(at(
                &loc,
                format!("server `{name}` has {what}"),
                "not for servers",
                "a server certificate carries only its DNS names and IP addresses: remove this key",
            ));
        }
    }
    let names = server_sans(config, name, lists, at)?;
    if names.is_empty() {
        return Err(at(
            &name_loc,
            format!("server `{name}` has no names"),
            "no dns_names or ip_addresses",
            "a server certificate names the server: add dns_names: [HOST] and/or ip_addresses: [ADDRESS]",
        ));
    }
    if names.len() > server::MAX_NAMES {
        return Err(at(
            &name_loc,
            format!("server `{name}` has {} names", names.len()),
            "too many names",
            &format!(
                "a server certificate carries at most {} names",
                server::MAX_NAMES
            ),
        ));
    }
    Ok(names)
}

/// A server entry's `dns_names` or `ip_addresses` as written.
type NameList = Option<Spanned<Vec<Spanned<String>>>>;

/// A server entry's `dns_names` and `ip_addresses`, each in its canonical form and within
/// gitca.yaml's `servers:` policy, none twice.
fn server_sans(
    config: &Config,
    name: &str,
    lists: [(&NameList, &str); 2],
    at: &At<'_>,
) -> Result<Vec<crate::authority::server::San>> {
    use crate::authority::server;
    let policy = config.servers.as_ref();
    let help_policy = "list it in gitca.yaml's servers.dns_names / servers.ip_ranges in a reviewed change first (docs/deploy.md, \"Server certificates\"), or correct the name";
    let mut names = Vec::new();
    let mut seen = BTreeSet::new();
    for (list, key) in lists {
        for item in list.iter().flat_map(|l| l.value.iter()) {
            let checked = if key == "dns_names" {
                server::dns_name(policy, &item.value)
            } else {
                server::ip_address(policy, &item.value)
            };
            let san = checked.map_err(|why| {
                let grammar = if key == "dns_names" {
                    server::check_dns_name(&item.value, policy.is_some_and(|p| p.wildcards)).is_err()
                } else {
                    server::check_ip(&item.value).is_err()
                };
                at(
                    &item.referenced,
                    format!(
                        "{key} entry `{}` of server `{name}` is refused: {why}",
                        crate::output::encode::one_line(&item.value)
                    ),
                    "refused name",
                    if grammar {
                        "write each name once, in its canonical form: lower-case ASCII (IDNs as xn-- A-labels), no trailing dot; IP addresses canonical (192.0.2.10, 2001:db8::1)"
                    } else {
                        help_policy
                    },
                )
            })?;
            if !seen.insert(san.clone()) {
                return Err(at(
                    &item.referenced,
                    format!("server `{name}` lists {san} twice"),
                    "listed twice",
                    "list each name once",
                ));
            }
            names.push(san);
        }
    }
    Ok(names)
}

/// A server's profile grants server_auth and nothing else: a server certificate is never a
/// client certificate.
fn server_profile(
    config: &Config,
    name: &str,
    profile: &str,
    loc: serde_saphyr::Location,
    at: &At<'_>,
) -> Result<()> {
    match config.profiles.get(profile) {
        None => Err(at(
            &loc,
            format!("server `{name}` uses profile `{profile}`, which gitca.yaml does not define"),
            "unknown profile",
            "add to gitca.yaml's profiles: `server: {validity: 30d, renew_before: 10d, extended_key_usage: [server_auth]}` (as `gitca init` writes it)",
        )),
        Some(p) if p.extended_key_usage != [crate::authority::ca::Eku::ServerAuth] => Err(at(
            &loc,
            format!(
                "server `{name}` uses profile `{profile}`, which grants [{}]",
                p.extended_key_usage.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")
            ),
            "not a server profile",
            "a server certificate is serverAuth only, never a client certificate: use a profile with extended_key_usage: [server_auth] (`server`)",
        )),
        Some(_) => Ok(()),
    }
}

/// An `acknowledged:` value: `until` a date (YYYY-MM-DD), `reason` one line of at most 200
/// printable characters (it reaches the terminal, the plan's markdown and JSON). How far ahead
/// `until` may be depends on the clock: see [`Inventory::acknowledgements_too_far`].
fn acknowledgement(
    name: &str,
    a: AcknowledgedSpec,
    span: &dyn Fn(&serde_saphyr::Location) -> (usize, usize),
    at: &dyn Fn(&serde_saphyr::Location, String, &str, &str) -> Error,
) -> Result<Acknowledged> {
    let date = time::macros::format_description!("[year]-[month]-[day]");
    let until = time::Date::parse(&a.until.value, date).map_err(|_| {
        at(
            &a.until.referenced,
            format!("acknowledged.until `{}` of `{name}` is not a date", a.until.value),
            "not a date",
            &format!("write the last day the acknowledgement holds as YYYY-MM-DD, at most {MAX_ACKNOWLEDGED_DAYS} days ahead"),
        )
    })?;
    let reason = &a.reason.value;
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    if reason.is_empty()
        || reason.chars().count() > 200
        || reason.trim() != reason
        || reason.chars().any(invisible)
    {
        return Err(at(
            &a.reason.referenced,
            format!("acknowledged.reason of `{name}` is not usable"),
            "invalid reason",
            "say in one line of at most 200 printable characters why the identity stays blocked, e.g. \"waiting for carol's new CSR\"",
        ));
    }
    Ok(Acknowledged {
        until,
        reason: reason.clone(),
        span: span(&a.until.referenced),
    })
}

#[cfg(test)]
mod acknowledged_tests {
    use super::*;

    fn parse(ack: &str) -> (Vec<Identity>, Vec<Error>) {
        let config = Config::parse(&Config::template("Test CA", "Acme")).unwrap();
        let text: Arc<str> = Arc::from(format!(
            "users:\n  - name: carol\n    acknowledged: {ack}\n"
        ));
        parse_file(&config, "identities/people.yaml", &text)
    }

    #[test]
    fn an_acknowledgement_has_a_date_and_a_one_line_reason() {
        let (ids, errors) = parse("{until: 2026-01-15, reason: \"waiting for carol's new CSR\"}");
        assert!(errors.is_empty(), "{errors:?}");
        let a = ids[0].acknowledged.as_ref().unwrap();
        assert_eq!(a.until, time::macros::date!(2026 - 01 - 15));
        assert_eq!(a.reason, "waiting for carol's new CSR");
        let long = "x".repeat(201);
        for bad in [
            "{until: 2026-1-15, reason: x}",
            "{until: tomorrow, reason: x}",
            "{until: 2026-02-30, reason: x}",
            "{until: 2026-01-15}",
            "{until: 2026-01-15, reason: \"\"}",
            "{until: 2026-01-15, reason: \" padded\"}",
            "{until: 2026-01-15, reason: \"two\\nlines\"}",
            "{until: 2026-01-15, reason: \"\\u202Eevil\"}",
            "{until: 2026-01-15, reason: x, by: me}",
            &format!("{{until: 2026-01-15, reason: {long}}}"),
        ] {
            let (ids, errors) = parse(bad);
            assert!(ids.is_empty() && !errors.is_empty(), "accepted {bad}");
            assert!(
                errors[0].to_string().contains("acknowledged")
                    || format!("{:?}", errors[0]).contains("identities/people.yaml"),
                "{bad}: {:?}",
                errors[0]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        for ok in ["alice", "ci-builder", "a.b_c", "0day"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "-x",
            ".x",
            "a/b",
            "a..b",
            "../x",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn csr_paths_stay_inside_the_repository() {
        assert_eq!(normalize_path("csr/./a.csr").unwrap(), "csr/a.csr");
        for bad in [
            "../../etc/passwd",
            "/etc/passwd",
            "csr/../../x",
            ".git/config",
            "",
        ] {
            assert!(normalize_path(bad).is_err(), "{bad}");
        }
    }
}
