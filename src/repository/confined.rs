//! Confined file access: how gitca reads and writes every file below a directory it was given
//! (the CA repository, a certs.d directory, an output tree).
//!
//! Everything in a pull request is hostile, and so is anything already in the tree: a committed
//! symbolic link must never make gitca read a file outside the repository (and print it in a
//! diagnostic) nor write one (and so run code on the CI runner that holds the CA key). So, below
//! the directory a command was given:
//!
//! - every path is walked one component at a time with `O_NOFOLLOW`: a symbolic link in any
//!   component is refused, whether it leads out or stays inside;
//! - reads open the file first, then check from the open file that it is a regular file and not
//!   larger than the caller's limit, and never read more than that limit;
//! - writes go to a temporary file created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`) under an
//!   unpredictable name, given exactly the mode promised (whatever the umask), then renamed over
//!   the target (a rename replaces a link, it never writes through one).
//!
//! The directory itself (the anchor) is the one the user named. Links on the way to it are
//! followed only where nobody else could have planted them (see [`Dir::open`]).
//!
//! Linux only (as the rest of gitca: `syncfs`, Unix modes).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// A directory every access goes below, without following links.
pub struct Dir {
    fd: Arc<OwnedFd>,
    /// Where it is, for messages only: never used to reach a file.
    path: PathBuf,
    /// Subdirectories opened so far (repository-relative path → descriptor): 10,000 CSRs share
    /// `csr/`, and each would otherwise walk to it again.
    subdirs: Mutex<HashMap<String, Arc<OwnedFd>>>,
}

