//! The CA's cryptography: key generation, the self-signed CA certificate, leaf certificates
//! built from our own parameters, and CRLs.
//!
//! Leaf certificates are encoded here field by field (yasna) rather than through rcgen's
//! `CertificateParams`, for two reasons: rcgen's distinguished name holds one value per
//! attribute type, and gitca writes one OU per group; and building the TBS ourselves means
//! nothing a CSR requested can ever reach a certificate — only the CSR's verified public key
//! is passed in. The CA certificate and CRLs use rcgen.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData, RevokedCertParams, SerialNumber,
    SigningKey,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use yasna::models::ObjectIdentifier;
use yasna::Tag;
use zeroize::{Zeroize, Zeroizing};

use crate::authority::pubkey::verify_with;
use crate::authority::revocation::RevocationReason;
use crate::error::{Error, Result};

/// Certificates are backdated by this much so that a client whose clock runs a little slow
/// does not see a brand-new certificate as "not yet valid" (Let's Encrypt does the same).
pub const BACKDATE: time::Duration = time::Duration::hours(1);

/// Largest certificate file (a chain of a few certificates) gitca reads.
pub const MAX_CERT_BYTES: u64 = 64 << 10;
/// Largest CRL gitca reads (a 100,000-entry CRL is about 7 MB in PEM).
pub const MAX_CRL_BYTES: u64 = 32 << 20;

/// The validity window of a certificate signed now for an identity.
/// The backdating never reaches before the CA's own notBefore (a CA made or imported within
/// the hour), and the expiry never past its notAfter. Nor does it reach before `after`, the
/// latest notBefore of the certificates the new one follows (the identity's, and any of the
/// same key), up to `now`: whoever compares certificates by notBefore — `gitca deploy cert`
/// installs only a newer one, a key's holder is the last certified for it — sees the new one
/// as the newer, even when it replaces a certificate signed minutes ago without backdating
/// (one `openssl ca` issued just before an import).
pub fn validity_window(
    now: OffsetDateTime,
    validity: time::Duration,
    ca: (OffsetDateTime, OffsetDateTime),
    after: Option<OffsetDateTime>,
) -> (OffsetDateTime, OffsetDateTime) {
    let mut start = (now - BACKDATE).max(ca.0);
    if let Some(after) = after {
        start = start.max((after + time::Duration::SECOND).min(now));
    }
    (start, (now + validity).min(ca.1))
}

/// How intermediates are named in the ledger's `issuer` column, the roster and messages: the
/// first 16 hex digits of the SHA-256 of the certificate.
pub fn id_of(der: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(der)[..8])
}

/// The unlocked CA private key: in memory (from age custody; its PKCS#8 bytes are zeroized
/// when it is dropped, and the aws-lc key object behind it is cleansed by aws-lc's own
/// `OPENSSL_free`), or held by a PKCS#11 token that signs for it and never lets it out.
pub struct CaKey {
    inner: Inner,
}

enum Inner {
    Memory(KeyPair),
    Token(crate::authority::token::TokenKey),
}

impl Drop for CaKey {
    fn drop(&mut self) {
        if let Inner::Memory(pair) = &mut self.inner {
            pair.zeroize();
        }
    }
}

impl std::fmt::Debug for CaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaKey([redacted])")
    }
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Memory(p) => p.der_bytes(),
            Inner::Token(t) => t.der_bytes(),
        }
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match &self.inner {
            Inner::Memory(p) => PublicKeyData::algorithm(p),
            Inner::Token(t) => t.algorithm(),
        }
    }
}

impl SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        match &self.inner {
            Inner::Memory(p) => p.sign(msg),
            Inner::Token(t) => t.sign(msg),
        }
    }
}

impl CaKey {
    pub fn new(pair: KeyPair) -> CaKey {
        CaKey {
            inner: Inner::Memory(pair),
        }
    }

    /// A key a PKCS#11 token holds.
    pub fn in_token(key: crate::authority::token::TokenKey) -> CaKey {
        CaKey {
            inner: Inner::Token(key),
        }
    }

    /// The URI of the token-held key, for messages; None for a key in memory.
    pub fn token_uri(&self) -> Option<String> {
        match &self.inner {
            Inner::Token(t) => Some(t.uri().render()),
            Inner::Memory(_) => None,
        }
    }

