//! The guest allocator: a bump arena in the module's own data, for one-shot instances.
//!
//! The host creates a fresh instance for every evaluation and throws it away afterwards,
//! so a policy never needs to free memory. This allocator hands out memory from a static
//! arena that is part of the module's initial memory (its `.bss`): the common path never
//! calls `memory.grow`, which costs an `mprotect` and page faults in the host, and touches
//! only the pages a policy really uses. When the arena runs out it bumps through fresh
//! pages from `memory.grow` (the host's memory limit still applies). `dealloc` gives back
//! the most recent allocation, and `realloc` grows the most recent one in place, which is
//! what a growing `Vec` or `String` needs.
//!
//! It is installed as the global allocator on wasm32 with the `arena` feature (on by
//! default). Native builds (tests) use the system allocator.

#[cfg(all(target_arch = "wasm32", feature = "arena"))]
mod imp {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    /// Size of the static arena: enough for a realistic policy's configuration parsing
    /// (serde, CIDR lists) without `memory.grow`. With the 64 KiB stack first, a small
    /// policy's whole memory is four 64 KiB pages, which the host keeps resident.
    const ARENA_SIZE: usize = 128 * 1024;
    const PAGE: usize = 64 * 1024;

    #[repr(C, align(16))]
    struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);

    struct State {
        /// Next free address.
        next: usize,
        /// End of the current region (the arena, then grown pages).
        end: usize,
        /// Start of the most recent allocation, for in-place `realloc`/`dealloc`.
        last: usize,
    }

    struct Bump {
        arena: Arena,
        state: UnsafeCell<State>,
    }

    // SAFETY: wasm32 guests built by Portcullis are single-threaded.
    unsafe impl Sync for Bump {}

    #[global_allocator]
    static ALLOC: Bump = Bump {
        arena: Arena(UnsafeCell::new([0; ARENA_SIZE])),
        state: UnsafeCell::new(State {
            next: 0,
            end: 0,
            last: 0,
        }),
    };

    impl Bump {
        /// # Safety
        /// Single-threaded callers only.
        unsafe fn state(&self) -> &mut State {
            // SAFETY: single-threaded; no reference outlives one allocator call.
            let state = unsafe { &mut *self.state.get() };
            if state.end == 0 {
                let start = self.arena.0.get() as usize;
                state.next = start;
                state.end = start + ARENA_SIZE;
            }
            state
        }
    }

    fn align_up(addr: usize, align: usize) -> Option<usize> {
        addr.checked_add(align - 1).map(|a| a & !(align - 1))
    }

    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: see `state`.
            let state = unsafe { self.state() };
            let Some(start) = align_up(state.next, layout.align()) else {
                return core::ptr::null_mut();
            };
            let Some(end) = start.checked_add(layout.size()) else {
                return core::ptr::null_mut();
            };
            if end <= state.end {
                state.next = end;
                state.last = start;
                return start as *mut u8;
            }
            // Out of room: take fresh pages from the host (at least 1 MiB at a time).
            let need = layout.size() + layout.align();
            let pages = need.div_ceil(PAGE).max(16);
            let prev = core::arch::wasm32::memory_grow(0, pages);
            if prev == usize::MAX {
                return core::ptr::null_mut();
            }
            let base = prev * PAGE;
            let start = (base + layout.align() - 1) & !(layout.align() - 1);
            state.next = start + layout.size();
            state.end = base + pages * PAGE;
            state.last = start;
            start as *mut u8
        }

        unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
            // SAFETY: see `state`.
            let state = unsafe { self.state() };
            if ptr as usize == state.last {
                state.next = state.last;
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: see `state`.
            let state = unsafe { self.state() };
            let start = ptr as usize;
            if start == state.last {
                if let Some(end) = start.checked_add(new_size) {
                    if end <= state.end {
                        state.next = end;
                        return ptr;
                    }
                }
            }
            // SAFETY: the layout is valid (same align, non-zero size as the caller promises).
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: forwarding the GlobalAlloc contract.
            let new = unsafe { self.alloc(new_layout) };
            if !new.is_null() {
                // SAFETY: both regions are valid for the smaller size and do not overlap.
                unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            }
            new
        }
    }
}
