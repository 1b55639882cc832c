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
use super::examples::{
    fill_path, fill_query_and_headers, parameters, request_body_example, requires_properties,
    responses,
};
use super::safety::{side_effect_word, side_effect_word_in_prose, streaming_media, streaming_path};
use super::text::{env_name, id_slug, is_token_byte, one_line, short_description, slug, str_at};
use crate::profile::file::JourneyFile;

/// Most negative journeys of each kind (invalid body, missing credentials).
const MAX_NEGATIVES_PER_KIND: usize = 3;
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
