//! `gitca export`: server configuration for the CA — nginx in front of the registry (it
//! enforces client certificates and the CRL), or the registry's own TLS.
//!
//! The registry never checks a CRL, so nginx in front must (`ssl_crl`); nginx reads the CRL
//! only at start and reload (see DESIGN.md).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::authority::ca::{self, CaCert};
use crate::error::{Error, Result};
use crate::layout::{CA_CERT, CONFIG_FILE, ROOT_CERT};
use crate::repository::git::CaRepo;
use crate::repository::load::read;

/// What `gitca export` writes: nginx's configuration or the registry's.
#[derive(Debug)]
pub enum ExportTarget {
    Nginx(NginxOptions),
    Registry(RegistryOptions),
}

/// What both servers are told about TLS: where they read their certificate, their key, and
/// the CA certificate they trust.
#[derive(Debug)]
pub struct TlsOptions {
    pub tls_cert: String,
    pub tls_key: String,
    pub client_ca: String,
}

/// `gitca export nginx`'s values (see its flags for each one's meaning).
#[derive(Debug)]
pub struct NginxOptions {
    pub listen: String,
    pub server_name: String,
    pub upstream: String,
    pub tls: TlsOptions,
    pub crl: String,
    pub admitted: Option<String>,
    pub standalone: Option<PathBuf>,
}

/// `gitca export registry`'s values (see its flags for each one's meaning).
#[derive(Debug)]
pub struct RegistryOptions {
    pub listen: Option<String>,
    pub behind_nginx: bool,
    pub tls: TlsOptions,
    pub storage: String,
    pub allow_delete: bool,
}

