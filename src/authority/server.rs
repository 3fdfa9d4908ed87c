//! Server names: the DNS names and IP addresses a server certificate carries, their grammar,
//! and gitca.yaml's `servers:` policy, which bounds what this CA may certify at all.
//!
//! Pure: no I/O. Every value here comes from a pull request (an identities file) or from the
//! reviewed policy, and reaches certificates, the plan and CI logs: one strict grammar, one
//! canonical spelling per name, so that what a reviewer reads is what a client will match.
//!
//! - A DNS name is lower-case ASCII LDH labels (a client compares names case-insensitively,
//!   but a reviewer compares text: one spelling only), without a trailing dot, 253 characters
//!   at most, its last label not all digits (`10.0.0.1` is an IP address, not a name).
//! - An internationalized label is written as its A-label (`xn--…`), which must decode under
//!   IDNA (UTS #46, strict) back to itself, and whose Unicode form must be of one script: a
//!   `xn--` label that renders as `pаypal` (Cyrillic а) is refused. The plan shows the Unicode
//!   form next to it.
//! - A wildcard is `*.` followed by a name, nowhere else, and only when the policy allows it.
//! - An IP address is written as Rust (and RFC 5952) prints it: no leading zeros, IPv6
//!   compressed and lower-case; unspecified, broadcast, multicast and IPv4-mapped IPv6
//!   addresses are refused.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};

/// Why a value breaks its grammar or the policy: a sentence for the diagnostic.
pub type Broken = String;

/// Most names (DNS and IP together) one server certificate carries.
pub const MAX_NAMES: usize = 100;

/// One subject alternative name of a server certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for San {
    /// As `openssl x509 -ext subjectAltName` prints it, and as the ledger records it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(n) => write!(f, "DNS:{n}"),
            San::Ip(a) => write!(f, "IP:{a}"),
        }
    }
}

impl San {
    /// Reads the ledger's form back (`DNS:name`, `IP:address`), under the same grammar.
    pub fn parse(s: &str) -> Option<San> {
        if let Some(n) = s.strip_prefix("DNS:") {
            check_dns_name(n, true).ok()?;
            Some(San::Dns(n.to_string()))
        } else {
            check_ip(s.strip_prefix("IP:")?).ok().map(San::Ip)
        }
    }

    /// The name as written in YAML and compared with a `common_name`.
    pub fn value(&self) -> String {
        match self {
            San::Dns(n) => n.clone(),
            San::Ip(a) => a.to_string(),
        }
    }

    /// What a reviewer reads: the name, with its Unicode form when it has `xn--` labels.
    pub fn shown(&self) -> String {
        match self {
            San::Dns(n) if n.split('.').any(|l| l.starts_with("xn--")) => {
                let (unicode, _) = idna::domain_to_unicode(n);
                format!("DNS:{n} ({})", crate::output::encode::one_line(&unicode))
            }
            other => other.to_string(),
        }
    }
}

/// Checks a DNS name for a server certificate (see the module's grammar). `wildcard`: a
/// leading `*.` label is allowed.
pub fn check_dns_name(name: &str, wildcard: bool) -> Result<(), Broken> {
    check_spelling(name)?;
    let base = match name.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        Some(_) => {
            return Err(
                "it is a wildcard, which gitca.yaml's servers.wildcards does not allow".into(),
            )
        }
        None => name,
    };
    if base.contains('*') {
        return Err("a wildcard is `*.` in front of a name, nowhere else".into());
    }
    crate::authority::subject::check_host(base)?;
    let labels: Vec<&str> = base.split('.').collect();
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("its last label is all digits: an IP address goes in ip_addresses".into());
    }
    if name.starts_with("*.") && labels.len() < 2 {
        return Err("a wildcard covers names under a domain of two labels at least".into());
    }
    for label in &labels {
        check_label(label)?;
    }
    Ok(())
}

