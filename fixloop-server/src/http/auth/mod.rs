//! Authentication and rate limiting of the HTTP API: bearer tokens from `FIXLOOP_API_TOKENS`, each with a
//! [`Role`], checked in constant time by the [`authorize`] middleware, and a token bucket per caller in front of the
//! copilot (the one endpoint that costs an LLM call).
//!
//! Which route needs what is decided in one place, [`required_access`]: `/healthz`, `/openapi.json`, the
//! dashboard page `GET /` and its assets `GET /dashboard/{file}` are open; the alert webhooks keep their own `FIXLOOP_WEBHOOK_SECRET` and `POST /api/ci/logs` its own `FIXLOOP_CI_TOKEN`; every other `GET`
//! (the reads, `/ws` and `/metrics`) needs `read`; every other method needs `operate`, which implies `read`; the
//! remediation decisions ([`APPROVE_ROUTES`]: approve, reject, the kill switch) need `approve`, which implies
//! `operate` and is granted only explicitly (an `operate` token does not approve). A token
//! arrives as `Authorization: Bearer <token>`, or as the `access_token` query parameter (RFC 6750) for browsers that
//! cannot set headers on a WebSocket; [`redact_uri`] keeps that parameter's value out of every log line.
//!
//! The copilot's buckets are keyed by token name (or by client address when the API is open), refill at
//! `FIXLOOP_COPILOT_RATE_PER_MINUTE` up to `FIXLOOP_COPILOT_BURST`, and are refunded when the handler refuses the
//! request with a 4xx before any copilot call; at most [`MAX_RATE_BUCKETS`] callers are tracked one by one. The
//! [`OPERATE_ROUTES`] that start work (runs, simulations, the bug switch) share a second bucket per caller, with the
//! same rules (`FIXLOOP_OPERATE_RATE_PER_MINUTE`, `FIXLOOP_OPERATE_BURST`).
//!
//! With no token configured, the API is open (the loopback demo); [`check_exposure`] refuses to start such a server
//! on a non-loopback address unless the operator passes `--insecure-no-auth`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Query, Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fixloop_adapters::Secret;
use fixloop_contract::{ErrorBody, codes};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

mod rate_limit;

pub use self::rate_limit::{BucketKey, RateLimit, RateLimiter};
use crate::http::error::truncate;
use crate::http::guard::Refusals;

/// The query parameter that carries a token when a client cannot set the `Authorization` header (RFC 6750 §2.3).
pub const ACCESS_TOKEN_QUERY: &str = "access_token";
/// Query parameters whose values [`redact_uri`] hides: the access token, and the webhooks' `secret`.
pub const REDACTED_QUERY_PARAMETERS: [&str; 2] = [ACCESS_TOKEN_QUERY, "secret"];
/// Shortest accepted token, in bytes (16 random bytes, hex-encoded, are 32).
pub const MIN_TOKEN_BYTES: usize = 16;
/// Longest accepted token, in bytes; a longer presented token is rejected without comparing it.
pub const MAX_TOKEN_BYTES: usize = 512;
/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Default copilot requests per minute per caller (`FIXLOOP_COPILOT_RATE_PER_MINUTE`).
pub const DEFAULT_COPILOT_PER_MINUTE: u32 = 10;
/// Default copilot burst per caller (`FIXLOOP_COPILOT_BURST`).
pub const DEFAULT_COPILOT_BURST: u32 = 5;
/// Most callers the rate limiter tracks one by one; callers beyond share one bucket.
pub const MAX_RATE_BUCKETS: usize = 4096;
/// The route of the copilot, rate-limited on its own (it costs a language-model call).
pub const COPILOT_ROUTE: &str = "/api/copilot/ask";
/// The operate routes that share one rate limit per caller (`FIXLOOP_OPERATE_RATE_PER_MINUTE`,
/// `FIXLOOP_OPERATE_BURST`): each starts work (a run against the watched service, an incident, a bug switch call).
pub const OPERATE_ROUTES: [&str; 3] =
    ["/api/tests/run", "/api/incidents/simulate", "/api/demo/bug"];
/// The routes that decide about remediation: they need the [`Role::Approve`] role.
pub const APPROVE_ROUTES: [&str; 3] = [
    "/api/remediations/{proposal_id}/approve",
    "/api/remediations/{proposal_id}/reject",
    "/api/remediation/kill-switch",
];
/// Default operate requests per minute per caller (`FIXLOOP_OPERATE_RATE_PER_MINUTE`).
pub const DEFAULT_OPERATE_PER_MINUTE: u32 = 60;
/// Default operate burst per caller (`FIXLOOP_OPERATE_BURST`).
pub const DEFAULT_OPERATE_BURST: u32 = 20;

