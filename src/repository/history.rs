//! The CA's history, read once per command and within bounds (invariant 16).
//!
//! Several rules read history: the trust anchor (the first commit's CA or root certificate),
//! the seal against rollback (the newest seal the CA ever wrote), the newest intermediate and
//! root CRL, the newest signed recipients list, and the last good `gitca.yaml`. A merged pull
//! request can add history cheaply — thousands of commits, deep merges, 31 MiB blobs of one
//! repeated byte that pack into a few bytes — so no rule walks history on its own: one walk
//! here, at most [`MAX_COMMITS`] commits in all, records for each tracked path which blob each
//! commit holds. Blobs are read only on demand, each one's size taken from its object header
//! before it is inflated (a blob over the caller's limit is never inflated), and at most
//! [`MAX_BYTES`] in all per command.
//!
//! The walk follows HEAD's *first-parent* chain (the CA's own line: every reconcile and
//! ceremony commits on main) and then every other commit HEAD reaches. The second part is
//! what a fast-forward cannot hide from: a merge whose first parent is an old commit (or an
//! orphan of another CA) and whose second parent is main makes main's newest seal, CRL and
//! signed recipients list reachable only through a second parent. The versions found there
//! ([`History::versions`]) stand beside the first-parent ones in every rule that orders them
//! by what the CA signed (a seal's sequence, a CRL's number, a list's sequence), and every
//! beginning of a CA in reachable history must be the same one ([`History::anchors`]).
//!
//! What this module must never do: inflate a blob before its size is known, read anything but
//! the paths in [`TRACKED`], or visit a commit twice.

use std::sync::atomic::{AtomicU64, Ordering};

use git2::{ObjectType, Oid, Repository};

use crate::error::{Error, Result};

/// The most first-parent commits one walk visits. A CA that reconciles on every merge and daily
/// for ten years has a few ten thousand; a history deeper than this is refused (with the count),
/// never silently cut, because the oldest commit is the trust anchor.
pub const MAX_COMMITS: usize = 1_000_000;

/// The most bytes of history blobs one command inflates, all paths together.
pub const MAX_BYTES: u64 = 512 << 20;

/// The variable an operator sets (in the CA jobs' environment, never in the repository) to
/// raise [`MAX_BYTES`], in MiB: the way out after a change that fills history was pushed past
/// review.
pub const MAX_BYTES_ENV: &str = "GITCA_HISTORY_MAX_MIB";

/// [`MAX_BYTES`], or what [`MAX_BYTES_ENV`] raises it to (never lowers: a typo must not lock
/// the CA out).
fn max_bytes() -> u64 {
    std::env::var(MAX_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(MAX_BYTES, |mib| MAX_BYTES.max(mib.saturating_mul(1 << 20)))
}

/// The paths whose versions history keeps.
pub const TRACKED: &[&str] = &[
    crate::layout::CONFIG_FILE,
    crate::layout::LEDGER_FILE,
    crate::layout::SEAL_FILE,
    crate::layout::CRL_FILE,
    crate::layout::PREVIOUS_CRL,
    crate::layout::ROOT_CRL,
    crate::layout::CA_CERT,
    crate::layout::ROOT_CERT,
    crate::layout::PREVIOUS_CERT,
    crate::layout::RECIPIENTS_FILE,
    crate::layout::ROOT_RECIPIENTS,
];

/// Commits walked and blob bytes inflated by this process, for `GITCA_TIMINGS` and the tests
/// that bound them.
static COMMITS_WALKED: AtomicU64 = AtomicU64::new(0);
static BYTES_READ: AtomicU64 = AtomicU64::new(0);

/// (commits walked, bytes of history blobs inflated) by this process so far.
pub fn work() -> (u64, u64) {
    (
        COMMITS_WALKED.load(Ordering::Relaxed),
        BYTES_READ.load(Ordering::Relaxed),
    )
}

/// A run of consecutive first-parent commits holding the same blob at one path.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// The blob, or `None` where the path does not exist.
    pub blob: Option<Oid>,
    /// Index (0 = HEAD) of the newest commit of the run.
    pub newest: usize,
    /// Index of the oldest commit of the run: where this blob was written, as far as the
    /// first-parent line tells.
    pub oldest: usize,
}

