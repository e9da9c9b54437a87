//! Spent instances kept until the answer is out: a finished evaluation's store, whose drop
//! (the instance back to its pool, its memory reset) is about a third of an evaluation,
//! waits here for [`Engine::reap`](super::Engine::reap) instead of being dropped on the
//! answer's path.
//!
//! Bounded three ways, so keeping never costs a rule its place or the function its memory:
//! at most [`EngineConfig::kept_instances`](super::EngineConfig::kept_instances) stores
//! (the large pool:
//! [`EngineConfig::kept_large_instances`](super::EngineConfig::kept_large_instances)),
//! which the pool is sized for on top of its running instances; only stores whose memories
//! stayed within what their place keeps resident after a reset anyway (a rule that grew
//! its memory past it is dropped at once); and a pool short of room reaps what it keeps
//! before it waits (`Pool::admit`).
//! Nothing runs in a kept store again: its evaluation is over, its place in the pool is
//! held until it is dropped (its memory reset then), and only dropping it is left.

use std::sync::{Mutex, PoisonError};

use wasmtime::Store;

use super::admission::{Admission, Need, Ticket};
use super::host::HostState;

/// What one kept store may hold of its pool: the pool is sized with this much per kept
/// store on top of its running instances, so kept stores never take a running one's room.
pub(super) const KEPT_NEED: Need = Need::new(2, 8);

/// The stores a pool keeps, and how many it may.
pub(super) struct Spent {
    /// Kept stores and what each holds of the pool.
    kept: Mutex<Vec<(Store<HostState>, Need)>>,
    /// The most stores kept.
    cap: usize,
    /// The largest memory (all of a store's memories together) a kept store may have.
    max_memory: usize,
}

impl Spent {
    /// Keeps at most `cap` stores, each with memories of at most `max_memory` bytes.
    pub(super) fn new(cap: usize, max_memory: usize) -> Self {
        Spent {
            kept: Mutex::new(Vec::with_capacity(cap)),
            cap,
            max_memory,
        }
    }

    /// Keeps `store`, whose instance held `ticket`'s place, or drops both now (the store
    /// first: the place is free only once the instance is back in the pool) when the cap
    /// is reached, the store's memories grew past the kept size, or it holds more than
    /// [`KEPT_NEED`].
    pub(super) fn keep(&self, store: Store<HostState>, ticket: Ticket<'_>, memory: usize) {
        if self.cap > 0 && memory <= self.max_memory && ticket.need().within(KEPT_NEED) {
            // A poisoned lock's data is a list of whole entries: sound.
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            if kept.len() < self.cap {
                kept.push((store, ticket.keep()));
                return;
            }
        }
        drop(store);
        drop(ticket);
    }

    /// Drops every kept store and returns their places to `admission`, at once; how many.
    pub(super) fn reap(&self, admission: &Admission) -> usize {
        let kept = {
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            if kept.is_empty() {
                return 0;
            }
            std::mem::replace(&mut *kept, Vec::with_capacity(self.cap))
        };
        let count = kept.len();
        let mut held = Need::NONE;
        for (store, need) in kept {
            drop(store);
            held = held.plus(need);
        }
        admission.give_back(u32::try_from(count).unwrap_or(u32::MAX), held);
        count
    }

    /// How many stores are kept now.
    pub(super) fn len(&self) -> usize {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
