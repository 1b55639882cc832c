//! Contract tests: example round-trips, schema validation against `openapi.yaml`, snapshots and drift.

mod examples;
mod openapi;
mod snapshots;
mod support;
