//! Contract tests: example round-trips, schema validation against `openapi.yaml`, snapshots, and drift of `openapi.yaml` and the TypeScript types.

mod examples;
mod openapi;
mod snapshots;
mod support;
mod typescript;
