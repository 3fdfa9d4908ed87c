//! Custody of the CA private key: age encryption to recipients or a passphrase, and the one
//! function that unlocks it in memory.
//!
//! The plaintext key never touches the disk: it goes from memory into age's stream writer, and
//! comes back out of age's reader into a zeroizing buffer that is parsed and dropped.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;
use zeroize::Zeroizing;

use crate::authority::ca::{CaCert, CaKey};
use crate::error::{Error, Located, Result};
use crate::layout::{KEY_FILE, RECIPIENTS_FILE};
use crate::repository::confined::Dir;

/// An encrypted CA key in the repository and the list of who can decrypt it.
#[derive(Debug, Clone, Copy)]
pub struct Vault {
    pub key: &'static str,
    /// The certificate whose private half it is.
    pub cert: &'static str,
    pub recipients: &'static str,
    /// What it is, for messages: "the CA key", "the root key".
    pub what: &'static str,
}

/// The issuing CA's key (the intermediate's, in a CA with an offline root): what CI unlocks.
pub const ISSUING: Vault = Vault {
    key: KEY_FILE,
    cert: crate::layout::CA_CERT,
    recipients: RECIPIENTS_FILE,
    what: "the CA key",
};
/// Largest encrypted key or recipients file gitca reads.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Highest scrypt work factor accepted when decrypting (2^22: about 4 GiB·s of work). age's own
/// default ceiling depends on how fast this build is; a fixed one keeps debug and release
/// builds able to read each other's files.
const MAX_SCRYPT_WORK_FACTOR: u8 = 22;

/// To whom the CA key is encrypted.
pub enum Custody {
    /// age (`age1…`) and SSH (`ssh-ed25519`, `ssh-rsa`) public keys, one per entry.
    Recipients(Vec<String>),
    /// An scrypt passphrase.
    Passphrase(SecretString),
}

fn parse_recipient(line: &str) -> Result<Box<dyn age::Recipient + Send>> {
    let bad = |reason: String| Error::BadRecipient {
        recipient: line.chars().take(80).collect(),
        reason,
    };
    if line.starts_with("age1") {
        match line.parse::<age::x25519::Recipient>() {
            Ok(r) => Ok(Box::new(r)),
            // `age1NAME1…`: a recipient of the plugin `age-plugin-NAME` (a YubiKey's, a TPM's),
            // which must be on PATH: it wraps the file key (docs/custody.md).
            Err(e) => match line.parse::<age::plugin::Recipient>() {
                Ok(r) => age::plugin::RecipientPluginV1::new(
                    r.plugin(),
                    std::slice::from_ref(&r),
                    &[],
                    Prompts,
                )
                .map(|p| Box::new(p) as _)
                .map_err(|_| bad(plugin_missing(r.plugin()))),
                Err(_) => Err(bad(e.to_string())),
            },
        }
    } else if line.starts_with("ssh-") {
        line.parse::<age::ssh::Recipient>()
            .map(|r| Box::new(r) as _)
            .map_err(|e| bad(format!("{e:?}")))
    } else if line.starts_with("AGE-SECRET-KEY-") {
        Err(bad("this is a private key, not a recipient".into()))
    } else {
        Err(bad("it starts with neither `age1` nor `ssh-`".into()))
    }
}

/// Checks every recipient and returns them normalised (trimmed).
pub fn validate_recipients(recipients: &[String]) -> Result<Vec<String>> {
    let out: Vec<String> = recipients.iter().map(|r| r.trim().to_string()).collect();
    for r in &out {
        parse_recipient(r)?;
    }
    if out.is_empty() {
        return Err(Error::NoRecipients);
    }
    Ok(out)
}

/// Reads an age recipients file: one recipient per line, `#` comments and blank lines ignored.
pub fn read_recipients_file(path: &Path) -> Result<Vec<String>> {
    let text = crate::repository::confined::read_named_string(
        path,
        MAX_FILE_BYTES,
        "read the recipients file",
    )?;
    let name = path.display().to_string();
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            if let Err(e) = parse_recipient(trimmed) {
                return Err(Located::new(
                    &name,
                    &text,
                    (offset, line.trim_end().len()),
                    format!("{name}: {e}"),
                    "not a recipient",
                    "each line holds one age1… (or an age plugin's age1NAME1…) or ssh-ed25519/ssh-rsa public key; comments start with #",
                )
                .into());
            }
            out.push(trimmed.to_string());
        }
        offset += line.len();
    }
    if out.is_empty() {
        return Err(Error::bad_file(
            path,
            "the recipients file lists no recipient",
            "add one age1… or ssh public key per line",
        ));
    }
    Ok(out)
}

