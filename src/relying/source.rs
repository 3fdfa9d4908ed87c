//! Where a relying party fetches the CA's public outputs from: a published tree over HTTP(S)
//! (`gitca publish` served by any web server), a local directory (a published tree or a clone
//! of the CA repository), or the CA repository through the `git` program (so the machine's own
//! credentials work).
//!
//! Nothing fetched is trusted: `deploy` verifies every CRL and certificate against the CA it
//! pinned. A source only has to be available; HTTP needs no TLS for that reason, but HTTPS is
//! verified against the system's roots (or `--https-ca`) when used.
//!
//! Every fetch has a limit (`--timeout`, invariant 16): over HTTP the whole request, with a
//! stalled read given up after at most 30 s; through git every program it runs shares one
//! deadline (see [`crate::relying::program`]), with git's own low-speed limit on HTTP transfers. A source
//! that accepts and never answers costs one limit, then is reported like any other failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout;
use crate::repository::confined::Dir;

/// Largest file fetched (a CRL of the ledger's maximum size, with room).
pub const MAX_FETCH: u64 = 48 << 20;

/// What the last fetch of an item returned, so the next asks "only if changed".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// For a git source: the commit the item was read from.
    pub commit: Option<String>,
    /// For an HTTP source: the source that sent them. Another source (the operator changed
    /// `--from`) is asked afresh: one server's validators mean nothing to another.
    #[serde(default)]
    pub source: Option<String>,
}

impl Validators {
    /// The validators a source may make a relying party send back: an ETag as RFC 9110 writes
    /// one (quoted, at most 128 bytes, never `*`, which matches any file), a Last-Modified
    /// that is a date in the past. Anything else is dropped, so the next fetch asks afresh: a
    /// mirror's one answer must never make every later one "not modified".
    pub fn sane(&self) -> Validators {
        let etag = self.etag.as_deref().filter(|e| {
            let opaque = e.strip_prefix("W/").unwrap_or(e);
            e.len() <= 128
                && opaque.len() >= 2
                && opaque.starts_with('"')
                && opaque.ends_with('"')
                && opaque[1..opaque.len() - 1]
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
        });
        let last_modified = self
            .last_modified
            .as_deref()
            .filter(|lm| http_date(lm).is_some_and(|t| t <= time::OffsetDateTime::now_utc()));
        Validators {
            etag: etag.map(str::to_string),
            last_modified: last_modified.map(str::to_string),
            commit: self.commit.clone(),
            source: self.source.clone(),
        }
    }
}

/// An HTTP date in the one form RFC 9110 lets a server send (IMF-fixdate:
/// `Sun, 06 Nov 1994 08:49:37 GMT`), read back and written again byte for byte; anything else
/// (two-digit years, numeric zones, comments) a server may read as another time.
fn http_date(text: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = time::PrimitiveDateTime::parse(text, &format)
        .ok()?
        .assume_utc();
    (t.format(&format).ok()? == text).then_some(t)
}

/// What a fetch error says when the source does not have the item.
pub const NOT_FOUND: &str = "not found";

/// Whether `e` says the source does not have what was asked for (as opposed to not answering).
pub fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Fetch { reason, .. } if reason == NOT_FOUND)
}

pub enum Fetch {
    /// The source says nothing changed since `Validators` (one small request).
    NotModified,
    Got(Vec<u8>, Validators),
}

