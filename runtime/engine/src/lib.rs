//! The Portcullis engine: loads sign-in policies (WebAssembly components), runs them in a
//! sandbox under per-rule budgets, and combines their verdicts into one decision.
//!
//! Data flows one way: a Cognito event becomes a [`Request`] ([`cognito`]), a [`Chain`] of
//! [`Rule`]s evaluates it ([`chain`]), every rule runs in a fresh instance of its compiled
//! [`CompiledPolicy`] under its [`Budget`] ([`sandbox`]), each [`Outcome`] is validated
//! ([`verdict`]) and the chain's [`ChainOutcome`] goes back to the caller, which answers
//! Cognito.
//!
//! The engine has no AWS and no Lambda code: the Lambda and the `portcullis` command line
//! use the same code path, so what an author sees locally is what production decides.

pub mod activity;
pub mod artifact;
pub mod budget;
pub mod chain;
pub mod cognito;
pub mod contract;
pub mod data;
pub mod digest;
pub mod handler;
pub mod manifest;
pub mod namespace;
pub mod outcome;
pub mod registry;
pub mod request;
pub mod sandbox;
pub mod store;
pub mod trust;
pub mod verdict;

pub use artifact::{ArtifactError, ArtifactKey};
pub use budget::Budget;
pub use chain::{Chain, ChainOutcome, Decision, Mode, OnError, Rule, RuleName, RuleReport};
pub use contract::{DataItem, Trigger};
pub use digest::Sha256;
pub use outcome::{Evaluation, Failure, InvalidOutput, Outcome};
pub use request::Request;
pub use sandbox::{CompiledPolicy, Engine, EngineConfig, LoadError};
pub use verdict::{ClaimChanges, Verdict};
