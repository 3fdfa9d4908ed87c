//! The `gitca` binary: parse the command line, run the command, render any error, exit.
//!
//! Exit codes: 0 success; 1 error (including bad usage); 2 changes pending
//! (`plan --detailed-exitcode`) or, for `status --expiring`, something expires in the window.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Diagnostics wrap to the terminal; in CI logs and pipes they stay on one line per sentence,
    // so paths and recipients can be searched for. No colours: every line gitca writes passes
    // the terminal encoder, which shows escape sequences instead of obeying them (a value from
    // a pull request must never move the cursor or forge a line), so ours would show too.
    let _ = miette::set_hook(Box::new(|_| {
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal();
        Box::new(
            miette::MietteHandlerOpts::new()
                .wrap_lines(tty)
                .color(false)
                .terminal_links(false)
                .show_related_errors_as_nested()
                .build(),
        )
    }));
    // Everything printed goes through the redactor (invariant 11; see src/output/redact.rs).
    let redactor = gitca::output::redact::Redactor::from_env();
    let cli = match gitca::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let text = redactor.text(&e.render().to_string());
            // Never print!: it panics when the reader has gone (`gitca --help | head -1`).
            use std::io::Write;
            let _ = if e.use_stderr() {
                std::io::stderr().write_all(text.as_bytes())
            } else {
                std::io::stdout().write_all(text.as_bytes())
            };
            // clap exits 2 on usage errors, but 2 means "changes pending" here.
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let code = match gitca::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!(
                "{}",
                redactor.text(&format!("{:?}", miette::Report::new(e)))
            );
            ExitCode::from(1)
        }
    };
    if std::env::var_os("GITCA_TIMINGS").is_some() {
        // Peak resident memory and CPU time of every thread, for the benchmarks
        // (docs/performance.md).
        let memory = gitca::output::usage::memory();
        eprintln!("gitca peak RSS: {} kB", memory.peak);
        if let Some(us) = gitca::output::usage::cpu_micros() {
            eprintln!("gitca cpu: {us} us");
        }
        // What history cost (invariant 16: bounded whatever a merge added).
        let (commits, bytes) = gitca::repository::history::work();
        eprintln!("gitca history: {commits} commits walked, {bytes} bytes read");
    }
    code
}
