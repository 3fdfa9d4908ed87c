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

use crate::authority::ca;
use crate::error::{Error, Result};
use crate::repository::confined::Dir;
use crate::repository::git::CaRepo;
use crate::repository::load::{self, read};
use crate::time::fmt_time;

/// What `gitca bundle` installs, and where.
#[derive(Debug)]
pub struct BundleOptions {
    /// The identity whose certificate to install.
    pub name: String,
    /// The identity's private key.
    pub key: PathBuf,
    pub target: TargetOptions,
    /// Write a PKCS#12 file instead.
    pub p12: Option<PathBuf>,
    /// With `p12`: the legacy flavour (3DES and SHA-1 MAC).
    pub legacy: bool,
}

/// Where a client's files go: a registry's certs.d directory (Docker, Podman), a containerd
/// hosts directory, or any directory.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// Install for this registry: CERTS_ROOT/HOST:PORT/ (no port for 443).
    pub registry: Option<String>,
    /// Write client.cert, client.key and ca.crt into this directory instead.
    pub out_dir: Option<PathBuf>,
    /// A server's certificate: write DIR/server.crt (leaf first, chain included) and
    /// DIR/server.key (0600), where `gitca export nginx` and `export registry` read them by
    /// default (/etc/gitca). The CA certificate the server trusts stays the one pinned by hand.
    pub server_dir: Option<PathBuf>,
    /// Podman, Skopeo, Buildah, CRI-O: /etc/containers/certs.d instead of Docker's.
    pub podman: bool,
    /// containerd (Kubernetes nodes, ctr, nerdctl): HOST:PORT/hosts.toml with the client
    /// certificate, under /etc/containerd/certs.d.
    pub containerd: bool,
    /// The root to install under (default /etc/docker/certs.d, /etc/containers/certs.d with
    /// --podman, /etc/containerd/certs.d with --containerd); per-user and rootless set-ups, tests.
    pub certs_root: Option<PathBuf>,
    /// The CA of the registry's own TLS certificate, when the system does not trust it
    /// already: installed as server-ca.crt (and named in containerd's hosts.toml).
    pub server_ca: Option<PathBuf>,
}

/// A resolved place to install a client certificate.
#[derive(Debug, Clone)]
pub struct Target {
    pub dir: PathBuf,
    /// containerd: the registry host (for hosts.toml).
    pub containerd_host: Option<String>,
    /// The registry server's CA (PEM), installed beside as server-ca.crt.
    pub server_ca: Option<String>,
    /// A server's files (server.crt, server.key) rather than a client's.
    pub server: bool,
}

impl Target {
    /// The file holding the certificate chain, leaf first.
    pub fn cert_file(&self) -> &'static str {
        if self.server {
            SERVER_CERT
        } else {
            "client.cert"
        }
    }
}

/// A server's certificate chain and key, as `deploy cert --server-dir` installs them and
/// `gitca export` reads them by default.
pub const SERVER_CERT: &str = "server.crt";
pub const SERVER_KEY: &str = "server.key";

impl TargetOptions {
    pub fn target(&self) -> Result<Target> {
        let server_ca = match &self.server_ca {
            Some(p) => {
                let text = crate::repository::confined::read_named_string(
                    p,
                    ca::MAX_CERT_BYTES,
                    "read the server CA",
                )?;
                if parse_pem_certs(&text).is_empty() {
                    return Err(Error::bad_file(
                        p,
                        "holds no PEM certificate",
                        "pass the CA certificate of the registry's TLS certificate",
                    ));
                }
                Some(text)
            }
            None => None,
        };
        if let Some(d) = &self.server_dir {
            return Ok(Target {
                dir: d.clone(),
                containerd_host: None,
                server_ca: None,
                server: true,
            });
        }
        match (&self.out_dir, &self.registry) {
            (Some(d), _) => Ok(Target {
                dir: d.clone(),
                containerd_host: None,
                server_ca,
                server: false,
            }),
            (None, Some(r)) => {
                let root = self.certs_root.clone().unwrap_or_else(|| {
                    PathBuf::from(if self.containerd {
                        "/etc/containerd/certs.d"
                    } else {
                        default_certs_root(self.podman)
                    })
                });
                Ok(Target {
                    dir: certs_d_dir(&root, r)?,
                    containerd_host: self.containerd.then(|| r.clone()),
                    server_ca,
                    server: false,
                })
            }
            (None, None) => Err(Error::usage(
                "say where to install",
                "pass --registry HOST:PORT (with --podman or --containerd if not Docker), --out-dir DIR, or --server-dir DIR for a server's certificate",
            )),
        }
    }
}