/// What kind of thing a path names, seen without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Kind {
    fn of(t: FileType) -> Kind {
        match t {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// A file's type and size, seen without following it.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub kind: Kind,
    pub len: u64,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(Errno) -> Error {
    let path = path.to_path_buf();
    move |e| Error::Io {
        action,
        path,
        source: e.into(),
    }
}

/// Splits a relative path into its normal components, refusing what could leave the directory.
fn components(rel: &str) -> Result<Vec<&OsStr>> {
    let p = Path::new(rel);
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => {
                return Err(Error::usage(
                    format!("`{rel}` leaves the directory it must stay in"),
                    "use a relative path without `..`",
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(Error::usage("an empty path", "name a file"));
    }
    Ok(out)
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    // The kernel's generator: aws-lc's would first seed its jitter entropy source, 20 ms of
    // CPU that a `deploy` poll has no other use for. A failing generator only makes the name
    // predictable; O_EXCL still refuses any file planted under it.
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    hex::encode(b)
}

impl Dir {
    /// Opens the directory the user named, as the anchor of every later access.
    ///
    /// Links on the way to it are followed only when nobody but root or this user could have
    /// made or replaced them: the link is owned by root or us, and the directory holding it is
    /// owned by root or us and writable by nobody else (or sticky, as /tmp). System links such
    /// as /var/run → /run pass; a link another user planted in a shared directory is refused.
    pub fn open(path: &Path) -> Result<Dir> {
        let fd = open_trusted(path)?;
        Ok(Dir {
            fd: Arc::new(fd),
            path: path.to_path_buf(),
            subdirs: Mutex::new(HashMap::new()),
        })
    }

    /// [`Dir::open`], creating the directory first: its deepest existing ancestor is opened as
    /// [`Dir::open`] does, and the missing directories below it (mode 0755) are created without
    /// following any link.
    pub fn create(path: &Path) -> Result<Dir> {
        let mut existing = path;
        let mut missing = Vec::new();
        while std::fs::symlink_metadata(existing).is_err() {
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    missing.push(name.to_string_lossy().into_owned());
                    existing = if parent.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        parent
                    };
                }
                _ => break,
            }
        }
        if missing.is_empty() {
            return Dir::open(path);
        }
        missing.reverse();
        let created = Dir::open(existing).and_then(|base| base.create_dirs(&missing.join("/")));
        match created {
            Err(Error::Io { source, .. }) => Err(Error::Io {
                action: "create",
                path: path.to_path_buf(),
                source,
            }),
            Err(e) => Err(e),
            Ok(()) => Dir::open(path),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// The descriptor of the directory holding `rel`'s last component, walked without following
    /// links (created with `create`), and that component.
    fn parent<'a>(&self, rel: &'a str, create: bool) -> Result<(Arc<OwnedFd>, &'a OsStr)> {
        let parts = components(rel)?;
        let (name, dirs) = parts.split_last().expect("components are never empty");
        let fd = self.subdir_fd(dirs, rel, create)?;
        Ok((fd, name))
    }

    fn subdir_fd(&self, dirs: &[&OsStr], rel: &str, create: bool) -> Result<Arc<OwnedFd>> {
        if dirs.is_empty() {
            return Ok(self.fd.clone());
        }
        let key: Vec<&[u8]> = dirs.iter().map(|d| d.as_bytes()).collect();
        let key = String::from_utf8_lossy(&key.join(&b'/')).into_owned();
        if let Some(fd) = self.subdirs.lock().expect("not poisoned").get(&key) {
            return Ok(fd.clone());
        }
        let mut cur = self.fd.clone();
        for (i, d) in dirs.iter().enumerate() {
            let shown = || {
                let upto: Vec<&str> = dirs[..=i]
                    .iter()
                    .map(|d| d.to_str().unwrap_or("?"))
                    .collect();
                upto.join("/")
            };
            let open = |at: &OwnedFd| {
                rustix::fs::openat(
                    at,
                    *d,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            };
            let next = match open(&cur) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&*cur, *d, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err("create directory", &self.join(&shown()))(e)),
                    }
                    open(&cur).map_err(|e| self.explain(&cur, d, &shown(), e))?
                }
                Err(e) => return Err(self.explain(&cur, d, &shown(), e)),
            };
            cur = Arc::new(next);
        }
        let _ = rel;
        self.subdirs
            .lock()
            .expect("not poisoned")
            .insert(key, cur.clone());
        Ok(cur)
    }

    /// Turns an open failure into the diagnostic that says why: a link, not a directory, absent.
    fn explain(&self, at: &OwnedFd, name: &OsStr, shown: &str, e: Errno) -> Error {
        let kind = rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|s| Kind::of(FileType::from_raw_mode(s.st_mode)));
        match kind {
            Some(Kind::Symlink) => symlink_refused(shown),
            Some(Kind::File) | Some(Kind::Other) if e == Errno::NOTDIR || e == Errno::LOOP => {
                Error::bad_file(
                    shown,
                    "is not a directory",
                    "gitca expects a directory here; remove or rename what is in its place",
                )
            }
            _ => io_err("open", &self.join(shown))(e),
        }
    }

    /// What `rel` is, without following it; `None` when nothing is there.
    pub fn meta(&self, rel: &str) -> Result<Option<Meta>> {
        let (dir, name) = match self.parent(rel, false) {
            Ok(p) => p,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(Meta {
                kind: Kind::of(FileType::from_raw_mode(s.st_mode)),
                len: s.st_size as u64,
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io_err("read", &self.join(rel))(e)),
        }
    }

    /// Opens `rel` for reading without following any link; it must be a regular file. Returns
    /// the open file and its size, or `None` when nothing is there.
    fn open_file(&self, rel: &str) -> Result<Option<(std::fs::File, u64)>> {
        let (dir, name) = match self.parent(rel, false) {
            Ok(p) => p,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let fd = match rustix::fs::openat(
            &*dir,
            name,
            // NONBLOCK: a FIFO planted in the tree must not hang the run before it is refused.
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(symlink_refused(rel)),
            Err(e) => return Err(io_err("read", &self.join(rel))(e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(io_err("read", &self.join(rel)))?;
        if Kind::of(FileType::from_raw_mode(st.st_mode)) != Kind::File {
            return Err(Error::bad_file(
                rel,
                "not a regular file",
                "gitca reads only plain files here; replace it with the file itself",
            ));
        }
        Ok(Some((std::fs::File::from(fd), st.st_size as u64)))
    }

    /// Reads `rel`, a regular file of at most `limit` bytes (checked on the open file before
    /// reading); `None` when it does not exist.
    pub fn read_opt(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        let Some((file, len)) = self.open_file(rel)? else {
            return Ok(None);
        };
        if len > limit {
            return Err(too_large(rel, len, limit));
        }
        let mut buf = Vec::with_capacity(len as usize);
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(Error::io("read", &self.join(rel)))?;
        if buf.len() as u64 > limit {
            return Err(too_large(rel, buf.len() as u64, limit));
        }
        Ok(Some(buf))
    }

    /// Reads at most the first `limit` bytes of `rel` (for scanning), however large it is.
    pub fn read_head(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        let Some((file, len)) = self.open_file(rel)? else {
            return Ok(None);
        };
        let mut buf = Vec::with_capacity(len.min(limit) as usize);
        file.take(limit)
            .read_to_end(&mut buf)
            .map_err(Error::io("read", &self.join(rel)))?;
        Ok(Some(buf))
    }

    /// Reads `rel`, which must exist (see [`Dir::read_opt`]).
    pub fn read(&self, rel: &str, limit: u64) -> Result<Vec<u8>> {
        self.read_opt(rel, limit)?.ok_or_else(|| Error::Io {
            action: "read",
            path: self.join(rel),
            source: std::io::ErrorKind::NotFound.into(),
        })
    }

    /// Reads `rel` as UTF-8 text (see [`Dir::read`]).
    pub fn read_string(&self, rel: &str, limit: u64) -> Result<String> {
        let bytes = self.read(rel, limit)?;
        String::from_utf8(bytes).map_err(|_| {
            Error::bad_file(
                rel,
                "is not UTF-8 text",
                "restore the file from git history, or re-create it with the gitca command that writes it",
            )
        })
    }

    /// The entries of the directory `rel` ("" for the anchor itself): name and kind, not
    /// followed. An absent directory has no entries.
    pub fn list(&self, rel: &str) -> Result<Vec<(String, Kind)>> {
        let fd = if rel.is_empty() || rel == "." {
            self.fd.clone()
        } else {
            let parts = components(rel)?;
            match self.subdir_fd(&parts, rel, false) {
                Ok(fd) => fd,
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Vec::new())
                }
                Err(e) => return Err(e),
            }
        };
        let mut dir = rustix::fs::Dir::read_from(&*fd).map_err(io_err("list", &self.join(rel)))?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(io_err("list", &self.join(rel)))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = String::from_utf8_lossy(name).into_owned();
            let kind = match entry.file_type() {
                FileType::Unknown => {
                    rustix::fs::statat(&*fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map(|s| Kind::of(FileType::from_raw_mode(s.st_mode)))
                        .unwrap_or(Kind::Other)
                }
                t => Kind::of(t),
            };
            out.push((name, kind));
        }
        out.sort();
        Ok(out)
    }

    /// The directory `rel` below this one (created with `create`), itself an anchor for later
    /// accesses: reached without following any link.
    pub fn subdir(&self, rel: &str, create: bool) -> Result<Dir> {
        let parts = components(rel)?;
        let fd = self.subdir_fd(&parts, rel, create)?;
        let fd = rustix::fs::openat(
            &*fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err("open", &self.join(rel)))?;
        Ok(Dir {
            fd: Arc::new(fd),
            path: self.join(rel),
            subdirs: Mutex::new(HashMap::new()),
        })
    }

    /// Creates the directories of `rel` (each component, none of them a link).
    pub fn create_dirs(&self, rel: &str) -> Result<()> {
        let parts = components(rel)?;
        self.subdir_fd(&parts, rel, true).map(|_| ())
    }

    /// Writes `data` to a new temporary file beside `rel` (directories created as needed),
    /// exclusively, with exactly `mode`; [`Staged::commit`] renames it over `rel`.
    pub fn stage(&self, rel: &str, data: &[u8], mode: u32) -> Result<Staged> {
        use std::io::Write;
        let (dir, name) = self.parent(rel, true)?;
        let shown = self.join(rel);
        for _ in 0..8 {
            let tmp = format!(".{}.{}.gitca-tmp", name.to_string_lossy(), random_suffix());
            let fd = match rustix::fs::openat(
                &*dir,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode & 0o600),
            ) {
                Ok(fd) => fd,
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io_err("write", &shown)(e)),
            };
            let staged = Staged {
                dir: dir.clone(),
                tmp,
                name: name.to_os_string(),
                shown: shown.clone(),
            };
            // The exact mode, whatever the umask: 0644 for what the repository tracks, 0600 for keys.
            let written = rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(io_err("write", &shown))
                .and_then(|()| {
                    let mut f = std::fs::File::from(fd);
                    f.write_all(data).map_err(Error::io("write", &shown))
                });
            return match written {
                Ok(()) => Ok(staged),
                Err(e) => {
                    staged.discard();
                    Err(e)
                }
            };
        }
        Err(Error::Io {
            action: "write",
            path: shown,
            source: std::io::ErrorKind::AlreadyExists.into(),
        })
    }

    /// [`Dir::stage`] for a file an operator may have set up: when `rel` exists as a regular
    /// file, the new one gets its mode and (as far as this process may give them) its owner
    /// and group, so that `chmod 640; chgrp nginx` survives every update; else `mode`. A file
    /// meant to be private (`mode` grants nothing to others) never becomes readable by others.
    pub fn stage_keeping(&self, rel: &str, data: &[u8], mode: u32) -> Result<Staged> {
        let (dir, name) = self.parent(rel, true)?;
        let existing = rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .filter(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile);
        let Some(st) = existing else {
            return self.stage(rel, data, mode);
        };
        let ceiling = if mode & 0o077 == 0 { 0o770 } else { 0o777 };
        let kept = st.st_mode & ceiling;
        let staged = self.stage(rel, data, kept)?;
        let owner = (
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
        );
        // Best effort: a process that may not give the file away keeps it its own.
        if rustix::fs::chownat(
            &*staged.dir,
            staged.tmp.as_str(),
            owner.0,
            owner.1,
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .is_err()
        {
            let _ = rustix::fs::chownat(
                &*staged.dir,
                staged.tmp.as_str(),
                None,
                owner.1,
                AtFlags::SYMLINK_NOFOLLOW,
            );
        }
        // chown clears set-id bits on some systems; the mode is set again after it.
        let _ = rustix::fs::chmodat(
            &*staged.dir,
            staged.tmp.as_str(),
            Mode::from_raw_mode(kept),
            AtFlags::empty(),
        );
        Ok(staged)
    }

    /// [`Dir::write`] through [`Dir::stage_keeping`].
    pub fn write_keeping(&self, rel: &str, data: &[u8], mode: u32) -> Result<()> {
        self.stage_keeping(rel, data, mode)?.settle()
    }

    /// [`Dir::stage`], with the contents streamed by `fill` into the new file.
    pub fn stage_with(
        &self,
        rel: &str,
        mode: u32,
        fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<Staged> {
        let staged = self.stage(rel, b"", mode)?;
        let shown = self.join(rel);
        let file = rustix::fs::openat(
            &*staged.dir,
            staged.tmp.as_str(),
            OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err("write", &shown));
        let filled = file.and_then(|fd| {
            let mut f = std::fs::File::from(fd);
            fill(&mut f).map_err(Error::io("write", &shown))
        });
        match filled {
            Ok(()) => Ok(staged),
            Err(e) => {
                staged.discard();
                Err(e)
            }
        }
    }

    /// Writes `rel` atomically (see [`Dir::stage`]), synced to disk before the rename.
    pub fn write(&self, rel: &str, data: &[u8], mode: u32) -> Result<()> {
        self.stage(rel, data, mode)?.settle()
    }

    /// Creates `rel` with `data`, refusing to replace anything already there (a key is never
    /// overwritten).
    pub fn create_new(&self, rel: &str, data: &[u8], mode: u32) -> Result<()> {
        let (dir, name) = self.parent(rel, true)?;
        let staged = self.stage(rel, data, mode)?;
        if let Err(e) = staged.sync() {
            staged.discard();
            return Err(e);
        }
        // link(2) refuses an existing target (a link included), where rename would replace it.
        let linked = rustix::fs::linkat(&*dir, staged.tmp.as_str(), &*dir, name, AtFlags::empty());
        staged.discard();
        match linked {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => Err(Error::usage(
                format!(
                    "{} exists already; gitca never overwrites it",
                    self.join(rel).display()
                ),
                "choose another path, or move the existing file away yourself",
            )),
            Err(e) => Err(io_err("create", &self.join(rel))(e)),
        }
    }

    /// Removes `rel` (the entry itself, never what a link points to); absent is fine.
    pub fn remove(&self, rel: &str) -> Result<()> {
        let (dir, name) = match self.parent(rel, false) {
            Ok(p) => p,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        match rustix::fs::unlinkat(&*dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err("remove", &self.join(rel))(e)),
        }
    }

    /// Sets the directory's own mode (e.g. 0700 for a key directory).
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        rustix::fs::fchmod(&*self.fd, Mode::from_raw_mode(mode))
            .map_err(io_err("chmod", &self.path))
    }

    /// Flushes every file of the filesystem holding this directory: one call instead of one
    /// fsync per file when thousands of certificates are written.
    pub fn sync_filesystem(&self) -> Result<()> {
        rustix::fs::syncfs(&*self.fd).map_err(io_err("sync", &self.path))
    }

    /// The file's status (for git index entries), without following it.
    pub fn stat(&self, rel: &str) -> Result<rustix::fs::Stat> {
        let (dir, name) = self.parent(rel, false)?;
        rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_err("read", &self.join(rel)))
    }
}

