//! The sandbox: compiling and caching policy components ([`Engine::load`]) and running one
//! evaluation in a fresh instance under a [`Budget`] ([`Engine::evaluate`]).
//!
//! # Isolation
//! Every evaluation gets a new `Store` and a new instance from the policy's cached
//! `InstancePre`, so nothing — globals, heap, a lock held when a previous call trapped —
//! survives from one user or tenant to the next. Instances come from wasmtime's pooling
//! allocator, which keeps the cost of that isolation to a few microseconds, and a caller
//! that has answered can take even that off the next answer's path: [`Engine::replenish`]
//! makes the instances ahead (`spare`), each still new and used by one evaluation only.
//!
//! # What a component may import
//! Only the contract's own interfaces ([`crate::contract::allowed_import`]): the `request`
//! resource's read-only methods and the bounded `log`. No WASI, no filesystem, network,
//! environment, clock or randomness. A component that imports anything else is refused at
//! load with an error that names the imports.
//!
//! # The request is lent, not copied
//! `evaluate` takes a borrowed handle to the request, whose sign-in and rule input stay in
//! the store ([`host`]); the policy copies in only the fields it reads. Lowering the whole
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
//!
//! # Files
//! [`artifact`] is the precompiled format as pure bytes; `code` where verified native code
//! lives (copied, or mapped from a private directory); `pool` the two instance pools and
//! placement; `ticker` the wall clock; `exports` the unchecked export calls and their
//! SAFETY argument; [`host`] the store state and every host call; `run` one run in a fresh
//! instance and the classification of what stopped it; `spent` the finished instances kept
//! until the answer is out ([`Engine::reap`]); `spare` the instances made ahead for the
//! next evaluations ([`Engine::replenish`]); `helpers` the threads that run a chain's
//! rules side by side ([`Engine::start_helpers`]); `load_error` why a load failed. This
//! file holds the [`Engine`]'s verbs: [`Engine::load`], [`Engine::load_verified`],
//! [`Engine::load_precompiled`] and [`Engine::artifact`] to get a policy in and out,
//! [`Engine::evaluate`] and [`Engine::describe`] to run it, [`Engine::reap`] and
//! [`Engine::replenish`] once an answer is out.

mod admission;
pub mod artifact;
mod code;
mod config;
mod exports;
pub(crate) mod helpers;
pub mod host;
mod load_error;
mod pool;
mod run;
mod spare;
mod spent;
mod ticker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use wasmtime::component::{Component, InstancePre, Resource};

use crate::budget::Budget;
use crate::contract::{self, Metadata};
use crate::digest::Sha256;
use crate::outcome::{Evaluation, Failure, Outcome};
use crate::request::{RuleInput, SignIn};
use crate::verdict::Verdict;
use admission::Need;
use artifact::{ArtifactError, ArtifactKey, Placement};
pub use config::EngineConfig;
use exports::Exports;
use host::HostState;
pub use host::{MAX_LOG_LINE, MAX_LOG_LINES};
pub use load_error::LoadError;
use pool::Pool;
pub use run::MAX_HOST_TRANSFER;
use run::Unreadable;
use ticker::Ticker;

/// The longest policy error message kept, in bytes.
pub const MAX_POLICY_ERROR: usize = 512;

