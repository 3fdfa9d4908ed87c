//! What reconcile must do, and why: a pure function of (declared identities, ledger, CRL state,
//! configuration, now).
//!
//! No I/O, no clock reads, no crypto: `now` is passed in. Whether an identity needs a new
//! certificate is decided by a chain of named checks evaluated in order (as cert-manager's
//! trigger policies); the first that fires decides, and its reason is what a reviewer reads.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;
use time::OffsetDateTime;

use crate::authority::ca::BACKDATE;
use crate::authority::revocation::RevocationReason;
use crate::repository::config::{Config, Profile};
use crate::repository::inventory::{Acknowledgement, Blocked, Identity, Kind};
use crate::repository::ledger::{Ledger, Record};
use crate::time::{fmt_time, human_span, next_crl_update};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// First certificate, or a new one after the previous expired or was revoked.
    Issue,
    /// A new certificate because the CSR or an attribute changed; the old ones are superseded.
    Reissue,
    /// Same key, new serial, because expiry is near.
    Renew,
    Revoke,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Issue => "issue",
            Op::Reissue => "reissue",
            Op::Renew => "renew",
            Op::Revoke => "revoke",
        }
    }

    pub fn signs(self) -> bool {
        self != Op::Revoke
    }
}

/// Why an action is planned: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: &'static str,
    pub detail: String,
}

fn reason(code: &'static str, detail: impl Into<String>) -> Reason {
    Reason {
        code,
        detail: detail.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub identity: String,
    pub kind: Kind,
    pub op: Op,
    pub reason: Reason,
    /// Revoke: the serial revoked. Issue/renew: the serial being replaced, if any.
    pub serial: Option<String>,
    /// Revoke: that certificate's expiry. Issue/renew: the new certificate's expiry.
    #[serde(with = "opt_time")]
    pub not_after: Option<OffsetDateTime>,
    /// Revoke: the RFC 5280 reason.
    pub revocation: Option<RevocationReason>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrlAction {
    pub number: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    pub reason: Reason,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub crl: Option<CrlAction>,
    /// The retiring intermediate's CRL (`crl/previous.crl`), when it must be re-signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_crl: Option<CrlAction>,
    /// The retiring intermediate has no valid certificate left: its key, certificate and CRL
    /// are removed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retire_previous: bool,
    /// Identities that will not get the certificate they need (see [`Blocked`]).
    pub blocked: Vec<Blocked>,
    /// Why the ledger and CRL on disk are replaced by the newest ones the CA sealed (see
    /// [`crate::repository::seal`]), when they are.
    pub repair: Option<String>,
    /// gitca.yaml changes under review, field by field (set by `plan`, not by the planner).
    pub policy_changes: Vec<String>,
    /// What each certificate to be signed will carry (set once its CSR is verified, not by
    /// the planner).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signing: Vec<Carries>,
    /// What a relying party may notice of a new certificate, compared with the one it replaces
    /// (set from that certificate's file, not by the planner): warnings, nothing blocks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

/// A warning about a certificate to be signed: what changes for those who read it (a subject
/// mapped by nginx's `$ssl_client_s_dn`, an extension a client relied on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub identity: String,
    /// Always `warning`: a note never blocks.
    pub level: &'static str,
    pub message: String,
}

/// What a certificate about to be signed carries: what a reviewer approves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Carries {
    pub identity: String,
    /// The subject, as `openssl x509 -subject` prints it.
    pub subject: String,
    pub email: Option<String>,
    pub profile: String,
    pub validity: String,
    pub extended_key_usage: Vec<&'static str>,
    /// A server's subject alternative names, every one (`DNS:…`, `IP:…`; an IDN with its
    /// Unicode form): what clients will accept this certificate for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// e.g. "ECDSA P-256".
    pub key: String,
    /// SHA-256 of the certified key (see [`crate::authority::pubkey`]).
    pub key_sha256: String,
}

impl Plan {
    /// Blocked identities nobody acknowledged: each makes reconcile exit 3 and plan fail.
    pub fn unacknowledged(&self) -> impl Iterator<Item = &Blocked> {
        self.blocked.iter().filter(|b| b.acknowledged.is_none())
    }

    /// Nothing to write. (Blocked identities alone change nothing.)
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
            && self.crl.is_none()
            && self.previous_crl.is_none()
            && !self.retire_previous
            && self.repair.is_none()
    }

    pub fn signs_certificates(&self) -> bool {
        self.actions.iter().any(|a| a.op.signs())
    }

    pub fn count(&self, op: Op) -> usize {
        self.actions.iter().filter(|a| a.op == op).count()
    }
}

/// What the plan needs to know of the current CRL.
#[derive(Debug, Clone, Copy)]
pub struct CrlState {
    pub number: u64,
    pub next_update: Option<OffsetDateTime>,
}

/// Which CAs sign, below an offline root (see [`crate::authority::hierarchy`]); all empty in a
/// single-level CA.
#[derive(Debug, Clone, Default)]
pub struct Issuers {
    /// The current intermediate's id: what new certificates record as their issuer.
    pub current: Option<String>,
    /// Intermediates the root revoked: their certificates are dead and replaced.
    pub revoked: BTreeSet<String>,
    /// The retiring intermediate and its CRL, while it has one.
    pub previous: Option<Retiring>,
}

/// A retiring intermediate, as the planner sees it.
#[derive(Debug, Clone)]
pub struct Retiring {
    pub id: String,
    pub crl: CrlState,
    /// The root revoked it (a ceremony, once none of its certificates was valid).
    pub revoked: bool,
    /// Its certificate's notAfter: once past, nothing it signed is valid anywhere.
    pub not_after: OffsetDateTime,
}

pub struct Input<'a> {
    pub identities: &'a [Identity],
    pub ledger: &'a Ledger,
    pub config: &'a Config,
    pub crl: CrlState,
    pub issuers: &'a Issuers,
    pub ca_not_after: OffsetDateTime,
    pub now: OffsetDateTime,
    /// Names whose declarations could not be validated (a broken entry, a file that does not
    /// parse, a name declared twice): their certificates are neither revoked as removed nor
    /// replaced until the declaration is fixed.
    pub held: &'a BTreeMap<String, Blocked>,
    /// Identities whose CSR was checked and refused: nothing is signed for them.
    pub refused: &'a BTreeMap<String, Blocked>,
    /// No identity may be signed for (gitca.yaml is broken and an older one stands in).
    pub signing_blocked: Option<&'a Blocked>,
    /// Why no certificate may be revoked as removed this time (an identities file cannot be
    /// read, so the names it declares are unknown).
    pub removals_suspended: Option<&'a str>,
}

