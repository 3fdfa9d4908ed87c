//! How plans and results read: the human table, the JSON document (stable, versioned) and the
//! markdown for pull-request comments, plus the reconcile commit message.

use std::io::Write;

use serde_json::json;
use time::OffsetDateTime;

use crate::reconcile::plan::{Op, Plan};
use crate::time::fmt_time;

/// Most diagnostics rendered one by one; the rest are counted (a broken file with thousands of
/// entries must not print thousands of snippets).
pub const MAX_DIAGNOSTICS: usize = 50;

fn date(t: Option<OffsetDateTime>) -> String {
    t.map(|t| fmt_time(t)[..10].to_string())
        .unwrap_or_else(|| "-".into())
}

fn summary(plan: &Plan) -> String {
    if plan.is_empty() && plan.blocked.is_empty() {
        return "No changes: every identity holds a current certificate and the CRL is fresh."
            .into();
    }
    let mut parts = Vec::new();
    for (op, word) in [
        (Op::Issue, "to issue"),
        (Op::Reissue, "to reissue"),
        (Op::Renew, "to renew"),
        (Op::Revoke, "to revoke"),
    ] {
        let n = plan.count(op);
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    if let Some(c) = &plan.crl {
        parts.push(format!("CRL #{} to sign ({})", c.number, c.reason.code));
    }
    if let Some(c) = &plan.previous_crl {
        parts.push(format!(
            "retiring intermediate's CRL #{} to sign ({})",
            c.number, c.reason.code
        ));
    }
    if plan.retire_previous {
        parts.push("retiring intermediate to remove".into());
    }
    if plan.repair.is_some() {
        parts.push("ledger and CRL to restore as sealed".into());
    }
    if !plan.blocked.is_empty() {
        let known = plan.blocked.len() - plan.unacknowledged().count();
        parts.push(match known {
            0 => format!("{} blocked", plan.blocked.len()),
            n => format!("{} blocked ({n} acknowledged)", plan.blocked.len()),
        });
    }
    if plan.is_empty() {
        return format!("No changes can be applied: {}.", parts.join(", "));
    }
    format!("Plan: {}.", parts.join(", "))
}

struct Row {
    identity: String,
    kind: String,
    action: String,
    serial: String,
    expiry: String,
    reason: String,
}

fn rows(plan: &Plan) -> Vec<Row> {
    let mut rows: Vec<Row> = plan
        .actions
        .iter()
        .map(|a| Row {
            identity: a.identity.clone(),
            kind: a.kind.as_str().into(),
            action: match a.revocation {
                Some(r) => format!("revoke ({r})"),
                None => a.op.as_str().into(),
            },
            serial: match (a.op, &a.serial) {
                (Op::Revoke, Some(s)) => s.clone(),
                (_, Some(s)) => format!("new (replaces {})", short(s)),
                (_, None) => "new".into(),
            },
            expiry: date(a.not_after),
            reason: format!("{}: {}", a.reason.code, a.reason.detail),
        })
        .collect();
    if let Some(why) = &plan.repair {
        rows.push(Row {
            identity: "(ledger)".into(),
            kind: "-".into(),
            action: "restore".into(),
            serial: "-".into(),
            expiry: "-".into(),
            reason: format!("tampered: {why}"),
        });
    }
    if let Some(c) = &plan.crl {
        rows.push(Row {
            identity: "(CRL)".into(),
            kind: "-".into(),
            action: "sign".into(),
            serial: format!("#{}", c.number),
            expiry: date(Some(c.next_update)),
            reason: format!("{}: {}", c.reason.code, c.reason.detail),
        });
    }
    if let Some(c) = &plan.previous_crl {
        rows.push(Row {
            identity: "(previous CRL)".into(),
            kind: "-".into(),
            action: "sign".into(),
            serial: format!("#{}", c.number),
            expiry: date(Some(c.next_update)),
            reason: format!("{}: {}", c.reason.code, c.reason.detail),
        });
    }
    if plan.retire_previous {
        rows.push(Row {
            identity: "(previous CA)".into(),
            kind: "-".into(),
            action: "retire".into(),
            serial: "-".into(),
            expiry: "-".into(),
            reason: "retired: no certificate it signed is valid any more; ca/previous.* and crl/previous.crl are removed".into(),
        });
    }
    rows
}

fn short(serial: &str) -> String {
    serial.chars().take(8).collect::<String>() + "…"
}

fn where_of(b: &crate::repository::inventory::Blocked) -> String {
    match (&b.file, b.line) {
        (Some(f), Some(l)) => format!("{}:{l}", crate::output::encode::one_line(f)),
        (Some(f), None) => crate::output::encode::one_line(f).into_owned(),
        _ => "-".into(),
    }
}

/// The human table, then the blocked identities with the fix for each.
pub fn render_plan_human(out: &mut dyn Write, plan: &Plan) {
    render_human(out, plan, false);
}

/// Blocked codes that always come with a diagnostic of their own (pointing into the file),
/// which reconcile prints on stderr: its plan names them once, without repeating it.
const DIAGNOSED: [&str; 5] = [
    "csr-missing",
    "csr-refused",
    "name-clash",
    "entry-invalid",
    "config-invalid",
];

/// The plan for a terminal: the summary, policy changes and blocked identities, then the
/// actions, the warnings and what each new certificate carries.
fn render_human(out: &mut dyn Write, plan: &Plan, diagnosed_below: bool) {
    let _ = writeln!(out, "{}", summary(plan));
    render_policy_changes_human(out, plan);
    render_blocked_human(out, plan, diagnosed_below);
    if plan.is_empty() {
        return;
    }
    render_actions_human(out, plan);
    render_notes_human(out, plan);
    render_signing_human(out, plan);
}

/// The changes to gitca.yaml since the base, which apply to every identity.
fn render_policy_changes_human(out: &mut dyn Write, plan: &Plan) {
    if !plan.policy_changes.is_empty() {
        let _ = writeln!(
            out,
            "\nPolicy change in gitca.yaml (applies to every identity):"
        );
        for p in &plan.policy_changes {
            let _ = writeln!(out, "  {p}");
        }
    }
}

/// The actions as a table, each column as wide as its widest cell.
fn render_actions_human(out: &mut dyn Write, plan: &Plan) {
    let rows = rows(plan);
    let head = ["IDENTITY", "KIND", "ACTION", "SERIAL", "EXPIRY", "REASON"];
    let w = |f: fn(&Row) -> &str, h: &str| {
        rows.iter()
            .map(|r| f(r).chars().count())
            .max()
            .unwrap_or(0)
            .max(h.len())
    };
    let widths = [
        w(|r| &r.identity, head[0]),
        w(|r| &r.kind, head[1]),
        w(|r| &r.action, head[2]),
        w(|r| &r.serial, head[3]),
        w(|r| &r.expiry, head[4]),
    ];
    let line = |cells: [&str; 6]| {
        let mut s = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            if i < 5 {
                s.push_str(&format!(" {c:<width$}", width = widths[i]));
            } else {
                s.push_str(&format!(" {c}"));
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", line(head));
    for r in &rows {
        let _ = writeln!(
            out,
            "{}",
            line([
                &r.identity,
                &r.kind,
                &r.action,
                &r.serial,
                &r.expiry,
                &r.reason
            ])
        );
    }
}

/// What changes for those who read the new certificates, the first MAX_DIAGNOSTICS of them.
fn render_notes_human(out: &mut dyn Write, plan: &Plan) {
    if !plan.notes.is_empty() {
        let _ = writeln!(
            out,
            "\nWarnings (what changes for those who read the new certificates):"
        );
        for n in plan.notes.iter().take(MAX_DIAGNOSTICS) {
            let _ = writeln!(out, "  ⚠ {}: {}", n.identity, n.message);
        }
        if plan.notes.len() > MAX_DIAGNOSTICS {
            let _ = writeln!(
                out,
                "  … and {} more (plan --json lists them all)",
                plan.notes.len() - MAX_DIAGNOSTICS
            );
        }
    }
}

/// What each new certificate carries, one line each, the first MAX_DIAGNOSTICS of them.
fn render_signing_human(out: &mut dyn Write, plan: &Plan) {
    if !plan.signing.is_empty() {
        let _ = writeln!(out, "\nWhat each new certificate carries:");
        for c in plan.signing.iter().take(MAX_DIAGNOSTICS) {
            let _ = writeln!(out, "  {}", carries_line(c));
        }
        if plan.signing.len() > MAX_DIAGNOSTICS {
            let _ = writeln!(
                out,
                "  … and {} more (plan --json lists them all)",
                plan.signing.len() - MAX_DIAGNOSTICS
            );
        }
    }
}

/// One certificate to sign, in a line: subject, email, profile and validity, extended key
/// usages, and the key (type and SHA-256, as `gitca status` and the ledger show it).
fn carries_line(c: &crate::reconcile::plan::Carries) -> String {
    format!(
        "{}: {}{}{} · profile {} ({}) · {} · {} key {}",
        c.identity,
        c.subject,
        c.email
            .as_deref()
            .map(|e| format!(" · email {e}"))
            .unwrap_or_default(),
        names_of(c, |n| n.to_string()),
        c.profile,
        c.validity,
        c.extended_key_usage.join(", "),
        c.key,
        &c.key_sha256[..c.key_sha256.len().min(16)]
    )
}

/// A server certificate's names, every one, after ` · names `; nothing for users and bots.
fn names_of(c: &crate::reconcile::plan::Carries, encode: impl Fn(&str) -> String) -> String {
    if c.names.is_empty() {
        return String::new();
    }
    let names: Vec<String> = c.names.iter().map(|n| encode(n)).collect();
    format!(" · names {}", names.join(", "))
}

fn render_blocked_human(out: &mut dyn Write, plan: &Plan, diagnosed_below: bool) {
    if plan.blocked.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Blocked (nothing is signed for these; everything else goes ahead):"
    );
    for b in plan.blocked.iter().take(MAX_DIAGNOSTICS) {
        if diagnosed_below && DIAGNOSED.contains(&b.code) {
            let _ = writeln!(
                out,
                "  {}  {}  {} (explained below, with the fix)",
                b.identity,
                where_of(b),
                b.code
            );
            continue;
        }
        let _ = writeln!(
            out,
            "  {}  {}  {}: {}\n    fix: {}",
            b.identity,
            where_of(b),
            b.code,
            b.detail,
            b.fix
        );
        if let Some(a) = &b.acknowledged {
            let _ = writeln!(out, "    acknowledged until {}: {}", a.until, a.reason);
        }
    }
    if plan.blocked.len() > MAX_DIAGNOSTICS {
        let _ = writeln!(
            out,
            "  … and {} more (plan --json lists them all)",
            plan.blocked.len() - MAX_DIAGNOSTICS
        );
    }
}

/// Markdown for a pull-request comment.
pub fn render_plan_markdown(out: &mut dyn Write, plan: &Plan) {
    let _ = writeln!(out, "### gitca plan\n");
    let _ = writeln!(out, "{}", crate::output::encode::markdown(&summary(plan)));
    render_policy_changes_markdown(out, plan);
    render_actions_markdown(out, plan);
    render_signing_markdown(out, plan);
    render_notes_markdown(out, plan);
    render_blocked_markdown(out, plan);
}

/// The changes to gitca.yaml since the base, which apply to every identity.
fn render_policy_changes_markdown(out: &mut dyn Write, plan: &Plan) {
    if !plan.policy_changes.is_empty() {
        let _ = writeln!(
            out,
            "\n**Policy change** in gitca.yaml (applies to every identity):\n"
        );
        for p in &plan.policy_changes {
            let _ = writeln!(out, "- {}", crate::output::encode::markdown(p));
        }
    }
}

/// The actions as a Markdown table.
fn render_actions_markdown(out: &mut dyn Write, plan: &Plan) {
    if !plan.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| identity | kind | action | serial | expiry | reason |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for r in rows(plan) {
            let _ = writeln!(
                out,
                "| {} | {} | **{}** | {} | {} | {} |",
                crate::output::encode::markdown(&r.identity),
                crate::output::encode::markdown(&r.kind),
                crate::output::encode::markdown(&r.action),
                crate::output::encode::markdown(&r.serial),
                crate::output::encode::markdown(&r.expiry),
                crate::output::encode::markdown(&r.reason)
            );
        }
    }
}

/// What each new certificate carries, as a table of the first MAX_DIAGNOSTICS.
fn render_signing_markdown(out: &mut dyn Write, plan: &Plan) {
    if !plan.signing.is_empty() {
        let _ = writeln!(out, "\n**What each new certificate carries**\n");
        let _ = writeln!(
            out,
            "| identity | subject | profile | extended key usage | key |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for c in plan.signing.iter().take(MAX_DIAGNOSTICS) {
            let _ = writeln!(
                out,
                "| {} | {}{}{} | {} ({}) | {} | {} `{}` |",
                crate::output::encode::markdown(&c.identity),
                crate::output::encode::markdown(&c.subject),
                c.email
                    .as_deref()
                    .map(|e| format!(" · email {}", crate::output::encode::markdown(e)))
                    .unwrap_or_default(),
                names_of(c, crate::output::encode::markdown),
                crate::output::encode::markdown(&c.profile),
                crate::output::encode::markdown(&c.validity),
                crate::output::encode::markdown(&c.extended_key_usage.join(", ")),
                crate::output::encode::markdown(&c.key),
                &c.key_sha256[..c.key_sha256.len().min(16)]
            );
        }
    }
}

/// What changes for those who read the new certificates, the first MAX_DIAGNOSTICS of them.
fn render_notes_markdown(out: &mut dyn Write, plan: &Plan) {
    if !plan.notes.is_empty() {
        let _ = writeln!(
            out,
            "\n**⚠ Warnings**: what changes for those who read the new certificates\n"
        );
        for n in plan.notes.iter().take(MAX_DIAGNOSTICS) {
            let _ = writeln!(
                out,
                "- ⚠ **{}**: {}",
                crate::output::encode::markdown(&n.identity),
                crate::output::encode::markdown(&n.message)
            );
        }
        if plan.notes.len() > MAX_DIAGNOSTICS {
            let _ = writeln!(
                out,
                "\n… and {} more warnings (`gitca plan --json` lists them all).",
                plan.notes.len() - MAX_DIAGNOSTICS
            );
        }
    }
}

/// The blocked identities with the fix for each, as a table of the first MAX_DIAGNOSTICS.
fn render_blocked_markdown(out: &mut dyn Write, plan: &Plan) {
    if !plan.blocked.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "**Blocked**: nothing is signed for these; everything else goes ahead.\n"
        );
        let _ = writeln!(out, "| identity | where | problem | fix |");
        let _ = writeln!(out, "|---|---|---|---|");
        for b in plan.blocked.iter().take(MAX_DIAGNOSTICS) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                crate::output::encode::markdown(&b.identity),
                crate::output::encode::markdown(&where_of(b)),
                crate::output::encode::markdown(&match &b.acknowledged {
                    None => format!("{}: {}", b.code, b.detail),
                    Some(a) => format!(
                        "{}: {} (acknowledged until {}: {})",
                        b.code, b.detail, a.until, a.reason
                    ),
                }),
                crate::output::encode::markdown(&b.fix)
            );
        }
        if plan.blocked.len() > MAX_DIAGNOSTICS {
            let _ = writeln!(
                out,
                "\n… and {} more blocked identities (`gitca plan --json` lists them all).",
                plan.blocked.len() - MAX_DIAGNOSTICS
            );
        }
    }
}

