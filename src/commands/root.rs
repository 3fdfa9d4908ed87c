//! `gitca root …`: the root custodians' ceremonies on a CA with an offline root (see
//! [`crate::authority::ceremony`], which does the work).

use std::io::Write;
use std::path::PathBuf;

use super::keys::IdentityArg;
use super::Context;
use crate::authority::ceremony::{
    migrate, new_intermediate, sign_crl, Migration, NewTokenKey, Rotation,
};
use crate::authority::custody;
use crate::authority::revocation::RevocationReason;
use crate::authority::token::Pkcs11Uri;
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
        /// Keep the new intermediate's key in a PKCS#11 token instead of age: the RFC 7512 URI
        /// of the token and key, e.g. `pkcs11:token=ci-hsm;object=issuing-2`. Moves custody
        /// from age to a token, or from one token to another (docs/custody.md). Adopts the key
        /// it names, or makes one with --pkcs11-generate. Module: --pkcs11-module; PIN:
        /// GITCA_PKCS11_PIN, else asked.
        #[arg(long, value_name = "URI", conflicts_with = "recipients")]
        pkcs11: Option<String>,
        /// Generate the new intermediate's key in the token (sensitive, never extractable)
        /// instead of adopting one.
        #[arg(long, requires = "pkcs11")]
        pkcs11_generate: bool,
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
        /// When the CA key is in a PKCS#11 token (it stays there, as the root key): CI's age
        /// recipient for the first intermediate's key. Repeatable.
        #[arg(long = "recipient", value_name = "RECIPIENT")]
        recipients: Vec<String>,
        /// Keep the first intermediate's key in a PKCS#11 token instead of age (the RFC 7512
        /// URI of the token and key); adopts the key it names, or makes one with
        /// --pkcs11-generate.
        #[arg(long, value_name = "URI", conflicts_with = "recipients")]
        pkcs11: Option<String>,
        /// Generate the first intermediate's key in the token (sensitive, never extractable).
        #[arg(long, requires = "pkcs11")]
        pkcs11_generate: bool,
    },
}

/// Runs a `gitca root …` command.
pub fn run(ctx: &Context, cmd: Command, out: &mut dyn Write) -> Result<u8> {
    let (dir, now) = (ctx.dir.as_path(), ctx.now);
    match cmd {
        Command::SignCrl { identity } => sign_crl(dir, now, &identity.key_source(), out),
        Command::NewIntermediate {
            identity,
            revoke_current,
            revoke_previous,
            validity,
            recipients,
            accept,
            pkcs11,
            pkcs11_generate,
        } => new_intermediate(
            dir,
            now,
            &identity.key_source(),
            Rotation {
                revoke_current: revoke_current.as_deref().map(reason).transpose()?,
                revoke_previous: revoke_previous.as_deref().map(reason).transpose()?,
                validity: Dur::parse(&validity)?,
                recipients,
                accept,
                token: new_token_key(pkcs11, pkcs11_generate)?,
            },
            out,
        ),
        Command::Migrate {
            identity,
            root_recipients,
            root_recipients_file,
            intermediate_validity,
            accept,
            recipients,
            pkcs11,
            pkcs11_generate,
        } => {
            let mut custodians = root_recipients;
            for f in &root_recipients_file {
                custodians.extend(custody::read_recipients_file(f)?);
            }
            migrate(
                dir,
                now,
                &identity.key_source(),
                &Migration {
                    custodians,
                    accept,
                    validity: Dur::parse(&intermediate_validity)?,
                    recipients,
                    token: new_token_key(pkcs11, pkcs11_generate)?,
                },
                out,
            )
        }
    }?;
    Ok(0)
}

/// `--pkcs11 URI [--pkcs11-generate]`: the new intermediate's key in a token.
fn new_token_key(uri: Option<String>, generate: bool) -> Result<Option<NewTokenKey>> {
    uri.map(|uri| {
        Ok(NewTokenKey {
            uri: Pkcs11Uri::parse(&uri)?,
            generate,
        })
    })
    .transpose()
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
