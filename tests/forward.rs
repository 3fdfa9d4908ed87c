//! Issue 19, class 3: a relying party's state only moves forward, per issuer, across fetches
//! (invariant 14). A hostile mirror serves `gitca deploy crl` what it likes; whatever it serves,
//! no issuer's installed CRL number goes down, no issuer installed before is dropped (unless the
//! root revoked that intermediate, or it expired), and what is installed never makes nginx
//! refuse everyone. Checked with the real `openssl verify -crl_check_all` on what is installed.
//!
//! The CRLs are made once, by a real gitca CA with an offline root (reconciles and root
//! ceremonies), and replayed: first as the reproductions of the issue, each its own test, then as
//! a state machine that plays seeded sequences of hostile bundles.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;

/// The CRLs and certificates of one offline-root CA's first days:
///
/// - day 0: alice, bob and carol under intermediate 1 (`p0`: root #1, int1 #1)
/// - day 1: bob leaves (`p1`: root #1, int1 #2)
/// - day 2: a root ceremony re-signs the root CRL (`p2`: root #2, int1 #2)
/// - day 3: intermediate 1 is revoked for key compromise, intermediate 2 takes over, alice and
///   carol are re-issued (`p3`: root #3 revoking int1, int2)
/// - day 4: carol leaves (`p4`: root #3, int2 with carol)
struct World {
    /// Keeps the CA's directory alive.
    _ca: Ca,
    dir: PathBuf,
    root: PathBuf,
    bundles: Vec<Bundle>,
    /// Another CA's published CRL bundle.
    foreign: String,
    /// (name, chain file: leaf then intermediate).
    certs: Vec<(&'static str, PathBuf)>,
    root_subject: String,
    int1_subject: String,
    int2_subject: String,
}

/// A published `crls.pem`, split into its blocks.
#[derive(Clone)]
struct Bundle {
    root_crl: String,
    /// (intermediate certificate, its CRL)
    intermediates: Vec<(String, String)>,
}

impl Bundle {
    fn parse(text: &str) -> Bundle {
        let blocks = pem::parse_many(text).unwrap();
        let certs: Vec<String> = blocks
            .iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(pem::encode)
            .collect();
        let crls: Vec<String> = blocks
            .iter()
            .filter(|b| b.tag() == "X509 CRL")
            .map(pem::encode)
            .collect();
        // publish writes the intermediates, the root CRL, then each intermediate's CRL in turn.
        assert_eq!(crls.len(), certs.len() + 1, "{text}");
        Bundle {
            root_crl: crls[0].clone(),
            intermediates: certs.into_iter().zip(crls[1..].iter().cloned()).collect(),
        }
    }

    fn render(&self) -> String {
        let mut s: String = self.intermediates.iter().map(|(c, _)| c.as_str()).collect();
        s += &self.root_crl;
        for (_, crl) in &self.intermediates {
            s += crl;
        }
        s
    }

