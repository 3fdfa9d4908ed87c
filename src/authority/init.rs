//! `gitca init` and `gitca ca verify`: creating a CA repository, and proving its key unlocks.

use std::io::Write;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::authority::ca::{self, CaCert, CaKey};
use crate::authority::custody::{self, Custody, KeySource};
use crate::authority::keygen::KeyType;
use crate::error::{Error, Result};
use crate::layout::{
    self, CA_CERT, CONFIG_FILE, CRL_FILE, KEY_FILE, LEDGER_FILE, RECIPIENTS_FILE, SEAL_FILE,
};
use crate::repository::config::{Config, Dur};
use crate::repository::confined::Dir;
use crate::repository::git::{self, CaRepo};
use crate::repository::ledger::Ledger;
use crate::repository::seal::Seal;

pub const GITIGNORE: &str = "# Private keys never belong in a CA repository (`gitca check` refuses them).\n*.key\n*.pem.key\n";

pub const GITCA_SCHEMA: &str = include_str!("../../schema/gitca.schema.json");
pub const IDENTITIES_SCHEMA: &str = include_str!("../../schema/identities.schema.json");

/// The identities file `init` writes: an empty list that documents every key.
pub const IDENTITIES_TEMPLATE: &str = r#"# yaml-language-server: $schema=../schema/identities.schema.json
# Declared users and bots, in any number of files under identities/. Onboarding: `gitca request
# NAME` writes csr/NAME.csr and identities/NAME.yaml (one file per identity, so that pull
# requests never conflict); open a pull request with both. Offboarding: delete the entry (or its
# file); the next reconcile revokes every certificate the identity ever had.
#
# users:
#   - name: alice              # [a-z0-9][a-z0-9._-]*, unique across all files; becomes the CN
#     email: alice@example.com # optional: SAN rfc822Name
#     csr: csr/alice.csr       # relative to the repository root (default: csr/NAME.csr)
#     groups: [push]           # optional: one OU each
#     profile: user            # optional: a profile of gitca.yaml (default: user, or bot for bots)
#     validity: 90d            # optional: shorter than the profile's validity
#     disabled: true           # optional: revoke every certificate and issue none, keeping the entry
#     revoke: key-compromise   # optional: revoke now; key-compromise bars that key forever
#     renamed_from: carol      # optional: a rename; keeps carol's key (her entry is removed)
# bots:
#   - name: ci-builder         # bots default to the short-lived `bot` profile
#     csr: csr/ci-builder.csr
users: []
bots: []
"#;

pub struct InitOptions {
    pub dir: PathBuf,
    pub name: String,
    pub organization: String,
    pub key_type: KeyType,
    pub validity: Dur,
    pub custody: Custody,
    pub now: OffsetDateTime,
    /// Make an offline root and an issuing intermediate (see [`crate::authority::hierarchy`]).
    pub offline_root: Option<OfflineRoot>,
    /// Keep the CA key in a PKCS#11 token (then `custody` is unused).
    pub token: Option<TokenInit>,
}

/// `gitca init --pkcs11 URI`: the token key to adopt or generate.
pub struct TokenInit {
    pub uri: crate::authority::token::Pkcs11Uri,
    pub generate: bool,
    pub access: crate::authority::token::TokenAccess,
}

/// `gitca init --offline-root`: who keeps the root key, and how long the intermediate lives.
pub struct OfflineRoot {
    /// The root custodians (age or SSH recipients; never a passphrase, never CI).
    pub custodians: Vec<String>,
    pub intermediate_validity: Dur,
    /// The root key in a PKCS#11 token instead (then `custodians` is empty).
    pub token: Option<TokenInit>,
}

/// Where an offline root's key goes: age-encrypted to its custodians, or held by a token.
enum RootCustody {
    Age(Custody),
    Token(crate::authority::token::Record),
}

