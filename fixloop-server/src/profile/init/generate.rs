//! The pure half of `profile init`: operations in, candidate journeys out.
//!
//! [`Generator`] walks the (OpenAPI 3-shaped) document's operations and turns those it can call without guessing
//! into journeys: parameter-free `GET`s (path and query parameters filled from their examples or defaults) and
//! `POST`/`PUT`s with a JSON body example expecting their documented 2xx, plus negative journeys where the document
//! makes them possible (an empty body, a secured operation called without its credentials), which accept any 4xx
//! (services disagree with their documents on 400 versus 422). A `GET` that names a side effect (see
//! [`safety`](super::safety)) or is marked `x-fixloop-unsafe: true` is kept, but inactive; a streamed answer is
//! skipped. An operation with its own `servers` is reached through the base URL when it is under it, else
//! skipped.

use std::collections::{BTreeMap, BTreeSet};

use fixloop_contract::{HttpMethod, JsonObject, PlanItemType};
use fixloop_core::validate::MAX_TEST_ID_LEN;
use serde_json::{Map, Value};

use super::document::{resolve, server_url};
use super::safety::{side_effect_word, side_effect_word_in_prose, streaming_media, streaming_path};
use super::text::{
    encode_into, env_name, id_slug, is_token_byte, one_line, scalar_text, short_description, slug,
    str_at,
};
use crate::profile::file::JourneyFile;

/// Most negative journeys of each kind (invalid body, missing credentials).
const MAX_NEGATIVES_PER_KIND: usize = 3;
/// Deepest schema nesting an example is built for.
const MAX_SCHEMA_DEPTH: usize = 8;
/// The criteria of a negative journey: any client error, since services answer 400 where 422 is documented and
/// the other way round.
pub(super) const CLIENT_ERROR_CRITERIA: &str = "status >= 400 && status < 500";

/// A journey being built, with what the coverage rules and the live probes need to know about it.
#[derive(Debug, Clone)]
pub(super) struct Built {
    /// The journey as it is written.
    pub(super) file: JourneyFile,
    /// What it is for.
    pub(super) kind: JourneyKind,
    /// Why it is written commented out instead of active (a side effect, a failed probe), if it is.
    pub(super) inactive: Option<String>,
}

/// What a journey is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JourneyKind {
    /// A health check (`/health`, `/ready`, …).
    Health,
    /// Another `GET`.
    Read,
    /// A `POST` or `PUT` with an example body.
    Write,
    /// An empty body, refused.
    InvalidBody,
    /// A secured operation without its credentials, refused.
    NoCredentials,
}

impl JourneyKind {
    /// The priority hint: health first, then reads, then writes, then negatives.
    const fn priority(self) -> u32 {
        match self {
            Self::Health => 10,
            Self::Read => 20,
            Self::Write => 30,
            Self::InvalidBody => 40,
            Self::NoCredentials => 45,
        }
    }

    /// Whether the journey expects a refusal.
    pub(super) const fn is_negative(self) -> bool {
        matches!(self, Self::InvalidBody | Self::NoCredentials)
    }
}

/// A credential an operation needs: a header whose value references a secret.
#[derive(Debug, Clone)]
struct Credential {
    header: String,
    value: String,
    secret: String,
}

/// Walks the operations and collects journeys, skipped operations and secrets.
pub(super) struct Generator<'a> {
    document: &'a Value,
    /// The service's base URL (checked, no trailing slash), for operations with servers of their own.
    base_url: &'a str,
    /// Where the document came from, for relative server URLs.
    source_name: &'a str,
    /// Documented metrics paths are the signal source, not journeys.
    metrics_paths: &'a [String],
    pub(super) journeys: Vec<Built>,
    pub(super) skipped: Vec<String>,
    pub(super) secrets: BTreeSet<String>,
    ids: BTreeSet<String>,
    negatives: BTreeMap<&'static str, usize>,
}

impl<'a> Generator<'a> {
    pub(super) fn new(
        document: &'a Value,
        base_url: &'a str,
        source_name: &'a str,
        metrics_paths: &'a [String],
    ) -> Self {
        Self {
            document,
            base_url,
            source_name,
            metrics_paths,
            journeys: Vec::new(),
            skipped: Vec::new(),
            secrets: BTreeSet::new(),
            ids: BTreeSet::new(),
            negatives: BTreeMap::new(),
        }
    }

