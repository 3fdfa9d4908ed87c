//! CSR rules: proof of possession, key strength, and the name it claims.
//!
//! From a CSR gitca takes only the public key, after verifying the CSR's signature. Nothing
//! else in it (requested extensions, SANs, key usages, CA:TRUE) is ever used; this module
//! returns the SubjectPublicKeyInfo and the CN, nothing more. Pure: bytes in, verdict out.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

/// A CSR whose signature verified and whose key passes gitca's key policy.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    /// The canonical SubjectPublicKeyInfo (see [`crate::pubkey`]), never the CSR's bytes.
    pub spki_der: Vec<u8>,
    /// The key's identity (see [`crate::pubkey`]).
    pub key_sha256: String,
    /// e.g. "ECDSA P-256", "RSA 3072".
    pub key_desc: String,
    pub common_name: Option<String>,
}

/// Why a CSR is refused, with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: String,
    pub help: String,
}

fn refuse(rule: impl Into<String>, help: impl Into<String>) -> Refusal {
    Refusal {
        rule: rule.into(),
        help: help.into(),
    }
}

const OID_SHA1_RSA: &str = "1.2.840.113549.1.1.5";
const OID_SHA1_ECDSA: &str = "1.2.840.10045.4.1";
const OID_MD5_RSA: &str = "1.2.840.113549.1.1.4";

const REGENERATE: &str = "generate a new key and CSR: `gitca request NAME` (ECDSA P-256), or `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout NAME.key -out csr/NAME.csr -subj /CN=NAME`";

/// Parses a PEM CSR, verifies its signature and applies the key policy.
pub fn verify_csr(bytes: &[u8]) -> Result<VerifiedCsr, Refusal> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| refuse("the file is not a PEM text file", REGENERATE))?;
    if text.contains("PRIVATE KEY-----") {
        return Err(refuse(
            "the file contains a private key",
            "commit only the CSR; keep the .key on your machine, and since it was exposed, make a new key",
        ));
    }
    let blocks = pem::parse_many(text).map_err(|_| refuse("the file is not PEM", REGENERATE))?;
    let block = match blocks.as_slice() {
        [b] if b.tag() == "CERTIFICATE REQUEST" || b.tag() == "NEW CERTIFICATE REQUEST" => b,
        [] => {
            return Err(refuse(
                "the file is not PEM (no BEGIN CERTIFICATE REQUEST block)",
                REGENERATE,
            ))
        }
        [b] => {
            return Err(refuse(
                format!(
                    "the PEM block is a `{}`, not a `CERTIFICATE REQUEST`",
                    b.tag()
                ),
                REGENERATE,
            ))
        }
        _ => {
            return Err(refuse(
                "the file holds more than one PEM block",
                "keep exactly one CSR per file",
            ))
        }
    };
    let der = block.contents();
    let (rest, csr) = X509CertificationRequest::from_der(der).map_err(|_| {
        refuse(
            "the PEM block is not a valid PKCS#10 certification request",
            REGENERATE,
        )
    })?;
    if !rest.is_empty() {
        return Err(refuse(
            "trailing bytes after the certification request",
            REGENERATE,
        ));
    }
    let sig_oid = csr.signature_algorithm.algorithm.to_id_string();
    if [OID_SHA1_RSA, OID_SHA1_ECDSA, OID_MD5_RSA].contains(&sig_oid.as_str()) {
        return Err(refuse(
            "the CSR is signed with SHA-1 or MD5",
            "sign the CSR with SHA-256 or stronger (openssl req signs with SHA-256 by default)",
        ));
    }
    let info = &csr.certification_request_info;
    // The key as it is, whatever its encoding: identity and certificates use the canonical form.
    let key = crate::pubkey::canonical(info.subject_pki.raw).map_err(|why| {
        refuse(
            why.0,
            "use an ECDSA P-256/P-384, RSA (2048 to 8192 bits) or Ed25519 key",
        )
    })?;
    if key.algorithm == crate::pubkey::Algorithm::Rsa {
        if key.bits < 2048 {
            return Err(refuse(
                format!("RSA key of {} bits is weak (minimum 2048)", key.bits),
                REGENERATE,
            ));
        }
        if key.bits > 8192 {
            return Err(refuse(
                format!("RSA key of {} bits is larger than 8192", key.bits),
                REGENERATE,
            ));
        }
    }
    // Key policy first: a weak key is named as such, not as a failed signature.
    csr.verify_signature().map_err(|_| {
        refuse(
            "its signature does not verify (proof of possession failed: the CSR was altered or is corrupt)",
            "regenerate the CSR with the private key it names; never edit a CSR by hand",
        )
    })?;
    let common_name = info
        .subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    Ok(VerifiedCsr {
        spki_der: key.spki,
        key_sha256: key.id,
        key_desc: key.desc,
        common_name,
    })
}

/// The CN rule: a CSR must name the identity it is declared for.
pub fn check_name(csr: &VerifiedCsr, identity: &str) -> Result<(), Refusal> {
    match csr.common_name.as_deref() {
        Some(cn) if cn == identity => Ok(()),
        Some(cn) => Err(refuse(
            format!("its CN is `{cn}`, not `{identity}`"),
            format!("regenerate the CSR with subject /CN={identity}"),
        )),
        None => Err(refuse(
            "it has no CN",
            format!("regenerate the CSR with subject /CN={identity}"),
        )),
    }
}
