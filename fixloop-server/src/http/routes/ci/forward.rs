//! Forwarding an intake to the one configured downstream (`FIXLOOP_CI_FORWARD_URL`, with
//! `FIXLOOP_CI_FORWARD_TOKEN` as its bearer token): a `POST` of the intake's document, no redirects followed (the
//! configured URL is the whole allowlist), a timeout over the whole exchange, and the answer read up to
//! [`MAX_UPSTREAM_BODY_BYTES`]. Whatever happens becomes a `CiUpstream`: the downstream's status and JSON object,
//! or an `error` sentence; forwarding never fails the intake.

use std::time::Duration;

use fixloop_adapters::Secret;
use fixloop_contract::CiUpstream;

/// The default time the downstream has to answer, connection included.
pub const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes of the downstream's answer that are read.
pub const MAX_UPSTREAM_BODY_BYTES: usize = 16 * 1024;

/// The configured downstream.
#[derive(Debug, Clone)]
pub struct CiForward {
    url: reqwest::Url,
    token: Option<Secret>,
    timeout: Duration,
    client: reqwest::Client,
}

impl CiForward {
    /// A downstream at `url` (an absolute http or https URL), called with `token` as its bearer token, answering
    /// within `timeout`.
    ///
    /// # Errors
    ///
    /// A sentence when `url` is not an http(s) URL with a host, or the HTTP client cannot be built.
    pub fn new(url: &str, token: Option<Secret>, timeout: Duration) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|error| format!("not a URL: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err("expected an http or https URL with a host".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            // The token goes in FIXLOOP_CI_FORWARD_TOKEN, so no secret ever sits in a URL that errors may print.
            return Err(
                "the URL carries credentials: put the token in FIXLOOP_CI_FORWARD_TOKEN".to_owned(),
            );
        }
        let client = fixloop_adapters::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
        Ok(Self {
            url,
            token,
            timeout,
            client,
        })
    }

    /// The configured URL.
    #[must_use]
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// Posts `document` and reports the answer, or why there is none.
    pub(super) async fn send(&self, document: &serde_json::Value) -> CiUpstream {
        let failed = |error: String| CiUpstream {
            status: None,
            body: None,
            error: Some(error),
        };
        // One deadline over the whole exchange, the body's reading included.
        match tokio::time::timeout(self.timeout, self.exchange(document)).await {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(error)) => {
                tracing::warn!(url = %self.url, %error, "CI forward failed");
                failed(error)
            }
            Err(_) => {
                let error = format!(
                    "the downstream did not answer within {} s",
                    self.timeout.as_secs_f64()
                );
                tracing::warn!(url = %self.url, %error, "CI forward failed");
                failed(error)
            }
        }
    }

    async fn exchange(&self, document: &serde_json::Value) -> Result<CiUpstream, String> {
        let mut request = self.client.post(self.url.clone()).json(document);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let mut response = request.send().await.map_err(|error| describe(&error))?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| describe(&error))? {
            if bytes.len() + chunk.len() > MAX_UPSTREAM_BODY_BYTES {
                return Ok(CiUpstream {
                    status: Some(status),
                    body: None,
                    error: Some(format!(
                        "the downstream's answer is larger than {MAX_UPSTREAM_BODY_BYTES} bytes: not read"
                    )),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .filter(serde_json::Value::is_object);
        Ok(CiUpstream {
            status: Some(status),
            body,
            error: None,
        })
    }
}

/// A reqwest error in a sentence that names no secret (the URL is the configured one, without a token).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "the downstream did not answer in time".to_owned()
    } else if error.is_connect() {
        "cannot connect to the downstream".to_owned()
    } else {
        format!("the exchange with the downstream failed: {error}")
    }
}
