//! Where things are, and what to do when a prerequisite is missing.

use std::io::Write;
use std::path::PathBuf;

/// The workspace root (the folder holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The tests package sits one level below the root, in `tests/`.
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Whether we run in CI: `CI` set to anything but empty, `0` or `false`.
pub fn ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")),
        Err(_) => false,
    }
}

/// A path from the environment variable `var`, or `default`.
pub fn path_from_env(var: &str, default: PathBuf) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => default,
    }
}

/// Decides what a test does when something it needs is missing.
///
/// `missing` lists what is missing (empty: nothing). With nothing missing,
/// returns `true` (run the test). Otherwise, in CI it panics, failing the
/// test: CI installs everything, so a missing piece is a broken setup. On
/// a developer machine it prints a skip line and returns `false`.
pub fn skip_or_fail(test: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let what = missing.join("; ");
    if ci() {
        panic!("{test}: cannot run, CI is set and prerequisites are missing: {what}");
    }
    // Written to stderr directly, not with eprintln!: the test harness
    // captures the macros' output of passing tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: missing {what} (scripts/test installs and builds everything)"
    );
    false
}
