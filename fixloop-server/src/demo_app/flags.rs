//! The shop's feature flags and their admin endpoints: `GET /admin/flags` lists them, `POST /admin/flags/{name}`
//! with `{"enabled": bool}` switches one. This is what a remediation's safe action calls.
//!
//! One flag today, [`PAYMENT_PROVIDER`]: checkout charges through the external payment provider, the feature that
//! fails while the bug is on. Turned off, checkout confirms orders with the payment deferred, so checkout is
//! healthy again even with the bug on; turned on again, the bug shows again. Every flag starts on. The endpoints
//! are guarded like the bug switch: when FixLoop's API tokens are set, a `POST` needs one with the `operate` role.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{DemoState, enabled_in, error_response, unauthorized};

/// The flag of the external payment provider (the faulty payment feature).
pub const PAYMENT_PROVIDER: &str = "payment_provider";

/// Every flag: (name, what it switches).
pub const FLAGS: [(&str, &str); 1] = [(
    PAYMENT_PROVIDER,
    "checkout charges through the external payment provider; off: orders are confirmed with the payment deferred",
)];

/// The flags' switches, in the order of [`FLAGS`]; each holds whether the flag is *off* (so every flag starts on).
#[derive(Debug, Default)]
pub(super) struct Flags {
    off: [AtomicBool; FLAGS.len()],
}

impl Flags {
    /// Whether the flag `name` is on (`None`: no such flag).
    pub(super) fn enabled(&self, name: &str) -> Option<bool> {
        let index = FLAGS.iter().position(|(flag, _)| *flag == name)?;
        Some(!self.off[index].load(Ordering::SeqCst))
    }

    /// Switches the flag `name`; `false` when there is no such flag.
    pub(super) fn set(&self, name: &str, enabled: bool) -> bool {
        let Some(index) = FLAGS.iter().position(|(flag, _)| *flag == name) else {
            return false;
        };
        self.off[index].store(!enabled, Ordering::SeqCst);
        true
    }

    fn list(&self) -> Value {
        let flags: Vec<Value> = FLAGS
            .iter()
            .map(|(name, description)| {
                json!({"name": name, "enabled": self.enabled(name).unwrap_or(true), "description": description})
            })
            .collect();
        json!({ "flags": flags })
    }
}

/// `GET /admin/flags`.
pub(super) async fn list(State(state): State<DemoState>) -> Response {
    axum::Json(state.inner.flags.list()).into_response()
}

/// `POST /admin/flags/{name}` with `{"enabled": bool}`.
pub(super) async fn set(
    State(state): State<DemoState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = unauthorized(&state, &headers, "switching a feature flag") {
        return refused;
    }
    if state.inner.flags.enabled(&name).is_none() {
        let known: Vec<&str> = FLAGS.iter().map(|(flag, _)| *flag).collect();
        return error_response(
            StatusCode::NOT_FOUND,
            "unknown_flag",
            &format!(
                "there is no flag `{name}`; the flags are {}",
                known.join(", ")
            ),
            "unknown flag",
        );
    }
    let enabled = match enabled_in(&body) {
        Ok(enabled) => enabled,
        Err(refused) => return *refused,
    };
    state.inner.flags.set(&name, enabled);
    tracing::info!(flag = %name, enabled, "demo feature flag set");
    axum::Json(json!({"name": name, "enabled": enabled})).into_response()
}
