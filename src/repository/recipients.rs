//! Who receives a key is said, and agreed to: a recipients file (`ca/recipients.txt`,
//! `ca/root-recipients.txt`) is signed by the key it guards, and every command that encrypts a
//! key shows whom it encrypts to and refuses anyone nobody confirmed.
//!
//! A pull request or a compromised CI runner can append a recipient to a recipients file; the
//! next ceremony or rekey would then encrypt the key to it. So:
//!
//! - whoever writes a recipients file with the key in hand (init, rekey, the root ceremonies,
//!   import) signs it with that key, in a last comment line that age ignores:
//!   `# gitca-signature: SEQUENCE BASE64`, over `gitca-recipients-v1`, the file's path, the
//!   sequence and the recipients, one per line; the sequence grows with every signed version;
//! - the list a key holder last agreed to is the signed version with the highest sequence in
//!   the file or in history (an older signed list put back is no more agreed to than an edit);
//! - a command about to encrypt a key prints the recipients, what changed since the signed
//!   list, and refuses every recipient added since unless the command line names it
//!   (`--accept-recipient`, or `rekey --add`, `--recipient`) or a person confirms on a terminal;
//! - `check` reports a recipients file that is not what its key signed, with the change.

use std::io::{IsTerminal, Write};

use base64::Engine as _;

use crate::authority::ca::{CaCert, CaKey};
use crate::authority::custody::{Custody, Vault};
use crate::error::{Error, Result};
use crate::repository::git::CaRepo;

const SIGNATURE: &str = "# gitca-signature: ";
const DOMAIN: &str = "gitca-recipients-v1\n";

/// A recipients file as read: its recipients and its signature line, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub recipients: Vec<String>,
    signature: Option<(u64, Vec<u8>)>,
}

impl List {
    pub fn parse(text: &str) -> List {
        let mut recipients = Vec::new();
        let mut signature = None;
        for line in text.lines().map(str::trim) {
            if let Some(sig) = line.strip_prefix(SIGNATURE.trim_end()) {
                let mut parts = sig.split_whitespace();
                let seq = parts.next().and_then(|s| s.parse::<u64>().ok());
                let bytes = parts
                    .next()
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
                if let (Some(seq), Some(bytes)) = (seq, bytes) {
                    signature = Some((seq, bytes));
                }
            } else if !line.is_empty() && !line.starts_with('#') {
                recipients.push(line.to_string());
            }
        }
        List {
            recipients,
            signature,
        }
    }

    /// The sequence of a signature `signer` made over this list as the file at `path`.
    pub fn signed_by(&self, path: &str, signer: &CaCert) -> Option<u64> {
        let (seq, sig) = self.signature.as_ref()?;
        crate::authority::pubkey::verify_with(
            &signer.spki_der,
            message(path, *seq, &self.recipients).as_bytes(),
            sig,
        )
        .then_some(*seq)
    }
}

fn message(path: &str, sequence: u64, recipients: &[String]) -> String {
    let mut m = format!("{DOMAIN}file: {path}\nsequence: {sequence}\n");
    for r in recipients {
        m.push_str(r);
        m.push('\n');
    }
    m
}

/// The text of `vault`'s recipients file for `custody`, signed by `key` (the key the vault
/// holds) with `sequence`.
pub fn signed_text(vault: &Vault, custody: &Custody, sequence: u64, key: &CaKey) -> Result<String> {
    let mut text = crate::authority::custody::recipients_txt_for(vault, custody);
    let recipients = match custody {
        Custody::Recipients(r) => r.clone(),
        Custody::Passphrase(_) => Vec::new(),
    };
    let sig = rcgen::SigningKey::sign(
        key,
        message(vault.recipients, sequence, &recipients).as_bytes(),
    )
    .map_err(Error::crypto("signing the recipients list"))?;
    text.push_str(&format!(
        "{SIGNATURE}{sequence} {}\n",
        base64::engine::general_purpose::STANDARD.encode(sig)
    ));
    Ok(text)
}

/// How a recipients file stands against what the key it guards signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The file is the newest list the key signed.
    Signed { sequence: u64 },
    /// Nothing was ever signed (a CA from before signed lists): the next rekey or ceremony
    /// asks for every recipient to be confirmed, and signs.
    Unsigned,
    /// The file is not the newest signed list: what that list was, where, and why.
    Changed {
        signed: Vec<String>,
        sequence: u64,
        commit: String,
        why: String,
    },
}

