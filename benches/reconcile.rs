//! Benchmarks of the real `gitca` binary on generated CA repositories (see README,
//! "Performance"). Each measurement runs the release binary as a process, as CI does, and
//! records its peak RSS (gitca's own VmHWM), printed at the end; criterion never asserts
//! timings.
//!
//! The bulk-issue group also measures, in the same run, what its target is made of: the floor
//! (one P-256 CSR verification and one P-256 signature, in process, with the same aws-lc, times
//! 10,000, divided by the cores) and `git add` + `git commit` of the same new files by git
//! itself. The summary at the end prints the target, 1.5 × floor + that commit, next to the
//! measured median: a machine that is slower today is slower for both.
//!
//!   cargo bench                      # everything (about ten minutes on 2 cores)
//!   cargo bench -- noop              # a group (bulk_issue, noop, check, revoke, deploy)
//!   cargo bench -- bulk_issue/p256   # the P-256 bulk issue, its floor and git's commit
//!   GITCA_BENCH_DIR=/dev/shm cargo bench   # without the disk

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};

mod fixture;

use fixture::Fixture;

static PEAKS: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());
/// CPU time (user + system, every thread) per run, for the benchmarks that report it.
static CPU: Mutex<Vec<(String, Vec<Duration>)>> = Mutex::new(Vec::new());
/// Every measured duration per benchmark (per operation for the floor), for the summary.
static TIMES: Mutex<Vec<(String, Vec<Duration>)>> = Mutex::new(Vec::new());

fn record_time(name: &str, t: Duration) {
    let mut times = TIMES.lock().unwrap();
    match times.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => v.push(t),
        None => times.push((name.to_string(), vec![t])),
    }
}

fn median(name: &str) -> Option<Duration> {
    let times = TIMES.lock().unwrap();
    let (_, v) = times.iter().find(|(n, _)| n == name)?;
    let mut v = v.clone();
    v.sort();
    Some(v[v.len() / 2])
}

fn bench_dir() -> PathBuf {
    let base = std::env::var_os("GITCA_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!("gitca-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs gitca in `root`; returns the wall time and its peak RSS in KiB (gitca reports its
/// own VmHWM with GITCA_TIMINGS; a fork's rusage would count this process's memory too).
fn gitca(root: &Path, args: &[&str], f: &Fixture) -> (Duration, u64) {
    gitca_with(root, args, f, &[])
}

/// [`gitca`] with environment variables set (thread counts).
fn gitca_with(root: &Path, args: &[&str], f: &Fixture, env: &[(&str, String)]) -> (Duration, u64) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gitca"));
    c.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    c.arg("-C")
        .arg(root)
        .args(["--now", fixture::NOW, "-q"])
        .args(args)
        .env("GITCA_IDENTITY_FILE", &f.identity_file);
    let (t, kib, _) = timed(&mut c);
    (t, kib)
}

/// Runs a gitca command line; returns its wall time, peak RSS (KiB) and CPU time.
fn timed(c: &mut Command) -> (Duration, u64, Duration) {
    let start = Instant::now();
    let out = c
        .env("GITCA_TIMINGS", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gitca {c:?} failed: {err}");
    let kib = err
        .lines()
        .find_map(|l| l.strip_prefix("gitca peak RSS: "))
        .and_then(|v| v.trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0);
    let cpu = err
        .lines()
        .find_map(|l| l.strip_prefix("gitca cpu: "))
        .and_then(|v| v.trim_end_matches(" us").trim().parse().ok())
        .map_or(Duration::ZERO, Duration::from_micros);
    (elapsed, kib, cpu)
}

fn record_cpu(name: &str, t: Duration) {
    let mut cpu = CPU.lock().unwrap();
    match cpu.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => v.push(t),
        None => cpu.push((name.to_string(), vec![t])),
    }
}

fn record_peak(name: &str, kib: u64) {
    let mut p = PEAKS.lock().unwrap();
    match p.iter_mut().find(|(n, _)| n == name) {
        Some((_, k)) => *k = (*k).max(kib),
        None => p.push((name.to_string(), kib)),
    }
}

/// A copy of `template` in a temporary directory next to it (removed when the guard drops).
fn scratch_copy(template: &Fixture) -> (tempfile::TempDir, Fixture) {
    let dir = tempfile::tempdir_in(template.root.parent().unwrap().parent().unwrap()).unwrap();
    let copy = fixture::copy(template, dir.path());
    (dir, copy)
}

/// Runs `cmd` on a fresh copy of `template` per iteration; only the command is timed.
fn on_copies(
    c: &mut Criterion,
    group: &str,
    (func, n): (&str, usize),
    template: &Fixture,
    args: &[&str],
) {
    on_copies_with(c, group, (func, n), template, args, &[]);
}

/// [`on_copies`] with environment variables set for gitca.
fn on_copies_with(
    c: &mut Criterion,
    group: &str,
    (func, n): (&str, usize),
    template: &Fixture,
    args: &[&str],
    env: &[(&str, String)],
) {
    let name = format!("{group}/{func}/{n}");
    let id = BenchmarkId::new(func, n);
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_millis(1));
    g.bench_with_input(id, &(), |b, _| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_dir, copy) = scratch_copy(template);
                let (t, rss) = gitca_with(&copy.root, args, template, env);
                record_peak(&name, rss);
                record_time(&name, t);
                total += t;
            }
            total
        })
    });
    g.finish();
}

