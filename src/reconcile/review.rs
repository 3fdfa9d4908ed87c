//! `gitca check` and `gitca plan`: everything a reviewer needs, without the CA key.
//!
//! check reports every problem at once: YAML, CSR rules (the same code reconcile runs), stray
//! private keys, integrity of certs/ledger/CRL, time, and — with `--base` — hand edits of
//! what only reconcile may write.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use miette::Diagnostic;
use serde_json::json;
use time::OffsetDateTime;

use crate::authority::ca;
use crate::error::{Error, Result};
use crate::layout::{
    cert_path, CA_CERT, CONFIG_FILE, CRL_FILE, LEDGER_FILE, PREVIOUS_CRL, ROOT_CERT, ROOT_CRL,
    ROSTER, SEAL_FILE,
};
use crate::output::report;
use crate::reconcile::plan::Plan;
use crate::reconcile::policy::{vet_knowing, Proven};
use crate::repository::confined::{Dir, Kind};
use crate::repository::git::CaRepo;
use crate::repository::ledger::{self, Ledger, State};
use crate::repository::load::{self, read};
use crate::repository::seal::{self, Standing};
use crate::time::{fmt_time, human_span};

/// A problem that does not fail check.
#[derive(Debug, Clone)]
pub struct Warning {
    pub file: String,
    pub message: String,
    pub help: String,
}

/// Everything check found.
#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Vec<Error>,
    pub warnings: Vec<Warning>,
    /// gitca.yaml changes since the base, field by field: policy for every identity.
    pub policy: Vec<String>,
    /// The chain, for a CA with an offline root: root, issuing and retiring intermediates.
    pub hierarchy: Vec<String>,
}

/// The commit a pull request forked from `base` at (so later commits on the base branch are not
/// taken for the pull request's own edits).
fn fork_point(repo: &CaRepo, base: &str) -> Result<git2::Oid> {
    let base_obj = repo.git.revparse_single(base).map_err(|_| {
        Error::usage(
            format!("`{base}` is not a revision of this repository"),
            "fetch the base branch first (git fetch origin main) and pass e.g. --base origin/main",
        )
    })?;
    let base_commit = base_obj.peel_to_commit()?;
    Ok(match repo.head_oid() {
        Some(head) => repo
            .git
            .merge_base(head, base_commit.id())
            .unwrap_or(base_commit.id()),
        None => base_commit.id(),
    })
}

