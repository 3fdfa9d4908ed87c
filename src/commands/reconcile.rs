//! `gitca reconcile`: issue, renew and revoke to match the declared identities, refresh the
//! CRL, commit; then tell a cron job what needs attention (exit 3).

use std::io::Write;

use super::keys::IdentityArg;
use super::Context;
use crate::error::Result;
use crate::reconcile::apply::{run_reconcile, Outcome, ReconcileOptions, EXIT_ATTENTION};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    identity: IdentityArg,
    /// Write the files but do not commit.
    #[arg(long)]
    no_commit: bool,
    /// Run even with uncommitted changes to gitca's files. Uncommitted identities, CSRs or
    /// gitca.yaml are refused unless --no-commit: a commit never holds certificates for
    /// inputs it does not hold.
    #[arg(long)]
    allow_dirty: bool,
}

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    let outcome = run_reconcile(
        &ReconcileOptions {
            dir: ctx.dir.clone(),
            now: ctx.now,
            key_source: args.identity.key_source(),
            no_commit: args.no_commit,
            allow_dirty: args.allow_dirty,
            quiet: ctx.quiet,
        },
        out,
    )?;
    Ok(report_attention(&outcome))
}

/// After a reconcile: every held or refused identity's diagnostic on stderr (even with
/// --quiet: this is what a cron job must show), a one-line summary, and the exit code. An
/// acknowledged blocked identity is shown the same way, but alone it keeps the exit at 0.
fn report_attention(outcome: &Outcome) -> u8 {
    let acknowledged: Vec<String> = outcome
        .plan
        .blocked
        .iter()
        .filter_map(|b| {
            let a = b.acknowledged.as_ref()?;
            Some(format!("{} (until {}: {})", b.identity, a.until, a.reason))
        })
        .collect();
    if !outcome.attention && acknowledged.is_empty() {
        return 0;
    }
    print_diagnostics(&outcome.diagnostics);
    let acknowledged = if acknowledged.is_empty() {
        None
    } else {
        Some(format!(
            "still blocked, acknowledged: {}",
            listed(acknowledged)
        ))
    };
    if !outcome.attention {
        crate::output::redact::stderr(&format!(
            "gitca: reconcile applied everything it could; {}",
            acknowledged.unwrap_or_default()
        ));
        return 0;
    }
    let mut parts = attention_parts(outcome);
    parts.extend(acknowledged);
    crate::output::redact::stderr(&format!(
        "gitca: reconcile applied every revocation and CRL update it could{}, but needs attention: {}",
        if outcome.commit.is_some() { " and committed them" } else { "" },
        parts.join("; ")
    ));
    EXIT_ATTENTION
}

/// The first MAX_DIAGNOSTICS diagnostics on stderr, and how many more there are.
fn print_diagnostics(diagnostics: &[crate::error::Error]) {
    let shown = crate::output::report::MAX_DIAGNOSTICS;
    for e in diagnostics.iter().take(shown) {
        crate::output::redact::stderr(&crate::reconcile::review::render_diagnostic(e));
    }
    if diagnostics.len() > shown {
        crate::output::redact::stderr(&format!(
            "… and {} more problem(s) (gitca check lists them all)",
            diagnostics.len() - shown
        ));
    }
}

/// At most 20 names, comma-separated.
fn listed(names: Vec<String>) -> String {
    let more = if names.len() > 20 { ", …" } else { "" };
    format!(
        "{}{more}",
        names.into_iter().take(20).collect::<Vec<_>>().join(", ")
    )
}

/// What needs attention, one part each: what blocks every identity, the identities not signed
/// for, a repair of the sealed outputs.
fn attention_parts(outcome: &Outcome) -> Vec<String> {
    let (whole, blocked): (Vec<_>, Vec<_>) = outcome
        .plan
        .unacknowledged()
        .partition(|b| b.identity == "*");
    let blocked: Vec<String> = blocked.into_iter().map(|b| b.identity.clone()).collect();
    let mut parts: Vec<String> = whole
        .into_iter()
        .map(|b| format!("{} ({})", b.code, b.detail))
        .collect();
    if !blocked.is_empty() {
        parts.push(format!(
            "{} identity(ies) not signed for: {}",
            blocked.len(),
            listed(blocked)
        ));
    }
    if let Some(why) = &outcome.plan.repair {
        parts.push(format!("restored the sealed ledger and CRL ({why})"));
    }
    if parts.is_empty() {
        parts.push("the problems listed above".into());
    }
    parts
}
