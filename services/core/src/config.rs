//! What every service's `Config::load` shares: reading and parsing the TOML file with
//! errors that name the file, collecting validation problems, and the name rule for
//! pipeline ids and topic prefixes. Each service keeps its own `Config` and
//! `validate()`.

use std::path::Path;

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// Reads `path` (the file is named in the error).
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Parses TOML `text` read from `path` (unknown keys are errors when `T` says
/// `deny_unknown_fields`).
pub fn parse_toml<T: DeserializeOwned>(text: &str, path: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// `Ok` when `problems` is empty, else all of them at once.
pub fn problems(problems: Vec<String>) -> Result<(), ConfigError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// Deserializes one section of a pipeline definition, or records why it cannot be
/// (unknown key, wrong type) under the section's name.
pub fn section<T: DeserializeOwned>(
    name: &str,
    value: serde_json::Value,
    problems: &mut Vec<String>,
) -> Option<T> {
    serde_json::from_value(value)
        .map_err(|e| problems.push(format!("{name}: {e}")))
        .ok()
}

/// Splits the `kafka` sub-table off a service's section of a definition and merges it
/// over the shared `kafka` section.
pub fn split_kafka(
    service: &str,
    shared: &serde_json::Map<String, serde_json::Value>,
    own: &serde_json::Map<String, serde_json::Value>,
    problems: &mut Vec<String>,
) -> (
    serde_json::Map<String, serde_json::Value>,
    serde_json::Map<String, serde_json::Value>,
) {
    let mut own = own.clone();
    let mut kafka = shared.clone();
    match own.remove("kafka") {
        Some(serde_json::Value::Object(extra)) => kafka.extend(extra),
        Some(_) => problems.push(format!("{service}.kafka: must be a table")),
        None => {}
    }
    (kafka, own)
}

/// Non-empty and only `[A-Za-z0-9_]` plus the bytes in `extra`.
pub fn is_name(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || extra.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_allow_only_the_given_punctuation() {
        assert!(is_name("a_b-1", b"-"));
        assert!(!is_name("a.b", b"-"));
        assert!(is_name("a.b", b"."));
        assert!(!is_name("", b""));
        assert!(!is_name("a b", b"-."));
    }
}