/// The text of `ca/recipients.txt` for a custody choice.
pub fn recipients_txt(custody: &Custody) -> String {
    recipients_txt_for(&ISSUING, custody)
}

/// The recipients file of `vault` for a custody choice.
pub fn recipients_txt_for(vault: &Vault, custody: &Custody) -> String {
    let mut s = format!(
        "# Who can decrypt {}. Change it with `gitca rekey`, never by hand.\n",
        vault.key
    );
    match custody {
        Custody::Recipients(rs) => {
            for r in rs {
                s.push_str(r);
                s.push('\n');
            }
        }
        Custody::Passphrase(_) => s.push_str("# passphrase (scrypt): no public recipients\n"),
    }
    s
}

/// Encrypts a PEM private key to the custody's recipients, ASCII-armored.
pub fn encrypt(plaintext: &[u8], custody: &Custody) -> Result<String> {
    let encryptor = match custody {
        Custody::Passphrase(p) => age::Encryptor::with_user_passphrase(p.clone()),
        Custody::Recipients(lines) => {
            let parsed = lines
                .iter()
                .map(|l| parse_recipient(l))
                .collect::<Result<Vec<_>>>()?;
            age::Encryptor::with_recipients(
                parsed.iter().map(|r| r.as_ref() as &dyn age::Recipient),
            )
            .map_err(|e| Error::Crypto {
                what: "age encryption",
                detail: e.to_string(),
            })?
        }
    };
    let fail = |e: std::io::Error| Error::Crypto {
        what: "age encryption",
        detail: e.to_string(),
    };
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(fail)?;
    let mut w = encryptor.wrap_output(armor).map_err(fail)?;
    w.write_all(plaintext).map_err(fail)?;
    w.finish().and_then(|armor| armor.finish()).map_err(fail)?;
    Ok(String::from_utf8(out).expect("armored output is ASCII"))
}

/// Where the identity that unlocks the CA key comes from, in order of precedence.
#[derive(Debug, Default, Clone)]
pub struct KeySource {
    /// `--identity FILE` (an age identity file or an unencrypted SSH private key).
    pub identity_file: Option<PathBuf>,
    /// `GITCA_IDENTITY`: the identity text itself, as a CI secret holds it.
    pub identity_text: Option<Zeroizing<String>>,
    /// `GITCA_IDENTITY_FILE`.
    pub identity_env_file: Option<PathBuf>,
    /// `GITCA_PASSPHRASE`.
    pub passphrase: Option<Zeroizing<String>>,
    /// `GITCA_IDENTITY_PASSPHRASE`: for an identity file encrypted with a passphrase (`age -p`
    /// over an age identity, the usual break-glass copy); else asked on the terminal.
    pub identity_passphrase: Option<Zeroizing<String>>,
    /// For a key held by a PKCS#11 token: the module and PIN (see [`crate::authority::token`]).
    pub token: crate::authority::token::TokenAccess,
}

impl KeySource {
    /// Reads the environment variables gitca documents.
    pub fn from_env(identity_file: Option<PathBuf>) -> KeySource {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        KeySource {
            identity_file,
            identity_text: var("GITCA_IDENTITY").map(Zeroizing::new),
            identity_env_file: var("GITCA_IDENTITY_FILE").map(PathBuf::from),
            passphrase: var("GITCA_PASSPHRASE").map(Zeroizing::new),
            identity_passphrase: var("GITCA_IDENTITY_PASSPHRASE").map(Zeroizing::new),
            token: crate::authority::token::TokenAccess::from_env(None),
        }
    }
}

