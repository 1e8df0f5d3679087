//! Skill packages: a directory with a `skill.yaml` manifest (and whatever files the skill
//! ships), packed by `clawdbot skill build` into one `.skill` archive — a tar file with a
//! `SHA256SUMS` listing every file's checksum — and registered on a running cluster by
//! `clawdbot skill load`, which checks every checksum first.
//!
//! ```yaml
//! # skill.yaml
//! name: weather
//! version: 1.2.0
//! description: "/weather <city>: today's weather"
//! remote: "http://weather-skill:50051"   # the process serving the Skill gRPC service
//! commands: ["/weather"]
//! timeout_ms: 3000
//! ```
//! Or a WebAssembly component skill (`component:` instead of `remote:`), built from the
//! directory's Rust, Python or JavaScript project and packed as `skill.wasm`, with the hosts
//! and stores it may reach:
//! ```yaml
//! name: echo
//! version: 1.0.0
//! component: rust                   # or python, js, or path/to/skill.wasm
//! capabilities: {http_hosts: ["api.example.com"], kv: true, history: false}
//! ```
//! `build --key` signs the archive (Ed25519 over `SHA256SUMS`, in `SIGNATURE`); workers run
//! components signed by a key in `worker.wasm.trusted_keys` only, unless told otherwise.

mod component;
pub mod python;
pub mod sign;

pub use sign::SignatureInfo;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::options::Options;

/// The manifest file's name inside a package.
pub const MANIFEST_FILE: &str = "skill.yaml";
/// The checksum file's name inside an archive.
const SUMS_FILE: &str = "SHA256SUMS";
/// The signature file's name inside an archive (not itself in the sums it signs).
const SIGNATURE_FILE: &str = "SIGNATURE";
/// The component's name inside an archive.
pub const COMPONENT_FILE: &str = "skill.wasm";
/// Largest archive `load` reads (a manifest and a few files, not a data set).
const MAX_ARCHIVE_BYTES: u64 = 64 << 20;

/// What `skill.yaml` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageManifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// The address of the process serving the skill (`http://host:port`).
    #[serde(default)]
    pub remote: Option<String>,
    #[serde(default)]
    pub commands: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// How the WebAssembly component is built: `rust`, `python`, `js`, or a `.wasm` path.
    #[serde(default)]
    pub component: Option<String>,
    /// What a component skill may reach (nothing unless listed).
    #[serde(default)]
    pub capabilities: clawdbot_wasm::Capabilities,
}

impl PackageManifest {
    /// Returns the problems with this manifest, naming the file and key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
        if !name_ok {
            problems.push(format!(
                "`{MANIFEST_FILE}: name` must be lowercase letters, digits, `_` or `.`, got `{}`",
                self.name
            ));
        }
        if self.version.is_empty() {
            problems.push(format!("`{MANIFEST_FILE}: version` is empty"));
        }
        match (&self.remote, &self.component) {
            (Some(remote), None)
                if !(remote.starts_with("http://") || remote.starts_with("https://")) =>
            {
                problems.push(format!("`{MANIFEST_FILE}: remote` must be an http:// or https:// address, got `{remote}`"));
            }
            (Some(_), None) | (None, Some(_)) => {}
            (Some(_), Some(_)) => problems.push(format!(
                "`{MANIFEST_FILE}`: give `remote` (a gRPC skill) or `component` (a WebAssembly one), not both"
            )),
            (None, None) => problems.push(format!(
                "`{MANIFEST_FILE}: remote` is missing: a package describes a skill served over gRPC (`remote`) or a WebAssembly component (`component`)"
            )),
        }
        problems
    }

    /// Returns the options a remote skill is built from.
    pub fn options(&self) -> Options {
        let mut options = Options::new();
        if let Some(timeout) = self.timeout_ms {
            options.insert("timeout_ms".into(), timeout.into());
        }
        if !self.description.is_empty() {
            options.insert("description".into(), self.description.clone().into());
        }
        options.insert("commands".into(), self.commands.clone().into());
        options.insert("keywords".into(), self.keywords.clone().into());
        options.insert("patterns".into(), self.patterns.clone().into());
        options
    }
}

fn parse_manifest(text: &str) -> Result<PackageManifest, String> {
    let manifest: PackageManifest = serde_saphyr::from_str(text)
        .map_err(|error| format!("`{MANIFEST_FILE}` is not a valid manifest: {error}"))?;
    let problems = manifest.validate();
    if problems.is_empty() {
        Ok(manifest)
    } else {
        Err(problems.join("\n"))
    }
}