    pub(super) fn path_item(&mut self, path: &str, item: &'a Value) {
        let Some(item) = resolve(self.document, item).and_then(Value::as_object) else {
            self.skipped.push(format!(
                "{path}: the path item is not an object (or its $ref cannot be resolved)"
            ));
            return;
        };
        let shared = item.get("parameters");
        let item_servers = item.get("servers");
        for (key, operation) in item {
            let method = match key.as_str() {
                "get" => HttpMethod::Get,
                "post" => HttpMethod::Post,
                "put" => HttpMethod::Put,
                "delete" => HttpMethod::Delete,
                "patch" | "head" | "options" | "trace" => {
                    self.skipped.push(format!(
                        "{} {path}: FixLoop journeys use GET, POST, PUT or DELETE",
                        key.to_ascii_uppercase()
                    ));
                    continue;
                }
                _ => continue,
            };
            let at = format!("{} {path}", method.as_str());
            let servers = operation.get("servers").or(item_servers);
            let prefix = match self.server_prefix(servers) {
                Ok(prefix) => prefix,
                Err(reason) => {
                    self.skipped.push(format!("{at}: {reason}"));
                    continue;
                }
            };
            if let Err(reason) = self.operation(method, path, &prefix, shared, operation) {
                self.skipped.push(format!("{at}: {reason}"));
            }
        }
    }

