//! `gitca check`: everything a reviewer needs to know is wrong, without the CA key.

use std::io::Write;

use super::Context;
use crate::error::Result;
use crate::reconcile::review::run_check;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Compare with this revision and flag what a pull request must not change by hand.
    #[arg(long, value_name = "REV")]
    base: Option<String>,
}

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    run_check(&ctx.dir, ctx.now, args.json, args.base.as_deref(), out)
}
