//! `gitca request`: the person's side — make a key (kept outside the repository) and add a CSR
//! and an identity entry.

use std::io::Write;

use super::Context;
use crate::error::Result;
pub use crate::repository::request::RequestArgs as Args;

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    crate::repository::request::run_request(&ctx.dir, &args, out)?;
    Ok(0)
}
