//! `gitca request`: the person's side of onboarding. Makes a private key on this machine
//! (outside the repository, 0600, never overwriting), writes `csr/NAME.csr`, and adds the
//! identity to an identities file while keeping that file's comments and layout.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DnType};
use zeroize::Zeroizing;

use crate::authority::keygen::KeyType;
use crate::error::{Error, Result};
use crate::repository::config::{self, Config};
use crate::repository::confined::Dir;
use crate::repository::git::{self, CaRepo};
use crate::repository::inventory::{self, valid_name, Identity};
use crate::repository::ledger::{Ledger, Record};
use crate::repository::load::read;
use crate::repository::yaml;

/// What a request asks for: the `gitca request` flags, as plain values.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The identity's name: [a-z0-9][a-z0-9._-]*; becomes the certificate's CN.
    pub name: String,
    /// Declare a bot (short-lived `bot` profile) instead of a user.
    pub bot: bool,
    /// Declare a TLS server (the `server` profile: serverAuth only): run this on the server,
    /// whose key stays there. Needs --dns-name or --ip-address; the names must be within
    /// gitca.yaml's `servers:` policy.
    pub server: bool,
    /// A DNS name of the server (lower case; IDNs as xn-- A-labels). Repeatable; the first
    /// becomes the CN.
    pub dns_names: Vec<String>,
    /// An IP address of the server. Repeatable.
    pub ip_addresses: Vec<String>,
    /// Email address for the certificate's SAN.
    pub email: Option<String>,
    /// The certificate's CN when it is not the name (`Alice Liddell`): 1 to 64 letters,
    /// digits and spaces of one script, with . - _ ' ( ) & @ : (docs/onboarding.md, "Names").
    pub common_name: Option<String>,
    /// A group (one OU each). Repeatable.
    pub groups: Vec<String>,
    /// p256 (default), p384, rsa3072 or rsa4096.
    pub key_type: String,
    /// Where to write the private key (default: ~/.config/gitca/keys/NAME.key). Never inside the
    /// repository; never overwritten.
    pub key_out: Option<PathBuf>,
    /// Make the CSR with this existing private key (PEM: PKCS#8, SEC1 or PKCS#1; P-256, P-384,
    /// RSA ≥ 2048, Ed25519) instead of a new one. It is read, never copied or moved.
    pub key: Option<PathBuf>,
    /// Use this CSR, made elsewhere (a hardware token, another tool), instead of making a key.
    /// It is checked with the rules reconcile applies before it is added.
    pub csr: Option<PathBuf>,
    /// This identity was called NAME before (a rename): it keeps NAME's key (pass it with
    /// --key), NAME's entry must go in the same change, and NAME's certificates are revoked
    /// as superseded once the new one is issued.
    pub renamed_from: Option<String>,
    /// The identities file to add the entry to (default: identities/NAME.yaml, one file per
    /// identity, so that pull requests onboarding different people never conflict).
    pub file: Option<String>,
    /// The identity exists already: make a new key and CSR for it (key rotation); the YAML entry
    /// stays as it is and reconcile supersedes the old certificate.
    pub rotate: bool,
}

fn default_key_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("gitca").join("keys")
}

/// Where a new private key goes: its directory (opened without following untrusted links) and
/// its file name.
struct KeyPath {
    dir: Dir,
    name: String,
    shown: PathBuf,
}

/// Refuses a key path inside the repository: a key there is one `git add -A` away from a leak.
fn check_key_path(repo_root: &Path, key: &Path) -> Result<KeyPath> {
    let abs = if key.is_absolute() {
        key.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(Error::io("read", Path::new(".")))?
            .join(key)
    };
    let parent = abs.parent().unwrap_or(Path::new("/"));
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::usage("--key-out names no file", "pass a file path"))?;
    let dir = Dir::create(parent)?;
    if parent.ends_with("gitca/keys") {
        dir.set_mode(0o700)?;
    }
    let real_parent = parent
        .canonicalize()
        .map_err(Error::io("resolve", parent))?;
    let real_root = repo_root
        .canonicalize()
        .map_err(Error::io("resolve", repo_root))?;
    if real_parent.starts_with(&real_root) {
        return Err(Error::usage(
            format!("{} is inside the CA repository", abs.display()),
            "private keys never enter the repository: pass --key-out outside it (default ~/.config/gitca/keys/NAME.key)",
        ));
    }
    if dir.meta(&name)?.is_some() {
        return Err(Error::usage(
            format!(
                "{} exists already; gitca never overwrites a key",
                abs.display()
            ),
            "pass another --key-out, or move the old key away yourself",
        ));
    }
    Ok(KeyPath {
        dir,
        name,
        shown: abs,
    })
}

