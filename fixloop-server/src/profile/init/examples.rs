//! Examples for requests, read from the document: path, query and header parameters filled from their examples
//! or defaults, a JSON request body from its example or built from its schema's properties, and the documented
//! response statuses.

use std::collections::{BTreeMap, BTreeSet};

use fixloop_contract::JsonObject;
use serde_json::{Map, Value};

use super::document::resolve;
use super::text::{encode_into, is_token_byte, scalar_text, str_at};

/// Deepest schema nesting an example is built for.
const MAX_SCHEMA_DEPTH: usize = 8;

/// The operation's parameters (resolved), the path item's shared ones overridden by name and location.
pub(super) fn parameters<'a>(
    document: &'a Value,
    shared: Option<&'a Value>,
    own: Option<&'a Value>,
) -> Vec<&'a Value> {
    let mut merged: Vec<&Value> = Vec::new();
    for list in [shared, own].into_iter().flatten() {
        for parameter in list.as_array().into_iter().flatten() {
            let Some(parameter) = resolve(document, parameter) else {
                continue;
            };
            let key = (str_at(parameter, "name"), str_at(parameter, "in"));
            merged.retain(|other| (str_at(other, "name"), str_at(other, "in")) != key);
            merged.push(parameter);
        }
    }
    merged
}

/// The path with every `{name}` replaced by the parameter's example, percent-encoded.
pub(super) fn fill_path(
    document: &Value,
    template: &str,
    parameters: &[&Value],
) -> Result<String, String> {
    let mut path = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        encode_into(&mut path, &rest[..start], true);
        let end = rest[start..]
            .find('}')
            .map(|end| start + end)
            .ok_or("an unclosed `{` in the path")?;
        let name = &rest[start + 1..end];
        let parameter = parameters
            .iter()
            .find(|parameter| {
                str_at(parameter, "in") == Some("path") && str_at(parameter, "name") == Some(name)
            })
            .ok_or_else(|| format!("path parameter `{name}` is not described"))?;
        let value = parameter_example(document, parameter)
            .ok_or_else(|| format!("path parameter `{name}` has no example or default"))?;
        // The plan validator refuses dot segments and encoded slashes, backslashes and percent signs.
        if matches!(value.as_str(), "" | "." | "..")
            || value.contains(['/', '\\', '%'])
            || value.chars().any(char::is_control)
        {
            return Err(format!(
                "the example of path parameter `{name}` cannot be sent in a path"
            ));
        }
        encode_into(&mut path, &value, false);
        rest = &rest[end + 1..];
    }
    encode_into(&mut path, rest, true);
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Ok(path)
}

/// The query pairs and headers of the required query and header parameters, from their examples.
pub(super) fn fill_query_and_headers(
    document: &Value,
    parameters: &[&Value],
) -> Result<(Vec<String>, BTreeMap<String, String>), String> {
    let mut query = Vec::new();
    let mut headers = BTreeMap::new();
    for parameter in parameters {
        if parameter.get("required").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let name = str_at(parameter, "name").unwrap_or("");
        let location = str_at(parameter, "in").unwrap_or("");
        let example = || {
            parameter_example(document, parameter).ok_or_else(|| {
                format!("required {location} parameter `{name}` has no example or default")
            })
        };
        match location {
            "query" => {
                let mut pair = String::new();
                encode_into(&mut pair, name, false);
                pair.push('=');
                encode_into(&mut pair, &example()?, false);
                query.push(pair);
            }
            "header" if name.eq_ignore_ascii_case("authorization") => {}
            "header" => {
                let value = example()?;
                if name.is_empty()
                    || !name.bytes().all(is_token_byte)
                    || value.chars().any(char::is_control)
                {
                    return Err(format!("required header `{name}` cannot be sent as it is"));
                }
                headers.insert(name.to_ascii_lowercase(), value);
            }
            "path" => {}
            other => {
                return Err(format!(
                    "required {other} parameter `{name}` is not supported"
                ));
            }
        }
    }
    Ok((query, headers))
}

/// A parameter's example as text: `example`, the first of `examples`, or the schema's example, default or first
/// enum value.
pub(super) fn parameter_example(document: &Value, parameter: &Value) -> Option<String> {
    let value = parameter
        .get("example")
        .or_else(|| first_example(document, parameter.get("examples")))
        .or_else(|| own_example(document, parameter.get("schema")?))?;
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(scalar_text(value)),
        _ => None,
    }
}

/// The `value` of the first entry of an `examples` map (entries may be `$ref`s to `#/components/examples`).
pub(super) fn first_example<'a>(
    document: &'a Value,
    examples: Option<&'a Value>,
) -> Option<&'a Value> {
    examples?
        .as_object()?
        .values()
        .find_map(|example| resolve(document, example)?.get("value"))
}

