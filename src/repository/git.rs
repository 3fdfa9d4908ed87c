//! The CA repository on disk: finding it, atomic file writes, the reconcile lock, the
//! working-tree cleanliness check and the one commit a command makes (git2).

use std::fs::File;
use std::path::{Path, PathBuf};

use git2::{Repository, Signature, StatusOptions};

use crate::error::{Error, Result};
use crate::repository::confined::{Dir, Kind};

/// The paths gitca reads or writes, relative to the repository root.
pub const MANAGED: &[&str] = &[
    "gitca.yaml",
    "identities",
    "csr",
    "ca",
    "certs",
    "crl",
    "ledger.tsv",
    "ledger.sig",
];

/// The paths only reconcile writes: derived from the inputs and the ledger, so an interrupted
/// reconcile's leftovers there can always be thrown away and redone. (A retiring intermediate,
/// see `authority::hierarchy`, is removed by reconcile once it has no valid certificate left.)
pub const OUTPUTS: &[&str] = &[
    "certs",
    "crl",
    "ledger.tsv",
    "ledger.sig",
    "ca/previous.crt",
    "ca/previous.key.age",
    // A retiring intermediate held in a token: reconcile removes its record like the age key.
    "ca/previous.key.pkcs11",
];

/// Temporary files gitca writes before renaming them into place (see [`crate::repository::confined`]): a
/// killed run can leave some behind, and they are never tracked.
const TEMP_PATHSPEC: &str = "*.gitca-tmp";

