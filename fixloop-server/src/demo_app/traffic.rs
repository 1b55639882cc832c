//! The built-in traffic generator of `fixloop demo`: realistic requests to the demo service so there is a signal.
//!
//! It sends a fixed, repeating mix (health checks, catalogue reads, valid checkouts, an occasional invalid
//! checkout, authenticated and unauthenticated `/auth/me`) at a steady rate, one request at a time, each bounded by
//! a timeout, until it is told to stop. The mix is deterministic: no randomness is needed for a useful signal.

use std::future::Future;
use std::time::Duration;

use serde_json::json;
use tokio::time::MissedTickBehavior;

/// How the generator behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficConfig {
    /// Base URL of the demo service, without a trailing slash.
    pub base_url: String,
    /// Requests per second (default 15).
    pub requests_per_second: u32,
    /// Timeout of each request (default 2 s).
    pub request_timeout: Duration,
}

impl TrafficConfig {
    /// The default mix at 15 requests per second against `base_url`.
    #[must_use]
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            requests_per_second: 15,
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// One request of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Health,
    Catalog,
    Checkout(&'static str, u64),
    InvalidCheckout,
    AuthMe { with_token: bool },
}

/// The repeating mix: 20 requests, 8 of which are valid checkouts (so the bug moves the error rate a lot).
const MIX: [Step; 20] = [
    Step::Health,
    Step::Catalog,
    Step::Checkout("sku-1", 1),
    Step::Catalog,
    Step::Checkout("sku-2", 2),
    Step::AuthMe { with_token: true },
    Step::Checkout("sku-3", 1),
    Step::Health,
    Step::Catalog,
    Step::Checkout("sku-1", 3),
    Step::Catalog,
    Step::Checkout("sku-2", 1),
    Step::AuthMe { with_token: true },
    Step::Checkout("sku-3", 5),
    Step::InvalidCheckout,
    Step::Catalog,
    Step::Checkout("sku-1", 1),
    Step::AuthMe { with_token: false },
    Step::Health,
    Step::Checkout("sku-2", 1),
];

/// Sends the mix to the demo service until `shutdown` resolves. Failed requests are logged at debug level and
/// otherwise ignored (the service being down is a signal, not an error of the generator).
pub async fn run(
    client: reqwest::Client,
    config: TrafficConfig,
    shutdown: impl Future<Output = ()>,
) {
    let period = Duration::from_secs(1) / config.requests_per_second.max(1);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut steps = MIX.iter().cycle();
    tracing::info!(base_url = %config.base_url, rate = config.requests_per_second, "traffic generator started");
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        let Some(step) = steps.next() else { break };
        tokio::select! {
            () = &mut shutdown => break,
            () = send(&client, &config, *step) => {}
        }
    }
    tracing::info!("traffic generator stopped");
}

async fn send(client: &reqwest::Client, config: &TrafficConfig, step: Step) {
    let base = &config.base_url;
    let request = match step {
        Step::Health => client.get(format!("{base}/health")),
        Step::Catalog => client.get(format!("{base}/catalog")),
        Step::Checkout(sku, quantity) => client
            .post(format!("{base}/checkout"))
            .json(&json!({"sku": sku, "quantity": quantity})),
        Step::InvalidCheckout => client
            .post(format!("{base}/checkout"))
            .json(&json!({"sku": "sku-1", "quantity": 0})),
        Step::AuthMe { with_token } => {
            let request = client.get(format!("{base}/auth/me"));
            if with_token {
                request.bearer_auth(super::DEMO_TOKEN)
            } else {
                request
            }
        }
    };
    if let Err(error) = request.timeout(config.request_timeout).send().await {
        tracing::debug!(%error, "traffic generator request failed");
    }
}
