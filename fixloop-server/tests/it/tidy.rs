//! Workspace-wide tidy checks, in the manner of rust-analyzer's `tidy.rs`: a few rules that matter, checked by
//! reading every Rust source of the workspace as text.
//!
//! - **runtime without HTTP**: nothing under `fixloop-server/src/runtime/` names `axum`, `StatusCode` or
//!   `ApiError` (and the directory exists).
//! - **only `main` and `cli` read the environment**: in any crate's `src/`, `std::env::var`, `var_os`, `vars`,
//!   `vars_os`, `dotenv`/`dotenvy` and clap's `env` argument attribute appear only in a binary's entry point
//!   (`<crate>/src/main.rs`, `<crate>/src/bin/`) and in `fixloop-server/src/cli/`. Test code is not looked at:
//!   the part of a file after its trailing `#[cfg(test)]` module, and files named `tests.rs`. (The core's own tidy test bans `std::env::` outright.)
//! - **no long files**: no Rust source has more than [`MAX_LINES`] lines before its trailing `#[cfg(test)]` module.
//!   Exempt: files under a `tests/`, `benches/` or `examples/` directory, files named `tests.rs`, and generated
//!   files, recognised by the marker `@generated` in one of their first five lines (the convention rustfmt and
//!   GitHub follow).
//! - **no `too_many_arguments` allowance**: no `allow`/`expect` of `clippy::too_many_arguments` in any Rust file,
//!   and no `too-many-arguments-threshold` in a `clippy.toml`; many parameters become a config struct (STYLE §8).
//!
//! Comment lines (`//`, `///`, `//!`) are not code and are skipped by the first, second and fourth rules, so a
//! module doc may say what its module does not do.
//!
//! Each rule is a function of a [`Workspace`] (a root directory), so the unit tests below run it against a small
//! temporary tree holding one violation and check that it is reported with its file and line.

use std::fmt;
use std::path::{Path, PathBuf};

/// The most lines a Rust source may have before its trailing `#[cfg(test)]` module.
const MAX_LINES: usize = 800;

/// The runtime folder that must not know HTTP, relative to the workspace root.
const RUNTIME_DIR: &str = "fixloop-server/src/runtime";

/// Where the environment may be read besides a binary's entry point, relative to the workspace root.
const CLI_DIR: &str = "fixloop-server/src/cli";

/// The lint never to silence, spelled in two pieces so that this file does not report itself.
const LINT: &str = concat!("too_many", "_arguments");

/// How many of a file's first lines may carry the `@generated` marker.
const GENERATED_MARKER_LINES: usize = 5;

/// One broken rule: where, which rule, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    /// The file, relative to the workspace root, with `/` separators.
    file: String,
    /// The 1-based line, or 0 when the violation is about the whole file or directory.
    line: usize,
    rule: &'static str,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: [{}] {}", self.file, self.rule, self.message)
        } else {
            write!(
                f,
                "{}:{}: [{}] {}",
                self.file, self.line, self.rule, self.message
            )
        }
    }
}

/// The Rust sources (and `clippy.toml` files) of a workspace, read once.
struct Workspace {
    root: PathBuf,
    /// `(path relative to the root with `/` separators, text)`, sorted by path.
    rust_files: Vec<(String, String)>,
    clippy_tomls: Vec<(String, String)>,
}

