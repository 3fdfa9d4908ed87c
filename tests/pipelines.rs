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
/// fresh CRL, and records gitca's exit 3 for the jobs after it (issue 19: the step succeeds,
/// publishing follows, and the `attention` job turns the run red). A push refused for a reason
/// other than a race is reported as such, not retried, and records nothing.
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
    let outputs = remote.ca.tmp.path().join("r2-outputs");
    let mut env2 = env.to_vec();
    env2.push(("GITHUB_OUTPUT", outputs.to_str().unwrap()));
    let o = ok(run_block(&step, &runner, &env2));
    assert!(stderr(&o).contains("carol"), "{}", stderr(&o));
    let recorded = std::fs::read_to_string(&outputs).unwrap();
    let origin = git(&remote.bare, &["rev-parse", "main"]);
    assert_eq!(
        recorded,
        format!("status=3\ncommit={origin}"),
        "gitca's status and the commit on origin, for the publish and attention jobs"
    );
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
    let outputs = remote.ca.tmp.path().join("refused-outputs");
    let mut env6 = env.to_vec();
    env6.push(("GITCA_NOW", later.as_str()));
    env6.push(("GITHUB_OUTPUT", outputs.to_str().unwrap()));
    let o = run_block(&step, &refused, &env6);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        !outputs.exists(),
        "nothing recorded, so nothing is published"
    );
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

// ---------------------------------------------------------------------------------------------
// The job graphs (issue 19, "the CRL never depends on a green job"). The tests above run the
// shell; these run what decides which shell runs: GitLab's stages, `needs`, rules and dotenv
// reports with the real gitlab-ci-local, and GitHub's `needs` and `if:` with the evaluator of
// tests/common/github.rs. The story is the one that broke it: a merge offboards bob (a
// revocation, a new CRL) while carol's CSR names someone else, so gitca reconcile commits
// everything it could and exits 3.

