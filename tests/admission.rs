//! The drill of issue 23, against the real nginx and registry: a thief decrypts the CA key as
//! CI holds it (`age -d`), mints certificates for "mallory" with `openssl x509 -req` outside
//! gitca — one with a fresh serial, one with alice's — and presents them: refused by the nginx
//! `gitca export nginx --admitted` configures, admitted by one without it (so the refusal is
//! the admission list's doing). Reviewed identities are admitted. The relying party's
//! `gitca deploy admission` refuses a list re-signed with the CA key, an unsigned one, a
//! tampered one and an older one.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemons::*;
use common::*;

const PEOPLE: &str =
    "users:\n  - name: alice\n    csr: csr/alice.csr\n  - name: bob\n    csr: csr/bob.csr\n";

/// A history signing key (an ed25519 key, listed in ca/allowed_signers by a signed commit):
/// its file and its text, as CI holds it in GITCA_SIGNING_KEY.
fn history_signing_key(ca: &Ca) -> (PathBuf, String) {
    let keys = ca.tmp.path().join("signing");
    std::fs::create_dir_all(&keys).unwrap();
    let (signing, _) = ca.sign_history(&keys);
    let text = std::fs::read_to_string(&signing).unwrap();
    (signing, text)
}

/// curl to the registry's API root through the nginx on `port`; the HTTP status (0: none).
fn status(server_ca: &Path, cert: &Path, key: &Path, port: u16) -> u16 {
    curl_status(
        server_ca,
        cert,
        key,
        &format!("https://127.0.0.1:{port}/v2/"),
    )
}

/// A certificate for `cn` signed with the stolen CA key by openssl, with `serial`.
fn mint(ca: &Ca, dir: &Path, stolen: &Path, cn: &str, serial: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{cn}-{serial}.key"));
    let csr = dir.join(format!("{cn}-{serial}.csr"));
    let crt = dir.join(format!("{cn}-{serial}.crt"));
    let ext = dir.join("client.ext");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
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
            &s(&key),
            "-out",
            &s(&csr),
            "-subj",
            &format!("/O=Acme/CN={cn}"),
        ],
        dir,
    ));
    ok(tool(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &s(&csr),
            "-CA",
            &s(&ca.path("ca/ca.crt")),
            "-CAkey",
            &s(stolen),
            "-set_serial",
            &format!("0x{serial}"),
            "-days",
            "30",
            "-sha256",
            "-extfile",
            &s(&ext),
            "-out",
            &s(&crt),
        ],
        dir,
    ));
    (crt, key)
}