/// Docker's trap (measured; see docs/deploy.md, "Docker and loopback registries"): the daemon's default
/// `insecure-registries` is 127.0.0.0/8, and for an insecure registry it never reads certs.d,
/// so it sends no client certificate and nginx answers "No required SSL certificate was sent".
/// True for `localhost`, `*.localhost` and 127.x.y.z, with or without a port.
pub fn docker_ignores_certs_d(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => registry,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.octets()[0] == 127)
}

/// The warning for [`docker_ignores_certs_d`], with the ways out.
pub fn docker_loopback_warning(registry: &str) -> String {
    format!(
        "Docker treats {registry} as an insecure registry (its default insecure-registries is 127.0.0.0/8) and then never reads certs.d: it sends no client certificate, and nginx answers \"No required SSL certificate was sent\". Reach the registry by a name or address outside 127.0.0.0/8 (the host's own address, or a name for it in /etc/hosts); Podman, Skopeo and containerd are not affected."
    )
}

impl TargetOptions {
    /// Docker (neither --podman, --containerd nor --out-dir) installing for a loopback registry.
    pub fn docker_loopback(&self) -> Option<&str> {
        let docker = self.out_dir.is_none() && !self.podman && !self.containerd;
        self.registry
            .as_deref()
            .filter(|r| docker && docker_ignores_certs_d(r))
    }
}

/// containerd's hosts.toml for a registry reached over HTTPS with this client certificate
/// (paths relative to the file's own directory). Without a `[host."https://…"]` table
/// containerd speaks plain HTTP to loopback registries, and nginx answers 400.
pub fn hosts_toml(host: &str, server_ca: bool) -> String {
    let ca = if server_ca {
        "[\"ca.crt\", \"server-ca.crt\"]"
    } else {
        "\"ca.crt\""
    };
    let url = crate::output::encode::toml_string(&format!("https://{host}"));
    format!(
        "# Written by gitca: containerd reads this for {shown} (ctr --hosts-dir, the CRI's config_path).\n\
         server = {url}\n\n\
         [host.{url}]\n  \
         capabilities = [\"pull\", \"resolve\", \"push\"]\n  \
         ca = {ca}\n  \
         client = [[\"client.cert\", \"client.key\"]]\n",
        shown = crate::output::encode::comment_line(host),
    )
}

/// The files of a client installation: the certificate first then its chain, the key (0600),
/// the CA, and hosts.toml for containerd.
pub struct ClientFiles<'a> {
    pub chain_pem: &'a str,
    pub key_pem: &'a str,
    pub ca_pem: &'a str,
}