/// A tool scripts/install-ci-tools.sh installs under target/ci-tools (never skipped: missing,
/// the test fails).
fn ci_tool(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/ci-tools")
        .join(rel);
    assert!(
        path.is_file(),
        "{} is not installed: run scripts/install-ci-tools.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// The number and revoked serials (lowercase hex, no leading zeros) of a published CRL, as the
/// real openssl reads it.
fn published_crl(tree: &Path) -> (u64, Vec<String>) {
    let pem = tree.join("ca.crl.pem");
    assert!(pem.is_file(), "nothing published at {}", tree.display());
    let o = ok(tool(
        "openssl",
        &["crl", "-in", pem.to_str().unwrap(), "-noout", "-text"],
        tree,
    ));
    let text = stdout(&o);
    let mut lines = text.lines().map(str::trim);
    let mut number = None;
    let mut serials = Vec::new();
    while let Some(l) = lines.next() {
        if l.starts_with("X509v3 CRL Number") {
            number = lines.next().and_then(|n| n.parse().ok());
        } else if let Some(s) = l.strip_prefix("Serial Number: ") {
            serials.push(hex_serial(s));
        }
    }
    (number.expect("a CRL number"), serials)
}

fn hex_serial(s: &str) -> String {
    s.to_ascii_lowercase().trim_start_matches('0').to_string()
}

/// `name`'s serials in the ledger on origin.
fn serials_of(remote: &Remote, name: &str) -> Vec<String> {
    let check = remote.clone(&format!("serials-{}", rand_suffix()));
    std::fs::read_to_string(check.join("ledger.tsv"))
        .unwrap()
        .lines()
        .filter(|l| l.split('\t').nth(1) == Some(name))
        .map(|l| hex_serial(l.split('\t').next().unwrap()))
        .collect()
}

/// alice and bob onboard and are reconciled; then one merge offboards bob while carol's new
/// CSR names someone else (`mallory`). Returns bob's serial.
fn offboard_bob_while_carol_is_blocked(remote: &Remote, reconcile: impl Fn()) -> String {
    let dev = remote.clone(&format!("dev-{}", rand_suffix()));
    remote.onboard(&dev, "alice", "main");
    remote.onboard(&dev, "bob", "main");
    reconcile();
    git(&dev, &["pull", "-q", "origin", "main"]);
    std::fs::remove_file(dev.join("identities/bob.yaml")).unwrap();
    std::fs::remove_file(dev.join("csr/bob.csr")).unwrap();
    let key = remote.ca.keys.join("carol.key");
    ok(tool(
        "openssl",
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            "csr/carol.csr",
            "-subj",
            "/CN=mallory",
        ],
        &dev,
    ));
    std::fs::write(
        dev.join("identities/carol.yaml"),
        "users:\n  - name: carol\n    csr: csr/carol.csr\n",
    )
    .unwrap();
    git(&dev, &["add", "-A"]);
    git(
        &dev,
        &["commit", "-qm", "bob leaves; carol (CSR for mallory)"],
    );
    git(&dev, &["push", "-q", "origin", "main"]);
    serials_of(remote, "bob").pop().expect("bob was issued")
}

/// Makes the remote refuse every push, as a protected branch would.
fn refuse_pushes(remote: &Remote) {
    let hook = remote.bare.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'denied by policy' >&2\nexit 1\n").unwrap();
    ok(tool(
        "chmod",
        &["+x", hook.to_str().unwrap()],
        remote.ca.tmp.path(),
    ));
}

/// One run of examples/ci/github/reconcile.yml, as GitHub runs it, for a push to main at `now`;
/// `pages` is what GitHub Pages serves.
fn github_run(remote: &Remote, pages: &Path, now: &str) -> common::github::WorkflowRun {
    let wf = workflow("examples/ci/github/reconcile.yml");
    let root = remote.ca.tmp.path().join(format!("gh-{}", rand_suffix()));
    let artifact = root.join("pages-artifact");
    let bare = remote.bare.clone();
    let action = |uses: &str, with: &std::collections::BTreeMap<String, String>, ws: &Path| {
        let copy = |from: &Path, to: &Path| {
            let _ = std::fs::remove_dir_all(to);
            std::fs::create_dir_all(to).unwrap();
            let from = format!("{}/.", from.display());
            tool("cp", &["-a", &from, to.to_str().unwrap()], ws)
                .status
                .success()
        };
        match uses {
            // A full clone (the example asks for fetch-depth: 0), at `ref` when given.
            "actions/checkout@v4" => {
                let cloned = tool(
                    "git",
                    &["clone", "-q", bare.to_str().unwrap(), ws.to_str().unwrap()],
                    ws,
                )
                .status
                .success();
                let r = with.get("ref").map(String::as_str).unwrap_or("");
                cloned && (r.is_empty() || tool("git", &["checkout", "-q", r], ws).status.success())
            }
            "actions/upload-pages-artifact@v3" => copy(&ws.join(&with["path"]), &artifact),
            "actions/deploy-pages@v4" => copy(&artifact, pages),
            other => panic!("no stand-in for {other}"),
        }
    };
    let identity = std::fs::read_to_string(&remote.ca.identity).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("gitca");
    let runner = common::github::Runner {
        secrets: [("GITCA_AGE_IDENTITY".to_string(), identity)].into(),
        vars: Default::default(),
        github: [
            ("event_name".to_string(), "push".to_string()),
            ("ref".to_string(), "refs/heads/main".to_string()),
        ]
        .into(),
        env: vec![("GITCA_NOW".into(), now.into())],
        path: vec![bin.parent().unwrap().to_path_buf()],
        // The package install (download, checksum, dpkg-deb) is tested in tests/package.rs;
        // here the gitca under test is on PATH.
        replace: [("Install gitca".to_string(), "gitca --version".to_string())].into(),
        action: &action,
        root,
    };
    runner.run(&wf)
}

/// On the example before issue 19, this failed: the reconcile step (run with `bash -e`, as
/// GitHub runs it) ended at gitca's exit 3 before pushing, and `publish` (needs: reconcile,
/// no `if:`) was skipped, so the published CRL stayed the old one.
#[test]
fn github_workflow_publishes_the_new_crl_when_an_identity_is_blocked_and_turns_red_after() {
    let remote = Remote::new();
    let pages = remote.ca.tmp.path().join("github-pages");
    let bob = offboard_bob_while_carol_is_blocked(&remote, || {
        let r = github_run(&remote, &pages, T0);
        assert_eq!(r.conclusion(), "success", "{}", r.story());
    });
    let (before, _) = published_crl(&pages);

    let r = github_run(&remote, &pages, T0);
    let reconcile = r.job("reconcile");
    assert_eq!(reconcile.result, "success", "{}", r.story());
    assert_eq!(reconcile.outputs["status"], "3", "{}", r.story());
    assert!(reconcile.log.contains("carol"), "{}", reconcile.log);
    assert_eq!(r.job("publish").result, "success", "{}", r.story());
    let (after, revoked) = published_crl(&pages);
    assert!(
        after > before && revoked.contains(&bob),
        "the published CRL is the new one (#{before} -> #{after}, bob {bob} in {revoked:?})"
    );
    // Exactly the commit on origin was published.
    let origin = git(&remote.bare, &["rev-parse", "main"]);
    assert_eq!(reconcile.outputs["commit"], origin.trim());
    // ...and only then the run turns red.
    assert_eq!(r.job("attention").result, "failure", "{}", r.story());
    assert_eq!(r.conclusion(), "failure");

    // A push refused (a protected branch) publishes nothing: what the runner committed was
    // never on origin. Six days on, the CRL is due for its refresh.
    refuse_pushes(&remote);
    let r = github_run(&remote, &pages, &days_after(T0, 6));
    assert_eq!(r.job("reconcile").result, "failure", "{}", r.story());
    assert!(
        r.job("reconcile").log.contains("push refused, not a race"),
        "{}",
        r.story()
    );
    assert_eq!(r.job("publish").result, "skipped", "{}", r.story());
    assert_eq!(published_crl(&pages).0, after, "nothing unpushed published");
    assert_eq!(r.conclusion(), "failure");
}

/// The GitHub workflows pass actionlint (with shellcheck on every `run:` block).
#[test]
fn github_workflows_pass_actionlint() {
    require("shellcheck");
    let actionlint = ci_tool("venv/bin/actionlint");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = run(std::process::Command::new(actionlint)
        .current_dir(root)
        .args([
            "-shellcheck",
            "shellcheck",
            // GitHub's node20 runtime deprecation of actions/checkout@v4 and
            // actions/deploy-pages@v4: moving the examples to new action majors is its own
            // change, reviewed on its own.
            "-ignore",
            r#"runtime "node20" is deprecated"#,
            "examples/ci/github/pr.yml",
            "examples/ci/github/reconcile.yml",
        ]));
    assert!(
        o.status.success(),
        "actionlint:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn the_github_evaluator_reads_conditions_as_github_does() {
    use common::github::step_condition as c;
    let steps = serde_json::json!({
        "r": { "outcome": "failure", "outputs": { "commit": "abc", "status": "3" } }
    });
    assert!(c(
        "${{ steps.r.outputs.status == '3' }}",
        steps.clone(),
        false
    ));
    assert!(
        !c("steps.r.outputs.status == '3'", steps.clone(), true),
        "implicit success() after a failed step"
    );
    assert!(c(
        "${{ !cancelled() && steps.r.outputs.commit != '' }}",
        steps.clone(),
        true
    ));
    assert!(!c(
        "${{ !cancelled() && steps.r.outputs.missing != '' }}",
        steps.clone(),
        true
    ));
    assert!(c("always()", steps.clone(), true));
    assert!(c("failure()", steps.clone(), true) && !c("failure()", steps.clone(), false));
    assert!(c(
        "steps.r.outcome == 'FAILURE' || false",
        steps.clone(),
        false
    ));
    assert!(c("steps.r.outputs.status == 3", steps, false), "loose ==");
}

/// One pipeline of examples/ci/gitlab/gitlab-ci.yml run by the real gitlab-ci-local with the
/// shell executor, in a fresh clone of the remote (the pipeline's checkout) at `now`; `source`
/// is CI_PIPELINE_SOURCE. Returns the process output, the jobs' verdicts (`PASS`/`FAIL`/`WARN`
/// per job that ran) and the state directory (artifacts under `artifacts/JOB/`).
fn gitlab_pipeline(
    remote: &Remote,
    now: &str,
    source: &str,
) -> (std::process::Output, Vec<(String, String)>, PathBuf) {
    require("rsync");
    let gcl = ci_tool("node_modules/.bin/gitlab-ci-local");
    let tmp = remote.ca.tmp.path();
    let n = rand_suffix();
    let checkout = remote.clone(&format!("gl-pipeline-{n}"));
    // The test's copy: no image (the shell executor runs no container), and the gitca under
    // test instead of the pinned package (its install is tested in tests/package.rs). JSON is
    // YAML, so the copy is the parsed file written back.
    let mut wf = workflow("examples/ci/gitlab/gitlab-ci.yml");
    let default = wf["default"].as_object_mut().unwrap();
    assert!(default.remove("image").is_some());
    let bin = assert_cmd::cargo::cargo_bin("gitca");
    default.insert(
        "before_script".into(),
        serde_json::json!([
            format!("export PATH=\"{}:$PATH\"", bin.parent().unwrap().display()),
            "gitca --version"
        ]),
    );
    std::fs::write(
        tmp.join(format!("gitlab-ci-{n}.yml")),
        serde_json::to_string_pretty(&wf).unwrap(),
    )
    .unwrap();
    let identity = std::fs::read_to_string(&remote.ca.identity).unwrap();
    std::fs::write(
        tmp.join(format!("gitlab-vars-{n}.yml")),
        serde_json::json!({ "GITCA_AGE_IDENTITY": identity, "GITCA_NOW": now }).to_string(),
    )
    .unwrap();
    let state = format!("../gl-state-{n}");
    let mut c = std::process::Command::new(gcl);
    c.current_dir(&checkout)
        .args(["--shell-executor-no-image", "--file"])
        .arg(format!("../gitlab-ci-{n}.yml"))
        .arg("--variables-file")
        .arg(format!("../gitlab-vars-{n}.yml"))
        .args(["--state-dir", &state, "--variable"])
        .arg(format!("CI_PIPELINE_SOURCE={source}"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GITCA_") || k.starts_with("GIT_") || k.starts_with("CI_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", empty_home())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1");
    let o = run(&mut c);
    // The summary: " PASS  job", " FAIL  job", " WARN  job" (allowed to fail), one per job run.
    let verdicts = stdout(&o)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some(v @ ("PASS" | "FAIL" | "WARN")), Some(job), None) => {
                    Some((job.to_string(), v.to_string()))
                }
                _ => None,
            }
        })
        .collect();
    (o, verdicts, checkout.join(state))
}

