//! Reading the API description: JSON or YAML text into one OpenAPI 3-shaped JSON value, whatever the version.
//!
//! OpenAPI 3.0 and 3.1 are read as they are. Swagger 2.0 is rewritten in place into the OpenAPI 3 shape the
//! generator reads: `host`, `basePath` and `schemes` become `servers`, a `body` parameter becomes a `requestBody`
//! (`formData` a form body), `consumes`/`produces` become the media types of bodies and responses, `x-example`
//! becomes `example`, a parameter's `type`/`enum`/`default` move into its `schema`, and `securityDefinitions`
//! become `components.securitySchemes` (`basic` as an `http` scheme). `$ref`s keep pointing where they pointed
//! (`#/definitions/...` stays valid: the value keeps its Swagger sections).
//!
//! YAML integers beyond 64 bits (and below) become floating-point numbers, as the same JSON would, instead of
//! failing the document. Base URLs: `servers[0]` with its variables' defaults; a relative URL (or no `servers`,
//! which OpenAPI reads as `/`) is resolved against the document's URL when it was fetched from one.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::InitError;
use super::text::{scalar_text, str_at};

/// Deepest chain of `$ref`s that is followed; cyclic references stop here.
const MAX_REF_DEPTH: usize = 16;

/// Which description format the document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// Swagger 2.0, rewritten into the OpenAPI 3 shape.
    Swagger2,
    /// OpenAPI 3.0.
    OpenApi30,
    /// OpenAPI 3.1.
    OpenApi31,
}

impl Format {
    /// How the format is named in the header comment.
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            Self::Swagger2 => "Swagger 2.0",
            Self::OpenApi30 => "OpenAPI 3.0",
            Self::OpenApi31 => "OpenAPI 3.1",
        }
    }
}

/// Parses the text and returns it in the OpenAPI 3 shape, with its original format.
pub(super) fn load(text: &str, source_name: &str) -> Result<(Value, Format), InitError> {
    let mut document = parse_document(text)?;
    let format = check_version(&document)?;
    if format == Format::Swagger2 {
        swagger_to_openapi(&mut document, source_name);
    }
    Ok((document, format))
}

/// Parses JSON (text starting with `{`) or YAML into a JSON value.
fn parse_document(text: &str) -> Result<Value, InitError> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('{') {
        // A flow-style YAML mapping starts with `{` too: fall back to YAML, but report the JSON error.
        return serde_json::from_str(text)
            .or_else(|json| parse_yaml(text).map_err(|_| InitError::Json(json)));
    }
    parse_yaml(text)
}

/// YAML into JSON: through `serde_norway::Value` (which applies `<<` merge keys), and when that fails (it refuses
/// integers beyond 64 bits), directly into JSON with such integers as floating-point numbers.
fn parse_yaml(text: &str) -> Result<Value, InitError> {
    let value = serde_norway::from_str::<serde_norway::Value>(text).and_then(|mut yaml| {
        yaml.apply_merge()?;
        Ok(yaml)
    });
    match value {
        Ok(yaml) => Ok(yaml_to_json(yaml)),
        Err(error) => serde_norway::from_str::<Lenient>(text)
            .map(|lenient| lenient.0)
            .map_err(|_| InitError::Yaml(error)),
    }
}

/// A JSON value deserialized from YAML: mapping keys as text, 128-bit integers as floating-point numbers.
struct Lenient(Value);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor).map(Lenient)
    }
}

