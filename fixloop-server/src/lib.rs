//! The reference FixLoop server: the axum router of the contract, the driver that owns the core, the demo service
//! it watches, and the library behind the `fixloop` binary.
//!
//! - [`api::router`] serves the seven REST operations and `GET /ws` of `openapi.yaml`, the alert webhooks,
//!   `GET /openapi.json`, `GET /healthz` and `GET /metrics`; its handlers talk to the driver, and the copilot's
//!   handler to the copilot port too, whose look-ups ([`copilot_tools`]) read the driver and the service's ports.
//! - [`dashboard`] serves the dashboard at `GET /`, embedded in the binary.
//! - [`driver::Driver`] is the one task that owns the sans-IO [`fixloop_core::engine::Engine`]: it feeds inputs,
//!   drains effects, runs port calls in a `JoinSet` and publishes WebSocket events through the [`ws::Hub`].
//! - [`demo_app`] is the service the demo watches (a shop with a bug switch and Prometheus metrics).
//! - [`app`] starts and stops all of it in-process: [`start_demo`], [`start_serve`], [`start_demo_app`].
//! - [`scenario`] plays scripted incident timelines over fake ports (`fixloop demo --scenario`): [`start_scenario`].
//! - [`config::Config`] reads the environment (pure, validated, secrets redacted).
//! - [`replay`] feeds a journal through the engine offline and explains every decision (`fixloop replay`).
//! - [`copilot_tools`] gives the copilot's tools live, read-only data about a service's incident.
//! - [`auth`] checks bearer tokens and roles, rate-limits the copilot and the operate routes, and keeps tokens out
//!   of the logs; [`guard`] checks `Host` and `Origin`, keeps connections usable after early answers and counts
//!   refusals; [`listener`] caps connections and closes idle, slow and dead ones.
//!
//! What this crate deliberately does not do: it makes no decision about incidents (the core does), holds no vendor
//! protocol (the adapters do), and reads no environment variable outside `main`.
//!
//! ```no_run
//! # async fn example() -> Result<(), fixloop_server::StartError> {
//! let demo = fixloop_server::start_demo(fixloop_server::DemoOptions::ephemeral()).await?;
//! println!("dashboard backend at {}, demo service at {}", demo.orchestrator_url, demo.demo_url);
//! demo.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod config;
pub mod copilot;
pub mod demo_app;
pub mod http;
pub mod profile;
pub mod replay;
pub mod runtime;
pub mod scenario;

pub use app::{
    DemoOptions, Mode, RunningDemo, RunningDemoApp, RunningServer, ServeOptions, StartError,
    start_demo, start_demo_app, start_serve,
};
pub use config::{Config, ConfigError};
/// `fixloop_server::error`, the API's error type and body extractor, as the conformance tests name it.
pub use http::error;
pub use http::error::ApiError;
pub use http::{ApiSettings, AppState, router};
pub use runtime::driver::{Driver, DriverConfig, Ports};
pub use runtime::{Error as RuntimeError, ServiceHandle};
pub use scenario::{RunningScenario, Scenario, ScenarioOptions, Speed, start_scenario};
