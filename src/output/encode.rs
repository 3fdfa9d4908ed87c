//! One encoder per output channel (invariant 15): whatever a pull request, a CSR, a mirror or a
//! hostile tree put into a value, it reaches each channel through that channel's encoder here,
//! and is never read as syntax there.
//!
//! | channel | encoder | what it guarantees |
//! |---|---|---|
//! | terminal, CI log (stdout, stderr) | [`terminal`], applied to every line by the redactor (`output::redact`) | no control, bidi or invisible character reaches a terminal: each is shown as `\uXXXX` |
//! | markdown (`plan --markdown`) | [`markdown`] | markup characters escaped, autolinks broken, invisible characters replaced |
//! | JSON | serde_json | strings escaped by the serializer; never assembled by hand |
//! | nginx configuration | [`nginx_value`], [`comment_line`] | a value is one quoted token without variables; a comment is one line |
//! | TOML (containerd's `hosts.toml`) | [`toml_string`] | a basic string with TOML's escapes |
//! | Prometheus text format | [`prometheus_label`] | a label value with the format's three escapes |
//! | PEM files (certificates, CRLs, public keys) | [`to_pem`] | base64 of the DER between the label's lines, LF line endings |
//! | certificate subjects shown to people | `authority::subject::rfc4514` | RFC 4514 escaping |
//!
//! `\uXXXX` is also a valid JSON escape, so the terminal encoder applied to JSON output (which
//! goes to stdout like the rest) keeps it valid and meaning the same.

use std::borrow::Cow;

/// Characters that change what a terminal or a reader shows without being seen themselves:
/// C0 and C1 controls (but newline and tab), DEL, and Unicode's format, bidirectional,
/// zero-width, separator and invisible-letter code points.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}'
        | '\u{b}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{ad}'
        | '\u{34f}'
        | '\u{600}'..='\u{605}'
        | '\u{61c}'
        | '\u{6dd}'
        | '\u{70f}'
        | '\u{890}'..='\u{891}'
        | '\u{8e2}'
        | '\u{115f}'..='\u{1160}'
        | '\u{17b4}'..='\u{17b5}'
        | '\u{180b}'..='\u{180f}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{3164}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{feff}'
        | '\u{ffa0}'
        | '\u{fff0}'..='\u{fffb}'
        | '\u{110bd}'
        | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e0fff}'
    )
}

/// `\uXXXX` (UTF-16 code units, as JSON writes them) for one character.
fn escape_into(out: &mut String, c: char) {
    let mut units = [0u16; 2];
    for u in c.encode_utf16(&mut units) {
        out.push_str(&format!("\\u{u:04x}"));
    }
}

/// Text for a terminal or a CI log: every invisible character (see [`is_invisible`]) made
/// visible as `\uXXXX`; newlines and tabs stay.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_invisible) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_invisible(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A value from the repository (a file name, a path, a name) for one line of a message: as
/// [`terminal`], and newlines, carriage returns and tabs escaped too, so that a value can never
/// start a line of its own in a CI log (where `::error`, `::add-mask::` or `::set-output` at
/// the start of a line is a command to the runner).
pub fn one_line(s: &str) -> Cow<'_, str> {
    let breaks = |c: char| is_invisible(c) || matches!(c, '\n' | '\r' | '\t');
    if !s.chars().any(breaks) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if breaks(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text from the repository (paths, names, details) made inert for a GitHub or GitLab markdown
/// table: every character that can start markup (emphasis, code, links, images, HTML, entities,
/// math, headings, strikethrough, a table cell) is backslash-escaped, as CommonMark allows for
/// any ASCII punctuation; autolinks are broken; line breaks, other control characters and
/// bidirectional overrides are replaced (by a space and U+FFFD). A crafted file name cannot end the row, hide rows, or
/// render as something it is not.
pub fn markdown(s: &str) -> String {
    const MARKUP: &str = "\\`*_[]<>|~&!#$";
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if MARKUP.contains(c) => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if is_invisible(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out.replace("://", ":\\/\\/").replace("www.", "www\\.")
}

/// Why a value cannot go into an nginx configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// A value as one nginx token: double-quoted, `"` and `\` escaped. Refused: a `$` (nginx
/// expands variables in quoted strings too, and has no escape for `$`), control or invisible
/// characters, and the empty string.
pub fn nginx_value(s: &str) -> Result<String, Refused> {
    if s.is_empty() {
        return Err(Refused("it is empty".into()));
    }
    if s.contains('$') {
        return Err(Refused(
            "it contains `$`, which nginx reads as a variable".into(),
        ));
    }
    if s.chars().any(|c| is_invisible(c) || c == '\n' || c == '\t') {
        return Err(Refused(
            "it contains a control or invisible character".into(),
        ));
    }
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// Text for a `#` comment of a configuration file (nginx, TOML): one line, invisible
/// characters made visible.
pub fn comment_line(s: &str) -> String {
    terminal(&s.replace(['\n', '\r'], " ")).into_owned()
}

/// A TOML basic string (quoted), with TOML's escapes for `"`, `\` and control characters, and
/// invisible characters escaped too.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_invisible(c) => {
                out.push_str(&format!("\\U{:08X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Prometheus label value (text exposition format): `\`, `"` and newline escaped, invisible
/// characters made visible.
pub fn prometheus_label(s: &str) -> String {
    terminal(
        &s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
    .into_owned()
}

/// DER to PEM with the given label.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_shows_what_would_hide() {
        assert_eq!(terminal("alice"), "alice");
        assert_eq!(
            terminal("a\u{1b}[2K\rok\u{7}"),
            "a\\u001b[2K\\u000dok\\u0007"
        );
        assert_eq!(terminal("x\u{202e}y"), "x\\u202ey");
        assert_eq!(terminal("tag\u{e0041}"), "tag\\udb40\\udc41");
        assert_eq!(terminal("line\nnext\tcol"), "line\nnext\tcol");
        assert_eq!(terminal("Zoë"), "Zoë");
        // What the terminal encoder does to JSON keeps it JSON, meaning the same.
        let json = serde_json::to_string(&"\u{202e}\u{1b}").unwrap();
        let shown = terminal(&json);
        let back: String = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, "\u{202e}\u{1b}");
    }

    #[test]
    fn nginx_values_are_one_literal_token() {
        assert_eq!(
            nginx_value("/etc/gitca/ca.crt").unwrap(),
            "\"/etc/gitca/ca.crt\""
        );
        assert_eq!(nginx_value("a\"b;c").unwrap(), "\"a\\\"b;c\"");
        assert!(nginx_value("$ssl_client_s_dn").is_err());
        assert!(nginx_value("a\nb").is_err());
        assert!(nginx_value("").is_err());
        assert_eq!(comment_line("x\n}\nserver {"), "x } server {");
    }

    #[test]
    fn toml_and_prometheus_escape_their_syntax() {
        assert_eq!(toml_string("a\"b\\\n"), "\"a\\\"b\\\\\\n\"");
        assert_eq!(toml_string("\u{1b}"), "\"\\U0000001B\"");
        assert_eq!(prometheus_label("a\"}\n"), "a\\\"}\\n");
    }
}