impl Workspace {
    /// Reads every `.rs` file and `clippy.toml` under `root`, skipping build output, VCS data and dependencies.
    fn read(root: &Path) -> Self {
        let mut paths = Vec::new();
        walk(root, &mut paths);
        let mut rust_files = Vec::new();
        let mut clippy_tomls = Vec::new();
        for path in paths {
            let relative = path
                .strip_prefix(root)
                .expect("walked under the root")
                .components()
                .map(|component| component.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let is_rust = path.extension().is_some_and(|extension| extension == "rs");
            let is_clippy = path
                .file_name()
                .is_some_and(|name| name == "clippy.toml" || name == ".clippy.toml");
            if !is_rust && !is_clippy {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
            if is_rust {
                rust_files.push((relative, text));
            } else {
                clippy_tomls.push((relative, text));
            }
        }
        rust_files.sort();
        clippy_tomls.sort();
        Self {
            root: root.to_owned(),
            rust_files,
            clippy_tomls,
        }
    }

    /// Every rule's violations, rule by rule.
    fn check(&self) -> Vec<Violation> {
        let mut all = runtime_has_no_http(self);
        all.extend(only_main_and_cli_read_the_environment(self));
        all.extend(no_long_files(self));
        all.extend(lint_limiting_arguments_is_never_silenced(self));
        all
    }
}

/// Collects the files under `dir`, skipping `target`, `node_modules` and hidden directories.
fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name == "target" || name == "node_modules" || name.starts_with('.') {
                continue;
            }
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// Rule: nothing under `fixloop-server/src/runtime/` knows HTTP.
fn runtime_has_no_http(workspace: &Workspace) -> Vec<Violation> {
    const RULE: &str = "runtime-without-http";
    let mut violations = Vec::new();
    if !workspace.root.join(RUNTIME_DIR).is_dir() {
        violations.push(Violation {
            file: format!("{RUNTIME_DIR}/"),
            line: 0,
            rule: RULE,
            message: "the directory does not exist: the runtime (supervisor, driver, stream hub, port wiring) \
                      lives in its own folder with no HTTP inside (STYLE §5)"
                .to_owned(),
        });
        return violations;
    }
    for (file, text) in &workspace.rust_files {
        if !file.starts_with(&format!("{RUNTIME_DIR}/")) {
            continue;
        }
        for (index, line) in code_lines(text) {
            for banned in ["axum", "StatusCode", "ApiError"] {
                if has_word(line, banned) {
                    violations.push(Violation {
                        file: file.clone(),
                        line: index + 1,
                        rule: RULE,
                        message: format!(
                            "`{banned}` in the runtime: return a `runtime::Error` (or a plain value) and let \
                             `http/` map it to a status and an `ApiError`"
                        ),
                    });
                }
            }
        }
    }
    violations
}

/// Rule: only a binary's entry point and `fixloop-server/src/cli/` read the environment.
fn only_main_and_cli_read_the_environment(workspace: &Workspace) -> Vec<Violation> {
    const RULE: &str = "environment-in-main-and-cli-only";
    let mut violations = Vec::new();
    for (file, text) in &workspace.rust_files {
        let Some((_, in_crate)) = file.split_once("/src/") else {
            continue;
        };
        let entry_point = in_crate == "main.rs" || in_crate.starts_with("bin/");
        if entry_point || file.starts_with(&format!("{CLI_DIR}/")) || is_test_or_example(file) {
            continue;
        }
        let non_test = &text[..non_test_len(text)];
        let mut in_clap_attribute = false;
        let mut depth = 0_i32;
        for (index, line) in code_lines(non_test) {
            let trimmed = line.trim_start();
            if !in_clap_attribute
                && ["#[arg(", "#[clap(", "#[command("]
                    .iter()
                    .any(|start| trimmed.starts_with(start))
            {
                in_clap_attribute = true;
                depth = 0;
            }
            let mut reads = Vec::new();
            for call in ["env::var(", "env::var_os(", "env::vars(", "env::vars_os("] {
                if line.contains(call) {
                    reads.push(format!("`{}`", call.trim_end_matches('(')));
                }
            }
            if has_word(line, "dotenv") || has_word(line, "dotenvy") {
                reads.push("`dotenv`".to_owned());
            }
            if in_clap_attribute {
                if has_word(line, "env") {
                    reads.push("clap's `env` attribute".to_owned());
                }
                depth += paren_balance(line);
                if depth <= 0 {
                    in_clap_attribute = false;
                }
            }
            for read in reads {
                violations.push(Violation {
                    file: file.clone(),
                    line: index + 1,
                    rule: RULE,
                    message: format!(
                        "{read} reads the environment outside `main`/`cli`: read it in \
                         `fixloop-server/src/cli/` (or a binary's `main.rs`) and pass the value in as configuration"
                    ),
                });
            }
        }
    }
    violations
}

/// Rule: no Rust source over [`MAX_LINES`] lines outside tests and generated code.
fn no_long_files(workspace: &Workspace) -> Vec<Violation> {
    const RULE: &str = "file-length";
    let mut violations = Vec::new();
    for (file, text) in &workspace.rust_files {
        if is_test_or_example(file) || is_generated(text) {
            continue;
        }
        let lines = text[..non_test_len(text)].lines().count();
        if lines > MAX_LINES {
            violations.push(Violation {
                file: file.clone(),
                line: MAX_LINES + 1,
                rule: RULE,
                message: format!(
                    "{lines} lines before the tests (at most {MAX_LINES}): split the file by concept into a \
                     folder of modules"
                ),
            });
        }
    }
    violations
}

/// Rule: clippy's `too_many_arguments` is never silenced.
fn lint_limiting_arguments_is_never_silenced(workspace: &Workspace) -> Vec<Violation> {
    const RULE: &str = "no-too-many-arguments-allowance";
    const WHAT_TO_DO: &str =
        "group the parameters into a config struct (STYLE §8) instead of silencing the lint";
    let mut violations = Vec::new();
    for (file, text) in &workspace.rust_files {
        for (index, line) in code_lines(text) {
            if line.contains(LINT) {
                violations.push(Violation {
                    file: file.clone(),
                    line: index + 1,
                    rule: RULE,
                    message: format!("`clippy::{LINT}` allowed: {WHAT_TO_DO}"),
                });
            }
        }
    }
    for (file, text) in &workspace.clippy_tomls {
        for (index, line) in text.lines().enumerate() {
            if !line.trim_start().starts_with('#') && line.contains("too-many-arguments-threshold")
            {
                violations.push(Violation {
                    file: file.clone(),
                    line: index + 1,
                    rule: RULE,
                    message: format!("the `{LINT}` threshold is raised: {WHAT_TO_DO}"),
                });
            }
        }
    }
    violations
}

/// The lines of `text` that are not comment lines, with their 0-based index.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
}

/// The length in bytes of `text` before its trailing test module: a `#[cfg(test)]` at the start of a line,
/// followed (after any further attributes) by a `mod … {` that runs to the end of the file. The whole text when
/// there is none.
fn non_test_len(text: &str) -> usize {
    let mut offset = 0;
    let mut candidate = None;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (index, line) in lines.iter().enumerate() {
        if line.trim_end() == "#[cfg(test)]" {
            let opens_module = lines[index + 1..]
                .iter()
                .map(|next| next.trim())
                .find(|next| !next.starts_with("#["))
                .is_some_and(|next| {
                    (next.starts_with("mod ") || next.starts_with("pub(crate) mod "))
                        && next.ends_with('{')
                });
            if opens_module {
                candidate = Some(offset);
            }
        }
        offset += line.len();
    }
    // The module must be the file's last item: its closing brace at the start of the file's last code line.
    match candidate {
        Some(start) if text[start..].trim_end().ends_with("\n}") => start,
        _ => text.len(),
    }
}

/// Whether a file is test, bench or example code by its place.
fn is_test_or_example(file: &str) -> bool {
    let mut parts = file.split('/');
    let name = parts.next_back().unwrap_or_default();
    name == "tests.rs" || parts.any(|dir| matches!(dir, "tests" | "benches" | "examples"))
}

/// Whether a file says it is generated (`@generated` in one of its first lines).
fn is_generated(text: &str) -> bool {
    text.lines()
        .take(GENERATED_MARKER_LINES)
        .any(|line| line.contains("@generated"))
}

/// Whether `word` occurs in `line` as a whole identifier.
fn has_word(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Opening minus closing parentheses on a line.
fn paren_balance(line: &str) -> i32 {
    line.chars().fold(0, |balance, c| match c {
        '(' => balance + 1,
        ')' => balance - 1,
        _ => balance,
    })
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the server crate sits in the workspace")
        .to_owned()
}

/// The workspace keeps every rule. The failure lists every violation, one per line, with what to do.
#[test]
fn the_workspace_is_tidy() {
    let workspace = Workspace::read(&workspace_root());
    assert!(
        workspace.rust_files.len() > 100,
        "found the workspace's sources: {} files",
        workspace.rust_files.len()
    );
    let violations = workspace.check();
    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(
        violations.is_empty(),
        "{} tidy violation(s):\n{}",
        violations.len(),
        listed.join("\n")
    );
}

/// A scratch workspace: a temporary directory with a clean runtime and the given files.
fn scratch(files: &[(&str, &str)]) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let clean: [(&str, &str); 4] = [
        (
            "fixloop-server/src/runtime/mod.rs",
            "//! The runtime: no axum, no StatusCode, no ApiError here.\npub mod driver;\n",
        ),
        (
            "fixloop-server/src/main.rs",
            "//! The binary.\nfn main() { let _ = std::env::var(\"FIXLOOP_TOKEN\"); }\n",
        ),
        (
            "fixloop-server/src/cli/serve.rs",
            "//! `fixloop serve`.\n#[derive(clap::Args)]\nstruct Serve {\n    #[arg(long, env = \"FIXLOOP_PORT\")]\n    port: u16,\n}\nfn token() -> Option<String> { std::env::var(\"X\").ok() }\n",
        ),
        (
            "fixloop-adapters/src/lib.rs",
            "//! Adapters (`main` passes `std::env::vars()` in).\npub fn client() {}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn reads() { let _ = std::env::var(\"HOME\"); }\n}\n",
        ),
    ];
    for (path, text) in clean.iter().chain(files) {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a file in a directory")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }
    let workspace = Workspace::read(dir.path());
    (dir, workspace)
}

/// The violations of one rule in a scratch workspace, as text.
fn violations_of(rule: fn(&Workspace) -> Vec<Violation>, files: &[(&str, &str)]) -> Vec<String> {
    let (_dir, workspace) = scratch(files);
    rule(&workspace).iter().map(ToString::to_string).collect()
}

#[test]
fn a_clean_scratch_workspace_has_no_violation() {
    let (_dir, workspace) = scratch(&[]);
    assert_eq!(workspace.check(), Vec::new());
}

#[test]
fn axum_in_the_runtime_is_reported_with_its_line() {
    let found = violations_of(
        runtime_has_no_http,
        &[(
            "fixloop-server/src/runtime/driver.rs",
            "//! The driver.\nuse std::sync::Arc;\nuse axum::http::StatusCode;\n",
        )],
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0]
            .starts_with("fixloop-server/src/runtime/driver.rs:3: [runtime-without-http] `axum`"),
        "{found:#?}"
    );
    assert!(found[1].contains("`StatusCode`"), "{found:#?}");
}

#[test]
fn api_error_in_the_runtime_is_reported_but_not_in_http() {
    let found = violations_of(
        runtime_has_no_http,
        &[
            (
                "fixloop-server/src/runtime/handle.rs",
                "//! Handles.\npub fn stop() -> Result<(), crate::http::ApiError> { Ok(()) }\n",
            ),
            (
                "fixloop-server/src/http/error.rs",
                "//! The API error.\npub struct ApiError;\n",
            ),
        ],
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("fixloop-server/src/runtime/handle.rs:2:"),
        "{found:#?}"
    );
}

#[test]
fn a_missing_runtime_directory_is_reported() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir_all(dir.path().join("fixloop-server/src")).expect("mkdir");
    let found: Vec<String> = runtime_has_no_http(&Workspace::read(dir.path()))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains(
            "fixloop-server/src/runtime/: [runtime-without-http] the directory does not exist"
        ),
        "{found:#?}"
    );
}

