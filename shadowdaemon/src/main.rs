//! The shadowdaemon: runs in dom0 and serves each guest's RPCs (files,
//! randomness, ping) over a vchan ring, keyed by eventId.
//!
//! `serve` (the default) finds guests through xenstore and serves each one's
//! channel ([`daemon`]); `status` prints the guests' live figures ([`status`]);
//! `debug` holds tools the rig uses to check one Xen mechanism at a time.

#![deny(unsafe_code)]

mod daemon;
mod debug;
mod notify;
mod seed;
mod status;
mod xen;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    version,
    about,
    long_about = "The dom0 daemon that serves the guests' RPCs (files, randomness) keyed by \
                  eventId.\n\nWithout a subcommand it runs `serve` with the options given. \
                  `shadowdaemon debug --help` lists the rig's tools.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Log level: error, warn, info, debug or trace (logs go to stderr).
    #[arg(long, default_value = "info", global = true)]
    log_level: log::LevelFilter,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the guests' RPCs (the default): find each guest's channel
    /// through xenstore, map it, serve it; runs until xenstore fails.
    Serve(ServeArgs),
    /// Print each running guest's live figures, read from xenstore
    ///
    /// A guest's kernel keeps one line of figures in its data/ethos/stats,
    /// refreshed at most once a second while it is busy. For each domain that
    /// has one, prints one line on stdout:
    ///   name=NAME domid=D uptime_ms=.. created=.. completed=.. retired=..
    ///     wakes=.. switches=.. frames_free=.. frames_used=.. ballooned=..
    ///     rpc_sent=.. rpc_answered=.. [net_rx=.. net_tx=..]
    /// or, for a line that is not valid figures, name=NAME domid=D error=CODE
    /// (the log says more). NAME is ? unless dom0 owns the domain's name.
    /// Exit status: 0, or 1 if xenstore fails or a guest named with --guest
    /// has no figures.
    #[command(verbatim_doc_comment)]
    Status(StatusArgs),
    /// Hand a paused domain its boot seed (between `xl create -p` and `xl unpause`)
    ///
    /// Writes 32 bytes from dom0's kernel CSPRNG, as 64 hex digits, into
    /// /local/domain/DOMID/ethos/seed: made empty and restricted first (dom0
    /// owns it; DOMID alone may read it, and remove it; no other domain may
    /// read it), then filled. The guest kernel reads it once at boot, mixes it
    /// into its secrets with what its CPU gives, and removes it. Its console
    /// says "entropy: dom0 seed". scripts/xl-create-seeded does all three
    /// steps. Prints on stdout (never the seed):
    ///   seed domid=D node=/local/domain/D/ethos/seed
    /// Exit status: 0, 1 if xenstore fails or knows no such domain, 2 for bad
    /// arguments.
    #[command(verbatim_doc_comment)]
    Seed {
        /// The domain (its id: `xl domid NAME`), created paused.
        #[arg(value_parser = clap::value_parser!(u16).range(1..0x7ff0))]
        domid: u16,
    },
    /// Tools for the test rig, run in dom0 against a live guest: grant-read,
    /// grant-write, evtchn-notify.
    #[command(subcommand)]
    Debug(DebugCommand),
    /// Draw a guest's timeline (the trace.json `ethos.trace=on` leaves in its
    /// folder) as an SVG a browser shows: a row per process, events as bars
    /// from creation to retirement, wakes, switches, upcalls as ticks.
    TraceSvg {
        /// The timeline (Chrome/Perfetto trace-event JSON).
        input: PathBuf,
        /// Where the SVG goes.
        output: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// Folder under which each guest gets its own folder.
    #[arg(long, default_value = "/var/lib/ethos-shadow")]
    root: PathBuf,
    /// Serve only these guests (domain names); all guests if empty.
    #[arg(long = "guest")]
    guests: Vec<String>,
    /// Folder of the per-guest journals that make changing requests
    /// exactly-once across restarts (keep it on a tmpfs such as /run).
    #[arg(long, default_value = "/run/ethos-shadow")]
    state_dir: PathBuf,
    /// Worker threads serving requests (all guests share them; one guest gets at most
    /// three quarters of them), 1 to 256.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
    /// Each guest's byte budget: the sum of its files' sizes (K, M, G, T suffixes are
    /// powers of 1024). Past it, its writes get NoSpace.
    #[arg(long, default_value = "1G", value_parser = shadowdaemon::quota::parse_size)]
    quota_bytes: u64,
    /// Each guest's entry budget: files, directories and links below its folder. Past
    /// it, its creates get NoSpace.
    #[arg(long, default_value_t = 10_000)]
    quota_entries: u64,
    /// Largest file a guest may make; a write past it gets TooLarge.
    #[arg(long, default_value = "256M", value_parser = shadowdaemon::quota::parse_size)]
    max_file_size: u64,
    /// One guest's own budget instead of --quota-bytes and --quota-entries, as
    /// NAME=BYTES,ENTRIES (e.g. web=4G,50000); repeat for more guests.
    #[arg(long = "quota", value_name = "NAME=BYTES,ENTRIES")]
    quotas: Vec<shadowdaemon::quota::Override>,
    /// The grant-mapping device.
    #[arg(long, default_value = "/dev/xen/gntdev")]
    gntdev: PathBuf,
    /// The event-channel device.
    #[arg(long, default_value = "/dev/xen/evtchn")]
    evtchn: PathBuf,
    /// Tests only: hold each reply back this many milliseconds, so that a
    /// daemon killed meanwhile leaves finished work undelivered.
    #[arg(long, default_value_t = 0, hide = true)]
    test_reply_delay_ms: u64,
}