/// One identity's situation, as the checks see it.
struct Ctx<'a> {
    id: &'a Identity,
    profile: &'a Profile,
    profiles: &'a BTreeMap<String, Profile>,
    /// Unrevoked, unexpired certificates, oldest first.
    live: Vec<&'a Record>,
    /// The newest live certificate.
    current: Option<&'a Record>,
    history: Vec<&'a Record>,
    new_not_after: OffsetDateTime,
    now: OffsetDateTime,
    /// The current issuer's id (see [`Issuers`]).
    issuer: Option<&'a str>,
}

enum Decision {
    /// Sign a new certificate. With `withdraw`, the new certificate takes something away (a
    /// group, an extended key usage): the live ones are revoked at once with that reason,
    /// whether or not the new one can be signed. Otherwise they stay valid for the
    /// configured `supersede_grace` and are revoked as superseded afterwards.
    Sign(Op, Reason, Option<RevocationReason>),
    /// Revoke every live certificate.
    Revoke(RevocationReason, Reason),
    /// Revoke (or re-mark, for a key compromise) these certificates.
    RevokeThese(Vec<Record>, RevocationReason, Reason),
    /// Nothing to do, and no later check may decide otherwise.
    Hold,
}

type Check = fn(&Ctx) -> Option<Decision>;

/// The trigger chain, in order. Revocation requests come first so that nothing is ever issued
/// to an identity that asked to be revoked.
const CHAIN: &[(&str, Check)] = &[
    ("explicit-revocation", explicit_revocation),
    ("disabled", disabled),
    ("no-certificate", no_certificate),
    ("csr-changed", csr_changed),
    ("profile-changed", profile_changed),
    ("email-changed", email_changed),
    ("groups-changed", groups_changed),
    ("names-changed", names_changed),
    ("issuer-rotated", issuer_rotated),
    ("nearing-expiry", nearing_expiry),
];

/// `revoke: REASON` revokes every live certificate, and issues nothing while it stays.
/// `revoke: key-compromise` goes further: it bars every key the identity ever had certified,
/// so its earlier certificates (superseded by a rotation, or expired) are marked
/// key-compromise too — a reason only ever moves up to key-compromise, never down.
fn explicit_revocation(c: &Ctx) -> Option<Decision> {
    let why = c.id.revoke?;
    let targets: Vec<Record> = if why == RevocationReason::KeyCompromise {
        c.history
            .iter()
            .filter(|r| r.reason != Some(RevocationReason::KeyCompromise))
            .map(|r| (*r).clone())
            .collect()
    } else {
        c.live.iter().map(|r| (*r).clone()).collect()
    };
    Some(if targets.is_empty() {
        Decision::Hold
    } else {
        Decision::RevokeThese(
            targets,
            why,
            reason(
                "explicit-revocation",
                format!("`revoke: {why}` in {}", c.id.source.file),
            ),
        )
    })
}

fn disabled(c: &Ctx) -> Option<Decision> {
    if !c.id.disabled {
        return None;
    }
    Some(if c.live.is_empty() {
        Decision::Hold
    } else {
        Decision::Revoke(
            RevocationReason::CessationOfOperation,
            reason(
                "disabled",
                format!("`disabled: true` in {}", c.id.source.file),
            ),
        )
    })
}

fn no_certificate(c: &Ctx) -> Option<Decision> {
    if c.current.is_some() {
        return None;
    }
    let detail = match c.history.last() {
        None => "no certificate yet".to_string(),
        Some(last) if last.not_after <= c.now && last.reason.is_none() => {
            format!(
                "previous certificate {} expired {}",
                last.serial,
                fmt_time(last.not_after)
            )
        }
        Some(last) if last.is_live(c.now) => format!(
            "certificate {} was signed by intermediate {}, which the root revoked",
            last.serial,
            last.issuer.as_deref().unwrap_or("?")
        ),
        Some(last) => format!(
            "previous certificate {} was revoked ({})",
            last.serial,
            last.reason.map(|r| r.as_str()).unwrap_or("expired")
        ),
    };
    let code = if c.history.is_empty() {
        "new-identity"
    } else {
        "no-valid-certificate"
    };
    Some(Decision::Sign(Op::Issue, reason(code, detail), None))
}

fn csr_changed(c: &Ctx) -> Option<Decision> {
    let cur = c.current?;
    let digest = c.id.csr_sha256.as_deref()?;
    (cur.csr_sha256 != digest).then(|| {
        Decision::Sign(
            Op::Reissue,
            reason(
                "csr-changed",
                format!("{} changed since certificate {}", c.id.csr, cur.serial),
            ),
            None,
        )
    })
}

fn profile_changed(c: &Ctx) -> Option<Decision> {
    let cur = c.current?;
    if cur.profile == c.id.profile {
        return None;
    }
    // Moving to a profile that grants fewer extended key usages withdraws a right; an old
    // profile that no longer exists is taken to have granted more.
    let narrowed = c.profiles.get(&cur.profile).is_none_or(|old| {
        old.extended_key_usage
            .iter()
            .any(|e| !c.profile.extended_key_usage.contains(e))
    });
    Some(Decision::Sign(
        Op::Reissue,
        reason(
            "profile-changed",
            format!(
                "{} → {}{}",
                cur.profile,
                c.id.profile,
                if narrowed { " (fewer rights)" } else { "" }
            ),
        ),
        narrowed.then_some(RevocationReason::PrivilegeWithdrawn),
    ))
}

fn email_changed(c: &Ctx) -> Option<Decision> {
    let cur = c.current?;
    (cur.email != c.id.email).then(|| {
        let show = |e: &Option<String>| e.clone().unwrap_or_else(|| "(none)".into());
        Decision::Sign(
            Op::Reissue,
            reason(
                "email-changed",
                format!("{} → {}", show(&cur.email), show(&c.id.email)),
            ),
            None,
        )
    })
}

