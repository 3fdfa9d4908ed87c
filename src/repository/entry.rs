//! An identity's entry in whichever identities file declares it, edited in place: `gitca
//! identity revoke`, `reinstate` and `offboard`.
//!
//! Shell recipes (`echo "    revoke: key-compromise" >> identities/bob.yaml`) edit the last
//! entry of a file, which is someone else's once the file is shared (identities/imported.yaml,
//! a team's people.yaml). These commands find the entry by name through the loader reconcile
//! uses (its source position), change only that entry's lines — every other line, comment and
//! blank stays as it was — check the result with the same loader before writing, and show the
//! plan that follows. An entry whose layout they cannot edit safely (a flow-style list) is
//! refused with the file and line, to be edited by hand.

use std::io::Write;

use crate::authority::revocation::RevocationReason;
use crate::error::{Error, Result};
use crate::repository::config::{self, Config};
use crate::repository::git::CaRepo;
use crate::repository::inventory::{self, Identity};
use crate::repository::load::read;

/// Where an entry lies in its file, by lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extent {
    /// The line of the item's `-`.
    start: usize,
    /// Its last line holding a key or value (comments and blanks after it are not its own).
    end: usize,
    /// The column of its keys.
    key_col: usize,
}

/// The lines of `text` with their byte offsets.
fn lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        out.push((at, l));
        at += l.len();
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A line with no key or value: blank, or a comment.
fn is_quiet(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// The entry whose `name` value starts at byte `offset`: a block-style sequence item. `None`
/// for any other layout (flow style, a name key that is not the item's own).
fn extent(text: &str, offset: usize) -> Option<Extent> {
    let ls = lines(text);
    let at = ls.iter().rposition(|(o, _)| *o <= offset)?;
    let (line_start, line) = ls[at];
    let before = line.get(..offset - line_start)?;
    let key = before.trim_end_matches(['"', '\'']).trim_end();
    let prefix = key.strip_suffix("name:")?;
    let key_col = prefix.len();
    let lead = prefix.trim_start_matches(' ');
    let start = if lead.is_empty() {
        // `name:` is not the first key: the item's `-` is above, two columns left of the keys.
        let mut found = None;
        for k in (0..at).rev() {
            let l = ls[k].1;
            if is_quiet(l) || indent(l) >= key_col {
                continue;
            }
            let t = l.trim_start_matches(' ');
            let dash = t.strip_prefix('-')?;
            let keys_at = indent(l) + 1 + (dash.len() - dash.trim_start_matches(' ').len());
            if keys_at != key_col {
                return None;
            }
            found = Some(k);
            break;
        }
        found?
    } else if lead.starts_with('-') && lead[1..].trim_start_matches(' ').is_empty() {
        at
    } else {
        return None;
    };
    let mut end = at.max(start);
    for (k, (_, l)) in ls.iter().enumerate().skip(start + 1) {
        if is_quiet(l) {
            continue;
        }
        if indent(l) < key_col {
            break;
        }
        end = k;
    }
    Some(Extent {
        start,
        end,
        key_col,
    })
}

/// The lines of the entry holding `key` as one of its own keys (at its key column).
fn key_lines(text: &str, e: Extent, key: &str) -> Vec<usize> {
    let ls = lines(text);
    (e.start..=e.end)
        .filter(|k| {
            let l = ls[*k].1;
            let own = if *k == e.start {
                l.get(e.key_col..)
            } else {
                (indent(l) == e.key_col).then(|| &l[e.key_col..])
            };
            own.is_some_and(|rest| rest.strip_prefix(key).is_some_and(|r| r.starts_with(':')))
        })
        .collect()
}

/// `text` with `revoke: reason` set in the entry (replacing an existing `revoke:`).
fn set_revoke(text: &str, e: Extent, reason: RevocationReason) -> Option<String> {
    let ls = lines(text);
    let mut out = String::with_capacity(text.len() + 32);
    let existing = key_lines(text, e, "revoke");
    if existing.contains(&e.start) {
        return None;
    }
    for (k, (_, l)) in ls.iter().enumerate() {
        if existing.contains(&k) {
            let comment = l
                .find(" #")
                .map(|c| l[c..].trim_end_matches('\n').to_string())
                .unwrap_or_default();
            out.push_str(&format!(
                "{}revoke: {reason}{comment}\n",
                " ".repeat(e.key_col)
            ));
            continue;
        }
        out.push_str(l);
        if k == e.end && existing.is_empty() {
            if !l.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("{}revoke: {reason}\n", " ".repeat(e.key_col)));
        }
    }
    Some(out)
}

