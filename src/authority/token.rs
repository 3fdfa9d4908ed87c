//! PKCS#11 custody: a CA key that lives in a token (an HSM, a smart card, SoftHSM) and never
//! leaves it. gitca signs through the token; the repository records only where the key is (an
//! RFC 7512 `pkcs11:` URI) and its public key, in `ca/ca.key.pkcs11` next to where
//! `ca/ca.key.age` would be.
//!
//! What the repository never says, because the repository is hostile: the PKCS#11 module to
//! load (a module is code: a merged `module-path=` would run anything in CI), and the PIN.
//! Both come from the operator: `--pkcs11-module` / `GITCA_PKCS11_MODULE`, and
//! `GITCA_PKCS11_PIN` or the terminal. The recorded URI is parsed with one strict grammar:
//! path attributes only, each known and at most once, no query part at all.
//!
//! Before anything is signed, the token proves it holds the private half of the CA
//! certificate: it signs a fresh challenge that must verify under `ca/ca.crt`'s public key.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, KeyType as P11KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use sha2::Digest;
use zeroize::Zeroizing;

use crate::authority::keygen::KeyType;
use crate::error::{Error, Located, Result};

/// Largest `ca/ca.key.pkcs11` gitca reads.
pub const MAX_FILE_BYTES: u64 = 16 << 10;
/// Longest URI accepted (real ones are under 200 characters).
const MAX_URI: usize = 1024;

/// Where the operator's module and PIN come from (never from the repository).
#[derive(Debug, Default, Clone)]
pub struct TokenAccess {
    /// `--pkcs11-module` or `GITCA_PKCS11_MODULE`: the PKCS#11 library to load.
    pub module: Option<PathBuf>,
    /// `GITCA_PKCS11_PIN`; else asked on the terminal. Never a command-line flag.
    pub pin: Option<Zeroizing<String>>,
}

impl TokenAccess {
    pub fn from_env(module: Option<PathBuf>) -> TokenAccess {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        TokenAccess {
            module: module.or_else(|| var("GITCA_PKCS11_MODULE").map(PathBuf::from)),
            pin: var("GITCA_PKCS11_PIN").map(Zeroizing::new),
        }
    }
}

/// A parsed `pkcs11:` URI naming one private key (RFC 7512, path attributes only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
}

fn uri_error(reason: impl Into<String>) -> Error {
    Error::Token {
        reason: reason.into(),
        help: "write it as pkcs11:token=LABEL;object=KEY-LABEL (RFC 7512: path attributes token, manufacturer, model, serial, object, id and type=private only; no `?` query: the module and PIN never belong in a URI gitca reads)".into(),
    }
}

fn pct_decode(value: &str) -> std::result::Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .ok_or_else(|| format!("`%` not followed by two hex digits in `{value}`"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=&".contains(&b) {
            out.push(b);
            i += 1;
        } else {
            return Err(format!(
                "character {:?} must be percent-encoded",
                char::from(b).escape_default().to_string()
            ));
        }
    }
    Ok(out)
}

fn pct_encode(bytes: &[u8], all: bool) -> String {
    let mut s = String::new();
    for &b in bytes {
        if !all && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02x}"));
        }
    }
    s
}

