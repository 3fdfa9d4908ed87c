//! `gitca root …`: the root custodians' ceremonies on a CA with an offline root (see
//! [`crate::authority::ceremony`], which does the work).

use std::io::Write;
use std::path::PathBuf;

use super::keys::IdentityArg;
use super::Context;
use crate::authority::ceremony::{migrate, new_intermediate, sign_crl, Rotation};
use crate::authority::custody::{self, KeySource};
use crate::authority::revocation::RevocationReason;
use crate::error::{Error, Result};
use crate::repository::config::Dur;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Re-sign the root CRL (a ceremony, with a root custodian's identity): due every
    /// root.crl_validity, and after revocations the root must publish.
    #[command(
        after_help = "Example (a custodian, once a year or when `gitca status` says it is due):\n  gitca root sign-crl --identity ~/custodian.agekey && git push"
    )]
    SignCrl {
        #[command(flatten)]
        identity: IdentityArg,
    },
    /// Make a new issuing intermediate (a ceremony): after a compromise of CI
    /// (--revoke-current key-compromise), or before the current one expires.
    #[command(
        after_help = "Example (CI's identity leaked):\n  age-keygen -o ci-new.agekey    # CI's new identity: its text becomes the CI secret\n  gitca root new-intermediate --revoke-current key-compromise --identity ~/custodian.agekey \\\n      --recipient \"$(age-keygen -y ci-new.agekey)\"\n  git push   # then reconcile (with the new identity) re-issues every certificate under the new intermediate"
    )]
    NewIntermediate {
        #[command(flatten)]
        identity: IdentityArg,
        /// Revoke the current intermediate on the root CRL (key-compromise, superseded,
        /// cessation-of-operation, …): every certificate it signed stops working at once.
        /// Without it, the current one retires: its certificates stay valid until reconcile
        /// has replaced them and the grace period is over.
        #[arg(long, value_name = "REASON")]
        revoke_current: Option<String>,
        /// Revoke the retiring intermediate of an earlier rotation (required while one is
        /// still retiring: only one retires at a time).
        #[arg(long, value_name = "REASON")]
        revoke_previous: Option<String>,
        /// Lifetime of the new intermediate.
        #[arg(long, default_value = "5y", value_name = "DURATION")]
        validity: String,
        /// With --revoke-current: encrypt the new intermediate's key to this recipient (CI's
        /// new age identity) instead of ca/recipients.txt, whose CI identity may have leaked;
        /// the root custodians are always added. Repeatable.
        #[arg(long = "recipient", value_name = "RECIPIENT")]
        recipients: Vec<String>,
        /// Confirm a recipient that ca/recipients.txt or ca/root-recipients.txt lists but the
        /// key holders did not sign (added since). Repeatable. See docs/custody.md.
        #[arg(long = "accept-recipient", value_name = "RECIPIENT")]
        accept: Vec<String>,
    },
    /// Move a single-level CA to an offline root (a ceremony, with an identity that decrypts
    /// the CA key): the CA becomes the root, encrypted to the root custodians only, and a new
    /// intermediate becomes the issuing CA.
    #[command(
        after_help = "Example:\n  gitca root migrate --identity ~/custodian.agekey --root-recipient age1alice… --root-recipient age1bob…\n\nThe CA key stays in git history encrypted to everyone who could decrypt it before (CI too):\nsee docs/offline-root.md, \"Migrating a CA\"."
    )]
    Migrate {
        #[command(flatten)]
        identity: IdentityArg,
        /// A root custodian's age (age1…) or SSH public key. Repeatable.
        #[arg(long = "root-recipient", value_name = "RECIPIENT")]
        root_recipients: Vec<String>,
        /// Root custodians listed in FILE.
        #[arg(long, value_name = "FILE")]
        root_recipients_file: Vec<PathBuf>,
        /// Lifetime of the new intermediate.
        #[arg(long, default_value = "5y", value_name = "DURATION")]
        intermediate_validity: String,
        /// Confirm a recipient that ca/recipients.txt lists but the CA key did not sign (added
        /// since). Repeatable.
        #[arg(long = "accept-recipient", value_name = "RECIPIENT")]
        accept: Vec<String>,
    },
}

/// Runs a `gitca root …` command.
pub fn run(ctx: &Context, cmd: Command, out: &mut dyn Write) -> Result<u8> {
    let (dir, now) = (ctx.dir.as_path(), ctx.now);
    match cmd {
        Command::SignCrl { identity } => {
            sign_crl(dir, now, &KeySource::from_env(identity.identity), out)
        }
        Command::NewIntermediate {
            identity,
            revoke_current,
            revoke_previous,
            validity,
            recipients,
            accept,
        } => new_intermediate(
            dir,
            now,
            &KeySource::from_env(identity.identity),
            Rotation {
                revoke_current: revoke_current.as_deref().map(reason).transpose()?,
                revoke_previous: revoke_previous.as_deref().map(reason).transpose()?,
                validity: Dur::parse(&validity)?,
                recipients,
                accept,
            },
            out,
        ),
        Command::Migrate {
            identity,
            root_recipients,
            root_recipients_file,
            intermediate_validity,
            accept,
        } => {
            let mut custodians = root_recipients;
            for f in &root_recipients_file {
                custodians.extend(custody::read_recipients_file(f)?);
            }
            migrate(
                dir,
                now,
                &KeySource::from_env(identity.identity),
                &custodians,
                &accept,
                Dur::parse(&intermediate_validity)?,
                out,
            )
        }
    }?;
    Ok(0)
}

fn reason(text: &str) -> Result<RevocationReason> {
    RevocationReason::parse(text).ok_or_else(|| {
        Error::usage(
            format!("`{text}` is not a revocation reason"),
            format!(
                "one of: {}",
                RevocationReason::ALL.map(|r| r.as_str()).join(", ")
            ),
        )
    })
}
