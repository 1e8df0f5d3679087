//! The config reference (`docs/config.md`), generated from the config types themselves: their
//! JSON schemas (schemars) carry every key, its type, its doc comment and its default, so the
//! reference cannot drift from what the loader accepts. `clawdbot config reference` prints it;
//! a test checks that the checked-in file is what it prints.

use std::fmt::Write;

use schemars::SchemaGenerator;
use serde_json::{Map, Value};

/// One key of the reference.
struct Row {
    path: String,
    kind: String,
    required: bool,
    default: Option<Value>,
    example: Option<Value>,
    description: String,
}

impl Row {
    /// The heading row of a section (or of a tagged choice's variants).
    fn section(path: &str, description: &str) -> Self {
        Self {
            path: path.to_string(),
            kind: "section".to_string(),
            required: false,
            default: None,
            example: None,
            description: description.to_string(),
        }
    }
}

/// Walks schemas into rows, resolving `$ref`s against the generator's definitions.
struct Walker<'a> {
    definitions: &'a Map<String, Value>,
    rows: Vec<Row>,
    /// The definitions being walked, outermost first: a type that contains itself
    /// (`storage.control` is a storage section) is named, not walked again.
    visiting: Vec<(String, String)>,
}

impl Walker<'_> {
    /// The schema a `$ref` points at (or the schema itself).
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference
                .strip_prefix("#/$defs/")
                .and_then(|name| self.definitions.get(name))
                .map_or(schema, |target| self.resolve(target)),
            None => schema,
        }
    }

    /// `T` of an `Option<T>` (`anyOf [T, null]`, or a type list with `null`).
    fn without_null<'s>(&'s self, schema: &'s Value) -> &'s Value {
        let schema = self.resolve(schema);
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
            let rest: Vec<&Value> = any.iter().filter(|s| !is_null(s)).collect();
            if let [one] = rest.as_slice() {
                return self.resolve(one);
            }
        }
        schema
    }

    fn kind(&self, schema: &Value) -> String {
        let schema = self.without_null(schema);
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return one_of(values);
        }
        if let Some(variants) = schema.get("oneOf").and_then(Value::as_array)
            && variants.iter().all(|v| v.get("const").is_some())
        {
            let values: Vec<Value> = variants
                .iter()
                .filter_map(|v| v.get("const"))
                .cloned()
                .collect();
            return one_of(&values);
        }
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
            let kinds: Vec<String> = any.iter().map(|s| self.kind(s)).collect();
            return kinds.join(" or ");
        }
        match schema.get("type") {
            Some(Value::String(kind)) => self.named_kind(kind, schema),
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .filter(|k| *k != "null")
                .map(|k| self.named_kind(k, schema))
                .collect::<Vec<_>>()
                .join(" or "),
            _ => "any".to_string(),
        }
    }

    fn named_kind(&self, kind: &str, schema: &Value) -> String {
        match kind {
            "array" => match schema.get("items") {
                Some(items) => format!("list of {}", self.kind(items)),
                None => "list".to_string(),
            },
            "object" => match schema.get("additionalProperties") {
                Some(Value::Object(values)) => {
                    format!(
                        "map of name → {}",
                        self.kind(&Value::Object(values.clone()))
                    )
                }
                _ => "map".to_string(),
            },
            "integer" if schema.get("minimum").and_then(Value::as_f64) == Some(0.0) => {
                "integer ≥ 0".to_string()
            }
            other => other.to_string(),
        }
    }

    /// The definition `schema` refers to, directly or as an `Option`.
    fn reference(schema: &Value) -> Option<String> {
        let direct = schema.get("$ref").and_then(Value::as_str);
        let optional = || {
            schema
                .get("anyOf")?
                .as_array()?
                .iter()
                .find_map(|s| s.get("$ref")?.as_str())
        };
        direct.or_else(optional).map(str::to_string)
    }

    /// Adds the rows of the key at `path` (its keys, for a map of keys).
    fn walk(&mut self, path: &str, property: &Value, default: Option<&Value>) {
        let reference = Self::reference(property);
        if let Some(reference) = &reference {
            if let Some((_, outer)) = self.visiting.iter().find(|(r, _)| r == reference) {
                self.rows.push(Row {
                    path: path.to_string(),
                    kind: format!("the keys of `{outer}`"),
                    required: false,
                    default: None,
                    example: None,
                    description: description(property).unwrap_or_default(),
                });
                return;
            }
            self.visiting.push((reference.clone(), path.to_string()));
        }
        self.walk_resolved(path, property, default);
        if reference.is_some() {
            self.visiting.pop();
        }
    }

    fn walk_resolved(&mut self, path: &str, property: &Value, default: Option<&Value>) {
        // The key's own default (`#[serde(default = …)]`) wins over its section's.
        let default = property.get("default").or(default);
        let description = description(property)
            .or_else(|| description(self.resolve(property)))
            .unwrap_or_default();
        let mut schema = self.without_null(property).clone();
        // One account or a list of them: the account's keys.
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
            && let Some(one) = any
                .iter()
                .find(|s| self.resolve(s).get("properties").is_some())
        {
            schema = self.resolve(one).clone();
        }
        // A tagged choice (`storage: {type: …}`): each variant's keys under its tag.
        if let Some(variants) = schema.get("oneOf").and_then(Value::as_array)
            && variants.iter().all(|v| v.get("properties").is_some())
        {
            self.rows.push(Row::section(path, &description));
            for variant in variants {
                let tag = variant["properties"]
                    .as_object()
                    .and_then(|p| p.iter().find_map(|(k, v)| Some((k, v.get("const")?))));
                let label = tag.map_or_else(String::new, |(key, value)| {
                    format!(" ({key}: {})", value.as_str().unwrap_or_default())
                });
                self.walk_keys(&format!("{path}{label}"), variant, None);
            }
            return;
        }
        if schema.get("properties").is_some() {
            if !description.is_empty() && !path.contains('.') {
                self.rows.push(Row::section(path, &description));
            }
            self.walk_keys(path, &schema, default);
            return;
        }
        // A map whose values have keys of their own (`skills.<name>.…`).
        if let Some(values) = schema.get("additionalProperties")
            && self.resolve(values).get("properties").is_some()
        {
            self.rows.push(Row {
                path: path.to_string(),
                kind: "map of name → keys below".to_string(),
                required: false,
                default: None,
                example: None,
                description,
            });
            let values = self.resolve(values).clone();
            self.walk_keys(&format!("{path}.<name>"), &values, None);
            return;
        }
        let example = property
            .get("examples")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
            .cloned();
        self.rows.push(Row {
            path: path.to_string(),
            kind: self.kind(property),
            required: false,
            default: default.cloned(),
            example,
            description,
        });
    }

    fn walk_keys(&mut self, path: &str, schema: &Value, default: Option<&Value>) {
        let schema = self.resolve(schema).clone();
        let defaults = schema.get("default").or(default).cloned();
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (key, property) in properties {
            if property.get("const").is_some() {
                continue; // a variant's tag, shown in the path
            }
            let inherited = defaults.as_ref().and_then(|d| d.get(key));
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let before = self.rows.len();
            self.walk(&child, property, inherited);
            let required = schema
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|k| k == key));
            if required && let Some(row) = self.rows.get_mut(before) {
                row.required = true;
            }
        }
    }
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

