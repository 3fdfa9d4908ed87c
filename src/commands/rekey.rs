//! `gitca rekey`: re-encrypt the CA key (or the offline root's) for a new set of custodians and
//! commit; the key itself stays.

use std::io::Write;

use super::keys::{custody_from_args, read_new_passphrase, CustodyArgs, IdentityArg};
use super::Context;
use crate::authority::custody::{self, Custody};
use crate::authority::hierarchy::ROOT_VAULT;
use crate::authority::init::{run_rekey, Rekey};
use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    identity: IdentityArg,
    #[command(flatten)]
    custody: CustodyArgs,
    /// Add a recipient to those the key is encrypted to now. Repeatable.
    #[arg(long, value_name = "RECIPIENT", conflicts_with_all = ["recipients", "recipients_file", "passphrase"])]
    add: Vec<String>,
    /// Remove a recipient from those the key is encrypted to now. Repeatable.
    #[arg(long, value_name = "RECIPIENT", conflicts_with_all = ["recipients", "recipients_file", "passphrase"])]
    remove: Vec<String>,
    /// Rekey the offline root's key (ca/root.key.age) instead of the CA key.
    #[arg(long)]
    root: bool,
}

/// Works out the change (added and removed recipients, or a whole new set), then re-encrypts.
pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    let change = if !args.add.is_empty() || !args.remove.is_empty() {
        Rekey::Change {
            add: args.add,
            remove: args.remove,
        }
    } else if args.custody.passphrase {
        if args.root {
            return Err(Error::usage(
                "the root key is for its custodians' age identities",
                "pass them with -r age1… (or --add/--remove)",
            ));
        }
        Rekey::To(Custody::Passphrase(read_new_passphrase()?))
    } else {
        Rekey::To(custody_from_args(&args.custody)?)
    };
    let vault = if args.root {
        ROOT_VAULT
    } else {
        custody::ISSUING
    };
    run_rekey(&ctx.dir, &args.identity.key_source(), &vault, change, out)?;
    Ok(0)
}
