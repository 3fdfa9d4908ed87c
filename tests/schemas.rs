//! The JSON Schemas in schema/ accept every example and every file gitca writes, and reject what
//! gitca itself refuses.

mod common;

use std::path::Path;

use common::*;

fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schema")
            .join(name),
    )
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&value).unwrap()
}

fn yaml(text: &str) -> serde_json::Value {
    let v: Option<serde_json::Value> = serde_saphyr::from_str(text).unwrap();
    v.unwrap_or(serde_json::Value::Null)
}

#[track_caller]
fn valid(v: &jsonschema::Validator, text: &str, what: &str) {
    let errors: Vec<String> = v.iter_errors(&yaml(text)).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{what}: {errors:?}");
}

fn yaml_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn every_example_validates_against_its_schema() {
    let config = schema("gitca.schema.json");
    let identities = schema("identities.schema.json");
    let mut files = Vec::new();
    yaml_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ca"),
        &mut files,
    );
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let v = if f.file_name().unwrap() == "gitca.yaml" {
            &config
        } else {
            &identities
        };
        valid(v, &text, &f.display().to_string());
    }
}

#[test]
fn files_written_by_init_validate() {
    let ca = Ca::new();
    valid(
        &schema("gitca.schema.json"),
        &ca.read("gitca.yaml"),
        "gitca.yaml",
    );
    valid(
        &schema("identities.schema.json"),
        &ca.read("identities/people.yaml"),
        "people.yaml",
    );
    // init copies the schemas into the CA repository for editors.
    assert_eq!(
        ca.read("schema/identities.schema.json"),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/identities.schema.json")
        )
        .unwrap()
    );
}

#[test]
fn schemas_reject_what_gitca_refuses() {
    let identities = schema("identities.schema.json");
    for bad in [
        "users:\n  - name: Alice\n",
        "users:\n  - name: a/b\n",
        "users:\n  - name: a..b\n",
        "users:\n  - name: x\n    colour: blue\n",
        "users:\n  - name: x\n    revoke: because\n",
        "users:\n  - name: x\n    validity: forever\n",
        "admins: []\n",
    ] {
        assert!(!identities.is_valid(&yaml(bad)), "schema accepts {bad:?}");
    }
    let config = schema("gitca.schema.json");
    let ca = Ca::new();
    let text = ca
        .read("gitca.yaml")
        .replace("validity: 7d", "validity: 7 days");
    assert!(!config.is_valid(&yaml(&text)));
}

/// Issue 19: `acknowledged:` means the same to the schema and to gitca check.
#[test]
fn schema_and_gitca_agree_on_acknowledged() {
    let identities = schema("identities.schema.json");
    let ca = Ca::new();
    ca.p256_csr("carol");
    for (ack, accepted) in [
        (
            "{until: 2026-01-15, reason: \"waiting for carol's new CSR\"}",
            true,
        ),
        ("{until: 2026-1-15, reason: x}", false),
        ("{until: 2026-01-15}", false),
        ("{reason: x}", false),
        ("{until: 2026-01-15, reason: \"\"}", false),
        ("{until: 2026-01-15, reason: \" padded\"}", false),
        ("{until: 2026-01-15, reason: x, by: me}", false),
    ] {
        let text = format!("users:\n  - name: carol\n    acknowledged: {ack}\n");
        assert_eq!(identities.is_valid(&yaml(&text)), accepted, "schema: {ack}");
        ca.identities(&text);
        let o = run(ca.cmd(T0).arg("check"));
        assert_eq!(
            o.status.success(),
            accepted,
            "gitca check: {ack}\n{}{}",
            stdout(&o),
            stderr(&o)
        );
    }
}
