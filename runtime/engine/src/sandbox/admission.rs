//! Admission to an instance pool: how many component instances, memories and tables a pool
//! has free, and the wait for them, so that running more rules at once than the pool holds
//! queues them instead of failing them.
//!
//! wasmtime's pooling allocator refuses an instantiation outright when its pool is full
//! ("maximum concurrent limit … reached"). Rules run at the same time in several places —
//! a rule set's modules are checked as they compile, concurrently; a canary's chain runs
//! beside the live one; the CLI replays in parallel — and a refusal there is a spurious
//! failure that has nothing to do with the rule. Every instantiation therefore first takes
//! a [`Ticket`] for exactly what the component needs (known when it is compiled); a ticket
//! that cannot be had waits for one to be returned, until the caller's deadline.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use wasmtime::component::Component;

use crate::budget;

/// What one instance of a component takes from its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Need {
    /// Linear memories the component defines.
    memories: u32,
    /// Tables the component defines.
    tables: u32,
}

impl Need {
    /// What an instance of `component` takes; the most a component may take when wasmtime
    /// cannot tell.
    pub(super) fn of(component: &Component) -> Need {
        component
            .resources_required()
            .map_or(Need::most(), |needs| Need {
                memories: needs.num_memories,
                tables: needs.num_tables,
            })
    }

    /// Nothing.
    pub(super) const NONE: Need = Need {
        memories: 0,
        tables: 0,
    };

    /// This need and `other` together.
    pub(super) fn plus(self, other: Need) -> Need {
        Need {
            memories: self.memories.saturating_add(other.memories),
            tables: self.tables.saturating_add(other.tables),
        }
    }

    /// Whether this need is at most `other` in both memories and tables.
    pub(super) fn within(self, other: Need) -> bool {
        self.memories <= other.memories && self.tables <= other.tables
    }

    /// A need of `memories` memories and `tables` tables.
    pub(super) const fn new(memories: u32, tables: u32) -> Need {
        Need { memories, tables }
    }

    /// The most any component may take (the per-component limits).
    fn most() -> Need {
        Need {
            memories: budget::MAX_MEMORIES as u32,
            tables: budget::MAX_TABLES as u32,
        }
    }
}

/// What a pool has free, and how many wait for it.
#[derive(Debug, Clone, Copy)]
struct Free {
    instances: u32,
    memories: u32,
    tables: u32,
    /// Callers waiting for a ticket: a returned ticket wakes them only when there are any
    /// (waking is a system call; an evaluation must not pay for it when no one waits).
    waiting: u32,
}

impl Free {
    fn covers(&self, need: Need) -> bool {
        self.instances >= 1 && self.memories >= need.memories && self.tables >= need.tables
    }
}

/// The free capacity of one pool, and the wait for it.
#[derive(Debug)]
pub(super) struct Admission {
    total: Free,
    free: Mutex<Free>,
    returned: Condvar,
}

/// Why no ticket was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refused {
    /// The component needs more than the whole pool holds: it can never run.
    #[error(
        "an instance needs {need_memories} memories and {need_tables} tables; the instance pool holds {memories} and {tables} in all"
    )]
    Never {
        /// Memories one instance needs.
        need_memories: u32,
        /// Tables one instance needs.
        need_tables: u32,
        /// Memories in the pool.
        memories: u32,
        /// Tables in the pool.
        tables: u32,
    },
    /// Nothing was returned to the pool before the deadline.
    #[error("no instance slot came free in time: {0} instances were running")]
    Busy(u32),
}

impl Admission {
    /// A pool of `instances` component instances, `memories` memories and `tables` tables.
    pub(super) fn new(instances: u32, memories: u32, tables: u32) -> Self {
        let total = Free {
            instances,
            memories,
            tables,
            waiting: 0,
        };
        Admission {
            total,
            free: Mutex::new(total),
            returned: Condvar::new(),
        }
    }

    /// Whether an instance needing `need` can ever be admitted.
    pub(super) fn fits(&self, need: Need) -> Result<(), Refused> {
        if self.total.covers(need) {
            Ok(())
        } else {
            Err(Refused::Never {
                need_memories: need.memories,
                need_tables: need.tables,
                memories: self.total.memories,
                tables: self.total.tables,
            })
        }
    }