/// The top-level entry point for `gitca export`.
pub fn run_export(dir: &Path, cmd: &ExportTarget, out: &mut dyn Write) -> Result<()> {
    // Exporting needs no repository state, but refusing outside a CA catches a wrong -C early.
    let repo = CaRepo::open(dir)?;
    // What the server trusts: the CA, or the root above the intermediates.
    let two_levels = crate::authority::hierarchy::present(&repo.dir);
    let anchor = if two_levels { ROOT_CERT } else { CA_CERT };
    let ca = CaCert::parse(&read(&repo.dir, anchor, ca::MAX_CERT_BYTES)?)?;
    let config = crate::repository::config::Config::parse(&read(
        &repo.dir,
        CONFIG_FILE,
        crate::repository::config::MAX_BYTES,
    )?)?;
    let text = match cmd {
        ExportTarget::Nginx(args) => export_nginx(args, &ca, config.registry.as_ref(), two_levels)?,
        ExportTarget::Registry(args) => export_registry(args, &ca)?,
    };
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

/// nginx maps that turn gitca.yaml's `registry:` rights into `$gitca_allowed`: a member of a
/// push group may use every method, a member of a pull group (everyone, without pull_groups)
/// may GET and HEAD. Groups are the certificate's OUs, and nginx gives the subject as RFC 2253
/// text (`CN=alice,OU=push,O=Acme`), escaping a `,` inside a value as `\,`. The rule therefore
/// matches whole attributes only: it walks the subject from its start one attribute at a time
/// (an attribute is any run of characters and `\`-escaped pairs up to an unescaped comma), and
/// a group matches only as a complete `OU=group` followed by an unescaped comma or the end. A
/// value that tries to forge a group (`CN=x\,OU=push`, `OU=push\,x`, `OU=push+CN=x`) matches
/// nothing. (`\x5c` is PCRE's backslash: nginx itself unescapes `\\` in quoted strings.)
fn rights_maps(r: &crate::repository::config::RegistryPolicy) -> String {
    let group_map = |var: &str, groups: &[String]| {
        let alternatives: Vec<String> = groups.iter().map(|g| g.replace('.', "[.]")).collect();
        if alternatives.is_empty() {
            format!("map $ssl_client_s_dn ${var} {{\n    default 0;\n}}\n")
        } else {
            format!(
                "map $ssl_client_s_dn ${var} {{\n    default 0;\n    \"~^(?:(?:[^\\x5c,]|\\x5c.)*,)*OU=(?:{})(?:,|$)\" 1;\n}}\n",
                alternatives.join("|")
            )
        }
    };
    let mut s = String::from(
        "# Registry rights from gitca.yaml `registry:` (the groups are the certificates' OUs).\n",
    );
    s.push_str(&group_map("gitca_may_push", &r.push_groups));
    match &r.pull_groups {
        Some(g) => s.push_str(&group_map("gitca_may_pull", g)),
        None => s.push_str("map $ssl_client_s_dn $gitca_may_pull {\n    default 1;\n}\n"),
    }
    s.push_str(
        "map $request_method $gitca_reads {\n    GET 1;\n    HEAD 1;\n    default 0;\n}\n\
         map \"$gitca_reads:$gitca_may_push:$gitca_may_pull\" $gitca_allowed {\n    \
         \"~^[01]:1:[01]$\" 1;   # push groups: every method\n    \
         \"1:0:1\"          1;   # pull groups: GET and HEAD\n    \
         default          0;\n}\n\n",
    );
    s
}

/// The operator's values as nginx tokens (see [`crate::output::encode::nginx_value`]); the first one
/// nginx could read as something else is refused, with the flag named.
fn nginx_values(a: &NginxOptions) -> Result<NginxValues> {
    let value = |flag: &str, v: &str| {
        crate::output::encode::nginx_value(v).map_err(|why| {
            Error::usage(
                format!(
                    "{flag} `{}` cannot go into an nginx configuration: {}",
                    crate::output::encode::terminal(v),
                    why.0
                ),
                "pass a plain path, address or name",
            )
        })
    };
    let listen = a.listen.clone();
    check_listen(&listen)?;
    check_host_port("--upstream", &a.upstream)?;
    if a.server_name != "_" {
        crate::authority::subject::check_host(a.server_name.trim_start_matches("*.")).map_err(
            |why| {
                Error::usage(
                    format!(
                        "--server-name `{}` is not a host name: {why}",
                        crate::output::encode::terminal(&a.server_name)
                    ),
                    "pass the registry's DNS name, or leave it out (`_`)",
                )
            },
        )?;
    }
    Ok(NginxValues {
        listen: value("--listen", &listen)?,
        server_name: value("--server-name", &a.server_name)?,
        upstream: value("--upstream", &format!("http://{}", a.upstream))?,
        tls_cert: value("--tls-cert", &a.tls.tls_cert)?,
        tls_key: value("--tls-key", &a.tls.tls_key)?,
        client_ca: value("--client-ca", &a.tls.client_ca)?,
        crl: value("--crl", &a.crl)?,
        admitted: a
            .admitted
            .as_deref()
            .map(|p| value("--admitted", p))
            .transpose()?,
    })
}

struct NginxValues {
    listen: String,
    server_name: String,
    upstream: String,
    tls_cert: String,
    tls_key: String,
    client_ca: String,
    crl: String,
    admitted: Option<String>,
}

/// `--listen`: a port, or an address and a port (`127.0.0.1:8443`, `[::1]:8443`).
fn check_listen(listen: &str) -> Result<()> {
    if listen.parse::<u16>().is_ok_and(|p| p > 0) {
        return Ok(());
    }
    check_host_port("--listen", listen)
}

/// A HOST:PORT the operator gave: a host name or an IP address (IPv6 in brackets), and a port.
pub fn check_host_port(flag: &str, value: &str) -> Result<()> {
    crate::relying::bundle::parse_host_port(value).map(|_| ()).map_err(|why| {
        Error::usage(
            format!("{flag} `{}` is not HOST:PORT: {why}", crate::output::encode::terminal(value)),
            "pass a host name or an IP address and a port, e.g. registry.example.com:5000 or [::1]:5000",
        )
    })
}

/// The nginx configuration: a server block for conf.d, or with `--standalone` a complete
/// nginx.conf around it.
fn export_nginx(
    a: &NginxOptions,
    ca: &CaCert,
    rights: Option<&crate::repository::config::RegistryPolicy>,
    two_levels: bool,
) -> Result<String> {
    let v = nginx_values(a)?;
    let chain_note = chain_note(&v, two_levels);
    let (maps, check) = access_rules(&v, rights);
    let server = server_block(ca, &v, &chain_note, &maps, &check);
    match &a.standalone {
        None => Ok(server),
        Some(prefix) => standalone_conf(prefix, &server),
    }
}

/// With an offline root, the comment on what the client CA file and the CRL file must hold.
fn chain_note(v: &NginxValues, two_levels: bool) -> String {
    if two_levels {
        "#
# An offline root: {client_ca} holds the ROOT (ca/root.crt); clients present their certificate
# and the intermediate (client.cert, as gitca bundle writes it). nginx checks the CRL of every CA
# in the chain: {crl} must hold the root's CRL and the intermediates' (gitca deploy crl writes
# them all), and ssl_verify_depth 2 lets the chain be leaf, intermediate, root.
"
        .replace("{client_ca}", &v.client_ca)
        .replace("{crl}", &v.crl)
    } else {
        String::new()
    }
}

/// The maps and the `location` checks that refuse (403) who may not push or pull, and, with
/// `--admitted`, certificates not on the signed admission list.
fn access_rules(
    v: &NginxValues,
    rights: Option<&crate::repository::config::RegistryPolicy>,
) -> (String, String) {
    let mut maps = rights.map(rights_maps).unwrap_or_default();
    let mut check = if rights.is_some() {
        "        # Who may push and pull (gitca.yaml `registry:`).\n        if ($gitca_allowed = 0) { return 403; }\n".to_string()
    } else {
        String::new()
    };
    if let Some(path) = &v.admitted {
        // Serial and SHA-1 fingerprint of the whole certificate together: whoever holds the CA
        // key can copy an admitted serial, not the certificate's fingerprint.
        maps.push_str(&format!(
            "# Admission by record: only certificates on the CA's signed admission list, as\n# `gitca deploy admission --out {path}` installed it (reload nginx after each install).\n# Its keys (serial:fingerprint) are up to 81 characters: more than the default buckets hold.\nmap_hash_bucket_size 128;\nmap \"$ssl_client_serial:$ssl_client_fingerprint\" $gitca_admitted {{\n    default 0;\n    include {path};\n}}\n\n"
        ));
        check.insert_str(
            0,
            "        # Not on the signed admission list: issued outside the CA's reviewed history.\n        if ($gitca_admitted = 0) { return 403; }\n",
        );
    }
    (maps, check)
}

/// The server block: client certificates required, checked against the CA and the CRL.
fn server_block(ca: &CaCert, v: &NginxValues, chain_note: &str, maps: &str, check: &str) -> String {
    format!(
        r#"# Generated by `gitca export nginx` for {subject}.
# nginx checks every client certificate against the CA *and the CRL*: the Docker registry
# alone never checks revocation, so it must only be reachable through this server.
#
# Keep {crl} current with `gitca deploy crl --out {crl} --reload 'nginx -t && nginx -s reload'`
# (a systemd timer or --watch): nginx reads the CRL only at start and reload, and a reload with a
# broken CRL keeps the old one. An EXPIRED CRL LOCKS EVERY CLIENT OUT ("CRL has expired"): keep
# the CA's daily reconcile running, and alert on deploy's exit code 4 or its metrics.
{chain_note}{maps}map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {{
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
{check}        proxy_pass                          {upstream};
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
        subject = crate::output::encode::comment_line(&ca.subject),
        crl = v.crl,
        listen = v.listen,
        server_name = v.server_name,
        tls_cert = v.tls_cert,
        tls_key = v.tls_key,
        client_ca = v.client_ca,
        upstream = v.upstream,
        maps = maps,
        check = check,
        chain_note = chain_note,
    )
}

/// A complete nginx.conf (daemon off, pid, logs and temp paths under `prefix`) around the
/// server block.
fn standalone_conf(prefix: &Path, server: &str) -> Result<String> {
    let p = prefix.display().to_string();
    let at = |suffix: &str| {
        crate::output::encode::nginx_value(&format!("{p}{suffix}")).map_err(|why| {
            Error::usage(
                format!(
                    "--standalone `{}` cannot go into an nginx configuration: {}",
                    crate::output::encode::terminal(&p),
                    why.0
                ),
                "pass a plain directory path",
            )
        })
    };
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
    Ok(format!(
        "# A complete nginx.conf: run with\n#   nginx -p {p}/ -c {p}/nginx.conf -e {p}/logs/error.log\n# (mkdir -p {p}/logs {p}/tmp; chmod 1777 {p}/tmp: workers run as nobody)\ndaemon off;\nworker_processes 1;\npid {pid};\nerror_log {log} info;\nevents {{ worker_connections 64; }}\nhttp {{\n    access_log {access};\n    client_body_temp_path {body};\n    proxy_temp_path       {proxy};\n    fastcgi_temp_path     {fastcgi};\n    uwsgi_temp_path       {uwsgi};\n    scgi_temp_path        {scgi};\n\n{indented}}}\n",
        p = at("")?.trim_matches('"'),
        pid = at("/nginx.pid")?,
        log = at("/logs/error.log")?,
        access = at("/logs/access.log")?,
        body = at("/tmp/body")?,
        proxy = at("/tmp/proxy")?,
        fastcgi = at("/tmp/fastcgi")?,
        uwsgi = at("/tmp/uwsgi")?,
        scgi = at("/tmp/scgi")?,
    ))
}

/// Every value an operator passes reaches the registry's YAML as one scalar (quoted where YAML
/// would read it as anything else), never as syntax.
fn export_registry(a: &RegistryOptions, ca: &CaCert) -> Result<String> {
    let q = crate::repository::yaml::quote;
    let (header, addr, tls) = if a.behind_nginx {
        (
            format!(
                "# Generated by `gitca export registry --behind-nginx`.\n\
                 # Plain HTTP on loopback: clients reach it only through the nginx of `gitca export nginx`,\n\
                 # which checks their certificates against {} and its CRL.\n",
                crate::output::encode::comment_line(&ca.subject)
            ),
            q(a.listen.as_deref().unwrap_or("127.0.0.1:5000")),
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
                crate::output::encode::comment_line(&ca.subject)
            ),
            q(a.listen.as_deref().unwrap_or(":5000")),
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
                q(&a.tls.tls_cert),
                q(&a.tls.tls_key),
                q(&a.tls.client_ca)
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
        "{header}version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: {delete}\nhttp:\n  addr: {addr}\n  secret: {secret}\n{tls}  headers:\n    X-Content-Type-Options: [nosniff]\n",
        storage = q(&a.storage),
        delete = a.allow_delete,
        secret = hex::encode(secret),
    ))
}
