//! `gitca completions` and the hidden `gitca man`: what shells and packagers need.

use std::io::Write;
use std::path::PathBuf;

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    #[arg(value_name = "SHELL")]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    #[arg(value_name = "DIR")]
    out: PathBuf,
}

/// Prints the completion script for one shell; `cmd` is the whole command line's definition.
pub fn completions(
    args: CompletionsArgs,
    mut cmd: clap::Command,
    out: &mut dyn Write,
) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "gitca", &mut script);
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let _ = out.write_all(&script);
    Ok(0)
}

pub fn man(args: ManArgs, cmd: clap::Command) -> Result<u8> {
    write_manual(&args.out, cmd)?;
    Ok(0)
}

/// Writes one manual page per command (`gitca.1`, `gitca-deploy-crl.1`, …) into `target`.
fn write_manual(target: &std::path::Path, cmd: clap::Command) -> Result<()> {
    std::fs::create_dir_all(target).map_err(Error::io("create", target))?;
    clap_mangen::generate_to(cmd, target).map_err(Error::io("write manual pages in", target))
}
