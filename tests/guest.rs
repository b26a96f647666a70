//! Boots the guest under real Xen (in QEMU) and checks what it printed: a
//! normal boot, a deliberate page fault, a deliberate panic and the in-guest
//! test suite, all in one rig run (scenario `scripts/scenarios/guests.sh`).

use rig_tests::{
    build_guest, build_net_guest, build_programs, build_test_guest, build_user_programs,
    fields_after, run_rig, RigRun,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn rig() -> &'static RigRun {
    static RUN: OnceLock<RigRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let images = [
            build_guest(),
            build_net_guest(),
            build_test_guest(),
            build_programs(),
            build_user_programs(),
        ];
        // About 40 guests in one boot: some 400 s on an idle machine of
        // two cores, more when other work shares them (a full run once
        // passed 600 s with builds alongside). The deadline is there to end
        // a hang, not to time the suite.
        run_rig("guests", &images, &["--deadline", "1500"])
    })
}

#[test]
fn rig_run_passes() {
    let run = rig();
    assert!(
        run.passed,
        "rig verdict: {}\n{}",
        run.verdict, run.transcript
    );
}

#[test]
fn guest_prints_ready_line_with_the_running_xen_version() {
    let run = rig();
    let guest = run.guest("boot");
    let line = guest
        .line_with("ready: ")
        .unwrap_or_else(|| panic!("no ready line in the guest log:\n{}", guest.log));
    let f = fields_after(line, "ready: ");
    let running = run.fact("xen_version");
    assert!(!running.is_empty(), "dom0 could not read the Xen version");
    assert_eq!(
        f.get("xen"),
        Some(&running),
        "guest reports another Xen than `xl info` in dom0: {line}"
    );
    // Its secrets come from the CPU: QEMU's `-cpu max` offers RDSEED and
    // RDRAND, and Xen's PV policy passes them on (issue 13 item 6).
    let entropy = guest
        .line_with("entropy: ")
        .unwrap_or_else(|| panic!("no entropy line:\n{}", guest.log));
    assert!(
        entropy.contains("entropy: RDSEED (CPU)") || entropy.contains("entropy: RDRAND (CPU)"),
        "{entropy}"
    );
    // guest.cfg gives 8 MiB: 2048 pages of 4 KiB.
    assert_eq!(f.get("pages"), Some(&"2048"), "{line}");
    assert_eq!(f.get("memory_mib"), Some(&"8"), "{line}");
    let boot_us: u64 = f
        .get("boot_us")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("boot_us: {line}"));
    // Not asserted > 0: under QEMU/TCG Xen sometimes hands the first guest
    // after boot an unfilled time record, and its clock reads 0 until Xen
    // fills it (see the session notes); the figure is still printed.
    let _ = boot_us;
}

/// Issue 13 item 6: a guest whose CPUID offers neither RDRAND nor RDSEED,
/// started as scripts/xl-create-seeded starts one, draws its secrets from
/// the seed dom0 handed it, and has removed the node by the time it says
/// so.
#[test]
fn a_guest_without_rdrand_uses_the_seed_dom0_handed_it() {
    let run = rig();
    let guest = run.guest("seeded");
    let line = guest
        .line_with("entropy: ")
        .unwrap_or_else(|| panic!("no entropy line:\n{}", guest.log));
    assert!(
        line.contains("INFO")
            && line.contains("entropy: dom0 seed, mixed with the TSC and Xen time"),
        "{line}"
    );
    assert_eq!(run.fact("seeded_node_after_boot"), "gone");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
}

/// The seed's node: dom0 owns it and only its domain may read it (another
/// guest's read is refused, though it reads its own nodes); a guest given
/// no seed and no RDRAND says so with the warning; a value that is not a
/// seed is refused by name, and removed all the same.
#[test]
fn the_boot_seed_is_its_domains_alone_and_checked() {
    let run = rig();
    let domid = run.fact("badseed_domid");
    assert_eq!(run.fact("badseed_perms"), format!("n0,b{domid}"));
    let spy = run.guest("spy");
    let node = format!("/local/domain/{domid}/ethos/seed");
    assert!(
        spy.line_with(&format!("xs-read {node}: remote error, errno 13"))
            .is_some(),
        "another guest read the seed (or asked nothing):\n{}",
        spy.log
    );
    spy.assert_lines(&["xs-read name: ok"]);
    let warning = spy
        .line_with("entropy: ")
        .unwrap_or_else(|| panic!("no entropy line:\n{}", spy.log));
    assert!(
        warning.contains("WARN")
            && warning
                .contains("entropy: no RDSEED or RDRAND, no dom0 seed: TSC and Xen time only"),
        "{warning}"
    );
    let bad = run.guest("badseed");
    bad.assert_lines(&[
        "entropy: dom0 seed refused: 10 bytes, not 64",
        "entropy: no RDSEED or RDRAND, no dom0 seed",
    ]);
    assert_eq!(run.fact("badseed_node_after_boot"), "gone");
}

#[test]
fn guest_shuts_down_cleanly() {
    let guest = rig().guest("boot");
    assert_eq!(
        guest.state, "shutdown",
        "Xen saw the guest end as {}:\n{}",
        guest.state, guest.log
    );
    let last = guest.lines().last().unwrap_or("");
    assert!(
        last.contains("work done: powering off"),
        "last line: {last}"
    );
    assert!(
        guest.line_with("FAULT").is_none() && guest.line_with("PANIC").is_none(),
        "{}",
        guest.log
    );
    assert!(guest.line_with("ERROR").is_none(), "{}", guest.log);
}

