//! `fixloop profile init`: a starter service profile generated from an OpenAPI 3.x document.
//!
//! [`init_from_openapi`] reads the document (JSON or YAML, as text), takes the service's name, description and base
//! URL from `info` and `servers`, and turns the operations it can call without guessing into journeys: parameter-free
//! `GET`s (path and query parameters filled from their examples or defaults) and `POST`/`PUT`s with a JSON body
//! example expecting their documented 2xx, plus negative journeys where the document makes them possible (an empty
//! body expecting the documented 400/422, a secured operation called without its credentials expecting the
//! documented 401/403). Bearer and API-key credentials become `${env:NAME}` placeholders, whose names are reported.
//! Coverage rules are kept to what the generated journeys satisfy with distinct journeys, and the result is checked
//! with [`Profile::parse`] before it is returned: the output is a valid profile as it is, or an error saying why
//! (for example fewer than five journeys, with every skipped operation and the reason).
//!
//! [`fetch_document`] and [`probe_metrics`] are the two network helpers the CLI uses around it; this module reads
//! no environment variable and no file.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fixloop_contract::{HttpMethod, JsonObject, PlanItemType};
use fixloop_core::validate::{MAX_TEST_ID_LEN, PLAN_ITEMS};
use serde_json::{Map, Value};

use super::file::{
    CheckFile, CoverageFile, JourneyFile, ProfileFile, ScrapeFile, ServiceFile, SignalsFile,
    SyntheticFile, ThresholdsFile,
};
use super::{Profile, ProfileError, Secrets};

/// Longest document [`fetch_document`] accepts, in bytes (5 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;
/// How long [`fetch_document`] waits for the whole document.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`probe_metrics`] waits for the whole exposition.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Deepest chain of `$ref`s (and nesting of schemas, when an example is built from one) that is followed; cyclic
/// references stop here.
const MAX_REF_DEPTH: usize = 16;
/// Deepest schema nesting an example is built for.
const MAX_SCHEMA_DEPTH: usize = 8;
/// Most negative journeys of each kind (invalid body, missing credentials).
const MAX_NEGATIVES_PER_KIND: usize = 3;
/// Longest exposition [`probe_metrics`] reads.
const MAX_EXPOSITION_BYTES: usize = 1024 * 1024;
/// Conventional request counter family, for a scraped `/metrics`.
const REQUESTS_METRIC: &str = "http_requests_total";
/// Conventional latency histogram family, for a scraped `/metrics`.
const DURATION_METRIC: &str = "http_request_duration_seconds";

/// What `fixloop profile init` knows besides the document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitOptions {
    /// The base URL to use instead of the document's `servers[0].url` (`--base-url`).
    pub base_url: Option<String>,
    /// Whether the service serves a Prometheus exposition at `/metrics` (the CLI probes it with
    /// [`probe_metrics`]); a documented `/metrics` path counts too.
    pub metrics_available: bool,
    /// Where the document came from (file path or URL), for the header comment; when it is an http(s) URL, a
    /// relative server URL is resolved against it.
    pub source_name: String,
}

/// A generated profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOutput {
    /// The profile, as TOML text with a header comment; [`Profile::parse`] accepts it as it is.
    pub toml: String,
    /// The environment variables the journeys reference (`FIXLOOP_BEARERAUTH_TOKEN`, …), to be set before the
    /// profile is served.
    pub secrets: Vec<String>,
    /// The operations that did not become journeys, each as `METHOD /path: reason`.
    pub skipped: Vec<String>,
}

