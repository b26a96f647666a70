//! Memory: frames, page capabilities, process regions, grants.

pub mod pages;
