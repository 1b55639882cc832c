//! Integration tests of fixloop-server (one binary): the API in-process over fake ports, its authentication and
//! rate limit (`auth`), the demo service, the WebSocket hub and its resume (`ws_resume`), `fixloop profile init`'s network helpers, the `fixloop` binary's profile and plan commands, a
//! real-socket end-to-end run of `fixloop demo`, a service FixLoop has never heard of, watched from a profile alone
//! (`inventory`, `watch_any`), the same service read from a stub of Datadog (`datadog_mode`) and through Debian's
//! real Prometheus and Alertmanager (`observability`), services in four metrics conventions onboarded from their
//! document's URL alone (`onboarding`), restarts of the real binary on the same data directory (`restart`), the
//! engine's own polling through the driver (`polling`), `fixloop replay` of a demo's journal (`replay`), every built-in
//! scenario of `fixloop demo --scenario` played over a real socket (`scenario`), and the dashboard's HTTP side
//! (`dashboard`), the findings of an outside attack replayed against the binary (`red_team`, and for the store
//! `red_team_store`: damaged stores, a full disk on a tmpfs, an alert storm), the binary started through one helper
//! (`binary`), and `fixloop verify` against the demo shop run as a real process, one test per exit code, and its reports (`verify`), and the workspace-wide tidy rules (`tidy`: no HTTP in the server's runtime, the environment read by
//! `main`/`cli` only, no source over 800 lines, no silenced `too_many_arguments`).

mod action_claims;
mod api;
mod auth;
mod binary;
mod ci_heal;
mod ci_intake;
mod ci_refine;
mod cli;
mod copilot_tools;
mod dashboard;
mod datadog_mode;
mod deadlines;
mod demo_app;
mod demo_remediate;
mod e2e;
mod history;
mod inventory;
mod observability;
mod onboarding;
mod outbox;
mod outbox_replicas;
#[path = "../../../fixloop-adapters/tests/it/pg.rs"]
#[expect(
    dead_code,
    reason = "the adapters' PostgreSQL test helper; the server's tests use part of it"
)]
mod pg;
mod polling;
mod profile_init;
mod profile_live;
mod red_team;
mod red_team_store;
mod reload;
mod remediation_api;
mod remediation_choice;
mod replay;
mod replicas;
mod replicas_conformance;
mod replicas_events;
mod replicas_forward;
mod replicas_kill_switch;
mod replicas_merge;
mod replicas_spread;
mod restart;
mod restart_postgres;
mod scenario;
mod start;
mod store_hardening;
mod support;
mod tidy;
mod verify;
mod watch_any;
mod webhooks;
mod ws;
mod ws_resume;