impl Pkcs11Uri {
    /// Parses a URI naming a private key; refuses anything odd rather than guessing.
    pub fn parse(text: &str) -> Result<Pkcs11Uri> {
        if text.len() > MAX_URI {
            return Err(uri_error(format!("the URI is {} bytes long", text.len())));
        }
        let Some(path) = text.strip_prefix("pkcs11:") else {
            return Err(uri_error("it does not start with `pkcs11:`"));
        };
        if let Some((_, query)) = path.split_once('?') {
            let what = query.split(['=', '&']).next().unwrap_or("");
            return Err(uri_error(format!(
                "it has a query part (`?{what}…`): gitca never takes a module path, module name or PIN from a URI"
            )));
        }
        let mut uri = Pkcs11Uri::default();
        let mut seen = Vec::new();
        for attr in path.split(';') {
            let Some((name, value)) = attr.split_once('=') else {
                return Err(uri_error(format!("`{}` is not NAME=VALUE", shown(attr))));
            };
            if seen.contains(&name) {
                return Err(uri_error(format!("`{}` is given twice", shown(name))));
            }
            seen.push(name);
            let raw = pct_decode(value).map_err(|e| uri_error(format!("{}: {e}", shown(name))))?;
            let text = |max: usize| -> Result<String> {
                let s = String::from_utf8(raw.clone())
                    .map_err(|_| uri_error(format!("{name} is not UTF-8")))?;
                if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
                    return Err(uri_error(format!(
                        "{name} must be 1 to {max} bytes of printable text"
                    )));
                }
                Ok(s)
            };
            match name {
                "token" => uri.token = Some(text(32)?),
                "manufacturer" => uri.manufacturer = Some(text(32)?),
                "model" => uri.model = Some(text(16)?),
                "serial" => uri.serial = Some(text(16)?),
                "object" => uri.object = Some(text(128)?),
                "id" => {
                    if raw.is_empty() || raw.len() > 64 {
                        return Err(uri_error("id must be 1 to 64 bytes"));
                    }
                    uri.id = Some(raw);
                }
                "type" => {
                    if raw != b"private" {
                        return Err(uri_error(
                            "type must be `private`: gitca signs with the private key",
                        ));
                    }
                }
                "slot-id" | "slot-description" | "slot-manufacturer" | "library-description"
                | "library-manufacturer" | "library-version" => {
                    return Err(uri_error(format!(
                        "`{name}` depends on the machine, not the token: name the token (token=, serial=)"
                    )))
                }
                other => {
                    return Err(uri_error(format!(
                        "unknown attribute `{}`",
                        shown(other)
                    )))
                }
            }
        }
        if uri.token.is_none() && uri.serial.is_none() {
            return Err(uri_error("it names no token (token= or serial=)"));
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(uri_error("it names no key (object= or id=)"));
        }
        Ok(uri)
    }

    /// The canonical form gitca records.
    pub fn render(&self) -> String {
        let mut parts = Vec::new();
        let mut push = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{k}={}", pct_encode(v.as_bytes(), false)));
            }
        };
        push("token", &self.token);
        push("manufacturer", &self.manufacturer);
        push("model", &self.model);
        push("serial", &self.serial);
        push("object", &self.object);
        if let Some(id) = &self.id {
            parts.push(format!("id={}", pct_encode(id, true)));
        }
        parts.push("type=private".into());
        format!("pkcs11:{}", parts.join(";"))
    }
}

/// A value from hostile input, short and printable, for a message.
fn shown(s: &str) -> String {
    s.chars().take(40).flat_map(char::escape_default).collect()
}

/// What the repository records of a token-held key.
#[derive(Debug, Clone)]
pub struct Record {
    pub uri: Pkcs11Uri,
    pub spki_der: Vec<u8>,
}

impl Record {
    /// The text of `ca/ca.key.pkcs11`.
    pub fn render(&self, what: &str) -> String {
        format!(
            "# {what} lives in a PKCS#11 token and never leaves it: gitca signs through the token.\n\
             # The module and the PIN are the operator's (--pkcs11-module or GITCA_PKCS11_MODULE,\n\
             # GITCA_PKCS11_PIN) and never belong here. Public key SHA-256: {}\n{}\n{}",
            crate::authority::pubkey::key_fingerprint(&self.spki_der),
            self.uri.render(),
            crate::output::encode::to_pem("PUBLIC KEY", &self.spki_der)
        )
    }

    /// Parses `text` of the file `name`: comments, one `pkcs11:` line, one PUBLIC KEY block.
    pub fn parse(name: &str, text: &str) -> Result<Record> {
        let file = RecordText {
            name,
            text,
            restore: format!(
                "restore {name} from git history (git log -p -- {name}); gitca writes it at `init` and never by hand"
            ),
        };
        let (uri, start) = file.uri_and_key_start()?;
        let spki_der = file.public_key(start)?;
        Ok(Record { uri, spki_der })
    }
}

/// A token record's file being parsed: its name and text, for errors that point into it.
struct RecordText<'a> {
    name: &'a str,
    text: &'a str,
    /// The remedy for a record that does not parse.
    restore: String,
}