    /// Whether a token holds this key (it cannot be re-encrypted, only used).
    pub fn is_in_token(&self) -> bool {
        matches!(self.inner, Inner::Token(_))
    }

    /// Parses a PKCS#8 PEM private key (the plaintext inside `ca/ca.key.age`).
    pub fn from_pem(pem_text: &str) -> Result<CaKey> {
        let block = pem::parse(pem_text).map_err(|_| Error::Unlock {
            reason: "the decrypted CA key is not a PEM private key".into(),
            help: "ca/ca.key.age was not written by gitca; restore it from git history".into(),
        })?;
        let der = Zeroizing::new(block.into_contents());
        let pair = KeyPair::try_from(der.as_slice()).map_err(|e| Error::Unlock {
            reason: format!("the decrypted CA key cannot be loaded: {e}"),
            help: "ca/ca.key.age was not written by gitca; restore it from git history".into(),
        })?;
        Ok(CaKey::new(pair))
    }

    /// The key in PKCS#8 PEM, for encryption only: callers must never write it to disk as is.
    /// A token-held key has none: it never leaves the token.
    pub fn to_pem(&self) -> Result<Zeroizing<String>> {
        match &self.inner {
            Inner::Memory(p) => Ok(Zeroizing::new(p.serialize_pem())),
            Inner::Token(t) => Err(Error::Token {
                reason: format!(
                    "the key at {} lives in a token and cannot be exported or re-encrypted",
                    t.uri().render()
                ),
                help: "a token-held key is used in place: there are no age recipients to change. To move custody, follow the ceremony in docs/custody.md".into(),
            }),
        }
    }

    pub fn spki_der(&self) -> Vec<u8> {
        self.subject_public_key_info()
    }

    /// The DER AlgorithmIdentifier of the signatures this key makes.
    fn signature_algorithm(&self) -> Result<&'static [u8]> {
        let alg = PublicKeyData::algorithm(self);
        if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            Ok(&[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
            ])
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            Ok(&[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
            ])
        } else if alg == &rcgen::PKCS_RSA_SHA256 {
            Ok(&[
                0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
                0x00,
            ])
        } else {
            Err(Error::Crypto {
                what: "signing",
                detail: format!("unsupported CA key algorithm {alg:?}"),
            })
        }
    }
}

/// What gitca needs to know of `ca/ca.crt`.
#[derive(Debug, Clone)]
pub struct CaCert {
    pub pem: String,
    pub der: Vec<u8>,
    pub subject_der: Vec<u8>,
    pub spki_der: Vec<u8>,
    pub ski: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub subject: String,
}

impl CaCert {
    pub fn parse(pem_text: &str) -> Result<CaCert> {
        let bad = |why: &str| {
            Error::bad_file(
                "ca/ca.crt",
                format!("not a usable CA certificate: {why}"),
                "restore ca/ca.crt from git history (git log -- ca/ca.crt)",
            )
        };
        let block = pem::parse(pem_text).map_err(|_| bad("not PEM"))?;
        let der = block.into_contents();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|_| bad("not X.509"))?;
        let ski = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            })
            .ok_or_else(|| bad("it has no subject key identifier"))?;
        Ok(CaCert {
            pem: pem_text.to_string(),
            subject_der: cert.tbs_certificate.subject.as_raw().to_vec(),
            spki_der: cert.tbs_certificate.subject_pki.raw.to_vec(),
            ski,
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            subject: crate::authority::subject::rfc4514(cert.subject()),
            der: der.clone(),
        })
    }

    /// SHA-256 of the CA certificate, colon-separated as `openssl x509 -fingerprint -sha256`.
    pub fn fingerprint(&self) -> String {
        colon_hex(&Sha256::digest(&self.der))
    }
}

pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A fresh serial: 128 bits from the system CSPRNG, encoded as a positive INTEGER. The first
/// octet is never zero, so every serial is exactly 16 octets (32 hex digits) long.
pub fn random_serial() -> Result<Vec<u8>> {
    Ok(random_serials(1)?.remove(0))
}