/// Refuses a target that is a file, a CA already, or a non-empty directory.
pub fn check_target(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    if dir.join(CONFIG_FILE).exists()
        || dir.join(KEY_FILE).exists()
        || dir.join(custody::token_file(&custody::ISSUING)).exists()
    {
        return Err(Error::AlreadyInitialized {
            path: dir.to_path_buf(),
        });
    }
    if dir.is_dir() {
        let mut entries = std::fs::read_dir(dir).map_err(Error::io("list", dir))?;
        if entries.any(|e| e.map(|e| e.file_name() != ".git").unwrap_or(true)) {
            return Err(Error::DirectoryNotEmpty {
                path: dir.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// The top-level entry point for `gitca init`.
pub fn run_init(opts: InitOptions, out: &mut dyn Write) -> Result<()> {
    check_target(&opts.dir)?;
    for (flag, value) in [
        ("--name", &opts.name),
        ("--organization", &opts.organization),
    ] {
        if let Err(why) = crate::authority::subject::check_text(value) {
            return Err(Error::usage(
                format!("{flag} `{value}` is refused: {why}"),
                "every certificate carries it, and servers read subjects as text: 1 to 64 letters, digits and spaces of one script, with . - _ ' ( ) & @ :, e.g. --name \"Example Registry CA\"",
            ));
        }
    }

    // Everything is made in memory first; nothing touches the disk until it all succeeded.
    let config_text = Config::template(&opts.name, &opts.organization);
    let (files, summary) = match &opts.offline_root {
        None => single_level(&opts, config_text)?,
        Some(root) => offline_root(&opts, root, config_text)?,
    };
    let mut files = files;
    files.extend(common_files().map(|(p, t)| (p.to_string(), t)));

    let files: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(p, t)| (p, t.into_bytes()))
        .collect();
    let oid = write_new_repo(
        &opts.dir,
        &files,
        &format!("gitca: initialize {}", opts.name),
    )?;

    let _ = writeln!(
        out,
        "Initialized CA `{}` in {}",
        opts.name,
        opts.dir.display()
    );
    for line in summary {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "  commit       {}", &oid.to_string()[..12]);
    let _ = writeln!(out, "Next: declare identities in identities/*.yaml (`gitca request NAME`), then `gitca reconcile`.");
    Ok(())
}

type Made = (Vec<(String, String)>, Vec<String>);

/// Whom a key file is encrypted to, for init's summary (what is encrypted is always said).
fn recipient_lines(file: &str, custody: &Custody) -> Vec<String> {
    match custody {
        Custody::Passphrase(_) => vec![format!("{file} is encrypted to a passphrase")],
        Custody::Recipients(r) => {
            std::iter::once(format!("{file} is encrypted to {} recipient(s):", r.len()))
                .chain(
                    r.iter()
                        .map(|x| format!("  {}", crate::repository::recipients::shown(x))),
                )
                .collect()
        }
    }
}

/// A single-level CA: one key, self-signed, that signs everything.
fn single_level(opts: &InitOptions, config_text: String) -> Result<Made> {
    let (key, record) = new_ca_key(opts)?;
    let ca_pem = ca::self_signed(
        &opts.name,
        &opts.organization,
        &key,
        opts.now,
        opts.validity.0,
    )?;
    let ca_cert = CaCert::parse(&ca_pem)?;
    let config = Config::parse(&config_text)?;
    let ledger_text = Ledger::default().render();
    let (crl, seal) = first_crl_and_seal(&ca_cert, &key, &config, opts.now, &ledger_text)?;
    let first = FirstOutputs {
        config_text,
        ca_pem,
        ca_cert,
        crl,
        ledger_text,
        seal,
    };
    if let Some(record) = record {
        drop(key);
        return Ok(kept_in_token(opts, record, first));
    }
    encrypted_with_age(opts, key, first)
}

/// The new CA key: generated in memory, or made or adopted in the PKCS#11 token (with the
/// record of where it is).
fn new_ca_key(opts: &InitOptions) -> Result<(CaKey, Option<crate::authority::token::Record>)> {
    Ok(match &opts.token {
        None => (CaKey::new(opts.key_type.generate()?), None),
        Some(t) => {
            let (key, record) = token_key(t, opts.key_type)?;
            (key, Some(record))
        }
    })
}

/// The key `t` names, made (of `key_type`) or adopted in its token, and the record of where.
fn token_key(t: &TokenInit, key_type: KeyType) -> Result<(CaKey, crate::authority::token::Record)> {
    let made =
        crate::authority::token::init_key(&t.uri, &t.access, t.generate.then_some(key_type))?;
    Ok((CaKey::in_token(made.key), made.record))
}

/// A single-level CA's outputs, signed before its key is put away.
struct FirstOutputs {
    config_text: String,
    ca_pem: String,
    ca_cert: CaCert,
    crl: String,
    ledger_text: String,
    seal: Seal,
}

/// A new CA's first CRL (number 1, empty) and the seal it makes over it and the empty ledger.
fn first_crl_and_seal(
    ca_cert: &CaCert,
    key: &CaKey,
    config: &Config,
    now: OffsetDateTime,
    ledger_text: &str,
) -> Result<(String, Seal)> {
    let crl = ca::sign_crl(ca_cert, key, 1, now, now + config.crl.validity.0, &[])?;
    let seal = Seal::sign(
        ca_cert,
        key,
        1,
        (ledger_text.as_bytes(), crl.as_bytes(), 1),
        None,
    )?;
    Ok((crl, seal))
}

/// Encrypts a new key to `custody` and signs the list of its recipients with it; the key is
/// dropped once done. Returns the encrypted key and the recipients file.
fn encrypt_new_key(
    key: CaKey,
    vault: &custody::Vault,
    custody: &Custody,
) -> Result<(String, String)> {
    let encrypted = custody::encrypt(key.to_pem()?.as_bytes(), custody)?;
    let recipients = crate::repository::recipients::signed_text(vault, custody, 1, &key)?;
    drop(key);
    Ok((encrypted, recipients))
}

/// A single-level CA whose key stays in the PKCS#11 token: the repository records where.
fn kept_in_token(
    opts: &InitOptions,
    record: crate::authority::token::Record,
    first: FirstOutputs,
) -> Made {
    let file = custody::token_file(&custody::ISSUING);
    let summary = vec![
        format!(
            "certificate  {CA_CERT}  (valid until {})",
            crate::time::fmt_time(first.ca_cert.not_after)
        ),
        format!("SHA-256      {}", first.ca_cert.fingerprint()),
        format!(
            "private key  in the PKCS#11 token, {} ({}; never leaves it)",
            record.uri.render(),
            if opts.token.as_ref().is_some_and(|t| t.generate) {
                "generated there, sensitive and not extractable"
            } else {
                "adopted"
            }
        ),
        format!("             {file} records where it is and its public key (no PIN, no module)"),
        format!("CRL          {CRL_FILE}  (number 1, empty)"),
    ];
    let files = vec![
        (CONFIG_FILE.to_string(), first.config_text),
        (CA_CERT.to_string(), first.ca_pem),
        (file, record.render("The CA private key")),
        (CRL_FILE.to_string(), first.crl),
        (LEDGER_FILE.to_string(), first.ledger_text),
        (SEAL_FILE.to_string(), first.seal.render()),
    ];
    (files, summary)
}

/// A single-level CA whose key is age-encrypted into the repository.
fn encrypted_with_age(opts: &InitOptions, key: CaKey, first: FirstOutputs) -> Result<Made> {
    let (encrypted, recipients) = encrypt_new_key(key, &custody::ISSUING, &opts.custody)?;
    let summary = vec![
        format!(
            "certificate  {CA_CERT}  (valid until {})",
            crate::time::fmt_time(first.ca_cert.not_after)
        ),
        format!("SHA-256      {}", first.ca_cert.fingerprint()),
        format!(
            "private key  {}  (age-encrypted; the plaintext never touched the disk)",
            KEY_FILE
        ),
        format!("CRL          {CRL_FILE}  (number 1, empty)"),
    ]
    .into_iter()
    .chain(recipient_lines(KEY_FILE, &opts.custody))
    .collect();
    let files = vec![
        (CONFIG_FILE.to_string(), first.config_text),
        (CA_CERT.to_string(), first.ca_pem),
        (KEY_FILE.to_string(), encrypted),
        (RECIPIENTS_FILE.to_string(), recipients),
        (CRL_FILE.to_string(), first.crl),
        (LEDGER_FILE.to_string(), first.ledger_text),
        (SEAL_FILE.to_string(), first.seal.render()),
    ];
    Ok((files, summary))
}

/// A CA with an offline root: the root key for the custodians only, and an issuing
/// intermediate whose key CI and the custodians can decrypt.
fn offline_root(opts: &InitOptions, root: &OfflineRoot, config_text: String) -> Result<Made> {
    use crate::authority::hierarchy::{self as h, Intermediate, Roster};
    let config_text = format!("{config_text}{}", Config::ROOT_TEMPLATE);
    let config = Config::parse(&config_text)?;
    let issuing = intermediate_custody(opts, root)?;
    let (root_key, root_custody) = new_root_key(opts, root)?;
    let root_pem = h::root_certificate(
        &opts.name,
        &opts.organization,
        &root_key,
        opts.now,
        opts.validity.0,
    )?;
    let root_cert = CaCert::parse(&root_pem)?;
    let key = CaKey::new(opts.key_type.generate()?);
    let ca_pem = h::intermediate_certificate(
        &root_cert,
        &root_key,
        &h::intermediate_name(&opts.name, 1),
        &opts.organization,
        &key,
        opts.now,
        root.intermediate_validity.0,
    )?;
    let ca_cert = CaCert::parse(&ca_pem)?;
    let root_crl = h::sign_root_crl(
        &root_cert,
        &root_key,
        1,
        opts.now,
        config.root.crl_validity.0,
        None,
        &[],
    )?;
    let ledger_text = Ledger {
        with_issuer: true,
        ..Ledger::default()
    }
    .render();
    let (crl, seal) = first_crl_and_seal(&ca_cert, &key, &config, opts.now, &ledger_text)?;
    let roster = Roster {
        rows: vec![Intermediate::of(&ca_cert)?],
    };
    let root_files = root_key_files(root_key, &root_custody)?;
    let (encrypted, recipients) = encrypt_new_key(key, &custody::ISSUING, &issuing)?;
    let root_crl_info = ca::CrlInfo::parse(&root_crl, Some(&root_cert))?;
    let summary = offline_root_summary(
        (&root_cert, &root_crl_info, &root_custody),
        root.custodians.len(),
        &ca_cert,
        &issuing,
    );
    let mut files = vec![
        (CONFIG_FILE.to_string(), config_text),
        (layout::ROOT_CERT.to_string(), root_pem),
    ];
    files.extend(root_files);
    files.extend([
        (layout::ROSTER.to_string(), roster.render()),
        (layout::ROOT_CRL.to_string(), root_crl),
        (CA_CERT.to_string(), ca_pem),
        (KEY_FILE.to_string(), encrypted),
        (RECIPIENTS_FILE.to_string(), recipients),
        (CRL_FILE.to_string(), crl),
        (LEDGER_FILE.to_string(), ledger_text),
        (SEAL_FILE.to_string(), seal.render()),
    ]);
    Ok((files, summary))
}

/// The root key: generated in memory for its custodians, or made or adopted in a token.
fn new_root_key(opts: &InitOptions, root: &OfflineRoot) -> Result<(CaKey, RootCustody)> {
    Ok(match &root.token {
        None => (
            CaKey::new(opts.key_type.generate()?),
            RootCustody::Age(Custody::Recipients(custody::validate_recipients(
                &root.custodians,
            )?)),
        ),
        Some(t) => {
            let (key, record) = token_key(t, opts.key_type)?;
            (key, RootCustody::Token(record))
        }
    })
}

/// The root key's files: `ca/root.key.age` and the signed `ca/root-recipients.txt`, or the
/// token record `ca/root.key.pkcs11`. The key is dropped once done.
fn root_key_files(root_key: CaKey, root_custody: &RootCustody) -> Result<Vec<(String, String)>> {
    use crate::authority::hierarchy as h;
    Ok(match root_custody {
        RootCustody::Age(c) => {
            let (encrypted, recipients) = encrypt_new_key(root_key, &h::ROOT_VAULT, c)?;
            vec![
                (layout::ROOT_KEY.to_string(), encrypted),
                (layout::ROOT_RECIPIENTS.to_string(), recipients),
            ]
        }
        RootCustody::Token(record) => {
            drop(root_key);
            vec![(
                custody::token_file(&crate::authority::hierarchy::ROOT_VAULT),
                record.render("The root key"),
            )]
        }
    })
}

/// The intermediate's key: CI's recipients, and the custodians (who sign its successor
/// and can stand in for CI). A passphrase is refused: the intermediate is for CI.
fn intermediate_custody(opts: &InitOptions, root: &OfflineRoot) -> Result<Custody> {
    match &opts.custody {
        Custody::Recipients(r) => {
            let mut all = r.clone();
            for c in &root.custodians {
                if !all.contains(c) {
                    all.push(c.clone());
                }
            }
            Ok(Custody::Recipients(all))
        }
        Custody::Passphrase(_) => Err(Error::usage(
            "an offline root's intermediate is for CI: it needs recipients, not a passphrase",
            "pass CI's age recipient with --recipient (the root custodians are added to it)",
        )),
    }
}

/// init's summary of an offline-root CA: the root, its key and CRL, the issuing intermediate
/// and its key, and whom each key is encrypted to.
fn offline_root_summary(
    (root_cert, root_crl_info, root_custody): (&CaCert, &ca::CrlInfo, &RootCustody),
    custodians: usize,
    ca_cert: &CaCert,
    issuing: &Custody,
) -> Vec<String> {
    vec![
        format!(
            "root         {}  (valid until {}; what servers and clients trust)",
            layout::ROOT_CERT,
            crate::time::fmt_time(root_cert.not_after)
        ),
        format!("SHA-256      {}", root_cert.fingerprint()),
        match root_custody {
            RootCustody::Age(_) => format!(
                "root key     {}  (age-encrypted to the {} root custodian(s) only: CI cannot decrypt it)",
                layout::ROOT_KEY,
                custodians
            ),
            RootCustody::Token(record) => format!(
                "root key     in the PKCS#11 token, {} (never leaves it; {} records where)",
                record.uri.render(),
                custody::token_file(&crate::authority::hierarchy::ROOT_VAULT)
            ),
        },
        format!(
            "root CRL     {}  (number 1, next update {}: re-signed by `gitca root sign-crl`)",
            layout::ROOT_CRL,
            root_crl_info
                .next_update
                .map(crate::time::fmt_time)
                .unwrap_or_default()
        ),
        format!(
            "issuing CA   {CA_CERT}  (intermediate {}, valid until {})",
            ca::id_of(&ca_cert.der),
            crate::time::fmt_time(ca_cert.not_after)
        ),
        format!(
            "its key      {}  (age-encrypted to CI{})",
            KEY_FILE,
            if custodians > 0 { " and the custodians" } else { "" }
        ),
        format!("CRL          {CRL_FILE}  (number 1, empty)"),
    ]
    .into_iter()
    .chain(match root_custody {
        RootCustody::Age(c) => recipient_lines(layout::ROOT_KEY, c),
        RootCustody::Token(_) => Vec::new(),
    })
    .chain(recipient_lines(KEY_FILE, issuing))
    .collect()
}

/// The files every new CA repository starts with, whatever made it: the identities template,
/// the .gitignore and the schemas editors validate against.
pub fn common_files() -> [(&'static str, String); 4] {
    [
        ("identities/people.yaml", IDENTITIES_TEMPLATE.to_string()),
        (".gitignore", GITIGNORE.to_string()),
        ("schema/gitca.schema.json", GITCA_SCHEMA.to_string()),
        (
            "schema/identities.schema.json",
            IDENTITIES_SCHEMA.to_string(),
        ),
    ]
}

/// Writes the files of a new CA repository into `dir` (git-initialising it when needed) and
/// makes the first commit. On failure, leaves the directory as it was found.
pub fn write_new_repo(dir: &Path, files: &[(String, Vec<u8>)], message: &str) -> Result<git2::Oid> {
    let created_dir = !dir.exists();
    let had_git = dir.join(".git").exists();
    let result = (|| -> Result<git2::Oid> {
        let root = Dir::create(dir)?;
        if !had_git {
            let mut init = git2::RepositoryInitOptions::new();
            init.initial_head("main");
            git2::Repository::init_opts(dir, &init)?;
        }
        for (rel, data) in files {
            root.write(rel, data, 0o644)?;
        }
        let repo = CaRepo::open(dir)?;
        let files: Vec<(String, Option<Vec<u8>>)> = files
            .iter()
            .map(|(p, data)| (p.clone(), Some(data.clone())))
            .collect();
        repo.commit_files(files, message)
    })();
    if result.is_err() {
        if let Ok(root) = Dir::open(dir) {
            for (rel, _) in files {
                let _ = root.remove(rel);
            }
        }
        if !had_git {
            let _ = std::fs::remove_dir_all(dir.join(".git"));
        }
        if created_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    result
}

/// The top-level entry point for `gitca ca verify`: unlocks the CA key in memory, checks it is
/// the private half of `ca/ca.crt`, and prints only public facts.
pub fn run_ca_verify(dir: &Path, source: &KeySource, out: &mut dyn Write) -> Result<()> {
    let repo = CaRepo::open(dir)?;
    let cert_text = repo.dir.read_string(CA_CERT, ca::MAX_CERT_BYTES)?;
    let cert = CaCert::parse(&cert_text)?;
    let key = custody::unlock(&repo.dir, source)?;
    custody::check_key_matches(&custody::ISSUING, &cert, &key)?;
    drop(key);
    let _ = writeln!(out, "CA key unlocked and matches {CA_CERT}");
    let _ = writeln!(out, "  subject  {}", cert.subject);
    let _ = writeln!(out, "  SHA-256  {}", cert.fingerprint());
    let _ = writeln!(
        out,
        "  public key SHA-256  {}",
        crate::authority::pubkey::key_fingerprint(&cert.spki_der)
    );
    Ok(())
}

/// What `gitca rekey` changes: the whole set of custodians, or some added and removed.
pub enum Rekey {
    To(Custody),
    Change {
        add: Vec<String>,
        remove: Vec<String>,
    },
}

/// The top-level entry point for `gitca rekey`: re-encrypts the CA key (or, with an offline
/// root, the root key) for a new set of custodians and commits. The key itself does not
/// change; the warning about history is printed only when someone lost access.
pub fn run_rekey(
    dir: &Path,
    source: &KeySource,
    vault: &custody::Vault,
    change: Rekey,
    out: &mut dyn Write,
) -> Result<()> {
    let repo = CaRepo::open(dir)?;
    refuse_token(&repo, vault)?;
    let _lock = repo.lock()?;
    repo.history_signer()?;
    refuse_dirty_ca(&repo)?;
    let cert = vault_cert(&repo, vault)?;
    let (listed, standing) = crate::repository::recipients::judge(&repo, vault, &cert)?;
    let before = listed.recipients;
    let (custody, named) = new_custody(change, &before, vault)?;
    let removed: Vec<&String> = match &custody {
        Custody::Recipients(now) => before.iter().filter(|r| !now.contains(r)).collect(),
        Custody::Passphrase(_) => before.iter().collect(),
    };
    if let Custody::Recipients(to) = &custody {
        crate::repository::recipients::Agreement {
            what: vault.what,
            to,
            sources: vec![(vault.recipients, &standing, &before)],
            named: &named,
        }
        .confirm(out)?;
    }
    let key = custody::unlock_vault(&repo.dir, vault, source)?;
    custody::check_key_matches(vault, &cert, &key)?;
    let encrypted = custody::encrypt(key.to_pem()?.as_bytes(), &custody)?;
    let recipients_text = crate::repository::recipients::signed_text(
        vault,
        &custody,
        standing.next_sequence(),
        &key,
    )?;
    drop(key);
    let oid = commit_rekey(&repo, vault, &custody, &encrypted, &recipients_text)?;
    report_rekey(out, vault, oid, removed.len());
    Ok(())
}

/// Refuses a key kept in a PKCS#11 token: it has no age recipients to change.
fn refuse_token(repo: &CaRepo, vault: &custody::Vault) -> Result<()> {
    if custody::token_record(&repo.dir, vault)?.is_some() {
        return Err(Error::Token {
            reason: format!("{} lives in a PKCS#11 token: there are no age recipients to change", vault.what),
            help: "who can sign is who holds the token and its PIN; to move the key into another custody, follow the ceremony in docs/custody.md".into(),
        });
    }
    Ok(())
}

/// Refuses uncommitted changes under ca/, which the rekey commit would sweep in or clobber.
fn refuse_dirty_ca(repo: &CaRepo) -> Result<()> {
    let dirty: Vec<String> = repo
        .dirty_paths()?
        .into_iter()
        .filter(|p| p.starts_with("ca/"))
        .collect();
    if !dirty.is_empty() {
        return Err(Error::Dirty {
            files: dirty
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    Ok(())
}

/// The certificate whose key the vault holds: the CA's, or the offline root's.
fn vault_cert(repo: &CaRepo, vault: &custody::Vault) -> Result<CaCert> {
    CaCert::parse(&repo.dir.read_string(vault.cert, ca::MAX_CERT_BYTES)?)
}

/// The custody after the change, from the recipients `before` it, and the recipients the
/// person running it named (confirmed without a key holder's signature).
fn new_custody(
    change: Rekey,
    before: &[String],
    vault: &custody::Vault,
) -> Result<(Custody, Vec<String>)> {
    let mut named: Vec<String> = Vec::new();
    let custody = match change {
        Rekey::To(c) => {
            if let Custody::Recipients(r) = &c {
                named.extend(r.iter().cloned());
            }
            c
        }
        Rekey::Change { add, remove } => {
            named.extend(add.iter().map(|r| r.trim().to_string()));
            let mut now = before.to_vec();
            for r in remove {
                let r = r.trim().to_string();
                let Some(at) = now.iter().position(|x| *x == r) else {
                    return Err(Error::usage(
                        format!(
                            "{} is not among the recipients of {}",
                            r.chars().take(80).collect::<String>(),
                            vault.key
                        ),
                        format!("the recipients are listed in {}", vault.recipients),
                    ));
                };
                now.remove(at);
            }
            for r in add {
                let r = r.trim().to_string();
                if !now.contains(&r) {
                    now.push(r);
                }
            }
            Custody::Recipients(custody::validate_recipients(&now)?)
        }
    };
    Ok((custody, named))
}

/// Writes the re-encrypted key and its signed recipients and commits them; puts both back on
/// failure.
fn commit_rekey(
    repo: &CaRepo,
    vault: &custody::Vault,
    custody: &Custody,
    encrypted: &str,
    recipients_text: &str,
) -> Result<git2::Oid> {
    let mut tx = git::Transaction::new(&repo.dir);
    let result = (|| -> Result<git2::Oid> {
        tx.write(vault.key, encrypted.as_bytes());
        tx.write(vault.recipients, recipients_text.as_bytes());
        tx.apply()?;
        let who = match custody {
            Custody::Recipients(r) => format!("{} recipient(s)", r.len()),
            Custody::Passphrase(_) => "a passphrase".to_string(),
        };
        repo.commit_files(
            std::mem::take(&mut tx.done),
            &format!("gitca: rekey {} for {who}", vault.what),
        )
    })();
    match result {
        Ok(oid) => Ok(oid),
        Err(e) => {
            tx.rollback();
            Err(e)
        }
    }
}

/// Prints the commit, and warns when someone lost access that history still gives them.
fn report_rekey(out: &mut dyn Write, vault: &custody::Vault, oid: git2::Oid, removed: usize) {
    let _ = writeln!(
        out,
        "Re-encrypted {} for the new custodians (commit {}).",
        vault.key,
        &oid.to_string()[..12]
    );
    if removed > 0 {
        let _ = writeln!(
            out,
            "warning: {} recipient(s) lost access from now on, but the previous ciphertext stays in git history:\n\
             whoever kept a removed identity can still decrypt {} from an old commit. If they may be hostile, or\n\
             their identity may have leaked, {}.",
            removed,
            vault.what,
            if vault.key == KEY_FILE {
                "replace the key itself: with an offline root, `gitca root new-intermediate --revoke-current key-compromise --recipient NEW-CI`; otherwise a new CA (gitca init) and re-issuing"
            } else {
                "make a new root (gitca init --offline-root) and move servers and clients to it"
            }
        );
    }
}
