//! Issue 19, class 1: a value from a pull request cannot mean something else downstream.
//! Every value that enters a subject or a SAN has one strict grammar (refused with file and
//! line), a common name cannot stand for someone else, subjects are shown in RFC 4514 form,
//! and every hostile string that reaches an output passes that channel's encoder: nothing
//! printed to a terminal or a CI log carries a control, bidi or invisible character, JSON
//! stays JSON, markdown stays inert. The nginx that reads the values is tested in
//! tests/registry_e2e.rs (`nginx_group_rules_match_whole_attributes_only`).

mod common;

use common::*;

/// Strings that try to be syntax somewhere: a DN, a terminal, markdown, a config file.
const HOSTILE: &[&str] = &[
    "mallory,OU=push",
    "a+b",
    "x=y",
    "q\"uote",
    "back\\slash",
    "<a>",
    "a;b",
    "#hash",
    "/O=x/OU=push",
    " lead",
    "trail ",
    "esc\u{1b}[2K\rgitca: check passed",
    "bell\u{7}",
    "osc\u{1b}]0;title\u{7}",
    "csi\u{9b}31m",
    "rlo\u{202e}cod.exe",
    "zero\u{200b}width",
    "line\u{2028}sep",
    "\u{430}lice",
    "Zoe\u{308}",
    "nl\nnext",
];

/// A YAML double-quoted scalar for any string (every non-printable as `\uXXXX`).
fn yq(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' || (!c.is_control() && !invisible(c)) => {
                out.push(c)
            }
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// What must never reach a terminal raw.
fn invisible(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

fn assert_inert(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| invisible(*c)) {
        panic!(
            "{what}: U+{:04X} reached the output raw:\n{text:?}",
            c as u32
        );
    }
}

/// Every output of a run, checked for raw invisible characters; returns stdout + stderr.
fn inert(what: &str, o: &std::process::Output) -> String {
    let all = format!("{}{}", stdout(o), stderr(o));
    assert_inert(what, &all);
    all
}

/// An identities file holding one value, where a diagnostic must point, and the file's text.
type Field = (&'static str, &'static str, fn(&str) -> String);

#[test]
fn every_value_that_enters_a_subject_has_one_grammar() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    ca.commit("alice");
    // The positive path: names with accents and of another script pass.
    for ok_cn in ["Zoë Ångström", "O'Brien (contractor)", "李小龙"] {
        ca.openssl_csr(
            "zoe",
            ok_cn,
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            &["-utf8"],
        );
        ca.identities(&format!(
            "users:\n  - name: alice\n  - name: zoe\n    common_name: {}\n",
            yq(ok_cn)
        ));
        let o = run(ca.cmd(T0).arg("check"));
        assert!(o.status.success(), "{ok_cn}: {}", inert(ok_cn, &o));
    }
    // Each field × each hostile string: refused by check, at the file and line, and shown inert.
    let fields: &[Field] = &[
        ("identities/people.yaml", "people.yaml:4", |v| {
            format!(
                "users:\n  - name: alice\n  - name: bob\n    common_name: {}\n",
                yq(v)
            )
        }),
        ("identities/people.yaml", "people.yaml:4", |v| {
            format!(
                "users:\n  - name: alice\n  - name: bob\n    email: {}\n",
                yq(v)
            )
        }),
        ("identities/people.yaml", "people.yaml:4", |v| {
            format!(
                "users:\n  - name: alice\n  - name: bob\n    groups: [{}]\n",
                yq(v)
            )
        }),
        ("identities/people.yaml", "people.yaml:3", |v| {
            format!("users:\n  - name: alice\n  - name: {}\n", yq(v))
        }),
    ];
    ca.p256_csr("bob");
    for (file, at, yaml) in fields {
        for v in HOSTILE {
            ca.write(file, &yaml(v));
            let o = run(ca.cmd(T0).arg("check"));
            let all = inert(v, &o);
            assert!(!o.status.success(), "{v:?} in {file} passed check:\n{all}");
            assert!(all.contains(at), "{v:?}: no {at} in:\n{all}");
            let o = run(ca.cmd(T0).args(["check", "--json"]));
            inert(v, &o);
            serde_json::from_str::<serde_json::Value>(&stdout(&o))
                .unwrap_or_else(|e| panic!("{v:?}: check --json is not JSON ({e})"));
            for format in [&["plan"][..], &["plan", "--markdown"], &["plan", "--json"]] {
                let o = run(ca.cmd(T0).args(format));
                inert(v, &o);
                if format.contains(&"--json") {
                    serde_json::from_str::<serde_json::Value>(&stdout(&o))
                        .unwrap_or_else(|e| panic!("{v:?}: plan --json is not JSON ({e})"));
                }
            }
        }
    }
    // The organization in gitca.yaml, and the CA's name at init.
    ca.identities("users:\n  - name: alice\n");
    let config = ca.read("gitca.yaml");
    for v in HOSTILE {
        ca.write(
            "gitca.yaml",
            &config.replace("organization: Acme", &format!("organization: {}", yq(v))),
        );
        let o = run(ca.cmd(T0).arg("check"));
        let all = inert(v, &o);
        assert!(!o.status.success(), "organization {v:?} passed:\n{all}");
        assert!(all.contains("gitca.yaml"), "{all}");
        let o = run(gitca()
            .arg("init")
            .arg("-C")
            .arg(ca.tmp.path().join("other"))
            .args(["--name", v, "--recipient", &ca.recipient]));
        let all = inert(v, &o);
        assert!(!o.status.success(), "init --name {v:?} passed:\n{all}");
    }
    ca.write("gitca.yaml", &config);
    ok(run(ca.cmd(T0).arg("check")));
}

