//! Linked-in applications, run as kernel-scheduled processes. They use only
//! the system calls in [`crate::sys`].

pub mod bench;
pub mod demo;
pub mod idle;
pub mod selftest;
pub mod stale_page;
pub mod vchan_echo;

/// A process to start: its name and entry point.
pub type ProcessSpec = (&'static str, fn());

/// The apps a command line can ask for (`ethos.app=`).
pub fn by_name(name: &str) -> Option<&'static [ProcessSpec]> {
    match name {
        "demo" => Some(demo::PROCESSES),
        "selftest" => Some(selftest::PROCESSES),
        "bench" => Some(bench::PROCESSES),
        "idle" => Some(idle::PROCESSES),
        "vchan-echo" => Some(vchan_echo::PROCESSES),
        "stale-page" => Some(stale_page::PROCESSES),
        "none" => Some(&[]),
        _ => None,
    }
}
