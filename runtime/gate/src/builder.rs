//! [`GateBuilder`]: the one way a gate is assembled — by the Lambda, `portcullis handle`,
//! the benchmarks and the tests — from a rule store and optional parts.

use std::sync::Arc;

use portcullis_engine::sandbox::{Engine, EngineConfig, LoadError};

use crate::activity::Recorder;
use crate::capture::{CaptureConfig, CaptureSink};
use crate::config::HandlerConfig;
use crate::context::{ContextConfig, ContextKeys, ContextVerifier};
use crate::data::DataSource;
use crate::data::counters::CounterStore;
use crate::data::lookups::Lookups;
use crate::handler::Capture;
use crate::handler::Handler;
use crate::registry::{Registry, RegistryConfig};
use crate::store::RuleStore;

/// Assembles a [`Handler`]: the rule store is required; the engine, the registry and
/// handler settings, the data source and the recorder are optional.
#[derive(Debug)]
pub struct GateBuilder {
    store: RuleStore,
    engine: Option<Arc<Engine>>,
    registry: RegistryConfig,
    config: HandlerConfig,
    data: Option<Arc<dyn DataSource>>,
    counters: Option<Arc<dyn CounterStore>>,
    lookups: Option<Arc<Lookups>>,
    recorder: Option<Arc<dyn Recorder>>,
    context: Option<ContextVerifier>,
    capture: Option<Capture>,
}

impl Handler {
    /// Starts assembling a handler over the rules in `store`.
    pub fn builder(store: RuleStore) -> GateBuilder {
        GateBuilder {
            store,
            engine: None,
            registry: RegistryConfig::default(),
            config: HandlerConfig::default(),
            data: None,
            counters: None,
            lookups: None,
            recorder: None,
            context: None,
            capture: None,
        }
    }
}

impl GateBuilder {
    /// Runs rules on `engine` (shared; one per process). Without it, [`GateBuilder::build`]
    /// makes one with the default [`EngineConfig`].
    pub fn engine(mut self, engine: Arc<Engine>) -> Self {
        self.engine = Some(engine);
        self
    }

    /// How the registry refreshes, verifies and caches rules.
    pub fn registry(mut self, config: RegistryConfig) -> Self {
        self.registry = config;
        self
    }

    /// Tenant resolution, fail modes, time limits and the token namespace.
    pub fn config(mut self, config: HandlerConfig) -> Self {
        self.config = config;
        self
    }

    /// Rules' declared data is fetched from `source`.
    pub fn data(mut self, source: Arc<dyn DataSource>) -> Self {
        self.data = Some(source);
        self
    }

    /// Rules' declared counters are kept in `store`.
    pub fn counters(mut self, store: Arc<dyn CounterStore>) -> Self {
        self.counters = Some(store);
        self
    }

    /// Rules' declared HTTP lookups are made by `lookups` (its client, secrets and
    /// allow-listed origins).
    pub fn lookups(mut self, lookups: Lookups) -> Self {
        self.lookups = Some(Arc::new(lookups));
        self
    }

    /// Sign-in activity and audit entries go to `recorder`.
    pub fn recorder(mut self, recorder: Arc<dyn Recorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Context envelopes are verified by `verifier` (its tenants' keys). Without it no
    /// envelope is trusted.
    pub fn context(mut self, verifier: ContextVerifier) -> Self {
        self.context = Some(verifier);
        self
    }

    /// A sample of the tenants' sign-ins in `config` is written to `sink` for replay (each
    /// cut down to what its rules read).
    pub fn capture(mut self, config: CaptureConfig, sink: Arc<dyn CaptureSink>) -> Self {
        self.capture = Some(Capture { config, sink });
        self
    }

    /// The handler. Fails only when a default engine cannot be set up.
    pub fn build(self) -> Result<Handler, LoadError> {
        let engine = match self.engine {
            Some(engine) => engine,
            None => Arc::new(Engine::new(EngineConfig::default())?),
        };
        let registry = Registry::new(self.store, Arc::clone(&engine), self.registry);
        Ok(Handler {
            engine,
            registry,
            config: self.config,
            data: self.data,
            counters: self.counters,
            lookups: self.lookups,
            recorder: self.recorder,
            context: self.context.unwrap_or_else(|| {
                ContextVerifier::new(ContextKeys::default(), ContextConfig::default())
            }),
            capture: self.capture,
        })
    }
}
