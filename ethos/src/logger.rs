//! The `log` backend: each record is one console line, `LEVEL target: msg`,
//! through the same writer as [`print!`](crate::print!). The runtime
//! installs it before main (level Info); [`log::set_max_level`] changes it.

use log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

struct Console;

impl Log for Console {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, r: &Record<'_>) {
        crate::console::print_fmt(format_args!("{} {}: {}", r.level(), r.target(), r.args()));
    }

    fn flush(&self) {}
}

static LOGGER: Console = Console;

/// Installs the backend with `level`. Fails if a logger is already set.
pub fn init(level: LevelFilter) -> Result<(), SetLoggerError> {
    log::set_logger(&LOGGER)?;
    log::set_max_level(level);
    Ok(())
}