/// How gitca.yaml changed between the commit `at` (HEAD when `None`) and the working tree.
pub fn policy_changes(repo: &CaRepo, at: Option<git2::Oid>) -> Vec<String> {
    let Some(commit) = at.or_else(|| repo.head_oid()) else {
        return Vec::new();
    };
    let old = repo
        .git
        .find_commit(commit)
        .and_then(|c| c.tree())
        .ok()
        .and_then(|t| t.get_name(CONFIG_FILE).map(|e| e.id()))
        .and_then(|id| {
            crate::repository::history::read_blob(
                &repo.git,
                id,
                crate::repository::config::MAX_BYTES,
            )
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| crate::repository::config::Config::parse(&t).ok());
    let new = read(&repo.dir, CONFIG_FILE, crate::repository::config::MAX_BYTES)
        .and_then(|t| crate::repository::config::Config::parse(&t))
        .ok();
    match (old, new) {
        (Some(old), Some(new)) => new.diff(&old),
        _ => Vec::new(),
    }
}

/// Largest file scanned for private keys; larger files are read only this far.
const SCAN_LIMIT: u64 = 1 << 20;

/// What the working tree holds, except `.git/`: tracked, untracked and ignored alike, walked
/// without following links. An ignored `alice.key` is not committed, but a key inside the CA
/// repository's directory is one `git add -f` away from a leak.
#[derive(Default)]
struct Tree {
    files: Vec<String>,
    /// Symbolic links and anything else that is neither a file nor a directory.
    others: Vec<(String, Kind)>,
}

fn walk_tree(dir: &Dir) -> Tree {
    let mut tree = Tree::default();
    let mut stack = vec![String::new()];
    while let Some(at) = stack.pop() {
        let Ok(entries) = dir.list(&at) else {
            continue;
        };
        for (name, kind) in entries {
            if at.is_empty() && name == ".git" {
                continue;
            }
            let rel = if at.is_empty() {
                name
            } else {
                format!("{at}/{name}")
            };
            match kind {
                Kind::Dir => stack.push(rel),
                Kind::File => tree.files.push(rel),
                other => tree.others.push((rel, other)),
            }
        }
    }
    tree.files.sort();
    tree.others.sort();
    tree
}

/// Finds files holding private keys anywhere in the working tree (read in parallel: a CA of
/// 10,000 identities has over 20,000 files).
fn scan_private_keys(dir: &Dir, files: Vec<String>) -> Vec<Error> {
    use rayon::prelude::*;
    let found: Vec<Option<Error>> = files
        .into_par_iter()
        .map(|rel| private_key_in(dir, rel))
        .collect();
    found.into_iter().flatten().collect()
}

fn private_key_in(dir: &Dir, rel: String) -> Option<Error> {
    let buf = dir.read_head(&rel, SCAN_LIMIT).ok()??;
    let crate::reconcile::keyscan::Found { kind, line } = crate::reconcile::keyscan::find(&buf)?;
    Some(Error::BadFile {
        path: rel.clone().into(),
        reason: format!("line {line}: holds a private key ({kind}); private keys never enter the CA repository"),
        help: format!(
            "remove it from the pull request (git rm --cached {}) and, since it was exposed, make a new key; commit only the .csr",
            crate::output::encode::one_line(&rel)
        ),
    })
}

/// `.gitattributes` anywhere in the repository: gitca reads and writes its files byte for byte,
/// and an attribute (`working-tree-encoding`, `eol`, `text`, a `filter`) makes every later
/// checkout — CI's included — rewrite identity files, CSRs or certificates into something else.
/// One line in a pull request outside `identities/`, so outside a CODEOWNERS rule on it. And
/// files named like gitca's temporary files, which gitca skips: a tracked one hides what it
/// declares.
fn attributes_files(files: &[String]) -> Vec<Error> {
    let temporary = files
        .iter()
        .filter(|rel| rel.ends_with(".gitca-tmp"))
        .map(|rel| {
            Error::bad_file(
                rel.as_str(),
                "has the name of a gitca temporary file, which gitca skips where it reads (identities/ included): whom it declares would be taken for removed",
                format!(
                    "remove it (git rm {}), or give its content a name that ends in .yaml",
                    crate::output::encode::one_line(rel)
                ),
            )
        });
    files
        .iter()
        .filter(|rel| rel.rsplit('/').next() == Some(".gitattributes"))
        .map(|rel| {
            Error::bad_file(
                rel.as_str(),
                "sets git attributes: a checkout would rewrite files gitca reads byte for byte (encodings, line endings, filters)",
                format!(
                    "remove it (git rm {}); a CA repository holds no attributes",
                    crate::output::encode::one_line(rel)
                ),
            )
        })
        .chain(temporary)
        .collect()
}

/// Symbolic links, submodules and anything but regular files and directories, tracked anywhere
/// in the repository or present in its working tree: gitca never follows a link, and a link
/// merged into the CA repository is how a pull request would reach outside it.
fn links_and_special_files(repo: &CaRepo, others: &[(String, Kind)]) -> Vec<Error> {
    let mut seen = BTreeSet::new();
    let mut errors = Vec::new();
    if let Ok(index) = repo.git.index() {
        for e in index.iter() {
            let what = match e.mode & 0o170000 {
                0o120000 => "a symbolic link",
                0o160000 => "a submodule (gitlink)",
                0o100000 => continue,
                _ => "not a regular file",
            };
            let rel = String::from_utf8_lossy(&e.path).into_owned();
            errors.push(special_file_error(&rel, what, true));
            seen.insert(rel);
        }
    }
    for (rel, kind) in others {
        if seen.contains(rel) {
            continue;
        }
        let what = if *kind == Kind::Symlink {
            "a symbolic link"
        } else {
            "not a regular file"
        };
        errors.push(special_file_error(rel, what, false));
    }
    errors
}

fn special_file_error(rel: &str, what: &str, tracked: bool) -> Error {
    Error::bad_file(
        rel,
        format!("{} {what}", if tracked { "tracked as" } else { "is" }),
        format!("a CA repository holds only regular files: gitca never follows links; remove it (git rm --cached {}) and commit the file itself if it is needed", crate::output::encode::one_line(rel)),
    )
}

/// The CRL of `issuer` and the ledger agree: what it lists is revoked, and every revoked,
/// unexpired certificate that issuer signed is on it.
fn check_crl_entries(
    f: &mut Findings,
    ledger: &ledger::Ledger,
    crl: &ca::CrlInfo,
    path: &str,
    issuer: Option<&str>,
) {
    let revoked: HashSet<&str> = ledger
        .records
        .iter()
        .filter(|r| r.state == State::Revoked)
        .map(|r| r.serial.as_str())
        .collect();
    for s in &crl.serials {
        if !revoked.contains(s.as_str()) {
            f.errors.push(Error::bad_file(
                LEDGER_FILE,
                format!("serial {s} is on {path} but not revoked in the ledger"),
                "revocation is permanent: a hand edit un-revoked it; restore ledger.tsv from git history",
            ));
        }
    }
    let on_crl: HashSet<&str> = crl.serials.iter().map(String::as_str).collect();
    for r in ledger
        .records
        .iter()
        .filter(|r| r.on_crl(crl.this_update) && r.issuer.as_deref() == issuer)
    {
        if !on_crl.contains(r.serial.as_str()) {
            f.errors.push(Error::bad_file(
                path,
                format!(
                    "revoked serial {} ({}) is missing from the CRL",
                    r.serial, r.identity
                ),
                "run gitca reconcile to re-sign the CRL",
            ));
        }
    }
}

fn verify_cert_file(
    dir: &Dir,
    state: &load::State,
    name: &str,
    now: OffsetDateTime,
) -> Option<Error> {
    let rel = cert_path(name);
    let bad = |why: String| {
        Some(Error::bad_file(
            &rel,
            why,
            "certs/ is written by gitca reconcile only; restore it with `git checkout -- certs/`, or run reconcile",
        ))
    };
    let text = match dir.read_string(&rel, ca::MAX_CERT_BYTES) {
        Ok(t) => t,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return bad("missing: the identity holds a live certificate in the ledger".into())
        }
        Err(e) => return Some(e),
    };
    let current = state.ledger.current(name, now);
    let Some(r) = current else {
        return bad(format!(
            "holds a certificate, but the ledger has no live certificate for `{name}`"
        ));
    };
    // Signed by the CA the ledger names (an intermediate, below an offline root).
    let Some((issuer_path, issuer)) = state.issuer_cert(r.issuer.as_deref()) else {
        return bad(format!(
            "was signed by intermediate {}, which no longer issues (revoked or retired): run gitca reconcile to replace it",
            r.issuer.as_deref().unwrap_or("?")
        ));
    };
    let want_cn = state
        .inventory
        .get(name)
        .map_or(std::borrow::Cow::Borrowed(name), |id| id.cn());
    crate::authority::issued::verify(
        &text,
        &crate::authority::issued::Expected {
            record: r,
            issuer,
            issuer_path,
            cn: Some(&want_cn),
        },
    )
    .err()
    .and_then(bad)
}