/// The items a relying party reads.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// Every CRL of the chain, with the intermediates (PEM; see [`crate::authority::chain`]).
    Crls,
    /// An identity's current certificate chain (PEM).
    Cert(&'a str),
    /// One file of a published tree, by name (the admission list and its signature).
    Published(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A tree written by `gitca publish`.
    Published,
    /// A CA repository (a checkout, or read through git).
    Repository,
}

impl Layout {
    /// The files that make up `item`, concatenated in this order (in a repository, those of
    /// them that exist; the CRL bundle of a published tree is one file).
    fn paths(self, item: Item<'_>) -> Vec<String> {
        match (self, item) {
            (Layout::Published, Item::Crls) => vec![crate::layout::published::CRLS.into()],
            (Layout::Repository, Item::Crls) => [
                layout::CA_CERT,
                layout::PREVIOUS_CERT,
                layout::ROOT_CRL,
                layout::CRL_FILE,
                layout::PREVIOUS_CRL,
            ]
            .map(String::from)
            .to_vec(),
            (_, Item::Cert(name)) => vec![format!("certs/{name}.crt")],
            (_, Item::Published(name)) => vec![name.to_string()],
        }
    }
}

/// How long a fetch may take unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: &str = "60s";

/// The longest a stalled HTTP read is waited for, whatever the fetch's whole limit.
const STALL: Duration = Duration::from_secs(30);

/// git's low-speed limit: a transfer slower than this many bytes a second for the stall time
/// is given up (`http.lowSpeedLimit`).
const LOW_SPEED_BYTES: u32 = 1000;

pub enum Source {
    Http {
        base: String,
        agent: ureq::Agent,
        timeout: Duration,
    },
    /// Re-opened for every fetch: a published tree swapped in atomically (a symlink flipped, a
    /// directory renamed over the old one) is what the next poll reads.
    Dir { path: PathBuf, layout: Layout },
    Git {
        url: String,
        branch: String,
        cache: PathBuf,
        timeout: Duration,
    },
}

/// How a source is named on the command line.
pub struct SourceArgs<'a> {
    pub from: Option<&'a str>,
    pub from_git: Option<&'a str>,
    pub branch: &'a str,
    pub https_ca: Option<&'a Path>,
    pub git_cache: Option<&'a Path>,
    /// The most one fetch may take.
    pub timeout: Duration,
}

fn http_agent(https_ca: Option<&Path>, timeout: Duration) -> Result<ureq::Agent> {
    // rustls with aws-lc-rs, the crypto gitca already links; installed once per process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let roots = match https_ca {
        Some(p) => {
            let pem = crate::repository::confined::read_named(p, 1 << 20, "read the HTTPS CA")?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(Error::bad_file(
                    p,
                    "holds no PEM certificate",
                    "pass the CA certificate of the web server's TLS certificate",
                ));
            }
            ureq::tls::RootCerts::new_with_certs(&certs)
        }
        None => ureq::tls::RootCerts::PlatformVerifier,
    };
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_per_read(Some(timeout.min(STALL)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::Rustls)
                .root_certs(roots)
                .build(),
        )
        .http_status_as_error(false)
        // Redirects are followed by hand, and only within the source's origin: see
        // `http_get`.
        .max_redirects(0)
        .build();
    Ok(config.into())
}

impl Source {
    /// The source named by `--from URL|DIR` or `--from-git URL|PATH`.
    pub fn new(args: &SourceArgs<'_>) -> Result<Source> {
        match (args.from, args.from_git) {
            (Some(url), None) if url.starts_with("http://") || url.starts_with("https://") => {
                Ok(Source::Http {
                    base: url.trim_end_matches('/').to_string(),
                    agent: http_agent(args.https_ca, args.timeout)?,
                    timeout: args.timeout,
                })
            }
            (Some(path), None) => {
                let dir = Dir::open(Path::new(path))?;
                let layout = if dir.meta(crate::layout::published::INDEX)?.is_some() {
                    Layout::Published
                } else if dir.meta(layout::CONFIG_FILE)?.is_some() {
                    Layout::Repository
                } else {
                    return Err(Error::usage(
                        format!("{path} is neither a published tree (index.json) nor a CA repository (gitca.yaml)"),
                        "pass the directory `gitca publish` wrote, a clone of the CA repository, or an http(s) URL",
                    ));
                };
                Ok(Source::Dir {
                    path: dir.path().to_path_buf(),
                    layout,
                })
            }
            (None, Some(url)) => {
                if url.starts_with('-') {
                    return Err(Error::usage(format!("`{url}` is not a repository"), "pass a URL or a path"));
                }
                let cache = match args.git_cache {
                    Some(p) => p.to_path_buf(),
                    None => default_git_cache(url),
                };
                Ok(Source::Git {
                    url: url.to_string(),
                    branch: args.branch.to_string(),
                    cache,
                    timeout: args.timeout,
                })
            }
            _ => Err(Error::usage(
                "say where to fetch from",
                "pass --from URL|DIR (a published tree, or a CA repository checkout) or --from-git URL|PATH",
            )),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Http { base, .. } => base.clone(),
            Source::Dir { path, .. } => path.display().to_string(),
            Source::Git { url, branch, .. } => format!("{url} ({branch})"),
        }
    }

