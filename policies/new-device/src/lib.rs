//! Post-authentication notice: logs when a sign-in used a new device, so ops see it in the
//! decision log. Post-auth rules never block; this one always allows.
//!
//! Configuration: `{"level": "warn"}` (`info` by default).

use portcullis_sdk::{Error, Level, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct NewDevice;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    level: Option<String>,
}

impl Policy for NewDevice {
    const DESCRIPTION: &'static str = "logs a notice when a sign-in uses a new device";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PostAuthentication];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        let level = match config.level.as_deref() {
            None | Some("info") => Level::Info,
            Some("warn") => Level::Warn,
            Some(other) => return Err(Error::msg(format!("unknown level `{other}`"))),
        };
        if request.new_device_used() == Some(true) {
            portcullis_sdk::log(level, "new device used for sign-in");
        }
        Ok(Verdict::allow())
    }
}

portcullis_sdk::export!(NewDevice);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{json, testing::request};

    #[test]
    fn always_allows() {
        let r = request(Trigger::PostAuthentication)
            .new_device_used(true)
            .build();
        assert!(NewDevice::evaluate(&r).unwrap().is_allowed());
    }

    #[test]
    fn bad_level_is_a_rule_error() {
        let r = request(Trigger::PostAuthentication)
            .config(json!({"level": "loud"}))
            .build();
        assert!(NewDevice::evaluate(&r).is_err());
    }
}
