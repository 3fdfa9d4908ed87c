//! The house rules of docs/development.md, "Architecture", checked on the source itself:
//! - the core never imports the command line (`crate::commands`, `crate::cli`);
//! - a folder imports its own layer and those below it, except the upward imports listed in
//!   docs/architecture.allow: a new one fails here, and so does a listed one that is gone (the
//!   list stays the truth, and shrinks as the debt is paid);
//! - modules import each other in one direction only: no cycle in the module graph (doc links
//!   included), with no debt list;
//! - no function outside tests is longer than 80 lines of code (blank lines and `//` comments
//!   do not count), except those listed in the same way in docs/long-functions.allow.
//!
//! `GITCA_BLESS_ARCHITECTURE=1 cargo test --test architecture` rewrites both lists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers from the bottom; a file may import its own layer and those below.
fn layer(folder: &str) -> usize {
    match folder {
        "error" | "output" | "layout" | "time" => 0,
        "authority" => 1,
        "repository" => 2,
        "reconcile" => 3,
        "relying" => 4,
        // The command line, the binary and the crate root sit on top.
        _ => 5,
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under src/, as (path relative to the crate root, text).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root()).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("src"), &mut out);
    out.sort();
    assert!(
        out.len() > 40,
        "src/ not found or nearly empty: {}",
        out.len()
    );
    out
}

/// The folder (or top-level module) a source file belongs to: `src/relying/deploy.rs` is in
/// `relying`, `src/error.rs` is `error`.
fn folder_of(rel: &str) -> &str {
    let inner = rel.trim_start_matches("src/");
    match inner.split_once('/') {
        Some((folder, _)) => folder,
        None => inner.trim_end_matches(".rs"),
    }
}

/// The code before the file's test module: tests may reach anywhere.
fn main_part(text: &str) -> &str {
    match text.find("\n#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// `crate::FOLDER::MODULE` paths a file names, as "FOLDER::MODULE" (or "FOLDER").
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            [] => {}
            [folder] => drop(found.insert(folder.to_string())),
            [folder, module, ..] => drop(found.insert(format!("{folder}::{module}"))),
        }
    }
    found
}

/// Every import of one file that goes up a layer, or from the core to the command line.
fn upward_imports_of(rel: &str, text: &str, edges: &mut BTreeSet<String>) {
    let from = folder_of(rel);
    for path in crate_paths(main_part(text)) {
        let to = path.split("::").next().unwrap();
        let core = layer(from) < 5;
        let cli = matches!(to, "commands" | "cli");
        if (core && cli) || layer(to) > layer(from) {
            edges.insert(format!("{rel} -> {path}"));
        }
    }
}

/// The lines of an allow-list file, without comments and blank lines.
fn allowed(name: &str) -> BTreeSet<String> {
    let path = root().join("docs").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Compares what the source has with what the list allows, both ways. With
/// GITCA_BLESS_ARCHITECTURE=1 it rewrites the list instead (review the diff: every added line
/// is new debt).
fn compare(found: &BTreeSet<String>, list: &str, what: &str) {
    if std::env::var_os("GITCA_BLESS_ARCHITECTURE").is_some() {
        let path = root().join("docs").join(list);
        let text = std::fs::read_to_string(&path).unwrap();
        let header: String = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let body: String = found.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, header + &body).unwrap();
        return;
    }
    let allow = allowed(list);
    let new: Vec<_> = found.difference(&allow).collect();
    let gone: Vec<_> = allow.difference(found).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "{what}\nnew (move the code, or justify and add the line to docs/{list}):\n  {}\n\
         gone (delete the line from docs/{list}):\n  {}",
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        gone.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
    );
}

#[test]
fn the_core_never_imports_the_command_line_and_layers_only_look_down() {
    // The rule can fail: a core file naming the command line, or a layer above it, is caught;
    // the command line naming the core, or a folder naming a layer below, is not.
    let mut probe = BTreeSet::new();
    let text =
        "use crate::commands::init::Args;\nuse crate::relying::deploy;\nuse crate::output::encode;";
    upward_imports_of("src/repository/probe.rs", text, &mut probe);
    upward_imports_of("src/commands/probe.rs", text, &mut probe);
    let expected = [
        "src/repository/probe.rs -> commands::init",
        "src/repository/probe.rs -> relying::deploy",
    ];
    assert_eq!(probe, expected.map(String::from).into(), "{probe:?}");

    let mut edges = BTreeSet::new();
    for (rel, text) in sources() {
        upward_imports_of(&rel, &text, &mut edges);
    }
    assert!(
        !edges
            .iter()
            .any(|e| e.contains("-> commands") || e.contains("-> cli")),
        "the core imports the command line: {:?}",
        edges
            .iter()
            .filter(|e| e.contains("-> commands") || e.contains("-> cli"))
            .collect::<Vec<_>>()
    );
    compare(
        &edges,
        "architecture.allow",
        "imports that go up a layer (docs/development.md, Architecture)",
    );
}

/// The functions of one file over `limit` lines of code outside its test module, as "path fn".
fn long_functions_of(rel: &str, text: &str, limit: usize, long: &mut BTreeSet<String>) {
    {
        let lines: Vec<&str> = main_part(text).lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let Some(name) = fn_name(trimmed) else {
                continue;
            };
            if line.trim_end().ends_with(';') {
                continue;
            }
            let close = format!("{indent}}}");
            let Some(end) = (i + 1..lines.len()).find(|&j| lines[j] == close) else {
                continue;
            };
            let code = lines[i..=end]
                .iter()
                .filter(|l| !l.trim().is_empty() && !l.trim().starts_with("//"))
                .count();
            if code > limit {
                long.insert(format!("{rel} {name}"));
            }
        }
    }
}

