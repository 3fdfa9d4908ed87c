//! The flags that say where a key comes from (`--identity`, `--pkcs11-module`) and where a new
//! one goes (`--recipient`, `--passphrase`), shared by the commands that unlock or encrypt one.

use std::path::PathBuf;

use clap::Args;

use crate::authority::custody::{self, Custody, KeySource};
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct IdentityArg {
    /// age identity file (or unencrypted SSH private key) that decrypts the key this command
    /// needs: ca/ca.key.age, or ca/root.key.age for `gitca root …` and `rekey --root`.
    /// Also: GITCA_IDENTITY (the identity text), GITCA_IDENTITY_FILE, GITCA_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// The PKCS#11 library of the token that holds the key, when the repository records one
    /// (ca/ca.key.pkcs11). Also: GITCA_PKCS11_MODULE. The PIN: GITCA_PKCS11_PIN, else asked.
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
}

impl IdentityArg {
    /// Where the key comes from: these flags, then the environment.
    pub fn key_source(self) -> KeySource {
        let mut source = KeySource::from_env(self.identity);
        if self.pkcs11_module.is_some() {
            source.token.module = self.pkcs11_module;
        }
        source
    }
}

#[derive(Debug, Args)]
pub struct CustodyArgs {
    /// Encrypt the CA key to this age (age1…) or SSH (ssh-ed25519/ssh-rsa) public key. Repeatable.
    #[arg(long = "recipient", short = 'r', value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// Encrypt to every recipient listed in FILE (age's recipients-file format).
    #[arg(long, short = 'R', value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,
    /// Encrypt with a passphrase (scrypt): GITCA_PASSPHRASE, else asked twice on the terminal.
    /// Not together with recipients (the age format forbids it); for a break-glass copy next
    /// to CI, see docs/custody.md.
    #[arg(long)]
    pub passphrase: bool,
}

fn read_passphrase() -> Result<age::secrecy::SecretString> {
    use std::io::IsTerminal;
    let pass = match std::env::var("GITCA_PASSPHRASE") {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => {
            let a = rpassword::prompt_password("Passphrase for the new CA key: ")
                .map_err(|_| Error::NoPassphrase)?;
            let b = rpassword::prompt_password("Repeat the passphrase: ")
                .map_err(|_| Error::NoPassphrase)?;
            if a != b {
                return Err(Error::PassphraseMismatch);
            }
            a
        }
        Err(_) => return Err(Error::NoPassphrase),
    };
    if pass.is_empty() {
        return Err(Error::EmptyPassphrase);
    }
    Ok(age::secrecy::SecretString::from(pass))
}

/// The new passphrase for `rekey --passphrase`: GITCA_NEW_PASSPHRASE, else asked twice.
pub fn read_new_passphrase() -> Result<age::secrecy::SecretString> {
    match std::env::var("GITCA_NEW_PASSPHRASE") {
        Ok(p) if p.is_empty() => Err(Error::EmptyPassphrase),
        Ok(p) => Ok(age::secrecy::SecretString::from(p)),
        Err(_) => {
            // Without GITCA_NEW_PASSPHRASE, never reuse GITCA_PASSPHRASE (the old one) silently.
            use std::io::IsTerminal;
            if !std::io::stdin().is_terminal() {
                return Err(Error::usage(
                    "rekey --passphrase needs the new passphrase",
                    "set GITCA_NEW_PASSPHRASE (GITCA_PASSPHRASE is the current one)",
                ));
            }
            let a = rpassword::prompt_password("New passphrase for the CA key: ")
                .map_err(|_| Error::NoPassphrase)?;
            let b = rpassword::prompt_password("Repeat the new passphrase: ")
                .map_err(|_| Error::NoPassphrase)?;
            if a != b {
                return Err(Error::PassphraseMismatch);
            }
            if a.is_empty() {
                return Err(Error::EmptyPassphrase);
            }
            Ok(age::secrecy::SecretString::from(a))
        }
    }
}

/// Turns the recipient flags into a custody choice, validating every recipient.
pub fn custody_from_args(args: &CustodyArgs) -> Result<Custody> {
    if args.passphrase && !(args.recipients.is_empty() && args.recipients_file.is_empty()) {
        return Err(Error::usage(
            "--passphrase and recipients together: age encrypts a file to recipients or to one passphrase, never both",
            "for a passphrase-protected break-glass copy, make an age identity and protect it with a passphrase (age-keygen | age -p -a > breakglass.age), pass its public key as one more --recipient, and keep breakglass.age offline: gitca reads such an identity file, asking for its passphrase (or GITCA_IDENTITY_PASSPHRASE)",
        ));
    }
    if args.passphrase {
        return Ok(Custody::Passphrase(read_passphrase()?));
    }
    let mut all = args.recipients.clone();
    for f in &args.recipients_file {
        all.extend(custody::read_recipients_file(f)?);
    }
    Ok(Custody::Recipients(custody::validate_recipients(&all)?))
}