fn is_output(rel: &str) -> bool {
    rel.ends_with(".gitca-tmp")
        || OUTPUTS.iter().any(|o| {
            rel.strip_prefix(o)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

/// What [`CaRepo::prepare`] found.
#[derive(Debug, Default)]
pub struct Start {
    /// Outputs put back as HEAD has them.
    pub restored: Vec<String>,
    /// Other managed paths with uncommitted changes.
    pub dirty: Vec<String>,
}

impl Start {
    /// Refuses a tree with uncommitted changes under gitca's paths: a reconcile that writes
    /// applies what was reviewed and commits only its own outputs.
    pub fn ensure_clean(&self) -> Result<()> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        Err(Error::Dirty {
            files: self
                .dirty
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
        })
    }
}

/// Test builds stop dead (SIGKILL, as a killed CI job would) at the named point when
/// GITCA_FAILPOINT names it; the crash-safety tests use this. Release builds compile it out.
pub fn failpoint(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("GITCA_FAILPOINT").as_deref() == Ok(name) {
        // SAFETY: sending a signal to our own process has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    let _ = name;
}

/// Runs `f` (whose parallel iterators then use it) on the pool that creates, links and renames
/// files. Those run in one directory (`certs/`), where the kernel serialises them on the
/// directory's lock: threads beyond one or two only spin on it, and a 16-core machine got
/// slower with every core added (docs/performance.md, "Cores"). So file-system work has a
/// small pool of its own — `GITCA_FS_THREADS`, default [`fs_threads`] — while verifying and
/// signing use every core.
pub fn on_fs_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let n = std::env::var("GITCA_FS_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| (1..=256).contains(n))
            .unwrap_or_else(|| {
                fs_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
            });
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("gitca-fs-{i}"))
            .build()
            .ok()
    });
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// Threads of the file-system pool (see [`on_fs_pool`]) on a machine of `cores`: two from four
/// cores on (the 16-core run of issue 25: 10,000 certificates written in 0.73 s by one thread,
/// 0.58 s by two, 3.07 s by four), one below (on 2 cores a second writer only spins on the
/// directory's lock while the holder's core is taken: 10,000 certificates on ext4 took
/// 1.2-3.4 s with one, 3.1-3.8 s with two or four, twice the system time).
pub fn fs_threads(cores: usize) -> usize {
    if cores >= 4 {
        2
    } else {
        1
    }
}

/// An open CA repository.
pub struct CaRepo {
    pub root: PathBuf,
    /// The working tree: every file gitca reads or writes in it goes through here (no links).
    pub dir: Dir,
    pub git: Repository,
    /// HEAD's first-parent history, walked once, on first use (see [`crate::repository::history`]).
    history: std::cell::OnceCell<crate::repository::history::History>,
    /// What this command's commit is signed with (see [`crate::repository::signer`]), decided once.
    signer: std::cell::OnceCell<Option<crate::repository::signer::SigningKey>>,
}

impl CaRepo {
    /// Opens the git repository containing `dir` and checks it holds a CA.
    pub fn open(dir: &Path) -> Result<CaRepo> {
        let git = Repository::discover(dir).map_err(|e| match e.code() {
            // git's safe.directory check (CVE-2022-24765): a clone owned by another user, as
            // after `sudo gitca bundle …` in someone's checkout.
            git2::ErrorCode::Owner => {
                let path = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
                Error::usage(
                    format!(
                        "{} belongs to another user, and git refuses to read a repository it does not own ({})",
                        path.display(),
                        e.message()
                    ),
                    format!(
                        "run gitca as the user who owns the clone (for `bundle`, write to a directory that user may write, e.g. --out-dir, and install it with sudo), or trust it once: git config --global --add safe.directory {}",
                        path.display()
                    ),
                )
            }
            _ => Error::NotACa {
                path: dir.to_path_buf(),
            },
        })?;
        let root = git
            .workdir()
            .ok_or_else(|| {
                Error::usage(
                    "the repository is bare",
                    "run gitca in a clone with a working tree",
                )
            })?
            .to_path_buf();
        let dir = Dir::open(&root)?;
        if dir.meta(crate::layout::CONFIG_FILE)?.is_none() {
            return Err(Error::NotACa { path: root });
        }
        Ok(CaRepo {
            root,
            dir,
            git,
            history: std::cell::OnceCell::new(),
            signer: std::cell::OnceCell::new(),
        })
    }

    /// The key this command's commit will be signed with: none when the repository declares no
    /// history signers and none was given; an error (before anything is written) when it
    /// declares signers and none of theirs was given. Commands that commit call it before they
    /// unlock a CA key, so a missing signing key costs nothing.
    pub fn history_signer(&self) -> Result<Option<&crate::repository::signer::SigningKey>> {
        if let Some(s) = self.signer.get() {
            return Ok(s.as_ref());
        }
        let found = crate::repository::signer::for_commit(&self.git)?;
        Ok(self.signer.get_or_init(|| found).as_ref())
    }

    /// HEAD's first-parent history as of the first call (one bounded walk per command).
    pub fn history(&self) -> Result<&crate::repository::history::History> {
        if let Some(h) = self.history.get() {
            return Ok(h);
        }
        let walked = crate::repository::history::History::walk(&self.git)?;
        Ok(self.history.get_or_init(|| walked))
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Takes the repository's gitca lock, held until the returned file is dropped. It lives in
    /// `.git/` so it is never tracked, and the OS releases it when the process dies.
    pub fn lock(&self) -> Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.git.path().join("gitca.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&path)
            .map_err(Error::io("create the lock", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { path }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path)(e)),
        }
    }

    /// Lists uncommitted changes (including untracked files) under gitca's paths.
    pub fn dirty_paths(&self) -> Result<Vec<String>> {
        let mut opts = StatusOptions::new();
        // update_index: a clone copied with `cp`, or touched files, make every stat entry stale;
        // writing the refreshed stat data back keeps the next status from re-hashing them all.
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .update_index(true);
        for p in MANAGED {
            opts.pathspec(p);
        }
        opts.pathspec(TEMP_PATHSPEC);
        let statuses = self.git.statuses(Some(&mut opts))?;
        Ok(statuses
            .iter()
            .filter(|s| !s.status().is_empty() && s.status() != git2::Status::IGNORED)
            .filter_map(|s| s.path().ok().map(str::to_string))
            .collect())
    }

    /// Where a reconcile starts, from one status scan of every managed path: reconcile's
    /// outputs that an earlier run left changed (killed between writing and committing) are put
    /// back as HEAD has them — index entries, files, stray temporary or new files — and the
    /// other changed paths are returned for the clean-tree check.
    pub fn prepare(&self) -> Result<Start> {
        let (restore, dirty): (Vec<String>, Vec<String>) =
            self.dirty_paths()?.into_iter().partition(|p| is_output(p));
        self.restore(&restore)?;
        Ok(Start {
            restored: restore,
            dirty,
        })
    }

    fn restore(&self, dirty: &[String]) -> Result<()> {
        if dirty.is_empty() {
            return Ok(());
        }
        let Some(head) = self.head_oid() else {
            return Ok(());
        };
        let commit = self.git.find_commit(head)?;
        let tree = commit.tree()?;
        self.git
            .reset_default(Some(commit.as_object()), dirty.iter())?;
        let mut at_head = TreeLookup::new(&self.git, &tree);
        // Restored files get index entries with their new stat data, so status stays cheap.
        let mut index = self.git.index()?;
        for rel in dirty {
            match at_head.id(rel)? {
                Some(id) => {
                    self.dir
                        .write(rel, self.git.find_blob(id)?.content(), 0o644)?;
                    index.add(&index_entry(&self.dir, rel, id)?)?;
                }
                None => self.dir.remove(rel)?,
            }
        }
        index.write()?;
        Ok(())
    }

    pub fn head_oid(&self) -> Option<git2::Oid> {
        self.git.head().ok().and_then(|h| h.target())
    }

    /// The author and committer of gitca's commits: the repository's git configuration when it
    /// has one, else GITCA_AUTHOR_NAME / GITCA_AUTHOR_EMAIL, else a fixed `gitca` identity. CI
    /// runners often have no user.name, and a reconcile must not fail for that.
    pub fn signature(&self) -> Result<Signature<'static>> {
        if let Ok(sig) = self.git.signature() {
            return Ok(sig.to_owned());
        }
        let name = std::env::var("GITCA_AUTHOR_NAME").unwrap_or_else(|_| "gitca".into());
        let email =
            std::env::var("GITCA_AUTHOR_EMAIL").unwrap_or_else(|_| "gitca@localhost".into());
        Ok(Signature::now(&name, &email)?)
    }

    /// Commits exactly `files` on HEAD: new contents (already written to the working tree) or
    /// removals. The rest of the index and tree stays as it is.
    ///
    /// libgit2 refreshes every pack backend on each new object it writes, which makes a commit of
    /// 10,000 certificates take seconds; so the blobs go into one pack file written here, the
    /// trees are updated from HEAD's, and the index entries are made from the files' metadata.
    /// The order keeps the repository consistent if the process dies at any point: objects
    /// first, then the index, and the branch reference last.
    pub fn commit_files(
        &self,
        files: Vec<(String, Option<Vec<u8>>)>,
        message: &str,
    ) -> Result<git2::Oid> {
        let oids = {
            let blobs: Vec<&[u8]> = files.iter().filter_map(|(_, d)| d.as_deref()).collect();
            self.write_blobs(&blobs)?
        };
        // The contents are in the pack now: from here on only paths and ids are held (a bulk
        // issue of 100,000 certificates holds about 160 MB of them).
        let mut ids = oids.into_iter();
        let files: Vec<(String, Option<git2::Oid>)> = files
            .into_iter()
            .map(|(path, data)| {
                let id = data.map(|_| ids.next().expect("one id per blob"));
                (path, id)
            })
            .collect();
        let parent = match self.head_oid() {
            Some(oid) => Some(self.git.find_commit(oid)?),
            None => None,
        };
        let base = match &parent {
            Some(c) => c.tree()?,
            None => self.git.find_tree(self.git.treebuilder(None)?.write()?)?,
        };
        let mut update = git2::build::TreeUpdateBuilder::new();
        let entries: Vec<git2::IndexEntry> = {
            use rayon::prelude::*;
            let dir = &self.dir;
            files
                .par_iter()
                .filter_map(|(path, id)| id.map(|id| index_entry(dir, path, id)))
                .collect::<Result<_>>()?
        };
        let mut in_base = TreeLookup::new(&self.git, &base);
        let mut removed = std::collections::HashSet::new();
        for (path, id) in &files {
            match id {
                Some(id) => {
                    update.upsert(path.as_str(), *id, git2::FileMode::Blob);
                }
                None => {
                    if in_base.id(path)?.is_some() {
                        update.remove(path.as_str());
                    }
                    removed.insert(path.as_bytes());
                }
            };
        }
        // The blobs were just written here, their ids computed from their bytes: libgit2 need
        // not read every object's header back from the pack to check it exists (100,000 reads
        // fault the whole new pack into memory, 130 MiB at a bulk issue of 100,000).
        let created = {
            let _trusting = TrustNewObjects::new();
            update.create_updated(&self.git, &base)
        };
        let tree = self.git.find_tree(created?)?;
        drop(update);
        let oid = self.commit_object(&tree, parent.as_ref(), message)?;
        drop(tree);
        // Made after the commit's objects, when the tree builder's memory is free again: the
        // index of a bulk issue holds every entry twice while it is rebuilt.
        let index = crate::repository::index::Update::prepare(&self.git, entries, &removed)?;
        failpoint("after-objects");
        index.install()?;
        failpoint("after-index");
        self.advance_head(oid, message)?;
        Ok(oid)
    }

    /// Writes blobs as one pack (whole objects) with its index, both built here: one file pair
    /// instead of one file per object, and no re-reading of the pack by libgit2's indexer.
    /// Objects are hashed and encoded in parallel; zlib "stored" blocks keep them uncompressed
    /// (PEM barely compresses, and `git gc` repacks later). The pack is renamed into place
    /// before its index, as git does: a pack without an index is invisible.
    #[doc(hidden)] // public for benches/packwriter.rs only
    pub fn write_blobs(&self, blobs: &[&[u8]]) -> Result<Vec<git2::Oid>> {
        use rayon::prelude::*;
        let ids: Vec<[u8; 20]> = blobs.par_iter().map(|data| blob_id(data)).collect();
        let oids = ids
            .iter()
            .map(|id| git2::Oid::from_bytes(id))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<([u8; 20], &[u8])> = ids
            .iter()
            .zip(blobs)
            .filter(|(id, _)| seen.insert(**id))
            .map(|(id, data)| (*id, *data))
            .collect();
        if unique.is_empty() {
            return Ok(oids);
        }
        let objects = Dir::open(&self.git.commondir().join("objects"))?;
        // The pack is streamed to a temporary file (no copy of the blobs in memory: a
        // reconcile may commit a 60 MB ledger), then named after its checksum.
        let mut table = Vec::new();
        let mut pack_sum = [0u8; 20];
        let staged = objects.stage_with("pack/pack.gitca-tmp", 0o444, |f| {
            (table, pack_sum) = write_pack(f, &unique)?;
            Ok(())
        })?;
        let name = hex::encode(pack_sum);
        let idx = pack_index(&mut table, &pack_sum);
        if let Err(e) = staged.sync() {
            staged.discard();
            return Err(e);
        }
        // Read-only, as git writes its packs; the pack before its index, as git does: a pack
        // without an index is invisible.
        staged.commit_as(&format!("pack-{name}.pack"))?;
        objects.write(&format!("pack/pack-{name}.idx"), &idx, 0o444)?;
        self.git.odb()?.refresh()?;
        Ok(oids)
    }

    /// The commit object of `tree` on `parent`, signed when the history declares signers.
    fn commit_object(
        &self,
        tree: &git2::Tree<'_>,
        parent: Option<&git2::Commit<'_>>,
        message: &str,
    ) -> Result<git2::Oid> {
        let sig = self.signature()?;
        let parents: Vec<&git2::Commit> = parent.into_iter().collect();
        Ok(match self.history_signer()? {
            // Signed as `git commit -S` with gpg.format=ssh signs: the commit object without
            // its signature, in a `gpgsig` header.
            Some(key) => {
                let buf = self
                    .git
                    .commit_create_buffer(&sig, &sig, message, tree, &parents)?;
                let content = std::str::from_utf8(&buf).map_err(|_| {
                    Error::usage(
                        "the commit message is not UTF-8",
                        "this is a bug in gitca: report it",
                    )
                })?;
                let armored = key.sign(content.as_bytes())?;
                self.git
                    .commit_signed(content, armored.trim_end(), Some("gpgsig"))?
            }
            None => self.git.commit(None, &sig, &sig, message, tree, &parents)?,
        })
    }

    /// Points HEAD's branch at `oid` (creating it for the first commit).
    fn advance_head(&self, oid: git2::Oid, message: &str) -> Result<()> {
        let head = self.git.find_reference("HEAD")?;
        let branch = match head.symbolic_target()? {
            Some(t) => t.to_string(),
            None => {
                self.git.set_head_detached(oid)?;
                return Ok(());
            }
        };
        let summary = message.lines().next().unwrap_or("gitca");
        self.git.reference(&branch, oid, true, summary)?;
        Ok(())
    }
}