/// A compiled, validated policy, ready to instantiate. Cheap to share.
pub struct CompiledPolicy {
    digest: Sha256,
    size: usize,
    placement: Placement,
    /// What one instance takes from its pool.
    need: Need,
    /// The most memory an instance starts with, in bytes.
    initial_memory: usize,
    pre: InstancePre<HostState>,
    exports: Exports,
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

/// The policy engine: compiles, caches and runs policies. One per process.
pub struct Engine {
    /// Policies with small memories: reset with one `memset`.
    small: Pool,
    /// Policies with large memories: only dirtied pages are reset.
    large: Pool,
    cache: Mutex<HashMap<Sha256, Weak<CompiledPolicy>>>,
    ticker: Arc<Ticker>,
    /// Where precompiled code is mapped from ([`EngineConfig::code_dir`], when usable).
    code: Option<code::CodeDir>,
    config: EngineConfig,
    /// [`Engine::compat`], computed once.
    compat: String,
    /// Threads that run a chain's rules beside it ([`Engine::start_helpers`]).
    helpers: std::sync::OnceLock<helpers::Helpers>,
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
        let small = Pool::new(
            &config,
            (config.small_memory_bytes, false),
            config.kept_instances,
            config.spare_instances,
        )?;
        let large = Pool::new(
            &config,
            (config.large_keep_resident_bytes, true),
            config.kept_large_instances,
            config.spare_large_instances,
        )?;
        let ticker = Ticker::start([small.wasm.weak(), large.wasm.weak()])
            .map_err(|e| LoadError::Setup(format!("starting the epoch ticker: {e}")))?;
        Ok(Engine {
            compat: pool::compat_of(&small),
            small,
            large,
            cache: Mutex::new(HashMap::new()),
            ticker,
            code: config.code_dir.as_deref().and_then(code::CodeDir::open),
            config,
            helpers: std::sync::OnceLock::new(),
        })
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The wasmtime engine of the pool for small memories, with this engine's compilation
    /// and pool settings: for benchmarks that run components outside the contract on the
    /// same footing (`portcullis-bench`'s contract benchmark). What is instantiated through
    /// it bypasses admission, so such a benchmark gives it an `Engine` of its own.
    #[doc(hidden)]
    pub fn wasmtime_engine(&self) -> &wasmtime::Engine {
        &self.small.wasm
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
            (&policy.digest, policy.size as u64),
            policy.placement,
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
        // SAFETY: `code::deserialize` maps these bytes as executable code without
        // checking them (copied, or written to a private file and mapped from it), so they
        // must be native code that wasmtime compiled. They are: the artifact's HMAC-SHA256
        // tag verified (in constant time) under this deployment's artifact key, over this
        // engine's compatibility id, the module's digest and size and every native byte.
        // Only holders of that key make tags — this deployment's function and the
        // platform's build (`Engine::artifact`) — and they make them only for code wasmtime
        // just compiled, in-process, from a module whose sha256 was verified. Write access
        // to the store (publishers, tenants, a compromised bucket) does not give the key,
        // so it cannot produce bytes that reach this call. wasmtime also checks the version
        // and settings in the bytes' own header.
        // The artifact names its pool (under the tag), so the code is deserialized once,
        // straight into the pool it was compiled for.
        let pool = self.pool(opened.placement);
        let component = unsafe { code::deserialize(&pool.wasm, opened.native, self.code.as_ref()) }
            .map_err(|e| incompatible(format!("{e:#}")))?;
        let size = usize::try_from(opened.module_size).unwrap_or(usize::MAX);
        let policy = Arc::new(self.prepare(&component, opened.placement, *expected, size)?);
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

    /// The policy with this digest, if it is compiled and still in use: no store read and
    /// no compile needed.
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
        let forbidden = contract::forbidden_import_names(bytes);
        if !forbidden.is_empty() {
            return Err(LoadError::ForbiddenImports(forbidden));
        }
        let component = Component::from_binary(&self.small.wasm, bytes)
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        let placement = pool::placement(&component, &self.config);
        let component = match placement {
            Placement::Small => component,
            Placement::Large => self.move_to_large(&component)?,
        };
        let policy = Arc::new(self.prepare(&component, placement, digest, bytes.len())?);
        Ok(self.remember(policy))
    }

    /// Checks the imports, links and type-checks a component compiled for `placement`'s
    /// pool.
    fn prepare(
        &self,
        component: &Component,
        placement: Placement,
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
        let pre = self
            .pool(placement)
            .linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::Contract(format!("{e:#}")))?;
        let exports = Exports::find(component)?;
        let need = Need::of(component);
        self.pool(placement)
            .admission
            .fits(need)
            .map_err(|e| LoadError::Invalid(e.to_string()))?;
        let policy = CompiledPolicy {
            digest,
            size,
            placement,
            need,
            initial_memory: pool::initial_memory(component),
            pre,
            exports,
        };
        // One instance, once, to type-check the exports (see `Exports`), off the per-rule
        // wall clock (`Budget::off_path`).
        let nothing = (None, RuleInput::default());
        let check = Budget::off_path();
        self.run(&policy, nothing, &check, |instance, store| {
            policy.exports.check(instance, store)
        })
        .result
        .map_err(|failure| match failure {
            Failure::Host(why) => LoadError::Contract(why),
            other => LoadError::Contract(format!("checking the exports: {other}")),
        })?;
        Ok(policy)
    }

    fn pool(&self, placement: Placement) -> &Pool {
        match placement {
            Placement::Small => &self.small,
            Placement::Large => &self.large,
        }
    }