#[test]
fn a_common_name_cannot_stand_for_someone_else() {
    let ca = Ca::new();
    for n in ["alice", "carol", "olga-ray"] {
        ca.p256_csr(n);
    }
    ca.openssl_csr(
        "olga-ray",
        "Olga Ray",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &[],
    );
    ca.identities(
        "users:\n  - name: alice\n  - name: carol\n  - name: olga-ray\n    common_name: Olga Ray\n",
    );
    ca.commit("three");
    ok(ca.reconcile(T0));
    // carol leaves: her name stays hers in the ledger.
    ca.offboard("carol");
    ca.commit("carol leaves");
    ok(ca.reconcile(&days_after(T0, 1)));
    let base = ca.read("identities/people.yaml");
    for (cn, other) in [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("ALICE", "alice"),
        ("A.lice", "alice"),
        ("\u{430}lice", "alice"),
        ("Carol", "carol"),
        ("(alice)", "alice"),
        ("@alice:", "alice"),
        ("alice'", "alice"),
        ("olga ray", "olga-ray"),
        ("OLGA RAY", "olga-ray"),
    ] {
        ca.openssl_csr(
            "mallory",
            cn,
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            &["-utf8"],
        );
        ca.write(
            "identities/people.yaml",
            &format!("{base}  - name: mallory\n    common_name: {}\n", yq(cn)),
        );
        let o = run(ca.cmd(&days_after(T0, 2)).arg("check"));
        let all = inert(cn, &o);
        assert!(!o.status.success(), "{cn:?} passed:\n{all}");
        // Cyrillic а is refused by the grammar already (mixed scripts); the rest by the clash.
        if cn.is_ascii() {
            assert!(
                all.contains(&format!("stands for identity `{other}`")),
                "{cn:?}:\n{all}"
            );
            assert!(all.contains("people.yaml:"), "{all}");
        }
        // The look-alike blocks mallory only: the name's holder is never blocked by it.
        assert!(
            !all.contains("stands for identity `mallory`"),
            "{cn:?}:\n{all}"
        );
        // Reconcile signs nothing for mallory, and says why.
        let o = ca.reconcile(&days_after(T0, 2));
        assert_eq!(o.status.code(), Some(3), "{}", inert(cn, &o));
        assert!(
            !ca.ledger_rows().iter().any(|r| r[1] == "mallory"),
            "{cn:?}: mallory was certified"
        );
        git(&ca.root, &["reset", "-q", "--hard"]);
        git(&ca.root, &["clean", "-qfd"]);
    }
    // A name of one's own is fine: mallory as `Mallory Jones`.
    ca.openssl_csr(
        "mallory",
        "Mallory Jones",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &[],
    );
    ca.write(
        "identities/people.yaml",
        &format!("{base}  - name: mallory\n    common_name: Mallory Jones\n"),
    );
    ca.commit("mallory");
    ok(ca.reconcile(&days_after(T0, 2)));
    let o = ok(run(ca.cmd(&days_after(T0, 2)).args(["status", "--json"])));
    assert!(
        stdout(&o).contains("\"CN=Mallory Jones,O=Acme\""),
        "status shows RFC 4514 subjects:\n{}",
        stdout(&o)
    );
}