/// Paths looked up in one tree, each directory's tree read once: libgit2 caches no tree above
/// 4 KiB, so looking up 1,000 certificates one by one would re-read (and re-hash) `certs/`
/// 1,000 times.
struct TreeLookup<'a, 'r> {
    git: &'r Repository,
    base: &'a git2::Tree<'r>,
    dirs: std::collections::HashMap<String, Option<git2::Tree<'r>>>,
}

impl<'a, 'r> TreeLookup<'a, 'r> {
    fn new(git: &'r Repository, base: &'a git2::Tree<'r>) -> Self {
        TreeLookup {
            git,
            base,
            dirs: std::collections::HashMap::new(),
        }
    }

    /// The id of what `path` names in the tree, if anything.
    fn id(&mut self, path: &str) -> Result<Option<git2::Oid>> {
        let Some((dir, name)) = path.rsplit_once('/') else {
            return Ok(self.base.get_name(path).map(|e| e.id()));
        };
        if !self.dirs.contains_key(dir) {
            let tree = match self.base.get_path(Path::new(dir)) {
                Ok(entry) if entry.kind() == Some(git2::ObjectType::Tree) => {
                    Some(self.git.find_tree(entry.id())?)
                }
                _ => None,
            };
            self.dirs.insert(dir.to_string(), tree);
        }
        Ok(self.dirs[dir]
            .as_ref()
            .and_then(|t| t.get_name(name))
            .map(|e| e.id()))
    }
}

