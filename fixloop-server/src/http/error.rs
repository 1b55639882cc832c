//! `ApiError`, the one error type of the HTTP API, and [`ApiJson`], the JSON body extractor whose rejections
//! follow the contract (400 malformed JSON, 415 wrong content type, 413 too large, 422 schema mismatch).
//!
//! Every error response carries the contract's `ErrorBody` with a stable code from `fixloop_contract::codes`.
//! A 5xx body never carries internal detail: the cause is logged once, here, when the response is built.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fixloop_contract::{
    CopilotAskRequest, ErrorBody, ErrorDetail, MAX_QUESTION_CHARS, RunTestsRequest, SetBugRequest,
    SimulateRequest, codes,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Longest accepted id in a request body, in characters (as `openapi.yaml` says).
pub const MAX_ID_CHARS: usize = 128;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400 `invalid_json`: the body is not well-formed JSON.
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// 422 `invalid_body`: the JSON does not match the request schema.
    #[error("the request body does not match the schema")]
    InvalidBody(Vec<ErrorDetail>),
    /// 400 `invalid_query`: a query parameter is malformed, out of bounds or names nothing known.
    #[error("a query parameter is invalid")]
    InvalidQuery(Vec<ErrorDetail>),
    /// 422 `invalid_value`: a value is out of bounds.
    #[error("a value of the request body is out of bounds")]
    InvalidValue(Vec<ErrorDetail>),
    /// 415 `unsupported_media_type`.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// 413 `payload_too_large`.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 413 `payload_too_large`: `POST /api/ci/logs` with a `log_excerpt` over the field's limit (the field).
    #[error("log_excerpt is larger than {0} bytes: send the log's tail")]
    LogTooLarge(usize),
    /// 404 `ci_intake_disabled`: `POST /api/ci/logs` on a server without `FIXLOOP_CI_TOKEN`.
    #[error("the CI intake is off: set FIXLOOP_CI_TOKEN to enable POST /api/ci/logs")]
    CiIntakeDisabled,
    /// 404 `incident_not_found`.
    #[error("no incident has id {0}")]
    IncidentNotFound(String),
    /// 404 `run_not_found`.
    #[error("no run has id {0}")]
    RunNotFound(String),
    /// 404 `service_not_found`.
    #[error("no watched service is called {0}")]
    ServiceNotFound(String),
    /// 404 `route_not_found`.
    #[error("no route matches {0}")]
    RouteNotFound(String),
    /// 405 `method_not_allowed`.
    #[error("method {0} is not allowed on this route")]
    MethodNotAllowed(String),
    /// 409 `incident_closed`.
    #[error("incident {0} is closed")]
    IncidentClosed(String),
    /// 409 `plan_not_ready`.
    #[error("incident {0} has no validated plan yet")]
    PlanNotReady(String),
    /// 404 `proposal_not_found`.
    #[error("no remediation proposal has id {0}")]
    ProposalNotFound(String),
    /// 409 `version_conflict`: the message says the current version.
    #[error("{0}")]
    VersionConflict(String),
    /// 409 `not_awaiting_approval`.
    #[error("remediation proposal {0} does not await an approval")]
    NotAwaitingApproval(String),
    /// 409 `kill_switch_engaged`.
    #[error("the remediation kill switch is engaged: release it before approving an action")]
    KillSwitchEngaged,
    /// 409 `no_profile`: a reload was asked of a server not started from a profile file.
    #[error(
        "this server was not started from a profile file (fixloop serve --profile): there is nothing to reload"
    )]
    NoProfile,
    /// 422 `invalid_profile`: the reloaded profile has problems (each a detail: its key path and the reason); the
    /// running services are unchanged.
    #[error("the profile was refused; the running services are unchanged")]
    InvalidProfile(Vec<ErrorDetail>),
    /// 400 `websocket_upgrade_required`: `GET /ws` without a WebSocket upgrade.
    #[error("expected a WebSocket upgrade request")]
    NotWebSocket,
    /// 400 `invalid_since`: `GET /ws?since=` with a value that is not a non-negative integer.
    #[error("since must be a non-negative integer (the largest seq the client saw), got {0:?}")]
    InvalidSince(String),
    /// 400 `invalid_events`: `GET /ws?events=` naming an unknown event group, with an empty item, or given twice.
    #[error(
        "events must be a comma-separated list of known event groups (remediation), given once; got {0}"
    )]
    InvalidEvents(String),
    /// 401 `unauthorized`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403 `origin_not_allowed`: `GET /ws` from a page of a foreign origin (the field is the origin, shortened).
    #[error(
        "origin {0} may not open /ws: only the server's own pages and FIXLOOP_CORS_ORIGINS may (clients that send no Origin are not affected)"
    )]
    OriginNotAllowed(String),
    /// 421 `host_not_allowed`: the `Host` header names no host this server answers to (the field is the host,
    /// shortened).
    #[error(
        "this server does not answer to the host {0}: use a loopback address, the bound address, or a name listed in FIXLOOP_ALLOWED_HOSTS"
    )]
    HostNotAllowed(String),
    /// 502 `upstream_error`; the field is the cause, logged and never sent.
    #[error("the upstream service answered with an error")]
    Upstream(String),
    /// 504 `upstream_timeout`; the field is the cause, logged and never sent.
    #[error("the upstream service did not answer in time")]
    UpstreamTimeout(String),
    /// 503 `unavailable`: the server is shutting down.
    #[error("the server is shutting down or overloaded")]
    Unavailable,
    /// 503 `unavailable`: another replica leads the service, and it could not be reached (the field says why).
    #[error("{0}")]
    NotLedHere(&'static str),
    /// 500 `internal`; the field is the cause, logged and never sent.
    #[error("internal error; see the server log")]
    Internal(String),
}

