//! The Portcullis engine: synchronous evaluation of sign-in policies (WebAssembly
//! components) in a sandbox under per-rule budgets, and the chain that combines their
//! verdicts into one decision. No I/O, no async runtime, no AWS: the gate
//! (`portcullis-gate`) fetches rules and data, and answers Cognito.
//!
//! Data flows one way: a [`SignIn`] (the contract's `sign-in` record) and a list of
//! [`Rule`]s with their already-fetched data go into [`chain::evaluate_rules_with`]; every
//! rule runs in a fresh instance of its [`CompiledPolicy`] under its [`Budget`]
//! ([`sandbox`]), with its own configuration and data beside the sign-in ([`RuleInput`]);
//! each [`Outcome`] is validated ([`verdict`], [`namespace`]) and merged, and the
//! [`ChainOutcome`] goes back to the caller.
//!
//! Leaves first: [`contract`] (generated from the WIT file), [`digest`], [`budget`],
//! [`invalid`], [`language`], [`reads`]; then [`request`], [`verdict`], [`outcome`], [`namespace`]; then
//! [`sandbox`] (with the helper threads that run a chain's rules side by side,
//! [`Engine::start_helpers`]) and [`rule`]; [`chain`] on top.

pub mod budget;
pub mod chain;
pub mod contract;
pub mod digest;
pub mod invalid;
pub mod language;
pub mod namespace;
pub mod outcome;
pub mod reads;
pub mod request;
pub mod rule;
pub mod sandbox;
pub mod verdict;

pub use sandbox::artifact;

pub use artifact::{ArtifactError, ArtifactKey};
pub use budget::Budget;
pub use chain::{Chain, ChainOutcome, DataSet, Decision};
pub use contract::{CONTRACT_VERSION, DataItem, SignIn, Trigger};
pub use digest::Sha256;
pub use language::Language;
pub use outcome::{Evaluation, Failure, InvalidOutput, Outcome};
pub use request::RuleInput;
pub use rule::{Mode, OnError, Origin, Rule, RuleName};
pub use sandbox::{CompiledPolicy, Engine, EngineConfig, LoadError};
pub use verdict::{ClaimChanges, Verdict};
