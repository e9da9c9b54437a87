//! `portcullis data` and `portcullis activity`: rule data and sign-in activity in DynamoDB
//! (the AWS environment chooses the account, region and endpoint).

use anyhow::{Context, Result, anyhow};
use portcullis_aws::dynamo::{DynamoData, DynamoRecorder};
use portcullis_engine::store::TenantId;

use crate::{Exit, input};

/// Arguments of `portcullis data`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    op: Op,
}

#[derive(clap::Subcommand)]
enum Op {
    /// Writes an item: KEY and a JSON VALUE (inline or @file).
    Put {
        #[command(flatten)]
        at: At,
        /// The value, JSON.
        value: String,
    },
    /// Prints an item's value (exit 1 when absent).
    Get {
        #[command(flatten)]
        at: At,
    },
    /// Deletes an item.
    Delete {
        #[command(flatten)]
        at: At,
    },
}

#[derive(clap::Args)]
struct At {
    /// The data table.
    #[arg(long, env = "PORTCULLIS_DATA_TABLE")]
    table: String,
    /// The tenant the item belongs to.
    #[arg(long)]
    tenant: String,
    /// The item's key, as rules' templates resolve it (e.g. `user#<sub>`).
    key: String,
}

fn tenant(id: &str) -> Result<TenantId> {
    TenantId::new(id).with_context(|| format!("`{id}` is not a valid tenant id"))
}

/// Runs `portcullis data`.
pub fn run(args: Args) -> Result<Exit> {
    let runtime = input::runtime()?;
    let aws = runtime.block_on(portcullis_aws::sdk_config());
    let (Op::Put { at, .. } | Op::Get { at } | Op::Delete { at }) = &args.op;
    let tenant = tenant(&at.tenant)?;
    let data = DynamoData::new(
        portcullis_aws::dynamo::client(&aws),
        &at.table,
        std::time::Duration::ZERO,
    );
    match &args.op {
        Op::Put { value, .. } => {
            let value = input::json_arg(value, "VALUE")?.to_string();
            runtime
                .block_on(data.put(&tenant, &at.key, &value))
                .map_err(anyhow::Error::msg)?;
            println!("put {tenant} {}", at.key);
        }
        Op::Get { .. } => {
            let value = runtime
                .block_on(data.get(&tenant, &at.key))
                .map_err(anyhow::Error::msg)?
                .ok_or_else(|| anyhow!("no item `{}` for tenant {tenant}", at.key))?;
            println!("{value}");
        }
        Op::Delete { .. } => {
            let existed = runtime
                .block_on(data.delete(&tenant, &at.key))
                .map_err(anyhow::Error::msg)?;
            let what = if existed { "deleted" } else { "absent" };
            println!("{what} {tenant} {}", at.key);
        }
    }
    Ok(Exit::Allow)
}

/// Arguments of `portcullis activity`.
#[derive(clap::Args)]
pub struct ActivityArgs {
    /// The activity table.
    #[arg(long, env = "PORTCULLIS_ACTIVITY_TABLE")]
    table: String,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// Cognito's user name.
    #[arg(long)]
    user: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `portcullis activity`.
pub fn activity(args: ActivityArgs) -> Result<Exit> {
    let tenant = tenant(&args.tenant)?;
    let runtime = input::runtime()?;
    let aws = runtime.block_on(portcullis_aws::sdk_config());
    let recorder = DynamoRecorder::new(portcullis_aws::dynamo::client(&aws), &args.table, None);
    let Some(a) = runtime
        .block_on(recorder.activity(&tenant, &args.user))
        .map_err(anyhow::Error::msg)?
    else {
        return Err(anyhow!(
            "no sign-ins recorded for {} in {tenant}",
            args.user
        ));
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "sign_ins": a.sign_ins,
                "new_device_sign_ins": a.new_device_sign_ins,
                "last_sign_in_ms": a.last_sign_in_ms,
                "last_new_device": a.last_new_device,
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
    }
    Ok(Exit::Allow)
}
