//! Each evaluation's store state and every call a policy can make into the host: the
//! `request` resource's read-only methods over the lent [`SignIn`] (noting what the rule
//! reads) and the rule's own [`RuleInput`], and the bounded `log`.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Resource;

use crate::budget::Limiter;
use crate::contract::portcullis::policy::{host, types};
use crate::contract::{
    CounterChange, DataItem, LentRequest, Level, TokenSource, Trigger, TrustedContext,
};
use crate::outcome::LogLine;
use crate::reads::{Field, Names, Reads};
use crate::request::{NO_SIGN_IN, RuleInput, SignIn};

/// Log lines a rule may write per evaluation; more are dropped and counted.
pub const MAX_LOG_LINES: usize = 16;
/// The longest log line kept, in bytes; longer lines are truncated.
pub const MAX_LOG_LINE: usize = 512;

/// Per-store state: the sign-in lent to the rule and the rule's own input, the limiter,
/// the wall-clock deadline and the rule's captured log lines.
pub struct HostState {
    /// The sign-in `evaluate` is reading (none for `describe`).
    sign_in: Option<Arc<SignIn>>,
    /// The running rule's configuration and data (none lent: no configuration, no data).
    input: Option<RuleInput>,
    /// Caps memories, tables and instances.
    pub(super) limiter: Limiter,
    /// When the rule's wall-clock budget runs out.
    pub(super) deadline: Instant,
    /// Log lines kept.
    pub(super) logs: Vec<LogLine>,
    /// Log lines over [`MAX_LOG_LINES`], dropped.
    pub(super) logs_dropped: usize,
    /// What the rule read of the sign-in.
    pub(super) reads: Reads,
    /// Counter changes the rule asked for, in order (at most [`MAX_COUNT_REQUESTS`]).
    pub(super) counts: Vec<(String, CounterChange)>,
}

/// Counter changes one evaluation may ask for; later ones are ignored.
pub const MAX_COUNT_REQUESTS: usize = 16;
/// The most one counter change may add.
pub const MAX_COUNT_ADD: u32 = 1_000;

impl HostState {
    /// The state of a new store: nothing lent yet.
    pub(super) fn new(limiter: Limiter, deadline: Instant) -> HostState {
        HostState {
            sign_in: None,
            input: None,
            limiter,
            deadline,
            logs: Vec::new(),
            logs_dropped: 0,
            reads: Reads::default(),
            counts: Vec::new(),
        }
    }

    /// Lends the store `sign_in` (none for `describe`) and the rule's `input`, for its one
    /// call.
    pub(super) fn lend(&mut self, sign_in: Option<Arc<SignIn>>, input: RuleInput) {
        self.sign_in = sign_in;
        self.input = Some(input);
    }

    /// The rule's data items (none when nothing is lent).
    fn data_items(&self) -> &[DataItem] {
        self.input.as_ref().map_or(&[], |input| &input.data)
    }

    fn read(&self) -> &SignIn {
        self.sign_in.as_deref().unwrap_or(&NO_SIGN_IN)
    }

    /// The sign-in, noting that the rule read `field` of it.
    fn read_field(&mut self, field: Field) -> &SignIn {
        self.reads.field(field);
        self.read()
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        if self.logs.len() >= MAX_LOG_LINES {
            self.logs_dropped += 1;
            return;
        }
        self.logs.push(LogLine {
            level,
            message: truncate(message, MAX_LOG_LINE),
        });
    }

    fn count(&mut self, name: String, change: CounterChange) {
        let valid = match change {
            CounterChange::Add(n) => (1..=MAX_COUNT_ADD).contains(&n),
            CounterChange::Reset => true,
        };
        // A counter name is at most 64 bytes (the manifest's rule): a longer one names none.
        if valid && name.len() <= 64 && self.counts.len() < MAX_COUNT_REQUESTS {
            self.counts.push((name, change));
        }
    }
}

