//! Runs the Xen-in-QEMU rig (`scripts/rig`) from Rust tests and reads back
//! what it collected: each guest's console log and final state, the facts
//! dom0 reported, and the overall verdict.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// How one guest ended, and what it printed.
#[derive(Debug, Clone)]
pub struct GuestRun {
    pub name: String,
    /// `shutdown`, `crashed`, `gone`, `timeout` or `create-failed`.
    pub state: String,
    pub expected: String,
    pub log: String,
}

impl GuestRun {
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.log.lines()
    }

    /// The first line containing `needle`, if any.
    pub fn line_with(&self, needle: &str) -> Option<&str> {
        self.lines().find(|l| l.contains(needle))
    }

    /// Asserts that each of `needles` is in some line of the console;
    /// a failure names the first one missing and shows the console.
    #[track_caller]
    pub fn assert_lines(&self, needles: &[&str]) {
        for needle in needles {
            assert!(
                self.line_with(needle).is_some(),
                "{}: no line with {needle:?} in its console:\n{}",
                self.name,
                self.log
            );
        }
    }
}

/// Everything one rig run produced.
#[derive(Debug)]
pub struct RigRun {
    pub passed: bool,
    /// The `result` file: PASS, or FAIL and the reasons.
    pub verdict: String,
    pub facts: BTreeMap<String, String>,
    pub guests: BTreeMap<String, GuestRun>,
    pub out_dir: PathBuf,
    /// What the runner printed (progress and, on failure, the diagnosis).
    pub transcript: String,
}

impl RigRun {
    /// The guest called `name`; panics with the rig's diagnosis if absent.
    pub fn guest(&self, name: &str) -> &GuestRun {
        self.guests.get(name).unwrap_or_else(|| {
            panic!(
                "the rig has no guest {name:?}; verdict: {}\n{}",
                self.verdict, self.transcript
            )
        })
    }

    pub fn fact(&self, key: &str) -> &str {
        self.facts
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("dom0 reported no fact {key:?}"))
    }
}

/// Builds the guest kernel and returns the path of the image users run.
pub fn build_guest() -> PathBuf {
    run_build_guest(&[])
}

/// Builds the guest kernel and returns the path of the image with
/// networking (`guest-net`).
pub fn build_net_guest() -> PathBuf {
    run_build_guest(&["--net"])
}

/// Builds the guest kernel and returns the path of the image with the test
/// apps linked in (`guest-test`).
pub fn build_test_guest() -> PathBuf {
    run_build_guest(&["--test-apps"])
}

/// Builds the user programs and returns the path of their boot archive
/// (`programs.cpio`, the xl config's `ramdisk=`).
pub fn build_programs() -> PathBuf {
    run_build_guest(&["--programs"])
}

/// The archive of the programs a user runs (`user.cpio`, the xl config's
/// `ramdisk=`): the network guest boots with it, so the kernel's heap (the
/// boot mapping's tail, after the archive) is what a user's would be.
pub fn build_user_programs() -> PathBuf {
    run_build_guest(&["--user-programs"])
}

fn run_build_guest(args: &[&str]) -> PathBuf {
    let out = Command::new(repo_root().join("scripts/build-guest"))
        .args(args)
        .output()
        .expect("run scripts/build-guest");
    assert!(
        out.status.success(),
        "scripts/build-guest failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .expect("image path"),
    )
}

/// Runs `scripts/rig` with a scenario from `scripts/scenarios/` and the given
/// guest images; the results land in `target/rig/<scenario>/`.
pub fn run_rig(scenario: &str, guests: &[PathBuf], extra_args: &[&str]) -> RigRun {
    let root = repo_root();
    let out_dir = root.join("target/rig").join(scenario);
    let mut cmd = Command::new(root.join("scripts/rig"));
    cmd.arg("--scenario").arg(
        root.join("scripts/scenarios")
            .join(format!("{scenario}.sh")),
    );
    cmd.arg("--out").arg(&out_dir);
    for g in guests {
        cmd.arg("--guest").arg(g);
    }
    cmd.args(extra_args);
    let output = cmd.output().expect("run scripts/rig");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Shown by the harness for failing tests only.
    println!("{transcript}");
    read_results(&out_dir, output.status.success(), transcript)
}

fn read_results(out_dir: &Path, passed: bool, transcript: String) -> RigRun {
    let verdict =
        fs::read_to_string(out_dir.join("result")).unwrap_or_else(|_| "no result file".into());
    let facts = fs::read_to_string(out_dir.join("facts"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let mut guests = BTreeMap::new();
    let dir = out_dir.join("guests");
    // Every name with a log or a final state (dom0 helpers log without a state).
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    e.path()
                        .file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    for name in names {
        let state_line = fs::read_to_string(dir.join(format!("{name}.state"))).unwrap_or_default();
        let field = |key: &str| {
            state_line
                .split_whitespace()
                .find_map(|w| w.strip_prefix(key).map(str::to_string))
                .unwrap_or_default()
        };
        let log = fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        guests.insert(
            name.clone(),
            GuestRun {
                name,
                state: field("state="),
                expected: field("expected="),
                log,
            },
        );
    }
    RigRun {
        passed,
        verdict,
        facts,
        guests,
        out_dir: out_dir.to_path_buf(),
        transcript,
    }
}

/// Parses `key=value` words that follow `marker` in a log line.
pub fn fields_after<'a>(line: &'a str, marker: &str) -> BTreeMap<&'a str, &'a str> {
    line.split_once(marker)
        .map(|(_, rest)| {
            rest.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .collect()
        })
        .unwrap_or_default()
}