/// Adds an entry to the `users:` or `bots:` list of an identities file, keeping every other
/// line as it was. Handles `users: []`, an existing block list, and a missing key.
pub fn insert_entry(text: &str, list: &str, entry: &[String]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| {
        let t = l.split('#').next().unwrap_or("").trim_end();
        t == format!("{list}:") || t.replace(' ', "") == format!("{list}:[]")
    });
    let render = |indent: usize| -> Vec<String> {
        let pad = " ".repeat(indent);
        entry
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("{pad}- {l}")
                } else {
                    format!("{pad}  {l}")
                }
            })
            .collect()
    };
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match header {
        None => {
            if out.last().is_some_and(|l| !l.trim().is_empty()) {
                out.push(String::new());
            }
            out.push(format!("{list}:"));
            out.extend(render(2));
        }
        Some(h) => {
            if lines[h].contains("[]") {
                out[h] = format!("{list}:");
            }
            // The block runs over the following indented lines (and blank or comment lines
            // between them); the entry goes after its last indented line.
            let mut last = h;
            let mut indent = None;
            for (i, l) in lines.iter().enumerate().skip(h + 1) {
                if l.trim().is_empty() || l.trim_start().starts_with('#') {
                    continue;
                }
                if l.starts_with(' ') || l.starts_with('-') {
                    if indent.is_none() && l.trim_start().starts_with('-') {
                        indent = Some(l.len() - l.trim_start().len());
                    }
                    last = i;
                } else {
                    break;
                }
            }
            let new = render(indent.unwrap_or(2));
            out.splice(last + 1..last + 1, new);
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// What a request will write, worked out and checked before anything is written.
pub struct Draft {
    config: Config,
    key_type: KeyType,
    ledger: Option<Ledger>,
    /// The identity is declared already as a server (a rotation's report names `deploy cert`).
    declared_server: bool,
    /// The CN the CSR must carry.
    cn: String,
    csr_rel: String,
    /// The identities file the entry goes into.
    file: String,
    key_source: KeySource,
    /// The identities file with the new entry; `None` for a rotation.
    new_yaml: Option<String>,
}

/// The CSR a request adds, and what its key is.
pub struct Csr {
    pem: String,
    key_desc: String,
}

/// With --rotate: the identity's current certificate, and whether the CSR keeps its key.
pub struct Rotation {
    current: Option<Record>,
    same_key: bool,
}

/// Checks everything a request asks for, in order, and works out what it will write: nothing
/// is written yet.
pub fn draft(repo: &CaRepo, args: &Request) -> Result<Draft> {
    let name = &args.name;
    check_name(name)?;
    let key_type: KeyType = args.key_type.parse()?;
    let config = Config::parse(&read(
        &repo.dir,
        crate::layout::CONFIG_FILE,
        config::MAX_BYTES,
    )?)?;
    let existing = inventory::load(&repo.dir, &config)?;
    let declared = existing.get(name);
    let ledger = read_ledger(&repo.dir);
    // Every value the entry will carry passes the grammar reconcile applies, before anything
    // (the key first of all) is written.
    check_values(args, &existing, ledger.as_ref())?;
    let cn = common_name(args, declared);
    require_server_name(args)?;
    let csr_rel = csr_path(&repo.dir, args, declared)?;
    let file = identities_file(args)?;
    let key_source = key_source(&repo.root, args)?;
    check_renamed_from(args)?;
    // The YAML entry, checked by the same loader reconcile uses before anything is written.
    let new_yaml = if args.rotate {
        None
    } else {
        Some(entry_yaml(&repo.dir, args, &csr_rel, &file)?)
    };
    Ok(Draft {
        declared_server: declared.is_some_and(|d| d.kind == inventory::Kind::Server),
        config,
        key_type,
        ledger,
        cn,
        csr_rel,
        file,
        key_source,
        new_yaml,
    })
}

/// Refuses a name reconcile would refuse.
fn check_name(name: &str) -> Result<()> {
    if !valid_name(name) {
        return Err(Error::usage(
            format!("`{name}` is not a valid identity name"),
            "names match [a-z0-9][a-z0-9._-]* (at most 64 characters, no `..`)",
        ));
    }
    Ok(())
}

/// The CN the CSR must carry: the entry's common_name when it has one (imported identities).
/// A server's: its first name (see `Identity::cn`).
fn common_name(args: &Request, declared: Option<&Identity>) -> String {
    declared
        .map(|id| id.cn().to_string())
        .or_else(|| args.common_name.clone())
        .or_else(|| {
            args.server
                .then(|| {
                    args.dns_names
                        .iter()
                        .chain(&args.ip_addresses)
                        .next()
                        .cloned()
                })
                .flatten()
        })
        .unwrap_or_else(|| args.name.clone())
}

/// A new server needs at least one name clients connect to.
fn require_server_name(args: &Request) -> Result<()> {
    if args.server && !args.rotate && args.dns_names.is_empty() && args.ip_addresses.is_empty() {
        return Err(Error::usage(
            "a server needs at least one name",
            "pass --dns-name HOST and/or --ip-address ADDRESS (repeatable): the names clients connect to",
        ));
    }
    Ok(())
}

/// Where the CSR goes: a new identity's `csr/NAME.csr` (which must not exist yet), or a rotated
/// one's current CSR file.
fn csr_path(dir: &Dir, args: &Request, declared: Option<&Identity>) -> Result<String> {
    let name = &args.name;
    let csr_rel =
        match (declared, args.rotate) {
            (Some(_), false) => return Err(Error::usage(
                format!("`{name}` is declared already"),
                "to replace its key, pass --rotate (reconcile then supersedes the old certificate)",
            )),
            (None, true) => {
                return Err(Error::usage(
                    format!("`{name}` is not declared, so there is nothing to rotate"),
                    "drop --rotate to onboard a new identity",
                ))
            }
            (Some(id), true) => id.csr.clone(),
            (None, false) => format!("csr/{name}.csr"),
        };
    if !args.rotate && dir.meta(&csr_rel)?.is_some() {
        return Err(Error::usage(
            format!("{csr_rel} exists already"),
            "remove the stale CSR first, or choose another name",
        ));
    }
    Ok(csr_rel)
}

/// The identities file the entry goes into: --file, else identities/NAME.yaml.
fn identities_file(args: &Request) -> Result<String> {
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| format!("identities/{}.yaml", args.name));
    inventory::normalize_path(&file)
        .ok()
        .filter(|f| f.starts_with("identities/") && (f.ends_with(".yaml") || f.ends_with(".yml")))
        .ok_or_else(|| {
            Error::usage(
                format!("`{file}` is not an identities file"),
                "pass --file identities/NAME.yaml",
            )
        })
}

/// Where the key comes from: made here (the default), an existing one, or none (a CSR made
/// elsewhere).
fn key_source(repo_root: &Path, args: &Request) -> Result<KeySource> {
    let name = &args.name;
    Ok(match (&args.key, &args.csr) {
        (Some(k), _) => KeySource::Existing(existing_key(repo_root, k)?),
        (None, Some(_)) => KeySource::None,
        (None, None) => {
            let key_default = if args.rotate {
                let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
                default_key_dir().join(format!("{name}-{stamp}.key"))
            } else {
                default_key_dir().join(format!("{name}.key"))
            };
            KeySource::New(check_key_path(
                repo_root,
                args.key_out.as_deref().unwrap_or(&key_default),
            )?)
        }
    })
}

/// --renamed-from names another identity.
fn check_renamed_from(args: &Request) -> Result<()> {
    if let Some(former) = &args.renamed_from {
        if !valid_name(former) || *former == args.name {
            return Err(Error::usage(
                format!("`{former}` is not another identity's name"),
                "--renamed-from names the identity this one was called before",
            ));
        }
    }
    Ok(())
}

/// The identities file with the new entry added to its `users:`, `bots:` or `servers:` list
/// (a new file when there is none yet).
fn entry_yaml(dir: &Dir, args: &Request, csr_rel: &str, file: &str) -> Result<String> {
    let name = &args.name;
    let mut entry = vec![format!("name: {name}")];
    if let Some(c) = args.common_name.as_ref().filter(|c| *c != name) {
        entry.push(format!("common_name: {}", yaml::quote(c)));
    }
    if let Some(e) = &args.email {
        entry.push(format!("email: {}", yaml::quote(e)));
    }
    entry.push(format!("csr: {csr_rel}"));
    if !args.groups.is_empty() {
        let gs: Vec<String> = args.groups.iter().map(|g| yaml::quote(g)).collect();
        entry.push(format!("groups: [{}]", gs.join(", ")));
    }
    for (key, values) in [
        ("dns_names", &args.dns_names),
        ("ip_addresses", &args.ip_addresses),
    ] {
        if !values.is_empty() {
            let vs: Vec<String> = values.iter().map(|v| yaml::quote(v)).collect();
            entry.push(format!("{key}: [{}]", vs.join(", ")));
        }
    }
    if let Some(former) = &args.renamed_from {
        entry.push(format!("renamed_from: {former}"));
    }
    let old = match dir.read_opt(file, yaml::MAX_BYTES as u64)? {
        Some(bytes) => String::from_utf8(bytes)
            .map_err(|_| Error::bad_file(file, "is not UTF-8 text", "fix the identities file"))?,
        None => "# yaml-language-server: $schema=../schema/identities.schema.json\n".to_string(),
    };
    Ok(insert_entry(
        &old,
        if args.server {
            "servers"
        } else if args.bot {
            "bots"
        } else {
            "users"
        },
        &entry,
    ))
}

/// The CSR: made with the new or existing key, or taken as given once it passes the checks
/// reconcile applies. A new key is written here, before the CSR and the YAML.
pub fn make_request_csr(args: &Request, draft: &Draft) -> Result<Csr> {
    let cn = &draft.cn;
    let (pem, key_desc) = match (&draft.key_source, &args.csr) {
        (KeySource::None, Some(path)) => given_csr(path, cn)?,
        (KeySource::Existing((_, key)), _) => (make_csr(key, cn)?, describe(key)),
        (KeySource::New(path), _) => {
            let key = draft.key_type.generate()?;
            let csr = make_csr(&key, cn)?;
            let desc = describe(&key);
            let key_pem = Zeroizing::new(key.serialize_pem());
            // The key first, exclusively, 0600; then the CSR and the YAML.
            path.dir.create_new(&path.name, key_pem.as_bytes(), 0o600)?;
            (csr, desc)
        }
        (KeySource::None, None) => unreachable!("no key without --csr"),
    };
    Ok(Csr { pem, key_desc })
}

/// A key brought along (`--key`, `--csr`) that reconcile would refuse is refused now, before
/// the CSR and the YAML are written (see [`refuse_taken_key`]).
pub fn refuse_brought_key(repo: &CaRepo, args: &Request, draft: &Draft, csr: &Csr) -> Result<()> {
    if !matches!(draft.key_source, KeySource::New(_)) {
        refuse_taken_key(
            &repo.dir,
            &csr.pem,
            &args.name,
            args.renamed_from.as_deref(),
        )?;
    }
    Ok(())
}

/// With --rotate: the same key as the current certificate (a CSR for the key the person
/// holds), or a new one.
pub fn rotation(args: &Request, draft: &Draft, csr: &Csr) -> Rotation {
    let current = draft.ledger.as_ref().and_then(|l| {
        l.of(&args.name)
            .filter(|r| r.state == crate::repository::ledger::State::Issued)
            .last()
            .cloned()
    });
    let same_key = args.rotate
        && !matches!(draft.key_source, KeySource::New(_))
        && current.as_ref().is_some_and(|c| {
            crate::reconcile::policy::verify_csr(csr.pem.as_bytes())
                .is_ok_and(|v| v.key_sha256 == c.key_sha256)
        });
    Rotation { current, same_key }
}

/// Writes the CSR and the identities file together and loads the result as reconcile will;
/// on any failure both are rolled back and a key made here is removed again.
pub fn write_request(repo: &CaRepo, draft: &Draft, csr: &Csr) -> Result<()> {
    let mut tx = git::Transaction::new(&repo.dir);
    let written = (|| -> Result<()> {
        tx.write(&draft.csr_rel, csr.pem.as_bytes());
        if let Some(y) = &draft.new_yaml {
            tx.write(&draft.file, y.as_bytes());
        }
        tx.apply()?;
        if draft.new_yaml.is_some() {
            inventory::load(&repo.dir, &draft.config)?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        tx.rollback();
        if let KeySource::New(path) = &draft.key_source {
            let _ = path.dir.remove(&path.name);
        }
        return Err(e);
    }
    Ok(())
}

/// Says what was written: the key, the CSR, the entry, and with --rotate what becomes of the
/// current certificate. Returns the key's path as the next steps show it.
pub fn report_written(
    args: &Request,
    draft: &Draft,
    csr: &Csr,
    rotation: &Rotation,
    out: &mut dyn Write,
) -> String {
    let key_shown = match &draft.key_source {
        KeySource::New(path) => {
            let _ = writeln!(
                out,
                "Private key  {}  (0600; it never leaves this machine)",
                path.shown.display()
            );
            path.shown.display().to_string()
        }
        KeySource::Existing((path, _)) => {
            let _ = writeln!(
                out,
                "Private key  {} (yours, left where it is)",
                path.display()
            );
            path.display().to_string()
        }
        KeySource::None => "YOUR-KEY".to_string(),
    };
    let (csr_rel, cn, name) = (&draft.csr_rel, &draft.cn, &args.name);
    let _ = writeln!(out, "CSR          {csr_rel}  ({}, CN={cn})", csr.key_desc);
    if draft.new_yaml.is_some() {
        let _ = writeln!(out, "Declared     {name} in {}", draft.file);
    }
    if args.rotate {
        let _ = match (&rotation.current, rotation.same_key) {
            (Some(c), true) => writeln!(
                out,
                "Same key    as certificate {}: reconcile issues a new certificate for the key you hold",
                c.serial
            ),
            (Some(c), false) => writeln!(
                out,
                "New key     reconcile certifies it; certificate {} is revoked as superseded after the grace period",
                c.serial
            ),
            (None, _) => Ok(()),
        };
    }
    key_shown
}

/// Tells the person what to do next: commit and open a pull request, then, once reconciled,
/// install the certificate.
pub fn report_next(
    args: &Request,
    draft: &Draft,
    rotation: &Rotation,
    key_shown: &str,
    out: &mut dyn Write,
) {
    let name = &args.name;
    // What changed: the CSR, and the identities file only when an entry was added (a rotation
    // leaves the entry, wherever it is declared, as it is).
    let mut paths = vec![draft.csr_rel.clone()];
    if draft.new_yaml.is_some() {
        paths.push(draft.file.clone());
    }
    let message = match (args.rotate, rotation.same_key) {
        (false, _) => format!("onboard {name}"),
        (true, true) => format!("CSR for {name} (same key)"),
        (true, false) => format!("new key for {name}"),
    };
    let _ = writeln!(
        out,
        "\nNext: commit {} (never the key) and open a pull request:",
        if draft.new_yaml.is_some() {
            "the CSR and the YAML"
        } else {
            "the CSR"
        }
    );
    let _ = writeln!(
        out,
        "  git add {} && git commit -m '{message}'",
        paths.join(" ")
    );
    if let Some(former) = &args.renamed_from {
        let _ = writeln!(
            out,
            "  and remove `{former}`'s entry in the same commit (the rename hands its key on; its certificates are revoked as superseded)"
        );
    }
    let _ = if args.server || draft.declared_server {
        writeln!(
            out,
            "After the merge and reconcile: gitca deploy cert {name} --key {key_shown} --from PUBLISHED --ca PINNED-CA --server-dir /etc/gitca --reload 'nginx -s reload'"
        )
    } else {
        writeln!(
            out,
            "After the merge and reconcile: gitca bundle {name} --key {key_shown} --registry HOST:PORT"
        )
    };
}

/// The ledger, when there is one that reads (a fresh CA has an empty one).
fn read_ledger(
    dir: &crate::repository::confined::Dir,
) -> Option<crate::repository::ledger::Ledger> {
    dir.read_opt(
        crate::layout::LEDGER_FILE,
        crate::repository::ledger::MAX_BYTES,
    )
    .ok()
    .flatten()
    .and_then(|b| String::from_utf8(b).ok())
    .and_then(|t| crate::repository::ledger::Ledger::parse(&t).ok())
}

/// `--common-name`, `--email` and `--group` under the grammar of every subject value
/// ([`crate::authority::subject`]), and a common name that stands for nobody else (another identity's
/// name or common name, declared or in the ledger), as reconcile will judge them.
fn check_values(
    args: &Request,
    existing: &inventory::Inventory,
    ledger: Option<&crate::repository::ledger::Ledger>,
) -> Result<()> {
    let refuse = |flag: &str, value: &str, why: String| {
        Error::usage(
            format!(
                "{flag} `{}` is refused: {why}",
                crate::output::encode::terminal(value)
            ),
            "see the grammar of each value in docs/onboarding.md, \"Names\"",
        )
    };
    if let Some(e) = &args.email {
        crate::authority::subject::check_email(e).map_err(|why| refuse("--email", e, why))?;
    }
    if let Some(g) = args
        .groups
        .iter()
        .find(|g| !crate::repository::config::valid_group(g))
    {
        return Err(refuse(
            "--group",
            g,
            "a group is ASCII letters, digits, `.`, `_` and `-` (at most 64)".into(),
        ));
    }
    let Some(cn) = &args.common_name else {
        return Ok(());
    };
    crate::authority::subject::check_text(cn).map_err(|why| refuse("--common-name", cn, why))?;
    let mine = |n: &str| n == args.name || args.renamed_from.as_deref() == Some(n);
    let others = existing
        .identities
        .iter()
        .flat_map(|i| [Some(i.name.as_str()), i.common_name.as_deref()])
        .flatten()
        .chain(
            ledger
                .into_iter()
                .flat_map(|l| l.records.iter().map(|r| r.identity.as_str())),
        );
    for other in others {
        if !mine(other) && crate::authority::subject::clash(other, cn) {
            return Err(refuse(
                "--common-name",
                cn,
                format!("it stands for `{other}` (the same name, ignoring case, separators and look-alike letters)"),
            ));
        }
    }
    Ok(())
}

/// Where the private key of a request comes from.
enum KeySource {
    /// Made now, written here.
    New(KeyPath),
    /// The person's own key, read in place.
    Existing((PathBuf, rcgen::KeyPair)),
    /// None: the CSR was made elsewhere.
    None,
}

/// An existing private key: readable, unencrypted, and not inside the repository.
fn existing_key(repo_root: &Path, path: &Path) -> Result<(PathBuf, rcgen::KeyPair)> {
    let real = path.canonicalize().map_err(Error::io("read", path))?;
    let root = repo_root
        .canonicalize()
        .map_err(Error::io("resolve", repo_root))?;
    if real.starts_with(&root) {
        return Err(Error::usage(
            format!("{} is inside the CA repository", path.display()),
            "a private key never belongs in the repository: move it out (and, as it may have been committed or copied, consider it exposed: make a new one)",
        ));
    }
    let (_, key) = crate::relying::bundle::read_client_key(path)?;
    Ok((path.to_path_buf(), key))
}

/// A CSR naming `cn`, signed by `key`: proof that whoever submits it holds the key.
fn make_csr(key: &rcgen::KeyPair, cn: &str) -> Result<String> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    let csr = params
        .serialize_request(key)
        .map_err(Error::crypto("CSR"))?;
    csr.pem().map_err(Error::crypto("CSR encoding"))
}

fn describe(key: &rcgen::KeyPair) -> String {
    crate::authority::pubkey::canonical(&rcgen::PublicKeyData::subject_public_key_info(key))
        .map(|k| k.desc)
        .unwrap_or_else(|_| "key".into())
}

/// A CSR made elsewhere: verified as reconcile will (signature, key policy, CN) before it is
/// added; a DER one is converted to PEM. Returns its PEM and the key's description.
/// A key brought along (`--key`, `--csr`) that reconcile would refuse is refused now, before
/// anything is written: a key revoked for compromise, or one another identity holds (unless
/// this is that identity renamed). Reconcile checks again; this saves a pull request.
fn refuse_taken_key(
    dir: &crate::repository::confined::Dir,
    csr_pem: &str,
    name: &str,
    renamed_from: Option<&str>,
) -> Result<()> {
    let Ok(csr) = crate::reconcile::policy::verify_csr(csr_pem.as_bytes()) else {
        return Ok(());
    };
    let Some(text) = dir
        .read_opt(
            crate::layout::LEDGER_FILE,
            crate::repository::ledger::MAX_BYTES,
        )
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return Ok(());
    };
    let Ok(ledger) = crate::repository::ledger::Ledger::parse(&text) else {
        return Ok(());
    };
    let keys = crate::reconcile::policy::KeyHolders::of(&ledger);
    let key = csr.key_sha256.as_str();
    if keys.compromised.contains(key) {
        return Err(Error::usage(
            "this key was revoked for key compromise",
            format!("a compromised key is never certified again: make a new key (gitca request {name} without --key/--csr, or with --rotate for an existing identity)"),
        ));
    }
    match keys.owner.get(key) {
        Some(holder) if *holder != name && Some(*holder) != renamed_from => Err(Error::usage(
            format!("this key belongs to identity `{holder}`"),
            format!(
                "every identity has its own key: make a new one (gitca request {name} without --key/--csr); if `{name}` is `{holder}` renamed, add --renamed-from {holder}"
            ),
        )),
        _ => Ok(()),
    }
}

fn given_csr(path: &Path, cn: &str) -> Result<(String, String)> {
    let bytes = crate::repository::confined::read_named(path, 64 * 1024, "read the CSR")?;
    let pem_text = if bytes.first() == Some(&0x30) {
        crate::output::encode::to_pem("CERTIFICATE REQUEST", &bytes)
    } else {
        String::from_utf8(bytes)
            .map_err(|_| Error::bad_file(path, "is neither PEM nor DER", "pass a CSR file"))?
    };
    let csr = crate::reconcile::policy::verify_csr(pem_text.as_bytes())
        .map_err(|r| Error::bad_file(path, format!("the CSR is refused: {}", r.rule), r.help))?;
    match csr.common_name.as_deref() {
        Some(c) if c == cn => {}
        other => {
            return Err(Error::bad_file(
                path,
                format!(
                    "the CSR's CN is {}, not `{cn}`",
                    other.map_or("missing".to_string(), |c| format!("`{c}`"))
                ),
                format!("make the CSR with subject /CN={cn} (e.g. openssl req -new -key KEY -subj /CN={cn} -out FILE)"),
            ))
        }
    }
    Ok((pem_text, csr.key_desc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Vec<String> {
        vec![format!("name: {name}"), format!("csr: csr/{name}.csr")]
    }

    #[test]
    fn insert_into_empty_flow_list_keeps_comments() {
        let t = "# top comment\n# users:\n#   - name: x\nusers: []\nbots: []\n";
        let out = insert_entry(t, "users", &entry("alice"));
        assert_eq!(out, "# top comment\n# users:\n#   - name: x\nusers:\n  - name: alice\n    csr: csr/alice.csr\nbots: []\n");
    }

    #[test]
    fn insert_after_the_last_entry_of_a_block_list() {
        let t = "users:\n- name: a   # first\n  csr: csr/a.csr\n\n# bots below\nbots:\n- name: b\n";
        let out = insert_entry(t, "users", &entry("c"));
        assert_eq!(out, "users:\n- name: a   # first\n  csr: csr/a.csr\n- name: c\n  csr: csr/c.csr\n\n# bots below\nbots:\n- name: b\n");
        let out = insert_entry(t, "bots", &entry("d"));
        assert!(
            out.ends_with("bots:\n- name: b\n- name: d\n  csr: csr/d.csr\n"),
            "{out}"
        );
    }

    #[test]
    fn insert_creates_a_missing_list() {
        let out = insert_entry("users:\n  - name: a\n", "bots", &entry("ci"));
        assert_eq!(
            out,
            "users:\n  - name: a\n\nbots:\n  - name: ci\n    csr: csr/ci.csr\n"
        );
    }
}