/// A blob's object id: SHA-1 of `blob <size>\0` and the contents.
fn blob_id(data: &[u8]) -> [u8; 20] {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    h.finalize().into()
}

/// A pack entry in the index: object id, CRC-32 of the entry, offset in the pack.
type PackIndexEntry = ([u8; 20], u32, u64);

/// A writer that feeds everything written to the pack checksum, and to the current entry's
/// CRC-32 (for the index).
struct PackWriter<'w, W: std::io::Write> {
    inner: &'w mut W,
    sha: sha1::Sha1,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: std::io::Write> std::io::Write for PackWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha1::Digest as _;
        self.inner.write_all(buf)?;
        self.sha.update(buf);
        self.crc.update(buf);
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Streams a version 2 pack of `entries` (object id, contents) into `w`: each blob whole, as a
/// zlib stream of stored (uncompressed) blocks. Returns the (id, crc32, offset) of each entry
/// and the pack's checksum.
#[doc(hidden)] // public for benches/packwriter.rs only
pub fn write_pack(
    w: &mut impl std::io::Write,
    entries: &[([u8; 20], &[u8])],
) -> std::io::Result<(Vec<PackIndexEntry>, [u8; 20])> {
    use sha1::Digest as _;
    use std::io::Write as _;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, w);
    let mut p = PackWriter {
        inner: &mut out,
        sha: sha1::Sha1::new(),
        crc: crc32fast::Hasher::new(),
        written: 0,
    };
    p.write_all(b"PACK")?;
    p.write_all(&2u32.to_be_bytes())?;
    p.write_all(&(entries.len() as u32).to_be_bytes())?;
    let mut table = Vec::with_capacity(entries.len());
    for (id, data) in entries {
        let offset = p.written;
        p.crc = crc32fast::Hasher::new();
        write_pack_entry(&mut p, data)?;
        let crc = std::mem::replace(&mut p.crc, crc32fast::Hasher::new()).finalize();
        table.push((*id, crc, offset));
    }
    let sum: [u8; 20] = std::mem::take(&mut p.sha).finalize().into();
    out.write_all(&sum)?;
    out.flush()?;
    Ok((table, sum))
}

