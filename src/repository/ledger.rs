//! The ledger: every certificate this CA ever issued, one line each (`ledger.tsv`).
//!
//! Format: a header row, then one tab-separated row per certificate, grouped by identity and,
//! within an identity, in the order the certificates were issued (a new one is appended), so
//! that `git diff` shows exactly the certificates a commit issued or revoked. That order is
//! what makes a certificate the identity's *current* one (the last live row), never its
//! notBefore: a certificate is backdated, and one signed elsewhere (an imported `openssl ca`
//! certificate) may start later than the gitca certificate that replaces it. Empty fields are
//! `-`. Columns:
//!
//! | column | meaning |
//! |---|---|
//! | serial | lowercase hex, no leading zero octets (as `openssl x509 -serial`, lowercased) |
//! | identity, kind, profile | the identity's name, `user`/`bot`, the profile used |
//! | state | `issued` or `revoked` (expiry is derived from `not_after`, never written) |
//! | not_before, not_after | RFC 3339, UTC |
//! | revoked_at, reason | RFC 3339 and an RFC 5280 reason (`superseded`, `key-compromise`, …) |
//! | key_sha256 | SHA-256 of the certified SubjectPublicKeyInfo |
//! | csr_sha256 | SHA-256 of the CSR file's bytes: what lets a no-op reconcile skip every CSR |
//! | email, groups | the SAN email and the OUs (comma-separated) the certificate carries |
//! | issuer | (a CA with an offline root only) which CA signed it: the first 16 hex digits of the SHA-256 of that CA's certificate, as listed in `ca/intermediates.tsv` |
//! | names | (once the CA has certified a server) a server certificate's subject alternative names, `DNS:name` and `IP:address`, comma-separated |
//!
//! Pure: parses and renders text; no filesystem access.

use std::collections::HashSet;

use time::OffsetDateTime;

use crate::authority::ca::CrlEntry;
use crate::authority::revocation::RevocationReason;
use crate::error::{Error, Located, Result};
use crate::layout::LEDGER_FILE;
use crate::repository::inventory::Kind;
use crate::time::{fmt_time, parse_time};

/// Largest ledger gitca reads: about 580,000 certificates (a row is about 230 bytes), so that
/// 100,000 identities renew several times before it is reached; a reconcile that revokes and
/// re-signs the CRL peaks near 230 MiB at 145,000 (docs/performance.md). Memory, not speed,
/// sets it: the ledger keeps every certificate ever issued, and archiving expired rows is the
/// way past it (not built yet).
pub const MAX_BYTES: u64 = 128 << 20;

const HEADER: &str =
    "serial\tidentity\tkind\tprofile\tstate\tnot_before\tnot_after\trevoked_at\treason\tkey_sha256\tcsr_sha256\temail\tgroups";
const ISSUER_HEADER: &str = "\tissuer";
const NAMES_HEADER: &str = "\tnames";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Issued,
    Revoked,
}

/// One issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub serial: String,
    pub identity: String,
    pub kind: Kind,
    pub profile: String,
    pub state: State,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub reason: Option<RevocationReason>,
    pub key_sha256: String,
    pub csr_sha256: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// Which CA signed it (see [`crate::authority::ca::id_of`]); `None` in a single-level CA.
    pub issuer: Option<String>,
    /// A server certificate's DNS names and IP addresses; empty for users and bots.
    pub names: Vec<crate::authority::server::San>,
}

impl Record {
    /// Not revoked and not yet expired at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.state == State::Issued && self.not_after > now
    }

    /// Revoked and not yet expired: it belongs on the CRL.
    pub fn on_crl(&self, now: OffsetDateTime) -> bool {
        self.state == State::Revoked && self.not_after > now
    }
}

