//! A custodian whose age identity is held by an age plugin (age-plugin-yubikey, age-plugin-tpm):
//! gitca encrypts the CA key to the plugin's recipient and unlocks it through the plugin, as
//! the `age` CLI does. No hardware plugin can be installed here (none is packaged for Debian,
//! and each needs its device), so the plugin is age's own example, `age-plugin-unencrypted`
//! (examples/age-plugin-unencrypted.rs), which speaks the same protocol over stdin and stdout.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A directory holding `age-plugin-unencrypted`, and PATH with it first.
fn plugin_on_path(ca: &Ca) -> (PathBuf, String) {
    // cargo builds the examples next to the test binaries: target/debug/{deps,examples}.
    let exe = std::env::current_exe().unwrap();
    let built = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/age-plugin-unencrypted");
    assert!(built.is_file(), "{built:?}: cargo test builds the examples");
    let bin = ca.tmp.path().join("plugin-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&built, bin.join("age-plugin-unencrypted")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    (bin, path)
}

/// The plugin's new identity file and its recipient (`age1unencrypted1…`).
fn plugin_identity(ca: &Ca, path: &str) -> (PathBuf, String) {
    // The copy was just written: a child another test thread forked in the meantime may
    // still hold it open for writing until it execs (ETXTBSY), so the first run is retried.
    let mut tries = 0;
    let o = loop {
        match std::process::Command::new("age-plugin-unencrypted")
            .env("PATH", path)
            .output()
        {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break ok(other.unwrap()),
        }
    };
    let text = stdout(&o);
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# recipient: "))
        .expect("the plugin prints its recipient")
        .to_string();
    assert!(recipient.starts_with("age1unencrypted1"), "{text}");
    assert!(text.contains("AGE-PLUGIN-UNENCRYPTED-1"), "{text}");
    let file = ca.tmp.path().join("yubikey-identity.txt");
    std::fs::write(&file, text).unwrap();
    (file, recipient)
}

/// The public key of a PEM private key or certificate, as openssl prints it.
fn public_key(ca: &Ca, args: &[&str]) -> String {
    stdout(&ok(ca.openssl(args)))
}

#[test]
fn a_custodian_identity_held_by_an_age_plugin_unlocks_the_ca_key() {
    require("age");
    let ca = Ca::new();
    let (_bin, path) = plugin_on_path(&ca);
    let (plugin_id, plugin_recipient) = plugin_identity(&ca, &path);

    // The custodian adds the plugin-held identity beside CI's (rekey runs the plugin to wrap).
    let mut rekey = ca.cmd(T0);
    rekey
        .env("PATH", &path)
        .args(["rekey", "--identity"])
        .arg(&ca.identity)
        .args(["--add", &plugin_recipient]);
    ok(run(&mut rekey));
    assert!(ca.read("ca/recipients.txt").contains(&plugin_recipient));

    // The real age CLI decrypts the key with the plugin identity: the file is plain age.
    let key = ca.tmp.path().join("ca.key.pem");
    ok(std::process::Command::new("age")
        .env("PATH", &path)
        .args(["-d", "-i"])
        .arg(&plugin_id)
        .arg("-o")
        .arg(&key)
        .arg(ca.path("ca/ca.key.age"))
        .output()
        .unwrap());
    let from_key = public_key(&ca, &["pkey", "-pubout", "-in", key.to_str().unwrap()]);
    let from_cert = public_key(
        &ca,
        &[
            "x509",
            "-pubkey",
            "-noout",
            "-in",
            ca.path("ca/ca.crt").to_str().unwrap(),
        ],
    );
    assert_eq!(
        from_key, from_cert,
        "age decrypts the CA key with the plugin identity"
    );

    // Reconcile signs through the plugin-held identity alone; openssl verifies what it issued.
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n    csr: csr/alice.csr\n");
    ca.commit("onboard alice");
    let mut reconcile = ca.cmd(T0);
    reconcile
        .env("PATH", &path)
        .args(["reconcile", "--identity"])
        .arg(&plugin_id);
    let o = ok(run(&mut reconcile));
    assert!(
        stderr(&o).contains("age plugin: This identity does nothing!"),
        "the plugin's messages reach the custodian: {}",
        stderr(&o)
    );
    let cert = ca.path("certs/alice.crt");
    let verified = ok(ca.openssl(&[
        "verify",
        "-attime",
        &epoch(T0),
        "-CAfile",
        ca.path("ca/ca.crt").to_str().unwrap(),
        cert.to_str().unwrap(),
    ]));
    assert!(stdout(&verified).contains("OK"));
}

#[test]
fn a_plugin_that_is_not_installed_is_named_and_nothing_is_written() {
    let ca = Ca::new();
    let (bin, path) = plugin_on_path(&ca);
    let (plugin_id, plugin_recipient) = plugin_identity(&ca, &path);
    std::fs::remove_file(bin.join("age-plugin-unencrypted")).unwrap();
    let before = ca.snapshot();

    // Adding the plugin's recipient needs the plugin: refused, the key file untouched.
    let mut rekey = ca.cmd(T0);
    rekey
        .env("PATH", &path)
        .args(["rekey", "--identity"])
        .arg(&ca.identity)
        .args(["--add", &plugin_recipient]);
    let o = fails(run(&mut rekey));
    assert!(
        stderr(&o).contains("age-plugin-unencrypted"),
        "{}",
        stderr(&o)
    );

    // Unlocking with the plugin's identity: the missing plugin is named, with how to fix it.
    ca.p256_csr("alice");
    ca.identities("users:\n  - name: alice\n    csr: csr/alice.csr\n");
    ca.commit("onboard alice");
    let head = ca.head();
    let mut reconcile = ca.cmd(T0);
    reconcile
        .env("PATH", &path)
        .args(["reconcile", "--identity"])
        .arg(&plugin_id);
    let o = fails(run(&mut reconcile));
    let err = stderr(&o);
    assert!(
        err.contains("age plugin `unencrypted`, which is not installed")
            && err.contains("install age-plugin-unencrypted"),
        "{err}"
    );
    assert_eq!(ca.head(), head, "nothing committed");
    assert!(!ca.path("certs/alice.crt").exists(), "nothing issued");
    let after: Vec<_> = ca
        .snapshot()
        .into_iter()
        .filter(|(p, _)| p.starts_with("ca/"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _)| p.starts_with("ca/"))
        .collect();
    assert_eq!(after, before, "ca/ unchanged");

    // The positive path on the same repository: with the CI identity, alice is issued.
    ok(ca.reconcile(T0));
    assert!(ca.path("certs/alice.crt").exists());
}
