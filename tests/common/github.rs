//! A GitHub Actions workflow run as GitHub runs it, for the subset examples/ci uses: jobs in
//! the order their `needs` give, job and step `if:` (with the implicit `success() &&` when no
//! status function is named), `success()`, `failure()`, `always()`, `cancelled()`, `!`, `&&`,
//! `||`, `==`, `!=` with GitHub's loose equality, the `needs`, `steps`, `secrets`, `vars` and
//! `github` contexts, job `outputs:`, `$GITHUB_OUTPUT`/`$GITHUB_ENV`/`$GITHUB_PATH`, and `run:`
//! blocks run the way the runner runs them (`bash -e FILE` without `shell:`; with `shell:
//! bash`, `bash --noprofile --norc -eo pipefail FILE`). A step that `uses:` an action is handed
//! to the test, which stands in for it (a checkout is a clone of the bare remote, Pages a
//! directory). Anything outside the subset panics: the evaluator never guesses.
//!
//! Nothing runs GitHub's job graph locally (actionlint checks syntax and types, not what runs),
//! and the promise "the CRL never depends on a green job" lives in that graph.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::empty_home;

/// What one job did.
#[derive(Debug, Default, Clone)]
pub struct JobRun {
    /// `success`, `failure` or `skipped`, as `needs.<job>.result`.
    pub result: String,
    pub outputs: BTreeMap<String, String>,
    /// Each step's name (or `uses:`) and outcome, in order.
    pub steps: Vec<(String, String)>,
    /// Every step's output, for failure messages.
    pub log: String,
}

/// What a workflow run did.
#[derive(Debug, Default)]
pub struct WorkflowRun {
    pub jobs: BTreeMap<String, JobRun>,
}

impl WorkflowRun {
    /// `success` when no job failed, as the run's check on the commit shows it.
    pub fn conclusion(&self) -> &'static str {
        if self.jobs.values().any(|j| j.result == "failure") {
            "failure"
        } else {
            "success"
        }
    }

    pub fn job(&self, name: &str) -> &JobRun {
        self.jobs
            .get(name)
            .unwrap_or_else(|| panic!("no job {name}"))
    }

    /// Every job's steps and log, for an assertion's message.
    pub fn story(&self) -> String {
        self.jobs
            .iter()
            .map(|(n, j)| format!("== job {n}: {} {:?}\n{}", j.result, j.steps, j.log))
            .collect()
    }
}

/// A step that `uses:` an action: the action's name (`actions/checkout@v4`), its evaluated
/// `with:` inputs, and the job's workspace. Returns whether it succeeded.
pub type Action<'a> = dyn Fn(&str, &BTreeMap<String, String>, &Path) -> bool + 'a;

/// Runs a workflow.
pub struct Runner<'a> {
    /// `secrets.*`, `vars.*` and `github.*`.
    pub secrets: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
    pub github: BTreeMap<String, String>,
    /// Environment every step gets on top of the runner's (e.g. GITCA_NOW).
    pub env: Vec<(String, String)>,
    /// Directories put first on PATH (the gitca under test).
    pub path: Vec<PathBuf>,
    /// Steps (by name) whose `run:` block is replaced, with the reason in the test.
    pub replace: BTreeMap<String, String>,
    pub action: &'a Action<'a>,
    /// Where each job gets its workspace and runner temp directory.
    pub root: PathBuf,
}

