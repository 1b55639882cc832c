//! The library's modules form no circle: reading each `src/` file as text, a module's dependencies are the modules
//! its code names (`crate::…`, `super::…`, `self::…`, or a child module by name), and following them never leads
//! back to where it started. A child using its parent's items counts: helpers the children share live in a module
//! of their own (`cases::context`, `cases::check`, `cases::messages`, `cases::flow::steps`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module of the library (`crate`, `crate::cases`, …) with its code (the trailing test module left out).
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let mut modules = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let mut segments: Vec<String> = relative
            .iter()
            .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
            .collect();
        if segments == ["main"] {
            // The CLI is a crate of its own that uses the library's public API.
            continue;
        }
        if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
            segments.pop();
        }
        let name = std::iter::once("crate".to_owned())
            .chain(segments)
            .collect::<Vec<_>>()
            .join("::");
        let text = std::fs::read_to_string(&file).expect("read source");
        let code = match text.find("\n#[cfg(test)]\nmod tests {") {
            Some(end) => text[..end].to_owned(),
            None => text,
        };
        let code: Vec<&str> = code
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect();
        modules.insert(name, code.join("\n"));
    }
    modules
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// The modules `module` names in `code`: the longest known module prefix of each path it writes.
fn dependencies(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = module
        .rsplit_once("::")
        .map_or("crate", |(parent, _)| parent);
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("::") {
        // The path this `::` belongs to (found once per `::`, the same each time): its start, and forward over
        // `ident::ident…`.
        let start = code[..at]
            .rfind(|c: char| !(is_ident(c) || c == ':'))
            .map_or(0, |i| i + 1);
        let end = code[start..]
            .find(|c: char| !(is_ident(c) || c == ':'))
            .map_or(code.len(), |i| start + i);
        let path: Vec<&str> = code[start..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .collect();
        let Some((&first, rest)) = path.split_first() else {
            continue;
        };
        let base = match first {
            "crate" => "crate".to_owned(),
            "super" => parent.to_owned(),
            "self" => module.to_owned(),
            child if known.contains(&format!("{module}::{child}")) => {
                format!("{module}::{child}")
            }
            _ => continue,
        };
        let mut target = base.clone();
        let mut longest = base;
        for segment in rest {
            target = format!("{target}::{segment}");
            if known.contains(&target) {
                longest.clone_from(&target);
            }
        }
        if longest != module {
            found.insert(longest);
        }
    }
    found
}

#[test]
fn the_library_modules_form_no_circle() {
    let modules = modules();
    assert!(
        modules.contains_key("crate::cases::flow"),
        "found the modules: {:?}",
        modules.keys()
    );
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    let graph: BTreeMap<&str, BTreeSet<String>> = modules
        .iter()
        .map(|(name, code)| (name.as_str(), dependencies(name, code, &known)))
        .collect();
    // Depth-first search; a module met again on the current path closes a circle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<&str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|on| *on == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node);
            circles.push(circle.join(" -> "));
            return;
        }
        if !done.insert(node) {
            return;
        }
        path.push(node);
        for next in &graph[node] {
            visit(next, graph, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(
        circles.is_empty(),
        "module circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn a_child_using_its_parent_is_a_dependency() {
    let known: BTreeSet<String> = [
        "crate",
        "crate::cases",
        "crate::cases::flow",
        "crate::cases::ws",
    ]
    .map(str::to_owned)
    .into();
    let ws = dependencies(
        "crate::cases::ws",
        "use super::flow::{FlowResult, find};\nuse super::{Ctx, info};",
        &known,
    );
    assert_eq!(
        ws,
        ["crate::cases", "crate::cases::flow"]
            .map(str::to_owned)
            .into()
    );
    let cases = dependencies(
        "crate::cases",
        "let flow = flow::run(&mut ctx).await;",
        &known,
    );
    assert_eq!(cases, ["crate::cases::flow"].map(str::to_owned).into());
}
