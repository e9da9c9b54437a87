//! The engine's two instance pools — wasmtime engines with the same compilation settings
//! that reset memory two ways — and where a policy goes: by the size its memories start at.

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

use std::time::Instant;

use super::admission::{Admission, Need, Refused, Ticket};
use super::artifact::Placement;
use super::host::HostState;
use super::spare::Spares;
use super::spent::Spent;
use super::{EngineConfig, LoadError};
use crate::budget;
use crate::contract;

/// The size of a WebAssembly page.
const WASM_PAGE: u64 = 64 << 10;

/// A wasmtime engine and its instance pool. The two pools differ only in how a memory is
/// reset when an instance is dropped; everything that affects compiled code is the same,
/// so a component compiled by one can be deserialized by the other.
pub(super) struct Pool {
    /// The wasmtime engine.
    pub(super) wasm: wasmtime::Engine,
    /// The contract's host calls, linked.
    pub(super) linker: Linker<HostState>,
    /// What the pool has free, and the wait for it.
    pub(super) admission: Admission,
    /// Spent instances kept until the answer is out.
    pub(super) spent: Spent,
    /// Instances made ahead of their evaluations.
    pub(super) spares: Spares,
}

impl Pool {
    /// A pool whose memories keep `keep_resident` bytes resident, resetting only dirtied
    /// pages when `dirty_only`, and that keeps up to `kept` spent instances and `spares`
    /// spare ones (on top of [`EngineConfig::max_concurrent`] running ones).
    pub(super) fn new(
        config: &EngineConfig,
        (keep_resident, dirty_only): (usize, bool),
        kept: u32,
        spares: u32,
    ) -> Result<Self, LoadError> {
        let setup = |e: wasmtime::Error| LoadError::Setup(format!("{e:#}"));
        let mut wasm_config = wasmtime::Config::new();
        wasm_config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            // Same results on x86-64 and arm64: rules must be deterministic.
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            // No native-to-wasm address map: it only names wasm offsets in backtraces,
            // which failures never carry (a trap is classified by its code). Artifacts of
            // the example policies shrink 334 -> 303 KB, and so does each loaded rule.
            .generate_address_map(false)
            // No native unwind info (`.eh_frame`): only third-party unwinders walking
            // through wasm frames use it, never wasmtime's traps or backtraces (a host
            // function's panic is caught at the boundary and carried across the guest's
            // frames by wasmtime, not unwound through them). Registering it with
            // the system unwinder is part of every module's load (wasmtime's docs warn it
            // can be quadratic with many modules), and it is ~5 % of an artifact.
            .native_unwind_info(false)
            .max_wasm_stack(512 << 10);
        let running = config.max_concurrent.max(1);
        let n = running.saturating_add(kept).saturating_add(spares);
        // Each place's share is two memories and eight tables; a kept or spare instance
        // holds at most that (`KEPT_NEED`), so those never take the running ones' room.
        let admission = Admission::new(n, n * 2, n * 8);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            // Every component may take its most: admission counts only the rest.
            .total_core_instances(n * budget::MAX_INSTANCES as u32)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .max_core_instances_per_component(budget::MAX_INSTANCES as u32)
            .max_memories_per_component(budget::MAX_MEMORIES as u32)
            .max_tables_per_component(budget::MAX_TABLES as u32)
            .table_elements(budget::MAX_TABLE_ELEMENTS)
            .max_memory_size(config.max_memory_bytes)
            .linear_memory_keep_resident(keep_resident)
            .pagemap_scan(if dirty_only {
                wasmtime::Enabled::Auto
            } else {
                wasmtime::Enabled::No
            })
            .table_keep_resident(16 << 10);
        wasm_config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let wasm = wasmtime::Engine::new(&wasm_config).map_err(setup)?;
        let mut linker = Linker::new(&wasm);
        contract::Policy::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(setup)?;
        Ok(Pool {
            wasm,
            linker,
            admission,
            // A kept store holds no more memory than its place keeps resident after a
            // reset anyway.
            spent: Spent::new(kept as usize, keep_resident),
            spares: Spares::new(spares as usize, keep_resident),
        })
    }

    /// A ticket for `need`; if the pool has no room now, first drops what it keeps (spent
    /// instances and spares), then waits until `deadline`.
    pub(super) fn admit(&self, need: Need, deadline: Instant) -> Result<Ticket<'_>, Refused> {
        match self.admission.try_admit(need) {
            Some(ticket) => Ok(ticket),
            None => {
                self.spent.reap(&self.admission);
                self.spares.clear(&self.admission);
                self.admission.admit(need, deadline)
            }
        }
    }
}

/// The pool a compiled component's memories need: large when any memory starts above
/// [`EngineConfig::small_memory_bytes`] (or when that cannot be known).
pub(super) fn placement(component: &Component, config: &EngineConfig) -> Placement {
    let initial = component.resources_required().map_or(u64::MAX, |needs| {
        needs
            .max_initial_memory_size
            .unwrap_or(0)
            .saturating_mul(WASM_PAGE)
    });
    if initial <= config.small_memory_bytes as u64 {
        Placement::Small
    } else {
        Placement::Large
    }
}

/// The most memory an instance of `component` starts with, all its memories together
/// (`usize::MAX` when that cannot be known).
pub(super) fn initial_memory(component: &Component) -> usize {
    component.resources_required().map_or(usize::MAX, |needs| {
        let per_memory = needs
            .max_initial_memory_size
            .unwrap_or(0)
            .saturating_mul(WASM_PAGE);
        let all = per_memory.saturating_mul(u64::from(needs.num_memories));
        usize::try_from(all).unwrap_or(usize::MAX)
    })
}

/// This engine build's compatibility tag (see `Engine::compat`): both pools compile
/// alike ([`Pool::new`]), so the small pool's hash stands for both.
pub(super) fn compat_of(small: &Pool) -> String {
    use std::hash::{Hash, Hasher};
    struct Sha(sha2::Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            sha2::Digest::update(&mut self.0, bytes);
        }
    }
    let mut hasher = Sha(<sha2::Sha256 as sha2::Digest>::new());
    small.wasm.precompile_compatibility_hash().hash(&mut hasher);
    // Our own settings that change what a compiled artifact means.
    super::artifact::MAGIC.hash(&mut hasher);
    let digest = sha2::Digest::finalize(hasher.0);
    hex::encode(digest.get(..16).unwrap_or_default())
}
