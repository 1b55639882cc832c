//! `fixloop profile init`: a starter service profile from an API description and what the live service shows.
//!
//! Two halves, so the generation can be golden-tested on a corpus without a network:
//!
//! - pure: [`draft`] reads the document (OpenAPI 3.0, 3.1 or Swagger 2.0, JSON or YAML; see `document.rs`),
//!   takes the service's name, description and base URL, and builds the candidate journeys (`generate.rs`);
//!   [`finish`] turns the draft and what was learnt from the live service ([`Findings`]) into the profile text:
//!   the scrape section from the metrics actually exposed ([`discover`]), or synthetic probes with the reason;
//!   the journeys that answered as expected active, the others (and the `GET`s that name a side effect, see
//!   [`safety`]) written commented out with the reason; the thresholds in force; coverage rules the active
//!   journeys satisfy. The result is checked with [`Profile::parse`](crate::profile::Profile::parse) before it
//!   is returned.
//! - I/O ([`live`]): fetching the document, reading the metrics endpoint and trying each candidate read journey
//!   once, all bounded in time. `--offline` skips the live reads: [`init_from_openapi`] is [`draft`] then
//!   [`finish`] with [`Findings::offline`].
//!
//! This module reads no environment variable and no file; the CLI does.

pub mod discover;
pub mod live;
pub mod safety;

mod document;
mod examples;
mod generate;
mod render;
mod text;

use std::collections::BTreeMap;
use std::time::Duration;

use fixloop_contract::{HttpMethod, Target};
use fixloop_core::service::secret_references;
use fixloop_core::validate::PLAN_ITEMS;
use serde_json::Value;

use self::discover::Discovery;
use self::document::Format;
use self::generate::{Built, Generator};
use self::text::{short_description, slug, str_at};
use super::ProfileError;

pub use self::live::{fetch_document, read_live};

/// Longest document [`fetch_document`] accepts, in bytes (5 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;
/// How long [`fetch_document`] waits for the whole document.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read of a metrics endpoint may take.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one journey's trial call may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long all the journeys' trial calls may take together; the ones left are not tried.
pub const PROBES_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Where a metrics endpoint is looked for, after `--metrics-path` and the documented ones.
pub const METRICS_PATHS: &[&str] = &["/metrics", "/actuator/prometheus", "/prometheus"];

/// What `fixloop profile init` knows besides the document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitOptions {
    /// The base URL to use instead of the document's `servers[0].url` (`--base-url`).
    pub base_url: Option<String>,
    /// Where the document came from (file path or URL), for the header comment; when it is an http(s) URL, a
    /// relative server URL (or no `servers` at all) is resolved against it.
    pub source_name: String,
    /// The metrics endpoint's path, tried first (`--metrics-path`).
    pub metrics_path: Option<String>,
}

/// A generated profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOutput {
    /// The profile, as TOML text with comments; [`Profile::parse`](crate::profile::Profile::parse) accepts it as
    /// it is.
    pub toml: String,
    /// The environment variables the journeys reference (`FIXLOOP_BEARERAUTH_TOKEN`, …), to be set before the
    /// profile is served.
    pub secrets: Vec<String>,
    /// The operations that did not become journeys, each as `METHOD /path: reason`.
    pub skipped: Vec<String>,
    /// What the user should know, one line each: where the signals come from and why, the journeys written
    /// commented out and why.
    pub notes: Vec<String>,
}

/// The document read and the candidate journeys built, before anything is learnt from the live service.
#[derive(Debug, Clone)]
pub struct Draft {
    name: String,
    description: String,
    base_url: String,
    source_name: String,
    format: Format,
    metrics_paths: Vec<String>,
    journeys: Vec<Built>,
    skipped: Vec<String>,
    secrets: Vec<String>,
}

/// One request `init` may send to try a journey: a safe `GET` of an active candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The journey's id.
    pub journey: String,
    /// The request (placeholders unresolved).
    pub target: Target,
    /// The journey's pass criteria.
    pub criteria: String,
}

/// What `init` learnt from the live service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    /// The metrics endpoint and what it exposes.
    pub metrics: MetricsFinding,
    /// The trial call of each probed journey, by journey id.
    pub probes: BTreeMap<String, Observed>,
}

/// What was found at the metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsFinding {
    /// Not read (`--offline`).
    Offline,
    /// Read at `path`, with the families and labels found.
    Found {
        /// The path that answered, relative to the base URL.
        path: String,
        /// What was found.
        discovery: Discovery,
    },
    /// Nothing usable: why, for each path tried.
    NotFound {
        /// One sentence.
        reason: String,
    },
}

/// How a journey's trial call went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// It answered as its criteria expect.
    Passed {
        /// The status.
        status: u16,
    },
    /// It answered, but not as its criteria expect.
    Failed {
        /// The status.
        status: u16,
    },
    /// No answer (connection refused, timeout).
    NoAnswer {
        /// Why.
        reason: String,
    },
    /// Not tried (a credential is not set in init's environment, or the total time ran out).
    NotTried {
        /// Why.
        reason: String,
    },
}

impl Findings {
    /// Nothing read from the live service (`--offline`).
    #[must_use]
    pub fn offline() -> Self {
        Self {
            metrics: MetricsFinding::Offline,
            probes: BTreeMap::new(),
        }
    }
}

impl Draft {
    /// The service's base URL (checked, without a trailing slash).
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The paths a metrics endpoint is looked for at, in order: `--metrics-path`, the documented ones, then
    /// [`METRICS_PATHS`].
    #[must_use]
    pub fn metrics_paths(&self) -> &[String] {
        &self.metrics_paths
    }

