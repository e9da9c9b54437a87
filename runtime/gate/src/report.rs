//! What one invocation leaves in the log: its decision record and its metric documents,
//! rendered as JSON lines into one buffer, so that writing them is one write — and, in the
//! Lambda, one made after the answer is out.

use serde::Serialize;

use crate::metrics::{self, FunctionCounters};
use crate::record::DecisionRecord;

/// The log lines an invocation owes: built on the answer's path (moving the record costs
/// nothing), rendered and written whenever the caller chooses.
#[derive(Debug, Clone)]
pub struct Report {
    /// The invocation's decision record.
    pub record: DecisionRecord,
    /// Whether Cognito got the event back rather than an error (see
    /// [`metrics::documents`]).
    pub answered_ok: bool,
    /// What the function counted since its last report.
    pub function: FunctionCounters,
    /// When the invocation was answered, in milliseconds since the Unix epoch: the metric
    /// documents' timestamp.
    pub at_ms: i64,
}

/// The decision record's line, in the layout of the Lambda's other (tracing) lines.
#[derive(Serialize)]
struct RecordLine<'a> {
    level: &'static str,
    target: &'static str,
    fields: &'a DecisionRecord,
}

impl Report {
    /// Appends the report's lines to `out`: the decision record as one JSON object
    /// (`{"level": "INFO", "target": "portcullis::decision", "fields": {…the record…}}` —
    /// never JSON text inside a string field, so log queries reach every field), then one
    /// CloudWatch Embedded Metric Format document per line. Each line ends with `\n`. A
    /// line that cannot be rendered (none of these types can fail to) is left out whole
    /// and logged, never half written.
    pub fn render(&self, out: &mut Vec<u8>) {
        let record = RecordLine {
            level: "INFO",
            target: "portcullis::decision",
            fields: &self.record,
        };
        line(out, &record);
        let documents =
            metrics::documents(&self.record, self.answered_ok, self.function, self.at_ms);
        for document in &documents {
            line(out, document);
        }
    }
}

/// Appends `value` as one JSON line, or nothing if it cannot be rendered.
fn line(out: &mut Vec<u8>, value: &impl Serialize) {
    let start = out.len();
    match serde_json::to_writer(&mut *out, value) {
        Ok(()) => out.push(b'\n'),
        Err(error) => {
            out.truncate(start);
            tracing::error!(error = %error, "a log line could not be rendered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Decided, RuleRecord};
    use portcullis_engine::chain::Effect;
    use portcullis_engine::rule::{Mode, Origin};
    use serde_json::Value;

    fn report() -> Report {
        let mut record = DecisionRecord::new("PreAuthentication_Authentication".into());
        record.tenant = Some("acme".into());
        record.decision = Decided::Deny;
        record.denied_by = Some("block-suspended".into());
        record.rules.push(RuleRecord {
            rule: "block-suspended".into(),
            origin: Origin::Tenant,
            mode: Mode::Enforce,
            effect: Effect::Applied,
            outcome: "deny",
            error: None,
            fuel: 1_234,
            duration_us: 17,
            peak_memory: 65_536,
            logs: vec!["suspended by attribute".into()],
        });
        Report {
            record,
            answered_ok: false,
            function: FunctionCounters {
                cold_starts: 1,
                ..FunctionCounters::default()
            },
            at_ms: 1_767_268_800_000,
        }
    }

    #[test]
    fn the_record_then_each_metric_document_one_json_line_each() {
        let report = report();
        let mut out = b"earlier\n".to_vec();
        report.render(&mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"earlier"), "appends, never replaces");
        assert!(text.ends_with('\n'));
        let parsed: Vec<Value> = lines
            .iter()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let record = &parsed[0];
        assert_eq!(record["level"], "INFO");
        assert_eq!(record["target"], "portcullis::decision");
        assert_eq!(record["fields"]["decision"], "deny");
        assert_eq!(record["fields"]["rules"][0]["rule"], "block-suspended");
        assert_eq!(
            record["fields"],
            serde_json::to_value(&report.record).unwrap(),
            "the record's fields are the record itself"
        );
        let documents = metrics::documents(&report.record, false, report.function, report.at_ms);
        // The invocation's document, the rule's, the function's cold start.
        assert_eq!(documents.len(), 3);
        let documents: Vec<Value> = documents
            .iter()
            .map(|d| serde_json::to_value(d).unwrap())
            .collect();
        assert_eq!(&parsed[1..], documents.as_slice());
    }
}
