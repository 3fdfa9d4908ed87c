//! The Docker registry side: `gitca bundle` (a client's certs.d files), `gitca doctor` (why a
//! client certificate would be refused) and `gitca export` (nginx and registry configuration).
//!
//! Facts this module is built on (measured with the real programs, see DESIGN.md): the registry
//! never checks a CRL, so nginx in front must (`ssl_crl`); nginx reads the CRL only at start and
//! reload; an expired CRL makes nginx refuse everyone; Docker wants the client certificate first
//! in `client.cert`, treats `*.crt` as CA roots, and pairs each `X.cert` with `X.key`.

use std::io::Write;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use zeroize::Zeroizing;

use crate::ca::{self, CaCert};
use crate::confined::Dir;
use crate::error::{Error, Result};
use crate::init::{CA_CERT, CRL_FILE};
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

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The client certificate (or Docker's client.cert bundle).
    #[arg(
        long,
        value_name = "FILE",
        requires = "key",
        conflicts_with = "certs_dir"
    )]
    pub cert: Option<PathBuf>,
    /// The private key that goes with it.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// A Docker/Podman certs.d directory, e.g. /etc/docker/certs.d/registry.example.com:5000.
    #[arg(long, value_name = "DIR", required_unless_present = "cert")]
    pub certs_dir: Option<PathBuf>,
    /// The CA certificate (default: ca/ca.crt of the CA repository, or the certs.d directory's ca.crt).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The CRL (default: crl/ca.crl of the CA repository).
    #[arg(long, value_name = "FILE")]
    pub crl: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportTarget {
    /// nginx server block enforcing client certificates and the CRL, proxying to the registry.
    Nginx,
    /// docker-registry (distribution) configuration.
    Registry,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    pub target: ExportTarget,
    /// nginx: address to listen on (e.g. 443 or 127.0.0.1:8443). registry: http.addr.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// nginx: server_name.
    #[arg(long, default_value = "_", value_name = "NAME")]
    pub server_name: String,
    /// nginx: the registry it proxies to.
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "HOST:PORT")]
    pub upstream: String,
    /// The server's TLS certificate.
    #[arg(long, default_value = "/etc/gitca/server.crt", value_name = "PATH")]
    pub tls_cert: String,
    /// The server's TLS key.
    #[arg(long, default_value = "/etc/gitca/server.key", value_name = "PATH")]
    pub tls_key: String,
    /// Where the server reads this CA's certificate (deploy ca/ca.crt there).
    #[arg(long, default_value = "/etc/gitca/ca.crt", value_name = "PATH")]
    pub client_ca: String,
    /// nginx: where it reads the CRL (deploy crl/ca.crl there after every reconcile).
    #[arg(long, default_value = "/etc/gitca/ca.crl", value_name = "PATH")]
    pub crl: String,
    /// nginx: emit a complete nginx.conf (daemon off, pid, logs and temp paths under PREFIX)
    /// instead of a server block for conf.d.
    #[arg(long, value_name = "PREFIX")]
    pub standalone: Option<PathBuf>,
    /// registry: plain HTTP on loopback for use behind the nginx of `gitca export nginx`.
    #[arg(long)]
    pub behind_nginx: bool,
    /// registry: storage directory.
    #[arg(long, default_value = "/var/lib/docker-registry", value_name = "DIR")]
    pub storage: String,
}

