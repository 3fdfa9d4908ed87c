//! `gitca bundle`: a client's certificate files where its container engine reads them (Docker
//! and Podman `certs.d`), the key checked against the certificate first.
//!
//! Facts this module is built on (measured with the real programs, see DESIGN.md): Docker wants
//! the client certificate first in `client.cert`, treats `*.crt` as CA roots, and pairs each
//! `X.cert` with `X.key`.

use std::io::Write;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::ca;
use crate::confined::Dir;
use crate::error::{Error, Result};
use crate::ledger::fmt_time;
use crate::load::{self, read};
use crate::repo::CaRepo;

#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    /// The identity whose certificate to install.
    pub name: String,
    /// The identity's private key (PEM, unencrypted; `gitca request` wrote it).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Install for this registry: /etc/docker/certs.d/HOST:PORT/ (no port for 443).
    #[arg(
        long,
        value_name = "HOST:PORT",
        conflicts_with = "out_dir",
        required_unless_present = "out_dir"
    )]
    pub registry: Option<String>,
    /// Write the three files into this directory instead.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Use Podman's /etc/containers/certs.d instead of Docker's.
    #[arg(long)]
    pub podman: bool,
    /// The certs.d root to install under (default /etc/docker/certs.d, or /etc/containers/certs.d
    /// with --podman); for rootless set-ups and tests.
    #[arg(long, value_name = "DIR")]
    pub certs_root: Option<PathBuf>,
}

/// Where the engine reads per-registry client certificates: Docker's daemon, or Podman (and
/// Buildah, Skopeo, CRI-O: containers-certs.d(5)).
pub fn default_certs_root(podman: bool) -> &'static str {
    if podman {
        "/etc/containers/certs.d"
    } else {
        "/etc/docker/certs.d"
    }
}

/// Reads a private key PEM for a client, refusing encrypted and non-PEM keys.
pub(crate) fn read_client_key(path: &Path) -> Result<(Zeroizing<String>, rcgen::KeyPair)> {
    let text = Zeroizing::new(crate::confined::read_named_string(
        path,
        64 * 1024,
        "read the key",
    )?);
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(Error::bad_file(
            path,
            "the key is passphrase-protected; Docker and Podman cannot use an encrypted client key",
            "decrypt a copy for the certs.d directory: openssl pkey -in KEY -out client.key (it stays 0600, root-only)",
        ));
    }
    if !text.contains("PRIVATE KEY-----") {
        return Err(Error::bad_file(
            path,
            "not a PEM private key",
            "pass the PEM key file `gitca request` wrote (a PKCS#8 PRIVATE KEY block)",
        ));
    }
    let pair = rcgen::KeyPair::from_pem(&text).map_err(|e| {
        Error::bad_file(
            path,
            format!("the private key cannot be read: {e}"),
            "pass an unencrypted PKCS#8, SEC1 or PKCS#1 PEM key",
        )
    })?;
    Ok((text, pair))
}

pub(crate) fn parse_pem_certs(text: &str) -> Vec<Vec<u8>> {
    pem::parse_many(text)
        .unwrap_or_default()
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect()
}

/// The certs.d directory for a registry address; Docker uses the bare host for port 443.
pub fn certs_d_dir(root: &Path, registry: &str) -> Result<PathBuf> {
    let bad = || {
        Error::usage(
            format!("`{registry}` is not HOST or HOST:PORT"),
            "pass the registry as you pull from it, e.g. registry.example.com:5000",
        )
    };
    if registry.is_empty() || registry.contains(['/', '\\', ' ']) || registry.starts_with('.') {
        return Err(bad());
    }
    let dir = match registry.rsplit_once(':') {
        Some((host, "443")) => host.to_string(),
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            registry.to_string()
        }
        Some(_) => return Err(bad()),
        None => registry.to_string(),
    };
    Ok(root.join(dir))
}

