//! The smallest useful policy: allows every sign-in and changes nothing.

use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

/// Allows everything.
pub struct AllowAll;

impl Policy for AllowAll {
    const DESCRIPTION: &'static str = "allows every sign-in and changes nothing";
    const TRIGGERS: &'static [Trigger] = &[
        Trigger::PreAuthentication,
        Trigger::PostAuthentication,
        Trigger::PreTokenGeneration,
    ];

    fn evaluate(_request: &Request) -> Result<Verdict, Error> {
        Ok(Verdict::allow())
    }
}

portcullis_sdk::export!(AllowAll);

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::testing::request;

    #[test]
    fn allows() {
        let verdict = AllowAll::evaluate(&request(Trigger::PreAuthentication).build());
        assert!(verdict.map(|v| v.is_allowed()).unwrap_or(false));
    }
}