/// Reads a private key PEM for a client, refusing encrypted and non-PEM keys.
fn read_client_key(path: &Path) -> Result<(Zeroizing<String>, rcgen::KeyPair)> {
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

fn parse_pem_certs(text: &str) -> Vec<Vec<u8>> {
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

/// One thing doctor found.
struct Finding {
    ok: bool,
    text: String,
    fix: String,
}

struct Doctor {
    findings: Vec<Finding>,
}

impl Doctor {
    fn good(&mut self, text: impl Into<String>) {
        self.findings.push(Finding {
            ok: true,
            text: text.into(),
            fix: String::new(),
        });
    }
    fn bad(&mut self, text: impl Into<String>, fix: impl Into<String>) {
        self.findings.push(Finding {
            ok: false,
            text: text.into(),
            fix: fix.into(),
        });
    }
    fn note(&mut self, text: impl Into<String>) {
        self.findings.push(Finding {
            ok: true,
            text: format!("note: {}", text.into()),
            fix: String::new(),
        });
    }
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    cert.basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca)
}

/// Revocations on a CRL: serial → (time, reason).
fn crl_revocations(
    text: &str,
    ca: Option<&CaCert>,
) -> Result<Vec<(String, OffsetDateTime, String)>> {
    let block = pem::parse(text)
        .map_err(|_| Error::bad_file(CRL_FILE, "not a PEM CRL", "pass --crl FILE"))?;
    let (_, crl) = x509_parser::parse_x509_crl(block.contents())
        .map_err(|e| Error::bad_file(CRL_FILE, e.to_string(), "pass --crl FILE"))?;
    if let Some(ca) = ca {
        let (_, c) = x509_parser::parse_x509_certificate(&ca.der)
            .map_err(|e| Error::bad_file(CA_CERT, e.to_string(), ""))?;
        crl.verify_signature(c.public_key()).map_err(|_| {
            Error::bad_file(
                CRL_FILE,
                "the CRL is not signed by the CA",
                "pass the CRL of this CA",
            )
        })?;
    }
    Ok(crl
        .iter_revoked_certificates()
        .map(|r| {
            let reason = r
                .reason_code()
                .map(|(_, rc)| {
                    crate::ledger::RevocationReason::ALL
                        .into_iter()
                        .find(|r| r.code() == rc.0)
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_else(|| format!("reason {}", rc.0))
                })
                .unwrap_or_else(|| "unspecified".into());
            (
                ca::serial_hex(r.raw_serial()),
                r.revocation_date.to_datetime(),
                reason,
            )
        })
        .collect())
}

fn check_pair(
    d: &mut Doctor,
    cert_path: &Path,
    key_path: Option<&Path>,
    ca: Option<&CaCert>,
    crl: Option<&[(String, OffsetDateTime, String)]>,
    now: OffsetDateTime,
) {
    let shown = cert_path.display().to_string();
    let text = match crate::confined::read_named_string(cert_path, ca::MAX_CERT_BYTES, "read") {
        Ok(t) => t,
        Err(e) => {
            return d.bad(
                format!("{shown}: cannot read it ({e})"),
                "check the path and permissions",
            )
        }
    };
    let ders = parse_pem_certs(&text);
    if ders.is_empty() {
        return d.bad(
            format!("{shown} holds no PEM certificate"),
            "use the client.cert written by `gitca bundle`",
        );
    }
    let parsed: Vec<X509Certificate<'_>> = ders
        .iter()
        .filter_map(|der| {
            x509_parser::parse_x509_certificate(der)
                .ok()
                .map(|(_, c)| c)
        })
        .collect();
    if parsed.len() != ders.len() {
        return d.bad(
            format!("{shown} holds a certificate that cannot be parsed"),
            "re-create it with `gitca bundle`",
        );
    }
    let leaf_at = parsed.iter().position(|c| !is_ca(c)).unwrap_or(0);
    if leaf_at > 0 {
        d.bad(
            format!("{shown} starts with the CA certificate; the client certificate comes {}", ordinal(leaf_at + 1)),
            "Docker reads the first certificate as the client's and then says \"private key does not match public key\": put the client certificate first (gitca bundle does)",
        );
    }
    let leaf = &parsed[leaf_at];
    let who = leaf.subject().to_string();
    if let Some(key_path) = key_path {
        match read_client_key(key_path) {
            Ok((_, key)) if crate::pubkey::same_key(&rcgen::PublicKeyData::subject_public_key_info(&key), leaf.public_key().raw) => {
                d.good(format!("the key matches the certificate of {who}"))
            }
            Ok(_) => d.bad(
                format!("{} does not match the certificate of {who}", key_path.display()),
                "use the key that made this certificate's CSR; if it is lost, `gitca request NAME --rotate` makes a new one",
            ),
            Err(e) => d.bad(format!("{e}"), e.help().map(|h| h.to_string()).unwrap_or_default()),
        }
    }
    let v = leaf.validity();
    let (nb, na) = (v.not_before.to_datetime(), v.not_after.to_datetime());
    if now < nb {
        d.bad(
            format!("the certificate is not valid before {}", fmt_time(nb)),
            "check this machine's clock, or wait",
        );
    } else if now >= na {
        d.bad(
            format!("the certificate expired {}", fmt_time(na)),
            "renewal happens in reconcile: pull the CA repository and run `gitca bundle` again (or ask for a reconcile)",
        );
    } else {
        d.good(format!("valid until {}", fmt_time(na)));
    }
    let eku = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(k) => Some(k.client_auth || k.any),
            _ => None,
        });
    match eku {
        Some(true) => d.good("extended key usage allows TLS client authentication"),
        Some(false) => d.bad(
            "the certificate has no clientAuth extended key usage: the registry (Go) refuses it with \"incompatible key usage\"",
            "issue it from a profile with `extended_key_usage: [client_auth]` (gitca's user and bot profiles)",
        ),
        None => d.note("no extended key usage extension: allowed for any use"),
    }
    if let Some(ca) = ca {
        let issued = x509_parser::parse_x509_certificate(&ca.der)
            .ok()
            .is_some_and(|(_, c)| {
                leaf.issuer() == c.subject() && leaf.verify_signature(Some(c.public_key())).is_ok()
            });
        if issued {
            d.good(format!("issued by {}", ca.subject));
        } else {
            d.bad(
                format!("not issued by this CA ({}); issuer is {}", ca.subject, leaf.issuer()),
                "the server trusts only ca/ca.crt of the CA repository: get a certificate from this CA (gitca request, then reconcile)",
            );
        }
    }
    if let Some(crl) = crl {
        let serial = ca::serial_hex(leaf.raw_serial());
        match crl.iter().find(|(s, _, _)| *s == serial) {
            Some((_, at, reason)) => d.bad(
                format!("revoked on {} ({reason}): nginx refuses it", fmt_time(*at)),
                "a revoked certificate never comes back: if you still need access, get re-declared and make a new key (gitca request NAME)",
            ),
            None => d.good("not on the current CRL"),
        }
    }
}

