//! The certificate authority: keys and signing, CRLs, public keys, chains, the hierarchy of an
//! offline root, key custody (age or a PKCS#11 token), and the root ceremonies.

pub mod ca;
pub mod ceremony;
pub mod chain;
pub mod custody;
pub mod floors;
pub mod hierarchy;
pub mod import;
pub mod init;
pub mod issued;
pub mod keygen;
pub mod pubkey;
pub mod revocation;
pub mod server;
pub mod subject;
pub mod token;
