//! The contract benchmark's harness: one rule run two ways on the engine's own wasmtime
//! settings — a contract 0.2 component, which reads the sign-in through the host's `request`
//! methods, and a component of the draft one-core-instance world (`policies/draft`), which
//! is given the sign-in as `evaluate`'s parameter. Each run is a fresh store and instance,
//! as the engine runs a rule, without the engine's admission, checks and report around it
//! (the benchmark times the engine beside it, so that difference is measured too).

use std::sync::Arc;

use portcullis_engine::contract::portcullis::policy::{host, types};
use portcullis_engine::contract::{
    CounterChange, DataItem, Decision, LentRequest, Level, RawVerdict, SignIn, TokenSource,
    Trigger, TrustedContext,
};
use portcullis_engine::request::NO_SIGN_IN;
use portcullis_engine::{Budget, Engine, EngineConfig};
use wasmtime::Store;
use wasmtime::component::{
    Component, ComponentExportIndex, Func, HasSelf, InstancePre, Linker, Resource, TypedFunc,
};

/// Contract 0.2's `evaluate`: the sign-in is lent as a `request` handle.
type LentFn = TypedFunc<(Resource<LentRequest>,), (Result<RawVerdict, String>,)>;
/// The draft world's `evaluate`: the sign-in, configuration and data are lowered.
type LoweredFn<'a> =
    TypedFunc<(&'a SignIn, &'a str, &'a [DataItem]), (Result<RawVerdict, String>,)>;

/// A store's state: the sign-in a 0.2 component reads and the rule's configuration.
pub struct Lent {
    sign_in: Arc<SignIn>,
    config: String,
}

/// A component compiled for the harness, with its `evaluate` export found and type-checked.
pub struct Loaded {
    pre: InstancePre<Lent>,
    evaluate: ComponentExportIndex,
}

/// Both ways of running a rule, on a wasmtime engine with the engine's settings.
pub struct Harness {
    /// Owns the wasmtime engine (and its epoch ticker); used for nothing else, so nothing
    /// here competes with another engine's admission.
    engine: Engine,
    linker: Linker<Lent>,
    fuel: u64,
}

/// What can go wrong setting up or running the harness.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

impl Harness {
    /// A harness with the default engine settings and budget.
    pub fn new() -> Result<Self, Error> {
        let engine = Engine::new(EngineConfig::default())?;
        let mut linker = Linker::new(engine.wasmtime_engine());
        portcullis_engine::contract::Policy::add_to_linker::<Lent, HasSelf<Lent>>(
            &mut linker,
            |state| state,
        )?;
        Ok(Harness {
            engine,
            linker,
            fuel: Budget::default().fuel,
        })
    }

    /// Compiles a contract 0.2 component.
    pub fn load_lent(&self, bytes: &[u8]) -> Result<Loaded, Error> {
        self.load(bytes, |instance, store, index| {
            instance.get_typed_func::<(Resource<LentRequest>,), (Result<RawVerdict, String>,)>(
                store, index,
            )?;
            Ok(())
        })
    }

    /// Compiles a component of the draft world.
    pub fn load_lowered(&self, bytes: &[u8]) -> Result<Loaded, Error> {
        self.load(bytes, |instance, store, index| {
            instance
                .get_typed_func::<(&SignIn, &str, &[DataItem]), (Result<RawVerdict, String>,)>(
                    store, index,
                )?;
            Ok(())
        })
    }

    /// Compiles `bytes` and type-checks `evaluate` in a first instance with `check` (the
    /// types are the same in every instance of one `InstancePre`).
    fn load(
        &self,
        bytes: &[u8],
        check: impl FnOnce(
            &wasmtime::component::Instance,
            &mut Store<Lent>,
            ComponentExportIndex,
        ) -> Result<(), Error>,
    ) -> Result<Loaded, Error> {
        let component = Component::new(self.engine.wasmtime_engine(), bytes)?;
        let evaluate = component
            .get_export_index(None, "evaluate")
            .ok_or("no `evaluate` export")?;
        let pre = self.linker.instantiate_pre(&component)?;
        let mut store = self.store(&Arc::new(NO_SIGN_IN.clone()), "")?;
        let instance = pre.instantiate(&mut store)?;
        check(&instance, &mut store, evaluate)?;
        Ok(Loaded { pre, evaluate })
    }

    /// A fresh store under the default budget's fuel, with no wall-clock deadline.
    fn store(&self, sign_in: &Arc<SignIn>, config: &str) -> Result<Store<Lent>, Error> {
        let mut store = Store::new(
            self.engine.wasmtime_engine(),
            Lent {
                sign_in: Arc::clone(sign_in),
                config: config.to_owned(),
            },
        );
        store.set_epoch_deadline(u64::MAX / 2);
        store.set_fuel(self.fuel)?;
        Ok(store)
    }

    /// A fresh store and instance of `loaded`, and its `evaluate`.
    fn instance(
        &self,
        loaded: &Loaded,
        sign_in: &Arc<SignIn>,
        config: &str,
    ) -> Result<(Store<Lent>, Func), Error> {
        let mut store = self.store(sign_in, config)?;
        let instance = loaded.pre.instantiate(&mut store)?;
        let func = instance
            .get_func(&mut store, loaded.evaluate)
            .ok_or("`evaluate` is not a function")?;
        Ok((store, func))
    }

    /// Runs a contract 0.2 component on `sign_in` (lent) in a fresh instance: allowed?
    pub fn lent(
        &self,
        loaded: &Loaded,
        sign_in: &Arc<SignIn>,
        config: &str,
    ) -> Result<bool, Error> {
        let (mut store, func) = self.instance(loaded, sign_in, config)?;
        // SAFETY: `load_lent` type-checked this export against exactly these types in an
        // instance of the same `InstancePre`.
        let evaluate: LentFn = unsafe { TypedFunc::new_unchecked(func) };
        let (verdict,) = evaluate.call(&mut store, (Resource::new_borrow(0),))?;
        allowed(verdict)
    }

    /// Runs a draft-world component on `sign_in` (lowered) in a fresh instance: allowed?
    pub fn lowered(
        &self,
        loaded: &Loaded,
        sign_in: &Arc<SignIn>,
        config: &str,
    ) -> Result<bool, Error> {
        let (mut store, func) = self.instance(loaded, sign_in, "")?;
        // SAFETY: `load_lowered` type-checked this export against exactly these types in an
        // instance of the same `InstancePre`.
        let evaluate: LoweredFn<'_> = unsafe { TypedFunc::new_unchecked(func) };
        let (verdict,) = evaluate.call(&mut store, (sign_in.as_ref(), config, &[]))?;
        allowed(verdict)
    }
}

fn allowed(verdict: Result<RawVerdict, String>) -> Result<bool, Error> {
    Ok(matches!(verdict?.decision, Decision::Allow))
}

/// How many core instances a component creates (its `instantiate`s of core modules): one
/// for a component that imports nothing needing its memory, three when `wit-component`
/// adds its shim and fixup.
pub fn core_instances(bytes: &[u8]) -> Result<usize, Error> {
    use wasmparser::{Instance, Parser, Payload};
    let mut count = 0;
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::InstanceSection(instances) = payload? {
            for instance in instances {
                count += usize::from(matches!(instance?, Instance::Instantiate { .. }));
            }
        }
    }
    Ok(count)
}

