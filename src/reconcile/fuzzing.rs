//! Entry points shared by the cargo-fuzz targets (`fuzz/fuzz_targets`) and their replay in the
//! test suite (`tests/fuzz_regressions.rs`): each drives one hostile input through the same code
//! a command runs. Not part of gitca's interface.
#![doc(hidden)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::authority::ca::{self, CaCert, CaKey, CrlInfo};
use crate::authority::keygen::KeyType;
use crate::reconcile::plan::Op;
use crate::repository::config::Config;
use crate::repository::ledger::Ledger;

struct Signer {
    ca: CaCert,
    key: CaKey,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let key = CaKey::new(KeyType::P256.generate().expect("a P-256 key"));
        let now = crate::time::parse_time("2026-01-01T00:00:00Z").expect("a time");
        let pem = ca::self_signed("Fuzz CA", "Fuzz", &key, now, time::Duration::days(3650))
            .expect("a CA certificate");
        Signer {
            ca: CaCert::parse(&pem).expect("parses"),
            key,
        }
    })
}

/// A ledger (as it might be merged by hand) through everything reconcile does with it: plan
/// (nobody declared, so every live certificate is revoked), the revocations applied, the CRL
/// built, signed and read back, the ledger rendered and parsed again. Panics only on a bug.
pub fn ledger_through_reconcile(text: &str) {
    let Ok(mut ledger) = Ledger::parse(text) else {
        return;
    };
    let signer = signer();
    let config = Config::parse(&Config::template("Fuzz CA", "Fuzz")).expect("the template");
    for now in [
        "2026-01-01T00:00:00Z",
        "2099-12-31T00:00:00Z",
        "1970-01-02T00:00:00Z",
    ] {
        let now = crate::time::parse_time(now).expect("a time");
        let none = BTreeMap::new();
        let plan = crate::reconcile::plan::plan(&crate::reconcile::plan::Input {
            identities: &[],
            ledger: &ledger,
            config: &config,
            crl: crate::reconcile::plan::CrlState {
                number: 1,
                next_update: Some(now),
            },
            issuers: &crate::reconcile::plan::Issuers::default(),
            ca_not_after: signer.ca.not_after,
            now,
            held: &none,
            refused: &none,
            signing_blocked: None,
            removals_suspended: None,
        });
        let revoke: BTreeMap<String, _> = plan
            .actions
            .iter()
            .filter(|a| a.op == Op::Revoke)
            .filter_map(|a| Some((a.serial.clone()?, a.revocation?)))
            .collect();
        for r in &mut ledger.records {
            if let Some(why) = revoke.get(&r.serial) {
                crate::reconcile::apply::apply_revocation(r, *why, now);
            }
        }
        let Ok(entries) = crate::repository::ledger::crl_entries(&ledger, now, None) else {
            continue;
        };
        let number = plan.crl.as_ref().map_or(2, |c| c.number);
        let next = plan
            .crl
            .as_ref()
            .map_or(now + time::Duration::days(7), |c| c.next_update);
        let pem = ca::sign_crl(&signer.ca, &signer.key, number, now, next, &entries)
            .expect("a CRL of a parsed ledger signs");
        let info = CrlInfo::parse(&pem, Some(&signer.ca)).expect("a signed CRL reads back");
        assert_eq!(info.number, number);
        assert_eq!(info.serials.len(), entries.len());
    }
    let rendered = ledger.render();
    let again = Ledger::parse(&rendered).expect("a rendered ledger parses");
    assert_eq!(again.render(), rendered, "rendering is stable");
}
