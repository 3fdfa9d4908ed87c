//! `gitca import-openssl`: adopt a CA built with the classic `openssl ca` recipe (index.txt,
//! newcerts/, private/), keeping its certificate and key.

use std::io::Write;
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::keys::{custody_from_args, CustodyArgs};
use super::Context;
use crate::authority::import::{run_import, ImportOptions};
use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The openssl CA directory (holding index.txt).
    source: PathBuf,
    /// The CA certificate (default: the one self-signed CA certificate in DIR or DIR/certs).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// The CA key (default: the one file in DIR/private); its passphrase comes from
    /// GITCA_IMPORT_PASSPHRASE or the terminal.
    #[arg(long, value_name = "FILE")]
    ca_key: Option<PathBuf>,
    #[command(flatten)]
    custody: CustodyArgs,
}

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    let custody = custody_from_args(&args.custody)?;
    run_import(
        ImportOptions {
            source: args.source,
            dir: ctx.dir.clone(),
            ca_cert: args.ca_cert,
            ca_key: args.ca_key,
            passphrase: openssl_passphrase()?,
            custody,
            now: ctx.now,
        },
        out,
    )?;
    Ok(0)
}

/// The openssl CA key's passphrase: GITCA_IMPORT_PASSPHRASE, else asked on a terminal, else
/// none (an unencrypted key).
fn openssl_passphrase() -> Result<Option<Zeroizing<String>>> {
    match std::env::var("GITCA_IMPORT_PASSPHRASE") {
        Ok(p) => Ok(Some(Zeroizing::new(p))),
        Err(_) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => Ok(Some(Zeroizing::new(
            rpassword::prompt_password("Passphrase of the openssl CA key: ")
                .map_err(|_| Error::NoPassphrase)?,
        ))),
        Err(_) => Ok(None),
    }
}
