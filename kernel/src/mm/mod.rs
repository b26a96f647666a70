//! Memory: the frame pool, process address spaces and the one path to
//! user memory, page capabilities, regions and grants.

#[cfg(target_os = "none")]
pub mod balloon;
#[cfg(target_os = "none")]
pub mod frames;
#[cfg(target_os = "none")]
pub mod pages;
pub mod range;
#[cfg(target_os = "none")]
pub mod space;
