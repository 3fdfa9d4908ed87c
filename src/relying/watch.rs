//! How every `gitca deploy` runs: once, or forever with `--watch` (with jitter; a failed
//! check never ends the loop); the reload hook after a change, with its time limit; the
//! Prometheus textfile metrics; and what each run reports and exits with. `deploy crl`,
//! `deploy cert` and `deploy admission` each supply one check ([`Run`]); this module knows
//! nothing of what they install.

use std::io::Write;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::repository::config::Dur;
use crate::repository::confined::Dir;
use crate::time::fmt_time;

/// Exit code: what is installed expires within the margin and nothing newer could be had.
pub const EXIT_STALE: u8 = 4;

/// What a deploy runs after a change, how often it checks, and where its metrics go.
#[derive(Debug)]
pub struct WatchOptions {
    /// Run after every change: e.g. `nginx -t && nginx -s reload`. If it fails, the previous
    /// files are put back. An empty CMD runs nothing (handy in systemd environment files).
    pub reload: Option<String>,
    /// The most the reload command may take: past it, it is killed with everything it started,
    /// and the previous files are put back.
    pub reload_timeout: String,
    /// Keep running: check every INTERVAL (with jitter); fetch failures never end it.
    pub watch: Option<String>,
    /// Write Prometheus textfile-collector metrics here (for node_exporter).
    pub metrics: Option<PathBuf>,
}

impl WatchOptions {
    /// Where `--metrics` writes, with the prefix and the run's label (`label` is a Prometheus
    /// label set, e.g. from [`file_label`]).
    pub fn metrics_to<'a>(&'a self, label: &'a str) -> Option<(&'a Path, &'static str, &'a str)> {
        self.metrics.as_deref().map(|p| (p, "gitca", label))
    }

    /// The reload command, if one was given and it is not blank, with its limit.
    pub fn hook(&self) -> Option<(&str, std::time::Duration)> {
        let cmd = self.reload.as_deref().filter(|c| !c.trim().is_empty())?;
        Some((
            cmd,
            seconds(&self.reload_timeout).unwrap_or(DEFAULT_RELOAD_LIMIT),
        ))
    }
}

/// The reload command's limit when `--reload-timeout` cannot be read (checked before).
const DEFAULT_RELOAD_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A duration flag (`30s`, `5m`) as a std duration.
pub fn seconds(text: &str) -> Result<std::time::Duration> {
    Ok(std::time::Duration::from_secs(
        Dur::parse(text)?.0.whole_seconds().unsigned_abs(),
    ))
}

/// One run's result.
pub enum Verdict {
    Installed(String),
    Unchanged(String),
    /// Something fetched was refused, or the reload hook failed: an error.
    Refused(String),
    /// The source could not be read: transient unless what is installed goes stale.
    Unavailable(String),
}

/// The verdict on a fetch that failed: content the source holds but that no relying party
/// should take (too large, not a regular file, a link) is refused, like content that fails
/// verification; a source that cannot be reached is unavailable, which is transient.
pub fn fetch_failed(e: Error) -> Verdict {
    match e {
        Error::FileTooLarge { .. }
        | Error::SymlinkRefused { .. }
        | Error::UntrustedLink { .. }
        | Error::BadFile { .. } => Verdict::Refused(e.to_string()),
        e => Verdict::Unavailable(e.to_string()),
    }
}

pub struct Run {
    pub verdict: Verdict,
    pub stale: Option<String>,
    pub metrics: Vec<(String, f64)>,
}

pub fn now_or(fixed: Option<OffsetDateTime>) -> OffsetDateTime {
    fixed.unwrap_or_else(OffsetDateTime::now_utc)
}

/// Runs the reload hook, with what was installed in its environment, for at most `limit`.
pub fn reload(
    (cmd, limit): (&str, std::time::Duration),
    env: &[(&str, String)],
) -> std::result::Result<(), String> {
    let mut c = crate::relying::program::command("sh");
    c.arg("-c").arg(cmd);
    for (k, v) in env {
        c.env(k, v);
    }
    match crate::relying::program::status(&mut c, limit) {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`{cmd}` failed ({s})")),
        Err(crate::relying::program::Failure::TimedOut(_)) => Err(format!(
            "`{cmd}` did not finish within {}s (--reload-timeout): killed with everything it started",
            limit.as_secs()
        )),
        Err(e) => Err(format!("`{cmd}` {e}")),
    }
}