/// The spelling every DNS name must have before its labels are looked at: letters, digits,
/// hyphens, dots (and `*`), lower case, no trailing dot, 1 to 253 characters.
fn check_spelling(name: &str) -> Result<(), Broken> {
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '*'))
    {
        return Err(if c.is_ascii() {
            format!(
                "it holds `{}`: a DNS name is letters, digits, hyphens and dots",
                c.escape_default()
            )
        } else {
            let ascii = idna::domain_to_ascii_strict(name)
                .map(|a| format!(": write its A-label form `{a}`"))
                .unwrap_or_default();
            format!("it holds the non-ASCII character U+{:04X}{ascii}", c as u32)
        });
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "it has upper-case letters: write it as `{}`",
            name.to_ascii_lowercase()
        ));
    }
    if name.ends_with('.') {
        return Err(format!(
            "it ends with a dot: write it as `{}`",
            name.trim_end_matches('.')
        ));
    }
    if name.is_empty() || name.len() > 253 {
        return Err("a DNS name has 1 to 253 characters".into());
    }
    Ok(())
}

/// One label: no `--` where IDNA reserves it, and an A-label (`xn--`) must be valid and read
/// in one script without look-alike characters.
fn check_label(label: &str) -> Result<(), Broken> {
    if label.len() >= 4 && &label[2..4] == "--" && !label.starts_with("xn--") {
        return Err(format!(
            "label `{label}` has `--` in its third and fourth characters, which IDNA reserves"
        ));
    }
    if label.starts_with("xn--") {
        let (unicode, errors) = idna::domain_to_unicode(label);
        let back = idna::domain_to_ascii_strict(&unicode);
        if errors.is_err() || back.ok().as_deref() != Some(label) {
            return Err(format!("label `{label}` is not a valid IDNA A-label"));
        }
        if !unicode
            .chars()
            .all(|c| c.is_ascii() || c.identifier_allowed())
            || !unicode
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .as_str()
                .check_restriction_level(RestrictionLevel::HighlyRestrictive)
        {
            return Err(format!(
                "label `{label}` reads `{}`, which mixes scripts or holds characters that look like others",
                crate::output::encode::one_line(&unicode)
            ));
        }
    }
    Ok(())
}

/// Checks an IP address for a server certificate (see the module's grammar).
pub fn check_ip(text: &str) -> Result<IpAddr, Broken> {
    let ip: IpAddr = text.parse().map_err(|_| {
        format!(
            "`{}` is not an IPv4 or IPv6 address",
            crate::output::encode::one_line(text)
        )
    })?;
    if ip.to_string() != text {
        return Err(format!("write it as `{ip}`"));
    }
    let refused = match ip {
        IpAddr::V4(a) => a.is_unspecified() || a.is_broadcast() || a.is_multicast(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast() || a.to_ipv4_mapped().is_some(),
    };
    if refused {
        return Err(
            "an unspecified, broadcast, multicast or IPv4-mapped address names no server".into(),
        );
    }
    Ok(ip)
}

/// An IP range, `ADDRESS/PREFIX`, with no bit set past the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, Broken> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| "write a range as ADDRESS/PREFIX, e.g. 192.0.2.0/24".to_string())?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = p
            .parse::<u8>()
            .ok()
            .filter(|n| (1..=max).contains(n) && n.to_string() == p)
            .ok_or_else(|| format!("the prefix is 1 to {max}"))?;
        let cidr = Cidr { addr, prefix };
        if cidr.network() != bits(addr) || a != addr.to_string() {
            return Err(format!(
                "write it as {}/{prefix} (no address bits past the prefix, canonical spelling)",
                from_bits(cidr.network(), addr.is_ipv4())
            ));
        }
        Ok(cidr)
    }

    fn mask(&self) -> u128 {
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        let ones = u128::MAX << (128 - u32::from(self.prefix));
        ones >> (128 - width)
    }

    fn network(&self) -> u128 {
        bits(self.addr) & self.mask()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && bits(ip) & self.mask() == self.network()
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(b: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4((b as u32).into())
    } else {
        IpAddr::V6(b.into())
    }
}

