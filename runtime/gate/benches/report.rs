//! What writing an invocation's log lines (its decision record and metric documents) costs,
//! and what of it is left on the answer's path: as the Lambda did before (the record
//! through a `serde_json::Value`, then each line written on its own to a line-buffered
//! pipe, before answering) beside rendering a [`Report`] into one buffer and writing it in
//! one write — which the Lambda now does after the answer — and beside what the answer's
//! path keeps (moving the report into a locked queue). Records of one rule and of ten;
//! rounds interleaved; medians, p99 and ratios to the old path printed side by side.
//!
//! `cargo bench -p portcullis-gate --bench report`

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a benchmark: a failed step is a failed run; indexes are in range by construction"
)]

mod support;

use std::hint::black_box;
use std::io::{LineWriter, Read, Write};
use std::sync::Mutex;
use std::time::Instant;

use portcullis_engine::chain::Effect;
use portcullis_engine::rule::{Mode, Origin};
use portcullis_gate::metrics::{self, FunctionCounters};
use portcullis_gate::record::{Decided, DecisionRecord, RuleRecord};
use portcullis_gate::report::Report;
use support::{header, row, stats};

const ROUNDS: usize = 20_000;

fn record(rules: usize) -> DecisionRecord {
    let mut record = DecisionRecord::new("TokenGeneration_Authentication".into());
    record.tenant = Some("acme".into());
    record.revision = Some(42);
    record.global_revision = Some(7);
    record.decision = Decided::Allow;
    record.duration_us = 310;
    record.load_us = 4;
    record.rules_us = 290;
    for i in 0..rules {
        record.rules.push(RuleRecord {
            rule: format!("rule-{i}"),
            origin: if i < 2 {
                Origin::Global
            } else {
                Origin::Tenant
            },
            mode: if i == 9 { Mode::Shadow } else { Mode::Enforce },
            effect: if i == 9 {
                Effect::Shadowed
            } else {
                Effect::Applied
            },
            outcome: "allow",
            error: None,
            fuel: 12_345 + i as u64,
            duration_us: 21,
            peak_memory: 65_536,
            logs: Vec::new(),
        });
    }
    record
}

/// The Lambda's old path, on the answer's path: the record as a `Value`, then each line
/// written on its own (standard output is line-buffered: one write per line).
fn line_by_line(out: &mut impl Write, record: &DecisionRecord, at_ms: i64) {
    let line = serde_json::json!({
        "level": "INFO",
        "target": "portcullis::decision",
        "fields": record,
    });
    writeln!(out, "{line}").unwrap();
    for document in metrics::documents(record, true, FunctionCounters::default(), at_ms) {
        let document = serde_json::to_value(&document).unwrap();
        writeln!(out, "{document}").unwrap();
    }
}

fn main() {
    // A pipe drained by another thread, as Lambda's log collector drains a function's
    // standard output.
    let (mut reader, writer) = std::io::pipe().unwrap();
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while reader.read(&mut buf).unwrap_or(0) > 0 {}
    });
    let mut out = LineWriter::new(writer);
    let queue: Mutex<Vec<Report>> = Mutex::new(Vec::new());
    let at_ms = 1_767_268_800_000;

    println!("{ROUNDS} rounds, interleaved; µs");
    println!("records of N rules");
    header(58);
    for rules in [1, 10] {
        let record = record(rules);
        let mut before = Vec::with_capacity(ROUNDS);
        let mut rendered = Vec::with_capacity(ROUNDS);
        let mut posted = Vec::with_capacity(ROUNDS);
        let mut rendering = Vec::with_capacity(ROUNDS);
        let mut writing = Vec::with_capacity(ROUNDS);
        let mut size = 0;
        for _ in 0..ROUNDS {
            let start = Instant::now();
            line_by_line(&mut out, black_box(&record), at_ms);
            before.push(start.elapsed());

            let report = Report {
                record: record.clone(),
                answered_ok: true,
                function: FunctionCounters::default(),
                at_ms,
            };
            // What the answer's path keeps: the report moved into the outbox.
            let start = Instant::now();
            queue.lock().unwrap().push(black_box(report));
            posted.push(start.elapsed());

            // What moved after the answer: rendered into one buffer, one write.
            let start = Instant::now();
            let mut lines = Vec::with_capacity(4096);
            for report in std::mem::take(&mut *queue.lock().unwrap()) {
                report.render(&mut lines);
            }
            let between = Instant::now();
            out.write_all(&lines).unwrap();
            let end = Instant::now();
            rendered.push(end - start);
            rendering.push(between - start);
            writing.push(end - between);
            size = lines.len();
        }
        println!("{rules} rule(s): {size} bytes in {} lines", rules + 2);
        let base = stats(before.clone()).0;
        for (name, samples) in [
            ("line by line before the answer (before)", before),
            (
                "rendered into one buffer, one write (now after it)",
                rendered,
            ),
            ("- of which rendering", rendering),
            ("- of which the one write", writing),
            ("left on the answer's path now (the report queued)", posted),
        ] {
            row(&format!("  {name}"), 58, samples, base);
        }
    }
    drop(out);
    drain.join().unwrap();
}
