//! Time to revoke, measured end to end with the real programs: a developer pushes the commit
//! that deletes alice's entry; the CI example's reconcile and publish steps run verbatim
//! (examples/ci/github/reconcile.yml, jobs `reconcile` and `publish`) against a bare repository
//! standing in for the remote (the publish job in a persistent workspace whose `public/` the
//! server reads); the server — nginx in front of docker-registry on 127.0.0.1 — runs
//! `gitca deploy crl --watch 2s --reload 'nginx -t && nginx -s reload'`. The clock runs from the
//! push until nginx answers alice's certificate with 400; the result is printed and written to
//! target/time-to-revoke.txt, and must stay within the watch interval plus the CI's own time
//! plus a small slack.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::ci::{github_step, run_block, workflow};
use common::daemons::*;
use common::*;

/// The watch interval of the server's `gitca deploy crl` (it sleeps it ±10%).
const WATCH: Duration = Duration::from_secs(2);
/// What may come on top of the CI's time and one watch interval: deploy's fetch and install,
/// `nginx -t`, the reload (asynchronous: new workers), and the 50 ms polling of this test.
const SLACK: Duration = Duration::from_millis(1500);

/// curl through nginx with a `gitca bundle --out-dir` directory; the HTTP status (0: none).
fn status(dir: &Path, url: &str) -> u16 {
    curl_status(
        &dir.join("server-ca.crt"),
        &dir.join("client.cert"),
        &dir.join("client.key"),
        url,
    )
}

