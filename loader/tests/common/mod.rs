//! Helpers shared by the integration tests and (through `#[path]`) the fuzz targets.
#![allow(dead_code)] // each test binary uses a different part

pub mod build;
pub mod invariants;
