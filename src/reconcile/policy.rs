//! CSR rules: proof of possession, key strength, the name it claims, and whose key it is.
//!
//! From a CSR gitca takes only the public key, after verifying the CSR's signature. Nothing
//! else in it (requested extensions, SANs, key usages, CA:TRUE) is ever used; this module
//! returns the SubjectPublicKeyInfo and the CN, nothing more. Pure: bytes in, verdict out (the
//! bytes were read when the identities were loaded).

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;

use crate::authority::revocation::RevocationReason;
use crate::error::Error;
use crate::repository::inventory::{Blocked, Identity, Inventory};
use crate::repository::ledger::Ledger;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

/// A CSR whose signature verified and whose key passes gitca's key policy.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    /// The canonical SubjectPublicKeyInfo (see [`crate::authority::pubkey`]), never the CSR's bytes.
    pub spki_der: Vec<u8>,
    /// The key's identity (see [`crate::authority::pubkey`]).
    pub key_sha256: String,
    /// e.g. "ECDSA P-256", "RSA 3072".
    pub key_desc: String,
    pub common_name: Option<String>,
}

/// Why a CSR is refused, with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: String,
    pub help: String,
}

fn refuse(rule: impl Into<String>, help: impl Into<String>) -> Refusal {
    Refusal {
        rule: rule.into(),
        help: help.into(),
    }
}

const OID_SHA1_RSA: &str = "1.2.840.113549.1.1.5";
const OID_SHA1_ECDSA: &str = "1.2.840.10045.4.1";
const OID_MD5_RSA: &str = "1.2.840.113549.1.1.4";

const REGENERATE: &str = "generate a new key and CSR: `gitca request NAME` (ECDSA P-256), or `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout NAME.key -out csr/NAME.csr -subj /CN=NAME`";

/// Parses a PEM CSR, verifies its signature and applies the key policy.
pub fn verify_csr(bytes: &[u8]) -> Result<VerifiedCsr, Refusal> {
    verify_csr_as(bytes, Possession::Verify)
}

/// Whether a CSR's proof of possession (its signature) is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Possession {
    Verify,
    /// Its exact bytes were verified when the CA signed for them (see [`Proven`]).
    Proven,
}

/// The CSRs whose exact bytes the CA already verified: each `(identity, csr_sha256)` of a
/// ledger the CA sealed (gitca records a CSR's digest only after verifying its signature, on
/// signing and on import). `check` does not verify their signatures again — at 100,000
/// identities that is 100,000 signature checks for what the CA's seal already vouches for —
/// but applies every other rule to them. Reconcile verifies whatever it signs, always.
#[derive(Debug, Default)]
pub struct Proven<'a>(HashSet<(&'a str, &'a str)>);

impl<'a> Proven<'a> {
    /// From the ledger loaded, when its standing is a seal the CA made (as found, or as
    /// recovered from history); empty for an unsealed ledger.
    pub fn sealed(ledger: &'a Ledger, standing: &crate::repository::seal::Standing) -> Self {
        use crate::repository::seal::Standing;
        match standing {
            Standing::Sealed(_) | Standing::Recovered { .. } => Proven(
                ledger
                    .records
                    .iter()
                    .map(|r| (r.identity.as_str(), r.csr_sha256.as_str()))
                    .collect(),
            ),
            Standing::Unsealed => Proven::default(),
        }
    }

    /// Adds a CSR verified in this run (the plan verified what it would sign).
    pub fn insert(&mut self, id: &'a Identity) {
        if let Some(d) = id.csr_sha256.as_deref() {
            self.0.insert((id.name.as_str(), d));
        }
    }

    /// Whether `id`'s CSR, as loaded, is one of these.
    pub fn holds(&self, id: &Identity) -> bool {
        id.csr_sha256
            .as_deref()
            .is_some_and(|d| self.0.contains(&(id.name.as_str(), d)))
    }
}

