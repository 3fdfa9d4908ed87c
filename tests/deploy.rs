//! The relying party's side: `gitca publish` and `gitca deploy crl|cert` from a directory, an
//! HTTP server (with conditional GET) and a git repository; what they refuse (another CA, a
//! rollback, an expired CRL, a revoked or foreign certificate), the reload hook and its
//! rollback, staleness, and the metrics. PKCS#12 bundles are read back by openssl and Python.

mod common;

use std::path::{Path, PathBuf};

use common::daemons::http_server;
use common::*;

/// A CA with alice, bob and a bot, reconciled at T0 and published to `pub/`.
fn published() -> (Ca, PathBuf, PathBuf) {
    let ca = Ca::new();
    for (n, bot) in [("alice", false), ("bob", false), ("ci", true)] {
        let mut c = ca.cmd(T0);
        c.args(["request", n, "--key-out"])
            .arg(ca.keys.join(format!("{n}.key")));
        if bot {
            c.arg("--bot");
        }
        ok(run(&mut c));
    }
    ca.commit("three");
    ok(ca.reconcile(T0));
    let public = ca.tmp.path().join("pub");
    ok(run(ca.cmd(T0).arg("publish").arg(&public)));
    let pinned = ca.keep("ca/ca.crt", "pinned.crt");
    (ca, public, pinned)
}

fn deploy_crl(
    ca: &Ca,
    now: &str,
    from: &str,
    pinned: &Path,
    out: &Path,
    extra: &[&str],
) -> (i32, String) {
    let o = run(gitca()
        .args(["--now", now, "deploy", "crl", "--from", from, "--ca"])
        .arg(pinned)
        .arg("--out")
        .arg(out)
        .args(extra)
        .current_dir(ca.tmp.path()));
    (
        o.status.code().unwrap(),
        format!("{}{}", stdout(&o), stderr(&o)),
    )
}

fn crl_number(path: &Path) -> u64 {
    let o = ok(tool(
        "openssl",
        &["crl", "-in", path.to_str().unwrap(), "-noout", "-crlnumber"],
        path.parent().unwrap(),
    ));
    u64::from_str_radix(stdout(&o).trim().trim_start_matches("crlNumber=0x"), 16).unwrap()
}

#[test]
fn publish_writes_a_tree_relying_parties_can_check() {
    let (ca, public, _) = published();
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(public.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["crl"]["number"], 1);
    for f in [
        "ca.crt",
        "ca.crl",
        "ca.crl.pem",
        "certs/alice.crt",
        "certs/ci.crt",
    ] {
        let data = std::fs::read(public.join(f)).unwrap();
        use sha2::Digest as _;
        assert_eq!(
            index["files"][f].as_str().unwrap(),
            hex::encode(sha2::Sha256::digest(&data)),
            "{f}"
        );
    }
    // The DER CRL is what openssl reads as DER; the certificates verify against the CA and CRL.
    ok(tool(
        "openssl",
        &["crl", "-inform", "DER", "-in", "ca.crl", "-noout"],
        &public,
    ));
    ok(tool(
        "openssl",
        &[
            "verify",
            "-attime",
            &epoch(T0),
            "-crl_check",
            "-CAfile",
            "ca.crt",
            "-CRLfile",
            "ca.crl.pem",
            "certs/alice.crt",
        ],
        &public,
    ));
    // bob leaves: his certificate is no longer published, the CRL is.
    ca.offboard("bob");
    ca.commit("bob leaves");
    ok(ca.reconcile(&days_after(T0, 1)));
    ok(run(ca.cmd(&days_after(T0, 1)).arg("publish").arg(&public)));
    assert!(!public.join("certs/bob.crt").exists());
    assert_eq!(crl_number(&public.join("ca.crl.pem")), 2);
    // Publishing into the repository itself is refused; into a planted link inside it too.
    let o = fails(run(ca.cmd(T0).arg("publish").arg(&ca.root)));
    assert!(
        stderr(&o).contains("would hold the CA repository"),
        "{}",
        stderr(&o)
    );
    std::os::unix::fs::symlink(ca.tmp.path(), ca.path("public")).unwrap();
    let o = fails(run(ca.cmd(T0).arg("publish").arg(ca.path("public"))));
    assert!(
        stderr(&o).contains("public is a symbolic link"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_distribution_point_goes_into_new_certificates() {
    let ca = Ca::new();
    let cfg = ca.read("gitca.yaml").replace(
        "  refresh_before: 3d\n",
        "  refresh_before: 3d\n  distribution_point: http://pki.example.com/ca.crl\n",
    );
    ca.write("gitca.yaml", &cfg);
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    ca.commit("cdp");
    ok(ca.reconcile(T0));
    let text = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/alice.crt",
        "-noout",
        "-ext",
        "crlDistributionPoints",
    ])));
    assert!(text.contains("URI:http://pki.example.com/ca.crl"), "{text}");
}

