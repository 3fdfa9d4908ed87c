//! The servers the end-to-end tests run for real on 127.0.0.1 — docker-registry, nginx in front
//! of it, `gitca deploy crl --watch` — and what every such test needs around them: a process
//! group that dies with the test, nginx's directories and command line, a throwaway TLS
//! certificate for the server, and curl's answer. One copy here, so a fix to how a server is
//! started or stopped reaches every test that starts one.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ok, run, stdout, tool};

/// A server process in its own process group, stopped with all its children (nginx's workers)
/// when the test ends, pass or fail.
pub struct Server {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master then stops its workers and reaps them (killed all at
        // once they would outlive it as zombies); SIGKILL whatever is left of the group.
        let group = -(self.child.id() as i32);
        // SAFETY: kill(2) on the process group this test created for the server; no memory
        // involved.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Server {
    /// Spawns `cmd` in a process group of its own, its stdout and stderr written to `log`.
    pub fn start(name: &'static str, cmd: &mut Command, log: &Path) -> Server {
        let out = std::fs::File::create(log).unwrap();
        let child = std::os::unix::process::CommandExt::process_group(cmd, 0)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Server {
            name,
            child,
            log: log.to_path_buf(),
        }
    }

    /// Spawns `cmd` as [`Server::start`] does and waits until it listens on `port`.
    pub fn listening(name: &'static str, cmd: &mut Command, port: u16, log: &Path) -> Server {
        let mut s = Server::start(name, cmd, log);
        s.wait_port(port);
        s
    }

    /// Waits until something listens on 127.0.0.1:`port`; fails the test with the server's
    /// output when it exits first or does not listen within 15 s.
    pub fn wait_port(&mut self, port: u16) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.name, self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} did not listen on {port}:\n{}", self.name, self.output());
    }

    /// What the server wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Lets nginx's workers, which run as nobody, traverse `dir` to their temp directory below it.
pub fn traversable(dir: &Path) {
    ok(tool("chmod", &["755", dir.to_str().unwrap()], dir));
}

/// An nginx prefix directory: `logs/`, and `tmp/` writable by the workers (mode 1777).
pub fn nginx_prefix(prefix: &Path) {
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    std::fs::create_dir_all(prefix.join("tmp")).unwrap();
    ok(tool(
        "chmod",
        &["1777", prefix.join("tmp").to_str().unwrap()],
        prefix,
    ));
}

/// nginx's command line for the configuration `conf` under `prefix` (error log in
/// `prefix/logs`), then `extra` (`-s reload`, `-t`).
pub fn nginx_args(prefix: &Path, conf: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "-p".into(),
        format!("{}/", prefix.display()),
        "-c".into(),
        conf.display().to_string(),
        "-e".into(),
        prefix.join("logs/error.log").display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The server's own TLS certificate, self-signed by openssl for 127.0.0.1 (P-256, two days):
/// `dir/server-ca.crt` (what clients trust) and `dir/server.key`, returned in that order.
/// It comes from no gitca CA, so only the client side of each test is gitca's.
pub fn server_tls(dir: &Path) -> (PathBuf, PathBuf) {
    let server_ca = dir.join("server-ca.crt");
    let server_key = dir.join("server.key");
    ok(tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            server_key.to_str().unwrap(),
            "-out",
            server_ca.to_str().unwrap(),
        ],
        dir,
    ));
    (server_ca, server_key)
}

/// GET `url` with curl, trusting `server_ca` and presenting `cert` and `key`: the HTTP status
/// (0 when TLS or the connection fails).
pub fn curl_status(server_ca: &Path, cert: &Path, key: &Path, url: &str) -> u16 {
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .args(["--noproxy", "*", "--cacert"])
        .arg(server_ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg(url)
        .output()
        .unwrap();
    stdout(&o).trim().parse().unwrap_or(0)
}

/// What the end-to-end tests ask `gitca export nginx --standalone` for: nginx under `prefix`
/// on `listen`, in front of the registry on `upstream`, serving the TLS pair `tls_cert` and
/// `tls_key`, admitting clients whose certificates chain to `client_ca` and are not on `crl`.
pub struct NginxSite<'a> {
    pub prefix: &'a Path,
    pub listen: &'a str,
    pub server_name: &'a str,
    pub upstream: &'a str,
    pub tls_cert: &'a Path,
    pub tls_key: &'a Path,
    pub client_ca: &'a Path,
    pub crl: &'a Path,
}

