//! The side-by-side benchmark's three forms of one rule (`src/twins.rs`) decide alike:
//! native Rust, the Cedar twin and the Portcullis policy `domain-network`, on every sign-in
//! of the benchmark's set; and the contract benchmark's forms of it (`src/draft.rs`) decide
//! alike too, in the shapes its table names. The figures are only comparable while this
//! holds.

use std::sync::Arc;

use portcullis_artifacts as art;
use portcullis_bench::draft::{self, Harness};
use portcullis_bench::twins;
use portcullis_engine::{Budget, Engine, EngineConfig, LoadError, Outcome, RuleInput};

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

#[test]
fn the_contract_benchmark_s_forms_decide_alike_and_are_the_shapes_it_names() {
    let read = |path: &str| std::fs::read(path).unwrap();
    let harness = Harness::new().unwrap();
    let lent = harness.load_lent(&read(art::DOMAIN_NETWORK)).unwrap();
    let lowered = harness
        .load_lowered(&read(art::DRAFT_DOMAIN_NETWORK))
        .unwrap();
    let lent_floor = harness.load_lent(&read(art::CONTRACT_ALLOW_ALL)).unwrap();
    let lowered_floor = harness.load_lowered(&read(art::DRAFT_ALLOW_ALL)).unwrap();
    let native = twins::Native::default();
    for s in twins::sign_ins() {
        let expected = native.allows(&s);
        let declared = Arc::new(draft::declared(&s));
        assert_eq!(harness.lent(&lent, &s, twins::CONFIG).unwrap(), expected);
        assert_eq!(
            harness.lowered(&lowered, &s, twins::CONFIG).unwrap(),
            expected
        );
        assert_eq!(
            harness.lowered(&lowered, &declared, twins::CONFIG).unwrap(),
            expected,
            "the declared fields are all the rule reads: {s:?}"
        );
        assert!(harness.lent(&lent_floor, &s, "").unwrap());
        assert!(harness.lowered(&lowered_floor, &s, "").unwrap());
    }
    // Without its configuration the draft rule fails, as the contract's does.
    let s = &twins::sign_ins()[0];
    assert!(harness.lent(&lent, s, "null").is_err());
    assert!(harness.lowered(&lowered, s, "null").is_err());

    // The shapes the benchmark compares: a Rust policy that reads strings under contract 0.2
    // is three core instances (its imports return strings, which need its `cabi_realloc`);
    // one that imports nothing needing the memory is one — `allow-all` only while it is
    // built with LTO, which drops the SDK's call to `count` it never makes — and so is
    // every component of the draft world.
    let instances = |path: &str| draft::core_instances(&read(path)).unwrap();
    assert_eq!(instances(art::DOMAIN_NETWORK), 3);
    for one in [
        art::ALLOW_ALL,
        art::CONTRACT_ALLOW_ALL,
        art::DRAFT_DOMAIN_NETWORK,
        art::DRAFT_ALLOW_ALL,
    ] {
        assert_eq!(instances(one), 1, "{one}");
    }

    // The draft world is a measurement, not something the engine runs.
    let engine = Engine::new(EngineConfig::default()).unwrap();
    assert!(matches!(
        engine.load(&read(art::DRAFT_DOMAIN_NETWORK)),
        Err(LoadError::Contract(_))
    ));
    assert!(engine.load(&read(art::CONTRACT_ALLOW_ALL)).is_ok());
}
