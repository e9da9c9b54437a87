//! The wall clock of every evaluation: a ticker thread advancing the engines' epoch once
//! per millisecond while evaluations run (parked while the engine is idle), and the
//! deadline callback that checks the real clock when a deadline tick comes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::host::HostState;

/// Advances the engines' epoch once per millisecond while evaluations run.
pub(super) struct Ticker {
    active: AtomicUsize,
    parked: AtomicBool,
    shutdown: AtomicBool,
    thread: Mutex<Option<Thread>>,
}

/// Marks an evaluation as running for the ticker.
pub(super) struct Active<'a>(&'a Ticker);

impl Ticker {
    /// Starts the ticker thread for `engines`; it ends when they are dropped or
    /// [`Ticker::stop`] is called.
    pub(super) fn start(engines: [wasmtime::EngineWeak; 2]) -> std::io::Result<Arc<Ticker>> {
        let ticker = Arc::new(Ticker {
            active: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let runner = Arc::clone(&ticker);
        let handle = thread::Builder::new()
            .name("portcullis-epoch".into())
            .spawn(move || runner.run(engines))?;
        if let Ok(mut slot) = ticker.thread.lock() {
            *slot = Some(handle.thread().clone());
        }
        Ok(ticker)
    }

    /// Marks an evaluation as running until the returned guard drops.
    pub(super) fn enter(&self) -> Active<'_> {
        self.active.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.wake();
        }
        Active(self)
    }

    /// Ends the ticker thread.
    pub(super) fn stop(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.wake();
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

/// Arms `store`'s wall-clock budget: the deadline in the store's state, in epoch ticks.
///
/// The epoch only says "look at the clock": the ticker may fall behind on a busy machine
/// and catch up in a burst, so the real clock decides, and a rule is never stopped before
/// its budget. The callback captures nothing: no allocation.
pub(super) fn arm_deadline(store: &mut Store<HostState>, timeout: Duration) {
    store.set_epoch_deadline(epoch_ticks(timeout));
    store.epoch_deadline_callback(|ctx| {
        let now = Instant::now();
        let deadline = ctx.data().deadline;
        Ok(if now >= deadline {
            wasmtime::UpdateDeadline::Interrupt
        } else {
            wasmtime::UpdateDeadline::Continue(epoch_ticks(deadline - now))
        })
    });
}

/// Epoch ticks for a timeout: one per started millisecond, at least one.
fn epoch_ticks(timeout: Duration) -> u64 {
    let ms = timeout.as_micros().div_ceil(1000);
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
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
}