fn groups_changed(c: &Ctx) -> Option<Decision> {
    let cur = c.current?;
    let old: BTreeSet<&String> = cur.groups.iter().collect();
    let new: BTreeSet<&String> = c.id.groups.iter().collect();
    if old == new {
        return None;
    }
    // Losing a group withdraws a privilege the old certificate still grants; gaining one
    // takes nothing away.
    let why = (!old.is_subset(&new)).then_some(RevocationReason::PrivilegeWithdrawn);
    Some(Decision::Sign(
        Op::Reissue,
        reason(
            "groups-changed",
            format!("[{}] → [{}]", cur.groups.join(", "), c.id.groups.join(", ")),
        ),
        why,
    ))
}

/// A server's DNS names or IP addresses changed. A name dropped is withdrawn at once: the old
/// certificate would go on vouching for a host the reviewed entry no longer names.
fn names_changed(c: &Ctx) -> Option<Decision> {
    let cur = c.current?;
    let old: BTreeSet<&crate::authority::server::San> = cur.names.iter().collect();
    let new: BTreeSet<&crate::authority::server::San> = c.id.names.iter().collect();
    if old == new {
        return None;
    }
    let show = |names: &BTreeSet<&crate::authority::server::San>| {
        names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let why = (!old.is_subset(&new)).then_some(RevocationReason::PrivilegeWithdrawn);
    Some(Decision::Sign(
        Op::Reissue,
        reason(
            "names-changed",
            format!("[{}] → [{}]", show(&old), show(&new)),
        ),
        why,
    ))
}

/// Below an offline root: the certificate was signed by an intermediate that is no longer the
/// issuing one (`gitca root new-intermediate`). Same key, same attributes, new issuer; the old
/// certificate stays valid for the grace period.
fn issuer_rotated(c: &Ctx) -> Option<Decision> {
    let cur = c.current?;
    let issuer = c.issuer?;
    (cur.issuer.as_deref() != Some(issuer)).then(|| {
        Decision::Sign(
            Op::Reissue,
            reason(
                "issuer-rotated",
                format!(
                    "certificate {} was signed by {}; the issuing CA is now intermediate {issuer}",
                    cur.serial,
                    cur.issuer
                        .as_deref()
                        .map_or("the CA".to_string(), |i| format!("intermediate {i}"))
                ),
            ),
            None,
        )
    })
}

fn nearing_expiry(c: &Ctx) -> Option<Decision> {
    let cur = c.current?;
    let left = cur.not_after - c.now;
    // Renewing must actually extend the certificate: near the CA's own expiry it cannot.
    (left <= c.profile.renew_before.0 && c.new_not_after > cur.not_after).then(|| {
        Decision::Sign(
            Op::Renew,
            reason(
                "nearing-expiry",
                format!(
                    "{} left < renew_before {}",
                    human_span(left),
                    c.profile.renew_before
                ),
            ),
            None,
        )
    })
}

/// After a reissue that took nothing away, the certificates it replaced stay valid for the
/// grace period (so nobody is locked out before installing the new one), then are revoked as
/// superseded. A renewal's predecessor (same key and attributes) simply expires.
fn superseded_after_grace<'a>(c: &Ctx<'a>, grace: time::Duration) -> Vec<(&'a Record, Reason)> {
    let Some(newest) = c.current else {
        return Vec::new();
    };
    let replaced_at = newest.not_before + BACKDATE;
    if replaced_at + grace > c.now {
        return Vec::new();
    }
    let same = |r: &Record| {
        let groups = |r: &Record| r.groups.iter().cloned().collect::<BTreeSet<_>>();
        r.csr_sha256 == newest.csr_sha256
            && r.profile == newest.profile
            && r.email == newest.email
            && groups(r) == groups(newest)
            && r.names == newest.names
            && r.issuer == newest.issuer
    };
    c.live
        .iter()
        .copied()
        .filter(|r| r.serial != newest.serial && !same(r))
        .map(|r| {
            (
                r,
                reason(
                    "superseded",
                    format!(
                        "replaced by {} on {}; the {} grace period is over",
                        newest.serial,
                        &fmt_time(replaced_at)[..10],
                        crate::repository::config::Dur(grace)
                    ),
                ),
            )
        })
        .collect()
}

/// Computes the plan. Pure.
///
/// Each declared identity goes through the trigger chain; then come the removals, the keys
/// revoked for compromise wherever they are, and the CRLs those revocations make due.
pub fn plan(input: &Input<'_>) -> Plan {
    let now = input.now;
    let mut actions = Vec::new();
    let mut blocked: Vec<Blocked> = input.held.values().cloned().collect();
    blocked.extend(input.signing_blocked.cloned());
    let declared: BTreeMap<&str, &Identity> = input
        .identities
        .iter()
        .map(|i| (i.name.as_str(), i))
        .collect();

    for id in input.identities {
        plan_identity(input, id, &mut actions, &mut blocked);
    }
    offboard(input, &declared, &mut actions, &mut blocked);
    revoke_compromised_keys(input.ledger, now, &mut actions);
    actions
        .sort_by(|a, b| (&a.identity, a.op == Op::Revoke).cmp(&(&b.identity, b.op == Op::Revoke)));
    settle_blocked(&mut blocked, &declared, now);
    let (crl, previous_crl, retire_previous) = crl_actions(input, &actions);
    Plan {
        actions,
        crl,
        previous_crl,
        retire_previous,
        blocked,
        repair: None,
        policy_changes: Vec::new(),
        signing: Vec::new(),
        notes: Vec::new(),
    }
}

/// One declared identity: what a revoked intermediate signed is revoked, then the first check
/// of the chain that fires decides the rest.
fn plan_identity(
    input: &Input<'_>,
    id: &Identity,
    actions: &mut Vec<Action>,
    blocked: &mut Vec<Blocked>,
) {
    let now = input.now;
    if input.held.contains_key(&id.name) {
        return;
    }
    let Some(profile) = input.config.profiles.get(&id.profile) else {
        return; // inventory validation refuses unknown profiles before planning
    };
    let history: Vec<&Record> = input.ledger.of(&id.name).collect();
    // A certificate of a revoked intermediate is dead whatever the ledger says: it is
    // marked revoked, and the identity is issued anew.
    let dead = |r: &Record| {
        r.issuer
            .as_ref()
            .is_some_and(|i| input.issuers.revoked.contains(i))
    };
    for r in history.iter().filter(|r| r.is_live(now) && dead(r)) {
        actions.push(revoke(
            r,
            RevocationReason::Superseded,
            reason(
                "issuer-revoked",
                format!(
                    "its issuer, intermediate {}, was revoked by the root",
                    r.issuer.as_deref().unwrap_or("?")
                ),
            ),
        ));
    }
    let live: Vec<&Record> = history
        .iter()
        .copied()
        .filter(|r| r.is_live(now) && !dead(r))
        .collect();
    let validity = id.validity.unwrap_or(profile.validity).0;
    let ctx = Ctx {
        id,
        profile,
        profiles: &input.config.profiles,
        current: live.last().copied(),
        live,
        history,
        new_not_after: (now + validity).min(input.ca_not_after),
        now,
        issuer: input.issuers.current.as_deref(),
    };
    let decision = CHAIN.iter().find_map(|(_, check)| check(&ctx));
    apply_decision(input, &ctx, decision, actions, blocked);
}

