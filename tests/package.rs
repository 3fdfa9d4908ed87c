//! Issue 16, "installable where it runs": scripts/build-deb.sh builds a Debian package; the real
//! `dpkg -i` installs it (into a private root, so the machine's own /usr stays untouched), the
//! installed binary runs, `systemd-analyze verify` accepts the installed units with their manual
//! pages, and the shipped environment file, expanded the way systemd expands ExecStart, makes a
//! command line that installs a CRL.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const UNITS: [&str; 4] = [
    "gitca-deploy-crl.service",
    "gitca-deploy-crl.timer",
    "gitca-deploy-cert@ci-builder.service",
    "gitca-deploy-cert@ci-builder.timer",
];

struct Package {
    _tmp: tempfile::TempDir,
    deb: PathBuf,
    sha256: String,
}

fn build() -> Package {
    for t in [
        "dpkg-deb",
        "dpkg",
        "strip",
        "systemd-analyze",
        "man",
        "bash",
    ] {
        require(t);
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = ok(Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-deb.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_gitca"), "--out"])
        .arg(&out)
        .output()
        .unwrap());
    let text = stdout(&o);
    let mut lines = text.lines();
    let deb = PathBuf::from(lines.next().unwrap());
    let sha256 = lines.next().unwrap().to_string();
    assert!(deb.is_file(), "{text}");
    Package {
        _tmp: tmp,
        deb,
        sha256,
    }
}

/// A root for `dpkg --root`: a package database holding only what gitca depends on (copied
/// from this machine's), and systemd's own target units for `systemd-analyze --root`.
fn private_root(dir: &Path, depends: &[String]) -> PathBuf {
    let root = dir.join("root");
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "usr/lib/systemd/system",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let status = ok(Command::new("dpkg-query")
        .arg("-s")
        .args(depends)
        .output()
        .unwrap());
    std::fs::write(root.join("var/lib/dpkg/status"), &status.stdout).unwrap();
    for entry in std::fs::read_dir("/lib/systemd/system").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if (name.ends_with(".target") || name.ends_with(".slice")) && path.is_file() {
            std::fs::copy(&path, root.join("usr/lib/systemd/system").join(&name)).unwrap();
        }
    }
    root
}

fn dpkg(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .arg("--force-script-chrootless")
        .args(args)
        .output()
        .unwrap()
}

fn verify_units(root: &Path, units: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args(units)
        .env("MANPATH", root.join("usr/share/man"))
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap()
}