#[test]
fn time_to_revoke_from_push_to_nginx_refusing() {
    for t in [
        "nginx",
        "docker-registry",
        "curl",
        "openssl",
        "git",
        "bash",
        "age-keygen",
    ] {
        require(t);
    }
    let rec = workflow("examples/ci/github/reconcile.yml");
    let reconcile_step = github_step(&rec, "reconcile", "Reconcile and push");
    let publish_step = github_step(&rec, "publish", "Publish");

    let ca = Ca::new();
    let tmp = ca.tmp.path().to_path_buf();
    traversable(&tmp);
    let bare = tmp.join("remote.git");
    git(
        &tmp,
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git(
        &ca.root,
        &["remote", "add", "origin", bare.to_str().unwrap()],
    );
    git(&ca.root, &["push", "-q", "origin", "main"]);
    let clone = |name: &str| {
        let dir = tmp.join(name);
        git(
            &tmp,
            &["clone", "-q", bare.to_str().unwrap(), dir.to_str().unwrap()],
        );
        dir
    };

    // alice and bob onboard (one merged pull request).
    let dev = clone("dev");
    for name in ["alice", "bob"] {
        ok(run(gitca()
            .arg("-C")
            .arg(&dev)
            .args(["request", name, "--key-out"])
            .arg(ca.keys.join(format!("{name}.key")))));
    }
    git(&dev, &["add", "-A"]);
    git(&dev, &["commit", "-q", "-m", "onboard alice and bob"]);
    git(&dev, &["push", "-q", "origin", "main"]);

    // The CI: reconcile (and push) in a fresh checkout; then the publish job in its workspace
    // (a self-hosted runner's: the same directory every run, its `public/` served as it is —
    // `gitca publish` replaces each file atomically, the server reads only crls.pem).
    let identity = std::fs::read_to_string(&ca.identity).unwrap();
    let env = [
        ("GITCA_IDENTITY", identity.as_str()),
        ("GITCA_AUTHOR_NAME", "gitca-bot"),
        ("GITCA_AUTHOR_EMAIL", "bot@example.com"),
        ("BRANCH", "main"),
    ];
    let publisher = clone("publish-runner");
    let published = publisher.join("public");
    let ci = |n: u32| -> (Duration, Duration) {
        let start = Instant::now();
        let runner = clone(&format!("reconcile-runner-{n}"));
        let o = run_block(&reconcile_step, &runner, &env);
        assert!(
            o.status.success(),
            "reconcile step:\n{}\n{}",
            stdout(&o),
            stderr(&o)
        );
        let reconciled = start.elapsed();
        git(&publisher, &["pull", "-q", "--ff-only", "origin", "main"]);
        let o = run_block(&publish_step, &publisher, &[]);
        assert!(
            o.status.success(),
            "publish step:\n{}\n{}",
            stdout(&o),
            stderr(&o)
        );
        (reconciled, start.elapsed())
    };
    ci(1);

    // The server: the pinned CA, its own TLS certificate, nginx.conf and the registry's config
    // from `gitca export`, the CRL installed by `gitca deploy crl`.
    let server = tmp.join("server");
    std::fs::create_dir_all(&server).unwrap();
    let pinned = server.join("ca.crt");
    std::fs::copy(ca.path("ca/ca.crt"), &pinned).unwrap();
    let (server_ca, server_key) = server_tls(&server);
    let crl = server.join("ca.crl.pem");
    let prefix = server.join("nginx");
    nginx_prefix(&prefix);
    let (p_registry, p_nginx) = (free_port(), free_port());
    // The server's copy of the repository (a checkout, no --now): what it exports.
    let checkout = || {
        let mut c = gitca();
        c.arg("-C").arg(&dev);
        c
    };
    let site = NginxSite {
        prefix: &prefix,
        listen: &format!("127.0.0.1:{p_nginx}"),
        server_name: "127.0.0.1",
        upstream: &format!("127.0.0.1:{p_registry}"),
        tls_cert: &server_ca,
        tls_key: &server_key,
        client_ca: &pinned,
        crl: &crl,
    };
    std::fs::write(prefix.join("nginx.conf"), site.export(checkout(), &[])).unwrap();
    let registry_conf = server.join("registry.yml");
    std::fs::write(
        &registry_conf,
        export_registry_behind_nginx(
            checkout(),
            &format!("127.0.0.1:{p_registry}"),
            &server.join("data"),
        ),
    )
    .unwrap();
    let nginx_args = nginx_args(&prefix, &prefix.join("nginx.conf"), &[]).join(" ");
    let deploy = |extra: &[&str]| {
        let mut c = gitca();
        c.args(["deploy", "crl", "--from"])
            .arg(&published)
            .arg("--ca")
            .arg(&pinned)
            .arg("--out")
            .arg(&crl)
            .args(extra);
        c
    };
    ok(run(&mut deploy(&[])));
    let registry = Server::listening(
        "docker-registry",
        Command::new("docker-registry")
            .arg("serve")
            .arg(&registry_conf),
        p_registry,
        &tmp.join("registry.log"),
    );
    let nginx = Server::listening(
        "nginx",
        Command::new("nginx").args(nginx_args.split(' ')),
        p_nginx,
        &tmp.join("nginx.out"),
    );
    let reload = format!("nginx -t -q {nginx_args} && nginx {nginx_args} -s reload");
    let watcher = Server::start(
        "gitca deploy crl --watch",
        &mut deploy(&[
            "--watch",
            &format!("{}s", WATCH.as_secs()),
            "--reload",
            &reload,
        ]),
        &tmp.join("deploy-crl.log"),
    );

    // alice's and bob's machines: `gitca bundle`.
    let bundle = |name: &str| {
        let dir = tmp.join(format!("{name}-certs"));
        ok(run(gitca()
            .arg("-C")
            .arg(clone(&format!("{name}-checkout")))
            .args(["bundle", name, "--key"])
            .arg(ca.keys.join(format!("{name}.key")))
            .arg("--out-dir")
            .arg(&dir)
            .arg("--server-ca")
            .arg(&server_ca)));
        dir
    };
    let (alice, bob) = (bundle("alice"), bundle("bob"));
    let url = format!("https://127.0.0.1:{p_nginx}/v2/");
    assert_eq!(status(&alice, &url), 200, "alice gets in");
    assert_eq!(status(&bob, &url), 200, "bob gets in");

    // alice leaves: the pull request deleting her entry is merged (pushed to main).
    git(&dev, &["pull", "-q", "origin", "main"]);
    offboard_at(&dev, "alice");
    git(&dev, &["add", "-A"]);
    git(&dev, &["commit", "-q", "-m", "offboard alice"]);
    let t0 = Instant::now();
    git(&dev, &["push", "-q", "origin", "main"]);
    let pushed = t0.elapsed();
    let (reconciled, published) = ci(2);
    let ci_time = t0.elapsed();
    let mut refused = None;
    while t0.elapsed() < ci_time + WATCH * 3 + SLACK * 2 {
        if status(&alice, &url) == 400 {
            refused = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The watcher writes its line after the reload returns: nginx may refuse first.
    let logged = Instant::now();
    while !watcher.output().contains("installed CRL") && logged.elapsed() < SLACK {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = watcher.output();
    let Some(revoked) = refused else {
        panic!(
            "alice was not refused {:.1} s after the push; deploy crl --watch:\n{log}",
            t0.elapsed().as_secs_f64()
        );
    };
    let report = format!(
        "time to revoke: {:.1} s (git push {:.2} s; reconcile job: clone + step {:.2} s; \
         publish job: pull + step {:.2} s; then {:.2} s until nginx refused alice: \
         deploy crl --watch {}s polling, nginx -t, reload)\n",
        revoked.as_secs_f64(),
        pushed.as_secs_f64(),
        reconciled.as_secs_f64(),
        (published - reconciled).as_secs_f64(),
        (revoked - ci_time).as_secs_f64(),
        WATCH.as_secs()
    );
    eprint!("{report}");
    let target = assert_cmd::cargo::cargo_bin("gitca")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::write(target.join("time-to-revoke.txt"), &report).unwrap();

    assert!(log.contains("installed CRL"), "deploy crl --watch:\n{log}");
    assert_eq!(status(&bob, &url), 200, "bob still gets in");
    let error_log = std::fs::read_to_string(prefix.join("logs/error.log")).unwrap();
    assert!(
        error_log.contains("(23:certificate revoked)"),
        "nginx says why: {error_log}"
    );
    let bound = ci_time + WATCH.mul_f64(1.1) + SLACK;
    assert!(
        revoked <= bound,
        "time to revoke {:.1} s exceeds the watch interval ({} s ±10%) + the CI's {:.1} s + {:.1} s slack\n{report}deploy crl --watch:\n{log}",
        revoked.as_secs_f64(),
        WATCH.as_secs(),
        ci_time.as_secs_f64(),
        SLACK.as_secs_f64()
    );
    drop(watcher);
    drop(nginx);
    drop(registry);
}

/// `gitca deploy crl --from DIR --watch` follows DIR when a new published tree replaces the
/// old one by an atomic swap (a symlink flipped to a freshly written directory, as static web
/// roots are deployed): every poll opens DIR anew, never keeps reading the directory it opened
/// at start (which reported "CRL #2 installed; nothing new" forever).
#[test]
fn deploy_crl_watch_follows_a_published_tree_swapped_in_atomically() {
    let ca = Ca::new();
    let tmp = ca.tmp.path().to_path_buf();
    let now = now_rfc3339;
    ok(run(ca
        .cmd(&now())
        .args(["request", "alice", "--key-out"])
        .arg(ca.keys.join("alice.key"))));
    ca.commit("onboard alice");
    ok(ca.reconcile(&now()));
    let (tree_a, tree_b) = (tmp.join("tree-a"), tmp.join("tree-b"));
    ok(run(ca.cmd(&now()).arg("publish").arg(&tree_a)));
    let live = tmp.join("live");
    std::os::unix::fs::symlink(&tree_a, &live).unwrap();
    let pinned = tmp.join("pinned.crt");
    std::fs::copy(ca.path("ca/ca.crt"), &pinned).unwrap();
    let out = tmp.join("crl.pem");
    let watcher = Server::start(
        "gitca deploy crl --watch",
        gitca()
            .args(["deploy", "crl", "--from"])
            .arg(&live)
            .arg("--ca")
            .arg(&pinned)
            .arg("--out")
            .arg(&out)
            .args(["--watch", "1s"]),
        &tmp.join("watch.log"),
    );
    let wait_for = |needle: &str| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if watcher.output().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    assert!(wait_for("installed CRL #2"), "{}", watcher.output());

    // alice leaves; the new tree is written next to the live one and swapped in.
    offboard_at(&ca.root, "alice");
    ca.commit("offboard alice");
    ok(ca.reconcile(&now()));
    ok(run(ca.cmd(&now()).arg("publish").arg(&tree_b)));
    let next = tmp.join("live.next");
    std::os::unix::fs::symlink(&tree_b, &next).unwrap();
    std::fs::rename(&next, &live).unwrap();
    // A one-shot run sees it...
    let o = ok(run(gitca()
        .args(["deploy", "crl", "--from"])
        .arg(&live)
        .arg("--ca")
        .arg(&pinned)
        .arg("--out")
        .arg(tmp.join("one-shot.pem"))));
    assert!(stdout(&o).contains("installed CRL #3"), "{}", stdout(&o));
    // ...and so must the watcher.
    assert!(
        wait_for("installed CRL #3"),
        "the watcher never saw the swapped-in tree:\n{}",
        watcher.output()
    );
}
