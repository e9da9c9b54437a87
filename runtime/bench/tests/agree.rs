//! The side-by-side benchmark's three forms of one rule (`src/twins.rs`) decide alike:
//! native Rust, the Cedar twin and the Portcullis policy `domain-network`, on every sign-in
//! of the benchmark's set. The figures are only comparable while this holds.

use portcullis_artifacts as art;
use portcullis_bench::twins;
use portcullis_engine::{Budget, Engine, EngineConfig, Outcome, RuleInput};

#[test]
fn native_cedar_and_portcullis_decide_alike_on_every_sign_in() {
    let engine = Engine::new(EngineConfig::default()).expect("engine");
    let policy = engine
        .load(&std::fs::read(art::DOMAIN_NETWORK).expect("artifact"))
        .expect("load");
    let input = RuleInput::with_config(twins::CONFIG);
    let native = twins::Native::default();
    let cedar = twins::Cedar::new().unwrap();
    let sign_ins = twins::sign_ins();
    let mut allowed = 0;
    for s in &sign_ins {
        let p = match engine
            .evaluate(&policy, s, &input, &Budget::default())
            .outcome
        {
            Outcome::Verdict(v) => v.is_allowed(),
            Outcome::Failed(f) => panic!("the rule failed: {f}"),
        };
        assert_eq!(native.allows(s), p, "native vs Portcullis on {s:?}");
        assert_eq!(cedar.allows(s).unwrap(), p, "Cedar vs Portcullis on {s:?}");
        allowed += usize::from(p);
    }
    // Both branches are exercised: the domain from the network (two spellings of the email,
    // two addresses in 10/8, twice unsuspended) and everything else.
    assert_eq!(sign_ins.len(), 108);
    assert_eq!(allowed, 8);
}