/// The identities in an identity file's bytes; a file that is itself age-encrypted with a
/// passphrase (`age -p` over an `age-keygen` identity) is decrypted first, as the age CLI does.
fn identities_from(
    bytes: &[u8],
    origin: &str,
    source: &KeySource,
) -> Result<Vec<Box<dyn age::Identity>>> {
    let encrypted = bytes.starts_with(b"age-encryption.org/")
        || bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----");
    if !encrypted {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::Unlock {
            reason: format!("{origin} is neither an identity file nor an age-encrypted one"),
            help: "pass the file written by `age-keygen` (or one encrypted with `age -p`)".into(),
        })?;
        return identities_from_text(text, origin);
    }
    let fail = |reason: String| {
        Error::Unlock {
        reason,
        help: "the identity file is encrypted with a passphrase: set GITCA_IDENTITY_PASSPHRASE, or run on a terminal to be asked".into(),
    }
    };
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(bytes))
        .map_err(|e| fail(format!("{origin} is not a readable age file: {e}")))?;
    if !decryptor.is_scrypt() {
        return Err(fail(format!(
            "{origin} is encrypted to recipients, not a passphrase: gitca reads passphrase-protected identity files only"
        )));
    }
    let pass = match &source.identity_passphrase {
        Some(p) => p.clone(),
        None if std::io::stdin().is_terminal() => Zeroizing::new(
            rpassword::prompt_password(format!("Passphrase for identity file {origin}: "))
                .map_err(|_| Error::NoPassphrase)?,
        ),
        None => {
            return Err(fail(format!(
                "{origin} is passphrase-protected and no passphrase was given"
            )))
        }
    };
    let mut id = age::scrypt::Identity::new(SecretString::from(pass.to_string()));
    id.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
    let mut reader = decryptor
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .map_err(|_| fail(format!("wrong passphrase for {origin}")))?;
    let mut plain = Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut plain)
        .map_err(|e| fail(format!("{origin} is damaged: {e}")))?;
    let text = std::str::from_utf8(&plain)
        .map_err(|_| fail(format!("{origin} does not hold an identity")))?;
    identities_from_text(text, origin)
}

/// How an age plugin talks to the person holding the hardware (touch the key, enter the PIN):
/// messages on stderr through the redactor; PINs and confirmations asked on the terminal, and
/// refused without one (a CI job never blocks on a prompt).
#[derive(Clone, Copy)]
struct Prompts;

impl age::Callbacks for Prompts {
    fn display_message(&self, message: &str) {
        crate::output::redact::stderr(&format!("age plugin: {message}"));
    }

    fn confirm(&self, message: &str, yes: &str, no: Option<&str>) -> Option<bool> {
        let answer = self.request_public_string(&format!(
            "{message} [{yes}{}]",
            no.map(|n| format!("/{n}")).unwrap_or_default()
        ))?;
        Some(answer.trim() == yes)
    }

    fn request_public_string(&self, description: &str) -> Option<String> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        crate::output::redact::stderr(&format!("age plugin: {description}"));
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).ok()?;
        Some(line.trim_end().to_string())
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let text = rpassword::prompt_password(format!("age plugin: {description}: ")).ok()?;
        Some(SecretString::from(text))
    }
}

/// The help for a plugin that is not on PATH.
fn plugin_missing(name: &str) -> String {
    format!("install age-plugin-{name} (for a YubiKey: age-plugin-yubikey; a TPM: age-plugin-tpm) so that it is on PATH, then run this again")
}

/// The first plugin an identity file names whose binary is not on PATH.
fn missing_plugin(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| l.parse::<age::plugin::Identity>().ok())
        .map(|id| id.plugin().to_string())
        .find(|name| {
            let binary = format!("age-plugin-{name}");
            let path = std::env::var_os("PATH").unwrap_or_default();
            !std::env::split_paths(&path).any(|dir| dir.join(&binary).is_file())
        })
}

