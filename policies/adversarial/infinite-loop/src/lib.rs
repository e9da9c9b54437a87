//! Attacks the wall clock and fuel budgets: never returns.
#![expect(missing_docs, reason = "a hostile test guest, not an API")]
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

pub struct Spin;

impl Policy for Spin {
    const DESCRIPTION: &'static str = "spins forever";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let mut n: u64 = request.now_unix_ms() as u64;
        loop {
            n = core::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

portcullis_sdk::export!(Spin);
