//! `gitca publish`: write the CA's public outputs as a static tree for a web server, an object
//! store or Pages.

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::error::Result;
use crate::relying::publish::run_publish;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to write (outside the CA repository).
    #[arg(value_name = "DIR")]
    target: PathBuf,
}

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    run_publish(&ctx.dir, &args.target, ctx.now, out)?;
    Ok(0)
}