/// The JSON document of `plan --json` (format version 1; see docs/formats.md).
pub fn plan_json(plan: &Plan, now: OffsetDateTime) -> serde_json::Value {
    let mut doc = json!({
        "format_version": 1,
        "now": fmt_time(now),
        "changes": !plan.is_empty(),
        "summary": {
            "issue": plan.count(Op::Issue),
            "reissue": plan.count(Op::Reissue),
            "renew": plan.count(Op::Renew),
            "revoke": plan.count(Op::Revoke),
            "crl": plan.crl.is_some(),
        },
        "actions": plan.actions,
        "crl": plan.crl,
        "repair": plan.repair,
        "blocked": plan.blocked,
        "policy_changes": plan.policy_changes,
    });
    if !plan.signing.is_empty() {
        doc["signing"] = json!(plan.signing);
    }
    if !plan.notes.is_empty() {
        doc["notes"] = json!(plan.notes);
    }
    // A retiring intermediate (offline root) only: single-level documents stay as they were.
    if plan.previous_crl.is_some() || plan.retire_previous {
        doc["previous_crl"] = json!(plan.previous_crl);
        doc["retire_previous"] = json!(plan.retire_previous);
    }
    doc
}

/// The reconcile commit's message: a one-line summary, then one line per action.
pub fn commit_message(plan: &Plan, issued: &[(String, String)]) -> String {
    let serial_of: std::collections::HashMap<&str, &str> = issued
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let mut head = Vec::new();
    for (op, word) in [
        (Op::Issue, "issued"),
        (Op::Reissue, "reissued"),
        (Op::Renew, "renewed"),
        (Op::Revoke, "revoked"),
    ] {
        let n = plan.count(op);
        if n > 0 {
            head.push(format!("{n} {word}"));
        }
    }
    if plan.repair.is_some() {
        head.push("restored the sealed ledger and CRL".into());
    }
    if plan.retire_previous {
        head.push("retired the previous intermediate".into());
    }
    if head.is_empty() {
        head.push("CRL refresh".into());
    }
    let mut msg = format!("gitca: reconcile: {}\n\n", head.join(", "));
    for a in &plan.actions {
        let serial = match a.op {
            Op::Revoke => a.serial.clone().unwrap_or_default(),
            _ => serial_of
                .get(a.identity.as_str())
                .map(|s| s.to_string())
                .unwrap_or_default(),
        };
        let what = match a.revocation {
            Some(r) => format!("revoke ({r})"),
            None => a.op.as_str().to_string(),
        };
        msg.push_str(&format!(
            "{what} {} {serial}: {}: {}\n",
            a.identity, a.reason.code, a.reason.detail
        ));
    }
    if let Some(why) = &plan.repair {
        msg.push_str(&format!("restore ledger.tsv and crl/ca.crl: {why}\n"));
    }
    if let Some(c) = &plan.crl {
        msg.push_str(&format!(
            "crl #{} next update {}: {}: {}\n",
            c.number,
            fmt_time(c.next_update),
            c.reason.code,
            c.reason.detail
        ));
    }
    if let Some(c) = &plan.previous_crl {
        msg.push_str(&format!(
            "previous crl #{} next update {}: {}: {}\n",
            c.number,
            fmt_time(c.next_update),
            c.reason.code,
            c.reason.detail
        ));
    }
    if plan.retire_previous {
        msg.push_str("retire the previous intermediate: no certificate it signed is valid\n");
    }
    msg
}

/// What reconcile prints after applying.
pub fn render_applied(
    out: &mut dyn Write,
    plan: &Plan,
    issued: &[(String, String)],
    commit: Option<git2::Oid>,
) {
    // The blocked identities' diagnostics follow on stderr (even with --quiet): each is
    // named here once, not told twice.
    render_human(out, plan, true);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Signed {} certificate(s){}.",
        issued.len(),
        if plan.crl.is_some() {
            " and the CRL"
        } else {
            ""
        }
    );
    match commit {
        Some(oid) => {
            if plan.crl.is_some() {
                let _ = writeln!(out, "Committed {}. Push it; the publish job (`gitca publish`) serves the new CRL and servers install it with `gitca deploy crl`.", &oid.to_string()[..12]);
            } else {
                let _ = writeln!(out, "Committed {}. Push it.", &oid.to_string()[..12]);
            }
        }
        None => {
            let _ = writeln!(out, "Not committed (--no-commit): review with `git status` and commit the files yourself.");
        }
    }
}