#[test]
fn a_certificate_minted_with_the_stolen_ca_key_opens_nothing() {
    for t in [
        "nginx",
        "docker-registry",
        "curl",
        "openssl",
        "age",
        "ssh-keygen",
    ] {
        require(t);
    }
    // Real time: nginx checks the CRL's dates against its own clock.
    let now = now_rfc3339();
    let ca = Ca::new();
    let tmp = ca.tmp.path().to_path_buf();
    traversable(&tmp);
    let (_, signing_text) = history_signing_key(&ca);
    let publish = |dir: &Path| {
        let mut c = ca.cmd(&now);
        c.arg("publish")
            .arg(dir)
            .env("GITCA_SIGNING_KEY", &signing_text);
        let o = ok(run(&mut c));
        assert!(
            stdout(&o).contains("signed admission list"),
            "{}",
            stdout(&o)
        );
    };
    let reconcile = || {
        let mut c = ca.cmd(&now);
        c.args(["reconcile", "--identity"])
            .arg(&ca.identity)
            .env("GITCA_SIGNING_KEY", &signing_text);
        ok(run(&mut c));
    };
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n    csr: csr/alice.csr\n");
    ca.commit("onboard alice");
    reconcile();
    let older = tmp.join("public-older");
    publish(&older);
    ca.p256_csr("bob");
    ca.identities(PEOPLE);
    ca.commit("onboard bob");
    reconcile();
    let public = tmp.join("public");
    publish(&public);
    ok(run(ca.cmd(&now).arg("audit")));

    // The server: the CA and its history signers pinned once, the list installed by gitca.
    let server = tmp.join("server");
    std::fs::create_dir_all(&server).unwrap();
    let pinned_ca = server.join("ca.crt");
    std::fs::copy(ca.path("ca/ca.crt"), &pinned_ca).unwrap();
    let pinned_signers = server.join("allowed_signers");
    std::fs::copy(ca.path("ca/allowed_signers"), &pinned_signers).unwrap();
    let map = server.join("admitted.map");
    let deploy = |from: &Path| {
        let mut c = gitca();
        c.args(["deploy", "admission", "--from"])
            .arg(from)
            .arg("--signers")
            .arg(&pinned_signers)
            .arg("--out")
            .arg(&map);
        run(&mut c)
    };
    let o = ok(deploy(&public));
    assert!(stdout(&o).contains("2 certificate(s)"), "{}", stdout(&o));
    let crl = server.join("ca.crl.pem");
    std::fs::copy(public.join("ca.crl.pem"), &crl).unwrap();
    let (server_ca, server_key) = server_tls(&server);
    let p_registry = free_port();
    let registry_conf = server.join("registry.yml");
    std::fs::write(
        &registry_conf,
        export_registry_behind_nginx(
            ca.cmd(&now),
            &format!("127.0.0.1:{p_registry}"),
            &server.join("data"),
        ),
    )
    .unwrap();
    let _registry = Server::listening(
        "docker-registry",
        Command::new("docker-registry")
            .arg("serve")
            .arg(&registry_conf),
        p_registry,
        &tmp.join("registry.log"),
    );
    // Two nginx: the same configuration with and without admission by record.
    let nginx = |name: &'static str, admitted: bool| {
        let prefix = server.join(name);
        nginx_prefix(&prefix);
        let port = free_port();
        let site = NginxSite {
            prefix: &prefix,
            listen: &format!("127.0.0.1:{port}"),
            server_name: "127.0.0.1",
            upstream: &format!("127.0.0.1:{p_registry}"),
            tls_cert: &server_ca,
            tls_key: &server_key,
            client_ca: &pinned_ca,
            crl: &crl,
        };
        let map = map.display().to_string();
        let extra: &[&str] = if admitted { &["--admitted", &map] } else { &[] };
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, site.export(ca.cmd(&now), extra)).unwrap();
        let s = Server::listening(
            name,
            Command::new("nginx").args(nginx_args(&prefix, &conf, &[])),
            port,
            &tmp.join(format!("{name}.out")),
        );
        (s, port)
    };
    let (_guarded, guarded) = nginx("nginx-admitted", true);
    let (_plain, plain) = nginx("nginx-plain", false);

    // The thief: the CA key decrypted as CI would, certificates minted with openssl.
    let thief = tmp.join("thief");
    std::fs::create_dir_all(&thief).unwrap();
    let stolen = thief.join("ca.key");
    ca.decrypt_ca_key(&stolen);
    let alice_serial = serial_of(&ca.path("certs/alice.crt"));
    let (mallory, mallory_key) = mint(&ca, &thief, &stolen, "mallory", "5eedf00d5eedf00d5eedf00d");
    let (copycat, copycat_key) = mint(&ca, &thief, &stolen, "mallory", &alice_serial);
    let alice = (ca.path("certs/alice.crt"), ca.keys.join("alice.key"));
    let bob = (ca.path("certs/bob.crt"), ca.keys.join("bob.key"));

    // Chain and CRL alone admit the thief's certificates: the plain nginx lets them in.
    let log =
        || std::fs::read_to_string(server.join("nginx-plain/logs/error.log")).unwrap_or_default();
    assert_eq!(
        status(&server_ca, &mallory, &mallory_key, plain),
        200,
        "{}",
        log()
    );
    assert_eq!(status(&server_ca, &copycat, &copycat_key, plain), 200);
    assert_eq!(status(&server_ca, &alice.0, &alice.1, plain), 200);
    // With admission by record: reviewed identities in, the thief's certificates out.
    assert_eq!(status(&server_ca, &alice.0, &alice.1, guarded), 200);
    assert_eq!(status(&server_ca, &bob.0, &bob.1, guarded), 200);
    assert_eq!(status(&server_ca, &mallory, &mallory_key, guarded), 403);
    assert_eq!(status(&server_ca, &copycat, &copycat_key, guarded), 403);

    // The relying party refuses what the thief can make of the list, and an older list.
    let installed = std::fs::read(&map).unwrap();
    let forged = tmp.join("forged");
    std::fs::create_dir_all(&forged).unwrap();
    let mallory_der = stdout(&ok(tool(
        "sh",
        &[
            "-c",
            &format!(
                "openssl x509 -in {} -outform DER | sha256sum",
                mallory.display()
            ),
        ],
        &thief,
    )));
    let mallory_sha1 = stdout(&ok(tool(
        "sh",
        &[
            "-c",
            &format!(
                "openssl x509 -in {} -outform DER | sha1sum",
                mallory.display()
            ),
        ],
        &thief,
    )));
    let mut list = std::fs::read_to_string(public.join("admitted.txt")).unwrap();
    list.push_str(&format!(
        "5eedf00d5eedf00d5eedf00d {} {}\n",
        mallory_der.split(' ').next().unwrap(),
        mallory_sha1.split(' ').next().unwrap()
    ));
    std::fs::write(forged.join("admitted.txt"), &list).unwrap();
    // 1. Tampered, with the genuine signature.
    std::fs::copy(
        public.join("admitted.txt.sig"),
        forged.join("admitted.txt.sig"),
    )
    .unwrap();
    let o = fails(deploy(&forged));
    assert!(stderr(&o).contains("does not match"), "{}", stderr(&o));
    // 2. Re-signed with the CA key (ssh-keygen reads its PKCS#8 PEM).
    std::fs::remove_file(forged.join("admitted.txt.sig")).unwrap();
    ok(tool("chmod", &["600", stolen.to_str().unwrap()], &thief));
    ok(tool(
        "sh",
        &["-c", "ssh-keygen -y -f ca.key > ca.key.pub"],
        &thief,
    ));
    ok(tool(
        "ssh-keygen",
        &[
            "-Y",
            "sign",
            "-n",
            "gitca-admission",
            "-f",
            stolen.to_str().unwrap(),
            forged.join("admitted.txt").to_str().unwrap(),
        ],
        &thief,
    ));
    assert!(forged.join("admitted.txt.sig").exists());
    let o = fails(deploy(&forged));
    assert!(stderr(&o).contains("not list"), "{}", stderr(&o));
    // 3. Unsigned.
    std::fs::remove_file(forged.join("admitted.txt.sig")).unwrap();
    let o = fails(deploy(&forged));
    assert!(stderr(&o).contains("no signature"), "{}", stderr(&o));
    // 4. Older (genuinely signed, before bob).
    let o = fails(deploy(&older));
    assert!(stderr(&o).contains("older"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&map).unwrap(),
        installed,
        "nothing was installed"
    );
    // The same list again is current.
    let o = ok(deploy(&public));
    assert!(stdout(&o).contains("current"), "{}", stdout(&o));

    // Time to admit: from the merge that declares carol to nginx letting her in, through the
    // signed reconcile, publish, deploy admission and a reload. Her certificate is refused
    // until the list that holds it is installed.
    ca.p256_csr("carol");
    ca.identities(&format!(
        "{PEOPLE}  - name: carol\n    csr: csr/carol.csr\n"
    ));
    ca.commit("onboard carol");
    let merged = Instant::now();
    reconcile();
    publish(&public);
    let carol = (ca.path("certs/carol.crt"), ca.keys.join("carol.key"));
    assert_eq!(
        status(&server_ca, &carol.0, &carol.1, guarded),
        403,
        "not installed yet"
    );
    // The server's own step, as a timer runs it: install, then reload nginx (the hook).
    let p = server.join("nginx-admitted").display().to_string();
    let mut c = gitca();
    c.args(["deploy", "admission", "--from"])
        .arg(&public)
        .arg("--signers")
        .arg(&pinned_signers)
        .arg("--out")
        .arg(&map)
        .arg("--reload")
        .arg(format!(
            "nginx -p {p}/ -c {p}/nginx.conf -e {p}/logs/error.log -s reload"
        ));
    let o = ok(run(&mut c));
    assert!(stdout(&o).contains("3 certificate(s)"), "{}", stdout(&o));
    let mut code = 0;
    while merged.elapsed() < Duration::from_secs(20) {
        code = status(&server_ca, &carol.0, &carol.1, guarded);
        if code == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(code, 200, "carol admitted after the reload");
    let took = merged.elapsed();
    eprintln!("time to admit (merge -> nginx admits carol): {took:.2?}");
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/time-to-admit.txt"),
        format!("{:.3}\n", took.as_secs_f64()),
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The thief is still out, alice still in.
    assert_eq!(status(&server_ca, &mallory, &mallory_key, guarded), 403);
    assert_eq!(status(&server_ca, &alice.0, &alice.1, guarded), 200);
}

