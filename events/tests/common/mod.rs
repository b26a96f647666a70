//! Helpers shared by the integration tests (and, for `naive`, the fuzz target).
pub mod naive;
