//! `gitca audit`: proves, offline and from a clone, that the CA's history is what review
//! approved — every certificate in the ledger issued by a commit signed by a history signer
//! allowed at that point, for an identity its parent declared with that very CSR; every
//! revocation on the CRL of the commit that made it; CRL numbers only growing; the
//! allowed-signers file changed only by a commit one of its current signers signed.
//!
//! One first-parent walk from HEAD, oldest first, each commit once (invariant 16: at most
//! [`crate::repository::history::MAX_COMMITS`]). A commit is only read further when a tracked path changed
//! (blob ids compared, nothing inflated), and identity files and CSRs are parsed once per blob,
//! so a history of many small reconciles costs what its changes cost.
//!
//! Before `ca/allowed_signers` first appears nothing was signed, and nothing can be proven:
//! certificates issued then are counted and reported, not failed. From then on signing cannot
//! be switched off (removing the file is a break) and the file's every change must be signed
//! by a signer of its previous version (its first version: by a key it lists).
//!
//! What this module must never do: write anything, trust a file's content before the commit
//! that brought it is verified, or follow anything but first parents.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use git2::{Oid, Repository, Tree};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::repository::ledger::{Ledger, State};
use crate::repository::signer::{self, AllowedSigners, ALLOWED_SIGNERS};

/// What an audit found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    /// First-parent commits walked.
    pub commits: usize,
    /// The commit that first declared the allowed signers.
    pub signing_began: Option<String>,
    /// Certificates issued by a signed commit for an identity and CSR its parent declared.
    pub proven: usize,
    /// Certificates issued before signing began (not provable).
    pub before_signing: usize,
    /// Revocations found on the CRL of the commit that made them.
    pub revocations: usize,
    /// CRL versions whose number was checked.
    pub crls: usize,
    /// The first break, if any.
    #[serde(rename = "break")]
    pub broken: Option<Break>,
    /// Each certificate's file as the commit that issued it wrote it (serial -> blob of
    /// `certs/NAME.crt` there): what `publish` lists a certificate a renewal replaced by.
    #[serde(skip)]
    pub issued_in: HashMap<String, Oid>,
}

/// The first place where history is not what review approved.
#[derive(Debug, Serialize)]
pub struct Break {
    pub commit: String,
    pub summary: String,
    pub rule: &'static str,
    pub serial: Option<String>,
    pub identity: Option<String>,
    pub message: String,
    pub help: String,
}

const CRL_ISSUERS: &[(&str, &str)] = &[
    (crate::layout::CRL_FILE, crate::layout::CA_CERT),
    (crate::layout::PREVIOUS_CRL, crate::layout::PREVIOUS_CERT),
    (crate::layout::ROOT_CRL, crate::layout::ROOT_CERT),
];

/// The top-level entry point for `gitca audit`: exit 0 when history proves out, 1 at the first
/// break (printed with its commit and what to do).
pub fn run_audit(
    dir: &Path,
    json: bool,
    signers: Option<&Path>,
    out: &mut dyn Write,
) -> Result<u8> {
    let repo = crate::repository::git::CaRepo::open(dir)?;
    let pinned = match signers {
        Some(path) => {
            let text = crate::repository::confined::read_named_string(
                path,
                signer::MAX_BYTES,
                "read the pinned signers",
            )?;
            Some(AllowedSigners::parse(&path.display().to_string(), &text).map_err(|e| {
                match e {
                    Error::Located(l) => Error::usage(
                        format!(
                            "{} line {} is not an allowed signer gitca reads",
                            path.display(),
                            l.line()
                        ),
                        "pass a copy of the CA's ca/allowed_signers, kept apart from the repository",
                    ),
                    e => e,
                }
            })?)
        }
        None => None,
    };
    let report = audit(&repo.git, pinned.as_ref())?;
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        render(&report, out);
    }
    Ok(if report.ok { 0 } else { 1 })
}

fn render(r: &Report, out: &mut dyn Write) {
    if let Some(b) = &r.broken {
        let _ = writeln!(
            out,
            "audit: history breaks at commit {} ({})",
            &b.commit[..12.min(b.commit.len())],
            b.summary
        );
        let _ = writeln!(out, "  {} [{}]", b.message, b.rule);
        let _ = writeln!(out, "  what to do: {}", b.help);
        let _ = writeln!(
            out,
            "  (up to there: {} certificate(s) proven, {} revocation(s) on their CRL)",
            r.proven, r.revocations
        );
        return;
    }
    match &r.signing_began {
        None => {
            let _ = writeln!(
                out,
                "audit: nothing to prove — {ALLOWED_SIGNERS} was never committed, so no commit is signed ({} commit(s), {} certificate(s))",
                r.commits, r.before_signing
            );
        }
        Some(c) => {
            let _ = writeln!(
                out,
                "audit: ok — {} commit(s); {} certificate(s) issued by signed commits for what their parent declared; {} revocation(s) on their CRL; {} CRL version(s), numbers only growing",
                r.commits, r.proven, r.revocations, r.crls
            );
            let _ = writeln!(out, "  signing began at {}", &c[..12.min(c.len())]);
            if r.before_signing > 0 {
                let _ = writeln!(
                    out,
                    "  {} certificate(s) were issued before signing began: not provable",
                    r.before_signing
                );
            }
        }
    }
}