/// A CSR whose CN carries terminal escapes (a forged "check passed" line, a window title, a
/// bell, a right-to-left override) is refused, and what check, plan, reconcile and status
/// print of it is inert: the escapes are shown, never obeyed.
#[test]
fn a_hostile_csr_cannot_write_to_the_terminal() {
    let ca = Ca::new();
    ca.p256_csr("alice");
    let key = ca.keys.join("alice.key");
    let spki = spki_of(&key);
    let cn = "alice\u{1b}[2K\r\u{1b}]0;owned\u{7}gitca: check passed \u{202e}";
    let csr = hand_csr(ca.tmp.path(), cn, &spki, &key, HandSig::EcdsaSha256);
    ca.write("csr/alice.csr", &csr);
    ca.identities("users:\n  - name: alice\n");
    ca.commit("hostile CN");
    for args in [
        &["check"][..],
        &["check", "--json"],
        &["plan"],
        &["plan", "--markdown"],
        &["plan", "--json"],
        &["status"],
    ] {
        let o = run(ca.cmd(T0).args(args));
        let all = inert(&format!("{args:?}"), &o);
        if args[0] == "check" && args.len() == 1 {
            assert!(!o.status.success());
            assert!(all.contains("\\u001b"), "the escape is shown:\n{all}");
        }
    }
    let o = ca.reconcile(T0);
    inert("reconcile", &o);
    assert_eq!(o.status.code(), Some(3));
    // The commit message reconcile wrote is inert too.
    let log = git(&ca.root, &["log", "-1", "--format=%B"]);
    assert_inert("commit message", &log);
}

/// A file name is a value too: an identities file named with escapes is reported inert.
#[test]
fn a_hostile_file_name_is_shown_inert() {
    let ca = Ca::new();
    ca.write(
        "identities/\u{1b}[2K\rok\u{202e}.yaml",
        "users:\n  - name: Bad Name\n",
    );
    ca.commit("hostile file name");
    for args in [
        &["check"][..],
        &["plan"],
        &["plan", "--markdown"],
        &["status"],
    ] {
        let o = run(ca.cmd(T0).args(args));
        inert(&format!("{args:?}"), &o);
    }
    let o = run(ca.cmd(T0).arg("check"));
    assert!(!o.status.success());
    let all = inert("check", &o);
    assert!(all.contains("\\u001b[2K\\u000dok\\u202e.yaml"), "{all}");
}

/// A line break in a value from the tree (an identity file's name, any file's name, a `csr:`
/// path) never starts a line of its own: a CI runner reads `::error`, `::add-mask::` or
/// `::set-output` at the start of a line as a command. Renaming the file, check passes.
#[test]
fn a_line_break_in_a_name_forges_no_log_line() {
    let ca = Ca::new();
    let forged = "x\n::error title=gitca::reconcile::review passed\n::add-mask::alice\ny";
    ca.p256_csr("carol");
    ca.write(
        &format!("identities/{forged}.yaml"),
        "users:\n  - name: carol\n",
    );
    ca.write(&format!("docs/{forged}.txt"), "notes\n");
    ca.write(
        "identities/dave.yaml",
        &format!(
            "users:\n  - name: dave\n    csr: \"csr/{}.csr\"\n",
            forged.replace('\n', "\\n")
        ),
    );
    ca.commit("innocent");
    let forges = |what: &str, o: &std::process::Output| {
        let all = format!("{}{}", stdout(o), stderr(o));
        for line in all.lines() {
            assert!(
                !line.trim_start().starts_with("::"),
                "{what}: a value started a log line: {line:?}\n{all}"
            );
        }
        all
    };
    for args in [
        &["check"][..],
        &["check", "--json"],
        &["plan"],
        &["plan", "--markdown"],
        &["status"],
    ] {
        forges(&format!("{args:?}"), &run(ca.cmd(T0).args(args)));
    }
    let o = fails(run(ca.cmd(T0).arg("check")));
    let all = forges("check", &o);
    assert!(
        all.contains("x\\u000a::error"),
        "the name is shown escaped: {all}"
    );
    // Reconcile keeps the CRL fresh (exit 3: needs attention), signs nobody from that file,
    // and revokes nobody as removed while a file under identities/ is not read.
    let o = ca.reconcile(T0);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let all = forges("reconcile", &o);
    assert!(all.contains("removals-suspended"), "{all}");
    assert!(!ca.path("certs/carol.crt").exists());
    // Renamed, and dave's path fixed: check passes and carol is signed.
    std::fs::rename(
        ca.path(&format!("identities/{forged}.yaml")),
        ca.path("identities/carol.yaml"),
    )
    .unwrap();
    std::fs::remove_file(ca.path(&format!("docs/{forged}.txt"))).unwrap();
    std::fs::remove_file(ca.path("identities/dave.yaml")).unwrap();
    ca.commit("rename");
    ok(run(ca.cmd(T0).arg("check")));
    ok(ca.reconcile(T0));
    assert!(ca.path("certs/carol.crt").exists());
}