/// Packs the skill in `dir` into the archive `output`, signed with `key` if given; returns its
/// manifest and the archive's SHA-256. A component skill is built first and packed as
/// [`COMPONENT_FILE`] beside its manifest; any other packs the directory's files.
///
/// # Errors
/// A missing or invalid manifest, a build that fails (naming a missing tool), or a file that
/// cannot be read or written (naming it).
pub fn build(
    dir: &Path,
    output: &Path,
    key: Option<&ed25519_dalek::SigningKey>,
) -> Result<(PackageManifest, String), String> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|error| format!("cannot read `{}`: {error}", manifest_path.display()))?;
    let manifest = parse_manifest(&text)?;
    let mut files = BTreeMap::new();
    match &manifest.component {
        Some(how) => {
            files.insert(MANIFEST_FILE.to_string(), text.into_bytes());
            files.insert(COMPONENT_FILE.to_string(), component::build(dir, how)?);
        }
        None => collect(dir, dir, output, &mut files)?,
    }
    pack(manifest, &files, output, key)
}

/// Packs a single-file Python skill (a `BaseSkill` subclass in `file`, no `skill.yaml`): its
/// manifest read from the class, its component built with the SDK this binary ships.
///
/// # Errors
/// As [`build`], and a file without exactly one skill class.
pub fn build_python_file(
    file: &Path,
    output: &Path,
    key: Option<&ed25519_dalek::SigningKey>,
) -> Result<(PackageManifest, String), String> {
    let (text, component) = python::build_file(file)?;
    let manifest = parse_manifest(&text)?;
    let files = BTreeMap::from([
        (MANIFEST_FILE.to_string(), text.into_bytes()),
        (COMPONENT_FILE.to_string(), component),
    ]);
    pack(manifest, &files, output, key)
}

/// Writes `files` with their checksums (signed with `key`, if any) as the archive `output`.
fn pack(
    manifest: PackageManifest,
    files: &BTreeMap<String, Vec<u8>>,
    output: &Path,
    key: Option<&ed25519_dalek::SigningKey>,
) -> Result<(PackageManifest, String), String> {
    let mut sums = String::new();
    for (name, bytes) in files {
        sums.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(bytes))));
    }
    let mut archive = tar::Builder::new(Vec::new());
    let mut append = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, name, bytes)
            .map_err(|error| format!("cannot pack `{name}`: {error}"))
    };
    for (name, bytes) in files {
        append(name, bytes)?;
    }
    append(SUMS_FILE, sums.as_bytes())?;
    if let Some(key) = key {
        let signature = serde_json::to_vec(&sign::sign(key, &sums))
            .map_err(|error| format!("cannot write the signature: {error}"))?;
        append(SIGNATURE_FILE, &signature)?;
    }
    let bytes = archive
        .into_inner()
        .map_err(|error| format!("cannot finish the archive: {error}"))?;
    std::fs::write(output, &bytes)
        .map_err(|error| format!("cannot write `{}`: {error}", output.display()))?;
    Ok((manifest, hex::encode(Sha256::digest(&bytes))))
}

fn collect(
    root: &Path,
    dir: &Path,
    output: &Path,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|error| format!("cannot list `{}`: {error}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let path: PathBuf = entry.path();
        if path == output
            || path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, output, files)?;
        } else {
            let name = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let bytes = std::fs::read(&path)
                .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
            files.insert(name, bytes);
        }
    }
    Ok(())
}

/// A package as loaded: checked against its checksums and, when signed, its signature.
#[derive(Debug, Clone)]
pub struct LoadedPackage {
    pub manifest: PackageManifest,
    /// What the cluster registers (and workers check again before running it).
    pub registered: RegisteredSkill,
    /// The WebAssembly component, for component skills.
    pub component: Option<Vec<u8>>,
}

/// A loaded skill as the registry keeps it: the manifest exactly as signed, the checksums,
/// the signature, and the component's checksum (the component itself is stored by it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredSkill {
    pub manifest_yaml: String,
    pub sums: String,
    pub signature: Option<SignatureInfo>,
    pub component_sha256: Option<String>,
}

impl RegisteredSkill {
    /// Checks the registered skill again (the store is not trusted more than the archive):
    /// the manifest and `component` match the checksums, the signature verifies, and the trust
    /// policy accepts its signer; returns the manifest.
    ///
    /// # Errors
    /// Anything that does not match, or an untrusted or missing signature.
    pub fn verify(
        &self,
        component: Option<&[u8]>,
        trusted: &[String],
        allow_unsigned: bool,
    ) -> Result<PackageManifest, String> {
        let listed = |name: &str| {
            self.sums.lines().find_map(|line| {
                let (sum, file) = line.split_once("  ")?;
                (file == name).then(|| sum.to_string())
            })
        };
        let manifest_sum = hex::encode(Sha256::digest(self.manifest_yaml.as_bytes()));
        if listed(MANIFEST_FILE).as_deref() != Some(manifest_sum.as_str()) {
            return Err(format!(
                "the registered {MANIFEST_FILE} does not match its checksum"
            ));
        }
        if let Some(bytes) = component {
            let sum = hex::encode(Sha256::digest(bytes));
            if listed(COMPONENT_FILE).as_deref() != Some(sum.as_str())
                || self.component_sha256.as_deref() != Some(sum.as_str())
            {
                return Err(format!(
                    "the stored {COMPONENT_FILE} does not match its checksum"
                ));
            }
        }
        if let Some(signature) = &self.signature {
            sign::verify(signature, &self.sums)?;
        }
        sign::check_trust(self.signature.as_ref(), trusted, allow_unsigned)?;
        parse_manifest(&self.manifest_yaml)
    }
}