fn identities_from_text(text: &str, origin: &str) -> Result<Vec<Box<dyn age::Identity>>> {
    if let Ok(file) = age::IdentityFile::from_buffer(text.as_bytes()) {
        // A plugin identity (AGE-PLUGIN-YUBIKEY-1…) is kept by its plugin, which is started
        // only when it is used: say now, before anything else, if it is not on PATH.
        if let Some(name) = missing_plugin(text) {
            return Err(Error::Unlock {
                reason: format!(
                    "{origin} holds an identity of the age plugin `{name}`, which is not installed"
                ),
                help: plugin_missing(&name),
            });
        }
        if let Ok(ids) = file.with_callbacks(Prompts).into_identities() {
            if !ids.is_empty() {
                return Ok(ids
                    .into_iter()
                    .map(|i| i as Box<dyn age::Identity>)
                    .collect());
            }
        }
    }
    if text.contains(concat!("-----BEGIN OPENSSH ", "PRIVATE KEY-----"))
        || text.contains(concat!("-----BEGIN RSA ", "PRIVATE KEY-----"))
    {
        let id = age::ssh::Identity::from_buffer(text.as_bytes(), Some(origin.to_string())).map_err(|e| {
            Error::Unlock {
                reason: format!("{origin}: unreadable SSH key: {e}"),
                help: "pass an unencrypted ssh-ed25519 or ssh-rsa private key, or an age identity file".into(),
            }
        })?;
        if let age::ssh::Identity::Encrypted(_) = id {
            return Err(Error::Unlock {
                reason: format!("{origin} is a passphrase-protected SSH key"),
                help: "gitca does not prompt for SSH key passphrases; use an age identity (age-keygen) for CI".into(),
            });
        }
        return Ok(vec![Box::new(id)]);
    }
    Err(Error::Unlock {
        reason: format!(
            "{origin} holds no age identity (AGE-SECRET-KEY-1…, or an age plugin's AGE-PLUGIN-…) and no SSH private key"
        ),
        help: "pass the file written by `age-keygen`, or an unencrypted SSH private key".into(),
    })
}

fn recipients_hint(dir: &Dir, vault: &Vault) -> String {
    let listed = dir
        .read_string(vault.recipients, MAX_FILE_BYTES)
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| format!("  {}", l.chars().take(90).collect::<String>()))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    if listed.is_empty() {
        return format!(
            "{} is encrypted to no recipient listed in {} (the key is passphrase-protected, or the file is missing): set GITCA_PASSPHRASE to the key's passphrase",
            vault.what, vault.recipients
        );
    }
    // The key is encrypted to recipients: a passphrase can only be the identity file's own
    // (`age -p` over an identity, the break-glass copy), never the key's.
    format!(
        "{} is encrypted to:\n{listed}\npass the matching identity with --identity FILE, GITCA_IDENTITY (the identity text, e.g. from a CI secret) or GITCA_IDENTITY_FILE; an identity file encrypted with a passphrase (age -p) reads it from GITCA_IDENTITY_PASSPHRASE",
        vault.what
    )
}

/// Decrypts `ca/ca.key.age` of the repository `dir` into memory.
pub fn unlock(dir: &Dir, source: &KeySource) -> Result<CaKey> {
    unlock_vault(dir, &ISSUING, source)
}

/// Where a vault's key is recorded when a PKCS#11 token holds it: `ca/ca.key.pkcs11` beside
/// `ca/ca.key.age`.
pub fn token_file(vault: &Vault) -> String {
    match vault.key.strip_suffix(".age") {
        Some(stem) => format!("{stem}.pkcs11"),
        None => format!("{}.pkcs11", vault.key),
    }
}

