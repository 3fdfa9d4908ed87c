//! A key is a key, however it is encoded (issue 12, class 3): identity, bars and certificates
//! are computed on the decoded key. CSRs are made by the real `openssl`, or byte by byte around
//! a hostile encoding and then signed by `openssl`, so proof of possession holds.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn has_cert(ca: &Ca, name: &str) -> bool {
    ca.ledger_rows().iter().any(|r| r[1] == name)
}

/// Declares `yaml`, commits, and reconciles at `now`; returns the combined output.
fn declare_and_reconcile(ca: &Ca, yaml: &str, now: &str) -> (Option<i32>, String) {
    ca.identities(yaml);
    ca.commit("declare");
    let o = ca.reconcile(now);
    (o.status.code(), format!("{}{}", stdout(&o), stderr(&o)))
}

/// `openssl ec -conv_form FORM` of a key, and a CSR for it made by `openssl req`.
fn ec_csr_in_form(ca: &Ca, key: &Path, form: &str, cn: &str) -> PathBuf {
    let conv = ca.keys.join(format!("{cn}-{form}.key"));
    ok(ca.openssl(&[
        "ec",
        "-in",
        key.to_str().unwrap(),
        "-conv_form",
        form,
        "-out",
        conv.to_str().unwrap(),
    ]));
    let csr = ca.path(&format!("csr/{cn}.csr"));
    std::fs::create_dir_all(csr.parent().unwrap()).unwrap();
    ok(ca.openssl(&[
        "req",
        "-new",
        "-key",
        conv.to_str().unwrap(),
        "-subj",
        &format!("/CN={cn}"),
        "-out",
        csr.to_str().unwrap(),
    ]));
    csr
}

#[test]
fn a_key_compromised_once_is_barred_in_every_ec_encoding() {
    let ca = Ca::new();
    let key = ca.p256_csr("a1");
    let (code, out) = declare_and_reconcile(&ca, "users:\n  - name: a1\n", T0);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = declare_and_reconcile(
        &ca,
        "users:\n  - name: a1\n    revoke: key-compromise\n",
        &days_after(T0, 1),
    );
    assert_eq!(code, Some(0), "{out}");
    // The same key, compressed and hybrid, under new names; and a fresh key beside them.
    for (form, cn) in [("compressed", "a2"), ("hybrid", "a3")] {
        ec_csr_in_form(&ca, &key, form, cn);
        let (code, out) = declare_and_reconcile(
            &ca,
            &format!("users:\n  - name: a1\n    revoke: key-compromise\n  - name: {cn}\n"),
            &days_after(T0, 2),
        );
        assert_ne!(code, Some(0), "{form}: {out}");
        assert!(
            out.contains(&format!("CSR of `{cn}`")) && out.contains("revoked for key compromise"),
            "{form}: {out}"
        );
        assert!(!has_cert(&ca, cn), "{form}: never certified");
        std::fs::remove_file(ca.path(&format!("csr/{cn}.csr"))).unwrap();
    }
    ca.p256_csr("a4");
    let (code, out) = declare_and_reconcile(
        &ca,
        "users:\n  - name: a1\n    revoke: key-compromise\n  - name: a4\n",
        &days_after(T0, 3),
    );
    assert_eq!(code, Some(0), "a fresh key is issued: {out}");
    assert!(has_cert(&ca, "a4"));
}