#[test]
fn deploy_crl_installs_only_newer_crls_of_the_pinned_ca() {
    let (ca, public, pinned) = published();
    let server = ca.tmp.path().join("server");
    let out = server.join("ca.crl");
    let count = ca.tmp.path().join("reloads");
    let hook = format!("echo $GITCA_CRL_NUMBER >> {}", count.display());
    let from = public.to_str().unwrap();
    let metrics = server.join("gitca.prom");
    let (code, log) = deploy_crl(
        &ca,
        T0,
        from,
        &pinned,
        &out,
        &["--reload", &hook, "--metrics", metrics.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("installed CRL #1"), "{log}");
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "1\n");
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        m.contains(&format!("gitca_crl_number{{file=\"{}\"}} 1", out.display())),
        "{m}"
    );
    assert!(
        m.contains("gitca_deploy_stale{") && m.contains("} 0"),
        "{m}"
    );
    // Nothing new: nothing written, the hook not run.
    let (code, log) = deploy_crl(&ca, T0, from, &pinned, &out, &["--reload", &hook]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("nothing new"), "{log}");
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "1\n");
    // The record of what was verified holds only for the same bytes: an installed file that
    // changed behind gitca's back (here another CA's CRL) is judged afresh and replaced.
    let stranger = Ca::new();
    std::fs::copy(stranger.path("crl/ca.crl"), &out).unwrap();
    let (code, log) = deploy_crl(&ca, T0, from, &pinned, &out, &["--reload", &hook]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("installed CRL #1"), "{log}");
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "1\n1\n");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(public.join("crls.pem")).unwrap()
    );
    let old = std::fs::read_to_string(public.join("crls.pem")).unwrap();
    // bob leaves; the next publish is installed and bob's certificate fails against it.
    ca.offboard("bob");
    ca.commit("bob leaves");
    let bob = ca.keep("certs/bob.crt", "bob.crt");
    ok(ca.reconcile(&days_after(T0, 1)));
    ok(run(ca.cmd(&days_after(T0, 1)).arg("publish").arg(&public)));
    let (code, log) = deploy_crl(
        &ca,
        &days_after(T0, 1),
        from,
        &pinned,
        &out,
        &["--reload", &hook],
    );
    assert_eq!(code, 0, "{log}");
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "1\n1\n2\n");
    let o = tool(
        "openssl",
        &[
            "verify",
            "-attime",
            &epoch(&days_after(T0, 1)),
            "-crl_check",
            "-CAfile",
            pinned.to_str().unwrap(),
            "-CRLfile",
            out.to_str().unwrap(),
            bob.to_str().unwrap(),
        ],
        ca.tmp.path(),
    );
    assert!(!o.status.success(), "bob is revoked on the installed CRL");
    let installed = std::fs::read_to_string(&out).unwrap();

    // A rollback (the older CRL served again), another CA's CRL, and an expired one: refused,
    // exit 1, nothing touched.
    std::fs::write(public.join("crls.pem"), &old).unwrap();
    let (code, log) = deploy_crl(
        &ca,
        &days_after(T0, 1),
        from,
        &pinned,
        &out,
        &["--reload", &hook],
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("older than #2 installed before"), "{log}");
    let other = Ca::new();
    std::fs::copy(other.path("crl/ca.crl"), public.join("crls.pem")).unwrap();
    let (code, log) = deploy_crl(&ca, &days_after(T0, 1), from, &pinned, &out, &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("signed neither by the pinned CA"), "{log}");
    ok(run(ca.cmd(&days_after(T0, 1)).arg("publish").arg(&public)));
    let (code, log) = deploy_crl(
        &ca,
        &days_after(T0, 30),
        from,
        &pinned,
        ca.tmp.path().join("fresh.crl").as_path(),
        &[],
    );
    assert_eq!(
        code, 1,
        "expired: refused (exit 1), and nothing installed is stale too: {log}"
    );
    assert!(log.contains("expired") && log.contains("STALE"), "{log}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), installed);
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "1\n1\n2\n");
}