fn verify_csr_as(bytes: &[u8], possession: Possession) -> Result<VerifiedCsr, Refusal> {
    let block = pem_block(bytes)?;
    let der = block.contents();
    let (rest, csr) = X509CertificationRequest::from_der(der).map_err(|_| {
        refuse(
            "the PEM block is not a valid PKCS#10 certification request",
            REGENERATE,
        )
    })?;
    if !rest.is_empty() {
        return Err(refuse(
            "trailing bytes after the certification request",
            REGENERATE,
        ));
    }
    check_signature_algorithm(&csr)?;
    let info = &csr.certification_request_info;
    let key = check_key(info.subject_pki.raw)?;
    // Key policy first: a weak key is named as such, not as a failed signature.
    if possession == Possession::Verify {
        csr.verify_signature().map_err(|_| {
            refuse(
                "its signature does not verify (proof of possession failed: the CSR was altered or is corrupt)",
                "regenerate the CSR with the private key it names; never edit a CSR by hand",
            )
        })?;
    }
    let common_name = info
        .subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    Ok(VerifiedCsr {
        spki_der: key.spki,
        key_sha256: key.id,
        key_desc: key.desc,
        common_name,
    })
}

/// The file's one PEM block, which must be a certificate request: not DER, not a private key,
/// not several blocks.
fn pem_block(bytes: &[u8]) -> Result<pem::Pem, Refusal> {
    if bytes.first() == Some(&0x30) {
        return Err(refuse(
            "the CSR is DER (binary), not PEM",
            "convert it (the key stays as it is): `openssl req -in FILE -inform DER -out FILE.pem -outform PEM`, then commit FILE.pem in its place",
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| refuse("the file is not a PEM text file", REGENERATE))?;
    if text.contains("PRIVATE KEY-----") {
        return Err(refuse(
            "the file contains a private key",
            "commit only the CSR; keep the .key on your machine, and since it was exposed, make a new key",
        ));
    }
    let mut blocks =
        pem::parse_many(text).map_err(|_| refuse("the file is not PEM", REGENERATE))?;
    match blocks.as_slice() {
        [b] if b.tag() == "CERTIFICATE REQUEST" || b.tag() == "NEW CERTIFICATE REQUEST" => {}
        [] => {
            return Err(refuse(
                "the file is not PEM (no BEGIN CERTIFICATE REQUEST block)",
                REGENERATE,
            ))
        }
        [b] => {
            return Err(refuse(
                format!(
                    "the PEM block is a `{}`, not a `CERTIFICATE REQUEST`",
                    b.tag()
                ),
                REGENERATE,
            ))
        }
        _ => {
            return Err(refuse(
                "the file holds more than one PEM block",
                "keep exactly one CSR per file",
            ))
        }
    }
    Ok(blocks.remove(0))
}

/// Refuses a CSR signed with SHA-1 or MD5.
fn check_signature_algorithm(csr: &X509CertificationRequest) -> Result<(), Refusal> {
    let sig_oid = csr.signature_algorithm.algorithm.to_id_string();
    if [OID_SHA1_RSA, OID_SHA1_ECDSA, OID_MD5_RSA].contains(&sig_oid.as_str()) {
        return Err(refuse(
            "the CSR is signed with SHA-1 or MD5",
            "sign the CSR with SHA-256 or stronger (openssl req signs with SHA-256 by default)",
        ));
    }
    Ok(())
}

/// The key policy: an algorithm gitca signs for, and an RSA key of 2048 to 8192 bits.
fn check_key(spki: &[u8]) -> Result<crate::authority::pubkey::PublicKey, Refusal> {
    // The key as it is, whatever its encoding: identity and certificates use the canonical form.
    let key = crate::authority::pubkey::canonical(spki).map_err(|why| {
        refuse(
            why.0,
            "use an ECDSA P-256/P-384, RSA (2048 to 8192 bits) or Ed25519 key",
        )
    })?;
    if key.algorithm == crate::authority::pubkey::Algorithm::Rsa {
        if key.bits < 2048 {
            return Err(refuse(
                format!("RSA key of {} bits is weak (minimum 2048)", key.bits),
                REGENERATE,
            ));
        }
        if key.bits > 8192 {
            return Err(refuse(
                format!("RSA key of {} bits is larger than 8192", key.bits),
                REGENERATE,
            ));
        }
    }
    Ok(key)
}

/// The CN rule: a CSR must name the identity it is declared for (its `common_name`, when the
/// entry sets one, else its name).
pub fn check_name(csr: &VerifiedCsr, id: &Identity) -> Result<(), Refusal> {
    let want = id.cn();
    let fix = format!(
        "regenerate the CSR with subject /CN={want} (`gitca request {} --rotate` does)",
        id.name
    );
    match csr.common_name.as_deref() {
        Some(cn) if cn == want => Ok(()),
        Some(cn) => Err(refuse(
            format!("its CN is `{cn}`, not `{want}`"),
            format!("{fix}; or, to keep a CN that is not the name (as for people adopted from an `openssl ca`), add `common_name: {cn}` to the entry (docs/onboarding.md, \"Names\")"),
        )),
        None => Err(refuse("it has no CN", fix)),
    }
}

/// Identities whose certificate would stand for someone else: a `common_name` whose
/// [`crate::authority::subject::clash_key`] is another identity's name or common name — declared, or
/// in the ledger (offboarded and revoked names included: a name once certified is never
/// someone else's). Maps each such identity to the other name.
pub fn name_clashes<'a>(ledger: &'a Ledger, inventory: &'a Inventory) -> HashMap<&'a str, &'a str> {
    use crate::authority::subject::clash_keys;
    let with_cn: Vec<(&Identity, &str)> = inventory
        .identities
        .iter()
        .filter_map(|i| i.common_name.as_deref().map(|c| (i, c)))
        .filter(|(i, c)| *c != i.name)
        .collect();
    if with_cn.is_empty() {
        return HashMap::new();
    }
    let mut taken: HashMap<String, Vec<&str>> = HashMap::new();
    let declared = inventory.identities.iter().map(|i| i.name.as_str());
    let recorded = ledger.records.iter().map(|r| r.identity.as_str());
    let mut seen = HashSet::new();
    for name in declared.chain(recorded) {
        if seen.insert(name) {
            for key in clash_keys(name) {
                taken.entry(key).or_default().push(name);
            }
        }
    }
    for (i, cn) in &with_cn {
        for key in clash_keys(cn) {
            taken.entry(key).or_default().push(i.name.as_str());
        }
    }
    let mut out = HashMap::new();
    for (i, cn) in with_cn {
        // A common name that looks like the identity's own name stands for it: another
        // identity's look-alike claim blocks that other identity, never this one.
        if crate::authority::subject::clash(cn, &i.name) {
            continue;
        }
        let mine = |n: &&str| *n == i.name || i.renamed_from.as_deref() == Some(*n);
        let other = clash_keys(cn)
            .iter()
            .find_map(|k| taken[k].iter().find(|n| !mine(n)).copied());
        if let Some(other) = other {
            out.insert(i.name.as_str(), other);
        }
    }
    out
}

/// The outcome of vetting the CSRs reconcile would sign.
#[derive(Default)]
pub struct Vetting<'a> {
    /// CSRs that may be signed, each with its canonical key.
    pub verified: Vec<(&'a Identity, VerifiedCsr)>,
    /// Identities whose CSR is missing or refused, with the reason and the fix.
    pub refused: BTreeMap<String, Blocked>,
    /// The same refusals as diagnostics pointing at the entry (file and line), the first
    /// [`crate::repository::inventory::MAX_KEPT_ERRORS`] of them; `more` counts the rest.
    pub diagnostics: Vec<Error>,
    pub more: usize,
}

impl Vetting<'_> {
    /// Records an identity whose common name is refused: blocked, with a diagnostic at its
    /// `common_name:` value.
    fn refuse_name(&mut self, inventory: &Inventory, id: &Identity, refusal: Refusal) {
        self.refused.insert(
            id.name.clone(),
            Blocked {
                identity: id.name.clone(),
                code: "name-clash",
                detail: refusal.rule.clone(),
                fix: refusal.help.clone(),
                file: Some(id.source.file.clone()),
                line: Some(id.source.line),
                acknowledged: None,
            },
        );
        if self.diagnostics.len() >= crate::repository::inventory::MAX_KEPT_ERRORS {
            self.more += 1;
            return;
        }
        let text = inventory
            .files
            .get(&id.source.file)
            .cloned()
            .unwrap_or_else(|| std::sync::Arc::from(""));
        self.diagnostics.push(
            crate::error::Located::shared(
                &id.source.file,
                &text,
                id.source.cn_span.unwrap_or(id.source.span),
                format!("common_name of `{}` refused: {}", id.name, refusal.rule),
                "this common name",
                &refusal.help,
            )
            .into(),
        );
    }
    /// Records an identity whose CSR is missing or refused: blocked, with a diagnostic at its
    /// entry.
    fn refuse_csr(&mut self, inventory: &Inventory, id: &Identity, refusal: Refusal) {
        let code = if id.csr_bytes.is_none() {
            "csr-missing"
        } else {
            "csr-refused"
        };
        self.refused.insert(
            id.name.clone(),
            Blocked {
                identity: id.name.clone(),
                code,
                detail: format!("CSR {}: {}", id.csr, refusal.rule),
                fix: refusal.help.clone(),
                file: Some(id.source.file.clone()),
                line: Some(id.source.line),
                acknowledged: None,
            },
        );
        if self.diagnostics.len() < crate::repository::inventory::MAX_KEPT_ERRORS {
            self.diagnostics.push(
                inventory
                    .locate(
                        id,
                        true,
                        format!(
                            "CSR of `{}` ({}) refused: {}",
                            id.name, id.csr, refusal.rule
                        ),
                        "this CSR",
                        &refusal.help,
                    )
                    .into(),
            );
        } else {
            self.more += 1;
        }
    }
}