/// The value for `key` in `pairs`.
fn lookup(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// The `request` resource's methods. A store holds at most one sign-in, so the handle's
/// representation is not consulted: wasmtime only lets a policy call these methods with a
/// handle the host lent it, and only for the length of that call.
impl types::HostRequest for HostState {
    fn trigger(&mut self, _: Resource<LentRequest>) -> Trigger {
        self.read().trigger
    }

    fn trigger_source(&mut self, _: Resource<LentRequest>) -> String {
        self.read().trigger_source.clone()
    }

    fn event_version(&mut self, _: Resource<LentRequest>) -> String {
        self.read().event_version.clone()
    }

    fn tenant(&mut self, _: Resource<LentRequest>) -> String {
        self.read().tenant.clone()
    }

    fn user_pool_id(&mut self, _: Resource<LentRequest>) -> String {
        self.read_field(Field::UserPoolId).user_pool_id.clone()
    }

    fn client_id(&mut self, _: Resource<LentRequest>) -> Option<String> {
        self.read_field(Field::ClientId).client_id.clone()
    }

    fn user_name(&mut self, _: Resource<LentRequest>) -> Option<String> {
        self.read_field(Field::UserName).user_name.clone()
    }

    fn user_attribute(&mut self, _: Resource<LentRequest>, name: String) -> Option<String> {
        let value = lookup(&self.read().user_attributes, &name);
        self.reads.attributes.note(name);
        value
    }

    fn user_attributes(&mut self, _: Resource<LentRequest>) -> Vec<(String, String)> {
        self.reads.attributes = Names::All;
        self.read().user_attributes.clone()
    }

    fn client_metadata_value(&mut self, _: Resource<LentRequest>, key: String) -> Option<String> {
        let value = lookup(&self.read().client_metadata, &key);
        self.reads.client_metadata.note(key);
        value
    }

    fn client_metadata(&mut self, _: Resource<LentRequest>) -> Vec<(String, String)> {
        self.reads.client_metadata = Names::All;
        self.read().client_metadata.clone()
    }

    fn user_not_found(&mut self, _: Resource<LentRequest>) -> bool {
        self.read_field(Field::UserNotFound).user_not_found
    }

    fn new_device_used(&mut self, _: Resource<LentRequest>) -> Option<bool> {
        self.read_field(Field::NewDeviceUsed).new_device_used
    }

    fn groups(&mut self, _: Resource<LentRequest>) -> Vec<String> {
        self.read_field(Field::Groups).groups.clone()
    }

    fn scopes(&mut self, _: Resource<LentRequest>) -> Vec<String> {
        self.read_field(Field::Scopes).scopes.clone()
    }

    fn config(&mut self, _: Resource<LentRequest>) -> String {
        self.input.as_ref().map_or_else(
            || String::from("null"),
            |input| String::from(&*input.config),
        )
    }

    fn data_value(&mut self, _: Resource<LentRequest>, key: String) -> Option<String> {
        self.data_items()
            .iter()
            .find(|item| item.key == key)
            .map(|item| item.value.clone())
    }

    fn data(&mut self, _: Resource<LentRequest>) -> Vec<DataItem> {
        self.data_items().to_vec()
    }

    fn now_unix_ms(&mut self, _: Resource<LentRequest>) -> i64 {
        self.read().now_unix_ms
    }

    fn token_source(&mut self, _: Resource<LentRequest>) -> TokenSource {
        self.read().token_source
    }

    fn federated(&mut self, _: Resource<LentRequest>) -> bool {
        self.read_field(Field::Federated).federated
    }

    fn first_federated(&mut self, _: Resource<LentRequest>) -> bool {
        self.read_field(Field::Federated).first_federated
    }

    fn trusted_context(&mut self, _: Resource<LentRequest>) -> Option<TrustedContext> {
        self.read_field(Field::TrustedContext).trusted.clone()
    }

    fn drop(&mut self, _: Resource<LentRequest>) -> wasmtime::Result<()> {
        // The host only lends the request; a lent handle is never the policy's to drop.
        Ok(())
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub(super) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("héllo".into(), 2), "h…");
        assert_eq!(truncate("abc".into(), 5), "abc");
    }
}