impl Runner<'_> {
    pub fn run(&self, wf: &Value) -> WorkflowRun {
        let jobs = wf["jobs"].as_object().expect("jobs");
        let mut done = WorkflowRun::default();
        let mut seq = 0;
        while done.jobs.len() < jobs.len() {
            let (name, job) = jobs
                .iter()
                .find(|(n, j)| {
                    !done.jobs.contains_key(*n)
                        && needs(j).iter().all(|d| done.jobs.contains_key(d))
                })
                .expect("the jobs' needs form no cycle and name existing jobs");
            seq += 1;
            let run = self.run_job(wf, name, job, &done, seq);
            done.jobs.insert(name.clone(), run);
        }
        done
    }

    fn run_job(&self, wf: &Value, name: &str, job: &Value, done: &WorkflowRun, seq: u32) -> JobRun {
        let direct = needs(job);
        let mut needs_ctx = serde_json::Map::new();
        for d in &direct {
            let j = &done.jobs[d];
            needs_ctx.insert(
                d.clone(),
                serde_json::json!({ "result": j.result, "outputs": j.outputs }),
            );
        }
        let ancestors = ancestors(wf, name);
        let status = Status {
            success: direct.iter().all(|d| done.jobs[d].result == "success"),
            failure: ancestors.iter().any(|d| done.jobs[d].result == "failure"),
        };
        let mut ctx = self.context();
        ctx.insert("needs".into(), Value::Object(needs_ctx));
        if !condition(&job["if"], &ctx, status) {
            return JobRun {
                result: "skipped".into(),
                ..JobRun::default()
            };
        }
        let workspace = self.root.join(format!("job{seq}-{name}"));
        let temp = self.root.join(format!("job{seq}-{name}-temp"));
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::create_dir_all(&temp).unwrap();
        let mut run = JobRun::default();
        let mut failed = false;
        let mut steps_ctx = serde_json::Map::new();
        let mut job_env: Vec<(String, String)> = Vec::new();
        for (k, v) in [&wf["env"], &job["env"]]
            .iter()
            .filter_map(|e| e.as_object())
            .flatten()
        {
            job_env.push((k.clone(), interpolate(v, &ctx)));
        }
        let mut path = self.path.clone();
        for (i, step) in job["steps"].as_array().expect("steps").iter().enumerate() {
            let label = step["name"]
                .as_str()
                .or(step["uses"].as_str())
                .unwrap_or("run")
                .to_string();
            ctx.insert("steps".into(), Value::Object(steps_ctx.clone()));
            let status = Status {
                success: !failed,
                failure: failed,
            };
            let outcome = if !condition(&step["if"], &ctx, status) {
                "skipped"
            } else {
                let mut env = job_env.clone();
                for (k, v) in step["env"].as_object().into_iter().flatten() {
                    env.push((k.clone(), interpolate(v, &ctx)));
                }
                let ok = if let Some(uses) = step["uses"].as_str() {
                    let with: BTreeMap<String, String> = step["with"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), interpolate(v, &ctx)))
                        .collect();
                    run.log.push_str(&format!("-- {label}\n"));
                    (self.action)(uses, &with, &workspace)
                } else {
                    let script = self
                        .replace
                        .get(&label)
                        .cloned()
                        .unwrap_or_else(|| step["run"].as_str().expect("run or uses").into());
                    let files = StepFiles::new(&temp, i);
                    let o = self.shell(step, &script, &workspace, &temp, &files, &path, &env);
                    run.log.push_str(&format!(
                        "-- {label} ({:?})\n{}{}",
                        o.status.code(),
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    ));
                    let outputs = files.outputs();
                    if let Some(id) = step["id"].as_str() {
                        steps_ctx.insert(id.into(), serde_json::json!({ "outputs": outputs }));
                    }
                    job_env.extend(files.env());
                    path.splice(0..0, files.path());
                    o.status.success()
                };
                if ok {
                    "success"
                } else {
                    "failure"
                }
            };
            if let Some(id) = step["id"].as_str() {
                let entry = steps_ctx
                    .entry(id.to_string())
                    .or_insert_with(|| serde_json::json!({ "outputs": {} }));
                entry["outcome"] = outcome.into();
                entry["conclusion"] = outcome.into();
            }
            if outcome == "failure" && step["continue-on-error"] != true {
                failed = true;
            }
            run.steps.push((label, outcome.into()));
        }
        ctx.insert("steps".into(), Value::Object(steps_ctx));
        run.outputs = job["outputs"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), interpolate(v, &ctx)))
            .collect();
        run.result = if failed { "failure" } else { "success" }.into();
        run
    }

    fn context(&self) -> serde_json::Map<String, Value> {
        let mut ctx = serde_json::Map::new();
        ctx.insert("secrets".into(), serde_json::json!(self.secrets));
        ctx.insert("vars".into(), serde_json::json!(self.vars));
        ctx.insert("github".into(), serde_json::json!(self.github));
        ctx
    }

    #[allow(clippy::too_many_arguments)]
    fn shell(
        &self,
        step: &Value,
        script: &str,
        workspace: &Path,
        temp: &Path,
        files: &StepFiles,
        path: &[PathBuf],
        env: &[(String, String)],
    ) -> std::process::Output {
        let file = files.dir.join("script.sh");
        std::fs::write(&file, script).unwrap();
        let mut c = Command::new("bash");
        match step["shell"].as_str() {
            None => c.arg("-e"),
            Some("bash") => c.args(["--noprofile", "--norc", "-eo", "pipefail"]),
            Some(other) => panic!("shell {other} is outside the evaluated subset"),
        };
        c.arg(&file).current_dir(workspace);
        for (k, _) in std::env::vars() {
            if k.starts_with("GITCA_") || k.starts_with("GIT_") || k.starts_with("GITHUB_") {
                c.env_remove(k);
            }
        }
        let mut dirs: Vec<PathBuf> = path.to_vec();
        dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
        c.env("PATH", std::env::join_paths(dirs).unwrap())
            .env("HOME", empty_home())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", workspace)
            .env("RUNNER_TEMP", temp)
            .env("GITHUB_OUTPUT", files.dir.join("output"))
            .env("GITHUB_ENV", files.dir.join("env"))
            .env("GITHUB_PATH", files.dir.join("path"));
        for (k, v) in self.env.iter().chain(env) {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

/// The files a step's commands write to (`$GITHUB_OUTPUT`, `$GITHUB_ENV`, `$GITHUB_PATH`).
struct StepFiles {
    dir: PathBuf,
}

impl StepFiles {
    fn new(temp: &Path, i: usize) -> StepFiles {
        let dir = temp.join(format!("_step{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["output", "env", "path"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        StepFiles { dir }
    }

    /// `name=value` lines and `name<<DELIMITER` blocks, as the runner reads them.
    fn pairs(&self, file: &str) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap();
        let mut out = Vec::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if let Some((k, delim)) = line.split_once("<<") {
                let mut v = Vec::new();
                for l in lines.by_ref() {
                    if l == delim {
                        break;
                    }
                    v.push(l);
                }
                out.push((k.to_string(), v.join("\n")));
            } else if let Some((k, v)) = line.split_once('=') {
                out.push((k.to_string(), v.to_string()));
            } else if !line.is_empty() {
                panic!("{file}: `{line}` is neither name=value nor name<<DELIMITER");
            }
        }
        out
    }

    fn outputs(&self) -> BTreeMap<String, String> {
        self.pairs("output").into_iter().collect()
    }

    fn env(&self) -> Vec<(String, String)> {
        self.pairs("env")
    }

    fn path(&self) -> Vec<PathBuf> {
        let text = std::fs::read_to_string(self.dir.join("path")).unwrap();
        text.lines().rev().map(PathBuf::from).collect()
    }
}

fn needs(job: &Value) -> Vec<String> {
    match &job["needs"] {
        Value::Null => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        other => panic!("needs: {other}"),
    }
}

fn ancestors(wf: &Value, job: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut todo = needs(&wf["jobs"][job]);
    while let Some(j) = todo.pop() {
        if !out.contains(&j) {
            todo.extend(needs(&wf["jobs"][&j]));
            out.push(j);
        }
    }
    out
}

/// What the status functions answer where an `if:` is evaluated (nothing is ever cancelled).
#[derive(Clone, Copy)]
struct Status {
    success: bool,
    failure: bool,
}

/// An `if:` (absent: `success()`), with `${{ }}` or without; without a status function it
/// means `success() && (…)`, as GitHub reads it.
fn condition(cond: &Value, ctx: &serde_json::Map<String, Value>, status: Status) -> bool {
    let text = match cond {
        Value::Null => return status.success,
        Value::Bool(b) => return status.success && *b,
        Value::String(s) => s.trim(),
        other => panic!("if: {other}"),
    };
    let text = text
        .strip_prefix("${{")
        .and_then(|t| t.strip_suffix("}}"))
        .unwrap_or(text);
    let tokens = lex(text);
    let names_status = tokens.windows(2).any(|w| {
        matches!(&w[0], Tok::Ident(f) if ["success", "failure", "always", "cancelled"].contains(&f.as_str()))
            && w[1] == Tok::Open
    });
    let mut p = Parser {
        tokens,
        at: 0,
        ctx,
        status,
    };
    let v = p.or();
    assert!(p.at == p.tokens.len(), "trailing tokens in `{text}`");
    (names_status || status.success) && truthy(&v)
}

/// A string with `${{ expr }}` parts (a `with:`, `env:` or `outputs:` value).
fn interpolate(v: &Value, ctx: &serde_json::Map<String, Value>) -> String {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return n.to_string(),
        Value::Bool(b) => return b.to_string(),
        other => panic!("not a scalar: {other}"),
    };
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closing }}") + start;
        let mut p = Parser {
            tokens: lex(&rest[start + 3..end]),
            at: 0,
            ctx,
            status: Status {
                success: true,
                failure: false,
            },
        };
        out.push_str(&to_string(&p.or()));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Open,
    Close,
    Comma,
    Dot,
    Not,
    And,
    Or,
    Eq,
    Ne,
}

