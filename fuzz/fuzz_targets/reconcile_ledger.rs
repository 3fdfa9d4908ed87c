//! A hand-merged ledger.tsv through what reconcile does with it: plan, revocations, the CRL
//! signed and read back, the ledger rendered (see gitca::reconcile::fuzzing).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        gitca::reconcile::fuzzing::ledger_through_reconcile(text);
    }
});