    /// The path prefix that reaches an operation's own servers through the base URL: empty without servers of its
    /// own, the rest of the server URL when it is under the base URL; an error when it is elsewhere (a profile has
    /// one base URL per service).
    fn server_prefix(&self, servers: Option<&Value>) -> Result<String, String> {
        let Some(server) = servers
            .and_then(Value::as_array)
            .and_then(|servers| servers.first())
        else {
            return Ok(String::new());
        };
        let url = server_url(server, self.source_name, self.base_url)?;
        let url = url.trim_end_matches('/');
        if let Some(rest) = url.strip_prefix(self.base_url)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return Ok(rest.to_owned());
        }
        let origin = |url: &str| reqwest::Url::parse(url).ok().map(|url| url.origin());
        if origin(url).is_some() && origin(url) == origin(self.base_url) {
            Err(format!(
                "its servers ({url}) are on the same origin but outside the base URL {}: add a service for them",
                self.base_url
            ))
        } else {
            Err(format!(
                "its servers ({url}) are another origin than the base URL {}: add a service for them",
                self.base_url
            ))
        }
    }

    fn operation(
        &mut self,
        method: HttpMethod,
        template: &str,
        prefix: &str,
        shared: Option<&'a Value>,
        operation: &'a Value,
    ) -> Result<(), String> {
        let document = self.document;
        let operation = operation
            .as_object()
            .ok_or("the operation is not an object")?;
        if operation.get("deprecated").and_then(Value::as_bool) == Some(true) {
            return Err("deprecated".to_owned());
        }
        if method == HttpMethod::Get
            && self
                .metrics_paths
                .iter()
                .any(|metrics| metrics.trim_end_matches('/') == template.trim_end_matches('/'))
        {
            return Err("the metrics endpoint is the signal source, not a journey".to_owned());
        }
        let parameters = parameters(document, shared, operation.get("parameters"));
        if let Some(reason) = streaming(document, template, operation, &parameters) {
            return Err(format!("{reason}: never probed nor made a journey"));
        }
        let path = format!("{prefix}{}", fill_path(document, template, &parameters)?);
        let (query, mut headers) = fill_query_and_headers(document, &parameters)?;
        let path = if query.is_empty() {
            path
        } else {
            format!("{path}?{}", query.join("&"))
        };
        let credentials = self.credentials(operation)?;
        let responses = responses(operation);
        let successes: Vec<u16> = responses
            .iter()
            .copied()
            .filter(|status| (200..300).contains(status))
            .collect();
        let summary = operation
            .get("summary")
            .and_then(Value::as_str)
            .map(one_line)
            .filter(|summary| !summary.is_empty());
        let description = operation
            .get("description")
            .and_then(Value::as_str)
            .map(short_description)
            .filter(|description| !description.is_empty());
        let base_id = operation
            .get("operationId")
            .and_then(Value::as_str)
            .map(|id| id_slug(id, MAX_TEST_ID_LEN - 16))
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| {
                slug(
                    &format!("{} {template}", method.as_str().to_ascii_lowercase()),
                    MAX_TEST_ID_LEN - 16,
                )
            });
        let title = summary
            .clone()
            .unwrap_or_else(|| format!("{} {template}", method.as_str()));
        // The route names the operation in the top error; the path already does when it has no parameter.
        let full_template = format!("{prefix}{template}");
        let route =
            (path.split('?').next() != Some(full_template.as_str())).then_some(full_template);
        // A GET naming a side effect is written, but commented out: calling it is the operator's decision.
        let unsafe_reason = (method == HttpMethod::Get)
            .then(|| unsafe_reason(operation, template, &path, &base_id, summary.as_deref()))
            .flatten();
        let body_example = match method {
            HttpMethod::Post | HttpMethod::Put => request_body_example(document, operation),
            HttpMethod::Get | HttpMethod::Delete => Ok(JsonObject::new()),
        };
        let with_credentials = |mut headers: BTreeMap<String, String>| {
            for credential in &credentials {
                headers.insert(credential.header.clone(), credential.value.clone());
            }
            headers
        };
        let first_new = self.journeys.len();
        let mut built = 0;
        let mut reasons = Vec::new();

        // The positive journey.
        let positive = match (method, &body_example) {
            _ if successes.is_empty() => Err("no documented 2xx response".to_owned()),
            (HttpMethod::Delete, _) => {
                Err("DELETE changes data and has no safe example: write it by hand".to_owned())
            }
            (_, Err(reason)) => Err(reason.clone()),
            (_, Ok(body)) => Ok(body.clone()),
        };
        match positive {
            Ok(body) => {
                let kind = if method == HttpMethod::Get {
                    if is_health_path(template) {
                        JourneyKind::Health
                    } else {
                        JourneyKind::Read
                    }
                } else {
                    JourneyKind::Write
                };
                if kind == JourneyKind::Write {
                    headers
                        .entry("content-type".to_owned())
                        .or_insert_with(|| "application/json".to_owned());
                }
                let id = self.unique_id(&base_id);
                self.push(Built {
                    file: JourneyFile {
                        id,
                        name: title.clone(),
                        kind: PlanItemType::Api,
                        method,
                        path: path.clone(),
                        headers: with_credentials(headers.clone()),
                        body,
                        pass_criteria: status_criteria(&successes),
                        priority: kind.priority(),
                        what_it_checks: description.clone().unwrap_or_else(|| {
                            format!(
                                "{} {template} answers {}.",
                                method.as_str(),
                                statuses(&successes)
                            )
                        }),
                        route: route.clone(),
                        safe: false,
                    },
                    kind,
                    inactive: None,
                });
                built += 1;
            }
            Err(reason) => reasons.push(reason),
        }

        // An empty body where the schema requires properties: the documented 400/422.
        let rejections: Vec<u16> = responses
            .iter()
            .copied()
            .filter(|status| matches!(status, 400 | 422))
            .collect();
        if matches!(method, HttpMethod::Post | HttpMethod::Put)
            && !rejections.is_empty()
            && requires_properties(document, operation)
            && self.take_negative("invalid-body")
        {
            let mut headers = headers.clone();
            headers
                .entry("content-type".to_owned())
                .or_insert_with(|| "application/json".to_owned());
            let id = self.unique_id(&format!("{base_id}-invalid-body"));
            self.push(Built {
                file: JourneyFile {
                    id,
                    name: format!("{title}: an empty body is rejected"),
                    kind: PlanItemType::Api,
                    method,
                    path: path.clone(),
                    headers: with_credentials(headers),
                    body: JsonObject::new(),
                    pass_criteria: CLIENT_ERROR_CRITERIA.to_owned(),
                    priority: JourneyKind::InvalidBody.priority(),
                    what_it_checks: format!(
                        "{} {template} with an empty JSON body is refused with a client error (documented: {}), not accepted or answered with a server error.",
                        method.as_str(),
                        statuses(&rejections)
                    ),
                    route: route.clone(),
                    safe: false,
                },
                kind: JourneyKind::InvalidBody,
                inactive: None,
            });
            built += 1;
        }

        // A secured operation without its credentials: the documented 401/403.
        let refusals: Vec<u16> = responses
            .iter()
            .copied()
            .filter(|status| matches!(status, 401 | 403))
            .collect();
        if !credentials.is_empty()
            && !refusals.is_empty()
            && method != HttpMethod::Delete
            && self.take_negative("no-credentials")
        {
            let mut headers = headers.clone();
            let body = body_example.clone().unwrap_or_default();
            if matches!(method, HttpMethod::Post | HttpMethod::Put) {
                headers
                    .entry("content-type".to_owned())
                    .or_insert_with(|| "application/json".to_owned());
            }
            let id = self.unique_id(&format!("{base_id}-no-auth"));
            self.push(Built {
                file: JourneyFile {
                    id,
                    name: format!("{title}: refused without credentials"),
                    kind: PlanItemType::Api,
                    method,
                    path: path.clone(),
                    headers,
                    body,
                    pass_criteria: CLIENT_ERROR_CRITERIA.to_owned(),
                    priority: JourneyKind::NoCredentials.priority(),
                    what_it_checks: format!(
                        "{} {template} without credentials is refused with a client error (documented: {}).",
                        method.as_str(),
                        statuses(&refusals)
                    ),
                    route,
                    safe: false,
                },
                kind: JourneyKind::NoCredentials,
                inactive: None,
            });
            built += 1;
        }
        if let Some(reason) = unsafe_reason {
            for journey in &mut self.journeys[first_new..] {
                journey.inactive = Some(reason.clone());
            }
        }
        if built > 0 {
            for credential in &credentials {
                self.secrets.insert(credential.secret.clone());
            }
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }

    fn push(&mut self, built: Built) {
        self.journeys.push(built);
    }

    /// Whether one more negative journey of `kind` may be added (and counts it).
    fn take_negative(&mut self, kind: &'static str) -> bool {
        let count = self.negatives.entry(kind).or_default();
        if *count >= MAX_NEGATIVES_PER_KIND {
            return false;
        }
        *count += 1;
        true
    }

    fn unique_id(&mut self, base: &str) -> String {
        let mut id = base.to_owned();
        let mut counter = 2;
        while !self.ids.insert(id.clone()) {
            id = format!("{base}-{counter}");
            counter += 1;
        }
        id
    }

    /// The credentials of the operation's (or the document's) security requirements; empty when it is public.
    fn credentials(&self, operation: &Map<String, Value>) -> Result<Vec<Credential>, String> {
        let requirements = operation
            .get("security")
            .or_else(|| self.document.get("security"))
            .and_then(Value::as_array);
        let Some(requirements) = requirements else {
            return Ok(Vec::new());
        };
        if requirements.is_empty()
            || requirements
                .iter()
                .any(|requirement| requirement.as_object().is_some_and(Map::is_empty))
        {
            // `security: []` turns security off, and an empty requirement makes it optional.
            return Ok(Vec::new());
        }
        let mut unsupported = Vec::new();
        for requirement in requirements.iter().filter_map(Value::as_object) {
            let credentials: Result<Vec<Credential>, String> = requirement
                .keys()
                .map(|scheme| self.credential(scheme))
                .collect();
            match credentials {
                Ok(credentials) => return Ok(credentials),
                Err(reason) => unsupported.push(reason),
            }
        }
        Err(if unsupported.is_empty() {
            "its security requirements cannot be read".to_owned()
        } else {
            unsupported.join("; ")
        })
    }

    fn credential(&self, scheme_name: &str) -> Result<Credential, String> {
        let scheme = self
            .document
            .pointer("/components/securitySchemes")
            .and_then(|schemes| schemes.get(scheme_name))
            .and_then(|scheme| resolve(self.document, scheme))
            .ok_or_else(|| format!("security scheme `{scheme_name}` is not defined"))?;
        let kind = str_at(scheme, "type").unwrap_or("");
        let variable = env_name(scheme_name);
        match kind {
            "http"
                if str_at(scheme, "scheme")
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer")) =>
            {
                let secret = format!("{variable}_TOKEN");
                Ok(Credential {
                    header: "authorization".to_owned(),
                    value: format!("Bearer ${{env:{secret}}}"),
                    secret,
                })
            }
            // Both send an access token as a bearer token; getting one is the operator's business.
            "oauth2" | "openIdConnect" => {
                let secret = format!("{variable}_TOKEN");
                Ok(Credential {
                    header: "authorization".to_owned(),
                    value: format!("Bearer ${{env:{secret}}}"),
                    secret,
                })
            }
            "apiKey" if str_at(scheme, "in") == Some("header") => {
                let header = str_at(scheme, "name")
                    .filter(|name| !name.is_empty() && name.bytes().all(is_token_byte))
                    .ok_or_else(|| {
                        format!("security scheme `{scheme_name}` has no valid header name")
                    })?;
                let secret = format!("{variable}_KEY");
                Ok(Credential {
                    header: header.to_ascii_lowercase(),
                    value: format!("${{env:{secret}}}"),
                    secret,
                })
            }
            "apiKey" => Err(format!(
                "security scheme `{scheme_name}` sends its key outside a header (a secret may not appear in a URL)"
            )),
            other => Err(format!(
                "security scheme `{scheme_name}` ({other}) is not supported: init fills bearer tokens and API keys in headers"
            )),
        }
    }
}

