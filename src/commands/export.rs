//! `gitca export …`: server-side configuration — nginx (which enforces the CRL and the
//! admission list) or the registry's own TLS.

use std::io::Write;

use super::Context;
use crate::error::Result;
pub use crate::relying::export::ExportCommand as Command;

pub fn run(ctx: &Context, cmd: Command, out: &mut dyn Write) -> Result<u8> {
    crate::relying::export::run_export(&ctx.dir, &cmd, out)?;
    Ok(0)
}