/// The previous version of a file, kept under a temporary name (a hard link: no copy), so a
/// failed transaction can put it back.
pub struct Backup {
    dir: Arc<OwnedFd>,
    tmp: String,
    name: std::ffi::OsString,
}

impl Backup {
    /// Puts the previous version back over whatever is there now.
    pub fn restore(self) -> Result<()> {
        let r = rustix::fs::renameat(&*self.dir, self.tmp.as_str(), &*self.dir, &self.name);
        let shown = PathBuf::from(&self.name);
        std::mem::forget(self);
        r.map_err(io_err("restore", &shown))
    }
}

impl Drop for Backup {
    fn drop(&mut self) {
        let _ = rustix::fs::unlinkat(&*self.dir, self.tmp.as_str(), AtFlags::empty());
    }
}

impl Dir {
    /// Keeps the current version of `rel` (a regular file) under a temporary name; `None` when
    /// there is no regular file there.
    pub fn backup(&self, rel: &str) -> Result<Option<Backup>> {
        if self.meta(rel)?.map(|m| m.kind) != Some(Kind::File) {
            return Ok(None);
        }
        let (dir, name) = self.parent(rel, false)?;
        for _ in 0..8 {
            let tmp = format!(".{}.{}.gitca-tmp", name.to_string_lossy(), random_suffix());
            match rustix::fs::linkat(&*dir, name, &*dir, tmp.as_str(), AtFlags::empty()) {
                Ok(()) => {
                    return Ok(Some(Backup {
                        dir: dir.clone(),
                        tmp,
                        name: name.to_os_string(),
                    }))
                }
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io_err("back up", &self.join(rel))(e)),
            }
        }
        Err(Error::Io {
            action: "back up",
            path: self.join(rel),
            source: std::io::ErrorKind::AlreadyExists.into(),
        })
    }
}