/// The operation's parameters (resolved), the path item's shared ones overridden by name and location.
fn parameters<'a>(
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
fn fill_path(document: &Value, template: &str, parameters: &[&Value]) -> Result<String, String> {
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
fn fill_query_and_headers(
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
fn parameter_example(document: &Value, parameter: &Value) -> Option<String> {
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
fn first_example<'a>(document: &'a Value, examples: Option<&'a Value>) -> Option<&'a Value> {
    examples?
        .as_object()?
        .values()
        .find_map(|example| resolve(document, example)?.get("value"))
}

/// The documented response statuses (`2XX` and friends are left out, as is `default`).
fn responses(operation: &Map<String, Value>) -> Vec<u16> {
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
fn json_media<'a>(document: &'a Value, operation: &'a Map<String, Value>) -> Option<&'a Value> {
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
fn request_body_example(
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
fn schema_example(document: &Value, schema: &Value, depth: usize) -> Option<Value> {
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
fn own_example<'a>(document: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    let schema = resolve(document, schema)?;
    schema
        .get("example")
        .or_else(|| schema.get("examples").and_then(|examples| examples.get(0)))
        .or_else(|| schema.get("default"))
        .or_else(|| schema.get("enum").and_then(|values| values.get(0)))
}

/// Whether the JSON request body's schema requires properties (so an empty object must be refused).
fn requires_properties(document: &Value, operation: &Map<String, Value>) -> bool {
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

fn required_names(schema: &Value) -> BTreeSet<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The value with object keys holding `null` removed (TOML has no null); `None` if a list holds a null or a number
/// does not fit TOML's 64-bit signed integers.
fn toml_safe(value: Value) -> Option<Value> {
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

/// `status == 200` for one status, `status in [200, 204]` for several.
pub(super) fn status_criteria(statuses: &[u16]) -> String {
    match statuses {
        [status] => format!("status == {status}"),
        _ => format!(
            "status in [{}]",
            statuses
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `200` or `400 or 422`, for sentences.
fn statuses(statuses: &[u16]) -> String {
    statuses
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

fn is_health_path(template: &str) -> bool {
    let last = template
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        last.as_str(),
        "health"
            | "healthz"
            | "healthcheck"
            | "ready"
            | "readyz"
            | "live"
            | "livez"
            | "status"
            | "ping"
    )
}

/// Why a `GET` is not safe to call on its own: `x-fixloop-unsafe: true`, or a side effect named by its operation
/// id, path, summary or the journey id and path made from them.
fn unsafe_reason(
    operation: &Map<String, Value>,
    template: &str,
    path: &str,
    id: &str,
    summary: Option<&str>,
) -> Option<String> {
    if operation.get("x-fixloop-unsafe").and_then(Value::as_bool) == Some(true) {
        return Some("marked `x-fixloop-unsafe: true`".to_owned());
    }
    let named = |what: &str, word: String| {
        Some(format!(
            "its {what} names a side effect (`{word}`): uncomment it and add `safe = true` only if calling it changes nothing"
        ))
    };
    if let Some(word) = str_at_map(operation, "operationId").and_then(side_effect_word) {
        return named("operation id", word);
    }
    for (what, text) in [("path", template), ("path", path), ("journey id", id)] {
        if let Some(word) = side_effect_word(text.split('?').next().unwrap_or(text)) {
            return named(what, word);
        }
    }
    summary
        .and_then(side_effect_word_in_prose)
        .and_then(|word| named("summary", word))
}

fn str_at_map<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// Why an operation is a stream, if it is one: a streamed 2xx media type, a `watch` parameter or path segment.
fn streaming(
    document: &Value,
    template: &str,
    operation: &Map<String, Value>,
    parameters: &[&Value],
) -> Option<String> {
    if let Some(reason) = streaming_path(template) {
        return Some(reason);
    }
    if parameters.iter().any(|parameter| {
        str_at(parameter, "name").is_some_and(|name| name.eq_ignore_ascii_case("watch"))
    }) {
        return Some("it takes a `watch` parameter (a stream)".to_owned());
    }
    let responses = operation.get("responses").and_then(Value::as_object)?;
    responses
        .iter()
        .filter(|(status, _)| status.starts_with('2') || status.as_str() == "default")
        .filter_map(|(_, response)| resolve(document, response)?.get("content")?.as_object())
        .flat_map(|content| content.keys())
        .find_map(|media| streaming_media(media))
}
