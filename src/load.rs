//! Loading a CA repository's declared and recorded state: configuration, identities (with
//! source spans), the ledger, and the current CRL's number and nextUpdate. No CSR is parsed
//! and no signature is verified here: a no-op reconcile reads this and stops.

use time::OffsetDateTime;

use crate::ca::{self, CaCert, CrlInfo};
use crate::config::{self, Config};
use crate::confined::Dir;
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

/// Reads a repository file as text: without following links, a regular file of at most
/// `limit` bytes (checked before reading).
pub fn read(dir: &Dir, rel: &str, limit: u64) -> Result<String> {
    dir.read_string(rel, limit)
}

/// Loads everything reconcile, plan and check start from, reporting every problem at once.
pub fn load(dir: &Dir) -> Result<State> {
    load_with(dir, || Ok(())).map(|(state, ())| state)
}

/// [`load`], with `first` run on another thread while the identities are parsed and their CSRs
/// hashed, and finished before the ledger, CA certificate and CRL are read. Reconcile restores
/// an interrupted run's outputs there (they are the ledger and the CRL, never an input).
pub fn load_with<T: Send>(
    dir: &Dir,
    first: impl FnOnce() -> Result<T> + Send,
) -> Result<(State, T)> {
    let config = Config::parse(&read(dir, config::FILE, config::MAX_BYTES)?)?;
    let (inventory, side) = std::thread::scope(|s| {
        let side = s.spawn(|| {
            let first = first()?;
            let ledger = read(dir, ledger::FILE, ledger::MAX_BYTES).and_then(|t| Ledger::parse(&t));
            let ca = read(dir, CA_CERT, ca::MAX_CERT_BYTES).and_then(|t| CaCert::parse(&t));
            let crl = read(dir, CRL_FILE, ca::MAX_CRL_BYTES).and_then(|t| CrlInfo::parse(&t, None));
            Ok::<_, Error>((first, ledger, ca, crl))
        });
        let inventory = inventory::load(dir, &config);
        let side = side
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (inventory, side)
    });
    let (first, ledger, ca, crl) = side?;
    let mut errors = Vec::new();
    let inventory = inventory.map_err(|e| errors.push(e)).ok();
    let ledger = ledger.map_err(|e| errors.push(e)).ok();
    let ca = ca.map_err(|e| errors.push(e)).ok();
    let crl = crl.map_err(|e| errors.push(e)).ok();
    Error::collect(errors)?;
    match (inventory, ledger, ca, crl) {
        (Some(inventory), Some(ledger), Some(ca), Some(crl)) => Ok((
            State {
                config,
                inventory,
                ledger,
                crl,
                ca,
            },
            first,
        )),
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