/// The first `max` characters of `text`: what an error or a log line may repeat of a caller's input.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

impl From<crate::runtime::Error> for ApiError {
    fn from(error: crate::runtime::Error) -> Self {
        use crate::runtime::Error;
        match error {
            Error::IncidentNotFound(id) => Self::IncidentNotFound(id.to_string()),
            Error::IncidentClosed(id) => Self::IncidentClosed(id.to_string()),
            Error::PlanNotReady(id) => Self::PlanNotReady(id.to_string()),
            Error::ProposalNotFound(id) => Self::ProposalNotFound(id),
            conflict @ Error::VersionConflict { .. } => Self::VersionConflict(conflict.to_string()),
            Error::NotAwaitingApproval(id) => Self::NotAwaitingApproval(id),
            Error::KillSwitchEngaged => Self::KillSwitchEngaged,
            Error::Internal(cause) => Self::Internal(cause),
            // The driver is stopping with the process, or does not answer: 503.
            Error::Unavailable => Self::Unavailable,
        }
    }
}

impl ApiError {
    /// The HTTP status of the error.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::InvalidJson(_)
            | Self::NotWebSocket
            | Self::InvalidSince(_)
            | Self::InvalidEvents(_)
            | Self::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            Self::InvalidBody(_) | Self::InvalidValue(_) | Self::InvalidProfile(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) | Self::LogTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::CiIntakeDisabled
            | Self::IncidentNotFound(_)
            | Self::RunNotFound(_)
            | Self::ServiceNotFound(_)
            | Self::ProposalNotFound(_)
            | Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::IncidentClosed(_)
            | Self::PlanNotReady(_)
            | Self::NoProfile
            | Self::VersionConflict(_)
            | Self::NotAwaitingApproval(_)
            | Self::KillSwitchEngaged => StatusCode::CONFLICT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::HostNotAllowed(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Unavailable | Self::NotLedHere(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code of the error (`fixloop_contract::codes`).
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => codes::INVALID_JSON,
            Self::NotWebSocket => codes::WEBSOCKET_UPGRADE_REQUIRED,
            Self::InvalidSince(_) => codes::INVALID_SINCE,
            Self::InvalidEvents(_) => codes::INVALID_EVENTS,
            Self::InvalidBody(_) => codes::INVALID_BODY,
            Self::InvalidValue(_) => codes::INVALID_VALUE,
            Self::InvalidQuery(_) => codes::INVALID_QUERY,
            Self::UnsupportedMediaType => codes::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) | Self::LogTooLarge(_) => codes::PAYLOAD_TOO_LARGE,
            Self::CiIntakeDisabled => codes::CI_INTAKE_DISABLED,
            Self::IncidentNotFound(_) => codes::INCIDENT_NOT_FOUND,
            Self::RunNotFound(_) => codes::RUN_NOT_FOUND,
            Self::ServiceNotFound(_) => codes::SERVICE_NOT_FOUND,
            Self::RouteNotFound(_) => codes::ROUTE_NOT_FOUND,
            Self::MethodNotAllowed(_) => codes::METHOD_NOT_ALLOWED,
            Self::IncidentClosed(_) => codes::INCIDENT_CLOSED,
            Self::PlanNotReady(_) => codes::PLAN_NOT_READY,
            Self::NoProfile => codes::NO_PROFILE,
            Self::ProposalNotFound(_) => codes::PROPOSAL_NOT_FOUND,
            Self::VersionConflict(_) => codes::VERSION_CONFLICT,
            Self::NotAwaitingApproval(_) => codes::NOT_AWAITING_APPROVAL,
            Self::KillSwitchEngaged => codes::KILL_SWITCH_ENGAGED,
            Self::InvalidProfile(_) => codes::INVALID_PROFILE,
            Self::Unauthorized(_) => codes::UNAUTHORIZED,
            Self::OriginNotAllowed(_) => codes::ORIGIN_NOT_ALLOWED,
            Self::HostNotAllowed(_) => codes::HOST_NOT_ALLOWED,
            Self::Upstream(_) => codes::UPSTREAM_ERROR,
            Self::UpstreamTimeout(_) => codes::UPSTREAM_TIMEOUT,
            Self::Unavailable | Self::NotLedHere(_) => codes::UNAVAILABLE,
            Self::Internal(_) => codes::INTERNAL,
        }
    }

    /// The contract's error body.
    #[must_use]
    pub fn body(&self) -> ErrorBody {
        let details = match self {
            Self::InvalidBody(details)
            | Self::InvalidValue(details)
            | Self::InvalidQuery(details)
            | Self::InvalidProfile(details) => details.clone(),
            _ => Vec::new(),
        };
        ErrorBody {
            code: self.code().to_owned(),
            message: self.to_string(),
            details,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Upstream(cause) | Self::UpstreamTimeout(cause) => {
                tracing::warn!(code = self.code(), %cause, "upstream call failed");
            }
            Self::Internal(cause) => tracing::error!(%cause, "internal error"),
            _ => {}
        }
        (self.status(), axum::Json(self.body())).into_response()
    }
}

