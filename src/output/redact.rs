//! The last line of defence for invariant 11: nothing gitca prints may contain an age identity,
//! a passphrase or a private key, whatever the input; and the terminal channel's encoder of
//! invariant 15: no control, bidi or invisible character reaches a terminal or a CI log
//! (see [`crate::output::encode::terminal`]).
//!
//! gitca never reads a secret into anything it prints (the CA key is decrypted in memory only,
//! inputs are read without following links, diagnostics quote repository files only), so this
//! filter should never fire. It exists because a CI log is forever: every line gitca writes to
//! stdout or stderr goes through [`Redactor::line`], which blanks out the values of the secret
//! environment variables, anything shaped like an age secret key, and PEM private key blocks.

use std::io::Write;

/// Environment variables whose values are secrets.
pub const SECRET_VARS: &[&str] = &[
    "GITCA_IDENTITY",
    "GITCA_PASSPHRASE",
    "GITCA_IDENTITY_PASSPHRASE",
    "GITCA_NEW_PASSPHRASE",
    "GITCA_IMPORT_PASSPHRASE",
    "GITCA_P12_PASSWORD",
    "GITCA_SIGNING_KEY",
];

const MASK: &str = "[redacted]";
/// Secrets shorter than this are not searched for: blanking every "a" in the output would make
/// it unreadable, and nothing prints them anyway.
const MIN_SECRET: usize = 6;

#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// The secrets of this process's environment.
    pub fn from_env() -> Redactor {
        let mut secrets = Vec::new();
        for var in SECRET_VARS {
            if let Ok(v) = std::env::var(var) {
                // An identity file's text: every line of it, the key line above all.
                for line in v.lines().map(str::trim) {
                    if line.len() >= MIN_SECRET && !line.starts_with('#') {
                        secrets.push(line.to_string());
                    }
                }
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `line` with every secret blanked out and every invisible character made visible.
    pub fn line(&self, line: &str) -> String {
        let mut out = crate::output::encode::terminal(line).into_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        mask_age_keys(&mut out);
        out
    }

    /// A whole text, line by line; a PEM private key block is dropped entirely.
    pub fn text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut in_key = false;
        for line in text.split_inclusive('\n') {
            let marker = line.trim();
            if marker.starts_with("-----BEGIN ") && marker.contains("PRIVATE KEY") {
                in_key = true;
                out.push_str(MASK);
                out.push('\n');
                continue;
            }
            if in_key {
                if marker.starts_with("-----END ") {
                    in_key = false;
                }
                continue;
            }
            out.push_str(&self.line(line));
        }
        out
    }
}

/// Blanks out anything shaped like an age secret key (`AGE-SECRET-KEY-1` and its Bech32 tail),
/// in any case.
fn mask_age_keys(s: &mut String) {
    const HRP: &str = "AGE-SECRET-KEY-1";
    loop {
        let upper = s.to_ascii_uppercase();
        let Some(at) = upper.find(HRP) else {
            return;
        };
        let tail = upper[at + HRP.len()..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        s.replace_range(at..at + HRP.len() + tail, MASK);
    }
}

/// Writes `text` (one or more lines) to stderr through the redactor and the terminal encoder:
/// the one way gitca writes to stderr. A closed stderr is not an error worth a panic.
pub fn stderr(text: &str) {
    if text.is_empty() {
        return;
    }
    static REDACTOR: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    let mut text = REDACTOR.get_or_init(Redactor::from_env).text(text);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// A writer that redacts what passes through it, a line at a time (a secret is never split
/// across two lines, so nothing is held back longer than a line).
pub struct Writer<W: Write> {
    inner: W,
    redactor: Redactor,
    pending: Vec<u8>,
    in_key: bool,
}

impl<W: Write> Writer<W> {
    pub fn new(inner: W, redactor: Redactor) -> Self {
        Writer {
            inner,
            redactor,
            pending: Vec::new(),
            in_key: false,
        }
    }

    fn emit(&mut self, line: &[u8]) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(line);
        let marker = text.trim();
        if marker.starts_with("-----BEGIN ") && marker.contains("PRIVATE KEY") {
            self.in_key = true;
            return self.inner.write_all(b"[redacted]\n");
        }
        if self.in_key {
            if marker.starts_with("-----END ") {
                self.in_key = false;
            }
            return Ok(());
        }
        self.inner.write_all(self.redactor.line(&text).as_bytes())
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            self.emit(&line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line)?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Writer<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_keys_and_key_blocks_are_blanked() {
        let r = Redactor {
            secrets: vec!["hunter2-long".into()],
        };
        let key = concat!("AGE-SECRET", "-KEY-1QQQQ7Z8Z9");
        let lower = key.to_ascii_lowercase();
        let text = format!(
            "a hunter2-long b\n{key} and {lower}\n-----BEGIN {p}-----\nMIGH\n-----END {p}-----\nafter\n",
            p = concat!("PRIVATE", " KEY")
        );
        let out = r.text(&text);
        assert!(!out.contains("hunter2-long"), "{out}");
        assert!(
            !out.to_ascii_uppercase().contains("AGE-SECRET-KEY-1Q"),
            "{out}"
        );
        assert!(!out.contains("MIGH"), "{out}");
        assert!(out.contains("after"), "{out}");
        let mut buf = Vec::new();
        {
            let mut w = Writer::new(&mut buf, r.clone());
            w.write_all(b"x hunter2-").unwrap();
            w.write_all(b"long y\nno newline hunter2-long").unwrap();
        }
        let s = String::from_utf8(buf).unwrap();
        assert_eq!(s, "x [redacted] y\nno newline [redacted]");
    }
}
