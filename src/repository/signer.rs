//! Who signs the CA's history: the allowed-signers file kept in the repository, the history
//! signing key, and signatures in git's SSH format.
//!
//! A stolen CA key signs certificates; it must not also be able to make a commit that looks
//! like one of gitca's. So when `ca/allowed_signers` exists, every commit gitca makes (reconcile,
//! ceremonies, rekey) carries an SSH signature (`gpgsig` header, namespace `git`: exactly what
//! `git commit -S` with `gpg.format=ssh` writes, verified by `git verify-commit` and
//! `ssh-keygen -Y verify`) by a key that file lists — a key that is not the CA key and is kept
//! apart from it (docs/custody.md). `gitca audit` checks every certificate in the ledger against
//! those signatures.
//!
//! The file uses git's allowed-signers format (`gpg.ssh.allowedSignersFile`, ssh-keygen's
//! ALLOWED SIGNERS), in the strict subset gitca needs: `PRINCIPALS [namespaces="git"]
//! ssh-ed25519 BASE64 [COMMENT]`. It is hostile input like the rest of the tree: any other
//! option, pattern, key type or encoding is a diagnostic with file and line.
//!
//! What this module must never do: print, log or keep outside a zeroizing buffer the signing
//! key's text; accept a signature in any namespace but `git`.

use std::path::PathBuf;
use std::sync::Arc;

use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};
use zeroize::Zeroizing;

use crate::error::{Error, Located, Result};

/// The allowed-signers file, relative to the repository root.
pub const ALLOWED_SIGNERS: &str = "ca/allowed_signers";

/// The SSHSIG namespace git signs commits in.
pub const NAMESPACE: &str = "git";

/// The largest allowed-signers file gitca reads.
pub const MAX_BYTES: u64 = 64 << 10;

/// The largest signing key file gitca reads.
const MAX_KEY_BYTES: u64 = 16 << 10;

/// The signing key's environment variables: its text (a CI secret), or a file.
pub const KEY_VAR: &str = "GITCA_SIGNING_KEY";
pub const KEY_FILE_VAR: &str = "GITCA_SIGNING_KEY_FILE";

const KEY_HELP: &str = "give the history signing key (an OpenSSH ed25519 private key, not the CA key): GITCA_SIGNING_KEY=\"$(cat signing.key)\" (a CI secret), GITCA_SIGNING_KEY_FILE=PATH or --signing-key PATH; docs/custody.md says who keeps it";

/// One line of the allowed-signers file: who, and their key.
#[derive(Debug, Clone)]
pub struct Signer {
    pub principals: Vec<String>,
    pub key: PublicKey,
    /// 1-based line in the file.
    pub line: usize,
    /// `namespaces="git"`: the key may sign commits only (not admission lists).
    pub git_only: bool,
}

/// The keys allowed to sign the CA's history, as one version of `ca/allowed_signers` lists them.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub signers: Vec<Signer>,
}

impl AllowedSigners {
    /// Parses the file's text; `name` is what diagnostics call it.
    pub fn parse(name: &str, text: &str) -> Result<AllowedSigners> {
        let shared: Arc<str> = Arc::from(text);
        let mut signers = Vec::new();
        let mut offset = 0;
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            let start = offset;
            offset += raw.len();
            let line = raw.trim_end_matches(['\n', '\r']);
            let bad = |message: String, help: &str| -> Error {
                Box::new(Located::shared(
                    name,
                    &shared,
                    (start, line.len()),
                    message,
                    "here",
                    help,
                ))
                .into()
            };
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            signers.push(parse_signer(line, i + 1, &bad)?);
        }
        if signers.is_empty() {
            return Err(Box::new(Located::shared(
                name,
                &shared,
                (0, 0),
                "the allowed-signers file lists nobody",
                "empty",
                "list at least the key reconcile signs with (`gitca-ci ssh-ed25519 AAAA…`); signing cannot be switched off by emptying the file",
            ))
            .into());
        }
        Ok(AllowedSigners { signers })
    }

    /// The entry listing `key`, if any.
    pub fn find(&self, key: &ssh_key::public::KeyData) -> Option<&Signer> {
        self.signers.iter().find(|s| s.key.key_data() == key)
    }

    /// The signer of `key` allowed to sign in `namespace` (a `namespaces="git"` line only in
    /// `git`), as `ssh-keygen -Y verify` decides.
    pub fn find_for(&self, key: &ssh_key::public::KeyData, namespace: &str) -> Option<&Signer> {
        self.signers
            .iter()
            .find(|s| s.key.key_data() == key && (!s.git_only || namespace == "git"))
    }
}

