//! `gitca.yaml`: the CA's settings, CRL policy and certificate profiles.
//!
//! Owns parsing and validating the file and the commented template `init` writes. Pure apart
//! from taking the file's text: no filesystem access here.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::authority::ca::Eku;
use crate::error::{Error, Located, Result};
use crate::layout::CONFIG_FILE;
use crate::repository::yaml;

/// Largest `gitca.yaml` gitca reads.
pub const MAX_BYTES: u64 = 1 << 20;

/// A span of time written as `<n><unit>`: `90d`, `12h`, `30m`, `2w`, `10y` (365 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub time::Duration);

impl Dur {
    pub fn parse(s: &str) -> Result<Dur> {
        let bad = || Error::BadDuration {
            given: s.to_string(),
        };
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (num, unit) = s.split_at(split);
        let n: i64 = num.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "y" => 365 * 86_400,
            _ => return Err(bad()),
        };
        if n <= 0 || n > 100 * 365 * 86_400 / secs {
            return Err(bad());
        }
        Ok(Dur(time::Duration::seconds(n * secs)))
    }

    pub fn days(self) -> i64 {
        self.0.whole_days()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.whole_seconds();
        for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if s % len == 0 {
                return write!(f, "{}{unit}", s / len);
            }
        }
        write!(f, "{s}s")
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid duration `{s}`: write a number and a unit, e.g. 365d, 12h, 2w"
            ))
        })
    }
}

/// The longest certificate validity gitca accepts in a profile (three years).
pub const MAX_VALIDITY: Dur = Dur(time::Duration::days(3 * 365));
/// The longest CRL validity (the CA/Browser Forum Baseline Requirements' 10 days).
pub const MAX_CRL_VALIDITY: Dur = Dur(time::Duration::days(10));
/// The shortest validity of anything gitca signs.
pub const MIN_VALIDITY: Dur = Dur(time::Duration::hours(1));
/// The longest a superseded certificate may stay valid.
pub const MAX_SUPERSEDE_GRACE: Dur = Dur(time::Duration::days(90));

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSettings {
    pub name: String,
    pub organization: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrlPolicy {
    pub validity: Dur,
    pub refresh_before: Dur,
    /// Where the CRL is published (`gitca publish`), written into every new certificate as its
    /// CRL distribution point. Optional.
    #[serde(default)]
    pub distribution_point: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub validity: Dur,
    pub renew_before: Dur,
    pub extended_key_usage: Vec<Eku>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub ca: CaSettings,
    pub crl: CrlPolicy,
    pub profiles: BTreeMap<String, Profile>,
    /// How long a certificate replaced without withdrawing anything (a new key, an added
    /// group, a new email, a profile with the same rights) stays valid before it is revoked
    /// as superseded. Withdrawals revoke at once.
    #[serde(default = "default_supersede_grace")]
    pub supersede_grace: Dur,
    /// Who may push and pull through the nginx of `gitca export nginx`.
    #[serde(default)]
    pub registry: Option<RegistryPolicy>,
    /// The offline root's CRL (a CA made with `gitca init --offline-root`; ignored otherwise).
    #[serde(default)]
    pub root: RootPolicy,
    /// The DNS names and IP ranges this CA may certify for servers (`servers:` in identities
    /// files). Without it, no server certificate is issued.
    #[serde(default)]
    pub servers: Option<crate::authority::server::ServerPolicy>,
}

/// The profile servers use unless their entry names another.
pub const SERVER_PROFILE: &str = "server";

/// The root CRL of a CA with an offline root, re-signed only in a custodians' ceremony
/// (`gitca root sign-crl`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RootPolicy {
    /// The root CRL's nextUpdate = the ceremony + this. At most 366 days (the CA/Browser Forum's
    /// ceiling for CRLs of CA certificates).
    #[serde(default = "default_root_crl_validity")]
    pub crl_validity: Dur,
    /// `status`, `check` and `status --expiring` warn this long before the root CRL's
    /// nextUpdate that a ceremony is due.
    #[serde(default = "default_ceremony_warning")]
    pub ceremony_warning: Dur,
}

