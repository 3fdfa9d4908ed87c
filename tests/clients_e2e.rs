//! The real registry clients — skopeo, containerd's ctr, dockerd with the docker CLI — against
//! docker-registry behind nginx, with every client certificate, the CRL, the server's own TLS
//! certificate (a `servers:` entry, issued with the `server` profile) and the server's
//! configuration coming from gitca: each client trusts the registry through the ca.crt gitca
//! installed beside its client certificate, with no --server-ca. Each test proves, with its
//! client:
//!
//! a) alice (group `push`) pushes and pulls; bob (group `pull`) pulls, and his push is refused
//!    by the rights of gitca.yaml `registry:` (nginx answers 403 to his upload);
//! b) after alice is offboarded (entry deleted, reconcile, publish) and the server ran
//!    `gitca deploy crl --reload`, alice's files are refused (push and pull) and bob still pulls;
//! c) the bot `ci` gets its certificate with `gitca deploy cert`; on day 21 reconcile renews it,
//!    `gitca publish` + `gitca deploy cert` install the new one, and the client keeps pulling.
//!
//! The Rust side plays the CA: it makes the repository, runs the reconciles at their simulated
//! times and publishes a tree after each step of the story. The shell side
//! (tests/clients/*.sh) plays the server and the clients: it runs the daemons with private roots,
//! sockets and state under the test's directory (dockerd inside its own network, mount and pid
//! namespace), installs the published trees with `gitca deploy`, and kills what it started by
//! pid. A missing tool fails the test.
//!
//! Time: nginx checks certificates and the CRL against the real clock, so the story is placed
//! so that its end is now. The certificates are issued at T = now − 22 days; a reconcile on day
//! 19 re-signs the CRL (the day-0 CRL expired on day 7) so the server has a current one; the
//! reconcile on day 21 (yesterday) renews the bot's 30-day certificate (9 days left < 10), whose
//! notBefore (day 21 − 1 h) is in nginx's past; the offboarding reconcile runs at the real now.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemons::*;
use common::*;

#[derive(Clone, Copy, PartialEq)]
enum Client {
    Skopeo,
    Containerd,
    Docker,
}

impl Client {
    fn script(self) -> &'static str {
        match self {
            Client::Skopeo => "skopeo.sh",
            Client::Containerd => "containerd.sh",
            Client::Docker => "docker.sh",
        }
    }

    fn tools(self) -> &'static [&'static str] {
        match self {
            Client::Skopeo => &["skopeo"],
            Client::Containerd => &["containerd", "ctr"],
            Client::Docker => &["dockerd", "docker", "containerd", "unshare", "ip", "mount"],
        }
    }

    fn name(self) -> &'static str {
        self.script().trim_end_matches(".sh")
    }
}

/// The serial `index.json` of a published tree lists for `name`.
fn published_serial(tree: &Path, name: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tree.join("index.json")).unwrap()).unwrap();
    index["certs"][name]["serial"]
        .as_str()
        .unwrap_or_else(|| panic!("no serial for {name} in {}", tree.display()))
        .to_string()
}

/// Everything the client script needs, made by gitca: the server's own TLS certificate too.
struct Story {
    ca: Ca,
    w: PathBuf,
    env: Vec<(String, String)>,
    ci_old: String,
    ci_new: String,
}