#[derive(Args, Debug, Clone)]
struct StatusArgs {
    /// Only these guests (domain names); every domain with figures if empty.
    #[arg(long = "guest")]
    guests: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum DebugCommand {
    /// Map a page a domain granted to dom0 (read-only) and print bytes of it
    ///
    /// Maps the grant through /dev/xen/gntdev, copies the bytes out once,
    /// unmaps, and prints two lines on stdout:
    ///   grant-read domid=D gref=G offset=O len=N hex=<lowercase hex>
    ///   ascii=<printable ASCII, '.' for other bytes>
    /// Exit status: 0 on success, 1 if a step fails (open, map ioctl, mmap,
    /// munmap, unmap ioctl; the error names it and the OS error), 2 for bad
    /// arguments.
    #[command(verbatim_doc_comment)]
    GrantRead(debug::GrantReadArgs),
    /// Map a page a domain granted to dom0 writable and write bytes into it
    ///
    /// The domain must have granted the page writable. Maps it through
    /// /dev/xen/gntdev, writes the bytes, unmaps, and prints on stdout:
    ///   grant-write domid=D gref=G offset=O len=N hex=<lowercase hex>
    /// Exit status: 0 on success, 1 if a step fails (open, map ioctl, mmap,
    /// munmap, unmap ioctl; the error names it and the OS error), 2 for bad
    /// arguments.
    #[command(verbatim_doc_comment)]
    GrantWrite(debug::GrantWriteArgs),
    /// Notify an unbound event-channel port a domain offers dom0, once
    ///
    /// Binds the domain's port through /dev/xen/evtchn, notifies it once,
    /// closes the binding (the port is the domain's, unbound again), and
    /// prints on stdout:
    ///   evtchn-notify domid=D port=P local_port=L
    /// Exit status: 0 on success, 1 if the bind or the notify fails (the
    /// error says which, with the OS error).
    #[command(verbatim_doc_comment)]
    EvtchnNotify(debug::EvtchnNotifyArgs),
    /// Serve one guest's RPCs over standard input and output
    ///
    /// The transport until the daemon maps guests' rings itself: run it on
    /// the far side of Debian's vchan-socket-proxy, which connects to the
    /// guest's vchan as the client, e.g. (with a FIFO for the way back)
    ///   vchan-socket-proxy D /local/domain/D/data/vchan/0/rpc - <f |
    ///     shadowdaemon debug serve-stream --guest NAME --domid D >f
    /// Exit status: 0 when the stream ends, 1 if it breaks or fails.
    #[command(verbatim_doc_comment)]
    ServeStream(StreamArgs),
}

#[derive(Args, Debug, Clone)]
struct StreamArgs {
    /// Folder under which each guest gets its own folder.
    #[arg(long, default_value = "/var/lib/ethos-shadow")]
    root: PathBuf,
    /// The guest's name (its folder under --root).
    #[arg(long)]
    guest: String,
    /// The guest's domain id (for the logs).
    #[arg(long)]
    domid: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::new()
        .filter_level(cli.log_level)
        .init();
    match cli.command {
        None => serve(&cli.serve),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::Status(args)) => status::run(&args.guests),
        Some(Command::Debug(DebugCommand::GrantRead(args))) => debug::run_grant_read(&args),
        Some(Command::Debug(DebugCommand::GrantWrite(args))) => debug::run_grant_write(&args),
        Some(Command::Debug(DebugCommand::EvtchnNotify(args))) => debug::run_evtchn_notify(&args),
        Some(Command::Debug(DebugCommand::ServeStream(args))) => serve_stream(&args),
        Some(Command::TraceSvg { input, output }) => trace_svg(&input, &output),
        Some(Command::Seed { domid }) => seed(domid),
    }
}

