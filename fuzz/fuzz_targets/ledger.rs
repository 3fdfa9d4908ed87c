//! ledger.tsv: parsing and rendering round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(ledger) = gitca::repository::ledger::Ledger::parse(text) {
            let rendered = ledger.render();
            let again = gitca::repository::ledger::Ledger::parse(&rendered).expect("a rendered ledger parses");
            assert_eq!(again.render(), rendered, "rendering is stable");
        }
    }
});
