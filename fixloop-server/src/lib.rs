//! The reference FixLoop server: the runtime that owns the core, the HTTP API of the contract over it, the demo
//! service it watches, and the library behind the `fixloop` binary.
//!
//! The crate is grouped by role:
//! - [`runtime`] runs the watched services, with no HTTP inside: the [`runtime::supervisor::Supervisor`] starts and
//!   stops one [`runtime::driver::Driver`] per service (the one task that owns the sans-IO
//!   [`fixloop_core::engine::Engine`]: it feeds inputs, drains effects, runs port calls in a `JoinSet` and publishes
//!   WebSocket events through its [`runtime::stream::Hub`]); everything else asks a driver through its
//!   [`runtime::ServiceHandle`] (typed ids, one [`runtime::Error`]).
//! - [`http`] is the API over the runtime: [`http::router`] serves the seven REST operations and `GET /ws` of
//!   `openapi.yaml`, the alert webhooks, `GET /openapi.json`, `GET /healthz` and `GET /metrics`
//!   ([`http::routes`], each route beside its handler), and the dashboard at `GET /` ([`http::dashboard`]);
//!   [`http::auth`] checks bearer tokens and roles, rate-limits the copilot and the operate routes, and keeps tokens
//!   out of the logs; [`http::guard`] checks `Host` and `Origin`, keeps connections usable after early answers and
//!   counts refusals; [`http::listener`] caps connections and closes idle, slow and dead ones.
//! - [`copilot`] asks the copilot (budget, grounded fallback, the safety rule once) and gives its tools live,
//!   read-only data about a service's incident ([`copilot::tools`]).
//! - [`demo_app`] is the service the demo watches (a shop with a bug switch and Prometheus metrics).
//! - [`app`] starts and stops all of it in-process: [`start_demo`], [`start_serve`], [`start_demo_app`].
//! - [`scenario`] plays scripted incident timelines over fake ports (`fixloop demo --scenario`): [`start_scenario`].
//! - [`config::Config`] is the configuration, read from a map of environment variables the binary hands in (pure,
//!   validated, secrets redacted); [`profile`] parses and checks service profiles.
//! - [`replay`] feeds a journal through the engine offline and explains every decision (`fixloop replay`).
//! - [`verify`] is the post-deploy verification gate for CI (`fixloop verify`): the plan once, the signal gate held,
//!   one outcome and exit code, JSON, JUnit and HTML reports.
//!
//! What this crate deliberately does not do: it makes no decision about incidents (the core does), holds no vendor
//! protocol (the adapters do), and reads no environment variable: the binary's `cli` does.
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
pub mod verify;

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
