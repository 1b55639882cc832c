//! Integration tests of fixloop-server (one binary): the API in-process over fake ports, the demo service, the
//! WebSocket hub, `fixloop profile init`'s network helpers, the `fixloop` binary's profile and plan commands, and a
//! real-socket end-to-end run of `fixloop demo`.

mod api;
mod cli;
mod demo_app;
mod e2e;
mod profile_init;
mod start;
mod support;
mod webhooks;
mod ws;
