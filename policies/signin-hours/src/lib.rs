//! Allows sign-in only during working hours in the tenant's time zone, using the time the
//! host supplies (policies have no clock of their own).
//!
//! Configuration: `{"time_zone": "Europe/Berlin", "days": ["Mon", "Tue", "Wed", "Thu",
//! "Fri"], "start": "08:00", "end": "18:00", "exempt_groups": ["admins"],
//! "message": "Sign-in is only allowed during working hours"}`. A window whose `end` is
//! before its `start` runs past midnight (the day is the one it starts on). A prefetched
//! data item `tenant` with a `time_zone` field overrides the configured zone.

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Weekday};
use chrono_tz::Tz;
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};
use serde::Deserialize;

/// The policy.
pub struct SigninHours;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    time_zone: String,
    #[serde(default = "weekdays")]
    days: Vec<String>,
    start: String,
    end: String,
    #[serde(default)]
    exempt_groups: Vec<String>,
    #[serde(default = "default_message")]
    message: String,
}

#[derive(Deserialize)]
struct TenantItem {
    time_zone: Option<String>,
}

fn weekdays() -> Vec<String> {
    ["Mon", "Tue", "Wed", "Thu", "Fri"]
        .map(String::from)
        .to_vec()
}

fn default_message() -> String {
    "Sign-in is only allowed during working hours".into()
}

fn parse_time(text: &str) -> Result<NaiveTime, Error> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| Error::msg(format!("`{text}` is not a time of day like 08:30")))
}

impl Policy for SigninHours {
    const DESCRIPTION: &'static str =
        "allows sign-in only during working hours in the tenant's time zone";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        if !config.exempt_groups.is_empty() {
            let groups = request.groups();
            if config.exempt_groups.iter().any(|g| groups.contains(g)) {
                return Ok(Verdict::allow());
            }
        }
        let zone_name = request
            .data_as::<TenantItem>("tenant")?
            .and_then(|t| t.time_zone)
            .unwrap_or(config.time_zone);
        let zone: Tz = zone_name
            .parse()
            .map_err(|_| Error::msg(format!("unknown time zone `{zone_name}`")))?;
        let days = config
            .days
            .iter()
            .map(|d| {
                d.parse::<Weekday>()
                    .map_err(|_| Error::msg(format!("unknown day `{d}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (start, end) = (parse_time(&config.start)?, parse_time(&config.end)?);
        let now = DateTime::from_timestamp_millis(request.now_unix_ms())
            .ok_or_else(|| Error::msg("host time out of range"))?
            .with_timezone(&zone);
        let time = NaiveTime::from_hms_opt(now.hour(), now.minute(), now.second())
            .ok_or_else(|| Error::msg("invalid local time"))?;
        let today = now.weekday();
        let open = if start <= end {
            days.contains(&today) && start <= time && time < end
        } else {
            // Overnight window: the late part belongs to today, the early part to yesterday.
            (days.contains(&today) && time >= start) || (days.contains(&today.pred()) && time < end)
        };
        Ok(if open {
            Verdict::allow()
        } else {
            Verdict::deny(config.message)
        })
    }
}

portcullis_sdk::export!(SigninHours);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::{Value, json, testing::request};

    // 2026-01-05 is a Monday.
    const MON_0700_UTC: i64 = 1_767_596_400_000;
    const HOUR: i64 = 3_600_000;

    fn eval(now: i64, config: Value) -> Verdict {
        SigninHours::evaluate(
            &request(Trigger::PreAuthentication)
                .config(config)
                .now_unix_ms(now)
                .build(),
        )
        .unwrap()
    }

    fn berlin() -> Value {
        json!({"time_zone": "Europe/Berlin", "start": "08:00", "end": "18:00"})
    }

    #[test]
    fn inside_hours_in_tenant_zone() {
        // 07:00 UTC is 08:00 in Berlin (CET, UTC+1).
        assert!(eval(MON_0700_UTC, berlin()).is_allowed());
    }

    #[test]
    fn before_hours_denied() {
        assert!(!eval(MON_0700_UTC - HOUR, berlin()).is_allowed());
    }

    #[test]
    fn weekend_denied() {
        // Sunday 12:00 Berlin.
        assert!(!eval(MON_0700_UTC - 20 * HOUR, berlin()).is_allowed());
    }

    #[test]
    fn overnight_window() {
        let config = json!({"time_zone": "UTC", "days": ["Sun"], "start": "22:00", "end": "06:00"});
        // Monday 05:00 UTC belongs to Sunday's window.
        assert!(eval(MON_0700_UTC - 2 * HOUR, config.clone()).is_allowed());
        assert!(!eval(MON_0700_UTC, config).is_allowed());
    }

    #[test]
    fn exempt_group_allowed_any_time() {
        let mut config = berlin();
        config["exempt_groups"] = json!(["admins"]);
        let r = request(Trigger::PreAuthentication)
            .config(config)
            .group("admins")
            .now_unix_ms(0)
            .build();
        assert!(SigninHours::evaluate(&r).unwrap().is_allowed());
    }

    #[test]
    fn tenant_data_overrides_zone() {
        // 07:00 UTC is 16:00 in Tokyo: inside hours; 11:00 UTC is 20:00 there: outside.
        let r = |now| {
            request(Trigger::PreAuthentication)
                .config(berlin())
                .data("tenant", json!({"time_zone": "Asia/Tokyo"}))
                .now_unix_ms(now)
                .build()
        };
        assert!(
            SigninHours::evaluate(&r(MON_0700_UTC))
                .unwrap()
                .is_allowed()
        );
        assert!(
            !SigninHours::evaluate(&r(MON_0700_UTC + 4 * HOUR))
                .unwrap()
                .is_allowed()
        );
    }

    #[test]
    fn unknown_zone_is_a_rule_error() {
        let config = json!({"time_zone": "Mars/Olympus", "start": "08:00", "end": "18:00"});
        let r = request(Trigger::PreAuthentication).config(config).build();
        assert!(SigninHours::evaluate(&r).is_err());
    }
}
