//! Helper threads that run one chain's rules beside the thread evaluating the chain
//! ([`Engine::start_helpers`]), and the [`Batch`] of evaluations they share.
//!
//! The chain's own thread takes the rules from the front and combines their evaluations in
//! order, exactly as it does alone; a helper takes the last rule no thread has taken yet. An
//! evaluation depends on nothing but its rule, its input and the sign-in (a fresh instance,
//! no I/O: data is fetched before the chain), so which thread ran a rule, and when, changes
//! its measurements and never its outcome: the combined answer is the ordered one. When a
//! deny stops the chain, no thread takes another rule, and a helper's evaluation of a rule
//! past the deny is dropped unseen, as if it had never run (its logs and counter changes
//! with it); the chain's thread never runs a rule past the one it needs next, so that work
//! cannot delay the answer.
//!
//! A sleeping thread can take longer to wake than a whole chain (BENCHMARKS.md run 19), so
//! an idle helper spins a while after each chain before it sleeps, and the gate wakes it as
//! an invocation starts ([`Engine::prime_helpers`]).

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::{CompiledPolicy, Engine};
use crate::budget::Budget;
use crate::outcome::{Evaluation, Failure, Outcome};
use crate::reads::Reads;
use crate::request::{RuleInput, SignIn};

/// How long the chain's thread spins for a helper's result before it sleeps.
const SPIN: Duration = Duration::from_micros(200);
/// How long an idle helper spins for the next chain before it sleeps: a sleeping thread's
/// wake-up can take longer than a whole chain (BENCHMARKS.md run 19).
const IDLE_SPIN: Duration = Duration::from_millis(2);

/// One rule of a chain, ready to run (or already failed).
pub(crate) enum Task {
    /// Run the policy with this input under this budget (its timeout cut to the deadline).
    Run {
        /// The policy.
        policy: Arc<CompiledPolicy>,
        /// Its configuration and data.
        input: RuleInput,
        /// The rule's budget.
        budget: Budget,
    },
    /// The rule fails without running (its data could not be fetched).
    Skip(Failure),
}

impl Task {
    /// Runs the task for `sign_in`; a rule reached at or after `deadline` fails with a
    /// timeout without running, and none gets more time than is left.
    fn run(&self, engine: &Engine, sign_in: &Arc<SignIn>, deadline: Instant) -> Evaluation {
        match self {
            Task::Skip(failure) => skipped(failure.clone()),
            Task::Run {
                policy,
                input,
                budget,
            } => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return skipped(Failure::Timeout(Duration::ZERO));
                }
                let budget = Budget {
                    timeout: budget.timeout.min(remaining),
                    ..*budget
                };
                engine.evaluate(policy, sign_in, input, &budget)
            }
        }
    }
}

/// An evaluation that never ran: `failure`, nothing measured.
fn skipped(failure: Failure) -> Evaluation {
    Evaluation {
        outcome: Outcome::Failed(failure),
        fuel_used: 0,
        duration: Duration::ZERO,
        peak_memory: 0,
        logs: Vec::new(),
        logs_dropped: 0,
        reads: Reads::default(),
        counts: Vec::new(),
    }
}

/// One chain's tasks, shared between the chain's thread and the helpers.
///
/// The chain's thread takes untaken tasks from the front, helpers from the back, so the
/// chain's thread only ever runs the task it needs next: a helper's work past a deny can
/// never delay the answer, only be dropped.
pub(crate) struct Batch {
    sign_in: Arc<SignIn>,
    deadline: Instant,
    tasks: Vec<Task>,
    /// Tasks no thread has taken: `start..end`.
    untaken: Mutex<Range<usize>>,
    /// The chain's thread has what it needs: take nothing more.
    finished: AtomicBool,
    /// Evaluations helpers finished that the chain's thread has not taken yet.
    results: Mutex<Results>,
    /// Signalled when a result is put while the chain's thread sleeps.
    ready: Condvar,
    /// Counts results put, for the chain's thread to spin on before it sleeps.
    puts: AtomicUsize,
}

struct Results {
    /// By task; empty until the first result is put (a chain no helper takes part in
    /// never needs them: this is kilobytes, and allocating it was ~2 % of a warm sign-in).
    slots: Vec<Option<Evaluation>>,
    /// The chain's thread sleeps on [`Batch::ready`].
    sleeping: bool,
}