/// Compares with the base revision: what only reconcile may write must not change in a PR.
fn compare_with_base(repo: &CaRepo, base: &str, findings: &mut Findings) -> Result<()> {
    // The ledger as the pull request left it on disk (not the sealed one gitca would use).
    let ledger = read(&repo.dir, LEDGER_FILE, ledger::MAX_BYTES)
        .and_then(|t| Ledger::parse(&t))
        .unwrap_or_default();
    let fork = fork_point(repo, base)?;
    findings.policy = policy_changes(repo, Some(fork));
    check_change_size(repo, fork, base, findings)?;
    let fork_tree = repo.git.find_commit(fork)?.tree()?;
    let changed = changed_outputs(repo, &fork_tree)?;
    report_hand_edits(&changed, base, findings);
    // A file the pull request changed is reported as that, not as a leftover to clean up.
    findings.warnings.retain(|w| !changed.contains_key(&w.file));
    check_revocations_kept(repo, &fork_tree, &ledger, base, findings);
    Ok(())
}

/// How much the change adds to the history every later gitca command reads.
fn check_change_size(
    repo: &CaRepo,
    fork: git2::Oid,
    base: &str,
    findings: &mut Findings,
) -> Result<()> {
    let (versions, bytes) = crate::repository::history::added_by_change(&repo.git, fork)?;
    if bytes > crate::repository::history::MAX_CHANGE_BYTES {
        findings.errors.push(Error::usage(
            format!(
                "this change adds {} MiB of versions of gitca's files to history ({versions} distinct versions since {base}): at most {} MiB",
                bytes >> 20,
                crate::repository::history::MAX_CHANGE_BYTES >> 20
            ),
            "every later gitca command reads these versions (it reads at most 512 MiB in all, docs/performance.md): squash the change into one commit that leaves gitca's files as they are on the base",
        ));
    }
    Ok(())
}

/// Each changed path among what only reconcile (or a ceremony) writes, and whether the base
/// has it (a file the pull request added cannot be checked out from the base: it is removed
/// instead).
fn changed_outputs(repo: &CaRepo, fork_tree: &git2::Tree) -> Result<BTreeMap<String, bool>> {
    let mut opts = git2::DiffOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    for p in ["ledger.tsv", "ledger.sig", "certs", "crl", "ca"] {
        opts.pathspec(p);
    }
    let diff = repo
        .git
        .diff_tree_to_workdir_with_index(Some(fork_tree), Some(&mut opts))?;
    let mut changed: BTreeMap<String, bool> = BTreeMap::new();
    for d in diff.deltas() {
        if let Some(p) = d.new_file().path().or(d.old_file().path()) {
            let added = matches!(d.status(), git2::Delta::Added | git2::Delta::Untracked);
            changed.insert(p.to_string_lossy().to_string(), !added);
        }
    }
    Ok(changed)
}

/// An error for each changed path, with the command that drops the change.
fn report_hand_edits(changed: &BTreeMap<String, bool>, base: &str, findings: &mut Findings) {
    for (path, in_base) in changed {
        let what = if path == crate::repository::signer::ALLOWED_SIGNERS {
            "changes who may sign the CA's history: a current signer commits it, signed, outside a pull request (docs/custody.md)"
        } else if path.starts_with("ca/") {
            "changes the CA itself"
        } else {
            "is written by gitca reconcile only"
        };
        let undo = if *in_base {
            format!("git checkout {base} -- {path}")
        } else {
            format!("git rm -f {path}")
        };
        findings.errors.push(Error::bad_file(
            path,
            format!(
                "{} by hand since {base} ({what})",
                if *in_base { "edited" } else { "added" }
            ),
            format!("drop this change from the pull request ({undo}); reconcile updates it after the merge"),
        ));
    }
}

/// A revoked certificate's record must never disappear or be un-revoked.
fn check_revocations_kept(
    repo: &CaRepo,
    fork_tree: &git2::Tree,
    ledger: &Ledger,
    base: &str,
    findings: &mut Findings,
) {
    let Ok(entry) = fork_tree.get_path(Path::new(LEDGER_FILE)) else {
        return;
    };
    let blob = crate::repository::history::read_blob(&repo.git, entry.id(), ledger::MAX_BYTES);
    let Some(Ok(old)) = blob.map(|b| Ledger::parse(&String::from_utf8_lossy(&b))) else {
        return;
    };
    let now: HashMap<&str, &ledger::Record> = ledger
        .records
        .iter()
        .map(|r| (r.serial.as_str(), r))
        .collect();
    for r in old.records.iter() {
        match now.get(r.serial.as_str()) {
            None => findings.errors.push(Error::bad_file(
                LEDGER_FILE,
                format!(
                    "the record of certificate {} ({}) was removed",
                    r.serial, r.identity
                ),
                format!("the ledger keeps every certificate ever issued: restore it (git checkout {base} -- ledger.tsv)"),
            )),
            Some(n) if r.state == State::Revoked && n.state != State::Revoked => {
                findings.errors.push(Error::bad_file(
                    LEDGER_FILE,
                    format!(
                        "certificate {} ({}) was revoked and is no longer",
                        r.serial, r.identity
                    ),
                    format!("revocation is permanent: restore the ledger (git checkout {base} -- ledger.tsv)"),
                ))
            }
            _ => {}
        }
    }
}