/// A file written under a temporary name, waiting to be renamed into place.
pub struct Staged {
    dir: Arc<OwnedFd>,
    tmp: String,
    name: std::ffi::OsString,
    shown: PathBuf,
}

impl Staged {
    /// Synced to disk, then renamed into place; discarded if the sync fails.
    pub fn settle(self) -> Result<()> {
        if let Err(e) = self.sync() {
            self.discard();
            return Err(e);
        }
        self.commit()
    }

    /// Flushes this one file to disk.
    pub fn sync(&self) -> Result<()> {
        let fd = rustix::fs::openat(
            &*self.dir,
            self.tmp.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err("write", &self.shown))?;
        rustix::fs::fsync(&fd).map_err(io_err("write", &self.shown))
    }

    /// Renames the file over its target. A link there is replaced, never written through.
    pub fn commit(self) -> Result<()> {
        let r = rustix::fs::renameat(&*self.dir, self.tmp.as_str(), &*self.dir, &self.name);
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = io_err("write", &self.shown)(e);
                self.discard();
                Err(err)
            }
        }
    }

    /// Renames the file to `name` (in the same directory) instead of the name it was staged for.
    pub fn commit_as(self, name: &str) -> Result<()> {
        if name.contains('/') || name.is_empty() || name == "." || name == ".." {
            self.discard();
            return Err(Error::usage(
                format!("`{name}` is not a file name"),
                "a bug in gitca",
            ));
        }
        let r = rustix::fs::renameat(&*self.dir, self.tmp.as_str(), &*self.dir, name);
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = io_err("write", &self.shown)(e);
                self.discard();
                Err(err)
            }
        }
    }

    pub fn discard(&self) {
        let _ = rustix::fs::unlinkat(&*self.dir, self.tmp.as_str(), AtFlags::empty());
    }
}

