//! `gitca status`: identities, serials, expiry, revocations and the CRL's age; with
//! `--expiring`, the exit code a monitoring job alerts on.

use std::io::Write;

use super::Context;
use crate::error::Result;
use crate::output::redact::Redactor;
use crate::reconcile::status::{run_status, StatusOptions};
use crate::repository::config::Dur;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    json: bool,
    /// Exit 1 when a certificate or the CA expires within DURATION, or the CRL is overdue.
    #[arg(long, value_name = "DURATION")]
    expiring: Option<String>,
    /// List every revoked certificate: who, when, why, and until when it stays on the CRL.
    #[arg(long)]
    revoked: bool,
}

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    let window = args.expiring.as_deref().map(Dur::parse).transpose()?;
    let (code, line) = run_status(
        &ctx.dir,
        ctx.now,
        &StatusOptions {
            json: args.json,
            expiring: window.map(|d| d.0),
            revoked: args.revoked,
        },
        out,
    )?;
    // The one line a cron job shows, even with --quiet.
    if let (true, Some(line)) = (ctx.quiet, line) {
        let _ = writeln!(std::io::stdout(), "{}", Redactor::from_env().line(&line));
    }
    Ok(code)
}
