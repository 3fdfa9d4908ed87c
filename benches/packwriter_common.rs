//! What benches/packwriter.rs and benches/packwriter-gix share: the blobs, the peak RSS, and
//! the check that git reads back what a writer wrote.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;

/// The `i`th of a set of distinct certificate-sized PEM blobs (786 bytes, as a P-256 leaf):
/// a 540-byte "DER" body whose middle is shared by every blob (issuer, extensions, OIDs) and
/// whose serial, key and signature are pseudo-random, so neither zlib nor deltas find more
/// than they would in real certificates.
pub fn cert_like(i: u64) -> Vec<u8> {
    let mut state = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        // xorshift64*: deterministic, and enough to make every blob distinct.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    };
    let mut der = Vec::with_capacity(540);
    der.extend((0..18).map(|_| next()));
    der.extend((0..180u32).map(|k| (k * 31 % 251) as u8));
    der.extend((0..342).map(|_| next()));
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    for line in b64.as_bytes().chunks(64) {
        pem.extend_from_slice(line);
        pem.push(b'\n');
    }
    pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    pem
}

/// This process's peak resident set so far, in KiB (VmHWM).
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `git init` of a fresh repository in `dir`.
pub fn git_init(dir: &Path) {
    let st = Command::new("git")
        .args(["init", "-q"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Proves the writer's result with git itself: `git fsck --strict` (re-hashes every object
/// and checks every pack and index), every id present as a blob of the right size
/// (`cat-file --batch-check`), and every 250th blob read back byte for byte.
pub fn verify(dir: &Path, ids: &[String], blobs: &[Vec<u8>]) {
    let fsck = Command::new("git")
        .args(["fsck", "--strict", "--no-dangling"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "git fsck: {}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    let mut check = Command::new("git")
        .args(["cat-file", "--batch-check"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = check.stdin.take().unwrap();
    let input: String = ids.iter().map(|id| format!("{id}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = check.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), ids.len());
    for ((line, id), blob) in lines.iter().zip(ids).zip(blobs) {
        assert_eq!(*line, format!("{id} blob {}", blob.len()));
    }
    for (id, blob) in ids.iter().zip(blobs).step_by(250) {
        let out = Command::new("git")
            .args(["cat-file", "blob", id])
            .current_dir(dir)
            .output()
            .unwrap();
        assert_eq!(&out.stdout, blob, "{id}");
    }
}
