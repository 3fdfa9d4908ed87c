//! The command line: the global flags, the list of subcommands, and the dispatch to each
//! command's module in [`crate::commands`].

use std::io::Write;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};
use time::OffsetDateTime;

use crate::commands::{self, Context};
use crate::error::{Error, Result};

#[derive(Debug, Parser)]
#[command(
    name = "gitca",
    version,
    about = "A private certificate authority run as a git repository",
    long_about = "gitca keeps a private CA in a git repository: identities are declared in YAML, \
each person adds their own CSR, the CA key is age-encrypted, and `gitca reconcile` issues, renews \
and revokes certificates and commits the result.",
    after_help = "Example: the onboarding story\n  gitca init --name \"Registry CA\" --recipient age1…\n  gitca request alice --email alice@example.com   # on alice's machine\n  gitca check && gitca plan                        # in the pull request\n  GITCA_IDENTITY=\"$(cat ca.agekey)\" gitca reconcile  # after the merge\n\nExit codes: 0 success, 1 error (nothing written), 2 changes pending (plan --detailed-exitcode),\n3 reconcile applied what it could and some identities need attention, 4 deploy: stale.\nGuides: docs/ in the source repository (setup, onboarding, CI, deploy, offline root)."
)]
pub struct Cli {
    /// The CA repository (default: the repository containing the current directory).
    #[arg(short = 'C', long = "dir", global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Use this time instead of the clock (RFC 3339), for tests and simulations.
    #[arg(long, global = true, env = "GITCA_NOW", value_name = "RFC3339")]
    pub now: Option<String>,

    /// Print nothing but errors (for cron jobs).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// OpenSSH ed25519 private key that signs gitca's commits (never the CA key); needed when
    /// ca/allowed_signers exists. Also: GITCA_SIGNING_KEY (the key's text), GITCA_SIGNING_KEY_FILE.
    #[arg(long, global = true, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a CA repository: key, self-signed CA certificate, encrypted key, config, empty CRL.
    #[command(
        after_help = "Example:\n  age-keygen -o ~/.config/gitca/ca.agekey\n  gitca init -C my-ca --name \"Registry CA\" --organization \"Example Corp\" \\\n      --recipient \"$(age-keygen -y ~/.config/gitca/ca.agekey)\""
    )]
    Init(commands::init::Args),
    /// Re-encrypt the CA key for a new set of custodians and commit (the key itself stays).
    #[command(
        after_help = "Examples:\n  gitca rekey --identity ~/ca.agekey --add age1newcustodian…      # someone joins\n  gitca rekey --identity ~/ca.agekey --remove age1leaver…         # someone leaves\n  gitca rekey --identity ~/ca.agekey -r age1alice… -r age1ci…      # the whole set\n  gitca rekey --root --identity ~/custodian.agekey --add age1…    # the offline root's custodians\n\nA removed custodian can still decrypt the old ciphertext from git history: see docs/custody.md."
    )]
    Rekey(commands::rekey::Args),
    /// Adopt a CA built with the classic `openssl ca` recipe (index.txt, newcerts/, private/).
    #[command(
        after_help = "Example:\n  GITCA_IMPORT_PASSPHRASE=… gitca import-openssl ./old-ca -C new-ca --recipient age1…\n\nThe CA certificate and key are kept, so every certificate openssl issued keeps verifying;\nits revocations stay on the CRL and CRL numbers continue after openssl's."
    )]
    ImportOpenssl(commands::import::Args),
    /// Operations on the CA itself.
    #[command(subcommand)]
    Ca(commands::ca::Command),
    /// Validate the repository: YAML, CSRs, stray private keys, ledger/certs/CRL integrity, time.
    #[command(after_help = "Example (pull-request job):\n  gitca check --base origin/main")]
    Check(commands::check::Args),
    /// Show what reconcile would do, with a reason per action. Needs no CA key.
    #[command(
        after_help = "Example:\n  gitca plan --markdown > plan.md\n  gitca plan --detailed-exitcode   # 0: nothing to do, 2: changes pending, 1: error"
    )]
    Plan(commands::plan::Args),
    /// Issue, renew and revoke to match the declared identities; refresh the CRL; commit.
    #[command(
        after_help = "Example (CI, after merge and daily):\n  GITCA_IDENTITY=\"$CA_AGE_IDENTITY\" gitca reconcile && git push"
    )]
    Reconcile(commands::reconcile::Args),
    /// Identities, serials, expiry, revocations and the CRL's age.
    #[command(
        after_help = "Example (monitoring, daily; silent unless something needs attention):\n  gitca status -q --expiring 14d || alert