#[test]
fn publish_without_the_signing_key_still_publishes_the_crl() {
    let ca = Ca::new();
    let tmp = ca.tmp.path().to_path_buf();
    ca.sign_history(&tmp);
    let out = tmp.join("public");
    let o = ok(run(ca.cmd(T0).arg("publish").arg(&out)));
    assert!(
        stdout(&o).contains("no admission list published"),
        "{}",
        stdout(&o)
    );
    assert!(out.join("ca.crl.pem").exists());
    assert!(!out.join("admitted.txt").exists());
    // Without declared signers nothing about admission is said or written.
    let plain = Ca::new();
    let out = plain.tmp.path().join("public");
    let o = ok(run(plain.cmd(T0).arg("publish").arg(&out)));
    assert!(!stdout(&o).contains("admission"), "{}", stdout(&o));
    assert!(!out.join("admitted.txt").exists());
}

/// After a renewal both of alice's certificates are valid, and both are on the list (each
/// with the fingerprint openssl computes for it): a client not yet moved to the new one keeps
/// working until the old one expires. An expired or revoked one is not listed.
#[test]
fn the_list_holds_every_live_certificate_a_renewal_left() {
    let ca = Ca::new();
    let tmp = ca.tmp.path().to_path_buf();
    let (signing, _) = ca.sign_history(&tmp);
    let signing_text = std::fs::read_to_string(&signing).unwrap();
    ca.p256_csr("alice");
    ca.p256_csr("bob");
    ca.identities(PEOPLE);
    ca.commit("onboard alice and bob");
    let signed = |now: &str, args: &[&str]| {
        let mut c = ca.cmd(now);
        c.args(args).env("GITCA_SIGNING_KEY", &signing_text);
        ok(run(&mut c))
    };
    let id = ca.identity.to_str().unwrap().to_string();
    signed(T0, &["reconcile", "--identity", &id]);
    let first = ca.keep("certs/alice.crt", "alice-1.crt");
    let t1 = days_after(T0, 340);
    signed(&t1, &["reconcile", "--identity", &id]);
    let second = ca.path("certs/alice.crt");
    ca.identities("users:\n  - name: alice\n    csr: csr/alice.csr\n");
    ca.commit("offboard bob");
    signed(&t1, &["reconcile", "--identity", &id]);
    let out = tmp.join("public");
    signed(&t1, &["publish", out.to_str().unwrap()]);
    let list = std::fs::read_to_string(out.join("admitted.txt")).unwrap();
    let fingerprint = |cert: &Path| {
        let o = ok(tool(
            "sh",
            &[
                "-c",
                &format!(
                    "openssl x509 -in '{}' -outform DER | sha256sum",
                    cert.display()
                ),
            ],
            &tmp,
        ));
        stdout(&o).split(' ').next().unwrap().to_string()
    };
    assert_ne!(fingerprint(&first), fingerprint(&second));
    assert!(list.contains(&fingerprint(&first)), "{list}");
    assert!(list.contains(&fingerprint(&second)), "{list}");
    assert_eq!(
        list.lines().count(),
        4 + 2,
        "alice's two, not bob's revoked one: {list}"
    );
    // ssh-keygen verifies the list's signature against the repository's signers.
    let o = ok(tool(
        "sh",
        &[
            "-c",
            &format!(
                "ssh-keygen -Y verify -f '{}' -I gitca-ci -n gitca-admission -s admitted.txt.sig < admitted.txt",
                ca.path("ca/allowed_signers").display()
            ),
        ],
        &out,
    ));
    assert!(
        stdout(&o).contains("Good \"gitca-admission\" signature"),
        "{}",
        stdout(&o)
    );
}

