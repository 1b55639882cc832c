//! Deliberately broken servers: a reverse proxy (axum + reqwest + tokio-tungstenite) in front of a correct server
//! that applies one [`Mutation`] to what the server says, over REST and WebSocket. Each mutation must be caught by
//! a named case of the suite.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

/// One way to break a correct server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mutation {
    /// Renames an object key everywhere (`error_rate_5m` → `error_rate`).
    RenameKey {
        /// The key to rename.
        from: &'static str,
        /// Its new name.
        to: &'static str,
    },
    /// Replaces a string value everywhere (`HEALTHY` → `OK`).
    EnumValue {
        /// The value to replace.
        from: &'static str,
        /// Its replacement.
        to: &'static str,
    },
    /// Drops every WebSocket message of this type.
    DropWsType(&'static str),
    /// Answers a request whose body is not JSON with a 500.
    MalformedJson500,
    /// Strips the timezone from every RFC 3339 timestamp.
    NaiveTimestamps,
    /// Cuts every five-item plan to four items.
    FourItemPlan,
}

/// A running proxy; stops when dropped.
pub(crate) type MutantProxy = super::LoopbackServer;

#[derive(Clone)]
struct Proxy {
    upstream: String,
    mutation: Mutation,
    client: reqwest::Client,
}

/// Starts a proxy to `upstream` (`http://host:port`) applying `mutation`.
pub(crate) async fn start(upstream: &str, mutation: Mutation) -> MutantProxy {
    let proxy = Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        mutation,
        // A fresh connection per request: a server that refused an oversized body closes its connection, and a
        // pooled client would send the next case's request into that dead connection (a 502 of the proxy's own).
        client: fixloop_adapters::client_builder()
            .timeout(std::time::Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()
            .expect("reqwest client"),
    };
    let router = Router::new()
        .route("/ws", get(ws))
        .fallback(forward)
        .with_state(proxy);
    super::serve_on_loopback(router).await
}

/// Bodies above this are refused by every server the tests proxy (FixLoop's and the scripted server's limit is
/// 64 KiB).
const OVERSIZED_FALLBACK_BYTES: usize = 64 * 1024;

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "proxy limit").into_response();
    };
    if proxy.mutation == Mutation::MalformedJson500
        && !bytes.is_empty()
        && serde_json::from_slice::<Value>(&bytes).is_err()
    {
        let body = json!({"code": "internal", "message": "internal error; see the server log", "details": []});
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
    }
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut upstream = proxy
        .client
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream));
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        upstream = upstream.header(header::CONTENT_TYPE, content_type.clone());
    }
    let oversized = bytes.len() > OVERSIZED_FALLBACK_BYTES;
    let reply = match upstream.body(bytes).send().await {
        Ok(reply) => reply,
        // A server refuses an oversized body by answering 413 and closing the connection before reading it all;
        // under load the client can see the reset before the answer (a race of the proxy's own upstream leg,
        // not of the server under test), so the proxy reports the refusal as the server did.
        Err(_) if oversized => {
            let body = json!({"code": "payload_too_large", "message": "the request body is too large", "details": []});
            return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response();
        }
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let status = reply.status();
    let content_type = reply.headers().get(header::CONTENT_TYPE).cloned();
    let bytes: Bytes = reply.bytes().await.unwrap_or_default();
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut value) => {
            mutate(proxy.mutation, &mut value);
            Bytes::from(value.to_string())
        }
        Err(_) => bytes,
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    } else {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

async fn ws(
    State(proxy): State<Proxy>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: Request,
) -> Response {
    match upgrade {
        Ok(upgrade) => upgrade.on_upgrade(move |socket| relay(proxy, socket)),
        // Not an upgrade: let the upstream answer it.
        Err(_) => forward(State(proxy), request).await,
    }
}

async fn relay(proxy: Proxy, mut client: WebSocket) {
    let url = format!("{}/ws", proxy.upstream.replacen("http://", "ws://", 1));
    let Ok((mut upstream, _)) = tokio_tungstenite::connect_async(url).await else {
        return;
    };
    loop {
        tokio::select! {
            message = upstream.next() => {
                let Some(Ok(message)) = message else { break };
                let tungstenite::Message::Text(text) = message else { continue };
                let mut value: Value = match serde_json::from_str(text.as_str()) {
                    Ok(value) => value,
                    Err(_) => continue,
                };
                if let Mutation::DropWsType(kind) = proxy.mutation
                    && value["type"] == kind
                {
                    continue;
                }
                mutate(proxy.mutation, &mut value);
                if client.send(Message::Text(value.to_string().into())).await.is_err() {
                    break;
                }
            }
            incoming = client.recv() => match incoming {
                Some(Ok(_)) => continue,
                _ => break,
            },
        }
    }
    let _ = upstream.close(None).await;
}

/// Applies a mutation to a JSON document, recursively.
pub(crate) fn mutate(mutation: Mutation, value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Mutation::RenameKey { from, to } = mutation
                && let Some(moved) = object.remove(from)
            {
                object.insert(to.to_owned(), moved);
            }
            if mutation == Mutation::FourItemPlan
                && object.contains_key("plan_id")
                && let Some(Value::Array(items)) = object.get_mut("items")
                && items.len() == 5
            {
                items.truncate(4);
            }
            for child in object.values_mut() {
                mutate(mutation, child);
            }
        }
        Value::Array(items) => {
            for item in items {
                mutate(mutation, item);
            }
        }
        Value::String(text) => match mutation {
            Mutation::EnumValue { from, to } if text == from => *text = to.to_owned(),
            Mutation::NaiveTimestamps if chrono::DateTime::parse_from_rfc3339(text).is_ok() => {
                let cut = if text.ends_with('Z') || text.ends_with('z') {
                    1
                } else {
                    6
                };
                text.truncate(text.len() - cut);
            }
            _ => {}
        },
        _ => {}
    }
}
