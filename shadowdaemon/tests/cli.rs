//! Runs the built binary the way the rig does, on a host without Xen.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shadowdaemon"))
        .args(args)
        .output()
        .expect("run shadowdaemon")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_describes_every_command() {
    let top = String::from_utf8(run(&["--help"]).stdout).unwrap();
    for word in [
        "serve",
        "status",
        "debug",
        "--root",
        "--guest",
        "--log-level",
    ] {
        assert!(top.contains(word), "{word} missing from:\n{top}");
    }
    let dbg = String::from_utf8(run(&["debug", "--help"]).stdout).unwrap();
    assert!(
        dbg.contains("grant-read") && dbg.contains("grant-write"),
        "{dbg}"
    );
    let read = String::from_utf8(run(&["debug", "grant-read", "--help"]).stdout).unwrap();
    for word in [
        "--domid", "--gref", "--offset", "--len", "--gntdev", "hex=", "ascii=",
    ] {
        assert!(read.contains(word), "{word} missing from:\n{read}");
    }
    let write = String::from_utf8(run(&["debug", "grant-write", "--help"]).stdout).unwrap();
    for word in ["--domid", "--gref", "--offset", "--hex", "--gntdev"] {
        assert!(write.contains(word), "{word} missing from:\n{write}");
    }
}

#[test]
fn grant_read_without_gntdev_fails_at_open() {
    let o = run(&[
        "debug",
        "grant-read",
        "--domid",
        "5",
        "--gref",
        "8",
        "--gntdev",
        "/nonexistent/dev/xen/gntdev",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(
        err.contains("grant-read: open failed (/nonexistent/dev/xen/gntdev): ")
            && err.contains("os error 2"),
        "{err}"
    );
}

#[test]
fn grant_write_without_gntdev_fails_at_open() {
    let o = run(&[
        "debug",
        "grant-write",
        "--domid",
        "5",
        "--gref",
        "8",
        "--hex",
        "00ff",
        "--gntdev",
        "/nonexistent/dev/xen/gntdev",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("grant-write: open failed"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_arguments_exit_2_before_touching_the_device() {
    // The device path does not exist: an "open" error would mean the
    // arguments were not checked first.
    let o = run(&[
        "debug",
        "grant-read",
        "--domid",
        "5",
        "--gref",
        "8",
        "--offset",
        "4000",
        "--len",
        "97",
        "--gntdev",
        "/nonexistent",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad range"), "{}", stderr(&o));

    let o = run(&[
        "debug",
        "grant-write",
        "--domid",
        "5",
        "--gref",
        "8",
        "--hex",
        "abc",
        "--gntdev",
        "/nonexistent",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad --hex: odd number"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn status_says_what_it_prints_and_fails_without_xenstore() {
    let help = String::from_utf8(run(&["status", "--help"]).stdout).unwrap();
    for word in [
        "data/ethos/stats",
        "name=NAME domid=D",
        "error=CODE",
        "--guest",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    // No Xen on the build host (a host that has xenstored is not where this runs).
    if std::path::Path::new("/dev/xen/xenbus").exists() {
        return;
    }
    let o = run(&["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("status: xenstore: "), "{}", stderr(&o));
}

#[test]
fn default_is_serve_and_names_what_it_cannot_open() {
    // No Xen on the build host: serving fails at once, naming the device.
    let root = std::env::temp_dir().join(format!("shadowdaemon-cli-{}", std::process::id()));
    let state = root.join("state");
    for args in [&[][..], &["serve"][..]] {
        let mut all = args.to_vec();
        all.extend([
            "--root",
            root.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--gntdev",
            "/nonexistent/gntdev",
        ]);
        let o = run(&all);
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(err.contains("open failed (/nonexistent/gntdev)"), "{err}");
        assert!(err.contains("not a Xen dom0, or the xen-gntdev"), "{err}");
        assert!(!err.contains("serving"), "said serving without Xen: {err}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_second_daemon_on_one_state_folder_is_refused_with_the_holders_pid() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // This test process plays the first daemon.
    let held = shadowdaemon::lock::StateLock::acquire(&state).unwrap();
    let args = |state: &std::path::Path| {
        vec![
            "serve".to_string(),
            "--root".into(),
            root.path().join("guests").to_str().unwrap().into(),
            "--state-dir".into(),
            state.to_str().unwrap().into(),
            "--gntdev".into(),
            "/nonexistent/gntdev".into(),
        ]
    };
    let a = args(&state);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "another shadowdaemon (pid {}) holds {}",
            std::process::id(),
            state.join("shadowdaemon.lock").display()
        )),
        "{err}"
    );
    assert!(!err.contains("gntdev"), "went on past the lock: {err}");
    assert!(!err.contains("serving"), "{err}");
    // Once the first is gone the next one gets past the lock (to the missing device).
    drop(held);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/gntdev"), "{}", stderr(&o));
}

/// `serve` with these options and a fresh state folder; what it printed.
fn serve_with(extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("guests");
    let state = dir.path().join("state");
    let mut args = vec!["serve", "--state-dir", state.to_str().unwrap()];
    if !extra.contains(&"--root") {
        args.extend(["--root", root.to_str().unwrap()]);
    }
    args.extend(extra);
    run(&args)
}

#[test]
fn an_unwritable_root_is_refused_at_start() {
    // /proc exists and opens as a folder, but nothing can be made in it, root or not.
    let o = serve_with(&["--root", "/proc", "--gntdev", "/nonexistent/gntdev"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("--root /proc is not writable"), "{err}");
    assert!(!err.contains("gntdev"), "checked the devices first: {err}");
}

#[test]
fn each_missing_xen_piece_is_named_with_a_hint_before_serving() {
    let o = serve_with(&["--gntdev", "/dev/null", "--evtchn", "/nonexistent/evtchn"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("open failed (/nonexistent/evtchn)"), "{err}");
    assert!(err.contains("modprobe xen-gntdev xen-evtchn"), "{err}");
    let has_xenstore = [
        "/run/xenstored/socket",
        "/var/run/xenstored/socket",
        "/dev/xen/xenbus",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists());
    if has_xenstore {
        eprintln!("this host has xenstore: its missing-xenstore hint is not tested");
        return;
    }
    let o = serve_with(&["--gntdev", "/dev/null", "--evtchn", "/dev/null"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("no xenstore") && err.contains("is xenstored running?"),
        "{err}"
    );
    assert!(!err.contains("serving"), "{err}");
}

#[test]
fn workers_out_of_range_are_refused_by_the_parser() {
    for bad in ["0", "257", "100000000"] {
        let o = run(&["serve", "--workers", bad]);
        assert_eq!(o.status.code(), Some(2), "--workers {bad}");
        assert!(stderr(&o).contains("--workers"), "{}", stderr(&o));
    }
}