/// `deploy admission` the way a server runs it: from the published tree over HTTP, with a
/// reload hook that sees the new map (and puts the previous one back when it fails),
/// Prometheus metrics, and exit 4 once the newest list it has seen is older than --max-age
/// and the source is gone; an unreachable source alone leaves what is installed.
#[test]
fn deploy_admission_over_http_reloads_rolls_back_and_goes_stale() {
    let ca = Ca::new();
    let tmp = ca.tmp.path().to_path_buf();
    let (_, signing_text) = history_signing_key(&ca);
    let public = tmp.join("public");
    let step = |now: &str, yaml: &str, name: &str| {
        ca.p256_csr(name);
        ca.identities(yaml);
        ca.commit(&format!("onboard {name}"));
        let mut c = ca.cmd(now);
        c.args(["reconcile", "--identity"])
            .arg(&ca.identity)
            .env("GITCA_SIGNING_KEY", &signing_text);
        ok(run(&mut c));
        let mut c = ca.cmd(now);
        c.arg("publish")
            .arg(&public)
            .env("GITCA_SIGNING_KEY", &signing_text);
        ok(run(&mut c));
    };
    step(
        T0,
        "users:\n  - name: alice\n    csr: csr/alice.csr\n",
        "alice",
    );
    let older = tmp.join("public-alice");
    std::fs::create_dir_all(&older).unwrap();
    for f in ["admitted.txt", "admitted.txt.sig", "index.json"] {
        std::fs::copy(public.join(f), older.join(f)).unwrap();
    }
    let (port, log) = http_server(public.clone());
    let url = format!("http://127.0.0.1:{port}");
    let server = tmp.join("server");
    std::fs::create_dir_all(&server).unwrap();
    let signers = server.join("allowed_signers");
    std::fs::copy(ca.path("ca/allowed_signers"), &signers).unwrap();
    let map = server.join("admitted.map");
    let metrics = server.join("admission.prom");
    let deploy = |now: &str, from: &str, hook: &str, extra: &[&str]| {
        let mut c = gitca();
        c.current_dir(&server)
            .args([
                "--now",
                now,
                "deploy",
                "admission",
                "--from",
                from,
                "--signers",
            ])
            .arg(&signers)
            .arg("--out")
            .arg(&map)
            .arg("--metrics")
            .arg(&metrics)
            .args(["--reload", hook])
            .args(extra);
        run(&mut c)
    };
    let metric = |name: &str| {
        let text = std::fs::read_to_string(&metrics).unwrap();
        text.lines()
            .find(|l| l.starts_with(&format!("gitca_{name}{{")))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse::<f64>()
            .unwrap()
    };

    // A reload that fails on the first install: nothing stays installed.
    let o = fails(deploy(T0, &url, "exit 3", &[]));
    assert!(stderr(&o).contains("reload failed"), "{}", stderr(&o));
    assert!(!map.exists());
    assert_eq!(metric("admission_refused"), 1.0);
    // The hook sees the map it installs; fetched over HTTP.
    let o = ok(deploy(
        T0,
        &url,
        "cp \"$GITCA_ADMISSION_FILE\" seen.map",
        &[],
    ));
    assert!(stdout(&o).contains("1 certificate(s)"), "{}", stdout(&o));
    assert_eq!(
        std::fs::read(&map).unwrap(),
        std::fs::read(server.join("seen.map")).unwrap()
    );
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l == "200 admitted.txt.sig"));
    let first = std::fs::read(&map).unwrap();
    // A signer pinned with namespaces="git" may sign commits, not admission lists (as
    // `ssh-keygen -Y verify` reads the same file): refused, nothing written.
    let git_only = server.join("git_only_signers");
    let pinned = std::fs::read_to_string(&signers).unwrap();
    let line = pinned.lines().find(|l| l.contains("ssh-ed25519")).unwrap();
    let (principal, key) = line.split_once(' ').unwrap();
    std::fs::write(&git_only, format!("{principal} namespaces=\"git\" {key}\n")).unwrap();
    let other_map = server.join("other.map");
    let o = fails(run(gitca()
        .args([
            "--now",
            T0,
            "deploy",
            "admission",
            "--from",
            &url,
            "--signers",
        ])
        .arg(&git_only)
        .arg("--out")
        .arg(&other_map)));
    assert!(stderr(&o).contains("namespaces"), "{}", stderr(&o));
    assert!(!other_map.exists());
    let sequence = metric("admission_sequence");
    assert!(sequence > 0.0);
    assert_eq!(metric("admission_entries"), 1.0);
    assert_eq!(metric("admission_stale"), 0.0);

    // bob is merged; the reload fails: the previous map, byte for byte, is back.
    let d1 = days_after(T0, 1);
    step(&d1, PEOPLE, "bob");
    let o = fails(deploy(&d1, &url, "exit 3", &[]));
    assert!(
        stderr(&o).contains("previous admission map is back"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&map).unwrap(), first);
    // It works: bob's list is installed, one sequence on.
    let o = ok(deploy(&d1, &url, "true", &[]));
    assert!(stdout(&o).contains("2 certificate(s)"), "{}", stdout(&o));
    assert!(metric("admission_sequence") > sequence);
    // The map removed (by hand, a rotation, a hook): the older list is still refused, since
    // the newest sequence installed here is kept beside the map.
    let installed = std::fs::read(&map).unwrap();
    std::fs::remove_file(&map).unwrap();
    let o = fails(deploy(&d1, older.to_str().unwrap(), "true", &[]));
    assert!(stderr(&o).contains("older"), "{}", stderr(&o));
    assert!(!map.exists());
    ok(deploy(&d1, &url, "true", &[]));
    assert_eq!(std::fs::read(&map).unwrap(), installed);

    // The source goes away: what is installed stays (exit 0) while it is recent …
    std::fs::remove_file(public.join("admitted.txt")).unwrap();
    let installed = std::fs::read(&map).unwrap();
    let o = ok(deploy(&days_after(T0, 3), &url, "true", &[]));
    assert!(stderr(&o).contains("cannot fetch"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&map).unwrap(), installed);
    // … and is stale (exit 4) once the newest list seen is older than --max-age.
    let late = days_after(T0, 12);
    let o = run(&mut {
        let mut c = gitca();
        c.current_dir(&server)
            .args([
                "--now",
                &late,
                "deploy",
                "admission",
                "--from",
                &url,
                "--signers",
            ])
            .arg(&signers)
            .arg("--out")
            .arg(&map)
            .arg("--metrics")
            .arg(&metrics);
        c
    });
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("STALE"), "{}", stderr(&o));
    assert_eq!(metric("admission_stale"), 1.0);
    let o = ok(deploy(&late, &url, "true", &["--max-age", "30d"]));
    assert!(!stderr(&o).contains("STALE"), "{}", stderr(&o));
}