fn description(schema: &Value) -> Option<String> {
    let text = schema.get("description")?.as_str()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn one_of(values: &[Value]) -> String {
    let names: Vec<String> = values
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| {
            format!(
                "`{}`",
                v.as_str().map_or_else(|| v.to_string(), str::to_string)
            )
        })
        .collect();
    format!("one of {}", names.join(", "))
}

/// The unit a key's name says (`_ms`, `_secs`, `_mb`, `_bytes`).
fn unit(path: &str) -> &'static str {
    let key = path.rsplit('.').next().unwrap_or(path);
    if key.ends_with("_ms") || key == "io_timeout" || key == "interval" {
        "milliseconds"
    } else if key.ends_with("_secs") {
        "seconds"
    } else if key.ends_with("_mb") {
        "MiB"
    } else if key.ends_with("_bytes") {
        "bytes"
    } else if key == "retention" {
        "duration (`180d`, `12h`, `30m`)"
    } else {
        ""
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) if text.is_empty() => "`\"\"`".to_string(),
        Value::String(text) => format!("`{text}`"),
        Value::Array(items) if items.is_empty() => "`[]`".to_string(),
        Value::Object(map) if map.is_empty() => "`{}`".to_string(),
        other => format!("`{other}`"),
    }
}

/// What a key looks like written out: its example, else its default, else a placeholder.
fn example(row: &Row) -> String {
    let key = row.path.rsplit('.').next().unwrap_or(&row.path);
    let value = match (&row.example, &row.default) {
        (Some(example), _) => example.to_string(),
        (None, Some(default)) if !default.is_null() => default.to_string(),
        _ if row.kind.starts_with("list") => "[…]".to_string(),
        _ if row.kind.starts_with("one of") => {
            row.kind.split('`').nth(1).unwrap_or("…").to_string()
        }
        _ => format!("<{}>", row.kind),
    };
    format!("`{key}: {value}`")
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Every key of the config, in the order of the reference.
fn rows() -> Vec<Row> {
    let mut generator = SchemaGenerator::default();
    let core = generator.subschema_for::<crate::CoreConfig>();
    let platforms: Vec<(&str, Value)> = clawdbot_platforms::PLATFORMS
        .iter()
        .map(|p| (p.config_key, (p.schema)(&mut generator).to_value()))
        .collect();
    let definitions = generator.definitions().clone();
    let mut walker = Walker {
        definitions: &definitions,
        rows: Vec::new(),
        visiting: Vec::new(),
    };
    for (key, schema) in &platforms {
        walker.walk(key, schema, None);
    }
    walker.walk_keys("", &core.to_value(), None);
    walker.rows
}

/// The keys whose doc comment is missing (the reference would say nothing of them).
pub fn undocumented_keys() -> Vec<String> {
    rows()
        .into_iter()
        .filter(|row| row.description.is_empty())
        .map(|row| row.path)
        .collect()
}

/// The reference, as Markdown.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Config reference\n\n\
         Every key clawdbot reads, generated from the config types (their doc comments, types \
         and defaults) by `clawdbot config reference > docs/config.md`; a test fails when this \
         file differs from what the code says, so edit the doc comments, not this file.\n\n\
         A key left out takes its default. Platform sections are one account (a map) or \
         several (a list, each with its own `id`). Values may be `${ENV_VAR}`, \
         `${ENV_VAR:-default}` or `${secret:NAME}` (see the README).\n",
    );
    let mut section = String::new();
    for row in &rows() {
        let top = row.path.split(['.', ' ']).next().unwrap_or_default();
        if top != section {
            section = top.to_string();
            let _written = write!(
                out,
                "\n## `{section}`\n\n| key | type | default | unit | example | what it is |\n|---|---|---|---|---|---|\n"
            );
        }
        if row.kind == "section" {
            let _written = writeln!(
                out,
                "| `{}` | section | | | | {} |",
                row.path,
                cell(&row.description)
            );
            continue;
        }
        // A key required inside a section that has a default (`robot_limit.count`) shows the
        // default: it is required only of a section written out.
        let default = match &row.default {
            Some(value) if !value.is_null() => shown(value),
            _ if row.required => "required".to_string(),
            _ => "—".to_string(),
        };
        let _written = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            row.path,
            cell(&row.kind),
            cell(&default),
            unit(&row.path),
            cell(&example(row)),
            cell(&row.description)
        );
    }
    out
}
