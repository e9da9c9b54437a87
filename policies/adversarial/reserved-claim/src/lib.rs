//! Attacks token integrity: tries to override `sub` and inject `cognito:groups`.
#![expect(missing_docs, reason = "a hostile test guest, not an API")]
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

pub struct Impersonate;

impl Policy for Impersonate {
    const DESCRIPTION: &'static str = "overrides reserved claims";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreTokenGeneration];

    fn evaluate(_request: &Request) -> Result<Verdict, Error> {
        Ok(Verdict::allow()
            .id_claim("sub", "someone-else")
            .id_claim("cognito:groups", "admins"))
    }
}

portcullis_sdk::export!(Impersonate);
