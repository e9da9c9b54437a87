//! Helper threads (`Engine::start_helpers`): a chain's rules run side by side, and the
//! combined outcome is the one the rules give one by one — decision, claims, conflicts and
//! every report — whatever the mix of allows, denies, failures, shadows and triggers.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use portcullis_artifacts as art;
use portcullis_engine::chain::{ChainOutcome, DataSet};
use portcullis_engine::{
    Budget, Chain, CompiledPolicy, Decision, Engine, EngineConfig, Mode, OnError, Origin, Rule,
    RuleName, Trigger,
};
use serde_json::json;

use crate::{engine, load, request};

/// An engine with two helper threads, shared by this file's tests.
fn helped() -> &'static Arc<Engine> {
    static HELPED: OnceLock<Arc<Engine>> = OnceLock::new();
    HELPED.get_or_init(|| {
        let engine = Arc::new(Engine::new(EngineConfig::default()).unwrap());
        engine.start_helpers(2).unwrap();
        engine
    })
}

/// Loads an artifact into the helped engine, once.
fn load_helped(path: &str) -> Arc<CompiledPolicy> {
    static LOADED: Mutex<Vec<(String, Arc<CompiledPolicy>)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap();
    if let Some((_, policy)) = loaded.iter().find(|(p, _)| p == path) {
        return policy.clone();
    }
    let policy = helped().load(&std::fs::read(path).unwrap()).unwrap();
    loaded.push((path.to_owned(), policy.clone()));
    policy
}

const ALL: &[Trigger] = &[
    Trigger::PreAuthentication,
    Trigger::PostAuthentication,
    Trigger::PreTokenGeneration,
];

/// The kinds of rule a chain is drawn from: (artifact, configuration, on_error, mode).
fn kinds() -> Vec<(&'static str, serde_json::Value, OnError, Mode)> {
    let deny = json!({"domains": ["other.test"], "message": "not here"});
    vec![
        (art::ALLOW_ALL, json!(null), OnError::Deny, Mode::Enforce),
        (
            art::EMAIL_DOMAIN,
            deny.clone(),
            OnError::Deny,
            Mode::Enforce,
        ),
        (art::EMAIL_DOMAIN, deny, OnError::Deny, Mode::Shadow),
        (art::PANICS, json!(null), OnError::Deny, Mode::Enforce),
        (art::PANICS, json!(null), OnError::Allow, Mode::Enforce),
        (
            art::TENANT_CLAIMS,
            json!({"roles": ["member"], "suppress": ["phone_number"]}),
            OnError::Deny,
            Mode::Enforce,
        ),
        (
            art::TENANT_CLAIMS,
            json!({"roles": ["admin"]}),
            OnError::Allow,
            Mode::Enforce,
        ),
        (
            art::SUSPENDED_USERS,
            json!(null),
            OnError::Deny,
            Mode::Enforce,
        ),
    ]
}

/// The chain of `picks` (indices into [`kinds`]), its policies loaded by `load`.
fn chain_of(picks: &[usize], load: &dyn Fn(&str) -> Arc<CompiledPolicy>) -> Chain {
    let kinds = kinds();
    Chain {
        rules: picks
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let (path, config, on_error, mode) = kinds.get(k).unwrap().clone();
                Rule {
                    name: RuleName::new(&format!("rule-{i}")).unwrap(),
                    origin: if i % 3 == 0 {
                        Origin::Global
                    } else {
                        Origin::Tenant
                    },
                    policy: load(path),
                    triggers: ALL.to_vec(),
                    budget: Budget::default(),
                    on_error,
                    mode,
                    config: config.to_string().into(),
                }
            })
            .collect(),
    }
}

/// Everything of an outcome that does not depend on timing.
fn decided(outcome: &ChainOutcome) -> String {
    let reports: Vec<String> = outcome
        .reports
        .iter()
        .map(|r| {
            format!(
                "{} {:?} {:?} {:?} {:?} fuel {} logs {:?} counts {:?}",
                r.rule.as_str(),
                r.origin,
                r.mode,
                r.effect,
                r.evaluation.outcome,
                r.evaluation.fuel_used,
                r.evaluation.logs,
                r.evaluation.counts,
            )
        })
        .collect();
    format!(
        "{:?}\nid {:?}\naccess {:?}\nscopes {:?}\ngroups {:?}\nconflicts {:?}\n{}",
        outcome.decision,
        outcome.id,
        outcome.access,
        outcome.scopes,
        outcome.groups,
        outcome.conflicts,
        reports.join("\n")
    )
}

