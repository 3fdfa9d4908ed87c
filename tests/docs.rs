//! Every command in the documentation is exercised: README.md and each page under docs/ are
//! walkthroughs whose ```sh blocks run, in order, as one bash script (`set -euo pipefail`) in a
//! fresh directory, with the gitca under test first on PATH. A block that cannot run here (it
//! needs a real server, root, a terminal or the network) is marked ```sh norun: each gitca
//! command in it is still parsed by gitca's own command line, so a renamed flag or subcommand
//! fails this test. Every docs/ page the code or the other docs point at exists.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use common::*;

/// A page's code blocks: (runs, text, line of the opening fence).
fn blocks(page: &str) -> Vec<(bool, String, usize)> {
    let mut out = Vec::new();
    let mut open: Option<(bool, usize, String)> = None;
    for (n, line) in page.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                let mut words = info.split_whitespace();
                if words.next() == Some("sh") {
                    let runs = !words.any(|w| w == "norun");
                    open = Some((runs, n + 1, String::new()));
                } else {
                    open = Some((false, 0, String::new()));
                }
            }
            (Some((runs, at, text)), Some(_)) => {
                if *at > 0 {
                    out.push((*runs, std::mem::take(text), *at));
                }
                open = None;
            }
            (Some((_, _, text)), None) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// The gitca command lines of a block (continuations joined, comments and `VAR=…` prefixes,
/// `sudo` and a `$ ` prompt dropped), as argument vectors.
fn gitca_commands(block: &str) -> Vec<Vec<String>> {
    let mut joined = Vec::new();
    let mut cur = String::new();
    for line in block.lines() {
        let line = line.trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
        } else {
            cur.push_str(line);
            joined.push(std::mem::take(&mut cur));
        }
    }
    let mut out = Vec::new();
    for line in joined {
        // Each command of a pipeline or list that starts with gitca.
        for part in line.split(['|', ';']).flat_map(|p| p.split("&&")) {
            let Some(words) = shlex::split(part.split(" #").next().unwrap_or("")) else {
                continue;
            };
            let mut words = words.into_iter().skip_while(|w| {
                w == "$" || w == "sudo" || w == "exec" || (w.contains('=') && !w.starts_with('-'))
            });
            if words.next().as_deref() == Some("gitca") {
                // Redirections are the shell's, not arguments.
                let mut args = Vec::new();
                let mut skip_next = false;
                for w in words {
                    if std::mem::take(&mut skip_next) {
                        continue;
                    }
                    let op = w.trim_start_matches(|c: char| c.is_ascii_digit());
                    if [">", ">>", "<", ">&"].contains(&op) {
                        skip_next = true;
                    } else if !(op.starts_with('>') || op.starts_with('<')) {
                        args.push(w);
                    }
                }
                out.push(args);
            }
        }
    }
    out
}

