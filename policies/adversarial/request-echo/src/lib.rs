//! Test guest: reads every field of the lent request through the SDK and echoes them all
//! back as one `echo` ID-token claim, so a test can check each of the request's methods end
//! to end. With `{"repeat": N}` it reads everything N times first: a policy hammering the
//! host's methods must still end in its fuel or memory budget.
#![expect(missing_docs, reason = "a hostile test guest, not an API")]
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict, json};

pub struct Echo;

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Config {
    repeat: u64,
}

fn read_all(request: &Request) -> portcullis_sdk::Value {
    json!({
        "trigger": format!("{:?}", request.trigger()),
        "trigger_source": request.trigger_source(),
        "event_version": request.event_version(),
        "tenant": request.tenant(),
        "user_pool_id": request.user_pool_id(),
        "client_id": request.client_id(),
        "user_name": request.user_name(),
        "email": request.attr("email"),
        "missing_attr": request.attr("no-such-attribute"),
        "attrs": request.attrs(),
        "ip": request.client_meta("ip"),
        "client_metadata": request.client_metadata(),
        "user_not_found": request.user_not_found(),
        "new_device_used": request.new_device_used(),
        "groups": request.groups(),
        "scopes": request.scopes(),
        "config": request.config_json(),
        "member": request.data_json("member"),
        "data_keys": request.data_items().into_iter().map(|d| d.key).collect::<Vec<_>>(),
        "now_unix_ms": request.now_unix_ms(),
        "token_source": format!("{:?}", request.token_source()),
        "federated": request.is_federated(),
        "first_federated": request.is_first_federated(),
        "trusted": request.trusted().map(|t| json!({
            "ip": t.ip,
            "user_agent": t.user_agent,
            "device_id": t.device_id,
            "issued_at_ms": t.issued_at_ms,
            "fields": t.fields,
        })),
    })
}

impl Policy for Echo {
    const DESCRIPTION: &'static str = "echoes every field of the request";
    const TRIGGERS: &'static [Trigger] = &[
        Trigger::PreAuthentication,
        Trigger::PostAuthentication,
        Trigger::PreTokenGeneration,
    ];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let config: Config = request.config()?;
        for _ in 0..config.repeat {
            core::hint::black_box(read_all(request));
        }
        Ok(Verdict::allow().id_claim("echo", read_all(request)))
    }
}

portcullis_sdk::export!(Echo);