/// Runs every check. Errors in loading stop the checks that need what failed to load.
pub fn collect(repo: &CaRepo, now: OffsetDateTime, base: Option<&str>) -> Result<Findings> {
    // The working tree is scanned while the state loads (both read every file: at 100,000
    // identities each takes over a second, and the scan lists directories on one thread).
    let (scanned, loaded) = std::thread::scope(|s| {
        let dir = &repo.dir;
        let scan = s.spawn(move || scan_working_tree(dir));
        // Load piece by piece, so one broken file does not hide the problems of the others.
        let mut f = Findings::default();
        let loaded = load_state(repo, base, &mut f).map(|state| (state, f));
        let scanned = scan
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (scanned, loaded)
    });
    let (state, mut f) = loaded?;
    let (others, mut found) = scanned;
    found.splice(0..0, links_and_special_files(repo, &others));
    f.errors.splice(0..0, found);
    let Some(state) = state else {
        return Ok(f);
    };
    check_csr_rules(&state, now, &mut f);
    check_acknowledgements(&state, now, &mut f);
    // Integrity: the certificate files against the (sealed) ledger; the CRL's signature was
    // checked when it was loaded.
    check_cert_files(repo, &state, now, &mut f);
    check_crls(&state, now, &mut f);
    check_ca_expiry(&state, now, &mut f);
    if let Some(h) = &state.hierarchy {
        check_hierarchy(&mut f, h, &state, now);
        f.hierarchy = describe_hierarchy(h, &state.ca);
    }
    check_custody(repo, &state, &mut f)?;
    check_allowed_signers(repo, &mut f);
    if let Some(base) = base {
        compare_with_base(repo, base, &mut f)?;
    }
    Ok(f)
}

/// What lies in the working tree: the links and special files (judged against the index by
/// the caller), and the errors for git attributes and private keys.
fn scan_working_tree(dir: &Dir) -> (Vec<(String, Kind)>, Vec<Error>) {
    let tree = walk_tree(dir);
    let mut errors = attributes_files(&tree.files);
    errors.extend(scan_private_keys(dir, tree.files));
    (tree.others, errors)
}

/// gitca.yaml, the identities and the CA's outputs, as one state; `None` when gitca.yaml or
/// the outputs cannot be loaded (the reason is in `f`), since every later check needs them.
fn load_state(repo: &CaRepo, base: Option<&str>, f: &mut Findings) -> Result<Option<load::State>> {
    let config = match read(&repo.dir, CONFIG_FILE, crate::repository::config::MAX_BYTES)
        .and_then(|t| crate::repository::config::Config::parse(&t))
    {
        Ok(c) => c,
        Err(e) => {
            f.errors.push(e);
            return Ok(None);
        }
    };
    let inventory = load_inventory(repo, &config, base, f)?;
    let outputs = match load::outputs(repo) {
        Ok(o) => o,
        Err(e) => {
            f.errors.extend(e.into_flat());
            return Ok(None);
        }
    };
    check_standing(&outputs.standing, f);
    Ok(Some(load::State {
        config,
        inventory,
        ledger: outputs.ledger,
        crl: outputs.crl,
        ca: outputs.ca,
        hierarchy: outputs.hierarchy,
        crl_text: outputs.crl_text,
        standing: outputs.standing,
        certs_edited: outputs.certs_edited,
        problems: Vec::new(),
        signing_blocked: None,
    }))
}

/// The identities, their problems recorded in `f`.
fn load_inventory(
    repo: &CaRepo,
    config: &crate::repository::config::Config,
    base: Option<&str>,
    f: &mut Findings,
) -> Result<crate::repository::inventory::Inventory> {
    // With a base: which names each identity file already declared there (a name declared
    // twice is then reported where the pull request added it).
    let base_tree = match base {
        Some(b) => Some(repo.git.find_commit(fork_point(repo, b)?)?.tree()?),
        None => None,
    };
    let base_names = std::cell::RefCell::new(BTreeMap::new());
    let established = |file: &str, name: &str| -> bool {
        let Some(tree) = &base_tree else { return false };
        let mut cache = base_names.borrow_mut();
        let names = cache.entry(file.to_string()).or_insert_with(|| {
            tree.get_path(std::path::Path::new(file))
                .ok()
                .and_then(|e| {
                    crate::repository::history::read_blob(
                        &repo.git,
                        e.id(),
                        crate::repository::yaml::MAX_BYTES as u64,
                    )
                })
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map(|text| crate::repository::inventory::names_in(config, file, &text))
                .unwrap_or_default()
        });
        names.contains(name)
    };
    let (inventory, problems) = crate::repository::inventory::load_all_against(
        &repo.dir,
        config,
        base.is_some()
            .then_some(&established as crate::repository::inventory::Established),
    )?;
    f.errors
        .extend(problems.into_iter().flat_map(Error::into_flat));
    Ok(inventory)
}

/// Whether the ledger and CRL on disk are the ones the CA sealed.
fn check_standing(standing: &Standing, f: &mut Findings) {
    match standing {
        Standing::Recovered { .. } => f.errors.push(Error::bad_file(
            SEAL_FILE,
            seal::describe(standing).unwrap_or_default(),
            "only gitca writes ledger.tsv, crl/ca.crl and ledger.sig: drop the edit from the pull request; on main, the next gitca reconcile writes the sealed versions back",
        )),
        Standing::Unsealed => f.warnings.push(Warning {
            file: SEAL_FILE.into(),
            message: "ledger.tsv and crl/ca.crl carry no seal yet (a repository from an earlier gitca)".into(),
            help: "the next gitca reconcile that writes seals them; until then hand edits of them cannot be told apart".into(),
        }),
        Standing::Sealed(_) => {}
    }
}