impl RecordText<'_> {
    /// An error at `offset` (`len` bytes) of the file, naming its line.
    fn at(&self, offset: usize, len: usize, message: String, label: &str, help: &str) -> Error {
        let (name, text) = (self.name, self.text);
        let line = text[..offset.min(text.len())].matches('\n').count() + 1;
        Located::new(
            name,
            text,
            (offset, len),
            format!("{name}:{line}: {message}"),
            label,
            help,
        )
        .into()
    }

    /// The one `pkcs11:` URI (comments and blank lines aside), and the offset of the PEM block
    /// that follows it.
    fn uri_and_key_start(&self) -> Result<(Pkcs11Uri, usize)> {
        let restore = &self.restore;
        let mut uri = None;
        let mut pem_start = None;
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            let trimmed = line.trim();
            let here = offset;
            offset += line.len();
            if pem_start.is_some() || trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if trimmed.starts_with("-----BEGIN ") {
                if uri.is_none() {
                    return Err(self.at(
                        here,
                        trimmed.len(),
                        "the public key comes before any pkcs11: URI".into(),
                        "expected a pkcs11: URI first",
                        restore,
                    ));
                }
                pem_start = Some(here);
                continue;
            }
            if uri.is_some() {
                return Err(self.at(
                    here,
                    trimmed.len(),
                    "a second URI or stray text".into(),
                    "one URI only",
                    restore,
                ));
            }
            let parsed = Pkcs11Uri::parse(trimmed).map_err(|e| match e {
                Error::Token { reason, help } => self.at(
                    here,
                    trimmed.len(),
                    format!("not a URI gitca accepts: {reason}"),
                    "this URI",
                    &format!("{help}; or {restore}"),
                ),
                other => other,
            })?;
            uri = Some(parsed);
        }
        let Some(uri) = uri else {
            return Err(self.at(0, 0, "no pkcs11: URI".into(), "here", restore));
        };
        let Some(start) = pem_start else {
            return Err(self.at(
                self.text.len(),
                0,
                "no PUBLIC KEY block after the URI".into(),
                "here",
                restore,
            ));
        };
        Ok((uri, start))
    }

    /// The PUBLIC KEY block at `start`: its SubjectPublicKeyInfo, which must be a key gitca reads.
    fn public_key(&self, start: usize) -> Result<Vec<u8>> {
        let bad_pem = || {
            self.at(
                start,
                10,
                "the PUBLIC KEY block is not a public key".into(),
                "this block",
                &self.restore,
            )
        };
        let block = pem::parse(&self.text[start..]).map_err(|_| bad_pem())?;
        if block.tag() != "PUBLIC KEY" {
            return Err(bad_pem());
        }
        let spki_der = block.into_contents();
        if crate::authority::pubkey::canonical(&spki_der).is_err() {
            return Err(bad_pem());
        }
        Ok(spki_der)
    }
}

fn token_err(reason: impl Into<String>, help: impl Into<String>) -> Error {
    Error::Token {
        reason: reason.into(),
        help: help.into(),
    }
}

fn p11(what: &str) -> impl Fn(P11Error) -> Error + '_ {
    move |e| {
        let help = match &e {
            P11Error::Pkcs11(RvError::PinIncorrect, _) => {
                "wrong PIN: set GITCA_PKCS11_PIN to the token's user PIN (a few more wrong tries lock it)"
            }
            P11Error::Pkcs11(RvError::PinLocked, _) => {
                "the user PIN is locked: the token's security officer must unlock it"
            }
            P11Error::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved, _) => {
                "insert the token and try again"
            }
            _ => "check the token, its module (GITCA_PKCS11_MODULE) and the PIN; nothing was written",
        };
        token_err(format!("{what}: {}", short(&e)), help)
    }
}

/// A PKCS#11 error without the spec's paragraph-long descriptions.
fn short(e: &P11Error) -> String {
    match e {
        P11Error::Pkcs11(rv, f) => format!("{f} returned {rv:?}"),
        P11Error::LibraryLoading(l) => format!("cannot load the module: {l}"),
        other => other.to_string(),
    }
}

/// The curves gitca signs with in a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

