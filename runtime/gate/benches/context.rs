//! The cost of trusting a context envelope: verifying a backend-signed envelope (base64url,
//! HMAC-SHA256, JSON, tenant/user/age checks, the nonce cache) per sign-in, beside refusing
//! a forged one and a sign-in without any. Each call is timed alone; the medians and p99s of
//! one run are printed side by side, with each median's ratio to a valid envelope's.
//!
//! `cargo bench -p portcullis-gate --bench context` (target: a valid envelope under 10 µs).

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a benchmark: a failed step is a failed run; indexes are in range by construction"
)]

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use portcullis_gate::context::{Claims, ContextConfig, ContextKeys, ContextVerifier, sign};
use portcullis_gate::tenant::TenantId;
use support::{header, row, stats};

const KEY: &[u8] = b"acme-context-key-0123456789abcdef0123456789";
const ROUNDS: usize = 50_000;

fn claims(nonce: usize, now: i64) -> Claims {
    Claims {
        tenant: "acme".into(),
        iat_ms: now,
        nonce: format!("{nonce:032x}"),
        user: Some("ada".into()),
        ip: Some("203.0.113.7".into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0".into()),
        device_id: Some("d-4f8e6c1a".into()),
        fields: [("risk_score".to_owned(), "12".to_owned())].into(),
    }
}

fn main() {
    let mut keys = ContextKeys::default();
    keys.add("acme", KEY).unwrap();
    keys.add("globex", b"globex-context-key-0123456789abcdef012345678")
        .unwrap();
    let verifier = ContextVerifier::new(keys, ContextConfig::default());
    let tenant: TenantId = "acme".parse().unwrap();
    let now = 1_767_268_800_000;
    let valid: Vec<String> = (0..ROUNDS)
        .map(|i| sign(&claims(i, now), KEY).unwrap())
        .collect();
    let forged = sign(&claims(0, now), b"not-the-key-not-the-key-not-the-key!").unwrap();
    let mut cases: Vec<(&str, Vec<Duration>)> = vec![
        ("valid envelope (new nonce)", Vec::with_capacity(ROUNDS)),
        (
            "valid envelope (seen, in window)",
            Vec::with_capacity(ROUNDS),
        ),
        ("forged envelope (refused)", Vec::with_capacity(ROUNDS)),
    ];
    // Rounds interleaved, so the machine's noise falls on every case alike.
    for (i, envelope) in valid.iter().enumerate() {
        let start = Instant::now();
        black_box(
            verifier
                .verify(black_box(envelope), &tenant, Some("ada"), now)
                .is_ok(),
        );
        cases[0].1.push(start.elapsed());
        let start = Instant::now();
        black_box(
            verifier
                .verify(black_box(&valid[i / 2]), &tenant, Some("ada"), now)
                .is_ok(),
        );
        cases[1].1.push(start.elapsed());
        let start = Instant::now();
        black_box(
            verifier
                .verify(black_box(&forged), &tenant, Some("ada"), now)
                .is_err(),
        );
        cases[2].1.push(start.elapsed());
    }
    let base = stats(cases[0].1.clone()).0;
    println!("envelope of {} bytes, {ROUNDS} rounds; µs", valid[0].len());
    header(34);
    for (name, samples) in cases {
        row(name, 34, samples, base);
    }
}