    /// A component compiled by the small pool's engine, moved to the large pool (a
    /// serialization and a deserialization: the compile happens before its memories' size
    /// is known; a precompiled artifact names its pool and skips this).
    fn move_to_large(&self, component: &Component) -> Result<Component, LoadError> {
        let moving = |e: wasmtime::Error| {
            LoadError::Setup(format!("moving a policy to the large-memory pool: {e:#}"))
        };
        let native = component.serialize().map_err(moving)?;
        // SAFETY: wasmtime serialized these bytes just now, in this process, from the small
        // pool's engine, whose compilation settings are the large pool's (`Pool::new`).
        unsafe { Component::deserialize(&self.large.wasm, &native) }.map_err(moving)
    }

    /// Evaluates `sign_in` with `policy` in a fresh instance under `budget`, the rule's own
    /// configuration and data (`input`) beside it.
    ///
    /// Nothing is copied into the instance: the policy reads the fields it needs through
    /// the contract's `request` resource ([`host`]). The store holds a reference to the
    /// sign-in until the evaluation returns.
    pub fn evaluate(
        &self,
        policy: &CompiledPolicy,
        sign_in: &Arc<SignIn>,
        input: &RuleInput,
        budget: &Budget,
    ) -> Evaluation {
        let run = self.run(
            policy,
            (Some(sign_in), input.clone()),
            budget,
            |instance, store| {
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
            },
        );
        let outcome = match run.result {
            Ok(Ok(raw)) => match Verdict::validate(raw) {
                Ok(verdict) => Outcome::Verdict(verdict),
                Err(invalid) => Outcome::Failed(Failure::InvalidOutput(invalid)),
            },
            Ok(Err(message)) => Outcome::Failed(Failure::PolicyError(host::truncate(
                message,
                MAX_POLICY_ERROR,
            ))),
            Err(failure) => Outcome::Failed(failure),
        };
        // A failed rule's requests go with its failure.
        let counts = match outcome {
            Outcome::Verdict(_) => run.counts,
            Outcome::Failed(_) => Vec::new(),
        };
        Evaluation {
            outcome,
            fuel_used: run.fuel_used,
            duration: run.duration,
            peak_memory: run.peak_memory,
            logs: run.logs,
            logs_dropped: run.logs_dropped,
            reads: run.reads,
            counts,
        }
    }

    /// Drops the spent instances kept since the last reap ([`EngineConfig::kept_instances`],
    /// [`EngineConfig::kept_large_instances`]) and returns their places to the pool: call
    /// it once an answer is out (the Lambda does after posting each response). Never
    /// needed for correctness. Returns how many were dropped.
    pub fn reap(&self) -> usize {
        self.small.spent.reap(&self.small.admission) + self.large.spent.reap(&self.large.admission)
    }

    /// How many spent instances are kept now, waiting for [`Engine::reap`].
    pub fn kept(&self) -> usize {
        self.small.spent.len() + self.large.spent.len()
    }

    /// Makes a spare instance for each policy evaluated since the last call, under the
    /// limits it was evaluated with, so that its next evaluation does not instantiate on
    /// its answer's path ([`EngineConfig::spare_instances`]): call it once an answer is
    /// out, after [`Engine::reap`] (the Lambda does after posting each response). Never
    /// waits for room in a pool; never needed for correctness. Returns how many were made.
    ///
    /// A spare is a fresh instance that no export has been called in; it holds nothing of
    /// any sign-in, tenant or rule input, and is used by one evaluation only.
    pub fn replenish(&self) -> usize {
        let _active = self.ticker.enter();
        self.small.spares.replenish(&self.small.admission)
            + self.large.spares.replenish(&self.large.admission)
    }

    /// How many spare instances are ready now ([`Engine::replenish`]).
    pub fn spares(&self) -> usize {
        self.small.spares.len() + self.large.spares.len()
    }

    /// Asks the policy to describe itself (under `budget`).
    pub fn describe(&self, policy: &CompiledPolicy, budget: &Budget) -> Result<Metadata, Failure> {
        let nothing = (None, RuleInput::default());
        self.run(policy, nothing, budget, |instance, store| {
            let describe = policy.exports.describe(instance, store)?;
            describe.call(store, ()).map(|(metadata,)| metadata)
        })
        .result
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The isolation tests rely on the leak probe; this shows that it does see state when
    /// an instance is reused (which the engine never does).
    #[test]
    fn the_leak_probe_sees_state_left_in_a_reused_instance() {
        let engine = Engine::new(EngineConfig::default()).expect("engine");
        let bytes = std::fs::read(portcullis_artifacts::LEAK_PROBE).expect("artifact");
        let policy = engine.load(&bytes).expect("load");
        let sign_in = Arc::new(crate::request::NO_SIGN_IN.clone());
        let run = engine.run(
            &policy,
            (Some(&sign_in), RuleInput::default()),
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
}
