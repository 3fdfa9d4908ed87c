//! `gitca deploy …`: keep what a machine needs current — the CRL and the admission list on a
//! server, a certificate on a client.

use std::io::Write;
use std::path::PathBuf;

use super::bundle::TargetArgs;
use super::Context;
use crate::error::Result;
use crate::relying::admission::{run_deploy_admission, DeployAdmissionOptions};
use crate::relying::deploy::{
    run_deploy_cert, run_deploy_crl, DeployCertOptions, DeployCrlOptions, FromOptions,
};
use crate::relying::watch::WatchOptions;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// On a server: install the CA's CRL when a newer one, signed by the pinned CA, is published.
    #[command(
        after_help = "Example (nginx in front of the registry; a systemd timer, or --watch 5m):\n  gitca deploy crl --from https://pki.example.com --ca /etc/gitca/ca.crt \\\n      --out /etc/gitca/ca.crl --reload 'nginx -t && nginx -s reload' \\\n      --metrics /var/lib/node_exporter/textfile/gitca-crl.prom\n\nExit codes: 0 current, 1 error or refused, 4 stale (expires within --stale-margin, nothing newer)."
    )]
    Crl(Box<CrlArgs>),
    /// On a client, bot or node: install the identity's newest certificate for its local key.
    #[command(
        after_help = "Example (a CI bot pulling from the registry):\n  gitca deploy cert ci-builder --key /etc/gitca/ci-builder.key --from https://pki.example.com \\\n      --ca /etc/gitca/ca.crt --registry registry.example.com:5000 --watch 6h\n\nExit codes: 0 current, 1 error or refused, 4 stale (expires within --stale-margin, nothing newer)."
    )]
    Cert(Box<CertArgs>),
    /// On a server: install the CA's signed admission list as an nginx map, verified against
    /// the history signers it pinned, never older than the one installed.
    #[command(
        after_help = "Example (nginx from `gitca export nginx --admitted /etc/gitca/admitted.map`; a systemd timer, or --watch 5m):\n  gitca deploy admission --from https://pki.example.com --signers /etc/gitca/allowed_signers \\\n      --out /etc/gitca/admitted.map --reload 'nginx -t && nginx -s reload' \\\n      --metrics /var/lib/node_exporter/textfile/gitca-admission.prom\n\nExit codes: 0 installed or current (or the source could not be read: what is installed stays), 1 refused (nothing installed; a failed reload puts the previous map back), 4 stale (the newest list seen is older than --max-age)."
    )]
    Admission(Box<AdmissionArgs>),
}

#[derive(Debug, clap::Args)]
pub struct CrlArgs {
    #[command(flatten)]
    from: FromArgs,
    /// The CRL file nginx reads (`ssl_crl`), written as PEM.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Exit 4 when the installed CRL expires within this and no newer one can be fetched.
    #[arg(long, default_value = "2d", value_name = "DURATION")]
    stale_margin: String,
    #[command(flatten)]
    watch: WatchArgs,
}

#[derive(Debug, clap::Args)]
pub struct CertArgs {
    /// The identity whose certificate to keep installed.
    name: String,
    /// Its private key (stays where it is; copied 0600 next to the certificate, as Docker and
    /// containerd want it).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[command(flatten)]
    from: FromArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Exit 4 when the installed certificate expires within this and no renewal can be had.
    #[arg(long, default_value = "5d", value_name = "DURATION")]
    stale_margin: String,
    #[command(flatten)]
    watch: WatchArgs,
}

/// `gitca deploy admission`'s flags.
#[derive(Debug, clap::Args)]
pub struct AdmissionArgs {
    /// The published tree holding admitted.txt and admitted.txt.sig (`gitca publish`): a
    /// directory, or the http(s) URL it is served at.
    #[arg(long, value_name = "URL|DIR")]
    from: String,
    /// The CA certificate of an https:// source's TLS server (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    https_ca: Option<PathBuf>,
    /// The most one fetch may take; past it the fetch fails like any other.
    #[arg(long, default_value = crate::relying::source::DEFAULT_TIMEOUT, value_name = "DURATION")]
    timeout: String,
    /// The history signers this server trusts, in the allowed-signers format (a copy of the
    /// CA's ca/allowed_signers, installed once, by hand: it is the pin). Never the CA key.
    #[arg(long, value_name = "FILE")]
    signers: PathBuf,
    /// The nginx map fragment to write (what `gitca export nginx --admitted` includes).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Exit 4 (stale) when the newest list seen was signed longer ago than this: `gitca
    /// publish` signs a new one at every run, so an old one means publishing stopped or this
    /// server cannot reach it, and identities merged since are not admitted.
    #[arg(long, default_value = "8d", value_name = "DURATION")]
    max_age: String,
    #[command(flatten)]
    watch: WatchArgs,
}

