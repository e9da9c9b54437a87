//! Attacks the memory limit: keeps allocating and touching 1 MiB blocks.
#![expect(missing_docs, reason = "a hostile test guest, not an API")]
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

pub struct Bomb;

impl Policy for Bomb {
    const DESCRIPTION: &'static str = "allocates until the memory limit";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(_request: &Request) -> Result<Verdict, Error> {
        let mut blocks = Vec::new();
        loop {
            blocks.push(core::hint::black_box(vec![0xA5u8; 1 << 20]));
        }
    }
}

portcullis_sdk::export!(Bomb);
