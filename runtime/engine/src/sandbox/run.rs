//! One run of a policy in a fresh store and instance under a [`Budget`], and the
//! classification of whatever stopped it into a typed [`Failure`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::Instance;

use super::host::HostState;
use super::{CompiledPolicy, Engine, ticker};
use crate::budget::{Budget, Limiter};
use crate::contract::CounterChange;
use crate::invalid::InvalidOutput;
use crate::outcome::{Failure, LogLine};
use crate::reads::Reads;
use crate::request::{RuleInput, SignIn};

/// The most a rule may hand the host in one call (a log line) or in its verdict, in
/// bytes of host memory, before the host allocates for it (wasmtime's hostcall fuel). A
/// verdict within every other limit needs well under 1 MiB.
pub const MAX_HOST_TRANSFER: usize = 2 << 20;

/// What one run produced, with its measurements.
pub(super) struct Run<R> {
    pub(super) result: Result<R, Failure>,
    pub(super) fuel_used: u64,
    pub(super) duration: Duration,
    pub(super) peak_memory: usize,
    pub(super) logs: Vec<LogLine>,
    pub(super) logs_dropped: usize,
    pub(super) reads: Reads,
    pub(super) counts: Vec<(String, CounterChange)>,
}

impl<R> Run<R> {
    /// A run that never started.
    fn refused(failure: Failure, start: Instant) -> Self {
        Run {
            result: Err(failure),
            fuel_used: 0,
            duration: start.elapsed(),
            peak_memory: 0,
            logs: Vec::new(),
            logs_dropped: 0,
            reads: Reads::default(),
            counts: Vec::new(),
        }
    }
}

/// What the guest handed the host could not be read (over [`MAX_HOST_TRANSFER`], or
/// malformed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Unreadable(pub(super) String);

impl Engine {
    /// Runs `call` in a fresh instance of `policy` under `budget`, with `sign_in` and
    /// `input` lent to it. An evaluation (`sign_in` given) takes a spare instance of the
    /// policy when one fits its budget, and asks for another ([`super::spare`]).
    pub(super) fn run<R>(
        &self,
        policy: &CompiledPolicy,
        (sign_in, input): (Option<&Arc<SignIn>>, RuleInput),
        budget: &Budget,
        call: impl FnOnce(&Instance, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Run<R> {
        let _active = self.ticker.enter();
        let start = Instant::now();
        let deadline = start + budget.timeout;
        let pool = self.pool(policy.placement);
        let memory_limit = budget.memory_bytes.min(self.config.max_memory_bytes);
        let spare = match sign_in {
            Some(_) => {
                let pre = (
                    policy.digest,
                    &policy.pre,
                    policy.need,
                    policy.initial_memory,
                );
                pool.spares
                    .want(pre, memory_limit, budget.fuel, budget.timeout);
                let limits = (memory_limit, budget.fuel);
                pool.spares
                    .take(&pool.admission, &policy.digest, limits, deadline)
            }
            None => None,
        };
        let (mut store, ticket, instance) = match spare {
            Some(taken) => (taken.store, taken.ticket, Ok(taken.instance)),
            None => {
                // Returned after the store, which returns the instance to the pool.
                let ticket = match pool.admit(policy.need, deadline) {
                    Ok(ticket) => ticket,
                    Err(refused) => {
                        return Run::refused(Failure::Host(refused.to_string()), start);
                    }
                };
                let mut store = new_store(policy.pre.engine(), memory_limit, deadline);
                // What is left of the budget after any wait for a place in the pool.
                ticker::arm_deadline(
                    &mut store,
                    deadline.saturating_duration_since(Instant::now()),
                );
                let instance = store
                    .set_fuel(budget.fuel)
                    .and_then(|()| policy.pre.instantiate(&mut store));
                (store, ticket, instance)
            }
        };
        store.data_mut().lend(sign_in.cloned(), input);
        let result = instance.and_then(|instance| call(&instance, &mut store));
        let duration = start.elapsed();
        let fuel_used = budget.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data_mut();
        let result = result
            .map_err(|error| classify(&error, &state.limiter, budget, memory_limit, duration));
        let run = Run {
            result,
            fuel_used,
            duration,
            peak_memory: state.limiter.peak_memory,
            logs: std::mem::take(&mut state.logs),
            logs_dropped: state.logs_dropped,
            reads: std::mem::take(&mut state.reads),
            counts: std::mem::take(&mut state.counts),
        };
        // Kept, to be dropped once the answer is out (`Engine::reap`), or dropped now.
        pool.spent.keep(store, ticket, run.peak_memory);
        run
    }
}

/// A store for one instance of `engine`'s components: no sign-in and no input lent yet,
/// memories capped at `memory_limit` bytes, the wall clock ending at `deadline` (armed with
/// [`ticker::arm_deadline`]), host transfers capped at [`MAX_HOST_TRANSFER`].
pub(super) fn new_store(
    engine: &wasmtime::Engine,
    memory_limit: usize,
    deadline: Instant,
) -> Store<HostState> {
    let mut store = Store::new(engine, HostState::new(Limiter::new(memory_limit), deadline));
    store.limiter(|state| &mut state.limiter);
    store.set_hostcall_fuel(MAX_HOST_TRANSFER);
    store
}

/// Turns a wasmtime error into a typed failure, by type: the limiter's flags first (a
/// refused `memory.grow` surfaces as whatever the guest does next, usually a trap), then
/// the trap code.
fn classify(
    error: &wasmtime::Error,
    limiter: &Limiter,
    budget: &Budget,
    memory_limit: usize,
    elapsed: Duration,
) -> Failure {
    if limiter.memory_exceeded {
        return Failure::MemoryLimit {
            limit: memory_limit,
        };
    }
    if limiter.table_exceeded {
        return Failure::ResourceLimit;
    }
    if let Some(Unreadable(why)) = error.downcast_ref::<Unreadable>() {
        return Failure::InvalidOutput(InvalidOutput::Unreadable(why.clone()));
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => Failure::OutOfFuel(budget.fuel),
        Some(wasmtime::Trap::Interrupt) => Failure::Timeout(elapsed),
        Some(code) => Failure::Trap { code: *code },
        None => Failure::Host(format!("{error:#}")),
    }
}
