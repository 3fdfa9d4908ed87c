//! The declared identities: `identities/*.yaml`, each entry with its source position.
//!
//! Loading validates every entry (name, email, groups, profile, CSR path) and reports every
//! problem found, not only the first, each pointing at its file and line. It reads CSR files
//! only to hash them: no CSR is parsed here.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::Deserialize;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use crate::config::{Config, Dur};
use crate::error::{Error, Located, Result};
use crate::ledger::RevocationReason;
use crate::yaml;

pub const DIR: &str = "identities";
/// Largest CSR file gitca reads; an RSA-4096 CSR is about 1.7 KiB.
pub const MAX_CSR_BYTES: u64 = 64 * 1024;
/// Most identities one CA repository may declare.
pub const MAX_IDENTITIES: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    User,
    Bot,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Bot => "bot",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "user" => Some(Kind::User),
            "bot" => Some(Kind::Bot),
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
}

/// Where an identity was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: String,
    /// Byte span of the entry's `name` value.
    pub span: (usize, usize),
    /// Byte span of the entry's `csr` value (the name's when `csr` is implicit).
    pub csr_span: (usize, usize),
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
    /// Whether reconcile may issue to this identity at all.
    pub fn wants_certificate(&self) -> bool {
        !self.disabled && self.revoke.is_none()
    }
}

/// All identity files with their texts (for diagnostics) and the identities they declare.
#[derive(Debug, Default)]
pub struct Inventory {
    pub identities: Vec<Identity>,
    pub files: BTreeMap<String, String>,
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
        let text = self
            .files
            .get(&id.source.file)
            .map(String::as_str)
            .unwrap_or("");
        let span = if at_csr {
            id.source.csr_span
        } else {
            id.source.span
        };
        Located::new(&id.source.file, text, span, message, label, help)
    }
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

fn valid_email(email: &str) -> bool {
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email
            .bytes()
            .all(|c| c.is_ascii_graphic() && !b"<>()[]\\,;:\"".contains(&c))
}

fn valid_group(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 64
        && g.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// Resolves `csr:` paths inside the repository, refusing absolute paths, `..`, `.git`, and
/// symbolic links that lead out of it. Directories are resolved once each: 10,000 identities
/// share `csr/`, and resolving every path from scratch costs eight readlinks apiece.
pub struct PathResolver {
    root: std::path::PathBuf,
    real_root: Option<std::path::PathBuf>,
    dirs: std::collections::HashMap<std::path::PathBuf, bool>,
    /// The symbolic links in each directory looked at, from one listing (no stat per file).
    links: std::collections::HashMap<
        std::path::PathBuf,
        std::collections::HashSet<std::ffi::OsString>,
    >,
}

impl PathResolver {
    pub fn new(root: &Path) -> PathResolver {
        PathResolver {
            root: root.to_path_buf(),
            real_root: root.canonicalize().ok(),
            dirs: std::collections::HashMap::new(),
            links: std::collections::HashMap::new(),
        }
    }

    fn inside(&self, real: &Path) -> bool {
        self.real_root.as_ref().is_some_and(|r| real.starts_with(r))
    }

    /// Whether `path` is a symbolic link, from its directory's listing (read once).
    fn is_symlink(&mut self, path: &Path) -> bool {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        if !self.links.contains_key(dir) {
            let listed = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
                        .map(|e| e.file_name())
                        .collect()
                })
                .unwrap_or_default();
            self.links.insert(dir.to_path_buf(), listed);
        }
        self.links[dir].contains(name)
    }

    pub fn resolve(&mut self, rel: &str) -> std::result::Result<String, String> {
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
        if normal.first() == Some(&".git") {
            return Err("the path points into .git".into());
        }
        let full = self.root.join(p);
        let escapes = "the path leads out of the repository through a symbolic link".to_string();
        if self.is_symlink(&full) {
            match full.canonicalize() {
                Ok(real) if !self.inside(&real) => return Err(escapes),
                _ => {}
            }
        }
        if let Some(parent) = full.parent() {
            let inside = match self.dirs.get(parent) {
                Some(v) => *v,
                None => {
                    let v = parent
                        .canonicalize()
                        .map(|r| self.inside(&r))
                        .unwrap_or(true);
                    self.dirs.insert(parent.to_path_buf(), v);
                    v
                }
            };
            if !inside {
                return Err(escapes);
            }
        }
        Ok(normal.join("/"))
    }
}

