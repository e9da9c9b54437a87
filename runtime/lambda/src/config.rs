//! The Lambda's configuration, read from the environment here and nowhere else. Every
//! variable has a default; a bad value is an error at start, naming the variable.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORTCULLIS_STORE` | `file://$LAMBDA_TASK_ROOT/store` | the rule store: `file://DIR` or `s3://bucket/prefix` |
//! | `PORTCULLIS_BASELINE_STORE` | none | rules served when the store cannot be read on a cold start (e.g. `file://$LAMBDA_TASK_ROOT/baseline`) |
//! | `PORTCULLIS_STORE_TIMEOUT_MS` | `1000` | the longest one store read may take |
//! | `PORTCULLIS_WRITE_BACK` | `false` | write precompiled artifacts back to the store after compiling (needs `PORTCULLIS_ARTIFACT_KEY`) |
//! | `PORTCULLIS_ARTIFACT_KEY` | none | the artifact key: `secretsmanager:ID` or `file:PATH`; without it precompiled artifacts are never loaded or written |
//! | `PORTCULLIS_CONTEXT_KEYS` | none | the tenants' context keys (JSON `{"acme": "KEY"}`): `secretsmanager:ID` or `file:PATH`; without them no context envelope is trusted |
//! | `PORTCULLIS_CONTEXT_MAX_AGE_SECS` | `120` | the oldest context envelope accepted |
//! | `PORTCULLIS_CONTEXT_REUSE_SECS` | `30` | how long after its first use an envelope may be seen again (one sign-in's triggers, Cognito's retries); later uses are replays |
//! | `PORTCULLIS_TRUSTED_KEYS` | none | publishers' public keys, `ID=HEX` joined with commas: every manifest must be signed by one |
//! | `PORTCULLIS_REQUIRE_GLOBAL` | `false` | without loaded `_global` rules, sign-ins follow the fail mode |
//! | `PORTCULLIS_PLATFORM_CLAIMS` | `tenant_id,custom:tenant_id` | claims tenant rules may not suppress and may set only to their own tenant |
//! | `PORTCULLIS_TENANT_SCOPES` | `{tenant},{tenant}:*,{tenant}-*,{tenant}/*,tenant:{tenant}` | scope patterns tenant rules may add |
//! | `PORTCULLIS_TENANT_GROUPS` | `false` | whether tenant rules may override groups |
//! | `PORTCULLIS_TENANT_ROLES` | none | IAM role ARNs tenant rules may put into a group override |
//! | `PORTCULLIS_CLIENT_TENANTS` | none | app client binding `CLIENT=TENANT,…`: an attribute's tenant must be its client's |
//! | `PORTCULLIS_DROPPED_CHANGES` | `open` | token changes an event cannot carry (V1 access token): `open` records them, `closed` blocks |
//! | `PORTCULLIS_FAIL_MODE_TENANTS` | none | per-tenant fail modes: `acme=open,globex=closed` |
//! | `PORTCULLIS_DATA_TABLE` | none | DynamoDB table of rule data |
//! | `PORTCULLIS_DATA_TIMEOUT_MS` | `500` | the longest the data prefetch may take |
//! | `PORTCULLIS_DATA_CACHE_SECS` | `5` | how long fetched data items are reused |
//! | `PORTCULLIS_ACTIVITY_TABLE` | none | DynamoDB table of sign-in activity (and audit) |
//! | `PORTCULLIS_LOOKUP_ORIGINS` | none | origins rules' HTTP lookups may call, per owner: `acme=https://risk.example.com\|https://fraud.example.com;_global=https://…`; without it no lookup is made (rules that declare one fail with data-unavailable, or run without it when it falls back) |
//! | `PORTCULLIS_SECRET_PREFIX` | `portcullis/` | lookups' `{secret:NAME}` of owner `acme` is the Secrets Manager secret `<prefix>acme/NAME` |
//! | `PORTCULLIS_COUNTER_TABLE` | none | DynamoDB table of rule counters (lockout, velocity); without it, rules that declare counters fail with data-unavailable |
//! | `PORTCULLIS_AUDIT_DAYS` | `0` | keep audit entries this many days (`0`: no audit) |
//! | `PORTCULLIS_ACTIVITY_LOCATION_DAYS` | `0` | keep each user's last trusted IP and country (from the backend's signed context) this many days after their last sign-in (`0`: not kept) |
//! | `PORTCULLIS_CAPTURE` | none | capture for replay: `acme=0.05,globex=1` (tenant = share of its sign-ins), each cut down to what its rules read, written under `capture/` in the store |
//! | `PORTCULLIS_CAPTURE_DAYS` | `7` | how long captures are kept (the bucket's lifecycle rule deletes them; each states its expiry) |
//! | `PORTCULLIS_CAPTURE_KMS_KEY` | none | the KMS key captures are encrypted with in S3 (SSE-KMS; the bucket's default KMS key when unset) |
//! | `PORTCULLIS_TENANT_FROM` | `attribute:custom:tenant_id` | `user-pool`, `client-id` or `attribute:NAME` |
//! | `PORTCULLIS_REFRESH_SECS` | `10` | how old a manifest may get before it is revalidated |
//! | `PORTCULLIS_CHAIN_HELPERS` | one less than the vCPUs of the function's memory (1 vCPU per 1,769 MB): `0` below 3,538 MB | threads that run a chain's rules beside it (at most 7; capped by the cores the function has); the answer is the same, a chain of several rules is answered sooner |
//! | `PORTCULLIS_MAX_LOADED_RULES` | `1000` | the most rules kept loaded across tenants; past it the coldest tenants' sets are unloaded (loaded again on their next sign-in) |
//! | `PORTCULLIS_FAIL_MODE` | `closed` | Portcullis failures: `open` or `closed` |
//! | `PORTCULLIS_MISSING_TENANT` | `open` | tenants without a manifest: `open` (global rules only) or `closed` |
//! | `PORTCULLIS_MAX_CHAIN_MS` | `3000` | the longest a chain may run (at most 4500: Cognito waits 5 s) |
//! | `PORTCULLIS_SAFETY_MARGIN_MS` | `300` | time kept back from the invocation deadline |

