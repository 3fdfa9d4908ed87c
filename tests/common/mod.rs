//! Shared helpers for the integration tests: a real CA repository in a temporary directory,
//! driven through the real `gitca` binary, checked with real `openssl`, `age` and `git`.
//!
//! A missing external tool fails the test (never skips it): CI installs them in `.ci/run`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;

pub mod ci;
pub mod daemons;
pub mod github;
pub mod hsm;

pub const T0: &str = "2026-01-01T00:00:00Z";

/// Fails the test when `tool` is not installed.
pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: run the test suite through .ci/run (it installs openssl, age, nginx, docker-registry, gnutls-bin, openssh-client)"
    );
}

/// The gitca binary with a clean environment: no GITCA_* from the caller, no git identity.
pub fn gitca() -> Command {
    let mut c = Command::cargo_bin("gitca").expect("binary built");
    for (k, _) in std::env::vars() {
        if k.starts_with("GITCA_") || k.starts_with("GIT_") {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1");
    // libgit2 reads ~/.gitconfig: an empty home makes "no git identity" the test default.
    c.env("HOME", empty_home());
    c.env("GIT_CONFIG_NOSYSTEM", "1");
    c.env("GIT_CONFIG_GLOBAL", "/dev/null");
    c
}

/// An empty directory used as HOME, so no developer configuration leaks into a test.
pub fn empty_home() -> PathBuf {
    let home = std::env::temp_dir().join(format!("gitca-test-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    home
}

/// `t` in RFC 3339, to the whole second.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The real clock in RFC 3339, to the whole second: for tests whose servers (nginx, openssl,
/// certtool) check dates against their own clock.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// Seconds since the epoch of an RFC 3339 time, for `openssl verify -attime`.
pub fn epoch(t: &str) -> String {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
        .to_string()
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("command runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[track_caller]
pub fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "command failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

#[track_caller]
pub fn fails(o: Output) -> Output {
    assert_eq!(
        o.status.code(),
        Some(1),
        "command should exit 1:\nstdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

pub fn tool(name: &str, args: &[&str], dir: &Path) -> Output {
    require(name);
    Command::new(name)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("tool runs")
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let o = ok(tool(
        "git",
        &[
            &["-c", "user.name=Test", "-c", "user.email=test@example.com"],
            args,
        ]
        .concat(),
        dir,
    ));
    stdout(&o)
}

/// An age X25519 identity made by the real `age-keygen`; returns (identity file, recipient).
pub fn age_identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{name}.agekey"));
    ok(tool("age-keygen", &["-o", path.to_str().unwrap()], dir));
    let r = stdout(&ok(tool(
        "age-keygen",
        &["-y", path.to_str().unwrap()],
        dir,
    )));
    (path, r.trim().to_string())
}

/// A CA repository under a temporary directory, with its age identity.
pub struct Ca {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub identity: PathBuf,
    pub recipient: String,
    pub keys: PathBuf,
    /// The CA certificate came from elsewhere (import-openssl): pkilint lints only what gitca
    /// made, so it is left out of the artifacts.
    pub foreign_ca: bool,
}

impl Ca {
    pub fn new() -> Ca {
        Ca::with_key_type("p256")
    }

    /// A CA that issued to each of `names` at T0 (P-256 CSRs made by openssl, one identities
    /// file, one commit, one reconcile).
    pub fn issued_to(names: &[&str]) -> Ca {
        let ca = Ca::new();
        let mut yaml = String::from("users:\n");
        for n in names {
            ca.p256_csr(n);
            yaml += &format!("  - name: {n}\n");
        }
        ca.identities(&yaml);
        ca.commit("the first identities");
        ok(ca.reconcile(T0));
        ca
    }

    /// A CA repository made some other way (import-openssl) at `root` inside `tmp`.
    pub fn at(tmp: tempfile::TempDir, root: PathBuf, identity: PathBuf, recipient: String) -> Ca {
        let keys = tmp.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        Ca {
            tmp,
            root,
            identity,
            recipient,
            keys,
            foreign_ca: false,
        }
    }

    /// A CA repository adopted with import-openssl at `root`: its CA certificate is openssl's.
    pub fn imported(
        tmp: tempfile::TempDir,
        root: PathBuf,
        identity: PathBuf,
        recipient: String,
    ) -> Ca {
        let mut ca = Ca::at(tmp, root, identity, recipient);
        ca.foreign_ca = true;
        ca
    }

    pub fn with_key_type(key_type: &str) -> Ca {
        let tmp = tempfile::tempdir().unwrap();
        let (identity, recipient) = age_identity(tmp.path(), "custodian");
        let root = tmp.path().join("ca");
        ok(run(gitca().args([
            "init",
            "-C",
            root.to_str().unwrap(),
            "--name",
            "Test Registry CA",
            "--organization",
            "Acme",
            "--key-type",
            key_type,
            "--recipient",
            &recipient,
            "--now",
            T0,
        ])));
        Ca::at(tmp, root, identity, recipient)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// `openssl verify -crl_check_all` of a chain file (leaf, then intermediate) against the
    /// root of an offline-root CA and every CRL, at `at`.
    pub fn verify_chain(&self, chain: &Path, at: &str) -> Output {
        verify_chain_at(&self.root, chain, at)
    }

    /// gitca with `-C` this repository and `--now`.
    pub fn cmd(&self, now: &str) -> Command {
        let mut c = gitca();
        c.arg("-C").arg(&self.root).arg("--now").arg(now);
        c
    }

    pub fn reconcile(&self, now: &str) -> Output {
        let mut c = self.cmd(now);
        c.arg("reconcile").arg("--identity").arg(&self.identity);
        run(&mut c)
    }

    /// A key and CSR made with the real `openssl req`; `spec` is an `openssl req -newkey`
    /// argument such as `ec -pkeyopt ec_paramgen_curve:P-256` or `rsa:2048`.
    pub fn openssl_csr(&self, name: &str, cn: &str, spec: &[&str], extra: &[&str]) -> PathBuf {
        let key = self.keys.join(format!("{name}.key"));
        let csr = self.path(&format!("csr/{name}.csr"));
        std::fs::create_dir_all(csr.parent().unwrap()).unwrap();
        let mut args = vec!["req", "-new", "-nodes", "-newkey"];
        args.extend(spec);
        args.extend([
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
            "-subj",
        ]);
        let subj = format!("/CN={cn}");
        args.push(&subj);
        args.extend(extra);
        ok(tool("openssl", &args, &self.root));
        key
    }

    pub fn p256_csr(&self, name: &str) -> PathBuf {
        self.openssl_csr(
            name,
            name,
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            &[],
        )
    }

    pub fn identities(&self, yaml: &str) {
        self.write("identities/people.yaml", yaml);
    }

    /// The identities file declaring `name`: its own (`gitca request` writes
    /// identities/NAME.yaml), else identities/people.yaml.
    pub fn declaration(&self, name: &str) -> String {
        let own = format!("identities/{name}.yaml");
        if self.path(&own).exists() {
            own
        } else {
            "identities/people.yaml".into()
        }
    }

    /// Offboarding: `name`'s entry leaves its identities file (its own file is removed).
    pub fn offboard(&self, name: &str) {
        offboard_at(&self.root, name);
    }

    /// Runs a shell command in the repository, as a person following a hint would: gitca on
    /// PATH, at T0, with a private HOME and no git configuration. It must succeed.
    pub fn sh(&self, cmd: &str) {
        let gitca = assert_cmd::cargo::cargo_bin("gitca");
        let path = format!(
            "{}:{}",
            gitca.parent().unwrap().display(),
            std::env::var("PATH").unwrap()
        );
        ok(Command::new("bash")
            .arg("-c")
            .arg(cmd)
            .current_dir(&self.root)
            .env("PATH", path)
            .env("GITCA_NOW", T0)
            .env("HOME", empty_home())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap());
    }

    pub fn commit(&self, msg: &str) {
        git(&self.root, &["add", "-A"]);
        git(&self.root, &["commit", "-q", "--allow-empty", "-m", msg]);
    }

    /// `git commit -S` (gpg.format=ssh) of the whole working tree with the SSH key `key`: what
    /// a signer does by hand.
    pub fn signed_commit(&self, key: &Path, msg: &str) {
        git(&self.root, &["add", "-A"]);
        git(
            &self.root,
            &[
                "-c",
                "gpg.format=ssh",
                "-c",
                &format!("user.signingkey={}", key.display()),
                "commit",
                "-q",
                "-S",
                "-m",
                msg,
            ],
        );
    }

    /// Signed history declared: an SSH key `ci-signer` made in `dir`, listed in
    /// ca/allowed_signers as principal `gitca-ci` and committed ("history signers") signed by
    /// itself, as a signer adds it. Returns the key's path and its public line.
    pub fn sign_history(&self, dir: &Path) -> (PathBuf, String) {
        let (key, public) = ssh_key(dir, "ci-signer");
        self.write("ca/allowed_signers", &format!("gitca-ci {public}\n"));
        self.signed_commit(&key, "history signers");
        (key, public)
    }

    pub fn head(&self) -> String {
        git(&self.root, &["rev-parse", "HEAD"]).trim().to_string()
    }

    pub fn status(&self) -> String {
        git(&self.root, &["status", "--porcelain"])
    }

    pub fn openssl(&self, args: &[&str]) -> Output {
        tool("openssl", args, &self.root)
    }

    /// `openssl verify -crl_check` of a certificate file against the CA and current CRL, at
    /// the simulated time `at`.
    pub fn verify_crl(&self, cert: &Path, at: &str) -> Output {
        let at = epoch(at);
        self.openssl(&[
            "verify",
            "-attime",
            &at,
            "-crl_check",
            "-CAfile",
            "ca/ca.crt",
            "-CRLfile",
            "crl/ca.crl",
            cert.to_str().unwrap(),
        ])
    }

    /// The CA key decrypted by the real `age -d` with this repository's identity — what CI
    /// holds, so what a thief of CI's secret or a custodian has — written to `out`.
    pub fn decrypt_ca_key(&self, out: &Path) {
        ok(tool(
            "age",
            &[
                "-d",
                "-i",
                self.identity.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "ca/ca.key.age",
            ],
            &self.root,
        ));
    }

    /// The ledger's rows, as field vectors.
    pub fn ledger_rows(&self) -> Vec<Vec<String>> {
        self.read("ledger.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("serial\t"))
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// Copies a file of the repository out, so it survives later changes.
    pub fn keep(&self, rel: &str, as_name: &str) -> PathBuf {
        let to = self.tmp.path().join(as_name);
        std::fs::copy(self.path(rel), &to).unwrap();
        to
    }

    /// A snapshot of every file in the working tree (except .git), to prove "nothing changed".
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.file_name().unwrap() == ".git" {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((
                        p.strip_prefix(&self.root).unwrap().display().to_string(),
                        std::fs::read(&p).unwrap(),
                    ));
                }
            }
        }
        out.sort();
        out
    }
}

/// A CA with an offline root (`gitca init --offline-root`) at `now`: the returned CA's
/// `identity` is CI's (it reconciles and decrypts only the intermediate's key); the second
/// value is the root custodian's identity (ceremonies).
pub fn offline_root_ca(now: &str) -> (Ca, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (ci, ci_recipient) = age_identity(tmp.path(), "ci");
    let (custodian, custodian_recipient) = age_identity(tmp.path(), "root-custodian");
    let root = tmp.path().join("ca");
    ok(run(gitca().args([
        "init",
        "-C",
        root.to_str().unwrap(),
        "--name",
        "Test Registry CA",
        "--organization",
        "Acme",
        "--offline-root",
        "--recipient",
        &ci_recipient,
        "--root-recipient",
        &custodian_recipient,
        "--now",
        now,
    ])));
    (Ca::at(tmp, root, ci, ci_recipient), custodian)
}

/// With GITCA_ARTIFACTS set (scripts/test.sh sets it), every CA a test made leaves a copy of
/// what gitca issued — CA certificate, CRL, leaf certificates — for scripts/lint-artifacts.py
/// to lint with pkilint after the suite.
impl Drop for Ca {
    fn drop(&mut self) {
        let Some(dir) = std::env::var_os("GITCA_ARTIFACTS") else {
            return;
        };
        let name = self
            .tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let out = Path::new(&dir).join(name.trim_start_matches('.'));
        if std::fs::create_dir_all(&out).is_err() {
            return;
        }
        // libtest names each test's thread after the test: the lint report names it.
        let test = std::thread::current().name().unwrap_or("?").to_string();
        let _ = std::fs::write(out.join("test.txt"), test);
        // Only regular files (a test may have planted links), and only what gitca made.
        let regular = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
        let copy = |from: &str, to: &str| {
            let from = self.path(from);
            if regular(&from) {
                let _ = std::fs::copy(from, out.join(to));
            }
        };
        if !self.foreign_ca {
            copy("ca/ca.crt", "ca.crt");
        }
        copy("crl/ca.crl", "ca.crl");
        // An offline root: the root and its CRL too (the intermediate is linted under it).
        copy("ca/root.crt", "root.crt");
        copy("crl/root.crl", "root.crl");
        // An adopted CA's imported certificates are openssl's, not gitca's: the serials of the
        // import commit's ledger are left out.
        let imported: Vec<String> = if self.foreign_ca {
            imported_serials(&self.root)
        } else {
            Vec::new()
        };
        let foreign = |der: &[u8]| {
            x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| {
                let serial = c.raw_serial_as_string().replace(':', "");
                let serial = serial.trim_start_matches('0').to_ascii_lowercase();
                imported.contains(&serial)
            })
        };
        // Each leaf with the issuer its file carries (after a rotation, a retiring
        // intermediate's leaves are not under ca/ca.crt; a test may forge ca/ca.crt).
        if let Ok(entries) = std::fs::read_dir(self.path("certs")) {
            for e in entries.flatten() {
                if !regular(&e.path()) {
                    continue;
                }
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let chain = pem::parse_many(&text).unwrap_or_default();
                let stem = e.path().file_stem().unwrap().to_string_lossy().to_string();
                if chain.first().is_some_and(|l| foreign(l.contents())) {
                    continue;
                }
                if let Some(leaf) = chain.first() {
                    let _ = std::fs::write(out.join(format!("leaf-{stem}.pem")), pem::encode(leaf));
                }
                if let Some(issuer) = chain.get(1) {
                    let _ =
                        std::fs::write(out.join(format!("issuer-{stem}.pem")), pem::encode(issuer));
                }
            }
        }
    }
}

/// Serials (lower-case hex, no leading zeros) in the first version of ledger.tsv that git
/// history holds: for an adopted CA, the certificates openssl issued before the import.
fn imported_serials(root: &Path) -> Vec<String> {
    let first = Command::new("git")
        .args(["log", "--reverse", "--format=%H", "--", "ledger.tsv"])
        .current_dir(root)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string));
    let Some(commit) = first else {
        return Vec::new();
    };
    let ledger = Command::new("git")
        .args(["show", &format!("{commit}:ledger.tsv")])
        .current_dir(root)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    ledger
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(|s| s.trim_start_matches('0').to_ascii_lowercase())
        .collect()
}

/// The commands a diagnostic suggests in parentheses or backticks: `(git … )`, `` `gitca …` ``,
/// `openssl …`.
pub fn suggested(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (open, close) in [("(", ')'), ("`", '`'), (": ", '\n')] {
        for part in text.split(open).skip(1) {
            if let Some(cmd) = part.split(close).next() {
                let cmd = cmd.trim();
                if cmd.starts_with(prefix) && !out.iter().any(|c| c == cmd) {
                    out.push(cmd.to_string());
                }
            }
        }
    }
    out
}

/// A TCP port free on 127.0.0.1 right now (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The identities file without `name`'s entry (offboarding is deleting it).
pub fn without_entry(yaml: &str, name: &str) -> String {
    let mut out = Vec::new();
    let mut skip = false;
    for l in yaml.lines() {
        if l.split('#').next().unwrap().trim() == format!("- name: {name}") {
            skip = true;
            continue;
        }
        if skip && l.starts_with("    ") {
            continue;
        }
        skip = false;
        out.push(l);
    }
    out.join("\n") + "\n"
}

/// Offboarding: deletes `name`'s entry from whichever identities file declares it (the whole
/// file when nothing else is declared in it, as for a per-identity file).
pub fn offboard_at(root: &Path, name: &str) {
    let declares = |text: &str, who: &str| {
        text.lines().any(|l| {
            let l = l.split('#').next().unwrap().trim();
            l.strip_prefix("- name:").map(str::trim) == Some(who)
        })
    };
    let mut found = false;
    for e in std::fs::read_dir(root.join("identities")).unwrap() {
        let path = e.unwrap().path();
        if !matches!(
            path.extension().and_then(|x| x.to_str()),
            Some("yaml" | "yml")
        ) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if !declares(&text, name) {
            continue;
        }
        found = true;
        let rest = without_entry(&text, name);
        let others = rest
            .lines()
            .any(|l| l.split('#').next().unwrap().trim().starts_with("- name:"));
        if others {
            std::fs::write(&path, rest).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    assert!(found, "no identities file declares {name}");
    let all: String = std::fs::read_dir(root.join("identities"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(!declares(&all, name), "{name} is still declared:\n{all}");
}

/// Advances an RFC 3339 time by whole days.
pub fn days_after(t: &str, days: i64) -> String {
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
    (t + time::Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// How a hand-made CSR is signed by the real `openssl`.
pub enum HandSig {
    /// sha256WithRSAEncryption (`openssl dgst -sha256 -sign`).
    RsaSha256,
    /// ecdsa-with-SHA256.
    EcdsaSha256,
    /// Ed25519 (`openssl pkeyutl -sign -rawin`).
    Ed25519,
}

/// A PKCS#10 CSR built byte by byte around `spki` (any encoding a hostile author chooses),
/// with subject CN=`cn`, signed by the real `openssl` with `key`: proof of possession holds.
pub fn hand_csr(dir: &Path, cn: &str, spki: &[u8], key: &Path, sig: HandSig) -> String {
    let name = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_set(|w| {
                w.next().write_sequence(|w| {
                    w.next()
                        .write_oid(&yasna::models::ObjectIdentifier::from_slice(&[2, 5, 4, 3]));
                    w.next().write_utf8_string(cn);
                })
            })
        })
    });
    // The CertificationRequestInfo, with the SPKI copied verbatim.
    let mut cri_body = yasna::construct_der(|w| w.write_u8(0));
    cri_body.extend_from_slice(&name);
    cri_body.extend_from_slice(spki);
    cri_body.extend_from_slice(&[0xa0, 0x00]);
    let cri = der_wrap(0x30, &cri_body);
    // Scratch files named after the CN's digest: a hostile CN may hold any character.
    let stem = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(cn.as_bytes())[..8]);
    let cri_file = dir.join(format!("{stem}.cri.der"));
    let sig_file = dir.join(format!("{stem}.sig"));
    std::fs::write(&cri_file, &cri).unwrap();
    let (k, c, s) = (
        key.to_str().unwrap(),
        cri_file.to_str().unwrap(),
        sig_file.to_str().unwrap(),
    );
    let (args, alg): (Vec<&str>, Vec<u8>) = match sig {
        HandSig::RsaSha256 => (
            vec!["dgst", "-sha256", "-sign", k, "-out", s, c],
            vec![
                0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
                0x00,
            ],
        ),
        HandSig::EcdsaSha256 => (
            vec!["dgst", "-sha256", "-sign", k, "-out", s, c],
            vec![
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
            ],
        ),
        HandSig::Ed25519 => (
            vec![
                "pkeyutl", "-sign", "-rawin", "-inkey", k, "-in", c, "-out", s,
            ],
            vec![0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70],
        ),
    };
    ok(tool("openssl", &args, dir));
    let signature = std::fs::read(&sig_file).unwrap();
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut body = cri;
    body.extend_from_slice(&alg);
    body.extend_from_slice(&der_wrap(0x03, &bits));
    pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der_wrap(0x30, &body)))
}

/// A DER TLV with a minimal length.
pub fn der_wrap(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The serial of the certificate file `cert` (a full path), as `openssl x509 -serial` prints
/// it, in lowercase hex: the form of the ledger and of `gitca audit --json`.
pub fn serial_of(cert: &Path) -> String {
    let o = ok(tool(
        "openssl",
        &["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"],
        cert.parent().unwrap(),
    ));
    stdout(&o)
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

/// The DER SubjectPublicKeyInfo of a key file, from the real `openssl pkey -pubout`.
pub fn spki_of(key: &Path) -> Vec<u8> {
    let o = ok(tool(
        "openssl",
        &[
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-pubout",
            "-outform",
            "DER",
        ],
        key.parent().unwrap(),
    ));
    o.stdout
}

/// An unencrypted OpenSSH ed25519 key made by ssh-keygen in `dir`: its path and public line.
pub fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    ok(tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            name,
            "-f",
            key.to_str().unwrap(),
        ],
        dir,
    ));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// Every CRL a server of the offline-root CA at `root` needs (as `gitca deploy crl` installs
/// them: the root's, the issuing intermediate's and a retiring one's), in one file beside it.
pub fn all_crls(root: &Path) -> PathBuf {
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap_or_default();
    let f = root.with_file_name("all-crls.pem");
    std::fs::write(
        &f,
        read("crl/root.crl") + &read("crl/ca.crl") + &read("crl/previous.crl"),
    )
    .unwrap();
    f
}

/// `openssl verify -crl_check_all` of a chain file (leaf, then intermediate) under the root
/// of the CA repository `root` and every CRL, at `at`.
pub fn verify_chain_at(root: &Path, chain: &Path, at: &str) -> Output {
    let crls = all_crls(root);
    let (chain, crls) = (chain.to_str().unwrap(), crls.to_str().unwrap());
    let args = [
        "verify",
        "-attime",
        &epoch(at),
        "-crl_check_all",
        "-CAfile",
        "ca/root.crt",
    ];
    tool(
        "openssl",
        &[&args[..], &["-untrusted", chain, "-CRLfile", crls, chain]].concat(),
        root,
    )
}

/// `csr_pem` with the last byte of its signature flipped: the CSR parses, its key and CN are
/// intact, and its proof of possession fails.
pub fn with_broken_signature(csr_pem: &str) -> String {
    let block = pem::parse(csr_pem).unwrap();
    let mut der = block.contents().to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der))
}
