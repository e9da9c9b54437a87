//! Attacks the sandbox: a policy built for `wasm32-wasip2` whose std printing, clock and
//! environment pull in WASI imports (stdio, clocks, environment, filesystem, exit, …). The
//! engine must refuse it at load, naming the first forbidden import.
#![expect(missing_docs, reason = "a hostile test guest, not an API")]
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

pub struct Wasi;

impl Policy for Wasi {
    const DESCRIPTION: &'static str = "uses std's clock, environment and stdout";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(_request: &Request) -> Result<Verdict, Error> {
        let now = std::time::SystemTime::now();
        let home = std::env::var("HOME").unwrap_or_default();
        println!("{now:?} {home}");
        Ok(Verdict::allow())
    }
}

portcullis_sdk::export!(Wasi);
