//! Public keys in canonical form: a key is a key, however it was encoded.
//!
//! A CSR's SubjectPublicKeyInfo is bytes someone chose: the same elliptic-curve key can be
//! submitted uncompressed, compressed or "hybrid", an RSA key with or without the NULL
//! parameters or with BER lengths, an Ed25519 key with parameters it must not carry. Key
//! identity (one key per identity, keys barred after a compromise, `key_sha256` in the ledger)
//! and every certificate gitca signs are built from the decoded key, re-encoded here in DER:
//!
//! - ECDSA P-256 / P-384: `id-ecPublicKey` with the named curve, the point uncompressed (and
//!   checked to be on the curve);
//! - RSA: `rsaEncryption` with NULL parameters, `RSAPublicKey { n, e }` in minimal DER. Its
//!   *identity* is the modulus alone: the same modulus with another exponent is the same key
//!   (whoever holds its factors holds both). The identity is hashed as the canonical SPKI of
//!   `(n, 65537)`, so ledger rows written before this rule — their keys almost all have
//!   e = 65537 — keep the fingerprint they had;
//! - Ed25519: `id-Ed25519` without parameters (RFC 8410).
//!
//! Also here, on a SubjectPublicKeyInfo as given: its fingerprint (what the ledger records)
//! and whether a signature verifies under it.
//!
//! Pure: bytes in, canonical key out.

use sha2::{Digest, Sha256};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;
use yasna::models::ObjectIdentifier;

const OID_RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
const OID_EC: &[u64] = &[1, 2, 840, 10045, 2, 1];
const OID_P256: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
const OID_P384: &[u64] = &[1, 3, 132, 0, 34];
const OID_ED25519: &[u64] = &[1, 3, 101, 112];

/// A decoded public key, re-encoded canonically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The canonical SubjectPublicKeyInfo (DER): what certificates carry.
    pub spki: Vec<u8>,
    /// SHA-256 (hex) of the key's identity: what the ledger records as `key_sha256`.
    pub id: String,
    /// e.g. "ECDSA P-256", "RSA 3072", "Ed25519".
    pub desc: String,
    /// Size in bits (the modulus for RSA).
    pub bits: usize,
    pub algorithm: Algorithm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// Why a key cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

fn bad(why: impl Into<String>) -> Unreadable {
    Unreadable(why.into())
}

fn oid(c: &[u64]) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(c)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The canonical SPKI of an RSA key (n and e unsigned big-endian, leading zeros allowed).
pub fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let key = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_bigint_bytes(strip_zeros(n), true);
            w.next().write_bigint_bytes(strip_zeros(e), true);
        })
    });
    spki(OID_RSA, Some(Params::Null), &key)
}

enum Params<'a> {
    Null,
    Oid(&'a [u64]),
}

fn spki(alg: &[u64], params: Option<Params<'_>>, key: &[u8]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(alg));
                match params {
                    Some(Params::Null) => w.next().write_null(),
                    Some(Params::Oid(o)) => w.next().write_oid(&oid(o)),
                    None => {}
                }
            });
            w.next().write_bitvec_bytes(key, key.len() * 8);
        })
    })
}

/// Decodes a SubjectPublicKeyInfo (DER, or the BER a CSR may hold) and re-encodes it.
pub fn canonical(spki_der: &[u8]) -> Result<PublicKey, Unreadable> {
    let (_, info) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|_| bad("the public key is not a valid SubjectPublicKeyInfo"))?;
    let alg: Vec<u64> = info
        .algorithm
        .algorithm
        .iter()
        .map(|it| it.collect())
        .unwrap_or_default();
    let params = info.algorithm.parameters.as_ref();
    let key = &info.subject_public_key.data;
    match alg.as_slice() {
        OID_RSA => canonical_rsa(params, key),
        OID_EC => canonical_ec(params, key),
        OID_ED25519 => canonical_ed25519(params, key),
        other => {
            let dotted: Vec<String> = other.iter().map(u64::to_string).collect();
            Err(bad(format!(
                "key type {} is not supported",
                dotted.join(".")
            )))
        }
    }
}

/// The algorithm parameters of a SubjectPublicKeyInfo, as read.
type ReadParams<'a> = Option<&'a x509_parser::der_parser::asn1_rs::Any<'a>>;