/// When an entry `renamed_from: former` may take over `former`'s key: its entry says
/// `renamed_from: former`, `former` is no longer declared (a key moves on only when its holder's
/// name is gone), no other entry claims the same former name, and `former` did not lose that
/// key to a revocation (an offboarded or compromised identity's key never comes back under
/// another name; only a supersession, as the rename itself makes, passes).
struct Renames<'a> {
    claims: HashMap<&'a str, usize>,
    ended: HashSet<(&'a str, &'a str)>,
}

impl<'a> Renames<'a> {
    fn new(inventory: &'a Inventory, ledger: &'a Ledger) -> Self {
        let mut claims: HashMap<&str, usize> = HashMap::new();
        for id in &inventory.identities {
            if let Some(f) = id.renamed_from.as_deref() {
                *claims.entry(f).or_default() += 1;
            }
        }
        let ended = ledger
            .records
            .iter()
            .filter(|r| claims.contains_key(r.identity.as_str()))
            .filter(|r| {
                r.reason
                    .is_some_and(|why| why != RevocationReason::Superseded)
            })
            .map(|r| (r.identity.as_str(), r.key_sha256.as_str()))
            .collect();
        Renames { claims, ended }
    }

    fn why_not(&self, former: &str, key: &str, inventory: &Inventory) -> &'static str {
        if inventory.get(former).is_some() {
            "it is still declared"
        } else if self.claims.get(former).is_some_and(|n| *n > 1) {
            "more than one entry says it was renamed from it"
        } else if self.ended.contains(&(former, key)) {
            "its certificate for this key was revoked (offboarded, disabled or compromised)"
        } else {
            "it is not this entry's former name"
        }
    }

    fn allows(&self, id: &Identity, former: &str, key: &str, inventory: &Inventory) -> bool {
        id.renamed_from.as_deref() == Some(former)
            && inventory.get(former).is_none()
            && self.claims.get(former) == Some(&1)
            && !self.ended.contains(&(former, key))
    }
}