/// What a token may do. `Approve` implies `Operate`, which implies `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads: status, incidents, runs, services, `/ws`, `/metrics`.
    Read,
    /// Reads and every mutating request: the bug switch, simulation, test runs, the copilot.
    Operate,
    /// Everything `operate` may, and the remediation decisions: approve or reject a proposal, switch the kill
    /// switch.
    Approve,
}

impl Role {
    /// Whether a token of this role may do what `required` allows.
    #[must_use]
    pub fn allows(self, required: Self) -> bool {
        self >= required
    }

    /// The role's name in `FIXLOOP_API_TOKENS` and in `openapi.yaml`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Operate => "operate",
            Self::Approve => "approve",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing (or, for the webhooks, their own secret, checked by their handlers).
    Open,
    /// A token with at least this role.
    Role(Role),
}

/// The access a request needs: `route` is the matched route template (`/api/tests/runs/{run_id}`), `None` when no
/// route matched (the 404 answer reveals nothing, so it needs nothing).
///
/// Open: `GET /healthz` (probes), `GET /openapi.json` (the public contract), `GET /` and `GET /dashboard/{file}`
/// (the dashboard page and its static assets, which must load before the page can ask for a token; its API calls are
/// authenticated) and the alert webhooks (their own `FIXLOOP_WEBHOOK_SECRET`). Every other `GET` or
/// `HEAD` needs `read`, including `/ws` and `/metrics` (the metrics name the watched services and count incidents,
/// which a shared network need not learn; Prometheus sends a `read` token with `authorization` in its scrape
/// config). The remediation decisions ([`APPROVE_ROUTES`]) need `approve`. Everything else needs `operate`, so a
/// route added later is never open by accident.
#[must_use]
pub fn required_access(method: &Method, route: Option<&str>) -> Access {
    let Some(route) = route else {
        return Access::Open;
    };
    let reads = method == Method::GET || method == Method::HEAD;
    match route {
        "/healthz" | "/openapi.json" | "/" | "/dashboard/{file}" if reads => Access::Open,
        "/internal/datadog/webhook" | "/internal/alertmanager/webhook" => Access::Open,
        // The CI intake checks its own token (FIXLOOP_CI_TOKEN) in its handler; its list is a read like any other.
        "/api/ci/logs" if !reads => Access::Open,
        _ if reads => Access::Role(Role::Read),
        _ if APPROVE_ROUTES.contains(&route) => Access::Role(Role::Approve),
        _ => Access::Role(Role::Operate),
    }
}

/// One configured token: a name for the logs, a role, and the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The caller's name, logged instead of the token.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// The token (`Debug` prints `[redacted]`).
    pub token: Secret,
}

/// The configured tokens (`FIXLOOP_API_TOKENS`); empty means the API is open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiTokens(Vec<ApiToken>);

/// `FIXLOOP_API_TOKENS` cannot be read; the message never contains a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokensError(String);