/// `n` serials of 16 random octets, the first non-zero (so every serial is positive and of
/// fixed length), from one call to the CSRNG per batch: a bulk issue asks for 10,000.
pub fn random_serials(n: usize) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut pool = vec![0u8; 16 * (n - out.len())];
        aws_lc_rs::rand::fill(&mut pool).map_err(|_| Error::Crypto {
            what: "random serial",
            detail: "the system random generator failed".into(),
        })?;
        out.extend(
            pool.chunks_exact(16)
                .filter(|s| s[0] != 0)
                .map(<[u8]>::to_vec),
        );
    }
    Ok(out)
}

fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).expect("zero nanoseconds is valid")
}

/// Creates the self-signed CA certificate for `key`.
pub fn self_signed(
    name: &str,
    organization: &str,
    key: &CaKey,
    now: OffsetDateTime,
    validity: time::Duration,
) -> Result<String> {
    self_signed_with(name, organization, key, now, validity, None)
}

/// A self-signed CA certificate with an optional path length constraint (a root: 1).
pub fn self_signed_with(
    name: &str,
    organization: &str,
    key: &CaKey,
    now: OffsetDateTime,
    validity: time::Duration,
    path_len: Option<u8>,
) -> Result<String> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, organization);
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = truncate(now - BACKDATE);
    params.not_after = truncate(now + validity);
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    params.key_identifier_method = KeyIdMethod::Sha256;
    let cert = params
        .self_signed(key)
        .map_err(Error::crypto("CA certificate"))?;
    Ok(cert.pem())
}

/// The extended key usages a profile may grant: the allow-list. What each one lets a holder do:
/// `client_auth` authenticate to TLS servers (the registry: what gitca is for); `server_auth`
/// act as a TLS server; `email_protection` sign and encrypt mail (S/MIME); `code_signing` sign
/// software. Anything else (timestamping, OCSP signing, any EKU) is not grantable.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum Eku {
    ClientAuth,
    ServerAuth,
    EmailProtection,
    CodeSigning,
}

impl Eku {
    /// The name used in gitca.yaml.
    pub fn name(self) -> &'static str {
        match self {
            Eku::ClientAuth => "client_auth",
            Eku::ServerAuth => "server_auth",
            Eku::EmailProtection => "email_protection",
            Eku::CodeSigning => "code_signing",
        }
    }

    /// The OID's DER content octets.
    pub fn oid(self) -> &'static [u64] {
        match self {
            Eku::ServerAuth => &[1, 3, 6, 1, 5, 5, 7, 3, 1],
            Eku::ClientAuth => &[1, 3, 6, 1, 5, 5, 7, 3, 2],
            Eku::CodeSigning => &[1, 3, 6, 1, 5, 5, 7, 3, 3],
            Eku::EmailProtection => &[1, 3, 6, 1, 5, 5, 7, 3, 4],
        }
    }
}

/// Everything a leaf certificate says, all of it from YAML, the profile and the clock except
/// the public key, which is the verified CSR's.
#[derive(Debug, Clone)]
pub struct LeafSpec<'a> {
    pub name: &'a str,
    pub organization: &'a str,
    pub groups: &'a [String],
    pub email: Option<&'a str>,
    /// A server's DNS names and IP addresses (subjectAltName dNSName and iPAddress).
    pub names: &'a [crate::authority::server::San],
    pub ekus: &'a [Eku],
    pub spki_der: &'a [u8],
    pub serial: &'a [u8],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The CRL distribution point URL, when the CA publishes its CRL.
    pub crl_url: Option<&'a str>,
}

const OID_CN: &[u64] = &[2, 5, 4, 3];
const OID_CRL_DP: &[u64] = &[2, 5, 29, 31];
const OID_O: &[u64] = &[2, 5, 4, 10];
const OID_OU: &[u64] = &[2, 5, 4, 11];
const OID_SKI: &[u64] = &[2, 5, 29, 14];
const OID_KU: &[u64] = &[2, 5, 29, 15];
const OID_SAN: &[u64] = &[2, 5, 29, 17];
const OID_BC: &[u64] = &[2, 5, 29, 19];
const OID_AKI: &[u64] = &[2, 5, 29, 35];
const OID_EKU: &[u64] = &[2, 5, 29, 37];

fn oid(components: &[u64]) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(components)
}

