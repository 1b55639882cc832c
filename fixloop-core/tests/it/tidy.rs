//! Tidy checks of the crate's shape: the core depends only on the contract, serde, thiserror and tracing, serde is
//! used by the snapshot module alone, and every Rust file starts with a `//!` module doc.

use std::path::{Path, PathBuf};

/// The only dependencies the sans-IO core may have.
const ALLOWED_DEPENDENCIES: [&str; 4] = ["fixloop-contract", "serde", "thiserror", "tracing"];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The names declared in one `[section]` of a TOML manifest (keys and `name.workspace = true` forms).
fn section_keys(manifest: &str, section: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
            continue;
        }
        if !inside || line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            let name = key.split('.').next().unwrap_or(key).trim_matches('"');
            keys.push(name.to_owned());
        }
    }
    keys
}

/// Serde belongs to persistence only: the engine's own state, inputs and effects do not derive it, the explicit,
/// versioned images of the snapshot, the recorded inputs and the recorded configuration do.
#[test]
fn only_the_snapshot_module_uses_serde() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    let mut offenders = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read source");
        if [
            "engine/snapshot.rs",
            "engine/recorded.rs",
            "engine/config_image.rs",
            "engine/remediation/image.rs",
        ]
        .iter()
        .any(|image| file.ends_with(image))
        {
            assert!(
                source.contains("use serde::"),
                "{} uses serde",
                file.display()
            );
            continue;
        }
        if source.contains("serde::")
            || source.contains("Serialize")
            || source.contains("Deserialize")
        {
            offenders.push(file.display().to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "serde outside the images (engine/snapshot.rs, recorded.rs, config_image.rs, remediation/image.rs): {offenders:?}"
    );
}

#[test]
fn core_depends_only_on_contract_serde_thiserror_and_tracing() {
    let manifest =
        std::fs::read_to_string(crate_dir().join("Cargo.toml")).expect("read Cargo.toml");
    let dependencies = section_keys(&manifest, "dependencies");
    assert!(
        !dependencies.is_empty(),
        "the [dependencies] section was found"
    );
    for dependency in &dependencies {
        assert!(
            ALLOWED_DEPENDENCIES.contains(&dependency.as_str()),
            "fixloop-core must not depend on {dependency}: only {ALLOWED_DEPENDENCIES:?} are allowed"
        );
    }
    // No other way in: target-specific or build dependencies.
    for line in manifest.lines() {
        let line = line.trim();
        assert!(
            !(line.starts_with("[target.") || line.starts_with("[build-dependencies")),
            "fixloop-core has no target-specific or build dependencies: {line}"
        );
    }
}

#[test]
fn section_keys_reads_both_manifest_forms() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\na.workspace = true\nb = { version = \"1\" }\n\n[dev-dependencies]\nc = \"1\"\n";
    assert_eq!(section_keys(manifest, "dependencies"), ["a", "b"]);
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|name| name == "target" || name == "snapshots")
            {
                continue;
            }
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&crate_dir(), &mut files);
    assert!(files.len() > 10, "found the crate's files: {files:?}");
    let missing: Vec<_> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` header: {missing:?}"
    );
}

#[test]
fn the_core_reads_no_clock_and_spawns_nothing() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for banned in [
            "Utc::now",
            "Instant::now",
            "SystemTime::now",
            "thread::spawn",
            "std::env::",
            "async fn",
        ] {
            assert!(!text.contains(banned), "{} uses {banned}", path.display());
        }
    }
}

/// Words that only the demo shop knows: its routes, its token, its metric names.
const DEMO_SHOP_WORDS: [&str; 7] = [
    "/checkout",
    "/catalog",
    "/auth/me",
    "demo-token",
    "DEMO_BEARER_TOKEN",
    "demo_http_",
    "seed_default",
];

#[test]
fn the_core_sources_know_nothing_of_the_demo_shop() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    assert!(!files.is_empty());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        for word in DEMO_SHOP_WORDS {
            if text.contains(word) {
                found.push(format!("{} mentions {word}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the core must know no particular service; the demo shop is a profile of the server:\n{}",
        found.join("\n")
    );
}
