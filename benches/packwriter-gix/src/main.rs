//! gitoxide's pack writer on the blobs of benches/packwriter.rs: `gix_pack`'s pack stream
//! (`data::output::bytes::FromEntriesIter`, entries deflated at `BEST_SPEED`), then
//! `Bundle::write_to_directory` (gitoxide's indexer: pack and index into `objects/pack`).
//! Prints the same rows as benches/packwriter.rs; each run is a process of its own, so its
//! peak RSS is its own.
//!
//!   cargo run --release --manifest-path benches/packwriter-gix/Cargo.toml -- 10000 100000

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

#[path = "../../packwriter_common.rs"]
mod common;

const RUNS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(n) = args.first().and_then(|a| a.strip_prefix("--child=")) {
        child(n.parse().unwrap(), args.iter().any(|a| a == "--verify"));
        return;
    }
    let sizes: Vec<usize> = match args
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect::<Vec<_>>()
    {
        v if v.is_empty() => vec![10_000, 100_000],
        v => v,
    };
    for n in sizes {
        let mut times = Vec::new();
        let mut peak = 0;
        let mut base = 0;
        for run in 0..RUNS {
            let mut cmd = Command::new(std::env::current_exe().unwrap());
            cmd.arg(format!("--child={n}"));
            if run == 0 {
                cmd.arg("--verify");
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
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
            "{:<18} {:>7} {:>9.3} s (min {:.3}, max {:.3})  peak RSS {:>7} KiB (+{} KiB over the blobs)",
            "gix-pack",
            n,
            times[RUNS / 2].as_secs_f64(),
            times[0].as_secs_f64(),
            times[RUNS - 1].as_secs_f64(),
            peak,
            peak - base,
        );
    }
}

/// One measured write of `n` blobs into a fresh repository; prints the time in µs, the peak RSS
/// before the write and after it, in KiB.
fn child(n: usize, verify: bool) {
    let base_dir = std::env::var_os("GITCA_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(base_dir).unwrap();
    common::git_init(tmp.path());
    let blobs: Vec<Vec<u8>> = (0..n as u64).map(common::cert_like).collect();
    let before = common::peak_rss_kib();
    let start = Instant::now();
    let ids = write(&tmp.path().join(".git/objects/pack"), &blobs);
    let elapsed = start.elapsed();
    let after = common::peak_rss_kib();
    if verify {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        common::verify(tmp.path(), &ids, &blobs);
    }
    println!("{} {} {}", elapsed.as_micros(), before, after);
}

fn write(pack_dir: &std::path::Path, blobs: &[Vec<u8>]) -> Vec<gix_hash::ObjectId> {
    let kind = gix_hash::Kind::Sha1;
    let mut ids = Vec::with_capacity(blobs.len());
    let entries: Vec<gix_pack::data::output::Entry> = blobs
        .iter()
        .map(|data| {
            let id = gix_object::compute_hash(kind, gix_object::Kind::Blob, data).unwrap();
            ids.push(id);
            let count = gix_pack::data::output::Count::from_data(id, None);
            let obj = gix_object::Data::new(data, gix_object::Kind::Blob, kind);
            gix_pack::data::output::Entry::from_data(
                &count,
                &obj,
                gix_zlib::Compression::BEST_SPEED,
            )
            .unwrap()
        })
        .collect();
    let num = entries.len() as u32;
    let mut stream = Vec::new();
    let mut pack = gix_pack::data::output::bytes::FromEntriesIter::new(
        std::iter::once(Ok(entries)),
        &mut stream,
        num,
        gix_pack::data::Version::V2,
        kind,
    );
    for written in &mut pack {
        written.unwrap();
    }
    drop(pack);
    let interrupt = AtomicBool::new(false);
    gix_pack::Bundle::write_to_directory(
        &mut stream.as_slice(),
        Some(pack_dir),
        &mut gix_utils::progress::Discard,
        &interrupt,
        None::<gix_object::find::Never>,
        kind,
        gix_pack::bundle::write::Options::default(),
    )
    .unwrap();
    ids
}
