//! The CI examples of examples/ci as the tests run them: workflow files parsed, a step's
//! `run:` block taken verbatim, and run with the gitca under test on PATH.

use std::path::Path;
use std::process::{Command, Output};

use super::empty_home;

/// A workflow file of the repository, parsed.
pub fn workflow(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// The `run:` block of the step named `name` in a GitHub workflow.
pub fn github_step(wf: &serde_json::Value, job: &str, name: &str) -> String {
    wf["jobs"][job]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))["run"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs a GitHub `run:` block in `dir` as the runner does (`bash -e FILE`: a failing command
/// ends the step unless the block catches it), with gitca on PATH, no GITCA_* variable of the
/// test's own environment, a private HOME, no git configuration, and `$GITHUB_OUTPUT` (and
/// `$GITHUB_ENV`, `$GITHUB_PATH`, `$RUNNER_TEMP`) in a fresh directory; then `env`.
pub fn run_block(script: &str, dir: &Path, env: &[(&str, &str)]) -> Output {
    let bin = assert_cmd::cargo::cargo_bin("gitca");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let runner = tempfile::tempdir().unwrap();
    let file = runner.path().join("step.sh");
    std::fs::write(&file, script).unwrap();
    let mut c = Command::new("bash");
    c.arg("-e").arg(&file).current_dir(dir).env("PATH", path);
    for (k, _) in std::env::vars() {
        if k.starts_with("GITCA_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", empty_home())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("RUNNER_TEMP", runner.path());
    for f in ["GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH"] {
        c.env(f, runner.path().join(f));
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}
