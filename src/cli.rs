//! The command line: clap definitions and the dispatch to each command's `run_*` function.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use time::OffsetDateTime;

use crate::authority::custody::{self, Custody, KeySource};
use crate::error::{Error, Result};
use crate::repository::config::Dur;

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

#[derive(Debug, Args)]
pub struct IdentityArg {
    /// age identity file (or unencrypted SSH private key) that decrypts the key this command
    /// needs: ca/ca.key.age, or ca/root.key.age for `gitca root …` and `rekey --root`.
    /// Also: GITCA_IDENTITY (the identity text), GITCA_IDENTITY_FILE, GITCA_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// The PKCS#11 library of the token that holds the key, when the repository records one
    /// (ca/ca.key.pkcs11). Also: GITCA_PKCS11_MODULE. The PIN: GITCA_PKCS11_PIN, else asked.
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
}

impl IdentityArg {
    /// Where the key comes from: these flags, then the environment.
    pub fn key_source(self) -> KeySource {
        let mut source = KeySource::from_env(self.identity);
        if self.pkcs11_module.is_some() {
            source.token.module = self.pkcs11_module;
        }
        source
    }
}

#[derive(Debug, Args)]
pub struct CustodyArgs {
    /// Encrypt the CA key to this age (age1…) or SSH (ssh-ed25519/ssh-rsa) public key. Repeatable.
    #[arg(long = "recipient", short = 'r', value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// Encrypt to every recipient listed in FILE (age's recipients-file format).
    #[arg(long, short = 'R', value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,
    /// Encrypt with a passphrase (scrypt): GITCA_PASSPHRASE, else asked twice on the terminal.
    /// Not together with recipients (the age format forbids it); for a break-glass copy next
    /// to CI, see docs/custody.md.
    #[arg(long)]
    pub passphrase: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a CA repository: key, self-signed CA certificate, encrypted key, config, empty CRL.
    #[command(
        after_help = "Example:\n  age-keygen -o ~/.config/gitca/ca.agekey\n  gitca init -C my-ca --name \"Registry CA\" --organization \"Example Corp\" \\\n      --recipient \"$(age-keygen -y ~/.config/gitca/ca.agekey)\""
    )]
    Init {
        /// The CA's common name.
        #[arg(long)]
        name: String,
        /// Organization (O) of the CA and of every certificate it issues (default: the name).
        #[arg(long)]
        organization: Option<String>,
        /// p256 (default), p384, rsa3072 or rsa4096.
        #[arg(long, default_value = "p256", value_name = "TYPE")]
        key_type: String,
        /// Lifetime of the CA certificate (the root's, with --offline-root).
        #[arg(long, default_value = "10y", value_name = "DURATION")]
        validity: String,
        #[command(flatten)]
        custody: CustodyArgs,
        /// Keep the root offline: its key is encrypted to the root custodians only
        /// (--root-recipient), and an issuing intermediate's key to CI (--recipient) and the
        /// custodians. Reconcile then never needs the root; `gitca root …` ceremonies do.
        #[arg(long)]
        offline_root: bool,
        /// A root custodian's age (age1…) or SSH public key. Repeatable.
        #[arg(
            long = "root-recipient",
            value_name = "RECIPIENT",
            requires = "offline_root"
        )]
        root_recipients: Vec<String>,
        /// Root custodians listed in FILE (age's recipients-file format).
        #[arg(long, value_name = "FILE", requires = "offline_root")]
        root_recipients_file: Vec<PathBuf>,
        /// Lifetime of the issuing intermediate (--offline-root).
        #[arg(long, default_value = "5y", value_name = "DURATION")]
        intermediate_validity: String,
        /// Keep the CA key in a PKCS#11 token instead of age: the RFC 7512 URI of the token and
        /// key, e.g. `pkcs11:token=ca-hsm;object=gitca-ca`. Adopts the key it names, or makes
        /// one with --pkcs11-generate. No PIN in it: GITCA_PKCS11_PIN, else asked.
        #[arg(long, value_name = "URI", conflicts_with_all = ["recipients", "recipients_file", "passphrase", "offline_root"])]
        pkcs11: Option<String>,
        /// Generate the CA key in the token (sensitive, never extractable) instead of adopting one.
        #[arg(long, requires = "pkcs11")]
        pkcs11_generate: bool,
        /// The token's PKCS#11 library (also GITCA_PKCS11_MODULE), e.g.
        /// /usr/lib/softhsm/libsofthsm2.so.
        #[arg(long, value_name = "PATH", requires = "pkcs11")]
        pkcs11_module: Option<PathBuf>,
    },
    /// Re-encrypt the CA key for a new set of custodians and commit (the key itself stays).
    #[command(
        after_help = "Examples:\n  gitca rekey --identity ~/ca.agekey --add age1newcustodian…      # someone joins\n  gitca rekey --identity ~/ca.agekey --remove age1leaver…         # someone leaves\n  gitca rekey --identity ~/ca.agekey -r age1alice… -r age1ci…      # the whole set\n  gitca rekey --root --identity ~/custodian.agekey --add age1…    # the offline root's custodians\n\nA removed custodian can still decrypt the old ciphertext from git history: see docs/custody.md."
    )]
    Rekey {
        #[command(flatten)]
        identity: IdentityArg,
        #[command(flatten)]
        custody: CustodyArgs,
        /// Add a recipient to those the key is encrypted to now. Repeatable.
        #[arg(long, value_name = "RECIPIENT", conflicts_with_all = ["recipients", "recipients_file", "passphrase"])]
        add: Vec<String>,
        /// Remove a recipient from those the key is encrypted to now. Repeatable.
        #[arg(long, value_name = "RECIPIENT", conflicts_with_all = ["recipients", "recipients_file", "passphrase"])]
        remove: Vec<String>,
        /// Rekey the offline root's key (ca/root.key.age) instead of the CA key.
        #[arg(long)]
        root: bool,
    },
    /// Adopt a CA built with the classic `openssl ca` recipe (index.txt, newcerts/, private/).
    #[command(
        after_help = "Example:\n  GITCA_IMPORT_PASSPHRASE=… gitca import-openssl ./old-ca -C new-ca --recipient age1…\n\nThe CA certificate and key are kept, so every certificate openssl issued keeps verifying;\nits revocations stay on the CRL and CRL numbers continue after openssl's."
    )]
    ImportOpenssl {
        /// The openssl CA directory (holding index.txt).
        source: PathBuf,
        /// The CA certificate (default: the one self-signed CA certificate in DIR or DIR/certs).
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        /// The CA key (default: the one file in DIR/private); its passphrase comes from
        /// GITCA_IMPORT_PASSPHRASE or the terminal.
        #[arg(long, value_name = "FILE")]
        ca_key: Option<PathBuf>,
        #[command(flatten)]
        custody: CustodyArgs,
    },
    /// Operations on the CA itself.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Validate the repository: YAML, CSRs, stray private keys, ledger/certs/CRL integrity, time.
    #[command(after_help = "Example (pull-request job):\n  gitca check --base origin/main")]
    Check {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Compare with this revision and flag what a pull request must not change by hand.
        #[arg(long, value_name = "REV")]
        base: Option<String>,
    },
    /// Show what reconcile would do, with a reason per action. Needs no CA key.
    #[command(
        after_help = "Example:\n  gitca plan --markdown > plan.md\n  gitca plan --detailed-exitcode   # 0: nothing to do, 2: changes pending, 1: error"
    )]
    Plan {
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
    },
    /// Issue, renew and revoke to match the declared identities; refresh the CRL; commit.
    #[command(
        after_help = "Example (CI, after merge and daily):\n  GITCA_IDENTITY=\"$CA_AGE_IDENTITY\" gitca reconcile && git push"
    )]
    Reconcile {
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
    },
    /// Identities, serials, expiry, revocations and the CRL's age.
    #[command(
        after_help = "Example (monitoring, daily; silent unless something needs attention):\n  gitca status -q --expiring 14d || alert
