//! (owned by the engine work; to be written)
