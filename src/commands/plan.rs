//! `gitca plan`: what reconcile would do, with a reason per action. Needs no CA key.

use std::io::Write;

use super::Context;
use crate::error::Result;
use crate::reconcile::review::{run_plan, PlanFormat};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    #[arg(long)]
    markdown: bool,
    /// Exit 2 when changes are pending, 0 when there are none.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Also run check's comparison with this base revision.
    #[arg(long, value_name = "REV")]
    base: Option<String>,
}

pub fn run(ctx: &Context, args: Args, out: &mut dyn Write) -> Result<u8> {
    let format = if args.json {
        PlanFormat::Json
    } else if args.markdown {
        PlanFormat::Markdown
    } else {
        PlanFormat::Human
    };
    run_plan(
        &ctx.dir,
        ctx.now,
        format,
        args.detailed_exitcode,
        args.base.as_deref(),
        out,
    )
}
