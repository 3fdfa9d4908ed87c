//! Loading a CA repository's declared and recorded state: configuration, identities (with
//! source spans), the ledger, and the current CRL's number and nextUpdate, as the CA sealed
//! them. No CSR is parsed here: a no-op reconcile reads this and stops. The only signatures
//! checked are the CA's own (its certificate, the seal and the CRL).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::authority::ca::{self, CaCert, CrlInfo};
use crate::authority::hierarchy::{self, Hierarchy};
use crate::error::{Error, Result};
use crate::layout::{
    cert_path, CA_CERT, CONFIG_FILE, CRL_FILE, LEDGER_FILE, PREVIOUS_CERT, ROOT_CERT, SEAL_FILE,
};
use crate::reconcile::plan::{self, CrlState, Plan};
use crate::reconcile::policy::VerifiedCsr;
use crate::repository::config::{self, Config};
use crate::repository::confined::Dir;
use crate::repository::git::CaRepo;
use crate::repository::inventory::{self, Blocked, Identity, Inventory};
use crate::repository::ledger::{self, Ledger};
use crate::repository::seal::{self, Standing};

pub struct State {
    pub config: Config,
    pub inventory: Inventory,
    pub ledger: Ledger,
    pub crl: CrlInfo,
    /// The issuing CA: the CA itself, or the current intermediate below an offline root.
    pub ca: CaCert,
    /// The offline root and the intermediates (`gitca init --offline-root`), if any.
    pub hierarchy: Option<Hierarchy>,
    /// The CRL's PEM text (what the seal covers).
    pub crl_text: String,
    /// How far the ledger and CRL on disk could be trusted (see [`crate::repository::seal`]); when they
    /// could not, `ledger` and `crl` above are the newest the CA sealed.
    pub standing: Standing,
    /// Files under `certs/` edited since reconcile wrote them (see [`crate::authority::issued`]).
    pub certs_edited: Vec<crate::authority::issued::Edited>,
    /// Problems with the declarations (identity entries, or gitca.yaml itself): the identities
    /// concerned are held, and everything else goes ahead (invariant 13).
    pub problems: Vec<Error>,
    /// Set when gitca.yaml is broken and the last good version from history stands in: CRLs
    /// and revocations go ahead, nothing is signed.
    pub signing_blocked: Option<Blocked>,
}

/// A plan whose CSRs to sign were vetted (see [`crate::reconcile::policy::vet`]): refused identities are
/// blocked, and the verified CSRs are what reconcile signs.
pub struct Vetted {
    pub plan: Plan,
    /// Each verified CSR, with its identity's index in `inventory.identities`.
    pub verified: Vec<(usize, VerifiedCsr)>,
    /// The refusals, as diagnostics pointing at each entry.
    pub diagnostics: Vec<Error>,
}

/// What gitca itself wrote, as it may trust it: the CA certificate, the ledger and the CRL.
pub struct Outputs {
    pub ca: CaCert,
    pub hierarchy: Option<Hierarchy>,
    pub ledger: Ledger,
    pub crl: CrlInfo,
    /// The CRL's PEM text (what the seal covers).
    pub crl_text: String,
    pub standing: Standing,
    /// Files under `certs/` edited since reconcile wrote them (see [`crate::authority::issued`]).
    pub certs_edited: Vec<crate::authority::issued::Edited>,
}

/// Reads a repository file as text: without following links, a regular file of at most
/// `limit` bytes (checked before reading).
pub fn read(dir: &Dir, rel: &str, limit: u64) -> Result<String> {
    dir.read_string(rel, limit)
}

/// The issuing CA certificate, checked, and the root side when the CA has an offline root.
/// A single-level CA's certificate verifies under its own key and is the one `gitca init`
/// wrote (byte for byte, from the first commit of main's history that has it); an
/// intermediate verifies under the root, which is anchored the same way (see
/// [`crate::authority::hierarchy`]).
pub fn authority(repo: &CaRepo) -> Result<(CaCert, Option<Hierarchy>)> {
    let ca = CaCert::parse(&read(&repo.dir, CA_CERT, ca::MAX_CERT_BYTES)?)?;
    if hierarchy::present(&repo.dir) {
        let h = hierarchy::load(repo, &ca)?;
        return Ok((ca, Some(h)));
    }
    ca::verify_ca_signature(&ca, &ca.spki_der)?;
    if let Some(original) = hierarchy::anchor(repo)? {
        let original = CaCert::parse(&String::from_utf8_lossy(&original)).ok();
        if original.is_some_and(|o| o.der != ca.der) {
            return Err(Error::bad_file(
                CA_CERT,
                "differs from the CA certificate gitca init wrote",
                "ca/ca.crt is written by gitca init only; restore it: git checkout $(git rev-list --max-parents=0 --first-parent HEAD) -- ca/ca.crt",
            ));
        }
    }
    Ok((ca, None))
}