fn write_time(w: yasna::DERWriter, t: OffsetDateTime) {
    // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    let t = t.to_offset(time::UtcOffset::UTC);
    let (tag, text) = if (1950..2050).contains(&t.year()) {
        (
            yasna::tags::TAG_UTCTIME,
            format!(
                "{:02}{:02}{:02}{:02}{:02}{:02}Z",
                t.year() % 100,
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        )
    } else {
        (
            yasna::tags::TAG_GENERALIZEDTIME,
            format!(
                "{:04}{:02}{:02}{:02}{:02}{:02}Z",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        )
    };
    w.write_tagged_implicit(tag, |w| w.write_bytes(text.as_bytes()));
}

fn write_extension(w: yasna::DERWriter, id: &[u64], critical: bool, value: Vec<u8>) {
    w.write_sequence(|w| {
        w.next().write_oid(&oid(id));
        if critical {
            w.next().write_bool(true);
        }
        w.next().write_bytes(&value);
    });
}

/// RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the subjectPublicKey bits.
pub fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>> {
    let (_, spki) =
        x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| Error::Crypto {
            what: "key identifier",
            detail: e.to_string(),
        })?;
    Ok(Sha256::digest(&spki.subject_public_key.data)[..20].to_vec())
}

/// Signs a leaf certificate; returns its DER.
pub fn sign_leaf(ca: &CaCert, key: &CaKey, spec: &LeafSpec<'_>) -> Result<Vec<u8>> {
    let alg = key.signature_algorithm()?;
    let ski = key_identifier(spec.spki_der)?;
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_tagged(Tag::context(0), |w| w.write_u8(2));
            w.next().write_bigint_bytes(spec.serial, true);
            w.next().write_der(alg);
            w.next().write_der(&ca.subject_der);
            w.next().write_sequence(|w| {
                write_time(w.next(), spec.not_before);
                write_time(w.next(), spec.not_after);
            });
            write_leaf_subject(w.next(), spec);
            w.next().write_der(spec.spki_der);
            w.next().write_tagged(Tag::context(3), |w| {
                write_leaf_extensions(w, ca, spec, &ski)
            });
        })
    });
    let signature = key.sign(&tbs).map_err(Error::crypto("signing"))?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            w.next().write_der(alg);
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        })
    }))
}

/// A leaf's subject: O, one OU per group, then CN.
fn write_leaf_subject(w: yasna::DERWriter, spec: &LeafSpec<'_>) {
    w.write_sequence(|w| {
        let mut rdn = |id: &[u64], value: &str| {
            w.next().write_set(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(id));
                    w.next().write_utf8_string(value);
                })
            })
        };
        rdn(OID_O, spec.organization);
        for g in spec.groups {
            rdn(OID_OU, g);
        }
        rdn(OID_CN, spec.name);
    });
}

/// A leaf's extensions: basicConstraints, keyUsage, extendedKeyUsage, the key identifiers,
/// and the CRL distribution point and subjectAltName when it has them.
fn write_leaf_extensions(w: yasna::DERWriter, ca: &CaCert, spec: &LeafSpec<'_>, ski: &[u8]) {
    w.write_sequence(|w| {
        // basicConstraints: CA:FALSE (an empty SEQUENCE), critical.
        write_extension(
            w.next(),
            OID_BC,
            true,
            yasna::construct_der(|w| w.write_sequence(|_| {})),
        );
        // keyUsage: digitalSignature only, critical.
        write_extension(
            w.next(),
            OID_KU,
            true,
            yasna::construct_der(|w| w.write_bitvec_bytes(&[0x80], 1)),
        );
        write_extension(
            w.next(),
            OID_EKU,
            false,
            yasna::construct_der(|w| {
                w.write_sequence(|w| {
                    for e in spec.ekus {
                        w.next().write_oid(&oid(e.oid()));
                    }
                })
            }),
        );
        write_extension(
            w.next(),
            OID_SKI,
            false,
            yasna::construct_der(|w| w.write_bytes(ski)),
        );
        write_extension(
            w.next(),
            OID_AKI,
            false,
            yasna::construct_der(|w| {
                w.write_sequence(|w| {
                    w.next()
                        .write_tagged_implicit(Tag::context(0), |w| w.write_bytes(&ca.ski))
                })
            }),
        );
        if let Some(url) = spec.crl_url {
            // CRLDistributionPoints: one DistributionPoint whose name is the URL.
            write_extension(w.next(), OID_CRL_DP, false, crl_distribution_point(url));
        }
        if spec.email.is_some() || !spec.names.is_empty() {
            write_extension(w.next(), OID_SAN, false, subject_alt_name(spec));
        }
    })
}

