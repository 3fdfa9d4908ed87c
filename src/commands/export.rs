//! `gitca export …`: server-side configuration — nginx (which enforces the CRL and the
//! admission list) or the registry's own TLS.

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::error::Result;
use crate::relying::export::{ExportTarget, NginxOptions, RegistryOptions, TlsOptions};

/// `gitca export nginx` and `gitca export registry`, each with its own flags.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// nginx server block enforcing client certificates and the CRL, proxying to the registry.
    #[command(
        after_help = "Example:\n  gitca export nginx --listen 443 --server-name registry.example.com --upstream 127.0.0.1:5000 \\\n      > /etc/nginx/conf.d/registry.conf"
    )]
    Nginx(NginxArgs),
    /// docker-registry (distribution) configuration: its own TLS, or plain HTTP behind nginx.
    #[command(
        after_help = "Example (behind the nginx of `gitca export nginx`):\n  gitca export registry --behind-nginx --listen 127.0.0.1:5000 > /etc/docker/registry/config.yml"
    )]
    Registry(RegistryArgs),
}

/// What both servers are told about TLS.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// The server's TLS certificate.
    #[arg(long, default_value = "/etc/gitca/server.crt", value_name = "PATH")]
    tls_cert: String,
    /// The server's TLS key.
    #[arg(long, default_value = "/etc/gitca/server.key", value_name = "PATH")]
    tls_key: String,
    /// Where the server reads the certificate it trusts: ca/ca.crt, or ca/root.crt of a CA
    /// with an offline root (deploy it there once, by hand: it is the pin).
    #[arg(long, default_value = "/etc/gitca/ca.crt", value_name = "PATH")]
    client_ca: String,
}

#[derive(Debug, clap::Args)]
pub struct NginxArgs {
    /// Address to listen on (e.g. 443 or 127.0.0.1:8443).
    #[arg(long, default_value = "443", value_name = "ADDR")]
    listen: String,
    /// server_name: the registry's DNS name (`_`: any).
    #[arg(long, default_value = "_", value_name = "NAME")]
    server_name: String,
    /// The registry nginx proxies to.
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "HOST:PORT")]
    upstream: String,
    #[command(flatten)]
    tls: TlsArgs,
    /// Where nginx reads the CRL (keep it current with `gitca deploy crl`).
    #[arg(long, default_value = "/etc/gitca/ca.crl", value_name = "PATH")]
    crl: String,
    /// Admit only certificates on the CA's signed admission list, as installed here by
    /// `gitca deploy admission --out PATH` (in addition to the chain and the CRL): a
    /// certificate minted with the CA key outside the CA's reviewed history is refused (403).
    #[arg(long, value_name = "PATH")]
    admitted: Option<String>,
    /// Emit a complete nginx.conf (daemon off, pid, logs and temp paths under PREFIX)
    /// instead of a server block for conf.d.
    #[arg(long, value_name = "PREFIX")]
    standalone: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// http.addr (default :5000; 127.0.0.1:5000 with --behind-nginx).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Plain HTTP on loopback for use behind the nginx of `gitca export nginx`.
    #[arg(long)]
    behind_nginx: bool,
    #[command(flatten)]
    tls: TlsArgs,
    /// Storage directory.
    #[arg(long, default_value = "/var/lib/docker-registry", value_name = "DIR")]
    storage: String,
    /// Let clients delete manifests and blobs (DELETE). Off by default: anyone who may push
    /// could otherwise erase images that others depend on.
    #[arg(long)]
    allow_delete: bool,
}

pub fn run(ctx: &Context, cmd: Command, out: &mut dyn Write) -> Result<u8> {
    let target = match cmd {
        Command::Nginx(a) => ExportTarget::Nginx(NginxOptions {
            listen: a.listen,
            server_name: a.server_name,
            upstream: a.upstream,
            tls: a.tls.into_options(),
            crl: a.crl,
            admitted: a.admitted,
            standalone: a.standalone,
        }),
        Command::Registry(a) => ExportTarget::Registry(RegistryOptions {
            listen: a.listen,
            behind_nginx: a.behind_nginx,
            tls: a.tls.into_options(),
            storage: a.storage,
            allow_delete: a.allow_delete,
        }),
    };
    crate::relying::export::run_export(&ctx.dir, &target, out)?;
    Ok(0)
}

impl TlsArgs {
    fn into_options(self) -> TlsOptions {
        TlsOptions {
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            client_ca: self.client_ca,
        }
    }
}