/// Reads a file the user named on the command line (an identity file, a key, a recipients
/// file): the user chose the path, so links in it are followed; it must still be a regular
/// file of at most `limit` bytes, checked from the open file before reading.
pub fn read_named(path: &Path, limit: u64, action: &'static str) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(Error::io(action, path))?;
    let meta = file.metadata().map_err(Error::io(action, path))?;
    if !meta.is_file() {
        return Err(Error::bad_file(
            path,
            "is not a regular file",
            "pass the path of a plain file",
        ));
    }
    if meta.len() > limit {
        return Err(Error::FileTooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
            limit,
        });
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(Error::io(action, path))?;
    if buf.len() as u64 > limit {
        return Err(Error::FileTooLarge {
            path: path.to_path_buf(),
            len: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// [`read_named`] as UTF-8 text.
pub fn read_named_string(path: &Path, limit: u64, action: &'static str) -> Result<String> {
    String::from_utf8(read_named(path, limit, action)?)
        .map_err(|_| Error::bad_file(path, "is not UTF-8 text", "pass a text (PEM or age) file"))
}

fn symlink_refused(rel: &str) -> Error {
    Error::SymlinkRefused {
        path: PathBuf::from(rel),
    }
}

fn too_large(rel: &str, len: u64, limit: u64) -> Error {
    Error::FileTooLarge {
        path: PathBuf::from(rel),
        len,
        limit,
    }
}

/// Opens the anchor directory, following only links nobody else could have planted.
fn open_trusted(path: &Path) -> Result<OwnedFd> {
    let euid = rustix::process::geteuid().as_raw();
    let ours = |uid: u32| uid == 0 || uid == euid;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let start = |abs: bool| {
        rustix::fs::open(if abs { "/" } else { "." }, flags, Mode::empty())
            .map_err(io_err("open", path))
    };
    let mut cur = start(path.is_absolute())?;
    let mut todo: std::collections::VecDeque<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        let st = rustix::fs::statat(&cur, c.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_err("open", path))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                hops += 1;
                let dir = rustix::fs::fstat(&cur).map_err(io_err("open", path))?;
                let sticky = dir.st_mode & 0o1000 != 0;
                let trusted =
                    ours(st.st_uid) && ((ours(dir.st_uid) && dir.st_mode & 0o022 == 0) || sticky);
                if !trusted || hops > 32 {
                    return Err(Error::UntrustedLink {
                        path: path.to_path_buf(),
                        link: c.to_string_lossy().into_owned(),
                    });
                }
                let target = rustix::fs::readlinkat(&cur, c.as_os_str(), Vec::new())
                    .map_err(io_err("open", path))?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    cur = start(true)?;
                }
                for comp in target.components().rev() {
                    match comp {
                        Component::Normal(s) => todo.push_front(s.to_os_string()),
                        Component::ParentDir => todo.push_front("..".into()),
                        _ => {}
                    }
                }
            }
            FileType::Directory => {
                cur = rustix::fs::openat(&cur, c.as_os_str(), flags, Mode::empty())
                    .map_err(io_err("open", path))?;
            }
            _ => {
                return Err(Error::Io {
                    action: "open",
                    path: path.to_path_buf(),
                    source: std::io::ErrorKind::NotADirectory.into(),
                })
            }
        }
    }
    // The anchor itself is opened for reading: listing and syncfs need a real descriptor.
    rustix::fs::openat(
        &cur,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err("open", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn reads_refuse_links_in_any_component_and_non_files() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("repo");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(root.join("real/f"), "inside").unwrap();
        std::fs::write(t.path().join("outside"), "secret").unwrap();
        symlink(t.path().join("outside"), root.join("link")).unwrap();
        symlink(root.join("real"), root.join("dirlink")).unwrap();
        symlink("real/f", root.join("inner")).unwrap();
        let d = Dir::open(&root).unwrap();
        assert_eq!(d.read("real/f", 100).unwrap(), b"inside");
        for rel in ["link", "dirlink/f", "inner"] {
            let e = d.read(rel, 100).unwrap_err();
            assert!(matches!(e, Error::SymlinkRefused { .. }), "{rel}: {e:?}");
        }
        assert!(matches!(d.read("real", 100), Err(Error::BadFile { .. })));
        assert!(matches!(
            d.read("real/f", 3),
            Err(Error::FileTooLarge { .. })
        ));
        assert!(d.read_opt("nothing", 10).unwrap().is_none());
        assert!(d.read("../outside", 100).is_err());
    }

    #[test]
    fn writes_replace_links_never_follow_them_and_keep_their_mode() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("repo");
        std::fs::create_dir_all(&root).unwrap();
        let outside = t.path().join("outside");
        std::fs::write(&outside, "untouched").unwrap();
        symlink(&outside, root.join("ledger.tsv")).unwrap();
        symlink(t.path(), root.join("certs")).unwrap();
        let d = Dir::open(&root).unwrap();
        let old = rustix::process::umask(Mode::from_raw_mode(0o077));
        d.write("ledger.tsv", b"new", 0o644).unwrap();
        d.write("key", b"k", 0o600).unwrap();
        rustix::process::umask(old);
        assert_eq!(std::fs::read(&outside).unwrap(), b"untouched");
        let m = std::fs::symlink_metadata(root.join("ledger.tsv")).unwrap();
        assert!(m.is_file());
        assert_eq!(m.permissions().mode() & 0o777, 0o644);
        let m = std::fs::symlink_metadata(root.join("key")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let e = d.write("certs/a.crt", b"x", 0o644).unwrap_err();
        assert!(matches!(e, Error::SymlinkRefused { .. }), "{e:?}");
        assert!(!t.path().join("a.crt").exists());
        assert!(
            d.create_new("key", b"other", 0o600).is_err(),
            "never overwritten"
        );
        assert_eq!(std::fs::read(root.join("key")).unwrap(), b"k");
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("gitca-tmp"))
            .collect();
        assert!(left.is_empty());
    }

    #[test]
    fn the_anchor_follows_only_links_nobody_else_could_plant() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir_all(&real).unwrap();
        symlink(&real, t.path().join("mine")).unwrap();
        assert!(
            Dir::open(&t.path().join("mine")).is_ok(),
            "our own link in our own directory"
        );
        let shared = t.path().join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        symlink(&real, shared.join("planted")).unwrap();
        let e = Dir::open(&shared.join("planted")).err().unwrap();
        assert!(matches!(e, Error::UntrustedLink { .. }), "{e:?}");
    }
}
