//! A CA is trusted because it never does the wrong thing: killed reconciles (failpoints compiled
//! into test builds), two reconciles at once, hostile sizes and YAML bombs.

mod common;

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;

use common::*;

/// 12 identities, 4 of them issued, then a change that issues 8 and revokes 2.
fn busy_ca() -> Ca {
    let ca = Ca::new();
    for i in 0..12 {
        ca.p256_csr(&format!("u{i:02}"));
    }
    let yaml = |range: std::ops::Range<usize>| {
        let mut y = String::from("users:\n");
        for i in range {
            y.push_str(&format!("  - name: u{i:02}\n"));
        }
        y
    };
    ca.identities(&yaml(0..4));
    ca.commit("first four");
    ok(ca.reconcile(T0));
    ca.identities(&yaml(2..12)); // u00 and u01 leave, u04..u11 arrive
    ca.commit("change");
    ca
}

/// The facts that must hold of any end state: check passes, nothing pending, no serial twice,
/// the departed are on the CRL, and everyone declared verifies.
fn assert_converged(ca: &Ca, now: &str) -> (usize, String) {
    ok(run(ca.cmd(now).arg("check")));
    let o = run(ca.cmd(now).args(["plan", "--detailed-exitcode"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let rows = ca.ledger_rows();
    let serials: HashSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(serials.len(), rows.len(), "no serial issued twice");
    let revoked: Vec<&Vec<String>> = rows.iter().filter(|r| r[4] == "revoked").collect();
    assert_eq!(
        revoked.len(),
        2,
        "both departures revoked, no revocation lost"
    );
    let crl = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-noout",
        "-text",
    ])));
    for r in &revoked {
        assert!(
            crl.to_lowercase().contains(&r[0][..8]),
            "{} on the CRL",
            r[0]
        );
    }
    for i in 2..12 {
        ok(ca.verify_crl(&ca.path(&format!("certs/u{i:02}.crt")), now));
    }
    assert_eq!(ca.status(), "", "a clean tree");
    let crl_number = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-noout",
        "-crlnumber",
    ])));
    (rows.len(), crl_number)
}

#[test]
fn killed_reconciles_leave_head_whole_and_a_rerun_converges() {
    let now = days_after(T0, 1);
    // The uninterrupted run, for the end state to compare with.
    let reference = busy_ca();
    ok(reference.reconcile(&now));
    let expected = assert_converged(&reference, &now);

    for point in [
        "after-unlock",
        "mid-signing",
        "mid-write",
        "before-commit",
        "after-objects",
        "after-index",
    ] {
        let ca = busy_ca();
        let head = ca.head();
        let o = run(ca
            .cmd(&now)
            .arg("reconcile")
            .arg("--identity")
            .arg(&ca.identity)
            .env("GITCA_FAILPOINT", point));
        assert_eq!(
            o.status.signal(),
            Some(9),
            "{point}: killed by the failpoint:\n{}",
            stderr(&o)
        );
        // HEAD is unchanged (the branch moves last), and the repository is sound.
        assert_eq!(ca.head(), head, "{point}: HEAD moved");
        ok(tool("git", &["fsck", "--no-progress"], &ca.root));
        // No tracked file is half-written: every certificate file there is whole PEM.
        for e in std::fs::read_dir(ca.path("certs")).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".crt") {
                let text = std::fs::read_to_string(e.path()).unwrap();
                assert_eq!(
                    text.matches("-----END CERTIFICATE-----").count(),
                    2,
                    "{point}: {name} is whole"
                );
            }
        }
        // The rerun reaches the same end state as the uninterrupted run.
        let o = ok(ca.reconcile(&now));
        if !["after-unlock", "mid-signing"].contains(&point) {
            assert!(
                stdout(&o).contains("Restored"),
                "{point}: leftovers restored:\n{}",
                stdout(&o)
            );
        }
        assert_eq!(assert_converged(&ca, &now), expected, "{point}");
    }
}

