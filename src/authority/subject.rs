//! The grammar of every value that enters a certificate's subject or SAN, how names are kept
//! apart, and how subjects are shown.
//!
//! A value from a pull request (an identity's name, `common_name`, `email` and `groups`; the
//! CA's organization in gitca.yaml) ends up in text that other programs parse: nginx gives a
//! client's subject as an RFC 2253 string (`$ssl_client_s_dn`) that rules match with regular
//! expressions, and other tools use OpenSSL's one-line form (`/O=…/OU=…/CN=…`). A value that
//! holds DN syntax (`CN = "mallory,OU=push"`) is escaped in the first but can still fool a
//! careless rule, and is not escaped at all in the second. So every such value has one strict
//! grammar, enforced where it is declared (with file and line), and nothing a holder wrote can
//! look like a separator, an attribute or another person:
//!
//! - names (`[a-z0-9][a-z0-9._-]*`), groups (`[A-Za-z0-9._-]`) and emails (a dot-atom local part,
//!   a host name) are ASCII;
//! - a common name or organization is 1 to 64 characters of letters, marks and digits of one
//!   script (Latin, or Latin with CJK, as UTS #39 "highly restrictive" allows), spaces between
//!   words, and `. - _ ' ( ) & @ :` — never a DN special character (`, + = " \ < > ; #` or
//!   `/`), a control, format, bidi or zero-width character, or a leading, trailing or double
//!   space. Names like "Zoë Ångström" or "李小龙" are allowed, in Unicode NFC (the form an
//!   editor writes), so one name has one encoding;
//! - a common name may not stand for someone else: its confusable skeleton (UTS #39), folded
//!   for case and separators, must differ from every other identity's name and common name,
//!   declared or in the ledger (see [`clash_key`]).

use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};

/// Longest common name or organization (RFC 5280's ub-common-name and ub-organization-name).
pub const MAX_TEXT: usize = 64;

/// Punctuation a common name or organization may hold besides letters, digits and spaces.
const PUNCTUATION: &str = ".-_'()&@:";

/// Why a value breaks its grammar: a sentence for the diagnostic.
pub type Broken = String;

/// Checks a common name or organization (see the module's grammar).
pub fn check_text(value: &str) -> Result<(), Broken> {
    let n = value.chars().count();
    if n == 0 || n > MAX_TEXT {
        return Err(format!("it has {n} characters (1 to {MAX_TEXT})"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| crate::output::encode::is_invisible(*c) || *c == '\n' || *c == '\t')
    {
        return Err(format!(
            "it holds the invisible or control character U+{:04X}",
            c as u32
        ));
    }
    if value.starts_with(' ') || value.ends_with(' ') || value.contains("  ") {
        return Err("it has a leading, trailing or double space".into());
    }
    if let Some(c) = value.chars().find(|c| ",+=\"\\<>;#/".contains(*c)) {
        return Err(format!(
            "it holds `{c}`, which is syntax in a certificate's subject as servers read it"
        ));
    }
    if let Some(c) = value.chars().find(|c| {
        !(c.is_ascii_alphanumeric()
            || *c == ' '
            || PUNCTUATION.contains(*c)
            || (!c.is_ascii() && c.identifier_allowed()))
    }) {
        return Err(format!(
            "it holds `{c}` (U+{:04X}): letters, digits, spaces and {PUNCTUATION} only",
            c as u32
        ));
    }
    if !unicode_normalization::is_nfc(value) {
        return Err(format!(
            "it is not in Unicode NFC; write it as `{}`",
            value.nfc().collect::<String>()
        ));
    }
    let letters: String = value.chars().filter(|c| c.is_alphanumeric()).collect();
    if !letters
        .as_str()
        .check_restriction_level(RestrictionLevel::HighlyRestrictive)
    {
        return Err("it mixes scripts (such as Latin and Cyrillic letters that look alike)".into());
    }
    Ok(())
}

/// Checks an email address for the SAN: ASCII, a dot-atom local part, a host name of at least
/// two labels. (It never enters the subject, but it is shown and matched like the rest.)
pub fn check_email(email: &str) -> Result<(), Broken> {
    let Some((local, domain)) = email.split_once('@') else {
        return Err("it has no `@`".into());
    };
    if email.len() > 254 || local.is_empty() || local.len() > 64 {
        return Err("its length is out of bounds".into());
    }
    let atom_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    if local
        .split('.')
        .any(|a| a.is_empty() || !a.chars().all(atom_char))
    {
        return Err("its local part is not a plain dot-atom (no quotes, spaces or `..`)".into());
    }
    check_host(domain).map_err(|why| format!("its domain: {why}"))?;
    if !domain.contains('.') {
        return Err("its domain has a single label".into());
    }
    Ok(())
}

/// Checks a DNS host name: LDH labels of 1 to 63 characters, 253 in all.
pub fn check_host(host: &str) -> Result<(), Broken> {
    if host.is_empty() || host.len() > 253 {
        return Err("a host name has 1 to 253 characters".into());
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each label has 1 to 63 characters".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "label `{label}` is not letters, digits and inner hyphens"
            ));
        }
    }
    Ok(())
}

/// What two names must not share: the UTS #39 confusable skeleton of the NFC, lower-cased
/// value, letters and digits only: no spaces, punctuation or combining marks (accents).
/// `Alice`, `alice`, `a.lice`, `(alice)`, `@alice:`, `ALİCE`, `alicé` and `аlice` (Cyrillic а)
/// all have the key `alice`; so do `olga-ray` and `Olga Ray`.
pub fn clash_key(value: &str) -> String {
    let lower: String = value.nfc().flat_map(char::to_lowercase).collect();
    plain(unicode_security::skeleton(&lower))
}

