//! Integration tests of fixloop-adapters: the shared port contract suites (run against the fakes and the real
//! adapters on stub servers) and per-adapter wiremock tests of the vendor adapters.

mod ci_providers;
mod contract;
mod copilot_safety;
mod copilot_topics;
mod datadog;
mod datadog_mcp;
mod embedded;
mod executors;
mod executors_docker;
mod fakes;
mod http_runner;
mod mcp;
mod mcp_fakes;
mod minimax;
mod minimax_chooser;
mod minimax_ci;
mod notifiers;
mod pg;
mod prometheus;
mod scrape;
mod scrape_conventions;
#[path = "../../../fixloop-core/tests/fixtures/shop.rs"]
mod shop;
mod store_ci_index;
mod store_events;
mod store_fencing;
mod store_files;
mod store_postgres;
mod store_retention;
mod store_thread;
mod synthetic;
mod testsprite;