/// The CRLDistributionPoints value naming `url`.
fn crl_distribution_point(url: &str) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next().write_tagged(Tag::context(0), |w| {
                    w.write_tagged_implicit(Tag::context(0), |w| {
                        w.write_sequence(|w| {
                            w.next()
                                .write_tagged_implicit(Tag::context(6), |w| w.write_ia5_string(url))
                        })
                    })
                })
            })
        })
    })
}

/// The subjectAltName value: the email (rfc822Name), then each DNS name or IP address.
fn subject_alt_name(spec: &LeafSpec<'_>) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            if let Some(email) = spec.email {
                w.next()
                    .write_tagged_implicit(Tag::context(1), |w| w.write_bytes(email.as_bytes()))
            }
            for n in spec.names {
                // dNSName [2] IA5String; iPAddress [7] OCTET STRING of
                // 4 or 16 octets (RFC 5280 4.2.1.6).
                match n {
                    crate::authority::server::San::Dns(d) => w
                        .next()
                        .write_tagged_implicit(Tag::context(2), |w| w.write_bytes(d.as_bytes())),
                    crate::authority::server::San::Ip(std::net::IpAddr::V4(a)) => w
                        .next()
                        .write_tagged_implicit(Tag::context(7), |w| w.write_bytes(&a.octets())),
                    crate::authority::server::San::Ip(std::net::IpAddr::V6(a)) => w
                        .next()
                        .write_tagged_implicit(Tag::context(7), |w| w.write_bytes(&a.octets())),
                }
            }
        })
    })
}

/// One entry of a CRL.
#[derive(Debug, Clone)]
pub struct CrlEntry {
    pub serial: Vec<u8>,
    pub revoked_at: OffsetDateTime,
    pub reason: RevocationReason,
}

/// Signs a CRL; returns its PEM.
pub fn sign_crl(
    ca: &CaCert,
    key: &CaKey,
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    entries: &[CrlEntry],
) -> Result<String> {
    let issuer = Issuer::from_ca_cert_der(&ca.der.clone().into(), key)
        .map_err(Error::crypto("CRL issuer"))?;
    let params = CertificateRevocationListParams {
        this_update: truncate(this_update),
        next_update: truncate(next_update),
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: entries
            .iter()
            .map(|e| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&e.serial),
                revocation_time: truncate(e.revoked_at),
                reason_code: Some(e.reason.to_rcgen()),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::PreSpecified(ca.ski.clone()),
    };
    let crl = params
        .signed_by(&issuer)
        .map_err(Error::crypto("CRL signing"))?;
    crl.pem().map_err(Error::crypto("CRL encoding"))
}

/// What reconcile and check need to know of the current CRL.
#[derive(Debug, Clone)]
pub struct CrlInfo {
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    /// Serials (lowercase hex) on the CRL.
    pub serials: Vec<String>,
}