/// HEAD's history, as far as gitca reads it.
#[derive(Debug, Default)]
pub struct History {
    /// The first-parent line (0 = HEAD), then the commits off it that hold a version of a
    /// tracked path seen nowhere before.
    commits: Vec<Oid>,
    /// How many of `commits` are the first-parent line.
    line: usize,
    /// One list per [`TRACKED`] path, newest run first (the first-parent line only).
    runs: Vec<Vec<Run>>,
    /// Per [`TRACKED`] path: versions held only off the first-parent line, with their commit.
    side: Vec<Vec<(Oid, usize)>>,
    /// The tracked blobs of each commit in `commits` past `line`.
    side_blobs: Vec<Vec<Option<Oid>>>,
    /// Every commit that begins a CA: it holds `ca/ca.crt` or `ca/root.crt` and no parent does.
    anchors: Vec<(Oid, Oid)>,
    /// While walking: whether each commit holds a CA certificate, and those that do.
    holds: std::collections::HashMap<Oid, bool>,
    holding: Vec<(Oid, Oid, Vec<Oid>)>,
    read: AtomicU64,
}

fn slot(path: &str) -> Option<usize> {
    TRACKED.iter().position(|p| *p == path)
}

/// The blob at each tracked path of one commit's tree, reusing the previous commit's answers
/// for every subtree whose id did not change.
struct TreeReader<'r> {
    git: &'r Repository,
    last_root: Option<Oid>,
    last_sub: Vec<(String, Option<Oid>)>,
    blobs: Vec<Option<Oid>>,
}

impl<'r> TreeReader<'r> {
    fn new(git: &'r Repository) -> Self {
        TreeReader {
            git,
            last_root: None,
            last_sub: Vec::new(),
            blobs: vec![None; TRACKED.len()],
        }
    }

    fn read(&mut self, root: Oid) -> Result<()> {
        if self.last_root == Some(root) {
            return Ok(());
        }
        self.last_root = Some(root);
        if !narrow(self.git, root) {
            self.blobs.iter_mut().for_each(|b| *b = None);
            self.last_sub.clear();
            return Ok(());
        }
        let tree = self.git.find_tree(root)?;
        let mut subtrees: Vec<(String, Option<Oid>)> = Vec::new();
        for (i, path) in TRACKED.iter().enumerate() {
            let (dir, name) = match path.split_once('/') {
                Some((d, n)) => (Some(d), n),
                None => (None, *path),
            };
            self.blobs[i] = match dir {
                None => tree.get_name(name).map(|e| e.id()),
                Some(d) => {
                    let sub = match subtrees.iter().find(|(n, _)| n == d) {
                        Some((_, id)) => *id,
                        None => {
                            let id = tree
                                .get_name(d)
                                .filter(|e| e.kind() == Some(ObjectType::Tree))
                                .map(|e| e.id());
                            subtrees.push((d.to_string(), id));
                            id
                        }
                    };
                    let unchanged = self.last_sub.iter().any(|(n, id)| n == d && *id == sub);
                    if unchanged {
                        continue;
                    }
                    match sub {
                        Some(id) if narrow(self.git, id) => {
                            self.git.find_tree(id)?.get_name(name).map(|e| e.id())
                        }
                        _ => None,
                    }
                }
            };
        }
        self.last_sub = subtrees;
        Ok(())
    }
}