/// The documented response statuses (`2XX` and friends are left out, as is `default`).
pub(super) fn responses(operation: &Map<String, Value>) -> Vec<u16> {
    let mut statuses: Vec<u16> = operation
        .get("responses")
        .and_then(Value::as_object)
        .map(|responses| {
            responses
                .keys()
                .filter_map(|key| key.parse().ok())
                .filter(|status| (100..600).contains(status))
                .collect()
        })
        .unwrap_or_default();
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

/// The JSON media type of a request body, resolved.
pub(super) fn json_media<'a>(
    document: &'a Value,
    operation: &'a Map<String, Value>,
) -> Option<&'a Value> {
    let body = resolve(document, operation.get("requestBody")?)?;
    let content = body.get("content")?.as_object()?;
    content
        .get("application/json")
        .or_else(|| {
            content
                .iter()
                .find(|(media, _)| media.contains("json"))
                .map(|(_, media)| media)
        })
        .and_then(|media| resolve(document, media))
}

/// The request body example as a JSON object, or why there is none.
pub(super) fn request_body_example(
    document: &Value,
    operation: &Map<String, Value>,
) -> Result<JsonObject, String> {
    let Some(media) = json_media(document, operation) else {
        return Err(if operation.contains_key("requestBody") {
            "the request body is not JSON (or its $ref cannot be resolved)".to_owned()
        } else {
            "no request body is described, so no example to send".to_owned()
        });
    };
    let example = media
        .get("example")
        .cloned()
        .or_else(|| first_example(document, media.get("examples")).cloned())
        .or_else(|| {
            media
                .get("schema")
                .and_then(|schema| schema_example(document, schema, 0))
        })
        .ok_or("no JSON request body example (example, examples or schema examples)")?;
    match toml_safe(example) {
        Some(Value::Object(object)) => Ok(object),
        Some(_) => Err("the request body example is not a JSON object".to_owned()),
        None => Err(
            "the request body example holds a null in a list or a number TOML cannot write"
                .to_owned(),
        ),
    }
}

/// An example for a schema: its own `example`/`examples`/`default`/`enum`, or an object built from its
/// properties' examples (required ones must have one), at most [`MAX_SCHEMA_DEPTH`] deep.
pub(super) fn schema_example(document: &Value, schema: &Value, depth: usize) -> Option<Value> {
    if depth > MAX_SCHEMA_DEPTH {
        return None;
    }
    let schema = resolve(document, schema)?;
    if let Some(example) = own_example(document, schema) {
        return Some(example.clone());
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in parts {
            match schema_example(document, part, depth + 1)? {
                Value::Object(object) => merged.extend(object),
                _ => return None,
            }
        }
        return Some(Value::Object(merged));
    }
    if let Some(first) = ["oneOf", "anyOf"]
        .iter()
        .find_map(|key| schema.get(key).and_then(Value::as_array))
    {
        return first
            .iter()
            .find_map(|option| schema_example(document, option, depth + 1));
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let required = required_names(schema);
        let mut object = Map::new();
        for (name, property) in properties {
            // Optional properties only when they have an example of their own, to keep bodies small.
            let example = if required.contains(name.as_str()) {
                schema_example(document, property, depth + 1)
            } else {
                own_example(document, property).cloned()
            };
            match example {
                Some(value) => {
                    object.insert(name.clone(), value);
                }
                None if required.contains(name.as_str()) => return None,
                None => {}
            }
        }
        return Some(Value::Object(object));
    }
    if str_at(schema, "type") == Some("array") {
        let item = schema_example(document, schema.get("items")?, depth + 1)?;
        return Some(Value::Array(vec![item]));
    }
    None
}

/// A schema's own `example`, first of `examples`, `default` or first `enum` value.
pub(super) fn own_example<'a>(document: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    let schema = resolve(document, schema)?;
    schema
        .get("example")
        .or_else(|| schema.get("examples").and_then(|examples| examples.get(0)))
        .or_else(|| schema.get("default"))
        .or_else(|| schema.get("enum").and_then(|values| values.get(0)))
}

/// Whether the JSON request body's schema requires properties (so an empty object must be refused).
pub(super) fn requires_properties(document: &Value, operation: &Map<String, Value>) -> bool {
    let Some(schema) = json_media(document, operation)
        .and_then(|media| media.get("schema"))
        .and_then(|schema| resolve(document, schema))
    else {
        return false;
    };
    !required_names(schema).is_empty()
        || schema
            .get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|parts| {
                parts.iter().any(|part| {
                    resolve(document, part).is_some_and(|part| !required_names(part).is_empty())
                })
            })
}

pub(super) fn required_names(schema: &Value) -> BTreeSet<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The value with object keys holding `null` removed (TOML has no null); `None` if a list holds a null or a number
/// does not fit TOML's 64-bit signed integers.
pub(super) fn toml_safe(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Number(number) if number.is_u64() && number.as_i64().is_none() => None,
        Value::Array(items) => items
            .into_iter()
            .map(toml_safe)
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        Value::Object(object) => object
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, value)| toml_safe(value).map(|value| (key, value)))
            .collect::<Option<Map<_, _>>>()
            .map(Value::Object),
        other => Some(other),
    }
}
