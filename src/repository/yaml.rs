//! YAML reading for everything a pull request can touch: size limits, budgets against alias
//! bombs (serde-saphyr's defaults), and errors turned into located diagnostics.

use serde::de::DeserializeOwned;

use crate::error::{Located, Result};

/// Largest YAML file gitca reads. Identity files of 10,000 entries are about 1 MiB: one file
/// may declare every identity gitca manages (`repository::inventory::MAX_IDENTITIES`).
pub const MAX_BYTES: usize = 16 << 20;

/// Nodes (sequences, maps, scalars) and parser events in one file: serde-saphyr's defaults
/// (250,000 nodes) stop a file of 100,000 entries at entry 83,334. These bound a file of
/// [`MAX_BYTES`] (a node costs at least two bytes of YAML) while aliases, anchors, depth and
/// documents keep the library's defaults against alias bombs.
const MAX_NODES: usize = MAX_BYTES / 2;
const MAX_EVENTS: usize = MAX_BYTES;

/// Parses `text` (the contents of the file `name`), or explains where and why it fails.
pub fn from_str<T: DeserializeOwned>(name: &str, text: &str) -> Result<T> {
    if text.len() > MAX_BYTES {
        return Err(Located::new(
            name,
            "",
            (0, 0),
            format!(
                "{name} is {} bytes, more than the {MAX_BYTES} bytes gitca reads",
                text.len()
            ),
            "",
            "split the identities over several files under identities/",
        )
        .into());
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: MAX_NODES,
            max_events: MAX_EVENTS,
        },
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let (offset, len) = e
            .location()
            .map(|l| location_span(text, &l))
            .unwrap_or((0, 0));
        let message = e.without_snippet().to_string();
        let message = message.lines().next().unwrap_or("invalid YAML").to_string();
        Located::new(
            name,
            text,
            (offset, len),
            format!("{name}: {message}"),
            "here",
            "fix the YAML at the marked place; the schema in schema/ lists every allowed key",
        )
        .into()
    })
}

/// Byte offset and length of a serde-saphyr location within `text`.
pub fn location_span(text: &str, loc: &serde_saphyr::Location) -> (usize, usize) {
    let span = loc.span();
    if let Some(off) = span.byte_offset() {
        let len = span.byte_len().unwrap_or(0) as usize;
        return (off as usize, len.max(1));
    }
    line_col_offset(text, loc.line() as usize, loc.column() as usize)
}

/// Byte offset of a 1-based line and column, with a length reaching to the end of the line.
pub fn line_col_offset(text: &str, line: usize, col: usize) -> (usize, usize) {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let start = off
                + l.char_indices()
                    .nth(col.saturating_sub(1))
                    .map_or(0, |(b, _)| b);
            let end = off + l.trim_end_matches(['\n', '\r']).len();
            return (start, end.saturating_sub(start).max(1));
        }
        off += l.len();
    }
    (text.len(), 0)
}

/// A YAML scalar for `s`: plain when that is unambiguous, else double-quoted.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._-@/".contains(c))
        && !s.starts_with([' ', '-', '.'])
        && !s.ends_with(' ')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
        )
        && s.parse::<f64>().is_err();
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_round_trips() {
        for s in [
            "alice",
            "Acme Corp",
            "yes",
            "1.5",
            "a: b",
            "#x",
            "\"q\"",
            "-x",
            "",
            "é",
        ] {
            let doc = format!("v: {}\n", quote(s));
            #[derive(serde::Deserialize)]
            struct V {
                v: String,
            }
            let v: V = from_str("t.yaml", &doc).unwrap();
            assert_eq!(v.v, s, "{doc}");
        }
    }
}
