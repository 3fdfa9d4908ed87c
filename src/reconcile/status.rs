//! `gitca status`: what every identity holds now, what was revoked, and what expires — for
//! people (a table) and for monitoring (`--json`, `--expiring`). Needs no CA key and parses no
//! CSR.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::Result;
use crate::repository::git::CaRepo;
use crate::repository::ledger::{Record, State};
use crate::repository::load;
use crate::time::{fmt_time, human_span, parse_time};

pub struct StatusOptions {
    pub json: bool,
    /// `--expiring D`: exit 1 when something expires within D.
    pub expiring: Option<time::Duration>,
    /// `--revoked`: list every revoked certificate.
    pub revoked: bool,
}

/// One identity's standing.
#[derive(Debug, Serialize)]
pub struct IdentityStatus {
    pub name: String,
    pub kind: &'static str,
    /// `valid`, `expired`, `revoked`, `disabled`, `pending` (never issued), `held` (its entry
    /// cannot be used).
    pub state: &'static str,
    pub profile: String,
    pub groups: Vec<String>,
    /// A server's DNS names and IP addresses (empty for people and bots).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    pub extended_key_usage: Vec<&'static str>,
    /// The current certificate; for an expired or revoked identity, its last one.
    pub serial: Option<String>,
    pub not_after: Option<String>,
    pub days_left: Option<i64>,
    /// The SHA-256 of the certified key's canonical form (see `pubkey`).
    pub key_sha256: Option<String>,
    /// The current certificate's subject and key type, read from certs/NAME.crt.
    pub subject: Option<String>,
    pub key_type: Option<String>,
    pub revoked: Option<Revocation>,
}

/// The subject and key type of certs/NAME.crt, when it holds `serial`.
fn certificate_facts(
    dir: &crate::repository::confined::Dir,
    name: &str,
    serial: &str,
) -> Option<(String, String)> {
    let text = dir
        .read_string(
            &crate::layout::cert_path(name),
            crate::authority::ca::MAX_CERT_BYTES,
        )
        .ok()?;
    let der = pem::parse_many(&text)
        .ok()?
        .into_iter()
        .next()?
        .into_contents();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    if crate::authority::ca::serial_hex(cert.raw_serial()) != serial {
        return None;
    }
    let key = crate::authority::pubkey::canonical(cert.public_key().raw)
        .map(|k| k.desc)
        .unwrap_or_else(|_| "?".into());
    Some((crate::authority::subject::rfc4514(cert.subject()), key))
}

#[derive(Debug, Serialize)]
pub struct Revocation {
    pub serial: String,
    pub identity: String,
    pub revoked_at: String,
    pub reason: &'static str,
    /// The certificate's own expiry: it stays on the CRL until then.
    pub not_after: String,
    pub on_crl: bool,
}

/// Every serial on a CRL this CA publishes: its own (or the intermediate's), a retiring
/// intermediate's and the root's.
fn published(state: &load::State) -> HashSet<&str> {
    let mut set: HashSet<&str> = state.crl.serials.iter().map(String::as_str).collect();
    if let Some(h) = &state.hierarchy {
        set.extend(h.root_crl.serials.iter().map(String::as_str));
        if let Some(p) = &h.previous {
            set.extend(p.crl.serials.iter().map(String::as_str));
        }
    }
    set
}

fn revocation(r: &Record, on_crl: &HashSet<&str>) -> Option<Revocation> {
    (r.state == State::Revoked).then(|| Revocation {
        serial: r.serial.clone(),
        identity: r.identity.clone(),
        revoked_at: r.revoked_at.map(fmt_time).unwrap_or_default(),
        reason: r.reason.map_or("unspecified", |x| x.as_str()),
        not_after: fmt_time(r.not_after),
        on_crl: on_crl.contains(r.serial.as_str()),
    })
}

/// The offline root and its intermediates, as `status` shows them.
#[derive(Debug, Serialize)]
pub struct HierarchyStatus {
    pub root: String,
    pub root_not_after: String,
    pub root_crl_number: u64,
    pub root_crl_next_update: Option<String>,
    /// Set when the root CRL needs a ceremony within `root.ceremony_warning` (or is expired).
    pub ceremony_due: Option<String>,
    /// Revocations of certificates the root signed itself that only a ceremony can publish.
    pub unpublished_revocations: Vec<String>,
    pub intermediates: Vec<IntermediateStatus>,
}

#[derive(Debug, Serialize)]
pub struct IntermediateStatus {
    pub id: String,
    pub subject: String,
    /// `issuing`, `retiring`, `revoked`, `expired` or `replaced`.
    pub state: &'static str,
    pub not_after: String,
    pub reason: Option<&'static str>,
    /// Valid certificates it signed.
    pub valid_certificates: usize,
}