/// Why no profile could be generated or no document fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The document looks like JSON (it starts with `{`) but does not parse.
    #[error("the document is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// The document is not valid YAML.
    #[error("the document is not valid YAML (or JSON)")]
    Yaml(#[source] serde_norway::Error),
    /// The document parses but is not an OpenAPI 3.x document (Swagger 2.0, another version, not a mapping).
    #[error("not an OpenAPI 3.x document: {found}")]
    NotOpenApi3 {
        /// What was found instead, with a hint.
        found: String,
    },
    /// No base URL: none was given and the document has no usable `servers[0].url`.
    #[error("no base URL: {reason}; pass --base-url")]
    NoBaseUrl {
        /// Why the document's servers could not be used.
        reason: String,
    },
    /// The base URL (given or from the document) is not an absolute http(s) URL without query or credentials.
    #[error("`{url}` cannot be a base URL: {reason}")]
    InvalidBaseUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Fewer than five journeys could be built from the document.
    #[error("{}", too_few_journeys(*found, skipped))]
    TooFewJourneys {
        /// How many journeys could be built.
        found: usize,
        /// The operations that were skipped, each as `METHOD /path: reason`.
        skipped: Vec<String>,
    },
    /// The generated profile could not be written as TOML (a defect of the generator).
    #[error("the generated profile cannot be written as TOML")]
    Serialize(#[source] toml::ser::Error),
    /// The generated profile fails the profile check (a defect of the generator).
    #[error("the generated profile does not pass the profile check")]
    Generated(#[source] ProfileError),
    /// The document's location is not an http or https URL.
    #[error("`{url}` is not an http or https URL")]
    UnsupportedUrl {
        /// The location.
        url: String,
    },
    /// The document could not be fetched (connection, timeout, body).
    #[error("cannot fetch {url}")]
    Fetch {
        /// The location.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The document did not arrive within [`FETCH_TIMEOUT`].
    #[error("fetching {url} took longer than {FETCH_TIMEOUT:?}")]
    FetchTimeout {
        /// The location.
        url: String,
    },
    /// The server answered the document request with a status other than 2xx.
    #[error("fetching {url} answered HTTP {status}")]
    FetchStatus {
        /// The location.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The document is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("{url} is larger than {limit} bytes")]
    TooLarge {
        /// The location.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The document is not UTF-8 text.
    #[error("{url} is not UTF-8 text")]
    NotUtf8 {
        /// The location.
        url: String,
    },
}

/// Generates a starter profile with one service from an OpenAPI 3.x document (JSON or YAML text).
///
/// The output passes [`Profile::parse`] (with [`Secrets::Unresolved`]) as it is; see the [module docs](self) for
/// what becomes a journey.
///
/// # Errors
///
/// [`InitError::Json`] or [`InitError::Yaml`] when the text does not parse, [`InitError::NotOpenApi3`] for Swagger
/// 2.0 and anything that is not OpenAPI 3.x, [`InitError::NoBaseUrl`] or [`InitError::InvalidBaseUrl`] when no
/// usable base URL is known, [`InitError::TooFewJourneys`] when fewer than five journeys can be built, and
/// [`InitError::Serialize`] or [`InitError::Generated`] if the generated profile is unusable (a defect).
pub fn init_from_openapi(document: &str, options: &InitOptions) -> Result<InitOutput, InitError> {
    let document = parse_document(document)?;
    check_version(&document)?;
    let base_url = base_url(&document, options)?;
    let info = document.get("info");
    let title = info.and_then(|info| str_at(info, "title")).unwrap_or("");
    let name = slug(title, 64);
    let name = if name.is_empty() {
        "service".to_owned()
    } else {
        name
    };
    let description = info
        .and_then(|info| str_at(info, "description").or_else(|| str_at(info, "summary")))
        .map(short_description)
        .unwrap_or_default();
    let paths = document.get("paths").and_then(Value::as_object);
    let has_metrics_path = paths.is_some_and(|paths| {
        paths
            .keys()
            .any(|path| path.trim_end_matches('/').ends_with("/metrics"))
    });
    let scrape = options.metrics_available || has_metrics_path;

    let mut generator = Generator::new(&document, scrape);
    if let Some(paths) = paths {
        for (path, item) in paths {
            generator.path_item(path, item);
        }
    }
    let Generator {
        mut journeys,
        skipped,
        secrets,
        ..
    } = generator;
    if journeys.len() < PLAN_ITEMS {
        return Err(InitError::TooFewJourneys {
            found: journeys.len(),
            skipped,
        });
    }
    // Stable: within a tier, journeys keep the document's order.
    journeys.sort_by_key(|journey| journey.file.priority);
    let coverage = coverage_rules(&journeys);
    let signals = if scrape {
        SignalsFile::Scrape(ScrapeFile {
            metrics_path: "/metrics".to_owned(),
            requests_metric: REQUESTS_METRIC.to_owned(),
            duration_metric: DURATION_METRIC.to_owned(),
            errors_metric: None,
            status_label: "status".to_owned(),
            route_label: "route".to_owned(),
            method_label: "method".to_owned(),
            error_label: "error".to_owned(),
            exclude: BTreeMap::new(),
        })
    } else {
        SignalsFile::Synthetic(SyntheticFile {
            journeys: synthetic_probes(&journeys),
        })
    };
    let service = ServiceFile {
        name: name.clone(),
        description,
        base_url,
        allowed_base_urls: Vec::new(),
        allow_metadata_targets: false,
        alert_labels: BTreeMap::from([("service".to_owned(), name)]),
        signals,
        thresholds: ThresholdsFile::default(),
        journeys: journeys.into_iter().map(|journey| journey.file).collect(),
        coverage,
    };
    let secrets: Vec<String> = secrets.into_iter().collect();
    let mut file = ProfileFile {
        service: vec![service],
    };
    let header = header_comment(options, &secrets, &skipped, scrape);
    let toml = match render(&file, &header, scrape) {
        Ok(toml) => toml,
        Err(InitError::Generated(_)) if !file.service[0].coverage.is_empty() => {
            // The coverage rules are a convenience; a profile without them is still a valid starting point.
            file.service[0].coverage.clear();
            render(&file, &header, scrape)?
        }
        Err(error) => return Err(error),
    };
    Ok(InitOutput {
        toml,
        secrets,
        skipped,
    })
}

/// The base URL [`init_from_openapi`] would use: `options.base_url`, else the document's `servers[0].url` (server
/// variables' defaults substituted, a relative URL resolved against `options.source_name`), without a trailing
/// slash. The CLI calls it to know where to [`probe_metrics`] before generating the profile.
///
/// # Errors
///
/// As [`init_from_openapi`]: [`InitError::Json`], [`InitError::Yaml`], [`InitError::NotOpenApi3`],
/// [`InitError::NoBaseUrl`] and [`InitError::InvalidBaseUrl`].
pub fn resolve_base_url(document: &str, options: &InitOptions) -> Result<String, InitError> {
    let document = parse_document(document)?;
    check_version(&document)?;
    base_url(&document, options)
}

/// Fetches an OpenAPI document over http(s): at most [`MAX_DOCUMENT_BYTES`], within [`FETCH_TIMEOUT`].
///
/// # Errors
///
/// [`InitError::UnsupportedUrl`] for anything but an http(s) URL, [`InitError::Fetch`] when the request fails,
/// [`InitError::FetchTimeout`] when it takes too long, [`InitError::FetchStatus`] on a non-2xx answer, [`InitError::TooLarge`] and [`InitError::NotUtf8`]
/// for a body that is too large or not text.
pub async fn fetch_document(http: &reqwest::Client, url: &str) -> Result<String, InitError> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|parsed| matches!(parsed.scheme(), "http" | "https"))
        .ok_or_else(|| InitError::UnsupportedUrl {
            url: url.to_owned(),
        })?;
    let fetch = async {
        let fetch_error = |source| InitError::Fetch {
            url: url.to_owned(),
            source,
        };
        let mut response = http
            .get(parsed)
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/yaml, text/yaml, */*",
            )
            .send()
            .await
            .map_err(fetch_error)?;
        if !response.status().is_success() {
            return Err(InitError::FetchStatus {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let body = read_capped(&mut response, MAX_DOCUMENT_BYTES)
            .await
            .map_err(fetch_error)?
            .ok_or_else(|| InitError::TooLarge {
                url: url.to_owned(),
                limit: MAX_DOCUMENT_BYTES,
            })?;
        String::from_utf8(body).map_err(|_| InitError::NotUtf8 {
            url: url.to_owned(),
        })
    };
    match tokio::time::timeout(FETCH_TIMEOUT, fetch).await {
        Ok(result) => result,
        Err(_) => Err(InitError::FetchTimeout {
            url: url.to_owned(),
        }),
    }
}

/// Whether `{base_url}/metrics` answers 200 within [`PROBE_TIMEOUT`] with text that looks like a Prometheus
/// exposition (a `# TYPE` line, or a `name value` / `name{labels} value` sample).
pub async fn probe_metrics(http: &reqwest::Client, base_url: &str) -> bool {
    let url = format!("{}/metrics", base_url.trim_end_matches('/'));
    let probe = async {
        let mut response = http.get(&url).send().await.ok()?;
        if response.status() != reqwest::StatusCode::OK {
            return None;
        }
        let body = read_capped(&mut response, MAX_EXPOSITION_BYTES)
            .await
            .ok()
            .flatten()?;
        Some(looks_like_exposition(&String::from_utf8_lossy(&body)))
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, probe).await,
        Ok(Some(true))
    )
}

/// A journey being built, with what the coverage rules need to know about it.
#[derive(Debug)]
struct Built {
    file: JourneyFile,
    kind: JourneyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JourneyKind {
    Health,
    Read,
    Write,
    InvalidBody,
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

    const fn is_negative(self) -> bool {
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
struct Generator<'a> {
    document: &'a Value,
    scrape: bool,
    journeys: Vec<Built>,
    skipped: Vec<String>,
    secrets: BTreeSet<String>,
    ids: BTreeSet<String>,
    negatives: BTreeMap<&'static str, usize>,
}

impl<'a> Generator<'a> {
    fn new(document: &'a Value, scrape: bool) -> Self {
        Self {
            document,
            scrape,
            journeys: Vec::new(),
            skipped: Vec::new(),
            secrets: BTreeSet::new(),
            ids: BTreeSet::new(),
            negatives: BTreeMap::new(),
        }
    }

    fn path_item(&mut self, path: &str, item: &'a Value) {
        let Some(item) = resolve(self.document, item).and_then(Value::as_object) else {
            self.skipped.push(format!(
                "{path}: the path item is not an object (or its $ref cannot be resolved)"
            ));
            return;
        };
        let shared = item.get("parameters");
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
            if let Err(reason) = self.operation(method, path, shared, operation) {
                self.skipped.push(format!("{at}: {reason}"));
            }
        }
    }

    fn operation(
        &mut self,
        method: HttpMethod,
        template: &str,
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
        if self.scrape
            && method == HttpMethod::Get
            && template.trim_end_matches('/').ends_with("/metrics")
        {
            return Err("the metrics endpoint is the signal source, not a journey".to_owned());
        }
        let parameters = parameters(document, shared, operation.get("parameters"));
        let path = fill_path(document, template, &parameters)?;
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
        let route = (path.split('?').next() != Some(template)).then(|| template.to_owned());
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
                    },
                    kind,
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
                    pass_criteria: status_criteria(&rejections),
                    priority: JourneyKind::InvalidBody.priority(),
                    what_it_checks: format!(
                        "{} {template} with an empty JSON body is refused with {}, not accepted or answered with a server error.",
                        method.as_str(),
                        statuses(&rejections)
                    ),
                    route: route.clone(),
                },
                kind: JourneyKind::InvalidBody,
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
                    pass_criteria: status_criteria(&refusals),
                    priority: JourneyKind::NoCredentials.priority(),
                    what_it_checks: format!(
                        "{} {template} without credentials is refused with {}.",
                        method.as_str(),
                        statuses(&refusals)
                    ),
                    route,
                },
                kind: JourneyKind::NoCredentials,
            });
            built += 1;
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

/// Parses JSON (text starting with `{`) or YAML into a JSON value.
fn parse_document(text: &str) -> Result<Value, InitError> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('{') {
        // A flow-style YAML mapping starts with `{` too: fall back to YAML, but report the JSON error.
        return serde_json::from_str(text).or_else(|json| {
            serde_norway::from_str(text)
                .map(yaml_to_json)
                .map_err(|_| InitError::Json(json))
        });
    }
    let mut yaml: serde_norway::Value = serde_norway::from_str(text).map_err(InitError::Yaml)?;
    yaml.apply_merge().map_err(InitError::Yaml)?;
    Ok(yaml_to_json(yaml))
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
                number
                    .as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
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

fn check_version(document: &Value) -> Result<(), InitError> {
    let Some(object) = document.as_object() else {
        return Err(InitError::NotOpenApi3 {
            found: "the document is not a mapping".to_owned(),
        });
    };
    if let Some(version) = object.get("swagger") {
        return Err(InitError::NotOpenApi3 {
            found: format!(
                "Swagger {}; convert it to OpenAPI 3 first (for example with swagger2openapi)",
                scalar_text(version)
            ),
        });
    }
    match object.get("openapi") {
        Some(Value::String(version)) if version.starts_with("3.") => Ok(()),
        Some(version) => Err(InitError::NotOpenApi3 {
            found: format!("`openapi: {}`", scalar_text(version)),
        }),
        None => Err(InitError::NotOpenApi3 {
            found: "there is no `openapi` version field".to_owned(),
        }),
    }
}

/// The base URL: the option, else `servers[0].url` with its variables' defaults, resolved against the document's
/// URL when relative; checked and without a trailing slash.
fn base_url(document: &Value, options: &InitOptions) -> Result<String, InitError> {
    let url = if let Some(url) = &options.base_url {
        url.clone()
    } else {
        let server = document
            .get("servers")
            .and_then(Value::as_array)
            .and_then(|servers| servers.first())
            .ok_or_else(|| InitError::NoBaseUrl {
                reason: "the document lists no servers".to_owned(),
            })?;
        let template = str_at(server, "url").ok_or_else(|| InitError::NoBaseUrl {
            reason: "servers[0] has no url".to_owned(),
        })?;
        let url = substitute_variables(template, server.get("variables"))?;
        if reqwest::Url::parse(&url).is_ok() {
            url
        } else {
            let source = reqwest::Url::parse(&options.source_name)
                .ok()
                .filter(|source| matches!(source.scheme(), "http" | "https"))
                .ok_or_else(|| InitError::NoBaseUrl {
                    reason: format!(
                        "servers[0].url `{url}` is relative and the document was not fetched from a URL"
                    ),
                })?;
            source
                .join(&url)
                .map_err(|error| InitError::InvalidBaseUrl {
                    url: url.clone(),
                    reason: error.to_string(),
                })?
                .to_string()
        }
    };
    let parsed = reqwest::Url::parse(&url).map_err(|error| InitError::InvalidBaseUrl {
        url: url.clone(),
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
            url,
            reason: reason.to_owned(),
        });
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// Replaces `{name}` in a server URL with the variable's default.
fn substitute_variables(template: &str, variables: Option<&Value>) -> Result<String, InitError> {
    let mut url = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        url.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|end| start + end)
            .ok_or_else(|| InitError::InvalidBaseUrl {
                url: template.to_owned(),
                reason: "an unclosed `{` in servers[0].url".to_owned(),
            })?;
        let name = &rest[start + 1..end];
        let value = variables
            .and_then(|variables| variables.get(name))
            .and_then(|variable| variable.get("default"))
            .map(scalar_text)
            .ok_or_else(|| InitError::NoBaseUrl {
                reason: format!("server variable `{name}` has no default"),
            })?;
        url.push_str(&value);
        rest = &rest[end + 1..];
    }
    url.push_str(rest);
    Ok(url)
}

/// Follows `$ref`s to local components, at most [`MAX_REF_DEPTH`] deep; `None` for an external, missing or cyclic
/// reference.
fn resolve<'a>(document: &'a Value, mut value: &'a Value) -> Option<&'a Value> {
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
fn status_criteria(statuses: &[u16]) -> String {
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

/// The coverage rules: one per negative kind present, `sends_authorization` on a secured positive journey, and the
/// health check; each is satisfied by a journey of its own.
fn coverage_rules(journeys: &[Built]) -> Vec<CoverageFile> {
    let mut rules = Vec::new();
    let path_of = |journey: &JourneyFile| {
        journey
            .path
            .split('?')
            .next()
            .unwrap_or(&journey.path)
            .to_owned()
    };
    for (kind, what) in [
        (JourneyKind::InvalidBody, "negative"),
        (JourneyKind::NoCredentials, "unauthenticated"),
    ] {
        if let Some(journey) = journeys.iter().find(|journey| journey.kind == kind) {
            let path = path_of(&journey.file);
            rules.push(CoverageFile {
                name: format!("{what} {} {path} test", journey.file.method.as_str()),
                path,
                method: Some(journey.file.method),
                check: CheckFile::ExpectsClientError,
            });
        }
    }
    if let Some(journey) = journeys.iter().find(|journey| {
        !journey.kind.is_negative()
            && journey
                .file
                .headers
                .keys()
                .any(|name| name.eq_ignore_ascii_case("authorization"))
    }) {
        let path = path_of(&journey.file);
        rules.push(CoverageFile {
            name: format!("authenticated {} {path} call", journey.file.method.as_str()),
            path,
            method: Some(journey.file.method),
            check: CheckFile::SendsAuthorization,
        });
    }
    if let Some(journey) = journeys
        .iter()
        .find(|journey| journey.kind == JourneyKind::Health)
    {
        rules.push(CoverageFile {
            name: "health check".to_owned(),
            path: path_of(&journey.file),
            method: Some(HttpMethod::Get),
            check: CheckFile::ExpectsSuccess,
        });
    }
    rules
}

/// The journeys a synthetic source probes: the positive `GET`s, else every positive journey.
fn synthetic_probes(journeys: &[Built]) -> Vec<String> {
    let positive = || {
        journeys
            .iter()
            .filter(|journey| !journey.kind.is_negative())
    };
    let gets: Vec<String> = positive()
        .filter(|journey| journey.file.method == HttpMethod::Get)
        .map(|journey| journey.file.id.clone())
        .collect();
    if gets.is_empty() {
        positive().map(|journey| journey.file.id.clone()).collect()
    } else {
        gets
    }
}

/// Serializes the profile, adds the comments, and checks the result with [`Profile::parse`].
fn render(file: &ProfileFile, header: &str, scrape: bool) -> Result<String, InitError> {
    let body = toml::to_string_pretty(file).map_err(InitError::Serialize)?;
    let mut toml = String::with_capacity(header.len() + body.len() + 256);
    toml.push_str(header);
    for line in body.lines() {
        if scrape && line.trim() == "[service.signals]" {
            toml.push_str(
                "# The metric names below are the common conventions, not read from your service: check them\n\
                 # against its /metrics and fix the family and label names.\n",
            );
        }
        if line.trim() == "[[service.journeys]]" && !toml.contains("[[service.journeys]]") {
            toml.push_str(
                "# Journeys generated from the operations, health first, then reads, writes and negative checks.\n\
                 # The criteria only check the documented status: add checks on the body (json.field == ...).\n",
            );
        }
        toml.push_str(line);
        toml.push('\n');
    }
    Profile::parse(&toml, "<generated profile>", Secrets::Unresolved)
        .map_err(InitError::Generated)?;
    Ok(toml)
}

fn header_comment(
    options: &InitOptions,
    secrets: &[String],
    skipped: &[String],
    scrape: bool,
) -> String {
    let source = if options.source_name.is_empty() {
        "an OpenAPI document".to_owned()
    } else {
        one_line(&options.source_name)
    };
    let mut header = format!(
        "# Generated by `fixloop profile init` from {source}.\n\
         # A starting point: review it, then check it with `fixloop profile check FILE`.\n#\n"
    );
    if secrets.is_empty() {
        header.push_str("# No credentials are needed by the generated journeys.\n");
    } else {
        header.push_str("# Set these environment variables before serving the profile (their values never go into this file):\n");
        for secret in secrets {
            header.push_str(&format!("#   {secret}\n"));
        }
    }
    header.push_str(
        "#\n# Review:\n\
         # - write journeys (POST, PUT) send their example bodies and may create data on every run;\n\
         # - the pass criteria only check the documented status codes;\n\
         # - the coverage rules, the alert labels and the priorities are guesses;\n",
    );
    header.push_str(if scrape {
        "# - the scraped metric names are conventions: check them against /metrics.\n"
    } else {
        "# - signals are synthetic (FixLoop probes the listed journeys); switch to scrape, prometheus or datadog if you can.\n"
    });
    if !skipped.is_empty() {
        header.push_str("#\n# Operations that did not become journeys:\n");
        for reason in skipped {
            header.push_str(&format!("#   {}\n", one_line(reason)));
        }
    }
    header.push('\n');
    header
}

fn too_few_journeys(found: usize, skipped: &[String]) -> String {
    let mut message = format!(
        "only {found} journey{} could be built from the document, a profile needs at least {PLAN_ITEMS}",
        if found == 1 { "" } else { "s" }
    );
    if skipped.is_empty() {
        message.push_str(" (no other operation was found)");
    } else {
        message.push_str("; skipped operations:");
        for reason in skipped {
            message.push_str("\n  ");
            message.push_str(reason);
        }
    }
    message
}

/// Reads a response body up to `limit` bytes; `Ok(None)` when it is longer.
async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn looks_like_exposition(text: &str) -> bool {
    text.lines().map(str::trim).any(|line| {
        if let Some(comment) = line.strip_prefix('#') {
            return comment.trim_start().starts_with("TYPE ");
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(line.len());
        let (name, rest) = line.split_at(name_end);
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return false;
        }
        let rest = if rest.starts_with('{') {
            match rest.find('}') {
                Some(end) => &rest[end + 1..],
                None => return false,
            }
        } else {
            rest
        };
        rest.starts_with(' ')
            && rest.split_whitespace().next().is_some_and(|value| {
                value.parse::<f64>().is_ok() || matches!(value, "NaN" | "+Inf" | "-Inf")
            })
    })
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A scalar as text (strings without quotes).
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Lowercase `a-z 0-9` words joined by `-`, at most `max` bytes.
fn slug(text: &str, max: usize) -> String {
    slug_words(text, max, false)
}

/// [`slug`] for identifiers, splitting camelCase words: `getPetById` becomes `get-pet-by-id`.
fn id_slug(text: &str, max: usize) -> String {
    slug_words(text, max, true)
}

fn slug_words(text: &str, max: usize, split_camel: bool) -> String {
    let mut slug = String::new();
    let mut previous_lower = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if split_camel && c.is_ascii_uppercase() && previous_lower && !slug.ends_with('-') {
                slug.push('-');
            }
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            slug.push(c.to_ascii_lowercase());
        } else {
            previous_lower = false;
            if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
    }
    slug.truncate(max);
    slug.trim_matches('-').to_owned()
}

/// `FIXLOOP_` and the scheme's name in `A-Z 0-9 _`.
fn env_name(scheme: &str) -> String {
    let mut name = String::from("FIXLOOP_");
    for c in scheme.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_uppercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    name.trim_end_matches('_').to_owned()
}

/// The first line, whitespace collapsed, at most 120 characters.
fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    truncate(&line.split_whitespace().collect::<Vec<_>>().join(" "), 120)
}

/// The first paragraph's first two sentences, whitespace collapsed, at most 300 characters.
fn short_description(text: &str) -> String {
    let paragraph = text
        .split("\n\n")
        .map(|paragraph| paragraph.trim().trim_start_matches('#').trim())
        .find(|paragraph| !paragraph.is_empty())
        .unwrap_or("");
    let words = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = words.len();
    let mut sentences = 0;
    for (index, _) in words.match_indices(". ") {
        sentences += 1;
        if sentences == 2 {
            end = index + 1;
            break;
        }
    }
    truncate(&words[..end], 300)
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max_chars - 1).collect();
    short.push('…');
    short
}

/// Percent-encodes `text` into `out`, keeping unreserved characters (and `/`, sub-delimiters, `:` and `@` when
/// `path` is true: literal path text).
fn encode_into(out: &mut String, text: &str, path: bool) {
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || b"-._~".contains(&byte)
            || (path && b"/!$&'()*+,;=:@".contains(&byte));
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
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

#[cfg(test)]
mod tests;
