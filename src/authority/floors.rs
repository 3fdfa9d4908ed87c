//! What a relying party has installed, per issuer: the floor no later fetch may go below
//! (invariant 14). `gitca deploy crl` keeps, for every CA whose CRL it ever installed — the
//! pinned root and each intermediate it certified — the highest CRL number, the latest
//! thisUpdate and which CRL bears that number, across fetches, whatever a source serves in
//! between: a mirror that first drops an issuer and then serves an older bundle finds the
//! floor where the newest CRL left it.
//!
//! An issuer leaves the installed set only when nginx no longer needs its CRL: the root CRL
//! revokes that intermediate, or it has expired. A set in which no intermediate is valid any
//! more (a hierarchy whose every intermediate is revoked or expired) is refused too: nginx
//! would refuse every client.
//!
//! Pure: no I/O and no clock; `deploy` keeps the floors in its state file and passes `now`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::authority::ca::{id_of, CaCert};
use crate::authority::chain::{self, Crls, IssuedCrl};

/// The floors under one pinned CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floors {
    /// The SHA-256 fingerprint of the pinned CA: floors under another pin do not apply.
    pub pinned: String,
    /// Per issuer ([`id_of`] its certificate).
    pub issuers: BTreeMap<String, Floor>,
}

/// The newest CRL of one issuer ever installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    pub subject: String,
    pub number: u64,
    /// thisUpdate, seconds since the epoch.
    pub this_update: i64,
    /// SHA-256 of the CRL (DER) that bears `number`: one number, one CRL.
    pub sha256: String,
    /// An intermediate's certificate (PEM), as it verified under the pin; none for the pin.
    #[serde(default)]
    pub cert: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub not_after: Option<i64>,
    /// An installed root CRL revoked this intermediate: its CRL is needed no more.
    #[serde(default)]
    pub revoked: bool,
}

impl Floor {
    fn is_intermediate(&self) -> bool {
        self.cert.is_some()
    }

    fn expired(&self, now: OffsetDateTime) -> bool {
        self.not_after.is_some_and(|t| t <= now.unix_timestamp())
    }
}

/// SHA-256 of a CRL's DER.
pub fn crl_sha256(c: &IssuedCrl) -> String {
    let der = pem::parse(&c.pem)
        .map(pem::Pem::into_contents)
        .unwrap_or_default();
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der))
}

impl Floors {
    pub fn new(pinned: &CaCert) -> Floors {
        Floors {
            pinned: pinned.fingerprint(),
            issuers: BTreeMap::new(),
        }
    }

    /// Whether these floors were kept under `pinned`.
    pub fn belong_to(&self, pinned: &CaCert) -> bool {
        self.pinned == pinned.fingerprint()
    }

    /// The intermediates whose certificates the floors keep (to attribute installed CRLs).
    pub fn intermediates(&self) -> Vec<CaCert> {
        self.issuers
            .values()
            .filter_map(|f| f.cert.as_deref())
            .filter_map(|pem| CaCert::parse(pem).ok())
            .collect()
    }

    /// Raises each issuer's floor to `crls` (installed, or about to be), keeping what it learns
    /// of the intermediates among `intermediates` (verified under the pin), and marks those the
    /// pinned CA's CRL among them revokes.
    pub fn raise(&mut self, crls: &[IssuedCrl], intermediates: &[CaCert], pinned_id: &str) {
        for c in crls {
            let sha256 = crl_sha256(c);
            let this_update = c.info.this_update.unix_timestamp();
            let cert = intermediates
                .iter()
                .find(|i| id_of(&i.der) == c.issuer && c.issuer != pinned_id);
            let floor = self
                .issuers
                .entry(c.issuer.clone())
                .or_insert_with(|| Floor {
                    subject: c.issuer_subject.clone(),
                    number: c.info.number,
                    this_update,
                    sha256: sha256.clone(),
                    cert: None,
                    serial: None,
                    not_after: None,
                    revoked: false,
                });
            if c.info.number > floor.number {
                floor.number = c.info.number;
                floor.sha256 = sha256;
            }
            floor.this_update = floor.this_update.max(this_update);
            if let (Some(i), None) = (cert, &floor.cert) {
                floor.cert = Some(i.pem.clone());
                floor.serial = chain::serial_of(i);
                floor.not_after = Some(i.not_after.unix_timestamp());
            }
        }
        if let Some(root) = crls.iter().find(|c| c.issuer == pinned_id) {
            for f in self.issuers.values_mut() {
                if f.serial
                    .as_ref()
                    .is_some_and(|s| root.info.serials.contains(s))
                {
                    f.revoked = true;
                }
            }
        }
    }