/// Runs `cmd` repeatedly on the same repository (for commands that change nothing).
fn in_place(c: &mut Criterion, group: &str, (func, n): (&str, usize), f: &Fixture, args: &[&str]) {
    let name = format!("{group}/{func}/{n}");
    let id = BenchmarkId::new(func, n);
    let mut g = c.benchmark_group(group);
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_with_input(id, &(), |b, _| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (t, rss) = gitca(&f.root, args, f);
                record_peak(&name, rss);
                record_time(&name, t);
                total += t;
            }
            total
        })
    });
    g.finish();
}

/// The cryptographic floor, per operation, in this process: verifying one of the fixture's
/// P-256 CSRs exactly as reconcile does (PEM, DER, signature, key policy) and one ECDSA P-256
/// signature over a certificate-sized message with aws-lc.
fn floor(c: &mut Criterion, template: &Fixture) {
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let csr = std::fs::read(template.root.join("csr/user000000.csr")).unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let tbs = vec![0x5a_u8; 420];
    let mut g = c.benchmark_group("bulk_issue");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("p256_floor_verify_csr", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(gitca::reconcile::policy::verify_csr(&csr).unwrap());
            }
            let t = start.elapsed();
            record_time("floor/verify", t / iters as u32);
            t
        })
    });
    g.bench_function("p256_floor_sign", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(key.sign(&rng, &tbs).unwrap());
            }
            let t = start.elapsed();
            record_time("floor/sign", t / iters as u32);
            t
        })
    });
    g.finish();
}

/// git's own `git add` + `git commit` of the files a 10,000-identity reconcile writes (on a
/// copy where `gitca reconcile --no-commit` wrote them, untimed).
fn git_commit(c: &mut Criterion, template: &Fixture, n: usize) {
    let name = format!("bulk_issue/p256_git_commit/{n}");
    let mut g = c.benchmark_group("bulk_issue");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_millis(1));
    g.bench_with_input(BenchmarkId::new("p256_git_commit", n), &(), |b, _| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_dir, copy) = scratch_copy(template);
                gitca(&copy.root, &["reconcile", "--no-commit"], template);
                let start = Instant::now();
                for args in [
                    &["add", "--", "certs", "crl", "ledger.tsv"][..],
                    &["commit", "-q", "-m", "issue"][..],
                ] {
                    let st = Command::new("git")
                        .args(["-c", "user.name=bench", "-c", "user.email=b@example.com"])
                        .args(args)
                        .current_dir(&copy.root)
                        .env("GIT_CONFIG_GLOBAL", "/dev/null")
                        .status()
                        .unwrap();
                    assert!(st.success());
                }
                let t = start.elapsed();
                record_time(&name, t);
                total += t;
            }
            total
        })
    });
    g.finish();
}

