//! Where a precompiled policy's native code lives: copied into anonymous memory, or — with
//! [`super::EngineConfig::code_dir`] — written once to a private directory and mapped from
//! that file, so its pages are file-backed: only the pages a rule touches become resident,
//! and the kernel may drop clean ones under memory pressure instead of keeping every byte
//! of every loaded rule.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::Component;

/// A private directory for mapped code: created (or found) owned by this process's user,
/// mode `0700`, so no other user can open what is written there.
#[derive(Debug)]
pub(super) struct CodeDir {
    path: PathBuf,
    next: AtomicU64,
}

impl CodeDir {
    /// The directory at `path`, created `0700` if missing. `None` when it cannot be
    /// created, or exists but is not a directory owned by this user and closed to others:
    /// code is then copied into memory, as without a directory.
    pub(super) fn open(path: &Path) -> Option<Self> {
        // An existing directory is accepted only as checked below.
        let _ = DirBuilder::new().recursive(true).mode(0o700).create(path);
        let meta = std::fs::symlink_metadata(path).ok()?;
        // SAFETY: `geteuid` has no preconditions and cannot fail.
        let me = unsafe { libc_geteuid() };
        let private = meta.permissions().mode() & 0o077 == 0;
        (meta.is_dir() && meta.uid() == me && private).then(|| CodeDir {
            path: path.to_owned(),
            next: AtomicU64::new(0),
        })
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Deserializes verified native code into `engine`: mapped from a file in `dir` when there
/// is one and writing to it works, else copied.
///
/// # Safety
/// `native` must be code wasmtime compiled for `engine`'s settings (see
/// `Engine::load_precompiled`, whose artifact tag establishes it).
pub(super) unsafe fn deserialize(
    engine: &wasmtime::Engine,
    native: &[u8],
    dir: Option<&CodeDir>,
) -> wasmtime::Result<Component> {
    if let Some(dir) = dir
        && let Some(component) = unsafe { mapped(engine, native, dir) }
    {
        return Ok(component);
    }
    // SAFETY: the caller's contract.
    unsafe { Component::deserialize(engine, native) }
}

/// `native` written to a new file in `dir`, mapped, and the file unlinked: the mapping
/// keeps the pages, and no path to them is left for anything to open and change. `None`
/// when any step fails (a full or read-only disk): the caller copies instead.
unsafe fn mapped(engine: &wasmtime::Engine, native: &[u8], dir: &CodeDir) -> Option<Component> {
    let n = dir.next.fetch_add(1, Ordering::Relaxed);
    let path = dir.path.join(format!("{}-{n}.cwasm", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(native));
    let component = match written {
        // SAFETY: the file holds exactly `native` (the caller's contract), in a directory
        // only this user can open (`CodeDir::open`), created just now with `create_new`, so
        // nothing else had it open; it is unlinked below, after which nothing can open it.
        Ok(()) => unsafe { Component::deserialize_file(engine, &path) }.ok(),
        Err(_) => None,
    };
    let _ = std::fs::remove_file(&path);
    component
}