fn seed(domid: u16) -> ExitCode {
    let handed = seed::fresh_seed().and_then(|bytes| {
        let mut xs = crate::xen::xenstore::Xenstore::open_default()
            .map_err(|e| seed::SeedError::Store("open xenstore", e))?;
        seed::hand_seed(&mut xs, domid, &bytes)
    });
    match handed {
        Ok(node) => {
            println!("seed domid={domid} node={node}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("seed: domain {domid}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn trace_svg(input: &std::path::Path, output: &std::path::Path) -> ExitCode {
    let svg = std::fs::read_to_string(input)
        .map_err(|e| format!("cannot read {}: {e}", input.display()))
        .and_then(|json| shadowdaemon::trace_svg::render(&json))
        .and_then(|svg| {
            std::fs::write(output, &svg)
                .map(|()| svg.len())
                .map_err(|e| format!("cannot write {}: {e}", output.display()))
        });
    match svg {
        Ok(bytes) => {
            println!("{}: {bytes} bytes", output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("trace-svg: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve_stream(args: &StreamArgs) -> ExitCode {
    use shadowdaemon::confine::{GuestName, Share};
    use shadowdaemon::stream::{serve_stream, StreamEnd};
    let who = format!("guest {} (domid {})", args.guest, args.domid);
    let root = std::fs::create_dir_all(&args.root)
        .and_then(|()| Share::open(&args.root))
        .and_then(|share| {
            let name = GuestName::new(&args.guest).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e:?}"))
            })?;
            share.guest(&name)
        });
    let root = match root {
        Ok(r) => r,
        Err(e) => {
            log::error!(
                "{who}: cannot open its folder under {}: {e}",
                args.root.display()
            );
            return ExitCode::FAILURE;
        }
    };
    log::info!("{who}: serving over standard input and output");
    match serve_stream(
        &root,
        &who,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
    ) {
        StreamEnd::Closed { .. } => ExitCode::SUCCESS,
        StreamEnd::Broken(why) => {
            log::error!("{who}: {why}");
            ExitCode::FAILURE
        }
        StreamEnd::Io(e) => {
            log::error!("{who}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    daemon::run(daemon::Settings {
        root: args.root.clone(),
        state_dir: args.state_dir.clone(),
        guests: args.guests.clone(),
        workers: usize::from(args.workers),
        budget: shadowdaemon::quota::Budget {
            bytes: args.quota_bytes,
            entries: args.quota_entries,
            file_bytes: args.max_file_size,
        },
        quotas: args.quotas.clone(),
        gntdev: args.gntdev.clone(),
        evtchn: args.evtchn.clone(),
        reply_delay: std::time::Duration::from_millis(args.test_reply_delay_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_systemd_unit_runs_a_valid_command_line() {
        let unit = include_str!("../../xen-config/shadowdaemon.service");
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart in the unit");
        let words: Vec<&str> = exec.split_whitespace().collect();
        assert!(words[0].ends_with("/shadowdaemon"), "{exec}");
        let cli = Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{exec}: {e}"));
        let Some(Command::Serve(args)) = cli.command else {
            panic!("the unit does not run serve: {exec}");
        };
        // The journal must outlive restarts: the unit keeps its runtime folder.
        assert_eq!(args.state_dir, PathBuf::from("/run/ethos-shadow"));
        assert!(unit.contains("RuntimeDirectoryPreserve=yes"));
    }

    /// What Debian 12's Xen packages need: no hard dependency on units they do not
    /// ship, optional paths marked optional, and a notify type the daemon implements.
    #[test]
    fn the_systemd_unit_fits_debian() {
        let unit = include_str!("../../xen-config/shadowdaemon.service");
        let settings: Vec<(&str, &str)> = unit
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .collect();
        let all = |key: &str| -> Vec<&str> {
            settings
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .collect()
        };
        assert!(all("Requires").is_empty() && all("BindsTo").is_empty());
        assert!(all("After").concat().contains("xen.service"));
        for path in all("ReadWritePaths")
            .iter()
            .flat_map(|v| v.split_whitespace())
        {
            assert!(
                path.starts_with('-'),
                "{path} may be missing: prefix it with -"
            );
        }
        assert_eq!(all("Type"), ["notify"]);
        assert!(include_str!("notify.rs").contains("READY=1"));
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_is_serve() {
        let cli =
            Cli::try_parse_from(["shadowdaemon", "--root", "/tmp/x", "--guest", "a"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.root, PathBuf::from("/tmp/x"));
        assert_eq!(cli.serve.guests, ["a"]);
        // The budgets' defaults.
        assert_eq!(cli.serve.quota_bytes, 1 << 30);
        assert_eq!(cli.serve.quota_entries, 10_000);
        assert_eq!(cli.serve.max_file_size, 256 << 20);
        assert!(cli.serve.quotas.is_empty());
    }

    #[test]
    fn workers_are_bounded() {
        for ok in ["1", "8", "256"] {
            assert!(Cli::try_parse_from(["shadowdaemon", "--workers", ok]).is_ok());
        }
        for bad in ["0", "257", "100000000", "-1", "many"] {
            assert!(
                Cli::try_parse_from(["shadowdaemon", "--workers", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn budgets_parse_with_overrides() {
        let cli = Cli::try_parse_from([
            "shadowdaemon",
            "serve",
            "--quota-bytes",
            "64M",
            "--quota",
            "web=2G,100",
            "--quota",
            "db=1T,5",
        ])
        .unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.quota_bytes, 64 << 20);
        let names: Vec<_> = args.quotas.iter().map(|q| q.guest.as_str()).collect();
        assert_eq!(names, ["web", "db"]);
        assert!(Cli::try_parse_from(["shadowdaemon", "--quota", "web=2G"]).is_err());
        assert!(Cli::try_parse_from(["shadowdaemon", "--quota-bytes", "lots"]).is_err());
    }

    #[test]
    fn grant_read_parses_with_defaults() {
        let cli = Cli::try_parse_from([
            "shadowdaemon",
            "debug",
            "grant-read",
            "--domid",
            "5",
            "--gref",
            "8",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(cli.log_level, log::LevelFilter::Debug);
        let Some(Command::Debug(DebugCommand::GrantRead(a))) = cli.command else {
            panic!("not grant-read");
        };
        assert_eq!((a.domid, a.gref, a.offset, a.len), (5, 8, 0, 64));
        assert_eq!(a.gntdev, PathBuf::from("/dev/xen/gntdev"));
    }

    #[test]
    fn evtchn_notify_parses_and_a_non_evtchn_device_fails_named() {
        let args = |extra: &[&str]| {
            let mut argv = vec!["shadowdaemon", "debug", "evtchn-notify"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv)
        };
        let cli = args(&["--domid", "5", "--port", "9", "--evtchn", "/dev/null"]).unwrap();
        let Some(Command::Debug(DebugCommand::EvtchnNotify(a))) = cli.command else {
            panic!("not evtchn-notify");
        };
        assert_eq!((a.domid, a.port), (5, 9));
        // /dev/null is no event-channel device: the bind fails, reported.
        assert_eq!(debug::run_evtchn_notify(&a), ExitCode::FAILURE);
        assert!(args(&["--domid", "5"]).is_err(), "the port is needed");
        let cli = args(&["--domid", "5", "--port", "9"]).unwrap();
        let Some(Command::Debug(DebugCommand::EvtchnNotify(a))) = cli.command else {
            panic!("not evtchn-notify");
        };
        assert_eq!(a.evtchn, PathBuf::from("/dev/xen/evtchn"));
    }

    #[test]
    fn status_takes_guests() {
        let cli = Cli::try_parse_from(["shadowdaemon", "status", "--guest", "a", "--guest", "b"])
            .unwrap();
        let Some(Command::Status(args)) = cli.command else {
            panic!("not status");
        };
        assert_eq!(args.guests, ["a", "b"]);
        // serve's options are not status's.
        assert!(Cli::try_parse_from(["shadowdaemon", "status", "--root", "/tmp/x"]).is_err());
    }

    #[test]
    fn grant_write_needs_hex() {
        assert!(Cli::try_parse_from([
            "shadowdaemon",
            "debug",
            "grant-write",
            "--domid",
            "5",
            "--gref",
            "8"
        ])
        .is_err());
    }

    #[test]
    fn serve_options_do_not_mix_with_debug() {
        assert!(Cli::try_parse_from([
            "shadowdaemon",
            "--root",
            "/tmp/x",
            "debug",
            "grant-read",
            "--domid",
            "5",
            "--gref",
            "8"
        ])
        .is_err());
    }
}
