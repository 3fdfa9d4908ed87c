//! `gitca doctor`: explain why a client certificate (or a server) would be refused, and how to
//! fix it.

use std::io::Write;

use super::Context;
use crate::error::Result;
pub use crate::relying::doctor::DoctorArgs as Args;

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    crate::relying::doctor::run_doctor(&ctx.dir, ctx.now, &args, out)
}