impl Standing {
    /// The sequence the next signed version takes.
    pub fn next_sequence(&self) -> u64 {
        match self {
            Standing::Signed { sequence } | Standing::Changed { sequence, .. } => sequence + 1,
            Standing::Unsigned => 1,
        }
    }

    /// The list a key holder last agreed to (empty when none).
    pub fn agreed<'a>(&'a self, on_disk: &'a [String]) -> &'a [String] {
        match self {
            Standing::Signed { .. } => on_disk,
            Standing::Changed { signed, .. } => signed,
            Standing::Unsigned => &[],
        }
    }
}

/// Judges `vault`'s recipients file against the newest version `signer` signed, on disk or in
/// HEAD's history.
pub fn judge(repo: &CaRepo, vault: &Vault, signer: &CaCert) -> Result<(List, Standing)> {
    let text = repo
        .dir
        .read_string(vault.recipients, crate::authority::custody::MAX_FILE_BYTES)?;
    let disk = List::parse(&text);
    let disk_seq = disk.signed_by(vault.recipients, signer);
    let history = repo.history()?;
    let mut newest: Option<(u64, List, String)> = None;
    for (blob, index) in history.versions(vault.recipients) {
        let Some(old) = history.text(&repo.git, blob, crate::authority::custody::MAX_FILE_BYTES)?
        else {
            continue;
        };
        let list = List::parse(&old);
        if let Some(seq) = list.signed_by(vault.recipients, signer) {
            if newest.as_ref().is_none_or(|(s, _, _)| seq > *s) {
                let commit = history
                    .commit(index)
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                newest = Some((seq, list, commit));
            }
        }
    }
    let standing = match (disk_seq, newest) {
        (Some(d), Some((h, _, _))) if d >= h => Standing::Signed { sequence: d },
        (Some(d), None) => Standing::Signed { sequence: d },
        (_, Some((sequence, list, commit))) => Standing::Changed {
            why: if disk_seq.is_some() {
                format!(
                    "an older signed list was put back (sequence {} of {sequence})",
                    disk_seq.unwrap_or(0)
                )
            } else if disk.signature.is_some() {
                "its signature does not verify: it was edited by hand".into()
            } else {
                "it has no signature: it was edited by hand".into()
            },
            signed: list.recipients,
            sequence,
            commit,
        },
        (None, None) if disk.signature.is_none() => Standing::Unsigned,
        (None, None) => Standing::Changed {
            signed: Vec::new(),
            sequence: 0,
            commit: String::new(),
            why: "its signature does not verify: it was edited by hand".into(),
        },
    };
    Ok((disk, standing))
}

/// The difference between what a key holder agreed to and a list: (added, removed).
pub fn diff<'a>(agreed: &'a [String], now: &'a [String]) -> (Vec<&'a String>, Vec<&'a String>) {
    (
        now.iter().filter(|r| !agreed.contains(r)).collect(),
        agreed.iter().filter(|r| !now.contains(r)).collect(),
    )
}

/// A line naming a recipient for people: age keys whole (short enough to compare), SSH keys by
/// type, their SHA-256 fingerprint as `ssh-keygen -l` prints it, and comment. A few characters
/// of the key itself are no proof: for ssh-rsa anyone can make a key of their own that ends
/// like a custodian's.
pub fn shown(r: &str) -> String {
    let r = crate::output::encode::one_line(r);
    if !r.starts_with("ssh-") {
        return r.into_owned();
    }
    let parts: Vec<&str> = r.split_whitespace().collect();
    match parts.as_slice() {
        [t, key, rest @ ..] => format!("{t} {} {}", fingerprint(key), rest.join(" ")),
        _ => r.into_owned(),
    }
}

/// `SHA256:…` of an SSH public key's base64 blob, as `ssh-keygen -l` prints it.
fn fingerprint(key: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(blob) => format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(&blob))
        ),
        Err(_) => format!("(not base64: {key})"),
    }
}

