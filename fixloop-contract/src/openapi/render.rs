//! Corrections to utoipa's renderings of the document: the camel-case keys of a Link Object, and timestamps quoted
//! for YAML 1.1 readers.

/// The keys of utoipa's `Link` as it serializes them, and as OpenAPI spells them.
///
/// utoipa 5 serializes its Link Object without `rename_all = "camelCase"`, so `operationId` comes out as
/// `operation_id`, which no OpenAPI reader knows (schemathesis reports the link as naming no operation).
const LINK_KEYS: [(&str, &str); 3] = [
    ("operation_id", "operationId"),
    ("operation_ref", "operationRef"),
    ("request_body", "requestBody"),
];

/// Renames [`LINK_KEYS`] in a rendering (YAML or pretty JSON) of the document: only the keys of a Link Object,
/// that is the lines two levels below a `links` key.
pub(super) fn camel_case_link_keys(text: &str) -> String {
    let indent_of = |line: &str| line.len() - line.trim_start().len();
    let mut out = String::with_capacity(text.len());
    let mut links_indent: Option<usize> = None;
    for line in text.lines() {
        let indent = indent_of(line);
        let trimmed = line.trim_start();
        if links_indent.is_some_and(|opener| indent <= opener) {
            links_indent = None;
        }
        let mut renamed = None;
        if let Some(opener) = links_indent
            && indent == opener + 4
        {
            renamed = LINK_KEYS.iter().find_map(|(snake, camel)| {
                let yaml = trimmed
                    .strip_prefix(&format!("{snake}:"))
                    .map(|rest| (*camel, rest, ""));
                let json = trimmed
                    .strip_prefix(&format!("\"{snake}\":"))
                    .map(|rest| (*camel, rest, "\""));
                yaml.or(json).map(|(camel, rest, quote)| {
                    format!("{}{quote}{camel}{quote}:{rest}", &line[..indent])
                })
            });
        }
        if trimmed == "links:" || trimmed == "\"links\": {" {
            links_indent = Some(indent);
        }
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Quotes plain scalars that look like timestamps, so YAML 1.1 readers (PyYAML) keep them as strings.
pub(super) fn quote_timestamps(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 256);
    for line in yaml.lines() {
        let split = line.rfind(": ").map(|at| at + 2).or_else(|| {
            line.trim_start()
                .starts_with("- ")
                .then(|| line.find("- ").map(|at| at + 2))
                .flatten()
        });
        match split {
            Some(at) if chrono::DateTime::parse_from_rfc3339(&line[at..]).is_ok() => {
                out.push_str(&line[..at]);
                out.push('\'');
                out.push_str(&line[at..]);
                out.push('\'');
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}
