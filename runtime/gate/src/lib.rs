//! The Portcullis gate: answers Cognito. An event comes in, an answer and one decision
//! record go out; around the engine (`portcullis-engine`, which only evaluates) it holds
//! everything with I/O and time: tenants, signed manifests, rule stores, the rule
//! registry with hot swap and last-known-good, data prefetch, activity and audit.
//!
//! One sign-in flows one way through [`handler::Handler::handle`]: [`cognito`] parses the
//! event once into the contract's `SignIn`; [`resolve`] finds the tenant; [`context`]
//! verifies what the app's backend signed; the [`registry`] gives the `_global` and tenant
//! [`registry::RuleSet`]s (read from a [`store`], verified by [`trust`], compiled by the
//! engine); [`data`] prefetches what the rules declared; the engine's chain decides; the
//! answer ([`tokens`] for token events), the [`record`], its [`metrics`] and the
//! [`activity`] entries are built from that decision; a [`report::Report`] renders the
//! record and metrics as log lines when the caller chooses. Assemble it with
//! [`handler::Handler::builder`].
//!
//! Leaves first: [`tenant`], [`backend`], [`config`], [`canary`]; then [`context`], [`data`],
//! [`manifest`], [`cases`], [`trust`], [`store`], [`activity`], [`cognito`], [`tokens`],
//! [`resolve`], [`record`], [`metrics`], [`report`]; then [`registry`], [`publish`];
//! [`handler`] and [`builder`] on top.

pub mod activity;
pub mod backend;
pub mod builder;
pub mod canary;
pub mod capture;
pub mod cases;
pub mod cognito;
pub mod config;
pub mod context;
pub mod data;
pub mod handler;
pub mod manifest;
pub mod metrics;
pub mod publish;
pub mod record;
pub mod registry;
pub mod report;
pub mod resolve;
pub mod store;
pub mod tenant;
pub mod tokens;
pub mod trust;

pub use builder::GateBuilder;
pub use config::{FailMode, HandlerConfig, TenantFrom};
pub use handler::{Answer, Handler, UNAVAILABLE_MESSAGE};
pub use record::{Decided, DecisionRecord};
pub use registry::{Registry, RegistryConfig};
pub use store::RuleStore;
pub use tenant::TenantId;