fn ordinal(n: usize) -> String {
    match n {
        2 => "second".into(),
        3 => "third".into(),
        n => format!("{n}th"),
    }
}

/// The top-level entry point for `gitca doctor`. Exit 0 only when all is well.
pub fn run_doctor(
    dir: &Path,
    now: OffsetDateTime,
    args: &DoctorArgs,
    out: &mut dyn Write,
) -> Result<u8> {
    let repo = CaRepo::open(dir).ok();
    let mut d = Doctor {
        findings: Vec::new(),
    };
    let ca_text = match (&args.ca, &repo, &args.certs_dir) {
        (Some(p), _, _) => Some(crate::confined::read_named_string(
            p,
            ca::MAX_CERT_BYTES,
            "read",
        )?),
        (None, Some(r), _) => read(&r.dir, CA_CERT, ca::MAX_CERT_BYTES).ok(),
        (None, None, Some(dir)) => Dir::open(dir)
            .and_then(|d| d.read_string("ca.crt", ca::MAX_CERT_BYTES))
            .ok(),
        _ => None,
    };
    let ca = ca_text.as_deref().map(CaCert::parse).transpose()?;
    let crl_text = match (&args.crl, &repo) {
        (Some(p), _) => Some(crate::confined::read_named_string(
            p,
            ca::MAX_CRL_BYTES,
            "read",
        )?),
        (None, Some(r)) => read(&r.dir, CRL_FILE, ca::MAX_CRL_BYTES).ok(),
        _ => None,
    };
    let crl = crl_text
        .as_deref()
        .map(|t| crl_revocations(t, ca.as_ref()))
        .transpose()?;
    if ca.is_none() {
        d.note(
            "no CA certificate given (--ca, or run inside the CA repository): issuer not checked",
        );
    }
    if crl.is_none() {
        d.note("no CRL given (--crl, or run inside the CA repository): revocation not checked");
    }
    match (&args.cert, &args.certs_dir) {
        (Some(cert), _) => check_pair(
            &mut d,
            cert,
            args.key.as_deref(),
            ca.as_ref(),
            crl.as_deref(),
            now,
        ),
        (None, Some(dir)) => check_certs_dir(&mut d, dir, ca.as_ref(), crl.as_deref(), now)?,
        (None, None) => unreachable!("clap requires one"),
    }
    let problems = d.findings.iter().filter(|f| !f.ok).count();
    for f in &d.findings {
        if f.ok {
            let _ = writeln!(out, "  ✔ {}", f.text);
        } else {
            let _ = writeln!(out, "  ✘ {}\n    fix: {}", f.text, f.fix);
        }
    }
    if problems == 0 {
        let _ = writeln!(
            out,
            "All is well: the server should accept this client certificate."
        );
        Ok(0)
    } else {
        let _ = writeln!(
            out,
            "{problems} problem(s): the server would refuse this client certificate."
        );
        Ok(1)
    }
}