#[test]
fn the_debian_package_installs_with_dpkg_and_its_units_verify() {
    let pkg = build();
    let version = env!("CARGO_PKG_VERSION");
    assert!(pkg
        .deb
        .ends_with(format!("gitca_{version}_{}.deb", arch().trim())));
    let sha = ok(Command::new("sha256sum").arg(&pkg.deb).output().unwrap());
    assert!(stdout(&sha).starts_with(&pkg.sha256), "printed SHA-256");

    let control = stdout(&ok(Command::new("dpkg-deb")
        .args(["--field"])
        .arg(&pkg.deb)
        .output()
        .unwrap()));
    assert!(
        control.contains(&format!("Version: {version}")),
        "{control}"
    );
    let depends_line = control
        .lines()
        .find(|l| l.starts_with("Depends: "))
        .unwrap_or_else(|| panic!("no Depends: {control}"));
    assert!(
        depends_line.contains("libc6 (>="),
        "shlibdeps: {depends_line}"
    );
    let depends: Vec<String> = depends_line["Depends: ".len()..]
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap().to_string())
        .collect();

    let contents = stdout(&ok(Command::new("dpkg-deb")
        .arg("--contents")
        .arg(&pkg.deb)
        .output()
        .unwrap()));
    for f in [
        "./usr/bin/gitca",
        "./usr/share/man/man1/gitca.1.gz",
        "./usr/share/man/man1/gitca-reconcile.1.gz",
        "./usr/share/man/man1/gitca-deploy-crl.1.gz",
        "./usr/share/man/man1/gitca-deploy-cert.1.gz",
        "./usr/share/bash-completion/completions/gitca",
        "./lib/systemd/system/gitca-deploy-crl.service",
        "./lib/systemd/system/gitca-deploy-admission.timer",
        "./usr/share/man/man1/gitca-deploy-admission.1.gz",
        "./usr/share/doc/gitca/examples/deploy-admission.env",
        "./lib/systemd/system/gitca-deploy-cert@.timer",
        "./usr/share/doc/gitca/copyright",
        "./usr/share/doc/gitca/examples/deploy-crl.env",
    ] {
        assert!(contents.contains(f), "{f} missing from:\n{contents}");
    }
    assert!(
        !contents.contains("gitca-man.1"),
        "the packagers' command has no page"
    );

    // The real dpkg -i, into a private root.
    let tmp = tempfile::tempdir().unwrap();
    let root = private_root(tmp.path(), &depends);
    ok(dpkg(&root, &["-i", pkg.deb.to_str().unwrap()]));
    let status = stdout(&ok(dpkg(&root, &["-s", "gitca"])));
    assert!(status.contains("Status: install ok installed"), "{status}");
    let v = ok(Command::new(root.join("usr/bin/gitca"))
        .arg("--version")
        .output()
        .unwrap());
    assert_eq!(stdout(&v).trim(), format!("gitca {version}"));
    let page = ok(Command::new("man")
        .arg("-l")
        .arg(root.join("usr/share/man/man1/gitca-deploy-crl.1.gz"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap());
    assert!(
        stdout(&page).contains("--stale-margin"),
        "{}",
        stdout(&page)
    );
    let completion = ok(Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; complete -p gitca",
            root.join("usr/share/bash-completion/completions/gitca")
                .display()
        ))
        .output()
        .unwrap());
    assert!(stdout(&completion).contains("gitca"));

    // systemd-analyze verify: unit syntax, the ExecStart binary, every Documentation= page.
    let o = verify_units(&root, &UNITS);
    assert!(
        o.status.success() && stderr(&o).trim().is_empty(),
        "systemd-analyze verify: {}",
        stderr(&o)
    );
    // The same check fails on a unit whose command is missing (it is not vacuous), and on the
    // real units when their manual pages cannot be found.
    let units = root.join("lib/systemd/system");
    let unit = std::fs::read_to_string(units.join("gitca-deploy-crl.service")).unwrap();
    std::fs::write(
        units.join("gitca-broken.service"),
        unit.replace("/usr/bin/gitca ", "/usr/bin/gitca-missing "),
    )
    .unwrap();
    let o = verify_units(&root, &["gitca-broken.service"]);
    assert!(
        !o.status.success() && stderr(&o).contains("gitca-missing"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(units.join("gitca-broken.service")).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg(UNITS[0])
        .env("MANPATH", tmp.path())
        .output()
        .unwrap();
    assert!(!o.status.success(), "man pages are checked");

    // dpkg -r takes it all away again.
    ok(dpkg(&root, &["-r", "gitca"]));
    assert!(!root.join("usr/bin/gitca").exists());
    assert!(!units.join("gitca-deploy-crl.service").exists());
}

fn arch() -> String {
    stdout(&ok(Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .unwrap()))
}

/// The values of a systemd EnvironmentFile (KEY=VALUE lines, `#` comments).
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// ExecStart expanded as systemd does: `${VAR}` becomes exactly one argument, `$VAR` is split
/// on whitespace (and vanishes when empty); `%i` is the instance.
fn exec_start(unit: &str, env: &[(String, String)], instance: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut argv = Vec::new();
    for word in line.split_whitespace() {
        if let Some(var) = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
            argv.push(get(var));
        } else if let Some(var) = word.strip_prefix('$') {
            argv.extend(get(var).split_whitespace().map(str::to_string));
        } else {
            argv.push(word.replace("%i", instance));
        }
    }
    argv
}

