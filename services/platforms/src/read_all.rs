//! Reading a config section while collecting every unknown key, not only the first: serde stops
//! at the first unknown field, so the reader takes that key out and reads again (a bounded
//! number of times), naming each key with the nearest valid one.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// One problem in a section: where (`worker.loop_gard`, `[1].api_root`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadProblem {
    pub path: String,
    pub message: String,
}

/// More unknown keys than this in one section are not worth listing one by one.
const MAX_UNKNOWN: usize = 64;

/// Deserializes `value` as `T`; on failure returns every unknown key (each with the nearest
/// valid key, when one is close) and the first other problem.
///
/// # Errors
/// The problems found.
pub fn read_all<T: DeserializeOwned>(mut value: Value) -> Result<T, Vec<ReadProblem>> {
    let mut problems = Vec::new();
    for _ in 0..=MAX_UNKNOWN {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(read) if problems.is_empty() => return Ok(read),
            Ok(_) => return Err(problems),
            Err(error) => error,
        };
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = error.into_inner().to_string();
        // A list of accounts reads its items itself and says where: `at `[1].x`: …`.
        let (path, message) = match message
            .strip_prefix("at `")
            .and_then(|rest| rest.split_once("`: "))
        {
            Some((inner, rest)) => (join(&path, inner), rest.to_string()),
            None => (path, message),
        };
        match unknown_field(&message) {
            Some((field, expected)) if remove(&mut value, &path) => {
                let hint = nearest(&field, &expected)
                    .map(|near| format!(" (did you mean `{near}`?)"))
                    .unwrap_or_default();
                problems.push(ReadProblem {
                    path,
                    message: format!("{message}{hint}"),
                });
            }
            _ => {
                problems.push(ReadProblem { path, message });
                return Err(problems);
            }
        }
    }
    Err(problems)
}

/// `outer` then `inner` as one path (`a` + `[1].b` → `a[1].b`, `a` + `b` → `a.b`).
fn join(outer: &str, inner: &str) -> String {
    match (outer, inner) {
        ("", inner) => inner.to_string(),
        (outer, inner) if inner.starts_with('[') => format!("{outer}{inner}"),
        (outer, inner) => format!("{outer}.{inner}"),
    }
}

/// `unknown field `x`, expected one of `a`, `b`` → (`x`, [`a`, `b`]).
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((field.to_string(), expected))
}

/// Takes the key at `path` (`a.b`, `a[2].b`) out of `value`; false when it is not there.
fn remove(value: &mut Value, path: &str) -> bool {
    let mut segments: Vec<String> = Vec::new();
    for part in path.split('.') {
        let mut part = part;
        while let Some(open) = part.find('[') {
            if open > 0 {
                segments.push(part[..open].to_string());
            }
            let Some(close) = part[open..].find(']') else {
                return false;
            };
            segments.push(part[open..open + close + 1].to_string());
            part = &part[open + close + 1..];
        }
        if !part.is_empty() {
            segments.push(part.to_string());
        }
    }
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut current = value;
    for segment in parents {
        current = match segment.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(index) => match index.parse::<usize>().ok().and_then(|i| current.get_mut(i)) {
                Some(next) => next,
                None => return false,
            },
            None => match current.get_mut(segment.as_str()) {
                Some(next) => next,
                None => return false,
            },
        };
    }
    current
        .as_object_mut()
        .is_some_and(|map| map.remove(last.as_str()).is_some())
}

/// The expected key closest to `field`, if close enough to be a typo.
fn nearest<'a>(field: &str, expected: &'a [String]) -> Option<&'a str> {
    expected
        .iter()
        .map(|candidate| (distance(field, candidate), candidate))
        .filter(|(d, candidate)| *d <= (candidate.chars().count() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate.as_str())
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(row[j + 1])
            };
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        batch_size: u32,
        #[serde(default)]
        block_ms: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        #[serde(default)]
        worker: Option<Inner>,
        #[serde(default)]
        listen: String,
    }

    #[test]
    fn every_unknown_key_is_named_with_the_nearest_valid_one() {
        let value = serde_json::json!({
            "lisen": "x", "worker": {"batch_sise": 1, "blok_ms": 2, "zzzz": 3},
        });
        let problems = read_all::<Outer>(value).expect_err("unknown keys");
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        assert_eq!(problems.len(), 4, "{text:#?}");
        assert!(
            text.iter()
                .any(|t| t.contains("`lisen`") && t.contains("did you mean `listen`")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("`batch_sise`") && t.contains("did you mean `batch_size`")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("`blok_ms`") && t.contains("did you mean `block_ms`")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("`zzzz`") && !t.contains("did you mean")),
            "{text:#?}"
        );
        let ok = read_all::<Outer>(serde_json::json!({"listen": "y"})).expect("reads");
        assert_eq!(ok.listen, "y");
    }
}