#[test]
fn an_environment_read_outside_main_and_cli_is_reported() {
    let found = violations_of(
        only_main_and_cli_read_the_environment,
        &[(
            "fixloop-server/src/runtime/tuning.rs",
            "//! Tuning.\nfn interval() -> Option<String> {\n    std::env::var_os(\"FIXLOOP_INTERVAL\").map(|v| v.to_string_lossy().into_owned())\n}\n",
        )],
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(
            "fixloop-server/src/runtime/tuning.rs:3: [environment-in-main-and-cli-only] `env::var_os`"
        ),
        "{found:#?}"
    );
}

#[test]
fn clap_env_attributes_and_dotenv_outside_cli_are_reported() {
    let found = violations_of(
        only_main_and_cli_read_the_environment,
        &[(
            "conformance/src/options.rs",
            "//! Options.\n#[derive(clap::Parser)]\nstruct Args {\n    #[arg(\n        long,\n        env = \"SECRET\",\n    )]\n    secret: String,\n    #[arg(long)]\n    env: String,\n}\nfn load() { dotenvy::dotenv().ok(); }\n",
        )],
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("conformance/src/options.rs:6:"),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with("conformance/src/options.rs:12:") && found[1].contains("`dotenv`"),
        "{found:#?}"
    );
}

#[test]
fn a_long_file_is_reported_and_its_tests_do_not_count() {
    let long = format!("//! Long.\n{}", "fn f() {}\n".repeat(MAX_LINES));
    let long_with_tests = format!(
        "//! Short with long tests.\n{}#[cfg(test)]\nmod tests {{\n{}}}\n",
        "fn f() {}\n".repeat(MAX_LINES - 1),
        "    fn t() {}\n".repeat(2 * MAX_LINES)
    );
    let generated = format!(
        "// @generated by a build script: do not edit\n{}",
        "fn f() {}\n".repeat(2 * MAX_LINES)
    );
    let found = violations_of(
        no_long_files,
        &[
            ("fixloop-core/src/engine/machine.rs", &long),
            ("fixloop-core/src/engine/planning.rs", &long_with_tests),
            ("fixloop-core/src/generated.rs", &generated),
            ("fixloop-core/tests/it/long.rs", &long),
            ("fixloop-core/src/engine/tests.rs", &long),
            ("fixloop-server/benches/scale.rs", &long),
        ],
    );
    assert_eq!(
        found,
        [format!(
            "fixloop-core/src/engine/machine.rs:801: [file-length] {} lines before the tests (at most 800): split \
             the file by concept into a folder of modules",
            MAX_LINES + 1
        )]
    );
}