/// Values an operator gives reach nginx's configuration and containerd's hosts.toml as one
/// literal token each, or are refused: `nginx -t` reads every configuration that is written,
/// and Python's tomllib every hosts.toml.
#[test]
fn operator_values_reach_nginx_and_toml_as_literals() {
    require("nginx");
    let ca = Ca::new();
    let tmp = ca.tmp.path().to_path_buf();
    let prefix = tmp.join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    std::fs::create_dir_all(prefix.join("tmp")).unwrap();
    let nginx_t = |conf: &str| -> std::process::Output {
        let path = prefix.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        std::process::Command::new("nginx")
            .args(["-t", "-p"])
            .arg(format!("{}/", prefix.display()))
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .output()
            .unwrap()
    };
    let mut hostile_paths: Vec<String> = vec![
        "/tmp/a;b".into(),
        "/tmp/a b".into(),
        "/tmp/q\"uote".into(),
        "/tmp/}brace{".into(),
        "/tmp/$ssl_client_s_dn".into(),
        "/tmp/nl\nssl_verify_client off;".into(),
        "/tmp/esc\u{1b}x".into(),
    ];
    hostile_paths.extend(HOSTILE.iter().map(|s| format!("/tmp/{s}")));
    for flag in ["--tls-cert", "--crl", "--client-ca"] {
        for p in &hostile_paths {
            let o = run(ca
                .cmd(T0)
                .args(["export", "nginx", "--standalone"])
                .arg(&prefix)
                .args([flag, p]));
            let all = inert(p, &o);
            if !o.status.success() {
                assert!(
                    all.contains(flag),
                    "{flag} {p:?}: the flag is named:\n{all}"
                );
                continue;
            }
            // Written: the value is one token. nginx parses the whole file before it opens a
            // certificate, so a syntax error would be reported whatever the files hold.
            let conf = stdout(&o);
            assert!(!conf.contains("ssl_verify_client off"), "{p:?}:\n{conf}");
            let err = stderr(&nginx_t(&conf));
            for syntax in [
                "unexpected",
                "unknown directive",
                "invalid number of arguments",
                "is not allowed here",
                "unterminated",
            ] {
                assert!(
                    !err.contains(syntax),
                    "{flag} {p:?}: nginx read it as syntax:\n{err}"
                );
            }
        }
    }
    for (flag, bad) in [
        ("--server-name", "a b"),
        ("--server-name", "x;y"),
        ("--server-name", "$host"),
        ("--listen", "1.2.3.4:80 default_server"),
        ("--listen", "x\ny"),
        ("--upstream", "127.0.0.1:5000/ evil"),
        ("--upstream", "a\"b:1"),
    ] {
        let o = run(ca.cmd(T0).args(["export", "nginx", flag, bad]));
        let all = inert(bad, &o);
        assert!(!o.status.success(), "{flag} {bad:?} was written:\n{all}");
        assert!(all.contains(flag), "{all}");
    }
    // The positive path: ordinary values are written and nginx reads them.
    let o = ok(run(ca
        .cmd(T0)
        .args(["export", "nginx", "--standalone"])
        .arg(&prefix)
        .args([
            "--server-name",
            "registry.example.com",
            "--listen",
            "127.0.0.1:8443",
            "--upstream",
            "[::1]:5000",
        ])));
    assert!(
        stdout(&o).contains("server_name \"registry.example.com\";"),
        "{}",
        stdout(&o)
    );

    // bundle --registry: HOST:PORT or refused; containerd's hosts.toml parses to the same host.
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n");
    ca.commit("alice");
    ok(ca.reconcile(T0));
    let key = ca.keys.join("alice.key");
    for bad in [
        "reg.example.com:5000\nskip_verify = true",
        "reg\"x:5000",
        "reg\tx",
        "../../etc:5000",
        "reg.example.com:0",
        "reg.example.com:99999",
        "[::1",
        "esc\u{1b}[2K:5000",
    ] {
        let o = run(ca
            .cmd(T0)
            .args(["bundle", "alice", "--key"])
            .arg(&key)
            .args(["--containerd", "--certs-root"])
            .arg(tmp.join("certs.d"))
            .args(["--registry", bad]));
        let all = inert(bad, &o);
        assert!(
            !o.status.success(),
            "--registry {bad:?} was installed:\n{all}"
        );
    }
    for good in [
        "reg.example.com:5000",
        "192.0.2.10:5000",
        "[2001:db8::1]:5000",
        "reg",
    ] {
        ok(run(ca
            .cmd(T0)
            .args(["bundle", "alice", "--key"])
            .arg(&key)
            .args(["--containerd", "--certs-root"])
            .arg(tmp.join("certs.d"))
            .args(["--registry", good])));
        let dir = if good.ends_with(":443") {
            good.trim_end_matches(":443")
        } else {
            good
        };
        let toml = tmp.join("certs.d").join(dir).join("hosts.toml");
        let py = std::env::var("GITCA_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let o = ok(std::process::Command::new(py)
            .args(["-c", "import sys, tomllib; d = tomllib.load(open(sys.argv[1], 'rb')); print(d['server']); print(list(d['host']))"])
            .arg(&toml)
            .output()
            .unwrap());
        let text = stdout(&o);
        assert!(text.contains(&format!("https://{good}")), "{good}: {text}");
    }
}