fn lex(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        let fixed = match s.get(i..i + 2).unwrap_or("") {
            "&&" => Some((Tok::And, 2)),
            "||" => Some((Tok::Or, 2)),
            "==" => Some((Tok::Eq, 2)),
            "!=" => Some((Tok::Ne, 2)),
            _ => match c {
                '!' => Some((Tok::Not, 1)),
                '(' => Some((Tok::Open, 1)),
                ')' => Some((Tok::Close, 1)),
                ',' => Some((Tok::Comma, 1)),
                '.' => Some((Tok::Dot, 1)),
                _ => None,
            },
        };
        if let Some((t, len)) = fixed {
            out.push(t);
            i += len;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            // 'it''s': a quote inside a string is doubled.
            let mut v = String::new();
            i += 1;
            loop {
                let ch = s[i..].chars().next().expect("closing quote");
                i += ch.len_utf8();
                if ch != '\'' {
                    v.push(ch);
                } else if s[i..].starts_with('\'') {
                    v.push('\'');
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(Tok::Str(v));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Num(s[start..i].parse().unwrap()));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_-".contains(&b[i])) {
                i += 1;
            }
            out.push(Tok::Ident(s[start..i].to_string()));
        } else {
            panic!("`{c}` in `{s}` is outside the evaluated subset");
        }
    }
    out
}