\n--expiring D exits 1 when a certificate or the CA expires within D, or when the CRL has not been\nre-signed in time (less than crl.refresh_before minus a day left: the daily reconcile stopped)."
    )]
    Status {
        #[arg(long)]
        json: bool,
        /// Exit 1 when a certificate or the CA expires within DURATION, or the CRL is overdue.
        #[arg(long, value_name = "DURATION")]
        expiring: Option<String>,
        /// List every revoked certificate: who, when, why, and until when it stays on the CRL.
        #[arg(long)]
        revoked: bool,
    },
    /// The person's side: make a key (kept outside the repo) and add a CSR and YAML entry.
    #[command(
        after_help = "Example:\n  gitca request alice --email alice@example.com --group push\n  git add csr/alice.csr identities/ && git commit -m 'onboard alice'"
    )]
    Request(crate::repository::request::RequestArgs),
    /// Edit one identity's entry in place, in whichever identities file declares it: revoke
    /// (with a reason), reinstate, offboard. Shows the plan that follows.
    #[command(
        subcommand,
        after_help = "Examples:\n  gitca identity revoke robert --reason key-compromise\n  gitca identity reinstate robert      # after `gitca request robert --rotate`\n  gitca identity offboard carol"
    )]
    Identity(crate::repository::entry::IdentityCommand),
    /// Write Docker/Podman certs.d files for NAME: client.cert (leaf first), client.key, ca.crt.
    #[command(
        after_help = "Example:\n  sudo gitca bundle alice --key ~/.config/gitca/keys/alice.key --registry registry.example.com:5000"
    )]
    Bundle(crate::relying::bundle::BundleArgs),
    /// Explain why a client certificate would be refused, and how to fix it.
    #[command(
        after_help = "Example:\n  gitca doctor --cert client.cert --key client.key\n  gitca doctor --certs-dir /etc/docker/certs.d/registry.example.com:5000"
    )]
    Doctor(crate::relying::doctor::DoctorArgs),
    /// Prove, offline, that every certificate in the ledger was issued by a signed commit for
    /// what its parent declared, every revocation reached the CRL and CRL numbers only grew.
    #[command(
        after_help = "Example (anyone, from a clone; in CI after each push):\n  gitca audit\n  gitca audit --json\n\nExit 0: history proves out; 1: the first break, with its commit and what to do.\nThe signers are ca/allowed_signers (docs/custody.md)."
    )]
    Audit {
        #[arg(long)]
        json: bool,
        /// The allowed signers you trust, kept apart from the repository (a copy of
        /// ca/allowed_signers from when you last checked): the history's first signers file
        /// must be signed by one of them. Without it the first file vouches for itself.
        #[arg(long, value_name = "FILE")]
        signers: Option<PathBuf>,
    },
    /// Write the CA's public outputs as a static tree for a web server, object store or Pages.
    #[command(
        after_help = "Example (CI, after reconcile):\n  gitca publish public/\n\nDIR gets ca.crt, ca.crl (DER), ca.crl.pem, certs/NAME.crt and index.json."
    )]
    Publish {
        /// The directory to write (outside the CA repository).
        #[arg(value_name = "DIR")]
        target: PathBuf,
    },
    /// Keep what a machine needs current: the CRL on a server, a certificate on a client.
    #[command(subcommand)]
    Deploy(DeployCommand),
    /// Server-side configuration: nginx (enforces the CRL) or the registry's own TLS.
    #[command(
        subcommand,
        after_help = "Example:\n  gitca export nginx --listen 443 --upstream 127.0.0.1:5000 > /etc/nginx/conf.d/registry.conf\n  gitca export registry --behind-nginx --listen 127.0.0.1:5000 > registry.yml"
    )]
    Export(crate::relying::export::ExportCommand),
    /// Ceremonies of the root custodians (a CA made with `gitca init --offline-root`).
    #[command(subcommand)]
    Root(crate::authority::ceremony::RootCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example:\n  gitca completions bash > /etc/bash_completion.d/gitca")]
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (gitca.1, gitca-reconcile.1, …) into DIR (for packagers).
    #[command(hide = true)]
    Man {
        #[arg(value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// On a server: install the CA's CRL when a newer one, signed by the pinned CA, is published.
    #[command(
        after_help = "Example (nginx in front of the registry; a systemd timer, or --watch 5m):\n  gitca deploy crl --from https://pki.example.com --ca /etc/gitca/ca.crt \\\n      --out /etc/gitca/ca.crl --reload 'nginx -t && nginx -s reload' \\\n      --metrics /var/lib/node_exporter/textfile/gitca-crl.prom\n\nExit codes: 0 current, 1 error or refused, 4 stale (expires within --stale-margin, nothing newer)."
    )]
    Crl(Box<crate::relying::deploy::DeployCrlArgs>),
    /// On a client, bot or node: install the identity's newest certificate for its local key.
    #[command(
        after_help = "Example (a CI bot pulling from the registry):\n  gitca deploy cert ci-builder --key /etc/gitca/ci-builder.key --from https://pki.example.com \\\n      --ca /etc/gitca/ca.crt --registry registry.example.com:5000 --watch 6h\n\nExit codes: 0 current, 1 error or refused, 4 stale (expires within --stale-margin, nothing newer)."
    )]
    Cert(Box<crate::relying::deploy::DeployCertArgs>),
    /// On a server: install the CA's signed admission list as an nginx map, verified against
    /// the history signers it pinned, never older than the one installed.
    #[command(
        after_help = "Example (nginx from `gitca export nginx --admitted /etc/gitca/admitted.map`):\n  gitca deploy admission --from /srv/pki --signers /etc/gitca/allowed_signers \\\n      --out /etc/gitca/admitted.map && nginx -s reload\n\nExit codes: 0 installed or current, 1 refused (nothing installed)."
    )]
    Admission(crate::relying::admission::DeployAdmissionArgs),
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Decrypt the CA key in memory, check it matches ca/ca.crt, print its fingerprint.
    Verify {
        #[command(flatten)]
        identity: IdentityArg,
    },
}

