//! Every error a user can hit, each with the remedy that goes with it.
//!
//! Errors that come from a YAML file carry the file's text and a span, so miette can show the
//! offending line. Internal plumbing errors (git, I/O) are wrapped with the path they concern.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem located in a text file (YAML, recipients file, ledger): file, line, label and fix.
#[derive(Debug, Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(gitca::input))]
pub struct Located {
    pub message: String,
    /// The file's text, shared by every diagnostic about that file (an identities file with
    /// thousands of broken entries must not be copied thousands of times).
    #[source_code]
    pub src: NamedSource<Arc<str>>,
    #[label("{label}")]
    pub span: SourceSpan,
    pub label: String,
    #[help]
    pub help: Option<String>,
    #[related]
    pub related: Vec<Located>,
}

impl Located {
    /// A problem at `span` (byte offset, length) of the file `name` whose text is `text`
    /// (copied: for one-off diagnostics; [`Located::shared`] for many about one file).
    pub fn new(
        name: &str,
        text: &str,
        span: (usize, usize),
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Located::shared(name, &Arc::from(text), span, message, label, help)
    }

    /// [`Located::new`] sharing `text` with every other diagnostic about the same file.
    pub fn shared(
        name: &str,
        text: &Arc<str>,
        span: (usize, usize),
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        let start = span.0.min(text.len());
        let len = span.1.min(text.len() - start);
        Located {
            message: message.into(),
            src: NamedSource::new(name, text.clone()),
            span: (start, len).into(),
            label: label.into(),
            help: Some(help.into()).filter(|h: &String| !h.is_empty()),
            related: Vec::new(),
        }
    }

    /// The 1-based line of the span, for JSON output.
    pub fn line(&self) -> usize {
        let text = self.src.inner();
        text[..self.span.offset().min(text.len())]
            .matches('\n')
            .count()
            + 1
    }

    pub fn file(&self) -> &str {
        self.src.name()
    }
}

