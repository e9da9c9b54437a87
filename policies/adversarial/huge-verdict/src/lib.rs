//! Attacks the host with output size: about 10 MB of ID-token claims.
#![expect(missing_docs, reason = "a hostile test guest, not an API")]
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

pub struct Huge;

impl Policy for Huge {
    const DESCRIPTION: &'static str = "returns about 10 MB of claims";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreTokenGeneration];

    fn evaluate(_request: &Request) -> Result<Verdict, Error> {
        let value = "x".repeat(1000);
        let mut verdict = Verdict::allow();
        for i in 0..10_000 {
            verdict = verdict.id_claim(format!("claim_{i}"), value.as_str());
        }
        Ok(verdict)
    }
}

portcullis_sdk::export!(Huge);
