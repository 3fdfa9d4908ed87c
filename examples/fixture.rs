//! Builds a benchmark-sized CA repository:
//! `cargo run --release --example fixture -- DIR N [p256|rsa4096] [--per-file] [--reconcile] [--revoked-history M --offboard K]`.
//! `--per-file` declares each user in identities/NAME.yaml, as `gitca request` does.
//! Used by benches/openssl-compare.sh and for measuring by hand.

#[path = "../benches/fixture.rs"]
mod fixture;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(
        args.get(1)
            .expect("usage: fixture DIR N [KEY_TYPE] [--reconcile]"),
    );
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).expect("N");
    let kt: gitca::authority::keygen::KeyType = args
        .get(3)
        .map(|s| s.as_str())
        .unwrap_or("p256")
        .parse()
        .expect("key type");
    std::fs::create_dir_all(&dir).unwrap();
    let layout = if args.iter().any(|a| a == "--per-file") {
        fixture::Layout::PerFile
    } else {
        fixture::Layout::OneFile
    };
    let f = fixture::build_layout(&dir, n, kt, layout);
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    if args.iter().any(|a| a == "--reconcile") {
        fixture::reconcile(&f);
    }
    if let Some(m) = value("--revoked-history") {
        fixture::add_revoked_history(&f, m);
    }
    if let Some(k) = value("--offboard") {
        fixture::offboard(&f, k);
    }
    println!("{}", f.root.display());
    println!("{}", f.identity_file.display());
}
