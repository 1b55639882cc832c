//! The server side of the copilot: the look-ups its tools make ([`tools`]).

pub mod tools;
