//! Integration tests of fixloop-server (one binary): the API in-process over fake ports, the demo service, the
//! WebSocket hub, and a real-socket end-to-end run of `fixloop demo`.

mod api;
mod demo_app;
mod e2e;
mod start;
mod support;
mod webhooks;
mod ws;
