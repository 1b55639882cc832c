//! The routes of the API, each file with its handlers and the `routes()` that mounts them.

pub mod admin;
pub mod ci;
pub mod copilot;
pub mod incidents;
pub mod remediation;
pub mod replicas;
pub mod runs;
pub mod services;
pub mod status;
pub mod webhooks;
pub mod ws;