/// The name of the function a (trimmed) line declares, if it declares one.
fn fn_name(line: &str) -> Option<&str> {
    let mut rest = line;
    for prefix in ["pub(crate) ", "pub(super) ", "pub ", "const ", "unsafe "] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

#[test]
fn no_function_on_a_main_path_is_longer_than_a_screen() {
    // The counter can fail: a function of 81 lines of code is long, one of 80 is not, and
    // blank lines and comments do not count.
    let body = |n: usize| {
        (0..n)
            .map(|i| format!("    let _x{i} = {i};\n\n    // why\n"))
            .collect::<String>()
    };
    let mut probe = BTreeSet::new();
    for (name, statements) in [("short", 78), ("long", 79)] {
        let text = format!("pub fn {name}() {{\n{}}}\n", body(statements));
        long_functions_of("src/probe.rs", &text, 80, &mut probe);
    }
    assert_eq!(probe, ["src/probe.rs long".to_string()].into(), "{probe:?}");

    let mut long = BTreeSet::new();
    for (rel, text) in sources() {
        long_functions_of(&rel, &text, 80, &mut long);
    }
    compare(
        &long,
        "long-functions.allow",
        "functions over 80 lines of code (split them along the steps they narrate)",
    );
}

/// The module a source file is: `src/relying/deploy.rs` is `relying::deploy`,
/// `src/relying/mod.rs` is `relying`, `src/error.rs` is `error`.
fn module_of(rel: &str) -> String {
    let inner = rel.trim_start_matches("src/").trim_end_matches(".rs");
    inner.trim_end_matches("/mod").replace('/', "::")
}

/// The `crate::` paths a text names, groups spread out: `use crate::a::{b::X, c}` names
/// `a::b::X` and `a::c`.
fn named_paths(text: &str) -> Vec<String> {
    fn spread(prefix: &str, rest: &str, out: &mut Vec<String>) {
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let full = format!("{prefix}{path}");
        let after = &rest[path.len()..];
        if !((full.is_empty() || full.ends_with("::")) && after.starts_with('{')) {
            out.push(full.trim_end_matches(':').to_string());
            return;
        }
        // A group: its items, split at the commas outside nested groups.
        let mut depth = 0;
        let mut start = 1;
        for (i, c) in after.char_indices() {
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    spread(&full, after[start..i].trim_start(), out);
                    start = i + 1;
                    if c == '}' {
                        return;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        spread("", &text[i + "crate::".len()..], &mut out);
    }
    out
}

/// The module graph: for each module, the other modules its code outside tests names (a path
/// is credited to the longest module that prefixes it: `crate::a::b::X` to `a::b` when that is
/// a module, else to `a`).
fn module_graph(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.iter().map(|(rel, _)| module_of(rel)).collect();
    let mut graph = BTreeMap::new();
    for (rel, text) in files {
        let from = module_of(rel);
        let mut to = BTreeSet::new();
        for path in named_paths(main_part(text)) {
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            let target = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find(|m| modules.contains(m));
            if let Some(target) = target.filter(|t| *t != from) {
                to.insert(target);
            }
        }
        graph.insert(from, to);
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan): each is a cycle of
/// imports, as its modules sorted.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        for next in w.graph.get(v).into_iter().flatten() {
            let next = next.as_str();
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.low[v].min(w.low[next]);
                w.low.insert(v, low);
            } else if w.stack.contains(&next) {
                let low = w.low[v].min(w.index[next]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let at = w.stack.iter().rposition(|m| *m == v).unwrap();
            let mut component: Vec<String> = w.stack.drain(at..).map(String::from).collect();
            if component.len() > 1 {
                component.sort();
                w.found.push(component);
            }
        }
    }
    let mut w = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !w.index.contains_key(v.as_str()) {
            visit(&mut w, v);
        }
    }
    w.found.sort();
    w.found
}

#[test]
fn modules_import_each_other_in_one_direction_only() {
    // The check can fail: two modules naming each other (one through a group) are a cycle; a
    // third that only they import is not in it, and an import inside a test module (which may
    // reach anywhere) does not count.
    let probe = [
        ("src/error.rs", "pub struct Error;"),
        (
            "src/repository/probe_a.rs",
            "use crate::repository::probe_b::Thing;\nuse crate::repository::probe_c;",
        ),
        (
            "src/repository/probe_b.rs",
            "use crate::{error::Error, repository::{probe_a::{self, A}, probe_c::Other}};",
        ),
        (
            "src/repository/probe_c.rs",
            "use crate::error::Error;\n#[cfg(test)]\nmod tests {\n    use crate::repository::probe_a;\n}",
        ),
    ]
    .map(|(rel, text)| (rel.to_string(), text.to_string()));
    let graph = module_graph(&probe);
    assert_eq!(
        graph["repository::probe_b"],
        ["error", "repository::probe_a", "repository::probe_c"]
            .map(String::from)
            .into(),
        "{graph:?}"
    );
    assert_eq!(
        cycles(&graph),
        [vec![
            "repository::probe_a".to_string(),
            "repository::probe_b".to_string()
        ]],
        "{graph:?}"
    );

    let graph = module_graph(&sources());
    assert!(graph.contains_key("authority::ca") && graph.contains_key("layout"));
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "modules that import each other, directly or around a loop (move what they share \
         down to the lower one, or into a small module below both; docs/development.md, \
         Architecture):\n  {}",
        found
            .iter()
            .map(|c| c.join(" <-> "))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}