/// Lower-cased letters and digits, without combining marks.
fn plain(chars: impl Iterator<Item = char>) -> String {
    use unicode_normalization::char::is_combining_mark;
    chars
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .collect()
}

/// Both keys two names must not share: [`clash_key`] (lower-cased, then the skeleton), and the
/// skeleton taken before lower-casing, which sees what lower-casing first hides: `aIice`
/// (capital I) looks like `alice` but lower-cases to `aiice`; `ВОВ` (Cyrillic capitals) looks
/// like `BOB`.
pub fn clash_keys(value: &str) -> [String; 2] {
    let nfc: String = value.nfc().collect();
    [clash_key(value), plain(unicode_security::skeleton(&nfc))]
}

/// Whether two names look alike by either of their [`clash_keys`].
pub fn clash(a: &str, b: &str) -> bool {
    let (a, b) = (clash_keys(a), clash_keys(b));
    a.iter().any(|k| b.contains(k))
}

/// Short names of the attributes gitca shows (RFC 4514 section 3; emailAddress as openssl
/// shows it).
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// The name of a subject attribute as gitca shows it: its short name, else its dotted OID.
pub fn attribute_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    let dotted = oid.to_id_string();
    short_name(&dotted).map_or(dotted, str::to_string)
}

/// Netscape's certificate type extension (`nsCertType`), which `openssl ca` recipes add and
/// gitca never writes.
pub const OID_NS_CERT_TYPE: &str = "2.16.840.1.113730.1.1";

/// An attribute value escaped as RFC 4514 says: `, + " \ < > ;` and a leading `#` or space and
/// a trailing space with a backslash; control and invisible characters as `\XX` hex of their
/// UTF-8 bytes.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            c if c.is_control() || crate::output::encode::is_invisible(c) => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A subject in RFC 4514 form, most specific first (`CN=alice,OU=push,O=Acme`), from its
/// attributes in certificate order.
pub fn rfc4514_of(attributes: &[(&str, &str)]) -> String {
    attributes
        .iter()
        .rev()
        .map(|(k, v)| format!("{k}={}", escape_value(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A parsed certificate's subject (or issuer) in RFC 4514 form. Attributes gitca has no short
/// name for are shown as `OID=#hex` of their DER value, as RFC 4514 does.
pub fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut rdns: Vec<String> = Vec::new();
    for rdn in name.iter() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let oid = atv.attr_type().to_id_string();
                match (short_name(&oid), atv.as_str()) {
                    (Some(k), Ok(v)) => format!("{k}={}", escape_value(v)),
                    _ => format!("{oid}=#{}", hex::encode(atv.attr_value().data)),
                }
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_keep_their_names() {
        for ok in [
            "John Smith",
            "Olga Ray",
            "Zoë Ångström",
            "O'Brien (contractor)",
            "李小龙",
            "Acme & Sons Ltd.",
            "sebdangerfield",
            "ci@example.com",
        ] {
            assert_eq!(check_text(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn nothing_looks_like_syntax_or_someone_else() {
        for bad in [
            "mallory,OU=push",
            "a+b",
            "x=y",
            "\"q\"",
            "back\\slash",
            "<a>",
            "a;b",
            "#hash",
            "/O=x/OU=push",
            " lead",
            "trail ",
            "two  spaces",
            "esc\u{1b}[2K",
            "cr\rline",
            "rlo\u{202e}x",
            "zw\u{200b}j",
            "bell\u{7}",
            "tab\tx",
            "аlice",      // Cyrillic а, Latin lice
            "Zoe\u{308}", // NFD
            "",
            &"x".repeat(65),
            "emoji 😀",
        ] {
            assert!(check_text(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn emails_are_plain() {
        for ok in ["alice@example.com", "a.b+registry@sub.example.org"] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
        for bad in [
            "alice",
            "a@b",
            "a@@b.c",
            "a b@c.d",
            "a@.c",
            "<a@b.c>",
            "\"q\"@b.c",
            "a..b@c.d",
            "a@b_c.d",
            "a@-b.c",
            "a@b.c\n",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn clash_keys_see_through_case_separators_and_lookalikes() {
        let alice = clash_key("alice");
        for same in ["Alice", "ALICE", "a.lice", "a-l_i ce", "аlice"] {
            assert_eq!(clash_key(same), alice, "{same}");
        }
        assert_eq!(clash_key("Olga Ray"), clash_key("olga-ray"));
        assert_ne!(clash_key("alice"), clash_key("alicia"));
        for same in [
            "aIice", "ALİCE", "ALICE", "а1ice", "alicé", "alice:", "(alice)", "@alice", "alice'",
        ] {
            assert!(clash(same, "alice"), "{same}");
        }
        assert!(clash("ВОВ", "bob"));
        assert!(!clash("alice", "alicia"));
        assert!(!clash("bob", "rob"));
    }

    #[test]
    fn subjects_are_shown_escaped() {
        assert_eq!(
            rfc4514_of(&[("O", "Acme"), ("OU", "push"), ("CN", "mallory,OU=push")]),
            "CN=mallory\\,OU\\=push,OU=push,O=Acme"
        );
        assert_eq!(escape_value("#x "), "\\#x\\ ");
        assert_eq!(escape_value("a\u{1b}b"), "a\\1Bb");
    }
}