fn prepare(client: Client) -> Story {
    for t in [
        "nginx",
        "docker-registry",
        "curl",
        "openssl",
        "git",
        "age-keygen",
        "bash",
    ] {
        require(t);
    }
    for t in client.tools() {
        require(t);
    }
    let now_t = time::OffsetDateTime::now_utc();
    let now = rfc3339(now_t);
    let t = rfc3339(now_t - time::Duration::days(22));
    let install = days_after(&t, 19);
    let renew = days_after(&t, 21);

    let ca = Ca::new();
    let w = ca.tmp.path().join("w");
    std::fs::create_dir_all(&w).unwrap();
    // nginx workers run as nobody: they must traverse to their temp directory.
    traversable(ca.tmp.path());
    traversable(&w);
    let mut cfg = ca.read("gitca.yaml");
    cfg.push_str("\nregistry:\n  push_groups: [push]\n  pull_groups: [push, pull]\n");
    cfg.push_str(
        "\nservers:\n  dns_names: [registry.test]\n  ip_ranges: [127.0.0.1/32, 192.0.2.10/32]\n",
    );
    ca.write("gitca.yaml", &cfg);
    ca.commit("registry rights: push and pull groups; the registry's names");

    // Onboarding on day 0.
    let key = |n: &str| ca.keys.join(format!("{n}.key"));
    for (name, args) in [
        ("alice", &["--group", "push"][..]),
        ("bob", &["--group", "pull"][..]),
        ("ci", &["--bot", "--group", "push"][..]),
        (
            "registry",
            &[
                "--server",
                "--dns-name",
                "registry.test",
                "--ip-address",
                "127.0.0.1",
                "--ip-address",
                "192.0.2.10",
            ][..],
        ),
    ] {
        ok(run(ca
            .cmd(&t)
            .args(["request", name])
            .args(args)
            .arg("--key-out")
            .arg(key(name))));
    }
    ca.commit("onboard alice, bob, the bot ci and the registry's server certificate");
    let o = ok(ca.reconcile(&t));
    assert!(
        stdout(&o).contains("Signed 4 certificate(s)"),
        "{}",
        stdout(&o)
    );

    // Day 19: the daily reconcile re-signs the CRL; the CA publishes.
    let publish = |at: &str, dir: &Path| {
        ok(run(ca.cmd(at).arg("publish").arg(dir)));
    };
    let o = ok(ca.reconcile(&install));
    assert!(stdout(&o).contains("CRL"), "{}", stdout(&o));
    let pub_initial = w.join("pub/0-initial");
    publish(&install, &pub_initial);
    let ci_old = published_serial(&pub_initial, "ci");

    // alice's and bob's machines install their files with `gitca bundle`.
    let registry = match client {
        Client::Docker => "192.0.2.10:5443".to_string(),
        _ => format!("127.0.0.1:{}", free_port()),
    };
    // The registry's own certificate comes from the same repository (a `servers:` entry issued
    // on day 0, serverAuth only, for registry.test, 127.0.0.1 and 192.0.2.10): the server keeps
    // the one the day-0 tree published.
    let server_crt = w.join("server/server.crt");
    let server_key = key("registry");
    std::fs::create_dir_all(w.join("server")).unwrap();
    std::fs::copy(pub_initial.join("certs/registry.crt"), &server_crt).unwrap();
    let v = ca.openssl(&[
        "verify",
        "-CAfile",
        ca.path("ca/ca.crt").to_str().unwrap(),
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "registry.test",
        "-attime",
        &time::OffsetDateTime::now_utc().unix_timestamp().to_string(),
        server_crt.to_str().unwrap(),
    ]);
    assert!(
        v.status.success(),
        "server certificate: {}{}",
        stdout(&v),
        stderr(&v)
    );
    let certs: Vec<PathBuf> = ["alice", "bob"]
        .iter()
        .map(|name| {
            let mut c = ca.cmd(&install);
            c.args(["bundle", name, "--key"]).arg(key(name));
            let dir = match client {
                Client::Skopeo => {
                    let d = w.join(format!("clients/{name}"));
                    c.arg("--out-dir").arg(&d);
                    d
                }
                Client::Containerd | Client::Docker => {
                    let root = w.join(format!("clients/{name}-certs.d"));
                    c.args(["--registry", &registry])
                        .arg("--certs-root")
                        .arg(&root);
                    if client == Client::Containerd {
                        c.arg("--containerd");
                    }
                    root.join(&registry)
                }
            };
            ok(run(&mut c));
            assert!(dir.join("client.cert").is_file(), "{}", dir.display());
            if client == Client::Containerd {
                let hosts = std::fs::read_to_string(dir.join("hosts.toml")).unwrap();
                assert!(
                    hosts.contains(&format!("[host.\"https://{registry}\"]")),
                    "{hosts}"
                );
            }
            dir
        })
        .collect();

    // Day 21: reconcile renews the bot's certificate; the CA publishes.
    let o = ok(ca.reconcile(&renew));
    assert!(
        stdout(&o).contains("ci ") && stdout(&o).contains("renew"),
        "{}",
        stdout(&o)
    );
    let pub_renewed = w.join("pub/1-renewed");
    publish(&renew, &pub_renewed);
    let ci_new = published_serial(&pub_renewed, "ci");
    assert_ne!(ci_old, ci_new, "the bot got a new certificate");

    // Now: alice leaves. Her entry is deleted, reconcile revokes, the CA publishes.
    offboard_at(&ca.root, "alice");
    ca.commit("offboard alice");
    let o = ok(ca.reconcile(&now));
    assert!(stdout(&o).contains("identity-removed"), "{}", stdout(&o));
    let pub_offboarded = w.join("pub/2-offboarded");
    publish(&now, &pub_offboarded);
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pub_offboarded.join("index.json")).unwrap())
            .unwrap();
    assert_eq!(
        index["crl"]["entries"], 1,
        "alice's certificate is on the CRL: {index}"
    );

    // The server: the pinned CA (copied once, by hand), nginx.conf and the registry's config
    // from `gitca export`.
    let pinned = w.join("server/ca.crt");
    std::fs::copy(ca.path("ca/ca.crt"), &pinned).unwrap();
    let crl = w.join("server/ca.crl.pem");
    let prefix = w.join("server/nginx");
    nginx_prefix(&prefix);
    let registry_addr = match client {
        Client::Docker => "127.0.0.1:5000".to_string(),
        _ => format!("127.0.0.1:{}", free_port()),
    };
    let site = NginxSite {
        prefix: &prefix,
        listen: &registry,
        server_name: "registry.test",
        upstream: &registry_addr,
        tls_cert: &server_crt,
        tls_key: &server_key,
        client_ca: &pinned,
        crl: &crl,
    };
    let nginx_conf = site.export(ca.cmd(&now), &[]);
    assert!(
        nginx_conf.contains("return 403"),
        "registry rights: {nginx_conf}"
    );
    std::fs::write(prefix.join("nginx.conf"), nginx_conf).unwrap();
    let registry_conf = w.join("server/registry.yml");
    std::fs::write(
        &registry_conf,
        export_registry_behind_nginx(ca.cmd(&now), &registry_addr, &w.join("server/data")),
    )
    .unwrap();

    let p = |p: &Path| p.display().to_string();
    let env = vec![
        ("GITCA", p(&assert_cmd::cargo::cargo_bin("gitca"))),
        ("W", p(&w)),
        ("PINNED_CA", p(&pinned)),
        ("SERVER_CRL", p(&crl)),
        ("NGINX_PREFIX", p(&prefix)),
        ("REGISTRY_CONF", p(&registry_conf)),
        ("REGISTRY_ADDR", registry_addr),
        ("REGISTRY", registry),
        ("PUB_INITIAL", p(&pub_initial)),
        ("PUB_RENEWED", p(&pub_renewed)),
        ("PUB_OFFBOARDED", p(&pub_offboarded)),
        ("NOW_INSTALL", install),
        ("NOW_RENEW", renew),
        ("KEY_CI", p(&key("ci"))),
        ("CERTS_ALICE", p(&certs[0])),
        ("CERTS_BOB", p(&certs[1])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Story {
        ca,
        w,
        env,
        ci_old,
        ci_new,
    }
}

/// Runs tests/clients/SCRIPT with the story's environment; its output goes to the test's
/// stderr. A script that hangs is stopped (SIGTERM: its trap stops its daemons) after `limit`.
fn run_script(story: &Story, client: Client, limit: Duration) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(client.script());
    let log = story.w.join(format!("{}.log", client.name()));
    let out = std::fs::File::create(&log).unwrap();
    let home = story.w.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = Command::new("bash");
    c.arg(&script);
    for (k, _) in std::env::vars() {
        if k.starts_with("GITCA") || k.starts_with("DOCKER_") || k.starts_with("CONTAINERD_") {
            c.env_remove(k);
        }
    }
    c.envs(story.env.iter().map(|(k, v)| (k, v)))
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    let start = Instant::now();
    let mut child = c.spawn().unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = match status {
        Some(s) => Some(s),
        None => {
            // SAFETY: kill(2) on the script this test started, by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(40) {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!(
        "---- {} ({:.1} s) ----\n{text}",
        client.script(),
        start.elapsed().as_secs_f64()
    );
    let passed = status.is_some_and(|s| s.success())
        && text.lines().any(|l| l == format!("PASS {}", client.name()));
    if status.is_none() {
        return (
            false,
            format!("{} did not finish in {limit:?}", client.script()),
        );
    }
    (passed, text)
}

fn story(client: Client) {
    let start = Instant::now();
    let story = prepare(client);
    let prepared = start.elapsed();
    let (passed, text) = run_script(&story, client, Duration::from_secs(120));
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    assert!(
        passed,
        "{} failed; last lines:\n{}",
        client.script(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    // The bot's installed certificate: the published day-0 one, then the day-21 renewal.
    let read = |f: &str| {
        std::fs::read_to_string(story.w.join("run").join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .trim()
            .to_string()
    };
    assert_eq!(read("ci-serial-before"), story.ci_old);
    assert_eq!(read("ci-serial-after"), story.ci_new);
    assert_ne!(story.ci_old, story.ci_new);
    // The CA side agrees: alice revoked, the bot's old certificate superseded by the new one.
    let ledger = story.ca.read("ledger.tsv");
    assert!(
        ledger
            .lines()
            .any(|l| l.contains("\talice\t") && l.contains("revoked")),
        "{ledger}"
    );
    eprintln!(
        "{}: CA side {:.1} s, clients {:.1} s",
        client.name(),
        prepared.as_secs_f64(),
        (start.elapsed() - prepared).as_secs_f64()
    );
}

#[test]
fn skopeo_pushes_pulls_and_is_refused_after_offboarding() {
    story(Client::Skopeo);
}

#[test]
fn containerd_ctr_pushes_pulls_and_is_refused_after_offboarding() {
    story(Client::Containerd);
}

#[test]
fn docker_pushes_pulls_and_is_refused_after_offboarding() {
    story(Client::Docker);
}