impl History {
    /// Walks HEAD's history once (empty when there is no commit yet): its first-parent line,
    /// then every other commit it reaches.
    pub fn walk(git: &Repository) -> Result<History> {
        let mut history = History {
            runs: vec![Vec::new(); TRACKED.len()],
            side: vec![Vec::new(); TRACKED.len()],
            ..History::default()
        };
        let Ok(head) = git.head().and_then(|h| h.peel_to_commit()) else {
            return Ok(history);
        };
        wide_at_head(git, head.tree_id())?;
        let mut reader = TreeReader::new(git);
        let mut seen = std::collections::HashSet::new();
        let mut others = Vec::new();
        let mut commit = head;
        loop {
            let at = history.commits.len();
            too_many(at)?;
            seen.insert(commit.id());
            history.commits.push(commit.id());
            reader.read(commit.tree_id())?;
            history.note_anchor(&commit, &reader.blobs);
            for (runs, blob) in history.runs.iter_mut().zip(&reader.blobs) {
                match runs.last_mut() {
                    Some(run) if run.blob == *blob => run.oldest = at,
                    _ => runs.push(Run {
                        blob: *blob,
                        newest: at,
                        oldest: at,
                    }),
                }
            }
            others.extend(commit.parent_ids().skip(1));
            // A shallow clone's oldest commit names a parent that is not there: history ends.
            let Some(parent) = commit.parent_ids().next() else {
                break;
            };
            match git.find_commit(parent) {
                Ok(p) => commit = p,
                Err(_) => break,
            }
        }
        history.line = history.commits.len();
        history.walk_off_line(git, &mut reader, &mut seen, others)?;
        history.find_anchors();
        COMMITS_WALKED.fetch_add(seen.len() as u64, Ordering::Relaxed);
        Ok(history)
    }