pub fn run(ctx: &Context, cmd: Command, out: &mut dyn Write) -> Result<u8> {
    match cmd {
        Command::Crl(args) => run_deploy_crl(&args.into_options(), ctx.fixed_now, out),
        Command::Cert(args) => run_deploy_cert(&args.into_options(), ctx.fixed_now, out),
        Command::Admission(args) => {
            let args = *args;
            run_deploy_admission(
                &DeployAdmissionOptions {
                    from: args.from,
                    https_ca: args.https_ca,
                    timeout: args.timeout,
                    signers: args.signers,
                    out: args.out,
                    max_age: args.max_age,
                    watch: args.watch.into_options(),
                },
                ctx.fixed_now,
                out,
            )
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct FromArgs {
    /// Where to fetch from: a published tree (`gitca publish`) as an http(s) URL or a
    /// directory, or a clone of the CA repository.
    #[arg(long, value_name = "URL|DIR", conflicts_with = "from_git")]
    from: Option<String>,
    /// The CA repository itself, through the `git` program (the machine's credentials apply).
    #[arg(long, value_name = "URL|PATH")]
    from_git: Option<String>,
    /// The branch to read with --from-git.
    #[arg(long, default_value = "main", requires = "from_git")]
    branch: String,
    /// Where --from-git keeps its shallow copy (default ~/.cache/gitca/deploy-…).
    #[arg(long, value_name = "DIR", requires = "from_git")]
    git_cache: Option<PathBuf>,
    /// The CA certificate of an https:// source's TLS server (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    https_ca: Option<PathBuf>,
    /// The CA certificate this machine trusts: everything installed must be signed by it.
    /// Never taken from the source.
    #[arg(long = "ca", value_name = "PINNED_CA")]
    pinned: PathBuf,
    /// The most one fetch may take (HTTP: the whole request; --from-git: every git program it
    /// runs, which are then killed); past it the fetch fails like any other.
    #[arg(long, default_value = crate::relying::source::DEFAULT_TIMEOUT, value_name = "DURATION")]
    timeout: String,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Run after every change: e.g. `nginx -t && nginx -s reload`. If it fails, the previous
    /// files are put back. An empty CMD runs nothing (handy in systemd environment files).
    #[arg(long, value_name = "CMD")]
    reload: Option<String>,
    /// The most the reload command may take: past it, it is killed with everything it started,
    /// and the previous files are put back.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    reload_timeout: String,
    /// Keep running: check every INTERVAL (with jitter); fetch failures never end it.
    #[arg(long, value_name = "INTERVAL")]
    watch: Option<String>,
    /// Write Prometheus textfile-collector metrics here (for node_exporter).
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,
}

impl CrlArgs {
    fn into_options(self) -> DeployCrlOptions {
        DeployCrlOptions {
            from: self.from.into_options(),
            out: self.out,
            stale_margin: self.stale_margin,
            watch: self.watch.into_options(),
        }
    }
}

impl CertArgs {
    fn into_options(self) -> DeployCertOptions {
        DeployCertOptions {
            name: self.name,
            key: self.key,
            from: self.from.into_options(),
            target: self.target.into_options(),
            stale_margin: self.stale_margin,
            watch: self.watch.into_options(),
        }
    }
}

impl FromArgs {
    fn into_options(self) -> FromOptions {
        FromOptions {
            from: self.from,
            from_git: self.from_git,
            branch: self.branch,
            git_cache: self.git_cache,
            https_ca: self.https_ca,
            pinned: self.pinned,
            timeout: self.timeout,
        }
    }
}

impl WatchArgs {
    fn into_options(self) -> WatchOptions {
        WatchOptions {
            reload: self.reload,
            reload_timeout: self.reload_timeout,
            watch: self.watch,
            metrics: self.metrics,
        }
    }
}