/// One line of the file: `PRINCIPAL[,PRINCIPAL…] [namespaces="git"] ssh-ed25519 KEY
/// [comment]`, nothing else accepted.
fn parse_signer(line: &str, line_no: usize, bad: &dyn Fn(String, &str) -> Error) -> Result<Signer> {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad(
            "a control character in an allowed signer's line".into(),
            "each line is `PRINCIPAL ssh-ed25519 AAAA… [comment]`: retype the line",
        ));
    }
    let mut fields = line.split_whitespace();
    let principals_field = fields.next().unwrap_or_default();
    let principals: Vec<String> = principals_field.split(',').map(str::to_string).collect();
    if let Some(p) = principals.iter().find(|p| !is_principal(p)) {
        return Err(bad(
            format!("`{p}` is not a principal gitca accepts"),
            "a principal is letters, digits and . _ @ + - (no patterns such as * or !): e.g. gitca-ci@example.com",
        ));
    }
    let mut kind = fields.next().unwrap_or_default();
    let git_only = kind.contains('=');
    if git_only {
        if kind != "namespaces=\"git\"" {
            return Err(bad(
                format!("the option `{kind}` is not supported here"),
                "the only option gitca accepts is namespaces=\"git\"; remove the others (validity is history's: remove a signer by a signed commit)",
            ));
        }
        kind = fields.next().unwrap_or_default();
    }
    if kind != "ssh-ed25519" {
        return Err(bad(
            format!("`{kind}` is not an ed25519 public key"),
            "the history signing key is ed25519: ssh-keygen -t ed25519 -N '' -f signing.key, then list the line of signing.key.pub after a principal",
        ));
    }
    let b64 = fields.next().unwrap_or_default();
    let key = PublicKey::from_openssh(&format!("{kind} {b64}"))
        .ok()
        .filter(|k| k.algorithm() == ssh_key::Algorithm::Ed25519)
        .ok_or_else(|| {
            bad(
                "the key is not a valid ssh-ed25519 public key".into(),
                "paste the whole line of signing.key.pub (ssh-ed25519 AAAA…) after the principal",
            )
        })?;
    Ok(Signer {
        principals,
        key: PublicKey::from(key.key_data().clone()),
        line: line_no,
        git_only,
    })
}

fn is_principal(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 128
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-'))
}

/// The history signing key, in memory only.
pub struct SigningKey {
    key: PrivateKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.fingerprint())
    }
}

/// A `--signing-key FILE` given on the command line (it outranks the environment).
static FLAG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Records `--signing-key FILE` for this process.
pub fn set_flag(path: PathBuf) {
    let _ = FLAG.set(path);
}

