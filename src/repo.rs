//! The CA repository on disk: finding it, atomic file writes, the reconcile lock, the
//! working-tree cleanliness check and the one commit a command makes (git2).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use git2::{Repository, Signature, StatusOptions};

use crate::error::{Error, Result};

/// The paths gitca reads or writes, relative to the repository root.
pub const MANAGED: &[&str] = &[
    "gitca.yaml",
    "identities",
    "csr",
    "ca",
    "certs",
    "crl",
    "ledger.tsv",
];

/// The paths only reconcile writes: derived from the inputs and the ledger, so an interrupted
/// reconcile's leftovers there can always be thrown away and redone.
pub const OUTPUTS: &[&str] = &["certs", "crl", "ledger.tsv"];

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

/// An open CA repository.
pub struct CaRepo {
    pub root: PathBuf,
    pub git: Repository,
}

impl CaRepo {
    /// Opens the git repository containing `dir` and checks it holds a CA.
    pub fn open(dir: &Path) -> Result<CaRepo> {
        let git = Repository::discover(dir).map_err(|_| Error::NotACa {
            path: dir.to_path_buf(),
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
        if !root.join(crate::config::FILE).is_file() {
            return Err(Error::NotACa { path: root });
        }
        Ok(CaRepo { root, git })
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Takes the repository's gitca lock, held until the returned file is dropped. It lives in
    /// `.git/` so it is never tracked, and the OS releases it when the process dies.
    pub fn lock(&self) -> Result<File> {
        let path = self.git.path().join("gitca.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
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
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false);
        for p in MANAGED {
            opts.pathspec(p);
        }
        let statuses = self.git.statuses(Some(&mut opts))?;
        Ok(statuses
            .iter()
            .filter(|s| !s.status().is_empty() && s.status() != git2::Status::IGNORED)
            .filter_map(|s| s.path().ok().map(str::to_string))
            .collect())
    }

    /// Puts reconcile's outputs back as HEAD has them when an earlier run left them changed
    /// (killed between writing and committing): index entries, files, and stray temporary or
    /// new files under them. Returns what was restored.
    pub fn restore_outputs(&self) -> Result<Vec<String>> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false);
        for p in OUTPUTS {
            opts.pathspec(p);
        }
        let dirty: Vec<String> = self
            .git
            .statuses(Some(&mut opts))?
            .iter()
            .filter(|s| !s.status().is_empty() && s.status() != git2::Status::IGNORED)
            .filter_map(|s| s.path().ok().map(str::to_string))
            .collect();
        if dirty.is_empty() {
            return Ok(dirty);
        }
        let Some(head) = self.head_oid() else {
            return Ok(Vec::new());
        };
        let commit = self.git.find_commit(head)?;
        let tree = commit.tree()?;
        self.git
            .reset_default(Some(commit.as_object()), dirty.iter())?;
        for rel in &dirty {
            let path = self.root.join(rel);
            match tree.get_path(Path::new(rel)) {
                Ok(entry) => {
                    let blob = self.git.find_blob(entry.id())?;
                    write_atomic(&path, blob.content(), None)?;
                }
                Err(_) => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io("remove", &path)(e))
                    }
                    _ => {}
                },
            }
        }
        // Restored files have new stat data: refresh the index so status stays cheap.
        let mut index = self.git.index()?;
        for rel in &dirty {
            if let Ok(entry) = tree.get_path(Path::new(rel)) {
                index.add(&index_entry(&self.root, rel, entry.id())?)?;
            }
        }
        index.write()?;
        Ok(dirty)
    }

    pub fn ensure_clean(&self) -> Result<()> {
        let dirty = self.dirty_paths()?;
        if dirty.is_empty() {
            Ok(())
        } else {
            Err(Error::Dirty {
                files: dirty
                    .iter()
                    .map(|p| format!("  {p}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            })
        }
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

    /// Commits `written` and `removed` (relative paths), reading the written files from disk.
    pub fn commit(
        &self,
        written: &[String],
        removed: &[String],
        message: &str,
    ) -> Result<git2::Oid> {
        let mut files: Vec<(String, Option<Vec<u8>>)> =
            Vec::with_capacity(written.len() + removed.len());
        for p in written {
            let path = self.root.join(p);
            files.push((
                p.clone(),
                Some(std::fs::read(&path).map_err(Error::io("read", &path))?),
            ));
        }
        files.extend(removed.iter().map(|p| (p.clone(), None)));
        self.commit_files(&files, message)
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
        files: &[(String, Option<Vec<u8>>)],
        message: &str,
    ) -> Result<git2::Oid> {
        let blobs: Vec<&[u8]> = files.iter().filter_map(|(_, d)| d.as_deref()).collect();
        let oids = self.write_blobs(&blobs)?;
        let parent = match self.head_oid() {
            Some(oid) => Some(self.git.find_commit(oid)?),
            None => None,
        };
        let base = match &parent {
            Some(c) => c.tree()?,
            None => self.git.find_tree(self.git.treebuilder(None)?.write()?)?,
        };
        let mut update = git2::build::TreeUpdateBuilder::new();
        let mut index = self.git.index()?;
        let mut next = oids.iter();
        for (path, data) in files {
            match data {
                Some(_) => {
                    let oid = *next.next().expect("one oid per blob");
                    update.upsert(path.as_str(), oid, git2::FileMode::Blob);
                    index.add(&index_entry(&self.root, path, oid)?)?;
                }
                None => {
                    if base.get_path(Path::new(path)).is_ok() {
                        update.remove(path.as_str());
                    }
                    if index.get_path(Path::new(path), 0).is_some() {
                        index.remove_path(Path::new(path))?;
                    }
                }
            }
        }
        let tree = self
            .git
            .find_tree(update.create_updated(&self.git, &base)?)?;
        let sig = self.signature()?;
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let oid = self
            .git
            .commit(None, &sig, &sig, message, &tree, &parents)?;
        failpoint("after-objects");
        index.write()?;
        failpoint("after-index");
        self.advance_head(oid, message)?;
        Ok(oid)
    }

    /// Writes blobs as one pack (whole objects): one file instead of one per object. Objects
    /// are hashed and encoded in parallel; zlib stores them uncompressed (PEM barely compresses,
    /// and `git gc` repacks later), which keeps a 10,000-certificate commit fast.
    fn write_blobs(&self, blobs: &[&[u8]]) -> Result<Vec<git2::Oid>> {
        use rayon::prelude::*;
        use sha1::Digest as _;
        let encoded: Vec<std::result::Result<(git2::Oid, Vec<u8>), git2::Error>> = blobs
            .par_iter()
            .map(|data| {
                let oid = git2::Oid::hash_object(git2::ObjectType::Blob, data)?;
                let mut out = Vec::with_capacity(data.len() + 32);
                // Object header: type 3 (blob) and the size, 4 bits then 7 bits per byte.
                let mut size = data.len();
                let mut byte = (3u8 << 4) | (size & 0x0f) as u8;
                size >>= 4;
                while size > 0 {
                    out.push(byte | 0x80);
                    byte = (size & 0x7f) as u8;
                    size >>= 7;
                }
                out.push(byte);
                let mut z = flate2::write::ZlibEncoder::new(out, flate2::Compression::none());
                z.write_all(data)
                    .map_err(|e| git2::Error::from_str(&e.to_string()))?;
                let out = z
                    .finish()
                    .map_err(|e| git2::Error::from_str(&e.to_string()))?;
                Ok((oid, out))
            })
            .collect();
        let mut oids = Vec::with_capacity(blobs.len());
        let mut seen = std::collections::HashSet::new();
        let mut pack = Vec::new();
        pack.extend_from_slice(b"PACK");
        pack.extend_from_slice(&2u32.to_be_bytes());
        pack.extend_from_slice(&0u32.to_be_bytes());
        let mut count: u32 = 0;
        for e in encoded {
            let (oid, bytes) = e?;
            oids.push(oid);
            if seen.insert(oid) {
                pack.extend_from_slice(&bytes);
                count += 1;
            }
        }
        if count == 0 {
            return Ok(oids);
        }
        pack[8..12].copy_from_slice(&count.to_be_bytes());
        let trailer = sha1::Sha1::digest(&pack);
        pack.extend_from_slice(&trailer);
        let odb = self.git.odb()?;
        let mut writer = odb.packwriter()?;
        writer
            .write_all(&pack)
            .map_err(|e| git2::Error::from_str(&e.to_string()))?;
        writer.commit()?;
        Ok(oids)
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

/// An index entry for a file just written, with its stat data so `git status` need not re-read it.
fn index_entry(root: &Path, rel: &str, oid: git2::Oid) -> Result<git2::IndexEntry> {
    use std::os::unix::fs::MetadataExt;
    let path = root.join(rel);
    let m = std::fs::symlink_metadata(&path).map_err(Error::io("read", &path))?;
    Ok(git2::IndexEntry {
        ctime: git2::IndexTime::new(m.ctime() as i32, m.ctime_nsec() as u32),
        mtime: git2::IndexTime::new(m.mtime() as i32, m.mtime_nsec() as u32),
        dev: m.dev() as u32,
        ino: m.ino() as u32,
        mode: if m.mode() & 0o111 != 0 {
            0o100755
        } else {
            0o100644
        },
        uid: m.uid(),
        gid: m.gid(),
        file_size: m.len() as u32,
        id: oid,
        flags: rel.len().min(0xfff) as u16,
        flags_extended: 0,
        path: rel.as_bytes().to_vec(),
    })
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename, so a
/// reader (or a crash) never sees a half-written file.
pub fn write_atomic(path: &Path, data: &[u8], mode: Option<u32>) -> Result<()> {
    let tmp = write_temp(path, data, mode)?;
    let f = File::open(&tmp).map_err(Error::io("write", path))?;
    f.sync_all().map_err(Error::io("write", path))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("write", path)(e)
    })
}

fn temp_name(path: &Path) -> PathBuf {
    let dir = path.parent().expect("paths have a parent");
    dir.join(format!(
        ".{}.gitca-tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ))
}

/// Writes `data` next to `path` under a temporary name; returns that name.
fn write_temp(path: &Path, data: &[u8], mode: Option<u32>) -> Result<PathBuf> {
    let dir = path.parent().expect("paths have a parent");
    std::fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
    let tmp = temp_name(path);
    let result = (|| -> std::io::Result<()> {
        let mut opts = File::options();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode.unwrap_or(0o644));
        }
        opts.open(&tmp)?.write_all(data)
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(Error::io("write", path)(e))
        }
    }
}

/// Flushes every file of the filesystem holding `dir` to disk: one call instead of one fsync
/// per file when thousands of certificates are written.
fn sync_filesystem(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(Error::io("open", dir))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs only reads the descriptor, which `f` keeps open for the call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(Error::io("sync", dir)(std::io::Error::last_os_error()));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        f.sync_all().map_err(Error::io("sync", dir))
    }
}

/// The files a command changes, written all or nothing (invariant 8): every new content goes to
/// a temporary file first, the filesystem is synced once, and only then are they renamed into
/// place; a failure part-way puts every renamed file back from the saved previous contents.
#[derive(Default)]
pub struct Transaction {
    root: PathBuf,
    staged: Vec<(String, Option<Vec<u8>>)>,
    saved: Vec<(String, Option<Vec<u8>>)>,
    /// What `apply` wrote (contents) and removed (`None`), for the commit.
    pub done: Vec<(String, Option<Vec<u8>>)>,
    pub written: Vec<String>,
    pub removed: Vec<String>,
}

impl Transaction {
    pub fn new(root: &Path) -> Transaction {
        Transaction {
            root: root.to_path_buf(),
            ..Default::default()
        }
    }

    /// Stages new contents for `rel`.
    pub fn write(&mut self, rel: &str, data: &[u8]) {
        self.staged.push((rel.to_string(), Some(data.to_vec())));
    }

    /// Stages the removal of `rel`.
    pub fn remove(&mut self, rel: &str) {
        self.staged.push((rel.to_string(), None));
    }

    /// Writes everything staged: temporary files, one sync, renames.
    pub fn apply(&mut self) -> Result<()> {
        let staged = std::mem::take(&mut self.staged);
        let mut temps: Vec<(String, PathBuf)> = Vec::new();
        let cleanup = |temps: &[(String, PathBuf)]| {
            for (_, t) in temps {
                let _ = std::fs::remove_file(t);
            }
        };
        for (rel, data) in &staged {
            if let Some(data) = data {
                match write_temp(&self.root.join(rel), data, None) {
                    Ok(t) => temps.push((rel.clone(), t)),
                    Err(e) => {
                        cleanup(&temps);
                        return Err(e);
                    }
                }
            }
        }
        if let Err(e) = sync_filesystem(&self.root) {
            cleanup(&temps);
            return Err(e);
        }
        let mut temps = temps.into_iter();
        let half = staged.len() / 2;
        for (i, (rel, data)) in staged.into_iter().enumerate() {
            if i == half {
                failpoint("mid-write");
            }
            let path = self.root.join(&rel);
            let exists_after = data.is_some();
            let old = std::fs::read(&path).ok();
            self.saved.push((rel.clone(), old));
            let done = match data {
                Some(_) => {
                    let (_, tmp) = temps.next().expect("one temporary file per write");
                    std::fs::rename(&tmp, &path).map_err(Error::io("write", &path))
                }
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(Error::io("remove", &path)(e))
                    }
                    _ => Ok(()),
                },
            };
            if let Err(e) = done {
                cleanup(&temps.collect::<Vec<_>>());
                return Err(e);
            }
            if exists_after {
                self.written.push(rel.clone());
            } else {
                self.removed.push(rel.clone());
            }
            self.done.push((rel, data));
        }
        sync_filesystem(&self.root)
    }

    /// Puts every touched file back as it was.
    pub fn rollback(self) {
        for (rel, old) in self.saved.into_iter().rev() {
            let path = self.root.join(&rel);
            match old {
                Some(data) => {
                    let _ = write_atomic(&path, &data, None);
                }
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
}
