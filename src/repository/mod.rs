//! The CA repository: confined file I/O, git, the ledger, the seal, gitca.yaml, the identity
//! files, and `load`, which reads them all into one state without any cryptography.

pub mod audit;
pub mod config;
pub mod confined;
pub mod entry;
pub mod git;
pub mod history;
pub mod index;
pub mod inventory;
pub mod ledger;
pub mod load;
pub mod recipients;
pub mod request;
pub mod seal;
pub mod signer;
pub mod yaml;
