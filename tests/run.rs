//! `scripts/run`, as a user runs it: one program in one guest under real
//! Xen in QEMU (one rig boot, of its own). It must show the console while
//! the program runs, not only at the end, and exit with the program's
//! status. And without booting: a bad argument, an unknown program and
//! `--host`.

use rig_tests::repo_root;
use std::fs;
use std::process::{Command, Output};

/// `scripts/run ARGS`, stdout and stderr in one stream (`2>&1`), so the
/// order of console lines and scripts/run's own is the order it wrote them.
fn run(args: &[&str]) -> (Output, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"exec "$0" "$@" 2>&1"#)
        .arg(repo_root().join("scripts/run"))
        .args(args)
        .output()
        .expect("run scripts/run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Shown by the harness when the test fails.
    println!("$ scripts/run {}\n{text}", args.join(" "));
    (out, text)
}

/// The index of the first line containing `needle`.
fn position(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

// One test, its steps in order: each builds with scripts/build-guest, and
// two at once would rebuild the archive under the other's feet.
#[test]
fn scripts_run_one_program() {
    // A bad argument: the usage line, exit 2, nothing built.
    let (out, text) = run(&["--memory", "lots", "hello"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.starts_with("usage: scripts/run "), "{text}");
    let (out, text) = run(&["hello", "two words"]);
    assert_eq!(out.status.code(), Some(2), "{text}");

    // An unknown program: found out before booting anything.
    let (out, text) = run(&["--host", "no-such-program"]);
    assert_eq!(out.status.code(), Some(127), "{text}");
    assert!(text.contains("no program 'no-such-program'"), "{text}");
    assert!(
        text.contains(" hello "),
        "the message lists the programs: {text}"
    );

    // --host: a config for a real Xen host, and the line that starts it.
    let (out, text) = run(&["--host", "--memory", "16", "hello", "one", "two"]);
    assert!(out.status.success(), "{text}");
    let cfg = repo_root().join("target/run/hello.cfg");
    assert!(
        text.contains(&format!("xl create -c {}", cfg.display())),
        "{text}"
    );
    // The seeded start first (a boot seed from dom0, issue 13 item 6).
    assert!(
        text.contains(&format!(
            "{}/scripts/xl-create-seeded -c {}",
            repo_root().display(),
            cfg.display()
        )),
        "{text}"
    );
    let written = fs::read_to_string(&cfg).expect("the config file");
    for line in [
        "type = \"pv\"",
        "name = \"hello\"",
        "memory = 16",
        "extra = \"ethos.init=hello -- one two\"",
        "on_crash = \"preserve\"",
    ] {
        assert!(written.contains(line), "{line}:\n{written}");
    }
    assert!(written.contains("target/programs/user.cpio"), "{written}");
    assert!(
        written.contains("x86_64-unknown-none/release/guest"),
        "{written}"
    );

    // One boot: exit-with waits for the toolstack, which scripts/run
    // brings in at --timeout (xl shutdown), then exits 3. Its first line
    // must reach us before that, which a log copied at the end could not.
    let out_dir = repo_root().join("target/rig/run-test");
    let trace = out_dir.join("trace.json");
    let _ = fs::remove_file(&trace);
    let _ = fs::remove_file(trace.with_extension("svg"));
    let trace_arg = trace.to_string_lossy().into_owned();
    let out_arg = out_dir.to_string_lossy().into_owned();
    let (out, text) = run(&[
        "--daemon",
        "--timeout",
        "10",
        "--memory",
        "16",
        "--trace",
        &trace_arg,
        "--out",
        &out_arg,
        "exit-with",
        "3",
        "until-shutdown",
        "--extra",
        "loglevel=info",
    ]);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let waiting = position(&text, "exit-with: waiting for the toolstack");
    let timeout = position(
        &text,
        "scripts/run: still running after --timeout 10 s: xl shutdown exit-with",
    );
    let asked = position(&text, "exit-with: waited; asked to power off");
    let exiting = position(&text, "exit-with: exiting with status 3");
    assert!(
        waiting < timeout && timeout < asked && asked < exiting,
        "console lines out of order with scripts/run's:\n{text}"
    );
    // The options reached the kernel's command line and the config.
    assert!(
        text.contains(
            "command line: \"ethos.init=exit-with loglevel=info ethos.trace=on -- 3 until-shutdown\""
        ),
        "{text}"
    );
    let ready = text
        .lines()
        .find(|l| l.contains(" ready: xen="))
        .unwrap_or_else(|| panic!("no ready line:\n{text}"));
    assert!(ready.contains("memory_mib=16"), "{ready}");
    // The verdict names the pid (the kernel's rpc-offer service is pid 1
    // when RPC is on) and the status.
    let verdict = text
        .lines()
        .find(|l| l.contains("exit-with (pid ") && l.contains(") exited with status 3"))
        .unwrap_or_else(|| panic!("no verdict line:\n{text}"));
    assert!(verdict.ends_with("exit status 3"), "{verdict}");
    // The daemon ran in dom0 and saw this guest.
    let daemon = fs::read_to_string(out_dir.join("guests/shadowdaemon.log")).unwrap_or_default();
    assert!(
        daemon.contains("shadowdaemon serve") && daemon.contains("exit-with"),
        "the shadowdaemon's log:\n{daemon}"
    );
    // --trace: the daemon's trace.json copied out (JSON, with this
    // program's spans in it) and its timeline drawn beside it.
    let json = fs::read_to_string(&trace).unwrap_or_else(|e| panic!("{trace:?}: {e}\n{text}"));
    let timeline: serde_json::Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("the trace is not JSON ({e}):\n{json}"));
    // The trace-event format's array form (the object form would carry
    // it under traceEvents).
    let events = timeline
        .as_array()
        .unwrap_or_else(|| panic!("not an array of trace events:\n{json}"));
    assert!(!events.is_empty(), "{json}");
    assert!(
        text.contains("open it in https://ui.perfetto.dev"),
        "{text}"
    );
    let svg = fs::read_to_string(trace.with_extension("svg"))
        .unwrap_or_else(|e| panic!("no timeline SVG ({e}):\n{text}"));
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    assert!(
        text.contains("timeline: ") && text.contains("trace.svg"),
        "{text}"
    );
    // The console is kept where the last lines say.
    let console = fs::read_to_string(out_dir.join("guests/exit-with.log")).expect("console log");
    assert!(
        console.contains("exit-with: exiting with status 3"),
        "{console}"
    );
}
