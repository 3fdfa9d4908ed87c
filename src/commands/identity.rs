//! `gitca identity …`: edit one identity's entry in place (revoke, reinstate, offboard), then
//! show the plan that follows.

use std::io::Write;

use super::Context;
use crate::error::Result;
use crate::reconcile::review::{self, PlanFormat};
use crate::repository::entry::{self, Edit};
use crate::repository::git::CaRepo;

// Its about line and examples are on `cli::Command::Identity`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Revoke every unexpired certificate of NAME: sets `revoke: REASON` in its entry, in
    /// whichever identities file declares it. Nothing is issued to NAME while it stays.
    #[command(
        after_help = "Example (a stolen laptop):\n  gitca identity revoke robert --reason key-compromise\n  git commit -am \"robert's key is compromised\"\n\nREASON: key-compromise (the key is barred for good), affiliation-changed, superseded,\ncessation-of-operation, privilege-withdrawn, unspecified."
    )]
    Revoke {
        /// The identity.
        name: String,
        /// The RFC 5280 reason.
        #[arg(long, value_name = "REASON")]
        reason: String,
    },
    /// Lift `revoke:` and `disabled:` from NAME's entry, so it is issued a certificate again
    /// (for its current CSR; keys revoked for compromise stay barred).
    #[command(
        after_help = "Example (after a compromise, with the new key's CSR in place):\n  gitca request robert --rotate\n  gitca identity reinstate robert\n  git add -A identities csr && git commit -m \"robert: new key\""
    )]
    Reinstate {
        /// The identity.
        name: String,
    },
    /// Offboard NAME: remove its entry (and its CSR; its file when nothing else is declared
    /// there). Reconcile then revokes every unexpired certificate it has.
    #[command(
        after_help = "Example:\n  gitca identity offboard carol\n  git add -A identities csr && git commit -m \"offboard carol\""
    )]
    Offboard {
        /// The identity.
        name: String,
    },
}

impl Command {
    /// The identity's name and the edit asked for.
    fn edit(self) -> (String, Edit) {
        match self {
            Command::Revoke { name, reason } => (name, Edit::Revoke { reason }),
            Command::Reinstate { name } => (name, Edit::Reinstate),
            Command::Offboard { name } => (name, Edit::Offboard),
        }
    }
}

/// The top-level entry point for `gitca identity`.
pub fn run(ctx: &Context, cmd: Command, out: &mut dyn Write) -> Result<u8> {
    let (name, edit) = cmd.edit();
    let repo = CaRepo::open(&ctx.dir)?;
    let found = entry::find(&repo, &name)?;
    let edited = entry::edit(&found, &edit)?;
    // Checked with the loader reconcile uses before anything is written.
    entry::check_edit(&found, &edited, &edit)?;
    let removal = entry::removal(&repo, &found, &edit, &edited);
    entry::write_edit(&repo, &found, &edited, &removal)?;
    entry::report_edit(&found, &edited, &removal, out);
    review::run_plan(&ctx.dir, ctx.now, PlanFormat::Human, false, None, out)?;
    Ok(0)
}