/// CSR rules, exactly as reconcile applies them, for every identity that wants a certificate
/// — except one without a CSR file that holds a live certificate and is not due for a new
/// one (an identity imported from `openssl ca` without its CSR): nothing needs its CSR yet,
/// so it is a warning until its renewal is due; then the plan blocks it, with the command.
fn check_csr_rules(state: &load::State, now: OffsetDateTime, f: &mut Findings) {
    let vetted = state.plan(now);
    // A CSR whose bytes the CA signed for (its digest in the sealed ledger), or that the plan
    // just verified, passed the signature check; every other rule applies again.
    let mut proven = Proven::sealed(&state.ledger, &state.standing);
    for (i, _) in &vetted.verified {
        proven.insert(&state.inventory.identities[*i]);
    }
    let plan = vetted.plan;
    let signs_for: HashSet<&str> = plan
        .actions
        .iter()
        .filter(|a| a.op.signs())
        .map(|a| a.identity.as_str())
        .chain(plan.blocked.iter().map(|b| b.identity.as_str()))
        .collect();
    let (waiting, wanting): (Vec<&crate::repository::inventory::Identity>, Vec<_>) = state
        .inventory
        .identities
        .iter()
        .filter(|i| i.wants_certificate())
        .partition(|i| {
            i.csr_bytes.is_none()
                && !signs_for.contains(i.name.as_str())
                && state.ledger.current(&i.name, now).is_some()
        });
    warn_missing_csrs(state, waiting, now, f);
    vet_csrs(state, wanting, &proven, now, f);
    warn_dormant_csrs(state, &proven, f);
}

/// A warning for each CSR of an identity that takes no certificate now (`disabled:`,
/// `revoke:`) that the rules would refuse, unless a sealed ledger vouches for its bytes (then
/// it is the CSR the identity was certified with, and a compromised key's refusal is what
/// `revoke: key-compromise` means). Nothing is signed for it, but a bad CSR must not sit in
/// the tree unnoticed until the entry is enabled again.
fn warn_dormant_csrs(state: &load::State, proven: &Proven<'_>, f: &mut Findings) {
    let dormant: Vec<&crate::repository::inventory::Identity> = state
        .inventory
        .identities
        .iter()
        .filter(|i| !i.wants_certificate() && i.csr_bytes.is_some() && !proven.holds(i))
        .collect();
    let refused = vet_knowing(&state.ledger, &state.inventory, &dormant, proven).refused;
    for id in dormant {
        let Some(b) = refused.get(&id.name) else {
            continue;
        };
        f.warnings.push(Warning {
            file: format!("{}:{}", id.source.file, id.source.line),
            message: format!(
                "`{}` takes no certificate now, and its CSR ({}) would be refused if it did: {}",
                id.name, id.csr, b.detail
            ),
            help: b.fix.clone(),
        });
    }
}

/// A warning for each identity that holds a live certificate but no CSR to renew it with.
fn warn_missing_csrs(
    state: &load::State,
    waiting: Vec<&crate::repository::inventory::Identity>,
    now: OffsetDateTime,
    f: &mut Findings,
) {
    for id in waiting {
        let Some(cur) = state.ledger.current(&id.name, now) else {
            continue;
        };
        let renew_before = state
            .config
            .profiles
            .get(&id.profile)
            .map_or(time::Duration::ZERO, |p| p.renew_before.0);
        f.warnings.push(Warning {
            file: format!("{}:{}", id.source.file, id.source.line),
            message: format!(
                "`{}` has no CSR ({} does not exist): certificate {} stays valid until {}, but its renewal, due from {}, needs one",
                id.name,
                id.csr,
                cur.serial,
                &fmt_time(cur.not_after)[..10],
                &fmt_time(cur.not_after - renew_before)[..10]
            ),
            help: format!(
                "before then, its holder runs `gitca request {} --rotate` (a new key; with --key KEY, a CSR for the key they hold) and opens a pull request",
                id.name
            ),
        });
    }
}

/// The CSR rules for the identities that want a certificate: a refusal is an error, unless
/// the identity's `acknowledged:` holds.
fn vet_csrs(
    state: &load::State,
    wanting: Vec<&crate::repository::inventory::Identity>,
    proven: &Proven<'_>,
    now: OffsetDateTime,
    f: &mut Findings,
) {
    // An identity whose `acknowledged:` holds is known to be blocked: its refusal is a warning.
    let (acknowledged, wanting): (Vec<_>, Vec<_>) = wanting
        .into_iter()
        .partition(|i| i.acknowledged.as_ref().is_some_and(|a| a.holds(now)));
    f.errors
        .extend(vet_knowing(&state.ledger, &state.inventory, &wanting, proven).diagnostics);
    let known = vet_knowing(&state.ledger, &state.inventory, &acknowledged, proven).refused;
    for (id, b) in acknowledged
        .iter()
        .filter_map(|i| Some((i, known.get(&i.name)?)))
    {
        let a = id.acknowledged.as_ref().expect("partitioned on it");
        f.warnings.push(Warning {
            file: id.source.file.clone(),
            message: format!(
                "`{}` is blocked ({}), acknowledged until {}: {}",
                id.name, b.detail, a.until, a.reason
            ),
            help: b.fix.clone(),
        });
    }
}

/// Acknowledgements set too far ahead, and those that ended.
fn check_acknowledgements(state: &load::State, now: OffsetDateTime, f: &mut Findings) {
    f.errors
        .extend(state.inventory.acknowledgements_too_far(now));
    for (id, a) in state.inventory.acknowledgements() {
        if a.ended(now) {
            f.warnings.push(Warning {
                file: id.source.file.clone(),
                message: format!(
                    "the acknowledgement of `{}` ended {} ({})",
                    id.name, a.until, a.reason
                ),
                help: "remove it; if the identity is still blocked, reconcile turns red again until it is fixed or acknowledged anew in a reviewed change".into(),
            });
        }
    }
}