/// RSA: a key without the NULL parameters, with BER lengths, or with the same modulus and
/// another exponent is the key it always was.
#[test]
fn an_rsa_key_is_its_modulus_however_it_is_encoded() {
    let ca = Ca::new();
    let key = ca.openssl_csr("r1", "r1", &["rsa:2048"], &[]);
    let (code, out) = declare_and_reconcile(&ca, "users:\n  - name: r1\n", T0);
    assert_eq!(code, Some(0), "{out}");
    let canonical_spki = spki_of(&key);
    // The RSAPublicKey inside the canonical SPKI: skip the AlgorithmIdentifier and BIT STRING.
    let rsa_public_key = {
        let der = &canonical_spki;
        // 30 82 01 22 | 30 0d 06 09 … 05 00 | 03 82 01 0f 00 | RSAPublicKey
        der[4 + 15 + 5..].to_vec()
    };
    let no_null = {
        let alg = der_wrap(
            0x30,
            &[
                0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
            ],
        );
        let mut bits = vec![0];
        bits.extend_from_slice(&rsa_public_key);
        let mut body = alg;
        body.extend(der_wrap(0x03, &bits));
        der_wrap(0x30, &body)
    };
    // BER: the outer length in a non-minimal long form.
    let ber = {
        let content = &canonical_spki[4..];
        let mut out = vec![0x30, 0x84];
        out.extend_from_slice(&(content.len() as u32).to_be_bytes());
        out.extend_from_slice(content);
        out
    };
    let dir = ca.tmp.path().to_path_buf();
    for (cn, spki) in [("r2", no_null), ("r3", ber)] {
        let csr = hand_csr(&dir, cn, &spki, &key, HandSig::RsaSha256);
        ca.write(&format!("csr/{cn}.csr"), &csr);
        let (code, out) = declare_and_reconcile(
            &ca,
            &format!("users:\n  - name: r1\n  - name: {cn}\n"),
            &days_after(T0, 1),
        );
        assert_ne!(code, Some(0), "{cn}: {out}");
        assert!(
            out.contains(&format!("CSR of `{cn}`")) && out.contains("belongs to identity `r1`"),
            "{cn}: {out}"
        );
        assert!(!has_cert(&ca, cn), "{cn}: never certified");
        std::fs::remove_file(ca.path(&format!("csr/{cn}.csr"))).unwrap();
    }
    // The same modulus with the public exponent 3 (its private key built from the same primes).
    let e3 = same_modulus_other_exponent(&key, &dir);
    let csr = ca.path("csr/r4.csr");
    ok(ca.openssl(&[
        "req",
        "-new",
        "-key",
        e3.to_str().unwrap(),
        "-subj",
        "/CN=r4",
        "-out",
        csr.to_str().unwrap(),
    ]));
    let (code, out) = declare_and_reconcile(
        &ca,
        "users:\n  - name: r1\n  - name: r4\n",
        &days_after(T0, 2),
    );
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("belongs to identity `r1`"), "{out}");
    assert!(!has_cert(&ca, "r4"));
}

/// A private key for the modulus of `key` with another public exponent, written by Python
/// from the primes `openssl rsa -text` prints (the DER is assembled by hand: no library).
fn same_modulus_other_exponent(key: &Path, dir: &Path) -> PathBuf {
    let text = stdout(&ok(tool(
        "openssl",
        &["rsa", "-in", key.to_str().unwrap(), "-noout", "-text"],
        dir,
    )));
    let out = dir.join("e-other.der");
    let script = r#"
import re, sys
t = open(sys.argv[1]).read()
def num(label):
    m = re.search(label + r':\s*\n((?:\s+[0-9a-f:]+\n)+)', t)
    return int(m.group(1).replace(':', '').replace(' ', '').replace('\n', ''), 16)
p, q = num('prime1'), num('prime2')
n = p * q
from math import gcd
lam = (p - 1) * (q - 1) // gcd(p - 1, q - 1)
e = next(e for e in (3, 5, 17, 257) if gcd(e, lam) == 1)
d = pow(e, -1, lam)
def der_len(n):
    if n < 0x80: return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([0x80 | len(b)]) + b
def integer(v):
    b = v.to_bytes((v.bit_length() + 8) // 8 or 1, 'big')
    return b'\x02' + der_len(len(b)) + b
body = b''.join(integer(x) for x in (0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p)))
open(sys.argv[2], 'wb').write(b'\x30' + der_len(len(body)) + body)
"#;
    let text_file = dir.join("rsa.txt");
    std::fs::write(&text_file, text).unwrap();
    ok(tool(
        "python3",
        &[
            "-c",
            script,
            text_file.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        dir,
    ));
    let pem_out = dir.join("e-other.key");
    ok(tool(
        "openssl",
        &[
            "rsa",
            "-inform",
            "DER",
            "-in",
            out.to_str().unwrap(),
            "-out",
            pem_out.to_str().unwrap(),
        ],
        dir,
    ));
    pem_out
}

#[test]
fn an_ed25519_key_with_parameters_gets_a_certificate_openssl_loads() {
    let ca = Ca::new();
    let key = ca.keys.join("ed.key");
    ok(ca.openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        key.to_str().unwrap(),
    ]));
    let spki = spki_of(&key);
    // id-Ed25519 with NULL parameters (RFC 8410 says absent).
    let raw = &spki[spki.len() - 32..];
    let mut alg = vec![0x06, 0x03, 0x2b, 0x65, 0x70, 0x05, 0x00];
    alg = der_wrap(0x30, &alg);
    let mut bits = vec![0];
    bits.extend_from_slice(raw);
    let mut body = alg;
    body.extend(der_wrap(0x03, &bits));
    let hostile = der_wrap(0x30, &body);
    let csr = hand_csr(ca.tmp.path(), "ed", &hostile, &key, HandSig::Ed25519);
    ca.write("csr/ed.csr", &csr);
    let (code, out) = declare_and_reconcile(&ca, "users:\n  - name: ed\n", T0);
    assert_eq!(code, Some(0), "{out}");
    let text = stdout(&ok(ca.openssl(&[
        "x509",
        "-in",
        "certs/ed.crt",
        "-noout",
        "-text",
    ])));
    assert!(text.contains("ED25519 Public-Key"), "{text}");
    let cert_pub = ok(ca.openssl(&["x509", "-in", "certs/ed.crt", "-noout", "-pubkey"])).stdout;
    let key_pub = ok(ca.openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"])).stdout;
    assert_eq!(
        cert_pub, key_pub,
        "the certificate carries the canonical key"
    );
    ok(ca.verify_crl(&ca.path("certs/ed.crt"), T0));
}

