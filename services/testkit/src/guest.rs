//! Builds the skill components tests run (Rust guests, `cargo build --target wasm32-wasip2`),
//! into one target directory shared by every test so each guest compiles once per change.

use std::path::{Path, PathBuf};

/// The repository's root (this crate is `services/testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|error| panic!("repo root: {error}"))
}

/// Where guest builds go (`CARGO_TARGET_DIR` for `clawdbot skill build` in tests too).
pub fn target_dir() -> PathBuf {
    repo_root().join("target/wasm-guests")
}

/// Builds the guest project at `dir` (relative to the repo root) with extra `env`, and
/// returns the component's bytes.
///
/// # Panics
/// The build fails (the output is in the message): a missing `wasm32-wasip2` target says so.
pub fn build(dir: &str, env: &[(&str, &str)]) -> Vec<u8> {
    let project = repo_root().join(dir);
    let output = std::process::Command::new("cargo")
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(project.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir())
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|error| panic!("cargo: {error}"));
    assert!(
        output.status.success(),
        "building {dir} failed (is `rustup target add wasm32-wasip2` done?):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name = std::fs::read_to_string(project.join("Cargo.toml"))
        .ok()
        .and_then(|toml| {
            toml.lines().find_map(|l| {
                l.strip_prefix("name = \"")?
                    .strip_suffix('"')
                    .map(str::to_string)
            })
        })
        .unwrap_or_else(|| panic!("{dir}/Cargo.toml names no package"))
        .replace('-', "_");
    let wasm = target_dir().join(format!("wasm32-wasip2/release/{name}.wasm"));
    std::fs::read(&wasm).unwrap_or_else(|error| panic!("{}: {error}", wasm.display()))
}
