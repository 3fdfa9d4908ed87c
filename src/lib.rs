//! gitca: a private certificate authority run as a git repository.
//!
//! Data flows one way: `load` (config, identities, ledger, CSR digests; no crypto) → `plan`
//! (pure) → `apply` (unlock the CA key, sign, write atomically) → `repo` (one git commit).
//! Each subcommand is one `run_<command>` function, callable from tests without a process.
//!
//! Nothing here prints with `print!`/`eprint!`: stdout goes through the writer each command is
//! given, stderr through [`redact::stderr`], so that every line passes the redactor and the
//! terminal encoder (invariants 11 and 15). Clippy enforces it.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod admission;
pub mod apply;
pub mod audit;
pub mod bundle;
pub mod ca;
pub mod ceremony;
pub mod chain;
pub mod check;
pub mod cli;
pub mod config;
pub mod confined;
pub mod custody;
pub mod deploy;
pub mod doctor;
pub mod encode;
pub mod entry;
pub mod error;
pub mod export;
pub mod floors;
pub mod fuzzing;
pub mod hierarchy;
pub mod history;
pub mod import;
pub mod init;
pub mod inventory;
pub mod issued;
pub mod keyscan;
pub mod ledger;
pub mod load;
pub mod plan;
pub mod policy;
pub mod program;
pub mod pubkey;
pub mod publish;
pub mod recipients;
pub mod redact;
pub mod repo;
pub mod report;
pub mod request;
pub mod seal;
pub mod server;
pub mod signer;
pub mod source;
pub mod status;
pub mod subject;
pub mod token;
pub mod yaml;

pub use error::{Error, Result};