impl ApiTokens {
    /// Parses `name:role:token[,name:role:token...]`: `name` is 1 to 64 of `A-Z a-z 0-9 . _ -`, `role` is `read`,
    /// `operate` or `approve`, `token` is 16 to 512 bytes of `A-Z a-z 0-9 - . _ ~ + /`, optionally followed by `=` padding
    /// (RFC 6750's `b64token`). Blanks around entries are ignored; names and tokens must be unique.
    ///
    /// # Errors
    ///
    /// [`TokensError`] naming the entry (by position and name) and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, TokensError> {
        let mut tokens: Vec<ApiToken> = Vec::new();
        for (index, entry) in text.split(',').map(str::trim).enumerate() {
            let position = index + 1;
            if entry.is_empty() {
                return Err(TokensError(format!(
                    "entry {position} is empty (the format is name:role:token, comma-separated)"
                )));
            }
            let mut parts = entry.splitn(3, ':');
            let (Some(name), Some(role), Some(token)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(TokensError(format!(
                    "entry {position} is not name:role:token"
                )));
            };
            if name.is_empty()
                || name.chars().count() > MAX_NAME_CHARS
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(TokensError(format!(
                    "entry {position}: the name must be 1 to {MAX_NAME_CHARS} of A-Z a-z 0-9 . _ -"
                )));
            }
            let role = match role {
                "read" => Role::Read,
                "operate" => Role::Operate,
                "approve" => Role::Approve,
                other => {
                    return Err(TokensError(format!(
                        "entry {position} ({name}): the role must be read, operate or approve, got {:?}",
                        truncate(other, 20)
                    )));
                }
            };
            if token.len() < MIN_TOKEN_BYTES || token.len() > MAX_TOKEN_BYTES {
                return Err(TokensError(format!(
                    "entry {position} ({name}): the token is {} bytes; it must be {MIN_TOKEN_BYTES} to {MAX_TOKEN_BYTES} (for example `openssl rand -hex 32`)",
                    token.len()
                )));
            }
            if !is_b64token(token) {
                return Err(TokensError(format!(
                    "entry {position} ({name}): the token may hold only A-Z a-z 0-9 - . _ ~ + / and trailing ="
                )));
            }
            if tokens.iter().any(|known| known.name == name) {
                return Err(TokensError(format!(
                    "entry {position}: the name {name} is used twice"
                )));
            }
            if let Some(known) = tokens.iter().find(|known| known.token.expose() == token) {
                return Err(TokensError(format!(
                    "entry {position} ({name}) has the same token as {}",
                    known.name
                )));
            }
            tokens.push(ApiToken {
                name: name.to_owned(),
                role,
                token: Secret::new(token),
            });
        }
        Ok(Self(tokens))
    }

    /// Tokens from a list (for tests and embedders).
    #[must_use]
    pub fn new(tokens: Vec<ApiToken>) -> Self {
        Self(tokens)
    }

    /// Whether no token is configured (the API is open).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many tokens are configured.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The configured tokens.
    pub fn iter(&self) -> impl Iterator<Item = &ApiToken> {
        self.0.iter()
    }

    /// The token equal to `given`, compared in constant time: every configured token is compared in full whatever
    /// matches, so neither the time nor the order of the list tells which one (or how much of one) matched.
    #[must_use]
    pub fn authenticate(&self, given: &[u8]) -> Option<&ApiToken> {
        if given.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let mut found = Choice::from(0);
        let mut index = 0_u64;
        for (position, token) in (0_u64..).zip(&self.0) {
            let equal = constant_time_equal(token.token.expose().as_bytes(), given);
            index.conditional_assign(&position, equal);
            found |= equal;
        }
        if bool::from(found) {
            usize::try_from(index)
                .ok()
                .and_then(|index| self.0.get(index))
        } else {
            None
        }
    }
}

/// Compares a configured secret (a token, the webhook secret) with a presented one; the time depends on the
/// configured secret's length and on whether the lengths differ, never on where the bytes differ. The one
/// constant-time compare of the server.
pub(crate) fn constant_time_equal(expected: &[u8], given: &[u8]) -> Choice {
    let mut equal = (expected.len() as u64).ct_eq(&(given.len() as u64));
    for (position, byte) in expected.iter().enumerate() {
        // The branch inside `get` depends only on the length of the caller's own input.
        equal &= byte.ct_eq(&given.get(position).copied().unwrap_or(0));
    }
    equal
}

/// RFC 6750's `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte))
}

/// The API's authentication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// The tokens; empty means the API is open.
    pub tokens: ApiTokens,
    /// The copilot's rate limit, per token (or per client address when the API is open).
    pub copilot_limit: RateLimit,
    /// The rate limit of the operate routes ([`OPERATE_ROUTES`], one bucket for the three), per token (or per
    /// client address when the API is open).
    pub operate_limit: RateLimit,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            tokens: ApiTokens::default(),
            copilot_limit: RateLimit::default(),
            operate_limit: RateLimit::OPERATE,
        }
    }
}

/// How a server is exposed, as [`check_exposure`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Tokens are configured: every protected route needs one.
    Authenticated,
    /// No token, bound to loopback: open to this machine only.
    OpenOnLoopback,
    /// No token, bound beyond loopback, accepted with `--insecure-no-auth`.
    InsecureOpen,
}

/// A server without tokens would listen beyond loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to serve without authentication on {bind}: anyone who can reach the port could close incidents, start runs and make copilot calls; set FIXLOOP_API_TOKENS (name:role:token, see the README's \"Authentication\"), bind to 127.0.0.1, or pass --insecure-no-auth to accept the risk"
)]
pub struct ExposureError {
    /// The address the server was asked to bind.
    pub bind: IpAddr,
}