/// `text` without the entry's `revoke:` and `disabled:` lines; `None` when it has neither or
/// one sits on the item's first line.
fn lift(text: &str, e: Extent) -> Option<String> {
    let mut drop = key_lines(text, e, "revoke");
    drop.extend(key_lines(text, e, "disabled"));
    if drop.is_empty() || drop.contains(&e.start) {
        return None;
    }
    Some(
        lines(text)
            .iter()
            .enumerate()
            .filter(|(k, _)| !drop.contains(k))
            .map(|(_, (_, l))| *l)
            .collect(),
    )
}

/// `text` without the entry (and the comment lines right above it, at its indentation). A list
/// left empty becomes `[]`.
fn remove(text: &str, e: Extent) -> String {
    let ls = lines(text);
    let dash_indent = indent(ls[e.start].1);
    let mut first = e.start;
    while first > 0 {
        let l = ls[first - 1].1;
        if l.trim_start().starts_with('#') && indent(l) == dash_indent {
            first -= 1;
        } else {
            break;
        }
    }
    let mut kept: Vec<String> = ls[..first]
        .iter()
        .chain(&ls[e.end + 1..])
        .map(|(_, l)| l.to_string())
        .collect();
    // The list's header: the closest key line above the item, left of it or at its column.
    let Some(header) = (0..first).rev().find(|k| {
        let l = ls[*k].1;
        !is_quiet(l) && indent(l) <= dash_indent && !l.trim_start().starts_with('-')
    }) else {
        return kept.concat();
    };
    let header_indent = indent(&kept[header]);
    let any_item = kept[header + 1..]
        .iter()
        .filter(|l| !is_quiet(l))
        .take_while(|l| indent(l) > header_indent || l.trim_start().starts_with('-'))
        .any(|l| l.trim_start().starts_with('-') && indent(l) == dash_indent);
    if !any_item {
        let l = kept[header].clone();
        let (body, comment) = match l.find(" #") {
            Some(c) => (&l[..c], l[c..].trim_end_matches('\n')),
            None => (l.trim_end_matches('\n'), ""),
        };
        kept[header] = format!("{} []{comment}\n", body.trim_end());
    }
    kept.concat()
}

/// An edit of one identity's entry: what `gitca identity` asks for, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Set `revoke: REASON` (the reason as given; it is parsed when the edit is made).
    Revoke { reason: String },
    /// Lift `revoke:` and `disabled:`.
    Reinstate,
    /// Remove the entry.
    Offboard,
}

/// An identity's entry, found by the loader reconcile uses: its file, the file's text and
/// where the entry lies in it.
pub struct Entry {
    config: Config,
    inventory: inventory::Inventory,
    name: String,
    file: String,
    line: usize,
    csr: String,
    text: String,
    extent: Extent,
}

/// The entry's file as edited, with what to say and the commit message to suggest.
pub struct Edited {
    new_text: String,
    summary: String,
    message: String,
}

/// What an edit removes besides the entry: its file, and its CSR.
pub struct Removal {
    /// The file goes when nothing is declared in it any more and it was this identity's own.
    file: bool,
    /// The CSR goes with an offboarded identity, unless another entry names the same file.
    csr: Option<String>,
}

impl Entry {
    fn by_hand(&self, what: &str) -> Error {
        by_hand(&self.file, self.line, &self.name, what)
    }
}

/// The refusal for an entry whose layout gitca cannot edit safely, with its file and line.
fn by_hand(file: &str, line: usize, name: &str, what: &str) -> Error {
    Error::bad_file(
        format!("{file}:{line}"),
        format!("`{name}`'s entry is not laid out as a block list item gitca can edit: {what}"),
        "edit the entry by hand (see docs/onboarding.md)",
    )
}