/// Turns the chain's decision into actions, or into the reason nothing can be done.
fn apply_decision(
    input: &Input<'_>,
    ctx: &Ctx,
    decision: Option<Decision>,
    actions: &mut Vec<Action>,
    blocked: &mut Vec<Blocked>,
) {
    match decision {
        None => {
            for (rec, r) in superseded_after_grace(ctx, input.config.supersede_grace.0) {
                actions.push(revoke(rec, RevocationReason::Superseded, r));
            }
        }
        Some(Decision::Hold) => {
            if let Some(b) = held_by_revocation(ctx) {
                blocked.push(b);
            }
        }
        Some(Decision::Revoke(why, r)) => {
            for rec in &ctx.live {
                actions.push(revoke(rec, why, r.clone()));
            }
        }
        Some(Decision::RevokeThese(records, why, r)) => {
            for rec in &records {
                let mut r = r.clone();
                if !rec.is_live(ctx.now) {
                    r.detail = match rec.reason {
                        Some(old) => format!("{}; reason {old} → {why}", r.detail),
                        None => format!("{}; expired, its key barred", r.detail),
                    };
                }
                actions.push(revoke(rec, why, r));
            }
        }
        Some(Decision::Sign(op, r, withdraw)) => {
            sign_or_block(input, ctx, op, r, withdraw, actions, blocked);
        }
    }
}

/// A decision to sign: withdraws what the new certificate takes away, then plans the signing —
/// or says why it cannot happen (a refused CSR, or signing blocked for everyone).
fn sign_or_block(
    input: &Input<'_>,
    ctx: &Ctx,
    op: Op,
    r: Reason,
    withdraw: Option<RevocationReason>,
    actions: &mut Vec<Action>,
    blocked: &mut Vec<Blocked>,
) {
    let id = ctx.id;
    // A withdrawal takes effect whether or not the new certificate can be signed.
    if let Some(why) = withdraw {
        for rec in &ctx.live {
            actions.push(revoke(
                rec,
                why,
                reason(r.code, format!("withdrawn at once ({})", r.detail)),
            ));
        }
    }
    let stop = input
        .refused
        .get(&id.name)
        .or(input.signing_blocked)
        .cloned();
    match stop {
        Some(mut b) => {
            b.identity = id.name.clone();
            b.detail = format!(
                "{} — wanted: {op} ({}: {})",
                b.detail,
                r.code,
                r.detail,
                op = op.as_str()
            );
            blocked.push(b);
        }
        None => actions.push(Action {
            identity: id.name.clone(),
            kind: id.kind,
            op,
            reason: r,
            serial: ctx.current.map(|c| c.serial.clone()),
            not_after: Some(ctx.new_not_after),
            revocation: None,
        }),
    }
}

/// Offboarding: every unexpired certificate of an identity no longer declared — unless its
/// declaration is only broken (held), which is not a removal.
fn offboard(
    input: &Input<'_>,
    declared: &BTreeMap<&str, &Identity>,
    actions: &mut Vec<Action>,
    blocked: &mut Vec<Blocked>,
) {
    if let Some(why) = input.removals_suspended {
        blocked.push(Blocked {
            identity: "*".into(),
            code: "removals-suspended",
            detail: format!("{why}: no certificate is revoked as removed until it can"),
            fix: "make every file under identities/ a readable YAML file".into(),
            file: None,
            line: None,
            acknowledged: None,
        });
    }
    let successor = successors(input);
    for rec in &input.ledger.records {
        if input.removals_suspended.is_none()
            && rec.is_live(input.now)
            && !declared.contains_key(rec.identity.as_str())
            && !input.held.contains_key(&rec.identity)
        {
            actions.push(match successor.get(rec.identity.as_str()) {
                Some(new) => revoke(
                    rec,
                    RevocationReason::Superseded,
                    reason("renamed", format!("now declared as `{new}`")),
                ),
                None => revoke(
                    rec,
                    RevocationReason::CessationOfOperation,
                    reason("identity-removed", "no longer declared in identities/"),
                ),
            });
        }
    }
}

/// Former names mapped to the names that replaced them.
///
/// A rename (`renamed_from:`) supersedes the former name's certificates — when the new name
/// is new (a rename happens in one change); a `renamed_from:` left on an identity that
/// already holds certificates says nothing about a later offboarding of that name.
fn successors<'a>(input: &Input<'a>) -> BTreeMap<&'a str, &'a str> {
    let certified: BTreeSet<&str> = if input.identities.iter().any(|i| i.renamed_from.is_some()) {
        input
            .ledger
            .records
            .iter()
            .map(|r| r.identity.as_str())
            .collect()
    } else {
        BTreeSet::new()
    };
    input
        .identities
        .iter()
        .filter(|i| !certified.contains(i.name.as_str()))
        .filter_map(|i| Some((i.renamed_from.as_deref()?, i.name.as_str())))
        .collect()
}

/// Orders the blocked identities, one entry per identity and code, each carrying the
/// acknowledgement its declaration holds now.
fn settle_blocked(
    blocked: &mut Vec<Blocked>,
    declared: &BTreeMap<&str, &Identity>,
    now: OffsetDateTime,
) {
    blocked.sort_by(|a, b| a.identity.cmp(&b.identity));
    blocked.dedup_by(|a, b| a.identity == b.identity && a.code == b.code);
    for b in blocked {
        let ack = declared
            .get(b.identity.as_str())
            .and_then(|i| i.acknowledged.as_ref())
            .filter(|a| a.holds(now));
        b.acknowledged = ack.map(|a| Acknowledgement {
            until: a.until.to_string(),
            reason: a.reason.clone(),
        });
    }
}