fn hierarchy_status(state: &load::State, now: OffsetDateTime) -> Option<HierarchyStatus> {
    let h = state.hierarchy.as_ref()?;
    let intermediates = h
        .intermediates
        .iter()
        .map(|r| IntermediateStatus {
            id: r.id.clone(),
            subject: r.subject.clone(),
            state: if r.reason.is_some() {
                "revoked"
            } else if r.id == h.current {
                "issuing"
            } else if h.previous.as_ref().is_some_and(|p| p.id == r.id) {
                "retiring"
            } else if r.not_after <= now {
                "expired"
            } else {
                "replaced"
            },
            not_after: fmt_time(r.not_after),
            reason: r.reason.map(|x| x.as_str()),
            valid_certificates: state
                .ledger
                .records
                .iter()
                .filter(|c| c.issuer.as_deref() == Some(r.id.as_str()) && c.is_live(now))
                .count(),
        })
        .collect();
    Some(HierarchyStatus {
        root: h.root.subject.clone(),
        root_not_after: fmt_time(h.root.not_after),
        root_crl_number: h.root_crl.number,
        root_crl_next_update: h.root_crl.next_update.map(fmt_time),
        ceremony_due: h.ceremony_due(now, state.config.root.ceremony_warning.0),
        unpublished_revocations: h.unpublished_revocations(&state.ledger, now),
        intermediates,
    })
}

/// What expires within the window: certificates and the CA within it, and a CRL the daily
/// reconcile should already have re-signed. A CRL is re-signed when less than `refresh_before`
/// remains, so on a healthy CA it never has less than that minus a day: an alert on a shorter
/// margin (or the window, when shorter) means reconcile stopped running, not that time passed.
fn expiring(state: &load::State, now: OffsetDateTime, w: time::Duration) -> Vec<String> {
    let mut out = Vec::new();
    for id in &state.inventory.identities {
        if let Some(c) = state.ledger.current(&id.name, now) {
            if c.not_after - now <= w {
                out.push(format!(
                    "certificate of {} ({}) expires {}",
                    id.name,
                    &c.serial[..c.serial.len().min(8)],
                    &fmt_time(c.not_after)[..10]
                ));
            }
        }
    }
    if let Some(next) = state.crl.next_update {
        let stale = (state.config.crl.refresh_before.0 - time::Duration::days(1))
            .max(time::Duration::hours(1))
            .min(w);
        if next - now <= stale {
            out.push(format!(
                "CRL #{} expires {} (reconcile has not re-signed it: is the daily job running?)",
                state.crl.number,
                fmt_time(next)
            ));
        }
    }
    if state.ca.not_after - now <= w {
        out.push(format!(
            "the CA certificate expires {}",
            &fmt_time(state.ca.not_after)[..10]
        ));
    }
    if let Some(h) = &state.hierarchy {
        // The root CRL is re-signed by people, not by the daily job: warned the configured
        // margin ahead (or the window, when longer).
        let margin = state.config.root.ceremony_warning.0.max(w);
        out.extend(h.ceremony_due(now, margin));
        let pending = h.unpublished_revocations(&state.ledger, now);
        if !pending.is_empty() {
            out.push(format!(
                "{} revocation(s) of certificates the root signed await a root ceremony (gitca root sign-crl): {}",
                pending.len(),
                pending.join(", ")
            ));
        }
        if h.root.not_after - now <= w {
            out.push(format!(
                "the root certificate expires {}",
                &fmt_time(h.root.not_after)[..10]
            ));
        }
        if let Some(next) = h.previous.as_ref().and_then(|p| p.crl.next_update) {
            if next <= now {
                out.push(format!(
                    "the retiring intermediate's CRL expired {}: is the daily reconcile running?",
                    fmt_time(next)
                ));
            }
        }
    }
    out
}