\n--expiring D exits 1 when a certificate or the CA expires within D, or when the CRL has not been\nre-signed in time (less than crl.refresh_before minus a day left: the daily reconcile stopped)."
    )]
    Status(commands::status::Args),
    /// The person's side: make a key (kept outside the repo) and add a CSR and YAML entry.
    #[command(
        after_help = "Example:\n  gitca request alice --email alice@example.com --group push\n  git add csr/alice.csr identities/ && git commit -m 'onboard alice'"
    )]
    Request(commands::request::Args),
    /// Edit one identity's entry in place, in whichever identities file declares it: revoke
    /// (with a reason), reinstate, offboard. Shows the plan that follows.
    #[command(
        subcommand,
        after_help = "Examples:\n  gitca identity revoke robert --reason key-compromise\n  gitca identity reinstate robert      # after `gitca request robert --rotate`\n  gitca identity offboard carol"
    )]
    Identity(commands::identity::Command),
    /// Write Docker/Podman certs.d files for NAME: client.cert (leaf first), client.key, ca.crt.
    #[command(
        after_help = "Example:\n  sudo gitca bundle alice --key ~/.config/gitca/keys/alice.key --registry registry.example.com:5000"
    )]
    Bundle(commands::bundle::Args),
    /// Explain why a client certificate would be refused, and how to fix it.
    #[command(
        after_help = "Example:\n  gitca doctor --cert client.cert --key client.key\n  gitca doctor --certs-dir /etc/docker/certs.d/registry.example.com:5000"
    )]
    Doctor(commands::doctor::Args),
    /// Prove, offline, that every certificate in the ledger was issued by a signed commit for
    /// what its parent declared, every revocation reached the CRL and CRL numbers only grew.
    #[command(
        after_help = "Example (anyone, from a clone; in CI after each push):\n  gitca audit\n  gitca audit --json\n\nExit 0: history proves out; 1: the first break, with its commit and what to do.\nThe signers are ca/allowed_signers (docs/custody.md)."
    )]
    Audit(commands::audit::Args),
    /// Write the CA's public outputs as a static tree for a web server, object store or Pages.
    #[command(
        after_help = "Example (CI, after reconcile):\n  gitca publish public/\n\nDIR gets ca.crt, ca.crl (DER), ca.crl.pem, certs/NAME.crt and index.json."
    )]
    Publish(commands::publish::Args),
    /// Keep what a machine needs current: the CRL on a server, a certificate on a client.
    #[command(subcommand)]
    Deploy(commands::deploy::Command),
    /// Server-side configuration: nginx (enforces the CRL) or the registry's own TLS.
    #[command(
        subcommand,
        after_help = "Example:\n  gitca export nginx --listen 443 --upstream 127.0.0.1:5000 > /etc/nginx/conf.d/registry.conf\n  gitca export registry --behind-nginx --listen 127.0.0.1:5000 > registry.yml"
    )]
    Export(commands::export::Command),
    /// Ceremonies of the root custodians (a CA made with `gitca init --offline-root`).
    #[command(subcommand)]
    Root(commands::root::Command),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example:\n  gitca completions bash > /etc/bash_completion.d/gitca")]
    Completions(commands::manual::CompletionsArgs),
    /// Write the manual pages (gitca.1, gitca-reconcile.1, …) into DIR (for packagers).
    #[command(hide = true)]
    Man(commands::manual::ManArgs),
}

/// The clock: `--now`/GITCA_NOW, else the system time.
pub fn parse_now(now: Option<&str>) -> Result<OffsetDateTime> {
    match now {
        Some(s) => crate::time::parse_time(s).ok_or_else(|| Error::BadTime { given: s.into() }),
        None => Ok(OffsetDateTime::now_utc()),
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<u8> {
    let now = parse_now(cli.now.as_deref())?;
    let ctx = Context {
        dir: cli.dir.clone().unwrap_or_else(|| PathBuf::from(".")),
        now,
        fixed_now: cli.now.is_some().then_some(now),
        quiet: cli.quiet,
    };
    if let Some(key) = cli.signing_key.clone() {
        crate::repository::signer::set_flag(key);
    }
    let stdout = std::io::stdout();
    let redactor = crate::output::redact::Redactor::from_env();
    let mut lock = crate::output::redact::Writer::new(stdout.lock(), redactor);
    let mut sink = std::io::sink();
    let out: &mut dyn Write = if cli.quiet { &mut sink } else { &mut lock };
    match cli.command {
        Command::Init(args) => commands::init::run(&ctx, args, out),
        Command::Rekey(args) => commands::rekey::run(&ctx, args, out),
        Command::ImportOpenssl(args) => commands::import::run(&ctx, args, out),
        Command::Ca(cmd) => commands::ca::run(&ctx, cmd, out),
        Command::Check(args) => commands::check::run(&ctx, args, out),
        Command::Plan(args) => commands::plan::run(&ctx, args, out),
        Command::Reconcile(args) => commands::reconcile::run(&ctx, args, out),
        Command::Status(args) => commands::status::run(&ctx, args, out),
        Command::Request(args) => commands::request::run(&ctx, args, out),
        Command::Identity(cmd) => commands::identity::run(&ctx, cmd, out),
        Command::Bundle(args) => commands::bundle::run(&ctx, args, out),
        Command::Doctor(args) => commands::doctor::run(&ctx, args, out),
        Command::Audit(args) => commands::audit::run(&ctx, args, out),
        Command::Publish(args) => commands::publish::run(&ctx, args, out),
        Command::Deploy(cmd) => commands::deploy::run(&ctx, cmd, out),
        Command::Export(cmd) => commands::export::run(&ctx, cmd, out),
        Command::Root(cmd) => commands::root::run(&ctx, cmd, out),
        Command::Completions(args) => commands::manual::completions(args, Cli::command(), out),
        Command::Man(args) => commands::manual::man(args, Cli::command()),
    }
}