use std::collections::HashMap;
use std::time::Duration;

use portcullis_aws::StoreUrl;
use portcullis_aws::keys::KeySource;
use portcullis_gate::capture::CaptureConfig;
use portcullis_gate::context::ContextConfig;
use portcullis_gate::data::lookups::Origins;
use portcullis_gate::store::TenantId;
use portcullis_gate::trust::TrustedKeys;
use portcullis_gate::{FailMode, HandlerConfig};

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
    /// The rule store.
    pub store: StoreUrl,
    /// The baseline store, for cold starts without the rule store.
    pub baseline: Option<StoreUrl>,
    /// The longest one store read may take.
    pub store_timeout: Duration,
    /// Write precompiled artifacts back.
    pub write_back: bool,
    /// Where the artifact key is read from, once, at cold start.
    pub artifact_key: Option<KeySource>,
    /// Where the tenants' context keys are read from, once, at cold start.
    pub context_keys: Option<KeySource>,
    /// How context envelopes are judged.
    pub context: ContextConfig,
    /// The publishers' keys: when set, manifests must be signed.
    pub trusted_keys: Option<TrustedKeys>,
    /// Manifest revalidation interval.
    pub refresh: Duration,
    /// The most rules kept loaded across tenants.
    pub max_loaded_rules: usize,
    /// Helper threads that run a chain's rules beside it.
    pub chain_helpers: usize,
    /// The data table.
    pub data_table: Option<String>,
    /// How long fetched data items are reused.
    pub data_cache: Duration,
    /// The activity table.
    pub activity_table: Option<String>,
    /// The counter table.
    pub counter_table: Option<String>,
    /// The origins lookups may call, per owner (`None`: no lookups).
    pub lookup_origins: Option<Origins>,
    /// The Secrets Manager name prefix of lookups' secrets.
    pub secret_prefix: String,
    /// Audit retention (`None`: no audit).
    pub audit: Option<Duration>,
    /// How long the last trusted location is kept (`None`: not kept).
    pub location: Option<Duration>,
    /// Which tenants' sign-ins are captured for replay (`None`: none).
    pub capture: Option<CaptureConfig>,
    /// The KMS key captures are encrypted with in S3.
    pub capture_kms_key: Option<String>,
    /// The handler's settings.
    pub handler: HandlerConfig,
}