/// The token record of `vault`, when its key is held by a token (and not also age-encrypted:
/// both at once is refused, since nobody can tell which one signs).
pub fn token_record(dir: &Dir, vault: &Vault) -> Result<Option<crate::authority::token::Record>> {
    let file = token_file(vault);
    let Some(bytes) = dir.read_opt(&file, crate::authority::token::MAX_FILE_BYTES)? else {
        return Ok(None);
    };
    if dir.meta(vault.key)?.is_some() {
        return Err(Error::bad_file(
            std::path::Path::new(&file),
            format!("both {file} and {} are present: is {} in a token or age-encrypted?", vault.key, vault.what),
            format!("restore ca/ from git history (git log -- ca/); a CA keeps its key one way: {file} for a PKCS#11 token, {} for age", vault.key),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::bad_file(
            std::path::Path::new(&file),
            format!("{file} is not text"),
            format!("restore {file} from git history"),
        )
    })?;
    crate::authority::token::Record::parse(&file, &text).map(Some)
}

/// Verifies that `key`, unlocked from `vault`, is the private half of `cert` (the vault's
/// certificate, `vault.cert`). A mismatch names the file that holds the key's record — the
/// age file, or the token record and the URI in it — with help that fits its custody.
pub fn check_key_matches(vault: &Vault, cert: &CaCert, key: &CaKey) -> Result<()> {
    if key.spki_der() == cert.spki_der {
        return Ok(());
    }
    let cert_path = vault.cert;
    Err(match key.token_uri() {
        Some(uri) => {
            let file = token_file(vault);
            Error::CaKeyMismatch {
                reason: format!(
                    "{} that {file} names ({uri}) is not the private half of {cert_path}: the token holds that key, but {cert_path} certifies another",
                    vault.what
                ),
                help: format!(
                    "{file} or {cert_path} was changed by hand or by a merge: restore both from git history (git log -p -- {file} {cert_path}); if {file} is right, the token behind the module (--pkcs11-module or GITCA_PKCS11_MODULE) holds another key under that label and id: compare the URI with `pkcs11-tool --module MODULE --list-objects`; nothing was signed or written"
                ),
            }
        }
        None => Error::CaKeyMismatch {
            reason: format!(
                "{} in {} does not match {cert_path}",
                vault.what, vault.key
            ),
            help: format!(
                "{cert_path} or {} was replaced by hand; restore both from git history (git log -- ca/)",
                vault.key
            ),
        },
    })
}

/// Decrypts the key of `vault` into memory, or opens the token that holds it.
pub fn unlock_vault(dir: &Dir, vault: &Vault, source: &KeySource) -> Result<CaKey> {
    if let Some(record) = token_record(dir, vault)? {
        let key =
            crate::authority::token::TokenKey::open(&record, &source.token, &record.spki_der)?;
        return Ok(CaKey::in_token(key));
    }
    let key_file = vault.key;
    let armored = dir.read(key_file, MAX_FILE_BYTES)?;
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&armored[..]))
        .map_err(|e| Error::Unlock {
            reason: format!("{key_file} is not an age file: {e}"),
            help: format!("restore {key_file} from git history"),
        })?;
    let hint = || recipients_hint(dir, vault);
    let identities = identities_for(dir, vault, source, decryptor.is_scrypt())?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref()))
        .map_err(|e| Error::Unlock {
            reason: match e {
                age::DecryptError::NoMatchingKeys => {
                    "the identity given is not one the key is encrypted to".into()
                }
                age::DecryptError::DecryptionFailed | age::DecryptError::KeyDecryptionFailed => {
                    "wrong passphrase or identity".into()
                }
                other => other.to_string(),
            },
            help: hint(),
        })?;
    let mut plaintext = Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut plaintext)
        .map_err(|e| Error::Unlock {
            reason: format!("{key_file} is damaged: {e}"),
            help: format!("restore {key_file} from git history"),
        })?;
    let text = std::str::from_utf8(&plaintext).map_err(|_| Error::Unlock {
        reason: format!("the decrypted {} is not text", vault.what),
        help: format!("restore {key_file} from git history"),
    })?;
    CaKey::from_pem(text)
}

/// The age identities that may decrypt the key of `vault`: the passphrase (given, or asked on
/// a terminal) for a passphrase-encrypted key, else the first identity source given.
fn identities_for(
    dir: &Dir,
    vault: &Vault,
    source: &KeySource,
    scrypt: bool,
) -> Result<Vec<Box<dyn age::Identity>>> {
    Ok(if scrypt {
        let pass = match &source.passphrase {
            Some(p) => p.clone(),
            None if std::io::stdin().is_terminal() => Zeroizing::new(
                rpassword::prompt_password(format!("Passphrase for {}: ", vault.what))
                    .map_err(|_| Error::NoPassphrase)?,
            ),
            None => {
                return Err(Error::Unlock {
                    reason: format!(
                        "{} is passphrase-protected and no passphrase was given",
                        vault.what
                    ),
                    help: "set GITCA_PASSPHRASE".into(),
                })
            }
        };
        let mut id = age::scrypt::Identity::new(SecretString::from(pass.to_string()));
        id.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
        vec![Box::new(id)]
    } else if let Some(file) = &source.identity_file {
        let bytes = Zeroizing::new(crate::repository::confined::read_named(
            file,
            MAX_FILE_BYTES,
            "read the identity file",
        )?);
        identities_from(&bytes, &file.display().to_string(), source)?
    } else if let Some(text) = &source.identity_text {
        identities_from(text.as_bytes(), "GITCA_IDENTITY", source)?
    } else if let Some(file) = &source.identity_env_file {
        let bytes = Zeroizing::new(crate::repository::confined::read_named(
            file,
            MAX_FILE_BYTES,
            "read GITCA_IDENTITY_FILE",
        )?);
        identities_from(&bytes, &file.display().to_string(), source)?
    } else {
        return Err(Error::Unlock {
            reason: "no age identity was given".into(),
            help: recipients_hint(dir, vault),
        });
    })
}
