//! git's index after a commit of gitca's: the entries it wrote (with the files' metadata, so
//! that nothing is hashed again) and removed, the rest kept as they are.
//!
//! libgit2 keeps the index as one sorted array and inserts each new entry in place: every
//! `git_index_add` moves the entries after it. A bulk issue of 100,000 certificates into an
//! index of 200,000 entries (`identities/` and `csr/` sort after `certs/`) moved about 1.6 MB
//! per entry, 3.3 s in all. Past [`REBUILD_AT`] changes the index is therefore rebuilt in path
//! order instead (every add an append, about 0.3 s for 300,000 entries) into a file of its own,
//! renamed over the index at the moment the index would have been written.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The number of added and removed entries from which the index is rebuilt rather than
/// updated in place (in place costs changes × entries moved; rebuilt, entries once).
const REBUILD_AT: usize = 2048;

/// An index update made ready before the commit and installed after its objects.
pub enum Update {
    InPlace(git2::Index),
    Rebuilt {
        /// The repository's index, read again once the rebuilt file is in place.
        index: git2::Index,
        built: PathBuf,
        target: PathBuf,
    },
}

impl Update {
    /// The repository's index with `added` (each with its file's metadata) and without
    /// `removed`, not yet written.
    pub fn prepare(
        git: &git2::Repository,
        added: Vec<git2::IndexEntry>,
        removed: &HashSet<&[u8]>,
    ) -> Result<Update> {
        Update::prepare_with(git, added, removed, REBUILD_AT)
    }

    fn prepare_with(
        git: &git2::Repository,
        added: Vec<git2::IndexEntry>,
        removed: &HashSet<&[u8]>,
        rebuild_at: usize,
    ) -> Result<Update> {
        let mut index = git.index()?;
        if added.len() + removed.len() < rebuild_at {
            for entry in &added {
                index.add(entry)?;
            }
            for path in removed {
                let path = Path::new(std::str::from_utf8(path).unwrap_or_default());
                if index.get_path(path, 0).is_some() {
                    index.remove_path(path)?;
                }
            }
            return Ok(Update::InPlace(index));
        }
        let target = index
            .path()
            .map(Path::to_path_buf)
            .ok_or_else(|| Error::usage("the repository has no index file", "use a checkout"))?;
        // What a killed run may have left (never tracked: it is inside .git).
        let built = target.with_file_name("index.gitca-tmp");
        let _ = std::fs::remove_file(&built);
        let _ = std::fs::remove_file(target.with_file_name("index.gitca-tmp.lock"));
        rebuild(&index, added, removed, &built)?;
        Ok(Update::Rebuilt {
            index,
            built,
            target,
        })
    }

    /// Writes the index (in place), or puts the rebuilt one in its place, under git's
    /// `index.lock` as git would.
    pub fn install(self) -> Result<()> {
        match self {
            Update::InPlace(mut index) => Ok(index.write()?),
            Update::Rebuilt {
                mut index,
                built,
                target,
            } => {
                let lock = target.with_file_name("index.lock");
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&lock)
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => Error::usage(
                            format!("{} exists: another git process is running", lock.display()),
                            "wait for it, or remove the file if no git process is running",
                        ),
                        _ => Error::io("lock", &lock)(e),
                    })?;
                let renamed = std::fs::rename(&built, &target).map_err(Error::io("write", &target));
                let _ = std::fs::remove_file(&lock);
                renamed?;
                Ok(index.read(true)?)
            }
        }
    }
}

/// Writes to `out` an index of `current`'s entries, `added` in place of those of the same
/// path, without `removed`: merged in path order, so that every add is an append.
fn rebuild(
    current: &git2::Index,
    mut added: Vec<git2::IndexEntry>,
    removed: &HashSet<&[u8]>,
    out: &Path,
) -> Result<()> {
    // git's order: by path (then stage); the last of a path given twice wins.
    added.reverse();
    added.sort_by(|a, b| a.path.cmp(&b.path));
    added.dedup_by(|later, earlier| later.path == earlier.path);
    let replaced: HashSet<&[u8]> = added.iter().map(|e| e.path.as_slice()).collect();
    let mut fresh = git2::Index::open(out)?;
    let mut new = added.iter().peekable();
    for entry in current.iter() {
        while let Some(n) = new.next_if(|n| n.path < entry.path) {
            fresh.add(n)?;
        }
        if replaced.contains(entry.path.as_slice()) || removed.contains(entry.path.as_slice()) {
            continue;
        }
        fresh.add(&entry)?;
    }
    for n in new {
        fresh.add(n)?;
    }
    fresh.write()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A repository with files under a/ and z/, committed; then files under m/ (sorting
    /// between them) written, and an index file of their entries as `git add` makes them.
    fn scene(dir: &Path) -> PathBuf {
        git(dir, &["init", "-q"]);
        for d in ["a", "m", "z"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        for i in 0..300 {
            std::fs::write(dir.join(format!("a/{i}")), format!("a{i}\n")).unwrap();
            std::fs::write(dir.join(format!("z/{i}")), format!("z{i}\n")).unwrap();
        }
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "base"]);
        for i in 0..200 {
            std::fs::write(dir.join(format!("m/{i}")), format!("m{i}\n")).unwrap();
        }
        std::fs::write(dir.join("a/7"), "changed\n").unwrap();
        let scratch = dir.join(".git/scratch-index");
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["add", "m", "a/7"])
            .env("GIT_INDEX_FILE", &scratch)
            .status()
            .unwrap();
        assert!(out.success());
        scratch
    }

    /// Rebuilt or updated in place, the index git reads afterwards is the same: every path
    /// with its id, the entries kept with the metadata git recorded (nothing to hash again),
    /// the added ones with theirs, the removed ones gone.
    #[test]
    fn a_rebuilt_index_is_the_index_updated_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let scratch = scene(dir);
        std::fs::remove_file(dir.join("z/5")).unwrap();
        let before = std::fs::read(dir.join(".git/index")).unwrap();
        let mut seen = Vec::new();
        for rebuild_at in [usize::MAX, 0] {
            std::fs::write(dir.join(".git/index"), &before).unwrap();
            let removed: HashSet<&[u8]> = [b"z/5".as_slice()].into_iter().collect();
            let repo = git2::Repository::open(dir).unwrap();
            let added: Vec<git2::IndexEntry> =
                git2::Index::open(&scratch).unwrap().iter().collect();
            assert_eq!(added.len(), 201);
            let update = Update::prepare_with(&repo, added, &removed, rebuild_at).unwrap();
            assert_eq!(matches!(update, Update::Rebuilt { .. }), rebuild_at == 0);
            update.install().unwrap();
            assert!(!dir.join(".git/index.gitca-tmp").exists());
            assert!(!dir.join(".git/index.lock").exists());
            let listed = git(dir, &["ls-files", "--stage", "--debug"]);
            // The working tree matches the index, by metadata alone.
            assert_eq!(git(dir, &["diff", "--name-only"]), "");
            let staged = git(dir, &["diff", "--cached", "--name-status"]);
            assert_eq!(staged.lines().count(), 202, "{staged}");
            assert!(
                staged.contains("D\tz/5") && staged.contains("M\ta/7"),
                "{staged}"
            );
            assert!(staged.contains("A\tm/199"), "{staged}");
            assert_eq!(git(dir, &["ls-files"]).lines().count(), 799);
            seen.push(listed);
        }
        assert!(
            seen[0] == seen[1],
            "ids, modes and metadata alike, rebuilt or in place"
        );
    }
}
