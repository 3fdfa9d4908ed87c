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

/// Issue 22: a server entry means the same to the schemas and to gitca check — names in their
/// one spelling, and only in the entries and gitca.yaml sections made for them.
#[test]
fn schema_and_gitca_agree_on_servers() {
    let identities = schema("identities.schema.json");
    let config = schema("gitca.schema.json");
    let ca = Ca::new();
    let policy = "\nservers:\n  dns_names: [registry.example.com, .internal.example.com]\n  ip_ranges: [192.0.2.0/24]\n";
    let gitca_yaml = ca.read("gitca.yaml") + policy;
    valid(&config, &gitca_yaml, "gitca.yaml with servers:");
    ca.write("gitca.yaml", &gitca_yaml);
    ca.openssl_csr(
        "registry",
        "registry.example.com",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &[],
    );
    for (entry, accepted) in [
        ("dns_names: [registry.example.com]", true),
        (
            "dns_names: [registry.example.com]\n    ip_addresses: [192.0.2.10]",
            true,
        ),
        ("dns_names: [Registry.example.com]", false),
        ("dns_names: [\"registry.example.com.\"]", false),
        ("dns_names: [\"registry.example.com\\n\"]", false),
        ("dns_names: [\"a,b.example.com\"]", false),
        (
            "dns_names: [registry.example.com, registry.example.com]",
            false,
        ),
        (
            "dns_names: [registry.example.com]\n    email: a@example.com",
            false,
        ),
        (
            "dns_names: [registry.example.com]\n    groups: [push]",
            false,
        ),
        (
            "dns_names: [registry.example.com]\n    ip_addresses: [192.0.2.010]",
            false,
        ),
        ("common_name: registry.example.com", false),
    ] {
        let text = format!("servers:\n  - name: registry\n    {entry}\n");
        assert_eq!(
            identities.is_valid(&yaml(&text)),
            accepted,
            "schema: {entry}"
        );
        ca.identities(&text);
        let o = run(ca.cmd(T0).arg("check"));
        assert_eq!(
            o.status.success(),
            accepted,
            "gitca check: {entry}\n{}{}",
            stdout(&o),
            stderr(&o)
        );
    }
    // What only gitca.yaml decides, the schema cannot see: a wildcard, or a name outside
    // the policy, is well-formed to the schema and refused by gitca check.
    for entry in [
        "dns_names: [\"*.internal.example.com\"]",
        "dns_names: [registry.example.org]",
        "ip_addresses: [198.51.100.1]",
    ] {
        let text = format!("servers:\n  - name: registry\n    {entry}\n");
        assert!(identities.is_valid(&yaml(&text)), "schema: {entry}");
        ca.identities(&text);
        let o = fails(run(ca.cmd(T0).arg("check")));
        let said = stdout(&o) + &stderr(&o);
        assert!(said.contains("identities/people.yaml:3"), "{said}");
    }
    // Server names are for servers; the policy's entries have one spelling too.
    let user = "users:\n  - name: registry\n    dns_names: [registry.example.com]\n";
    assert!(!identities.is_valid(&yaml(user)));
    for bad in [
        "\nservers:\n  dns_names: [Registry.example.com]\n",
        "\nservers:\n  ip_ranges: [192.0.2.1/24]\n",
        "\nservers:\n  ip_ranges: [192.0.2.0/0]\n",
        "\nservers:\n  colour: blue\n",
    ] {
        let text = ca.read("gitca.yaml").replace(policy, bad);
        ca.write("gitca.yaml", &text);
        let o = run(ca.cmd(T0).arg("check"));
        assert!(!o.status.success(), "gitca check accepts {bad:?}");
        ca.write("gitca.yaml", &gitca_yaml);
        let schema_ok = config.is_valid(&yaml(&text));
        // The schema's patterns cannot see host bits past a prefix: gitca's check can.
        if !bad.contains("192.0.2.1/24") {
            assert!(!schema_ok, "schema accepts {bad:?}");
        }
    }
}
