//! A private SoftHSM2 token for a test: its own configuration (SOFTHSM2_CONF) and token
//! directory under a temporary directory, never the machine's own.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ok, require};

/// Where Debian's `softhsm2` package puts the module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every test token: distinctive, so a test can look for it in the repository.
pub const PIN: &str = "pin-5be1c0d7";
pub const LABEL: &str = "gitca-test";

pub struct Token {
    pub tmp: tempfile::TempDir,
    pub conf: PathBuf,
}

impl Token {
    /// A fresh SoftHSM2 configuration with one initialized token labelled [`LABEL`].
    pub fn new() -> Token {
        require("softhsm2-util");
        assert!(
            Path::new(MODULE).is_file(),
            "{MODULE} is missing: install the Debian package softhsm2 (scripts/install-deps.sh)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let tokens = tmp.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = tmp.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        ok(Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", LABEL, "--pin", PIN])
            .args(["--so-pin", "so-pin-51c2"])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap());
        Token { tmp, conf }
    }

    /// Initializes another token labelled `label` in the same configuration (same module,
    /// same PIN): a second HSM, for custody moving from one token to another.
    pub fn add(&self, label: &str) {
        ok(Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", label, "--pin", PIN])
            .args(["--so-pin", "so-pin-51c2"])
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap());
    }

    /// The module, PIN and token configuration on a gitca command.
    pub fn env<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        c.env("SOFTHSM2_CONF", &self.conf)
            .env("GITCA_PKCS11_MODULE", MODULE)
            .env("GITCA_PKCS11_PIN", PIN)
    }
}