/// A whole blob as a pack entry: the type-and-size header, then `data` as a zlib stream of
/// stored (uncompressed) blocks.
fn write_pack_entry(out: &mut impl std::io::Write, data: &[u8]) -> std::io::Result<()> {
    // Object header: type 3 (blob) and the size, 4 bits then 7 bits per byte.
    let mut header = Vec::with_capacity(10);
    let mut size = data.len();
    let mut byte = (3u8 << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size > 0 {
        header.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    header.push(byte);
    // zlib header: deflate, 32 KiB window, no dictionary, "fastest" level; (0x78 0x01) % 31 == 0.
    header.extend_from_slice(&[0x78, 0x01]);
    out.write_all(&header)?;
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.write_all(&[1, 0, 0, 0xff, 0xff])?;
    }
    while let Some(chunk) = chunks.next() {
        let len = chunk.len() as u16;
        let mut block = [0u8; 5];
        block[0] = u8::from(chunks.peek().is_none());
        block[1..3].copy_from_slice(&len.to_le_bytes());
        block[3..5].copy_from_slice(&(!len).to_le_bytes());
        out.write_all(&block)?;
        out.write_all(chunk)?;
    }
    out.write_all(&adler32(data).to_be_bytes())
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5,552 bytes is the most that can be summed before `b` could overflow a u32.
    for chunk in data.chunks(5_552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// The version 2 index of a pack: `table` is (object id, crc32 of the entry, offset in the
/// pack), sorted here by id.
fn pack_index(table: &mut [PackIndexEntry], pack_sum: &[u8; 20]) -> Vec<u8> {
    use sha1::Digest as _;
    table.sort_unstable_by_key(|a| a.0);
    let mut idx = Vec::with_capacity(8 + 1024 + table.len() * 28 + 40);
    idx.extend_from_slice(&[0xff, b't', b'O', b'c']);
    idx.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for (id, _, _) in table.iter() {
        fanout[usize::from(id[0])] += 1;
    }
    let mut running = 0u32;
    for n in fanout {
        running += n;
        idx.extend_from_slice(&running.to_be_bytes());
    }
    for (id, _, _) in table.iter() {
        idx.extend_from_slice(id);
    }
    for (_, crc, _) in table.iter() {
        idx.extend_from_slice(&crc.to_be_bytes());
    }
    // Offsets past 2 GiB go to a table of 8-byte offsets, pointed at with the high bit.
    let mut large: Vec<u64> = Vec::new();
    for (_, _, offset) in table.iter() {
        let small = match u32::try_from(*offset) {
            Ok(o) if o < 0x8000_0000 => o,
            _ => {
                large.push(*offset);
                0x8000_0000 | (large.len() as u32 - 1)
            }
        };
        idx.extend_from_slice(&small.to_be_bytes());
    }
    for offset in large {
        idx.extend_from_slice(&offset.to_be_bytes());
    }
    idx.extend_from_slice(pack_sum);
    let idx_sum: [u8; 20] = sha1::Sha1::digest(&idx).into();
    idx.extend_from_slice(&idx_sum);
    idx
}

/// libgit2's check that each object a new tree names exists (it reads each one's header back),
/// off while this lives and on again when it drops, panics included. The setting is process-wide:
/// only the committing thread builds trees while it is off.
struct TrustNewObjects;

impl TrustNewObjects {
    fn new() -> TrustNewObjects {
        git2::opts::strict_object_creation(false);
        TrustNewObjects
    }
}

impl Drop for TrustNewObjects {
    fn drop(&mut self) {
        git2::opts::strict_object_creation(true);
    }
}

/// An index entry for a file just written, with its stat data so `git status` need not re-read it.
fn index_entry(dir: &Dir, rel: &str, oid: git2::Oid) -> Result<git2::IndexEntry> {
    let m = dir.stat(rel)?;
    Ok(git2::IndexEntry {
        ctime: git2::IndexTime::new(m.st_ctime as i32, m.st_ctime_nsec as u32),
        mtime: git2::IndexTime::new(m.st_mtime as i32, m.st_mtime_nsec as u32),
        dev: m.st_dev as u32,
        ino: m.st_ino as u32,
        mode: if m.st_mode & 0o111 != 0 {
            0o100755
        } else {
            0o100644
        },
        uid: m.st_uid,
        gid: m.st_gid,
        file_size: m.st_size as u32,
        id: oid,
        flags: rel.len().min(0xfff) as u16,
        flags_extended: 0,
        path: rel.as_bytes().to_vec(),
    })
}

/// The files a command changes, written all or nothing (invariant 8): every new content goes to
/// a temporary file first (exclusively created, never through a link: see [`Dir::stage`]), the
/// filesystem is synced once, and only then are they renamed into place, each previous version
/// kept as a hard link (no copy in memory: a ledger can be 60 MB); a failure part-way puts
/// every previous version back. The kept versions go when the transaction is dropped.
pub struct Transaction<'d> {
    dir: &'d Dir,
    staged: Vec<(String, Option<Vec<u8>>)>,
    saved: Vec<(String, Option<crate::repository::confined::Backup>)>,
    /// What `apply` wrote (contents) and removed (`None`), for the commit.
    pub done: Vec<(String, Option<Vec<u8>>)>,
}

impl<'d> Transaction<'d> {
    pub fn new(dir: &'d Dir) -> Transaction<'d> {
        Transaction {
            dir,
            staged: Vec::new(),
            saved: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Stages new contents for `rel`.
    pub fn write(&mut self, rel: &str, data: impl Into<Vec<u8>>) {
        self.staged.push((rel.to_string(), Some(data.into())));
    }

    /// Stages the removal of `rel`.
    pub fn remove(&mut self, rel: &str) {
        self.staged.push((rel.to_string(), None));
    }

    /// Writes everything staged: temporary files, one sync, renames. Files are written and
    /// renamed in parallel (a reconcile may write 10,000 certificates), on the file-system pool
    /// (see [`on_fs_pool`]); a failure at any point leaves what `rollback` needs to put every
    /// renamed file back.
    pub fn apply(&mut self) -> Result<()> {
        on_fs_pool(|| self.apply_here())
    }

    fn apply_here(&mut self) -> Result<()> {
        use rayon::prelude::*;
        let staged = std::mem::take(&mut self.staged);
        let dir = self.dir;
        for (rel, _) in &staged {
            if dir.meta(rel)?.is_some_and(|m| m.kind == Kind::Dir) {
                return Err(Error::bad_file(
                    rel,
                    "is a directory where gitca writes a file",
                    "remove the directory",
                ));
            }
        }
        let temps: Vec<Option<Result<crate::repository::confined::Staged>>> = staged
            .par_iter()
            .map(|(rel, data)| Some(dir.stage(rel, data.as_deref()?, 0o644)))
            .collect();
        let discard_all = |temps: Vec<Option<Result<crate::repository::confined::Staged>>>| {
            for t in temps.into_iter().flatten().flatten() {
                t.discard();
            }
        };
        if let Some(i) = temps.iter().position(|t| matches!(t, Some(Err(_)))) {
            let mut temps = temps;
            let Some(Err(e)) = temps[i].take() else {
                unreachable!("position found an error")
            };
            discard_all(temps);
            return Err(e);
        }
        if let Err(e) = dir.sync_filesystem() {
            discard_all(temps);
            return Err(e);
        }
        let half = staged.len() / 2;
        let counter = std::sync::atomic::AtomicUsize::new(0);
        // Each file: its previous version kept (for rollback), then the rename or the removal.
        type Outcome = (Option<crate::repository::confined::Backup>, Result<()>);
        let outcomes: Vec<Outcome> = staged
            .par_iter()
            .zip(temps)
            .map(|((rel, _), tmp)| {
                if counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == half {
                    failpoint("mid-write");
                }
                let old = match dir.backup(rel) {
                    Ok(old) => old,
                    Err(e) => {
                        if let Some(Ok(t)) = tmp {
                            t.discard();
                        }
                        return (None, Err(e));
                    }
                };
                let done = match tmp {
                    Some(Ok(tmp)) => tmp.commit(),
                    Some(Err(_)) => unreachable!("failed writes returned above"),
                    None => dir.remove(rel),
                };
                (old, done)
            })
            .collect();
        let mut failure = None;
        for ((rel, data), (old, done)) in staged.into_iter().zip(outcomes) {
            match done {
                Ok(()) => {
                    self.saved.push((rel.clone(), old));
                    self.done.push((rel, data));
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        dir.sync_filesystem()
    }

    /// Puts every touched file back as it was.
    pub fn rollback(mut self) {
        for (rel, old) in std::mem::take(&mut self.saved).into_iter().rev() {
            let _ = match old {
                Some(backup) => backup.restore(),
                None => self.dir.remove(&rel),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The pack and index gitca writes itself are read back by git: ids, contents, checksums
    /// (verify-pack and fsck recompute every id), an empty blob, a blob spanning several stored
    /// blocks, and a duplicate.
    #[test]
    fn packs_written_here_are_valid_for_git() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        let repo = CaRepo {
            root: dir.path().to_path_buf(),
            dir: Dir::open(dir.path()).unwrap(),
            git: Repository::open(dir.path()).unwrap(),
            history: std::cell::OnceCell::new(),
            signer: std::cell::OnceCell::new(),
        };
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let blobs: Vec<&[u8]> = vec![b"hello\n", b"", &big, b"hello\n"];
        let oids = repo.write_blobs(&blobs).unwrap();
        assert_eq!(oids[0], oids[3]);
        for (oid, data) in oids.iter().zip(&blobs) {
            let out = git(dir.path(), &["cat-file", "blob", &oid.to_string()]);
            assert_eq!(&out.stdout[..], *data, "{oid}");
        }
        assert_eq!(
            oids[1].to_string(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
            "the empty blob's well-known id"
        );
        let pack_dir = dir.path().join(".git/objects/pack");
        let idx: Vec<_> = std::fs::read_dir(&pack_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "idx"))
            .collect();
        assert_eq!(idx.len(), 1);
        let verify = git(dir.path(), &["verify-pack", "-v", idx[0].to_str().unwrap()]);
        let text = String::from_utf8_lossy(&verify.stdout);
        assert!(text.contains("non delta: 3 objects"), "{text}");
        git(dir.path(), &["fsck", "--strict"]);
    }
}