/// An RSA key: NULL parameters, a positive odd modulus, an odd exponent above 1.
fn canonical_rsa(params: ReadParams<'_>, key: &[u8]) -> Result<PublicKey, Unreadable> {
    if params.is_some_and(|p| p.tag() != x509_parser::der_parser::asn1_rs::Tag::Null) {
        return Err(bad("RSA key parameters must be NULL"));
    }
    let ((n, n_pos), (e, e_pos)) = yasna::parse_ber(key, |r| {
        r.read_sequence(|r| {
            let n = r.next().read_bigint_bytes()?;
            let e = r.next().read_bigint_bytes()?;
            Ok((n, e))
        })
    })
    .map_err(|_| bad("the RSA public key cannot be decoded"))?;
    if !n_pos || !e_pos {
        return Err(bad("the RSA modulus and exponent must be positive"));
    }
    let n = strip_zeros(&n);
    let e = strip_zeros(&e);
    if n.is_empty() || n[n.len() - 1] & 1 == 0 {
        return Err(bad("the RSA modulus is not odd"));
    }
    if e.is_empty() || e.len() > 8 || e[e.len() - 1] & 1 == 0 || e == [1] {
        return Err(bad("the RSA public exponent is not an odd number above 1"));
    }
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    Ok(PublicKey {
        spki: rsa_spki(n, e),
        id: sha256_hex(&rsa_spki(n, &[0x01, 0x00, 0x01])),
        desc: format!("RSA {bits}"),
        bits,
        algorithm: Algorithm::Rsa,
    })
}

/// An EC key on a named curve gitca supports (P-256, P-384), its point uncompressed.
fn canonical_ec(params: ReadParams<'_>, key: &[u8]) -> Result<PublicKey, Unreadable> {
    let curve: Vec<u64> = params
        .and_then(|p| p.as_oid().ok())
        .and_then(|o| o.iter().map(|it| it.collect()))
        .unwrap_or_default();
    let (curve_oid, algorithm, point) = match curve.as_slice() {
        OID_P256 => (OID_P256, Algorithm::P256, uncompressed_p256(key)?),
        OID_P384 => (OID_P384, Algorithm::P384, uncompressed_p384(key)?),
        [] => return Err(bad("the elliptic curve is not named (explicit parameters are not supported); use P-256 or P-384")),
        other => {
            let dotted: Vec<String> = other.iter().map(u64::to_string).collect();
            return Err(bad(format!(
                "elliptic curve {} is not supported (use P-256 or P-384)",
                dotted.join(".")
            )));
        }
    };
    let spki = spki(OID_EC, Some(Params::Oid(curve_oid)), &point);
    let (desc, bits) = match algorithm {
        Algorithm::P256 => ("ECDSA P-256", 256),
        _ => ("ECDSA P-384", 384),
    };
    Ok(PublicKey {
        id: sha256_hex(&spki),
        spki,
        desc: desc.into(),
        bits,
        algorithm,
    })
}

/// An Ed25519 key: no parameters (or NULL), 32 bytes.
fn canonical_ed25519(params: ReadParams<'_>, key: &[u8]) -> Result<PublicKey, Unreadable> {
    if params.is_some_and(|p| p.tag() != x509_parser::der_parser::asn1_rs::Tag::Null) {
        return Err(bad("an Ed25519 key carries no parameters"));
    }
    if key.len() != 32 {
        return Err(bad("an Ed25519 public key is 32 bytes"));
    }
    let spki = spki(OID_ED25519, None, key);
    Ok(PublicKey {
        id: sha256_hex(&spki),
        spki,
        desc: "Ed25519".into(),
        bits: 256,
        algorithm: Algorithm::Ed25519,
    })
}

/// A SEC 1 point in any of its encodings (0x04 uncompressed, 0x02/0x03 compressed, 0x06/0x07
/// hybrid), checked to be on the curve, as uncompressed bytes.
fn sec1_uncompressed(
    key: &[u8],
    coord: usize,
    decode: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, Unreadable> {
    let not_on_curve = || bad("the elliptic-curve point is not on the curve");
    let bytes = match key.first() {
        Some(0x06) | Some(0x07) if key.len() == 1 + 2 * coord => {
            // Hybrid: uncompressed, with the parity of y in the tag. It must agree.
            let y_odd = key[key.len() - 1] & 1 == 1;
            if y_odd != (key[0] == 0x07) {
                return Err(bad("the hybrid point's tag contradicts its y coordinate"));
            }
            let mut u = key.to_vec();
            u[0] = 0x04;
            u
        }
        Some(0x04) if key.len() == 1 + 2 * coord => key.to_vec(),
        Some(0x02) | Some(0x03) if key.len() == 1 + coord => key.to_vec(),
        _ => {
            return Err(bad(
                "the elliptic-curve point is not encoded as SEC 1 requires",
            ))
        }
    };
    decode(&bytes).ok_or_else(not_on_curve)
}

fn uncompressed_p256(key: &[u8]) -> Result<Vec<u8>, Unreadable> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    sec1_uncompressed(key, 32, |b| {
        p256::PublicKey::from_sec1_bytes(b)
            .ok()
            .map(|k| k.to_encoded_point(false).as_bytes().to_vec())
    })
}

