//! One module per command: its arguments and a `run` function that tells the command's story,
//! delegating to the core (`repository`, `authority`, `reconcile`, `relying`, `output`). The
//! core never imports from here; `cli` maps each subcommand to its module.

use std::path::PathBuf;

use time::OffsetDateTime;

pub mod audit;
pub mod bundle;
pub mod ca;
pub mod check;
pub mod deploy;
pub mod doctor;
pub mod export;
pub mod identity;
pub mod import;
pub mod init;
pub mod keys;
pub mod manual;
pub mod plan;
pub mod publish;
pub mod reconcile;
pub mod rekey;
pub mod request;
pub mod root;
pub mod status;

/// What every command gets from the global flags.
#[derive(Debug, Clone)]
pub struct Context {
    /// The CA repository (`-C`; default: the current directory).
    pub dir: PathBuf,
    /// The clock: `--now`/GITCA_NOW, else the system time when the command started.
    pub now: OffsetDateTime,
    /// The clock when it was fixed by `--now`: long-running commands (deploy --watch) read the
    /// system time each round unless it was.
    pub fixed_now: Option<OffsetDateTime>,
    /// `--quiet`: nothing but errors (and the lines a cron job must show).
    pub quiet: bool,
}
