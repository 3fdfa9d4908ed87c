//! `gitca init`: create a CA repository — key, self-signed CA certificate, encrypted key,
//! config, empty CRL — with the key in age, in a PKCS#11 token, or behind an offline root.

use std::io::Write;
use std::path::PathBuf;

use super::keys::{custody_from_args, CustodyArgs};
use super::Context;
use crate::authority::custody::{self, Custody};
use crate::authority::init::{run_init, InitOptions, OfflineRoot, TokenInit};
use crate::authority::token::{Pkcs11Uri, TokenAccess};
use crate::error::{Error, Result};
use crate::repository::config::Dur;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CA's common name.
    #[arg(long)]
    name: String,
    /// Organization (O) of the CA and of every certificate it issues (default: the name).
    #[arg(long)]
    organization: Option<String>,
    /// p256 (default), p384, rsa3072 or rsa4096.
    #[arg(long, default_value = "p256", value_name = "TYPE")]
    key_type: String,
    /// Lifetime of the CA certificate (the root's, with --offline-root).
    #[arg(long, default_value = "10y", value_name = "DURATION")]
    validity: String,
    #[command(flatten)]
    custody: CustodyArgs,
    /// Keep the root offline: its key is encrypted to the root custodians only
    /// (--root-recipient), and an issuing intermediate's key to CI (--recipient) and the
    /// custodians. Reconcile then never needs the root; `gitca root …` ceremonies do.
    #[arg(long)]
    offline_root: bool,
    /// A root custodian's age (age1…) or SSH public key. Repeatable.
    #[arg(
        long = "root-recipient",
        value_name = "RECIPIENT",
        requires = "offline_root"
    )]
    root_recipients: Vec<String>,
    /// Root custodians listed in FILE (age's recipients-file format).
    #[arg(long, value_name = "FILE", requires = "offline_root")]
    root_recipients_file: Vec<PathBuf>,
    /// Lifetime of the issuing intermediate (--offline-root).
    #[arg(long, default_value = "5y", value_name = "DURATION")]
    intermediate_validity: String,
    /// Keep the CA key in a PKCS#11 token instead of age: the RFC 7512 URI of the token and
    /// key, e.g. `pkcs11:token=ca-hsm;object=gitca-ca`. Adopts the key it names, or makes
    /// one with --pkcs11-generate. No PIN in it: GITCA_PKCS11_PIN, else asked.
    #[arg(long, value_name = "URI", conflicts_with_all = ["recipients", "recipients_file", "passphrase", "offline_root"])]
    pkcs11: Option<String>,
    /// Generate the CA key in the token (sensitive, never extractable) instead of adopting one.
    #[arg(long, requires = "pkcs11")]
    pkcs11_generate: bool,
    /// With --offline-root: keep the root key in a PKCS#11 token instead of encrypting it to
    /// root custodians: the RFC 7512 URI of the token and key, e.g.
    /// `pkcs11:token=root-hsm;object=gitca-root`. The custodians are whoever holds the token
    /// and its PIN. Adopts the key it names, or makes one with --root-pkcs11-generate.
    #[arg(long, value_name = "URI", requires = "offline_root", conflicts_with_all = ["root_recipients", "root_recipients_file"])]
    root_pkcs11: Option<String>,
    /// Generate the root key in the token (sensitive, never extractable).
    #[arg(long, requires = "root_pkcs11")]
    root_pkcs11_generate: bool,
    /// The token's PKCS#11 library (also GITCA_PKCS11_MODULE), e.g.
    /// /usr/lib/softhsm/libsofthsm2.so.
    #[arg(long, value_name = "PATH")]
    pkcs11_module: Option<PathBuf>,
}

/// Reads where the key goes (age recipients, a passphrase, or a token) and whether the root
/// stays offline, then creates the repository.
pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    let key_type = args.key_type.parse()?;
    let validity = Dur::parse(&args.validity)?;
    let (custody, token) = match &args.pkcs11 {
        Some(uri) => (
            Custody::Recipients(Vec::new()),
            Some(TokenInit {
                uri: Pkcs11Uri::parse(uri)?,
                generate: args.pkcs11_generate,
                access: TokenAccess::from_env(args.pkcs11_module.clone()),
            }),
        ),
        None => (custody_from_args(&args.custody)?, None),
    };
    let offline_root = offline_root(&args)?;
    run_init(
        InitOptions {
            dir: ctx.dir.clone(),
            organization: args.organization.unwrap_or_else(|| args.name.clone()),
            name: args.name,
            key_type,
            validity,
            custody,
            now: ctx.now,
            offline_root,
            token,
        },
        out,
    )?;
    Ok(0)
}

/// With --offline-root: the root custodians (at least one) and the intermediate's lifetime.
fn offline_root(args: &Args) -> Result<Option<OfflineRoot>> {
    if !args.offline_root {
        return Ok(None);
    }
    let mut custodians = args.root_recipients.clone();
    for f in &args.root_recipients_file {
        custodians.extend(custody::read_recipients_file(f)?);
    }
    let token = match &args.root_pkcs11 {
        Some(uri) => Some(TokenInit {
            uri: Pkcs11Uri::parse(uri)?,
            generate: args.root_pkcs11_generate,
            access: TokenAccess::from_env(args.pkcs11_module.clone()),
        }),
        None => None,
    };
    if custodians.is_empty() && token.is_none() {
        return Err(Error::usage(
            "--offline-root needs the root custodians",
            "pass each custodian's age recipient with --root-recipient age1… (or --root-recipients-file FILE; or keep the root key in a PKCS#11 token: --root-pkcs11 URI); CI is not one of them",
        ));
    }
    Ok(Some(OfflineRoot {
        custodians,
        intermediate_validity: Dur::parse(&args.intermediate_validity)?,
        token,
    }))
}