impl Default for RootPolicy {
    fn default() -> RootPolicy {
        RootPolicy {
            crl_validity: default_root_crl_validity(),
            ceremony_warning: default_ceremony_warning(),
        }
    }
}

fn default_root_crl_validity() -> Dur {
    Dur(time::Duration::days(365))
}

fn default_ceremony_warning() -> Dur {
    Dur(time::Duration::days(60))
}

/// The longest a root CRL may be valid.
pub const MAX_ROOT_CRL_VALIDITY: Dur = Dur(time::Duration::days(366));

/// Registry rights by group (each group is an OU of the client certificate).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistryPolicy {
    /// Members may push (every method).
    #[serde(default)]
    pub push_groups: Vec<String>,
    /// Members may pull (GET, HEAD); `None`: every valid identity may.
    #[serde(default)]
    pub pull_groups: Option<Vec<String>>,
}

fn default_supersede_grace() -> Dur {
    Dur(time::Duration::days(7))
}

/// One line of [`Config::diff`] for a setting whose value changed.
fn field(out: &mut Vec<String>, what: &str, a: String, b: String) {
    if a != b {
        out.push(format!("{what} {a} → {b}"));
    }
}

/// How `Config::parse` points at a line of gitca.yaml: the first place `needle` is found.
type Fail<'a> = dyn Fn(&str, String, &str) -> Error + 'a;