/// What the ledger says of keys (by canonical `key_sha256`): who holds each — the last identity
/// certified for it, so a rename hands it on — and which were revoked for key compromise.
pub struct KeyHolders<'l> {
    pub owner: HashMap<&'l str, &'l str>,
    pub compromised: HashSet<&'l str>,
}

impl<'l> KeyHolders<'l> {
    pub fn of(ledger: &'l Ledger) -> Self {
        let mut owner: HashMap<&str, (&str, time::OffsetDateTime)> = HashMap::new();
        let mut compromised: HashSet<&str> = HashSet::new();
        for r in &ledger.records {
            let e = owner
                .entry(r.key_sha256.as_str())
                .or_insert((r.identity.as_str(), r.not_before));
            if r.not_before > e.1 {
                *e = (r.identity.as_str(), r.not_before);
            }
            if r.reason == Some(RevocationReason::KeyCompromise) {
                compromised.insert(r.key_sha256.as_str());
            }
        }
        KeyHolders {
            owner: owner.into_iter().map(|(k, (n, _))| (k, n)).collect(),
            compromised,
        }
    }
}

/// Applies every CSR rule to the CSRs of `to_sign` (their bytes as loaded): the file exists,
/// signature, key policy, CN, key ownership (a key belongs to one identity for life) and
/// compromised keys. `check` vets every identity that wants a certificate; `plan` and
/// reconcile only those they would sign for (a no-op parses no CSR).
pub fn vet<'a>(ledger: &Ledger, inventory: &Inventory, to_sign: &[&'a Identity]) -> Vetting<'a> {
    vet_knowing(ledger, inventory, to_sign, &Proven::default())
}