fn check_certs_dir(
    d: &mut Doctor,
    dir: &Path,
    ca: Option<&CaCert>,
    crl: Option<&[(String, OffsetDateTime, String)]>,
    now: OffsetDateTime,
) -> Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if !name.contains(':') {
        d.note(format!(
            "directory `{name}` has no port: Docker uses it for {name}:443 only; for a registry on another port name it `{name}:PORT`"
        ));
    }
    let listing = Dir::open(dir)?;
    let files: Vec<String> = listing
        .list("")?
        .into_iter()
        .filter(|(_, kind)| *kind == crate::confined::Kind::File)
        .map(|(name, _)| name)
        .collect();
    let stem = |f: &str, ext: &str| f.strip_suffix(ext).map(str::to_string);
    let mut pairs = 0;
    for f in &files {
        if let Some(s) = stem(f, ".cert") {
            if files.contains(&format!("{s}.key")) {
                pairs += 1;
                check_pair(
                    d,
                    &dir.join(f),
                    Some(&dir.join(format!("{s}.key"))),
                    ca,
                    crl,
                    now,
                );
            } else {
                d.bad(
                    format!("{f} has no {s}.key beside it"),
                    format!(
                        "Docker pairs X.cert with X.key: add {s}.key (gitca bundle writes both)"
                    ),
                );
            }
        } else if let Some(s) = stem(f, ".key") {
            if !files.contains(&format!("{s}.cert")) {
                let hint = if files.contains(&format!("{s}.crt")) {
                    format!("rename {s}.crt to {s}.cert: Docker treats every .crt file as a CA root, not as a client certificate")
                } else {
                    format!("add {s}.cert (the client certificate, first in the file)")
                };
                d.bad(format!("{f} has no {s}.cert beside it"), hint);
            }
        } else if f.ends_with(".crt") {
            let text = listing
                .read_string(f, ca::MAX_CERT_BYTES)
                .unwrap_or_default();
            let client = parse_pem_certs(&text)
                .first()
                .and_then(|der| {
                    x509_parser::parse_x509_certificate(der)
                        .ok()
                        .map(|(_, c)| !is_ca(&c))
                })
                .unwrap_or(false);
            if client {
                d.bad(
                    format!("{f} is a client certificate, but Docker reads every .crt file as a CA root"),
                    format!("rename it to {}.cert (with its key as {}.key)", f.trim_end_matches(".crt"), f.trim_end_matches(".crt")),
                );
            } else {
                d.good(format!("{f}: CA root"));
            }
        } else if f.ends_with(".pem") {
            d.note(format!(
                "{f} is ignored by Docker (it reads .crt, .cert and .key only)"
            ));
        }
    }
    if pairs == 0 && !d.findings.iter().any(|f| !f.ok) {
        d.bad(
            "no client certificate (X.cert with X.key) in the directory",
            "run gitca bundle NAME --key KEY --registry HOST:PORT",
        );
    }
    Ok(())
}