#[test]
fn a_failing_reload_puts_the_previous_crl_back_and_staleness_is_loud() {
    let (ca, public, pinned) = published();
    let out = ca.tmp.path().join("server/ca.crl");
    let from = public.to_str().unwrap();
    assert_eq!(deploy_crl(&ca, T0, from, &pinned, &out, &[]).0, 0);
    let before = std::fs::read_to_string(&out).unwrap();
    // Day 4: the CA re-signed the CRL (refresh window); nginx -t fails on the server.
    ok(ca.reconcile(&days_after(T0, 4)));
    ok(run(ca.cmd(&days_after(T0, 4)).arg("publish").arg(&public)));
    let (code, log) = deploy_crl(
        &ca,
        &days_after(T0, 4),
        from,
        &pinned,
        &out,
        &["--reload", "echo broken >&2; exit 1"],
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("the previous CRL was put back"), "{log}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before);
    // Day 6: still nothing installed but #1, which expires on day 7: stale, exit 4, loud.
    let metrics = ca.tmp.path().join("m.prom");
    std::fs::remove_dir_all(&public).unwrap();
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(public.join("index.json"), "{}").unwrap();
    let (code, log) = deploy_crl(
        &ca,
        &days_after(T0, 6),
        from,
        &pinned,
        &out,
        &["--metrics", metrics.to_str().unwrap()],
    );
    assert_eq!(code, 4, "{log}");
    assert!(
        log.contains("STALE") && log.contains("refuse EVERY client"),
        "{log}"
    );
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        m.contains("gitca_deploy_stale{")
            && m.lines()
                .any(|l| l.starts_with("gitca_deploy_stale{") && l.ends_with(" 1")),
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("gitca_deploy_consecutive_failures{") && l.ends_with(" 2")),
        "{m}"
    );
}

#[test]
fn deploy_crl_over_http_asks_only_if_changed() {
    let (ca, public, pinned) = published();
    let (port, log) = http_server(public.clone());
    let url = format!("http://127.0.0.1:{port}");
    let out = ca.tmp.path().join("server/ca.crl");
    assert_eq!(deploy_crl(&ca, T0, &url, &pinned, &out, &[]).0, 0);
    let (code, text) = deploy_crl(&ca, T0, &url, &pinned, &out, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        *log.lock().unwrap(),
        ["200 crls.pem", "304 crls.pem"],
        "the second poll moved no CRL"
    );
    ok(ca.reconcile(&days_after(T0, 5)));
    ok(run(ca.cmd(&days_after(T0, 5)).arg("publish").arg(&public)));
    let (code, text) = deploy_crl(&ca, &days_after(T0, 5), &url, &pinned, &out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("installed CRL #2"), "{text}");
    assert_eq!(log.lock().unwrap().last().unwrap(), "200 crls.pem");
}

#[test]
fn deploy_crl_reads_the_ca_repository_through_git() {
    let (ca, _, pinned) = published();
    let out = ca.tmp.path().join("server/ca.crl");
    let cache = ca.tmp.path().join("git-cache");
    let o = ok(run(gitca()
        .args(["--now", T0, "deploy", "crl", "--from-git"])
        .arg(&ca.root)
        .arg("--git-cache")
        .arg(&cache)
        .arg("--ca")
        .arg(&pinned)
        .arg("--out")
        .arg(&out)));
    assert!(stdout(&o).contains("installed CRL #1"), "{}", stdout(&o));
    let o = ok(run(gitca()
        .args(["--now", T0, "deploy", "crl", "--from-git"])
        .arg(&ca.root)
        .arg("--git-cache")
        .arg(&cache)
        .arg("--ca")
        .arg(&pinned)
        .arg("--out")
        .arg(&out)));
    assert!(stdout(&o).contains("nothing new"), "{}", stdout(&o));
}

