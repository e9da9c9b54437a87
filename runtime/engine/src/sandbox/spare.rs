//! Spare instances: made once an answer is out ([`Engine::replenish`]) for the rules that
//! just ran, so the next evaluation of the same policy starts from an instance that exists
//! already instead of instantiating on the answer's path.
//!
//! A spare is exactly what an evaluation would otherwise instantiate itself: a new store and
//! a new instance from the policy's `InstancePre`, with no sign-in and no rule input in it,
//! in which no export has been called. The guest cannot read a sign-in or an input before
//! it is called with a lent request, so nothing in a spare depends on whom it is used for;
//! it is taken by one evaluation, which lends it its sign-in and input, and is then spent
//! like any other instance (kept until the reap, or dropped). A spare is never called twice
//! and never goes back.
//!
//! Instantiation is deterministic, and a spare remembers what its instantiation used (fuel,
//! memory), so an evaluation takes one only if its own budget would have let that same
//! instantiation through, and continues with what its budget has left: the result, the fuel
//! used and the peak memory are those of an instance made on the spot. The wall clock of
//! the evaluation starts when it takes the spare (its deadline re-armed).
//!
//! Bounded: at most [`EngineConfig::spare_instances`] in the small pool and
//! [`EngineConfig::spare_large_instances`] in the large one, which the pools hold places for
//! on top of their running and kept instances; only components within [`KEPT_NEED`] whose
//! memories start within what a place of the pool keeps resident anyway (the small pool's
//! size, 1 MiB in the large one: an interpreter's many MiB are not held between sign-ins);
//! the oldest dropped first. A pool short of room drops its spares before it waits, and a spare
//! that cannot be made (no room, its instantiation failed) is simply not made: the
//! evaluation then instantiates as before and meets the same failure itself.
//!
//! [`Engine::replenish`]: super::Engine::replenish
//! [`EngineConfig::spare_instances`]: super::EngineConfig::spare_instances
//! [`EngineConfig::spare_large_instances`]: super::EngineConfig::spare_large_instances

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use super::admission::{Admission, Need, Ticket};
use super::host::HostState;
use super::run::new_store;
use super::spent::KEPT_NEED;
use super::ticker;
use crate::digest::Sha256;

/// An instance made ahead of its evaluation, never called.
pub(super) struct Spare {
    /// The digest of the component it is an instance of.
    digest: Sha256,
    store: Store<HostState>,
    instance: Instance,
    /// What it holds of its pool.
    need: Need,
    /// The fuel its instantiation used.
    fuel_used: u64,
}

/// What a spare is made from: a policy that ran, under the limits it ran with.
struct Wanted {
    digest: Sha256,
    pre: InstancePre<HostState>,
    need: Need,
    memory_limit: usize,
    fuel: u64,
    timeout: Duration,
}

/// A spare handed to an evaluation: its store and instance, and its place in the pool.
pub(super) struct Taken<'a> {
    pub(super) store: Store<HostState>,
    pub(super) instance: Instance,
    pub(super) ticket: Ticket<'a>,
}

/// One pool's spares, and the policies that ran since they were last made.
pub(super) struct Spares {
    /// Ready spares, the oldest first.
    ready: Mutex<VecDeque<Spare>>,
    /// Policies evaluated since the last [`Spares::replenish`], at most `cap`.
    wanted: Mutex<Vec<Wanted>>,
    /// The most spares kept.
    cap: usize,
    /// The largest memory (all of an instance's memories together) a spare may start with.
    max_memory: usize,
}

impl Spares {
    /// Keeps at most `cap` spares, each starting with memories of at most `max_memory`
    /// bytes (what a place of the pool keeps resident anyway).
    pub(super) fn new(cap: usize, max_memory: usize) -> Self {
        Spares {
            ready: Mutex::new(VecDeque::with_capacity(cap)),
            wanted: Mutex::new(Vec::with_capacity(cap)),
            cap,
            max_memory,
        }
    }

    /// Notes that `digest`'s policy ran (instantiated from `pre`, taking `need` of the pool,
    /// its memories starting at `memory` bytes in all) with `memory_limit`, `fuel` and
    /// `timeout`: [`Spares::replenish`] makes a spare for it, unless it takes more of the
    /// pool than [`KEPT_NEED`] or starts with more memory than a place keeps resident (an
    /// interpreter's many MiB would be held between sign-ins).
    pub(super) fn want(
        &self,
        (digest, pre, need, memory): (Sha256, &InstancePre<HostState>, Need, usize),
        memory_limit: usize,
        fuel: u64,
        timeout: Duration,
    ) {
        if self.cap == 0 || !need.within(KEPT_NEED) || memory > self.max_memory {
            return;
        }
        let mut wanted = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
        if wanted.len() < self.cap {
            wanted.push(Wanted {
                digest,
                pre: pre.clone(),
                need,
                memory_limit,
                fuel,
                timeout,
            });
        }
    }

