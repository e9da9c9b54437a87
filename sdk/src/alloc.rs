//! The guest allocator: a bump allocator over the module's own initial memory, for one-shot
//! instances.
//!
//! The host creates a fresh instance for every evaluation and throws it away afterwards,
//! so a policy never needs to free memory. This allocator hands out the memory between
//! the end of the module's data (`__heap_base`) and the end of its initial linear memory,
//! which the host keeps resident between instances: the common path never calls
//! `memory.grow` (an `mprotect` and page faults in the host). When that runs out it grows
//! the memory — at least doubling it, so a policy that needs more pays for few growths —
//! and keeps bumping through the new pages (the host's memory limit still applies).
//! `dealloc` gives back the most recent allocation, and `realloc` grows the most recent
//! one in place, which is what a growing `Vec` or `String` needs.
//!
//! The Portcullis build links policies with a 32 KiB stack, so a small policy's stack, data
//! and heap share one 64 KiB page, which the host resets with one `memset`: the heap is
//! the rest of the page after the data (the example policies use about a kilobyte per
//! evaluation, the request fields they read included).
//!
//! It is installed as the global allocator on wasm32 with the `arena` feature (on by
//! default). Native builds (tests) use the system allocator.

#[cfg(all(target_arch = "wasm32", feature = "arena"))]
mod imp {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    const PAGE: usize = 64 * 1024;

    unsafe extern "C" {
        /// The end of the module's data and stack, placed by the linker.
        static __heap_base: u8;
    }

    struct State {
        /// Next free address (0 until first use).
        next: usize,
        /// End of linear memory as far as the allocator knows.
        end: usize,
        /// Start of the most recent allocation, for in-place `realloc`/`dealloc`.
        last: usize,
    }

    struct Bump(UnsafeCell<State>);

    // SAFETY: wasm32 guests built by Portcullis are single-threaded.
    unsafe impl Sync for Bump {}

    #[global_allocator]
    static ALLOC: Bump = Bump(UnsafeCell::new(State {
        next: 0,
        end: 0,
        last: 0,
    }));

    impl Bump {
        /// # Safety
        /// Single-threaded callers only.
        unsafe fn state(&self) -> &mut State {
            // SAFETY: single-threaded; no reference outlives one allocator call.
            let state = unsafe { &mut *self.0.get() };
            if state.next == 0 {
                state.next = core::ptr::addr_of!(__heap_base) as usize;
                state.end = core::arch::wasm32::memory_size(0) * PAGE;
            }
            state
        }
    }

    impl State {
        /// Grows linear memory so that `end` bytes fit, at least doubling it.
        fn grow_to(&mut self, end: usize) -> bool {
            let current = core::arch::wasm32::memory_size(0);
            let pages = end.div_ceil(PAGE).saturating_sub(current).max(current);
            if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                return false;
            }
            self.end = (current + pages) * PAGE;
            true
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
            if end > state.end && !state.grow_to(end) {
                return core::ptr::null_mut();
            }
            state.next = end;
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
                    if end <= state.end || state.grow_to(end) {
                        state.next = end;
                        return ptr;
                    }
                    return core::ptr::null_mut();
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
