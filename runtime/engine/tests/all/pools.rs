//! The two instance pools (memset for small memories, dirty pages for large ones): the same
//! answers in either, through a precompiled artifact too, and nothing an evaluation leaves
//! behind is seen by the next one.

use portcullis_artifacts as art;
use portcullis_engine::{CompiledPolicy, Engine, EngineConfig, Outcome, Trigger, Verdict};
use serde_json::json;

use portcullis_testkit::sign_in::{TestRequest, evaluate};

use crate::{budget, request};

/// Engines that put every policy here in the memset pool, and in the dirty-page pool.
fn both_pools() -> [(&'static str, Engine); 2] {
    let with = |small_memory_bytes| {
        Engine::new(EngineConfig {
            small_memory_bytes,
            ..EngineConfig::default()
        })
        .expect("engine")
    };
    [("memset pool", with(4 << 20)), ("dirty-page pool", with(0))]
}

fn verdict(engine: &Engine, path: &str, req: &TestRequest) -> Verdict {
    let policy = engine
        .load(&std::fs::read(path).expect("artifact"))
        .expect("load");
    match evaluate(engine, &policy, req, &budget()).outcome {
        Outcome::Verdict(v) => v,
        Outcome::Failed(f) => panic!("{path} failed: {f}"),
    }
}

#[test]
fn no_state_survives_an_evaluation_in_either_pool() {
    let req = request(Trigger::PreAuthentication);
    for (pool, engine) in both_pools() {
        let mut first_pages = None;
        let mut kept = 0;
        for run in 0..8 {
            // Half the runs after the spent instances were dropped, so their places (and
            // memories) are used again; half while they are still kept.
            if run % 2 == 1 {
                engine.reap();
            }
            let v = verdict(&engine, art::LEAK_PROBE, &req);
            kept = kept.max(engine.kept());
            let pages = v.id.get("probe_pages_at_start").cloned();
            assert!(pages.is_some(), "{pool}, run {run}: {v:?}");
            // The memory starts at its original size every time, although each run grows it.
            assert_eq!(
                *first_pages.get_or_insert(pages.clone()),
                pages,
                "{pool}, run {run}"
            );
        }
        // Kept instances were among those whose places were used again.
        assert!(kept > 0, "{pool}: no instance was kept");
    }
}

#[test]
fn a_large_memory_policy_answers_alike_in_both_pools_and_precompiled() {
    let mut req = request(Trigger::PreAuthentication);
    req.config =
        json!({"time_zone": "Europe/Berlin", "start": "08:00", "end": "18:00"}).to_string();
    for (pool, engine) in both_pools() {
        let bytes = std::fs::read(art::SIGNIN_HOURS).expect("artifact");
        let policy = engine.load(&bytes).expect("load");
        let key = portcullis_engine::ArtifactKey::new(vec![1; 32]).expect("key");
        let artifact = engine.artifact(&policy, &key).expect("artifact");
        // A second engine of the same build loads the artifact (a new Lambda instance).
        let (_, other) = both_pools()
            .into_iter()
            .find(|(p, _)| *p == pool)
            .expect("pool");
        let again = other
            .load_precompiled(&artifact, &policy.digest(), &key)
            .expect("precompiled");
        for (engine, policy) in [(&engine, &policy), (&other, &again)] {
            let mut r = req.clone();
            let at = |r: &TestRequest| match evaluate(engine, policy, r, &budget()).outcome {
                Outcome::Verdict(v) => v.is_allowed(),
                Outcome::Failed(f) => panic!("{pool}: {f}"),
            };
            // Monday 07:00 UTC = 08:00 Berlin: allowed; an hour earlier: not.
            assert!(at(&r), "{pool}");
            r.now_unix_ms -= 3_600_000;
            assert!(!at(&r), "{pool}");
        }
    }
}

/// `bytes` with a custom section naming `n` appended: a distinct component (its own digest,
/// its own compile) that behaves exactly like the original.
fn distinct(bytes: &[u8], n: usize) -> Vec<u8> {
    let name = b"portcullis-test";
    let payload = n.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    let mut out = bytes.to_vec();
    out.push(0);
    out.push(u8::try_from(size).expect("short section"));
    out.push(u8::try_from(name.len()).expect("short name"));
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

/// The first of `runs` evaluations of `policy` that failed, and why; `None` if all answered.
fn first_failure(
    engine: &Engine,
    policy: &CompiledPolicy,
    req: &TestRequest,
    runs: usize,
) -> Option<String> {
    (0..runs)
        .map(|_| evaluate(engine, policy, req, &budget()).outcome)
        .find_map(|outcome| match outcome {
            Outcome::Verdict(_) => None,
            Outcome::Failed(failure) => Some(failure.to_string()),
        })
}

#[test]
fn more_rules_at_once_than_the_pool_holds_wait_for_a_place_instead_of_failing() {
    // A pool of one: loading checks each new component in an instance, so eight distinct
    // components compiled on eight threads contend for it, and so do their evaluations.
    let engine = Engine::new(EngineConfig {
        max_concurrent: 1,
        ..EngineConfig::default()
    })
    .expect("engine");
    let bytes = std::fs::read(art::SUSPENDED_USERS).expect("artifact");
    let req = request(Trigger::PreAuthentication);
    std::thread::scope(|threads| {
        let running: Vec<_> = (0..8)
            .map(|n| {
                let (engine, bytes, req) = (&engine, &bytes, &req);
                threads.spawn(move || {
                    let policy = engine
                        .load(&distinct(bytes, n))
                        .unwrap_or_else(|e| panic!("loading copy {n}: {e}"));
                    first_failure(engine, &policy, req, 20)
                })
            })
            .collect();
        for (n, thread) in running.into_iter().enumerate() {
            assert_eq!(thread.join().expect("thread"), None, "copy {n}");
        }
    });
}

#[test]
fn precompiled_code_mapped_from_a_private_directory_answers_alike_and_leaves_no_file() {
    use std::os::unix::fs::PermissionsExt;

    let key = portcullis_engine::ArtifactKey::new(vec![3; 32]).expect("key");
    let builder = Engine::new(EngineConfig::default()).expect("engine");
    let sealed: Vec<_> = [
        (art::EMAIL_DOMAIN, json!({"domains": ["example.com"]})),
        (
            art::SIGNIN_HOURS,
            json!({"time_zone": "UTC", "start": "00:00", "end": "23:59"}),
        ),
    ]
    .into_iter()
    .map(|(path, config)| {
        let policy = builder
            .load(&std::fs::read(path).expect("artifact"))
            .expect("load");
        let artifact = builder.artifact(&policy, &key).expect("seal");
        (policy.digest(), artifact, config.to_string())
    })
    .collect();
    let scratch = tempfile::tempdir().expect("temporary directory");
    let private = scratch.path().join("code");
    // A directory others may write to is not used for code: the engine copies instead.
    let open = scratch.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    for dir in [&private, &open] {
        let engine = Engine::new(EngineConfig {
            code_dir: Some(dir.clone()),
            ..EngineConfig::default()
        })
        .expect("engine");
        let mode = std::fs::metadata(dir)
            .expect("the directory")
            .permissions()
            .mode();
        let mut req = request(Trigger::PreAuthentication);
        let mut loaded = Vec::new();
        for (digest, artifact, config) in &sealed {
            let policy = engine
                .load_precompiled(artifact, digest, &key)
                .expect("precompiled");
            req.config.clone_from(config);
            let outcome = evaluate(&engine, &policy, &req, &budget()).outcome;
            assert!(
                matches!(outcome, Outcome::Verdict(_)),
                "{dir:?}: {outcome:?}"
            );
            loaded.push(policy);
        }
        // Mapped from files that no longer have a name, or (the open directory) copied.
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let mapped = maps
            .lines()
            .filter(|l| l.contains(&*dir.to_string_lossy()) && l.ends_with("(deleted)"))
            .count();
        let left: Vec<_> = std::fs::read_dir(dir).expect("read_dir").collect();
        assert!(left.is_empty(), "{dir:?} kept {left:?}");
        if dir == &private {
            assert_eq!(mode & 0o777, 0o700, "the code directory is private");
            assert!(mapped >= 2, "both artifacts mapped from files: {mapped}");
        } else {
            assert_eq!(
                mapped, 0,
                "nothing mapped from a directory others can write"
            );
        }
    }
}

#[test]
fn spent_instances_are_kept_up_to_the_cap_until_reaped_and_a_grown_memory_never_is() {
    let req = request(Trigger::PreAuthentication);
    let bytes = std::fs::read(art::SUSPENDED_USERS).expect("artifact");
    // A pool of one running instance and three kept: ten evaluations in a row all answer,
    // three instances are kept, the rest dropped as before.
    let engine = Engine::new(EngineConfig {
        max_concurrent: 1,
        kept_instances: 3,
        ..EngineConfig::default()
    })
    .expect("engine");
    let policy = engine.load(&bytes).expect("load");
    engine.reap();
    let answers = |n| {
        (0..n)
            .map(
                |_| match evaluate(&engine, &policy, &req, &budget()).outcome {
                    Outcome::Verdict(v) => v.is_allowed(),
                    Outcome::Failed(f) => panic!("{f}"),
                },
            )
            .collect::<Vec<_>>()
    };
    let first = answers(10);
    assert_eq!(engine.kept(), 3);
    engine.reap();
    assert_eq!(engine.kept(), 0);
    assert_eq!(answers(10), first);
    assert_eq!(engine.kept(), 3);

    // A rule that grew its memory (to the budget's limit) is dropped at once.
    engine.reap();
    let bomb = engine
        .load(&std::fs::read(art::MEMORY_BOMB).expect("artifact"))
        .expect("load");
    engine.reap();
    let outcome = evaluate(&engine, &bomb, &req, &budget()).outcome;
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    assert_eq!(engine.kept(), 0);

    // Keeping none: every instance is dropped as its evaluation ends.
    let none = Engine::new(EngineConfig {
        kept_instances: 0,
        ..EngineConfig::default()
    })
    .expect("engine");
    let policy = none.load(&bytes).expect("load");
    let outcome = evaluate(&none, &policy, &req, &budget()).outcome;
    assert!(matches!(outcome, Outcome::Verdict(_)), "{outcome:?}");
    assert_eq!(none.kept(), 0);
}

#[test]
fn a_large_instance_is_kept_only_within_what_its_place_keeps_resident() {
    let mut req = request(Trigger::PreAuthentication);
    req.config =
        json!({"time_zone": "Europe/Berlin", "start": "00:00", "end": "23:59"}).to_string();
    let bytes = std::fs::read(art::SIGNIN_HOURS).expect("artifact");
    // `signin-hours` (a time-zone database in its data) runs in the large pool with a
    // 960 KiB memory: kept where a large place keeps 1 MiB resident after a reset, dropped
    // at once where it keeps 512 KiB, and where the large pool keeps none.
    let kept_after = |large_keep_resident_bytes, kept_large_instances| {
        let engine = Engine::new(EngineConfig {
            max_concurrent: 1,
            large_keep_resident_bytes,
            kept_large_instances,
            ..EngineConfig::default()
        })
        .expect("engine");
        let policy = engine.load(&bytes).expect("load");
        engine.reap();
        let mut kept = Vec::new();
        for _ in 0..5 {
            match evaluate(&engine, &policy, &req, &budget()).outcome {
                Outcome::Verdict(v) => assert!(v.is_allowed()),
                Outcome::Failed(f) => panic!("{f}"),
            }
            kept.push(engine.kept());
        }
        let reaped = engine.reap();
        assert_eq!(engine.kept(), 0);
        (kept, reaped)
    };
    assert_eq!(kept_after(1 << 20, 2), (vec![1, 2, 2, 2, 2], 2));
    assert_eq!(kept_after(512 << 10, 2), (vec![0; 5], 0));
    assert_eq!(kept_after(1 << 20, 0), (vec![0; 5], 0));
}

#[test]
fn kept_instances_never_cost_a_rule_its_place_with_many_threads_and_no_reap() {
    // One running place, two kept, eight threads: every evaluation answers, whether the
    // places are held by running or kept instances, and nobody reaps.
    let engine = Engine::new(EngineConfig {
        max_concurrent: 1,
        kept_instances: 2,
        ..EngineConfig::default()
    })
    .expect("engine");
    let policy = engine
        .load(&std::fs::read(art::SUSPENDED_USERS).expect("artifact"))
        .expect("load");
    let req = request(Trigger::PreAuthentication);
    std::thread::scope(|threads| {
        let running: Vec<_> = (0..8)
            .map(|_| {
                let (engine, policy, req) = (&engine, &policy, &req);
                threads.spawn(move || first_failure(engine, policy, req, 25))
            })
            .collect();
        for (n, thread) in running.into_iter().enumerate() {
            assert_eq!(thread.join().expect("thread"), None, "thread {n}");
        }
    });
    assert!(engine.kept() <= 2);
}
