//! Every script in `scripts/` answers `--help` at once: exit 0 and a
//! `usage:` line naming it, before doing any work. Each runs with a PATH
//! holding only the shell's basic tools (no cargo, rustup, apt-get, qemu,
//! cpio), a fresh HOME and cache, in an empty folder: a script that began
//! to build, install or boot would fail, complain on stderr or leave
//! files. And a bad argument gets the usage line on stderr and exit 2.
//! (`scripts/run`'s own rig test is `tests/run.rs`.)

use rig_tests::repo_root;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The tools a `--help` may use: the shell and text tools.
const BASIC_TOOLS: &[&str] = &[
    "bash", "sh", "env", "dirname", "basename", "date", "sed", "awk", "cat", "head", "tail",
    "grep", "tr",
];

/// Every executable file under `scripts/` (the sourced `lib/common.sh` is
/// not executable, nor is `lib/lbench.c`).
fn scripts() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read scripts/").flatten() {
            let path = entry.path();
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                walk(&path, found);
            } else if meta.permissions().mode() & 0o111 != 0 {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo_root().join("scripts"), &mut found);
    found.sort();
    found
}

/// A scratch folder with `bin/` (the basic tools), `home/`, `cache/` and
/// `work/` (the current folder).
struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    fn new(tag: &str) -> Sandbox {
        let root = std::env::temp_dir().join(format!("ethos-help-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for dir in ["bin", "home", "cache", "work"] {
            fs::create_dir_all(root.join(dir)).expect("sandbox folder");
        }
        for tool in BASIC_TOOLS {
            let found = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("{tool} is not installed"));
            symlink(&found, root.join("bin").join(tool)).expect("link a tool");
        }
        Sandbox { root }
    }

    /// Runs `script ARGS` inside, killed if it takes more than 30 s.
    fn run(&self, script: &Path, args: &[&str]) -> Output {
        let mut child = Command::new(script)
            .args(args)
            .current_dir(self.root.join("work"))
            .env_clear()
            .env("PATH", self.root.join("bin"))
            .env("HOME", self.root.join("home"))
            .env("ETHOS_CACHE", self.root.join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} {args:?} did not answer within 30 s", script.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }

    /// What the script left in the folders it could write to.
    fn leftovers(&self) -> Vec<PathBuf> {
        ["home", "cache", "work"]
            .iter()
            .flat_map(|d| fs::read_dir(self.root.join(d)).expect("read").flatten())
            .map(|e| e.path())
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn name_of(script: &Path) -> String {
    script.file_name().unwrap().to_string_lossy().into_owned()
}

fn has_usage_line(text: &[u8], name: &str) -> bool {
    String::from_utf8_lossy(text)
        .lines()
        .any(|l| l.starts_with("usage: ") && l.contains(name))
}

#[test]
fn every_script_answers_help_at_once_without_side_effects() {
    let scripts = scripts();
    // The ones a user reaches for; any other in scripts/ is checked too.
    for expected in [
        "demo",
        "test",
        "bench",
        "setup",
        "rig",
        "build-guest",
        "build-programs",
        "fuzz",
        "run",
        "symbolize",
    ] {
        assert!(
            scripts.iter().any(|s| name_of(s) == expected),
            "scripts/{expected} is missing or not executable"
        );
    }
    for script in &scripts {
        let name = name_of(script);
        let sandbox = Sandbox::new(&name);
        let out = sandbox.run(script, &["--help"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{name} --help: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
        assert!(
            has_usage_line(&out.stdout, &name),
            "{name} --help prints no 'usage: ... {name}' line:\n{stdout}"
        );
        assert!(
            stderr.is_empty(),
            "{name} --help wrote to stderr (did it start working?):\n{stderr}"
        );
        assert!(
            sandbox.leftovers().is_empty(),
            "{name} --help left files: {:?}",
            sandbox.leftovers()
        );
    }
}

#[test]
fn a_bad_argument_gets_the_usage_line_and_exit_2() {
    for script in scripts() {
        let name = name_of(&script);
        // xl runs vif-rig with actions of its own choosing: an unknown one
        // must not fail a domain's start.
        if name == "vif-rig" {
            continue;
        }
        let sandbox = Sandbox::new(&format!("bad-{name}"));
        let out = sandbox.run(&script, &["--no-such-option"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name} --no-such-option:\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            has_usage_line(&out.stderr, &name),
            "{name} --no-such-option: no usage line on stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(sandbox.leftovers().is_empty(), "{name} left files");
    }
}
