//! The key types gitca generates keys of (`--key-type`): the CA's, a root's, a token's and a
//! client's.

use std::str::FromStr;

use rcgen::KeyPair;

use crate::error::{Error, Result};

/// A key algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    P256,
    P384,
    Rsa3072,
    Rsa4096,
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<KeyType> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "p256" | "ecdsap256" | "ec256" => Ok(KeyType::P256),
            "p384" | "ecdsap384" | "ec384" => Ok(KeyType::P384),
            "rsa3072" => Ok(KeyType::Rsa3072),
            "rsa4096" => Ok(KeyType::Rsa4096),
            _ => Err(Error::UnknownKeyType {
                given: s.to_string(),
            }),
        }
    }
}

impl KeyType {
    pub fn generate(self) -> Result<KeyPair> {
        let key = match self {
            KeyType::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyType::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyType::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
            }
            KeyType::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
            }
        };
        key.map_err(Error::crypto("key generation"))
    }
}
