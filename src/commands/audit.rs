//! `gitca audit`: prove, offline, that history issued only what review approved.

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::error::Result;
use crate::repository::audit::run_audit;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    json: bool,
    /// The allowed signers you trust, kept apart from the repository (a copy of
    /// ca/allowed_signers from when you last checked): the history's first signers file
    /// must be signed by one of them. Without it the first file vouches for itself.
    #[arg(long, value_name = "FILE")]
    signers: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    run_audit(&ctx.dir, args.json, args.signers.as_deref(), out)
}