/// A request body type of the contract: the fields it has, so a mismatch is reported with JSON pointers.
pub trait RequestBody: DeserializeOwned {
    /// The body's fields.
    const FIELDS: &'static [Field];
}

/// One field of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The key.
    pub name: &'static str,
    /// Whether the key must be present.
    pub required: bool,
    /// What the value must be.
    pub kind: FieldKind,
}

/// The type of a request field, with its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A boolean.
    Bool,
    /// A string of `min..=max` characters; `nullable` also accepts `null`.
    String {
        /// Fewest characters.
        min: usize,
        /// Most characters.
        max: usize,
        /// Whether `null` is accepted.
        nullable: bool,
    },
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A non-negative integer (at most `u64::MAX`).
    Unsigned,
}

impl RequestBody for SetBugRequest {
    const FIELDS: &'static [Field] = &[Field {
        name: "enabled",
        required: true,
        kind: FieldKind::Bool,
    }];
}

impl RequestBody for SimulateRequest {
    const FIELDS: &'static [Field] = &[Field {
        name: "mode",
        required: true,
        kind: FieldKind::Enum(&["INCIDENT_ON", "INCIDENT_OFF"]),
    }];
}

impl RequestBody for fixloop_contract::RemediationDecisionRequest {
    const FIELDS: &'static [Field] = &[Field {
        name: "version",
        required: true,
        kind: FieldKind::Unsigned,
    }];
}

impl RequestBody for fixloop_contract::KillSwitchRequest {
    const FIELDS: &'static [Field] = &[Field {
        name: "engaged",
        required: true,
        kind: FieldKind::Bool,
    }];
}

impl RequestBody for RunTestsRequest {
    const FIELDS: &'static [Field] = &[Field {
        name: "incident_id",
        required: true,
        kind: FieldKind::String {
            min: 1,
            max: MAX_ID_CHARS,
            nullable: false,
        },
    }];
}

impl RequestBody for CopilotAskRequest {
    const FIELDS: &'static [Field] = &[
        Field {
            name: "incident_id",
            required: false,
            kind: FieldKind::String {
                min: 0,
                max: MAX_ID_CHARS,
                nullable: true,
            },
        },
        Field {
            name: "question",
            required: true,
            kind: FieldKind::String {
                min: 1,
                max: MAX_QUESTION_CHARS,
                nullable: false,
            },
        },
    ];
}

/// A JSON request body checked against the contract: `Content-Type: application/json` (else 415), within the body
/// limit (else 413), well-formed (else 400), of the right shape (else 422 `invalid_body`) and within bounds (else
/// 422 `invalid_value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: RequestBody,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = request
            .extensions()
            .get::<BodyLimit>()
            .map_or(crate::config::DEFAULT_MAX_BODY_BYTES, |limit| limit.0);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(limit)
                } else {
                    ApiError::InvalidJson("the body could not be read".to_owned())
                }
            })?;
        parse_body(&bytes).map(ApiJson)
    }
}

