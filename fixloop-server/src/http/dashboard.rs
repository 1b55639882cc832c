//! The dashboard: `GET /` and its assets under `/dashboard/`, embedded in the binary (no Node.js, no network, no
//! files at run time).
//!
//! The page is plain HTML, CSS and ES modules compiled from TypeScript (`fixloop-server/dashboard/src`, against
//! the generated contract types); the compiled JavaScript is committed, and CI rebuilds it and fails on a
//! difference. It talks to the same API as any client: the `/ws` stream (join snapshot first) and the REST
//! operations, with `Authorization: Bearer <token>` once the API asks for one.
//!
//! Every response carries a Content-Security-Policy that allows scripts only from this origin (no inline script,
//! no `eval`), `x-content-type-options: nosniff`, and `cache-control: no-cache` with an `ETag`, so a browser
//! revalidates and always runs the assets of the binary it talks to (a 304 costs one round trip).

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::error::ApiError;

/// The Content-Security-Policy of every dashboard response: scripts, styles and images from this origin only,
/// fetches and WebSockets to this origin only, no inline script or `eval`, no framing, no `<base>`, no forms.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The `cache-control` of every dashboard response: the browser may keep a copy but revalidates it (`ETag`).
pub const CACHE_CONTROL: &str = "no-cache";

/// One embedded file.
#[derive(Debug)]
struct Asset {
    /// Its name under `/dashboard/` (the page itself is `index.html`, served at `/`).
    name: &'static str,
    /// Its `content-type`.
    content_type: &'static str,
    /// Its bytes.
    body: &'static str,
}

/// The embedded files. The JavaScript is the committed output of `tsc` (`fixloop-server/dashboard/build.mjs`).
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../dashboard/assets/index.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../dashboard/assets/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../dashboard/assets/app.js"),
    },
    Asset {
        name: "model.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../dashboard/assets/model.js"),
    },
    Asset {
        name: "view.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../dashboard/assets/view.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../dashboard/assets/icon.svg"),
    },
];

/// Each asset's strong `ETag`: a hash of its bytes, computed once.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let tag = format!("\"{:016x}\"", fnv1a(asset.body.as_bytes()));
            // Hex digits between quotes are always a valid header value.
            HeaderValue::from_str(&tag).expect("a quoted hex string is a valid header value")
        })
        .collect()
});

/// The dashboard's routes (`GET /`, `GET /dashboard/{file}`), for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard/{file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    // `index.html` is served at `/` only, so the page has one address.
    match ASSETS
        .iter()
        .position(|asset| asset.name == file && asset.name != "index.html")
    {
        Some(index) => Ok(serve(index, &headers)),
        None => Err(ApiError::RouteNotFound(format!(
            "/dashboard/{}",
            file.chars().take(100).collect::<String>()
        ))),
    }
}

fn serve(index: usize, request: &HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let etag = ETAGS[index].clone();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == "*" || tag.trim() == etag)
        });
    let headers = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
        (header::ETAG, etag),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (
        headers,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}

/// 64-bit FNV-1a: a stable content hash for the `ETag` (not a security property: it only names a version).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_embedded() {
        let page = ASSETS[0].body;
        for asset in &ASSETS[1..] {
            let referenced = page.contains(&format!("/dashboard/{}", asset.name))
                || ASSETS
                    .iter()
                    .any(|other| other.body.contains(&format!("./{}", asset.name)));
            assert!(
                referenced,
                "{} is embedded but nothing loads it",
                asset.name
            );
        }
    }

    #[test]
    fn no_inline_script_in_the_page() {
        let page = ASSETS[0].body;
        for (at, _) in page.match_indices("<script") {
            let tag = &page[at..page[at..].find('>').map_or(page.len(), |end| at + end)];
            assert!(tag.contains("src="), "inline script at byte {at}: {tag}");
        }
        for handler in ["onclick=", "onload=", "onerror=", "onsubmit=", "oninput="] {
            assert!(!page.contains(handler), "inline event handler {handler}");
        }
    }
}
