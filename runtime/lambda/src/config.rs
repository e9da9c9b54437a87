//! The Lambda's configuration, read from the environment here and nowhere else. Every
//! variable has a default; a bad value is an error at start, naming the variable.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORTCULLIS_STORE` | `file://$LAMBDA_TASK_ROOT/store` | the rule store (`file://DIR`) |
//! | `PORTCULLIS_TENANT_FROM` | `attribute:custom:tenant_id` | `user-pool`, `client-id` or `attribute:NAME` |
//! | `PORTCULLIS_REFRESH_SECS` | `10` | how old a manifest may get before it is revalidated |
//! | `PORTCULLIS_FAIL_MODE` | `closed` | Portcullis failures: `open` or `closed` |
//! | `PORTCULLIS_MISSING_TENANT` | `open` | tenants without a manifest: `open` (global rules only) or `closed` |
//! | `PORTCULLIS_MAX_CHAIN_MS` | `3000` | the longest a chain may run (at most 4500: Cognito waits 5 s) |
//! | `PORTCULLIS_SAFETY_MARGIN_MS` | `300` | time kept back from the invocation deadline |

use std::path::PathBuf;
use std::time::Duration;

use portcullis_engine::handler::{FailMode, HandlerConfig};

/// A bad configuration value.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    variable: &'static str,
    problem: String,
}

/// The Lambda's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The local store directory.
    pub store: PathBuf,
    /// Manifest revalidation interval.
    pub refresh: Duration,
    /// The handler's settings.
    pub handler: HandlerConfig,
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(variable) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError {
            variable,
            problem: format!("`{v}`: {e}"),
        }),
    }
}

impl Config {
    /// Reads the configuration through `get` (the environment in production).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let task_root = get("LAMBDA_TASK_ROOT").unwrap_or_else(|| ".".into());
        let store_url =
            get("PORTCULLIS_STORE").unwrap_or_else(|| format!("file://{task_root}/store"));
        let store = match store_url.strip_prefix("file://") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => {
                return Err(ConfigError {
                    variable: "PORTCULLIS_STORE",
                    problem: format!("`{store_url}`: expected file://DIR"),
                });
            }
        };
        let refresh = parse(&get, "PORTCULLIS_REFRESH_SECS", 10u64)?;
        let max_chain = parse(&get, "PORTCULLIS_MAX_CHAIN_MS", 3000u64)?;
        if !(10..=4500).contains(&max_chain) {
            return Err(ConfigError {
                variable: "PORTCULLIS_MAX_CHAIN_MS",
                problem: format!("{max_chain} is outside 10..=4500 (Cognito waits at most 5 s)"),
            });
        }
        let margin = parse(&get, "PORTCULLIS_SAFETY_MARGIN_MS", 300u64)?;
        let handler = HandlerConfig {
            tenant_from: parse(
                &get,
                "PORTCULLIS_TENANT_FROM",
                HandlerConfig::default().tenant_from,
            )?,
            fail_mode: parse(&get, "PORTCULLIS_FAIL_MODE", FailMode::Closed)?,
            missing_tenant: parse(&get, "PORTCULLIS_MISSING_TENANT", FailMode::Open)?,
            max_chain: Duration::from_millis(max_chain),
            safety_margin: Duration::from_millis(margin),
        };
        Ok(Config {
            store,
            refresh: Duration::from_secs(refresh),
            handler,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_engine::handler::TenantFrom;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults() {
        let c = config(&[("LAMBDA_TASK_ROOT", "/var/task")]).unwrap();
        assert_eq!(c.store, PathBuf::from("/var/task/store"));
        assert_eq!(c.refresh, Duration::from_secs(10));
        assert_eq!(
            c.handler.tenant_from,
            TenantFrom::Attribute("custom:tenant_id".into())
        );
        assert_eq!(c.handler.fail_mode, FailMode::Closed);
    }

    #[test]
    fn values_and_errors() {
        let c = config(&[
            ("PORTCULLIS_TENANT_FROM", "client-id"),
            ("PORTCULLIS_FAIL_MODE", "open"),
        ])
        .unwrap();
        assert_eq!(c.handler.tenant_from, TenantFrom::ClientId);
        assert_eq!(c.handler.fail_mode, FailMode::Open);
        let e = config(&[("PORTCULLIS_REFRESH_SECS", "soon")]).unwrap_err();
        assert!(
            e.to_string().starts_with("PORTCULLIS_REFRESH_SECS: `soon`"),
            "{e}"
        );
        assert!(config(&[("PORTCULLIS_MAX_CHAIN_MS", "6000")]).is_err());
        assert!(config(&[("PORTCULLIS_STORE", "ftp://x")]).is_err());
        assert!(config(&[("PORTCULLIS_TENANT_FROM", "attribute:")]).is_err());
    }
}
