//! `gitca bundle`: write Docker/Podman certs.d files for one identity.

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::error::Result;
use crate::relying::bundle::{BundleOptions, TargetArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The identity whose certificate to install.
    name: String,
    /// The identity's private key (PEM, unencrypted; `gitca request` wrote it).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    /// Write a PKCS#12 file (browsers, OS keychains) instead: password from GITCA_P12_PASSWORD
    /// or asked twice on the terminal, never empty.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["registry", "out_dir"])]
    p12: Option<PathBuf>,
    /// With --p12: the legacy flavour (3DES and SHA-1 MAC) for old macOS and Windows.
    #[arg(long, requires = "p12")]
    legacy: bool,
}

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    let options = BundleOptions {
        name: args.name,
        key: args.key,
        target: args.target,
        p12: args.p12,
        legacy: args.legacy,
    };
    crate::relying::bundle::run_bundle(&ctx.dir, ctx.now, &options, out)?;
    Ok(0)
}
