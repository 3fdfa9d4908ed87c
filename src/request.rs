//! `gitca request`: the person's side of onboarding.
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    pub name: String,
}

pub fn run_request(_dir: &Path, _args: &RequestArgs, _out: &mut dyn Write) -> Result<()> {
    Err(Error::usage("not yet", ""))
}