    /// Visits every commit reachable from `starts` and not yet `seen`, keeping each tracked
    /// path's versions that the first-parent line does not hold.
    fn walk_off_line(
        &mut self,
        git: &Repository,
        reader: &mut TreeReader<'_>,
        seen: &mut std::collections::HashSet<Oid>,
        mut todo: Vec<Oid>,
    ) -> Result<()> {
        let mut known: Vec<std::collections::HashSet<Oid>> = self
            .runs
            .iter()
            .map(|runs| runs.iter().filter_map(|r| r.blob).collect())
            .collect();
        while let Some(id) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            too_many(seen.len())?;
            let Ok(commit) = git.find_commit(id) else {
                continue;
            };
            reader.read(commit.tree_id())?;
            self.note_anchor(&commit, &reader.blobs);
            let mut index = None;
            for (slot, blob) in reader.blobs.iter().enumerate() {
                let Some(blob) = *blob else { continue };
                if known[slot].insert(blob) {
                    let at = *index.get_or_insert_with(|| {
                        self.commits.push(id);
                        self.side_blobs.push(reader.blobs.clone());
                        self.commits.len() - 1
                    });
                    self.side[slot].push((blob, at));
                }
            }
            todo.extend(commit.parent_ids());
        }
        Ok(())
    }

    /// Notes whether `commit` holds a CA or root certificate, for [`History::find_anchors`].
    fn note_anchor(&mut self, commit: &git2::Commit<'_>, blobs: &[Option<Oid>]) {
        let at = |path: &str| slot(path).and_then(|i| blobs[i]);
        let blob = at(crate::layout::ROOT_CERT).or_else(|| at(crate::layout::CA_CERT));
        self.holds.insert(commit.id(), blob.is_some());
        if let Some(blob) = blob {
            self.holding
                .push((commit.id(), blob, commit.parent_ids().collect()));
        }
    }

    /// The commits that begin a CA: they hold a CA or root certificate and no parent does (a
    /// parent that was not walked — a shallow clone's edge — tells nothing).
    fn find_anchors(&mut self) {
        let holding = std::mem::take(&mut self.holding);
        for (commit, blob, parents) in holding {
            let begins = parents.iter().all(|p| self.holds.get(p) == Some(&false));
            if begins {
                self.anchors.push((commit, blob));
            }
        }
        self.holds = Default::default();
    }

    /// Each commit HEAD reaches that begins a CA, with the certificate it begins with (the root
    /// where there is one). More than one distinct certificate: unrelated CA histories were
    /// joined, and no anchor can be trusted.
    pub fn anchors(&self) -> &[(Oid, Oid)] {
        &self.anchors
    }

    /// The commit at `index` (0 = HEAD).
    pub fn commit(&self, index: usize) -> Option<Oid> {
        self.commits.get(index).copied()
    }

    /// How many commits the first-parent line has.
    pub fn len(&self) -> usize {
        self.line
    }

    pub fn is_empty(&self) -> bool {
        self.line == 0
    }

    /// The runs of `path`, newest first (empty for a path that is not tracked).
    pub fn runs(&self, path: &str) -> &[Run] {
        slot(path).map_or(&[], |i| &self.runs[i])
    }

    /// The blob `path` holds in the commit at `index`.
    pub fn blob_at(&self, path: &str, index: usize) -> Option<Oid> {
        if index >= self.line {
            let blobs = self.side_blobs.get(index - self.line)?;
            return slot(path).and_then(|i| blobs[i]);
        }
        let runs = self.runs(path);
        let at = runs.partition_point(|r| r.oldest < index);
        runs.get(at)
            .filter(|r| r.newest <= index && index <= r.oldest)
            .and_then(|r| r.blob)
    }

    /// Each distinct blob `path` ever held: the first-parent line's, newest first, with the
    /// newest commit that holds it; then those held only off that line ([`History::side`]).
    pub fn versions(&self, path: &str) -> Vec<(Oid, usize)> {
        let mut seen = std::collections::HashSet::new();
        self.runs(path)
            .iter()
            .filter_map(|r| r.blob.map(|b| (b, r.newest)))
            .chain(self.side(path).iter().copied())
            .filter(|(b, _)| seen.insert(*b))
            .collect()
    }

    /// The versions of `path` held only off the first-parent line (reached through a merge's
    /// other parents), each with the first commit found holding it.
    pub fn side(&self, path: &str) -> &[(Oid, usize)] {
        slot(path).map_or(&[], |i| &self.side[i])
    }

    /// The oldest commit (its index) holding any of `paths`.
    pub fn oldest_with(&self, paths: &[&str]) -> Option<usize> {
        paths
            .iter()
            .filter_map(|p| self.runs(p).iter().rev().find(|r| r.blob.is_some()))
            .map(|r| r.oldest)
            .max()
    }

    /// A blob's bytes, when it is a blob of at most `limit` bytes. Its size is read from the
    /// object header first: a larger blob is never inflated. Errors once this history has
    /// inflated [`MAX_BYTES`].
    pub fn read(&self, git: &Repository, blob: Oid, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some(size) = blob_size(git, blob).filter(|s| *s <= limit) else {
            return Ok(None);
        };
        let total = self.read.fetch_add(size, Ordering::Relaxed) + size;
        let max = max_bytes();
        if total > max {
            return Err(Error::usage(
                format!(
                    "history holds more than {} MiB of versions of gitca's files: gitca reads at most that much",
                    max >> 20
                ),
                format!("a merged change rewrote gitca's files many times over, past `check --base` (see docs/threat-model.md, bounded history). To go on at once, raise the bound for the CA's jobs from their environment (never from the repository): {MAX_BYTES_ENV}=2048 (MiB); then find the commits with `git log --stat -- ledger.sig ledger.tsv crl ca gitca.yaml` and keep such changes out (check --base refuses one)"),
            ));
        }
        Ok(read_blob(git, blob, limit))
    }

    /// [`History::read`] as UTF-8 text.
    pub fn text(&self, git: &Repository, blob: Oid, limit: u64) -> Result<Option<String>> {
        Ok(self
            .read(git, blob, limit)?
            .and_then(|b| String::from_utf8(b).ok()))
    }
}

/// The largest tree (the root, `ca/`, `crl/`) the walk parses: a CA repository's hold a few
/// dozen entries. A wider one — a pull request of commits whose root trees hold 50,000 entries
/// each packs into little, but would be parsed in full once per commit — is taken to hold none
/// of gitca's files (it is no commit gitca wrote).
pub const MAX_TREE_BYTES: usize = 64 << 10;

/// The most bytes of versions of gitca's files one change (the commits HEAD has and its base
/// has not) may add to history: [`MAX_BYTES`] is what every later command reads, and a change
/// of many commits rewriting them with cheap, distinct blobs would otherwise fill it in a few
/// merges that each pass review. Honest changes add a few KiB.
pub const MAX_CHANGE_BYTES: u64 = 16 << 20;

