//! Identity files from a pull request: YAML parsing, budgets, validation and spans.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let config =
            gitca::repository::config::Config::parse(&gitca::repository::config::Config::template("Fuzz CA", "Fuzz"))
                .unwrap();
        let text: std::sync::Arc<str> = text.into();
        let (ids, errors) = gitca::repository::inventory::parse_file(&config, "identities/fuzz.yaml", &text);
        // Rendering every diagnostic exercises the spans.
        for e in errors {
            let _ = format!("{:?}", miette::Report::new(e));
        }
        let _ = ids.len();
    }
});