#[test]
fn page_fault_is_reported_and_crashes_the_domain() {
    let guest = rig().guest("fault");
    assert_eq!(
        guest.state, "crashed",
        "Xen saw the guest end as {}:\n{}",
        guest.state, guest.log
    );
    let head = guest
        .line_with("FAULT: #PF")
        .unwrap_or_else(|| panic!("no fault report:\n{}", guest.log));
    assert!(
        head.contains("page fault (vector 14) error_code=0x"),
        "{head}"
    );
    let addr = guest
        .line_with("faulting address")
        .expect("the report names the faulting address");
    // The guest reads address 0x10, below its image, which is never mapped.
    assert!(addr.contains("(cr2)=0x0000000000000010"), "{addr}");
    assert!(addr.contains("read of a not-present page"), "{addr}");
    let rip = guest.line_with("FAULT: rip=").expect("the report has rip");
    let rip_value = u64::from_str_radix(
        fields_after(rip, "FAULT: ")["rip"].trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert!(
        (0x40_0000..0x50_0000).contains(&rip_value),
        "rip points into the kernel image: {rip}"
    );
    guest.assert_lines(&["rax=", "rsp=", "r15="]);
    assert!(
        guest
            .lines()
            .last()
            .unwrap_or("")
            .contains("crashing the domain"),
        "{}",
        guest.log
    );
}

/// `scripts/symbolize LOG`: what it prints for the reports in LOG.
fn symbolize(log: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(rig_tests::repo_root().join("scripts/symbolize"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/symbolize");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(log.as_bytes())
        .expect("feed scripts/symbolize");
    let out = child.wait_with_output().expect("scripts/symbolize");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "scripts/symbolize failed:\n{text}");
    text
}

/// A fault report's address, named: the kernel's test page fault (the
/// test image, from its unstripped build, checked to hold the same code)
/// and a program's (fault-null, a child of usertest, from its unstripped
/// ELF) symbolize to the functions and lines that faulted.
#[test]
fn fault_reports_symbolize_to_the_faulting_function() {
    let run = rig();
    let kernel = symbolize(&run.guest("fault").log);
    assert!(kernel.contains("the same code as"), "{kernel}");
    for needle in [
        "read_unmapped",
        "hal/src/test_hooks.rs:",
        "commit_test_fault",
        "kernel/src/boot.rs:",
    ] {
        assert!(kernel.contains(needle), "{needle}:\n{kernel}");
    }
    let usertest = run.guest("usertest");
    let report = usertest
        .line_with("(fault-null) killed: ")
        .unwrap_or_else(|| panic!("no fault-null report:\n{}", usertest.log));
    let program = symbolize(report);
    assert!(
        program.contains("fault_null::main") && program.contains("programs/src/bin/fault-null.rs:"),
        "{program}"
    );
}

#[test]
fn panic_is_reported_and_crashes_the_domain() {
    let guest = rig().guest("panic");
    assert_eq!(
        guest.state, "crashed",
        "Xen saw the guest end as {}:\n{}",
        guest.state, guest.log
    );
    let line = guest
        .line_with("PANIC at ")
        .unwrap_or_else(|| panic!("no panic report:\n{}", guest.log));
    assert!(
        line.contains("kernel/src/boot.rs:"),
        "the report has the location: {line}"
    );
    assert!(
        line.contains("test panic requested on the command line"),
        "the report has the message: {line}"
    );
}

#[test]
fn in_guest_test_suite_passes_under_xen() {
    let guest = rig().guest("selftest");
    assert_eq!(
        guest.state, "shutdown",
        "Xen saw the guest end as {}:\n{}",
        guest.state, guest.log
    );
    let results: Vec<&str> = guest
        .lines()
        .filter_map(|l| l.split_once("selftest: ").map(|(_, r)| r))
        .collect();
    let closing = results
        .last()
        .unwrap_or_else(|| panic!("no selftest output:\n{}", guest.log));
    let tests: Vec<&&str> = results.iter().filter(|r| r.contains(" ... ")).collect();
    let failed: Vec<&&&str> = tests.iter().filter(|r| !r.ends_with(" ... ok")).collect();
    assert!(failed.is_empty(), "in-guest tests failed:\n{failed:#?}");
    assert!(
        tests.len() >= 12,
        "only {} in-guest tests ran:\n{}",
        tests.len(),
        guest.log
    );
    assert_eq!(
        *closing,
        format!("{} passed, 0 failed", tests.len()),
        "closing line"
    );
    for name in [
        "timers_fire_in_deadline_order_never_early",
        "and_tree_wakes_once_after_last_leaf",
        "or_tree_wakes_once_on_first_leaf",
        "threshold_tree_wakes_once_on_kth_leaf",
        "retire_semantics",
        "cancel_semantics",
        "event_quota_gives_named_status",
        "foreign_events_are_refused",
        "xenstore_read_write_directory_rm",
        "xenstore_errors_are_named",
        "xenstore_transactions_commit_and_abort",
        "xenstore_watch_firings_are_events",
        "pages_bind_write_read_unbind",
        "page_capabilities_are_checked",
        "grant_round_trip_with_dom0",
        "memory_pressure_revokes_oldest_page",
        "exit_releases_bound_pages",
        "interdomain_event_channel_loop",
    ] {
        assert!(
            tests.iter().any(|t| t.starts_with(name)),
            "in-guest test {name} did not run"
        );
    }
}

#[test]
fn guest_reports_event_statistics_at_the_end() {
    let guest = rig().guest("selftest");
    let line = guest
        .line_with("event stats: ")
        .unwrap_or_else(|| panic!("no event stats:\n{}", guest.log));
    let f = fields_after(line, "event stats: ");
    let n = |k: &str| {
        f.get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{k} in {line}"))
    };
    assert!(
        n("created") > 0 && n("completed") > 0 && n("wakes") > 0,
        "{line}"
    );
    // Every event is accounted for: retired, or discarded when a process
    // exited holding it (one selftest process does so on purpose).
    assert_eq!(n("created"), n("retired") + n("discarded"), "{line}");
    assert!(n("discarded") >= 40, "the exiting process's events: {line}");
    let kline = guest
        .line_with("kernel stats: ")
        .expect("kernel stats line");
    let k = fields_after(kline, "kernel stats: ");
    let switches: u64 = k["context_switches"].parse().unwrap();
    // One switch into each process when it starts, one per wake.
    assert!(switches >= n("wakes"), "{kline}");
}

#[test]
fn dom0_read_the_page_the_guest_granted() {
    let run = rig();
    let dom0 = run.guest("grant");
    let line = dom0
        .line_with("grant-read ")
        .unwrap_or_else(|| panic!("dom0 mapped no grant:\n{}", dom0.log));
    // "ethos grant test", as the selftest wrote it before granting.
    assert!(
        line.ends_with("hex=6574686f73206772616e742074657374"),
        "{line}"
    );
    dom0.assert_lines(&["ascii=ethos grant test"]);
}

#[test]
fn freed_page_address_faults_instead_of_reaching_the_frame() {
    let guest = rig().guest("stale");
    assert_eq!(
        guest.state, "crashed",
        "Xen saw the guest end as {}:\n{}",
        guest.state, guest.log
    );
    let touched = guest
        .line_with("reading freed page at ")
        .expect("the app reached the read");
    let va = touched.rsplit(' ').next().unwrap();
    let head = guest
        .line_with("FAULT: #PF")
        .unwrap_or_else(|| panic!("no page fault:\n{}", guest.log));
    assert!(head.contains("page fault"), "{head}");
    let addr = guest
        .line_with("faulting address")
        .expect("faulting address");
    let cr2 = addr
        .split("(cr2)=")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap();
    assert_eq!(
        u64::from_str_radix(cr2.trim_start_matches("0x"), 16).unwrap(),
        u64::from_str_radix(va.trim_start_matches("0x"), 16).unwrap(),
        "{addr}"
    );
    assert!(
        addr.contains("not-present page"),
        "the mapping is gone: {addr}"
    );
    assert!(guest.line_with("no fault").is_none(), "{}", guest.log);
}

#[test]
fn idle_guest_blocks_its_vcpu() {
    let run = rig();
    let guest = run.guest("idle");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    guest.assert_lines(&["idle: woke up"]);
    let secs = |k: &str| {
        run.fact(k)
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("{k}={}", run.fact(k)))
    };
    let used = secs("idle_cpu_seconds_after") - secs("idle_cpu_seconds_before");
    let wall = secs("idle_wall_seconds");
    // A spinning guest would use about all of it; a blocked one about none.
    // xl list counts in 0.1 s steps.
    assert!(
        used <= wall * 0.2,
        "idle guest used {used} s of CPU in {wall} s"
    );
}

/// A guest's `key=value` live figures (`data/ethos/stats`, or a line of
/// `shadowdaemon status`), the numbers only; panics on a word that is no
/// number unless it is the name or the domid status adds.
fn live_figures(line: &str) -> BTreeMap<String, u64> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| *k != "name")
        .map(|(k, v)| {
            let v = v
                .parse()
                .unwrap_or_else(|_| panic!("{k}={v} is no count in {line:?}"));
            (k.to_string(), v)
        })
        .collect()
}

/// Live figures from dom0 (issue 12 item 4): while `busy` keeps its guest
/// at work, dom0 reads the guest's figures with `xenstore-read`, waits
/// until the guest refreshed them, and reads them again with `shadowdaemon
/// status`. They are all there, and the counters moved forward: events,
/// wakes, switches, RPCs sent and answered (the daemon answers the pings).
#[test]
fn dom0_reads_a_running_guests_live_figures() {
    let run = rig();
    let guest = run.guest("live");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    guest.assert_lines(&["pings answered; told to stop"]);
    let first = live_figures(run.fact("live_stats_first"));
    let second = live_figures(run.fact("live_stats_second"));
    assert_ne!(first, second, "the figures were never refreshed");
    assert_eq!(run.fact("live_status_rc"), "0", "{}", guest.log);
    let status = run.fact("live_status");
    assert!(
        status.starts_with(&format!("name=live domid={} ", run.fact("live_domid"))),
        "{status}"
    );
    let last = live_figures(status);
    let keys = [
        "uptime_ms",
        "created",
        "completed",
        "retired",
        "wakes",
        "switches",
        "frames_free",
        "frames_used",
        "ballooned",
        "rpc_sent",
        "rpc_answered",
    ];
    for key in keys {
        assert!(first.contains_key(key), "{key} missing: {first:?}");
        assert!(last.contains_key(key), "{key} missing: {status}");
    }
    for key in [
        "uptime_ms",
        "created",
        "completed",
        "retired",
        "wakes",
        "switches",
        "rpc_sent",
        "rpc_answered",
    ] {
        assert!(
            last[key] >= second[key] && second[key] >= first[key],
            "{key}: {first:?} {second:?} {status}"
        );
    }
    for key in ["uptime_ms", "created", "rpc_sent", "rpc_answered"] {
        assert!(
            last[key] > first[key],
            "{key} did not move: {first:?} then {status}"
        );
    }
    // Every frame of the domain (guest.cfg: 8 MiB) is counted once.
    for f in [&first, &last] {
        assert_eq!(
            f["frames_free"] + f["frames_used"] + f["ballooned"],
            2048,
            "{f:?}"
        );
    }
}

#[test]
fn vchan_server_talks_to_debians_libxenvchan() {
    let run = rig();
    let guest = run.guest("vchan");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    guest.assert_lines(&[
        "vchan-echo: client connected",
        "vchan-echo: echo matched (28 bytes)",
        "vchan-echo: ok",
    ]);
    let peer = run.guest("vchanpeer");
    peer.assert_lines(&["proxy received: hello from ethos over vchan"]);
    // The keys were published readable by their owner only (n<domid>).
    let keys = peer.line_with("ring-ref=").expect("dom0 saw the keys");
    assert!(keys.matches("(n").count() >= 2, "{keys}");
}

#[test]
fn guest_image_stays_within_256_kib() {
    // The foundation's target (see scripts/bench): a small kernel boots fast
    // and fits small domains. Size, not speed, so it is a test.
    let image = build_guest();
    let size = std::fs::metadata(&image).expect("guest image").len();
    assert!(
        size <= 256 * 1024,
        "guest ELF is {size} bytes, more than 256 KiB"
    );
}

#[test]
fn rpcs_reach_the_shadowdaemon_and_complete_their_events() {
    let run = rig();
    let guest = run.guest("rpcdemo");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    for line in [
        "rpc-demo: wrote notes/hello.txt",
        "rpc-demo: read it back: 56 bytes, identical",
        "rpc-demo: file_info: kind 1 size Some(56)",
        "rpc-demo: notes/ holds [\"hello.txt\"]",
        "rpc-demo: 16 random bytes from dom0: ",
        // NotFound (code 1) once the file is removed.
        "rpc-demo: removed it; reading it now reports: remote error 1",
        "rpc-demo: ok",
    ] {
        assert!(
            guest.line_with(line).is_some(),
            "missing {line:?}:\n{}",
            guest.log
        );
    }
    // Eight completions, one wake at most: none when every answer was in
    // before the program blocked (the daemon can be that quick), never one
    // per ping.
    let wakes: u64 = guest
        .line_with("rpc-demo: 8 pings in flight under one AND tree: ")
        .and_then(|l| l.rsplit(": ").next())
        .and_then(|w| w.strip_suffix(" wake"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wake count:\n{}", guest.log));
    assert!(wakes <= 1, "{wakes} wakes for one AND tree:\n{}", guest.log);
    // The daemon found the guest through xenstore, served its 18 requests,
    // and let go once the domain was destroyed.
    let daemon = run.guest("shadowdaemon");
    // (Its first line is the guest's storage budget; then it attaches.)
    assert!(
        daemon
            .lines()
            .any(|l| l.contains("guest rpcdemo (domid ") && l.contains("attached to its channel")),
        "the daemon never attached to rpcdemo:\n{}",
        daemon.log
    );
    assert!(
        daemon
            .line_with("18 requests, 18 replies sent")
            .is_some_and(|l| l.contains("guest rpcdemo")),
        "{}",
        daemon.log
    );
    assert!(
        daemon
            .line_with("guest rpcdemo (domid ")
            .is_some_and(|_| daemon.log.contains("domain gone")),
        "{}",
        daemon.log
    );
    // The guest's folder in dom0 holds what the guest left: an empty notes/.
    daemon.assert_lines(&["file: /tmp/shadow/rpcdemo/notes"]);
    assert!(
        daemon.line_with("hello.txt").is_none(),
        "the file was removed: {}",
        daemon.log
    );
}

/// Lines of the daemon's log about guest `name`.
fn daemon_lines<'a>(run: &'a RigRun, name: &str) -> Vec<&'a str> {
    let prefix = format!("guest {name} (domid ");
    run.guest("shadowdaemon")
        .log
        .lines()
        .filter(|l| l.contains(&prefix))
        .collect()
}

