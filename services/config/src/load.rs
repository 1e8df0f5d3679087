//! Stage 1: read YAML (a file or a directory), merge, and substitute `${VAR}` references.

use std::path::Path;

use serde_json::Value;

use crate::{ConfigError, Env};

/// Reads the config at `path` into one tree with every `${VAR}` replaced.
///
/// # Errors
/// Unreadable files, invalid YAML, and unset variables (all of them, with their key paths).
pub fn load_value(path: &Path, env: &dyn Env) -> Result<Value, ConfigError> {
    let metadata = std::fs::metadata(path).map_err(|error| {
        ConfigError::one(format!("cannot read config `{}`: {error}", path.display()))
    })?;
    let mut merged = Value::Null;
    if metadata.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|error| {
                ConfigError::one(format!("cannot list `{}`: {error}", path.display()))
            })?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|file| {
                matches!(
                    file.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                )
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ConfigError::one(format!(
                "`{}` holds no *.yaml or *.yml file",
                path.display()
            )));
        }
        for file in files {
            merge(&mut merged, read_yaml(&file)?);
        }
    } else {
        merged = read_yaml(path)?;
    }
    let mut problems = Vec::new();
    substitute(&mut merged, "", env, &mut problems);
    if problems.is_empty() {
        Ok(merged)
    } else {
        Err(ConfigError { problems })
    }
}

/// Reads the config at `path` with every `${secret:NAME}` left empty; returns that tree and
/// the secret names it refers to (empty when it refers to none).
///
/// # Errors
/// As [`load_value`], for anything but the secrets.
pub fn load_secret_references(
    path: &Path,
) -> Result<(Value, std::collections::BTreeSet<String>), ConfigError> {
    let recorder = crate::env::SecretRecorder::default();
    let value = load_value(path, &recorder)?;
    let names = recorder
        .names
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok((value, names))
}

fn read_yaml(file: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|error| {
        ConfigError::one(format!("cannot read config `{}`: {error}", file.display()))
    })?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_saphyr::from_str(&text).map_err(|error| {
        ConfigError::one(format!("`{}` is not valid YAML: {error}", file.display()))
    })
}

/// Merges `overlay` into `base`: maps key by key, anything else replaced.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base_map), Value::Object(overlay_map)) => {
            for (key, value) in overlay_map {
                merge(base_map.entry(key).or_insert(Value::Null), value);
            }
        }
        (_, Value::Null) => {}
        (base, overlay) => *base = overlay,
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string of the tree. Values stay strings
/// (a numeric secret must not turn into a number); numeric fields accept numeric strings.
fn substitute(value: &mut Value, path: &str, env: &dyn Env, problems: &mut Vec<String>) {
    match value {
        Value::String(text) if text.contains("${") => match expand(text, env) {
            Ok(expanded) => *value = Value::String(expanded),
            Err(name) => problems.push(match name.strip_prefix(crate::env::SECRET_PREFIX) {
                Some(secret) => format!(
                    "`{path}`: secret `{secret}` is not in the store (`clawdbot security set {secret}` stores it)"
                ),
                None => format!("`{path}`: environment variable `{name}` is not set"),
            }),
        },
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                substitute(child, &child_path, env, problems);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter_mut().enumerate() {
                substitute(child, &format!("{path}[{index}]"), env, problems);
            }
        }
        _ => {}
    }
}

/// Expands the references in `text`; `Err(name)` names the first unset variable.
fn expand(text: &str, env: &dyn Env) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            // No closing brace: not a reference, keep it literally.
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let reference = &rest[start + 2..start + len];
        let (name, default) = match reference.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (reference, None),
        };
        match (env.get(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(name.to_string()),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