/// Finds NAME's entry through the loader reconcile uses, and reads its file; refuses an
/// undeclared (or broken) identity and an entry that is not a block list item.
pub fn find(repo: &CaRepo, name: &str) -> Result<Entry> {
    let config = Config::parse(&read(
        &repo.dir,
        crate::layout::CONFIG_FILE,
        config::MAX_BYTES,
    )?)?;
    let (inventory, _) = inventory::load_all(&repo.dir, &config)?;
    let Some(id) = inventory.get(name) else {
        let help = if inventory.held.contains_key(name) {
            "its entry is broken: `gitca check` shows where; fix it first"
        } else {
            "check the name (`gitca status` lists every identity)"
        };
        return Err(Error::usage(
            format!("`{name}` is not declared in identities/"),
            help,
        ));
    };
    let file = id.source.file.clone();
    let text = read(&repo.dir, &file, crate::repository::yaml::MAX_BYTES as u64)?;
    let line = id.source.line;
    let extent = extent(&text, id.source.span.0)
        .ok_or_else(|| by_hand(&file, line, name, "no `- name:` item"))?;
    let csr = id.csr.clone();
    Ok(Entry {
        config,
        inventory,
        name: name.to_string(),
        file,
        line,
        csr,
        text,
        extent,
    })
}

/// Makes the edit on the entry's lines only, every other line of the file kept as it was.
pub fn edit(entry: &Entry, edit: &Edit) -> Result<Edited> {
    let (text, e, name, file) = (&entry.text, entry.extent, &entry.name, &entry.file);
    let (new_text, summary, message) = match edit {
        Edit::Revoke { reason } => {
            let why = RevocationReason::parse(reason).ok_or_else(|| {
                Error::usage(
                    format!("`{reason}` is not a revocation reason"),
                    format!(
                        "pass one of: {}",
                        RevocationReason::ALL.map(|r| r.as_str()).join(", ")
                    ),
                )
            })?;
            let t = set_revoke(text, e, why)
                .ok_or_else(|| entry.by_hand("`revoke:` on its first line"))?;
            (
                t,
                format!("revoke: {why} set on `{name}` in {file}"),
                format!("{name}: revoke ({why})"),
            )
        }
        Edit::Reinstate => {
            let t = lift(text, e).ok_or_else(|| {
                Error::usage(
                    format!("`{name}` has neither `revoke:` nor `disabled:` in {file}"),
                    "nothing to reinstate",
                )
            })?;
            (
                t,
                format!("revoke:/disabled: lifted from `{name}` in {file}"),
                format!("{name}: reinstate"),
            )
        }
        Edit::Offboard => (
            remove(text, e),
            format!("`{name}` removed from {file}"),
            format!("offboard {name}"),
        ),
    };
    Ok(Edited {
        new_text,
        summary,
        message,
    })
}

/// What goes besides the entry: for an offboarding, its own file once empty and its CSR.
pub fn removal(repo: &CaRepo, entry: &Entry, edit: &Edit, edited: &Edited) -> Removal {
    let (name, file) = (&entry.name, &entry.file);
    let offboard = *edit == Edit::Offboard;
    let file = offboard
        && inventory::names_in(&entry.config, file, &edited.new_text).is_empty()
        && *file == format!("{}/{name}.yaml", "identities");
    let csr = offboard
        .then(|| entry.csr.clone())
        .filter(|c| {
            c.starts_with("csr/")
                && !entry
                    .inventory
                    .identities
                    .iter()
                    .any(|o| o.name != *name && o.csr == *c)
        })
        .filter(|c| repo.dir.meta(c).ok().flatten().is_some());
    Removal { file, csr }
}

/// Writes the edited file (or removes it) and removes the CSR that goes.
pub fn write_edit(repo: &CaRepo, entry: &Entry, edited: &Edited, removal: &Removal) -> Result<()> {
    if removal.file {
        repo.dir.remove(&entry.file)?;
    } else {
        repo.dir
            .write(&entry.file, edited.new_text.as_bytes(), 0o644)?;
    }
    if let Some(c) = &removal.csr {
        repo.dir.remove(c)?;
    }
    Ok(())
}

/// Says what changed and how to commit it.
pub fn report_edit(entry: &Entry, edited: &Edited, removal: &Removal, out: &mut dyn Write) {
    let (name, file) = (&entry.name, &entry.file);
    let _ = writeln!(
        out,
        "{}{}",
        if removal.file {
            format!("`{name}` removed with its file {file}")
        } else {
            edited.summary.clone()
        },
        removal
            .csr
            .as_deref()
            .map(|c| format!("; {c} removed"))
            .unwrap_or_default()
    );
    let mut paths = vec![file.clone()];
    paths.extend(removal.csr.clone());
    let _ = writeln!(
        out,
        "Next: git add -A {} && git commit -m '{}'\n",
        paths.join(" "),
        edited.message
    );
}

