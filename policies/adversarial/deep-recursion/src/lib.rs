//! Attacks the stack: unbounded recursion until the wasm stack overflows.
#![expect(missing_docs, reason = "a hostile test guest, not an API")]
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

pub struct Recurse;

#[inline(never)]
#[expect(
    unconditional_recursion,
    reason = "recursing without end is what this guest is for"
)]
fn depth(n: u64, pad: [u64; 8]) -> u64 {
    let pad = core::hint::black_box(pad);
    depth(n + 1, pad).wrapping_add(pad[(n % 8) as usize])
}

impl Policy for Recurse {
    const DESCRIPTION: &'static str = "recurses without end";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(_request: &Request) -> Result<Verdict, Error> {
        let n = depth(0, [1; 8]);
        Ok(Verdict::deny(format!("unreachable {n}")))
    }
}

portcullis_sdk::export!(Recurse);