/// The shipped deploy-crl.env, with its paths pointed at a temporary directory, drives the
/// shipped unit's command line to a real install and reload; blank GITCA_RELOAD runs nothing.
#[test]
fn the_shipped_unit_and_environment_file_install_a_crl() {
    let ca = Ca::new();
    ok(ca.reconcile(T0));
    let tmp = tempfile::tempdir().unwrap();
    let public = tmp.path().join("public");
    ok(run(ca.cmd(T0).args(["publish"]).arg(&public)));
    let systemd = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd");
    let unit = std::fs::read_to_string(systemd.join("gitca-deploy-crl.service")).unwrap();
    let shipped = env_file(&std::fs::read_to_string(systemd.join("deploy-crl.env")).unwrap());
    let names: Vec<&str> = shipped.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "GITCA_FROM",
            "GITCA_CA",
            "GITCA_CRL",
            "GITCA_RELOAD",
            "GITCA_OPTIONS"
        ]
    );
    let marker = tmp.path().join("reloaded");
    let metrics = tmp.path().join("gitca-crl.prom");
    let env: Vec<(String, String)> = shipped
        .into_iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "GITCA_FROM" => public.display().to_string(),
                "GITCA_CA" => ca.path("ca/ca.crt").display().to_string(),
                "GITCA_CRL" => tmp.path().join("ca.crl").display().to_string(),
                "GITCA_RELOAD" => format!(
                    "test -s {} && touch {}",
                    tmp.path().join("ca.crl").display(),
                    marker.display()
                ),
                _ => v.replace(
                    "/var/lib/prometheus/node-exporter/gitca-crl.prom",
                    &metrics.display().to_string(),
                ),
            };
            (k, v)
        })
        .collect();
    let argv = exec_start(&unit, &env, "");
    assert_eq!(argv[0], "/usr/bin/gitca");
    let o = ok(run(gitca().args(&argv[1..]).env("GITCA_NOW", T0)));
    assert!(tmp.path().join("ca.crl").is_file(), "{}", stdout(&o));
    assert!(marker.is_file(), "the reload hook ran");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("gitca_crl_next_update_timestamp_seconds"),
        "{prom}"
    );

    // A blank GITCA_RELOAD is one empty argument, which runs nothing.
    std::fs::remove_file(&marker).unwrap();
    let blank: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| match k.as_str() {
            "GITCA_RELOAD" => (k.clone(), String::new()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let argv = exec_start(&unit, &blank, "");
    assert!(argv.iter().any(|a| a.is_empty()));
    std::fs::remove_file(tmp.path().join("ca.crl")).unwrap();
    ok(run(gitca().args(&argv[1..]).env("GITCA_NOW", T0)));
    assert!(tmp.path().join("ca.crl").is_file());
    assert!(!marker.exists());
}

/// The shipped deploy-admission.env drives the shipped unit's command line to a real install
/// of a signed admission list and a reload.
#[test]
fn the_shipped_admission_unit_and_environment_file_install_a_map() {
    let ca = Ca::new();
    let tmp = tempfile::tempdir().unwrap();
    let (signing, _) = ca.sign_history(tmp.path());
    let signing_text = std::fs::read_to_string(&signing).unwrap();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n    csr: csr/alice.csr\n");
    ca.commit("onboard alice");
    for cmd in [
        &["reconcile", "--identity", ca.identity.to_str().unwrap()][..],
        &["publish", tmp.path().join("public").to_str().unwrap()],
    ] {
        ok(run(ca
            .cmd(T0)
            .args(cmd)
            .env("GITCA_SIGNING_KEY", &signing_text)));
    }
    let systemd = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd");
    let unit = std::fs::read_to_string(systemd.join("gitca-deploy-admission.service")).unwrap();
    let shipped = env_file(&std::fs::read_to_string(systemd.join("deploy-admission.env")).unwrap());
    let names: Vec<&str> = shipped.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "GITCA_FROM",
            "GITCA_SIGNERS",
            "GITCA_MAP",
            "GITCA_RELOAD",
            "GITCA_OPTIONS"
        ]
    );
    let map = tmp.path().join("admitted.map");
    let marker = tmp.path().join("reloaded");
    let metrics = tmp.path().join("gitca-admission.prom");
    let env: Vec<(String, String)> = shipped
        .into_iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "GITCA_FROM" => tmp.path().join("public").display().to_string(),
                "GITCA_SIGNERS" => ca.path("ca/allowed_signers").display().to_string(),
                "GITCA_MAP" => map.display().to_string(),
                "GITCA_RELOAD" => format!(
                    "test -s \"$GITCA_ADMISSION_FILE\" && touch {}",
                    marker.display()
                ),
                _ => v.replace(
                    "/var/lib/prometheus/node-exporter/gitca-admission.prom",
                    &metrics.display().to_string(),
                ),
            };
            (k, v)
        })
        .collect();
    let argv = exec_start(&unit, &env, "");
    assert_eq!(argv[0], "/usr/bin/gitca");
    let o = ok(run(gitca().args(&argv[1..]).env("GITCA_NOW", T0)));
    assert!(stdout(&o).contains("1 certificate(s)"), "{}", stdout(&o));
    assert!(map.is_file() && marker.is_file(), "installed and reloaded");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(prom.contains("gitca_admission_sequence{"), "{prom}");
}