/// The configured body limit, put into request extensions by the router so rejections can state it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// Parses and checks a request body (the part of [`ApiJson`] after the headers).
///
/// # Errors
///
/// [`ApiError::InvalidJson`], [`ApiError::InvalidBody`] or [`ApiError::InvalidValue`].
pub fn parse_body<T: RequestBody>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|error| ApiError::InvalidJson(error.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::InvalidBody(vec![detail(
            "",
            "expected a JSON object",
        )]));
    };
    let mut shape = Vec::new();
    let mut bounds = Vec::new();
    for field in T::FIELDS {
        let path = format!("/{}", field.name);
        let Some(value) = object.get(field.name) else {
            if field.required {
                shape.push(detail(&path, "required field is missing"));
            }
            continue;
        };
        match (field.kind, value) {
            (FieldKind::Bool, Value::Bool(_)) => {}
            (FieldKind::Bool, _) => shape.push(detail(&path, "expected a boolean")),
            (FieldKind::String { nullable: true, .. }, Value::Null) => {}
            (FieldKind::String { min, max, .. }, Value::String(text)) => {
                let length = text.chars().count();
                if length < min || length > max {
                    bounds.push(detail(
                        &path,
                        &format!("expected {min} to {max} characters, got {length}"),
                    ));
                } else if min > 0 && text.trim().is_empty() {
                    // A required text made only of whitespace carries nothing to act on.
                    bounds.push(detail(&path, "must not be blank"));
                }
            }
            (FieldKind::String { nullable, .. }, _) => shape.push(detail(
                &path,
                if nullable {
                    "expected a string or null"
                } else {
                    "expected a string"
                },
            )),
            (FieldKind::Unsigned, Value::Number(number)) if number.is_u64() => {}
            (FieldKind::Unsigned, _) => {
                shape.push(detail(&path, "expected a non-negative integer"))
            }
            (FieldKind::Enum(values), Value::String(text)) if values.contains(&text.as_str()) => {}
            (FieldKind::Enum(values), _) => {
                shape.push(detail(
                    &path,
                    &format!("expected one of {}", values.join(", ")),
                ));
            }
        }
    }
    if !shape.is_empty() {
        return Err(ApiError::InvalidBody(shape));
    }
    if !bounds.is_empty() {
        return Err(ApiError::InvalidValue(bounds));
    }
    serde_json::from_value(value)
        .map_err(|error| ApiError::InvalidBody(vec![detail("", &error.to_string())]))
}

fn detail(path: &str, message: &str) -> ErrorDetail {
    ErrorDetail {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

/// Whether a content type is JSON (`application/json`, `application/*+json`, with any parameters).
fn is_json(value: Option<&header::HeaderValue>) -> bool {
    let Some(text) = value.and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_is_invalid_json() {
        let error = parse_body::<SetBugRequest>(b"{\"enabled\":").unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error.code(), codes::INVALID_JSON);
    }

    #[test]
    fn wrong_type_names_the_field() {
        let error = parse_body::<SetBugRequest>(br#"{"enabled":"yes"}"#).unwrap_err();
        assert_eq!(error.code(), codes::INVALID_BODY);
        assert_eq!(error.body().details[0].path, "/enabled");
    }

    #[test]
    fn unknown_enum_value_is_invalid_body() {
        let error = parse_body::<SimulateRequest>(br#"{"mode":"ON"}"#).unwrap_err();
        assert_eq!(error.body().details[0].path, "/mode");
    }

    #[test]
    fn long_question_is_invalid_value_and_unknown_fields_are_ignored() {
        let question = "q".repeat(MAX_QUESTION_CHARS + 1);
        let body = serde_json::json!({"question": question, "extra": 1}).to_string();
        let error = parse_body::<CopilotAskRequest>(body.as_bytes()).unwrap_err();
        assert_eq!(error.code(), codes::INVALID_VALUE);
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let ok = parse_body::<CopilotAskRequest>(br#"{"question":"why?","extra":1}"#).unwrap();
        assert_eq!(ok.incident_id, None);
    }

    #[test]
    fn blank_question_or_run_incident_id_is_invalid_value() {
        for body in [r#"{"question":"   "}"#, r#"{"question":"\n\t"}"#] {
            let error = parse_body::<CopilotAskRequest>(body.as_bytes()).unwrap_err();
            assert_eq!(error.code(), codes::INVALID_VALUE, "{body}");
            assert_eq!(
                error.body().details[0].message,
                "must not be blank",
                "{body}"
            );
        }
        let error = parse_body::<RunTestsRequest>(br#"{"incident_id":"  "}"#).unwrap_err();
        assert_eq!(error.body().details[0].path, "/incident_id");
    }

    #[test]
    fn json_content_types() {
        let json = |text: &str| is_json(Some(&header::HeaderValue::from_str(text).unwrap()));
        assert!(json("application/json"));
        assert!(json("Application/JSON; charset=utf-8"));
        assert!(json("application/problem+json"));
        assert!(!json("text/plain"));
        assert!(!is_json(None));
    }

    #[test]
    fn server_errors_hide_their_cause() {
        let body = ApiError::Internal("database password is hunter2".to_owned()).body();
        assert!(!body.message.contains("hunter2"));
        let body = ApiError::Upstream("connect to 10.0.0.1 refused".to_owned()).body();
        assert!(!body.message.contains("10.0.0.1"));
    }
}
