//! Every program gitca starts, each with a limit on its time (invariant 16): `git` for
//! `deploy --from-git` and `sh` for `deploy --reload`. Nothing else in gitca starts a program:
//! every `std::process::Command` goes through here.
//!
//! A program runs in a process group of its own, its standard input closed. At its deadline the
//! whole group is killed — the program and whatever it started in it (git's remote helpers,
//! a hook's children) — and the program is reaped: a server that accepts a connection and never
//! answers, or a hook that never returns, costs one limit, not the rest of a `--watch`. Being
//! killed is a failure like any other, said in plain words by the caller.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Why a program gave no result.
#[derive(Debug)]
pub enum Failure {
    /// It could not be started (or waited for).
    Io(std::io::Error),
    /// It was still running after `limit`: it and its process group were killed.
    TimedOut(Duration),
    /// It wrote more than `limit` bytes: killed.
    TooLarge(u64),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(e) => write!(f, "could not run: {e}"),
            Failure::TimedOut(limit) => write!(
                f,
                "did not finish within {}s: killed",
                limit.as_secs_f64().ceil()
            ),
            Failure::TooLarge(limit) => write!(f, "wrote more than {limit} bytes: killed"),
        }
    }
}

/// What a program that finished printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// The last 64 KiB of its standard error.
    pub stderr: Vec<u8>,
}

const STDERR_KEPT: usize = 64 << 10;

/// A command for `program`, to be run by [`status`] or [`output`] (the only way gitca starts
/// a program; `tests/limits.rs` holds every caller to the table in docs/threat-model.md).
pub fn command(program: &'static str) -> Command {
    Command::new(program)
}

fn spawn(cmd: &mut Command) -> Result<Child, Failure> {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null()).process_group(0);
    cmd.spawn().map_err(Failure::Io)
}

/// Kills `child`'s process group (it leads it) and reaps `child`.
fn kill(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for `child` until `deadline`: `None` when it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<ExitStatus>, Failure> {
    // A poll that starts at a millisecond and backs off: `git cat-file` ends in a few, a
    // hanging fetch costs at most 50 ms of latency to notice.
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().map_err(Failure::Io)? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Runs `cmd` (standard output and error inherited) until it exits or `limit` has passed.
pub fn status(cmd: &mut Command, limit: Duration) -> Result<ExitStatus, Failure> {
    let deadline = Instant::now() + limit;
    let mut child = spawn(cmd)?;
    match wait_until(&mut child, deadline) {
        Ok(Some(status)) => Ok(status),
        Ok(None) => {
            kill(&mut child);
            Err(Failure::TimedOut(limit))
        }
        Err(e) => {
            kill(&mut child);
            Err(e)
        }
    }
}

/// Runs `cmd` until it exits or `limit` has passed, with at most `max` bytes of standard
/// output read (more kills it).
pub fn output(cmd: &mut Command, limit: Duration, max: u64) -> Result<Output, Failure> {
    let deadline = Instant::now() + limit;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn(cmd)?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        kill(&mut child);
        return Err(Failure::Io(std::io::Error::other("no pipes")));
    };
    // Readers on threads of their own, their results sent back: a descendant that keeps a pipe
    // open past the deadline leaves a reader behind, never the caller waiting.
    let (tx, rx) = std::sync::mpsc::channel();
    let tx_err = tx.clone();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let r = out.take(max + 1).read_to_end(&mut buf);
        let _ = tx.send((true, r.map(|_| buf)));
    });
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut err = err;
        loop {
            match err.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > 2 * STDERR_KEPT {
                        buf.drain(..buf.len() - STDERR_KEPT);
                    }
                }
            }
        }
        let keep = buf.len().saturating_sub(STDERR_KEPT);
        buf.drain(..keep);
        let _ = tx_err.send((false, Ok(buf)));
    });
    let mut stdout = None;
    let mut stderr = None;
    while stdout.is_none() || stderr.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, Ok(buf))) => {
                if buf.len() as u64 > max {
                    kill(&mut child);
                    return Err(Failure::TooLarge(max));
                }
                stdout = Some(buf);
            }
            Ok((true, Err(e))) => {
                kill(&mut child);
                return Err(Failure::Io(e));
            }
            Ok((false, buf)) => stderr = Some(buf.unwrap_or_default()),
            Err(_) => {
                kill(&mut child);
                return Err(Failure::TimedOut(limit));
            }
        }
    }
    match wait_until(&mut child, deadline) {
        Ok(Some(status)) => Ok(Output {
            status,
            stdout: stdout.unwrap_or_default(),
            stderr: stderr.unwrap_or_default(),
        }),
        Ok(None) => {
            kill(&mut child);
            Err(Failure::TimedOut(limit))
        }
        Err(e) => {
            kill(&mut child);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_past_its_limit_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let started = Instant::now();
        let r = status(
            Command::new("sh").arg("-c").arg(&script),
            Duration::from_millis(500),
        );
        assert!(matches!(r, Err(Failure::TimedOut(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(60));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(gone(pid), "the hook's child {pid} outlived it");
    }

    /// Whether `pid` has ended (or is a zombie waiting for init to reap it).
    fn gone(pid: i32) -> bool {
        for _ in 0..100 {
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

    #[test]
    fn output_is_captured_and_bounded() {
        let o = output(
            Command::new("sh").args(["-c", "printf hello; echo oops >&2; exit 3"]),
            Duration::from_secs(30),
            100,
        )
        .unwrap();
        assert_eq!(o.stdout, b"hello");
        assert_eq!(o.stderr, b"oops\n");
        assert_eq!(o.status.code(), Some(3));
        let r = output(
            Command::new("sh").args(["-c", "yes | head -c 100000"]),
            Duration::from_secs(30),
            1000,
        );
        assert!(matches!(r, Err(Failure::TooLarge(1000))), "{r:?}");
        let r = output(
            Command::new("sh").args(["-c", "sleep 300"]),
            Duration::from_millis(300),
            1000,
        );
        assert!(matches!(r, Err(Failure::TimedOut(_))), "{r:?}");
        let r = output(
            &mut Command::new("/nonexistent/program"),
            Duration::from_secs(1),
            10,
        );
        assert!(matches!(r, Err(Failure::Io(_))), "{r:?}");
    }
}