/// Which end of the untaken tasks a thread takes from.
#[derive(Clone, Copy)]
enum End {
    /// The chain's thread: the next task in order.
    Front,
    /// A helper: the last.
    Back,
}

impl Batch {
    /// The tasks of one chain, in order.
    pub(crate) fn new(sign_in: Arc<SignIn>, deadline: Instant, tasks: Vec<Task>) -> Self {
        Batch {
            sign_in,
            deadline,
            untaken: Mutex::new(0..tasks.len()),
            results: Mutex::new(Results {
                slots: Vec::new(),
                sleeping: false,
            }),
            tasks,
            finished: AtomicBool::new(false),
            ready: Condvar::new(),
            puts: AtomicUsize::new(0),
        }
    }

    /// The evaluation of task `i`, for the chain's thread, which takes each task once, in
    /// order: run here if no helper took it, else the helper's result (waited for).
    pub(crate) fn take(&self, i: usize, engine: &Engine) -> Evaluation {
        loop {
            if let Some(done) = self.results().slots.get_mut(i).and_then(Option::take) {
                return done;
            }
            match self.claim(End::Front) {
                // Every task before `i` is taken, so the front is `i` itself.
                Some(k) if k == i => return self.run(k, engine),
                Some(k) => {
                    let evaluation = self.run(k, engine);
                    self.put(k, evaluation);
                }
                // Every task from `i` on is taken: a helper is running `i`.
                None => self.wait_for(i),
            }
        }
    }

    /// Waits until task `i`'s evaluation is put: a helper runs it under its budget, itself
    /// cut to the chain's deadline. Spins a while first: a rule takes microseconds, a
    /// sleeping thread's wake-up tens of them or more.
    fn wait_for(&self, i: usize) {
        let seen = self.puts.load(Ordering::SeqCst);
        let until = Instant::now() + SPIN;
        while self.puts.load(Ordering::SeqCst) == seen && Instant::now() < until {
            std::hint::spin_loop();
        }
        let mut results = self.results();
        results.sleeping = true;
        let mut results = self
            .ready
            .wait_while(results, |r| r.slots.get(i).is_none_or(Option::is_none))
            .unwrap_or_else(PoisonError::into_inner);
        results.sleeping = false;
    }

    /// Stops the helpers taking more tasks: the chain is decided or complete.
    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    /// A helper's share: untaken tasks from the back until none is left or the chain is
    /// decided.
    fn help(&self, engine: &Engine) {
        while let Some(k) = self.claim(End::Back) {
            // A helper that panicked would leave the chain's thread waiting for its task.
            let evaluation = catch_unwind(AssertUnwindSafe(|| self.run(k, engine)))
                .unwrap_or_else(|_| skipped(Failure::Host("the evaluation panicked".into())));
            self.put(k, evaluation);
        }
    }

    fn claim(&self, end: End) -> Option<usize> {
        if self.finished.load(Ordering::SeqCst) {
            return None;
        }
        // Plain indices updated whole: a poisoned lock's data is sound.
        let mut untaken = self.untaken.lock().unwrap_or_else(PoisonError::into_inner);
        match end {
            End::Front => untaken.next(),
            End::Back => untaken.next_back(),
        }
    }

    fn run(&self, k: usize, engine: &Engine) -> Evaluation {
        match self.tasks.get(k) {
            Some(task) => task.run(engine, &self.sign_in, self.deadline),
            None => skipped(Failure::Host(format!("no task {k} in the chain"))),
        }
    }

    fn put(&self, k: usize, evaluation: Evaluation) {
        let mut results = self.results();
        if results.slots.is_empty() {
            results.slots.resize_with(self.tasks.len(), || None);
        }
        if let Some(slot) = results.slots.get_mut(k) {
            *slot = Some(evaluation);
        }
        let sleeping = results.sleeping;
        drop(results);
        self.puts.fetch_add(1, Ordering::SeqCst);
        if sleeping {
            self.ready.notify_all();
        }
    }

