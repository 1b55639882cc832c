//! Every replica answers every REST call: a request this replica cannot answer because another replica leads the
//! service it is about is forwarded to that leader, once.
//!
//! The request is answered here first. When the answer is 503 (this replica leads none of the services: each
//! answers that it is unavailable here) or 404 for an incident, run or service this replica does not know (it may
//! belong to a service led elsewhere), and the caller is not itself a forwarding replica, the same request (method,
//! path and query, body, the caller's `Authorization` and `Content-Type`) is sent to each other live replica that
//! leads a service, with a hop header so it is never forwarded again, and the first answer that is neither 404 nor
//! 503 is returned unchanged (status, body, `Content-Type`). Only URLs of the replicas table are fetched. No leader,
//! or no leader answering: 503 `unavailable`, saying so. A request that failed here changed nothing here, so
//! replaying it at the leader acts once. Whole-system reads ([`crate::http::merge::MERGED_READS`]) are not forwarded:
//! they ask every leader for its part and merge ([`crate::http::merge`]).

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fixloop_contract::codes;

use crate::http::AppState;
use crate::http::error::ApiError;

/// The hop header: set on a forwarded request (its value is the forwarding replica's id), never forwarded again.
pub const FORWARDED_HEADER: &str = "x-fixloop-forwarded-by";

/// How long a forwarded request may take at the leader.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The 404 codes a leader elsewhere may answer differently.
const NOT_HERE: [&str; 3] = [
    codes::INCIDENT_NOT_FOUND,
    codes::RUN_NOT_FOUND,
    codes::SERVICE_NOT_FOUND,
];

/// The middleware (see the module docs).
pub(in crate::http) async fn forward_to_leader(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(directory) = state.replicas.clone() else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    // Whole-system reads ask every leader themselves and merge (crate::http::merge).
    let merged = request.method() == axum::http::Method::GET
        && crate::http::merge::MERGED_READS.contains(&path);
    let forwardable = path.starts_with("/api/")
        && !path.starts_with("/api/replicas")
        && !path.starts_with("/api/admin/")
        && !path.starts_with("/api/ci/")
        && !request.headers().contains_key(FORWARDED_HEADER)
        && !merged;
    if !forwardable {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, state.settings.max_body_bytes).await else {
        return ApiError::PayloadTooLarge(state.settings.max_body_bytes).into_response();
    };
    let local = next
        .run(Request::from_parts(
            parts.clone(),
            Body::from(bytes.clone()),
        ))
        .await;
    let (local, not_here) = not_answered_here(local).await;
    if !not_here {
        return local;
    }
    let leaders = match directory.leaders_elsewhere().await {
        Ok(leaders) => leaders,
        Err(error) => {
            tracing::warn!(%error, "the leaders cannot be read; answering from here");
            return local;
        }
    };
    let status = local.status();
    let mut answered_elsewhere = None;
    for leader in &leaders {
        let url = &leader.url;
        match forward(&state, directory.replica(), url, &parts, bytes.clone()).await {
            Ok(response) => {
                let (response, not_there) = not_answered_here(response).await;
                if !not_there {
                    return response;
                }
                answered_elsewhere = Some(response);
            }
            Err(error) => {
                tracing::warn!(leader = %url, %error, "a forwarded request failed");
            }
        }
    }
    if status == StatusCode::SERVICE_UNAVAILABLE && answered_elsewhere.is_none() {
        return ApiError::NotLedHere(if leaders.is_empty() {
            "no replica leads this service right now (a takeover takes up to the lease time): try again"
        } else {
            "the replica leading this service did not answer: try again"
        })
        .into_response();
    }
    answered_elsewhere.unwrap_or(local)
}

/// `response` (its body buffered when it had to be read) and whether it says "not here": 503, or 404 with one of
/// [`NOT_HERE`]'s codes.
async fn not_answered_here(response: Response) -> (Response, bool) {
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return (response, true);
    }
    if status != StatusCode::NOT_FOUND {
        return (response, false);
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let code = serde_json::from_slice::<fixloop_contract::ErrorBody>(&bytes)
        .map(|error| error.code)
        .unwrap_or_default();
    let not_here = NOT_HERE.contains(&code.as_str());
    (Response::from_parts(parts, Body::from(bytes)), not_here)
}

/// Sends the request to `url`, the leader's advertised URL, and returns its answer as it is.
async fn forward(
    state: &AppState,
    replica: &str,
    url: &str,
    parts: &axum::http::request::Parts,
    body: Bytes,
) -> Result<Response, reqwest::Error> {
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |path| path.as_str());
    let mut call = state
        .http
        .request(parts.method.clone(), format!("{url}{path}"))
        .timeout(FORWARD_TIMEOUT)
        .header(FORWARDED_HEADER, replica)
        .body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(value) = parts.headers.get(&name) {
            call = call.header(name, value.clone());
        }
    }
    let answer = call.send().await?;
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = answer.bytes().await?;
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}