impl SigningKey {
    /// The key from `--signing-key`, GITCA_SIGNING_KEY (its text) or GITCA_SIGNING_KEY_FILE, if
    /// one was given.
    pub fn from_env() -> Result<Option<SigningKey>> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let Some(file) = FLAG.get() {
            return Self::from_file(file, "--signing-key").map(Some);
        }
        if let Some(text) = var(KEY_VAR) {
            let text = Zeroizing::new(text);
            return Self::parse(text.as_bytes(), KEY_VAR).map(Some);
        }
        if let Some(file) = var(KEY_FILE_VAR) {
            return Self::from_file(&PathBuf::from(file), KEY_FILE_VAR).map(Some);
        }
        Ok(None)
    }

    fn from_file(path: &std::path::Path, origin: &str) -> Result<SigningKey> {
        let bytes = Zeroizing::new(crate::repository::confined::read_named(
            path,
            MAX_KEY_BYTES,
            "read the history signing key",
        )?);
        Self::parse(&bytes, &format!("{origin} ({})", path.display()))
    }

    /// Parses an OpenSSH private key; errors say what is wrong, never what the text holds.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<SigningKey> {
        let bad = |reason: String| Error::usage(reason, KEY_HELP);
        let text = std::str::from_utf8(bytes)
            .map_err(|_| bad(format!("{origin} is not an OpenSSH private key")))?;
        let key = PrivateKey::from_openssh(text.trim().as_bytes()).map_err(|_| {
            bad(format!(
                "{origin} is not an OpenSSH private key (the file `ssh-keygen -t ed25519` writes)"
            ))
        })?;
        if key.is_encrypted() {
            return Err(Error::usage(
                format!("{origin} is protected with a passphrase"),
                "CI signs without a person: keep the key unencrypted in the CI secret store (ssh-keygen -t ed25519 -N '' -f signing.key), and only there",
            ));
        }
        if key.algorithm() != ssh_key::Algorithm::Ed25519 {
            return Err(Error::usage(
                format!("{origin} is not an ed25519 key"),
                "make one: ssh-keygen -t ed25519 -N '' -f signing.key",
            ));
        }
        Ok(SigningKey { key })
    }

    pub fn public(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The key's SHA-256 fingerprint, as ssh-keygen -l shows it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The armored SSH signature (namespace `git`, SHA-512) of `data`, as git stores it in a
    /// commit's `gpgsig` header.
    pub fn sign(&self, data: &[u8]) -> Result<String> {
        self.sign_in(NAMESPACE, data)
    }

    /// The armored SSH signature of `data` in `namespace` (SHA-512).
    pub fn sign_in(&self, namespace: &str, data: &[u8]) -> Result<String> {
        let sig = self
            .key
            .sign(namespace, HashAlg::Sha512, data)
            .map_err(|e| Error::Crypto {
                what: "sign the commit",
                detail: e.to_string(),
            })?;
        sig.to_pem(LineEnding::LF).map_err(|e| Error::Crypto {
            what: "encode the commit signature",
            detail: e.to_string(),
        })
    }
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    Unsigned,
    NotSsh,
    WrongNamespace(String),
    UnknownKey(String),
    /// Listed, but with `namespaces="git"`: not for this namespace.
    NotForNamespace(String),
    BadSignature(String),
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverified::Unsigned => write!(f, "it is not signed"),
            Unverified::NotSsh => write!(f, "its signature is not an SSH signature"),
            Unverified::WrongNamespace(n) => {
                write!(f, "its signature is for another namespace (`{n}`)")
            }
            Unverified::UnknownKey(fp) => {
                write!(
                    f,
                    "it is signed by {fp}, a key the allowed signers do not list"
                )
            }
            Unverified::NotForNamespace(n) => write!(
                f,
                "its signer's line in the allowed signers says namespaces=\"git\": the key may not sign in `{n}`"
            ),
            Unverified::BadSignature(fp) => {
                write!(f, "its signature by {fp} does not match its contents")
            }
        }
    }
}

/// Verifies the armored SSH signature of `data` against `allowed`: the principal that signed.
pub fn verify(
    allowed: &AllowedSigners,
    armored: &[u8],
    data: &[u8],
) -> std::result::Result<String, Unverified> {
    verify_in(allowed, NAMESPACE, armored, data)
}

/// Verifies the armored SSH signature of `data` in `namespace` against `allowed`: the principal
/// that signed.
pub fn verify_in(
    allowed: &AllowedSigners,
    namespace: &str,
    armored: &[u8],
    data: &[u8],
) -> std::result::Result<String, Unverified> {
    let sig = SshSig::from_pem(armored).map_err(|_| Unverified::NotSsh)?;
    if sig.namespace() != namespace {
        return Err(Unverified::WrongNamespace(
            crate::output::encode::terminal(sig.namespace()).into(),
        ));
    }
    let fp = PublicKey::from(sig.public_key().clone())
        .fingerprint(HashAlg::Sha256)
        .to_string();
    let signer = allowed
        .find_for(sig.public_key(), namespace)
        .ok_or_else(|| match allowed.find(sig.public_key()) {
            Some(_) => Unverified::NotForNamespace(namespace.into()),
            None => Unverified::UnknownKey(fp.clone()),
        })?;
    signer
        .key
        .verify(namespace, data, &sig)
        .map_err(|_| Unverified::BadSignature(fp))?;
    Ok(signer.principals.join(","))
}