impl CrlInfo {
    /// Parses a CRL; when `ca` is given, also verifies its signature against the CA.
    ///
    /// The DER is walked here (yasna) rather than by x509-parser, which materialises every
    /// entry's extensions: about 425 bytes per entry, 85 MB for a 200,000-entry CRL, more than
    /// gitca's whole memory budget allows for it. Only the fields gitca uses are read; the
    /// signature is checked over the TBSCertList's exact bytes.
    pub fn parse(pem_text: &str, ca: Option<&CaCert>) -> Result<CrlInfo> {
        let bad = |why: String| {
            Error::bad_file(
                "crl/ca.crl",
                why,
                "crl/ca.crl is written by gitca reconcile only; restore it from git history",
            )
        };
        let block = pem::parse(pem_text).map_err(|_| bad("not a PEM CRL".into()))?;
        if block.tag() != "X509 CRL" {
            return Err(bad(format!(
                "the PEM block is a `{}`, not an `X509 CRL`",
                block.tag()
            )));
        }
        let (tbs, signature) = yasna::parse_der(block.contents(), |r| {
            r.read_sequence(|r| {
                let tbs = r.next().read_der()?;
                r.next().read_der()?;
                let (sig, _) = r.next().read_bitvec_bytes()?;
                Ok((tbs, sig))
            })
        })
        .map_err(|e| bad(format!("not a CRL: {e}")))?;
        if let Some(ca) = ca {
            if !verify_with(&ca.spki_der, &tbs, &signature) {
                return Err(bad("its signature does not verify against ca/ca.crt".into()));
            }
        }
        let parsed = yasna::parse_der(&tbs, |r| {
            r.read_sequence(|r| {
                r.read_optional(|r| r.read_u8())?;
                r.next().read_der()?; // signature algorithm
                r.next().read_der()?; // issuer
                let this_update = read_time(r.next())?;
                let mut next_update = None;
                let mut serials = Vec::new();
                let mut number = None;
                while let Some(el) = r.read_optional(|r| r.read_tagged_der())? {
                    let value = el.value();
                    match (el.tag(), el.pcbit()) {
                        (t, _)
                            if t == yasna::tags::TAG_UTCTIME
                                || t == yasna::tags::TAG_GENERALIZEDTIME =>
                        {
                            next_update = Some(time_from(t, value)?);
                        }
                        (t, yasna::PCBit::Constructed) if t == yasna::tags::TAG_SEQUENCE => {
                            // revokedCertificates: SEQUENCE OF SEQUENCE { serial, date, ext? }
                            let list = yasna::construct_der(|w| w.write_tagged_der(&el));
                            yasna::parse_der(&list, |r| {
                                r.read_sequence_of(|r| {
                                    r.read_sequence(|r| {
                                        let (serial, _) = r.next().read_bigint_bytes()?;
                                        r.next().read_der()?;
                                        r.read_optional(|r| r.read_der())?;
                                        serials.push(serial_hex(&serial));
                                        Ok(())
                                    })
                                })
                            })?;
                        }
                        (t, _) if t == yasna::Tag::context(0) => {
                            number = crl_number(value)?;
                        }
                        _ => return Err(yasna::ASN1Error::new(yasna::ASN1ErrorKind::Invalid)),
                    }
                }
                Ok((this_update, next_update, serials, number))
            })
        })
        .map_err(|e| bad(format!("not a CRL: {e}")))?;
        let (this_update, next_update, serials, number) = parsed;
        Ok(CrlInfo {
            number: number.ok_or_else(|| bad("it has no CRL number".into()))?,
            this_update,
            next_update,
            serials,
        })
    }
}

/// A Time (UTCTime or GeneralizedTime).
fn read_time(r: yasna::BERReader<'_, '_>) -> yasna::ASN1Result<OffsetDateTime> {
    let el = r.read_tagged_der()?;
    time_from(el.tag(), el.value())
}

fn time_from(tag: yasna::Tag, value: &[u8]) -> yasna::ASN1Result<OffsetDateTime> {
    let der = yasna::construct_der(|w| {
        w.write_tagged_der(&yasna::models::TaggedDerValue::from_tag_and_bytes(
            tag,
            value.to_vec(),
        ))
    });
    if tag == yasna::tags::TAG_UTCTIME {
        yasna::parse_der(&der, |r| r.read_utctime()).map(|t| *t.datetime())
    } else if tag == yasna::tags::TAG_GENERALIZEDTIME {
        yasna::parse_der(&der, |r| r.read_generalized_time()).map(|t| *t.datetime())
    } else {
        Err(yasna::ASN1Error::new(yasna::ASN1ErrorKind::Invalid))
    }
}

/// The CRL number in `[0] EXPLICIT Extensions`, if it is there and fits a u64.
fn crl_number(explicit: &[u8]) -> yasna::ASN1Result<Option<u64>> {
    let oid = yasna::models::ObjectIdentifier::from_slice(&[2, 5, 29, 20]);
    yasna::parse_der(explicit, |r| {
        let mut number = None;
        r.read_sequence_of(|r| {
            r.read_sequence(|r| {
                let id = r.next().read_oid()?;
                r.read_optional(|r| r.read_bool())?;
                let value = r.next().read_bytes()?;
                if id == oid {
                    let (n, positive) = yasna::parse_der(&value, |r| r.read_bigint_bytes())?;
                    let n = n
                        .iter()
                        .skip_while(|&&b| b == 0)
                        .copied()
                        .collect::<Vec<_>>();
                    if positive && n.len() <= 8 {
                        number = Some(n.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)));
                    }
                }
                Ok(())
            })
        })?;
        Ok(number)
    })
}

