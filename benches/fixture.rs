//! Builds CA repositories of a given size for the benchmarks and the side-by-side script:
//! N identities with real P-256 CSRs, committed, optionally reconciled, optionally with a large
//! population of revoked certificates in the ledger. In-process and parallel, so a 10,000
//! identity repository takes seconds.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use gitca::authority::custody::{Custody, KeySource};
use gitca::authority::keygen::KeyType;
use gitca::authority::revocation::RevocationReason;
use gitca::repository::ledger::{Ledger, Record, State};

pub const NOW: &str = "2026-01-01T00:00:00Z";

pub fn now() -> time::OffsetDateTime {
    gitca::time::parse_time(NOW).unwrap()
}

pub struct Fixture {
    pub root: PathBuf,
    pub identity_file: PathBuf,
}

impl Fixture {
    pub fn key_source(&self) -> KeySource {
        KeySource {
            identity_file: Some(self.identity_file.clone()),
            ..KeySource::default()
        }
    }
}

fn git_commit_all(root: &Path, msg: &str) {
    let st = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "add",
            "-A",
        ])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(st.success());
    let st = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "commit",
            "-q",
            "-m",
            msg,
        ])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A CA with `n` declared users, each with a fresh P-256 CSR, committed but not reconciled.
pub fn build(dir: &Path, n: usize, ca_key: KeyType) -> Fixture {
    build_layout(dir, n, ca_key, Layout::OneFile)
}

/// How the fixture declares its users.
#[derive(Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Layout {
    /// All in identities/people.yaml.
    OneFile,
    /// identities/NAME.yaml each, as `gitca request` writes them.
    PerFile,
}

/// [`build`], declaring the users as `layout` says.
pub fn build_layout(dir: &Path, n: usize, ca_key: KeyType, layout: Layout) -> Fixture {
    let identity = age::x25519::Identity::generate();
    let identity_file = dir.join("bench.agekey");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(
            &identity_file,
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
    }
    let root = dir.join("ca");
    gitca::authority::init::run_init(
        gitca::authority::init::InitOptions {
            dir: root.clone(),
            name: "Bench CA".into(),
            organization: "Bench".into(),
            key_type: ca_key,
            validity: gitca::repository::config::Dur::parse("10y").unwrap(),
            custody: Custody::Recipients(vec![identity.to_public().to_string()]),
            now: now(),
            offline_root: None,
            token: None,
        },
        &mut std::io::sink(),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("csr")).unwrap();
    let csrs: Vec<(String, String)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let name = format!("user{i:06}");
            let key = rcgen::KeyPair::generate().unwrap();
            let mut p = rcgen::CertificateParams::default();
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name
                .push(rcgen::DnType::CommonName, name.as_str());
            (name, p.serialize_request(&key).unwrap().pem().unwrap())
        })
        .collect();
    let mut yaml = String::with_capacity(n * 64);
    yaml.push_str("users:\n");
    for (name, pem) in &csrs {
        std::fs::write(root.join(format!("csr/{name}.csr")), pem).unwrap();
        let entry = format!("  - name: {name}\n    csr: csr/{name}.csr\n    groups: [push]\n");
        match layout {
            Layout::OneFile => yaml.push_str(&entry),
            Layout::PerFile => std::fs::write(
                root.join(format!("identities/{name}.yaml")),
                format!("users:\n{entry}"),
            )
            .unwrap(),
        }
    }
    if layout == Layout::OneFile {
        std::fs::write(root.join("identities/people.yaml"), yaml).unwrap();
    }
    git_commit_all(&root, "onboard");
    Fixture {
        root,
        identity_file,
    }
}

/// Reconciles once, in process.
pub fn reconcile(f: &Fixture) {
    gitca::reconcile::apply::run_reconcile(
        &gitca::reconcile::apply::ReconcileOptions {
            dir: f.root.clone(),
            now: now(),
            key_source: f.key_source(),
            no_commit: false,
            allow_dirty: false,
            quiet: true,
        },
        &mut std::io::sink(),
    )
    .unwrap();
}