/// Installs `files` at `target`, all or nothing; returns the previous versions so a failed
/// reload hook can put them back.
pub fn install(
    target: &Target,
    files: &ClientFiles<'_>,
) -> Result<Vec<crate::repository::confined::Backup>> {
    let dir = Dir::create(&target.dir)?;
    let toml = target
        .containerd_host
        .as_deref()
        .map(|h| hosts_toml(h, target.server_ca.is_some()));
    let mut list: Vec<(&str, &[u8], u32)> = if target.server {
        vec![
            (SERVER_CERT, files.chain_pem.as_bytes(), 0o644),
            (SERVER_KEY, files.key_pem.as_bytes(), 0o600),
        ]
    } else {
        vec![
            ("client.cert", files.chain_pem.as_bytes(), 0o644),
            ("client.key", files.key_pem.as_bytes(), 0o600),
            ("ca.crt", files.ca_pem.as_bytes(), 0o644),
        ]
    };
    if let Some(t) = &toml {
        list.push(("hosts.toml", t.as_bytes(), 0o644));
    }
    if let Some(s) = &target.server_ca {
        list.push(("server-ca.crt", s.as_bytes(), 0o644));
    }
    let mut backups = Vec::new();
    for (name, _, _) in &list {
        if let Some(b) = dir.backup(name)? {
            backups.push(b);
        }
    }
    install_files(&dir, &list)?;
    Ok(backups)
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
    let text = Zeroizing::new(crate::repository::confined::read_named_string(
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

/// A registry address as an operator gives it: a host name, an IPv4 address or a bracketed
/// IPv6 address, and an optional port. Returns the host (as given) and the port. Anything else
/// — a path, a space, a quote, a newline — is refused: the address becomes a directory name and
/// goes into containerd's hosts.toml.
pub fn parse_host_port(value: &str) -> std::result::Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address in brackets needs its `]`")?;
        ip.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{ip}` is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("a port follows `:`")?),
        };
        (format!("[{ip}]"), port)
    } else {
        let (host, port) = match value.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        };
        if host.parse::<std::net::Ipv4Addr>().is_err() {
            crate::authority::subject::check_host(host)?;
        }
        (host.to_string(), port)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && !p.starts_with('0') => Some(n),
            _ => return Err(format!("`{p}` is not a port (1 to 65535)")),
        },
    };
    Ok((host, port))
}

/// The certs.d directory for a registry address; Docker uses the bare host for port 443.
pub fn certs_d_dir(root: &Path, registry: &str) -> Result<PathBuf> {
    let (host, port) = parse_host_port(registry).map_err(|why| {
        Error::usage(
            format!(
                "`{}` is not HOST or HOST:PORT: {why}",
                crate::output::encode::terminal(registry)
            ),
            "pass the registry as you pull from it, e.g. registry.example.com:5000",
        )
    })?;
    Ok(root.join(match port {
        None | Some(443) => host,
        Some(p) => format!("{host}:{p}"),
    }))
}

/// The top-level entry point for `gitca bundle`.
pub fn run_bundle(
    dir: &Path,
    now: OffsetDateTime,
    args: &BundleOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let repo = CaRepo::open(dir)?;
    let state = load::load(&repo)?;
    let name = &args.name;
    let current = current_record(&state, name, now)?;
    let leaf = ledger_leaf(&repo, name, current)?;
    let key_text = read_matching_key(&args.key, name, &leaf.spki)?;
    // The leaf, then the CA that signed it (an intermediate below an offline root); the
    // anchor a client trusts is the root, or the CA itself.
    let (_, issuer) = state
        .issuer_cert(current.issuer.as_deref())
        .ok_or_else(|| {
            Error::usage(
            format!("{name}'s certificate was signed by an intermediate that no longer issues"),
            "run gitca reconcile (it re-issues under the current intermediate), then bundle again",
        )
        })?;
    let anchor = state.hierarchy.as_ref().map_or(&state.ca, |h| &h.root);
    let mut chain = crate::output::encode::to_pem("CERTIFICATE", &leaf.der);
    chain.push_str(&issuer.pem);
    if let Some(p12) = &args.p12 {
        let mut cas: Vec<&[u8]> = vec![&issuer.der];
        if anchor.der != issuer.der {
            cas.push(&anchor.der);
        }
        return write_p12(p12, name, &leaf.der, &cas, &key_text, args.legacy, out);
    }
    let target = args.target.target()?;
    let files = ClientFiles {
        chain_pem: &chain,
        key_pem: &key_text,
        ca_pem: &anchor.pem,
    };
    drop(install(&target, &files)?);
    report_installed(args, current, anchor, &target, out);
    Ok(())
}

/// The identity's current certificate in the ledger; refused when it is not declared or holds
/// none.
fn current_record<'a>(
    state: &'a load::State,
    name: &'a str,
    now: OffsetDateTime,
) -> Result<&'a crate::repository::ledger::Record> {
    if state.inventory.get(name).is_none() {
        return Err(Error::usage(
            format!("`{name}` is not declared in identities/"),
            "check the name (gitca status lists them), or onboard it with gitca request",
        ));
    }
    state.ledger.current(name, now).ok_or_else(|| {
        Error::usage(
            format!("`{name}` has no current certificate"),
            "the merge may not be reconciled yet: git pull, and check `gitca status`",
        )
    })
}

/// A leaf certificate (DER) and its subject public key info.
struct LedgerLeaf {
    der: Vec<u8>,
    spki: Vec<u8>,
}

/// The leaf of `certs/NAME.crt`, refused unless it is the certificate the ledger records as
/// current.
fn ledger_leaf(
    repo: &CaRepo,
    name: &str,
    current: &crate::repository::ledger::Record,
) -> Result<LedgerLeaf> {
    let cert_text = read(
        &repo.dir,
        &crate::layout::cert_path(name),
        ca::MAX_CERT_BYTES,
    )?;
    let certs = parse_pem_certs(&cert_text);
    let leaf = certs.first().ok_or_else(|| {
        Error::bad_file(
            crate::layout::cert_path(name),
            "no certificate",
            "run gitca check",
        )
    })?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| {
        Error::bad_file(
            crate::layout::cert_path(name),
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
    Ok(LedgerLeaf {
        der: leaf.clone(),
        spki: parsed.public_key().raw.to_vec(),
    })
}

/// The client key at `path` (PEM), refused unless it is the key the certificate certifies.
fn read_matching_key(path: &Path, name: &str, spki: &[u8]) -> Result<Zeroizing<String>> {
    let (key_text, key) = read_client_key(path)?;
    if !crate::authority::pubkey::same_key(
        &rcgen::PublicKeyData::subject_public_key_info(&key),
        spki,
    ) {
        return Err(Error::usage(
            format!("{} is not the key of {name}'s certificate", path.display()),
            format!("pass the key `gitca request {name}` made; if it is lost, make a new one with `gitca request {name} --rotate`"),
        ));
    }
    Ok(key_text)
}

/// Says what was installed where (and warns when Docker will not read it).
fn report_installed(
    args: &BundleOptions,
    current: &crate::repository::ledger::Record,
    anchor: &ca::CaCert,
    target: &Target,
    out: &mut dyn Write,
) {
    let name = &args.name;
    let _ = writeln!(
        out,
        "Installed {name}'s client certificate in {}",
        target.dir.display()
    );
    let _ = writeln!(
        out,
        "  client.cert  certificate {} (first), then the CA",
        current.serial
    );
    let _ = writeln!(out, "  client.key   private key (0600)");
    let _ = writeln!(out, "  ca.crt       {}", anchor.subject);
    if target.containerd_host.is_some() {
        let _ = writeln!(
            out,
            "  hosts.toml   containerd's host configuration (client = [[cert, key]])"
        );
    }
    let _ = writeln!(out, "  valid until  {}", fmt_time(current.not_after));
    if let Some(r) = args.target.docker_loopback() {
        let _ = writeln!(out, "warning: {}", docker_loopback_warning(r));
    }
}

/// The PKCS#12 password: GITCA_P12_PASSWORD, else asked twice; never empty.
fn p12_password() -> Result<Zeroizing<String>> {
    use std::io::IsTerminal;
    let pass = match std::env::var("GITCA_P12_PASSWORD") {
        Ok(p) => Zeroizing::new(p),
        Err(_) if std::io::stdin().is_terminal() => {
            let a = Zeroizing::new(
                rpassword::prompt_password("Password for the PKCS#12 file: ")
                    .map_err(|_| Error::NoPassphrase)?,
            );
            let b = Zeroizing::new(
                rpassword::prompt_password("Repeat the password: ")
                    .map_err(|_| Error::NoPassphrase)?,
            );
            if *a != *b {
                return Err(Error::PassphraseMismatch);
            }
            a
        }
        Err(_) => {
            return Err(Error::usage(
                "a PKCS#12 file needs a password and there is no terminal to ask for it",
                "set GITCA_P12_PASSWORD",
            ))
        }
    };
    if pass.is_empty() {
        return Err(Error::usage(
            "the PKCS#12 password is empty",
            "an unprotected PKCS#12 file is a bare private key: set a password (GITCA_P12_PASSWORD)",
        ));
    }
    Ok(pass)
}

/// Writes the key and its certificate chain as PKCS#12: PBES2 (AES-256-CBC, PBKDF2-SHA256) and
/// an HMAC-SHA-256 MAC, or with `legacy` 3DES and an HMAC-SHA-1 MAC for old macOS and Windows.
fn write_p12(
    path: &Path,
    name: &str,
    leaf_der: &[u8],
    ca_ders: &[&[u8]],
    key_pem: &str,
    legacy: bool,
    out: &mut dyn Write,
) -> Result<()> {
    use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let password = p12_password()?;
    let bad = |e: p12_keystore::error::Error| Error::Crypto {
        what: "PKCS#12",
        detail: e.to_string(),
    };
    let key_der = Zeroizing::new(
        pem::parse(key_pem)
            .map_err(|_| Error::bad_file(path, "the key is not PEM", "pass the PEM key"))?
            .into_contents(),
    );
    // PKCS#8 is what PKCS#12 carries; rcgen reads SEC1 and PKCS#1 too and writes PKCS#8.
    let pkcs8 = Zeroizing::new(
        rcgen::KeyPair::try_from(key_der.as_slice())
            .or_else(|_| rcgen::KeyPair::from_pem(key_pem))
            .map_err(|e| {
                Error::bad_file(
                    path,
                    format!("the key cannot be read: {e}"),
                    "pass the PEM key",
                )
            })?
            .serialize_der(),
    );
    let key = PrivateKey::from_der(&pkcs8).map_err(bad)?;
    let mut certs = vec![p12_keystore::Certificate::from_der(leaf_der).map_err(bad)?];
    for der in ca_ders {
        certs.push(p12_keystore::Certificate::from_der(der).map_err(bad)?);
    }
    let local_key_id = {
        use sha2::Digest as _;
        sha2::Sha256::digest(leaf_der).to_vec()
    };
    let mut store = KeyStore::new();
    store.add_entry(
        name,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, certs)),
    );
    let mut writer = store.writer(&password);
    if legacy {
        writer = writer
            .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1);
    } else {
        writer = writer
            .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256);
    }
    let data = writer.write().map_err(bad)?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .ok_or_else(|| Error::usage("--p12 names no file", "pass a file path"))?;
    Dir::create(parent)?.write(&file, &data, 0o600)?;
    let _ = writeln!(
        out,
        "Wrote {} (PKCS#12, {}, 0600): {name}'s key, certificate and the CA",
        path.display(),
        if legacy {
            "legacy 3DES/SHA-1"
        } else {
            "AES-256/SHA-256"
        }
    );
    Ok(())
}

/// Writes a set of files into `dir` all or nothing: each to a new temporary file (exclusive,
/// unpredictable name, never through a link; an existing file's mode and owner kept, see
/// [`Dir::stage_keeping`]), synced, then all renamed into place.
pub fn install_files(dir: &Dir, files: &[(&str, &[u8], u32)]) -> Result<()> {
    let mut staged = Vec::new();
    for (name, data, mode) in files {
        match dir
            .stage_keeping(name, data, *mode)
            .and_then(|s| s.sync().map(|()| s))
        {
            Ok(s) => staged.push(s),
            Err(e) => {
                staged
                    .iter()
                    .for_each(crate::repository::confined::Staged::discard);
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
    fn docker_ignores_certs_d_for_loopback_only() {
        for r in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:443",
            "LOCALHOST",
            "reg.localhost:5000",
        ] {
            assert!(docker_ignores_certs_d(r), "{r}");
        }
        for r in [
            "192.0.2.10:5443",
            "registry.example.com:5000",
            "[::1]:5000",
            "128.0.0.1",
            "localhost.example.com",
        ] {
            assert!(!docker_ignores_certs_d(r), "{r}");
        }
    }

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