/// Walks HEAD's first-parent history and checks every rule; stops at the first break.
pub fn audit(git: &Repository, pinned: Option<&AllowedSigners>) -> Result<Report> {
    let mut walk = git.revwalk()?;
    walk.push_head()?;
    walk.simplify_first_parent()?;
    let mut commits = Vec::new();
    for oid in walk {
        commits.push(oid?);
        if commits.len() > crate::repository::history::MAX_COMMITS {
            return Err(Error::usage(
                format!(
                    "history is deeper than {} first-parent commits",
                    crate::repository::history::MAX_COMMITS
                ),
                "audit reads at most this many commits; this CA's history is not one gitca made",
            ));
        }
    }
    commits.reverse();
    let mut a = Auditor {
        git,
        report: Report {
            commits: commits.len(),
            ..Report::default()
        },
        signers: None,
        signers_blob: None,
        ledger_blob: None,
        lines: HashSet::new(),
        states: HashMap::new(),
        seen: HashSet::new(),
        crl_blobs: HashMap::new(),
        crl_numbers: HashMap::new(),
        files: HashMap::new(),
        csrs: HashMap::new(),
        configs: HashMap::new(),
        trees: HashMap::new(),
        pinned: pinned.cloned(),
        read_bytes: std::cell::Cell::new(0),
        ledgers: None,
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(PREFETCH_AHEAD);
    a.ledgers = Some(Prefetched {
        rx,
        ready: HashMap::new(),
    });
    let path = git.path().to_path_buf();
    std::thread::scope(|scope| {
        let ahead = &commits;
        scope.spawn(move || prefetch_ledgers(&path, ahead, tx));
        // Dropping the receiver ends the prefetch at its next send: after the walk, an early
        // break, or a panic (the scope joins the prefetch before it unwinds further).
        let detach = Detach(&mut a);
        walk_commits(detach.0, git, &commits)
    })?;
    if a.report.broken.is_some() {
        return Ok(a.report);
    }
    if a.pinned.is_some() && a.report.signing_began.is_none() {
        a.report.broken = Some(Break {
            commit: git.head()?.peel_to_commit()?.id().to_string(),
            summary: String::new(),
            rule: "never-signed",
            serial: None,
            identity: None,
            message: format!("signers were pinned (--signers), and this history never declared {ALLOWED_SIGNERS}: nothing in it is signed"),
            help: "audit the CA's own repository (a fork or mirror without its signed history proves nothing), or leave out --signers".into(),
        });
        return Ok(a.report);
    }
    a.report.ok = true;
    Ok(a.report)
}

/// Steps through `commits` (oldest first), each against its parent's tree, and records the
/// first break in the report.
fn walk_commits<'r>(a: &mut Auditor<'r>, git: &'r Repository, commits: &[Oid]) -> Result<()> {
    let limit = max_bytes();
    let mut parent: Option<Tree<'_>> = None;
    for &oid in commits {
        let commit = git.find_commit(oid)?;
        let tree = commit.tree()?;
        if let Some(b) = a.step(&commit, parent.as_ref(), &tree)? {
            a.report.broken = Some(b);
            return Ok(());
        }
        if a.read_bytes.get() > limit {
            return Err(Error::usage(
                format!(
                    "audit read more than {} MiB of history by commit {oid}",
                    limit >> 20
                ),
                "a history this large is not one gitca's reconciles make: find the commits that added large versions of ledger.tsv or crl/; to read further anyway, raise GITCA_AUDIT_MAX_MIB",
            ));
        }
        parent = Some(tree);
    }
    Ok(())
}

/// How many ledger versions the prefetch reads in parallel, and may hold ahead of the audit.
const PREFETCH_AHEAD: usize = 16;