impl Curve {
    fn from_params(params: &[u8]) -> Option<Curve> {
        match params {
            OID_P256 => Some(Curve::P256),
            OID_P384 => Some(Curve::P384),
            _ => None,
        }
    }
    fn params(self) -> &'static [u8] {
        match self {
            Curve::P256 => OID_P256,
            Curve::P384 => OID_P384,
        }
    }
    fn algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Curve::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Curve::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
    fn point_len(self) -> usize {
        match self {
            Curve::P256 => 65,
            Curve::P384 => 97,
        }
    }
    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Curve::P256 => sha2::Sha256::digest(msg).to_vec(),
            Curve::P384 => sha2::Sha384::digest(msg).to_vec(),
        }
    }
}

/// What kind of key the token holds, and so how it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algo {
    /// ECDSA: the token signs a digest; its raw r‖s becomes an ECDSA-Sig-Value.
    Ec(Curve),
    /// RSA PKCS #1 v1.5 with SHA-256 (CKM_SHA256_RSA_PKCS): the token hashes.
    Rsa,
}

impl Algo {
    fn algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Algo::Ec(c) => c.algorithm(),
            Algo::Rsa => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// RSA public keys gitca accepts from a token: 2048 to 8192 bits (what aws-lc verifies).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// A signing key held by a token. Sessions are pooled: signing runs in parallel where the
/// token allows several sessions (the login is shared by every session of this process).
pub struct TokenKey {
    ctx: Pkcs11,
    slot: Slot,
    uri: Pkcs11Uri,
    algo: Algo,
    /// The public key as rcgen wants it: the uncompressed EC point, or the DER RSAPublicKey.
    point: Vec<u8>,
    pool: Mutex<Vec<(Session, ObjectHandle)>>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey({})", self.uri.render())
    }
}

/// An open, logged-in token.
struct Opened {
    ctx: Pkcs11,
    slot: Slot,
    session: Session,
    serial: String,
    label: String,
}

fn open(uri: &Pkcs11Uri, access: &TokenAccess, rw: bool) -> Result<Opened> {
    let module = access.module.as_deref().ok_or_else(|| {
        token_err(
            "the CA key is in a PKCS#11 token and no module was given",
            "pass --pkcs11-module PATH or set GITCA_PKCS11_MODULE to the token's PKCS#11 library (SoftHSM: /usr/lib/softhsm/libsofthsm2.so)",
        )
    })?;
    open_module(module, uri, access, rw)
}

/// The module at `module`, loaded and initialized once per process: a ceremony or reconcile
/// may open two keys through one module (a retiring intermediate in one token, the current in
/// another), and a module refuses a second `C_Initialize`.
fn loaded(module: &Path) -> Result<Pkcs11> {
    static MODULES: std::sync::OnceLock<Mutex<Vec<(PathBuf, Pkcs11)>>> = std::sync::OnceLock::new();
    let key = std::fs::canonicalize(module).unwrap_or_else(|_| module.to_path_buf());
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, ctx)) = modules.iter().find(|(path, _)| *path == key) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(&key).map_err(p11("loading the PKCS#11 module"))?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(p11("initializing the PKCS#11 module"))?;
    modules.push((key, ctx.clone()));
    Ok(ctx)
}

fn open_module(module: &Path, uri: &Pkcs11Uri, access: &TokenAccess, rw: bool) -> Result<Opened> {
    if !module.is_file() {
        return Err(token_err(
            format!("the PKCS#11 module {} does not exist", module.display()),
            "pass the path of the token's PKCS#11 library with --pkcs11-module or GITCA_PKCS11_MODULE",
        ));
    }
    let ctx = loaded(module)?;
    let mut found = Vec::new();
    for slot in ctx
        .get_slots_with_initialized_token()
        .map_err(p11("listing the tokens"))?
    {
        let info = ctx.get_token_info(slot).map_err(p11("reading a token"))?;
        let matches = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        if matches(&uri.token, info.label())
            && matches(&uri.serial, info.serial_number())
            && matches(&uri.manufacturer, info.manufacturer_id())
            && matches(&uri.model, info.model())
        {
            found.push((
                slot,
                info.label().to_string(),
                info.serial_number().to_string(),
            ));
        }
    }
    let (slot, label, serial) = match found.len() {
        1 => found.remove(0),
        0 => {
            return Err(token_err(
                format!("no token matches {}", uri.render()),
                "insert the token, or point GITCA_PKCS11_MODULE (and for SoftHSM, SOFTHSM2_CONF) at the one holding the CA key; nothing was written",
            ))
        }
        n => {
            return Err(token_err(
                format!("{n} tokens match {}", uri.render()),
                "name the token by its serial too (serial=…) so that exactly one matches",
            ))
        }
    };
    let session = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(p11("opening a session"))?;
    let pin = match &access.pin {
        Some(p) => p.clone(),
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => Zeroizing::new(
            rpassword::prompt_password(format!("PIN of token {label}: "))
                .map_err(|_| Error::NoPassphrase)?,
        ),
        None => {
            return Err(token_err(
                format!("token {label} needs its user PIN and none was given"),
                "set GITCA_PKCS11_PIN (from a CI secret), or run on a terminal to be asked; the PIN is never a command-line flag",
            ))
        }
    };
    match session.login(
        UserType::User,
        Some(&cryptoki::types::AuthPin::new(pin.as_str().into())),
    ) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(p11(&format!("logging in to token {label}"))(e)),
    }
    Ok(Opened {
        ctx,
        slot,
        session,
        serial,
        label,
    })
}