/// What the commits in `fork..HEAD` add to history: the distinct versions of [`TRACKED`]
/// files they hold that `fork`'s line does not end with, as (count, bytes from object headers:
/// nothing inflated). Visits at most [`MAX_COMMITS`] commits.
pub fn added_by_change(git: &Repository, fork: Oid) -> Result<(usize, u64)> {
    let mut walk = git.revwalk()?;
    walk.push_head()?;
    walk.hide(fork)?;
    let mut reader = TreeReader::new(git);
    reader.read(git.find_commit(fork)?.tree_id())?;
    let mut seen: std::collections::HashSet<Oid> = reader.blobs.iter().flatten().copied().collect();
    let (mut count, mut bytes) = (0, 0u64);
    for (n, id) in walk.enumerate() {
        too_many(n)?;
        reader.read(git.find_commit(id?)?.tree_id())?;
        for blob in reader.blobs.iter().flatten() {
            if seen.insert(*blob) {
                count += 1;
                bytes += blob_size(git, *blob).unwrap_or(0);
            }
        }
    }
    Ok((count, bytes))
}

/// Refuses a HEAD whose root, `ca/` or `crl/` tree is wider than [`MAX_TREE_BYTES`]: older
/// commits with such a tree are read as holding none of gitca's files, so a CA signing on top
/// of one would seal versions the next walk could not see.
fn wide_at_head(git: &Repository, root: Oid) -> Result<()> {
    let tree = git.find_tree(root)?;
    let mut wide = Vec::new();
    if !narrow(git, root) {
        wide.push("the top of the repository".to_string());
    }
    for dir in ["ca", "crl"] {
        if let Some(e) = tree.get_name(dir) {
            if e.kind() == Some(ObjectType::Tree) && !narrow(git, e.id()) {
                wide.push(format!("{dir}/"));
            }
        }
    }
    if wide.is_empty() {
        return Ok(());
    }
    Err(Error::usage(
        format!(
            "HEAD's tree at {} holds more than {} KiB of entries",
            wide.join(" and "),
            MAX_TREE_BYTES >> 10
        ),
        "a CA repository holds a few dozen entries there, and gitca bounds the trees it reads in history (docs/performance.md): move the extra files into a folder (docs/, or another repository) and commit",
    ))
}

/// Whether a tree is at most [`MAX_TREE_BYTES`], from its object header (nothing inflated).
fn narrow(git: &Repository, tree: Oid) -> bool {
    git.odb()
        .ok()
        .and_then(|odb| odb.read_header(tree).ok())
        .is_some_and(|(size, _)| size <= MAX_TREE_BYTES)
}

/// Refuses a history of more than [`MAX_COMMITS`] commits (never silently cut: the oldest
/// commit is the trust anchor).
fn too_many(count: usize) -> Result<()> {
    if count < MAX_COMMITS {
        return Ok(());
    }
    Err(Error::usage(
        format!("HEAD reaches more than {MAX_COMMITS} commits: gitca reads at most that many"),
        "history is the CA's anchor against rollback, and gitca bounds what it reads of it (docs/performance.md); a pull request that added this many commits should be squashed, or the CA's history started anew (gitca import)",
    ))
}

/// A blob's size from its object header (nothing inflated); `None` when it is not a blob.
fn blob_size(git: &Repository, blob: Oid) -> Option<u64> {
    let (size, kind) = git.odb().ok()?.read_header(blob).ok()?;
    (kind == ObjectType::Blob).then_some(size as u64)
}

/// A blob's bytes when it is a blob of at most `limit` bytes, its size read from the object
/// header before anything is inflated.
pub fn read_blob(git: &Repository, blob: Oid, limit: u64) -> Option<Vec<u8>> {
    if blob_size(git, blob)? > limit {
        return None;
    }
    let data = git.odb().ok()?.read(blob).ok()?.data().to_vec();
    BYTES_READ.fetch_add(data.len() as u64, Ordering::Relaxed);
    Some(data)
}
