//! `gitca ca …`: operations on the CA itself.

use std::io::Write;

use super::keys::IdentityArg;
use super::Context;
use crate::authority::init::run_ca_verify;
use crate::error::Result;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Decrypt the CA key in memory, check it matches ca/ca.crt, print its fingerprint.
    Verify {
        #[command(flatten)]
        identity: IdentityArg,
    },
}

pub fn run(ctx: &Context, cmd: Command, out: &mut dyn Write) -> Result<u8> {
    match cmd {
        Command::Verify { identity } => run_ca_verify(&ctx.dir, &identity.key_source(), out)?,
    }
    Ok(0)
}