/// Reads a `.skill` archive (checking every file against `SHA256SUMS`, and the signature when
/// there is one) or a bare `skill.yaml` of a remote skill.
///
/// # Errors
/// An unreadable file, a checksum or signature that does not match, a file not listed, or an
/// invalid manifest.
pub fn load(path: &Path) -> Result<LoadedPackage, String> {
    if path.extension().is_some_and(|e| e == "skill") {
        load_archive(path)
    } else {
        load_manifest(path)
    }
}

/// A bare `skill.yaml`: a remote skill (a component skill must be built into an archive).
fn load_manifest(path: &Path) -> Result<LoadedPackage, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    let manifest = parse_manifest(&text)?;
    if manifest.component.is_some() {
        return Err(format!(
            "`{}` describes a component skill: build it first (`clawdbot skill build {} --output NAME.skill`)",
            path.display(),
            path.parent().unwrap_or(Path::new(".")).display()
        ));
    }
    let sums = format!(
        "{}  {MANIFEST_FILE}\n",
        hex::encode(Sha256::digest(text.as_bytes()))
    );
    Ok(LoadedPackage {
        manifest,
        registered: RegisteredSkill {
            manifest_yaml: text,
            sums,
            signature: None,
            component_sha256: None,
        },
        component: None,
    })
}

/// A `.skill` archive: every file checked against `SHA256SUMS` (and its signature, if signed).
fn load_archive(path: &Path) -> Result<LoadedPackage, String> {
    let mut files = read_archive(path)?;
    let sums = files
        .remove(SUMS_FILE)
        .ok_or_else(|| format!("`{}` has no {SUMS_FILE}", path.display()))?;
    let sums = String::from_utf8(sums).map_err(|_| format!("{SUMS_FILE} is not text"))?;
    let signature = match files.remove(SIGNATURE_FILE) {
        Some(bytes) => {
            let info: SignatureInfo = serde_json::from_slice(&bytes)
                .map_err(|error| format!("{SIGNATURE_FILE} is malformed: {error}"))?;
            sign::verify(&info, &sums)?;
            Some(info)
        }
        None => None,
    };
    check_sums(&sums, &files)?;
    let manifest_yaml = files
        .get(MANIFEST_FILE)
        .ok_or_else(|| format!("`{}` has no {MANIFEST_FILE}", path.display()))?;
    let manifest_yaml = String::from_utf8(manifest_yaml.clone())
        .map_err(|_| format!("{MANIFEST_FILE} is not UTF-8"))?;
    let manifest = parse_manifest(&manifest_yaml)?;
    let component = files.remove(COMPONENT_FILE);
    if manifest.component.is_some() && component.is_none() {
        return Err(format!("`{}` has no {COMPONENT_FILE}", path.display()));
    }
    Ok(LoadedPackage {
        manifest,
        registered: RegisteredSkill {
            manifest_yaml,
            sums,
            signature,
            component_sha256: component
                .as_ref()
                .map(|bytes| hex::encode(Sha256::digest(bytes))),
        },
        component,
    })
}

/// Every file of the archive at `path` by name, reading at most `MAX_ARCHIVE_BYTES`.
fn read_archive(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let file = std::fs::File::open(path)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    let mut archive = tar::Archive::new(file.take(MAX_ARCHIVE_BYTES));
    let mut files = BTreeMap::new();
    let entries = archive
        .entries()
        .map_err(|error| format!("`{}` is not a skill archive: {error}", path.display()))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|error| format!("`{}` is damaged: {error}", path.display()))?;
        let name = entry
            .path()
            .map_err(|error| format!("bad entry name: {error}"))?
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|error| format!("cannot read `{name}` in the archive: {error}"))?;
        files.insert(name, bytes);
    }
    Ok(files)
}

/// Every file is listed in `sums` with its SHA-256, and every listed file is there.
fn check_sums(sums: &str, files: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let mut listed = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (sum, name) = line
            .split_once("  ")
            .ok_or_else(|| format!("malformed {SUMS_FILE} line `{line}`"))?;
        let bytes = files
            .get(name)
            .ok_or_else(|| format!("`{name}` is listed in {SUMS_FILE} but missing"))?;
        if hex::encode(Sha256::digest(bytes)) != sum {
            return Err(format!(
                "checksum mismatch for `{name}`: the archive was altered"
            ));
        }
        listed += 1;
    }
    if listed != files.len() {
        return Err(format!("the archive holds files not listed in {SUMS_FILE}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
