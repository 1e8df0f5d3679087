//! `OneOrMany<T>`: a platform section is one account (a map) or several (a list with an `id`
//! each), as users already write it.

use serde::{Deserialize, Deserializer};

/// One account, or a list of accounts.
#[derive(Debug, Clone)]
pub struct OneOrMany<T> {
    items: Vec<T>,
    /// Whether the section was written as a list (so key paths read `onebot[1].secret`).
    is_list: bool,
}

/// One account's keys, or a list of such accounts (each with its own `id`).
impl<T: schemars::JsonSchema> schemars::JsonSchema for OneOrMany<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = generator.subschema_for::<T>();
        schemars::json_schema!({
            "description": "One account (a map), or several (a list, each with its own `id`).",
            "anyOf": [one, {"type": "array", "items": one}]
        })
    }
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            is_list: false,
        }
    }
}

impl<T> OneOrMany<T> {
    /// Iterates over the accounts.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// Returns true when no account is configured.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Returns the key path of the `index`-th account, as the user wrote it.
    pub fn path(&self, key: &str, index: usize) -> String {
        if self.is_list {
            format!("{key}[{index}]")
        } else {
            key.to_string()
        }
    }

    /// Validates each account under its key path (`onebot[1]`) with `validate`, and that no two
    /// share an `id`.
    pub(crate) fn validate_accounts(
        &self,
        key: &str,
        validate: fn(&T, &str) -> Vec<String>,
        id: fn(&T) -> &str,
    ) -> Vec<String> {
        let mut problems: Vec<String> = self
            .iter()
            .enumerate()
            .flat_map(|(index, account)| validate(account, &self.path(key, index)))
            .collect();
        problems.extend(crate::duplicate_ids(key, self.iter().map(id)));
        problems
    }

    /// Builds a section from a list of accounts.
    pub fn many(items: Vec<T>) -> Self {
        Self {
            items,
            is_list: true,
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    /// Goes through a JSON value rather than an untagged enum so that the account's own error
    /// ("unknown field `secrte`") reaches the user instead of "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        match value {
            serde_json::Value::Null => Ok(Self::default()),
            serde_json::Value::Array(_) => located(value)
                .map(|items| Self {
                    items,
                    is_list: true,
                })
                .map_err(D::Error::custom),
            _ => located(value)
                .map(|item| Self {
                    items: vec![item],
                    is_list: false,
                })
                .map_err(D::Error::custom),
        }
    }
}

/// Deserializes `value`, naming the inner key path in the error (`[1].self_id: ...`).
fn located<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        if path == "." {
            error.into_inner().to_string()
        } else {
            format!("at `{path}`: {}", error.into_inner())
        }
    })
}