fn uncompressed_p384(key: &[u8]) -> Result<Vec<u8>, Unreadable> {
    use p384::elliptic_curve::sec1::ToEncodedPoint;
    sec1_uncompressed(key, 48, |b| {
        p384::PublicKey::from_sec1_bytes(b)
            .ok()
            .map(|k| k.to_encoded_point(false).as_bytes().to_vec())
    })
}

/// Whether two SubjectPublicKeyInfos hold the same key (RSA: the same modulus).
pub fn same_key(a: &[u8], b: &[u8]) -> bool {
    match (canonical(a), canonical(b)) {
        (Ok(a), Ok(b)) => a.id == b.id,
        _ => a == b,
    }
}

/// SHA-256 of a SubjectPublicKeyInfo, hex: the key fingerprint the ledger records.
pub fn key_fingerprint(spki_der: &[u8]) -> String {
    hex::encode(Sha256::digest(spki_der))
}

/// Whether `signature` over `message` verifies with the key `spki_der` (a CA key: ECDSA P-256
/// with SHA-256, P-384 with SHA-384, or RSA PKCS#1 v1.5 with SHA-256 — what rcgen signs with).
pub fn verify_with(spki_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use aws_lc_rs::signature;
    let Ok((_, spki)) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der) else {
        return false;
    };
    let alg: &dyn signature::VerificationAlgorithm = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(_)) => &signature::RSA_PKCS1_2048_8192_SHA256,
        Ok(x509_parser::public_key::PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => &signature::ECDSA_P256_SHA256_ASN1,
                Some("1.3.132.0.34") => &signature::ECDSA_P384_SHA384_ASN1,
                _ => return false,
            }
        }
        _ => return false,
    };
    signature::UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::sec1::ToEncodedPoint;

    fn p256_point(compress: bool) -> (Vec<u8>, bool) {
        let sk = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let p = sk.public_key().to_encoded_point(compress);
        let y_odd = sk.public_key().to_encoded_point(false).as_bytes()[64] & 1 == 1;
        (p.as_bytes().to_vec(), y_odd)
    }

    #[test]
    fn every_encoding_of_an_ec_key_is_one_key() {
        let (u, y_odd) = p256_point(false);
        let (c, _) = p256_point(true);
        let mut h = u.clone();
        h[0] = if y_odd { 0x07 } else { 0x06 };
        let base = canonical(&spki(OID_EC, Some(Params::Oid(OID_P256)), &u)).unwrap();
        for point in [&c, &h] {
            let k = canonical(&spki(OID_EC, Some(Params::Oid(OID_P256)), point)).unwrap();
            assert_eq!(k, base);
        }
        assert_eq!(base.spki[base.spki.len() - 65], 0x04);
        // A hybrid point whose tag lies about y is refused, and so is a point off the curve.
        h[0] ^= 1;
        assert!(canonical(&spki(OID_EC, Some(Params::Oid(OID_P256)), &h)).is_err());
        let mut off = u.clone();
        off[64] ^= 1;
        assert!(canonical(&spki(OID_EC, Some(Params::Oid(OID_P256)), &off)).is_err());
    }

    #[test]
    fn rsa_identity_is_the_modulus() {
        let mut n = vec![0xc5u8; 256];
        n[255] |= 1;
        let e65537 = canonical(&rsa_spki(&n, &[1, 0, 1])).unwrap();
        let e3 = canonical(&rsa_spki(&n, &[3])).unwrap();
        assert_eq!(e65537.id, e3.id, "same modulus, same key");
        assert_ne!(e65537.spki, e3.spki, "the certificate keeps the exponent");
        assert_eq!(e65537.bits, 2048);
        // Without the NULL parameters: the same key, and the canonical SPKI has them.
        let key = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_bigint_bytes(&n, true);
                w.next().write_u32(65537);
            })
        });
        let no_null = canonical(&spki(OID_RSA, None, &key)).unwrap();
        assert_eq!(no_null, e65537);
        // The id of (n, 65537) is the SHA-256 of its canonical SPKI: the ledger's old rule.
        assert_eq!(e65537.id, sha256_hex(&e65537.spki));
    }

    #[test]
    fn ed25519_parameters_are_dropped() {
        let with_null = spki(OID_ED25519, Some(Params::Null), &[9u8; 32]);
        let k = canonical(&with_null).unwrap();
        assert_eq!(k.spki, spki(OID_ED25519, None, &[9u8; 32]));
    }
}
