//! Replays the fuzz seeds and every kept crasher (fuzz/regressions/<target>/) through the same
//! code as the cargo-fuzz targets in fuzz/fuzz_targets, so a fixed crash stays fixed.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let is_seed = dir.ends_with(target) && dir.parent().unwrap().ends_with("corpus");
            if is_seed && !name.starts_with("seed-") {
                continue; // libFuzzer's own corpus growth, not committed
            }
            out.push((name, std::fs::read(e.path()).unwrap()));
        }
    }
    out
}

#[test]
fn identities_inputs_never_panic() {
    let config = gitca::repository::config::Config::parse(
        &gitca::repository::config::Config::template("Fuzz CA", "Fuzz"),
    )
    .unwrap();
    let cases = inputs("identities");
    assert!(!cases.is_empty());
    for (_, data) in cases {
        let text: std::sync::Arc<str> = String::from_utf8_lossy(&data).into();
        let (_, errors) =
            gitca::repository::inventory::parse_file(&config, "identities/fuzz.yaml", &text);
        for e in errors {
            let _ = format!("{:?}", miette::Report::new(e));
        }
    }
}

#[test]
fn config_csr_ledger_and_cert_inputs_never_panic() {
    for (_, data) in inputs("config") {
        let _ = gitca::repository::config::Config::parse(&String::from_utf8_lossy(&data));
    }
    let csrs = inputs("csr");
    assert!(
        csrs.iter()
            .any(|(_, d)| gitca::reconcile::policy::verify_csr(d).is_ok()),
        "the seeds are valid CSRs"
    );
    for (_, data) in csrs {
        let _ = gitca::reconcile::policy::verify_csr(&data);
    }
    for (_, data) in inputs("ledger")
        .into_iter()
        .chain(inputs("reconcile_ledger"))
    {
        if let Ok(l) = gitca::repository::ledger::Ledger::parse(&String::from_utf8_lossy(&data)) {
            let r = l.render();
            assert_eq!(
                gitca::repository::ledger::Ledger::parse(&r)
                    .unwrap()
                    .render(),
                r
            );
        }
        gitca::reconcile::fuzzing::ledger_through_reconcile(&String::from_utf8_lossy(&data));
    }
    for (_, data) in inputs("certs") {
        for label in ["CERTIFICATE", "X509 CRL"] {
            let pem = pem::encode(&pem::Pem::new(label, data.clone()));
            let _ = gitca::authority::ca::CaCert::parse(&pem);
            let _ = gitca::authority::ca::CrlInfo::parse(&pem, None);
        }
    }
}