/// The certificate files against the ledger: each live certificate's file verifies, and a
/// file without a live certificate is a leftover.
fn check_cert_files(repo: &CaRepo, state: &load::State, now: OffsetDateTime, f: &mut Findings) {
    let live: BTreeSet<&str> = state
        .ledger
        .records
        .iter()
        .filter(|r| r.is_live(now))
        .map(|r| r.identity.as_str())
        .collect();
    {
        use rayon::prelude::*;
        let dir = &repo.dir;
        let found: Vec<Option<Error>> = live
            .par_iter()
            .map(|name| verify_cert_file(dir, state, name, now))
            .collect();
        f.errors.extend(found.into_iter().flatten());
    }
    if let Ok(entries) = repo.dir.list("certs") {
        for (file, _) in entries {
            let stem = file.strip_suffix(".crt").unwrap_or(&file);
            if !live.contains(stem) {
                // An expired or revoked identity's file left over is not this pull request's
                // doing: reconcile removes it. (A file added by hand is caught by --base.)
                f.warnings.push(Warning {
                    file: format!("certs/{file}"),
                    message: "no live certificate of this name in the ledger (expired, revoked, or not gitca's)".into(),
                    help: "run gitca reconcile: it removes certificate files of identities without a live certificate".into(),
                });
            }
        }
    }
}

/// The CRLs (the current CA's and a retiring intermediate's) against the ledger, and the
/// current one's expiry.
fn check_crls(state: &load::State, now: OffsetDateTime, f: &mut Findings) {
    let crl = &state.crl;
    let issuer = state.issuer_id();
    check_crl_entries(f, &state.ledger, crl, CRL_FILE, issuer.as_deref());
    if let Some(p) = state.hierarchy.as_ref().and_then(|h| h.previous.as_ref()) {
        check_crl_entries(f, &state.ledger, &p.crl, PREVIOUS_CRL, Some(&p.id));
    }
    match crl.next_update {
        Some(next) if next <= now => f.errors.push(Error::bad_file(
            CRL_FILE,
            format!("the CRL expired {}: nginx refuses every client", fmt_time(next)),
            "run gitca reconcile now (it re-signs the CRL), then nginx -s reload; schedule it daily",
        )),
        Some(next) if next - now <= state.config.crl.refresh_before.0 => f.warnings.push(Warning {
            file: CRL_FILE.into(),
            message: format!("the CRL expires in {} ({})", human_span(next - now), fmt_time(next)),
            help: "the next gitca reconcile re-signs it; make sure one runs daily".into(),
        }),
        _ => {}
    }
}

/// The issuing CA's certificate: expired, or expiring within 90 days.
fn check_ca_expiry(state: &load::State, now: OffsetDateTime, f: &mut Findings) {
    if state.ca.not_after <= now {
        f.errors.push(Error::bad_file(
            CA_CERT,
            format!(
                "the CA certificate expired {}",
                fmt_time(state.ca.not_after)
            ),
            "every certificate it issued is now refused; create a new CA and re-issue",
        ));
    } else if state.ca.not_after - now <= time::Duration::days(90) {
        f.warnings.push(Warning {
            file: CA_CERT.into(),
            message: format!(
                "the CA certificate expires in {}",
                human_span(state.ca.not_after - now)
            ),
            help: if state.hierarchy.is_some() {
                "make its successor before then: gitca root new-intermediate".into()
            } else {
                "plan the move to a new CA before then".into()
            },
        });
    }
}

/// The allowed signers are read by reconcile and audit from history: a line neither can read
/// is an error here, in the pull request that writes it.
fn check_allowed_signers(repo: &CaRepo, f: &mut Findings) {
    match repo.dir.read_opt(
        crate::repository::signer::ALLOWED_SIGNERS,
        crate::repository::signer::MAX_BYTES,
    ) {
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            if let Err(e) = crate::repository::signer::AllowedSigners::parse(
                crate::repository::signer::ALLOWED_SIGNERS,
                &text,
            ) {
                f.errors.push(e);
            }
        }
        Ok(None) => {}
        Err(e) => f.errors.push(e),
    }
}

/// Each recipients file against the list its key last signed (see [`crate::repository::recipients`]): a
/// recipient added by hand would receive the key at the next rekey or ceremony.
/// Whether a token holds `vault`'s key (or its record is broken: then an error is found): a
/// key a token holds has no recipients, and its record must parse and name `signer`'s key.
fn in_token(
    repo: &CaRepo,
    vault: &crate::authority::custody::Vault,
    signer: &crate::authority::ca::CaCert,
    f: &mut Findings,
) -> bool {
    match crate::authority::custody::token_record(&repo.dir, vault) {
        Ok(Some(record)) => {
            if !crate::authority::pubkey::same_key(&record.spki_der, &signer.spki_der) {
                let file = crate::authority::custody::token_file(vault);
                f.errors.push(Error::bad_file(
                    &file,
                    format!(
                        "the public key it records is not the one of the certificate {} signs for",
                        vault.what
                    ),
                    format!("restore it from git history (git log -p -- {file})"),
                ));
            }
            true
        }
        Ok(None) => false,
        Err(e) => {
            f.errors.push(e);
            true
        }
    }
}