/// The most helper threads (Lambda's largest function has six vCPUs; the cores cap it further).
const MAX_CHAIN_HELPERS: usize = 7;

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
        let url = |variable: &'static str, value: &str| {
            value.parse::<StoreUrl>().map_err(|e| ConfigError {
                variable,
                problem: e.to_string(),
            })
        };
        let store = url("PORTCULLIS_STORE", &store_url)?;
        let baseline = match get("PORTCULLIS_BASELINE_STORE").filter(|v| !v.trim().is_empty()) {
            Some(v) => Some(url("PORTCULLIS_BASELINE_STORE", &v)?),
            None => None,
        };
        let table = |variable: &str| get(variable).filter(|v| !v.trim().is_empty());
        let audit_days = parse(&get, "PORTCULLIS_AUDIT_DAYS", 0u64)?;
        let location_days = parse(&get, "PORTCULLIS_ACTIVITY_LOCATION_DAYS", 0u64)?;
        let days = |variable: &'static str, days: u64| match days {
            0 => Ok(None),
            days => days
                .checked_mul(86_400)
                .map(|secs| Some(Duration::from_secs(secs)))
                .ok_or_else(|| ConfigError {
                    variable,
                    problem: format!("{days} days is too long"),
                }),
        };
        let tenant_fail_modes = match get("PORTCULLIS_FAIL_MODE_TENANTS") {
            None => HashMap::new(),
            Some(list) => tenant_modes(&list).map_err(|problem| ConfigError {
                variable: "PORTCULLIS_FAIL_MODE_TENANTS",
                problem,
            })?,
        };
        let refresh = parse(&get, "PORTCULLIS_REFRESH_SECS", 10u64)?;
        let max_loaded_rules = parse(&get, "PORTCULLIS_MAX_LOADED_RULES", 1000usize)?;
        if max_loaded_rules == 0 {
            return Err(ConfigError {
                variable: "PORTCULLIS_MAX_LOADED_RULES",
                problem: "0 would unload every tenant's rules after each sign-in".into(),
            });
        }
        // Lambda gives a function one vCPU per 1,769 MB of memory.
        let vcpus = get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .and_then(|mb| mb.trim().parse::<usize>().ok())
            .map_or(1, |mb| mb / 1769);
        let chain_helpers = parse(&get, "PORTCULLIS_CHAIN_HELPERS", vcpus.saturating_sub(1))?;
        if chain_helpers > MAX_CHAIN_HELPERS {
            return Err(ConfigError {
                variable: "PORTCULLIS_CHAIN_HELPERS",
                problem: format!("{chain_helpers} is over the limit of {MAX_CHAIN_HELPERS}"),
            });
        }
        let artifact_key = match table("PORTCULLIS_ARTIFACT_KEY") {
            Some(v) => Some(
                v.trim()
                    .parse::<KeySource>()
                    .map_err(|problem| ConfigError {
                        variable: "PORTCULLIS_ARTIFACT_KEY",
                        problem,
                    })?,
            ),
            None => None,
        };
        let context_keys = match table("PORTCULLIS_CONTEXT_KEYS") {
            Some(v) => Some(
                v.trim()
                    .parse::<KeySource>()
                    .map_err(|problem| ConfigError {
                        variable: "PORTCULLIS_CONTEXT_KEYS",
                        problem,
                    })?,
            ),
            None => None,
        };
        let context = ContextConfig {
            max_age: Duration::from_secs(parse(&get, "PORTCULLIS_CONTEXT_MAX_AGE_SECS", 120u64)?),
            reuse_window: Duration::from_secs(parse(&get, "PORTCULLIS_CONTEXT_REUSE_SECS", 30u64)?),
            ..ContextConfig::default()
        };
        let write_back = parse(&get, "PORTCULLIS_WRITE_BACK", false)?;
        if write_back && artifact_key.is_none() {
            return Err(ConfigError {
                variable: "PORTCULLIS_WRITE_BACK",
                problem: "writing artifacts back needs PORTCULLIS_ARTIFACT_KEY".into(),
            });
        }
        // Set means verify: an empty or unreadable list is an error, never "no keys".
        let trusted_keys = match get("PORTCULLIS_TRUSTED_KEYS") {
            Some(spec) => Some(TrustedKeys::parse(&spec).map_err(|e| ConfigError {
                variable: "PORTCULLIS_TRUSTED_KEYS",
                problem: e.to_string(),
            })?),
            None => None,
        };
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
            data_timeout: Duration::from_millis(parse(&get, "PORTCULLIS_DATA_TIMEOUT_MS", 500u64)?),
            tenant_fail_modes,
            require_global: parse(&get, "PORTCULLIS_REQUIRE_GLOBAL", false)?,
            tokens: token_policy(&get)?,
            dropped_changes: parse(&get, "PORTCULLIS_DROPPED_CHANGES", FailMode::Open)?,
            client_tenants: match table("PORTCULLIS_CLIENT_TENANTS") {
                None => HashMap::new(),
                Some(list) => pairs(&list, |tenant| {
                    TenantId::new(tenant).ok_or_else(|| format!("`{tenant}` is not a tenant id"))
                })
                .map_err(|problem| ConfigError {
                    variable: "PORTCULLIS_CLIENT_TENANTS",
                    problem,
                })?,
            },
            ..HandlerConfig::default()
        };
        Ok(Config {
            store,
            baseline,
            store_timeout: Duration::from_millis(parse(
                &get,
                "PORTCULLIS_STORE_TIMEOUT_MS",
                1000u64,
            )?),
            write_back,
            artifact_key,
            context_keys,
            context,
            trusted_keys,
            refresh: Duration::from_secs(refresh),
            max_loaded_rules,
            chain_helpers,
            data_table: table("PORTCULLIS_DATA_TABLE"),
            data_cache: Duration::from_secs(parse(&get, "PORTCULLIS_DATA_CACHE_SECS", 5u64)?),
            activity_table: table("PORTCULLIS_ACTIVITY_TABLE"),
            counter_table: table("PORTCULLIS_COUNTER_TABLE"),
            lookup_origins: table("PORTCULLIS_LOOKUP_ORIGINS")
                .map(|text| Origins::parse(&text))
                .transpose()
                .map_err(|problem| ConfigError {
                    variable: "PORTCULLIS_LOOKUP_ORIGINS",
                    problem,
                })?,
            secret_prefix: table("PORTCULLIS_SECRET_PREFIX")
                .unwrap_or_else(|| portcullis_aws::secrets::DEFAULT_PREFIX.to_owned()),
            audit: days("PORTCULLIS_AUDIT_DAYS", audit_days)?,
            location: days("PORTCULLIS_ACTIVITY_LOCATION_DAYS", location_days)?,
            capture: match table("PORTCULLIS_CAPTURE") {
                None => None,
                Some(spec) => {
                    let days = parse(&get, "PORTCULLIS_CAPTURE_DAYS", 7u64)?;
                    let retention = Duration::from_secs(days.saturating_mul(86_400));
                    Some(
                        CaptureConfig::parse(&spec, retention).map_err(|e| ConfigError {
                            variable: "PORTCULLIS_CAPTURE",
                            problem: e.to_string(),
                        })?,
                    )
                }
            },
            capture_kms_key: table("PORTCULLIS_CAPTURE_KMS_KEY"),
            handler,
        })
    }
}