/// The top-level entry point for `gitca export`.
pub fn run_export(dir: &Path, args: &ExportArgs, out: &mut dyn Write) -> Result<()> {
    // Exporting needs no repository state, but refusing outside a CA catches a wrong -C early.
    let repo = CaRepo::open(dir)?;
    let ca = CaCert::parse(&read(&repo.dir, CA_CERT, ca::MAX_CERT_BYTES)?)?;
    let text = match args.target {
        ExportTarget::Nginx => export_nginx(args, &ca),
        ExportTarget::Registry => export_registry(args, &ca)?,
    };
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

fn export_nginx(a: &ExportArgs, ca: &CaCert) -> String {
    let listen = a.listen.clone().unwrap_or_else(|| "443".into());
    let server = format!(
        r#"# Generated by `gitca export nginx` for {subject}.
# nginx checks every client certificate against the CA *and the CRL*: the Docker registry
# alone never checks revocation, so it must only be reachable through this server.
#
# After every `gitca reconcile`: deploy crl/ca.crl to {crl} and run `nginx -s reload`;
# nginx reads the CRL only at start and reload (a reload with a broken CRL keeps the old one).
# An EXPIRED CRL LOCKS EVERY CLIENT OUT ("CRL has expired"): keep a daily reconcile running and
# monitor it with `gitca status --expiring 2d`.
map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {{
    '' 'registry/2.0';
}}

server {{
    listen {listen} ssl;
    server_name {server_name};

    ssl_certificate         {tls_cert};
    ssl_certificate_key     {tls_key};
    ssl_protocols           TLSv1.2 TLSv1.3;

    # Client certificates: required, issued by the gitca CA, not revoked.
    ssl_verify_client       on;
    ssl_client_certificate  {client_ca};
    ssl_crl                 {crl};
    ssl_verify_depth        2;

    client_max_body_size 0;          # layers can be large
    chunked_transfer_encoding on;

    location /v2/ {{
        proxy_pass                          http://{upstream};
        proxy_request_buffering             off;
        proxy_set_header  Host              $http_host;
        proxy_set_header  X-Real-IP         $remote_addr;
        proxy_set_header  X-Forwarded-For   $proxy_add_x_forwarded_for;
        proxy_set_header  X-Forwarded-Proto $scheme;
        proxy_set_header  X-SSL-Client-S-DN $ssl_client_s_dn;
        proxy_set_header  X-SSL-Client-Verify $ssl_client_verify;
        add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;
        proxy_read_timeout 900;
    }}
}}
"#,
        subject = ca.subject,
        crl = a.crl,
        listen = listen,
        server_name = a.server_name,
        tls_cert = a.tls_cert,
        tls_key = a.tls_key,
        client_ca = a.client_ca,
        upstream = a.upstream,
    );
    match &a.standalone {
        None => server,
        Some(prefix) => {
            let p = prefix.display();
            let indented: String = server
                .lines()
                .map(|l| {
                    if l.is_empty() {
                        "\n".to_string()
                    } else {
                        format!("    {l}\n")
                    }
                })
                .collect();
            format!(
                "# A complete nginx.conf: run with\n#   nginx -p {p}/ -c {p}/nginx.conf -e {p}/logs/error.log\n# (mkdir -p {p}/logs {p}/tmp; chmod 1777 {p}/tmp: workers run as nobody)\ndaemon off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log info;\nevents {{ worker_connections 64; }}\nhttp {{\n    access_log {p}/logs/access.log;\n    client_body_temp_path {p}/tmp/body;\n    proxy_temp_path       {p}/tmp/proxy;\n    fastcgi_temp_path     {p}/tmp/fastcgi;\n    uwsgi_temp_path       {p}/tmp/uwsgi;\n    scgi_temp_path        {p}/tmp/scgi;\n\n{indented}}}\n"
            )
        }
    }
}

fn export_registry(a: &ExportArgs, ca: &CaCert) -> Result<String> {
    let (header, addr, tls) = if a.behind_nginx {
        (
            format!(
                "# Generated by `gitca export registry --behind-nginx`.\n\
                 # Plain HTTP on loopback: clients reach it only through the nginx of `gitca export nginx`,\n\
                 # which checks their certificates against {} and its CRL.\n",
                ca.subject
            ),
            a.listen.clone().unwrap_or_else(|| "127.0.0.1:5000".into()),
            String::new(),
        )
    } else {
        (
            format!(
                "# Generated by `gitca export registry` for {}.\n\
                 # WARNING: the registry's own TLS (`http.tls.clientcas`) accepts every client certificate that\n\
                 # chains to the CA and NEVER CHECKS REVOCATION: an offboarded user keeps access until their\n\
                 # certificate expires. Put the nginx of `gitca export nginx` in front (and use\n\
                 # `gitca export registry --behind-nginx`), or rely on short-lived (bot profile) certificates.\n",
                ca.subject
            ),
            a.listen.clone().unwrap_or_else(|| ":5000".into()),
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
                a.tls_cert, a.tls_key, a.client_ca
            ),
        )
    };
    // The registry signs upload state with http.secret: a random one per export.
    let mut secret = [0u8; 24];
    aws_lc_rs::rand::fill(&mut secret).map_err(|_| Error::Crypto {
        what: "registry http.secret",
        detail: "the system random generator failed".into(),
    })?;
    Ok(format!(
        "{header}version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: {secret}\n{tls}  headers:\n    X-Content-Type-Options: [nosniff]\n",
        storage = a.storage,
        secret = hex::encode(secret),
    ))
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
