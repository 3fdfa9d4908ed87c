//! Issue 19, class 5: every external wait has a limit (invariant 16). A source that accepts a
//! connection and never answers — over HTTP, or through git (`git://` and `http://`) — and a
//! reload hook that never returns are each given up after their limit, reported like any other
//! failure (exit code, the `stale` gauge, the failure counters), and `--watch` goes on polling.
//! Real sockets on 127.0.0.1, the real git and sh; short limits (`--timeout 2s`). Nothing here
//! asserts a duration, only that each run returned under a generous outer bound.
//!
//! And every program gitca starts is in the table of docs/threat-model.md, with its limit.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// How long any one run may take before the test calls it hung (the limits under test are
/// 1–2 seconds; this is only an outer bound).
const HUNG: Duration = Duration::from_secs(90);

/// A TCP server on 127.0.0.1 that accepts every connection and never sends a byte; it holds
/// the connections open for as long as the test runs. Returns its port.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            held.lock().unwrap().push(s);
        }
    });
    port
}

/// Runs `cmd` to its end, or fails the test once it has run for `HUNG`.
fn bounded(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(HUNG) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("`{cmd:?}` still runs after {HUNG:?}: a wait without a limit");
        }
    }
}

/// A CA with a bot, reconciled and published to `pub/`, and its pin.
fn published() -> (Ca, PathBuf, PathBuf) {
    let ca = Ca::new();
    ok(run(ca
        .cmd(T0)
        .args(["request", "robot", "--bot", "--key-out"])
        .arg(ca.keys.join("robot.key"))));
    ca.commit("robot");
    ok(ca.reconcile(T0));
    let public = ca.tmp.path().join("pub");
    ok(run(ca.cmd(T0).arg("publish").arg(&public)));
    let pinned = ca.keep("ca/ca.crt", "pinned.crt");
    (ca, public, pinned)
}

