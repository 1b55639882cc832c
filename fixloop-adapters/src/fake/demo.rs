//! [`DemoModel`]: an in-memory model of the demo service's endpoints, so the fake test runner can produce real
//! verdicts (the core's evaluator applied to simulated responses) for any plan, including LLM-written ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fixloop_contract::serde_json::{Value, json};
use fixloop_contract::{HttpMethod, Target};
use fixloop_core::Observation;

use crate::url_path;

/// Simulated latency of every response, in milliseconds.
const LATENCY_MS: u64 = 15;

/// The SKUs the demo catalog sells.
const PRODUCTS: [&str; 3] = ["sku-1", "sku-2", "sku-3"];

/// The demo service (fixloop-server's `demo_app`) as a pure function of a request and two flags: `bug` (checkout fails with a 500) and `down`
/// (every request fails to connect).
///
/// | request | answer |
/// | --- | --- |
/// | `GET /health` | 200 `{"status":"ok"}` |
/// | `GET /catalog` | 200 `{"products":[{"sku":"sku-1",…}]}` |
/// | `GET /auth/me` with `Authorization: Bearer demo-token` | 200 `{"user":"demo"}`, else 401 |
/// | `POST /checkout` with the bug on | 500 `{"error":"internal_error","message":"payment provider timeout"}` |
/// | `POST /checkout` with a known `sku` and `quantity` in `1..=100` | 200 `{"status":"confirmed","order_id":…}` |
/// | `POST /checkout` otherwise | 422 `{"error":"invalid_order"}` |
/// | anything else | 404 |
#[derive(Debug, Default)]
pub struct DemoModel {
    bug: Arc<AtomicBool>,
    down: AtomicBool,
}

impl DemoModel {
    /// A healthy, reachable service.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A service whose bug is the shared `flag` (for example the server's demo bug switch).
    #[must_use]
    pub fn with_bug_flag(flag: Arc<AtomicBool>) -> Self {
        Self {
            bug: flag,
            down: AtomicBool::new(false),
        }
    }

    /// Turns the checkout bug on or off.
    pub fn set_bug(&self, enabled: bool) {
        self.bug.store(enabled, Ordering::SeqCst);
    }

    /// Makes the service unreachable (every request fails with `connection refused`) or reachable again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The response to `target`, or the transport failure (`request failed: connection refused`).
    ///
    /// # Errors
    ///
    /// The failure's one-line description when the service is down.
    pub fn respond(&self, target: &Target) -> Result<Observation, String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("request failed: connection refused".to_owned());
        }
        let path = url_path(&target.url);
        let path = path.split('?').next().unwrap_or_default();
        let (status, body) = match (target.method, path) {
            (HttpMethod::Get, "/health") => (200, json!({"status": "ok"})),
            (HttpMethod::Get, "/catalog") => (
                200,
                json!({"products": [
                    {"sku": "sku-1", "name": "Espresso beans, 1 kg", "price_cents": 1299},
                    {"sku": "sku-2", "name": "Ceramic pour-over dripper", "price_cents": 2450},
                    {"sku": "sku-3", "name": "Paper filters, pack of 100", "price_cents": 599}
                ]}),
            ),
            (HttpMethod::Get, "/auth/me") => {
                let authorized = target.headers.iter().any(|(name, value)| {
                    name.eq_ignore_ascii_case("authorization")
                        && value
                            .strip_prefix("Bearer ")
                            .is_some_and(|token| token.trim() == "demo-token")
                });
                if authorized {
                    (200, json!({"user": "demo"}))
                } else {
                    (
                        401,
                        json!({"error": "unauthorized", "message": "a valid bearer token is required"}),
                    )
                }
            }
            (HttpMethod::Post, "/checkout") => {
                let known_sku = target
                    .body_json
                    .get("sku")
                    .and_then(Value::as_str)
                    .is_some_and(|sku| PRODUCTS.contains(&sku));
                let quantity_ok = target
                    .body_json
                    .get("quantity")
                    .and_then(Value::as_u64)
                    .is_some_and(|quantity| (1..=100).contains(&quantity));
                if self.bug.load(Ordering::SeqCst) {
                    (
                        500,
                        json!({"error": "internal_error", "message": "payment provider timeout"}),
                    )
                } else if known_sku && quantity_ok {
                    (200, json!({"status": "confirmed", "order_id": "ord-1"}))
                } else {
                    (
                        422,
                        json!({"error": "invalid_order", "message": "invalid order"}),
                    )
                }
            }
            _ => (404, json!({"error": "not_found"})),
        };
        Ok(Observation {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string(),
            latency_ms: LATENCY_MS,
        })
    }
}
