//! Loading a CA repository's declared and recorded state: configuration, identities (with
//! source spans), the ledger, and the current CRL's number and nextUpdate. No CSR is parsed
//! and no signature is verified here: a no-op reconcile reads this and stops.

use std::path::Path;

use time::OffsetDateTime;

use crate::ca::{CaCert, CrlInfo};
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::init::{CA_CERT, CRL_FILE};
use crate::inventory::{self, Inventory};
use crate::ledger::{self, Ledger};
use crate::plan::{self, CrlState, Plan};

pub struct State {
    pub config: Config,
    pub inventory: Inventory,
    pub ledger: Ledger,
    pub crl: CrlInfo,
    pub ca: CaCert,
}

pub fn read(root: &Path, rel: &str) -> Result<String> {
    let path = root.join(rel);
    std::fs::read_to_string(&path).map_err(Error::io("read", &path))
}

/// Loads everything reconcile, plan and check start from, reporting every problem at once.
pub fn load(root: &Path) -> Result<State> {
    let config = Config::parse(&read(root, config::FILE)?)?;
    let mut errors = Vec::new();
    let inventory = inventory::load(root, &config)
        .map_err(|e| errors.push(e))
        .ok();
    let ledger = read(root, ledger::FILE)
        .and_then(|t| Ledger::parse(&t))
        .map_err(|e| errors.push(e))
        .ok();
    let ca = read(root, CA_CERT)
        .and_then(|t| CaCert::parse(&t))
        .map_err(|e| errors.push(e))
        .ok();
    let crl = read(root, CRL_FILE)
        .and_then(|t| CrlInfo::parse(&t, None))
        .map_err(|e| errors.push(e))
        .ok();
    Error::collect(errors)?;
    match (inventory, ledger, ca, crl) {
        (Some(inventory), Some(ledger), Some(ca), Some(crl)) => Ok(State {
            config,
            inventory,
            ledger,
            crl,
            ca,
        }),
        _ => unreachable!("every piece that failed to load pushed an error"),
    }
}

impl State {
    pub fn plan(&self, now: OffsetDateTime) -> Plan {
        plan::plan(&plan::Input {
            identities: &self.inventory.identities,
            ledger: &self.ledger,
            config: &self.config,
            crl: CrlState {
                number: self.crl.number,
                next_update: self.crl.next_update,
            },
            ca_not_after: self.ca.not_after,
            now,
        })
    }
}
