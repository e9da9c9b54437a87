//! Per-rule budgets ([`Budget`]) and the store's resource limiter that enforces memory,
//! table and instance caps.
//!
//! Three independent limits stop a rule:
//! - **fuel**: a deterministic instruction budget. The same rule on the same request burns
//!   the same fuel on every machine, so a rule that passes locally cannot run out in
//!   production because the host is busier.
//! - **wall clock**: an epoch deadline with millisecond resolution. It catches what fuel
//!   cannot price (slow host calls, a noisy machine) and bounds the chain's total time.
//! - **memory**: a cap on linear memory growth, plus caps on tables and instances.

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

/// Table elements a rule may hold, across its tables.
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
    /// The largest linear memory size reached or requested and granted.
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
            peak_memory: 0,
            memory_exceeded: false,
            table_exceeded: false,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.table_exceeded = true;
            return Ok(false);
        }
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