    /// Fetches `item` unless it is unchanged since `last`.
    pub fn fetch(&self, item: Item<'_>, last: &Validators) -> Result<Fetch> {
        match self {
            Source::Http {
                base,
                agent,
                timeout,
            } => {
                let url = format!("{base}/{}", Layout::Published.paths(item).concat());
                let ours = last.source.as_deref() == Some(base.as_str());
                let last = if ours {
                    last.clone()
                } else {
                    Validators::default()
                };
                let mut fetched = http_get(agent, &url, &last, *timeout)?;
                if let Fetch::Got(_, v) = &mut fetched {
                    v.source = Some(base.clone());
                }
                Ok(fetched)
            }
            Source::Dir { path, layout } => {
                let dir = Dir::open(path)?;
                let bytes = gather(layout.paths(item), |rel| dir.read_opt(rel, MAX_FETCH))?;
                Ok(Fetch::Got(bytes, Validators::default()))
            }
            Source::Git {
                url,
                branch,
                cache,
                timeout,
            } => {
                let git = Git {
                    deadline: Instant::now() + *timeout,
                    timeout: *timeout,
                };
                let commit = git.fetch(url, branch, cache)?;
                if last.commit.as_deref() == Some(commit.as_str()) {
                    return Ok(Fetch::NotModified);
                }
                let bytes = gather(Layout::Repository.paths(item), |rel| {
                    git.show_opt(cache, &commit, rel)
                })?;
                Ok(Fetch::Got(
                    bytes,
                    Validators {
                        commit: Some(commit),
                        ..Validators::default()
                    },
                ))
            }
        }
    }
}

fn fetch_error(what: &str, source: impl std::fmt::Display) -> Error {
    Error::Fetch {
        what: what.to_string(),
        reason: source.to_string(),
    }
}

/// A ureq error in words; a timeout names the limit that ran out.
fn http_failure(e: ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!(
            "no answer within the fetch's limit of {}s (--timeout)",
            timeout.as_secs()
        ),
        other => other.to_string(),
    }
}

/// The most redirects one fetch follows.
const MAX_REDIRECTS: usize = 5;

/// `scheme://host:port` of an absolute http(s) URL.
fn origin(uri: &ureq::http::Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let port = authority
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some(format!(
        "{scheme}://{}:{port}",
        authority.host().to_ascii_lowercase()
    ))
}

/// Where a redirect from `from` to `location` leads, when it stays within `from`'s origin:
/// a source is the origin the operator named, and a redirect elsewhere (another host, another
/// port, https to http) is where gitca never sends a request.
fn redirect_target(from: &str, location: &str) -> std::result::Result<String, String> {
    let base: ureq::http::Uri = from.parse().map_err(|_| format!("`{from}` is not a URL"))?;
    let origin_of_base = origin(&base).ok_or_else(|| format!("`{from}` is not a URL"))?;
    let target = if location.contains("://") || location.starts_with("//") {
        let absolute = if location.starts_with("//") {
            format!("{}:{location}", base.scheme_str().unwrap_or("http"))
        } else {
            location.to_string()
        };
        let uri: ureq::http::Uri = absolute
            .parse()
            .map_err(|_| "a Location that is not a URL".to_string())?;
        let to = origin(&uri).unwrap_or_else(|| "no http(s) origin".into());
        if to != origin_of_base {
            return Err(format!(
                "redirected to another origin ({to}): gitca follows a redirect only within the source's scheme, host and port"
            ));
        }
        absolute
    } else if location.starts_with('/') {
        format!("{}{location}", origin_of_base)
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{origin_of_base}{dir}{location}")
    };
    Ok(target)
}

fn http_get(agent: &ureq::Agent, url: &str, last: &Validators, timeout: Duration) -> Result<Fetch> {
    let mut at = url.to_string();
    let last = last.sane();
    for _ in 0..=MAX_REDIRECTS {
        let mut req = agent.get(&at);
        // An ETag is the stronger validator: with one, If-Modified-Since is not sent (a server
        // would ignore it, RFC 9110 13.2.2).
        if let Some(etag) = &last.etag {
            req = req.header("If-None-Match", etag);
        } else if let Some(lm) = &last.last_modified {
            req = req.header("If-Modified-Since", lm);
        }
        let resp = req
            .call()
            .map_err(|e| fetch_error(url, http_failure(e, timeout)))?;
        match resp.status().as_u16() {
            301 | 302 | 303 | 307 | 308 => {
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| fetch_error(url, "a redirect without a Location"))?;
                at = redirect_target(&at, location).map_err(|why| fetch_error(url, why))?;
            }
            304 if last.etag.is_none() && last.last_modified.is_none() => {
                return Err(fetch_error(
                    url,
                    "the source answered 304 Not Modified to a request that was not conditional",
                ))
            }
            _ => return http_body(resp, url, timeout),
        }
    }
    Err(fetch_error(
        url,
        format!("more than {MAX_REDIRECTS} redirects"),
    ))
}