/// The compressed point is accepted for a new key, and the certificate carries it uncompressed.
#[test]
fn a_compressed_key_is_certified_in_canonical_form() {
    let ca = Ca::new();
    let key = ca.keys.join("c.key");
    ok(ca.openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]));
    ec_csr_in_form(&ca, &key, "compressed", "c1");
    let (code, out) = declare_and_reconcile(&ca, "users:\n  - name: c1\n", T0);
    assert_eq!(code, Some(0), "{out}");
    let cert_pub = ok(ca.openssl(&["x509", "-in", "certs/c1.crt", "-noout", "-pubkey"])).stdout;
    let key_pub = ok(ca.openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"])).stdout;
    assert_eq!(cert_pub, key_pub);
}

/// `revoke: key-compromise` bars every key the identity ever had certified: after a rotation
/// the old key as well as the new, and a key whose certificate had already expired.
#[test]
fn key_compromise_bars_every_key_the_identity_ever_had() {
    let ca = Ca::new();
    let k1 = ca.p256_csr("b");
    let (code, out) = declare_and_reconcile(&ca, "users:\n  - name: b\n", T0);
    assert_eq!(code, Some(0), "{out}");
    // Rotation: a new key; the old certificate is superseded.
    ca.p256_csr("b");
    let (code, out) = declare_and_reconcile(&ca, "users:\n  - name: b\n", &days_after(T0, 1));
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = declare_and_reconcile(
        &ca,
        "users:\n  - name: b\n    revoke: key-compromise\n",
        &days_after(T0, 10),
    );
    assert_eq!(code, Some(0), "{out}");
    let reasons: Vec<String> = ca
        .ledger_rows()
        .iter()
        .filter(|r| r[1] == "b")
        .map(|r| r[8].clone())
        .collect();
    assert_eq!(reasons, ["key-compromise", "key-compromise"], "{out}");
    let crl = stdout(&ok(ca.openssl(&[
        "crl",
        "-in",
        "crl/ca.crl",
        "-noout",
        "-text",
    ])));
    assert_eq!(crl.matches("Key Compromise").count(), 2, "{crl}");
    // The old key (superseded before the compromise was known) under a new name is refused.
    csr_for_key(&ca, &k1, "b2");
    let (code, out) = declare_and_reconcile(
        &ca,
        "users:\n  - name: b\n    revoke: key-compromise\n  - name: b2\n",
        &days_after(T0, 11),
    );
    assert_ne!(code, Some(0));
    assert!(
        out.contains("CSR of `b2`") && out.contains("revoked for key compromise"),
        "{out}"
    );

    // An identity whose only certificate expired long ago.
    let ca = Ca::new();
    let ek = ca.p256_csr("e");
    let (code, out) = declare_and_reconcile(&ca, "bots:\n  - name: e\n", T0);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = declare_and_reconcile(
        &ca,
        "bots:\n  - name: e\n    disabled: true\n",
        &days_after(T0, 1),
    );
    assert_eq!(code, Some(0), "{out}");
    let later = days_after(T0, 60);
    let (code, out) = declare_and_reconcile(
        &ca,
        "bots:\n  - name: e\n    revoke: key-compromise\n",
        &later,
    );
    assert_eq!(code, Some(0), "{out}");
    let row = ca.ledger_rows().into_iter().find(|r| r[1] == "e").unwrap();
    assert_eq!(
        row[8], "key-compromise",
        "the expired certificate's key is barred"
    );
    csr_for_key(&ca, &ek, "e2");
    let (code, out) = declare_and_reconcile(
        &ca,
        "bots:\n  - name: e\n    revoke: key-compromise\n  - name: e2\n",
        &later,
    );
    assert_ne!(code, Some(0));
    assert!(
        out.contains("CSR of `e2`") && out.contains("revoked for key compromise"),
        "{out}"
    );
}

/// csr/NAME.csr for an existing key, by `openssl req`.
fn csr_for_key(ca: &Ca, key: &Path, name: &str) {
    let csr = ca.path(&format!("csr/{name}.csr"));
    ok(ca.openssl(&[
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        &format!("/CN={name}"),
        "-out",
        csr.to_str().unwrap(),
    ]));
}