#[test]
fn silencing_the_argument_count_lint_is_reported_anywhere() {
    let found = violations_of(
        lint_limiting_arguments_is_never_silenced,
        &[
            (
                "fixloop-server/src/runtime/supervisor.rs",
                &format!("//! The supervisor.\n#[allow(clippy::{LINT})]\nfn start() {{}}\n"),
            ),
            (
                "fixloop-server/tests/it/support.rs",
                &format!(
                    "//! Support.\n#[expect(clippy::{LINT}, reason = \"test\")]\nfn app() {{}}\n"
                ),
            ),
            (
                "fixloop-core/clippy.toml",
                "too-many-arguments-threshold = 12\n",
            ),
        ],
    );
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].starts_with(
            "fixloop-server/src/runtime/supervisor.rs:2: [no-too-many-arguments-allowance]"
        ),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with("fixloop-server/tests/it/support.rs:2:"),
        "{found:#?}"
    );
    assert!(
        found[2].starts_with("fixloop-core/clippy.toml:1:"),
        "{found:#?}"
    );
}

#[test]
fn the_trailing_test_module_is_found_only_at_the_end() {
    let with_tests = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n";
    assert_eq!(non_test_len(with_tests), "fn a() {}\n".len());
    let cfg_test_item_in_the_middle = "#[cfg(test)]\nmod helpers {\n}\nfn b() {}\n";
    assert_eq!(
        non_test_len(cfg_test_item_in_the_middle),
        cfg_test_item_in_the_middle.len()
    );
    assert!(has_word("use axum::Router;", "axum"));
    assert!(!has_word("let axum_like = 1;", "axum"));
}
