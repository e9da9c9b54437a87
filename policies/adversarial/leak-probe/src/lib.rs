//! Attacks isolation between evaluations: looks for anything a previous evaluation left
//! behind — a global counter, marks written across a 192 KiB static buffer (which puts
//! the module in the large-memory pool unless the engine is told otherwise), marks in the
//! heap, and pages added with `memory.grow` — then leaves all of those behind for the next
//! one. A fresh instance must see none of them; if it does, the policy fails with a
//! message saying what leaked.
#![expect(missing_docs, reason = "a hostile test guest, not an API")]
use portcullis_sdk::{Error, Policy, Request, Trigger, Verdict};

pub struct LeakProbe;

const BUFFER: usize = 192 * 1024;
const MARK: u8 = 0xA5;

/// A global: always 0 when an instance starts.
static mut RUNS: u32 = 0;
/// A large zero-initialised buffer (`.bss`): always all zeros when an instance starts.
static mut BUFFER_MARKS: [u8; BUFFER] = [0; BUFFER];

/// Every 4 KiB page of the buffer, for checking and marking.
fn pages() -> impl Iterator<Item = usize> {
    (0..BUFFER).step_by(4096).chain([BUFFER - 1])
}

impl Policy for LeakProbe {
    const DESCRIPTION: &'static str = "looks for state left behind by a previous evaluation";
    const TRIGGERS: &'static [Trigger] = &[Trigger::PreAuthentication];

    fn evaluate(_request: &Request) -> Result<Verdict, Error> {
        // SAFETY: wasm32 guests are single-threaded; nothing else touches these statics.
        let (runs, buffer) = unsafe {
            (
                &mut *core::ptr::addr_of_mut!(RUNS),
                &mut *core::ptr::addr_of_mut!(BUFFER_MARKS),
            )
        };
        if *runs != 0 {
            return Err(Error::msg(format!("global counter leaked: {runs}")));
        }
        if let Some(at) = pages().find(|&i| buffer.get(i).copied().unwrap_or(0) != 0) {
            return Err(Error::msg(format!("static buffer leaked at offset {at}")));
        }
        // The heap: a fresh allocator hands out the same addresses every time, so this
        // block is where the previous evaluation left its marks. Read with volatile loads,
        // as the memory it is: the bytes are whatever the instance's memory holds.
        let layout = std::alloc::Layout::from_size_align(4096, 16)?;
        // SAFETY: a non-zero-sized layout.
        let heap = unsafe { std::alloc::alloc(layout) };
        if heap.is_null() {
            return Err(Error::msg("out of memory"));
        }
        // SAFETY: `heap` points to 4096 bytes this evaluation owns.
        let dirty =
            (0..layout.size()).any(|i| unsafe { core::ptr::read_volatile(heap.add(i)) } != 0);
        if dirty {
            return Err(Error::msg("heap leaked"));
        }
        #[cfg(target_arch = "wasm32")]
        let pages_at_start = core::arch::wasm32::memory_size(0);

        *runs += 1;
        for i in pages() {
            if let Some(byte) = buffer.get_mut(i) {
                *byte = MARK;
            }
        }
        // SAFETY: as above; the block is never freed.
        unsafe { core::ptr::write_bytes(heap, MARK, layout.size()) };
        #[cfg(target_arch = "wasm32")]
        {
            // Grow memory and mark the new page; the next instance must start at the
            // original size.
            let grown = core::arch::wasm32::memory_grow(0, 1);
            if grown == usize::MAX {
                return Err(Error::msg("memory.grow refused"));
            }
            // SAFETY: the page at `grown` was just added to this instance's memory.
            unsafe { core::ptr::write_volatile((grown * 65536) as *mut u8, MARK) };
            return Ok(Verdict::allow().id_claim(
                "probe_pages_at_start",
                portcullis_sdk::json!(pages_at_start),
            ));
        }
        #[cfg_attr(
            target_arch = "wasm32",
            expect(unreachable_code, reason = "the wasm32 path has returned above")
        )]
        Ok(Verdict::allow())
    }
}

portcullis_sdk::export!(LeakProbe);
