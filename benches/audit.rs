//! `gitca audit` over a long history: 10,000 identities onboarded over 1,000 signed
//! reconciles (10 per merge: a human commit that declares them, then a signed commit that adds
//! their ledger rows), 2,000 commits in all, built in process with git2. Measures the audit
//! itself (one first-parent walk) in process; criterion never asserts timings.
//!
//!   cargo bench --bench audit
//!   AUDIT_IDENTITIES=2000 AUDIT_PER_MERGE=10 cargo bench --bench audit

use std::path::Path;

use criterion::Criterion;
use git2::{Repository, Signature};
use sha2::Digest as _;

use gitca::repository::ledger::{Ledger, Record, State};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn commit(
    git: &Repository,
    tree: git2::Oid,
    msg: &str,
    key: Option<&gitca::repository::signer::SigningKey>,
) -> git2::Oid {
    let sig = Signature::new(
        "bench",
        "bench@example.com",
        &git2::Time::new(1_767_225_600, 0),
    )
    .unwrap();
    let tree = git.find_tree(tree).unwrap();
    let parent = git.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let oid = match key {
        None => git.commit(None, &sig, &sig, msg, &tree, &parents).unwrap(),
        Some(k) => {
            let buf = git
                .commit_create_buffer(&sig, &sig, msg, &tree, &parents)
                .unwrap();
            let text = std::str::from_utf8(&buf).unwrap().to_string();
            let armored = k.sign(text.as_bytes()).unwrap();
            git.commit_signed(&text, armored.trim_end(), Some("gpgsig"))
                .unwrap()
        }
    };
    let head = git.find_reference("HEAD").unwrap();
    let branch = head.symbolic_target().unwrap().unwrap().to_string();
    git.reference(&branch, oid, true, msg).unwrap();
    oid
}

/// `tree` with `files` (path in a first-level directory, or at the root) put in.
fn upsert(git: &Repository, base: &git2::Tree<'_>, files: &[(String, Vec<u8>)]) -> git2::Oid {
    let mut update = git2::build::TreeUpdateBuilder::new();
    for (path, data) in files {
        let blob = git.blob(data).unwrap();
        update.upsert(path.as_str(), blob, git2::FileMode::Blob);
    }
    update.create_updated(git, base).unwrap()
}

fn head_tree(git: &Repository) -> git2::Tree<'_> {
    git.head().unwrap().peel_to_tree().unwrap()
}

fn build(dir: &Path, identities: usize, per_merge: usize) -> Repository {
    let root = dir.join("ca");
    let age = age::x25519::Identity::generate();
    gitca::authority::init::run_init(
        gitca::authority::init::InitOptions {
            dir: root.clone(),
            name: "Bench CA".into(),
            organization: "Bench".into(),
            key_type: gitca::authority::keygen::KeyType::P256,
            validity: gitca::repository::config::Dur::parse("10y").unwrap(),
            custody: gitca::authority::custody::Custody::Recipients(vec![age
                .to_public()
                .to_string()]),
            now: gitca::time::parse_time("2026-01-01T00:00:00Z").unwrap(),
            offline_root: None,
            token: None,
        },
        &mut std::io::sink(),
    )
    .unwrap();
    let keyfile = dir.join("signing.key");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f"])
        .arg(&keyfile)
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen");
    let key =
        gitca::repository::signer::SigningKey::parse(&std::fs::read(&keyfile).unwrap(), "bench")
            .unwrap();
    let public = std::fs::read_to_string(dir.join("signing.key.pub")).unwrap();
    let git = Repository::open(&root).unwrap();
    let t = upsert(
        &git,
        &head_tree(&git),
        &[(
            "ca/allowed_signers".into(),
            format!("gitca-ci {}\n", public.trim()).into_bytes(),
        )],
    );
    commit(&git, t, "history signers", Some(&key));
    let mut ledger = Ledger::default();
    let t0 = gitca::time::parse_time("2026-01-01T00:00:00Z").unwrap();
    let mut n = 0;
    while n < identities {
        let mut declared = Vec::new();
        for _ in 0..per_merge.min(identities - n) {
            let name = format!("user{n:06}");
            let csr = format!(
                "-----BEGIN CERTIFICATE REQUEST-----\n{name}\n-----END CERTIFICATE REQUEST-----\n"
            );
            ledger.records.push(Record {
                serial: format!("7f{:030x}", n + 1),
                identity: name.clone(),
                kind: gitca::repository::inventory::Kind::User,
                profile: "user".into(),
                state: State::Issued,
                not_before: t0,
                not_after: t0 + time::Duration::days(365),
                revoked_at: None,
                reason: None,
                key_sha256: hex::encode(sha2::Sha256::digest(name.as_bytes())),
                csr_sha256: hex::encode(sha2::Sha256::digest(csr.as_bytes())),
                email: None,
                groups: vec![],
                issuer: None,
                names: vec![],
            });
            declared.push((
                format!("identities/{name}.yaml"),
                format!("users:\n  - name: {name}\n    csr: csr/{name}.csr\n").into_bytes(),
            ));
            declared.push((format!("csr/{name}.csr"), csr.into_bytes()));
            n += 1;
        }
        let t = upsert(&git, &head_tree(&git), &declared);
        commit(&git, t, "onboard", None);
        let t = upsert(
            &git,
            &head_tree(&git),
            &[("ledger.tsv".into(), ledger.render().into_bytes())],
        );
        commit(&git, t, "gitca: reconcile", Some(&key));
    }
    git
}

fn main() {
    let identities = env("AUDIT_IDENTITIES", 10_000);
    let per_merge = env("AUDIT_PER_MERGE", 10).max(1);
    let dir = tempfile::tempdir().unwrap();
    let built = std::time::Instant::now();
    let git = build(dir.path(), identities, per_merge);
    eprintln!(
        "built {identities} identities over {} reconciles in {:.1?}",
        identities.div_ceil(per_merge),
        built.elapsed()
    );
    let report = gitca::repository::audit::audit(&git, None).unwrap();
    assert!(report.ok, "{:?}", report.broken);
    assert_eq!(report.proven, identities);
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    c.bench_function(
        &format!("audit/{identities}_identities_{per_merge}_per_reconcile"),
        |b| b.iter(|| gitca::repository::audit::audit(&git, None).unwrap()),
    );
    c.final_summary();
}