    /// The root CRL alone: what the mirror of the issue served.
    fn root_only(&self) -> String {
        self.root_crl.clone()
    }
}

/// Day `n` and a half after T0, when every CRL but day 0's intermediate CRL is still current.
fn day(n: i64) -> String {
    days_after(T0, n).replace("T00:", "T12:")
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let (ca, custodian) = offline_root_ca(T0);
        for n in ["alice", "bob", "carol"] {
            ok(run(ca
                .cmd(T0)
                .args(["request", n, "--key-out"])
                .arg(ca.keys.join(format!("{n}.key")))));
        }
        ca.commit("three");
        ok(ca.reconcile(T0));
        let public = ca.tmp.path().join("public");
        let publish = |at: &str| -> Bundle {
            ok(run(ca.cmd(at).arg("publish").arg(&public)));
            Bundle::parse(&std::fs::read_to_string(public.join("crls.pem")).unwrap())
        };
        let ceremony = |at: &str, args: &[&str]| {
            ok(run(ca
                .cmd(at)
                .arg("root")
                .args(args)
                .arg("--identity")
                .arg(&custodian)));
        };
        let p0 = publish(T0);
        let alice1 = ca.keep("certs/alice.crt", "alice-int1.crt");
        let bob1 = ca.keep("certs/bob.crt", "bob-int1.crt");
        let d1 = days_after(T0, 1);
        ca.offboard("bob");
        ca.commit("bob leaves");
        ok(ca.reconcile(&d1));
        let p1 = publish(&d1);
        let d2 = days_after(T0, 2);
        ceremony(&d2, &["sign-crl"]);
        let p2 = publish(&d2);
        let d3 = days_after(T0, 3);
        ceremony(
            &d3,
            &["new-intermediate", "--revoke-current", "key-compromise"],
        );
        ok(ca.reconcile(&d3));
        let p3 = publish(&d3);
        let alice2 = ca.keep("certs/alice.crt", "alice-int2.crt");
        let carol2 = ca.keep("certs/carol.crt", "carol-int2.crt");
        let d4 = days_after(T0, 4);
        ca.offboard("carol");
        ca.commit("carol leaves");
        ok(ca.reconcile(&d4));
        let p4 = publish(&d4);
        let root = ca.keep("ca/root.crt", "pinned-root.crt");
        let stranger = Ca::new();
        ok(run(stranger
            .cmd(T0)
            .arg("publish")
            .arg(stranger.tmp.path().join("pub"))));
        let foreign = std::fs::read_to_string(stranger.tmp.path().join("pub/crls.pem")).unwrap();
        let subject = |pem_text: &str| {
            let der = pem::parse(pem_text).unwrap().into_contents();
            let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
            gitca::authority::subject::rfc4514(c.subject())
        };
        let world = World {
            dir: ca.tmp.path().to_path_buf(),
            root_subject: subject(&ca.read("ca/root.crt")),
            int1_subject: subject(&p0.intermediates[0].0),
            int2_subject: subject(&p3.intermediates[0].0),
            root,
            bundles: vec![p0, p1, p2, p3, p4],
            foreign,
            certs: vec![
                ("alice-int1", alice1),
                ("bob-int1", bob1),
                ("alice-int2", alice2),
                ("carol-int2", carol2),
            ],
            _ca: ca,
        };
        assert_ne!(world.int1_subject, world.int2_subject);
        world
    })
}

/// A server of its own: a mirror directory (a published tree whose crls.pem the test writes),
/// the installed file, its state and metrics.
struct Server {
    _tmp: tempfile::TempDir,
    mirror: PathBuf,
    out: PathBuf,
    metrics: PathBuf,
}

impl Server {
    fn new() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = tmp.path().join("mirror");
        std::fs::create_dir_all(&mirror).unwrap();
        std::fs::write(mirror.join("index.json"), "{}").unwrap();
        let out = tmp.path().join("nginx/crls.pem");
        let metrics = tmp.path().join("gitca-crl.prom");
        Server {
            mirror,
            out,
            metrics,
            _tmp: tmp,
        }
    }

    fn state(&self) -> PathBuf {
        self.out.with_file_name(".crls.pem.gitca-deploy.json")
    }

    /// The mirror serves `text`; `gitca deploy crl` runs at `at`: (exit code, output).
    fn serve(&self, at: &str, text: &str) -> (i32, String) {
        std::fs::write(self.mirror.join("crls.pem"), text).unwrap();
        self.deploy(at)
    }

    fn deploy(&self, at: &str) -> (i32, String) {
        let w = world();
        let o = run(gitca()
            .args([
                "--now",
                at,
                "deploy",
                "crl",
                "--stale-margin",
                "1h",
                "--from",
            ])
            .arg(&self.mirror)
            .arg("--ca")
            .arg(&w.root)
            .arg("--out")
            .arg(&self.out)
            .arg("--metrics")
            .arg(&self.metrics)
            .current_dir(&w.dir));
        (
            o.status.code().unwrap_or(-1),
            format!("{}{}", stdout(&o), stderr(&o)),
        )
    }

    fn installed(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The `gitca_deploy_stale` gauge of the last run.
    fn stale(&self) -> bool {
        let m = std::fs::read_to_string(&self.metrics).unwrap();
        let line = m
            .lines()
            .find(|l| l.starts_with("gitca_deploy_stale{"))
            .unwrap_or_else(|| panic!("{m}"));
        line.ends_with(" 1")
    }

    /// `openssl verify -crl_check_all` of a chain against the pinned root and what is
    /// installed, at `at`: Ok, or openssl's complaint.
    fn verify(&self, chain: &Path, at: &str) -> Result<(), String> {
        let w = world();
        if !self.out.exists() {
            return Err("nothing installed".into());
        }
        let o = tool(
            "openssl",
            &[
                "verify",
                "-attime",
                &epoch(at),
                "-crl_check_all",
                "-CAfile",
                w.root.to_str().unwrap(),
                "-untrusted",
                chain.to_str().unwrap(),
                "-CRLfile",
                self.out.to_str().unwrap(),
                chain.to_str().unwrap(),
            ],
            &w.dir,
        );
        if o.status.success() {
            Ok(())
        } else {
            Err(format!("{}{}", stdout(&o), stderr(&o)))
        }
    }

    /// The installed CRLs: issuer ("root", "int1", "int2") and number.
    fn numbers(&self) -> Vec<(&'static str, u64)> {
        let w = world();
        let text = self.installed();
        pem::parse_many(&text)
            .unwrap()
            .iter()
            .filter(|b| b.tag() == "X509 CRL")
            .map(|b| {
                let (_, crl) = x509_parser::parse_x509_crl(b.contents()).unwrap();
                let issuer = gitca::authority::subject::rfc4514(crl.issuer());
                let who = if issuer == w.root_subject {
                    "root"
                } else if issuer == w.int1_subject {
                    "int1"
                } else if issuer == w.int2_subject {
                    "int2"
                } else {
                    panic!("an installed CRL of {issuer}")
                };
                let n = crl
                    .crl_number()
                    .map(|n| n.to_u64_digits().first().copied().unwrap_or(0));
                (who, n.unwrap())
            })
            .collect()
    }
}

