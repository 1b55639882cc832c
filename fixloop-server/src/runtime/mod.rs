//! The runtime: the services a process watches and the drivers that run their engines, with no HTTP inside.
//!
//! - [`supervisor`]: [`supervisor::Supervisor`] owns the running services' drivers, and starts and stops them.
//! - [`reload`]: the supervisor's task, which brings the running services in line with a reloaded profile.
//! - [`handle`]: [`ServiceHandle`], how the rest of the process asks a driver something (typed ids, one
//!   [`Error`]).
//! - [`driver`]: the one task per service that owns the core's engine, carries out its effects through the ports
//!   and journals its inputs.
//! - [`stream`]: the WebSocket event stream as data (hub, sequence, resume, the merge of several services' queues);
//!   the socket itself is the HTTP layer's.
//! - [`services`]: the watched services and the rules that turn several of them into the contract's single answers.
//! - [`ports`]: the ports of a service, built from its profile and the configuration.
//! - [`tuning`]: the one place where configuration overrides reach the engine's `Config`.
//! - [`metrics`]: the process's counters, rendered in the Prometheus text format.
//! - [`remediation`]: remediation across services: proposals, decisions, figures and the global kill switch.
//! - [`outbox`]: the notifications outbox: drivers enqueue, one delivery worker per sink sends, in order, with
//!   retries, across restarts.
//! - [`wire`]: conversions between the adapters' readings and the core's inputs.
//!
//! Invariant: nothing here knows HTTP (no web framework, no status codes, no API error type); the HTTP layer
//! talks to the runtime through its handles, never the reverse.

pub mod driver;
mod error;
pub mod executors;
pub mod handle;
pub mod metrics;
pub mod outbox;
pub mod ports;
pub mod reload;
pub mod remediation;
pub mod replicas;
pub mod services;
pub mod stream;
pub mod supervisor;
pub mod tuning;
pub mod wire;

pub use error::Error;
pub use handle::ServiceHandle;
