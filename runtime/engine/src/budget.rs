//! Per-rule budgets ([`Budget`]) and the store's resource limiter that enforces memory,
//! table and instance caps.
//!
//! Three independent limits stop a rule:
//! - **fuel**: a deterministic instruction budget. The same rule on the same request burns
//!   the same fuel on every machine, so a rule that passes locally cannot run out in
//!   production because the host is busier.
//! - **wall clock**: an epoch deadline with millisecond resolution. It catches what fuel
//!   cannot price (slow host calls, a noisy machine) and bounds the chain's total time.
//! - **memory**: a cap on the sum of all of a rule's linear memories (a component may have
//!   several: the limit is the rule's, not each memory's), plus caps on table elements
//!   (also summed), tables, memories and instances.

use std::time::Duration;

/// The budget of one rule evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Fuel: roughly one unit per WebAssembly instruction.
    pub fuel: u64,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Linear memory limit in bytes.
    pub memory_bytes: usize,
}

impl Budget {
    /// The default fuel: 20 million units, a few milliseconds of work.
    pub const DEFAULT_FUEL: u64 = 20_000_000;
    /// The default wall-clock limit.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
    /// The default memory limit: 64 MiB.
    pub const DEFAULT_MEMORY: usize = 64 << 20;
    /// The wall clock of [`Budget::off_path`].
    pub const OFF_PATH_TIMEOUT: Duration = Duration::from_secs(2);

    /// The budget for running a policy off any sign-in's path — checking its exports at
    /// load, asking it to describe itself when it is built or published: the default fuel
    /// and memory, and a wall clock of [`Budget::OFF_PATH_TIMEOUT`], because the first
    /// instance of an interpreter (megabytes of memory image) can take tens of
    /// milliseconds, several times that on a busy machine. Fuel still bounds its work.
    pub const fn off_path() -> Budget {
        Budget {
            fuel: Self::DEFAULT_FUEL,
            timeout: Self::OFF_PATH_TIMEOUT,
            memory_bytes: Self::DEFAULT_MEMORY,
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            fuel: Self::DEFAULT_FUEL,
            timeout: Self::DEFAULT_TIMEOUT,
            memory_bytes: Self::DEFAULT_MEMORY,
        }
    }
}

/// Table elements a rule may hold, summed over its tables.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Core instances a component may create (wit-component output uses 2–4; JS more).
pub const MAX_INSTANCES: usize = 64;
/// Tables a component may create.
pub const MAX_TABLES: usize = 64;
/// Linear memories a component may create.
pub const MAX_MEMORIES: usize = 4;

/// Enforces a [`Budget`]'s memory limit in one store and remembers what was refused.
#[derive(Debug)]
pub(crate) struct Limiter {
    memory_limit: usize,
    /// The bytes of every linear memory of the rule, together.
    memory_total: usize,
    /// The elements of every table of the rule, together.
    table_total: usize,
    /// The largest total of linear memory reached (all memories together).
    pub(crate) peak_memory: usize,
    /// A memory growth was refused.
    pub(crate) memory_exceeded: bool,
    /// A table growth was refused.
    pub(crate) table_exceeded: bool,
}

impl Limiter {
    pub(crate) fn new(memory_limit: usize) -> Self {
        Limiter {
            memory_limit,
            memory_total: 0,
            table_total: 0,
            peak_memory: 0,
            memory_exceeded: false,
            table_exceeded: false,
        }
    }

    /// Sets the limit that growths from now on are checked against (what the memories
    /// already hold stays counted).
    pub(crate) fn set_memory_limit(&mut self, memory_limit: usize) {
        self.memory_limit = memory_limit;
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    /// Called for every memory, also when it is created (from 0 to its initial size): the
    /// limit holds for the sum of all of them.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_total
            .saturating_add(desired.saturating_sub(current));
        if total > self.memory_limit {
            self.memory_exceeded = true;
            return Ok(false);
        }
        self.memory_total = total;
        self.peak_memory = self.peak_memory.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .table_total
            .saturating_add(desired.saturating_sub(current));
        if total > MAX_TABLE_ELEMENTS {
            self.table_exceeded = true;
            return Ok(false);
        }
        self.table_total = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter as _;

    #[test]
    fn the_memory_limit_holds_for_all_memories_together() {
        let mut limiter = Limiter::new(10 << 20);
        // Four memories created at 2 MiB each: 8 MiB together.
        for _ in 0..4 {
            assert!(limiter.memory_growing(0, 2 << 20, None).unwrap());
        }
        assert_eq!(limiter.peak_memory, 8 << 20);
        // Each may grow, but not the sum past the rule's limit.
        assert!(limiter.memory_growing(2 << 20, 4 << 20, None).unwrap());
        assert!(!limiter.memory_growing(2 << 20, 3 << 20, None).unwrap());
        assert!(limiter.memory_exceeded);
        assert_eq!(limiter.peak_memory, 10 << 20);
    }

    #[test]
    fn table_elements_are_summed_too() {
        let mut limiter = Limiter::new(1 << 20);
        assert!(
            limiter
                .table_growing(0, MAX_TABLE_ELEMENTS / 2, None)
                .unwrap()
        );
        assert!(
            limiter
                .table_growing(0, MAX_TABLE_ELEMENTS / 2, None)
                .unwrap()
        );
        assert!(!limiter.table_growing(0, 1, None).unwrap());
        assert!(limiter.table_exceeded);
    }
}
