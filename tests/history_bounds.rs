//! Bounded work on whatever history holds (issue 19, class 4; invariant 16). A pull request of
//! a few hundred KiB can add history that costs gigabytes to read: many commits, each setting
//! one of gitca's files to a different 31 MiB run of one byte (it packs into a few bytes), and
//! deep merges. The history here is built with the real `git fast-import`, merged as a pull
//! request would be, and every command that reads history must stay within bounds: peak
//! memory, the bytes of history it inflates, and the commits it walks (gitca reports the last
//! two with GITCA_TIMINGS).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// What `GITCA_TIMINGS` reports of one run: peak RSS (KiB), commits walked, history bytes read.
struct Cost {
    rss_kib: u64,
    commits: u64,
    bytes: u64,
}

fn cost(o: &std::process::Output) -> Cost {
    let err = stderr(o);
    let field = |prefix: &str| -> &str {
        err.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{err}"))
    };
    let rss = field("gitca peak RSS: ");
    let history = field("gitca history: ");
    let number = |s: &str| s.split_whitespace().next().unwrap().parse::<u64>().unwrap();
    let (commits, rest) = history.split_once(" commits walked, ").unwrap();
    Cost {
        rss_kib: number(rss),
        commits: number(commits),
        bytes: number(rest),
    }
}

/// Streams a fast-import script into `git fast-import` in `repo`: `commits` commits on
/// `branch` from `from`, commit i setting each of `paths` to 31 MiB of the byte `b'a' + i`, the
/// last one restoring every path as `from` has it (the pull request's net diff is empty).
fn hostile_commits(repo: &Path, branch: &str, from: &str, commits: usize, paths: &[&str]) {
    const SIZE: usize = 31 << 20;
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(repo)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap());
    let chunk = vec![0u8; 1 << 20];
    for i in 0..commits {
        writeln!(w, "commit refs/heads/{branch}").unwrap();
        writeln!(
            w,
            "committer Mallory <m@example.com> {} +0000",
            1_767_225_600 + i
        )
        .unwrap();
        writeln!(w, "data 9\ncommit {:>2}", i % 100).unwrap();
        if i == 0 {
            writeln!(w, "from {from}").unwrap();
        }
        for path in paths {
            if i + 1 == commits {
                let original = git(repo, &["rev-parse", &format!("{from}:{path}")]);
                writeln!(w, "M 100644 {} {path}", original.trim()).unwrap();
                continue;
            }
            writeln!(w, "M 100644 inline {path}\ndata {SIZE}").unwrap();
            let fill: Vec<u8> = chunk.iter().map(|_| b'a' + (i % 26) as u8).collect();
            for _ in 0..SIZE >> 20 {
                w.write_all(&fill).unwrap();
            }
            writeln!(w).unwrap();
        }
        writeln!(w).unwrap();
    }
    drop(w);
    assert!(child.wait().unwrap().success(), "git fast-import failed");
}

/// `rounds` merge commits on `branch`, each merging a side line of `depth` commits that each
/// change ledger.sig (small, distinct): a deep, wide history that a walk over every parent
/// would visit in full.
fn deep_merges(repo: &Path, branch: &str, from: &str, rounds: usize, depth: usize) {
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(repo)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::io::BufWriter::new(child.stdin.take().unwrap());
    let mut t = 1_767_300_000u64;
    let mut mark = 1;
    writeln!(w, "reset refs/heads/{branch}\nfrom {from}\n").unwrap();
    for r in 0..rounds {
        let mut side_tip = format!("refs/heads/{branch}");
        for d in 0..depth {
            t += 1;
            writeln!(w, "commit refs/heads/side\nmark :{mark}").unwrap();
            writeln!(
                w,
                "committer Mallory <m@example.com> {t} +0000\ndata 4\nside"
            )
            .unwrap();
            writeln!(w, "from {side_tip}").unwrap();
            let body = format!("# side {r} {d}\n");
            writeln!(w, "M 100644 inline ledger.sig\ndata {}\n{body}", body.len()).unwrap();
            side_tip = format!(":{mark}");
            mark += 1;
        }
        t += 1;
        writeln!(w, "commit refs/heads/{branch}").unwrap();
        writeln!(
            w,
            "committer Mallory <m@example.com> {t} +0000\ndata 5\nmerge"
        )
        .unwrap();
        writeln!(w, "from refs/heads/{branch}^0\nmerge {side_tip}").unwrap();
        // The merge keeps the branch's own files: the side lines leave no trace in the tree.
        let original = git(repo, &["rev-parse", &format!("{from}:ledger.sig")]);
        writeln!(w, "M 100644 {} ledger.sig\n", original.trim()).unwrap();
    }
    drop(w);
    assert!(child.wait().unwrap().success(), "git fast-import failed");
}