/// gitca.yaml's `servers:`: the names and addresses this CA may certify. Without it, no
/// server certificate is issued.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerPolicy {
    /// Exact names (`registry.example.com`) and suffixes (`.internal.example.com`: any name
    /// below it, not the name itself).
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// CIDR ranges (`192.0.2.0/24`, `2001:db8::/32`).
    #[serde(default)]
    pub ip_ranges: Vec<String>,
    /// Whether a server may have a wildcard name (`*.apps.example.com`), itself within the
    /// policy's names. Off by default: a wildcard key on one server answers for all of them.
    #[serde(default)]
    pub wildcards: bool,
}

impl ServerPolicy {
    /// Checks the policy's own entries (a broken one is refused, never ignored).
    pub fn validate(&self) -> Result<(), Broken> {
        for d in &self.dns_names {
            let name = d.strip_prefix('.').unwrap_or(d);
            check_dns_name(name, false)
                .map_err(|why| format!("servers.dns_names `{}`: {why}", one(d)))?;
        }
        for r in &self.ip_ranges {
            Cidr::parse(r).map_err(|why| format!("servers.ip_ranges `{}`: {why}", one(r)))?;
        }
        Ok(())
    }

    /// Whether the policy covers `name` (a wildcard's `*` counts as one label below a suffix,
    /// or matches an exact `*.` entry).
    pub fn allows_dns(&self, name: &str) -> bool {
        self.dns_names.iter().any(|d| match d.strip_prefix('.') {
            Some(suffix) => name
                .strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            None => d == name,
        })
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.ip_ranges
            .iter()
            .filter_map(|r| Cidr::parse(r).ok())
            .any(|c| c.contains(ip))
    }

    /// What the policy allows, for a diagnostic's help.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.dns_names.is_empty() {
            parts.push(format!("DNS names {}", self.dns_names.join(", ")));
        }
        if !self.ip_ranges.is_empty() {
            parts.push(format!("IP ranges {}", self.ip_ranges.join(", ")));
        }
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join("; ")
        }
    }
}

fn one(s: &str) -> std::borrow::Cow<'_, str> {
    crate::output::encode::one_line(s)
}

/// Checks one DNS name of a server entry against the grammar and the policy.
pub fn dns_name(policy: Option<&ServerPolicy>, name: &str) -> Result<San, Broken> {
    let wildcards = policy.is_some_and(|p| p.wildcards);
    check_dns_name(name, wildcards)?;
    match policy {
        Some(p) if p.allows_dns(name) => Ok(San::Dns(name.to_string())),
        Some(p) => Err(format!(
            "gitca.yaml's servers.dns_names does not cover it (this CA certifies {})",
            p.describe()
        )),
        None => Err("gitca.yaml has no `servers:` policy, so this CA certifies no server".into()),
    }
}