/// Resolves one `csr:` path inside `root` (see [`PathResolver`]).
pub fn resolve_csr_path(root: &Path, rel: &str) -> std::result::Result<String, String> {
    PathResolver::new(root).resolve(rel)
}

pub enum CsrFileError {
    Missing,
    Unusable(String),
}

/// A CSR file's SHA-256 (hex) and the bytes hashed.
pub type Digested = (String, std::sync::Arc<[u8]>);

/// Hashes a CSR file, refusing what is not a regular file of sane size.
pub fn hash_csr(root: &Path, rel: &str) -> std::result::Result<Digested, CsrFileError> {
    use std::io::Read;
    let full = root.join(rel);
    let file = match std::fs::File::open(&full) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CsrFileError::Missing),
        Err(e) => return Err(CsrFileError::Unusable(format!("{rel}: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| CsrFileError::Unusable(format!("{rel}: {e}")))?;
    if !meta.is_file() {
        return Err(CsrFileError::Unusable(format!(
            "{rel} is not a regular file"
        )));
    }
    if meta.len() > MAX_CSR_BYTES {
        return Err(CsrFileError::Unusable(format!(
            "{rel} is {} bytes; a CSR is at most {MAX_CSR_BYTES}",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_CSR_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| CsrFileError::Unusable(format!("{rel}: {e}")))?;
    Ok((hex::encode(Sha256::digest(&bytes)), bytes.into()))
}

/// Parses and validates one identities file's text (no file is read: CSR digests come later).
/// Also the entry point of the `identities` fuzz target.
pub fn parse_file(
    paths: &mut PathResolver,
    config: &Config,
    rel: &str,
    text: &str,
) -> (Vec<Identity>, Vec<Error>) {
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    let has_content = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
    if !has_content {
        return (ids, errors);
    }
    match yaml::from_str::<FileSpec>(rel, text) {
        Ok(spec) => {
            for (kind, list) in [(Kind::User, spec.users), (Kind::Bot, spec.bots)] {
                for entry in list.unwrap_or_default() {
                    match validate(paths, config, rel, text, kind, entry.value) {
                        Ok(id) => ids.push(id),
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        Err(e) => errors.push(e),
    }
    (ids, errors)
}

/// CSR digests (and bytes) computed ahead of need, by repository-relative path.
type Prefetched = std::collections::HashMap<String, Digested>;

/// Hashes the plain files of `csr/` (where CSRs live unless an entry says otherwise) while the
/// identity files are parsed, on a core that would otherwise wait: YAML parsing is one thread.
/// Stops as soon as `stop` is set; whatever it did not reach is hashed afterwards as usual.
/// Symbolic links and anything but regular files are left to the normal path, which checks
/// where they lead first.
fn prefetch_csrs(root: &Path, stop: &std::sync::atomic::AtomicBool) -> Prefetched {
    let mut out = Prefetched::new();
    let Ok(entries) = std::fs::read_dir(root.join("csr")) else {
        return out;
    };
    for entry in entries.flatten() {
        if stop.load(std::sync::atomic::Ordering::Relaxed) || out.len() >= MAX_IDENTITIES {
            break;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(|n| format!("csr/{n}")) else {
            continue;
        };
        if let Ok(hashed) = hash_csr(root, &name) {
            out.insert(name, hashed);
        }
    }
    out
}

/// Hashes every identity's CSR file, in parallel. A missing CSR is not an error here: an
/// imported identity may hold a certificate and no CSR yet; whoever must sign for it
/// (reconcile) or check it reports the missing file. A CSR that is not a regular file of sane
/// size is an error, and the identity is dropped.
fn hash_csrs(root: &Path, inv: &mut Inventory, errors: &mut Vec<Error>, mut early: Prefetched) {
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
            |(id, early)| match early.map(Ok).unwrap_or_else(|| hash_csr(root, &id.csr)) {
                Ok(h) => Ok(Some(h)),
                Err(CsrFileError::Missing) => Ok(None),
                Err(CsrFileError::Unusable(why)) => Err(why),
            },
        )
        .collect();
    let mut bad = std::collections::HashSet::new();
    for (id, r) in inv.identities.iter_mut().zip(results) {
        match r {
            Ok(h) => (id.csr_sha256, id.csr_bytes) = h.unzip(),
            Err(why) => {
                bad.insert(id.name.clone());
                let name = id.name.clone();
                errors.push(
                    inv_locate(
                        &inv.files,
                        id,
                        format!("CSR of `{name}` cannot be used: {why}"),
                        &format!("add the CSR (`gitca request {name}` writes it), or fix the path"),
                    )
                    .into(),
                );
            }
        }
    }
    inv.identities.retain(|i| !bad.contains(&i.name));
}

fn inv_locate(
    files: &BTreeMap<String, String>,
    id: &Identity,
    message: String,
    help: &str,
) -> Located {
    let text = files.get(&id.source.file).map(String::as_str).unwrap_or("");
    Located::new(
        &id.source.file,
        text,
        id.source.csr_span,
        message,
        "CSR here",
        help,
    )
}

/// Lists `identities/*.yaml` (and `.yml`) under `root`, sorted.
pub fn identity_files(root: &Path) -> Result<Vec<String>> {
    let dir = root.join(DIR);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("list", &dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("list", &dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if (name.ends_with(".yaml") || name.ends_with(".yml")) && !name.starts_with('.') {
            out.push(format!("{DIR}/{name}"));
        }
    }
    out.sort();
    Ok(out)
}

/// Loads and validates every identity file, failing with every problem found.
pub fn load(root: &Path, config: &Config) -> Result<Inventory> {
    let (inv, errors) = load_all(root, config)?;
    Error::collect(errors)?;
    Ok(inv)
}

/// Loads every identity file; returns the identities that passed validation and the problems
/// found (for `check`, which goes on checking the valid ones). A name declared twice is dropped.
pub fn load_all(root: &Path, config: &Config) -> Result<(Inventory, Vec<Error>)> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let early = s.spawn(|| prefetch_csrs(root, &stop));
        let parsed = parse_all(root, config);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let early = early
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let (mut inv, mut errors) = parsed?;
        hash_csrs(root, &mut inv, &mut errors, early);
        Ok((inv, errors))
    })
}

/// Every identity file parsed and validated, before the CSRs are hashed.
fn parse_all(root: &Path, config: &Config) -> Result<(Inventory, Vec<Error>)> {
    let mut inv = Inventory::default();
    let mut errors: Vec<Error> = Vec::new();
    let mut paths = PathResolver::new(root);
    for rel in identity_files(root)? {
        let path = root.join(&rel);
        let meta = std::fs::symlink_metadata(&path).map_err(Error::io("read", &path))?;
        if !meta.is_file() || meta.len() > yaml::MAX_BYTES as u64 {
            errors.push(Error::bad_file(
                &rel,
                "not a regular file, or larger than gitca reads",
                format!(
                    "identity files are plain files of at most {} bytes",
                    yaml::MAX_BYTES
                ),
            ));
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(Error::io("read", &path)(e));
                continue;
            }
        };
        let (ids, problems) = parse_file(&mut paths, config, &rel, &text);
        inv.identities.extend(ids);
        errors.extend(problems);
        inv.files.insert(rel, text);
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
    // Names are unique across all files: one diagnostic showing both places.
    let mut first: BTreeMap<&str, &Identity> = BTreeMap::new();
    for id in &inv.identities {
        if let Some(prev) = first.get(id.name.as_str()) {
            let mut d = inv.locate(
                id,
                false,
                format!("`{}` is declared twice", id.name),
                "declared again here",
                "names are unique across all identity files; remove or rename one of the two entries",
            );
            d.related.push(inv.locate(
                prev,
                false,
                "first declared here".into(),
                "first declaration",
                "",
            ));
            errors.push(d.into());
        } else {
            first.insert(&id.name, id);
        }
    }
    // A CSR shared by two identities would certify one key twice.
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
                errors.push(d.into());
            }
        } else {
            by_csr.insert(&id.csr, id);
        }
    }
    let dup: std::collections::HashSet<String> = {
        let mut seen = std::collections::HashSet::new();
        inv.identities
            .iter()
            .filter(|i| !seen.insert(i.name.clone()))
            .map(|i| i.name.clone())
            .collect()
    };
    inv.identities.retain(|i| !dup.contains(&i.name));
    inv.identities.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((inv, errors))
}

fn validate(
    paths: &mut PathResolver,
    config: &Config,
    file: &str,
    text: &str,
    kind: Kind,
    e: EntrySpec,
) -> Result<Identity> {
    let span = |loc: &serde_saphyr::Location| yaml::location_span(text, loc);
    let at = |loc: &serde_saphyr::Location, message: String, label: &str, help: &str| -> Error {
        Located::new(file, text, span(loc), message, label, help).into()
    };
    let name = e.name.value.clone();
    let name_loc = e.name.referenced;
    if !valid_name(&name) {
        return Err(at(
            &name_loc,
            format!("`{name}` is not a valid identity name"),
            "invalid name",
            "names match [a-z0-9][a-z0-9._-]* (at most 64 characters, no `..`): lowercase letters, digits, dot, underscore, hyphen",
        ));
    }
    let email = match e.email {
        Some(s) if !valid_email(&s.value) => {
            return Err(at(
                &s.referenced,
                format!("`{}` is not a valid email address for `{name}`", s.value),
                "invalid email",
                "write a plain ASCII address such as alice@example.com",
            ))
        }
        Some(s) => Some(s.value),
        None => None,
    };
    let groups = match e.groups {
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
    };
    let profile = match e.profile {
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
    };
    let validity = match e.validity {
        Some(v) => {
            let d = Dur::parse(&v.value).map_err(|_| {
                at(
                    &v.referenced,
                    format!("`{}` is not a duration", v.value),
                    "invalid duration",
                    "write e.g. 90d, 2w or 12h",
                )
            })?;
            let p = &config.profiles[&profile];
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
    };
    let revoke = match e.revoke {
        Some(r) => Some(RevocationReason::parse(&r.value).ok_or_else(|| {
            at(
                &r.referenced,
                format!("`{}` is not a revocation reason", r.value),
                "unknown reason",
                "use key-compromise, affiliation-changed, superseded, cessation-of-operation or privilege-withdrawn",
            )
        })?),
        None => None,
    };
    let (csr_rel, csr_loc) = match &e.csr {
        Some(c) => (c.value.clone(), c.referenced),
        None => (format!("csr/{name}.csr"), name_loc),
    };
    let csr = paths.resolve(&csr_rel).map_err(|why| {
        at(
            &csr_loc,
            format!("csr path `{csr_rel}` of `{name}` is refused: {why}"),
            "refused path",
            "point csr at a file inside the repository, e.g. csr/NAME.csr",
        )
    })?;
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
        csr,
        csr_sha256: None,
        csr_bytes: None,
        source: Source {
            file: file.to_string(),
            span: span(&name_loc),
            csr_span: span(&csr_loc),
            line,
        },
    })
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
    fn emails_are_checked() {
        assert!(valid_email("alice@example.com"));
        for bad in ["alice", "a@b", "a@@b.c", "a b@c.d", "a@.c", "<a@b.c>"] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn csr_paths_stay_inside_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve_csr_path(dir.path(), "csr/./a.csr").unwrap(),
            "csr/a.csr"
        );
        for bad in [
            "../../etc/passwd",
            "/etc/passwd",
            "csr/../../x",
            ".git/config",
            "",
        ] {
            assert!(resolve_csr_path(dir.path(), bad).is_err(), "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.csr")).unwrap();
            let e = resolve_csr_path(dir.path(), "link.csr").unwrap_err();
            assert!(e.contains("symbolic link"), "{e}");
        }
    }
}