fn pages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// Runs a page's runnable blocks as one script; returns what it printed.
fn run_page(page: &Path) -> Option<String> {
    let text = std::fs::read_to_string(page).unwrap();
    let runnable: Vec<(String, usize)> = blocks(&text)
        .into_iter()
        .filter(|b| b.0)
        .map(|b| (b.1, b.2))
        .collect();
    if runnable.is_empty() {
        return None;
    }
    let name = page.file_name().unwrap().to_string_lossy().to_string();
    let mut script = String::from("set -euo pipefail\n");
    for (block, line) in &runnable {
        script.push_str(&format!("echo '>>> {name}:{line}' >&2\n{block}"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_gitca"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&script).current_dir(&work);
    for (k, _) in std::env::vars() {
        if k.starts_with("GITCA_") || k.starts_with("GIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PATH", path)
        .env("HOME", &home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Docs")
        .env("GIT_AUTHOR_EMAIL", "docs@example.com")
        .env("GIT_COMMITTER_NAME", "Docs")
        .env("GIT_COMMITTER_EMAIL", "docs@example.com");
    let o = cmd.output().unwrap();
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "{name}: a documented command failed (the last `>>>` line names the block):\n{said}"
    );
    Some(said)
}

#[test]
fn every_runnable_block_of_every_page_runs() {
    let mut ran = Vec::new();
    for page in pages() {
        if let Some(out) = run_page(&page) {
            ran.push((page, out));
        }
    }
    let names: Vec<String> = ran
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    for page in [
        "setup.md",
        "onboarding.md",
        "custody.md",
        "deploy.md",
        "offline-root.md",
        "formats.md",
    ] {
        assert!(names.iter().any(|n| n == page), "{page} runs: {names:?}");
    }
}

#[test]
fn every_gitca_command_in_the_docs_parses() {
    let mut seen = 0;
    let mut bad = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for (_, block, line) in blocks(&text) {
            for args in gitca_commands(&block) {
                seen += 1;
                let argv = std::iter::once("gitca".to_string()).chain(args.iter().cloned());
                if let Err(e) = gitca::cli::Cli::try_parse_from(argv) {
                    if !matches!(
                        e.kind(),
                        clap::error::ErrorKind::DisplayHelp
                            | clap::error::ErrorKind::DisplayVersion
                    ) {
                        bad.push(format!(
                            "{}:{line}: gitca {}\n{e}",
                            page.display(),
                            args.join(" ")
                        ));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(seen > 60, "only {seen} gitca commands found in the docs");
    // The check can fail: a flag that does not exist is caught.
    let wrong = gitca_commands("gitca reconcile --force\n");
    let argv = std::iter::once("gitca".to_string()).chain(wrong[0].iter().cloned());
    assert!(gitca::cli::Cli::try_parse_from(argv).is_err());
}

#[test]
fn every_page_the_code_and_the_docs_point_at_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![root.join("README.md")];
    let mut dirs: Vec<PathBuf> = ["src", "docs", "examples/ci", "examples/systemd", "scripts"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                sources.push(p);
            } else if p.is_dir() && p.starts_with(root.join("src")) {
                dirs.push(p);
            }
        }
    }
    let mut missing = Vec::new();
    let mut found = 0;
    for src in sources {
        let text = std::fs::read_to_string(&src).unwrap_or_default();
        for (i, _) in text.match_indices("docs/") {
            let tail: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/-_.".contains(*c))
                .collect();
            let Some(page) = tail
                .strip_suffix('.')
                .or(Some(&tail))
                .filter(|t| t.ends_with(".md"))
            else {
                continue;
            };
            found += 1;
            if !root.join(page).is_file() {
                missing.push(format!("{} names {page}", src.display()));
            }
        }
    }
    assert!(found > 10, "only {found} references to docs/ pages");
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// README's first command: the demo runs to the end and shows what it promises.
#[test]
fn the_demo_runs_and_bob_is_refused_after_offboarding() {
    for t in ["nginx", "docker-registry", "curl", "age-keygen", "openssl"] {
        require(t);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .env("GITCA_BIN", env!("CARGO_BIN_EXE_gitca"))
        .env_remove("GITCA_IDENTITY")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    let after = out
        .split("== 10.")
        .nth(1)
        .unwrap_or_else(|| panic!("step 10 ran:\n{out}"));
    assert!(after.contains("installed CRL #2"), "{after}");
    assert!(after.contains("alice GET /v2/ -> 200"), "{after}");
    assert!(after.contains("bob   GET /v2/ -> 400"), "{after}");
    let before = out.split("== 9.").next().unwrap();
    assert!(
        before.contains("bob   GET /v2/ -> 200"),
        "bob got in before: {before}"
    );
}

#[test]
fn the_command_finder_reads_what_the_docs_write() {
    let cmds = gitca_commands(
        "GITCA_IDENTITY=\"$(cat ci.agekey)\" gitca reconcile || test $? -eq 3\n\
         sudo gitca bundle alice --key a.key \\\n    --registry r:5000  # a comment\n\
         cd ca && gitca check --base main\n\
         gitca export nginx --listen 443 > /etc/nginx/conf.d/r.conf 2>/dev/null\n",
    );
    assert_eq!(
        cmds,
        vec![
            vec!["reconcile".to_string()],
            ["bundle", "alice", "--key", "a.key", "--registry", "r:5000"]
                .map(String::from)
                .to_vec(),
            ["check", "--base", "main"].map(String::from).to_vec(),
            ["export", "nginx", "--listen", "443"]
                .map(String::from)
                .to_vec(),
        ]
    );
    let _ = stdout; // common's helpers are shared by every test binary
}
