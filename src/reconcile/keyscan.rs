//! Finding private keys in files: no private key ever enters the CA repository (invariant 2).
//!
//! A key can arrive in many shapes, so each file's first MiB is looked at as:
//! - PEM or similar armour: any `-----BEGIN … PRIVATE KEY…-----` block (PKCS#8, PKCS#1, SEC1,
//!   OpenSSH, encrypted, PGP), PuTTY `.ppk`, SSH2 (`---- BEGIN SSH2 ENCRYPTED PRIVATE KEY`), an
//!   age secret key;
//! - binary DER: PKCS#8 `PrivateKeyInfo` / `OneAsymmetricKey`, `EncryptedPrivateKeyInfo`, PKCS#1
//!   `RSAPrivateKey`, SEC1 `ECPrivateKey`, and PKCS#12 (`PFX`, version 3), whole or as an
//!   un-armoured base64 run inside a text file;
//! - JSON Web Keys: any object with `kty` and a private member (`d`, or `k` for a symmetric key),
//!   alone or in a key set.
//!
//! Pure: bytes in, finding out.

use base64::Engine as _;

/// What was found, and on which line (1-based; 1 for binary files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: String,
    pub line: usize,
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The first private key in `bytes`, if any.
pub fn find(bytes: &[u8]) -> Option<Found> {
    if let Some(kind) = der_private_key(bytes) {
        return Some(Found { kind, line: 1 });
    }
    let text = String::from_utf8_lossy(bytes);
    armoured(&text)
        .or_else(|| jwk(&text))
        .or_else(|| base64_der(&text))
}

fn armoured(text: &str) -> Option<Found> {
    let mut from = 0;
    while let Some(i) = text[from..].find("-----BEGIN ") {
        let at = from + i;
        let rest = &text[at + 11..];
        let label: String = rest
            .chars()
            .take_while(|&c| c != '-' && c != '\n')
            .collect();
        if label.contains("PRIVATE KEY") {
            return Some(Found {
                kind: label,
                line: line_of(text, at),
            });
        }
        from = at + 11;
    }
    for (marker, kind) in [
        ("PuTTY-User-Key-File-", "PuTTY private key"),
        ("---- BEGIN SSH2 ENCRYPTED PRIVATE KEY", "SSH2 private key"),
        (concat!("AGE-SECRET", "-KEY-1"), "age secret key"),
    ] {
        if let Some(at) = text.find(marker) {
            return Some(Found {
                kind: kind.into(),
                line: line_of(text, at),
            });
        }
    }
    None
}

/// A DER structure that is (or wraps) a private key.
fn der_private_key(der: &[u8]) -> Option<String> {
    if der.first() != Some(&0x30) {
        return None;
    }
    use pkcs8::der::Decode;
    if pkcs8::PrivateKeyInfo::from_der(der).is_ok() {
        return Some("PKCS#8 private key (DER)".into());
    }
    if pkcs8::EncryptedPrivateKeyInfo::from_der(der).is_ok() {
        return Some("encrypted PKCS#8 private key (DER)".into());
    }
    // The rest by shape: a SEQUENCE whose first element is a small INTEGER version.
    let shape =
        yasna::parse_ber(der, |r| {
            r.read_sequence(|r| {
                let version = r.next().read_u8()?;
                match version {
                    // PKCS#12 PFX: version 3, then authSafe ContentInfo (data or signedData).
                    3 => {
                        let ct = r.next().read_sequence(|r| {
                            let oid = r.next().read_oid()?;
                            r.next().read_der()?;
                            Ok(oid)
                        })?;
                        r.read_optional(|r| r.read_der())?;
                        let data = [1u64, 2, 840, 113549, 1, 7, 1];
                        let signed = [1u64, 2, 840, 113549, 1, 7, 2];
                        Ok((ct.components().as_slice() == data
                            || ct.components().as_slice() == signed)
                            .then(|| "PKCS#12 key store (DER)".to_string()))
                    }
                    // PKCS#1 RSAPrivateKey: version 0 and eight more INTEGERs.
                    0 => {
                        for _ in 0..8 {
                            r.next().read_bigint_bytes()?;
                        }
                        r.read_optional(|r| r.read_der())?;
                        Ok(Some("PKCS#1 RSA private key (DER)".to_string()))
                    }
                    // SEC1 ECPrivateKey: version 1, the private scalar, optional [0] and [1].
                    1 => {
                        r.next().read_bytes()?;
                        r.read_optional(|r| r.read_der())?;
                        r.read_optional(|r| r.read_der())?;
                        Ok(Some("SEC1 EC private key (DER)".to_string()))
                    }
                    _ => Ok(None),
                }
            })
        });
    shape.ok().flatten()
}

/// Un-armoured base64 that decodes to a DER private key (a key pasted without its PEM lines).
fn base64_der(text: &str) -> Option<Found> {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    let mut run_start: Option<usize> = None;
    let mut run = String::new();
    let check = |run: &str, start: usize| -> Option<Found> {
        if run.len() < 64 || !run.starts_with("MI") {
            return None;
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(run.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(run))
            .ok()?;
        der_private_key(&der).map(|kind| Found {
            kind: format!("{kind}, base64"),
            line: line_of(text, start),
        })
    };
    for (i, c) in text.char_indices() {
        if is_b64(c) {
            run_start.get_or_insert(i);
            run.push(c);
        } else if c == '\n' || c == '\r' {
            // A base64 run may be wrapped over several lines.
        } else {
            if let Some(f) = run_start.and_then(|s| check(&run, s)) {
                return Some(f);
            }
            run_start = None;
            run.clear();
        }
    }
    run_start.and_then(|s| check(&run, s))
}

/// A JSON Web Key holding private material, alone or in a key set.
fn jwk(text: &str) -> Option<Found> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    fn private(v: &serde_json::Value, depth: usize) -> bool {
        if depth > 16 {
            return false;
        }
        match v {
            serde_json::Value::Object(m) => {
                (m.contains_key("kty") && (m.contains_key("d") || m.contains_key("k")))
                    || m.values().any(|v| private(v, depth + 1))
            }
            serde_json::Value::Array(a) => a.iter().any(|v| private(v, depth + 1)),
            _ => false,
        }
    }
    private(&value, 0).then(|| Found {
        kind: "JSON Web Key with private material".into(),
        line: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_material_is_not_a_key() {
        assert!(find(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").is_none());
        assert!(find(br#"{"kty":"EC","crv":"P-256","x":"a","y":"b"}"#).is_none());
        assert!(find(b"users:\n  - name: alice\n").is_none());
    }

    #[test]
    fn keys_in_their_many_shapes_are_found() {
        let key = rcgen::KeyPair::generate().unwrap();
        let der = key.serialize_der();
        assert!(find(&der).unwrap().kind.contains("PKCS#8"));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let text = format!("notes:\n  {b64}\n");
        let f = find(text.as_bytes()).unwrap();
        assert!(f.kind.contains("base64"), "{f:?}");
        assert_eq!(f.line, 2);
        assert!(
            find(br#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}]}"#).is_some()
        );
        assert!(find(concat!("x\n-----BEGIN OPENSSH ", "PRIVATE KEY-----\n").as_bytes()).is_some());
        assert!(find(concat!("-----BEGIN PGP ", "PRIVATE KEY BLOCK-----\n").as_bytes()).is_some());
    }
}
