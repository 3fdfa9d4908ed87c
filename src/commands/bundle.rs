//! `gitca bundle`: write Docker/Podman certs.d files for one identity.

use std::io::Write;

use super::Context;
use crate::error::Result;
pub use crate::relying::bundle::BundleArgs as Args;

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    crate::relying::bundle::run_bundle(&ctx.dir, ctx.now, &args, out)?;
    Ok(0)
}