fn key_template(uri: &Pkcs11Uri, class: ObjectClass) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class)];
    if let Some(o) = &uri.object {
        t.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

fn find_one(
    session: &Session,
    uri: &Pkcs11Uri,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>> {
    let found = session
        .find_objects(&key_template(uri, class))
        .map_err(p11("searching the token"))?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(Some(found[0])),
        n => Err(token_err(
            format!("{n} keys in the token match {}", uri.render()),
            "name the key by its id too (id=%..), so that exactly one matches",
        )),
    }
}

/// The kind and public key matching `uri` (its public-key object): an EC P-256 or P-384
/// point, or an RSA modulus and exponent as a DER RSAPublicKey.
fn public_key(session: &Session, uri: &Pkcs11Uri) -> Result<(Algo, Vec<u8>)> {
    let Some(handle) = find_one(session, uri, ObjectClass::PUBLIC_KEY)? else {
        return Err(token_err(
            format!("the token holds no public key for {}", uri.render()),
            "gitca reads the public key from the token's public-key object next to the private key (same label and id); import it with the key",
        ));
    };
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::EcPoint,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        )
        .map_err(p11("reading the public key"))?;
    let (mut kind, mut params, mut point, mut modulus, mut exponent) =
        (None, None, None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(k) => kind = Some(k),
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            Attribute::Modulus(m) => modulus = Some(m),
            Attribute::PublicExponent(e) => exponent = Some(e),
            _ => {}
        }
    }
    let unsupported = || {
        token_err(
            format!("the key {} is not an EC P-256 or P-384 key, nor an RSA key of 2048 to 8192 bits", uri.render()),
            "gitca signs through a token with ECDSA P-256 or P-384, or RSA (PKCS #1 v1.5, SHA-256); generate one with `gitca init --pkcs11-generate`",
        )
    };
    if kind == Some(P11KeyType::RSA) {
        let (Some(n), Some(e)) = (modulus, exponent) else {
            return Err(unsupported());
        };
        let n = strip_zeros(&n);
        if !RSA_BITS.contains(&(n.len() * 8)) || strip_zeros(&e).is_empty() {
            return Err(unsupported());
        }
        let der = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_bigint_bytes(n, true);
                w.next().write_bigint_bytes(strip_zeros(&e), true);
            })
        });
        return Ok((Algo::Rsa, der));
    }
    let curve = params
        .as_deref()
        .and_then(Curve::from_params)
        .ok_or_else(unsupported)?;
    let point = point.ok_or_else(unsupported)?;
    // CKA_EC_POINT is a DER OCTET STRING by the standard; a few tokens return the bare point.
    let n = curve.point_len();
    let raw = if point.len() == n + 2 && point[0] == 0x04 && usize::from(point[1]) == n {
        point[2..].to_vec()
    } else if point.len() == n && point[0] == 0x04 {
        point
    } else {
        return Err(unsupported());
    };
    Ok((Algo::Ec(curve), raw))
}

/// A big-endian unsigned integer without its leading zero bytes.
fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// ECDSA-Sig-Value (DER) from the token's fixed-length r‖s.
fn der_signature(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Some(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_bigint_bytes(r, true);
            w.next().write_bigint_bytes(s, true);
        })
    }))
}

