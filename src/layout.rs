//! The CA repository's layout: where each file gitca reads and writes lives, relative to the
//! repository root (docs/formats.md describes what is in each).
//!
//! ```text
//! gitca.yaml              the configuration
//! ledger.tsv, ledger.sig  every certificate ever issued, and the CA's seal over it
//! ca/ca.crt, ca/ca.key.age, ca/recipients.txt, crl/ca.crl
//!                         the issuing CA (the intermediate, below an offline root)
//! ca/root.crt, ca/root.key.age, ca/root-recipients.txt, ca/intermediates.tsv, crl/root.crl
//!                         the offline root, its custodians, its roster and its CRL
//! ca/previous.crt, ca/previous.key.age, crl/previous.crl
//!                         the intermediate being retired after a planned rotation
//! certs/NAME.crt          each identity's current certificate
//! ```
//!
//! Names only: this module reads nothing and imports nothing, so that every layer can name a
//! file without depending on the module that reads or writes it.

/// The configuration.
pub const CONFIG_FILE: &str = "gitca.yaml";
/// Every certificate this CA ever issued (see `repository::ledger`).
pub const LEDGER_FILE: &str = "ledger.tsv";
/// The CA's signature over the ledger and its CRLs (see `repository::seal`).
pub const SEAL_FILE: &str = "ledger.sig";

/// The issuing CA's certificate.
pub const CA_CERT: &str = "ca/ca.crt";
/// The issuing CA's key, age-encrypted.
pub const KEY_FILE: &str = "ca/ca.key.age";
/// Who can decrypt the issuing CA's key.
pub const RECIPIENTS_FILE: &str = "ca/recipients.txt";
/// The issuing CA's CRL.
pub const CRL_FILE: &str = "crl/ca.crl";

/// The offline root's certificate (the anchor servers and clients pin).
pub const ROOT_CERT: &str = "ca/root.crt";
/// The root key, age-encrypted to the root custodians only.
pub const ROOT_KEY: &str = "ca/root.key.age";
/// Who the root custodians are.
pub const ROOT_RECIPIENTS: &str = "ca/root-recipients.txt";
/// The root's CRL: revoked intermediates.
pub const ROOT_CRL: &str = "crl/root.crl";
/// Every intermediate the root certified (the root's ledger).
pub const ROSTER: &str = "ca/intermediates.tsv";

/// The intermediate being retired after a planned rotation: its certificate, key and CRL.
pub const PREVIOUS_CERT: &str = "ca/previous.crt";
pub const PREVIOUS_KEY: &str = "ca/previous.key.age";
pub const PREVIOUS_CRL: &str = "crl/previous.crl";

/// Where an identity's current certificate is written.
pub fn cert_path(name: &str) -> String {
    format!("certs/{name}.crt")
}

/// The files of a published tree (`gitca publish`), relative to its root: what relying
/// parties fetch.
pub mod published {
    /// The manifest.
    pub const INDEX: &str = "index.json";
    pub const CA_CRT: &str = "ca.crt";
    pub const CRL_DER: &str = "ca.crl";
    pub const CRL_PEM: &str = "ca.crl.pem";
    /// Every CRL of the chain, with the intermediates, in one PEM file.
    pub const CRLS: &str = "crls.pem";
    pub const ROOT_CRT: &str = "root.crt";
    pub const ROOT_CRL_DER: &str = "root.crl";
    pub const ROOT_CRL_PEM: &str = "root.crl.pem";
}