/// `sign_in` cut to what the side-by-side rule declares it reads (the `custom:suspended`
/// and `email` attributes, the `ip` client-metadata key) and the fields a host would always
/// pass: what the draft world's host would lower if rules declared their reads.
pub fn declared(sign_in: &SignIn) -> SignIn {
    let keep = |pairs: &[(String, String)], names: &[&str]| {
        pairs
            .iter()
            .filter(|(name, _)| names.contains(&name.as_str()))
            .cloned()
            .collect()
    };
    SignIn {
        user_attributes: keep(&sign_in.user_attributes, &["custom:suspended", "email"]),
        client_metadata: keep(&sign_in.client_metadata, &["ip"]),
        ..NO_SIGN_IN.clone()
    }
}

/// The value of `name` among name-value pairs.
fn find(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find_map(|(n, v)| (n == name).then(|| v.clone()))
}

impl types::Host for Lent {}

impl host::Host for Lent {
    fn log(&mut self, _: Level, _: String) {}

    fn count(&mut self, _: String, _: CounterChange) {}
}

/// The request's methods over the lent sign-in, as the engine answers them (without noting
/// what was read).
impl types::HostRequest for Lent {
    fn trigger(&mut self, _: Resource<LentRequest>) -> Trigger {
        self.sign_in.trigger
    }
    fn trigger_source(&mut self, _: Resource<LentRequest>) -> String {
        self.sign_in.trigger_source.clone()
    }
    fn event_version(&mut self, _: Resource<LentRequest>) -> String {
        self.sign_in.event_version.clone()
    }
    fn tenant(&mut self, _: Resource<LentRequest>) -> String {
        self.sign_in.tenant.clone()
    }
    fn user_pool_id(&mut self, _: Resource<LentRequest>) -> String {
        self.sign_in.user_pool_id.clone()
    }
    fn client_id(&mut self, _: Resource<LentRequest>) -> Option<String> {
        self.sign_in.client_id.clone()
    }
    fn user_name(&mut self, _: Resource<LentRequest>) -> Option<String> {
        self.sign_in.user_name.clone()
    }
    fn user_attribute(&mut self, _: Resource<LentRequest>, name: String) -> Option<String> {
        find(&self.sign_in.user_attributes, &name)
    }
    fn user_attributes(&mut self, _: Resource<LentRequest>) -> Vec<(String, String)> {
        self.sign_in.user_attributes.clone()
    }
    fn client_metadata_value(&mut self, _: Resource<LentRequest>, key: String) -> Option<String> {
        find(&self.sign_in.client_metadata, &key)
    }
    fn client_metadata(&mut self, _: Resource<LentRequest>) -> Vec<(String, String)> {
        self.sign_in.client_metadata.clone()
    }
    fn user_not_found(&mut self, _: Resource<LentRequest>) -> bool {
        self.sign_in.user_not_found
    }
    fn new_device_used(&mut self, _: Resource<LentRequest>) -> Option<bool> {
        self.sign_in.new_device_used
    }
    fn groups(&mut self, _: Resource<LentRequest>) -> Vec<String> {
        self.sign_in.groups.clone()
    }
    fn scopes(&mut self, _: Resource<LentRequest>) -> Vec<String> {
        self.sign_in.scopes.clone()
    }
    fn config(&mut self, _: Resource<LentRequest>) -> String {
        self.config.clone()
    }
    fn data_value(&mut self, _: Resource<LentRequest>, _: String) -> Option<String> {
        None
    }
    fn data(&mut self, _: Resource<LentRequest>) -> Vec<DataItem> {
        Vec::new()
    }
    fn now_unix_ms(&mut self, _: Resource<LentRequest>) -> i64 {
        self.sign_in.now_unix_ms
    }
    fn token_source(&mut self, _: Resource<LentRequest>) -> TokenSource {
        self.sign_in.token_source
    }
    fn federated(&mut self, _: Resource<LentRequest>) -> bool {
        self.sign_in.federated
    }
    fn first_federated(&mut self, _: Resource<LentRequest>) -> bool {
        self.sign_in.first_federated
    }
    fn trusted_context(&mut self, _: Resource<LentRequest>) -> Option<TrustedContext> {
        self.sign_in.trusted.clone()
    }
    fn drop(&mut self, _: Resource<LentRequest>) -> wasmtime::Result<()> {
        Ok(())
    }
}