fn deploy_cert(
    now: &str,
    name: &str,
    key: &Path,
    from: &Path,
    pinned: &Path,
    dir: &Path,
) -> (i32, String) {
    let o = run(gitca()
        .args(["--now", now, "deploy", "cert", name, "--key"])
        .arg(key)
        .arg("--from")
        .arg(from)
        .arg("--ca")
        .arg(pinned)
        .arg("--out-dir")
        .arg(dir));
    (
        o.status.code().unwrap(),
        format!("{}{}", stdout(&o), stderr(&o)),
    )
}

#[test]
fn deploy_cert_keeps_a_bot_current_and_refuses_what_is_not_its_own() {
    let (ca, public, pinned) = published();
    let dir = ca.tmp.path().join("bot-certs");
    let key = ca.keys.join("ci.key");
    let (code, log) = deploy_cert(T0, "ci", &key, &public, &pinned, &dir);
    assert_eq!(code, 0, "{log}");
    let first = serial_of(&dir.join("client.cert"));
    assert_eq!(
        std::fs::metadata(dir.join("client.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // Day 21: renewed in the repository, published; deploy installs it.
    let day21 = days_after(T0, 21);
    ok(ca.reconcile(&day21));
    ok(run(ca.cmd(&day21).arg("publish").arg(&public)));
    let (code, log) = deploy_cert(&day21, "ci", &key, &public, &pinned, &dir);
    assert_eq!(code, 0, "{log}");
    let second = serial_of(&dir.join("client.cert"));
    assert_ne!(first, second, "{log}");
    assert!(log.contains(&second), "{log}");
    let (code, log) = deploy_cert(&day21, "ci", &key, &public, &pinned, &dir);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("nothing newer"), "{log}");
    // Another identity's key: refused, nothing installed.
    let (code, log) = deploy_cert(
        &day21,
        "ci",
        &ca.keys.join("alice.key"),
        &public,
        &pinned,
        &ca.tmp.path().join("x"),
    );
    assert_eq!(code, 1, "refused (and nothing installed: stale too): {log}");
    assert!(
        log.contains("another key") && log.contains("STALE"),
        "{log}"
    );
    // Offboarded: the certificate is revoked; a stale one is loud once it nears expiry (here
    // the source's CRL has expired too: refused, exit 1, and STALE said).
    ca.offboard("ci");
    ca.commit("ci removed");
    ok(ca.reconcile(&day21));
    ok(run(ca.cmd(&day21).arg("publish").arg(&public)));
    let late = days_after(T0, 48);
    let (code, log) = deploy_cert(&late, "ci", &key, &public, &pinned, &dir);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("STALE") && log.contains("expired"), "{log}");
}

use std::os::unix::fs::PermissionsExt;

/// The python with `cryptography` (scripts/test.sh sets GITCA_TEST_PYTHON).
fn python() -> String {
    let py = std::env::var("GITCA_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let o = std::process::Command::new(&py)
        .args(["-c", "import cryptography"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{py} lacks the cryptography package: run the suite through scripts/test.sh"
    );
    py
}

#[test]
fn pkcs12_bundles_are_read_by_openssl_and_python() {
    let (ca, _, _) = published();
    let key = ca.keys.join("alice.key");
    for legacy in [false, true] {
        let p12 = ca.tmp.path().join(if legacy {
            "alice-legacy.p12"
        } else {
            "alice.p12"
        });
        let mut c = ca.cmd(T0);
        c.args(["bundle", "alice", "--key"])
            .arg(&key)
            .arg("--p12")
            .arg(&p12);
        if legacy {
            c.arg("--legacy");
        }
        c.env("GITCA_P12_PASSWORD", "correct horse");
        ok(run(&mut c));
        assert_eq!(
            std::fs::metadata(&p12).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut args = vec![
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-nodes",
            "-passin",
            "pass:correct horse",
        ];
        if legacy {
            args.push("-legacy");
        }
        let o = ok(tool("openssl", &args, ca.tmp.path()));
        let text = stdout(&o);
        assert!(
            text.contains("CN=alice") || text.contains("CN = alice"),
            "{text}"
        );
        assert!(text.contains("PRIVATE KEY"), "the key is in it");
        let script = format!(
            "from cryptography.hazmat.primitives.serialization import pkcs12, load_pem_private_key\n\
             k, c, extra = pkcs12.load_key_and_certificates(open('{}','rb').read(), b'correct horse')\n\
             mine = load_pem_private_key(open('{}','rb').read(), None)\n\
             assert k.public_key() == mine.public_key(), 'the key matches'\n\
             print(c.subject.rfc4514_string(), len(extra))\n",
            p12.display(),
            key.display()
        );
        let o = ok(tool(&python(), &["-c", &script], ca.tmp.path()));
        assert!(
            stdout(&o).contains("CN=alice") && stdout(&o).trim().ends_with(" 1"),
            "{}",
            stdout(&o)
        );
        let o = tool(
            "openssl",
            &[
                "pkcs12",
                "-in",
                p12.to_str().unwrap(),
                "-nodes",
                "-passin",
                "pass:wrong",
            ],
            ca.tmp.path(),
        );
        assert!(!o.status.success(), "the password protects it");
    }
    let o = fails(run(ca
        .cmd(T0)
        .args(["bundle", "alice", "--key"])
        .arg(&key)
        .arg("--p12")
        .arg(ca.tmp.path().join("x.p12"))
        .env("GITCA_P12_PASSWORD", "")));
    assert!(stderr(&o).contains("password is empty"), "{}", stderr(&o));
}

#[test]
fn containerd_bundles_carry_hosts_toml() {
    let (ca, _, _) = published();
    let root = ca.tmp.path().join("containerd-certs.d");
    let server_ca = ca.keep("ca/ca.crt", "server-ca.crt");
    ok(run(ca
        .cmd(T0)
        .args(["bundle", "alice", "--key"])
        .arg(ca.keys.join("alice.key"))
        .args([
            "--registry",
            "reg.example.com:5000",
            "--containerd",
            "--certs-root",
        ])
        .arg(&root)
        .arg("--server-ca")
        .arg(&server_ca)));
    let dir = root.join("reg.example.com:5000");
    let toml = std::fs::read_to_string(dir.join("hosts.toml")).unwrap();
    assert!(
        toml.contains("[host.\"https://reg.example.com:5000\"]"),
        "{toml}"
    );
    assert!(
        toml.contains("client = [[\"client.cert\", \"client.key\"]]"),
        "{toml}"
    );
    assert!(
        toml.contains("ca = [\"ca.crt\", \"server-ca.crt\"]"),
        "{toml}"
    );
    for f in ["client.cert", "client.key", "ca.crt", "server-ca.crt"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
}

/// A bot's deploy never takes another identity's files in the target directory for its own
/// (a person's bundle where the bot deploys), nor overwrites them: refused, files untouched;
/// in an empty directory it installs its own.
#[test]
fn deploy_cert_never_takes_or_overwrites_another_identitys_files() {
    let (ca, public, pinned) = published();
    let root = ca.tmp.path().join("certs.d");
    ok(run(ca
        .cmd(T0)
        .args(["bundle", "bob", "--key"])
        .arg(ca.keys.join("bob.key"))
        .args(["--registry", "reg.example:5000", "--certs-root"])
        .arg(&root)));
    let dir = root.join("reg.example:5000");
    let bobs = std::fs::read_to_string(dir.join("client.cert")).unwrap();
    let deploy = || {
        run(gitca()
            .args(["--now", T0, "deploy", "cert", "ci", "--key"])
            .arg(ca.keys.join("ci.key"))
            .arg("--from")
            .arg(&public)
            .arg("--ca")
            .arg(&pinned)
            .args(["--registry", "reg.example:5000", "--certs-root"])
            .arg(&root))
    };
    let o = deploy();
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("holds the certificate of bob"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("client.cert")).unwrap(),
        bobs
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let o = ok(deploy());
    assert!(
        stdout(&o).contains("installed certificate"),
        "{}",
        stdout(&o)
    );
    let o = ok(deploy());
    assert!(stdout(&o).contains("nothing newer"), "{}", stdout(&o));
}

/// The class of issue 23's relying-party findings, for the CRL: a link at --out and the
/// operator's mode are kept across installs; a redirect to another origin is never followed;
/// a file over the limit is refused (an error), not taken for an unreachable source.
#[test]
fn deploy_crl_keeps_the_operators_link_and_mode_and_refuses_what_no_publish_wrote() {
    use std::os::unix::fs::PermissionsExt;
    let (ca, public, pinned) = published();
    let server = ca.tmp.path().join("server");
    std::fs::create_dir_all(server.join("real")).unwrap();
    let real = server.join("real/ca.crl");
    let out = server.join("ca.crl");
    std::os::unix::fs::symlink("real/ca.crl", &out).unwrap();
    let from = public.to_str().unwrap();
    let (code, text) = deploy_crl(&ca, T0, from, &pinned, &out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(std::fs::symlink_metadata(&out)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(crl_number(&real), 1);
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let d5 = days_after(T0, 5);
    ok(ca.reconcile(&d5));
    ok(run(ca.cmd(&d5).arg("publish").arg(&public)));
    let (code, text) = deploy_crl(&ca, &d5, from, &pinned, &out, &[]);
    assert!(code == 0 && text.contains("installed CRL #2"), "{text}");
    assert!(std::fs::symlink_metadata(&out)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(crl_number(&real), 2);
    let mode = std::fs::metadata(&real).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "the operator's mode is kept");

    // A redirect to another origin is not followed; within the origin it is.
    let (elsewhere_port, elsewhere) = http_server(public.clone());
    let front = ca.tmp.path().join("front");
    std::fs::create_dir_all(front.join("moved")).unwrap();
    std::fs::copy(public.join("crls.pem"), front.join("moved/crls.pem")).unwrap();
    std::fs::write(
        front.join("crls.pem.redirect"),
        format!("http://127.0.0.1:{elsewhere_port}/crls.pem"),
    )
    .unwrap();
    let (port, _) = http_server(front.clone());
    let url = format!("http://127.0.0.1:{port}");
    let other = server.join("other.crl");
    let (_, text) = deploy_crl(&ca, &d5, &url, &pinned, &other, &[]);
    assert!(text.contains("another origin"), "{text}");
    assert!(elsewhere.lock().unwrap().is_empty() && !other.exists());
    std::fs::write(front.join("crls.pem.redirect"), "/moved/crls.pem").unwrap();
    let (code, text) = deploy_crl(&ca, &d5, &url, &pinned, &other, &[]);
    assert!(code == 0 && other.exists(), "{text}");

    // Over the fetch limit: refused, an error, nothing changed.
    let crls = public.join("crls.pem");
    let mut big = std::fs::read(&crls).unwrap();
    big.resize(49 << 20, b'\n');
    std::fs::write(&crls, big).unwrap();
    let before = std::fs::read(&real).unwrap();
    let (code, text) = deploy_crl(&ca, &d5, from, &pinned, &out, &[]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("more than"), "{text}");
    assert_eq!(std::fs::read(&real).unwrap(), before);
}

/// A mirror's one answer never keeps a relying party on an old CRL: validators it could poison
/// (`ETag: *`, which nginx matches against any file) are not sent back, a 304 to a request that
/// was not conditional is a failure (not "nothing new"), and a CRL going stale is asked for
/// without validators.
#[test]
fn deploy_crl_takes_no_validator_a_mirror_could_poison() {
    let (ca, public, pinned) = published();
    let (port, log) = http_server(public.clone());
    let url = format!("http://127.0.0.1:{port}");
    let out = ca.tmp.path().join("server/ca.crl");
    let last = || log.lock().unwrap().last().cloned().unwrap();
    std::fs::write(public.join("crls.pem.etag"), "*").unwrap();
    let (code, text) = deploy_crl(&ca, T0, &url, &pinned, &out, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(crl_number(&out), 1);
    std::fs::remove_file(public.join("crls.pem.etag")).unwrap();
    let d5 = days_after(T0, 5);
    ok(ca.reconcile(&d5));
    ok(run(ca.cmd(&d5).arg("publish").arg(&public)));
    let (code, text) = deploy_crl(&ca, &d5, &url, &pinned, &out, &[]);
    assert!(code == 0 && text.contains("installed CRL #2"), "{text}");
    assert_eq!(last(), "200 crls.pem");
    // Validators a source sent honestly are used: the next poll is one 304.
    let (code, text) = deploy_crl(&ca, &d5, &url, &pinned, &out, &[]);
    assert!(code == 0 && text.contains("nothing new"), "{text}");
    assert_eq!(last(), "304 crls.pem");
    // Another source (the operator changed --from): one server's validators are not sent to
    // another, which is asked afresh.
    let (other_port, other_log) = http_server(public.clone());
    let other = format!("http://127.0.0.1:{other_port}");
    let (code, text) = deploy_crl(&ca, &d5, &other, &pinned, &out, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(*other_log.lock().unwrap(), ["200 crls.pem"]);
    let (code, text) = deploy_crl(&ca, &d5, &url, &pinned, &out, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(last(), "200 crls.pem", "and back again: asked afresh");
    // Going stale (CRL #2 expires on day 12, the margin is 2 days): asked afresh.
    let (code, text) = deploy_crl(&ca, &days_after(T0, 11), &url, &pinned, &out, &[]);
    assert_eq!(code, 4, "{text}");
    assert_eq!(last(), "200 crls.pem");

    // A 304 to a request that asked nothing of the kind: the source failed, it is not current.
    std::fs::write(public.join("crls.pem.status"), "304 Not Modified").unwrap();
    let fresh = ca.tmp.path().join("server/fresh.crl");
    let (_, text) = deploy_crl(&ca, &d5, &url, &pinned, &fresh, &[]);
    assert!(text.contains("not conditional"), "{text}");
    assert!(!text.contains("nothing new") && !fresh.exists(), "{text}");
}

/// deploy cert, like deploy crl: validators that keep answering "not modified" (a mirror's
/// ETag the server matches whatever it serves) hold a renewal back only until the installed
/// certificate is within --stale-margin of expiring; then it is asked for afresh.
#[test]
fn deploy_cert_asks_afresh_when_the_installed_certificate_goes_stale() {
    let (ca, public, pinned) = published();
    std::fs::write(public.join("certs/ci.crt.etag"), "\"poison\"").unwrap();
    let (port, log) = http_server(public.clone());
    let url = format!("http://127.0.0.1:{port}");
    let dir = ca.tmp.path().join("bot-certs");
    let key = ca.keys.join("ci.key");
    let deploy = |now: &str| {
        let o = run(gitca()
            .args(["--now", now, "deploy", "cert", "ci", "--key"])
            .arg(&key)
            .args(["--from", &url, "--ca"])
            .arg(&pinned)
            .arg("--out-dir")
            .arg(&dir));
        format!("{}{}", stdout(&o), stderr(&o))
    };
    deploy(T0);
    let first = serial_of(&dir.join("client.cert"));
    let day21 = days_after(T0, 21);
    ok(ca.reconcile(&day21));
    ok(run(ca.cmd(&day21).arg("publish").arg(&public)));
    let said = deploy(&day21);
    assert!(said.contains("nothing new"), "{said}");
    assert_eq!(serial_of(&dir.join("client.cert")), first);
    assert!(log
        .lock()
        .unwrap()
        .contains(&"304 certs/ci.crt".to_string()));
    // Day 27: the first certificate expires on day 30, the margin is 5 days.
    let said = deploy(&days_after(T0, 27));
    assert_ne!(serial_of(&dir.join("client.cert")), first, "{said}");
    assert_eq!(log.lock().unwrap().last().unwrap(), "200 certs/ci.crt");
}
