//! `portcullis activity`: a user's sign-in activity in DynamoDB (the AWS environment
//! chooses the account, region and endpoint).

use anyhow::{Result, anyhow};
use portcullis_aws::dynamo::DynamoRecorder;
use portcullis_gate::TenantId;

use crate::{Exit, input};

/// Arguments of `portcullis activity`.
#[derive(clap::Args)]
pub struct Args {
    /// The activity table.
    #[arg(long, env = "PORTCULLIS_ACTIVITY_TABLE")]
    table: String,
    /// The tenant.
    #[arg(long)]
    tenant: TenantId,
    /// Cognito's user name.
    #[arg(long)]
    user: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `portcullis activity`.
pub fn run(args: Args) -> Result<Exit> {
    let tenant = &args.tenant;
    let runtime = input::runtime()?;
    let aws = runtime.block_on(portcullis_aws::sdk_config());
    let recorder = DynamoRecorder::new(portcullis_aws::dynamo::client(&aws), &args.table, None);
    let Some(a) = runtime.block_on(recorder.activity(tenant, &args.user))? else {
        return Err(anyhow!(
            "no sign-ins recorded for {} in {tenant}",
            args.user
        ));
    };
    // Kept only where the deployment keeps it (PORTCULLIS_ACTIVITY_LOCATION_DAYS).
    let location = runtime.block_on(recorder.location(tenant, &args.user))?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "sign_ins": a.sign_ins,
                "new_device_sign_ins": a.new_device_sign_ins,
                "last_sign_in_ms": a.last_sign_in_ms,
                "last_new_device": a.last_new_device,
                "last_trusted_ip": location.as_ref().map(|l| &l.ip),
                "last_trusted_country": location.as_ref().and_then(|l| l.country.as_ref()),
            })
        );
    } else {
        println!(
            "{} in {tenant}: {} sign-ins ({} on a new device), last at {} ms{}",
            args.user,
            a.sign_ins,
            a.new_device_sign_ins,
            a.last_sign_in_ms,
            if a.last_new_device {
                " on a new device"
            } else {
                ""
            }
        );
        if let Some(location) = location {
            println!(
                "last trusted location: {}{}",
                location.ip,
                location
                    .country
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(Exit::Allow)
}