/// The edited file must load as before, with the identity changed as asked and nothing else.
pub fn check_edit(entry: &Entry, edited: &Edited, edit: &Edit) -> Result<()> {
    let (config, file, name) = (&entry.config, entry.file.as_str(), entry.name.as_str());
    let text: std::sync::Arc<str> = std::sync::Arc::from(edited.new_text.as_str());
    let (ids, errors) = inventory::parse_file(config, file, &text);
    Error::collect(errors)?;
    let me: Option<&Identity> = ids.iter().find(|i| i.name == name);
    let fine = match edit {
        Edit::Revoke { reason } => {
            me.is_some_and(|i| i.revoke.map(|r| r.as_str()) == Some(reason.as_str()))
        }
        Edit::Reinstate => me.is_some_and(|i| i.wants_certificate()),
        Edit::Offboard => me.is_none(),
    };
    if fine {
        Ok(())
    } else {
        Err(Error::bad_file(
            file,
            format!("editing `{name}`'s entry would not have the effect asked for"),
            "edit the entry by hand (see docs/onboarding.md)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: &str = "# imported\nusers:\n  # finance\n  - name: olga-ray\n    common_name: Olga Ray   # as on her badge\n    csr: csr/olga-ray.csr\n\n  - name: pete.smith\n    email: pete.smith@example.com\n    csr: csr/pete.smith.csr\n  - csr: csr/zed.csr\n    name: zed\n# the end\n";

    fn at(text: &str, name: &str) -> Extent {
        let off = text.find(&format!("name: {name}")).unwrap() + 6;
        extent(text, off).unwrap()
    }

    #[test]
    fn an_entry_is_its_item_in_any_position_of_the_file() {
        let e = at(SHARED, "olga-ray");
        assert_eq!((e.start, e.end, e.key_col), (3, 5, 4));
        assert_eq!(at(SHARED, "pete.smith").start, 7);
        let z = at(SHARED, "zed");
        assert_eq!((z.start, z.end), (10, 11));
        assert!(extent("users: [{name: a}]\n", 15).is_none());
    }

    #[test]
    fn revoke_goes_into_the_right_entry_and_nothing_else_moves() {
        let e = at(SHARED, "olga-ray");
        let t = set_revoke(SHARED, e, RevocationReason::KeyCompromise).unwrap();
        assert_eq!(
            t,
            SHARED.replace(
                "    csr: csr/olga-ray.csr\n",
                "    csr: csr/olga-ray.csr\n    revoke: key-compromise\n"
            )
        );
        // Set again with another reason: replaced in place, its comment kept.
        let t2 = t.replace("revoke: key-compromise", "revoke: superseded # why");
        let t3 = set_revoke(&t2, at(&t2, "olga-ray"), RevocationReason::KeyCompromise).unwrap();
        assert!(t3.contains("    revoke: key-compromise # why\n"), "{t3}");
        assert_eq!(lift(&t3, at(&t3, "olga-ray")).unwrap(), SHARED);
        // The last entry of the file, whose keys come in another order.
        let z = set_revoke(SHARED, at(SHARED, "zed"), RevocationReason::Superseded).unwrap();
        assert!(
            z.ends_with("    name: zed\n    revoke: superseded\n# the end\n"),
            "{z}"
        );
    }

    #[test]
    fn offboarding_removes_the_entry_and_its_comment_and_an_emptied_list_becomes_empty() {
        let t = remove(SHARED, at(SHARED, "olga-ray"));
        assert_eq!(
            t,
            "# imported\nusers:\n\n  - name: pete.smith\n    email: pete.smith@example.com\n    csr: csr/pete.smith.csr\n  - csr: csr/zed.csr\n    name: zed\n# the end\n"
        );
        let one = "users:\n  - name: a\n    csr: csr/a.csr\nbots:\n  - name: b\n";
        assert_eq!(remove(one, at(one, "a")), "users: []\nbots:\n  - name: b\n");
        assert_eq!(
            remove(one, at(one, "b")),
            "users:\n  - name: a\n    csr: csr/a.csr\nbots: []\n"
        );
    }
}