    /// A ticket for `need` if the pool has room for it now, without waiting.
    pub(super) fn try_admit(&self, need: Need) -> Option<Ticket<'_>> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.covers(need).then(|| self.take(&mut free, need))
    }

    /// A ticket for `need`, waiting for one until `deadline`.
    pub(super) fn admit(&self, need: Need, deadline: Instant) -> Result<Ticket<'_>, Refused> {
        self.fits(need)?;
        // The lock guards plain counters updated whole: a poisoned lock's data is sound.
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while !free.covers(need) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Refused::Busy(self.total.instances - free.instances));
            }
            free.waiting += 1;
            free = self
                .returned
                .wait_timeout(free, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            free.waiting -= 1;
        }
        Ok(self.take(&mut free, need))
    }

    /// Takes `need` from `free`, which covers it.
    fn take(&self, free: &mut Free, need: Need) -> Ticket<'_> {
        free.instances -= 1;
        free.memories -= need.memories;
        free.tables -= need.tables;
        Ticket {
            admission: self,
            need,
        }
    }

    /// A ticket again for a place kept with [`Ticket::keep`] (holding `need`), which was
    /// not given back: the place goes on being held, now by the ticket.
    pub(super) fn resume(&self, need: Need) -> Ticket<'_> {
        Ticket {
            admission: self,
            need,
        }
    }

    /// Returns `instances` places and `need` (their needs together) to the pool at once:
    /// what kept tickets ([`Ticket::keep`]) held, once their instances are dropped.
    pub(super) fn give_back(&self, instances: u32, need: Need) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.instances += instances;
        free.memories += need.memories;
        free.tables += need.tables;
        let waiting = free.waiting > 0;
        drop(free);
        if waiting {
            self.returned.notify_all();
        }
    }
}

/// A place in the pool for one instance; returned when dropped (after the instance's store).
#[derive(Debug)]
pub(super) struct Ticket<'a> {
    admission: &'a Admission,
    need: Need,
}

impl Ticket<'_> {
    /// What the ticket holds.
    pub(super) fn need(&self) -> Need {
        self.need
    }

    /// Keeps the place past the ticket: what it holds is returned later, with
    /// [`Admission::give_back`], once the instance is dropped.
    pub(super) fn keep(self) -> Need {
        let need = self.need;
        std::mem::forget(self);
        need
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.admission.give_back(1, self.need);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    const ONE: Need = Need {
        memories: 1,
        tables: 1,
    };

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(20)
    }

    #[test]
    fn a_full_pool_refuses_at_the_deadline_and_admits_when_a_ticket_returns() {
        let pool = Admission::new(2, 4, 4);
        let a = pool.admit(ONE, soon());
        let b = pool.admit(ONE, soon());
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(pool.admit(ONE, soon()).err(), Some(Refused::Busy(2)));
        drop(a);
        assert!(pool.admit(ONE, soon()).is_ok());
    }

    #[test]
    fn a_kept_ticket_holds_its_place_until_given_back() {
        let pool = Admission::new(1, 2, 2);
        let need = pool.try_admit(ONE).map(Ticket::keep);
        assert_eq!(need, Some(ONE));
        assert!(pool.try_admit(ONE).is_none());
        pool.give_back(1, ONE);
        assert!(pool.try_admit(ONE).is_some());
    }

    #[test]
    fn memories_and_tables_are_counted_not_only_instances() {
        let pool = Admission::new(4, 4, 8);
        let big = Need {
            memories: 3,
            tables: 1,
        };
        let held = pool.admit(big, soon());
        assert!(held.is_ok());
        assert!(matches!(pool.admit(big, soon()), Err(Refused::Busy(1))));
        assert!(pool.admit(ONE, soon()).is_ok());
    }

    #[test]
    fn a_need_larger_than_the_pool_is_never_admitted() {
        let pool = Admission::new(1, 2, 8);
        let need = Need {
            memories: 4,
            tables: 0,
        };
        assert!(matches!(pool.fits(need), Err(Refused::Never { .. })));
        assert!(matches!(
            pool.admit(need, Instant::now() + Duration::from_secs(5)),
            Err(Refused::Never { .. })
        ));
    }

    #[test]
    fn many_threads_share_a_small_pool_without_a_refusal() {
        let pool = Arc::new(Admission::new(2, 2, 2));
        let running = Arc::new(AtomicU32::new(0));
        let most = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let deadline = Instant::now() + Duration::from_secs(10);
                        let Ok(_ticket) = pool.admit(ONE, deadline) else {
                            return false;
                        };
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        running.fetch_sub(1, Ordering::SeqCst);
                    }
                    true
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().ok(), Some(true));
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
        assert_eq!(pool.admit(ONE, soon()).err(), None);
    }
}
