//! The alert webhooks: `POST /internal/datadog/webhook` and `POST /internal/alertmanager/webhook`, each behind
//! `FIXLOOP_WEBHOOK_SECRET`.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fixloop_contract::ErrorDetail;
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::constant_time_equal;
use crate::http::error::ApiError;
use crate::http::{AppState, WEBHOOK_SECRET_HEADER};

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new()
        .route("/internal/datadog/webhook", post(datadog_webhook))
        .route("/internal/alertmanager/webhook", post(alertmanager_webhook))
}

/// The `?secret=` query parameter of the webhooks.
#[derive(Debug, Deserialize)]
struct SecretQuery {
    secret: Option<String>,
}

fn check_webhook_secret(
    state: &AppState,
    headers: &HeaderMap,
    query: &SecretQuery,
) -> Result<(), ApiError> {
    let Some(expected) = &state.settings.webhook_secret else {
        return Err(ApiError::Unauthorized(
            "webhooks are disabled: set FIXLOOP_WEBHOOK_SECRET to enable them",
        ));
    };
    // The scheme is case-insensitive (RFC 9110 §11.1): `bearer`, `BEARER` and `Bearer` are the same.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, secret)| secret.trim());
    let given = headers
        .get(WEBHOOK_SECRET_HEADER)
        .and_then(|value| value.to_str().ok())
        .or(bearer)
        .or(query.secret.as_deref());
    match given {
        Some(given)
            if bool::from(constant_time_equal(
                expected.expose().as_bytes(),
                given.as_bytes(),
            )) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::Unauthorized("the webhook secret is wrong")),
        None => Err(ApiError::Unauthorized(
            "the webhook secret is missing (X-FixLoop-Webhook-Secret header, bearer token or ?secret=)",
        )),
    }
}

fn webhook_json(body: &[u8]) -> Result<(), ApiError> {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|_| ())
        .map_err(|error| ApiError::InvalidJson(error.to_string()))
}

/// Admits one webhook delivery: checks the secret, checks that the body is JSON, then reads it with the vendor's
/// `parse`, whose error becomes a 400 `invalid_body`.
fn admit_webhook<T, E: std::fmt::Display>(
    state: &AppState,
    headers: &HeaderMap,
    query: &SecretQuery,
    body: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, ApiError> {
    check_webhook_secret(state, headers, query)?;
    webhook_json(body)?;
    parse(body).map_err(|error| {
        ApiError::InvalidBody(vec![ErrorDetail {
            path: String::new(),
            message: error.to_string(),
        }])
    })
}

/// A webhook's body; a body over the limit is 413 `payload_too_large` with the contract's `ErrorBody`, as everywhere.
fn webhook_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(state.settings.max_body_bytes)
        } else {
            ApiError::InvalidJson("the body could not be read".to_owned())
        }
    })
}

async fn datadog_webhook(
    State(state): State<AppState>,
    Query(query): Query<SecretQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = webhook_body(&state, body)?;
    let event = admit_webhook(
        &state,
        &headers,
        &query,
        &body,
        fixloop_adapters::datadog::parse_webhook,
    )?;
    // `$ALERT_SCOPE` is `service:checkout,env:prod`: its `key:value` tags are the alert's labels.
    let labels: BTreeMap<String, String> = event
        .scope
        .iter()
        .filter_map(|tag| tag.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    if let Some(label) = names_fixloop(&labels) {
        state.metrics.self_alert_ignored();
        tracing::warn!(dedupe_key = %event.alert.dedupe_key, label, "datadog alert about FixLoop itself ignored: FixLoop never acts on its own alerts");
        return Ok((StatusCode::ACCEPTED, axum::Json(json!({"accepted": false}))).into_response());
    }
    let services = state.services.snapshot();
    let accepted = match (event.to_input(), services.route_alert(&labels)) {
        (Some(input), Some(service)) => {
            tracing::info!(dedupe_key = %event.alert.dedupe_key, transition = ?event.transition, service = %service.name, "datadog webhook");
            service.driver.alert(input).await?;
            true
        }
        (Some(_), None) => {
            tracing::warn!(dedupe_key = %event.alert.dedupe_key, scope = ?event.scope, "datadog webhook matches no watched service's alert_labels; ignored");
            false
        }
        (None, _) => false,
    };
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"accepted": accepted})),
    )
        .into_response())
}

async fn alertmanager_webhook(
    State(state): State<AppState>,
    Query(query): Query<SecretQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = webhook_body(&state, body)?;
    let alerts = admit_webhook(
        &state,
        &headers,
        &query,
        &body,
        fixloop_adapters::prometheus::parse_alertmanager,
    )?;
    let services = state.services.snapshot();
    let mut count = 0;
    for alert in alerts {
        if let Some(label) = names_fixloop(&alert.labels) {
            state.metrics.self_alert_ignored();
            tracing::warn!(dedupe_key = %alert.alert.dedupe_key, label, "alertmanager alert about FixLoop itself ignored: FixLoop never acts on its own alerts");
            continue;
        }
        match services.route_alert(&alert.labels) {
            Some(service) => {
                tracing::info!(dedupe_key = %alert.alert.dedupe_key, firing = alert.firing, service = %service.name, "alertmanager webhook");
                service.driver.alert(alert.to_input()).await?;
                count += 1;
            }
            None => {
                tracing::warn!(dedupe_key = %alert.alert.dedupe_key, labels = ?alert.labels, "alertmanager alert matches no watched service's alert_labels; ignored");
            }
        }
    }
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"accepted": count}))).into_response())
}

/// The labels that mark an alert as being about FixLoop itself.
const SELF_LABELS: [&str; 3] = ["service", "job", "app"];

/// The label (`name=value`) naming FixLoop when the alert is about FixLoop itself: a `service`, `job` or `app`
/// label whose value is `fixloop` or starts with `fixloop-`, `fixloop_` or `fixloop.` (any case). FixLoop never
/// acts on such an alert: acting on its own symptoms (restarting, remediating) could loop.
fn names_fixloop(labels: &BTreeMap<String, String>) -> Option<String> {
    SELF_LABELS.iter().find_map(|name| {
        let value = labels.get(*name)?;
        let lower = value.trim().to_ascii_lowercase();
        let rest = lower.strip_prefix("fixloop")?;
        (rest.is_empty() || rest.starts_with(['-', '_', '.'])).then(|| format!("{name}={value}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_job_or_app_label_naming_fixloop_marks_an_alert_as_fixloops_own() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect()
        };
        for own in [
            labels(&[("service", "fixloop")]),
            labels(&[("job", "FixLoop")]),
            labels(&[("app", "fixloop-orchestrator"), ("env", "prod")]),
            labels(&[("service", "fixloop_server")]),
        ] {
            assert!(names_fixloop(&own).is_some(), "{own:?}");
        }
        for other in [
            labels(&[("service", "checkout")]),
            labels(&[("service", "fixloopy")]),
            labels(&[("alertname", "fixloop")]),
            labels(&[]),
        ] {
            assert_eq!(names_fixloop(&other), None, "{other:?}");
        }
    }
}