    fn results(&self) -> MutexGuard<'_, Results> {
        // Results are put and taken whole: a poisoned lock's data is sound.
        self.results.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The helper threads of one engine.
pub(crate) struct Helpers {
    shared: Arc<Shared>,
    /// How many threads were started.
    threads: usize,
}

/// What the helpers wait on: the latest batch offered.
struct Shared {
    /// [`Offer::generation`], for a helper to spin on without the lock.
    generation: AtomicU64,
    offer: Mutex<Offer>,
    wake: Condvar,
}

struct Offer {
    /// Counts offers, so a helper takes each batch once.
    generation: u64,
    /// Weak: a batch the chain's thread is done with is not kept alive for a helper.
    batch: Weak<Batch>,
    /// Helpers asleep on the condition variable: only they need waking.
    sleeping: usize,
    shutdown: bool,
}

impl Helpers {
    /// Offers `batch` to the helpers (a busy one takes it when it is done).
    pub(crate) fn offer(&self, batch: &Arc<Batch>) {
        self.publish(Arc::downgrade(batch));
    }

    /// Wakes sleeping helpers to wait hot for a batch ([`Engine::prime_helpers`]).
    fn prime(&self) {
        self.publish(Weak::new());
    }

    fn publish(&self, batch: Weak<Batch>) {
        let mut offer = self.shared.lock();
        offer.generation = offer.generation.wrapping_add(1);
        offer.batch = batch;
        self.shared
            .generation
            .store(offer.generation, Ordering::SeqCst);
        // A helper counts itself asleep under this lock, and sleeps only if no offer came
        // first: one that is not counted yet will see this one.
        let sleeping = offer.sleeping > 0;
        drop(offer);
        if sleeping {
            self.shared.wake.notify_all();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Offer> {
        // The offer is replaced whole: a poisoned lock's data is sound.
        self.offer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
    }
}

/// A helper thread: waits for a batch — hot for [`IDLE_SPIN`] after the last offer, then
/// asleep — helps with it, and ends when the engine is dropped.
fn helper(shared: &Shared, engine: &Weak<Engine>) {
    let mut seen = 0u64;
    loop {
        let until = Instant::now() + IDLE_SPIN;
        while shared.generation.load(Ordering::SeqCst) == seen && Instant::now() < until {
            std::hint::spin_loop();
        }
        let batch = {
            let mut offer = shared.lock();
            offer.sleeping += 1;
            let mut offer = shared
                .wake
                .wait_while(offer, |o| o.generation == seen && !o.shutdown)
                .unwrap_or_else(PoisonError::into_inner);
            offer.sleeping -= 1;
            if offer.shutdown {
                return;
            }
            seen = offer.generation;
            offer.batch.upgrade()
        };
        let Some(batch) = batch else { continue };
        // Held only while helping: an idle helper never keeps the engine alive.
        let Some(engine) = engine.upgrade() else {
            return;
        };
        batch.help(&engine);
    }
}

impl Engine {
    /// Starts `threads` helper threads that run a chain's rules beside the thread
    /// evaluating it ([`crate::chain`]), for a host with that many spare cores; once per
    /// engine (later calls start none and return `Ok`). The answer is the same as without
    /// helpers; a chain of several rules is answered sooner when a helper is awake. A
    /// helper waits hot for 2 ms after each chain (or [`Engine::prime_helpers`]), then
    /// sleeps; it ends when the engine is dropped.
    pub fn start_helpers(self: &Arc<Self>, threads: usize) -> std::io::Result<()> {
        if threads == 0 || self.helpers.get().is_some() {
            return Ok(());
        }
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            offer: Mutex::new(Offer {
                generation: 0,
                batch: Weak::new(),
                sleeping: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
        });
        let helpers = Helpers {
            shared: Arc::clone(&shared),
            threads,
        };
        for n in 0..threads {
            let shared = Arc::clone(&shared);
            let engine = Arc::downgrade(self);
            std::thread::Builder::new()
                .name(format!("portcullis-helper-{n}"))
                .spawn(move || helper(&shared, &engine))?;
        }
        // Lost only to a concurrent call that set its own; this set's threads then end.
        let _ = self.helpers.set(helpers);
        Ok(())
    }

    /// Wakes sleeping helpers to wait hot for a chain about to run, so their wake-up —
    /// which can take longer than a chain on a busy host — overlaps the work before it
    /// (the gate calls this before prefetching a sign-in's data). No-op without helpers.
    pub fn prime_helpers(&self) {
        if let Some(helpers) = self.helpers.get() {
            helpers.prime();
        }
    }

    /// The helper threads started, if any.
    pub(crate) fn helpers(&self) -> Option<&Helpers> {
        self.helpers.get()
    }

    /// How many helper threads run chains' rules beside the chain's thread.
    pub fn helper_threads(&self) -> usize {
        self.helpers.get().map_or(0, |h| h.threads)
    }
}
