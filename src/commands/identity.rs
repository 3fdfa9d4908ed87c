//! `gitca identity …`: edit one identity's entry in place (revoke, reinstate, offboard), then
//! show the plan that follows.

use std::io::Write;

use super::Context;
use crate::error::Result;
pub use crate::repository::entry::IdentityCommand as Command;

pub fn run(ctx: &Context, cmd: Command, out: &mut dyn Write) -> Result<u8> {
    crate::repository::entry::run_identity(&ctx.dir, ctx.now, &cmd, out)
}
