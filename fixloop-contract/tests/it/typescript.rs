//! `fixloop-contract/typescript/fixloop-contract.ts` is the generated TypeScript, and it covers every schema.

use std::path::{Path, PathBuf};

use fixloop_contract::typescript::{UPDATE_COMMAND, typescript};

use crate::support::committed_spec;

fn typescript_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("typescript/fixloop-contract.ts")
}

#[test]
fn committed_typescript_matches_the_generated_one() {
    let generated = typescript();
    let path = typescript_path();
    if std::env::var_os("UPDATE_TYPESCRIPT").is_some() {
        std::fs::write(&path, &generated).expect("fixloop-contract.ts is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "fixloop-contract.ts is stale (first difference at line {first_difference}); regenerate it with:\n    {UPDATE_COMMAND}"
        );
    }
}

#[test]
fn every_component_schema_has_a_declaration() {
    let generated = typescript();
    let spec = committed_spec();
    for name in spec["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            generated.contains(&format!("export interface {name} {{"))
                || generated.contains(&format!("export type {name} =")),
            "no TypeScript declaration for {name}"
        );
    }
}

#[test]
fn nullable_optional_and_map_properties_are_typed() {
    let generated = typescript();
    for line in [
        "export type IncidentState = \"HEALTHY\" | \"INCIDENT_ACTIVE\" | \"VALIDATING\" | \"RECOVERED\";",
        "  active_incident_id: string | null;",
        "  current_incident: null | IncidentCard;",
        "  incident_id?: string | null;",
        "  headers?: Record<string, string>;",
        "  body_json?: Record<string, unknown>;",
        "  items: PlanItem[];",
        "  type: \"system.status\";",
        "  | SystemStatusMessage",
    ] {
        assert!(
            generated.lines().any(|l| l == line),
            "the TypeScript lacks the line {line:?}"
        );
    }
}
