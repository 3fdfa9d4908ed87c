//! CSR parsing, signature verification and key policy.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = gitca::reconcile::policy::verify_csr(data) {
        let _ = gitca::reconcile::policy::check_name(&csr, "alice");
    }
    // The same bytes as DER inside a PEM block reach the ASN.1 parser directly.
    let pem = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", data.to_vec()));
    let _ = gitca::reconcile::policy::verify_csr(pem.as_bytes());
});
