//! `gitca doctor`: explain why a client certificate (or a server) would be refused, and how to
//! fix it.

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::error::Result;
use crate::relying::doctor::DoctorOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The client certificate (or Docker's client.cert bundle).
    #[arg(
        long,
        value_name = "FILE",
        requires = "key",
        conflicts_with = "certs_dir"
    )]
    cert: Option<PathBuf>,
    /// The private key that goes with it.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// A Docker/Podman certs.d directory, e.g. /etc/docker/certs.d/registry.example.com:5000.
    #[arg(long, value_name = "DIR", required_unless_present = "cert")]
    certs_dir: Option<PathBuf>,
    /// The CA certificate (default: ca/ca.crt of the CA repository, or the certs.d directory's ca.crt).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The CRL (default: crl/ca.crl of the CA repository).
    #[arg(long, value_name = "FILE")]
    crl: Option<PathBuf>,
    /// With --certs-dir: connect to the registry (TLS only, no request; 10 seconds at most)
    /// and check its server certificate against what the client trusts (the directory's .crt
    /// files, as Docker and Podman read them, and the system's roots).
    #[arg(long, value_name = "HOST:PORT", requires = "certs_dir")]
    server: Option<String>,
}

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    let options = DoctorOptions {
        cert: args.cert,
        key: args.key,
        certs_dir: args.certs_dir,
        ca: args.ca,
        crl: args.crl,
        server: args.server,
    };
    crate::relying::doctor::run_doctor(&ctx.dir, ctx.now, &options, out)
}
