//! Attacks error handling: panics mid-evaluation (a trap with `panic = "abort"`).
#![allow(missing_docs)]
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

pub struct Panics;

impl Policy for Panics {
    const DESCRIPTION: &'static str = "panics";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    #[allow(clippy::panic)]
    fn evaluate(request: &Request) -> Result<Verdict, Error> {
        let attrs = core::hint::black_box(request.attrs().len());
        panic!("policy bug after reading {attrs} attributes");
    }
}

portcullis_sdk::export!(Panics);
