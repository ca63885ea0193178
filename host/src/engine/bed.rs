//! An engine for unit tests: the real store, plugin runtime, registry and
//! catalog in a temporary directory, on a manual clock, with the fixture
//! deployer uploaded as `agent` and an application `shop` whose
//! environments each hold two targets.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Engine;
use crate::catalog::Catalog;
use crate::clock::{Clock, ManualClock};
use crate::domain::inventory::Environment;
use crate::domain::plugin::Target;
use crate::domain::release::Status;
use crate::plugins::Runtime;
use crate::registry::Registry;
use crate::store::Store;

/// A deploy with the fixture deployer, one target per batch.
pub(crate) const NIGHTLY: &str = r#"
name = "nightly"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = { plugin = "agent" }
batch = 1
"#;

/// How long a test waits for an event before it fails.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

pub(crate) struct Bed {
    _dir: tempfile::TempDir,
    /// Stops the engine when dropped.
    _engine_stop: watch::Sender<bool>,
    pub clock: ManualClock,
    pub store: Store,
    pub registry: Registry,
    pub engine: Engine,
}

impl Bed {
    /// An engine at `now_ms` whose catalog holds `flows`.
    pub async fn new(now_ms: u64, flows: &[&str], environments: &[&str]) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(now_ms);
        let shared_clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let store = Store::open(&dir.path().join("db")).unwrap();
        let options = crate::plugins::Options {
            artifact_dir: Some(dir.path().join("artifacts")),
            ..Default::default()
        };
        let runtime = Runtime::new(options, Arc::new(store.clone()), shared_clock.clone()).unwrap();
        let registry = Registry::new(store.clone(), runtime, shared_clock.clone());
        let path = format!("{}/fixture_deployer.wasm", env!("GREENLIGHT_PLUGINS_DIR"));
        let bytes = std::fs::read(&path).unwrap();
        let admin = crate::registry::Publisher::admin("test");
        registry
            .upload("agent", "1.0.0", bytes, admin)
            .await
            .unwrap();
        let catalog = Catalog::new(store.clone(), registry.clone(), shared_clock.clone());
        for flow in flows {
            catalog.apply(flow, "test").unwrap();
        }
        for env in environments {
            store
                .put_environment(&Environment {
                    application: "shop".into(),
                    name: env.to_string(),
                    targets: (0..2)
                        .map(|i| Target {
                            id: format!("web-{i}"),
                            address: format!("10.0.0.{i}:8080"),
                            ..Default::default()
                        })
                        .collect(),
                    live_group: None,
                    current_version: None,
                    version_unknown: None,
                })
                .unwrap();
        }
        let (engine_stop, stopped) = watch::channel(false);
        let engine = Engine::start(
            store.clone(),
            registry.clone(),
            catalog,
            shared_clock,
            stopped,
            tokio::runtime::Handle::current(),
        )
        .unwrap();
        Bed {
            _dir: dir,
            _engine_stop: engine_stop,
            clock,
            store,
            registry,
            engine,
        }
    }

    /// Waits until a release has `status`.
    pub async fn wait_status(&self, id: &str, status: Status) {
        let mut events = self.engine.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = self.store.release_summary(id).unwrap().map(|s| s.status);
            if now == Some(status) {
                return;
            }
            if tokio::time::timeout_at(deadline, events.recv())
                .await
                .is_err()
            {
                panic!("release {id} is {now:?}, not {status:?}");
            }
        }
    }
}