/// The secure-by-default rule: without tokens, a server may bind only loopback, unless `insecure_no_auth`.
///
/// # Errors
///
/// [`ExposureError`] when no token is configured, `bind` is not loopback and `insecure_no_auth` is false.
pub fn check_exposure(
    bind: IpAddr,
    tokens: &ApiTokens,
    insecure_no_auth: bool,
) -> Result<Exposure, ExposureError> {
    if !tokens.is_empty() {
        Ok(Exposure::Authenticated)
    } else if bind.to_canonical().is_loopback() {
        Ok(Exposure::OpenOnLoopback)
    } else if insecure_no_auth {
        Ok(Exposure::InsecureOpen)
    } else {
        Err(ExposureError { bind })
    }
}

/// Why the middleware refused a request. Every variant answers with the contract's `ErrorBody`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// 401 `unauthorized`: no token was sent.
    #[error(
        "this route needs a bearer token: send Authorization: Bearer <token>, or ?access_token=<token> where headers cannot be set"
    )]
    MissingToken,
    /// 401 `unauthorized`: the token is not a configured one.
    #[error("the bearer token is not valid")]
    InvalidToken,
    /// 401 `unauthorized`: the `Authorization` header is not a bearer token.
    #[error("only bearer tokens are accepted: send Authorization: Bearer <token>")]
    NotBearer,
    /// 401 `unauthorized`: more than one token was sent (RFC 6750 allows one method per request).
    #[error("send the token once: in the Authorization header or in access_token, not both")]
    SeveralTokens,
    /// 403 `forbidden`: the token's role is too small.
    #[error("this route needs a token with the {0} role")]
    Forbidden(Role),
    /// 429 `rate_limited`: the caller's bucket is empty; the field is the `retry-after`, in seconds.
    #[error("too many copilot requests: try again in {0} s")]
    RateLimited(u64),
    /// 429 `rate_limited`: the caller's bucket of operate requests (runs, simulations, the bug switch) is empty; the
    /// field is the `retry-after`, in seconds.
    #[error("too many runs, simulations or bug switches from this caller: try again in {0} s")]
    OperateRateLimited(u64),
}