#[test]
fn two_reconciles_at_once_in_one_clone_never_corrupt_the_ledger() {
    let ca = busy_ca();
    let now = days_after(T0, 1);
    let spawn = || {
        ca.cmd(&now)
            .arg("reconcile")
            .arg("--identity")
            .arg(&ca.identity)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let outcomes = [&a, &b];
    assert!(
        outcomes.iter().any(|o| o.status.success()),
        "one of them ran"
    );
    for o in outcomes {
        if !o.status.success() {
            assert!(
                stderr(o).contains("holds the lock"),
                "the other waits or refuses: {}",
                stderr(o)
            );
        }
    }
    // Whatever the interleaving, a further run converges to one sound state.
    ok(ca.reconcile(&now));
    assert_converged(&ca, &now);
    let commits = git(&ca.root, &["log", "--format=%s"]);
    assert_eq!(
        commits.matches("gitca: reconcile").count(),
        2,
        "one reconcile commit for the change:\n{commits}"
    );
}

#[test]
fn oversized_inputs_get_a_clear_error() {
    let ca = Ca::new();
    // A CSR of 100 KiB.
    ca.write("csr/big.csr", &"A".repeat(100 * 1024));
    ca.identities("users:\n  - name: big\n");
    ca.commit("big csr");
    let o = ca.reconcile(T0);
    assert_eq!(
        o.status.code(),
        Some(3),
        "the identity is held, nothing else to do"
    );
    assert!(
        stderr(&o).contains("102400 bytes, more than the 65536 gitca reads"),
        "{}",
        stderr(&o)
    );
    // An identity file over the 16 MiB gitca reads of one file.
    let mut y = String::from("users:\n");
    while y.len() <= 16 << 20 {
        y.push_str("  # padding padding padding padding padding padding padding padding padding\n");
    }
    ca.identities(&y);
    ca.commit("big yaml");
    let o = ca.reconcile(T0);
    assert_eq!(
        o.status.code(),
        Some(3),
        "removals are suspended, nothing else to do"
    );
    assert!(
        stderr(&o).contains(&format!(
            "identities/people.yaml is {} bytes, more than the 16777216 gitca reads",
            y.len()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn yaml_bombs_end_in_a_budget_error() {
    let ca = Ca::new();
    // Billion laughs: nine levels of nine aliases each.
    let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        y.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            [prev.as_str(); 9].join(", ")
        ));
    }
    y.push_str("users: *a9\n");
    ca.identities(&y);
    ca.commit("bomb");
    let start = std::time::Instant::now();
    let o = fails(run(ca.cmd(T0).arg("check")));
    assert!(start.elapsed().as_secs() < 20, "refused quickly");
    assert!(
        stdout(&o).contains("identities/people.yaml"),
        "{}",
        stdout(&o)
    );
    // Deep nesting.
    let deep = format!("users: {}{}\n", "[".repeat(5000), "]".repeat(5000));
    ca.identities(&deep);
    ca.commit("deep");
    let o = fails(run(ca.cmd(T0).arg("check")));
    assert!(
        stdout(&o).contains("identities/people.yaml"),
        "{}",
        stdout(&o)
    );
}

/// Mutation fuzzing, in the test suite: thousands of corrupted CSRs, ledgers and identity files
/// must each end in an error or a valid result, never a panic.
#[test]
fn corrupted_inputs_never_panic() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n    email: alice@example.com\n    groups: [push]\n");
    ca.commit("alice");
    ok(ca.reconcile(T0));
    let csr = std::fs::read(ca.path("csr/alice.csr")).unwrap();
    let der = pem::parse(&csr).unwrap().contents().to_vec();
    let ledger = ca.read("ledger.tsv");
    let yaml = ca.read("identities/people.yaml");
    let mut rng: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..3000 {
        let mut d = der.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % d.len();
            d[i] = next() as u8;
        }
        let text = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", d));
        let _ = gitca::reconcile::policy::verify_csr(text.as_bytes());
        let mut l = ledger.clone().into_bytes();
        let i = (next() as usize) % l.len();
        l[i] = b"\t-,0aZ\n"[(next() % 7) as usize];
        // Not only the parser: the whole reconcile path (plan, revocations, CRL, render).
        gitca::reconcile::fuzzing::ledger_through_reconcile(&String::from_utf8_lossy(&l));
        let mut y = yaml.clone().into_bytes();
        let i = (next() as usize) % y.len();
        y[i] = b" :-[]{}&*!|>'\"#\n"[(next() % 16) as usize];
        let _ = gitca::repository::config::Config::parse(&String::from_utf8_lossy(&y));
        let _: Result<serde_json::Value, _> = serde_saphyr::from_str(&String::from_utf8_lossy(&y));
    }
}

/// The peak resident memory a run reports with GITCA_TIMINGS, in KiB.
fn peak_rss_kib(o: &std::process::Output) -> u64 {
    stderr(o)
        .lines()
        .find_map(|l| l.strip_prefix("gitca peak RSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .expect("peak RSS printed")
}

/// Issue 12's reproduction: thousands of entries whose CSRs are missing, in several files. Each
/// diagnostic used to copy its whole file (4,000 entries: 299 MB; five files of 8,000 exhausted
/// 24 GB). Diagnostics now share the text and only the first are kept and rendered.
#[test]
fn thousands_of_broken_entries_stay_within_memory() {
    let ca = Ca::new();
    for f in 0..5 {
        let mut y = String::from("users:\n");
        for i in 0..8000 {
            y.push_str(&format!(
                "  - name: f{f}u{i:05}\n    email: f{f}u{i}@example.com\n"
            ));
        }
        ca.write(&format!("identities/f{f}.yaml"), &y);
    }
    ca.commit("40,000 entries, no CSR");
    for args in [
        vec!["check"],
        vec!["plan"],
        vec!["reconcile", "--identity", ca.identity.to_str().unwrap()],
    ] {
        let o = run(ca.cmd(T0).args(&args).env("GITCA_TIMINGS", "1"));
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        let rss = peak_rss_kib(&o);
        assert!(rss < 256 * 1024, "{args:?}: peak {rss} KiB");
        let shown = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            shown.contains("more"),
            "{args:?}: the rest is counted, not printed"
        );
        assert!(
            shown.len() < 2 << 20,
            "{args:?}: {} bytes of output",
            shown.len()
        );
    }
}
