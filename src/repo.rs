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

    /// Stages exactly `written` and `removed` (relative paths) and commits them on HEAD.
    pub fn commit(
        &self,
        written: &[String],
        removed: &[String],
        message: &str,
    ) -> Result<git2::Oid> {
        let mut index = self.git.index()?;
        for p in written {
            index.add_path(Path::new(p))?;
        }
        for p in removed {
            if index.get_path(Path::new(p), 0).is_some() {
                index.remove_path(Path::new(p))?;
            }
        }
        index.write()?;
        let tree = self.git.find_tree(index.write_tree()?)?;
        let sig = self.signature()?;
        let parent = match self.head_oid() {
            Some(oid) => Some(self.git.find_commit(oid)?),
            None => None,
        };
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        Ok(self
            .git
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?)
    }
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename, so a
/// reader (or a crash) never sees a half-written file.
pub fn write_atomic(path: &Path, data: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = path.parent().expect("paths have a parent");
    std::fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
    let tmp = dir.join(format!(
        ".{}.gitca-tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let result = (|| -> std::io::Result<()> {
        let mut opts = File::options();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode.unwrap_or(0o644));
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(Error::io("write", path))
}

/// The files a command is about to change, with their previous contents, so that a failure
/// part-way can put every one of them back (invariant 8: all or nothing).
#[derive(Default)]
pub struct Transaction {
    root: PathBuf,
    saved: Vec<(String, Option<Vec<u8>>)>,
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

    fn save(&mut self, rel: &str) {
        if !self.saved.iter().any(|(p, _)| p == rel) {
            let old = std::fs::read(self.root.join(rel)).ok();
            self.saved.push((rel.to_string(), old));
        }
    }

    pub fn write(&mut self, rel: &str, data: &[u8]) -> Result<()> {
        self.save(rel);
        write_atomic(&self.root.join(rel), data, None)?;
        self.written.push(rel.to_string());
        Ok(())
    }

    pub fn remove(&mut self, rel: &str) -> Result<()> {
        self.save(rel);
        let path = self.root.join(rel);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path)(e)),
        }
        self.removed.push(rel.to_string());
        Ok(())
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