fn measured(ca: &Ca, args: &[&str], now: &str) -> (std::process::Output, Cost) {
    let mut c = ca.cmd(now);
    c.args(args).env("GITCA_TIMINGS", "1");
    let o = run(&mut c);
    let cost = cost(&o);
    (o, cost)
}

#[test]
fn history_added_cheaply_costs_nothing_to_read() {
    let (ca, _custodian) = offline_root_ca(T0);
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    ca.commit("onboard alice");
    ok(ca.reconcile(T0));
    let before = git(&ca.root, &["rev-parse", "HEAD"]).trim().to_string();
    let first_parent = |ca: &Ca| -> u64 {
        git(&ca.root, &["rev-list", "--count", "--first-parent", "HEAD"])
            .trim()
            .parse()
            .unwrap()
    };

    // 1. A pull request of 40 commits rewriting the seal and the root CRL with 31 MiB blobs,
    //    merged fast-forward (a rebase merge puts every one of them on main's first-parent line).
    hostile_commits(
        &ca.root,
        "pr",
        &before,
        40,
        &["ledger.sig", "crl/root.crl", "ca/ca.crt", "gitca.yaml"],
    );
    git(&ca.root, &["merge", "-q", "--ff-only", "pr"]);
    let packed: u64 = std::fs::read_dir(ca.path(".git/objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        packed < 4 << 20,
        "the hostile history should be cheap to push: {packed} bytes packed"
    );
    // 2. 300 merges, each of a side line of 30 commits (9,000 commits off the first-parent line).
    deep_merges(&ca.root, "main", "HEAD", 300, 30);
    git(&ca.root, &["reset", "-q", "--hard", "main"]);
    assert_eq!(git(&ca.root, &["status", "--porcelain"]), "");
    let depth = first_parent(&ca);
    // Every commit HEAD reaches is visited once (a merge's other parents too: a fast-forward
    // whose first parent is an old commit must not hide main's line), none twice.
    let reachable: u64 = git(&ca.root, &["rev-list", "--count", "HEAD"])
        .trim()
        .parse()
        .unwrap();
    assert!(reachable > 9_000 + depth);

    for (args, at) in [
        (vec!["check"], T0),
        (vec!["plan"], T0),
        (vec!["status"], T0),
        (vec!["publish"], T0),
    ] {
        let mut args = args.clone();
        let public = ca.tmp.path().join("public");
        let public = public.to_str().unwrap().to_string();
        if args == ["publish"] {
            args.push(&public);
        }
        let (o, c) = measured(&ca, &args, at);
        ok(o);
        assert!(
            c.rss_kib < 150 << 10,
            "{args:?}: peak RSS {} KiB",
            c.rss_kib
        );
        assert!(
            c.bytes < 4 << 20,
            "{args:?}: inflated {} bytes of history",
            c.bytes
        );
        assert!(
            c.commits <= reachable,
            "{args:?}: walked {} commits; HEAD reaches {reachable}",
            c.commits
        );
    }
    // Reconcile signs and commits: it too stays within bounds, and the CA goes on working.
    let later = days_after(T0, 5);
    let mut c = ca.cmd(&later);
    c.args(["reconcile", "--identity"])
        .arg(&ca.identity)
        .env("GITCA_TIMINGS", "1");
    let o = ok(run(&mut c));
    let cost = cost(&o);
    assert!(
        cost.rss_kib < 150 << 10,
        "reconcile: peak RSS {} KiB",
        cost.rss_kib
    );
    assert!(
        cost.bytes < 4 << 20,
        "reconcile: inflated {} bytes",
        cost.bytes
    );
    assert!(
        cost.commits <= reachable + 1,
        "reconcile walked {}",
        cost.commits
    );
    let crl = ca.path("crl/ca.crl");
    let o = ca.openssl(&["crl", "-in", crl.to_str().unwrap(), "-noout", "-crlnumber"]);
    assert!(ok(o).status.success());
}

/// A seal put back by a merge is still found to be older than the newest one, however many
/// commits follow the newest on the first-parent line.
#[test]
fn rollback_is_found_past_many_commits() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.p256_csr("bob");
    ca.identities("users:\n  - name: alice\n  - name: bob\n");
    ca.commit("two");
    ok(ca.reconcile(T0));
    let bob = ca.keep("certs/bob.crt", "bob.crt");
    let old = ca.head();
    ca.identities("users:\n  - name: alice\n");
    ca.commit("bob leaves");
    ok(ca.reconcile(&days_after(T0, 1)));
    // 5,000 commits on main, then the outputs of the older state put back.
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&ca.root)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::io::BufWriter::new(child.stdin.take().unwrap());
    for i in 0..5_000u64 {
        writeln!(
            w,
            "commit refs/heads/main\ncommitter M <m@x> {} +0000\ndata 1\nx",
            1_767_300_000 + i
        )
        .unwrap();
        if i == 0 {
            writeln!(w, "from {}", ca.head()).unwrap();
        }
        writeln!(w).unwrap();
    }
    drop(w);
    assert!(child.wait().unwrap().success());
    git(&ca.root, &["reset", "-q", "--hard", "main"]);
    git(
        &ca.root,
        &[
            "checkout",
            &old,
            "--",
            "ledger.tsv",
            "ledger.sig",
            "crl/ca.crl",
        ],
    );
    ca.commit("put back the old outputs");
    let later = days_after(T0, 6);
    let o = ca.reconcile(&later);
    assert_ne!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("put back to an older sealed state"),
        "{}",
        stdout(&o)
    );
    let v = ca.verify_crl(&bob, &later);
    assert!(!v.status.success(), "bob verifies again: {}", stdout(&v));
}