/// The entries of `issuer`'s CRL at `now`: every certificate it signed that is revoked and not
/// yet expired (`issuer`: the ledger's issuer column, `None` in a single-level CA).
pub fn crl_entries(
    ledger: &Ledger,
    now: OffsetDateTime,
    issuer: Option<&str>,
) -> Result<Vec<CrlEntry>> {
    ledger
        .records
        .iter()
        .filter(|r| r.on_crl(now) && r.issuer.as_deref() == issuer)
        .map(|r| {
            let bad = || {
                Error::bad_file(
                    LEDGER_FILE,
                    format!("the revoked row {} cannot go on a CRL", r.serial),
                    "the ledger is written by gitca reconcile only; restore it from git history",
                )
            };
            Ok(CrlEntry {
                serial: hex::decode(&r.serial).map_err(|_| bad())?,
                revoked_at: r.revoked_at.ok_or_else(bad)?,
                reason: r.reason.ok_or_else(bad)?,
            })
        })
        .collect()
}

/// Which optional columns the ledger's header announces.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    /// The `issuer` column (a CA with an offline root).
    with_issuer: bool,
    /// The `names` column (server certificates).
    with_names: bool,
}

/// The refusal of one ledger row, pointing at it.
type Fail<'a> = dyn Fn(String) -> crate::error::Error + 'a;

/// Lower-case hex digits, at least one.
fn hex_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// A time column, RFC 3339.
fn time_field(s: &str, fail: &Fail<'_>) -> Result<OffsetDateTime> {
    parse_time(s).ok_or_else(|| fail(format!("`{s}` is not an RFC 3339 time")))
}

impl Layout {
    /// Takes in a header row; `true` when `row` is one (nothing more to read in it).
    fn read_header(&mut self, row: &str) -> bool {
        if let Some(rest) = row.strip_prefix(HEADER) {
            let rest = match rest.strip_suffix(NAMES_HEADER) {
                Some(r) => {
                    self.with_names = true;
                    r
                }
                None => rest,
            };
            if rest == ISSUER_HEADER {
                self.with_issuer = true;
                return true;
            }
            if rest.is_empty() {
                return true;
            }
        }
        false
    }