/// [`vet`], not checking again the signatures of the CSRs in `proven`.
pub fn vet_knowing<'a>(
    ledger: &Ledger,
    inventory: &Inventory,
    to_sign: &[&'a Identity],
    proven: &Proven<'_>,
) -> Vetting<'a> {
    if to_sign.is_empty() {
        return Vetting::default();
    }
    let checked = check_each_csr(to_sign, proven);
    let clashes = name_clashes(ledger, inventory);
    let keys = KeyRules::new(ledger, inventory, &checked);
    let mut out = Vetting::default();
    for (id, r) in &checked {
        if let Some(other) = clashes.get(id.name.as_str()) {
            out.refuse_name(inventory, id, name_clash_refusal(id, other));
            continue;
        }
        let verdict = match r {
            Err(refusal) => Err(Refusal {
                rule: refusal.rule.clone(),
                help: refusal.help.clone(),
            }),
            Ok(csr) => keys.judge(id, csr, inventory),
        };
        match verdict {
            Ok(csr) => out.verified.push((*id, csr)),
            Err(refusal) => out.refuse_csr(inventory, id, refusal),
        }
    }
    out
}

/// Each identity's CSR on its own (in parallel): the file exists, its signature, the key
/// policy and the CN.
fn check_each_csr<'a>(
    to_sign: &[&'a Identity],
    proven: &Proven<'_>,
) -> Vec<(&'a Identity, Result<VerifiedCsr, Refusal>)> {
    to_sign
        .par_iter()
        .map(|id| {
            // The bytes hashed at load time: what is verified and signed is exactly what the
            // ledger's csr_sha256 records. Loading hashes every CSR file that exists, so no
            // bytes means no file.
            let r = id
                .csr_bytes
                .as_deref()
                .ok_or_else(|| Refusal {
                    rule: format!("{} does not exist", id.csr),
                    help: format!(
                        "its holder runs `gitca request {} --rotate` (a new key and CSR; with --key KEY, a CSR for the key they hold) and opens a pull request; or fix the path",
                        id.name
                    ),
                })
                .and_then(|bytes| {
                    let possession = match proven.holds(id) {
                        true => Possession::Proven,
                        false => Possession::Verify,
                    };
                    verify_csr_as(bytes, possession)
                })
                .and_then(|csr| check_name(&csr, id).map(|()| csr));
            (*id, r)
        })
        .collect()
}

