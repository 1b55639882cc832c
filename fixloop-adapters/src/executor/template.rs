//! `{name}` placeholders in an action's templates (URL, JSON body, argv), filled from the request's arguments.
//!
//! A placeholder is `{` then one or more of `A-Z a-z 0-9 _ -` then `}`; any other brace is literal text. Every
//! placeholder of an action must be filled and every argument must fill one: a request that does not fit its
//! action exactly is refused before any I/O.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::AdapterError;

/// The placeholder names of `template`, in order of appearance.
pub(crate) fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            names.push(&after[..name_len]);
            rest = &after[name_len + 1..];
        } else {
            rest = after;
        }
    }
    names
}

/// Fills every placeholder of `template` with its argument, passed through `encode`.
///
/// # Errors
///
/// A refusal naming the first placeholder without an argument.
pub(crate) fn fill(
    template: &str,
    arguments: &BTreeMap<String, String>,
    encode: impl Fn(&str) -> String,
) -> Result<String, AdapterError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            let value = arguments
                .get(name)
                .ok_or_else(|| AdapterError::refused(format!("argument {name:?} is missing")))?;
            out.push_str(&encode(value));
            rest = &after[name_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks that the arguments are exactly the placeholders of `templates`.
///
/// # Errors
///
/// A refusal naming a missing or an unexpected argument.
pub(crate) fn check_arguments<'a>(
    templates: impl IntoIterator<Item = &'a str>,
    arguments: &BTreeMap<String, String>,
) -> Result<(), AdapterError> {
    let wanted: BTreeSet<&str> = templates.into_iter().flat_map(placeholders).collect();
    if let Some(missing) = wanted.iter().find(|name| !arguments.contains_key(**name)) {
        return Err(AdapterError::refused(format!(
            "argument {missing:?} is missing"
        )));
    }
    if let Some(unexpected) = arguments
        .keys()
        .find(|name| !wanted.contains(name.as_str()))
    {
        return Err(AdapterError::refused(format!(
            "argument {unexpected:?} is not declared by the action"
        )));
    }
    Ok(())
}

/// Percent-encodes everything but the unreserved characters of RFC 3986, so an argument stays inside the one URL
/// component it fills (it can add no path segment, query parameter, user info or host).
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Fills the placeholders of every string inside a JSON value (keys are left as written).
///
/// # Errors
///
/// A refusal naming the first placeholder without an argument.
pub(crate) fn fill_json(
    template: &serde_json::Value,
    arguments: &BTreeMap<String, String>,
) -> Result<serde_json::Value, AdapterError> {
    use serde_json::Value;
    Ok(match template {
        Value::String(text) => Value::String(fill(text, arguments, str::to_owned)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| fill_json(item, arguments))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| Ok((key.clone(), fill_json(value, arguments)?)))
                .collect::<Result<_, AdapterError>>()?,
        ),
        other => other.clone(),
    })
}

/// Every string inside a JSON value, for [`check_arguments`].
pub(crate) fn json_strings(value: &serde_json::Value) -> Vec<&str> {
    use serde_json::Value;
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().flat_map(json_strings).collect(),
        Value::Object(fields) => fields.values().flat_map(json_strings).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn placeholders_are_filled_and_other_braces_kept() {
        let filled = fill(
            "/flags/{flag}?on={on}&x={ not one }",
            &arguments(&[("flag", "pay ment/../x"), ("on", "false")]),
            percent_encode,
        )
        .unwrap();
        assert_eq!(filled, "/flags/pay%20ment%2F..%2Fx?on=false&x={ not one }");
    }

    #[test]
    fn arguments_must_match_the_placeholders_exactly() {
        let templates = ["/flags/{flag}", "{flag}-{state}"];
        assert!(check_arguments(templates, &arguments(&[("flag", "a"), ("state", "b")])).is_ok());
        let missing = check_arguments(templates, &arguments(&[("flag", "a")])).unwrap_err();
        assert!(
            missing.to_string().contains("\"state\" is missing"),
            "{missing}"
        );
        let extra = check_arguments(
            templates,
            &arguments(&[("flag", "a"), ("state", "b"), ("x", "c")]),
        )
        .unwrap_err();
        assert!(
            extra.to_string().contains("\"x\" is not declared"),
            "{extra}"
        );
    }

    #[test]
    fn json_strings_are_filled_without_escaping_trouble() {
        let template = serde_json::json!({"flag": "{flag}", "nested": ["{flag}", 1]});
        let filled = fill_json(&template, &arguments(&[("flag", "a\"b")])).unwrap();
        assert_eq!(
            filled,
            serde_json::json!({"flag": "a\"b", "nested": ["a\"b", 1]})
        );
    }
}