fn check_custody(repo: &CaRepo, state: &load::State, f: &mut Findings) -> Result<()> {
    use crate::repository::recipients::{diff, judge, Standing};
    let mut vaults = vec![(
        crate::authority::custody::ISSUING,
        &state.ca,
        "gitca rekey --add RECIPIENT",
    )];
    if let Some(h) = &state.hierarchy {
        vaults.push((
            crate::authority::hierarchy::ROOT_VAULT,
            &h.root,
            "gitca rekey --root --add RECIPIENT (a root custodian)",
        ));
    }
    // A retiring intermediate's key has no list of its own (it keeps the current one's), but
    // a token record of it must name its key like any other.
    if let Some(p) = state.hierarchy.as_ref().and_then(|h| h.previous.as_ref()) {
        in_token(
            repo,
            &crate::authority::hierarchy::PREVIOUS_VAULT,
            &p.cert,
            f,
        );
    }
    for (vault, signer, confirm) in vaults {
        if in_token(repo, &vault, signer, f) {
            continue;
        }
        let (list, standing) = judge(repo, &vault, signer)?;
        match standing {
            Standing::Signed { .. } => {}
            Standing::Unsigned => f.warnings.push(Warning {
                file: vault.recipients.into(),
                message: format!("{} is not signed by {} yet (a CA from before signed lists)", vault.recipients, vault.what),
                help: format!("the next rekey or ceremony asks to confirm each recipient and signs it; or now: {}", confirm.replace("--add RECIPIENT", "--add EACH-LISTED-RECIPIENT")),
            }),
            Standing::Changed { signed, commit, why, .. } => {
                let (added, removed) = diff(&signed, &list.recipients);
                let change: Vec<String> = added
                    .iter()
                    .map(|r| format!("+ {r}"))
                    .chain(removed.iter().map(|r| format!("- {r}")))
                    .collect();
                f.errors.push(Error::bad_file(
                    vault.recipients,
                    format!(
                        "not the list {} last signed ({why}){}: the next rekey or ceremony would encrypt the key to it",
                        vault.what,
                        if change.is_empty() { String::new() } else { format!(": {}", change.join(", ")) }
                    ),
                    format!(
                        "{}if the change is wanted, a key holder confirms it: {confirm}",
                        if commit.is_empty() {
                            String::new()
                        } else {
                            format!("restore the signed list (git checkout {} -- {}); ", &commit[..12.min(commit.len())], vault.recipients)
                        }
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The chain in a few lines: what check shows of a CA with an offline root.
fn describe_hierarchy(
    h: &crate::authority::hierarchy::Hierarchy,
    ca: &crate::authority::ca::CaCert,
) -> Vec<String> {
    let mut lines = vec![
        format!(
            "root {} (offline; expires {}); root CRL #{} until {}",
            h.root.subject,
            &fmt_time(h.root.not_after)[..10],
            h.root_crl.number,
            h.root_crl.next_update.map(fmt_time).unwrap_or_default()
        ),
        format!(
            "└ issuing intermediate {} {} (expires {})",
            h.current,
            ca.subject,
            &fmt_time(ca.not_after)[..10]
        ),
    ];
    if let Some(p) = &h.previous {
        lines.push(format!(
            "└ retiring intermediate {} {} (CRL #{})",
            p.id, p.cert.subject, p.crl.number
        ));
    }
    let revoked = h
        .intermediates
        .iter()
        .filter(|r| r.reason.is_some())
        .count();
    if revoked > 0 {
        lines.push(format!(
            "└ {revoked} revoked intermediate(s) on the root CRL"
        ));
    }
    lines
}

/// The root side of a CA with an offline root: the root CRL's ceremony, revocations only the
/// root can publish, a retiring intermediate's CRL, and the root's own expiry.
fn check_hierarchy(
    f: &mut Findings,
    h: &crate::authority::hierarchy::Hierarchy,
    state: &load::State,
    now: OffsetDateTime,
) {
    use PREVIOUS_CRL;
    use ROOT_CERT;
    use ROOT_CRL;
    use ROSTER;
    f.errors.extend(h.orphans(&state.ledger, now));
    if let Some(why) = &h.roster_problem {
        f.errors.push(Error::bad_file(
            ROSTER,
            why.clone(),
            "ca/intermediates.tsv is written by gitca's root ceremonies only",
        ));
    }
    match h.root_crl.next_update {
        Some(next) if next <= now => f.errors.push(Error::bad_file(
            ROOT_CRL,
            format!("the root CRL expired {}: nginx refuses every client", fmt_time(next)),
            "the root custodians must run `gitca root sign-crl` now, then `gitca deploy crl` on the servers",
        )),
        _ => {
            if let Some(due) = h.ceremony_due(now, state.config.root.ceremony_warning.0) {
                f.warnings.push(Warning {
                    file: ROOT_CRL.into(),
                    message: due,
                    help: "a root custodian runs `gitca root sign-crl --identity KEY` and pushes".into(),
                });
            }
        }
    }
    let pending = h.unpublished_revocations(&state.ledger, now);
    if !pending.is_empty() {
        f.warnings.push(Warning {
            file: ROOT_CRL.into(),
            message: format!(
                "{} revocation(s) of certificates the root signed itself are not on the root CRL yet: {}",
                pending.len(),
                pending.join(", ")
            ),
            help: "they stay valid until a root custodian runs `gitca root sign-crl`".into(),
        });
    }
    if let Some(p) = &h.previous {
        if p.crl.next_update.is_some_and(|n| n <= now) {
            f.errors.push(Error::bad_file(
                PREVIOUS_CRL,
                "the retiring intermediate's CRL expired: its certificates are refused",
                "run gitca reconcile (it re-signs it, or retires the intermediate)",
            ));
        }
    }
    if h.root.not_after - now <= time::Duration::days(365) {
        f.warnings.push(Warning {
            file: ROOT_CERT.into(),
            message: format!(
                "the root certificate expires {} (in {})",
                &fmt_time(h.root.not_after)[..10],
                human_span(h.root.not_after - now)
            ),
            help: "plan a new root (gitca init --offline-root) and move servers and clients to it before then".into(),
        });
    }
}

fn error_json(e: &Error) -> serde_json::Value {
    let (file, line) = match e {
        Error::Located(l) => (Some(l.file().to_string()), Some(l.line())),
        Error::BadFile { path, .. } => (Some(path.display().to_string()), None),
        _ => (None, None),
    };
    json!({
        "file": file,
        "line": line,
        "message": e.to_string(),
        "help": e.help().map(|h| h.to_string()),
    })
}

/// The top-level entry point for `gitca check`.
pub fn run_check(
    dir: &Path,
    now: OffsetDateTime,
    json_out: bool,
    base: Option<&str>,
    out: &mut dyn Write,
) -> Result<u8> {
    let repo = CaRepo::open(dir)?;
    let f = collect(&repo, now, base)?;
    let ok = f.errors.is_empty();
    if json_out {
        let doc = json!({
            "ok": ok,
            "errors": f.errors.iter().map(error_json).collect::<Vec<_>>(),
            "warnings": f.warnings.iter().map(|w| json!({"file": w.file, "message": w.message, "help": w.help})).collect::<Vec<_>>(),
            "policy_changes": f.policy,
            "hierarchy": f.hierarchy,
        });
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        render_findings(&f, out);
    }
    Ok(if ok { 0 } else { 1 })
}

/// Diagnostics as text, the first [`report::MAX_DIAGNOSTICS`] in full and the rest counted: a
/// file with thousands of broken entries must not print (or hold) thousands of snippets.
pub fn render_diagnostics(errors: &[Error]) -> String {
    let mut s = String::new();
    for e in errors.iter().take(report::MAX_DIAGNOSTICS) {
        s.push_str(&render_diagnostic(e));
        s.push('\n');
    }
    if errors.len() > report::MAX_DIAGNOSTICS {
        s.push_str(&format!(
            "… and {} more problem(s) not shown (`gitca check --json` lists them all)\n",
            errors.len() - report::MAX_DIAGNOSTICS
        ));
    }
    s
}

/// One diagnostic as text, as the terminal shows it (no colour), every secret redacted.
pub fn render_diagnostic(e: &Error) -> String {
    // The other places of a diagnostic nest under it (no second `Error:` heading).
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_show_related_as_nested(true);
    let mut s = String::new();
    let _ = handler.render_report(&mut s, e);
    crate::output::redact::Redactor::from_env().text(s.trim_end())
}

/// Human rendering: each error as a miette diagnostic, then warnings, then a one-line verdict.
pub fn render_findings(f: &Findings, out: &mut dyn Write) {
    let _ = write!(out, "{}", render_diagnostics(&f.errors));
    for w in &f.warnings {
        let _ = writeln!(
            out,
            "  ⚠ warning: {}: {}\n  help: {}",
            crate::output::encode::one_line(&w.file),
            w.message,
            w.help
        );
    }
    if !f.policy.is_empty() {
        let _ = writeln!(
            out,
            "  policy change (gitca.yaml applies to every identity; review each line):"
        );
        for p in &f.policy {
            let _ = writeln!(out, "    {p}");
        }
    }
    for line in &f.hierarchy {
        let _ = writeln!(out, "  {line}");
    }
    let verdict = if f.errors.is_empty() {
        "check passed"
    } else {
        "check failed"
    };
    let _ = writeln!(
        out,
        "{verdict}: {} error(s), {} warning(s)",
        f.errors.len(),
        f.warnings.len()
    );
}

pub enum PlanFormat {
    Human,
    Json,
    Markdown,
}

/// The top-level entry point for `gitca plan`.
pub fn run_plan(
    dir: &Path,
    now: OffsetDateTime,
    format: PlanFormat,
    detailed_exitcode: bool,
    base: Option<&str>,
    out: &mut dyn Write,
) -> Result<u8> {
    let repo = CaRepo::open(dir)?;
    let policy = policy_since(&repo, base)?;
    let state = load::load(&repo)?;
    let vetted = state.plan(now);
    let mut plan = vetted.plan;
    state.note_replacements(&repo.dir, &mut plan);
    plan.policy_changes = policy;
    let too_far = state.inventory.acknowledgements_too_far(now);
    if matches!(format, PlanFormat::Human) {
        let all: Vec<&Error> = state
            .problems
            .iter()
            .chain(&too_far)
            .chain(&vetted.diagnostics)
            .collect();
        for e in all.iter().take(report::MAX_DIAGNOSTICS) {
            crate::output::redact::stderr(&render_diagnostic(e));
        }
        if all.len() > report::MAX_DIAGNOSTICS {
            crate::output::redact::stderr(&format!(
                "… and {} more problem(s) (gitca check lists them all)",
                all.len() - report::MAX_DIAGNOSTICS
            ));
        }
    }
    render_plan(out, &plan, format, now);
    // The whole plan is printed first; then a blocked identity nobody acknowledged or a broken
    // declaration fails the command, as an invalid configuration fails `terraform plan`.
    Ok(
        if plan.unacknowledged().next().is_some()
            || !state.problems.is_empty()
            || !too_far.is_empty()
        {
            1
        } else if detailed_exitcode && !plan.is_empty() {
            2
        } else {
            0
        },
    )
}

/// How gitca.yaml changed: since the base's fork point with `--base`, after check's
/// comparison with it (whose errors refuse the plan), else since HEAD.
fn policy_since(repo: &CaRepo, base: Option<&str>) -> Result<Vec<String>> {
    Ok(match base {
        Some(base) => {
            let mut f = Findings::default();
            compare_with_base(repo, base, &mut f)?;
            if !f.errors.is_empty() {
                return Err(Error::Many {
                    count: f.errors.len(),
                    errors: f.errors,
                });
            }
            f.policy
        }
        None => policy_changes(repo, None),
    })
}

/// The plan in the format asked for.
fn render_plan(out: &mut dyn Write, plan: &Plan, format: PlanFormat, now: OffsetDateTime) {
    match format {
        PlanFormat::Human => report::render_plan_human(out, plan),
        PlanFormat::Markdown => report::render_plan_markdown(out, plan),
        PlanFormat::Json => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&report::plan_json(plan, now)).expect("json")
            );
        }
    }
}