/// Why a common name that stands for another identity is refused.
fn name_clash_refusal(id: &Identity, other: &str) -> Refusal {
    Refusal {
        rule: format!(
            "common_name `{}` stands for identity `{other}` (the same name, ignoring case, separators and look-alike letters)",
            id.cn()
        ),
        help: format!(
            "a certificate names one identity: choose a common name that is not `{other}`'s, or leave common_name out to use `{}`",
            id.name
        ),
    }
}

/// The rules between keys: keys are bound to one identity at a time (the last to hold it; a
/// rename hands it on), and a compromised key is never certified again.
struct KeyRules<'v> {
    owner: HashMap<&'v str, &'v str>,
    compromised: HashSet<&'v str>,
    renames: Renames<'v>,
    /// Who asks for each key in this change. Two new identities asking for the same key:
    /// neither gets it (which one is the owner's cannot be told).
    claims: HashMap<&'v str, Vec<&'v str>>,
}

impl<'v> KeyRules<'v> {
    fn new(
        ledger: &'v Ledger,
        inventory: &'v Inventory,
        checked: &'v [(&Identity, Result<VerifiedCsr, Refusal>)],
    ) -> Self {
        let KeyHolders { owner, compromised } = KeyHolders::of(ledger);
        let renames = Renames::new(inventory, ledger);
        let mut claims: HashMap<&str, Vec<&str>> = HashMap::new();
        for (id, r) in checked {
            if let Ok(csr) = r {
                claims
                    .entry(csr.key_sha256.as_str())
                    .or_default()
                    .push(&id.name);
            }
        }
        KeyRules {
            owner,
            compromised,
            renames,
            claims,
        }
    }

    /// A CSR that passed on its own, against the keys of the ledger and of the other CSRs.
    fn judge(
        &self,
        id: &Identity,
        csr: &VerifiedCsr,
        inventory: &Inventory,
    ) -> Result<VerifiedCsr, Refusal> {
        let KeyRules {
            owner,
            compromised,
            renames,
            claims,
        } = self;
        let key = csr.key_sha256.as_str();
        let others: Vec<&str> = claims[key]
            .iter()
            .copied()
            .filter(|n| *n != id.name)
            .collect();
        if compromised.contains(key) {
            Err(Refusal {
                rule: "its public key was revoked for key compromise".into(),
                help: format!("a compromised key is never certified again: make a new key and CSR with `gitca request {} --rotate`", id.name),
            })
        } else if let Some(other) = owner
            .get(key)
            .filter(|o| **o != id.name && !renames.allows(id, o, key, inventory))
        {
            Err(if id.renamed_from.as_deref() == Some(*other) {
                Refusal {
                    rule: format!(
                        "`renamed_from: {other}` cannot hand on `{other}`'s key: {}",
                        renames.why_not(other, key, inventory)
                    ),
                    help: format!(
                        "a rename takes over the key of a name that is removed in the same change and was never revoked; otherwise make a new key and CSR with `gitca request {} --rotate`",
                        id.name
                    ),
                }
            } else {
                Refusal {
                rule: format!("its public key belongs to identity `{other}`"),
                help: format!(
                    "every identity has its own key: make a new key and CSR with `gitca request {} --rotate`; or, if `{}` is `{other}` renamed, remove `{other}`'s entry and add `renamed_from: {other}` to this one (docs/onboarding.md, \"Renaming\")",
                    id.name, id.name
                ),
            }
            })
        } else if !others.is_empty() && owner.get(key).is_none_or(|o| !claims[key].contains(o)) {
            Err(Refusal {
                rule: format!("its public key is also in the CSR of `{}`", others.join("`, `")),
                help: format!("every identity has its own key: make a new key and CSR with `gitca request {} --rotate`", id.name),
            })
        } else {
            Ok(csr.clone())
        }
    }
}
