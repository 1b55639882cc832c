//! The I/O half of `profile init`: fetching the document, reading the metrics endpoint, trying the journeys.
//!
//! Every call is bounded: the document within [`FETCH_TIMEOUT`] and [`MAX_DOCUMENT_BYTES`], each metrics read
//! within [`METRICS_TIMEOUT`], each journey within [`PROBE_TIMEOUT`] and all of them within
//! [`PROBES_TOTAL_TIMEOUT`]. Journeys are tried one at a time, only the [`Draft::probes`] (`GET`s that name no
//! side effect and are not streams), with the validation header the HTTP runner sends, through the runner's own
//! one-request function.

use std::collections::BTreeMap;

use fixloop_adapters::Secret;
use fixloop_adapters::http_runner::send_once;
use fixloop_core::Criteria;
use fixloop_core::service::secret_references;
use tokio::time::Instant;

use super::discover::discover;
use super::{
    Draft, FETCH_TIMEOUT, Findings, InitError, MAX_DOCUMENT_BYTES, METRICS_TIMEOUT, MetricsFinding,
    Observed, PROBE_TIMEOUT, PROBES_TOTAL_TIMEOUT,
};

/// Longest exposition read.
const MAX_EXPOSITION_BYTES: usize = 4 * 1024 * 1024;
/// The validation header's value on init's trial calls.
pub const INIT_VALIDATION_TAG: &str = "profile-init";

/// Reads the live service: the metrics endpoint (each of [`Draft::metrics_paths`] in turn, the first that
/// exposes a request counter wins), then one trial call per [`Draft::probes`] with `secrets` (the credentials set
/// in init's environment; a journey needing one that is not set is not tried). When the service answers none of
/// the trial calls, they count as not tried: a service that is down says nothing about its journeys.
pub async fn read_live(
    http: &reqwest::Client,
    draft: &Draft,
    secrets: &BTreeMap<String, Secret>,
) -> Findings {
    let metrics = read_metrics(http, draft.base_url(), draft.metrics_paths()).await;
    let mut probes = BTreeMap::new();
    let deadline = Instant::now() + PROBES_TOTAL_TIMEOUT;
    for probe in draft.probes() {
        let missing: Vec<&str> = probe
            .target
            .headers
            .values()
            .flat_map(|value| secret_references(value))
            .filter(|name| !secrets.contains_key(*name))
            .collect();
        let observed = if let Some(name) = missing.first() {
            Observed::NotTried {
                reason: format!("{name} is not set"),
            }
        } else if Instant::now() >= deadline {
            Observed::NotTried {
                reason: format!("the trial calls ran out of their {PROBES_TOTAL_TIMEOUT:?}"),
            }
        } else {
            let Ok(criteria) = Criteria::parse(&probe.criteria) else {
                continue;
            };
            let timeout = PROBE_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
            let answer = send_once(
                http,
                &probe.target,
                &criteria,
                timeout,
                secrets,
                INIT_VALIDATION_TAG,
            )
            .await;
            match answer.outcome {
                Ok(status) if answer.passed => Observed::Passed { status },
                Ok(status) => Observed::Failed { status },
                Err(reason) => Observed::NoAnswer { reason },
            }
        };
        probes.insert(probe.journey, observed);
    }
    // A service that answered none of the trial calls is down or elsewhere, not broken journey by journey: its
    // journeys stay as the document describes them, marked as not tried.
    let answered = probes
        .values()
        .any(|observed| matches!(observed, Observed::Passed { .. } | Observed::Failed { .. }));
    if !answered {
        for observed in probes.values_mut() {
            if let Observed::NoAnswer { reason } = observed {
                *observed = Observed::NotTried {
                    reason: format!("the service answered no trial call ({reason})"),
                };
            }
        }
    }
    Findings { metrics, probes }
}

/// Reads the metrics endpoint at each path in turn, under the base URL and, when the base URL has a path of its own
/// (`http://host/api`), also at the root of its origin (`http://host/metrics`, where exporters usually serve); the
/// first exposition with a request counter wins. One found at the origin's root is recorded as its whole URL (the
/// profile's `metrics_path` may be a URL on the base URL's origin).
pub async fn read_metrics(
    http: &reqwest::Client,
    base_url: &str,
    paths: &[String],
) -> MetricsFinding {
    let mut reasons = Vec::new();
    let origin = origin_root(base_url);
    for path in paths {
        let relative = path.trim_start_matches('/');
        let mut candidates = vec![(
            path.clone(),
            format!("{}/{relative}", base_url.trim_end_matches('/')),
        )];
        if let Some(origin) = &origin {
            let url = format!("{origin}/{relative}");
            candidates.push((url.clone(), url));
        }
        for (recorded, url) in candidates {
            match read_exposition(http, &url).await {
                Ok(text) => match discover(&text) {
                    Ok(discovery) => {
                        return MetricsFinding::Found {
                            path: recorded,
                            discovery,
                        };
                    }
                    Err(reason) => reasons.push(format!("{recorded}: {reason}")),
                },
                Err(reason) => reasons.push(format!("{recorded}: {reason}")),
            }
        }
    }
    MetricsFinding::NotFound {
        reason: reasons.join("; "),
    }
}

/// The root of `base_url`'s origin (`http://host:8080`) when the base URL has a path of its own, else `None` (the
/// paths under the base URL are the origin's).
fn origin_root(base_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(base_url).ok()?;
    let has_path = !url.path().trim_matches('/').is_empty();
    has_path.then(|| url.origin().ascii_serialization())
}

/// One read of an exposition, within [`METRICS_TIMEOUT`]; the error says what came back instead.
async fn read_exposition(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let read = async {
        let mut response = http
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "text/plain;version=0.0.4, text/plain, */*",
            )
            .send()
            .await
            .map_err(|error| format!("no answer ({})", short_error(&error)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("answered {}", response.status().as_u16()));
        }
        let body = read_capped(&mut response, MAX_EXPOSITION_BYTES)
            .await
            .map_err(|error| format!("the body broke off ({})", short_error(&error)))?
            .ok_or_else(|| format!("larger than {MAX_EXPOSITION_BYTES} bytes"))?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if looks_like_exposition(&text) {
            Ok(text)
        } else {
            Err("not a Prometheus text exposition".to_owned())
        }
    };
    match tokio::time::timeout(METRICS_TIMEOUT, read).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {METRICS_TIMEOUT:?}")),
    }
}

/// The innermost cause of a transport error, which says what happened (`connection refused`).
fn short_error(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
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

pub(super) fn looks_like_exposition(text: &str) -> bool {
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