fn metric(file: &Path, name: &str) -> f64 {
    let m = std::fs::read_to_string(file).unwrap_or_default();
    m.lines()
        .find(|l| l.starts_with(&format!("gitca_{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{m}"))
}

fn deploy_crl(ca: &Ca, pinned: &Path, out: &Path, metrics: &Path, source: &[&str]) -> Command {
    deploy_crl_at(T0, ca, pinned, out, metrics, source)
}

fn deploy_crl_at(
    now: &str,
    ca: &Ca,
    pinned: &Path,
    out: &Path,
    metrics: &Path,
    source: &[&str],
) -> Command {
    let mut c = gitca();
    c.args(["--now", now, "deploy", "crl"])
        .args(source)
        .arg("--ca")
        .arg(pinned)
        .arg("--out")
        .arg(out)
        .arg("--metrics")
        .arg(metrics)
        .current_dir(ca.tmp.path());
    c
}

/// `--from-git` against a server that never answers, by `git://` and by `http://`: given up
/// at `--timeout`, reported as a failed fetch (stale with nothing installed: exit 4), counted;
/// with a current CRL installed, the CRL stays and the run says why.
#[test]
fn a_git_source_that_never_answers_is_given_up() {
    require("git");
    let (ca, public, pinned) = published();
    let port = silent_server();
    for url in [
        format!("git://127.0.0.1:{port}/ca.git"),
        format!("http://127.0.0.1:{port}/ca.git"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ca.crl");
        let metrics = dir.path().join("m.prom");
        let cache = dir.path().join("cache");
        let git_source = [
            "--from-git",
            url.as_str(),
            "--git-cache",
            cache.to_str().unwrap(),
            "--timeout",
            "2s",
        ];
        let o = bounded(&mut deploy_crl(&ca, &pinned, &out, &metrics, &git_source));
        assert_eq!(o.status.code(), Some(4), "{url}: {}", stderr(&o));
        assert!(stderr(&o).contains("cannot fetch"), "{}", stderr(&o));
        assert_eq!(metric(&metrics, "deploy_stale"), 1.0);
        assert_eq!(metric(&metrics, "deploy_failures_total"), 1.0);
        // A current CRL installed (from the published tree), then the silent git source.
        let o = bounded(&mut deploy_crl(
            &ca,
            &pinned,
            &out,
            &metrics,
            &["--from", public.to_str().unwrap()],
        ));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let installed = std::fs::read(&out).unwrap();
        let o = bounded(&mut deploy_crl(&ca, &pinned, &out, &metrics, &git_source));
        assert_eq!(o.status.code(), Some(0), "{url}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("cannot fetch") && stderr(&o).contains("what is installed stays"),
            "{}",
            stderr(&o)
        );
        assert_eq!(std::fs::read(&out).unwrap(), installed);
        assert_eq!(metric(&metrics, "deploy_stale"), 0.0);
        assert_eq!(metric(&metrics, "deploy_consecutive_failures"), 1.0);
        assert_eq!(metric(&metrics, "deploy_failures_total"), 2.0);
    }
}

/// An HTTP source that accepts and never answers: given up at `--timeout`, the limit named.
/// `deploy cert` too.
#[test]
fn an_http_source_that_never_answers_is_given_up() {
    let (ca, _, pinned) = published();
    let port = silent_server();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ca.crl");
    let metrics = dir.path().join("m.prom");
    let o = bounded(&mut deploy_crl(
        &ca,
        &pinned,
        &out,
        &metrics,
        &["--from", &url, "--timeout", "2s"],
    ));
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--timeout"), "{}", stderr(&o));
    assert_eq!(metric(&metrics, "deploy_failures_total"), 1.0);
    let o = bounded(
        gitca()
            .args(["--now", T0, "deploy", "cert", "robot", "--key"])
            .arg(ca.keys.join("robot.key"))
            .args(["--from", &url, "--timeout", "2s", "--ca"])
            .arg(&pinned)
            .arg("--out-dir")
            .arg(dir.path().join("robot"))
            .arg("--metrics")
            .arg(&metrics),
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--timeout"), "{}", stderr(&o));
    assert_eq!(metric(&metrics, "deploy_stale"), 1.0);
}

/// Whether process `pid` has ended (or is a zombie its new parent has yet to reap).
fn gone(pid: &str) -> bool {
    for _ in 0..200 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s)
                if s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')) =>
            {
                return true
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

/// A reload hook that never returns: killed at `--reload-timeout` with what it started, the
/// previous CRL put back, exit 1, counted. The same for `deploy cert`'s hook.
#[test]
fn a_reload_hook_that_hangs_is_killed_and_the_previous_files_put_back() {
    let (ca, public, pinned) = published();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ca.crl");
    let metrics = dir.path().join("m.prom");
    let from = ["--from", public.to_str().unwrap()];
    ok(bounded(&mut deploy_crl(
        &ca, &pinned, &out, &metrics, &from,
    )));
    let before = std::fs::read(&out).unwrap();
    // The CA re-signs its CRL (day 5: the refresh window); the hook hangs.
    let d5 = days_after(T0, 5);
    ok(ca.reconcile(&d5));
    ok(run(ca.cmd(&d5).arg("publish").arg(&public)));
    let pid_file = dir.path().join("hook.pid");
    let hook = format!("sleep 600 & echo $! > {}; wait", pid_file.display());
    let o = bounded(
        deploy_crl_at(&d5, &ca, &pinned, &out, &metrics, &from).args([
            "--reload",
            &hook,
            "--reload-timeout",
            "2s",
        ]),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did not finish within 2s") && stderr(&o).contains("put back"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert_eq!(metric(&metrics, "deploy_consecutive_failures"), 1.0);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        gone(pid.trim()),
        "the hook's child {pid} outlived the limit"
    );
    // deploy cert: the robot's certificate installed, then its renewal with the same hook:
    // the same end, the installed certificate put back.
    let certs = dir.path().join("robot");
    let deploy_cert = |now: &str, hook: Option<&str>| {
        let mut c = gitca();
        c.args(["--now", now, "deploy", "cert", "robot", "--key"])
            .arg(ca.keys.join("robot.key"))
            .args(["--from", public.to_str().unwrap(), "--ca"])
            .arg(&pinned)
            .arg("--out-dir")
            .arg(&certs);
        if let Some(h) = hook {
            c.args(["--reload", h, "--reload-timeout", "2s"]);
        }
        bounded(&mut c)
    };
    ok(deploy_cert(&d5, None));
    let first = std::fs::read(certs.join("client.cert")).unwrap();
    let d21 = days_after(T0, 21);
    ok(ca.reconcile(&d21));
    ok(run(ca.cmd(&d21).arg("publish").arg(&public)));
    std::fs::remove_file(&pid_file).unwrap();
    let o = deploy_cert(&d21, Some(&hook));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did not finish within 2s") && stderr(&o).contains("put back"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(certs.join("client.cert")).unwrap(), first);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        gone(pid.trim()),
        "the hook's child {pid} outlived the limit"
    );
    // Without the hanging hook the renewal goes in.
    let o = ok(deploy_cert(&d21, None));
    assert!(
        stdout(&o).contains("installed certificate"),
        "{}",
        stdout(&o)
    );
}

/// `--watch` against a silent source: every poll is given up at its limit and the next one
/// comes; the failures add up in the metrics, which say stale.
#[test]
fn watch_goes_on_polling_a_source_that_never_answers() {
    let (ca, _, pinned) = published();
    let port = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("m.prom");
    let mut c = deploy_crl(
        &ca,
        &pinned,
        &dir.path().join("ca.crl"),
        &metrics,
        &[
            "--from",
            &format!("http://127.0.0.1:{port}"),
            "--timeout",
            "1s",
            "--watch",
            "1s",
        ],
    );
    let mut child: Child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let failures = |m: &Path| {
        std::fs::read_to_string(m)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("gitca_deploy_failures_total{"))
                    .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    };
    while failures(&metrics) < 3.0 && start.elapsed() < HUNG {
        assert!(child.try_wait().unwrap().is_none(), "--watch ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        failures(&metrics) >= 3.0,
        "--watch stopped polling: {}",
        std::fs::read_to_string(&metrics).unwrap_or_default()
    );
    assert_eq!(metric(&metrics, "deploy_stale"), 1.0);
}

/// The source files of gitca without their test modules.
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let name = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap().to_string();
            out.push((name, code));
        }
    }
    assert!(out.len() > 40, "src/ holds only {} files?", out.len());
    out
}

/// Every program gitca starts comes from `program::command`, which only `program::status`
/// and `program::output` run (each with a limit); each is a row of the table in
/// docs/threat-model.md that says its limit.
#[test]
fn every_program_gitca_starts_has_a_documented_limit() {
    let table =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/threat-model.md"))
            .unwrap();
    let mut programs = Vec::new();
    for (file, code) in sources() {
        if file != "relying/program.rs" {
            for forbidden in ["Command::new(", ".spawn()", ".output()"] {
                assert!(
                    !code.contains(forbidden),
                    "src/{file} starts a program itself (`{forbidden}`): use crate::relying::program"
                );
            }
        }
        for call in code.split("program::command(\"").skip(1) {
            let program = call.split('"').next().unwrap().to_string();
            programs.push((file.clone(), program));
        }
    }
    assert!(
        programs.iter().any(|(_, p)| p == "git") && programs.iter().any(|(_, p)| p == "sh"),
        "{programs:?}"
    );
    for (file, program) in &programs {
        let row = table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("| `{program}")))
            .unwrap_or_else(|| {
                panic!("src/{file} starts `{program}`, which docs/threat-model.md's table of programs does not list")
            });
        assert!(row.contains("timeout"), "{row}");
    }
}