impl TokenKey {
    /// Opens the key a repository records, logs in, and proves the token holds the private
    /// half of `spki_der` (a fresh challenge signed in the token verifies under it).
    pub fn open(record: &Record, access: &TokenAccess, expect_spki: &[u8]) -> Result<TokenKey> {
        let opened = open(&record.uri, access, false)?;
        let key = TokenKey::from_opened(opened, &record.uri)?;
        // The public-key object must be the recorded key too: callers compare it with the
        // certificate, and the proof below ties it to the private key.
        if rcgen::PublicKeyData::subject_public_key_info(&key) != expect_spki {
            return Err(Error::TokenKeyMismatch {
                uri: record.uri.render(),
            });
        }
        key.prove(expect_spki)?;
        Ok(key)
    }

    fn from_opened(opened: Opened, uri: &Pkcs11Uri) -> Result<TokenKey> {
        let Some(handle) = find_one(&opened.session, uri, ObjectClass::PRIVATE_KEY)? else {
            return Err(token_err(
                format!("token {} holds no private key matching {}", opened.label, uri.render()),
                "is this the token the CA key was made in? gitca never creates a key outside `init`; nothing was written",
            ));
        };
        let (algo, point) = public_key(&opened.session, uri)?;
        Ok(TokenKey {
            ctx: opened.ctx,
            slot: opened.slot,
            uri: uri.clone(),
            algo,
            point,
            pool: Mutex::new(vec![(opened.session, handle)]),
        })
    }

    /// Signs a random challenge and verifies it under `spki_der`.
    fn prove(&self, spki_der: &[u8]) -> Result<()> {
        let mut challenge = [0u8; 32];
        aws_lc_rs::rand::fill(&mut challenge).map_err(|_| Error::Crypto {
            what: "randomness",
            detail: "the CSPRNG failed".into(),
        })?;
        let message = [b"gitca token key proof ".as_slice(), &challenge].concat();
        let sig = self.sign_der(&message)?;
        if !crate::authority::pubkey::verify_with(spki_der, &message, &sig) {
            return Err(Error::TokenKeyMismatch {
                uri: self.uri.render(),
            });
        }
        Ok(())
    }

    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    fn sign_der(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let pooled = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
        let (session, handle) = match pooled {
            Some(s) => s,
            None => {
                // Another thread holds the pooled session: open one more (the login is shared).
                let session = self
                    .ctx
                    .open_ro_session(self.slot)
                    .map_err(p11("opening a session"))?;
                let handle =
                    find_one(&session, &self.uri, ObjectClass::PRIVATE_KEY)?.ok_or_else(|| {
                        token_err(
                            "the CA key vanished from the token",
                            "insert the token that holds it",
                        )
                    })?;
                (session, handle)
            }
        };
        let signed = match self.algo {
            Algo::Ec(curve) => session.sign(&Mechanism::Ecdsa, handle, &curve.digest(msg)),
            Algo::Rsa => session.sign(&Mechanism::Sha256RsaPkcs, handle, msg),
        };
        let raw = signed.map_err(p11("the token refused to sign"))?;
        if let Ok(mut p) = self.pool.lock() {
            p.push((session, handle));
        }
        let malformed = || {
            token_err(
                "the token returned a malformed signature",
                "check the token",
            )
        };
        match self.algo {
            Algo::Ec(_) => der_signature(&raw).ok_or_else(malformed),
            // As long as the modulus: what aws-lc verifies (and `prove` checks) before any use.
            Algo::Rsa if !raw.is_empty() => Ok(raw),
            Algo::Rsa => Err(malformed()),
        }
    }
}

impl rcgen::PublicKeyData for TokenKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algo.algorithm()
    }
}