impl AuthError {
    /// The HTTP status.
    #[must_use]
    pub const fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Self::MissingToken | Self::InvalidToken | Self::NotBearer | Self::SeveralTokens => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RateLimited(_) | Self::OperateRateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The stable code (`fixloop_contract::codes`).
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::InvalidToken | Self::NotBearer | Self::SeveralTokens => {
                codes::UNAUTHORIZED
            }
            Self::Forbidden(_) => codes::FORBIDDEN,
            Self::RateLimited(_) | Self::OperateRateLimited(_) => codes::RATE_LIMITED,
        }
    }

    /// The `www-authenticate` (401, 403) or `retry-after` (429) header.
    fn header(&self) -> (header::HeaderName, String) {
        let challenge = |error: &str| format!("Bearer realm=\"fixloop\", error=\"{error}\"");
        match self {
            Self::MissingToken | Self::NotBearer => (
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"fixloop\"".to_owned(),
            ),
            Self::InvalidToken => (header::WWW_AUTHENTICATE, challenge("invalid_token")),
            Self::SeveralTokens => (header::WWW_AUTHENTICATE, challenge("invalid_request")),
            Self::Forbidden(role) => (
                header::WWW_AUTHENTICATE,
                format!("{}, scope=\"{role}\"", challenge("insufficient_scope")),
            ),
            Self::RateLimited(seconds) | Self::OperateRateLimited(seconds) => {
                (header::RETRY_AFTER, seconds.to_string())
            }
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code(), self.to_string());
        let (name, value) = self.header();
        let mut response = (self.status(), axum::Json(body)).into_response();
        // The values are built above from ASCII text only, so they are always valid header values.
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// What the middleware holds: the tokens, the copilot's limiter and the operate routes' limiter. Built once per
/// router.
#[derive(Debug)]
pub struct Gate {
    tokens: ApiTokens,
    copilot: RateLimiter,
    operate: RateLimiter,
    refusals: Arc<Refusals>,
}

impl Gate {
    /// A gate for `settings`, counting its refusals in `refusals`.
    #[must_use]
    pub fn new(settings: &AuthSettings, refusals: Arc<Refusals>) -> Self {
        Self {
            tokens: settings.tokens.clone(),
            copilot: RateLimiter::new(settings.copilot_limit, MAX_RATE_BUCKETS),
            operate: RateLimiter::new(settings.operate_limit, MAX_RATE_BUCKETS),
            refusals,
        }
    }

    /// The caller of `request` for a route needing `access`: `Ok(None)` when nothing is needed (an open route, or
    /// no token configured), `Ok(Some(token))` for a valid token whose role suffices.
    ///
    /// # Errors
    ///
    /// [`AuthError`] 401 or 403.
    pub fn check(&self, request: &Request, access: Access) -> Result<Option<&ApiToken>, AuthError> {
        let Access::Role(required) = access else {
            return Ok(None);
        };
        if self.tokens.is_empty() {
            return Ok(None);
        }
        let given = presented_token(request)?.ok_or(AuthError::MissingToken)?;
        let token = self
            .tokens
            .authenticate(given.as_bytes())
            .ok_or(AuthError::InvalidToken)?;
        if token.role.allows(required) {
            Ok(Some(token))
        } else {
            Err(AuthError::Forbidden(required))
        }
    }
}

/// The middleware: checks the caller against [`required_access`], records the caller's name (never the token) in
/// the request span, rate-limits the copilot and the operate routes, logs every authorized mutating request that
/// passed its limit, and counts every refusal in [`Refusals`] (which logs a summary line per reason at most once a
/// minute, never one line per refusal).
pub async fn authorize(
    State(gate): State<Arc<Gate>>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let method = request.method().clone();
    let access = required_access(&method, route.as_deref());
    let caller = match gate.check(&request, access) {
        Ok(caller) => caller,
        Err(error) => {
            gate.refusals.record(
                error.code(),
                &format_args!("{method} {}", route.as_deref().unwrap_or("(no route)")),
            );
            return error.into_response();
        }
    };
    if let Some(token) = caller {
        tracing::Span::current().record("caller", token.name.as_str());
        request.extensions_mut().insert(Caller(token.name.clone()));
    }
    let route = route.as_deref().unwrap_or("");
    // An authorized mutating request is logged once it passed its rate limit: a refused one is only counted.
    let log_operate = || {
        if let Some(token) = caller
            && matches!(access, Access::Role(Role::Operate | Role::Approve))
        {
            tracing::info!(caller = %token.name, %method, route, "operate request");
        }
    };
    let (limiter, limited): (&RateLimiter, fn(u64) -> AuthError) = match route {
        COPILOT_ROUTE if method == Method::POST => (&gate.copilot, AuthError::RateLimited),
        _ if method == Method::POST && OPERATE_ROUTES.contains(&route) => {
            (&gate.operate, AuthError::OperateRateLimited)
        }
        _ => {
            log_operate();
            return next.run(request).await;
        }
    };
    let key = match caller {
        Some(token) => BucketKey::Token(token.name.clone()),
        None => request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(BucketKey::Unknown, |info| BucketKey::address(info.0.ip())),
    };
    if let Err(wait) = limiter.acquire(key.clone(), now()) {
        let error = limited(retry_after_seconds(wait));
        gate.refusals.record(
            error.code(),
            &format_args!(
                "{method} {route} by {}",
                caller.map_or("an open-mode client", |token| token.name.as_str())
            ),
        );
        return error.into_response();
    }
    log_operate();
    let response = next.run(request).await;
    if response.status().is_client_error() {
        // The handler refused the request before doing its work (bad body, unknown incident, a plan not ready):
        // nothing was started or asked, so it does not count.
        limiter.refund(&key);
    }
    response
}

/// The name of the token a request was authorized with, put into its extensions by [`authorize`] (absent when
/// the API is open): who approved or rejected a remediation proposal, or switched the kill switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// The limiter's clock: tokio's, so tests with a paused clock control it.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The token of a request: the `Authorization: Bearer` header or the `access_token` query parameter.
fn presented_token(request: &Request) -> Result<Option<String>, AuthError> {
    let mut headers = request.headers().get_all(header::AUTHORIZATION).iter();
    let from_header = match (headers.next(), headers.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(AuthError::SeveralTokens),
        (Some(value), None) => {
            let text = value.to_str().map_err(|_| AuthError::InvalidToken)?;
            let (scheme, token) = text.split_once(' ').ok_or(AuthError::NotBearer)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::NotBearer);
            }
            let token = token.trim_matches(' ');
            if token.is_empty() {
                return Err(AuthError::MissingToken);
            }
            Some(token.to_owned())
        }
    };
    let mut from_query = None;
    if request.uri().query().is_some() {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(request.uri())
            .map_err(|_| AuthError::InvalidToken)?;
        for (name, value) in pairs {
            if name == ACCESS_TOKEN_QUERY {
                if from_query.is_some() {
                    return Err(AuthError::SeveralTokens);
                }
                from_query = Some(value);
            }
        }
    }
    match (from_header, from_query) {
        (Some(_), Some(_)) => Err(AuthError::SeveralTokens),
        (Some(token), None) | (None, Some(token)) => Ok(Some(token)),
        (None, None) => Ok(None),
    }
}