impl NginxSite<'_> {
    /// The nginx.conf that `gitca` (a command with `-C`, and `--now` where wanted) exports for
    /// this site, `extra` arguments last. The export must succeed.
    pub fn export(&self, mut gitca: Command, extra: &[&str]) -> String {
        gitca
            .args(["export", "nginx", "--standalone"])
            .arg(self.prefix)
            .arg("--listen")
            .arg(self.listen)
            .arg("--server-name")
            .arg(self.server_name)
            .arg("--upstream")
            .arg(self.upstream)
            .arg("--tls-cert")
            .arg(self.tls_cert)
            .arg("--tls-key")
            .arg(self.tls_key)
            .arg("--client-ca")
            .arg(self.client_ca)
            .arg("--crl")
            .arg(self.crl)
            .args(extra);
        stdout(&ok(run(&mut gitca)))
    }
}

/// The configuration that `gitca` (a command with `-C`, and `--now` where wanted) exports for
/// a registry behind nginx (`export registry --behind-nginx`), listening on `listen` and
/// storing under `storage`. The export must succeed.
pub fn export_registry_behind_nginx(mut gitca: Command, listen: &str, storage: &Path) -> String {
    gitca
        .args(["export", "registry", "--behind-nginx", "--listen", listen])
        .arg("--storage")
        .arg(storage);
    stdout(&ok(run(&mut gitca)))
}

/// A web server for one directory: ETag and If-None-Match, every request logged; a file
/// `NAME.redirect` answers a request for NAME with a 302 to the URL it holds, `NAME.status`
/// with that status and no body, and `NAME.etag` sets the ETag NAME is sent with.
pub fn http_server(root: PathBuf) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut inm = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("if-none-match:") {
                    inm = Some(v.trim().to_string());
                }
            }
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let body = std::fs::read(root.join(&path)).ok();
            let mut s = stream;
            // `NAME.redirect` beside where NAME would be: a 302 to the URL it holds.
            let redirect = std::fs::read_to_string(root.join(format!("{path}.redirect"))).ok();
            // `NAME.status`: that status (e.g. `500 Internal Server Error`) and no body.
            let status = std::fs::read_to_string(root.join(format!("{path}.status"))).ok();
            // `NAME.etag`: the ETag sent with NAME instead of its digest.
            let etag_override = std::fs::read_to_string(root.join(format!("{path}.etag"))).ok();
            let response = match (redirect, body) {
                _ if status.is_some() => {
                    let status = status.unwrap();
                    seen.lock()
                        .unwrap()
                        .push(format!("{} {path}", &status.trim()[..3]));
                    format!(
                        "HTTP/1.1 {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        status.trim()
                    )
                    .into_bytes()
                }
                (Some(to), _) => {
                    seen.lock().unwrap().push(format!("302 {path}"));
                    format!("HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", to.trim()).into_bytes()
                }
                (None, body) => match body {
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                    Some(b) => {
                        use sha2::Digest as _;
                        let etag =
                            etag_override
                                .map(|e| e.trim().to_string())
                                .unwrap_or_else(|| {
                                    format!("\"{}\"", &hex::encode(sha2::Sha256::digest(&b))[..16])
                                });
                        // As nginx does: `If-None-Match: *` matches whatever is there.
                        if inm.as_deref() == Some(etag.as_str()) || inm.as_deref() == Some("*") {
                            seen.lock().unwrap().push(format!("304 {path}"));
                            format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
                        } else {
                            seen.lock().unwrap().push(format!("200 {path}"));
                            let mut r = format!("HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len()).into_bytes();
                            r.extend(b);
                            r
                        }
                    }
                },
            };
            let _ = s.write_all(&response);
        }
    });
    (port, log)
}