/// One profile: a valid name, a validity within bounds and above its renew_before, each
/// extended key usage once and at least one (server_auth alone for `server`).
fn check_profile(name: &str, p: &Profile, fail: &Fail<'_>) -> Result<()> {
    let b = name.as_bytes();
    if b.is_empty()
        || !(b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        || !b
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-".contains(c))
    {
        return Err(fail(
            &format!("{name}:"),
            format!("`{name}` is not a valid profile name"),
            "profile names match [a-z0-9][a-z0-9_-]*",
        ));
    }
    if p.validity > MAX_VALIDITY || p.validity < MIN_VALIDITY {
        return Err(fail(
                &format!("{name}:"),
                format!(
                    "profile `{name}`: validity {} is outside 1h to {MAX_VALIDITY}",
                    p.validity
                ),
                "client certificates are renewed automatically: keep them short (bots 30d, people 365d)",
            ));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = p.extended_key_usage.iter().find(|e| !seen.insert(**e)) {
        return Err(fail(
            &format!("{name}:"),
            format!("profile `{name}` lists {} twice", dup.name()),
            "list each extended key usage once",
        ));
    }
    if p.renew_before >= p.validity {
        return Err(fail(
            &format!("{name}:"),
            format!(
                "profile `{name}`: renew_before ({}) must be shorter than validity ({})",
                p.renew_before, p.validity
            ),
            "renewal starts renew_before ahead of expiry; e.g. validity: 365d, renew_before: 30d",
        ));
    }
    if name == SERVER_PROFILE && p.extended_key_usage != [Eku::ServerAuth] {
        return Err(fail(
            &format!("{name}:"),
            format!("profile `{name}` must grant server_auth and nothing else"),
            "a server certificate is never a client certificate: extended_key_usage: [server_auth]",
        ));
    }
    if p.extended_key_usage.is_empty() {
        return Err(fail(
            &format!("{name}:"),
            format!("profile `{name}` grants no extended key usage"),
            "client certificates need `extended_key_usage: [client_auth]`",
        ));
    }
    Ok(())
}

impl Config {
    /// Parses and validates `gitca.yaml`'s text.
    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = yaml::from_str(CONFIG_FILE, text)?;
        let fail = |needle: &str, message: String, help: &str| -> Error {
            let at = text.find(needle).unwrap_or(0);
            Located::new(CONFIG_FILE, text, (at, needle.len()), message, "here", help).into()
        };
        config.check_ca(&fail)?;
        config.check_crl(&fail)?;
        config.check_registry(&fail)?;
        config.check_servers(text)?;
        config.check_periods(&fail)?;
        config.check_profiles(&fail)?;
        Ok(config)
    }

    /// The CA's name and organization: present, and plain text (every certificate carries
    /// them).
    fn check_ca(&self, fail: &Fail<'_>) -> Result<()> {
        if self.ca.name.trim().is_empty() {
            return Err(fail(
                "name:",
                "ca.name is empty".into(),
                "give the CA a name",
            ));
        }
        if self.ca.organization.trim().is_empty() {
            return Err(fail(
                "organization:",
                "ca.organization is empty".into(),
                "every certificate carries the organization (O): name it, e.g. organization: Example Corp",
            ));
        }
        for (field, key, value) in [
            ("name:", "ca.name", &self.ca.name),
            ("organization:", "ca.organization", &self.ca.organization),
        ] {
            if let Err(why) = crate::authority::subject::check_text(value) {
                return Err(fail(
                    field,
                    format!("{key} `{value}` is refused: {why}"),
                    "every certificate carries it, and servers read subjects as text (nginx's $ssl_client_s_dn): 1 to 64 letters, digits and spaces of one script, with . - _ ' ( ) & @ : (docs/setup.md)",
                ));
            }
        }
        Ok(())
    }

    /// The CRL's validity within bounds, and its distribution point a URL fit for
    /// certificates.
    fn check_crl(&self, fail: &Fail<'_>) -> Result<()> {
        if self.crl.validity > MAX_CRL_VALIDITY || self.crl.validity < MIN_VALIDITY {
            return Err(fail(
                "validity:",
                format!(
                    "crl.validity {} is outside 1h to {}",
                    self.crl.validity, MAX_CRL_VALIDITY
                ),
                "a CRL is valid at most 10 days (the CA/Browser Forum's ceiling for subscriber CRLs): a longer one keeps a stolen CRL — and a revoked client — alive for as long",
            ));
        }
        if let Some(url) = &self.crl.distribution_point {
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            if !scheme_ok
                || url.len() > 512
                || !url.bytes().all(|b| b.is_ascii_graphic())
                || url.contains(['<', '>', '"', '\\', '`'])
            {
                return Err(fail(
                    "distribution_point:",
                    format!("crl.distribution_point `{url}` is not a URL gitca writes into certificates"),
                    "an http:// URL of the published DER CRL, e.g. http://pki.example.com/ca.crl (RFC 5280 recommends plain HTTP: the CRL is signed)",
                ));
            }
        }
        Ok(())
    }

    /// The registry's groups are group names.
    fn check_registry(&self, fail: &Fail<'_>) -> Result<()> {
        if let Some(r) = &self.registry {
            let groups = r.push_groups.iter().chain(r.pull_groups.iter().flatten());
            for g in groups {
                if !crate::repository::config::valid_group(g) {
                    return Err(fail(
                        "registry:",
                        format!("registry group `{g}` is not a group name"),
                        "groups use letters, digits, dot, underscore and hyphen (they are OUs of the certificates)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The `servers:` policy is one gitca can apply.
    fn check_servers(&self, text: &str) -> Result<()> {
        if let Some(why) = self.servers.as_ref().and_then(|s| s.validate().err()) {
            let at = text.find("\nservers:").map_or(0, |a| a + 1);
            return Err(Located::new(
                CONFIG_FILE,
                text,
                (at, "servers:".len()),
                why,
                "here",
                "list exact names (registry.example.com), suffixes with a leading dot (.internal.example.com: any name below it) and CIDR ranges (192.0.2.0/24), in lower case (docs/deploy.md, \"Server certificates\")",
            )
            .into());
        }
        Ok(())
    }

    /// The supersede grace, the root CRL's validity and ceremony warning, and the CRL's
    /// refresh, each within its bounds.
    fn check_periods(&self, fail: &Fail<'_>) -> Result<()> {
        if self.supersede_grace > MAX_SUPERSEDE_GRACE {
            return Err(fail(
                "supersede_grace:",
                format!(
                    "supersede_grace {} is longer than {MAX_SUPERSEDE_GRACE}",
                    self.supersede_grace
                ),
                "a replaced certificate stays valid this long: keep it to days (default 7d)",
            ));
        }
        let root = &self.root;
        if root.crl_validity > MAX_ROOT_CRL_VALIDITY
            || root.crl_validity.0 < time::Duration::days(7)
        {
            return Err(fail(
                "crl_validity:",
                format!(
                    "root.crl_validity {} is outside 7d to {MAX_ROOT_CRL_VALIDITY}",
                    root.crl_validity
                ),
                "the root CRL is re-signed in a custodians' ceremony: a year (365d) is usual, never longer (the CA/Browser Forum's ceiling)",
            ));
        }
        if root.ceremony_warning >= root.crl_validity {
            return Err(fail(
                "ceremony_warning:",
                format!(
                    "root.ceremony_warning ({}) must be shorter than root.crl_validity ({})",
                    root.ceremony_warning, root.crl_validity
                ),
                "e.g. crl_validity: 365d, ceremony_warning: 60d — time enough to gather the custodians",
            ));
        }
        if self.crl.refresh_before >= self.crl.validity {
            return Err(fail(
                "refresh_before:",
                format!(
                    "crl.refresh_before ({}) must be shorter than crl.validity ({})",
                    self.crl.refresh_before, self.crl.validity
                ),
                "e.g. validity: 7d, refresh_before: 3d — the CRL is re-signed when less than refresh_before remains",
            ));
        }
        Ok(())
    }

    /// The profiles `user` and `bot` exist, and every profile is sound.
    fn check_profiles(&self, fail: &Fail<'_>) -> Result<()> {
        for required in ["user", "bot"] {
            if !self.profiles.contains_key(required) {
                return Err(fail(
                    "profiles:",
                    format!("profile `{required}` is missing"),
                    "gitca.yaml needs the profiles `user` and `bot` (more may be added)",
                ));
            }
        }
        for (name, p) in &self.profiles {
            check_profile(name, p, fail)?;
        }
        Ok(())
    }

    /// What changed from `old` to `self`, field by field, as a reviewer should read it: every
    /// change to gitca.yaml is a change of policy for every identity.
    pub fn diff(&self, old: &Config) -> Vec<String> {
        let mut out = Vec::new();
        self.diff_ca_and_crl(old, &mut out);
        self.diff_access_and_root(old, &mut out);
        self.diff_profiles(old, &mut out);
        out
    }

    /// Changes of the CA's names, the CRL and the supersede grace.
    fn diff_ca_and_crl(&self, old: &Config, out: &mut Vec<String>) {
        field(out, "ca.name", old.ca.name.clone(), self.ca.name.clone());
        field(
            out,
            "ca.organization",
            old.ca.organization.clone(),
            self.ca.organization.clone(),
        );
        field(
            out,
            "crl.validity",
            old.crl.validity.to_string(),
            self.crl.validity.to_string(),
        );
        field(
            out,
            "crl.refresh_before",
            old.crl.refresh_before.to_string(),
            self.crl.refresh_before.to_string(),
        );
        field(
            out,
            "crl.distribution_point",
            old.crl
                .distribution_point
                .clone()
                .unwrap_or_else(|| "(none)".into()),
            self.crl
                .distribution_point
                .clone()
                .unwrap_or_else(|| "(none)".into()),
        );
        field(
            out,
            "supersede_grace",
            old.supersede_grace.to_string(),
            self.supersede_grace.to_string(),
        );
    }

    /// Changes of who may use the registry, which servers may be certified, and the root's
    /// CRL periods.
    fn diff_access_and_root(&self, old: &Config, out: &mut Vec<String>) {
        let show = |r: &Option<RegistryPolicy>| match r {
            None => "(every valid identity pushes and pulls)".to_string(),
            Some(r) => format!(
                "push [{}], pull [{}]",
                r.push_groups.join(", "),
                r.pull_groups
                    .as_ref()
                    .map_or("every valid identity".to_string(), |g| g.join(", "))
            ),
        };
        field(out, "registry", show(&old.registry), show(&self.registry));
        let servers = |s: &Option<crate::authority::server::ServerPolicy>| match s {
            None => "(no server certificates)".to_string(),
            Some(s) => format!(
                "dns_names [{}], ip_ranges [{}], wildcards {}",
                s.dns_names.join(", "),
                s.ip_ranges.join(", "),
                s.wildcards
            ),
        };
        field(
            out,
            "servers",
            servers(&old.servers),
            servers(&self.servers),
        );
        field(
            out,
            "root.crl_validity",
            old.root.crl_validity.to_string(),
            self.root.crl_validity.to_string(),
        );
        field(
            out,
            "root.ceremony_warning",
            old.root.ceremony_warning.to_string(),
            self.root.ceremony_warning.to_string(),
        );
    }

    /// Profiles added, removed, or changed (validity, renew_before, extended key usages).
    fn diff_profiles(&self, old: &Config, out: &mut Vec<String>) {
        let ekus = |p: &Profile| {
            p.extended_key_usage
                .iter()
                .map(|e| e.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (name, p) in &self.profiles {
            match old.profiles.get(name) {
                None => out.push(format!(
                    "profile {name} added: validity {}, renew_before {}, extended_key_usage [{}]",
                    p.validity,
                    p.renew_before,
                    ekus(p)
                )),
                Some(o) => {
                    let mut parts = Vec::new();
                    if o.validity != p.validity {
                        parts.push(format!("validity {} → {}", o.validity, p.validity));
                    }
                    if o.renew_before != p.renew_before {
                        parts.push(format!(
                            "renew_before {} → {}",
                            o.renew_before, p.renew_before
                        ));
                    }
                    for e in &p.extended_key_usage {
                        if !o.extended_key_usage.contains(e) {
                            parts.push(format!("+ {}", e.name()));
                        }
                    }
                    for e in &o.extended_key_usage {
                        if !p.extended_key_usage.contains(e) {
                            parts.push(format!("- {}", e.name()));
                        }
                    }
                    if !parts.is_empty() {
                        out.push(format!("profile {name}: {}", parts.join(", ")));
                    }
                }
            }
        }
        for name in old.profiles.keys() {
            if !self.profiles.contains_key(name) {
                out.push(format!("profile {name} removed"));
            }
        }
    }

    /// The `root:` section `gitca init --offline-root` appends to the template.
    pub const ROOT_TEMPLATE: &'static str = r#"
# The offline root (ca/root.crt). Its key (ca/root.key.age) is encrypted to the root custodians
# only; it signs the issuing CA (ca/ca.crt) and its own CRL (crl/root.crl), in a ceremony:
# `gitca root sign-crl`, `gitca root new-intermediate`. Reconcile never needs it.
root:
  # The root CRL's nextUpdate = the ceremony + crl_validity (at most 366d). nginx refuses EVERY
  # client once it expires.
  crl_validity: 365d
  # status, check and `status --expiring` warn this long before that a ceremony is due.
  ceremony_warning: 60d
"#;

    /// The commented `gitca.yaml` written by `gitca init`.
    pub fn template(name: &str, organization: &str) -> String {
        format!(
            r#"# yaml-language-server: $schema=schema/gitca.schema.json
# gitca settings. Edit by pull request; `gitca check` validates this file.

ca:
  # The CA certificate's common name (set at `gitca init`; changing it here does not re-issue ca/ca.crt).
  name: {name}
  # The organization (O) written into every certificate this CA issues.
  organization: {organization}

# Certificate revocation list (crl/ca.crl). nginx rejects EVERY client once the CRL expires,
# so a scheduled `gitca reconcile` must re-sign it well before nextUpdate.
crl:
  # nextUpdate = thisUpdate + validity. Keep it at most 10 days (the CA/Browser Forum ceiling).
  validity: 7d
  # reconcile re-signs the CRL when less than this remains before nextUpdate.
  refresh_before: 3d

# Certificate profiles. Identities use `user` or `bot` by default, or `profile: NAME`.
profiles:
  user:
    # Lifetime of a user certificate.
    validity: 365d
    # reconcile renews (same key, new serial) when less than this remains.
    renew_before: 30d
    # Extended key usages: client_auth, server_auth, email_protection, code_signing.
    extended_key_usage: [client_auth]
  bot:
    # Bots get short-lived certificates: expiry is the revocation that works even where
    # nothing reads the CRL. A daily reconcile keeps them fresh.
    validity: 30d
    renew_before: 10d
    extended_key_usage: [client_auth]
  server:
    # Server certificates (`servers:` in identities files): TLS server only, never a client
    # certificate; short-lived and renewed like bots, delivered by `gitca deploy cert`.
    validity: 30d
    renew_before: 10d
    extended_key_usage: [server_auth]

# The names this CA may certify for servers. Uncomment and list yours: exact names, suffixes
# with a leading dot (any name below it), CIDR ranges. `gitca check` refuses any other name.
# servers:
#   dns_names: [registry.example.com, .internal.example.com]
#   ip_ranges: [192.0.2.0/24]
#   wildcards: false
"#,
            name = yaml::quote(name),
            organization = yaml::quote(organization),
        )
    }
}

/// A group: one OU of the certificates (ASCII letters, digits, `.`, `_`, `-`).
pub fn valid_group(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 64
        && g.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(Dur::parse("30d").unwrap().days(), 30);
        assert_eq!(Dur::parse("2w").unwrap().days(), 14);
        assert_eq!(Dur::parse("10y").unwrap().days(), 3650);
        assert_eq!(Dur::parse("12h").unwrap().to_string(), "12h");
        assert_eq!(Dur::parse("48h").unwrap().to_string(), "2d");
        for bad in ["", "d", "10", "-1d", "0d", "1x", "1.5d", "99999999999d"] {
            assert!(Dur::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn template_parses() {
        let c = Config::parse(&Config::template("Test CA: O'Brien (x)", "Acme")).unwrap();
        assert_eq!(c.ca.name, "Test CA: O'Brien (x)");
        assert_eq!(c.crl.validity.days(), 7);
        assert_eq!(c.profiles["bot"].validity.days(), 30);
    }

    #[test]
    fn a_policy_change_reads_field_by_field() {
        let old = Config::parse(&Config::template("x", "y")).unwrap();
        let t = Config::template("x", "y")
            .replace("validity: 7d", "validity: 9d")
            .replacen(
                "extended_key_usage: [client_auth]",
                "extended_key_usage: [client_auth, server_auth, code_signing]",
                1,
            );
        let new = Config::parse(&t).unwrap();
        assert_eq!(
            new.diff(&old),
            [
                "crl.validity 7d → 9d",
                "profile user: + server_auth, + code_signing"
            ]
        );
    }

    #[test]
    fn policy_bounds_are_enforced() {
        for (from, to, says) in [
            ("validity: 7d", "validity: 100y", "crl.validity"),
            (
                "organization: y",
                "organization: \"\"",
                "organization is empty",
            ),
            (
                "organization: y",
                "organization: \"Acme,OU=push\"",
                "holds `,`",
            ),
            ("validity: 365d", "validity: 5000d", "outside 1h"),
            (
                "extended_key_usage: [client_auth]",
                "extended_key_usage: [client_auth, client_auth]",
                "twice",
            ),
        ] {
            let t = Config::template("x", "y").replacen(from, to, 1);
            let e = Config::parse(&t).unwrap_err().to_string();
            assert!(e.contains(says), "{to}: {e}");
        }
    }

    #[test]
    fn renew_window_longer_than_validity_is_refused() {
        let t = Config::template("x", "y").replace("renew_before: 30d", "renew_before: 400d");
        let e = Config::parse(&t).unwrap_err();
        assert!(e.to_string().contains("renew_before"), "{e}");
    }
}
