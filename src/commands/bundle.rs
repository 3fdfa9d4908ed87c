//! `gitca bundle`: write Docker/Podman certs.d files for one identity.

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::error::Result;
use crate::relying::bundle::{BundleOptions, TargetOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The identity whose certificate to install.
    name: String,
    /// The identity's private key (PEM, unencrypted; `gitca request` wrote it).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    /// Write a PKCS#12 file (browsers, OS keychains) instead: password from GITCA_P12_PASSWORD
    /// or asked twice on the terminal, never empty.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["registry", "out_dir"])]
    p12: Option<PathBuf>,
    /// With --p12: the legacy flavour (3DES and SHA-1 MAC) for old macOS and Windows.
    #[arg(long, requires = "p12")]
    legacy: bool,
}

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    let options = BundleOptions {
        name: args.name,
        key: args.key,
        target: args.target.into_options(),
        p12: args.p12,
        legacy: args.legacy,
    };
    crate::relying::bundle::run_bundle(&ctx.dir, ctx.now, &options, out)?;
    Ok(0)
}

/// Where a client's files go: a registry's certs.d directory (Docker, Podman), a containerd
/// hosts directory, or any directory.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Install for this registry: CERTS_ROOT/HOST:PORT/ (no port for 443).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "out_dir")]
    registry: Option<String>,
    /// Write client.cert, client.key and ca.crt into this directory instead.
    #[arg(long, value_name = "DIR", conflicts_with = "server_dir")]
    out_dir: Option<PathBuf>,
    /// A server's certificate: write DIR/server.crt (leaf first, chain included) and
    /// DIR/server.key (0600), where `gitca export nginx` and `export registry` read them by
    /// default (/etc/gitca). The CA certificate the server trusts stays the one pinned by hand.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["registry", "podman", "containerd", "server_ca"]
    )]
    server_dir: Option<PathBuf>,
    /// Podman, Skopeo, Buildah, CRI-O: /etc/containers/certs.d instead of Docker's.
    #[arg(long, conflicts_with = "containerd")]
    podman: bool,
    /// containerd (Kubernetes nodes, ctr, nerdctl): HOST:PORT/hosts.toml with the client
    /// certificate, under /etc/containerd/certs.d.
    #[arg(long)]
    containerd: bool,
    /// The root to install under (default /etc/docker/certs.d, /etc/containers/certs.d with
    /// --podman, /etc/containerd/certs.d with --containerd); per-user and rootless set-ups, tests.
    #[arg(long, value_name = "DIR")]
    certs_root: Option<PathBuf>,
    /// The CA of the registry's own TLS certificate, when the system does not trust it
    /// already: installed as server-ca.crt (and named in containerd's hosts.toml).
    #[arg(long, value_name = "FILE")]
    server_ca: Option<PathBuf>,
}

impl TargetArgs {
    pub(super) fn into_options(self) -> TargetOptions {
        TargetOptions {
            registry: self.registry,
            out_dir: self.out_dir,
            server_dir: self.server_dir,
            podman: self.podman,
            containerd: self.containerd,
            certs_root: self.certs_root,
            server_ca: self.server_ca,
        }
    }
}