fn yaml(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Runs a CI shell block with a PATH that has no gitca on it.
fn ci_block(script: &str, env: &[(&str, &str)]) -> std::process::Output {
    let path: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .filter(|d| !d.join("gitca").exists())
        .collect();
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(script)
        .env("PATH", std::env::join_paths(path).unwrap())
        .env("HOME", empty_home());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Issue 16: the CI examples install the pinned package instead of compiling gitca in every
/// job; a package whose SHA-256 differs from the pinned one is refused before it is unpacked.
#[test]
fn ci_examples_install_the_pinned_package_and_refuse_any_other() {
    let pkg = build();
    let url = format!("file://{}", pkg.deb.display());
    let wrong = "0".repeat(64);
    for wf in [
        "examples/ci/github/pr.yml",
        "examples/ci/github/reconcile.yml",
    ] {
        let doc = yaml(wf);
        for (job, spec) in doc["jobs"].as_object().unwrap() {
            let steps = spec["steps"].as_array().unwrap();
            // Every job that runs gitca installs the pinned package first.
            let runs_gitca = steps.iter().any(|s| {
                s["run"].as_str().is_some_and(|r| {
                    r.lines()
                        .any(|l| l.trim_start().starts_with("gitca ") || l.contains("$(gitca"))
                })
            });
            let Some(step) = steps.iter().find(|s| s["name"] == "Install gitca") else {
                assert!(
                    !runs_gitca,
                    "{wf}: job {job} runs gitca but has no Install gitca step"
                );
                continue;
            };
            assert!(
                !serde_json::to_string(spec)
                    .unwrap()
                    .contains("cargo install"),
                "{wf}: {job} compiles gitca"
            );
            for (sha, good) in [
                (pkg.sha256.as_str(), true),
                (wrong.as_str(), false),
                ("", false),
            ] {
                let tmp = tempfile::tempdir().unwrap();
                let github_path = tmp.path().join("github_path");
                let o = ci_block(
                    &format!(
                        "{}\nexport PATH=\"$(cat \"$GITHUB_PATH\"):$PATH\"\ngitca --version",
                        step["run"].as_str().unwrap()
                    ),
                    &[
                        ("GITCA_DEB_URL", &url),
                        ("GITCA_DEB_SHA256", sha),
                        ("RUNNER_TEMP", tmp.path().to_str().unwrap()),
                        ("GITHUB_PATH", github_path.to_str().unwrap()),
                    ],
                );
                if good {
                    let o = ok(o);
                    assert!(stdout(&o).contains(env!("CARGO_PKG_VERSION")));
                } else {
                    fails(o);
                    assert!(
                        !tmp.path().join("gitca/usr/bin/gitca").exists(),
                        "{wf}/{job}: unpacked a package that does not match"
                    );
                }
            }
        }
    }

    let doc = yaml("examples/ci/gitlab/gitlab-ci.yml");
    let before: Vec<&str> = doc["default"]["before_script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(!before.join("\n").contains("cargo install"));
    let script = format!("set -e\n{}\ncommand -v gitca", before.join("\n"));
    let o = ok(ci_block(
        &script,
        &[("GITCA_DEB_URL", &url), ("GITCA_DEB_SHA256", &pkg.sha256)],
    ));
    assert!(stdout(&o).contains(&format!("gitca {}", env!("CARGO_PKG_VERSION"))));
    assert!(stdout(&o).trim_end().ends_with("/usr/bin/gitca"));
    let o = fails(ci_block(
        &script,
        &[("GITCA_DEB_URL", &url), ("GITCA_DEB_SHA256", &wrong)],
    ));
    assert!(!stdout(&o).contains("/usr/bin/gitca"), "{}", stdout(&o));
}