fn verdict<'v>(verdicts: &'v [(String, String)], job: &str) -> Option<&'v str> {
    verdicts
        .iter()
        .find(|(j, _)| j == job)
        .map(|(_, v)| v.as_str())
}

/// On the example before issue 19, this failed: gitca-reconcile exited 3 (pushed, then failed)
/// and `pages`, in a later stage, never ran — the published CRL stayed the old one.
#[test]
fn gitlab_pipeline_publishes_the_new_crl_when_an_identity_is_blocked_and_fails_after() {
    let remote = Remote::new();
    let before = std::cell::Cell::new(0);
    let bob = offboard_bob_while_carol_is_blocked(&remote, || {
        let (o, v, state) = gitlab_pipeline(&remote, T0, "push");
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        assert_eq!(verdict(&v, "pages"), Some("PASS"), "{v:?}");
        before.set(published_crl(&state.join("artifacts/pages/public")).0);
    });
    let before = before.get();

    let (o, v, state) = gitlab_pipeline(&remote, T0, "push");
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(verdict(&v, "gitca-reconcile"), Some("PASS"), "{log}");
    assert!(log.contains("carol"), "{log}");
    assert_eq!(
        verdict(&v, "pages"),
        Some("PASS"),
        "pages ran on exit 3: {log}"
    );
    let (number, revoked) = published_crl(&state.join("artifacts/pages/public"));
    assert!(
        number > before && revoked.contains(&bob),
        "the published CRL is the new one (#{before} -> #{number}, bob {bob} in {revoked:?}): {log}"
    );
    assert_eq!(verdict(&v, "gitca-attention"), Some("FAIL"), "{log}");
    assert!(!o.status.success(), "the pipeline failed: {log}");

    // Acknowledged in a reviewed change (docs/ci.md), carol alone no longer turns the daily
    // run red; she is still reported, and Pages is still published.
    let dev = remote.clone(&format!("ack-{}", rand_suffix()));
    std::fs::write(
        dev.join("identities/carol.yaml"),
        "users:\n  - name: carol\n    csr: csr/carol.csr\n    acknowledged: {until: 2026-01-20, reason: \"waiting for carol's new CSR\"}\n",
    )
    .unwrap();
    git(&dev, &["commit", "-qam", "acknowledge carol"]);
    git(&dev, &["push", "-q", "origin", "main"]);
    let (o, v, _) = gitlab_pipeline(&remote, &days_after(T0, 1), "schedule");
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{log}");
    assert_eq!(verdict(&v, "pages"), Some("PASS"), "{log}");
    assert_eq!(verdict(&v, "gitca-attention"), Some("PASS"), "{log}");
    assert!(log.contains("still blocked, acknowledged: carol"), "{log}");

    // A push refused publishes nothing: the daily run six days on (CRL refresh due).
    refuse_pushes(&remote);
    let (o, v, state) = gitlab_pipeline(&remote, &days_after(T0, 6), "schedule");
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(verdict(&v, "gitca-reconcile"), Some("FAIL"), "{log}");
    assert!(log.contains("push refused, not a race"), "{log}");
    assert_eq!(verdict(&v, "pages"), None, "pages never ran: {log}");
    assert!(!state.join("artifacts/pages").exists(), "{log}");
    assert!(!o.status.success());
}
