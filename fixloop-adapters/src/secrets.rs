//! Secret placeholders in test requests: a header value or a string inside `body_json` may contain
//! `${env:NAME}` (NAME matches `[A-Z_][A-Z0-9_]*`), which the HTTP test runner and the synthetic probes replace with
//! the configured [`Secret`] of that name at send time only.
//!
//! The plan keeps the placeholder, so a secret is never published, logged or sent to an LLM; a resolved value is
//! redacted from any text FixLoop reports (a test's details). The server uses [`placeholders`] to check that every
//! secret a service profile references is configured.

use std::collections::BTreeMap;

use crate::secret::Secret;

/// What a redacted secret value is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

const OPEN: &str = "${env:";

/// The secret names `text` references, in order of appearance (repeated names repeat):
/// `"Bearer ${env:API_TOKEN}"` → `API_TOKEN`. Text that is not a well-formed placeholder (`${env:lower}`,
/// `${env:X` without its brace) is not one and stays literal.
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    // One grammar for the whole workspace: the core's, which the plan validator uses too.
    fixloop_core::service::secret_references(text)
}

/// A name of the grammar followed by `}` at the start of `text`.
fn parse_name(text: &str) -> Option<&str> {
    let end = text.find('}')?;
    let name = &text[..end];
    fixloop_core::service::is_secret_name(name).then_some(name)
}

/// Replaces every placeholder of `text` with its secret's value.
///
/// # Errors
///
/// The first referenced name that `secrets` does not hold.
pub fn substitute<'a>(
    text: &'a str,
    secrets: &BTreeMap<String, Secret>,
) -> Result<std::borrow::Cow<'a, str>, String> {
    if !text.contains(OPEN) {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        match parse_name(after) {
            Some(name) => {
                let secret = secrets.get(name).ok_or_else(|| name.to_owned())?;
                out.push_str(&rest[..start]);
                out.push_str(secret.expose());
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push_str(&rest[..start + OPEN.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(std::borrow::Cow::Owned(out))
}

/// Replaces every occurrence of a non-empty value of `secrets` in `text` with `[redacted]`, longest values first
/// (so a value containing another is redacted whole).
pub(crate) fn redact<'s>(text: &str, secrets: impl IntoIterator<Item = &'s Secret>) -> String {
    let mut values: Vec<&str> = secrets
        .into_iter()
        .map(Secret::expose)
        .filter(|value| !value.is_empty())
        .collect();
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    let mut out = text.to_owned();
    for value in values {
        if out.contains(value) {
            out = out.replace(value, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> BTreeMap<String, Secret> {
        BTreeMap::from([
            ("API_TOKEN".to_owned(), Secret::new("tok-123")),
            ("_X1".to_owned(), Secret::new("x")),
        ])
    }

    #[test]
    fn placeholders_names_well_formed_references_only() {
        let text =
            "Bearer ${env:API_TOKEN} ${env:_X1}${env:lower} ${env:A-B} ${env:OPEN ${env:API_TOKEN}";
        let names: Vec<&str> = placeholders(text).collect();
        assert_eq!(names, ["API_TOKEN", "_X1", "API_TOKEN"]);
        assert_eq!(placeholders("no secrets, $HOME, ${X}").count(), 0);
        assert_eq!(placeholders("${env:}").count(), 0);
        assert_eq!(placeholders("${env:9A}").count(), 0);
    }

    #[test]
    fn substitute_replaces_known_names_and_reports_the_first_unknown() {
        let secrets = secrets();
        assert_eq!(
            substitute("Bearer ${env:API_TOKEN}/${env:_X1}${env:lower}", &secrets).unwrap(),
            "Bearer tok-123/x${env:lower}"
        );
        assert_eq!(
            substitute("${env:API_TOKEN} ${env:MISSING}", &secrets),
            Err("MISSING".to_owned())
        );
        assert!(matches!(
            substitute("plain", &secrets),
            Ok(std::borrow::Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn redact_hides_values_longest_first_and_ignores_empty_ones() {
        let secrets = [Secret::new("abc"), Secret::new("abcdef"), Secret::new("")];
        assert_eq!(
            redact("got abcdef and abc", &secrets),
            "got [redacted] and [redacted]"
        );
        assert_eq!(redact("nothing", &secrets), "nothing");
    }
}