/// `wait` rounded up to whole seconds, at least 1 (the unit of `retry-after`).
fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    let seconds = if wait.subsec_nanos() > 0 {
        whole + 1
    } else {
        whole
    };
    seconds.max(1)
}

/// The URI as logs may show it: the values of `access_token` and `secret` are replaced by `[redacted]`.
#[must_use]
pub fn redact_uri(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.to_string();
    };
    let mut redacted = String::with_capacity(uri.path().len() + query.len() + 1);
    redacted.push_str(uri.path());
    redacted.push('?');
    for (index, pair) in query.split('&').enumerate() {
        if index > 0 {
            redacted.push('&');
        }
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        if is_redacted_name(name) {
            redacted.push_str(name);
            redacted.push_str("=[redacted]");
        } else {
            redacted.push_str(pair);
        }
    }
    redacted
}

/// Whether a raw (still percent-encoded) query parameter name is one whose value is hidden.
fn is_redacted_name(raw: &str) -> bool {
    // Names are compared decoded, so `access%5Ftoken` cannot slip a token past the redaction.
    let decoded = percent_decode(raw);
    REDACTED_QUERY_PARAMETERS
        .iter()
        .any(|hidden| decoded.eq_ignore_ascii_case(hidden.as_bytes()))
}

/// `application/x-www-form-urlencoded` decoding of one name: `+` is a space, `%XX` a byte.
fn percent_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|byte| char::from(*byte).to_digit(16))
        };
        match bytes[index] {
            b'%' if hex(index + 1).is_some() && hex(index + 2).is_some() => {
                let value = hex(index + 1).unwrap_or(0) * 16 + hex(index + 2).unwrap_or(0);
                decoded.push(u8::try_from(value).unwrap_or(b'%'));
                index += 3;
            }
            b'+' => {
                decoded.push(b' ');
                index += 1;
            }
            byte => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    decoded
}