/// The current CA's CRL action, the retiring intermediate's, and whether its CRL retires.
///
/// Each CA re-signs its CRL for revocations of what it signed, and when its CRL is due.
fn crl_actions(
    input: &Input<'_>,
    actions: &[Action],
) -> (Option<CrlAction>, Option<CrlAction>, bool) {
    let now = input.now;
    let revoked_by = |issuer: Option<&str>| {
        actions
            .iter()
            .filter(|a| a.op == Op::Revoke && issuer_of(input.ledger, a) == issuer)
            .count()
    };
    let crl = crl_action(
        revoked_by(input.issuers.current.as_deref()),
        input.crl,
        input.config,
        now,
    );
    // A retiring intermediate keeps its CRL current (a revocation stays listed until the
    // certificate expires) until the root has revoked it (a ceremony does so once nothing it
    // signed is valid) or it has expired. Not before: relying parties that installed its CRL let it go only on
    // the root's word (or its expiry), never because it vanished from what is published.
    let (previous_crl, retire_previous) = match &input.issuers.previous {
        None => (None, false),
        Some(p) if p.revoked || p.not_after <= now => (None, true),
        Some(p) => (
            crl_action(revoked_by(Some(p.id.as_str())), p.crl, input.config, now),
            false,
        ),
    };
    (crl, previous_crl, retire_previous)
}

/// The issuer of the certificate a revocation is about.
fn issuer_of<'l>(ledger: &'l Ledger, a: &'l Action) -> Option<&'l str> {
    let serial = a.serial.as_deref()?;
    ledger
        .of(&a.identity)
        .find(|r| r.serial == serial)
        .and_then(|r| r.issuer.as_deref())
}

/// Whether a CRL must be re-signed (revocations, or its refresh window), and as what.
fn crl_action(
    revocations: usize,
    crl: CrlState,
    config: &Config,
    now: OffsetDateTime,
) -> Option<CrlAction> {
    let refresh = config.crl.refresh_before.0;
    let crl_reason = if revocations > 0 {
        Some(reason(
            "revocations",
            format!("{revocations} certificate(s) revoked"),
        ))
    } else {
        match crl.next_update {
            None => Some(reason("crl-refresh", "the CRL has no nextUpdate")),
            Some(next) if next <= now => Some(reason(
                "crl-expired",
                format!(
                    "the CRL expired {} (nextUpdate); clients are being refused",
                    fmt_time(next)
                ),
            )),
            Some(next) if next - now <= refresh => Some(reason(
                "crl-refresh",
                format!(
                    "nextUpdate in {} < refresh_before {}",
                    human_span(next - now),
                    config.crl.refresh_before
                ),
            )),
            Some(_) => None,
        }
    };
    crl_reason.map(|reason| CrlAction {
        number: crl.number + 1,
        next_update: next_crl_update(now, config.crl.validity.0, crl.next_update),
        reason,
    })
}

/// An identity held by `revoke:` with no certificate, whose CSR on file was never certified
/// for it (a new key after a rotation): it gets nothing until `revoke:` is removed, and the
/// plan says so rather than "no changes".
fn held_by_revocation(c: &Ctx) -> Option<Blocked> {
    let why = c.id.revoke?;
    let digest = c.id.csr_sha256.as_deref()?;
    if !c.live.is_empty() || c.history.iter().any(|r| r.csr_sha256 == digest) {
        return None;
    }
    Some(Blocked {
        identity: c.id.name.clone(),
        code: "revocation-held",
        detail: format!(
            "`revoke: {why}` is still set, so nothing is issued for the new CSR {}",
            c.id.csr
        ),
        fix: format!(
            "remove the `revoke:` line of `{}` from {} (the revoked keys stay barred) to get a certificate for the new key",
            c.id.name, c.id.source.file
        ),
        file: Some(c.id.source.file.clone()),
        line: Some(c.id.source.line),
        acknowledged: None,
    })
}

/// A key revoked for compromise is dead whoever holds it: every live certificate of that key,
/// of any identity, is revoked for key compromise too. (Signing keeps one key to one identity;
/// this holds even for a ledger that predates that, or an import.)
fn revoke_compromised_keys(ledger: &Ledger, now: OffsetDateTime, actions: &mut Vec<Action>) {
    let any = |a: &Action| a.revocation == Some(RevocationReason::KeyCompromise);
    if !actions.iter().any(any)
        && !ledger
            .records
            .iter()
            .any(|r| r.reason == Some(RevocationReason::KeyCompromise))
    {
        return;
    }
    let by_serial: HashMap<&str, &Record> = ledger
        .records
        .iter()
        .map(|r| (r.serial.as_str(), r))
        .collect();
    let mut barred: HashMap<&str, &str> = ledger
        .records
        .iter()
        .filter(|r| r.reason == Some(RevocationReason::KeyCompromise))
        .map(|r| (r.key_sha256.as_str(), r.identity.as_str()))
        .collect();
    let mut targeted: HashSet<&str> = HashSet::new();
    for a in actions.iter().filter(|a| a.op == Op::Revoke) {
        let Some(rec) = a.serial.as_deref().and_then(|s| by_serial.get(s)) else {
            continue;
        };
        targeted.insert(rec.serial.as_str());
        if a.revocation == Some(RevocationReason::KeyCompromise) {
            barred.insert(rec.key_sha256.as_str(), rec.identity.as_str());
        }
    }
    if barred.is_empty() {
        return;
    }
    for rec in &ledger.records {
        if !rec.is_live(now) || targeted.contains(rec.serial.as_str()) {
            continue;
        }
        if let Some(who) = barred.get(rec.key_sha256.as_str()) {
            actions.push(revoke(
                rec,
                RevocationReason::KeyCompromise,
                reason(
                    "key-compromised",
                    format!("the same key as `{who}`'s, which was revoked for compromise"),
                ),
            ));
        }
    }
}

fn revoke(rec: &Record, why: RevocationReason, r: Reason) -> Action {
    Action {
        identity: rec.identity.clone(),
        kind: rec.kind,
        op: Op::Revoke,
        reason: r,
        serial: Some(rec.serial.clone()),
        not_after: Some(rec.not_after),
        revocation: Some(why),
    }
}