/// What a command is about to encrypt a key to, checked against what its key holders agreed
/// to: prints the recipients and the change, and refuses every recipient added since the signed
/// list that `named` (the command line) does not name, unless a person confirms on a terminal.
pub struct Agreement<'a> {
    /// "the new intermediate's key", "the CA key".
    pub what: &'a str,
    /// The recipients it will be encrypted to.
    pub to: &'a [String],
    /// What key holders agreed to: each recipients file that feeds `to`, its standing, and
    /// its list on disk.
    pub sources: Vec<(&'a str, &'a Standing, &'a [String])>,
    /// Recipients the command line names (and so confirms).
    pub named: &'a [String],
}

impl Agreement<'_> {
    /// Prints the recipients and how each recipients file stands against what its key
    /// holders signed; `Ok` when every recipient was agreed to, named on the command line, or
    /// confirmed by a person at the terminal.
    pub fn confirm(&self, out: &mut dyn Write) -> Result<()> {
        let _ = writeln!(
            out,
            "Encrypting {} to {} recipient(s):",
            self.what,
            self.to.len()
        );
        for r in self.to {
            let _ = writeln!(out, "  {}", shown(r));
        }
        let (agreed, restore) = self.review_sources(out);
        let unconfirmed: Vec<&String> = self
            .to
            .iter()
            .filter(|r| !agreed.contains(r) && !self.named.contains(r))
            .collect();
        if unconfirmed.is_empty() {
            return Ok(());
        }
        if std::io::stdin().is_terminal()
            && std::env::var_os("GITCA_NO_PROMPT").is_none()
            && self.confirmed_at_terminal(&unconfirmed, out)
        {
            return Ok(());
        }
        Err(self.refusal(&unconfirmed, &restore))
    }

    /// Notes each recipients file that is not the list its key holders signed. Returns every
    /// recipient they agreed to, and the commands that restore the signed lists.
    fn review_sources(&self, out: &mut dyn Write) -> (Vec<String>, Vec<String>) {
        let mut agreed: Vec<String> = Vec::new();
        let mut restore: Vec<String> = Vec::new();
        for (file, standing, on_disk) in &self.sources {
            agreed.extend(standing.agreed(on_disk).iter().cloned());
            match standing {
                Standing::Changed {
                    signed,
                    commit,
                    why,
                    ..
                } => {
                    let (added, removed) = diff(signed, on_disk);
                    let _ = writeln!(
                        out,
                        "note: {file} is not the list its key last signed ({why}){}{}",
                        added
                            .iter()
                            .map(|r| format!("; + {}", shown(r)))
                            .collect::<String>(),
                        removed
                            .iter()
                            .map(|r| format!("; - {}", shown(r)))
                            .collect::<String>(),
                    );
                    if !commit.is_empty() {
                        restore.push(format!(
                            "git checkout {} -- {file}",
                            &commit[..commit.len().min(12)]
                        ));
                    }
                }
                Standing::Unsigned => {
                    let _ = writeln!(
                        out,
                        "note: {file} was never signed (a CA from before signed lists): every recipient in it must be confirmed once"
                    );
                }
                Standing::Signed { .. } => {}
            }
        }
        (agreed, restore)
    }

    /// Asks the person at the terminal to confirm the recipients nobody agreed to or named.
    fn confirmed_at_terminal(&self, unconfirmed: &[&String], out: &mut dyn Write) -> bool {
        let _ = writeln!(
            out,
            "These recipients were not in the list its key holders signed, and no flag names them:"
        );
        for r in unconfirmed {
            let _ = writeln!(out, "  + {}", shown(r));
        }
        let _ = write!(
            out,
            "Encrypt {} to them too? Type yes to go on: ",
            self.what
        );
        let _ = out.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        answer.trim() == "yes"
    }

    /// The refusal to encrypt to recipients nobody confirmed, with how to confirm them (or
    /// restore the signed list).
    fn refusal(&self, unconfirmed: &[&String], restore: &[String]) -> Error {
        Error::usage(
            format!(
                "refusing to encrypt {} to {} recipient(s) nobody confirmed: {}",
                self.what,
                unconfirmed.len(),
                unconfirmed
                    .iter()
                    .map(|r| shown(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "a recipient added since its key holders last signed the list must be named: ask its owner, then pass --accept-recipient RECIPIENT for each{}",
                if restore.is_empty() {
                    String::new()
                } else {
                    format!("; if the change is not yours, restore the signed list: {}", restore.join("; "))
                }
            ),
        )
    }
}