/// `list` (the text of an admission list) and its signature by the history signing key `key`,
/// made with `ssh-keygen -Y sign` — a list the signing key really signed, but no publish wrote.
fn signed_list(dir: &Path, key: &Path, list: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("admitted.txt");
    std::fs::write(&file, list).unwrap();
    let _ = std::fs::remove_file(dir.join("admitted.txt.sig"));
    let o = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "gitca-admission", "-f"])
        .arg(key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The relying party takes only what a publish of the pinned history could have written: a
/// redirect to another origin is never followed; a second list for an installed sequence (a
/// rewritten history or a fork the signing key signed), a replay at that sequence, a sequence
/// or time no publish writes, oversized, binary or linked content: all refused, though each
/// carries a valid signature. What is installed is reported as installed, and the operator's
/// mode and link at --out are kept.
#[test]
fn deploy_admission_takes_only_what_a_publish_could_have_written() {
    let ca = Ca::new();
    let tmp = ca.tmp.path().to_path_buf();
    let (signing, signing_text) = history_signing_key(&ca);
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n    csr: csr/alice.csr\n");
    ca.commit("onboard alice");
    let public = tmp.join("public");
    for args in [vec!["reconcile", "--identity"], vec!["publish"]] {
        let mut c = ca.cmd(T0);
        c.args(&args).env("GITCA_SIGNING_KEY", &signing_text);
        if args[0] == "reconcile" {
            c.arg(&ca.identity);
        } else {
            c.arg(&public);
        }
        ok(run(&mut c));
    }
    let published = std::fs::read_to_string(public.join("admitted.txt")).unwrap();
    let field = |name: &str| {
        published
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap()
            .to_string()
    };
    let (commit, sequence) = (field("commit"), field("sequence").parse::<u64>().unwrap());

    let server = tmp.join("server");
    std::fs::create_dir_all(&server).unwrap();
    let signers = server.join("allowed_signers");
    std::fs::copy(ca.path("ca/allowed_signers"), &signers).unwrap();
    // The operator's layout: the map nginx includes is a link to where deploys write, mode
    // 0640 (group nginx), and so it stays.
    let real = server.join("maps/admitted.map");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    let map = server.join("admitted.map");
    std::os::unix::fs::symlink("maps/admitted.map", &map).unwrap();
    let metrics = server.join("admission.prom");
    let deploy = |now: &str, from: &str| {
        let mut c = gitca();
        c.current_dir(&server)
            .args(["--now", now, "deploy", "admission", "--from", from])
            .arg("--signers")
            .arg(&signers)
            .arg("--out")
            .arg(&map)
            .arg("--metrics")
            .arg(&metrics)
            .args(["--reload", "touch reloaded"]);
        run(&mut c)
    };
    let entries = || {
        let text = std::fs::read_to_string(&metrics).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("gitca_admission_entries{"))
            .unwrap()
            .to_string();
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
    };

    // A redirect to another origin (here another port of the same host) is not followed:
    // no request reaches it, nothing is installed.
    let (elsewhere_port, elsewhere) = http_server(public.clone());
    let front = tmp.join("front");
    std::fs::create_dir_all(front.join("moved")).unwrap();
    for f in ["admitted.txt", "admitted.txt.sig"] {
        std::fs::copy(public.join(f), front.join("moved").join(f)).unwrap();
        std::fs::write(
            front.join(format!("{f}.redirect")),
            format!("http://127.0.0.1:{elsewhere_port}/{f}"),
        )
        .unwrap();
    }
    let (front_port, front_log) = http_server(front.clone());
    let url = format!("http://127.0.0.1:{front_port}");
    let o = deploy(T0, &url);
    assert!(stderr(&o).contains("another origin"), "{}", stderr(&o));
    assert!(elsewhere.lock().unwrap().is_empty());
    assert!(!real.exists());
    // Within the source's origin (absolute path, then relative), redirects are followed.
    std::fs::write(front.join("admitted.txt.redirect"), "/moved/admitted.txt").unwrap();
    std::fs::write(
        front.join("admitted.txt.sig.redirect"),
        "moved/admitted.txt.sig",
    )
    .unwrap();
    let o = ok(deploy(T0, &url));
    assert!(stdout(&o).contains("Installed"), "{}", stdout(&o));
    assert!(front_log
        .lock()
        .unwrap()
        .contains(&"200 moved/admitted.txt.sig".to_string()));
    assert!(elsewhere.lock().unwrap().is_empty());
    assert!(std::fs::symlink_metadata(&map)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&real).unwrap().lines().count(), 3);
    assert!(server.join("reloaded").exists());
    assert_eq!(entries(), 1.0);

    // The operator narrows the map's mode; every later install keeps it (and the link).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let installed = std::fs::read(&real).unwrap();
    let crafted = tmp.join("crafted");
    let from = crafted.to_str().unwrap();
    let entry = published.lines().last().unwrap().to_string();
    let other_entry = format!("7f{}", &entry[2..]);
    // Two entries in the order publish writes them (ascending serial).
    let two: Vec<&str> = {
        let mut v = vec![entry.as_str(), other_entry.as_str()];
        v.sort();
        v
    };
    let list = |sequence: &str, commit: &str, generated: &str, lines: &[&str]| {
        let mut t = format!(
            "gitca-admission 1\ncommit {commit}\nsequence {sequence}\ngenerated {generated}\n"
        );
        for l in lines {
            t.push_str(l);
            t.push('\n');
        }
        t
    };
    let seq = sequence.to_string();
    let refused = |text: &str, why: &str| {
        signed_list(&crafted, &signing, text);
        std::fs::remove_file(server.join("reloaded")).ok();
        let o = fails(deploy(&days_after(T0, 1), from));
        assert!(stderr(&o).contains(why), "{why}: {}", stderr(&o));
        assert_eq!(std::fs::read(&real).unwrap(), installed, "{why}");
        assert!(!server.join("reloaded").exists());
        assert_eq!(entries(), 1.0, "{why}: the metric counts what is installed");
    };
    let other_commit = "ab".repeat(20);
    let t0 = T0.to_string();
    let later = days_after(T0, 1);
    // The same sequence from another commit: a fork or a rewritten history.
    refused(
        &list(&seq, &other_commit, &t0, &[&entry]),
        "two histories of one length",
    );
    // The same sequence and commit, other entries, not signed later: a replay or forgery.
    refused(&list(&seq, &commit, &t0, &two), "replayed or forged");
    // Sequences and times no publish writes.
    let next = (sequence + 1).to_string();
    for bad in [
        format!("+{next}"),
        format!("0{next}"),
        u64::MAX.to_string(),
        ((1u64 << 40) + 1).to_string(),
    ] {
        refused(&list(&bad, &commit, &later, &[&entry]), "line 3");
    }
    refused(
        &list(&next, &commit, "2026-01-02T00:00:00+00:00", &[&entry]),
        "line 4",
    );
    refused(
        &list(&next, &commit, &days_after(T0, 30), &[&entry]),
        "from the future",
    );
    // Entries or bytes no publish writes: twice, out of order, CRLF.
    refused(
        &list(&next, &commit, &later, &[&entry, &entry]),
        "ascending",
    );
    refused(
        &list(&next, &commit, &later, &[two[1], two[0]]),
        "ascending",
    );
    refused(
        &list(&next, &commit, &later, &[&entry]).replace('\n', "\r\n"),
        "as publish writes it",
    );
    // Too large, not text, a link: refused (an error), not "cannot fetch".
    let big = format!(
        "{}{}",
        list(&next, &commit, &later, &[]),
        format!("{entry}\n").repeat(300_000)
    );
    refused(&big, "more than");
    std::fs::write(
        crafted.join("admitted.txt"),
        b"gitca-admission 1\n\xff\xfe\n",
    )
    .unwrap();
    let o = fails(deploy(&later, from));
    assert!(stderr(&o).contains("not UTF-8"), "{}", stderr(&o));
    std::fs::remove_file(crafted.join("admitted.txt")).unwrap();
    std::os::unix::fs::symlink(public.join("admitted.txt"), crafted.join("admitted.txt")).unwrap();
    let o = fails(deploy(&later, from));
    assert!(stderr(&o).contains("link"), "{}", stderr(&o));
    std::fs::remove_file(crafted.join("admitted.txt")).unwrap();

    // The same list signed later: current, the header refreshed, no reload.
    signed_list(&crafted, &signing, &list(&seq, &commit, &later, &[&entry]));
    let o = ok(deploy(&later, from));
    assert!(stdout(&o).contains("current"), "{}", stdout(&o));
    assert!(!server.join("reloaded").exists());
    assert!(std::fs::read_to_string(&real).unwrap().contains(&later));
    // Other entries at the same sequence and commit, signed later (publish drops a certificate
    // that expired): installed, reloaded, the mode and the link kept.
    let d2 = days_after(T0, 2);
    signed_list(&crafted, &signing, &list(&seq, &commit, &d2, &two));
    let o = ok(deploy(&d2, from));
    assert!(stdout(&o).contains("Installed"), "{}", stdout(&o));
    assert!(server.join("reloaded").exists());
    assert_eq!(entries(), 2.0);
    let meta = std::fs::metadata(&real).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert!(std::fs::symlink_metadata(&map)
        .unwrap()
        .file_type()
        .is_symlink());
    // The floor remembers the commit: with the map gone, the fork is still refused.
    std::fs::remove_file(&real).unwrap();
    signed_list(
        &crafted,
        &signing,
        &list(&seq, &other_commit, &days_after(T0, 3), &[&entry]),
    );
    let o = fails(deploy(&days_after(T0, 3), from));
    assert!(stderr(&o).contains("two histories"), "{}", stderr(&o));
    assert!(!real.exists());
    // … and so is a list of that commit signed before the newest installed (a replay of the
    // one that still admitted a certificate since dropped); the newest goes back in.
    signed_list(&crafted, &signing, &list(&seq, &commit, &later, &[&entry]));
    let o = fails(deploy(&days_after(T0, 3), from));
    assert!(stderr(&o).contains("map was removed"), "{}", stderr(&o));
    assert!(!real.exists());
    signed_list(&crafted, &signing, &list(&seq, &commit, &d2, &two));
    ok(deploy(&days_after(T0, 3), from));
    assert_eq!(entries(), 2.0);
    // A floor an earlier gitca wrote (the sequence alone) cannot tell a replay: with the map
    // gone, refused until the operator removes it.
    let floor = real.with_file_name(".admitted.map.gitca-admission-floor");
    assert!(std::fs::read_to_string(&floor)
        .unwrap()
        .contains("generated"));
    std::fs::write(&floor, format!("sequence {seq}\n")).unwrap();
    std::fs::remove_file(&real).unwrap();
    let o = fails(deploy(&days_after(T0, 3), from));
    assert!(stderr(&o).contains("earlier gitca"), "{}", stderr(&o));
    std::fs::remove_file(&floor).unwrap();
    ok(deploy(&days_after(T0, 3), from));
    assert_eq!(entries(), 2.0);

    // Over HTTP, a signature the source fails to serve leaves it unavailable (exit 0, what is
    // installed stays); one it does not have is an unsigned list, refused.
    std::fs::copy(crafted.join("admitted.txt"), front.join("admitted.txt")).unwrap();
    for f in ["admitted.txt.redirect", "admitted.txt.sig.redirect"] {
        std::fs::remove_file(front.join(f)).unwrap();
    }
    std::fs::write(
        front.join("admitted.txt.sig.status"),
        "500 Internal Server Error",
    )
    .unwrap();
    let o = ok(deploy(&days_after(T0, 3), &url));
    assert!(stderr(&o).contains("cannot fetch"), "{}", stderr(&o));
    std::fs::remove_file(front.join("admitted.txt.sig.status")).unwrap();
    let o = fails(deploy(&days_after(T0, 3), &url));
    assert!(stderr(&o).contains("no signature"), "{}", stderr(&o));
    assert_eq!(entries(), 2.0);
}
