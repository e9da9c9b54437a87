//! The sandbox: compiling and caching policy components ([`Engine::load`]) and running one
//! evaluation in a fresh instance under a [`Budget`] ([`Engine::evaluate`]).
//!
//! # Isolation
//! Every evaluation gets a new `Store` and a new instance from the policy's cached
//! `InstancePre`, so nothing — globals, heap, a lock held when a previous call trapped —
//! survives from one user or tenant to the next. Instances come from wasmtime's pooling
//! allocator, which keeps the cost of that isolation to a few microseconds.
//!
//! # What a component may import
//! Only the contract's own interfaces ([`crate::contract::allowed_import`]): the `request`
//! resource's read-only methods and the bounded `log`. No WASI, no filesystem, network,
//! environment, clock or randomness. A component that imports anything else is refused at
//! load with an error that names the imports.
//!
//! # The request is lent, not copied
//! `evaluate` takes a borrowed handle to the request, which stays in the store
//! ([`crate::request`]); the policy copies in only the fields it reads. Lowering the whole
//! request as a record cost one guest allocation per string (24 host-to-guest calls for a
//! four-attribute sign-in, about a third of a trivial rule's time) whether or not the rule
//! looked at it.
//!
//! # Budgets
//! Fuel is set per store and is deterministic. The wall clock is an epoch deadline: a
//! ticker thread advances the engine's epoch once per millisecond of real time while any
//! evaluation is running, and parks when the engine is idle. When the deadline tick comes,
//! the real clock is checked, so a late ticker catching up never stops a rule early.
//! Memory, tables and instances are capped by a resource limiter. See [`crate::budget`].
//!
//! # Cost
//! A fresh instance is cheap when the guest's memory stays resident between instances and
//! its reset is cheap. Policies link with a 32 KiB stack, so a small policy's whole memory
//! (stack, data, heap) is one 64 KiB page, and the SDK's bump allocator never calls
//! `memory.grow` on the common path. Two instance pools (two wasmtime engines with the same
//! compilation settings) reset memory two ways, and each policy is placed in one at load by
//! the initial size of its memories:
//! - **small** (up to [`EngineConfig::small_memory_bytes`]): the whole memory is kept
//!   resident and reset with one `memset` — cheaper than asking the kernel which pages are
//!   dirty when there are only a few;
//! - **large** (policies with big data segments, such as time-zone tables): the kernel is
//!   asked which pages the instance dirtied (Linux `PAGEMAP_SCAN`) and only those are reset,
//!   so the untouched data stays mapped instead of being copied back or faulted in again.
//!
//! BENCHMARKS.md has the measurements.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use wasmtime::component::{
    Component, ComponentExportIndex, HasSelf, Instance, InstancePre, Linker, Resource, TypedFunc,
};
use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::artifact::{self, ArtifactError, ArtifactKey};
use crate::budget::{self, Budget, Limiter};
use crate::contract::{self, Level, Metadata};
use crate::digest::Sha256;
use crate::outcome::{Evaluation, Failure, InvalidOutput, LogLine, Outcome};
use crate::request::Request;
use crate::verdict::Verdict;

/// Log lines a rule may write per evaluation; more are dropped and counted.
pub const MAX_LOG_LINES: usize = 16;
/// The longest log line kept, in bytes; longer lines are truncated.
pub const MAX_LOG_LINE: usize = 512;
/// The longest policy error message kept, in bytes.
pub const MAX_POLICY_ERROR: usize = 512;
/// The most a rule may hand the host in one call (a log line) or in its verdict, in
/// bytes of host memory, before the host allocates for it (wasmtime's hostcall fuel). A
/// verdict within every other limit needs well under 1 MiB.
pub const MAX_HOST_TRANSFER: usize = 2 << 20;

