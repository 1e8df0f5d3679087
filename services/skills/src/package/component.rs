//! Builds a skill project into a WebAssembly component with the toolchain of its language:
//! Rust with `cargo build --target wasm32-wasip2`, Python with `componentize-py` (python.rs), JavaScript
//! with `jco componentize`. A missing tool is named, with how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the WIT world is, for the JavaScript toolchain: the project's own `wit/` directory,
/// else clawdbot's `proto/wit` above it. (Python takes the world shipped in this binary.)
fn wit_dir(dir: &Path) -> Result<PathBuf, String> {
    let own = dir.join("wit");
    if own.is_dir() {
        return Ok(own);
    }
    dir.ancestors()
        .map(|a| a.join("proto/wit"))
        .find(|p| p.is_dir())
        .ok_or_else(|| {
            format!(
                "`{}` has no `wit/` directory with the skill world (copy clawdbot's proto/wit)",
                dir.display()
            )
        })
}

pub(super) fn run(mut command: Command, tool: &str, install: &str) -> Result<(), String> {
    let output = command.output().map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => format!("`{tool}` is not installed: {install}"),
        _ => format!("cannot run `{tool}`: {error}"),
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{tool}` failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        ))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read `{}`: {error}", path.display()))
}

/// Builds the component `how` (`rust`, `python`, `js`, or a path to a `.wasm` relative to
/// `dir`) and returns its bytes.
///
/// # Errors
/// An unknown `how`, a missing tool (named, with how to install it), or a failed build.
pub fn build(dir: &Path, how: &str) -> Result<Vec<u8>, String> {
    match how {
        "rust" => build_rust(dir),
        "python" => super::python::build_component(dir, "app"),
        "js" => build_to_file(
            dir,
            "jco",
            "npm install -g @bytecodealliance/jco @bytecodealliance/componentize-js",
            |c, wit, out| {
                c.args(["componentize", "app.js", "--wit"])
                    .arg(wit)
                    .args(["--world-name", "skill", "-o"])
                    .arg(out);
            },
        ),
        path if path.ends_with(".wasm") => read(&dir.join(path)),
        other => Err(format!(
            "`skill.yaml: component` is `{other}`: expected `rust`, `python`, `js` or a path to a .wasm file"
        )),
    }
}

/// Runs `tool` in `dir` with the arguments `args` adds (given the WIT directory and the output
/// file), then reads and removes the component it wrote.
fn build_to_file(
    dir: &Path,
    tool: &str,
    install: &str,
    args: impl FnOnce(&mut Command, &Path, &Path),
) -> Result<Vec<u8>, String> {
    let out = std::env::temp_dir().join(format!("skill-{}.wasm", std::process::id()));
    let mut command = Command::new(tool);
    command.current_dir(dir);
    args(&mut command, &wit_dir(dir)?, &out);
    run(command, tool, install)?;
    let bytes = read(&out);
    let _removed = std::fs::remove_file(&out);
    bytes
}

fn build_rust(dir: &Path) -> Result<Vec<u8>, String> {
    let manifest = dir.join("Cargo.toml");
    let mut command = Command::new("cargo");
    command
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest);
    run(
        command,
        "cargo",
        "install Rust with rustup, then `rustup target add wasm32-wasip2`",
    )
    .map_err(|error| {
        if error.contains("wasm32-wasip2") && error.contains("target may not be installed") {
            "the `wasm32-wasip2` target is not installed: `rustup target add wasm32-wasip2`"
                .to_string()
        } else {
            error
        }
    })?;
    // cargo metadata names the target directory (CARGO_TARGET_DIR, a workspace's) and the
    // library, whose name is the file's.
    let output = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .map_err(|error| format!("cannot run `cargo metadata`: {error}"))?;
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("`cargo metadata` said something unexpected: {error}"))?;
    let target = metadata["target_directory"]
        .as_str()
        .ok_or("`cargo metadata` names no target directory")?;
    let library = metadata["packages"][0]["targets"]
        .as_array()
        .and_then(|targets| {
            targets.iter().find(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
            })
        })
        .and_then(|t| t["name"].as_str())
        .ok_or("the Rust project has no `crate-type = [\"cdylib\"]` library: a component is one")?
        .replace('-', "_");
    read(&Path::new(target).join(format!("wasm32-wasip2/release/{library}.wasm")))
}