#[derive(Debug, Error, Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Located(#[from] Box<Located>),

    #[error("{count} problem(s) found")]
    #[diagnostic(
        code(gitca::many),
        help("fix each problem listed below, then run the command again")
    )]
    Many {
        count: usize,
        #[related]
        errors: Vec<Error>,
    },

    #[error("{path} is already a gitca CA repository")]
    #[diagnostic(
        code(gitca::authority::init::exists),
        help("nothing was changed; to start over, use a new directory (or delete gitca.yaml and ca/ yourself)")
    )]
    AlreadyInitialized { path: PathBuf },

    #[error("{path} is a file, not a directory")]
    #[diagnostic(
        code(gitca::authority::init::not_dir),
        help("pass a directory with -C/--dir, or remove the file")
    )]
    NotADirectory { path: PathBuf },

    #[error("{path} is not empty and is not a gitca CA repository")]
    #[diagnostic(
        code(gitca::authority::init::not_empty),
        help("gitca init creates gitca.yaml, identities/, ca/, crl/ and the ledger; run it in an empty directory or an empty git repository")
    )]
    DirectoryNotEmpty { path: PathBuf },

    #[error("unknown key type `{given}`")]
    #[diagnostic(
        code(gitca::key_type),
        help("use one of: p256 (default), p384, rsa3072, rsa4096")
    )]
    UnknownKeyType { given: String },

    #[error("invalid duration `{given}`")]
    #[diagnostic(
        code(gitca::duration),
        help("write a whole number followed by a unit: 90d, 12h, 30m, 2w, 10y")
    )]
    BadDuration { given: String },

    #[error("invalid time `{given}`")]
    #[diagnostic(
        code(gitca::time),
        help("give an RFC 3339 time such as 2027-01-31T12:00:00Z (in --now or GITCA_NOW)")
    )]
    BadTime { given: String },

    #[error("`{recipient}` is not an age recipient: {reason}")]
    #[diagnostic(
        code(gitca::recipient),
        help("a recipient is an age public key (age1…), or an SSH public key line (ssh-ed25519 AAAA… or ssh-rsa AAAA…); `age-keygen -y key.txt` prints yours")
    )]
    BadRecipient { recipient: String, reason: String },

    #[error("no recipients to encrypt the CA key to")]
    #[diagnostic(
        code(gitca::no_recipients),
        help("pass --recipient age1… (repeatable), --recipients-file FILE, or --passphrase")
    )]
    NoRecipients,

    #[error("the passphrase is empty")]
    #[diagnostic(
        code(gitca::passphrase::empty),
        help("set GITCA_PASSPHRASE to a non-empty passphrase, or type one at the prompt")
    )]
    EmptyPassphrase,

    #[error("the two passphrases differ")]
    #[diagnostic(
        code(gitca::passphrase::mismatch),
        help("type the same passphrase twice")
    )]
    PassphraseMismatch,

    #[error("a passphrase is needed but there is no terminal to ask for it")]
    #[diagnostic(code(gitca::passphrase::no_tty), help("set GITCA_PASSPHRASE"))]
    NoPassphrase,

    #[error("PKCS#11 token: {reason}")]
    #[diagnostic(code(gitca::authority::token))]
    Token {
        reason: String,
        #[help]
        help: String,
    },

    #[error(
        "the key the token holds at {uri} is not the private half of the certificate it signs for"
    )]
    #[diagnostic(
        code(gitca::token_key_mismatch),
        help("the token (or the URI recorded in the repository) was swapped: restore the URI file from git history, or insert the token that holds the CA key; nothing was signed or written")
    )]
    TokenKeyMismatch { uri: String },

    #[error("cannot unlock the CA key: {reason}")]
    #[diagnostic(code(gitca::unlock))]
    Unlock {
        reason: String,
        #[help]
        help: String,
    },

    /// A key unlocked (or opened in its token) is not the private half of its certificate: the
    /// message names the file that holds the key's record, age-encrypted or a token record.
    #[error("{reason}")]
    #[diagnostic(code(gitca::authority::ca::mismatch))]
    CaKeyMismatch {
        reason: String,
        #[help]
        help: String,
    },

    #[error("{path} is not a gitca CA repository (no gitca.yaml)")]
    #[diagnostic(
        code(gitca::not_ca),
        help(
            "run the command inside a CA repository, pass -C DIR, or create one with `gitca init`"
        )
    )]
    NotACa { path: PathBuf },

    #[error("uncommitted changes to files gitca reads or writes:\n{files}")]
    #[diagnostic(
        code(gitca::dirty),
        help("commit them first (reconcile applies what is committed), or pass --allow-dirty; if a previous reconcile was interrupted, `git checkout -- certs crl ledger.tsv` restores its outputs")
    )]
    Dirty { files: String },

    #[error("another gitca command holds the lock on this repository")]
    #[diagnostic(code(gitca::locked), help("wait for the other reconcile to finish; the lock is {} and is released when that process exits", path.display()))]
    Locked { path: PathBuf },

    #[error("CSR for `{identity}` ({file}) refused: {rule}")]
    #[diagnostic(code(gitca::csr))]
    CsrRefused {
        identity: String,
        file: String,
        rule: String,
        #[help]
        help: String,
    },

    #[error("{} is a symbolic link", path.display())]
    #[diagnostic(
        code(gitca::symlink),
        help("gitca never follows a link inside the directory it works in (a link could make it read or overwrite any file on the machine); replace the link with the file itself: git rm --cached {}, then add the real file", path.display())
    )]
    SymlinkRefused { path: PathBuf },

    #[error("{} is {len} bytes, more than the {limit} gitca reads", shown(path))]
    #[diagnostic(
        code(gitca::too_large),
        help("nothing was read; a file of this kind is at most {limit} bytes: remove or split it")
    )]
    FileTooLarge { path: PathBuf, len: u64, limit: u64 },

    #[error(
        "{}: `{}` on the way is a symbolic link another user could have planted",
        shown(path),
        crate::output::encode::one_line(link)
    )]
    #[diagnostic(
        code(gitca::untrusted_link),
        help("gitca follows a link on the way to a directory only when it and the directory holding it belong to root or to you and nobody else may write there; pass the real path (realpath PATH)")
    )]
    UntrustedLink { path: PathBuf, link: String },

    #[error("{}: {reason}", shown(path))]
    #[diagnostic(code(gitca::file))]
    BadFile {
        path: PathBuf,
        reason: String,
        #[help]
        help: String,
    },

    #[error("cannot {action} {}", shown(path))]
    #[diagnostic(
        code(gitca::io),
        help("check that the path exists and that you may read and write it")
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("git: {0}")]
    #[diagnostic(
        code(gitca::git),
        help("check the repository with `git status`; nothing was committed")
    )]
    Git(#[from] git2::Error),

    #[error("{what} failed: {detail}")]
    #[diagnostic(code(gitca::crypto), help("this is a bug in gitca or its crypto library; please report it with the command you ran"))]
    Crypto { what: &'static str, detail: String },

    #[error("cannot fetch {what}: {reason}")]
    #[diagnostic(
        code(gitca::fetch),
        help("check the source (URL, path or repository) and the network; nothing installed was changed")
    )]
    Fetch { what: String, reason: String },

    #[error("{message}")]
    #[diagnostic(code(gitca::usage))]
    Usage {
        message: String,
        #[help]
        help: String,
    },
}

impl Error {
    pub fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    pub fn crypto(what: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
        move |e| Error::Crypto {
            what,
            detail: e.to_string(),
        }
    }

    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn bad_file(
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
        help: impl Into<String>,
    ) -> Error {
        Error::BadFile {
            path: path.into(),
            reason: reason.into(),
            help: help.into(),
        }
    }

    /// One error, or a `Many` when several were collected.
    pub fn collect(mut errors: Vec<Error>) -> Result<()> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.pop().expect("one error")),
            count => Err(Error::Many { count, errors }),
        }
    }

    /// Flattens `Many` into its parts, for JSON reports.
    pub fn into_flat(self) -> Vec<Error> {
        match self {
            Error::Many { errors, .. } => errors.into_iter().flat_map(Error::into_flat).collect(),
            e => vec![e],
        }
    }
}

impl From<Located> for Error {
    fn from(l: Located) -> Self {
        Error::Located(Box::new(l))
    }
}

/// A path in a message: on one line whatever its name holds (see [`crate::output::encode::one_line`]).
fn shown(path: &std::path::Path) -> String {
    crate::output::encode::one_line(&path.to_string_lossy()).into_owned()
}
