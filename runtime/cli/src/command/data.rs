//! `portcullis data`: rule data in DynamoDB (the AWS environment chooses the account,
//! region and endpoint).

use anyhow::{Result, anyhow};
use portcullis_aws::dynamo::DynamoData;
use portcullis_gate::TenantId;

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
    tenant: TenantId,
    /// The item's key, as rules' templates resolve it (e.g. `user#<sub>`).
    key: String,
}

/// Runs `portcullis data`.
pub fn run(args: Args) -> Result<Exit> {
    let runtime = input::runtime()?;
    let aws = runtime.block_on(portcullis_aws::sdk_config());
    let (Op::Put { at, .. } | Op::Get { at } | Op::Delete { at }) = &args.op;
    let tenant = &at.tenant;
    let data = DynamoData::new(
        portcullis_aws::dynamo::client(&aws),
        &at.table,
        std::time::Duration::ZERO,
    );
    match &args.op {
        Op::Put { value, .. } => {
            let value = input::json_arg(value, "VALUE")?.to_string();
            runtime.block_on(data.put(tenant, &at.key, &value))?;
            println!("put {tenant} {}", at.key);
        }
        Op::Get { .. } => {
            let value = runtime
                .block_on(data.get(tenant, &at.key))?
                .ok_or_else(|| anyhow!("no item `{}` for tenant {tenant}", at.key))?;
            println!("{value}");
        }
        Op::Delete { .. } => {
            let existed = runtime.block_on(data.delete(tenant, &at.key))?;
            let what = if existed { "deleted" } else { "absent" };
            println!("{what} {tenant} {}", at.key);
        }
    }
    Ok(Exit::Allow)
}