/// A tree far wider than any gitca writes (thousands of entries at the top) is cheap to push
/// and costly to read once per commit: at HEAD every command refuses it, naming where, and
/// leaves the repository as it was; once moved into a folder the CA goes on, the wide commit
/// in its history read as holding none of gitca's files.
#[test]
fn a_wide_tree_at_head_is_refused_and_skipped_in_history() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    ca.commit("onboard");
    ok(ca.reconcile(T0));
    for i in 0..3_000 {
        ca.write(&format!("pad-{i:05}-xxxxxxxxxxxxxxxxxxxxxxxx.txt"), "x\n");
    }
    ca.commit("wide");
    let wide = ca.head();
    let later = days_after(T0, 5);
    for args in [vec!["check"], vec!["plan"]] {
        let o = fails(run(ca.cmd(&later).args(&args)));
        let err = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            err.contains("top of the repository") && err.contains("KiB"),
            "{args:?}: {err}"
        );
    }
    let o = fails(ca.reconcile(&later));
    let err = format!("{}{}", stdout(&o), stderr(&o));
    assert!(err.contains("top of the repository"), "{err}");
    assert_eq!(ca.head(), wide, "nothing committed");
    std::fs::create_dir_all(ca.path("docs")).unwrap();
    for i in 0..3_000 {
        let name = format!("pad-{i:05}-xxxxxxxxxxxxxxxxxxxxxxxx.txt");
        std::fs::rename(ca.path(&name), ca.path(&format!("docs/{name}"))).unwrap();
    }
    git(&ca.root, &["add", "-A"]);
    let moved = git(&ca.root, &["ls-files", "docs"]).lines().count();
    assert_eq!(moved, 3_000);
    ca.commit("into a folder");
    ok(run(ca.cmd(&later).arg("check")));
    ok(ca.reconcile(&later));
    assert_ne!(ca.head(), wide);
}

/// A change that rewrites gitca's files many times over, its net diff empty, is refused by
/// `check --base` with what it adds: a few such changes merged would fill what every later
/// command reads of history. An honest change passes.
#[test]
fn check_base_refuses_a_change_that_fills_history() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    ca.commit("onboard alice");
    ok(ca.reconcile(T0));
    let base = ca.head();
    git(&ca.root, &["branch", "-q", "base"]);
    ca.p256_csr("bob");
    ca.identities("users:\n  - name: alice\n  - name: bob\n");
    ca.commit("onboard bob");
    ok(run(ca.cmd(T0).args(["check", "--base", "base"])));
    git(&ca.root, &["reset", "-q", "--hard", &base]);
    hostile_commits(&ca.root, "pr", &base, 6, &["ledger.sig", "gitca.yaml"]);
    git(&ca.root, &["reset", "-q", "--hard", "pr"]);
    assert_eq!(
        git(&ca.root, &["diff", "--stat", &base]),
        "",
        "net diff empty"
    );
    let o = fails(run(ca.cmd(T0).args(["check", "--base", "base"])));
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        out.contains("this change adds 155 MiB of versions of gitca's files")
            && out.contains("squash"),
        "{out}"
    );
}