fn http_body(
    mut resp: ureq::http::Response<ureq::Body>,
    url: &str,
    timeout: Duration,
) -> Result<Fetch> {
    match resp.status().as_u16() {
        304 => return Ok(Fetch::NotModified),
        200 => {}
        404 => return Err(fetch_error(url, NOT_FOUND)),
        code => return Err(fetch_error(url, format!("HTTP {code}"))),
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header("etag"),
        last_modified: header("last-modified"),
        ..Validators::default()
    }
    .sane();
    // For a diagnostic only: what the server says it sends, else "more than the limit".
    let declared = header("content-length")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > MAX_FETCH)
        .unwrap_or(MAX_FETCH + 1);
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_FETCH)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::FileTooLarge {
                path: PathBuf::from(url),
                len: declared,
                limit: MAX_FETCH,
            },
            e => fetch_error(url, http_failure(e, timeout)),
        })?;
    Ok(Fetch::Got(bytes, validators))
}

fn default_git_cache(url: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let tag = &hex::encode(Sha256::digest(url.as_bytes()))[..16];
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    base.join("gitca").join(format!("deploy-{tag}"))
}

/// The `git` program for one fetch: every run shares the fetch's deadline.
struct Git {
    deadline: Instant,
    /// The whole limit, for messages and git's own low-speed limit.
    timeout: Duration,
}

impl Git {
    fn command(&self, dir: Option<&Path>) -> std::process::Command {
        let mut c = crate::relying::program::command("git");
        if let Some(d) = dir {
            c.arg("-C").arg(d);
        }
        // Never a prompt for credentials (nobody answers it), and HTTP transfers slower than
        // LOW_SPEED_BYTES a second for the stall time are given up by git itself.
        let stall = self.timeout.min(STALL).as_secs().max(1);
        // Never a redirect either: git follows one to any host (`initial`, its default), and a
        // source is the origin the operator named (an HTTP source follows one only within it).
        c.env("GIT_TERMINAL_PROMPT", "0")
            .arg("-c")
            .arg("http.followRedirects=false")
            .arg("-c")
            .arg(format!("http.lowSpeedLimit={LOW_SPEED_BYTES}"))
            .arg("-c")
            .arg(format!("http.lowSpeedTime={stall}"));
        c
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Runs git; its standard output (at most `MAX_FETCH` bytes) when it succeeds.
    fn run(&self, args: &[&str], dir: Option<&Path>) -> Result<Vec<u8>> {
        let what = format!("git {}", args.first().unwrap_or(&""));
        let mut c = self.command(dir);
        c.args(args);
        let out = crate::relying::program::output(&mut c, self.left(), MAX_FETCH)
            .map_err(|e| fetch_error(&what, self.failure(e)))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(fetch_error(&what, err.lines().last().unwrap_or("failed")));
        }
        Ok(out.stdout)
    }

    fn failure(&self, e: crate::relying::program::Failure) -> String {
        match e {
            crate::relying::program::Failure::TimedOut(_) => format!(
                "no answer within the fetch's limit of {}s (--timeout): git was killed",
                self.timeout.as_secs()
            ),
            other => other.to_string(),
        }
    }

