//! The routes of the API, each beside its handler.
//!
//! [`ws`] keeps each client's WebSocket connection (its socket limits, pings and close codes).

pub mod ws;