/// The largest ledger version the prefetch reads (a ledger of about 30,000 certificates):
/// at most about 4 × [`PREFETCH_AHEAD`] versions are held ahead, so 256 MiB at worst, whatever
/// a hostile history holds. Larger versions are read by the audit itself, one at a time.
/// GITCA_AUDIT_PREFETCH_KIB lowers it (0: the audit reads every version itself, as the
/// tests prove gives the same report).
fn prefetch_max_bytes() -> u64 {
    std::env::var("GITCA_AUDIT_PREFETCH_KIB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(4 << 20, |kib| kib.saturating_mul(1 << 10).min(4 << 20))
}

/// Each changed ledger version of `commits`, read (inflated, its id verified) ahead of the
/// audit, in order, several at a time in parallel: reading them is most of an audit's cost,
/// and the checks themselves must run in history's order. Each thread opens the repository at
/// `path` itself (a libgit2 handle is not shared between threads). Stops when the audit stops
/// listening.
fn prefetch_ledgers(
    path: &Path,
    commits: &[Oid],
    tx: std::sync::mpsc::SyncSender<(Oid, Option<Vec<u8>>)>,
) {
    use rayon::prelude::*;
    let limit = prefetch_max_bytes();
    let mut last: Option<Oid> = None;
    for chunk in commits.chunks(PREFETCH_AHEAD) {
        let blobs: Vec<Option<Oid>> = chunk
            .par_iter()
            .map_init(
                || Repository::open(path).ok(),
                |repo, oid| {
                    let tree = repo.as_ref()?.find_commit(*oid).ok()?.tree().ok()?;
                    blob_at(&tree, crate::layout::LEDGER_FILE)
                },
            )
            .collect();
        // Only a version that differs from the one before is read (as the audit reads).
        let mut wanted = Vec::new();
        for blob in blobs.into_iter().flatten() {
            if last != Some(blob) {
                wanted.push(blob);
                last = Some(blob);
            }
        }
        let data: Vec<(Oid, Option<Vec<u8>>)> = wanted
            .par_iter()
            .map_init(
                || Repository::open(path).ok(),
                |repo, blob| {
                    // A larger version is left to the audit: what is held ahead stays bounded.
                    let bytes = repo
                        .as_ref()
                        .and_then(|r| crate::repository::history::read_blob(r, *blob, limit));
                    (*blob, bytes)
                },
            )
            .collect();
        for item in data {
            if tx.send(item).is_err() {
                return;
            }
        }
    }
}

/// Takes the prefetched ledgers away from the auditor when dropped.
struct Detach<'a, 'r>(&'a mut Auditor<'r>);

impl Drop for Detach<'_, '_> {
    fn drop(&mut self) {
        self.0.ledgers = None;
    }
}

/// The ledger versions the prefetch has read, as the audit asks for them.
struct Prefetched {
    rx: std::sync::mpsc::Receiver<(Oid, Option<Vec<u8>>)>,
    /// Versions read ahead of where the audit is.
    ready: HashMap<Oid, Option<Vec<u8>>>,
}

impl Prefetched {
    /// The prefetched contents of `blob`; `None` when the prefetch did not read it (the audit
    /// then reads it itself). Versions come in the order the audit asks for them, so only a
    /// few are ever held: past that, the wait is given up rather than memory spent.
    fn take(&mut self, blob: Oid) -> Option<Vec<u8>> {
        loop {
            if let Some(data) = self.ready.remove(&blob) {
                return data;
            }
            if self.ready.len() >= 2 * PREFETCH_AHEAD {
                return None;
            }
            let (oid, data) = self.rx.recv().ok()?;
            if oid == blob {
                return data;
            }
            self.ready.insert(oid, data);
        }
    }
}

struct Auditor<'r> {
    git: &'r Repository,
    report: Report,
    /// The allowed signers as the parent of the commit being checked has them.
    signers: Option<AllowedSigners>,
    signers_blob: Option<Oid>,
    ledger_blob: Option<Oid>,
    /// A hash of each line of the parent's ledger.
    lines: HashSet<u64>,
    /// Each serial's state in the parent's ledger.
    states: HashMap<String, State>,
    /// Every serial any earlier ledger held (a row put back is not a new certificate).
    seen: HashSet<String>,
    crl_blobs: HashMap<&'static str, Oid>,
    /// Each issuer's (its certificate's blob) newest CRL: its blob and number.
    crl_numbers: HashMap<Oid, (Oid, u64)>,
    /// Identity files parsed, by blob: (name, CSR path) of each entry.
    files: HashMap<Oid, Arc<Vec<(String, String)>>>,
    /// CSR blobs' SHA-256.
    csrs: HashMap<Oid, String>,
    /// gitca.yaml versions parsed, by blob.
    configs: HashMap<Oid, Option<Arc<crate::repository::config::Config>>>,
    /// Directory trees read, by id (see [`Auditor::blob_at`]).
    trees: HashMap<Oid, Tree<'r>>,
    /// `--signers`: what the first allowed-signers file must be signed by.
    pinned: Option<AllowedSigners>,
    /// Bytes of blobs inflated so far, against [`max_bytes`].
    read_bytes: std::cell::Cell<u64>,
    /// Ledger versions read ahead on other threads.
    ledgers: Option<Prefetched>,
}