/// The clock: `--now`/GITCA_NOW, else the system time.
pub fn parse_now(now: Option<&str>) -> Result<OffsetDateTime> {
    match now {
        Some(s) => crate::repository::ledger::parse_time(s)
            .ok_or_else(|| Error::BadTime { given: s.into() }),
        None => Ok(OffsetDateTime::now_utc()),
    }
}

fn read_passphrase() -> Result<age::secrecy::SecretString> {
    use std::io::IsTerminal;
    let pass = match std::env::var("GITCA_PASSPHRASE") {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => {
            let a = rpassword::prompt_password("Passphrase for the new CA key: ")
                .map_err(|_| Error::NoPassphrase)?;
            let b = rpassword::prompt_password("Repeat the passphrase: ")
                .map_err(|_| Error::NoPassphrase)?;
            if a != b {
                return Err(Error::PassphraseMismatch);
            }
            a
        }
        Err(_) => return Err(Error::NoPassphrase),
    };
    if pass.is_empty() {
        return Err(Error::EmptyPassphrase);
    }
    Ok(age::secrecy::SecretString::from(pass))
}

/// The new passphrase for `rekey --passphrase`: GITCA_NEW_PASSPHRASE, else asked twice.
fn read_new_passphrase() -> Result<age::secrecy::SecretString> {
    match std::env::var("GITCA_NEW_PASSPHRASE") {
        Ok(p) if p.is_empty() => Err(Error::EmptyPassphrase),
        Ok(p) => Ok(age::secrecy::SecretString::from(p)),
        Err(_) => {
            // Without GITCA_NEW_PASSPHRASE, never reuse GITCA_PASSPHRASE (the old one) silently.
            use std::io::IsTerminal;
            if !std::io::stdin().is_terminal() {
                return Err(Error::usage(
                    "rekey --passphrase needs the new passphrase",
                    "set GITCA_NEW_PASSPHRASE (GITCA_PASSPHRASE is the current one)",
                ));
            }
            let a = rpassword::prompt_password("New passphrase for the CA key: ")
                .map_err(|_| Error::NoPassphrase)?;
            let b = rpassword::prompt_password("Repeat the new passphrase: ")
                .map_err(|_| Error::NoPassphrase)?;
            if a != b {
                return Err(Error::PassphraseMismatch);
            }
            if a.is_empty() {
                return Err(Error::EmptyPassphrase);
            }
            Ok(age::secrecy::SecretString::from(a))
        }
    }
}

