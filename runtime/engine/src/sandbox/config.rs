//! The engine's settings: how large a component may be, how much memory a rule may ask
//! for, how many instances run, are kept and are made ahead, where the pools draw the line
//! between small and large memories, and where precompiled code is mapped from.

#[cfg(doc)]
use super::Engine;
#[cfg(doc)]
use crate::budget::Budget;

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
    /// Spent instances the small pool keeps after their evaluations, until
    /// [`Engine::reap`], instead of dropping each as its evaluation ends: dropping one (the
    /// instance back to the pool, its memory reset) is about a third of an evaluation, and
    /// a caller that reaps once its answer is out takes it off the answer's path. The pool
    /// holds this many places on top of [`EngineConfig::max_concurrent`]; past it, and for
    /// an instance whose memories grew past [`EngineConfig::small_memory_bytes`] (what a
    /// small place keeps resident after a reset anyway), the instance is dropped as
    /// before. `0` keeps none. A caller that never reaps loses nothing but the kept
    /// places' memory (a full pool reaps before it waits).
    pub kept_instances: u32,
    /// As [`EngineConfig::kept_instances`], for the large pool: spent instances whose
    /// memories stayed within [`EngineConfig::large_keep_resident_bytes`] — what a place
    /// keeps resident after a reset anyway — are kept until [`Engine::reap`]; larger ones
    /// (an interpreter's, a rule that grew its memory) are dropped as their evaluations
    /// end, so no large memory is held past its evaluation. `0` keeps none.
    pub kept_large_instances: u32,
    /// Spare instances the small pool may hold: instances made by [`Engine::replenish`]
    /// once an answer is out, one for each policy evaluated since the last replenish, so
    /// the next evaluation of that policy takes an instance that exists already instead of
    /// instantiating on its answer's path (instantiation was about 40 % of a warm rule's
    /// time: BENCHMARKS.md run 22). A spare has never been called and holds nothing of
    /// any sign-in; it is used once. The pool holds this many places on top of the running
    /// and kept ones; past it the oldest spares are dropped. Only policies whose memories start within
    /// [`EngineConfig::small_memory_bytes`] get spares here. `0` makes none; an engine
    /// never replenished makes none.
    pub spare_instances: u32,
    /// As [`EngineConfig::spare_instances`], for the large pool: only policies whose
    /// memories start within [`EngineConfig::large_keep_resident_bytes`] get spares (an
    /// interpreter's do not: its memory would be held between sign-ins).
    pub spare_large_instances: u32,
    /// A directory for precompiled code, private to this user (created `0700`): each
    /// verified artifact's native code is written there and mapped from the file, so only
    /// the code pages a rule runs are resident (and clean ones can be dropped under memory
    /// pressure). `None`, or a directory that cannot be used: the code is copied into
    /// anonymous memory, all of it resident.
    pub code_dir: Option<std::path::PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_module_bytes: 32 << 20,
            max_memory_bytes: 512 << 20,
            max_concurrent: 32,
            small_memory_bytes: 128 << 10,
            large_keep_resident_bytes: 1 << 20,
            kept_instances: 16,
            kept_large_instances: 4,
            spare_instances: 32,
            spare_large_instances: 4,
            code_dir: None,
        }
    }
}
