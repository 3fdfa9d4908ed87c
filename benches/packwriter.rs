//! How `reconcile`'s commit writes its blobs (src/repo.rs, `CaRepo::write_blobs`: one pack
//! and its version 2 index, both written by gitca) against what libgit2 offers for the same
//! job, on N distinct certificate-sized blobs written into a fresh repository
//! (docs/decisions.md, "The pack writer"). gitoxide's writer is measured by
//! benches/packwriter-gix, a crate of its own, with the same blobs and the same rows.
//!
//! Each run is a process of its own (this binary, re-run), so its peak RSS (VmHWM) is the
//! writer's and not an earlier one's; the blobs are made before the clock starts and their
//! memory is printed apart. The first run of each writer and size is checked by git itself
//! (`fsck --strict`, every id, a sample of contents). Never asserts timings.
//!
//!   cargo bench --bench packwriter                  # N = 10,000 and 100,000, 3 runs each
//!   cargo bench --bench packwriter -- 10000         # one size
//!   cargo bench --bench packwriter -- 10000 loose   # one size, one writer
//!   GITCA_BENCH_DIR=/dev/shm cargo bench --bench packwriter   # without the disk

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod packwriter_common;

use packwriter_common as common;

const RUNS: usize = 3;

/// The writers, by the name each row prints.
const WRITERS: &[(&str, &str)] = &[
    ("gitca", "gitca's pack and index (CaRepo::write_blobs)"),
    (
        "libgit2-indexer",
        "gitca's pack stream, indexed by libgit2 (Odb::packwriter)",
    ),
    (
        "libgit2-loose",
        "libgit2 Odb::write, one loose object per blob",
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(spec) = args.iter().find_map(|a| a.strip_prefix("--child=")) {
        let (writer, n) = spec.split_once(':').unwrap();
        child(
            writer,
            n.parse().unwrap(),
            args.iter().any(|a| a == "--verify"),
        );
        return;
    }
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    let only: Vec<&str> = WRITERS
        .iter()
        .map(|(w, _)| *w)
        .filter(|w| args.iter().any(|a| w.contains(a.as_str())))
        .collect();
    for (writer, what) in WRITERS {
        if only.is_empty() || only.contains(writer) {
            println!("{writer:<18} {what}");
        }
    }
    for n in sizes {
        for (writer, _) in WRITERS {
            if !only.is_empty() && !only.contains(writer) {
                continue;
            }
            measure(writer, n);
        }
    }
}

/// Runs `writer` on `n` blobs RUNS times, each in a process of its own; prints the median.
fn measure(writer: &str, n: usize) {
    let mut times = Vec::new();
    let (mut base, mut peak) = (0, 0);
    for run in 0..RUNS {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.arg(format!("--child={writer}:{n}"));
        if run == 0 {
            cmd.arg("--verify");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{writer} {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let f: Vec<u64> = text
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        times.push(Duration::from_micros(f[0]));
        base = base.max(f[1]);
        peak = peak.max(f[2]);
    }
    times.sort();
    println!(
        "{writer:<18} {n:>7} {:>9.3} s (min {:.3}, max {:.3})  peak RSS {peak:>7} KiB (+{} KiB over the blobs)",
        times[RUNS / 2].as_secs_f64(),
        times[0].as_secs_f64(),
        times[RUNS - 1].as_secs_f64(),
        peak - base,
    );
}

/// One measured write of `n` blobs into a fresh repository; prints the time in µs, the peak RSS
/// before the write and after it, in KiB.
fn child(writer: &str, n: usize, verify: bool) {
    let base_dir = std::env::var_os("GITCA_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(base_dir).unwrap();
    let dir = tmp.path();
    common::git_init(dir);
    // CaRepo::open wants a CA's configuration file; write_blobs never reads it.
    std::fs::write(dir.join("gitca.yaml"), "").unwrap();
    let blobs: Vec<Vec<u8>> = (0..n as u64).map(common::cert_like).collect();
    let refs: Vec<&[u8]> = blobs.iter().map(|b| b.as_slice()).collect();
    let repo = gitca::repository::git::CaRepo::open(dir).unwrap();
    let before = common::peak_rss_kib();
    let start = Instant::now();
    let ids = match writer {
        "gitca" => repo.write_blobs(&refs).unwrap(),
        "libgit2-indexer" => indexer(&repo.git, &refs),
        "libgit2-loose" => {
            let odb = repo.git.odb().unwrap();
            refs.iter()
                .map(|b| odb.write(git2::ObjectType::Blob, b).unwrap())
                .collect()
        }
        other => panic!("no writer {other}"),
    };
    let elapsed = start.elapsed();
    let after = common::peak_rss_kib();
    if verify {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        common::verify(dir, &ids, &blobs);
        check_layout(dir, writer);
    }
    println!("{} {} {}", elapsed.as_micros(), before, after);
}

/// The same pack stream as gitca writes (ids hashed in parallel, as it does), handed to
/// libgit2's indexer, which inflates and hashes every entry again and writes the index.
fn indexer(git: &git2::Repository, blobs: &[&[u8]]) -> Vec<git2::Oid> {
    use rayon::prelude::*;
    use std::io::Write as _;
    let ids: Vec<[u8; 20]> = blobs.par_iter().map(|b| blob_id(b)).collect();
    let entries: Vec<([u8; 20], &[u8])> = ids.iter().copied().zip(blobs.iter().copied()).collect();
    let mut stream = Vec::new();
    gitca::repository::git::write_pack(&mut stream, &entries).unwrap();
    let odb = git.odb().unwrap();
    let mut w = odb.packwriter().unwrap();
    w.write_all(&stream).unwrap();
    w.commit().unwrap();
    ids.iter()
        .map(|id| git2::Oid::from_bytes(id).unwrap())
        .collect()
}

fn blob_id(data: &[u8]) -> [u8; 20] {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    h.finalize().into()
}

/// The objects are where the writer says: one pack and no loose object, or no pack.
fn check_layout(dir: &Path, writer: &str) {
    let out = Command::new("git")
        .args(["count-objects", "-v"])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    if writer == "libgit2-loose" {
        assert_eq!(field("packs:"), 0, "{text}");
    } else {
        assert_eq!((field("count:"), field("packs:")), (0, 1), "{text}");
    }
}