/// Turns the recipient flags into a custody choice, validating every recipient.
pub fn custody_from_args(args: &CustodyArgs) -> Result<Custody> {
    if args.passphrase && !(args.recipients.is_empty() && args.recipients_file.is_empty()) {
        return Err(Error::usage(
            "--passphrase and recipients together: age encrypts a file to recipients or to one passphrase, never both",
            "for a passphrase-protected break-glass copy, make an age identity and protect it with a passphrase (age-keygen | age -p -a > breakglass.age), pass its public key as one more --recipient, and keep breakglass.age offline: gitca reads such an identity file, asking for its passphrase (or GITCA_IDENTITY_PASSPHRASE)",
        ));
    }
    if args.passphrase {
        return Ok(Custody::Passphrase(read_passphrase()?));
    }
    let mut all = args.recipients.clone();
    for f in &args.recipients_file {
        all.extend(custody::read_recipients_file(f)?);
    }
    Ok(Custody::Recipients(custody::validate_recipients(&all)?))
}

/// After a reconcile: every held or refused identity's diagnostic on stderr (even with
/// --quiet: this is what a cron job must show), a one-line summary, and the exit code. An
/// acknowledged blocked identity is shown the same way, but alone it keeps the exit at 0.
fn report_attention(outcome: &crate::reconcile::apply::Outcome) -> u8 {
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
    let shown = crate::output::report::MAX_DIAGNOSTICS;
    for e in outcome.diagnostics.iter().take(shown) {
        crate::output::redact::stderr(&crate::reconcile::review::render_diagnostic(e));
    }
    if outcome.diagnostics.len() > shown {
        crate::output::redact::stderr(&format!(
            "… and {} more problem(s) (gitca check lists them all)",
            outcome.diagnostics.len() - shown
        ));
    }
    let listed = |names: Vec<String>| {
        let more = if names.len() > 20 { ", …" } else { "" };
        format!(
            "{}{more}",
            names.into_iter().take(20).collect::<Vec<_>>().join(", ")
        )
    };
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
    parts.extend(acknowledged);
    crate::output::redact::stderr(&format!(
        "gitca: reconcile applied every revocation and CRL update it could{}, but needs attention: {}",
        if outcome.commit.is_some() { " and committed them" } else { "" },
        parts.join("; ")
    ));
    crate::reconcile::apply::EXIT_ATTENTION
}