/// A relying server's side (issue 16): `gitca deploy crl` installing a 100,000-entry CRL from a
/// published tree (fetch, verify against the pinned CA, no-rollback and currency checks, write
/// atomically), and a poll over HTTP that finds nothing new (a conditional GET answered 304 by
/// Python's http.server: nothing parsed, nothing written).
fn deploy(c: &mut Criterion, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let f = fixture::build(dir, 1_000, gitca::authority::keygen::KeyType::P256);
    fixture::reconcile(&f);
    fixture::add_revoked_history(&f, 99_000);
    fixture::offboard(&f, 1_000);
    fixture::reconcile(&f);
    let public = dir.join("public");
    gitca(&f.root, &["publish", public.to_str().unwrap()], &f);
    let pinned = f.root.join("ca/ca.crt");
    let deploy_to = |from: &str, out: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gitca"));
        c.args([
            "--now",
            fixture::NOW,
            "-q",
            "deploy",
            "crl",
            "--from",
            from,
            "--ca",
        ])
        .arg(&pinned)
        .arg("--out")
        .arg(out);
        c
    };
    let run = |c: &mut Criterion, name: &str, mut setup: Box<dyn FnMut() -> Command>| {
        let full = format!("deploy/{name}");
        let mut g = c.benchmark_group("deploy");
        g.sample_size(10).measurement_time(Duration::from_secs(10));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut cmd = setup();
                    let (t, kib, cpu) = timed(&mut cmd);
                    record_peak(&full, kib);
                    record_cpu(&full, cpu);
                    record_time(&full, t);
                    total += t;
                }
                total
            })
        });
        g.finish();
    };

    let scratch = dir.join("installs");
    let mut n = 0;
    let public_dir = public.display().to_string();
    run(
        c,
        "install_crl_100000",
        Box::new(move || {
            n += 1;
            let out = scratch.join(n.to_string()).join("ca.crl");
            std::fs::create_dir_all(out.parent().unwrap()).unwrap();
            deploy_to(&public_dir, &out)
        }),
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(&public)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}");
    let installed = dir.join("polled/ca.crl");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    timed(&mut deploy_to(&url, &installed));
    let first = std::fs::metadata(&installed).unwrap().modified().unwrap();
    run(
        c,
        "poll_http_nothing_new",
        Box::new(move || deploy_to(&url, &installed)),
    );
    let _ = server.kill();
    let _ = server.wait();
    let after = std::fs::metadata(dir.join("polled/ca.crl"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(first, after, "a poll that finds nothing new writes nothing");
}

/// The bulk-issue target next to the measurement, from numbers taken in this run.
fn summary() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let (Some(verify), Some(sign)) = (median("floor/verify"), median("floor/sign")) else {
        return;
    };
    eprintln!(
        "\nfloor per operation: verify a P-256 CSR {:.1} µs, sign with P-256 {:.1} µs; {cores} cores",
        verify.as_secs_f64() * 1e6,
        sign.as_secs_f64() * 1e6
    );
    for n in [1_000usize, 10_000] {
        let (Some(measured), Some(commit)) = (
            median(&format!("bulk_issue/p256/{n}")),
            median(&format!("bulk_issue/p256_git_commit/{n}")),
        ) else {
            continue;
        };
        let floor = n as f64 * (verify + sign).as_secs_f64() / cores;
        let target = 1.5 * floor + commit.as_secs_f64();
        eprintln!(
            "bulk issue {n}, P-256: floor {floor:.3} s, git add+commit {:.3} s, target 1.5 × floor + commit = {target:.3} s; measured median {:.3} s ({})",
            commit.as_secs_f64(),
            measured.as_secs_f64(),
            if measured.as_secs_f64() <= target { "met" } else { "NOT met" }
        );
    }
}

