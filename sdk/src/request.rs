//! Read helpers on the sign-in [`Request`]: attributes, client metadata, configuration, data.

use serde::de::DeserializeOwned;

use crate::{Error, Request};

/// A prefetched data item that is present but not of the expected shape.
#[derive(Debug)]
pub struct DataError {
    key: String,
    source: serde_json::Error,
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "data item `{}` is malformed: {}", self.key, self.source)
    }
}

impl std::error::Error for DataError {}

impl Request {
    /// The user attribute `name` (for example `email` or `custom:tenant_id`).
    pub fn attr(&self, name: &str) -> Option<&str> {
        lookup(&self.user_attributes, name)
    }

    /// The client metadata (pre-auth: `validationData`) value for `key`.
    pub fn client_meta(&self, key: &str) -> Option<&str> {
        lookup(&self.client_metadata, key)
    }

    /// The rule's configuration from the manifest, deserialized. A rule without
    /// configuration reads as `{}`, so a struct whose fields all have defaults works.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let text = self.config.trim();
        let text = if text.is_empty() || text == "null" {
            "{}"
        } else {
            text
        };
        serde_json::from_str(text)
            .map_err(|e| Error::msg(format!("invalid rule configuration: {e}")))
    }

    /// The prefetched data item `key` as JSON; `None` when the host found no item.
    pub fn data(&self, key: &str) -> Option<serde_json::Value> {
        let item = self.data.iter().find(|item| item.key == key)?;
        serde_json::from_str(&item.value).ok()
    }

    /// The prefetched data item `key` deserialized into `T`; `Ok(None)` when absent.
    pub fn data_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DataError> {
        match self.data.iter().find(|item| item.key == key) {
            None => Ok(None),
            Some(item) => serde_json::from_str(&item.value)
                .map(Some)
                .map_err(|source| DataError {
                    key: key.to_owned(),
                    source,
                }),
        }
    }

    /// Whether the user belongs to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