    /// One certificate's row, every column checked; `seen` holds the serials of the rows
    /// before it.
    fn parse_row<'t>(
        self,
        row: &'t str,
        seen: &mut HashSet<&'t str>,
        fail: &Fail<'_>,
    ) -> Result<Record> {
        let mut f = [""; 15];
        let mut fields = 0;
        for (slot, field) in row.split('\t').enumerate() {
            if let Some(x) = f.get_mut(slot) {
                *x = field;
            }
            fields += 1;
        }
        let want = 13 + usize::from(self.with_issuer) + usize::from(self.with_names);
        if fields != want {
            return Err(fail(format!(
                "expected {want} tab-separated fields, found {fields}"
            )));
        }
        let opt = |s: &str| (s != "-").then(|| s.to_string());
        let names_field = if self.with_names { f[want - 1] } else { "-" };
        let names = match names_field {
            "-" => Vec::new(),
            list => list
                .split(',')
                .map(|n| {
                    crate::authority::server::San::parse(n)
                        .ok_or_else(|| fail(format!("`{n}` is not a server name")))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let issuer = match if self.with_issuer { f[13] } else { "-" } {
            "-" => None,
            id if id.len() == 16 && hex_ok(id) => Some(id.to_string()),
            id => return Err(fail(format!("`{id}` is not an issuer id"))),
        };
        check_ids(&f, fail)?;
        if !seen.insert(f[0]) {
            return Err(fail(format!("serial {} appears twice", f[0])));
        }
        let (state, revoked_at, reason) = revocation(&f, fail)?;
        let (not_before, not_after) = (time_field(f[5], fail)?, time_field(f[6], fail)?);
        if not_before >= not_after {
            return Err(fail("not_before is not before not_after".into()));
        }
        Ok(Record {
            serial: f[0].to_string(),
            identity: f[1].to_string(),
            kind: Kind::parse(f[2]).ok_or_else(|| fail(format!("unknown kind `{}`", f[2])))?,
            profile: f[3].to_string(),
            state,
            not_before,
            not_after,
            revoked_at,
            reason,
            key_sha256: f[9].to_string(),
            csr_sha256: f[10].to_string(),
            email: opt(f[11]),
            groups: opt(f[12])
                .map(|g| g.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            issuer,
            names,
        })
    }
}

/// A row's serial, identity name and digests, each in the form gitca writes.
fn check_ids(f: &[&str; 15], fail: &Fail<'_>) -> Result<()> {
    // A serial is whole octets (even length), at most 20 of them, positive, and written
    // without leading zero octets (as `ca::serial_hex` writes it).
    if !hex_ok(f[0]) || f[0].len() > 40 || !f[0].len().is_multiple_of(2) || f[0].starts_with("00") {
        return Err(fail(format!("`{}` is not a serial", f[0])));
    }
    if !crate::repository::inventory::valid_name(f[1]) {
        return Err(fail(format!("`{}` is not an identity name", f[1])));
    }
    if !(hex_ok(f[9]) && f[9].len() == 64) {
        return Err(fail("key_sha256 is not a SHA-256".into()));
    }
    if !(f[10] == "-" || (hex_ok(f[10]) && f[10].len() == 64)) {
        return Err(fail("csr_sha256 is not a SHA-256".into()));
    }
    Ok(())
}

/// A row's state, and when and why it was revoked: both for a revoked row, neither for an
/// issued one.
fn revocation(
    f: &[&str; 15],
    fail: &Fail<'_>,
) -> Result<(State, Option<OffsetDateTime>, Option<RevocationReason>)> {
    let state = match f[4] {
        "issued" => State::Issued,
        "revoked" => State::Revoked,
        s => return Err(fail(format!("unknown state `{s}`"))),
    };
    let reason = match f[8] {
        "-" => None,
        s => Some(RevocationReason::parse(s).ok_or_else(|| fail(format!("unknown reason `{s}`")))?),
    };
    let revoked_at = match f[7] {
        "-" => None,
        s => Some(time_field(s, fail)?),
    };
    if (state == State::Revoked) != (revoked_at.is_some() && reason.is_some()) {
        return Err(fail(
            "a revoked row needs revoked_at and reason, an issued one neither".into(),
        ));
    }
    Ok((state, revoked_at, reason))
}

/// All certificates, in the ledger's order.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub records: Vec<Record>,
    /// Written with the `issuer` column (a CA with an offline root).
    pub with_issuer: bool,
}

impl Ledger {
    pub fn parse(text: &str) -> Result<Ledger> {
        let rows = text.bytes().filter(|&b| b == b'\n').count() + 1;
        let mut records = Vec::with_capacity(rows);
        let mut offset = 0;
        let mut seen = HashSet::with_capacity(rows);
        let mut layout = Layout::default();
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let start = offset;
            offset += line.len();
            let row = line.trim_end_matches(['\n', '\r']);
            if row.is_empty() || row.starts_with('#') {
                continue;
            }
            if layout.read_header(row) {
                continue;
            }
            let fail = |what: String| -> crate::error::Error {
                Located::new(
                    LEDGER_FILE,
                    text,
                    (start, row.len()),
                    format!("{LEDGER_FILE} line {}: {what}", i + 1),
                    "this row",
                    "the ledger is written by gitca reconcile only; restore it with `git checkout -- ledger.tsv`",
                )
                .into()
            };
            records.push(layout.parse_row(row, &mut seen, &fail)?);
        }
        let mut ledger = Ledger {
            records,
            with_issuer: layout.with_issuer,
        };
        ledger.sort();
        Ok(ledger)
    }

    /// Groups the rows by identity, keeping each identity's rows in the order they came (a
    /// stable sort): the order they were issued in, as the file records it and as apply and
    /// import append them. Never by notBefore (see the module documentation).
    pub fn sort(&mut self) {
        self.records.sort_by(|a, b| a.identity.cmp(&b.identity));
    }

    /// The identity's current certificate: the last issued of those live at `now`.
    pub fn current<'a>(&'a self, identity: &'a str, now: OffsetDateTime) -> Option<&'a Record> {
        self.of(identity).filter(|r| r.is_live(now)).last()
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(400 + self.records.len() * 240);
        // The header is the first line (no comment above it), so `column -t -s$'\t'` and
        // spreadsheet imports read the file as it is; docs/formats.md explains it.
        out.push_str(HEADER);
        let with_issuer = self.with_issuer || self.records.iter().any(|r| r.issuer.is_some());
        if with_issuer {
            out.push_str(ISSUER_HEADER);
        }
        // The names column appears once a server is certified: ledgers without servers keep
        // the 13 (or 14) columns every earlier gitca wrote and reads.
        let with_names = self.records.iter().any(|r| !r.names.is_empty());
        if with_names {
            out.push_str(NAMES_HEADER);
        }
        out.push('\n');
        for r in &self.records {
            let dash = |s: Option<&str>| s.unwrap_or("-").to_string();
            let groups = if r.groups.is_empty() {
                "-".to_string()
            } else {
                r.groups.join(",")
            };
            let fields = [
                r.serial.clone(),
                r.identity.clone(),
                r.kind.as_str().to_string(),
                r.profile.clone(),
                match r.state {
                    State::Issued => "issued",
                    State::Revoked => "revoked",
                }
                .to_string(),
                fmt_time(r.not_before),
                fmt_time(r.not_after),
                dash(r.revoked_at.map(fmt_time).as_deref()),
                dash(r.reason.map(|x| x.as_str())),
                r.key_sha256.clone(),
                r.csr_sha256.clone(),
                dash(r.email.as_deref()),
                groups,
            ];
            out.push_str(&fields.join("\t"));
            if with_issuer {
                out.push('\t');
                out.push_str(r.issuer.as_deref().unwrap_or("-"));
            }
            if with_names {
                out.push('\t');
                if r.names.is_empty() {
                    out.push('-');
                } else {
                    let names: Vec<String> = r.names.iter().map(|n| n.to_string()).collect();
                    out.push_str(&names.join(","));
                }
            }
            out.push('\n');
        }
        out
    }

    /// Records of one identity, in the order they were issued.
    pub fn of<'a>(&'a self, identity: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        let start = self
            .records
            .partition_point(|r| r.identity.as_str() < identity);
        self.records[start..]
            .iter()
            .take_while(move |r| r.identity == identity)
    }

    pub fn contains_serial(&self, serial: &str) -> bool {
        self.records.iter().any(|r| r.serial == serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(serial: &str, identity: &str, state: State) -> Record {
        let t = parse_time("2026-01-01T00:00:00Z").unwrap();
        Record {
            serial: serial.into(),
            identity: identity.into(),
            kind: Kind::User,
            profile: "user".into(),
            state,
            not_before: t,
            not_after: t + time::Duration::days(365),
            revoked_at: (state == State::Revoked).then_some(t),
            reason: (state == State::Revoked).then_some(RevocationReason::Superseded),
            key_sha256: "ab".repeat(32),
            csr_sha256: "cd".repeat(32),
            email: Some("a@example.com".into()),
            groups: vec!["push".into(), "pull".into()],
            issuer: None,
            names: Vec::new(),
        }
    }

    #[test]
    fn ledger_round_trips_and_sorts() {
        let l = Ledger {
            records: vec![
                rec("0b", "zed", State::Issued),
                rec("0a", "alice", State::Revoked),
            ],
            with_issuer: false,
        };
        let text = l.render();
        let back = Ledger::parse(&text).unwrap();
        assert_eq!(back.records[0].identity, "alice");
        assert_eq!(back.records[1], l.records[0]);
        assert_eq!(
            back.render(),
            Ledger::parse(&back.render()).unwrap().render()
        );
        assert_eq!(back.of("zed").count(), 1);
        assert_eq!(back.of("nobody").count(), 0);
    }

    /// Within an identity, rows stay in the order they were issued, whatever their notBefore:
    /// the last live one is current (issue 20: an imported certificate starting minutes after
    /// the backdated one that replaced it).
    #[test]
    fn rows_keep_the_order_of_issue_and_the_last_live_is_current() {
        let t = |s: &str| parse_time(s).unwrap();
        let mut imported = rec("1001", "olga", State::Issued);
        imported.not_before = t("2026-03-01T11:55:00Z");
        let mut reissued = rec("7f", "olga", State::Issued);
        reissued.not_before = t("2026-03-01T11:30:00Z");
        let mut l = Ledger {
            records: vec![rec("0a", "zed", State::Issued), imported, reissued],
            with_issuer: false,
        };
        l.sort();
        let back = Ledger::parse(&l.render()).unwrap();
        let serials: Vec<&str> = back.records.iter().map(|r| r.serial.as_str()).collect();
        assert_eq!(serials, ["1001", "7f", "0a"]);
        let now = t("2026-03-01T12:00:00Z");
        assert_eq!(back.current("olga", now).unwrap().serial, "7f");
        assert_eq!(back.render(), l.render());
    }

    /// The header is the first line and every line has as many fields as it: `column -t` and
    /// spreadsheet imports read the file as it is.
    #[test]
    fn the_file_is_a_plain_table() {
        let l = Ledger {
            records: vec![
                rec("0b", "zed", State::Issued),
                rec("0a", "al", State::Revoked),
            ],
            with_issuer: false,
        };
        let text = l.render();
        assert!(text.starts_with("serial\tidentity\t"), "{text}");
        let widths: Vec<usize> = text.lines().map(|l| l.split('\t').count()).collect();
        assert!(widths.iter().all(|w| *w == 13), "{widths:?}");
        // An older ledger with a comment block above the header still reads.
        let old = format!("# gitca ledger: …\n# Written only by gitca.\n{text}");
        assert_eq!(Ledger::parse(&old).unwrap().records.len(), 2);
    }

    #[test]
    fn duplicate_serial_is_refused() {
        let l = Ledger {
            records: vec![rec("0a", "a", State::Issued), rec("0a", "b", State::Issued)],
            with_issuer: false,
        };
        let e = Ledger::parse(&l.render()).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn hand_edited_revocation_without_reason_is_refused() {
        let text = rec("0a", "a", State::Revoked).clone();
        let mut l = Ledger {
            records: vec![text],
            with_issuer: false,
        };
        l.records[0].reason = None;
        assert!(Ledger::parse(&l.render()).is_err());
    }

    #[test]
    fn the_issuer_column_appears_with_a_hierarchy_and_round_trips() {
        let mut l = Ledger {
            records: vec![rec("0a", "a", State::Issued)],
            with_issuer: false,
        };
        assert!(!l.render().contains("issuer"));
        l.records.push(Record {
            issuer: Some("0123456789abcdef".into()),
            names: Vec::new(),
            ..rec("0b", "b", State::Issued)
        });
        let text = l.render();
        assert!(text.contains("\tgroups\tissuer\n"));
        let back = Ledger::parse(&text).unwrap();
        assert!(back.with_issuer);
        assert_eq!(back.records[0].issuer, None);
        assert_eq!(back.records[1].issuer.as_deref(), Some("0123456789abcdef"));
        assert_eq!(back.render(), text);
        // A 13-field row under the 14-column header, and a malformed issuer: refused.
        let short = text.replace("\t-\n", "\n");
        assert!(Ledger::parse(&short).is_err());
        let bad = text.replace("0123456789abcdef", "XYZ");
        assert!(Ledger::parse(&bad).is_err());
    }
}