impl rcgen::SigningKey for TokenKey {
    /// A token that refuses here, after [`TokenKey::open`] proved it signs, is rare (pulled
    /// out mid-run): rcgen's error carries no text, so the run fails as a signing error.
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        self.sign_der(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// What `gitca init --pkcs11` makes or adopts.
pub struct InitKey {
    pub key: TokenKey,
    pub record: Record,
}

/// `gitca init --pkcs11 URI [--pkcs11-generate]`: generates the CA key in the token
/// (sensitive, never extractable) or adopts the existing one the URI names.
pub fn init_key(
    uri: &Pkcs11Uri,
    access: &TokenAccess,
    generate: Option<KeyType>,
) -> Result<InitKey> {
    let opened = open(uri, access, generate.is_some())?;
    let mut uri = uri.clone();
    if let Some(key_type) = generate {
        generate_in_token(&opened, &mut uri, key_type)?;
    }
    // Record the token by label and serial: the serial tells two tokens of one label apart.
    uri.token = Some(opened.label.clone());
    if !opened.serial.is_empty() {
        uri.serial = Some(opened.serial.clone());
    }
    let key = TokenKey::from_opened(opened, &uri)?;
    let spki_der = rcgen::PublicKeyData::subject_public_key_info(&key);
    key.prove(&spki_der)?;
    Ok(InitKey {
        record: Record { uri, spki_der },
        key,
    })
}

/// Generates the CA key pair in the token (EC P-256/P-384 or RSA 3072/4096; private half
/// sensitive and never extractable), refusing to shadow a key the URI already names; fills in
/// the URI's id and label when it gave none.
fn generate_in_token(opened: &Opened, uri: &mut Pkcs11Uri, key_type: KeyType) -> Result<()> {
    if find_one(&opened.session, uri, ObjectClass::PRIVATE_KEY)?.is_some() {
        return Err(token_err(
            format!(
                "token {} already holds a key matching {}",
                opened.label,
                uri.render()
            ),
            "adopt it (drop --pkcs11-generate), or name a new key with another object= label",
        ));
    }
    refuse_shadowing(opened, uri)?;
    name_new_key(uri)?;
    let common = |t: &mut Vec<Attribute>| {
        t.push(Attribute::Token(true));
        t.push(Attribute::Label(
            uri.object.clone().unwrap_or_default().into_bytes(),
        ));
        t.push(Attribute::Id(uri.id.clone().unwrap_or_default()));
    };
    let (mechanism, mut public, p11_type) = public_template(key_type);
    public.extend([Attribute::Verify(true), Attribute::Private(false)]);
    common(&mut public);
    let mut private = vec![
        Attribute::KeyType(p11_type),
        Attribute::Sign(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Decrypt(false),
        Attribute::Derive(false),
    ];
    common(&mut private);
    opened
        .session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(p11("generating the key in the token"))?;
    Ok(())
}

/// Refuses to generate a key whose id or label, as the URI gives them, an object the token
/// already holds has (a key of any class, a certificate, anything): two objects of one id leave
/// `id=` naming two keys (and tools that pair a certificate with its key by id pair them
/// wrongly), two of one label leave `object=` ambiguous. Only what the URI names explicitly
/// counts: a generated id is random and the default label is never the only attribute
/// recorded. Checked before anything is made in the token.
fn refuse_shadowing(opened: &Opened, uri: &Pkcs11Uri) -> Result<()> {
    let wanted = [
        uri.id.as_ref().map(|id| {
            (
                Attribute::Id(id.clone()),
                format!("id={}", pct_encode(id, true)),
                "choose another id (id=%..) for the new key",
            )
        }),
        uri.object.as_ref().map(|label| {
            (
                Attribute::Label(label.as_bytes().to_vec()),
                format!("object={}", pct_encode(label.as_bytes(), false)),
                "choose another object= label for the new key",
            )
        }),
    ];
    for (attribute, named, instead) in wanted.into_iter().flatten() {
        // A private key first: the one to adopt instead, and the clearest to name.
        let mut found = Vec::new();
        for template in [
            vec![
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                attribute.clone(),
            ],
            vec![attribute],
        ] {
            found = opened
                .session
                .find_objects(&template)
                .map_err(p11("searching the token"))?;
            if !found.is_empty() {
                break;
            }
        }
        if let Some(&existing) = found.first() {
            let (what, adopt) = describe_object(&opened.session, existing);
            let adopt = Pkcs11Uri {
                token: Some(opened.label.clone()),
                ..adopt
            };
            return Err(token_err(
                format!(
                    "token {} already holds {what}: a key generated for {} would share its {named}, which would then name two objects",
                    opened.label,
                    uri.render()
                ),
                format!(
                    "{instead}, or drop --pkcs11-generate to adopt the existing key ({}); nothing was made in the token or written",
                    adopt.render()
                ),
            ));
        }
    }
    Ok(())
}

/// An object, for a message: its class, label and id as far as the token tells them, and a
/// URI naming it by that label and id.
fn describe_object(session: &Session, handle: ObjectHandle) -> (String, Pkcs11Uri) {
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::Class,
                AttributeType::Label,
                AttributeType::Id,
            ],
        )
        .unwrap_or_default();
    let mut class = "an object";
    let mut named = Pkcs11Uri::default();
    for a in attrs {
        match a {
            Attribute::Class(c) if c == ObjectClass::PRIVATE_KEY => class = "a private key",
            Attribute::Class(c) if c == ObjectClass::PUBLIC_KEY => class = "a public key",
            Attribute::Class(c) if c == ObjectClass::CERTIFICATE => class = "a certificate",
            Attribute::Class(c) if c == ObjectClass::SECRET_KEY => class = "a secret key",
            Attribute::Label(l) if !l.is_empty() => {
                named.object = Some(String::from_utf8_lossy(&l).into_owned())
            }
            Attribute::Id(i) if !i.is_empty() => named.id = Some(i),
            _ => {}
        }
    }
    let mut what = class.to_string();
    if let Some(l) = &named.object {
        what.push_str(&format!(" labelled `{}`", shown(l)));
    }
    if let Some(i) = &named.id {
        what.push_str(&format!(" (id={})", pct_encode(i, true)));
    }
    (what, named)
}

/// A new key's id (16 random bytes) and label (`gitca-ca`), where the URI gave none.
fn name_new_key(uri: &mut Pkcs11Uri) -> Result<()> {
    if uri.id.is_none() {
        let mut id = vec![0u8; 16];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| Error::Crypto {
            what: "randomness",
            detail: "the CSPRNG failed".into(),
        })?;
        uri.id = Some(id);
    }
    if uri.object.is_none() {
        uri.object = Some("gitca-ca".into());
    }
    Ok(())
}