/// The top-level entry point for `gitca bundle`.
pub fn run_bundle(
    dir: &Path,
    now: OffsetDateTime,
    args: &BundleArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let repo = CaRepo::open(dir)?;
    let state = load::load(&repo)?;
    let name = &args.name;
    if state.inventory.get(name).is_none() {
        return Err(Error::usage(
            format!("`{name}` is not declared in identities/"),
            "check the name (gitca status lists them), or onboard it with gitca request",
        ));
    }
    let current = state
        .ledger
        .of(name)
        .filter(|r| r.is_live(now))
        .last()
        .ok_or_else(|| {
            Error::usage(
                format!("`{name}` has no current certificate"),
                "the merge may not be reconciled yet: git pull, and check `gitca status`",
            )
        })?;
    let cert_text = read(
        &repo.dir,
        &crate::apply::cert_path(name),
        ca::MAX_CERT_BYTES,
    )?;
    let certs = parse_pem_certs(&cert_text);
    let leaf = certs.first().ok_or_else(|| {
        Error::bad_file(
            crate::apply::cert_path(name),
            "no certificate",
            "run gitca check",
        )
    })?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| {
        Error::bad_file(
            crate::apply::cert_path(name),
            e.to_string(),
            "run gitca check",
        )
    })?;
    if ca::serial_hex(parsed.raw_serial()) != current.serial {
        return Err(Error::usage(
            format!("certs/{name}.crt is not the ledger's current certificate"),
            "run gitca check; the repository is out of date or edited",
        ));
    }
    let (key_text, key) = read_client_key(&args.key)?;
    if !crate::pubkey::same_key(
        &rcgen::PublicKeyData::subject_public_key_info(&key),
        parsed.public_key().raw,
    ) {
        return Err(Error::usage(
            format!("{} is not the key of {name}'s certificate", args.key.display()),
            format!("pass the key `gitca request {name}` made; if it is lost, make a new one with `gitca request {name} --rotate`"),
        ));
    }
    let target = match (&args.out_dir, &args.registry) {
        (Some(d), _) => d.clone(),
        (None, Some(r)) => {
            let root = args
                .certs_root
                .clone()
                .unwrap_or_else(|| PathBuf::from(default_certs_root(args.podman)));
            certs_d_dir(&root, r)?
        }
        (None, None) => unreachable!("clap requires one of them"),
    };
    let dir = Dir::create(&target)?;
    let mut client_cert = ca::to_pem("CERTIFICATE", leaf);
    client_cert.push_str(&state.ca.pem);
    let files: [(&str, &[u8], u32); 3] = [
        ("client.cert", client_cert.as_bytes(), 0o644),
        ("client.key", key_text.as_bytes(), 0o600),
        ("ca.crt", state.ca.pem.as_bytes(), 0o644),
    ];
    install_files(&dir, &files)?;
    let _ = writeln!(
        out,
        "Installed {name}'s client certificate in {}",
        target.display()
    );
    let _ = writeln!(
        out,
        "  client.cert  certificate {} (first), then the CA",
        current.serial
    );
    let _ = writeln!(out, "  client.key   private key (0600)");
    let _ = writeln!(out, "  ca.crt       {}", state.ca.subject);
    let _ = writeln!(out, "  valid until  {}", fmt_time(current.not_after));
    Ok(())
}

/// Writes a set of files into `dir` all or nothing: each to a new temporary file (exclusive,
/// unpredictable name, exact mode, never through a link), synced, then all renamed into place.
pub fn install_files(dir: &Dir, files: &[(&str, &[u8], u32)]) -> Result<()> {
    let mut staged = Vec::new();
    for (name, data, mode) in files {
        match dir
            .stage(name, data, *mode)
            .and_then(|s| s.sync().map(|()| s))
        {
            Ok(s) => staged.push(s),
            Err(e) => {
                staged.iter().for_each(crate::confined::Staged::discard);
                return Err(e);
            }
        }
    }
    for s in staged {
        s.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certs_d_directory_names_follow_docker() {
        let root = Path::new("/etc/docker/certs.d");
        assert_eq!(
            certs_d_dir(root, "reg.example.com:5000").unwrap(),
            root.join("reg.example.com:5000")
        );
        assert_eq!(
            certs_d_dir(root, "reg.example.com:443").unwrap(),
            root.join("reg.example.com")
        );
        assert_eq!(
            certs_d_dir(root, "reg.example.com").unwrap(),
            root.join("reg.example.com")
        );
        for bad in ["", "../etc", "a/b", "host:port", ":5000", "h:99999"] {
            assert!(certs_d_dir(root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn podman_reads_containers_certs_d() {
        assert_eq!(default_certs_root(false), "/etc/docker/certs.d");
        assert_eq!(default_certs_root(true), "/etc/containers/certs.d");
        assert_eq!(
            certs_d_dir(Path::new(default_certs_root(true)), "reg.example.com:5000").unwrap(),
            Path::new("/etc/containers/certs.d/reg.example.com:5000")
        );
    }
}