/// The span of one request for tower-http's trace layer: method, route, redacted URI, and an empty `caller` that
/// [`authorize`] fills with the token's name.
pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        uri = %redact_uri(request.uri()),
        version = ?request.version(),
        caller = tracing::field::Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &str = "read-token-0123456789";
    const OPERATE: &str = "operate-token-0123456789";

    fn tokens() -> ApiTokens {
        ApiTokens::parse(&format!("dash:read:{READ}, ci:operate:{OPERATE}")).unwrap()
    }

    #[test]
    fn tokens_parse_with_names_and_roles() {
        let tokens = tokens();
        let parsed: Vec<(&str, Role)> = tokens
            .iter()
            .map(|token| (token.name.as_str(), token.role))
            .collect();
        assert_eq!(parsed, [("dash", Role::Read), ("ci", Role::Operate)]);
        // A base64 token with padding is a b64token; `:` is not (so the split is never ambiguous).
        let tokens = ApiTokens::parse("a:read:abc.def0123456789/+==").unwrap();
        assert_eq!(
            tokens.iter().next().unwrap().token.expose(),
            "abc.def0123456789/+=="
        );
        assert!(ApiTokens::parse("a:read:abc:def0123456789/+==").is_err());
    }

    #[test]
    fn malformed_tokens_are_rejected_without_printing_them() {
        let secret = "s3cr3t-value-s3cr3t";
        let cases = [
            (format!("dash:read:{READ},"), "entry 2 is empty"),
            ("dash:read".to_owned(), "not name:role:token"),
            (
                format!("dash:admin:{secret}"),
                "role must be read, operate or approve",
            ),
            ("dash:read:short".to_owned(), "the token is 5 bytes"),
            (format!(":read:{secret}"), "the name must be"),
            (format!("da sh:read:{secret}"), "the name must be"),
            (format!("dash:read:{secret} with spaces"), "may hold only"),
            (
                format!("dash:read:{secret},dash:operate:{OPERATE}"),
                "used twice",
            ),
            (
                format!("dash:read:{secret},ci:operate:{secret}"),
                "same token as dash",
            ),
            (
                format!("dash:read:{}", "x".repeat(513)),
                "must be 16 to 512",
            ),
        ];
        for (text, expected) in cases {
            let error = ApiTokens::parse(&text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(!error.contains(secret), "{error}");
        }
    }

    #[test]
    fn debug_never_prints_a_token() {
        let printed = format!("{:?}", tokens());
        assert!(!printed.contains(READ) && !printed.contains(OPERATE));
        assert!(printed.contains("dash") && printed.contains("[redacted]"));
    }

    #[test]
    fn authenticate_finds_the_token_and_only_it() {
        let tokens = tokens();
        assert_eq!(tokens.authenticate(READ.as_bytes()).unwrap().name, "dash");
        assert_eq!(tokens.authenticate(OPERATE.as_bytes()).unwrap().name, "ci");
        for wrong in [
            "",
            "read-token-012345678",
            "read-token-01234567890",
            "read-token-0123456788",
        ] {
            assert!(tokens.authenticate(wrong.as_bytes()).is_none(), "{wrong}");
        }
        assert!(ApiTokens::default().authenticate(b"").is_none());
    }

    #[test]
    fn approve_implies_operate_and_read_but_operate_does_not_approve() {
        assert!(Role::Approve.allows(Role::Read));
        assert!(Role::Approve.allows(Role::Operate));
        assert!(Role::Approve.allows(Role::Approve));
        assert!(!Role::Operate.allows(Role::Approve));
        assert!(!Role::Read.allows(Role::Approve));
        let tokens = ApiTokens::parse("oncall:approve:approve-token-0123456789").unwrap();
        assert_eq!(tokens.iter().next().unwrap().role, Role::Approve);
    }

    #[test]
    fn remediation_decisions_need_approve_and_their_reads_need_read() {
        let post = |route| required_access(&Method::POST, Some(route));
        for route in APPROVE_ROUTES {
            assert_eq!(post(route), Access::Role(Role::Approve), "{route}");
        }
        let get = |route| required_access(&Method::GET, Some(route));
        assert_eq!(get("/api/remediations"), Access::Role(Role::Read));
        assert_eq!(get("/api/remediations/stats"), Access::Role(Role::Read));
    }

    #[test]
    fn operate_implies_read() {
        assert!(Role::Operate.allows(Role::Read));
        assert!(Role::Operate.allows(Role::Operate));
        assert!(Role::Read.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Operate));
    }

    #[test]
    fn routes_are_open_read_or_operate() {
        let get = |route| required_access(&Method::GET, Some(route));
        let post = |route| required_access(&Method::POST, Some(route));
        assert_eq!(get("/healthz"), Access::Open);
        assert_eq!(get("/openapi.json"), Access::Open);
        assert_eq!(get("/"), Access::Open);
        assert_eq!(post("/"), Access::Role(Role::Operate));
        assert_eq!(post("/internal/datadog/webhook"), Access::Open);
        assert_eq!(get("/metrics"), Access::Role(Role::Read));
        assert_eq!(get("/ws"), Access::Role(Role::Read));
        assert_eq!(post("/api/copilot/ask"), Access::Role(Role::Operate));
        assert_eq!(
            required_access(&Method::DELETE, Some("/api/anything")),
            Access::Role(Role::Operate)
        );
        assert_eq!(required_access(&Method::GET, None), Access::Open);
    }

    #[test]
    fn exposure_rule() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let none = ApiTokens::default();
        assert_eq!(
            check_exposure(loopback, &none, false),
            Ok(Exposure::OpenOnLoopback)
        );
        assert_eq!(
            check_exposure("::1".parse().unwrap(), &none, false),
            Ok(Exposure::OpenOnLoopback)
        );
        assert_eq!(
            check_exposure(mapped, &none, false),
            Ok(Exposure::OpenOnLoopback)
        );
        assert_eq!(
            check_exposure(any, &none, false),
            Err(ExposureError { bind: any })
        );
        assert_eq!(check_exposure(any, &none, true), Ok(Exposure::InsecureOpen));
        assert_eq!(
            check_exposure(any, &tokens(), false),
            Ok(Exposure::Authenticated)
        );
        let message = ExposureError { bind: any }.to_string();
        assert!(message.contains("FIXLOOP_API_TOKENS") && message.contains("--insecure-no-auth"));
    }

    #[test]
    fn bucket_allows_the_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(
            RateLimit {
                per_minute: 10,
                burst: 5,
            },
            16,
        );
        let start = Instant::now();
        let key = || BucketKey::Token("ci".to_owned());
        for _ in 0..5 {
            limiter.acquire(key(), start).unwrap();
        }
        let wait = limiter.acquire(key(), start).unwrap_err();
        assert_eq!(retry_after_seconds(wait), 6, "10 a minute is one per 6 s");
        // Another caller has its own bucket.
        limiter
            .acquire(BucketKey::Token("dash".to_owned()), start)
            .unwrap();
        assert!(
            limiter
                .acquire(key(), start + Duration::from_secs(5))
                .is_err()
        );
        limiter
            .acquire(key(), start + Duration::from_secs(6))
            .unwrap();
        assert!(
            limiter
                .acquire(key(), start + Duration::from_secs(6))
                .is_err()
        );
        // A long pause refills only up to the burst.
        let later = start + Duration::from_secs(3600);
        for _ in 0..5 {
            limiter.acquire(key(), later).unwrap();
        }
        assert!(limiter.acquire(key(), later).is_err());
    }

    #[test]
    fn a_refund_gives_the_request_back() {
        let limiter = RateLimiter::new(
            RateLimit {
                per_minute: 1,
                burst: 1,
            },
            16,
        );
        let now = Instant::now();
        let key = BucketKey::Unknown;
        limiter.acquire(key.clone(), now).unwrap();
        assert!(limiter.acquire(key.clone(), now).is_err());
        limiter.refund(&key);
        limiter.acquire(key.clone(), now).unwrap();
        assert!(limiter.acquire(key, now).is_err());
    }

    #[test]
    fn many_addresses_neither_grow_the_map_nor_reset_a_bucket() {
        let limiter = RateLimiter::new(
            RateLimit {
                per_minute: 1,
                burst: 1,
            },
            8,
        );
        let now = Instant::now();
        let victim = BucketKey::address("10.0.0.1".parse().unwrap());
        limiter.acquire(victim.clone(), now).unwrap();
        for host in 0..10_000_u32 {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + host));
            let _ = limiter.acquire(BucketKey::address(address), now);
        }
        assert!(limiter.tracked() <= 8, "{}", limiter.tracked());
        assert!(
            limiter.acquire(victim.clone(), now).is_err(),
            "the flood did not reset the victim's empty bucket"
        );
        // Once the buckets have refilled, new callers get buckets of their own again.
        let later = now + Duration::from_secs(120);
        limiter
            .acquire(BucketKey::address("10.0.0.2".parse().unwrap()), later)
            .unwrap();
        assert!(limiter.tracked() <= 8);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a = BucketKey::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = BucketKey::address("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = BucketKey::address("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            BucketKey::address("::ffff:10.0.0.1".parse().unwrap()),
            BucketKey::address("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn redaction_hides_tokens_and_secrets_only() {
        let redact = |text: &str| redact_uri(&text.parse::<Uri>().unwrap());
        assert_eq!(
            redact("/ws?access_token=abc123&x=1"),
            "/ws?access_token=[redacted]&x=1"
        );
        assert_eq!(
            redact("/internal/datadog/webhook?secret=s3cr3t"),
            "/internal/datadog/webhook?secret=[redacted]"
        );
        assert_eq!(
            redact("/ws?access%5Ftoken=abc123&Access_Token=def"),
            "/ws?access%5Ftoken=[redacted]&Access_Token=[redacted]"
        );
        assert_eq!(redact("/api/status?verbose=1"), "/api/status?verbose=1");
        assert_eq!(redact("/api/status"), "/api/status");
        assert_eq!(redact("/ws?access_token"), "/ws?access_token=[redacted]");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(5_001)), 6);
        assert_eq!(retry_after_seconds(Duration::from_secs(6)), 6);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn constant_time_equal_compares_content_and_length() {
        let equal =
            |expected: &[u8], given: &[u8]| bool::from(constant_time_equal(expected, given));
        assert!(equal(b"abcdef", b"abcdef"));
        assert!(!equal(b"abcdef", b"abcdeg"));
        assert!(!equal(b"abc", b"abcdef"));
        assert!(!equal(b"abcdef", b"abc"));
        assert!(!equal(b"", b"a"));
        assert!(equal(b"", b""));
    }
}
