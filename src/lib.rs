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

pub mod authority;
pub mod cli;
pub mod commands;
pub mod error;
pub mod layout;
pub mod output;
pub mod reconcile;
pub mod relying;
pub mod repository;
pub mod time;

pub use error::{Error, Result};
