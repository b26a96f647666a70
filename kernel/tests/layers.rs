//! The kernel's import rule, checked: every `crate::` path in a module
//! points to its own folder or to a layer below it (ARCHITECTURE.md). A
//! new arrow back up fails here, with the file and the line.

use std::fs;
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may name its own folder and any
/// folder of a lower layer.
const LAYERS: &[&[&str]] = &[
    &["status", "live_stats", "entropy"],
    &["clock"],
    &["console"],
    &["panic"],
    &["event"],
    &["xen"],
    &["mm"],
    &["proc"],
    &["drivers"],
    &["net", "rpc"],
    &["syscall"],
    &["apps"],
    &["boot"],
];

/// Pure modules: they import nothing of the kernel but each other, so any
/// layer may use them (the network's frame checks, checksums and segment
/// joining; timers; statuses; the live figures' line; the secrets' pool).
const PURE: &[&str] = &[
    "net::inetsum",
    "net::netcheck",
    "net::tso",
    "net::txcsum",
    "event::timers",
    "mm::range",
    "status",
    "live_stats",
    "entropy",
];

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read kernel/src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file relative to `src` ("net::tso", "boot").
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|c| c != "mod")
        .collect();
    parts.join("::")
}

/// Every `crate::a::b` path in `text`, as (line number, "a", "a::b").
fn crate_paths(text: &str) -> Vec<(usize, String, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut segs = path.split("::").filter(|s| !s.is_empty());
            let top = segs.next().unwrap_or("").to_string();
            let second = segs
                .next()
                .map(|s| format!("{top}::{s}"))
                .unwrap_or_default();
            found.push((n + 1, top, second));
        }
    }
    found
}

#[test]
fn imports_only_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let top = module.split("::").next().unwrap_or("").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(own) = layer_of(&top) else {
            wrong.push(format!("{}: folder `{top}` is in no layer", file.display()));
            continue;
        };
        let pure = PURE.contains(&module.as_str());
        let text = fs::read_to_string(file).expect("read source");
        for (line, target, target2) in crate_paths(&text) {
            let target_pure = PURE.contains(&target.as_str()) || PURE.contains(&target2.as_str());
            if pure && !target_pure {
                wrong.push(format!(
                    "{}:{line}: pure module {module} uses crate::{target}",
                    file.display()
                ));
                continue;
            }
            if target == top || target_pure {
                continue;
            }
            match layer_of(&target) {
                Some(l) if l < own => {}
                Some(_) => wrong.push(format!(
                    "{}:{line}: {module} (layer {own}) uses crate::{target}, which is not below it",
                    file.display()
                )),
                None => wrong.push(format!(
                    "{}:{line}: crate::{target} is in no layer",
                    file.display()
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "arrows back up:\n{}", wrong.join("\n"));
}

#[test]
fn hal_never_names_the_kernel() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hal/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            assert!(
                !code.contains("kernel::"),
                "{}:{}: hal names the kernel: {line}",
                file.display(),
                n + 1
            );
        }
    }
}