mod opt_time {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&crate::time::fmt_time(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::inventory::Source;
    use crate::repository::ledger::State;

    fn t(s: &str) -> OffsetDateTime {
        crate::time::parse_time(s).unwrap()
    }

    fn config() -> Config {
        Config::parse(&Config::template("Test CA", "Acme")).unwrap()
    }

    fn ident(name: &str, csr: &str) -> Identity {
        Identity {
            name: name.into(),
            kind: Kind::User,
            email: None,
            groups: vec![],
            profile: "user".into(),
            validity: None,
            disabled: false,
            revoke: None,
            common_name: None,
            renamed_from: None,
            acknowledged: None,
            names: Vec::new(),
            csr: format!("csr/{name}.csr"),
            csr_sha256: Some(csr.into()),
            csr_bytes: None,
            source: Source {
                file: "identities/people.yaml".into(),
                span: (0, 0),
                csr_span: (0, 0),
                cn_span: None,
                line: 1,
            },
        }
    }

    fn rec(serial: &str, name: &str, csr: &str, nb: &str, na: &str) -> Record {
        Record {
            serial: serial.into(),
            identity: name.into(),
            kind: Kind::User,
            profile: "user".into(),
            state: State::Issued,
            not_before: t(nb),
            not_after: t(na),
            revoked_at: None,
            reason: None,
            key_sha256: format!("key-{csr}"),
            csr_sha256: csr.into(),
            email: None,
            groups: vec![],
            issuer: None,
            names: Vec::new(),
        }
    }

    fn run(ids: &[Identity], ledger: &Ledger, now: &str) -> Plan {
        run_with(ids, ledger, now, &BTreeMap::new(), &BTreeMap::new())
    }

    fn run_with(
        ids: &[Identity],
        ledger: &Ledger,
        now: &str,
        held: &BTreeMap<String, Blocked>,
        refused: &BTreeMap<String, Blocked>,
    ) -> Plan {
        let config = config();
        plan(&Input {
            issuers: &Issuers::default(),
            identities: ids,
            ledger,
            config: &config,
            crl: CrlState {
                number: 1,
                next_update: Some(t(now) + time::Duration::days(7)),
            },
            ca_not_after: t("2036-01-01T00:00:00Z"),
            now: t(now),
            held,
            refused,
            signing_blocked: None,
            removals_suspended: None,
        })
    }

    fn blocked(name: &str) -> BTreeMap<String, Blocked> {
        BTreeMap::from([(
            name.to_string(),
            Blocked {
                identity: name.into(),
                code: "csr-refused",
                detail: "refused".into(),
                fix: "fix".into(),
                file: None,
                line: None,
                acknowledged: None,
            },
        )])
    }

    fn ops(p: &Plan) -> Vec<(String, &'static str, &'static str)> {
        p.actions
            .iter()
            .map(|a| (a.identity.clone(), a.op.as_str(), a.reason.code))
            .collect()
    }

    #[test]
    fn new_identity_is_issued_and_nothing_else_happens() {
        let p = run(
            &[ident("alice", "c1")],
            &Ledger::default(),
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(ops(&p), [("alice".into(), "issue", "new-identity")]);
        assert!(p.crl.is_none(), "issuing alone does not touch the CRL");
        assert_eq!(p.actions[0].not_after, Some(t("2027-01-01T00:00:00Z")));
    }

    #[test]
    fn nothing_changed_means_an_empty_plan() {
        let l = Ledger {
            with_issuer: false,
            records: vec![rec(
                "01",
                "alice",
                "c1",
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            )],
        };
        assert!(run(&[ident("alice", "c1")], &l, "2026-02-01T00:00:00Z").is_empty());
    }

    #[test]
    fn nearing_expiry_renews_without_revoking() {
        let l = Ledger {
            with_issuer: false,
            records: vec![rec(
                "01",
                "alice",
                "c1",
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            )],
        };
        let p = run(&[ident("alice", "c1")], &l, "2026-12-20T00:00:00Z");
        assert_eq!(ops(&p), [("alice".into(), "renew", "nearing-expiry")]);
        assert_eq!(
            p.actions[0].reason.detail,
            "12 days left < renew_before 30d"
        );
        assert!(p.crl.is_none());
    }

    #[test]
    fn changed_csr_reissues_and_supersedes_after_the_grace_period() {
        let mut l = Ledger {
            with_issuer: false,
            records: vec![
                rec(
                    "01",
                    "alice",
                    "c1",
                    "2026-01-01T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                ),
                rec(
                    "02",
                    "alice",
                    "c1",
                    "2026-12-10T00:00:00Z",
                    "2027-12-10T00:00:00Z",
                ),
            ],
        };
        let p = run(&[ident("alice", "c2")], &l, "2026-12-20T00:00:00Z");
        assert_eq!(ops(&p), [("alice".into(), "reissue", "csr-changed")]);
        assert!(
            p.crl.is_none(),
            "nothing is revoked yet: nobody is locked out"
        );
        // The new certificate exists; six days later both old ones are still valid, after the
        // seven-day grace they are revoked as superseded.
        l.records.push(rec(
            "03",
            "alice",
            "c2",
            "2026-12-19T23:00:00Z",
            "2027-12-20T00:00:00Z",
        ));
        l.sort();
        assert!(run(&[ident("alice", "c2")], &l, "2026-12-26T00:00:00Z").is_empty());
        let p = run(&[ident("alice", "c2")], &l, "2026-12-27T00:00:00Z");
        assert_eq!(
            ops(&p),
            [
                ("alice".into(), "revoke", "superseded"),
                ("alice".into(), "revoke", "superseded")
            ]
        );
        assert!(p
            .actions
            .iter()
            .all(|a| a.revocation == Some(RevocationReason::Superseded)));
        assert_eq!(p.crl.as_ref().unwrap().reason.code, "revocations");
    }

    /// Which certificate is current follows the order of issue the ledger records, never
    /// notBefore: a certificate `openssl ca` signed minutes before an import starts later than
    /// the backdated gitca certificate that replaced it (issue 20).
    #[test]
    fn the_current_certificate_is_the_last_issued_whatever_its_not_before() {
        let imported = rec(
            "1001",
            "olga",
            "c1",
            "2026-03-01T11:55:00Z",
            "2027-03-02T11:55:00Z",
        );
        let mut reissued = rec(
            "7fe1",
            "olga",
            "c1",
            "2026-03-01T11:30:00Z",
            "2027-03-01T12:30:00Z",
        );
        reissued.groups = vec!["push".into()];
        let mut l = Ledger {
            with_issuer: false,
            records: vec![imported, reissued],
        };
        l.sort();
        assert_eq!(l.records[1].serial, "7fe1");
        let mut olga = ident("olga", "c1");
        olga.groups = vec!["push".into()];
        assert!(run(&[olga.clone()], &l, "2026-03-01T12:40:00Z").is_empty());
        // After the grace period the imported certificate is superseded, as any other.
        let p = run(&[olga], &l, "2026-03-09T13:00:00Z");
        assert_eq!(ops(&p), [("olga".into(), "revoke", "superseded")]);
        assert_eq!(p.actions[0].serial.as_deref(), Some("1001"));
    }

    #[test]
    fn a_renewed_certificate_is_left_to_expire() {
        let l = Ledger {
            with_issuer: false,
            records: vec![
                rec(
                    "01",
                    "alice",
                    "c1",
                    "2026-01-01T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                ),
                rec(
                    "02",
                    "alice",
                    "c1",
                    "2026-12-10T00:00:00Z",
                    "2027-12-10T00:00:00Z",
                ),
            ],
        };
        assert!(run(&[ident("alice", "c1")], &l, "2026-12-31T00:00:00Z").is_empty());
    }

    #[test]
    fn a_refused_csr_blocks_only_its_identity_and_keeps_its_certificate() {
        let l = Ledger {
            with_issuer: false,
            records: vec![
                rec(
                    "01",
                    "alice",
                    "c1",
                    "2026-01-01T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                ),
                rec(
                    "02",
                    "bob",
                    "b1",
                    "2026-01-01T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                ),
            ],
        };
        // alice's CSR changed to one that is refused; bob left.
        let p = run_with(
            &[ident("alice", "c2")],
            &l,
            "2026-02-01T00:00:00Z",
            &BTreeMap::new(),
            &blocked("alice"),
        );
        assert_eq!(ops(&p), [("bob".into(), "revoke", "identity-removed")]);
        assert_eq!(p.blocked.len(), 1);
        assert_eq!(p.blocked[0].identity, "alice");
        assert!(
            p.blocked[0].detail.contains("csr-changed"),
            "{:?}",
            p.blocked
        );
        assert_eq!(p.crl.as_ref().unwrap().reason.code, "revocations");
    }

    #[test]
    fn an_acknowledgement_marks_its_blocked_identity_only_while_it_holds() {
        let mut carol = ident("carol", "c1");
        carol.acknowledged = Some(crate::repository::inventory::Acknowledged {
            until: time::macros::date!(2026 - 01 - 15),
            reason: "waiting for carol's new CSR".into(),
            span: (0, 0),
        });
        let ids = [carol, ident("dave", "d1")];
        let mut refused = blocked("carol");
        refused.extend(blocked("dave"));
        let at = |now: &str| {
            let p = run_with(&ids, &Ledger::default(), now, &BTreeMap::new(), &refused);
            assert_eq!(p.blocked.len(), 2, "both are reported: {:?}", p.blocked);
            p.unacknowledged()
                .map(|b| b.identity.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(at("2026-01-15T23:59:59Z"), ["dave"], "through its last day");
        assert_eq!(at("2026-01-16T00:00:00Z"), ["carol", "dave"], "past it");
        assert_eq!(
            at("2025-12-15T00:00:00Z"),
            ["carol", "dave"],
            "more than 30 days ahead: it does not hold"
        );
        assert_eq!(at("2025-12-16T00:00:00Z"), ["dave"], "30 days ahead");
    }

    #[test]
    fn a_withdrawal_is_revoked_even_when_the_new_certificate_cannot_be_signed() {
        let mut r = rec(
            "01",
            "alice",
            "c1",
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        );
        r.groups = vec!["push".into(), "pull".into()];
        let mut a = ident("alice", "c1");
        a.groups = vec!["pull".into()];
        let p = run_with(
            &[a],
            &Ledger {
                with_issuer: false,
                records: vec![r],
            },
            "2026-02-01T00:00:00Z",
            &BTreeMap::new(),
            &blocked("alice"),
        );
        assert_eq!(ops(&p), [("alice".into(), "revoke", "groups-changed")]);
        assert_eq!(
            p.actions[0].revocation,
            Some(RevocationReason::PrivilegeWithdrawn)
        );
        assert_eq!(p.blocked.len(), 1);
    }

    #[test]
    fn a_broken_declaration_is_held_not_removed() {
        let l = Ledger {
            with_issuer: false,
            records: vec![rec(
                "01",
                "alice",
                "c1",
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            )],
        };
        let mut held = blocked("alice");
        held.get_mut("alice").unwrap().code = "entry-invalid";
        let p = run_with(&[], &l, "2026-02-01T00:00:00Z", &held, &BTreeMap::new());
        assert!(p.actions.is_empty(), "{p:?}");
        assert_eq!(p.blocked[0].code, "entry-invalid");
        let config = config();
        let p = plan(&Input {
            issuers: &Issuers::default(),
            identities: &[],
            ledger: &l,
            config: &config,
            crl: CrlState {
                number: 1,
                next_update: Some(t("2026-02-05T00:00:00Z")),
            },
            ca_not_after: t("2036-01-01T00:00:00Z"),
            now: t("2026-02-01T00:00:00Z"),
            held: &BTreeMap::new(),
            refused: &BTreeMap::new(),
            signing_blocked: None,
            removals_suspended: Some("identities/x.yaml cannot be read"),
        });
        assert!(
            p.actions.is_empty(),
            "no removal while a file cannot be read: {p:?}"
        );
        assert_eq!(p.blocked[0].code, "removals-suspended");
    }

    #[test]
    fn adding_a_group_supersedes_after_grace_dropping_one_revokes_at_once() {
        let mut r = rec(
            "01",
            "alice",
            "c1",
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        );
        r.groups = vec!["pull".into()];
        let mut a = ident("alice", "c1");
        a.groups = vec!["pull".into(), "push".into()];
        let p = run(
            &[a],
            &Ledger {
                with_issuer: false,
                records: vec![r],
            },
            "2026-02-01T00:00:00Z",
        );
        assert_eq!(ops(&p), [("alice".into(), "reissue", "groups-changed")]);
    }

    #[test]
    fn removing_identity_revokes_every_unexpired_cert() {
        let mut expired = rec(
            "00",
            "bob",
            "c0",
            "2024-01-01T00:00:00Z",
            "2025-01-01T00:00:00Z",
        );
        expired.state = State::Issued;
        let l = Ledger {
            with_issuer: false,
            records: vec![
                expired,
                rec(
                    "01",
                    "bob",
                    "c1",
                    "2026-01-01T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                ),
                rec(
                    "02",
                    "bob",
                    "c1",
                    "2026-12-10T00:00:00Z",
                    "2027-12-10T00:00:00Z",
                ),
            ],
        };
        let p = run(&[], &l, "2026-12-20T00:00:00Z");
        let serials: Vec<_> = p
            .actions
            .iter()
            .map(|a| a.serial.clone().unwrap())
            .collect();
        assert_eq!(
            serials,
            ["01", "02"],
            "both unexpired certificates, not the expired one"
        );
        assert!(p.actions.iter().all(|a| a.revocation
            == Some(RevocationReason::CessationOfOperation)
            && a.reason.code == "identity-removed"));
    }

    #[test]
    fn key_compromise_revokes_and_never_reissues() {
        let l = Ledger {
            with_issuer: false,
            records: vec![rec(
                "01",
                "alice",
                "c1",
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            )],
        };
        let mut a = ident("alice", "c1");
        a.revoke = Some(RevocationReason::KeyCompromise);
        let p = run(std::slice::from_ref(&a), &l, "2026-02-01T00:00:00Z");
        assert_eq!(ops(&p), [("alice".into(), "revoke", "explicit-revocation")]);
        assert_eq!(
            p.actions[0].revocation,
            Some(RevocationReason::KeyCompromise)
        );
        // Once revoked, the request holds: nothing is issued while `revoke` stays.
        let mut l2 = l.clone();
        l2.records[0].state = State::Revoked;
        l2.records[0].reason = Some(RevocationReason::KeyCompromise);
        l2.records[0].revoked_at = Some(t("2026-02-01T00:00:00Z"));
        assert!(run(&[a], &l2, "2026-02-02T00:00:00Z").is_empty());
    }

    /// A key revoked for compromise is dead for everyone: a live certificate of the same key
    /// held by another identity (a ledger from before one-key-per-identity, an import) is
    /// revoked in the same run, and so is it in a later run once the first is recorded.
    #[test]
    fn a_compromised_key_is_revoked_whoever_holds_it() {
        let l = Ledger {
            with_issuer: false,
            records: vec![
                rec(
                    "01",
                    "mal2",
                    "shared",
                    "2026-01-01T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                ),
                rec(
                    "02",
                    "mal3",
                    "shared",
                    "2026-01-01T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                ),
                rec(
                    "03",
                    "zed",
                    "own",
                    "2026-01-01T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                ),
            ],
        };
        let mut a = ident("mal2", "shared");
        a.revoke = Some(RevocationReason::KeyCompromise);
        let ids = [a.clone(), ident("mal3", "shared"), ident("zed", "own")];
        let p = run(&ids, &l, "2026-02-01T00:00:00Z");
        let mut got = ops(&p);
        got.sort();
        assert_eq!(
            got,
            [
                ("mal2".into(), "revoke", "explicit-revocation"),
                ("mal3".into(), "revoke", "key-compromised"),
            ]
        );
        assert!(p
            .actions
            .iter()
            .all(|a| a.revocation == Some(RevocationReason::KeyCompromise)));
        // Recorded: the next run still catches mal3's certificate if it is live.
        let mut l2 = l.clone();
        l2.records[0].state = State::Revoked;
        l2.records[0].reason = Some(RevocationReason::KeyCompromise);
        l2.records[0].revoked_at = Some(t("2026-02-01T00:00:00Z"));
        let p = run(&ids[1..], &l2, "2026-02-02T00:00:00Z");
        assert_eq!(ops(&p), [("mal3".into(), "revoke", "key-compromised")]);
        // Without a compromise nothing of the kind happens (the proof it is the bar).
        let innocent = [
            ident("mal2", "shared"),
            ident("mal3", "shared"),
            ident("zed", "own"),
        ];
        assert!(run(&innocent, &l, "2026-02-02T00:00:00Z").is_empty());
    }

    #[test]
    fn dropped_group_is_a_privilege_withdrawal() {
        let mut r = rec(
            "01",
            "alice",
            "c1",
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        );
        r.groups = vec!["push".into(), "pull".into()];
        let mut a = ident("alice", "c1");
        a.groups = vec!["pull".into()];
        let p = run(
            &[a],
            &Ledger {
                with_issuer: false,
                records: vec![r],
            },
            "2026-02-01T00:00:00Z",
        );
        assert_eq!(p.actions[0].reason.code, "groups-changed");
        assert_eq!(
            p.actions[1].revocation,
            Some(RevocationReason::PrivilegeWithdrawn)
        );
    }

    #[test]
    fn crl_is_refreshed_inside_its_window_and_never_moves_back() {
        let config = config();
        let now = t("2026-01-10T00:00:00Z");
        let p = plan(&Input {
            issuers: &Issuers::default(),
            identities: &[],
            ledger: &Ledger::default(),
            config: &config,
            crl: CrlState {
                number: 4,
                next_update: Some(now + time::Duration::days(2)),
            },
            ca_not_after: t("2036-01-01T00:00:00Z"),
            now,
            held: &BTreeMap::new(),
            refused: &BTreeMap::new(),
            signing_blocked: None,
            removals_suspended: None,
        });
        let crl = p.crl.unwrap();
        assert_eq!((crl.number, crl.reason.code), (5, "crl-refresh"));
        assert_eq!(crl.next_update, now + time::Duration::days(7));
        let later = t("2030-01-01T00:00:00Z");
        assert_eq!(
            next_crl_update(now, time::Duration::days(1), Some(later)),
            later
        );
    }

    #[test]
    fn renewal_stops_at_the_ca_expiry() {
        let config = config();
        let ca_end = t("2027-01-01T00:00:00Z");
        let l = Ledger {
            with_issuer: false,
            records: vec![rec(
                "01",
                "alice",
                "c1",
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            )],
        };
        let p = plan(&Input {
            issuers: &Issuers::default(),
            identities: &[ident("alice", "c1")],
            ledger: &l,
            config: &config,
            crl: CrlState {
                number: 1,
                next_update: Some(t("2027-01-01T00:00:00Z")),
            },
            ca_not_after: ca_end,
            now: t("2026-12-20T00:00:00Z"),
            held: &BTreeMap::new(),
            refused: &BTreeMap::new(),
            signing_blocked: None,
            removals_suspended: None,
        });
        assert!(p.actions.is_empty(), "{p:?}");
    }
}