fn chain(name: &str) -> &'static Path {
    &world().certs.iter().find(|(n, _)| *n == name).unwrap().1
}

/// The mirror of the issue, step one: after the full bundle, the root CRL alone. nginx would
/// refuse every client (no CRL for the intermediate): refused, what is installed stays.
#[test]
fn a_bundle_that_drops_an_installed_intermediate_is_refused() {
    let w = world();
    let s = Server::new();
    let at = day(1);
    let (code, log) = s.serve(&at, &w.bundles[1].render());
    assert_eq!(code, 0, "{log}");
    let full = s.installed();
    s.verify(chain("alice-int1"), &at).unwrap();
    let (code, log) = s.serve(&at, &w.bundles[1].root_only());
    assert_eq!(code, 1, "{log}");
    assert!(!log.contains("installed CRL"), "{log}");
    assert!(
        log.contains(&w.int1_subject),
        "names the dropped intermediate: {log}"
    );
    assert_eq!(s.installed(), full);
    assert!(!s.stale(), "what is installed is fine");
    s.verify(chain("alice-int1"), &at).unwrap();
}

/// The mirror of the issue, step two: after the root CRL alone, the older full bundle. Its
/// intermediate's CRL is older than the one installed before the root-only bundle: refused,
/// and bob (revoked on the newer one) never verifies again.
#[test]
fn an_older_crl_is_refused_whatever_was_fetched_in_between() {
    let w = world();
    let s = Server::new();
    let at = day(1);
    let (code, log) = s.serve(&at, &w.bundles[1].render());
    assert_eq!(code, 0, "{log}");
    assert!(s.verify(chain("bob-int1"), &at).is_err());
    s.serve(&at, &w.bundles[1].root_only());
    let (code, log) = s.serve(&at, &w.bundles[0].render());
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("older"), "{log}");
    let err = s.verify(chain("bob-int1"), &at).unwrap_err();
    assert!(err.contains("revoked"), "{err}");
    s.verify(chain("alice-int1"), &at).unwrap();
}

/// The state file deleted: what is installed is the floor, never "anything goes".
#[test]
fn a_deleted_state_file_falls_back_to_what_is_installed() {
    let w = world();
    let s = Server::new();
    let at = day(1);
    assert_eq!(s.serve(&at, &w.bundles[1].render()).0, 0);
    std::fs::remove_file(s.state()).unwrap();
    let (code, log) = s.serve(&at, &w.bundles[0].render());
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("older"), "{log}");
    assert!(s.verify(chain("bob-int1"), &at).is_err());
    // The newer bundle still goes in.
    let (code, log) = s.serve(&day(2), &w.bundles[2].render());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("installed CRL"), "{log}");
}