/// The most bytes of history one audit inflates: 16 GiB, or GITCA_AUDIT_MAX_MIB (invariant
/// 16: a merge can add versions that cost more to read than to write). Audit reads every
/// version of the ledger (a CA of 10,000 identities and 1,000 reconciles: about 1.3 GiB).
fn max_bytes() -> u64 {
    std::env::var("GITCA_AUDIT_MAX_MIB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(16 << 30, |mib| mib.saturating_mul(1 << 20))
}

/// The largest identity file audit reads (what the threat model promises for any input).
const IDENTITY_FILE_BYTES: u64 = 4 << 20;

/// A line's (or a serial's) hash: SipHash, so that no crafted ledger line can be made to
/// collide with another and pass for unchanged (a second preimage of 64 bits).
fn line_hash(line: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

fn blob_at(tree: &Tree<'_>, path: &str) -> Option<Oid> {
    tree.get_path(Path::new(path))
        .ok()
        .filter(|e| e.kind() == Some(git2::ObjectType::Blob))
        .map(|e| e.id())
}

impl<'r> Auditor<'r> {
    /// A blob's contents, at most `limit` bytes (its size read before it is inflated), counted
    /// against [`max_bytes`].
    fn read(&self, blob: Oid, limit: u64) -> Option<Vec<u8>> {
        let data = crate::repository::history::read_blob(self.git, blob, limit)?;
        self.read_bytes
            .set(self.read_bytes.get() + data.len() as u64);
        Some(data)
    }

    /// A version of the ledger: as the prefetch read it, else read here; counted against
    /// [`max_bytes`] either way.
    fn read_ledger(&mut self, blob: Oid) -> Option<Vec<u8>> {
        let Some(data) = self.ledgers.as_mut().and_then(|p| p.take(blob)) else {
            return self.read(blob, crate::repository::ledger::MAX_BYTES);
        };
        self.read_bytes
            .set(self.read_bytes.get() + data.len() as u64);
        Some(data)
    }

    /// The blob at `path` in `tree`. A directory's tree is read once (by id) however many
    /// paths are looked up in it: libgit2 caches no tree above 4 KiB and re-hashes each one it
    /// reads, and `identities/`, `csr/` and `certs/` of a large CA are hundreds of KiB.
    fn blob_at(&mut self, tree: &Tree<'_>, path: &str) -> Option<Oid> {
        let Some((dir, name)) = path.split_once('/').filter(|(_, n)| !n.contains('/')) else {
            return blob_at(tree, path);
        };
        let entry = tree.get_name(dir)?;
        if entry.kind() != Some(git2::ObjectType::Tree) {
            return None;
        }
        let id = entry.id();
        if !self.trees.contains_key(&id) {
            // Two commits' worth of directories is all a step reads.
            if self.trees.len() >= 64 {
                self.trees.clear();
            }
            let t = self.git.find_tree(id).ok()?;
            self.trees.insert(id, t);
        }
        self.trees
            .get(&id)?
            .get_name(name)
            .filter(|e| e.kind() == Some(git2::ObjectType::Blob))
            .map(|e| e.id())
    }

    /// The break for a commit that changes `path`, one of gitca's outputs, without an allowed
    /// signer's signature (none when the CA declares no signers, or the commit is signed).
    fn unsigned_change(&self, commit: &git2::Commit<'_>, path: &str, fix: String) -> Option<Break> {
        let allowed = self.signers.as_ref()?;
        let why = signer::verify_commit(self.git, commit.id(), allowed).err()?;
        Some(Self::brk(
            commit,
            "unsigned-output-change",
            None,
            None,
            format!("this commit changes {path}, and {why}: only signed gitca commits change it"),
            fix,
        ))
    }

    fn brk(
        commit: &git2::Commit<'_>,
        rule: &'static str,
        serial: Option<&str>,
        identity: Option<&str>,
        message: String,
        help: impl Into<String>,
    ) -> Break {
        Break {
            commit: commit.id().to_string(),
            summary: crate::output::encode::terminal(commit.summary().ok().flatten().unwrap_or(""))
                .into_owned(),
            rule,
            serial: serial.map(str::to_string),
            identity: identity.map(|s| crate::output::encode::terminal(s).into_owned()),
            message,
            help: help.into(),
        }
    }

    /// One commit of the walk, against what its parent left: its allowed signers, its ledger
    /// (new certificates, revocations) and its CRLs. The first break found, if any.
    fn step(
        &mut self,
        commit: &git2::Commit<'_>,
        parent: Option<&Tree<'_>>,
        tree: &Tree<'_>,
    ) -> Result<Option<Break>> {
        let short = commit.id().to_string()[..12].to_string();
        // 1. The allowed signers: changed only by a commit a current signer signed.
        let signers_blob = self.blob_at(tree, ALLOWED_SIGNERS);
        let next_signers = match self.signers_change(commit, tree, signers_blob, &short) {
            Ok(next) => next,
            Err(b) => return Ok(Some(*b)),
        };
        // 2. New certificates: signed by a signer of the parent, declared by the parent.
        let ledger_blob = self.blob_at(tree, crate::layout::LEDGER_FILE);
        if ledger_blob != self.ledger_blob {
            if let Some(b) = self.ledger_change(commit, parent, tree, ledger_blob, &short)? {
                return Ok(Some(b));
            }
        }
        // 4. CRL numbers only grow, per issuer.
        if let Some(b) = self.crl_numbers_grow(commit, tree, &short) {
            return Ok(Some(b));
        }
        if let Some(s) = next_signers {
            self.signers = Some(s);
            self.signers_blob = signers_blob;
        }
        Ok(None)
    }

    /// Step 1: a change of the allowed signers must be signed by a current signer (its first
    /// version: by a pinned signer, else by a key it lists). Returns the signers the next
    /// commit answers to when this one changes them.
    fn signers_change(
        &mut self,
        commit: &git2::Commit<'_>,
        tree: &Tree<'_>,
        signers_blob: Option<Oid>,
        short: &str,
    ) -> std::result::Result<Option<AllowedSigners>, Box<Break>> {
        if signers_blob == self.signers_blob {
            return Ok(None);
        }
        if signers_blob.is_none() {
            return Err(Self::brk(
            commit,
            "signers-removed",
            None,
            None,
            format!("this commit removes {ALLOWED_SIGNERS}: signing cannot be switched off"),
            format!("restore it (git checkout {short}~1 -- {ALLOWED_SIGNERS}) in a commit signed by a current signer, and find out who pushed {short}"),
        ).into());
        }
        let new = match signer::in_tree(self.git, tree, &format!("{ALLOWED_SIGNERS} at {short}")) {
            Ok(Some(s)) => s,
            Ok(None) => unreachable!("the blob exists"),
            Err(e) => {
                return Err(Self::brk(
                    commit,
                    "signers-unreadable",
                    None,
                    None,
                    format!("{ALLOWED_SIGNERS} cannot be read: {e}"),
                    "gitca check shows the line; fix it in a commit signed by a current signer",
                )
                .into())
            }
        };
        // The first version answers to the signers the auditor pinned, if any (else
        // to itself: trust on first use, said in the report).
        let judge = self
            .signers
            .as_ref()
            .or(self.pinned.as_ref())
            .unwrap_or(&new);
        if let Err(why) = signer::verify_commit(self.git, commit.id(), judge) {
            return Err(self.unsigned_signers(commit, why, short).into());
        }
        if self.report.signing_began.is_none() {
            self.report.signing_began = Some(commit.id().to_string());
        }
        Ok(Some(new))
    }

    /// The break for a change of the allowed signers that the signers it answers to did not
    /// sign, with the help that fits whom it answers to.
    fn unsigned_signers(
        &self,
        commit: &git2::Commit<'_>,
        why: signer::Unverified,
        short: &str,
    ) -> Break {
        let whose = if self.signers.is_some() {
            "a signer listed before it"
        } else if self.pinned.is_some() {
            "a signer of the file pinned with --signers"
        } else {
            "a key it lists"
        };
        let help = if self.signers.is_some() {
            format!("who may sign the CA's history was changed outside its signers: find who pushed {short}, restore the signers (git checkout {short}~1 -- {ALLOWED_SIGNERS}) in a commit a current signer signs, and rotate the signing key")
        } else if self.pinned.is_some() {
            format!("the history's first signers are not signed by a signer you pinned: compare your pinned file with the CA's {ALLOWED_SIGNERS} with whoever keeps the CA; if they differ, this history was started or rewritten by someone else")
        } else {
            format!("the first {ALLOWED_SIGNERS} is committed by one of the keys it lists, signed: git -c gpg.format=ssh -c user.signingkey=signing.key commit -S (docs/custody.md); if {short} was pushed that way, the key it is signed with is not the one listed")
        };
        Self::brk(
            commit,
            "signers-changed-unsigned",
            None,
            None,
            format!(
                "this commit changes {ALLOWED_SIGNERS}, and {why}: it must be signed by {whose}"
            ),
            help,
        )
    }

    /// Steps 2 and 3 for a commit that changes the ledger: its new certificates, its
    /// revocations and its dropped rows; then the ledger is remembered for the next commit.
    fn ledger_change(
        &mut self,
        commit: &git2::Commit<'_>,
        parent: Option<&Tree<'_>>,
        tree: &Tree<'_>,
        ledger_blob: Option<Oid>,
        short: &str,
    ) -> Result<Option<Break>> {
        let (ledger, now_lines, serials) = match self.changed_ledger(commit, ledger_blob, short) {
            Ok(read) => read,
            Err(b) => return Ok(Some(*b)),
        };
        if let Some(b) = self.new_certificates(commit, parent, tree, &ledger, short)? {
            return Ok(Some(b));
        }
        // 3. Revocations: on the CRL of the commit that made them, and never undone.
        if let Some(b) = self.revocations(commit, tree, &ledger, short) {
            return Ok(Some(b));
        }
        if let Some(b) = self.dropped_row(commit, &serials, short) {
            return Ok(Some(b));
        }
        self.states.retain(|s, _| serials.contains(&line_hash(s)));
        for r in &ledger.records {
            self.states.insert(r.serial.clone(), r.state);
            self.seen.insert(r.serial.clone());
        }
        self.lines = now_lines;
        self.ledger_blob = ledger_blob;
        Ok(None)
    }

    /// The ledger at this commit, read as far as it changed (see [`Self::changed_rows`]), with
    /// the hash of each line and of every serial; a ledger that does not read is a break.
    fn changed_ledger(
        &mut self,
        commit: &git2::Commit<'_>,
        ledger_blob: Option<Oid>,
        short: &str,
    ) -> std::result::Result<(Ledger, HashSet<u64>, HashSet<u64>), Box<Break>> {
        // Only the lines that differ from the parent's ledger are parsed (one line per
        // certificate, and a reconcile changes a few): a history of a thousand reconciles
        // over ten thousand certificates costs what changed, plus one hash per line.
        let text = match ledger_blob {
            Some(b) => self.read_ledger(b).map(|v| {
                String::from_utf8(v)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            }),
            None => Some(String::new()),
        };
        let Some((ledger, now_lines, serials)) = text.as_deref().and_then(|t| self.changed_rows(t))
        else {
            return Err(Self::brk(
                commit,
                "ledger-unreadable",
                None,
                None,
                format!("{} cannot be read at this commit", crate::layout::LEDGER_FILE),
                format!("gitca check names the line; the ledger is written by reconcile only: find who pushed {short}"),
            ).into());
        };
        Ok((ledger, now_lines, serials))
    }

    /// Step 2: the certificates this commit adds to the ledger must come from a commit an
    /// allowed signer signed, each for an identity and CSR its parent declared (before signing
    /// began they are only counted).
    fn new_certificates(
        &mut self,
        commit: &git2::Commit<'_>,
        parent: Option<&Tree<'_>>,
        tree: &Tree<'_>,
        ledger: &Ledger,
        short: &str,
    ) -> Result<Option<Break>> {
        let new: Vec<&crate::repository::ledger::Record> = ledger
            .records
            .iter()
            .filter(|r| !self.seen.contains(&r.serial))
            .collect();
        for r in &new {
            if let Some(b) = self.blob_at(tree, &crate::layout::cert_path(&r.identity)) {
                self.report.issued_in.insert(r.serial.clone(), b);
            }
        }
        // Any other change of the ledger (a row edited, revoked, dropped) is gitca's too.
        if new.is_empty() {
            let fix = format!("the ledger is written by reconcile only: find who pushed {short}, and restore it (git checkout {short}~1 -- {})", crate::layout::LEDGER_FILE);
            if let Some(b) = self.unsigned_change(commit, crate::layout::LEDGER_FILE, fix) {
                return Ok(Some(b));
            }
        }
        if !new.is_empty() {
            match &self.signers {
                None => self.report.before_signing += new.len(),
                Some(allowed) => {
                    if let Err(why) = signer::verify_commit(self.git, commit.id(), allowed) {
                        let r = new[0];
                        return Ok(Some(Self::brk(
                            commit,
                            "unsigned-issuance",
                            Some(&r.serial),
                            Some(&r.identity),
                            format!(
                                "certificate {} for {} (and {} more) was added to the ledger by a commit that is not a signed gitca commit: {why}",
                                r.serial,
                                r.identity,
                                new.len() - 1
                            ),
                            format!("treat the CA key as stolen: this certificate was not issued through review. Find who pushed {short}; revoke serial {} (restore the ledger from {short}~1 and let a signed reconcile re-issue only what is declared); rotate the CA key (gitca root new-intermediate --revoke-current key-compromise, or a new CA) and the signing key if it may have leaked", r.serial),
                        )));
                    }
                    let parent = parent.expect("a ledger change with signers has a parent");
                    let mut all = None;
                    for r in &new {
                        let ok = match self.declared_csr(parent, &r.identity, &mut all)? {
                            Some(csr) => {
                                self.csr_digest(parent, &csr).as_deref()
                                    == Some(r.csr_sha256.as_str())
                            }
                            None => false,
                        };
                        if !ok {
                            return Ok(Some(Self::brk(
                                commit,
                                "undeclared-issuance",
                                Some(&r.serial),
                                Some(&r.identity),
                                format!(
                                    "certificate {} for {} was issued by a signed commit, but the commit before it does not declare {} with the CSR it was issued for",
                                    r.serial, crate::output::encode::terminal(&r.identity), crate::output::encode::terminal(&r.identity)
                                ),
                                format!("the history signing key signed something review did not approve: treat it and the CA key as compromised, rotate both, and revoke serial {}", r.serial),
                            )));
                        }
                        self.report.proven += 1;
                    }
                }
            }
        }
        Ok(None)
    }

    /// Step 3: a revocation this commit makes is on its CRL (unless the certificate expired),
    /// and once signing began no revocation is undone.
    fn revocations(
        &mut self,
        commit: &git2::Commit<'_>,
        tree: &Tree<'_>,
        ledger: &Ledger,
        short: &str,
    ) -> Option<Break> {
        let crl_serials = self.crl_serials(tree);
        let when = time::OffsetDateTime::from_unix_timestamp(commit.time().seconds())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        for r in &ledger.records {
            let before = self.states.get(&r.serial).copied();
            if r.state == State::Revoked && before != Some(State::Revoked) {
                if r.not_after > when && !crl_serials.contains(&r.serial) {
                    return Some(Self::brk(
                        commit,
                        "revocation-not-on-crl",
                        Some(&r.serial),
                        Some(&r.identity),
                        format!("certificate {} for {} is revoked in the ledger of this commit, and its CRL does not list it", r.serial, crate::output::encode::terminal(&r.identity)),
                        "servers admit it until a CRL lists it: run gitca reconcile (or, for a certificate the offline root signed, gitca root sign-crl) and publish",
                    ));
                }
                self.report.revocations += 1;
            }
            if before == Some(State::Revoked) && r.state != State::Revoked && self.signers.is_some()
            {
                return Some(Self::brk(
                    commit,
                    "revocation-undone",
                    Some(&r.serial),
                    Some(&r.identity),
                    format!(
                        "certificate {} was revoked, and this commit marks it issued again",
                        r.serial
                    ),
                    format!("revocation is permanent: restore the ledger from {short}~1"),
                ));
            }
        }
        None
    }

    /// Once signing began, the ledger keeps every certificate ever issued: a row that
    /// disappears is a break.
    fn dropped_row(
        &self,
        commit: &git2::Commit<'_>,
        serials: &HashSet<u64>,
        short: &str,
    ) -> Option<Break> {
        if self.signers.is_some() {
            if let Some(gone) = self
                .states
                .keys()
                .find(|s| !serials.contains(&line_hash(s)))
            {
                return Some(Self::brk(
                    commit,
                    "ledger-row-dropped",
                    Some(gone),
                    None,
                    format!("certificate {gone} disappears from the ledger at this commit"),
                    format!(
                        "the ledger keeps every certificate ever issued: restore it from {short}~1"
                    ),
                ));
            }
        }
        None
    }

    /// Step 4: each CRL this commit changes is a signed gitca commit's, reads as a CRL, and has
    /// a number above the last one its issuer published.
    fn crl_numbers_grow(
        &mut self,
        commit: &git2::Commit<'_>,
        tree: &Tree<'_>,
        short: &str,
    ) -> Option<Break> {
        for (crl, cert) in CRL_ISSUERS {
            let Some(blob) = self.blob_at(tree, crl) else {
                continue;
            };
            if self.crl_blobs.get(crl) == Some(&blob) {
                continue;
            }
            self.crl_blobs.insert(crl, blob);
            let fix = format!("CRLs are written by gitca only: find who pushed {short}, and restore {crl} from {short}~1 (a CRL the CA key signed outside gitca can only add revocations, but it is not the CA's record)");
            if let Some(b) = self.unsigned_change(commit, crl, fix) {
                return Some(b);
            }
            let Some(issuer) = self.blob_at(tree, cert) else {
                continue;
            };
            // The same CRL under another name (a rotation moves ca.crl to previous.crl) is
            // not a new one.
            if self
                .crl_numbers
                .get(&issuer)
                .is_some_and(|(b, _)| *b == blob)
            {
                continue;
            }
            let Some(info) = self
                .read(blob, crate::authority::ca::MAX_CRL_BYTES)
                .and_then(|b| {
                    crate::authority::ca::CrlInfo::parse(&String::from_utf8_lossy(&b), None).ok()
                })
            else {
                return Some(Self::brk(
                    commit,
                    "crl-unreadable",
                    None,
                    None,
                    format!("{crl} is not a CRL at this commit"),
                    format!("CRLs are written by gitca only: find who pushed {short}, and restore {crl} from {short}~1"),
                ));
            };
            if let Some(&(_, last)) = self.crl_numbers.get(&issuer) {
                if info.number <= last {
                    return Some(Self::brk(
                        commit,
                        "crl-number-not-grown",
                        None,
                        None,
                        format!("{crl} has CRL number {}, not above the {last} its issuer already published", info.number),
                        format!("CRL numbers only grow (a lower one is a rollback): restore {crl} from {short}~1 and run gitca reconcile"),
                    ));
                }
            }
            self.crl_numbers.insert(issuer, (blob, info.number));
            self.report.crls += 1;
        }
        None
    }

    /// The ledger rows of `text` that are not lines of the parent's ledger, with the hash of
    /// every line and every serial of `text`; `None` when it is not a ledger.
    fn changed_rows(&self, text: &str) -> Option<(Ledger, HashSet<u64>, HashSet<u64>)> {
        if text.is_empty() {
            return Some((Ledger::default(), HashSet::new(), HashSet::new()));
        }
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let mut hashes = HashSet::new();
        let mut serials = HashSet::new();
        let mut changed = format!("{header}\n");
        for l in lines {
            let h = line_hash(l);
            if !self.lines.contains(&h) {
                changed.push_str(l);
                changed.push('\n');
            }
            hashes.insert(h);
            serials.insert(line_hash(l.split('\t').next().unwrap_or_default()));
        }
        // A subset the parser refuses (a rule across rows) falls back to every row: unchanged
        // rows are then seen again, which changes nothing.
        let ledger = Ledger::parse(&changed)
            .or_else(|_| Ledger::parse(text))
            .ok()?;
        Some((ledger, hashes, serials))
    }

    /// Every serial on a CRL in `tree`.
    fn crl_serials(&mut self, tree: &Tree<'_>) -> HashSet<String> {
        let mut out = HashSet::new();
        for (crl, _) in CRL_ISSUERS {
            if let Some(info) = self
                .blob_at(tree, crl)
                .and_then(|b| self.read(b, crate::authority::ca::MAX_CRL_BYTES))
                .and_then(|b| {
                    crate::authority::ca::CrlInfo::parse(&String::from_utf8_lossy(&b), None).ok()
                })
            {
                out.extend(info.serials);
            }
        }
        out
    }

    /// Each identity `tree` declares, with its CSR path.
    /// The CSR path `tree` declares for `name`: from its own file (`identities/NAME.yaml`, what
    /// `gitca request` writes) when that declares it, else from a scan of every identity file
    /// (done once per commit, into `all`).
    fn declared_csr(
        &mut self,
        tree: &Tree<'_>,
        name: &str,
        all: &mut Option<HashMap<String, String>>,
    ) -> Result<Option<String>> {
        let own = format!("{}/{name}.yaml", crate::repository::inventory::DIR);
        if let Some(blob) = self.blob_at(tree, &own) {
            if let Some(config) = self.config(tree) {
                let parsed = self.parse_identities(&config, blob, &own);
                if let Some((_, csr)) = parsed.iter().find(|(n, _)| n == name) {
                    return Ok(Some(csr.clone()));
                }
            }
        }
        if all.is_none() {
            *all = Some(self.declared(tree)?);
        }
        Ok(all.as_ref().and_then(|a| a.get(name).cloned()))
    }

    fn config(&mut self, tree: &Tree<'_>) -> Option<Arc<crate::repository::config::Config>> {
        let blob = self.blob_at(tree, crate::layout::CONFIG_FILE)?;
        if let Some(c) = self.configs.get(&blob) {
            return c.clone();
        }
        let c = self
            .read(blob, crate::repository::config::MAX_BYTES)
            .and_then(|b| {
                crate::repository::config::Config::parse(&String::from_utf8_lossy(&b)).ok()
            })
            .map(Arc::new);
        self.configs.insert(blob, c.clone());
        c
    }

    /// (name, CSR path) of each entry of the identity file `blob` (parsed once per blob).
    fn parse_identities(
        &mut self,
        config: &crate::repository::config::Config,
        blob: Oid,
        rel: &str,
    ) -> Arc<Vec<(String, String)>> {
        if let Some(p) = self.files.get(&blob) {
            return p.clone();
        }
        let text: Arc<str> = self
            .read(blob, IDENTITY_FILE_BYTES)
            .map(|b| Arc::from(String::from_utf8_lossy(&b).as_ref()))
            .unwrap_or_else(|| Arc::from(""));
        let (ids, _) = crate::repository::inventory::parse_file(config, rel, &text);
        let p: Arc<Vec<(String, String)>> =
            Arc::new(ids.into_iter().map(|i| (i.name, i.csr)).collect());
        self.files.insert(blob, p.clone());
        p
    }

    fn declared(&mut self, tree: &Tree<'_>) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        let Ok(entry) = tree.get_path(Path::new(crate::repository::inventory::DIR)) else {
            return Ok(out);
        };
        let Ok(dir) = self.git.find_tree(entry.id()) else {
            return Ok(out);
        };
        let Some(config) = self.config(tree) else {
            return Ok(out);
        };
        for e in dir.iter() {
            let Ok(name) = e.name() else { continue };
            if !name.ends_with(".yaml") || e.kind() != Some(git2::ObjectType::Blob) {
                continue;
            }
            let rel = format!("{}/{name}", crate::repository::inventory::DIR);
            let parsed = self.parse_identities(&config, e.id(), &rel);
            for (n, csr) in parsed.iter() {
                out.insert(n.clone(), csr.clone());
            }
        }
        Ok(out)
    }

    /// The SHA-256 of the CSR file at `path` in `tree`.
    fn csr_digest(&mut self, tree: &Tree<'_>, path: &str) -> Option<String> {
        use sha2::Digest as _;
        let blob = self.blob_at(tree, path)?;
        if let Some(d) = self.csrs.get(&blob) {
            return Some(d.clone());
        }
        let bytes = self.read(blob, crate::repository::inventory::MAX_CSR_BYTES)?;
        let d = hex::encode(sha2::Sha256::digest(&bytes));
        self.csrs.insert(blob, d.clone());
        Some(d)
    }
}