    /// Fetches the branch's tip (depth 1) into a bare cache repository; returns its commit.
    fn fetch(&self, url: &str, branch: &str, cache: &Path) -> Result<String> {
        if !cache.join("HEAD").exists() {
            std::fs::create_dir_all(cache).map_err(Error::io("create", cache))?;
            self.run(&["init", "-q", "--bare"], Some(cache))?;
        }
        let refspec = format!("+refs/heads/{branch}:refs/gitca/deploy");
        self.run(
            &[
                "fetch",
                "-q",
                "--depth",
                "1",
                "--no-tags",
                "--",
                url,
                &refspec,
            ],
            Some(cache),
        )?;
        let out = self.run(&["rev-parse", "refs/gitca/deploy"], Some(cache))?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// A file of `commit`, or `None` when the commit has no such file.
    fn show_opt(&self, cache: &Path, commit: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let spec = format!("{commit}:{path}");
        let mut c = self.command(Some(cache));
        c.args(["cat-file", "-e", &spec])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let exists = crate::relying::program::status(&mut c, self.left())
            .map_err(|e| fetch_error("git cat-file", self.failure(e)))?;
        if !exists.success() {
            return Ok(None);
        }
        self.show(cache, commit, path).map(Some)
    }

    fn show(&self, cache: &Path, commit: &str, path: &str) -> Result<Vec<u8>> {
        let spec = format!("{commit}:{path}");
        let size = self.run(&["cat-file", "-s", &spec], Some(cache))?;
        let size: u64 = String::from_utf8_lossy(&size)
            .trim()
            .parse()
            .unwrap_or(u64::MAX);
        if size > MAX_FETCH {
            return Err(Error::FileTooLarge {
                path: PathBuf::from(path),
                len: size,
                limit: MAX_FETCH,
            });
        }
        self.run(&["cat-file", "blob", &spec], Some(cache))
    }
}

/// The files of an item concatenated; the last one must exist (the CRL of the issuing CA, or
/// the certificate asked for), the others are there when the CA has an offline root.
fn gather(
    paths: Vec<String>,
    mut read: impl FnMut(&str) -> Result<Option<Vec<u8>>>,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let required = paths
        .iter()
        .position(|p| p == layout::CRL_FILE || p.starts_with("certs/"))
        .unwrap_or(0);
    for (i, rel) in paths.iter().enumerate() {
        match read(rel)? {
            Some(bytes) => {
                if out.len() as u64 + bytes.len() as u64 > MAX_FETCH {
                    return Err(Error::FileTooLarge {
                        path: PathBuf::from(rel),
                        len: out.len() as u64 + bytes.len() as u64,
                        limit: MAX_FETCH,
                    });
                }
                out.extend_from_slice(&bytes);
                if !out.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
            None if i == required => return Err(fetch_error(rel, NOT_FOUND)),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{redirect_target, Validators};

    #[test]
    fn only_validators_a_server_could_have_meant_are_sent_back() {
        let v = |etag: &str, lm: &str| {
            Validators {
                etag: Some(etag.into()),
                last_modified: Some(lm.into()),
                ..Validators::default()
            }
            .sane()
        };
        let good = v("\"5f1a-2c\"", "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(good.etag.as_deref(), Some("\"5f1a-2c\""));
        assert!(good.last_modified.is_some());
        assert!(v("W/\"x\"", "").etag.is_some());
        for etag in [
            "*",
            "x",
            "\"",
            "\"a\"b\"",
            "W/*",
            &format!("\"{}\"", "a".repeat(200)),
        ] {
            assert_eq!(v(etag, "").etag, None, "{etag}");
        }
        for lm in [
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "yesterday",
            "",
            "Tue, 06 Dec 60 03:18:15 GMT",
            "Sun, 06 Nov 1994 08:49:37 +0000",
            "Mon, 07 Dec 2026 00:00:00 +2359",
            "Sun, 06 Nov 1994 08:49:37 GMT (comment)",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Mon, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(v("\"a\"", lm).last_modified, None, "{lm}");
        }
    }

    #[test]
    fn redirects_stay_within_the_origin() {
        let from = "http://mirror.example:8080/pki/admitted.txt";
        for (location, to) in [
            (
                "/other/admitted.txt",
                "http://mirror.example:8080/other/admitted.txt",
            ),
            (
                "moved/admitted.txt",
                "http://mirror.example:8080/pki/moved/admitted.txt",
            ),
            (
                "HTTP://MIRROR.example:8080/x",
                "HTTP://MIRROR.example:8080/x",
            ),
            ("//mirror.example:8080/y", "http://mirror.example:8080/y"),
        ] {
            assert_eq!(
                redirect_target(from, location).as_deref(),
                Ok(to),
                "{location}"
            );
        }
        for location in [
            "http://elsewhere.example:8080/admitted.txt",
            "http://mirror.example/admitted.txt",
            "https://mirror.example:8080/admitted.txt",
            "//elsewhere.example/x",
            "file:///etc/passwd",
        ] {
            assert!(redirect_target(from, location).is_err(), "{location}");
        }
        // https to http on the same host is a downgrade: not followed.
        assert!(redirect_target("https://m.example/a", "http://m.example/a").is_err());
        assert!(redirect_target("https://m.example/a", "https://m.example:443/b").is_ok());
    }
}