/// The state file damaged: refused loudly (exit 1, the file named, the remedy), nothing
/// installed; once it is removed, the installed CRLs are the floor.
#[test]
fn a_damaged_state_file_is_refused_loudly() {
    let w = world();
    let s = Server::new();
    let at = day(1);
    assert_eq!(s.serve(&at, &w.bundles[1].render()).0, 0);
    let installed = s.installed();
    std::fs::write(s.state(), "{\"floors\": 12").unwrap();
    let (code, log) = s.serve(&day(2), &w.bundles[2].render());
    assert_eq!(code, 1, "{log}");
    assert!(log.contains(".crls.pem.gitca-deploy.json"), "{log}");
    assert!(log.contains("remove it"), "{log}");
    assert_eq!(s.installed(), installed);
    std::fs::remove_file(s.state()).unwrap();
    let (code, log) = s.serve(&day(2), &w.bundles[0].render());
    assert_eq!(code, 1, "{log}");
    let (code, log) = s.serve(&day(2), &w.bundles[2].render());
    assert_eq!(code, 0, "{log}");
}

/// What is installed lacks the CRL of an intermediate installed before (here cut out by
/// hand) and the source is down: nginx refuses that intermediate's clients, so it is stale
/// (exit 4, the metric), never "fine".
#[test]
fn an_installed_set_without_an_intermediates_crl_is_stale() {
    let w = world();
    let s = Server::new();
    let at = day(1);
    assert_eq!(s.serve(&at, &w.bundles[1].render()).0, 0);
    std::fs::write(&s.out, w.bundles[1].root_only()).unwrap();
    std::fs::remove_file(s.mirror.join("crls.pem")).unwrap();
    let (code, log) = s.deploy(&at);
    assert_eq!(code, 4, "{log}");
    assert!(s.stale());
    assert!(log.contains(&w.int1_subject), "{log}");
}

/// The root CRL revokes the only intermediate the bundle carries and the new one is left
/// out: nginx would refuse every client. Refused, even on a first install.
#[test]
fn a_bundle_whose_every_intermediate_is_revoked_is_refused() {
    let w = world();
    let spliced = Bundle {
        root_crl: w.bundles[3].root_crl.clone(),
        intermediates: w.bundles[2].intermediates.clone(),
    }
    .render();
    for first in [true, false] {
        let s = Server::new();
        if !first {
            assert_eq!(s.serve(&day(3), &w.bundles[2].render()).0, 0);
        }
        let (code, log) = s.serve(&day(3), &spliced);
        assert_eq!(code, 1, "{log}");
        assert!(!log.contains("installed CRL"), "{log}");
        if !first {
            s.verify(chain("alice-int1"), &day(3)).unwrap();
        }
    }
}

/// An empty bundle (or one that is not PEM) is refused with exit 1, never "installed": with
/// nothing installed, the metrics say stale.
#[test]
fn an_empty_bundle_is_refused() {
    for text in [
        "",
        "\n",
        "-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n",
    ] {
        let s = Server::new();
        let (code, log) = s.serve(&day(1), text);
        assert_eq!(code, 1, "{text:?}: {log}");
        assert!(!log.contains("installed CRL"), "{log}");
        assert!(s.stale());
        assert!(!s.out.exists());
    }
}

/// A small deterministic generator (xorshift64*): the same seed plays the same sequences.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn crl_number(pem_text: &str) -> u64 {
    let der = pem::parse(pem_text).unwrap().into_contents();
    let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
    crl.crl_number()
        .and_then(|n| n.to_u64_digits().first().copied())
        .unwrap_or(0)
}

/// What a hostile mirror serves next, and whether it may be installed at all.
fn hostile(w: &World, rng: &mut Rng) -> (String, String, bool) {
    let b = &w.bundles;
    let k = rng.below(b.len());
    let (what, text, may) = match rng.below(10) {
        0 => (format!("p{k} root CRL only"), b[k].root_only(), true),
        1 => {
            let j = rng.below(b.len());
            let spliced = Bundle {
                root_crl: b[k].root_crl.clone(),
                intermediates: b[j].intermediates.clone(),
            };
            (
                format!("root of p{k} + intermediates of p{j}"),
                spliced.render(),
                true,
            )
        }
        2 => {
            // The intermediate's certificate without its CRL.
            let certs: String = b[k].intermediates.iter().map(|(c, _)| c.as_str()).collect();
            (
                format!("p{k} without its intermediate's CRL"),
                certs + &b[k].root_crl,
                false,
            )
        }
        3 => ("a foreign CA's CRLs".into(), w.foreign.clone(), false),
        4 => (
            format!("p{k} with a foreign CRL"),
            b[k].render() + &w.foreign,
            false,
        ),
        5 => ("empty".into(), String::new(), false),
        6 => ("not PEM".into(), "<html>503</html>\n".into(), false),
        _ => (format!("p{k}"), b[k].render(), true),
    };
    // p0's intermediate CRL has expired by the time the sequences play.
    let expired = text.contains(&b[0].intermediates[0].1);
    let may = may && !expired;
    if rng.below(3) == 0 {
        // The same blocks in another order.
        let mut blocks = pem::parse_many(&text).unwrap_or_default();
        for i in (1..blocks.len()).rev() {
            blocks.swap(i, rng.below(i + 1));
        }
        if !blocks.is_empty() {
            let shuffled: String = blocks.iter().map(pem::encode).collect();
            return (format!("{what}, reordered"), shuffled, may);
        }
    }
    (what, text, may)
}