    /// A spare of `digest`'s policy whose instantiation fits `memory_limit` and `fuel`,
    /// ready for an evaluation with those limits whose wall clock ends at `deadline`: its
    /// fuel is what `fuel` leaves after the instantiation, its memory limit `memory_limit`.
    pub(super) fn take<'a>(
        &self,
        admission: &'a Admission,
        digest: &Sha256,
        (memory_limit, fuel): (usize, u64),
        deadline: Instant,
    ) -> Option<Taken<'a>> {
        if self.cap == 0 {
            return None;
        }
        let spare = {
            let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
            let at = ready.iter().rposition(|spare| {
                spare.digest == *digest
                    && spare.fuel_used <= fuel
                    && spare.store.data().limiter.peak_memory <= memory_limit
            })?;
            ready.remove(at)?
        };
        let Spare {
            mut store,
            instance,
            need,
            fuel_used,
            ..
        } = spare;
        let ticket = admission.resume(need);
        let state = store.data_mut();
        state.limiter.set_memory_limit(memory_limit);
        state.deadline = deadline;
        ticker::arm_deadline(
            &mut store,
            deadline.saturating_duration_since(Instant::now()),
        );
        // Fuel is on in every pool: setting it cannot fail.
        let _ = store.set_fuel(fuel.saturating_sub(fuel_used));
        Some(Taken {
            store,
            instance,
            ticket,
        })
    }

    /// Makes a spare for each policy that ran since the last call, while the pool has room
    /// (never waiting for it), dropping the oldest spares past the cap. How many were made.
    pub(super) fn replenish(&self, admission: &Admission) -> usize {
        let wanted = {
            let mut wanted = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
            if wanted.is_empty() {
                return 0;
            }
            // Replaced by a list with room for `cap`: noting a policy on an evaluation's
            // path never grows it.
            std::mem::replace(&mut *wanted, Vec::with_capacity(self.cap))
        };
        let mut made = 0;
        for wanted in wanted {
            let oldest = {
                let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
                if ready.len() >= self.cap {
                    ready.pop_front()
                } else {
                    None
                }
            };
            if let Some(oldest) = oldest {
                oldest.drop_into(admission);
            }
            let Some(ticket) = admission.try_admit(wanted.need) else {
                continue;
            };
            if let Some(spare) = Spare::make(&wanted, ticket, self.max_memory) {
                self.ready
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_back(spare);
                made += 1;
            }
        }
        made
    }

    /// Drops every spare and returns their places to `admission`; how many.
    pub(super) fn clear(&self, admission: &Admission) -> usize {
        let ready = std::mem::take(&mut *self.ready.lock().unwrap_or_else(PoisonError::into_inner));
        let count = ready.len();
        for spare in ready {
            spare.drop_into(admission);
        }
        count
    }

    /// How many spares are ready.
    pub(super) fn len(&self) -> usize {
        self.ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Spare {
    /// Instantiates `wanted`'s policy in a new store under its limits, in the place
    /// `ticket` holds; `None` if the instantiation failed or its memories came to more than
    /// `max_memory` (the store is dropped before the ticket: the place is free only once
    /// the instance is back in the pool).
    fn make(wanted: &Wanted, ticket: Ticket<'_>, max_memory: usize) -> Option<Spare> {
        let deadline = Instant::now() + wanted.timeout;
        let mut store = new_store(wanted.pre.engine(), wanted.memory_limit, deadline);
        ticker::arm_deadline(&mut store, wanted.timeout);
        store.set_fuel(wanted.fuel).ok()?;
        let instance = wanted.pre.instantiate(&mut store).ok()?;
        if store.data().limiter.peak_memory > max_memory {
            return None;
        }
        let fuel_used = wanted.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        Some(Spare {
            digest: wanted.digest,
            store,
            instance,
            need: ticket.keep(),
            fuel_used,
        })
    }

    /// Drops the spare's store, then returns its place to `admission`.
    fn drop_into(self, admission: &Admission) {
        let need = self.need;
        drop(self.store);
        admission.give_back(1, need);
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::component::Component;

    use super::*;
    use crate::sandbox::EngineConfig;
    use crate::sandbox::pool::Pool;

    /// A component whose instantiation runs a start function: `spin` loop iterations, then
    /// `trap` decides whether it traps.
    fn starting(pool: &Pool, spin: u32, trap: bool) -> (InstancePre<HostState>, Need) {
        with_pages(pool, spin, trap, 1)
    }

    /// As [`starting`], its memory `pages` 64 KiB pages.
    fn with_pages(
        pool: &Pool,
        spin: u32,
        trap: bool,
        pages: u32,
    ) -> (InstancePre<HostState>, Need) {
        let end = if trap { "unreachable" } else { "" };
        let wat = format!(
            r#"(component
                (core module $m
                    (memory {pages})
                    (func $start (local $i i32)
                        (loop $again
                            (local.set $i (i32.add (local.get $i) (i32.const 1)))
                            (br_if $again (i32.lt_u (local.get $i) (i32.const {spin}))))
                        {end})
                    (start $start))
                (core instance (instantiate $m)))"#
        );
        let bytes = wat::parse_str(&wat).expect("wat");
        let component = Component::from_binary(&pool.wasm, &bytes).expect("component");
        let pre = pool.linker.instantiate_pre(&component).expect("pre");
        (pre, Need::of(&component))
    }

    fn pool(spares: u32) -> Pool {
        Pool::new(&EngineConfig::default(), (128 << 10, false), 0, spares).expect("pool")
    }

    /// The digest standing for component `n`.
    fn digest(n: u8) -> Sha256 {
        Sha256::of(&[n])
    }
    const TIMEOUT: Duration = Duration::from_secs(1);

    #[test]
    fn a_spare_carries_its_instantiations_fuel_and_fits_only_budgets_that_cover_it() {
        let pool = pool(2);
        let (pre, need) = starting(&pool, 10_000, false);
        pool.spares.want(
            (digest(7), &pre, need, 64 << 10),
            1 << 20,
            1_000_000,
            TIMEOUT,
        );
        assert_eq!(pool.spares.replenish(&pool.admission), 1);
        let soon = Instant::now() + TIMEOUT;
        let used = {
            let ready = pool.spares.ready.lock().expect("lock");
            ready.front().map(|spare| spare.fuel_used).expect("a spare")
        };
        assert!(
            used >= 10_000,
            "the start function's loop used fuel: {used}"
        );
        // Not for a budget that the instantiation alone would have run out of, nor for a
        // memory limit below the page it starts with, nor for another component.
        assert!(
            pool.spares
                .take(&pool.admission, &digest(7), (1 << 20, used - 1), soon)
                .is_none()
        );
        assert!(
            pool.spares
                .take(&pool.admission, &digest(7), ((64 << 10) - 1, used), soon)
                .is_none()
        );
        let other = digest(8);
        assert!(
            pool.spares
                .take(&pool.admission, &other, (1 << 20, used), soon)
                .is_none()
        );
        let taken = pool
            .spares
            .take(&pool.admission, &digest(7), (64 << 10, used + 5), soon)
            .expect("fits");
        assert_eq!(
            taken.store.get_fuel().expect("fuel"),
            5,
            "what the budget leaves"
        );
        assert_eq!(pool.spares.len(), 0);
    }

    #[test]
    fn a_spare_whose_instantiation_fails_is_not_made_and_its_place_comes_back() {
        let pool = pool(2);
        for (spin, trap, fuel) in [(10, true, 1_000_000), (1_000_000, false, 1_000)] {
            let (pre, need) = starting(&pool, spin, trap);
            pool.spares
                .want((digest(7), &pre, need, 64 << 10), 1 << 20, fuel, TIMEOUT);
            assert_eq!(pool.spares.replenish(&pool.admission), 0);
        }
        // Every place is free: as many tickets as the pool has places.
        let places = EngineConfig::default().max_concurrent + 2;
        let tickets: Vec<_> = (0..places)
            .map(|_| pool.admission.try_admit(Need::new(1, 0)))
            .collect();
        assert!(tickets.iter().all(Option::is_some));
        assert!(pool.admission.try_admit(Need::new(1, 0)).is_none());
    }

    #[test]
    fn spares_past_the_cap_push_out_the_oldest_and_clear_returns_every_place() {
        let pool = pool(2);
        let (pre, need) = starting(&pool, 1, false);
        // At most `cap` are wanted between two replenishes: the third is not noted.
        for n in 1..=3u8 {
            pool.spares
                .want((digest(n), &pre, need, 64 << 10), 1 << 20, 1_000, TIMEOUT);
        }
        assert_eq!(pool.spares.replenish(&pool.admission), 2);
        pool.spares
            .want((digest(3), &pre, need, 64 << 10), 1 << 20, 1_000, TIMEOUT);
        assert_eq!(pool.spares.replenish(&pool.admission), 1);
        assert_eq!(pool.spares.len(), 2);
        let soon = Instant::now() + TIMEOUT;
        let first = digest(1);
        assert!(
            pool.spares
                .take(&pool.admission, &first, (1 << 20, 1_000), soon)
                .is_none()
        );
        assert_eq!(pool.spares.clear(&pool.admission), 2);
        assert_eq!(pool.spares.len(), 0);
    }

    #[test]
    fn no_spare_starts_with_more_memory_than_a_place_keeps_resident() {
        // The pool keeps 128 KiB resident: a component starting with 192 KiB gets no spare,
        // whether its size is known up front or only found once instantiated.
        let pool = pool(2);
        let (pre, need) = with_pages(&pool, 1, false, 3);
        pool.spares
            .want((digest(1), &pre, need, 192 << 10), 1 << 20, 1_000, TIMEOUT);
        assert_eq!(pool.spares.replenish(&pool.admission), 0);
        pool.spares
            .want((digest(1), &pre, need, 64 << 10), 1 << 20, 1_000, TIMEOUT);
        assert_eq!(pool.spares.replenish(&pool.admission), 0);
        let (pre, need) = with_pages(&pool, 1, false, 2);
        pool.spares
            .want((digest(2), &pre, need, 128 << 10), 1 << 20, 1_000, TIMEOUT);
        assert_eq!(pool.spares.replenish(&pool.admission), 1);
    }
}
