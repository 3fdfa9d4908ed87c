//! `gitca request`: the person's side — make a key (kept outside the repository) and add a CSR
//! and an identity entry.

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::error::Result;
use crate::repository::git::CaRepo;
use crate::repository::request::{self, Request};

// Its about line and example are on `cli::Command::Request`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The identity's name: [a-z0-9][a-z0-9._-]*; becomes the certificate's CN.
    pub name: String,
    /// Declare a bot (short-lived `bot` profile) instead of a user.
    #[arg(long, conflicts_with = "server")]
    pub bot: bool,
    /// Declare a TLS server (the `server` profile: serverAuth only): run this on the server,
    /// whose key stays there. Needs --dns-name or --ip-address; the names must be within
    /// gitca.yaml's `servers:` policy.
    #[arg(long, conflicts_with_all = ["email", "groups"])]
    pub server: bool,
    /// A DNS name of the server (lower case; IDNs as xn-- A-labels). Repeatable; the first
    /// becomes the CN.
    #[arg(long = "dns-name", value_name = "NAME", requires = "server")]
    pub dns_names: Vec<String>,
    /// An IP address of the server. Repeatable.
    #[arg(long = "ip-address", value_name = "ADDRESS", requires = "server")]
    pub ip_addresses: Vec<String>,
    /// Email address for the certificate's SAN.
    #[arg(long)]
    pub email: Option<String>,
    /// The certificate's CN when it is not the name (`Alice Liddell`): 1 to 64 letters,
    /// digits and spaces of one script, with . - _ ' ( ) & @ : (docs/onboarding.md, "Names").
    #[arg(long, value_name = "CN", conflicts_with = "rotate")]
    pub common_name: Option<String>,
    /// A group (one OU each). Repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// p256 (default), p384, rsa3072 or rsa4096.
    #[arg(long, default_value = "p256", value_name = "TYPE")]
    pub key_type: String,
    /// Where to write the private key (default: ~/.config/gitca/keys/NAME.key). Never inside the
    /// repository; never overwritten.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["key", "csr"])]
    pub key_out: Option<PathBuf>,
    /// Make the CSR with this existing private key (PEM: PKCS#8, SEC1 or PKCS#1; P-256, P-384,
    /// RSA ≥ 2048, Ed25519) instead of a new one. It is read, never copied or moved.
    #[arg(long, value_name = "FILE", conflicts_with = "csr")]
    pub key: Option<PathBuf>,
    /// Use this CSR, made elsewhere (a hardware token, another tool), instead of making a key.
    /// It is checked with the rules reconcile applies before it is added.
    #[arg(long, value_name = "FILE")]
    pub csr: Option<PathBuf>,
    /// This identity was called NAME before (a rename): it keeps NAME's key (pass it with
    /// --key), NAME's entry must go in the same change, and NAME's certificates are revoked
    /// as superseded once the new one is issued.
    #[arg(long, value_name = "NAME")]
    pub renamed_from: Option<String>,
    /// The identities file to add the entry to (default: identities/NAME.yaml, one file per
    /// identity, so that pull requests onboarding different people never conflict).
    #[arg(long, value_name = "FILE")]
    pub file: Option<String>,
    /// The identity exists already: make a new key and CSR for it (key rotation); the YAML entry
    /// stays as it is and reconcile supersedes the old certificate.
    #[arg(long)]
    pub rotate: bool,
}

impl From<Args> for Request {
    fn from(args: Args) -> Self {
        Request {
            name: args.name,
            bot: args.bot,
            server: args.server,
            dns_names: args.dns_names,
            ip_addresses: args.ip_addresses,
            email: args.email,
            common_name: args.common_name,
            groups: args.groups,
            key_type: args.key_type,
            key_out: args.key_out,
            key: args.key,
            csr: args.csr,
            renamed_from: args.renamed_from,
            file: args.file,
            rotate: args.rotate,
        }
    }
}

/// The top-level entry point for `gitca request`.
pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    let args = Request::from(args);
    let repo = CaRepo::open(&ctx.dir)?;
    // Everything is checked, in order, before anything (the key first of all) is written.
    let draft = request::draft(&repo, &args)?;
    let csr = request::make_request_csr(&args, &draft)?;
    request::refuse_brought_key(&repo, &args, &draft, &csr)?;
    let rotation = request::rotation(&args, &draft, &csr);
    request::write_request(&repo, &draft, &csr)?;
    let key_shown = request::report_written(&args, &draft, &csr, &rotation, out);
    request::report_next(&args, &draft, &rotation, &key_shown, out);
    Ok(0)
}