/// The state machine: seeded sequences of what a hostile mirror can serve (an issuer dropped,
/// an older bundle replayed, root and intermediates of different days spliced, blocks
/// reordered, another CA's CRLs, expired CRLs, an empty or non-PEM answer, no answer), with
/// the state file deleted or damaged now and then. After every step, on what is installed:
/// no issuer's number ever went down; every issuer installed before is still there unless the
/// installed root CRL revoked it; `openssl verify -crl_check_all` admits the unrevoked
/// certificate of each installed intermediate (nginx never refuses everyone) and never again
/// admits a certificate it once found revoked; exit 0 always means "not stale".
#[test]
fn hostile_mirrors_never_move_a_relying_party_back() {
    let w = world();
    let at = day(7);
    let revokes_int1 = crl_number(&w.bundles[3].root_crl);
    assert!(revokes_int1 > crl_number(&w.bundles[2].root_crl));
    let seed: u64 = std::env::var("GITCA_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0019);
    let mut rng = Rng(seed);
    let mut installs = 0;
    let mut refusals = 0;
    for sequence in 0..14 {
        let s = Server::new();
        let mut high: std::collections::BTreeMap<&str, u64> = Default::default();
        let mut once_revoked: std::collections::BTreeSet<&str> = Default::default();
        let mut story: Vec<String> = Vec::new();
        for step in 0..10 {
            let before = s.installed();
            let (what, code, log, may) = match rng.below(14) {
                0 => {
                    // Deleted, then the mirror serves again what it served last.
                    let _ = std::fs::remove_file(s.state());
                    let (code, log) = s.deploy(&at);
                    (
                        "state file deleted, same again".to_string(),
                        code,
                        log,
                        true,
                    )
                }
                1 if s.state().exists() => {
                    std::fs::write(s.state(), "{\"validators\": [").unwrap();
                    let (text, _) = (w.bundles[4].render(), ());
                    let (code, log) = s.serve(&at, &text);
                    assert_eq!(code, 1, "a damaged state file refuses: {log}");
                    assert!(log.contains("damaged"), "{log}");
                    assert_eq!(s.installed(), before);
                    std::fs::remove_file(s.state()).unwrap();
                    (
                        "state file damaged, refused, removed".to_string(),
                        1,
                        log,
                        false,
                    )
                }
                2 => {
                    let _ = std::fs::remove_file(s.mirror.join("crls.pem"));
                    let (code, log) = s.deploy(&at);
                    ("source down".to_string(), code, log, false)
                }
                _ => {
                    let (what, text, may) = hostile(w, &mut rng);
                    let (code, log) = s.serve(&at, &text);
                    (what, code, log, may)
                }
            };
            story.push(format!("{step}: {what} -> {code}"));
            let ctx = format!(
                "seed {seed:#x}, sequence {sequence}:\n{}\n{log}",
                story.join("\n")
            );
            assert!([0, 1, 4].contains(&code), "{ctx}");
            if !may {
                assert_eq!(s.installed(), before, "nothing may be installed: {ctx}");
            }
            if s.installed() != before {
                installs += 1;
                assert_eq!(code, 0, "{ctx}");
            } else if code == 1 {
                refusals += 1;
            }
            if code == 0 && s.metrics.exists() {
                assert!(!s.stale(), "exit 0 but stale: {ctx}");
            }
            // No issuer goes back, none installed before is dropped unless the root revoked it.
            let numbers = s.numbers();
            let number = |who: &str| numbers.iter().find(|(w, _)| *w == who).map(|(_, n)| *n);
            for (who, n) in &numbers {
                let h = high.entry(who).or_insert(*n);
                assert!(n >= h, "{who} went back from #{h} to #{n}: {ctx}");
                *h = *n;
            }
            let root_revoked_int1 = number("root").is_some_and(|n| n >= revokes_int1);
            for (who, h) in &high {
                let gone = number(who).is_none();
                let allowed = *who == "int1" && root_revoked_int1;
                assert!(!gone || allowed, "{who} (#{h}) was dropped: {ctx}");
            }
            if numbers.is_empty() {
                continue;
            }
            // What openssl (and so nginx) makes of what is installed.
            let mut admitted = 0;
            for (name, file) in &w.certs {
                let result = s.verify(file, &at);
                if let Err(e) = &result {
                    if e.contains("revoked") {
                        once_revoked.insert(name);
                    }
                } else {
                    admitted += 1;
                    assert!(
                        !once_revoked.contains(name),
                        "{name} was revoked and verifies again: {ctx}"
                    );
                }
                let unrevoked = match *name {
                    "alice-int1" => number("int1").is_some() && !root_revoked_int1,
                    "alice-int2" => number("int2").is_some(),
                    _ => false,
                };
                if unrevoked {
                    assert!(result.is_ok(), "{name} is refused: {result:?}: {ctx}");
                }
            }
            // A first contact has no floor: a root CRL alone from a mirror is all this machine
            // knows of the CA (see docs/deploy.md). Once an intermediate was installed, never.
            let hierarchy_known = high.contains_key("int1") || high.contains_key("int2");
            assert!(
                admitted > 0 || !hierarchy_known,
                "nginx would refuse everyone: {ctx}"
            );
        }
    }
    // The generator reached both outcomes often (a generator that only ever refused would
    // prove nothing).
    assert!(
        installs >= 10 && refusals >= 30,
        "{installs} installs, {refusals} refusals"
    );
}

/// Across the seam between the CA and its relying parties: after a planned rotation the
/// retiring intermediate stays in what is published, its CRL kept current, until a root
/// ceremony revokes it (or it expires), even once nothing it signed is valid. A relying party
/// that installed its CRL never sees it vanish without the root's word, and so keeps
/// installing the CA's CRLs through the rotation and after it.
#[test]
fn a_retired_intermediate_leaves_relying_parties_only_with_the_roots_word() {
    let (ca, custodian) = offline_root_ca(T0);
    ok(run(ca
        .cmd(T0)
        .args(["request", "robot", "--bot", "--key-out"])
        .arg(ca.keys.join("robot.key"))));
    ca.commit("robot");
    let public = ca.tmp.path().join("public");
    let pinned = ca.keep("ca/root.crt", "pinned.crt");
    let out = ca.tmp.path().join("server/crls.pem");
    let step = |at: &str| {
        ok(ca.reconcile(at));
        ok(run(ca.cmd(at).arg("publish").arg(&public)));
        let o = run(gitca()
            .args(["--now", at, "deploy", "crl", "--from"])
            .arg(&public)
            .arg("--ca")
            .arg(&pinned)
            .arg("--out")
            .arg(&out));
        assert_eq!(
            o.status.code(),
            Some(0),
            "{at}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        pem::parse_many(std::fs::read_to_string(&out).unwrap())
            .unwrap()
            .len()
    };
    assert_eq!(step(T0), 2);
    let d1 = days_after(T0, 1);
    ok(run(ca
        .cmd(&d1)
        .args(["root", "new-intermediate", "--identity"])
        .arg(&custodian)));
    assert_eq!(step(&d1), 3, "root, current and retiring intermediate");
    // The robot's certificate under the retiring intermediate (30 days) expires; the CRLs go on.
    for day in [4, 8, 12, 16, 20, 24, 28, 32, 36] {
        assert_eq!(step(&days_after(T0, day)), 3, "day {day}");
    }
    assert!(ca.path("ca/previous.crt").exists());
    // The ceremony revokes it; reconcile removes it; the relying party lets it go.
    let d40 = days_after(T0, 40);
    ok(run(ca
        .cmd(&d40)
        .args(["root", "sign-crl", "--identity"])
        .arg(&custodian)));
    assert_eq!(step(&d40), 2);
    assert!(!ca.path("ca/previous.crt").exists());
}