#[test]
fn helped_chains_decide_as_the_rules_do_one_by_one() {
    assert_eq!(helped().helper_threads(), 2);
    assert_eq!(engine().helper_threads(), 0);
    let kinds = kinds().len();
    // A fixed pseudo-random walk over chains of one to eight rules.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % n as u64).unwrap()
    };
    let (mut denied, mut longest_allowed) = (0, 0);
    for round in 0..120 {
        let len = 1 + next(8);
        let picks: Vec<usize> = (0..len).map(|_| next(kinds)).collect();
        let trigger = *ALL.get(round % ALL.len()).unwrap();
        let mut sign_in = request(trigger).sign_in;
        if round % 4 == 1 {
            sign_in
                .user_attributes
                .push(("custom:suspended".into(), "true".into()));
        }
        let sign_in = Arc::new(sign_in);
        // Every rule's data failed for one chain in five: each fails without running.
        let data = |chain: &Chain| DataSet {
            failed: if round % 5 == 4 {
                chain
                    .rules
                    .iter()
                    .map(|r| (r.key(), "table unreachable".to_owned()))
                    .collect()
            } else {
                Default::default()
            },
            ..DataSet::default()
        };
        let alone = chain_of(&picks, &load);
        let beside = chain_of(&picks, &load_helped);
        let later = Instant::now() + Duration::from_secs(5);
        let one_by_one = alone.evaluate(engine(), Arc::clone(&sign_in), &data(&alone), later);
        let side_by_side = beside.evaluate(helped(), Arc::clone(&sign_in), &data(&beside), later);
        assert_eq!(
            decided(&one_by_one),
            decided(&side_by_side),
            "chain {picks:?} for {trigger:?}"
        );
        match one_by_one.decision {
            Decision::Deny { .. } => denied += 1,
            Decision::Allow => longest_allowed = longest_allowed.max(one_by_one.reports.len()),
        }
    }
    // The walk covers both decisions and chains long enough to share.
    assert!(
        denied > 10 && longest_allowed >= 4,
        "{denied} {longest_allowed}"
    );
}

#[test]
fn a_deny_answers_without_waiting_for_the_rules_after_it() {
    let deny = json!({"domains": ["other.test"], "message": "not here"});
    let rule = |name: &str, path: &str, config: &serde_json::Value, timeout| Rule {
        name: RuleName::new(name).unwrap(),
        origin: Origin::Tenant,
        policy: load_helped(path),
        triggers: ALL.to_vec(),
        budget: Budget {
            fuel: u64::MAX / 2,
            timeout,
            ..Budget::default()
        },
        on_error: OnError::Allow,
        mode: Mode::Enforce,
        config: config.to_string().into(),
    };
    // Two rules that spin for 3 s each sit after the deny; the helpers may take them.
    let spin = Duration::from_secs(3);
    let chain = Chain {
        rules: vec![
            rule("domains", art::EMAIL_DOMAIN, &deny, Duration::from_secs(1)),
            rule("spin", art::INFINITE_LOOP, &json!(null), spin),
            rule("spin-again", art::INFINITE_LOOP, &json!(null), spin),
        ],
    };
    let start = Instant::now();
    let out = chain.evaluate(
        helped(),
        request(Trigger::PreAuthentication).sign_in,
        &DataSet::default(),
        Instant::now() + Duration::from_secs(10),
    );
    assert_eq!(
        out.decision,
        Decision::Deny {
            message: "not here".into(),
            rule: RuleName::new("domains").unwrap()
        }
    );
    assert_eq!(out.reports.len(), 1, "nothing past the deny is reported");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the answer waited for a rule past the deny: {:?}",
        start.elapsed()
    );
}