#[test]
fn daemon_killed_and_restarted_completes_every_rpc_exactly_once() {
    let run = rig();
    let guest = run.guest("restart");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    assert_eq!(run.fact("restart_daemon_killed"), "yes");
    guest.assert_lines(&[
        "rpc-restart: 56 requests in flight",
        // The unmap notification told the guest; it offered the channel again
        // and sent what was unanswered.
        "rpc: the daemon in dom0 went away",
        "requests sent again",
        // Each create_dir answered Ok: none was run twice (that gives Exists).
        "rpc-restart: all 56 completed, each once",
        "rpc-restart: folder holds exactly 24 directories and 24 files, contents intact: ok",
    ]);
    assert!(!guest.log.contains("FAILED"), "{}", guest.log);
    // Work the killed daemon had finished but not delivered came from the
    // journal, not from running it again.
    let lines = daemon_lines(run, "restart");
    let replayed = lines
        .iter()
        .filter(|l| l.contains("answered from the journal, not run"))
        .count();
    assert!(
        replayed >= 1,
        "nothing answered from the journal:\n{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains(" 0 failed")), "{lines:#?}");
}

#[test]
fn destroying_a_guest_mid_rpc_leaves_no_zombie_and_no_mapping() {
    let run = rig();
    assert_eq!(run.guest("flood").state, "gone");
    assert!(
        run.fact("flood_daemon_gntdev_maps_before")
            .parse::<u32>()
            .is_ok_and(|n| n > 0),
        "the daemon mapped nothing while serving"
    );
    assert_eq!(
        run.fact("flood_domains_left"),
        "0",
        "a zombie domain stayed"
    );
    assert_eq!(run.fact("flood_daemon_gntdev_maps_after"), "0");
    assert_eq!(run.fact("flood_daemon_evtchn_fds_after"), "0");
    assert_eq!(run.fact("flood_daemon_alive"), "yes");
    let lines = daemon_lines(run, "flood");
    assert!(
        lines.iter().any(|l| l.contains("domain gone")),
        "{lines:#?}"
    );
}

#[test]
fn a_hostile_guest_only_breaks_its_own_channel() {
    let run = rig();
    let guest = run.guest("hostile");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    for n in 1..=3 {
        let line = format!("rpc-hostile: round {n}: the daemon closed the channel");
        assert!(guest.line_with(&line).is_some(), "{}", guest.log);
    }
    assert!(guest.line_with("all 3 rounds refused: ok").is_some());
    let broken: Vec<&str> = daemon_lines(run, "hostile")
        .into_iter()
        .filter(|l| l.contains("disconnected: the guest broke the protocol"))
        .collect();
    assert_eq!(broken.len(), 3, "{broken:#?}");
    for (line, reason) in broken
        .iter()
        .zip(["UnknownOp", "LengthOutOfRange", "ProducerOutOfRange"])
    {
        assert!(line.contains(reason), "{line}");
    }
    // The daemon kept serving: the next guest's RPCs all went through.
    assert_eq!(run.guest("rpcdemo").state, "shutdown");
    assert!(run.guest("rpcdemo").line_with("rpc-demo: ok").is_some());
}

#[test]
fn dom0_pings_the_guest_and_udp_echoes() {
    let run = rig();
    let guest = run.guest("net");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    guest.assert_lines(&["net: up: 192.0.2.2/24"]);
    // ARP and ICMP echo are answered by the stack.
    assert_eq!(run.fact("net_ping_replies"), "3");
    assert_eq!(run.fact("net_udp_echo"), "ethos-udp-echo");
}

/// Issue 13, item 7: the initial sequence numbers the guest sent in 10
/// SYN-ACKs in a row (read off dom0's bridge) do not fall to the attack
/// that recovers smoltcp's own generator from two of them
/// (`kernel::net::seqattack`; kernel/tests/isn.rs shows it working
/// against that generator).
#[test]
fn the_guests_tcp_sequence_numbers_cannot_be_predicted() {
    let run = rig();
    let fact = run.fact("net_isns");
    let isns: Vec<u32> = fact
        .split(',')
        .map(|v| v.parse().unwrap_or_else(|_| panic!("net_isns={fact}")))
        .collect();
    assert_eq!(isns.len(), 10, "net_isns={fact}");
    assert!(
        !kernel::net::seqattack::Attack::new().predicts_any(&isns),
        "the attack predicted the guest's ISNs: {isns:?}"
    );
}

/// Issue 13, item 10: a ping of 3,000 bytes and a UDP datagram of 2,000
/// arrive in fragments, are reassembled and answered (in fragments too).
#[test]
fn datagrams_larger_than_the_mtu_are_reassembled_and_answered() {
    let run = rig();
    assert_eq!(
        run.fact("net_big_ping_replies"),
        "2",
        "{}",
        run.guest("net").log
    );
    assert_eq!(run.fact("net_udp_2000"), "echo=2000");
    // ... and again once the orphan fragments below have expired.
    assert_eq!(run.fact("net_big_ping_after_orphans"), "1");
}

/// Issue 13, item 10: 300 fragments that never make a datagram hold at
/// most the reassembly buffers (4 of 4 KiB), and nothing once they expire.
#[test]
fn orphan_fragments_cost_bounded_memory_and_give_it_back() {
    let run = rig();
    assert_eq!(run.fact("net_orphans"), "sent=300");
    let heap = |fact: &str| -> u64 {
        run.fact(fact)
            .parse()
            .unwrap_or_else(|_| panic!("{fact}={:?}\n{}", run.fact(fact), run.guest("net").log))
    };
    let (before, held, after) = (
        heap("net_heap_before_orphans"),
        heap("net_heap_orphans_held"),
        heap("net_heap_after_orphans"),
    );
    // What two page loads differ by anyway (the request's own buffers).
    let noise = 2048;
    assert!(
        held <= before + 4 * 4096 + noise,
        "heap used {before} before the orphans, {held} while they were held"
    );
    assert!(
        after <= before + noise,
        "heap used {before} before the orphans, {after} once they expired"
    );
    // Counted: the log says so at each power of two, so at 256 or a few
    // past it (the big pings and the UDP datagram bring 11 before the 300
    // orphans; a poll may take several at once).
    let guest = run.guest("net");
    let counted = guest
        .lines()
        .filter(|l| l.contains(" IPv4 fragments received (reassembly: 4 datagrams of 4096 bytes"))
        .filter_map(|l| {
            l.split("net: ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert!((256..=311).contains(&counted), "{counted}\n{}", guest.log);
}

#[test]
fn the_http_endpoint_serves_event_statistics_to_100_clients_at_once() {
    let run = rig();
    let peer = run.guest("netpeer");
    peer.assert_lines(&["stats: Ethos-Xen event statistics", "stats: status=200"]);
    assert_eq!(run.fact("net_concurrent"), "ok=100 of 100");
}

#[test]
fn busybox_wget_fetches_the_http_endpoint() {
    let run = rig();
    assert_eq!(
        run.fact("net_wget_exit"),
        "0",
        "{}",
        run.guest("netpeer").log
    );
    assert_eq!(
        run.fact("net_wget_first_line"),
        "Ethos-Xen event statistics"
    );
}

#[test]
fn ten_mib_each_way_arrive_intact() {
    let run = rig();
    let guest = run.guest("net");
    // Guest -> dom0: what dom0 received has the checksum the guest sent.
    assert!(
        run.fact("net_blob_get")
            .starts_with("status=200 bytes=10485760"),
        "{}",
        run.fact("net_blob_get")
    );
    let sent = guest
        .line_with("net-demo: blob sent: cksum ")
        .unwrap_or_else(|| panic!("{}", guest.log));
    assert!(
        sent.ends_with(run.fact("net_blob_cksum")),
        "guest sent {sent:?}, dom0 got {}",
        run.fact("net_blob_cksum")
    );
    assert!(run.fact("net_blob_cksum").ends_with(" 10485760"));
    // dom0 -> guest: the guest's checksum of the upload is dom0's.
    let upload = run.fact("net_upload");
    assert!(upload.starts_with("status=200"), "{upload}");
    assert!(
        upload.ends_with(&format!("body={}", run.fact("net_upload_cksum"))),
        "{upload} vs {}",
        run.fact("net_upload_cksum")
    );
}

/// netback offers GSO: the blob went out as joined segments (and arrived
/// intact, which `ten_mib_each_way_arrive_intact` checks byte for byte).
#[test]
fn segmentation_offload_is_used_when_netback_offers_it() {
    let run = rig();
    let guest = run.guest("net");
    guest.assert_lines(&["net: segmentation offload on (backend offers it"]);
    let peer = run.guest("netpeer");
    let line = peer
        .line_with("after blob: net sockets=")
        .unwrap_or_else(|| panic!("no stats after the blob:\n{}", peer.log));
    let f = fields_after(line, "after blob: ");
    let gso: u64 = f["tx_gso"].parse().unwrap();
    let frames: u64 = f["tx_frames"].parse().unwrap();
    // 10 MiB in 1460-byte segments is 7,182 segments; joined, far fewer packets.
    assert!(gso > 100, "{line}");
    assert!(frames < 7_182, "{line}");
}

#[test]
fn the_guest_connects_out_to_dom0() {
    assert_eq!(
        rig().fact("net_connect_back"),
        "hello from ethos over tcp_connect"
    );
}

#[test]
fn malformed_frames_are_dropped_and_counted() {
    let run = rig();
    assert_eq!(run.fact("net_garbage"), "sent=20");
    let peer = run.guest("netpeer");
    let line = peer
        .line_with("after garbage: net sockets=")
        .unwrap_or_else(|| panic!("no stats after the garbage:\n{}", peer.log));
    let f = fields_after(line, "after garbage: ");
    // Of the 20: 10 with a broken IPv4 checksum or length and 5 cut short
    // (the bridge may pad or drop a runt), and 5 of an ethertype the guest
    // does not speak (counted apart, with dom0's own IPv6 chatter).
    let malformed: u64 = f["rx_malformed"].parse().unwrap();
    let not_ours: u64 = f["rx_not_ours"].parse().unwrap();
    assert!((10..=15).contains(&malformed), "{line}");
    assert!(not_ours >= 5, "{line}");
    // ... and the guest kept serving (this very page, and everything after).
    assert_eq!(run.fact("net_concurrent"), "ok=100 of 100");
}

/// Regression: the receive path once looked a response's buffer up after
/// the ring had handed its id out again, so under a burst a frame was lost
/// and an older frame's bytes read in its place (seen as "malformed" dom0
/// ACKs, and as clients whose SYN went unanswered).
#[test]
fn valid_traffic_is_never_counted_malformed() {
    let run = rig();
    let peer = run.guest("netpeer");
    let malformed = |prefix: &str| -> u64 {
        let line = peer
            .line_with(&format!("{prefix}net sockets="))
            .unwrap_or_else(|| panic!("no {prefix:?} stats:\n{}", peer.log));
        fields_after(line, prefix)["rx_malformed"].parse().unwrap()
    };
    assert_eq!(malformed("stats: "), 0, "{}", peer.log);
    assert_eq!(
        malformed("after parallel: "),
        malformed("after garbage: "),
        "100 clients' frames counted malformed:\n{}",
        peer.log
    );
}

#[test]
fn more_clients_than_sockets_are_refused_and_the_backlog_recovers() {
    let run = rig();
    let guest = run.guest("net");
    // 200 connections held open against 192 sockets (103 of them listening
    // or bound at the start): some are refused, none hang, none crash.
    let held = run.fact("net_held");
    let n: usize = held
        .strip_prefix("held=")
        .and_then(|r| r.strip_suffix(" of 200"))
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("{held}"));
    assert!((100..200).contains(&n), "{held}");
    let short: Vec<_> = guest
        .log
        .lines()
        .filter(|l| l.contains("net: listener on port 80 cannot keep its backlog"))
        .collect();
    // Said once per shortage: the backlog may run short again after it was
    // whole again while the 200 are still connecting (seen in a full run:
    // short, whole, short within 54 ms), and each time is said once.
    let whole = guest
        .log
        .lines()
        .filter(|l| l.contains("has its whole backlog again"))
        .count();
    assert!(
        !short.is_empty() && short.len() <= whole + 1,
        "said once per shortage ({} short, {whole} whole):\n{}",
        short.len(),
        guest.log
    );
    assert!(short[0].contains("are refused"), "{}", short[0]);
    assert_eq!(run.fact("net_backlog_whole"), "yes", "{}", guest.log);
    assert_eq!(run.fact("net_concurrent_after_held"), "ok=100 of 100");
}

/// Issue 13, item 9: 400 SYNs from addresses that never answer. Before,
/// each took one of the 192 sockets, was handed to accept as a connection
/// and never reclaimed, and port 80 answered RST for good.
#[test]
fn a_syn_flood_from_silent_addresses_is_bounded_reaped_and_served_after() {
    let run = rig();
    let guest = run.guest("net");
    let peer = run.guest("netpeer");
    assert_eq!(run.fact("net_synflood"), "sent=400");
    assert_eq!(run.fact("net_flood_said"), "yes", "{}", guest.log);
    let said = guest
        .line_with("half-open connections (a SYN flood?)")
        .unwrap_or_else(|| panic!("{}", guest.log));
    assert!(
        said.contains("listener on port 80 holds 100 half-open") && said.contains("after 8 s"),
        "{said}"
    );
    assert_eq!(run.fact("net_flood_cleared"), "yes", "{}", guest.log);
    assert_eq!(run.fact("net_concurrent_after_flood"), "ok=100 of 100");
    let stats = |prefix: &str| {
        let line = peer
            .line_with(&format!("{prefix}net sockets="))
            .unwrap_or_else(|| panic!("no {prefix:?} stats:\n{}", peer.log));
        let f = fields_after(line, prefix);
        let n = |k: &str| -> u64 { f[k].parse().unwrap_or_else(|_| panic!("{k} in {line}")) };
        (n("accepted"), n("half_open"), n("half_open_reaped"))
    };
    let (accepted_before, _, reaped_before) = stats("before flood: ");
    let (accepted_after, half_open_after, reaped_after) = stats("after flood: ");
    // At most the backlog held half-open, every one given up, none left.
    let reaped = reaped_after - reaped_before;
    assert!((1..=100).contains(&reaped), "{reaped} given up");
    assert_eq!(half_open_after, 0);
    // None of the 400 counted as accepted: between the two pages only the
    // 100 clients, the page loads and the heap reads connected (and maybe
    // some of the 20 silent ones, if they were slow to connect).
    let accepted = accepted_after - accepted_before;
    assert!(
        (100..=130).contains(&accepted),
        "{accepted} accepted across the flood"
    );
    let heap = |fact: &str| -> u64 {
        run.fact(fact)
            .parse()
            .unwrap_or_else(|_| panic!("{fact}={:?}\n{}", run.fact(fact), guest.log))
    };
    let (before, during, after) = (
        heap("net_heap_before_flood"),
        heap("net_heap_during_flood"),
        heap("net_heap_after_flood"),
    );
    // Bounded during: at most the 100 listening sockets refilled behind the
    // half-open ones (8 KiB of buffers each) and their bookkeeping.
    assert!(
        during <= before + 100 * 9 * 1024,
        "heap used {before} before the flood, {during} during it"
    );
    assert!(
        after <= before + 64 * 1024,
        "heap used {before} before the flood, {after} after it"
    );
}

/// Connections that complete the handshake and say nothing are closed by
/// the application's own idle timeout (net-demo: 10 s, one OR tree).
#[test]
fn silent_connections_are_closed_by_the_programs_idle_timeout() {
    let run = rig();
    assert_eq!(run.fact("net_silent"), "closed=20 of 20");
    let peer = run.guest("netpeer");
    let line = peer
        .line_with("after blob: net sockets=")
        .unwrap_or_else(|| panic!("{}", peer.log));
    let closed: u64 = fields_after(line, "after blob: ")["idle_closed"]
        .parse()
        .unwrap();
    assert!(closed >= 20, "{line}");
}

#[test]
fn detaching_the_backend_ends_sockets_with_a_status_and_reattaching_works() {
    let run = rig();
    let guest = run.guest("net");
    assert_eq!(run.fact("net_detach_seen"), "yes", "{}", guest.log);
    let down = guest
        .line_with("net-demo: network down: ")
        .unwrap_or_else(|| panic!("{}", guest.log));
    // The accepts, the UDP receive and the held connection's receive.
    let ended: u32 = down
        .split("network down: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(ended >= 3, "{down}");
    assert!(
        down.contains("ended with NET_DOWN; the guest runs on"),
        "{down}"
    );
    assert_eq!(run.fact("net_reattached"), "yes", "{}", guest.log);
    // The old device's memory came back once netback closed (before, each
    // detach and attach kept half a megabyte for good).
    guest.assert_lines(&["net: 1 old device(s) released, 0 still held"]);
    assert!(
        run.fact("net_after_reattach").starts_with("status=200"),
        "{}",
        run.fact("net_after_reattach")
    );
    assert_eq!(guest.state, "shutdown");
}

#[test]
fn detaching_and_attaching_again_and_again_costs_no_memory() {
    let run = rig();
    let heap = |fact: &str| -> u64 {
        run.fact(fact)
            .parse()
            .unwrap_or_else(|_| panic!("{fact}={:?}\n{}", run.fact(fact), run.guest("net").log))
    };
    let (before, after) = (
        heap("net_heap_before_cycles"),
        heap("net_heap_after_cycles"),
    );
    // Two more detach/attach cycles; each used to keep 520 KiB of pages.
    assert!(
        after < before + 64 * 1024,
        "heap used {before} before two cycles, {after} after"
    );
    assert_eq!(
        run.guest("net")
            .log
            .matches("old device(s) released, 0 still held")
            .count(),
        3
    );
}

/// The user-mode suite (programs/src/bin/usertest.rs), from user mode
/// under real Xen: bad pointers, read-only output, capabilities, unknown
/// calls and events, another process's events and pages (their ids passed
/// through the shadowdaemon), crashing children, 16 processes and the
/// spawn quota, preemption of a spinner, x87/SSE registers kept apart,
/// and frames after spawn/exit cycles.
#[test]
fn user_mode_suite_passes_under_xen() {
    let guest = rig().guest("usertest");
    let last = guest
        .line_with("usertest: ")
        .and_then(|_| guest.lines().filter(|l| l.contains(" passed, ")).last())
        .unwrap_or_else(|| panic!("no closing line:\n{}", guest.log));
    assert!(
        last.contains("usertest: 11 passed, 0 failed"),
        "{}",
        guest.log
    );
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    // The kernel ran on after every child it killed, and said why.
    for (program, what) in [
        ("fault-null", "(read: an unmapped page)"),
        (
            "fault-read-kernel",
            "address=0x400000 (read: an unmapped page)",
        ),
        (
            "fault-write-kernel",
            "address=0x500000 (write: an unmapped page)",
        ),
        ("fault-write-text", "(write: a protection violation)"),
        ("fault-exec-stack", "(fetch: a protection violation)"),
    ] {
        let report = guest
            .lines()
            .find(|l| l.contains(&format!("({program}) killed: page fault (#PF, vector 14)")))
            .unwrap_or_else(|| panic!("no fault report for {program}:\n{}", guest.log));
        assert!(report.contains(what), "{report}");
        // Every program address is in the user half (0x80_0000_0000 up).
        assert!(
            report.contains("rip=0x80"),
            "the report names rip: {report}"
        );
    }
    // The FS base is not a program's to set (CR4.FSGSBASE stays off).
    guest.assert_lines(&["(fault-wrfsbase) killed: invalid opcode (#UD, vector 6)"]);
    // x87/SSE registers are switched between programs (hal::fpu).
    guest.assert_lines(&["fpu-check: every program's x87/SSE registers are its own"]);
    assert!(guest.line_with("PANIC").is_none(), "{}", guest.log);
}

/// The demo as four user programs in guest.cfg's 8 MiB: its parts' trees
/// wake them as the linked-in demo's did, and the parent wakes once, on
/// the AND tree of its three children's exit events.
#[test]
fn the_demo_runs_as_four_user_programs() {
    assert_the_demo_ran(rig().guest("userdemo"));
}

/// What the demo prints when its four programs ran to the end.
fn assert_the_demo_ran(guest: &rig_tests::GuestRun) {
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    for line in [
        "demo: 4 programs running; blocking on AND of the 3 exit events",
        "blocking on AND of all 3",
        "woken once, at +",
        "blocking until at least 2 of 3",
        "args: [hello from the demo]",
        "demo: woken once: all 3 programs ended: exit 0, exit 0, exit 0",
    ] {
        assert!(guest.line_with(line).is_some(), "{line}:\n{}", guest.log);
    }
    guest.assert_lines(&[
        "init: program demo started as pid 1",
        "process 1 (demo) exited with status 0",
    ]);
    assert!(guest.line_with("killed").is_none(), "{}", guest.log);
}

/// The boot line on memory: (heap KiB, frames the heap took past the boot
/// mapping, frames for programs).
fn boot_memory(guest: &rig_tests::GuestRun) -> (u64, u64, u64) {
    let line = guest
        .line_with(" KiB heap (")
        .unwrap_or_else(|| panic!("no memory line at boot:\n{}", guest.log));
    // "memory: 1028 KiB heap (0 frames past the boot mapping), 437 frames …"
    let numbers: Vec<u64> = line
        .split_once("memory: ")
        .map_or("", |(_, rest)| rest)
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers[..] {
        [heap_kib, past, frames, ..] => (heap_kib, past, frames),
        _ => panic!("{line}"),
    }
}

/// A guest of any size boots (issue 13 item 11). At 990 MiB the P2M list
/// fills the boot mapping, whose tail was the heap: the pool's 8 bytes a
/// frame outgrew it and the guest panicked at boot. Now the pool is a bit
/// a frame and the heap grows into the frames past the boot mapping, and
/// giving 926 MiB back to Xen and taking it again costs no heap either.
#[test]
fn a_990_mib_guest_boots_grows_its_heap_and_balloons_down_and_up() {
    let run = rig();
    let guest = run.guest("big");
    assert_eq!(
        guest.state,
        "shutdown",
        "free MiB before: {}\n{}",
        run.fact("big_free_mib_before"),
        guest.log
    );
    let ready = guest
        .line_with("ready: ")
        .unwrap_or_else(|| panic!("no ready line:\n{}", guest.log));
    let f = fields_after(ready, "ready: ");
    assert_eq!(f.get("memory_mib"), Some(&"990"), "{ready}");
    assert_eq!(f.get("pages"), Some(&"253440"), "{ready}");
    let (heap_kib, past, frames) = boot_memory(guest);
    assert!(
        heap_kib >= 1024,
        "the heap's floor is 1 MiB: {heap_kib} KiB"
    );
    assert!(past > 0, "the heap took no frame past the boot mapping");
    assert!(frames > 250_000, "{frames} frames for programs");
    guest.assert_lines(&["init: program sleep started"]);
    // 253,440 frames held, 16,384 wanted: every one of the difference goes.
    guest.assert_lines(&[
        "balloon: target 65536 KiB: gave back 237056 frames, took 0 again; 237056 out, 0 short",
        "balloon: target 1013760 KiB: gave back 0 frames, took 237056 again; 0 out, 0 short",
        "balloon: 0 frames out (237056 given, 237056 taken)",
    ]);
    assert_eq!(run.fact("big_mib_down"), "64", "{}", guest.log);
    assert_eq!(run.fact("big_mib_up"), "990", "{}", guest.log);
    assert!(
        guest.line_with("PANIC").is_none() && guest.line_with("ERROR").is_none(),
        "{}",
        guest.log
    );
}

/// A 4 MiB guest's boot mapping is all of its memory, which was all heap:
/// no frame for page binding, the RPC channel or a program. Now the heap
/// keeps its floor and the rest is frames, which the boot line counts, and
/// the demo's four programs run in them.
#[test]
fn a_4_mib_guest_runs_the_demo_in_the_frames_past_its_heap_floor() {
    let guest = rig().guest("tiny");
    let ready = guest
        .line_with("ready: ")
        .unwrap_or_else(|| panic!("no ready line:\n{}", guest.log));
    assert_eq!(
        fields_after(ready, "ready: ").get("memory_mib"),
        Some(&"4"),
        "{ready}"
    );
    let (heap_kib, past, frames) = boot_memory(guest);
    assert!(
        (1024..1100).contains(&heap_kib),
        "the heap keeps its 1 MiB floor: {heap_kib} KiB"
    );
    assert_eq!(past, 0, "{}", guest.log);
    assert!(frames >= 256, "{frames} frames for programs");
    assert!(
        guest.line_with("page binding unavailable").is_none(),
        "{}",
        guest.log
    );
    assert_the_demo_ran(guest);
}

/// `ethos.init=hello -- one two`: the words after `--` are its arguments.
#[test]
fn the_first_program_gets_the_command_line_arguments() {
    let guest = rig().guest("userargs");
    guest.assert_lines(&["args: [hello one two]"]);
    guest.assert_lines(&["process 1 (hello) exited with status 0"]);
}

/// An unknown program ends the domain with a clean power-off and a line
/// naming what the archive holds.
#[test]
fn an_unknown_first_program_is_named_and_the_domain_powers_off() {
    let guest = rig().guest("usernone");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    let line = guest
        .line_with("ethos.init=no-such-program: no such program")
        .unwrap_or_else(|| panic!("{}", guest.log));
    assert!(
        line.contains("usertest"),
        "the archive's programs are listed: {line}"
    );
    assert!(line.ends_with("; powering off"), "{line}");
}

/// A typo'd key and a bad log level (xen/src/options.rs checks every word):
/// each is named with what the kernel does instead, and the program runs.
#[test]
fn a_typo_on_the_command_line_is_named_and_the_guest_goes_on() {
    let guest = rig().guest("cmdtypo");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    guest.assert_lines(&[
        "boot option ethos.ap=demo: unknown option (did you mean ethos.app?); ignored",
        "boot option loglevel=bogus: expected off|error|warn|info|debug|trace; \
         using the default, info",
    ]);
    assert_eq!(count_lines(guest, "boot option "), 2, "{}", guest.log);
    guest.assert_lines(&["args: [hello one]"]);
    guest.assert_lines(&["process 1 (hello) exited with status 0"]);
}

/// An option of the networked images on the core image is named as such;
/// at loglevel=warn the info lines are gone and the guest still ends well.
#[test]
fn a_network_option_on_the_core_image_says_it_has_no_networking() {
    let guest = rig().guest("cmdnonet");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    guest.assert_lines(&[
        "boot option ethos.ip=192.0.2.2/24: this image has no networking; ignored",
    ]);
    assert!(guest.line_with(" INFO ").is_none(), "{}", guest.log);
}

/// `ethos.help` prints the table, one line an option, even at loglevel=off
/// (where nothing else is printed), and powers off.
#[test]
fn ethos_help_prints_every_option_and_powers_off() {
    let guest = rig().guest("cmdhelp");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    let help: Vec<&str> = guest
        .lines()
        .filter_map(|l| l.split_once("ethos.help: ").map(|(_, rest)| rest))
        .collect();
    for key in [
        "loglevel=off|error|warn|info|debug|trace [default info]",
        "ethos.init=",
        "ethos.app=",
        "ethos.rpc=on|off",
        "ethos.trace=on|off",
        "ethos.ip=A.B.C.D/PREFIX",
        "ethos.gw=",
        "ethos.tso=on|off",
        "ethos.test_fault=",
        "ethos.help [default off] print this and power off",
    ] {
        assert!(
            help.iter().any(|l| l.starts_with(key)),
            "{key}:\n{}",
            guest.log
        );
    }
    assert_eq!(help.len(), 10, "{}", guest.log);
    assert!(
        guest.line_with("Ethos-Xen guest kernel").is_none(),
        "{}",
        guest.log
    );
    assert!(guest.line_with("init: program").is_none(), "{}", guest.log);
}

/// A networked guest given an address but no vif= does not wait for ever:
/// net-setup says so after 5 s and the domain powers off. At
/// loglevel=error that is the only line.
#[test]
fn an_address_without_a_vif_is_named_and_the_domain_powers_off() {
    let guest = rig().guest("novif");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    let line = guest
        .line_with("net-setup: ethos.ip is set but the domain has no network device")
        .unwrap_or_else(|| panic!("{}", guest.log));
    assert!(line.contains("give the xl config a vif="), "{line}");
    assert!(line.ends_with("; powering off"), "{line}");
    assert!(
        guest.line_with(" INFO ").is_none() && guest.line_with(" WARN ").is_none(),
        "{}",
        guest.log
    );
}

/// The lines of `guest`'s log that contain `needle`.
fn count_lines(guest: &rig_tests::GuestRun, needle: &str) -> usize {
    guest.lines().filter(|l| l.contains(needle)).count()
}

/// Where in `guest`'s log the first line containing `needle` is.
fn line_index(guest: &rig_tests::GuestRun, needle: &str) -> usize {
    guest
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{}", guest.log))
}

/// `xl shutdown` (issue 14 item 1): each process holding a shutdown event
/// sees it in the tree it is blocked on and exits; the one holding none is
/// ended when the grace period is over; the domain powers off, not crashes.
#[test]
fn xl_shutdown_tells_every_waiting_process_and_powers_off() {
    let guest = rig().guest("stop");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    assert_eq!(
        count_lines(guest, "saw the shutdown event (power off)"),
        3,
        "{}",
        guest.log
    );
    guest.assert_lines(&[
        "poweroff asked: told every process holding a shutdown event: 5 s to exit",
        "until-shutdown: asked to power off; 3 of 3 helpers saw it and exited",
        "(sleep) still running at shutdown: ending it",
        "powering off, as the toolstack asked",
    ]);
    assert!(
        line_index(guest, "3 of 3 helpers saw it")
            < line_index(guest, "(sleep) still running at shutdown"),
        "the deaf sleep is ended only after the others exited:\n{}",
        guest.log
    );
    assert!(
        guest.line_with("crashing the domain").is_none(),
        "{}",
        guest.log
    );
}

/// `xl reboot` with `on_reboot="restart"`: the processes see a reboot, the
/// domain ends with SHUTDOWN_reboot, the toolstack starts it again, and the
/// second boot answers `xl shutdown`.
#[test]
fn xl_reboot_restarts_the_domain_and_the_new_boot_answers_xl_shutdown() {
    let run = rig();
    let guest = run.guest("reboot");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    assert_eq!(run.fact("reboot_boots"), "2", "{}", guest.log);
    assert_eq!(
        count_lines(guest, "saw the shutdown event (reboot)"),
        3,
        "{}",
        guest.log
    );
    assert_eq!(
        count_lines(guest, "saw the shutdown event (power off)"),
        3,
        "{}",
        guest.log
    );
    let rebooting = line_index(guest, "rebooting, as the toolstack asked");
    let second_boot = guest
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("Ethos-Xen guest kernel"))
        .nth(1)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no second boot:\n{}", guest.log));
    let off = line_index(guest, "powering off, as the toolstack asked");
    assert!(
        rebooting < second_boot && second_boot < off,
        "{}",
        guest.log
    );
}

/// A guest where no process holds a shutdown event has nobody to wait
/// for: `xl shutdown` ends it at once.
#[test]
fn a_guest_where_nothing_listens_stops_at_once() {
    let guest = rig().guest("deaf");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    guest.assert_lines(&[
        "poweroff asked: no process holds a shutdown event, ending now",
        "process 1 (sleep) still running at shutdown: ending it",
        "powering off, as the toolstack asked",
    ]);
}

/// What `save-wait` must print whatever happened to its domain between its
/// start and its end: every beep once, in deadline order, none early; the
/// xenstore watch alive; the kernel's free frames where they were.
fn assert_beeps_and_watch_survived(guest: &rig_tests::GuestRun) {
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    assert_eq!(count_lines(guest, "save-wait: beep "), 8, "{}", guest.log);
    guest.assert_lines(&[
        "save-wait: 8 beeps fired once each, in deadline order: true, early: 0",
        "save-wait: the watch fired and data/save-wait reads go",
        "process 1 (save-wait) exited with status 0",
    ]);
    let frames = |when: &str| {
        let line = guest
            .line_with(&format!("save-wait: at the {when}: "))
            .unwrap_or_else(|| panic!("no {when} memory line:\n{}", guest.log));
        // "… at the start: 1023 frames free, …": the number.
        line.split(&format!("at the {when}: "))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(frames("start"), frames("end"), "{}", guest.log);
}

/// Ten `xl save` + `xl restore` cycles in a row (issue 14 items 2, 3 and
/// 5): each restored domain carries on with the 8 beeps and the xenstore
/// watch that were pending, and the kernel's frames stay where they were.
#[test]
fn ten_save_and_restore_cycles_keep_pending_timers_and_watches() {
    let run = rig();
    let guest = run.guest("saved");
    assert_eq!(run.fact("save_restore_cycles"), "10", "{}", guest.log);
    assert_eq!(
        count_lines(guest, "suspending: the toolstack saves the domain now"),
        10,
        "{}",
        guest.log
    );
    assert_eq!(
        count_lines(guest, "resumed as a new domain"),
        10,
        "{}",
        guest.log
    );
    assert_beeps_and_watch_survived(guest);
    // They were pending when the domain went: the last fired after the
    // last restore.
    let lines: Vec<&str> = guest.lines().collect();
    let last_with = |needle: &str| {
        lines
            .iter()
            .rposition(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?}:\n{}", guest.log))
    };
    let (last_restore, last_beep) = (
        last_with("resumed as a new domain"),
        last_with("save-wait: beep "),
    );
    assert!(
        line_index(guest, "beeps pending") < last_restore && last_restore < last_beep,
        "{}",
        guest.log
    );
}

/// A program's event channels across `xl save` and `xl restore` (issue 14
/// item 2): it holds handles, not ports. The channel it allocated for dom0
/// is allocated again in the new domain, its wait says `Rebound` with the
/// new port, and dom0's notification on that port reaches the same wait;
/// the channel bound to a port (a loop within the guest) is lost, and says
/// `PeerGone`; the one nobody waited on tells its next wait.
#[test]
fn event_channels_are_allocated_again_after_a_restore() {
    let run = rig();
    let guest = run.guest("evrestore");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    assert_eq!(run.fact("evrestore_rc"), "0", "{}", guest.log);
    let ready = line_index(guest, "evtchn-restore: ready for the save");
    let resumed = line_index(guest, "resumed as a new domain");
    assert!(
        line_index(guest, "evtchn-restore: notified on port") < ready && ready < resumed,
        "{}",
        guest.log
    );
    guest.assert_lines(&["process event channels: 2 allocated again, 1 lost with the old domain"]);
    let rebound = line_index(guest, "evtchn-restore: dom0 channel Rebound: port ");
    let notified = line_index(guest, "evtchn-restore: dom0 notified the new port ");
    assert!(resumed < rebound && rebound < notified, "{}", guest.log);
    // dom0 bound the port the guest published after the restore, and the
    // guest saw it as the new port.
    let new_port = guest
        .lines()
        .nth(rebound)
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap();
    let dom0_notified: Vec<&str> = guest
        .lines()
        .filter(|l| l.contains("dom0: evtchn-notify domid="))
        .collect();
    assert_eq!(dom0_notified.len(), 2, "{}", guest.log);
    assert!(
        dom0_notified[1].contains(&format!(" port={new_port} ")),
        "{}",
        guest.log
    );
    assert!(
        guest
            .line_with(&format!("dom0 notified the new port {new_port} ("))
            .is_some(),
        "{}",
        guest.log
    );
    assert!(
        guest
            .line_with(
                "loop's bound end PeerGone; notify: Err(PeerGone); wait again: Err(PeerGone); \
                 close again: Err(BadHandle)"
            )
            .is_some(),
        "{}",
        guest.log
    );
    guest.assert_lines(&[
        "loop's unbound end Rebound, told its next wait",
        "evtchn-restore: all channels accounted for",
    ]);
}

/// The live figures of the same guest, read in dom0 before the ten cycles
/// and after them (issue 12 item 4): the last restored domain, a new domid
/// with a store of its own, publishes them anew, and they carry on from
/// where they were (the kernel's counters went with the domain).
#[test]
fn live_figures_are_published_again_after_restores() {
    let run = rig();
    let guest = run.guest("saved");
    assert_ne!(
        run.fact("saved_domid_before"),
        run.fact("saved_domid_after"),
        "{}",
        guest.log
    );
    let before = live_figures(run.fact("saved_stats_before"));
    let after = live_figures(run.fact("saved_stats_after"));
    for key in ["uptime_ms", "created", "completed", "retired", "switches"] {
        assert!(after[key] > before[key], "{key}: {before:?} then {after:?}");
    }
    for f in [&before, &after] {
        assert_eq!(
            f["frames_free"] + f["frames_used"] + f["ballooned"],
            2048,
            "{f:?}"
        );
    }
}

/// The figures of each "balloon: after the suspend" line of `guest`:
/// (frames there still, given back for the suspend, taken again, short).
fn frames_after_suspends(guest: &rig_tests::GuestRun) -> Vec<[u64; 4]> {
    guest
        .lines()
        .filter_map(|l| {
            l.split_once("balloon: after the suspend ")
                .map(|(_, rest)| rest)
        })
        .map(|rest| {
            // "907 of 907 frames were there still, 0 taken again, 0 short"
            let n: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|w| w.trim_end_matches(',').parse().ok())
                .collect();
            n.try_into()
                .unwrap_or_else(|_| panic!("not 4 figures: {rest:?}:\n{}", guest.log))
        })
        .collect()
}

/// The same guest's saved images (issue 14 item 6): before each suspend
/// the guest gives its free frames back to Xen (all but a reserve), so the
/// toolstack writes what the kernel and its processes hold, not its
/// memory= (8 MiB, 2048 frames: the image was 8.4 MB before); after each
/// restore it takes them again from the new domain's Xen, and the domain,
/// Xen's count of its pages and its figures are where they were.
#[test]
fn a_saved_image_holds_only_the_frames_in_use_and_they_come_back() {
    let run = rig();
    let guest = run.guest("saved");
    const FRAMES: u64 = 2048;
    const PAGE: u64 = 4096;
    let after = frames_after_suspends(guest);
    assert_eq!(after.len(), 10, "{}", guest.log);
    for &[there, given, taken, short] in &after {
        // A save and a restore: the new domain holds none of them.
        assert!(given > FRAMES / 3, "{after:?}:\n{}", guest.log);
        assert_eq!((there, taken, short), (0, given, 0), "{}", guest.log);
    }
    // The image: every frame held (each a page), the pfn list (8 bytes a
    // frame) and the records' headers, vCPU and shared-info pages: never a
    // frame given back. 64 KiB covers what is not a frame of data; that is
    // far below the 8 MiB a full image takes.
    let bytes: u64 = run.fact("saved_image_bytes").parse().unwrap();
    let given = after.iter().map(|a| a[1]).min().unwrap();
    assert!(
        bytes <= (FRAMES - given) * PAGE + 64 * 1024,
        "{bytes} bytes for {} frames held",
        FRAMES - given
    );
    assert!(bytes < FRAMES * PAGE * 3 / 5, "{bytes} bytes");
    assert_eq!(run.fact("saved_pages_before"), FRAMES.to_string());
    assert_eq!(run.fact("saved_pages_after"), FRAMES.to_string());
    let before = live_figures(run.fact("saved_stats_before"));
    let now = live_figures(run.fact("saved_stats_after"));
    assert_eq!(now["ballooned"], 0, "{now:?}");
    assert_eq!(
        now["frames_free"], before["frames_free"],
        "{before:?} {now:?}"
    );
    // The balloon's counts at power-off: all given were taken again.
    let line = guest
        .line_with("balloon: 0 frames out (")
        .unwrap_or_else(|| panic!("no balloon counts:\n{}", guest.log));
    let total: u64 = after.iter().map(|a| a[1]).sum();
    assert!(
        line.contains(&format!("({total} given, {total} taken)")),
        "{line}"
    );
}

/// `xl save -c` (a checkpoint): the toolstack cancels the suspend and the
/// domain runs on in place, with everything it had.
#[test]
fn a_cancelled_suspend_runs_on_in_place() {
    let run = rig();
    let guest = run.guest("kept");
    assert_eq!(run.fact("checkpoint_rc"), "0", "{}", guest.log);
    guest.assert_lines(&["the suspend was cancelled: running on"]);
    assert!(
        guest.line_with("resumed as a new domain").is_none(),
        "{}",
        guest.log
    );
    assert_beeps_and_watch_survived(guest);
}

/// Live `xl migrate` to localhost (issue 14 item 5) while save-wait's 8
/// beeps and a watch are pending: every beep fires once, in order, and the
/// watch fires, in the new domain. The rig's Xen is Debian's rebuilt with
/// shadow paging (scripts/setup): Debian's own has no log-dirty mode for PV
/// guests, and there `xl migrate` fails for any PV guest.
#[test]
fn a_live_migration_keeps_pending_beeps_and_watches() {
    let run = rig();
    let guest = run.guest("moved");
    assert_eq!(run.fact("migrate_rc"), "0", "{}", guest.log);
    guest.assert_lines(&["resumed as a new domain"]);
    assert_beeps_and_watch_survived(guest);
}

/// The same migrated guest, twice, ballooned between (issue 14 items 4
/// and 6): the frames it gave back before each suspend had been sent in
/// the first rounds, and the destination still holds them; the guest takes
/// them as they are and asks Xen for no second frame. Xen's count of the
/// domain's pages stays its memory=, nothing is out, `xl mem-set` down and
/// up works after, and a second migration (which a moving P2M generation
/// would abort) too.
#[test]
fn a_live_migration_takes_no_frame_twice_and_loses_none() {
    let run = rig();
    let guest = run.guest("moved");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    let after = frames_after_suspends(guest);
    assert_eq!(after.len(), 2, "{}", guest.log);
    for &[there, given, taken, short] in &after {
        assert!(given > 0, "{}", guest.log);
        assert_eq!(there + taken, given, "{}", guest.log);
        assert_eq!(short, 0, "{}", guest.log);
    }
    for key in [
        "moved_pages_before",
        "moved_pages_after",
        "moved_pages_again",
    ] {
        assert_eq!(run.fact(key), "2048", "{key}:\n{}", guest.log);
    }
    let figures = live_figures(run.fact("moved_stats_after"));
    assert_eq!(figures["ballooned"], 0, "{figures:?}");
    assert_eq!(
        figures["frames_free"] + figures["frames_used"],
        2048,
        "{figures:?}"
    );
    assert!(run.fact("moved_mib_down").parse::<u64>().unwrap() <= 6);
    assert!(run.fact("moved_mib_up").parse::<u64>().unwrap() >= 8);
    assert!(
        guest
            .line_with(
                "balloon: target 8192 KiB: gave back 0 frames, took 512 again; 0 out, 0 short"
            )
            .is_some(),
        "{}",
        guest.log
    );
    assert_eq!(run.fact("migrate_again_rc"), "0", "{}", guest.log);
}

/// `xl save` and `xl restore` of the networked guest in the middle of a
/// 10 MiB download (issue 14 items 2 and 3): the restored domain connects
/// the new backend with a fresh netfront handshake, its stack keeps the
/// connection, and dom0's download completes intact.
#[test]
fn a_restore_mid_download_keeps_the_connection_and_every_byte() {
    assert_download_crossed("netsaved");
}

/// Live `xl migrate` to localhost of the networked guest in the middle of
/// a 10 MiB download (issue 14 item 5): the same path as a restore (a new
/// domain, a new backend), taken while the old domain still runs and its
/// memory is copied over in rounds.
#[test]
fn a_live_migration_mid_download_keeps_the_connection_and_every_byte() {
    assert_download_crossed("netmoved");
}

/// After the live migration the new domain tells dom0's bridge where its
/// MAC lives now, as soon as its new netfront is connected: a gratuitous
/// ARP for its own address from its own MAC, seen on the bridge (rig-net
/// watch), and said in the log. Without it the bridge keeps sending the
/// guest's frames to the old domain's port until the guest itself speaks.
#[test]
fn a_migrated_guest_announces_its_new_port_to_the_bridge() {
    let run = rig();
    let guest = run.guest("netmoved");
    let watch = run.fact("netmoved_watch");
    let announced: u32 = watch
        .split(' ')
        .find_map(|w| w.strip_prefix("gratuitous_arps="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {watch:?}"));
    assert!(announced >= 1, "{watch}\n{}", guest.log);
    let line = guest
        .line_with("net: the new backend is connected after the restore")
        .unwrap_or_else(|| panic!("{}", guest.log));
    assert!(
        line.contains("gratuitous ARP sent: the bridge learns this port"),
        "{line}"
    );
}

/// What a download through a save and restore, or a migration, of guest
/// `name` must show (its facts are `{name}_rc`, `{name}_blob_get`, ...).
fn assert_download_crossed(name: &str) {
    let run = rig();
    let guest = run.guest(name);
    let fact = |f: &str| run.fact(&format!("{name}_{f}"));
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    assert_eq!(fact("rc"), "0", "{}", guest.log);
    assert_eq!(fact("mid_transfer"), "yes", "{}", guest.log);
    let got = fact("blob_get");
    assert!(
        got.starts_with("status=200 bytes=10485760"),
        "{got}\n{}",
        guest.log
    );
    let sent = guest
        .line_with("net-demo: blob sent: cksum ")
        .unwrap_or_else(|| panic!("{}", guest.log));
    assert!(
        sent.ends_with(fact("blob_cksum")),
        "guest sent {sent:?}, dom0 got {}",
        fact("blob_cksum")
    );
    guest.assert_lines(&[
        "resumed as a new domain",
        "net-setup: the domain was restored: connecting the new backend",
        "net: the new backend is connected after the restore",
    ]);
    assert!(guest.line_with("network down").is_none(), "{}", guest.log);
    // The daemon waited for the domain it was to go, and never told the
    // new one it would not be served (its RPCs would fail NotServed).
    assert!(
        guest.line_with("will not serve this domain").is_none(),
        "{}",
        guest.log
    );
    assert!(fact("after").starts_with("status=200"), "{}", fact("after"));
}

/// `xl mem-set` (issue 14 item 4): the guest gives free frames back when
/// the target falls and takes them again when it rises; a target below
/// what the kernel and its processes hold is followed as far as it can be
/// and said once; the live figures count the frames given back; the
/// domain ends cleanly.
#[test]
fn xl_mem_set_balloons_down_and_up_and_never_below_what_is_needed() {
    let run = rig();
    let guest = run.guest("balloon");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    let mib = |key: &str| -> u64 {
        run.fact(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key}={:?}:\n{}", run.fact(key), guest.log))
    };
    assert!(mib("balloon_mib_down") <= 6, "{}", guest.log);
    assert!(mib("balloon_mib_up") >= 8, "{}", guest.log);
    assert!(mib("balloon_mib_low") > 1, "{}", guest.log);
    assert!(mib("balloon_mib_again") >= 8, "{}", guest.log);
    guest.assert_lines(&[
        "balloon: target 6144 KiB: gave back 512 frames, took 0 again",
        "balloon: target 8192 KiB: gave back 0 frames, took 512 again",
    ]);
    assert_eq!(count_lines(guest, "cannot be reached"), 1, "{}", guest.log);
    // The live figures say so too (the guest is idle but for following
    // the target: that work is published once more after it).
    let down = live_figures(run.fact("balloon_stats_down"));
    assert_eq!(down["ballooned"], 512, "{down:?}");
    assert_eq!(
        down["frames_free"] + down["frames_used"] + down["ballooned"],
        2048,
        "{down:?}"
    );
    guest.assert_lines(&["powering off, as the toolstack asked"]);
}

/// `xl save` and `xl restore` with 56 RPCs in flight (issue 14 item 3):
/// the restored domain offers its channel anew, sends again what was
/// unanswered, and every request completes exactly once (a `dir_create`
/// run twice would answer `Exists`); the daemon's folder holds exactly
/// what was asked.
#[test]
fn a_restore_with_rpcs_in_flight_completes_each_exactly_once() {
    let run = rig();
    let guest = run.guest("rpcsaved");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    assert_eq!(run.fact("rpcsaved_rc"), "0", "{}", guest.log);
    guest.assert_lines(&[
        "rpc-restart: 56 requests in flight",
        "resumed as a new domain",
        "rpc: restored: offering the channel again",
        "rpc-restart: all 56 completed, each once",
        "rpc-restart: folder holds exactly 24 directories and 24 files, contents intact: ok",
    ]);
    assert!(!guest.log.contains("FAILED"), "{}", guest.log);
    // The saved domain's journal outlived it, and the restored one (another
    // domid) was answered from it what the daemon had done and the guest
    // had not read before the save: run once, not twice.
    let lines = daemon_lines(run, "rpcsaved");
    assert!(
        lines.iter().any(|l| l.contains("kept for a restore")),
        "{lines:#?}"
    );
    let replayed = lines
        .iter()
        .filter(|l| l.contains("answered from the journal, not run"))
        .count();
    assert!(
        replayed >= 1,
        "nothing answered from the journal:\n{lines:#?}"
    );
}

/// A guest whose name the daemon refuses (`+` names no folder) is told
/// through xenstore: its ping completes with `NotServed` at once, instead of
/// waiting for an answer that never comes, and the kernel says why; the
/// daemon's log says why too (issue 13 item 12).
#[test]
fn a_guest_the_daemon_will_not_serve_is_told_at_once() {
    let run = rig();
    let guest = run.guest("not+served");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    let told = guest
        .line_with("rpc: the daemon in dom0 will not serve this domain (bad-name;")
        .unwrap_or_else(|| panic!("the kernel was not told:\n{}", guest.log));
    assert!(told.contains("complete NotServed"), "{told}");
    let failed = guest
        .line_with("rpc-demo: FAILED: ping: ")
        .unwrap_or_else(|| panic!("no ping outcome:\n{}", guest.log));
    assert!(
        failed.contains("the RPC daemon in dom0 will not serve this domain"),
        "{failed}"
    );
    assert!(guest.line_with("no answer from the shadowdaemon").is_none());
    let daemon = run.guest("shadowdaemon");
    let refused = daemon
        .lines()
        .find(|l| l.contains(": not served: its name is unusable (guest name has byte 0x2b at 3"))
        .unwrap_or_else(|| panic!("the daemon did not say why:\n{}", daemon.log));
    let domid = refused
        .split("domid ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("{refused}"));
    assert!(
        daemon
            .line_with(&format!("domid {domid}: told it is not served (bad-name)"))
            .is_some(),
        "{}",
        daemon.log
    );
}

/// xenconsoled stopped while a guest prints six rings' worth: the guest goes
/// on (it finishes its work and stops), and once xenconsoled reads again its
/// log says how many bytes were dropped (issue 13 item 8).
#[test]
fn a_stopped_console_reader_costs_lines_not_the_guest() {
    let run = rig();
    assert_eq!(run.fact("conslost_printed_while_stopped"), "printed");
    let guest = run.guest("conslost");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    let dropped = guest
        .line_with(" bytes dropped while xenconsoled was not reading")
        .unwrap_or_else(|| panic!("no count of dropped bytes:\n{}", guest.log));
    let count: u64 = dropped
        .trim_start_matches("console: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{dropped}"));
    // 100 lines of about 122 bytes with their prefixes (12 KiB), of which
    // the 2 KiB ring took the first.
    assert!(count > 8_000, "{dropped}");
    assert_eq!(
        guest
            .lines()
            .filter(|l| l.contains("bytes dropped"))
            .count(),
        1,
        "said once:\n{}",
        guest.log
    );
    guest.assert_lines(&["console-flood: dom0 said go; done"]);
    // The first lines made it; the later ones, printed while xenconsoled
    // was stopped, went.
    assert!(guest.line_with("console-flood: line   0 of 100").is_some());
    assert!(guest.line_with("console-flood: line  99 of 100").is_none());
}

/// `ethos.trace=on` (issue 12 item 3): the kernel records every event's
/// life, and the daemon keeps it as `trace.json` in the guest's folder. The
/// timeline is valid JSON, nothing was dropped, and its spans and instants
/// agree with the counters the kernel printed at power-off for the same run:
/// a span begun per event created, ended per event retired, a completion
/// and a wake instant per completion and wake.
#[test]
fn a_traced_guest_leaves_a_timeline_that_agrees_with_its_counters() {
    let run = rig();
    let guest = run.guest("traced");
    assert_eq!(guest.state, "shutdown", "{}", guest.log);
    guest.assert_lines(&["rpc-demo: ok"]);
    let stats = guest
        .line_with("event stats: ")
        .unwrap_or_else(|| panic!("no event stats:\n{}", guest.log));
    let f = fields_after(stats, "event stats: ");
    let counter = |k: &str| -> usize {
        f.get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k}: {stats}"))
    };
    let text = &run.guest("traced-json").log;
    let timeline: serde_json::Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("trace.json is not JSON ({e}):\n{text}"));
    let objects = timeline.as_array().expect("an array of trace events");
    let last = objects.last().expect("a state line");
    assert_eq!(last["name"], "trace_state", "{last}");
    assert_eq!(last["args"]["guest_dropped"], 0, "{last}");
    assert_eq!(last["args"]["daemon_dropped"], 0, "{last}");
    let count = |ph: &str, name: &str| {
        objects
            .iter()
            .filter(|o| o["ph"] == ph && o["name"] == name)
            .count()
    };
    assert!(counter("created") > 0, "{stats}");
    assert_eq!(count("b", "event"), counter("created"), "{stats}");
    assert_eq!(count("e", "event"), counter("retired"), "{stats}");
    assert_eq!(count("i", "complete"), counter("completed"), "{stats}");
    assert_eq!(count("i", "wake"), counter("wakes"), "{stats}");
    assert_eq!(count("i", "cancel"), counter("cancelled"), "{stats}");
    // Every span that ends began before, on the same row.
    let mut begun = std::collections::HashMap::new();
    for o in objects {
        match o["ph"].as_str() {
            Some("b") => {
                begun.insert(o["id"].to_string(), (o["pid"].clone(), o["ts"].as_f64()));
            }
            Some("e") => {
                let (pid, ts) = begun
                    .get(&o["id"].to_string())
                    .unwrap_or_else(|| panic!("a span ends that never began: {o}"));
                assert_eq!(pid, &o["pid"], "{o}");
                assert!(*ts <= o["ts"].as_f64(), "{o}");
            }
            _ => {}
        }
    }
    // The program's system calls and its context switches are there too.
    assert!(count("i", "syscall") > 0 && count("i", "switch") > 0);
    // Every row is named (every process was created after the timeline began): a
    // process_name and a thread_name with the name the kernel recorded, e.g. the
    // program's row reads "rpc-demo".
    let named = |what: &str, pid: &serde_json::Value| {
        objects
            .iter()
            .filter(|o| o["ph"] == "M" && o["name"] == what && &o["pid"] == pid)
            .filter_map(|o| o["args"]["name"].as_str())
            .collect::<Vec<_>>()
    };
    for o in objects.iter().filter(|o| o["ph"] != "M") {
        let names = named("process_name", &o["pid"]);
        assert_eq!(names.len(), 1, "row of {o} named {names:?}");
        assert_eq!(named("thread_name", &o["pid"]), names, "{o}");
    }
    let demo = objects
        .iter()
        .find(|o| o["ph"] == "M" && o["name"] == "process_name" && o["args"]["name"] == "rpc-demo")
        .unwrap_or_else(|| panic!("no row named rpc-demo:\n{text}"));
    assert!(
        objects
            .iter()
            .any(|o| o["pid"] == demo["pid"] && o["name"] == "syscall"),
        "the rpc-demo row has its system calls"
    );
}