fn identity_status(
    state: &load::State,
    dir: &crate::repository::confined::Dir,
    now: OffsetDateTime,
    on_crl: &HashSet<&str>,
) -> Vec<IdentityStatus> {
    let mut out = Vec::new();
    for id in &state.inventory.identities {
        let history: Vec<&Record> = state.ledger.of(&id.name).collect();
        let live = history.iter().copied().rfind(|r| r.is_live(now));
        let last = live.or(history.last().copied());
        let held = state.inventory.held.contains_key(&id.name);
        let st = match (live, last) {
            _ if held => "held",
            _ if id.disabled => "disabled",
            _ if id.revoke.is_some() => "revoked",
            (Some(_), _) => "valid",
            (None, Some(l)) if l.state == State::Revoked => "revoked",
            (None, Some(_)) => "expired",
            (None, None) => "pending",
        };
        let ekus = state
            .config
            .profiles
            .get(&id.profile)
            .map(|p| p.extended_key_usage.iter().map(|e| e.name()).collect())
            .unwrap_or_default();
        let facts = live.and_then(|c| certificate_facts(dir, &id.name, &c.serial));
        out.push(IdentityStatus {
            subject: facts.as_ref().map(|f| f.0.clone()),
            key_type: facts.map(|f| f.1),
            name: id.name.clone(),
            kind: id.kind.as_str(),
            state: st,
            profile: id.profile.clone(),
            groups: id.groups.clone(),
            names: id.names.iter().map(|n| n.to_string()).collect(),
            extended_key_usage: ekus,
            serial: last.map(|c| c.serial.clone()),
            not_after: last.map(|c| fmt_time(c.not_after)),
            days_left: last.map(|c| (c.not_after - now).whole_days()),
            key_sha256: last.map(|c| c.key_sha256.clone()),
            revoked: last.and_then(|c| revocation(c, on_crl)),
        });
    }
    // Identities whose entries are broken are held: shown, never silently missing.
    for (name, b) in &state.inventory.held {
        if state.inventory.get(name).is_none() {
            let last = state.ledger.of(name).last();
            out.push(IdentityStatus {
                name: name.clone(),
                kind: "-",
                state: "held",
                profile: "-".into(),
                groups: Vec::new(),
                names: Vec::new(),
                extended_key_usage: Vec::new(),
                serial: last.map(|c| c.serial.clone()),
                not_after: last.map(|c| fmt_time(c.not_after)),
                days_left: last.map(|c| (c.not_after - now).whole_days()),
                key_sha256: last.map(|c| c.key_sha256.clone()),
                subject: None,
                key_type: None,
                revoked: None,
            });
            let _ = b;
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The top-level entry point for `gitca status`. Returns the exit code (1 when something
/// expires within the window, or a declaration is broken) and the one line a cron job shows
/// even with --quiet.
pub fn run_status(
    dir: &Path,
    now: OffsetDateTime,
    opts: &StatusOptions,
    out: &mut dyn Write,
) -> Result<(u8, Option<String>)> {
    let repo = CaRepo::open(dir)?;
    let state = load::load(&repo)?;
    let on_crl = published(&state);
    let identities = identity_status(&state, &repo.dir, now, &on_crl);
    let revoked: Vec<Revocation> = state
        .ledger
        .records
        .iter()
        .filter_map(|r| revocation(r, &on_crl))
        .collect();
    let hierarchy = hierarchy_status(&state, now);
    let soon = opts
        .expiring
        .map(|w| expiring(&state, now, w))
        .unwrap_or_default();
    if opts.json {
        let doc = serde_json::json!({
            "now": fmt_time(now),
            "identities": identities,
            "revoked": revoked,
            "crl": {
                "number": state.crl.number,
                "this_update": fmt_time(state.crl.this_update),
                "next_update": state.crl.next_update.map(fmt_time),
                "entries": state.crl.serials.len(),
            },
            "ca": { "subject": state.ca.subject, "not_after": fmt_time(state.ca.not_after) },
            "hierarchy": hierarchy,
            "expiring": soon,
        });
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        if let Some(h) = &hierarchy {
            render_hierarchy(out, h, now);
        }
        render_human(out, &state, now, &identities, &revoked, opts.revoked);
        if !soon.is_empty() {
            let _ = writeln!(out, "\nExpiring within the window:");
            for s in &soon {
                let _ = writeln!(out, "  {s}");
            }
        }
    }
    crate::output::redact::stderr(&crate::reconcile::review::render_diagnostics(
        &state.problems,
    ));
    let line = (!soon.is_empty()).then(|| format!("gitca: {}", soon.join("; ")));
    let code = u8::from(!soon.is_empty() || !state.problems.is_empty());
    Ok((code, line))
}

fn render_hierarchy(out: &mut dyn Write, h: &HierarchyStatus, now: OffsetDateTime) {
    let days = |t: &str| {
        parse_time(t)
            .map(|t| human_span(t - now))
            .unwrap_or_default()
    };
    let _ = writeln!(
        out,
        "Root      {}  expires {} ({} left)  offline: ceremonies only",
        h.root,
        h.root_not_after.get(..10).unwrap_or("-"),
        days(&h.root_not_after)
    );
    let _ = writeln!(
        out,
        "Root CRL  #{}  next update {}{}",
        h.root_crl_number,
        h.root_crl_next_update.as_deref().unwrap_or("-"),
        h.root_crl_next_update
            .as_deref()
            .map(|t| format!(" (in {})", days(t)))
            .unwrap_or_default()
    );
    if let Some(due) = &h.ceremony_due {
        let _ = writeln!(out, "  CEREMONY DUE: {due}");
    }
    if !h.unpublished_revocations.is_empty() {
        let _ = writeln!(
            out,
            "  {} revocation(s) of certificates the root signed await `gitca root sign-crl`",
            h.unpublished_revocations.len()
        );
    }
    for i in &h.intermediates {
        let _ = writeln!(
            out,
            "  intermediate {}  {:<8}  until {}  {} valid certificate(s){}",
            i.id,
            i.state,
            i.not_after.get(..10).unwrap_or("-"),
            i.valid_certificates,
            i.reason.map(|r| format!("  ({r})")).unwrap_or_default()
        );
    }
}

/// The human report of `gitca status`: the CA and its CRL, the identities, the revocations.
fn render_human(
    out: &mut dyn Write,
    state: &load::State,
    now: OffsetDateTime,
    identities: &[IdentityStatus],
    revoked: &[Revocation],
    list_revoked: bool,
) {
    render_ca_and_crl(out, state, now);
    render_identities(out, identities);
    render_revoked(out, revoked, list_revoked);
}

/// The CA's subject and expiry, and the CRL's number, size and next update.
fn render_ca_and_crl(out: &mut dyn Write, state: &load::State, now: OffsetDateTime) {
    let _ = writeln!(
        out,
        "CA   {}  expires {} ({} left)",
        state.ca.subject,
        &fmt_time(state.ca.not_after)[..10],
        human_span(state.ca.not_after - now)
    );
    let next = state.crl.next_update.map(|n| {
        if n <= now {
            format!("EXPIRED {}: nginx refuses every client", fmt_time(n))
        } else {
            format!("next update {} (in {})", fmt_time(n), human_span(n - now))
        }
    });
    let _ = writeln!(
        out,
        "CRL  #{}  {} entries  this update {}  {}",
        state.crl.number,
        state.crl.serials.len(),
        fmt_time(state.crl.this_update),
        next.unwrap_or_default()
    );
}

/// One line per identity, under a header.
fn render_identities(out: &mut dyn Write, identities: &[IdentityStatus]) {
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:<24} {:<6} {:<8} {:<8} {:<32} {:<10} {:>5}  {:<16} GROUPS (A SERVER'S NAMES) / EKU / KEY TYPE",
        "IDENTITY", "KIND", "STATE", "PROFILE", "SERIAL", "EXPIRES", "DAYS", "KEY"
    );
    for v in identities {
        let dash = |s: Option<&str>| s.unwrap_or("-").to_string();
        let _ = writeln!(
            out,
            "  {:<24} {:<6} {:<8} {:<8} {:<32} {:<10} {:>5}  {:<16} [{}] {}{}",
            v.name,
            v.kind,
            v.state,
            v.profile,
            dash(v.serial.as_deref()),
            v.not_after
                .as_deref()
                .and_then(|t| t.get(..10))
                .unwrap_or("-"),
            v.days_left
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            v.key_sha256
                .as_deref()
                .map(|k| &k[..k.len().min(16)])
                .unwrap_or("-"),
            if v.names.is_empty() {
                v.groups.join(",")
            } else {
                v.names.join(",")
            },
            v.extended_key_usage.join(","),
            v.key_type
                .as_deref()
                .map(|k| format!("  {k}"))
                .unwrap_or_default()
        );
    }
}

/// How many certificates were revoked, and with --revoked, one line for each.
fn render_revoked(out: &mut dyn Write, revoked: &[Revocation], list_revoked: bool) {
    if revoked.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nRevoked: {} certificate(s), {} still on the CRL{}",
        revoked.len(),
        revoked.iter().filter(|r| r.on_crl).count(),
        if list_revoked {
            ""
        } else {
            " (--revoked lists them)"
        }
    );
    if list_revoked {
        let _ = writeln!(
            out,
            "  {:<32} {:<24} {:<20} {:<24} ON CRL UNTIL",
            "SERIAL", "IDENTITY", "REVOKED", "REASON"
        );
        for r in revoked {
            let _ = writeln!(
                out,
                "  {:<32} {:<24} {:<20} {:<24} {}",
                r.serial,
                r.identity,
                r.revoked_at,
                r.reason,
                if r.on_crl {
                    r.not_after.get(..10).unwrap_or("-").to_string()
                } else {
                    "(expired)".into()
                }
            );
        }
    }
}
