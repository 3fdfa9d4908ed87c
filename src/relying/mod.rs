//! The relying party's side: `publish` writes what servers need, `deploy` installs it, from
//! sources (a path, a URL, git), `bundle` and `doctor` for clients, `export` for server configs,
//! and admission by record.

pub mod admission;
pub mod bundle;
pub mod deploy;
pub mod doctor;
pub mod export;
pub mod program;
pub mod publish;
pub mod source;
pub mod watch;