/// Checks one IP address of a server entry against the grammar and the policy.
pub fn ip_address(policy: Option<&ServerPolicy>, text: &str) -> Result<San, Broken> {
    let ip = check_ip(text)?;
    match policy {
        Some(p) if p.allows_ip(ip) => Ok(San::Ip(ip)),
        Some(p) => Err(format!(
            "gitca.yaml's servers.ip_ranges does not cover it (this CA certifies {})",
            p.describe()
        )),
        None => Err("gitca.yaml has no `servers:` policy, so this CA certifies no server".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ServerPolicy {
        ServerPolicy {
            dns_names: vec![
                "registry.example.com".into(),
                ".internal.example.com".into(),
            ],
            ip_ranges: vec!["192.0.2.0/24".into(), "2001:db8::/32".into()],
            wildcards: false,
        }
    }

    #[test]
    fn dns_names_have_one_spelling() {
        for ok in [
            "registry.example.com",
            "a-b.c0.example",
            "xn--bcher-kva.example",
            "localhost",
        ] {
            assert_eq!(check_dns_name(ok, false), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("Registry.example.com", "upper-case"),
            ("registry.example.com.", "ends with a dot"),
            ("reg istry.example.com", "holds ` `"),
            ("a,b.example.com", "holds `,`"),
            ("a\nb.example.com", "holds `\\n`"),
            ("a\0b.example.com", "holds `\\u{0}`"),
            ("bücher.example", "A-label form `xn--bcher-kva.example`"),
            ("xn--a.example", "not a valid IDNA A-label"),
            ("xn--bcher-xxx.example", "mixes scripts"),
            ("xn--ls8h.example", "mixes scripts"),
            ("ab--c.example", "IDNA reserves"),
            ("xn--pypal-4ve.com", "mixes scripts"),
            ("*.example.com", "wildcard"),
            ("10.0.0.1", "all digits"),
            ("-a.example.com", "inner hyphens"),
            ("a..b", "1 to 63"),
            ("", "1 to 253"),
        ] {
            let e = check_dns_name(bad, false).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        assert_eq!(check_dns_name("*.apps.example.com", true), Ok(()));
        assert!(check_dns_name("a.*.example.com", true).is_err());
        assert!(check_dns_name("*.com", true).is_err());
    }

    #[test]
    fn ip_addresses_have_one_spelling() {
        assert!(check_ip("192.0.2.10").is_ok());
        assert!(check_ip("2001:db8::1").is_ok());
        for bad in [
            "192.0.2.010",
            "2001:DB8::1",
            "2001:db8:0::1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::ffff:192.0.2.1",
            "192.0.2.1/32",
            "host",
        ] {
            assert!(check_ip(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_policy_bounds_names_and_addresses() {
        let p = policy();
        assert!(p.validate().is_ok());
        assert!(dns_name(Some(&p), "registry.example.com").is_ok());
        assert!(dns_name(Some(&p), "a.b.internal.example.com").is_ok());
        // A suffix covers names below it, not itself, and nothing that merely ends alike.
        for bad in [
            "internal.example.com",
            "evilinternal.example.com",
            "registry.example.com.evil",
            "example.com",
        ] {
            assert!(dns_name(Some(&p), bad).is_err(), "{bad}");
        }
        assert!(dns_name(None, "registry.example.com").is_err());
        assert!(ip_address(Some(&p), "192.0.2.200").is_ok());
        assert!(ip_address(Some(&p), "2001:db8:1::5").is_ok());
        assert!(ip_address(Some(&p), "192.0.3.1").is_err());
        assert!(ip_address(Some(&p), "2001:db9::1").is_err());
        // Wildcards: only when allowed, and only within the names.
        assert!(dns_name(Some(&p), "*.internal.example.com").is_err());
        let w = ServerPolicy {
            wildcards: true,
            ..policy()
        };
        assert!(dns_name(Some(&w), "*.internal.example.com").is_ok());
        assert!(dns_name(Some(&w), "*.example.com").is_err());
    }

    #[test]
    fn ranges_are_canonical() {
        assert!(Cidr::parse("192.0.2.0/24").is_ok());
        assert!(Cidr::parse("10.0.0.0/8")
            .unwrap()
            .contains("10.255.0.1".parse().unwrap()));
        for bad in [
            "192.0.2.1/24",
            "192.0.2.0",
            "192.0.2.0/0",
            "192.0.2.0/33",
            "192.0.2.0/024",
            "2001:DB8::/32",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_ledger_form_reads_back() {
        for s in [
            San::Dns("a.example.com".into()),
            San::Ip("192.0.2.1".parse().unwrap()),
        ] {
            assert_eq!(San::parse(&s.to_string()), Some(s));
        }
        assert_eq!(San::parse("DNS:A.example"), None);
        assert_eq!(San::parse("URI:x"), None);
    }
}