/// Engine-wide settings; per-rule limits are [`Budget`]s.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The largest component accepted, in bytes.
    pub max_module_bytes: usize,
    /// The largest memory limit a budget may ask for (the pool's per-memory cap).
    pub max_memory_bytes: usize,
    /// Evaluations that may run at the same time (sizes the instance pool).
    pub max_concurrent: u32,
    /// Policies whose memories all start at most this large run in the small pool: the
    /// first this-many bytes of a memory stay resident and are reset with one `memset`.
    pub small_memory_bytes: usize,
    /// In the large pool, up to this many bytes of the pages an instance dirtied stay
    /// resident and are reset with `memset`; the rest is released with `madvise`. The
    /// dirty pages are found with Linux's `PAGEMAP_SCAN` (kernel 6.7+); without it the
    /// first this-many bytes are reset whole.
    pub large_keep_resident_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_module_bytes: 32 << 20,
            max_memory_bytes: 512 << 20,
            max_concurrent: 32,
            small_memory_bytes: 128 << 10,
            large_keep_resident_bytes: 1 << 20,
        }
    }
}

/// Why a component could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The component is larger than [`EngineConfig::max_module_bytes`].
    #[error("module is {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes do not hash to the digest the manifest names.
    #[error("module digest mismatch: expected `{expected}`, got `{actual}`")]
    DigestMismatch {
        /// The digest the manifest names.
        expected: Sha256,
        /// The digest of the bytes.
        actual: Sha256,
    },
    /// A core WebAssembly module where a component is required.
    #[error(
        "this is a core WebAssembly module, not a component: build it with the Portcullis build step (see README)"
    )]
    NotAComponent,
    /// The bytes are not a valid component.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component imports something outside the contract.
    #[error("component imports {} outside the policy contract (only `portcullis:policy` may be imported; WASI is not available)", quoted(.0))]
    ForbiddenImports(Vec<String>),
    /// The component does not export the contract's functions with the right types.
    #[error("component does not implement the policy contract `portcullis:policy@0.2.0`: {0}")]
    Contract(String),
    /// A precompiled artifact that this deployment does not vouch for, or that cannot be
    /// used.
    #[error("precompiled artifact refused: {0}")]
    Artifact(#[from] ArtifactError),
    /// The engine could not be set up.
    #[error("engine setup failed: {0}")]
    Setup(String),
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A compiled, validated policy, ready to instantiate. Cheap to share.
pub struct CompiledPolicy {
    digest: Sha256,
    size: usize,
    pre: InstancePre<HostState>,
    exports: Exports,
}

/// The contract's exports of one component: found and type-checked once, when the policy is
/// prepared, so an evaluation looks them up by index without checking their types again
/// (the check walks the signatures' whole types: with contract 0.1's request record it
/// measured about 0.8 µs of a 10 µs evaluation).
#[derive(Debug, Clone, Copy)]
struct Exports {
    evaluate: ComponentExportIndex,
    describe: ComponentExportIndex,
}

/// `evaluate`'s signature, exactly as type-checked in [`Engine::prepare`].
type EvaluateFn = TypedFunc<(Resource<Request>,), (Result<contract::RawVerdict, String>,)>;
/// `describe`'s signature, exactly as type-checked in [`Engine::prepare`].
type DescribeFn = TypedFunc<(), (Metadata,)>;

impl Exports {
    fn find(component: &Component) -> Result<Self, LoadError> {
        let find = |name: &str| {
            component
                .get_export_index(None, name)
                .ok_or_else(|| LoadError::Contract(format!("no export named `{name}`")))
        };
        Ok(Exports {
            evaluate: find("evaluate")?,
            describe: find("describe")?,
        })
    }

    /// Checks the export types against the Rust signatures, in a live instance (wasmtime
    /// type-checks component functions per instance; the answer is the same for every
    /// instance of one `InstancePre`).
    fn check(&self, instance: &Instance, store: &mut Store<HostState>) -> wasmtime::Result<()> {
        let mismatch = |name: &str, e: wasmtime::Error| {
            wasmtime::format_err!("`{name}` does not have the contract's type: {e:#}")
        };
        let _: EvaluateFn = instance
            .get_typed_func(&mut *store, self.evaluate)
            .map_err(|e| mismatch("evaluate", e))?;
        let _: DescribeFn = instance
            .get_typed_func(&mut *store, self.describe)
            .map_err(|e| mismatch("describe", e))?;
        Ok(())
    }

    fn evaluate(
        &self,
        instance: &Instance,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<EvaluateFn> {
        let func = instance
            .get_func(store, self.evaluate)
            .ok_or_else(|| wasmtime::format_err!("`evaluate` is not a function"))?;
        // SAFETY: `Exports::check` type-checked this export of this component against
        // exactly `EvaluateFn`'s types when the policy was prepared, and every instance of
        // one `InstancePre` has the same export types.
        Ok(unsafe { TypedFunc::new_unchecked(func) })
    }

    fn describe(
        &self,
        instance: &Instance,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<DescribeFn> {
        let func = instance
            .get_func(store, self.describe)
            .ok_or_else(|| wasmtime::format_err!("`describe` is not a function"))?;
        // SAFETY: as in `Exports::evaluate`, for `DescribeFn`.
        Ok(unsafe { TypedFunc::new_unchecked(func) })
    }
}

impl CompiledPolicy {
    /// The sha256 of the component bytes.
    pub fn digest(&self) -> Sha256 {
        self.digest
    }

    /// The component's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl std::fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("digest", &self.digest)
            .field("size", &self.size)
            .finish()
    }
}

/// Per-store state: the request lent to the rule, the limiter and the rule's captured log
/// lines.
pub struct HostState {
    /// The request `evaluate` is reading (none for `describe`); read by the `request`
    /// resource's methods ([`crate::request`]).
    pub(crate) request: Option<Arc<Request>>,
    limiter: Limiter,
    /// When the rule's wall-clock budget runs out.
    deadline: Instant,
    logs: Vec<LogLine>,
    logs_dropped: usize,
}

impl contract::portcullis::policy::types::Host for HostState {}

impl contract::portcullis::policy::host::Host for HostState {
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
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
fn truncate(mut s: String, max: usize) -> String {
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

/// Advances the engine's epoch once per millisecond while evaluations run.
struct Ticker {
    active: AtomicUsize,
    parked: AtomicBool,
    shutdown: AtomicBool,
    thread: Mutex<Option<Thread>>,
}

/// Marks an evaluation as running for the ticker.
struct Active<'a>(&'a Ticker);

impl Ticker {
    fn enter(&self) -> Active<'_> {
        self.active.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.wake();
        }
        Active(self)
    }

    fn wake(&self) {
        if let Ok(guard) = self.thread.lock()
            && let Some(thread) = guard.as_ref()
        {
            thread.unpark();
        }
    }

    fn run(self: Arc<Self>, engines: [wasmtime::EngineWeak; 2]) {
        let mut origin = Instant::now();
        let mut ticks: u128 = 0;
        let mut idle_ticks = 0u32;
        while !self.shutdown.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(1));
            let [small, large] = &engines;
            let (Some(small), Some(large)) = (small.upgrade(), large.upgrade()) else {
                return;
            };
            // One tick per elapsed millisecond of real time, however long the sleep was.
            let due = origin.elapsed().as_millis();
            while ticks < due {
                small.increment_epoch();
                large.increment_epoch();
                ticks += 1;
            }
            drop((small, large));
            if self.active.load(Ordering::SeqCst) > 0 {
                idle_ticks = 0;
                continue;
            }
            idle_ticks += 1;
            if idle_ticks >= 100 {
                self.parked.store(true, Ordering::SeqCst);
                if self.active.load(Ordering::SeqCst) == 0 && !self.shutdown.load(Ordering::SeqCst)
                {
                    thread::park();
                }
                self.parked.store(false, Ordering::SeqCst);
                idle_ticks = 0;
                origin = Instant::now();
                ticks = 0;
            }
        }
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The size of a WebAssembly page.
const WASM_PAGE: u64 = 64 << 10;

/// A wasmtime engine and its instance pool. The two pools differ only in how a memory is
/// reset when an instance is dropped; everything that affects compiled code is the same,
/// so a component compiled by one can be deserialized by the other.
struct Pool {
    wasm: wasmtime::Engine,
    linker: Linker<HostState>,
}

impl Pool {
    fn new(
        config: &EngineConfig,
        keep_resident: usize,
        dirty_only: bool,
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
            .max_wasm_stack(512 << 10);
        let n = config.max_concurrent.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
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
        Ok(Pool { wasm, linker })
    }
}

/// The policy engine: compiles, caches and runs policies. One per process.
pub struct Engine {
    /// Policies with small memories: reset with one `memset`.
    small: Pool,
    /// Policies with large memories: only dirtied pages are reset.
    large: Pool,
    cache: Mutex<HashMap<Sha256, Weak<CompiledPolicy>>>,
    ticker: Arc<Ticker>,
    config: EngineConfig,
    /// [`Engine::compat`], computed once.
    compat: String,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with the given settings.
    pub fn new(config: EngineConfig) -> Result<Self, LoadError> {
        let small = Pool::new(&config, config.small_memory_bytes, false)?;
        let large = Pool::new(&config, config.large_keep_resident_bytes, true)?;
        let ticker = Arc::new(Ticker {
            active: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let engines = [small.wasm.weak(), large.wasm.weak()];
        let runner = Arc::clone(&ticker);
        let handle = thread::Builder::new()
            .name("portcullis-epoch".into())
            .spawn(move || runner.run(engines))
            .map_err(|e| LoadError::Setup(format!("starting the epoch ticker: {e}")))?;
        if let Ok(mut slot) = ticker.thread.lock() {
            *slot = Some(handle.thread().clone());
        }
        Ok(Engine {
            compat: Self::compat_of(&small),
            small,
            large,
            cache: Mutex::new(HashMap::new()),
            ticker,
            config,
        })
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Compiles and validates a component, or returns the cached one with the same digest.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<CompiledPolicy>, LoadError> {
        self.load_digest(bytes, Sha256::of(bytes))
    }

    /// Like [`Engine::load`], but refuses bytes that do not hash to `expected`.
    pub fn load_verified(
        &self,
        bytes: &[u8],
        expected: &Sha256,
    ) -> Result<Arc<CompiledPolicy>, LoadError> {
        let actual = Sha256::of(bytes);
        if actual != *expected {
            return Err(LoadError::DigestMismatch {
                expected: *expected,
                actual,
            });
        }
        self.load_digest(bytes, actual)
    }

    /// This engine build's compatibility tag: precompiled artifacts made by an engine with
    /// another tag (wasmtime version, settings, CPU features) are never loaded. 32 hex digits.
    pub fn compat(&self) -> String {
        self.compat.clone()
    }

    fn compat_of(small: &Pool) -> String {
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
        // Both pools compile alike (`Pool::new`), so one hash stands for both.
        small.wasm.precompile_compatibility_hash().hash(&mut hasher);
        // Our own settings that change what a compiled artifact means.
        artifact::MAGIC.hash(&mut hasher);
        let digest = sha2::Digest::finalize(hasher.0);
        hex::encode(digest.get(..16).unwrap_or_default())
    }

    /// The precompiled artifact of a loaded policy, for this engine build, sealed under
    /// this deployment's artifact `key` ([`crate::artifact`]). Store it as
    /// `compiled/<compat>/<digest>.cwasm`; [`Engine::load_precompiled`] loads it.
    pub fn artifact(
        &self,
        policy: &CompiledPolicy,
        key: &ArtifactKey,
    ) -> Result<Vec<u8>, LoadError> {
        let native = policy
            .pre
            .component()
            .serialize()
            .map_err(|e| LoadError::Setup(format!("serializing a compiled policy: {e:#}")))?;
        artifact::seal(
            key,
            &self.compat,
            &policy.digest,
            policy.size as u64,
            &native,
        )
        .ok_or_else(|| LoadError::Setup("the engine's compatibility id is malformed".into()))
    }

    /// Loads a precompiled artifact made by [`Engine::artifact`] for the module whose
    /// digest is `expected`. Refused ([`LoadError::Artifact`]) unless its tag verifies under
    /// this deployment's artifact `key` and it names exactly this engine build and that
    /// module; wasmtime then checks its own version and settings, and the contract's
    /// import allow-list is checked again.
    pub fn load_precompiled(
        &self,
        artifact: &[u8],
        expected: &Sha256,
        key: &ArtifactKey,
    ) -> Result<Arc<CompiledPolicy>, LoadError> {
        if let Some(policy) = self.cached(expected) {
            return Ok(policy);
        }
        let opened = artifact::open(key, &self.compat, expected, artifact)?;
        let incompatible = |why: String| LoadError::Artifact(ArtifactError::Incompatible(why));
        wasmtime::Engine::detect_precompiled(opened.native)
            .filter(|kind| *kind == wasmtime::Precompiled::Component)
            .ok_or_else(|| incompatible("not a precompiled component".into()))?;
        // SAFETY: `Component::deserialize` maps these bytes as executable code without
        // checking them, so they must be native code that wasmtime compiled. They are: the
        // artifact's HMAC-SHA256 tag verified (in constant time) under this deployment's
        // artifact key, over this engine's compatibility id, the module's digest and size
        // and every native byte. Only holders of that key make tags — this deployment's
        // function and the platform's build (`Engine::artifact`) — and they make them only
        // for code wasmtime just compiled, in-process, from a module whose sha256 was
        // verified. Write access to the store (publishers, tenants, a compromised bucket)
        // does not give the key, so it cannot produce bytes that reach this call. wasmtime
        // also checks the version and settings in the bytes' own header.
        let component = unsafe { Component::deserialize(&self.small.wasm, opened.native) }
            .map_err(|e| incompatible(format!("{e:#}")))?;
        let size = usize::try_from(opened.module_size).unwrap_or(usize::MAX);
        let policy = Arc::new(self.prepare(&component, *expected, size)?);
        Ok(self.remember(policy))
    }

    /// Caches `policy`, unless a load of the same digest that ran at the same time got
    /// there first: then that one is returned, so every caller shares one compiled policy.
    fn remember(&self, policy: Arc<CompiledPolicy>) -> Arc<CompiledPolicy> {
        let Ok(mut cache) = self.cache.lock() else {
            return policy;
        };
        cache.retain(|_, weak| weak.strong_count() > 0);
        if let Some(first) = cache.get(&policy.digest).and_then(Weak::upgrade) {
            return first;
        }
        cache.insert(policy.digest, Arc::downgrade(&policy));
        policy
    }

    /// The policy with this digest, if it is compiled and in use (no store read needed).
    pub fn loaded(&self, digest: &Sha256) -> Option<Arc<CompiledPolicy>> {
        self.cached(digest)
    }

    fn cached(&self, digest: &Sha256) -> Option<Arc<CompiledPolicy>> {
        self.cache.lock().ok()?.get(digest).and_then(Weak::upgrade)
    }

    fn load_digest(&self, bytes: &[u8], digest: Sha256) -> Result<Arc<CompiledPolicy>, LoadError> {
        if let Some(policy) = self.cached(&digest) {
            return Ok(policy);
        }
        let limit = self.config.max_module_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                bytes: bytes.len(),
                limit,
            });
        }
        if bytes.get(..8) == Some(b"\0asm\x01\0\0\0") {
            return Err(LoadError::NotAComponent);
        }
        let component = Component::from_binary(&self.small.wasm, bytes)
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        let policy = Arc::new(self.prepare(&component, digest, bytes.len())?);
        Ok(self.remember(policy))
    }

    fn prepare(
        &self,
        component: &Component,
        digest: Sha256,
        size: usize,
    ) -> Result<CompiledPolicy, LoadError> {
        let forbidden: Vec<String> = component
            .component_type()
            .imports(component.engine())
            .filter(|(name, item)| !contract::allowed_import(name, &item.ty))
            .map(|(name, _)| name.to_owned())
            .collect();
        if !forbidden.is_empty() {
            return Err(LoadError::ForbiddenImports(forbidden));
        }
        let (component, pool) = self.place(component)?;
        let pre = pool
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Contract(format!("{e:#}")))?;
        let exports = Exports::find(&component)?;
        let policy = CompiledPolicy {
            digest,
            size,
            pre,
            exports,
        };
        // One instance, once, to type-check the exports (see `Exports`).
        self.run(&policy, None, &Budget::default(), |instance, store| {
            policy.exports.check(instance, store)
        })
        .result
        .map_err(|failure| match failure {
            Failure::Host(why) => LoadError::Contract(why),
            other => LoadError::Contract(format!("checking the exports: {other}")),
        })?;
        Ok(policy)
    }

    /// Places a component compiled for the small pool in the pool its memories need: the
    /// large one when any memory starts above [`EngineConfig::small_memory_bytes`] (or when
    /// that cannot be known).
    fn place(&self, component: &Component) -> Result<(Component, &Pool), LoadError> {
        let initial = component.resources_required().map_or(u64::MAX, |needs| {
            needs
                .max_initial_memory_size
                .unwrap_or(0)
                .saturating_mul(WASM_PAGE)
        });
        if initial <= self.config.small_memory_bytes as u64 {
            return Ok((component.clone(), &self.small));
        }
        let moving = |e: wasmtime::Error| {
            LoadError::Setup(format!("moving a policy to the large-memory pool: {e:#}"))
        };
        let native = component.serialize().map_err(moving)?;
        // SAFETY: wasmtime serialized these bytes just now, in this process, from the small
        // pool's engine, whose compilation settings are the large pool's (`Pool::new`).
        let component =
            unsafe { Component::deserialize(&self.large.wasm, &native) }.map_err(moving)?;
        Ok((component, &self.large))
    }

    /// Evaluates `request` with `policy` in a fresh instance under `budget`.
    ///
    /// The request is lent to the instance, not copied into it: the policy reads the fields
    /// it needs through the contract's `request` resource. The store holds a reference
    /// until the evaluation returns, so a caller that owns the only other one can change
    /// the request in place (`Arc::make_mut`) for the next rule.
    pub fn evaluate(
        &self,
        policy: &CompiledPolicy,
        request: &Arc<Request>,
        budget: &Budget,
    ) -> Evaluation {
        let run = self.run(policy, Some(request), budget, |instance, store| {
            let evaluate = policy.exports.evaluate(instance, store)?;
            // The store holds one request, so the handle's representation is not used.
            let lent = Resource::new_borrow(0);
            // No `post_return`: it lets the guest free what the verdict borrowed, and the
            // instance is dropped right after the verdict is read.
            evaluate
                .call(store, (lent,))
                .map(|(verdict,)| verdict)
                .map_err(|error| {
                    // A guest trap stays a trap; anything else failed while the host read
                    // what the guest handed it (a verdict or log line over the transfer cap).
                    if error.downcast_ref::<wasmtime::Trap>().is_some() {
                        error
                    } else {
                        wasmtime::Error::new(Unreadable(format!("{error:#}")))
                    }
                })
        });
        let outcome = match run.result {
            Ok(Ok(raw)) => match Verdict::validate(raw) {
                Ok(verdict) => Outcome::Verdict(verdict),
                Err(invalid) => Outcome::Failed(Failure::InvalidOutput(invalid)),
            },
            Ok(Err(message)) => {
                Outcome::Failed(Failure::PolicyError(truncate(message, MAX_POLICY_ERROR)))
            }
            Err(failure) => Outcome::Failed(failure),
        };
        Evaluation {
            outcome,
            fuel_used: run.fuel_used,
            duration: run.duration,
            peak_memory: run.peak_memory,
            logs: run.logs,
            logs_dropped: run.logs_dropped,
        }
    }

    /// Asks the policy to describe itself (under `budget`).
    pub fn describe(&self, policy: &CompiledPolicy, budget: &Budget) -> Result<Metadata, Failure> {
        self.run(policy, None, budget, |instance, store| {
            let describe = policy.exports.describe(instance, store)?;
            describe.call(store, ()).map(|(metadata,)| metadata)
        })
        .result
    }

    fn run<R>(
        &self,
        policy: &CompiledPolicy,
        request: Option<&Arc<Request>>,
        budget: &Budget,
        call: impl FnOnce(&Instance, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Run<R> {
        let _active = self.ticker.enter();
        let start = Instant::now();
        let memory_limit = budget.memory_bytes.min(self.config.max_memory_bytes);
        let mut store = Store::new(
            policy.pre.engine(),
            HostState {
                request: request.cloned(),
                limiter: Limiter::new(memory_limit),
                deadline: start + budget.timeout,
                logs: Vec::new(),
                logs_dropped: 0,
            },
        );
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(MAX_HOST_TRANSFER);
        store.set_epoch_deadline(epoch_ticks(budget.timeout));
        // The epoch only says "look at the clock": the ticker may fall behind on a busy
        // machine and catch up in a burst, so the real clock decides, and a rule is never
        // stopped before its budget. The closure captures nothing: no allocation.
        store.epoch_deadline_callback(|ctx| {
            let now = Instant::now();
            let deadline = ctx.data().deadline;
            Ok(if now >= deadline {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Continue(epoch_ticks(deadline - now))
            })
        });
        let result = store
            .set_fuel(budget.fuel)
            .and_then(|()| policy.pre.instantiate(&mut store))
            .and_then(|instance| call(&instance, &mut store));
        let duration = start.elapsed();
        let fuel_used = budget.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        let result = result
            .map_err(|error| classify(&error, &state.limiter, budget, memory_limit, duration));
        Run {
            result,
            fuel_used,
            duration,
            peak_memory: state.limiter.peak_memory,
            logs: state.logs,
            logs_dropped: state.logs_dropped,
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker.shutdown.store(true, Ordering::SeqCst);
        self.ticker.wake();
    }
}

/// What the guest handed the host could not be read (over [`MAX_HOST_TRANSFER`], or
/// malformed).
#[derive(Debug)]
struct Unreadable(String);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreadable {}

struct Run<R> {
    result: Result<R, Failure>,
    fuel_used: u64,
    duration: Duration,
    peak_memory: usize,
    logs: Vec<LogLine>,
    logs_dropped: usize,
}

/// Epoch ticks for a timeout: one per started millisecond, at least one.
fn epoch_ticks(timeout: Duration) -> u64 {
    let ms = timeout.as_micros().div_ceil(1000);
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_up() {
        assert_eq!(epoch_ticks(Duration::from_millis(10)), 10);
        assert_eq!(epoch_ticks(Duration::from_micros(10_001)), 11);
        assert_eq!(epoch_ticks(Duration::ZERO), 1);
    }

    /// The isolation tests rely on the leak probe; this shows that it does see state when
    /// an instance is reused (which the engine never does).
    #[test]
    fn the_leak_probe_sees_state_left_in_a_reused_instance() {
        let engine = Engine::new(EngineConfig::default()).expect("engine");
        let bytes = std::fs::read(portcullis_artifacts::LEAK_PROBE).expect("artifact");
        let policy = engine.load(&bytes).expect("load");
        let request = Arc::new(crate::request::NO_REQUEST.clone());
        let run = engine.run(
            &policy,
            Some(&request),
            &Budget::default(),
            |instance, store| {
                let evaluate = policy.exports.evaluate(instance, store)?;
                let first = evaluate.call(&mut *store, (Resource::new_borrow(0),))?.0;
                let second = evaluate.call(&mut *store, (Resource::new_borrow(0),))?.0;
                Ok((first.is_ok(), second.err()))
            },
        );
        let (first_ok, second) = run.result.expect("runs");
        assert!(first_ok);
        assert_eq!(second.as_deref(), Some("global counter leaked: 1"));
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("héllo".into(), 2), "h…");
        assert_eq!(truncate("abc".into(), 5), "abc");
    }
}
