//! The reference FixLoop server (to be built): the axum router of the contract, the driver that owns the core,
//! the demo service it watches, and the `fixloop` binary.