/// Prometheus text format. A name may carry labels of its own (`name{issuer="…"}`): they join
/// the run's label, and the TYPE line is written once per metric.
fn metrics_text(prefix: &str, label: &str, values: &[(String, f64)]) -> String {
    let mut s = String::new();
    let mut typed = std::collections::HashSet::new();
    for (name, v) in values {
        let (base, extra) = match name.split_once('{') {
            Some((b, rest)) => (b, format!(",{}", rest.trim_end_matches('}'))),
            None => (name.as_str(), String::new()),
        };
        if typed.insert(base) {
            s.push_str(&format!("# TYPE {prefix}_{base} gauge\n"));
        }
        s.push_str(&format!("{prefix}_{base}{{{label}{extra}}} {v}\n"));
    }
    s
}

fn write_metrics(path: &Path, text: &str) -> Result<()> {
    install_file(path, text.as_bytes())
}

/// An `--watch` interval as a std duration (`None` without `--watch`).
pub fn interval(text: Option<&str>) -> Result<Option<std::time::Duration>> {
    text.map(|t| Dur::parse(t).map(|d| std::time::Duration::from_secs(d.0.whole_seconds() as u64)))
        .transpose()
}

/// Reports one run; returns its exit code.
fn report(run: &Run, out: &mut dyn Write, watching: bool) -> u8 {
    let stamp = if watching {
        format!("{} ", fmt_time(OffsetDateTime::now_utc()))
    } else {
        String::new()
    };
    let code = match &run.verdict {
        Verdict::Installed(m) | Verdict::Unchanged(m) => {
            let _ = writeln!(out, "{stamp}{m}");
            0
        }
        Verdict::Refused(m) => {
            crate::output::redact::stderr(&format!("{stamp}gitca deploy: {m}"));
            1
        }
        Verdict::Unavailable(m) => {
            crate::output::redact::stderr(&format!(
                "{stamp}gitca deploy: cannot fetch ({m}); what is installed stays"
            ));
            0
        }
    };
    if let Some(s) = &run.stale {
        crate::output::redact::stderr(&format!("{stamp}gitca deploy: STALE: {s}"));
        // A refusal stays exit 1 (what came was refused); staleness is in the metrics too.
        if code == 0 {
            return EXIT_STALE;
        }
    }
    code
}

/// Runs `once` now, or forever every `every` (±10%) with --watch.
pub fn drive(
    every: Option<std::time::Duration>,
    out: &mut dyn Write,
    metrics: Option<(&Path, &str, &str)>,
    mut once: impl FnMut() -> Result<Run>,
) -> Result<u8> {
    loop {
        let code = match once() {
            Ok(run) => {
                if let Some((path, prefix, label)) = metrics {
                    write_metrics(path, &metrics_text(prefix, label, &run.metrics))?;
                }
                report(&run, out, every.is_some())
            }
            Err(e) if every.is_some() => {
                crate::output::redact::stderr(&format!("gitca deploy: {e}"));
                1
            }
            Err(e) => return Err(e),
        };
        let Some(every) = every else {
            return Ok(code);
        };
        let _ = out.flush();
        let mut r = [0u8; 2];
        let _ = rustix::rand::getrandom(&mut r, rustix::rand::GetRandomFlags::empty());
        let jitter = (u16::from_le_bytes(r) as f64 / 65535.0 - 0.5) * 0.2;
        std::thread::sleep(every.mul_f64(1.0 + jitter));
    }
}

/// A file path as its directory (opened as an anchor) and its name. A path that is a
/// symbolic link is followed to the file it names: the operator's link stays a link, and the
/// file it points to is what gets written (`ln -s /srv/gitca/crl.pem /etc/nginx/crl.pem`).
pub fn split(path: &Path) -> Result<(Dir, String)> {
    let path = followed(path)?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Error::usage(
                format!("{} names no file", path.display()),
                "pass a file path",
            )
        })?;
    Ok((Dir::create(parent)?, name))
}

/// `path`, or the file it links to when it is a symbolic link (a link to a link followed too).
fn followed(path: &Path) -> Result<PathBuf> {
    let mut at = path.to_path_buf();
    for _ in 0..16 {
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&at).map_err(Error::io("read the link", &at))?;
                at = match at.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(at),
        }
    }
    Err(Error::usage(
        format!("{} is a chain of more than 16 links", path.display()),
        "pass the path of the file itself",
    ))
}

/// Writes a file a deploy keeps (`--out`, metrics) atomically, keeping an existing file's
/// mode and owner (see [`Dir::stage_keeping`]) and a link at `path` (see [`split`]).
pub fn install_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let (dir, name) = split(path)?;
    dir.write_keeping(&name, bytes, 0o644)
}

/// The metrics label naming the file a deploy keeps: `file="…"`.
pub fn file_label(out: &Path) -> String {
    format!(
        "file=\"{}\"",
        crate::output::encode::prometheus_label(&out.display().to_string())
    )
}