/// The generation mechanism of `key_type`, its public-key template, and the PKCS#11 key type.
fn public_template(
    key_type: crate::authority::keygen::KeyType,
) -> (Mechanism<'static>, Vec<Attribute>, P11KeyType) {
    use crate::authority::keygen::KeyType;
    match key_type {
        KeyType::P256 | KeyType::P384 => {
            let curve = if key_type == KeyType::P256 {
                Curve::P256
            } else {
                Curve::P384
            };
            (
                Mechanism::EccKeyPairGen,
                vec![
                    Attribute::KeyType(P11KeyType::EC),
                    Attribute::EcParams(curve.params().to_vec()),
                ],
                P11KeyType::EC,
            )
        }
        KeyType::Rsa3072 | KeyType::Rsa4096 => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::KeyType(P11KeyType::RSA),
                Attribute::ModulusBits(
                    (if key_type == KeyType::Rsa3072 {
                        3072u64
                    } else {
                        4096
                    })
                    .into(),
                ),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ],
            P11KeyType::RSA,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_round_trips_through_its_canonical_form() {
        let u = Pkcs11Uri::parse("pkcs11:token=My%20CA;object=ca;id=%01%ff;type=private").unwrap();
        assert_eq!(u.token.as_deref(), Some("My CA"));
        assert_eq!(u.id.as_deref(), Some(&[1u8, 0xff][..]));
        assert_eq!(Pkcs11Uri::parse(&u.render()).unwrap(), u);
    }

    #[test]
    fn odd_uris_are_refused() {
        for bad in [
            "pkcs11:token=a;object=b?pin-value=1234",
            "pkcs11:token=a;object=b?module-path=/tmp/evil.so",
            "pkcs11:token=a;object=b;object=c",
            "pkcs11:token=a;object=b;slot-id=1",
            "pkcs11:token=a;object=b;type=public",
            "pkcs11:token=a;object=b;foo=bar",
            "pkcs11:token=a",
            "pkcs11:object=b",
            "pkcs11:token=a b;object=c",
            "pkcs11:token=%zz;object=c",
            "pkcs11:token=%0a;object=c",
            "pkcs12:token=a;object=b",
        ] {
            assert!(Pkcs11Uri::parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(Pkcs11Uri::parse("pkcs11:token=a;object=b").is_ok());
    }
}