/// Verifies commit `oid`'s signature against `allowed`: the principal that signed.
pub fn verify_commit(
    git: &git2::Repository,
    oid: git2::Oid,
    allowed: &AllowedSigners,
) -> std::result::Result<String, Unverified> {
    let (sig, data) = match git.extract_signature(&oid, Some("gpgsig")) {
        Ok(pair) => pair,
        Err(_) => return Err(Unverified::Unsigned),
    };
    verify(allowed, &sig, &data)
}

/// The allowed-signers file in `tree`, parsed; `None` when the tree has none. `what` names the
/// version in diagnostics (e.g. `ca/allowed_signers at 1234abcd`).
pub fn in_tree(
    git: &git2::Repository,
    tree: &git2::Tree<'_>,
    what: &str,
) -> Result<Option<AllowedSigners>> {
    let Ok(entry) = tree.get_path(std::path::Path::new(ALLOWED_SIGNERS)) else {
        return Ok(None);
    };
    let Some(bytes) = crate::repository::history::read_blob(git, entry.id(), MAX_BYTES) else {
        return Err(Error::bad_file(
            ALLOWED_SIGNERS,
            format!("{what} is not a file gitca can read (at most {MAX_BYTES} bytes)"),
            "keep one line per signer: PRINCIPAL ssh-ed25519 AAAA…",
        ));
    };
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::bad_file(
            ALLOWED_SIGNERS,
            format!("{what} is not UTF-8 text"),
            "keep one line per signer: PRINCIPAL ssh-ed25519 AAAA…",
        )
    })?;
    AllowedSigners::parse(what, &text).map(Some)
}

/// What a commit gitca is about to make on HEAD is signed with: `None` when the repository
/// declares no signers and no key was given (signing is opt-in). Declared signers and no key, or
/// a key they do not list, refuse here — before anything is decrypted or written.
pub fn for_commit(git: &git2::Repository) -> Result<Option<SigningKey>> {
    let head = git.head().ok().and_then(|h| h.peel_to_commit().ok());
    let allowed = match &head {
        Some(c) => in_tree(git, &c.tree()?, ALLOWED_SIGNERS)?,
        None => None,
    };
    let key = SigningKey::from_env()?;
    match (allowed, key) {
        (None, key) => Ok(key),
        (Some(_), None) => Err(Error::usage(
            format!(
                "{ALLOWED_SIGNERS} says who signs this CA's history, and no history signing key was given"
            ),
            KEY_HELP,
        )),
        (Some(allowed), Some(key)) => match allowed.find(key.public().key_data()) {
            Some(_) => Ok(Some(key)),
            None => Err(Error::usage(
                format!(
                    "the history signing key given ({}) is not listed in {ALLOWED_SIGNERS}",
                    key.fingerprint()
                ),
                format!(
                    "give the key of one of: {} (or add this one to {ALLOWED_SIGNERS} by a commit signed by a current signer)",
                    allowed
                        .signers
                        .iter()
                        .map(|s| s.principals.join(","))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDOc6Dm8KGxBJpXZD2/Ib7fZU0SPjXwGQ4kcSZfUSzRi";

    #[test]
    fn allowed_signers_take_the_strict_subset() {
        let ok = format!("# who signs\ngitca-ci {PUB} ci\nalice,bob namespaces=\"git\" {PUB}\n");
        let a = AllowedSigners::parse("f", &ok).unwrap();
        assert_eq!(a.signers.len(), 2);
        assert_eq!(a.signers[1].principals, ["alice", "bob"]);
        assert_eq!(a.signers[1].line, 3);
        for bad in [
            format!("* {PUB}\n"),
            format!("ci valid-before=\"20300101\" {PUB}\n"),
            "ci ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n".to_string(),
            "ci ssh-ed25519 notbase64\n".to_string(),
            format!("ci\u{1b}[2J {PUB}\n"),
            "# nobody\n".to_string(),
        ] {
            assert!(AllowedSigners::parse("f", &bad).is_err(), "{bad:?}");
        }
    }
}
