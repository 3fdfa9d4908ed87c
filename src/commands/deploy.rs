//! `gitca deploy …`: keep what a machine needs current — the CRL and the admission list on a
//! server, a certificate on a client.

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::error::Result;
use crate::relying::admission::{run_deploy_admission, DeployAdmissionOptions};
use crate::relying::deploy::{run_deploy_cert, run_deploy_crl, DeployCertArgs, DeployCrlArgs};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// On a server: install the CA's CRL when a newer one, signed by the pinned CA, is published.
    #[command(
        after_help = "Example (nginx in front of the registry; a systemd timer, or --watch 5m):\n  gitca deploy crl --from https://pki.example.com --ca /etc/gitca/ca.crt \\\n      --out /etc/gitca/ca.crl --reload 'nginx -t && nginx -s reload' \\\n      --metrics /var/lib/node_exporter/textfile/gitca-crl.prom\n\nExit codes: 0 current, 1 error or refused, 4 stale (expires within --stale-margin, nothing newer)."
    )]
    Crl(Box<DeployCrlArgs>),
    /// On a client, bot or node: install the identity's newest certificate for its local key.
    #[command(
        after_help = "Example (a CI bot pulling from the registry):\n  gitca deploy cert ci-builder --key /etc/gitca/ci-builder.key --from https://pki.example.com \\\n      --ca /etc/gitca/ca.crt --registry registry.example.com:5000 --watch 6h\n\nExit codes: 0 current, 1 error or refused, 4 stale (expires within --stale-margin, nothing newer)."
    )]
    Cert(Box<DeployCertArgs>),
    /// On a server: install the CA's signed admission list as an nginx map, verified against
    /// the history signers it pinned, never older than the one installed.
    #[command(
        after_help = "Example (nginx from `gitca export nginx --admitted /etc/gitca/admitted.map`):\n  gitca deploy admission --from /srv/pki --signers /etc/gitca/allowed_signers \\\n      --out /etc/gitca/admitted.map && nginx -s reload\n\nExit codes: 0 installed or current, 1 refused (nothing installed)."
    )]
    Admission(AdmissionArgs),
}

/// `gitca deploy admission`'s flags.
#[derive(Debug, clap::Args)]
pub struct AdmissionArgs {
    /// The published directory holding admitted.txt and admitted.txt.sig.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The history signers this server trusts, in the allowed-signers format (a copy of the
    /// CA's ca/allowed_signers, installed once, by hand: it is the pin). Never the CA key.
    #[arg(long, value_name = "FILE")]
    signers: PathBuf,
    /// The nginx map fragment to write (what `gitca export nginx --admitted` includes).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(ctx: &Context, cmd: Command, out: &mut dyn Write) -> Result<u8> {
    match cmd {
        Command::Crl(args) => run_deploy_crl(&args, ctx.fixed_now, out),
        Command::Cert(args) => run_deploy_cert(&args, ctx.fixed_now, out),
        Command::Admission(args) => run_deploy_admission(
            &DeployAdmissionOptions {
                from: args.from,
                signers: args.signers,
                out: args.out,
            },
            out,
        ),
    }
}