/// The issuing CA certificate, checked (see [`authority`]).
pub fn ca_cert(repo: &CaRepo) -> Result<CaCert> {
    authority(repo).map(|(ca, _)| ca)
}

/// The ledger and CRL as the CA sealed them (see [`crate::repository::seal`]): the files on disk when they
/// are the newest sealed ones, else the newest sealed versions from history.
pub fn outputs(repo: &CaRepo) -> Result<Outputs> {
    let (ca, hierarchy) = authority(repo)?;
    // A file that cannot be read (a link, a directory, too large) counts as tampered with.
    let ledger_bytes = repo.dir.read_opt(LEDGER_FILE, ledger::MAX_BYTES);
    let crl_bytes = repo.dir.read_opt(CRL_FILE, ca::MAX_CRL_BYTES);
    let seal_bytes = repo.dir.read_opt(SEAL_FILE, seal::MAX_BYTES);
    fn ok(r: &Result<Option<Vec<u8>>>) -> Option<&[u8]> {
        r.as_ref().ok().and_then(|b| b.as_deref())
    }
    let signers = match &hierarchy {
        Some(h) => h.seal_signers(&ca),
        None => vec![&ca],
    };
    let standing = seal::judge(
        &repo.git,
        repo.history()?,
        &signers,
        &seal::OnDisk {
            ledger: ok(&ledger_bytes),
            crl: ok(&crl_bytes),
            previous_crl: hierarchy
                .as_ref()
                .and_then(|h| h.previous.as_ref())
                .map(|p| p.crl_text.as_bytes()),
            seal: ok(&seal_bytes),
        },
    )?;
    let text = |bytes: Result<Option<Vec<u8>>>, rel: &str| -> Result<String> {
        let bytes = bytes?.ok_or_else(|| Error::Io {
            action: "read",
            path: repo.dir.join(rel),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        String::from_utf8(bytes)
            .map_err(|_| Error::bad_file(rel, "is not UTF-8 text", "restore it from git history"))
    };
    let mut hierarchy = hierarchy;
    let (ledger_text, crl_text) = match &standing {
        Standing::Recovered {
            ledger,
            crl,
            previous_crl,
            ..
        } => {
            // The retiring intermediate's CRL comes back with the rest of what was sealed.
            if let (Some(h), Some(text)) = (hierarchy.as_mut(), previous_crl) {
                if let Some(p) = h.previous.as_mut() {
                    if let Ok(info) = CrlInfo::parse(text, Some(&p.cert)) {
                        p.crl = info;
                        p.crl_text = text.clone();
                    }
                }
            }
            (ledger.clone(), crl.clone())
        }
        _ => (text(ledger_bytes, LEDGER_FILE)?, text(crl_bytes, CRL_FILE)?),
    };
    let ledger = Ledger::parse(&ledger_text);
    let crl = CrlInfo::parse(&crl_text, Some(&ca));
    let mut errors = Vec::new();
    let ledger = ledger.map_err(|e| errors.push(e)).ok();
    let crl = crl.map_err(|e| errors.push(e)).ok();
    Error::collect(errors)?;
    let certs_edited = crate::authority::issued::edited(repo, &standing)?;
    Ok(Outputs {
        ca,
        hierarchy,
        ledger: ledger.expect("collected"),
        crl: crl.expect("collected"),
        crl_text,
        standing,
        certs_edited,
    })
}

/// Loads everything reconcile, plan and check start from, reporting every problem at once.
pub fn load(repo: &CaRepo) -> Result<State> {
    load_with(repo, |_| Ok(())).map(|(state, ())| state)
}

/// What the step run before loading did to the CA's outputs (see [`load_with`]).
pub trait Prepared {
    /// Whether it rewrote any of them (a killed run's outputs put back).
    fn touched_outputs(&self) -> bool;
}

impl Prepared for () {
    fn touched_outputs(&self) -> bool {
        false
    }
}

impl Prepared for crate::repository::git::Start {
    fn touched_outputs(&self) -> bool {
        !self.restored.is_empty()
    }
}

/// [`load`], with `first` run on another thread (with its own handle on the repository) while
/// the identities are parsed and their CSRs hashed. Reconcile restores an interrupted run's
/// outputs in `first` (one status scan of every managed path: the longest single-threaded step
/// at 100,000 identities), so the CA's outputs are read on a third thread meanwhile, and read
/// again after `first` only when it rewrote some of them.
pub fn load_with<T: Send + Prepared>(
    repo: &CaRepo,
    first: impl FnOnce(&CaRepo) -> Result<T> + Send,
) -> Result<(State, T)> {
    let dir = &repo.dir;
    let mut problems = Vec::new();
    let (config, signing_blocked) = match read(dir, CONFIG_FILE, config::MAX_BYTES)
        .and_then(|t| Config::parse(&t))
    {
        Ok(c) => (c, None),
        Err(e) => match last_good_config(repo)? {
            Some((c, commit)) => {
                let blocked = Blocked {
                    identity: "*".into(),
                    code: "config-invalid",
                    detail: format!(
                        "gitca.yaml is invalid ({}); the version of commit {} stands in for revocations and the CRL",
                        e.to_string().lines().next().unwrap_or(""),
                        &commit[..12]
                    ),
                    fix: "fix gitca.yaml (gitca check shows where); nothing is signed until then".into(),
                    file: Some(CONFIG_FILE.into()),
                    line: None,
                    acknowledged: None,
                };
                problems.push(e);
                (c, Some(blocked))
            }
            None => return Err(e),
        },
    };
    let root = repo.root.clone();
    let (inventory, side) = std::thread::scope(|s| {
        let early = s.spawn(|| outputs(&CaRepo::open(&root)?));
        let side = s.spawn(|| {
            let side_repo = CaRepo::open(&root)?;
            let first = first(&side_repo)?;
            let early = early
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            // Read while `first` may have been rewriting them: only what it left alone counts.
            let outputs = match first.touched_outputs() {
                true => outputs(&side_repo),
                false => early,
            };
            Ok::<_, Error>((first, outputs))
        });
        let inventory = inventory::load_all(dir, &config);
        let side = side
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (inventory, side)
    });
    let (first, outputs) = side?;
    let mut errors = Vec::new();
    let inventory = inventory.map_err(|e| errors.push(e)).ok();
    let outputs = outputs.map_err(|e| errors.push(e)).ok();
    Error::collect(errors)?;
    match (inventory, outputs) {
        (Some((inventory, inventory_problems)), Some(o)) => Ok((
            State {
                config,
                inventory,
                ledger: o.ledger,
                crl: o.crl,
                ca: o.ca,
                hierarchy: o.hierarchy,
                crl_text: o.crl_text,
                standing: o.standing,
                certs_edited: o.certs_edited,
                problems: {
                    problems.extend(inventory_problems.into_iter().flat_map(Error::into_flat));
                    problems
                },
                signing_blocked,
            },
            first,
        )),
        _ => unreachable!("every piece that failed to load pushed an error"),
    }
}

/// The newest gitca.yaml in HEAD's first-parent history that parses, and its commit.
fn last_good_config(repo: &CaRepo) -> Result<Option<(Config, String)>> {
    let history = repo.history()?;
    for (blob, index) in history.versions(CONFIG_FILE) {
        let Some(text) = history.text(&repo.git, blob, config::MAX_BYTES)? else {
            continue;
        };
        if let (Ok(c), Some(commit)) = (Config::parse(&text), history.commit(index)) {
            return Ok(Some((c, commit.to_string())));
        }
    }
    Ok(None)
}

/// The CA certificate that signs as `issuer` (the ledger's issuer column), and its path: the
/// CA itself, or below an offline root the current or retiring intermediate or the root.
pub fn issuer_cert<'a>(
    ca: &'a CaCert,
    hierarchy: Option<&'a Hierarchy>,
    issuer: Option<&str>,
) -> Option<(&'static str, &'a CaCert)> {
    let Some(h) = hierarchy else {
        return issuer.is_none().then_some((CA_CERT, ca));
    };
    let id = issuer?;
    if id == h.current {
        Some((CA_CERT, ca))
    } else if id == h.root_id {
        Some((ROOT_CERT, &h.root))
    } else {
        h.previous
            .as_ref()
            .filter(|p| p.id == id)
            .map(|p| (PREVIOUS_CERT, &p.cert))
    }
}

impl State {
    /// What the ledger records as the issuer of certificates signed now: the current
    /// intermediate's id below an offline root, nothing in a single-level CA.
    pub fn issuer_id(&self) -> Option<String> {
        self.hierarchy.as_ref().map(|h| h.current.clone())
    }

    /// The CA certificate that signs as `issuer` (the ledger's issuer column), and its path.
    pub fn issuer_cert(&self, issuer: Option<&str>) -> Option<(&'static str, &CaCert)> {
        issuer_cert(&self.ca, self.hierarchy.as_ref(), issuer)
    }

    /// What a certificate for `id` with this CSR's key will carry.
    fn carries(&self, id: &Identity, csr: &VerifiedCsr) -> plan::Carries {
        let profile = self.config.profiles.get(&id.profile);
        let mut attributes = vec![("O", self.config.ca.organization.as_str())];
        attributes.extend(id.groups.iter().map(|g| ("OU", g.as_str())));
        let cn = id.cn();
        attributes.push(("CN", &cn));
        let subject = crate::authority::subject::rfc4514_of(&attributes);
        plan::Carries {
            identity: id.name.clone(),
            subject,
            email: id.email.clone(),
            profile: id.profile.clone(),
            validity: id
                .validity
                .or(profile.map(|p| p.validity))
                .map(|d| d.to_string())
                .unwrap_or_default(),
            extended_key_usage: profile
                .map(|p| p.extended_key_usage.iter().map(|e| e.name()).collect())
                .unwrap_or_default(),
            names: id.names.iter().map(|n| n.shown()).collect(),
            key: csr.key_desc.clone(),
            key_sha256: csr.key_sha256.clone(),
        }
    }

    /// Warns of what changes between each certificate to be signed and the one it replaces,
    /// as read from `certs/NAME.crt` (gitca's own output, taken only when it holds the serial
    /// the ledger says is replaced): the subject (nginx maps `$ssl_client_s_dn` as text, so a
    /// dropped `C`, `ST` or `emailAddress`, or another order, breaks a rule), Netscape's
    /// nsCertType, and extended key usages the new one does not grant. Certificates adopted
    /// from `openssl ca` are where this bites: gitca writes O, OU and CN, and the email as a SAN.
    pub fn note_replacements(&self, dir: &Dir, plan: &mut Plan) {
        let mut notes = Vec::new();
        let signing: std::collections::HashMap<&str, _> = plan
            .signing
            .iter()
            .map(|c| (c.identity.as_str(), c))
            .collect();
        for a in plan.actions.iter().filter(|a| a.op.signs()) {
            let (Some(serial), Some(new)) = (a.serial.as_deref(), signing.get(a.identity.as_str()))
            else {
                continue;
            };
            let Some(old) = read_replaced(dir, &a.identity, serial) else {
                continue;
            };
            let mut note = |message: String| {
                notes.push(plan::Note {
                    identity: a.identity.clone(),
                    level: "warning",
                    message,
                })
            };
            if old.subject != new.subject {
                note(format!(
                    "subject changes from {} to {} (rules that match $ssl_client_s_dn see the new one)",
                    old.subject, new.subject
                ));
            }
            if let Some(ns) = &old.ns_cert_type {
                note(format!(
                    "drops nsCertType ({ns}): gitca writes extended key usages only"
                ));
            }
            match &old.ekus {
                None => note(format!(
                    "extended key usage narrows from any (the old certificate names none) to {}",
                    new.extended_key_usage.join(", ")
                )),
                Some(ekus) => {
                    let dropped: Vec<&str> = ekus
                        .iter()
                        .map(String::as_str)
                        .filter(|e| !new.extended_key_usage.contains(e))
                        .collect();
                    if !dropped.is_empty() {
                        note(format!(
                            "drops extended key usage {} (profile {} grants {})",
                            dropped.join(", "),
                            new.profile,
                            new.extended_key_usage.join(", ")
                        ));
                    }
                }
            }
        }
        plan.notes = notes;
    }

    /// The issuers the planner knows of (see [`plan::Issuers`]).
    pub fn issuers(&self) -> plan::Issuers {
        let Some(h) = &self.hierarchy else {
            return plan::Issuers::default();
        };
        plan::Issuers {
            current: Some(h.current.clone()),
            revoked: h
                .intermediates
                .iter()
                .filter(|r| r.reason.is_some())
                .map(|r| r.id.clone())
                .collect(),
            previous: h.previous.as_ref().map(|p| plan::Retiring {
                id: p.id.clone(),
                crl: CrlState {
                    number: p.crl.number,
                    next_update: p.crl.next_update,
                },
                revoked: p.revoked,
                not_after: p.cert.not_after,
            }),
        }
    }

    fn plan_with(&self, now: OffsetDateTime, refused: &BTreeMap<String, Blocked>) -> Plan {
        let mut plan = plan::plan(&plan::Input {
            identities: &self.inventory.identities,
            ledger: &self.ledger,
            config: &self.config,
            crl: CrlState {
                number: self.crl.number,
                next_update: self.crl.next_update,
            },
            issuers: &self.issuers(),
            ca_not_after: self.ca.not_after,
            now,
            held: &self.inventory.held,
            refused,
            signing_blocked: self.signing_blocked.as_ref(),
            removals_suspended: self.inventory.removals_suspended.as_deref(),
        });
        let repairs: Vec<String> = crate::repository::seal::describe(&self.standing)
            .into_iter()
            .chain(
                self.hierarchy
                    .as_ref()
                    .and_then(|h| h.root_crl_recovered.clone()),
            )
            .chain(crate::authority::issued::describe(&self.certs_edited))
            .collect();
        plan.repair = (!repairs.is_empty()).then(|| repairs.join("; "));
        plan
    }

    /// What reconcile will do: the plan, with the CSRs it would sign verified (only those: a
    /// plan with nothing to sign parses no CSR) and the refused identities blocked.
    pub fn plan(&self, now: OffsetDateTime) -> Vetted {
        let none = BTreeMap::new();
        let first = self.plan_with(now, &none);
        let to_sign: Vec<&Identity> = first
            .actions
            .iter()
            .filter(|a| a.op.signs())
            .filter_map(|a| self.inventory.get(&a.identity))
            .collect();
        let vetting = crate::reconcile::policy::vet(&self.ledger, &self.inventory, &to_sign);
        let plan = if vetting.refused.is_empty() {
            first
        } else {
            drop(first);
            self.plan_with(now, &vetting.refused)
        };
        let index = |name: &str| {
            self.inventory
                .identities
                .binary_search_by(|i| i.name.as_str().cmp(name))
                .expect("vetted identities are declared")
        };
        let mut plan = plan;
        let signs: std::collections::HashSet<&str> = plan
            .actions
            .iter()
            .filter(|a| a.op.signs())
            .map(|a| a.identity.as_str())
            .collect();
        let signing = vetting
            .verified
            .iter()
            .filter(|(id, _)| signs.contains(id.name.as_str()))
            .map(|(id, csr)| self.carries(id, csr))
            .collect();
        drop(signs);
        plan.signing = signing;
        Vetted {
            plan,
            verified: vetting
                .verified
                .into_iter()
                .map(|(id, csr)| (index(&id.name), csr))
                .collect(),
            diagnostics: {
                let mut d = vetting.diagnostics;
                if vetting.more > 0 {
                    d.push(Error::usage(
                        format!("… and {} more refused CSRs", vetting.more),
                        "gitca check --json lists every problem",
                    ));
                }
                d
            },
        }
    }
}

/// What a relying party sees of a certificate about to be replaced.
struct Replaced {
    subject: String,
    ns_cert_type: Option<String>,
    /// `None`: no extended key usage extension (any purpose).
    ekus: Option<Vec<String>>,
}

/// The leaf of `certs/NAME.crt`, when it is the certificate `serial` (size-checked, no link
/// followed).
fn read_replaced(dir: &Dir, name: &str, serial: &str) -> Option<Replaced> {
    use x509_parser::extensions::ParsedExtension;
    let text = dir.read_string(&cert_path(name), ca::MAX_CERT_BYTES).ok()?;
    let block = pem::parse_many(&text).ok()?.into_iter().next()?;
    let (_, cert) = x509_parser::parse_x509_certificate(block.contents()).ok()?;
    if ca::serial_hex(cert.raw_serial()) != serial {
        return None;
    }
    let mut ns_cert_type = None;
    let mut ekus = None;
    for e in cert.extensions() {
        match e.parsed_extension() {
            ParsedExtension::NSCertType(t) => {
                let names: Vec<&str> = [
                    (t.ssl_client(), "client"),
                    (t.ssl_server(), "server"),
                    (t.smime(), "email"),
                    (t.object_signing(), "objsign"),
                ]
                .into_iter()
                .filter_map(|(set, n)| set.then_some(n))
                .collect();
                ns_cert_type = Some(names.join(", "));
            }
            ParsedExtension::ExtendedKeyUsage(u) => {
                let mut names: Vec<String> = [
                    (u.any, "any"),
                    (u.client_auth, "client_auth"),
                    (u.server_auth, "server_auth"),
                    (u.email_protection, "email_protection"),
                    (u.code_signing, "code_signing"),
                    (u.time_stamping, "time_stamping"),
                    (u.ocsp_signing, "ocsp_signing"),
                ]
                .into_iter()
                .filter(|(set, _)| *set)
                .map(|(_, n)| n.to_string())
                .collect();
                names.extend(u.other.iter().map(|o| o.to_id_string()));
                ekus = Some(names);
            }
            _ => {}
        }
    }
    Some(Replaced {
        subject: crate::authority::subject::rfc4514(cert.subject()),
        ns_cert_type,
        ekus,
    })
}
