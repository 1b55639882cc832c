//! The error body every 4xx and 5xx response carries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
///
/// `code` is stable and machine-readable (see [`codes`]); `message` is for humans and may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, lowercase snake case (see the `codes` module for the known values).
    #[schema(pattern = "^[a-z][a-z0-9_]*$", example = "invalid_json")]
    pub code: String,
    /// Human-readable explanation; never contains internal detail.
    pub message: String,
    /// Per-field problems, empty when the error is not about a field (FixLoop always sends the key; readers take a missing one as empty).
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

/// One problem with one part of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// JSON pointer (RFC 6901) to the offending value, `""` for the whole body.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl ErrorBody {
    /// An error body without field details.
    #[must_use]
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            details: Vec::new(),
        }
    }
}

/// The error codes a FixLoop server returns, with the HTTP status each goes with.
pub mod codes {
    /// 400: the body is not well-formed JSON.
    pub const INVALID_JSON: &str = "invalid_json";
    /// 400: a query parameter is malformed or out of bounds (for example `limit=0` on `GET /api/incidents`).
    pub const INVALID_QUERY: &str = "invalid_query";
    /// 422: the body is JSON but does not match the request schema (missing field, wrong type, unknown enum value).
    pub const INVALID_BODY: &str = "invalid_body";
    /// 422: the body matches the schema but a value is out of bounds (for example a question over 4,000 characters).
    pub const INVALID_VALUE: &str = "invalid_value";
    /// 415: the request's `Content-Type` is not `application/json`.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// 413: the body is larger than the server's limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// 404: no incident has this id.
    pub const INCIDENT_NOT_FOUND: &str = "incident_not_found";
    /// 404: no run has this id.
    pub const RUN_NOT_FOUND: &str = "run_not_found";
    /// 404: no watched service has this name.
    pub const SERVICE_NOT_FOUND: &str = "service_not_found";
    /// 404: no route matches the path.
    pub const ROUTE_NOT_FOUND: &str = "route_not_found";
    /// 405: the route exists but not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 409: the incident is closed, so nothing can be run for it.
    pub const INCIDENT_CLOSED: &str = "incident_closed";
    /// 409: the incident has no validated plan yet.
    pub const PLAN_NOT_READY: &str = "plan_not_ready";
    /// 400: `GET /ws` without a WebSocket upgrade.
    pub const WEBSOCKET_UPGRADE_REQUIRED: &str = "websocket_upgrade_required";
    /// 400: `GET /ws?since=` with a value that is not a non-negative integer.
    pub const INVALID_SINCE: &str = "invalid_since";
    /// 400: `GET /ws?events=` naming an unknown event group, with an empty item, or given twice.
    pub const INVALID_EVENTS: &str = "invalid_events";
    /// 401: the bearer token (or, on the webhooks, the webhook secret) is missing or wrong.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 403: the bearer token is valid but its role does not allow the operation (a `read` token on a mutating one).
    pub const FORBIDDEN: &str = "forbidden";
    /// 403: `GET /ws` from a browser page of another origin than the server's own and the configured CORS origins.
    pub const ORIGIN_NOT_ALLOWED: &str = "origin_not_allowed";
    /// 422: the profile file a reload read has problems; `details` lists each (its key path and the reason). The
    /// running services are unchanged.
    pub const INVALID_PROFILE: &str = "invalid_profile";
    /// 409: the server was not started from a profile file, so there is nothing to reload.
    pub const NO_PROFILE: &str = "no_profile";
    /// 404: no remediation proposal has this id (`POST /api/remediations/{proposal_id}/approve` or `/reject`).
    pub const PROPOSAL_NOT_FOUND: &str = "proposal_not_found";
    /// 409: the remediation proposal changed since the `version` the operator saw; the message says the current
    /// version (read the proposal again, then decide).
    pub const VERSION_CONFLICT: &str = "version_conflict";
    /// 409: the remediation proposal does not await an approval (it ran, lapsed, was rejected or withdrawn).
    pub const NOT_AWAITING_APPROVAL: &str = "not_awaiting_approval";
    /// 409: the remediation kill switch is engaged: no action may be approved until it is released.
    pub const KILL_SWITCH_ENGAGED: &str = "kill_switch_engaged";
    /// 404: `POST /api/ci/logs` with a bearer token on a server without `FIXLOOP_CI_TOKEN`: the CI intake is off.
    pub const CI_INTAKE_DISABLED: &str = "ci_intake_disabled";
    /// 421: the request's `Host` is not a name this server answers to (loopback, the bind address, or
    /// `FIXLOOP_ALLOWED_HOSTS`), as a DNS-rebinding page would send.
    pub const HOST_NOT_ALLOWED: &str = "host_not_allowed";
    /// 429: too many requests from this token or client address; the `retry-after` header says when to try again.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// 502: a service FixLoop depends on answered with an error.
    pub const UPSTREAM_ERROR: &str = "upstream_error";
    /// 504: a service FixLoop depends on did not answer in time.
    pub const UPSTREAM_TIMEOUT: &str = "upstream_timeout";
    /// 503: the server is shutting down or overloaded.
    pub const UNAVAILABLE: &str = "unavailable";
    /// 500: a bug in the server; the cause is in its log, never in the body.
    pub const INTERNAL: &str = "internal";
}