    /// Judges a verified bundle (see [`chain::verify_crls`]) against the floors: `Err` says
    /// why it is refused.
    pub fn check(
        &self,
        fetched: &Crls,
        pinned_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), String> {
        for c in &fetched.crls {
            let Some(f) = self.issuers.get(&c.issuer) else {
                continue;
            };
            let n = c.info.number;
            if n < f.number {
                return Err(format!(
                    "the fetched CRL #{n} of {} is older than #{} installed before: a rollback, refused",
                    c.issuer_subject, f.number
                ));
            }
            if c.info.this_update.unix_timestamp() < f.this_update {
                return Err(format!(
                    "the fetched CRL #{n} of {} was issued {}, before the CRL installed before (#{}, {}): a rollback, refused",
                    c.issuer_subject,
                    crate::time::fmt_time(c.info.this_update),
                    f.number,
                    OffsetDateTime::from_unix_timestamp(f.this_update)
                        .map(crate::time::fmt_time)
                        .unwrap_or_default()
                ));
            }
            if n == f.number && crl_sha256(c) != f.sha256 {
                return Err(format!(
                    "the fetched CRL #{n} of {} is not the CRL #{n} installed before: a CA signs one CRL per number, refused",
                    c.issuer_subject
                ));
            }
        }
        let root_serials: &[String] = fetched
            .crls
            .iter()
            .find(|c| c.issuer == pinned_id)
            .map(|c| c.info.serials.as_slice())
            .unwrap_or_default();
        for (id, f) in &self.issuers {
            if !f.is_intermediate() || f.revoked || f.expired(now) || fetched.of(id).is_some() {
                continue;
            }
            if f.serial.as_ref().is_some_and(|s| root_serials.contains(s)) {
                continue;
            }
            return Err(format!(
                "the fetched CRLs leave out intermediate {}, whose CRL #{} is installed: nginx would refuse every client it certified; refused (an intermediate leaves only once the root CRL revokes it or it expires)",
                f.subject, f.number
            ));
        }
        let hierarchy =
            !fetched.intermediates.is_empty() || self.issuers.values().any(Floor::is_intermediate);
        let live = fetched.intermediates.iter().any(|i| {
            let revoked = chain::serial_of(i).is_some_and(|s| root_serials.contains(&s));
            i.not_after > now && !revoked && fetched.of(&id_of(&i.der)).is_some()
        });
        if hierarchy && !live {
            return Err("no intermediate of the fetched CRLs is valid (each is revoked by the root CRL, or expired): nginx would refuse every client; refused".into());
        }
        Ok(())
    }

    /// The intermediates whose CRL nginx needs (installed before, not revoked, not expired)
    /// but which `installed` (issuer ids) lacks.
    pub fn missing<'a>(&'a self, installed: &[&str], now: OffsetDateTime) -> Vec<&'a Floor> {
        self.issuers
            .iter()
            .filter(|(id, f)| {
                f.is_intermediate()
                    && !f.revoked
                    && !f.expired(now)
                    && !installed.contains(&id.as_str())
            })
            .map(|(_, f)| f)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::ca::{self, CaKey};
    use crate::authority::keygen::KeyType;

    fn at(days: i64) -> OffsetDateTime {
        crate::time::parse_time("2026-01-01T00:00:00Z").unwrap() + time::Duration::days(days)
    }

    /// A single-level CA's bundle of one CRL, signed at `day` with `number`.
    fn bundle(ca: &CaCert, key: &CaKey, number: u64, day: i64) -> Crls {
        let pem = ca::sign_crl(ca, key, number, at(day), at(day + 7), &[]).unwrap();
        chain::verify_crls(&pem, ca, at(day)).unwrap()
    }

    #[test]
    fn a_floor_refuses_an_older_or_a_second_crl_of_one_number() {
        let key = CaKey::new(KeyType::P256.generate().unwrap());
        let ca = CaCert::parse(
            &ca::self_signed("T", "O", &key, at(0), time::Duration::days(3650)).unwrap(),
        )
        .unwrap();
        let id = id_of(&ca.der);
        let mut floors = Floors::new(&ca);
        let second = bundle(&ca, &key, 2, 1);
        floors.check(&second, &id, at(1)).unwrap();
        floors.raise(&second.crls, &[], &id);
        assert_eq!(floors.issuers[&id].number, 2);
        // The same CRL again: fine. Another one under number 2, or number 1: refused.
        floors.check(&second, &id, at(1)).unwrap();
        let other = bundle(&ca, &key, 2, 2);
        let why = floors.check(&other, &id, at(2)).unwrap_err();
        assert!(why.contains("one CRL per number"), "{why}");
        let older = bundle(&ca, &key, 1, 0);
        let why = floors.check(&older, &id, at(1)).unwrap_err();
        assert!(why.contains("older than #2"), "{why}");
        // A higher number signed earlier than what is installed: refused too.
        let backdated = bundle(&ca, &key, 3, 0);
        let why = floors.check(&backdated, &id, at(1)).unwrap_err();
        assert!(why.contains("before the CRL installed before"), "{why}");
        // Raising never lowers.
        floors.raise(&older.crls, &[], &id);
        assert_eq!(floors.issuers[&id].number, 2);
        assert!(
            floors.missing(&[], at(1)).is_empty(),
            "the pin is no intermediate"
        );
    }
}