fn benches(c: &mut Criterion) {
    let dir = bench_dir();
    // criterion's FILTER argument also decides which fixtures are worth building.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |g: &str| {
        filter
            .as_deref()
            .is_none_or(|f| g.contains(f) || f.contains(g))
    };

    if wanted("bulk_issue") {
        for (kt, key) in [
            ("p256", gitca::authority::keygen::KeyType::P256),
            ("rsa4096", gitca::authority::keygen::KeyType::Rsa4096),
        ] {
            if !wanted(&format!("bulk_issue/{kt}")) {
                continue;
            }
            for n in [1_000usize, 10_000] {
                let d = dir.join(format!("issue-{kt}-{n}"));
                std::fs::create_dir_all(&d).unwrap();
                let f = fixture::build(&d, n, key);
                if key == gitca::authority::keygen::KeyType::P256 {
                    if n == 1_000 {
                        floor(c, &f);
                    }
                    git_commit(c, &f, n);
                }
                on_copies(c, "bulk_issue", (kt, n), &f, &["reconcile"]);
            }
        }
    }
    if wanted("threads") {
        // Wall time must never grow with threads (issue 25): bulk issue of the same 10,000
        // CSRs at 1, 2, 4, … threads up to this machine's cores (verifying and signing use
        // RAYON_NUM_THREADS; file-system work keeps its own pool, GITCA_FS_THREADS).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let d = dir.join("threads-10000");
        std::fs::create_dir_all(&d).unwrap();
        let f = fixture::build(&d, 10_000, gitca::authority::keygen::KeyType::P256);
        for t in (0..8).map(|i| 1usize << i).take_while(|t| *t <= cores) {
            let env = [("RAYON_NUM_THREADS", t.to_string())];
            on_copies_with(c, "threads", ("p256_10000", t), &f, &["reconcile"], &env);
        }
    }
    if wanted("per_file") {
        // The layout `gitca request` writes: one identities/NAME.yaml per person.
        let d = dir.join("per-file-10000");
        std::fs::create_dir_all(&d).unwrap();
        let f = fixture::build_layout(
            &d,
            10_000,
            gitca::authority::keygen::KeyType::P256,
            fixture::Layout::PerFile,
        );
        on_copies(c, "per_file", ("bulk_issue", 10_000), &f, &["reconcile"]);
        fixture::reconcile(&f);
        in_place(c, "per_file", ("noop", 10_000), &f, &["reconcile"]);
    }
    if wanted("noop") || wanted("check") {
        let d = dir.join("noop-10000");
        std::fs::create_dir_all(&d).unwrap();
        let f = fixture::build(&d, 10_000, gitca::authority::keygen::KeyType::P256);
        fixture::reconcile(&f);
        in_place(c, "noop", ("reconcile", 10_000), &f, &["reconcile"]);
        in_place(c, "noop", ("plan", 10_000), &f, &["plan"]);
        in_place(c, "check", ("check", 10_000), &f, &["check"]);
    }
    if wanted("revoke") {
        let d = dir.join("revoke");
        std::fs::create_dir_all(&d).unwrap();
        let f = fixture::build(&d, 1_000, gitca::authority::keygen::KeyType::P256);
        fixture::reconcile(&f);
        fixture::add_revoked_history(&f, 99_000);
        fixture::offboard(&f, 1_000);
        on_copies(
            c,
            "revoke",
            ("1000_of_100000_crl_100000", 100_000),
            &f,
            &["reconcile"],
        );
    }

    if wanted("deploy") {
        deploy(c, &dir.join("deploy"));
    }

    summary();
    eprintln!("\nCPU time per run (median, user + system):");
    for (name, v) in CPU.lock().unwrap().iter() {
        let mut v = v.clone();
        v.sort();
        eprintln!(
            "  {name:<40} {:>9.1} ms",
            v[v.len() / 2].as_secs_f64() * 1e3
        );
    }
    eprintln!("\npeak RSS per benchmark (largest of its runs):");
    for (name, kib) in PEAKS.lock().unwrap().iter() {
        eprintln!("  {name:<40} {:>7.1} MiB", *kib as f64 / 1024.0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo test --all-targets` runs benches with --test: building 10,000-identity fixtures is
    // not a test, and clippy already proves this file compiles.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