    /// The environment variables the journeys reference.
    #[must_use]
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The trial calls: one per active `GET` candidate (never one naming a side effect, never a stream: those are
    /// not active or not candidates).
    #[must_use]
    pub fn probes(&self) -> Vec<Probe> {
        self.journeys
            .iter()
            .filter(|journey| journey.inactive.is_none() && journey.file.method == HttpMethod::Get)
            .map(|journey| Probe {
                journey: journey.file.id.clone(),
                target: Target {
                    method: HttpMethod::Get,
                    url: format!("{}{}", self.base_url, journey.file.path),
                    headers: journey.file.headers.clone(),
                    body_json: fixloop_contract::JsonObject::new(),
                },
                criteria: journey.file.pass_criteria.clone(),
            })
            .collect()
    }
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
    /// The document parses but is neither Swagger 2.0 nor OpenAPI 3.x.
    #[error("not a Swagger 2.0 or OpenAPI 3.x document: {found}")]
    NotOpenApi {
        /// What was found instead.
        found: String,
    },
    /// No base URL: none was given and the document has no usable server.
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
    /// Fewer than five active journeys could be built from the document (and kept after trying them).
    #[error("{}", render::too_few_journeys(*found, skipped))]
    TooFewJourneys {
        /// How many active journeys could be built.
        found: usize,
        /// The operations that were skipped or made inactive, each as `METHOD /path: reason`.
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

/// Generates a starter profile without reading the live service (`--offline`): [`draft`] then [`finish`] with
/// [`Findings::offline`].
///
/// # Errors
///
/// As [`draft`] and [`finish`].
pub fn init_from_openapi(document: &str, options: &InitOptions) -> Result<InitOutput, InitError> {
    finish(draft(document, options)?, &Findings::offline())
}

/// Reads the document and builds the candidate journeys.
///
/// # Errors
///
/// [`InitError::Json`] or [`InitError::Yaml`] when the text does not parse, [`InitError::NotOpenApi`] for
/// anything but Swagger 2.0 and OpenAPI 3.x, [`InitError::NoBaseUrl`] or [`InitError::InvalidBaseUrl`] when no
/// usable base URL is known, and [`InitError::TooFewJourneys`] when fewer than five active journeys can be built.
pub fn draft(document: &str, options: &InitOptions) -> Result<Draft, InitError> {
    let (document, format) = document::load(document, &options.source_name)?;
    let base_url =
        document::base_url(&document, options.base_url.as_deref(), &options.source_name)?;
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
    let mut metrics_paths: Vec<String> = options
        .metrics_path
        .iter()
        .map(|path| format!("/{}", path.trim_start_matches('/')))
        .collect();
    for path in paths.into_iter().flat_map(|paths| paths.keys()) {
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        if matches!(last, "metrics" | "prometheus") && !metrics_paths.contains(path) {
            metrics_paths.push(path.clone());
        }
    }
    for path in METRICS_PATHS {
        if !metrics_paths.iter().any(|known| known == path) {
            metrics_paths.push((*path).to_owned());
        }
    }
    let mut generator = Generator::new(&document, &base_url, &options.source_name, &metrics_paths);
    if let Some(paths) = paths {
        for (path, item) in paths {
            generator.path_item(path, item);
        }
    }
    let journeys = generator.journeys;
    let skipped = generator.skipped;
    let secrets: Vec<String> = generator.secrets.into_iter().collect();
    let active = journeys
        .iter()
        .filter(|journey| journey.inactive.is_none())
        .count();
    if active < PLAN_ITEMS {
        return Err(InitError::TooFewJourneys {
            found: active,
            skipped: render::with_inactive(&skipped, &journeys),
        });
    }
    Ok(Draft {
        name,
        description,
        base_url,
        source_name: options.source_name.clone(),
        format,
        metrics_paths,
        journeys,
        skipped,
        secrets,
    })
}

/// Writes the profile from the draft and the findings: journeys whose trial call failed become inactive (with the
/// observed answer), the signals come from the metrics found (or are synthetic, with the reason).
///
/// # Errors
///
/// [`InitError::TooFewJourneys`] when fewer than five journeys stay active, and [`InitError::Serialize`] or
/// [`InitError::Generated`] if the generated profile is unusable (a defect).
pub fn finish(draft: Draft, findings: &Findings) -> Result<InitOutput, InitError> {
    let mut draft = draft;
    for journey in &mut draft.journeys {
        if journey.inactive.is_some() {
            continue;
        }
        if let Some(observed) = findings.probes.get(&journey.file.id) {
            journey.inactive = inactive_reason(&journey.file.headers, observed);
        }
    }
    render::profile(&draft, findings)
}

/// Why a journey whose trial call went as `observed` is written commented out, if it is.
fn inactive_reason(headers: &BTreeMap<String, String>, observed: &Observed) -> Option<String> {
    let sends_credentials = headers
        .values()
        .any(|value| secret_references(value).next().is_some());
    match observed {
        Observed::Passed { .. } | Observed::NotTried { .. } => None,
        Observed::Failed {
            status: status @ (401 | 403),
        } if !sends_credentials => Some(format!(
            "answered {status} without credentials; set a token (add an `authorization` header with ${{env:NAME}})"
        )),
        Observed::Failed {
            status: status @ (401 | 403),
        } => Some(format!(
            "answered {status} with the credentials set at init: check the token"
        )),
        Observed::Failed { status } => Some(format!("answered {status}")),
        Observed::NoAnswer { reason } => Some(format!("did not answer: {reason}")),
    }
}

#[cfg(test)]
mod tests;
