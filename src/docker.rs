//! Docker registry side.
use std::io::Write;
use std::path::Path;

use time::OffsetDateTime;

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    pub name: String,
}
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}
#[derive(Debug, clap::Args)]
pub struct ExportArgs {}

pub fn run_bundle(
    _dir: &Path,
    _now: OffsetDateTime,
    _args: &BundleArgs,
    _out: &mut dyn Write,
) -> Result<()> {
    Err(Error::usage("not yet", ""))
}
pub fn run_doctor(
    _dir: &Path,
    _now: OffsetDateTime,
    _args: &DoctorArgs,
    _out: &mut dyn Write,
) -> Result<u8> {
    Err(Error::usage("not yet", ""))
}
pub fn run_export(_dir: &Path, _args: &ExportArgs, _out: &mut dyn Write) -> Result<()> {
    Err(Error::usage("not yet", ""))
}