/// A comma-separated list, trimmed, without empty entries.
fn list(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
}

/// `KEY=VALUE,…` with each value parsed by `value`.
fn pairs<V>(
    text: &str,
    value: impl Fn(&str) -> Result<V, String>,
) -> Result<HashMap<String, V>, String> {
    list(text)
        .map(|pair| {
            let (key, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not KEY=VALUE"))?;
            Ok((key.trim().to_owned(), value(v.trim())?))
        })
        .collect()
}

/// What tenant rules may put into tokens, from the environment (defaults: the engine's).
fn token_policy(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<portcullis_engine::namespace::TokenPolicy, ConfigError> {
    let mut policy = portcullis_engine::namespace::TokenPolicy::default();
    let set = |variable: &str| get(variable).filter(|v| !v.trim().is_empty());
    if let Some(claims) = set("PORTCULLIS_PLATFORM_CLAIMS") {
        policy.platform_claims = list(&claims).collect();
    }
    if let Some(scopes) = set("PORTCULLIS_TENANT_SCOPES") {
        policy.tenant_scopes = list(&scopes).collect();
    }
    if let Some(roles) = set("PORTCULLIS_TENANT_ROLES") {
        policy.tenant_roles = list(&roles).collect();
    }
    policy.tenant_groups = parse(get, "PORTCULLIS_TENANT_GROUPS", false)?;
    Ok(policy)
}

/// `acme=open,globex=closed`.
fn tenant_modes(list: &str) -> Result<HashMap<TenantId, FailMode>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (tenant, mode) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not TENANT=open|closed"))?;
            let tenant = TenantId::new(tenant.trim())
                .ok_or_else(|| format!("`{tenant}` is not a tenant id"))?;
            Ok((
                tenant,
                mode.trim().parse::<FailMode>().map_err(|e| e.to_string())?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_gate::TenantFrom;

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
        assert_eq!(c.store, StoreUrl::Dir("/var/task/store".into()));
        assert_eq!(c.data_table, None);
        assert_eq!(c.audit, None);
        assert_eq!(c.refresh, Duration::from_secs(10));
        assert_eq!(c.max_loaded_rules, 1000);
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
        let c = config(&[
            ("PORTCULLIS_STORE", "s3://rules/prod"),
            ("PORTCULLIS_FAIL_MODE_TENANTS", "acme=open, globex=closed"),
            ("PORTCULLIS_AUDIT_DAYS", "30"),
            ("PORTCULLIS_DATA_TABLE", "data"),
        ])
        .unwrap();
        assert_eq!(
            c.store,
            StoreUrl::S3 {
                bucket: "rules".into(),
                prefix: "prod".into()
            }
        );
        assert_eq!(
            c.handler.tenant_fail_modes[&TenantId::new("acme").unwrap()],
            FailMode::Open
        );
        assert_eq!(c.audit, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(c.data_table.as_deref(), Some("data"));
        assert!(config(&[("PORTCULLIS_FAIL_MODE_TENANTS", "acme")]).is_err());
        let e = config(&[("PORTCULLIS_REFRESH_SECS", "soon")]).unwrap_err();
        assert!(
            e.to_string().starts_with("PORTCULLIS_REFRESH_SECS: `soon`"),
            "{e}"
        );
        assert!(config(&[("PORTCULLIS_MAX_CHAIN_MS", "6000")]).is_err());
        assert!(config(&[("PORTCULLIS_MAX_LOADED_RULES", "0")]).is_err());
        // Helper threads follow the vCPUs the memory buys, unless set.
        let helpers = |vars: &[(&str, &str)]| config(vars).map(|c| c.chain_helpers);
        assert_eq!(helpers(&[]).unwrap(), 0);
        assert_eq!(
            helpers(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")]).unwrap(),
            0
        );
        assert_eq!(
            helpers(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3538")]).unwrap(),
            1
        );
        assert_eq!(
            helpers(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "10240")]).unwrap(),
            4
        );
        assert_eq!(
            helpers(&[
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "10240"),
                ("PORTCULLIS_CHAIN_HELPERS", "0")
            ])
            .unwrap(),
            0
        );
        assert_eq!(helpers(&[("PORTCULLIS_CHAIN_HELPERS", "1")]).unwrap(), 1);
        assert!(helpers(&[("PORTCULLIS_CHAIN_HELPERS", "8")]).is_err());
        assert!(helpers(&[("PORTCULLIS_CHAIN_HELPERS", "two")]).is_err());
        assert_eq!(
            config(&[("PORTCULLIS_MAX_LOADED_RULES", "250")])
                .unwrap()
                .max_loaded_rules,
            250
        );
        assert!(config(&[("PORTCULLIS_STORE", "ftp://x")]).is_err());
        assert!(config(&[("PORTCULLIS_TENANT_FROM", "attribute:")]).is_err());
        assert!(config(&[("PORTCULLIS_AUDIT_DAYS", &u64::MAX.to_string())]).is_err());
        // Lookup origins: origins only, per tenant; a path or no tenant is refused.
        for bad in [
            "https://risk.example.com",
            "acme=https://risk.example.com/v1",
        ] {
            let e = config(&[("PORTCULLIS_LOOKUP_ORIGINS", bad)]).unwrap_err();
            assert!(
                e.to_string().starts_with("PORTCULLIS_LOOKUP_ORIGINS"),
                "{e}"
            );
        }
        let c = config(&[("PORTCULLIS_LOOKUP_ORIGINS", "acme=https://risk.example.com")]).unwrap();
        let acme = TenantId::new("acme").unwrap();
        assert!(
            c.lookup_origins
                .unwrap()
                .allows(&acme, "https://risk.example.com")
        );
        assert_eq!(c.secret_prefix, "portcullis/");
    }

    #[test]
    fn keys_set_means_verify() {
        // Set but empty is an error, never "no verification".
        for empty in ["", " ", ","] {
            let e = config(&[("PORTCULLIS_TRUSTED_KEYS", empty)]).unwrap_err();
            assert!(e.to_string().starts_with("PORTCULLIS_TRUSTED_KEYS"), "{e}");
        }
        let key = portcullis_gate::trust::ManifestSigner::generate("ops")
            .unwrap()
            .public_line();
        assert!(config(&[("PORTCULLIS_TRUSTED_KEYS", "ops=zz")]).is_err());
        let c = config(&[
            ("PORTCULLIS_TRUSTED_KEYS", key.as_str()),
            (
                "PORTCULLIS_ARTIFACT_KEY",
                "secretsmanager:portcullis/artifact",
            ),
            ("PORTCULLIS_WRITE_BACK", "true"),
            ("PORTCULLIS_REQUIRE_GLOBAL", "true"),
        ])
        .unwrap();
        assert_eq!(c.trusted_keys.unwrap().ids().collect::<Vec<_>>(), ["ops"]);
        assert_eq!(
            c.artifact_key,
            Some(KeySource::SecretsManager("portcullis/artifact".into()))
        );
        assert!(c.handler.require_global);
        let c = config(&[
            ("PORTCULLIS_PLATFORM_CLAIMS", "tenant_id, roles"),
            ("PORTCULLIS_TENANT_GROUPS", "true"),
            ("PORTCULLIS_TENANT_ROLES", "arn:aws:iam::1:role/R"),
            ("PORTCULLIS_CLIENT_TENANTS", "web1=acme, web2=globex"),
            ("PORTCULLIS_DROPPED_CHANGES", "closed"),
        ])
        .unwrap();
        assert!(c.handler.tokens.platform_claims.contains("roles"));
        assert!(c.handler.tokens.tenant_groups);
        assert_eq!(c.handler.client_tenants["web2"].as_str(), "globex");
        assert_eq!(c.handler.dropped_changes, FailMode::Closed);
        assert!(config(&[("PORTCULLIS_CLIENT_TENANTS", "web1=_x y")]).is_err());
        let e = config(&[("PORTCULLIS_WRITE_BACK", "true")]).unwrap_err();
        assert!(e.to_string().contains("PORTCULLIS_ARTIFACT_KEY"), "{e}");
    }
}
