//! The CI pipelines of examples/ci, run verbatim (their `run:`/`script:` blocks) against a bare
//! repository standing in for the remote, including a rejected push that is recovered.

mod common;

use std::path::{Path, PathBuf};

use common::ci::{github_step, workflow};
use common::*;

/// A GitLab job's `script:` lines as one shell script (GitLab stops at the first failing line).
fn gitlab_script(wf: &serde_json::Value, job: &str) -> String {
    let lines: Vec<String> = wf[job]["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    format!("set -e\n{}", lines.join("\n"))
}

/// Runs a pipeline shell block in `dir` (see [`ci::run_block`]) at the tests' fixed time.
fn run_block(script: &str, dir: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec![("GITCA_NOW", T0)];
    all.extend_from_slice(env);
    ci::run_block(script, dir, &all)
}

struct Remote {
    ca: Ca,
    bare: PathBuf,
}

impl Remote {
    fn new() -> Remote {
        let ca = Ca::new();
        let bare = ca.tmp.path().join("remote.git");
        git(
            ca.tmp.path(),
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        git(
            &ca.root,
            &["remote", "add", "origin", bare.to_str().unwrap()],
        );
        git(&ca.root, &["push", "-q", "origin", "main"]);
        Remote { ca, bare }
    }

    fn clone(&self, name: &str) -> PathBuf {
        let dir = self.ca.tmp.path().join(name);
        git(
            self.ca.tmp.path(),
            &[
                "clone",
                "-q",
                self.bare.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        );
        dir
    }

    /// A developer onboards `name` with `gitca request` and pushes it to `branch`.
    fn onboard(&self, clone: &Path, name: &str, branch: &str) {
        git(clone, &["checkout", "-q", "-B", branch]);
        let key = self.ca.keys.join(format!("{name}.key"));
        ok(run(gitca()
            .arg("-C")
            .arg(clone)
            .args(["request", name, "--key-out"])
            .arg(&key)));
        git(clone, &["add", "-A"]);
        git(clone, &["commit", "-q", "-m", &format!("onboard {name}")]);
        git(clone, &["push", "-q", "origin", branch]);
    }

    fn ledger_identities(&self) -> Vec<String> {
        let check = self.clone(&format!("verify-{}", rand_suffix()));
        let text = std::fs::read_to_string(check.join("ledger.tsv")).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("serial\t"))
            .map(|l| l.split('\t').nth(1).unwrap().to_string())
            .collect()
    }
}

fn rand_suffix() -> String {
    format!(
        "{:?}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[test]
fn github_pipelines_review_merge_reconcile_and_recover_a_rejected_push() {
    let remote = Remote::new();
    let pr = github_workflow_checks("examples/ci/github/pr.yml");
    let rec = workflow("examples/ci/github/reconcile.yml");
    assert_eq!(
        rec["concurrency"]["group"], "gitca-reconcile",
        "runs never race"
    );
    assert!(
        rec["on"]["schedule"].is_array(),
        "a daily schedule keeps the CRL fresh"
    );

    // A pull request onboarding alice: the check job passes and the plan says what will happen.
    let dev = remote.clone("dev");
    remote.onboard(&dev, "alice", "onboard-alice");
    let runner = remote.clone("pr-runner");
    git(&runner, &["checkout", "-q", "onboard-alice"]);
    let env = [("BASE_REF", "origin/main")];
    ok(run_block(
        &github_step(&pr, "check", "Check"),
        &runner,
        &env,
    ));
    ok(run_block(&github_step(&pr, "check", "Plan"), &runner, &env));
    let plan = std::fs::read_to_string(runner.join("plan.md")).unwrap();
    assert!(
        plan.contains("| alice |") && plan.contains("new-identity"),
        "{plan}"
    );

    // Merge. The reconcile runner checks out main now...
    git(&dev, &["checkout", "-q", "main"]);
    git(&dev, &["merge", "-q", "--ff-only", "onboard-alice"]);
    git(&dev, &["push", "-q", "origin", "main"]);
    let stale = remote.clone("reconcile-runner");
    // ...but bob's onboarding lands on main before it pushes.
    let dev2 = remote.clone("dev2");
    remote.onboard(&dev2, "bob", "main");

    let identity = std::fs::read_to_string(&remote.ca.identity).unwrap();
    let env = [
        ("GITCA_IDENTITY", identity.as_str()),
        ("GITCA_AUTHOR_NAME", "gitca-bot"),
        ("GITCA_AUTHOR_EMAIL", "bot@example.com"),
        ("BRANCH", "main"),
    ];
    let o = ok(run_block(
        &github_step(&rec, "reconcile", "Reconcile and push"),
        &stale,
        &env,
    ));
    assert!(
        stdout(&o).contains("push rejected (attempt 1)"),
        "{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    let mut ids = remote.ledger_identities();
    ids.sort();
    assert_eq!(
        ids,
        ["alice", "bob"],
        "one certificate each: no double issuance survived"
    );

    // The next run has nothing to do and pushes nothing.
    let again = remote.clone("reconcile-runner-2");
    let o = ok(run_block(
        &github_step(&rec, "reconcile", "Reconcile and push"),
        &again,
        &env,
    ));
    assert!(stdout(&o).contains("nothing to push"), "{}", stdout(&o));
    let fresh = remote.clone("after");
    let o = run(gitca()
        .arg("-C")
        .arg(&fresh)
        .args(["--now", T0, "plan", "--detailed-exitcode"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    ok(run(gitca()
        .arg("-C")
        .arg(&fresh)
        .args(["--now", T0, "check"])));
}

/// Loads the PR workflow and checks the parts that are not shell.
fn github_workflow_checks(path: &str) -> serde_json::Value {
    let wf = workflow(path);
    assert!(wf["on"]["pull_request"].is_object());
    assert_eq!(
        wf["jobs"]["check"]["steps"][0]["with"]["fetch-depth"], 0,
        "--base needs history"
    );
    wf
}

#[test]
fn pr_check_job_fails_on_a_committed_key_and_on_hand_edits() {
    let remote = Remote::new();
    let pr = workflow("examples/ci/github/pr.yml");
    let dev = remote.clone("dev");
    remote.onboard(&dev, "alice", "onboard-alice");
    // The classic mistake: the key is committed next to the CSR.
    std::fs::copy(remote.ca.keys.join("alice.key"), dev.join("csr/alice.key")).unwrap();
    git(&dev, &["add", "-f", "csr/alice.key"]);
    git(&dev, &["commit", "-q", "-m", "oops"]);
    let o = fails(run_block(
        &github_step(&pr, "check", "Check"),
        &dev,
        &[("BASE_REF", "origin/main")],
    ));
    assert!(
        stdout(&o).contains("csr/alice.key") && stdout(&o).contains("private key"),
        "{}",
        stdout(&o)
    );

    // A hand edit of the ledger in a pull request.
    git(&dev, &["rm", "-q", "csr/alice.key"]);
    let ledger = dev.join("ledger.tsv");
    let mut text = std::fs::read_to_string(&ledger).unwrap();
    text.push_str("# hand edit\n");
    std::fs::write(&ledger, text).unwrap();
    git(&dev, &["commit", "-qam", "edit ledger"]);
    let o = fails(run_block(
        &github_step(&pr, "check", "Check"),
        &dev,
        &[("BASE_REF", "origin/main")],
    ));
    assert!(
        stdout(&o).contains("ledger.tsv") && stdout(&o).contains("edited by hand"),
        "{}",
        stdout(&o)
    );
    let o = run_block(
        &github_step(&pr, "check", "Plan"),
        &dev,
        &[("BASE_REF", "origin/main")],
    );
    assert_eq!(o.status.code(), Some(1), "plan refuses too: {}", stderr(&o));
}

#[test]
fn gitlab_pipeline_runs_the_same_story() {
    let remote = Remote::new();
    let wf = workflow("examples/ci/gitlab/gitlab-ci.yml");
    assert_eq!(wf["gitca-reconcile"]["resource_group"], "gitca-reconcile");
    let dev = remote.clone("dev");
    remote.onboard(&dev, "alice", "onboard-alice");
    let mr = remote.clone("mr");
    git(&mr, &["checkout", "-q", "onboard-alice"]);
    let o = ok(run_block(
        &gitlab_script(&wf, "gitca-check"),
        &mr,
        &[("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main")],
    ));
    assert!(stdout(&o).contains("new-identity"), "{}", stdout(&o));
    git(&dev, &["checkout", "-q", "main"]);
    git(&dev, &["merge", "-q", "--ff-only", "onboard-alice"]);
    git(&dev, &["push", "-q", "origin", "main"]);
    let stale = remote.clone("runner");
    remote.onboard(&remote.clone("dev2"), "bob", "main");
    let identity = std::fs::read_to_string(&remote.ca.identity).unwrap();
    let o = ok(run_block(
        &gitlab_script(&wf, "gitca-reconcile"),
        &stale,
        &[
            ("GITCA_AGE_IDENTITY", identity.as_str()),
            ("CI_DEFAULT_BRANCH", "main"),
            ("GITCA_AUTHOR_NAME", "bot"),
            ("GITCA_AUTHOR_EMAIL", "bot@example.com"),
        ],
    ));
    assert!(stdout(&o).contains("push rejected"), "{}", stdout(&o));
    let mut ids = remote.ledger_identities();
    ids.sort();
    assert_eq!(ids, ["alice", "bob"]);
}

/// Issue 13: a reconcile that cannot sign for someone still pushes every revocation and the
/// fresh CRL, and the job turns red (exit 3). A push refused for a reason other than a race is
/// reported as such, not retried.
#[test]
fn the_reconcile_job_pushes_what_it_could_and_turns_red() {
    let remote = Remote::new();
    let rec = workflow("examples/ci/github/reconcile.yml");
    let dev = remote.clone("dev");
    remote.onboard(&dev, "alice", "main");
    remote.onboard(&dev, "bob", "main");
    let identity = std::fs::read_to_string(&remote.ca.identity).unwrap();
    let env = [
        ("GITCA_IDENTITY", identity.as_str()),
        ("GITCA_AUTHOR_NAME", "gitca-bot"),
        ("GITCA_AUTHOR_EMAIL", "bot@example.com"),
        ("BRANCH", "main"),
    ];
    let step = github_step(&rec, "reconcile", "Reconcile and push");
    ok(run_block(&step, &remote.clone("r1"), &env));
    // One merge offboards bob; another breaks carol's CSR.
    git(&dev, &["pull", "-q", "origin", "main"]);
    std::fs::remove_file(dev.join("identities/bob.yaml")).unwrap();
    std::fs::write(
        dev.join("identities/carol.yaml"),
        "users:\n  - name: carol\n    csr: csr/carol.csr\n",
    )
    .unwrap();
    std::fs::write(dev.join("csr/carol.csr"), "not a CSR\n").unwrap();
    git(&dev, &["add", "-A"]);
    git(&dev, &["commit", "-qm", "bob leaves; carol (broken)"]);
    git(&dev, &["push", "-q", "origin", "main"]);
    let runner = remote.clone("r2");
    let o = run_block(&step, &runner, &env);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("carol"), "{}", stderr(&o));
    let after = remote.clone("after");
    let ledger = std::fs::read_to_string(after.join("ledger.tsv")).unwrap();
    assert!(
        ledger
            .lines()
            .any(|l| l.contains("\tbob\t") && l.contains("\trevoked\t")),
        "bob's revocation was pushed: {ledger}"
    );
    // A refused push (here a pre-push hook, as a protected branch would) is not a race.
    let refused = remote.clone("refused");
    let hook = refused.join(".git/hooks/pre-push");
    std::fs::write(&hook, "#!/bin/sh\necho 'denied by policy' >&2\nexit 1\n").unwrap();
    ok(tool("chmod", &["+x", hook.to_str().unwrap()], &refused));
    let later = days_after(T0, 6);
    let mut env6 = env.to_vec();
    env6.push(("GITCA_NOW", later.as_str()));
    let o = run_block(&step, &refused, &env6);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("push refused, not a race"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stdout(&o).contains("push rejected"),
        "not retried: {}",
        stdout(&o)
    );
}
