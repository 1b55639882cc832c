//! Shared helpers: reading the example documents and validating JSON against `openapi.yaml`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The committed `openapi.yaml`, parsed.
pub(crate) fn committed_spec() -> Value {
    let text = std::fs::read_to_string(spec_path()).expect("openapi.yaml is readable");
    serde_norway::from_str(&text).expect("openapi.yaml is YAML")
}

/// Path of the committed `openapi.yaml` at the repository root.
pub(crate) fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml")
}

/// Every example document as `(file name, schema name, JSON)`; the schema is the file name up to the first dot.
pub(crate) fn examples() -> Vec<(String, String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples dir exists") {
        let path = entry.expect("dir entry").path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let schema = file.split('.').next().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).expect("example readable");
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
        out.push((file, schema, value));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Validation errors of `instance` against component schema `name` of `spec`, as `path: message` lines.
pub(crate) fn schema_errors(spec: &Value, name: &str, instance: &Value) -> Vec<String> {
    assert!(
        spec["components"]["schemas"].get(name).is_some(),
        "openapi.yaml has no component schema {name}"
    );
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": spec["components"],
    });
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema {name} compiles: {e}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}
