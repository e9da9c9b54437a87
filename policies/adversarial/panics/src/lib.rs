//! Attacks error handling: panics mid-evaluation (a trap with `panic = "abort"`).
#![expect(missing_docs, reason = "a hostile test guest, not an API")]
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

pub struct Panics;

impl Policy for Panics {
    const DESCRIPTION: &'static str = "panics";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    #[expect(clippy::panic, reason = "panicking is what this guest is for")]
    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let attrs = core::hint::black_box(request.attrs().len());
        panic!("policy bug after reading {attrs} attributes");
    }
}

portcullis_sdk::export!(Panics);
