//! The shadowdaemon: runs in dom0 and will serve each guest's RPCs (files,
//! randomness, ping) over a vchan ring, keyed by eventId.
//!
//! Today it parses and checks its configuration and reports that no
//! transport exists yet; the rig runs it in dom0 so the binary and its
//! libraries are proven to work there before the RPC issue builds on it.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Folder under which each guest gets its own folder.
    #[arg(long, default_value = "/var/lib/ethos-shadow")]
    root: PathBuf,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log_level: log::LevelFilter,
    /// Serve only these guests (domain names); all guests if empty.
    #[arg(long = "guest")]
    guests: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::new()
        .filter_level(args.log_level)
        .init();
    log::info!(
        "shadowdaemon {} root={} guests={:?}",
        env!("CARGO_PKG_VERSION"),
        args.root.display(),
        args.guests
    );
    if let Err(e) = std::fs::create_dir_all(&args.root) {
        log::error!("cannot create root folder {}: {e}", args.root.display());
        return ExitCode::FAILURE;
    }
    log::error!("no RPC transport yet: nothing to serve");
    ExitCode::FAILURE
}