/// Writes one manual page per command (`gitca.1`, `gitca-deploy-crl.1`, …) into `target`.
fn write_manual(target: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(target).map_err(Error::io("create", target))?;
    let cmd = <Cli as clap::CommandFactory>::command();
    clap_mangen::generate_to(cmd, target).map_err(Error::io("write manual pages in", target))
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<u8> {
    let now = parse_now(cli.now.as_deref())?;
    // Long-running commands (deploy --watch) read the clock each time unless it was fixed.
    let fixed_now = cli.now.is_some().then_some(now);
    let dir = cli.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if let Some(key) = cli.signing_key.clone() {
        crate::repository::signer::set_flag(key);
    }
    let stdout = std::io::stdout();
    let mut lock = crate::output::redact::Writer::new(
        stdout.lock(),
        crate::output::redact::Redactor::from_env(),
    );
    let mut sink = std::io::sink();
    let out: &mut dyn Write = if cli.quiet { &mut sink } else { &mut lock };
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "gitca", &mut script);
            // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
            let _ = out.write_all(&script);
            Ok(0)
        }
        Command::Root(cmd) => {
            crate::authority::ceremony::run(&dir, now, cmd, out)?;
            Ok(0)
        }
        Command::Man { out: target } => {
            write_manual(&target)?;
            Ok(0)
        }
        Command::Init {
            name,
            organization,
            key_type,
            validity,
            custody,
            offline_root,
            root_recipients,
            root_recipients_file,
            intermediate_validity,
            pkcs11,
            pkcs11_generate,
            pkcs11_module,
        } => {
            let key_type = key_type.parse()?;
            let validity = Dur::parse(&validity)?;
            let (custody, token) = match pkcs11 {
                Some(uri) => (
                    Custody::Recipients(Vec::new()),
                    Some(crate::authority::init::TokenInit {
                        uri: crate::authority::token::Pkcs11Uri::parse(&uri)?,
                        generate: pkcs11_generate,
                        access: crate::authority::token::TokenAccess::from_env(pkcs11_module),
                    }),
                ),
                None => (custody_from_args(&custody)?, None),
            };
            let offline_root = if offline_root {
                let mut custodians = root_recipients;
                for f in &root_recipients_file {
                    custodians.extend(custody::read_recipients_file(f)?);
                }
                if custodians.is_empty() {
                    return Err(Error::usage(
                        "--offline-root needs the root custodians",
                        "pass each custodian's age recipient with --root-recipient age1… (or --root-recipients-file FILE); CI is not one of them",
                    ));
                }
                Some(crate::authority::init::OfflineRoot {
                    custodians,
                    intermediate_validity: Dur::parse(&intermediate_validity)?,
                })
            } else {
                None
            };
            crate::authority::init::run_init(
                crate::authority::init::InitOptions {
                    dir,
                    organization: organization.unwrap_or_else(|| name.clone()),
                    name,
                    key_type,
                    validity,
                    custody,
                    now,
                    offline_root,
                    token,
                },
                out,
            )?;
            Ok(0)
        }
        Command::Rekey {
            identity,
            custody,
            add,
            remove,
            root,
        } => {
            let source = identity.key_source();
            let change = if !add.is_empty() || !remove.is_empty() {
                crate::authority::init::Rekey::Change { add, remove }
            } else if custody.passphrase {
                if root {
                    return Err(Error::usage(
                        "the root key is for its custodians' age identities",
                        "pass them with -r age1… (or --add/--remove)",
                    ));
                }
                crate::authority::init::Rekey::To(Custody::Passphrase(read_new_passphrase()?))
            } else {
                crate::authority::init::Rekey::To(custody_from_args(&custody)?)
            };
            let vault = if root {
                crate::authority::hierarchy::ROOT_VAULT
            } else {
                custody::ISSUING
            };
            crate::authority::init::run_rekey(&dir, &source, &vault, change, out)?;
            Ok(0)
        }
        Command::ImportOpenssl {
            source,
            ca_cert,
            ca_key,
            custody,
        } => {
            let custody = custody_from_args(&custody)?;
            let passphrase = match std::env::var("GITCA_IMPORT_PASSPHRASE") {
                Ok(p) => Some(zeroize::Zeroizing::new(p)),
                Err(_) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                    Some(zeroize::Zeroizing::new(
                        rpassword::prompt_password("Passphrase of the openssl CA key: ")
                            .map_err(|_| Error::NoPassphrase)?,
                    ))
                }
                Err(_) => None,
            };
            crate::authority::import::run_import(
                crate::authority::import::ImportOptions {
                    source,
                    dir,
                    ca_cert,
                    ca_key,
                    passphrase,
                    custody,
                    now,
                },
                out,
            )?;
            Ok(0)
        }
        Command::Ca(CaCommand::Verify { identity }) => {
            crate::authority::init::run_ca_verify(&dir, &identity.key_source(), out)?;
            Ok(0)
        }
        Command::Check { json, base } => {
            crate::reconcile::review::run_check(&dir, now, json, base.as_deref(), out)
        }
        Command::Plan {
            json,
            markdown,
            detailed_exitcode,
            base,
        } => {
            let format = if json {
                crate::reconcile::review::PlanFormat::Json
            } else if markdown {
                crate::reconcile::review::PlanFormat::Markdown
            } else {
                crate::reconcile::review::PlanFormat::Human
            };
            crate::reconcile::review::run_plan(
                &dir,
                now,
                format,
                detailed_exitcode,
                base.as_deref(),
                out,
            )
        }
        Command::Reconcile {
            identity,
            no_commit,
            allow_dirty,
        } => {
            let outcome = crate::reconcile::apply::run_reconcile(
                &crate::reconcile::apply::ReconcileOptions {
                    dir,
                    now,
                    key_source: identity.key_source(),
                    no_commit,
                    allow_dirty,
                    quiet: cli.quiet,
                },
                out,
            )?;
            Ok(report_attention(&outcome))
        }
        Command::Status {
            json,
            expiring,
            revoked,
        } => {
            let window = expiring.as_deref().map(Dur::parse).transpose()?;
            let (code, line) = crate::reconcile::status::run_status(
                &dir,
                now,
                &crate::reconcile::status::StatusOptions {
                    json,
                    expiring: window.map(|d| d.0),
                    revoked,
                },
                out,
            )?;
            // The one line a cron job shows, even with --quiet.
            if let (true, Some(line)) = (cli.quiet, line) {
                let _ = writeln!(
                    std::io::stdout(),
                    "{}",
                    crate::output::redact::Redactor::from_env().line(&line)
                );
            }
            Ok(code)
        }
        Command::Request(args) => {
            crate::repository::request::run_request(&dir, &args, out)?;
            Ok(0)
        }
        Command::Identity(cmd) => crate::repository::entry::run_identity(&dir, now, &cmd, out),
        Command::Bundle(args) => {
            crate::relying::bundle::run_bundle(&dir, now, &args, out)?;
            Ok(0)
        }
        Command::Doctor(args) => crate::relying::doctor::run_doctor(&dir, now, &args, out),
        Command::Audit { json, signers } => {
            crate::repository::audit::run_audit(&dir, json, signers.as_deref(), out)
        }
        Command::Publish { target } => {
            crate::relying::publish::run_publish(&dir, &target, now, out)?;
            Ok(0)
        }
        Command::Deploy(DeployCommand::Admission(args)) => {
            crate::relying::admission::run_deploy_admission(&args, out)
        }
        Command::Deploy(DeployCommand::Crl(args)) => {
            crate::relying::deploy::run_deploy_crl(&args, fixed_now, out)
        }
        Command::Deploy(DeployCommand::Cert(args)) => {
            crate::relying::deploy::run_deploy_cert(&args, fixed_now, out)
        }
        Command::Export(cmd) => {
            crate::relying::export::run_export(&dir, &cmd, out)?;
            Ok(0)
        }
    }
}