struct LenientVisitor;

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }
    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }
    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }
    #[allow(clippy::cast_precision_loss)] // A number beyond 64 bits is kept approximately, as JSON parsers do.
    fn visit_i128<E>(self, value: i128) -> Result<Value, E> {
        Ok(float(value as f64))
    }
    #[allow(clippy::cast_precision_loss)] // As above.
    fn visit_u128<E>(self, value: u128) -> Result<Value, E> {
        Ok(float(value as f64))
    }
    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(float(value))
    }
    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }
    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Lenient(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some((Lenient(key), Lenient(value))) = map.next_entry()? {
            let key = match key {
                Value::String(text) => text,
                Value::Number(_) | Value::Bool(_) => key.to_string(),
                _ => return Err(de::Error::custom("a mapping key is not a scalar")),
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn float(value: f64) -> Value {
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// YAML to JSON: mapping keys become strings (`200:` is a number in YAML), tags are dropped.
fn yaml_to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Yaml;
    match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => {
            if let Some(integer) = number.as_i64() {
                Value::from(integer)
            } else if let Some(integer) = number.as_u64() {
                Value::from(integer)
            } else {
                number.as_f64().map_or(Value::Null, float)
            }
        }
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Yaml::Mapping(mapping) => Value::Object(
            mapping
                .into_iter()
                .filter_map(|(key, value)| {
                    let key = match key {
                        Yaml::String(text) => text,
                        Yaml::Number(number) => number.to_string(),
                        Yaml::Bool(flag) => flag.to_string(),
                        _ => return None,
                    };
                    Some((key, yaml_to_json(value)))
                })
                .collect(),
        ),
        Yaml::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

fn check_version(document: &Value) -> Result<Format, InitError> {
    let Some(object) = document.as_object() else {
        return Err(InitError::NotOpenApi {
            found: "the document is not a mapping".to_owned(),
        });
    };
    if let Some(version) = object.get("swagger") {
        return match scalar_text(version).as_str() {
            "2.0" | "2" => Ok(Format::Swagger2),
            other => Err(InitError::NotOpenApi {
                found: format!("`swagger: {other}`"),
            }),
        };
    }
    match object.get("openapi") {
        Some(Value::String(version)) if version.starts_with("3.1") => Ok(Format::OpenApi31),
        Some(Value::String(version)) if version.starts_with("3.") => Ok(Format::OpenApi30),
        Some(version) => Err(InitError::NotOpenApi {
            found: format!("`openapi: {}`", scalar_text(version)),
        }),
        None => Err(InitError::NotOpenApi {
            found: "there is no `openapi` or `swagger` version field".to_owned(),
        }),
    }
}

/// Rewrites a Swagger 2.0 document into the OpenAPI 3 shape (see the [module docs](self)).
fn swagger_to_openapi(document: &mut Value, source_name: &str) {
    let Some(root) = document.as_object_mut() else {
        return;
    };
    let host = root.get("host").and_then(Value::as_str).map(str::to_owned);
    let base_path = root
        .get("basePath")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned();
    let schemes: Vec<String> = root
        .get("schemes")
        .and_then(Value::as_array)
        .map(|schemes| {
            schemes
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let url = match host {
        Some(host) => {
            // The document's own scheme when it is listed (or none is), else https when listed, else the first.
            let fetched = reqwest::Url::parse(source_name)
                .ok()
                .map(|url| url.scheme().to_owned())
                .filter(|scheme| matches!(scheme.as_str(), "http" | "https"));
            let scheme = match &fetched {
                Some(scheme) if schemes.is_empty() || schemes.contains(scheme) => scheme.clone(),
                _ if schemes.iter().any(|scheme| scheme == "https") => "https".to_owned(),
                _ => schemes
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "http".to_owned()),
            };
            format!("{scheme}://{host}{base_path}")
        }
        // No host: the host serving the documentation, which OpenAPI 3 says with a relative URL.
        None if base_path.is_empty() => "/".to_owned(),
        None => base_path,
    };
    root.insert(
        "servers".to_owned(),
        Value::Array(vec![serde_json::json!({ "url": url })]),
    );
    let consumes = media_list(root.get("consumes"));
    let produces = media_list(root.get("produces"));
    if let Some(definitions) = root.get("securityDefinitions").cloned() {
        let mut schemes = Map::new();
        for (name, scheme) in definitions.as_object().into_iter().flatten() {
            let mut scheme = scheme.clone();
            if str_at(&scheme, "type") == Some("basic")
                && let Some(object) = scheme.as_object_mut()
            {
                object.insert("type".to_owned(), Value::from("http"));
                object.insert("scheme".to_owned(), Value::from("basic"));
            }
            schemes.insert(name.clone(), scheme);
        }
        root.entry("components")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .map(|components| {
                components.insert("securitySchemes".to_owned(), Value::Object(schemes))
            });
    }
    let snapshot = Value::Object(root.clone());
    let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        let shared = item.get("parameters").cloned();
        if let Some(shared) = &shared {
            let (converted, _) = convert_parameters(&snapshot, shared, &consumes);
            item.insert("parameters".to_owned(), converted);
        }
        for (method, operation) in item.iter_mut() {
            if !matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "options" | "head" | "patch"
            ) {
                continue;
            }
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            let consumes = media_list(operation.get("consumes")).or(consumes.clone());
            let produces = media_list(operation.get("produces")).or(produces.clone());
            // A body parameter shared by the path item applies to the operation too.
            let mut parameters: Vec<Value> = shared
                .iter()
                .flat_map(|shared| shared.as_array().cloned().unwrap_or_default())
                .filter(|parameter| {
                    resolve(&snapshot, parameter)
                        .is_some_and(|p| matches!(str_at(p, "in"), Some("body" | "formData")))
                })
                .collect();
            parameters.extend(
                operation
                    .get("parameters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            let (converted, body) =
                convert_parameters(&snapshot, &Value::Array(parameters), &consumes);
            operation.insert("parameters".to_owned(), converted);
            if let Some(body) = body {
                operation.insert("requestBody".to_owned(), body);
            }
            if let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            {
                for response in responses.values_mut() {
                    convert_response(response, &produces);
                }
            }
        }
    }
}

/// A `consumes`/`produces` list.
fn media_list(value: Option<&Value>) -> Option<Vec<String>> {
    let list: Vec<String> = value?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    (!list.is_empty()).then_some(list)
}

/// Swagger parameters in OpenAPI 3 shape, and the request body made of the `body` or `formData` ones.
fn convert_parameters(
    document: &Value,
    parameters: &Value,
    consumes: &Option<Vec<String>>,
) -> (Value, Option<Value>) {
    let mut converted = Vec::new();
    let mut body = None;
    let mut form = Map::new();
    let mut form_required = Vec::new();
    for parameter in parameters.as_array().into_iter().flatten() {
        let Some(resolved) = resolve(document, parameter) else {
            converted.push(parameter.clone());
            continue;
        };
        match str_at(resolved, "in") {
            Some("body") => {
                let media = consumes
                    .as_ref()
                    .and_then(|list| {
                        list.iter()
                            .find(|media| media.contains("json"))
                            .or(list.first())
                    })
                    .cloned()
                    .unwrap_or_else(|| "application/json".to_owned());
                let mut content = Map::new();
                if let Some(schema) = resolved.get("schema") {
                    content.insert("schema".to_owned(), schema.clone());
                }
                if let Some(example) = resolved.get("x-example") {
                    content.insert("example".to_owned(), example.clone());
                }
                body = Some(serde_json::json!({
                    "required": resolved.get("required").cloned().unwrap_or(Value::Bool(false)),
                    "content": { media: Value::Object(content) },
                }));
            }
            Some("formData") => {
                if let Some(name) = str_at(resolved, "name") {
                    form.insert(name.to_owned(), parameter_schema(resolved));
                    if resolved.get("required").and_then(Value::as_bool) == Some(true) {
                        form_required.push(Value::from(name));
                    }
                }
            }
            _ => {
                let mut parameter = resolved.clone();
                if let Some(object) = parameter.as_object_mut() {
                    if object.get("schema").is_none() {
                        object.insert("schema".to_owned(), parameter_schema(resolved));
                    }
                    if let Some(example) = object.remove("x-example") {
                        object.insert("example".to_owned(), example);
                    }
                }
                converted.push(parameter);
            }
        }
    }
    if body.is_none() && !form.is_empty() {
        let media = consumes
            .as_ref()
            .and_then(|list| list.first())
            .cloned()
            .unwrap_or_else(|| "application/x-www-form-urlencoded".to_owned());
        body = Some(serde_json::json!({
            "content": { media: { "schema": {
                "type": "object", "properties": Value::Object(form), "required": form_required,
            } } },
        }));
    }
    (Value::Array(converted), body)
}

/// A Swagger parameter's `type`, `format`, `items`, `enum` and `default` as a schema.
fn parameter_schema(parameter: &Value) -> Value {
    let mut schema = Map::new();
    for key in [
        "type", "format", "items", "enum", "default", "minimum", "maximum",
    ] {
        if let Some(value) = parameter.get(key) {
            schema.insert(key.to_owned(), value.clone());
        }
    }
    if let Some(example) = parameter.get("x-example") {
        schema.insert("example".to_owned(), example.clone());
    }
    Value::Object(schema)
}

/// A Swagger response's `schema` and `examples` as OpenAPI 3 `content` for each produced media type.
fn convert_response(response: &mut Value, produces: &Option<Vec<String>>) {
    let Some(object) = response.as_object_mut() else {
        return;
    };
    let schema = object.remove("schema");
    let examples = object.remove("examples");
    let media_types = produces
        .clone()
        .unwrap_or_else(|| vec!["application/json".to_owned()]);
    let mut content = Map::new();
    for media in media_types {
        let mut entry = Map::new();
        if let Some(schema) = &schema {
            entry.insert("schema".to_owned(), schema.clone());
        }
        if let Some(example) = examples.as_ref().and_then(|examples| examples.get(&media)) {
            entry.insert("example".to_owned(), example.clone());
        }
        content.insert(media, Value::Object(entry));
    }
    object.insert("content".to_owned(), Value::Object(content));
}

/// The base URL: the option, else `servers[0]` (see [`server_url`]); checked and without a trailing slash.
pub(super) fn base_url(
    document: &Value,
    given: Option<&str>,
    source_name: &str,
) -> Result<String, InitError> {
    let url = match given {
        Some(url) => url.to_owned(),
        None => {
            let server = document
                .get("servers")
                .and_then(Value::as_array)
                .and_then(|servers| servers.first());
            match server {
                Some(server) => server_url(server, source_name, "")
                    .map_err(|reason| InitError::NoBaseUrl { reason })?,
                // No servers means `/`, relative to the document.
                None => server_url(&serde_json::json!({ "url": "/" }), source_name, "").map_err(
                    |_| InitError::NoBaseUrl {
                        reason: "the document lists no servers and was not fetched from a URL"
                            .to_owned(),
                    },
                )?,
            }
        }
    };
    check_base_url(&url)
}

/// A server object's URL with its variables' defaults, resolved against the document's URL (`source_name`) when
/// relative, else against `fallback` (the base URL, for path- and operation-level servers) when given.
pub(super) fn server_url(
    server: &Value,
    source_name: &str,
    fallback: &str,
) -> Result<String, String> {
    let template = str_at(server, "url").ok_or("the server has no url")?;
    let url = substitute_variables(template, server.get("variables"))?;
    if reqwest::Url::parse(&url).is_ok() {
        return Ok(url);
    }
    let base = reqwest::Url::parse(source_name)
        .ok()
        .filter(|source| matches!(source.scheme(), "http" | "https"))
        .or_else(|| reqwest::Url::parse(&format!("{fallback}/")).ok())
        .ok_or_else(|| {
            format!(
                "the server url `{url}` is relative and the document was not fetched from a URL"
            )
        })?;
    base.join(&url)
        .map(|url| url.to_string())
        .map_err(|error| format!("the server url `{url}` cannot be resolved: {error}"))
}

/// Checks a base URL (absolute http(s), no query, fragment or credentials); without its trailing slash.
fn check_base_url(url: &str) -> Result<String, InitError> {
    let parsed = reqwest::Url::parse(url).map_err(|error| InitError::InvalidBaseUrl {
        url: url.to_owned(),
        reason: error.to_string(),
    })?;
    let problem = if !matches!(parsed.scheme(), "http" | "https") {
        Some("not http or https")
    } else if parsed.host_str().is_none() {
        Some("no host")
    } else if parsed.query().is_some() || parsed.fragment().is_some() {
        Some("it has a query or a fragment")
    } else if !parsed.username().is_empty() || parsed.password().is_some() {
        Some("it holds credentials")
    } else {
        None
    };
    if let Some(reason) = problem {
        return Err(InitError::InvalidBaseUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        });
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// Replaces `{name}` in a server URL with the variable's default.
fn substitute_variables(template: &str, variables: Option<&Value>) -> Result<String, String> {
    let mut url = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        url.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|end| start + end)
            .ok_or_else(|| format!("an unclosed `{{` in the server url `{template}`"))?;
        let name = &rest[start + 1..end];
        let value = variables
            .and_then(|variables| variables.get(name))
            .and_then(|variable| variable.get("default"))
            .map(scalar_text)
            .ok_or_else(|| format!("server variable `{name}` has no default"))?;
        url.push_str(&value);
        rest = &rest[end + 1..];
    }
    url.push_str(rest);
    Ok(url)
}

/// Follows `$ref`s to local components, at most [`MAX_REF_DEPTH`] deep; `None` for an external, missing or cyclic
/// reference.
pub(super) fn resolve<'a>(document: &'a Value, mut value: &'a Value) -> Option<&'a Value> {
    for _ in 0..MAX_REF_DEPTH {
        match value.get("$ref") {
            Some(Value::String(reference)) => {
                value = document.pointer(reference.strip_prefix('#')?)?;
            }
            Some(_) => return None,
            None => return Some(value),
        }
    }
    None
}