/// Canonical lowercase hex of a serial: no leading zero octets.
pub fn serial_hex(raw: &[u8]) -> String {
    let first = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex::encode(&raw[first..])
}

/// Checks that `ca` is a CA certificate whose signature verifies under `issuer_spki` (its own
/// key for a self-signed root): a certificate with the real public key but a forged subject or
/// validity has no valid signature, since only the key's holder can make one.
pub fn verify_ca_signature(ca: &CaCert, issuer_spki: &[u8]) -> Result<()> {
    let bad = |why: &str| {
        Error::bad_file(
            "ca/ca.crt",
            format!("not the CA certificate: {why}"),
            "ca/ca.crt was replaced by hand; restore it from git history (git log -- ca/ca.crt)",
        )
    };
    let (_, cert) = x509_parser::parse_x509_certificate(&ca.der).map_err(|_| bad("not X.509"))?;
    let (_, issuer) = x509_parser::x509::SubjectPublicKeyInfo::from_der(issuer_spki)
        .map_err(|_| bad("the issuer key cannot be read"))?;
    cert.verify_signature(Some(&issuer))
        .map_err(|_| bad("its signature does not verify"))?;
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|b| b.value.ca);
    if !is_ca {
        return Err(bad(
            "it is not a CA certificate (basicConstraints CA:FALSE)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::keygen::KeyType;

    #[test]
    fn a_new_certificate_never_starts_before_the_one_it_follows() {
        let t = |s: &str| crate::time::parse_time(s).unwrap();
        let ca = (t("2026-03-01T11:50:00Z"), t("2036-03-01T11:50:00Z"));
        let now = t("2026-03-01T12:30:00Z");
        let year = time::Duration::days(365);
        assert_eq!(validity_window(now, year, ca, None).0, ca.0);
        let after = t("2026-03-01T11:55:00Z");
        assert_eq!(
            validity_window(now, year, ca, Some(after)).0,
            t("2026-03-01T11:55:01Z")
        );
        // Never after now, whatever the other certificate claims.
        let future = t("2026-04-01T00:00:00Z");
        assert_eq!(validity_window(now, year, ca, Some(future)).0, now);
        // Otherwise backdated by the hour, as before.
        let later = t("2026-06-01T00:00:00Z");
        assert_eq!(
            validity_window(later, year, ca, Some(after)).0,
            later - BACKDATE
        );
    }

    /// The hand-walked CRL reader agrees with x509-parser on what gitca signs.
    #[test]
    fn crl_summary_agrees_with_x509_parser() {
        let key = CaKey::new(KeyType::P256.generate().unwrap());
        let t = crate::time::parse_time("2026-01-01T00:00:00Z").unwrap();
        let ca =
            CaCert::parse(&self_signed("T", "O", &key, t, time::Duration::days(3650)).unwrap())
                .unwrap();
        let entries: Vec<CrlEntry> = (0..300u32)
            .map(|i| CrlEntry {
                serial: [&[0x80u8, 0, 0][..], &i.to_be_bytes()].concat(),
                revoked_at: t,
                reason: RevocationReason::ALL[i as usize % 6],
            })
            .collect();
        for (number, entries) in [
            (1u64, &entries[..0]),
            (0x1001, &entries[..]),
            (u64::MAX, &entries[..1]),
        ] {
            let pem = sign_crl(&ca, &key, number, t, t + time::Duration::days(7), entries).unwrap();
            let ours = CrlInfo::parse(&pem, Some(&ca)).unwrap();
            let block = pem::parse(&pem).unwrap();
            let (_, theirs) = x509_parser::parse_x509_crl(block.contents()).unwrap();
            assert_eq!(ours.number, number);
            assert_eq!(ours.this_update, theirs.last_update().to_datetime());
            assert_eq!(
                ours.next_update,
                theirs.next_update().map(|t| t.to_datetime())
            );
            let serials: Vec<String> = theirs
                .iter_revoked_certificates()
                .map(|r| serial_hex(r.raw_serial()))
                .collect();
            assert_eq!(ours.serials, serials);
        }
        // Signed by another key: refused.
        let other = CaKey::new(KeyType::P256.generate().unwrap());
        let forged = sign_crl(&ca, &other, 2, t, t + time::Duration::days(7), &[]);
        if let Ok(pem) = forged {
            assert!(CrlInfo::parse(&pem, Some(&ca)).is_err());
        }
    }
}
