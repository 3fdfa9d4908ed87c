//! What `doctor` and `check` read: CA certificates and CRLs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for label in ["CERTIFICATE", "X509 CRL"] {
        let pem = pem::encode(&pem::Pem::new(label, data.to_vec()));
        if let Ok(ca) = gitca::authority::ca::CaCert::parse(&pem) {
            let _ = gitca::authority::ca::CrlInfo::parse(&pem, Some(&ca));
        }
        let _ = gitca::authority::ca::CrlInfo::parse(&pem, None);
    }
});