struct Parser<'c> {
    tokens: Vec<Tok>,
    at: usize,
    ctx: &'c serde_json::Map<String, Value>,
    status: Status,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, t: &Tok) -> bool {
        let hit = self.peek() == Some(t);
        self.at += usize::from(hit);
        hit
    }

    /// `a || b`: the first truthy operand, else the last (values, not booleans).
    fn or(&mut self) -> Value {
        let mut v = self.and();
        while self.eat(&Tok::Or) {
            let r = self.and();
            if !truthy(&v) {
                v = r;
            }
        }
        v
    }

    fn and(&mut self) -> Value {
        let mut v = self.unary();
        while self.eat(&Tok::And) {
            let r = self.unary();
            if truthy(&v) {
                v = r;
            }
        }
        v
    }

    fn unary(&mut self) -> Value {
        if self.eat(&Tok::Not) {
            return Value::Bool(!truthy(&self.unary()));
        }
        let l = self.primary();
        if self.eat(&Tok::Eq) {
            Value::Bool(loose_eq(&l, &self.primary()))
        } else if self.eat(&Tok::Ne) {
            Value::Bool(!loose_eq(&l, &self.primary()))
        } else {
            l
        }
    }

    fn primary(&mut self) -> Value {
        let t = self.tokens.get(self.at).cloned().expect("an operand");
        self.at += 1;
        match t {
            Tok::Open => {
                let v = self.or();
                assert!(self.eat(&Tok::Close), "unbalanced parenthesis");
                v
            }
            Tok::Str(s) => Value::String(s),
            Tok::Num(n) => serde_json::json!(n),
            Tok::Ident(id) if self.peek() == Some(&Tok::Open) => {
                self.at += 1;
                assert!(
                    self.eat(&Tok::Close),
                    "{id}(): arguments are outside the subset"
                );
                Value::Bool(match id.as_str() {
                    "success" => self.status.success,
                    "failure" => self.status.failure,
                    "always" => true,
                    "cancelled" => false,
                    other => panic!("function {other}() is outside the evaluated subset"),
                })
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => {
                    let mut v = self
                        .ctx
                        .get(&id)
                        .unwrap_or_else(|| panic!("context `{id}` is outside the evaluated subset"))
                        .clone();
                    while self.eat(&Tok::Dot) {
                        let Some(Tok::Ident(p)) = self.tokens.get(self.at).cloned() else {
                            panic!("a property name after `.`")
                        };
                        self.at += 1;
                        // A missing property is null, as GitHub evaluates it.
                        v = v.get(&p).cloned().unwrap_or(Value::Null);
                    }
                    v
                }
            },
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// GitHub's `==`: strings compare case-insensitively; values of different types are compared
/// as numbers (null 0, booleans 0/1, a string its number, '' 0, else NaN).
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        _ => {
            let (x, y) = (number(a), number(b));
            !x.is_nan() && x == y
        }
    }
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) if s.trim().is_empty() => 0.0,
        Value::String(s) => s.trim().parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

fn to_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Evaluates an `if:` with the given `steps` context, in a job where an earlier step failed
/// (`failed`) or not: for the evaluator's own test.
pub fn step_condition(cond: &str, steps: Value, failed: bool) -> bool {
    let mut ctx = serde_json::Map::new();
    ctx.insert("steps".into(), steps);
    let status = Status {
        success: !failed,
        failure: failed,
    };
    condition(&Value::String(cond.into()), &ctx, status)
}