/// Adds `n` long-revoked certificates of departed identities to the ledger (they belong on the
/// CRL until they expire), committed.
pub fn add_revoked_history(f: &Fixture, n: usize) {
    let path = f.root.join(gitca::layout::LEDGER_FILE);
    let mut l = Ledger::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let t = now() - time::Duration::days(30);
    for i in 0..n {
        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).unwrap();
        serial[0] |= 0x10;
        l.records.push(Record {
            serial: hex::encode(serial),
            identity: format!("departed{i:06}"),
            kind: gitca::repository::inventory::Kind::User,
            profile: "user".into(),
            state: State::Revoked,
            not_before: t,
            not_after: t + time::Duration::days(365),
            revoked_at: Some(t + time::Duration::days(1)),
            reason: Some(RevocationReason::CessationOfOperation),
            key_sha256: hex::encode(serial) + &hex::encode(serial),
            csr_sha256: "-".into(),
            email: None,
            groups: vec![],
            issuer: None,
            names: Vec::new(),
        });
    }
    l.sort();
    reseal(f, &l);
    git_commit_all(&f.root, "history");
}

/// Writes `ledger` with a CRL listing its revocations and a seal over both, as reconcile would
/// (so gitca trusts them: see src/repository/seal.rs).
fn reseal(f: &Fixture, ledger: &Ledger) {
    let dir = gitca::repository::confined::Dir::open(&f.root).unwrap();
    let key = gitca::authority::custody::unlock(&dir, &f.key_source()).unwrap();
    let ca = gitca::authority::ca::CaCert::parse(
        &std::fs::read_to_string(f.root.join("ca/ca.crt")).unwrap(),
    )
    .unwrap();
    let old = gitca::repository::seal::Seal::parse(
        &std::fs::read_to_string(f.root.join("ledger.sig")).unwrap(),
    )
    .unwrap();
    let entries = gitca::repository::ledger::crl_entries(ledger, now(), None).unwrap();
    let number = old.crl_number + 1;
    let crl = gitca::authority::ca::sign_crl(
        &ca,
        &key,
        number,
        now(),
        now() + time::Duration::days(7),
        &entries,
    )
    .unwrap();
    let text = ledger.render();
    let seal = gitca::repository::seal::Seal::sign(
        &ca,
        &key,
        old.sequence + 1,
        (text.as_bytes(), crl.as_bytes(), number),
        None,
    )
    .unwrap();
    std::fs::write(f.root.join(gitca::layout::LEDGER_FILE), text).unwrap();
    std::fs::write(f.root.join("crl/ca.crl"), crl).unwrap();
    std::fs::write(f.root.join("ledger.sig"), seal.render()).unwrap();
}

/// Removes the first `n` declared users from the YAML, committed.
pub fn offboard(f: &Fixture, n: usize) {
    let path = f.root.join("identities/people.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut skip = 0usize;
    let mut removed = 0usize;
    for line in text.lines() {
        if line.starts_with("  - name: ") {
            if removed < n {
                removed += 1;
                skip = 2;
                continue;
            }
            skip = 0;
        } else if skip > 0 {
            skip -= 1;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap();
    git_commit_all(&f.root, "offboard");
}

/// Copies a fixture so each benchmark iteration starts from the same state.
pub fn copy(from: &Fixture, to: &Path) -> Fixture {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&from.root)
        .arg(to.join("ca"))
        .status()
        .unwrap();
    assert!(st.success());
    // `cp` gives every file a new inode and ctime, so git's index no longer matches any of
    // them; refresh it as a fresh checkout (what CI runs on) would have it.
    let st = std::process::Command::new("git")
        .args(["update-index", "-q", "--refresh"])
        .current_dir(to.join("ca"))
        .status()
        .unwrap();
    assert!(st.success());
    Fixture {
        root: to.join("ca"),
        identity_file: from.identity_file.clone(),
    }
}
